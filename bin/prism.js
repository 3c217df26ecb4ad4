#!/usr/bin/env node
// Entry point: TypeScript sources run through tsx's loader (no build step, so `npx prism` works after install).
import { register } from "tsx/esm/api";
register();
const { main } = await import("../src/cli/main.ts");
const code = await main(process.argv.slice(2));
if (typeof code === "number") process.exitCode = code;

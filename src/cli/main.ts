/**
 * `prism` command line. Each file in ./commands exports `register(program)` and adds one command
 * (serve, run, model, trace, bench, sim); they are imported lazily so `prism --help` stays fast.
 */
import { Command, CommanderError } from "commander";
import { readdirSync } from "node:fs";
import { isPrismError } from "../core/errors.ts";

export interface CommandModule {
  register(program: Command): void;
}

export async function buildProgram(): Promise<Command> {
  const program = new Command("prism")
    .description("Serve many LLMs on few devices: elastic KV memory shared across models, SLO-aware two-level scheduling")
    .version("0.1.0")
    .showHelpAfterError()
    .exitOverride();
  const dir = new URL("./commands/", import.meta.url);
  const files = readdirSync(dir).filter((f) => f.endsWith(".ts")).sort();
  for (const f of files) {
    const mod = (await import(new URL(f, dir).href)) as Partial<CommandModule>;
    if (typeof mod.register === "function") mod.register(program);
  }
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  const program = await buildProgram();
  try {
    await program.parseAsync([...argv], { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    if (isPrismError(e)) {
      process.stderr.write(`prism: error ${e.code}: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}

/**
 * `prism` command line. Each file in ./commands exports `register(program)` and adds one command
 * (serve, run, model, trace, bench, sim). Only the command being run is imported (`prism serve` does
 * not load the simulator); `--help`, `--version` or an unknown name import them all.
 */
import { Command, CommanderError } from "commander";
import { isPrismError } from "../core/errors.ts";

export interface CommandModule {
  register(program: Command): void;
}

/** Every module in ./commands (test/cli checks the list against the folder). Static specifiers, so a bundler sees them. */
export const COMMAND_MODULES: Readonly<Record<string, () => Promise<Partial<CommandModule>>>> = {
  bench: () => import("./commands/bench.ts"),
  model: () => import("./commands/model.ts"),
  run: () => import("./commands/run.ts"),
  serve: () => import("./commands/serve.ts"),
  sim: () => import("./commands/sim.ts"),
  trace: () => import("./commands/trace.ts"),
};

/** `only`: register just that command (it must be a key of COMMAND_MODULES); otherwise all of them. */
export async function buildProgram(only?: string): Promise<Command> {
  const program = new Command("prism")
    .description("Serve many LLMs on few devices: elastic KV memory shared across models, SLO-aware two-level scheduling")
    .version("0.1.0")
    .showHelpAfterError()
    .exitOverride();
  const names = only !== undefined ? [only] : Object.keys(COMMAND_MODULES);
  const mods = await Promise.all(names.map((n) => COMMAND_MODULES[n]!()));
  for (const mod of mods) if (typeof mod.register === "function") mod.register(program);
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  const first = argv[0];
  const program = await buildProgram(first !== undefined && Object.hasOwn(COMMAND_MODULES, first) ? first : undefined);
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

/** `prism serve`: the OpenAI-compatible server for many models (`npm start` runs it with the embedded default). */
import type { Command } from "commander";
import { loadConfig } from "../../config/load.ts";
import { startPrism } from "../../gateway/start.ts";

export function register(program: Command): void {
  program
    .command("serve")
    .description("serve many models through the OpenAI API (no config = the built-in demo models on one device)")
    .option("-c, --config <file>", "YAML config file (env PRISM_CONFIG)")
    .option("--host <host>", "listen address (default 127.0.0.1)")
    .option("-p, --port <port>", "listen port (default 8000)", (v) => Number(v))
    .option("--policy <name>", "global scheduling policy: prism | static | swap | muxserve | elastic")
    .option("--devices <n>", "number of devices", (v) => Number(v))
    .option("--device-memory <size>", "memory budget per device, e.g. 1GiB, or auto")
    .option("--api-key <key...>", "require these API keys")
    .option("--data-dir <dir>", "where generated demo models are cached (default .prism)")
    .option("--models-dir <dir>", "serve every *.gguf in this folder (default models)")
    .option("--log-level <level>", "fatal | error | warn | info | debug | silent")
    .action(async (o: Record<string, unknown>) => {
      const flags: Record<string, unknown> = {
        "server.host": o["host"], "server.port": o["port"], "scheduler.policy": o["policy"], "devices.count": o["devices"],
        "devices.memory": o["deviceMemory"], "server.api_keys": o["apiKey"], data_dir: o["dataDir"], models_dir: o["modelsDir"],
        "server.log_level": o["logLevel"],
      };
      const config = loadConfig({ file: o["config"] as string | undefined, flags, env: process.env });
      const t0 = performance.now();
      const prism = await startPrism(config, {
        onModel: (id, i, n) => process.stderr.write(`prism: preparing model ${i + 1}/${n}: ${id}\n`),
      });
      const ms = Math.round(performance.now() - t0);
      process.stderr.write(
        `prism: serving ${prism.models.map((m) => m.entry.id).join(", ")} on ${config.devices.count} device(s) of ` +
        `${(config.devices.memoryBytes / 1024 ** 2).toFixed(0)} MiB, policy ${config.scheduler.policy}\n` +
        `prism: OpenAI API at ${prism.url}/v1 (ready in ${ms} ms); metrics at ${prism.url}/metrics; Ctrl-C to stop\n`,
      );
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (sig: string): void => {
          if (stopping) {
            process.stderr.write("prism: second signal, exiting now\n");
            process.exit(130);
          }
          stopping = true;
          process.stderr.write(`prism: ${sig}: draining in-flight requests (up to ${config.server.shutdownGraceMs} ms)\n`);
          void prism.close().then(resolve, (e: unknown) => {
            process.stderr.write(`prism: shutdown error: ${String(e)}\n`);
            resolve();
          });
        };
        process.once("SIGINT", () => stop("SIGINT"));
        process.once("SIGTERM", () => stop("SIGTERM"));
      });
    });
}

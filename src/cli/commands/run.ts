/**
 * `prism run MODEL.gguf [PROMPT]`: one-shot generation on the embedded engine, streaming the
 * detokenized text to stdout as tokens are sampled; timings (prefill and decode tokens/s) go to
 * stderr at the end. No server and no device scheduler: one DeviceMemory sized for this model and
 * this request, one KV space, and the engine's standalone generation loop.
 */
import type { Command } from "commander";
import { PrismError } from "../../core/errors.ts";
import { modelId } from "../../core/ids.ts";
import { GREEDY, type SamplingParams } from "../../core/records.ts";
import { readGgufFile } from "../../engine/gguf/reader.ts";
import { llamaConfigFromGguf } from "../../engine/model/config.ts";
import { createEngineExecutor, profileOf, requiredPrefixBytes } from "../../engine/model/executor.ts";
import { planWeightLayout } from "../../engine/model/weights.ts";
import { generate } from "../../engine/model/sequences.ts";
import { validateSampling } from "../../engine/sampler/validate.ts";
import { IncrementalDetokenizer, Tokenizer, encodeChatPrompt, renderChat } from "../../engine/tokenizer/index.ts";
import { DeviceMemory } from "../../memory/index.ts";

const PAGE_BYTES = 65536;
const BLOCK_TOKENS = 16;

function usage(msg: string): PrismError {
  return new PrismError("PRISM_CLI_USAGE", msg);
}

function num(name: string, v: string | undefined, fallback: number, integer = false): number {
  if (v === undefined) return fallback;
  const x = Number(v);
  if (v.trim() === "" || !Number.isFinite(x) || (integer && !Number.isSafeInteger(x))) throw usage(`--${name} must be ${integer ? "an integer" : "a number"}, got '${v}'`);
  return x;
}

interface RunFlags {
  maxTokens?: string;
  temperature?: string;
  topK?: string;
  topP?: string;
  minP?: string;
  repeatPenalty?: string;
  seed?: string;
  chat?: boolean;
  system?: string;
  kernels: string;
  threads?: string;
  echo: boolean;
  ignoreEos?: boolean;
}

export function register(program: Command): void {
  program
    .command("run")
    .description("generate text from a GGUF model on the embedded engine (streams to stdout, timings to stderr)")
    .argument("<model>", "path of a .gguf file (llama architecture; F32, F16 or Q8_0 weights)")
    .argument("[prompt]", "prompt text (default: empty, i.e. just BOS)")
    .option("-n, --max-tokens <n>", "tokens to generate (capped by the context length)", "128")
    .option("--temperature <t>", "0 = greedy", "0")
    .option("--top-k <k>", "0 disables", "0")
    .option("--top-p <p>", "1 disables", "1")
    .option("--min-p <p>", "0 disables", "0")
    .option("--repeat-penalty <r>", "llama.cpp repetition penalty over generated tokens; 1 disables", "1")
    .option("--seed <s>", "sampling seed (same seed, same text)", "0")
    .option("--chat", "wrap the prompt as one user message with the model's chat template")
    .option("--system <text>", "system message (with --chat)")
    .option("--kernels <k>", "wasm | ts", "wasm")
    .option("--threads <n>", "1 | 2 (2 = one matmul helper thread)", "1")
    .option("--no-echo", "do not print the prompt before the continuation")
    .option("--ignore-eos", "keep generating after an end-of-generation token")
    .action(async (modelPath: string, prompt: string | undefined, o: RunFlags) => {
      if (o.kernels !== "wasm" && o.kernels !== "ts") throw usage(`--kernels must be wasm or ts, got '${o.kernels}'`);
      const threads = num("threads", o.threads, 1, true);
      if (threads !== 1 && threads !== 2) throw usage(`--threads must be 1 or 2, got '${o.threads}'`);
      const sampling: SamplingParams = {
        ...GREEDY,
        temperature: num("temperature", o.temperature, 0),
        topK: num("top-k", o.topK, 0, true),
        topP: num("top-p", o.topP, 1),
        minP: num("min-p", o.minP, 0),
        repetitionPenalty: num("repeat-penalty", o.repeatPenalty, 1),
        seed: num("seed", o.seed, 0, true),
      };
      validateSampling(sampling);
      const maxTokensAsked = num("max-tokens", o.maxTokens, 128, true);
      if (maxTokensAsked < 0) throw usage(`--max-tokens must be ≥ 0`);

      const gguf = await readGgufFile(modelPath);
      const cfg = llamaConfigFromGguf(gguf);
      const tok = Tokenizer.fromGguf(gguf);
      const text = prompt ?? "";
      let promptTokens: Int32Array;
      if (o.chat === true) {
        const messages = [...(o.system !== undefined ? [{ role: "system", content: o.system }] : []), { role: "user", content: text }];
        const rendered = renderChat(messages, {
          template: cfg.chatTemplate, bosToken: tok.tokenText(tok.bosId), eosToken: tok.tokenText(tok.eosIds[0] ?? tok.bosId), addGenerationPrompt: true,
        });
        promptTokens = encodeChatPrompt(tok, rendered);
      } else {
        promptTokens = tok.encode(text, { addBos: cfg.addBos });
      }
      if (promptTokens.length === 0) promptTokens = Int32Array.of(cfg.bosTokenId);
      if (promptTokens.length >= cfg.contextLength) {
        throw new PrismError("PRISM_PROMPT_TOO_LONG", `the prompt has ${promptTokens.length} tokens; the context length of ${cfg.name} is ${cfg.contextLength}`);
      }
      const maxTokens = Math.min(maxTokensAsked, cfg.contextLength - promptTokens.length);

      // Memory for exactly this run: weights + KV for prompt + maxTokens positions (+ headroom).
      const maxBatchTokens = Math.min(512, cfg.contextLength);
      const budget = { maxBatchTokens, maxSampleRows: 1 };
      const prefixBytes = Math.ceil(requiredPrefixBytes([cfg], budget) / PAGE_BYTES) * PAGE_BYTES;
      const kvBytesPerToken = 2 * cfg.numKvHeads * cfg.headDim * 4 * cfg.numLayers;
      const positions = Math.ceil((promptTokens.length + maxTokens) / BLOCK_TOKENS) * BLOCK_TOKENS;
      // A KV block must fit in one page: pages are a power of two ≥ 64 KiB and ≥ one block.
      const blockBytes = BLOCK_TOKENS * kvBytesPerToken;
      const pageBytes = Math.max(PAGE_BYTES, 2 ** Math.ceil(Math.log2(blockBytes)));
      const pages = (bytes: number): number => Math.ceil(bytes / pageBytes);
      const id = modelId(cfg.name);
      const profile = profileOf(id, cfg, planWeightLayout(gguf, cfg));
      const totalPages = Math.ceil((pages(profile.weightBytes) + pages(positions * kvBytesPerToken) + 4) / 0.9);
      const mem = new DeviceMemory({ budgetBytes: totalPages * pageBytes, pageBytes, backed: true, prefixBytes, shared: threads === 2 });
      const executor = await createEngineExecutor({ memory: mem.memory!, prefixBytes, kernels: o.kernels, helperThreads: threads === 2 ? 1 : 0, ...budget });
      try {
        executor.registerGguf(cfg.name, gguf);
        const region = mem.allocWeights(id, profile.weightBytes);
        if (region === null) throw new PrismError("PRISM_MODEL_TOO_LARGE", `no room for ${profile.weightBytes} bytes of weights`);
        const { durationMs: loadMs } = await executor.loadWeights(id, region.byteOffset);
        const space = mem.createKvSpace(id, { bytesPerTokenPerLayer: profile.kvBytesPerTokenPerLayer, numLayers: profile.numLayers, blockTokens: BLOCK_TOKENS });

        const out = process.stdout;
        // Like llama.cpp's detokenize of the prompt text: a leading BOS renders nothing and must not keep
        // the first piece's space.
        if (o.echo && o.chat !== true) out.write(tok.decode(promptTokens[0] === tok.bosId ? promptTokens.subarray(1) : promptTokens));
        const detok = o.echo && o.chat !== true ? IncrementalDetokenizer.forContinuation(tok, promptTokens) : new IncrementalDetokenizer(tok);
        const r = await generate({
          executor, modelId: cfg.name, promptTokens, maxTokens, sampling, maxBatchTokens,
          blocks: { blockTokens: space.blockTokens, alloc: (n) => space.alloc(n), byteOffset: (b) => space.blockByteOffset(b), free: (ids) => space.free(ids) },
          ...(o.ignoreEos === true ? {} : { stopTokenIds: cfg.eosTokenIds }),
          onToken: (t) => { const s = detok.push(t); if (s !== "") out.write(s); },
        });
        out.write(`${detok.flush()}\n`);
        const n = r.tokens.length;
        const decodeMs = r.totalMs - r.firstTokenMs;
        const fmt = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : "-");
        process.stderr.write(
          `[prism run] ${cfg.name}: ${executor.kind} kernels, ${threads} thread(s); weights ${(profile.weightBytes / 1048576).toFixed(1)} MiB loaded in ${loadMs.toFixed(1)} ms\n` +
            `[prism run] prompt ${r.promptTokens} tokens in ${fmt(r.firstTokenMs)} ms (${fmt((r.promptTokens / r.firstTokenMs) * 1000)} tok/s, incl. first sample); ` +
            `generated ${n} tokens (${r.finishReason}); decode ${fmt(n > 1 ? ((n - 1) / decodeMs) * 1000 : NaN)} tok/s\n`,
        );
      } finally {
        await executor.close();
      }
    });
}

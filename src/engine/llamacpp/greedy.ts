/**
 * Greedy generation straight through node-llama-cpp (one sequence): the reference that parity
 * tests compare our engine with. Includes end-of-generation tokens (no early stop).
 */
import type { Token } from "node-llama-cpp";
import { getCpuLlama } from "./llama.ts";

export interface LlamaCppGreedyResult {
  readonly tokens: number[];
  /**
   * With opts.logits: per generated token, the log-softmax of llama.cpp's logits over the vocabulary
   * (index = token id) at that step — the raw logits up to a per-row constant, which is what a
   * parity test can compare (node-llama-cpp exposes probabilities, not raw logits).
   */
  readonly logits?: Float32Array[];
}

export async function llamaCppGreedy(modelPath: string, promptTokens: readonly number[], n: number, opts: { logits?: boolean; contextSize?: number } = {}): Promise<LlamaCppGreedyResult> {
  const llama = await getCpuLlama();
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ contextSize: opts.contextSize ?? Math.max(64, promptTokens.length + n + 1), sequences: 1, threads: 1 });
  try {
    const seq = context.getSequence();
    const tokens: number[] = [];
    const logits: Float32Array[] = [];
    const vocabSize = model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length ?? 0;
    let input: Token[] = promptTokens.map((t) => t as Token);
    for (let i = 0; i < n; i++) {
      const last = input[input.length - 1]!;
      const items = [...input.slice(0, -1), [last, { generateNext: { token: true, probabilities: opts.logits === true, options: { temperature: 0 } } }]] as Parameters<typeof seq.controlledEvaluate>[0];
      const out = (await seq.controlledEvaluate(items))[input.length - 1];
      const next = out?.next.token;
      if (next === undefined || next === null) throw new Error("llama.cpp produced no token");
      tokens.push(Number(next));
      if (opts.logits === true) {
        const row = new Float32Array(vocabSize).fill(-Infinity);
        for (const [t, p] of out!.next.probabilities ?? []) row[t] = Math.log(p);
        logits.push(row);
      }
      input = [next];
    }
    return opts.logits === true ? { tokens, logits } : { tokens };
  } finally {
    await context.dispose();
    await model.dispose();
  }
}

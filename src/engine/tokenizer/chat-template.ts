/**
 * Chat messages → prompt text. Called by the gateway/executor once per chat request, before encoding.
 *
 * With a GGUF `tokenizer.chat_template`, the Jinja template is rendered with @huggingface/jinja and the usual
 * variables: messages, bos_token, eos_token, add_generation_prompt (plus raise_exception / strftime_now builtins).
 * Without one (stories260K, random models), DEFAULT_CHAT_TEMPLATE is used: one block per message,
 *
 *     <|system|>\nYou are terse.\n<|user|>\nHi\n<|assistant|>\n
 *
 * i.e. "<|role|>\n" + content + "\n", plus "<|assistant|>\n" when addGenerationPrompt. The markers are plain text to
 * these vocabularies (they tokenize through ordinary pieces and byte fallback), so any model can consume them. The
 * default template never emits BOS: encode the result with `addBos: tokenizer.addBos` (see encodeChatPrompt).
 */
import { Template } from "@huggingface/jinja";
import { PrismError } from "../../core/errors.ts";
import type { Tokenizer } from "./tokenizer.ts";

export interface ChatMessage {
  readonly role: string;
  readonly content: string;
}

export interface RenderChatOptions {
  /** Jinja source (tokenizer.chat_template), or null for DEFAULT_CHAT_TEMPLATE. */
  readonly template: string | null;
  readonly bosToken: string;
  readonly eosToken: string;
  readonly addGenerationPrompt: boolean;
}

export const DEFAULT_CHAT_TEMPLATE =
  "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n{% endfor %}" +
  "{% if add_generation_prompt %}<|assistant|>\n{% endif %}";

/** Parsed templates by source; models share few distinct templates. */
const compiled = new Map<string, Template>();
const MAX_CACHED = 64;

function compile(source: string): Template {
  let t = compiled.get(source);
  if (t !== undefined) return t;
  try {
    t = new Template(source);
  } catch (e) {
    throw new PrismError("PRISM_TEMPLATE_ERROR", `chat template does not parse: ${(e as Error).message}`, { phase: "parse" }, { cause: e });
  }
  if (compiled.size >= MAX_CACHED) compiled.clear();
  compiled.set(source, t);
  return t;
}

/** Renders the conversation. Throws PRISM_TEMPLATE_ERROR when the template fails to parse or render. */
export function renderChat(messages: readonly ChatMessage[], opts: RenderChatOptions): string {
  for (const [i, m] of messages.entries()) {
    if (typeof m?.role !== "string" || typeof m.content !== "string") {
      throw new PrismError("PRISM_TEMPLATE_ERROR", `message ${i} needs a string role and content`, { message: i });
    }
  }
  const template = compile(opts.template ?? DEFAULT_CHAT_TEMPLATE);
  try {
    return template.render({
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      bos_token: opts.bosToken,
      eos_token: opts.eosToken,
      add_generation_prompt: opts.addGenerationPrompt,
    });
  } catch (e) {
    throw new PrismError("PRISM_TEMPLATE_ERROR", `chat template failed to render: ${(e as Error).message}`, { phase: "render" }, { cause: e });
  }
}

/**
 * Encodes rendered chat text: special-token texts in it ("<s>", "</s>") become their ids, and BOS is prepended when
 * the tokenizer wants one unless the template already emitted it (avoids llama.cpp's "double BOS" warning case).
 */
export function encodeChatPrompt(tokenizer: Tokenizer, rendered: string): Int32Array {
  const ids = tokenizer.encode(rendered, { parseSpecial: true });
  if (!tokenizer.addBos || ids[0] === tokenizer.bosId) return ids;
  const out = new Int32Array(ids.length + 1);
  out[0] = tokenizer.bosId;
  out.set(ids, 1);
  return out;
}

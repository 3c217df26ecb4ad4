// Chat templates: the documented default, GGUF Jinja templates via @huggingface/jinja, errors, and prompt encoding.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { isPrismError } from "../../src/core/errors.ts";
import { parseGguf } from "../../src/engine/gguf/index.ts";
import { llamaConfigFromGguf } from "../../src/engine/model/config.ts";
import { generateRandomModel } from "../../src/engine/model/generate.ts";
import { SHAPES } from "../../src/engine/model/shapes.ts";
import { DEFAULT_CHAT_TEMPLATE, encodeChatPrompt, renderChat, type ChatMessage } from "../../src/engine/tokenizer/chat-template.ts";
import { Tokenizer } from "../../src/engine/tokenizer/tokenizer.ts";

const MODELS = new URL("../../../shared/models/", import.meta.url);
function sharedPath(name: string): string {
  const p = fileURLToPath(new URL(name, MODELS));
  if (!existsSync(p)) throw new Error(`test data missing: ${p} (expected ../shared/models beside the repository)`);
  return p;
}

const convo: ChatMessage[] = [
  { role: "system", content: "You tell stories." },
  { role: "user", content: "Tell me about Lily." },
];
const base = { bosToken: "<s>", eosToken: "</s>" };

const CHATML =
  "{{ bos_token }}{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
const LLAMA2 =
  "{% if messages[0]['role'] == 'system' %}{% set sys = '<<SYS>>\\n' + messages[0]['content'] + '\\n<</SYS>>\\n\\n' %}{% set msgs = messages[1:] %}{% else %}{% set sys = '' %}{% set msgs = messages %}{% endif %}" +
  "{% for m in msgs %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('roles must alternate user/assistant') }}{% endif %}" +
  "{% if m['role'] == 'user' %}{{ bos_token + '[INST] ' + (sys if loop.first else '') + m['content'] + ' [/INST]' }}{% else %}{{ ' ' + m['content'] + ' ' + eos_token }}{% endif %}{% endfor %}";

test("default template (no GGUF template): <|role|> blocks, generation prompt on request", () => {
  assert.equal(
    renderChat(convo, { ...base, template: null, addGenerationPrompt: true }),
    "<|system|>\nYou tell stories.\n<|user|>\nTell me about Lily.\n<|assistant|>\n",
  );
  assert.equal(renderChat(convo, { ...base, template: null, addGenerationPrompt: false }), "<|system|>\nYou tell stories.\n<|user|>\nTell me about Lily.\n");
  assert.equal(renderChat([], { ...base, template: null, addGenerationPrompt: true }), "<|assistant|>\n");
  assert.equal(renderChat(convo, { ...base, template: DEFAULT_CHAT_TEMPLATE, addGenerationPrompt: true }), renderChat(convo, { ...base, template: null, addGenerationPrompt: true }));
});

test("GGUF Jinja templates render with bos/eos tokens (ChatML and Llama-2 styles)", () => {
  assert.equal(
    renderChat(convo, { ...base, template: CHATML, addGenerationPrompt: true }),
    "<s><|im_start|>system\nYou tell stories.<|im_end|>\n<|im_start|>user\nTell me about Lily.<|im_end|>\n<|im_start|>assistant\n",
  );
  const turns: ChatMessage[] = [...convo, { role: "assistant", content: "Lily is a girl." }, { role: "user", content: "More!" }];
  assert.equal(
    renderChat(turns, { ...base, template: LLAMA2, addGenerationPrompt: true }),
    "<s>[INST] <<SYS>>\nYou tell stories.\n<</SYS>>\n\nTell me about Lily. [/INST] Lily is a girl. </s><s>[INST] More! [/INST]",
  );
});

test("template failures are PRISM_TEMPLATE_ERROR", () => {
  const isTemplateError = (fragment: string) => (e: unknown) => isPrismError(e) && e.code === "PRISM_TEMPLATE_ERROR" && e.message.includes(fragment);
  const bad: ChatMessage[] = [{ role: "assistant", content: "hi" }];
  assert.throws(() => renderChat(bad, { ...base, template: LLAMA2, addGenerationPrompt: true }), isTemplateError("roles must alternate"));
  assert.throws(() => renderChat(convo, { ...base, template: "{% for m in messages %}{{ m.content }", addGenerationPrompt: true }), isTemplateError("does not parse"));
  assert.throws(() => renderChat(convo, { ...base, template: "{{ messages[0].content.nope() }}", addGenerationPrompt: true }), isTemplateError("failed to render"));
  assert.throws(() => renderChat([{ role: "user" } as unknown as ChatMessage], { ...base, template: null, addGenerationPrompt: true }), isTemplateError("message 0"));
});

test("encodeChatPrompt: exactly one BOS whether or not the template emits it", () => {
  const tok = Tokenizer.fromGguf(parseGguf(readFileSync(sharedPath("stories260K.gguf")), "stories260K.gguf"));
  const plain = encodeChatPrompt(tok, renderChat(convo, { ...base, template: null, addGenerationPrompt: true }));
  assert.equal(plain[0], 1);
  assert.equal(Array.from(plain).filter((id) => id === 1).length, 1);
  assert.equal(tok.decode(plain.subarray(1)), "<|system|>\nYou tell stories.\n<|user|>\nTell me about Lily.\n<|assistant|>\n");
  const withBos = encodeChatPrompt(tok, renderChat(convo, { ...base, template: CHATML, addGenerationPrompt: true }));
  assert.equal(withBos[0], 1);
  assert.equal(Array.from(withBos).filter((id) => id === 1).length, 1);
});

test("a chat template stored in a generated model's GGUF reaches LlamaConfig", () => {
  const f = parseGguf(generateRandomModel({ shape: SHAPES.tiny!, dtype: "f32", seed: 1, chatTemplate: CHATML }), "chat.gguf");
  const cfg = llamaConfigFromGguf(f);
  assert.equal(cfg.chatTemplate, CHATML);
  const text = renderChat(convo, { template: cfg.chatTemplate, bosToken: "<s>", eosToken: "</s>", addGenerationPrompt: true });
  const tok = Tokenizer.fromGguf(f);
  // As in llama.cpp's SPM tokenizer, text after a parsed special token gets the '▁' prefix.
  assert.ok(tok.decode(encodeChatPrompt(tok, text), { special: true }).startsWith("<s> <|im_start|>system\nYou tell stories."));
});

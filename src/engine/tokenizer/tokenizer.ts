/**
 * SentencePiece-BPE tokenizer as llama.cpp implements it for `tokenizer.ggml.model = "llama"` (LLAMA_VOCAB_TYPE_SPM),
 * so Prism's token ids equal node-llama-cpp's on the same GGUF:
 * - encode: optional special-token partition (parseSpecial), a '▁' prefix before every text fragment that starts the
 *   input or follows a special token (add_space_prefix), spaces → '▁', then the SPM merge loop over code points:
 *   repeatedly merge the adjacent pair whose concatenation is a vocabulary entry with the highest score (ties: the
 *   leftmost pair); symbols that are not tokens fall back to their UTF-8 bytes `<0xXX>`.
 * - decode: llama_detokenize(remove_special = false): NORMAL pieces with '▁' → ' ', BYTE tokens → their byte,
 *   CONTROL/UNKNOWN → "" (or their text with `special`), then UTF-8 decoding with U+FFFD for invalid bytes; the first
 *   token's piece loses one leading space (llama.cpp strips it because encode added it).
 * Built once per model at load time; encode runs per request, decode/pieces per generated token (cached bytes).
 */
import { PrismError } from "../../core/errors.ts";
import { metaBool, metaNumber, metaNumbers, metaString, metaStrings } from "../gguf/reader.ts";
import { TokenType, type GgufFile } from "../gguf/types.ts";
import { eogTokenIds } from "./eog.ts";

const SPACE_PIECE = "\u2581";
const EMPTY = new Uint8Array(0);
const utf8Encoder = new TextEncoder();

export interface EncodeOptions {
  /** Prepend BOS. Default false (as llama_tokenize with add_special = false; pass cfg.addBos for prompts). */
  readonly addBos?: boolean;
  /** Recognise control/unknown token texts such as "<s>" in the input. Default false. */
  readonly parseSpecial?: boolean;
}

export interface DecodeOptions {
  /** Render control and unknown tokens as their text ("<s>"). Default false: they render as "". */
  readonly special?: boolean;
  /** Strip one leading space from the first token's piece. Default: the vocabulary's add_space_prefix (true). */
  readonly stripLeadingSpace?: boolean;
}

export class Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosIds: readonly number[];
  readonly unkId: number;
  /** Whether prompts should start with BOS (tokenizer.ggml.add_bos_token). */
  readonly addBos: boolean;
  /** tokenizer.ggml.add_space_prefix (default true). */
  readonly addSpacePrefix: boolean;
  private readonly tokens: readonly string[];
  private readonly scores: Float32Array;
  private readonly types: Uint8Array;
  private readonly idByText: Map<string, number>;
  /** Piece bytes with special = true (what llama.cpp caches); control/unknown are blanked at use when !special. */
  private readonly pieces: Uint8Array[];
  /** Byte value → token id (−1 when the vocabulary has no `<0xXX>` for it). */
  private readonly byteIds: Int32Array;
  /** Control, unknown and user-defined token ids, longest text first (llama.cpp cache_special_tokens). */
  private readonly specialIds: number[];
  private readonly eogSet: Set<number>;

  constructor(v: {
    tokens: readonly string[];
    scores?: ArrayLike<number> | null;
    tokenTypes?: ArrayLike<number> | null;
    bosId: number;
    eosIds: readonly number[];
    unkId: number;
    addBos: boolean;
    addSpacePrefix?: boolean;
  }) {
    const n = v.tokens.length;
    this.vocabSize = n;
    this.tokens = v.tokens;
    this.bosId = v.bosId;
    this.eosIds = [...v.eosIds];
    this.unkId = v.unkId;
    this.addBos = v.addBos;
    this.addSpacePrefix = v.addSpacePrefix ?? true;
    this.scores = new Float32Array(n);
    this.types = new Uint8Array(n);
    this.idByText = new Map();
    this.pieces = new Array<Uint8Array>(n);
    this.byteIds = new Int32Array(256).fill(-1);
    this.specialIds = [];
    this.eogSet = new Set(v.eosIds);
    for (let id = 0; id < n; id++) {
      const text = v.tokens[id]!;
      this.scores[id] = v.scores?.[id] ?? 0;
      const type = v.tokenTypes?.[id] ?? TokenType.NORMAL;
      this.types[id] = type;
      // llama.cpp keeps the last id for a duplicated text (token_to_id[text] = id in id order).
      this.idByText.set(text, id);
      switch (type) {
        case TokenType.NORMAL:
          this.pieces[id] = utf8Encoder.encode(text.replaceAll(SPACE_PIECE, " "));
          break;
        case TokenType.BYTE: {
          const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(text);
          const byte = m !== null ? parseInt(m[1]!, 16) : -1;
          this.pieces[id] = byte >= 0 ? Uint8Array.of(byte) : EMPTY;
          break;
        }
        case TokenType.CONTROL:
        case TokenType.UNKNOWN:
        case TokenType.USER_DEFINED:
          this.pieces[id] = utf8Encoder.encode(text);
          this.specialIds.push(id);
          break;
        default:
          this.pieces[id] = EMPTY; // UNUSED / UNDEFINED render as nothing
      }
    }
    for (let b = 0; b < 256; b++) {
      const id = this.idByText.get(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
      if (id !== undefined) this.byteIds[b] = id;
      else {
        const raw = this.idByText.get(String.fromCharCode(b));
        if (raw !== undefined && b < 0x80) this.byteIds[b] = raw;
      }
    }
    const textLen = (id: number): number => utf8Encoder.encode(this.tokens[id]!).byteLength;
    this.specialIds.sort((a, b) => textLen(b) - textLen(a) || a - b);
  }

  /** Reads the vocabulary of a GGUF with `tokenizer.ggml.model = "llama"`. */
  static fromGguf(f: GgufFile): Tokenizer {
    const model = metaString(f, "tokenizer.ggml.model", null);
    if (model === null) {
      throw new PrismError("PRISM_GGUF_MISSING", `${f.fileName}: metadata key 'tokenizer.ggml.model' is missing (the file has no vocabulary)`, {
        file: f.fileName,
        key: "tokenizer.ggml.model",
      });
    }
    if (model !== "llama") {
      throw new PrismError(
        "PRISM_GGUF_UNSUPPORTED_TOKENIZER",
        `${f.fileName}: tokenizer model '${model}' is not supported yet (Prism implements the SentencePiece 'llama' tokenizer)`,
        { file: f.fileName, tokenizer: model },
      );
    }
    const tokens = metaStrings(f, "tokenizer.ggml.tokens");
    const scores = metaNumbers(f, "tokenizer.ggml.scores");
    const tokenTypes = metaNumbers(f, "tokenizer.ggml.token_type");
    for (const [key, arr] of [["tokenizer.ggml.scores", scores], ["tokenizer.ggml.token_type", tokenTypes]] as const) {
      if (arr !== null && arr.length !== tokens.length) {
        throw new PrismError("PRISM_GGUF_CORRUPT", `${f.fileName}: '${key}' has ${arr.length} entries for ${tokens.length} tokens`, { file: f.fileName, key });
      }
    }
    const eosIds = eogTokenIds(f, tokens);
    const eos = eosIds[0]!;
    const ids = { bosId: metaNumber(f, "tokenizer.ggml.bos_token_id", 1), unkId: metaNumber(f, "tokenizer.ggml.unknown_token_id", 0) };
    for (const [what, id] of [["bos_token_id", ids.bosId], ["eos_token_id", eos], ["unknown_token_id", ids.unkId]] as const) {
      if (!Number.isInteger(id) || id < 0 || id >= tokens.length) {
        throw new PrismError("PRISM_GGUF_CORRUPT", `${f.fileName}: tokenizer.ggml.${what} = ${id} is outside the vocabulary (${tokens.length})`, { file: f.fileName });
      }
    }
    return new Tokenizer({
      tokens,
      scores,
      tokenTypes,
      ...ids,
      eosIds,
      addBos: metaBool(f, "tokenizer.ggml.add_bos_token", true),
      addSpacePrefix: metaBool(f, "tokenizer.ggml.add_space_prefix", true),
    });
  }

  /** True for end-of-generation tokens (eos, eot, eom, well-known end markers; same set as LlamaConfig.eosTokenIds). */
  isEog(id: number): boolean {
    return this.eogSet.has(id);
  }

  /** The raw vocabulary entry ("▁Once", "<0x0A>", "<s>"). */
  tokenText(id: number): string {
    this.check(id);
    return this.tokens[id]!;
  }

  /** The bytes a token contributes to decoded text (control/unknown: empty unless `special`). Do not mutate. */
  tokenPiece(id: number, special = false): Uint8Array {
    this.check(id);
    if (!special && this.isHiddenSpecial(id)) return EMPTY;
    return this.pieces[id]!;
  }

  private isHiddenSpecial(id: number): boolean {
    const t = this.types[id];
    return t === TokenType.CONTROL || t === TokenType.UNKNOWN;
  }

  private check(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new PrismError("PRISM_TOKEN_OUT_OF_RANGE", `token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`, { token: id });
    }
  }

  /** Text → ids, as llama_tokenize(text, add_special = addBos, parse_special). */
  encode(text: string, opts: EncodeOptions = {}): Int32Array {
    const out: number[] = [];
    if (opts.addBos === true) out.push(this.bosId);
    if (text.length === 0) return Int32Array.from(out);
    // Lone surrogates become U+FFFD, as UTF-8 conversion at the llama.cpp boundary does.
    const wellFormed = text.replace(/\p{Cs}/gu, "\uFFFD");
    let prevSpecial = true;
    for (const frag of this.partition(wellFormed, opts.parseSpecial === true)) {
      if (typeof frag === "number") {
        out.push(frag);
        prevSpecial = true;
        continue;
      }
      const prefixed = this.addSpacePrefix && prevSpecial ? " " + frag : frag;
      this.encodeFragment(prefixed.replaceAll(" ", SPACE_PIECE), out);
      prevSpecial = false;
    }
    return Int32Array.from(out);
  }

  /** Splits text on special-token texts (llama.cpp tokenizer_st_partition). Strings are raw text, numbers token ids. */
  private partition(text: string, parseSpecial: boolean): (string | number)[] {
    let frags: (string | number)[] = [text];
    for (const id of this.specialIds) {
      const type = this.types[id];
      if (!parseSpecial && (type === TokenType.CONTROL || type === TokenType.UNKNOWN)) continue;
      const needle = this.tokens[id]!;
      if (needle.length === 0) continue;
      const next: (string | number)[] = [];
      for (const f of frags) {
        if (typeof f === "number") {
          next.push(f);
          continue;
        }
        let from = 0;
        for (;;) {
          const at = f.indexOf(needle, from);
          if (at < 0) break;
          if (at > from) next.push(f.slice(from, at));
          next.push(id);
          from = at + needle.length;
        }
        if (from < f.length) next.push(f.slice(from));
      }
      frags = next;
    }
    return frags;
  }

  /** The SPM merge loop over one escaped fragment (llm_tokenizer_spm_session::tokenize). */
  private encodeFragment(text: string, out: number[]): void {
    // Symbols: one per code point, as [start, end) UTF-16 ranges in a doubly linked list.
    const n = text.length;
    const start = new Int32Array(n);
    const len = new Int32Array(n);
    const prev = new Int32Array(n);
    const next = new Int32Array(n);
    let count = 0;
    for (let i = 0; i < n; ) {
      const cp = text.codePointAt(i)!;
      const w = cp > 0xffff ? 2 : 1;
      start[count] = i;
      len[count] = w;
      prev[count] = count - 1;
      count++;
      i += w;
    }
    for (let s = 0; s < count; s++) next[s] = s + 1 < count ? s + 1 : -1;

    const heap = new BigramHeap();
    const tryAdd = (left: number, right: number): void => {
      if (left < 0 || right < 0) return;
      const id = this.idByText.get(text.slice(start[left]!, start[left]! + len[left]! + len[right]!));
      if (id === undefined) return;
      heap.push(left, right, this.scores[id]!, len[left]! + len[right]!);
    };
    for (let s = 1; s < count; s++) tryAdd(s - 1, s);
    while (heap.size > 0) {
      const { left, right, size } = heap.pop();
      // Skip pairs invalidated by an earlier merge.
      if (len[left] === 0 || len[right] === 0 || len[left]! + len[right]! !== size) continue;
      len[left] = len[left]! + len[right]!;
      len[right] = 0;
      next[left] = next[right]!;
      if (next[right]! >= 0) prev[next[right]!] = left;
      tryAdd(prev[left]!, left);
      tryAdd(left, next[left]!);
    }
    for (let s = 0; s !== -1 && count > 0; s = next[s]!) {
      const piece = text.slice(start[s]!, start[s]! + len[s]!);
      const id = this.idByText.get(piece);
      if (id !== undefined) {
        out.push(id);
        continue;
      }
      // Only single code points can fail to be tokens (merges always form tokens): byte fallback.
      for (const b of utf8Encoder.encode(piece)) out.push(this.byteIds[b]! >= 0 ? this.byteIds[b]! : this.unkId);
    }
  }

  /** Ids → text, as llama_detokenize(remove_special = false, unparse_special = special). */
  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    const d = new IncrementalDetokenizer(this, opts);
    let s = "";
    for (let i = 0; i < ids.length; i++) s += d.push(ids[i]!);
    return s + d.flush();
  }
}

/**
 * Streams text for generated tokens: push(id) returns the text completed by that token (possibly ""), holding back
 * the bytes of an incomplete UTF-8 sequence (byte tokens of a multi-byte character) until it completes; flush()
 * returns what is left (invalid bytes as U+FFFD). The concatenation of all outputs equals tokenizer.decode(ids, opts)
 * for any way of splitting the ids.
 *
 * Leading space: as llama.cpp, the piece of the *first pushed token* loses one leading space (stripLeadingSpace,
 * default true) — even when that token renders empty, as BOS does (llama.cpp resets the flag after the first token).
 * For streaming a continuation use `IncrementalDetokenizer.forContinuation(tok, promptIds)`: it strips the first
 * generated token's space only when the prompt rendered no text (e.g. the prompt is just BOS), which reproduces
 * detokenize(generated) of the golden BOS run ("Once upon a time…") and keeps " time" after the prompt "Once upon a".
 */
export class IncrementalDetokenizer {
  private readonly decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
  private readonly special: boolean;
  private stripNext: boolean;

  constructor(
    private readonly tokenizer: Tokenizer,
    opts: DecodeOptions = {},
  ) {
    this.special = opts.special ?? false;
    this.stripNext = opts.stripLeadingSpace ?? tokenizer.addSpacePrefix;
  }

  /** A detokenizer for tokens generated after `promptIds`. */
  static forContinuation(tokenizer: Tokenizer, promptIds: ArrayLike<number>, opts: Omit<DecodeOptions, "stripLeadingSpace"> = {}): IncrementalDetokenizer {
    let promptHasText = false;
    for (let i = 0; i < promptIds.length && !promptHasText; i++) promptHasText = tokenizer.tokenPiece(promptIds[i]!, opts.special ?? false).byteLength > 0;
    return new IncrementalDetokenizer(tokenizer, { ...opts, stripLeadingSpace: tokenizer.addSpacePrefix && !promptHasText });
  }

  push(id: number): string {
    let piece = this.tokenizer.tokenPiece(id, this.special);
    if (this.stripNext) {
      this.stripNext = false;
      if (piece[0] === 0x20) piece = piece.subarray(1);
    }
    if (piece.byteLength === 0) return "";
    return this.decoder.decode(piece, { stream: true });
  }

  /** Ends the stream: returns held-back bytes (as U+FFFD) and resets the UTF-8 state. */
  flush(): string {
    return this.decoder.decode();
  }
}

/** Binary max-heap of candidate merges: higher score first, then smaller left index (llm_bigram_spm::comparator). */
class BigramHeap {
  private left: number[] = [];
  private right: number[] = [];
  private score: number[] = [];
  private sizes: number[] = [];
  size = 0;

  push(left: number, right: number, score: number, size: number): void {
    let i = this.size++;
    this.left[i] = left;
    this.right[i] = right;
    this.score[i] = score;
    this.sizes[i] = size;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  pop(): { left: number; right: number; size: number } {
    const top = { left: this.left[0]!, right: this.right[0]!, size: this.sizes[0]! };
    const last = --this.size;
    if (last > 0) {
      this.left[0] = this.left[last]!;
      this.right[0] = this.right[last]!;
      this.score[0] = this.score[last]!;
      this.sizes[0] = this.sizes[last]!;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < last && this.before(l, best)) best = l;
        if (r < last && this.before(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }

  private before(a: number, b: number): boolean {
    const sa = this.score[a]!;
    const sb = this.score[b]!;
    return sa > sb || (sa === sb && this.left[a]! < this.left[b]!);
  }

  private swap(a: number, b: number): void {
    [this.left[a], this.left[b]] = [this.left[b]!, this.left[a]!];
    [this.right[a], this.right[b]] = [this.right[b]!, this.right[a]!];
    [this.score[a], this.score[b]] = [this.score[b]!, this.score[a]!];
    [this.sizes[a], this.sizes[b]] = [this.sizes[b]!, this.sizes[a]!];
  }
}

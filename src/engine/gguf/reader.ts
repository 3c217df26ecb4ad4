/**
 * GGUF v2/v3 reader. Parses the header, metadata and tensor directory of a file held in memory and checks the
 * directory against the file (types, alignment, bounds, overlaps) so later code can slice tensor data blindly.
 * Every failure is a PrismError PRISM_GGUF_* whose message names the file and what is wrong where.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { isPrismError, PrismError } from "../../core/errors.ts";
import {
  GGML_TYPE_INFO,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GgufValueType,
  ggmlTypeName,
  isSupportedGgmlType,
  type GgufFile,
  type GgufTensorInfo,
  type GgufValue,
  type GgufValueTypeId,
  type GgufValueTypeInfo,
} from "./types.ts";

export interface ParseGgufOptions {
  /** Accept tensor types Prism cannot compute with (for `prism model info`). Default false. */
  readonly allowAnyType?: boolean;
  /**
   * The whole file's size when `input` holds only its beginning (metadata and tensor infos, for a server that
   * needs the vocabulary and shapes but leaves the weights to the engine). Tensor bounds are checked against it;
   * the file's `bytes` then hold only the header, so tensorBytes() must not be used.
   */
  readonly fileBytes?: number;
}

/** ggml's GGML_MAX_DIMS. */
const MAX_DIMS = 4;
const utf8 = new TextDecoder("utf-8");

/** Bytes per element of each fixed-size GGUF value type. */
const SCALAR_BYTES: Readonly<Record<number, number>> = {
  [GgufValueType.U8]: 1,
  [GgufValueType.I8]: 1,
  [GgufValueType.U16]: 2,
  [GgufValueType.I16]: 2,
  [GgufValueType.U32]: 4,
  [GgufValueType.I32]: 4,
  [GgufValueType.F32]: 4,
  [GgufValueType.BOOL]: 1,
  [GgufValueType.U64]: 8,
  [GgufValueType.I64]: 8,
  [GgufValueType.F64]: 8,
};

/** A bounds-checked little-endian cursor; `what` names the field being read for truncation messages. */
class Cursor {
  pos = 0;
  readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    readonly fileName: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  need(n: number, what: string): void {
    if (n > this.bytes.byteLength - this.pos) {
      throw new PrismError(
        "PRISM_GGUF_TRUNCATED",
        `${this.fileName}: truncated while reading ${what} at byte ${this.pos} (needs ${n} bytes, ${this.bytes.byteLength - this.pos} left; file is ${this.bytes.byteLength} bytes)`,
        { file: this.fileName, at: this.pos, what },
      );
    }
  }
  u8(what: string): number {
    this.need(1, what);
    return this.view.getUint8(this.pos++);
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  /** A u64 that must fit a JS number (counts, lengths, dims, offsets). */
  u64n(what: string): number {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new PrismError("PRISM_GGUF_CORRUPT", `${this.fileName}: ${what} = ${v} is implausibly large (at byte ${this.pos - 8})`, {
        file: this.fileName,
        what,
      });
    }
    return Number(v);
  }
  str(what: string): string {
    const len = this.u64n(`${what} (string length)`);
    this.need(len, `${what} (${len}-byte string)`);
    const s = utf8.decode(this.bytes.subarray(this.pos, this.pos + len));
    this.pos += len;
    return s;
  }
}

function corrupt(fileName: string, msg: string, details: Record<string, unknown> = {}): PrismError {
  return new PrismError("PRISM_GGUF_CORRUPT", `${fileName}: ${msg}`, { file: fileName, ...details });
}

function readScalar(c: Cursor, type: number, what: string): number | bigint | boolean {
  const size = SCALAR_BYTES[type];
  if (size === undefined) throw corrupt(c.fileName, `${what} has unknown value type ${type}`, { what, type });
  c.need(size, what);
  const v = c.view;
  const p = c.pos;
  c.pos += size;
  switch (type) {
    case GgufValueType.U8:
      return v.getUint8(p);
    case GgufValueType.I8:
      return v.getInt8(p);
    case GgufValueType.U16:
      return v.getUint16(p, true);
    case GgufValueType.I16:
      return v.getInt16(p, true);
    case GgufValueType.U32:
      return v.getUint32(p, true);
    case GgufValueType.I32:
      return v.getInt32(p, true);
    case GgufValueType.F32:
      return v.getFloat32(p, true);
    case GgufValueType.BOOL:
      return v.getUint8(p) !== 0;
    case GgufValueType.U64:
      return v.getBigUint64(p, true);
    case GgufValueType.I64:
      return v.getBigInt64(p, true);
    default:
      return v.getFloat64(p, true);
  }
}

/** Copies `count` little-endian elements into a fresh typed array (the source may be unaligned). */
function readNumericArray(c: Cursor, type: number, count: number, what: string): GgufValue {
  const size = SCALAR_BYTES[type]!;
  c.need(count * size, `${what} (${count} elements)`);
  const start = c.pos;
  c.pos += count * size;
  // Copy the raw bytes into an aligned buffer, then view them (the host is little-endian like GGUF).
  // (Uint8Array.prototype.slice: a Node Buffer's own slice() would return a view of a shared pool.)
  const raw = Uint8Array.prototype.slice.call(c.bytes, start, start + count * size).buffer;
  switch (type) {
    case GgufValueType.U8:
      return new Uint8Array(raw);
    case GgufValueType.I8:
      return new Int8Array(raw);
    case GgufValueType.U16:
      return new Uint16Array(raw);
    case GgufValueType.I16:
      return new Int16Array(raw);
    case GgufValueType.U32:
      return new Uint32Array(raw);
    case GgufValueType.I32:
      return new Int32Array(raw);
    case GgufValueType.F32:
      return new Float32Array(raw);
    case GgufValueType.U64:
      return new BigUint64Array(raw);
    case GgufValueType.I64:
      return new BigInt64Array(raw);
    default:
      return new Float64Array(raw);
  }
}

function readValue(c: Cursor, type: number, what: string, depth: number): { value: GgufValue; info: GgufValueTypeInfo } {
  if (type === GgufValueType.STRING) return { value: c.str(what), info: { type } };
  if (type !== GgufValueType.ARRAY) {
    return { value: readScalar(c, type, what), info: { type: type as GgufValueTypeId } };
  }
  if (depth > 8) throw corrupt(c.fileName, `${what}: arrays nested too deeply`, { what });
  const elem = c.u32(`${what} (array element type)`);
  const count = c.u64n(`${what} (array length)`);
  const info: GgufValueTypeInfo = { type: GgufValueType.ARRAY, elem: elem as GgufValueTypeId };
  if (elem === GgufValueType.STRING) {
    // Each string needs at least its 8-byte length: reject absurd counts before allocating.
    c.need(count * 8, `${what} (${count} strings)`);
    const out: string[] = new Array<string>(count);
    for (let i = 0; i < count; i++) out[i] = c.str(`${what}[${i}]`);
    return { value: out, info };
  }
  if (elem === GgufValueType.BOOL) {
    c.need(count, `${what} (${count} bools)`);
    const out: boolean[] = new Array<boolean>(count);
    for (let i = 0; i < count; i++) out[i] = c.bytes[c.pos + i] !== 0;
    c.pos += count;
    return { value: out, info };
  }
  if (elem === GgufValueType.ARRAY) {
    c.need(count * 12, `${what} (${count} nested arrays)`);
    const out: GgufValue[] = [];
    for (let i = 0; i < count; i++) out.push(readValue(c, elem, `${what}[${i}]`, depth + 1).value);
    return { value: out, info };
  }
  if (SCALAR_BYTES[elem] === undefined) {
    throw corrupt(c.fileName, `${what} is an array of unknown value type ${elem}`, { what, type: elem });
  }
  return { value: readNumericArray(c, elem, count, what), info };
}

/**
 * Parses a GGUF file held in memory. Accepts versions 2 and 3 (same layout with u64 counts); rejects v1.
 * Throws PRISM_GGUF_BAD_MAGIC, _UNSUPPORTED_VERSION, _TRUNCATED (naming the field or tensor), _UNSUPPORTED_TYPE
 * (naming tensor and type) or _CORRUPT (bad alignment, duplicate names, out-of-range or overlapping tensor data).
 */
export function parseGguf(input: Uint8Array, fileName: string, opts: ParseGgufOptions = {}): GgufFile {
  // A plain Uint8Array view (no copy): a Node Buffer's slice() shares memory, a trap for code holding f.bytes.
  const bytes = input.constructor === Uint8Array ? input : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  const c = new Cursor(bytes, fileName);
  if (bytes.byteLength < 4) {
    throw new PrismError("PRISM_GGUF_BAD_MAGIC", `${fileName}: not a GGUF file (only ${bytes.byteLength} bytes)`, { file: fileName });
  }
  const magic = c.u32("magic");
  if (magic !== GGUF_MAGIC) {
    const shown = Array.from(bytes.subarray(0, 4), (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`)).join("");
    throw new PrismError("PRISM_GGUF_BAD_MAGIC", `${fileName}: not a GGUF file (magic "${shown}", expected "GGUF")`, { file: fileName });
  }
  const version = c.u32("version");
  if (version !== 2 && version !== 3) {
    throw new PrismError("PRISM_GGUF_UNSUPPORTED_VERSION", `${fileName}: GGUF version ${version} is not supported (supported: 2, 3)`, {
      file: fileName,
      version,
    });
  }
  const tensorCount = c.u64n("tensor count");
  const kvCount = c.u64n("metadata count");

  const metadata = new Map<string, GgufValue>();
  const metadataTypes = new Map<string, GgufValueTypeInfo>();
  for (let i = 0; i < kvCount; i++) {
    const key = c.str(`metadata key #${i}`);
    if (metadata.has(key)) throw corrupt(fileName, `duplicate metadata key '${key}'`, { key });
    const type = c.u32(`type of metadata '${key}'`);
    const { value, info } = readValue(c, type, `metadata '${key}'`, 0);
    metadata.set(key, value);
    metadataTypes.set(key, info);
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const alignValue = metadata.get("general.alignment");
  if (alignValue !== undefined) {
    if (typeof alignValue !== "number" || metadataTypes.get("general.alignment")?.type !== GgufValueType.U32) {
      throw corrupt(fileName, `general.alignment must be a u32`);
    }
    if (alignValue === 0 || (alignValue & (alignValue - 1)) !== 0) {
      throw corrupt(fileName, `general.alignment = ${alignValue} is not a power of two`);
    }
    alignment = alignValue;
  }

  interface RawTensor {
    name: string;
    dims: number[];
    type: number;
    rel: number;
    numElements: number;
    byteLength: number;
  }
  const raw: RawTensor[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const name = c.str(`name of tensor #${i}`);
    const what = `tensor #${i} '${name}'`;
    if (seen.has(name)) throw corrupt(fileName, `duplicate tensor name '${name}'`, { tensor: name });
    seen.add(name);
    const nDims = c.u32(`${what} dimension count`);
    if (nDims < 1 || nDims > MAX_DIMS) throw corrupt(fileName, `${what} has ${nDims} dimensions (1..${MAX_DIMS} allowed)`, { tensor: name });
    const dims: number[] = [];
    let numElements = 1;
    for (let d = 0; d < nDims; d++) {
      const n = c.u64n(`${what} dims[${d}]`);
      dims.push(n);
      numElements *= n;
    }
    if (!Number.isSafeInteger(numElements)) throw corrupt(fileName, `${what} has too many elements (${dims.join("×")})`, { tensor: name });
    const type = c.u32(`${what} type`);
    const rel = c.u64n(`${what} offset`);
    const info = GGML_TYPE_INFO.get(type);
    if (info === undefined || (!isSupportedGgmlType(type) && opts.allowAnyType !== true)) {
      throw new PrismError(
        "PRISM_GGUF_UNSUPPORTED_TYPE",
        `${fileName}: ${what} has tensor type ${ggmlTypeName(type)} (id ${type}); Prism supports F32, F16 and Q8_0`,
        { file: fileName, tensor: name, type },
      );
    }
    if ((dims[0] ?? 0) % info.blockValues !== 0) {
      throw corrupt(fileName, `${what}: row length ${dims[0]} is not a multiple of the ${info.name} block size ${info.blockValues}`, {
        tensor: name,
      });
    }
    if (rel % alignment !== 0) throw corrupt(fileName, `${what}: data offset ${rel} is not a multiple of the alignment ${alignment}`, { tensor: name });
    raw.push({ name, dims, type, rel, numElements, byteLength: (numElements / info.blockValues) * info.blockBytes });
  }

  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  const fileBytes = opts.fileBytes ?? bytes.byteLength;
  if (tensorCount > 0 && dataOffset > fileBytes) {
    throw new PrismError("PRISM_GGUF_TRUNCATED", `${fileName}: truncated before the data section (starts at byte ${dataOffset}, file is ${fileBytes} bytes)`, {
      file: fileName,
    });
  }
  const tensors: GgufTensorInfo[] = [];
  const tensorByName = new Map<string, GgufTensorInfo>();
  for (const t of raw) {
    const offset = dataOffset + t.rel;
    if (offset + t.byteLength > fileBytes) {
      throw new PrismError(
        "PRISM_GGUF_TRUNCATED",
        `${fileName}: data of tensor '${t.name}' (bytes ${offset}..${offset + t.byteLength}) extends past the end of the file (${fileBytes} bytes)`,
        { file: fileName, tensor: t.name },
      );
    }
    const info: GgufTensorInfo = { name: t.name, dims: t.dims, type: t.type, offset, byteLength: t.byteLength, numElements: t.numElements };
    tensors.push(info);
    tensorByName.set(t.name, info);
  }
  const byOffset = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1]!;
    const cur = byOffset[i]!;
    if (prev.offset + prev.byteLength > cur.offset) {
      throw corrupt(fileName, `data of tensors '${prev.name}' and '${cur.name}' overlap (bytes ${cur.offset}..${prev.offset + prev.byteLength})`, {
        tensor: cur.name,
      });
    }
  }
  return { fileName, version, alignment, metadata, metadataTypes, tensors, tensorByName, dataOffset, bytes };
}

/**
 * Reads only as much of a GGUF file as its metadata and tensor infos need (growing the read until the parse
 * gets past them) and parses that: vocabulary, config and tensor shapes without the weights.
 */
export function readGgufHeaderSync(path: string, opts: Omit<ParseGgufOptions, "fileBytes"> = {}, firstReadBytes = 4 << 20): GgufFile {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") throw new PrismError("PRISM_FILE_NOT_FOUND", `${path}: no such GGUF file`, { file: path });
    throw e;
  }
  try {
    const size = fstatSync(fd).size;
    for (let want = Math.min(size, Math.max(64, firstReadBytes)); ; want = Math.min(size, want * 4)) {
      const buf = new Uint8Array(want);
      let got = 0;
      while (got < want) {
        const n = readSync(fd, buf, got, want - got, got);
        if (n === 0) break;
        got += n;
      }
      try {
        return parseGguf(buf.subarray(0, got), path, { ...opts, fileBytes: size });
      } catch (e) {
        // a header longer than what was read looks truncated: read more, unless this was the whole file
        if (isPrismError(e) && e.code === "PRISM_GGUF_TRUNCATED" && got < size) continue;
        throw e;
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Reads and parses a GGUF file; PRISM_FILE_NOT_FOUND when it does not exist. */
export async function readGgufFile(path: string, opts: ParseGgufOptions = {}): Promise<GgufFile> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") {
      throw new PrismError("PRISM_FILE_NOT_FOUND", `${path}: no such GGUF file`, { file: path });
    }
    throw e;
  }
  return parseGguf(bytes, path, opts);
}

/** The bytes of one tensor (a view into f.bytes; no copy). */
export function tensorBytes(f: GgufFile, t: GgufTensorInfo): Uint8Array {
  return f.bytes.subarray(t.offset, t.offset + t.byteLength);
}

// ---- typed metadata getters (throw PRISM_GGUF_MISSING / PRISM_GGUF_CORRUPT naming the key) ----

function missing(f: GgufFile, key: string): PrismError {
  return new PrismError("PRISM_GGUF_MISSING", `${f.fileName}: metadata key '${key}' is missing`, { file: f.fileName, key });
}

/** A numeric scalar (any integer or float type; u64/i64 must be a safe integer). */
export function metaNumber(f: GgufFile, key: string): number;
export function metaNumber(f: GgufFile, key: string, fallback: number): number;
export function metaNumber(f: GgufFile, key: string, fallback?: number): number {
  const v = f.metadata.get(key);
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw missing(f, key);
  }
  if (typeof v === "number") return v;
  if (typeof v === "bigint" && v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  throw corrupt(f.fileName, `metadata '${key}' should be a number, is ${describe(v)}`, { key });
}

export function metaString(f: GgufFile, key: string): string;
export function metaString(f: GgufFile, key: string, fallback: string | null): string | null;
export function metaString(f: GgufFile, key: string, fallback?: string | null): string | null {
  const v = f.metadata.get(key);
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw missing(f, key);
  }
  if (typeof v === "string") return v;
  throw corrupt(f.fileName, `metadata '${key}' should be a string, is ${describe(v)}`, { key });
}

export function metaBool(f: GgufFile, key: string, fallback: boolean): boolean {
  const v = f.metadata.get(key);
  if (v === undefined) return fallback;
  if (typeof v === "boolean") return v;
  throw corrupt(f.fileName, `metadata '${key}' should be a bool, is ${describe(v)}`, { key });
}

export function metaStrings(f: GgufFile, key: string): string[] {
  const v = f.metadata.get(key);
  if (v === undefined) throw missing(f, key);
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v as string[];
  throw corrupt(f.fileName, `metadata '${key}' should be an array of strings, is ${describe(v)}`, { key });
}

/** A numeric array as Float64-safe numbers (typed arrays of any non-bigint element type). */
export function metaNumbers(f: GgufFile, key: string): ArrayLike<number> | null {
  const v = f.metadata.get(key);
  if (v === undefined) return null;
  if (ArrayBuffer.isView(v) && !(v instanceof BigInt64Array) && !(v instanceof BigUint64Array)) return v as ArrayLike<number>;
  if (Array.isArray(v) && v.length === 0) return [];
  throw corrupt(f.fileName, `metadata '${key}' should be a numeric array, is ${describe(v)}`, { key });
}

function describe(v: GgufValue): string {
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name} of ${(v as { length: number }).length}`;
  return `${typeof v} ${JSON.stringify(typeof v === "bigint" ? v.toString() : v)}`;
}

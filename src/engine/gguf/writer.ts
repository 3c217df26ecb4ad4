/**
 * GGUF v3 writer (engine.md §2.2): header, metadata, tensor directory, padding to the alignment, then each tensor's
 * data padded to the alignment. Emits the same layout as llama.cpp's gguf writer, so a file parsed with parseGguf and
 * re-written with ggufToWriterInput comes back byte-identical.
 */
import { PrismError } from "../../core/errors.ts";
import {
  GGML_TYPE_INFO,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VERSION,
  GgufValueType,
  ggmlTypeName,
  type GgufBigKind,
  type GgufFile,
  type GgufNumberKind,
  type GgufValue,
  type GgufValueTyped,
  type GgufValueTypeId,
} from "./types.ts";

export interface GgufWriterTensor {
  readonly name: string;
  /** ggml order: dims[0] = row length. */
  readonly dims: readonly number[];
  readonly type: number;
  /** Exactly the tensor's encoded bytes. */
  readonly data: Uint8Array;
}

export interface GgufWriterInput {
  /** In the order they are written. Add ["general.alignment", gv.u32(n)] yourself to record a non-default alignment. */
  readonly metadata: readonly (readonly [string, GgufValueTyped])[];
  readonly tensors: readonly GgufWriterTensor[];
  /** Default 32 (or general.alignment when present in metadata). */
  readonly alignment?: number;
}

const KIND_TYPE: Readonly<Record<GgufNumberKind | GgufBigKind | "bool" | "string", GgufValueTypeId>> = {
  u8: GgufValueType.U8,
  i8: GgufValueType.I8,
  u16: GgufValueType.U16,
  i16: GgufValueType.I16,
  u32: GgufValueType.U32,
  i32: GgufValueType.I32,
  f32: GgufValueType.F32,
  f64: GgufValueType.F64,
  u64: GgufValueType.U64,
  i64: GgufValueType.I64,
  bool: GgufValueType.BOOL,
  string: GgufValueType.STRING,
};
const KIND_BYTES: Readonly<Record<GgufNumberKind | GgufBigKind | "bool", number>> = {
  u8: 1,
  i8: 1,
  u16: 2,
  i16: 2,
  u32: 4,
  i32: 4,
  f32: 4,
  f64: 8,
  u64: 8,
  i64: 8,
  bool: 1,
};

const utf8 = new TextEncoder();

/** Growable little-endian byte sink. */
class Sink {
  buf = new Uint8Array(1 << 16);
  view = new DataView(this.buf.buffer);
  pos = 0;
  reserve(n: number): void {
    if (this.pos + n <= this.buf.byteLength) return;
    let cap = this.buf.byteLength * 2;
    while (cap < this.pos + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
  }
  u64(v: number): void {
    this.reserve(8);
    this.view.setBigUint64(this.pos, BigInt(v), true);
    this.pos += 8;
  }
  bytes(b: Uint8Array): void {
    this.reserve(b.byteLength);
    this.buf.set(b, this.pos);
    this.pos += b.byteLength;
  }
  str(s: string): void {
    const b = utf8.encode(s);
    this.u64(b.byteLength);
    this.bytes(b);
  }
  pad(alignment: number): void {
    const target = Math.ceil(this.pos / alignment) * alignment;
    this.reserve(target - this.pos);
    this.buf.fill(0, this.pos, target);
    this.pos = target;
  }
  scalar(kind: GgufNumberKind | GgufBigKind | "bool", v: number | bigint | boolean): void {
    this.reserve(8);
    const d = this.view;
    const p = this.pos;
    switch (kind) {
      case "u8":
        d.setUint8(p, v as number);
        break;
      case "i8":
        d.setInt8(p, v as number);
        break;
      case "u16":
        d.setUint16(p, v as number, true);
        break;
      case "i16":
        d.setInt16(p, v as number, true);
        break;
      case "u32":
        d.setUint32(p, v as number, true);
        break;
      case "i32":
        d.setInt32(p, v as number, true);
        break;
      case "f32":
        d.setFloat32(p, v as number, true);
        break;
      case "f64":
        d.setFloat64(p, v as number, true);
        break;
      case "u64":
        d.setBigUint64(p, v as bigint, true);
        break;
      case "i64":
        d.setBigInt64(p, v as bigint, true);
        break;
      case "bool":
        d.setUint8(p, v ? 1 : 0);
        break;
    }
    this.pos += KIND_BYTES[kind];
  }
}

function writeValue(s: Sink, key: string, v: GgufValueTyped): void {
  if (v.kind === "array") {
    s.u32(GgufValueType.ARRAY);
    s.u32(KIND_TYPE[v.elem]);
    s.u64(v.values.length);
    if (v.elem === "string") {
      for (const x of v.values as readonly string[]) s.str(x);
      return;
    }
    const kind = v.elem;
    const values = v.values as ArrayLike<number | bigint | boolean>;
    s.reserve(values.length * KIND_BYTES[kind]);
    for (let i = 0; i < values.length; i++) s.scalar(kind, values[i]!);
    return;
  }
  s.u32(KIND_TYPE[v.kind]);
  if (v.kind === "string") {
    s.str(v.value);
    return;
  }
  if ((v.kind === "u64" || v.kind === "i64") !== (typeof v.value === "bigint")) {
    throw new PrismError("PRISM_INTERNAL", `writeGguf: metadata '${key}' of kind ${v.kind} has a ${typeof v.value} value`);
  }
  s.scalar(v.kind, v.value);
}

/** Serialises a GGUF v3 file. Throws PRISM_INTERNAL when a tensor's data length does not match its dims and type. */
export function writeGguf(w: GgufWriterInput): Uint8Array {
  const alignEntry = w.metadata.find(([k]) => k === "general.alignment");
  const alignment = w.alignment ?? (alignEntry !== undefined && alignEntry[1].kind === "u32" ? alignEntry[1].value : GGUF_DEFAULT_ALIGNMENT);
  if (alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    throw new PrismError("PRISM_INTERNAL", `writeGguf: alignment ${alignment} is not a power of two`);
  }
  const s = new Sink();
  s.u32(GGUF_MAGIC);
  s.u32(GGUF_VERSION);
  s.u64(w.tensors.length);
  s.u64(w.metadata.length);
  for (const [key, value] of w.metadata) {
    s.str(key);
    writeValue(s, key, value);
  }
  let rel = 0;
  for (const t of w.tensors) {
    const info = GGML_TYPE_INFO.get(t.type);
    if (info === undefined) throw new PrismError("PRISM_INTERNAL", `writeGguf: tensor '${t.name}' has unknown type ${t.type}`);
    const numElements = t.dims.reduce((a, b) => a * b, 1);
    const expected = ((t.dims[0] ?? 0) % info.blockValues === 0) ? (numElements / info.blockValues) * info.blockBytes : -1;
    if (expected !== t.data.byteLength) {
      throw new PrismError(
        "PRISM_INTERNAL",
        `writeGguf: tensor '${t.name}' (${ggmlTypeName(t.type)} [${t.dims.join(", ")}]) has ${t.data.byteLength} data bytes, expected ${expected}`,
      );
    }
    s.str(t.name);
    s.u32(t.dims.length);
    for (const d of t.dims) s.u64(d);
    s.u32(t.type);
    s.u64(rel);
    rel += Math.ceil(t.data.byteLength / alignment) * alignment;
  }
  s.pad(alignment);
  s.reserve(rel);
  for (const t of w.tensors) {
    s.bytes(t.data);
    s.pad(alignment);
  }
  return s.buf.slice(0, s.pos);
}

const TYPE_KIND: Readonly<Record<number, GgufNumberKind | GgufBigKind | "bool" | "string">> = Object.fromEntries(
  Object.entries(KIND_TYPE).map(([k, t]) => [t, k as GgufNumberKind]),
);

/**
 * The writer input that reproduces a parsed file (metadata with their declared types, tensors in file order).
 * Nested arrays are not supported by the writer and throw.
 */
export function ggufToWriterInput(f: GgufFile): GgufWriterInput {
  const metadata: [string, GgufValueTyped][] = [];
  for (const [key, value] of f.metadata) {
    const info = f.metadataTypes.get(key)!;
    metadata.push([key, typedValue(key, value, info.type, info.elem)]);
  }
  const tensors = f.tensors.map((t) => ({ name: t.name, dims: t.dims, type: t.type, data: f.bytes.subarray(t.offset, t.offset + t.byteLength) }));
  return { metadata, tensors, alignment: f.alignment };
}

function typedValue(key: string, value: GgufValue, type: number, elem: number | undefined): GgufValueTyped {
  if (type === GgufValueType.ARRAY) {
    const ek = elem === undefined ? undefined : TYPE_KIND[elem];
    if (ek === undefined) throw new PrismError("PRISM_INTERNAL", `ggufToWriterInput: '${key}' holds nested arrays, which the writer does not support`);
    if (ek === "string") return { kind: "array", elem: ek, values: value as string[] };
    if (ek === "bool") return { kind: "array", elem: ek, values: value as boolean[] };
    if (ek === "u64" || ek === "i64") return { kind: "array", elem: ek, values: value as ArrayLike<bigint> };
    return { kind: "array", elem: ek, values: value as ArrayLike<number> };
  }
  const k = TYPE_KIND[type]!;
  if (k === "string") return { kind: k, value: value as string };
  if (k === "bool") return { kind: k, value: value as boolean };
  if (k === "u64" || k === "i64") return { kind: k, value: value as bigint };
  return { kind: k, value: value as number };
}

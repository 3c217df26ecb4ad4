/**
 * GGUF v3 vocabulary shared by the reader, the writer, the llama2.c converter and the random-model generator.
 * Layout notes: ../shared/reference/engine.md §2.2 (all little-endian; dims in ggml order, dims[0] = row length).
 */

/** The tensor types Prism reads and writes. Other ggml ids are recognised by name only (see GGML_TYPE_INFO). */
export const GgmlType = { F32: 0, F16: 1, Q8_0: 8 } as const;
export type GgmlTypeId = (typeof GgmlType)[keyof typeof GgmlType];

/** Values per Q8_0 block and bytes per block (f16 scale + 32 × int8). */
export const Q8_0_BLOCK_VALUES = 32;
export const Q8_0_BLOCK_BYTES = 34;

export interface GgmlTypeInfo {
  readonly name: string;
  /** Values per block (1 for plain types). */
  readonly blockValues: number;
  /** Bytes per block. */
  readonly blockBytes: number;
}

/**
 * Every ggml type id llama.cpp (release v0.4.0 era) knows, so errors can name what a file holds. Block geometry is
 * listed so `parseGguf(..., { allowAnyType: true })` can still lay out and range-check such tensors.
 */
export const GGML_TYPE_INFO: ReadonlyMap<number, GgmlTypeInfo> = new Map<number, GgmlTypeInfo>([
  [0, { name: "F32", blockValues: 1, blockBytes: 4 }],
  [1, { name: "F16", blockValues: 1, blockBytes: 2 }],
  [2, { name: "Q4_0", blockValues: 32, blockBytes: 18 }],
  [3, { name: "Q4_1", blockValues: 32, blockBytes: 20 }],
  [6, { name: "Q5_0", blockValues: 32, blockBytes: 22 }],
  [7, { name: "Q5_1", blockValues: 32, blockBytes: 24 }],
  [8, { name: "Q8_0", blockValues: 32, blockBytes: 34 }],
  [9, { name: "Q8_1", blockValues: 32, blockBytes: 36 }],
  [10, { name: "Q2_K", blockValues: 256, blockBytes: 84 }],
  [11, { name: "Q3_K", blockValues: 256, blockBytes: 110 }],
  [12, { name: "Q4_K", blockValues: 256, blockBytes: 144 }],
  [13, { name: "Q5_K", blockValues: 256, blockBytes: 176 }],
  [14, { name: "Q6_K", blockValues: 256, blockBytes: 210 }],
  [15, { name: "Q8_K", blockValues: 256, blockBytes: 292 }],
  [16, { name: "IQ2_XXS", blockValues: 256, blockBytes: 66 }],
  [17, { name: "IQ2_XS", blockValues: 256, blockBytes: 74 }],
  [18, { name: "IQ3_XXS", blockValues: 256, blockBytes: 98 }],
  [19, { name: "IQ1_S", blockValues: 256, blockBytes: 50 }],
  [20, { name: "IQ4_NL", blockValues: 32, blockBytes: 18 }],
  [21, { name: "IQ3_S", blockValues: 256, blockBytes: 110 }],
  [22, { name: "IQ2_S", blockValues: 256, blockBytes: 82 }],
  [23, { name: "IQ4_XS", blockValues: 256, blockBytes: 136 }],
  [24, { name: "I8", blockValues: 1, blockBytes: 1 }],
  [25, { name: "I16", blockValues: 1, blockBytes: 2 }],
  [26, { name: "I32", blockValues: 1, blockBytes: 4 }],
  [27, { name: "I64", blockValues: 1, blockBytes: 8 }],
  [28, { name: "F64", blockValues: 1, blockBytes: 8 }],
  [29, { name: "IQ1_M", blockValues: 256, blockBytes: 56 }],
  [30, { name: "BF16", blockValues: 1, blockBytes: 2 }],
  [34, { name: "TQ1_0", blockValues: 256, blockBytes: 54 }],
  [35, { name: "TQ2_0", blockValues: 256, blockBytes: 66 }],
  [39, { name: "MXFP4", blockValues: 32, blockBytes: 17 }],
]);

/** True for the types Prism's engine can load. */
export function isSupportedGgmlType(type: number): type is GgmlTypeId {
  return type === GgmlType.F32 || type === GgmlType.F16 || type === GgmlType.Q8_0;
}

/** "F32", "Q4_K", or "unknown type 99". */
export function ggmlTypeName(type: number): string {
  return GGML_TYPE_INFO.get(type)?.name ?? `unknown type ${type}`;
}

/** Bytes of a tensor with `numElements` values whose row length is a multiple of the block size. */
export function ggmlTensorBytes(type: number, numElements: number): number {
  const info = GGML_TYPE_INFO.get(type);
  if (info === undefined) throw new Error(`ggmlTensorBytes: unknown ggml type ${type}`);
  return (numElements / info.blockValues) * info.blockBytes;
}

/** GGUF metadata value type ids (gguf.h `enum gguf_type`). */
export const GgufValueType = {
  U8: 0,
  I8: 1,
  U16: 2,
  I16: 3,
  U32: 4,
  I32: 5,
  F32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  U64: 10,
  I64: 11,
  F64: 12,
} as const;
export type GgufValueTypeId = (typeof GgufValueType)[keyof typeof GgufValueType];

/**
 * A metadata value as read. Scalars: u8..u32, i8..i32, f32, f64 → number; u64/i64 → bigint; bool → boolean;
 * string → string. Arrays: numeric element types come back as typed arrays (Uint8Array, Int8Array, Uint16Array,
 * Int16Array, Uint32Array, Int32Array, Float32Array, Float64Array, BigUint64Array, BigInt64Array — copies, safe to
 * keep); string and bool arrays as plain arrays; nested arrays as GgufValue[]. The element type of every array is kept
 * in GgufFile.metadataTypes.
 */
export type GgufNumericArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigUint64Array
  | BigInt64Array;
export type GgufValue = number | bigint | boolean | string | GgufNumericArray | GgufValue[];

/** The declared type of one metadata value (elem set for arrays). */
export interface GgufValueTypeInfo {
  readonly type: GgufValueTypeId;
  readonly elem?: GgufValueTypeId;
}

/** Numeric kinds held in a JS number / bigint; the writer uses these names. */
export type GgufNumberKind = "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "f64";
export type GgufBigKind = "u64" | "i64";

/**
 * A metadata value for the writer, with its GGUF type explicit. Build them with the `gv` helpers:
 * `["llama.block_count", gv.u32(5)]`, `["tokenizer.ggml.scores", gv.f32s(scores)]`.
 */
export type GgufValueTyped =
  | { readonly kind: GgufNumberKind; readonly value: number }
  | { readonly kind: GgufBigKind; readonly value: bigint }
  | { readonly kind: "bool"; readonly value: boolean }
  | { readonly kind: "string"; readonly value: string }
  | { readonly kind: "array"; readonly elem: GgufNumberKind; readonly values: ArrayLike<number> }
  | { readonly kind: "array"; readonly elem: GgufBigKind; readonly values: ArrayLike<bigint> }
  | { readonly kind: "array"; readonly elem: "bool"; readonly values: readonly boolean[] }
  | { readonly kind: "array"; readonly elem: "string"; readonly values: readonly string[] };

export const gv = {
  u8: (value: number): GgufValueTyped => ({ kind: "u8", value }),
  i8: (value: number): GgufValueTyped => ({ kind: "i8", value }),
  u16: (value: number): GgufValueTyped => ({ kind: "u16", value }),
  i16: (value: number): GgufValueTyped => ({ kind: "i16", value }),
  u32: (value: number): GgufValueTyped => ({ kind: "u32", value }),
  i32: (value: number): GgufValueTyped => ({ kind: "i32", value }),
  f32: (value: number): GgufValueTyped => ({ kind: "f32", value }),
  f64: (value: number): GgufValueTyped => ({ kind: "f64", value }),
  u64: (value: bigint): GgufValueTyped => ({ kind: "u64", value }),
  i64: (value: bigint): GgufValueTyped => ({ kind: "i64", value }),
  bool: (value: boolean): GgufValueTyped => ({ kind: "bool", value }),
  str: (value: string): GgufValueTyped => ({ kind: "string", value }),
  u32s: (values: ArrayLike<number>): GgufValueTyped => ({ kind: "array", elem: "u32", values }),
  i32s: (values: ArrayLike<number>): GgufValueTyped => ({ kind: "array", elem: "i32", values }),
  f32s: (values: ArrayLike<number>): GgufValueTyped => ({ kind: "array", elem: "f32", values }),
  strs: (values: readonly string[]): GgufValueTyped => ({ kind: "array", elem: "string", values }),
  bools: (values: readonly boolean[]): GgufValueTyped => ({ kind: "array", elem: "bool", values }),
} as const;

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** One tensor's directory entry. `offset` is absolute (data section start + relative offset). */
export interface GgufTensorInfo {
  readonly name: string;
  /** ggml order: dims[0] = row length (inner dimension). A row-major [out][in] matrix has dims [in, out]. */
  readonly dims: readonly number[];
  readonly type: number;
  /** Absolute byte offset of the tensor's data in the file. */
  readonly offset: number;
  readonly byteLength: number;
  readonly numElements: number;
}

export interface GgufFile {
  /** The name errors use (a path or a label). */
  readonly fileName: string;
  readonly version: number;
  readonly alignment: number;
  readonly metadata: Map<string, GgufValue>;
  /** Declared GGUF type of each metadata value (for `model info` and exact re-writing). */
  readonly metadataTypes: Map<string, GgufValueTypeInfo>;
  /** In file order. */
  readonly tensors: GgufTensorInfo[];
  readonly tensorByName: Map<string, GgufTensorInfo>;
  /** Absolute offset of the (aligned) data section. */
  readonly dataOffset: number;
  /** The whole file. Tensor data is `bytes.subarray(t.offset, t.offset + t.byteLength)`. */
  readonly bytes: Uint8Array;
}

/** Llama-vocabulary token types (tokenizer.ggml.token_type; llama.cpp `llama_token_type`). */
export const TokenType = {
  UNDEFINED: 0,
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

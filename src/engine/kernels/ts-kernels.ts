/**
 * Scalar TypeScript kernels: the same math as the WASM kernels (same block structure for Q8_0_R4,
 * same f16 decode, same rope angles), used to cross-check the WASM build in tests and as the
 * fallback where WebAssembly SIMD is missing. Dot products accumulate in f64 (JS numbers), so
 * results differ from WASM's f32 lanes by rounding only.
 */
import type { Kernels } from "./types.ts";
import { F16_TO_F32, quantizeActivationsQ8 } from "./f16.ts";
import { r4ScaleOffset, r4ValueOffset } from "./q8-layout.ts";

// Local copies of WType values: this module must not import values from types.ts (types.ts
// re-exports this module, and a value import would make the evaluation order matter).
const F32 = 0;
const F16 = 1;
const Q8_0_R4 = 108;

type Backing = WebAssembly.Memory | ArrayBuffer | SharedArrayBuffer;

class TsKernels implements Kernels {
  readonly name = "ts" as const;
  private readonly memory: WebAssembly.Memory | null;
  private buffer: ArrayBuffer | SharedArrayBuffer;
  private f32: Float32Array;
  private i32: Int32Array;
  private u32: Uint32Array;
  private u16: Uint16Array;
  private i16: Int16Array;
  private u8: Uint8Array;
  private i8: Int8Array;
  /** cos/sin of the current row's rope angles (headDim/2 each), grown on demand. */
  private ropeCos = new Float64Array(64);
  private ropeSin = new Float64Array(64);
  /** One x row quantised for the Q8_0_R4 matmul (integer values, per-block scales), grown on demand. */
  private xq = new Int8Array(0);
  private xd = new Float32Array(0);

  constructor(backing: Backing) {
    this.memory = backing instanceof WebAssembly.Memory ? backing : null;
    this.buffer = backing instanceof WebAssembly.Memory ? backing.buffer : backing;
    this.f32 = new Float32Array(this.buffer);
    this.i32 = new Int32Array(this.buffer);
    this.u32 = new Uint32Array(this.buffer);
    this.u16 = new Uint16Array(this.buffer);
    this.i16 = new Int16Array(this.buffer);
    this.u8 = new Uint8Array(this.buffer);
    this.i8 = new Int8Array(this.buffer);
  }

  /** Views detach when a WebAssembly.Memory grows; re-create them then (device memory never grows, tests may). */
  private sync(): void {
    if (this.memory === null || this.memory.buffer === this.buffer) return;
    this.buffer = this.memory.buffer;
    this.f32 = new Float32Array(this.buffer);
    this.i32 = new Int32Array(this.buffer);
    this.u32 = new Uint32Array(this.buffer);
    this.u16 = new Uint16Array(this.buffer);
    this.i16 = new Int16Array(this.buffer);
    this.u8 = new Uint8Array(this.buffer);
    this.i8 = new Int8Array(this.buffer);
  }

  matmul(outPtr: number, xPtr: number, wPtr: number, wType: number, numRows: number, inDim: number, outDim: number, oStart: number, oEnd: number): void {
    this.sync();
    const f32 = this.f32;
    for (let r = 0; r < numRows; r++) {
      const xBase = (xPtr >> 2) + r * inDim;
      const outBase = (outPtr >> 2) + r * outDim;
      if (wType === Q8_0_R4) {
        this.growRow(inDim);
        quantizeActivationsQ8(f32, xBase, inDim, this.xq, 0, this.xd, 0);
        for (let o = oStart; o < oEnd; o++) f32[outBase + o] = this.dotQ8(wPtr, o, inDim);
      } else {
        for (let o = oStart; o < oEnd; o++) f32[outBase + o] = this.dotRow(xBase, wPtr, wType, o, inDim);
      }
    }
  }

  quantizeQ8(xqPtr: number, xPtr: number, numRows: number, inDim: number): void {
    this.sync();
    const nb = inDim >> 5;
    this.growRow(inDim);
    const i16 = this.i16;
    const f32 = this.f32;
    const scales = (xqPtr >> 2) + ((numRows * inDim) >> 1);
    for (let r = 0; r < numRows; r++) {
      quantizeActivationsQ8(f32, (xPtr >> 2) + r * inDim, inDim, this.xq, 0, this.xd, 0);
      i16.set(this.xq.subarray(0, inDim), (xqPtr >> 1) + r * inDim);
      f32.set(this.xd.subarray(0, nb), scales + r * nb);
    }
  }

  matmulQ8(outPtr: number, xqPtr: number, wPtr: number, numRows: number, inDim: number, outDim: number, oStart: number, oEnd: number): void {
    this.sync();
    const nb = inDim >> 5;
    this.growRow(inDim);
    const i16 = this.i16;
    const f32 = this.f32;
    const scales = (xqPtr >> 2) + ((numRows * inDim) >> 1);
    for (let r = 0; r < numRows; r++) {
      for (let i = 0; i < inDim; i++) this.xq[i] = i16[(xqPtr >> 1) + r * inDim + i]!;
      for (let b = 0; b < nb; b++) this.xd[b] = f32[scales + r * nb + b]!;
      const outBase = (outPtr >> 2) + r * outDim;
      for (let o = oStart; o < oEnd; o++) f32[outBase + o] = this.dotQ8(wPtr, o, inDim);
    }
  }

  private growRow(inDim: number): void {
    if (this.xq.length >= inDim) return;
    this.xq = new Int8Array(inDim);
    this.xd = new Float32Array(inDim >> 5);
  }

  /**
   * Q8_0 × Q8_0 like the WASM kernel (and llama.cpp): the x row in xq/xd was quantised per
   * 32-block; each block's integer dot product with W row o is scaled by f32(dx · dw).
   */
  private dotQ8(wPtr: number, o: number, inDim: number): number {
    const u8 = this.u8;
    const i8 = this.i8;
    const xq = this.xq;
    const nb = inDim >> 5;
    let sum = 0;
    for (let b = 0; b < nb; b++) {
      const sAt = wPtr + r4ScaleOffset(inDim, o, b);
      const q = wPtr + r4ValueOffset(inDim, o, b << 5);
      const x = b << 5;
      let isum = 0;
      // Row o's values of block b: k-pair p at q + 8p (two bytes).
      for (let p = 0; p < 16; p++) isum += i8[q + 8 * p]! * xq[x + 2 * p]! + i8[q + 8 * p + 1]! * xq[x + 2 * p + 1]!;
      sum += isum * Math.fround(this.xd[b]! * F16_TO_F32[u8[sAt]! | (u8[sAt + 1]! << 8)]!);
    }
    return sum;
  }

  private dotRow(xBase: number, wPtr: number, wType: number, o: number, inDim: number): number {
    const f32 = this.f32;
    let sum = 0;
    if (wType === F32) {
      const w = (wPtr >> 2) + o * inDim;
      for (let i = 0; i < inDim; i++) sum += f32[xBase + i]! * f32[w + i]!;
    } else if (wType === F16) {
      const u16 = this.u16;
      const w = (wPtr >> 1) + o * inDim;
      for (let i = 0; i < inDim; i++) sum += f32[xBase + i]! * F16_TO_F32[u16[w + i]!]!;
    } else {
      throw new RangeError(`unknown weight type ${wType}`);
    }
    return sum;
  }

  argmax(ptr: number, n: number): number {
    this.sync();
    const f32 = this.f32;
    const base = ptr >> 2;
    let max = -Infinity;
    let arg = 0;
    for (let i = 0; i < n; i++) {
      const v = f32[base + i]!;
      if (v > max) {
        max = v;
        arg = i;
      }
    }
    return arg;
  }

  addBias(outPtr: number, biasPtr: number, numRows: number, dim: number): void {
    this.sync();
    const f32 = this.f32;
    const b = biasPtr >> 2;
    for (let r = 0; r < numRows; r++) {
      const o = (outPtr >> 2) + r * dim;
      for (let i = 0; i < dim; i++) f32[o + i]! += f32[b + i]!;
    }
  }

  rmsnorm(outPtr: number, xPtr: number, weightPtr: number, numRows: number, dim: number, eps: number): void {
    this.sync();
    const f32 = this.f32;
    const w = weightPtr >> 2;
    for (let r = 0; r < numRows; r++) {
      const x = (xPtr >> 2) + r * dim;
      const out = (outPtr >> 2) + r * dim;
      let ss = 0;
      for (let i = 0; i < dim; i++) ss += f32[x + i]! * f32[x + i]!;
      const inv = Math.fround(1 / Math.sqrt(Math.fround(ss / dim) + eps));
      for (let i = 0; i < dim; i++) f32[out + i] = Math.fround(f32[x + i]! * inv) * f32[w + i]!;
    }
  }

  ropeTable(tablePtr: number, positionsPtr: number, numRows: number, headDim: number, theta: number): void {
    this.sync();
    const f32 = this.f32;
    const half = headDim >> 1;
    for (let r = 0; r < numRows; r++) {
      const pos = this.i32[(positionsPtr >> 2) + r]!;
      const row = (tablePtr >> 2) + r * headDim;
      for (let j = 0; j < half; j++) {
        const angle = pos * Math.pow(theta, (-2 * j) / headDim);
        f32[row + 2 * j] = Math.cos(angle);
        f32[row + 2 * j + 1] = Math.sin(angle);
      }
    }
  }

  ropeApply(xPtr: number, numRows: number, numHeads: number, headDim: number, tablePtr: number): void {
    this.sync();
    const f32 = this.f32;
    const half = headDim >> 1;
    for (let r = 0; r < numRows; r++) {
      const t = (tablePtr >> 2) + r * headDim;
      const row = (xPtr >> 2) + r * numHeads * headDim;
      for (let h = 0; h < numHeads; h++) {
        const base = row + h * headDim;
        for (let j = 0; j < half; j++) {
          const c = f32[t + 2 * j]!;
          const s = f32[t + 2 * j + 1]!;
          const x0 = f32[base + 2 * j]!;
          const x1 = f32[base + 2 * j + 1]!;
          f32[base + 2 * j] = x0 * c - x1 * s;
          f32[base + 2 * j + 1] = x0 * s + x1 * c;
        }
      }
    }
  }

  rope(xPtr: number, numRows: number, numHeads: number, headDim: number, positionsPtr: number, theta: number): void {
    this.sync();
    const f32 = this.f32;
    const half = headDim >> 1;
    if (this.ropeCos.length < half) {
      this.ropeCos = new Float64Array(half);
      this.ropeSin = new Float64Array(half);
    }
    const cos = this.ropeCos;
    const sin = this.ropeSin;
    for (let r = 0; r < numRows; r++) {
      const pos = this.i32[(positionsPtr >> 2) + r]!;
      for (let j = 0; j < half; j++) {
        const angle = pos * Math.pow(theta, (-2 * j) / headDim);
        cos[j] = Math.fround(Math.cos(angle));
        sin[j] = Math.fround(Math.sin(angle));
      }
      const row = (xPtr >> 2) + r * numHeads * headDim;
      for (let h = 0; h < numHeads; h++) {
        const base = row + h * headDim;
        for (let j = 0; j < half; j++) {
          const x0 = f32[base + 2 * j]!;
          const x1 = f32[base + 2 * j + 1]!;
          f32[base + 2 * j] = x0 * cos[j]! - x1 * sin[j]!;
          f32[base + 2 * j + 1] = x0 * sin[j]! + x1 * cos[j]!;
        }
      }
    }
  }

  swiglu(outPtr: number, gatePtr: number, upPtr: number, n: number): void {
    this.sync();
    const f32 = this.f32;
    const o = outPtr >> 2;
    const g = gatePtr >> 2;
    const u = upPtr >> 2;
    for (let i = 0; i < n; i++) {
      const x = f32[g + i]!;
      f32[o + i] = (x / (1 + Math.exp(-x))) * f32[u + i]!;
    }
  }

  add(outPtr: number, xPtr: number, n: number): void {
    this.sync();
    const f32 = this.f32;
    const o = outPtr >> 2;
    const x = xPtr >> 2;
    for (let i = 0; i < n; i++) f32[o + i]! += f32[x + i]!;
  }

  getRow(outPtr: number, wPtr: number, wType: number, row: number, dim: number): void {
    this.sync();
    const f32 = this.f32;
    const out = outPtr >> 2;
    if (wType === F32) {
      f32.copyWithin(out, (wPtr >> 2) + row * dim, (wPtr >> 2) + (row + 1) * dim);
    } else if (wType === F16) {
      const w = (wPtr >> 1) + row * dim;
      for (let i = 0; i < dim; i++) f32[out + i] = F16_TO_F32[this.u16[w + i]!]!;
    } else if (wType === Q8_0_R4) {
      for (let b = 0; b < dim >> 5; b++) {
        const sAt = wPtr + r4ScaleOffset(dim, row, b);
        const d = F16_TO_F32[this.u8[sAt]! | (this.u8[sAt + 1]! << 8)]!;
        for (let k = b << 5; k < (b + 1) << 5; k++) f32[out + k] = d * this.i8[wPtr + r4ValueOffset(dim, row, k)]!;
      }
    } else {
      throw new RangeError(`unknown weight type ${wType}`);
    }
  }

  writeKv(kPtr: number, vPtr: number, blockOffsetsPtr: number, blockTokens: number, _numLayers: number, layer: number, kvDim: number, pos: number): void {
    this.sync();
    const block = this.u32[(blockOffsetsPtr >> 2) + Math.floor(pos / blockTokens)]!;
    const t = pos % blockTokens;
    const kDst = (block >> 2) + ((layer * 2) * blockTokens + t) * kvDim;
    const vDst = (block >> 2) + ((layer * 2 + 1) * blockTokens + t) * kvDim;
    this.f32.copyWithin(kDst, kPtr >> 2, (kPtr >> 2) + kvDim);
    this.f32.copyWithin(vDst, vPtr >> 2, (vPtr >> 2) + kvDim);
  }

  attentionRows(outPtr: number, qPtr: number, rowTablesPtr: number, rowBlockTokensPtr: number, positionsPtr: number, rowStart: number, rowEnd: number,
    numLayers: number, layer: number, numHeads: number, numKvHeads: number, headDim: number, scratchPtr: number, _scratchFloats: number, scale: number): void {
    this.sync();
    const qBytes = numHeads * headDim * 4;
    for (let r = rowStart; r < rowEnd; r++) {
      this.attention(outPtr + r * qBytes, qPtr + r * qBytes, this.u32[(rowTablesPtr >> 2) + r]!, this.i32[(rowBlockTokensPtr >> 2) + r]!, numLayers, layer,
        numHeads, numKvHeads, headDim, this.i32[(positionsPtr >> 2) + r]!, scratchPtr, scale);
    }
  }

  attention(outPtr: number, qPtr: number, blockOffsetsPtr: number, blockTokens: number, _numLayers: number, layer: number, numHeads: number, numKvHeads: number, headDim: number, pos: number, scratchPtr: number, scale: number): void {
    this.sync();
    const f32 = this.f32;
    const u32 = this.u32;
    const kvDim = numKvHeads * headDim;
    const group = numHeads / numKvHeads;
    const scores = scratchPtr >> 2;
    const kOffset = layer * 2 * blockTokens * kvDim;
    const vOffset = (layer * 2 + 1) * blockTokens * kvDim;
    for (let h = 0; h < numHeads; h++) {
      const q = (qPtr >> 2) + h * headDim;
      const headOffset = Math.floor(h / group) * headDim;
      let max = -Infinity;
      for (let t = 0; t <= pos; t++) {
        const block = u32[(blockOffsetsPtr >> 2) + Math.floor(t / blockTokens)]! >> 2;
        const k = block + kOffset + (t % blockTokens) * kvDim + headOffset;
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += f32[q + d]! * f32[k + d]!;
        const s = Math.fround(dot * scale);
        f32[scores + t] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let t = 0; t <= pos; t++) {
        const e = Math.fround(Math.exp(f32[scores + t]! - max));
        f32[scores + t] = e;
        sum += e;
      }
      const inv = 1 / sum;
      const out = (outPtr >> 2) + h * headDim;
      for (let d = 0; d < headDim; d++) f32[out + d] = 0;
      for (let t = 0; t <= pos; t++) {
        const block = u32[(blockOffsetsPtr >> 2) + Math.floor(t / blockTokens)]! >> 2;
        const v = block + vOffset + (t % blockTokens) * kvDim + headOffset;
        const p = f32[scores + t]! * inv;
        for (let d = 0; d < headDim; d++) f32[out + d]! += p * f32[v + d]!;
      }
    }
  }
}

export function createTsKernels(memory: WebAssembly.Memory | ArrayBuffer | SharedArrayBuffer): Kernels {
  return new TsKernels(memory);
}

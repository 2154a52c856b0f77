/**
 * Classical Gram-Schmidt reorthogonalization against a stored orthonormal basis, the inner loop of
 * Lanczos with full reorthogonalization (`lanczos.ts`; Daniel, Gragg, Kaufman & Stewart 1976,
 * "Reorthogonalization and stable algorithms for updating the Gram-Schmidt QR factorization",
 * Math. Comp. 30, and Giraud, Langou & Rozloznik 2005, "The loss of orthogonality in the
 * Gram-Schmidt orthogonalization process", Comput. Math. Appl. 50, for "twice is enough").
 *
 * One pass with q_1 .. q_m stored:
 *
 *   c_i = q_i^T w  (i = 1..m, all from the same w),   w <- w - sum_i c_i q_i.
 *
 * Step j of a Lanczos run makes one such pass (sometimes two) against j vectors, so a run of m steps
 * reads about m^2 / 2 stored vectors twice: on a 26k-parameter model's 31 steps, 26M multiply-adds,
 * which JavaScript's scalar float64 loops run at about 0.6 GFLOP/s (43 ms, as long as four H·v
 * products). The loops here are WebAssembly with 128-bit SIMD (two float64 lanes, four basis
 * vectors per sweep over w so w is read a quarter as often): the same pass in about a tenth of the
 * time. The basis lives in the module's linear memory (one WebAssembly.Memory per run, sized for
 * the run's vectors up front: pages the run never touches cost no RAM); where WebAssembly SIMD is
 * missing or the basis would not fit in MAX_WASM_BASIS_BYTES, the same passes run in JavaScript.
 *
 * The update w -= c0 q0 + c1 q1 + c2 q2 + c3 q3 is evaluated in that order in both, so both give
 * the same bits; the dot products sum two interleaved halves and then add them (the scalar loop
 * sums in order), which changes results by rounding only.
 */
import { InternalError } from '../errors';
import { axpy, dot } from './operator';

/** The largest basis kept in WebAssembly memory; above it the JavaScript loops run. */
export const MAX_WASM_BASIS_BYTES = 2 ** 31;
/**
 * A released basis memory up to this size is kept for the next basis for SPARE_MS: writing a
 * vector into fresh pages costs a page fault per 4 KiB (about 6 ms of a 31-step run on 26k
 * parameters, as much as the whole Gram-Schmidt work), and jobs run Lanczos again and again.
 */
const SPARE_BYTES = 2 ** 26;
const SPARE_MS = 10_000;

/** A fixed number of vectors of length n, and the Gram-Schmidt pass against a prefix of them. */
export interface Basis {
  readonly n: number;
  /** How many vectors it can hold. */
  readonly count: number;
  /** Vector i (a view; writes go to the basis). */
  get(i: number): Float64Array;
  /**
   * One classical Gram-Schmidt pass of vector `w` against vectors 0..m-1: c[i] = q_i . w, then
   * w -= sum_i c[i] q_i. `w` must not be one of 0..m-1.
   */
  project(m: number, w: number, c: Float64Array): void;
  /** q_i . q_j. */
  dot(i: number, j: number): number;
  /** q_j += alpha q_i. */
  axpy(alpha: number, i: number, j: number): void;
  /** q_i *= alpha. */
  scale(alpha: number, i: number): void;
  /** Which loops run. */
  readonly kind: 'wasm' | 'js';
  /** Done with the vectors: their memory may serve the next basis (every view of this one is then invalid). */
  release(): void;
}

/**
 * A basis of `count` vectors of length n: WebAssembly SIMD where it is available and fits, else
 * JavaScript (`loops: 'js'` asks for JavaScript: the comparison the tests make).
 */
export function createBasis(n: number, count: number, loops: 'fastest' | 'js' = 'fastest'): Basis {
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(count) || count < 1) throw new InternalError(`basis: bad size ${count} x ${n}`);
  const stride = n + (n & 1);
  if (loops === 'fastest' && stride * count * 8 <= MAX_WASM_BASIS_BYTES) {
    const kernels = wasmKernels();
    if (kernels) {
      try {
        return new WasmBasis(kernels, n, count, takeSpare(stride * count * 8 + 32));
      } catch {
        // The memory could not be reserved: the JavaScript loops need no contiguous block.
      }
    }
  }
  return new JsBasis(n, count);
}

// ---------------------------------------------------------------------------------------------
// WebAssembly

interface Kernels {
  module: WebAssembly.Module;
}

interface Exports {
  /** out[0..3] = q_k . w for the four vectors at byte addresses p0..p3; `bytes` = stride * 8. */
  dot4(p0: number, p1: number, p2: number, p3: number, w: number, bytes: number, out: number): void;
  dot1(p: number, w: number, bytes: number): number;
  /** w -= c0 q0 + c1 q1 + c2 q2 + c3 q3. */
  sub4(p0: number, p1: number, p2: number, p3: number, w: number, bytes: number, c0: number, c1: number, c2: number, c3: number): void;
  /** w += alpha q. */
  axpy1(p: number, w: number, bytes: number, alpha: number): void;
  /** w *= alpha. */
  scale1(w: number, bytes: number, alpha: number): void;
}

let compiled: Kernels | null | undefined;

/** The compiled module, or null where this runtime has no WebAssembly SIMD. */
function wasmKernels(): Kernels | null {
  if (compiled !== undefined) return compiled;
  try {
    compiled = { module: new WebAssembly.Module(moduleBytes()) };
  } catch {
    compiled = null;
  }
  return compiled;
}

const PAGE = 65536;

let spare: { memory: WebAssembly.Memory; timer: ReturnType<typeof setTimeout> } | undefined;

function takeSpare(bytes: number): WebAssembly.Memory | undefined {
  if (!spare || spare.memory.buffer.byteLength < bytes) return undefined;
  clearTimeout(spare.timer);
  const { memory } = spare;
  spare = undefined;
  return memory;
}

function keepSpare(memory: WebAssembly.Memory): void {
  if (memory.buffer.byteLength > SPARE_BYTES) return;
  if (spare) clearTimeout(spare.timer);
  const timer = setTimeout(() => (spare = undefined), SPARE_MS);
  timer.unref?.();
  spare = { memory, timer };
}

class WasmBasis implements Basis {
  readonly kind = 'wasm';
  private readonly stride: number;
  private readonly bytes: number;
  private readonly f64: Float64Array;
  private readonly k: Exports;
  /** Scratch for dot4's four results, after the vectors. */
  private readonly out: number;
  private readonly views: Float64Array[] = [];
  private memory: WebAssembly.Memory | undefined;
  constructor(
    kernels: Kernels,
    readonly n: number,
    readonly count: number,
    reuse?: WebAssembly.Memory,
  ) {
    this.stride = n + (n & 1);
    this.bytes = this.stride * 8;
    this.out = this.bytes * count;
    const pages = Math.ceil((this.out + 32) / PAGE);
    // A fixed size: the views below stay valid because the memory never grows.
    const memory = reuse ?? new WebAssembly.Memory({ initial: pages, maximum: pages });
    this.memory = memory;
    this.k = new WebAssembly.Instance(kernels.module, { env: { memory } }).exports as unknown as Exports;
    this.f64 = new Float64Array(memory.buffer);
    // The kernels read the padding element of odd-length vectors: it must be 0 (reused memory holds old values).
    if (reuse && this.stride > n) for (let i = 0; i < count; i++) this.f64[i * this.stride + n] = 0;
  }
  release(): void {
    if (this.memory) keepSpare(this.memory);
    this.memory = undefined;
  }
  get(i: number): Float64Array {
    if (!(i >= 0 && i < this.count)) throw new InternalError(`basis: vector ${i} of ${this.count}`);
    return (this.views[i] ??= this.f64.subarray(i * this.stride, i * this.stride + this.n));
  }
  project(m: number, w: number, c: Float64Array): void {
    const { k, bytes, out } = this;
    const pw = w * bytes;
    let i = 0;
    for (; i + 4 <= m; i += 4) {
      k.dot4(i * bytes, (i + 1) * bytes, (i + 2) * bytes, (i + 3) * bytes, pw, bytes, out);
      const o = out / 8;
      c[i] = this.f64[o];
      c[i + 1] = this.f64[o + 1];
      c[i + 2] = this.f64[o + 2];
      c[i + 3] = this.f64[o + 3];
    }
    for (; i < m; i++) c[i] = k.dot1(i * bytes, pw, bytes);
    i = 0;
    for (; i + 4 <= m; i += 4) k.sub4(i * bytes, (i + 1) * bytes, (i + 2) * bytes, (i + 3) * bytes, pw, bytes, c[i], c[i + 1], c[i + 2], c[i + 3]);
    for (; i < m; i++) k.axpy1(i * bytes, pw, bytes, -c[i]);
  }
  dot(i: number, j: number): number {
    return this.k.dot1(i * this.bytes, j * this.bytes, this.bytes);
  }
  axpy(alpha: number, i: number, j: number): void {
    this.k.axpy1(i * this.bytes, j * this.bytes, this.bytes, alpha);
  }
  scale(alpha: number, i: number): void {
    this.k.scale1(i * this.bytes, this.bytes, alpha);
  }
}

/**
 * The module, assembled here (no build step, no binary file). In the text format:
 *
 *   (memory (import "env" "memory") 0)
 *   (func $dot4 (param $p0 $p1 $p2 $p3 $w $bytes $out i32) (local $t i32) (local $a0 $a1 $a2 $a3 $x v128)
 *     (loop: while $t < $bytes: $x = load($w + $t); $ak += load($pk + $t) * $x; $t += 16)
 *     (f64.store $out+8k (lane0 $ak + lane1 $ak)))
 *   (func $dot1 (param $p $w $bytes i32) (result f64) ... the same with one vector)
 *   (func $sub4 (param $p0 $p1 $p2 $p3 $w $bytes i32) (param $c0 $c1 $c2 $c3 f64) (local $t i32) (local $s0..$s3 v128)
 *     ($sk = splat $ck; loop: store($w+$t, load($w+$t) - ((($s0 q0 + $s1 q1) + $s2 q2) + $s3 q3))))
 *   (func $axpy1 (param $p $w $bytes i32) (param $alpha f64) ... store($w+$t, load($w+$t) + splat($alpha) * load($p+$t)))
 *   (func $scale1 (param $w $bytes i32) (param $alpha f64) ... store($w+$t, load($w+$t) * splat($alpha)))
 */
function moduleBytes(): Uint8Array<ArrayBuffer> {
  const I32 = 0x7f;
  const F64 = 0x7c;
  const V128 = 0x7b;
  const get = (i: number): number[] => [0x20, i];
  const set = (i: number): number[] => [0x21, i];
  const simd = (op: number): number[] => [0xfd, ...uleb(op)];
  const load = [...simd(0x00), 3, 0]; // v128.load align=8 offset=0
  const store = [...simd(0x0b), 3, 0];
  const f64x2 = { add: simd(0xf0), sub: simd(0xf1), mul: simd(0xf2), splat: simd(0x14) };
  const lane = (l: number): number[] => [...simd(0x21), l];
  const i32add = 0x6a;
  /** (block (loop (br_if 1 (i32.ge_u t bytes)) body (t += 16) (br 0))) */
  const loop = (t: number, bytes: number, body: number[]): number[] => [
    0x02, 0x40, 0x03, 0x40, ...get(t), ...get(bytes), 0x4f, 0x0d, 1,
    ...body,
    ...get(t), 0x41, 16, i32add, ...set(t), 0x0c, 0, 0x0b, 0x0b,
  ];
  const at = (p: number, t: number): number[] => [...get(p), ...get(t), i32add];
  const sum = (acc: number): number[] => [...get(acc), ...lane(0), ...get(acc), ...lane(1), 0xa0];

  // dot4: params 0-3 p, 4 w, 5 bytes, 6 out; locals 7 t, 8-11 acc, 12 x
  const dot4Body = [
    ...loop(7, 5, [
      ...at(4, 7), ...load, ...set(12),
      ...[0, 1, 2, 3].flatMap((k) => [...get(8 + k), ...at(k, 7), ...load, ...get(12), ...f64x2.mul, ...f64x2.add, ...set(8 + k)]),
    ]),
    ...[0, 1, 2, 3].flatMap((k) => [...get(6), ...sum(8 + k), 0x39, 3, k * 8]), // f64.store offset 8k
  ];
  // dot1: params 0 p, 1 w, 2 bytes; locals 3 t, 4 acc
  const dot1Body = [...loop(3, 2, [...get(4), ...at(0, 3), ...load, ...at(1, 3), ...load, ...f64x2.mul, ...f64x2.add, ...set(4)]), ...sum(4)];
  // sub4: params 0-3 p, 4 w, 5 bytes, 6-9 c; locals 10 t, 11-14 splats
  const sub4Body = [
    ...[0, 1, 2, 3].flatMap((k) => [...get(6 + k), ...f64x2.splat, ...set(11 + k)]),
    ...loop(10, 5, [
      ...at(4, 10),
      ...at(4, 10), ...load,
      ...at(0, 10), ...load, ...get(11), ...f64x2.mul,
      ...[1, 2, 3].flatMap((k) => [...at(k, 10), ...load, ...get(11 + k), ...f64x2.mul, ...f64x2.add]),
      ...f64x2.sub,
      ...store,
    ]),
  ];
  // axpy1: params 0 p, 1 w, 2 bytes, 3 alpha; locals 4 t, 5 splat
  const axpy1Body = [
    ...get(3), ...f64x2.splat, ...set(5),
    ...loop(4, 2, [...at(1, 4), ...at(1, 4), ...load, ...at(0, 4), ...load, ...get(5), ...f64x2.mul, ...f64x2.add, ...store]),
  ];

  // scale1: params 0 w, 1 bytes, 2 alpha; locals 3 t, 4 splat
  const scale1Body = [...get(2), ...f64x2.splat, ...set(4), ...loop(3, 1, [...at(0, 3), ...at(0, 3), ...load, ...get(4), ...f64x2.mul, ...store])];

  const funcs: { name: string; params: number[]; results: number[]; locals: [number, number][]; body: number[] }[] = [
    { name: 'dot4', params: [I32, I32, I32, I32, I32, I32, I32], results: [], locals: [[1, I32], [5, V128]], body: dot4Body },
    { name: 'dot1', params: [I32, I32, I32], results: [F64], locals: [[1, I32], [1, V128]], body: dot1Body },
    { name: 'sub4', params: [I32, I32, I32, I32, I32, I32, F64, F64, F64, F64], results: [], locals: [[1, I32], [4, V128]], body: sub4Body },
    { name: 'axpy1', params: [I32, I32, I32, F64], results: [], locals: [[1, I32], [1, V128]], body: axpy1Body },
    { name: 'scale1', params: [I32, I32, F64], results: [], locals: [[1, I32], [1, V128]], body: scale1Body },
  ];
  const section = (id: number, content: number[]): number[] => [id, ...uleb(content.length), ...content];
  const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
  const name = (s: string): number[] => [...uleb(s.length), ...Array.from(s, (ch) => ch.charCodeAt(0))];
  const types = vec(funcs.map((f) => [0x60, ...vec(f.params.map((p) => [p])), ...vec(f.results.map((r) => [r]))]));
  const imports = vec([[...name('env'), ...name('memory'), 0x02, 0x00, 0x00]]);
  const functions = vec(funcs.map((_, i) => [i]));
  const exports = vec(funcs.map((f, i) => [...name(f.name), 0x00, i]));
  const code = vec(
    funcs.map((f) => {
      const body = [...vec(f.locals.map(([count, type]) => [...uleb(count), type])), ...f.body, 0x0b];
      return [...uleb(body.length), ...body];
    }),
  );
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, types),
    ...section(2, imports),
    ...section(3, functions),
    ...section(7, exports),
    ...section(10, code),
  ]);
}

function uleb(x: number): number[] {
  const out: number[] = [];
  do {
    let b = x & 0x7f;
    x >>>= 7;
    if (x !== 0) b |= 0x80;
    out.push(b);
  } while (x !== 0);
  return out;
}

// ---------------------------------------------------------------------------------------------
// JavaScript

/** Vectors in blocks of BLOCK contiguous float64s, allocated on first use of a block. */
class JsBasis implements Basis {
  readonly kind = 'js';
  private static readonly BLOCK = 8;
  private readonly blocks: Float64Array[] = [];
  private readonly views: Float64Array[] = [];
  constructor(
    readonly n: number,
    readonly count: number,
  ) {}
  get(i: number): Float64Array {
    if (!(i >= 0 && i < this.count)) throw new InternalError(`basis: vector ${i} of ${this.count}`);
    if (this.views[i]) return this.views[i];
    const B = JsBasis.BLOCK;
    const b = Math.floor(i / B);
    if (!this.blocks[b]) this.blocks[b] = new Float64Array(Math.min(B, this.count - b * B) * this.n);
    const o = (i - b * B) * this.n;
    return (this.views[i] = this.blocks[b].subarray(o, o + this.n));
  }
  project(m: number, wi: number, c: Float64Array): void {
    const n = this.n;
    const w = this.get(wi);
    const q = (i: number): Float64Array => this.get(i);
    let i = 0;
    for (; i + 4 <= m; i += 4) {
      const b0 = q(i);
      const b1 = q(i + 1);
      const b2 = q(i + 2);
      const b3 = q(i + 3);
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let t = 0; t < n; t++) {
        const x = w[t];
        s0 += b0[t] * x;
        s1 += b1[t] * x;
        s2 += b2[t] * x;
        s3 += b3[t] * x;
      }
      c[i] = s0;
      c[i + 1] = s1;
      c[i + 2] = s2;
      c[i + 3] = s3;
    }
    for (; i < m; i++) c[i] = this.dot(i, wi);
    i = 0;
    for (; i + 4 <= m; i += 4) {
      const b0 = q(i);
      const b1 = q(i + 1);
      const b2 = q(i + 2);
      const b3 = q(i + 3);
      const c0 = c[i];
      const c1 = c[i + 1];
      const c2 = c[i + 2];
      const c3 = c[i + 3];
      for (let t = 0; t < n; t++) w[t] -= c0 * b0[t] + c1 * b1[t] + c2 * b2[t] + c3 * b3[t];
    }
    for (; i < m; i++) this.axpy(-c[i], i, wi);
  }
  dot(i: number, j: number): number {
    return dot(this.get(i), this.get(j));
  }
  axpy(alpha: number, i: number, j: number): void {
    axpy(alpha, this.get(i), this.get(j));
  }
  release(): void {}
  scale(alpha: number, i: number): void {
    const x = this.get(i);
    for (let t = 0; t < this.n; t++) x[t] *= alpha;
  }
}

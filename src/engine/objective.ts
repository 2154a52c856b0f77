/**
 * The full-batch training objective of a model on its data: loss, gradient and Hessian-vector
 * products over the flat parameter vector, evaluated in chunks of samples so memory stays bounded
 * however large the data set. Losses are means over samples, so the full-batch value is the
 * sample-weighted mean of the chunk values (exact, not an approximation).
 *
 * Tensors: parameters, constants and data chunks are kept for the objective's lifetime and
 * released by `dispose()`; every evaluation runs inside `tf.tidy` and leaves no tensor behind.
 */
import { tf } from './tf';
import type { Tensor } from './tf';
import type { ModelIR } from './model/ir';
import type { Split } from './data';
import { batchLoss, correctCount, lossFromOutput, allFinite, predict, usesLogits, USER_LOSS, type LossSpec } from './model/losses';
import { UserCodeError } from './errors';
import { applyActivation, forward } from './model/forward';
import { outputActivation } from './model/ir';
import { installSecondOrderGradients } from './hvp/secondOrder';
import { registerMissingKernels } from './kernels';

export interface ObjectiveOptions {
  /** Samples per chunk. Default: as many as fit a ~256 MB activation budget, at most 8192. */
  chunkSize?: number;
}

interface Chunk {
  x: Tensor;
  y: Tensor;
  n: number;
}

/**
 * What a curvature sees of one chunk in output space (the model's outputs as the loss receives
 * them: logits when the loss folds in the output activation). Tensors live until the chunk's
 * product is done.
 */
export interface OutputSpace {
  /** The outputs f, [n, ...outShape]. */
  out: Tensor;
  /** The targets. */
  y: Tensor;
  /** Samples in the chunk. */
  n: number;
  /** J v, the outputs' change along the parameter direction v (the shape of `out`). */
  jv: Tensor;
  loss: LossSpec;
  /** Whether `out` are logits (softmax or sigmoid folded into the loss). */
  logits: boolean;
  /** The gradient of the chunk's mean loss with respect to the outputs. */
  lossGrad(): Tensor;
  /** The Hessian of the chunk's mean loss with respect to the outputs, times u (the shape of `out`). */
  lossHvp(u: Tensor): Tensor;
}

/** An output-space curvature: M (J v) for the chunk, the shape of `out` (see src/engine/curvature). */
export type OutputCurvature = (space: OutputSpace) => Tensor;

export class Objective {
  readonly dim: number;
  readonly numSamples: number;
  readonly chunkSize: number;
  private params: Tensor[];
  private readonly consts: Tensor[];
  private readonly chunks: Chunk[];
  private theta: Float32Array;
  private readonly data: Split;
  /** Counters, for reports and benchmarks. */
  readonly counts = { forward: 0, gradient: 0, hvp: 0 };

  constructor(
    readonly ir: ModelIR,
    initial: Float32Array[] | Float32Array,
    readonly loss: LossSpec,
    data: Split,
    opts: ObjectiveOptions = {},
  ) {
    registerMissingKernels();
    installSecondOrderGradients();
    this.dim = ir.numParams;
    this.theta = Array.isArray(initial) ? concatF32(initial) : Float32Array.from(initial);
    if (this.theta.length !== this.dim) throw new Error(`expected ${this.dim} parameters, got ${this.theta.length}`);
    this.params = this.split(this.theta);
    this.consts = ir.constants.map((c) => tf.keep(tf.tensor(c.values, c.shape)));
    this.numSamples = data.xShape[0];
    this.data = data;
    this.chunkSize = opts.chunkSize ?? defaultChunkSize(ir, this.numSamples);
    this.chunks = [];
    const xPer = data.xShape.slice(1).reduce((a, b) => a * b, 1);
    const yPer = data.yShape.slice(1).reduce((a, b) => a * b, 1);
    for (let s = 0; s < this.numSamples; s += this.chunkSize) {
      const n = Math.min(this.chunkSize, this.numSamples - s);
      this.chunks.push({
        x: tf.keep(tf.tensor(data.x.subarray(s * xPer, (s + n) * xPer), [n, ...data.xShape.slice(1)])),
        y: tf.keep(tf.tensor(data.y.subarray(s * yPer, (s + n) * yPer), [n, ...data.yShape.slice(1)])),
        n,
      });
    }
  }

  /** Current parameters (a copy). */
  get parameters(): Float32Array {
    return Float32Array.from(this.theta);
  }

  /** Moves the objective to new parameters. */
  setParameters(theta: ArrayLike<number>): void {
    if (theta.length !== this.dim) throw new Error(`expected ${this.dim} parameters, got ${theta.length}`);
    const next = Float32Array.from(theta);
    const old = this.params;
    this.params = this.split(next);
    this.theta = next;
    tf.dispose(old);
  }

  /** Splits a flat vector into kept parameter-shaped tensors. */
  private split(flat: ArrayLike<number>): Tensor[] {
    const f32 = flat instanceof Float32Array ? flat : Float32Array.from(flat);
    return this.ir.params.map((p) => tf.keep(tf.tensor(f32.subarray(p.offset, p.offset + p.size), p.shape)));
  }

  /** Parameter-shaped tensors for a flat vector (not kept: call inside tidy). */
  private shaped(flat: ArrayLike<number>): Tensor[] {
    const f32 = flat instanceof Float32Array ? flat : Float32Array.from(flat);
    return this.ir.params.map((p) => tf.tensor(f32.subarray(p.offset, p.offset + p.size), p.shape));
  }

  private static flatten(ts: Tensor[]): Float64Array {
    const out = new Float64Array(ts.reduce((a, t) => a + t.size, 0));
    let o = 0;
    // One read-back per tensor; concatenating on the device first costs more than it saves here.
    for (const t of ts) {
      out.set(t.dataSync() as Float32Array, o);
      o += t.size;
    }
    return out;
  }

  private weight(c: Chunk): number {
    return c.n / this.numSamples;
  }

  /** Full-batch loss at the current parameters (or at `theta` if given). */
  lossAt(theta?: ArrayLike<number>): number {
    this.counts.forward++;
    return tidyValue(() => {
      const ps = theta ? this.shaped(theta) : this.params;
      let total = tf.scalar(0);
      for (const c of this.chunks) total = tf.add(total, tf.mul(batchLoss(this.ir, this.loss, ps, this.consts, c.x, c.y), this.weight(c)));
      return total.dataSync()[0];
    });
  }

  /** Full-batch loss and gradient at the current parameters (or at `theta`). */
  gradient(theta?: ArrayLike<number>): { loss: number; grad: Float64Array } {
    this.counts.gradient++;
    return tidyValue(() => {
      const ps = theta ? this.shaped(theta) : this.params;
      let loss = tf.scalar(0);
      let acc: Tensor[] | undefined;
      for (const c of this.chunks) {
        const w = this.weight(c);
        const { value, grads } = this.differentiated(() => tf.valueAndGrads((...p: Tensor[]) => batchLoss(this.ir, this.loss, p, this.consts, c.x, c.y))(ps));
        loss = tf.add(loss, tf.mul(value, w));
        const scaled = this.chunks.length === 1 ? grads : grads.map((g) => tf.mul(g, w));
        acc = acc ? acc.map((a, i) => tf.add(a, scaled[i])) : scaled;
      }
      return { loss: loss.dataSync()[0], grad: Objective.flatten(acc ?? []) };
    });
  }

  /**
   * Loss and gradient of the mean loss over the samples `indices` (a minibatch), at `theta` or the
   * current parameters. The rows are copied from the host arrays; minibatches are small.
   */
  batchGradient(indices: Int32Array, theta?: ArrayLike<number>): { loss: number; grad: Float64Array } {
    this.counts.gradient++;
    const xPer = this.data.xShape.slice(1).reduce((a, b) => a * b, 1);
    const yPer = this.data.yShape.slice(1).reduce((a, b) => a * b, 1);
    const b = indices.length;
    const xb = new Float32Array(b * xPer);
    const yb = new Float32Array(b * yPer);
    indices.forEach((row, i) => {
      xb.set(this.data.x.subarray(row * xPer, (row + 1) * xPer), i * xPer);
      yb.set(this.data.y.subarray(row * yPer, (row + 1) * yPer), i * yPer);
    });
    return tidyValue(() => {
      const ps = theta ? this.shaped(theta) : this.params;
      const x = tf.tensor(xb, [b, ...this.data.xShape.slice(1)]);
      const y = tf.tensor(yb, [b, ...this.data.yShape.slice(1)]);
      const { value, grads } = this.differentiated(() => tf.valueAndGrads((...p: Tensor[]) => batchLoss(this.ir, this.loss, p, this.consts, x, y))(ps));
      return { loss: value.dataSync()[0], grad: Objective.flatten(grads) };
    });
  }

  /**
   * Runs a differentiation. When it throws (a user loss that throws or returns the wrong thing),
   * the tensors TF.js's gradient tape saved are released: TF.js keeps them and frees them only
   * after a backward pass that completes. A user loss TF.js cannot differentiate with respect to
   * the model's output (built from read-back values, or from ops without a gradient) is the user's
   * to fix: a `BasinError` naming the module, not an internal error. At second order (not
   * `firstOrder`) that is decided by differentiating once: a zero Hessian fails there too.
   */
  private differentiated<T>(fn: () => T, firstOrder = true): T {
    try {
      return fn();
    } catch (e) {
      releaseFailedTape();
      const message = (e as Error)?.message ?? '';
      if (typeof this.loss !== 'function' || !message.startsWith('Cannot compute gradient')) throw e;
      // Second order, the fault may be the loss's or not (a Hessian that is zero): the gradient says.
      if (!firstOrder) {
        this.gradient();
        throw e;
      }
      const op = /gradient function not found for (\w+)/.exec(message)?.[1];
      const why = op
        ? `uses ${op}, which has no gradient in TF.js`
        : 'does not depend on yPred through TF.js ops (a value read back with dataSync/arraySync, or a constant, has no gradient)';
      throw new UserCodeError(`${USER_LOSS} cannot be differentiated with respect to yPred: it ${why}`, this.loss.file);
    }
  }

  /**
   * A second derivative of the loss alone with respect to the model's output (the loss's Hessian
   * in output space). When TF.js cannot differentiate it twice, the fault is the user loss's, whose
   * gradient uses a kernel without a gradient of its own (a max pooling's MaxPoolGrad): a
   * `UserCodeError` naming the module, not an internal error.
   */
  private lossSecondOrder<T>(fn: () => T): T {
    try {
      return this.differentiated(fn, false);
    } catch (e) {
      const op = /gradient function not found for (\w+)/.exec((e as Error)?.message ?? '')?.[1];
      if (!op || typeof this.loss !== 'function') throw e;
      throw new UserCodeError(
        `${USER_LOSS} cannot be differentiated twice with respect to yPred: TF.js cannot differentiate ${op} (the gradient of an op it uses); this curvature needs the loss's second derivative (the empirical Fisher does not)`,
        this.loss.file,
      );
    }
  }

  /**
   * Exact Hessian-vector product by double backprop (Pearlmutter 1994): H v = grad_theta (grad_theta L . v).
   */
  hvpExact(v: Float64Array): Float64Array {
    this.counts.hvp++;
    return tidyValue(() => {
      const vs = this.shaped(v);
      let acc: Tensor[] | undefined;
      for (const c of this.chunks) {
        const w = this.weight(c);
        const gdotv = (...p: Tensor[]): Tensor => {
          const g = tf.grads((...q: Tensor[]) => batchLoss(this.ir, this.loss, q, this.consts, c.x, c.y))(p);
          return tf.addN(g.map((gi, i) => tf.sum(tf.mul(gi, vs[i]))));
        };
        const hv = this.differentiated(() => tf.grads(gdotv)(this.params), false);
        const scaled = this.chunks.length === 1 ? hv : hv.map((h) => tf.mul(h, w));
        acc = acc ? acc.map((a, i) => tf.add(a, scaled[i])) : scaled;
      }
      return Objective.flatten(acc ?? []);
    });
  }

  /**
   * J v on one chunk, where J is the Jacobian of the model's outputs (as the loss sees them) with
   * respect to the parameters: forward mode by the double-backprop trick (TF.js has no forward
   * mode), J v = d/du <J^T u, v>, which is linear in u so any u (zeros) will do. Costs a forward
   * pass, a backward pass and the backward pass's own backward pass, like an exact H v.
   */
  private jvp(c: Chunk, ps: Tensor[], vs: Tensor[], logits: boolean): Tensor {
    const outShape = this.ir.nodes[this.ir.output].outShape;
    const u0 = tf.zeros([c.n, ...outShape]);
    const jtuDotV = (u: Tensor): Tensor => {
      const g = tf.grads((...p: Tensor[]) => tf.sum(tf.mul(forward(this.ir, p, this.consts, c.x, { logits }), u)))(ps);
      return tf.addN(g.map((gi, i) => tf.sum(tf.mul(gi, vs[i]))));
    };
    return this.differentiated(() => tf.grad(jtuDotV)(u0), false);
  }

  /** J^T u on one chunk: one backward pass through the model with the output cotangent u. */
  private vjp(c: Chunk, ps: Tensor[], u: Tensor, logits: boolean): Tensor[] {
    return this.differentiated(() => tf.grads((...p: Tensor[]) => tf.sum(tf.mul(forward(this.ir, p, this.consts, c.x, { logits }), u)))(ps));
  }

  /**
   * A curvature product of the form C v = sum over chunks (n_c / N) J_c^T M_c J_c v, with M_c the
   * output-space matrix of a curvature (`middle`, see src/engine/curvature): the generalized
   * Gauss-Newton, the Fisher, the empirical Fisher. Per chunk: J v (double-backprop trick), M (J v)
   * in output space (cheap: the outputs are few), J^T of that (one backward pass). Every tensor is
   * released.
   */
  curvatureProduct(middle: OutputCurvature, v: Float64Array): Float64Array {
    this.counts.hvp++;
    const logits = usesLogits(this.ir, this.loss);
    return tidyValue(() => {
      const vs = this.shaped(v);
      let acc: Tensor[] | undefined;
      for (const c of this.chunks) {
        const w = this.weight(c);
        const m = tidyKeep(() => {
          const out = forward(this.ir, this.params, this.consts, c.x, { logits });
          const jv = this.jvp(c, this.params, vs, logits);
          const lossOf = (o: Tensor): Tensor => lossFromOutput(this.loss, o, c.y, logits);
          const space: OutputSpace = {
            out,
            y: c.y,
            n: c.n,
            jv,
            loss: this.loss,
            logits,
            lossGrad: () => this.differentiated(() => tf.grad(lossOf)(out)),
            lossHvp: (u) => this.lossSecondOrder(() => tf.grad((o: Tensor) => tf.sum(tf.mul(tf.grad(lossOf)(o), u)))(out)),
          };
          return middle(space);
        });
        const jtu = this.vjp(c, this.params, m, logits);
        const scaled = this.chunks.length === 1 ? jtu : jtu.map((h) => tf.mul(h, w));
        acc = acc ? acc.map((a, i) => tf.add(a, scaled[i])) : scaled;
      }
      return Objective.flatten(acc ?? []);
    });
  }

  /**
   * Accuracy at the current parameters (or at `theta`): argmax agreement, or the 0.5 threshold for
   * one output.
   */
  accuracy(theta?: ArrayLike<number>): number {
    return tidyValue(() => {
      const ps = theta ? this.shaped(theta) : this.params;
      let correct = 0;
      for (const c of this.chunks) {
        correct += correctCount(predict(this.ir, ps, this.consts, c.x), c.y).dataSync()[0];
      }
      return correct / this.numSamples;
    });
  }

  /**
   * Loss (and accuracy) at many points theta = origin + sum_k c_k d_k of a line or plane, without
   * gradients. When the node after the input is a dense layer, its pre-activation is linear in the
   * parameters: X W + b = (X W0 + b0) + sum_k c_k (X Dk + dbk), so it is computed once per chunk
   * and direction, and each point then costs one scaled sum instead of that product. (Stacking the
   * points' weights into one batched matrix product was measured 10x slower on wasm: BatchMatMul
   * with a batch dimension misses XNNPACK's fast path.)
   * `coeffs` holds P rows of k coefficients. Returns per-point losses (and accuracies).
   */
  planeLosses(origin: ArrayLike<number>, dirs: Float64Array[], coeffs: Float64Array, withAccuracy: boolean): { loss: Float64Array; accuracy?: Float64Array } {
    const k = dirs.length;
    const P = k === 0 ? 0 : coeffs.length / k;
    const loss = new Float64Array(P);
    const accuracy = withAccuracy ? new Float64Array(P) : undefined;
    this.counts.forward += P;
    const first = this.ir.nodes.findIndex((n) => n.inputs.length === 1 && n.inputs[0] === this.ir.input);
    const firstOp = first >= 0 ? this.ir.nodes[first].op : undefined;
    const linearFirst = firstOp?.kind === 'dense' && this.ir.nodes.filter((n) => n.inputs.includes(this.ir.input)).length === 1 ? firstOp : undefined;
    const logits = usesLogits(this.ir, this.loss);
    const outAct = outputActivation(this.ir);
    tidyValue(() => {
      const o = Float32Array.from(origin);
      const basePs = this.shaped(o);
      const dirPs = dirs.map((d) => this.shaped(d));
      // Per chunk: the first dense layer's pre-activation at the origin and along each direction.
      const pre = this.chunks.map((c) => {
        if (!linearFirst) return undefined;
        const along = (ps: Tensor[], bias: boolean): Tensor => {
          const xw = tf.matMul(tf.reshape(c.x, [c.n, -1]) as tf.Tensor2D, ps[linearFirst.kernel] as tf.Tensor2D);
          return bias && linearFirst.bias !== undefined ? tf.add(xw, ps[linearFirst.bias]) : xw;
        };
        return { z0: along(basePs, true), zs: dirPs.map((ps) => along(ps, true)) };
      });
      const point = new Float32Array(this.dim);
      for (let p = 0; p < P; p++) {
        tidyValue(() => {
          point.set(o);
          for (let j = 0; j < k; j++) {
            const cj = coeffs[p * k + j];
            const d = dirs[j];
            for (let i = 0; i < this.dim; i++) point[i] += cj * d[i];
          }
          const ps = this.shaped(point);
          let total = 0;
          let correct = 0;
          this.chunks.forEach((c, ci) => {
            const z = pre[ci];
            let preMap: Map<number, Tensor> | undefined;
            if (z) {
              let s = z.z0;
              for (let j = 0; j < k; j++) s = tf.add(s, tf.mul(z.zs[j], coeffs[p * k + j]));
              preMap = new Map([[first, s]]);
            }
            const out = forward(this.ir, ps, this.consts, c.x, { logits, preActivation: preMap });
            total += lossFromOutput(this.loss, out, c.y, logits).dataSync()[0] * this.weight(c);
            if (accuracy) {
              const pred = logits && outAct !== 'linear' ? applyActivation(out, outAct) : out;
              correct += correctCount(pred, c.y).dataSync()[0];
            }
          });
          loss[p] = total;
          if (accuracy) accuracy[p] = correct / this.numSamples;
        });
      }
    });
    return { loss, accuracy };
  }

  dispose(): void {
    tf.dispose(this.params);
    tf.dispose(this.consts);
    for (const c of this.chunks) tf.dispose([c.x, c.y]);
    this.chunks.length = 0;
  }
}

/**
 * Whether a model's outputs (as the loss sees them: logits when it folds in the output
 * activation) are all finite on `data` at `theta`, and their largest magnitude when they are: what
 * tells a forward pass that overflows float32 from a loss that does. One forward pass, a chunk of
 * samples at a time (nothing is kept), for messages.
 */
export function checkOutputs(ir: ModelIR, theta: Float32Array, loss: LossSpec, data: Split, chunkSize = defaultChunkSize(ir, data.xShape[0])): { finite: boolean; maxAbs: number } {
  return tidyValue(() => {
    const ps = ir.params.map((p) => tf.tensor(theta.subarray(p.offset, p.offset + p.size), p.shape));
    const consts = ir.constants.map((c) => tf.tensor(c.values, c.shape));
    const logits = usesLogits(ir, loss);
    const n = data.xShape[0];
    const xPer = data.xShape.slice(1).reduce((a, b) => a * b, 1);
    let finite = true;
    let maxAbs = 0;
    for (let s = 0; s < n; s += chunkSize) {
      const m = Math.min(chunkSize, n - s);
      tidyValue(() => {
        const x = tf.tensor(data.x.subarray(s * xPer, (s + m) * xPer), [m, ...data.xShape.slice(1)]);
        const out = forward(ir, ps, consts, x, { logits });
        if (!allFinite(out)) finite = false;
        else maxAbs = Math.max(maxAbs, tf.max(tf.abs(out)).dataSync()[0]);
      });
    }
    return { finite, maxAbs };
  });
}

/**
 * Releases what a gradient tape that threw left behind. TF.js saves tensors for the backward pass
 * as kept clones and disposes them only after the pass; when the function being differentiated
 * throws, the outermost tape is left with them (the next one replaces it, and they leak). Reads
 * the engine's state (TF.js 4.x); does nothing while a gradient is still being recorded.
 */
function releaseFailedTape(): void {
  const state = (tf.engine() as unknown as { state?: { gradientDepth?: number; activeTape?: { saved?: Tensor[] }[] | null } }).state;
  if (!state || state.gradientDepth !== 0 || !state.activeTape) return;
  for (const node of state.activeTape) for (const t of node.saved ?? []) t.dispose();
  state.activeTape = null;
}

/** Runs fn in a scope and keeps only the tensor it returns (released with the enclosing scope). */
function tidyKeep(fn: () => Tensor): Tensor {
  return tf.tidy(fn);
}

/** Like tf.tidy, for functions that return plain data: every tensor made inside is released. */
export function tidyValue<T>(fn: () => T): T {
  const engine = tf.engine();
  engine.startScope();
  try {
    return fn();
  } finally {
    engine.endScope();
  }
}

export function concatF32(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Samples per chunk so that activations (kept twice over for double backprop) fit ~256 MB. */
export function defaultChunkSize(ir: ModelIR, n: number): number {
  const perSample = ir.nodes.reduce((a, node) => a + node.outShape.reduce((x, y) => x * y, 1), 0);
  const budget = 256 * 1024 * 1024;
  const fit = Math.max(1, Math.floor(budget / (perSample * 4 * 8)));
  return Math.max(1, Math.min(n, fit, 8192));
}

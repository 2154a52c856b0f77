/**
 * Hessian operators over a model's full-batch loss, behind the `LinearOperator` interface:
 * - exact: double backprop (Pearlmutter 1994), with second-order-safe gradients installed;
 * - finite differences of gradients: H v ~ (g(theta + eps u) - g(theta - eps u)) / (2 eps) |v|,
 *   u = v / |v|, eps = 3e-3 (science.md: in float32, eps in [1e-3, 3e-2] gave the top eigenvalue to
 *   ~1e-5 relative, eps = 1e-4 was far worse; the low end of that range because larger steps cross
 *   the kinks of max pooling and ReLU: on a max-pooling convnet eps = 1e-2 was 64% off along the
 *   top eigenvector, 3e-3 was 1e-5), usable for any model;
 * - auto: checks both on one random vector, and keeps the faster of those that are right.
 * A block operator restricts any of them to one layer's parameters (per-layer sharpness).
 */
import type { LinearOperator } from '../linalg/operator';
import { norm } from '../linalg/operator';
import type { Evaluator } from '../evaluator';
import { twiceDifferentiable } from '../model/forward';
import { Rng } from '../rng';

export type HvpMethod = 'exact' | 'fd';
export type HvpChoice = HvpMethod | 'auto';

export const FD_EPS = 3e-3;

export class ExactHessian implements LinearOperator {
  readonly dim: number;
  matvecs = 0;
  relativeNoise = 1e-6;
  constructor(private readonly obj: Evaluator) {
    this.dim = obj.dim;
  }
  async matvec(v: Float64Array): Promise<Float64Array> {
    this.matvecs++;
    const out = await this.obj.hvp(v);
    await yieldToLoop();
    return out;
  }
}

export class FiniteDifferenceHessian implements LinearOperator {
  readonly dim: number;
  matvecs = 0;
  relativeNoise = 1e-5;
  constructor(
    private readonly obj: Evaluator,
    readonly eps = FD_EPS,
  ) {
    this.dim = obj.dim;
  }
  async matvec(v: Float64Array): Promise<Float64Array> {
    this.matvecs++;
    const nv = norm(v);
    const out = new Float64Array(this.dim);
    if (nv === 0) return out;
    const theta = this.obj.parameters();
    const plus = new Float32Array(this.dim);
    const minus = new Float32Array(this.dim);
    const h = this.eps / nv;
    for (let i = 0; i < this.dim; i++) {
      plus[i] = theta[i] + h * v[i];
      minus[i] = theta[i] - h * v[i];
    }
    const gp = (await this.obj.gradient(plus)).grad;
    const gm = (await this.obj.gradient(minus)).grad;
    // Divide by the step actually taken in float32 along v (theta + h v rounds), not the nominal one.
    const scale = nv / (2 * this.eps);
    for (let i = 0; i < this.dim; i++) out[i] = (gp[i] - gm[i]) * scale;
    await yieldToLoop();
    return out;
  }
}

/** The restriction of an operator to the coordinates [offset, offset + size). */
export class BlockOperator implements LinearOperator {
  readonly relativeNoise?: number;
  constructor(
    private readonly op: LinearOperator,
    readonly offset: number,
    readonly dim: number,
  ) {
    this.relativeNoise = op.relativeNoise;
  }
  async matvec(v: Float64Array): Promise<Float64Array> {
    const full = new Float64Array(this.op.dim);
    full.set(v, this.offset);
    return (await this.op.matvec(full)).slice(this.offset, this.offset + this.dim);
  }
}

export interface HvpSelection {
  op: LinearOperator & { matvecs: number };
  method: HvpMethod;
  /** Why this method: the check's outcome or the user's choice. */
  reason: string;
  /** Relative difference between exact and finite-difference products on a random vector, when checked. */
  agreement?: number;
  /** Milliseconds per product, when measured. */
  msExact?: number;
  msFd?: number;
  /** Products spent on the check. */
  checkMatvecs: number;
}

/**
 * Chooses the Hessian-vector product for this model. `exact` and `fd` are taken as asked (exact
 * refuses models it cannot differentiate twice); `auto` runs both on one random unit vector: if
 * they disagree by more than 1e-2 relative the exact path is not trusted (a gradient TF.js gets
 * wrong at second order) and finite differences are used; if they agree, the faster one is used.
 */
export async function selectHessian(obj: Evaluator, choice: HvpChoice = 'auto', seed = 12345): Promise<HvpSelection> {
  const twice = twiceDifferentiable(obj.ir);
  if (choice === 'fd') return { op: new FiniteDifferenceHessian(obj), method: 'fd', reason: 'requested', checkMatvecs: 0 };
  if (choice === 'exact') {
    if (!twice.ok) throw new Error(`exact Hessian-vector products are not available for this model: ${twice.reason}; use --hvp fd or auto`);
    return { op: new ExactHessian(obj), method: 'exact', reason: 'requested', checkMatvecs: 0 };
  }
  if (!twice.ok) return { op: new FiniteDifferenceHessian(obj), method: 'fd', reason: twice.reason ?? 'not twice differentiable', checkMatvecs: 0 };

  const rng = new Rng(seed);
  const v = rng.normalVector(obj.dim);
  const nv = norm(v);
  for (let i = 0; i < v.length; i++) v[i] /= nv;
  const exact = new ExactHessian(obj);
  const fd = new FiniteDifferenceHessian(obj);
  let he: Float64Array;
  try {
    he = await exact.matvec(v); // also warms up kernels
  } catch (e) {
    return { op: fd, method: 'fd', reason: `exact products failed (${(e as Error).message.split('\n')[0]})`, checkMatvecs: 1 };
  }
  const hf = await fd.matvec(v);
  let diff = 0;
  for (let i = 0; i < v.length; i++) diff += (he[i] - hf[i]) ** 2;
  const scaleRef = Math.max(norm(hf), norm(he), 1e-30);
  const agreement = Math.sqrt(diff) / scaleRef;
  let t = performance.now();
  await exact.matvec(v);
  const msExact = performance.now() - t;
  t = performance.now();
  await fd.matvec(v);
  const msFd = performance.now() - t;
  exact.matvecs = 0;
  fd.matvecs = 0;
  const base = { agreement, msExact, msFd, checkMatvecs: 4 };
  const a = agreement.toExponential(1);
  if (!(agreement < 1e-2)) {
    return { ...base, op: fd, method: 'fd', reason: `exact and finite-difference products disagree (relative ${a}): exact not trusted` };
  }
  // Finite differences count as correct only when they match exact products to the accuracy
  // budget (1e-5); float32 cancellation usually costs them more than that on random vectors.
  if (agreement < 1e-5 && msFd < msExact) return { ...base, op: fd, method: 'fd', reason: `agree to ${a}; finite differences faster` };
  return { ...base, op: exact, method: 'exact', reason: `checked against finite differences (relative ${a}); exact is the accurate one` };
}

/** Lets pending I/O (progress, cancel messages, Ctrl-C) run between products. */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

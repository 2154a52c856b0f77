/**
 * Hessian operators over a model's full-batch loss, behind the `LinearOperator` interface:
 * - exact: double backprop (Pearlmutter 1994), with second-order-safe gradients installed;
 * - finite differences of gradients: H v ~ (g(theta + eps u) - g(theta - eps u)) / (2 eps) |v|,
 *   u = v / |v|, eps = 3e-3 (docs/methods.md, "Curvature": in float32, eps in [1e-3, 3e-2] gave the top eigenvalue to
 *   ~1e-5 relative, eps = 1e-4 was far worse; the low end of that range because larger steps cross
 *   the kinks of max pooling and ReLU: on a max-pooling convnet eps = 1e-2 was 64% off along the
 *   top eigenvector, 3e-3 was 1e-5), usable for any model;
 * - auto: checks both on one random vector, keeps the faster of those that are right, and when they
 *   disagree decides by symmetry and step checks which one is right (or refuses).
 * A block operator restricts any of them to one layer's parameters (per-layer sharpness).
 */
import type { LinearOperator } from '../linalg/operator';
import { dot, norm } from '../linalg/operator';
import type { Evaluator } from '../evaluator';
import { Rng } from '../rng';
import { InputError, InternalError } from '../errors';

export type HvpMethod = 'exact' | 'fd';
export type HvpChoice = HvpMethod | 'auto';

export const FD_EPS = 3e-3;

/**
 * Added to a job's seed for the random vectors of the automatic choice between exact and
 * finite-difference products (`selectHessian`), so they are not the job's own random draws.
 */
export const HVP_CHECK_SEED_OFFSET = 7919;

export class ExactHessian implements LinearOperator {
  readonly dim: number;
  matvecs = 0;
  relativeNoise = 1e-6;
  constructor(private readonly obj: Evaluator) {
    this.dim = obj.dim;
  }
  async matvec(v: Float64Array): Promise<Float64Array> {
    this.matvecs++;
    let out: Float64Array;
    try {
      out = await this.obj.hvp(v);
    } catch (e) {
      throw notTwiceDifferentiable(e) ?? e;
    }
    await yieldToLoop();
    return out;
  }
}

/** Exact products refused for this model; `why` is the reason alone (for the auto choice's report). */
class ExactUnavailable extends InputError {
  constructor(readonly why: string) {
    super(`exact Hessian-vector products are not available for this model: ${why}; choose finite differences or auto (hvp: fd or auto)`);
  }
}

/**
 * TF.js's refusal to differentiate a gradient kernel again ("gradient function not found for
 * MaxPoolGrad") as the user's error it is: something in the model or its loss (an op in a custom
 * loss, which `twiceDifferentiable` cannot see) has no second derivative in TF.js. Undefined for
 * any other error. The message may come from a shard thread, which passes on the text only.
 */
function notTwiceDifferentiable(e: unknown): ExactUnavailable | undefined {
  const m = /gradient function not found for (\w+)/.exec(e instanceof Error ? e.message : String(e));
  return m ? new ExactUnavailable(`TF.js cannot differentiate ${m[1]} (the gradient of an op in the model or its loss) a second time`) : undefined;
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
  /**
   * Products of the chosen operator the check computed: the first on a random unit vector, the
   * second (if any) on the next Lanczos vector from it. A Lanczos run from the first reuses them (KnownProduct).
   */
  known?: KnownProducts;
}

export type KnownProducts = { v: Float64Array; product: Float64Array }[];

/**
 * An operator that answers the products it was given (a check's) without computing them again,
 * each once: a job whose iteration meets those vectors (a Lanczos run started from the first) saves
 * those products. Any vector proportional to a known one (Lanczos normalises its vectors again)
 * gets the product scaled.
 */
export class KnownProduct implements LinearOperator {
  readonly dim: number;
  readonly relativeNoise?: number;
  private readonly known: KnownProducts;
  constructor(
    private readonly op: LinearOperator,
    known: KnownProducts,
  ) {
    this.dim = op.dim;
    this.relativeNoise = op.relativeNoise;
    this.known = [...known];
  }
  async matvec(x: Float64Array): Promise<Float64Array> {
    for (const [i, k] of this.known.entries()) {
      if (k.v.length !== x.length) continue;
      const s = dot(x, k.v) / dot(k.v, k.v);
      let off = 0;
      for (let j = 0; j < x.length; j++) off += (x[j] - s * k.v[j]) ** 2;
      if (Math.sqrt(off) <= 1e-12 * norm(x)) {
        this.known.splice(i, 1);
        return Float64Array.from(k.product, (h) => s * h);
      }
    }
    return this.op.matvec(x);
  }
}

/** The unit part of hv orthogonal to the unit vector v (Lanczos's q2 from q1 = v), or undefined when hv is along v. */
function lanczosNext(v: Float64Array, hv: Float64Array): Float64Array | undefined {
  const a = dot(v, hv);
  const w = Float64Array.from(hv, (h, i) => h - a * v[i]);
  const nw = norm(w);
  if (!(nw > 1e-8 * norm(hv))) return undefined;
  for (let i = 0; i < w.length; i++) w[i] /= nw;
  return w;
}

/** Relative asymmetry |w·Hv - v·Hw| / (|Hv||w| + |Hw||v|): zero for any symmetric operator. */
function asymmetry(v: Float64Array, hv: Float64Array, w: Float64Array, hw: Float64Array): number {
  const d = Math.abs(dot(w, hv) - dot(v, hw));
  return d / Math.max(norm(hv) * norm(w) + norm(hw) * norm(v), 1e-300);
}

function relDiff(a: Float64Array, b: Float64Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += (a[i] - b[i]) ** 2;
  return Math.sqrt(d) / Math.max(norm(a), norm(b), 1e-300);
}

/** Tolerances of the referee (float32 products): a correct exact product is symmetric to about 1e-6. */
const AGREE = 1e-2;
const EXACT_SYMMETRY = 1e-3;
const FD_SYMMETRY = 1e-2;
const FD_STEP_CONSISTENCY = 1e-2;

/**
 * Chooses the Hessian-vector product for this model. `exact` and `fd` are taken as asked (exact
 * refuses models it cannot differentiate twice); `auto` runs both on one random unit vector v.
 * - They agree (within 1e-2): the exact product, or finite differences when they agree to 1e-5 and
 *   are faster.
 * - They disagree: a third measurement decides, never a default. The Hessian is symmetric, so a
 *   product that is right passes w·Hv = v·Hw for a second random w; finite differences must also
 *   give the same product with a step four times smaller (Richardson's check; they fail both across
 *   ReLU and max-pool kinks, where the gradient jumps). The one that passes is used and the reason
 *   says so; when both or neither pass, no product can be trusted and this throws.
 * `start` replaces the random v (eigs passes its Lanczos start, which has a random part).
 */
export async function selectHessian(obj: Evaluator, choice: HvpChoice = 'auto', seed = 12345, start?: Float64Array): Promise<HvpSelection> {
  const twice = obj.secondOrder();
  if (choice === 'fd') return { op: new FiniteDifferenceHessian(obj), method: 'fd', reason: 'requested', checkMatvecs: 0 };
  if (choice === 'exact') {
    if (!twice.ok) throw new ExactUnavailable(twice.reason ?? 'not twice differentiable');
    return { op: new ExactHessian(obj), method: 'exact', reason: 'requested', checkMatvecs: 0 };
  }
  if (!twice.ok) return { op: new FiniteDifferenceHessian(obj), method: 'fd', reason: twice.reason ?? 'not twice differentiable', checkMatvecs: 0 };

  const rng = new Rng(seed);
  // The check's vector: `start` when given (eigs' Lanczos start, gradientStart's gradient plus a
  // random half, so that Lanczos reuses the check's products), else a random one.
  const v = unit(start ?? rng.normalVector(obj.dim));
  const exact = new ExactHessian(obj);
  const fd = new FiniteDifferenceHessian(obj);
  let he: Float64Array;
  try {
    he = await exact.matvec(v); // also warms up kernels
  } catch (e) {
    return { op: fd, method: 'fd', reason: `exact products failed (${e instanceof ExactUnavailable ? e.why : (e as Error).message.split('\n')[0]})`, checkMatvecs: 1 };
  }
  const hf = await fd.matvec(v);
  const agreement = relDiff(he, hf);
  const a = agreement.toExponential(1);
  if (agreement < AGREE) {
    // Finite differences count as correct only when they match exact products to the accuracy
    // budget (1e-5); float32 cancellation usually costs them more than that on random vectors.
    // Only then does speed decide, so only then are both timed (warm: the first calls above).
    if (agreement < 1e-5) {
      let t = performance.now();
      await exact.matvec(v);
      const msExact = performance.now() - t;
      t = performance.now();
      await fd.matvec(v);
      const msFd = performance.now() - t;
      exact.matvecs = 0;
      fd.matvecs = 0;
      const timed = { agreement, msExact, msFd, checkMatvecs: 4 };
      if (msFd < msExact) return { ...timed, op: fd, method: 'fd', reason: `agree to ${a}; finite differences faster`, known: [{ v, product: hf }] };
      return { ...timed, op: exact, method: 'exact', reason: `agree to ${a}; exact is as accurate and faster`, known: [{ v, product: he }] };
    }
    exact.matvecs = 0;
    fd.matvecs = 0;
    return { agreement, checkMatvecs: 2, op: exact, method: 'exact', reason: `checked against finite differences (relative ${a}); exact is the accurate one`, known: [{ v, product: he }] };
  }

  // They disagree: referee with symmetry (both) and a smaller step (finite differences). The
  // products are costly on large models, so the finite differences' symmetry is measured only when
  // the other checks leave the verdict open. w is the next Lanczos vector from v (the unit part of
  // Hv orthogonal to v): for a product A = S + K with an antisymmetric part K, w·Av - v·Aw =
  // -2 v·Kw, which is no more likely to vanish than for a random w, and a Lanczos run from v then
  // reuses both products (KnownProduct).
  const w = lanczosNext(v, he) ?? unit(rng.normalVector(obj.dim));
  const hw = await exact.matvec(w);
  const exactAsym = asymmetry(v, he, w, hw);
  const exactOk = exactAsym < EXACT_SYMMETRY;
  const fdSmall = await new FiniteDifferenceHessian(obj, fd.eps / 4).matvec(v);
  const fdSteps = relDiff(hf, fdSmall);
  // A step below float32's resolution at theta (weights of 1e30) leaves theta unchanged: a zero product.
  const fdMoves = norm(hf) > 0 || norm(he) === 0;
  const fdStepsOk = fdMoves && fdSteps < FD_STEP_CONSISTENCY;
  const fdAsym = exactOk && !fdStepsOk ? undefined : asymmetry(v, hf, w, await fd.matvec(w));
  const fdOk = fdStepsOk && fdAsym !== undefined && fdAsym < FD_SYMMETRY;
  const checks =
    `exact w·Hv vs v·Hw ${exactAsym.toExponential(1)}; finite differences ` +
    `${fdAsym === undefined ? '' : `w·Hv vs v·Hw ${fdAsym.toExponential(1)}, `}step eps vs eps/4 ${fdSteps.toExponential(1)}` +
    `${fdMoves ? '' : ', and the step does not move the parameters in float32'}`;
  const base = { agreement, checkMatvecs: fdAsym === undefined ? 4 : 5 };
  exact.matvecs = 0;
  fd.matvecs = 0;
  if (exactOk && !fdOk) {
    return { ...base, op: exact, method: 'exact', reason: `exact and finite differences disagree (relative ${a}); finite differences fail the checks (${checks}), exact passes: exact trusted`, known: [{ v, product: he }, { v: w, product: hw }] };
  }
  if (fdOk && !exactOk) {
    return { ...base, op: fd, method: 'fd', reason: `exact and finite differences disagree (relative ${a}); exact fails the symmetry check (${checks}): finite differences trusted`, known: [{ v, product: hf }] };
  }
  throw new InputError(
    `no Hessian-vector product can be trusted on this model: exact and finite differences disagree (relative ${a}) and ` +
      `${exactOk ? 'both pass' : 'neither passes'} the checks (${checks}). Choose one explicitly (exact or finite differences) only if you know it is right`,
  );
}

/** a / |a|, a new vector. */
function unit(a: Float64Array): Float64Array {
  const n = norm(a);
  if (!(n > 0) || !Number.isFinite(n)) throw new InternalError('the check vector must be finite and nonzero');
  return Float64Array.from(a, (x) => x / n);
}

/** Lets pending I/O (progress, cancel messages, Ctrl-C) run between products. */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

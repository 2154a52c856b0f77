/**
 * Curvature operators beyond the Hessian, as plug-ins behind `LinearOperator`: every curvature job
 * (eigenvalues, trace, density, one layer's block, training probes) runs on any of them.
 * - 'hessian': the Hessian of the mean loss (hvp/operators.ts: exact, finite differences or auto);
 * - 'ggn': the generalized Gauss-Newton J^T H_L J (ggn.ts);
 * - 'fisher': the true Fisher, curvlinops' conventions; equal to the GGN for MSE and for the
 *   cross-entropies on logits (fisher.ts);
 * - 'empirical-fisher': c sum_n g_n g_n^T (empiricalFisher.ts).
 * The last three are products J^T M J with an output-space M, computed by an evaluator's optional
 * `curvature` method; an evaluator without it (e.g. one that is not TF.js) is replaced for those
 * products by a TF.js evaluator on this thread when the caller can make one, else refused.
 *
 * Also here: the gradient's overlap with eigenvectors (Gur-Ari, Roberts & Dyer 2018, "Gradient
 * descent happens in a tiny subspace"): the fraction of |g|^2 in the span of the top-k
 * eigenvectors, |P_k g|^2 / |g|^2, and each eigenvector's share cos^2(g, v_i).
 */
import type { CurvatureName, HvpInfo } from '../../shared/results';
import type { Evaluator } from '../evaluator';
import type { LinearOperator } from '../linalg/operator';
import { dot, norm } from '../linalg/operator';
import { HVP_CHECK_SEED_OFFSET, selectHessian, yieldToLoop, type HvpChoice, type KnownProducts } from '../hvp/operators';
import { usesLogits, type LossSpec } from '../model/losses';
import { InputError } from '../errors';
import { fisherUnavailable } from './fisher';
import type { OutputCurvatureName } from './output';

export const CURVATURES: readonly CurvatureName[] = ['hessian', 'ggn', 'fisher', 'empirical-fisher'];

/** What each curvature is called in messages and printed results. */
export const CURVATURE_TITLES: Readonly<Record<CurvatureName, string>> = {
  hessian: 'Hessian',
  ggn: 'generalized Gauss-Newton',
  fisher: 'Fisher',
  'empirical-fisher': 'empirical Fisher',
};

/** A J^T M J curvature's products through an evaluator. */
export class CurvatureOperator implements LinearOperator {
  readonly dim: number;
  matvecs = 0;
  /** Float32 products, like an exact H v: about 1e-6 of |C| |v|. */
  readonly relativeNoise = 1e-6;
  constructor(
    private readonly ev: Evaluator,
    readonly curvature: OutputCurvatureName,
  ) {
    if (!ev.curvature) throw new Error('CurvatureOperator: the evaluator has no curvature products');
    this.dim = ev.dim;
  }
  async matvec(v: Float64Array): Promise<Float64Array> {
    this.matvecs++;
    const out = await this.ev.curvature!(this.curvature, v);
    await yieldToLoop();
    return out;
  }
}

/** Why `curvature` cannot be computed for this model and loss (undefined when it can). */
export function curvatureUnavailable(curvature: CurvatureName, ev: Pick<Evaluator, 'ir' | 'secondOrder'>, loss: LossSpec): string | undefined {
  if (curvature === 'hessian') return undefined;
  const twice = ev.secondOrder();
  if (!twice.ok) return `${CURVATURE_TITLES[curvature]} products need J v by differentiating the backward pass, and ${twice.reason}; analyse the Hessian (finite differences work there)`;
  if (curvature === 'fisher') return fisherUnavailable(loss, usesLogits(ev.ir, loss));
  return undefined;
}

export interface CurvatureSelection {
  op: LinearOperator & { matvecs: number };
  curvature: CurvatureName;
  hvp: HvpInfo;
  /** A TF.js evaluator made because `ev` has no curvature products (the caller disposes it). */
  fallback?: Evaluator;
  /** Products of `op` the selection's check computed (see hvp/operators.ts KnownProduct). */
  known?: KnownProducts;
}

export interface SelectCurvatureOptions {
  hvp?: HvpChoice;
  seed?: number;
  /** The loss, for the checks of what is defined (the Fisher needs a likelihood). */
  loss: LossSpec;
  /** Makes a TF.js evaluator at the same parameters when `ev` lacks curvature products. */
  fallback?: () => Evaluator | Promise<Evaluator>;
  /** The vector the Hessian check runs on (default random): a job's Lanczos start, whose products the job then reuses. */
  start?: Float64Array;
}

/**
 * The operator of `curvature` on `ev`: the Hessian through `selectHessian` (with its checks), or a
 * J^T M J product. Refuses (BasinError) a curvature that is not defined for the model or loss, or
 * that neither `ev` nor a fallback evaluator can compute.
 */
export async function selectCurvature(ev: Evaluator, curvature: CurvatureName, opts: SelectCurvatureOptions): Promise<CurvatureSelection> {
  if (!CURVATURES.includes(curvature)) throw new InputError(`the curvature must be one of ${CURVATURES.join(', ')} (got ${String(curvature)})`);
  if (curvature === 'hessian') {
    const sel = await selectHessian(ev, opts.hvp ?? 'auto', (opts.seed ?? 0) + HVP_CHECK_SEED_OFFSET, opts.start);
    return { op: sel.op, curvature, known: sel.known, hvp: { hvpMethod: sel.method, hvpReason: sel.reason, hvpAgreement: sel.agreement, hvpCheckProducts: sel.checkMatvecs } };
  }
  const why = curvatureUnavailable(curvature, ev, opts.loss);
  if (why) throw new InputError(why);
  if (opts.hvp === 'fd') throw new InputError(`finite differences compute Hessian products only; the ${CURVATURE_TITLES[curvature]} is computed exactly (choose auto or exact)`);
  let target = ev;
  let fallback: Evaluator | undefined;
  let note = '';
  if (!ev.curvature) {
    if (!opts.fallback) throw new InputError(`this evaluator computes Hessian products only, not ${CURVATURE_TITLES[curvature]} products; analyse the Hessian, or use the TF.js engine`);
    fallback = await opts.fallback();
    await fallback.setParameters(ev.parameters());
    target = fallback;
    note = '; on a TF.js evaluator on this thread (the model evaluator has no such products)';
  }
  const reason = `${CURVATURE_TITLES[curvature]} products J^T M J (J v by double backprop, exact up to float32)${note}`;
  return { op: new CurvatureOperator(target, curvature), curvature, fallback, hvp: { hvpMethod: 'exact', hvpReason: reason, hvpCheckProducts: 0 } };
}

/**
 * A Krylov start vector from the gradient: unit(unit(g) + unit(r)) for a random r. The gradient
 * lies mostly in the top eigenspace of the Hessian (Gur-Ari, Roberts & Dyer 2018, "Gradient descent
 * happens in a tiny subspace", arXiv:1812.04754), so Lanczos from it needs fewer products for the
 * top eigenvalues: on the benchmark's MLP 23 instead of 31 at the same error bound, on its
 * MNIST-sized convnet 17 instead of 22. The random half keeps every eigen-direction in the start,
 * where the gradient has none (a symmetric point, a block of parameters the loss does not move
 * yet): Lanczos then still finds them, at the convergence rate of a random start. A zero or
 * non-finite gradient gives unit(r).
 */
export function gradientStart(grad: ArrayLike<number>, r: Float64Array): Float64Array {
  const nr = Math.sqrt(dot(r, r));
  const ng = Math.sqrt(dot(grad, grad));
  const out = Float64Array.from(r, (x) => x / nr);
  if (ng > 0 && Number.isFinite(ng)) for (let i = 0; i < out.length; i++) out[i] += grad[i] / ng;
  const n = Math.sqrt(dot(out, out));
  for (let i = 0; i < out.length; i++) out[i] /= n;
  return out;
}

export interface GradientOverlap {
  /** |P g|^2 / |g|^2, P the projection on the span of the vectors (0 when g = 0). */
  fraction: number;
  /** cos^2(g, v_i) for each vector, in the order given. */
  perVector: number[];
  gradNorm: number;
}

/**
 * The gradient's overlap with a set of (near-)eigenvectors (Gur-Ari et al. 2018). The span's
 * projection uses the vectors orthonormalised (Gram-Schmidt twice), so vectors that are not
 * exactly orthogonal (power iteration's) are not double counted.
 */
export function gradientOverlap(grad: ArrayLike<number>, vectors: readonly Float64Array[]): GradientOverlap {
  const g2 = dot(grad, grad);
  const gradNorm = Math.sqrt(g2);
  if (!(g2 > 0)) return { fraction: 0, perVector: vectors.map(() => 0), gradNorm };
  const perVector = vectors.map((v) => {
    const nv = dot(v, v);
    return nv > 0 ? dot(v, grad) ** 2 / (nv * g2) : 0;
  });
  const basis: Float64Array[] = [];
  for (const v of vectors) {
    const q = Float64Array.from(v);
    for (let pass = 0; pass < 2; pass++) {
      for (const b of basis) {
        const c = dot(b, q);
        for (let i = 0; i < q.length; i++) q[i] -= c * b[i];
      }
    }
    const nq = norm(q);
    if (nq > 1e-8 * norm(v)) basis.push(q.map((x) => x / nq));
  }
  let p2 = 0;
  for (const b of basis) p2 += dot(b, grad) ** 2;
  return { fraction: Math.min(1, p2 / g2), perVector, gradNorm };
}

/**
 * Adaptive sharpness (Kwon, Kim, Park & Choi 2021, "ASAM: Adaptive Sharpness-Aware Minimization
 * for Scale-Invariant Learning of Deep Neural Networks", ICML): SAM's one-step worst case in the
 * ellipsoid |T_w^{-1} e| <= rho instead of a ball,
 *
 *   e = rho T_w^2 g / |T_w g|,   S(w) = L(w + e) - L(w),   g = grad L(w),
 *
 * with the elementwise normalisation operator T_w = |w| + eta. Defaults rho = 0.5, eta = 0.01
 * (the paper's and the reference code's).
 *
 * Which parameters are scaled. The paper's operator is elementwise over all parameters; the
 * reference code (SamsungLabs/ASAM `asam.py`) applies |w| + eta only to PyTorch parameters whose
 * name contains "weight" (convolution and linear kernels, and also batch-norm gamma, which PyTorch
 * calls `weight`) and T = 1 to the rest. Here the default scales kernels only (`scaledRoles:
 * ['kernel']`, in this IR exactly the parameters with more than one dimension) and uses T = 1 on
 * biases and batch-norm gamma/beta; `['kernel', 'gamma']` reproduces the reference code and
 * `['kernel', 'bias', 'gamma', 'beta']` the paper's fully elementwise operator.
 *
 * Invariance. If A is an elementwise positive rescaling that leaves the network function unchanged
 * and T_{Aw} = A T_w (true for T = |w|, i.e. eta = 0, on every rescaled parameter), then
 * g' = A^{-1} g, T' g' = T g and e' = A e, so S is unchanged. The Dinh, Pascanu, Bengio & Bengio
 * (2017) ReLU rescaling (kernel and bias of a layer times alpha, next kernel over alpha) rescales
 * a bias, so exact invariance needs eta = 0 and the bias in `scaledRoles` (or a bias-free
 * network); with the default T = 1 on biases the bias part of the step changes by 1/alpha^2
 * relative to the bias, and with eta = 0.01 the kernels' T is only approximately proportional to
 * |w| (the relative change is about eta / |w_i| per entry). The unit tests measure both.
 *
 * Cost: one gradient and one loss evaluation.
 *
 * Example:
 * ```ts
 * const { sharpness } = await adaptiveSharpness(ev, { rho: 0.5, eta: 0.01 });
 * ```
 */
import type { Evaluator } from '../evaluator';
import type { ParamInfo } from '../model/ir';
import { norm, type IterOptions } from '../linalg/operator';
import { checkPositive, CountingEvaluator, shifted, type EvaluationCounts } from './common';

export type ParamRole = ParamInfo['role'];

export interface AsamOptions extends IterOptions {
  /** Radius of the ellipsoid (default 0.5). */
  rho?: number;
  /** Added to |w| in T_w (default 0.01). */
  eta?: number;
  /** Roles whose entries get T = |w| + eta; the others get T = 1 (default ['kernel']). */
  scaledRoles?: readonly ParamRole[];
}

export interface AsamResult {
  method: 'asam';
  rho: number;
  eta: number;
  scaledRoles: ParamRole[];
  /** L(w). */
  baseLoss: number;
  /** L(w + e). */
  perturbedLoss: number;
  /** perturbedLoss - baseLoss. */
  sharpness: number;
  /** |T_w g|. */
  scaledGradNorm: number;
  /** |e|, the Euclidean length of the ascent step. */
  stepNorm: number;
  evaluations: EvaluationCounts;
}

/** The diagonal of T_w: |w_i| + eta on entries of the scaled roles, 1 elsewhere. */
export function asamScaling(ev: Pick<Evaluator, 'ir'>, w: ArrayLike<number>, eta: number, scaledRoles: readonly ParamRole[]): Float64Array {
  const t = new Float64Array(w.length).fill(1);
  for (const p of ev.ir.params) {
    if (!scaledRoles.includes(p.role)) continue;
    for (let i = p.offset; i < p.offset + p.size; i++) t[i] = Math.abs(w[i]) + eta;
  }
  return t;
}

export async function adaptiveSharpness(ev: Evaluator, opts: AsamOptions = {}): Promise<AsamResult> {
  const rho = opts.rho ?? 0.5;
  const eta = opts.eta ?? 0.01;
  const scaledRoles = [...(opts.scaledRoles ?? ['kernel'])];
  checkPositive('rho', rho, true);
  checkPositive('eta', eta, true);
  const c = new CountingEvaluator(ev, opts.signal);
  const w = ev.parameters();
  const t = asamScaling(ev, w, eta, scaledRoles);
  const { loss: baseLoss, grad } = await c.gradient(w);
  opts.onProgress?.(1, 2);
  const tg = grad.map((gi, i) => t[i] * gi);
  const scaledGradNorm = norm(tg);
  const e = new Float64Array(w.length);
  if (scaledGradNorm > 0) for (let i = 0; i < e.length; i++) e[i] = (rho * t[i] * tg[i]) / scaledGradNorm;
  const perturbedLoss = await c.loss(shifted(w, e));
  opts.onProgress?.(2, 2);
  return {
    method: 'asam',
    rho,
    eta,
    scaledRoles,
    baseLoss,
    perturbedLoss,
    sharpness: perturbedLoss - baseLoss,
    scaledGradNorm,
    stepNorm: norm(e),
    evaluations: c.snapshot(),
  };
}

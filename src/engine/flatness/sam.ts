/**
 * SAM sharpness (Foret, Kleiner, Mobahi & Neyshabur 2021, "Sharpness-Aware Minimization for
 * Efficiently Improving Generalization", ICLR): the loss rise at the first-order worst-case point
 * of the L2 ball of radius rho,
 *
 *   S_rho(w) = L(w + rho g / |g|) - L(w),   g = grad L(w),   rho = 0.05 by default,
 *
 * i.e. the one-step approximation of max_{|e| <= rho} L(w + e) - L(w) that SAM's update uses. For
 * a quadratic L(w + e) = L(w) + g.e + e^T H e / 2 this is rho |g| + rho^2 g^T H g / (2 |g|^2).
 * Cost: one gradient and one loss evaluation. With g = 0 there is no ascent direction and the
 * value is 0 (the reference code divides by |g| + 1e-12, giving the same zero step).
 *
 * Not invariant to reparametrisations that leave the function unchanged (Dinh et al. 2017): see
 * `asam.ts` for the adaptive version.
 *
 * Example:
 * ```ts
 * const { sharpness } = await samSharpness(ev, { rho: 0.05 });
 * ```
 */
import type { Evaluator } from '../evaluator';
import { norm, type IterOptions } from '../linalg/operator';
import { checkPositive, CountingEvaluator, shifted, type EvaluationCounts } from './common';

export interface SamOptions extends IterOptions {
  /** Radius of the L2 ball (default 0.05). */
  rho?: number;
}

export interface SamResult {
  method: 'sam';
  rho: number;
  /** L(w). */
  baseLoss: number;
  /** L(w + rho g / |g|). */
  perturbedLoss: number;
  /** perturbedLoss - baseLoss. */
  sharpness: number;
  /** |g| at w. */
  gradNorm: number;
  evaluations: EvaluationCounts;
}

export async function samSharpness(ev: Evaluator, opts: SamOptions = {}): Promise<SamResult> {
  const rho = opts.rho ?? 0.05;
  checkPositive('rho', rho, true);
  const c = new CountingEvaluator(ev, opts.signal);
  const w = ev.parameters();
  const { loss: baseLoss, grad } = await c.gradient(w);
  opts.onProgress?.(1, 2);
  const gradNorm = norm(grad);
  const step = gradNorm > 0 ? rho / gradNorm : 0;
  const perturbedLoss = await c.loss(shifted(w, grad, step));
  opts.onProgress?.(2, 2);
  return { method: 'sam', rho, baseLoss, perturbedLoss, sharpness: perturbedLoss - baseLoss, gradNorm, evaluations: c.snapshot() };
}

/**
 * Epsilon-sharpness (Keskar, Mudigere, Nocedal, Smelyanskiy & Tang 2017, "On Large-Batch Training
 * for Deep Learning: Generalization Gap and Sharp Minima", ICLR, metric 2.1), in the full
 * parameter space (their A = I_n, no random subspace):
 *
 *   phi(x, eps) = 100 * (max_{z in C} L(x + z) - L(x)) / (1 + L(x)),
 *   C = { z : |z_i| <= eps (|x_i| + 1) },   eps = 1e-3 by default (the paper also uses 5e-4).
 *
 * The paper approximates the inner maximum with a few L-BFGS-B iterations; here it is projected
 * sign-gradient ascent with steps scaled by the box, which keeps to C without a line search:
 *
 *   b_i = eps (|x_i| + 1);   z_0 = 0;
 *   trial = clip(z + a * 2 b * sign(grad L(x + z)), -b, b)      (a = 1: the linear maximiser, a corner)
 *   accept the trial if it raises the loss (then a stays), otherwise halve a;
 *   stop after `steps` trials (default 20), when a trial equals z (a fixed point: every coordinate
 *   with a nonzero gradient sits on the bound the gradient points to, the box's KKT condition), or
 *   when a < 1e-3.
 *
 * The best point seen is kept, so the value never falls below the first corner's, b * sign(g).
 * For a loss convex on C (a quadratic with H >= 0) a full step never lowers the loss (the loss is
 * at least its tangent plane and the corner maximises the tangent's rise), so the iteration climbs
 * from corner to corner to a local maximum over the vertices, where a convex function's maximum on
 * a box lies; it need not be the global one. The result is a lower bound on the true maximum.
 * At a minimum the gradient at z = 0 is rounding noise, so the first corner is arbitrary and the
 * climb ends at whichever local maximum it leads to (on the unit tests' 8-parameter quadratic at its
 * minimum: 57% of the global maximum over the box); with a gradient of exactly 0 nothing moves.
 *
 * Cost: 1 + stepsUsed gradient evaluations (each trial is one gradient evaluation, which also
 * gives its loss). Deterministic: no random numbers.
 *
 * Example:
 * ```ts
 * const { sharpness, maxLoss } = await epsilonSharpness(ev, { epsilon: 5e-4, steps: 20 });
 * ```
 */
import type { Evaluator } from '../evaluator';
import type { IterOptions } from '../linalg/operator';
import { checkInteger, checkPositive, CountingEvaluator, shifted, type EvaluationCounts } from './common';

export interface EpsilonSharpnessOptions extends IterOptions {
  /** Box size relative to |x_i| + 1 (default 1e-3). */
  epsilon?: number;
  /** Maximum ascent trials, each one gradient evaluation (default 20). */
  steps?: number;
  /** Return the maximising perturbation z (a vector of length n; default false). */
  keepPerturbation?: boolean;
}

export interface EpsilonSharpnessResult {
  method: 'epsilonSharpness';
  epsilon: number;
  /** The trial budget asked for. */
  steps: number;
  /** Trials made. */
  stepsUsed: number;
  /** Trials that raised the loss. */
  acceptedSteps: number;
  /** Whether it stopped at a fixed point of the projected step (or a step below 1e-3 of the box). */
  converged: boolean;
  /** L(x). */
  baseLoss: number;
  /** The largest L(x + z) found, z in C. */
  maxLoss: number;
  /** maxLoss - baseLoss. */
  increase: number;
  /** 100 * increase / (1 + baseLoss): Keskar et al.'s metric. */
  sharpness: number;
  /** Fraction of the coordinates of the best z that sit on the box boundary (|z_i| = b_i). */
  boundaryFraction: number;
  /** The best z found, with `keepPerturbation`. */
  perturbation?: Float64Array;
  evaluations: EvaluationCounts;
}

const MIN_STEP = 1e-3;

export async function epsilonSharpness(ev: Evaluator, opts: EpsilonSharpnessOptions = {}): Promise<EpsilonSharpnessResult> {
  const epsilon = opts.epsilon ?? 1e-3;
  const steps = opts.steps ?? 20;
  checkPositive('epsilon', epsilon);
  checkInteger('steps', steps, 0);
  const c = new CountingEvaluator(ev, opts.signal);
  const x = ev.parameters();
  const n = x.length;
  const b = new Float64Array(n);
  for (let i = 0; i < n; i++) b[i] = epsilon * (Math.abs(x[i]) + 1);

  const base = await c.gradient(x);
  opts.onProgress?.(1, steps + 1);
  const baseLoss = base.loss;
  let best = baseLoss;
  let z = new Float64Array(n);
  let g = base.grad;
  let a = 1;
  let stepsUsed = 0;
  let acceptedSteps = 0;
  let converged = false;
  while (stepsUsed < steps) {
    const trial = new Float64Array(n);
    let moved = false;
    for (let i = 0; i < n; i++) {
      const s = g[i] > 0 ? 1 : g[i] < 0 ? -1 : 0;
      const v = Math.min(b[i], Math.max(-b[i], z[i] + a * 2 * b[i] * s));
      trial[i] = v;
      if (v !== z[i]) moved = true;
    }
    if (!moved) {
      converged = true;
      break;
    }
    const r = await c.gradient(shifted(x, trial));
    stepsUsed++;
    opts.onProgress?.(stepsUsed + 1, steps + 1);
    if (r.loss > best) {
      best = r.loss;
      z = trial;
      g = r.grad;
      acceptedSteps++;
    } else {
      a /= 2;
      if (a < MIN_STEP) {
        converged = true;
        break;
      }
    }
  }
  let onBoundary = 0;
  for (let i = 0; i < n; i++) if (Math.abs(z[i]) === b[i]) onBoundary++;
  const increase = best - baseLoss;
  return {
    method: 'epsilonSharpness',
    epsilon,
    steps,
    stepsUsed,
    acceptedSteps,
    converged,
    baseLoss,
    maxLoss: best,
    increase,
    sharpness: (100 * increase) / (1 + baseLoss),
    boundaryFraction: n > 0 ? onBoundary / n : 0,
    perturbation: opts.keepPerturbation ? z : undefined,
    evaluations: c.snapshot(),
  };
}

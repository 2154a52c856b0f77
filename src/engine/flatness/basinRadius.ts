/**
 * Basin radius and log-volume (Huang, Emam, Goldblum, Fowl, Terry, Huang & Goldstein 2019,
 * "Understanding Generalization through Visualizations", arXiv:1906.03291, section on basin
 * volume): walk from the minimiser w along M random unit directions u (Gaussian, normalised over
 * all parameters; default M = 20) until the loss has risen by delta,
 *
 *   r(u) = min { t > 0 : L(w + t u) - L(w) >= delta },
 *
 * (Huang et al.'s radius along random directions), and treat the basin as a star-shaped set with
 * those radii. Its volume is V = V_n(1) E_u[r(u)^n]; with n in the millions that expectation is
 * dominated by the rare longest radius and cannot be sampled, so the estimate reported is
 *
 *   log V ~ log V_n(1) + n * mean_j log r(u_j),   log V_n(1) = (n/2) log pi - lgamma(n/2 + 1).
 *
 * What it estimates: log V_n(1) + n E_u[log r(u)], the log-volume of the ball whose radius is the
 * geometric mean of r(u) over directions. By Jensen's inequality that is at most the star-shaped
 * volume log V_n(1) + log E_u[r^n]; for a quadratic L(w + d) - L(w) = d^T H d / 2 the exact volume
 * of { L - L(w) <= delta } is V_n(1) prod_i sqrt(2 delta / lambda_i) (`quadraticLogVolume`), which
 * the Monte Carlo estimate reaches only when H is a multiple of the identity (all r(u) equal).
 * Read it as a comparative flatness score on the same model and delta, not as a volume.
 *
 * Threshold: delta = 0.1 * (1 + L(w)) by default, the same scale-normalisation as Keskar et al.'s
 * epsilon-sharpness and `pacBayes.ts`'s loss criterion: an absolute rise of 0.1 near a zero-loss
 * minimum, 10% of the loss when the loss is large. `delta` overrides it.
 *
 * Root finding per direction: from a first guess t (1 for the first direction, then the geometric
 * mean of the radii found so far), double t until the rise reaches delta (or halve it until it does
 * not), then bisect the last bracket [t/2, t] until its width is <= tolerance * its upper end
 * (default 1e-3) and return the midpoint. That finds the first crossing on the doubling grid; a
 * loss that rises and falls again between grid points can hide an earlier one. A non-finite loss
 * counts as a rise. Directions on which the loss has not risen by delta at t = maxRadius (default
 * 1e3) are censored: r = maxRadius is used (a lower bound) and their indices are reported.
 *
 * Standard errors are sample std / sqrt(M) over the directions; log-volume's is n times that of
 * mean log r. Cost: about log2(r / guess) + log2(1 / tolerance) + 1 loss evaluations per direction.
 *
 * Example:
 * ```ts
 * const r = await basinRadius(ev, { directions: 20, seed: 3 });
 * console.log(r.meanRadius, r.radiusStderr, r.logVolume);
 * ```
 */
import type { Evaluator } from '../evaluator';
import type { IterOptions } from '../linalg/operator';
import { norm } from '../linalg/operator';
import { meanAndStderr } from '../linalg/hutchinson';
import { Rng } from '../rng';
import { checkInteger, checkPositive, CountingEvaluator, logUnitBallVolume, shifted, type EvaluationCounts } from './common';

export interface BasinRadiusOptions extends IterOptions {
  /** Number of random directions M (default 20). */
  directions?: number;
  /** Loss rise that bounds the basin (default 0.1 * (1 + L(w))). */
  delta?: number;
  /** Relative width of the final bracket (default 1e-3). */
  tolerance?: number;
  /** Largest radius searched; beyond it a direction is censored (default 1e3). */
  maxRadius?: number;
  /** Seed of the directions (default 0). */
  seed?: number;
  /** Return the unit directions used (M vectors of length n; default false). */
  keepDirections?: boolean;
}

export interface BasinRadiusResult {
  method: 'basinRadius';
  delta: number;
  directions: number;
  tolerance: number;
  maxRadius: number;
  /** L(w). */
  baseLoss: number;
  /** r(u_j), censored ones at maxRadius. */
  radii: number[];
  meanRadius: number;
  radiusStderr: number;
  /** mean_j log r(u_j). */
  meanLogRadius: number;
  logRadiusStderr: number;
  /** log V_n(1) + n * meanLogRadius. */
  logVolume: number;
  logVolumeStderr: number;
  /** log V_n(1), n = number of parameters. */
  logUnitBallVolume: number;
  /** Indices of the directions censored at maxRadius. */
  censored: number[];
  seed: number;
  /** The unit directions, with `keepDirections`. */
  unitDirections?: Float64Array[];
  evaluations: EvaluationCounts;
}

/** Smallest radius tried when halving before giving up (the loss rises by delta arbitrarily close to w). */
const MIN_RADIUS = 1e-12;

export async function basinRadius(ev: Evaluator, opts: BasinRadiusOptions = {}): Promise<BasinRadiusResult> {
  const m = opts.directions ?? 20;
  const tolerance = opts.tolerance ?? 1e-3;
  const maxRadius = opts.maxRadius ?? 1e3;
  const seed = opts.seed ?? 0;
  checkInteger('directions', m, 1);
  checkPositive('tolerance', tolerance);
  checkPositive('maxRadius', maxRadius);
  const c = new CountingEvaluator(ev, opts.signal);
  const w = ev.parameters();
  const n = w.length;
  const baseLoss = await c.loss(w);
  const delta = opts.delta ?? 0.1 * (1 + baseLoss);
  checkPositive('delta', delta);

  const rng = new Rng(seed);
  const radii: number[] = [];
  const censored: number[] = [];
  const kept: Float64Array[] = [];
  let sumLog = 0;
  for (let j = 0; j < m; j++) {
    const u = rng.normalVector(n);
    const un = norm(u);
    for (let i = 0; i < n; i++) u[i] /= un;
    if (opts.keepDirections) kept.push(u);
    const above = async (t: number): Promise<boolean> => {
      const rise = (await c.loss(shifted(w, u, t))) - baseLoss;
      return !(rise < delta);
    };
    let t = Math.min(maxRadius, j === 0 ? 1 : Math.exp(sumLog / j));
    let lo: number;
    let hi: number;
    let cut = false;
    if (await above(t)) {
      hi = t;
      lo = t / 2;
      while (lo > MIN_RADIUS && (await above(lo))) {
        hi = lo;
        lo /= 2;
      }
    } else {
      lo = t;
      hi = t;
      while (true) {
        if (lo >= maxRadius) {
          cut = true;
          break;
        }
        t = Math.min(2 * lo, maxRadius);
        if (await above(t)) {
          hi = t;
          break;
        }
        lo = t;
      }
    }
    let r: number;
    if (cut) {
      r = maxRadius;
      censored.push(j);
    } else {
      while (hi - lo > tolerance * hi) {
        const mid = (lo + hi) / 2;
        if (await above(mid)) hi = mid;
        else lo = mid;
      }
      r = (lo + hi) / 2;
    }
    radii.push(r);
    sumLog += Math.log(r);
    opts.onProgress?.(j + 1, m);
  }
  const { mean: meanRadius, stderr: radiusStderr } = meanAndStderr(radii);
  const { mean: meanLogRadius, stderr: logRadiusStderr } = meanAndStderr(radii.map(Math.log));
  const logUnit = logUnitBallVolume(n);
  return {
    method: 'basinRadius',
    delta,
    directions: m,
    tolerance,
    maxRadius,
    baseLoss,
    radii,
    meanRadius,
    radiusStderr,
    meanLogRadius,
    logRadiusStderr,
    logVolume: logUnit + n * meanLogRadius,
    logVolumeStderr: n * logRadiusStderr,
    logUnitBallVolume: logUnit,
    censored,
    seed,
    unitDirections: opts.keepDirections ? kept : undefined,
    evaluations: c.snapshot(),
  };
}

/**
 * Exact log-volume of the sublevel set { d : d^T H d / 2 <= delta } of a quadratic with Hessian
 * eigenvalues `eigs`: an ellipsoid with semi-axes sqrt(2 delta / lambda_i), so
 * log V = log V_n(1) + sum_i log sqrt(2 delta / lambda_i). Infinity if any eigenvalue is <= 0
 * (the set is unbounded).
 */
export function quadraticLogVolume(eigs: ArrayLike<number>, delta: number): number {
  checkPositive('delta', delta);
  const n = eigs.length;
  let s = logUnitBallVolume(n);
  for (let i = 0; i < n; i++) {
    if (!(eigs[i] > 0)) return Infinity;
    s += 0.5 * Math.log((2 * delta) / eigs[i]);
  }
  return s;
}

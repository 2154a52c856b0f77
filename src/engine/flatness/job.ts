/**
 * The `flatness` job: runs the chosen flatness measures (SAM, ASAM, epsilon-sharpness, PAC-Bayes
 * flatness, basin radius; see each module) on a problem and reports each with its parameters, its standard error where it is stochastic, and
 * the evaluations it used.
 */
import type { FlatnessMeasure, FlatnessResult, Progress } from '../../shared/results';
import type { JobOptions } from '../../shared/workerProtocol';
import type { Problem } from '../problem';
import { runMeta } from '../meta';
import { InputError } from '../errors';
import { checkCount, checkPositive, MAX_FLATNESS_SAMPLES } from '../limits';
import { adaptiveSharpness, basinRadius, epsilonSharpness, pacBayesFlatness, samSharpness, type EvaluationCounts } from './index';

export const FLATNESS_MEASURES = ['sam', 'asam', 'epsilon', 'pacbayes', 'radius'] as const;

/**
 * The measures to run and their parameters: the wire format's fields (src/shared/workerProtocol.ts),
 * documented there. Defaults: rho 0.05 (SAM), asamRho 0.5 and eta 0.01 (ASAM), epsilon 1e-3,
 * target 0.1 and 10 draws (PAC-Bayes), delta 0.1 (1 + L) and 20 directions (basin radius).
 */
export type FlatnessOptions = Pick<
  JobOptions,
  'seed' | 'measures' | 'rho' | 'asamRho' | 'eta' | 'epsilon' | 'target' | 'draws' | 'criterion' | 'delta' | 'directions'
>;

const total = (c: EvaluationCounts): number => c.loss + c.gradient + c.accuracy;

/**
 * Checks the options before any evaluation (the worker receives raw JSON): known measures, finite
 * radii and thresholds in range, and the draws and directions within MAX_FLATNESS_SAMPLES.
 */
export function checkFlatnessOptions(opts: FlatnessOptions): void {
  if (opts.seed !== undefined && !(Number.isInteger(opts.seed) && opts.seed >= 0)) throw new InputError(`the seed must be a whole number >= 0 (got ${opts.seed})`);
  if (opts.measures !== undefined) {
    if (opts.measures.length === 0) throw new InputError(`no flatness measure asked for (choose from ${FLATNESS_MEASURES.join(', ')})`);
    for (const m of opts.measures) {
      if (!(FLATNESS_MEASURES as readonly string[]).includes(m)) throw new InputError(`unknown flatness measure '${String(m)}' (${FLATNESS_MEASURES.join(', ')})`);
    }
  }
  checkPositive('the SAM radius rho', opts.rho, { allowZero: true });
  checkPositive('the ASAM radius', opts.asamRho, { allowZero: true });
  checkPositive('the ASAM offset eta', opts.eta, { allowZero: true });
  checkPositive('the epsilon-sharpness box size', opts.epsilon);
  checkPositive('the PAC-Bayes target', opts.target, { allowZero: true });
  checkPositive('the basin-radius loss rise delta', opts.delta);
  checkCount('the number of PAC-Bayes draws', opts.draws, 1, MAX_FLATNESS_SAMPLES);
  checkCount('the number of basin-radius directions', opts.directions, 1, MAX_FLATNESS_SAMPLES);
  if (opts.criterion !== undefined && opts.criterion !== 'error' && opts.criterion !== 'loss') {
    throw new InputError(`the PAC-Bayes criterion must be error or loss (got ${String(opts.criterion)})`);
  }
}

export async function runFlatness(
  problem: Problem,
  opts: FlatnessOptions,
  ctx: { signal?: AbortSignal; onProgress?: (p: Progress) => void } = {},
): Promise<FlatnessResult> {
  const t0 = performance.now();
  checkFlatnessOptions(opts);
  const names = opts.measures ?? [...FLATNESS_MEASURES];
  const seed = opts.seed ?? 0;
  const ev = await problem.evaluator();
  try {
    const lossValue = await ev.loss();
    const measures: FlatnessMeasure[] = [];
    const base = { signal: ctx.signal };
    for (const [i, name] of names.entries()) {
      const onProgress = (done: number, all: number): void =>
        ctx.onProgress?.({ done: i + done / Math.max(all, 1), total: names.length, message: `${name}: ${done}/${all}` });
      switch (name) {
        case 'sam': {
          const r = await samSharpness(ev, { ...base, onProgress, rho: opts.rho });
          measures.push({ name, value: r.sharpness, params: { rho: r.rho }, detail: { baseLoss: r.baseLoss, perturbedLoss: r.perturbedLoss, gradNorm: r.gradNorm }, evaluations: total(r.evaluations) });
          break;
        }
        case 'asam': {
          const r = await adaptiveSharpness(ev, { ...base, onProgress, rho: opts.asamRho, eta: opts.eta });
          measures.push({
            name,
            value: r.sharpness,
            params: { rho: r.rho, eta: r.eta, scaled: r.scaledRoles.join('+') },
            detail: { baseLoss: r.baseLoss, perturbedLoss: r.perturbedLoss, stepNorm: r.stepNorm },
            evaluations: total(r.evaluations),
          });
          break;
        }
        case 'epsilon': {
          const r = await epsilonSharpness(ev, { ...base, onProgress, epsilon: opts.epsilon });
          measures.push({
            name,
            value: r.sharpness,
            params: { epsilon: r.epsilon, steps: r.steps },
            detail: { baseLoss: r.baseLoss, maxLoss: r.maxLoss, stepsUsed: r.stepsUsed, boundaryFraction: r.boundaryFraction, converged: String(r.converged) },
            evaluations: total(r.evaluations),
          });
          break;
        }
        case 'pacbayes': {
          const criterion = opts.criterion ?? (problem.lossName === 'categoricalCrossentropy' || problem.lossName === 'crossEntropyFromLogits' || problem.lossName === 'binaryCrossentropy' ? 'error' : 'loss');
          const r = await pacBayesFlatness(ev, { ...base, onProgress, seed, criterion, target: opts.target, draws: opts.draws });
          measures.push({
            name,
            value: r.flatness,
            params: { criterion: r.criterion, target: r.target, magnitudeAware: r.magnitudeAware, epsilon: r.epsilon, draws: r.draws, seed: r.seed },
            detail: { sigma: r.sigma, increase: r.increase, increaseStderr: r.increaseStderr, bound: r.bound, iterations: r.iterations },
            evaluations: total(r.evaluations),
          });
          break;
        }
        case 'radius': {
          const r = await basinRadius(ev, { ...base, onProgress, seed, delta: opts.delta, directions: opts.directions });
          measures.push({
            name,
            value: r.meanRadius,
            stderr: r.radiusStderr,
            params: { delta: r.delta, directions: r.directions, tolerance: r.tolerance, maxRadius: r.maxRadius, seed: r.seed },
            detail: { logVolume: r.logVolume, logVolumeStderr: r.logVolumeStderr, meanLogRadius: r.meanLogRadius, radii: r.radii, censored: r.censored.length },
            evaluations: total(r.evaluations),
          });
          break;
        }
      }
    }
    return {
      kind: 'flatness',
      ...runMeta(problem, ev, seed, lossValue),
      ms: performance.now() - t0,
      measures,
    };
  } finally {
    ev.dispose();
  }
}

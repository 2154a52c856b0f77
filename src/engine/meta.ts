/** What every result says about how it was computed: backend, threads, seed, model, data, loss. */
import type { RunMeta } from '../shared/results';
import type { Evaluator } from './evaluator';
import type { Problem } from './problem';
import { engineInfo } from './backend';

export function runMeta(problem: Problem, ev: Evaluator, seed: number, lossValue: number): Omit<RunMeta, 'ms'> {
  const be = engineInfo(ev);
  return {
    backend: be.name,
    backendDetail: ev.threads > 1 ? `${be.detail}, ${ev.threads} threads` : be.detail,
    ...(be.provider ? { provider: be.provider } : {}),
    seed,
    model: problem.description,
    params: problem.ir.numParams,
    samples: ev.numSamples,
    lossName: problem.lossName,
    lossValue,
  };
}

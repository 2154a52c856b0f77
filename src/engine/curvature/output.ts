/** The output-space curvatures by name, for evaluators and shard threads (see ggn.ts, fisher.ts, empiricalFisher.ts). */
import type { OutputCurvature } from '../objective';
import type { CurvatureName } from '../../shared/results';
import { ggnOutput } from './ggn';
import { fisherOutput } from './fisher';
import { empiricalFisherOutput } from './empiricalFisher';

/** The curvatures that are J^T M J products (every one but the Hessian). */
export type OutputCurvatureName = Exclude<CurvatureName, 'hessian'>;

export const OUTPUT_CURVATURES: Readonly<Record<OutputCurvatureName, OutputCurvature>> = {
  ggn: ggnOutput,
  fisher: fisherOutput,
  'empirical-fisher': empiricalFisherOutput,
};

/** `trace`: the curvature's trace with its standard error (Hutch++ or Hutchinson). */
import type { TraceResult } from '../results';
import { fmt } from '../format';
import { choice, int } from '../fields';
import { CURVATURE_OPTIONS, type CurvatureJobOptions } from './common';
import { curvatureTitle, defineJob, footer } from './spec';

export interface TraceJobOptions extends CurvatureJobOptions {
  method?: 'hutchpp' | 'hutchinson';
  matvecs?: number;
}

export const trace = defineJob<TraceJobOptions, TraceResult>({
  summary: 'curvature trace with its standard error',
  options: {
    ...CURVATURE_OPTIONS,
    method: { spec: choice(['hutchpp', 'hutchinson']), flag: 'method', help: 'Hutch++ (Meyer et al. 2021) or Hutchinson (hutchpp)' },
    matvecs: { spec: int(1), flag: 'matvecs', arg: 'M', help: 'curvature-vector products (60)' },
  },
  defaults: {},
  resultKind: 'trace',
  title: (r) => `Hessian trace${r.layer ? ` of ${r.layer}` : ''}`,
  format: (r) =>
    `${curvatureTitle(r.curvature)} trace${r.layer ? ` of layer '${r.layer}'` : ''} (${r.method === 'hutchpp' ? 'Hutch++' : 'Hutchinson'}, ${r.hvps} products)\n` +
    `trace  ${fmt(r.trace, 8)}  ± ${fmt(r.stderr, 2)} (standard error)\n\n${footer(r)}`,
});

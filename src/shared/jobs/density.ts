/** `density`: the spectral density by stochastic Lanczos quadrature. */
import type { DensityResult } from '../results';
import { fmt } from '../format';
import { int } from '../fields';
import { CURVATURE_OPTIONS, type CurvatureJobOptions } from './common';
import { curvatureTitle, defineJob, footer, textTable } from './spec';

export interface DensityJobOptions extends CurvatureJobOptions {
  steps?: number;
  runs?: number;
  gridPoints?: number;
}

export const density = defineJob<DensityJobOptions, DensityResult>({
  summary: 'spectral density (stochastic Lanczos quadrature)',
  options: {
    ...CURVATURE_OPTIONS,
    steps: { spec: int(1), flag: 'steps', arg: 'S', help: 'Lanczos steps per run (90)' },
    runs: { spec: int(1), flag: 'runs', arg: 'R', help: 'random starting vectors (1)' },
    gridPoints: { spec: int(2), flag: 'grid', arg: 'G', help: 'points of the density grid (10000)' },
  },
  defaults: {},
  resultKind: 'density',
  title: () => 'Hessian spectral density',
  format(r) {
    const all = r.nodes.flat();
    const lo = Math.min(...all);
    const hi = Math.max(...all);
    // A coarse text histogram of the smoothed density on 12 bins.
    const bins = 12;
    const mass = new Array<number>(bins).fill(0);
    r.nodes.forEach((ns, run) => ns.forEach((t, i) => (mass[Math.min(bins - 1, Math.floor(((t - lo) / (hi - lo || 1)) * bins))] += r.weights[run][i] / r.nodes.length)));
    const rows = [['eigenvalue range', 'mass', '']];
    for (let b = 0; b < bins; b++) {
      const a = lo + ((hi - lo) * b) / bins;
      rows.push([`${fmt(a, 4)} .. ${fmt(a + (hi - lo) / bins, 4)}`, fmt(mass[b], 3), '#'.repeat(Math.round(mass[b] * 40))]);
    }
    const what = r.curvature && r.curvature !== 'hessian' ? ` of the ${curvatureTitle(r.curvature)}` : '';
    return `Spectral density${what}${r.layer ? ` of layer '${r.layer}'` : ''} (SLQ: ${r.runs} run${r.runs > 1 ? 's' : ''} x ${r.steps} steps, ${r.hvps} products, sigma^2 ${fmt(r.sigma2, 2)})\n${textTable(rows)}\n\n${footer(r)}`;
  },
});

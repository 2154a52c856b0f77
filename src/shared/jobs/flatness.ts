/** `flatness`: SAM, adaptive (ASAM), epsilon-sharpness, PAC-Bayes flatness, basin radius and log-volume. */
import type { FlatnessResult } from '../results';
import { fmt } from '../format';
import { choice, choices, FLATNESS_MEASURE_NAMES, int, num, type FlatnessMeasureName } from '../fields';
import { SEED } from './common';
import { defineJob, footer, textTable } from './spec';

/**
 * The measures to run and their parameters. Defaults: rho 0.05 (SAM), asamRho 0.5 and eta 0.01
 * (ASAM), epsilon 1e-3, target 0.1 and 10 draws (PAC-Bayes), delta 0.1 (1 + L) and 20 directions
 * (basin radius).
 */
export interface FlatnessJobOptions {
  seed?: number;
  /** Flatness measures to run (all five by default). */
  measures?: FlatnessMeasureName[];
  /** SAM radius (0.05). */
  rho?: number;
  /** ASAM radius (0.5) and the offset eta in T_w = |w| + eta (0.01). */
  asamRho?: number;
  eta?: number;
  /** Epsilon-sharpness box size (1e-3). */
  epsilon?: number;
  /** PAC-Bayes: the allowed rise in training error (0.1) or loss, draws per noise level (10), the criterion. */
  target?: number;
  draws?: number;
  criterion?: 'error' | 'loss';
  /** Basin radius: the loss rise that ends the basin (0.1 (1 + L)), and the number of directions (20). */
  delta?: number;
  directions?: number;
}

const LABELS: Record<string, [string, string]> = {
  sam: ['SAM sharpness', 'L(w + rho g/|g|) - L(w)'],
  asam: ['adaptive sharpness', 'ASAM, scale-invariant ascent'],
  epsilon: ['epsilon-sharpness', '100 x max rise in the box / (1 + L)'],
  pacbayes: ['PAC-Bayes flatness', "1/sigma'^2, magnitude-aware"],
  radius: ['basin radius', 'mean over random directions'],
};

export const flatness = defineJob<FlatnessJobOptions, FlatnessResult>({
  summary: 'flatness measures: SAM, ASAM, epsilon-sharpness, PAC-Bayes, basin radius',
  options: {
    seed: SEED,
    measures: { spec: choices(FLATNESS_MEASURE_NAMES), flag: 'measures', arg: 'M[,M...]', help: 'the measures to run' },
    rho: { spec: num(0, true), flag: 'rho', arg: 'R', help: 'SAM radius (0.05)' },
    asamRho: { spec: num(0, true), flag: 'asam-rho', arg: 'R', help: 'ASAM radius (0.5)' },
    eta: { spec: num(0, true), flag: 'eta', arg: 'E', help: 'ASAM offset in T_w = |w| + eta (0.01)' },
    epsilon: { spec: num(0), flag: 'epsilon', arg: 'E', help: 'epsilon-sharpness box size (1e-3)' },
    target: { spec: num(0, true), flag: 'target', arg: 'T', help: 'PAC-Bayes: the allowed rise in training error or loss (0.1)' },
    draws: { spec: int(1), flag: 'draws', arg: 'N', help: 'PAC-Bayes: draws per noise level (10)' },
    criterion: { spec: choice(['error', 'loss']), flag: 'criterion', help: 'PAC-Bayes: what the target bounds (error)' },
    delta: { spec: num(0), flag: 'delta', arg: 'D', help: 'basin radius: the loss rise that ends the basin (0.1 (1 + L))' },
    directions: { spec: int(1), flag: 'directions', arg: 'N', help: 'basin radius: random directions (20)' },
  },
  defaults: { measures: [...FLATNESS_MEASURE_NAMES] },
  resultKind: 'flatness',
  title: () => 'Flatness measures',
  format(r) {
    const show = (v: number | string | boolean | number[] | null): string => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : fmt(v, 4)) : Array.isArray(v) ? `[${v.length}]` : String(v));
    const rows = [['measure', 'value', '± stderr', 'what']];
    const notes: string[] = [];
    for (const m of r.measures) {
      const [label, what] = LABELS[m.name] ?? [m.name, ''];
      rows.push([label, fmt(m.value, 6), m.stderr !== undefined ? fmt(m.stderr, 2) : '', what]);
      const extra = m.name === 'radius' ? ` log-volume ${show(m.detail.logVolume ?? null)} ± ${show(m.detail.logVolumeStderr ?? null)};` : m.name === 'pacbayes' ? ` sigma' ${show(m.detail.sigma ?? null)};` : '';
      notes.push(`  ${label}:${extra} ${Object.entries(m.params).map(([k, v]) => `${k} ${show(v)}`).join(', ')}; ${m.evaluations} evaluations`);
    }
    return `Flatness measures\n${textTable(rows)}\n${notes.join('\n')}\n\n${footer(r)}`;
  },
});

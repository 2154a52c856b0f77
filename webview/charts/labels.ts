/**
 * What charts say about themselves, as pure functions (no DOM, no Chart.js) so tests can check
 * them: when a legend is shown, a run chart's subtitle, and the heatmap's colour scale.
 */
import type { ProbeRecord } from '../../src/shared/results';
import { fmt } from '../format';

/** A series as the legend sees it: bands, table-only series have no legend entry. */
export interface LegendSeries {
  band?: 'upper' | 'lower';
  tableOnly?: boolean;
}

/**
 * Whether a line chart shows its legend: when it draws several series, or when its subtitle names
 * its series (`named`), so the reader can match the words to the lines even when one is drawn.
 */
export function legendShown(series: LegendSeries[], named: boolean): boolean {
  const drawn = series.filter((s) => !s.band && !s.tableOnly).length;
  return drawn > 1 || (named && drawn > 0);
}

/** The loss chart's subtitle: the losses it draws ("training and test loss" only with test data). */
export function lossSubtitle(records: ProbeRecord[]): string {
  const names = ['training'];
  if (records.some((r) => r.testLoss !== undefined)) names.push('test');
  if (records.some((r) => r.batchLoss !== undefined)) names.push('minibatch');
  return `${names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}` : names[0]} loss`;
}

/** Colours on a logarithmic scale: the loss is positive and spans more than a factor of 10. */
export function isLogScale(min: number, max: number): boolean {
  return min > 0 && max / min > 10;
}

/** The colour bar's title: what the colours are, and that their scale is logarithmic when it is. */
export function colorBarTitle(log: boolean): string {
  return log ? 'loss (log scale)' : 'loss';
}

/** A note under a heatmap whose colour scale is logarithmic (none when it is linear). */
export function colorScaleNote(loss: (number | null)[][]): string | undefined {
  let min = Infinity;
  let max = -Infinity;
  for (const row of loss)
    for (const v of row) {
      if (v === null || !Number.isFinite(v)) continue;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  if (!(max >= min) || !isLogScale(min, max)) return undefined;
  return `Colours and contours on a logarithmic scale: the loss spans a factor of ${fmt(max / min, 3)} (${fmt(min)} to ${fmt(max)}).`;
}

/**
 * Whether tick `index` is an axis' end tick too close to the one before it to label (an axis that
 * ends at the last step, 1500, has ticks ... 1200, 1400, 1500): half the tick spacing or closer.
 */
export function crowdedEnd(values: number[], index: number): boolean {
  const n = values.length;
  if (n < 3 || index !== n - 1) return false;
  const step = values[1] - values[0];
  return Math.abs(values[n - 1] - values[n - 2]) <= 0.5 * Math.abs(step);
}

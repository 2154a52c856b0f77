/**
 * A Chart.js line chart card. Points are {x, y} on a linear x axis with parsing off, so the
 * decimation plugin (LTTB) can thin long runs; streamed points are appended in place.
 */
import { Ticks, type ChartDataset, type Plugin, type TooltipItem } from 'chart.js';
import { Chart, scaleTheme, tooltipTheme } from './setup';
import { Card, canvasPng, toggleButton, type PanelContext } from './card';
import { fmt, h, logTick, table, thin, tick } from '../format';
import { alpha, seriesColor, type SeriesColor } from '../theme';
import { crowdedEnd, legendShown } from './labels';

export interface Pt {
  x: number;
  y: number;
}

export interface LineSeries {
  label: string;
  color: SeriesColor;
  points: Pt[];
  dash?: number[];
  /** Drawn thin and faint (raw data under its smoothed line). */
  faint?: boolean;
  /** A band's edges: no line, no legend, not in the table; 'lower' fills up to the series before it. */
  band?: 'upper' | 'lower';
  /** In the data table (default true). */
  table?: boolean;
  /** Only in the table (e.g. a standard error): not drawn, not in the legend. */
  tableOnly?: boolean;
  /** Column name in the table (default: label). */
  column?: string;
}

export interface LineCardOptions {
  xLabel: string;
  yLabel: string;
  /** Logarithmic y axis by default. */
  log?: boolean;
  /** Offer a 'Log y' toggle. */
  logToggle?: boolean;
  /** LTTB decimation for long series. */
  decimate?: boolean;
  /** Dots on the points of sparse series (probes every K steps); default none. */
  dots?: boolean;
  /** On a log axis, values below this fraction of the largest are drawn at it (densities decay to 1e-300). */
  logFloor?: number;
  /** Vertical reference lines (e.g. x = 0 on a slice). */
  xMarkers?: number[];
  /** The aria-label of the chart; default: the latest value of each series. */
  describe?: (series: LineSeries[]) => string;
  wide?: boolean;
  /** The subtitle names the series: show the legend even for one drawn series. */
  namedSeries?: boolean;
  /** The x axis ends at the data (the last step), not at the next round tick. */
  xToData?: boolean;
}

type LineDataset = ChartDataset<'line', Pt[]>;

export class LineCard extends Card {
  private series: LineSeries[] = [];
  /** What the chart draws: the series' points, less the non-positive ones on a log axis. */
  private shown: Pt[][] = [];
  private readonly canvas: HTMLCanvasElement;
  private readonly empty: HTMLElement;
  private readonly chart: Chart<'line', Pt[]>;
  private log: boolean;

  constructor(
    key: string,
    title: string,
    ctx: PanelContext,
    private readonly opts: LineCardOptions,
  ) {
    super(key, title, ctx, { wide: opts.wide });
    this.log = ctx.settings.logY[key] ?? opts.log ?? false;
    if (opts.logToggle) {
      this.tools.prepend(
        toggleButton('Log y', this.log, 'Logarithmic y axis', (on) => {
          this.log = on;
          ctx.settings.logY[key] = on;
          ctx.save();
          this.rebuild();
        }),
      );
    }
    this.canvas = h('canvas', { role: 'img', 'aria-label': `${title}: no data yet` });
    this.empty = h('p', { className: 'empty', text: 'Waiting for data…' });
    this.figure.append(this.canvas, this.empty);
    const markers: Plugin<'line'> = {
      id: 'basinMarkers',
      beforeDatasetsDraw: (chart) => {
        const xs = this.opts.xMarkers ?? [];
        const { ctx: g, chartArea: a, scales } = chart;
        const sx = scales.x;
        if (!sx || !xs.length) return;
        g.save();
        g.strokeStyle = alpha(this.ctx.palette().foreground, 0.45);
        g.setLineDash([4, 4]);
        g.lineWidth = 1;
        for (const x of xs) {
          const px = sx.getPixelForValue(x);
          if (px < a.left || px > a.right) continue;
          g.beginPath();
          g.moveTo(px, a.top);
          g.lineTo(px, a.bottom);
          g.stroke();
        }
        g.restore();
      },
    };
    this.chart = new Chart<'line', Pt[]>(this.canvas, {
      type: 'line',
      data: { datasets: [] },
      options: this.chartOptions(),
      plugins: [markers],
    });
  }

  private chartOptions(): NonNullable<Chart<'line', Pt[]>['options']> {
    const p = this.ctx.palette();
    const o = this.opts;
    return {
      parsing: false,
      normalized: true,
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: 'nearest', axis: 'x', intersect: false },
      scales: {
        // Ending at the data: the end is no tick of its own (its label would crowd the last tick's).
        x: o.xToData
          ? {
              type: 'linear',
              bounds: 'data',
              ...scaleTheme(p, o.xLabel),
              ticks: {
                ...scaleTheme(p, o.xLabel).ticks,
                callback(value, index, ticks) {
                  return crowdedEnd(ticks.map((t) => t.value), index) ? '' : Ticks.formatters.numeric.call(this, Number(value), index, ticks);
                },
              },
            }
          : { type: 'linear', ...scaleTheme(p, o.xLabel) },
        y: this.log
          ? {
              type: 'logarithmic',
              ...scaleTheme(p, o.yLabel),
              ticks: {
                ...scaleTheme(p, o.yLabel).ticks,
                autoSkip: false,
                callback: (v, _i, ticks) => {
                  const lo = ticks[0]?.value ?? 1;
                  const hi = ticks[ticks.length - 1]?.value ?? 10;
                  return logTick(Number(v), Math.log10(Math.max(hi, lo) / Math.max(1e-300, Math.min(hi, lo))));
                },
              },
            }
          : { type: 'linear', ...scaleTheme(p, o.yLabel) },
      },
      plugins: {
        decimation: { enabled: !!o.decimate, algorithm: 'lttb', samples: 600, threshold: 1200 },
        legend: {
          display: legendShown(this.series, !!o.namedSeries),
          position: 'bottom',
          labels: {
            color: p.foreground,
            boxWidth: 14,
            boxHeight: 3,
            padding: 10,
            filter: (item) => item.datasetIndex === undefined || !this.offChart(this.series[item.datasetIndex]),
          },
        },
        tooltip: {
          ...tooltipTheme(p),
          filter: (item: TooltipItem<'line'>) => !this.offChart(this.series[item.datasetIndex]),
          callbacks: {
            title: (items: TooltipItem<'line'>[]) => (items[0] ? `${o.xLabel} ${tick(items[0].parsed.x ?? 0)}` : ''),
            label: (item: TooltipItem<'line'>) => `${item.dataset.label ?? ''}: ${fmt(item.parsed.y)}`,
          },
        },
      },
    };
  }

  /** Bands and table-only series have no legend entry or tooltip. */
  private offChart(s: LineSeries | undefined): boolean {
    return !s || !!s.band || !!s.tableOnly;
  }

  private dataset(s: LineSeries, data: Pt[]): LineDataset {
    const p = this.ctx.palette();
    const c = seriesColor(p, s.color);
    const sparse = !!this.opts.dots && !s.band && !s.faint && !s.dash && data.length > 0 && data.length <= 60;
    return {
      label: s.label,
      data,
      borderColor: s.band ? 'transparent' : s.faint ? alpha(c, 0.3) : c,
      backgroundColor: s.band === 'lower' ? alpha(c, 0.18) : c,
      pointBackgroundColor: c,
      borderWidth: s.band ? 0 : s.faint ? 1 : p.highContrast ? 2.5 : 1.75,
      borderDash: s.dash,
      pointRadius: sparse ? 2.5 : 0,
      pointHoverRadius: s.band ? 0 : 4,
      pointHitRadius: s.band ? 0 : 6,
      fill: s.band === 'lower' ? '-1' : false,
      spanGaps: false,
      tension: 0,
      hidden: !!s.tableOnly,
    };
  }

  /** On a log axis with a floor, the smallest value drawn (0: none). */
  private floor = 0;

  private visiblePoints(points: Pt[]): Pt[] {
    if (!this.log) return points.slice();
    if (this.floor > 0) return points.map((q) => (q.y < this.floor ? { x: q.x, y: this.floor } : q));
    return points.filter((q) => q.y > 0);
  }

  /** Replaces all series. */
  setSeries(series: LineSeries[], xMarkers?: number[]): void {
    this.series = series;
    if (xMarkers) this.opts.xMarkers = xMarkers;
    this.rebuild();
  }

  /** Appends points to series i (the chart updates on update()). */
  append(i: number, pts: Pt[]): void {
    const s = this.series[i];
    if (!s || !pts.length) return;
    for (const q of pts) s.points.push(q);
    const shown = this.shown[i];
    for (const q of this.visiblePoints(pts)) shown.push(q);
  }

  get seriesCount(): number {
    return this.series.length;
  }

  hasData(): boolean {
    return this.series.some((s) => s.points.length > 0);
  }

  private rebuild(): void {
    let max = 0;
    for (const s of this.series) for (const q of s.points) if (q.y > max) max = q.y;
    this.floor = this.opts.logFloor && max > 0 ? max * this.opts.logFloor : 0;
    this.shown = this.series.map((s) => this.visiblePoints(s.points));
    this.chart.options = this.chartOptions();
    this.chart.data.datasets = this.series.map((s, i) => this.dataset(s, this.shown[i]));
    this.update();
  }

  /** Redraws after appends; refreshes the label and the table. */
  update(): void {
    // Decimation swaps `data` for its thinned copy: hand it the full arrays again before it runs.
    this.chart.data.datasets.forEach((d, i) => {
      d.data = this.shown[i];
    });
    this.chart.update('none');
    this.empty.hidden = this.hasData();
    this.canvas.setAttribute('aria-label', this.describe());
    this.refreshTable();
  }

  private describe(): string {
    if (this.opts.describe) return this.opts.describe(this.series);
    const title = this.titleEl.textContent ?? '';
    const parts = this.series
      .filter((s) => !this.offChart(s) && !s.faint && s.points.length)
      .map((s) => {
        const last = s.points[s.points.length - 1];
        return `${s.label} ${fmt(last.y)} at ${this.opts.xLabel} ${tick(last.x)}`;
      });
    return parts.length ? `${title}: ${parts.join('; ')}` : `${title}: no data yet`;
  }

  protected buildTable(): HTMLElement | undefined {
    const cols = this.series.filter((s) => (!s.band && s.table !== false) || s.tableOnly);
    if (!cols.length || !this.hasData()) return undefined;
    const rows = new Map<number, (number | null)[]>();
    cols.forEach((s, j) => {
      for (const q of s.points) {
        let r = rows.get(q.x);
        if (!r) rows.set(q.x, (r = cols.map(() => null)));
        r[j] = Number.isFinite(q.y) ? q.y : null;
      }
    });
    const sorted = [...rows.entries()].sort((a, b) => a[0] - b[0]).map(([x, r]) => [x, ...r]);
    const t = thin(sorted);
    return table(this.titleEl.textContent ?? '', [this.opts.xLabel, ...cols.map((s) => s.column ?? s.label)], t.rows, t.note);
  }

  images(): Record<string, string> {
    return this.hasData() ? { [this.key]: canvasPng(this.canvas, this.ctx.palette(), this.exportTitle()) } : {};
  }

  applyTheme(): void {
    this.rebuild();
  }

  override destroy(): void {
    this.chart.destroy();
    super.destroy();
  }
}

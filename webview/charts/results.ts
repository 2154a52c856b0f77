/**
 * One card per analysis result: eigenvalues (bars), spectral density, 1-D slices, the 2-D surface
 * (heatmap), trace, flatness measures and model info (tables).
 */
import type { ChartDataset, Plugin, TooltipItem } from 'chart.js';
import { resultKindTitle, type ResultView } from '../../src/shared/protocol';
import { isResultOf, type ResultJobKind, type ResultOf } from '../../src/shared/jobs';
import type {
  DirectionInfo,
  EigsResult,
  FlatnessResult,
  InfoResult,
  JobResult,
  RunMeta,
  SliceResult,
  TraceResult,
} from '../../src/shared/results';
import { Chart, scaleTheme, tooltipTheme } from './setup';
import { Card, canvasPng, type PanelContext } from './card';
import { LineCard, type LineSeries, type Pt } from './lineCard';
import { HeatmapCard } from './heatmap';
import { colorScaleNote } from './labels';
import { duration, fmt, h, table } from '../format';
import { alpha, type SeriesColor } from '../theme';

const COLORS: SeriesColor[] = ['blue', 'orange', 'green', 'purple', 'red', 'yellow'];

/** A card showing one result, updated in place while a grid streams. */
export interface ResultCard {
  card: Card;
  update(view: ResultView): void;
}

function metaLine(r: RunMeta): string {
  return [
    r.model,
    `${r.params.toLocaleString('en-US')} parameters`,
    `${r.samples.toLocaleString('en-US')} samples`,
    `${r.lossName} ${fmt(r.lossValue)}`,
    r.backendDetail || r.backend,
    `seed ${r.seed}`,
    duration(r.ms),
  ].join(' · ');
}

function hvpNote(r: { hvpMethod: string; hvpReason: string }): string {
  return `Hessian-vector products: ${r.hvpMethod === 'exact' ? 'exact (double backprop)' : 'finite differences'}; ${r.hvpReason}.`;
}

const kindTitle = resultKindTitle;

/** A line in a slice's legend: the direction's kind, normalization and eigenvalue. */
export function directionLabel(d: DirectionInfo | undefined, i: number): string {
  if (!d) return `direction ${i + 1}`;
  const bits = [d.norm && d.norm !== 'unit' ? `${d.norm}-norm` : '', d.eigenvalue !== undefined ? `λ ${fmt(d.eigenvalue)}` : ''].filter(
    Boolean,
  );
  return bits.length ? `${d.kind} (${bits.join(', ')})` : d.kind;
}

function lengths(dirs: DirectionInfo[]): string {
  return dirs.map((d, i) => `${directionLabel(d, i)}: length ${fmt(d.length)}`).join('; ');
}

function rowsOf(v: (number | null)[] | (number | null)[][] | undefined): (number | null)[][] {
  if (!v || !v.length) return [];
  return Array.isArray(v[0]) ? (v as (number | null)[][]) : [v as (number | null)[]];
}

function pts(x: number[], ys: (number | null)[]): Pt[] {
  return x.map((xi, i) => ({ x: xi, y: ys[i] === null || ys[i] === undefined ? NaN : (ys[i] as number) }));
}

function sliceSeries(r: SliceResult): LineSeries[] {
  const loss = rowsOf(r.loss);
  const test = rowsOf(r.testLoss);
  const out: LineSeries[] = loss.map((row, i) => ({
    label: r.kind === 'interpolate' ? 'loss' : directionLabel(r.directions[i], i),
    color: COLORS[i % COLORS.length],
    points: pts(r.x, row),
  }));
  test.forEach((row, i) =>
    out.push({
      label: `${r.kind === 'interpolate' ? 'test loss' : `${directionLabel(r.directions[i], i)}, test`}`,
      color: COLORS[i % COLORS.length],
      dash: [5, 4],
      points: pts(r.x, row),
    }),
  );
  return out;
}

function gridBadge(view: ResultView, r: { complete: boolean; evaluations: number }, total: number): string | undefined {
  if (view.partial) return `computing ${r.evaluations}/${total}`;
  return r.complete ? undefined : 'cancelled: partial';
}

/** The eigenvalue bars, with the error bounds drawn as whiskers (usually far below a pixel). */
class EigsCard extends Card {
  private readonly canvas: HTMLCanvasElement;
  private readonly chart: Chart<'bar', number[], string>;
  private result?: EigsResult;

  constructor(key: string, title: string, ctx: PanelContext) {
    super(key, title, ctx);
    this.canvas = h('canvas', { role: 'img', 'aria-label': 'Eigenvalues' });
    this.figure.append(this.canvas);
    const whiskers: Plugin<'bar'> = {
      id: 'basinWhiskers',
      afterDatasetsDraw: (chart) => {
        const r = this.result;
        const meta = chart.getDatasetMeta(0);
        const sy = chart.scales.y;
        if (!r || !sy) return;
        const g = chart.ctx;
        g.save();
        g.strokeStyle = this.ctx.palette().foreground;
        g.lineWidth = 1;
        meta.data.forEach((bar, i) => {
          const e = r.errorBounds[i] ?? 0;
          const v = r.eigenvalues[i];
          const top = sy.getPixelForValue(v + e);
          const bottom = sy.getPixelForValue(v - e);
          if (Math.abs(bottom - top) < 2) return;
          g.beginPath();
          g.moveTo(bar.x, top);
          g.lineTo(bar.x, bottom);
          g.moveTo(bar.x - 4, top);
          g.lineTo(bar.x + 4, top);
          g.moveTo(bar.x - 4, bottom);
          g.lineTo(bar.x + 4, bottom);
          g.stroke();
        });
        g.restore();
      },
    };
    this.chart = new Chart<'bar', number[], string>(this.canvas, {
      type: 'bar',
      data: { labels: [], datasets: [] },
      options: this.options(),
      plugins: [whiskers],
    });
  }

  private options(): NonNullable<Chart<'bar', number[], string>['options']> {
    const p = this.ctx.palette();
    return {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      scales: { x: { type: 'category', ...scaleTheme(p, 'index') }, y: { type: 'linear', ...scaleTheme(p, 'eigenvalue') } },
      plugins: {
        legend: { display: false },
        tooltip: {
          ...tooltipTheme(p),
          callbacks: {
            label: (item: TooltipItem<'bar'>) => {
              const r = this.result;
              const i = item.dataIndex;
              return r ? `${fmt(r.eigenvalues[i], 6)} ± ${fmt(r.errorBounds[i], 2)} (residual ${fmt(r.residuals[i], 2)})` : '';
            },
          },
        },
      },
    };
  }

  private meta?: HTMLElement;

  set(r: EigsResult, meta?: HTMLElement): void {
    this.result = r;
    if (meta) this.meta = meta;
    const p = this.ctx.palette();
    const c = r.which === 'top' ? p.blue : p.orange;
    const ds: ChartDataset<'bar', number[]> = {
      label: 'eigenvalue',
      data: r.eigenvalues,
      backgroundColor: alpha(c, 0.75),
      borderColor: c,
      borderWidth: p.highContrast ? 2 : 1,
      maxBarThickness: 48,
    };
    this.chart.options = this.options();
    this.chart.data.labels = r.eigenvalues.map((_, i) => `λ${r.which === 'top' ? i + 1 : `−${i + 1}`}`);
    this.chart.data.datasets = [ds];
    this.chart.update('none');
    const list = r.eigenvalues.map((v, i) => `λ${i + 1} ${fmt(v)} ± ${fmt(r.errorBounds[i], 2)}`).join(' · ');
    this.canvas.setAttribute('aria-label', `${this.titleEl.textContent}: ${list}`);
    this.setNotes(
      h('p', { className: 'values', text: list }),
      [
        r.method === 'lanczos' ? 'Lanczos' : 'power iteration',
        r.converged ? 'converged' : 'not converged',
        `${r.hvps} Hessian-vector products`,
        r.condition ? `condition ${fmt(r.condition.value)} (${r.condition.definition})` : '',
      ]
        .filter(Boolean)
        .join(' · '),
      hvpNote(r),
      ...(this.meta ? [this.meta] : []),
    );
    this.refreshTable();
  }

  protected buildTable(): HTMLElement | undefined {
    const r = this.result;
    if (!r) return undefined;
    return table(
      'Eigenvalues',
      ['', 'eigenvalue', 'error bound', 'residual'],
      r.eigenvalues.map((v, i) => [`λ${i + 1}`, v, r.errorBounds[i], r.residuals[i]]),
    );
  }

  images(): Record<string, string> {
    return this.result ? { [this.key]: canvasPng(this.canvas, this.ctx.palette(), this.exportTitle()) } : {};
  }

  applyTheme(): void {
    if (this.result) this.set(this.result);
  }

  override destroy(): void {
    this.chart.destroy();
    super.destroy();
  }
}

/** Results that are a few numbers or a list: the table is the figure. */
class TableCard extends Card {
  private content: () => HTMLElement | undefined = () => undefined;

  constructor(key: string, title: string, ctx: PanelContext, wide: boolean) {
    super(key, title, ctx, { table: false, wide });
    this.figure.classList.add('figure-table');
  }

  /** The table, with an optional headline above it (a trace's value ± error). */
  set(content: () => HTMLElement | undefined, headline?: string): void {
    this.content = content;
    this.figure.replaceChildren(
      ...(headline ? [h('p', { className: 'big', text: headline })] : []),
      content() ?? h('p', { className: 'empty', text: 'No data.' }),
    );
  }

  protected buildTable(): HTMLElement | undefined {
    return this.content();
  }

  images(): Record<string, string> {
    return {};
  }

  applyTheme(): void {}
}

/** A list of numbers, the first few only: [5.27, 6.07, 4.64, 5.21, … 20 values]. */
function list(v: unknown[]): string {
  const shown = v.slice(0, 5).map((x) => (typeof x === 'number' ? fmt(x) : String(x)));
  return `[${shown.join(', ')}${v.length > 5 ? `, … ${v.length} values` : ''}]`;
}

function kv(o: Record<string, unknown>): string {
  return Object.entries(o)
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => `${k} ${typeof v === 'number' ? fmt(v) : Array.isArray(v) ? list(v) : String(v)}`)
    .join(', ');
}

const FLATNESS_NAMES: Record<string, string> = {
  sam: 'SAM sharpness (worst loss rise in a ρ-ball)',
  asam: 'ASAM (adaptive) sharpness',
  epsilon: 'ε-sharpness (Keskar et al.)',
  pacbayes: 'PAC-Bayes flatness (largest σ)',
  radius: 'Flat radius along random directions',
};

function traceTable(r: TraceResult): HTMLElement {
  return table(
    'Hessian trace',
    ['quantity', 'value'],
    [
      ['trace', r.trace],
      ['standard error', r.stderr],
      ['method', r.method === 'hutchpp' ? 'Hutch++' : 'Hutchinson'],
      ['Hessian-vector products', r.hvps],
    ],
  );
}

function flatnessTable(r: FlatnessResult): HTMLElement {
  return table(
    'Flatness measures',
    ['measure', 'value', '± stderr', 'parameters', 'detail', 'evaluations'],
    r.measures.map((m) => [FLATNESS_NAMES[m.name] ?? m.name, m.value, m.stderr ?? null, kv(m.params), kv(m.detail), m.evaluations]),
  );
}

function infoTable(r: InfoResult): HTMLElement {
  return table(
    `${r.name}: ${r.params.toLocaleString('en-US')} parameters`,
    ['layer', 'kind', 'output shape', 'parameters', 'detail'],
    r.layers.map((l) => [l.name, l.kind, `[${l.outShape.join(', ')}]`, l.params, l.detail]),
  );
}

/** Where the numbers came from: model, data, loss, backend, seed, time (last, in small print). */
function meta(r: JobResult): HTMLElement {
  return h('p', { className: 'meta', text: r.kind === 'info' ? `${r.model} · ${r.backendDetail}` : metaLine(r) });
}

/** A card of one kind: made once, then shown again with each update of its result. */
interface KindCard<K extends ResultJobKind> {
  card: Card;
  show(view: ResultView, r: ResultOf<K>): void;
}
type CardMaker<K extends ResultJobKind> = (key: string, title: string, ctx: PanelContext, first: ResultOf<K>) => KindCard<K>;

/** Surfaces and trajectory planes: a heatmap with contours (and the path). */
function heatmapCard(key: string, title: string, ctx: PanelContext): KindCard<'surface' | 'trajectory'> {
  const card = new HeatmapCard(key, title, ctx);
  return {
    card,
    show(v, r) {
      card.setTitle(v.title || kindTitle(r), kindTitle(r));
      card.setBadge(gridBadge(v, r, r.x.length * r.y.length));
      const notes = [`${r.x.length} × ${r.y.length} grid, ${r.evaluations} evaluations. Contours at 10 levels; + marks the analysed parameters.`];
      if (r.kind === 'trajectory') notes[0] = `${r.x.length} × ${r.y.length} grid, ${r.evaluations} evaluations; path of ${r.path?.length ?? 0} checkpoints (○ first, ● last).`;
      const logNote = colorScaleNote(r.loss);
      if (logNote) notes.push(logNote);
      const cos = r.directions[1]?.cosineBeforeOrthogonalization;
      if (cos !== undefined) notes.push(`Cosine between the directions before orthogonalization: ${fmt(cos, 3)}.`);
      card.setNotes(...notes, meta(r));
      card.set(r);
    },
  };
}

/** Slices and interpolations: one line per direction (and per split). */
function sliceCard(key: string, title: string, ctx: PanelContext, first: SliceResult): KindCard<'slice' | 'interpolate'> {
  const card = new LineCard(key, title, ctx, {
    xLabel: first.kind === 'interpolate' ? 'α' : 't (step along the direction)',
    yLabel: 'loss',
    logToggle: true,
  });
  return {
    card,
    show(v, r) {
      card.setTitle(v.title || kindTitle(r), kindTitle(r));
      card.setBadge(gridBadge(v, r, r.x.length * Math.max(1, rowsOf(r.loss).length)));
      card.setSeries(sliceSeries(r), r.kind === 'interpolate' ? [0, 1] : [0]);
      const ends = r.endpoints?.map((e) => `${e.file}: ${fmt(e.loss)}`).join('; ');
      card.setNotes(
        r.kind === 'interpolate'
          ? `Loss on (1 − α)·A + α·B; dashed lines at the two models (α = 0, 1).${ends ? ` End points: ${ends}.` : ''}`
          : `Loss along each direction from the analysed parameters (dashed line at t = 0). ${lengths(r.directions)}.`,
        meta(r),
      );
    },
  };
}

/** A result that is a few numbers or a list: its table, a headline and notes. */
function tableCard<K extends 'trace' | 'flatness' | 'info'>(wide: boolean, fill: (card: TableCard, r: ResultOf<K>) => void): CardMaker<K> {
  return (key, title, ctx) => {
    const card = new TableCard(key, title, ctx, wide);
    return {
      card,
      show(v, r) {
        card.setTitle(v.title || kindTitle(r), kindTitle(r));
        fill(card, r);
      },
    };
  };
}

/** Every result kind's card (a Record over the registry's kinds: a new job needs its card here). */
const CARDS: { [K in ResultJobKind]: CardMaker<K> } = {
  surface: heatmapCard,
  trajectory: heatmapCard,
  slice: sliceCard,
  interpolate: sliceCard,
  density: (key, title, ctx) => {
    const card = new LineCard(key, title, ctx, { xLabel: 'eigenvalue λ', yLabel: 'density', logToggle: true, log: true, decimate: true, logFloor: 1e-8 });
    return {
      card,
      show(v, r) {
        card.setTitle(v.title || kindTitle(r), kindTitle(r));
        card.setSeries([{ label: 'density', color: 'blue', points: r.grid.map((x, i) => ({ x, y: r.density[i] })) }]);
        card.setNotes(
          `Stochastic Lanczos quadrature: ${r.steps} Lanczos steps × ${r.runs} run${r.runs === 1 ? '' : 's'}, ` +
            `Gaussian width σ² = ${fmt(r.sigma2)}, ${r.hvps} Hessian-vector products.`,
          hvpNote(r),
          meta(r),
        );
      },
    };
  },
  eigs: (key, title, ctx) => {
    const card = new EigsCard(key, title, ctx);
    return {
      card,
      show(v, r) {
        card.setTitle(v.title || kindTitle(r), kindTitle(r));
        card.set(r, meta(r));
      },
    };
  },
  trace: tableCard<'trace'>(false, (card, r) => {
    card.set(() => traceTable(r), `tr H = ${fmt(r.trace)} ± ${fmt(r.stderr, 2)}`);
    card.setNotes(hvpNote(r), meta(r));
  }),
  flatness: tableCard<'flatness'>(true, (card, r) => {
    card.set(() => flatnessTable(r));
    card.setNotes(meta(r));
  }),
  info: tableCard<'info'>(true, (card, r) => {
    card.set(() => infoTable(r));
    const bits = [
      r.samples !== undefined ? `${r.samples} samples` : '',
      r.lossName ? `${r.lossName} ${fmt(r.lossValue)}` : '',
      r.accuracy !== undefined ? `accuracy ${fmt(r.accuracy)}` : '',
    ];
    card.setNotes(bits.filter(Boolean).join(' · '), `Hessian-vector products: ${r.hvpMethods}`, meta(r));
  }),
};

/** The result kinds the panel draws (every job's but training's, which is drawn as a run). */
export const CARD_KINDS: readonly ResultJobKind[] = Object.keys(CARDS) as ResultJobKind[];

function makeCard<K extends ResultJobKind>(kind: K, view: ResultView, ctx: PanelContext): ResultCard {
  const first = view.result;
  if (!isResultOf(kind, first)) throw new Error(`a ${kind} card for a ${first.kind} result`);
  const made = CARDS[kind](`result-${view.id}`, view.title || kindTitle(first), ctx, first);
  // An update of another kind (never sent: ids are per result) is ignored rather than drawn wrong.
  const update = (v: ResultView): void => {
    if (isResultOf(kind, v.result)) made.show(v, v.result);
  };
  update(view);
  return { card: made.card, update };
}

/** The card for a result view (its kind decides which). */
export function createResultCard(view: ResultView, ctx: PanelContext): ResultCard {
  return makeCard(view.result.kind, view, ctx);
}

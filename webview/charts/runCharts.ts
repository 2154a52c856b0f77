/**
 * The training-run charts: loss, sharpness against 2/eta (with the top eigenvalue of the
 * Gauss-Newton matrix or Fisher beside the Hessian's when the run probes it), the gradient's
 * overlap with the top eigenvector, accuracy, trace with its error band, the
 * implicit-regularization terms, the gradient noise scale, distances and per-layer sharpness.
 * Each chart is a list of series computed from probe records; streamed records are fed through the
 * same functions and appended, so a long run never redraws from scratch.
 */
import type { CurvatureName, ProbeRecord, TrainSettings } from '../../src/shared/results';
import type { RunView } from '../../src/shared/protocol';
import { LineCard, type LineSeries, type Pt } from './lineCard';
import type { PanelContext } from './card';
import type { SeriesColor } from '../theme';
import { lossSubtitle } from './labels';

interface SeriesSpec {
  label: string;
  color: SeriesColor;
  value: (r: ProbeRecord) => number | undefined;
  dash?: number[];
  /** Smoothed by the EMA slider (the raw curve stays, faint). */
  smooth?: boolean;
  band?: 'upper' | 'lower';
  tableOnly?: boolean;
}

interface ChartSpec {
  key: string;
  title: string;
  /** Under the title; a function when it depends on the records (which series there are). */
  subtitle?: string | ((records: ProbeRecord[], settings?: TrainSettings) => string);
  /** The subtitle names the series: the legend is always shown. */
  named?: boolean;
  yLabel: string;
  log?: boolean;
  logToggle?: boolean;
  /** Shown before any data arrives (the others appear with their first point). */
  always?: boolean;
  series: (records: ProbeRecord[], settings?: TrainSettings) => SeriesSpec[];
}

/** The curvature a run probes beside the Hessian, as a series label names it. */
const CURVATURE_LABEL: Record<Exclude<CurvatureName, 'hessian'>, string> = {
  ggn: 'Gauss-Newton',
  fisher: 'Fisher',
  'empirical-fisher': 'empirical Fisher',
};

/** The other curvature's name ('Gauss-Newton'), from the run's settings ('other curvature' before they arrive). */
function curvatureName(settings?: TrainSettings): string {
  const c = settings?.curvature;
  return c && c !== 'hessian' ? CURVATURE_LABEL[c] : 'other curvature';
}

const LAYER_COLORS: SeriesColor[] = ['blue', 'orange', 'green', 'purple', 'red', 'yellow'];

const has = (records: ProbeRecord[], f: (r: ProbeRecord) => unknown): boolean => records.some((r) => f(r) !== undefined);

const SPECS: ChartSpec[] = [
  {
    key: 'loss',
    title: 'Loss',
    subtitle: lossSubtitle,
    named: true,
    yLabel: 'loss',
    log: true,
    logToggle: true,
    always: true,
    series: (rs) => [
      { label: 'train loss', color: 'blue', value: (r) => r.loss, smooth: true },
      ...(has(rs, (r) => r.testLoss)
        ? [{ label: 'test loss', color: 'orange' as const, value: (r: ProbeRecord) => r.testLoss, smooth: true }]
        : []),
      ...(has(rs, (r) => r.batchLoss)
        ? [{ label: 'minibatch loss', color: 'purple' as const, value: (r: ProbeRecord) => r.batchLoss, smooth: true }]
        : []),
    ],
  },
  {
    key: 'sharpness',
    title: 'Sharpness',
    subtitle: (rs, st) =>
      has(rs, (r) => r.curvatureMax)
        ? `λmax of the Hessian and of the ${curvatureName(st)} matrix against the stability threshold 2/η`
        : 'λmax against the stability threshold 2/η',
    named: true,
    yLabel: 'λmax',
    logToggle: true,
    series: (rs, st) => [
      { label: 'λmax', color: 'red', value: (r) => r.lambdaMax },
      ...(has(rs, (r) => r.curvatureMax)
        ? [{ label: `${curvatureName(st)} λmax`, color: 'blue' as const, value: (r: ProbeRecord) => r.curvatureMax, dash: [2, 3] }]
        : []),
      { label: 'threshold 2/η', color: 'foreground', value: (r) => (r.lambdaMax !== undefined ? r.threshold : undefined), dash: [6, 4] },
    ],
  },
  {
    key: 'overlap',
    title: 'Gradient overlap',
    subtitle: 'cos² between the gradient and λmax’s eigenvector (Gur-Ari, Roberts, Dyer 2018)',
    yLabel: 'cos²',
    logToggle: true,
    series: () => [{ label: 'cos²(∇L, v₁)', color: 'green', value: (r) => r.lambdaMaxOverlap }],
  },
  {
    key: 'accuracy',
    title: 'Accuracy',
    yLabel: 'accuracy',
    series: (rs) => [
      { label: 'train accuracy', color: 'blue', value: (r) => r.accuracy },
      ...(has(rs, (r) => r.testAccuracy)
        ? [{ label: 'test accuracy', color: 'orange' as const, value: (r: ProbeRecord) => r.testAccuracy }]
        : []),
    ],
  },
  {
    key: 'trace',
    title: 'Hessian trace',
    subtitle: 'Hutch++ estimate, band ± 1 standard error',
    yLabel: 'tr H',
    series: (rs) => [
      ...(has(rs, (r) => r.traceStderr)
        ? [
            {
              label: 'trace + stderr',
              color: 'purple' as const,
              band: 'upper' as const,
              value: (r: ProbeRecord) => plus(r.trace, r.traceStderr, 1),
            },
            {
              label: 'trace − stderr',
              color: 'purple' as const,
              band: 'lower' as const,
              value: (r: ProbeRecord) => plus(r.trace, r.traceStderr, -1),
            },
          ]
        : []),
      { label: 'trace', color: 'purple', value: (r) => r.trace },
      ...(has(rs, (r) => r.traceStderr)
        ? [{ label: 'stderr', color: 'purple' as const, tableOnly: true, value: (r: ProbeRecord) => r.traceStderr }]
        : []),
    ],
  },
  {
    key: 'terms',
    title: 'Implicit regularization',
    subtitle: 'IGR (η/4)|∇L|², SGD (η/4)E|∇L_B − ∇L|²',
    named: true,
    yLabel: 'term',
    log: true,
    logToggle: true,
    series: (rs) => [
      { label: 'IGR term', color: 'green', value: (r) => r.igrTerm },
      ...(has(rs, (r) => r.sgdTerm) ? [{ label: 'SGD term', color: 'orange' as const, value: (r: ProbeRecord) => r.sgdTerm }] : []),
    ],
  },
  {
    key: 'noise',
    title: 'Gradient noise scale',
    subtitle: 'B_simple = tr Σ / |∇L|² (McCandlish et al.)',
    yLabel: 'B_simple',
    log: true,
    logToggle: true,
    series: () => [{ label: 'B_simple', color: 'purple', value: (r) => r.noiseScale }],
  },
  {
    key: 'distance',
    title: 'Parameters',
    subtitle: 'distance from initialization and weight norm',
    named: true,
    yLabel: 'norm',
    series: () => [
      { label: 'distance from init', color: 'blue', value: (r) => r.distInit },
      { label: 'weight norm', color: 'green', value: (r) => r.weightNorm, dash: [6, 3] },
    ],
  },
  {
    key: 'layers',
    title: 'Per-layer sharpness',
    subtitle: 'λmax of each layer’s Hessian block',
    named: true,
    yLabel: 'λmax',
    logToggle: true,
    series: (rs) => {
      const names = new Set<string>();
      for (const r of rs) if (r.layerSharpness) for (const k of Object.keys(r.layerSharpness)) names.add(k);
      return [...names].map((n, i) => ({
        label: n,
        color: LAYER_COLORS[i % LAYER_COLORS.length],
        value: (r: ProbeRecord) => r.layerSharpness?.[n],
      }));
    },
  },
];

function subtitleOf(spec: ChartSpec, records: ProbeRecord[], settings?: TrainSettings): string | undefined {
  return typeof spec.subtitle === 'function' ? spec.subtitle(records, settings) : spec.subtitle;
}

/**
 * What each run chart would draw for these records: its key, subtitle and the series' labels and
 * points (no smoothing), the charts with no point left out. For tests and anything that needs the
 * numbers without a canvas.
 */
export function runChartData(records: ProbeRecord[], settings?: TrainSettings): { key: string; title: string; subtitle?: string; series: { label: string; points: Pt[] }[] }[] {
  return SPECS.map((spec) => ({
    key: spec.key,
    title: spec.title,
    subtitle: subtitleOf(spec, records, settings),
    series: spec.series(records, settings).map((sr) => {
      const f = feeder(sr.value);
      return { label: sr.label, points: records.map(f).filter((p): p is Pt => p !== undefined) };
    }),
  })).filter((c) => c.series.some((sr) => sr.points.length > 0));
}

function plus(v: number | undefined, e: number | undefined, sign: number): number | undefined {
  return v === undefined || e === undefined ? undefined : v + sign * e;
}

type Feeder = (r: ProbeRecord) => Pt | undefined;

/** A series' points from records, as a stateful function so streaming continues where it stopped. */
function feeder(value: (r: ProbeRecord) => number | undefined, ema?: number): Feeder {
  let acc = 0;
  let n = 0;
  return (r) => {
    const v = value(r);
    if (v === undefined || v === null || !Number.isFinite(v)) return undefined;
    if (ema === undefined) return { x: r.step, y: v };
    // Debiased exponential moving average (as TensorBoard's smoothing slider).
    n++;
    acc = ema * acc + (1 - ema) * v;
    return { x: r.step, y: acc / (1 - ema ** n) };
  };
}

interface Slot {
  spec: ChartSpec;
  card: LineCard;
  signature: string;
  feeders: Feeder[];
}

export class RunCharts {
  private readonly slots: Slot[];
  private records: ProbeRecord[] = [];
  /** The run shown (its settings arrive with its first records). */
  private run: RunView | undefined;

  constructor(
    private readonly ctx: PanelContext,
    grid: HTMLElement,
  ) {
    this.slots = SPECS.map((spec) => {
      const card = new LineCard(`run-${spec.key}`, spec.title, ctx, {
        xLabel: 'step',
        yLabel: spec.yLabel,
        log: spec.log,
        logToggle: spec.logToggle,
        decimate: true,
        dots: true,
        namedSeries: spec.named,
        xToData: true,
      });
      card.setTitle(spec.title, subtitleOf(spec, []));
      grid.append(card.el);
      return { spec, card, signature: '', feeders: [] };
    });
  }

  get cards(): LineCard[] {
    return this.slots.map((s) => s.card);
  }

  /** Draws a run from scratch (a new selection, the smoothing changed, or steps were rewritten). */
  show(run: RunView | undefined): void {
    this.run = run;
    this.records = run ? run.probes : [];
    for (const slot of this.slots) this.reset(slot);
  }

  /** Appends streamed records (already added to the run this view shows). */
  append(records: ProbeRecord[]): void {
    for (const slot of this.slots) {
      const specs = slot.spec.series(this.records, this.run?.settings);
      if (signature(specs) !== slot.signature) {
        this.reset(slot);
        continue;
      }
      const added: Pt[][] = slot.feeders.map(() => []);
      for (const r of records) {
        slot.feeders.forEach((f, i) => {
          const q = f(r);
          if (q) added[i].push(q);
        });
      }
      added.forEach((pts, i) => slot.card.append(i, pts));
      if (added.some((a) => a.length)) slot.card.update();
      slot.card.setVisible(slot.spec.always === true || slot.card.hasData());
    }
  }

  private reset(slot: Slot): void {
    const specs = slot.spec.series(this.records, this.run?.settings);
    const w = this.ctx.settings.smoothing;
    const series: LineSeries[] = [];
    const feeders: Feeder[] = [];
    for (const s of specs) {
      const base = { color: s.color, dash: s.dash, band: s.band, tableOnly: s.tableOnly, points: [] as Pt[] };
      if (s.smooth && w > 0) {
        series.push({ ...base, label: `${s.label} (raw)`, column: s.label, faint: true });
        feeders.push(feeder(s.value));
        series.push({ ...base, label: `${s.label} (EMA ${w.toFixed(2)})`, table: false });
        feeders.push(feeder(s.value, w));
      } else {
        series.push({ ...base, label: s.label });
        feeders.push(feeder(s.value));
      }
    }
    for (const r of this.records) {
      feeders.forEach((f, i) => {
        const q = f(r);
        if (q) series[i].points.push(q);
      });
    }
    slot.signature = signature(specs);
    slot.feeders = feeders;
    slot.card.setTitle(slot.spec.title, subtitleOf(slot.spec, this.records, this.run?.settings));
    slot.card.setSeries(series);
    slot.card.setVisible(slot.spec.always === true || slot.card.hasData());
  }

  images(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const s of this.slots) if (s.card.visible) Object.assign(out, s.card.images());
    return out;
  }

  applyTheme(): void {
    for (const s of this.slots) s.card.applyTheme();
  }
}

function signature(specs: SeriesSpec[]): string {
  return specs.map((s) => s.label).join('\u0000');
}

/**
 * The panel's data (what the host sent: runs and results) and its view settings (the only thing
 * it persists, through the webview's getState/setState: the host replays the data on restore).
 */
import type { PanelSnapshot, ResultView, RunView } from '../src/shared/protocol';
import type { ProbeRecord, TrainDone, TrainSettings } from '../src/shared/results';

/** 'all' shows every result. */
export const ALL_RESULTS = 'all';

export interface ViewSettings {
  run?: string;
  result?: string;
  /** EMA weight for the loss curves, 0 (off) to 0.99. */
  smoothing: number;
  /** Cards showing their data table instead of (below) the chart, by card key. */
  tables: string[];
  /** Per-card logarithmic y axis, by card key (absent: the card's default). */
  logY: Record<string, boolean>;
}

export function defaultSettings(): ViewSettings {
  return { smoothing: 0, tables: [], logY: {} };
}

/** Settings from getState(), validated field by field (an older panel may have saved another shape). */
export function parseSettings(raw: unknown): ViewSettings {
  const s = defaultSettings();
  if (!raw || typeof raw !== 'object') return s;
  const r = raw as Record<string, unknown>;
  if (typeof r.run === 'string') s.run = r.run;
  if (typeof r.result === 'string') s.result = r.result;
  if (typeof r.smoothing === 'number' && r.smoothing >= 0 && r.smoothing < 1) s.smoothing = r.smoothing;
  if (Array.isArray(r.tables)) s.tables = r.tables.filter((t): t is string => typeof t === 'string');
  if (r.logY && typeof r.logY === 'object') {
    for (const [k, v] of Object.entries(r.logY as Record<string, unknown>)) if (typeof v === 'boolean') s.logY[k] = v;
  }
  return s;
}

export class Store {
  readonly runs = new Map<string, RunView>();
  readonly results = new Map<string, ResultView>();
  /** Runs started and not yet ended (only a live panel has these). */
  readonly streaming = new Set<string>();
  status = '';
  busy = false;
  focus?: string;
  /** The runs the comparison card overlays. */
  compare: string[] = [];

  constructor(private readonly live: boolean) {}

  reset(s: PanelSnapshot): void {
    this.runs.clear();
    this.results.clear();
    this.streaming.clear();
    for (const r of s.runs) this.putRun(r);
    for (const r of s.results) this.results.set(r.id, r);
    this.status = s.status ?? '';
    this.focus = s.focus;
    this.compare = s.compare ?? [];
  }

  putRun(run: RunView): void {
    this.runs.set(run.id, { ...run, probes: [...run.probes] });
    if (this.live && !run.done) this.streaming.add(run.id);
    else this.streaming.delete(run.id);
  }

  /** Adds records to a run: 'append' when they extend it, 'reset' when they rewrote earlier steps. */
  addProbes(runId: string, records: ProbeRecord[], settings?: TrainSettings): 'append' | 'reset' | undefined {
    const run = this.runs.get(runId);
    if (!run) return undefined;
    if (settings) run.settings = settings;
    // A replay or a resumed run may resend steps: keep the records in step order, one per step.
    const last = run.probes[run.probes.length - 1];
    if (!last || records.every((r, i) => r.step > (i === 0 ? last.step : records[i - 1].step))) {
      for (const r of records) run.probes.push(r);
      return 'append';
    }
    const byStep = new Map(run.probes.map((r) => [r.step, r]));
    for (const r of records) byStep.set(r.step, r);
    run.probes = [...byStep.values()].sort((a, b) => a.step - b.step);
    return 'reset';
  }

  endRun(runId: string, done: TrainDone): RunView | undefined {
    this.streaming.delete(runId);
    const run = this.runs.get(runId);
    if (run) run.done = done;
    return run;
  }

  putResult(view: ResultView): void {
    this.results.set(view.id, view);
  }
}

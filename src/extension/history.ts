/**
 * The host's record of everything Basin computed in this workspace: training runs (streamed probe
 * records) and one-off results. The panel is a view of it: on ready, restore or visibility the
 * whole snapshot is replayed. Run directories and recent results are remembered in workspace
 * state, so the panel comes back after VS Code restarts (runs are re-read from their
 * metrics.jsonl, which the worker writes as it goes).
 */
import * as fs from 'node:fs';
import type * as vscode from 'vscode';
import type { PanelSnapshot, ResultView, RunView, ToWebview } from '../shared/protocol';
import type { ProbeRecord, TrainDone, TrainSettings } from '../shared/results';
import { readRunDir, runViewOf } from '../shared/runDir';

const KEY = 'basin.history.v1';
/** Results kept across restarts (grids can be large). */
const KEEP_RESULTS = 12;

interface Stored {
  runs: { id: string; title: string; dir: string; source?: string }[];
  results: ResultView[];
}

export class History {
  readonly runs: RunView[] = [];
  readonly results: ResultView[] = [];
  /** The experiment module or model file each run came from (for CodeLens and decorations). */
  readonly runSource = new Map<string, string>();
  private listeners: ((m: ToWebview) => void)[] = [];
  focus?: string;
  /** The runs the comparison card overlays. */
  comparing?: string[];

  constructor(private readonly memento: vscode.Memento) {}

  onMessage(listener: (m: ToWebview) => void): { dispose(): void } {
    this.listeners.push(listener);
    return { dispose: () => (this.listeners = this.listeners.filter((l) => l !== listener)) };
  }

  private emit(m: ToWebview): void {
    for (const l of this.listeners) l(m);
  }

  snapshot(): PanelSnapshot {
    return { runs: this.runs, results: this.results, focus: this.focus, compare: this.comparing };
  }

  startRun(id: string, title: string, dir: string | undefined, source: string): RunView {
    const run: RunView = { id, title, dir, probes: [], started: Date.now() };
    this.runs.push(run);
    this.runSource.set(id, source);
    this.focus = id;
    this.emit({ type: 'runStarted', run });
    this.persist();
    return run;
  }

  /** When a run started (its folder's creation time for runs from earlier sessions). */
  startedAt(run: RunView): number | undefined {
    if (run.started === undefined && run.dir) {
      try {
        const st = fs.statSync(run.dir);
        run.started = st.birthtimeMs || st.mtimeMs;
      } catch {
        /* gone: no time */
      }
    }
    return run.started;
  }

  /** A stopped run continues (resume): running again, its records kept. */
  restartRun(id: string): void {
    const run = this.runs.find((r) => r.id === id);
    if (!run) return;
    run.done = undefined;
    this.focus = id;
    this.emit({ type: 'runStarted', run });
  }

  addProbes(id: string, records: ProbeRecord[], settings?: TrainSettings): void {
    const run = this.runs.find((r) => r.id === id);
    if (!run) return;
    if (settings) run.settings = settings;
    // A resumed run resends the steps after its checkpoint: one record per step, in step order.
    const lastStep = run.probes[run.probes.length - 1]?.step ?? -1;
    if (records.length && records[0].step <= lastStep) {
      const from = records[0].step;
      run.probes = run.probes.filter((p) => p.step < from);
    }
    run.probes.push(...records);
    this.emit({ type: 'probes', runId: id, records, settings });
  }

  endRun(id: string, done: TrainDone): void {
    const run = this.runs.find((r) => r.id === id);
    if (!run) return;
    run.done = done;
    this.emit({ type: 'runEnded', runId: id, done });
    this.persist();
  }

  /** Forgets a run that never produced anything (a job that failed before its first step). */
  removeRun(id: string): void {
    const i = this.runs.findIndex((r) => r.id === id);
    if (i < 0) return;
    this.runs.splice(i, 1);
    this.runSource.delete(id);
    if (this.focus === id) this.focus = this.runs[this.runs.length - 1]?.id;
    this.emit({ type: 'init', snapshot: this.snapshot() });
    this.persist();
  }

  /**
   * A probe of the run's current model (Probe now): merged into its records by step (it replaces
   * the record of the checkpoint's step, adding trace, noise scale and per-layer sharpness).
   */
  putProbe(id: string, record: ProbeRecord): void {
    const run = this.runs.find((r) => r.id === id);
    if (!run) return;
    const i = run.probes.findIndex((p) => p.step === record.step);
    if (i >= 0) run.probes[i] = { ...run.probes[i], ...record };
    else {
      run.probes.push(record);
      run.probes.sort((a, b) => a.step - b.step);
    }
    this.focus = id;
    this.emit({ type: 'probes', runId: id, records: [i >= 0 ? run.probes[i] : record] });
    this.emit({ type: 'reveal', id });
  }

  /** Brings a card into view in the panel (a run, a result, or 'compare'). */
  reveal(id: string): void {
    this.emit({ type: 'reveal', id });
  }

  /** Overlays runs in the panel's comparison card (and brings it into view). */
  compare(runIds: string[]): void {
    this.comparing = runIds;
    this.focus = 'compare';
    this.emit({ type: 'compare', runIds });
  }

  putResult(view: ResultView): void {
    const i = this.results.findIndex((r) => r.id === view.id);
    if (i >= 0) this.results[i] = view;
    else this.results.push(view);
    this.focus = view.id;
    this.emit({ type: 'result', view });
    // A new card comes into view, and again when its streamed grid is complete (cards above may have grown).
    if (i < 0 || !view.partial) this.emit({ type: 'reveal', id: view.id });
    if (!view.partial) this.persist();
  }

  /** The latest run that came from `source`, with its last probe carrying lambda_max. */
  latestFor(source: string): { run: RunView; last?: ProbeRecord } | undefined {
    for (let i = this.runs.length - 1; i >= 0; i--) {
      const run = this.runs[i];
      if (this.runSource.get(run.id) !== source) continue;
      const probes = run.probes.filter((p) => p.lambdaMax !== undefined);
      return { run, last: probes[probes.length - 1] };
    }
    return undefined;
  }

  private persist(): void {
    const stored: Stored = {
      runs: this.runs.filter((r) => r.dir).map((r) => ({ id: r.id, title: r.title, dir: r.dir as string, source: this.runSource.get(r.id) })),
      results: this.results.filter((r) => !r.partial).slice(-KEEP_RESULTS),
    };
    void this.memento.update(KEY, stored);
  }

  /** Reloads what earlier sessions computed. */
  restore(): void {
    const stored = this.memento.get<Stored>(KEY);
    if (!stored) return;
    for (const r of stored.runs) {
      if (this.runs.some((x) => x.id === r.id) || !fs.existsSync(r.dir)) continue;
      const read = readRunDir(r.dir);
      if ('problem' in read) continue;
      const view = runViewOf(r.dir, read, r.id, r.title);
      this.startedAt(view);
      // A run still marked running was cut off when VS Code closed.
      view.done ??= { done: false, run: r.dir, status: 'failed', reason: 'VS Code closed while it was running', steps: read.probes[read.probes.length - 1]?.step ?? 0 };
      this.runs.push(view);
      if (r.source) this.runSource.set(r.id, r.source);
    }
    for (const res of stored.results) if (!this.results.some((x) => x.id === res.id)) this.results.push(res);
  }
}

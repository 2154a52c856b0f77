/**
 * Basin's panel: training runs (loss, sharpness against 2/eta, trace, implicit-regularization
 * terms, noise scale, accuracy) and analysis results (eigenvalues, density, slices, the loss
 * surface, flatness), drawn with Chart.js and a canvas heatmap.
 *
 * In VS Code it talks to the extension host (acquireVsCodeApi): it posts `ready`, the host replays
 * the history (`init`) and then streams. In a report page (`basin report`) there is no host: the
 * snapshot is the global REPORT_GLOBAL. Only view settings persist (getState/setState).
 */
import { REPORT_GLOBAL, type FromWebview, type PanelSnapshot, type RunView, type ToWebview } from '../src/shared/protocol';
import { checkToWebview } from '../src/shared/validate';
import type { ProbeRecord } from '../src/shared/results';
import { applyChartDefaults } from './charts/setup';
import type { PanelContext } from './charts/card';
import { RunCharts } from './charts/runCharts';
import { createResultCard, type ResultCard } from './charts/results';
import { LineCard, type LineSeries } from './charts/lineCard';
import { runLabel } from './runLabel';
import { ALL_RESULTS, Store, defaultSettings, parseSettings, type ViewSettings } from './state';
import { fmt, h, slug, table } from './format';
import { contrastSafe, fallbackPalette, readPalette, watchTheme, type Palette, type SeriesColor } from './theme';

interface VsCodeApi {
  postMessage(message: FromWebview): void;
  getState(): unknown;
  setState(state: unknown): void;
}

declare const acquireVsCodeApi: undefined | (() => VsCodeApi);

type Command = Extract<FromWebview, { type: 'command' }>['command'];

class Panel implements PanelContext {
  settings: ViewSettings;
  private pal: Palette;
  private readonly store: Store;
  private readonly runCharts: RunCharts;
  private readonly resultCards = new Map<string, ResultCard & { kind: string }>();
  private readonly el = {
    status: h('span', { className: 'status-text', role: 'status', 'aria-live': 'polite' }),
    spinner: h('span', { className: 'spinner', 'aria-hidden': 'true', hidden: true }),
    actions: h('div', { className: 'actions', role: 'toolbar', 'aria-label': 'Panel actions' }),
    empty: h('p', { className: 'empty-panel' }),
    training: h('section', { className: 'section', 'aria-labelledby': 'training-h' }),
    runSelect: h('select', { id: 'run-select' }),
    smoothing: h('input', { type: 'range', id: 'smoothing', min: 0, max: 0.99, step: 0.01, 'aria-describedby': 'smoothing-value' }),
    smoothingValue: h('output', { id: 'smoothing-value', for: 'smoothing' }),
    runMeta: h('p', { className: 'run-meta' }),
    runActions: h('span', { className: 'run-actions', role: 'group', 'aria-label': 'Actions on this run' }),
    overlay: h('section', { className: 'section', id: 'compare-runs', 'aria-labelledby': 'compare-h' }),
    overlayGrid: h('div', { className: 'grid' }),
    runGrid: h('div', { className: 'grid' }),
    compare: h('div', { className: 'card wide compare' }),
    results: h('section', { className: 'section', 'aria-labelledby': 'results-h' }),
    resultSelect: h('select', { id: 'result-select' }),
    resultGrid: h('div', { className: 'grid' }),
  };
  private readonly buttons = new Map<Command, HTMLButtonElement>();
  private readonly runButtons = new Map<Command, HTMLButtonElement>();
  private overlayCards: LineCard[] = [];
  private compareTimer?: number;

  constructor(
    root: HTMLElement,
    private readonly host: VsCodeApi | undefined,
    report: PanelSnapshot | undefined,
  ) {
    this.settings = host ? parseSettings(host.getState()) : defaultSettings();
    this.store = new Store(!!host);
    this.pal = readPalette();
    applyChartDefaults(this.pal);
    this.build(root);
    this.runCharts = new RunCharts(this, this.el.runGrid);
    this.el.runGrid.append(this.el.compare);
    watchTheme(() => this.themeChanged());
    if (report) this.handle({ type: 'init', snapshot: report });
    else this.renderAll();
  }

  palette(): Palette {
    return this.pal;
  }

  save(): void {
    this.host?.setState(this.settings);
  }

  private post(m: FromWebview): void {
    this.host?.postMessage(m);
  }

  private build(root: HTMLElement): void {
    const el = this.el;
    const title = this.host ? 'Basin' : document.title || 'Basin report';
    const brand = h('div', { className: 'brand' }, h('h1', { text: title }), el.spinner, el.status);
    if (this.host) {
      const defs: [Command, string, string][] = [
        ['stop', 'Stop', 'Stop the running job'],
        ['probe', 'Probe now', 'Probe the current model: sharpness, trace, noise'],
        ['compare', 'Compare runs', 'Pick runs to compare side by side'],
        ['export', 'Export PNG', 'Save every chart as a PNG image'],
      ];
      for (const [command, label, tip] of defs) {
        const b = h('button', { type: 'button', className: command === 'stop' ? 'danger' : undefined, title: tip, text: label });
        b.addEventListener('click', () => this.post({ type: 'command', command, runId: command === 'probe' ? this.settings.run : undefined }));
        this.buttons.set(command, b);
        el.actions.append(b);
      }
      // The run menu's actions, on the run it shows.
      const runDefs: [Command, string, string][] = [
        ['probe', 'Probe now', "Probe this run's newest checkpoint: sharpness, trace, per-layer sharpness, noise scale"],
        ['resume', 'Resume', 'Continue this stopped run from its newest checkpoint'],
        ['trajectory', 'Trajectory plane', "The loss on the plane of this run's checkpoints, with its path"],
      ];
      for (const [command, label, tip] of runDefs) {
        const b = h('button', { type: 'button', className: 'secondary', title: tip, text: label, 'data-command': command });
        b.addEventListener('click', () => this.post({ type: 'command', command, runId: this.settings.run }));
        this.runButtons.set(command, b);
        el.runActions.append(b);
      }
    }
    const header = h('header', { className: 'topbar' }, brand, this.host ? el.actions : null);

    el.runSelect.addEventListener('change', () => {
      this.settings.run = el.runSelect.value;
      this.save();
      this.showRun();
    });
    el.smoothing.addEventListener('input', () => {
      this.settings.smoothing = Number(el.smoothing.value);
      this.save();
      this.renderSmoothing();
      this.runCharts.show(this.selectedRun());
    });
    el.training.append(
      h(
        'div',
        { className: 'section-head' },
        h('h2', { id: 'training-h', text: 'Training' }),
        h(
          'div',
          { className: 'controls' },
          h('span', { className: 'control' }, h('label', { for: 'run-select' }, 'Run'), el.runSelect),
          h('span', { className: 'control' }, h('label', { for: 'smoothing' }, 'Smoothing'), el.smoothing, el.smoothingValue),
          el.runActions,
        ),
      ),
      el.runMeta,
      el.runGrid,
    );
    el.overlay.append(h('div', { className: 'section-head' }, h('h2', { id: 'compare-h', text: 'Compared runs' })), el.overlayGrid);
    el.overlay.hidden = true;

    el.resultSelect.addEventListener('change', () => {
      this.settings.result = el.resultSelect.value;
      this.save();
      this.renderResults();
    });
    el.results.append(
      h(
        'div',
        { className: 'section-head' },
        h('h2', { id: 'results-h', text: 'Analyses' }),
        h('div', { className: 'controls' }, h('label', { for: 'result-select' }, 'Show'), el.resultSelect),
      ),
      el.resultGrid,
    );
    el.empty.textContent = this.host
      ? 'Nothing to show yet. Train a model or run an analysis (Basin: Inspect Model File) and its charts appear here.'
      : 'This report holds no runs or results.';
    root.append(header, h('main', {}, el.empty, el.training, el.overlay, el.results));
  }

  handle(msg: ToWebview): void {
    const s = this.store;
    switch (msg.type) {
      case 'init':
        s.reset(msg.snapshot);
        this.chooseSelections();
        this.renderAll();
        if (s.focus) this.reveal(s.focus);
        break;
      case 'runStarted':
        s.putRun(msg.run);
        this.settings.run = msg.run.id;
        this.save();
        this.renderRunPicker();
        this.showRun();
        this.renderActions();
        this.renderEmpty();
        break;
      case 'probes': {
        const how = s.addProbes(msg.runId, msg.records, msg.settings);
        if (!how) break;
        if (msg.runId === this.settings.run) {
          if (how === 'append') this.runCharts.append(msg.records);
          else this.runCharts.show(this.selectedRun());
          this.renderRunMeta();
        }
        this.scheduleCompare();
        if (s.compare.includes(msg.runId)) this.renderOverlay();
        break;
      }
      case 'runEnded':
        s.endRun(msg.runId, msg.done);
        this.renderRunPicker();
        this.renderRunMeta();
        this.renderCompare();
        this.renderActions();
        break;
      case 'result': {
        const known = s.results.has(msg.view.id);
        s.putResult(msg.view);
        // A notebook: a new result joins the others (they stay visible together).
        if (!known && this.settings.result !== ALL_RESULTS) {
          this.settings.result = ALL_RESULTS;
          this.save();
        }
        this.renderResultPicker();
        this.renderResults();
        this.renderEmpty();
        break;
      }
      case 'status':
        s.status = msg.text;
        s.busy = msg.busy;
        this.renderStatus();
        this.renderActions();
        break;
      case 'exportPng':
        this.post({ type: 'exported', requestId: msg.requestId, images: this.images(msg.background) });
        break;
      case 'reveal':
        this.reveal(msg.id);
        break;
      case 'compare':
        s.compare = msg.runIds;
        this.renderOverlay();
        this.reveal('compare');
        break;
      default: {
        const never: never = msg;
        console.warn('basin: unknown message', never);
      }
    }
  }

  /** The run and result to show: the saved choice, else the host's focus, else the newest. */
  private chooseSelections(): void {
    const s = this.store;
    const runs = [...s.runs.keys()];
    const results = [...s.results.keys()];
    if (!this.settings.run || !s.runs.has(this.settings.run)) {
      this.settings.run = s.focus && s.runs.has(s.focus) ? s.focus : runs[runs.length - 1];
    }
    // A report shows every result; the live panel the host's focus, else the newest.
    const r = this.settings.result;
    if (!this.host || !r || (r !== ALL_RESULTS && !s.results.has(r))) this.settings.result = results.length ? ALL_RESULTS : undefined;
  }

  private selectedRun(): RunView | undefined {
    return this.settings.run ? this.store.runs.get(this.settings.run) : undefined;
  }

  private renderAll(): void {
    this.renderStatus();
    this.renderActions();
    this.renderSmoothing();
    this.renderRunPicker();
    this.showRun();
    this.renderResultPicker();
    this.renderResults();
    this.renderOverlay();
    this.renderEmpty();
  }

  /**
   * Brings a card into view (the panel is a notebook: the newest answer is scrolled to): a run's
   * charts, a result card, or the comparison of runs. The card is marked as the current one.
   */
  private reveal(id: string): void {
    let target: HTMLElement | undefined;
    if (id === 'compare') target = this.el.overlay.hidden ? undefined : this.el.overlay;
    else if (this.store.runs.has(id)) {
      if (this.settings.run !== id) {
        this.settings.run = id;
        this.save();
        this.renderRunPicker();
        this.showRun();
      }
      target = this.el.training;
    } else if (this.store.results.has(id)) {
      if (this.settings.result !== ALL_RESULTS && this.settings.result !== id) {
        this.settings.result = ALL_RESULTS;
        this.renderResultPicker();
        this.renderResults();
      }
      target = this.resultCards.get(id)?.card.el;
    }
    if (!target || target.hidden) return;
    document.querySelectorAll('.revealed').forEach((el) => el.classList.remove('revealed'));
    target.classList.add('revealed');
    target.setAttribute('data-revealed', id);
    target.scrollIntoView({ block: 'start', behavior: 'auto' });
  }

  /** The comparison card: loss and sharpness of each compared run, each with its 2/eta line. */
  private renderOverlay(): void {
    const runs = this.store.compare.map((id) => this.store.runs.get(id)).filter((r): r is RunView => !!r);
    this.el.overlay.hidden = runs.length === 0;
    if (!runs.length) {
      for (const c of this.overlayCards) c.destroy();
      this.overlayCards = [];
      this.el.overlayGrid.replaceChildren();
      return;
    }
    if (!this.overlayCards.length) {
      this.overlayCards = [
        new LineCard('compare-loss', 'Loss of the compared runs', this, { xLabel: 'step', yLabel: 'training loss', log: true, logToggle: true, decimate: true, wide: true }),
        new LineCard('compare-sharpness', 'Sharpness of the compared runs', this, { xLabel: 'step', yLabel: 'λmax', dots: true, decimate: true, wide: true }),
      ];
      this.el.overlayGrid.replaceChildren(...this.overlayCards.map((c) => c.el));
    }
    const colors: SeriesColor[] = ['blue', 'orange', 'green', 'purple', 'red', 'yellow'];
    const names = runs.map((r) => runLabel(r, this.store.streaming.has(r.id), { short: true }));
    const loss: LineSeries[] = runs.map((r, i) => ({ label: names[i], color: colors[i % colors.length], points: r.probes.map((p) => ({ x: p.step, y: p.loss })) }));
    const sharp: LineSeries[] = runs.flatMap((r, i) => {
      const color = colors[i % colors.length];
      const pts = r.probes.filter((p) => p.lambdaMax !== undefined);
      return [
        { label: `${names[i]}: λmax`, color, points: pts.map((p) => ({ x: p.step, y: p.lambdaMax as number })) },
        { label: `${names[i]}: 2/η`, color, dash: [6, 4], points: pts.filter((p) => p.threshold !== undefined).map((p) => ({ x: p.step, y: p.threshold as number })) },
      ];
    });
    this.overlayCards[0].setTitle('Loss of the compared runs', `${runs.length} runs: ${names.join(' · ')}`);
    this.overlayCards[1].setTitle('Sharpness of the compared runs', 'λmax (solid) and each run\'s 2/η threshold (dashed)');
    this.overlayCards[0].setSeries(loss);
    this.overlayCards[1].setSeries(sharp);
  }

  private renderEmpty(): void {
    this.el.empty.hidden = this.store.runs.size > 0 || this.store.results.size > 0;
  }

  private renderStatus(): void {
    this.el.status.textContent = this.store.status;
    this.el.spinner.hidden = !this.store.busy;
  }

  private renderActions(): void {
    const run = this.selectedRun();
    const streaming = !!run && this.store.streaming.has(run.id);
    const resume = this.runButtons.get('resume');
    if (resume) resume.hidden = !run?.dir || streaming || !run.done || run.done.done || run.done.status === 'diverged';
    const traj = this.runButtons.get('trajectory');
    if (traj) traj.hidden = !run?.dir || streaming;
    const probe = this.runButtons.get('probe');
    if (probe) probe.hidden = !run || streaming;
    const stop = this.buttons.get('stop');
    if (stop) stop.hidden = this.store.streaming.size === 0 && !this.store.busy;
    const compare = this.buttons.get('compare');
    if (compare) compare.disabled = this.store.runs.size === 0;
  }

  private renderSmoothing(): void {
    const w = this.settings.smoothing;
    this.el.smoothing.value = String(w);
    this.el.smoothingValue.textContent = w > 0 ? `EMA ${w.toFixed(2)}` : 'off';
  }

  private runLabel(r: RunView): string {
    return runLabel(r, this.store.streaming.has(r.id));
  }

  private renderRunPicker(): void {
    const s = this.store;
    this.el.training.hidden = s.runs.size === 0;
    this.el.runSelect.replaceChildren(
      ...[...s.runs.values()].map((r) => h('option', { value: r.id, selected: r.id === this.settings.run, text: this.runLabel(r) })),
    );
    this.el.runSelect.disabled = s.runs.size < 2;
  }

  private showRun(): void {
    const run = this.selectedRun();
    this.runCharts.show(run);
    this.renderRunMeta();
    this.renderCompare();
    this.renderActions();
  }

  private renderRunMeta(): void {
    const run = this.selectedRun();
    if (!run) {
      this.el.runMeta.textContent = '';
      return;
    }
    const st = run.settings;
    const last = run.probes[run.probes.length - 1];
    const status = this.store.streaming.has(run.id)
      ? `running, step ${last?.step ?? 0}`
      : run.done
        ? `${run.done.status}${run.done.reason ? `: ${run.done.reason}` : ''} at step ${run.done.steps}`
        : '';
    const bits = st
      ? [
          st.optimizer,
          `lr ${fmt(st.lr)}`,
          st.batchSize ? `batch ${st.batchSize}` : 'full batch',
          st.momentum !== undefined ? `momentum ${st.momentum}` : '',
          st.rho !== undefined ? `ρ ${st.rho}` : '',
          st.igr !== undefined ? `IGR μ ${st.igr}` : '',
          st.weightDecay ? `weight decay ${st.weightDecay}` : '',
          `${st.steps} steps`,
          st.schedule !== 'constant' ? `schedule ${st.schedule}` : '',
          `seed ${st.seed}`,
          `probe every ${st.probeEvery}`,
        ]
      : [];
    this.el.runMeta.textContent = [...bits, status, run.dir ?? ''].filter(Boolean).join(' · ');
  }

  private scheduleCompare(): void {
    if (this.compareTimer !== undefined) return;
    this.compareTimer = window.setTimeout(() => {
      this.compareTimer = undefined;
      this.renderCompare();
    }, 1000);
  }

  /** The table of all runs: settings and final numbers; the run name selects it. */
  private renderCompare(): void {
    const runs = [...this.store.runs.values()];
    const c = this.el.compare;
    c.hidden = runs.length === 0;
    if (!runs.length) return;
    const focused =
      document.activeElement instanceof HTMLElement && c.contains(document.activeElement) ? document.activeElement.dataset.run : undefined;
    const lastOf = (r: RunView, f: (p: ProbeRecord) => number | undefined): number | null => {
      for (let i = r.probes.length - 1; i >= 0; i--) {
        const v = f(r.probes[i]);
        if (v !== undefined) return v;
      }
      return null;
    };
    const maxOf = (r: RunView, f: (p: ProbeRecord) => number | undefined): number | null => {
      let m: number | null = null;
      for (const p of r.probes) {
        const v = f(p);
        if (v !== undefined && Number.isFinite(v) && (m === null || v > m)) m = v;
      }
      return m;
    };
    const t = table(
      'All runs',
      ['run', 'status', 'optimizer', 'lr', 'batch', 'steps', 'loss', 'test loss', 'accuracy', 'λmax', 'max λmax', '2/η'],
      runs.map((r) => [
        r.title,
        this.store.streaming.has(r.id) ? 'running' : (r.done?.status ?? '–'),
        r.settings?.optimizer ?? '–',
        r.settings?.lr ?? null,
        r.settings ? (r.settings.batchSize ?? 'full') : '–',
        `${r.probes[r.probes.length - 1]?.step ?? 0}${r.settings ? ` / ${r.settings.steps}` : ''}`,
        lastOf(r, (p) => p.loss),
        lastOf(r, (p) => p.testLoss),
        lastOf(r, (p) => p.accuracy),
        lastOf(r, (p) => p.lambdaMax),
        maxOf(r, (p) => p.lambdaMax),
        lastOf(r, (p) => p.threshold),
      ]),
    );
    // Run names as buttons: Tab to one and press Enter to show that run.
    t.querySelectorAll('tbody tr').forEach((tr, i) => {
      const run = runs[i];
      const th = tr.querySelector('th');
      if (!th || !run) return;
      const b = h('button', {
        type: 'button',
        className: 'link',
        'data-run': run.id,
        'aria-current': run.id === this.settings.run ? 'true' : undefined,
        text: run.title,
      });
      b.addEventListener('click', () => {
        this.settings.run = run.id;
        this.save();
        this.renderRunPicker();
        this.showRun();
      });
      th.replaceChildren(b);
      if (run.id === this.settings.run) tr.classList.add('selected');
    });
    c.replaceChildren(h('div', { className: 'card-head' }, h('h3', { text: 'Runs' })), h('div', { className: 'table-wrap' }, t));
    if (focused) c.querySelector<HTMLButtonElement>(`button[data-run="${CSS.escape(focused)}"]`)?.focus();
  }

  private renderResultPicker(): void {
    const s = this.store;
    this.el.results.hidden = s.results.size === 0;
    const opts = [...s.results.values()].map((v) =>
      h('option', { value: v.id, selected: v.id === this.settings.result, text: v.title || v.result.kind }),
    );
    if (s.results.size > 1)
      opts.unshift(h('option', { value: ALL_RESULTS, selected: this.settings.result === ALL_RESULTS, text: `All (${s.results.size})` }));
    this.el.resultSelect.replaceChildren(...opts);
    this.el.resultSelect.disabled = s.results.size < 2;
  }

  private renderResults(): void {
    const s = this.store;
    const sel = this.settings.result;
    const ids = sel === ALL_RESULTS || s.results.size === 1 ? [...s.results.keys()] : sel && s.results.has(sel) ? [sel] : [];
    const keep = new Set(ids);
    for (const [id, rc] of this.resultCards) {
      if (!keep.has(id)) {
        rc.card.destroy();
        this.resultCards.delete(id);
      }
    }
    for (const id of ids) {
      const view = s.results.get(id)!;
      const rc = this.resultCards.get(id);
      if (rc && rc.kind === view.result.kind) rc.update(view);
      else {
        rc?.card.destroy();
        this.resultCards.set(id, { ...createResultCard(view, this), kind: view.result.kind });
      }
      this.el.resultGrid.append(this.resultCards.get(id)!.card.el);
    }
  }

  /**
   * PNGs of the charts shown, each titled, named by what it is ("<run>-sharpness", the analysis'
   * title). On a white background by choice: a dark theme's charts are redrawn in the light palette
   * for it, then in the theme's again.
   */
  private images(background: 'theme' | 'white' = 'theme'): Record<string, string> {
    const theme = this.pal;
    const swap = background === 'white';
    if (swap) this.redraw(contrastSafe({ ...(theme.dark ? fallbackPalette(false) : theme), background: '#ffffff', dark: false }));
    const out: Record<string, string> = {};
    const put = (name: string, url: string): void => {
      let n = name;
      for (let i = 2; n in out; i++) n = `${name}-${i}`;
      out[n] = url;
    };
    try {
      if (!this.el.training.hidden) {
        const run = this.selectedRun();
        for (const [k, v] of Object.entries(this.runCharts.images())) put(`${slug(run?.title ?? 'run')}-${k.replace(/^run-/, '')}`, v);
      }
      if (!this.el.overlay.hidden) {
        for (const c of this.overlayCards) for (const [k, v] of Object.entries(c.images())) put(k, v);
      }
      if (!this.el.results.hidden) {
        for (const [id, rc] of this.resultCards) {
          const view = this.store.results.get(id);
          for (const [, v] of Object.entries(rc.card.images())) put(slug(view?.title || view?.result.kind || id), v);
        }
      }
    } finally {
      if (swap) this.redraw(theme);
    }
    return out;
  }

  /** Redraws every chart in palette `p`. */
  private redraw(p: Palette): void {
    this.pal = p;
    applyChartDefaults(p);
    this.runCharts.applyTheme();
    for (const c of this.overlayCards) c.applyTheme();
    for (const rc of this.resultCards.values()) rc.card.applyTheme();
  }

  private themeChanged(): void {
    this.redraw(readPalette());
  }
}

function start(): void {
  const root = document.getElementById('basin') ?? document.body.appendChild(h('div', { id: 'basin' }));
  root.classList.add('basin');
  const report = (window as unknown as Record<string, PanelSnapshot | undefined>)[REPORT_GLOBAL];
  const host = report === undefined && typeof acquireVsCodeApi === 'function' ? acquireVsCodeApi() : undefined;
  if (!host) document.body.classList.add('basin-report');
  const panel = new Panel(root, host, report ?? (host ? undefined : { runs: [], results: [] }));
  if (host) {
    // Every message is checked before use; a malformed one (or one that fails to render) is logged, not thrown.
    window.addEventListener('message', (e: MessageEvent<unknown>) => {
      const problem = checkToWebview(e.data);
      if (problem) {
        console.warn(`basin: ignored a malformed message from the host: ${problem}`);
        return;
      }
      try {
        panel.handle(e.data as ToWebview);
      } catch (err) {
        console.error('basin: a message from the host failed to render', err);
      }
    });
    host.postMessage({ type: 'ready' });
  }
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();

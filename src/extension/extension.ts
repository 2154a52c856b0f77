/**
 * Basin's VS Code entry point: commands, menus, the panel, CodeLens, decorations, live mode, a
 * status bar item and a log. Every computation runs in the forked compute worker (dist/worker.js),
 * so the extension host's thread only forwards messages; this side never imports the engine.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import * as vscode from 'vscode';
import { ComputeClient, JobError, type JobHooks } from './computeClient';
import { History } from './history';
import { BasinPanel, PANEL_COMMAND_IDS, type PanelCommand } from './panel';
import { BasinCodeLens, EXPERIMENT_GLOB, LayerDecorations, isExperiment } from './lenses';
import type { JobKind, JobOptions, ProblemInput } from '../shared/workerProtocol';
import type { JobResult, TrainDone } from '../shared/results';
import { gridCsv, isSurface } from '../shared/csv';

interface Target {
  problem: ProblemInput;
  /** The file the user pointed at (module or model.json). */
  file: string;
  label: string;
}

class Basin implements vscode.Disposable {
  private readonly output = vscode.window.createOutputChannel('Basin', { log: true });
  private readonly status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 50);
  private readonly history: History;
  private readonly client: ComputeClient;
  private readonly lens: BasinCodeLens;
  private readonly decorations = new LayerDecorations();
  private readonly running = new Set<AbortController>();
  private readonly disposables: vscode.Disposable[] = [];
  private live = false;
  private liveTimer: NodeJS.Timeout | undefined;
  private seq = 0;

  constructor(private readonly context: vscode.ExtensionContext) {
    this.history = new History(context.workspaceState);
    this.history.restore();
    const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    this.client = new ComputeClient(path.join(context.extensionPath, 'dist', 'worker.js'), (l) => this.output.info(l), root);
    this.client.onCrash = (reason) => {
      this.setStatus(`compute process crashed: ${reason}`, false);
      void vscode.window.showErrorMessage(`Basin: ${reason}. It restarts with the next job.`, 'Show Log').then((a) => a && this.output.show());
    };
    this.lens = new BasinCodeLens(this.history);
    this.status.command = 'basin.openPanel';
    this.setStatus('Ready', false);
    this.status.show();
    this.disposables.push(
      this.output,
      this.status,
      this.decorations,
      { dispose: () => this.client.dispose() },
      vscode.languages.registerCodeLensProvider([{ pattern: EXPERIMENT_GLOB }], this.lens),
      vscode.window.registerWebviewPanelSerializer(BasinPanel.viewType, {
        deserializeWebviewPanel: async (panel) => {
          BasinPanel.revive(panel, context, this.history, (c) => this.panelCommand(c));
        },
      }),
      vscode.workspace.onDidSaveTextDocument((doc) => this.onSave(doc)),
    );
    const commands: Record<string, (...args: never[]) => unknown> = {
      'basin.openPanel': () => this.openPanel(),
      'basin.trainAndProbe': (uri?: vscode.Uri) => this.trainAndProbe(uri),
      'basin.inspectModel': (uri?: vscode.Uri) => this.inspect(uri),
      'basin.spectrum': (uri?: vscode.Uri) => this.spectrum(uri),
      'basin.slice': (uri?: vscode.Uri) => this.slice(uri),
      'basin.surface': (uri?: vscode.Uri) => this.surface(uri),
      'basin.interpolate': (uri?: vscode.Uri) => this.interpolate(uri),
      'basin.trajectory': (uri?: vscode.Uri) => this.trajectory(uri),
      'basin.compareRuns': () => this.compareRuns(),
      'basin.stop': () => this.stop(),
      'basin.export': () => this.export(),
      'basin.newExperiment': () => this.newExperiment(),
      'basin.toggleLive': () => this.toggleLive(),
      'basin.restartCompute': () => this.client.restart(),
    };
    for (const [id, fn] of Object.entries(commands)) this.disposables.push(vscode.commands.registerCommand(id, fn as (...a: unknown[]) => unknown));
    void vscode.commands.executeCommand('setContext', 'basin.live', false);
  }

  private config(): vscode.WorkspaceConfiguration {
    return vscode.workspace.getConfiguration('basin');
  }

  private setStatus(text: string, busy: boolean): void {
    this.status.text = `${busy ? '$(sync~spin)' : '$(graph-line)'} Basin${busy ? `: ${text}` : ''}${this.live ? ' (live)' : ''}`;
    this.status.tooltip = busy ? 'Basin is computing: click to show the panel (Basin: Stop to cancel)' : 'Basin: show the panel';
    BasinPanel.current?.post({ type: 'status', text, busy });
  }

  private openPanel(): BasinPanel {
    return BasinPanel.createOrShow(this.context, this.history, (c) => this.panelCommand(c));
  }

  private panelCommand(c: PanelCommand): void {
    const id = PANEL_COMMAND_IDS.get(c);
    if (id) void vscode.commands.executeCommand(id);
  }

  /** Resolves what to analyse: the given file, the active editor's, or one the user picks. */
  private async target(uri: vscode.Uri | undefined, want: 'any' | 'experiment' = 'any'): Promise<Target | undefined> {
    let file = uri ?? vscode.window.activeTextEditor?.document.uri;
    const usable = (u: vscode.Uri | undefined): boolean => !!u && u.scheme === 'file' && (isExperiment(u) || (want === 'any' && /model\.json$/.test(u.fsPath)));
    if (!usable(file)) {
      const found = await vscode.workspace.findFiles(want === 'any' ? '**/{*.basin.ts,*.basin.js,*model.json}' : EXPERIMENT_GLOB, '**/node_modules/**', 200);
      if (found.length === 0) {
        const make = await vscode.window.showWarningMessage('Basin: no experiment module (*.basin.ts) or model.json in this workspace.', 'New Experiment from Example');
        if (make) await this.newExperiment();
        return undefined;
      }
      const pick = await vscode.window.showQuickPick(
        found.map((u) => ({ label: vscode.workspace.asRelativePath(u), uri: u })),
        { title: 'Basin: which model?', placeHolder: 'an experiment module or a TF.js model.json' },
      );
      file = pick?.uri;
    }
    if (!file) return undefined;
    if (isExperiment(file)) {
      if (!vscode.workspace.isTrusted) {
        void vscode.window.showErrorMessage('Basin runs experiment modules (they are code) only in trusted workspaces. Trust this workspace, or inspect a model.json instead.');
        return undefined;
      }
      return { problem: { experiment: file.fsPath }, file: file.fsPath, label: path.basename(file.fsPath) };
    }
    const data = await this.dataFor(file);
    if (!data) return undefined;
    return { problem: { model: file.fsPath, data }, file: file.fsPath, label: vscode.workspace.asRelativePath(file) };
  }

  /** The data file for a model.json: asked once, remembered per model. */
  private async dataFor(model: vscode.Uri, ask = false): Promise<string | undefined> {
    const key = `basin.data:${model.fsPath}`;
    const remembered = this.context.workspaceState.get<string>(key);
    if (remembered && !ask && fs.existsSync(remembered.split(',')[0])) return remembered;
    const beside = ['data.json', 'data.csv'].map((f) => path.join(path.dirname(model.fsPath), f)).find((f) => fs.existsSync(f));
    const picked = await vscode.window.showOpenDialog({
      canSelectMany: true,
      defaultUri: beside ? vscode.Uri.file(beside) : vscode.Uri.file(path.dirname(model.fsPath)),
      filters: { 'Data (.json, .csv, .npy)': ['json', 'csv', 'npy'] },
      title: `Basin: the data to evaluate ${path.basename(path.dirname(model.fsPath))}/${path.basename(model.fsPath)} on`,
      openLabel: 'Use this data',
    });
    if (!picked?.length) return undefined;
    const value = picked.map((u) => u.fsPath).join(',');
    await this.context.workspaceState.update(key, value);
    return value;
  }

  /** Runs a job with a cancellable progress notification, the status bar and the log. */
  private async job(kind: JobKind, target: Target, options: JobOptions, title: string, hooks: JobHooks = {}): Promise<JobResult | TrainDone | undefined> {
    const controller = new AbortController();
    this.running.add(controller);
    this.output.info(`${title}: ${target.label}`);
    this.setStatus(`${title}…`, true);
    const backend = this.config().get<string>('backend', 'auto');
    // The extension host's event loop is shared by every extension: measure that a job never blocks it.
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const elu = performance.eventLoopUtilization();
    try {
      return await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Basin: ${title}`, cancellable: true },
        async (progress, token) => {
          token.onCancellationRequested(() => controller.abort());
          let last = 0;
          return this.client.run(kind, target.problem, { seed: this.config().get<number>('seed', 0), ...options }, {
            ...hooks,
            signal: controller.signal,
            backend: backend === 'auto' ? undefined : (backend as 'onnxruntime' | 'tensorflow' | 'wasm' | 'cpu'),
            onProgress: (p) => {
              const pct = p.total > 0 ? (100 * p.done) / p.total : 0;
              progress.report({ message: p.message, increment: Math.max(0, pct - last) });
              last = pct;
              this.setStatus(`${title}: ${p.message}`, true);
              hooks.onProgress?.(p);
            },
          });
        },
      );
    } catch (e) {
      const err = e as JobError;
      if (err.kind === 'cancelled') return undefined;
      this.output.error(err.message);
      const text = err.kind === 'internal' ? 'internal error (details in the Basin log)' : err.message;
      void vscode.window.showErrorMessage(`Basin: ${text}`, 'Show Log').then((a) => a && this.output.show());
      return undefined;
    } finally {
      loop.disable();
      const busy = performance.eventLoopUtilization(elu).utilization;
      this.output.info(
        `${title}: extension host event loop ${(100 * busy).toFixed(1)}% busy, ` +
          `delay p99 ${(loop.percentile(99) / 1e6).toFixed(1)} ms, max ${(loop.max / 1e6).toFixed(1)} ms`,
      );
      this.running.delete(controller);
      this.setStatus(this.running.size > 0 ? 'Working…' : 'Ready', this.running.size > 0);
    }
  }

  /** Runs a one-off analysis and shows it in the panel, streaming partial grids. */
  private async analysis(kind: JobKind, uri: vscode.Uri | undefined, options: JobOptions, title: string): Promise<void> {
    const target = await this.target(uri);
    if (!target) return;
    const id = `${kind}-${++this.seq}-${Date.now()}`;
    const name = `${title}: ${target.label}`;
    this.openPanel();
    const result = await this.job(kind, target, options, title, {
      onPartial: (r) => this.history.putResult({ id, title: name, result: r, partial: true }),
    });
    if (result && 'kind' in result) {
      this.history.putResult({ id, title: name, result });
      this.output.info(`${title} done in ${(result as { ms?: number }).ms?.toFixed(0) ?? '?'} ms (${(result as { backendDetail?: string }).backendDetail ?? ''})`);
    }
  }

  private async trainAndProbe(uri?: vscode.Uri): Promise<void> {
    const target = await this.target(uri, 'experiment');
    if (!target) return;
    const root = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(target.file))?.uri.fsPath ?? path.dirname(target.file);
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
    const runDir = path.join(root, '.basin', 'runs', `${path.basename(target.file).replace(/\.basin\.(ts|js)$/, '')}-${stamp}`);
    const id = `run-${++this.seq}-${Date.now()}`;
    this.history.startRun(id, target.label, runDir, target.file);
    this.openPanel();
    this.lens.refresh();
    const probeEvery = this.config().get<number | null>('probeEvery', null);
    const steps = this.config().get<number | null>('trainSteps', null);
    const train: JobOptions['train'] = {};
    if (probeEvery) train.probeEvery = probeEvery;
    if (steps) train.steps = steps;
    let lensTimer: NodeJS.Timeout | undefined;
    const hooks: JobHooks = {
      onProbes: (records, settings) => {
        this.history.addProbes(id, records, settings);
        lensTimer ??= setTimeout(() => {
          lensTimer = undefined;
          this.lens.refresh();
        }, 500);
      },
    };
    const done = (await this.job('train', target, { train, runDir }, 'Train and Probe', hooks)) as TrainDone | undefined;
    if (lensTimer) clearTimeout(lensTimer);
    this.history.endRun(id, done ?? { done: false, run: runDir, status: 'cancelled', reason: 'stopped', steps: 0 });
    this.lens.refresh();
    const latest = this.history.latestFor(target.file);
    const layers = [...(latest?.run.probes ?? [])].reverse().find((p) => p.layerSharpness);
    if (layers?.layerSharpness) {
      const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(target.file));
      this.decorations.show(doc, layers.layerSharpness, layers.step);
    }
    if (done && !done.done && done.status === 'diverged') void vscode.window.showWarningMessage(`Basin: ${done.reason}`);
    if (done) this.output.info(`run ${done.status}: ${done.run}`);
  }

  private inspect(uri?: vscode.Uri): Promise<void> {
    return this.analysis('info', uri, {}, 'Inspect Model');
  }

  private async spectrum(uri?: vscode.Uri): Promise<void> {
    const k = this.config().get<number>('eigenvalues', 5);
    await this.analysis('eigs', uri, { k }, 'Sharpness Spectrum');
    await this.analysis('density', uri, { steps: 60, runs: 2 }, 'Spectral Density');
  }

  private slice(uri?: vscode.Uri): Promise<void> {
    const steps = this.config().get<number>('slice.steps', 51);
    return this.analysis('slice', uri, { dirs: ['eigen', 'random', 'gradient'], x: `-1:1:${steps}` }, '1-D Slice');
  }

  private surface(uri?: vscode.Uri): Promise<void> {
    const steps = this.config().get<number>('surface.steps', 41);
    return this.analysis('surface', uri, { x: `-1:1:${steps}` }, '2-D Surface');
  }

  private async interpolate(uri?: vscode.Uri): Promise<void> {
    const picks = await vscode.window.showOpenDialog({ canSelectMany: true, filters: { 'TF.js model': ['json'] }, title: 'Basin: pick two model.json files (checkpoints of the same model)' });
    const files = uri ? [uri, ...(picks ?? [])] : (picks ?? []);
    if (files.length !== 2) {
      if (files.length) void vscode.window.showErrorMessage(`Basin: interpolation needs exactly two model.json files (got ${files.length})`);
      return;
    }
    const data = await this.dataFor(files[0]);
    if (!data) return;
    const target: Target = { problem: { model: files[0].fsPath, data }, file: files[0].fsPath, label: files.map((f) => vscode.workspace.asRelativePath(f)).join(' → ') };
    const id = `interpolate-${++this.seq}`;
    this.openPanel();
    const r = await this.job('interpolate', target, { other: files[1].fsPath }, 'Interpolate', { onPartial: (x) => this.history.putResult({ id, title: `Interpolate: ${target.label}`, result: x, partial: true }) });
    if (r && 'kind' in r) this.history.putResult({ id, title: `Interpolate: ${target.label}`, result: r });
  }

  /** A trajectory plane from a run's checkpoints (pick a run folder) or from picked model.json files. */
  private async trajectory(uri?: vscode.Uri): Promise<void> {
    const runs = this.history.runs.filter((r) => r.dir && fs.existsSync(path.join(r.dir, 'checkpoints')));
    let checkpoints: string[] = [];
    if (runs.length) {
      const pick = await vscode.window.showQuickPick([...runs.map((r) => ({ label: r.title, description: r.dir, dir: r.dir })), { label: 'Pick checkpoint files…', description: '', dir: undefined }], { title: 'Basin: trajectory of which run?' });
      if (!pick) return;
      if (pick.dir) {
        checkpoints = fs.readdirSync(path.join(pick.dir, 'checkpoints')).filter((d) => d.startsWith('step-')).sort().map((d) => path.join(pick.dir as string, 'checkpoints', d, 'model.json'));
      }
    }
    if (checkpoints.length === 0) {
      const picks = await vscode.window.showOpenDialog({ canSelectMany: true, filters: { 'TF.js model': ['json'] }, title: 'Basin: pick 3 or more checkpoints (model.json), in training order' });
      checkpoints = (picks ?? []).map((u) => u.fsPath).sort();
    }
    if (checkpoints.length < 3) {
      void vscode.window.showErrorMessage(`Basin: a trajectory plane needs at least 3 checkpoints (found ${checkpoints.length}). Train with a checkpoint cadence (basin.checkpointEvery) first.`);
      return;
    }
    const run = runs.find((r) => checkpoints[0].startsWith(r.dir as string));
    const source = run ? this.history.runSource.get(run.id) : undefined;
    const last = vscode.Uri.file(checkpoints[checkpoints.length - 1]);
    let problem: ProblemInput;
    if (source && isExperiment(vscode.Uri.file(source))) {
      // The run's data comes from its experiment module: the final checkpoint is the model.
      problem = { experiment: source, model: last.fsPath };
    } else {
      const data = await this.dataFor(uri ?? last);
      if (!data) return;
      problem = { model: last.fsPath, data };
    }
    const target: Target = { problem, file: last.fsPath, label: `${checkpoints.length} checkpoints` };
    const id = `trajectory-${++this.seq}`;
    this.openPanel();
    const r = await this.job('trajectory', target, { checkpoints }, 'Trajectory Plane', { onPartial: (x) => this.history.putResult({ id, title: `Trajectory: ${target.label}`, result: x, partial: true }) });
    if (r && 'kind' in r) this.history.putResult({ id, title: `Trajectory: ${target.label}`, result: r });
  }

  private async compareRuns(): Promise<void> {
    const panel = this.openPanel();
    panel.post({ type: 'init', snapshot: { ...this.history.snapshot(), focus: 'compare' } });
  }

  private stop(): void {
    if (this.running.size === 0) {
      void vscode.window.showInformationMessage('Basin: nothing is running.');
      return;
    }
    for (const c of this.running) c.abort();
  }

  /** PNG of every chart, CSV of grid results and JSON of everything, into a folder. */
  private async export(): Promise<void> {
    const folder = await vscode.window.showOpenDialog({ canSelectFiles: false, canSelectFolders: true, openLabel: 'Export here', title: 'Basin: export the panel (PNG, CSV, JSON)' });
    if (!folder?.[0]) return;
    const dir = folder[0].fsPath;
    const written: string[] = [];
    const panel = BasinPanel.current;
    if (panel) {
      try {
        const images = await panel.requestPng();
        for (const [name, url] of Object.entries(images)) {
          const file = path.join(dir, `basin-${name.replace(/[^A-Za-z0-9_-]/g, '_')}.png`);
          fs.writeFileSync(file, Buffer.from(url.replace(/^data:image\/png;base64,/, ''), 'base64'));
          written.push(file);
        }
      } catch (e) {
        this.output.warn(`PNG export: ${(e as Error).message}`);
      }
    }
    const snapshot = this.history.snapshot();
    const json = path.join(dir, 'basin-results.json');
    fs.writeFileSync(json, JSON.stringify(snapshot, null, 1));
    written.push(json);
    for (const r of snapshot.results) {
      const res = r.result;
      if (res.kind === 'slice' || res.kind === 'interpolate' || isSurface(res as never)) {
        const file = path.join(dir, `basin-${r.id}.csv`);
        fs.writeFileSync(file, gridCsv(res as never));
        written.push(file);
      }
    }
    for (const run of snapshot.runs) {
      const file = path.join(dir, `basin-${run.id}.csv`);
      const keys = ['step', 'loss', 'accuracy', 'testLoss', 'lambdaMax', 'threshold', 'trace', 'igrTerm', 'sgdTerm', 'noiseScale', 'distInit', 'weightNorm'] as const;
      fs.writeFileSync(file, [keys.join(','), ...run.probes.map((p) => keys.map((k) => p[k] ?? '').join(','))].join('\n') + '\n');
      written.push(file);
    }
    void vscode.window.showInformationMessage(`Basin: exported ${written.length} files to ${dir}`);
  }

  private async newExperiment(): Promise<void> {
    const folder = vscode.workspace.workspaceFolders?.[0];
    if (!folder) {
      void vscode.window.showErrorMessage('Basin: open a folder first; the experiment is created in it.');
      return;
    }
    const example = path.join(this.context.extensionPath, 'examples', 'edge-of-stability.basin.ts');
    let name = 'experiment.basin.ts';
    for (let i = 2; fs.existsSync(path.join(folder.uri.fsPath, name)); i++) name = `experiment-${i}.basin.ts`;
    const dest = path.join(folder.uri.fsPath, name);
    fs.copyFileSync(example, dest);
    const doc = await vscode.workspace.openTextDocument(dest);
    await vscode.window.showTextDocument(doc);
    void vscode.window.showInformationMessage(`Basin: created ${name} (an edge-of-stability experiment). Run "Basin: Train and Probe" or click the CodeLens above model().`);
  }

  private toggleLive(): void {
    this.live = !this.live;
    void vscode.commands.executeCommand('setContext', 'basin.live', this.live);
    this.setStatus(this.running.size > 0 ? 'Working…' : 'Ready', this.running.size > 0);
    void vscode.window.showInformationMessage(this.live ? 'Basin live mode: saving an experiment module re-runs it.' : 'Basin live mode off.');
  }

  /** Live mode: a save re-runs the module (debounced), cancelling the previous live run. */
  private onSave(doc: vscode.TextDocument): void {
    if (!this.live || !isExperiment(doc.uri)) return;
    if (this.liveTimer) clearTimeout(this.liveTimer);
    this.liveTimer = setTimeout(() => {
      this.liveTimer = undefined;
      for (const c of this.running) c.abort();
      void this.trainAndProbe(doc.uri);
    }, this.config().get<number>('live.debounceMs', 800));
  }

  dispose(): void {
    for (const c of this.running) c.abort();
    for (const d of this.disposables.splice(0)) d.dispose();
  }
}

export function activate(context: vscode.ExtensionContext): void {
  context.subscriptions.push(new Basin(context));
}

export function deactivate(): void {
  /* the Basin instance is disposed with the context's subscriptions */
}

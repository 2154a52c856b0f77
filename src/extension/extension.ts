/**
 * Basin's VS Code entry point: commands, menus, the panel, CodeLens, decorations, live mode, a
 * status bar item and a log. Every computation runs in the forked compute worker (dist/worker.js),
 * so the extension host's thread only forwards messages; this side never imports the engine.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import * as vscode from 'vscode';
import { ComputeClient, JobError, type JobHooks } from './computeClient';
import { History } from './history';
import { BasinPanel, PANEL_COMMAND_IDS, type PanelCommand } from './panel';
import { BasinCodeLens, EXPERIMENT_GLOB, LayerDecorations, isExperiment } from './lenses';
import type { JobKind, OptionsOf, ProblemInput, ResultOf } from '../shared/workerProtocol';
import type { ResultJobKind } from '../shared/jobs';
import type { ProbeRecord, RunCheckpoint, TrainSettings } from '../shared/results';
import type { RunView } from '../shared/protocol';
import { readRunDir } from '../shared/runDir';
import { gridCsv, isSurface } from '../shared/csv';
import { exportFolderName, FileNames, resultCsvBase, runCsvBase } from './exportNames';
import { checkpointModel, isModelFile, isOnnxModel, MODEL_GLOB, ONNX_LOSSES } from './modelFiles';

/** How a job ended when it gave no result: the user cancelled it, or it failed (already shown). */
interface Outcome {
  failed?: 'cancelled' | 'error';
}

/** 'YYYY-MM-DD HH:MM' of a run started at `ms`, for telling runs apart in menus. */
function when(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '';
  const d = new Date(ms);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** A run's checkpoints in step order (manifest.json), without the last-good copy. */
function runCheckpoints(dir: string): RunCheckpoint[] {
  const read = readRunDir(dir);
  if ('problem' in read) return [];
  return read.manifest.checkpoints
    .filter((c) => c.by !== 'last-good' && checkpointModel(dir, c) !== undefined)
    .sort((a, b) => a.step - b.step);
}

/** File dialog filters for model files. */
const MODEL_FILTERS = { 'Models (TF.js model.json, ONNX)': ['json', 'onnx'] };

interface Target {
  problem: ProblemInput;
  /** The file the user pointed at (module, model.json or .onnx). */
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
      this.lens,
      { dispose: () => this.client.dispose() },
      vscode.languages.registerCodeLensProvider([{ pattern: EXPERIMENT_GLOB }], this.lens),
      vscode.window.registerWebviewPanelSerializer(BasinPanel.viewType, {
        deserializeWebviewPanel: async (panel) => {
          BasinPanel.revive(panel, context, this.history, (c, r) => this.panelCommand(c, r));
        },
      }),
      vscode.workspace.onDidSaveTextDocument((doc) => this.onSave(doc)),
    );
    const commands: Record<string, (...args: never[]) => unknown> = {
      'basin.openPanel': () => this.openPanel(),
      'basin.trainAndProbe': (uri?: vscode.Uri) => this.trainAndProbe(uri),
      'basin.probeNow': (arg?: vscode.Uri | string) => this.probeNow(arg),
      'basin.resume': (runId?: string) => this.resume(runId),
      'basin.inspectModel': (uri?: vscode.Uri) => this.inspect(uri),
      'basin.spectrum': (uri?: vscode.Uri) => this.spectrum(uri),
      'basin.slice': (uri?: vscode.Uri) => this.slice(uri),
      'basin.surface': (uri?: vscode.Uri) => this.surface(uri),
      'basin.interpolate': (uri?: vscode.Uri, uris?: vscode.Uri[]) => this.interpolate(uri, uris),
      'basin.trajectory': (arg?: vscode.Uri | string) => this.trajectory(arg),
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
    return BasinPanel.createOrShow(this.context, this.history, (c, r) => this.panelCommand(c, r));
  }

  /** A panel button: its command, with the run the panel shows for the run menu's actions. */
  private panelCommand(c: PanelCommand, runId?: string): void {
    const id = PANEL_COMMAND_IDS.get(c);
    if (!id) return;
    const withRun = c === 'probe' || c === 'resume' || c === 'trajectory';
    void vscode.commands.executeCommand(id, ...(withRun && runId ? [runId] : []));
  }

  /** Resolves what to analyse: the given file, the active editor's, or one the user picks. */
  private async target(uri: vscode.Uri | undefined, want: 'any' | 'experiment' = 'any'): Promise<Target | undefined> {
    let file = uri ?? vscode.window.activeTextEditor?.document.uri;
    const usable = (u: vscode.Uri | undefined): boolean => !!u && u.scheme === 'file' && (isExperiment(u) || (want === 'any' && isModelFile(u.fsPath)));
    if (!usable(file)) {
      const found = await vscode.workspace.findFiles(want === 'any' ? MODEL_GLOB : EXPERIMENT_GLOB, '**/node_modules/**', 200);
      if (found.length === 0) {
        const make = await vscode.window.showWarningMessage('Basin: no experiment module (*.basin.ts) or model.json in this workspace.', 'New Experiment from Example');
        if (make) await this.newExperiment();
        return undefined;
      }
      const pick = await vscode.window.showQuickPick(
        found.map((u) => ({ label: vscode.workspace.asRelativePath(u), uri: u })),
        { title: 'Basin: which model?', placeHolder: 'an experiment module, a TF.js model.json or an ONNX model' },
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
    const problem = await this.modelProblem(file);
    return problem && { problem, file: file.fsPath, label: vscode.workspace.asRelativePath(file) };
  }

  /** A model file's problem: its data (and for an ONNX model its loss), asked once and remembered per model. */
  private async modelProblem(model: vscode.Uri): Promise<ProblemInput | undefined> {
    const data = await this.dataFor(model);
    if (!data) return undefined;
    if (!isOnnxModel(model.fsPath)) return { model: model.fsPath, data };
    const loss = await this.lossFor(model);
    return loss ? { model: model.fsPath, data, loss } : undefined;
  }

  /** The loss for an ONNX model (the file holds none): asked once, remembered per model. */
  private async lossFor(model: vscode.Uri): Promise<string | undefined> {
    const key = `basin.loss:${model.fsPath}`;
    const remembered = this.context.workspaceState.get<string>(key);
    if (remembered && ONNX_LOSSES.some((l) => l.label === remembered)) return remembered;
    const pick = await vscode.window.showQuickPick(ONNX_LOSSES, {
      title: `Basin: the loss of ${path.basename(path.dirname(model.fsPath))}/${path.basename(model.fsPath)} (an ONNX file holds none)`,
    });
    if (!pick) return undefined;
    await this.context.workspaceState.update(key, pick.label);
    return pick.label;
  }

  /** The data file for a model.json: asked once, remembered per model. */
  private async dataFor(model: vscode.Uri, ask = false): Promise<string | undefined> {
    const key = `basin.data:${model.fsPath}`;
    const remembered = this.context.workspaceState.get<string>(key);
    if (remembered && !ask && fs.existsSync(remembered.split(',')[0])) return remembered;
    const beside = ['data.json', 'data.csv', 'data.npz', `${path.parse(model.fsPath).name}.npz`].map((f) => path.join(path.dirname(model.fsPath), f)).find((f) => fs.existsSync(f));
    const picked = await vscode.window.showOpenDialog({
      canSelectMany: true,
      defaultUri: beside ? vscode.Uri.file(beside) : vscode.Uri.file(path.dirname(model.fsPath)),
      filters: { 'Data (.json, .csv, .npy, .npz)': ['json', 'csv', 'npy', 'npz'] },
      title: `Basin: the data to evaluate ${path.basename(path.dirname(model.fsPath))}/${path.basename(model.fsPath)} on`,
      openLabel: 'Use this data',
    });
    if (!picked?.length) return undefined;
    const value = picked.map((u) => u.fsPath).join(',');
    await this.context.workspaceState.update(key, value);
    return value;
  }

  /** Runs a job with a cancellable progress notification, the status bar and the log. */
  private async job<K extends JobKind>(kind: K, target: Target, options: OptionsOf<K>, title: string, hooks: JobHooks<K> = {}, outcome: Outcome = {}): Promise<ResultOf<K> | undefined> {
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
      if (err.kind === 'cancelled') {
        outcome.failed = 'cancelled';
        return undefined;
      }
      outcome.failed = 'error';
      this.output.error(err.message);
      // One notification per failure, naming what was asked and the file (the message names it).
      const text = err.kind === 'internal' ? 'internal error (details in the Basin log)' : err.message;
      void vscode.window.showErrorMessage(`Basin: ${title} failed: ${text}`, 'Show Log').then((a) => a && this.output.show());
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

  /**
   * Runs a one-off analysis and shows it in the panel as a new card, titled by what it is and on
   * which model ("Top 5 Hessian eigenvalues · spiral/model.json"), streaming partial grids.
   * Returns whether it gave a result.
   */
  private async analysis<K extends ResultJobKind>(kind: K, where: vscode.Uri | Target | undefined, options: OptionsOf<K>, title: string, what = title): Promise<boolean> {
    const target = where && 'problem' in where ? where : await this.target(where);
    if (!target) return false;
    const id = `${kind}-${++this.seq}-${Date.now()}`;
    const name = `${what} · ${target.label}`;
    this.openPanel();
    const result = await this.job(kind, target, options, title, {
      onPartial: (r) => this.history.putResult({ id, title: name, result: r, partial: true }),
    });
    if (result) {
      this.history.putResult({ id, title: name, result });
      this.output.info(`${title} done in ${'ms' in result ? result.ms.toFixed(0) : '?'} ms (${result.backendDetail})`);
      return true;
    }
    return false;
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
    const layersEvery = this.config().get<number | null>('layerSharpnessEvery', null);
    const train: Partial<TrainSettings> = {};
    if (probeEvery) train.probeEvery = probeEvery;
    if (steps) train.steps = steps;
    if (layersEvery) train.layersEvery = layersEvery;
    const keep = this.config().get<number>('checkpointsPerRun', 10);
    const options: OptionsOf<'train'> = { train, runDir, layerProbes: 10 };
    if (keep > 0) options.keepCheckpoints = keep;
    await this.runTraining(id, target, options, 'Train and Probe');
  }

  /**
   * Runs (or resumes) the training job of run `id`: streams its probes, follows it in the CodeLens,
   * and says how it ended. A run that failed or was stopped before its first probe leaves nothing
   * behind (no run in the panel, no run folder); a stopped run offers Resume.
   */
  private async runTraining(id: string, target: Target, options: OptionsOf<'train'>, title: string): Promise<void> {
    const runDir = options.runDir;
    const hooks: JobHooks<'train'> = {
      onProbes: (records, settings) => {
        this.history.addProbes(id, records, settings);
        // The CodeLens follows the run (it paces its refreshes to the editor's updates: lensRefresh.ts).
        this.lens.refresh();
      },
    };
    const outcome: Outcome = {};
    const done = await this.job('train', target, options, title, hooks, outcome);
    const run = this.history.runs.find((r) => r.id === id);
    if (!done && !options.resume && (run?.probes.length ?? 0) === 0) {
      // Nothing was computed: forget the run, and its folder if the worker had begun it.
      this.history.removeRun(id);
      this.lens.refresh();
      fs.rmSync(runDir, { recursive: true, force: true });
      return;
    }
    this.history.endRun(id, done ?? { done: false, run: runDir, status: outcome.failed === 'error' ? 'failed' : 'cancelled', reason: outcome.failed === 'error' ? 'the compute job failed (see the Basin log)' : 'stopped', steps: run?.probes[run.probes.length - 1]?.step ?? 0 });
    this.lens.refresh();
    const layers = [...(run?.probes ?? [])].reverse().find((p) => p.layerSharpness);
    if (layers?.layerSharpness) {
      const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(target.file));
      this.decorations.show(doc, layers.layerSharpness, layers.step);
    }
    if (done) this.output.info(`run ${done.status}: ${done.run}${done.reason ? ` (${done.reason})` : ''}`);
    if (done && !done.done && done.status === 'diverged') void vscode.window.showWarningMessage(`Basin: the run diverged: ${done.reason}`);
    if (done && (done.status === 'cancelled' || done.status === 'failed')) {
      const what = done.status === 'cancelled' ? `stopped at step ${done.steps}` : `failed at step ${done.steps}: ${(done.reason ?? '').replace(/; the run can be resumed.*$/, '')}`;
      const show = done.status === 'cancelled' ? vscode.window.showInformationMessage : vscode.window.showErrorMessage;
      void show(`Basin: the run of ${target.label} ${what}. Resume continues it from its newest checkpoint.`, 'Resume').then((a) => a && this.resume(id));
    }
  }

  /** The run `runId`, or the newest run of `file`, or the newest run. */
  private findRun(runId?: string, file?: string): RunView | undefined {
    if (runId) return this.history.runs.find((r) => r.id === runId);
    if (file) return this.history.latestFor(file)?.run;
    return this.history.runs[this.history.runs.length - 1];
  }

  /** The run's problem (its module or model and data), from its manifest. */
  private runTarget(run: RunView): Target | undefined {
    if (!run.dir) return undefined;
    const read = readRunDir(run.dir);
    if ('problem' in read) {
      void vscode.window.showErrorMessage(`Basin: ${run.dir}: ${read.problem}`);
      return undefined;
    }
    const p = read.manifest.problem;
    const problem: ProblemInput = {};
    for (const k of ['model', 'data', 'labels', 'noHeader', 'loss', 'experiment'] as const) if (p[k] !== undefined) (problem as Record<string, unknown>)[k] = p[k];
    const file = p.experiment ?? p.model ?? run.dir;
    return { problem, file, label: run.title };
  }

  /** Continues a stopped (or failed) run from its newest checkpoint, in the same run. */
  private async resume(runId?: string): Promise<void> {
    let run = runId ? this.findRun(runId) : undefined;
    if (!run) {
      const candidates = this.history.runs.filter((r) => r.dir && r.done && !r.done.done && r.done.status !== 'diverged');
      if (!candidates.length) {
        void vscode.window.showInformationMessage('Basin: no stopped run to resume.');
        return;
      }
      const pick = await vscode.window.showQuickPick(candidates.map((r) => ({ ...this.runItem(r), run: r })), { title: 'Basin: resume which run?' });
      run = pick?.run;
    }
    if (!run?.dir) return;
    if (this.running.size > 0 && !run.done) {
      void vscode.window.showInformationMessage('Basin: this run is still running.');
      return;
    }
    const target = this.runTarget(run);
    if (!target) return;
    this.history.restartRun(run.id);
    this.openPanel();
    await this.runTraining(run.id, target, { runDir: run.dir, resume: true }, 'Resume Run');
  }

  /** A run in a quick pick: its title, when it started, optimizer, lr and status. */
  private runItem(r: RunView): vscode.QuickPickItem {
    const st = r.settings;
    const status = r.done ? r.done.status : 'running';
    return {
      label: r.title,
      description: [when(this.history.startedAt(r)), st ? `${st.optimizer} lr ${st.lr}` : '', status].filter(Boolean).join(' · '),
      detail: r.dir ? vscode.workspace.asRelativePath(r.dir) : undefined,
    };
  }

  /**
   * Probe now: sharpness, trace, per-layer sharpness and the gradient noise scale of the current
   * model, with no training: the run's newest checkpoint (a run of the module, or the run the panel
   * shows), recorded at its step in the same run; or the module's model when it has no run.
   */
  private async probeNow(arg?: vscode.Uri | string): Promise<void> {
    const uri = typeof arg === 'string' ? undefined : (arg ?? vscode.window.activeTextEditor?.document.uri);
    const module = uri && isExperiment(uri) ? uri.fsPath : undefined;
    let run = typeof arg === 'string' ? this.findRun(arg) : module ? this.findRun(undefined, module) : this.findRun();
    if (run && !run.dir) run = undefined;
    let target: Target | undefined;
    let step = 0;
    let settings: Partial<TrainSettings> = {};
    let last: ProbeRecord | undefined;
    if (run?.dir) {
      const checkpoints = runCheckpoints(run.dir);
      const ck = checkpoints[checkpoints.length - 1];
      const base = this.runTarget(run);
      if (!base) return;
      if (!ck) {
        void vscode.window.showErrorMessage(`Basin: Probe Now: the run ${run.title} has no checkpoint yet (${vscode.workspace.asRelativePath(run.dir)}); probe it once it has written one.`);
        return;
      }
      step = ck.step;
      last = [...run.probes].reverse().find((p) => p.step <= step);
      settings = run.settings ?? {};
      target = { ...base, problem: { ...base.problem, model: checkpointModel(run.dir, ck) }, label: `${run.title} at step ${step}` };
    } else {
      target = await this.target(uri, 'experiment');
      if (!target) return;
      const id = `probe-${++this.seq}-${Date.now()}`;
      run = this.history.startRun(id, `${target.label} (its model, untrained)`, undefined, target.file);
    }
    const runId = run.id;
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'basin-probe-'));
    const train: Partial<TrainSettings> = {
      ...settings,
      steps: 0,
      schedule: 'constant',
      lr: last?.lr ?? settings.lr ?? 0.05,
      probeEvery: 1,
      traceEvery: 1,
      noiseEvery: 1,
      layersEvery: 1,
      checkpointEvery: 0,
      checkpointSeconds: 0,
    };
    if (run.settings === undefined) delete train.optimizer;
    let record: ProbeRecord | undefined;
    let got: TrainSettings | undefined;
    this.openPanel();
    try {
      await this.job('train', target, { train, runDir: path.join(tmp, 'probe') }, 'Probe Now', {
        onProbes: (records, s) => {
          record = records[records.length - 1] ?? record;
          got ??= s;
        },
      });
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    if (!record) {
      if (run.probes.length === 0 && !run.dir) this.history.removeRun(runId);
      return;
    }
    // The probe's own distance is from the checkpoint to itself: not the run's distance from init.
    const { distInit: _d, ms: _ms, ...rest } = record;
    const rec: ProbeRecord = { ...rest, ms: record.ms, step, epoch: last?.epoch ?? 0 };
    if (!run.settings && got) this.history.addProbes(runId, [], { ...got, steps: 0 });
    this.history.putProbe(runId, rec);
    if (!run.done) this.history.endRun(runId, { done: true, run: run.dir ?? '', status: 'completed', steps: step });
    this.lens.refresh();
    if (rec.layerSharpness && target.file && isExperiment(vscode.Uri.file(target.file))) {
      const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(target.file));
      this.decorations.show(doc, rec.layerSharpness, step);
    }
    this.output.info(`Probe Now: ${target.label}: lambda_max ${rec.lambdaMax}, trace ${rec.trace}, noise scale ${rec.noiseScale}`);
  }

  private inspect(uri?: vscode.Uri): Promise<void> {
    return this.analysis('info', uri, {}, 'Inspect Model', 'Model').then(() => undefined);
  }

  /** The top eigenvalues, then the spectral density, of one model (asked for once): two cards. */
  private async spectrum(uri?: vscode.Uri): Promise<void> {
    const target = await this.target(uri);
    if (!target) return;
    const k = this.config().get<number>('eigenvalues', 5);
    if (!(await this.analysis('eigs', target, { k }, 'Sharpness Spectrum', `Top ${k} Hessian eigenvalues`))) return;
    await this.analysis('density', target, { steps: 60, runs: 2 }, 'Sharpness Spectrum', 'Hessian spectral density');
  }

  private slice(uri?: vscode.Uri): Promise<void> {
    const steps = this.config().get<number>('slice.steps', 51);
    return this.analysis('slice', uri, { dirs: ['eigen', 'random', 'gradient'], x: `-1:1:${steps}` }, '1-D Slice', '1-D loss slices').then(() => undefined);
  }

  private surface(uri?: vscode.Uri): Promise<void> {
    const steps = this.config().get<number>('surface.steps', 41);
    return this.analysis('surface', uri, { x: `-1:1:${steps}` }, '2-D Surface', '2-D loss surface').then(() => undefined);
  }

  /**
   * Interpolates between two models: the two model.json files selected in the explorer, or two
   * checkpoints picked from a run (or files picked in a dialog).
   */
  private async interpolate(uri?: vscode.Uri, uris?: vscode.Uri[]): Promise<void> {
    let files: string[] = (uris && uris.length > 1 ? uris : []).map((u) => u.fsPath);
    if (files.length === 0) {
      const items: (vscode.QuickPickItem & { file?: string })[] = [];
      for (const r of this.history.runs) {
        if (!r.dir) continue;
        for (const c of runCheckpoints(r.dir)) items.push({ label: `${r.title}: step ${c.step}`, description: vscode.workspace.asRelativePath(path.join(r.dir, c.dir)), file: checkpointModel(r.dir, c) });
      }
      if (uri && !items.some((i) => i.file === uri.fsPath)) items.unshift({ label: vscode.workspace.asRelativePath(uri), file: uri.fsPath, picked: true });
      if (items.length >= 2) {
        const picks = await vscode.window.showQuickPick([...items, { label: 'Pick model files…', description: 'a file dialog' }], {
          canPickMany: true,
          title: 'Basin: interpolate between which two models? (two checkpoints of the same model)',
        });
        if (!picks) return;
        files = picks.filter((p) => p.file).map((p) => p.file as string);
        if (files.length === 0 && picks.length) files = [];
        else if (files.length !== 2) {
          void vscode.window.showErrorMessage(`Basin: Interpolate needs exactly two models; ${files.length} were picked.`);
          return;
        }
      }
      if (files.length === 0) {
        const picked = await vscode.window.showOpenDialog({ canSelectMany: true, filters: MODEL_FILTERS, title: 'Basin: pick two model files (model.json or .onnx; checkpoints of the same model)' });
        files = (uri ? [uri, ...(picked ?? [])] : (picked ?? [])).map((u) => u.fsPath);
        if (!picked?.length) return;
      }
    }
    if (files.length !== 2) {
      void vscode.window.showErrorMessage(`Basin: Interpolate needs exactly two model files; ${files.length} were selected. Select two in the explorer (Ctrl+click) and right-click one.`);
      return;
    }
    const problem = await this.problemForCheckpoint(files[0]);
    if (!problem) return;
    const label = files.map((f) => this.modelLabel(f)).join(' → ');
    const target: Target = { problem, file: files[0], label };
    const id = `interpolate-${++this.seq}-${Date.now()}`;
    const title = `Loss along the line between two models · ${label}`;
    this.openPanel();
    const r = await this.job('interpolate', target, { other: files[1] }, 'Interpolate', { onPartial: (x) => this.history.putResult({ id, title, result: x, partial: true }) });
    if (r) this.history.putResult({ id, title, result: r });
  }

  /** "run title: step N" for a checkpoint of a known run, else the file relative to the workspace. */
  private modelLabel(file: string): string {
    for (const r of this.history.runs) {
      if (!r.dir || !file.startsWith(r.dir + path.sep)) continue;
      const c = runCheckpoints(r.dir).find((x) => checkpointModel(r.dir as string, x) === file);
      if (c) return `${r.title} step ${c.step}`;
    }
    return vscode.workspace.asRelativePath(file);
  }

  /** A checkpoint's problem: its run's module (or data) when it belongs to a run, else model.json + data. */
  private async problemForCheckpoint(file: string): Promise<ProblemInput | undefined> {
    const dir = path.dirname(path.dirname(path.dirname(file)));
    const read = fs.existsSync(path.join(dir, 'manifest.json')) ? readRunDir(dir) : undefined;
    if (read && !('problem' in read)) {
      const p = read.manifest.problem;
      if (p.experiment) return { experiment: p.experiment, model: file };
      if (p.data) return { model: file, data: p.data, labels: p.labels, noHeader: p.noHeader, loss: p.loss };
    }
    return this.modelProblem(vscode.Uri.file(file));
  }

  /** A trajectory plane from a run's checkpoints (the run given, or picked), or from picked model.json files. */
  private async trajectory(arg?: vscode.Uri | string): Promise<void> {
    const runs = this.history.runs.filter((r) => r.dir && fs.existsSync(path.join(r.dir, 'manifest.json')));
    let run = typeof arg === 'string' ? this.findRun(arg) : undefined;
    let checkpoints: string[] = [];
    if (!run && runs.length) {
      const pick = await vscode.window.showQuickPick([...runs.map((r) => ({ ...this.runItem(r), run: r as RunView | undefined })), { label: 'Pick checkpoint files…', description: 'a file dialog', run: undefined }], { title: 'Basin: trajectory of which run?' });
      if (!pick) return;
      run = pick.run;
    }
    if (run?.dir) {
      checkpoints = runCheckpoints(run.dir).map((c) => checkpointModel(run.dir as string, c) as string);
      if (checkpoints.length < 3) {
        void vscode.window.showErrorMessage(
          `Basin: a trajectory plane needs at least 3 checkpoints; the run ${run.title} has ${checkpoints.length}. ` +
            'Runs started in the editor keep about basin.checkpointsPerRun of them (Settings: "Basin: Checkpoints Per Run"); train again, or set train.checkpointEvery in the module.',
        );
        return;
      }
    } else {
      const picks = await vscode.window.showOpenDialog({ canSelectMany: true, filters: MODEL_FILTERS, title: 'Basin: pick 3 or more checkpoints (model.json or .onnx), in training order' });
      checkpoints = (picks ?? []).map((u) => u.fsPath).sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
      if (!picks?.length) return;
      if (checkpoints.length < 3) {
        void vscode.window.showErrorMessage(`Basin: a trajectory plane needs at least 3 checkpoints; ${checkpoints.length} were picked.`);
        return;
      }
    }
    const last = checkpoints[checkpoints.length - 1];
    const problem = await this.problemForCheckpoint(last);
    if (!problem) return;
    const label = run ? `${run.title} (${checkpoints.length} checkpoints)` : `${checkpoints.length} checkpoints`;
    const target: Target = { problem, file: last, label };
    const id = `trajectory-${++this.seq}-${Date.now()}`;
    const title = `Trajectory plane · ${label}`;
    this.openPanel();
    const r = await this.job('trajectory', target, { checkpoints }, 'Trajectory Plane', { onPartial: (x) => this.history.putResult({ id, title, result: x, partial: true }) });
    if (r) this.history.putResult({ id, title, result: r });
  }

  /** Overlays the runs the user picks (loss and sharpness, each with its 2/eta) and shows that view. */
  private async compareRuns(): Promise<void> {
    const runs = this.history.runs.filter((r) => r.probes.length > 0);
    if (runs.length === 0) {
      void vscode.window.showInformationMessage('Basin: no runs to compare yet. Train a module (Basin: Train and Probe) first.');
      return;
    }
    let ids = runs.map((r) => r.id);
    if (runs.length > 2) {
      const picks = await vscode.window.showQuickPick(
        runs.map((r, i) => ({ ...this.runItem(r), id: r.id, picked: i >= runs.length - 2 })),
        { canPickMany: true, title: 'Basin: compare which runs?' },
      );
      if (!picks?.length) return;
      ids = picks.map((p) => p.id);
    }
    this.history.compare(ids);
    this.openPanel();
  }

  private stop(): void {
    if (this.running.size === 0) {
      void vscode.window.showInformationMessage('Basin: nothing is running.');
      return;
    }
    for (const c of this.running) c.abort();
  }

  /**
   * Export: a new folder `basin-export-<run>-<time>/` in `.basin/exports/` or in a folder the user
   * picks, holding every run and analysis (JSON of all, a metrics CSV per run, a CSV per grid
   * result) and a titled PNG of each chart the panel draws, on the theme's background or white
   * (the setting basin.export.background).
   */
  private async export(): Promise<void> {
    const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const defaultParent = root ? path.join(root, '.basin', 'exports') : undefined;
    const items: (vscode.QuickPickItem & { where: 'default' | 'pick' })[] = [];
    if (defaultParent) items.push({ label: 'Export to .basin/exports/', description: 'in this workspace', where: 'default' });
    items.push({ label: 'Choose a folder…', description: 'the export folder is created inside it', where: 'pick' });
    const choice = items.length > 1 ? await vscode.window.showQuickPick(items, { title: 'Basin: export every run and analysis (PNG, CSV, JSON)' }) : items[0];
    if (!choice) return;
    let parent = defaultParent;
    if (choice.where === 'pick') {
      const folder = await vscode.window.showOpenDialog({ canSelectFiles: false, canSelectFolders: true, openLabel: 'Export here', title: 'Basin: the folder to create the export folder in' });
      if (!folder?.[0]) return;
      parent = folder[0].fsPath;
    }
    if (!parent) return;
    const snapshot = this.history.snapshot();
    const shown = this.findRun(snapshot.focus && snapshot.runs.some((r) => r.id === snapshot.focus) ? snapshot.focus : undefined);
    const dir = path.join(parent, exportFolderName(shown?.title, new Date()));
    const names = new FileNames();
    const written: string[] = [];
    const write = (base: string, ext: string, data: string | Buffer): void => {
      const file = path.join(dir, names.take(base, ext));
      fs.writeFileSync(file, data);
      written.push(file);
    };
    try {
      fs.mkdirSync(dir, { recursive: true });
      write('runs-and-analyses', 'json', JSON.stringify(snapshot, null, 1));
      const keys = ['step', 'loss', 'accuracy', 'testLoss', 'lambdaMax', 'threshold', 'trace', 'igrTerm', 'sgdTerm', 'noiseScale', 'distInit', 'weightNorm'] as const;
      for (const run of snapshot.runs) {
        write(runCsvBase(run.title), 'csv', [keys.join(','), ...run.probes.map((p) => keys.map((k) => p[k] ?? '').join(','))].join('\n') + '\n');
      }
      for (const r of snapshot.results) {
        const res = r.result;
        if (res.kind === 'slice' || res.kind === 'interpolate' || isSurface(res as never)) write(resultCsvBase(r.title), 'csv', gridCsv(res as never));
      }
      const panel = BasinPanel.current;
      if (panel) {
        try {
          const background = this.config().get<string>('export.background', 'theme') === 'white' ? 'white' : 'theme';
          const images = await panel.requestPng(background);
          for (const [name, url] of Object.entries(images)) write(name, 'png', Buffer.from(url.replace(/^data:image\/png;base64,/, ''), 'base64'));
        } catch (e) {
          this.output.warn(`PNG export: ${(e as Error).message}`);
        }
      }
    } catch (e) {
      void vscode.window.showErrorMessage(`Basin: Export could not write ${dir}: ${(e as Error).message}`);
      return;
    }
    this.output.info(`Export: ${written.map((f) => path.basename(f)).join(', ')}`);
    void vscode.window.showInformationMessage(`Basin: exported ${written.length} files to ${vscode.workspace.asRelativePath(dir)}`, 'Reveal in Explorer').then((a) => {
      if (a) void vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(dir));
    });
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

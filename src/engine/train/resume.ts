/**
 * Resuming a run directory after a stop, a crash or a kill. `openRunForResume` is called before
 * anything is loaded: it checks the manifest field by field, finds the newest checkpoint whose files
 * are whole (falling back to an older one, or to step 0, when the newest is damaged) and says what
 * it will repair. It writes nothing; `train(..., { resume: true })` plans the same way and applies
 * the repairs (`applyResume`) once the model has loaded.
 *
 * Every file of a run is written to a temporary name and renamed, except metrics.jsonl, which is
 * appended a line at a time: a kill can cut its last line, and a kill during a checkpoint leaves a
 * `*.tmp-PID` directory that the manifest does not list. Anything else that is wrong was damaged
 * from outside, and is repaired where the run allows it or refused naming the file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ProblemInput } from '../../shared/workerProtocol';
import type { ProbeRecord, RunCheckpoint, RunManifest, TrainSettings } from '../../shared/results';
import { checkManifest } from '../../shared/runDir';
import { BasinError } from '../errors';
import { MAX_JSON_BYTES, MAX_STATE_JSON_BYTES } from '../limits';
import { OPTIMIZER_NAMES, type OptimizerName, type OptimizerState } from './optimizers';
import { decodeState } from './state';
import { isOnnxFile, loadOnnxModel } from '../model/onnx/import';

/** What `openRunForResume` found: how to reload the problem, the run's settings, and what it will repair. */
export interface OpenedRun {
  /** Where the model and data came from (absolute paths, as the run recorded them). */
  problem: ProblemInput;
  /** The run's settings (the command line may override some; the same ones resume bit for bit). */
  settings: Partial<TrainSettings>;
  /** One line each: where training resumes, how many steps are redone, what was repaired. */
  notes: string[];
}

/** Where a resumed run starts: a checkpoint's float64 parameters and optimizer state, or step 0. */
export interface ResumePoint {
  step: number;
  /** The checkpoint, or undefined to restart from the problem's initial parameters. */
  checkpoint?: RunCheckpoint;
  theta?: Float64Array;
  optimizer?: OptimizerState;
}

export interface ResumePlan {
  dir: string;
  manifest: RunManifest;
  from: ResumePoint;
  notes: string[];
  /** Listed checkpoints newer than `from` whose files are damaged: unlisted and removed. */
  damaged: RunCheckpoint[];
  /** The readable metrics lines (all steps; `applyResume` keeps those before `from.step`). */
  metrics: string[];
  /** Whether metrics.jsonl needs rewriting even if no line is after `from.step`. */
  metricsRepaired: boolean;
  /** Temporary files and directories a kill left behind. */
  leftovers: string[];
  /** The loss at step 0, if the run recorded it (the divergence test's reference). */
  initialLoss?: number;
}

const MANIFEST = 'manifest.json';
const METRICS = 'metrics.jsonl';

/**
 * Checks a run directory before resuming it and says what will happen. Throws a `BasinError`
 * naming the file for what cannot be repaired (no or a damaged manifest.json). Writes nothing.
 */
export function openRunForResume(dir: string): OpenedRun {
  const plan = planResume(dir);
  const p = plan.manifest.problem;
  const problem: ProblemInput = {};
  if (p.model !== undefined) problem.model = p.model;
  if (p.data !== undefined) problem.data = p.data;
  if (p.labels !== undefined) problem.labels = p.labels;
  if (p.noHeader !== undefined) problem.noHeader = p.noHeader;
  if (p.loss !== undefined) problem.loss = p.loss;
  if (p.experiment !== undefined) problem.experiment = p.experiment;
  return { problem, settings: { ...plan.manifest.settings }, notes: plan.notes };
}

/** Reads and checks manifest.json; a BasinError naming it when it is missing or damaged. */
export function readManifest(dir: string): RunManifest {
  const file = path.join(dir, MANIFEST);
  if (!fs.existsSync(file)) {
    throw new BasinError(fs.existsSync(dir) ? 'no manifest.json: not a Basin run directory' : 'no such run directory', dir);
  }
  const size = fs.statSync(file).size;
  if (size > MAX_JSON_BYTES) throw new BasinError(`is ${size} bytes: not a run manifest`, file);
  let value: unknown;
  try {
    value = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new BasinError(`is not valid JSON (${(e as Error).message}); the run's settings are unknown, so it cannot be resumed: start a new run`, file);
  }
  const m = checkManifest(value);
  if (typeof m === 'string') throw new BasinError(`${m}; the run cannot be resumed: start a new run`, file);
  return m;
}

/** The label of a checkpoint directory for a step. */
export function stepLabel(step: number): string {
  return `step-${String(step).padStart(6, '0')}`;
}

/** Plans a resume (see the module comment); writes nothing. */
export function planResume(dir: string): ResumePlan {
  const manifest = readManifest(dir);
  const notes: string[] = [];
  const leftovers = findLeftovers(dir);
  for (const l of leftovers) if (fs.statSync(l).isDirectory()) notes.push(`${rel(dir, l)} is a checkpoint whose writing was cut short; removing it`);

  const metrics = readMetrics(dir, notes);
  const initialLoss = manifest.initialLoss ?? metrics.records.find((r) => r.step === 0)?.loss;

  // Newest first; at equal steps, the later entry (the manifest lists them in the order written).
  let listed = manifest.checkpoints.map((c, i) => ({ c, i })).sort((a, b) => b.c.step - a.c.step || b.i - a.i).map((x) => x.c);
  // A diverged run continues from its last good parameters: a checkpoint after them holds a loss
  // that failed the divergence test.
  const lastGood = manifest.status === 'diverged' ? listed.find((c) => c.by === 'last-good') : undefined;
  if (lastGood) {
    listed = listed.filter((c) => c.step <= lastGood.step);
    notes.push(`the run diverged at step ${manifest.stoppedAt ?? '?'}: resuming from its last good parameters`);
  }
  const damaged: RunCheckpoint[] = [];
  let from: ResumePoint | undefined;
  for (const c of listed) {
    const read = readCheckpointState(dir, c, manifest.params);
    if ('damage' in read) {
      damaged.push(c);
      notes.push(`${read.damage}: ${c.dir} is damaged; removing it`);
      continue;
    }
    from = { step: c.step, checkpoint: c, theta: read.theta, optimizer: read.optimizer };
    break;
  }
  if (damaged.length && from) notes.push(`falling back to the previous checkpoint, ${from.checkpoint?.dir}`);
  from ??= { step: 0 };

  // How far the run had got: where it says it stopped, or the last step its metrics record.
  const fullBatch = manifest.settings.batchSize === undefined;
  let reached = manifest.stoppedAt ?? 0;
  for (const r of metrics.records) reached = Math.max(reached, r.lambdaMax === undefined && fullBatch ? r.step + 1 : r.step);
  const redone = Math.max(0, reached - from.step);
  const where = from.checkpoint ? `from ${from.checkpoint.dir}` : manifest.checkpoints.length ? 'from the initial parameters (no usable checkpoint)' : 'from the initial parameters (no checkpoint was written)';
  notes.push(`resuming at step ${from.step} ${where}; ${redone === 0 ? 'no steps are' : redone === 1 ? '1 step after it is' : `${redone} steps after it are`} redone`);
  return { dir, manifest, from, notes, damaged, metrics: metrics.lines, metricsRepaired: metrics.repaired, leftovers, initialLoss };
}

/**
 * Applies a plan: removes what a kill left half-written and the damaged checkpoints, keeps the
 * metrics before the resume step (they are recomputed after it, so each step appears once), and
 * returns the manifest to continue with (written by the caller).
 */
export function applyResume(plan: ResumePlan): RunManifest {
  const { dir, from } = plan;
  for (const l of plan.leftovers) fs.rmSync(l, { recursive: true, force: true });
  const damagedDirs = new Set(plan.damaged.map((c) => c.dir));
  for (const d of damagedDirs) if (d !== from.checkpoint?.dir) fs.rmSync(path.join(dir, d), { recursive: true, force: true });
  const kept = plan.metrics.filter((l) => (JSON.parse(l) as ProbeRecord).step < from.step);
  if (plan.metricsRepaired || kept.length !== plan.metrics.length) writeFileAtomic(path.join(dir, METRICS), kept.map((l) => `${l}\n`).join(''));
  const checkpoints = plan.manifest.checkpoints.filter((c) => !damagedDirs.has(c.dir) || c.dir === from.checkpoint?.dir);
  return { ...plan.manifest, checkpoints, status: 'running', resumedFrom: from.step, stoppedAt: undefined, reason: undefined, initialLoss: plan.initialLoss };
}

/** Writes a file under a temporary name and renames it, so a kill leaves the old file or the new one. */
export function writeFileAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

function rel(dir: string, file: string): string {
  return path.relative(dir, file).split(path.sep).join('/');
}

/** `*.tmp` files and `*.tmp-PID` checkpoint directories a kill left behind. */
function findLeftovers(dir: string): string[] {
  const out: string[] = [];
  const tmpName = /\.tmp(-\d+)?$/;
  for (const f of [MANIFEST, METRICS]) if (fs.existsSync(path.join(dir, `${f}.tmp`))) out.push(path.join(dir, `${f}.tmp`));
  const ck = path.join(dir, 'checkpoints');
  if (!fs.existsSync(ck)) return out;
  for (const e of fs.readdirSync(ck, { withFileTypes: true })) {
    const p = path.join(ck, e.name);
    if (tmpName.test(e.name)) out.push(p);
    else if (e.isDirectory() && fs.existsSync(path.join(p, 'optimizer.json.tmp'))) out.push(path.join(p, 'optimizer.json.tmp'));
  }
  return out;
}

/** The readable lines of metrics.jsonl; a line cut by a kill, or any unreadable line, is dropped and said. */
function readMetrics(dir: string, notes: string[]): { lines: string[]; records: ProbeRecord[]; repaired: boolean } {
  const file = path.join(dir, METRICS);
  if (!fs.existsSync(file)) {
    notes.push(`${METRICS} is missing; starting a new one`);
    return { lines: [], records: [], repaired: true };
  }
  const text = fs.readFileSync(file, 'utf8');
  const parts = text.split('\n');
  // The text after the last newline: empty when the file ends a line, else a line cut short (or one
  // whose newline was cut, which is kept when it reads).
  const tail = parts.pop() ?? '';
  const lines: string[] = [];
  const records: ProbeRecord[] = [];
  const bad: number[] = [];
  const read = (line: string): ProbeRecord | undefined => {
    try {
      const r = JSON.parse(line) as ProbeRecord;
      return r && typeof r === 'object' && Number.isInteger(r.step) && r.step >= 0 && typeof r.loss === 'number' ? r : undefined;
    } catch {
      return undefined;
    }
  };
  parts.forEach((line, i) => {
    if (!line.trim()) return;
    const r = read(line);
    if (r) {
      lines.push(line);
      records.push(r);
    } else bad.push(i + 1);
  });
  let repaired = bad.length > 0;
  if (tail.trim()) {
    repaired = true;
    const r = read(tail);
    if (r) {
      lines.push(tail);
      records.push(r);
    } else notes.push(`${METRICS}: dropped its last line, cut short when the run stopped (${Buffer.byteLength(tail)} bytes)`);
  }
  if (bad.length) notes.push(`${METRICS}: dropped ${bad.length === 1 ? 'an unreadable line' : `${bad.length} unreadable lines`} (line ${bad.slice(0, 5).join(', ')}${bad.length > 5 ? ', ...' : ''})`);
  return { lines, records, repaired };
}

/**
 * A checkpoint's float64 parameters and optimizer state (optimizer.json), after checking that its
 * model files are whole (model.json + weights.bin, or the .onnx file loads with the run's number of
 * parameters); or what is damaged, naming the file relative to the run directory.
 */
export function readCheckpointState(dir: string, c: RunCheckpoint, params: number): { theta: Float64Array; optimizer: OptimizerState } | { damage: string } {
  const at = (f: string): string => `${c.dir.split(path.sep).join('/')}/${f}`;
  const ckDir = path.join(dir, c.dir);
  if (!fs.existsSync(ckDir) || !fs.statSync(ckDir).isDirectory()) return { damage: `${c.dir} is missing` };
  const json = (f: string): { value: unknown } | { damage: string } => {
    const file = path.join(ckDir, f);
    if (!fs.existsSync(file)) return { damage: `${at(f)} is missing` };
    const size = fs.statSync(file).size;
    if (size > MAX_STATE_JSON_BYTES) return { damage: `${at(f)} is ${size} bytes, over the limit of ${MAX_STATE_JSON_BYTES}` };
    try {
      return { value: JSON.parse(fs.readFileSync(file, 'utf8')) };
    } catch (e) {
      return { damage: `${at(f)} is not valid JSON (${(e as Error).message})` };
    }
  };
  const modelFile = checkpointModelFile(ckDir);
  if (modelFile && isOnnxFile(modelFile)) {
    try {
      const onnxParams = loadOnnxModel(path.join(ckDir, modelFile)).ir.numParams;
      if (onnxParams !== params) return { damage: `${at(modelFile)} has ${onnxParams} parameters; the run has ${params}` };
    } catch (e) {
      if (!(e instanceof BasinError)) throw e;
      return { damage: `${at(modelFile)} does not load (${e.file ? e.message.slice(e.file.length + 2) : e.message})` };
    }
    return optimizerState(json, at, params);
  }
  const model = json('model.json');
  if ('damage' in model) return model;
  const wm = (model.value as { weightsManifest?: { weights?: { shape?: unknown; dtype?: unknown }[] }[] } | null)?.weightsManifest;
  const weights = Array.isArray(wm) && wm.length === 1 && Array.isArray(wm[0]?.weights) ? wm[0].weights : undefined;
  if (!weights || !weights.every((w) => w && w.dtype === 'float32' && Array.isArray(w.shape) && w.shape.every((d) => Number.isInteger(d) && d >= 0))) {
    return { damage: `${at('model.json')} has no readable weightsManifest` };
  }
  const floats = weights.reduce((a, w) => a + (w.shape as number[]).reduce((x, d) => x * d, 1), 0);
  const bin = path.join(ckDir, 'weights.bin');
  if (!fs.existsSync(bin)) return { damage: `${at('weights.bin')} is missing` };
  const binBytes = fs.statSync(bin).size;
  if (binBytes !== floats * 4) return { damage: `${at('weights.bin')} is ${binBytes} bytes; model.json says ${floats * 4}` };
  return optimizerState(json, at, params);
}

/**
 * The model file of a checkpoint directory: the one `.onnx` file a run of an ONNX model writes
 * (beside which a TF.js copy may lie), else 'model.json' (TF.js layers format); undefined when
 * there is neither.
 */
export function checkpointModelFile(ckDir: string): string | undefined {
  let names: string[];
  try {
    names = fs.readdirSync(ckDir);
  } catch {
    return undefined;
  }
  const onnx = names.filter((f) => isOnnxFile(f));
  if (onnx.length === 1) return onnx[0];
  return names.includes('model.json') ? 'model.json' : undefined;
}

/** optimizer.json's float64 parameters and optimizer state, checked; or what is damaged. */
function optimizerState(
  json: (f: string) => { value: unknown } | { damage: string },
  at: (f: string) => string,
  params: number,
): { theta: Float64Array; optimizer: OptimizerState } | { damage: string } {
  const state = json('optimizer.json');
  if ('damage' in state) return state;
  let saved: unknown;
  try {
    saved = decodeState(state.value as Parameters<typeof decodeState>[0]);
  } catch (e) {
    return { damage: `${at('optimizer.json')}: ${(e as Error).message}` };
  }
  const s = saved as { optimizer?: Partial<OptimizerState>; theta?: unknown } | null;
  const theta = s?.theta;
  if (!(theta instanceof Float64Array) || theta.length !== params) {
    return { damage: `${at('optimizer.json')} does not hold the ${params} float64 parameters of the run` };
  }
  const o = s?.optimizer;
  if (!o || !OPTIMIZER_NAMES.includes(o.name as OptimizerName) || !Number.isInteger(o.step) || (o.step as number) < 0 || !o.buffers || typeof o.buffers !== 'object') {
    return { damage: `${at('optimizer.json')} does not hold an optimizer state` };
  }
  for (const [k, b] of Object.entries(o.buffers)) {
    if (!(b instanceof Float64Array) || b.length !== params) return { damage: `${at('optimizer.json')}: the optimizer's '${k}' buffer does not hold ${params} float64 values` };
  }
  return { theta, optimizer: o as OptimizerState };
}

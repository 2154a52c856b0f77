/**
 * Reading a run directory (manifest.json + metrics.jsonl), for the CLI (compare, report) and the
 * extension (restoring runs after a restart). Node only (the webview never imports it). A crash can
 * cut the last metrics line: unreadable lines are skipped and counted, never fatal.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunView } from './protocol';
import type { ProbeRecord, RunCheckpoint, RunManifest, TrainDone, TrainSettings } from './results';

export interface RunDirContents {
  manifest: RunManifest;
  probes: ProbeRecord[];
  /** Metrics lines that could not be read (a line cut by a crash). */
  skipped: number;
  /** How the run ended, undefined while the manifest says it is running. */
  done?: TrainDone;
}

/** Reads a run directory; `problem` says what is wrong (for the caller's own error type). */
export function readRunDir(dir: string): RunDirContents | { problem: string } {
  const mf = path.join(dir, 'manifest.json');
  if (!fs.existsSync(mf)) return { problem: 'no manifest.json: not a Basin run directory' };
  let value: unknown;
  try {
    value = JSON.parse(fs.readFileSync(mf, 'utf8'));
  } catch (e) {
    return { problem: `manifest.json is not valid JSON (${(e as Error).message})` };
  }
  const checked = checkManifest(value);
  if (typeof checked === 'string') return { problem: `manifest.json ${checked}` };
  const manifest = checked;
  const probes: ProbeRecord[] = [];
  let skipped = 0;
  const metrics = path.join(dir, 'metrics.jsonl');
  const text = fs.existsSync(metrics) ? fs.readFileSync(metrics, 'utf8') : '';
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as ProbeRecord;
      if (r && typeof r === 'object' && typeof r.step === 'number') probes.push(r);
      else skipped++;
    } catch {
      skipped++;
    }
  }
  const lastStep = probes.length ? probes[probes.length - 1].step : 0;
  const done: TrainDone | undefined =
    manifest.status === 'running'
      ? undefined
      : { done: manifest.status === 'completed', run: dir, status: manifest.status, reason: manifest.reason, steps: manifest.stoppedAt ?? lastStep };
  return { manifest, probes, skipped, done };
}

/** A run directory as the panel shows it. */
export function runViewOf(dir: string, contents: RunDirContents, id = dir, title = path.basename(dir)): RunView {
  return { id, title, dir, settings: contents.manifest.settings, probes: contents.probes, done: contents.done };
}

const OPTIMIZERS: readonly TrainSettings['optimizer'][] = ['gd', 'sgd', 'momentum', 'nesterov', 'adam', 'sam', 'asam', 'flow'];
const STATUSES: readonly RunManifest['status'][] = ['running', 'completed', 'diverged', 'cancelled', 'failed'];
const CAUSES: readonly NonNullable<RunCheckpoint['by']>[] = ['steps', 'time', 'final', 'stop', 'last-good'];
/** A checkpoint directory as the manifest names it: one plain name under checkpoints/. */
const CHECKPOINT_DIR = /^checkpoints[/\\][A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/**
 * Checks a parsed manifest.json field by field (what a resumed run relies on, not just that it
 * parses). Returns the manifest, or what is wrong as "<field> must be ... (got ...)", for the
 * caller to prefix with the file name.
 */
export function checkManifest(value: unknown): RunManifest | string {
  const got = (v: unknown): string => {
    const s = JSON.stringify(v);
    return s === undefined ? 'nothing' : s.length > 40 ? `${s.slice(0, 40)}...` : s;
  };
  const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
  if (!isObj(value) || value.kind !== 'basin-run') return 'is not a Basin run manifest (no "kind": "basin-run")';
  const m = value;
  const problems: string[] = [];
  const need = (ok: boolean, field: string, what: string, v: unknown): void => {
    if (!ok) problems.push(`${field} must be ${what} (got ${got(v)})`);
  };
  const int = (v: unknown, min: number): boolean => typeof v === 'number' && Number.isInteger(v) && v >= min;
  const opt = (v: unknown, ok: (x: unknown) => boolean): boolean => v === undefined || ok(v);
  const isNum = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v);
  const isStr = (v: unknown): boolean => typeof v === 'string';
  for (const k of ['version', 'created', 'model', 'lossName', 'backend', 'backendDetail']) need(isStr(m[k]), k, 'a string', m[k]);
  need(int(m.params, 1), 'params', 'a whole number >= 1', m.params);
  need(int(m.samples, 1), 'samples', 'a whole number >= 1', m.samples);
  need(STATUSES.includes(m.status as RunManifest['status']), 'status', `one of ${STATUSES.join(', ')}`, m.status);
  need(opt(m.stoppedAt, (v) => int(v, 0)), 'stoppedAt', 'a whole number >= 0', m.stoppedAt);
  need(opt(m.reason, isStr), 'reason', 'a string', m.reason);
  need(opt(m.resumedFrom, (v) => int(v, 0)), 'resumedFrom', 'a whole number >= 0', m.resumedFrom);
  need(opt(m.initialLoss, isNum), 'initialLoss', 'a finite number', m.initialLoss);
  need(opt(m.initHash, isStr), 'initHash', 'a string', m.initHash);
  const s = m.settings;
  if (!isObj(s)) need(false, 'settings', 'an object', s);
  else {
    need(OPTIMIZERS.includes(s.optimizer as TrainSettings['optimizer']), 'settings.optimizer', `one of ${OPTIMIZERS.join(', ')}`, s.optimizer);
    need(isNum(s.lr) && (s.lr as number) > 0, 'settings.lr', 'a positive number', s.lr);
    need(int(s.steps, 0), 'settings.steps', 'a whole number >= 0', s.steps);
    need(isStr(s.schedule), 'settings.schedule', 'a string', s.schedule);
    need(int(s.seed, -Number.MAX_SAFE_INTEGER), 'settings.seed', 'a whole number', s.seed);
    need(int(s.probeEvery, 1), 'settings.probeEvery', 'a whole number >= 1', s.probeEvery);
    for (const k of ['traceEvery', 'noiseEvery', 'layersEvery', 'checkpointEvery']) need(int(s[k], 0), `settings.${k}`, 'a whole number >= 0', s[k]);
    need(opt(s.checkpointSeconds, (v) => isNum(v) && (v as number) >= 0), 'settings.checkpointSeconds', 'a number >= 0', s.checkpointSeconds);
    need(typeof s.divergeFactor === 'number' && s.divergeFactor > 0, 'settings.divergeFactor', 'a positive number', s.divergeFactor);
    need(opt(s.batchSize, (v) => int(v, 1)), 'settings.batchSize', 'a whole number >= 1', s.batchSize);
    need(opt(s.probeSubset, (v) => int(v, 1)), 'settings.probeSubset', 'a whole number >= 1', s.probeSubset);
    for (const k of ['momentum', 'rho', 'igr', 'weightDecay']) need(opt(s[k], isNum), `settings.${k}`, 'a finite number', s[k]);
  }
  const p = m.problem;
  if (!isObj(p)) need(false, 'problem', 'an object', p);
  else {
    for (const k of ['model', 'data', 'loss', 'experiment']) need(opt(p[k], isStr), `problem.${k}`, 'a string', p[k]);
    need(opt(p.labels, (v) => Array.isArray(v) && v.every(isStr)), 'problem.labels', 'a list of strings', p.labels);
    need(opt(p.noHeader, (v) => typeof v === 'boolean'), 'problem.noHeader', 'true or false', p.noHeader);
  }
  if (!Array.isArray(m.checkpoints)) need(false, 'checkpoints', 'a list', m.checkpoints);
  else {
    m.checkpoints.forEach((c: unknown, i) => {
      const f = `checkpoints[${i}]`;
      if (!isObj(c)) return need(false, f, 'an object {step, dir}', c);
      need(int(c.step, 0), `${f}.step`, 'a whole number >= 0', c.step);
      need(typeof c.dir === 'string' && CHECKPOINT_DIR.test(c.dir), `${f}.dir`, 'a directory under checkpoints/', c.dir);
      need(opt(c.by, (v) => CAUSES.includes(v as NonNullable<RunCheckpoint['by']>)), `${f}.by`, `one of ${CAUSES.join(', ')}`, c.by);
      need(opt(c.loss, isNum), `${f}.loss`, 'a finite number', c.loss);
    });
  }
  if (problems.length) return `is damaged: ${problems.slice(0, 3).join('; ')}${problems.length > 3 ? `; and ${problems.length - 3} more` : ''}`;
  return m as unknown as RunManifest;
}

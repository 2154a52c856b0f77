/**
 * `basin train` and `basin compare`: training runs from the command line. Train streams a line per
 * probe (`--json`: one JSON object per line, then {"done": ..., "run": DIR}; otherwise a compact
 * live table) and says where the run was saved.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ProbeRecord, RunManifest, TrainDone, TrainSettings } from '../shared/results';
import { DEFAULT_SETTINGS } from '../engine/train/run';
import { BasinError } from '../engine/errors';
import { choice, intOption, numOption, strOption, UsageError, type Parsed } from './args';
import { fmt } from '../shared/format';
import { JOBS } from '../shared/jobs';
import { readRunDir } from '../shared/runDir';
import { CURVATURE_NAMES, OPTIMIZER_NAMES } from '../shared/validate';

/** Settings: defaults, then the experiment module's `train` export, then the command line. */
export function trainSettings(p: Parsed, seed: number | undefined, fromModule: Partial<TrainSettings> = {}): TrainSettings {
  const nonNeg = (name: string): number | undefined => intOption(p, name, 0);
  const cli: Partial<TrainSettings> = {
    optimizer: choice(p, 'optimizer', OPTIMIZER_NAMES),
    lr: numOption(p, 'lr'),
    steps: nonNeg('steps'),
    batchSize: intOption(p, 'batch-size'),
    momentum: numOption(p, 'momentum'),
    rho: numOption(p, 'rho'),
    igr: numOption(p, 'igr'),
    weightDecay: numOption(p, 'weight-decay'),
    schedule: strOption(p, 'schedule'),
    seed,
    probeEvery: intOption(p, 'probe-every'),
    traceEvery: nonNeg('trace-every'),
    noiseEvery: nonNeg('noise-every'),
    layersEvery: nonNeg('layers-every'),
    checkpointEvery: nonNeg('checkpoint-every'),
    checkpointSeconds: seconds(p, 'checkpoint-seconds'),
    probeSubset: intOption(p, 'probe-subset'),
    curvature: choice(p, 'curvature', CURVATURE_NAMES),
  };
  const defined = (o: Partial<TrainSettings>): Partial<TrainSettings> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  return { ...DEFAULT_SETTINGS, ...defined(fromModule), ...defined(cli) };
}

/** A number of seconds >= 0 (0 turns the cadence off). */
function seconds(p: Parsed, name: string): number | undefined {
  const v = p.options.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v === true || v.trim() === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`--${name} must be a number of seconds >= 0 (got ${String(v)})`);
  return n;
}

/**
 * Refuses to start a new run in a directory that holds one, before anything is loaded, saying how
 * to continue it (the engine refuses too, without naming command-line options).
 */
export function refuseExistingRun(out: string): void {
  if (!fs.existsSync(path.join(out, 'manifest.json'))) return;
  throw new BasinError(`already holds a run; continue it with --resume ${out}, or choose another --out`, out);
}

/** The experiment module's `train` export, checked. */
export function moduleSettings(train: unknown, file: string): Partial<TrainSettings> {
  if (train === undefined) return {};
  if (!train || typeof train !== 'object') throw new BasinError('the `train` export must be an object of training settings', file);
  const t = train as Record<string, unknown>;
  const known = new Set(Object.keys(DEFAULT_SETTINGS).concat(['batchSize', 'momentum', 'rho', 'igr', 'weightDecay', 'probeSubset', 'curvature']));
  for (const k of Object.keys(t)) if (!known.has(k)) throw new BasinError(`unknown training setting '${k}' in the train export (${[...known].join(', ')})`, file);
  return t as Partial<TrainSettings>;
}

export function defaultRunDir(description: string): string {
  const base = description.split(/[ /\\]/)[0].replace(/\.(json|ts|js)$/, '').replace(/[^A-Za-z0-9_-]/g, '_') || 'run';
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return path.join('runs', `${base}-${stamp}`);
}

/** The live table: a header, then one row per probe with the metrics it has. */
export function probePrinter(write: (s: string) => void): (r: ProbeRecord) => void {
  let header = false;
  let curvature = false;
  let unseen = false;
  return (r) => {
    if (r.lambdaMax === undefined) return; // per-step loss lines are for the file, not the terminal
    if (!header) {
      curvature = r.curvatureMax !== undefined;
      const names = ['step', 'loss', 'acc', 'lambda_max', 'threshold', 'trace', 'IGR term', 'SGD term', 'B_simple', ...(curvature ? ['curv. max'] : [])];
      write(`${names.map((h, i) => (i === 0 ? h.padStart(7) : h.padStart(11))).join('')}\n`);
      header = true;
    }
    const cell = (v: number | undefined, d = 4): string => (v === undefined ? '-' : fmt(v, d)).padStart(11);
    write(
      `${String(r.step).padStart(7)}${cell(r.loss, 5)}${cell(r.accuracy, 3)}${cell(r.lambdaMax, 5)}${cell(r.threshold, 4)}${cell(r.trace)}` +
        `${cell(r.igrTerm, 3)}${cell(r.sgdTerm, 3)}${cell(r.noiseScale)}${curvature ? cell(r.curvatureMax, 5) : ''}\n`,
    );
    // Said when it starts and when it ends, not on every row.
    if ((r.lambdaMaxUnseen === true) !== unseen) {
      unseen = r.lambdaMaxUnseen === true;
      write(
        unseen
          ? `        note: lambda_max is in a direction the gradient has no component along (cos^2 ${fmt(r.lambdaMaxOverlap ?? 0, 2)}): GD is not limited by it\n`
          : `        note: the gradient has a component along lambda_max's direction again (cos^2 ${fmt(r.lambdaMaxOverlap ?? 0, 2)})\n`,
      );
    }
  };
}

/** The last lines `basin train` prints: where the run is and, when it stopped early, how to continue it. */
export function describeDone(d: TrainDone): string {
  return JOBS.train.format(d);
}

interface RunSummary {
  dir: string;
  manifest: RunManifest;
  last?: ProbeRecord;
  maxLambda?: number;
}

function readRun(dir: string): RunSummary {
  const read = readRunDir(dir);
  if ('problem' in read) throw new BasinError(read.problem, dir);
  const probes = read.probes.filter((r) => r.lambdaMax !== undefined);
  return { dir, manifest: read.manifest, last: read.probes[read.probes.length - 1], maxLambda: probes.length ? Math.max(...probes.map((r) => r.lambdaMax as number)) : undefined };
}

/** `basin compare RUN...`: settings and final metrics side by side. */
export function compareRuns(dirs: string[], json: boolean): string {
  if (dirs.length === 0) throw new UsageError('compare takes one or more run directories');
  const runs = dirs.map(readRun);
  if (json) {
    return JSON.stringify({ kind: 'compare', runs: runs.map((r) => ({ run: r.dir, settings: r.manifest.settings, status: r.manifest.status, stoppedAt: r.manifest.stoppedAt, final: r.last, maxLambdaMax: r.maxLambda })) });
  }
  const rows: [string, (r: RunSummary) => string][] = [
    ['status', (r) => `${r.manifest.status}${r.manifest.stoppedAt !== undefined ? ` @${r.manifest.stoppedAt}` : ''}`],
    ['optimizer', (r) => r.manifest.settings.optimizer],
    ['lr', (r) => fmt(r.manifest.settings.lr, 3)],
    ['batch size', (r) => String(r.manifest.settings.batchSize ?? 'full')],
    ['steps', (r) => String(r.manifest.settings.steps)],
    ['seed', (r) => String(r.manifest.settings.seed)],
    ['final loss', (r) => (r.last ? fmt(r.last.loss, 5) : '-')],
    ['final accuracy', (r) => (r.last?.accuracy !== undefined ? fmt(r.last.accuracy, 3) : '-')],
    ['final test loss', (r) => (r.last?.testLoss !== undefined ? fmt(r.last.testLoss, 5) : '-')],
    ['final lambda_max', (r) => (r.last?.lambdaMax !== undefined ? fmt(r.last.lambdaMax, 5) : '-')],
    ['max lambda_max', (r) => (r.maxLambda !== undefined ? fmt(r.maxLambda, 5) : '-')],
    ['threshold', (r) => (r.last?.threshold !== undefined ? fmt(r.last.threshold, 4) : '-')],
    ['distance from init', (r) => (r.last?.distInit !== undefined ? fmt(r.last.distInit, 4) : '-')],
  ];
  const names = runs.map((r) => path.basename(r.dir));
  const width = Math.max(14, ...names.map((n) => n.length)) + 2;
  const out = [`${''.padEnd(20)}${names.map((n) => n.padStart(width)).join('')}`];
  for (const [label, f] of rows) out.push(`${label.padEnd(20)}${runs.map((r) => f(r).padStart(width)).join('')}`);
  return out.join('\n');
}

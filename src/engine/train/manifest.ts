/**
 * A run's manifest.json (run.ts's module comment lists the run directory): created for a new run,
 * held in memory while the run goes, and rewritten (atomically) whenever it changes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import type { RunCheckpoint, RunManifest, TrainDone, TrainSettings } from '../../shared/results';
import type { Problem } from '../problem';
import { backendInfo } from '../backend';
import { VERSION } from '../version';
import { writeFileAtomic } from './resume';

export const MANIFEST_FILE = 'manifest.json';

/** SHA-256 of the parameters' float32 bytes: a run restarted from step 0 checks it starts from the same. */
export function paramsHash(theta: Float32Array): string {
  return createHash('sha256').update(Buffer.from(theta.buffer, theta.byteOffset, theta.byteLength)).digest('hex');
}

/** Absolute paths of what the problem was loaded from (for --resume from another directory). */
export function problemSource(problem: Problem): RunManifest['problem'] {
  const abs = (f?: string): string | undefined => (f ? f.split(',').map((x) => path.resolve(x)).join(',') : undefined);
  const src = problem.source ?? {};
  return { model: abs(src.model), data: abs(src.data), labels: src.labels, noHeader: src.noHeader, loss: src.loss, experiment: abs(src.experiment) };
}

/** The manifest of a new run of `problem` with the validated settings `s`. */
export function newManifest(problem: Problem, s: TrainSettings, initHash: string): RunManifest {
  const be = backendInfo();
  return {
    kind: 'basin-run',
    version: VERSION,
    created: new Date().toISOString(),
    model: problem.description,
    params: problem.ir.numParams,
    samples: problem.train.xShape[0],
    lossName: problem.lossName,
    backend: be.name,
    backendDetail: be.detail,
    settings: s,
    problem: problemSource(problem),
    status: 'running',
    checkpoints: [],
    initHash,
  };
}

/** The manifest of a run in progress: `value` is what is on disk after each `write`. */
export class ManifestFile {
  readonly file: string;

  constructor(
    readonly dir: string,
    public value: RunManifest,
  ) {
    this.file = path.join(dir, MANIFEST_FILE);
  }

  write(): void {
    writeFileAtomic(this.file, `${JSON.stringify(this.value, null, 2)}\n`);
  }

  /** Merges `patch` into the manifest and writes it. */
  update(patch: Partial<RunManifest>): void {
    this.value = { ...this.value, ...patch };
    this.write();
  }

  /** Records how the run ended and returns it as the job's result. */
  finish(status: RunManifest['status'], step: number, reason?: string): TrainDone {
    this.update({ status, stoppedAt: step, reason });
    return { done: status === 'completed', run: this.dir, status, reason, steps: step };
  }

  /** "the run can be resumed from checkpoints/step-N" (the newest checkpoint), or from the start. */
  resumableFrom(): string {
    const newest = this.value.checkpoints.reduce<RunCheckpoint | undefined>((a, c) => (!a || c.step >= a.step ? c : a), undefined);
    return newest ? `the run can be resumed from ${newest.dir.split(path.sep).join('/')}` : 'the run can be resumed from the start';
  }
}

/** How an existing run directory's manifest says the run ended, for the refusal to overwrite it. */
export function describeStatus(dir: string): string {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST_FILE), 'utf8')) as Partial<RunManifest>;
    if (m.status === 'running') return 'its manifest says running: still running, or killed';
    if (typeof m.status === 'string') return `${m.status}${typeof m.stoppedAt === 'number' ? ` at step ${m.stoppedAt}` : ''}`;
  } catch {
    /* unreadable: say so below */
  }
  return 'its manifest.json is unreadable';
}

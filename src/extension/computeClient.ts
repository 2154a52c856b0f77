/**
 * The extension host's handle on the compute worker: forked lazily on the first job, long-lived,
 * killed on dispose. Jobs are promises with progress, partial-result and probe callbacks and
 * cancellation (a cancel message, then a kill after a grace period if the worker does not answer).
 * A worker crash fails the jobs in flight with a clear message, and the next job starts a fresh
 * worker. Every message from the worker is checked before use (`checkFromWorker`): a malformed one
 * is logged and ignored; an error about no request in particular (`inReplyTo` -1) is logged.
 */
import { fork, type ChildProcess } from 'node:child_process';
import * as os from 'node:os';
import type { FromWorker, JobKind, OptionsOf, ProblemInput, ResultOf, RunRequest, ToWorker } from '../shared/workerProtocol';
import type { JobResult, ProbeRecord, Progress, TrainDone, TrainSettings } from '../shared/results';
import type { BackendName } from '../shared/fields';
import { isResultOf } from '../shared/jobs';
import { checkFromWorker } from '../shared/validate';

/** A job's callbacks; `onPartial` gets the job's own result type (grids stream partial results). */
export interface JobHooks<K extends JobKind = JobKind> {
  onProgress?: (p: Progress) => void;
  onPartial?: (r: ResultOf<K>) => void;
  onProbes?: (records: ProbeRecord[], settings?: TrainSettings) => void;
  signal?: AbortSignal;
  backend?: BackendName;
}

/** A job in flight: its replies are checked to be its kind's before they reach the caller. */
interface Pending {
  job: JobKind;
  resolve: (r: JobResult | TrainDone) => void;
  reject: (e: Error) => void;
  onProgress?: (p: Progress) => void;
  onPartial?: (r: JobResult) => void;
  onProbes?: (records: ProbeRecord[], settings?: TrainSettings) => void;
}

export class JobError extends Error {
  constructor(
    message: string,
    readonly kind: 'user' | 'cancelled' | 'internal' | 'crash',
  ) {
    super(message);
  }
}

/** How long a cancelled job may take to stop before the worker is killed. */
const CANCEL_GRACE_MS = 5000;

export class ComputeClient {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Called when the worker dies unexpectedly, with the reason. */
  onCrash?: (reason: string) => void;

  constructor(
    private readonly workerPath: string,
    private readonly log: (line: string) => void,
    private readonly cwd?: string,
  ) {}

  get busy(): boolean {
    return this.pending.size > 0;
  }

  private start(): ChildProcess {
    if (this.child && this.child.connected) return this.child;
    const child = fork(this.workerPath, [], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], cwd: this.cwd });
    // Background priority: the compute process uses every core it can (data-parallel threads), and
    // the editor, its extension host and the window must still get the CPU when they need it.
    if (child.pid !== undefined) {
      try {
        os.setPriority(child.pid, 10);
      } catch {
        /* not permitted here: run at normal priority */
      }
    }
    child.stdout?.on('data', (d: Buffer) => this.log(d.toString().trimEnd()));
    child.stderr?.on('data', (d: Buffer) => this.log(d.toString().trimEnd()));
    child.on('message', (m: unknown) => this.onMessage(m));
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      if (this.pending.size === 0) return;
      const why = `the compute process exited (${signal ?? `code ${code}`})`;
      this.log(why);
      for (const p of this.pending.values()) p.reject(new JobError(why, 'crash'));
      this.pending.clear();
      this.onCrash?.(why);
    });
    this.child = child;
    return child;
  }

  private onMessage(raw: unknown): void {
    const problem = checkFromWorker(raw);
    if (problem) {
      this.log(`ignored a malformed message from the compute process: ${problem}`);
      return;
    }
    const m = raw as FromWorker;
    switch (m.type) {
      case 'ready':
        this.log(`compute process ${m.pid} ready`);
        break;
      case 'progress':
        this.pending.get(m.inReplyTo)?.onProgress?.(m.progress);
        break;
      case 'partial':
        this.pending.get(m.inReplyTo)?.onPartial?.(m.result);
        break;
      case 'probes':
        this.pending.get(m.inReplyTo)?.onProbes?.(m.records, m.settings);
        break;
      case 'result': {
        const p = this.pending.get(m.inReplyTo);
        this.pending.delete(m.inReplyTo);
        p?.resolve(m.result);
        break;
      }
      case 'error': {
        if (m.inReplyTo === -1) {
          this.log(`compute process: ${m.message}`);
          break;
        }
        const p = this.pending.get(m.inReplyTo);
        this.pending.delete(m.inReplyTo);
        p?.reject(new JobError(m.message, m.kind));
        break;
      }
    }
  }

  /**
   * Runs a job of kind K in the worker: its options are `OptionsOf<K>`, its result a `ResultOf<K>`
   * (a reply of another kind fails the job as an internal error, and a partial result of another
   * kind is logged and dropped).
   */
  run<K extends JobKind>(job: K, problem: ProblemInput, options: OptionsOf<K>, hooks: JobHooks<K> = {}): Promise<ResultOf<K>> {
    const child = this.start();
    const id = this.nextId++;
    return new Promise<ResultOf<K>>((resolve, reject) => {
      const mismatch = (what: string, r: JobResult | TrainDone): string => `the compute process answered a ${job} job with ${what} of kind ${'kind' in r ? r.kind : 'training summary'}`;
      this.pending.set(id, {
        job,
        resolve: (r) => (isResultOf(job, r) ? resolve(r) : reject(new JobError(mismatch('a result', r), 'internal'))),
        reject,
        onProgress: hooks.onProgress,
        onPartial: (r) => {
          if (isResultOf(job, r)) hooks.onPartial?.(r);
          else this.log(mismatch('a partial result', r));
        },
        onProbes: hooks.onProbes,
      });
      hooks.signal?.addEventListener('abort', () => {
        this.send({ type: 'cancel', id });
        // A job stuck in one long kernel cannot see the cancel: kill the worker after a grace period.
        setTimeout(() => {
          if (this.pending.has(id) && this.child === child) {
            this.log(`job ${id} did not stop within ${CANCEL_GRACE_MS / 1000} s: restarting the compute process`);
            child.kill();
          }
        }, CANCEL_GRACE_MS).unref();
      });
      this.sendRun({ type: 'run', id, job, problem, options, backend: hooks.backend }, child);
    });
  }

  private send(msg: ToWorker, child = this.child): void {
    if (child?.connected) child.send(msg);
  }

  private sendRun<K extends JobKind>(msg: RunRequest<K>, child: ChildProcess): void {
    if (child.connected) child.send(msg);
  }

  /** Stops the worker (a crash-free restart happens on the next job). */
  restart(): void {
    this.child?.kill();
    this.child = undefined;
  }

  dispose(): void {
    const child = this.child;
    this.child = undefined;
    if (!child) return;
    this.send({ type: 'shutdown' }, child);
    setTimeout(() => child.kill(), 2000).unref();
  }
}

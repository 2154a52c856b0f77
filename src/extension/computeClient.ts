/**
 * The extension host's handle on the compute worker: forked lazily on the first job, long-lived,
 * killed on dispose. Jobs are promises with progress callbacks and cancellation; a worker crash
 * fails the jobs in flight with a clear message, and the next job starts a fresh worker.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { FromWorker, JobKind, JobOptions, ProblemInput, ToWorker } from '../shared/workerProtocol';
import type { JobResult, Progress } from '../shared/results';

interface Pending {
  resolve: (r: JobResult) => void;
  reject: (e: Error) => void;
  onProgress?: (p: Progress) => void;
}

export class JobError extends Error {
  constructor(
    message: string,
    readonly kind: 'user' | 'cancelled' | 'internal' | 'crash',
  ) {
    super(message);
  }
}

export class ComputeClient {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(
    private readonly workerPath: string,
    private readonly log: (line: string) => void,
  ) {}

  private start(): ChildProcess {
    if (this.child && this.child.connected) return this.child;
    const child = fork(this.workerPath, [], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    child.stdout?.on('data', (d: Buffer) => this.log(d.toString().trimEnd()));
    child.stderr?.on('data', (d: Buffer) => this.log(d.toString().trimEnd()));
    child.on('message', (m: FromWorker) => this.onMessage(m));
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      const why = `the compute process exited (${signal ?? `code ${code}`})`;
      if (this.pending.size) this.log(why);
      for (const p of this.pending.values()) p.reject(new JobError(why, 'crash'));
      this.pending.clear();
    });
    this.child = child;
    return child;
  }

  private onMessage(m: FromWorker): void {
    switch (m.type) {
      case 'ready':
        this.log(`compute process ${m.pid} ready`);
        break;
      case 'progress':
        this.pending.get(m.inReplyTo)?.onProgress?.(m.progress);
        break;
      case 'result': {
        const p = this.pending.get(m.inReplyTo);
        this.pending.delete(m.inReplyTo);
        p?.resolve(m.result);
        break;
      }
      case 'error': {
        const p = this.pending.get(m.inReplyTo);
        this.pending.delete(m.inReplyTo);
        p?.reject(new JobError(m.message, m.kind));
        break;
      }
    }
  }

  run(job: JobKind, problem: ProblemInput, options: JobOptions, hooks: { onProgress?: (p: Progress) => void; signal?: AbortSignal } = {}): Promise<JobResult> {
    const child = this.start();
    const id = this.nextId++;
    return new Promise<JobResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress: hooks.onProgress });
      hooks.signal?.addEventListener('abort', () => this.send({ type: 'cancel', id }));
      this.send({ type: 'run', id, job, problem, options }, child);
    });
  }

  private send(msg: ToWorker, child = this.child): void {
    child?.send(msg);
  }

  dispose(): void {
    const child = this.child;
    this.child = undefined;
    if (!child) return;
    this.send({ type: 'shutdown' }, child);
    setTimeout(() => child.kill(), 2000).unref();
  }
}

/**
 * Data-parallel evaluation over both cores. The samples are split into shares; this thread keeps
 * the first and worker threads (shard/worker.ts) the others. Each evaluation is sent to the
 * workers, computed here on the local share meanwhile, then combined as the sample-weighted mean
 * (losses are means over samples, so the result equals the single-thread one up to float32
 * rounding). TF.js's wasm backend has no threads in Node, so this is how Basin uses both cores.
 *
 * ONNX Runtime has threads of its own, but on a convnet two intra-op threads made an H·v only
 * 1.25-1.4x faster than one (copies, transposes and many element-wise kernels run on one thread),
 * and two shares of the samples on one thread each were 1.2x faster again (on the MNIST-sized
 * convnet of the benchmark: an H·v 1.9 s against 2.3 s, a gradient 1.35 s against 1.7 s): so heavy
 * models run ONNX Runtime this way too (problem.ts decides), each share with its own sessions.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Evaluator, PlaneLosses } from '../evaluator';
import { LocalEvaluator } from '../evaluator';
import { Objective } from '../objective';
import type { ModelIR, LossName } from '../model/ir';
import type { Split } from '../data';
import type { ShardEngine, ShardInit, ShardReply, ShardRequest } from './messages';
import { shareOrtEvaluator } from '../ort/evaluator';
import { engineInfo, type BackendName, type EngineInfo } from '../backend';
import type { OutputCurvatureName } from '../curvature/output';

/** The shard worker bundle beside this one (dist/shard.js), if built. */
export function shardWorkerPath(): string | undefined {
  const p = path.join(__dirname, 'shard.js');
  return fs.existsSync(p) ? p : undefined;
}

export function sliceSplit(data: Split, start: number, end: number): Split {
  const xPer = data.xShape.slice(1).reduce((a, b) => a * b, 1);
  const yPer = data.yShape.slice(1).reduce((a, b) => a * b, 1);
  return {
    x: data.x.slice(start * xPer, end * xPer),
    xShape: [end - start, ...data.xShape.slice(1)],
    y: data.y.slice(start * yPer, end * yPer),
    yShape: [end - start, ...data.yShape.slice(1)],
  };
}

/** A request without its id (distributes over the union). */
type ShardCall = ShardRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

interface Combined {
  value: number;
  vector: Float64Array;
  vector2: Float64Array;
}

/** How long a shard thread may take to finish its request and release its engine before it is terminated. */
const CLOSE_GRACE_MS = 30_000;

/** Every shard thread that has not exited, for closeShardThreads. */
const live = new Set<ShardClient>();

/**
 * Closes every shard thread still running and resolves when all have exited. A job thread or
 * compute process calls it before it ends: Node terminates the worker threads of a thread or
 * process that exits, and a thread terminated inside an ONNX Runtime call aborts the whole process
 * ("terminate called after throwing an instance of 'Napi::Error'"): a plane worker still creating
 * its sessions when a short job ends is enough. Resolves to the threads' exit codes (0: ended by
 * themselves).
 */
export function closeShardThreads(): Promise<number[]> {
  return Promise.all([...live].map((c) => c.close()));
}

export class ShardClient {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (r: ShardReply) => void; reject: (e: Error) => void }>();
  private closing: Promise<number> | undefined;
  readonly ready: Promise<void>;
  /** Resolves to the thread's exit code when it has exited (1: terminated). */
  readonly exited: Promise<number>;

  constructor(
    private readonly worker: Worker,
    /** The share's first row in the whole data, and its number of rows. */
    readonly start: number,
    readonly samples: number,
  ) {
    live.add(this);
    this.ready = new Promise<void>((resolve, reject) => {
      const onFirst = (m: ShardReply): void => {
        if (m.id !== 0) return;
        worker.off('message', onFirst);
        if (m.ok) resolve();
        else reject(new Error(`shard thread failed to start: ${m.error}`));
      };
      worker.on('message', onFirst);
    });
    worker.on('message', (m: ShardReply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      p.resolve(m);
    });
    worker.on('error', (e) => this.failAll(e));
    this.exited = new Promise((resolve) => {
      worker.on('exit', (code) => {
        live.delete(this);
        this.failAll(new Error(`shard thread exited (code ${code})`));
        resolve(code);
      });
    });
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  request(req: ShardCall, transfer: ArrayBuffer[] = []): Promise<Partial<Combined>> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, {
        resolve: (r) => (r.ok ? resolve({ value: r.value, vector: r.vector, vector2: r.vector2 }) : reject(new Error(r.error))),
        reject,
      });
      this.worker.postMessage({ ...req, id }, transfer);
    });
  }

  /**
   * Ends the thread: it answers the requests before this one (a thread still starting finishes
   * starting), releases its engine and exits. Never Worker.terminate first: terminating a thread
   * inside an ONNX Runtime call aborts the process. Terminated only if it has not exited after
   * CLOSE_GRACE_MS.
   */
  close(): Promise<number> {
    if (!this.closing) {
      this.worker.postMessage({ id: -1, op: 'close' } satisfies ShardRequest);
      const late = setTimeout(() => void this.worker.terminate(), CLOSE_GRACE_MS);
      late.unref();
      this.closing = this.exited.finally(() => clearTimeout(late));
    }
    return this.closing;
  }
}

export interface ParallelOptions {
  /** Total threads including this one (default: the number of CPUs, at most 4). */
  threads?: number;
  chunkSize?: number;
  /** Each share's engine (default TF.js on `backend`). */
  engine?: ShardEngine;
}

export class ParallelEvaluator implements Evaluator {
  readonly threads: number;
  readonly counts = { forward: 0, gradient: 0, hvp: 0 };
  private theta: Float32Array;
  /** GGN and Fisher products, where the shares' engine has them (TF.js). */
  readonly curvature?: (kind: OutputCurvatureName, v: Float64Array) => Promise<Float64Array>;
  /**
   * The mean loss and gradient over the samples `indices` (rows of the whole data), each share
   * computing its rows: on ONNX Runtime shares (training's minibatches on the engine that runs the
   * full batch); TF.js training takes its minibatches on this thread.
   */
  readonly batchGradient?: (indices: Int32Array, theta: Float32Array) => Promise<{ loss: number; grad: Float64Array }>;

  private constructor(
    readonly ir: ModelIR,
    private readonly local: Evaluator,
    private readonly shards: ShardClient[],
    readonly numSamples: number,
    theta: Float32Array,
  ) {
    this.threads = shards.length + 1;
    this.theta = theta;
    if (local.curvature) this.curvature = (kind, v) => this.curvatureProduct(kind, v);
    if (local.batchGradient) this.batchGradient = (indices, th) => this.shardedBatchGradient(indices, th);
  }

  /** The engine of the shares (ONNX Runtime's provider and version, or TF.js's backend). */
  get engine(): EngineInfo {
    return engineInfo(this.local);
  }

  get dim(): number {
    return this.ir.numParams;
  }

  static async create(
    ir: ModelIR,
    theta: Float32Array,
    loss: LossName,
    data: Split,
    backend: BackendName,
    workerPath: string,
    opts: ParallelOptions = {},
  ): Promise<ParallelEvaluator> {
    const n = data.xShape[0];
    const threads = Math.max(2, Math.min(opts.threads ?? Math.min(os.availableParallelism?.() ?? os.cpus().length, 4), n));
    const bounds = Array.from({ length: threads + 1 }, (_, i) => Math.round((i * n) / threads));
    const shards: ShardClient[] = [];
    for (let t = 1; t < threads; t++) {
      const share = sliceSplit(data, bounds[t], bounds[t + 1]);
      const init: ShardInit = { ir, theta, loss, data: share, chunkSize: opts.chunkSize, backend, engine: opts.engine };
      shards.push(new ShardClient(new Worker(workerPath, { workerData: init }), bounds[t], bounds[t + 1] - bounds[t]));
    }
    try {
      await Promise.all(shards.map((s) => s.ready));
      const mine = sliceSplit(data, 0, bounds[1]);
      if (opts.engine === 'onnxruntime') {
        return new ParallelEvaluator(ir, await shareOrtEvaluator(ir, theta, loss, mine, opts.chunkSize), shards, n, theta);
      }
      return new ParallelEvaluator(ir, new LocalEvaluator(new Objective(ir, theta, loss, mine, { chunkSize: opts.chunkSize })), shards, n, theta);
    } catch (e) {
      shards.forEach((s) => void s.close());
      throw e;
    }
  }

  parameters(): Float32Array {
    return Float32Array.from(this.theta);
  }

  /** Sends to every shard, runs locally meanwhile, and combines sample-weighted. */
  private async combine(
    remote: (s: ShardClient) => Promise<Partial<Combined>>,
    local: () => Promise<Partial<Combined>>,
  ): Promise<{ value: number; vector?: Float64Array; vector2?: Float64Array }> {
    const pending = this.shards.map((s) => remote(s));
    const mine = await local();
    const theirs = await Promise.all(pending);
    const w0 = this.local.numSamples / this.numSamples;
    let value = (mine.value ?? 0) * w0;
    const scaled = (v: Float64Array | undefined): Float64Array | undefined => (v ? Float64Array.from(v, (x) => x * w0) : undefined);
    const vector = scaled(mine.vector);
    const vector2 = scaled(mine.vector2);
    theirs.forEach((r, i) => {
      const w = this.shards[i].samples / this.numSamples;
      value += (r.value ?? 0) * w;
      if (vector && r.vector) for (let j = 0; j < vector.length; j++) vector[j] += r.vector[j] * w;
      if (vector2 && r.vector2) for (let j = 0; j < vector2.length; j++) vector2[j] += r.vector2[j] * w;
    });
    return { value, vector, vector2 };
  }

  async planeLosses(origin: Float32Array, dirs: Float64Array[], coeffs: Float64Array, withAccuracy: boolean): Promise<PlaneLosses> {
    this.counts.forward += dirs.length ? coeffs.length / dirs.length : 0;
    const r = await this.combine(
      (s) => s.request({ op: 'plane', origin, dirs, coeffs, withAccuracy }),
      async () => {
        const m = await this.local.planeLosses(origin, dirs, coeffs, withAccuracy);
        return { vector: m.loss, vector2: m.accuracy };
      },
    );
    return { loss: r.vector ?? new Float64Array(0), accuracy: r.vector2 };
  }

  async setParameters(theta: ArrayLike<number>): Promise<void> {
    this.theta = Float32Array.from(theta);
    await Promise.all([...this.shards.map((s) => s.request({ op: 'setParameters', theta: this.theta })), this.local.setParameters(this.theta)]);
  }

  async loss(theta?: ArrayLike<number>): Promise<number> {
    this.counts.forward++;
    const t = theta ? Float32Array.from(theta) : undefined;
    return (await this.combine((s) => s.request({ op: 'loss', theta: t }), async () => ({ value: await this.local.loss(t) }))).value;
  }

  async gradient(theta?: ArrayLike<number>): Promise<{ loss: number; grad: Float64Array }> {
    this.counts.gradient++;
    const t = theta ? Float32Array.from(theta) : undefined;
    const r = await this.combine(
      (s) => s.request({ op: 'gradient', theta: t }),
      async () => {
        const g = await this.local.gradient(t);
        return { value: g.loss, vector: g.grad };
      },
    );
    return { loss: r.value, grad: r.vector ?? new Float64Array(this.dim) };
  }

  secondOrder(): { ok: boolean; reason?: string } {
    return this.local.secondOrder();
  }
  async hvp(v: Float64Array): Promise<Float64Array> {
    this.counts.hvp++;
    const r = await this.combine(
      (s) => s.request({ op: 'hvp', v }),
      async () => ({ vector: await this.local.hvp(v) }),
    );
    return r.vector ?? new Float64Array(this.dim);
  }

  /** A curvature product (GGN, Fisher, empirical Fisher): each is a sample-weighted mean over shards, like H v. */
  private async curvatureProduct(kind: OutputCurvatureName, v: Float64Array): Promise<Float64Array> {
    this.counts.hvp++;
    const local = this.local;
    const r = await this.combine(
      (s) => s.request({ op: 'curvature', kind, v }),
      async () => ({ vector: await local.curvature!(kind, v) }),
    );
    return r.vector ?? new Float64Array(this.dim);
  }

  /** Each share's rows of the minibatch (as its own row numbers), computed there, weighted by their count. */
  private async shardedBatchGradient(indices: Int32Array, theta: Float32Array): Promise<{ loss: number; grad: Float64Array }> {
    this.counts.gradient++;
    const b = indices.length;
    if (b === 0) throw new Error('an empty minibatch');
    const localEnd = this.local.numSamples;
    const parts = [{ start: 0, end: localEnd }, ...this.shards.map((s) => ({ start: s.start, end: s.start + s.samples }))].map(({ start, end }) =>
      Int32Array.from(indices.filter((r) => r >= start && r < end), (r) => r - start),
    );
    for (const r of indices) if (!(r >= 0 && r < this.numSamples)) throw new Error(`sample index ${r} outside 0..${this.numSamples - 1}`);
    const pending = this.shards.map((s, i) => (parts[i + 1].length ? s.request({ op: 'batchGradient', indices: parts[i + 1], theta }) : Promise.resolve(undefined)));
    const mine = parts[0].length ? await this.local.batchGradient!(parts[0], theta) : undefined;
    const theirs = await Promise.all(pending);
    let loss = 0;
    const grad = new Float64Array(this.dim);
    const add = (value: number | undefined, vector: Float64Array | undefined, count: number): void => {
      const w = count / b;
      loss += (value ?? 0) * w;
      if (vector) for (let j = 0; j < grad.length; j++) grad[j] += vector[j] * w;
    };
    if (mine) add(mine.loss, mine.grad, parts[0].length);
    theirs.forEach((r, i) => r && add(r.value, r.vector, parts[i + 1].length));
    return { loss, grad };
  }

  async accuracy(theta?: ArrayLike<number>): Promise<number> {
    const t = theta ? Float32Array.from(theta) : undefined;
    return (await this.combine((s) => s.request({ op: 'accuracy', theta: t }), async () => ({ value: await this.local.accuracy(t) }))).value;
  }

  dispose(): void {
    this.local.dispose();
    this.shards.forEach((s) => void s.close());
  }
}

/**
 * An `Evaluator` on ONNX Runtime (onnxruntime-node, native, multi-threaded CPU kernels): the loss,
 * gradient, Hessian-vector products and predictions of `emit.ts`'s graphs, one session per graph
 * created on first use and kept, run over chunks of samples (memory stays bounded) with the chunk
 * results summed in float64.
 *
 * Sessions run with as many intra-op threads as cores and with spinning off: a spinning thread
 * pool took an H·v from 6 ms to 45 ms whenever another process held a core.
 *
 * `createOrtEvaluator` returns undefined with a reason when ONNX Runtime does not load, the loss
 * is a user function, or the model has an op without an emitter; Basin then uses TF.js.
 */
import * as os from 'node:os';
import { createRequire } from 'node:module';
import type * as Ort from 'onnxruntime-node';
import type { Evaluator, PlaneLosses } from '../evaluator';
import type { LossName, ModelIR } from '../model/ir';
import type { LossSpec } from '../model/losses';
import type { Split } from '../data';
import type { EngineInfo } from '../backend';
import { defaultChunkSize } from '../objective';
import { BasinError } from '../errors';
import { MAX_HVP_CARRY_BYTES, MAX_PLANE_PRE_BYTES } from '../limits';
import { emitGraph, linearFirstDense, unsupportedReason, type EmittedGraph, type GraphKind } from './emit';


type OrtModule = typeof Ort;

let loaded: OrtModule | undefined;
let loadError: string | undefined;

/** onnxruntime-node, or why it did not load (it has native binaries; it is never bundled). */
export function loadOrt(): OrtModule | string {
  if (loaded) return loaded;
  if (loadError) return loadError;
  try {
    loaded = createRequire(__filename)('onnxruntime-node') as OrtModule;
    return loaded;
  } catch (e) {
    loadError = `onnxruntime-node did not load: ${(e as Error).message.split('\n')[0]}`;
    return loadError;
  }
}

/**
 * Execution providers ONNX Runtime may be asked for (BASIN_ORT_PROVIDERS, comma-separated, in order
 * of preference; default cpu). `cuda` and `tensorrt` need the CUDA binaries that onnxruntime-node's
 * installer downloads on Linux x64 (ONNXRUNTIME_NODE_INSTALL=cuda12 when installing) and an NVIDIA
 * driver with CUDA 12 and cuDNN 9; `dml` is Windows (DirectML), `coreml` macOS, `webgpu`
 * experimental.
 */
export const ORT_PROVIDERS = ['cpu', 'cuda', 'tensorrt', 'dml', 'coreml', 'webgpu'] as const;
export type OrtProvider = (typeof ORT_PROVIDERS)[number];

/** The providers BASIN_ORT_PROVIDERS asks for (default ['cpu']); an unknown name is the user's error. */
export function requestedProviders(env: string | undefined = process.env.BASIN_ORT_PROVIDERS): OrtProvider[] {
  if (env === undefined || env.trim() === '') return ['cpu'];
  const names = env.split(',').map((x) => x.trim().toLowerCase()).filter((x) => x !== '');
  for (const n of names) {
    if (!(ORT_PROVIDERS as readonly string[]).includes(n)) {
      throw new BasinError(`BASIN_ORT_PROVIDERS names an unknown ONNX Runtime execution provider '${n}' (known: ${ORT_PROVIDERS.join(', ')}; e.g. BASIN_ORT_PROVIDERS=cuda,cpu)`);
    }
  }
  return names.length ? (names as OrtProvider[]) : ['cpu'];
}

export interface OrtOptions {
  /** Execution providers in order of preference (default: requestedProviders()). */
  providers?: OrtProvider[];
  /** Intra-op threads (default: every core). */
  threads?: number;
  /** Samples per run (default: as the TF.js objective's). */
  chunkSize?: number;
}

interface Chunk {
  x: Ort.Tensor;
  y: Ort.Tensor;
  n: number;
  /** The targets, for accuracy. */
  yData: Float32Array;
}

/**
 * An ONNX Runtime evaluator, or the reason there is none (Basin then uses TF.js). Set
 * BASIN_ENGINE=tfjs in the environment to always use TF.js.
 */
export async function createOrtEvaluator(
  ir: ModelIR,
  theta: Float32Array,
  loss: LossSpec,
  data: Split,
  opts: OrtOptions = {},
): Promise<{ evaluator?: OrtEvaluator; reason?: string }> {
  if (process.env.BASIN_ENGINE === 'tfjs') return { reason: 'BASIN_ENGINE=tfjs' };
  if (typeof loss !== 'string') return { reason: 'the loss is a function (graphs are emitted for the named losses only)' };
  const why = unsupportedReason(ir);
  if (why) return { reason: why };
  const ort = loadOrt();
  if (typeof ort === 'string') return { reason: ort };
  const providers = opts.providers ?? requestedProviders();
  // A GPU provider that cannot start logs an error of its own; Basin reports it (below) instead.
  if (providers.some((p) => p !== 'cpu')) ort.env.logLevel = 'fatal';
  let ev: OrtEvaluator | undefined;
  try {
    ev = new OrtEvaluator(ort, ir, theta, loss, data, { ...opts, providers });
    await ev.session('loss');
    return { evaluator: ev };
  } catch (e) {
    await ev?.released();
    const why = (e as Error).message.split('\n')[0];
    if (providers.some((p) => p !== 'cpu')) {
      // A GPU provider that does not start (no driver, no CUDA binaries): the CPU, saying why.
      const cpu = await createOrtEvaluator(ir, theta, loss, data, { ...opts, providers: ['cpu'] });
      if (cpu.evaluator) cpu.evaluator.providerNote = `${providers.filter((p) => p !== 'cpu').join(', ')} did not start: ${why}`;
      return cpu;
    }
    return { reason: `onnxruntime could not run the model: ${why}` };
  }
}

/**
 * An ONNX Runtime evaluator on one intra-op thread, for one share of the work on a worker thread
 * (shard/parallel.ts, shard/points.ts); throws why there is none.
 */
export async function shareOrtEvaluator(ir: ModelIR, theta: Float32Array, loss: LossName, data: Split, chunkSize?: number): Promise<OrtEvaluator> {
  const made = await createOrtEvaluator(ir, theta, loss, data, { threads: 1, chunkSize });
  if (!made.evaluator) throw new Error(made.reason ?? 'onnxruntime did not start');
  return made.evaluator;
}

export class OrtEvaluator implements Evaluator {
  readonly dim: number;
  readonly numSamples: number;
  readonly threads: number;
  readonly chunkSize: number;
  readonly counts = { forward: 0, gradient: 0, hvp: 0 };
  /** Execution providers the sessions were created with, in order of preference. */
  readonly providers: OrtProvider[];
  /** Why a provider asked for is not among them (set when a GPU provider did not start). */
  providerNote?: string;
  private theta: Float32Array;
  private readonly chunks: Chunk[] = [];
  private readonly sessions = new Map<string, Promise<Ort.InferenceSession>>();
  private readonly graphs = new Map<string, EmittedGraph>();
  private readonly data: Split;
  private disposed = false;
  /** The H·v graph's values shared by every product at `theta` (see hvp), per chunk. */
  private carriedAtTheta: Promise<Record<string, Ort.Tensor>[] | undefined> | undefined;
  /** Why products do not share values (too large, or the split graph did not run): each runs the whole graph. */
  carryOff: string | undefined;
  private releasing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly ort: OrtModule,
    readonly ir: ModelIR,
    theta: Float32Array,
    readonly lossName: LossName,
    data: Split,
    opts: OrtOptions = {},
  ) {
    this.dim = ir.numParams;
    if (theta.length !== this.dim) throw new Error(`expected ${this.dim} parameters, got ${theta.length}`);
    this.theta = Float32Array.from(theta);
    this.numSamples = data.xShape[0];
    this.data = data;
    this.threads = Math.max(1, opts.threads ?? os.availableParallelism?.() ?? os.cpus().length);
    this.chunkSize = Math.max(1, opts.chunkSize ?? defaultChunkSize(ir, this.numSamples));
    const xPer = data.xShape.slice(1).reduce((a, b) => a * b, 1);
    const yPer = data.yShape.slice(1).reduce((a, b) => a * b, 1);
    for (let s = 0; s < this.numSamples; s += this.chunkSize) {
      const n = Math.min(this.chunkSize, this.numSamples - s);
      const yData = data.y.subarray(s * yPer, (s + n) * yPer);
      this.chunks.push({
        x: new ort.Tensor('float32', data.x.subarray(s * xPer, (s + n) * xPer), [n, ...data.xShape.slice(1)]),
        y: new ort.Tensor('float32', yData, [n, ...data.yShape.slice(1)]),
        n,
        yData,
      });
    }
    this.providers = opts.providers ?? ['cpu'];
    this.version = ort.env.versions?.node ?? '';
  }

  private readonly version: string;

  /**
   * What results report as the backend: ONNX Runtime, its version and execution provider (the
   * first asked for; ONNX Runtime runs a node the provider lacks on the CPU), and why a provider
   * asked for did not start.
   */
  get engine(): EngineInfo {
    const provider = this.providers[0];
    const note = this.providerNote ? `; ${this.providerNote}` : '';
    return { name: 'onnxruntime', detail: `onnxruntime ${this.version} (${provider.toUpperCase()}${note})`.replace('  ', ' '), provider };
  }

  /** A graph's key: 'kind:K', and ':N' when its mean is over N samples other than the data's. */
  private key(kind: GraphKind, planeK: number, total: number): string {
    return total === this.numSamples ? `${kind}:${planeK}` : `${kind}:${planeK}:${total}`;
  }

  /** The graph of `kind`, its loss a mean over `total` samples (default: all of the data). */
  private graph(kind: GraphKind, planeK = 1, total = this.numSamples): EmittedGraph {
    const key = this.key(kind, planeK, total);
    let g = this.graphs.get(key);
    if (!g) {
      g = emitGraph(this.ir, this.lossName, total, kind, planeK);
      this.graphs.set(key, g);
    }
    return g;
  }

  /** The session of one graph, created on first use. */
  session(kind: GraphKind, planeK = 1, total = this.numSamples): Promise<Ort.InferenceSession> {
    return this.sessionOf(this.key(kind, planeK, total), () => this.graph(kind, planeK, total).bytes);
  }

  /** The session under `key`, created from `bytes()` on first use. */
  private sessionOf(key: string, bytes: () => Uint8Array): Promise<Ort.InferenceSession> {
    if (this.disposed) return Promise.reject(new Error('the evaluator was disposed'));
    let s = this.sessions.get(key);
    if (!s) {
      s = this.ort.InferenceSession.create(bytes(), {
        intraOpNumThreads: this.threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        executionProviders: this.providers,
        extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
      });
      this.sessions.set(key, s);
    }
    return s;
  }

  private vec(a: ArrayLike<number>): Ort.Tensor {
    if (a.length !== this.dim) throw new Error(`expected ${this.dim} values, got ${a.length}`);
    return new this.ort.Tensor('float32', a instanceof Float32Array ? a : Float32Array.from(a), [this.dim]);
  }

  /** Runs `kind` on every chunk; `each` receives each chunk's outputs. */
  private async runChunks(kind: GraphKind, feeds: Record<string, Ort.Tensor>, each: (out: Ort.InferenceSession.ReturnType, c: Chunk) => void): Promise<void> {
    const session = await this.session(kind);
    const wantsY = this.graph(kind).inputs.includes('y');
    for (const c of this.chunks) {
      const out = await session.run(wantsY ? { ...feeds, x: c.x, y: c.y } : { ...feeds, x: c.x });
      each(out, c);
    }
  }

  parameters(): Float32Array {
    return Float32Array.from(this.theta);
  }

  async setParameters(theta: ArrayLike<number>): Promise<void> {
    if (theta.length !== this.dim) throw new Error(`expected ${this.dim} parameters, got ${theta.length}`);
    this.theta = Float32Array.from(theta);
    this.carriedAtTheta = undefined;
  }

  async loss(theta?: ArrayLike<number>): Promise<number> {
    this.counts.forward++;
    let total = 0;
    await this.runChunks('loss', { theta: this.vec(theta ?? this.theta) }, (o) => (total += (o.loss.data as Float32Array)[0]));
    return total;
  }

  async gradient(theta?: ArrayLike<number>): Promise<{ loss: number; grad: Float64Array }> {
    this.counts.gradient++;
    let loss = 0;
    const grad = new Float64Array(this.dim);
    await this.runChunks('grad', { theta: this.vec(theta ?? this.theta) }, (o) => {
      loss += (o.loss.data as Float32Array)[0];
      const g = o.grad.data as Float32Array;
      for (let i = 0; i < g.length; i++) grad[i] += g[i];
    });
    return { loss, grad };
  }

  /**
   * The loss and gradient of the mean over the samples `indices` (a minibatch, in that order) at
   * `theta` (default: the current parameters), run in chunks of at most `chunkSize` samples.
   * As `Objective.batchGradient`. Every batch size runs the full-batch gradient graph (a mean over
   * numSamples), its sums rescaled to the batch's mean: one session whatever the sizes (a share of a
   * minibatch in ParallelEvaluator has a different size at every step).
   */
  async batchGradient(indices: Int32Array, theta?: ArrayLike<number>): Promise<{ loss: number; grad: Float64Array }> {
    this.counts.gradient++;
    const b = indices.length;
    if (b === 0) throw new Error('an empty minibatch');
    const session = await this.session('grad');
    const feedTheta = this.vec(theta ?? this.theta);
    const { xShape, yShape, x, y } = this.data;
    const xPer = xShape.slice(1).reduce((a, c) => a * c, 1);
    const yPer = yShape.slice(1).reduce((a, c) => a * c, 1);
    let loss = 0;
    const grad = new Float64Array(this.dim);
    for (let s = 0; s < b; s += this.chunkSize) {
      const n = Math.min(this.chunkSize, b - s);
      const xb = new Float32Array(n * xPer);
      const yb = new Float32Array(n * yPer);
      for (let i = 0; i < n; i++) {
        const row = indices[s + i];
        if (!(row >= 0 && row < this.numSamples)) throw new Error(`sample index ${row} outside 0..${this.numSamples - 1}`);
        xb.set(x.subarray(row * xPer, (row + 1) * xPer), i * xPer);
        yb.set(y.subarray(row * yPer, (row + 1) * yPer), i * yPer);
      }
      const out = await session.run({
        theta: feedTheta,
        x: new this.ort.Tensor('float32', xb, [n, ...xShape.slice(1)]),
        y: new this.ort.Tensor('float32', yb, [n, ...yShape.slice(1)]),
      });
      loss += (out.loss.data as Float32Array)[0];
      const g = out.grad.data as Float32Array;
      for (let i = 0; i < g.length; i++) grad[i] += g[i];
    }
    const scale = this.numSamples / b;
    for (let i = 0; i < grad.length; i++) grad[i] *= scale;
    return { loss: loss * scale, grad };
  }

  /** Every IR op has forward-over-reverse rules here (src/engine/ort/ad.ts), max pooling of any geometry included. */
  secondOrder(): { ok: boolean; reason?: string } {
    return { ok: true };
  }
  /**
   * H·v at the current parameters. The H·v graph's part that does not depend on v (the forward
   * pass, the backward pass's cotangents, the masks: emit.ts's split) runs once per point and
   * chunk, and every product runs the rest on those values: about two fifths of a product's time
   * on the benchmark's MLP and convnet, saved on every product after the first, as PyHessian saves
   * it by keeping the gradient's autograd graph. When the kept values would take more than
   * MAX_HVP_CARRY_BYTES, or the split graph fails to run, each product runs the whole graph.
   */
  async hvp(v: Float64Array): Promise<Float64Array> {
    this.counts.hvp++;
    const hv = new Float64Array(this.dim);
    const add = (o: Ort.InferenceSession.ReturnType): void => {
      const h = o.hv.data as Float32Array;
      for (let i = 0; i < h.length; i++) hv[i] += h[i];
    };
    const vT = this.vec(Float32Array.from(v));
    const carried = await this.carried();
    const split = this.graph('hvp').split;
    if (!carried || !split) {
      await this.runChunks('hvp', { theta: this.vec(this.theta), v: vT }, add);
      return hv;
    }
    try {
      const post = await this.sessionOf('hvp:post', () => split.post);
      const theta = split.postInputs.includes('theta') ? this.vec(this.theta) : undefined;
      const parts: Float32Array[] = [];
      for (const [i, c] of this.chunks.entries()) parts.push((await post.run({ ...this.dataFeeds(split.postInputs, c), ...(theta ? { theta } : {}), v: vT, ...carried[i] })).hv.data as Float32Array);
      for (const h of parts) for (let i = 0; i < h.length; i++) hv[i] += h[i];
    } catch (e) {
      // The whole graph still runs: a split that ONNX Runtime refuses costs speed, not the answer.
      if (this.disposed) throw e;
      this.splitFailed(e);
      this.carriedAtTheta = undefined;
      await this.runChunks('hvp', { theta: this.vec(this.theta), v: vT }, add);
    }
    return hv;
  }

  /** The chunk's x and y, where `inputs` names them. */
  private dataFeeds(inputs: string[], c: Chunk): Record<string, Ort.Tensor> {
    return { ...(inputs.includes('x') ? { x: c.x } : {}), ...(inputs.includes('y') ? { y: c.y } : {}) };
  }

  /**
   * Per chunk, the values of the H·v graph's split that products at the current parameters share
   * (computed on first use after setParameters), or undefined when the graph has no split or they
   * would take more than MAX_HVP_CARRY_BYTES (estimated from the first chunk's).
   */
  private carried(): Promise<Record<string, Ort.Tensor>[] | undefined> {
    this.carriedAtTheta ??= this.computeCarried().catch((e: unknown) => {
      // The whole graph still runs: a split that ONNX Runtime refuses costs speed, not the answer.
      this.splitFailed(e);
      return undefined;
    });
    return this.carriedAtTheta;
  }

  /** Every later product runs the whole H·v graph, and `carryOff` says why. */
  private splitFailed(e: unknown): void {
    this.carryOff = `the split H·v graph did not run: ${(e as Error).message.split('\n')[0]}`;
  }

  /** The per-chunk values of `carried`, computed now (see there). */
  private async computeCarried(): Promise<Record<string, Ort.Tensor>[] | undefined> {
    const split = this.graph('hvp').split;
    if (!split || this.carryOff) return undefined;
    const pre = await this.sessionOf('hvp:pre', () => split.pre);
    const theta = this.vec(this.theta);
    const out: Record<string, Ort.Tensor>[] = [];
    for (const c of this.chunks) {
      const o = await pre.run({ ...this.dataFeeds(split.preInputs, c), ...(split.preInputs.includes('theta') ? { theta } : {}) });
      out.push(Object.fromEntries(split.carried.map((name) => [name, o[name] as Ort.Tensor])));
      if (out.length === 1) {
        const bytes = split.carried.reduce((a, name) => a + (o[name].data as ArrayBufferView).byteLength, 0);
        if ((bytes * this.numSamples) / c.n > MAX_HVP_CARRY_BYTES) {
          this.carryOff = `the values shared by products would take ${Math.round((bytes * this.numSamples) / c.n / 2 ** 20)} MiB`;
          return undefined;
        }
      }
    }
    return out;
  }

  async accuracy(theta?: ArrayLike<number>): Promise<number> {
    let correct = 0;
    await this.runChunks('predict', { theta: this.vec(theta ?? this.theta) }, (o, c) => (correct += correctCount(o.pred.data as Float32Array, c.yData, c.n)));
    return correct / this.numSamples;
  }

  async planeLosses(origin: Float32Array, dirs: Float64Array[], coeffs: Float64Array, withAccuracy: boolean): Promise<PlaneLosses> {
    const k = dirs.length;
    const P = k === 0 ? 0 : coeffs.length / k;
    const loss = new Float64Array(P);
    const accuracy = withAccuracy ? new Float64Array(P) : undefined;
    this.counts.forward += P;
    const point = new Float32Array(this.dim);
    const sum = new Float64Array(this.dim);
    const pre = P > 1 ? await this.planePre(origin, dirs) : undefined;
    const planeSession = pre ? await this.session(withAccuracy ? 'planeLossPredict' : 'planeLoss', k + 1) : undefined;
    const c = new Float32Array(k + 1);
    c[0] = 1;
    for (let p = 0; p < P; p++) {
      // origin + sum_j c_j d_j in float64, rounded once: one plain pass per direction (a loop over
      // the directions inside the loop over parameters took a fifth of a point's time on the MLP).
      sum.set(origin);
      for (let j = 0; j < k; j++) {
        const cj = coeffs[p * k + j];
        const d = dirs[j];
        if (cj !== 0) for (let i = 0; i < sum.length; i++) sum[i] += cj * d[i];
      }
      point.set(sum);
      let total = 0;
      let correct = 0;
      const add = (o: Ort.InferenceSession.ReturnType): void => {
        total += (o.loss.data as Float32Array)[0];
        if (withAccuracy) correct += (o.correct.data as Float32Array)[0];
      };
      if (pre && planeSession) {
        for (let j = 0; j < k; j++) c[j + 1] = coeffs[p * k + j];
        const theta = this.vec(point);
        const cT = new this.ort.Tensor('float32', c, [k + 1]);
        for (const [ci, ch] of this.chunks.entries()) add(await planeSession.run({ theta, y: ch.y, zs: pre[ci], c: cT }));
      } else await this.runChunks(withAccuracy ? 'lossPredict' : 'loss', { theta: this.vec(point) }, add);
      loss[p] = total;
      if (accuracy) accuracy[p] = correct / this.numSamples;
    }
    return { loss, accuracy };
  }

  /**
   * Per chunk, the first dense layer's pre-activation at the origin and along each direction,
   * stacked [k + 1, n, ...] (see emit.ts linearFirstDense), or undefined when the model has no
   * such layer or they would take more than MAX_PLANE_PRE_BYTES.
   */
  private async planePre(origin: Float32Array, dirs: Float64Array[]): Promise<Ort.Tensor[] | undefined> {
    const first = linearFirstDense(this.ir);
    if (first === undefined) return undefined;
    const per = this.ir.nodes[first].outShape.reduce((a, b) => a * b, 1);
    if ((dirs.length + 1) * per * this.numSamples * 4 > MAX_PLANE_PRE_BYTES) return undefined;
    const session = await this.session('pre');
    const thetas = [origin, ...dirs.map((d) => Float32Array.from(d))].map((t) => this.vec(t));
    const out: Ort.Tensor[] = [];
    for (const ch of this.chunks) {
      const zs = new Float32Array((dirs.length + 1) * ch.n * per);
      for (const [j, theta] of thetas.entries()) zs.set((await session.run({ theta, x: ch.x })).pre.data as Float32Array, j * ch.n * per);
      out.push(new this.ort.Tensor('float32', zs, [dirs.length + 1, ch.n, ...this.ir.nodes[first].outShape]));
    }
    return out;
  }

  /** Releases every session (native memory and threads). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.carriedAtTheta = undefined;
    this.releasing = Promise.all([...this.sessions.values()].map((s) => s.then((x) => x.release()).catch(() => undefined)));
    this.sessions.clear();
  }

  /** Disposes and resolves when every session is released (dispose() does not wait). */
  async released(): Promise<void> {
    this.dispose();
    await this.releasing;
  }

  /** Sessions currently open. */
  get openSessions(): number {
    return this.sessions.size;
  }

  /** The graphs with a session, as 'kind:K' (K: a plane graph's number of pre-activations). */
  get sessionKinds(): string[] {
    return [...this.sessions.keys()];
  }
}

/**
 * Correct predictions in a chunk, as TF.js's `correctCount`: argmax agreement (the first maximum),
 * or the 0.5 threshold for one output.
 */
export function correctCount(pred: Float32Array, y: Float32Array, n: number): number {
  const k = pred.length / n;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    if (k === 1) {
      if (pred[i] > 0.5 === y[i] > 0.5) correct++;
      continue;
    }
    let a = 0;
    let b = 0;
    for (let j = 1; j < k; j++) {
      if (pred[i * k + j] > pred[i * k + a]) a = j;
      if (y[i * k + j] > y[i * k + b]) b = j;
    }
    if (a === b) correct++;
  }
  return correct;
}

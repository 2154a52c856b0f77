/**
 * Plane evaluations (surfaces, slices, flatness samples) of a light model on ONNX Runtime, split by
 * points over worker threads. A light model's forward pass is a few small matrix products that two
 * intra-op threads barely speed up (the benchmark's MLP: 2.0 ms a point on two threads, 2.65 ms on
 * one), while two threads each evaluating half of the points on one ONNX Runtime thread halve the
 * time. Every other evaluation (loss, gradient, H·v, training's minibatches) runs on the inner
 * evaluator, with its intra-op threads.
 *
 * The workers (one per core, each holding the whole data) start in the background at the first
 * plane evaluation that is worth splitting; until they are up, the inner evaluator computes the
 * planes, so a short slice never waits for them. A worker that fails to start leaves the inner
 * evaluator doing the work.
 */
import { Worker } from 'node:worker_threads';
import type { Evaluator, PlaneLosses } from '../evaluator';
import type { OrtEvaluator } from '../ort/evaluator';
import type { LossName } from '../model/ir';
import type { Split } from '../data';
import type { BackendName, EngineInfo } from '../backend';
import type { ShardInit } from './messages';
import { ShardClient } from './parallel';

/** A plane evaluation of fewer points than this stays on the inner evaluator. */
export const MIN_SPLIT_POINTS = 8;

export class PointParallelEvaluator implements Evaluator {
  private workers: ShardClient[] | undefined;
  private starting: Promise<void> | undefined;
  private disposed = false;

  constructor(
    private readonly inner: OrtEvaluator,
    private readonly spawn: { workerPath: string; count: number; loss: LossName; data: Split; backend: BackendName; chunkSize?: number },
  ) {}

  get ir(): OrtEvaluator['ir'] {
    return this.inner.ir;
  }
  get dim(): number {
    return this.inner.dim;
  }
  get numSamples(): number {
    return this.inner.numSamples;
  }
  get threads(): number {
    return this.inner.threads;
  }
  get counts(): OrtEvaluator['counts'] {
    return this.inner.counts;
  }
  get engine(): EngineInfo {
    return this.inner.engine;
  }
  /** Worker threads evaluating planes now (0 until they have started). */
  get planeWorkers(): number {
    return this.workers?.length ?? 0;
  }

  parameters(): Float32Array {
    return this.inner.parameters();
  }
  setParameters(theta: ArrayLike<number>): Promise<void> {
    return this.inner.setParameters(theta);
  }
  loss(theta?: ArrayLike<number>): Promise<number> {
    return this.inner.loss(theta);
  }
  gradient(theta?: ArrayLike<number>): Promise<{ loss: number; grad: Float64Array }> {
    return this.inner.gradient(theta);
  }
  batchGradient(indices: Int32Array, theta?: ArrayLike<number>): Promise<{ loss: number; grad: Float64Array }> {
    return this.inner.batchGradient(indices, theta);
  }
  hvp(v: Float64Array): Promise<Float64Array> {
    return this.inner.hvp(v);
  }
  secondOrder(): { ok: boolean; reason?: string } {
    return this.inner.secondOrder();
  }
  accuracy(theta?: ArrayLike<number>): Promise<number> {
    return this.inner.accuracy(theta);
  }

  /** Starts the workers in the background (once). */
  private start(): void {
    if (this.starting || this.disposed) return;
    const { workerPath, count, loss, data, backend, chunkSize } = this.spawn;
    const init: ShardInit = { ir: this.inner.ir, theta: this.inner.parameters(), loss, data, chunkSize, backend, engine: 'onnxruntime' };
    const clients = Array.from({ length: count }, () => new ShardClient(new Worker(workerPath, { workerData: init }), 0, data.xShape[0]));
    this.starting = Promise.all(clients.map((c) => c.ready)).then(
      () => {
        if (this.disposed) clients.forEach((c) => void c.close());
        else this.workers = clients;
      },
      () => clients.forEach((c) => void c.close()),
    );
  }

  async planeLosses(origin: Float32Array, dirs: Float64Array[], coeffs: Float64Array, withAccuracy: boolean): Promise<PlaneLosses> {
    const k = dirs.length;
    const P = k === 0 ? 0 : coeffs.length / k;
    if (P >= MIN_SPLIT_POINTS) this.start();
    const workers = this.workers;
    if (!workers || P < MIN_SPLIT_POINTS) return this.inner.planeLosses(origin, dirs, coeffs, withAccuracy);
    this.inner.counts.forward += P;
    const bounds = Array.from({ length: workers.length + 1 }, (_, i) => Math.round((i * P) / workers.length));
    const parts = await Promise.all(
      workers.map((w, i) => w.request({ op: 'plane', origin, dirs, coeffs: coeffs.slice(bounds[i] * k, bounds[i + 1] * k), withAccuracy })),
    );
    const loss = new Float64Array(P);
    const accuracy = withAccuracy ? new Float64Array(P) : undefined;
    parts.forEach((r, i) => {
      if (r.vector) loss.set(r.vector, bounds[i]);
      if (accuracy && r.vector2) accuracy.set(r.vector2, bounds[i]);
    });
    return { loss, accuracy };
  }

  dispose(): void {
    this.disposed = true;
    this.workers?.forEach((w) => void w.close());
    this.workers = undefined;
    this.inner.dispose();
  }
}

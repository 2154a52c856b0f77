/**
 * A shard thread: holds one share of the samples and answers loss, gradient and H·v requests for
 * it with its own engine: TF.js (each worker thread loads the bundle afresh, so it has its own
 * wasm module and engine) or ONNX Runtime with one intra-op thread (its own sessions). Requests are
 * answered one at a time, in order. Started by ParallelEvaluator.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend } from '../backend';
import { Objective } from '../objective';
import { LocalEvaluator, type Evaluator } from '../evaluator';
import { shareOrtEvaluator } from '../ort/evaluator';
import type { ShardInit, ShardReply, ShardRequest } from './messages';

/** The shard's evaluator. */
async function makeEvaluator(init: ShardInit): Promise<Evaluator> {
  if (init.engine === 'onnxruntime') return shareOrtEvaluator(init.ir, init.theta, init.loss, init.data, init.chunkSize);
  await initBackend(init.backend);
  return new LocalEvaluator(new Objective(init.ir, init.theta, init.loss, init.data, { chunkSize: init.chunkSize }));
}

async function answer(ev: Evaluator, req: Exclude<ShardRequest, { op: 'close' }>): Promise<{ reply: ShardReply; transfer: ArrayBuffer[] }> {
  const vector = (value: number | undefined, v: Float64Array): { reply: ShardReply; transfer: ArrayBuffer[] } => ({ reply: { id: req.id, ok: true, value, vector: v }, transfer: [v.buffer as ArrayBuffer] });
  switch (req.op) {
    case 'loss':
      return { reply: { id: req.id, ok: true, value: await ev.loss(req.theta) }, transfer: [] };
    case 'gradient': {
      const g = await ev.gradient(req.theta);
      return vector(g.loss, g.grad);
    }
    case 'batchGradient': {
      // Asked of ONNX Runtime shares only (ParallelEvaluator offers minibatches where its engine has them).
      if (!ev.batchGradient) throw new Error('this engine computes no minibatch gradients');
      const g = await ev.batchGradient(req.indices, req.theta);
      return vector(g.loss, g.grad);
    }
    case 'hvp':
      return vector(undefined, await ev.hvp(req.v));
    case 'curvature': {
      if (!ev.curvature) throw new Error('this engine computes Hessian products only');
      return vector(undefined, await ev.curvature(req.kind, req.v));
    }
    case 'accuracy':
      return { reply: { id: req.id, ok: true, value: await ev.accuracy(req.theta) }, transfer: [] };
    case 'plane': {
      const r = await ev.planeLosses(req.origin, req.dirs, req.coeffs, req.withAccuracy);
      return { reply: { id: req.id, ok: true, vector: r.loss, vector2: r.accuracy }, transfer: [] };
    }
    case 'setParameters':
      await ev.setParameters(req.theta);
      return { reply: { id: req.id, ok: true }, transfer: [] };
  }
}

async function main(): Promise<void> {
  const init = workerData as ShardInit;
  const ev = await makeEvaluator(init);
  const port = parentPort;
  if (!port) throw new Error('shard worker started outside a worker thread');
  let queue: Promise<void> = Promise.resolve();
  port.on('message', (req: ShardRequest) => {
    if (req.op === 'close') {
      // After the requests before it: release the engine (ONNX Runtime sessions) and close the
      // port, so this thread ends by itself once the release has run, never inside a native call
      // (ShardClient.close).
      queue = queue.then(() => {
        ev.dispose();
        port.close();
      });
      return;
    }
    queue = queue.then(async () => {
      let out: { reply: ShardReply; transfer: ArrayBuffer[] };
      try {
        out = await answer(ev, req);
      } catch (e) {
        out = { reply: { id: req.id, ok: false, error: (e as Error).message }, transfer: [] };
      }
      port.postMessage(out.reply, out.transfer);
    });
  });
  port.postMessage({ id: 0, ok: true });
}

main().catch((e: unknown) => {
  parentPort?.postMessage({ id: 0, ok: false, error: (e as Error).message });
});

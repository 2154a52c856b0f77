/**
 * A shard thread: holds one share of the samples and answers loss, gradient and H·v requests for
 * it with its own TF.js instance (each worker thread loads the bundle afresh, so it has its own
 * wasm module and engine). Started by ParallelEvaluator.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend } from '../backend';
import { Objective } from '../objective';
import { OUTPUT_CURVATURES } from '../curvature/output';
import type { ShardInit, ShardReply, ShardRequest } from './messages';

async function main(): Promise<void> {
  const init = workerData as ShardInit;
  await initBackend(init.backend);
  const obj = new Objective(init.ir, init.theta, init.loss, init.data, { chunkSize: init.chunkSize });
  const port = parentPort;
  if (!port) throw new Error('shard worker started outside a worker thread');
  port.on('message', (req: ShardRequest) => {
    let reply: ShardReply;
    const transfer: ArrayBuffer[] = [];
    try {
      switch (req.op) {
        case 'loss':
          reply = { id: req.id, ok: true, value: obj.lossAt(req.theta) };
          break;
        case 'gradient': {
          const g = obj.gradient(req.theta);
          reply = { id: req.id, ok: true, value: g.loss, vector: g.grad };
          transfer.push(g.grad.buffer as ArrayBuffer);
          break;
        }
        case 'hvp': {
          const h = obj.hvpExact(req.v);
          reply = { id: req.id, ok: true, vector: h };
          transfer.push(h.buffer as ArrayBuffer);
          break;
        }
        case 'curvature': {
          const c = obj.curvatureProduct(OUTPUT_CURVATURES[req.kind], req.v);
          reply = { id: req.id, ok: true, vector: c };
          transfer.push(c.buffer as ArrayBuffer);
          break;
        }
        case 'accuracy':
          reply = { id: req.id, ok: true, value: obj.accuracy(req.theta) };
          break;
        case 'plane': {
          const r = obj.planeLosses(req.origin, req.dirs, req.coeffs, req.withAccuracy);
          reply = { id: req.id, ok: true, vector: r.loss, vector2: r.accuracy };
          break;
        }
        case 'setParameters':
          obj.setParameters(req.theta);
          reply = { id: req.id, ok: true };
          break;
      }
    } catch (e) {
      reply = { id: req.id, ok: false, error: (e as Error).message };
    }
    port.postMessage(reply, transfer);
  });
  port.postMessage({ id: 0, ok: true });
}

main().catch((e: unknown) => {
  parentPort?.postMessage({ id: 0, ok: false, error: (e as Error).message });
});

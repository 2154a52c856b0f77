/**
 * The compute worker: a long-lived child process (forked by the extension host) that runs engine
 * jobs one at a time and streams typed messages back (`src/shared/workerProtocol.ts`). Progress is
 * throttled to about one message per 200 ms. Cancel aborts the running job at its next product.
 *
 * Every message is checked before use (`checkToWorker`, src/shared/validate.ts): a malformed one
 * is answered with a 'user' error naming the field (`inReplyTo` -1 when it has no usable id) and
 * the worker carries on. Jobs run through the registry's `runJob` (src/engine/registry.ts).
 */
import { initBackend } from '../engine/backend';
import { loadProblem } from '../engine/problem';
import { runJob } from '../engine/registry';
import type { ProbeRecord, SliceResult, SurfaceResult, TrainSettings } from '../shared/results';
import { BasinError } from '../engine/errors';
import { MAX_PARAMS, MAX_THREADS, refuseOver } from '../engine/limits';
import { CancelledError } from '../engine/linalg/operator';
import { closeShardThreads } from '../engine/shard/parallel';
import type { AnyRunRequest, FromWorker } from '../shared/workerProtocol';
import { checkToWorker } from '../shared/validate';

const send = (msg: FromWorker): void => {
  process.send?.(msg);
};

const running = new Map<number, AbortController>();
let queue: Promise<void> = Promise.resolve();

/** A training job's probe records, batched: sent about every 200 ms, the run's settings with the first batch. */
function probeBatcher(id: number): { onProbe: (r: ProbeRecord) => void; onSettings: (s: TrainSettings) => void; flush: () => void } {
  let pending: ProbeRecord[] = [];
  let settings: TrainSettings | undefined;
  let first = true;
  const flush = (): void => {
    if (pending.length === 0) return;
    send({ type: 'probes', inReplyTo: id, records: pending, settings: first ? settings : undefined });
    first = false;
    pending = [];
  };
  return { onProbe: (r) => pending.push(r), onSettings: (s) => (settings = s), flush };
}

async function execute(req: AnyRunRequest): Promise<void> {
  const controller = running.get(req.id);
  if (!controller || controller.signal.aborted) {
    running.delete(req.id);
    send({ type: 'error', inReplyTo: req.id, message: 'cancelled', kind: 'cancelled' });
    return;
  }
  let lastSent = 0;
  let lastPartial = 0;
  const probes = probeBatcher(req.id);
  const ctx = {
    signal: controller.signal,
    onProbe: probes.onProbe,
    onSettings: probes.onSettings,
    onNote: (line: string) => console.error(`resume: ${line}`),
    onPartial: (result: SliceResult | SurfaceResult) => {
      const now = Date.now();
      if (now - lastPartial < 250) return;
      lastPartial = now;
      send({ type: 'partial', inReplyTo: req.id, result });
    },
    onProgress: (progress: { done: number; total: number; message: string }) => {
      const now = Date.now();
      if (now - lastSent < 200 && progress.done < progress.total) return;
      lastSent = now;
      send({ type: 'progress', inReplyTo: req.id, progress });
    },
  };
  const timer = req.job === 'train' ? setInterval(probes.flush, 200) : undefined;
  // A training run's last records go out before its result or its error.
  const endProbes = (): void => {
    clearInterval(timer);
    probes.flush();
  };
  try {
    // The problem's own limits, which a client could otherwise raise past the engine's.
    if (req.problem.maxParams !== undefined) refuseOver('problem.maxParams', req.problem.maxParams, MAX_PARAMS);
    if (req.problem.threads !== undefined) refuseOver('problem.threads', req.problem.threads, MAX_THREADS);
    await initBackend(req.backend);
    const problem = await loadProblem(req.problem);
    const result = await runJob(req.job, problem, req.options, ctx);
    endProbes();
    send({ type: 'result', inReplyTo: req.id, result });
  } catch (e) {
    endProbes();
    if (e instanceof CancelledError) send({ type: 'error', inReplyTo: req.id, message: 'cancelled', kind: 'cancelled' });
    else if (e instanceof BasinError) send({ type: 'error', inReplyTo: req.id, message: e.message, kind: 'user' });
    else send({ type: 'error', inReplyTo: req.id, message: (e as Error).stack ?? String(e), kind: 'internal' });
  } finally {
    running.delete(req.id);
  }
}

/**
 * Ends the process once its shard threads have ended: process.exit stops worker threads, and one
 * stopped inside an ONNX Runtime call aborts the process.
 */
async function end(): Promise<void> {
  await closeShardThreads();
  process.exit(0);
}

/** Checks a message and acts on it; a malformed one is answered with an error, never thrown. */
function receive(raw: unknown): void {
  const checked = checkToWorker(raw);
  if (!checked.ok) {
    send({ type: 'error', inReplyTo: checked.inReplyTo, message: checked.error, kind: 'user' });
    return;
  }
  const msg = checked.msg;
  switch (msg.type) {
    case 'run':
      if (running.has(msg.id)) {
        send({ type: 'error', inReplyTo: -1, message: `invalid run message: id ${msg.id} is already in use by a queued or running job`, kind: 'user' });
        return;
      }
      running.set(msg.id, new AbortController());
      queue = queue.then(() => execute(msg));
      break;
    case 'cancel':
      running.get(msg.id)?.abort();
      break;
    case 'shutdown':
      for (const c of running.values()) c.abort();
      void queue.then(end);
      break;
  }
}

process.on('message', (raw: unknown) => {
  try {
    receive(raw);
  } catch (e) {
    send({ type: 'error', inReplyTo: -1, message: (e as Error).stack ?? String(e), kind: 'internal' });
  }
});

// The extension host went away: stop the jobs, and end even if one is stuck in a long kernel.
process.on('disconnect', () => {
  for (const c of running.values()) c.abort();
  void Promise.race([queue, new Promise((resolve) => setTimeout(resolve, 5000))]).then(end);
});
send({ type: 'ready', pid: process.pid });

/**
 * The compute worker: a long-lived child process (forked by the extension host) that runs engine
 * jobs one at a time and streams typed messages back (`src/shared/workerProtocol.ts`). Progress is
 * throttled to about one message per 200 ms. Cancel aborts the running job at its next product.
 */
import { initBackend } from '../engine/backend';
import { loadProblem } from '../engine/problem';
import { runDensity, runEigs, runInfo, runTrace } from '../engine/jobs';
import { runSlice, runSurface } from '../engine/surface/slice';
import { runInterpolate, runTrajectory } from '../engine/surface/checkpoints';
import { runFlatness } from '../engine/flatness/job';
import { DEFAULT_SETTINGS, train, validateSettings } from '../engine/train/run';
import type { ProbeRecord, TrainDone, TrainSettings } from '../shared/results';
import { BasinError } from '../engine/errors';
import { CancelledError } from '../engine/linalg/operator';
import type { FromWorker, RunRequest, ToWorker } from '../shared/workerProtocol';
import type { JobResult } from '../shared/results';

const send = (msg: FromWorker): void => {
  process.send?.(msg);
};

const running = new Map<number, AbortController>();
let queue: Promise<void> = Promise.resolve();

async function execute(req: RunRequest): Promise<void> {
  const controller = running.get(req.id);
  if (!controller || controller.signal.aborted) {
    send({ type: 'error', inReplyTo: req.id, message: 'cancelled', kind: 'cancelled' });
    return;
  }
  let lastSent = 0;
  let lastPartial = 0;
  const ctx = {
    signal: controller.signal,
    onPartial: (result: JobResult) => {
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
  try {
    await initBackend(req.backend);
    const problem = await loadProblem(req.problem);
    const o = req.options;
    let result: JobResult | TrainDone;
    switch (req.job) {
      case 'info':
        result = runInfo(problem);
        break;
      case 'eigs':
        result = await runEigs(problem, { ...o, method: o.method === 'power' ? 'power' : 'lanczos' }, ctx);
        break;
      case 'trace':
        result = await runTrace(problem, { ...o, method: o.method === 'hutchinson' ? 'hutchinson' : 'hutchpp' }, ctx);
        break;
      case 'density':
        result = await runDensity(problem, o, ctx);
        break;
      case 'slice':
        result = await runSlice(problem, { ...o, dirs: o.dirs ?? ['random'] }, ctx);
        break;
      case 'surface':
        result = await runSurface(problem, { ...o, dirs: o.dirs ? [o.dirs[0], o.dirs[1] ?? o.dirs[0]] : undefined }, ctx);
        break;
      case 'interpolate':
        if (!o.other) throw new BasinError('interpolation needs a second model');
        result = await runInterpolate(problem, { other: o.other, x: o.x, test: o.test }, ctx);
        break;
      case 'trajectory':
        result = await runTrajectory(problem, { checkpoints: o.checkpoints ?? [], x: o.x, y: o.y, steps: o.steps, test: o.test }, ctx);
        break;
      case 'flatness':
        result = await runFlatness(problem, o, ctx);
        break;
      case 'train': {
        if (!o.runDir) throw new BasinError('a training job needs a run directory');
        const fromModule = (problem.experiment?.train ?? {}) as Partial<TrainSettings>;
        const settings = validateSettings({ ...DEFAULT_SETTINGS, ...fromModule, ...(o.train ?? {}) }, problem.train.xShape[0]);
        let pending: ProbeRecord[] = [];
        let first = true;
        const flush = (): void => {
          if (pending.length === 0) return;
          send({ type: 'probes', inReplyTo: req.id, records: pending, settings: first ? settings : undefined });
          first = false;
          pending = [];
        };
        const timer = setInterval(flush, 200);
        try {
          result = await train(problem, settings, o.runDir, { signal: controller.signal, onProbe: (r) => pending.push(r) });
        } finally {
          clearInterval(timer);
          flush();
        }
        break;
      }
    }
    send({ type: 'result', inReplyTo: req.id, result });
  } catch (e) {
    if (e instanceof CancelledError) send({ type: 'error', inReplyTo: req.id, message: 'cancelled', kind: 'cancelled' });
    else if (e instanceof BasinError) send({ type: 'error', inReplyTo: req.id, message: e.message, kind: 'user' });
    else send({ type: 'error', inReplyTo: req.id, message: (e as Error).stack ?? String(e), kind: 'internal' });
  } finally {
    running.delete(req.id);
  }
}

process.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'run':
      running.set(msg.id, new AbortController());
      queue = queue.then(() => execute(msg));
      break;
    case 'cancel':
      running.get(msg.id)?.abort();
      break;
    case 'shutdown':
      for (const c of running.values()) c.abort();
      void queue.then(() => process.exit(0));
      break;
  }
});

process.on('disconnect', () => process.exit(0));
send({ type: 'ready', pid: process.pid });

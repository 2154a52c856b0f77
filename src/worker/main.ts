/**
 * The compute worker: a long-lived child process (forked by the extension host) that runs engine
 * jobs one at a time and streams typed messages back (`src/shared/workerProtocol.ts`). Progress is
 * throttled to about one message per 200 ms. Cancel aborts the running job at its next product.
 *
 * Every message is checked before use (`checkToWorker`, src/shared/validate.ts): a malformed one
 * is answered with a 'user' error naming the field (`inReplyTo` -1 when it has no usable id) and
 * the worker carries on. Job kinds are looked up in a Map, never on a plain object.
 */
import { initBackend } from '../engine/backend';
import { loadProblem, type Problem } from '../engine/problem';
import { runDensity, runEigs, runInfo, runTrace, type JobContext } from '../engine/jobs';
import { runSlice, runSurface, type GridContext } from '../engine/surface/slice';
import { runInterpolate, runTrajectory } from '../engine/surface/checkpoints';
import { runFlatness } from '../engine/flatness/job';
import { DEFAULT_SETTINGS, train, validateSettings } from '../engine/train/run';
import { openRunForResume } from '../engine/train/resume';
import type { JobResult, ProbeRecord, TrainDone, TrainSettings } from '../shared/results';
import { BasinError } from '../engine/errors';
import { MAX_PARAMS, MAX_THREADS, refuseOver } from '../engine/limits';
import { CancelledError } from '../engine/linalg/operator';
import type { FromWorker, JobKind, JobOptions, RunRequest } from '../shared/workerProtocol';
import { checkToWorker } from '../shared/validate';

const send = (msg: FromWorker): void => {
  process.send?.(msg);
};

const running = new Map<number, AbortController>();
let queue: Promise<void> = Promise.resolve();

type Runner = (problem: Problem, o: JobOptions, ctx: JobContext & GridContext, req: RunRequest) => Promise<JobResult | TrainDone>;

/** A training job: settings over the module's and the defaults, probe records batched every 200 ms. */
const runTrain: Runner = async (problem, o, ctx, req) => {
  if (!o.runDir) throw new BasinError('a training job needs a run directory');
  // A resumed run continues with the settings it was started with (its manifest's).
  const opened = o.resume ? openRunForResume(o.runDir) : undefined;
  for (const note of opened?.notes ?? []) console.error(`resume: ${note}`);
  const fromModule = (problem.experiment?.train ?? {}) as Partial<TrainSettings>;
  const settings = validateSettings({ ...DEFAULT_SETTINGS, ...(opened ? opened.settings : { ...fromModule, ...(o.train ?? {}) }) }, problem.train.xShape[0]);
  // The editor's defaults: enough checkpoints for a trajectory, per-layer sharpness as a curve.
  if (!opened && o.keepCheckpoints && !settings.checkpointEvery && settings.steps > 0) settings.checkpointEvery = Math.max(1, Math.ceil(settings.steps / o.keepCheckpoints));
  if (!opened && o.layerProbes && !settings.layersEvery && settings.steps > 0) {
    settings.layersEvery = settings.probeEvery * Math.max(1, Math.round(settings.steps / o.layerProbes / settings.probeEvery));
  }
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
    return await train(problem, settings, o.runDir, { signal: ctx.signal, onProbe: (r) => pending.push(r) }, { resume: o.resume });
  } finally {
    clearInterval(timer);
    flush();
  }
};

/** Every job kind's runner (a Record, so a new kind must be added here; looked up through the Map). */
const RUNNERS: Record<JobKind, Runner> = {
  info: async (problem) => runInfo(problem),
  eigs: (problem, o, ctx) => runEigs(problem, { ...o, method: o.method === 'power' ? 'power' : 'lanczos' }, ctx),
  trace: (problem, o, ctx) => runTrace(problem, { ...o, method: o.method === 'hutchinson' ? 'hutchinson' : 'hutchpp' }, ctx),
  density: (problem, o, ctx) => runDensity(problem, o, ctx),
  slice: (problem, o, ctx) => runSlice(problem, { ...o, dirs: o.dirs ?? ['random'] }, ctx),
  surface: (problem, o, ctx) => runSurface(problem, { ...o, dirs: o.dirs ? [o.dirs[0], o.dirs[1] ?? o.dirs[0]] : undefined }, ctx),
  interpolate: (problem, o, ctx) => {
    if (!o.other) throw new BasinError('interpolation needs a second model');
    return runInterpolate(problem, { other: o.other, x: o.x, test: o.test }, ctx);
  },
  trajectory: (problem, o, ctx) => runTrajectory(problem, { checkpoints: o.checkpoints ?? [], x: o.x, y: o.y, steps: o.steps, test: o.test }, ctx),
  flatness: (problem, o, ctx) => runFlatness(problem, o, ctx),
  train: runTrain,
};
const JOBS: ReadonlyMap<JobKind, Runner> = new Map(Object.entries(RUNNERS) as [JobKind, Runner][]);

async function execute(req: RunRequest): Promise<void> {
  const controller = running.get(req.id);
  if (!controller || controller.signal.aborted) {
    running.delete(req.id);
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
    const run = JOBS.get(req.job);
    if (!run) throw new BasinError(`unknown job kind '${req.job}'`);
    // The problem's own limits, which a client could otherwise raise past the engine's.
    if (req.problem.maxParams !== undefined) refuseOver('problem.maxParams', req.problem.maxParams, MAX_PARAMS);
    if (req.problem.threads !== undefined) refuseOver('problem.threads', req.problem.threads, MAX_THREADS);
    await initBackend(req.backend);
    const problem = await loadProblem(req.problem);
    const result = await run(problem, req.options, ctx, req);
    send({ type: 'result', inReplyTo: req.id, result });
  } catch (e) {
    if (e instanceof CancelledError) send({ type: 'error', inReplyTo: req.id, message: 'cancelled', kind: 'cancelled' });
    else if (e instanceof BasinError) send({ type: 'error', inReplyTo: req.id, message: e.message, kind: 'user' });
    else send({ type: 'error', inReplyTo: req.id, message: (e as Error).stack ?? String(e), kind: 'internal' });
  } finally {
    running.delete(req.id);
  }
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
      void queue.then(() => process.exit(0));
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

process.on('disconnect', () => process.exit(0));
send({ type: 'ready', pid: process.pid });

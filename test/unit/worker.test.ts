/**
 * The compute worker (dist/worker.js) over its typed IPC protocol: a job streams progress and
 * partial results and ends with a result; cancel stops a grid job with its partial result kept;
 * bad input comes back as a user error; shutdown ends the process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FromWorker, ToWorker } from '../../src/shared/workerProtocol';
import type { SurfaceResult } from '../../src/shared/results';

const WORKER = path.join(__dirname, '../../dist/worker.js');
const EXAMPLE = path.join(__dirname, '../../examples/spiral');
const problem = { model: path.join(EXAMPLE, 'model.json'), data: path.join(EXAMPLE, 'data.json') };

function start(): { child: ChildProcess; messages: FromWorker[]; next: (pred: (m: FromWorker) => boolean) => Promise<FromWorker> } {
  const child = fork(WORKER, [], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  const messages: FromWorker[] = [];
  const waiters: { pred: (m: FromWorker) => boolean; resolve: (m: FromWorker) => void }[] = [];
  child.on('message', (m: FromWorker) => {
    messages.push(m);
    for (const w of [...waiters]) {
      if (w.pred(m)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  const next = (pred: (m: FromWorker) => boolean): Promise<FromWorker> =>
    new Promise((resolve, reject) => {
      const found = messages.find(pred);
      if (found) return resolve(found);
      const timer = setTimeout(() => reject(new Error(`timed out; got ${messages.map((m) => m.type).join(',')}`)), 60_000);
      waiters.push({ pred, resolve: (m) => (clearTimeout(timer), resolve(m)) });
    });
  return { child, messages, next };
}

const send = (child: ChildProcess, m: ToWorker): void => {
  child.send(m);
};

test('a surface job streams progress and partial results, then the result', async () => {
  const w = start();
  try {
    await w.next((m) => m.type === 'ready');
    send(w.child, { type: 'run', id: 1, job: 'surface', problem, options: { x: '-1:1:41', seed: 2 } });
    const res = (await w.next((m) => m.type === 'result' || m.type === 'error')) as FromWorker;
    assert.equal(res.type, 'result');
    const r = (res as { result: SurfaceResult }).result;
    assert.equal(r.kind, 'surface');
    assert.equal(r.complete, true);
    assert.equal(r.loss.length, 41);
    assert.ok(w.messages.some((m) => m.type === 'progress' && m.inReplyTo === 1));
    // Bad input is a user error with the file named, and the worker lives on.
    send(w.child, { type: 'run', id: 2, job: 'info', problem: { model: '/nope/model.json', data: problem.data }, options: {} });
    const err = await w.next((m) => m.type === 'error' && m.inReplyTo === 2);
    assert.equal(err.type === 'error' && err.kind, 'user');
    assert.match(err.type === 'error' ? err.message : '', /\/nope\/model.json: file not found/);
  } finally {
    send(w.child, { type: 'shutdown' });
  }
  const code = await new Promise<number | null>((resolve) => w.child.on('exit', (c) => resolve(c)));
  assert.equal(code, 0);
});

test('cancel stops a grid job and keeps what it computed', async () => {
  const w = start();
  try {
    await w.next((m) => m.type === 'ready');
    send(w.child, { type: 'run', id: 7, job: 'surface', problem, options: { x: '-1:1:121', seed: 1 } });
    await w.next((m) => m.type === 'progress' && m.inReplyTo === 7 && m.progress.done > 0);
    send(w.child, { type: 'cancel', id: 7 });
    const res = await w.next((m) => (m.type === 'result' || m.type === 'error') && m.inReplyTo === 7);
    assert.equal(res.type, 'result');
    const r = (res as { result: SurfaceResult }).result;
    assert.equal(r.complete, false);
    assert.ok(r.evaluations > 0 && r.evaluations < 121 * 121);
    assert.equal(r.loss.flat().filter((v) => v !== null).length, r.evaluations);
  } finally {
    w.child.kill();
  }
});

test('a training job streams batched probe records with the settings, then the run summary', async () => {
  const w = start();
  const runDir = path.join(os.tmpdir(), `basin-worker-run-${process.pid}`);
  fs.rmSync(runDir, { recursive: true, force: true });
  try {
    await w.next((m) => m.type === 'ready');
    const experiment = path.join(__dirname, '../../examples/edge-of-stability.basin.ts');
    send(w.child, { type: 'run', id: 3, job: 'train', problem: { experiment }, options: { train: { steps: 60, probeEvery: 20 }, runDir } });
    const res = await w.next((m) => (m.type === 'result' || m.type === 'error') && m.inReplyTo === 3);
    assert.equal(res.type, 'result', JSON.stringify(res));
    const batches = w.messages.filter((m) => m.type === 'probes' && m.inReplyTo === 3);
    assert.ok(batches.length >= 1);
    const first = batches[0];
    assert.equal(first.type === 'probes' && first.settings?.lr, 0.2, 'the module settings arrive with the first batch');
    const records = batches.flatMap((m) => (m.type === 'probes' ? m.records : []));
    assert.deepEqual(records.filter((r) => r.lambdaMax !== undefined).map((r) => r.step), [0, 20, 40, 60]);
    const final = records[records.length - 1];
    assert.ok(final.layerSharpness && Object.keys(final.layerSharpness).length === 3, 'the final probe has per-layer sharpness');
    assert.equal((res as { result: { status: string } }).result.status, 'completed');
  } finally {
    w.child.kill();
  }
});

test('malformed messages get a user error naming the problem; the worker stays alive and answers a valid job', async () => {
  const w = start();
  const errors = (): FromWorker[] => w.messages.filter((m) => m.type === 'error');
  /** Sends a raw message (any JSON) and returns the worker's next error. */
  const answer = async (raw: unknown): Promise<{ inReplyTo: number; kind: string; message: string }> => {
    const before = errors().length;
    w.child.send(raw as ToWorker);
    await w.next(() => errors().length > before);
    const e = errors()[before];
    assert.equal(e.type, 'error');
    return e.type === 'error' ? { inReplyTo: e.inReplyTo, kind: e.kind, message: e.message } : { inReplyTo: NaN, kind: '', message: '' };
  };
  const eigs = async (id: number): Promise<number[]> => {
    send(w.child, { type: 'run', id, job: 'eigs', problem, options: { k: 2, seed: 5 } });
    const res = await w.next((m) => (m.type === 'result' || m.type === 'error') && m.inReplyTo === id);
    assert.equal(res.type, 'result', JSON.stringify(res));
    return (res as { result: { eigenvalues: number[] } }).result.eigenvalues;
  };
  const kinds = 'info, eigs, trace, density, slice, surface, interpolate, trajectory, flatness, train';
  try {
    await w.next((m) => m.type === 'ready');
    const first = await eigs(1);
    assert.equal(first.length, 2);
    assert.ok(first[0] > first[1] && first[1] > 0, `top eigenvalues ${first}`);

    assert.deepEqual(await answer(null), { inReplyTo: -1, kind: 'user', message: 'invalid message: expected an object with a type (got null)' });
    assert.deepEqual(await answer({}), { inReplyTo: -1, kind: 'user', message: 'invalid message: type must be one of run, cancel, shutdown (got nothing)' });
    assert.deepEqual(await answer({ type: undefined, id: undefined }), { inReplyTo: -1, kind: 'user', message: 'invalid message: type must be one of run, cancel, shutdown (got nothing)' });
    assert.deepEqual(await answer('shutdown'), { inReplyTo: -1, kind: 'user', message: 'invalid message: expected an object with a type (got the string "shutdown")' });
    assert.deepEqual(await answer({ type: 'run' }), { inReplyTo: -1, kind: 'user', message: 'invalid run message: id must be a whole number >= 0 (got nothing)' });
    assert.deepEqual(await answer({ type: 'cancel', id: 'x' }), { inReplyTo: -1, kind: 'user', message: 'invalid cancel message: id must be a whole number >= 0 (got the string "x")' });
    assert.deepEqual(await answer({ type: 'run', id: 2, job: 'hessian', problem, options: {} }), {
      inReplyTo: 2,
      kind: 'user',
      message: `invalid run message: job must be one of ${kinds} (got the string "hessian")`,
    });
    assert.deepEqual(await answer({ type: 'run', id: 3, job: '__proto__', problem, options: {} }), {
      inReplyTo: 3,
      kind: 'user',
      message: `invalid run message: job must be one of ${kinds} (got the string "__proto__")`,
    });
    assert.deepEqual(await answer({ type: 'run', id: 4, job: 'eigs', problem, options: { k: '2' } }), {
      inReplyTo: 4,
      kind: 'user',
      message: 'invalid run message: options.k must be a whole number >= 1 (got the string "2")',
    });
    assert.deepEqual(await answer({ type: 'run', id: 5, job: 'eigs', problem, options: { rho: 0.05 } }), {
      inReplyTo: 5,
      kind: 'user',
      message: 'invalid run message: options.rho does not apply to eigs jobs (eigs takes seed, hvp, layer, curvature, k, which, method, maxIter, tol, stopOn)',
    });
    assert.deepEqual(await answer({ type: 'run', id: 6, job: 'eigs', problem: { ...problem, threads: 'all' }, options: {} }), {
      inReplyTo: 6,
      kind: 'user',
      message: 'invalid run message: problem.threads must be a whole number >= 1 (got the string "all")',
    });
    // Well formed, but too big: the engine refuses it before any product, and the worker answers at once.
    const t0 = Date.now();
    assert.deepEqual(await answer({ type: 'run', id: 7, job: 'density', problem, options: { gridPoints: 1e9 } }), {
      inReplyTo: 7,
      kind: 'user',
      message: 'the number of density grid points is 1,000,000,000, over the limit of 1,000,000',
    });
    assert.ok(Date.now() - t0 < 30_000);
    assert.deepEqual(await answer({ type: 'run', id: 8, job: 'info', problem: { ...problem, maxParams: 1e12 }, options: {} }), {
      inReplyTo: 8,
      kind: 'user',
      message: 'problem.maxParams is 1,000,000,000,000, over the limit of 50,000,000',
    });
    // An id in use (a grid job that is running) is not attributable to either request.
    send(w.child, { type: 'run', id: 9, job: 'surface', problem, options: { x: '-1:1:121' } });
    await w.next((m) => m.type === 'progress' && m.inReplyTo === 9 && m.progress.done > 0);
    assert.deepEqual(await answer({ type: 'run', id: 9, job: 'info', problem, options: {} }), {
      inReplyTo: -1,
      kind: 'user',
      message: 'invalid run message: id 9 is already in use by a queued or running job',
    });
    send(w.child, { type: 'cancel', id: 9 });
    const grid = await w.next((m) => (m.type === 'result' || m.type === 'error') && m.inReplyTo === 9);
    assert.equal(grid.type === 'result' && (grid.result as SurfaceResult).kind, 'surface', 'the running job was not disturbed');
    assert.equal(w.messages.filter((m) => m.type === 'result' && m.inReplyTo === 9).length, 1);

    // Still alive, and the same job gives the same answer.
    assert.deepEqual(await eigs(10), first);
    assert.equal(w.child.exitCode, null);
    assert.equal(errors().filter((m) => m.type === 'error' && m.kind !== 'user').length, 0);
  } finally {
    send(w.child, { type: 'shutdown' });
  }
  const code = await new Promise<number | null>((resolve) => w.child.on('exit', (c) => resolve(c)));
  assert.equal(code, 0);
});

/**
 * The message validators (src/shared/validate.ts): every malformed message gets one specific
 * sentence naming the field; well-formed messages (what the extension and the CLI send) pass; a
 * `__proto__` or `constructor` from the other side never resolves to anything inherited.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkFromWebview,
  checkFromWorker,
  checkJobOptions,
  checkToWebview,
  checkToWorker,
  JOB_KINDS,
  JOB_OPTIONS,
  PANEL_COMMANDS,
} from '../../src/shared/validate';
import type { JobOptions } from '../../src/shared/workerProtocol';

const problem = { model: 'm/model.json', data: 'm/data.json' };
const run = (job: unknown, options: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ type: 'run', id: 4, job, problem, options, ...extra });
const KINDS = 'info, eigs, trace, density, slice, surface, interpolate, trajectory, flatness, train';
const EIGS = 'seed, hvp, layer, curvature, k, which, method, maxIter, tol, stopOn';

/** The error checkToWorker gives, with the id it answers to. */
function refused(msg: unknown): [number, string] {
  const r = checkToWorker(msg);
  assert.equal(r.ok, false, `expected ${JSON.stringify(msg)} to be refused`);
  return r.ok ? [NaN, ''] : [r.inReplyTo, r.error];
}

test('messages that are not objects, or have no usable id, are answered with inReplyTo -1', () => {
  assert.deepEqual(refused(null), [-1, 'invalid message: expected an object with a type (got null)']);
  assert.deepEqual(refused(undefined), [-1, 'invalid message: expected an object with a type (got nothing)']);
  assert.deepEqual(refused(42), [-1, 'invalid message: expected an object with a type (got 42)']);
  assert.deepEqual(refused('run'), [-1, 'invalid message: expected an object with a type (got the string "run")']);
  assert.deepEqual(refused([1, 2]), [-1, 'invalid message: expected an object with a type (got an array of 2)']);
  assert.deepEqual(refused({}), [-1, 'invalid message: type must be one of run, cancel, shutdown (got nothing)']);
  assert.deepEqual(refused({ type: 'explode', id: 3 }), [-1, 'invalid message: type must be one of run, cancel, shutdown (got the string "explode")']);
  assert.deepEqual(refused({ type: 'run' }), [-1, 'invalid run message: id must be a whole number >= 0 (got nothing)']);
  assert.deepEqual(refused({ type: 'run', id: '7', job: 'info', problem, options: {} }), [-1, 'invalid run message: id must be a whole number >= 0 (got the string "7")']);
  assert.deepEqual(refused({ type: 'run', id: -1, job: 'info', problem, options: {} }), [-1, 'invalid run message: id must be a whole number >= 0 (got -1)']);
  assert.deepEqual(refused({ type: 'run', id: 1.5, job: 'info', problem, options: {} }), [-1, 'invalid run message: id must be a whole number >= 0 (got 1.5)']);
  assert.deepEqual(refused({ type: 'cancel' }), [-1, 'invalid cancel message: id must be a whole number >= 0 (got nothing)']);
  assert.deepEqual(refused({ type: 'cancel', id: 2, now: true }), [-1, "invalid cancel message: unknown field 'now'"]);
  assert.deepEqual(refused({ type: 'shutdown', force: 1, why: 'x' }), [-1, "invalid shutdown message: unknown fields 'force' and 'why'"]);
});

test('job kinds are looked up in a Map: unknown kinds, __proto__ and constructor are refused', () => {
  for (const job of ['nope', '__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
    assert.deepEqual(refused(run(job, {})), [4, `invalid run message: job must be one of ${KINDS} (got the string "${job}")`]);
  }
  assert.deepEqual(refused(run(3, {})), [4, `invalid run message: job must be one of ${KINDS} (got 3)`]);
  assert.deepEqual(refused(run(undefined, {})), [4, `invalid run message: job must be one of ${KINDS} (got nothing)`]);
  assert.deepEqual(JOB_KINDS, KINDS.split(', '));
});

test('problem fields: an object of known fields with the right types, naming a model or an experiment', () => {
  assert.deepEqual(refused({ type: 'run', id: 4, job: 'info', options: {} }), [4, 'invalid run message: problem must be an object (got nothing)']);
  assert.deepEqual(refused({ ...run('info', {}), problem: null }), [4, 'invalid run message: problem must be an object (got null)']);
  assert.deepEqual(refused({ ...run('info', {}), problem: {} }), [4, 'invalid run message: problem names neither a model (problem.model) nor an experiment module (problem.experiment)']);
  assert.deepEqual(refused({ ...run('info', {}), problem: { ...problem, model: 3 } }), [4, 'invalid run message: problem.model must be a non-empty string (got 3)']);
  assert.deepEqual(refused({ ...run('info', {}), problem: { ...problem, threads: 0 } }), [4, 'invalid run message: problem.threads must be a whole number >= 1 (got 0)']);
  assert.deepEqual(refused({ ...run('info', {}), problem: { ...problem, labels: ['a', ''] } }), [4, 'invalid run message: problem.labels[1] must be a non-empty string (got the string "")']);
  assert.deepEqual(refused({ ...run('info', {}), problem: { ...problem, noHeader: 'yes' } }), [4, 'invalid run message: problem.noHeader must be true or false (got the string "yes")']);
  assert.deepEqual(refused({ ...run('info', {}), problem: { ...problem, modle: 'x' } }), [
    4,
    "invalid run message: problem has unknown field 'modle' (known: model, data, labels, noHeader, xKey, yKey, loss, experiment, chunkSize, maxParams, threads)",
  ]);
});

test('options: each must apply to the job, with the right type and range; required ones present', () => {
  const cases: [string, unknown, string][] = [
    ['eigs', null, 'options must be an object (got null)'],
    ['eigs', [1], 'options must be an object (got an array of 1)'],
    ['eigs', { k: '3' }, 'options.k must be a whole number >= 1 (got the string "3")'],
    ['eigs', { k: 0 }, 'options.k must be a whole number >= 1 (got 0)'],
    ['eigs', { k: 2.5 }, 'options.k must be a whole number >= 1 (got 2.5)'],
    ['eigs', { tol: null }, 'options.tol must be a finite number > 0 (got null)'],
    ['eigs', { tol: -1e-3 }, 'options.tol must be a finite number > 0 (got -0.001)'],
    ['eigs', { method: 'hutchpp' }, 'options.method must be one of lanczos, power (got the string "hutchpp")'],
    ['eigs', { which: 'middle' }, 'options.which must be one of top, bottom (got the string "middle")'],
    ['eigs', { rho: 0.05 }, `options.rho does not apply to eigs jobs (eigs takes ${EIGS})`],
    ['eigs', { rho: 0.05, draws: 3 }, `options.rho and options.draws do not apply to eigs jobs (eigs takes ${EIGS})`],
    ['eigs', JSON.parse('{"__proto__": {"k": 3}}'), `options.__proto__ does not apply to eigs jobs (eigs takes ${EIGS})`],
    ['eigs', { constructor: 1 }, `options.constructor does not apply to eigs jobs (eigs takes ${EIGS})`],
    ['info', { k: 2 }, 'options.k does not apply to info jobs (info takes seed)'],
    ['trace', { method: 'power' }, 'options.method must be one of hutchpp, hutchinson (got the string "power")'],
    ['trace', { matvecs: Number.NaN }, 'options.matvecs must be a whole number >= 1 (got NaN)'],
    ['density', { gridPoints: 1 }, 'options.gridPoints must be a whole number >= 2 (got 1)'],
    ['density', { steps: 90, x: '-1:1:3' }, 'options.x does not apply to density jobs (density takes seed, hvp, layer, curvature, steps, runs, gridPoints)'],
    ['slice', { dirs: [] }, 'options.dirs must be a list of one or more non-empty strings (got an array of 0)'],
    ['slice', { dirs: 'eigen' }, 'options.dirs must be a list of one or more non-empty strings (got the string "eigen")'],
    ['slice', { test: 1 }, 'options.test must be true or false (got 1)'],
    ['slice', { norm: 'l2' }, 'options.norm must be one of filter, layer, none (got the string "l2")'],
    ['surface', { dirs: ['a', 'b', 'c'] }, 'options.dirs must be a list of 1 to 2 non-empty strings (got an array of 3)'],
    ['interpolate', {}, 'options.other is missing: interpolate jobs need it (a non-empty string)'],
    ['trajectory', { checkpoints: ['a', 'b', 'c'], steps: 1 }, 'options.steps must be a whole number >= 2 (got 1)'],
    ['trajectory', { x: '-1:1:3' }, 'options.checkpoints is missing: trajectory jobs need it (a list of one or more non-empty strings)'],
    ['flatness', { measures: ['sam', 'nope'] }, 'options.measures[1] must be one of sam, asam, epsilon, pacbayes, radius (got the string "nope")'],
    ['flatness', { rho: -1 }, 'options.rho must be a finite number >= 0 (got -1)'],
    ['flatness', { rho: Infinity }, 'options.rho must be a finite number >= 0 (got Infinity)'],
    ['flatness', { epsilon: 0 }, 'options.epsilon must be a finite number > 0 (got 0)'],
    ['flatness', { criterion: 'vibes' }, 'options.criterion must be one of error, loss (got the string "vibes")'],
    ['train', { train: { steps: 5 } }, 'options.runDir is missing: train jobs need it (a non-empty string)'],
    ['train', { runDir: 'r', train: [] }, 'options.train must be an object of training settings (got an array of 0)'],
    ['train', { runDir: 'r', train: { lr: 'fast' } }, 'options.train.lr must be a finite number > 0 (got the string "fast")'],
    ['train', { runDir: 'r', train: { optimizer: 'lion' } }, 'options.train.optimizer must be one of gd, sgd, momentum, nesterov, adam, sam, asam, flow (got the string "lion")'],
    [
      'train',
      { runDir: 'r', train: { lr: 0.1, learningRate: 1 } },
      "options.train has unknown training setting 'learningRate' (known: optimizer, lr, steps, batchSize, momentum, rho, igr, weightDecay, schedule, seed, probeEvery, traceEvery, noiseEvery, layersEvery, checkpointEvery, checkpointSeconds, probeSubset, curvature, divergeFactor)",
    ],
  ];
  for (const [job, options, message] of cases) {
    assert.deepEqual(refused(run(job, options)), [4, `invalid run message: ${message}`], `${job} ${JSON.stringify(options)}`);
    assert.equal(checkJobOptions(job as 'eigs', options), message);
  }
  assert.deepEqual(refused(run('eigs', {}, { backend: 'gpu' })), [4, 'invalid run message: backend must be one of onnxruntime, tensorflow, wasm, cpu (got the string "gpu")']);
  assert.deepEqual(refused(run('eigs', {}, { priority: 'high' })), [4, "invalid run message: unknown field 'priority'"]);
  assert.equal(({} as Record<string, unknown>).k, undefined, 'nothing leaked onto Object.prototype');
});

test('well-formed requests pass unchanged: what the extension and the worker tests send', () => {
  const good: [string, JobOptions][] = [
    ['info', { seed: 0 }],
    ['eigs', { seed: 0, k: 5, which: 'bottom', method: 'lanczos', maxIter: 80, tol: 1e-6, stopOn: 'residual', hvp: 'exact', layer: 'dense_1' }],
    ['trace', { method: 'hutchinson', matvecs: 30 }],
    ['density', { seed: 0, steps: 60, runs: 2, gridPoints: 1e9 }],
    ['slice', { seed: 0, dirs: ['eigen', 'random', 'gradient'], x: '-1:1:41', norm: 'filter', ignore: 'biasbn', test: true }],
    ['surface', { seed: 0, x: '-1:1:41' }],
    ['interpolate', { other: 'b/model.json', x: '-0.5:1.5:9' }],
    ['trajectory', { checkpoints: ['a', 'b', 'c'], steps: 5 }],
    ['flatness', { measures: ['sam', 'radius'], rho: 0, asamRho: 0.5, eta: 0.01, epsilon: 1e-3, target: 0.1, draws: 3, criterion: 'loss', delta: 0.2, directions: 4 }],
    ['train', { seed: 0, train: { steps: 60, probeEvery: 20, optimizer: 'sgd', batchSize: 16, momentum: 0 }, runDir: '/tmp/run' }],
  ];
  for (const [job, options] of good) {
    const msg = { type: 'run', id: 9, job, problem: { ...problem, threads: 2 }, options, backend: 'wasm' };
    assert.deepEqual(checkToWorker(msg), { ok: true, msg }, job);
  }
  assert.deepEqual(checkToWorker({ type: 'run', id: 0, job: 'info', problem: { experiment: 'e.basin.ts' } }), {
    ok: true,
    msg: { type: 'run', id: 0, job: 'info', problem: { experiment: 'e.basin.ts' }, options: {}, backend: undefined },
  });
  assert.deepEqual(checkToWorker({ type: 'cancel', id: 3 }), { ok: true, msg: { type: 'cancel', id: 3 } });
  assert.deepEqual(checkToWorker({ type: 'shutdown' }), { ok: true, msg: { type: 'shutdown' } });
});

test('the option table: every JobOptions field belongs to some job; the table is the one the engine reads', () => {
  const used = new Set([...JOB_OPTIONS.values()].flatMap((m) => [...m.keys()]));
  const all: (keyof JobOptions)[] = ['seed', 'hvp', 'layer', 'curvature', 'k', 'which', 'method', 'maxIter', 'tol', 'stopOn', 'matvecs', 'steps', 'runs', 'gridPoints', 'dirs', 'x', 'y', 'norm', 'ignore', 'test', 'other', 'checkpoints', 'measures', 'rho', 'asamRho', 'eta', 'epsilon', 'target', 'draws', 'criterion', 'delta', 'directions', 'train', 'runDir', 'resume', 'keepCheckpoints', 'layerProbes'];
  assert.deepEqual([...used].sort(), [...all].sort());
  const keys = (job: string): string[] => [...(JOB_OPTIONS.get(job as 'info')?.keys() ?? [])];
  assert.deepEqual(keys('eigs'), EIGS.split(', '));
  assert.deepEqual(keys('trace'), ['seed', 'hvp', 'layer', 'curvature', 'method', 'matvecs']);
  assert.deepEqual(keys('surface'), ['seed', 'dirs', 'x', 'y', 'norm', 'ignore', 'test', 'tol']);
  assert.deepEqual(keys('train'), ['seed', 'train', 'runDir', 'resume', 'keepCheckpoints', 'layerProbes']);
  assert.equal(JOB_OPTIONS.get('__proto__' as 'info'), undefined);
});

test('messages from the worker: malformed ones are named, -1 errors are well formed', () => {
  assert.equal(checkFromWorker(null), 'expected an object with a type (got null)');
  assert.equal(checkFromWorker({ type: 'hello' }), 'type must be one of ready, progress, partial, result, probes, error (got the string "hello")');
  assert.equal(checkFromWorker({ type: 'ready' }), 'ready: pid must be a number (got nothing)');
  assert.equal(checkFromWorker({ type: 'result', inReplyTo: '1', result: { kind: 'eigs' } }), 'result: inReplyTo must be a request id (got the string "1")');
  assert.equal(checkFromWorker({ type: 'partial', inReplyTo: -1, result: { kind: 'surface' } }), 'partial: inReplyTo must be a request id (got -1)');
  assert.equal(checkFromWorker({ type: 'result', inReplyTo: 1, result: 5 }), 'result: result must be a job result or a training summary (got 5)');
  assert.equal(checkFromWorker({ type: 'partial', inReplyTo: 1, result: { done: true } }), 'partial: result must be a job result (got an object)');
  assert.equal(checkFromWorker({ type: 'progress', inReplyTo: 1, progress: { done: 1 } }), 'progress: progress must be {done, total, message} (got an object)');
  assert.equal(checkFromWorker({ type: 'probes', inReplyTo: 2, records: [{ step: 'a' }] }), 'probes: records[0] must be a probe record with a numeric step (got an object)');
  assert.equal(checkFromWorker({ type: 'error', inReplyTo: 1, message: 'x', kind: 'oops' }), 'error: kind must be one of user, cancelled, internal (got the string "oops")');
  assert.equal(checkFromWorker({ type: 'error', inReplyTo: 1, kind: 'user' }), 'error: message must be a string (got nothing)');
  for (const ok of [
    { type: 'ready', pid: 12 },
    { type: 'error', inReplyTo: -1, message: 'invalid message', kind: 'user' },
    { type: 'progress', inReplyTo: 3, progress: { done: 1, total: 4, message: 'Lanczos: 1/4' } },
    { type: 'result', inReplyTo: 3, result: { done: true, run: 'r', status: 'completed' } },
    { type: 'probes', inReplyTo: 3, records: [{ step: 0, loss: 1 }], settings: { lr: 0.1 } },
  ]) {
    assert.equal(checkFromWorker(ok), undefined, JSON.stringify(ok));
  }
});

test('messages from the panel: only known commands; exported images are strings', () => {
  assert.equal(checkFromWebview(null), 'expected an object with a type (got null)');
  assert.equal(checkFromWebview({ type: 'eval' }), 'type must be one of ready, exported, command (got the string "eval")');
  for (const command of ['constructor', '__proto__', 'workbench.action.terminal.new', 7]) {
    assert.equal(checkFromWebview({ type: 'command', command }), `command: command must be one of stop, probe, export, compare, resume, trajectory (got ${typeof command === 'string' ? `the string "${command}"` : command})`);
  }
  assert.equal(checkFromWebview({ type: 'exported', requestId: 'a', images: {} }), 'exported: requestId must be a whole number >= 0 (got the string "a")');
  assert.equal(checkFromWebview({ type: 'exported', requestId: 1, images: { loss: 3 } }), "exported: images['loss'] must be a string (got 3)");
  assert.deepEqual([...PANEL_COMMANDS], ['stop', 'probe', 'export', 'compare', 'resume', 'trajectory']);
  for (const ok of [{ type: 'ready' }, { type: 'command', command: 'compare' }, { type: 'exported', requestId: 2, images: { loss: 'data:image/png;base64,AA' } }]) {
    assert.equal(checkFromWebview(ok), undefined);
  }
});

test('messages to the panel: snapshots, runs, probes and results are checked before use', () => {
  const runView = { id: 'run-1', title: 'a', probes: [{ step: 0, loss: 1 }] };
  const view = { id: 'eigs-1', title: 'b', result: { kind: 'eigs' } };
  assert.equal(checkToWebview(undefined), 'expected an object with a type (got nothing)');
  assert.equal(checkToWebview({ type: 'init' }), 'init: snapshot must be an object (got nothing)');
  assert.equal(checkToWebview({ type: 'init', snapshot: { runs: {}, results: [] } }), 'init: snapshot.runs must be an array (got an object)');
  assert.equal(checkToWebview({ type: 'init', snapshot: { runs: [runView], results: [], focus: 3 } }), 'init: snapshot.focus must be a string (got 3)');
  assert.equal(
    checkToWebview({ type: 'init', snapshot: { runs: [{ ...runView, probes: [{ step: 1 }, 'x'] }], results: [] } }),
    'init: snapshot.runs[0].probes[1] must be a probe record with a numeric step (got the string "x")',
  );
  assert.equal(checkToWebview({ type: 'init', snapshot: { runs: [], results: [{ ...view, result: null }] } }), 'init: snapshot.results[0].result must be a job result (got null)');
  assert.equal(checkToWebview({ type: 'runStarted', run: { ...runView, id: 1 } }), 'runStarted: run.id must be a string (got 1)');
  assert.equal(checkToWebview({ type: 'probes', runId: 3, records: [] }), 'probes: runId must be a string (got 3)');
  assert.equal(checkToWebview({ type: 'runEnded', runId: 'r' }), 'runEnded: done must be an object (got nothing)');
  assert.equal(checkToWebview({ type: 'result', view: { ...view, partial: 'yes' } }), 'result: view.partial must be true or false (got the string "yes")');
  assert.equal(checkToWebview({ type: 'status', text: 'x', busy: 'no' }), 'status: busy must be true or false (got the string "no")');
  assert.equal(checkToWebview({ type: 'exportPng', requestId: -1 }), 'exportPng: requestId must be a whole number >= 0 (got -1)');
  assert.equal(checkToWebview({ type: 'toString' }), 'type must be one of init, runStarted, probes, runEnded, result, status, exportPng, reveal, compare (got the string "toString")');
  for (const ok of [
    { type: 'init', snapshot: { runs: [runView], results: [view], focus: 'run-1', status: 'Ready' } },
    { type: 'runStarted', run: { ...runView, dir: '/r', settings: { lr: 0.1 } } },
    { type: 'probes', runId: 'run-1', records: [{ step: 3 }] },
    { type: 'runEnded', runId: 'run-1', done: { done: true } },
    { type: 'result', view: { ...view, partial: true } },
    { type: 'status', text: 'Working', busy: true },
    { type: 'exportPng', requestId: 1 },
  ]) {
    assert.equal(checkToWebview(ok), undefined, JSON.stringify(ok));
  }
});

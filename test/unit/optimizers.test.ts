/**
 * Optimizers (src/engine/train/optimizers.ts) and learning-rate schedules (schedules.ts) against
 * hand-computed values. Most tests use the 2-D quadratic
 *
 *   f(x) = 0.5 x^T A x - b^T x,  A = [[2, 1], [1, 3]],  b = [2, 1],  grad f = A x - b,
 *
 * from x0 = [2, 1] (f = 2.5, g0 = [3, 4], |g0| = 5) with lr = 0.1; the minimizer is [1, 0]. The
 * expected iterates are written out below (worked by hand for the first steps, with the arithmetic
 * in the comments, and carried to 20 digits in exact/40-digit arithmetic for the later ones), not
 * re-derived by the code under test. ASAM uses a tiny hand-built IR (a dense layer with a [2, 1]
 * kernel and a [1] bias) and the separable quadratic f = 0.5 x^T diag(2, 1, 4) x - [1, 0, 1] x.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeOptimizer, OPTIMIZER_NAMES, type GradFn, type OptimizerName, type OptimizerOptions } from '../../src/engine/train/optimizers';
import { formatSchedule, lrAt, parseSchedule, type Schedule } from '../../src/engine/train/schedules';
import { BasinError } from '../../src/engine/errors';
import type { ModelIR } from '../../src/engine/model/ir';

const TOL = 1e-12;

function close(actual: ArrayLike<number>, expected: readonly number[], tol = TOL, what = ''): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `${what}[${i}]: got ${actual[i]}, expected ${expected[i]}`);
  }
}

/** Gradient function of 0.5 x^T A x - b^T x (A symmetric), counting its calls. */
function quadratic(a: number[][], b: number[]): { gradFn: GradFn; calls: () => number } {
  let calls = 0;
  const gradFn: GradFn = async (x) => {
    calls++;
    const n = b.length;
    const grad = new Float64Array(n);
    let loss = 0;
    for (let i = 0; i < n; i++) {
      let ax = 0;
      for (let j = 0; j < n; j++) ax += a[i][j] * x[j];
      grad[i] = ax - b[i];
      loss += 0.5 * x[i] * ax - b[i] * x[i];
    }
    return { loss, grad };
  };
  return { gradFn, calls: () => calls };
}

const A2 = [
  [2, 1],
  [1, 3],
];
const B2 = [2, 1];
const X0 = [2, 1];
const LR = 0.1;

/** Runs `expected.length` steps from X0 on the 2-D quadratic, checking each iterate. */
async function runSteps(name: OptimizerName, opts: OptimizerOptions, expected: number[][]): Promise<void> {
  const opt = makeOptimizer(name, opts);
  const { gradFn } = quadratic(A2, B2);
  const theta = Float64Array.from(X0);
  for (let k = 0; k < expected.length; k++) {
    await opt.step(theta, gradFn, LR);
    close(theta, expected[k], TOL, `${name} step ${k + 1}`);
  }
}

test('gd and sgd: theta -= lr g', async () => {
  // g0 = [3, 4]: x1 = [2 - 0.3, 1 - 0.4] = [1.7, 0.6]; g1 = [3.4 + 0.6 - 2, 1.7 + 1.8 - 1] = [2, 2.5]:
  // x2 = [1.5, 0.35]; g2 = [3 + 0.35 - 2, 1.5 + 1.05 - 1] = [1.35, 1.55]: x3 = [1.365, 0.195].
  const expected = [
    [1.7, 0.6],
    [1.5, 0.35],
    [1.365, 0.195],
  ];
  await runSteps('gd', {}, expected);
  await runSteps('sgd', {}, expected);
});

test('gd step info: loss and gradient norm at the start point, one evaluation', async () => {
  const opt = makeOptimizer('gd');
  const q = quadratic(A2, B2);
  const info = await opt.step(Float64Array.from(X0), q.gradFn, LR);
  assert.equal(info.loss, 2.5);
  assert.equal(info.gradNorm, 5);
  assert.equal(info.evaluations, 1);
  assert.equal(q.calls(), 1);
});

test('heavy-ball momentum (PyTorch): v = beta v + g, theta -= lr v', async () => {
  // beta = 0.9. v1 = g0 = [3, 4], x1 = [1.7, 0.6]; g1 = [2, 2.5], v2 = [2.7 + 2, 3.6 + 2.5] = [4.7, 6.1],
  // x2 = [1.7 - 0.47, 0.6 - 0.61] = [1.23, -0.01]; g2 = [2.46 - 0.01 - 2, 1.23 - 0.03 - 1] = [0.45, 0.2],
  // v3 = [4.23 + 0.45, 5.49 + 0.2] = [4.68, 5.69], x3 = [1.23 - 0.468, -0.01 - 0.569] = [0.762, -0.579].
  await runSteps('momentum', { momentum: 0.9 }, [
    [1.7, 0.6],
    [1.23, -0.01],
    [0.762, -0.579],
  ]);
  // The default beta is 0.9.
  await runSteps('momentum', {}, [[1.7, 0.6], [1.23, -0.01]]);
});

test('Nesterov (PyTorch): v = beta v + g, theta -= lr (g + beta v)', async () => {
  // v1 = [3, 4], step g + 0.9 v = [5.7, 7.6]: x1 = [1.43, 0.24]; g1 = [2.86 + 0.24 - 2, 1.43 + 0.72 - 1] = [1.1, 1.15],
  // v2 = [2.7 + 1.1, 3.6 + 1.15] = [3.8, 4.75], step [1.1 + 3.42, 1.15 + 4.275] = [4.52, 5.425]: x2 = [0.978, -0.3025].
  await runSteps('nesterov', { momentum: 0.9 }, [
    [1.43, 0.24],
    [0.978, -0.3025],
    [0.736035, -0.510645],
  ]);
});

test('coupled L2 weight decay for gd and momentum: g + wd theta', async () => {
  // wd = 0.1: g0 + 0.1 x0 = [3.2, 4.1], x1 = [1.68, 0.59]; g1 = [3.36 + 0.59 - 2, 1.68 + 1.77 - 1] = [1.95, 2.45],
  // + 0.1 x1 = [2.118, 2.509]; gd: x2 = [1.68 - 0.2118, 0.59 - 0.2509] = [1.4682, 0.3391].
  await runSteps('gd', { weightDecay: 0.1 }, [
    [1.68, 0.59],
    [1.4682, 0.3391],
  ]);
  // momentum: v2 = [2.88 + 2.118, 3.69 + 2.509] = [4.998, 6.199], x2 = [1.1802, -0.0299].
  await runSteps('momentum', { weightDecay: 0.1 }, [
    [1.68, 0.59],
    [1.1802, -0.0299],
  ]);
});

test('adam: first step is lr g / (|g| + eps) by bias correction; later steps hand-computed', async () => {
  const eps = 1e-8;
  // t = 1: m = 0.1 g, v = 0.001 g^2, mhat = g, vhat = g^2: update lr g / (|g| + eps).
  const first = [2 - (0.1 * 3) / (3 + eps), 1 - (0.1 * 4) / (4 + eps)];
  close(first, [1.9000000003333333322, 0.90000000024999999937], 1e-15, 'hand check');
  await runSteps('adam', {}, [first, [1.8004122283517709605, 0.80041222818139909361], [1.701586272427223238, 0.70158627216634576448]]);
  await runSteps('adam', { beta1: 0.9, beta2: 0.999, adamEps: eps }, [first]);
  // A different eps and beta1 on the first step: still lr g / (|g| + eps).
  await runSteps('adam', { beta1: 0.5, adamEps: 0.5 }, [[2 - (0.1 * 3) / 3.5, 1 - (0.1 * 4) / 4.5]]);
  assert.equal(makeOptimizer('adam').threshold(LR), undefined);
});

test('adam: decoupled (AdamW) weight decay theta -= lr wd theta, moments see the plain gradient', async () => {
  // wd = 0.1: x1 = x0 - 0.01 x0 - 0.1 g0 / (|g0| + eps) = [2 - 0.02 - 0.09999999966666667, 1 - 0.01 - 0.09999999975].
  await runSteps('adam', { weightDecay: 0.1 }, [
    [1.8800000003333333322, 0.89000000024999999938],
    [1.7617136624769090059, 0.78158733823784521838],
  ]);
});

test('sam: e = rho g/|g|, theta -= lr grad(theta + e); loss reported at theta; two evaluations', async () => {
  // rho = 0.05: e = 0.05 [3, 4] / 5 = [0.03, 0.04], grad(x0 + e) = g0 + A e = [3 + 0.1, 4 + 0.15], x1 = [1.69, 0.585].
  // Step 2: g1 = [1.965, 2.445], |g1| = sqrt(9.83925).
  const n1 = Math.sqrt(9.83925);
  const e1 = [(0.05 * 1.965) / n1, (0.05 * 2.445) / n1];
  const x2 = [1.69 - 0.1 * (1.965 + 2 * e1[0] + e1[1]), 0.585 - 0.1 * (2.445 + e1[0] + 3 * e1[1])];
  close(x2, [1.4833382338657446295, 0.32567577646296863596], 1e-15, 'hand check');
  await runSteps('sam', {}, [[1.69, 0.585], x2]);
  await runSteps('sam', { rho: 0.05 }, [[1.69, 0.585]]);

  const opt = makeOptimizer('sam');
  const q = quadratic(A2, B2);
  const info = await opt.step(Float64Array.from(X0), q.gradFn, LR);
  assert.deepEqual(info, { loss: 2.5, gradNorm: 5, evaluations: 2 });
  assert.equal(q.calls(), 2);

  // Weight decay: e from the plain gradient, wd times the unperturbed theta: [3.1 + 0.2, 4.15 + 0.1], x1 = [1.67, 0.575].
  await runSteps('sam', { weightDecay: 0.1 }, [[1.67, 0.575]]);

  // At a stationary point e = 0 and nothing moves (no 0/0).
  const theta = Float64Array.from([1, 0]);
  await makeOptimizer('sam').step(theta, q.gradFn, LR);
  assert.deepEqual(Array.from(theta), [1, 0]);
});

/** A dense layer 2 -> 1: kernel [2, 1] at offset 0, bias [1] at offset 2. */
function tinyIR(): ModelIR {
  return {
    name: 'tiny',
    nodes: [
      { name: 'input', op: { kind: 'input', shape: [2] }, inputs: [], outShape: [2] },
      { name: 'dense', op: { kind: 'dense', units: 1, activation: 'linear', kernel: 0, bias: 1 }, inputs: [0], outShape: [1] },
    ],
    input: 0,
    output: 1,
    params: [
      { name: 'dense/kernel', layer: 'dense', role: 'kernel', shape: [2, 1], size: 2, offset: 0 },
      { name: 'dense/bias', layer: 'dense', role: 'bias', shape: [1], size: 1, offset: 2 },
    ],
    constants: [],
    numParams: 3,
  };
}

const A3 = [
  [2, 0, 0],
  [0, 1, 0],
  [0, 0, 4],
];
const B3 = [1, 0, 1];
const W0 = [1, -0.5, 0.5];

test('asam: e = rho T^2 g / |T g| with T = |w| + eta on the kernel and 1 on the bias', async () => {
  // g0 = [2 - 1, -0.5, 2 - 1] = [1, -0.5, 1]; T = [1.01, 0.51, 1]; T g = [1.01, -0.255, 1],
  // |T g| = sqrt(1.0201 + 0.065025 + 1) = sqrt(2.085125); e = 0.5 [1.0201, 0.13005, 1] / |T g| (T^2 g = [1.0201, -0.13005, 1]).
  const n0 = Math.sqrt(2.085125);
  const e0 = [(0.5 * 1.0201) / n0, (-0.5 * 0.13005) / n0, 0.5 / n0];
  close(e0, [0.35322115330554235111, -0.045031282214866956927, 0.3462613011523795227], 1e-15, 'hand check e0');
  // x1 = w0 - 0.1 (g0 + diag(2, 1, 4) e0).
  const x1 = [1 - 0.1 * (1 + 2 * e0[0]), -0.5 - 0.1 * (-0.5 + e0[1]), 0.5 - 0.1 * (1 + 4 * e0[2])];
  const expected = [x1, [0.68492752921112542433, -0.39312400327445818788, 0.241329926041307755]];
  close(x1, [0.82935576933889152978, -0.44549687177851330431, 0.26149547953904819092], 1e-15, 'hand check x1');

  const opt = makeOptimizer('asam', { ir: tinyIR() });
  const q = quadratic(A3, B3);
  const theta = Float64Array.from(W0);
  const info = await opt.step(theta, q.gradFn, LR);
  close(theta, expected[0], TOL, 'asam step 1');
  assert.equal(info.loss, 0.125);
  assert.equal(info.gradNorm, 1.5);
  assert.equal(info.evaluations, 2);
  assert.equal(q.calls(), 2);
  await opt.step(theta, q.gradFn, LR);
  close(theta, expected[1], TOL, 'asam step 2');

  // Explicit defaults give the same; scaling the bias too (T = |b| + eta = 0.51) changes the step.
  const same = makeOptimizer('asam', { ir: tinyIR(), rho: 0.5, eta: 0.01, scaledRoles: ['kernel'] });
  const t2 = Float64Array.from(W0);
  await same.step(t2, q.gradFn, LR);
  close(t2, expected[0], TOL, 'asam explicit defaults');
  const all = makeOptimizer('asam', { ir: tinyIR(), scaledRoles: ['kernel', 'bias'] });
  const t3 = Float64Array.from(W0);
  await all.step(t3, q.gradFn, LR);
  const n3 = Math.sqrt(1.0201 + 0.065025 + 0.2601); // T g = [1.01, -0.255, 0.51]
  close(t3, [
    1 - 0.1 * (1 + (2 * 0.5 * 1.0201) / n3),
    -0.5 - 0.1 * (-0.5 - (0.5 * 0.13005) / n3),
    0.5 - 0.1 * (1 + (4 * 0.5 * 0.2601) / n3),
  ]);

  assert.throws(() => makeOptimizer('asam'), BasinError);
  await assert.rejects(makeOptimizer('asam', { ir: tinyIR() }).step(Float64Array.from([1, 2]), quadratic(A2, B2).gradFn, LR), BasinError);
});

test('flow: one RK4 step on the 2-D quadratic, four evaluations', async () => {
  // x1 - x* = (I - hA + (hA)^2/2 - (hA)^3/6 + (hA)^4/24)(x0 - x*), x* = [1, 0], x0 - x* = [1, 1], h = 0.1.
  const opt = makeOptimizer('flow');
  const q = quadratic(A2, B2);
  const theta = Float64Array.from(X0);
  const info = await opt.step(theta, q.gradFn, LR);
  assert.deepEqual(info, { loss: 2.5, gradNorm: 5, evaluations: 4 });
  assert.equal(q.calls(), 4);
  close(theta, [1.7446875, 0.66666666666666666667], TOL, 'flow step 1');
  await opt.step(theta, q.gradFn, LR);
  close(theta, [1.5606467230902777778, 0.43835719401041666667], TOL, 'flow step 2');
});

test('flow: RK4 on 0.5 a x^2 tracks x0 exp(-a t) with O(h^5) local and O(h^4) global error', async () => {
  const a = 2;
  const q = quadratic([[a]], [0]);
  // One step: the RK4 multiplier 1 - z + z^2/2 - z^3/6 + z^4/24 at z = a h = 0.2 is 0.8187333333...
  const one = Float64Array.from([1]);
  await makeOptimizer('flow').step(one, q.gradFn, 0.1);
  close(one, [0.81873333333333333333], 1e-15, 'RK4 multiplier');
  // Its error against exp(-z) is z^5/120 (1 + O(z)) relative to x0.
  for (const h of [0.2, 0.1, 0.05, 0.025]) {
    const x = Float64Array.from([1.5]);
    await makeOptimizer('flow').step(x, q.gradFn, h);
    const err = Math.abs(x[0] - 1.5 * Math.exp(-a * h));
    const predicted = (1.5 * Math.pow(a * h, 5)) / 120;
    assert.ok(err > 0.9 * predicted && err < 1.01 * predicted, `h = ${h}: one-step error ${err}, predicted ${predicted}`);
  }
  // Global error at t = 1: slope of log error against log h over h in {0.1, 0.05, 0.025} is 4 +- 0.3.
  const hs = [0.1, 0.05, 0.025];
  const errs: number[] = [];
  for (const h of hs) {
    const opt = makeOptimizer('flow');
    const x = Float64Array.from([1]);
    const steps = Math.round(1 / h);
    for (let k = 0; k < steps; k++) await opt.step(x, q.gradFn, h);
    errs.push(Math.abs(x[0] - Math.exp(-a)));
  }
  const lx = hs.map(Math.log);
  const ly = errs.map(Math.log);
  const mx = lx.reduce((s, v) => s + v, 0) / lx.length;
  const my = ly.reduce((s, v) => s + v, 0) / ly.length;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < lx.length; i++) {
    sxy += (lx[i] - mx) * (ly[i] - my);
    sxx += (lx[i] - mx) ** 2;
  }
  const slope = sxy / sxx;
  assert.ok(Math.abs(slope - 4) <= 0.3, `global error slope ${slope} (errors ${errs.join(', ')})`);
  assert.equal(makeOptimizer('flow').threshold(0.1), undefined);
});

test('stability thresholds', () => {
  const near = (x: number | undefined, want: number): void => {
    assert.ok(x !== undefined && Math.abs(x - want) <= 1e-12 * want, `got ${x}, expected ${want}`);
  };
  for (const name of ['gd', 'sgd', 'sam'] as const) near(makeOptimizer(name).threshold(0.1), 20);
  near(makeOptimizer('asam', { ir: tinyIR() }).threshold(0.1), 20);
  near(makeOptimizer('gd').threshold(0.004), 500);
  // Heavy ball (2 + 2 beta)/lr: beta 0.9, lr 0.1 -> 38; beta 0.5, lr 0.01 -> 300.
  near(makeOptimizer('momentum').threshold(0.1), 38);
  near(makeOptimizer('momentum', { momentum: 0.5 }).threshold(0.01), 300);
  // Nesterov (2 + 2 beta)/((1 + 2 beta) lr): 3.8/0.28 = 13.571428571428571...; beta 0.5, lr 0.01 -> 3/0.02 = 150.
  near(makeOptimizer('nesterov').threshold(0.1), 13.571428571428571429);
  near(makeOptimizer('nesterov', { momentum: 0.5 }).threshold(0.01), 150);
  // beta = 0 reduces both to GD's 2/lr.
  near(makeOptimizer('nesterov', { momentum: 0 }).threshold(0.1), 20);
  assert.equal(makeOptimizer('adam').threshold(0.1), undefined);
  assert.equal(makeOptimizer('flow').threshold(0.1), undefined);
  assert.throws(() => makeOptimizer('gd').threshold(0), BasinError);
});

test('getState / setState: resuming from a checkpoint reproduces the run bitwise', async () => {
  const q = quadratic(A3, B3);
  const lrs = [0.05, 0.04, 0.03, 0.02, 0.01];
  const opts: OptimizerOptions = { ir: tinyIR(), weightDecay: 0.01 };
  for (const name of OPTIMIZER_NAMES) {
    const opt = makeOptimizer(name, opts);
    const theta = Float64Array.from(W0);
    for (let k = 0; k < 3; k++) await opt.step(theta, q.gradFn, lrs[k]);
    const saved = structuredClone(opt.getState());
    const savedTheta = Float64Array.from(theta);
    assert.equal(saved.name, name);
    assert.equal(saved.step, 3);
    for (let k = 3; k < 5; k++) await opt.step(theta, q.gradFn, lrs[k]);

    const fresh = makeOptimizer(name, opts);
    fresh.setState(saved);
    const resumed = Float64Array.from(savedTheta);
    for (let k = 3; k < 5; k++) await fresh.step(resumed, q.gradFn, lrs[k]);
    assert.deepEqual(new Uint8Array(resumed.buffer), new Uint8Array(theta.buffer), `${name}: resumed run differs`);
    assert.deepEqual(fresh.getState(), opt.getState(), `${name}: states differ`);
  }
  // State buffers by optimizer, and copies rather than aliases.
  const m = makeOptimizer('momentum');
  await m.step(Float64Array.from(X0), quadratic(A2, B2).gradFn, LR);
  const s = m.getState();
  assert.deepEqual(Object.keys(s.buffers), ['velocity']);
  assert.deepEqual(Array.from(s.buffers.velocity), [3, 4]);
  s.buffers.velocity[0] = 100;
  assert.equal(m.getState().buffers.velocity[0], 3);
  const ad = makeOptimizer('adam');
  await ad.step(Float64Array.from(X0), quadratic(A2, B2).gradFn, LR);
  assert.deepEqual(Object.keys(ad.getState().buffers).sort(), ['m', 'v']);
  assert.deepEqual(makeOptimizer('gd').getState(), { name: 'gd', step: 0, buffers: {} });
  // Mismatches are user errors.
  assert.throws(() => makeOptimizer('nesterov').setState(s), BasinError);
  assert.throws(() => makeOptimizer('adam').setState({ name: 'adam', step: 1, buffers: { m: new Float64Array(2) } }), BasinError);
  assert.throws(() => makeOptimizer('gd').setState({ name: 'gd', step: -1, buffers: {} }), BasinError);
});

test('invalid options, learning rates and gradient lengths are BasinErrors', async () => {
  assert.throws(() => makeOptimizer('momentum', { momentum: 1 }), BasinError);
  assert.throws(() => makeOptimizer('adam', { beta2: -0.1 }), BasinError);
  assert.throws(() => makeOptimizer('adam', { adamEps: 0 }), BasinError);
  assert.throws(() => makeOptimizer('sam', { rho: Number.NaN }), BasinError);
  assert.throws(() => makeOptimizer('gd', { weightDecay: -1 }), BasinError);
  assert.throws(() => makeOptimizer('rmsprop' as OptimizerName), BasinError);
  const q = quadratic(A2, B2);
  await assert.rejects(makeOptimizer('gd').step(Float64Array.from(X0), q.gradFn, -0.1), BasinError);
  await assert.rejects(makeOptimizer('gd').step(Float64Array.from([1, 2, 3]), q.gradFn, 0.1), BasinError);
  const m = makeOptimizer('momentum');
  await m.step(Float64Array.from(X0), q.gradFn, LR);
  await assert.rejects(m.step(Float64Array.from([1, 2, 3]), quadratic(A3, B3).gradFn, LR), BasinError);
});

test('lrAt: constant, step decay and cosine values', () => {
  assert.equal(lrAt(0.1, { kind: 'constant' }, 0), 0.1);
  assert.equal(lrAt(0.1, { kind: 'constant' }, 12345), 0.1);
  const step: Schedule = { kind: 'step', every: 10, gamma: 0.5 };
  assert.equal(lrAt(0.1, step, 0), 0.1);
  assert.equal(lrAt(0.1, step, 9), 0.1);
  assert.equal(lrAt(0.1, step, 10), 0.05);
  assert.equal(lrAt(0.1, step, 25), 0.025);
  assert.equal(lrAt(0.1, step, 30), 0.0125);
  const cos: Schedule = { kind: 'cosine', total: 100, minLr: 0.001 };
  const near = (x: number, want: number): void => assert.ok(Math.abs(x - want) <= 1e-15, `got ${x}, expected ${want}`);
  near(lrAt(0.1, cos, 0), 0.1);
  near(lrAt(0.1, cos, 50), 0.0505); // 0.001 + 0.099 / 2
  near(lrAt(0.1, cos, 25), 0.001 + 0.099 * (1 + Math.SQRT1_2) / 2); // cos(pi/4)
  near(lrAt(0.1, cos, 100), 0.001);
  near(lrAt(0.1, cos, 150), 0.001);
  near(lrAt(0.2, { kind: 'cosine', total: 4 }, 2), 0.1); // minLr defaults to 0
  near(lrAt(0.2, { kind: 'cosine', total: 3 }, 1), 0.15); // 0.2 (1 + cos(pi/3))/2 = 0.2 * 0.75
  assert.throws(() => lrAt(0.1, step, -1), BasinError);
  assert.throws(() => lrAt(0.1, step, 1.5), BasinError);
  assert.throws(() => lrAt(0.1, { kind: 'step', every: 0, gamma: 0.5 }, 1), BasinError);
});

test('parseSchedule: CLI spellings and clear errors', () => {
  assert.deepEqual(parseSchedule('constant'), { kind: 'constant' });
  assert.deepEqual(parseSchedule('step:10:0.5'), { kind: 'step', every: 10, gamma: 0.5 });
  assert.deepEqual(parseSchedule('cosine:1000'), { kind: 'cosine', total: 1000 });
  assert.deepEqual(parseSchedule('cosine:1000:1e-4'), { kind: 'cosine', total: 1000, minLr: 1e-4 });
  assert.deepEqual(parseSchedule(' step:5:2 '), { kind: 'step', every: 5, gamma: 2 });
  for (const spec of ['constant', 'step:10:0.5', 'cosine:1000', 'cosine:1000:0.001']) {
    assert.deepEqual(parseSchedule(formatSchedule(parseSchedule(spec))), parseSchedule(spec));
  }
  const bad: [string, RegExp][] = [
    ['', /empty/],
    ['linear', /unknown kind 'linear'/],
    ['constant:1', /takes no arguments/],
    ['step:10', /two arguments/],
    ['step:10:0.5:1', /two arguments/],
    ['step:0:0.5', /EVERY must be a positive integer/],
    ['step:2.5:0.5', /EVERY must be a positive integer/],
    ['step:ten:0.5', /EVERY/],
    ['step:10:', /GAMMA must be a positive number/],
    ['step:10:0', /GAMMA/],
    ['step:10:abc', /GAMMA/],
    ['cosine', /TOTAL/],
    ['cosine:0', /TOTAL must be a positive integer/],
    ['cosine:-5', /TOTAL/],
    ['cosine:0x10', /TOTAL/],
    ['cosine:100:-0.1', /MINLR must be a number >= 0/],
    ['cosine:100:Infinity', /MINLR/],
    ['cosine:100:0.1:3', /TOTAL and an optional MINLR/],
  ];
  for (const [spec, message] of bad) {
    assert.throws(
      () => parseSchedule(spec),
      (e: unknown) => e instanceof BasinError && message.test(e.message) && e.message.includes(`'${spec}'`),
      `spec '${spec}'`,
    );
  }
});

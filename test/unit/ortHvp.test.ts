/**
 * `auto` Hessian-vector products on the ONNX Runtime engine: on a ReLU/max-pool convnet fed
 * mostly blank images with zero conv biases (ReLUs at their kinks, as on MNIST), central finite
 * differences are far from the float64 Hessian, and `auto` must still choose ONNX Runtime's exact
 * product (the symmetry and smaller-step checks), which matches float64.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../src/engine/backend';
import { createOrtEvaluator, OrtEvaluator } from '../../src/engine/ort/evaluator';
import { FiniteDifferenceHessian, selectHessian } from '../../src/engine/hvp/operators';
import { lanczos } from '../../src/engine/linalg/lanczos';
import { twiceDifferentiable } from '../../src/engine/model/forward';
import { Rng } from '../../src/engine/rng';
import { convIR, randomProblem, refHvp, type RefProblem } from '../reference/float64';
import { relErr } from '../reference/compare';

before(async () => {
  await initBackend();
});

const f32 = (a: Float64Array): Float64Array => Float64Array.from(Float32Array.from(a));

function unit(n: number, seed: number): Float64Array {
  const v = new Rng(seed).normalVector(n);
  const s = Math.sqrt(v.reduce((a, x) => a + x * x, 0));
  return v.map((x) => x / s);
}

/** A small MNIST-like convnet problem: 70% of pixels blank, conv biases zero. */
function kinkyConvnet(): RefProblem {
  const ir = convIR([8, 8, 1], [
    { kind: 'conv2d', filters: 4, kernelSize: 3, activation: 'relu' },
    { kind: 'conv2d', filters: 4, kernelSize: 3, activation: 'relu' },
    { kind: 'maxPool2d', poolSize: 2 },
    { kind: 'flatten' },
    { kind: 'dense', units: 8, activation: 'relu' },
    { kind: 'dense', units: 3, activation: 'softmax' },
  ]);
  const raw = randomProblem(ir, 'categoricalCrossentropy', 96, 31);
  const rng = new Rng(7);
  const x = raw.x.map((xi) => (rng.uniform() < 0.7 ? 0 : xi));
  const params = Float64Array.from(raw.params);
  for (const q of ir.params) if (q.role === 'bias' && ir.nodes.find((n) => n.name === q.layer)?.op.kind === 'conv2d') params.fill(0, q.offset, q.offset + q.size);
  return { ...raw, x: f32(x), params: f32(params), y: f32(raw.y) };
}

async function ortFor(p: RefProblem): Promise<OrtEvaluator> {
  const r = await createOrtEvaluator(p.ir, Float32Array.from(p.params), p.loss, { x: Float32Array.from(p.x), xShape: p.xShape, y: Float32Array.from(p.y), yShape: p.yShape }, { chunkSize: 40 });
  assert.ok(r.evaluator, r.reason);
  return r.evaluator;
}

test('auto on ONNX Runtime, ReLU/max-pool convnet where finite differences are wrong: the exact product is chosen and matches float64', async () => {
  const p = kinkyConvnet();
  const ev = await ortFor(p);
  try {
    const v = unit(p.ir.numParams, 12345);
    const want = refHvp(p, v);
    const fdErr = relErr(await new FiniteDifferenceHessian(ev).matvec(v), want);
    // The premise: finite differences cross kinks and are far off (the case auto must not prefer).
    assert.ok(fdErr > 0.05, `finite differences should be wrong here (relative error ${fdErr.toExponential(2)})`);
    const exactErr = relErr(await ev.hvp(v), want);
    assert.ok(exactErr < 1e-4, `ONNX Runtime's exact product: ${exactErr.toExponential(2)} from float64`);
    const sel = await selectHessian(ev);
    assert.equal(sel.method, 'exact', sel.reason);
    assert.match(sel.reason, /finite differences fail the checks/);
    assert.ok(relErr(await sel.op.matvec(v), want) < 1e-4, 'the chosen product matches float64');
    // And the top eigenvalue from it is float64's (Lanczos on the float64 products).
    const ref = await lanczos({ dim: p.ir.numParams, matvec: async (u: Float64Array) => refHvp(p, u) }, { k: 1, which: 'top', rng: new Rng(3) });
    const top = ref.eigenvalues[0];
    const lz = await lanczos(sel.op, { k: 1, which: 'top', rng: new Rng(3) });
    assert.ok(Math.abs(lz.eigenvalues[0] - top) < 1e-4 * Math.abs(top), `top eigenvalue ${lz.eigenvalues[0]} vs float64 ${top}`);
  } finally {
    await ev.released();
  }
});

test('overlapping and padded max pooling: ONNX Runtime differentiates it twice (exact products, GGN), TF.js cannot and says why', async () => {
  const ir = convIR([6, 6, 1], [
    { kind: 'conv2d', filters: 2, kernelSize: 3, padding: 'same', activation: 'tanh' },
    { kind: 'maxPool2d', poolSize: 3, strides: 2 },
    { kind: 'conv2d', filters: 2, kernelSize: 1, activation: 'elu' },
    { kind: 'maxPool2d', poolSize: 2, strides: 1, padding: 'same' },
    { kind: 'flatten' },
    { kind: 'dense', units: 2, activation: 'softmax' },
  ]);
  const raw = randomProblem(ir, 'categoricalCrossentropy', 16, 5);
  const p = { ...raw, x: f32(raw.x), y: f32(raw.y), params: f32(raw.params) };
  const ev = await ortFor(p);
  try {
    assert.deepEqual(ev.secondOrder(), { ok: true });
    const sel = await selectHessian(ev, 'exact');
    assert.equal(sel.method, 'exact');
    const v = unit(ir.numParams, 77);
    const err = relErr(await sel.op.matvec(v), refHvp(p, v));
    assert.ok(err < 1e-4, `exact product through overlapping max pooling: ${err.toExponential(2)} from float64`);
    const auto = await selectHessian(ev);
    assert.equal(auto.method, 'exact', auto.reason);
  } finally {
    await ev.released();
  }
  const tfjs = twiceDifferentiable(ir);
  assert.equal(tfjs.ok, false);
  assert.match(tfjs.reason ?? '', /overlapping or padded max pooling/);
});

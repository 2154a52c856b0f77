/**
 * The ONNX Runtime engine (src/engine/ort) against the float64 oracle (test/reference): loss,
 * gradient, exact H·v (forward-over-reverse emitted as ONNX ops), accuracy and plane losses, for
 * every op and loss it emits, with data split over several chunks; against the TF.js evaluator on
 * the bundled spiral example and a small convnet; its refusals; and that disposing releases its
 * sessions and lets the process exit.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as esbuild from 'esbuild';
import type { ModelIR } from '../../src/engine/model/ir';
import { Rng } from '../../src/engine/rng';
import { initBackend } from '../../src/engine/backend';
import { loadProblem, problemFrom } from '../../src/engine/problem';
import { LocalEvaluator } from '../../src/engine/evaluator';
import { Objective } from '../../src/engine/objective';
import { createOrtEvaluator, loadOrt, OrtEvaluator } from '../../src/engine/ort/evaluator';
import { emitGraph, unsupportedReason } from '../../src/engine/ort/emit';
import { AD, FILTER_GRAD, type ConvGeom, type Sym } from '../../src/engine/ort/ad';
import { ENCODE_PASSES, Graph } from '../../src/engine/ort/graph';
import { onnx } from 'onnx-proto';
import type { Split } from '../../src/engine/data';
import { relErr } from '../reference/compare';
import { oracleCases } from '../reference/cases';
import { asFloat32, convIR, mlpIR, randomProblem, refForward, refGradHvp, refLoss, type RefProblem } from '../reference/float64';

// The bundle runs from .test-dist/unit/.
const CLI = path.join(__dirname, '../../dist/cli.js');
const SPIRAL_MODEL = path.join(__dirname, '../../examples/spiral/model.json');
const SPIRAL_DATA = path.join(__dirname, '../../examples/spiral/data.json');

before(async () => {
  await initBackend('wasm');
});


function splitOf(p: RefProblem): Split {
  return { x: Float32Array.from(p.x), xShape: p.xShape, y: Float32Array.from(p.y), yShape: p.yShape };
}

async function ortFor(p: RefProblem, chunkSize?: number): Promise<OrtEvaluator> {
  const r = await createOrtEvaluator(p.ir, Float32Array.from(p.params), p.loss, splitOf(p), { chunkSize });
  assert.ok(r.evaluator, `no ONNX Runtime evaluator: ${r.reason}`);
  return r.evaluator;
}

function fmt(x: number): string {
  return x.toExponential(2);
}

const CASES = oracleCases().map((c) => ({ ...c, problem: asFloat32(c.problem) }));

test('loss, gradient and exact H·v match the float64 oracle for every op and loss (3 samples a chunk)', async (t) => {
  let worst = { loss: 0, grad: 0, hvp: 0 };
  for (const [k, { name, problem }] of CASES.entries()) {
    const ev = await ortFor(problem, 3);
    try {
      assert.equal(unsupportedReason(problem.ir), undefined);
      const v = new Rng(500 + k).normalVector(problem.ir.numParams);
      const ref = refGradHvp(problem, v);
      const loss = await ev.loss();
      const g = await ev.gradient();
      const hv = await ev.hvp(v);
      const e = { loss: Math.abs(loss - ref.loss) / Math.abs(ref.loss), grad: relErr(g.grad, ref.grad), hvp: relErr(hv, ref.hvp) };
      t.diagnostic(`${name}: ${problem.ir.numParams} params; rel err loss ${fmt(e.loss)}, gradient ${fmt(e.grad)}, H·v ${fmt(e.hvp)}`);
      assert.ok(e.loss < 1e-6, `${name}: loss ${loss} vs ${ref.loss}`);
      assert.equal(g.loss, loss, `${name}: the gradient's loss is the loss`);
      assert.ok(e.grad < 3e-6, `${name}: gradient rel err ${e.grad}`);
      assert.ok(e.hvp < 3e-6, `${name}: H·v rel err ${e.hvp}`);
      // Products share the graph's v-independent part (split at v, run once per point): checked
      // on a second product, which only runs the part that reads v.
      assert.equal(ev.carryOff, undefined, `${name}: ${ev.carryOff}`);
      assert.ok(ev.sessionKinds.includes('hvp:pre') && ev.sessionKinds.includes('hvp:post') && !ev.sessionKinds.includes('hvp:1'), `${name}: ${ev.sessionKinds}`);
      const w = new Rng(900 + k).normalVector(problem.ir.numParams);
      const e2 = relErr(await ev.hvp(w), refGradHvp(problem, w).hvp);
      assert.ok(e2 < 3e-6, `${name}: second H·v rel err ${e2}`);
      worst = { loss: Math.max(worst.loss, e.loss), grad: Math.max(worst.grad, e.grad), hvp: Math.max(worst.hvp, e.hvp, e2) };
      assert.deepEqual(ev.counts, { forward: 1, gradient: 1, hvp: 2 });
    } finally {
      await ev.released();
    }
  }
  t.diagnostic(`worst: loss ${fmt(worst.loss)}, gradient ${fmt(worst.grad)}, H·v ${fmt(worst.hvp)}`);
});

test('chunking does not change the numbers: 1 sample a chunk equals the whole batch in one run', async () => {
  const { problem } = CASES.find((c) => c.name.startsWith('conv B'))!;
  const v = new Rng(1).normalVector(problem.ir.numParams);
  const one = await ortFor(problem, 1);
  const all = await ortFor(problem);
  try {
    assert.equal(all.chunkSize, problem.xShape[0]);
    assert.ok(Math.abs((await one.loss()) - (await all.loss())) < 1e-6 * Math.abs(await all.loss()));
    assert.ok(relErr((await one.gradient()).grad, (await all.gradient()).grad) < 1e-6);
    assert.ok(relErr(await one.hvp(v), await all.hvp(v)) < 1e-6);
  } finally {
    await one.released();
    await all.released();
  }
});

test('losses at explicit parameters, setParameters, accuracy and plane losses match the oracle', async () => {
  for (const { name, problem } of CASES.filter((c) => /cce softmax \(|bce sigmoid \(|conv A|conv B/.test(c.name))) {
    const ev = await ortFor(problem, 4);
    try {
      const n = problem.ir.numParams;
      const d1 = Float64Array.from(new Rng(7).normalVector(n), (x) => 0.1 * x);
      const d2 = Float64Array.from(new Rng(8).normalVector(n), (x) => 0.1 * x);
      const coeffs = Float64Array.from([0, 0, 1, 0, 0.5, -1, -2, 0.25]);
      const origin = Float32Array.from(problem.params);
      const plane = await ev.planeLosses(origin, [d1, d2], coeffs, true);
      assert.equal(plane.loss.length, 4);
      // MLPs share the first layer's products over the plane; convnets evaluate each point whole.
      assert.equal(ev.sessionKinds.includes('planeLossPredict:3'), name.startsWith('conv') ? false : true, `${name}: ${ev.sessionKinds}`);
      assert.equal(plane.accuracy?.length, 4);
      for (let p = 0; p < 4; p++) {
        const theta = Float64Array.from(Float32Array.from(origin, (o, i) => o + coeffs[2 * p] * d1[i] + coeffs[2 * p + 1] * d2[i]));
        const at = { ...problem, params: theta };
        const want = refLoss(at);
        assert.ok(Math.abs(plane.loss[p] - want) < 1e-6 * Math.abs(want), `${name}: plane point ${p}: ${plane.loss[p]} vs ${want}`);
        assert.equal(plane.accuracy?.[p], refAccuracy(at), `${name}: plane point ${p} accuracy`);
        assert.ok(Math.abs((await ev.loss(theta)) - want) < 1e-6 * Math.abs(want), `${name}: loss(theta)`);
      }
      assert.equal(await ev.accuracy(), refAccuracy(problem), `${name}: accuracy`);
      // A product at the origin first: what products share at a point must not outlive it.
      const u = new Rng(10).normalVector(n);
      assert.ok(relErr(await ev.hvp(u), refGradHvp(problem, u).hvp) < 1e-5, `${name}: H·v at the origin`);
      // Moving the evaluator moves every product; parameters() is a copy.
      const moved = Float64Array.from(Float32Array.from(origin, (o, i) => o + d1[i]));
      await ev.setParameters(moved);
      assert.deepEqual(ev.parameters(), Float32Array.from(moved));
      ev.parameters()[0] = 1e9;
      assert.notEqual(ev.parameters()[0], 1e9);
      const v = new Rng(9).normalVector(n);
      const ref = refGradHvp({ ...problem, params: moved }, v);
      assert.ok(relErr((await ev.gradient()).grad, ref.grad) < 1e-5, `${name}: gradient after setParameters`);
      assert.ok(relErr(await ev.hvp(v), ref.hvp) < 1e-5, `${name}: H·v after setParameters`);
      await assert.rejects(ev.setParameters(new Float32Array(n + 1)), /expected \d+ parameters, got \d+/);
    } finally {
      await ev.released();
    }
  }
});

/** Accuracy from the oracle's outputs: argmax agreement, or the 0.5 threshold for one output. */
function refAccuracy(p: RefProblem): number {
  const out = refForward(p);
  const n = p.xShape[0];
  const k = out.length / n;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    if (k === 1) {
      if (out[i] > 0.5 === p.y[i] > 0.5) correct++;
      continue;
    }
    let a = 0;
    let b = 0;
    for (let j = 1; j < k; j++) {
      if (out[i * k + j] > out[i * k + a]) a = j;
      if (p.y[i * k + j] > p.y[i * k + b]) b = j;
    }
    if (a === b) correct++;
  }
  return correct / n;
}

async function agree(ort: OrtEvaluator, tfjs: LocalEvaluator, name: string, tol: { loss: number; grad: number; hvp: number }): Promise<string> {
  const v = new Rng(3).normalVector(ort.dim);
  const lo = await ort.loss();
  const lt = await tfjs.loss();
  const go = await ort.gradient();
  const gt = await tfjs.gradient();
  const ho = await ort.hvp(v);
  const ht = await tfjs.hvp(v);
  const e = { loss: Math.abs(lo - lt) / Math.abs(lt), grad: relErr(go.grad, gt.grad), hvp: relErr(ho, ht) };
  assert.ok(e.loss < tol.loss, `${name}: loss ${lo} (onnxruntime) vs ${lt} (TF.js)`);
  assert.ok(e.grad < tol.grad, `${name}: gradient rel diff ${e.grad}`);
  assert.ok(e.hvp < tol.hvp, `${name}: H·v rel diff ${e.hvp}`);
  assert.equal(await ort.accuracy(), await tfjs.accuracy(), `${name}: accuracy`);
  return `${name}: loss ${fmt(e.loss)}, gradient ${fmt(e.grad)}, H·v ${fmt(e.hvp)}`;
}

test('ONNX Runtime and TF.js agree on the spiral example and on a small convnet', async (t) => {
  const spiral = await loadProblem({ model: SPIRAL_MODEL, data: SPIRAL_DATA });
  const so = (await createOrtEvaluator(spiral.ir, spiral.theta, spiral.loss, spiral.train)).evaluator!;
  const st = new LocalEvaluator(spiral.objective());
  try {
    t.diagnostic(await agree(so, st, 'spiral', { loss: 1e-6, grad: 1e-5, hvp: 1e-5 }));
  } finally {
    await so.released();
    st.dispose();
  }
  const ir = convIR(
    [8, 8, 3],
    [
      { kind: 'conv2d', filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' },
      { kind: 'maxPool2d', poolSize: 2 },
      { kind: 'conv2d', filters: 6, kernelSize: 3, strides: 2, padding: 'same', activation: 'tanh' },
      { kind: 'batchNorm' },
      { kind: 'avgPool2d', poolSize: 2, padding: 'same' },
      { kind: 'flatten' },
      { kind: 'dense', units: 5, activation: 'softmax' },
    ],
  );
  const p = asFloat32(randomProblem(ir, 'categoricalCrossentropy', 40, 80));
  const values = ir.params.map((q) => Float32Array.from(p.params.subarray(q.offset, q.offset + q.size)));
  const problem = problemFrom(ir, values, 'categoricalCrossentropy', splitOf(p));
  const co = (await createOrtEvaluator(ir, problem.theta, problem.loss, problem.train, { chunkSize: 16 })).evaluator!;
  const ct = new LocalEvaluator(new Objective(ir, problem.theta, problem.loss, problem.train, { chunkSize: 16 }));
  try {
    t.diagnostic(await agree(co, ct, 'convnet', { loss: 1e-6, grad: 1e-5, hvp: 1e-5 }));
  } finally {
    await co.released();
    ct.dispose();
  }
});

test('problem.evaluator() runs on ONNX Runtime unless a TF.js backend was asked for; results name the engine', async () => {
  // This suite asked for wasm by name: evaluators stay on TF.js.
  const spiral = await loadProblem({ model: SPIRAL_MODEL, data: SPIRAL_DATA });
  const tfjs = await spiral.evaluator();
  assert.ok(!(tfjs instanceof OrtEvaluator));
  tfjs.dispose();
  // The CLI with the default backend computes on ONNX Runtime and says so.
  const eigs = (...args: string[]): { backend: string; backendDetail: string; eigenvalues: number[]; hvpMethod: string } => {
    const env = { ...process.env, BASIN_DEBUG: '', BASIN_ENGINE: args.includes('tfjs') ? 'tfjs' : '' };
    const r = spawnSync(process.execPath, [CLI, 'eigs', '--model', SPIRAL_MODEL, '--data', SPIRAL_DATA, '--k', '2', '--json', ...args.filter((a) => a !== 'tfjs')], { encoding: 'utf8', timeout: 120_000, env });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as ReturnType<typeof eigs>;
  };
  const onOrt = eigs();
  assert.equal(onOrt.backend, 'onnxruntime');
  assert.match(onOrt.backendDetail, /^onnxruntime \d+\.\d+\.\d+ \(CPU\)(, \d+ threads)?$/);
  assert.equal(onOrt.hvpMethod, 'exact');
  const onWasm = eigs('--backend', 'wasm');
  assert.equal(onWasm.backend, 'wasm');
  assert.equal(eigs('tfjs').backend, 'wasm');
  for (let i = 0; i < 2; i++) assert.ok(Math.abs(onOrt.eigenvalues[i] - onWasm.eigenvalues[i]) < 1e-5 * Math.abs(onWasm.eigenvalues[0]), `eigenvalue ${i}: ${onOrt.eigenvalues[i]} vs ${onWasm.eigenvalues[i]}`);
});

test('dispose releases every session and nothing keeps the process alive', () => {
  // A small program on the engine, bundled here and run in its own process: it must print its
  // numbers and exit by itself once the evaluator is disposed.
  const root = path.join(__dirname, '../..');
  const out = path.join(root, '.test-dist', 'ort-child', 'child.js');
  const contents = `
    import { createOrtEvaluator } from './src/engine/ort/evaluator';
    (async () => {
      const x = Float32Array.from({ length: 12 }, (_, i) => Math.sin(i));
      const y = Float32Array.from({ length: 4 }, (_, i) => i % 2);
      const theta = Float32Array.from({ length: 4 }, (_, i) => 0.1 * (i + 1));
      const ir = ${JSON.stringify(mlpIR([3, 1], ['sigmoid']))};
      const r = await createOrtEvaluator(ir, theta, 'binaryCrossentropy', { x, xShape: [4, 3], y, yShape: [4, 1] });
      const ev = r.evaluator;
      if (!ev) throw new Error(r.reason);
      const loss = await ev.loss();
      const hv = await ev.hvp(Float64Array.from([1, 0, 0, 0]));
      const open = ev.openSessions;
      ev.dispose();
      console.log(JSON.stringify({ loss, hv: Array.from(hv), open, after: ev.openSessions, rejects: await ev.loss().then(() => false, (e) => e.message) }));
    })();
  `;
  esbuild.buildSync({ stdin: { contents, resolveDir: root, loader: 'ts' }, bundle: true, platform: 'node', format: 'cjs', external: ['onnxruntime-node'], mainFields: ['module', 'main'], outfile: out, logLevel: 'error' });
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [out], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `child exited ${r.status} (${r.signal ?? ''}): ${r.stderr}`);
  const got = JSON.parse(r.stdout) as { loss: number; hv: number[]; open: number; after: number; rejects: string };
  // Three sessions: the loss, and the H·v graph's two parts (the one run once per point, the one per product).
  assert.deepEqual([got.open, got.after, got.rejects], [3, 0, 'the evaluator was disposed']);
  // The oracle's numbers for the same problem.
  const ref: RefProblem = {
    ir: mlpIR([3, 1], ['sigmoid']),
    params: Float64Array.from(Float32Array.from([0.1, 0.2, 0.3, 0.4])),
    x: Float64Array.from(Float32Array.from({ length: 12 }, (_, i) => Math.sin(i))),
    xShape: [4, 3],
    y: Float64Array.from({ length: 4 }, (_, i) => i % 2),
    yShape: [4, 1],
    loss: 'binaryCrossentropy',
  };
  const want = refGradHvp(ref, Float64Array.from([1, 0, 0, 0]));
  assert.ok(Math.abs(got.loss - want.loss) < 1e-6 * want.loss, `${got.loss} vs ${want.loss}`);
  assert.ok(relErr(got.hv, want.hvp) < 1e-5);
  assert.ok(Date.now() - t0 < 60_000);
});

test('unsupported inputs are refused with a reason (and Basin falls back to TF.js)', async () => {
  const p = asFloat32(randomProblem(mlpIR([3, 4, 2], ['tanh', 'linear']), 'meanSquaredError', 4, 1));
  const userLoss = await createOrtEvaluator(p.ir, Float32Array.from(p.params), () => {
    throw new Error('never called');
  }, splitOf(p));
  assert.equal(userLoss.evaluator, undefined);
  assert.equal(userLoss.reason, 'the loss is a function (graphs are emitted for the named losses only)');
  const bad: ModelIR = { ...p.ir, nodes: p.ir.nodes.map((n, i) => (i === 1 ? { ...n, op: { kind: 'lstm' } as unknown as ModelIR['nodes'][number]['op'] } : n)) };
  assert.equal(unsupportedReason(bad), "layer 'dense_1' (lstm) has no ONNX emitter");
  const refused = await createOrtEvaluator(bad, Float32Array.from(p.params), 'meanSquaredError', splitOf(p));
  assert.equal(refused.reason, "layer 'dense_1' (lstm) has no ONNX emitter");
  const prev = process.env.BASIN_ENGINE;
  process.env.BASIN_ENGINE = 'tfjs';
  try {
    assert.equal((await createOrtEvaluator(p.ir, Float32Array.from(p.params), 'meanSquaredError', splitOf(p))).reason, 'BASIN_ENGINE=tfjs');
  } finally {
    if (prev === undefined) delete process.env.BASIN_ENGINE;
    else process.env.BASIN_ENGINE = prev;
  }
});

test('graphs are valid ONNX: every kind emits and loads, with the documented inputs and outputs', async () => {
  const ort = loadOrt();
  assert.notEqual(typeof ort, 'string', String(ort));
  const { problem } = CASES.find((c) => c.name.startsWith('conv A'))!;
  const io: Record<string, [string[], string[]]> = {
    loss: [['theta', 'x', 'y'], ['loss']],
    grad: [['theta', 'x', 'y'], ['loss', 'grad']],
    hvp: [['theta', 'v', 'x', 'y'], ['hv']],
    predict: [['theta', 'x'], ['pred']],
    lossPredict: [['theta', 'x', 'y'], ['loss', 'correct']],
  };
  for (const kind of ['loss', 'grad', 'hvp', 'predict', 'lossPredict'] as const) {
    const g = emitGraph(problem.ir, problem.loss, 5, kind);
    assert.deepEqual([g.inputs, g.outputs], io[kind], kind);
    const s = await (ort as Exclude<typeof ort, string>).InferenceSession.create(g.bytes);
    assert.deepEqual([[...s.inputNames], [...s.outputNames]], io[kind], kind);
    await s.release();
  }
});

test('every primitive\'s reverse and forward rules are adjoint: <g, J t> = <J^T g, t> at a random point', async () => {
  const ort = loadOrt() as Exclude<ReturnType<typeof loadOrt>, string>;
  const geom = (k: number, s: number, pads: [number, number, number, number]): ConvGeom => ({ kernel: [k, k], strides: [s, s], pads });
  const w = (ad: AD, shape: number[], seed: number): Sym => ad.constFloat(Float32Array.from(new Rng(seed).normalVector(shape.reduce((p, d) => p * d, 1))), shape);
  const cases: [string, number[], (ad: AD, a: Sym) => Sym][] = [
    ['reshape', [2, 3, 4], (ad, a) => ad.reshape(a, [-1, 12])],
    ['transpose', [2, 3, 4], (ad, a) => ad.transpose(a, [0, 2, 1])],
    ['reduceSum', [2, 3, 4], (ad, a) => ad.reduceSum(a, [1], false)],
    ['expandTo', [3, 1], (ad, a) => ad.expandTo(a, ad.raw('Mul', [a, w(ad, [1, 4], 1)], [-1, 4]))],
    ['concat', [2, 3], (ad, a) => ad.concat([a, ad.exp(a)], 1)],
    ['slice', [2, 5], (ad, a) => ad.slice(a, 1, 1, 4)],
    ['padAxis', [2, 3], (ad, a) => ad.padAxis(a, 1, 2, 1)],
    ['add/sub/mul broadcast', [2, 3], (ad, a) => ad.mul(ad.sub(ad.add(a, w(ad, [3], 2)), ad.reduceSum(a, [0], true)), a)],
    ['exp, log, reciprocal', [2, 3], (ad, a) => ad.log(ad.add(ad.exp(a), ad.reciprocal(ad.add(ad.mul(a, a), ad.scalar(1)))))],
    ['tanh, sigmoid, softplus', [2, 3], (ad, a) => ad.add(ad.tanh(a), ad.mul(ad.sigmoid(a), ad.softplus(a)))],
    ['relu, elu, selu', [3, 4], (ad, a) => ad.add(ad.relu(a), ad.mul(ad.elu(a), ad.selu(a)))],
    ['clip', [3, 4], (ad, a) => ad.clip(a, -0.5, 0.7)],
    ['softmax, logSoftmax', [3, 4], (ad, a) => ad.add(ad.softmax(a, 1), ad.logSoftmax(a, 0))],
    ['gemm, transposed B', [3, 4], (ad, a) => ad.add(ad.gemm(a, w(ad, [4, 2], 3)), ad.gemm(a, w(ad, [2, 4], 4), false, true))],
    ['gemm, transposed A, both operands live', [3, 4], (ad, a) => ad.gemm(a, ad.tanh(ad.gemm(a, w(ad, [4, 2], 3))), true, false)],
    ['gemm, both transposed', [3, 4], (ad, a) => ad.gemm(a, ad.sigmoid(ad.gemm(w(ad, [2, 4], 6), a, false, true)), true, true)],
    ['conv (input and filter)', [2, 3, 5, 6], (ad, a) => ad.conv(a, ad.mul(w(ad, [2, 3, 2, 2], 5), ad.reduceSum(ad.mul(a, a), undefined, false)), geom(2, 2, [1, 0, 0, 1]))],
    ['maxPool (indices)', [2, 3, 5, 5], (ad, a) => ad.maxPool(a, geom(3, 2, [1, 1, 1, 1]))],
    ['maxPool (tiled, cropped)', [2, 3, 5, 7], (ad, a) => ad.maxPool(a, geom(2, 2, [0, 0, 0, 0]))],
    ['avgPool', [2, 3, 5, 5], (ad, a) => ad.avgPool(a, geom(3, 2, [1, 1, 1, 1]))],
    ['upsample, meanPool, sumPool', [2, 3, 4, 6], (ad, a) => ad.add(ad.upsample(ad.meanPool(a, 2, 3), 2, 3), ad.upsample(ad.sumPool(a, 2, 2), 2, 2))],
  ];
  for (const [name, shape, f] of cases) {
    const g = new Graph(name);
    const ad = new AD(g);
    const dims = shape.map((d, i) => (i === 0 ? 'N' : d));
    g.input('a', 'float', dims);
    g.input('t', 'float', dims);
    const a = ad.leaf('a', [-1, ...shape.slice(1)]);
    const y = f(ad, a);
    const outDims = y.shape.map((d) => (d === -1 ? 'N' : d));
    g.input('g', 'float', outDims);
    const loss = ad.reduceSum(ad.mul(y, ad.constant('g', y.shape)), undefined, false);
    const [jtg] = ad.grad(loss, [a]);
    const [jt] = ad.jvp(new Map([[a.id, ad.constant('t', a.shape)]]), [y]);
    assert.ok(jtg && jt, name);
    g.output(jtg.name, 'jtg', 'float', dims);
    g.output(jt.name, 'jt', 'float', outDims);
    const session = await ort.InferenceSession.create(g.encode());
    const rng = new Rng(11);
    const size = (s: readonly number[]): number => s.reduce((p, d) => p * (d === -1 ? shape[0] : d), 1);
    const ga = Float32Array.from(rng.normalVector(size(y.shape)));
    const ta = Float32Array.from(rng.normalVector(size(shape)));
    const outShape = y.shape.map((d) => (d === -1 ? shape[0] : d));
    const r = await session.run({ a: new ort.Tensor('float32', Float32Array.from(rng.normalVector(size(shape))), shape), t: new ort.Tensor('float32', ta, shape), g: new ort.Tensor('float32', ga, outShape) });
    const dot = (u: ArrayLike<number>, v: ArrayLike<number>): number => Array.from(u).reduce((s, x, i) => s + x * v[i], 0);
    const lhs = dot(ga, r.jt.data as Float32Array);
    const rhs = dot(r.jtg.data as Float32Array, ta);
    assert.ok(Math.abs(lhs - rhs) <= 1e-5 * Math.max(1, Math.abs(lhs)), `${name}: <g, J t> = ${lhs}, <J^T g, t> = ${rhs}`);
    assert.ok(Math.abs(lhs) > 1e-3, `${name}: a nontrivial product`);
    await session.release();
  }
});

test('encoding drops dead nodes and fuses Gemm + Add: an MLP H·v graph runs 19 products, not 22, with the same numbers', async () => {
  const ir = mlpIR([6, 8, 8, 3], ['tanh', 'tanh', 'softmax']);
  const p = asFloat32(randomProblem(ir, 'categoricalCrossentropy', 9, 81));
  const ops = (bytes: Uint8Array): Map<string, number> => {
    const m = new Map<string, number>();
    for (const n of onnx.ModelProto.decode(bytes).graph?.node ?? []) m.set(n.opType ?? '', (m.get(n.opType ?? '') ?? 0) + 1);
    return m;
  };
  const emit = (prune: boolean, fuse: boolean): Uint8Array => {
    ENCODE_PASSES.prune = prune;
    ENCODE_PASSES.fuseGemmAdd = fuse;
    try {
      return emitGraph(ir, 'categoricalCrossentropy', 9, 'hvp').bytes;
    } finally {
      ENCODE_PASSES.prune = true;
      ENCODE_PASSES.fuseGemmAdd = true;
    }
  };
  const plain = emit(false, false);
  const passes = emit(true, true);
  // Forward 3, tangents 5, input cotangents 2 and their tangents 4, weight-cotangent tangents 5;
  // the gradient's own 3 weight products feed nothing.
  assert.equal(ops(plain).get('Gemm'), 22);
  assert.equal(ops(passes).get('Gemm'), 19);
  assert.ok((ops(passes).get('Add') ?? 0) < (ops(plain).get('Add') ?? 0) - 4, `Adds: ${ops(plain).get('Add')} -> ${ops(passes).get('Add')}`);
  const ort = loadOrt();
  assert.ok(typeof ort !== 'string', ort as string);
  const v = new Rng(4).normalVector(ir.numParams);
  const feeds = {
    theta: new ort.Tensor('float32', Float32Array.from(p.params), [ir.numParams]),
    v: new ort.Tensor('float32', Float32Array.from(v), [ir.numParams]),
    x: new ort.Tensor('float32', Float32Array.from(p.x), p.xShape),
    y: new ort.Tensor('float32', Float32Array.from(p.y), p.yShape),
  };
  const run = async (bytes: Uint8Array): Promise<Float32Array> => {
    const s = await ort.InferenceSession.create(bytes);
    try {
      return (await s.run(feeds)).hv.data as Float32Array;
    } finally {
      await s.release();
    }
  };
  const a = await run(plain);
  const b = await run(passes);
  assert.ok(relErr(b, a) < 1e-6, `fused graph differs: ${relErr(b, a)}`);
  assert.ok(relErr(Float64Array.from(b), refGradHvp(p, v).hvp) < 1e-5);
});

test('a graph split at an input: the part that does not read it runs once, its values (float, bool, int64) carried to the rest; same numbers as the whole graph', async () => {
  const ort = loadOrt();
  assert.ok(typeof ort !== 'string', ort as string);
  const g = new Graph('split');
  g.input('a', 'float', [2, 3]);
  g.input('v', 'float', [2, 3]);
  const b = g.op('Tanh', ['a']);
  g.noteShape(b, [2, 3]);
  const positive = g.op('Greater', ['a', g.scalar(0)]); // bool, no shape noted
  const shape = g.op('Shape', ['a']); // int64
  const flat = g.reshape('a', [6]);
  const unused = g.op('Exp', ['a']); // feeds nothing: not carried
  void unused;
  const vb = g.mul('v', b);
  const picked = g.op('Where', [positive, 'v', g.op('Neg', ['v'])]);
  const back = g.op('Reshape', [g.add(g.reshape(vb, [6]), flat), shape]);
  g.output(g.add(back, picked), 'out', 'float', [2, 3]);
  const split = g.split('v');
  assert.ok(split);
  assert.deepEqual(new Set(split.carried), new Set([b, positive, shape, flat]));
  assert.deepEqual([split.preInputs, split.postInputs], [['a'], ['v']]);
  // Nothing to split at an input no node reads.
  assert.equal(g.split('nothing'), undefined);
  const a = new ort.Tensor('float32', Float32Array.from([0.5, -1, 2, -0.25, 0, 1.5]), [2, 3]);
  const v = new ort.Tensor('float32', Float32Array.from([1, 2, -3, 4, -5, 6]), [2, 3]);
  const whole = await ort.InferenceSession.create(g.encode());
  const pre = await ort.InferenceSession.create(split.pre);
  const post = await ort.InferenceSession.create(split.post);
  try {
    const want = Array.from((await whole.run({ a, v })).out.data as Float32Array);
    const carried = await pre.run({ a });
    const got = Array.from((await post.run({ v, ...carried })).out.data as Float32Array);
    assert.deepEqual(got, want);
    // By hand: v tanh(a) + a + (a > 0 ? v : -v).
    const av = a.data as Float32Array;
    const vv = v.data as Float32Array;
    want.forEach((x, i) => assert.ok(Math.abs(x - (vv[i] * Math.tanh(av[i]) + av[i] + (av[i] > 0 ? vv[i] : -vv[i]))) < 1e-6));
  } finally {
    await Promise.all([whole, pre, post].map((s) => s.release()));
  }
});

test('every formulation of the filter gradient (per-offset Gemms, im2col, a Conv with swapped axes) gives the float64 gradient and H·v', async () => {
  const convCases = CASES.filter((c) => c.name.startsWith('conv'));
  assert.ok(convCases.length >= 5);
  try {
    for (const mode of ['windows', 'im2col', 'conv'] as const) {
      FILTER_GRAD.mode = mode;
      for (const [k, { name, problem }] of convCases.entries()) {
        const ev = await ortFor(problem, 5);
        try {
          const v = new Rng(700 + k).normalVector(problem.ir.numParams);
          const ref = refGradHvp(problem, v);
          assert.ok(relErr((await ev.gradient()).grad, ref.grad) < 3e-6, `${mode}, ${name}: gradient`);
          assert.ok(relErr(await ev.hvp(v), ref.hvp) < 3e-6, `${mode}, ${name}: H·v`);
        } finally {
          await ev.released();
        }
      }
    }
  } finally {
    FILTER_GRAD.mode = 'windows';
  }
});

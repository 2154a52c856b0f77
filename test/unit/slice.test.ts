/**
 * Slices and surfaces against analytic answers: a linear model with MSE is exactly quadratic in
 * its parameters, so every slice is a known parabola and the eigenvector slice's curvature is the
 * eigenvalue; interpolation ends at the two models' own losses; filter-normalized slices are
 * invariant to the rescaling of Dinh et al. 2017 while lambda_max is not; streaming, cancellation
 * and bad input.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tf } from '../../src/engine/tf';
import { initBackend } from '../../src/engine/backend';
import { problemFrom, loadProblem, type Problem } from '../../src/engine/problem';
import { runSlice, runSurface } from '../../src/engine/surface/slice';
import { runInterpolate } from '../../src/engine/surface/checkpoints';
import { runEigs } from '../../src/engine/jobs';
import { BasinError } from '../../src/engine/errors';
import { randomDirection } from '../../src/engine/directions';
import { Rng } from '../../src/engine/rng';
import type { SurfaceResult } from '../../src/shared/results';
import type { ModelIR } from '../../src/engine/model/ir';
import { asFloat32, mlpIR, randomProblem, refGradient, refHessian, refLoss, type RefProblem } from '../reference/float64';

const EXAMPLE = path.join(__dirname, '../../examples/spiral');

before(async () => {
  await initBackend('wasm');
});


function toProblem(p: RefProblem, ir: ModelIR, threads?: number): Problem {
  const values = ir.params.map((q) => Float32Array.from(p.params.subarray(q.offset, q.offset + q.size)));
  const split = { x: Float32Array.from(p.x), xShape: p.xShape, y: Float32Array.from(p.y), yShape: p.yShape };
  return problemFrom(ir, values, p.loss, split, { test: split, spec: { threads } });
}

const quadIR = mlpIR([3, 2], ['linear']);
const quad = asFloat32(randomProblem(quadIR, 'meanSquaredError', 40, 7));

test('1-D slice of a quadratic equals the analytic parabola L0 + a g.d + a^2 d^T H d / 2', async () => {
  const problem = toProblem(quad, quadIR);
  const r = await runSlice(problem, { dirs: ['random'], x: '-1:1:21', seed: 3, norm: 'none' });
  // The same direction the job drew: the first fork of Rng(seed).
  const d = randomDirection(quadIR, problem.theta, new Rng(3).fork(), 'none', 'biasbn');
  const n = quadIR.numParams;
  const h = refHessian(quad);
  const g = refGradient(quad).grad;
  let gd = 0;
  let dhd = 0;
  for (let i = 0; i < n; i++) {
    gd += g[i] * d[i];
    for (let j = 0; j < n; j++) dhd += d[i] * h[i * n + j] * d[j];
  }
  const l0 = refLoss(quad);
  assert.equal(r.complete, true);
  assert.equal(r.directions[0].ignore, 'biasbn');
  (r.loss as number[]).forEach((v, i) => {
    const a = r.x[i];
    const want = l0 + a * gd + 0.5 * a * a * dhd;
    assert.ok(Math.abs(v - want) < 1e-5 * Math.max(1, want), `a=${a}: ${v} vs ${want}`);
  });
});

test('the slice along the top eigenvector has curvature equal to the eigenvalue', async () => {
  const problem = toProblem(quad, quadIR);
  const eigs = await runEigs(problem, { k: 1 });
  const r = await runSlice(problem, { dirs: ['eigen', 'gradient'], x: '-0.5:0.5:11' });
  assert.equal(r.directions[0].kind, 'eigen1');
  assert.ok(Math.abs((r.directions[0].eigenvalue ?? 0) - eigs.eigenvalues[0]) < 1e-4 * eigs.eigenvalues[0]);
  const curve = (r.loss as number[][])[0];
  const hStep = r.x[6] - r.x[5];
  const mid = 5;
  const curvature = (curve[mid + 1] - 2 * curve[mid] + curve[mid - 1]) / (hStep * hStep);
  assert.ok(Math.abs(curvature - eigs.eigenvalues[0]) < 2e-3 * eigs.eigenvalues[0], `${curvature} vs ${eigs.eigenvalues[0]}`);
  // Two curves, gradient second, with its unit norm.
  assert.equal((r.loss as number[][]).length, 2);
  assert.ok(Math.abs(r.directions[1].length - 1) < 1e-9);
});

test('interpolation end points equal the two models own losses', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'basin-interp-'));
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  for (const d of [a, b]) {
    fs.mkdirSync(d);
    fs.copyFileSync(path.join(EXAMPLE, 'model.json'), path.join(d, 'model.json'));
  }
  fs.copyFileSync(path.join(EXAMPLE, 'weights.bin'), path.join(a, 'weights.bin'));
  const w = new Float32Array(fs.readFileSync(path.join(EXAMPLE, 'weights.bin')).buffer.slice(0));
  const moved = w.map((v, i) => v + 0.3 * Math.sin(i));
  fs.writeFileSync(path.join(b, 'weights.bin'), Buffer.from(moved.buffer));
  const data = path.join(EXAMPLE, 'data.json');
  const pa = await loadProblem({ model: path.join(a, 'model.json'), data });
  const pb = await loadProblem({ model: path.join(b, 'model.json'), data });
  const la = pa.objective().lossAt();
  const lb = pb.objective().lossAt();
  const r = await runInterpolate(pa, { other: path.join(b, 'model.json'), x: '-0.5:1.5:5' });
  const loss = r.loss as number[];
  assert.deepEqual(r.x, [-0.5, 0, 0.5, 1, 1.5]);
  assert.ok(Math.abs(loss[1] - la) < 1e-5, `${loss[1]} vs ${la}`);
  assert.ok(Math.abs(loss[3] - lb) < 1e-5, `${loss[3]} vs ${lb}`);
  assert.ok(Math.abs((r.endpoints?.[1].loss ?? NaN) - lb) < 1e-6);
  assert.equal(r.kind, 'interpolate');
  // An incompatible second model is refused, naming both files.
  const c = path.join(dir, 'c');
  fs.mkdirSync(c);
  const json = JSON.parse(fs.readFileSync(path.join(EXAMPLE, 'model.json'), 'utf8'));
  json.modelTopology.config.layers[1].config.units = 16;
  const specs = json.weightsManifest[0].weights;
  specs[2].shape = [32, 16];
  specs[3].shape = [16];
  specs[4].shape = [16, 3];
  fs.writeFileSync(path.join(c, 'model.json'), JSON.stringify(json));
  fs.writeFileSync(path.join(c, 'weights.bin'), Buffer.alloc(4 * (2 * 32 + 32 + 32 * 16 + 16 + 16 * 3 + 3)));
  await assert.rejects(runInterpolate(pa, { other: path.join(c, 'model.json') }), (e: Error) => e instanceof BasinError && e.message.includes('c/model.json') && e.message.includes('a/model.json'));
});

test('Dinh rescaling: the filter-normalized slice is unchanged while lambda_max changes a lot', async () => {
  const ir = mlpIR([4, 8, 3], ['relu', 'linear']);
  const base = asFloat32(randomProblem(ir, 'meanSquaredError', 50, 11));
  const alpha = 5;
  const scaled = { ...base, params: Float64Array.from(base.params) };
  const [k1, b1, k2] = ir.params;
  for (let i = 0; i < k1.size; i++) scaled.params[k1.offset + i] *= alpha;
  for (let i = 0; i < b1.size; i++) scaled.params[b1.offset + i] *= alpha;
  for (let i = 0; i < k2.size; i++) scaled.params[k2.offset + i] /= alpha;
  const pa = toProblem(base, ir);
  const pb = toProblem(asFloat32(scaled), ir);
  const sa = await runSlice(pa, { dirs: ['random'], x: '-1:1:11', seed: 4 });
  const sb = await runSlice(pb, { dirs: ['random'], x: '-1:1:11', seed: 4 });
  (sa.loss as number[]).forEach((v, i) => assert.ok(Math.abs(v - (sb.loss as number[])[i]) < 1e-4 * Math.max(1, v), `${v} vs ${(sb.loss as number[])[i]}`));
  const ea = await runEigs(pa, { k: 1 });
  const eb = await runEigs(pb, { k: 1 });
  const ratio = eb.eigenvalues[0] / ea.eigenvalues[0];
  assert.ok(ratio > 3 || ratio < 1 / 3, `lambda_max ratio ${ratio}`);
});

test('surfaces stream coarse to fine, same seed gives the same surface, cancel keeps a prefix', async () => {
  const ir = mlpIR([3, 6, 2], ['tanh', 'softmax']);
  const p = asFloat32(randomProblem(ir, 'categoricalCrossentropy', 30, 2));
  const problem = toProblem(p, ir);
  const partials: SurfaceResult[] = [];
  const full = await runSurface(problem, { x: '-1:1:17', seed: 9, test: true }, { onPartial: (r) => partials.push(r as SurfaceResult) });
  assert.equal(full.complete, true);
  assert.equal(full.evaluations, 17 * 17);
  assert.ok(partials.length >= 2);
  // The first batch holds the coarse lattice, corners included.
  assert.notEqual(partials[0].loss[0][0], null);
  assert.notEqual(partials[0].loss[16][16], null);
  // Every partial is a prefix of the full result: what it has equals the final values.
  for (const part of partials) part.loss.forEach((row, iy) => row.forEach((v, ix) => v === null || assert.equal(v, full.loss[iy][ix])));
  // Train and test data are the same here, so test values equal train values; accuracy is in [0, 1].
  assert.deepEqual(full.testLoss, full.loss);
  assert.ok(full.accuracy?.flat().every((v) => v !== null && v >= 0 && v <= 1));
  assert.ok((full.directions[1].cosineBeforeOrthogonalization ?? 2) < 1);
  const again = await runSurface(problem, { x: '-1:1:17', seed: 9 });
  assert.deepEqual(again.loss, full.loss);
  const other = await runSurface(problem, { x: '-1:1:17', seed: 10 });
  assert.notDeepEqual(other.loss, full.loss);
  // Cancel after the first batch: what was computed is kept, the rest is null, nothing leaks.
  const before = tf.memory().numTensors;
  const controller = new AbortController();
  const cut = await runSurface(problem, { x: '-1:1:17', seed: 9 }, { signal: controller.signal, onPartial: () => controller.abort() });
  assert.equal(cut.complete, false);
  assert.ok(cut.evaluations > 0 && cut.evaluations < 17 * 17);
  const values = cut.loss.flat();
  assert.equal(values.filter((v) => v !== null).length, cut.evaluations);
  cut.loss.forEach((row, iy) => row.forEach((v, ix) => v === null || assert.equal(v, full.loss[iy][ix])));
  assert.equal(tf.memory().numTensors, before);
});

test('data-parallel surfaces (2 threads) equal single-thread ones', async () => {
  const ir = mlpIR([3, 8, 3], ['tanh', 'softmax']);
  const p = asFloat32(randomProblem(ir, 'categoricalCrossentropy', 700, 5));
  const problem = toProblem(p, ir);
  const par = await runSurface(problem, { x: '-1:1:5', seed: 1 });
  assert.equal(par.threads, 2);
  const single = await runSurface(toProblem(p, ir, 1), { x: '-1:1:5', seed: 1 });
  assert.equal(single.threads, 1);
  par.loss.forEach((row, iy) => row.forEach((v, ix) => assert.ok(Math.abs((v ?? NaN) - (single.loss[iy][ix] ?? NaN)) < 1e-5)));
});

test('bad grids: empty, inverted and too-large ranges are refused with a clear message', async () => {
  const problem = toProblem(quad, quadIR);
  await assert.rejects(runSlice(problem, { dirs: ['random'], x: '' }), /empty range/);
  await assert.rejects(runSlice(problem, { dirs: ['random'], x: '1:-1:5' }), /inverted range/);
  await assert.rejects(runSurface(problem, { x: '-1:1:20000' }), /^InputError: the memory for the results of a grid of 400,000,000 points is 19\.2 GB, over the limit of 500 MB \(use fewer steps\)$/);
  await assert.rejects(runSlice(problem, { dirs: ['sideways'] }), /unknown direction 'sideways'/);
  await assert.rejects(runSurface(problem, { dirs: ['eigen1', 'eigen1'] }), /two different directions/);
});

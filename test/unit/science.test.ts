/**
 * The training-dynamics claims of docs/methods.md ("Training dynamics"), shown by Basin's own training lab on the bundled
 * edge-of-stability example (a 4-32-32-2 tanh MLP with MSE on 256 samples):
 * - edge of stability (Cohen et al. 2021): progressive sharpening, then lambda_max hovering at
 *   2/lr while the loss keeps falling non-monotonically; a small step stays far below 2/lr;
 * - implicit gradient regularization (Barrett & Dherin 2021): over a fixed time, GD is O(h) from
 *   gradient flow and O(h^2) from the flow of L + (h/4)|grad L|^2 (fitted slopes);
 * - smaller batches end at lower sharpness at the same learning rate (Keskar et al. 2017);
 * - SAM ends at lower sharpness than GD from the same start (Foret et al. 2021);
 * - the gradient noise scale estimator matches the exact B_simple on linear regression, with
 *   minibatch gradients from the engine itself.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../../src/engine/backend';
import { loadProblem, problemFrom, type Problem } from '../../src/engine/problem';
import { DEFAULT_SETTINGS, train } from '../../src/engine/train/run';
import { loadCheckpoint } from '../../src/engine/directions/checkpoints';
import { exactBSimple, gradientNoiseScale } from '../../src/engine/train/noise';
import { Objective } from '../../src/engine/objective';
import { Rng } from '../../src/engine/rng';
import type { ProbeRecord, TrainSettings } from '../../src/shared/results';
import { mlpIR, randomProblem } from '../reference/float64';

const EOS = path.join(__dirname, '../../examples/edge-of-stability.basin.ts');
let problem: Problem;

before(async () => {
  await initBackend('wasm');
  problem = await loadProblem({ experiment: EOS });
});

async function run(settings: Partial<TrainSettings>): Promise<{ probes: ProbeRecord[]; all: ProbeRecord[]; theta: Float32Array }> {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'basin-science-'));
  fs.rmSync(out, { recursive: true });
  const all: ProbeRecord[] = [];
  const s: TrainSettings = { ...DEFAULT_SETTINGS, ...settings };
  const done = await train(problem, s, out, { onProbe: (r) => all.push(r) });
  assert.equal(done.status, 'completed', done.reason);
  const cp = await loadCheckpoint(path.join(out, 'checkpoints', `step-${String(s.steps).padStart(6, '0')}`, 'model.json'));
  fs.rmSync(out, { recursive: true, force: true });
  return { probes: all.filter((r) => r.lambdaMax !== undefined), all, theta: cp.theta };
}

test('edge of stability: progressive sharpening, then lambda_max hovers at 2/lr while the loss falls non-monotonically', async () => {
  const lr = 0.2;
  const { probes, all } = await run({ optimizer: 'gd', lr, steps: 1500, probeEvery: 25 });
  const threshold = 2 / lr;
  assert.equal(probes[0].threshold, threshold);
  const lam = probes.map((p) => p.lambdaMax as number);
  assert.ok(lam[0] < 0.5 * threshold, `starts well below 2/lr: ${lam[0]}`);
  // Progressive sharpening: lambda_max climbs to the threshold.
  const reach = lam.findIndex((l) => l >= 0.97 * threshold);
  assert.ok(reach > 0, `reaches 2/lr: max ${Math.max(...lam)}`);
  for (let i = 4; i <= reach; i += 4) assert.ok(lam[i] > lam[i - 4], `rising before the edge at probe ${i}`);
  // Then hovers around 2/lr (never far above) for the rest of training.
  const after = lam.slice(reach);
  assert.ok(after.length >= 0.4 * lam.length, 'the edge is reached early enough to watch it');
  assert.ok(after.every((l) => l > 0.9 * threshold && l < 1.1 * threshold), `hovers: ${after.map((l) => l.toFixed(2)).join(' ')}`);
  // The loss keeps falling overall, but not monotonically.
  const losses = all.map((r) => r.loss);
  assert.ok(losses[losses.length - 1] < losses[0] / 20);
  const ups = losses.filter((l, i) => i > 0 && l > losses[i - 1] * 1.01).length;
  assert.ok(ups >= 3, `non-monotone: ${ups} increases`);
});

test('a small step size keeps lambda_max far below 2/lr', async () => {
  const lr = 0.02;
  const { probes } = await run({ optimizer: 'gd', lr, steps: 1500, probeEvery: 100 });
  const max = Math.max(...probes.map((p) => p.lambdaMax as number));
  assert.ok(max < 0.2 * (2 / lr), `max lambda_max ${max} vs 2/lr ${2 / lr}`);
});

function distance(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}

function slope(xs: number[], ys: number[]): number {
  const lx = xs.map(Math.log);
  const ly = ys.map(Math.log);
  const mx = lx.reduce((a, b) => a + b) / lx.length;
  const my = ly.reduce((a, b) => a + b) / ly.length;
  let num = 0;
  let den = 0;
  lx.forEach((x, i) => {
    num += (x - mx) * (ly[i] - my);
    den += (x - mx) ** 2;
  });
  return num / den;
}

test('implicit gradient regularization: GD is O(h) from gradient flow and O(h^2) from the modified flow', async () => {
  const T = 1.6;
  const hFlow = 0.005; // RK4 step, far below 1/lambda_max (~0.25 here)
  const flow = (await run({ optimizer: 'flow', lr: hFlow, steps: Math.round(T / hFlow), probeEvery: 10_000 })).theta;
  const hs = [0.08, 0.04, 0.02];
  const dFlow: number[] = [];
  const dModified: number[] = [];
  for (const h of hs) {
    const gd = (await run({ optimizer: 'gd', lr: h, steps: Math.round(T / h), probeEvery: 10_000 })).theta;
    // The modified loss of Barrett & Dherin: L + (h/4)|grad L|^2, integrated as a flow.
    const modified = (await run({ optimizer: 'flow', lr: hFlow, steps: Math.round(T / hFlow), igr: h / 4, probeEvery: 10_000 })).theta;
    dFlow.push(distance(gd, flow));
    dModified.push(distance(gd, modified));
  }
  const s1 = slope(hs, dFlow);
  const s2 = slope(hs, dModified);
  assert.ok(Math.abs(s1 - 1) < 0.25, `GD vs flow: slope ${s1.toFixed(2)} (${dFlow.map((d) => d.toExponential(2)).join(', ')})`);
  assert.ok(Math.abs(s2 - 2) < 0.35, `GD vs modified flow: slope ${s2.toFixed(2)} (${dModified.map((d) => d.toExponential(2)).join(', ')})`);
  dModified.forEach((d, i) => assert.ok(d < dFlow[i] / 3, 'the modified flow is much closer'));
});

test('smaller batches end at lower sharpness than full batch at the same learning rate', async () => {
  const common = { lr: 0.1, steps: 1000, probeEvery: 1000 };
  const full = await run({ optimizer: 'gd', ...common });
  const small = await run({ optimizer: 'sgd', batchSize: 16, ...common });
  const lf = full.probes[full.probes.length - 1].lambdaMax as number;
  const ls = small.probes[small.probes.length - 1].lambdaMax as number;
  assert.ok(ls < 0.95 * lf, `batch 16: ${ls}, full batch: ${lf}`);
});

test('SAM ends at lower sharpness than plain GD from the same start', async () => {
  const common = { lr: 0.1, steps: 1000, probeEvery: 1000 };
  const gd = await run({ optimizer: 'gd', ...common });
  const sam = await run({ optimizer: 'sam', rho: 0.05, ...common });
  const lg = gd.probes[gd.probes.length - 1].lambdaMax as number;
  const lsam = sam.probes[sam.probes.length - 1].lambdaMax as number;
  assert.ok(lsam < 0.8 * lg, `SAM ${lsam} vs GD ${lg}`);
});

test('the gradient noise scale from engine minibatch gradients matches the exact B_simple (linear regression)', async () => {
  const ir = mlpIR([5, 1], ['linear']);
  const p = randomProblem(ir, 'meanSquaredError', 200, 12);
  const split = { x: Float32Array.from(p.x), xShape: p.xShape, y: Float32Array.from(p.y), yShape: p.yShape };
  const values = ir.params.map((q) => Float32Array.from(p.params.subarray(q.offset, q.offset + q.size)));
  const lin = problemFrom(ir, values, 'meanSquaredError', split);
  const obj = new Objective(ir, lin.theta, 'meanSquaredError', split);
  try {
    // Per-example gradients: a batch of one sample each.
    const per = Array.from({ length: 200 }, (_, i) => obj.batchGradient(Int32Array.of(i)).grad);
    const exact = exactBSimple(per);
    const est = await gradientNoiseScale(async (idx) => obj.batchGradient(idx).grad, 200, { rng: new Rng(5), bSmall: 8, bBig: 64, draws: 300 });
    assert.ok(Math.abs(est.bSimple - exact.bSimple) < 0.15 * exact.bSimple, `estimated ${est.bSimple}, exact ${exact.bSimple}`);
  } finally {
    obj.dispose();
  }
});

/**
 * Gradient-noise measurements (src/engine/train/noise) against exact values. The problem is linear
 * regression with per-example loss C_i(w) = (x_i . w - y_i)^2, whose per-example gradients
 * g_i = 2 (x_i . w - y_i) x_i are written out here, so the full gradient G, Sigma and Gamma = tr Sigma
 * are known exactly; minibatch gradients are means of the g_i over the sampled indices.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/engine/rng';
import { CancelledError } from '../../src/engine/linalg/operator';
import {
  exactBSimple,
  gradientNoiseScale,
  igrTerm,
  sampleIndices,
  sgdImplicitTerm,
  smithLeNoiseScale,
  type BatchGradFn,
} from '../../src/engine/train/noise';

const N = 200;
const DIM = 5;

interface Problem {
  perExample: Float64Array[];
  full: Float64Array;
  gradFn: BatchGradFn;
  /** Sizes of the batches gradFn was asked for, in order. */
  calls: number[];
}

/** y_i = x_i . w* + 0.5 noise; the gradients are taken at w = w* + shift (every coordinate), away from the optimum. */
function regression(seed: number, shift: number): Problem {
  const rng = new Rng(seed);
  const wStar = rng.normalVector(DIM);
  const w = wStar.map((v) => v + shift);
  const perExample: Float64Array[] = [];
  for (let i = 0; i < N; i++) {
    const x = rng.normalVector(DIM);
    let target = 0.5 * rng.normal();
    let pred = 0;
    for (let j = 0; j < DIM; j++) {
      target += x[j] * wStar[j];
      pred += x[j] * w[j];
    }
    const r = pred - target;
    perExample.push(x.map((v) => 2 * r * v));
  }
  const calls: number[] = [];
  const mean = (indices: ArrayLike<number>): Float64Array => {
    const g = new Float64Array(DIM);
    for (let k = 0; k < indices.length; k++) {
      const gi = perExample[indices[k]];
      for (let j = 0; j < DIM; j++) g[j] += gi[j];
    }
    return g.map((v) => v / indices.length);
  };
  const gradFn: BatchGradFn = async (indices) => {
    assert.equal(new Set(indices).size, indices.length, 'a batch repeats an index');
    calls.push(indices.length);
    return mean(indices);
  };
  return { perExample, full: mean(Array.from({ length: N }, (_, i) => i)), gradFn, calls };
}

/** Direct computation, by a different route from exactBSimple: tr Sigma = (1/N) sum |g_i|^2 - |G|^2. */
function direct(p: Problem): { bSimple: number; traceSigma: number; gradNormSq: number } {
  let meanSq = 0;
  for (const g of p.perExample) for (const v of g) meanSq += (v * v) / N;
  let gradNormSq = 0;
  for (const v of p.full) gradNormSq += v * v;
  const traceSigma = meanSq - gradNormSq;
  return { bSimple: traceSigma / gradNormSq, traceSigma, gradNormSq };
}

const relErr = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);

test('exactBSimple: hand example, rows vs row-major, and the direct computation', () => {
  // g = (1, 0), (3, 0): G = (2, 0), |G|^2 = 4, Sigma = diag(1, 0), B_simple = 1/4.
  assert.deepEqual(exactBSimple([Float64Array.of(1, 0), Float64Array.of(3, 0)]), { bSimple: 0.25, traceSigma: 1, gradNormSq: 4 });
  const p = regression(1, 0.08);
  const exact = exactBSimple(p.perExample);
  const d = direct(p);
  assert.ok(relErr(exact.traceSigma, d.traceSigma) < 1e-12, `${exact.traceSigma} vs ${d.traceSigma}`);
  assert.ok(relErr(exact.gradNormSq, d.gradNormSq) < 1e-12, `${exact.gradNormSq} vs ${d.gradNormSq}`);
  assert.ok(relErr(exact.bSimple, d.bSimple) < 1e-10);
  const rowMajor = new Float64Array(N * DIM);
  p.perExample.forEach((g, i) => rowMajor.set(g, i * DIM));
  assert.deepEqual(exactBSimple(rowMajor, DIM), exact);
  assert.throws(() => exactBSimple(rowMajor, 7), /dim/);
  assert.throws(() => exactBSimple([Float64Array.of(1, 2), Float64Array.of(1)]), /lengths/);
});

test('gradientNoiseScale (finite population, bSmall 8, bBig 64) matches the exact B_simple', async () => {
  const p = regression(1, 0.08);
  const exact = exactBSimple(p.perExample);
  const draws = 4000;
  const r = await gradientNoiseScale(p.gradFn, N, { rng: new Rng(5), bSmall: 8, bBig: 64, draws });
  const note = `est ${r.bSimple} +- ${r.stderrBSimple} vs exact ${exact.bSimple}`;
  assert.ok(Math.abs(r.bSimple - exact.bSimple) < 3 * r.stderrBSimple, note);
  assert.ok(relErr(r.bSimple, exact.bSimple) < 0.1, note);
  assert.ok(r.stderrBSimple < 0.05 * exact.bSimple, note);
  const trNote = `tr ${r.traceSigma} +- ${r.stderrTraceSigma} vs ${exact.traceSigma}`;
  assert.ok(Math.abs(r.traceSigma - exact.traceSigma) < 3 * r.stderrTraceSigma, trNote);
  const gNote = `|G|^2 ${r.gradNormSq} +- ${r.stderrGradNormSq} vs ${exact.gradNormSq}`;
  assert.ok(Math.abs(r.gradNormSq - exact.gradNormSq) < 3 * r.stderrGradNormSq, gNote);
  assert.equal(r.evaluations, 2 * draws);
  assert.equal(p.calls.length, 2 * draws);
  assert.deepEqual([p.calls[0], p.calls[1]], [64, 8]);
  assert.equal(r.finitePopulation, true);
  assert.deepEqual([r.bSmall, r.bBig, r.draws], [8, 64, draws]);
});

test('gradientNoiseScale: the uncorrected estimator is biased at bBig = 150 of 200; the corrected one is not', async () => {
  const p = regression(1, 0.08);
  const exact = exactBSimple(p.perExample);
  const opts = { bSmall: 8, bBig: 150, draws: 4000 };
  const cor = await gradientNoiseScale(p.gradFn, N, { ...opts, rng: new Rng(11) });
  const unc = await gradientNoiseScale(p.gradFn, N, { ...opts, rng: new Rng(11), finitePopulation: false });
  // Same batches, so the two are tied by algebra: tr_unc = N/(N-1) tr_cor, |G|^2_unc = |G|^2_cor - tr_cor/(N-1).
  assert.ok(relErr(unc.traceSigma, (N / (N - 1)) * cor.traceSigma) < 1e-9);
  assert.ok(relErr(unc.gradNormSq, cor.gradNormSq - cor.traceSigma / (N - 1)) < 1e-9);
  const note =
    `corrected ${cor.bSimple} +- ${cor.stderrBSimple}, uncorrected ${unc.bSimple} +- ${unc.stderrBSimple}, exact ${exact.bSimple}`;
  assert.ok(Math.abs(cor.bSimple - exact.bSimple) < 3 * cor.stderrBSimple, note);
  assert.ok(relErr(cor.bSimple, exact.bSimple) < 0.1, note);
  assert.ok(unc.bSimple - exact.bSimple > 3 * unc.stderrBSimple, note);
  assert.ok(Math.abs(unc.bSimple - exact.bSimple) > 3 * Math.abs(cor.bSimple - exact.bSimple), note);
  // Its expected excess: (N/(N-1)) / (1 - B_simple/(N-1)) - 1, about 21% here.
  const predicted = N / (N - 1) / (1 - exact.bSimple / (N - 1)) - 1;
  assert.ok(predicted > 0.15, `predicted bias ${predicted}`);
  assert.ok(Math.abs(unc.bSimple / exact.bSimple - 1 - predicted) < 0.1, `${note}, predicted excess ${predicted}`);
});

test('gradientNoiseScale: bBig = n uses the full gradient once, so |G|^2 is exact', async () => {
  const p = regression(2, 0.3);
  const exact = exactBSimple(p.perExample);
  const draws = 6000;
  const r = await gradientNoiseScale(p.gradFn, N, { rng: new Rng(3), bSmall: 8, bBig: N, draws });
  assert.equal(r.evaluations, draws + 1);
  assert.deepEqual([p.calls[0], p.calls[1], p.calls.length], [N, 8, draws + 1]);
  assert.ok(relErr(r.gradNormSq, exact.gradNormSq) < 1e-12);
  assert.ok(r.stderrGradNormSq < 1e-12 * exact.gradNormSq);
  const trNote = `tr ${r.traceSigma} +- ${r.stderrTraceSigma} vs ${exact.traceSigma}`;
  assert.ok(Math.abs(r.traceSigma - exact.traceSigma) < 3 * r.stderrTraceSigma, trNote);
  assert.ok(relErr(r.bSimple, exact.bSimple) < 0.1, `${r.bSimple} vs ${exact.bSimple}`);
});

test('gradientNoiseScale: argument checks, progress and cancellation', async () => {
  const p = regression(1, 0.3);
  const rng = new Rng(0);
  await assert.rejects(gradientNoiseScale(p.gradFn, N, { rng, bSmall: 8, bBig: 8 }), /bSmall < bBig/);
  await assert.rejects(gradientNoiseScale(p.gradFn, N, { rng, bSmall: 8, bBig: N + 1 }), /bBig/);
  await assert.rejects(gradientNoiseScale(p.gradFn, N, { rng, bSmall: 8, bBig: 16, draws: 0 }), /draws/);
  const progress: number[] = [];
  await gradientNoiseScale(p.gradFn, N, { rng, bSmall: 2, bBig: 4, draws: 3, onProgress: (done, total) => progress.push(done / total) });
  assert.deepEqual(progress, [1, 2, 3, 4, 5, 6].map((k) => k / 6));
  const ctl = new AbortController();
  ctl.abort();
  await assert.rejects(gradientNoiseScale(p.gradFn, N, { rng, bSmall: 2, bBig: 4, signal: ctl.signal }), CancelledError);
  await assert.rejects(sgdImplicitTerm(p.gradFn, p.full, N, { rng, batchSize: 4, lr: 0.1, signal: ctl.signal }), CancelledError);
});

test('sgdImplicitTerm matches (eps/4)(N - B)/(B (N - 1)) Gamma; B = N gives 0', async () => {
  const p = regression(1, 0.08);
  const gamma = exactBSimple(p.perExample).traceSigma;
  const lr = 0.1;
  const b = 16;
  const draws = 4000;
  const want = (lr / 4) * ((N - b) / (b * (N - 1))) * gamma;
  const r = await sgdImplicitTerm(p.gradFn, p.full, N, { rng: new Rng(9), batchSize: b, lr, draws });
  const note = `term ${r.term} +- ${r.stderr} vs exact ${want}`;
  assert.ok(Math.abs(r.term - want) < 3 * r.stderr, note);
  assert.ok(relErr(r.term, want) < 0.1, note);
  assert.ok(r.stderr < 0.03 * want, note);
  assert.ok(r.gammaEstimate !== undefined && r.gammaStderr !== undefined);
  assert.ok(Math.abs(r.gammaEstimate - gamma) < 3 * r.gammaStderr, `Gamma ${r.gammaEstimate} +- ${r.gammaStderr} vs ${gamma}`);
  assert.ok(relErr(r.term, (lr / 4) * r.meanSqDeviation) < 1e-15);
  assert.ok(relErr(r.igr, (lr / 4) * exactBSimple(p.perExample).gradNormSq) < 1e-12);
  assert.equal(r.evaluations, draws);
  assert.ok(p.calls.every((c) => c === b));

  const throwing: BatchGradFn = async () => {
    throw new Error('B = N must not evaluate batches');
  };
  const all = await sgdImplicitTerm(throwing, p.full, N, { rng: new Rng(9), batchSize: N, lr, draws });
  assert.equal(all.term, 0);
  assert.equal(all.stderr, 0);
  assert.equal(all.gammaEstimate, undefined);
  assert.equal(all.evaluations, 0);
  await assert.rejects(sgdImplicitTerm(p.gradFn, p.full, N, { rng: new Rng(9), batchSize: N + 1, lr }), /batchSize/);
});

test('sampleIndices: distinct, in range, deterministic per seed, uniform in value and position', () => {
  const a = sampleIndices(1000, 100, new Rng(42));
  assert.equal(a.length, 100);
  assert.equal(new Set(a).size, 100);
  assert.ok(a.every((i) => i >= 0 && i < 1000));
  assert.deepEqual(sampleIndices(1000, 100, new Rng(42)), a);
  assert.notDeepEqual(sampleIndices(1000, 100, new Rng(43)), a);
  assert.deepEqual([...sampleIndices(50, 50, new Rng(1))].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));
  assert.equal(sampleIndices(5, 0, new Rng(1)).length, 0);
  assert.throws(() => sampleIndices(5, 6, new Rng(1)), /count/);
  assert.throws(() => sampleIndices(5.5, 1, new Rng(1)), /n must/);

  // Chi-square with 9 degrees of freedom (mean 9, sd ~4.2); 40 is exceeded with probability ~5e-6.
  const n = 10;
  const count = 3;
  const reps = 20000;
  const rng = new Rng(7);
  const member = new Array<number>(n).fill(0);
  const first = new Array<number>(n).fill(0);
  for (let r = 0; r < reps; r++) {
    const s = sampleIndices(n, count, rng);
    for (const i of s) member[i]++;
    first[s[0]]++;
  }
  const chi2 = (obs: number[], expected: number): number =>
    obs.reduce((acc, o) => acc + ((o - expected) * (o - expected)) / expected, 0);
  assert.ok(chi2(member, (reps * count) / n) < 40, `membership ${member}`);
  assert.ok(chi2(first, reps / n) < 40, `first position ${first}`);
  // And a deliberately biased sampler would fail the same check.
  const skewed = member.map((m, i) => (i === 0 ? m + 600 : m));
  assert.ok(chi2(skewed, (reps * count) / n) > 40);
});

test('igrTerm and smithLeNoiseScale values', () => {
  assert.equal(igrTerm(Float64Array.of(3, 4), 0.2), 1.25);
  assert.equal(igrTerm(new Float64Array(3), 0.2), 0);
  const plain = smithLeNoiseScale(0.1, 50000, 128);
  assert.ok(Math.abs(plain.noiseScale - 38.9625) < 1e-12, `${plain.noiseScale}`);
  assert.ok(Math.abs(plain.approx - 39.0625) < 1e-12, `${plain.approx}`);
  const mom = smithLeNoiseScale(0.1, 50000, 128, 0.9);
  assert.ok(Math.abs(mom.noiseScale - 389.625) < 1e-9, `${mom.noiseScale}`);
  assert.ok(Math.abs(mom.approx - 390.625) < 1e-9, `${mom.approx}`);
  assert.equal(smithLeNoiseScale(0.1, 64, 64).noiseScale, 0);
  assert.throws(() => smithLeNoiseScale(0.1, 100, 10, 1), /momentum/);
  assert.throws(() => smithLeNoiseScale(0.1, 100, 0), /positive/);
});

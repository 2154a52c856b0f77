// Numerical tests of the linear-algebra core against exactly known answers: spectra built as
// Q diag(lambda) Q^T, closed-form tridiagonal spectra, exact traces and exact polynomial moments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/engine/rng';
import {
  CancelledError,
  dot,
  hutchinson,
  hutchpp,
  lanczos,
  lanczosTridiagonal,
  norm,
  orthonormalize,
  powerIteration,
  slq,
  spectralDensity,
  symmetricEigen,
  tridiagonalEigen,
  tridiagonalEigenRows,
  tridiagonalEigenvalues,
  tridiagonalize,
} from '../../src/engine/linalg';
import type { LinearOperator } from '../../src/engine/linalg';
import { composeSpectrum, DenseOperator, matrixWithSpectrum, randomOrthogonal } from '../helpers/linalg';

// ---------- helpers ----------

function uniform(rng: Rng, count: number, lo: number, hi: number): number[] {
  return Array.from({ length: count }, () => lo + (hi - lo) * rng.uniform());
}

function sortedDesc(xs: readonly number[]): number[] {
  return [...xs].sort((a, b) => b - a);
}

function column(q: Float64Array, n: number, j: number): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => q[i * n + j]);
}

function absCos(a: Float64Array, b: Float64Array): number {
  return Math.abs(dot(a, b)) / (norm(a) * norm(b));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function denseTrace(a: Float64Array, n: number): number {
  let t = 0;
  for (let i = 0; i < n; i++) t += a[i * n + i];
  return t;
}

/** A test matrix with known spectrum and eigenvectors (eigenvector j = column j of q). */
interface Known {
  n: number;
  eigs: number[];
  q: Float64Array;
  a: Float64Array;
  op: DenseOperator;
}

function known(eigs: number[], seed: number): Known {
  const n = eigs.length;
  const q = randomOrthogonal(n, new Rng(seed));
  const a = composeSpectrum(q, eigs);
  return { n, eigs, q, a, op: new DenseOperator(a, n) };
}

/** The docs/methods.md matrix: 1000-dim, top eigenvalues 100, 90, 80, 70, 60 over a bulk uniform in [0, 10]. */
let scienceCache: Known | undefined;
function scienceMatrix(): Known {
  if (!scienceCache) {
    const eigs = [100, 90, 80, 70, 60, ...uniform(new Rng(11), 995, 0, 10)];
    scienceCache = known(eigs, 12);
  }
  return scienceCache;
}

function relErrors(values: readonly number[], exact: readonly number[]): number[] {
  return values.map((v, i) => Math.abs(v - exact[i]) / Math.abs(exact[i]));
}

function assertBoundsHold(
  values: readonly number[],
  bounds: readonly number[],
  exact: readonly number[],
  what: string,
): void {
  values.forEach((v, i) => {
    const err = Math.abs(v - exact[i]);
    assert.ok(err <= bounds[i], `${what}: |theta_${i} - lambda_${i}| = ${err} exceeds its bound ${bounds[i]}`);
  });
}

// ---------- dense ----------

test('randomOrthogonal is orthogonal to machine precision', () => {
  const n = 80;
  const q = randomOrthogonal(n, new Rng(1));
  let worst = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += q[k * n + i] * q[k * n + j];
      worst = Math.max(worst, Math.abs(s - (i === j ? 1 : 0)));
    }
  }
  assert.ok(worst < 1e-13, `Q^T Q - I = ${worst}`);
});

test('symmetricEigen recovers a known spectrum with repeated, zero and negative eigenvalues', () => {
  const rng = new Rng(2);
  const eigs = [7, 2.5, 2.5, 2.5, 0, 0, -1e-3, -4, ...uniform(rng, 52, -3, 6)];
  const n = eigs.length;
  const a = matrixWithSpectrum(eigs, rng);
  const { values, vectors } = symmetricEigen(a, n);
  const valueErr = maxAbsDiff(values, sortedDesc(eigs));
  assert.ok(valueErr < 1e-12 * 7, `eigenvalue error ${valueErr}`);
  // A V = V diag(values) and V^T V = I.
  let resid = 0;
  let orth = 0;
  for (let j = 0; j < n; j++) {
    const v = column(vectors, n, j);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += a[i * n + k] * v[k];
      resid = Math.max(resid, Math.abs(s - values[j] * v[i]));
    }
    for (let l = 0; l < n; l++) orth = Math.max(orth, Math.abs(dot(v, column(vectors, n, l)) - (l === j ? 1 : 0)));
  }
  assert.ok(resid < 1e-12, `|A v - lambda v| = ${resid}`);
  assert.ok(orth < 1e-13, `V^T V - I = ${orth}`);
});

test('symmetricEigen eigenvectors match the known ones; 2 x 2 exact; n = 200', () => {
  const { values: v2, vectors: w2 } = symmetricEigen(Float64Array.from([2, 1, 1, 2]), 2);
  assert.ok(maxAbsDiff(v2, [3, 1]) < 1e-15);
  assert.ok(Math.abs(Math.abs(w2[0]) - Math.SQRT1_2) < 1e-15 && Math.abs(w2[0] - w2[2]) < 1e-15);

  const eigs = Array.from({ length: 200 }, (_, i) => 10 - 0.05 * i + (i % 7) * 1e-3);
  const k = known(eigs, 3);
  const { values, vectors } = symmetricEigen(k.a, k.n);
  const valueErr = maxAbsDiff(values, sortedDesc(eigs));
  assert.ok(valueErr < 1e-10, `n = 200 eigenvalue error ${valueErr}`);
  // eigs are distinct (gaps >= 1e-3), so each eigenvector is determined up to sign.
  const order = eigs.map((_, i) => i).sort((x, y) => eigs[y] - eigs[x]);
  let worst = 0;
  order.forEach((orig, j) => {
    worst = Math.max(worst, 1 - absCos(column(vectors, k.n, j), column(k.q, k.n, orig)));
  });
  assert.ok(worst < 1e-9, `1 - |cos| = ${worst}`);
});

test('orthonormalize drops dependent columns and is orthonormal', () => {
  const rng = new Rng(4);
  const n = 30;
  const a = rng.normalVector(n);
  const b = rng.normalVector(n);
  const c = Float64Array.from(a, (x, i) => 2 * x - 3 * b[i]); // in span(a, b)
  const d = rng.normalVector(n);
  const q = orthonormalize([a, b, c, new Float64Array(n), d]);
  assert.equal(q.length, 3);
  for (let i = 0; i < q.length; i++) {
    for (let j = 0; j < q.length; j++) assert.ok(Math.abs(dot(q[i], q[j]) - (i === j ? 1 : 0)) < 1e-14);
  }
  const against = orthonormalize([rng.normalVector(n)], { against: q });
  assert.equal(against.length, 1);
  for (const qi of q) assert.ok(Math.abs(dot(qi, against[0])) < 1e-14);
});

// ---------- tridiagonal ----------

test('tridiagonal eigen: the discrete Laplacian in closed form (values and vectors)', () => {
  const m = 50;
  const alpha = new Array<number>(m).fill(2);
  const beta = new Array<number>(m - 1).fill(-1);
  const { values, vectors } = tridiagonalEigen(alpha, beta);
  // lambda_k = 2 - 2 cos(k pi / (m + 1)), eigenvector_j = sin(j k pi / (m + 1)), k = 1..m.
  for (let i = 0; i < m; i++) {
    const kk = m - i; // descending order
    const exact = 2 - 2 * Math.cos((kk * Math.PI) / (m + 1));
    assert.ok(Math.abs(values[i] - exact) < 1e-13, `lambda_${kk}: ${values[i]} vs ${exact}`);
    const u = Float64Array.from({ length: m }, (_, j) => Math.sin(((j + 1) * kk * Math.PI) / (m + 1)));
    const v = column(vectors, m, i);
    assert.ok(1 - absCos(u, v) < 1e-12, `eigenvector ${kk}`);
    assert.ok(Math.abs(norm(v) - 1) < 1e-13);
  }
});

test('tridiagonal eigen: Householder tridiagonal of a matrix with known spectrum; rows; splits', () => {
  const rng = new Rng(5);
  const eigs = [50, 49.999, 12, 3, 3, 0.5, -0.25, -8, ...uniform(rng, 92, -5, 5)];
  const n = eigs.length;
  const { alpha, beta, q } = tridiagonalize(matrixWithSpectrum(eigs, rng), n);
  // Q is orthogonal, so the tridiagonal T = Q^T A Q has the spectrum eigs exactly.
  const full = tridiagonalEigen(alpha, beta);
  const valueErr = maxAbsDiff(full.values, sortedDesc(eigs));
  assert.ok(valueErr < 1e-10 * 50, `error ${valueErr}`);
  assert.ok(maxAbsDiff(tridiagonalEigenvalues(alpha, beta), full.values) < 1e-12);
  const { values, rows } = tridiagonalEigenRows(alpha, beta, [0, n - 1]);
  assert.ok(maxAbsDiff(values, full.values) < 1e-12);
  // Row-selective vectors equal the corresponding rows of the full eigenvector matrix (up to sign per column).
  for (let i = 0; i < n; i++) {
    const sgn = Math.sign(full.vectors[i]) * Math.sign(rows[0][i]) || 1;
    assert.ok(Math.abs(rows[0][i] * sgn - full.vectors[i]) < 1e-10, `first row, column ${i}`);
    const lastFull = full.vectors[(n - 1) * n + i];
    assert.ok(Math.abs(Math.abs(rows[1][i]) - Math.abs(lastFull)) < 1e-10, `last row, column ${i}`);
  }
  // The tridiagonalising Q is orthogonal to rounding.
  assert.ok(Math.abs(dot(column(q, n, 0), column(q, n, 1))) < 1e-14);

  // A zero off-diagonal splits the matrix: spectrum of diag blocks.
  const split = tridiagonalEigenvalues([1, 1, 5, 5], [2, 0, 3]);
  assert.ok(maxAbsDiff(split, [8, 3, 2, -1]) < 1e-14);
});

// ---------- Lanczos ----------

test('Lanczos (docs/methods.md claim): top-5 of the 1000-dim matrix to < 1e-5 in 12 products, < 1e-10 in 20', async () => {
  const k = scienceMatrix();
  const top = k.eigs.slice(0, 5);
  const errAt = async (products: number, seed: number): Promise<number> => {
    const r = await lanczos(k.op, { k: 5, which: 'top', maxIter: products, tol: 0, rng: new Rng(seed) });
    assert.ok(r.matvecs <= products);
    assertBoundsHold(r.eigenvalues, r.errorBounds, top, `${products} products, seed ${seed}`);
    return Math.max(...relErrors(r.eigenvalues, top));
  };
  const at10: number[] = [];
  for (let seed = 1; seed <= 5; seed++) {
    at10.push(await errAt(10, seed));
    const at12 = await errAt(12, seed);
    const at20 = await errAt(20, seed);
    assert.ok(at12 < 1e-5, `12 products, seed ${seed}: ${at12}`); // measured 1.9e-11 .. 3.1e-8
    assert.ok(at20 < 1e-10, `20 products, seed ${seed}: ${at20}`); // measured 2.2e-15 .. 4.4e-15
  }
  // After 10 products the error depends on the start vector (measured 1.1e-5 .. 2.4e-2; docs/methods.md: 6e-6).
  const median10 = [...at10].sort((a, b) => a - b)[2];
  assert.ok(median10 < 1e-4, `median error after 10 products ${median10}`);
});

test('Lanczos stops on the residual test, bounds hold, eigenvectors match', async () => {
  const k = scienceMatrix();
  const top = k.eigs.slice(0, 5);
  const tol = 1e-6;
  const r = await lanczos(k.op, { k: 5, which: 'top', tol, rng: new Rng(2) });
  assert.ok(r.converged);
  assert.equal(r.matvecs, r.iterations);
  assert.ok(r.matvecs <= 16, `took ${r.matvecs} products`); // measured 13
  r.residuals.forEach((res, i) => assert.ok(res <= tol * Math.abs(r.eigenvalues[i]), `residual ${i} = ${res}`));
  // The residual norm reported is the true one.
  for (let i = 0; i < 5; i++) {
    const ay = await k.op.matvec(r.eigenvectors[i]);
    const trueRes = norm(Float64Array.from(ay, (x, t) => x - r.eigenvalues[i] * r.eigenvectors[i][t]));
    const resErr = Math.abs(trueRes - r.residuals[i]);
    assert.ok(resErr <= 1e-3 * r.residuals[i] + 1e-11, `residual ${i}: ${trueRes} vs ${r.residuals[i]}`);
    assert.ok(Math.abs(norm(r.eigenvectors[i]) - 1) < 1e-12);
    assert.ok(absCos(r.eigenvectors[i], column(k.q, k.n, i)) > 1 - 1e-8, `eigenvector ${i}`);
  }
  assertBoundsHold(r.eigenvalues, r.errorBounds, top, 'default stop');
  assert.ok(Math.max(...relErrors(r.eigenvalues, top)) < 1e-10);
  assert.deepEqual(r.ritzValues.slice(0, 5), r.eigenvalues);
  // It stopped at the first step that met the test: one product fewer does not converge.
  const earlier = await lanczos(k.op, { k: 5, which: 'top', tol, rng: new Rng(2), maxIter: r.matvecs - 1 });
  assert.equal(earlier.converged, false);
  assert.ok(earlier.residuals.some((res, i) => res > tol * Math.abs(earlier.eigenvalues[i])));
  // minIter delays the test.
  const later = await lanczos(k.op, { k: 5, which: 'top', tol, rng: new Rng(2), minIter: 18 });
  assert.equal(later.matvecs, 18);
});

test('Lanczos bottom-k on an indefinite matrix finds the most negative eigenvalues, ascending', async () => {
  const rng = new Rng(6);
  const eigs = [-50, -40, -30, -20, -10, 60, ...uniform(rng, 394, -5, 20)];
  const k = known(eigs, 7);
  const r = await lanczos(k.op, { k: 3, which: 'bottom', rng: new Rng(3) });
  assert.ok(r.converged);
  assert.equal(r.eigenvalues.length, 3);
  assertBoundsHold(r.eigenvalues, r.errorBounds, [-50, -40, -30], 'bottom-3');
  assert.ok(maxAbsDiff(r.eigenvalues, [-50, -40, -30]) < 1e-9, `bottom values ${r.eigenvalues}`);
  for (let i = 0; i < 3; i++) assert.ok(absCos(r.eigenvectors[i], column(k.q, k.n, i)) > 1 - 1e-8);
  // The ritzValues are all of T_m, descending, and include the top outlier too.
  assert.ok(Math.abs(r.ritzValues[0] - 60) < 1e-6);
  // Top-2 of the same matrix: 60, then the bulk edge near 20.
  const t = await lanczos(k.op, { k: 1, which: 'top', rng: new Rng(3) });
  assertBoundsHold(t.eigenvalues, t.errorBounds, [60], 'top-1');
});

test('Lanczos error bounds stay honest on a near-degenerate pair (gap 1e-6)', async () => {
  const rng = new Rng(5);
  const eigs = [1, 1 - 1e-6, ...uniform(rng, 298, 0, 0.9)];
  const k = known(eigs, 8);
  let unresolvedSeen = 0;
  for (let products = 26; products <= 46; products += 2) {
    const r = await lanczos(k.op, { k: 2, which: 'top', maxIter: products, tol: 0, rng: new Rng(3) });
    const [t1, t2] = r.eigenvalues;
    if (t2 > 0.999) {
      // Both members of the pair are represented: every bound must hold.
      assertBoundsHold(r.eigenvalues, r.errorBounds, [1, 1 - 1e-6], `${products} products`);
      if (t1 - t2 < r.residuals[0]) {
        // Not resolved: the Ritz gap is below the residual, so the squared bound must not be used.
        unresolvedSeen++;
        assert.equal(r.errorBounds[0], r.residuals[0]);
        assert.ok(r.errorBounds[0] > 1e-7, `bound ${r.errorBounds[0]} is tiny for an unresolved pair`);
      }
    }
    // theta_1 always has a bound covering lambda_1 once its residual is below the distance to the bulk.
    assert.ok(Math.abs(t1 - 1) <= Math.max(r.errorBounds[0], r.residuals[0]));
  }
  assert.ok(unresolvedSeen >= 3, `only ${unresolvedSeen} unresolved states seen`);
  // With the default tolerance the run stops with both resolved and honest bounds.
  const d = await lanczos(k.op, { k: 2, which: 'top', rng: new Rng(3) });
  assert.ok(d.converged);
  assertBoundsHold(d.eigenvalues, d.errorBounds, [1, 1 - 1e-6], 'default');
});

test('Lanczos warm start with the exact top eigenvector converges in one or two products', async () => {
  const k = scienceMatrix();
  const v0 = column(k.q, k.n, 0);
  const r = await lanczos(k.op, { k: 1, which: 'top', v0 });
  assert.ok(r.converged);
  assert.ok(r.matvecs <= 2, `took ${r.matvecs}`);
  assert.ok(Math.abs(r.eigenvalues[0] - 100) < 1e-11);
  assert.ok(Math.abs(r.eigenvalues[0] - 100) <= r.errorBounds[0]);
  assert.ok(absCos(r.eigenvectors[0], v0) > 1 - 1e-12);
});

test('Lanczos restarts at invariant subspaces (multiplicity) and handles maxIter = dim', async () => {
  // 3 distinct eigenvalues: the Krylov space of any start vector is 3-dimensional.
  const eigs = [...new Array<number>(20).fill(3), ...new Array<number>(20).fill(1), ...new Array<number>(10).fill(-2)];
  const k = known(eigs, 9);
  const r = await lanczos(k.op, { k: 2, which: 'top', rng: new Rng(1) });
  assert.ok(r.converged);
  assert.ok(maxAbsDiff(r.eigenvalues, [3, 3]) < 1e-12, `got ${r.eigenvalues}`);
  assert.ok(Math.abs(dot(r.eigenvectors[0], r.eigenvectors[1])) < 1e-10);
  const stop = await lanczosTridiagonal(k.op, new Rng(2).normalVector(50), 20, { onBreakdown: 'stop' });
  assert.equal(stop.alpha.length, 3);
  assert.ok(stop.exhausted);

  const small = known([4, 3, 2, 1, 0, -1], 10);
  const all = await lanczos(small.op, { k: 6, which: 'bottom', rng: new Rng(1) });
  assert.ok(all.converged);
  assert.ok(maxAbsDiff(all.eigenvalues, [-1, 0, 1, 2, 3, 4]) < 1e-13);
  assertBoundsHold(all.eigenvalues, all.errorBounds, [-1, 0, 1, 2, 3, 4], 'dim 6');
});

test('Lanczos reports progress and cancels with CancelledError', async () => {
  const k = scienceMatrix();
  const seen: Array<[number, number]> = [];
  const ac = new AbortController();
  await assert.rejects(
    lanczos(k.op, {
      k: 5,
      which: 'top',
      maxIter: 40,
      tol: 0,
      signal: ac.signal,
      onProgress: (done, total) => {
        seen.push([done, total]);
        if (done === 3) ac.abort();
      },
    }),
    CancelledError,
  );
  assert.deepEqual(seen, [
    [1, 40],
    [2, 40],
    [3, 40],
  ]);
  const pre = new AbortController();
  pre.abort();
  await assert.rejects(lanczos(k.op, { k: 1, which: 'top', signal: pre.signal }), CancelledError);
  await assert.rejects(hutchpp(k.op, { matvecs: 9, signal: pre.signal }), CancelledError);
  await assert.rejects(slq(k.op, { steps: 5, runs: 1, signal: pre.signal }), CancelledError);
});

test('Lanczos respects the operator noise floor', async () => {
  const base = known([10, 5, ...uniform(new Rng(3), 98, 0, 1)], 11);
  const noisy: LinearOperator = { dim: base.n, relativeNoise: 1e-4, matvec: (v) => base.op.matvec(v) };
  const r = await lanczos(noisy, { k: 1, which: 'top', tol: 1e-12, rng: new Rng(1) });
  assert.ok(r.converged);
  assert.ok(r.errorBounds[0] >= 1e-4 * Math.abs(r.eigenvalues[0]));
  assert.ok(Math.abs(r.eigenvalues[0] - 10) <= r.errorBounds[0]);
  // The Ritz residual reaches the noise floor; the reported residual bound adds the products' noise.
  assert.ok(r.ritzResiduals[0] <= 1e-3);
  assert.ok(r.noise >= 1e-4 * Math.abs(r.eigenvalues[0]));
  assert.equal(r.residuals[0], r.ritzResiduals[0] + r.noise);
  assert.ok(Math.abs(r.eigenvalues[0] - 10) <= r.residuals[0]);
});

// ---------- power iteration ----------

test('PyHessian power iteration is far less accurate than Lanczos at equal products', async () => {
  const k = scienceMatrix();
  const p = await powerIteration(k.op, { rng: new Rng(1) });
  const powerErr = Math.abs(p.eigenvalue - 100) / 100;
  assert.ok(p.converged);
  assert.ok(p.matvecs >= 10 && p.matvecs <= 100, `power used ${p.matvecs}`);
  assert.ok(powerErr > 1e-4 && powerErr < 1e-2, `power error ${powerErr}`); // measured 4.0e-3 after 25 products
  const l = await lanczos(k.op, { k: 1, which: 'top', maxIter: p.matvecs, tol: 0, rng: new Rng(1) });
  const lanczosErr = Math.abs(l.eigenvalues[0] - 100) / 100;
  assert.ok(l.matvecs <= p.matvecs);
  assert.ok(lanczosErr < 1e-4 * powerErr, `lanczos ${lanczosErr} vs power ${powerErr}`);
});

test('power iteration reproduces PyHessian warts: returns the previous Rayleigh quotient', async () => {
  const op = new DenseOperator(Float64Array.from([2, 0, 0, 1]), 2);
  // v = (1, 1)/sqrt(2): first Rayleigh quotient 1.5, second 1.8; with tol = 1 the test fires at the
  // second product and PyHessian returns the first.
  const p = await powerIteration(op, { v0: Float64Array.from([1, 1]), tol: 1 });
  assert.equal(p.matvecs, 2);
  assert.ok(p.converged);
  assert.ok(Math.abs(p.eigenvalue - 1.5) < 1e-5, `eigenvalue ${p.eigenvalue}`);
  const q = await powerIteration(op, { v0: Float64Array.from([1, 1]), maxIter: 3, tol: 0 });
  assert.equal(q.converged, false);
  assert.equal(q.matvecs, 3);
  // Deflation against the top eigenvector finds the second one.
  const d = await powerIteration(op, { against: [Float64Array.from([1, 0])], rng: new Rng(2) });
  assert.ok(Math.abs(d.eigenvalue - 1) < 1e-4, `deflated eigenvalue ${d.eigenvalue}`); // the +1e-6 shortens v
});

// ---------- trace ----------

test('Hutchinson is unbiased, its variance is 2(|A|_F^2 - sum A_ii^2) per sample, stderr calibrated', async () => {
  const rng = new Rng(13);
  const eigs = uniform(rng, 50, -1, 3);
  const k = known(eigs, 14);
  const exact = eigs.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(denseTrace(k.a, k.n) - exact) < 1e-12);
  let fro2 = 0;
  let diag2 = 0;
  for (let i = 0; i < k.n * k.n; i++) fro2 += k.a[i] * k.a[i];
  for (let i = 0; i < k.n; i++) diag2 += k.a[i * k.n + i] ** 2;
  const variance = 2 * (fro2 - diag2);

  const seeds = 300;
  const m = 10;
  const all: number[] = [];
  let meanStderr2 = 0;
  let covered = 0;
  for (let s = 0; s < seeds; s++) {
    const h = await hutchinson(k.op, { matvecs: m, rng: new Rng(1000 + s) });
    assert.equal(h.samples.length, m);
    assert.equal(h.matvecs, m);
    all.push(...h.samples);
    meanStderr2 += (h.stderr * h.stderr) / seeds;
    if (Math.abs(h.trace - exact) <= 2 * h.stderr) covered++;
  }
  const N = all.length;
  const mean = all.reduce((a, b) => a + b, 0) / N;
  const sampleVar = all.reduce((a, x) => a + (x - mean) ** 2, 0) / (N - 1);
  assert.ok(Math.abs(mean - exact) < 4 * Math.sqrt(variance / N), `mean ${mean} vs ${exact}`);
  assert.ok(Math.abs(sampleVar / variance - 1) < 0.15, `variance ${sampleVar} vs ${variance}`);
  assert.ok(Math.abs((meanStderr2 * m) / variance - 1) < 0.15, `stderr^2 m ${meanStderr2 * m} vs ${variance}`);
  // +-2 stderr with 9 degrees of freedom covers about 92%.
  assert.ok(covered / seeds > 0.85 && covered / seeds < 0.98, `coverage ${covered / seeds}`);
});

test('Hutch++ beats Hutchinson on a fast-decaying PSD spectrum and is exact on low rank', async () => {
  const n = 300;
  const eigs = Array.from({ length: n }, (_, i) => 1 / (i + 1) ** 2);
  const k = known(eigs, 15);
  const exact = eigs.reduce((a, b) => a + b, 0);
  const budget = 30;
  let errH = 0;
  let errPP = 0;
  let meanPP = 0;
  const seeds = 30;
  for (let s = 0; s < seeds; s++) {
    const h = await hutchinson(k.op, { matvecs: budget, rng: new Rng(2000 + s) });
    const pp = await hutchpp(k.op, { matvecs: budget, rng: new Rng(2000 + s) });
    assert.equal(pp.matvecs, budget);
    assert.equal(pp.sketchRank, 10);
    assert.ok(Math.abs(pp.exactPart + pp.residualPart - pp.trace) < 1e-15);
    errH += Math.abs(h.trace - exact) / seeds;
    errPP += Math.abs(pp.trace - exact) / seeds;
    meanPP += pp.trace / seeds;
  }
  assert.ok(errH / errPP >= 5, `Hutchinson ${errH} vs Hutch++ ${errPP}: ratio ${errH / errPP}`);
  assert.ok(Math.abs(meanPP - exact) < 0.02 * exact);

  // Rank 8 PSD: the 10-column sketch spans the range, so the estimate is exact.
  const lowEigs = [5, 4, 3, 2.5, 2, 1, 0.5, 0.25, ...new Array<number>(92).fill(0)];
  const low = known(lowEigs, 16);
  const lowExact = 18.25;
  const r = await hutchpp(low.op, { matvecs: 30, rng: new Rng(3) });
  assert.equal(r.sketchRank, 8);
  assert.equal(r.matvecs, 30);
  assert.ok(Math.abs(r.trace - lowExact) < 1e-9, `low-rank trace ${r.trace}`);
  assert.ok(r.stderr < 1e-9);
  const h = await hutchinson(low.op, { matvecs: 30, rng: new Rng(3) });
  assert.ok(Math.abs(h.trace - lowExact) > 1e-3, 'Hutchinson alone should not be exact');
});

test('Hutch++ edge cases: budget below 3 falls back to Hutchinson; a sketch spanning R^n is exact', async () => {
  const k = known([3, -1, 2, 0.5, 7], 17);
  const exact = 11.5;
  const fallback = await hutchpp(k.op, { matvecs: 2, rng: new Rng(4) });
  const plain = await hutchinson(k.op, { matvecs: 2, rng: new Rng(4) });
  assert.equal(fallback.trace, plain.trace);
  assert.equal(fallback.sketchRank, 0);
  const full = await hutchpp(k.op, { matvecs: 30, rng: new Rng(4) });
  assert.equal(full.sketchRank, 5);
  assert.equal(full.stderr, 0);
  assert.equal(full.matvecs, 10);
  assert.ok(Math.abs(full.trace - exact) < 1e-12);
});

// ---------- SLQ ----------

/** v^T A^p v / |v|^2 for p = 0..pMax by repeated products. */
async function moments(op: DenseOperator, v: Float64Array, pMax: number): Promise<number[]> {
  const vv = dot(v, v);
  const out = [1];
  let x = v;
  for (let p = 1; p <= pMax; p++) {
    x = await op.matvec(x);
    out.push(dot(v, x) / vv);
  }
  return out;
}

test('SLQ quadrature is exact for polynomials up to degree 2m - 1 (and not beyond)', async () => {
  const eigs = uniform(new Rng(21), 100, 0.1, 1);
  const k = known(eigs, 22);
  const v = new Rng(23).rademacherVector(k.n);
  for (const m of [3, 10]) {
    const r = await slq(k.op, { steps: m, runs: 1, startVectors: [v] });
    assert.equal(r.matvecs, m);
    const nodes = r.nodes[0];
    const w = r.weights[0];
    assert.equal(nodes.length, m);
    assert.ok(Math.abs(w.reduce((a, b) => a + b, 0) - 1) < 1e-14);
    const exact = await moments(k.op, v, 2 * m);
    for (let p = 0; p <= 2 * m; p++) {
      const quad = nodes.reduce((s, t, i) => s + w[i] * t ** p, 0);
      const rel = Math.abs(quad - exact[p]) / Math.abs(exact[p]);
      if (p <= 2 * m - 1) assert.ok(rel < 1e-8, `m = ${m}, p = ${p}: relative error ${rel}`);
      else if (m === 3) assert.ok(rel > 1e-6, `degree 2m should not be exact (rel ${rel})`);
    }
  }
});

test('SLQ density integrates to 1 and its mean matches tr(A)/n', async () => {
  const rng = new Rng(31);
  const eigs = [50, 30, ...uniform(rng, 498, 0, 10)];
  const k = known(eigs, 32);
  const n = k.n;
  const r = await slq(k.op, { steps: 50, runs: 5, rng: new Rng(33) });
  assert.equal(r.matvecs, 250);
  assert.equal(r.nodes.length, 5);
  const d = spectralDensity(r.nodes, r.weights);
  assert.equal(d.grid.length, 10000);
  assert.ok(Math.abs(d.sigma2 - 1e-5 * (Math.max(...r.nodes.flat()) - Math.min(...r.nodes.flat()))) < 1e-15);
  assert.ok(Math.abs(d.mass - 1) < 1e-6, `raw mass ${d.mass}`);
  const h = d.grid[1] - d.grid[0];
  let integral = 0;
  let mean = 0;
  for (let i = 0; i < d.grid.length - 1; i++) {
    integral += 0.5 * h * (d.density[i] + d.density[i + 1]);
    mean += 0.5 * h * (d.grid[i] * d.density[i] + d.grid[i + 1] * d.density[i + 1]);
  }
  assert.ok(Math.abs(integral - 1) < 1e-12);
  const exactMean = eigs.reduce((a, b) => a + b, 0) / n;
  assert.ok(Math.abs(mean - exactMean) / exactMean < 0.05, `density mean ${mean} vs tr/n ${exactMean}`);
  // The smoothed mean equals the quadrature mean (1/R) sum_r sum_i w_ri theta_ri.
  const quadMean = r.nodes.reduce((s, run, ri) => s + run.reduce((a, t, i) => a + r.weights[ri][i] * t, 0), 0) / 5;
  assert.ok(Math.abs(mean - quadMean) < 1e-6, `${mean} vs ${quadMean}`);
  // The outliers carry about 1/n of the mass each: the density above 20 integrates to ~2/500.
  let upper = 0;
  for (let i = 0; i < d.grid.length - 1; i++) if (d.grid[i] > 20) upper += 0.5 * h * (d.density[i] + d.density[i + 1]);
  assert.ok(upper > 0.1 / n && upper < 20 / n, `mass above 20: ${upper}`);
});

test('Lanczos basis stays orthonormal to rounding long after Ritz values converge (one Gram-Schmidt pass when it suffices)', async () => {
  // Well separated top eigenvalues converge within ~20 steps; without reorthogonalization the
  // basis would lose orthogonality and ghost copies of them would appear among 150 steps.
  const n = 400;
  const rng = new Rng(21);
  const eigs = [100, 80, 60, ...uniform(rng, n - 3, -1, 1)];
  const op = new DenseOperator(matrixWithSpectrum(eigs, rng), n);
  const t = await lanczosTridiagonal(op, rng.normalVector(n), 150, { rng, onBreakdown: 'stop' });
  assert.equal(t.basis.length, 150);
  let worst = 0;
  for (let i = 0; i < t.basis.length; i++) {
    for (let j = 0; j <= i; j++) worst = Math.max(worst, Math.abs(dot(t.basis[i], t.basis[j]) - (i === j ? 1 : 0)));
  }
  assert.ok(worst < 1e-13, `max |Q^T Q - I| = ${worst}`);
  const ritz = sortedDesc(Array.from(tridiagonalEigenvalues(t.alpha, t.beta)));
  for (const [i, want] of [100, 80, 60].entries()) assert.ok(Math.abs(ritz[i] - want) < 1e-11 * want, `Ritz value ${i}: ${ritz[i]}`);
  assert.ok(ritz[3] < 1 + 1e-9, `no ghost copy of a converged eigenvalue: the fourth Ritz value is ${ritz[3]}`);
});

// The Gram-Schmidt kernels under Lanczos (src/engine/linalg/gramSchmidt.ts): WebAssembly SIMD and
// JavaScript loops against a plain float64 reference, on odd and even lengths, partial blocks of
// four, and memory reused from an earlier basis.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBasis, type Basis } from '../../src/engine/linalg/gramSchmidt';
import { Rng } from '../../src/engine/rng';

/** Fills vectors 0..m-1 with an orthonormal set (modified Gram-Schmidt of Gaussians, twice) and m with a Gaussian w. */
function fill(b: Basis, m: number, rng: Rng): void {
  for (let i = 0; i <= m; i++) {
    const v = b.get(i);
    v.set(rng.normalVector(b.n));
    if (i === m) break;
    for (let pass = 0; pass < 2; pass++) {
      for (let j = 0; j < i; j++) {
        const q = b.get(j);
        let c = 0;
        for (let t = 0; t < b.n; t++) c += q[t] * v[t];
        for (let t = 0; t < b.n; t++) v[t] -= c * q[t];
      }
    }
    let s = 0;
    for (let t = 0; t < b.n; t++) s += v[t] * v[t];
    for (let t = 0; t < b.n; t++) v[t] /= Math.sqrt(s);
  }
}

/** c_i = q_i . w and w - sum c_i q_i, in plain loops. */
function reference(b: Basis, m: number): { c: number[]; w: Float64Array } {
  const w0 = b.get(m);
  const c = Array.from({ length: m }, (_, i) => b.get(i).reduce((s, x, t) => s + x * w0[t], 0));
  const w = Float64Array.from(w0);
  for (let i = 0; i < m; i++) for (let t = 0; t < b.n; t++) w[t] -= c[i] * b.get(i)[t];
  return { c, w };
}

for (const loops of ['fastest', 'js'] as const) {
  test(`Gram-Schmidt pass (${loops} loops) matches float64 loops; w ends orthogonal to the basis`, () => {
    for (const [n, m] of [[1001, 7], [1000, 8], [37, 1], [2, 1], [513, 13]]) {
      const b = createBasis(n, m + 1, loops);
      if (loops === 'js') assert.equal(b.kind, 'js');
      else assert.equal(b.kind, 'wasm', 'Node has WebAssembly SIMD: the fast loops must run');
      fill(b, m, new Rng(n + m));
      const ref = reference(b, m);
      const c = new Float64Array(m);
      b.project(m, m, c);
      const w = b.get(m);
      for (let i = 0; i < m; i++) assert.ok(Math.abs(c[i] - ref.c[i]) <= 1e-13 * Math.sqrt(n), `n ${n} m ${m}: c[${i}] ${c[i]} vs ${ref.c[i]}`);
      let err = 0;
      for (let t = 0; t < n; t++) err = Math.max(err, Math.abs(w[t] - ref.w[t]));
      assert.ok(err <= 1e-13 * Math.sqrt(n), `n ${n} m ${m}: w off by ${err}`);
      for (let i = 0; i < m; i++) assert.ok(Math.abs(b.dot(i, m)) < 1e-12, `n ${n}: q_${i} . w = ${b.dot(i, m)}`);
      // dot, axpy and scale against plain loops.
      const q0 = Float64Array.from(b.get(0));
      const before = Float64Array.from(w);
      assert.ok(Math.abs(b.dot(m, m) - before.reduce((s, x) => s + x * x, 0)) <= 1e-12 * b.dot(m, m));
      b.axpy(0.75, 0, m);
      b.scale(-3, m);
      for (let t = 0; t < n; t++) assert.equal(w[t], (before[t] + 0.75 * q0[t]) * -3);
      b.release();
    }
  });
}

test('a basis on reused WebAssembly memory: the padding of odd lengths is zeroed, so no old value leaks into a dot product', () => {
  const old = createBasis(1000, 20);
  for (let i = 0; i < 20; i++) old.get(i).fill(Number.NaN);
  old.release();
  // 999 + 1 padding per vector: the padding slots land on the NaNs the old basis left.
  const b = createBasis(999, 9);
  assert.equal(b.kind, 'wasm');
  fill(b, 8, new Rng(3));
  const c = new Float64Array(8);
  const ref = reference(b, 8);
  b.project(8, 8, c);
  for (let i = 0; i < 8; i++) assert.ok(Number.isFinite(c[i]) && Math.abs(c[i] - ref.c[i]) < 1e-12, `c[${i}] ${c[i]} vs ${ref.c[i]}`);
  b.release();
});

// Directions and slices (src/engine/directions): filter/layer normalization on a hand-made IR
// (Li et al. 2018), invariance to the rescaling of Dinh et al. 2017, one Gram-Schmidt step, the
// PCA plane of a trajectory, slice axes and the coarse-to-fine grid order, and loading, checking
// and interpolating checkpoints written from examples/spiral.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../../src/engine/backend';
import { BasinError } from '../../src/engine/errors';
import { Rng } from '../../src/engine/rng';
import type { IRNode, ModelIR, ParamInfo } from '../../src/engine/model/ir';
import {
  EIGEN_SLICE,
  INTERPOLATE,
  NORM_EPS,
  SLICE_1D,
  SURFACE,
  assertCompatible,
  coarseToFineOrder,
  dot,
  interpolationDirection,
  loadCheckpoint,
  norm,
  normalizeDirection,
  orthogonalize,
  parseRange,
  randomDirection,
  trajectoryPlane,
} from '../../src/engine/directions';

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

type Spec = Pick<ParamInfo, 'layer' | 'role' | 'shape'>;

/** Params with consistent sizes and offsets, in the given order. */
function paramsOf(specs: Spec[]): ParamInfo[] {
  let offset = 0;
  return specs.map((s) => {
    const size = s.shape.reduce((a, b) => a * b, 1);
    const p: ParamInfo = { name: `${s.layer}/${s.role}`, layer: s.layer, role: s.role, shape: s.shape, size, offset };
    offset += size;
    return p;
  });
}

function irOf(name: string, nodes: IRNode[], params: ParamInfo[]): ModelIR {
  const numParams = params.reduce((a, p) => a + p.size, 0);
  return { name, nodes, input: 0, output: nodes.length - 1, params, constants: [], numParams };
}

/** input [4, 4, 1] -> Conv2D 3 filters 2x2 (relu) -> [3, 3, 3] -> Dense 4 over the last axis -> [3, 3, 4]. */
function convDenseIR(): ModelIR {
  const params = paramsOf([
    { layer: 'conv', role: 'kernel', shape: [2, 2, 1, 3] },
    { layer: 'conv', role: 'bias', shape: [3] },
    { layer: 'dense', role: 'kernel', shape: [3, 4] },
    { layer: 'dense', role: 'bias', shape: [4] },
  ]);
  const nodes: IRNode[] = [
    { name: 'input', op: { kind: 'input', shape: [4, 4, 1] }, inputs: [], outShape: [4, 4, 1] },
    {
      name: 'conv',
      op: { kind: 'conv2d', filters: 3, kernelSize: [2, 2], strides: [1, 1], padding: 'valid', activation: 'relu', kernel: 0, bias: 1 },
      inputs: [0],
      outShape: [3, 3, 3],
    },
    { name: 'dense', op: { kind: 'dense', units: 4, activation: 'linear', kernel: 2, bias: 3 }, inputs: [1], outShape: [3, 3, 4] },
  ];
  const ir = irOf('conv-dense', nodes, params);
  assert.equal(ir.numParams, 12 + 3 + 12 + 4);
  return ir;
}

/** input [3] -> Dense 4 (relu) -> Dense 2. */
function mlpIR(): ModelIR {
  const params = paramsOf([
    { layer: 'd1', role: 'kernel', shape: [3, 4] },
    { layer: 'd1', role: 'bias', shape: [4] },
    { layer: 'd2', role: 'kernel', shape: [4, 2] },
    { layer: 'd2', role: 'bias', shape: [2] },
  ]);
  const nodes: IRNode[] = [
    { name: 'input', op: { kind: 'input', shape: [3] }, inputs: [], outShape: [3] },
    { name: 'd1', op: { kind: 'dense', units: 4, activation: 'relu', kernel: 0, bias: 1 }, inputs: [0], outShape: [4] },
    { name: 'd2', op: { kind: 'dense', units: 2, activation: 'linear', kernel: 2, bias: 3 }, inputs: [1], outShape: [2] },
  ];
  return irOf('mlp', nodes, params);
}

/** Flat indices of filter c (the slice along the last axis) of parameter p. */
function filterIndices(p: ParamInfo, c: number): number[] {
  const cols = p.shape[p.shape.length - 1];
  const out: number[] = [];
  for (let r = 0; r < p.size / cols; r++) out.push(p.offset + r * cols + c);
  return out;
}

const normAt = (v: ArrayLike<number>, idx: number[]): number => Math.sqrt(idx.reduce((s, k) => s + v[k] * v[k], 0));
const range = (p: ParamInfo): number[] => Array.from({ length: p.size }, (_, i) => p.offset + i);

function assertClose(actual: number, expected: number, rel: number, what: string): void {
  const tol = rel * Math.max(1, Math.abs(expected));
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected} (|diff| ${Math.abs(actual - expected)} > ${tol})`);
}

function assertRel(actual: number, expected: number, rel: number, what: string): void {
  const tol = rel * Math.abs(expected);
  const relErr = Math.abs(actual - expected) / Math.abs(expected);
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected} (relative ${relErr})`);
}

/** Runs `action` and checks it throws a BasinError whose message matches every pattern. */
async function expectBasinError(action: () => unknown, ...patterns: (RegExp | string)[]): Promise<string> {
  let caught: unknown;
  try {
    await action();
  } catch (e) {
    caught = e;
  }
  const got = caught instanceof Error ? `${caught.name}: ${caught.message}` : String(caught);
  assert.ok(caught instanceof BasinError, `expected a BasinError, got ${got}`);
  for (const p of patterns) {
    if (typeof p === 'string') assert.ok(caught.message.includes(p), `'${p}' not in: ${caught.message}`);
    else assert.match(caught.message, p);
  }
  return caught.message;
}

// ---------------------------------------------------------------------------------------------
// normalization
// ---------------------------------------------------------------------------------------------

test('filter normalization: every filter of d has the norm of the weight filter; 1-D tensors per ignore', () => {
  const ir = convDenseIR();
  const rng = new Rng(11);
  const theta = rng.normalVector(ir.numParams);
  const d = rng.normalVector(ir.numParams);
  const before = Float64Array.from(d);
  const nd = normalizeDirection(d, theta, ir, 'filter', 'biasbn');
  assert.deepEqual(d, before, 'normalizeDirection must not modify its input');
  let filters = 0;
  for (const p of ir.params) {
    if (p.shape.length <= 1) {
      for (const k of range(p)) assert.equal(nd[k], 0, `${p.name}[${k - p.offset}] not zeroed`);
      continue;
    }
    const cols = p.shape[p.shape.length - 1];
    assert.equal(cols, p.layer === 'conv' ? 3 : 4);
    for (let c = 0; c < cols; c++) {
      const idx = filterIndices(p, c);
      assert.equal(idx.length, p.layer === 'conv' ? 4 : 3);
      const w = normAt(theta, idx);
      const raw = normAt(d, idx);
      // Exactly the reference formula d_f * |w_f| / (|d_f| + 1e-10)...
      assertRel(normAt(nd, idx), (w * raw) / (raw + NORM_EPS), 1e-12, `${p.name} filter ${c}`);
      // ...which is |w_f| up to the 1e-10 guard.
      assertRel(normAt(nd, idx), w, 1e-9, `${p.name} filter ${c} vs |w|`);
      // Each filter is only rescaled (positive factor, same for the whole filter).
      const s = nd[idx[0]] / d[idx[0]];
      assert.ok(s > 0);
      for (const k of idx) assertRel(nd[k], s * d[k], 1e-12, `${p.name}[${k}] scale`);
      filters++;
    }
  }
  assert.equal(filters, 3 + 4);

  const keep = normalizeDirection(d, theta, ir, 'filter', 'none');
  for (const p of ir.params) {
    for (const k of range(p)) {
      if (p.shape.length <= 1) assert.equal(keep[k], theta[k], `${p.name}: ignore 'none' copies the weights`);
      else assert.equal(keep[k], nd[k], `${p.name}: ignore does not change kernels`);
    }
  }
});

test('filter normalization of a zero weight filter gives a zero direction filter', () => {
  const ir = mlpIR();
  const rng = new Rng(3);
  const theta = rng.normalVector(ir.numParams);
  const p = ir.params[0];
  for (const k of filterIndices(p, 2)) theta[k] = 0;
  const nd = normalizeDirection(rng.normalVector(ir.numParams), theta, ir, 'filter', 'biasbn');
  for (const k of filterIndices(p, 2)) assert.ok(nd[k] === 0, `${nd[k]}`);
  assert.ok(normAt(nd, filterIndices(p, 1)) > 0);
});

test('layer normalization: every tensor of d has the norm of the weight tensor', () => {
  const ir = convDenseIR();
  const rng = new Rng(12);
  const theta = rng.normalVector(ir.numParams);
  const d = rng.normalVector(ir.numParams);
  const nd = normalizeDirection(d, theta, ir, 'layer', 'biasbn');
  const nn = normalizeDirection(d, theta, ir, 'layer', 'none');
  for (const p of ir.params) {
    const idx = range(p);
    if (p.shape.length <= 1) {
      for (const k of idx) {
        assert.equal(nd[k], 0);
        assert.equal(nn[k], theta[k]);
      }
      continue;
    }
    const w = normAt(theta, idx);
    const raw = normAt(d, idx);
    assertRel(normAt(nd, idx), (w * raw) / (raw + NORM_EPS), 1e-12, p.name);
    assertRel(normAt(nd, idx), w, 1e-9, `${p.name} vs |w|`);
    // One factor for the whole tensor: the filters are NOT individually normalized.
    const s = nd[p.offset] / d[p.offset];
    for (const k of idx) assertRel(nd[k], s * d[k], 1e-12, `${p.name}[${k}]`);
  }
});

test("norm 'none' leaves kernels as drawn; biasbn still zeroes 1-D tensors", () => {
  const ir = convDenseIR();
  const rng = new Rng(13);
  const theta = rng.normalVector(ir.numParams);
  const d = rng.normalVector(ir.numParams);
  assert.deepEqual(normalizeDirection(d, theta, ir, 'none', 'none'), d);
  const nd = normalizeDirection(d, theta, ir, 'none', 'biasbn');
  for (const p of ir.params) for (const k of range(p)) assert.equal(nd[k], p.shape.length <= 1 ? 0 : d[k]);
});

test('randomDirection is a seeded Gaussian (flat order) then normalizeDirection', () => {
  const ir = convDenseIR();
  const theta = new Rng(5).normalVector(ir.numParams);
  const a = randomDirection(ir, theta, new Rng(42), 'filter', 'biasbn');
  const b = normalizeDirection(new Rng(42).normalVector(ir.numParams), theta, ir, 'filter', 'biasbn');
  assert.deepEqual(a, b);
  assert.deepEqual(randomDirection(ir, theta, new Rng(42), 'filter', 'biasbn'), a, 'same seed, same direction');
  assert.notDeepEqual(randomDirection(ir, theta, new Rng(43), 'filter', 'biasbn'), a);
});

test('Dinh et al. 2017 rescaling: the filter-normalized direction rescales with the weights', () => {
  const ir = mlpIR();
  const alpha = 7;
  const theta = new Rng(21).normalVector(ir.numParams);
  const scaled = Float64Array.from(theta);
  const [k1, b1, k2] = ir.params;
  for (const k of [...range(k1), ...range(b1)]) scaled[k] *= alpha;
  for (const k of range(k2)) scaled[k] /= alpha;
  for (const ignore of ['biasbn', 'none'] as const) {
    const d = randomDirection(ir, theta, new Rng(99), 'filter', ignore);
    const ds = randomDirection(ir, scaled, new Rng(99), 'filter', ignore);
    for (const p of ir.params) {
      const factor = p === k1 || p === b1 ? alpha : p === k2 ? 1 / alpha : 1;
      for (const k of range(p)) {
        if (d[k] === 0) assert.equal(ds[k], 0);
        else assertRel(ds[k], factor * d[k], 1e-12, `${ignore} ${p.name}[${k - p.offset}]`);
      }
    }
  }
  // Layer normalization of the same direction rescales the same way (the tensors scale as a whole).
  const dl = randomDirection(ir, theta, new Rng(99), 'layer', 'biasbn');
  const dls = randomDirection(ir, scaled, new Rng(99), 'layer', 'biasbn');
  for (const k of range(k1)) assertRel(dls[k], alpha * dl[k], 1e-12, 'layer k1');
  for (const k of range(k2)) assertRel(dls[k], dl[k] / alpha, 1e-12, 'layer k2');
});

// ---------------------------------------------------------------------------------------------
// plane
// ---------------------------------------------------------------------------------------------

test('orthogonalize: y orthogonal to x, |y| kept, cosine before reported', () => {
  const rng = new Rng(31);
  const n = 1000;
  const x = rng.normalVector(n);
  const noise = rng.normalVector(n);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) y[i] = 0.6 * x[i] + noise[i];
  const cos = dot(x, y) / (norm(x) * norm(y));
  const yBefore = Float64Array.from(y);
  const r = orthogonalize(x, y);
  assert.deepEqual(y, yBefore, 'y is not modified');
  assertClose(r.cosine, cos, 1e-12, 'cosine');
  assert.ok(r.cosine > 0.4, `cosine ${r.cosine}`);
  assert.ok(Math.abs(dot(x, r.y)) <= 1e-12 * norm(x) * norm(r.y), `x . y' = ${dot(x, r.y)}`);
  assertRel(norm(r.y), norm(y), 1e-12, '|y|');
  // y' lies in span(x, y): y' = a y + b x with a = |y| / |y - (x.y/x.x) x|.
  const c = dot(x, y) / dot(x, x);
  const resid = Float64Array.from(y, (v, i) => v - c * x[i]);
  const a = norm(y) / norm(resid);
  for (let i = 0; i < n; i += 97) assertClose(r.y[i], a * resid[i], 1e-12, `y'[${i}]`);

  // Already orthogonal: unchanged, cosine 0.
  const e1 = Float64Array.from([1, 0, 0]);
  const e2 = Float64Array.from([0, 2, 0]);
  const o = orthogonalize(e1, e2);
  assert.equal(o.cosine, 0);
  assert.deepEqual(o.y, e2);
  // A negative cosine is reported as such.
  const neg = orthogonalize(Float64Array.from([1, 0]), Float64Array.from([-1, 1]));
  assertClose(neg.cosine, -Math.SQRT1_2, 1e-15, 'negative cosine');
  assertClose(neg.y[0], 0, 1e-15, 'y0');
  assertClose(neg.y[1], Math.SQRT2, 1e-15, 'y1');
});

test('orthogonalize of parallel directions is a BasinError', async () => {
  await expectBasinError(() => orthogonalize(Float64Array.from([1, 2, 3]), Float64Array.from([-2, -4, -6])), /parallel/);
});

// ---------------------------------------------------------------------------------------------
// trajectory PCA
// ---------------------------------------------------------------------------------------------

test('trajectory PCA recovers a known plane, its explained variance and the checkpoints', () => {
  const n = 300;
  const rng = new Rng(41);
  // Orthonormal e1, e2 and an arbitrary final point.
  const e1 = rng.normalVector(n);
  const s1 = norm(e1);
  for (let i = 0; i < n; i++) e1[i] /= s1;
  const e2 = rng.normalVector(n);
  const c12 = dot(e1, e2);
  for (let i = 0; i < n; i++) e2[i] -= c12 * e1[i];
  const s2 = norm(e2);
  for (let i = 0; i < n; i++) e2[i] /= s2;
  const final = rng.normalVector(n);
  // Coefficients with sum a b = 0, sum a^2 = 30, sum b^2 = 4: the principal directions are exactly
  // e1 and e2 and explain 30/34 and 4/34.
  const ab: [number, number][] = [
    [-4, 1],
    [-3, -1],
    [-2, -1],
    [-1, 1],
    [0, 0],
  ];
  const cps = ab.map(([a, b]) => Float64Array.from(final, (o, i) => o + a * e1[i] + b * e2[i]));
  const plane = trajectoryPlane(cps);
  assert.deepEqual(plane.origin, final);
  assertClose(Math.abs(dot(plane.dx, e1)), 1, 1e-12, '|cos(dx, e1)|');
  assertClose(Math.abs(dot(plane.dy, e2)), 1, 1e-12, '|cos(dy, e2)|');
  assertClose(norm(plane.dx), 1, 1e-14, '|dx|');
  assertClose(norm(plane.dy), 1, 1e-14, '|dy|');
  assertClose(dot(plane.dx, plane.dy), 0, 1e-14, 'dx . dy');
  assertClose(plane.explained[0], 30 / 34, 1e-12, 'explained[0]');
  assertClose(plane.explained[1], 4 / 34, 1e-12, 'explained[1]');
  assertClose(plane.explained[0] + plane.explained[1], 1, 1e-12, 'explained sums to 1');
  assert.equal(plane.coords.length, cps.length);
  // Sign convention: the first checkpoint has x <= 0, the farthest from the x axis y > 0.
  assert.ok(plane.coords[0].x < 0);
  cps.forEach((cp, i) => {
    const { x, y } = plane.coords[i];
    assertClose(Math.abs(x), Math.abs(ab[i][0]), 1e-10, `|x| of checkpoint ${i}`);
    assertClose(Math.abs(y), Math.abs(ab[i][1]), 1e-10, `|y| of checkpoint ${i}`);
    let err = 0;
    for (let k = 0; k < n; k++) err = Math.max(err, Math.abs(plane.origin[k] + x * plane.dx[k] + y * plane.dy[k] - cp[k]));
    assert.ok(err < 1e-10, `checkpoint ${i} reconstructed with error ${err}`);
  });
  assert.deepEqual(plane.coords[4], { x: 0, y: 0 });

  // Float32 checkpoints work too (what loadCheckpoint gives); reconstruction to float32 precision.
  const f32 = cps.map((c) => Float32Array.from(c));
  const p32 = trajectoryPlane(f32);
  assertClose(Math.abs(dot(p32.dx, e1)), 1, 1e-6, 'float32 |cos(dx, e1)|');
  f32.forEach((cp, i) => {
    const { x, y } = p32.coords[i];
    for (let k = 0; k < n; k += 7) assertClose(p32.origin[k] + x * p32.dx[k] + y * p32.dy[k], cp[k], 1e-5, `float32 checkpoint ${i}`);
  });
});

test('trajectory PCA of a 3-D cloud: explained ordered, each below 1, sum below 1', () => {
  const n = 50;
  const rng = new Rng(43);
  const basis = [rng.normalVector(n), rng.normalVector(n), rng.normalVector(n)];
  const final = rng.normalVector(n);
  const cps: Float64Array[] = [];
  for (let t = 0; t < 12; t++) {
    const [a, b, c] = [3 * rng.normal(), 2 * rng.normal(), rng.normal()];
    cps.push(Float64Array.from(final, (o, i) => o + a * basis[0][i] + b * basis[1][i] + c * basis[2][i]));
  }
  cps.push(Float64Array.from(final));
  const plane = trajectoryPlane(cps);
  const [e0, e1] = plane.explained;
  assert.ok(e0 >= e1, `${e0} < ${e1}`);
  assert.ok(e0 < 1 && e1 > 0 && e0 + e1 < 1 - 1e-6, `explained ${e0}, ${e1}`);
  // explained is the share of sum |theta_i - theta_T|^2 along each unit direction.
  let total = 0;
  let along = 0;
  for (const cp of cps) {
    const m = Float64Array.from(cp, (v, i) => v - final[i]);
    total += dot(m, m);
    along += dot(m, plane.dx) ** 2;
  }
  assertClose(along / total, e0, 1e-12, 'explained[0] from projections');
  for (let i = 0; i < cps.length; i++) {
    const m = Float64Array.from(cps[i], (v, k) => v - final[k]);
    assertClose(plane.coords[i].x, dot(m, plane.dx), 1e-12, 'coords x');
    assertClose(plane.coords[i].y, dot(m, plane.dy), 1e-12, 'coords y');
  }
});

test('trajectory PCA errors: fewer than 3 checkpoints, a line, mismatched lengths', async () => {
  const a = Float64Array.from([1, 2, 3]);
  const b = Float64Array.from([2, 3, 4]);
  await expectBasinError(() => trajectoryPlane([a, b]), 'a trajectory plane needs at least 3 checkpoints');
  await expectBasinError(() => trajectoryPlane([]), 'at least 3 checkpoints');
  const c = Float64Array.from([3, 4, 5]);
  await expectBasinError(() => trajectoryPlane([a, b, c]), /line/);
  await expectBasinError(() => trajectoryPlane([c, c, c]), /identical/);
  await expectBasinError(() => trajectoryPlane([a, Float64Array.from([1, 2]), c]), /checkpoint 2 has 2 parameters/);
});

// ---------------------------------------------------------------------------------------------
// axes and grid order
// ---------------------------------------------------------------------------------------------

test('parseRange: defaults and inclusive endpoints', () => {
  const r = parseRange(SLICE_1D, '--x');
  assert.equal(r.start, -1);
  assert.equal(r.stop, 1);
  assert.equal(r.steps, 51);
  assert.equal(r.values.length, 51);
  assert.equal(r.values[0], -1);
  assert.equal(r.values[25], 0);
  assert.equal(r.values[50], 1);
  for (let i = 0; i < 51; i++) assertClose(r.values[i], -1 + 0.04 * i, 1e-15, `value ${i}`);
  assert.deepEqual(parseRange(SURFACE, '--y').values, r.values);
  const interp = parseRange(INTERPOLATE, '--alpha');
  assert.equal(interp.values.length, 401);
  assert.equal(interp.values[0], -0.5);
  assert.equal(interp.values[100], 0);
  assert.equal(interp.values[300], 1);
  assert.equal(interp.values[400], 1.5);
  const eig = parseRange(EIGEN_SLICE, '--lams');
  assert.equal(eig.values.length, 51);
  assert.equal(eig.values[0], -0.5);
  assert.equal(eig.values[25], 0);
  assert.equal(eig.values[50], 0.5);
  assert.deepEqual(parseRange('0:1:5', 'x').values, [0, 0.25, 0.5, 0.75, 1]);
  assert.deepEqual(parseRange(' 0.5 : 2 : 1 ', 'x'), { start: 0.5, stop: 2, steps: 1, values: [0.5] });
  assert.deepEqual(parseRange('3:3:1', 'x').values, [3]);
  assert.deepEqual(parseRange('-2e-1:1e-1:4', 'x').values.map((v) => Number(v.toFixed(12))), [-0.2, -0.1, 0, 0.1]);
});

test('parseRange: errors', async () => {
  await expectBasinError(() => parseRange('', '--x'), '--x', /empty/);
  await expectBasinError(() => parseRange(':', '--x'), '--x', /malformed/);
  await expectBasinError(() => parseRange('0:1', '--x'), /malformed/, /start:stop:steps/);
  await expectBasinError(() => parseRange('0:1:5:7', '--x'), /malformed/);
  await expectBasinError(() => parseRange('::', '--x'), /start is missing/);
  await expectBasinError(() => parseRange('a:b:c', '--x'), /'a' is not a finite number/);
  await expectBasinError(() => parseRange('0:NaN:5', '--x'), /'NaN' is not a finite number/);
  await expectBasinError(() => parseRange('0:Infinity:5', '--x'), /not a finite number/);
  await expectBasinError(() => parseRange('1:-1:5', '--x'), '--x: inverted range 1:-1: start must be below stop');
  await expectBasinError(() => parseRange('0:0:5', '--x'), /start equals stop/);
  await expectBasinError(() => parseRange('0:1:0', '--x'), /steps must be at least 1/);
  await expectBasinError(() => parseRange('0:1:-3', '--x'), /steps must be at least 1/);
  await expectBasinError(() => parseRange('0:1:2.5', '--x'), /steps must be a whole number, not 2.5/);
});

function assertPermutation(order: number[], n: number): void {
  assert.equal(order.length, n);
  const sorted = [...order].sort((a, b) => a - b);
  for (let i = 0; i < n; i++) assert.equal(sorted[i], i);
}

test('coarseToFineOrder: a permutation, coarse lattice (with the corners) first', () => {
  assert.deepEqual(coarseToFineOrder(1, 1), [0]);
  assert.deepEqual(coarseToFineOrder(0, 5), []);
  // 2 x 3: every point is on the stride-8 lattice (0 and the last index on each axis).
  assert.deepEqual(coarseToFineOrder(2, 3), [0, 1, 4, 5, 2, 3]);
  for (const [nx, ny] of [
    [1, 1],
    [2, 3],
    [51, 51],
    [51, 1],
    [1, 401],
    [17, 9],
    [8, 8],
  ]) {
    assertPermutation(coarseToFineOrder(nx, ny), nx * ny);
  }
  assert.deepEqual(coarseToFineOrder(5, 1), [0, 4, 2, 1, 3]);
  assert.deepEqual(coarseToFineOrder(10, 1), [0, 8, 9, 4, 2, 6, 1, 3, 5, 7]);

  const nx = 51;
  const order = coarseToFineOrder(nx, nx);
  const lattice = (s: number): number[] => {
    const axis = Array.from({ length: Math.ceil(nx / s) }, (_, i) => i * s);
    if (axis[axis.length - 1] !== nx - 1) axis.push(nx - 1);
    return axis;
  };
  const setOf = (s: number): Set<number> => new Set(lattice(s).flatMap((iy) => lattice(s).map((ix) => iy * nx + ix)));
  const l8 = setOf(8);
  assert.equal(l8.size, 64);
  // The first 64 are the stride-8 lattice in row-major order; the corners are among them.
  assert.deepEqual(order.slice(0, 64), [...l8].sort((a, b) => a - b));
  for (const corner of [0, nx - 1, (nx - 1) * nx, nx * nx - 1]) assert.ok(order.slice(0, 64).includes(corner));
  // Each prefix up to the end of a level is exactly that level's lattice.
  const l4 = setOf(4);
  const l2 = setOf(2);
  assert.equal(l4.size, 14 * 14);
  assert.equal(l2.size, 26 * 26);
  assert.deepEqual(new Set(order.slice(0, l4.size)), l4);
  assert.deepEqual(new Set(order.slice(0, l2.size)), l2);
  assert.deepEqual(coarseToFineOrder(nx, nx), order, 'deterministic');
});

// ---------------------------------------------------------------------------------------------
// checkpoints (TF.js)
// ---------------------------------------------------------------------------------------------

/** examples/spiral, from the test bundle in .test-dist/unit/ or a folder beside the repository. */
function exampleDir(): string {
  const candidates = [path.join(__dirname, '../../examples/spiral'), path.join(process.cwd(), 'examples/spiral')];
  const found = candidates.find((d) => fs.existsSync(path.join(d, 'model.json')));
  assert.ok(found, `examples/spiral not found (looked in ${candidates.join(', ')})`);
  return found;
}

interface ModelJson {
  modelTopology: { config: { layers: { class_name: string; config: Record<string, unknown> }[] } };
  weightsManifest: { paths: string[]; weights: { name: string; shape: number[]; dtype: string }[] }[];
}

/** A copy of examples/spiral in a fresh folder, its model.json edited by `edit`; weights.bin sized to the manifest. */
function writeModel(edit?: (m: ModelJson) => void): { file: string; weights: Float32Array } {
  const src = exampleDir();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'basin-directions-'));
  const m = JSON.parse(fs.readFileSync(path.join(src, 'model.json'), 'utf8')) as ModelJson;
  edit?.(m);
  const need = m.weightsManifest[0].weights.reduce((s, w) => s + w.shape.reduce((a, b) => a * b, 1), 0);
  const orig = fs.readFileSync(path.join(src, 'weights.bin'));
  const base = new Float32Array(orig.buffer.slice(orig.byteOffset, orig.byteOffset + orig.byteLength));
  const weights = new Float32Array(need);
  if (need === base.length) weights.set(base);
  else for (let i = 0; i < need; i++) weights[i] = Math.sin(i + 1) * 0.1;
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(m));
  fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.from(weights.buffer));
  return { file: path.join(dir, 'model.json'), weights };
}

before(async () => {
  await initBackend('wasm');
});

test('loadCheckpoint: theta is the weights in parameter order; identical checkpoints interpolate to zero', async () => {
  const a = writeModel();
  const b = writeModel();
  const ca = await loadCheckpoint(a.file);
  const cb = await loadCheckpoint(b.file);
  assert.equal(ca.file, a.file);
  assert.equal(ca.ir.numParams, 1251);
  assert.equal(ca.ir.params.length, 6);
  // The spiral model's weights.bin lists its weights in model order, so theta is weights.bin.
  assert.deepEqual(ca.theta, a.weights);
  assert.deepEqual(cb.theta, a.weights);
  assertCompatible(ca, cb);
  assertCompatible(cb, ca);
  const d = interpolationDirection(ca, cb);
  assert.equal(d.length, 1251);
  assert.ok(d.every((v) => v === 0));
  // The same file loaded again (TF.js may rename weights 'x/kernel_1') is still compatible.
  const again = await loadCheckpoint(a.file);
  assertCompatible(ca, again);
});

test('interpolationDirection is theta_b - theta_a in float64', async () => {
  const a = writeModel();
  const b = writeModel();
  const w = new Float32Array(a.weights.length);
  for (let i = 0; i < w.length; i++) w[i] = a.weights[i] + Math.fround(0.25 * Math.cos(i));
  fs.writeFileSync(path.join(path.dirname(b.file), 'weights.bin'), Buffer.from(w.buffer));
  const ca = await loadCheckpoint(a.file);
  const cb = await loadCheckpoint(b.file);
  const d = interpolationDirection(ca, cb);
  for (let i = 0; i < d.length; i++) assert.equal(d[i], w[i] - a.weights[i]);
});

test('assertCompatible: a different shape or layer names both files and the parameter', async () => {
  const a = writeModel();
  const wide = writeModel((m) => {
    m.modelTopology.config.layers[2].config.units = 10;
    const ws = m.weightsManifest[0].weights;
    ws[4].shape = [32, 10];
    ws[5].shape = [10];
  });
  const ca = await loadCheckpoint(a.file);
  const cw = await loadCheckpoint(wide.file);
  assert.equal(cw.ir.numParams, 1251 + 7 * 32 + 7);
  await expectBasinError(
    () => assertCompatible(ca, cw),
    `${wide.file}: parameter 5 'dense_Dense3/kernel' has shape [32, 10] but ${a.file} has [32, 3]`,
  );
  await expectBasinError(
    () => assertCompatible(cw, ca),
    `${a.file}: parameter 5 'dense_Dense3/kernel' has shape [32, 3] but ${wide.file} has [32, 10]`,
  );
  await expectBasinError(() => interpolationDirection(ca, cw), wide.file, a.file, 'dense_Dense3/kernel');

  const renamed = writeModel((m) => {
    m.modelTopology.config.layers[1].config.name = 'hidden';
    const ws = m.weightsManifest[0].weights;
    ws[2].name = 'hidden/kernel';
    ws[3].name = 'hidden/bias';
  });
  const cr = await loadCheckpoint(renamed.file);
  await expectBasinError(() => assertCompatible(ca, cr), renamed.file, a.file, "parameter 3 is 'hidden/kernel'", "'dense_Dense2/kernel'");

  const shallow = writeModel((m) => {
    m.modelTopology.config.layers.splice(1, 1);
    m.weightsManifest[0].weights.splice(2, 2);
  });
  const cs = await loadCheckpoint(shallow.file);
  // Layer 2 is gone, so parameter 3 is now the last layer's kernel.
  await expectBasinError(() => assertCompatible(ca, cs), shallow.file, a.file, "parameter 3 is 'dense_Dense3/kernel'");

  const deeper = writeModel((m) => {
    const layers = m.modelTopology.config.layers;
    layers.push({ class_name: 'Dense', config: { ...layers[2].config, name: 'dense_Dense4', units: 2 } });
    m.weightsManifest[0].weights.push(
      { name: 'dense_Dense4/kernel', shape: [3, 2], dtype: 'float32' },
      { name: 'dense_Dense4/bias', shape: [2], dtype: 'float32' },
    );
  });
  const cd = await loadCheckpoint(deeper.file);
  const extra = "'dense_Dense4/kernel'";
  await expectBasinError(() => assertCompatible(ca, cd), deeper.file, a.file, 'has 8 parameter tensors but', 'has 6', extra);
  await expectBasinError(() => assertCompatible(cd, ca), a.file, deeper.file, 'has 6 parameter tensors but', 'has 8', extra);
});

// The panel's pure chart helpers against hand-checked answers: round axis ticks, the colour and
// contour value scale (linear, or logarithmic past a factor of 10), marching-squares contours of a
// plane, a cone and a saddle at known levels, contour levels, the viridis colour map and its bar's
// labels, axis titles, and the number formatting every chart and table uses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DirectionInfo } from '../../src/shared/results';
import { colorAt, colorBarLabels, contourLevels, contourSegments, describeDirection, niceTicks, valueScale, type Seg } from '../../webview/charts/contours';
import { duration, fmt, logTick, slug, thin, tick } from '../../webview/format';

/** Segments equal to `want` within 1e-12 per coordinate, in order. */
function assertSegments(got: Seg[], want: Seg[], what: string): void {
  assert.equal(got.length, want.length, `${what}: ${JSON.stringify(got)}`);
  got.forEach((s, k) => s.forEach((v, i) => assert.ok(Math.abs(v - want[k][i]) <= 1e-12, `${what}: segment ${k} is ${JSON.stringify(s)}, expected ${JSON.stringify(want[k])}`)));
}

function assertClose(got: number[], want: number[], tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: ${got.join(', ')}`);
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) <= tol * Math.max(1, Math.abs(want[i])), `${what}: ${got.join(', ')} vs ${want.join(', ')}`));
}

test('axis ticks: round steps of 1, 2 or 5 times a power of ten, inside the range, without float noise', () => {
  assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(-1, 1, 5), [-1, -0.5, 0, 0.5, 1]);
  assert.deepEqual(niceTicks(-0.5, 1.5, 4), [-0.5, 0, 0.5, 1, 1.5]);
  assert.deepEqual(niceTicks(0, 100, 3), [0, 20, 40, 60, 80, 100]);
  // 0.7 - 0.3 is 0.39999999999999997: still steps of 0.1, printed as 0.3, not 0.30000000000000004.
  assert.deepEqual(niceTicks(0.3, 0.7, 4), [0.3, 0.4, 0.5, 0.6, 0.7]);
  // Ends that are not multiples of the step are not ticks.
  assert.deepEqual(niceTicks(0.05, 0.95, 4), [0.2, 0.4, 0.6, 0.8]);
  assert.deepEqual(niceTicks(2, 2), [2]);
  assert.deepEqual(niceTicks(3, 1), [3]);
});

test('the value scale: linear, or logarithmic when the loss is positive and spans more than a factor of 10', () => {
  const lin = valueScale(0, 10);
  assert.equal(lin.log, false);
  assert.equal(lin.t(5), 0.5);
  assert.equal(lin.t(0), 0);
  assert.equal(lin.inv(0.25), 2.5);
  // A factor of 10 exactly stays linear.
  assert.equal(valueScale(1, 10).log, false);
  const log = valueScale(1, 100);
  assert.equal(log.log, true);
  assertClose([log.t(10), log.t(1), log.t(100), log.inv(0.5)], [0.5, 0, 1, 10], 1e-15, 'log scale');
  // A flat surface: every value in the middle of the colours.
  assert.equal(valueScale(3, 3).t(3), 0.5);
});

test('contour levels: ten strictly inside the range, evenly spaced or geometric', () => {
  assertClose(contourLevels(valueScale(0, 11)), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 1e-14, 'linear');
  assertClose(contourLevels(valueScale(1, 1000), 2), [10, 100], 1e-14, 'log');
});

test('marching squares: a plane gives straight lines at the interpolated crossing', () => {
  // f(x, y) = x on x = 0, 1, 2 and y = 0, 1 (rows are y).
  const xs = [0, 1, 2];
  const ys = [0, 1];
  const z = [
    [0, 1, 2],
    [0, 1, 2],
  ];
  assert.deepEqual(contourSegments(xs, ys, z, 0.5), [[0.5, 0, 0.5, 1]]);
  assert.deepEqual(contourSegments(xs, ys, z, 1.5), [[1.5, 0, 1.5, 1]]);
  assert.deepEqual(contourSegments(xs, ys, z, 1.25), [[1.25, 0, 1.25, 1]]);
  // A level on grid values: corners equal to it count as below (the comparisons are strict).
  assert.deepEqual(contourSegments(xs, ys, z, 1), [[1, 0, 1, 1]]);
  // Outside the range: nothing.
  assert.deepEqual(contourSegments(xs, ys, z, 5), []);
  assert.deepEqual(contourSegments(xs, ys, z, -1), []);
  // A descending axis is followed as given.
  assert.deepEqual(contourSegments([2, 1, 0], ys, z, 0.5), [[1.5, 0, 1.5, 1]]);
  // Uncomputed (null) or non-finite corners: the cell is skipped; a missing row too.
  assert.deepEqual(contourSegments(xs, ys, [[0, 1, 2], [null, 1, 2]], 0.5), []);
  assert.deepEqual(contourSegments(xs, ys, [[0, 1, NaN], [0, 1, 2]], 1.5), []);
  assert.deepEqual(contourSegments(xs, ys, [[0, 1, 2]], 0.5), []);
});

test('marching squares: the cone |(x, y)| at 0.5 is a diamond through the axes at distance 0.5', () => {
  const xs = [-1, 0, 1];
  const ys = [-1, 0, 1];
  const z = ys.map((y) => xs.map((x) => Math.hypot(x, y)));
  // One segment per cell, cell by cell (y rows, then x): each cuts the two axis edges at 0.5.
  assert.deepEqual(contourSegments(xs, ys, z, 0.5), [
    [0, -0.5, -0.5, 0],
    [0.5, 0, 0, -0.5],
    [-0.5, 0, 0, 0.5],
    [0, 0.5, 0.5, 0],
  ]);
  // Through the mapping of a logarithmic scale, crossings are interpolated in log values:
  // between 1 and 100 the level 10 lies halfway.
  assertSegments(contourSegments([0, 1], [0, 1], [[1, 100], [1, 100]], 10, Math.log), [[0.5, 0, 0.5, 1]], 'log');
});

test('marching squares: a saddle is resolved by the mean of its cell', () => {
  // a = z(0,0) = 1 and c = z(1,1) = 1 high, b and d low: mean 0.5.
  const z = [
    [1, 0],
    [0, 1],
  ];
  // Level 0.5: the centre is not above it, so the low corners are joined: the high corners are cut off.
  assert.deepEqual(contourSegments([0, 1], [0, 1], z, 0.5), [
    [0, 0.5, 0.5, 0],
    [1, 0.5, 0.5, 1],
  ]);
  // Level 0.4: the centre is above, the high corners are joined and the low ones cut off.
  assertSegments(
    contourSegments([0, 1], [0, 1], z, 0.4),
    [
      [0.6, 0, 1, 0.4],
      [0.4, 1, 0, 0.6],
    ],
    'level 0.4',
  );
});

test('viridis: the ends of the colour map, clamped outside [0, 1]; the colour bar labels five values', () => {
  assert.deepEqual(colorAt(0), [0x44, 0x01, 0x54]);
  assert.deepEqual(colorAt(1), [0xfd, 0xe7, 0x25]);
  assert.deepEqual(colorAt(-3), [0x44, 0x01, 0x54]);
  assert.deepEqual(colorAt(7), [0xfd, 0xe7, 0x25]);
  // The middle: entry 128 of 256, 2% of the way from stop 5 (#21918c) to stop 6 (#22a884).
  assert.deepEqual(colorAt(0.5), [33, 145, 140]);
  assert.deepEqual(
    colorBarLabels(valueScale(0, 2)).map((l) => [l.t, l.text]),
    [
      [0, '0'],
      [0.25, '0.5'],
      [0.5, '1'],
      [0.75, '1.5'],
      [1, '2'],
    ],
  );
  // Logarithmic: one label a decade.
  assert.deepEqual(
    colorBarLabels(valueScale(0.01, 100)).map((l) => l.text),
    ['0.01', '0.1', '1', '10', '100'],
  );
});

test('axis titles name the direction, its normalization and eigenvalue, or the PCA variance', () => {
  const d = (x: Partial<DirectionInfo>): DirectionInfo => ({ kind: 'random', norm: 'filter', length: 1, ...x });
  assert.equal(describeDirection(undefined, 'x'), 'x');
  assert.equal(describeDirection(d({}), 'x'), 'x: random, filter-normalized');
  assert.equal(describeDirection(d({ norm: 'none' }), 'y'), 'y: random');
  assert.equal(describeDirection(d({ kind: 'eigen1', norm: 'unit', eigenvalue: 12.345678 }), 'y'), 'y: eigen1, λ = 12.35');
  assert.equal(describeDirection(d({ kind: 'pca1', norm: 'none', explained: 0.875 }), 'x'), 'x: PCA1 (87.5% of variance)');
  assert.equal(describeDirection(d({ kind: 'pca2', norm: 'none' }), 'y'), 'y: pca2');
});

test('numbers: 4 significant digits, exponents outside [1e-3, 1e5), ticks without float noise', () => {
  assert.equal(fmt(null), '–');
  assert.equal(fmt(undefined), '–');
  assert.equal(fmt(NaN), 'NaN');
  assert.equal(fmt(Infinity), '∞');
  assert.equal(fmt(-Infinity), '−∞');
  assert.equal(fmt(0), '0');
  assert.equal(fmt(1.5), '1.5');
  assert.equal(fmt(-0.25), '-0.25');
  assert.equal(fmt(2 / 3), '0.6667');
  assert.equal(fmt(2 / 3, 2), '0.67');
  assert.equal(fmt(12345), '12345');
  assert.equal(fmt(123456), '1.235e5');
  assert.equal(fmt(100000), '1e5');
  assert.equal(fmt(0.0001234), '1.234e-4');
  assert.equal(fmt(0.001), '0.001');
  assert.equal(tick(0.1 + 0.2), '0.3');
  assert.equal(tick(-1e-15), '0');
  assert.equal(tick(-0), '0');
  assert.equal(tick(-0.5), '-0.5');
});

test('log-axis tick labels thin out as the axis spans more decades', () => {
  // Within about a decade every tick is labelled.
  assert.deepEqual([1, 2, 3, 5].map((v) => logTick(v, 1)), ['1', '2', '3', '5']);
  // Up to two decades: 1, 2 and 5.
  assert.deepEqual([1, 2, 3, 5, 20, 30].map((v) => logTick(v, 1.5)), ['1', '2', '', '5', '20', '']);
  // Up to four: 1 and 3.
  assert.deepEqual([10, 20, 30, 50].map((v) => logTick(v, 3)), ['10', '', '30', '']);
  // More: powers of ten only, every ceil(decades / 6)-th one.
  assert.deepEqual([10, 100, 1000, 10000, 20].map((v) => logTick(v, 12)), ['', '100', '', '10000', '']);
  // Not a multiple of a power of ten, or not positive: no label.
  assert.equal(logTick(2.5, 1), '');
  assert.equal(logTick(0, 1), '');
  assert.equal(logTick(-1, 1), '');
});

test('durations, file-name keys and thinned tables', () => {
  assert.equal(duration(950), '950 ms');
  assert.equal(duration(1234), '1.23 s');
  assert.equal(duration(12345), '12.3 s');
  assert.equal(duration(125_000), '2 min 5 s');
  assert.equal(slug('Loss surface (x, y)'), 'loss-surface-x-y');
  assert.equal(slug('!!!'), 'chart');
  const ten = Array.from({ length: 10 }, (_, i) => i + 1);
  assert.deepEqual(thin(ten, 4), { rows: [1, 4, 7, 10], note: 'one row in 3 of 10, and the last' });
  assert.deepEqual(thin([...ten, 11], 4), { rows: [1, 4, 7, 10, 11], note: 'one row in 3 of 11, and the last' });
  assert.deepEqual(thin([1, 2], 4), { rows: [1, 2] });
});

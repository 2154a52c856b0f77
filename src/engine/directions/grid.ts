/**
 * Slice axes and the order in which a grid is evaluated.
 *
 * An axis is written `start:stop:steps`: `steps` equally spaced values from start to stop, both
 * included (numpy's `linspace`, as loss-landscape's `--x=-1:1:51`). The reference ranges: Li, Xu,
 * Taylor, Studer, Goldstein 2018 ("Visualizing the Loss Landscape of Neural Nets") use -1:1:51 for
 * 1-D slices and -1:1:51 x -1:1:51 for surfaces; Goodfellow, Vinyals, Saxe 2015 interpolation runs
 * over -0.5:1.5 (401 steps here); PyHessian's tutorial plots the loss along the top eigenvector
 * for lams in [-0.5, 0.5] (51 steps here).
 */
import { InputError } from '../errors';
import { refuseOver } from '../limits';

export const SLICE_1D = '-1:1:51';
export const SURFACE = '-1:1:51';
export const INTERPOLATE = '-0.5:1.5:401';
export const EIGEN_SLICE = '-0.5:0.5:51';

export interface Range {
  start: number;
  stop: number;
  steps: number;
  /** start + (stop - start) i / (steps - 1), i = 0 .. steps - 1; the last is exactly stop. */
  values: number[];
}

/** Steps allowed on one axis (a 2-D grid is further limited by its memory estimate). */
export const MAX_STEPS = 100_000;

/**
 * Parses `start:stop:steps`. `what` names the axis in messages (e.g. 'x range'). Errors
 * (BasinError): an empty or malformed spec, a value that is not a finite number, steps not an
 * integer >= 1 or over MAX_STEPS, an inverted range (start > stop), start == stop with more than
 * one step, a span stop - start that overflows a double (-1e308:1e308), and a range too narrow for
 * its steps to be distinct numbers. `steps` 1 gives just start.
 */

export function parseRange(spec: string, what: string): Range {
  const text = spec.trim();
  const hint = 'expected start:stop:steps, e.g. -1:1:51';
  if (text === '') throw new InputError(`${what}: empty range; ${hint}`);
  const parts = text.split(':').map((p) => p.trim());
  if (parts.length !== 3) throw new InputError(`${what}: malformed range '${text}'; ${hint}`);
  const names = ['start', 'stop', 'steps'];
  const nums = parts.map((p, i) => {
    if (p === '') throw new InputError(`${what}: malformed range '${text}': ${names[i]} is missing; ${hint}`);
    const v = Number(p);
    if (!Number.isFinite(v)) throw new InputError(`${what}: malformed range '${text}': ${names[i]} '${p}' is not a finite number; ${hint}`);
    return v;
  });
  const [start, stop, steps] = nums;
  if (!Number.isInteger(steps)) throw new InputError(`${what}: range '${text}': steps must be a whole number, not ${parts[2]}`);
  if (steps < 1) throw new InputError(`${what}: range '${text}': steps must be at least 1, not ${steps}`);
  refuseOver(`${what}: the number of steps in '${text}'`, steps, MAX_STEPS, { hint: 'per axis' });
  if (start > stop) throw new InputError(`${what}: inverted range ${parts[0]}:${parts[1]}: start must be below stop`);
  if (start === stop && steps > 1) {
    throw new InputError(`${what}: range '${text}' is empty: start equals stop, so ${steps} steps would repeat one point; use steps 1`);
  }
  if (!Number.isFinite(stop - start)) {
    throw new InputError(`${what}: range '${text}' spans stop - start = ${stop - start}, beyond the largest double; use a narrower range`);
  }
  const values: number[] = [];
  if (steps === 1) values.push(start);
  else {
    for (let i = 0; i < steps - 1; i++) values.push(start + ((stop - start) * i) / (steps - 1));
    values.push(stop);
    for (let i = 1; i < steps; i++) {
      if (!(values[i] > values[i - 1])) {
        throw new InputError(`${what}: range '${text}' is too narrow for ${steps} distinct steps (points ${i} and ${i + 1} are both ${values[i]}); use fewer steps or a wider range`);
      }
    }
  }
  return { start, stop, steps, values };
}

/** The strides of `coarseToFineOrder`, coarsest first. */
export const REFINE_STRIDES: readonly number[] = [8, 4, 2, 1];

/** Indices 0, s, 2s, ... below n, plus n - 1. */
function axisLattice(n: number, s: number): boolean[] {
  const on = new Array<boolean>(n).fill(false);
  for (let i = 0; i < n; i += s) on[i] = true;
  if (n > 0) on[n - 1] = true;
  return on;
}

/**
 * An order in which to evaluate an nx x ny grid (index iy * nx + ix) so that every prefix is a
 * progressively refined picture. For each stride s in 8, 4, 2, 1 the level-s lattice is the set of
 * points whose ix is in {0, s, 2s, ...} or nx - 1 and whose iy is in {0, s, 2s, ...} or ny - 1
 * (so the corners come first); level s visits, row-major, the points of its lattice not visited
 * by a coarser level. Level 1 is the whole grid, so every index appears exactly once. For 51 x 51
 * the first 64 indices are the 8 x 8 lattice {0, 8, ..., 48, 50}^2; for a 1-D slice (ny = 1) the
 * same rule applies along x.
 */
export function coarseToFineOrder(nx: number, ny: number): number[] {
  if (!Number.isInteger(nx) || !Number.isInteger(ny) || nx < 0 || ny < 0) {
    throw new Error(`coarseToFineOrder: grid size must be whole numbers, got ${nx} x ${ny}`);
  }
  const seen = new Uint8Array(nx * ny);
  const order: number[] = [];
  for (const s of REFINE_STRIDES) {
    const ox = axisLattice(nx, s);
    const oy = axisLattice(ny, s);
    for (let iy = 0; iy < ny; iy++) {
      if (!oy[iy]) continue;
      for (let ix = 0; ix < nx; ix++) {
        const k = iy * nx + ix;
        if (!ox[ix] || seen[k]) continue;
        seen[k] = 1;
        order.push(k);
      }
    }
  }
  return order;
}

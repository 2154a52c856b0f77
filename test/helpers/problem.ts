/** A Basin problem (the engines' side) made from a float64 reference problem. */
import { problemFrom, type Problem } from '../../src/engine/problem';
import type { RefProblem } from '../reference/float64';

export function problemOf(p: RefProblem): Problem {
  const values = p.ir.params.map((q) => Float32Array.from(p.params.subarray(q.offset, q.offset + q.size)));
  return problemFrom(p.ir, values, p.loss, { x: Float32Array.from(p.x), xShape: p.xShape, y: Float32Array.from(p.y), yShape: p.yShape });
}

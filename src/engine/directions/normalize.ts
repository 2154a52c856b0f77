/**
 * Random directions in parameter space and their normalization, after Li, Xu, Taylor, Studer and
 * Goldstein 2018, "Visualizing the Loss Landscape of Neural Nets" (NeurIPS), sec. 4, and their
 * reference code (github.com/tomgoldstein/loss-landscape, `net_plotter.py`).
 *
 * Filter normalization (eq. in sec. 4): a Gaussian direction d is rescaled filter by filter,
 *
 *   d_{i,j} <- d_{i,j} / (|d_{i,j}| + 1e-10) * |theta_{i,j}|,
 *
 * where d_{i,j} is the j-th filter of the i-th layer. The 1e-10 is the reference code's guard
 * (`d.mul_(w.norm() / (d.norm() + 1e-10))`), so |d_filter| equals |w_filter| up to a relative
 * 1e-10 / |d_filter|. PyTorch stores the output unit first (`[out, in]`, `[cout, cin, kh, kw]`);
 * TF.js stores it last (Dense `[in, out]`, Conv2D `[kh, kw, cin, cout]`), so here a filter is the
 * slice along the LAST axis: one column of a Dense kernel, one output channel of a Conv2D kernel.
 * Filter-normalized slices are invariant to the rescaling of Dinh, Pascanu, Bengio and Bengio 2017
 * ("Sharp Minima Can Generalize For Deep Nets"): scaling a ReLU layer by alpha and the next by
 * 1/alpha scales the matching parts of d by alpha and 1/alpha, so theta + t d traces the same
 * functions.
 *
 * 'layer' rescales each whole parameter tensor to |theta_tensor| (same guard); 'none' leaves the
 * Gaussian as it is.
 *
 * Tensors of one dimension (biases, batch-norm gamma and beta): with ignore 'biasbn' (the paper's
 * default) their part of d is zero; with ignore 'none' it is a copy of the weights, as the
 * reference code does (`d.copy_(w)`), when norm is 'filter' or 'layer'. With norm 'none' they are
 * left as drawn (the reference code copies the weights there too; Basin keeps 'none' meaning "no
 * rescaling of any kind").
 */
import type { ModelIR } from '../model/ir';
import type { Rng } from '../rng';

export type NormKind = 'filter' | 'layer' | 'none';
export type IgnoreKind = 'biasbn' | 'none';

export const NORM_KINDS: readonly NormKind[] = ['filter', 'layer', 'none'];
export const IGNORE_KINDS: readonly IgnoreKind[] = ['biasbn', 'none'];

/** The reference code's guard against a zero direction filter. */
export const NORM_EPS = 1e-10;

function checkLengths(what: string, d: ArrayLike<number>, theta: ArrayLike<number>, ir: ModelIR): void {
  if (d.length !== ir.numParams || theta.length !== ir.numParams) {
    throw new Error(`${what}: direction has ${d.length} entries and theta ${theta.length}, but the model has ${ir.numParams} parameters`);
  }
}

/**
 * Normalizes `d` against the weights `theta` (both flat, in `ir.params` order); returns a new array
 * and leaves `d` untouched. See the module comment for the rules.
 */
export function normalizeDirection(
  d: Float64Array,
  theta: ArrayLike<number>,
  ir: ModelIR,
  norm: NormKind,
  ignore: IgnoreKind,
): Float64Array {
  checkLengths('normalizeDirection', d, theta, ir);
  const out = Float64Array.from(d);
  for (const p of ir.params) {
    const { offset, size, shape } = p;
    if (shape.length <= 1) {
      if (ignore === 'biasbn') out.fill(0, offset, offset + size);
      else if (norm !== 'none') for (let k = offset; k < offset + size; k++) out[k] = theta[k];
      continue;
    }
    if (norm === 'layer') {
      let dd = 0;
      let ww = 0;
      for (let k = offset; k < offset + size; k++) {
        dd += out[k] * out[k];
        ww += theta[k] * theta[k];
      }
      const s = Math.sqrt(ww) / (Math.sqrt(dd) + NORM_EPS);
      for (let k = offset; k < offset + size; k++) out[k] *= s;
    } else if (norm === 'filter') {
      // Filter c of a row-major tensor whose last axis has length `cols`: entries offset + r * cols + c.
      const cols = shape[shape.length - 1];
      const rows = cols > 0 ? size / cols : 0;
      for (let c = 0; c < cols; c++) {
        let dd = 0;
        let ww = 0;
        for (let r = 0; r < rows; r++) {
          const k = offset + r * cols + c;
          dd += out[k] * out[k];
          ww += theta[k] * theta[k];
        }
        const s = Math.sqrt(ww) / (Math.sqrt(dd) + NORM_EPS);
        for (let r = 0; r < rows; r++) out[offset + r * cols + c] *= s;
      }
    }
  }
  return out;
}

/**
 * A random direction: one `rng.normal()` per entry in flat parameter order, then
 * `normalizeDirection`. The same seed gives the same direction for any model with the same
 * parameter count (the Gaussian does not depend on theta; only the rescaling does).
 */
export function randomDirection(ir: ModelIR, theta: ArrayLike<number>, rng: Rng, norm: NormKind, ignore: IgnoreKind): Float64Array {
  const g = rng.normalVector(ir.numParams);
  return normalizeDirection(g, theta, ir, norm, ignore);
}

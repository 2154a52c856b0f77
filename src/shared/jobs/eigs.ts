/** `eigs`: the top-k or bottom-k eigenvalues of the curvature (Lanczos or power iteration). */
import type { EigsResult } from '../results';
import { fmt } from '../format';
import { choice, int, num } from '../fields';
import { CURVATURE_OPTIONS, type CurvatureJobOptions } from './common';
import { curvatureTitle, defineJob, footer, textTable } from './spec';

export interface EigsJobOptions extends CurvatureJobOptions {
  k?: number;
  which?: 'top' | 'bottom';
  method?: 'lanczos' | 'power';
  maxIter?: number;
  tol?: number;
  /** What `tol` bounds (Lanczos): the eigenvalue error bound (default) or the Ritz residual. */
  stopOn?: 'bound' | 'residual';
}

export const eigs = defineJob<EigsJobOptions, EigsResult>({
  summary: "curvature eigenvalues, and the gradient's overlap with their eigenvectors",
  options: {
    ...CURVATURE_OPTIONS,
    k: { spec: int(1), flag: 'k', arg: 'N', help: 'how many eigenvalues' },
    which: { spec: choice(['top', 'bottom']), flag: 'which', help: 'the largest or the most negative (top)' },
    method: { spec: choice(['lanczos', 'power']), flag: 'method', help: 'Lanczos with full reorthogonalization, or power iteration (lanczos)' },
    maxIter: { spec: int(1), flag: 'max-iter', arg: 'N', help: 'iteration limit' },
    tol: { spec: num(0), flag: 'tol', arg: 'T', help: 'tolerance (1e-6, both methods): relative eigenvalue error estimate, or with --stop residual the residual bound' },
    stopOn: { spec: choice(['bound', 'residual']), flag: 'stop', help: "what the tolerance bounds: the error estimate, or the Ritz residual plus the products' float32 noise (bound)" },
  },
  defaults: { k: 1 },
  resultKind: 'eigs',
  title: (r) =>
    `${r.which === 'top' ? 'Top' : 'Bottom'} ${r.eigenvalues.length > 1 ? `${r.eigenvalues.length} ` : ''}Hessian eigenvalue${r.eigenvalues.length === 1 ? '' : 's'}${r.layer ? ` of ${r.layer}` : ''}`,
  format(r) {
    const ov = r.gradientOverlap;
    const rows = [['#', 'eigenvalue', '± bound', 'residual', ...(ov ? ['grad cos^2'] : [])]];
    r.eigenvalues.forEach((v, i) => rows.push([String(i + 1), fmt(v, 8), fmt(r.errorBounds[i], 2), fmt(r.residuals[i], 2), ...(ov ? [fmt(ov.perVector[i] ?? NaN, 3)] : [])]));
    const head =
      `${r.which === 'top' ? 'Top' : 'Bottom'} ${r.eigenvalues.length} ${curvatureTitle(r.curvature)} eigenvalue${r.eigenvalues.length > 1 ? 's' : ''}` +
      `${r.layer ? ` of layer '${r.layer}'` : ''} (${r.method}, ${r.hvps} products${r.converged ? '' : ', NOT converged'})`;
    const cond = r.condition ? `\ncondition ${fmt(r.condition.value, 4)}  (${r.condition.definition})` : '';
    const noise = r.productNoise !== undefined ? `\nresidual = Ritz residual + the products' float32 noise (${fmt(r.productNoise, 2)}, an estimate)` : '';
    let grad = '';
    if (ov) {
      grad = `\ngradient |g| ${fmt(ov.gradNorm, 4)}: ${(ov.fraction * 100).toFixed(ov.fraction > 0.999 || ov.fraction < 0.001 ? 4 : 1)}% of |g|^2 in the span of these ${r.eigenvalues.length} eigenvectors (Gur-Ari et al. 2018)`;
      if (r.which === 'top' && ov.gradNorm > 0 && (ov.perVector[0] ?? 1) < 1e-6) {
        grad += `\nnote: lambda_max is in a direction the gradient has no component along: GD is not limited by it`;
      }
    }
    return `${head}\n${textTable(rows)}${cond}${noise}${grad}\n\n${footer(r)}`;
  },
});

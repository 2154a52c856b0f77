/** Human-readable tables for the CLI's results. */
import type { CurvatureName, DensityResult, EigsResult, FlatnessResult, InfoResult, JobResult, SliceResult, SurfaceResult, TraceResult } from '../shared/results';
export { gridCsv } from '../shared/csv';

export function fmt(x: number, digits = 6): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  return a >= 1e5 || a < 1e-3 ? x.toExponential(digits - 1) : x.toPrecision(digits);
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')).join('\n');
}

const CURVATURE_TITLES: Record<CurvatureName, string> = {
  hessian: 'Hessian',
  ggn: 'generalized Gauss-Newton',
  fisher: 'Fisher',
  'empirical-fisher': 'empirical Fisher',
};

/** What a result analysed: the Hessian unless it says otherwise (results written before --curvature). */
function curvatureTitle(c: CurvatureName | undefined): string {
  return CURVATURE_TITLES[c ?? 'hessian'] ?? String(c);
}

function footer(r: { backendDetail: string; seed: number; ms: number; hvpMethod?: string; hvpReason?: string; model: string; params: number; samples: number; lossName: string; lossValue: number }): string {
  const lines = [
    `model    ${r.model}: ${r.params.toLocaleString()} parameters, ${r.samples} samples, ${r.lossName} = ${fmt(r.lossValue)}`,
    `backend  ${r.backendDetail}   seed ${r.seed}   ${(r.ms / 1000).toFixed(2)} s`,
  ];
  if (r.hvpMethod) lines.push(`H·v      ${r.hvpMethod === 'exact' ? 'exact (double backprop)' : 'finite differences'}: ${r.hvpReason}`);
  return lines.join('\n');
}

function eigs(r: EigsResult): string {
  const ov = r.gradientOverlap;
  const rows = [['#', 'eigenvalue', '± bound', 'residual', ...(ov ? ['grad cos^2'] : [])]];
  r.eigenvalues.forEach((v, i) => rows.push([String(i + 1), fmt(v, 8), fmt(r.errorBounds[i], 2), fmt(r.residuals[i], 2), ...(ov ? [fmt(ov.perVector[i] ?? NaN, 3)] : [])]));
  const head = `${r.which === 'top' ? 'Top' : 'Bottom'} ${r.eigenvalues.length} ${curvatureTitle(r.curvature)} eigenvalue${r.eigenvalues.length > 1 ? 's' : ''}` +
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
  return `${head}\n${table(rows)}${cond}${noise}${grad}\n\n${footer(r)}`;
}

function trace(r: TraceResult): string {
  return `${curvatureTitle(r.curvature)} trace${r.layer ? ` of layer '${r.layer}'` : ''} (${r.method === 'hutchpp' ? 'Hutch++' : 'Hutchinson'}, ${r.hvps} products)\n` +
    `trace  ${fmt(r.trace, 8)}  ± ${fmt(r.stderr, 2)} (standard error)\n\n${footer(r)}`;
}

function density(r: DensityResult): string {
  const all = r.nodes.flat();
  const lo = Math.min(...all);
  const hi = Math.max(...all);
  // A coarse text histogram of the smoothed density on 12 bins.
  const bins = 12;
  const mass = new Array<number>(bins).fill(0);
  r.nodes.forEach((ns, run) => ns.forEach((t, i) => (mass[Math.min(bins - 1, Math.floor(((t - lo) / (hi - lo || 1)) * bins))] += r.weights[run][i] / r.nodes.length)));
  const rows = [['eigenvalue range', 'mass', '']];
  for (let b = 0; b < bins; b++) {
    const a = lo + ((hi - lo) * b) / bins;
    rows.push([`${fmt(a, 4)} .. ${fmt(a + (hi - lo) / bins, 4)}`, fmt(mass[b], 3), '#'.repeat(Math.round(mass[b] * 40))]);
  }
  const what = r.curvature && r.curvature !== 'hessian' ? ` of the ${curvatureTitle(r.curvature)}` : '';
  return `Spectral density${what}${r.layer ? ` of layer '${r.layer}'` : ''} (SLQ: ${r.runs} run${r.runs > 1 ? 's' : ''} x ${r.steps} steps, ${r.hvps} products, sigma^2 ${fmt(r.sigma2, 2)})\n${table(rows)}\n\n${footer(r)}`;
}

function info(r: InfoResult): string {
  const rows = [['layer', 'kind', 'output', 'params', '']];
  for (const l of r.layers) rows.push([l.name, l.kind, `[${l.outShape.join(', ')}]`, String(l.params), l.detail]);
  const lines = [`${r.model}: ${r.params.toLocaleString()} trainable parameters`, table(rows), ''];
  if (r.samples !== undefined) lines.push(`data     ${r.samples} samples; ${r.lossName} = ${fmt(r.lossValue ?? NaN)}${r.accuracy !== undefined ? `, accuracy ${(r.accuracy * 100).toFixed(1)}%` : ''}`);
  lines.push(`H·v      ${r.hvpMethods}`, `backend  ${r.backendDetail}`);
  return lines.join('\n');
}

const SHADES = ' .:-=+*#%@';

/** A row of values as a one-line intensity strip (low = blank, high = '@'), NaN/null as '?'. */
function strip(values: (number | null)[], lo: number, hi: number): string {
  return values
    .map((v) => (v === null || !Number.isFinite(v) ? '?' : SHADES[Math.min(SHADES.length - 1, Math.floor(((v - lo) / (hi - lo || 1)) * SHADES.length))]))
    .join('');
}

function directionLine(r: SliceResult | SurfaceResult): string {
  return r.directions
    .map((d, i) => {
      const extra = [
        d.eigenvalue !== undefined ? `lambda ${fmt(d.eigenvalue, 5)}` : '',
        d.residual !== undefined ? `residual ${fmt(d.residual, 2)}` : '',
        d.angleBound !== undefined ? (d.angleBound < 1 ? `sin(angle to eigenvector) <= ${fmt(d.angleBound, 2)}` : 'angle to eigenvector not bounded (no gap)') : '',
        d.cosineBeforeOrthogonalization !== undefined ? `cos with x before orthogonalizing ${fmt(d.cosineBeforeOrthogonalization, 2)}` : '',
        d.explained !== undefined ? `explains ${(d.explained * 100).toFixed(1)}%` : '',
      ].filter(Boolean);
      return `${i === 0 ? 'x' : r.kind === 'slice' ? String(i + 1) : 'y'}: ${d.kind} (${d.norm}${d.ignore ? `, ignore ${d.ignore}` : ''}, |d| ${fmt(d.length, 4)})${extra.length ? `, ${extra.join(', ')}` : ''}`;
    })
    .join('\n');
}

function gridFooter(r: SliceResult | SurfaceResult): string {
  return `${r.complete ? '' : `CANCELLED: ${r.evaluations} points computed, the rest are null\n`}${r.evaluations} points, ${r.threads} thread${r.threads > 1 ? 's' : ''}\n${footer(r)}`;
}

function slice(r: SliceResult): string {
  const curves = (Array.isArray(r.loss[0]) ? r.loss : [r.loss]) as (number | null)[][];
  const flat = curves.flat().filter((v): v is number => v !== null);
  const lo = Math.min(...flat);
  const hi = Math.max(...flat);
  const lines = [`Loss along ${curves.length} direction${curves.length > 1 ? 's' : ''}, x in [${fmt(r.x[0], 3)}, ${fmt(r.x[r.x.length - 1], 3)}] (${r.x.length} points)`];
  const mid = r.x.reduce((b, x, i) => (Math.abs(x) < Math.abs(r.x[b]) ? i : b), 0);
  curves.forEach((c, i) => {
    const vals = c.filter((v): v is number => v !== null);
    lines.push(`${r.directions[i].kind.padEnd(14)} |${strip(c, lo, hi)}|  min ${fmt(Math.min(...vals), 4)}, at ${fmt(r.x[mid], 2)}: ${fmt(c[mid] ?? NaN, 5)}`);
  });
  if (r.endpoints) lines.push(...r.endpoints.map((e, i) => `end point ${i}: ${e.file}: loss ${fmt(e.loss)}`));
  lines.push(`range    loss ${fmt(lo, 4)} .. ${fmt(hi, 4)}`, directionLine(r), '', gridFooter(r));
  return lines.join('\n');
}

function surface(r: SurfaceResult): string {
  const flat = r.loss.flat().filter((v): v is number => v !== null);
  const lo = Math.min(...flat);
  const hi = Math.max(...flat);
  const lines = [`Loss surface ${r.x.length} x ${r.y.length}, x in [${fmt(r.x[0], 3)}, ${fmt(r.x[r.x.length - 1], 3)}], y in [${fmt(r.y[0], 3)}, ${fmt(r.y[r.y.length - 1], 3)}]`];
  // A small text heat map: at most 60 columns and 24 rows, sampled.
  const cs = Math.max(1, Math.ceil(r.x.length / 60));
  const rs = Math.max(1, Math.ceil(r.y.length / 24));
  for (let iy = r.y.length - 1; iy >= 0; iy -= rs) lines.push(`|${strip(r.loss[iy].filter((_, ix) => ix % cs === 0), lo, hi)}|`);
  lines.push(`loss ${fmt(lo, 4)} (blank) .. ${fmt(hi, 4)} (@)`);
  if (r.path) lines.push(`path: ${r.path.map((p) => `(${fmt(p.x, 3)}, ${fmt(p.y, 3)}) ${fmt(p.loss, 4)}`).join(' -> ')}`);
  lines.push(directionLine(r), '', gridFooter(r));
  return lines.join('\n');
}

const FLATNESS_LABELS: Record<string, [string, string]> = {
  sam: ['SAM sharpness', 'L(w + rho g/|g|) - L(w)'],
  asam: ['adaptive sharpness', 'ASAM, scale-invariant ascent'],
  epsilon: ['epsilon-sharpness', '100 x max rise in the box / (1 + L)'],
  pacbayes: ['PAC-Bayes flatness', "1/sigma'^2, magnitude-aware"],
  radius: ['basin radius', 'mean over random directions'],
};

function flatness(r: FlatnessResult): string {
  const show = (v: number | string | boolean | number[] | null): string => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : fmt(v, 4)) : Array.isArray(v) ? `[${v.length}]` : String(v));
  const rows = [['measure', 'value', '± stderr', 'what']];
  const notes: string[] = [];
  for (const m of r.measures) {
    const [label, what] = FLATNESS_LABELS[m.name] ?? [m.name, ''];
    rows.push([label, fmt(m.value, 6), m.stderr !== undefined ? fmt(m.stderr, 2) : '', what]);
    const extra = m.name === 'radius' ? ` log-volume ${show(m.detail.logVolume ?? null)} ± ${show(m.detail.logVolumeStderr ?? null)};` : m.name === 'pacbayes' ? ` sigma' ${show(m.detail.sigma ?? null)};` : '';
    notes.push(`  ${label}:${extra} ${Object.entries(m.params).map(([k, v]) => `${k} ${show(v)}`).join(', ')}; ${m.evaluations} evaluations`);
  }
  const t = table(rows).split('\n');
  return `Flatness measures\n${t.join('\n')}\n${notes.join('\n')}\n\n${footer(r)}`;
}

export function formatResult(r: JobResult): string {
  switch (r.kind) {
    case 'eigs':
      return eigs(r);
    case 'trace':
      return trace(r);
    case 'density':
      return density(r);
    case 'info':
      return info(r);
    case 'slice':
    case 'interpolate':
      return slice(r);
    case 'surface':
    case 'trajectory':
      return surface(r);
    case 'flatness':
      return flatness(r);
  }
}

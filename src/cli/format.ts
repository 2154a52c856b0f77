/** Human-readable tables for the CLI's results. */
import type { DensityResult, EigsResult, InfoResult, JobResult, TraceResult } from '../shared/results';

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

function footer(r: { backendDetail: string; seed: number; ms: number; hvpMethod?: string; hvpReason?: string; model: string; params: number; samples: number; loss: string; lossValue: number }): string {
  const lines = [
    `model    ${r.model}: ${r.params.toLocaleString()} parameters, ${r.samples} samples, ${r.loss} = ${fmt(r.lossValue)}`,
    `backend  ${r.backendDetail}   seed ${r.seed}   ${(r.ms / 1000).toFixed(2)} s`,
  ];
  if (r.hvpMethod) lines.push(`H·v      ${r.hvpMethod === 'exact' ? 'exact (double backprop)' : 'finite differences'}: ${r.hvpReason}`);
  return lines.join('\n');
}

function eigs(r: EigsResult): string {
  const rows = [['#', 'eigenvalue', '± bound', 'residual']];
  r.eigenvalues.forEach((v, i) => rows.push([String(i + 1), fmt(v, 8), fmt(r.errorBounds[i], 2), fmt(r.residuals[i], 2)]));
  const head = `${r.which === 'top' ? 'Top' : 'Bottom'} ${r.eigenvalues.length} Hessian eigenvalue${r.eigenvalues.length > 1 ? 's' : ''}` +
    `${r.layer ? ` of layer '${r.layer}'` : ''} (${r.method}, ${r.hvps} products${r.converged ? '' : ', NOT converged'})`;
  const cond = r.condition ? `\ncondition ${fmt(r.condition.value, 4)}  (${r.condition.definition})` : '';
  return `${head}\n${table(rows)}${cond}\n\n${footer(r)}`;
}

function trace(r: TraceResult): string {
  return `Hessian trace${r.layer ? ` of layer '${r.layer}'` : ''} (${r.method === 'hutchpp' ? 'Hutch++' : 'Hutchinson'}, ${r.hvps} products)\n` +
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
  return `Spectral density (SLQ: ${r.runs} run${r.runs > 1 ? 's' : ''} x ${r.steps} steps, ${r.hvps} products, sigma^2 ${fmt(r.sigma2, 2)})\n${table(rows)}\n\n${footer(r)}`;
}

function info(r: InfoResult): string {
  const rows = [['layer', 'kind', 'output', 'params', '']];
  for (const l of r.layers) rows.push([l.name, l.kind, `[${l.outShape.join(', ')}]`, String(l.params), l.detail]);
  const lines = [`${r.model}: ${r.params.toLocaleString()} trainable parameters`, table(rows), ''];
  if (r.samples !== undefined) lines.push(`data     ${r.samples} samples; ${r.loss} = ${fmt(r.lossValue ?? NaN)}${r.accuracy !== undefined ? `, accuracy ${(r.accuracy * 100).toFixed(1)}%` : ''}`);
  lines.push(`H·v      ${r.hvpMethods}`, `backend  ${r.backendDetail}`);
  return lines.join('\n');
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
  }
}

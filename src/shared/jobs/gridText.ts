/** The CLI's text for grid results: slices and interpolations (curves), surfaces and trajectory planes (maps). */
import type { SliceResult, SurfaceResult } from '../results';
import { fmt } from '../format';
import { footer } from './spec';

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

/** Curves as intensity strips, with each one's minimum and its value at 0. */
export function sliceText(r: SliceResult): string {
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
  if (r.endpoints) lines.push(...r.endpoints.map((e, i) => `end point ${i}: ${e.file}: loss ${fmt(e.loss, 6)}`));
  lines.push(`range    loss ${fmt(lo, 4)} .. ${fmt(hi, 4)}`, directionLine(r), '', gridFooter(r));
  return lines.join('\n');
}

/** A small text heat map (at most 60 columns and 24 rows, sampled), with the path of a trajectory. */
export function surfaceText(r: SurfaceResult): string {
  const flat = r.loss.flat().filter((v): v is number => v !== null);
  const lo = Math.min(...flat);
  const hi = Math.max(...flat);
  const lines = [`Loss surface ${r.x.length} x ${r.y.length}, x in [${fmt(r.x[0], 3)}, ${fmt(r.x[r.x.length - 1], 3)}], y in [${fmt(r.y[0], 3)}, ${fmt(r.y[r.y.length - 1], 3)}]`];
  const cs = Math.max(1, Math.ceil(r.x.length / 60));
  const rs = Math.max(1, Math.ceil(r.y.length / 24));
  for (let iy = r.y.length - 1; iy >= 0; iy -= rs) lines.push(`|${strip(r.loss[iy].filter((_, ix) => ix % cs === 0), lo, hi)}|`);
  lines.push(`loss ${fmt(lo, 4)} (blank) .. ${fmt(hi, 4)} (@)`);
  if (r.path) lines.push(`path: ${r.path.map((p) => `(${fmt(p.x, 3)}, ${fmt(p.y, 3)}) ${fmt(p.loss, 4)}`).join(' -> ')}`);
  lines.push(directionLine(r), '', gridFooter(r));
  return lines.join('\n');
}

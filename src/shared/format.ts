/**
 * Number formatting for everything Basin prints or draws: the CLI's tables, the panel's cards and
 * charts, the editor's CodeLens. One function, so a number reads the same everywhere.
 */

/**
 * A compact, readable number: `digits` significant digits, trailing zeros dropped, exponent
 * notation when very large (>= 1e5) or small (< 1e-3): 0.000123456 -> "1.235e-4" with 4 digits.
 * Missing values (null, undefined) print as '–', infinities as '∞' and '−∞'.
 */
export function fmt(v: number | null | undefined, digits = 4): string {
  if (v === null || v === undefined) return '–';
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '∞' : '−∞';
  if (v === 0) return '0';
  const d = Math.max(1, Math.min(21, Math.round(digits)));
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3)
    return v
      .toExponential(d - 1)
      .replace(/\.?0+e/, 'e')
      .replace('e+', 'e');
  if (a >= 10 ** d) return String(Math.round(v));
  const s = v.toPrecision(d);
  return s.includes('.') && !s.includes('e') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

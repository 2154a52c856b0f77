/**
 * The loss surface's numbers, as pure functions (no DOM) so tests can check them: the viridis
 * colour map, the value scale of colours and contours (logarithmic when the loss spans more than a
 * factor of 10), round axis ticks, contour lines by marching squares and their levels, the colour
 * bar's labels and the axis titles. The heatmap card (heatmap.ts) draws with them.
 */
import type { DirectionInfo } from '../../src/shared/results';
import { fmt } from '../format';
import { isLogScale } from './labels';

/** Viridis (matplotlib), 11 stops: perceptually uniform and readable in grey and by most colour-blind readers. */
const VIRIDIS = ['#440154', '#482475', '#414487', '#355f8d', '#2a788e', '#21918c', '#22a884', '#44bf70', '#7ad151', '#bddf26', '#fde725'];

const LUT: Uint8ClampedArray = (() => {
  const stops = VIRIDIS.map((c) => [parseInt(c.slice(1, 3), 16), parseInt(c.slice(3, 5), 16), parseInt(c.slice(5, 7), 16)]);
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * (stops.length - 1);
    const k = Math.min(stops.length - 2, Math.floor(t));
    const f = t - k;
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = stops[k][c] + (stops[k + 1][c] - stops[k][c]) * f;
  }
  return lut;
})();

export function colorAt(t: number): [number, number, number] {
  const i = Math.max(0, Math.min(255, Math.round(t * 255))) * 3;
  return [LUT[i], LUT[i + 1], LUT[i + 2]];
}

/** About `count` round tick values in [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const e = raw / mag;
  const step = mag * (e >= 7.5 ? 10 : e >= 3.5 ? 5 : e >= 1.5 ? 2 : 1);
  const out: number[] = [];
  const k0 = Math.ceil(lo / step - 1e-9);
  const k1 = Math.floor(hi / step + 1e-9);
  for (let k = k0; k <= k1; k++) out.push(k === 0 ? 0 : Number((k * step).toPrecision(12)));
  return out;
}

/** The value scale of the colours and contours: logarithmic when the range is large and positive. */
export interface ValueScale {
  min: number;
  max: number;
  log: boolean;
  /** Value -> [0, 1]. */
  t(v: number): number;
  /** [0, 1] -> value. */
  inv(t: number): number;
}

export function valueScale(min: number, max: number): ValueScale {
  const log = isLogScale(min, max);
  if (log) {
    const a = Math.log(min);
    const b = Math.log(max);
    return { min, max, log, t: (v) => (b > a ? (Math.log(v) - a) / (b - a) : 0.5), inv: (t) => Math.exp(a + t * (b - a)) };
  }
  return { min, max, log, t: (v) => (max > min ? (v - min) / (max - min) : 0.5), inv: (t) => min + t * (max - min) };
}

/** A contour segment in data coordinates: [x0, y0, x1, y1]. */
export type Seg = [number, number, number, number];

/**
 * Marching squares: segments of the level set {f = level} over a grid of values at (xs[i], ys[j]),
 * in data coordinates; cells with an uncomputed corner are skipped. Saddles are resolved by the
 * cell's mean. `f` maps values first (log for a log scale) so the interpolation follows the colours.
 */
export function contourSegments(
  xs: number[],
  ys: number[],
  z: (number | null)[][],
  level: number,
  f: (v: number) => number = (v) => v,
): Seg[] {
  const out: Seg[] = [];
  const L = f(level);
  for (let j = 0; j + 1 < ys.length; j++) {
    const r0 = z[j];
    const r1 = z[j + 1];
    if (!r0 || !r1) continue;
    for (let i = 0; i + 1 < xs.length; i++) {
      const raw = [r0[i], r0[i + 1], r1[i + 1], r1[i]];
      if (raw.some((v) => v === null || v === undefined || !Number.isFinite(v))) continue;
      const [a, b, c, d] = (raw as number[]).map(f);
      const idx = (a > L ? 1 : 0) | (b > L ? 2 : 0) | (c > L ? 4 : 0) | (d > L ? 8 : 0);
      if (idx === 0 || idx === 15) continue;
      const x0 = xs[i];
      const x1 = xs[i + 1];
      const y0 = ys[j];
      const y1 = ys[j + 1];
      const lerp = (p: number, q: number): number => (q === p ? 0.5 : (L - p) / (q - p));
      // Edge crossings: 0 bottom (a-b), 1 right (b-c), 2 top (d-c), 3 left (a-d).
      const e = (k: number): [number, number] => {
        switch (k) {
          case 0:
            return [x0 + (x1 - x0) * lerp(a, b), y0];
          case 1:
            return [x1, y0 + (y1 - y0) * lerp(b, c)];
          case 2:
            return [x0 + (x1 - x0) * lerp(d, c), y1];
          default:
            return [x0, y0 + (y1 - y0) * lerp(a, d)];
        }
      };
      const seg = (p: number, q: number): void => {
        const [ax, ay] = e(p);
        const [bx, by] = e(q);
        out.push([ax, ay, bx, by]);
      };
      const centreHigh = (a + b + c + d) / 4 > L;
      switch (idx) {
        case 1:
        case 14:
          seg(3, 0);
          break;
        case 2:
        case 13:
          seg(0, 1);
          break;
        case 3:
        case 12:
          seg(3, 1);
          break;
        case 4:
        case 11:
          seg(1, 2);
          break;
        case 6:
        case 9:
          seg(0, 2);
          break;
        case 7:
        case 8:
          seg(2, 3);
          break;
        case 5:
          if (centreHigh) {
            seg(0, 1);
            seg(2, 3);
          } else {
            seg(3, 0);
            seg(1, 2);
          }
          break;
        case 10:
          if (centreHigh) {
            seg(3, 0);
            seg(1, 2);
          } else {
            seg(0, 1);
            seg(2, 3);
          }
          break;
      }
    }
  }
  return out;
}

/** About 10 contour levels strictly inside the range: geometric on a log scale. */
export function contourLevels(s: ValueScale, n = 10): number[] {
  const out: number[] = [];
  for (let k = 1; k <= n; k++) out.push(s.inv(k / (n + 1)));
  return out;
}

/** An axis title: the direction's kind, its normalization and its eigenvalue when it has one. */
export function describeDirection(d: DirectionInfo | undefined, axis: string): string {
  if (!d) return axis;
  const kind =
    d.kind.startsWith('pca') && d.explained !== undefined
      ? `${d.kind.toUpperCase()} (${(d.explained * 100).toFixed(1)}% of variance)`
      : d.kind;
  const norm = d.norm && d.norm !== 'unit' && d.norm !== 'none' ? `, ${d.norm}-normalized` : '';
  const eig = d.eigenvalue !== undefined ? `, λ = ${fmt(d.eigenvalue)}` : '';
  return `${axis}: ${kind}${norm}${eig}`;
}

/** The colour bar's five value labels, bottom (t = 0, the minimum) to top (t = 1, the maximum). */
export function colorBarLabels(s: ValueScale): { t: number; text: string }[] {
  const out: { t: number; text: string }[] = [];
  for (let k = 0; k <= 4; k++) out.push({ t: k / 4, text: fmt(s.inv(k / 4), 3) });
  return out;
}

/**
 * The 2-D loss surface: an ImageData colour map (viridis) on a plain canvas, contour lines by
 * marching squares, a colour bar, axes, and a trajectory's path on top. Cells not computed yet
 * (null) stay background, so a coarse-to-fine stream visibly fills in.
 */
import type { DirectionInfo, SurfaceResult } from '../../src/shared/results';
import { Card, canvasPng, type PanelContext } from './card';
import { fmt, h, table, tick } from '../format';
import { alpha } from '../theme';
import { colorBarTitle, isLogScale } from './labels';

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

function colorAt(t: number): [number, number, number] {
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
interface ValueScale {
  min: number;
  max: number;
  log: boolean;
  /** Value -> [0, 1]. */
  t(v: number): number;
  /** [0, 1] -> value. */
  inv(t: number): number;
}

function valueScale(min: number, max: number): ValueScale {
  const log = isLogScale(min, max);
  if (log) {
    const a = Math.log(min);
    const b = Math.log(max);
    return { min, max, log, t: (v) => (b > a ? (Math.log(v) - a) / (b - a) : 0.5), inv: (t) => Math.exp(a + t * (b - a)) };
  }
  return { min, max, log, t: (v) => (max > min ? (v - min) / (max - min) : 0.5), inv: (t) => min + t * (max - min) };
}

type Seg = [number, number, number, number];

/** A point as '(x, y)' with tick precision. */
const at = (x: number, y: number): string => `(${tick(x)}, ${tick(y)})`;

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

interface Layout {
  xDom: [number, number];
  yDom: [number, number];
  px: number;
  py: number;
  pw: number;
  ph: number;
}

export class HeatmapCard extends Card {
  private readonly canvas: HTMLCanvasElement;
  private readonly readout: HTMLElement;
  private readonly ro: ResizeObserver;
  private result?: SurfaceResult;
  private layout?: Layout;
  private lastWidth = 0;

  constructor(key: string, title: string, ctx: PanelContext) {
    super(key, title, ctx, { wide: true });
    this.canvas = h('canvas', { role: 'img', 'aria-label': `${title}: no data yet`, className: 'heatmap' });
    this.readout = h('p', { className: 'readout', 'aria-hidden': 'true', text: ' ' });
    this.figure.classList.add('figure-heatmap');
    this.figure.append(this.canvas, this.readout);
    // Redraw on the next frame: drawing resizes the canvas, which would re-enter the observer.
    let queued = false;
    this.ro = new ResizeObserver(() => {
      if (queued) return;
      queued = true;
      requestAnimationFrame(() => {
        queued = false;
        if (this.figure.clientWidth !== this.lastWidth) this.draw();
      });
    });
    this.ro.observe(this.figure);
    this.canvas.addEventListener('mousemove', (e) => this.hover(e));
    this.canvas.addEventListener('mouseleave', () => (this.readout.textContent = ' '));
  }

  set(result: SurfaceResult): void {
    this.result = result;
    this.draw();
    this.canvas.setAttribute('aria-label', this.describe());
    this.refreshTable();
  }

  private stats(): { min: number; max: number; argmin: [number, number]; done: number; total: number } {
    const r = this.result!;
    let min = Infinity;
    let max = -Infinity;
    let argmin: [number, number] = [0, 0];
    let done = 0;
    r.loss.forEach((row, iy) =>
      row.forEach((v, ix) => {
        if (v === null || !Number.isFinite(v)) return;
        done++;
        if (v < min) {
          min = v;
          argmin = [ix, iy];
        }
        if (v > max) max = v;
      }),
    );
    return { min, max, argmin, done, total: r.x.length * r.y.length };
  }

  private describe(): string {
    const r = this.result;
    if (!r) return 'Loss surface: no data yet';
    const s = this.stats();
    const what = r.kind === 'trajectory' ? 'Loss on the trajectory plane' : 'Loss surface';
    if (!s.done) return `${what}, ${r.x.length} by ${r.y.length} grid: no points computed yet`;
    const [ix, iy] = s.argmin;
    const first = r.path?.[0];
    const last = r.path?.[r.path.length - 1];
    const path = first && last ? `; path of ${r.path?.length} checkpoints from ${at(first.x, first.y)} to ${at(last.x, last.y)}` : '';
    const grid = `${r.x.length} by ${r.y.length} grid, ${s.done} of ${s.total} points computed`;
    return `${what}, ${grid}; loss from ${fmt(s.min)} at ${at(r.x[ix], r.y[iy])} to ${fmt(s.max)}${path}`;
  }

  private draw(): void {
    const r = this.result;
    const g = this.canvas.getContext('2d');
    if (!g) return;
    const p = this.ctx.palette();
    const width = Math.max(280, this.figure.clientWidth || 600);
    this.lastWidth = this.figure.clientWidth;
    const m = { left: 62, right: 96, top: 30, bottom: 50 };
    const pwAvail = width - m.left - m.right;
    const xs = r?.x ?? [0, 1];
    const ys = r?.y ?? [0, 1];
    const dx = xs.length > 1 ? Math.abs(xs[1] - xs[0]) : 1;
    const dy = ys.length > 1 ? Math.abs(ys[1] - ys[0]) : 1;
    const xDom: [number, number] = [Math.min(...xs) - dx / 2, Math.max(...xs) + dx / 2];
    const yDom: [number, number] = [Math.min(...ys) - dy / 2, Math.max(...ys) + dy / 2];
    // Equal units on both axes when the spans are comparable; the plot at most 560 px tall.
    const ratio = Math.min(1.2, Math.max(0.45, (yDom[1] - yDom[0]) / (xDom[1] - xDom[0])));
    let pw = pwAvail;
    let ph = Math.round(pw * ratio);
    if (ph > 560) {
      ph = 560;
      pw = Math.round(ph / ratio);
    }
    const height = ph + m.top + m.bottom;
    const px = m.left + Math.max(0, Math.floor((pwAvail - pw) / 2));
    const py = m.top;
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(width * dpr);
    this.canvas.height = Math.round(height * dpr);
    this.canvas.style.width = `${width}px`;
    this.canvas.style.height = `${height}px`;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, width, height);
    this.layout = { xDom, yDom, px, py, pw, ph };
    const X = (x: number): number => px + ((x - xDom[0]) / (xDom[1] - xDom[0])) * pw;
    const Y = (y: number): number => py + ph - ((y - yDom[0]) / (yDom[1] - yDom[0])) * ph;
    const font = `${p.fontSize}px ${p.fontFamily}`;

    // Background of the plot: what uncomputed cells show.
    g.fillStyle = alpha(p.foreground, p.dark ? 0.07 : 0.05);
    g.fillRect(px, py, pw, ph);

    const s = r ? this.stats() : undefined;
    const scale = s && s.done ? valueScale(s.min, s.max) : undefined;
    if (r && s && scale) {
      const nx = xs.length;
      const ny = ys.length;
      const img = new ImageData(nx, ny);
      const xAsc = xs[nx - 1] >= xs[0];
      const yAsc = ys[ny - 1] >= ys[0];
      for (let iy = 0; iy < ny; iy++) {
        const row = r.loss[iy] ?? [];
        const py0 = yAsc ? ny - 1 - iy : iy;
        for (let ix = 0; ix < nx; ix++) {
          const v = row[ix];
          if (v === null || v === undefined || !Number.isFinite(v)) continue;
          const [cr, cg, cb] = colorAt(scale.t(v));
          const o = (py0 * nx + (xAsc ? ix : nx - 1 - ix)) * 4;
          img.data[o] = cr;
          img.data[o + 1] = cg;
          img.data[o + 2] = cb;
          img.data[o + 3] = 255;
        }
      }
      const off = document.createElement('canvas');
      off.width = nx;
      off.height = ny;
      off.getContext('2d')?.putImageData(img, 0, 0);
      g.save();
      // Blocks while refining (each computed cell visible as itself), smooth once complete.
      g.imageSmoothingEnabled = s.done === s.total && nx >= 8;
      g.drawImage(off, px, py, pw, ph);
      g.restore();

      // Contours.
      g.save();
      g.beginPath();
      g.rect(px, py, pw, ph);
      g.clip();
      g.lineWidth = 1;
      g.strokeStyle = 'rgba(255, 255, 255, 0.55)';
      const f = scale.log ? Math.log : (v: number) => v;
      for (const level of contourLevels(scale)) {
        g.beginPath();
        for (const [ax, ay, bx, by] of contourSegments(xs, ys, r.loss, level, f)) {
          g.moveTo(X(ax), Y(ay));
          g.lineTo(X(bx), Y(by));
        }
        g.stroke();
      }
      // The analysed parameters (the origin of a surface).
      if (r.kind === 'surface' && xDom[0] < 0 && xDom[1] > 0 && yDom[0] < 0 && yDom[1] > 0) {
        const ox = X(0);
        const oy = Y(0);
        for (const [color, w] of [
          ['rgba(0, 0, 0, 0.6)', 3.5],
          ['#ffffff', 1.5],
        ] as const) {
          g.strokeStyle = color;
          g.lineWidth = w;
          g.beginPath();
          g.moveTo(ox - 6, oy);
          g.lineTo(ox + 6, oy);
          g.moveTo(ox, oy - 6);
          g.lineTo(ox, oy + 6);
          g.stroke();
        }
      }
      // The trajectory, in order.
      const path = r.path ?? [];
      if (path.length) {
        g.lineJoin = 'round';
        for (const [color, w] of [
          ['rgba(0, 0, 0, 0.55)', 4],
          [p.red, 2],
        ] as const) {
          g.strokeStyle = color;
          g.lineWidth = w;
          g.beginPath();
          path.forEach((q, i) => (i ? g.lineTo(X(q.x), Y(q.y)) : g.moveTo(X(q.x), Y(q.y))));
          g.stroke();
        }
        path.forEach((q, i) => {
          const last = i === path.length - 1;
          g.beginPath();
          g.arc(X(q.x), Y(q.y), last ? 5 : i === 0 ? 4.5 : 2.5, 0, Math.PI * 2);
          g.fillStyle = i === 0 ? '#ffffff' : p.red;
          g.strokeStyle = 'rgba(0, 0, 0, 0.7)';
          g.lineWidth = 1.25;
          g.fill();
          g.stroke();
        });
      }
      g.restore();
    }

    // Frame and axes.
    g.strokeStyle = p.highContrast ? p.foreground : alpha(p.foreground, 0.35);
    g.lineWidth = 1;
    g.strokeRect(px + 0.5, py + 0.5, pw - 1, ph - 1);
    g.fillStyle = p.muted;
    g.font = font;
    g.textAlign = 'center';
    g.textBaseline = 'top';
    for (const t of niceTicks(xDom[0], xDom[1], Math.max(3, Math.floor(pw / 90)))) {
      const x = X(t);
      g.fillRect(x, py + ph, 1, 4);
      g.fillText(tick(t), x, py + ph + 6);
    }
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (const t of niceTicks(yDom[0], yDom[1], Math.max(3, Math.floor(ph / 60)))) {
      const y = Y(t);
      g.fillRect(px - 4, y, 4, 1);
      g.fillText(tick(t), px - 7, y);
    }
    const dirs = r?.directions ?? [];
    g.textAlign = 'center';
    g.textBaseline = 'bottom';
    g.fillText(describeDirection(dirs[0], 'x'), px + pw / 2, height - 4);
    g.save();
    g.translate(Math.max(12, px - 48), py + ph / 2);
    g.rotate(-Math.PI / 2);
    g.textBaseline = 'middle';
    g.fillText(describeDirection(dirs[1], 'y'), 0, 0);
    g.restore();

    // Colour bar.
    if (scale) {
      const bx = px + pw + 18;
      const bw = 14;
      for (let k = 0; k < ph; k++) {
        const [cr, cg, cb] = colorAt(1 - k / Math.max(1, ph - 1));
        g.fillStyle = `rgb(${cr}, ${cg}, ${cb})`;
        g.fillRect(bx, py + k, bw, 1);
      }
      g.strokeStyle = alpha(p.foreground, 0.35);
      g.strokeRect(bx + 0.5, py + 0.5, bw - 1, ph - 1);
      // Its title, right-aligned above it (the labels beside it can be wider than the bar).
      g.fillStyle = p.foreground;
      g.textAlign = 'right';
      g.textBaseline = 'bottom';
      g.fillText(colorBarTitle(scale.log), width - 4, py - 6);
      // Contour levels as ticks on the bar, five value labels beside it.
      g.fillStyle = 'rgba(255, 255, 255, 0.8)';
      for (const level of contourLevels(scale)) g.fillRect(bx, py + (1 - scale.t(level)) * ph, bw, 1);
      g.fillStyle = p.muted;
      g.textAlign = 'left';
      g.textBaseline = 'middle';
      for (let k = 0; k <= 4; k++) {
        const t = k / 4;
        const y = py + (1 - t) * ph;
        g.fillRect(bx + bw, y, 3, 1);
        g.fillText(fmt(scale.inv(t), 3), bx + bw + 6, Math.min(py + ph - 6, Math.max(py + 6, y)));
      }
    }
  }

  private hover(e: MouseEvent): void {
    const r = this.result;
    const l = this.layout;
    if (!r || !l) return;
    const rect = this.canvas.getBoundingClientRect();
    const mx = e.clientX - rect.left;
    const my = e.clientY - rect.top;
    if (mx < l.px || mx > l.px + l.pw || my < l.py || my > l.py + l.ph) {
      this.readout.textContent = ' ';
      return;
    }
    const x = l.xDom[0] + ((mx - l.px) / l.pw) * (l.xDom[1] - l.xDom[0]);
    const y = l.yDom[0] + (1 - (my - l.py) / l.ph) * (l.yDom[1] - l.yDom[0]);
    const nearest = (vals: number[], v: number): number => {
      let best = 0;
      vals.forEach((q, i) => {
        if (Math.abs(q - v) < Math.abs(vals[best] - v)) best = i;
      });
      return best;
    };
    const ix = nearest(r.x, x);
    const iy = nearest(r.y, y);
    const v = r.loss[iy]?.[ix];
    const value = v === null || v === undefined ? 'not computed yet' : fmt(v);
    this.readout.textContent = `x ${tick(r.x[ix])}, y ${tick(r.y[iy])}: loss ${value}`;
  }

  protected buildTable(): HTMLElement | undefined {
    const r = this.result;
    if (!r) return undefined;
    const order = r.y.map((_, i) => i).sort((a, b) => r.y[b] - r.y[a]);
    const rows = order.map((iy) => [`y ${tick(r.y[iy])}`, ...r.x.map((_, ix) => r.loss[iy]?.[ix] ?? null)]);
    return table('Loss by y (rows, top = largest) and x (columns)', ['', ...r.x.map((x) => `x ${tick(x)}`)], rows);
  }

  images(): Record<string, string> {
    return this.result ? { [this.key]: canvasPng(this.canvas, this.ctx.palette(), this.exportTitle()) } : {};
  }

  applyTheme(): void {
    this.draw();
  }

  override destroy(): void {
    this.ro.disconnect();
    super.destroy();
  }
}

/**
 * The 2-D loss surface: an ImageData colour map (viridis) on a plain canvas, contour lines by
 * marching squares, a colour bar, axes, and a trajectory's path on top. Cells not computed yet
 * (null) stay background, so a coarse-to-fine stream visibly fills in.
 */
import type { SurfaceResult } from '../../src/shared/results';
import { Card, canvasPng, type PanelContext } from './card';
import { fmt, h, table, tick } from '../format';
import { alpha } from '../theme';
import { colorBarTitle } from './labels';
import { colorAt, colorBarLabels, contourLevels, contourSegments, describeDirection, niceTicks, valueScale } from './contours';

/** A point as '(x, y)' with tick precision. */
const at = (x: number, y: number): string => `(${tick(x)}, ${tick(y)})`;

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
      for (const { t, text } of colorBarLabels(scale)) {
        const y = py + (1 - t) * ph;
        g.fillRect(bx + bw, y, 3, 1);
        g.fillText(text, bx + bw + 6, Math.min(py + ph - 6, Math.max(py + 6, y)));
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

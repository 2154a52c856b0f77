/**
 * Colours for the canvases, read at run time from VS Code's theme variables (CSS custom properties
 * on the page), so charts follow the user's theme. A report page has no VS Code variables: it gets
 * the light palette, or the dark one when the browser prefers a dark scheme (prefers-color-scheme). Re-read whenever VS Code switches the theme (the body's class changes).
 */

import { hex, parseColor, withContrast } from './contrast';

export type SeriesColor = 'blue' | 'red' | 'green' | 'yellow' | 'orange' | 'purple' | 'foreground';

export interface Palette {
  foreground: string;
  muted: string;
  /** The page (editor) background: exported images are painted on it. */
  background: string;
  grid: string;
  border: string;
  focus: string;
  blue: string;
  red: string;
  green: string;
  yellow: string;
  orange: string;
  purple: string;
  fontFamily: string;
  fontSize: number;
  highContrast: boolean;
  dark: boolean;
}

const LIGHT: Palette = {
  foreground: '#1f2328',
  muted: '#59636e',
  background: '#ffffff',
  grid: 'rgba(31, 35, 40, 0.12)',
  border: '#d1d9e0',
  focus: '#0969da',
  blue: '#0969da',
  red: '#cf222e',
  green: '#1a7f37',
  yellow: '#9a6700',
  orange: '#bc4c00',
  purple: '#8250df',
  fontFamily: '-apple-system, BlinkMacSystemFont, "Segoe UI", system-ui, Ubuntu, sans-serif',
  fontSize: 12,
  highContrast: false,
  dark: false,
};

/** A report page in a browser that prefers a dark scheme (prefers-color-scheme: dark). */
export const DARK: Palette = {
  ...LIGHT,
  foreground: '#e6edf3',
  muted: '#9198a1',
  background: '#0d1117',
  grid: 'rgba(230, 237, 243, 0.14)',
  border: '#3d444d',
  focus: '#4493f8',
  blue: '#4493f8',
  red: '#f85149',
  green: '#3fb950',
  yellow: '#d29922',
  orange: '#db6d28',
  purple: '#ab7df8',
  dark: true,
};

/** The palette a page without VS Code's variables (a report) starts from: the user's scheme. */
export function fallbackPalette(prefersDark: boolean): Palette {
  return prefersDark ? DARK : LIGHT;
}

function prefersDark(): boolean {
  return typeof matchMedia === 'function' && matchMedia('(prefers-color-scheme: dark)').matches;
}

/** The series colours, each nudged to at least 3:1 contrast with the background (WCAG, graphics). */
export const SERIES_KEYS = ['blue', 'red', 'green', 'yellow', 'orange', 'purple'] as const;

export function contrastSafe(p: Palette): Palette {
  const bg = parseColor(p.background);
  if (!bg) return p;
  const out = { ...p };
  for (const k of SERIES_KEYS) {
    const c = parseColor(p[k]);
    if (c) out[k] = hex(withContrast(c, bg, 3));
  }
  return out;
}

let probe: CanvasRenderingContext2D | null | undefined;

/** Any CSS colour as [r, g, b, a] (via a canvas, which normalizes every syntax it accepts). */
export function rgba(color: string): [number, number, number, number] {
  if (probe === undefined) probe = document.createElement('canvas').getContext('2d');
  if (!probe) return [128, 128, 128, 1];
  probe.fillStyle = '#000';
  probe.fillStyle = color;
  const s = String(probe.fillStyle);
  if (s.startsWith('#')) return [parseInt(s.slice(1, 3), 16), parseInt(s.slice(3, 5), 16), parseInt(s.slice(5, 7), 16), 1];
  const m = /rgba?\(([^)]+)\)/.exec(s);
  if (!m) return [128, 128, 128, 1];
  const p = m[1].split(',').map((x) => parseFloat(x));
  return [p[0], p[1], p[2], p[3] ?? 1];
}

/** The colour with its alpha multiplied by `a`. */
export function alpha(color: string, a: number): string {
  const [r, g, b, a0] = rgba(color);
  return `rgba(${r}, ${g}, ${b}, ${+(a0 * a).toFixed(3)})`;
}

function luminance(color: string): number {
  const [r, g, b] = rgba(color);
  return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
}

/** Reads the theme's variables; falls back to the light palette for each one that is missing. */
export function readPalette(): Palette {
  const cs = getComputedStyle(document.body);
  const hasTheme = cs.getPropertyValue('--vscode-foreground').trim() !== '';
  const base = hasTheme ? LIGHT : fallbackPalette(prefersDark());
  const v = (name: string, fallback: string): string => cs.getPropertyValue(name).trim() || fallback;
  const cls = document.body.classList;
  const highContrast = cls.contains('vscode-high-contrast') || cls.contains('vscode-high-contrast-light');
  const foreground = v('--vscode-foreground', base.foreground);
  const background = v('--vscode-editor-background', base.background);
  const dark = hasTheme ? luminance(background) < 0.5 : base.dark;
  const size = parseFloat(v('--vscode-font-size', '')) || (hasTheme ? 13 : base.fontSize);
  const norm = (c: string): string => {
    const [r, g, b] = rgba(c);
    return `rgb(${r}, ${g}, ${b})`;
  };
  return contrastSafe({
    foreground,
    muted: v('--vscode-descriptionForeground', hasTheme ? alpha(foreground, 0.75) : base.muted),
    grid: highContrast ? alpha(v('--vscode-contrastBorder', foreground), 0.5) : hasTheme ? alpha(foreground, dark ? 0.14 : 0.12) : base.grid,
    border: v('--vscode-contrastBorder', v('--vscode-widget-border', v('--vscode-panel-border', base.border))),
    focus: v('--vscode-focusBorder', base.focus),
    background: norm(background),
    blue: norm(v('--vscode-charts-blue', base.blue)),
    red: norm(v('--vscode-charts-red', base.red)),
    green: norm(v('--vscode-charts-green', base.green)),
    yellow: norm(v('--vscode-charts-yellow', base.yellow)),
    orange: norm(v('--vscode-charts-orange', base.orange)),
    purple: norm(v('--vscode-charts-purple', base.purple)),
    fontFamily: v('--vscode-font-family', base.fontFamily),
    fontSize: Math.max(10, size - 1),
    highContrast,
    dark,
  });
}

export function seriesColor(p: Palette, c: SeriesColor): string {
  return c === 'foreground' ? p.foreground : p[c];
}

/** Calls `onChange` when VS Code changes the theme: it swaps the body class and the variables on <html>. */
export function watchTheme(onChange: () => void): void {
  let pending = false;
  const fire = (): void => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      onChange();
    });
  };
  const mo = new MutationObserver(fire);
  mo.observe(document.body, { attributes: true, attributeFilter: ['class', 'data-vscode-theme-kind'] });
  mo.observe(document.documentElement, { attributes: true, attributeFilter: ['style', 'class'] });
  // A report page follows the browser's scheme as it changes.
  if (typeof matchMedia === 'function') matchMedia('(prefers-color-scheme: dark)').addEventListener('change', fire);
}

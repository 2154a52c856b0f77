/**
 * Contrast of chart colours against the page background (WCAG 2 relative luminance and contrast
 * ratio), and a colour nudged toward the foreground side until it reaches a minimum ratio, so
 * every series stays visible in light, dark and high-contrast themes. Pure functions: no DOM.
 */

export type Rgb = [number, number, number];

/** '#rgb', '#rrggbb', '#rrggbbaa', 'rgb(r, g, b)' or 'rgba(r, g, b, a)' as [r, g, b]; undefined otherwise. */
export function parseColor(c: string): Rgb | undefined {
  const s = c.trim().toLowerCase();
  let m = /^#([0-9a-f]{3})$/.exec(s);
  if (m) return [0, 1, 2].map((i) => parseInt(m![1][i] + m![1][i], 16)) as Rgb;
  m = /^#([0-9a-f]{6})([0-9a-f]{2})?$/.exec(s);
  if (m) return [0, 2, 4].map((i) => parseInt(m![1].slice(i, i + 2), 16)) as Rgb;
  m = /^rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)/.exec(s);
  if (m) return [Number(m[1]), Number(m[2]), Number(m[3])];
  return undefined;
}

export function hex([r, g, b]: Rgb): string {
  return `#${[r, g, b].map((v) => Math.round(Math.min(255, Math.max(0, v))).toString(16).padStart(2, '0')).join('')}`;
}

/** WCAG 2 relative luminance. */
export function relativeLuminance([r, g, b]: Rgb): number {
  const lin = (v: number): number => {
    const c = v / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

/** WCAG 2 contrast ratio, 1 to 21. */
export function contrastRatio(a: Rgb, b: Rgb): number {
  const la = relativeLuminance(a);
  const lb = relativeLuminance(b);
  return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
}

/**
 * The colour, mixed step by step toward white (on a dark background) or black (on a light one)
 * until its contrast with the background is at least `min` (3:1, WCAG's ratio for graphics).
 */
export function withContrast(color: Rgb, background: Rgb, min = 3): Rgb {
  const toward: Rgb = relativeLuminance(background) < 0.18 ? [255, 255, 255] : [0, 0, 0];
  let c = color;
  for (let t = 0; t <= 1.0001 && contrastRatio(c, background) < min; t += 0.05) {
    c = [0, 1, 2].map((i) => color[i] + (toward[i] - color[i]) * t) as Rgb;
  }
  return c.map((v) => Math.round(v)) as Rgb;
}

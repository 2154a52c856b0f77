/** Number formatting and small DOM helpers shared by the panel's views. */
import { fmt } from '../src/shared/format';

export { fmt };


/** A tick label: round away float noise (0.30000000000000004) and drop a negative zero. */
export function tick(v: number): string {
  const r = Number(v.toPrecision(10));
  return fmt(r === 0 || Math.abs(r) < 1e-12 ? 0 : r, 3);
}

/**
 * A log-axis tick label: only at 1, 2 and 5 times a power of ten (only powers of ten when the
 * axis spans many decades); the other ticks keep their grid line and no label.
 */
export function logTick(v: number, decades: number): string {
  if (!(v > 0)) return '';
  const e = Math.floor(Math.log10(v) + 1e-9);
  const m = v / 10 ** e;
  const r = Math.round(m);
  if (Math.abs(m - r) > 1e-6) return '';
  const keep =
    decades > 4
      ? r === 1 && e % Math.ceil(decades / 6) === 0
      : decades > 2
        ? r === 1 || r === 3
        : decades > 1.2
          ? r === 1 || r === 2 || r === 5
          : true;
  return keep ? fmt(v, 3) : '';
}

/** Milliseconds as a short duration. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms - m * 60_000) / 1000)} s`;
}

type Attrs = Record<string, string | number | boolean | undefined>;

/** document.createElement with attributes (no inline styles: the panel runs under a strict CSP) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Node | string | null | undefined)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k === 'text') el.textContent = String(v);
    else el.setAttribute(k === 'className' ? 'class' : k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) el.append(c);
  return el;
}

/** A <table> from a header row and body rows; numbers are formatted and right-aligned. */
export function table(caption: string, head: string[], rows: (string | number | null | undefined)[][], note?: string): HTMLTableElement {
  const t = h('table', { className: 'data' });
  t.append(h('caption', { text: note ? `${caption} (${note})` : caption }));
  const thead = h('thead');
  const tr = h('tr');
  for (const c of head) tr.append(h('th', { scope: 'col', text: c }));
  thead.append(tr);
  const tbody = h('tbody');
  for (const r of rows) {
    const row = h('tr');
    r.forEach((c, i) => {
      const text = typeof c === 'number' ? fmt(c, 6) : (c ?? '–');
      row.append(i === 0 ? h('th', { scope: 'row', text }) : h('td', { className: typeof c === 'number' ? 'num' : undefined, text }));
    });
    tbody.append(row);
  }
  t.append(thead, tbody);
  return t;
}

/** At most `max` rows, evenly spaced, always keeping the last; says so in the note. */
export function thin<T>(rows: T[], max = 600): { rows: T[]; note?: string } {
  if (rows.length <= max) return { rows };
  const every = Math.ceil(rows.length / max);
  const out = rows.filter((_, i) => i % every === 0);
  if (out[out.length - 1] !== rows[rows.length - 1]) out.push(rows[rows.length - 1]);
  return { rows: out, note: `one row in ${every} of ${rows.length}, and the last` };
}

/** A file-name-safe key. */
export function slug(s: string): string {
  return (
    s
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '') || 'chart'
  );
}

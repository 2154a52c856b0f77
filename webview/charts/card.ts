/**
 * A card in the panel's grid: a title, tool buttons (each card has a 'Table' toggle that shows its
 * numbers as an HTML table, for screen readers and copying), a figure and notes.
 */
import { h } from '../format';
import type { Palette } from '../theme';
import type { ViewSettings } from '../state';

/** What every view needs from the panel. */
export interface PanelContext {
  palette(): Palette;
  readonly settings: ViewSettings;
  /** Persist the view settings (getState/setState). */
  save(): void;
}

export interface CardOptions {
  wide?: boolean;
  /** Offer the Table toggle (cards that are tables already do not). */
  table?: boolean;
}

/** A toggle button: a real <button> with aria-pressed, reachable by Tab. */
export function toggleButton(label: string, pressed: boolean, title: string, onToggle: (pressed: boolean) => void): HTMLButtonElement {
  const b = h('button', { type: 'button', className: 'toggle', 'aria-pressed': String(pressed), title, text: label });
  b.addEventListener('click', () => {
    const now = b.getAttribute('aria-pressed') !== 'true';
    b.setAttribute('aria-pressed', String(now));
    onToggle(now);
  });
  return b;
}

/**
 * The canvas as a PNG data URL, painted over the page background (canvases are transparent), with
 * the card's title in a band above it when one is given (an image should say what it shows).
 */
export function canvasPng(canvas: HTMLCanvasElement, palette: Palette, title?: string): string {
  const dpr = canvas.width > 0 && canvas.clientWidth > 0 ? canvas.width / canvas.clientWidth : window.devicePixelRatio || 1;
  const band = title ? Math.round(30 * dpr) : 0;
  const out = document.createElement('canvas');
  out.width = canvas.width;
  out.height = canvas.height + band;
  const g = out.getContext('2d');
  if (!g) return canvas.toDataURL('image/png');
  g.fillStyle = palette.background;
  g.fillRect(0, 0, out.width, out.height);
  if (title) {
    g.fillStyle = palette.foreground;
    g.font = `600 ${Math.round((palette.fontSize + 2) * dpr)}px ${palette.fontFamily}`;
    g.textBaseline = 'middle';
    g.textAlign = 'left';
    let text = title;
    const room = out.width - 16 * dpr;
    while (text.length > 4 && g.measureText(text).width > room) text = `${text.slice(0, -2)}…`;
    g.fillText(text, 8 * dpr, band / 2);
  }
  g.drawImage(canvas, 0, band);
  return out.toDataURL('image/png');
}

export abstract class Card {
  readonly el: HTMLElement;
  protected readonly titleEl: HTMLElement;
  protected readonly subtitleEl: HTMLElement;
  protected readonly badge: HTMLElement;
  protected readonly tools: HTMLElement;
  protected readonly figure: HTMLElement;
  protected readonly notes: HTMLElement;
  private readonly tableWrap: HTMLElement;

  constructor(
    readonly key: string,
    title: string,
    protected readonly ctx: PanelContext,
    opts: CardOptions = {},
  ) {
    const id = `card-${key.replace(/[^a-zA-Z0-9_-]/g, '-')}`;
    this.titleEl = h('h3', { id: `${id}-title`, text: title });
    this.subtitleEl = h('p', { className: 'subtitle' });
    this.badge = h('span', { className: 'badge', hidden: true });
    this.tools = h('div', { className: 'tools', role: 'group', 'aria-label': `${title} options` });
    this.figure = h('div', { className: 'figure' });
    this.notes = h('div', { className: 'notes' });
    this.tableWrap = h('div', {
      className: 'table-wrap',
      id: `${id}-table`,
      tabindex: 0,
      hidden: true,
      role: 'region',
      'aria-label': `${title} data`,
    });
    const head = h(
      'div',
      { className: 'card-head' },
      h('div', { className: 'titles' }, h('div', { className: 'title-row' }, this.titleEl, this.badge), this.subtitleEl),
      this.tools,
    );
    this.el = h(
      'section',
      { className: opts.wide ? 'card wide' : 'card', 'aria-labelledby': `${id}-title` },
      head,
      this.figure,
      this.notes,
      this.tableWrap,
    );
    if (opts.table !== false) {
      const shown = ctx.settings.tables.includes(key);
      const b = toggleButton('Table', shown, 'Show the numbers as a table', (on) => {
        const set = new Set(ctx.settings.tables);
        if (on) set.add(key);
        else set.delete(key);
        ctx.settings.tables = [...set];
        ctx.save();
        this.showTable(on);
      });
      b.setAttribute('aria-controls', `${id}-table`);
      this.tools.append(b);
      if (shown) queueMicrotask(() => this.showTable(true));
    }
  }

  setTitle(title: string, subtitle?: string): void {
    this.titleEl.textContent = title;
    this.subtitleEl.textContent = subtitle ?? '';
    this.subtitleEl.hidden = !subtitle;
  }

  /** A short label beside the title ('streaming', 'partial'); undefined hides it. */
  setBadge(text?: string): void {
    this.badge.textContent = text ?? '';
    this.badge.hidden = !text;
  }

  setNotes(...lines: (string | Node)[]): void {
    this.notes.replaceChildren(...lines.map((l) => (typeof l === 'string' ? h('p', { text: l }) : l)));
  }

  get visible(): boolean {
    return !this.el.hidden && this.el.isConnected;
  }

  setVisible(on: boolean): void {
    this.el.hidden = !on;
  }

  private showTable(on: boolean): void {
    this.tableWrap.hidden = !on;
    this.refreshTable();
  }

  /** Rebuilds the table if it is shown (it is built lazily: large runs have thousands of rows). */
  refreshTable(): void {
    if (this.tableWrap.hidden) return;
    const t = this.buildTable();
    this.tableWrap.replaceChildren(t ?? h('p', { text: 'No data yet.' }));
  }

  protected abstract buildTable(): HTMLElement | undefined;

  /** The title an exported image carries: the card's title and, when there is one, its subtitle. */
  protected exportTitle(): string {
    const t = this.titleEl.textContent?.trim() ?? '';
    const sub = this.subtitleEl.hidden ? '' : (this.subtitleEl.textContent?.trim() ?? '');
    return sub && sub !== t ? `${t} — ${sub}` : t;
  }

  /** PNG data URLs of what the card draws, by name. */
  abstract images(): Record<string, string>;

  /** Re-reads the palette (the theme changed). */
  abstract applyTheme(): void;

  destroy(): void {
    this.el.remove();
  }
}

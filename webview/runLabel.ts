/**
 * How a run is named in the run menu and in legends: its title, when it started, the optimizer
 * and learning rate, and its status, so runs of the same module are told apart.
 */
import type { RunView } from '../src/shared/protocol';

/** 'HH:MM' today, else 'YYYY-MM-DD HH:MM' (local time). */
export function startTime(ms: number | undefined, now = Date.now()): string {
  if (ms === undefined || !Number.isFinite(ms)) return '';
  const d = new Date(ms);
  const p = (n: number): string => String(n).padStart(2, '0');
  const hm = `${p(d.getHours())}:${p(d.getMinutes())}`;
  const today = new Date(now);
  const same = d.getFullYear() === today.getFullYear() && d.getMonth() === today.getMonth() && d.getDate() === today.getDate();
  return same ? hm : `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${hm}`;
}

/** "spiral.basin.ts · 14:05 · sgd lr 0.1 · completed" (short: without the status). */
export function runLabel(r: RunView, streaming: boolean, opts: { short?: boolean; now?: number } = {}): string {
  const status = streaming ? 'running' : (r.done?.status ?? 'loaded');
  const st = r.settings;
  const parts = [r.title, startTime(r.started, opts.now), st ? `${st.optimizer} lr ${st.lr}` : ''];
  if (!opts.short) parts.push(status);
  return parts.filter(Boolean).join(' · ');
}

/**
 * Learning-rate schedules. `step` counts optimizer steps from 0.
 *
 * - constant: lr = base.
 * - step decay: lr = base * gamma^floor(step / every).
 * - cosine annealing without restarts (Loshchilov & Hutter 2017, "SGDR", eq. 5):
 *   lr = minLr + (base - minLr) (1 + cos(pi min(step, total) / total)) / 2, so base at step 0 and
 *   minLr (default 0) from step `total` on.
 *
 * CLI spellings (`parseSchedule`): `constant`, `step:EVERY:GAMMA` (EVERY a positive integer, GAMMA
 * > 0), `cosine:TOTAL[:MINLR]` (TOTAL a positive integer, MINLR >= 0).
 *
 * Example:
 * ```ts
 * const s = parseSchedule('cosine:1000:0.001');
 * const lr = lrAt(0.1, s, 500); // 0.0505
 * ```
 */
import { InputError } from '../errors';

export type Schedule =
  | { kind: 'constant' }
  | { kind: 'step'; every: number; gamma: number }
  | { kind: 'cosine'; total: number; minLr?: number };

/** The learning rate at optimizer step `step` (0, 1, 2, ...) for base rate `base`. */
export function lrAt(base: number, s: Schedule, step: number): number {
  if (!Number.isFinite(base)) throw new InputError(`the base learning rate must be a finite number, got ${base}`);
  if (!(Number.isInteger(step) && step >= 0)) throw new InputError(`the schedule step must be an integer >= 0, got ${step}`);
  checkSchedule(s);
  switch (s.kind) {
    case 'constant':
      return base;
    case 'step':
      return base * Math.pow(s.gamma, Math.floor(step / s.every));
    case 'cosine': {
      const minLr = s.minLr ?? 0;
      return minLr + ((base - minLr) * (1 + Math.cos((Math.PI * Math.min(step, s.total)) / s.total))) / 2;
    }
  }
}

const SPEC_HELP = "expected 'constant', 'step:EVERY:GAMMA' or 'cosine:TOTAL[:MINLR]'";

/** Parses a CLI schedule spec (see the module comment); throws BasinError on anything else. */
export function parseSchedule(spec: string): Schedule {
  const parts = spec.trim().split(':');
  const kind = parts[0];
  const bad = (why: string): InputError => new InputError(`bad learning-rate schedule '${spec}': ${why} (${SPEC_HELP})`);
  switch (kind) {
    case 'constant':
      if (parts.length !== 1) throw bad("'constant' takes no arguments");
      return { kind: 'constant' };
    case 'step': {
      if (parts.length !== 3) throw bad("'step' takes two arguments, EVERY and GAMMA");
      const every = parseNumber(parts[1]);
      const gamma = parseNumber(parts[2]);
      if (every === undefined || !Number.isInteger(every) || every < 1) throw bad(`EVERY must be a positive integer, got '${parts[1]}'`);
      if (gamma === undefined || !(gamma > 0)) throw bad(`GAMMA must be a positive number, got '${parts[2]}'`);
      return { kind: 'step', every, gamma };
    }
    case 'cosine': {
      if (parts.length !== 2 && parts.length !== 3) throw bad("'cosine' takes TOTAL and an optional MINLR");
      const total = parseNumber(parts[1]);
      if (total === undefined || !Number.isInteger(total) || total < 1) throw bad(`TOTAL must be a positive integer, got '${parts[1]}'`);
      if (parts.length === 2) return { kind: 'cosine', total };
      const minLr = parseNumber(parts[2]);
      if (minLr === undefined || minLr < 0) throw bad(`MINLR must be a number >= 0, got '${parts[2]}'`);
      return { kind: 'cosine', total, minLr };
    }
    default:
      throw bad(kind === '' ? 'empty' : `unknown kind '${kind}'`);
  }
}

/** The CLI spelling of a schedule (inverse of `parseSchedule`). */
export function formatSchedule(s: Schedule): string {
  switch (s.kind) {
    case 'constant':
      return 'constant';
    case 'step':
      return `step:${s.every}:${s.gamma}`;
    case 'cosine':
      return s.minLr === undefined ? `cosine:${s.total}` : `cosine:${s.total}:${s.minLr}`;
  }
}

/** A finite decimal number (no empty strings, hex, 'Infinity' or trailing junk), else undefined. */
function parseNumber(text: string): number | undefined {
  const t = text.trim();
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return undefined;
  const x = Number(t);
  return Number.isFinite(x) ? x : undefined;
}

function checkSchedule(s: Schedule): void {
  switch (s.kind) {
    case 'constant':
      return;
    case 'step':
      if (!(Number.isInteger(s.every) && s.every >= 1)) {
        throw new InputError(`step schedule: every must be a positive integer, got ${s.every}`);
      }
      if (!(Number.isFinite(s.gamma) && s.gamma > 0)) {
        throw new InputError(`step schedule: gamma must be a positive number, got ${s.gamma}`);
      }
      return;
    case 'cosine':
      if (!(Number.isInteger(s.total) && s.total >= 1)) {
        throw new InputError(`cosine schedule: total must be a positive integer, got ${s.total}`);
      }
      if (s.minLr !== undefined && !(Number.isFinite(s.minLr) && s.minLr >= 0)) {
        throw new InputError(`cosine schedule: minLr must be a finite number >= 0, got ${s.minLr}`);
      }
      return;
    default:
      throw new InputError(`unknown schedule kind '${(s as { kind: unknown }).kind}'`);
  }
}

/** `surface`: the 2-D loss surface on the plane of two directions (y made orthogonal to x). */
import type { SurfaceResult } from '../results';
import { str, strings } from '../fields';
import { CSV, DIRECTION_OPTIONS, SEED, type DirectionJobOptions } from './common';
import { surfaceText } from './gridText';
import { defineJob } from './spec';

export interface SurfaceJobOptions extends DirectionJobOptions {
  /** One direction kind for both axes, or two (x, y). */
  dirs?: string[];
  x?: string;
  y?: string;
}

/** Random: two independent filter-normalized random directions. */
const DEFAULT_DIRS: readonly string[] = ['random'];

export const surface = defineJob<SurfaceJobOptions, SurfaceResult>({
  summary: '2-D loss surface on the plane of two directions',
  options: {
    seed: SEED,
    dirs: { spec: strings(1, 2), flag: 'dir', arg: 'KIND[,KIND]', help: 'one kind for both axes, or two (x,y); random twice: two independent directions', tooMany: '--dir takes one kind for both axes or two (x,y)' },
    x: { spec: str, flag: 'x', arg: 'start:stop:steps', help: 'the x axis (-1:1:51)' },
    y: { spec: str, flag: 'y', arg: 'start:stop:steps', help: 'the y axis (as x)' },
    ...DIRECTION_OPTIONS,
  },
  defaults: { dirs: [...DEFAULT_DIRS] },
  cliFlags: [CSV],
  resultKind: 'surface',
  title: () => '2-D loss surface',
  format: surfaceText,
});

/** The plane's two direction kinds: one kind given is used for both axes. */
export function surfaceAxes(dirs: readonly string[] | undefined): [string, string] {
  const d = dirs && dirs.length > 0 ? dirs : DEFAULT_DIRS;
  return [d[0], d[1] ?? d[0]];
}

/** `slice`: 1-D loss slices, one curve per direction (Li et al. 2018). */
import type { SliceResult } from '../results';
import { str, strings } from '../fields';
import { CSV, DIRECTION_OPTIONS, SEED, type DirectionJobOptions } from './common';
import { sliceText } from './gridText';
import { defineJob } from './spec';

export interface SliceJobOptions extends DirectionJobOptions {
  /** Direction kinds, one curve each. */
  dirs?: string[];
  /** Axis 'start:stop:steps' (-1:1:51). */
  x?: string;
}

/** Random: one curve along a filter-normalized random direction. */
const DEFAULT_DIRS: readonly string[] = ['random'];

export const slice = defineJob<SliceJobOptions, SliceResult>({
  summary: '1-D loss slices, one curve per direction',
  options: {
    seed: SEED,
    dirs: { spec: strings(1), flag: 'dir', arg: 'KIND[,KIND...]', help: 'direction kinds, one curve each: random, gradient, eigen, eigenK, bottom, bottomK' },
    x: { spec: str, flag: 'x', arg: 'start:stop:steps', help: 'the axis (-1:1:51)' },
    ...DIRECTION_OPTIONS,
  },
  defaults: { dirs: [...DEFAULT_DIRS] },
  cliFlags: [CSV],
  resultKind: 'slice',
  title: () => '1-D loss slices',
  format: sliceText,
});

/** The slice's direction kinds: the given ones, else the default. */
export function sliceDirections(dirs: readonly string[] | undefined): string[] {
  return [...(dirs && dirs.length > 0 ? dirs : DEFAULT_DIRS)];
}

/** `interpolate`: the loss on (1 - a) A + a B between two models (Goodfellow et al. 2015). */
import type { SliceResult } from '../results';
import { str } from '../fields';
import { CSV, TEST, WIRE_SEED } from './common';
import { sliceText } from './gridText';
import { defineJob } from './spec';

export interface InterpolateJobOptions {
  seed?: number;
  /** The second model (the first is the problem's). */
  other: string;
  x?: string;
  test?: boolean;
}

export const interpolate = defineJob<InterpolateJobOptions, SliceResult>({
  summary: 'loss on (1-a) A + a B between two models',
  usage: 'A/model.json B/model.json',
  options: {
    seed: WIRE_SEED,
    other: { spec: str, required: true },
    x: { spec: str, flag: 'x', arg: 'start:stop:steps', help: 'the axis (-0.5:1.5:401)' },
    test: TEST,
  },
  defaults: {},
  positionals: (files) =>
    files.length === 2 && files[1] ? { other: files[1] } : 'interpolate takes two model files: basin interpolate A/model.json B/model.json --data FILE',
  cliFlags: [CSV],
  resultKind: 'interpolate',
  title: () => 'Linear interpolation',
  format: sliceText,
});

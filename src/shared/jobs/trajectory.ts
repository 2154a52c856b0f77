/** `trajectory`: the loss on the plane of a training trajectory's two principal components, the checkpoints projected onto it. */
import type { SurfaceResult } from '../results';
import { int, str, strings } from '../fields';
import { CSV, TEST, WIRE_SEED } from './common';
import { surfaceText } from './gridText';
import { defineJob } from './spec';

export interface TrajectoryJobOptions {
  seed?: number;
  /** Checkpoint model.json files in training order; the problem's model is the last one. */
  checkpoints: string[];
  x?: string;
  y?: string;
  /** Points per axis when the range is chosen from the path (31). */
  steps?: number;
  test?: boolean;
}

export const trajectory = defineJob<TrajectoryJobOptions, SurfaceResult>({
  summary: "loss on the plane of the checkpoints' two principal components, the path projected",
  usage: 'C1/model.json ... Cn/model.json',
  options: {
    seed: WIRE_SEED,
    checkpoints: { spec: strings(1), required: true },
    x: { spec: str, flag: 'x', arg: 'start:stop:steps', help: 'the x axis (default: around the path)' },
    y: { spec: str, flag: 'y', arg: 'start:stop:steps', help: 'the y axis (default: around the path)' },
    steps: { spec: int(2), flag: 'steps', arg: 'N', help: 'points per axis around the path (31)' },
    test: TEST,
  },
  defaults: {},
  positionals: (files) => ({ checkpoints: [...files] }),
  cliFlags: [CSV],
  resultKind: 'trajectory',
  title: () => 'Training trajectory on the loss surface',
  format: surfaceText,
});

/**
 * Edge of stability (Cohen, Kaur, Li, Kolter, Talwalkar 2021): full-batch gradient descent on a
 * small tanh network with MSE. Sharpness (lambda_max) rises during training ("progressive
 * sharpening") until it reaches 2/lr, then hovers there while the loss keeps falling, not
 * monotonically.
 *
 *   basin train examples/edge-of-stability.basin.ts            (the settings below)
 *   basin train examples/edge-of-stability.basin.ts --lr 0.02  (a small step: no edge)
 */
import type { Tensor } from '@tensorflow/tfjs-core';

type Tf = typeof import('@tensorflow/tfjs-core') & typeof import('@tensorflow/tfjs-layers');

/** Deterministic regression data: 4 inputs, 2 smooth nonlinear targets, 256 samples. */
function dataset(n: number): { x: number[][]; y: number[][] } {
  const x: number[][] = [];
  const y: number[][] = [];
  for (let i = 0; i < n; i++) {
    const a = Math.sin(1.7 * i + 0.3);
    const b = Math.cos(2.3 * i + 1.1);
    const c = Math.sin(0.7 * i * i + 0.5);
    const d = Math.cos(1.3 * i * i);
    x.push([a, b, c, d]);
    y.push([Math.sin(2 * a + b) * Math.cos(c - d), Math.tanh(3 * a * d - b * c)]);
  }
  return { x, y };
}

export default {
  model(tf: Tf) {
    const init = (seed: number) => tf.initializers.glorotUniform({ seed });
    return tf.sequential({
      layers: [
        tf.layers.dense({ inputShape: [4], units: 32, activation: 'tanh', kernelInitializer: init(1) }),
        tf.layers.dense({ units: 32, activation: 'tanh', kernelInitializer: init(2) }),
        tf.layers.dense({ units: 2, kernelInitializer: init(3) }),
      ],
    });
  },
  data(tf: Tf): { x: Tensor; y: Tensor } {
    const { x, y } = dataset(256);
    return { x: tf.tensor2d(x), y: tf.tensor2d(y) };
  },
  loss: 'meanSquaredError' as const,
  train: { optimizer: 'gd', lr: 0.2, steps: 1500, probeEvery: 25 },
};

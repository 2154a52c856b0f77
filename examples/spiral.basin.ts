/**
 * A Basin experiment module: the model, its data and its loss, in one file.
 *   basin eigs examples/spiral.basin.ts --k 3
 * `tf` is Basin's own TF.js (core ops + the layers API), so tensors made here work in the engine.
 */
import type { Tensor } from '@tensorflow/tfjs-core';

type Tf = typeof import('@tensorflow/tfjs-core') & typeof import('@tensorflow/tfjs-layers');

/** A 3-arm spiral, deterministic (no Math.random), 100 points per arm. */
function spiral(n: number): { x: number[][]; y: number[][] } {
  const x: number[][] = [];
  const y: number[][] = [];
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < n; i++) {
      const r = i / n;
      const t = c * 4 + 4 * r + 0.2 * Math.sin(97 * i + 13 * c); // fixed jitter
      x.push([r * Math.sin(t), r * Math.cos(t)]);
      y.push([0, 1, 2].map((k) => (k === c ? 1 : 0)));
    }
  }
  return { x, y };
}

export default {
  model(tf: Tf) {
    return tf.sequential({
      layers: [
        tf.layers.dense({ inputShape: [2], units: 32, activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) }),
        tf.layers.dense({ units: 32, activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) }),
        tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) }),
      ],
    });
  },
  data(tf: Tf): { x: Tensor; y: Tensor } {
    const { x, y } = spiral(100);
    return { x: tf.tensor2d(x), y: tf.tensor2d(y) };
  },
  loss: 'categoricalCrossentropy' as const,
};

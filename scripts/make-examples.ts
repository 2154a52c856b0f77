/**
 * Regenerates the bundled examples (committed; run only to change them):
 *   examples/spiral/model.json, weights.bin, data.json   a 2-32-32-3 tanh MLP on a 3-arm spiral,
 *                                                        trained 300 full-batch GD steps
 *   npm run examples:regenerate   (from the repository root)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf, tfl } from '../src/engine/tf';
import { initBackend } from '../src/engine/backend';
import { lowerLayersModel } from '../src/engine/model/lower';
import { Objective } from '../src/engine/objective';
import { Rng } from '../src/engine/rng';

/** A 3-arm spiral: n points per class, with Gaussian noise. */
export function spiral(n: number, seed: number): { x: number[][]; y: number[][] } {
  const rng = new Rng(seed);
  const x: number[][] = [];
  const y: number[][] = [];
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < n; i++) {
      const r = i / n;
      const t = (c * 4 + 4 * r) + rng.normal() * 0.2;
      x.push([Number((r * Math.sin(t)).toFixed(5)), Number((r * Math.cos(t)).toFixed(5))]);
      y.push([0, 1, 2].map((k) => (k === c ? 1 : 0)));
    }
  }
  return { x, y };
}

async function saveModel(model: tfl.LayersModel, dir: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.from(a.weightData as ArrayBuffer));
      const json = { format: 'layers-model', generatedBy: 'basin scripts/make-examples.ts', modelTopology: a.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }] };
      fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
}

async function main(): Promise<void> {
  await initBackend('cpu');
  tf.util.seedrandom?.('basin');
  const data = spiral(100, 1);
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [2], units: 32, activation: 'tanh', kernelInitializer: tfl.initializers.glorotNormal({ seed: 1 }) }),
      tfl.layers.dense({ units: 32, activation: 'tanh', kernelInitializer: tfl.initializers.glorotNormal({ seed: 2 }) }),
      tfl.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tfl.initializers.glorotNormal({ seed: 3 }) }),
    ],
  });
  const { ir, values } = lowerLayersModel(model, 'spiral');
  const n = data.x.length;
  const obj = new Objective(ir, values, 'categoricalCrossentropy', {
    x: Float32Array.from(data.x.flat()), xShape: [n, 2], y: Float32Array.from(data.y.flat()), yShape: [n, 3],
  });
  let theta = obj.parameters;
  for (let step = 0; step < 300; step++) {
    const { grad } = obj.gradient(theta);
    theta = theta.map((t, i) => t - 0.5 * grad[i]);
  }
  obj.setParameters(theta);
  console.log('loss after training', obj.lossAt(), 'accuracy', obj.accuracy());
  model.setWeights(ir.params.map((p) => tf.tensor(theta.subarray(p.offset, p.offset + p.size), p.shape)));
  const dir = path.join(process.cwd(), 'examples', 'spiral');
  await saveModel(model, dir);
  fs.writeFileSync(path.join(dir, 'data.json'), JSON.stringify(data));
  obj.dispose();
}

void main();

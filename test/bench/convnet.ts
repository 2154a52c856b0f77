/**
 * The benchmark's convnet fixture (Basin issue 9): Conv2D 32 -> Conv2D 64 (3x3, valid, relu) ->
 * MaxPool 2 -> Flatten -> Dense 40 (relu) -> Dense 10 (softmax), 387,906 parameters, on 1000
 * MNIST-sized 28x28x1 images: mostly blank, a few strokes per class, so many ReLUs sit at their
 * kinks (zero conv biases, as Keras initializes them). Generated deterministically here.
 *
 * Measured: ONNX Runtime's forward, gradient and exact H·v against PyTorch on the same weights
 * (the peers' tfjs_torch.py, interleaved), the exact and finite-difference products against a
 * float64 PyTorch H·v, which product `auto` chooses, and `basin eigs --k 1` wall time (the CLI,
 * default engine and `--hvp auto`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { tf, tfl } from '../../src/engine/tf';
import { loadProblem } from '../../src/engine/problem';
import { engineInfo } from '../../src/engine/backend';
import { ParallelEvaluator } from '../../src/engine/shard/parallel';
import { FiniteDifferenceHessian, selectHessian } from '../../src/engine/hvp/operators';
import { Rng } from '../../src/engine/rng';
import { relErr } from '../reference/compare';

const N = 1000;
const SIDE = 28;

export async function writeMnistConvnet(dir: string): Promise<{ model: string; data: string }> {
  const rng = new Rng(99);
  // Each class: 3 strokes (segments) of its own; an image draws them shifted by up to 2 pixels,
  // with a few noisy pixels; everything else is exactly 0.
  const strokes = Array.from({ length: 10 }, () =>
    Array.from({ length: 3 }, () => [4 + (rng.nextU32() % 20), 4 + (rng.nextU32() % 20), 4 + (rng.nextU32() % 20), 4 + (rng.nextU32() % 20)]),
  );
  const x: number[][][][] = [];
  const y: number[][] = [];
  for (let i = 0; i < N; i++) {
    const c = rng.nextU32() % 10;
    const img = Array.from({ length: SIDE }, () => new Array<number>(SIDE).fill(0));
    const dx = (rng.nextU32() % 5) - 2;
    const dy = (rng.nextU32() % 5) - 2;
    for (const [r0, c0, r1, c1] of strokes[c]) {
      for (let t = 0; t <= 20; t++) {
        const r = Math.round(r0 + ((r1 - r0) * t) / 20) + dy;
        const q = Math.round(c0 + ((c1 - c0) * t) / 20) + dx;
        if (r >= 0 && r < SIDE && q >= 0 && q < SIDE) img[r][q] = Number((0.6 + 0.4 * rng.uniform()).toFixed(3));
      }
    }
    for (let k = 0; k < 8; k++) img[rng.nextU32() % SIDE][rng.nextU32() % SIDE] = Number(rng.uniform().toFixed(3));
    x.push(img.map((row) => row.map((v) => [v])));
    y.push(Array.from({ length: 10 }, (_, k) => (k === c ? 1 : 0)));
  }
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [SIDE, SIDE, 1], filters: 32, kernelSize: 3, activation: 'relu', kernelInitializer: tfl.initializers.glorotNormal({ seed: 31 }) }),
      tfl.layers.conv2d({ filters: 64, kernelSize: 3, activation: 'relu', kernelInitializer: tfl.initializers.glorotNormal({ seed: 32 }) }),
      tfl.layers.maxPooling2d({ poolSize: 2 }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 40, activation: 'relu', kernelInitializer: tfl.initializers.glorotNormal({ seed: 33 }) }),
      tfl.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: tfl.initializers.glorotNormal({ seed: 34 }) }),
    ],
  });
  return saveBenchFiles(model, x, y, path.join(dir, 'mnist-convnet'));
}

interface PeerOps {
  forward: number;
  gradient: number;
  hvp: number;
  loss: number;
}

/**
 * PyTorch on the same files (the peers' tfjs_torch.py, float32, 2 torch threads): median ms of
 * forward, gradient and H·v; with `vFile` (float32 little-endian) also the float64 H·v into `hvFile`.
 */
export function runPeer(peer: string, model: string, data: string, reps: number, vFile?: string, hvFile?: string): PeerOps | string {
  const code = [
    'import sys, json, time, os',
    'os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")',
    'import numpy as np, torch',
    `sys.path.insert(0, ${JSON.stringify(path.dirname(peer))})`,
    'from tfjs_torch import TfjsModel, Objective',
    'torch.set_num_threads(2)',
    `m = TfjsModel(${JSON.stringify(model)}, ${JSON.stringify(data)}); o = Objective(m, torch.float32)`,
    'v = torch.randn(o.theta.shape[0])',
    'def med(f, n):',
    '    f(); ts = []',
    '    for _ in range(n):',
    '        t = time.perf_counter(); f(); ts.append((time.perf_counter() - t) * 1e3)',
    '    return float(np.median(ts))',
    `r = {"loss": o.loss(), "forward": med(o.loss, ${reps}), "gradient": med(o.grad, ${reps}), "hvp": med(lambda: o.hvp(v), ${reps})}`,
    ...(vFile && hvFile
      ? [
          `v64 = torch.tensor(np.fromfile(${JSON.stringify(vFile)}, dtype="<f4").astype(np.float64))`,
          'o64 = Objective(m, torch.float64)',
          `o64.hvp(v64).numpy().astype("<f8").tofile(${JSON.stringify(hvFile)})`,
        ]
      : []),
    'print(json.dumps(r))',
  ].join('\n');
  const r = spawnSync(process.env.BASIN_PEER_PYTHON ?? '/usr/bin/python3', ['-c', code], { encoding: 'utf8', timeout: 900_000 });
  if (r.status !== 0) return `convnet peer failed: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`;
  return JSON.parse(r.stdout) as PeerOps;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Median ms of `n` calls after one warm-up call. */
export async function timeAsync(f: () => Promise<unknown>, n = 15): Promise<number> {
  await f();
  const ts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await f();
    ts.push(performance.now() - t);
  }
  return median(ts);
}

/** A table cell: `d` significant digits, exponent form outside [1e-3, 1e4), '-' for none. */
export const fmt = (x: number | undefined, d = 3): string => (x === undefined || !Number.isFinite(x) ? '-' : Math.abs(x) >= 1e4 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(d - 1) : x.toPrecision(d));
const ratio = (ours: number, theirs: number | undefined): string => (theirs === undefined ? '-' : `${(ours / theirs).toFixed(2)}x`);

/** The section's lines for the report. `peer`: torch_peer.py's path (tfjs_torch.py beside it), if found. */
export async function convnetSection(dir: string, peer: string | undefined, cli: string): Promise<string[]> {
  const files = await writeMnistConvnet(dir);
  const problem = await loadProblem({ model: files.model, data: files.data, loss: 'categoricalCrossentropy' });
  // The evaluator the jobs get (ONNX Runtime, in shares of the samples on worker threads for a model this heavy).
  const ev = await problem.evaluator();
  const engine = engineInfo(ev);
  if (engine.name !== 'onnxruntime') {
    ev.dispose();
    return [`MNIST convnet: onnxruntime did not run (${engine.detail})`];
  }
  const lines: string[] = [];
  try {
    const v = new Rng(5).normalVector(ev.dim);
    const vFile = path.join(dir, 'mnist-v.f32');
    const hvFile = path.join(dir, 'mnist-hv.f64');
    fs.writeFileSync(vFile, Buffer.from(Float32Array.from(v).buffer));
    const ours: { forward: number; gradient: number; hvp: number; hvpNewPoint: number }[] = [];
    const theirs: PeerOps[] = [];
    let note = peer ? '' : 'peer not found (set BASIN_PEER)';
    for (let round = 0; round < 2; round++) {
      if (peer) {
        const r = runPeer(peer, files.model, files.data, 3, round === 0 ? vFile : undefined, round === 0 ? hvFile : undefined);
        if (typeof r === 'string') note = r;
        else theirs.push(r);
      }
      ours.push({
        forward: await timeAsync(() => ev.loss(), 3),
        gradient: await timeAsync(() => ev.gradient(), 3),
        hvp: await timeAsync(() => ev.hvp(v), 3),
        hvpNewPoint: await timeAsync(async () => {
          await ev.setParameters(problem.theta);
          await ev.hvp(v);
        }, 3),
      });
    }
    const best = (rs: { forward: number; gradient: number; hvp: number }[]): { forward: number; gradient: number; hvp: number } | undefined =>
      rs.length ? { forward: Math.min(...rs.map((r) => r.forward)), gradient: Math.min(...rs.map((r) => r.gradient)), hvp: Math.min(...rs.map((r) => r.hvp)) } : undefined;
    const a = best(ours)!;
    const firstAtPoint = Math.min(...ours.map((r) => r.hvpNewPoint));
    const b = best(theirs);
    const loss = await ev.loss();
    lines.push(
      `MNIST-sized convnet: ${ev.dim.toLocaleString()} parameters (28x28x1 -> conv 32 -> conv 64 -> max pool 2 -> dense 40 -> dense 10, relu, softmax), ${ev.numSamples} images, loss ${fmt(loss, 5)}` +
        `${theirs[0] ? ` (PyTorch ${fmt(theirs[0].loss, 5)})` : ''}; ${engine.detail}, ${ev instanceof ParallelEvaluator ? `${ev.threads} shares of the samples, one thread each` : `${ev.threads} threads`}; ${b ? 'PyTorch: the peers\' tfjs_torch.py, torch threads 2' : note}`,
    );
    const rows: string[][] = [
      ['op (best of 2 interleaved runs, median ms)', 'onnxruntime', 'PyTorch', 'ratio'],
      ['forward', fmt(a.forward, 4), fmt(b?.forward, 4), ratio(a.forward, b?.forward)],
      ['gradient', fmt(a.gradient, 4), fmt(b?.gradient, 4), ratio(a.gradient, b?.gradient)],
      ['H·v exact, the next at a point', fmt(a.hvp, 4), fmt(b?.hvp, 4), ratio(a.hvp, b?.hvp)],
      ['H·v exact, the first at a point', fmt(firstAtPoint, 4), fmt(b?.hvp, 4), ratio(firstAtPoint, b?.hvp)],
    ];
    const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    for (const r of rows) lines.push(r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  '));
    if (fs.existsSync(hvFile)) {
      const ref = new Float64Array(new Uint8Array(fs.readFileSync(hvFile)).buffer);
      const exact = await ev.hvp(v);
      const fd = await new FiniteDifferenceHessian(ev).matvec(v);
      lines.push(`Against a float64 PyTorch H·v on the same weights: exact ${fmt(relErr(exact, ref))} relative, finite differences ${fmt(relErr(fd, ref))}`);
    }
    const sel = await selectHessian(ev);
    lines.push(`auto chooses: ${sel.method} (${sel.reason})`);
  } finally {
    ev.dispose();
  }
  const t = performance.now();
  const r = spawnSync(process.execPath, [cli, 'eigs', '--model', files.model, '--data', files.data, '--k', '1', '--json', '--quiet'], { encoding: 'utf8', timeout: 900_000, env: { ...process.env, BASIN_ENGINE: '' } });
  const wall = (performance.now() - t) / 1000;
  if (r.status !== 0) lines.push(`basin eigs --k 1: exit ${r.status} after ${wall.toFixed(1)} s: ${(r.stderr || '').trim().split('\n').pop()}`);
  else {
    const e = JSON.parse(r.stdout) as { eigenvalues: number[]; errorBounds: number[]; hvps: number; hvpMethod: string; backend: string };
    lines.push(`basin eigs --k 1 (CLI, ${e.backend}, --hvp auto): ${wall.toFixed(1)} s wall, lambda_max ${fmt(e.eigenvalues[0], 7)} ± ${fmt(e.errorBounds[0])}, ${e.hvps} products, ${e.hvpMethod} chosen`);
  }
  return lines;
}

/** Writes a layers model (model.json + weights.bin) and its data (data.json) into `dir`; disposes the model. */
export async function saveBenchFiles(model: ReturnType<typeof tfl.sequential>, x: number[][] | number[][][][], y: number[][], dir: string): Promise<{ model: string; data: string }> {
  fs.mkdirSync(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.from(a.weightData as ArrayBuffer));
      fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ modelTopology: a.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }] }));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  model.dispose();
  fs.writeFileSync(path.join(dir, 'data.json'), JSON.stringify({ x, y }));
  return { model: path.join(dir, 'model.json'), data: path.join(dir, 'data.json') };
}

/**
 * `npm run bench`: Basin against the PyTorch peer (the reference tools' algorithms) on the same
 * TF.js model files, with ratios. The model is the peer README's: a 64-128-128-10 tanh MLP with a
 * softmax output (26,122 parameters) on 2000 samples, generated deterministically here.
 *
 * The peer runs when found: BASIN_PEER=/path/to/torch_peer.py, or ../shared/peers/torch_peer.py
 * beside the repository, with /usr/bin/python3 (BASIN_PEER_PYTHON) able to import torch.
 * Without it the Basin columns are still printed.
 *
 * Basin runs on both of its engines: TF.js (the backend that loads) and ONNX Runtime
 * (src/engine/ort). The peer's products are measured twice, before and after Basin's (interleaved,
 * so both see the same machine load), and the faster of the two runs is the reference. The top
 * eigenvalue, the traces and the 51 x 51 surface on ONNX Runtime run in BASIN_BENCH_ROUNDS (3)
 * rounds interleaved with the peer's, and their ratios compare medians.
 *
 * A convnet section (16x16x3 images, two 3x3 convolutions, max pooling, 25,578 parameters, 256
 * samples) compares ONNX Runtime's products with PyTorch's (the peers' tfjs_torch.py), also
 * interleaved; then the issue's MNIST-sized convnet (convnet.ts: 387,906 parameters, 1000 images;
 * `BASIN_BENCH_ONLY=convnet npm run bench` runs it alone, `BASIN_BENCH_SKIP=convnet` leaves it out).
 *
 * Speed is measured here, never asserted in tests: timings depend on the machine.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { tf, tfl } from '../../src/engine/tf';
import { initBackend, backendInfo } from '../../src/engine/backend';
import { loadProblem, type Problem } from '../../src/engine/problem';
import { createOrtEvaluator, type OrtEvaluator } from '../../src/engine/ort/evaluator';
import { ExactHessian, FiniteDifferenceHessian } from '../../src/engine/hvp/operators';
import { LocalEvaluator } from '../../src/engine/evaluator';
import { lanczos, powerIteration, hutchpp, hutchinson, type LinearOperator } from '../../src/engine/linalg';
import { Rng } from '../../src/engine/rng';
import { runSurface } from '../../src/engine/surface/slice';
import { DEFAULT_SETTINGS, train } from '../../src/engine/train/run';
import { runEigs } from '../../src/engine/jobs';
import { gradientStart } from '../../src/engine/curvature';
import type { ProbeRecord } from '../../src/shared/results';
import { convnetSection, fmt as cell, median, runPeer as runTfjsTorchPeer, saveBenchFiles, timeAsync } from './convnet';

/** The CLI bundle (`node esbuild.js`), for wall times of whole commands. */
const CLI = path.join(__dirname, '..', '..', 'dist', 'cli.js');

interface PeerResult {
  params: number;
  loss: number;
  ops_ms?: { forward: number; gradient: number; hvp: number };
  eig?: { value: number; hvps: number; ms: number };
  trace?: { value: number; hvps: number; ms: number };
  ref?: { eigs: number[]; ms: number };
  surface?: { steps: number; evaluations: number; min: number; max: number; ms: number };
}

/** Interleaved rounds of the peer's and Basin's eigenvalue, trace and surface (BASIN_BENCH_ROUNDS, default 3). */
const BENCH_ROUNDS = Math.max(1, Number(process.env.BASIN_BENCH_ROUNDS ?? 3) || 1);

/** Milliseconds one call takes. */
async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

/** Points per surface axis: loss-landscape's default grid, -1:1:51. */
const SURFACE_STEPS = 51;

/** The problem with its evaluators on TF.js (BASIN_ENGINE=tfjs while they are made). */
function onTfjs(problem: Problem): Problem {
  return {
    ...problem,
    evaluator: async (opts) => {
      const prev = process.env.BASIN_ENGINE;
      process.env.BASIN_ENGINE = 'tfjs';
      try {
        return await problem.evaluator(opts);
      } finally {
        if (prev === undefined) delete process.env.BASIN_ENGINE;
        else process.env.BASIN_ENGINE = prev;
      }
    },
  };
}

async function ortEvaluator(problem: Problem, split: 'train' | 'test' = 'train', threads?: number): Promise<OrtEvaluator> {
  const data = split === 'test' && problem.test ? problem.test : problem.train;
  const r = await createOrtEvaluator(problem.ir, problem.theta, problem.loss, data, { threads });
  if (!r.evaluator) throw new Error(`onnxruntime: ${r.reason}`);
  return r.evaluator;
}

async function writeConvModel(dir: string): Promise<{ model: string; data: string }> {
  const rng = new Rng(7);
  const n = 256;
  const x: number[][][][] = [];
  const y: number[][] = [];
  for (let i = 0; i < n; i++) {
    const c = rng.nextU32() % 10;
    x.push(Array.from({ length: 16 }, (_, r) => Array.from({ length: 16 }, (_, q) => Array.from({ length: 3 }, (_, ch) => Number((Math.sin((c + 1) * (r + 2 * q + ch) * 0.1) + 0.5 * rng.normal()).toFixed(4))))));
    y.push(Array.from({ length: 10 }, (_, k) => (k === c ? 1 : 0)));
  }
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [16, 16, 3], filters: 16, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tfl.initializers.glorotNormal({ seed: 21 }) }),
      tfl.layers.conv2d({ filters: 32, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tfl.initializers.glorotNormal({ seed: 22 }) }),
      tfl.layers.maxPooling2d({ poolSize: 2 }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: tfl.initializers.glorotNormal({ seed: 23 }) }),
    ],
  });
  return saveBenchFiles(model, x, y, path.join(dir, 'conv'));
}

async function writeBenchModel(dir: string): Promise<{ model: string; data: string }> {
  const rng = new Rng(2024);
  const n = 2000;
  // Inputs: 10 Gaussian clusters in 64-D; labels the cluster (learnable, not trivially separable).
  const centers = Array.from({ length: 10 }, () => Array.from(rng.normalVector(64), (v) => v * 0.6));
  const x: number[][] = [];
  const y: number[][] = [];
  for (let i = 0; i < n; i++) {
    const c = rng.nextU32() % 10;
    x.push(centers[c].map((m) => Number((m + rng.normal()).toFixed(4))));
    y.push(Array.from({ length: 10 }, (_, k) => (k === c ? 1 : 0)));
  }
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [64], units: 128, activation: 'tanh', kernelInitializer: tfl.initializers.glorotNormal({ seed: 11 }) }),
      tfl.layers.dense({ units: 128, activation: 'tanh', kernelInitializer: tfl.initializers.glorotNormal({ seed: 12 }) }),
      tfl.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: tfl.initializers.glorotNormal({ seed: 13 }) }),
    ],
  });
  return saveBenchFiles(model, x, y, dir);
}

function findPeer(): string | undefined {
  const candidates = [process.env.BASIN_PEER, path.join(process.cwd(), '..', 'shared', 'peers', 'torch_peer.py')];
  return candidates.find((c): c is string => !!c && fs.existsSync(c));
}

function runPeer(peer: string, model: string, data: string, jobs = 'ops,eig,trace,ref,surface'): PeerResult | string {
  const python = process.env.BASIN_PEER_PYTHON ?? '/usr/bin/python3';
  const r = spawnSync(python, [peer, model, data, '--loss', 'categoricalCrossentropy', '--jobs', jobs, '--k', '5', '--steps', String(SURFACE_STEPS)], { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) return `peer failed: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`;
  return JSON.parse(r.stdout) as PeerResult;
}

/** An operator that adds up the milliseconds its products take (`ms`). */
function timedOperator(op: LinearOperator): LinearOperator & { ms: number } {
  const timed = {
    dim: op.dim,
    relativeNoise: op.relativeNoise,
    ms: 0,
    async matvec(v: Float64Array): Promise<Float64Array> {
      const t0 = performance.now();
      try {
        return await op.matvec(v);
      } finally {
        timed.ms += performance.now() - t0;
      }
    },
  };
  return timed;
}

function timeMs(f: () => unknown, n = 15): number {
  f();
  const ts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    f();
    ts.push(performance.now() - t);
  }
  return median(ts);
}

const fmt = (x: number | undefined, d = 4): string => cell(x, d);

function table(rows: (string | number | undefined)[][]): string {
  const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c) : (c ?? '-'))));
  const w = cells[0].map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  return cells.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ')).join('\n');
}

async function main(): Promise<void> {
  await initBackend((process.env.BASIN_BACKEND as 'wasm' | undefined) ?? undefined);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'basin-bench-'));
  const peerPath = findPeer();
  if (process.env.BASIN_BENCH_ONLY === 'convnet') {
    // The MNIST-sized convnet alone (a few minutes).
    console.log((await convnetSection(dir, peerPath, CLI)).join('\n'));
    fs.rmSync(dir, { recursive: true, force: true });
    return;
  }
  const files = await writeBenchModel(dir);
  let peer: PeerResult | undefined;
  let peerNote = 'peer not found (set BASIN_PEER)';
  if (peerPath) {
    process.stderr.write('bench: running the PyTorch peer (ops, eig, trace, float64 ref)...\n');
    const r = runPeer(peerPath, files.model, files.data);
    if (typeof r === 'string') peerNote = r;
    else {
      peer = r;
      peerNote = `peer: ${peerPath}`;
    }
  }
  const loaded = await loadProblem({ model: files.model, data: files.data, loss: 'categoricalCrossentropy' });
  const problem = onTfjs(loaded);
  const obj = problem.objective();
  const rng = new Rng(0);
  const v = rng.normalVector(obj.dim);
  process.stderr.write('bench: timing Basin products...\n');
  const ops = {
    forward: timeMs(() => obj.lossAt()),
    gradient: timeMs(() => obj.gradient()),
    hvp: timeMs(() => obj.hvpExact(v)),
  };
  const single = new LocalEvaluator(obj);
  const fdOp = new FiniteDifferenceHessian(single);
  const fdMs = await timeAsync(() => fdOp.matvec(v), 7);
  process.stderr.write('bench: starting worker threads...\n');
  const ev = await problem.evaluator();
  const hvpParallel = await timeAsync(() => ev.hvp(v));
  const gradParallel = await timeAsync(() => ev.gradient());
  process.stderr.write('bench: ONNX Runtime products...\n');
  const ort = await ortEvaluator(loaded);
  const ortOps = {
    forward: await timeAsync(() => ort.loss()),
    gradient: await timeAsync(() => ort.gradient()),
    hvp: await timeAsync(() => ort.hvp(v)),
    // Moving the parameters drops what products at a point share (the split H·v graph's first part).
    hvpNewPoint: await timeAsync(async () => {
      await ort.setParameters(loaded.theta);
      await ort.hvp(v);
    }),
  };
  if (peerPath && peer?.ops_ms) {
    // The peer's products again, right after ours; the faster run of the two is the reference.
    const again = runPeer(peerPath, files.model, files.data, 'ops');
    if (typeof again !== 'string' && again.ops_ms) {
      const a = again.ops_ms;
      const b = peer.ops_ms;
      peer.ops_ms = { forward: Math.min(a.forward, b.forward), gradient: Math.min(a.gradient, b.gradient), hvp: Math.min(a.hvp, b.hvp) };
    }
  }

  const ref = peer?.ref?.eigs[0];
  const exact = new ExactHessian(ev);
  process.stderr.write('bench: Lanczos and power iteration...\n');
  let t = performance.now();
  const lz = await lanczos(exact, { k: 1, which: 'top', rng: new Rng(1), stopOn: 'bound' });
  const lzMs = performance.now() - t;
  const exact2 = new ExactHessian(ev);
  t = performance.now();
  const pw = await powerIteration(exact2, { rng: new Rng(1) });
  const pwMs = performance.now() - t;
  process.stderr.write('bench: traces...\n');
  const traceBudget = peer?.trace?.hvps ?? 30;
  const exact3 = new ExactHessian(ev);
  t = performance.now();
  const hpp = await hutchpp(exact3, { matvecs: Math.max(3, traceBudget), rng: new Rng(2) });
  const hppMs = performance.now() - t;
  const exact4 = new ExactHessian(ev);
  t = performance.now();
  const hut = await hutchinson(exact4, { matvecs: Math.max(2, traceBudget), rng: new Rng(3) });
  const hutMs = performance.now() - t;
  process.stderr.write('bench: eigenvalue and traces on ONNX Runtime...\n');
  const lzOrtOp = timedOperator(new ExactHessian(ort));
  t = performance.now();
  const lzOrt = await lanczos(lzOrtOp, { k: 1, which: 'top', rng: new Rng(1), stopOn: 'bound' });
  const lzOrtMs = performance.now() - t;
  // Lanczos as `basin eigs` starts it: from the gradient plus a random half, the gradient's time included.
  const lzGradOp = timedOperator(new ExactHessian(ort));
  t = performance.now();
  const startGrad = (await ort.gradient()).grad;
  const lzGrad = await lanczos(lzGradOp, { k: 1, which: 'top', rng: new Rng(1), stopOn: 'bound', v0: gradientStart(startGrad, new Rng(1).normalVector(ort.dim)) });
  const lzGradMs = performance.now() - t;
  // The eigs job as `basin eigs --k 1` runs it: its own evaluator, the --hvp auto check, Lanczos
  // from the gradient start (curvature/index.ts gradientStart), the gradient's overlap.
  t = performance.now();
  const eigsJob = await runEigs(loaded, { k: 1 });
  const eigsJobMs = performance.now() - t;
  t = performance.now();
  const pwOrt = await powerIteration(new ExactHessian(ort), { rng: new Rng(1) });
  const pwOrtMs = performance.now() - t;
  t = performance.now();
  const hppOrt = await hutchpp(new ExactHessian(ort), { matvecs: Math.max(3, traceBudget), rng: new Rng(2) });
  const hppOrtMs = performance.now() - t;
  t = performance.now();
  const hutOrt = await hutchinson(new ExactHessian(ort), { matvecs: Math.max(2, traceBudget), rng: new Rng(3) });
  const hutOrtMs = performance.now() - t;

  process.stderr.write(`bench: ${SURFACE_STEPS}x${SURFACE_STEPS} surface...\n`);
  t = performance.now();
  const surf = await runSurface(problem, { x: `-1:1:${SURFACE_STEPS}`, seed: 0 });
  const surfMs = performance.now() - t;
  const surfFlat = surf.loss.flat().filter((v): v is number => v !== null);
  t = performance.now();
  const surfOrt = await runSurface(loaded, { x: `-1:1:${SURFACE_STEPS}`, seed: 0 });
  const surfOrtMs = performance.now() - t;
  const surfOrtFlat = surfOrt.loss.flat().filter((v): v is number => v !== null);
  let surfDiff = 0;
  surf.loss.forEach((row, i) => row.forEach((l, j) => (surfDiff = Math.max(surfDiff, Math.abs((l ?? NaN) - (surfOrt.loss[i][j] ?? NaN)) / Math.abs(l ?? 1)))));

  // More interleaved rounds of the jobs with targets: the peer's eigenvalue, trace and surface, then
  // Basin's on ONNX Runtime. Their times are medians over the rounds (one run on a shared 2-core
  // machine moves by 10-30%, the peer's as much as Basin's).
  const rounds = {
    peerEig: [peer?.eig?.ms],
    peerTrace: [peer?.trace?.ms],
    peerSurface: [peer?.surface?.ms],
    lanczos: [lzOrtMs],
    lanczosGradient: [lzGradMs],
    hutchpp: [hppOrtMs],
    hutchinson: [hutOrtMs],
    surface: [surfOrtMs],
  };
  for (let round = 1; round < BENCH_ROUNDS && peerPath && peer; round++) {
    process.stderr.write(`bench: interleaved round ${round + 1} of ${BENCH_ROUNDS} (eigenvalue, trace, surface)...\n`);
    const again = runPeer(peerPath, files.model, files.data, 'eig,trace,surface');
    if (typeof again === 'string') break;
    rounds.peerEig.push(again.eig?.ms);
    rounds.peerTrace.push(again.trace?.ms);
    rounds.peerSurface.push(again.surface?.ms);
    rounds.lanczos.push(await timed(() => lanczos(new ExactHessian(ort), { k: 1, which: 'top', rng: new Rng(1), stopOn: 'bound' })));
    rounds.lanczosGradient.push(
      await timed(async () => lanczos(new ExactHessian(ort), { k: 1, which: 'top', rng: new Rng(1), stopOn: 'bound', v0: gradientStart((await ort.gradient()).grad, new Rng(1).normalVector(ort.dim)) })),
    );
    rounds.hutchpp.push(await timed(() => hutchpp(new ExactHessian(ort), { matvecs: Math.max(3, traceBudget), rng: new Rng(2) })));
    rounds.hutchinson.push(await timed(() => hutchinson(new ExactHessian(ort), { matvecs: Math.max(2, traceBudget), rng: new Rng(3) })));
    rounds.surface.push(await timed(() => runSurface(loaded, { x: `-1:1:${SURFACE_STEPS}`, seed: 0 })));
  }
  const mid = (xs: (number | undefined)[]): number | undefined => {
    const ok = xs.filter((x): x is number => x !== undefined);
    return ok.length ? median(ok) : undefined;
  };
  const peerEigMs = mid(rounds.peerEig);
  const peerTraceMs = mid(rounds.peerTrace);
  const peerSurfaceMs = mid(rounds.peerSurface);
  const roundsDone = rounds.lanczos.length;

  process.stderr.write('bench: convnet...\n');
  const convFiles = await writeConvModel(dir);
  const conv = onTfjs(await loadProblem({ model: convFiles.model, data: convFiles.data, loss: 'categoricalCrossentropy' }));
  const convOrt = await ortEvaluator(conv);
  const cv = new Rng(4).normalVector(convOrt.dim);
  const convRuns: { forward: number; gradient: number; hvp: number }[] = [];
  const convPeerRuns: { forward: number; gradient: number; hvp: number; loss: number }[] = [];
  let convPeerNote = peerNote;
  for (let round = 0; round < 2; round++) {
    if (peerPath) {
      const r = runTfjsTorchPeer(peerPath, convFiles.model, convFiles.data, 7);
      if (typeof r === 'string') convPeerNote = r;
      else convPeerRuns.push(r);
    }
    convRuns.push({ forward: await timeAsync(() => convOrt.loss(), 7), gradient: await timeAsync(() => convOrt.gradient(), 7), hvp: await timeAsync(() => convOrt.hvp(cv), 7) });
  }
  const best = <T extends { forward: number; gradient: number; hvp: number }>(rs: T[]): { forward: number; gradient: number; hvp: number } | undefined =>
    rs.length ? { forward: Math.min(...rs.map((r) => r.forward)), gradient: Math.min(...rs.map((r) => r.gradient)), hvp: Math.min(...rs.map((r) => r.hvp)) } : undefined;
  const convOurs = best(convRuns)!;
  const convPeer = best(convPeerRuns);
  const convLoss = await convOrt.loss();
  const convTfjsObj = conv.objective();
  const convTfjsHvp = process.env.BASIN_BENCH_CONV_TFJS ? timeMs(() => convTfjsObj.hvpExact(cv), 2) : undefined;
  convTfjsObj.dispose();

  process.stderr.write('bench: training throughput...\n');
  const trainSteps = 200;
  /**
   * Steps per second over the whole run (setup, the probes at step 0 and at the end, the final
   * checkpoint) and in the loop alone (from the record of step 0 to that of the last step: what the
   * PyTorch loop, warmed up and without probes, is timed on).
   */
  const throughput = async (probeEvery: number, on: Problem = problem, tag = 'tfjs'): Promise<{ stepsPerS: number; loopStepsPerS: number; probes: ProbeRecord[] }> => {
    const out = path.join(dir, `run-${tag}-${probeEvery}`);
    const probes: ProbeRecord[] = [];
    const at = new Map<number, number>();
    const t1 = performance.now();
    await train(on, { ...DEFAULT_SETTINGS, optimizer: 'gd', lr: 0.05, steps: trainSteps, probeEvery, checkpointSeconds: 0 }, out, {
      onProbe: (r) => {
        at.set(r.step, performance.now());
        if (r.lambdaMax !== undefined) probes.push(r);
      },
    });
    const loopMs = (at.get(trainSteps - 1) ?? NaN) - (at.get(0) ?? NaN);
    return { stepsPerS: trainSteps / ((performance.now() - t1) / 1000), loopStepsPerS: (trainSteps - 1) / (loopMs / 1000), probes };
  };
  const bare = await throughput(trainSteps);
  const probed = await throughput(10);
  const bareOrt = await throughput(trainSteps, loaded, 'ort');
  const probedOrt = await throughput(10, loaded, 'ort');
  const warm = probed.probes.slice(1).map((r) => r.hvps ?? 0);
  let torchSteps: number | undefined;
  if (peerPath && peer) {
    const r = spawnSync(process.env.BASIN_PEER_PYTHON ?? '/usr/bin/python3', [path.join(__dirname, '..', '..', 'test', 'bench', 'torch_train.py'), path.dirname(peerPath), files.model, files.data, '--steps', String(trainSteps)], { encoding: 'utf8' });
    if (r.status === 0) torchSteps = (JSON.parse(r.stdout) as { steps_per_s: number }).steps_per_s;
  }

  // What dominates one exact product: the kernels, summed by name.
  const prof = await tf.profile(() => {
    obj.hvpExact(v);
  });
  const byKernel = new Map<string, number>();
  for (const k of prof.kernels) byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + (k.kernelTimeMs as number));
  const kernelTotal = [...byKernel.values()].reduce((a, b) => a + b, 0);
  const top = [...byKernel.entries()].sort((a, b) => b[1] - a[1]).slice(0, 6);

  const be = backendInfo();
  const relErr = (x: number | undefined): number | undefined => (ref === undefined || x === undefined ? undefined : Math.abs(x - ref) / Math.abs(ref));
  const ratio = (ours: number, theirs: number | undefined): string => (theirs === undefined ? '-' : `${(ours / theirs).toFixed(2)}x`);
  const out: string[] = [];
  out.push(`Basin benchmark: ${problem.ir.numParams.toLocaleString()}-parameter tanh MLP (64-128-128-10, softmax), ${obj.numSamples} samples`);
  out.push(`Basin backend: ${be.detail}, algorithms on ${ev.threads} threads; ${ort.engine.detail}, ${ort.threads} intra-op threads; ${peer ? `PyTorch peer: torch threads 2` : peerNote}`);
  out.push('');
  out.push('Products (median ms)                  Basin      peer   Basin/peer');
  out.push(table([
    ['op', 'Basin', 'peer', 'ratio'],
    ['forward', ops.forward, peer?.ops_ms?.forward, ratio(ops.forward, peer?.ops_ms?.forward)],
    ['gradient, 1 thread', ops.gradient, peer?.ops_ms?.gradient, ratio(ops.gradient, peer?.ops_ms?.gradient)],
    [`gradient, ${ev.threads} threads`, gradParallel, peer?.ops_ms?.gradient, ratio(gradParallel, peer?.ops_ms?.gradient)],
    ['H·v exact, 1 thread', ops.hvp, peer?.ops_ms?.hvp, ratio(ops.hvp, peer?.ops_ms?.hvp)],
    [`H·v exact, ${ev.threads} threads`, hvpParallel, peer?.ops_ms?.hvp, ratio(hvpParallel, peer?.ops_ms?.hvp)],
    ['H·v finite diff., 1 thread', fdMs, undefined, '-'],
    [`forward, onnxruntime (${ort.threads} threads)`, ortOps.forward, peer?.ops_ms?.forward, ratio(ortOps.forward, peer?.ops_ms?.forward)],
    [`gradient, onnxruntime (${ort.threads} threads)`, ortOps.gradient, peer?.ops_ms?.gradient, ratio(ortOps.gradient, peer?.ops_ms?.gradient)],
    [`H·v exact, onnxruntime (${ort.threads} threads), the next at a point`, ortOps.hvp, peer?.ops_ms?.hvp, ratio(ortOps.hvp, peer?.ops_ms?.hvp)],
    [`H·v exact, onnxruntime, the first at a point`, ortOps.hvpNewPoint, peer?.ops_ms?.hvp, ratio(ortOps.hvpNewPoint, peer?.ops_ms?.hvp)],
  ]));
  out.push('');
  const medianTag = roundsDone > 1 ? `, median of ${roundsDone}` : '';
  if (roundsDone > 1) out.push(`(Rows marked "median of ${roundsDone}": that many interleaved rounds of the peer's and Basin's runs; the others ran once.)`, '');
  out.push(`Top eigenvalue (float64 reference: ${ref === undefined ? 'unavailable' : ref.toPrecision(8)})`);
  out.push(table([
    ['method', 'value', 'rel. error', 'products', 'ms', 'time vs peer'],
    ['Basin Lanczos (bound 1e-6)', lz.eigenvalues[0], relErr(lz.eigenvalues[0]), lz.matvecs, lzMs, ratio(lzMs, peerEigMs)],
    ['Basin power (PyHessian rule)', pw.eigenvalue, relErr(pw.eigenvalue), pw.matvecs, pwMs, ratio(pwMs, peerEigMs)],
    [`Basin Lanczos, onnxruntime${medianTag}`, lzOrt.eigenvalues[0], relErr(lzOrt.eigenvalues[0]), lzOrt.matvecs, mid(rounds.lanczos), ratio(mid(rounds.lanczos)!, peerEigMs)],
    [`Basin Lanczos, onnxruntime, gradient start${medianTag}`, lzGrad.eigenvalues[0], relErr(lzGrad.eigenvalues[0]), lzGrad.matvecs, mid(rounds.lanczosGradient), ratio(mid(rounds.lanczosGradient)!, peerEigMs)],
    ['Basin power, onnxruntime', pwOrt.eigenvalue, relErr(pwOrt.eigenvalue), pwOrt.matvecs, pwOrtMs, ratio(pwOrtMs, peerEigMs)],
    [`Basin eigs job, ${eigsJob.backend} (all of it)`, eigsJob.eigenvalues[0], relErr(eigsJob.eigenvalues[0]), eigsJob.hvps + eigsJob.hvpCheckProducts, eigsJobMs, ratio(eigsJobMs, peerEigMs)],
    [`peer PyHessian power${medianTag}`, peer?.eig?.value, relErr(peer?.eig?.value), peer?.eig?.hvps, peerEigMs, '1.00x'],
  ]));
  out.push(`(Gradient start: Lanczos from the gradient plus a random vector, as eigs starts it; ${fmt(lzGradMs - lzGradOp.ms)} ms outside the products ` +
    `(the gradient and Lanczos's own work); error bound ${fmt(lzGrad.errorBounds[0])}.)`);
  out.push(`(The eigs job: the session set-up, the ${eigsJob.hvpMethod} product chosen by --hvp auto with ${eigsJob.hvpCheckProducts} check products, ` +
    `Lanczos from the gradient start in ${eigsJob.hvps} more, and the gradient; error bound ${fmt(eigsJob.errorBounds[0])}.)`);
  out.push(`Lanczos error bound ${fmt(lz.errorBounds[0])}, residual ${fmt(lz.residuals[0])}; on onnxruntime ${fmt(lzOrtOp.ms)} ms of the ${fmt(lzOrtMs)} were products ` +
    `(${fmt(lzOrtOp.ms / lzOrt.matvecs)} ms each), ${fmt(lzOrtMs - lzOrtOp.ms)} ms Lanczos's own work`);
  out.push('');
  out.push(`Trace (same product budget: ${traceBudget})`);
  out.push(table([
    ['method', 'trace', 'std. error', 'products', 'ms', 'time vs peer'],
    ['Basin Hutch++', hpp.trace, hpp.stderr, hpp.matvecs, hppMs, ratio(hppMs, peerTraceMs)],
    ['Basin Hutchinson', hut.trace, hut.stderr, hut.matvecs, hutMs, ratio(hutMs, peerTraceMs)],
    [`Basin Hutch++, onnxruntime${medianTag}`, hppOrt.trace, hppOrt.stderr, hppOrt.matvecs, mid(rounds.hutchpp), ratio(mid(rounds.hutchpp)!, peerTraceMs)],
    [`Basin Hutchinson, onnxruntime${medianTag}`, hutOrt.trace, hutOrt.stderr, hutOrt.matvecs, mid(rounds.hutchinson), ratio(mid(rounds.hutchinson)!, peerTraceMs)],
    [`peer PyHessian Hutchinson${medianTag}`, peer?.trace?.value, undefined, peer?.trace?.hvps, peerTraceMs, '1.00x'],
  ]));
  out.push('');
  out.push(`2-D surface, ${SURFACE_STEPS} x ${SURFACE_STEPS} grid, filter-normalized random directions (loss-landscape defaults)`);
  out.push(table([
    ['tool', 'points', 'ms', 'ms/point', 'loss range', 'time vs peer'],
    [`Basin (${surf.threads} threads, first layer shared)`, surf.evaluations, surfMs, surfMs / surf.evaluations, `${fmt(Math.min(...surfFlat))}..${fmt(Math.max(...surfFlat))}`, ratio(surfMs, peerSurfaceMs)],
    [`peer loss-landscape loop${medianTag}`, peer?.surface?.evaluations, peerSurfaceMs, peer?.surface && peerSurfaceMs ? peerSurfaceMs / peer.surface.evaluations : undefined, peer?.surface ? `${fmt(peer.surface.min)}..${fmt(peer.surface.max)}` : '-', '1.00x'],
  ]));
  out.push(table([
    ['tool', 'points', 'ms', 'ms/point', 'loss range', 'time vs peer'],
    [`Basin onnxruntime (${surfOrt.threads} threads)${medianTag}`, surfOrt.evaluations, mid(rounds.surface), mid(rounds.surface)! / surfOrt.evaluations, `${fmt(Math.min(...surfOrtFlat))}..${fmt(Math.max(...surfOrtFlat))}`, ratio(mid(rounds.surface)!, peerSurfaceMs)],
  ]).split('\n')[1]);
  out.push(`(The two tools draw different random directions, so their loss ranges differ. Basin's two engines agree to ${fmt(surfDiff)} relative on every point.)`);
  out.push('');
  out.push(`Training: full-batch GD, ${trainSteps} steps`);
  const vsTorch = (x: number): string => (torchSteps ? `${(x / torchSteps).toFixed(2)}x` : '-');
  out.push(table([
    ['loop', 'steps/s, loop', 'vs PyTorch', 'steps/s, whole run', 'vs PyTorch'],
    [`Basin, no probes but the first and last (${ev.threads} threads)`, bare.loopStepsPerS, vsTorch(bare.loopStepsPerS), bare.stepsPerS, vsTorch(bare.stepsPerS)],
    ['Basin, probes every 10 steps', probed.loopStepsPerS, vsTorch(probed.loopStepsPerS), probed.stepsPerS, vsTorch(probed.stepsPerS)],
    [`Basin onnxruntime, no probes but the first and last (${ort.threads} threads)`, bareOrt.loopStepsPerS, vsTorch(bareOrt.loopStepsPerS), bareOrt.stepsPerS, vsTorch(bareOrt.stepsPerS)],
    ['Basin onnxruntime, probes every 10 steps', probedOrt.loopStepsPerS, vsTorch(probedOrt.loopStepsPerS), probedOrt.stepsPerS, vsTorch(probedOrt.stepsPerS)],
    ['PyTorch loop (grad + update, after 5 warm-up steps)', torchSteps, '1.00x', '', ''],
  ]));
  out.push('(The loop: from the record of step 0, after its probe, to that of the last step. The whole run adds loading the sessions, the probes at step 0 and at the end, and the final checkpoint.)');
  out.push(`A warm-started lambda_max probe: ${fmt(warm.reduce((a, b) => a + b, 0) / Math.max(1, warm.length), 3)} H·v on average (first probe, cold: ${probed.probes[0]?.hvps ?? '-'}), ` +
    `against ${peer?.eig?.hvps ?? '~20'} for a cold PyHessian power iteration.`);
  out.push('');
  out.push(`Convnet: ${conv.ir.numParams.toLocaleString()} parameters (16x16x3 -> conv 16 -> conv 32 -> max pool 2 -> dense 10, softmax), ${conv.train.xShape[0]} samples, loss ${fmt(convLoss)}${convPeerRuns[0] ? ` (peer ${fmt(convPeerRuns[0].loss)})` : ''}; ${convPeer ? 'PyTorch: the peers\' tfjs_torch.py, torch threads 2' : convPeerNote}`);
  out.push(table([
    ['op (best of 2 interleaved runs, median ms)', 'onnxruntime', 'PyTorch', 'ratio'],
    ['forward', convOurs.forward, convPeer?.forward, ratio(convOurs.forward, convPeer?.forward)],
    ['gradient', convOurs.gradient, convPeer?.gradient, ratio(convOurs.gradient, convPeer?.gradient)],
    ['H·v exact', convOurs.hvp, convPeer?.hvp, ratio(convOurs.hvp, convPeer?.hvp)],
    ...(convTfjsHvp === undefined ? [] : [['H·v exact, TF.js 1 thread', convTfjsHvp, convPeer?.hvp, ratio(convTfjsHvp, convPeer?.hvp)]]),
  ]));
  out.push('');
  if (process.env.BASIN_BENCH_SKIP !== 'convnet') {
    process.stderr.write('bench: MNIST-sized convnet...\n');
    out.push(...(await convnetSection(dir, peerPath, CLI)));
    out.push('');
  }
  out.push(`Where one exact product's time goes (${prof.kernels.length} kernels, ${kernelTotal.toFixed(1)} ms in kernels):`);
  for (const [name, ms] of top) out.push(`  ${name.padEnd(22)} ${ms.toFixed(1).padStart(7)} ms  ${((100 * ms) / kernelTotal).toFixed(0).padStart(3)}%`);
  console.log(out.join('\n'));
  obj.dispose();
  ev.dispose();
  await ort.released();
  await convOrt.released();
  if (!process.env.BASIN_BENCH_KEEP) fs.rmSync(dir, { recursive: true, force: true });
  else console.log(`kept ${dir}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});

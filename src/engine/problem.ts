/**
 * A problem is what every job analyses: a model (IR and parameters), its training data and a loss,
 * assembled from either a model.json + data file, or an experiment module.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import type { ProblemInput } from '../shared/workerProtocol';
import { InputError } from './errors';
import { loadLayersModelFile } from './model/io';
import { lowerLayersModel } from './model/lower';
import { forwardMultiplyAdds, LOSS_NAMES, outputActivation, type LossName, type ModelIR } from './model/ir';
import { loadDataFile, nchwToNhwc, validateSplit, type Split } from './data';
import { isOnnxFile, loadOnnxModel } from './model/onnx/import';
import { compileExperiment, experimentData, experimentLoss, experimentModel, tfApi, type ExperimentModule } from './model/experiment';
import { captureArchive, type ModelArchive } from './model/archive';
import { USER_LOSS, type LossSpec } from './model/losses';
import { checkOutputs, Objective } from './objective';
import { LocalEvaluator, type Evaluator } from './evaluator';
import { ParallelEvaluator, shardWorkerPath } from './shard/parallel';
import { PointParallelEvaluator } from './shard/points';
import { backendInfo } from './backend';
import { MAX_PARAMS, paramLimitHint, refuseOver } from './limits';
import { createOrtEvaluator, requestedProviders } from './ort/evaluator';

/** Below this many samples a second thread costs more in per-op overhead than it saves. */
export const MIN_PARALLEL_SAMPLES = 512;
/**
 * ONNX Runtime evaluates a model in shares of the samples on worker threads (one ONNX Runtime
 * thread each) when one forward pass over the data takes at least this many multiply-adds (about
 * 30 ms here): below it, handing the work over costs more than it saves (the 26k-parameter MLP of
 * the benchmark on 2000 samples, 5e7: its Lanczos run took 630 ms in shares, 480 ms on one
 * session with two threads).
 */
export const ORT_SHARD_MULTIPLY_ADDS = 1e9;

/** model.json + data file (+ CSV label columns, loss), or an experiment module; see ProblemInput. */
export type ProblemSpec = ProblemInput;

export interface Problem {
  ir: ModelIR;
  /** Initial parameters, flat. */
  theta: Float32Array;
  loss: LossSpec;
  lossName: string;
  train: Split;
  test?: Split;
  /** What was loaded, for messages and results. */
  description: string;
  /** The model.json file, when the model came from one. */
  modelFile?: string;
  /** Topology and all weights, for writing checkpoints (absent for problems built in memory). */
  archive?: ModelArchive;
  /** The experiment module, when the problem came from one (its training settings). */
  experiment?: ExperimentModule;
  /** The inputs it was loaded from. */
  source?: ProblemSpec;
  /** A single-thread objective (synchronous API). */
  objective(): Objective;
  /**
   * The evaluator jobs use: data-parallel over worker threads when that helps (wasm or cpu
   * backend, a named loss, at least 512 samples, the shard bundle present), else this thread.
   */
  evaluator(opts?: { threads?: number; split?: 'train' | 'test' }): Promise<Evaluator>;
}

/** A loss fitting the model when none is given: CE for softmax/sigmoid outputs, else MSE. */
export function defaultLoss(ir: ModelIR): LossName {
  const act = outputActivation(ir);
  if (act === 'softmax') return 'categoricalCrossentropy';
  if (act === 'sigmoid') return 'binaryCrossentropy';
  return 'meanSquaredError';
}

function parseLoss(name: string | undefined, ir: ModelIR, source: string): LossName {
  if (name === undefined) return defaultLoss(ir);
  const found = LOSS_NAMES.find((l) => l.toLowerCase() === name.toLowerCase() || snake(l) === name.toLowerCase());
  if (!found) throw new InputError(`unknown loss '${name}' (use ${LOSS_NAMES.join(', ')})`, source);
  return found;
}

/** The file with its folder, e.g. spiral/model.json: enough to tell files apart in tables. */
function shortName(file: string): string {
  return path.join(path.basename(path.dirname(path.resolve(file))), path.basename(file));
}

function snake(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

export async function loadProblem(spec: ProblemSpec): Promise<Problem> {
  let model: import('./tf').tfl.LayersModel;
  let source: string;
  let loss: LossSpec;
  let lossName: string;
  let train: Split;
  let test: Split | undefined;
  if (spec.experiment) {
    source = spec.experiment;
    const { module: mod, code } = compileExperiment(spec.experiment);
    const api = tfApi();
    // A checkpoint of the module's model (a training run's), evaluated on the module's data.
    model = spec.model ? await loadLayersModelFile(spec.model, { maxParams: spec.maxParams }) : await experimentModel(mod, code, api);
    let lowered: ReturnType<typeof lowerLayersModel>;
    let archive: ModelArchive;
    try {
      ({ train, test } = await experimentData(mod, code, api));
      lowered = lowerLayersModel(model, source);
      archive = captureArchive(model);
    } finally {
      model.dispose();
    }
    const l = spec.loss ?? mod.loss;
    loss = typeof l === 'function' ? experimentLoss(l, code) : parseLoss(l, lowered.ir, source);
    lossName = typeof loss === 'function' ? 'custom' : loss;
    const p = finish(lowered.ir, lowered.values, loss, lossName, train, test, source, spec);
    return { ...p, archive, experiment: mod, source: spec };
  }
  if (!spec.model) throw new InputError('give a model (model: a TF.js model.json or an .onnx file) and its data, or an experiment module');
  source = spec.model;
  if (!spec.data) throw new InputError('give the data the model is evaluated on (data: a .json, .csv, .npy or .npz file)', spec.model);
  const dataset = loadDataFile(spec.data, { labels: spec.labels, noHeader: spec.noHeader, xKey: spec.xKey, yKey: spec.yKey });
  if (isOnnxFile(spec.model)) return loadOnnxProblem(spec, spec.model, dataset);
  model = await loadLayersModelFile(spec.model, { maxParams: spec.maxParams });
  const lowered = lowerLayersModel(model, spec.model);
  const archive = captureArchive(model);
  model.dispose();
  loss = parseLoss(spec.loss, lowered.ir, spec.model);
  lossName = loss as string;
  train = dataset.train;
  test = dataset.test;
  const p = finish(lowered.ir, lowered.values, loss, lossName, train, test, `${shortName(spec.model)} on ${shortName(dataset.source.split(',')[0])}`, spec, dataset.source);
  return { ...p, archive, source: spec };
}

/**
 * A problem on an ONNX model (`model/onnx/`). ONNX files hold no loss, so one must be named; a
 * graph ending in LogSoftmax takes crossEntropyFromLogits only (nn.NLLLoss on its log-probabilities
 * is that loss on the logits before it). Image inputs are NCHW in the data (PyTorch's layout,
 * also flattened C,H,W per sample) and are transposed to the IR's NHWC.
 */
function loadOnnxProblem(spec: ProblemSpec, file: string, dataset: ReturnType<typeof loadDataFile>): Problem {
  const imported = loadOnnxModel(file, { maxParams: spec.maxParams });
  const { ir } = imported;
  if (spec.loss === undefined) {
    throw new InputError(`an ONNX model holds no loss: name one (crossEntropyFromLogits for a classifier that outputs logits, as nn.CrossEntropyLoss; or ${LOSS_NAMES.filter((l) => l !== 'crossEntropyFromLogits').join(', ')})`, file);
  }
  const loss = parseLoss(spec.loss, ir, file);
  if (imported.logSoftmaxOutput && loss !== 'crossEntropyFromLogits') {
    throw new InputError(`the graph ends in LogSoftmax (log-probabilities, for nn.NLLLoss): use the loss crossEntropyFromLogits, which equals NLLLoss on them; ${loss} would read the logits before it`, file);
  }
  const toNhwc = (s: Split | undefined): Split | undefined => {
    if (!s || !imported.nchwInput) return s;
    const [h, w, c] = ir.nodes[ir.input].outShape;
    const flat = s.xShape.length === 2 && s.xShape[1] === c * h * w;
    return nchwToNhwc(flat ? { ...s, xShape: [s.xShape[0], c, h, w] } : s, [c, h, w]);
  };
  const train = toNhwc(dataset.train) as Split;
  const description = `${shortName(file)} on ${shortName(dataset.source.split(',')[0])}`;
  const p = finish(ir, imported.values, loss, loss, train, toNhwc(dataset.test), description, spec, dataset.source);
  return { ...p, source: spec };
}

/**
 * Why the loss at the problem's parameters is `lossValue` (not finite), as the refusal jobs give:
 * the model's outputs are not finite (the forward pass overflows float32), or they are and the
 * loss overflows on them. Runs one forward pass, a chunk at a time.
 */
export function nonFiniteLossMessage(problem: Problem, lossValue: number): string {
  const head = `the loss at these parameters is ${lossValue}`;
  const tail = 'nothing to analyse (check the weights and the data scale)';
  const bad = problem.theta.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    const p = problem.ir.params.find((q) => bad >= q.offset && bad < q.offset + q.size);
    return `${head}: the weights contain ${problem.theta[bad]}${p ? ` (layer '${p.layer}')` : ''}; ${tail}`;
  }
  let maxWeight = 0;
  for (const v of problem.theta) maxWeight = Math.max(maxWeight, Math.abs(v));
  const out = checkOutputs(problem.ir, problem.theta, problem.loss, problem.train, problem.source?.chunkSize);
  if (!out.finite) {
    return `${head}: the model's outputs are not finite (NaN or Infinity: the forward pass overflows float32; the largest weight is ${maxWeight.toExponential(1)}); ${tail}`;
  }
  const what = typeof problem.loss === 'function' ? USER_LOSS : problem.lossName;
  return `${head}: the model's outputs are finite (up to ${out.maxAbs.toExponential(1)} in magnitude) but ${what} is not on them (float32 overflow); ${tail}`;
}

/**
 * A problem from parts already in memory (a lowered model and validated data): what tests and
 * programmatic users build on. `values` are per-parameter arrays in `ir.params` order.
 */
export function problemFrom(
  ir: ModelIR,
  values: Float32Array[],
  loss: LossName,
  train: Split,
  opts: { test?: Split; description?: string; spec?: ProblemSpec } = {},
): Problem {
  return finish(ir, values, loss, loss, train, opts.test, opts.description ?? ir.name, opts.spec ?? {});
}

function finish(
  ir: ModelIR,
  values: Float32Array[],
  loss: LossSpec,
  lossName: string,
  train: Split,
  test: Split | undefined,
  description: string,
  spec: ProblemSpec,
  dataSource = spec.experiment ?? '',
): Problem {
  const maxParams = spec.maxParams ?? MAX_PARAMS;
  refuseOver("the model's parameter count", ir.numParams, maxParams, { file: spec.model ?? spec.experiment, hint: paramLimitHint(ir.numParams, maxParams) });
  const lossForCheck = typeof loss === 'function' ? 'custom' : loss;
  train = validateSplit(train, ir, lossForCheck, dataSource, 'training');
  if (test) test = validateSplit(test, ir, lossForCheck, dataSource, 'test');
  const theta = new Float32Array(ir.numParams);
  values.forEach((v, i) => theta.set(v, ir.params[i].offset));
  return {
    ir,
    theta,
    loss,
    lossName,
    train,
    test,
    description,
    modelFile: spec.model,
    objective: () => new Objective(ir, theta, loss, train, { chunkSize: spec.chunkSize }),
    evaluator: async (opts = {}) => {
      const threads = opts.threads ?? spec.threads;
      const split = opts.split === 'test' ? test : train;
      if (!split) throw new InputError('no test data: give xTest and yTest in the data file or the experiment module', spec.data ?? spec.experiment);
      // ONNX Runtime first (named losses, every op emitted), unless a TF.js backend was asked for.
      const be = backendInfo();
      if (be.ortRequired && typeof loss !== 'string') {
        throw new InputError('the onnxruntime engine was asked for, but it runs the named losses only (this loss is a function): use a TF.js backend (tensorflow, wasm or cpu)', spec.experiment);
      }
      if (typeof loss === 'string' && !be.requested) {
        // Heavy models: a share of the samples per core, each on one ONNX Runtime thread (shard/parallel.ts).
        const worker = shardWorkerPath();
        const cores = threads ?? os.availableParallelism?.() ?? os.cpus().length;
        if (worker && cores > 1 && forwardMultiplyAdds(ir) * split.xShape[0] >= ORT_SHARD_MULTIPLY_ADDS && split.xShape[0] >= 2 * cores && requestedProviders().every((p) => p === 'cpu')) {
          const sharded = await ParallelEvaluator.create(ir, theta, loss, split, backendInfo().name, worker, { threads: cores, chunkSize: spec.chunkSize, engine: 'onnxruntime' }).catch(() => undefined);
          if (sharded) return sharded;
        }
        const ort = await createOrtEvaluator(ir, theta, loss, split, { threads, chunkSize: spec.chunkSize });
        // Light models: planes (surfaces, slices) split by points over worker threads (shard/points.ts).
        if (ort.evaluator && worker && cores > 1 && ort.evaluator.providers.every((p) => p === 'cpu')) {
          return new PointParallelEvaluator(ort.evaluator, { workerPath: worker, count: Math.min(cores, 4), loss, data: split, backend: backendInfo().name, chunkSize: spec.chunkSize });
        }
        if (ort.evaluator) return ort.evaluator;
        if (be.ortRequired) throw new InputError(`the onnxruntime engine was asked for, but it cannot run this model: ${ort.reason}; use a TF.js backend (tensorflow, wasm or cpu)`, spec.model ?? spec.experiment);
      }
      const backend = backendInfo().name;
      const worker = shardWorkerPath();
      const useThreads =
        threads !== 1 && typeof loss === 'string' && backend !== 'tensorflow' && worker !== undefined && split.xShape[0] >= MIN_PARALLEL_SAMPLES;
      if (useThreads) {
        return ParallelEvaluator.create(ir, theta, loss, split, backend, worker, { threads, chunkSize: spec.chunkSize });
      }
      return new LocalEvaluator(new Objective(ir, theta, loss, split, { chunkSize: spec.chunkSize }));
    },
  };
}

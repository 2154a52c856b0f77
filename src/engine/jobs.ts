/**
 * The jobs Basin runs, shared by the CLI (in-process) and the compute worker (forked): each takes
 * a problem and options, reports progress in Hessian-vector products, honours an AbortSignal, and
 * returns a plain result (`src/shared/results.ts`) that says which backend, seed and product
 * method ran.
 */
import type { CurvatureJobOptions, DensityJobOptions, EigsJobOptions, TraceJobOptions } from '../shared/jobs';
import type { CurvatureName, DensityResult, EigsResult, HvpInfo, InfoResult, Progress, RunMeta, TraceResult } from '../shared/results';
import { engineInfo } from './backend';
import { lanczos, lanczosSteps, powerIteration, hutchinson, hutchpp, slq, spectralDensity } from './linalg';
import type { LinearOperator } from './linalg/operator';
import { BlockOperator, HVP_CHECK_SEED_OFFSET, KnownProduct, type KnownProducts } from './hvp/operators';
import { CURVATURES, CURVATURE_TITLES, gradientOverlap, gradientStart, selectCurvature } from './curvature';
import type { ModelIR } from './model/ir';
import { LocalEvaluator, type Evaluator } from './evaluator';
import { nonFiniteLossMessage, type Problem } from './problem';
import { BasinError } from './errors';
import { runMeta } from './meta';
import { Rng } from './rng';
import { checkCount, checkPositive, MAX_DENSITY_GRID, MAX_KRYLOV_STEPS, MAX_PRODUCTS, MAX_VECTOR_BYTES, refuseOver } from './limits';

export interface JobContext {
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
}

/**
 * The options of the curvature jobs: their types in the job registry (src/shared/jobs), where each
 * field, its CLI flag and its help are written once. `curvature` selects the curvature analysed
 * (default the Hessian; see src/engine/curvature); `layer` restricts it to one layer's block.
 */
export type CommonOptions = CurvatureJobOptions;
/** `stopOn`: what `tol` bounds (Lanczos): the eigenvalue error bound (default) or the Ritz residual. */
export type EigsOptions = EigsJobOptions;
export type TraceOptions = TraceJobOptions;
export type DensityOptions = DensityJobOptions;

interface Prepared {
  obj: Evaluator;
  sel: { op: { matvecs: number }; known?: KnownProducts };
  op: LinearOperator;
  curvature: CurvatureName;
  /** A TF.js evaluator made for curvature products the job's evaluator lacks. */
  fallback?: Evaluator;
  meta: Omit<RunMeta, 'ms'>;
  hvp: HvpInfo;
  t0: number;
  /** The vector `prepare`'s `start` made (the check ran on it). */
  start?: Float64Array;
}

/** Offset and size of one layer's parameters in the flat vector. */
export function layerBlock(ir: ModelIR, layer: string): { offset: number; size: number } {
  const ps = ir.params.filter((p) => p.layer === layer);
  if (ps.length === 0) {
    const names = [...new Set(ir.params.map((p) => p.layer))];
    throw new BasinError(`no layer '${layer}' with parameters (layers: ${names.join(', ')})`);
  }
  return { offset: ps[0].offset, size: ps.reduce((a, p) => a + p.size, 0) };
}

/** The dimension of the operator a job analyses: every parameter, or one layer's block. */
function operatorDim(problem: Problem, layer?: string): number {
  return layer ? layerBlock(problem.ir, layer).size : problem.ir.numParams;
}

function checkChoice<T extends string>(what: string, value: T | undefined, values: readonly T[]): void {
  if (value !== undefined && !values.includes(value)) throw new BasinError(`${what} must be one of ${values.join(', ')} (got ${String(value)})`);
}

function checkCommon(opts: CommonOptions): void {
  if (opts.seed !== undefined && !(Number.isInteger(opts.seed) && opts.seed >= 0)) throw new BasinError(`the seed must be a whole number >= 0 (got ${opts.seed})`);
  checkChoice('the Hessian-vector product', opts.hvp, ['auto', 'exact', 'fd']);
  checkChoice('the curvature', opts.curvature, CURVATURES);
  if (opts.hvp === 'fd' && opts.curvature !== undefined && opts.curvature !== 'hessian') {
    throw new BasinError(`finite differences compute Hessian products only; the ${CURVATURE_TITLES[opts.curvature]} is computed exactly (choose auto or exact)`);
  }
}

/** Refuses float64 vectors of length `dim` that would pass MAX_VECTOR_BYTES. */
function checkVectors(what: string, vectors: number, dim: number, layer: string | undefined, fewer: string): void {
  refuseOver(what, vectors * dim * 8, MAX_VECTOR_BYTES, {
    unit: 'bytes',
    hint: `${vectors.toLocaleString('en-US')} float64 vectors of ${dim.toLocaleString('en-US')} parameters; ${layer ? '' : 'analyse one layer, or '}${fewer}`,
  });
}

/**
 * Checks eigenvalue options against the limits and the operator's dimension (every parameter, or
 * the layer's block) before any product: k and the iteration limit are whole numbers within
 * MAX_KRYLOV_STEPS and k is at most the dimension; the tolerance is finite and positive; the
 * Lanczos basis (or power iteration's products) fits the limits.
 */
export function checkEigsOptions(opts: EigsOptions, dim: number): void {
  checkCommon(opts);
  checkCount('the number of eigenvalues asked for', opts.k, 1, MAX_KRYLOV_STEPS);
  checkCount('the iteration limit', opts.maxIter, 1, MAX_KRYLOV_STEPS);
  checkPositive('the tolerance', opts.tol);
  checkChoice('which', opts.which, ['top', 'bottom']);
  checkChoice('the method', opts.method, ['lanczos', 'power']);
  checkChoice('the stopping rule', opts.stopOn, ['bound', 'residual']);
  const k = opts.k ?? 1;
  refuseOver('the number of eigenvalues asked for', k, dim, { hint: `the ${CURVATURE_TITLES[opts.curvature ?? 'hessian']}${opts.layer ? ` block of layer '${opts.layer}'` : ''} has dimension ${dim.toLocaleString('en-US')}` });
  if (opts.method === 'power') {
    if ((opts.which ?? 'top') !== 'top') throw new BasinError('power iteration finds the top eigenvalues only; use the Lanczos method for the bottom ones');
    refuseOver('the number of Hessian-vector products planned (eigenvalues x iterations)', k * (opts.maxIter ?? 100), MAX_PRODUCTS);
    checkVectors('the memory for the eigenvectors', k + 3, dim, opts.layer, 'ask for fewer eigenvalues');
  } else {
    checkVectors('the memory for the Lanczos basis', lanczosSteps(dim, k, opts.maxIter) + k, dim, opts.layer, 'allow fewer iterations');
  }
}

/** Checks trace options before any product: the product budget and, for Hutch++, its sketch. */
export function checkTraceOptions(opts: TraceOptions, dim: number): void {
  checkCommon(opts);
  checkChoice('the method', opts.method, ['hutchpp', 'hutchinson']);
  checkCount('the number of Hessian-vector products', opts.matvecs, 1, MAX_PRODUCTS);
  const m = opts.matvecs ?? 60;
  if ((opts.method ?? 'hutchpp') === 'hutchpp') checkVectors('the memory for the Hutch++ sketch', 2 * Math.min(Math.floor(m / 3), dim), dim, opts.layer, "use fewer products or Hutchinson's method");
}

/** Checks density options before any product: SLQ steps and runs, their products, the grid, the basis. */
export function checkDensityOptions(opts: DensityOptions, dim: number): void {
  checkCommon(opts);
  checkCount('the number of SLQ steps', opts.steps, 1, MAX_KRYLOV_STEPS);
  checkCount('the number of SLQ runs', opts.runs, 1, MAX_PRODUCTS);
  checkCount('the number of density grid points', opts.gridPoints, 2, MAX_DENSITY_GRID);
  const steps = opts.steps ?? 90;
  refuseOver('the number of Hessian-vector products planned (SLQ steps x runs)', steps * (opts.runs ?? 1), MAX_PRODUCTS);
  checkVectors('the memory for the Lanczos basis', Math.min(steps, dim), dim, opts.layer, 'use fewer SLQ steps');
}

/**
 * The job's evaluator, its loss (refused when not finite) and the selected curvature operator.
 * `start`, when given, computes a vector from the evaluator (after the loss test) that the Hessian
 * check runs on, so that a Lanczos run from it reuses the check's products.
 */
async function prepare(problem: Problem, opts: CommonOptions, ctx: JobContext, start?: (obj: Evaluator) => Promise<Float64Array>): Promise<Prepared> {
  const t0 = performance.now();
  const obj = await problem.evaluator();
  try {
    const lossValue = await obj.loss();
    if (!Number.isFinite(lossValue)) throw new BasinError(nonFiniteLossMessage(problem, lossValue), problem.description);
    const curvature = opts.curvature ?? 'hessian';
    const startVector = start ? await start(obj) : undefined;
    ctx.onProgress?.({ done: 0, total: 1, message: curvature === 'hessian' ? 'checking Hessian-vector products' : `preparing ${CURVATURE_TITLES[curvature]} products` });
    const sel = await selectCurvature(obj, curvature, {
      hvp: opts.hvp,
      seed: opts.seed ?? 0,
      loss: problem.loss,
      fallback: () => new LocalEvaluator(problem.objective()),
      start: startVector,
    });
    let op: LinearOperator = sel.op;
    if (opts.layer) {
      const b = layerBlock(problem.ir, opts.layer);
      op = new BlockOperator(sel.op, b.offset, b.size);
    }
    return { obj, sel, op, curvature, fallback: sel.fallback, t0, meta: runMeta(problem, obj, opts.seed ?? 0, lossValue), hvp: sel.hvp, start: startVector };
  } catch (e) {
    obj.dispose();
    throw e;
  }
}

function release(p: Prepared): void {
  p.fallback?.dispose();
  p.obj.dispose();
}

function progress(ctx: JobContext, label: string) {
  return (done: number, total: number) => ctx.onProgress?.({ done, total, message: `${label}: ${done}/${total} Hessian-vector products` });
}

export async function runEigs(problem: Problem, opts: EigsOptions, ctx: JobContext = {}): Promise<EigsResult> {
  checkEigsOptions(opts, operatorDim(problem, opts.layer));
  const which = opts.which ?? 'top';
  const method = opts.method ?? 'lanczos';
  // The gradient: its overlap with the eigenvectors is reported, and for the top eigenvalues by
  // Lanczos it also starts the run (with a random half: gradientStart), which saves a quarter of
  // the products; the Hessian check runs on that start, so Lanczos reuses its products.
  let grad: Float64Array | undefined;
  const start =
    method === 'lanczos' && which === 'top'
      ? async (obj: Evaluator): Promise<Float64Array> => {
          grad = (await obj.gradient()).grad;
          return gradientStart(grad, new Rng((opts.seed ?? 0) + HVP_CHECK_SEED_OFFSET).normalVector(obj.dim));
        }
      : undefined;
  const p = await prepare(problem, opts, ctx, start);
  try {
    const k = opts.k ?? 1;
    const rng = new Rng(opts.seed ?? 0);
    const block = opts.layer ? layerBlock(problem.ir, opts.layer) : undefined;
    let eigenvalues: number[];
    let errorBounds: number[];
    let residuals: number[];
    let converged: boolean;
    let vectors: Float64Array[];
    let productNoise: number;
    if (method === 'power') {
      eigenvalues = [];
      errorBounds = [];
      residuals = [];
      converged = true;
      const found: Float64Array[] = [];
      const noises: number[] = [];
      for (let i = 0; i < k; i++) {
        // The same default tolerance as Lanczos (1e-6), not PyHessian's 1e-3.
        const r = await powerIteration(p.op, { rng, against: found, signal: ctx.signal, maxIter: opts.maxIter, tol: opts.tol ?? 1e-6, onProgress: progress(ctx, 'power iteration') });
        eigenvalues.push(r.eigenvalue);
        found.push(r.eigenvector);
        // Power iteration has no rigorous bound; report the residual of the returned vector.
        const av = await p.op.matvec(r.eigenvector);
        let res = 0;
        let nv = 0;
        for (let j = 0; j < av.length; j++) {
          res += (av[j] - r.eigenvalue * r.eigenvector[j]) ** 2;
          nv += r.eigenvector[j] ** 2;
        }
        // Folds in the products' float32 noise, as Lanczos does: relative noise x |A v| / |v|.
        const noise = (p.op.relativeNoise ?? 0) * Math.sqrt(av.reduce((a, x) => a + x * x, 0) / nv);
        noises.push(noise);
        residuals.push(Math.sqrt(res / nv) + noise);
        errorBounds.push(Math.sqrt(res / nv) + noise);
        converged &&= r.converged;
      }
      vectors = found;
      productNoise = noises.reduce((a, x) => Math.max(a, x), 0);
    } else {
      // Lanczos starts from the vector the check ran on (the gradient start for the top eigenvalues,
      // else random): the check's products are its first (one or two fewer).
      const known = opts.layer ? undefined : p.sel.known;
      const startOf = (v: Float64Array | undefined): Float64Array | undefined => {
        const b = v && block ? v.subarray(block.offset, block.offset + block.size) : v;
        return b && b.some((x) => x !== 0) ? b : undefined;
      };
      const r = await lanczos(known ? new KnownProduct(p.op, known) : p.op, {
        k,
        which,
        maxIter: opts.maxIter,
        tol: opts.tol,
        stopOn: opts.stopOn ?? 'bound',
        rng,
        v0: known?.[0].v ?? startOf(p.start),
        signal: ctx.signal,
        onProgress: progress(ctx, 'Lanczos'),
      });
      // Report descending whichever end was asked for.
      const order = eigOrder(r.eigenvalues);
      eigenvalues = order.map((i) => r.eigenvalues[i]);
      errorBounds = order.map((i) => r.errorBounds[i]);
      residuals = order.map((i) => r.residuals[i]);
      vectors = order.map((i) => r.eigenvectors[i]);
      productNoise = r.noise;
      converged = r.converged;
    }
    // The gradient's overlap with the eigenvectors (of the layer's block when one layer was analysed).
    const g = grad ?? (await p.obj.gradient()).grad;
    const overlap = gradientOverlap(block ? g.subarray(block.offset, block.offset + block.size) : g, vectors);
    const hvps = (p.sel.op.matvecs as number) ?? 0;
    return {
      kind: 'eigs',
      ...p.meta,
      ...p.hvp,
      curvature: p.curvature,
      which,
      method,
      eigenvalues,
      errorBounds,
      residuals,
      productNoise,
      gradientOverlap: overlap,
      hvps,
      converged,
      layer: opts.layer,
      condition: conditionOf(eigenvalues, which),
      ms: performance.now() - p.t0,
    };
  } finally {
    release(p);
  }
}

function eigOrder(values: number[]): number[] {
  return values.map((_, i) => i).sort((a, b) => values[b] - values[a]);
}

/**
 * The condition number over the computed part of the spectrum, always with its definition:
 * lambda_1 / lambda_k over the k computed top eigenvalues (when all positive). Never an unstated
 * "condition number of the Hessian", which Krylov methods cannot see.
 */
function conditionOf(eigs: number[], which: 'top' | 'bottom'): EigsResult['condition'] {
  if (which !== 'top' || eigs.length < 2) return undefined;
  const last = eigs[eigs.length - 1];
  if (!(last > 0)) return { value: Infinity, definition: `lambda_1 / lambda_${eigs.length} (lambda_${eigs.length} <= 0)` };
  return { value: eigs[0] / last, definition: `lambda_1 / lambda_${eigs.length} over the top ${eigs.length} eigenvalues` };
}

export async function runTrace(problem: Problem, opts: TraceOptions, ctx: JobContext = {}): Promise<TraceResult> {
  checkTraceOptions(opts, operatorDim(problem, opts.layer));
  const p = await prepare(problem, opts, ctx);
  try {
    const method = opts.method ?? 'hutchpp';
    const m = opts.matvecs ?? 60;
    const rng = new Rng(opts.seed ?? 0);
    const common = { matvecs: m, rng, signal: ctx.signal, onProgress: progress(ctx, method === 'hutchpp' ? 'Hutch++' : 'Hutchinson') };
    const r = method === 'hutchpp' ? await hutchpp(p.op, common) : await hutchinson(p.op, common);
    return {
      kind: 'trace',
      ...p.meta,
      ...p.hvp,
      curvature: p.curvature,
      method,
      trace: r.trace,
      stderr: r.stderr,
      hvps: r.matvecs,
      layer: opts.layer,
      ms: performance.now() - p.t0,
    };
  } finally {
    release(p);
  }
}

export async function runDensity(problem: Problem, opts: DensityOptions, ctx: JobContext = {}): Promise<DensityResult> {
  checkDensityOptions(opts, operatorDim(problem, opts.layer));
  const p = await prepare(problem, opts, ctx);
  try {
    const steps = opts.steps ?? 90;
    const runs = opts.runs ?? 1;
    const r = await slq(p.op, { steps, runs, rng: new Rng(opts.seed ?? 0), signal: ctx.signal, onProgress: progress(ctx, 'SLQ') });
    const d = spectralDensity(r.nodes, r.weights, { gridPoints: opts.gridPoints ?? 10000 });
    return {
      kind: 'density',
      ...p.meta,
      ...p.hvp,
      curvature: p.curvature,
      layer: opts.layer,
      steps,
      runs,
      grid: d.grid,
      density: d.density,
      nodes: r.nodes,
      weights: r.weights,
      hvps: r.matvecs,
      sigma2: d.sigma2,
      ms: performance.now() - p.t0,
    };
  } finally {
    release(p);
  }
}

/**
 * The model, its loss and accuracy on the data, and which Hessian-vector products the engine that
 * jobs use (the problem's evaluator: ONNX Runtime or TF.js) can compute for it.
 */
export async function runInfo(problem: Problem): Promise<InfoResult> {
  const ir = problem.ir;
  const ev = await problem.evaluator();
  try {
    const be = engineInfo(ev);
    const twice = ev.secondOrder();
    // Accuracy means something for the built-in classification losses only (not for MSE, nor a custom loss).
    const classification = problem.lossName === 'categoricalCrossentropy' || problem.lossName === 'binaryCrossentropy' || problem.lossName === 'crossEntropyFromLogits';
    return {
      kind: 'info',
      model: problem.description,
      name: ir.name,
      backend: be.name,
      backendDetail: ev.threads > 1 ? `${be.detail}, ${ev.threads} threads` : be.detail,
      ...(be.provider ? { provider: be.provider } : {}),
      params: ir.numParams,
      layers: ir.nodes.map((n) => {
        const ps = ir.params.filter((p) => p.layer === n.name);
        return { name: n.name, kind: n.op.kind, outShape: n.outShape, params: ps.reduce((a, p) => a + p.size, 0), detail: describeOp(n.op) };
      }),
      samples: ev.numSamples,
      lossName: problem.lossName,
      lossValue: await ev.loss(),
      accuracy: classification ? await ev.accuracy() : undefined,
      hvpMethods: twice.ok ? 'exact (forward-over-reverse) and finite differences' : `finite differences only: ${twice.reason}`,
    };
  } finally {
    ev.dispose();
  }
}

function describeOp(op: ModelIR['nodes'][number]['op']): string {
  switch (op.kind) {
    case 'dense':
      return `${op.units} units, ${op.activation}${op.bias === undefined ? ', no bias' : ''}`;
    case 'conv2d':
      return `${op.filters} filters ${op.kernelSize.join('x')}, stride ${op.strides.join('x')}, ${op.padding}, ${op.activation}`;
    case 'maxPool2d':
    case 'avgPool2d':
      return `pool ${op.poolSize.join('x')}, stride ${op.strides.join('x')}, ${op.padding}`;
    case 'activation':
      return op.activation;
    case 'leakyRelu':
      return `alpha ${op.alpha}`;
    case 'dropout':
      return `rate ${op.rate} (identity at inference)`;
    case 'batchNorm':
      return `epsilon ${op.epsilon} (inference statistics)`;
    default:
      return '';
  }
}

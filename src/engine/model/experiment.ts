/**
 * Experiment modules: a `.js` or `.ts` file whose export (default or named) provides
 *
 *   model(tf)  -> tf.LayersModel           the model, built with the engine's own TF.js instance
 *   data(tf)   -> { x, y, xTest?, yTest? }  tensors or nested arrays
 *   loss       -> 'meanSquaredError' | 'categoricalCrossentropy' | 'binaryCrossentropy'
 *                 | (yTrue, yPred) => scalar tensor (a mean over samples)
 *
 * and, optionally, fields later features read (training settings). TypeScript is compiled on the
 * fly with esbuild; relative imports are bundled; packages resolve from the module's folder.
 * The module runs with full Node privileges: only load code you trust.
 *
 * A module is the user's code, so what goes wrong in it is the user's to fix: every call into it
 * (loading, model, data, loss) turns what it throws into a `BasinError` that names the module,
 * repeats the error's own message and gives the line in the user's source (the compiled code's
 * stack frame mapped back through esbuild's source map), and what it returns is checked before
 * Basin relies on it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as util from 'node:util';
import { createRequire, SourceMap, type SourceMapPayload } from 'node:module';
import { tf, tfl } from '../tf';
import type { Tensor } from '../tf';
import { BasinError, InputError, UserCodeError } from '../errors';
import { flattenNested, splitFromArrays, type Split } from '../data';
import { LOSS_NAMES, type LossName } from './ir';
import { allFinite, checkUserLossValue, USER_LOSS, type UserLoss } from './losses';

export type TfApi = typeof tf & typeof tfl;

export interface ExperimentModule {
  model(tf: TfApi): tfl.LayersModel | Promise<tfl.LayersModel>;
  data(tf: TfApi): ExperimentData | Promise<ExperimentData>;
  loss?: LossName | UserLoss;
  [key: string]: unknown;
}

type ArrayData = tf.Tensor | number[] | number[][] | number[][][] | number[][][][];
export interface ExperimentData {
  x: ArrayData;
  y: ArrayData;
  xTest?: ArrayData;
  yTest?: ArrayData;
}

/** The TF.js API handed to experiment modules: core ops plus the layers API. */
export function tfApi(): TfApi {
  return { ...tf, ...tfl } as TfApi;
}

/** Stack frames kept while user code runs, so its own frame is not cut off below TF.js's. */
const USER_STACK_FRAMES = 100;

/**
 * The compiled code of one experiment module: runs calls into it and says where in the user's
 * source an error came from.
 */
export class UserCode {
  private readonly dir: string;

  constructor(
    /** The module as the user named it (messages start with it). */
    readonly file: string,
    /** The `sourceURL` the compiled code runs under: its stack frames carry it. */
    private readonly url: string,
    private readonly map: SourceMap | undefined,
    /** Lines the evaluation wrapper adds above the compiled code. */
    private readonly lineOffset: number,
  ) {
    this.dir = path.dirname(path.resolve(file));
  }

  /**
   * Where an error came from in the user's source: "line 7" in the module itself, "helpers.ts
   * line 3" in a file it imports; the innermost frame of the module's code that maps to a source
   * line. Undefined when no frame does (an error thrown by a value, not an Error).
   */
  where(e: unknown): string | undefined {
    const stack = typeof e === 'object' && e !== null ? (e as { stack?: unknown }).stack : undefined;
    if (typeof stack !== 'string' || !this.map) return undefined;
    const frame = new RegExp(`${escapeRegExp(this.url)}:(\\d+):(\\d+)`, 'g');
    for (const m of stack.matchAll(frame)) {
      const line = Number(m[1]) - 1 - this.lineOffset;
      const column = Number(m[2]) - 1;
      if (line < 0) continue;
      const entry = this.map.findEntry(line, column) as { originalSource?: string; originalLine?: number };
      if (entry.originalSource === undefined || entry.originalLine === undefined) continue;
      const source = path.resolve(this.dir, entry.originalSource.replace(/^file:\/\//, ''));
      const same = source === path.resolve(this.file);
      return `${same ? '' : `${path.relative(this.dir, source)} `}line ${entry.originalLine + 1}`;
    }
    return undefined;
  }

  /** What user code threw, in words: "its message (line 7)". */
  describe(e: unknown): string {
    const where = this.where(e);
    return `${thrownText(e)}${where ? ` (${where})` : ''}`;
  }

  /** The `BasinError` for something user code threw: `<what> threw: <its message> (line N)`. */
  error(what: string, e: unknown): BasinError {
    if (e instanceof BasinError) return e;
    return new UserCodeError(`${what} threw: ${this.describe(e)}`, this.file);
  }

  /** Runs a synchronous call into the module; what it throws becomes a `BasinError`. */
  call<T>(what: string, fn: () => T): T {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = Math.max(limit, USER_STACK_FRAMES);
    try {
      return fn();
    } catch (e) {
      throw this.error(what, e);
    } finally {
      Error.stackTraceLimit = limit;
    }
  }

  /** Runs a call into the module that may return a promise; a throw or a rejection becomes a `BasinError`. */
  async callAsync<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = Math.max(limit, USER_STACK_FRAMES);
    try {
      return await fn();
    } catch (e) {
      throw this.error(what, e);
    } finally {
      Error.stackTraceLimit = limit;
    }
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A thrown value as text: "message", "TypeError: message", or the value itself. */
function thrownText(e: unknown): string {
  if (typeof e === 'object' && e !== null && typeof (e as Error).message === 'string') {
    const { name, message } = e as Error;
    return name && name !== 'Error' ? `${name}: ${message}` : message;
  }
  if (typeof e === 'string') return e;
  return util.inspect(e, { depth: 2, breakLength: Infinity }).slice(0, 300);
}

/**
 * Lines `new Function` puts above the body ("function anonymous(args\n) {\n"): measured once, so
 * the stack frames of the compiled code can be mapped whatever V8 does.
 */
let functionHeaderLines: number | undefined;
function newFunctionOffset(): number {
  if (functionHeaderLines === undefined) {
    const url = 'basin-probe-line-offset';
    const probe = new Function('a', `return new Error().stack;\n//# sourceURL=${url}`) as (a: unknown) => string;
    const m = new RegExp(`${url}:(\\d+):`).exec(probe(0));
    functionHeaderLines = m ? Number(m[1]) - 1 : 2;
  }
  return functionHeaderLines;
}

/** Compiles and loads an experiment module; its exports, checked. */
export function loadExperiment(file: string): ExperimentModule {
  return compileExperiment(file).module;
}

/** Compiles and loads an experiment module: its exports and the code, to call into it. */
export function compileExperiment(file: string): { module: ExperimentModule; code: UserCode } {
  const abs = path.resolve(file);
  if (!fs.existsSync(abs)) throw new InputError('experiment module not found', file);
  let code: string;
  let map: SourceMap | undefined;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const esbuild = require('esbuild') as typeof import('esbuild');
    const out = esbuild.buildSync({
      entryPoints: [abs],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      write: false,
      packages: 'external',
      logLevel: 'silent',
      target: 'node20',
      // Not written anywhere (write: false); it names where the source map's paths are relative to.
      outfile: path.join(path.dirname(abs), `${path.basename(abs)}.basin-compiled.js`),
      sourcemap: 'external',
      sourcesContent: false,
    });
    const js = out.outputFiles.find((f) => f.path.endsWith('.js'));
    const mapFile = out.outputFiles.find((f) => f.path.endsWith('.map'));
    if (!js) throw new Error('esbuild produced no code');
    // The map is read here, not by Node: drop the comment that points at a file never written.
    code = js.text.replace(/\n\/\/# sourceMappingURL=\S*\s*$/, '\n');
    if (mapFile) map = new SourceMap(JSON.parse(mapFile.text) as SourceMapPayload);
  } catch (e) {
    const errors = (e as { errors?: { text: string; location?: { line: number; file: string } | null }[] }).errors;
    const first = errors?.[0];
    if (!first) throw new UserCodeError(`cannot compile (${(e as Error).message})`, file);
    const loc = first.location;
    const other = loc && path.resolve(loc.file) !== abs ? `${path.relative(path.dirname(abs), path.resolve(loc.file))} ` : '';
    throw new UserCodeError(`does not compile: ${first.text}${loc ? ` (${other}line ${loc.line})` : ''}`, file);
  }
  // Frames of the compiled code name the module (not "<anonymous>"), with a prefix that no real
  // file has, so they are told apart from frames of Basin's and TF.js's code.
  const url = `basin-experiment:${abs}`;
  const user = new UserCode(file, url, map, newFunctionOffset());
  const mod = { exports: {} as Record<string, unknown> };
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = Math.max(limit, USER_STACK_FRAMES);
  try {
    const fn = new Function('module', 'exports', 'require', '__filename', '__dirname', `${code}\n//# sourceURL=${url}`);
    fn(mod, mod.exports, createRequire(abs), abs, path.dirname(abs));
  } catch (e) {
    throw new UserCodeError(`failed while loading: ${user.describe(e)}`, file);
  } finally {
    Error.stackTraceLimit = limit;
  }
  const exp = mod.exports;
  const candidate = (exp.default && typeof exp.default === 'object' ? exp.default : exp) as Partial<ExperimentModule>;
  if (typeof candidate.model !== 'function') throw new UserCodeError('the module must export model(tf) returning a tf.LayersModel', file);
  if (typeof candidate.data !== 'function') throw new UserCodeError('the module must export data(tf) returning {x, y}', file);
  const loss = candidate.loss;
  if (loss !== undefined && typeof loss !== 'function' && !(LOSS_NAMES as readonly unknown[]).includes(loss)) {
    throw new UserCodeError(`loss '${String(loss)}' is not one of ${LOSS_NAMES.join(', ')} or a function (yTrue, yPred) => scalar`, file);
  }
  return { module: candidate as ExperimentModule, code: user };
}

/** A value in words, for "returned ..." messages. */
function describeValue(v: unknown): string {
  if (v === undefined) return 'undefined: is a return statement missing?';
  if (v === null) return 'null';
  if (v instanceof tf.Tensor) return `a tensor of shape [${v.shape.join(',')}]`;
  if (typeof v === 'function') return 'a function';
  if (Array.isArray(v)) return 'an array';
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}: give a tensor or nested arrays`;
  if (typeof v === 'object') {
    const cls = (v as { getClassName?: () => string }).getClassName;
    if (typeof cls === 'function') return `a ${String(cls.call(v))} layer: wrap layers in tf.sequential({ layers: [...] })`;
    const keys = Object.keys(v);
    return keys.length ? `an object with ${keys.slice(0, 6).join(', ')}` : 'an empty object';
  }
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** Whether `v` is a TF.js layers model (of this TF.js, or shaped like one). */
function isLayersModel(v: unknown): v is tfl.LayersModel {
  if (v instanceof tfl.LayersModel) return true;
  const m = v as Partial<tfl.LayersModel> | null;
  return typeof m === 'object' && m !== null && typeof m.getConfig === 'function' && Array.isArray(m.layers) && Array.isArray(m.inputs) && Array.isArray(m.outputs);
}

/** Disposes the variables registered since `before` (layers a failed model() built). */
function disposeVariablesSince(before: Set<string>): void {
  const vars = tf.engine().registeredVariables;
  for (const name of Object.keys(vars)) if (!before.has(name)) vars[name].dispose();
}

/**
 * Calls the module's model(tf): a tf.LayersModel, or a `BasinError` saying what it threw or
 * returned. It runs like tf.tidy: tensors it creates are released when it returns (the model's
 * weights are variables, which stay); when it fails, so are the variables it created.
 */
export async function experimentModel(mod: ExperimentModule, code: UserCode, api: TfApi = tfApi()): Promise<tfl.LayersModel> {
  const before = new Set(Object.keys(tf.engine().registeredVariables));
  let model: unknown;
  let ok = false;
  tf.engine().startScope();
  try {
    model = await code.callAsync('model(tf)', () => mod.model(api));
    if (!isLayersModel(model)) throw new UserCodeError(`model(tf) did not return a tf.LayersModel (it returned ${describeValue(model)})`, code.file);
    if (model.layers.length === 0) throw new UserCodeError('model(tf) returned a model with no layers', code.file);
    ok = true;
    return model;
  } finally {
    tf.engine().endScope();
    if (!ok) disposeVariablesSince(before);
  }
}

/**
 * Calls the module's data(tf) and reads what it returned into host arrays: the training split and
 * the test split when it gives xTest and yTest. It runs like tf.tidy: tensors it creates are
 * released once read, also when it fails (loading runs alone, so nothing else creates tensors
 * meanwhile, even while an async data(tf) waits). Every fault is a `BasinError` naming the field.
 */
export async function experimentData(mod: ExperimentModule, code: UserCode, api: TfApi = tfApi()): Promise<{ train: Split; test?: Split }> {
  const engine = tf.engine();
  engine.startScope();
  try {
    const data = (await code.callAsync('data(tf)', () => mod.data(api))) as unknown;
    if (typeof data !== 'object' || data === null || Array.isArray(data) || data instanceof tf.Tensor) {
      throw new UserCodeError(`data(tf) must return {x, y}; it returned ${describeValue(data)}`, code.file);
    }
    const d = data as Partial<Record<keyof ExperimentData, unknown>>;
    const missing = (['x', 'y'] as const).filter((k) => d[k] === undefined || d[k] === null);
    if (missing.length) throw new UserCodeError(`data(tf) must return {x, y}; ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} missing`, code.file);
    const read = (k: keyof ExperimentData): { values: Float32Array; shape: number[] } => toArray(d[k] as ArrayData, k, code.file);
    const train = splitFromArrays(read('x'), read('y'));
    const hasTest = d.xTest !== undefined && d.xTest !== null && d.yTest !== undefined && d.yTest !== null;
    const test = hasTest ? splitFromArrays(read('xTest'), read('yTest')) : undefined;
    return { train, test };
  } finally {
    engine.endScope();
  }
}

/**
 * Converts a tensor or a nested array that data(tf) returned to values and shape: a live,
 * numeric tensor with a sample axis, or a rectangular array of numbers.
 */
export function toArray(v: ArrayData, what: string, file: string): { values: Float32Array; shape: number[] } {
  const name = `data(tf).${what}`;
  if (v instanceof tf.Tensor) {
    if (v.isDisposed) throw new UserCodeError(`${name} is a disposed tensor: return tensors that are still alive (not disposed, nor made inside a tf.tidy that did not return them)`, file);
    if (v.dtype === 'string' || v.dtype === 'complex64') throw new UserCodeError(`${name} is a ${v.dtype} tensor; it must hold numbers`, file);
    if (v.rank === 0) throw new UserCodeError(`${name} is a scalar; it needs a first axis over samples`, file);
    return { values: Float32Array.from(v.dataSync() as ArrayLike<number>), shape: v.shape.slice() };
  }
  if (!Array.isArray(v)) throw new UserCodeError(`${name} must be a tensor or an array (it is ${describeValue(v)})`, file);
  return flattenNested(v, name, file);
}

/**
 * The module's loss function as Basin calls it: what it throws becomes a `BasinError` with the
 * line, what it returns is checked (a float32 scalar, see `checkUserLossValue`), and at the first
 * call (the starting point) a non-finite value on finite model outputs is reported as the loss's.
 */
export function experimentLoss(fn: UserLoss, code: UserCode): UserLoss {
  let first = true;
  const loss = (yTrue: Tensor, yPred: Tensor): Tensor => {
    const r = code.call(USER_LOSS, () => fn(yTrue, yPred));
    const value = checkUserLossValue(r, yTrue, yPred, code.file);
    if (first) {
      first = false;
      const v = value.dataSync()[0];
      if (!Number.isFinite(v) && allFinite(yPred)) {
        throw new UserCodeError(`${USER_LOSS} returned ${v} on finite model outputs (first call, at the starting parameters); it must return a finite mean over samples (clip probabilities before a log, or compute from logits)`, code.file);
      }
    }
    return value;
  };
  return Object.assign(loss, { file: code.file });
}

/**
 * Backend selection: the native TensorFlow backend (`@tensorflow/tfjs-node`, or `-node-gpu`) when
 * it is installed and loads, otherwise the WebAssembly backend (SIMD), otherwise TF.js's pure-JS
 * CPU backend. Every result reports which one ran.
 */
import * as path from 'node:path';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { tf } from './tf';
import { BasinError } from './errors';
import { loadOrt } from './ort/evaluator';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
/** TF.js's backends, in the order tried. */
export const TFJS_BACKENDS: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];
/**
 * What a user may ask for (the CLI's --backend, the worker's `backend`, the `basin.backend`
 * setting): the ONNX Runtime engine, or one TF.js backend (then evaluators run on TF.js). Asking
 * for nothing is `auto`: ONNX Runtime when it loads and can run the problem, else TF.js's best.
 */
export type EngineChoice = 'onnxruntime' | BackendName;
export const BACKENDS: readonly EngineChoice[] = ['onnxruntime', ...TFJS_BACKENDS];

export interface BackendInfo {
  name: BackendName;
  /** e.g. "wasm (SIMD, 1 thread)" or "tensorflow (tfjs-node-gpu)". */
  detail: string;
  /** Why a preferred backend was not used, if one was skipped. */
  fallbackReason?: string;
  /** The backend was asked for by name (then evaluators run on TF.js, not ONNX Runtime). */
  requested?: boolean;
  /** ONNX Runtime was asked for by name: a problem it cannot run is refused, not moved to TF.js. */
  ortRequired?: boolean;
}

/** What ran an evaluation: a TF.js backend, or an engine of its own (ONNX Runtime: src/engine/ort). */
export interface EngineInfo {
  name: string;
  detail: string;
  /** ONNX Runtime's execution provider ('cpu', 'cuda', ...); absent on TF.js. */
  provider?: string;
}

/** The engine an evaluator reports (its own, e.g. ONNX Runtime), else the TF.js backend's. */
export function engineInfo(ev: object): EngineInfo {
  const own = (ev as { engine?: EngineInfo }).engine;
  return own ?? backendInfo();
}

let current: BackendInfo | undefined;

/** Where the wasm binaries live: beside the bundle (dist/wasm) or in node_modules when unbundled. */
function wasmDir(): string {
  const candidates = [
    path.join(__dirname, 'wasm'),
    path.join(__dirname, '..', 'wasm'),
    path.join(__dirname, '..', '..', 'dist', 'wasm'),
    path.join(process.cwd(), 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist'),
  ];
  for (const dir of candidates) if (fs.existsSync(path.join(dir, 'tfjs-backend-wasm-simd.wasm'))) return dir + path.sep;
  throw new Error(`wasm backend: tfjs-backend-wasm-simd.wasm not found (looked in ${candidates.join(', ')})`);
}

/**
 * Loads tfjs-node into this engine. tfjs-node brings its own copy of tfjs-core; its backend and
 * kernels are registered there, so we register the same backend factory and kernel configs into
 * our instance (the kernel interface is shared across copies of the same version).
 */
function tryNative(): string {
  const req = createRequire(__filename); // resolved at run time, never bundled
  let native: { getBackend?: () => string; engine?: () => { registryFactory: Record<string, unknown> } } | undefined;
  let pkg = '';
  for (const name of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      native = req(name);
      pkg = name;
      break;
    } catch {
      /* try the next one */
    }
  }
  if (!native) throw new Error('@tensorflow/tfjs-node is not installed (an optional dependency)');
  const theirCore = req(req.resolve('@tensorflow/tfjs-core', { paths: [path.dirname(req.resolve(pkg))] })) as typeof tf;
  if (theirCore !== (tf as unknown)) {
    const factory = theirCore.findBackendFactory('tensorflow');
    if (!factory) throw new Error(`${pkg} loaded but registered no 'tensorflow' backend`);
    for (const kernel of theirCore.getKernelsForBackend('tensorflow')) tf.registerKernel(kernel);
    tf.registerBackend('tensorflow', factory, 3);
  }
  return pkg;
}

/**
 * Selects and initialises a backend. With no preference: tensorflow, then wasm, then cpu, and
 * evaluators on ONNX Runtime when it loads. 'onnxruntime' does the same but requires ONNX Runtime
 * (it must load here, and `problem.evaluator()` refuses a problem it cannot run). An explicit
 * preference that cannot load is an error (the user asked for it).
 */
export async function initBackend(preferred?: EngineChoice, opts: { threads?: number } = {}): Promise<BackendInfo> {
  if (preferred === 'onnxruntime') {
    const ort = loadOrt();
    if (typeof ort === 'string') throw new BasinError(`could not start the onnxruntime engine: ${ort}`);
    const tfjs = await initBackend(undefined, opts);
    current = { ...tfjs, requested: false, ortRequired: true };
    return current;
  }
  if (current && !preferred) {
    // A later request without a preference (the compute worker runs many jobs): auto again.
    if (current.requested || current.ortRequired) current = { ...current, requested: false, ortRequired: false };
    return current;
  }
  if (current && preferred === current.name) {
    if (!current.requested) current = { ...current, requested: true, ortRequired: false };
    return current;
  }
  const order: BackendName[] = preferred ? [preferred] : [...TFJS_BACKENDS];
  const reasons: string[] = [];
  for (const name of order) {
    try {
      let detail: string = name;
      if (name === 'tensorflow') {
        const pkg = tryNative();
        detail = `tensorflow (${pkg})`;
      } else if (name === 'wasm') {
        setWasmPaths(wasmDir());
        if (opts.threads) (await import('@tensorflow/tfjs-backend-wasm')).setThreadsCount(opts.threads);
      }
      const ok = await tf.setBackend(name);
      if (!ok) throw new Error(`backend '${name}' failed to initialise`);
      await tf.ready();
      if (name === 'wasm') detail = `wasm (${tf.env().getBool('WASM_HAS_SIMD_SUPPORT') ? 'SIMD' : 'no SIMD'})`;
      tf.enableProdMode();
      current = { name, detail, fallbackReason: reasons.length ? reasons.join('; ') : undefined, requested: preferred !== undefined };
      return current;
    } catch (e) {
      reasons.push(`${name}: ${(e as Error).message.split('\n')[0]}`);
      if (preferred) throw new BasinError(`could not start the ${name} backend: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(`no TF.js backend could start (${reasons.join('; ')})`);
}

export function backendInfo(): BackendInfo {
  if (!current) throw new Error('backend not initialised: call initBackend() first');
  return current;
}

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
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export const BACKENDS: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

export interface BackendInfo {
  name: BackendName;
  /** e.g. "wasm (SIMD, 1 thread)" or "tensorflow (tfjs-node-gpu)". */
  detail: string;
  /** Why a preferred backend was not used, if one was skipped. */
  fallbackReason?: string;
  /** The backend was asked for by name (then evaluators run on TF.js, not ONNX Runtime). */
  requested?: boolean;
}

/** What ran an evaluation: a TF.js backend, or an engine of its own (ONNX Runtime: src/engine/ort). */
export interface EngineInfo {
  name: string;
  detail: string;
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
 * Selects and initialises a backend. With no preference: tensorflow, then wasm, then cpu.
 * An explicit preference that cannot load is an error (the user asked for it).
 */
export async function initBackend(preferred?: BackendName, opts: { threads?: number } = {}): Promise<BackendInfo> {
  if (current && (!preferred || preferred === current.name)) return current;
  const order: BackendName[] = preferred ? [preferred] : ['tensorflow', 'wasm', 'cpu'];
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

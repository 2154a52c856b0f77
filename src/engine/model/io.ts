/**
 * Reads TF.js layers models from disk without tfjs-node: `model.json` plus its weight shards, read
 * with `fs` and handed to TF.js through `tf.io.fromMemory`. Every failure names the file and the
 * problem: unreadable or corrupt JSON, a missing or short shard, an unknown layer class.
 *
 * A model.json is untrusted data (the editor inspects one in any workspace), so nothing in it is
 * followed or allocated before it is checked:
 * - only regular files are opened (stat first): a FIFO, device, directory or socket is refused by
 *   name, and the model.json's size is checked before it is read;
 * - weight shards are relative paths inside the model's folder, after symbolic links are resolved:
 *   an absolute path, a `..` escape or a link out is refused before the file is opened;
 * - the manifest's shapes and dtypes are validated, and the shards' sizes (stat) must equal the
 *   bytes the manifest declares before any shard is read;
 * - every layer class must be one Basin supports, and the weight values the topology allocates
 *   (shape inference, `topology.ts`) and those the manifest declares must agree and stay within
 *   the parameter limit, before TF.js builds anything.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf, tfl } from '../tf';
import { BasinError, InputError } from '../errors';
import { MAX_JSON_BYTES, MAX_PARAMS, paramLimitHint, refuseOver } from '../limits';
import { checkTopology } from './topology';

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string };
  group?: string;
}

export interface ModelReadOptions {
  /** Weight values the model may declare (default `MAX_PARAMS`). */
  maxParams?: number;
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2, int8: 1 };
/** The dtypes TF.js dequantizes from. */
const QUANTIZED = ['uint8', 'uint16', 'float16'];

// Open flags: never block on a FIFO that slipped past the stat, never follow a final symlink
// (Windows has neither flag; there the stat checks stand alone).
const O_NONBLOCK = fs.constants.O_NONBLOCK ?? 0;
const O_NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;

/** What a non-regular file is, for messages; undefined for a regular file. */
export function notRegular(st: fs.Stats): string | undefined {
  if (st.isFile()) return undefined;
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Reads `size` bytes of the regular file `file` (already stat'ed as `st`) into `into` at `at`.
 * The open cannot block, and the descriptor must be the file that was checked, still that size.
 */
export function readChecked(file: string, st: fs.Stats, into: Uint8Array, at: number, flags: number, what: string, source: string): void {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | O_NONBLOCK | flags);
  } catch (e) {
    throw new InputError(`cannot read ${what} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, source);
  }
  try {
    const now = fs.fstatSync(fd);
    if (!now.isFile() || now.ino !== st.ino || now.dev !== st.dev || now.size !== st.size) throw new InputError(`${what} changed while it was being read`, source);
    let done = 0;
    while (done < st.size) {
      const n = fs.readSync(fd, into, at + done, st.size - done, done);
      if (n === 0) throw new InputError(`${what} changed while it was being read (it is shorter than ${st.size} bytes)`, source);
      done += n;
    }
  } catch (e) {
    if (e instanceof BasinError) throw e;
    throw new InputError(`cannot read ${what} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, source);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Reads a whole file the user named: a regular file only (a FIFO or device is refused before it is
 * opened), its size checked against `limit` before anything is allocated. `what` names it in the
 * size refusal ("the model.json size").
 */
export function readRegularFile(file: string, what: string, limit: number, hint: string): Buffer {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(code === 'ENOENT' ? 'file not found' : `cannot read the file (${code ?? (e as Error).message})`, file);
  }
  const kind = notRegular(st);
  if (kind) throw new InputError(`this is ${kind}, not a regular file`, file);
  refuseOver(what, st.size, limit, { file, unit: 'bytes', hint });
  const bytes = Buffer.alloc(st.size);
  readChecked(file, st, bytes, 0, 0, 'the file', file);
  return bytes;
}

function readJson(file: string): Record<string, unknown> {
  const bytes = readRegularFile(file, 'the model.json size', MAX_JSON_BYTES, 'a layers model.json holds the topology; its weights belong in shards');
  let text: string;
  try {
    text = bytes.toString('utf8');
  } catch (e) {
    throw new InputError(`cannot read the file (${(e as Error).message})`, file);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as Record<string, unknown>;
  } catch (e) {
    throw new InputError(`not valid JSON (${(e as Error).message})`, file);
  }
}

interface Group {
  paths: string[];
  specs: WeightSpec[];
  /** Bytes the manifest declares for the group's shards together. */
  bytes: number;
}

/** Validates the weightsManifest: string paths, names, shapes of non-negative integers, known dtypes. */
function parseManifest(manifest: unknown[], file: string): Group[] {
  return manifest.map((group: unknown) => {
    const g = group as { paths?: unknown; weights?: unknown } | null;
    if (!g || typeof g !== 'object' || !Array.isArray(g.paths) || !Array.isArray(g.weights)) throw new InputError('a weightsManifest entry lacks paths or weights', file);
    for (const p of g.paths) {
      if (typeof p !== 'string' || p === '') throw new InputError(`weight shard path ${JSON.stringify(p) ?? String(p)} is not a file name`, file);
    }
    let bytes = 0;
    const specs = g.weights.map((entry: unknown) => {
      const w = entry as Partial<WeightSpec> | null;
      if (!w || typeof w !== 'object' || typeof w.name !== 'string') throw new InputError(`a weightsManifest weight has no name (${JSON.stringify(entry)?.slice(0, 80)})`, file);
      const shape: unknown = w.shape ?? [];
      if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
        throw new InputError(`weight '${w.name}' has shape ${JSON.stringify(shape)?.slice(0, 80)}; a shape is a list of non-negative integers`, file);
      }
      if (typeof w.dtype !== 'string' || BYTES[w.dtype] === undefined) throw new InputError(`weight '${w.name}' has unsupported dtype '${String(w.dtype)}'`, file);
      let per = BYTES[w.dtype];
      if (w.quantization != null) {
        const q = w.quantization.dtype;
        if (typeof q !== 'string' || !QUANTIZED.includes(q)) throw new InputError(`weight '${w.name}' has unsupported quantization dtype '${String(q)}' (${QUANTIZED.join(', ')})`, file);
        per = BYTES[q];
      }
      bytes += per * (shape as number[]).reduce((a, b) => a * b, 1);
      return { ...w, shape } as WeightSpec;
    });
    return { paths: g.paths as string[], specs, bytes };
  });
}

/** Whether `p` is `root` or inside it (both absolute, resolved the same way). */
export function inside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!path.isAbsolute(rel) && rel.split(path.sep)[0] !== '..');
}

interface Shard {
  /** The path as the manifest gives it. */
  name: string;
  /** The resolved file, inside the model's folder. */
  real: string;
  st: fs.Stats;
}

/**
 * Resolves a shard path inside `dir` (the model's folder) and stats it, opening nothing: absolute
 * paths, `..` escapes and symbolic links out of the folder are refused, and so is anything but a
 * regular file.
 */
function resolveShard(dir: string, realDir: string, p: string, file: string): Shard {
  if (p.includes('\0')) throw new InputError(`weight shard path ${JSON.stringify(p)} contains a NUL character`, file);
  if (path.isAbsolute(p) || path.posix.isAbsolute(p) || path.win32.isAbsolute(p)) {
    throw new InputError(`weight shard path '${p}' is absolute; shard paths are relative to the model's folder (${dir})`, file);
  }
  const lexical = path.resolve(dir, p);
  if (!inside(path.resolve(dir), lexical)) throw new InputError(`weight shard path '${p}' leads outside the model's folder (${dir})`, file);
  let real: string;
  try {
    real = fs.realpathSync(lexical);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(code === 'ENOENT' ? `weight shard '${p}' is missing (expected at ${path.join(dir, p)})` : `cannot read weight shard '${p}' (${code})`, file);
  }
  if (!inside(realDir, real)) {
    throw new InputError(`weight shard '${p}' is a symbolic link to ${real}, outside the model's folder (${realDir}); shards must lie inside it`, file);
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(real);
  } catch (e) {
    throw new InputError(`cannot read weight shard '${p}' (${(e as NodeJS.ErrnoException).code})`, file);
  }
  const kind = notRegular(st);
  if (kind) throw new InputError(`weight shard '${p}' is ${kind}, not a regular file`, file);
  return { name: p, real, st };
}

/** Loads and validates the raw artifacts (topology + concatenated weight bytes). */
export function readModelArtifacts(file: string, opts: ModelReadOptions = {}): tf.io.ModelArtifacts {
  const json = readJson(file);
  const topology = json.modelTopology as Record<string, unknown> | undefined;
  // A graph model has a modelTopology too (a GraphDef: `node`, `versions`), so test the format first.
  const graph = json.format === 'graph-model' || (!!topology && typeof topology === 'object' && Array.isArray(topology.node));
  if (!topology || typeof topology !== 'object' || graph) {
    throw new InputError(
      graph
        ? 'this is a TF.js graph model; Basin needs a layers model (tf.LayersModel.save / tensorflowjs_converter --output_format tfjs_layers_model)'
        : "no 'modelTopology': not a TF.js layers model.json",
      file,
    );
  }
  const manifest = json.weightsManifest;
  if (!Array.isArray(manifest)) throw new InputError("no 'weightsManifest': the model.json lists no weights", file);
  const groups = parseManifest(manifest, file);

  // Sizes first, from numbers alone: the manifest, then the layers TF.js would build.
  const limit = opts.maxParams ?? MAX_PARAMS;
  const count = (specs: WeightSpec[]): number => specs.reduce((sum, w) => sum + w.shape.reduce((a, b) => a * b, 1), 0);
  const declared = groups.reduce((sum, g) => sum + count(g.specs), 0);
  refuseOver('the parameter count the weightsManifest declares', declared, limit, { file, hint: paramLimitHint(declared, limit) });
  const { weights } = checkTopology(topology, file);
  refuseOver('the parameter count of the model topology', weights, limit, { file, hint: paramLimitHint(weights, limit) });
  // Optimizer state saved beside the weights is decoded and dropped; the model's own must match.
  const modelWeights = groups.reduce((sum, g) => sum + count(g.specs.filter((w) => w.group !== 'optimizer')), 0);
  if (weights !== modelWeights) {
    throw new InputError(
      `the model topology's layers hold ${weights.toLocaleString('en-US')} weight values but the weightsManifest declares ` +
        `${modelWeights.toLocaleString('en-US')}: the weights do not belong to these layers`,
      file,
    );
  }

  // Shards: inside the folder, regular files, exactly the declared sizes; then read.
  const dir = path.dirname(file);
  let realDir: string;
  try {
    realDir = fs.realpathSync(dir);
  } catch (e) {
    throw new InputError(`cannot resolve the model's folder (${(e as NodeJS.ErrnoException).code})`, file);
  }
  const shards = groups.map((g) => g.paths.map((p) => resolveShard(dir, realDir, p, file)));
  groups.forEach((g, i) => {
    const found = shards[i].reduce((sum, s) => sum + s.st.size, 0);
    if (found === g.bytes) return;
    const names = g.paths.map((p) => `'${p}'`).join(', ');
    const why =
      found < g.bytes
        ? `${g.bytes - found} missing: the shard is truncated or from another model`
        : `${found - g.bytes} extra: the shard has bytes the manifest does not describe, or is from another model`;
    throw new InputError(`weight shard${g.paths.length > 1 ? 's' : ''} ${names}: the shard files hold ${found} bytes but the manifest needs ${g.bytes} (${why})`, file);
  });
  const total = groups.reduce((sum, g) => sum + g.bytes, 0);
  const data = new ArrayBuffer(total);
  const view = new Uint8Array(data);
  let at = 0;
  for (const s of shards.flat()) {
    readChecked(s.real, s.st, view, at, O_NOFOLLOW, `weight shard '${s.name}'`, file);
    at += s.st.size;
  }
  return {
    modelTopology: topology as object,
    weightSpecs: groups.flatMap((g) => g.specs) as tf.io.WeightsManifestEntry[],
    weightData: data,
  };
}

/** Loads a layers model from model.json and its shards (checked as `readModelArtifacts` says). */
export async function loadLayersModelFile(file: string, opts: ModelReadOptions = {}): Promise<tfl.LayersModel> {
  const artifacts = readModelArtifacts(file, opts);
  try {
    return await tfl.loadLayersModel(tf.io.fromMemory(artifacts));
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    const unknown = /Unknown (layer|activation|initializer|regularizer|constraint): (\w+)/.exec(msg);
    if (unknown) throw new InputError(`unsupported ${unknown[1]} '${unknown[2]}' in the model topology`, file);
    throw new InputError(`TF.js could not build the model: ${msg}`, file);
  }
}

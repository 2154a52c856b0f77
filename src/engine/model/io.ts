/**
 * Reads TF.js layers models from disk without tfjs-node: `model.json` plus its weight shards, read
 * with `fs` and handed to TF.js through `tf.io.fromMemory`. Every failure names the file and the
 * problem: unreadable or corrupt JSON, a missing or short shard, an unknown layer class.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf, tfl } from '../tf';
import { BasinError } from '../errors';
import { SUPPORTED_LAYERS } from './lower';

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string };
}
interface WeightGroup {
  paths: string[];
  weights: WeightSpec[];
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2, int8: 1 };

function readJson(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new BasinError(code === 'ENOENT' ? 'file not found' : `cannot read the file (${code ?? (e as Error).message})`, file);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as Record<string, unknown>;
  } catch (e) {
    throw new BasinError(`not valid JSON (${(e as Error).message})`, file);
  }
}

/** Loads and validates the raw artifacts (topology + concatenated weight bytes). */
export function readModelArtifacts(file: string): tf.io.ModelArtifacts {
  const json = readJson(file);
  const topology = json.modelTopology as Record<string, unknown> | undefined;
  // A graph model has a modelTopology too (a GraphDef: `node`, `versions`), so test the format first.
  const graph = json.format === 'graph-model' || (!!topology && typeof topology === 'object' && Array.isArray(topology.node));
  if (!topology || typeof topology !== 'object' || graph) {
    throw new BasinError(
      graph
        ? 'this is a TF.js graph model; Basin needs a layers model (tf.LayersModel.save / tensorflowjs_converter --output_format tfjs_layers_model)'
        : "no 'modelTopology': not a TF.js layers model.json",
      file,
    );
  }
  const manifest = json.weightsManifest as WeightGroup[] | undefined;
  if (!Array.isArray(manifest)) throw new BasinError("no 'weightsManifest': the model.json lists no weights", file);
  const dir = path.dirname(file);
  const specs: WeightSpec[] = [];
  const buffers: Buffer[] = [];
  for (const group of manifest) {
    if (!Array.isArray(group.paths) || !Array.isArray(group.weights)) throw new BasinError('a weightsManifest entry lacks paths or weights', file);
    const parts: Buffer[] = [];
    for (const p of group.paths) {
      const shard = path.join(dir, p);
      try {
        parts.push(fs.readFileSync(shard));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new BasinError(
          code === 'ENOENT' ? `weight shard '${p}' is missing (expected at ${shard})` : `cannot read weight shard '${p}' (${code})`,
          file,
        );
      }
    }
    const bytes = Buffer.concat(parts);
    let need = 0;
    for (const w of group.weights) {
      const per = BYTES[w.quantization?.dtype ?? w.dtype];
      if (per === undefined) throw new BasinError(`weight '${w.name}' has unsupported dtype '${w.dtype}'`, file);
      need += per * (w.shape ?? []).reduce((a, b) => a * b, 1);
      specs.push(w);
    }
    if (bytes.length < need) {
      throw new BasinError(
        `weight shard${group.paths.length > 1 ? 's' : ''} ${group.paths.map((p) => `'${p}'`).join(', ')} ` +
          `hold ${bytes.length} bytes but the manifest needs ${need}: the shard is truncated or from another model`,
        file,
      );
    }
    buffers.push(bytes.subarray(0, need));
  }
  const all = Buffer.concat(buffers);
  return {
    modelTopology: topology as object,
    weightSpecs: specs as tf.io.WeightsManifestEntry[],
    weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
  };
}

/** The top-level layers of a Sequential or functional topology: class and name. */
function topologyLayers(topology: unknown): { className: string; name: string }[] {
  const config = (topology as { config?: unknown } | undefined)?.config;
  const layers = Array.isArray(config) ? config : (config as { layers?: unknown } | undefined)?.layers;
  if (!Array.isArray(layers)) return [];
  return layers.map((l: { class_name?: unknown; config?: { name?: unknown }; name?: unknown }) => ({
    className: String(l?.class_name ?? ''),
    name: String(l?.config?.name ?? l?.name ?? '?'),
  }));
}

/** Loads a layers model from model.json and its shards. */
export async function loadLayersModelFile(file: string): Promise<tfl.LayersModel> {
  const artifacts = readModelArtifacts(file);
  try {
    return await tfl.loadLayersModel(tf.io.fromMemory(artifacts));
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    // A class TF.js knows but Basin does not (LSTM on 2-D input...) can fail to build with a
    // message about shapes; name the class instead.
    const layer = topologyLayers(artifacts.modelTopology).find((l) => l.className !== '' && !SUPPORTED_LAYERS.includes(l.className));
    if (layer) {
      throw new BasinError(
        `layer '${layer.name}' (${layer.className}) is not supported; supported layers: ${SUPPORTED_LAYERS.filter((c) => c !== 'InputLayer').join(', ')}`,
        file,
      );
    }
    const unknown = /Unknown (layer|activation|initializer|regularizer|constraint): (\w+)/.exec(msg);
    if (unknown) throw new BasinError(`unsupported ${unknown[1]} '${unknown[2]}' in the model topology`, file);
    throw new BasinError(`TF.js could not build the model: ${msg}`, file);
  }
}

/**
 * Checks a layers-model topology (the `modelTopology` of a model.json) before TF.js sees it. A
 * model.json is untrusted data: TF.js allocates every weight the topology declares while it
 * builds the model, and loops forever on a functional graph whose layers cannot all be connected.
 * So this module, with plain arithmetic and nothing allocated in proportion to the numbers in the
 * file:
 *
 * - reads the topology as TF.js will (keys and string values converted from snake_case);
 * - refuses any layer class Basin does not support, naming the layer, its class and the list;
 * - infers every layer's output shape from the input shape (Sequential and functional models;
 *   shapes follow the Keras rules TF.js implements) and counts the weight values each layer
 *   allocates when built: the estimate the caller compares with its limit and with the
 *   weightsManifest;
 * - refuses a functional graph TF.js could not build: an input from a layer that is not there,
 *   never called or called more than once (shared layers), or a cycle.
 */
import { InputError } from '../errors';
import { SUPPORTED_LAYERS } from './lower';

export interface TopologySummary {
  /** Weight values (trainable and not) TF.js allocates building the model. */
  weights: number;
  /** Layers in the topology, InputLayers included. */
  layers: number;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Dict = { [key: string]: Json };

/** Nesting deeper than this is refused (real topologies nest a few levels). */
const MAX_DEPTH = 64;

/** TF.js's `toCamelCase` (tfjs-layers utils/generic_utils). */
function toCamelCase(identifier: string): string {
  if (identifier.length <= 1 || !identifier.includes('_')) return identifier;
  return identifier.replace(/[_]+(\w|$)/g, (_m, p1: string) => p1.toUpperCase());
}

/**
 * TF.js's `convertPythonicToTs` (tfjs-layers utils/serialization_utils): keys and string values
 * to camelCase, except `name` values and the layer names that open inbound-node and input/output
 * entries. What TF.js builds from is what is checked here.
 */
function pythonicToTs(value: unknown, file: string, key?: string, depth = 0): Json {
  if (depth > MAX_DEPTH) throw new InputError(`the model topology nests deeper than ${MAX_DEPTH} levels`, file);
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return toCamelCase(value);
  if (typeof value === 'number' || typeof value === 'boolean') return value;
  if (Array.isArray(value)) {
    return value.map((item: unknown, i) =>
      (key === 'inboundNodes' || key === 'outputLayers' || key === 'inputLayers') && i === 0 && typeof item === 'string'
        ? item
        : pythonicToTs(item, file, key, depth + 1),
    );
  }
  if (typeof value !== 'object') return null;
  const out: Dict = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === 'name' && typeof v === 'string') out[k] = v;
    else {
      const ts = toCamelCase(k);
      out[ts] = pythonicToTs(v, file, ts, depth + 1);
    }
  }
  return out;
}

const isDict = (v: Json | undefined): v is Dict => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: Json | undefined): string => (v === undefined ? 'nothing' : JSON.stringify(v).slice(0, 60));
const shapeText = (s: readonly (number | null)[]): string => `[${s.join(', ')}]`;

/** Supported layers without InputLayer, for messages. */
const supportedList = (): string => SUPPORTED_LAYERS.filter((c) => c !== 'InputLayer').join(', ');

interface Layer {
  /** The name other layers refer to it by (functional), or its config name (Sequential). */
  name: string;
  className: string;
  config: Dict;
}

/**
 * Checks the topology and returns the weight values it allocates; throws a BasinError naming
 * `file` for an unsupported layer or a topology TF.js would fail (or hang) building.
 */
export function checkTopology(topology: unknown, file: string): TopologySummary {
  let raw = topology as Record<string, unknown>;
  // As TF.js: a Keras model.json wraps the model in model_config.
  if (raw.model_config != null) raw = raw.model_config as Record<string, unknown>;
  const model = pythonicToTs(raw, file);
  if (!isDict(model)) throw new InputError("'modelTopology' is not a JSON object", file);
  const cls = model.className;
  const config = model.config;
  const sequential = cls === 'Sequential';
  if (!sequential && cls !== 'Model' && cls !== 'Functional') {
    throw new InputError(`the model topology is a '${typeof cls === 'string' ? cls : show(cls)}', not a Sequential or functional model`, file);
  }
  const list = sequential && Array.isArray(config) ? config : isDict(config) ? config.layers : undefined;
  if (!Array.isArray(list)) throw new InputError('the model topology lists no layers', file);

  const layers: Layer[] = list.map((entry, i) => {
    if (!isDict(entry) || typeof entry.className !== 'string' || !isDict(entry.config)) {
      throw new InputError(`layer ${i + 1} of the model topology has no class_name or config`, file);
    }
    // A functional model's layers refer to each other by the entry's name; a Sequential's by order.
    const configName = entry.config.name;
    const name = sequential ? (typeof configName === 'string' ? configName : `#${i + 1}`) : entry.name;
    if (typeof name !== 'string') throw new InputError(`layer ${i + 1} of the model topology (${entry.className}) has no name`, file);
    return { name, className: entry.className, config: entry.config };
  });
  for (const l of layers) {
    if (!SUPPORTED_LAYERS.includes(l.className)) throw new InputError(`layer '${l.name}' (${l.className}) is not supported; supported layers: ${supportedList()}`, file);
  }
  const weights = sequential ? sequentialWeights(layers, file) : functionalWeights(layers, model.config as Dict, list as Dict[], file);
  return { weights, layers: layers.length };
}

function sequentialWeights(layers: Layer[], file: string): number {
  if (layers.length === 0) return 0;
  let shape = inputShape(layers[0], file);
  let total = 0;
  layers.forEach((l, i) => {
    if (l.className === 'InputLayer') {
      if (i > 0) throw new InputError(`layer '${l.name}' (InputLayer) is not the first layer of the Sequential model`, file);
      return;
    }
    const r = infer(l, [shape], file);
    shape = r.shape;
    total += r.weights;
  });
  return total;
}

/** An inbound-node entry: [layer name, node index, tensor index, kwargs?]. */
function inboundOf(layer: Layer, data: Dict, file: string): string[] {
  const nodes = data.inboundNodes ?? [];
  if (!Array.isArray(nodes)) throw new InputError(`layer '${layer.name}' (${layer.className}): 'inbound_nodes' is not a list`, file);
  if (layer.className === 'InputLayer') {
    if (nodes.length > 0) throw new InputError(`layer '${layer.name}' (InputLayer) has inbound nodes; an InputLayer takes no inputs`, file);
    return [];
  }
  if (nodes.length > 1) throw new InputError(`layer '${layer.name}' (${layer.className}) is called ${nodes.length} times; shared layers are not supported`, file);
  if (nodes.length === 0) return [];
  const node = nodes[0];
  if (!Array.isArray(node) || node.length === 0) {
    throw new InputError(`layer '${layer.name}' (${layer.className}): its inbound node is not a list of [layer, node, tensor] entries`, file);
  }
  return node.map((entry) => {
    if (!Array.isArray(entry) || typeof entry[0] !== 'string') {
      throw new InputError(`layer '${layer.name}' (${layer.className}): inbound entry ${show(entry)} is not [layer, node, tensor]`, file);
    }
    if (entry[1] !== 0 || entry[2] !== 0) {
      throw new InputError(
        `layer '${layer.name}' (${layer.className}) takes output ${show(entry[2])} of call ${show(entry[1])} of '${entry[0]}'; ` +
          'every layer here is called once and has one output (0, 0)',
        file,
      );
    }
    return entry[0];
  });
}

function functionalWeights(layers: Layer[], config: Dict, list: Dict[], file: string): number {
  const byName = new Map<string, number>();
  layers.forEach((l, i) => {
    if (byName.has(l.name)) throw new InputError(`two layers are named '${l.name}'`, file);
    byName.set(l.name, i);
  });
  const inputs = layers.map((l, i) => inboundOf(l, list[i], file));
  // Called: an InputLayer, or a layer with an inbound node. A layer nobody calls is never built.
  const called = layers.map((l, i) => l.className === 'InputLayer' || inputs[i].length > 0);
  const dependents: number[][] = layers.map(() => []);
  const waiting = inputs.map((ins) => ins.length);
  inputs.forEach((ins, i) => {
    for (const from of ins) {
      const j = byName.get(from);
      if (j === undefined) throw new InputError(`layer '${layers[i].name}' takes its input from '${from}', which is not in the model topology`, file);
      if (!called[j]) throw new InputError(`layer '${layers[i].name}' takes its input from '${from}', which is never called`, file);
      dependents[j].push(i);
    }
  });
  for (const key of ['inputLayers', 'outputLayers'] as const) {
    const ends = config[key];
    if (!Array.isArray(ends) || ends.length === 0) throw new InputError(`the functional model has no '${key === 'inputLayers' ? 'input_layers' : 'output_layers'}'`, file);
    for (const e of ends) {
      const j = Array.isArray(e) && typeof e[0] === 'string' ? byName.get(e[0]) : undefined;
      if (j === undefined || !called[j] || (Array.isArray(e) && (e[1] !== 0 || e[2] !== 0))) {
        throw new InputError(`the functional model's ${key === 'inputLayers' ? 'input' : 'output'} ${show(e)} is not a called layer of the topology`, file);
      }
    }
  }
  // Kahn's algorithm: shapes flow in dependency order, whatever order the file lists layers in.
  const shapes: (number[] | undefined)[] = layers.map(() => undefined);
  const ready: number[] = [];
  layers.forEach((l, i) => {
    if (l.className === 'InputLayer') ready.push(i);
  });
  let total = 0;
  while (ready.length > 0) {
    const i = ready.pop() as number;
    const l = layers[i];
    if (l.className === 'InputLayer') shapes[i] = inputShape(l, file);
    else {
      const r = infer(l, inputs[i].map((from) => shapes[byName.get(from) as number] as number[]), file);
      shapes[i] = r.shape;
      total += r.weights;
    }
    for (const d of dependents[i]) {
      // Counted per entry: a layer taking the same input twice (Add of x and x) waits for both.
      if (--waiting[d] === 0) ready.push(d);
    }
  }
  const stuck = layers.filter((_l, i) => called[i] && shapes[i] === undefined);
  if (stuck.length > 0) {
    throw new InputError(
      `layers ${stuck.slice(0, 5).map((l) => `'${l.name}'`).join(', ')}${stuck.length > 5 ? ', ...' : ''} wait on each other's outputs (a cycle in the model topology)`,
      file,
    );
  }
  return total;
}

/** The per-sample input shape an InputLayer or a model's first layer declares. */
function inputShape(l: Layer, file: string): number[] {
  const c = l.config;
  const batch = c.batchInputShape;
  // As TF.js: batch_input_shape, else input_shape, else (Dense only) input_dim.
  const dim = l.className === 'Dense' && c.inputDim != null ? [c.inputDim] : undefined;
  const given = Array.isArray(batch) ? batch.slice(1) : Array.isArray(c.inputShape) ? c.inputShape : dim;
  if (!given) throw new InputError(`layer '${l.name}' (${l.className}) declares no input shape (batch_input_shape); Basin needs fixed input shapes`, file);
  if (given.some((d) => d === null)) {
    throw new InputError(`the input shape [${given.map((d) => (d === null ? -1 : show(d))).join(', ')}] has an unknown dimension; Basin needs fixed input shapes`, file);
  }
  return given.map((d) => {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) throw new InputError(`layer '${l.name}' (${l.className}): input dimension ${show(d)} is not a non-negative integer`, file);
    return d;
  });
}

interface Inferred {
  shape: number[];
  weights: number;
}

/** Output shape and weight values of one call of a supported layer (Keras / TF.js rules). */
function infer(l: Layer, ins: number[][], file: string): Inferred {
  const where = `layer '${l.name}' (${l.className})`;
  const fail = (what: string): never => {
    throw new InputError(`${where}: ${what}`, file);
  };
  const c = l.config;
  const merge = l.className === 'Add' || l.className === 'Concatenate';
  if (merge && ins.length < 2) fail(`takes ${ins.length} input${ins.length === 1 ? '' : 's'}; it needs at least 2`);
  if (!merge && ins.length !== 1) fail(`takes ${ins.length} inputs; it takes one`);
  const s = ins[0];
  const positive = (key: string, fallback?: number): number => {
    const v = c[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) fail(`'${key}' must be a positive integer (got ${show(c[key])})`);
    return v as number;
  };
  const pair = (key: string, fallback: [number, number] | undefined): [number, number] => {
    const v = c[key] ?? fallback;
    const a = typeof v === 'number' ? [v, v] : v;
    if (!Array.isArray(a) || a.length !== 2 || !a.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 1)) {
      fail(`'${key}' must be a positive integer or two (got ${show(c[key])})`);
    }
    return a as [number, number];
  };
  const flag = (key: string): boolean => {
    const v = c[key] ?? true;
    if (typeof v !== 'boolean') fail(`'${key}' must be true or false (got ${show(v)})`);
    return v as boolean;
  };
  const rank = (n: number): void => {
    if (s.length !== n) fail(`expects inputs of ${n} dimensions per sample, got ${shapeText(s)}`);
  };
  const dims = (shape: number[]): Inferred['shape'] => {
    // A shape whose size is not a safe integer describes no tensor Basin could hold.
    if (!Number.isSafeInteger(shape.reduce((a, b) => a * b, 1))) fail(`output shape ${shapeText(shape)} is too large`);
    return shape;
  };
  const channelsLast = (): boolean => {
    const f = c.dataFormat ?? 'channelsLast';
    if (f !== 'channelsLast' && f !== 'channelsFirst') fail(`data_format ${show(f)} is not channels_last or channels_first`);
    return f === 'channelsLast';
  };
  const padding = (): 'same' | 'valid' => {
    const p = c.padding ?? 'valid';
    if (p !== 'same' && p !== 'valid') fail(`padding ${show(p)} is not 'valid' or 'same'`);
    return p as 'same' | 'valid';
  };
  /** TF.js convOutputLength; an empty output is refused. */
  const outLength = (n: number, k: number, pad: 'same' | 'valid', stride: number, dilation: number): number => {
    const len = pad === 'same' ? n : n - (k + (k - 1) * (dilation - 1)) + 1;
    const out = Math.floor((len + stride - 1) / stride);
    if (out < 1) fail(`a window of ${k} (dilation ${dilation}) does not fit an input of ${n} with padding '${pad}'`);
    return out;
  };
  switch (l.className) {
    case 'Dense': {
      const units = positive('units');
      if (s.length < 1) fail('expects inputs of at least 1 dimension per sample');
      const last = s[s.length - 1];
      return { shape: dims([...s.slice(0, -1), units]), weights: last * units + (flag('useBias') ? units : 0) };
    }
    case 'Conv2D': {
      rank(3);
      const filters = positive('filters');
      const [kh, kw] = pair('kernelSize', undefined);
      const [sh, sw] = pair('strides', [1, 1]);
      const [dh, dw] = pair('dilationRate', [1, 1]);
      const pad = padding();
      const last = channelsLast();
      const [h, w, ch] = last ? [s[0], s[1], s[2]] : [s[1], s[2], s[0]];
      const oh = outLength(h, kh, pad, sh, dh);
      const ow = outLength(w, kw, pad, sw, dw);
      return { shape: dims(last ? [oh, ow, filters] : [filters, oh, ow]), weights: kh * kw * ch * filters + (flag('useBias') ? filters : 0) };
    }
    case 'MaxPooling2D':
    case 'AveragePooling2D': {
      rank(3);
      const pool = pair('poolSize', [2, 2]);
      const strides = pair('strides', pool);
      const pad = padding();
      const last = channelsLast();
      const [h, w, ch] = last ? [s[0], s[1], s[2]] : [s[1], s[2], s[0]];
      const oh = outLength(h, pool[0], pad, strides[0], 1);
      const ow = outLength(w, pool[1], pad, strides[1], 1);
      return { shape: last ? [oh, ow, ch] : [ch, oh, ow], weights: 0 };
    }
    case 'GlobalAveragePooling2D': {
      rank(3);
      return { shape: [channelsLast() ? s[2] : s[0]], weights: 0 };
    }
    case 'Flatten':
      return { shape: dims([s.reduce((a, b) => a * b, 1)]), weights: 0 };
    case 'Dropout':
    case 'Activation':
    case 'ReLU':
      return { shape: s, weights: 0 };
    case 'BatchNormalization': {
      // The axis counts the batch dimension, as in Keras: -1 or rank for the last.
      const a = Array.isArray(c.axis) && c.axis.length === 1 ? c.axis[0] : (c.axis ?? -1);
      const full = s.length + 1;
      if (typeof a !== 'number' || !Number.isInteger(a) || a >= full || a < -full + 1 || a === 0) fail(`axis ${show(c.axis)} is not a feature axis of inputs ${shapeText(s)}`);
      const dim = s[((a as number) >= 0 ? (a as number) : (a as number) + full) - 1];
      // gamma (scale), beta (center), and the moving mean and variance.
      return { shape: s, weights: dim * ((flag('scale') ? 1 : 0) + (flag('center') ? 1 : 0) + 2) };
    }
    case 'Add': {
      // Broadcast as numpy does, from the last dimension.
      const n = Math.max(...ins.map((x) => x.length));
      const out: number[] = [];
      for (let k = 1; k <= n; k++) {
        let d = 1;
        for (const x of ins) {
          const v = x.length - k >= 0 ? x[x.length - k] : 1;
          if (v !== 1 && d !== 1 && v !== d) fail(`inputs of shapes ${ins.map(shapeText).join(', ')} cannot be added`);
          if (v !== 1) d = v;
        }
        out.unshift(d);
      }
      return { shape: out, weights: 0 };
    }
    case 'Concatenate': {
      const a = c.axis ?? -1;
      const full = s.length + 1;
      if (typeof a !== 'number' || !Number.isInteger(a) || a >= full || a < -full + 1 || a === 0) fail(`axis ${show(c.axis)} is not a feature axis of inputs ${shapeText(s)}`);
      const k = ((a as number) >= 0 ? (a as number) : (a as number) + full) - 1;
      const other = (x: number[]): string => shapeText(x.filter((_d, i) => i !== k));
      if (ins.some((x) => x.length !== s.length || other(x) !== other(s))) {
        fail(`inputs of shapes ${ins.map(shapeText).join(', ')} differ outside the concatenation axis`);
      }
      const out = s.slice();
      out[k] = ins.reduce((sum, x) => sum + x[k], 0);
      return { shape: dims(out), weights: 0 };
    }
    default:
      return fail(`is not supported; supported layers: ${supportedList()}`);
  }
}

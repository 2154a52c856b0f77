/**
 * Lowers a TF.js `LayersModel` (Sequential or functional) to Basin's IR (`ir.ts`), reading each
 * supported layer's configuration and weights. An unsupported layer or setting is an error that
 * names the layer, its class and what is not supported.
 */
import { tfl } from '../tf';
import { InputError } from '../errors';
import { ACTIVATIONS, type Activation, type ConstInfo, type IRNode, type LayerOp, type ModelIR, type ParamInfo } from './ir';

interface LayerLike {
  name: string;
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  trainableWeights: { name: string; shape: (number | null)[]; read(): { dataSync(): ArrayLike<number> } }[];
  nonTrainableWeights: { name: string; shape: (number | null)[]; read(): { dataSync(): ArrayLike<number> } }[];
  inboundNodes: { inboundLayers: LayerLike[] }[];
  batchInputShape?: (number | null)[];
  outputShape: (number | null)[] | (number | null)[][];
}

export const SUPPORTED_LAYERS = [
  'InputLayer',
  'Dense',
  'Conv2D',
  'MaxPooling2D',
  'AveragePooling2D',
  'GlobalAveragePooling2D',
  'Flatten',
  'Dropout',
  'BatchNormalization',
  'Activation',
  'ReLU',
  'Add',
  'Concatenate',
];

export interface Lowered {
  ir: ModelIR;
  /** Initial parameter values, one per `ir.params` entry. */
  values: Float32Array[];
}

function pair(v: unknown, fallback: number): [number, number] {
  if (v === undefined || v === null) return [fallback, fallback];
  if (typeof v === 'number') return [v, v];
  const a = v as number[];
  return [a[0], a.length > 1 ? a[1] : a[0]];
}

function shapeOf(s: (number | null)[] | (number | null)[][]): number[] {
  const one = Array.isArray(s[0]) ? (s[0] as (number | null)[]) : (s as (number | null)[]);
  return one.slice(1).map((d) => (d === null ? -1 : d));
}

export function lowerLayersModel(model: tfl.LayersModel, source: string): Lowered {
  const layers = model.layers as unknown as LayerLike[];
  if (model.inputs.length !== 1) throw new InputError(`models with ${model.inputs.length} inputs are not supported (one input)`, source);
  if (model.outputs.length !== 1) throw new InputError(`models with ${model.outputs.length} outputs are not supported (one output)`, source);

  const nodes: IRNode[] = [];
  const params: ParamInfo[] = [];
  const values: Float32Array[] = [];
  const constants: ConstInfo[] = [];
  const index = new Map<string, number>();
  let offset = 0;

  const inputShape = model.inputs[0].shape.slice(1).map((d) => (d === null ? -1 : d));
  if (inputShape.some((d) => d < 0)) {
    throw new InputError(`the input shape [${inputShape.join(', ')}] has an unknown dimension; Basin needs fixed input shapes`, source);
  }

  const ensureInput = (l: LayerLike): number => {
    const found = index.get(l.name);
    if (found !== undefined) return found;
    nodes.push({ name: l.name, op: { kind: 'input', shape: inputShape }, inputs: [], outShape: inputShape });
    index.set(l.name, nodes.length - 1);
    return nodes.length - 1;
  };

  const addParam = (layer: string, role: ParamInfo['role'], w: LayerLike['trainableWeights'][number]): number => {
    const shape = w.shape.map((d) => d ?? 0);
    const size = shape.reduce((a, b) => a * b, 1);
    params.push({ name: w.name, layer, role, shape, size, offset });
    values.push(Float32Array.from(w.read().dataSync()));
    offset += size;
    return params.length - 1;
  };
  const addConst = (w: LayerLike['nonTrainableWeights'][number]): number => {
    constants.push({ name: w.name, shape: w.shape.map((d) => d ?? 0), values: Float32Array.from(w.read().dataSync()) });
    return constants.length - 1;
  };

  for (const layer of layers) {
    const cls = layer.getClassName();
    const cfg = layer.getConfig();
    const where = `layer '${layer.name}' (${cls})`;
    if (cls === 'InputLayer') {
      ensureInput(layer);
      continue;
    }
    if (!SUPPORTED_LAYERS.includes(cls)) {
      throw new InputError(`${where} is not supported; supported layers: ${SUPPORTED_LAYERS.filter((c) => c !== 'InputLayer').join(', ')}`, source);
    }
    const inbound = layer.inboundNodes[0]?.inboundLayers ?? [];
    const inputs = inbound.map((l) => index.get(l.name) ?? ensureInput(l));
    if (inputs.length === 0) inputs.push(ensureInput({ ...layer, name: `${layer.name}_input` }));

    const activation = (): Activation => {
      const a = (cfg.activation as string | undefined) ?? 'linear';
      if (!(ACTIVATIONS as readonly string[]).includes(a)) {
        throw new InputError(`${where} uses activation '${a}', which is not supported (${ACTIVATIONS.join(', ')})`, source);
      }
      return a as Activation;
    };
    const trainable = layer.trainableWeights;
    // Weight names end in the role ('dense_1/kernel'); TF.js appends '_N' when the same name was
    // already used in this process ('dense_1/kernel_1').
    const role = (name: string): string => (name.split('/').pop() ?? name).replace(/_\d+$/, '');
    const byRole = (suffix: string) => trainable.find((w) => role(w.name) === suffix);
    let op: LayerOp;
    switch (cls) {
      case 'Dense': {
        const k = byRole('kernel');
        if (!k) throw new InputError(`${where} has no trainable kernel (frozen layers are not supported)`, source);
        const kernel = addParam(layer.name, 'kernel', k);
        const b = byRole('bias');
        op = { kind: 'dense', units: cfg.units as number, activation: activation(), kernel, bias: b ? addParam(layer.name, 'bias', b) : undefined };
        break;
      }
      case 'Conv2D': {
        if ((cfg.dataFormat ?? 'channelsLast') !== 'channelsLast') throw new InputError(`${where}: only channelsLast (NHWC) is supported`, source);
        const dil = pair(cfg.dilationRate, 1);
        if (dil[0] !== 1 || dil[1] !== 1) throw new InputError(`${where}: dilation rates other than 1 are not supported`, source);
        const k = byRole('kernel');
        if (!k) throw new InputError(`${where} has no trainable kernel (frozen layers are not supported)`, source);
        const kernel = addParam(layer.name, 'kernel', k);
        const b = byRole('bias');
        op = {
          kind: 'conv2d',
          filters: cfg.filters as number,
          kernelSize: pair(cfg.kernelSize, 1),
          strides: pair(cfg.strides, 1),
          padding: cfg.padding === 'same' ? 'same' : 'valid',
          activation: activation(),
          kernel,
          bias: b ? addParam(layer.name, 'bias', b) : undefined,
        };
        if (cfg.padding !== 'same' && cfg.padding !== 'valid') throw new InputError(`${where}: padding '${String(cfg.padding)}' is not supported`, source);
        break;
      }
      case 'MaxPooling2D':
      case 'AveragePooling2D': {
        if ((cfg.dataFormat ?? 'channelsLast') !== 'channelsLast') throw new InputError(`${where}: only channelsLast (NHWC) is supported`, source);
        const poolSize = pair(cfg.poolSize, 2);
        op = {
          kind: cls === 'MaxPooling2D' ? 'maxPool2d' : 'avgPool2d',
          poolSize,
          strides: cfg.strides == null ? poolSize : pair(cfg.strides, 1),
          padding: cfg.padding === 'same' ? 'same' : 'valid',
        };
        break;
      }
      case 'GlobalAveragePooling2D':
        op = { kind: 'globalAvgPool2d' };
        break;
      case 'Flatten':
        op = { kind: 'flatten' };
        break;
      case 'Dropout':
        op = { kind: 'dropout', rate: (cfg.rate as number) ?? 0 };
        break;
      case 'Activation':
        op = { kind: 'activation', activation: activation() };
        break;
      case 'ReLU':
        if (cfg.maxValue != null) throw new InputError(`${where}: ReLU with maxValue is not supported`, source);
        op = { kind: 'activation', activation: 'relu' };
        break;
      case 'BatchNormalization': {
        const axis = cfg.axis as number;
        const rank = shapeOf(layer.outputShape).length;
        if (axis !== -1 && axis !== rank) throw new InputError(`${where}: only normalisation over the last axis is supported (axis ${axis})`, source);
        const nonTrainable = layer.nonTrainableWeights;
        const mm = nonTrainable.find((w) => role(w.name) === 'moving_mean');
        const mv = nonTrainable.find((w) => role(w.name) === 'moving_variance');
        if (!mm || !mv) throw new InputError(`${where}: moving statistics are missing`, source);
        const g = byRole('gamma');
        const bt = byRole('beta');
        op = {
          kind: 'batchNorm',
          epsilon: (cfg.epsilon as number) ?? 1e-3,
          gamma: g ? addParam(layer.name, 'gamma', g) : undefined,
          beta: bt ? addParam(layer.name, 'beta', bt) : undefined,
          movingMean: addConst(mm),
          movingVariance: addConst(mv),
        };
        break;
      }
      case 'Add':
        op = { kind: 'add' };
        break;
      case 'Concatenate': {
        const axis = (cfg.axis as number) ?? -1;
        const rank = shapeOf(layer.outputShape).length;
        if (axis !== -1 && axis !== rank) throw new InputError(`${where}: only concatenation along the last axis is supported`, source);
        op = { kind: 'concatenate' };
        break;
      }
      default:
        throw new InputError(`${where} is not supported`, source);
    }
    nodes.push({ name: layer.name, op, inputs, outShape: shapeOf(layer.outputShape) });
    index.set(layer.name, nodes.length - 1);
  }

  const outLayer = (model.outputs[0] as unknown as { sourceLayer: LayerLike }).sourceLayer;
  const output = index.get(outLayer.name);
  const input = nodes.findIndex((n) => n.op.kind === 'input');
  if (output === undefined || input < 0) throw new InputError('could not find the model input and output', source);
  return {
    ir: { name: model.name, nodes, input, output, params, constants, numParams: offset },
    values,
  };
}

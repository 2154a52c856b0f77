/**
 * A TF.js layers copy of an imported ONNX model, for the checkpoints of a run that started from
 * an .onnx file (beside the .onnx itself), when every node maps to a layer Basin's TF.js reader
 * takes back (Dense, Conv2D, pooling, Flatten, BatchNormalization, activations, Add, Concatenate).
 *
 * The copy computes the same function as the IR, in the IR's layout: images are NHWC (PyTorch's
 * NCHW data must be transposed to load it as TF.js data), and a Dense layer after a Flatten reads
 * the H,W,C order (its rows were permuted when the ONNX model was imported). Layer names are the
 * ONNX node names with characters other than letters, digits and '_' replaced by '_'.
 */
import { tf, tfl } from '../../tf';
import type { ModelIR } from '../ir';
import { captureArchive, type ModelArchive } from '../archive';

/** A TF.js archive and the IR whose parameter names are its variables' (for `writeCheckpoint`). */
export interface TfjsCopy {
  archive: ModelArchive;
  ir: ModelIR;
}

type SymbolicTensor = ReturnType<typeof tfl.input>;
type Layer = tfl.layers.Layer;

/** Why the model has no TF.js copy, or undefined when every node maps. */
export function tfjsUnmappable(ir: ModelIR): string | undefined {
  for (const n of ir.nodes) {
    if (n.op.kind === 'leakyRelu') return `node '${n.name}' (leaky ReLU) has no layer Basin reads back from TF.js`;
  }
  return undefined;
}

/**
 * Builds the TF.js copy of `ir` with the parameter values `values` (per `ir.params`, as the
 * importer gives them) and the constants of the IR; undefined when a node does not map.
 */
export function tfjsCopy(ir: ModelIR, values: Float32Array[]): TfjsCopy | undefined {
  if (tfjsUnmappable(ir)) return undefined;
  const used = new Set<string>();
  const layerName = (name: string): string => {
    const base = name.replace(/[^A-Za-z0-9_]/g, '_').replace(/^_+/, '') || 'layer';
    let out = base;
    for (let k = 1; used.has(out); k++) out = `${base}_${k}`;
    used.add(out);
    return out;
  };
  const syms: SymbolicTensor[] = [];
  /** For each IR parameter, the layer and the index of its weight in `layer.weights`. */
  const owner: { layer: Layer; index: number }[] = [];
  const weightsOf: [Layer, Float32Array[]][] = [];
  for (const [i, node] of ir.nodes.entries()) {
    const op = node.op;
    const name = layerName(node.name);
    const ins = node.inputs.map((j) => syms[j]);
    const apply = (layer: Layer, arg: SymbolicTensor | SymbolicTensor[] = ins[0]): SymbolicTensor => layer.apply(arg) as SymbolicTensor;
    switch (op.kind) {
      case 'input':
        syms[i] = tfl.input({ shape: op.shape, name });
        break;
      case 'dense':
      case 'conv2d': {
        const useBias = op.bias !== undefined;
        const layer =
          op.kind === 'dense'
            ? tfl.layers.dense({ units: op.units, activation: op.activation, useBias, name })
            : tfl.layers.conv2d({ filters: op.filters, kernelSize: op.kernelSize, strides: op.strides, padding: op.padding, activation: op.activation, useBias, name });
        syms[i] = apply(layer);
        owner[op.kernel] = { layer, index: 0 };
        if (op.bias !== undefined) owner[op.bias] = { layer, index: 1 };
        weightsOf.push([layer, [values[op.kernel], ...(op.bias !== undefined ? [values[op.bias]] : [])]]);
        break;
      }
      case 'maxPool2d':
      case 'avgPool2d': {
        const cfg = { poolSize: op.poolSize, strides: op.strides, padding: op.padding, name };
        syms[i] = apply(op.kind === 'maxPool2d' ? tfl.layers.maxPooling2d(cfg) : tfl.layers.averagePooling2d(cfg));
        break;
      }
      case 'globalAvgPool2d':
        syms[i] = apply(tfl.layers.globalAveragePooling2d({ name }));
        break;
      case 'flatten':
        syms[i] = apply(tfl.layers.flatten({ name }));
        break;
      case 'dropout':
        syms[i] = apply(tfl.layers.dropout({ rate: op.rate, name }));
        break;
      case 'activation':
        syms[i] = apply(tfl.layers.activation({ activation: op.activation, name }));
        break;
      case 'batchNorm': {
        const layer = tfl.layers.batchNormalization({ epsilon: op.epsilon, center: op.beta !== undefined, scale: op.gamma !== undefined, name });
        syms[i] = apply(layer);
        const w: Float32Array[] = [];
        let k = 0;
        if (op.gamma !== undefined) {
          owner[op.gamma] = { layer, index: k++ };
          w.push(values[op.gamma]);
        }
        if (op.beta !== undefined) {
          owner[op.beta] = { layer, index: k++ };
          w.push(values[op.beta]);
        }
        w.push(ir.constants[op.movingMean].values, ir.constants[op.movingVariance].values);
        weightsOf.push([layer, w]);
        break;
      }
      case 'add':
        syms[i] = apply(tfl.layers.add({ name }), ins);
        break;
      case 'concatenate':
        syms[i] = apply(tfl.layers.concatenate({ axis: -1, name }), ins);
        break;
      case 'leakyRelu':
        return undefined;
    }
  }
  const model = tfl.model({ inputs: syms[ir.input], outputs: syms[ir.output], name: layerName(ir.name || 'onnx') });
  try {
    for (const [layer, w] of weightsOf) {
      const ts = layer.weights.map((v, k) => tf.tensor(w[k], v.shape as number[]));
      layer.setWeights(ts);
      tf.dispose(ts);
    }
    const archive = captureArchive(model);
    const params = ir.params.map((p, i) => ({ ...p, name: owner[i].layer.weights[owner[i].index].name }));
    return { archive, ir: { ...ir, params } };
  } finally {
    model.dispose();
  }
}

/**
 * Lowers a decoded ONNX graph (what `torch.onnx.export` writes for MLPs and convnets) to Basin's
 * IR (`../ir.ts`). ONNX images are NCHW and Basin's IR is NHWC, so:
 * - the model's input [C, H, W] becomes [H, W, C] (image data is transposed when it is loaded);
 * - Conv kernels [O, I, kH, kW] (OIHW) become [kH, kW, I, O] (HWIO);
 * - Gemm weights [out, in] (transB = 1, PyTorch's nn.Linear) become Dense kernels [in, out];
 * - a Flatten of a C,H,W activation flattens Basin's H,W,C activation, so the rows of the Dense
 *   kernel that reads it are permuted to keep PyTorch's C,H,W order: the function is identical.
 * Parameters are the initializers PyTorch has as parameters: Gemm/MatMul/Conv weights and biases,
 * BatchNormalization's scale and bias. Running mean and variance and shape constants stay
 * constants. Anything else is refused with the node's name, its op type and the supported list.
 */
import { onnx } from 'onnx-proto';
import { InputError } from '../../errors';
import { MAX_ONNX_NODES, refuseOver } from '../../limits';
import type { Activation, ConstInfo, IRNode, LayerOp, ModelIR, Padding, ParamInfo } from '../ir';
import type { Lowered } from '../lower';
import { num, tensorDims, tensorValues } from './tensors';

export const SUPPORTED_ONNX_OPS = [
  'Gemm',
  'MatMul (+ Add of a bias)',
  'Conv',
  'MaxPool',
  'AveragePool',
  'GlobalAveragePool',
  'BatchNormalization',
  'Relu',
  'LeakyRelu',
  'Tanh',
  'Sigmoid',
  'Elu',
  'Selu',
  'Softplus',
  'Softmax',
  'LogSoftmax (at the output)',
  'Flatten',
  'Reshape (to [batch, -1])',
  'Add',
  'Concat',
  'Dropout',
  'Identity',
  'Constant',
];

/**
 * How a Basin parameter's values derive from the ONNX initializer (PyTorch's tensor), so a flat
 * vector can be mapped between the two (`torch.ts`):
 * - 'same': the same shape and order (biases, BatchNorm scale and bias);
 * - 'oihw': a Conv kernel, [O, I, kH, kW] in ONNX, [kH, kW, I, O] in Basin;
 * - 'gemmT': a Gemm weight with transB = 1, [out, in] in ONNX, [in, out] in Basin;
 * - 'gemm': a Gemm (transB = 0) or MatMul weight, [in, out] in both.
 * `chw` ([C, H, W]) is set on a Dense kernel that reads a flattened image: Basin's input row
 * (h * W + w) * C + c is PyTorch's input c * H * W + h * W + w.
 */
export interface TorchLayout {
  /** The ONNX initializer's name: PyTorch's parameter name (e.g. `fc1.weight`) in torch.onnx.export output. */
  name: string;
  /** The initializer's shape (PyTorch's layout). */
  shape: number[];
  kind: 'same' | 'oihw' | 'gemmT' | 'gemm';
  chw?: [number, number, number];
}

export interface OnnxImported extends Lowered {
  /** One per `ir.params`: where each parameter comes from in the ONNX file. */
  torch: TorchLayout[];
  /** The graph ends in LogSoftmax, left out of the IR (the model outputs its input, the logits). */
  logSoftmaxOutput: boolean;
  /** The default-domain opset the file imports. */
  opset: number;
  /** The producer (e.g. `pytorch 1.13.0`), for messages. */
  producer: string;
  /** Whether the model's input is an NCHW image (data is transposed to NHWC when loaded). */
  nchwInput: boolean;
}

interface Val {
  /** IR node that holds the value. */
  node: number;
  /** The ONNX shape without the batch axis. */
  shape: number[];
  /** 'nchw': an image, NHWC in the IR; 'gap': [C, 1, 1] held as [C]; 'plain': a vector. */
  layout: 'plain' | 'nchw' | 'gap';
  /** A vector flattened from an image [C, H, W]: Basin's order H,W,C, PyTorch's C,H,W. */
  chw?: [number, number, number];
}

type ConstVal = { dims: number[]; float?: Float32Array; ints?: number[] };

const ACTIVATION_OPS: Record<string, Activation> = { Relu: 'relu', Tanh: 'tanh', Sigmoid: 'sigmoid', Elu: 'elu', Selu: 'selu', Softplus: 'softplus' };

function attrs(node: onnx.INodeProto): Map<string, onnx.IAttributeProto> {
  return new Map((node.attribute ?? []).map((a) => [a.name ?? '', a]));
}

/** Lowers `model` (decoded from `file`); `maxParams` bounds every tensor before it is decoded. */
export function lowerOnnx(model: onnx.IModelProto, file: string, maxParams: number): OnnxImported {
  const graph = model.graph;
  if (!graph) throw new InputError('the ONNX model has no graph', file);
  const opset = num((model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx')?.version as number | undefined);
  if (!(opset >= 7 && opset <= 21)) throw new InputError(`the model imports ONNX opset ${opset || 'none'}; Basin reads opsets 7 to 21 (torch.onnx.export writes 11 to 17)`, file);
  const gnodes = graph.node ?? [];
  refuseOver('the number of nodes in the ONNX graph', gnodes.length, MAX_ONNX_NODES, { file });

  const inits = new Map<string, onnx.ITensorProto>();
  for (const t of graph.initializer ?? []) inits.set(t.name ?? '', t);
  const consts = new Map<string, ConstVal>();
  const vals = new Map<string, Val>();
  const uses = new Map<string, number>();
  for (const n of gnodes) for (const i of n.input ?? []) if (i) uses.set(i, (uses.get(i) ?? 0) + 1);
  const outputs = (graph.output ?? []).map((o) => o.name ?? '');
  if (outputs.length !== 1) throw new InputError(`the ONNX graph has ${outputs.length} outputs; Basin needs models with one output`, file);

  const nodes: IRNode[] = [];
  const params: ParamInfo[] = [];
  const values: Float32Array[] = [];
  const torch: TorchLayout[] = [];
  const constants: ConstInfo[] = [];
  const usedNames = new Set<string>();
  const taken = new Set<string>();
  let offset = 0;
  const uniqueName = (base: string): string => {
    let name = base;
    for (let k = 1; usedNames.has(name); k++) name = `${base}_${k}`;
    usedNames.add(name);
    return name;
  };
  const push = (name: string, op: LayerOp, inputs: number[], outShape: number[]): number => {
    nodes.push({ name: uniqueName(name), op, inputs, outShape });
    return nodes.length - 1;
  };

  // The data input: the graph input that is not an initializer (old exports list both).
  const dataInputs = (graph.input ?? []).filter((i) => !inits.has(i.name ?? ''));
  if (dataInputs.length !== 1) throw new InputError(`the ONNX graph has ${dataInputs.length} data inputs (${dataInputs.map((i) => `'${i.name}'`).join(', ')}); Basin needs models with one input`, file);
  const inp = dataInputs[0];
  const inName = inp.name ?? 'input';
  const tt = inp.type?.tensorType;
  if (!tt) throw new InputError(`input '${inName}' is not a tensor`, file);
  if (tt.elemType !== onnx.TensorProto.DataType.FLOAT) throw new InputError(`input '${inName}' has element type ${tt.elemType}; Basin needs a float32 input`, file);
  const dims = (tt.shape?.dim ?? []).map((d) => (d.dimValue !== undefined && d.dimValue !== null ? num(d.dimValue as number) : -1));
  const shown = (tt.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : String(num(d.dimValue as number)))).join(', ');
  const perSample = dims.slice(1);
  if (dims.length < 2 || perSample.some((d) => !(d > 0))) {
    throw new InputError(`input '${inName}' has shape [${shown}]; Basin needs a batch axis first and fixed sizes after it (export with a fixed example input)`, file);
  }
  let nchwInput = false;
  if (perSample.length === 1) {
    vals.set(inName, { node: push(inName, { kind: 'input', shape: perSample }, [], perSample), shape: perSample, layout: 'plain' });
  } else if (perSample.length === 3) {
    const [c, h, w] = perSample;
    nchwInput = true;
    vals.set(inName, { node: push(inName, { kind: 'input', shape: [h, w, c] }, [], [h, w, c]), shape: perSample, layout: 'nchw' });
  } else {
    throw new InputError(`input '${inName}' has shape [${shown}]; Basin reads models of vectors [batch, features] and images [batch, C, H, W]`, file);
  }
  const batchDim = dims[0];

  const constOf = (name: string): ConstVal | undefined => {
    const c = consts.get(name);
    if (c) return c;
    const t = inits.get(name);
    if (!t) return undefined;
    const v = tensorValues(t, `initializer '${name}'`, file, maxParams);
    consts.set(name, v);
    return v;
  };

  let logSoftmaxOutput = false;
  gnodes.forEach((node, index) => {
    const op = node.opType ?? '';
    const nodeName = node.name || `${op}_${index}`;
    const where = `node '${nodeName}' (${op})`;
    const fail = (what: string): never => {
      throw new InputError(`${where}: ${what}`, file);
    };
    if (node.domain && node.domain !== 'ai.onnx') fail(`the operator domain '${node.domain}' is not supported (only the default ONNX domain)`);
    const a = attrs(node);
    const int = (k: string, d: number): number => (a.has(k) ? num(a.get(k)?.i as number) : d);
    const flt = (k: string, d: number): number => (a.has(k) ? (a.get(k)?.f ?? d) : d);
    const ints = (k: string): number[] | undefined => (a.has(k) ? (a.get(k)?.ints ?? []).map((v) => num(v as number)) : undefined);
    const ins = node.input ?? [];
    const out = (node.output ?? [])[0] ?? '';
    for (const extra of (node.output ?? []).slice(1)) {
      if (extra && (uses.get(extra) || outputs.includes(extra))) fail(`its output '${extra}' is used; Basin supports only the first output (inference mode)`);
    }
    const val = (i: number): Val => {
      const name = ins[i] ?? '';
      const v = vals.get(name);
      if (v) return v;
      if (consts.has(name) || inits.has(name)) return fail(`input '${name}' is a constant tensor; Basin supports constants only as weights of Gemm, MatMul, Conv and BatchNormalization`);
      return fail(`input '${name}' is not produced by an earlier node (the graph is not in topological order, or the value is missing)`);
    };
    const param = (i: number, role: ParamInfo['role'], layer: string, expectDims: number | undefined, layout: Omit<TorchLayout, 'name' | 'shape'>, convert: (v: Float32Array, dims: number[]) => { shape: number[]; values: Float32Array }): { ref: number; dims: number[] } => {
      const name = ins[i] ?? '';
      const t = inits.get(name);
      if (!t) return fail(`its ${role} '${name}' is not an initializer; Basin needs the weights stored in the file (computed weights are not supported)`);
      if (taken.has(name)) fail(`the initializer '${name}' is used by several nodes (shared weights are not supported)`);
      taken.add(name);
      const d = tensorDims(t, `initializer '${name}'`, file);
      if (expectDims !== undefined && d.length !== expectDims) fail(`its ${role} '${name}' has ${d.length} dimensions ([${d.join(', ')}]), not ${expectDims}`);
      const v = tensorValues(t, `initializer '${name}'`, file, maxParams);
      if (!v.float) return fail(`its ${role} '${name}' is an integer tensor`);
      const c = convert(v.float, d);
      const size = c.values.length;
      params.push({ name, layer, role, shape: c.shape, size, offset });
      values.push(c.values);
      torch.push({ name, shape: d, ...layout });
      offset += size;
      return { ref: params.length - 1, dims: d };
    };
    const biasParam = (i: number, layer: string, units: number): number | undefined => {
      if (!ins[i]) return undefined;
      return param(i, 'bias', layer, undefined, { kind: 'same' }, (v, d) => {
        if (v.length !== units || !(d.length === 1 || (d.length === 2 && d[0] === 1))) fail(`its bias has shape [${d.join(', ')}]; Basin needs [${units}]`);
        return { shape: [units], values: v };
      }).ref;
    };
    const dense = (x: Val, wi: number, transB: boolean, bi: number | undefined): void => {
      if (x.layout !== 'plain') fail(`its input has shape [${x.shape.join(', ')}] per sample; Basin supports it on vectors (flatten first)`);
      const inDim = x.shape[0];
      let units = 0;
      const kernel = param(wi, 'kernel', nodeName, 2, { kind: transB ? 'gemmT' : 'gemm', chw: x.chw }, (v, d) => {
        const [rows, cols] = transB ? [d[1], d[0]] : d;
        if (rows !== inDim) fail(`its weight has shape [${d.join(', ')}] but its input has ${inDim} features`);
        units = cols;
        const k = new Float32Array(rows * cols);
        const perm = rowPermutation(x.chw);
        for (let r = 0; r < rows; r++) {
          const p = perm ? perm(r) : r;
          for (let o = 0; o < cols; o++) k[r * cols + o] = transB ? v[o * rows + p] : v[p * cols + o];
        }
        return { shape: [rows, cols], values: k };
      });
      const bias = bi === undefined ? undefined : biasParam(bi, nodeName, units);
      const idx = push(nodeName, { kind: 'dense', units, activation: 'linear', kernel: kernel.ref, bias }, [x.node], [units]);
      vals.set(out, { node: idx, shape: [units], layout: 'plain' });
    };
    const spatial = (x: Val, kernel: [number, number]): { padding: Padding; strides: [number, number]; outHW: [number, number] } => {
      if (x.layout !== 'nchw') fail(`its input has shape [${x.shape.join(', ')}] per sample; Basin supports ${op} on images [C, H, W]`);
      const [, h, w] = x.shape;
      const s = ints('strides') ?? [1, 1];
      const dil = ints('dilations') ?? [1, 1];
      if (s.length !== 2 || s.some((v) => !(v >= 1))) fail(`strides [${s.join(', ')}] are not supported (two strides >= 1)`);
      if (dil.some((v) => v !== 1)) fail(`dilations [${dil.join(', ')}] are not supported (1 only)`);
      const strides: [number, number] = [s[0], s[1]];
      const autoPad = a.has('auto_pad') ? new TextDecoder().decode(a.get('auto_pad')?.s ?? new Uint8Array()) : 'NOTSET';
      const same = [h, w].map((n, k) => Math.max((Math.ceil(n / strides[k]) - 1) * strides[k] + kernel[k] - n, 0));
      const sameBefore = same.map((t) => Math.floor(t / 2));
      let padding: Padding;
      if (autoPad === 'VALID') padding = 'valid';
      else if (autoPad === 'SAME_UPPER') padding = 'same';
      else if (autoPad === 'NOTSET' || autoPad === '') {
        const p = ints('pads') ?? [0, 0, 0, 0];
        if (p.length !== 4) fail(`pads [${p.join(', ')}] are not supported (four values)`);
        if (p.every((v) => v === 0)) padding = 'valid';
        else if (p[0] === sameBefore[0] && p[1] === sameBefore[1] && p[2] === same[0] - sameBefore[0] && p[3] === same[1] - sameBefore[1]) padding = 'same';
        else {
          return fail(
            `pads [${p.join(', ')}] on a ${h}x${w} input are neither none nor the 'same' padding Basin's IR supports ([${sameBefore[0]}, ${sameBefore[1]}, ${same[0] - sameBefore[0]}, ${same[1] - sameBefore[1]}] here: ` +
              `with stride 1 and an odd kernel, padding = kernel_size // 2)`,
          );
        }
      } else return fail(`auto_pad '${autoPad}' is not supported (NOTSET, VALID, SAME_UPPER)`);
      const outHW: [number, number] =
        padding === 'same' ? [Math.ceil(h / strides[0]), Math.ceil(w / strides[1])] : [Math.floor((h - kernel[0]) / strides[0]) + 1, Math.floor((w - kernel[1]) / strides[1]) + 1];
      if (outHW[0] < 1 || outHW[1] < 1) fail(`its ${kernel.join('x')} window does not fit the ${h}x${w} input`);
      return { padding, strides, outHW };
    };
    const flatten = (x: Val): void => {
      if (x.layout === 'nchw') {
        const [c, h, w] = x.shape;
        const idx = push(nodeName, { kind: 'flatten' }, [x.node], [c * h * w]);
        vals.set(out, { node: idx, shape: [c * h * w], layout: 'plain', chw: [c, h, w] });
      } else vals.set(out, { ...x, shape: [x.shape.reduce((p, q) => p * q, 1)], layout: 'plain' });
    };

    switch (op) {
      case 'Identity':
      case 'Dropout':
        vals.set(out, val(0));
        return;
      case 'Constant': {
        const t = a.get('value')?.t;
        if (!t) return fail('only Constant nodes with a tensor value are supported');
        consts.set(out, tensorValues(t, `the value of ${where}`, file, maxParams));
        return;
      }
      case 'Relu':
      case 'Tanh':
      case 'Sigmoid':
      case 'Elu':
      case 'Selu':
      case 'Softplus': {
        const x = val(0);
        if (op === 'Elu' && Math.abs(flt('alpha', 1) - 1) > 1e-6) fail(`alpha ${flt('alpha', 1)} is not supported (1 only, nn.ELU's default)`);
        if (op === 'Selu' && (Math.abs(flt('alpha', 1.6732632) - 1.6732632) > 1e-5 || Math.abs(flt('gamma', 1.0507010) - 1.050701) > 1e-5)) fail('only the standard alpha and gamma are supported');
        const idx = push(nodeName, { kind: 'activation', activation: ACTIVATION_OPS[op] }, [x.node], nodes[x.node].outShape);
        vals.set(out, { ...x, node: idx });
        return;
      }
      case 'LeakyRelu': {
        const x = val(0);
        const alpha = shortestFloat32(flt('alpha', 0.01));
        if (!Number.isFinite(alpha)) fail(`alpha ${alpha} is not a finite number`);
        const idx = push(nodeName, { kind: 'leakyRelu', alpha }, [x.node], nodes[x.node].outShape);
        vals.set(out, { ...x, node: idx });
        return;
      }
      case 'Softmax':
      case 'LogSoftmax': {
        const x = val(0);
        const axis = int('axis', opset >= 13 ? -1 : 1);
        if (x.layout !== 'plain' || (axis !== 1 && axis !== -1)) fail(`${op} is supported over the features of a vector output (axis 1), not axis ${axis} of shape [${x.shape.join(', ')}]`);
        if (op === 'LogSoftmax') {
          if (!outputs.includes(out)) fail('LogSoftmax is supported only as the last node (the output), where the cross-entropy takes the logits before it');
          logSoftmaxOutput = true;
          vals.set(out, x);
          return;
        }
        const idx = push(nodeName, { kind: 'activation', activation: 'softmax' }, [x.node], nodes[x.node].outShape);
        vals.set(out, { ...x, node: idx });
        return;
      }
      case 'Gemm': {
        if (int('transA', 0) !== 0) fail('transA = 1 is not supported');
        if (flt('alpha', 1) !== 1 || (ins[2] && flt('beta', 1) !== 1)) fail(`alpha ${flt('alpha', 1)} and beta ${flt('beta', 1)} are not supported (1 only, as nn.Linear exports)`);
        dense(val(0), 1, int('transB', 0) === 1, ins[2] ? 2 : undefined);
        return;
      }
      case 'MatMul':
        dense(val(0), 1, false, undefined);
        return;
      case 'Add': {
        const c0 = vals.has(ins[0] ?? '') ? undefined : constOrInit(ins[0]);
        const c1 = vals.has(ins[1] ?? '') ? undefined : constOrInit(ins[1]);
        if (c0 || c1) {
          // MatMul + Add: the bias of the Dense node the MatMul made.
          const x = val(c0 ? 1 : 0);
          const n = nodes[x.node];
          const bi = c0 ? 0 : 1;
          if (n.op.kind !== 'dense' || n.op.bias !== undefined || (uses.get(ins[1 - bi] ?? '') ?? 0) !== 1) {
            return fail('adding a constant tensor is supported only as the bias of a MatMul');
          }
          n.op.bias = biasParam(bi, n.name, n.op.units);
          vals.set(out, x);
          return;
        }
        const x = val(0);
        const y = val(1);
        if (x.shape.join(',') !== y.shape.join(',') || x.layout !== y.layout || String(x.chw) !== String(y.chw)) {
          fail(`adding shapes [${x.shape.join(', ')}] and [${y.shape.join(', ')}] is not supported (the same shapes only, no broadcasting)`);
        }
        const idx = push(nodeName, { kind: 'add' }, [x.node, y.node], nodes[x.node].outShape);
        vals.set(out, { ...x, node: idx });
        return;
      }
      case 'Concat': {
        const xs = ins.map((_, i) => val(i));
        const axis = int('axis', 1);
        const first = xs[0];
        if (first.layout === 'nchw' && xs.every((v) => v.layout === 'nchw' && v.shape[1] === first.shape[1] && v.shape[2] === first.shape[2]) && (axis === 1 || axis === -3)) {
          const c = xs.reduce((s, v) => s + v.shape[0], 0);
          const [, h, w] = first.shape;
          const idx = push(nodeName, { kind: 'concatenate' }, xs.map((v) => v.node), [h, w, c]);
          vals.set(out, { node: idx, shape: [c, h, w], layout: 'nchw' });
          return;
        }
        if (xs.every((v) => v.layout === 'plain' && !v.chw) && (axis === 1 || axis === -1)) {
          const f = xs.reduce((s, v) => s + v.shape[0], 0);
          const idx = push(nodeName, { kind: 'concatenate' }, xs.map((v) => v.node), [f]);
          vals.set(out, { node: idx, shape: [f], layout: 'plain' });
          return;
        }
        return fail(`concatenation along axis ${axis} of shapes ${xs.map((v) => `[${v.shape.join(', ')}]`).join(', ')} is not supported (channels of images, or features of vectors)`);
      }
      case 'Conv': {
        const x = val(0);
        if (int('group', 1) !== 1) fail(`group ${int('group', 1)} is not supported (grouped and depthwise convolutions are not)`);
        const wt = inits.get(ins[1] ?? '');
        const wd = wt ? tensorDims(wt, `initializer '${ins[1]}'`, file) : [];
        if (wd.length !== 4) fail(`its weight '${ins[1]}' must be a 4-D initializer [O, I, kH, kW] (2-D convolution)`);
        if (wd[1] !== x.shape[0]) fail(`its weight has shape [${wd.join(', ')}] but its input has ${x.shape[0]} channels`);
        const ks = ints('kernel_shape');
        if (ks && (ks[0] !== wd[2] || ks[1] !== wd[3])) fail(`kernel_shape [${ks.join(', ')}] disagrees with the weight's shape [${wd.join(', ')}]`);
        const { padding, strides, outHW } = spatial(x, [wd[2], wd[3]]);
        const kernel = param(1, 'kernel', nodeName, 4, { kind: 'oihw' }, (v, d) => ({ shape: [d[2], d[3], d[1], d[0]], values: oihwToHwio(v, d) }));
        const bias = biasParam(2, nodeName, wd[0]);
        const idx = push(nodeName, { kind: 'conv2d', filters: wd[0], kernelSize: [wd[2], wd[3]], strides, padding, activation: 'linear', kernel: kernel.ref, bias }, [x.node], [outHW[0], outHW[1], wd[0]]);
        vals.set(out, { node: idx, shape: [wd[0], outHW[0], outHW[1]], layout: 'nchw' });
        return;
      }
      case 'MaxPool':
      case 'AveragePool': {
        const x = val(0);
        const ks = ints('kernel_shape');
        if (!ks || ks.length !== 2) return fail('kernel_shape must give two sizes (2-D pooling)');
        if (int('ceil_mode', 0) !== 0) fail('ceil_mode = 1 is not supported');
        if (int('storage_order', 0) !== 0) fail('storage_order = 1 is not supported');
        const { padding, strides, outHW } = spatial(x, [ks[0], ks[1]]);
        if (op === 'AveragePool' && padding === 'same' && int('count_include_pad', 0) !== 0) fail("count_include_pad = 1 with padding is not supported (Basin's average pooling averages in-bounds elements)");
        const idx = push(nodeName, { kind: op === 'MaxPool' ? 'maxPool2d' : 'avgPool2d', poolSize: [ks[0], ks[1]], strides, padding }, [x.node], [outHW[0], outHW[1], x.shape[0]]);
        vals.set(out, { node: idx, shape: [x.shape[0], outHW[0], outHW[1]], layout: 'nchw' });
        return;
      }
      case 'GlobalAveragePool': {
        const x = val(0);
        if (x.layout !== 'nchw') fail(`its input has shape [${x.shape.join(', ')}] per sample; Basin supports it on images [C, H, W]`);
        const idx = push(nodeName, { kind: 'globalAvgPool2d' }, [x.node], [x.shape[0]]);
        vals.set(out, { node: idx, shape: [x.shape[0], 1, 1], layout: 'gap' });
        return;
      }
      case 'Flatten': {
        const x = val(0);
        if (int('axis', 1) !== 1) fail(`axis ${int('axis', 1)} is not supported (1: keep the batch axis, flatten the rest)`);
        flatten(x);
        return;
      }
      case 'Reshape': {
        const x = val(0);
        const target = constOrInit(ins[1])?.ints;
        if (!target) return fail('its shape is not a constant; Basin supports Reshape to a constant [batch, -1] (use torch.flatten(x, 1))');
        const total = x.shape.reduce((p, q) => p * q, 1);
        const lead = target[0] === -1 || target[0] === 0 || target[0] === batchDim;
        const ok = target.length === 2 && ((lead && (target[1] === -1 || target[1] === total)) || (target[0] === -1 && target[1] === total));
        if (!ok) fail(`reshaping [${x.shape.join(', ')}] to [${target.join(', ')}] is not supported (only the flatten kind, [batch, -1])`);
        flatten(x);
        return;
      }
      case 'BatchNormalization': {
        const x = val(0);
        if (x.layout === 'gap' || x.chw) fail('batch normalization of a pooled or flattened image is not supported');
        if (int('training_mode', 0) !== 0) fail('training_mode = 1 is not supported (export the model in eval mode)');
        if (int('spatial', 1) !== 1) fail('spatial = 0 is not supported');
        const c = x.shape[0];
        const same = (role: ParamInfo['role']) => (v: Float32Array, d: number[]) => {
          if (v.length !== c || d.length !== 1) fail(`its ${role} has shape [${d.join(', ')}]; Basin needs [${c}]`);
          return { shape: [c], values: v };
        };
        const gamma = param(1, 'gamma', nodeName, 1, { kind: 'same' }, same('gamma')).ref;
        const beta = param(2, 'beta', nodeName, 1, { kind: 'same' }, same('beta')).ref;
        const stat = (i: number, what: string): number => {
          const v = constOrInit(ins[i]);
          if (!v?.float || v.float.length !== c) return fail(`its running ${what} '${ins[i]}' must be a float initializer of ${c} values`);
          constants.push({ name: ins[i] ?? what, shape: [c], values: v.float });
          return constants.length - 1;
        };
        const movingMean = stat(3, 'mean');
        const movingVariance = stat(4, 'variance');
        const idx = push(nodeName, { kind: 'batchNorm', epsilon: flt('epsilon', 1e-5), gamma, beta, movingMean, movingVariance }, [x.node], nodes[x.node].outShape);
        vals.set(out, { ...x, node: idx });
        return;
      }
      case 'Shape':
      case 'Gather':
      case 'Unsqueeze':
        return fail(`this op is not supported: Basin reads fixed-shape graphs (x.view(x.size(0), -1) exports Shape/Gather/Concat nodes: use torch.flatten(x, 1) instead); supported: ${SUPPORTED_ONNX_OPS.join(', ')}`);
      default:
        return fail(`this op is not supported; supported: ${SUPPORTED_ONNX_OPS.join(', ')}`);
    }
  });

  function constOrInit(name: string | undefined): ConstVal | undefined {
    return name ? constOf(name) : undefined;
  }

  const outVal = vals.get(outputs[0]);
  if (!outVal) throw new InputError(`the graph output '${outputs[0]}' is not computed by a supported node`, file);
  if (outVal.layout !== 'plain' || outVal.chw) {
    throw new InputError(`the model outputs shape [${outVal.shape.join(', ')}] per sample; Basin reads ONNX models whose output is a vector per sample (classifiers, regressors)`, file);
  }
  const ir: ModelIR = { name: graph.name || 'onnx', nodes, input: 0, output: outVal.node, params, constants, numParams: offset };
  return { ir, values, torch, logSoftmaxOutput, opset, producer: `${model.producerName ?? ''} ${model.producerVersion ?? ''}`.trim(), nchwInput };
}

/**
 * The shortest decimal that rounds to the same float32 as `f`: ONNX stores float attributes as
 * float32, so PyTorch's negative_slope 0.2 arrives as 0.20000000298; this gives 0.2 back, the
 * value the model was written with (and computes with in float64).
 */
export function shortestFloat32(f: number): number {
  if (!Number.isFinite(f)) return f;
  const want = Math.fround(f);
  for (let p = 1; p <= 9; p++) {
    const c = Number(f.toPrecision(p));
    if (Math.fround(c) === want) return c;
  }
  return f;
}

/** Basin's flattened row r (order H,W,C) -> PyTorch's flattened index (order C,H,W). */
export function rowPermutation(chw: [number, number, number] | undefined): ((r: number) => number) | undefined {
  if (!chw) return undefined;
  const [c, h, w] = chw;
  return (r) => {
    const ch = r % c;
    const hw = (r - ch) / c;
    return ch * h * w + hw;
  };
}

/** A Conv kernel [O, I, kH, kW] (row-major) as [kH, kW, I, O]. */
export function oihwToHwio(v: Float32Array, d: number[]): Float32Array {
  const [o, i, kh, kw] = d;
  const k = new Float32Array(v.length);
  for (let a = 0; a < kh; a++) for (let b = 0; b < kw; b++) for (let c = 0; c < i; c++) for (let e = 0; e < o; e++) k[((a * kw + b) * i + c) * o + e] = v[((e * i + c) * kh + a) * kw + b];
  return k;
}

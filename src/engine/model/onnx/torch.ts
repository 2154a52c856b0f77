/**
 * Maps Basin's flat parameter vector of an imported ONNX model to PyTorch's parameters and back.
 *
 * Basin's flat vector is the concatenation of `ir.params` in the order the graph's nodes use
 * them (for torch.onnx.export output: the order of the forward pass), each row-major in Basin's
 * layout: Dense kernels [in, out] (PyTorch's nn.Linear weight is [out, in]), Conv kernels
 * [kH, kW, in, out] (PyTorch's [out, in, kH, kW]), biases and BatchNorm scale/bias unchanged; a
 * Dense kernel fed by a flattened image has its rows in Basin's H,W,C order (PyTorch's C,H,W).
 * PyTorch's order is `named_parameters()`, each tensor flattened row-major (`torch.cat([p.reshape(-1)
 * for p in model.parameters()])`).
 */
import { InputError } from '../../errors';
import type { OnnxImported, TorchLayout } from './ops';
import { rowPermutation } from './ops';

/** For each Basin element of one parameter, the index of the same weight in the ONNX tensor. */
export function torchIndex(layout: TorchLayout): Int32Array {
  const d = layout.shape;
  const size = d.reduce((a, b) => a * b, 1);
  const src = new Int32Array(size);
  switch (layout.kind) {
    case 'same':
      for (let i = 0; i < size; i++) src[i] = i;
      break;
    case 'oihw': {
      const [o, i, kh, kw] = d;
      for (let a = 0; a < kh; a++) for (let b = 0; b < kw; b++) for (let c = 0; c < i; c++) for (let e = 0; e < o; e++) src[((a * kw + b) * i + c) * o + e] = ((e * i + c) * kh + a) * kw + b;
      break;
    }
    case 'gemm':
    case 'gemmT': {
      const [rows, cols] = layout.kind === 'gemmT' ? [d[1], d[0]] : [d[0], d[1]];
      const perm = rowPermutation(layout.chw);
      for (let r = 0; r < rows; r++) {
        const p = perm ? perm(r) : r;
        for (let o = 0; o < cols; o++) src[r * cols + o] = layout.kind === 'gemmT' ? o * rows + p : p * cols + o;
      }
      break;
    }
  }
  return src;
}

/**
 * Basin's flat vector `theta` as PyTorch's: the parameters named `names` (PyTorch's
 * `named_parameters()` names; by default the initializers' order in the file), each in PyTorch's
 * layout, concatenated.
 */
export function toTorchOrder(model: Pick<OnnxImported, 'ir' | 'torch'>, theta: ArrayLike<number>, names?: string[]): Float64Array {
  const order = names ?? model.torch.map((t) => t.name);
  const byName = new Map(model.torch.map((t, i) => [t.name, i]));
  const total = order.reduce((s, n) => s + (model.ir.params[byName.get(n) ?? -1]?.size ?? 0), 0);
  if (order.length !== model.torch.length || total !== model.ir.numParams) {
    const missing = model.torch.filter((t) => !order.includes(t.name)).map((t) => t.name);
    const unknown = order.filter((n) => !byName.has(n));
    throw new InputError(`the parameter names do not match the model's (missing: ${missing.join(', ') || 'none'}; unknown: ${unknown.join(', ') || 'none'})`);
  }
  const out = new Float64Array(model.ir.numParams);
  let at = 0;
  for (const n of order) {
    const i = byName.get(n) as number;
    const p = model.ir.params[i];
    const src = torchIndex(model.torch[i]);
    for (let k = 0; k < p.size; k++) out[at + src[k]] = theta[p.offset + k];
    at += p.size;
  }
  return out;
}

/** The inverse of `toTorchOrder`: PyTorch's flat vector (in `names` order) as Basin's. */
export function fromTorchOrder(model: Pick<OnnxImported, 'ir' | 'torch'>, flat: ArrayLike<number>, names?: string[]): Float64Array {
  const order = names ?? model.torch.map((t) => t.name);
  const byName = new Map(model.torch.map((t, i) => [t.name, i]));
  const theta = new Float64Array(model.ir.numParams);
  let at = 0;
  for (const n of order) {
    const i = byName.get(n);
    if (i === undefined) throw new InputError(`unknown parameter name '${n}'`);
    const p = model.ir.params[i];
    const src = torchIndex(model.torch[i]);
    for (let k = 0; k < p.size; k++) theta[p.offset + k] = flat[at + src[k]];
    at += p.size;
  }
  if (at !== model.ir.numParams) throw new InputError(`the names cover ${at} of the model's ${model.ir.numParams} parameters`);
  return theta;
}

/**
 * A small builder of ONNX graphs: nodes, initializers (constants), inputs and outputs, serialized
 * to ModelProto bytes with `onnx-proto` (protobufjs code generated from the official onnx.proto).
 * Values are named strings; shapes are tracked one level up (`ad.ts`), not here.
 *
 * The models use ONNX IR version 8 and opset 17 (ScatterElements with reduction 'add' needs 16).
 */
import { onnx } from 'onnx-proto';

export const OPSET = 17;

/** Encoding passes (see Graph.live); tests and the benchmark switch them off to compare. */
export const ENCODE_PASSES = { prune: true, fuseGemmAdd: true };
const IR_VERSION = 8;

/**
 * An attribute: an integer number is INT, any other number FLOAT, an array INTS, a string STRING,
 * `{ f }` a FLOAT even when integral (Clip bounds, alpha = 1), `{ floats }` FLOATS.
 */
export type AttrValue = number | number[] | string | { f: number } | { floats: number[] };

export type ElemType = 'float' | 'int64';

const ELEM: Record<ElemType, number> = { float: onnx.TensorProto.DataType.FLOAT, int64: onnx.TensorProto.DataType.INT64 };
const BOOL = onnx.TensorProto.DataType.BOOL;

/** Ops whose output is a boolean whatever their inputs. */
const PREDICATES = new Set(['Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'And', 'Or', 'Not', 'Xor', 'IsNaN', 'IsInf']);

/**
 * A graph split in two at one input (`Graph.split`): `pre`, the nodes that do not depend on it,
 * run once and hand their values on as `carried` outputs; `post`, the nodes that do, read those as
 * inputs. For an H·v graph split at `v`: the forward pass, the backward pass's cotangents and the
 * masks of the parameters' point, computed once for every product at that point.
 */
export interface SplitGraph {
  pre: Uint8Array;
  post: Uint8Array;
  /** The graph inputs `pre` reads. */
  preInputs: string[];
  /** The graph inputs `post` reads, besides the carried values. */
  postInputs: string[];
  /** Values `pre` computes and `post` reads (pre's outputs, post's inputs). */
  carried: string[];
  /** Nodes in each part. */
  preNodes: number;
  postNodes: number;
}

function attribute(name: string, v: AttrValue): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') {
    return Number.isInteger(v) && !Object.is(v, -0) ? { name, type: T.INT, i: v } : { name, type: T.FLOAT, f: v };
  }
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ('f' in v) return { name, type: T.FLOAT, f: v.f };
  return { name, type: T.FLOATS, floats: v.floats };
}

function bytesOf(a: Float32Array | BigInt64Array): Uint8Array {
  return new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}

export class Graph {
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly inits: onnx.ITensorProto[] = [];
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private readonly constCache = new Map<string, string>();
  /** Static shapes of values, where the builder one level up knows them (-1: the batch axis). */
  private readonly shapes = new Map<string, readonly number[]>();
  private next = 0;

  constructor(readonly name = 'basin') {}

  /** A fresh value name. */
  fresh(prefix = 't'): string {
    return `${prefix}_${this.next++}`;
  }

  /** Declares a graph input; a dimension given as a string is symbolic (dynamic). */
  input(name: string, type: ElemType, dims: (number | string)[]): string {
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  /** Declares `value` a graph output under `name` (an Identity when the names differ). */
  output(value: string, name: string, type: ElemType, dims: (number | string)[]): string {
    if (value !== name) this.nodes.push({ opType: 'Identity', input: [value], output: [name], name: `n${this.nodes.length}` });
    this.outputs.push(valueInfo(name, type, dims));
    return name;
  }

  /** Emits one node (attributes: see AttrValue); returns its output names. */
  node(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, nOut = 1): string[] {
    const outs = Array.from({ length: nOut }, () => this.fresh(opType.toLowerCase()));
    const attrList = Object.entries(attrs).map(([k, v]) => attribute(k, v));
    this.nodes.push({ opType, input: inputs, output: outs, attribute: attrList, name: `n${this.nodes.length}` });
    return outs;
  }

  /** One-output node. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    return this.node(opType, inputs, attrs, 1)[0];
  }

  /** A float32 constant (an initializer), shared between equal small constants. */
  constFloat(values: ArrayLike<number>, dims: number[]): string {
    const small = values.length <= 16;
    const key = small ? `f${dims.join('x')}:${Array.from(values).join(',')}` : '';
    const hit = small ? this.constCache.get(key) : undefined;
    if (hit) return hit;
    const name = this.fresh('c');
    this.inits.push({ name, dims, dataType: ELEM.float, rawData: bytesOf(Float32Array.from(values)) });
    if (small) this.constCache.set(key, name);
    return name;
  }

  /** A float32 scalar constant. */
  scalar(v: number): string {
    return this.constFloat([v], []);
  }

  /** An int64 constant (shapes, axes, indices), shared between equal ones. */
  constInt64(values: number[], dims: number[] = [values.length]): string {
    const key = `i${dims.join('x')}:${values.join(',')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = this.fresh('c');
    this.inits.push({ name, dims, dataType: ELEM.int64, rawData: bytesOf(BigInt64Array.from(values, (v) => BigInt(v))) });
    this.constCache.set(key, name);
    return name;
  }

  // Convenience: the ops the emitter uses most.
  matmul(a: string, b: string): string {
    return this.op('MatMul', [a, b]);
  }
  gemm(a: string, b: string, transA = false, transB = false): string {
    return this.op('Gemm', [a, b], { transA: transA ? 1 : 0, transB: transB ? 1 : 0 });
  }
  add(a: string, b: string): string {
    return this.op('Add', [a, b]);
  }
  sub(a: string, b: string): string {
    return this.op('Sub', [a, b]);
  }
  mul(a: string, b: string): string {
    return this.op('Mul', [a, b]);
  }
  reshape(a: string, shape: number[]): string {
    return this.op('Reshape', [a, this.constInt64(shape)]);
  }
  transpose(a: string, perm: number[]): string {
    return this.op('Transpose', [a], { perm });
  }
  reduceSum(a: string, axes: number[] | undefined, keepdims: boolean): string {
    return this.op('ReduceSum', axes === undefined ? [a] : [a, this.constInt64(axes)], { keepdims: keepdims ? 1 : 0 });
  }
  slice(a: string, starts: number[], ends: number[], axes: number[]): string {
    return this.op('Slice', [a, this.constInt64(starts), this.constInt64(ends), this.constInt64(axes)]);
  }

  /** Records the static shape of `name` (used to fuse nodes safely when encoding). */
  noteShape(name: string, shape: readonly number[]): void {
    this.shapes.set(name, shape);
  }

  get nodeCount(): number {
    return this.nodes.length;
  }

  /**
   * The nodes that some output depends on, in emission order (a topological order), and the
   * initializers they read. Reverse-mode differentiation emits values no output needs (the
   * gradient itself, inside an H·v graph), and ONNX Runtime runs dead nodes: on the MLP's H·v they
   * were 3 of its 22 matrix products.
   */
  live(): { nodes: onnx.INodeProto[]; inits: onnx.ITensorProto[] } {
    const nodes = ENCODE_PASSES.fuseGemmAdd ? this.fuseGemmAdd() : this.nodes;
    if (!ENCODE_PASSES.prune) return { nodes, inits: this.inits };
    const needed = new Set(this.outputs.map((o) => o.name as string));
    const keep: boolean[] = new Array(nodes.length).fill(false);
    for (let i = nodes.length - 1; i >= 0; i--) {
      const n = nodes[i];
      if (!(n.output ?? []).some((o) => needed.has(o))) continue;
      keep[i] = true;
      for (const input of n.input ?? []) if (input) needed.add(input);
    }
    return { nodes: nodes.filter((_, i) => keep[i]), inits: this.inits.filter((t) => needed.has(t.name as string)) };
  }

  /**
   * `Add(Gemm(a, b), c)` as `Gemm(a, b, c)` when the product is used only by the sum and c has the
   * product's shape or is a bias row (Gemm's C broadcasts one way only): the product rule's and
   * the cotangents' sums of an H·v graph and dense layers' biases, one pass over memory fewer each. Returns a new node list; `this.nodes` is kept.
   */
  private fuseGemmAdd(): onnx.INodeProto[] {
    const uses = new Map<string, number>();
    for (const n of this.nodes) for (const i of n.input ?? []) uses.set(i, (uses.get(i) ?? 0) + 1);
    for (const o of this.outputs) uses.set(o.name as string, (uses.get(o.name as string) ?? 0) + 1);
    const producer = new Map<string, number>();
    this.nodes.forEach((n, i) => (n.output ?? []).forEach((o) => producer.set(o, i)));
    const out = this.nodes.map((n) => ({ ...n }));
    const dropped = new Set<number>();
    // c fits Gemm's C when it has the product's shape, or is a row [N] of a product [M, N] (a
    // dense layer's bias: Gemm broadcasts C one way only, to the product's shape).
    const fits = (product: string, c: string): boolean => {
      const sp = this.shapes.get(product);
      const sc = this.shapes.get(c);
      if (sp === undefined || sc === undefined) return false;
      if (sp.length === sc.length && sp.every((d, i) => d === sc[i])) return true;
      return sp.length === 2 && sc.length === 1 && sc[0] === sp[1] && sc[0] >= 0;
    };
    out.forEach((n, i) => {
      if (n.opType !== 'Add' || n.input?.length !== 2) return;
      for (const [k, other] of [[0, 1], [1, 0]] as const) {
        const a = n.input[k];
        const c = n.input[other];
        const pi = producer.get(a);
        if (pi === undefined || dropped.has(pi) || pi > i) continue;
        const p = out[pi];
        const plain = p.opType === 'Gemm' && p.input?.length === 2 && !(p.attribute ?? []).some((t) => t.name === 'alpha' || t.name === 'beta');
        // c must exist before the product runs (the fused node sits at the product's place).
        const ci = producer.get(c);
        if (!plain || uses.get(a) !== 1 || !fits(a, c) || (ci !== undefined && ci > pi)) continue;
        out[pi] = { ...p, input: [...(p.input ?? []), c], output: [...(n.output ?? [])] };
        dropped.add(i);
        return;
      }
    });
    return out.filter((_, i) => !dropped.has(i));
  }

  /** The serialized ModelProto, dead nodes and unused initializers left out (see `live`). */
  encode(): Uint8Array {
    const { nodes, inits } = this.live();
    return this.model(this.name, nodes, inits, this.inputs, this.outputs);
  }

  private model(name: string, nodes: onnx.INodeProto[], inits: onnx.ITensorProto[], input: onnx.IValueInfoProto[], output: onnx.IValueInfoProto[]): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: 'basin',
      opsetImport: [{ domain: '', version: OPSET }],
      graph: { name, node: nodes, initializer: inits, input, output },
    });
    return onnx.ModelProto.encode(model).finish();
  }

  /**
   * The live graph (see `live`) split at the graph input `at` (see SplitGraph), or undefined when
   * no node depends on it or every output is independent of it. Carried values are declared with
   * the shapes noted (`noteShape`; -1, the batch axis, as an unnamed dimension) and the element types the ops
   * give them.
   */
  split(at: string): SplitGraph | undefined {
    const { nodes, inits } = this.live();
    const dependent = new Set([at]);
    const isPost = nodes.map((n) => {
      const d = (n.input ?? []).some((i) => dependent.has(i));
      if (d) for (const o of n.output ?? []) dependent.add(o);
      return d;
    });
    const outputs = this.outputs.map((o) => o.name as string);
    if (!isPost.some(Boolean) || !outputs.every((o) => dependent.has(o))) return undefined;
    const pre = nodes.filter((_, i) => !isPost[i]);
    const post = nodes.filter((_, i) => isPost[i]);
    const produced = new Set(pre.flatMap((n) => n.output ?? []));
    const postReads = new Set(post.flatMap((n) => n.input ?? []));
    const carried = [...produced].filter((v) => postReads.has(v));
    const types = this.elemTypes(nodes, inits);
    const info = (v: string): onnx.IValueInfoProto => {
      const shape = this.shapes.get(v);
      const type = types.get(v) ?? ELEM.float;
      return { name: v, type: { tensorType: { elemType: type, ...(shape ? { shape: { dim: shape.map((d) => (d < 0 ? {} : { dimValue: d })) } } : {}) } } };
    };
    const readBy = (part: onnx.INodeProto[]): Set<string> => new Set(part.flatMap((n) => n.input ?? []));
    const preRead = readBy(pre);
    const preInputs = this.inputs.filter((i) => preRead.has(i.name as string));
    const postInputs = this.inputs.filter((i) => postReads.has(i.name as string));
    const initsOf = (read: Set<string>): onnx.ITensorProto[] => inits.filter((t) => read.has(t.name as string));
    return {
      pre: this.model(`${this.name}-pre`, pre, initsOf(preRead), preInputs, carried.map(info)),
      post: this.model(`${this.name}-post`, post, initsOf(postReads), [...postInputs, ...carried.map(info)], this.outputs),
      preInputs: preInputs.map((i) => i.name as string),
      postInputs: postInputs.map((i) => i.name as string),
      carried,
      preNodes: pre.length,
      postNodes: post.length,
    };
  }

  /** Element types (onnx.TensorProto.DataType) of the values of `nodes`, by the rules of the ops Basin emits. */
  private elemTypes(nodes: onnx.INodeProto[], inits: onnx.ITensorProto[]): Map<string, number> {
    const types = new Map<string, number>();
    for (const i of this.inputs) types.set(i.name as string, i.type?.tensorType?.elemType ?? ELEM.float);
    for (const t of inits) types.set(t.name as string, t.dataType ?? ELEM.float);
    for (const n of nodes) {
      const first = (n.input ?? []).find((i) => i !== '');
      const attr = (name: string): onnx.IAttributeProto | undefined => (n.attribute ?? []).find((a) => a.name === name);
      (n.output ?? []).forEach((o, k) => {
        let t: number;
        if (PREDICATES.has(n.opType as string)) t = BOOL;
        else if (n.opType === 'Cast') t = Number(attr('to')?.i ?? ELEM.float);
        else if (n.opType === 'Shape' || n.opType === 'ArgMax' || n.opType === 'ArgMin' || (n.opType === 'MaxPool' && k === 1)) t = ELEM.int64;
        else if (n.opType === 'ConstantOfShape') t = attr('value')?.t?.dataType ?? ELEM.float;
        else if (n.opType === 'Where') t = types.get((n.input ?? [])[1]) ?? ELEM.float;
        else t = (first !== undefined ? types.get(first) : undefined) ?? ELEM.float;
        types.set(o, t);
      });
    }
    return types;
  }
}

function valueInfo(name: string, type: ElemType, dims: (number | string)[]): onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: ELEM[type], shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  };
}

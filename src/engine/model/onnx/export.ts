/**
 * Writes an imported ONNX model back as ONNX with new parameter values: the training checkpoints
 * of a run whose model came from a `.onnx` file.
 *
 * The original file's bytes are rewritten at the protobuf wire level: in `ModelProto.graph`, each
 * initializer that is one of Basin's parameters is replaced by a TensorProto of the same name,
 * data type and dimensions holding the new values in PyTorch's layout (`torch.ts`), and every
 * other byte (the graph's nodes, constants, running statistics, metadata, fields Basin does not
 * know) is copied unchanged. An initializer whose values were in an external file is written
 * inline, so a checkpoint is one self-contained file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { BasinError } from '../../errors';
import { MAX_ONNX_BYTES } from '../../limits';
import { makeDirs } from '../../files';
import type { ModelIR } from '../ir';
import { readRegularFile } from '../io';
import { decodeOnnx } from './import';
import { lowerOnnx, type OnnxImported } from './ops';
import { isExternal, tensorValues } from './tensors';
import { torchIndex } from './torch';

/** The original model a run's ONNX checkpoints are written from. */
export interface OnnxSource {
  file: string;
  bytes: Uint8Array;
  imported: OnnxImported;
  /** The bound on any tensor's values (as when the model was loaded). */
  maxParams: number;
}

/**
 * Reads the ONNX model a problem was loaded from, for writing checkpoints, and checks it still has
 * the problem's parameters (names and shapes): a file changed since it was loaded is refused, and
 * so is one whose bytes cannot be rewritten (checked here, before any training).
 */
export function openOnnxSource(file: string, ir: ModelIR, maxParams: number): OnnxSource {
  const buf = readRegularFile(file, 'the .onnx file size', MAX_ONNX_BYTES, 'Basin reads models up to 50 million parameters');
  // A plain Uint8Array view: protobufjs reads a Node Buffer with the deprecated Buffer() constructor.
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  const imported = lowerOnnx(decodeOnnx(bytes, file), file, maxParams);
  const a = imported.ir.params;
  const same = a.length === ir.params.length && a.every((p, i) => p.name === ir.params[i].name && p.shape.join(',') === ir.params[i].shape.join(','));
  if (!same) throw new BasinError('the model file changed since it was loaded (its parameters differ): load it again', file);
  const src = { file, bytes, imported, maxParams };
  // Rewritten once now, so a file Basin cannot write back is refused before any training.
  const theta = new Float32Array(imported.ir.numParams);
  imported.ir.params.forEach((p, i) => theta.set(imported.values[i], p.offset));
  onnxWithParameters(src, theta);
  return src;
}

// Protobuf wire format: each field is a varint key (field number << 3 | wire type), then a value.
const VARINT = 0;
const FIXED64 = 1;
const LENGTH = 2;
const FIXED32 = 5;
/** ModelProto.graph and GraphProto.initializer (onnx.proto). */
const MODEL_GRAPH = 7;
const GRAPH_INITIALIZER = 5;

interface Field {
  field: number;
  /** The whole field: key and value. */
  start: number;
  end: number;
  /** For a length-delimited field: its payload. */
  body?: [number, number];
}

function varint(b: Uint8Array, at: number, file: string): [number, number] {
  let v = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (at + i >= b.length) break;
    const byte = b[at + i];
    v += (byte & 0x7f) * mul;
    mul *= 128;
    if (byte < 0x80) return [v, at + i + 1];
  }
  throw new BasinError('not a valid ONNX model: a protobuf varint is cut short', file);
}

/** The fields of one protobuf message, in file order. */
function fields(b: Uint8Array, file: string): Field[] {
  const out: Field[] = [];
  let at = 0;
  while (at < b.length) {
    const start = at;
    const [key, next] = varint(b, at, file);
    at = next;
    const type = key % 8;
    const field = Math.floor(key / 8);
    let body: [number, number] | undefined;
    if (type === VARINT) at = varint(b, at, file)[1];
    else if (type === FIXED64) at += 8;
    else if (type === FIXED32) at += 4;
    else if (type === LENGTH) {
      const [len, from] = varint(b, at, file);
      body = [from, from + len];
      at = from + len;
    } else throw new BasinError(`not a valid ONNX model: protobuf wire type ${type} is not supported`, file);
    if (at > b.length) throw new BasinError('not a valid ONNX model: a protobuf field runs past the end of the file', file);
    out.push({ field, start, end: at, body });
  }
  return out;
}

function encodeVarint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/** A length-delimited field with the given payload. */
function lengthField(field: number, payload: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([...encodeVarint(field * 8 + LENGTH), ...encodeVarint(payload.length)]), payload]);
}

// TensorProto fields that hold or locate values (onnx.proto): float_data, raw_data, double_data,
// external_data, data_location. A rewritten tensor keeps every other field's bytes.
const TENSOR_RAW_DATA = 9;
const TENSOR_VALUE_FIELDS = new Set([4, TENSOR_RAW_DATA, 10, 13, 14]);

/** The tensor `bytes` (a TensorProto) with its values replaced by `raw` (raw_data), every other field kept. */
function withRawData(bytes: Uint8Array, raw: Uint8Array, file: string): Uint8Array {
  const parts: Uint8Array[] = [];
  let placed = false;
  for (const f of fields(bytes, file)) {
    if (!TENSOR_VALUE_FIELDS.has(f.field)) {
      parts.push(bytes.subarray(f.start, f.end));
      continue;
    }
    if (!placed) parts.push(lengthField(TENSOR_RAW_DATA, raw));
    placed = true;
  }
  if (!placed) parts.push(lengthField(TENSOR_RAW_DATA, raw));
  return Buffer.concat(parts);
}

/** PyTorch's tensor for parameter `i` of `imported` from Basin's flat vector, in the initializer's data type (float32 or float64). */
function parameterTensor(imported: OnnxImported, i: number, theta: ArrayLike<number>, original: onnx.ITensorProto, bytes: Uint8Array, file: string): Uint8Array {
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new BasinError('ONNX checkpoints are written on little-endian machines only');
  const p = imported.ir.params[i];
  const src = torchIndex(imported.torch[i]);
  const values = original.dataType === onnx.TensorProto.DataType.DOUBLE ? new Float64Array(p.size) : new Float32Array(p.size);
  for (let k = 0; k < p.size; k++) values[src[k]] = theta[p.offset + k];
  return withRawData(bytes, new Uint8Array(values.buffer, values.byteOffset, values.byteLength), file);
}

/** A tensor whose values were in an external file, with the same values inline. */
function inlineTensor(t: onnx.TensorProto, bytes: Uint8Array, file: string, maxValues: number): Uint8Array {
  const v = tensorValues(t, `initializer '${t.name}'`, file, maxValues);
  let a: Float32Array | Float64Array | BigInt64Array | Int32Array;
  if (v.float) a = t.dataType === onnx.TensorProto.DataType.DOUBLE ? Float64Array.from(v.float) : v.float;
  else a = t.dataType === onnx.TensorProto.DataType.INT64 ? BigInt64Array.from((v.ints ?? []).map(BigInt)) : Int32Array.from(v.ints ?? []);
  return withRawData(bytes, new Uint8Array(a.buffer, a.byteOffset, a.byteLength), file);
}

/** The source model's bytes with its parameters set to `theta` (Basin's flat vector). */
export function onnxWithParameters(src: OnnxSource, theta: ArrayLike<number>): Uint8Array {
  const { bytes, imported, file } = src;
  if (theta.length !== imported.ir.numParams) throw new BasinError(`the parameter vector has ${theta.length} values; the model has ${imported.ir.numParams}`, file);
  const paramIndex = new Map(imported.torch.map((t, i) => [t.name, i]));
  const parts: Uint8Array[] = [];
  let graphs = 0;
  for (const f of fields(bytes, file)) {
    if (f.field !== MODEL_GRAPH || !f.body) {
      parts.push(bytes.subarray(f.start, f.end));
      continue;
    }
    graphs++;
    const graph = bytes.subarray(f.body[0], f.body[1]);
    const out: Uint8Array[] = [];
    for (const g of fields(graph, file)) {
      if (g.field !== GRAPH_INITIALIZER || !g.body) {
        out.push(graph.subarray(g.start, g.end));
        continue;
      }
      const body = graph.subarray(g.body[0], g.body[1]);
      const t = onnx.TensorProto.decode(body);
      const i = paramIndex.get(t.name);
      if (i !== undefined) out.push(lengthField(GRAPH_INITIALIZER, parameterTensor(imported, i, theta, t, body, file)));
      else if (isExternal(t)) out.push(lengthField(GRAPH_INITIALIZER, inlineTensor(t, body, file, src.maxParams)));
      else out.push(graph.subarray(g.start, g.end));
    }
    parts.push(lengthField(MODEL_GRAPH, Buffer.concat(out)));
  }
  if (graphs !== 1) throw new BasinError(`not a valid ONNX model: it holds ${graphs} graphs`, file);
  return Buffer.concat(parts);
}

/**
 * Writes the checkpoint directory `dir` holding `name` (a .onnx file) with the parameters `theta`:
 * written under a temporary name and renamed, so a crash never leaves a half-written checkpoint.
 */
export function writeOnnxCheckpoint(src: OnnxSource, theta: ArrayLike<number>, dir: string, name: string): void {
  const bytes = onnxWithParameters(src, theta);
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  makeDirs(tmp);
  fs.writeFileSync(path.join(tmp, name), bytes);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(tmp, dir);
}

/** Writes `dir/name` (a .onnx file) into an existing directory, under a temporary name then renamed. */
export function writeOnnxFile(src: OnnxSource, theta: ArrayLike<number>, dir: string, name: string): void {
  const file = path.join(dir, name);
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, onnxWithParameters(src, theta));
  fs.renameSync(tmp, file);
}

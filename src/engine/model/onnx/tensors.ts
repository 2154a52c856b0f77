/**
 * Values of ONNX `TensorProto`s (initializers, Constant nodes), decoded from an untrusted file:
 * the declared dimensions are checked (non-negative whole numbers, their product within the
 * caller's limit) before anything is allocated, the stored bytes must be exactly what the
 * dimensions and data type need, and external data (`data_location = EXTERNAL`) is refused
 * without opening anything: a reference outside the model's folder is named as such.
 */
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { BasinError } from '../../errors';
import { refuseOver } from '../../limits';
import { inside } from '../io';

type LongLike = number | { toNumber(): number; low?: number; high?: number };

/** A protobuf int64 (a number or a Long) as a number; NaN when it is not a safe integer. */
export function num(v: LongLike | null | undefined): number {
  if (v === null || v === undefined) return 0;
  const n = typeof v === 'number' ? v : v.toNumber();
  return Number.isSafeInteger(n) ? n : NaN;
}

const T = onnx.TensorProto.DataType;
const TYPE_NAMES: Record<number, string> = {
  [T.FLOAT]: 'float32',
  [T.DOUBLE]: 'float64',
  [T.INT64]: 'int64',
  [T.INT32]: 'int32',
  [T.FLOAT16]: 'float16',
  [T.BFLOAT16]: 'bfloat16',
  [T.UINT8]: 'uint8',
  [T.INT8]: 'int8',
  [T.BOOL]: 'bool',
};

export function typeName(t: number): string {
  return TYPE_NAMES[t] ?? `data type ${t}`;
}

/** The tensor's dimensions, checked: whole numbers >= 0. */
export function tensorDims(t: onnx.ITensorProto, what: string, file: string): number[] {
  const dims = (t.dims ?? []).map((d) => num(d as LongLike));
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new BasinError(`${what} declares dimensions [${(t.dims ?? []).map(String).join(', ')}]; dimensions are whole numbers >= 0`, file);
  if (dims.length > 8) throw new BasinError(`${what} has ${dims.length} dimensions; Basin reads tensors of at most 8`, file);
  return dims;
}

/** Refuses external data: names the referenced file, and whether it lies outside the model's folder. Opens nothing. */
function refuseExternal(t: onnx.ITensorProto, what: string, file: string): void {
  const ext = t.externalData ?? [];
  if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL && ext.length === 0) return;
  const loc = ext.find((e) => e.key === 'location')?.value ?? '';
  const dir = path.dirname(path.resolve(file));
  const outside = loc === '' || path.isAbsolute(loc) || path.win32.isAbsolute(loc) || loc.includes('\0') || !inside(dir, path.resolve(dir, loc));
  if (outside) {
    throw new BasinError(`${what} refers to external data at '${loc.slice(0, 200)}', outside the model's folder (${dir}); refused, nothing was read`, file);
  }
  throw new BasinError(
    `${what} keeps its values in the external file '${loc.slice(0, 200)}', which Basin does not read; export the model with its weights inside the .onnx file (torch.onnx.export does for models under 2 GB)`,
    file,
  );
}

/**
 * The values of a float tensor (float32 or float64 stored) as float32, or of an integer tensor
 * (int32, int64) as numbers; `maxValues` bounds the element count before any allocation.
 */
export function tensorValues(t: onnx.ITensorProto, what: string, file: string, maxValues: number): { dims: number[]; float?: Float32Array; ints?: number[] } {
  refuseExternal(t, what, file);
  const dims = tensorDims(t, what, file);
  const count = dims.reduce((a, b) => a * b, 1);
  refuseOver(`the number of values ${what} declares (dimensions [${dims.join(', ')}])`, count, maxValues, { file });
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  const type = t.dataType ?? 0;
  const mismatch = (have: number, need: number, unit: string): BasinError =>
    new BasinError(`${what} (${typeName(type)}, dimensions [${dims.join(', ')}]) stores ${have} ${unit} but needs ${need}: the file is truncated or damaged`, file);
  const view = raw ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength) : undefined;
  switch (type) {
    case T.FLOAT: {
      if (view) {
        if (view.byteLength !== 4 * count) throw mismatch(view.byteLength, 4 * count, 'bytes');
        const out = new Float32Array(count);
        for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
        return { dims, float: out };
      }
      const f = t.floatData ?? [];
      if (f.length !== count) throw mismatch(f.length, count, 'values');
      return { dims, float: Float32Array.from(f) };
    }
    case T.DOUBLE: {
      if (view) {
        if (view.byteLength !== 8 * count) throw mismatch(view.byteLength, 8 * count, 'bytes');
        const out = new Float32Array(count);
        for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true);
        return { dims, float: out };
      }
      const f = t.doubleData ?? [];
      if (f.length !== count) throw mismatch(f.length, count, 'values');
      return { dims, float: Float32Array.from(f) };
    }
    case T.INT64:
    case T.INT32: {
      const size = type === T.INT64 ? 8 : 4;
      const out: number[] = [];
      if (view) {
        if (view.byteLength !== size * count) throw mismatch(view.byteLength, size * count, 'bytes');
        for (let i = 0; i < count; i++) out.push(size === 8 ? Number(view.getBigInt64(8 * i, true)) : view.getInt32(4 * i, true));
      } else {
        const d = (type === T.INT64 ? t.int64Data : t.int32Data) ?? [];
        if (d.length !== count) throw mismatch(d.length, count, 'values');
        for (const v of d) out.push(num(v as LongLike));
      }
      return { dims, ints: out };
    }
    default:
      throw new BasinError(`${what} has data type ${typeName(type)}; Basin reads float32 and float64 weights and int64 or int32 shape constants`, file);
  }
}

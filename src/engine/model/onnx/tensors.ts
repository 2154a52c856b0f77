/**
 * Values of ONNX `TensorProto`s (initializers, Constant nodes), decoded from an untrusted file:
 * the declared dimensions are checked (non-negative whole numbers, their product within the
 * caller's limit) before anything is allocated, the stored bytes must be exactly what the
 * dimensions and data type need. External data (`data_location = EXTERNAL`) is read only from a
 * regular file inside the model's folder, its range checked against the file's size first; a
 * reference outside the folder is refused with the path named and nothing read.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { BasinError } from '../../errors';
import { refuseOver } from '../../limits';
import { inside, notRegular } from '../io';

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

/** Whether the tensor keeps its values in an external file (`data_location = EXTERNAL`). */
export function isExternal(t: onnx.ITensorProto): boolean {
  return t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || (t.externalData ?? []).length > 0;
}

const O_NONBLOCK = fs.constants.O_NONBLOCK ?? 0;
const O_NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;

/**
 * The `need` bytes of an external tensor (`location`, `offset`, `length` keys): the location must
 * be a relative path to a regular file inside the model's folder (symbolic links resolved), and
 * the range must lie within the file; all of it is checked before anything is opened or
 * allocated. Only the tensor's own range is read.
 */
export function externalBytes(t: onnx.ITensorProto, what: string, file: string, need: number): Uint8Array {
  const entries = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
  const loc = entries.get('location') ?? '';
  const shown = `'${loc.slice(0, 200)}'`;
  const dir = path.dirname(path.resolve(file));
  if (loc === '') throw new BasinError(`${what} keeps its values in external data but names no file (no 'location' key)`, file);
  const outside = (): BasinError => new BasinError(`${what} refers to external data at ${shown}, outside the model's folder (${dir}); refused, nothing was read`, file);
  if (path.isAbsolute(loc) || path.posix.isAbsolute(loc) || path.win32.isAbsolute(loc) || loc.includes('\0')) throw outside();
  const lexical = path.resolve(dir, loc);
  if (!inside(dir, lexical)) throw outside();
  const whole = (key: string): number => {
    const v = entries.get(key);
    if (v === undefined) return key === 'offset' ? 0 : need;
    const n = /^\d{1,16}$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n)) throw new BasinError(`${what}: its external data ${key} '${v.slice(0, 40)}' is not a whole number of bytes`, file);
    return n;
  };
  const offset = whole('offset');
  const length = whole('length');
  let real: string;
  let realDir: string;
  try {
    realDir = fs.realpathSync(dir);
    real = fs.realpathSync(lexical);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new BasinError(code === 'ENOENT' ? `${what}: its external data file ${shown} is missing (expected at ${lexical})` : `${what}: cannot read its external data file ${shown} (${code})`, file);
  }
  if (!inside(realDir, real)) throw new BasinError(`${what} refers to external data at ${shown}, a symbolic link to ${real}, outside the model's folder (${realDir}); refused, nothing was read`, file);
  const st = fs.statSync(real);
  const kind = notRegular(st);
  if (kind) throw new BasinError(`${what}: its external data file ${shown} is ${kind}, not a regular file`, file);
  if (length !== need) throw new BasinError(`${what} (${typeName(t.dataType ?? 0)}, dimensions [${tensorDims(t, what, file).join(', ')}]) has an external data length of ${length} bytes but needs ${need}`, file);
  if (offset + length > st.size) {
    throw new BasinError(`${what}: its external data (offset ${offset}, length ${length}) runs past the end of ${shown}, which is ${st.size} bytes: the file is truncated or not this model's`, file);
  }
  const out = new Uint8Array(length);
  let fd: number;
  try {
    fd = fs.openSync(real, fs.constants.O_RDONLY | O_NONBLOCK | O_NOFOLLOW);
  } catch (e) {
    throw new BasinError(`${what}: cannot read its external data file ${shown} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, file);
  }
  try {
    const now = fs.fstatSync(fd);
    if (!now.isFile() || now.ino !== st.ino || now.dev !== st.dev || now.size !== st.size) throw new BasinError(`${what}: its external data file ${shown} changed while it was being read`, file);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(fd, out, done, length - done, offset + done);
      if (n === 0) throw new BasinError(`${what}: its external data file ${shown} changed while it was being read (it is shorter than ${offset + length} bytes)`, file);
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return out;
}

const BYTES_PER: Record<number, number> = { [T.FLOAT]: 4, [T.DOUBLE]: 8, [T.INT64]: 8, [T.INT32]: 4 };

/**
 * The values of a float tensor (float32 or float64 stored) as float32, or of an integer tensor
 * (int32, int64) as numbers; `maxValues` bounds the element count before any allocation.
 */
export function tensorValues(t: onnx.ITensorProto, what: string, file: string, maxValues: number): { dims: number[]; float?: Float32Array; ints?: number[] } {
  const dims = tensorDims(t, what, file);
  const count = dims.reduce((a, b) => a * b, 1);
  refuseOver(`the number of values ${what} declares (dimensions [${dims.join(', ')}])`, count, maxValues, { file });
  const type = t.dataType ?? 0;
  let raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  if (isExternal(t)) {
    const size = BYTES_PER[type];
    if (size === undefined) throw new BasinError(`${what} has data type ${typeName(type)}; Basin reads float32 and float64 weights and int64 or int32 shape constants`, file);
    raw = externalBytes(t, what, file, size * count);
  }
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

/**
 * Training data for a bare model.json: JSON `{"x": [[...]], "y": [[...]]}` (optional `xTest`,
 * `yTest`), CSV with a header (label columns chosen by name; the last column by default), and
 * `.npy` pairs (`x.npy,y.npy`). Data is checked against the model and the loss before any work:
 * shapes, NaN/Infinity, labels the loss cannot take.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BasinError } from './errors';
import type { LossName, ModelIR } from './model/ir';

export interface Split {
  x: Float32Array;
  /** Including the batch dimension first. */
  xShape: number[];
  y: Float32Array;
  yShape: number[];
}

export interface Dataset {
  train: Split;
  test?: Split;
  source: string;
}

/** Flattens a nested numeric array, returning values and shape; rejects ragged arrays. */
export function flattenNested(value: unknown, what: string, file: string): { values: Float32Array; shape: number[] } {
  const shape: number[] = [];
  let probe: unknown = value;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = probe[0];
  }
  if (shape.length === 0) throw new BasinError(`'${what}' must be an array`, file);
  const total = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(total);
  let k = 0;
  const walk = (v: unknown, depth: number, at: string): void => {
    if (depth === shape.length) {
      if (typeof v !== 'number') throw new BasinError(`'${what}${at}' is ${JSON.stringify(v)}, not a number`, file);
      values[k++] = v;
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth]) {
      throw new BasinError(`'${what}${at}' has length ${Array.isArray(v) ? v.length : 'n/a'} but ${shape[depth]} was expected (ragged array)`, file);
    }
    for (let i = 0; i < v.length; i++) walk(v[i], depth + 1, `${at}[${i}]`);
  };
  walk(value, 0, '');
  return { values, shape };
}

function fromJson(file: string): Dataset {
  let obj: Record<string, unknown>;
  try {
    obj = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new BasinError(`cannot read data (${(e as Error).message})`, file);
  }
  if (!obj || typeof obj !== 'object' || !('x' in obj) || !('y' in obj)) throw new BasinError("data JSON needs 'x' and 'y' arrays", file);
  const split = (xk: string, yk: string): Split => {
    const x = flattenNested(obj[xk], xk, file);
    const y = flattenNested(obj[yk], yk, file);
    return { x: x.values, xShape: x.shape, y: y.values, yShape: y.shape.length === 1 ? [y.shape[0], 1] : y.shape };
  };
  return { train: split('x', 'y'), test: 'xTest' in obj && 'yTest' in obj ? split('xTest', 'yTest') : undefined, source: file };
}

function parseCsvLine(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((s) => s.trim());
}

function fromCsv(file: string, labels?: string[]): Dataset {
  const lines = fs.readFileSync(file, 'utf8').split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length < 2) throw new BasinError('CSV needs a header line and at least one row', file);
  const header = parseCsvLine(lines[0]);
  const labelCols = (labels && labels.length ? labels : [header[header.length - 1]]).map((name) => {
    const i = header.indexOf(name);
    if (i < 0) throw new BasinError(`label column '${name}' is not in the header (${header.join(', ')})`, file);
    return i;
  });
  const featureCols = header.map((_, i) => i).filter((i) => !labelCols.includes(i));
  const n = lines.length - 1;
  const x = new Float32Array(n * featureCols.length);
  const y = new Float32Array(n * labelCols.length);
  for (let r = 0; r < n; r++) {
    const cells = parseCsvLine(lines[r + 1]);
    if (cells.length !== header.length) throw new BasinError(`line ${r + 2} has ${cells.length} fields, the header has ${header.length}`, file);
    const num = (c: number): number => {
      const v = Number(cells[c]);
      if (cells[c] === '' || Number.isNaN(v)) throw new BasinError(`line ${r + 2}, column '${header[c]}': '${cells[c]}' is not a number`, file);
      return v;
    };
    featureCols.forEach((c, j) => (x[r * featureCols.length + j] = num(c)));
    labelCols.forEach((c, j) => (y[r * labelCols.length + j] = num(c)));
  }
  return { train: { x, xShape: [n, featureCols.length], y, yShape: [n, labelCols.length] }, source: file };
}

/** Minimal .npy reader (format 1.0-3.0; little-endian f4, f8, i4, i8, u1; C order). */
export function readNpy(file: string): { values: Float32Array; shape: number[] } {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new BasinError(`cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, file);
  }
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new BasinError('not a .npy file (bad magic)', file);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined) throw new BasinError('malformed .npy header', file);
  if (fortran) throw new BasinError('Fortran-ordered arrays are not supported; save with np.ascontiguousarray', file);
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const body = buf.subarray(start + headerLen);
  const readers: Record<string, [number, (o: number) => number]> = {
    '<f4': [4, (o) => body.readFloatLE(o)],
    '<f8': [8, (o) => body.readDoubleLE(o)],
    '<i4': [4, (o) => body.readInt32LE(o)],
    '<i8': [8, (o) => Number(body.readBigInt64LE(o))],
    '|u1': [1, (o) => body[o]],
    '|b1': [1, (o) => body[o]],
  };
  const reader = readers[descr];
  if (!reader) throw new BasinError(`dtype '${descr}' is not supported (use float32, float64, int32, int64 or uint8)`, file);
  if (body.length < count * reader[0]) throw new BasinError(`truncated: ${body.length} bytes of data for shape (${shape.join(', ')})`, file);
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = reader[1](i * reader[0]);
  return { values, shape };
}

function fromNpy(spec: string): Dataset {
  const [xFile, yGiven] = spec.split(',');
  let yFile = yGiven;
  if (!yFile) {
    const base = path.basename(xFile);
    const guess = path.join(path.dirname(xFile), base.replace(/^x/, 'y').replace(/^X/, 'Y'));
    if (guess === xFile || !fs.existsSync(guess)) throw new BasinError("give the labels too: --data x.npy,y.npy", xFile);
    yFile = guess;
  }
  const x = readNpy(xFile);
  const y = readNpy(yFile);
  return { train: { x: x.values, xShape: x.shape, y: y.values, yShape: y.shape.length === 1 ? [y.shape[0], 1] : y.shape }, source: `${xFile},${yFile}` };
}

export interface DataOptions {
  /** CSV label column names. */
  labels?: string[];
}

export function loadDataFile(spec: string, opts: DataOptions = {}): Dataset {
  const first = spec.split(',')[0];
  if (!fs.existsSync(first)) throw new BasinError('data file not found', first);
  const ext = path.extname(first).toLowerCase();
  if (ext === '.json') return fromJson(first);
  if (ext === '.csv') return fromCsv(first, opts.labels);
  if (ext === '.npy') return fromNpy(spec);
  throw new BasinError(`unknown data format '${ext}' (use .json, .csv or .npy)`, first);
}

/** Builds a split from in-memory arrays (experiment modules). */
export function splitFromArrays(x: { values: Float32Array; shape: number[] }, y: { values: Float32Array; shape: number[] }): Split {
  return { x: x.values, xShape: x.shape, y: y.values, yShape: y.shape.length === 1 ? [y.shape[0], 1] : y.shape };
}

/**
 * Checks data against the model and loss. Categorical labels given as one class index per row
 * are one-hot encoded when the model has several outputs.
 */
export function validateSplit(split: Split, ir: ModelIR, loss: LossName | 'custom', source: string, which = 'training'): Split {
  const inShape = ir.nodes[ir.input].outShape;
  const outShape = ir.nodes[ir.output].outShape;
  const n = split.xShape[0];
  if (n === 0) throw new BasinError(`${which} data has no samples`, source);
  const xs = split.xShape.slice(1);
  const flatIn = inShape.reduce((a, b) => a * b, 1);
  if (xs.join(',') !== inShape.join(',')) {
    if (xs.reduce((a, b) => a * b, 1) === flatIn) split = { ...split, xShape: [n, ...inShape] };
    else throw new BasinError(`${which} inputs have shape [${xs.join(', ')}] per sample but the model takes [${inShape.join(', ')}]`, source);
  }
  if (split.yShape[0] !== n) throw new BasinError(`${which} data has ${n} inputs but ${split.yShape[0]} labels`, source);
  const outSize = outShape.reduce((a, b) => a * b, 1);
  let ys = split.yShape.slice(1);
  if (ys.reduce((a, b) => a * b, 1) === 1 && outSize > 1 && loss === 'categoricalCrossentropy') {
    const y = new Float32Array(n * outSize);
    for (let i = 0; i < n; i++) {
      const c = split.y[i];
      if (!Number.isInteger(c) || c < 0 || c >= outSize) {
        throw new BasinError(`label ${i} is ${c}: class indices must be integers in 0..${outSize - 1} for ${outSize} outputs`, source);
      }
      y[i * outSize + c] = 1;
    }
    split = { ...split, y, yShape: [n, ...outShape] };
    ys = outShape;
  }
  if (ys.reduce((a, b) => a * b, 1) !== outSize) {
    throw new BasinError(`${which} labels have shape [${ys.join(', ')}] per sample but the model outputs [${outShape.join(', ')}]`, source);
  }
  split = { ...split, yShape: [n, ...outShape] };
  const bad = (arr: Float32Array): number => arr.findIndex((v) => !Number.isFinite(v));
  const bx = bad(split.x);
  if (bx >= 0) throw new BasinError(`${which} inputs contain ${split.x[bx]} (sample ${Math.floor(bx / flatIn)})`, source);
  const by = bad(split.y);
  if (by >= 0) throw new BasinError(`${which} labels contain ${split.y[by]} (sample ${Math.floor(by / outSize)})`, source);
  if (loss === 'categoricalCrossentropy' || loss === 'binaryCrossentropy') {
    const i = split.y.findIndex((v) => v < 0 || v > 1);
    if (i >= 0) throw new BasinError(`label value ${split.y[i]} (sample ${Math.floor(i / outSize)}) is outside [0, 1], which ${loss} needs`, source);
  }
  if (loss === 'categoricalCrossentropy' && outSize > 1) {
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < outSize; j++) s += split.y[i * outSize + j];
      if (Math.abs(s - 1) > 1e-3) throw new BasinError(`labels of sample ${i} sum to ${s}, not 1 (categoricalCrossentropy needs one-hot or probability rows)`, source);
    }
  }
  return split;
}

/**
 * JSON encoding of optimizer state for checkpoints: plain values pass through; Float64Array and
 * Float32Array become {"$f64": base64} / {"$f32": base64}, so a resumed run restores the exact bits.
 * Decoding throws a plain Error on an array cut short (the caller names the file).
 */
type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export function encodeState(value: unknown): Json {
  if (value instanceof Float64Array) return { $f64: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  if (value instanceof Float32Array) return { $f32: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  if (Array.isArray(value)) return value.map(encodeState);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, encodeState(v)]));
  if (typeof value === 'number' && !Number.isFinite(value)) return { $num: String(value) };
  return value as Json;
}

export function decodeState(value: Json): unknown {
  if (Array.isArray(value)) return value.map(decodeState);
  if (value && typeof value === 'object') {
    if (typeof value.$f64 === 'string') return new Float64Array(bytes(value.$f64, 8));
    if (typeof value.$f32 === 'string') return new Float32Array(bytes(value.$f32, 4));
    if (typeof value.$num === 'string') return Number(value.$num);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, decodeState(v)]));
  }
  return value;
}

/** The bytes of a base64 array, checked to hold whole values of `size` bytes. */
function bytes(base64: string, size: number): ArrayBuffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64)) throw new Error('an array is not valid base64');
  const b = Buffer.from(base64, 'base64');
  if (b.byteLength % size !== 0) throw new Error(`an array of ${b.byteLength} bytes is not a whole number of ${size}-byte values (cut short?)`);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
}

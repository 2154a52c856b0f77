/**
 * JSON encoding of optimizer state for checkpoints: plain values pass through; Float64Array and
 * Float32Array become {"$f64": base64} / {"$f32": base64}, so a resumed run restores the exact bits.
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
    if (typeof value.$f64 === 'string') {
      const b = Buffer.from(value.$f64, 'base64');
      return new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    }
    if (typeof value.$f32 === 'string') {
      const b = Buffer.from(value.$f32, 'base64');
      return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    }
    if (typeof value.$num === 'string') return Number(value.$num);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, decodeState(v)]));
  }
  return value;
}

/**
 * Reads a `.onnx` model file (protobuf `ModelProto`, decoded with `onnx-proto`: protobufjs code
 * generated from the official onnx.proto) into Basin's IR and parameter values (`ops.ts`).
 *
 * The file is untrusted: only a regular file is opened, its size is checked before it is read,
 * a truncated or corrupt protobuf is a clear error, every tensor's declared size is checked
 * before its values are allocated, and external data is read only from regular files inside the
 * model's folder (`tensors.ts`).
 */
import { onnx } from 'onnx-proto';
import { BasinError } from '../../errors';
import { MAX_ONNX_BYTES, MAX_PARAMS, paramLimitHint, refuseOver } from '../../limits';
import { readRegularFile } from '../io';
import { lowerOnnx, type OnnxImported } from './ops';

/** Whether a model path names an ONNX file. */
export function isOnnxFile(file: string): boolean {
  return file.toLowerCase().endsWith('.onnx');
}

/** Decodes a ModelProto from bytes; a malformed or truncated message is a BasinError naming `file`. */
export function decodeOnnx(bytes: Uint8Array, file: string): onnx.ModelProto {
  let model: onnx.ModelProto;
  try {
    // A plain Uint8Array view: protobufjs reads a Node Buffer with the deprecated Buffer() constructor.
    model = onnx.ModelProto.decode(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    throw new BasinError(`not a valid ONNX model: the protobuf cannot be decoded (${(e as Error).message.split('\n')[0]}); the file is truncated or not .onnx`, file);
  }
  if (!model.graph || (model.graph.node ?? []).length === 0) throw new BasinError('not a valid ONNX model: it holds no graph nodes (the file is empty, truncated or not .onnx)', file);
  return model;
}

/** Loads and lowers an ONNX model file. `maxParams` bounds every tensor and the parameter count. */
export function loadOnnxModel(file: string, opts: { maxParams?: number } = {}): OnnxImported {
  const bytes = readRegularFile(file, 'the .onnx file size', MAX_ONNX_BYTES, 'Basin reads models up to 50 million parameters');
  const limit = opts.maxParams ?? MAX_PARAMS;
  const imported = lowerOnnx(decodeOnnx(bytes, file), file, limit);
  refuseOver("the model's parameter count", imported.ir.numParams, limit, { file, hint: paramLimitHint(imported.ir.numParams, limit) });
  return imported;
}

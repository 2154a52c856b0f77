/**
 * Kernel fixes for the wasm backend, found by profiling (scratch profiles in the README):
 *
 * - `BatchMatMul` with `transposeA` or `transposeB` runs about 10x slower than without (30 ms
 *   against 3 ms for [2000,128] x [128,128] here): XNNPACK's fast path only takes the plain
 *   layout. Backprop uses exactly those transposed products (dX = dY W^T, dW = X^T dY), so they
 *   dominated gradient time. The wrapper transposes explicitly (under 1 ms) and calls the plain kernel.
 *
 * - Kernels the wasm backend lacks and Basin needs. `Conv2DBackpropFilter` (the filter gradient of
 * a convolution) has no wasm kernel in TF.js 4.22, so convnets could not be differentiated there
 * at all. This one computes dW[kh, kw, ci, co] = sum_{n, oh, ow} x[n, oh*s + kh - pt, ow*s + kw - pl, ci]
 * * dy[n, oh, ow, co] directly on the wasm heap, as one (ci x co) outer-product accumulation per
 * output position and kernel tap.
 */
import { tf } from './tf';

interface HeapBackend {
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
}

export function conv2dBackpropFilterInto(
  x: Float32Array,
  xShape: readonly number[],
  dy: Float32Array,
  dyShape: readonly number[],
  filterShape: readonly number[],
  strides: [number, number],
  padTop: number,
  padLeft: number,
  out: Float32Array,
): void {
  const [n, h, w, ci] = xShape;
  const [, oh, ow, co] = dyShape;
  const [kh, kw] = filterShape;
  out.fill(0);
  for (let b = 0; b < n; b++) {
    for (let r = 0; r < oh; r++) {
      for (let c = 0; c < ow; c++) {
        const dyBase = ((b * oh + r) * ow + c) * co;
        for (let i = 0; i < kh; i++) {
          const xr = r * strides[0] + i - padTop;
          if (xr < 0 || xr >= h) continue;
          for (let j = 0; j < kw; j++) {
            const xc = c * strides[1] + j - padLeft;
            if (xc < 0 || xc >= w) continue;
            const xBase = ((b * h + xr) * w + xc) * ci;
            const oBase = (i * kw + j) * ci * co;
            for (let p = 0; p < ci; p++) {
              const xv = x[xBase + p];
              if (xv === 0) continue;
              const o = oBase + p * co;
              for (let q = 0; q < co; q++) out[o + q] += xv * dy[dyBase + q];
            }
          }
        }
      }
    }
  }
}

interface DisposingBackend {
  disposeData(dataId: object): boolean;
}

/** Wraps the wasm BatchMatMul so transposed operands are transposed explicitly first. */
function registerFastTransposedMatMul(): void {
  const original = tf.getKernel('BatchMatMul', 'wasm');
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (!original || !transpose) return;
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({
    kernelName: 'BatchMatMul',
    backendName: 'wasm',
    setupFunc: original.setupFunc,
    disposeFunc: original.disposeFunc,
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args;
      const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
      if (!transposeA && !transposeB) return original.kernelFunc(args);
      const temps: tf.TensorInfo[] = [];
      const swapLast = (t: tf.TensorInfo): tf.TensorInfo => {
        const r = t.shape.length;
        const perm = [...Array(r).keys()];
        [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
        const out = transpose.kernelFunc({ inputs: { x: t }, backend, attrs: { perm } }) as tf.TensorInfo;
        temps.push(out);
        return out;
      };
      const out = original.kernelFunc({
        inputs: { a: transposeA ? swapLast(a) : a, b: transposeB ? swapLast(b) : b },
        backend,
        attrs: { ...attrs, transposeA: false, transposeB: false },
      });
      for (const t of temps) (backend as unknown as DisposingBackend).disposeData(t.dataId);
      return out;
    },
  });
}

interface RefCountingBackend {
  incRef(dataId: object): void;
}

/**
 * The wasm Identity kernel copies its input; the engine runs it for every tensor a gradient saves
 * (tf.clone), 9% of an exact H·v's kernel time. Tensors are immutable, so, like the cpu backend,
 * share the buffer and count the reference instead.
 */
function registerSharedIdentity(): void {
  const original = tf.getKernel('Identity', 'wasm');
  if (!original) return;
  tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({
    kernelName: 'Identity',
    backendName: 'wasm',
    kernelFunc: (args) => {
      const x = (args.inputs as { x: tf.TensorInfo }).x;
      if (x.dtype === 'string') return original.kernelFunc(args);
      (args.backend as unknown as RefCountingBackend).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
  });
}

let registered = false;

/** Installs the wasm kernel fixes (idempotent; harmless on other backends). */
export function registerMissingKernels(): void {
  if (registered) return;
  registered = true;
  registerFastTransposedMatMul();
  registerSharedIdentity();
  if (tf.getKernel('Conv2DBackpropFilter', 'wasm')) return;
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
      const a = attrs as unknown as { strides: [number, number] | number; pad: 'same' | 'valid' | number; filterShape: [number, number, number, number] };
      const be = backend as unknown as HeapBackend;
      const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], a.filterShape, a.strides, 1, a.pad);
      const out = be.makeOutput(a.filterShape, 'float32');
      conv2dBackpropFilterInto(
        be.typedArrayFromHeap(x),
        x.shape,
        be.typedArrayFromHeap(dy),
        dy.shape,
        a.filterShape,
        [info.strideHeight, info.strideWidth],
        info.padInfo.top,
        info.padInfo.left,
        be.typedArrayFromHeap(out),
      );
      return out;
    },
  });
}

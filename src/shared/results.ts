/**
 * Plain result types shared by the engine, the worker, the CLI and the extension. Only numbers,
 * strings and arrays: these cross process boundaries and are printed as JSON.
 */

export interface RunMeta {
  /** The backend that ran, e.g. "wasm", and its detail, e.g. "wasm (SIMD)". */
  backend: string;
  backendDetail: string;
  seed: number;
  /** Model description: file or module, parameter count, samples. */
  model: string;
  params: number;
  samples: number;
  loss: string;
  /** The loss at the parameters analysed. */
  lossValue: number;
  ms: number;
}

export interface HvpInfo {
  hvpMethod: 'exact' | 'fd';
  hvpReason: string;
  /** Relative difference between exact and finite-difference products in the start-up check. */
  hvpAgreement?: number;
  /** Products spent choosing and checking the method (not counted in `hvps`). */
  hvpCheckProducts: number;
}

export interface EigsResult extends RunMeta, HvpInfo {
  kind: 'eigs';
  which: 'top' | 'bottom';
  method: 'lanczos' | 'power';
  /** Descending. */
  eigenvalues: number[];
  /** Absolute error bound for each eigenvalue (Ritz residual based, floored at the product noise). */
  errorBounds: number[];
  residuals: number[];
  hvps: number;
  converged: boolean;
  /** When the block of one layer was analysed. */
  layer?: string;
  /** Condition number over the computed part of the spectrum, with what it is a ratio of. */
  condition?: { value: number; definition: string };
}

export interface TraceResult extends RunMeta, HvpInfo {
  kind: 'trace';
  method: 'hutchpp' | 'hutchinson';
  trace: number;
  stderr: number;
  hvps: number;
  layer?: string;
}

export interface DensityResult extends RunMeta, HvpInfo {
  kind: 'density';
  steps: number;
  runs: number;
  grid: number[];
  density: number[];
  nodes: number[][];
  weights: number[][];
  hvps: number;
  sigma2: number;
}

export interface LayerInfo {
  name: string;
  kind: string;
  outShape: number[];
  params: number;
  detail: string;
}

export interface InfoResult {
  kind: 'info';
  model: string;
  name: string;
  backend: string;
  backendDetail: string;
  params: number;
  layers: LayerInfo[];
  samples?: number;
  loss?: string;
  lossValue?: number;
  accuracy?: number;
  hvpMethods: string;
}

export type JobResult = EigsResult | TraceResult | DensityResult | InfoResult;

export interface Progress {
  /** Work done and planned, in Hessian-vector products (or the job's own unit). */
  done: number;
  total: number;
  message: string;
}

/**
 * What a field of a message or of a job's options holds (`FieldSpec`), and the name lists the
 * fields choose from. The job registry (src/shared/jobs) types every job option with these; the
 * validators (src/shared/validate.ts) check messages against them and the CLI parses its flags by
 * them. Plain data: no imports.
 */

/** What a field holds. Numbers are always finite; strings never empty. */
export type FieldSpec =
  | { type: 'int'; min: number }
  | { type: 'number'; min: number; /** min itself allowed */ orEqual: boolean }
  | { type: 'string' }
  | { type: 'boolean' }
  | { type: 'choice'; values: readonly string[] }
  | { type: 'strings'; minItems: number; maxItems?: number }
  | { type: 'choices'; values: readonly string[]; minItems: number }
  | { type: 'settings' };

/** A whole number >= min. */
export const int = (min: number): FieldSpec => ({ type: 'int', min });
/** A finite number > min, or >= min with orEqual. */
export const num = (min: number, orEqual = false): FieldSpec => ({ type: 'number', min, orEqual });
export const str: FieldSpec = { type: 'string' };
export const bool: FieldSpec = { type: 'boolean' };
export const choice = (values: readonly string[]): FieldSpec => ({ type: 'choice', values });
export const strings = (minItems: number, maxItems?: number): FieldSpec => ({ type: 'strings', minItems, maxItems });
export const choices = (values: readonly string[], minItems = 1): FieldSpec => ({ type: 'choices', values, minItems });
export const settings: FieldSpec = { type: 'settings' };

export type BackendName = 'onnxruntime' | 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_NAMES: readonly BackendName[] = ['onnxruntime', 'tensorflow', 'wasm', 'cpu'];

export type FlatnessMeasureName = 'sam' | 'asam' | 'epsilon' | 'pacbayes' | 'radius';
export const FLATNESS_MEASURE_NAMES: readonly FlatnessMeasureName[] = ['sam', 'asam', 'epsilon', 'pacbayes', 'radius'];

export const CURVATURE_NAMES = ['hessian', 'ggn', 'fisher', 'empirical-fisher'] as const;

export const OPTIMIZER_NAMES = ['gd', 'sgd', 'momentum', 'nesterov', 'adam', 'sam', 'asam', 'flow'] as const;

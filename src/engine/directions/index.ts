/**
 * Directions and slices of the loss landscape: filter-normalized random directions (Li et al.
 * 2018), orthogonalized planes, checkpoint interpolation (Goodfellow et al. 2015), the PCA plane of
 * a training trajectory (Li et al. 2018, sec. 7) and slice axes.
 */
export { IGNORE_KINDS, NORM_EPS, NORM_KINDS, normalizeDirection, randomDirection } from './normalize';
export type { IgnoreKind, NormKind } from './normalize';
export { cosine, dot, norm, orthogonalize, unit } from './plane';
export { assertCompatible, baseParamName, interpolationDirection, loadCheckpoint } from './checkpoints';
export type { Checkpoint } from './checkpoints';
export { trajectoryPlane } from './trajectory';
export type { TrajectoryPlane } from './trajectory';
export { EIGEN_SLICE, INTERPOLATE, REFINE_STRIDES, SLICE_1D, SURFACE, coarseToFineOrder, parseRange } from './grid';
export type { Range } from './grid';

/** The numerical linear-algebra core: operators, dense helpers and the curvature algorithms. */
export { CancelledError, axpy, dot, norm, scale, throwIfAborted } from './operator';
export type { IterOptions, LinearOperator } from './operator';
export { orthonormalize, symmetricEigen, tridiagonalize } from './dense';
export type { OrthonormalizeOptions } from './dense';
export { tql2, tridiagonalEigen, tridiagonalEigenRows, tridiagonalEigenvalues } from './tridiagonal';
export { lanczos, lanczosSteps, lanczosTridiagonal } from './lanczos';
export type { LanczosOptions, LanczosResult, LanczosTridiagonal, LanczosTridiagonalOptions } from './lanczos';
export { powerIteration } from './power';
export type { PowerOptions, PowerResult } from './power';
export { hutchinson, meanAndStderr } from './hutchinson';
export type { HutchinsonOptions, HutchinsonResult } from './hutchinson';
export { hutchpp } from './hutchpp';
export type { HutchppOptions, HutchppResult } from './hutchpp';
export { slq, spectralDensity } from './slq';
export type { SlqOptions, SlqResult, SpectralDensity, SpectralDensityOptions } from './slq';

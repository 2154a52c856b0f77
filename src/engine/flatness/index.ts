/**
 * Flatness measures of a trained model's loss landscape, each in its own module with its paper,
 * formula and defaults: SAM sharpness, adaptive (ASAM) sharpness, Keskar et al.'s epsilon-sharpness,
 * Jiang et al.'s PAC-Bayes flatness, and Huang et al.'s basin radius and log-volume.
 */
export { samSharpness, type SamOptions, type SamResult } from './sam';
export { adaptiveSharpness, asamScaling, type AsamOptions, type AsamResult, type ParamRole } from './asam';
export { epsilonSharpness, type EpsilonSharpnessOptions, type EpsilonSharpnessResult } from './epsilonSharpness';
export { pacBayesFlatness, type PacBayesCriterion, type PacBayesOptions, type PacBayesResult } from './pacBayes';
export { basinRadius, quadraticLogVolume, type BasinRadiusOptions, type BasinRadiusResult } from './basinRadius';
export { lgamma, logUnitBallVolume, type EvaluationCounts } from './common';

/**
 * The engine's single TF.js instance: core ops, every gradient registration, and the layers API
 * (used only to read and validate models). Import `tf` from here, never from the packages, so
 * there is exactly one engine and one kernel registry.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
import * as tfl from '@tensorflow/tfjs-layers';

export { tf, tfl };
export type Tensor = tf.Tensor;
export type Scalar = tf.Scalar;

// data-rejects: a broken experiment module (test/hostile/cases.tsv)
export default {
  model(tf) { return tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 3, activation: 'softmax' })] }); },
  async data(tf) {
    throw new Error('dataset not downloaded');
  },
};

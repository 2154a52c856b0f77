// uncaught-later: a broken experiment module (test/hostile/cases.tsv)
export default {
  model(tf) {
    setTimeout(() => { throw new Error('late failure in a timer'); }, 5);
    return tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 3, activation: 'softmax' })] });
  },
  data(tf) { return new Promise((r) => setTimeout(() => r({ x: [[0, 1]], y: [[1, 0, 0]] }), 500)); },
};

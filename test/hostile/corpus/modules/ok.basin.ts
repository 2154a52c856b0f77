// ok: a broken experiment module (test/hostile/cases.tsv)
export default {
  model(tf) { return tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 3, activation: 'softmax' })] }); },
  data(tf) { return { x: [[0, 1], [1, 0], [1, 1]], y: [[1, 0, 0], [0, 1, 0], [0, 0, 1]] }; },
  loss: 'categoricalCrossentropy',
};

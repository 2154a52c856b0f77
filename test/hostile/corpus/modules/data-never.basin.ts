// data-never: a broken experiment module (test/hostile/cases.tsv)
export default {
  model(tf) { return tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 3, activation: 'softmax' })] }); },
  data(tf) { return new Promise(() => {}); },
};

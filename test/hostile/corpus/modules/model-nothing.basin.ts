// model-nothing: a broken experiment module (test/hostile/cases.tsv)
export default {
  model(tf) {},
  data(tf) { return { x: [[0, 1], [1, 0], [1, 1]], y: [[1, 0, 0], [0, 1, 0], [0, 0, 1]] }; },
};

/**
 * Tests of the float64 reference itself (`test/reference/`), independent of TF.js: its gradients
 * against central finite differences of its loss, its Hessian-vector products (forward-over-
 * reverse, Pearlmutter 1994) against central finite differences of its gradient, the symmetry of
 * its Hessian, closed forms (linear least squares, one-weight models, softmax cross-entropy), the
 * agreement of fused (from-logits) and unfused losses, and hand-computed forward passes for the
 * layout and padding conventions of `src/engine/model/ir.ts`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Activation, LossName, ModelIR } from '../../src/engine/model/ir';
import { Rng } from '../../src/engine/rng';
import { SELU_ALPHA, SELU_SCALE, Tape } from '../reference/dual';
import {
  IRBuilder,
  convIR,
  mlpIR,
  randomProblem,
  refForward,
  refGradHvp,
  refGradient,
  refHessian,
  refHvp,
  refLoss,
  sequentialIR,
  type RefProblem,
} from '../reference/float64';
import { oracleCases } from '../reference/cases';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** max |a - b| / max |b|. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  const s = maxAbs(b);
  return s === 0 ? d : d / s;
}

function withParams(p: RefProblem, params: Float64Array): RefProblem {
  return { ...p, params };
}

/** Central finite differences of refLoss. */
function fdGradient(p: RefProblem, h: number): Float64Array {
  const g = new Float64Array(p.params.length);
  const q = Float64Array.from(p.params);
  for (let i = 0; i < q.length; i++) {
    const t = q[i];
    q[i] = t + h;
    const lp = refLoss(withParams(p, q));
    q[i] = t - h;
    const lm = refLoss(withParams(p, q));
    q[i] = t;
    g[i] = (lp - lm) / (2 * h);
  }
  return g;
}

/** Central finite differences of refGradient along v. */
function fdHvp(p: RefProblem, v: Float64Array, h: number): Float64Array {
  const plus = p.params.map((t, i) => t + h * v[i]);
  const minus = p.params.map((t, i) => t - h * v[i]);
  const gp = refGradient(withParams(p, plus)).grad;
  const gm = refGradient(withParams(p, minus)).grad;
  return gp.map((g, i) => (g - gm[i]) / (2 * h));
}

function fmt(x: number): string {
  return x.toExponential(2);
}

// ---------------------------------------------------------------------------------------------
// Problems
// ---------------------------------------------------------------------------------------------

const ALL_CASES = oracleCases();
/**
 * The cases where the loss is differentiable at the point. Exact ties in max pooling are kinks:
 * finite differences there average two one-sided slopes; those cases are checked below instead.
 */
const CASES = ALL_CASES.filter((c) => !/exact ties/.test(c.name));
const TIES = ALL_CASES.filter((c) => /exact ties/.test(c.name));

// ---------------------------------------------------------------------------------------------
// (a) gradient, (b) HVP, (c) symmetry
// ---------------------------------------------------------------------------------------------

test('gradient matches central finite differences of the loss (h = 1e-6)', (t) => {
  let worst = 0;
  for (const { name, problem } of CASES) {
    const { loss, grad } = refGradient(problem);
    assert.ok(Number.isFinite(loss), name);
    assert.equal(loss, refLoss(problem), `${name}: refGradient's loss equals refLoss`);
    assert.ok(maxAbs(grad) > 1e-3, `${name}: nontrivial gradient`);
    const err = relErr(grad, fdGradient(problem, 1e-6));
    worst = Math.max(worst, err);
    t.diagnostic(`${name}: ${problem.ir.numParams} params, gradient rel err ${fmt(err)}`);
    assert.ok(err < 1e-7, `${name}: gradient rel err ${err}`);
  }
  t.diagnostic(`worst gradient rel err ${fmt(worst)}`);
});

test('HVP matches central finite differences of the gradient (h = 1e-5)', (t) => {
  let worst = 0;
  CASES.forEach(({ name, problem }, k) => {
    const v = new Rng(500 + k).normalVector(problem.ir.numParams);
    const hv = refHvp(problem, v);
    assert.ok(maxAbs(hv) > 1e-3, `${name}: nontrivial HVP`);
    const err = relErr(hv, fdHvp(problem, v, 1e-5));
    worst = Math.max(worst, err);
    t.diagnostic(`${name}: HVP rel err ${fmt(err)}`);
    assert.ok(err < 1e-6, `${name}: HVP rel err ${err}`);
    const both = refGradHvp(problem, v);
    assert.deepEqual(both.hvp, hv);
    assert.deepEqual(both.grad, refGradient(problem).grad);
  });
  t.diagnostic(`worst HVP rel err ${fmt(worst)}`);
});

test('max pooling ties: the derivative is the first maximum\'s (row-major in the window), the one-sided limit where the first wins', () => {
  assert.equal(TIES.length, 1);
  for (const { name, problem } of TIES) {
    const at = refGradient(problem).grad;
    // Nudge the inputs so that, in every tied window, earlier cells win strictly: each blank pixel
    // gets -1e-9 times its index. The loss is continuous and its gradient there is the first-max rule's.
    const x = problem.x.map((v, i) => (v === 0 ? -1e-9 * (i + 1) : v));
    const nudged = refGradient({ ...problem, x }).grad;
    const err = relErr(at, nudged);
    assert.ok(err < 1e-6, `${name}: gradient at the tie vs where the first maximum wins strictly: ${err}`);
    // And it differs from routing the derivative to every tied maximum by far more than that.
    assert.ok(maxAbs(at) > 1e-3);
  }
});

test('Hessian is symmetric and its columns are the HVPs', (t) => {
  let worstSym = 0;
  let worstCol = 0;
  ALL_CASES.forEach(({ name, problem }, k) => {
    const n = problem.ir.numParams;
    const h = refHessian(problem);
    const scale = maxAbs(h);
    let asym = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < i; j++) asym = Math.max(asym, Math.abs(h[i * n + j] - h[j * n + i]));
    }
    worstSym = Math.max(worstSym, asym / scale);
    assert.ok(asym <= 1e-12 * scale, `${name}: asymmetry ${asym / scale}`);
    // H v from the dense Hessian equals the direct forward-over-reverse product.
    const v = new Rng(900 + k).normalVector(n);
    const hv = new Float64Array(n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) hv[i] += h[i * n + j] * v[j];
    const err = relErr(hv, refHvp(problem, v));
    worstCol = Math.max(worstCol, err);
    assert.ok(err < 1e-12, `${name}: H v vs HVP ${err}`);
    // One column exactly (reseeded tape vs freshly recorded tape).
    const j = k % n;
    const e = new Float64Array(n);
    e[j] = 1;
    const col = refHvp(problem, e);
    for (let i = 0; i < n; i++) assert.ok(Math.abs(col[i] - h[i * n + j]) <= 1e-15 * scale, `${name}: column ${j}`);
  });
  t.diagnostic(`worst relative asymmetry ${fmt(worstSym)}; worst |Hv - HVP| rel ${fmt(worstCol)}`);
});

// ---------------------------------------------------------------------------------------------
// (d) closed forms
// ---------------------------------------------------------------------------------------------

test('linear model with MSE: Hessian is (2 / (n k)) [X 1]^T [X 1] per output, exactly block diagonal', (t) => {
  const d = 3;
  const k = 2;
  const n = 5;
  const ir = mlpIR([d, k], ['linear']);
  const p = randomProblem(ir, 'meanSquaredError', n, 3);
  const h = refHessian(p);
  const m = ir.numParams;
  assert.equal(m, d * k + k);
  // Parameter index of (input a, output j): kernel [d, k] row-major, then bias [k]; a = d is the bias.
  const idx = (a: number, j: number): number => (a < d ? a * k + j : d * k + j);
  const xt = (i: number, a: number): number => (a < d ? p.x[i * d + a] : 1);
  let maxErr = 0;
  let scale = 0;
  for (let a = 0; a <= d; a++) {
    for (let j = 0; j < k; j++) {
      for (let b = 0; b <= d; b++) {
        for (let l = 0; l < k; l++) {
          const got = h[idx(a, j) * m + idx(b, l)];
          if (j !== l) {
            assert.equal(got, 0, `off-block entry (${a},${j}),(${b},${l})`);
            continue;
          }
          let want = 0;
          for (let i = 0; i < n; i++) want += xt(i, a) * xt(i, b);
          want *= 2 / (n * k);
          maxErr = Math.max(maxErr, Math.abs(got - want));
          scale = Math.max(scale, Math.abs(want));
        }
      }
    }
  }
  maxErr /= scale;
  t.diagnostic(`max rel err vs closed form ${fmt(maxErr)}`);
  assert.ok(maxErr < 1e-14, `rel err ${maxErr}`);
  // The loss is quadratic: the Hessian does not depend on the parameters.
  const h2 = refHessian(withParams(p, new Rng(99).normalVector(m)));
  assert.ok(relErr(h2, h) < 1e-15);
});

/** f, f', f'' of each activation, written independently of dual.ts. */
const SCALAR_ACT: Record<Exclude<Activation, 'softmax'>, (z: number) => [number, number, number]> = {
  linear: (z) => [z, 1, 0],
  relu: (z) => (z > 0 ? [z, 1, 0] : [0, 0, 0]),
  elu: (z) => (z > 0 ? [z, 1, 0] : [Math.exp(z) - 1, Math.exp(z), Math.exp(z)]),
  selu: (z) => {
    const l = SELU_SCALE;
    const la = SELU_SCALE * SELU_ALPHA;
    return z > 0 ? [l * z, l, 0] : [la * (Math.exp(z) - 1), la * Math.exp(z), la * Math.exp(z)];
  },
  tanh: (z) => {
    const c = Math.cosh(z);
    return [Math.tanh(z), 1 / (c * c), (-2 * Math.tanh(z)) / (c * c)];
  },
  sigmoid: (z) => {
    const s = 1 / (1 + Math.exp(-z));
    return [s, s * (1 - s), s * (1 - s) * (1 - 2 * s)];
  },
  softplus: (z) => {
    const s = 1 / (1 + Math.exp(-z));
    return [Math.log(1 + Math.exp(z)), s, s * (1 - s)];
  },
};

test('one-weight models: loss, gradient and curvature match closed forms', (t) => {
  let worst = 0;
  /** Relative to `scale`, the sum of the absolute values of the terms summed into `want`. */
  const check = (what: string, got: number, want: number, scale: number): void => {
    const err = Math.abs(got - want) / scale;
    worst = Math.max(worst, err);
    assert.ok(err < 1e-13, `${what}: got ${got}, want ${want} (rel ${err})`);
  };
  for (const [act, f] of Object.entries(SCALAR_ACT)) {
    // y = act(w x), MSE: L = mean (f(w x) - y)^2.
    const ir = mlpIR([1, 1], [act as Activation], { bias: false });
    const p = randomProblem(ir, 'meanSquaredError', 9, 5);
    const w = 0.8;
    p.params[0] = w;
    let l = 0;
    let g = 0;
    let gs = 0;
    let hh = 0;
    let hs = 0;
    const n = p.x.length;
    for (let i = 0; i < n; i++) {
      const x = p.x[i];
      const [f0, f1, f2] = f(w * x);
      const r = f0 - p.y[i];
      l += r * r;
      g += 2 * r * f1 * x;
      gs += Math.abs(2 * r * f1 * x);
      hh += 2 * (f1 * f1 + r * f2) * x * x;
      hs += 2 * (f1 * f1 + Math.abs(r * f2)) * x * x;
    }
    assert.ok(hs > 0, act);
    check(`${act} loss`, refLoss(p), l / n, l / n);
    check(`${act} gradient`, refGradient(p).grad[0], g / n, gs / n);
    check(`${act} curvature`, refHessian(p)[0], hh / n, hs / n);
    check(`${act} hvp`, refHvp(p, Float64Array.of(-2.5))[0], (-2.5 * hh) / n, (2.5 * hs) / n);
  }
  {
    // Sigmoid + BCE from logits: L = mean softplus(w x) - y w x, L'' = mean x^2 s (1 - s).
    const p = randomProblem(mlpIR([1, 1], ['sigmoid'], { bias: false }), 'binaryCrossentropy', 9, 6);
    const w = p.params[0];
    let l = 0;
    let hh = 0;
    for (let i = 0; i < p.x.length; i++) {
      const z = w * p.x[i];
      const s = 1 / (1 + Math.exp(-z));
      l += Math.log(1 + Math.exp(z)) - p.y[i] * z;
      hh += p.x[i] * p.x[i] * s * (1 - s);
    }
    check('bce loss', refLoss(p), l / p.x.length, Math.abs(l / p.x.length));
    check('bce curvature', refHessian(p)[0], hh / p.x.length, hh / p.x.length);
  }
  t.diagnostic(`worst rel err vs closed forms ${fmt(worst)}`);
});

test('softmax cross-entropy from logits: Hessian is (1/n) sum_i x_i x_i^T (x) (diag p_i - p_i p_i^T)', (t) => {
  const d = 3;
  const k = 4;
  const n = 5;
  const p = randomProblem(mlpIR([d, k], ['softmax'], { bias: false }), 'categoricalCrossentropy', n, 8, {
    softTargets: true,
    paramScale: 2,
  });
  const h = refHessian(p);
  const m = d * k;
  const want = new Float64Array(m * m);
  for (let i = 0; i < n; i++) {
    const x = p.x.subarray(i * d, (i + 1) * d);
    const z = new Float64Array(k);
    for (let j = 0; j < k; j++) for (let a = 0; a < d; a++) z[j] += x[a] * p.params[a * k + j];
    const e = z.map(Math.exp);
    const s = e.reduce((u, v) => u + v, 0);
    const q = e.map((v) => v / s);
    for (let a = 0; a < d; a++) {
      for (let j = 0; j < k; j++) {
        for (let b = 0; b < d; b++) {
          for (let l = 0; l < k; l++) {
            want[(a * k + j) * m + (b * k + l)] += (x[a] * x[b] * ((j === l ? q[j] : 0) - q[j] * q[l])) / n;
          }
        }
      }
    }
  }
  const err = relErr(h, want);
  t.diagnostic(`rel err vs closed form ${fmt(err)}`);
  assert.ok(err < 1e-13, `rel err ${err}`);
});

test('dual numbers: second derivatives of a composite scalar function', () => {
  // f(a, b) = sqrt(a^2 + b) * log(a) / b - max(a, b) + clip(b, 0, 1); seeded along (1, 0) and (0, 1).
  const a0 = 1.7;
  const b0 = 0.6;
  const f = (tape: Tape, a: number, b: number): number => {
    const r = tape.sqrt(tape.add(tape.square(a), b));
    const q = tape.div(tape.mul(r, tape.log(a)), b);
    return tape.add(tape.sub(q, tape.max(a, b)), tape.clip(b, 0, 1));
  };
  const hess = (v: [number, number]): Float64Array => {
    const tape = new Tape();
    const a = tape.variable(a0, v[0]);
    const b = tape.variable(b0, v[1]);
    return tape.reverse(f(tape, a, b), [a, b]).hvp;
  };
  // Analytic derivatives of g = sqrt(a^2 + b) log(a) / b (the max picks a, the clip is linear).
  const r = Math.sqrt(a0 * a0 + b0);
  const L = Math.log(a0);
  const ra = a0 / r;
  const rb = 0.5 / r;
  const raa = b0 / r ** 3;
  const rab = -0.5 * a0 / r ** 3;
  const rbb = -0.25 / r ** 3;
  const gaa = (raa * L + (2 * ra) / a0 - r / (a0 * a0)) / b0;
  const gab = (rab * L + rb / a0) / b0 - (ra * L + r / a0) / (b0 * b0);
  const gbb = (rbb * L) / b0 - (2 * rb * L) / (b0 * b0) + (2 * r * L) / b0 ** 3;
  const c0 = hess([1, 0]);
  const c1 = hess([0, 1]);
  assert.ok(relErr(c0, [gaa, gab]) < 1e-14);
  assert.ok(relErr(c1, [gab, gbb]) < 1e-14);
  // Gradient value parts.
  const tape = new Tape();
  const a = tape.variable(a0);
  const b = tape.variable(b0);
  const grad = tape.reverse(f(tape, a, b), [a, b]).grad;
  const ga = (ra * L + r / a0) / b0 - 1;
  const gb = (rb * L) / b0 - (r * L) / (b0 * b0) + 1;
  assert.ok(relErr(grad, [ga, gb]) < 1e-14);
});

// ---------------------------------------------------------------------------------------------
// (e) fused vs unfused losses
// ---------------------------------------------------------------------------------------------

test('from-logits losses equal the unfused computation where both are finite', (t) => {
  let worst = 0;
  const pairs: [string, Activation, LossName][] = [
    ['softmax + categoricalCrossentropy', 'softmax', 'categoricalCrossentropy'],
    ['sigmoid + binaryCrossentropy', 'sigmoid', 'binaryCrossentropy'],
  ];
  for (const [name, act, loss] of pairs) {
    for (const soft of [false, true]) {
      const fused = mlpIR([4, 5, 3], ['tanh', act]);
      // A trailing dropout makes the output activation 'linear', so the loss is computed unfused.
      const unfused = sequentialIR([4], [
        { kind: 'dense', units: 5, activation: 'tanh' },
        { kind: 'dense', units: 3, activation: act },
        { kind: 'dropout', rate: 0.5 },
      ]);
      const pf = randomProblem(fused, loss, 8, 21, { softTargets: soft });
      const pu: RefProblem = { ...pf, ir: unfused };
      assert.deepEqual(refForward(pf), refForward(pu));
      const v = new Rng(3).normalVector(fused.numParams);
      const a = refGradHvp(pf, v);
      const b = refGradHvp(pu, v);
      const errs = [Math.abs(a.loss - b.loss) / Math.abs(b.loss), relErr(a.grad, b.grad), relErr(a.hvp, b.hvp)];
      worst = Math.max(worst, ...errs);
      t.diagnostic(`${name}${soft ? ' (soft targets)' : ''}: loss/grad/hvp rel diff ${errs.map(fmt).join(' / ')}`);
      for (const e of errs) assert.ok(e < 1e-12, `${name}: ${errs}`);
    }
  }
  t.diagnostic(`worst fused/unfused rel diff ${fmt(worst)}`);
});

test('from-logits losses stay finite and exact at large logits, where the unfused ones clip', () => {
  // x = 1 and no bias, so the logits are the kernel: z = 800 for sigmoid + BCE, z = [400, -400]
  // for softmax + CCE.
  const x = Float64Array.of(1);
  const bce: RefProblem = {
    ir: mlpIR([1, 1], ['sigmoid'], { bias: false }),
    params: Float64Array.of(800),
    x,
    xShape: [1, 1],
    y: Float64Array.of(0),
    yShape: [1, 1],
    loss: 'binaryCrossentropy',
  };
  assert.equal(refLoss(bce), 800); // softplus(800) - 0
  assert.equal(refGradient(bce).grad[0], 1);
  const cce: RefProblem = {
    ir: mlpIR([1, 2], ['softmax'], { bias: false }),
    params: Float64Array.of(400, -400),
    x,
    xShape: [1, 1],
    y: Float64Array.of(0, 1),
    yShape: [1, 2],
    loss: 'categoricalCrossentropy',
  };
  assert.equal(refLoss(cce), 800); // lse([400, -400]) + 400
  const unfused: RefProblem = {
    ...cce,
    ir: sequentialIR([1], [{ kind: 'dense', units: 2, activation: 'softmax', bias: false }, { kind: 'dropout' }]),
  };
  assert.ok(Math.abs(refLoss(unfused) + Math.log(1e-7)) < 1e-12); // clipped at 1e-7
  assert.deepEqual(refGradient(unfused).grad, Float64Array.of(0, 0)); // zero derivative outside the clip
  const bceUnfused: RefProblem = {
    ...bce,
    ir: sequentialIR([1], [{ kind: 'dense', units: 1, activation: 'sigmoid', bias: false }, { kind: 'dropout' }]),
  };
  // log(1 - clip(1)) = log(1 - (1 - 1e-7)), 1e-7 up to the rounding of 1 - 1e-7.
  assert.ok(Math.abs(refLoss(bceUnfused) + Math.log(1e-7)) < 1e-8);
  assert.deepEqual(refGradient(bceUnfused).grad, Float64Array.of(0));
});

test('loss definitions of ir.ts, computed by hand from the outputs', (t) => {
  let worst = 0;
  const defs: [string, ModelIR, LossName, (p: number[], y: number[], k: number) => number][] = [
    ['mse', mlpIR([3, 4], ['tanh']), 'meanSquaredError', (p, y) => mean(p.map((v, i) => (v - y[i]) ** 2))],
    [
      'cce softmax',
      mlpIR([3, 4], ['softmax']),
      'categoricalCrossentropy',
      (p, y, k) => -sum(p.map((v, i) => y[i] * Math.log(v))) / (p.length / k),
    ],
    [
      'cce sigmoid (normalized, clipped)',
      mlpIR([3, 4], ['sigmoid']),
      'categoricalCrossentropy',
      (p, y, k) => {
        let l = 0;
        for (let g = 0; g < p.length; g += k) {
          const s = sum(p.slice(g, g + k));
          for (let j = 0; j < k; j++) l -= y[g + j] * Math.log(clip(p[g + j] / s));
        }
        return l / (p.length / k);
      },
    ],
    [
      'bce sigmoid',
      mlpIR([3, 4], ['sigmoid']),
      'binaryCrossentropy',
      (p, y) => -mean(p.map((v, i) => y[i] * Math.log(v) + (1 - y[i]) * Math.log(1 - v))),
    ],
    [
      'bce softmax (clipped)',
      mlpIR([3, 4], ['softmax']),
      'binaryCrossentropy',
      (p, y) => -mean(p.map((v, i) => y[i] * Math.log(clip(v)) + (1 - y[i]) * Math.log(1 - clip(v)))),
    ],
  ];
  defs.forEach(([name, ir, loss, f], i) => {
    const p = randomProblem(ir, loss, 6, 80 + i, { softTargets: true, paramScale: 3 });
    const want = f(Array.from(refForward(p)), Array.from(p.y), 4);
    const err = Math.abs(refLoss(p) - want) / Math.abs(want);
    worst = Math.max(worst, err);
    assert.ok(err < 1e-13, `${name}: ${refLoss(p)} vs ${want}`);
  });
  t.diagnostic(`worst rel err vs hand-computed losses ${fmt(worst)}`);
});

function sum(a: number[]): number {
  return a.reduce((u, v) => u + v, 0);
}

function mean(a: number[]): number {
  return sum(a) / a.length;
}

function clip(v: number): number {
  return Math.min(Math.max(v, 1e-7), 1 - 1e-7);
}

test('dual numbers: TF conventions at kinks (relu at 0, max ties, clip bounds)', () => {
  const tape = new Tape();
  const x = tape.variable(0, 1);
  const y = tape.variable(0, 1);
  const lo = tape.variable(-1, 1);
  const out = tape.sum([tape.relu(x), tape.scale(tape.max(x, y), 10), tape.scale(tape.clip(lo, -1, 1), 100)]);
  assert.deepEqual(tape.reverse(out, [x, y, lo]).grad, Float64Array.of(10, 0, 100));
  assert.equal(tape.tangent(out), 110);
});

// ---------------------------------------------------------------------------------------------
// Forward semantics by hand
// ---------------------------------------------------------------------------------------------

function forwardOnce(ir: ModelIR, params: number[], x: number[]): number[] {
  const p: RefProblem = {
    ir,
    params: Float64Array.from(params),
    x: Float64Array.from(x),
    xShape: [1, ...ir.nodes[ir.input].outShape],
    y: new Float64Array(0),
    yShape: [1],
    loss: 'meanSquaredError',
  };
  return Array.from(refForward(p));
}

const ONE_TO_NINE = [1, 2, 3, 4, 5, 6, 7, 8, 9];

test('forward: dense kernel is [in, out] row-major, bias after', () => {
  const ir = mlpIR([2, 3], ['linear']);
  assert.deepEqual(ir.params.map((q) => [q.name, q.offset, q.size]), [
    ['dense_1/kernel', 0, 6],
    ['dense_1/bias', 6, 3],
  ]);
  // W = [[1, 2, 3], [4, 5, 6]], b = [0.5, 0, -1]; x = [1, 10].
  assert.deepEqual(forwardOnce(ir, [1, 2, 3, 4, 5, 6, 0.5, 0, -1], [1, 10]), [41.5, 52, 62]);
});

test('forward: conv2d same padding puts the smaller half before (TF)', () => {
  // 3x3x1 input 1..9, 2x2 kernel of ones: total padding 1, all of it after.
  const ir = convIR([3, 3, 1], [{ kind: 'conv2d', filters: 1, kernelSize: 2, padding: 'same', bias: false }]);
  assert.deepEqual(ir.nodes[1].outShape, [3, 3, 1]);
  assert.deepEqual(forwardOnce(ir, [1, 1, 1, 1], ONE_TO_NINE), [12, 16, 9, 24, 28, 15, 15, 17, 9]);
  // 3x3 kernel [[0,0,0],[0,0,0],[0,0,1]] (picks the bottom-right neighbour), stride 2: pad 1 before.
  const ir2 = convIR(
    [3, 3, 1],
    [{ kind: 'conv2d', filters: 1, kernelSize: 3, strides: 2, padding: 'same', bias: false }],
  );
  assert.deepEqual(ir2.nodes[1].outShape, [2, 2, 1]);
  const k = [0, 0, 0, 0, 0, 0, 0, 0, 1];
  assert.deepEqual(forwardOnce(ir2, k, ONE_TO_NINE), [5, 0, 0, 0]);
  const center = [0, 0, 0, 0, 1, 0, 0, 0, 0];
  assert.deepEqual(forwardOnce(ir2, center, ONE_TO_NINE), [1, 3, 7, 9]);
});

test('forward: conv2d kernel layout [kh, kw, cin, cout] and valid strides', () => {
  // 2x2x2 input, 1x1 kernel mixing channels: out_co = sum_ci x_ci K[0,0,ci,co] + b_co.
  const ir = convIR([2, 2, 2], [{ kind: 'conv2d', filters: 3, kernelSize: 1, strides: [1, 2] }]);
  assert.deepEqual(ir.nodes[1].outShape, [2, 1, 3]);
  const k = [1, 2, 3, 10, 20, 30];
  const b = [0, 0, 100];
  const x = [1, 2, 3, 4, 5, 6, 7, 8]; // (h, w, c)
  // positions (0,0): [1, 2]; (1,0): [5, 6]
  assert.deepEqual(forwardOnce(ir, [...k, ...b], x), [21, 42, 163, 65, 130, 295]);
  // A 2x3 kernel [[0, 1, 0], [10, 0, 0]] (rows are kh), valid, on 3x3 1..9: x[oh, 1] + 10 x[oh + 1, 0].
  const ir2 = convIR([3, 3, 1], [{ kind: 'conv2d', filters: 1, kernelSize: [2, 3], bias: false }]);
  assert.deepEqual(ir2.nodes[1].outShape, [2, 1, 1]);
  assert.deepEqual(forwardOnce(ir2, [0, 1, 0, 10, 0, 0], ONE_TO_NINE), [42, 75]);
});

test('forward: pooling with same padding (max ignores, avg excludes the padding)', () => {
  const avg = convIR([3, 3, 1], [{ kind: 'avgPool2d', poolSize: 2, padding: 'same' }]);
  assert.deepEqual(avg.nodes[1].outShape, [2, 2, 1]);
  assert.deepEqual(forwardOnce(avg, [], ONE_TO_NINE), [3, 4.5, 7.5, 9]);
  const neg = ONE_TO_NINE.map((v) => -v);
  const max = convIR([3, 3, 1], [{ kind: 'maxPool2d', poolSize: 2, padding: 'same' }]);
  assert.deepEqual(forwardOnce(max, [], neg), [-1, -3, -7, -9]);
  const avg1 = convIR([3, 3, 1], [{ kind: 'avgPool2d', poolSize: 3, strides: 1, padding: 'same' }]);
  assert.deepEqual(forwardOnce(avg1, [], ONE_TO_NINE), [3, 3.5, 4, 4.5, 5, 5.5, 6, 6.5, 7]);
  const maxValid = convIR([3, 3, 1], [{ kind: 'maxPool2d', poolSize: 2, strides: 1 }]);
  assert.deepEqual(forwardOnce(maxValid, [], ONE_TO_NINE), [5, 6, 8, 9]);
  const gap = convIR([3, 3, 1], [{ kind: 'globalAvgPool2d' }]);
  assert.deepEqual(forwardOnce(gap, [], ONE_TO_NINE), [5]);
});

test('forward: batchnorm inference formula, concatenate on the last axis, add, flatten', () => {
  const b = new IRBuilder();
  const x = b.input([2, 2]);
  const bn = b.batchNorm(x, { epsilon: 0.5, movingMean: [1, -1], movingVariance: [3.5, 0.5] });
  const cat = b.concatenate([bn, x]);
  const s = b.add([cat, cat]);
  b.flatten(s);
  const ir = b.build();
  assert.deepEqual(ir.nodes[2].outShape, [2, 4]);
  assert.deepEqual(ir.nodes[4].outShape, [8]);
  // gamma = [2, 3], beta = [0.5, -0.5]; std = [2, 1].
  const out = forwardOnce(ir, [2, 3, 0.5, -0.5], [5, 1, -3, 0]);
  const bnv = [2 * (5 - 1) / 2 + 0.5, 3 * (1 + 1) / 1 - 0.5, 2 * (-3 - 1) / 2 + 0.5, 3 * (0 + 1) - 0.5];
  assert.deepEqual(out, [bnv[0], bnv[1], 5, 1, bnv[2], bnv[3], -3, 0].map((v) => 2 * v));
});

test('forward: activations', () => {
  const z = [-1.5, 0.25, 2];
  const run = (act: Activation): number[] =>
    forwardOnce(sequentialIR([3], [{ kind: 'activation', activation: act }]), [], z);
  for (const [act, f] of Object.entries(SCALAR_ACT)) {
    const got = run(act as Activation);
    z.forEach((v, i) => assert.ok(Math.abs(got[i] - f(v)[0]) <= 1e-15 * Math.max(1, Math.abs(got[i])), `${act}(${v})`));
  }
  const e = z.map(Math.exp);
  const s = e[0] + e[1] + e[2];
  assert.ok(relErr(run('softmax'), e.map((v) => v / s)) < 1e-15);
});

// ---------------------------------------------------------------------------------------------
// Speed
// ---------------------------------------------------------------------------------------------

test('speed: one HVP of a ~340-parameter MLP on 20 samples takes well under a second', (t) => {
  const p = randomProblem(mlpIR([10, 16, 8, 3], ['tanh', 'relu', 'softmax']), 'categoricalCrossentropy', 20, 4);
  const v = new Rng(1).normalVector(p.ir.numParams);
  refHvp(p, v);
  const t0 = performance.now();
  const reps = 5;
  for (let r = 0; r < reps; r++) refHvp(p, v);
  const ms = (performance.now() - t0) / reps;
  const t1 = performance.now();
  refHessian(p);
  const hms = performance.now() - t1;
  t.diagnostic(`${p.ir.numParams} params, 20 samples: ${ms.toFixed(1)} ms per HVP, ${hms.toFixed(0)} ms per Hessian`);
  assert.ok(ms < 500, `HVP took ${ms} ms`);
});

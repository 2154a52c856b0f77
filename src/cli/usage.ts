/**
 * The `basin` command line's vocabulary: the usage text and, per command, the options it takes.
 * An option that does not apply to a command is an error, never silently ignored. This module is
 * loaded by the launcher (main thread) and the job thread alike, so it imports nothing heavy.
 */
import { VERSION } from '../engine/version';

/** Flags (no value) every command accepts. */
export const FLAGS: ReadonlySet<string> = new Set(['json', 'help', 'version', 'quiet']);

/** Where the model and data come from: every command that loads a problem takes these. */
const PROBLEM = ['model', 'data', 'labels', 'no-header', 'x-key', 'y-key', 'loss', 'experiment', 'backend', 'chunk-size', 'out'];
/** Curvature jobs: the curvature, the Hessian-vector product and the block of one layer. */
const CURVATURE = [...PROBLEM, 'seed', 'hvp', 'layer', 'curvature'];
/** Directions of slices and surfaces. */
const DIRECTIONS = ['seed', 'norm', 'ignore', 'test', 'csv'];

export const TRAIN_FLAGS = [
  'optimizer', 'lr', 'steps', 'batch-size', 'momentum', 'rho', 'igr', 'weight-decay', 'schedule',
  'probe-every', 'trace-every', 'noise-every', 'layers-every', 'checkpoint-every', 'checkpoint-seconds', 'probe-subset', 'resume', 'curvature',
];

/** The options (without the leading --) of each command; flags of FLAGS are accepted everywhere. */
export const COMMAND_OPTIONS: ReadonlyMap<string, ReadonlySet<string>> = new Map(
  Object.entries({
    info: PROBLEM,
    eigs: [...CURVATURE, 'k', 'which', 'method', 'max-iter', 'tol', 'stop'],
    trace: [...CURVATURE, 'method', 'matvecs'],
    density: [...CURVATURE, 'steps', 'runs', 'grid'],
    slice: [...PROBLEM, ...DIRECTIONS, 'dir', 'x', 'tol'],
    surface: [...PROBLEM, ...DIRECTIONS, 'dir', 'x', 'y', 'tol'],
    interpolate: [...PROBLEM, 'x', 'test', 'csv'],
    trajectory: [...PROBLEM, 'x', 'y', 'steps', 'test', 'csv'],
    flatness: [...PROBLEM, 'seed', 'measures', 'rho', 'asam-rho', 'eta', 'epsilon', 'target', 'draws', 'delta', 'directions', 'criterion'],
    train: [...PROBLEM, 'seed', ...TRAIN_FLAGS],
    compare: [],
    report: ['out'],
  }).map(([k, v]) => [k, new Set(v)]),
);

/** Options that take no value (besides FLAGS). */
export const BOOLEAN_OPTIONS: ReadonlySet<string> = new Set(['test', 'no-header']);

/** Every option some command takes: the parser's vocabulary (a word outside it is unknown). */
export const ALL_OPTIONS: ReadonlySet<string> = new Set([...COMMAND_OPTIONS.values()].flatMap((s) => [...s]));

export const USAGE = `basin ${VERSION}: loss-landscape curvature from the command line

Usage:
  basin <command> [experiment.ts|.js] [options]
  basin <command> --model model.json --data data.json [options]

Commands:
  info      describe the model: layers, parameters, loss and accuracy on the data
  eigs      curvature eigenvalues     --k N (1)  --which top|bottom  --method lanczos|power
                                      --max-iter N  --tol T (1e-6, both methods)
                                      --stop bound|residual (tol bounds the relative eigenvalue
                                      error estimate, or with --stop residual the residual
                                      bound: Ritz residual plus the products' float32 noise);
                                      also the gradient's overlap with the eigenvectors
  trace     curvature trace           --method hutchpp|hutchinson  --matvecs M (60)
  density   spectral density (SLQ)    --steps S (90)  --runs R (1)  --grid G (10000)
  slice     1-D loss slices           --dir KIND[,KIND...] (random; also gradient, eigen,
                                      eigenK, bottom, bottomK)
                                      --x start:stop:steps (-1:1:51)
                                      --tol T (1e-5) for eigenvector directions
  surface   2-D loss surface          --dir KIND[,KIND] (random)  --x (-1:1:51)  --y (as x)
  interpolate A.json B.json           loss on (1-a) A + a B    --x (-0.5:1.5:401)
  trajectory C1.json ... Cn.json      loss on the plane of the checkpoints' two principal
                                      components, path projected  --x --y  --steps (31)
  train     train and probe           --optimizer gd|sgd|momentum|nesterov|adam|sam|asam|flow
                                      --lr --steps --batch-size --momentum --rho --igr MU
                                      --weight-decay --schedule constant|step:N:G|cosine:T[:MIN]
                                      --probe-every K (10) --trace-every --noise-every
                                      --layers-every --checkpoint-every --probe-subset N
                                      --checkpoint-seconds S (30: a checkpoint at least every S s)
                                      --curvature ggn|fisher|empirical-fisher (also probe its
                                      top eigenvalue beside the Hessian's)
                                      --out DIR (runs/NAME-TIME)  --resume DIR
  compare   RUN... side by side
  report    RUN|RESULT.json...        one self-contained HTML file drawing runs and results with
                                      the panel's charts (--out FILE.html; default RUN/report.html)
  flatness  flatness measures         --measures sam,asam,epsilon,pacbayes,radius
                                      --rho (SAM) --asam-rho --eta --epsilon --target --draws
                                      --delta --directions
                                      --criterion error|loss

Slice options:
  --norm filter|layer|none  --ignore biasbn|none  (Li et al. 2018; random directions default to
  filter normalization with biases zeroed)   --test  also on the test data   --csv FILE

Inputs:
  --model FILE      TF.js layers model.json (weight shards beside it), or model.onnx
                    (exported by torch.onnx.export or tf2onnx; give --loss, e.g.
                    crossEntropyFromLogits for a PyTorch classifier)
  --data FILE       .json {"x","y"}, .csv (header; --labels COL[,COL], default last column;
                    --no-header: every row is data, labels by 0-based column index),
                    x.npy,y.npy, or .npz (arrays x and y, or --x-key NAME --y-key NAME;
                    images NCHW for a model from .onnx; integer class labels)
  --loss NAME       meanSquaredError | categoricalCrossentropy | binaryCrossentropy | crossEntropyFromLogits
                    (default: from the output activation)
  EXPERIMENT        a .ts/.js module exporting model(tf), data(tf), loss (see README)

Options:
  --seed N          random seed (0)
  --backend onnxruntime|tensorflow|wasm|cpu  engine (default: ONNX Runtime when it loads and
                    can run the model, else the best TF.js backend; a TF.js name runs on TF.js)
  --curvature hessian|ggn|fisher|empirical-fisher
                    eigs, trace, density: the curvature analysed (hessian): the generalized
                    Gauss-Newton J^T H_L J, the true Fisher (= GGN for MSE and cross-entropy on
                    logits) or the empirical Fisher (sum of per-sample gradient outer products)
  --hvp auto|exact|fd  Hessian-vector products (auto: checked, fastest correct)
  --layer NAME      analyse the curvature block of one layer's parameters
  --chunk-size N    samples per evaluation chunk (bounded memory)
  --json            print one JSON object      --out FILE   also write the JSON to FILE
  --quiet           no progress on stderr      --help, --version
`;

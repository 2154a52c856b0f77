/**
 * Which source line defines which layer of a model, for the per-layer values shown beside the code
 * (decorations and CodeLens): a pure function of the module's text and the layer names the model
 * IR uses (TF.js layer names), with no VS Code import so it is unit-tested on its own.
 *
 * A layer is matched by its name, never by its position among some fixed set of layer kinds:
 *   - a layer named in the code (`tf.layers.conv2d({ name: 'conv1', ... })`) goes to the call that
 *     names it;
 *   - a layer TF.js named itself ('<snake_class>_<Class><uid>', e.g. `conv2d_Conv2D1`; the uid
 *     counts every layer of that class the process ever made, so it is not the position in the
 *     model) is the n-th unnamed layer of its class in the model and goes to the n-th unnamed call
 *     of that factory in the source (`layers.conv2d(` makes a Conv2D: factory and class agree but
 *     for case).
 * A layer that cannot be placed with certainty gets no line: a name the code does not contain, a
 * class whose unnamed calls in the source do not number exactly its unnamed layers in the model (a
 * call in a loop or a helper, a second model in the file), or a call whose name is computed.
 * Layers without parameters (flatten, dropout, pooling) never shift the others: they are matched by
 * class like every other layer, so whatever sits between two dense layers does not matter.
 */

/** A layer factory call in the source: `layers.<factory>(` (tf.layers.dense, a destructured layers.conv2d, ...). */
export interface LayerCall {
  /** The factory as written: 'dense', 'conv2d', 'maxPooling2d'. */
  factory: string;
  /** The 0-based line where the call starts (where its value is shown). */
  line: number;
  /** The layer's name when the call gives it as a string literal. */
  name?: string;
  /** True when the call has a `name` it does not give as a plain string literal (computed). */
  dynamicName?: boolean;
}

/** The text with comments and the contents of strings blanked (quotes, newlines and offsets kept). */
function codeMask(text: string): string {
  const out = text.split('');
  const blank = (from: number, to: number): void => {
    for (let k = from; k < to; k++) if (out[k] !== '\n') out[k] = ' ';
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    const d = text[i + 1];
    if (c === '/' && d === '/') {
      const end = text.indexOf('\n', i);
      const stop = end < 0 ? text.length : end;
      blank(i, stop);
      i = stop;
    } else if (c === '/' && d === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end < 0 ? text.length : end + 2;
      blank(i, stop);
      i = stop;
    } else if (c === '"' || c === "'" || c === '`') {
      let j = i + 1;
      while (j < text.length && text[j] !== c) {
        if (text[j] === '\\') j++;
        else if (c !== '`' && text[j] === '\n') break; // an unterminated string ends at the line
        j++;
      }
      blank(i + 1, Math.min(j, text.length));
      i = j + 1;
    } else i++;
  }
  return out.join('');
}

const CALL = /\blayers\s*\.\s*([a-z][A-Za-z0-9_]*)\s*\(/g;
const NAME_KEY = /\bname\s*:\s*/g;

/** Every layer factory call in `text`, in source order (comments and strings are not code). */
export function layerCalls(text: string): LayerCall[] {
  const code = codeMask(text);
  const lineStarts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === '\n') lineStarts.push(i + 1);
  const lineOf = (offset: number): number => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const calls: LayerCall[] = [];
  for (const m of code.matchAll(CALL)) {
    const start = m.index ?? 0;
    const open = start + m[0].length - 1;
    const call: LayerCall = { factory: m[1], line: lineOf(start) };
    // The `name` of the call's own configuration object (not of a nested object or call).
    const key = findOwnKey(code, open);
    if (key !== undefined) {
      const q = text[key];
      if (q === "'" || q === '"' || q === '`') {
        const end = text.indexOf(q, key + 1);
        const value = end > key ? text.slice(key + 1, end) : undefined;
        if (value !== undefined && !(q === '`' && value.includes('${')) && !value.includes('\n')) call.name = value;
        else call.dynamicName = true;
      } else call.dynamicName = true;
    }
    calls.push(call);
  }
  return calls;
}

/** The offset of the value of the `name:` key of the object literal that is the call's first argument, if any. */
function findOwnKey(code: string, open: number): number | undefined {
  let depth = 1;
  let objectAtTwo = false;
  for (let i = open + 1; i < code.length && depth > 0; i++) {
    const ch = code[i];
    if (ch === '(' || ch === '[' || ch === '{') {
      depth++;
      if (depth === 2) objectAtTwo = ch === '{';
      continue;
    }
    if (ch === ')' || ch === ']' || ch === '}') {
      depth--;
      continue;
    }
    if (depth === 2 && objectAtTwo && (ch === 'n' || ch === 'N')) {
      NAME_KEY.lastIndex = i;
      const m = NAME_KEY.exec(code);
      // `name` as a whole key: not the end of another identifier (`layerName:`) nor a member (`x.name`).
      if (m && m.index === i && !/[\w$.]/.test(code[i - 1] ?? '')) return i + m[0].length;
    }
  }
  return undefined;
}

/** The TF.js class of a name TF.js gave a layer itself ('conv2d_Conv2D3' -> 'Conv2D'), or undefined for a name a user gave. */
export function autoNamedClass(name: string): string | undefined {
  const m = /^([a-z0-9_]+)_([A-Z][A-Za-z0-9]*?)(\d+)$/.exec(name);
  if (!m) return undefined;
  // TF.js makes the prefix from the class in snake case: 'max_pooling2d' for MaxPooling2D.
  return m[1].replace(/_/g, '') === m[2].toLowerCase() ? m[2] : undefined;
}

/**
 * The 0-based line of each layer of `layers` (the model's layer names, in model order) in the
 * module's source `text`; layers that cannot be placed with certainty are absent.
 */
export function matchLayerLines(text: string, layers: readonly string[]): Map<string, number> {
  const calls = layerCalls(text);
  const out = new Map<string, number>();
  const byName = new Map<string, LayerCall[]>();
  for (const c of calls) if (c.name !== undefined) byName.set(c.name, [...(byName.get(c.name) ?? []), c]);
  // Named in the code: the one call that gives that name.
  for (const l of layers) {
    const named = byName.get(l);
    if (named?.length === 1) out.set(l, named[0].line);
  }
  // Named by TF.js: the n-th unnamed layer of a class is the n-th unnamed call of its factory.
  const unnamedLayers = new Map<string, string[]>();
  for (const l of layers) {
    if (out.has(l) || byName.has(l)) continue;
    const cls = autoNamedClass(l);
    if (cls === undefined) continue;
    const k = cls.toLowerCase();
    unnamedLayers.set(k, [...(unnamedLayers.get(k) ?? []), l]);
  }
  const unnamedCalls = new Map<string, LayerCall[]>();
  for (const c of calls) {
    if (c.name !== undefined || c.dynamicName) continue;
    const k = c.factory.toLowerCase();
    unnamedCalls.set(k, [...(unnamedCalls.get(k) ?? []), c]);
  }
  // A computed name may be undefined when it runs (TF.js then names the layer): that factory's unnamed layers are uncertain.
  const dynamic = new Set(calls.filter((c) => c.dynamicName).map((c) => c.factory.toLowerCase()));
  for (const [k, names] of unnamedLayers) {
    const cs = unnamedCalls.get(k) ?? [];
    if (dynamic.has(k) || cs.length !== names.length) continue;
    names.forEach((n, i) => out.set(n, cs[i].line));
  }
  return out;
}

/**
 * Numbers next to the code: a CodeLens above the model definition of an experiment module
 * ("lambda_max 10.03 | 2/eta 10.00 | trace 22.4 | Probe again"), and each layer's sharpness as an
 * inline decoration at the end of the line that defines it, after a run. Decorations are cleared
 * as soon as the document changes (they describe the code as it was run). Layers are placed on
 * their lines by name (layerLines.ts); the lens follows a live run (lensRefresh.ts).
 */
import * as vscode from 'vscode';
import type { History } from './history';
import { fmt } from '../shared/format';
import { matchLayerLines } from './layerLines';
import { LensRefresh } from './lensRefresh';

export const EXPERIMENT_GLOB = '**/*.basin.{ts,js}';

export function isExperiment(uri: vscode.Uri): boolean {
  return /\.basin\.(ts|js)$/.test(uri.fsPath);
}


/** The line of `model(` (the model definition), or 0. */
function modelLine(doc: vscode.TextDocument): number {
  for (let i = 0; i < doc.lineCount; i++) if (/\bmodel\s*\(/.test(doc.lineAt(i).text)) return i;
  return 0;
}

/** A layer line longer than this gets its value as a CodeLens too (a half-width editor cuts it off). */
const LONG_LINE = 60;

/** Each layer's line in `doc`, for per-layer values in model order; layers it cannot place are left out. */
function layerEntries(doc: vscode.TextDocument, values: Record<string, number>): { name: string; value: number; line: number }[] {
  const lines = matchLayerLines(doc.getText(), Object.keys(values));
  return Object.entries(values).flatMap(([name, value]) => {
    const line = lines.get(name);
    return line === undefined || line >= doc.lineCount ? [] : [{ name, value, line }];
  });
}

/**
 * The lens that shows the newest probe ("lambda_max ... (step N)"): provided without a command, which
 * resolveCodeLens makes from the newest records when the editor is about to show it.
 */
class ProbeLens extends vscode.CodeLens {
  constructor(
    range: vscode.Range,
    readonly doc: vscode.Uri,
  ) {
    super(range);
  }
}

export class BasinCodeLens implements vscode.CodeLensProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this.changed.event;
  /** Fires onDidChangeCodeLenses at the pace the editor shows lenses (else a live run starves it). */
  private readonly gate = new LensRefresh(
    () => this.changed.fire(),
    () => vscode.window.visibleTextEditors.filter((e) => isExperiment(e.document.uri)).map((e) => e.document.uri.toString()),
  );

  constructor(private readonly history: History) {}

  /** What the lenses show changed (a probe streamed, a run ended): as often as it likes. */
  refresh(): void {
    this.gate.changed();
  }

  dispose(): void {
    this.gate.dispose();
    this.changed.dispose();
  }

  /**
   * The editor asks for the lenses (after its debounce). The probe lens is resolved later: the
   * editor updates a lens's text only when it resolves the lenses in view, after a second
   * debounce that each new answer here restarts; so the next refresh waits for that (see
   * resolveCodeLens), and a document without a probe lens is done now.
   */
  provideCodeLenses(doc: vscode.TextDocument): vscode.CodeLens[] {
    const range = new vscode.Range(modelLine(doc), 0, modelLine(doc), 0);
    const latest = this.history.latestFor(doc.uri.fsPath);
    const lenses: vscode.CodeLens[] = [];
    if (latest?.last) {
      lenses.push(
        new ProbeLens(range, doc.uri),
        new vscode.CodeLens(range, { title: 'Probe again', command: 'basin.probeNow', arguments: [doc.uri], tooltip: "Basin: probe the run's newest checkpoint (no training)" }),
        new vscode.CodeLens(range, { title: 'Train again', command: 'basin.trainAndProbe', arguments: [doc.uri] }),
      );
      // Per-layer sharpness over long layer lines, where the end-of-line value is out of sight.
      const layers = [...latest.run.probes].reverse().find((q) => q.layerSharpness)?.layerSharpness;
      if (layers) {
        for (const { name, value, line } of layerEntries(doc, layers)) {
          if (doc.lineAt(line).text.length <= LONG_LINE) continue;
          lenses.push(new vscode.CodeLens(new vscode.Range(line, 0, line, 0), { title: `λ ${name} ${fmt(value)}`, command: 'basin.openPanel', tooltip: `Basin: top Hessian eigenvalue of layer ${name}'s parameters` }));
        }
      }
    } else {
      lenses.push(
        new vscode.CodeLens(range, { title: 'Basin: Train and Probe', command: 'basin.trainAndProbe', arguments: [doc.uri] }),
        new vscode.CodeLens(range, { title: 'Sharpness Spectrum', command: 'basin.spectrum', arguments: [doc.uri] }),
      );
      this.gate.provided(doc.uri.toString());
    }
    return lenses;
  }

  /** The editor is about to show the probe lens: its text from the newest records (read now). */
  resolveCodeLens(lens: vscode.CodeLens): vscode.CodeLens {
    if (!(lens instanceof ProbeLens)) return lens;
    this.gate.provided(lens.doc.toString());
    lens.command = this.probeCommand(lens.doc);
    return lens;
  }

  /** "lambda_max 10.03 | 2/eta 10.00 | trace 22.4", with the step while the run runs. */
  private probeCommand(uri: vscode.Uri): vscode.Command {
    const latest = this.history.latestFor(uri.fsPath);
    const p = latest?.last;
    if (!latest || !p) return { title: 'Basin: Train and Probe', command: 'basin.trainAndProbe', arguments: [uri] };
    const parts = [`lambda_max ${fmt(p.lambdaMax)}`];
    if (p.threshold !== undefined) parts.push(`2/eta ${fmt(p.threshold)}`);
    if (p.trace !== undefined) parts.push(`trace ${fmt(p.trace, 3)}`);
    const running = !latest.run.done;
    return {
      title: `${running ? '$(sync~spin) ' : ''}${parts.join(' | ')}${running ? ` (step ${p.step})` : ''}`,
      command: 'basin.openPanel',
      tooltip: 'Basin: the latest probe of this module (open the panel)',
    };
  }
}


export class LayerDecorations implements vscode.Disposable {
  private readonly type = vscode.window.createTextEditorDecorationType({
    after: { color: new vscode.ThemeColor('editorCodeLens.foreground'), margin: '0 0 0 2em', fontStyle: 'italic' },
    rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
  });
  /** fsPath -> decorations, kept until the document changes. */
  private readonly current = new Map<string, vscode.DecorationOptions[]>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor() {
    this.disposables.push(
      vscode.workspace.onDidChangeTextDocument((e) => {
        if (e.contentChanges.length && this.current.delete(e.document.uri.fsPath)) this.apply();
      }),
      vscode.window.onDidChangeVisibleTextEditors(() => this.apply()),
    );
  }

  /** Shows each layer's sharpness beside the line that defines it (a layer not found in the code gets none). */
  show(doc: vscode.TextDocument, sharpness: Record<string, number>, step: number): void {
    const decos: vscode.DecorationOptions[] = [];
    layerEntries(doc, sharpness).forEach(({ name, value, line }) => {
      const end = doc.lineAt(line).range.end;
      decos.push({
        range: new vscode.Range(end, end),
        renderOptions: { after: { contentText: `λ ${fmt(value)}` } },
        hoverMessage: new vscode.MarkdownString(`**λ ${fmt(value, 6)}** · ${name}: top Hessian eigenvalue of this layer's parameters (step ${step})`),
      });
    });
    this.current.set(doc.uri.fsPath, decos);
    this.apply();
  }

  private apply(): void {
    for (const editor of vscode.window.visibleTextEditors) editor.setDecorations(this.type, this.current.get(editor.document.uri.fsPath) ?? []);
  }

  dispose(): void {
    this.type.dispose();
    for (const d of this.disposables) d.dispose();
  }
}

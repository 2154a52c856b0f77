/**
 * The Basin panel beside the editor: one webview panel, created or revealed on demand, revived by
 * a serializer after VS Code restarts. It is a view of the host's History: on `ready` (and when it
 * becomes visible again) it receives the whole snapshot, then live messages. Security: a nonce
 * Content-Security-Policy, no inline scripts, and local resources limited to dist/ and media/.
 * Every message from the page is checked before use (`checkFromWebview`): a malformed one is
 * logged and ignored, and only the panel's known commands (`PANEL_COMMANDS`) reach `onCommand`.
 */
import * as crypto from 'node:crypto';
import * as vscode from 'vscode';
import type { FromWebview, ToWebview } from '../shared/protocol';
import { checkFromWebview } from '../shared/validate';
import type { History } from './history';

/** A command the panel's buttons may ask for (checked against PANEL_COMMANDS on arrival). */
export type PanelCommand = Extract<FromWebview, { type: 'command' }>['command'];

/** The VS Code command each panel button runs (a Map: a string from the page selects nothing else). */
export const PANEL_COMMAND_IDS: ReadonlyMap<PanelCommand, string> = new Map<PanelCommand, string>([
  ['stop', 'basin.stop'],
  ['probe', 'basin.probeNow'],
  ['export', 'basin.export'],
  ['compare', 'basin.compareRuns'],
  ['resume', 'basin.resume'],
  ['trajectory', 'basin.trajectory'],
]);

/** What the panel asks for: a command, and the run it shows (for the run menu's actions). */
export type PanelCommandHandler = (c: PanelCommand, runId?: string) => void;

export class BasinPanel implements vscode.Disposable {
  static readonly viewType = 'basin.panel';
  static current: BasinPanel | undefined;

  private readonly disposables: vscode.Disposable[] = [];
  private readonly exports = new Map<number, (images: Record<string, string>) => void>();
  private nextExport = 1;
  private ready = false;

  static createOrShow(context: vscode.ExtensionContext, history: History, onCommand: PanelCommandHandler): BasinPanel {
    if (BasinPanel.current) {
      BasinPanel.current.panel.reveal(vscode.ViewColumn.Beside, true);
      return BasinPanel.current;
    }
    const panel = vscode.window.createWebviewPanel(BasinPanel.viewType, 'Basin', { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }, BasinPanel.options(context));
    BasinPanel.current = new BasinPanel(panel, context, history, onCommand);
    return BasinPanel.current;
  }

  static revive(panel: vscode.WebviewPanel, context: vscode.ExtensionContext, history: History, onCommand: PanelCommandHandler): BasinPanel {
    panel.webview.options = BasinPanel.options(context);
    BasinPanel.current = new BasinPanel(panel, context, history, onCommand);
    return BasinPanel.current;
  }

  static options(context: vscode.ExtensionContext): vscode.WebviewOptions & vscode.WebviewPanelOptions {
    return {
      enableScripts: true,
      retainContextWhenHidden: false,
      localResourceRoots: [vscode.Uri.joinPath(context.extensionUri, 'dist'), vscode.Uri.joinPath(context.extensionUri, 'media')],
    };
  }

  private constructor(
    readonly panel: vscode.WebviewPanel,
    private readonly context: vscode.ExtensionContext,
    private readonly history: History,
    private readonly onCommand: PanelCommandHandler,
  ) {
    panel.iconPath = vscode.Uri.joinPath(context.extensionUri, 'media', 'basin.svg');
    panel.webview.html = this.html(panel.webview);
    this.disposables.push(
      panel.onDidDispose(() => this.dispose()),
      panel.webview.onDidReceiveMessage((m: unknown) => this.receive(m)),
      // Hidden panels lose their page (retainContextWhenHidden is off): they say ready again on show.
      panel.onDidChangeViewState(() => {
        if (!panel.visible) this.ready = false;
      }),
      history.onMessage((m) => this.post(m)),
    );
  }

  post(m: ToWebview): void {
    if (this.ready) void this.panel.webview.postMessage(m);
  }

  private receive(raw: unknown): void {
    const problem = checkFromWebview(raw);
    if (problem) {
      console.warn(`basin: ignored a malformed message from the panel: ${problem}`);
      return;
    }
    const m = raw as FromWebview;
    switch (m.type) {
      case 'ready':
        this.ready = true;
        void this.panel.webview.postMessage({ type: 'init', snapshot: this.history.snapshot() } satisfies ToWebview);
        break;
      case 'exported': {
        const resolve = this.exports.get(m.requestId);
        this.exports.delete(m.requestId);
        resolve?.(m.images);
        break;
      }
      case 'command':
        this.onCommand(m.command, m.runId);
        break;
    }
  }

  /** The panel's charts as PNG data URLs. */
  requestPng(background: 'theme' | 'white' = 'theme', timeoutMs = 10_000): Promise<Record<string, string>> {
    const requestId = this.nextExport++;
    return new Promise((resolve, reject) => {
      this.exports.set(requestId, resolve);
      this.post({ type: 'exportPng', requestId, background });
      setTimeout(() => {
        if (this.exports.delete(requestId)) reject(new Error('the panel did not answer the export request'));
      }, timeoutMs);
    });
  }

  private html(webview: vscode.Webview): string {
    const nonce = crypto.randomBytes(16).toString('base64');
    const script = webview.asWebviewUri(vscode.Uri.joinPath(this.context.extensionUri, 'dist', 'webview.js'));
    const css = webview.asWebviewUri(vscode.Uri.joinPath(this.context.extensionUri, 'media', 'panel.css'));
    const csp = [
      "default-src 'none'",
      `img-src ${webview.cspSource} data:`,
      `style-src ${webview.cspSource}`,
      `script-src 'nonce-${nonce}'`,
      `font-src ${webview.cspSource}`,
    ].join('; ');
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${css}">
<title>Basin</title>
</head>
<body>
<script nonce="${nonce}" src="${script}"></script>
</body>
</html>`;
  }

  dispose(): void {
    if (BasinPanel.current === this) BasinPanel.current = undefined;
    for (const d of this.disposables.splice(0)) d.dispose();
    this.panel.dispose();
  }
}

/**
 * Basin's VS Code entry point. All computation runs in the forked compute worker; this side only
 * asks for jobs and shows results. (The panel, CodeLens and live mode come on top of this.)
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { ComputeClient, JobError } from './computeClient';
import type { EigsResult, InfoResult } from '../shared/results';

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel('Basin');
  const client = new ComputeClient(path.join(context.extensionPath, 'dist', 'worker.js'), (l) => output.appendLine(l));
  context.subscriptions.push(output, { dispose: () => client.dispose() });

  const pickModel = async (uri?: vscode.Uri): Promise<vscode.Uri | undefined> =>
    uri ?? (await vscode.window.showOpenDialog({ canSelectMany: false, filters: { 'TF.js model': ['json'] }, title: 'Basin: pick a model.json' }))?.[0];

  const pickData = async (model: vscode.Uri): Promise<string | undefined> => {
    const key = `basin.data:${model.fsPath}`;
    const remembered = context.workspaceState.get<string>(key);
    if (remembered) return remembered;
    const picked = await vscode.window.showOpenDialog({ canSelectMany: false, filters: { Data: ['json', 'csv', 'npy'] }, title: 'Basin: pick the data to evaluate the model on' });
    if (!picked?.[0]) return undefined;
    await context.workspaceState.update(key, picked[0].fsPath);
    return picked[0].fsPath;
  };

  context.subscriptions.push(
    vscode.commands.registerCommand('basin.inspectModel', async (uri?: vscode.Uri) => {
      const model = await pickModel(uri);
      if (!model) return;
      const data = await pickData(model);
      if (!data) return;
      const problem = { model: model.fsPath, data };
      try {
        await vscode.window.withProgress(
          { location: vscode.ProgressLocation.Notification, title: 'Basin', cancellable: true },
          async (progress, token) => {
            const controller = new AbortController();
            token.onCancellationRequested(() => controller.abort());
            const hooks = { signal: controller.signal, onProgress: (p: { message: string }) => progress.report({ message: p.message }) };
            const info = (await client.run('info', problem, {}, hooks)) as InfoResult;
            const eigs = (await client.run('eigs', problem, { k: 3 }, hooks)) as EigsResult;
            output.appendLine(`${info.model}: ${info.params} parameters, ${info.lossName} ${info.lossValue}`);
            output.appendLine(`top eigenvalues ${eigs.eigenvalues.map((v) => v.toPrecision(6)).join(', ')} (${eigs.hvps} products, ${eigs.hvpMethod}, ${eigs.backendDetail})`);
            output.show(true);
            void vscode.window.showInformationMessage(`Basin: lambda_max = ${eigs.eigenvalues[0].toPrecision(5)} (${eigs.backend})`);
          },
        );
      } catch (e) {
        const err = e as JobError;
        if (err.kind === 'cancelled') return;
        output.appendLine(err.message);
        void vscode.window.showErrorMessage(`Basin: ${err.kind === 'internal' ? 'internal error (see the Basin output)' : err.message}`);
      }
    }),
  );
}

export function deactivate(): void {
  /* disposables close the worker */
}

/** Entry point: VS Code calls activate once, at start-up (see package.json activationEvents). */
import * as vscode from 'vscode';
import { HotfixController } from './controller';

let controller: HotfixController | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<HotfixController> {
  controller = new HotfixController();
  context.subscriptions.push({ dispose: () => void controller?.dispose() });
  void controller.start();
  return controller;
}

export async function deactivate(): Promise<void> {
  await controller?.dispose();
  controller = undefined;
}

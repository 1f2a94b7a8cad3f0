/**
 * Entry point: VS Code calls activate once per window, when a document in a language hotfix serves by
 * default opens (package.json activationEvents, from hotfix.enabledLanguages' default) or when one of
 * the extension's commands runs; not at start-up, so a window without Python starts no server.
 */
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

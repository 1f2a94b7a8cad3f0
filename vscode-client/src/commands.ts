/**
 * The extension's commands (package.json contributes them; VS Code activates the extension for each) and
 * the status bar menu that offers them. The server's own work (train, roll back, suppressions) goes
 * through workspace/executeCommand.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';

import { EXECUTE_COMMAND } from './inlineCompletions';
import type { ServerState } from './serverLifecycle';
import type { HotfixSettings } from './settings';
import type { StatusBar } from './statusBar';
import { lastReportPath } from './statusView';
import { showSuppressions, SUPPRESSIONS_COMMAND } from './suppressionsCommand';

/** Commands the extension contributes (the server's own `hotfix.*` commands are registered by the client). */
export const COMMANDS = {
  showMenu: 'hotfix.showMenu',
  toggleContinuous: 'hotfix.toggleContinuousHotfixing',
  trainNow: 'hotfix.trainNow',
  rollback: 'hotfix.rollbackAdapter',
  showReport: 'hotfix.showLastReport',
  showLog: 'hotfix.showLog',
  restart: 'hotfix.restartServer',
  dismissInline: 'hotfix.dismissInlineSuggestion',
  showSuppressions: 'hotfix.showSuppressions',
} as const;

export interface CommandsContext {
  readonly log: vscode.LogOutputChannel;
  readonly server: ServerState & { restart(reason: string): Promise<void> };
  readonly statusBar: StatusBar;
  /** The settings in force. */
  readonly settings: () => HotfixSettings;
  readonly dismissInline: () => Promise<void>;
}

/** Registers every command; the disposables unregister them. */
export function registerCommands(ctx: CommandsContext): vscode.Disposable[] {
  const c = new Commands(ctx);
  const register = vscode.commands.registerCommand;
  return [
    register(COMMANDS.showMenu, () => c.showMenu()),
    register(COMMANDS.toggleContinuous, () => c.toggleContinuous()),
    register(COMMANDS.trainNow, () => c.trainNow()),
    register(COMMANDS.rollback, () => c.rollback()),
    register(COMMANDS.showReport, () => c.showReport()),
    register(COMMANDS.showLog, () => ctx.log.show(true)),
    register(COMMANDS.restart, () => ctx.server.restart('restart requested')),
    register(COMMANDS.dismissInline, () => ctx.dismissInline()),
    register(COMMANDS.showSuppressions, () =>
      showSuppressions({ request: (args) => c.serverCommand(SUPPRESSIONS_COMMAND, args), scope: ctx.settings().suppressions, log: ctx.log }),
    ),
  ];
}

class Commands {
  constructor(private readonly ctx: CommandsContext) {}

  /** Runs one of the server's commands; undefined, with the reason shown, when it could not. */
  async serverCommand(command: string, args: unknown[] = []): Promise<unknown> {
    const { server } = this.ctx;
    const client = server.client;
    if (!client || server.phase !== 'running') {
      const message =
        server.failure?.message ??
        (server.phase === 'starting'
          ? 'hotfix: the server is still starting; try again in a moment.'
          : 'hotfix: the server is not running; Hotfix: Restart Server starts it.');
      void vscode.window.showErrorMessage(message);
      return undefined;
    }
    try {
      return await client.sendRequest(EXECUTE_COMMAND, { command, arguments: args });
    } catch (e) {
      void vscode.window.showErrorMessage(`hotfix: ${command} failed: ${e instanceof Error ? e.message : String(e)}`);
      return undefined;
    } finally {
      void this.ctx.statusBar.refresh();
    }
  }

  async showMenu(): Promise<void> {
    const continuous = this.ctx.settings().continuousHotfixing;
    const status = this.ctx.statusBar.current;
    type Item = vscode.QuickPickItem & { run: () => unknown };
    const items: Item[] = [
      {
        label: `$(sync) ${continuous ? 'Turn off' : 'Turn on'} continuous hotfixing`,
        description: continuous ? 'on: trains in the background' : 'off',
        run: () => this.toggleContinuous(),
      },
      { label: '$(play) Train now', description: 'train and publish a new adapter if it is better', run: () => this.trainNow() },
      {
        label: '$(history) Roll back adapter',
        description: status?.adapter ? `current: ${status.adapter}` : 'no adapter active',
        run: () => this.rollback(),
      },
      { label: '$(graph) Show last evaluation report', run: () => this.showReport() },
      { label: '$(circle-slash) Show suppressed suggestions', run: () => vscode.commands.executeCommand(COMMANDS.showSuppressions) },
      { label: '$(output) Open log', run: () => this.ctx.log.show(true) },
      { label: '$(debug-restart) Restart server', run: () => this.ctx.server.restart('restart requested') },
    ];
    const picked = await vscode.window.showQuickPick(items, { title: 'Hotfix', placeHolder: this.ctx.statusBar.plainText });
    if (picked) await picked.run();
  }

  async toggleContinuous(): Promise<void> {
    const config = vscode.workspace.getConfiguration('hotfix');
    const inspected = config.inspect<boolean>('continuousHotfixing');
    const next = !this.ctx.settings().continuousHotfixing;
    const target =
      inspected?.workspaceFolderValue !== undefined
        ? vscode.ConfigurationTarget.WorkspaceFolder
        : inspected?.workspaceValue !== undefined
          ? vscode.ConfigurationTarget.Workspace
          : vscode.ConfigurationTarget.Global;
    // The settings sync sends the new value to the running server.
    await config.update('continuousHotfixing', next, target);
    vscode.window.setStatusBarMessage(`hotfix: continuous hotfixing ${next ? 'on' : 'off'}`, 4000);
  }

  async trainNow(): Promise<void> {
    const result = await this.serverCommand('hotfix.train');
    // The server says what it did: started, already running, or nothing to learn from yet.
    const message = typeof result === 'object' && result !== null ? (result as { message?: unknown }).message : undefined;
    if (typeof message === 'string' && message) void vscode.window.showInformationMessage(`hotfix: ${message}`);
  }

  async rollback(): Promise<void> {
    const result = await this.serverCommand('hotfix.rollback');
    if (result !== undefined) {
      const version = typeof result === 'object' && result !== null && 'version' in result ? String((result as { version: unknown }).version) : undefined;
      vscode.window.showInformationMessage(version ? `hotfix: rolled back to ${version}.` : 'hotfix: adapter rolled back.');
    }
  }

  async showReport(): Promise<void> {
    await this.ctx.statusBar.refresh();
    const status = this.ctx.statusBar.current;
    const last = status?.trainer.lastResult;
    if (!status || last === null || last === undefined) {
      void vscode.window.showInformationMessage('hotfix: no training run has finished yet.');
      return;
    }
    const manifest = lastReportPath(status, path.join);
    if (manifest && fs.existsSync(manifest)) {
      await vscode.window.showTextDocument(vscode.Uri.file(manifest), { preview: true });
      return;
    }
    const doc = await vscode.workspace.openTextDocument({ language: 'json', content: JSON.stringify(last, null, 2) });
    await vscode.window.showTextDocument(doc, { preview: true });
  }
}

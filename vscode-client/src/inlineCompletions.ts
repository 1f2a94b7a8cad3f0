/**
 * The client's side of accept and reject: which suggestions were last shown where (from the inline
 * completion answers), an accepted one (its `hotfix.accept` command) is settled, and Escape on one still
 * shown reports `hotfix.reject`. Classic completion items are asked for only as hotfix.completionItems says.
 */
import * as vscode from 'vscode';
import type { Middleware } from 'vscode-languageclient/node';

import { ACCEPT_COMMAND, REJECT_COMMAND, ShownSuggestions, suggestionId, wantsCompletionItems } from './dismissals';
import type { ServerState } from './serverLifecycle';
import type { CompletionItemMode } from './settings';

export const EXECUTE_COMMAND = 'workspace/executeCommand';

export class InlineCompletions implements vscode.Disposable {
  private readonly shown = new ShownSuggestions();
  private readonly listener: vscode.Disposable;

  constructor(
    private readonly log: vscode.LogOutputChannel,
    private readonly server: ServerState,
    /** hotfix.completionItems in force (it applies without a restart). */
    private readonly completionItems: () => CompletionItemMode,
  ) {
    this.listener = vscode.workspace.onDidCloseTextDocument((doc) => this.shown.forget(doc.uri.toString()));
  }

  readonly middleware: Middleware = {
    provideInlineCompletionItems: async (document, position, context, token, next) => {
      const result = await next(document, position, context, token);
      const items = Array.isArray(result) ? result : (result?.items ?? []);
      const ids = items.map((item) => suggestionId(item.command)).filter((id): id is string => id !== undefined);
      this.shown.record(document.uri.toString(), position.line, ids, Date.now());
      return result;
    },
    provideCompletionItem: (document, position, context, token, next) => {
      const invoked = context.triggerKind === vscode.CompletionTriggerKind.Invoke;
      return wantsCompletionItems(this.completionItems(), invoked) ? next(document, position, context, token) : undefined;
    },
    executeCommand: (name, args, next) => {
      if (name === ACCEPT_COMMAND) {
        const id = suggestionId({ command: name, arguments: args });
        if (id) this.shown.accepted(id);
      }
      return next(name, args);
    },
  };

  /** The server went away: what it showed can no longer be reported. */
  clear(): void {
    this.shown.clear();
  }

  /** Escape while our ghost text is visible: hide it as VS Code would, and tell the server it was rejected. */
  async dismissInline(): Promise<void> {
    await vscode.commands.executeCommand('editor.action.inlineSuggest.hide');
    const editor = vscode.window.activeTextEditor;
    if (!editor) return;
    const id = this.shown.takeDismissed(editor.document.uri.toString(), editor.selection.active.line, Date.now());
    const client = this.server.client;
    if (id && client && this.server.phase === 'running') {
      try {
        await client.sendRequest(EXECUTE_COMMAND, { command: REJECT_COMMAND, arguments: [id] });
      } catch (e) {
        this.log.warn(`${REJECT_COMMAND} failed: ${String(e)}`);
      }
    }
  }

  dispose(): void {
    this.listener.dispose();
  }
}

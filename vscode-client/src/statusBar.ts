/**
 * The status bar item: what the server says (`hotfix/status`, polled at the pace its state needs, and
 * at once when the adapter changes), drawn by statusView.ts; a model that did not load is reported once.
 */
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';

import type { ServerState } from './serverLifecycle';
import { Diagnosis, modelLoadFailed } from './startupErrors';
import { parseStatus, pollIntervalMs, renderStatus, ServerStatus } from './statusView';

export const STATUS_REQUEST = 'hotfix/status';
export const ADAPTER_CHANGED = 'hotfix/adapterChanged';

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private status: ServerStatus | undefined;
  /** Shown once per distinct error, not on every poll. */
  private reportedModelError: string | undefined;
  private pollTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly log: vscode.LogOutputChannel,
    private readonly server: ServerState,
    private readonly notify: (d: Diagnosis) => void,
    menuCommand: string,
  ) {
    this.item = vscode.window.createStatusBarItem('hotfix.status', vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'Hotfix';
    this.item.command = menuCommand;
    this.render();
    this.item.show();
  }

  /** The server's last answer. */
  get current(): ServerStatus | undefined {
    return this.status;
  }

  /** The item's text without its icons, e.g. "tiny · v0002". */
  get plainText(): string {
    return this.item.text.replace(/\$\([^)]*\)\s*/g, '');
  }

  /** A new server starts: what the last one said is stale. */
  reset(): void {
    this.status = undefined;
    this.reportedModelError = undefined;
  }

  /** Refreshes the status when the server says its adapter changed. */
  attach(client: LanguageClient): vscode.Disposable {
    return client.onNotification(ADAPTER_CHANGED, (params: { version?: string | null }) => {
      const version = params?.version ?? 'base model';
      vscode.window.setStatusBarMessage(`$(check) hotfix: adapter ${version} is active`, 5000);
      this.log.info(`Adapter changed: ${version}`);
      void this.refresh();
    });
  }

  render(): void {
    const view = renderStatus(this.server.phase, this.status, this.server.failure?.message);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor =
      view.severity === 'error'
        ? new vscode.ThemeColor('statusBarItem.errorBackground')
        : view.severity === 'warning'
          ? new vscode.ThemeColor('statusBarItem.warningBackground')
          : undefined;
  }

  stopPolling(): void {
    if (this.pollTimer !== undefined) clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
  }

  /** Asks the server for its status now, then keeps polling at the pace the state needs. */
  async refresh(): Promise<void> {
    this.stopPolling();
    const client = this.server.client;
    if (!client || this.server.phase !== 'running') return;
    // While the client restarts a crashed server there is nobody to ask; keep the last answer.
    if (client.isRunning()) {
      try {
        const parsed = parseStatus(await client.sendRequest(STATUS_REQUEST, {}));
        if (this.server.client !== client) return;
        this.status = parsed;
        this.render();
        if (parsed?.modelError && parsed.modelError !== this.reportedModelError) {
          this.reportedModelError = parsed.modelError;
          this.notify(modelLoadFailed(parsed.modelError, parsed.model));
        }
      } catch (e) {
        this.log.warn(`${STATUS_REQUEST} failed: ${String(e)}`);
      }
    }
    if (this.server.client === client && !this.server.disposed) {
      // A refresh that ran meanwhile (a command's, a settings change's) has set its own timer: one is enough.
      this.stopPolling();
      this.pollTimer = setTimeout(() => void this.refresh(), pollIntervalMs(this.status));
    }
  }

  dispose(): void {
    this.stopPolling();
    this.item.dispose();
  }
}

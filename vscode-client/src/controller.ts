/**
 * The editor side, assembled: the log, the server's lifecycle, the settings sync, the status bar, the
 * inline completion wiring and the commands, each in its own module; this file only connects them.
 */
import * as vscode from 'vscode';

import { COMMANDS, registerCommands } from './commands';
import { showDiagnosis } from './fixActions';
import { InlineCompletions } from './inlineCompletions';
import { ServerLifecycle } from './serverLifecycle';
import { SettingsSync } from './settingsSync';
import { StatusBar } from './statusBar';
import type { Diagnosis } from './startupErrors';
import type { ClientPhase, ServerStatus } from './statusView';
import { TraceChannel } from './traceChannel';

export { COMMANDS } from './commands';
export { ADAPTER_CHANGED, STATUS_REQUEST } from './statusBar';

export class HotfixController implements vscode.Disposable {
  private readonly server: ServerLifecycle;
  private readonly sync: SettingsSync;
  private readonly statusBar: StatusBar;
  private readonly completions: InlineCompletions;
  private readonly disposables: vscode.Disposable[] = [];

  constructor() {
    const log = vscode.window.createOutputChannel('Hotfix', { log: true });
    const trace = new TraceChannel(log);
    const notify = (d: Diagnosis) => showDiagnosis(d, log, () => this.restart('restart requested'));
    this.server = new ServerLifecycle({
      log,
      trace,
      settings: () => this.sync.forStart(),
      middleware: () => this.completions.middleware,
      notify,
      hooks: {
        changed: () => this.statusBar.render(),
        starting: () => this.statusBar.reset(),
        attach: (client) => [this.statusBar.attach(client)],
        running: () => void this.statusBar.refresh(),
        stopping: () => {
          this.statusBar.stopPolling();
          this.completions.clear();
        },
      },
    });
    this.sync = new SettingsSync(log, this.server, () => void this.statusBar.refresh());
    this.completions = new InlineCompletions(log, this.server, () => this.sync.current.completionItems);
    this.statusBar = new StatusBar(log, this.server, notify, COMMANDS.showMenu);
    this.disposables.push(
      log,
      trace,
      this.statusBar,
      ...registerCommands({
        log,
        server: this.server,
        statusBar: this.statusBar,
        settings: () => this.sync.current,
        dismissInline: () => this.completions.dismissInline(),
      }),
      this.sync,
      this.completions,
    );
  }

  /** The phase the status bar shows; read by tests. */
  get state(): { phase: ClientPhase; status: ServerStatus | undefined; failure: Diagnosis | undefined } {
    return { phase: this.server.phase, status: this.statusBar.current, failure: this.server.failure };
  }

  start(): Promise<void> {
    return this.server.start();
  }

  restart(reason: string): Promise<void> {
    return this.server.restart(reason);
  }

  /** Asks the server for its status now (and keeps polling). */
  refreshStatus(): Promise<void> {
    return this.statusBar.refresh();
  }

  /** Safe to call twice (VS Code disposes the subscription and calls deactivate): both wait for one stop. */
  dispose(): Promise<void> {
    return this.server.dispose().then(() => {
      for (const d of this.disposables.splice(0)) d.dispose();
    });
  }
}

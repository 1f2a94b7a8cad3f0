/**
 * Keeps the server's settings in step with `hotfix.*`. A change of `model`, `dataDir` or `runtime` (or of
 * what the client starts and serves: the interpreter, the command, the languages) restarts the server;
 * every other server setting reaches the running server in workspace/didChangeConfiguration, which
 * carries every key with the value in force, so that one the user removed arrives as its default.
 */
import * as os from 'node:os';
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';

import type { StartSettings } from './serverLifecycle';
import {
  changesLiveSettings,
  HotfixSettings,
  liveUpdate,
  needsRestart,
  PathVars,
  readSettings,
  ServerSettings,
  toServerSettings,
} from './settings';
import type { ClientPhase } from './statusView';

export const DID_CHANGE_CONFIGURATION = 'workspace/didChangeConfiguration';

/** What the sync needs of the server. */
export interface SyncTarget {
  readonly client: LanguageClient | undefined;
  readonly phase: ClientPhase;
  /** Restarts once a burst of changes has gone quiet. */
  restartSoon(): void;
  /** Runs `step` after a start or stop in progress. */
  queue(step: () => Promise<void>): Promise<void>;
}

/** `~`, `${userHome}` and `${workspaceFolder}` in paths, as the first workspace folder has them. */
export function workspacePathVars(): PathVars {
  return { home: os.homedir(), workspaceFolder: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath };
}

export class SettingsSync implements vscode.Disposable {
  private settings: HotfixSettings;
  /** The options the current server was started with; their live keys follow the settings. */
  private started: ServerSettings | undefined;
  /** What the current server has (JSON), so that a burst of changes is sent once. */
  private sent = '';
  private readonly listener: vscode.Disposable;

  constructor(
    private readonly log: vscode.LogOutputChannel,
    private readonly server: SyncTarget,
    /** Called after the server got new settings (the status it reports has changed). */
    private readonly afterSend: () => void,
  ) {
    this.settings = this.read(false);
    this.listener = vscode.workspace.onDidChangeConfiguration((e) => this.changed((section) => e.affectsConfiguration(section)));
  }

  /** The settings in force. */
  get current(): HotfixSettings {
    return this.settings;
  }

  /** Reads the settings for a new server, reporting every problem, with the options it gets. */
  forStart(): StartSettings {
    this.settings = this.read(true);
    const vars = workspacePathVars();
    const options = toServerSettings(this.settings, vars);
    this.started = options;
    this.sent = JSON.stringify(options);
    return { settings: this.settings, options, vars };
  }

  /** `report`: which settings' problems to show (all at start; after a change, the changed ones). */
  private read(report: boolean | ((key: string) => boolean)): HotfixSettings {
    const config = vscode.workspace.getConfiguration('hotfix');
    const { settings, problems } = readSettings((key) => config.get(key));
    for (const p of problems) {
      if (report === true || (typeof report === 'function' && report(p.key))) {
        this.log.warn(p.message);
        void vscode.window.showWarningMessage(p.message);
      }
    }
    return settings;
  }

  /** Restart settings restart the server; the rest apply at once (the server's are sent to it). */
  private changed(affects: (section: string) => boolean): void {
    if (needsRestart(affects)) {
      this.server.restartSoon();
      return;
    }
    this.settings = this.read((key) => affects(`hotfix.${key}`));
    if (changesLiveSettings(affects)) void this.server.queue(() => this.sendLive());
  }

  /** Queued behind a start in progress, so that a change made meanwhile reaches the new server. */
  private async sendLive(): Promise<void> {
    if (!this.started) return;
    const settings = liveUpdate(this.started, this.settings, workspacePathVars());
    const client = this.server.client;
    const json = JSON.stringify(settings);
    if (!client || this.server.phase !== 'running' || !client.isRunning() || json === this.sent) return;
    this.sent = json;
    this.log.info(`Settings changed: ${json}`);
    await client.sendNotification(DID_CHANGE_CONFIGURATION, { settings });
    this.afterSend();
  }

  dispose(): void {
    this.listener.dispose();
  }
}

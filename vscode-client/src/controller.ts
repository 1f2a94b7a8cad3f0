/**
 * The thin editor side: owns the language client, the status bar item, the commands and the settings
 * watcher. Decisions live in the pure modules next to it; this file only wires them to VS Code.
 */
import * as os from 'node:os';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, ChildProcess } from 'node:child_process';
import * as vscode from 'vscode';
import {
  CloseAction,
  ErrorAction,
  LanguageClient,
  LanguageClientOptions,
  RevealOutputChannelOn,
  ServerOptions,
} from 'vscode-languageclient/node';

import * as readline from 'node:readline';
import { Debouncer } from './debounce';
import { ACCEPT_COMMAND, REJECT_COMMAND, ShownSuggestions, suggestionId, wantsCompletionItems } from './dismissals';
import { preflight, Tail } from './preflight';
import { describeCommand, resolveServerCommand, ServerCommand } from './serverCommand';
import { stderrLevel } from './serverLog';
import {
  changesLiveSettings,
  documentSelector,
  expandPath,
  HotfixSettings,
  InitializationOptions,
  looksLikePath,
  needsRestart,
  readSettings,
  toInitializationOptions,
  toLiveOptions,
  updateLiveOptions,
} from './settings';
import { Diagnosis, diagnose, FixAction, missingModel, modelLoadFailed } from './startupErrors';
import { showSuppressions, SUPPRESSIONS_COMMAND } from './suppressionsCommand';
import { ClientPhase, lastReportPath, parseStatus, pollIntervalMs, renderStatus, ServerStatus } from './statusView';

export const STATUS_REQUEST = 'hotfix/status';
export const ADAPTER_CHANGED = 'hotfix/adapterChanged';
const EXECUTE_COMMAND = 'workspace/executeCommand';
const DID_CHANGE_CONFIGURATION = 'workspace/didChangeConfiguration';
const RESTART_DELAY_MS = 750;
/** A server that dies this often in this window is broken, not unlucky: stop restarting it. */
const MAX_CRASHES = 3;
const CRASH_WINDOW_MS = 3 * 60_000;

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

export class HotfixController implements vscode.Disposable {
  private readonly log: vscode.LogOutputChannel;
  private readonly trace: TraceChannel;
  private readonly statusItem: vscode.StatusBarItem;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly restartDebouncer: Debouncer;
  private readonly shown = new ShownSuggestions();
  private client: LanguageClient | undefined;
  private phase: ClientPhase = 'stopped';
  private status: ServerStatus | undefined;
  private failure: Diagnosis | undefined;
  private pollTimer: ReturnType<typeof setTimeout> | undefined;
  private serverProcess: ChildProcess | undefined;
  private stderrTail = new Tail();
  private lastSpawnError: string | undefined;
  private lastExitCode: number | null | undefined;
  /** Handlers bound to the current client, dropped with it. */
  private clientDisposables: vscode.Disposable[] = [];
  /** Shown once per distinct error, not on every poll. */
  private reportedModelError: string | undefined;
  private crashes: number[] = [];
  private lifecycle: Promise<void> = Promise.resolve();
  private disposed = false;
  private disposing: Promise<void> | undefined;
  private settings: HotfixSettings;
  /** The options the current client was given; its live keys follow the settings. */
  private init: InitializationOptions | undefined;
  /** The live settings the current server has (JSON), so that a burst of changes is sent once. */
  private liveSent = '';
  private command: ServerCommand | undefined;
  private pythonExtensionPresent = false;
  private pythonListener: vscode.Disposable | undefined;

  constructor() {
    this.log = vscode.window.createOutputChannel('Hotfix', { log: true });
    this.trace = new TraceChannel(this.log);
    this.statusItem = vscode.window.createStatusBarItem('hotfix.status', vscode.StatusBarAlignment.Right, 100);
    this.statusItem.name = 'Hotfix';
    this.statusItem.command = COMMANDS.showMenu;
    this.restartDebouncer = new Debouncer(() => void this.restart('settings or interpreter changed'), RESTART_DELAY_MS);
    this.settings = this.readSettings(false);
    this.disposables.push(
      this.log,
      this.trace,
      this.statusItem,
      vscode.commands.registerCommand(COMMANDS.showMenu, () => this.showMenu()),
      vscode.commands.registerCommand(COMMANDS.toggleContinuous, () => this.toggleContinuous()),
      vscode.commands.registerCommand(COMMANDS.trainNow, () => this.trainNow()),
      vscode.commands.registerCommand(COMMANDS.rollback, () => this.rollback()),
      vscode.commands.registerCommand(COMMANDS.showReport, () => this.showReport()),
      vscode.commands.registerCommand(COMMANDS.showLog, () => this.log.show(true)),
      vscode.commands.registerCommand(COMMANDS.restart, () => this.restart('restart requested')),
      vscode.commands.registerCommand(COMMANDS.dismissInline, () => this.dismissInline()),
      vscode.commands.registerCommand(COMMANDS.showSuppressions, () =>
        showSuppressions({ request: (args) => this.serverCommand(SUPPRESSIONS_COMMAND, args), scope: this.settings.suppressions, log: this.log }),
      ),
      vscode.workspace.onDidChangeConfiguration((e) => this.configurationChanged((section) => e.affectsConfiguration(section))),
      vscode.workspace.onDidCloseTextDocument((doc) => this.shown.forget(doc.uri.toString())),
    );
    this.render();
    this.statusItem.show();
  }

  /** The phase the status bar shows; read by tests. */
  get state(): { phase: ClientPhase; status: ServerStatus | undefined; failure: Diagnosis | undefined } {
    return { phase: this.phase, status: this.status, failure: this.failure };
  }

  start(): Promise<void> {
    return this.enqueue(() => this.doStart());
  }

  restart(reason: string): Promise<void> {
    this.restartDebouncer.cancel();
    return this.enqueue(async () => {
      this.log.info(`Restarting the server: ${reason}.`);
      await this.doStop();
      this.crashes = [];
      await this.doStart();
    });
  }

  /** Safe to call twice (VS Code disposes the subscription and calls deactivate): both wait for one stop. */
  dispose(): Promise<void> {
    if (!this.disposing) {
      this.disposed = true;
      this.restartDebouncer.cancel();
      this.disposing = this.enqueue(() => this.doStop()).then(() => {
        for (const d of this.disposables.splice(0)) d.dispose();
      });
    }
    return this.disposing;
  }

  /** Start and stop never overlap: a settings burst during a slow start waits for it. */
  private enqueue(step: () => Promise<void>): Promise<void> {
    this.lifecycle = this.lifecycle.then(step, step).catch((e) => this.log.error(`hotfix: ${String(e)}`));
    return this.lifecycle;
  }

  /** `report`: which settings' problems to show (all at start; after a change, the changed ones). */
  private readSettings(report: boolean | ((key: string) => boolean)): HotfixSettings {
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

  /** Server settings restart the server; the rest apply at once (live ones are sent to the server). */
  private configurationChanged(affects: (section: string) => boolean): void {
    if (needsRestart(affects)) {
      this.restartDebouncer.trigger();
      return;
    }
    this.settings = this.readSettings((key) => affects(`hotfix.${key}`));
    if (changesLiveSettings(affects)) void this.enqueue(() => this.sendLiveSettings());
  }

  /** Queued behind a start in progress, so that a change made meanwhile reaches the new server. */
  private async sendLiveSettings(): Promise<void> {
    const client = this.client;
    if (this.init) updateLiveOptions(this.init, this.settings, this.pathVars());
    const settings = toLiveOptions(this.settings);
    if (!client || this.phase !== 'running' || !client.isRunning() || JSON.stringify(settings) === this.liveSent) return;
    this.liveSent = JSON.stringify(settings);
    this.log.info(`Settings changed: ${JSON.stringify(settings)}`);
    await client.sendNotification(DID_CHANGE_CONFIGURATION, { settings });
  }

  private pathVars(): { home: string; workspaceFolder?: string } {
    return { home: os.homedir(), workspaceFolder: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath };
  }

  private async doStart(): Promise<void> {
    if (this.disposed) return;
    this.settings = this.readSettings(true);
    this.failure = undefined;
    this.status = undefined;
    this.reportedModelError = undefined;
    this.setPhase('starting');

    const command = resolveServerCommand({
      command: this.settings.serverCommand.map((part) => this.expand(part)),
      pythonPath: this.settings.pythonPath ? this.expand(this.settings.pythonPath) : '',
      pythonExtension: this.settings.serverCommand.length || this.settings.pythonPath ? undefined : await this.pythonExtensionInterpreter(),
    });
    this.command = command;
    const init = toInitializationOptions(this.settings, this.pathVars());
    this.init = init;
    this.liveSent = JSON.stringify(toLiveOptions(this.settings));
    this.log.info(`Server command (${command.source}): ${describeCommand(command)}`);
    this.log.info(`Initialization options: ${JSON.stringify(init)}`);

    const noModel = init.model && looksLikePath(this.settings.model) ? missingModel(init.model, fs.existsSync) : undefined;
    if (noModel) return this.fail(noModel);

    const cwd = this.pathVars().workspaceFolder ?? os.homedir();
    const env = { ...process.env, PYTHONUNBUFFERED: '1' };
    if (command.python !== undefined) {
      const check = await preflight(command.python, { cwd, env });
      if (check.spawnError || check.exitCode !== 0) {
        this.log.error(`Preflight failed: ${check.spawnError ?? `exit code ${check.exitCode}`}\n${check.stderr}`);
        return this.fail(diagnose({ command, ...check, pythonExtension: this.pythonExtensionPresent }));
      }
    }

    const serverOptions: ServerOptions = () => this.spawnServer(command, cwd, env);
    const clientOptions: LanguageClientOptions = {
      documentSelector: documentSelector(this.settings.enabledLanguages),
      initializationOptions: init,
      outputChannel: this.log,
      traceOutputChannel: this.trace,
      stdioOptions: {
        // Unused: stdout carries the protocol when the server options return a process.
        stdout: () => undefined,
        stderr: (input, channel) => {
          readline
            .createInterface({ input, crlfDelay: Infinity, terminal: false })
            .on('line', (line) => channel[stderrLevel(line)](line));
        },
      },
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      initializationFailedHandler: (error) => {
        this.log.error(`Initialization failed: ${String(error)}`);
        return false;
      },
      errorHandler: {
        // Same policy as the client's default: a few broken messages are survivable, a stream of them is not.
        error: (_error, _message, count) => ({
          action: count !== undefined && count > 3 ? ErrorAction.Shutdown : ErrorAction.Continue,
          handled: true,
        }),
        closed: () => this.onClosed(),
      },
      middleware: {
        provideInlineCompletionItems: async (document, position, context, token, next) => {
          const result = await next(document, position, context, token);
          const items = Array.isArray(result) ? result : (result?.items ?? []);
          const ids = items.map((item) => suggestionId(item.command)).filter((id): id is string => id !== undefined);
          this.shown.record(document.uri.toString(), position.line, ids, Date.now());
          return result;
        },
        provideCompletionItem: (document, position, context, token, next) => {
          const invoked = context.triggerKind === vscode.CompletionTriggerKind.Invoke;
          return wantsCompletionItems(this.settings.completionItems, invoked) ? next(document, position, context, token) : undefined;
        },
        executeCommand: (name, args, next) => {
          if (name === ACCEPT_COMMAND) {
            const id = suggestionId({ command: name, arguments: args });
            if (id) this.shown.accepted(id);
          }
          return next(name, args);
        },
      },
    };

    const client = new LanguageClient('hotfix', 'Hotfix', serverOptions, clientOptions);
    this.client = client;
    this.clientDisposables.push(
      client.onNotification(ADAPTER_CHANGED, (params: { version?: string | null }) => {
        const version = params?.version ?? 'base model';
        vscode.window.setStatusBarMessage(`$(check) hotfix: adapter ${version} is active`, 5000);
        this.log.info(`Adapter changed: ${version}`);
        void this.refreshStatus();
      }),
    );
    let started = true;
    try {
      await client.start();
    } catch (e) {
      this.log.error(`The server did not start: ${String(e)}`);
      started = false;
    }
    if (this.client !== client) return;
    // start() can resolve after a failed initialize (the client stops itself first), so ask it too.
    if (!started || !client.isRunning()) {
      this.client = undefined;
      for (const d of this.clientDisposables.splice(0)) d.dispose();
      await this.waitForExit();
      return this.fail(this.diagnoseExit());
    }
    this.setPhase('running');
    void this.refreshStatus();
  }

  private spawnServer(command: ServerCommand, cwd: string, env: NodeJS.ProcessEnv): Promise<ChildProcess> {
    return new Promise((resolve, reject) => {
      this.stderrTail = new Tail();
      const child = spawn(command.program, [...command.args], { cwd, env, stdio: 'pipe' });
      child.stderr?.on('data', (d: Buffer) => this.stderrTail.push(d));
      child.once('error', (e: NodeJS.ErrnoException) => {
        this.lastSpawnError = e.code ?? e.message;
        reject(e);
      });
      child.once('spawn', () => {
        this.lastSpawnError = undefined;
        this.serverProcess = child;
        resolve(child);
      });
      child.once('exit', (code) => {
        this.lastExitCode = code;
        this.log.info(`Server process exited with code ${code}.`);
      });
    });
  }

  /** The pipe closes before the exit code arrives; the diagnosis wants both. */
  private async waitForExit(): Promise<void> {
    const child = this.serverProcess;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private diagnoseExit(): Diagnosis {
    if (!this.command) return { message: 'hotfix: the server did not start.', actions: [] };
    return diagnose({
      command: this.command,
      spawnError: this.lastSpawnError,
      exitCode: this.lastExitCode,
      stderr: String(this.stderrTail),
      pythonExtension: this.pythonExtensionPresent,
    });
  }

  private onClosed(): { action: CloseAction; handled: boolean } {
    const now = Date.now();
    this.crashes = [...this.crashes.filter((t) => now - t < CRASH_WINDOW_MS), now];
    // Dying during start-up is reported by doStart, which sees start() reject; a stop we asked for is no news.
    if (this.phase !== 'running') return { action: CloseAction.DoNotRestart, handled: true };
    if (this.crashes.length >= MAX_CRASHES) {
      this.stopPolling();
      void this.waitForExit().then(() => this.fail(this.diagnoseExit()));
      return { action: CloseAction.DoNotRestart, handled: true };
    }
    this.log.warn(`The server stopped; restarting it (${this.crashes.length} of ${MAX_CRASHES}).`);
    return { action: CloseAction.Restart, handled: true };
  }

  private async doStop(): Promise<void> {
    this.stopPolling();
    const client = this.client;
    this.client = undefined;
    this.shown.clear();
    for (const d of this.clientDisposables.splice(0)) d.dispose();
    if (client) {
      try {
        await client.stop(3000);
      } catch (e) {
        this.log.warn(`Stopping the server: ${String(e)}`);
      }
      try {
        await client.dispose();
      } catch {
        // Already stopped: dispose has nothing left to do.
      }
    }
    if (this.serverProcess && this.serverProcess.exitCode === null) this.serverProcess.kill();
    this.serverProcess = undefined;
    this.setPhase('stopped');
  }

  private fail(d: Diagnosis): void {
    this.failure = d;
    this.setPhase('failed');
    this.notify(d);
  }

  /** Shows a diagnosis with its fixes as buttons, and runs the one the user picks. */
  private notify(d: Diagnosis): void {
    this.log.error(d.message);
    const titles = d.actions.map((a) => a.title);
    void Promise.resolve(vscode.window.showErrorMessage(d.message, ...titles)).then((picked) => {
      const action = d.actions.find((a) => a.title === picked);
      if (action) void this.runFix(action);
    });
  }

  private async runFix(a: FixAction): Promise<void> {
    switch (a.kind) {
      case 'openSettings':
        await vscode.commands.executeCommand('workbench.action.openSettings', a.setting);
        return;
      case 'selectInterpreter':
        await vscode.commands.executeCommand('python.setInterpreter');
        return;
      case 'copy':
        await vscode.env.clipboard.writeText(a.text);
        vscode.window.showInformationMessage(`Copied: ${a.text}`);
        return;
      case 'openLog':
        this.log.show(true);
        return;
      case 'restart':
        await this.restart('restart requested');
        return;
    }
  }

  private expand(value: string): string {
    return expandPath(value, this.pathVars());
  }

  /** The interpreter the Python extension selected for this workspace, if it is installed. */
  private async pythonExtensionInterpreter(): Promise<string | undefined> {
    const ext = vscode.extensions.getExtension('ms-python.python');
    this.pythonExtensionPresent = ext !== undefined;
    if (!ext) return undefined;
    try {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const api: any = ext.isActive ? ext.exports : await ext.activate();
      const resource = vscode.workspace.workspaceFolders?.[0]?.uri;
      const envs = api?.environments;
      if (!this.pythonListener && typeof envs?.onDidChangeActiveEnvironmentPath === 'function') {
        // A new interpreter picked in the Python extension is a new server, when that is where ours came from.
        this.pythonListener = envs.onDidChangeActiveEnvironmentPath(() => {
          if (this.command?.source === 'python extension') this.restartDebouncer.trigger();
        });
        if (this.pythonListener) this.disposables.push(this.pythonListener);
      }
      if (envs?.getActiveEnvironmentPath) {
        const active = envs.getActiveEnvironmentPath(resource);
        const resolved = await envs.resolveEnvironment?.(active);
        const exe: string | undefined = resolved?.executable?.uri?.fsPath ?? active?.path;
        if (exe) return exe;
      }
      const details = api?.settings?.getExecutionDetails?.(resource);
      return details?.execCommand?.[0];
    } catch (e) {
      this.log.warn(`Could not ask the Python extension for its interpreter: ${String(e)}`);
      return undefined;
    }
  }

  private setPhase(phase: ClientPhase): void {
    this.phase = phase;
    this.render();
  }

  private render(): void {
    const view = renderStatus(this.phase, this.status, this.failure?.message);
    this.statusItem.text = view.text;
    this.statusItem.tooltip = view.tooltip;
    this.statusItem.backgroundColor =
      view.severity === 'error'
        ? new vscode.ThemeColor('statusBarItem.errorBackground')
        : view.severity === 'warning'
          ? new vscode.ThemeColor('statusBarItem.warningBackground')
          : undefined;
  }

  private stopPolling(): void {
    if (this.pollTimer !== undefined) clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
  }

  /** Asks the server for its status now, then keeps polling at the pace the state needs. */
  async refreshStatus(): Promise<void> {
    this.stopPolling();
    const client = this.client;
    if (!client || this.phase !== 'running') return;
    // While the client restarts a crashed server there is nobody to ask; keep the last answer.
    if (client.isRunning()) {
      try {
        const parsed = parseStatus(await client.sendRequest(STATUS_REQUEST, {}));
        if (this.client !== client) return;
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
    if (this.client === client && !this.disposed) {
      this.pollTimer = setTimeout(() => void this.refreshStatus(), pollIntervalMs(this.status));
    }
  }

  private async serverCommand(command: string, args: unknown[] = []): Promise<unknown> {
    const client = this.client;
    if (!client || this.phase !== 'running') {
      const message =
        this.failure?.message ??
        (this.phase === 'starting'
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
      void this.refreshStatus();
    }
  }

  async showMenu(): Promise<void> {
    const continuous = this.settings.continuousHotfixing;
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
        description: this.status?.adapter ? `current: ${this.status.adapter}` : 'no adapter active',
        run: () => this.rollback(),
      },
      { label: '$(graph) Show last evaluation report', run: () => this.showReport() },
      { label: '$(circle-slash) Show suppressed suggestions', run: () => vscode.commands.executeCommand(COMMANDS.showSuppressions) },
      { label: '$(output) Open log', run: () => this.log.show(true) },
      { label: '$(debug-restart) Restart server', run: () => this.restart('restart requested') },
    ];
    const picked = await vscode.window.showQuickPick(items, { title: 'Hotfix', placeHolder: this.statusItem.text.replace(/\$\([^)]*\)\s*/g, '') });
    if (picked) await picked.run();
  }

  async toggleContinuous(): Promise<void> {
    const config = vscode.workspace.getConfiguration('hotfix');
    const inspected = config.inspect<boolean>('continuousHotfixing');
    const next = !this.settings.continuousHotfixing;
    const target =
      inspected?.workspaceFolderValue !== undefined
        ? vscode.ConfigurationTarget.WorkspaceFolder
        : inspected?.workspaceValue !== undefined
          ? vscode.ConfigurationTarget.Workspace
          : vscode.ConfigurationTarget.Global;
    // The configuration listener restarts the server with the new option.
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
    await this.refreshStatus();
    const status = this.status;
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

  /** Escape while our ghost text is visible: hide it as VS Code would, and tell the server it was rejected. */
  async dismissInline(): Promise<void> {
    await vscode.commands.executeCommand('editor.action.inlineSuggest.hide');
    const editor = vscode.window.activeTextEditor;
    if (!editor) return;
    const id = this.shown.takeDismissed(editor.document.uri.toString(), editor.selection.active.line, Date.now());
    if (id && this.client && this.phase === 'running') {
      try {
        await this.client.sendRequest(EXECUTE_COMMAND, { command: REJECT_COMMAND, arguments: [id] });
      } catch (e) {
        this.log.warn(`${REJECT_COMMAND} failed: ${String(e)}`);
      }
    }
  }
}


/**
 * The language client traces messages only when its trace channel's log level is Trace, which users
 * can set only per channel through a command. This channel reports Trace whenever `hotfix.trace.server`
 * is on, and writes the trace into the Hotfix log, so the setting works as its description says.
 */
class TraceChannel implements vscode.LogOutputChannel {
  private readonly changed = new vscode.EventEmitter<vscode.LogLevel>();
  private readonly listener: vscode.Disposable;
  readonly onDidChangeLogLevel = this.changed.event;

  constructor(private readonly log: vscode.LogOutputChannel) {
    this.listener = vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('hotfix.trace.server')) this.changed.fire(this.logLevel);
    });
  }

  get name(): string {
    return this.log.name;
  }

  get logLevel(): vscode.LogLevel {
    const level = vscode.workspace.getConfiguration('hotfix').get<string>('trace.server', 'off');
    return level === 'off' ? this.log.logLevel : vscode.LogLevel.Trace;
  }

  trace(message: string): void {
    this.log.info(message);
  }
  debug(message: string, ...args: unknown[]): void {
    this.log.debug(message, ...args);
  }
  info(message: string, ...args: unknown[]): void {
    this.log.info(message, ...args);
  }
  warn(message: string, ...args: unknown[]): void {
    this.log.warn(message, ...args);
  }
  error(error: string | Error, ...args: unknown[]): void {
    this.log.error(error, ...args);
  }
  append(value: string): void {
    this.log.append(value);
  }
  appendLine(value: string): void {
    this.log.appendLine(value);
  }
  replace(value: string): void {
    this.log.replace(value);
  }
  clear(): void {
    this.log.clear();
  }
  show(columnOrPreserveFocus?: vscode.ViewColumn | boolean, preserveFocus?: boolean): void {
    this.log.show(typeof columnOrPreserveFocus === 'boolean' ? columnOrPreserveFocus : preserveFocus);
  }
  hide(): void {
    this.log.hide();
  }
  dispose(): void {
    this.listener.dispose();
    this.changed.dispose();
  }
}

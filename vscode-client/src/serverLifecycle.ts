/**
 * The server's lifecycle: which program to start, the checks before it (a missing model, an interpreter
 * without hotfix), the language client, stopping it, restarting it on request or after a crash (up to a
 * limit), and the diagnosis when it does not run. Starts and stops are queued, never overlapping.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as readline from 'node:readline';
import { spawn, ChildProcess } from 'node:child_process';
import * as vscode from 'vscode';
import {
  CloseAction,
  ErrorAction,
  LanguageClient,
  LanguageClientOptions,
  Middleware,
  RevealOutputChannelOn,
  ServerOptions,
} from 'vscode-languageclient/node';

import { Debouncer } from './debounce';
import { preflight, Tail } from './preflight';
import { PythonExtensionInterpreter } from './pythonExtension';
import { describeCommand, resolveServerCommand, ServerCommand } from './serverCommand';
import { stderrLevel } from './serverLog';
import { documentSelector, expandPath, HotfixSettings, looksLikePath, PathVars, ServerSettings } from './settings';
import { Diagnosis, diagnose, missingModel } from './startupErrors';
import type { ClientPhase } from './statusView';

const RESTART_DELAY_MS = 750;
/** A server that dies this often in this window is broken, not unlucky: stop restarting it. */
const MAX_CRASHES = 3;
const CRASH_WINDOW_MS = 3 * 60_000;

/** What the other parts read about the server. */
export interface ServerState {
  /** The current client; it stays while the client restarts a crashed server. */
  readonly client: LanguageClient | undefined;
  readonly phase: ClientPhase;
  /** Why the server is not running, when it failed. */
  readonly failure: Diagnosis | undefined;
  readonly disposed: boolean;
}

/** What a start needs from the settings: read now, with the options the new server gets. */
export interface StartSettings {
  readonly settings: HotfixSettings;
  readonly options: ServerSettings;
  readonly vars: PathVars;
}

/** What the other parts do as the server comes and goes. */
export interface LifecycleHooks {
  /** The phase or the failure changed. */
  changed(): void;
  /** A start begins: what the last server said is stale. */
  starting(): void;
  /** Handlers for a new client's notifications, registered before it starts and dropped with it. */
  attach(client: LanguageClient): vscode.Disposable[];
  /** The server runs. */
  running(): void;
  /** The server goes away (stopped, or given up after crashes). */
  stopping(): void;
}

export interface LifecycleOptions {
  readonly log: vscode.LogOutputChannel;
  readonly trace: vscode.LogOutputChannel;
  /** Reads the settings for a start, reporting every problem. */
  readonly settings: () => StartSettings;
  /** The client's middleware: the inline completion wiring. */
  readonly middleware: () => Middleware;
  readonly hooks: LifecycleHooks;
  /** Shows a diagnosis with its fixes. */
  readonly notify: (d: Diagnosis) => void;
}

export class ServerLifecycle implements ServerState, vscode.Disposable {
  private currentClient: LanguageClient | undefined;
  private currentPhase: ClientPhase = 'stopped';
  private currentFailure: Diagnosis | undefined;
  private readonly restartDebouncer: Debouncer;
  private readonly python: PythonExtensionInterpreter;
  private serverProcess: ChildProcess | undefined;
  private stderrTail = new Tail();
  private lastSpawnError: string | undefined;
  private lastExitCode: number | null | undefined;
  /** Handlers bound to the current client, dropped with it. */
  private clientDisposables: vscode.Disposable[] = [];
  private crashes: number[] = [];
  private lifecycle: Promise<void> = Promise.resolve();
  private isDisposed = false;
  private disposing: Promise<void> | undefined;
  private command: ServerCommand | undefined;

  constructor(private readonly o: LifecycleOptions) {
    this.restartDebouncer = new Debouncer(() => void this.restart('settings or interpreter changed'), RESTART_DELAY_MS);
    // A new interpreter picked in the Python extension is a new server, when that is where ours came from.
    this.python = new PythonExtensionInterpreter(o.log, () => {
      if (this.command?.source === 'python extension') this.restartSoon();
    });
  }

  get client(): LanguageClient | undefined {
    return this.currentClient;
  }
  get phase(): ClientPhase {
    return this.currentPhase;
  }
  get failure(): Diagnosis | undefined {
    return this.currentFailure;
  }
  get disposed(): boolean {
    return this.isDisposed;
  }

  start(): Promise<void> {
    return this.queue(() => this.doStart());
  }

  restart(reason: string): Promise<void> {
    this.restartDebouncer.cancel();
    return this.queue(async () => {
      this.o.log.info(`Restarting the server: ${reason}.`);
      await this.doStop();
      this.crashes = [];
      await this.doStart();
    });
  }

  /** Restarts once a burst of triggers (settings edits arrive key by key) has gone quiet. */
  restartSoon(): void {
    this.restartDebouncer.trigger();
  }

  /** Safe to call twice (VS Code disposes the subscription and calls deactivate): both wait for one stop. */
  dispose(): Promise<void> {
    if (!this.disposing) {
      this.isDisposed = true;
      this.restartDebouncer.cancel();
      this.disposing = this.queue(() => this.doStop()).then(() => this.python.dispose());
    }
    return this.disposing;
  }

  /** Runs `step` after the start or stop in progress: a settings burst during a slow start waits for it. */
  queue(step: () => Promise<void>): Promise<void> {
    this.lifecycle = this.lifecycle.then(step, step).catch((e) => this.o.log.error(`hotfix: ${String(e)}`));
    return this.lifecycle;
  }

  private async doStart(): Promise<void> {
    if (this.isDisposed) return;
    const { log } = this.o;
    const { settings, options, vars } = this.o.settings();
    this.currentFailure = undefined;
    this.o.hooks.starting();
    this.setPhase('starting');

    const expand = (value: string) => expandPath(value, vars);
    const command = resolveServerCommand({
      command: settings.serverCommand.map(expand),
      pythonPath: settings.pythonPath ? expand(settings.pythonPath) : '',
      pythonExtension: settings.serverCommand.length || settings.pythonPath ? undefined : await this.python.lookup(),
    });
    this.command = command;
    log.info(`Server command (${command.source}): ${describeCommand(command)}`);
    log.info(`Initialization options: ${JSON.stringify(options)}`);

    const noModel = options.model && looksLikePath(settings.model) ? missingModel(options.model, fs.existsSync) : undefined;
    if (noModel) return this.fail(noModel);

    const cwd = vars.workspaceFolder ?? os.homedir();
    const env = { ...process.env, PYTHONUNBUFFERED: '1' };
    if (command.python !== undefined) {
      const check = await preflight(command.python, { cwd, env });
      if (check.spawnError || check.exitCode !== 0) {
        log.error(`Preflight failed: ${check.spawnError ?? `exit code ${check.exitCode}`}\n${check.stderr}`);
        return this.fail(diagnose({ command, ...check, pythonExtension: this.python.present }));
      }
    }

    const serverOptions: ServerOptions = () => this.spawnServer(command, cwd, env);
    const clientOptions: LanguageClientOptions = {
      documentSelector: documentSelector(settings.enabledLanguages),
      initializationOptions: options,
      outputChannel: log,
      traceOutputChannel: this.o.trace,
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
        log.error(`Initialization failed: ${String(error)}`);
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
      middleware: this.o.middleware(),
    };

    const client = new LanguageClient('hotfix', 'Hotfix', serverOptions, clientOptions);
    this.currentClient = client;
    this.clientDisposables.push(...this.o.hooks.attach(client));
    let started = true;
    try {
      await client.start();
    } catch (e) {
      log.error(`The server did not start: ${String(e)}`);
      started = false;
    }
    if (this.currentClient !== client) return;
    // start() can resolve after a failed initialize (the client stops itself first), so ask it too.
    if (!started || !client.isRunning()) {
      this.currentClient = undefined;
      for (const d of this.clientDisposables.splice(0)) d.dispose();
      await this.waitForExit();
      return this.fail(this.diagnoseExit());
    }
    this.setPhase('running');
    this.o.hooks.running();
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
        this.o.log.info(`Server process exited with code ${code}.`);
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
      pythonExtension: this.python.present,
    });
  }

  private onClosed(): { action: CloseAction; handled: boolean } {
    const now = Date.now();
    this.crashes = [...this.crashes.filter((t) => now - t < CRASH_WINDOW_MS), now];
    // Dying during start-up is reported by doStart, which sees start() reject; a stop we asked for is no news.
    if (this.currentPhase !== 'running') return { action: CloseAction.DoNotRestart, handled: true };
    if (this.crashes.length >= MAX_CRASHES) {
      this.o.hooks.stopping();
      void this.waitForExit().then(() => this.fail(this.diagnoseExit()));
      return { action: CloseAction.DoNotRestart, handled: true };
    }
    this.o.log.warn(`The server stopped; restarting it (${this.crashes.length} of ${MAX_CRASHES}).`);
    return { action: CloseAction.Restart, handled: true };
  }

  private async doStop(): Promise<void> {
    this.o.hooks.stopping();
    const client = this.currentClient;
    this.currentClient = undefined;
    for (const d of this.clientDisposables.splice(0)) d.dispose();
    if (client) {
      try {
        await client.stop(3000);
      } catch (e) {
        this.o.log.warn(`Stopping the server: ${String(e)}`);
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
    this.currentFailure = d;
    this.setPhase('failed');
    this.o.notify(d);
  }

  private setPhase(phase: ClientPhase): void {
    this.currentPhase = phase;
    this.o.hooks.changed();
  }
}

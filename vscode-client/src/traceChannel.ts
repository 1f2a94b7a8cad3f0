/**
 * The language client traces messages only when its trace channel's log level is Trace, which users
 * can set only per channel through a command. This channel reports Trace whenever `hotfix.trace.server`
 * is on, and writes the trace into the Hotfix log, so the setting works as its description says, and
 * at once: a change needs no restart.
 */
import * as vscode from 'vscode';

export class TraceChannel implements vscode.LogOutputChannel {
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

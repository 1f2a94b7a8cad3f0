/**
 * A stand-in for `vscode-languageclient/node`: records the options the controller builds and answers
 * requests from a script, so that activation is tested without a server process.
 */

export const CloseAction = { DoNotRestart: 1, Restart: 2 };
export const ErrorAction = { Continue: 1, Shutdown: 2 };
export const RevealOutputChannelOn = { Debug: 0, Info: 1, Warn: 2, Error: 3, Never: 4 };

type Handler = (params: unknown) => void;

export const clients: LanguageClient[] = [];
/** Answers by method; a function gets the params. */
export const answers: Record<string, unknown> = {};
/** reject: start() rejects with it; resolveStopped: start() resolves but the client is not running. */
export const startBehaviour: { reject?: Error; resolveStopped?: boolean } = {};

export function resetClients(): void {
  clients.length = 0;
  for (const k of Object.keys(answers)) delete answers[k];
  startBehaviour.reject = undefined;
  startBehaviour.resolveStopped = undefined;
}

export class LanguageClient {
  readonly requests: { method: string; params: unknown }[] = [];
  readonly notifications: { method: string; params: unknown }[] = [];
  readonly notificationHandlers = new Map<string, Handler>();
  state: 'created' | 'running' | 'stopped' | 'disposed' = 'created';

  constructor(
    readonly id: string,
    readonly name: string,
    readonly serverOptions: unknown,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    readonly clientOptions: any,
  ) {
    clients.push(this);
  }

  start(): Promise<void> {
    if (startBehaviour.reject) return Promise.reject(startBehaviour.reject);
    this.state = startBehaviour.resolveStopped ? 'stopped' : 'running';
    return Promise.resolve();
  }

  isRunning(): boolean {
    return this.state === 'running';
  }

  stop(): Promise<void> {
    this.state = 'stopped';
    return Promise.resolve();
  }

  dispose(): Promise<void> {
    this.state = 'disposed';
    return Promise.resolve();
  }

  onNotification(method: string, handler: Handler) {
    this.notificationHandlers.set(method, handler);
    return { dispose: () => this.notificationHandlers.delete(method) };
  }

  sendNotification(method: string, params: unknown): Promise<void> {
    this.notifications.push({ method, params });
    return Promise.resolve();
  }

  sendRequest(method: string, params: unknown): Promise<unknown> {
    this.requests.push({ method, params });
    const answer = answers[method];
    return Promise.resolve(typeof answer === 'function' ? answer(params) : answer);
  }
}

/**
 * A quick check, before the language client starts, that the interpreter exists and can import the
 * server. Without it a missing package shows up as "connection closed" restarts instead of a fix.
 */
import { spawn } from 'node:child_process';

export interface ProcessOutcome {
  readonly spawnError?: string;
  readonly exitCode: number | null;
  readonly stderr: string;
}

/** Imports only light modules: the heavy ones (torch) load later, inside the server. */
export const PREFLIGHT_CODE = 'import hotfix_server, hotfix_engine, pygls, lsprotocol';

/** Keep the last `limit` characters of a stream: enough for a traceback's last lines. */
export class Tail {
  private text = '';
  constructor(private readonly limit = 8192) {}
  push(chunk: string | Buffer): void {
    this.text = (this.text + chunk.toString()).slice(-this.limit);
  }
  toString(): string {
    return this.text;
  }
}

export function runProcess(
  program: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<ProcessOutcome> {
  return new Promise((resolve) => {
    const stderr = new Tail();
    let settled = false;
    const done = (o: ProcessOutcome) => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        resolve(o);
      }
    };
    const child = spawn(program, [...args], { cwd: options.cwd, env: options.env, stdio: ['ignore', 'ignore', 'pipe'] });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      done({ exitCode: null, stderr: `${stderr}\n${program} did not answer within ${options.timeoutMs} ms` });
    }, options.timeoutMs ?? 30_000);
    child.stderr?.on('data', (d: Buffer) => stderr.push(d));
    child.on('error', (e: NodeJS.ErrnoException) => done({ spawnError: e.code ?? e.message, exitCode: null, stderr: String(stderr) }));
    child.on('close', (code) => done({ exitCode: code, stderr: String(stderr) }));
  });
}

export function preflight(python: string, options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ProcessOutcome> {
  return runProcess(python, ['-c', PREFLIGHT_CODE], { ...options, timeoutMs: 30_000 });
}

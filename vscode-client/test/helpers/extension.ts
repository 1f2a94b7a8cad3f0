/**
 * Activates the extension against the mocked `vscode` and language client, with a stand-in interpreter,
 * for the tests of the editor-side modules (controller, lifecycle, settings sync, status bar, commands,
 * inline completions). Each test file runs in its own process, so the mocks' state is its own.
 */
import '../mocks/install';
import { afterEach } from 'node:test';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import * as vscode from '../mocks/vscode';
import * as lc from '../mocks/languageclient';
import { activate, deactivate } from '../../src/extension';
import type { HotfixController } from '../../src/controller';

export const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hotfix-activation-'));

/** The server's settings when nothing is set: every key, with package.json's defaults. */
export const DEFAULTS = {
  model: null,
  runtime: null,
  dataDir: null,
  continuousHotfixing: false,
  record: 'patterns',
  suppressions: 'workspace',
  maxNewTokens: 64,
  temperature: 0,
  contextTokens: 1536,
  debounceMs: 75,
  predictBudgetMs: 500,
  suggestionExpirySeconds: 30,
  editWindowSeconds: 60,
};
export const CHANGED = 'workspace/didChangeConfiguration';

/** A stand-in interpreter: `-c` is the preflight import check; it prints `stderr` and exits `code`. */
export function fakePython(name: string, code: number, stderr = ''): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, `#!/bin/sh\nprintf '%s' '${stderr}' >&2\nexit ${code}\n`, { mode: 0o755 });
  return file;
}

/** An interpreter whose preflight takes `seconds`: the server is still starting meanwhile. */
export function slowPython(name: string, seconds: number): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, `#!/bin/sh\nsleep ${seconds}\nexit 0\n`, { mode: 0o755 });
  return file;
}

export const READY_STATUS = {
  model: '/models/tiny',
  modelReady: true,
  adapter: 'v0002',
  trainer: { state: 'idle', progress: null, lastResult: { version: 'v0002', published: true } },
  store: { suggestions: 3, outcomes: 2 },
};

export async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function statusItem(): vscode.StatusItem {
  return vscode.recorded.statusItems[0];
}

/**
 * Activates with these settings; `setup` runs after the mocks are reset (to install the Python
 * extension, or script how the client starts).
 */
export async function start(settings: Record<string, unknown>, setup: () => void = () => undefined): Promise<HotfixController> {
  vscode.reset(settings);
  lc.resetClients();
  lc.answers['hotfix/status'] = READY_STATUS;
  setup();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return activate({ subscriptions: [] } as any);
}

/** Deactivates after each test of the calling file. */
export function deactivateAfterEach(): void {
  afterEach(async () => {
    await deactivate();
  });
}

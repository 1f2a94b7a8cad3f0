/** Activation: the commands, the client and its options, the status bar. */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { deactivateAfterEach, DEFAULTS, fakePython, start, statusItem, until } from './helpers/extension';
import * as vscode from './mocks/vscode';
import * as lc from './mocks/languageclient';
import { COMMANDS } from '../src/controller';

deactivateAfterEach();

test('activation registers the commands, starts the client with our options, and shows model and adapter', async () => {
  const python = fakePython('ok-python', 0);
  await start({ 'server.pythonPath': python, model: '', record: 'all', maxNewTokens: 24, enabledLanguages: ['python', 'go'] });
  for (const id of Object.values(COMMANDS)) assert.ok(vscode.commands.registered().includes(id), id);
  await until(() => lc.clients.length === 1 && statusItem().text.includes('v0002'), 'status');
  const options = lc.clients[0].clientOptions;
  assert.deepEqual(options.initializationOptions, { ...DEFAULTS, record: 'all', maxNewTokens: 24 });
  assert.deepEqual(
    options.documentSelector.map((s: { language: string }) => s.language),
    ['python', 'python', 'go', 'go'],
  );
  assert.equal(statusItem().text, '$(sparkle) tiny · v0002');
  assert.equal(statusItem().command, COMMANDS.showMenu);
  assert.ok(statusItem().visible);
  assert.equal(vscode.recorded.errors.length, 0);
});

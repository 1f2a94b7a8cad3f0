/** The status bar item: the server's status, adapter changes, a model that did not load (src/statusBar.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { deactivateAfterEach, fakePython, READY_STATUS, start, statusItem, until } from './helpers/extension';
import * as vscode from './mocks/vscode';
import * as lc from './mocks/languageclient';

deactivateAfterEach();

test('adapterChanged refreshes the status bar', async () => {
  await start({ 'server.pythonPath': fakePython('ok-python10', 0) });
  await until(() => lc.clients.length === 1 && statusItem().text.includes('v0002'), 'status');
  lc.answers['hotfix/status'] = { ...READY_STATUS, adapter: 'v0003' };
  lc.clients[0].notificationHandlers.get('hotfix/adapterChanged')?.({ version: 'v0003' });
  await until(() => statusItem().text.includes('v0003'), 'new adapter');
  assert.ok(vscode.recorded.statusMessages.some((m) => m.includes('v0003')));
});

test('a model the server could not load is reported once, with the setting to fix', async () => {
  const controller = await start({ 'server.pythonPath': fakePython('ok-python13', 0) });
  lc.answers['hotfix/status'] = { ...READY_STATUS, modelReady: false, modelError: 'no model at /models/tiny' };
  await until(() => vscode.recorded.errors.length === 1, 'error message');
  assert.match(vscode.recorded.errors[0].message, /the model "\/models\/tiny" could not be loaded: no model at \/models\/tiny\. Check hotfix\.model/);
  assert.deepEqual(vscode.recorded.errors[0].items, ['Open Settings', 'Open Log']);
  await controller.refreshStatus();
  assert.equal(vscode.recorded.errors.length, 1);
  assert.equal(statusItem().text, '$(error) tiny · not loaded');
});

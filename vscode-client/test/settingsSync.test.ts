/** Settings sync: which changes restart the server, and the live ones sent to it (src/settingsSync.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';

import { CHANGED, deactivateAfterEach, DEFAULTS, fakePython, slowPython, start, tmp, until } from './helpers/extension';
import * as vscode from './mocks/vscode';
import * as lc from './mocks/languageclient';
import { COMMANDS } from '../src/controller';

deactivateAfterEach();

test('a burst of settings changes that need a new server restarts it once, with everything in force', async () => {
  await start({ 'server.pythonPath': fakePython('ok-python2', 0) });
  await until(() => lc.clients.length === 1 && lc.clients[0].state === 'running', 'first client');
  vscode.setSetting('runtime', 'transformers');
  vscode.setSetting('model', 'org/tiny');
  vscode.setSetting('maxNewTokens', 12);
  vscode.setSetting('runtime', 'llama.cpp');
  await until(() => lc.clients.length === 2, 'restart', 5000);
  await new Promise((r) => setTimeout(r, 900));
  assert.equal(lc.clients.length, 2);
  assert.equal(lc.clients[0].state, 'disposed');
  assert.deepEqual(lc.clients[1].clientOptions.initializationOptions, {
    ...DEFAULTS,
    model: 'org/tiny',
    runtime: 'llama.cpp',
    maxNewTokens: 12,
  });
  // The live change in the burst went to the old server with its own model and runtime: no reload there.
  for (const n of lc.clients[0].notifications) {
    assert.deepEqual([n.method, (n.params as { settings: Record<string, unknown> }).settings.model], [CHANGED, null]);
  }
});

test('model, dataDir and runtime each restart the server, and are not sent to the running one', async () => {
  await start({ 'server.pythonPath': fakePython('ok-python2b', 0) });
  await until(() => lc.clients.length === 1 && lc.clients[0].state === 'running', 'first client');
  const dataDir = path.join(tmp, 'data');
  const changes: [string, unknown, Record<string, unknown>][] = [
    ['model', 'org/tiny', { model: 'org/tiny' }],
    ['dataDir', dataDir, { model: 'org/tiny', dataDir }],
    ['runtime', 'transformers', { model: 'org/tiny', dataDir, runtime: 'transformers' }],
    ['model', undefined, { dataDir, runtime: 'transformers' }],
  ];
  for (const [i, [key, value, options]] of changes.entries()) {
    vscode.setSetting(key, value);
    await until(() => lc.clients.length === i + 2 && lc.clients[i + 1].state === 'running', `restart for ${key}`, 5000);
    assert.deepEqual(lc.clients[i + 1].clientOptions.initializationOptions, { ...DEFAULTS, ...options }, key);
  }
  for (const client of lc.clients) assert.deepEqual(client.notifications, []);
});

test('every other server setting reaches the running server at once, in one message with every key, without a restart', async () => {
  await start({ 'server.pythonPath': fakePython('ok-python2c', 0), maxNewTokens: 24, temperature: 0.3, model: 'org/tiny' });
  await until(() => lc.clients.length === 1 && lc.clients[0].state === 'running', 'client');
  const client = lc.clients[0];
  assert.deepEqual(client.clientOptions.initializationOptions, { ...DEFAULTS, model: 'org/tiny', maxNewTokens: 24, temperature: 0.3 });
  const live = {
    continuousHotfixing: true,
    record: 'off',
    suppressions: 'off',
    maxNewTokens: 12,
    contextTokens: 512,
    debounceMs: 10,
    predictBudgetMs: 100,
    suggestionExpirySeconds: 5,
    editWindowSeconds: 7,
  };
  for (const [key, value] of Object.entries(live)) vscode.setSetting(key, value);
  // Removed: the server gets the default, not the value it started with.
  vscode.setSetting('temperature', undefined);
  await until(() => client.notifications.length === 1, 'notification');
  const expected = { ...DEFAULTS, model: 'org/tiny', ...live, temperature: 0 };
  assert.deepEqual(client.notifications[0], { method: CHANGED, params: { settings: expected } });
  // The options the client gives a server it restarts after a crash follow the settings.
  assert.deepEqual(client.clientOptions.initializationOptions, expected);
  // The status bar asks again: the server now reports the new settings.
  await until(() => client.requests.filter((r) => r.method === 'hotfix/status').length >= 2, 'status refresh');

  // Back to every default (the Settings editor's reset): sent as the defaults.
  for (const key of [...Object.keys(live), 'temperature']) vscode.setSetting(key, undefined);
  vscode.setSetting('maxNewTokens', null);
  await until(() => client.notifications.length === 2, 'notification');
  assert.deepEqual(client.notifications[1].params, { settings: { ...DEFAULTS, model: 'org/tiny' } });

  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(lc.clients.length, 1);
  assert.equal(client.state, 'running');
  assert.equal(client.notifications.length, 2);
});

test('a change to trace settings alone does not restart', async () => {
  await start({ 'server.pythonPath': fakePython('ok-python3', 0) });
  await until(() => lc.clients.length === 1 && lc.clients[0].state === 'running', 'client');
  vscode.setSetting('trace.server', 'verbose');
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(lc.clients.length, 1);
});

test('changing hotfix.suppressions reaches the running server without a restart', async () => {
  await start({ 'server.pythonPath': fakePython('ok-python17', 0), suppressions: 'off' });
  await until(() => lc.clients.length === 1 && lc.clients[0].state === 'running', 'client');
  const client = lc.clients[0];
  assert.deepEqual(client.clientOptions.initializationOptions, { ...DEFAULTS, suppressions: 'off' });

  vscode.setSetting('suppressions', 'everywhere');
  await until(() => client.notifications.length === 1, 'notification');
  assert.deepEqual(client.notifications, [{ method: CHANGED, params: { settings: { ...DEFAULTS, suppressions: 'everywhere' } } }]);
  assert.equal(client.clientOptions.initializationOptions.suppressions, 'everywhere');
  // A burst of changes sends what is in force at the end, once; back to the default is sent too.
  vscode.setSetting('suppressions', 'off');
  vscode.setSetting('suppressions', 'workspace');
  await until(() => client.notifications.length === 2, 'notification');
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(client.notifications.map((n) => n.params), [
    { settings: { ...DEFAULTS, suppressions: 'everywhere' } },
    { settings: { ...DEFAULTS, suppressions: 'workspace' } },
  ]);
  // A server the client restarts after a crash gets the setting in force, not the one at start.
  assert.deepEqual(client.clientOptions.initializationOptions, DEFAULTS);
  // The command reads the scope in force.
  lc.answers['workspace/executeCommand'] = { suppressions: [] };
  vscode.setSetting('suppressions', 'off');
  await vscode.commands.executeCommand(COMMANDS.showSuppressions);
  assert.match(vscode.recorded.infos[0], /hotfix\.suppressions is off/);

  // A bad value is reported and the default sent.
  vscode.setSetting('suppressions', 'never');
  await until(() => client.notifications.length === 4, 'notification');
  assert.deepEqual(client.notifications[2].params, { settings: { ...DEFAULTS, suppressions: 'off' } });
  assert.deepEqual(client.notifications[3].params, { settings: DEFAULTS });
  assert.deepEqual(vscode.recorded.warnings, ['hotfix.suppressions must be one of workspace, everywhere, off; using workspace.']);

  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(lc.clients.length, 1);
  assert.equal(client.state, 'running');
});

test('a live setting changed while the server starts reaches it once it runs', async () => {
  await start({ 'server.pythonPath': slowPython('slow-python2', 0.3) });
  vscode.setSetting('suppressions', 'everywhere');
  await until(() => lc.clients.length === 1 && lc.clients[0].notifications.length === 1, 'notification', 5000);
  assert.equal(lc.clients[0].state, 'running');
  assert.deepEqual(lc.clients[0].notifications[0].params, { settings: { ...DEFAULTS, suppressions: 'everywhere' } });
});

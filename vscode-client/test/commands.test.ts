/** The commands and the status bar menu (src/commands.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { CHANGED, deactivateAfterEach, DEFAULTS, fakePython, slowPython, start, statusItem, until } from './helpers/extension';
import * as vscode from './mocks/vscode';
import * as lc from './mocks/languageclient';
import { COMMANDS } from '../src/controller';

deactivateAfterEach();

test('the status bar menu runs Train now through the server command', async () => {
  await start({ 'server.pythonPath': fakePython('ok-python8', 0) });
  await until(() => lc.clients.length === 1 && statusItem().text.includes('v0002'), 'status');
  lc.answers['workspace/executeCommand'] = { started: true };
  vscode.recorded.quickPickAnswer = 'Train now';
  await vscode.commands.executeCommand(COMMANDS.showMenu);
  const sent = lc.clients[0].requests.filter((r) => r.method === 'workspace/executeCommand');
  assert.deepEqual(sent.map((r) => r.params), [{ command: 'hotfix.train', arguments: [] }]);
});

test('toggling continuous hotfixing updates the setting and sends it to the running server', async () => {
  await start({ 'server.pythonPath': fakePython('ok-python9', 0) });
  await until(() => lc.clients.length === 1 && lc.clients[0].state === 'running', 'client');
  await vscode.commands.executeCommand(COMMANDS.toggleContinuous);
  const client = lc.clients[0];
  await until(() => client.notifications.length === 1, 'notification');
  assert.deepEqual(client.notifications[0], { method: CHANGED, params: { settings: { ...DEFAULTS, continuousHotfixing: true } } });
  await new Promise((r) => setTimeout(r, 900));
  assert.equal(lc.clients.length, 1);
});

test('Train now shows what the server answered', async () => {
  await start({ 'server.pythonPath': fakePython('ok-python14', 0) });
  await until(() => lc.clients.length === 1 && lc.clients[0].state === 'running', 'client');
  lc.answers['workspace/executeCommand'] = { message: 'nothing to train on yet: no rejected or fixed suggestions', running: false };
  await vscode.commands.executeCommand(COMMANDS.trainNow);
  assert.deepEqual(vscode.recorded.infos, ['hotfix: nothing to train on yet: no rejected or fixed suggestions']);
});

test('Show Suppressed Suggestions lists through the server command and removes the picked ones', async () => {
  await start({ 'server.pythonPath': fakePython('ok-python15', 0) });
  await until(() => lc.clients.length === 1 && lc.clients[0].state === 'running', 'client');
  const suppression = {
    id: 's-1',
    created: Date.now() / 1000 - 30,
    workspace: '/ws',
    context: 'def f(x):',
    line: '    return x + 1',
    statement: 'return x + 1',
    fix: 'return x - 1',
    reason: 'edited',
    learnedBy: null,
  };
  lc.answers['workspace/executeCommand'] = (params: { command: string; arguments: string[] }) =>
    params.arguments[0] === 'remove' ? { removed: params.arguments.length - 1 } : { suppressions: [suppression] };
  vscode.recorded.quickPickAnswer = ['return x + 1'];
  await vscode.commands.executeCommand(COMMANDS.showSuppressions);
  const sent = lc.clients[0].requests.filter((r) => r.method === 'workspace/executeCommand').map((r) => r.params);
  assert.deepEqual(sent, [
    { command: 'hotfix.suppressions', arguments: ['list'] },
    { command: 'hotfix.suppressions', arguments: ['remove', 's-1'] },
  ]);
  const row = vscode.recorded.quickPicks[0].items[2] as { label: string; description?: string; detail?: string };
  assert.deepEqual([row.label, row.description, row.detail], ['return x + 1', 'fixed to return x - 1', 'below def f(x): · just now']);
  assert.deepEqual(vscode.recorded.infos, ['hotfix: removed 1 suppressed suggestion: `return x + 1`. They can be suggested again.']);
  assert.deepEqual(vscode.recorded.errors, []);
});

test('the status bar menu offers the suppressed suggestions', async () => {
  await start({ 'server.pythonPath': fakePython('ok-python16', 0) });
  await until(() => lc.clients.length === 1 && lc.clients[0].state === 'running', 'client');
  lc.answers['workspace/executeCommand'] = { suppressions: [] };
  vscode.recorded.quickPickAnswer = 'suppressed suggestions';
  await vscode.commands.executeCommand(COMMANDS.showMenu);
  await until(() => vscode.recorded.infos.length === 1, 'message');
  assert.match(vscode.recorded.infos[0], /no suggestions are suppressed/);
});

test('Show Suppressed Suggestions without a running server says so and asks nothing', async () => {
  const controller = await start({ 'server.pythonPath': slowPython('slow-python', 1) });
  await vscode.commands.executeCommand(COMMANDS.showSuppressions);
  assert.deepEqual(vscode.recorded.errors.map((e) => e.message), ['hotfix: the server is still starting; try again in a moment.']);
  assert.equal(vscode.recorded.quickPicks.length, 0);
  await until(() => lc.clients.length === 1 && lc.clients[0].state === 'running', 'client', 5000);

  lc.resetClients();
  lc.startBehaviour.reject = new Error('connection closed');
  await controller.restart('test');
  vscode.recorded.errors = [];
  await vscode.commands.executeCommand(COMMANDS.showSuppressions);
  assert.equal(vscode.recorded.errors.length, 1);
  assert.match(vscode.recorded.errors[0].message, /hotfix: the server stopped/);
  assert.equal(lc.clients[0].requests.filter((r) => r.method === 'workspace/executeCommand').length, 0);
  assert.equal(vscode.recorded.quickPicks.length, 0);
});

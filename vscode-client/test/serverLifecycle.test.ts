/** The server's lifecycle: what a start that fails says, and the Python extension's interpreter (src/serverLifecycle.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';

import { deactivateAfterEach, fakePython, start, statusItem, tmp, until } from './helpers/extension';
import * as vscode from './mocks/vscode';
import * as lc from './mocks/languageclient';

deactivateAfterEach();

test('a missing interpreter gives an actionable error and no client', async () => {
  await start({ 'server.pythonPath': path.join(tmp, 'no-such-python') });
  await until(() => vscode.recorded.errors.length === 1, 'error message');
  const { message, items } = vscode.recorded.errors[0];
  assert.match(message, /no-such-python.*was not found/);
  assert.match(message, /hotfix\.server\.pythonPath/);
  assert.ok(items.includes('Open Settings'));
  assert.equal(lc.clients.length, 0);
  assert.equal(statusItem().text, '$(error) hotfix');
});

test('an interpreter without hotfix suggests the pip command and can copy it', async () => {
  const python = fakePython('bare-python', 1, '/usr/bin/python3: No module named hotfix_server');
  await start({ 'server.pythonPath': python });
  // Answered before the preflight process ends: the notification's button is clicked.
  vscode.recorded.errorAnswer = 'Copy Install Command';
  await until(() => vscode.recorded.errors.length === 1, 'error message');
  assert.match(vscode.recorded.errors[0].message, /hotfix is not installed for .*bare-python/);
  assert.match(vscode.recorded.errors[0].message, /-m pip install -e '<path to your hotfix checkout>'/);
  assert.equal(lc.clients.length, 0);
  await until(() => vscode.env.clipboard.text !== '', 'clipboard');
  assert.equal(vscode.env.clipboard.text, `${python} -m pip install -e '<path to your hotfix checkout>'`);
});

test('a model path that does not exist is reported before starting', async () => {
  await start({ 'server.pythonPath': fakePython('ok-python4', 0), model: path.join(tmp, 'missing-model') });
  await until(() => vscode.recorded.errors.length === 1, 'error message');
  assert.match(vscode.recorded.errors[0].message, /hotfix\.model is ".*missing-model", which does not exist/);
  assert.equal(lc.clients.length, 0);
});

test('a client that fails to start is reported with the server stderr diagnosis', async () => {
  const controller = await start({ 'server.pythonPath': fakePython('ok-python11', 0) }, () => {
    lc.startBehaviour.reject = new Error('connection closed');
  });
  await until(() => vscode.recorded.errors.length === 1, 'error message');
  assert.match(vscode.recorded.errors[0].message, /hotfix: the server stopped/);
  assert.equal(controller.state.phase, 'failed');
});

test('a start that resolves with the client stopped (failed initialize) is a failure, not a running server', async () => {
  const controller = await start({ 'server.pythonPath': fakePython('ok-python12', 0) }, () => {
    lc.startBehaviour.resolveStopped = true;
  });
  await until(() => vscode.recorded.errors.length === 1, 'error message');
  assert.equal(controller.state.phase, 'failed');
  assert.equal(statusItem().text, '$(error) hotfix');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(lc.clients[0].requests.length, 0);
});

test('without a configured interpreter the Python extension\'s is used, and a new pick restarts the server', async () => {
  let interpreter = fakePython('ext-python-a', 0);
  const changed = new vscode.EventEmitter<unknown>();
  const pythonApi = {
    environments: {
      getActiveEnvironmentPath: () => ({ id: 'x', path: interpreter }),
      resolveEnvironment: async (env: { path: string }) => ({ executable: { uri: vscode.Uri.file(env.path) } }),
      onDidChangeActiveEnvironmentPath: changed.event,
    },
  };
  await start({}, () => {
    vscode.installedExtensions['ms-python.python'] = { isActive: true, exports: pythonApi };
  });
  await until(() => lc.clients.length === 1 && lc.clients[0].state === 'running', 'client');
  assert.ok(vscode.recorded.logLines.some((l) => l.includes(`Server command (python extension): ${interpreter} -m hotfix_server --stdio`)));
  interpreter = fakePython('ext-python-b', 0);
  changed.fire({});
  await until(() => lc.clients.length === 2 && lc.clients[1].state === 'running', 'restart', 5000);
  assert.ok(vscode.recorded.logLines.some((l) => l.includes(`Server command (python extension): ${interpreter} -m hotfix_server --stdio`)));
});

import './mocks/install';
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import * as vscode from './mocks/vscode';
import * as lc from './mocks/languageclient';
import { activate, deactivate } from '../src/extension';
import { COMMANDS, HotfixController } from '../src/controller';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hotfix-activation-'));

/** A stand-in interpreter: `-c` is the preflight import check; it prints `stderr` and exits `code`. */
function fakePython(name: string, code: number, stderr = ''): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, `#!/bin/sh\nprintf '%s' '${stderr}' >&2\nexit ${code}\n`, { mode: 0o755 });
  return file;
}

const READY_STATUS = {
  model: '/models/tiny',
  modelReady: true,
  adapter: 'v0002',
  trainer: { state: 'idle', progress: null, lastResult: { version: 'v0002', published: true } },
  store: { suggestions: 3, outcomes: 2 },
};

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function statusItem(): vscode.StatusItem {
  return vscode.recorded.statusItems[0];
}

let controller: HotfixController | undefined;

async function start(settings: Record<string, unknown>, setup: () => void = () => undefined): Promise<HotfixController> {
  vscode.reset(settings);
  setup();
  lc.resetClients();
  lc.answers['hotfix/status'] = READY_STATUS;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  controller = await activate({ subscriptions: [] } as any);
  return controller;
}

beforeEach(() => {
  controller = undefined;
});

afterEach(async () => {
  await deactivate();
});

test('activation registers the commands, starts the client with our options, and shows model and adapter', async () => {
  const python = fakePython('ok-python', 0);
  await start({ 'server.pythonPath': python, model: '', record: 'all', maxNewTokens: 24, enabledLanguages: ['python', 'go'] });
  for (const id of Object.values(COMMANDS)) assert.ok(vscode.commands.registered().includes(id), id);
  await until(() => lc.clients.length === 1 && statusItem().text.includes('v0002'), 'status');
  const options = lc.clients[0].clientOptions;
  assert.deepEqual(options.initializationOptions, { continuousHotfixing: false, record: 'all', maxNewTokens: 24 });
  assert.deepEqual(
    options.documentSelector.map((s: { language: string }) => s.language),
    ['python', 'python', 'go', 'go'],
  );
  assert.equal(statusItem().text, '$(sparkle) tiny · v0002');
  assert.equal(statusItem().command, COMMANDS.showMenu);
  assert.ok(statusItem().visible);
  assert.equal(vscode.recorded.errors.length, 0);
});

test('a burst of settings changes restarts the server once', async () => {
  await start({ 'server.pythonPath': fakePython('ok-python2', 0) });
  await until(() => lc.clients.length === 1 && lc.clients[0].state === 'running', 'first client');
  vscode.setSetting('maxNewTokens', 10);
  vscode.setSetting('maxNewTokens', 12);
  vscode.setSetting('temperature', 0.2);
  await until(() => lc.clients.length === 2, 'restart', 5000);
  await new Promise((r) => setTimeout(r, 900));
  assert.equal(lc.clients.length, 2);
  assert.equal(lc.clients[0].state, 'disposed');
  assert.deepEqual(lc.clients[1].clientOptions.initializationOptions, {
    continuousHotfixing: false,
    record: 'patterns',
    maxNewTokens: 12,
    temperature: 0.2,
  });
});

test('a change to trace settings alone does not restart', async () => {
  await start({ 'server.pythonPath': fakePython('ok-python3', 0) });
  await until(() => lc.clients.length === 1 && lc.clients[0].state === 'running', 'client');
  vscode.setSetting('trace.server', 'verbose');
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(lc.clients.length, 1);
});

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

test('Escape on a shown suggestion hides it and reports hotfix.reject with its id', async () => {
  await start({ 'server.pythonPath': fakePython('ok-python5', 0) });
  await until(() => lc.clients.length === 1 && lc.clients[0].state === 'running', 'client');
  const client = lc.clients[0];
  const uri = vscode.Uri.file('/ws/main.py');
  const item = { insertText: 'return 1', command: { command: 'hotfix.accept', arguments: ['s-42'] } };
  const provide = client.clientOptions.middleware.provideInlineCompletionItems;
  await provide({ uri }, { line: 3, character: 4 }, {}, {}, async () => [item]);
  vscode.window.activeTextEditor = { document: { uri }, selection: { active: { line: 3, character: 4 } } };

  await vscode.commands.executeCommand(COMMANDS.dismissInline);
  assert.ok(vscode.recorded.executed.some((e) => e.command === 'editor.action.inlineSuggest.hide'));
  const rejects = client.requests.filter((r) => r.method === 'workspace/executeCommand');
  assert.deepEqual(rejects.map((r) => r.params), [{ command: 'hotfix.reject', arguments: ['s-42'] }]);

  // Reported once: a second Escape has nothing of ours to dismiss.
  await vscode.commands.executeCommand(COMMANDS.dismissInline);
  assert.equal(client.requests.filter((r) => r.method === 'workspace/executeCommand').length, 1);
});

test('an accepted suggestion is not rejected by a later Escape', async () => {
  await start({ 'server.pythonPath': fakePython('ok-python6', 0) });
  await until(() => lc.clients.length === 1 && lc.clients[0].state === 'running', 'client');
  const client = lc.clients[0];
  const uri = vscode.Uri.file('/ws/a.py');
  const mw = client.clientOptions.middleware;
  await mw.provideInlineCompletionItems({ uri }, { line: 0, character: 0 }, {}, {}, async () => ({
    items: [{ command: { command: 'hotfix.accept', arguments: ['s-1'] } }],
  }));
  await mw.executeCommand('hotfix.accept', ['s-1'], async () => undefined);
  vscode.window.activeTextEditor = { document: { uri }, selection: { active: { line: 0, character: 8 } } };
  await vscode.commands.executeCommand(COMMANDS.dismissInline);
  assert.equal(client.requests.filter((r) => r.method === 'workspace/executeCommand').length, 0);
});

test('classic completion items run only when invoked, by default', async () => {
  await start({ 'server.pythonPath': fakePython('ok-python7', 0) });
  await until(() => lc.clients.length === 1 && lc.clients[0].state === 'running', 'client');
  const mw = lc.clients[0].clientOptions.middleware;
  let calls = 0;
  const next = () => {
    calls += 1;
    return [];
  };
  assert.equal(mw.provideCompletionItem({}, {}, { triggerKind: vscode.CompletionTriggerKind.TriggerCharacter }, {}, next), undefined);
  assert.equal(calls, 0);
  mw.provideCompletionItem({}, {}, { triggerKind: vscode.CompletionTriggerKind.Invoke }, {}, next);
  assert.equal(calls, 1);
});

test('the status bar menu runs Train now through the server command', async () => {
  await start({ 'server.pythonPath': fakePython('ok-python8', 0) });
  await until(() => lc.clients.length === 1 && statusItem().text.includes('v0002'), 'status');
  lc.answers['workspace/executeCommand'] = { started: true };
  vscode.recorded.quickPickAnswer = 'Train now';
  await vscode.commands.executeCommand(COMMANDS.showMenu);
  const sent = lc.clients[0].requests.filter((r) => r.method === 'workspace/executeCommand');
  assert.deepEqual(sent.map((r) => r.params), [{ command: 'hotfix.train', arguments: [] }]);
});

test('toggling continuous hotfixing updates the setting and restarts with it', async () => {
  await start({ 'server.pythonPath': fakePython('ok-python9', 0) });
  await until(() => lc.clients.length === 1 && lc.clients[0].state === 'running', 'client');
  await vscode.commands.executeCommand(COMMANDS.toggleContinuous);
  await until(() => lc.clients.length === 2, 'restart', 5000);
  assert.equal(lc.clients[1].clientOptions.initializationOptions.continuousHotfixing, true);
});

test('adapterChanged refreshes the status bar', async () => {
  await start({ 'server.pythonPath': fakePython('ok-python10', 0) });
  await until(() => lc.clients.length === 1 && statusItem().text.includes('v0002'), 'status');
  lc.answers['hotfix/status'] = { ...READY_STATUS, adapter: 'v0003' };
  lc.clients[0].notificationHandlers.get('hotfix/adapterChanged')?.({ version: 'v0003' });
  await until(() => statusItem().text.includes('v0003'), 'new adapter');
  assert.ok(vscode.recorded.statusMessages.some((m) => m.includes('v0003')));
});

test('a client that fails to start is reported with the server stderr diagnosis', async () => {
  vscode.reset();
  lc.resetClients();
  lc.startBehaviour.reject = new Error('connection closed');
  const python = fakePython('ok-python11', 0);
  vscode.reset({ 'server.pythonPath': python });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  controller = await activate({ subscriptions: [] } as any);
  await until(() => vscode.recorded.errors.length === 1, 'error message');
  assert.match(vscode.recorded.errors[0].message, /hotfix: the server stopped/);
  assert.equal(controller.state.phase, 'failed');
});

test('a start that resolves with the client stopped (failed initialize) is a failure, not a running server', async () => {
  vscode.reset();
  lc.resetClients();
  lc.startBehaviour.resolveStopped = true;
  vscode.reset({ 'server.pythonPath': fakePython('ok-python12', 0) });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  controller = await activate({ subscriptions: [] } as any);
  await until(() => vscode.recorded.errors.length === 1, 'error message');
  assert.equal(controller.state.phase, 'failed');
  assert.equal(statusItem().text, '$(error) hotfix');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(lc.clients[0].requests.length, 0);
});

test('a model the server could not load is reported once, with the setting to fix', async () => {
  await start({ 'server.pythonPath': fakePython('ok-python13', 0) });
  lc.answers['hotfix/status'] = { ...READY_STATUS, modelReady: false, modelError: 'no model at /models/tiny' };
  await until(() => vscode.recorded.errors.length === 1, 'error message');
  assert.match(vscode.recorded.errors[0].message, /the model "\/models\/tiny" could not be loaded: no model at \/models\/tiny\. Check hotfix\.model/);
  assert.deepEqual(vscode.recorded.errors[0].items, ['Open Settings', 'Open Log']);
  await controller!.refreshStatus();
  assert.equal(vscode.recorded.errors.length, 1);
  assert.equal(statusItem().text, '$(error) tiny · not loaded');
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
  const slow = path.join(tmp, 'slow-python');
  fs.writeFileSync(slow, '#!/bin/sh\nsleep 1\nexit 0\n', { mode: 0o755 });
  await start({ 'server.pythonPath': slow });
  await vscode.commands.executeCommand(COMMANDS.showSuppressions);
  assert.deepEqual(vscode.recorded.errors.map((e) => e.message), ['hotfix: the server is still starting; try again in a moment.']);
  assert.equal(vscode.recorded.quickPicks.length, 0);
  await until(() => lc.clients.length === 1 && lc.clients[0].state === 'running', 'client', 5000);

  lc.resetClients();
  lc.startBehaviour.reject = new Error('connection closed');
  await controller!.restart('test');
  vscode.recorded.errors = [];
  await vscode.commands.executeCommand(COMMANDS.showSuppressions);
  assert.equal(vscode.recorded.errors.length, 1);
  assert.match(vscode.recorded.errors[0].message, /hotfix: the server stopped/);
  assert.equal(lc.clients[0].requests.filter((r) => r.method === 'workspace/executeCommand').length, 0);
  assert.equal(vscode.recorded.quickPicks.length, 0);
});

test('changing hotfix.suppressions reaches the running server without a restart', async () => {
  await start({ 'server.pythonPath': fakePython('ok-python17', 0), suppressions: 'off' });
  await until(() => lc.clients.length === 1 && lc.clients[0].state === 'running', 'client');
  const client = lc.clients[0];
  assert.deepEqual(client.clientOptions.initializationOptions, { continuousHotfixing: false, record: 'patterns', suppressions: 'off' });

  vscode.setSetting('suppressions', 'everywhere');
  await until(() => client.notifications.length === 1, 'notification');
  assert.deepEqual(client.notifications, [
    { method: 'workspace/didChangeConfiguration', params: { settings: { suppressions: 'everywhere' } } },
  ]);
  assert.equal(client.clientOptions.initializationOptions.suppressions, 'everywhere');
  // A burst of changes sends what is in force at the end, once; back to the default is sent too.
  vscode.setSetting('suppressions', 'off');
  vscode.setSetting('suppressions', 'workspace');
  await until(() => client.notifications.length === 2, 'notification');
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(client.notifications.map((n) => n.params), [
    { settings: { suppressions: 'everywhere' } },
    { settings: { suppressions: 'workspace' } },
  ]);
  // A server the client restarts after a crash gets the setting in force, not the one at start.
  assert.deepEqual(client.clientOptions.initializationOptions, { continuousHotfixing: false, record: 'patterns' });
  // The command reads the scope in force.
  lc.answers['workspace/executeCommand'] = { suppressions: [] };
  vscode.setSetting('suppressions', 'off');
  await vscode.commands.executeCommand(COMMANDS.showSuppressions);
  assert.match(vscode.recorded.infos[0], /hotfix\.suppressions is off/);

  // A bad value is reported and the default sent.
  vscode.setSetting('suppressions', 'never');
  await until(() => client.notifications.length === 4, 'notification');
  assert.deepEqual(client.notifications[2].params, { settings: { suppressions: 'off' } });
  assert.deepEqual(client.notifications[3].params, { settings: { suppressions: 'workspace' } });
  assert.deepEqual(vscode.recorded.warnings, ['hotfix.suppressions must be one of workspace, everywhere, off; using workspace.']);

  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(lc.clients.length, 1);
  assert.equal(client.state, 'running');
});

test('a live setting changed while the server starts reaches it once it runs', async () => {
  const slow = path.join(tmp, 'slow-python2');
  fs.writeFileSync(slow, '#!/bin/sh\nsleep 0.3\nexit 0\n', { mode: 0o755 });
  await start({ 'server.pythonPath': slow });
  vscode.setSetting('suppressions', 'everywhere');
  await until(() => lc.clients.length === 1 && lc.clients[0].notifications.length === 1, 'notification', 5000);
  assert.equal(lc.clients[0].state, 'running');
  assert.deepEqual(lc.clients[0].notifications[0].params, { settings: { suppressions: 'everywhere' } });
});

test('completionItems applies at once, without a restart', async () => {
  await start({ 'server.pythonPath': fakePython('ok-python18', 0) });
  await until(() => lc.clients.length === 1 && lc.clients[0].state === 'running', 'client');
  const mw = lc.clients[0].clientOptions.middleware;
  let calls = 0;
  const next = () => {
    calls += 1;
    return [];
  };
  const typed = { triggerKind: vscode.CompletionTriggerKind.TriggerCharacter };
  mw.provideCompletionItem({}, {}, typed, {}, next);
  assert.equal(calls, 0);
  vscode.setSetting('completionItems', 'always');
  mw.provideCompletionItem({}, {}, typed, {}, next);
  assert.equal(calls, 1);
  assert.equal(lc.clients.length, 1);
  assert.deepEqual(lc.clients[0].notifications, []);
});

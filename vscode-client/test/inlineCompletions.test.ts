/** Accept and reject wiring, and classic completion items (src/inlineCompletions.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { deactivateAfterEach, fakePython, start, until } from './helpers/extension';
import * as vscode from './mocks/vscode';
import * as lc from './mocks/languageclient';
import { COMMANDS } from '../src/controller';

deactivateAfterEach();

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

import './mocks/install';
import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';

import * as vscode from './mocks/vscode';
import {
  ago,
  emptyMessage,
  parseRemoved,
  parseSuppressions,
  showSuppressions,
  Suppression,
  SuppressionItem,
  toItem,
} from '../src/suppressionsCommand';

const NOW = Date.UTC(2025, 5, 1, 12, 0, 0);
const secondsAgo = (s: number) => NOW / 1000 - s;

const DISMISSED = {
  id: 'a1',
  created: secondsAgo(3 * 3600),
  workspace: '/home/u/proj',
  context: 'def area(r):',
  line: '    return 3.14 * r',
  statement: 'return 3.14 * r',
  fix: null,
  reason: 'dismissed',
  learnedBy: null,
};
const EDITED = {
  id: 'b2',
  created: secondsAgo(120),
  workspace: '/home/u/proj',
  context: 'for i in range(len(xs)):',
  line: '    total += xs[i + 1]',
  statement: 'total += xs[i + 1]',
  fix: 'total += xs[i]\n',
  reason: 'edited',
  learnedBy: 'v0003',
};
const DIVERGED = {
  id: 'c3',
  created: secondsAgo(5),
  workspace: '/home/u/proj',
  context: '',
  line: 'import os',
  statement: 'import os',
  fix: null,
  reason: 'diverged',
  learnedBy: null,
};

/** A scripted server: answers by action and records what it was asked. */
function server(list: unknown[], answers: Record<string, unknown> = {}) {
  const calls: string[][] = [];
  const request = async (args: string[]) => {
    calls.push(args);
    const action = args[0] ?? 'list';
    if (action in answers) return answers[action];
    if (action === 'list') return { suppressions: list };
    if (action === 'remove') return { removed: args.length - 1 };
    if (action === 'clear') return { removed: list.length };
    return undefined;
  };
  return { calls, request };
}

function shown(): SuppressionItem[] {
  assert.equal(vscode.recorded.quickPicks.length, 1);
  return vscode.recorded.quickPicks[0].items as SuppressionItem[];
}

beforeEach(() => vscode.reset());

test('the list is a multi-select QuickPick: Clear all, a separator, then the suppressions newest first', async () => {
  const s = server([DISMISSED, EDITED, DIVERGED]);
  await showSuppressions({ request: s.request, scope: 'workspace', now: () => NOW });
  assert.deepEqual(s.calls, [['list']]);
  const { items, options } = vscode.recorded.quickPicks[0];
  assert.equal(options?.canPickMany, true);
  assert.equal(options?.title, 'Hotfix: 3 suppressed suggestions');
  const rows = shown();
  assert.match(rows[0].label, /Clear all/);
  assert.equal(rows[0].description, 'remove all 3 suppressed suggestions');
  assert.equal(rows[1].kind, vscode.QuickPickItemKind.Separator);
  assert.deepEqual(
    items.slice(2).map((i) => i.label),
    ['import os', 'total += xs[i + 1]', 'return 3.14 * r'],
  );
  assert.deepEqual(
    rows.slice(2).map((i) => [i.description, i.detail]),
    [
      ['typed over', 'at the top of the file · just now'],
      ['fixed to total += xs[i] · learnt by adapter v0003', 'below for i in range(len(xs)): · 2 minutes ago'],
      ['dismissed', 'below def area(r): · 3 hours ago'],
    ],
  );
  // Cancelled: nothing is removed, nothing is said.
  assert.deepEqual(vscode.recorded.infos, []);
});

test('picking suppressions removes exactly those and says which', async () => {
  const s = server([DISMISSED, EDITED, DIVERGED]);
  vscode.recorded.quickPickAnswer = ['return 3.14', 'total +='];
  await showSuppressions({ request: s.request, scope: 'workspace', now: () => NOW });
  assert.deepEqual(s.calls, [['list'], ['remove', 'b2', 'a1']]);
  assert.deepEqual(vscode.recorded.infos, [
    'hotfix: removed 2 suppressed suggestions: `total += xs[i + 1]`, `return 3.14 * r`. They can be suggested again.',
  ]);
});

test('Clear all clears, even with other items checked, and says how many', async () => {
  const s = server([DISMISSED, EDITED]);
  vscode.recorded.quickPickAnswer = ['Clear all', 'return 3.14'];
  await showSuppressions({ request: s.request, scope: 'everywhere', now: () => NOW });
  assert.deepEqual(s.calls, [['list'], ['clear']]);
  assert.deepEqual(vscode.recorded.infos, ['hotfix: cleared all 2 suppressed suggestions. They can be suggested again.']);
});

test('accepting with nothing checked removes nothing', async () => {
  const s = server([DISMISSED]);
  vscode.recorded.quickPickAnswer = [];
  await showSuppressions({ request: s.request, scope: 'workspace', now: () => NOW });
  assert.deepEqual(s.calls, [['list']]);
  assert.deepEqual(vscode.recorded.infos, []);
});

test('a removal the server had already made is reported as such', async () => {
  const s = server([DISMISSED, EDITED], { remove: { removed: 1 } });
  vscode.recorded.quickPickAnswer = ['return 3.14', 'total +='];
  await showSuppressions({ request: s.request, scope: 'workspace', now: () => NOW });
  assert.match(vscode.recorded.infos[0], /^hotfix: removed 1 suppressed suggestion: .*\(1 of those picked were already gone\)/);
});

test('no suppressions: an information message that says how they arise, and none under off', async () => {
  await showSuppressions({ request: server([]).request, scope: 'workspace' });
  assert.equal(vscode.recorded.quickPicks.length, 0);
  assert.equal(vscode.recorded.infos.length, 1);
  assert.match(vscode.recorded.infos[0], /no suggestions are suppressed/);
  assert.match(vscode.recorded.infos[0], /dismiss a suggestion \(Escape\) or type something else over it/);
  assert.match(vscode.recorded.infos[0], /your fix is suggested there instead/);
  assert.match(emptyMessage('off'), /hotfix\.suppressions is off/);
});

test('a failed request (reported by the caller) shows nothing more; a malformed answer is an error', async () => {
  await showSuppressions({ request: async () => undefined, scope: 'workspace' });
  assert.deepEqual([vscode.recorded.infos, vscode.recorded.errors, vscode.recorded.quickPicks], [[], [], []]);

  const warnings: string[] = [];
  await showSuppressions({ request: async () => ({ status: 'ok' }), scope: 'workspace', log: { warn: (m) => warnings.push(m) } });
  assert.equal(vscode.recorded.errors.length, 1);
  assert.match(vscode.recorded.errors[0].message, /did not answer with a list of suppressions/);
  assert.equal(warnings.length, 1);

  vscode.reset();
  const s = server([DISMISSED], { clear: 'done' });
  vscode.recorded.quickPickAnswer = ['Clear all'];
  await showSuppressions({ request: s.request, scope: 'workspace' });
  assert.equal(vscode.recorded.infos.length, 0);
  assert.match(vscode.recorded.errors[0].message, /did not say what it removed/);
});

test('parsing keeps well-formed entries and defaults missing fields', () => {
  assert.equal(parseSuppressions(null), undefined);
  assert.equal(parseSuppressions({ suppressions: 'x' }), undefined);
  const parsed = parseSuppressions({ suppressions: [DISMISSED, { statement: 'no id' }, 7, { id: 'z', fix: '' }] }) as Suppression[];
  assert.deepEqual(parsed.map((s) => s.id), ['a1', 'z']);
  assert.deepEqual(parsed[1], {
    id: 'z',
    created: 0,
    workspace: '',
    context: '',
    line: '',
    statement: '',
    fix: null,
    reason: '',
    learnedBy: null,
  });
  assert.equal(parseRemoved({ removed: 3 }), 3);
  assert.equal(parseRemoved({ removed: -1 }), undefined);
  assert.equal(parseRemoved(undefined), undefined);
});

test('rows: multi-line code on one line, the statement falling back to the line, the workspace when there are several', () => {
  const item = toItem(
    { ...DISMISSED, statement: '', line: 'x = (1,\n     2)', fix: 'x = (1, 2)', workspace: '/home/u/other/' } as Suppression,
    NOW,
    true,
  );
  assert.equal(item.label, 'x = (1, 2)');
  assert.equal(item.description, 'fixed to x = (1, 2)');
  assert.equal(item.detail, 'below def area(r): · 3 hours ago · in other');
  assert.equal(ago(secondsAgo(45), NOW), 'just now');
  assert.equal(ago(secondsAgo(60), NOW), '1 minute ago');
  assert.equal(ago(secondsAgo(2 * 86_400), NOW), '2 days ago');
  assert.equal(ago(secondsAgo(90 * 86_400), NOW), 'on 2025-03-03');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  changesLiveSettings,
  documentSelector,
  expandPath,
  LIVE_KEYS,
  looksLikePath,
  needsRestart,
  readSettings,
  RESTART_KEYS,
  toInitializationOptions,
  toLiveOptions,
  updateLiveOptions,
} from '../src/settings';

const vars = { home: '/home/u', workspaceFolder: '/ws' };
const from = (values: Record<string, unknown>) => (key: string) => values[key];

test('defaults: python only, patterns recorded, continuous off, nothing else sent', () => {
  const { settings, problems } = readSettings(from({}));
  assert.deepEqual(problems, []);
  assert.deepEqual(settings.enabledLanguages, ['python']);
  assert.equal(settings.completionItems, 'invoke');
  assert.deepEqual(toInitializationOptions(settings, vars), { continuousHotfixing: false, record: 'patterns' });
});

test('every server option is passed through in camelCase', () => {
  const { settings } = readSettings(
    from({
      model: 'embedded:smollm2-135m',
      runtime: 'transformers',
      dataDir: '~/hotfix-data',
      continuousHotfixing: true,
      record: 'all',
      suppressions: 'everywhere',
      maxNewTokens: 32,
      temperature: 0.4,
      contextTokens: 512,
      debounceMs: 80,
      predictBudgetMs: 300,
      suggestionExpirySeconds: 12.5,
      editWindowSeconds: 90,
    }),
  );
  assert.deepEqual(toInitializationOptions(settings, vars), {
    model: 'embedded:smollm2-135m',
    runtime: 'transformers',
    dataDir: '/home/u/hotfix-data',
    continuousHotfixing: true,
    record: 'all',
    suppressions: 'everywhere',
    maxNewTokens: 32,
    temperature: 0.4,
    contextTokens: 512,
    debounceMs: 80,
    predictBudgetMs: 300,
    suggestionExpirySeconds: 12.5,
    editWindowSeconds: 90,
  });
});

test('bad values fall back to the defaults with one message each', () => {
  const { settings, problems } = readSettings(
    from({ record: 'everything', maxNewTokens: 0, temperature: 'hot', continuousHotfixing: 'yes', enabledLanguages: 'python' }),
  );
  assert.equal(settings.record, 'patterns');
  assert.equal(settings.maxNewTokens, undefined);
  assert.equal(settings.temperature, undefined);
  assert.equal(settings.continuousHotfixing, false);
  assert.deepEqual(settings.enabledLanguages, ['python']);
  assert.deepEqual(
    problems.map((p) => p.key),
    ['continuousHotfixing', 'record', 'maxNewTokens', 'temperature', 'enabledLanguages'],
  );
  assert.match(problems[1].message, /one of patterns, all, off/);
  assert.match(problems[2].message, /integer from 1 to 4096/);
});

test('null means unset (the Settings editor clears a number that way)', () => {
  const { settings, problems } = readSettings(from({ maxNewTokens: null, model: null }));
  assert.deepEqual(problems, []);
  assert.equal(settings.maxNewTokens, undefined);
  assert.equal(settings.model, '');
});

test('paths: ~ and ${workspaceFolder} expand; hub ids and embedded names stay as they are', () => {
  assert.equal(expandPath('~/m', vars), '/home/u/m');
  assert.equal(expandPath('${workspaceFolder}/models/tiny', vars), '/ws/models/tiny');
  assert.equal(expandPath('${userHome}/x', vars), '/home/u/x');
  assert.equal(expandPath('~user/x', vars), '~user/x');
  const model = (m: string) => toInitializationOptions(readSettings(from({ model: m })).settings, vars).model;
  assert.equal(model('~/m.gguf'), '/home/u/m.gguf');
  assert.equal(model('Salesforce/codegen-350M-mono'), 'Salesforce/codegen-350M-mono');
  assert.equal(model('embedded:gemma3-270m'), 'embedded:gemma3-270m');
});

test('looksLikePath tells local models from hub ids', () => {
  for (const p of ['/abs/dir', './rel', '../up', '~/m', 'model.GGUF', 'C:\\models\\x', '${workspaceFolder}/m']) {
    assert.ok(looksLikePath(p), p);
  }
  for (const p of ['org/name', 'embedded:gemma3-270m', 'gpt2']) assert.ok(!looksLikePath(p), p);
});

test('document selector covers files and unsaved buffers; * selects every language', () => {
  assert.deepEqual(documentSelector(['python']), [
    { scheme: 'file', language: 'python' },
    { scheme: 'untitled', language: 'python' },
  ]);
  assert.deepEqual(documentSelector(['*', 'python']), [{ scheme: 'file' }, { scheme: 'untitled' }]);
});

test('restart on server settings, not on trace or completion item mode', () => {
  const affects = (changed: string) => (section: string) => section === changed;
  assert.ok(needsRestart(affects('hotfix.model')));
  assert.ok(needsRestart(affects('hotfix.server.pythonPath')));
  assert.ok(needsRestart(affects('hotfix.enabledLanguages')));
  assert.ok(!needsRestart(affects('hotfix.trace.server')));
  assert.ok(!needsRestart(affects('hotfix.completionItems')));
  assert.ok(!needsRestart(affects('editor.fontSize')));
});

test('the runtime: auto is left to the server, a bad one falls back with a message, a change restarts', () => {
  assert.equal(readSettings(from({ runtime: 'auto' })).settings.runtime, 'auto');
  const { settings, problems } = readSettings(from({ runtime: 'vllm' }));
  assert.equal(settings.runtime, 'auto');
  assert.deepEqual(problems.map((p) => p.key), ['runtime']);
  assert.equal('runtime' in toInitializationOptions(settings, vars), false);
  assert.equal(needsRestart((section) => section === 'hotfix.runtime'), true);
});

test('suppressions: workspace by default (left to the server), everywhere or off sent, a bad value falls back', () => {
  assert.equal(readSettings(from({})).settings.suppressions, 'workspace');
  assert.equal('suppressions' in toInitializationOptions(readSettings(from({ suppressions: 'workspace' })).settings, vars), false);
  for (const scope of ['everywhere', 'off'] as const) {
    const { settings, problems } = readSettings(from({ suppressions: scope }));
    assert.deepEqual(problems, []);
    assert.equal(toInitializationOptions(settings, vars).suppressions, scope);
  }
  const { settings, problems } = readSettings(from({ suppressions: 'never' }));
  assert.equal(settings.suppressions, 'workspace');
  assert.deepEqual(problems.map((p) => p.key), ['suppressions']);
  assert.match(problems[0].message, /one of workspace, everywhere, off; using workspace/);
});

test('suppressions is live: no restart, sent in full (the default too), and kept in the options a crashed server gets', () => {
  const affects = (section: string) => section === 'hotfix.suppressions';
  assert.equal(needsRestart(affects), false);
  assert.equal(changesLiveSettings(affects), true);
  assert.equal(changesLiveSettings((section) => section === 'hotfix.model'), false);
  for (const key of LIVE_KEYS) assert.ok(!(RESTART_KEYS as readonly string[]).includes(key), key);
  assert.deepEqual(toLiveOptions(readSettings(from({})).settings), { suppressions: 'workspace' });

  const init = toInitializationOptions(readSettings(from({ record: 'all', suppressions: 'off' })).settings, vars);
  updateLiveOptions(init, readSettings(from({ record: 'off', suppressions: 'everywhere' })).settings, vars);
  assert.deepEqual(init, { continuousHotfixing: false, record: 'all', suppressions: 'everywhere' });
  updateLiveOptions(init, readSettings(from({})).settings, vars);
  assert.deepEqual(init, { continuousHotfixing: false, record: 'all' });
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  activationEvents,
  changesLiveSettings,
  documentSelector,
  expandPath,
  LIVE_KEYS,
  liveUpdate,
  looksLikePath,
  needsRestart,
  readSettings,
  RESTART_KEYS,
  SERVER_KEYS,
  SETTINGS,
  toServerSettings,
} from '../src/settings';

const vars = { home: '/home/u', workspaceFolder: '/ws' };
const from = (values: Record<string, unknown>) => (key: string) => values[key];

/** What the server gets when nothing is set: every key, the defaults (package.json's, which are the server's). */
const DEFAULTS = {
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

test('defaults: python only, and every server key sent with its default (null leaves model, runtime and data folder to the server)', () => {
  const { settings, problems } = readSettings(from({}));
  assert.deepEqual(problems, []);
  assert.deepEqual(settings.enabledLanguages, ['python']);
  assert.equal(settings.completionItems, 'invoke');
  assert.deepEqual(toServerSettings(settings, vars), DEFAULTS);
  assert.deepEqual(Object.keys(toServerSettings(settings, vars)).sort(), [...SERVER_KEYS].sort());
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
  assert.deepEqual(toServerSettings(settings, vars), {
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
    from({ record: 'everything', maxNewTokens: 0, temperature: 'hot', continuousHotfixing: 'yes', enabledLanguages: 'python', contextTokens: 16.5 }),
  );
  assert.equal(settings.record, 'patterns');
  assert.equal(settings.maxNewTokens, 64);
  assert.equal(settings.temperature, 0);
  assert.equal(settings.contextTokens, 1536);
  assert.equal(settings.continuousHotfixing, false);
  assert.deepEqual(settings.enabledLanguages, ['python']);
  assert.deepEqual(
    problems.map((p) => p.key),
    ['continuousHotfixing', 'record', 'maxNewTokens', 'temperature', 'contextTokens', 'enabledLanguages'],
  );
  assert.match(problems[1].message, /one of patterns, all, off/);
  assert.equal(problems[2].message, 'hotfix.maxNewTokens must be an integer from 1 to 1024; using the default, 64.');
  assert.equal(problems[3].message, 'hotfix.temperature must be a number from 0 to 2; using the default, 0.');
});

test('the ranges are the server\'s: its largest values pass, one past them does not', () => {
  for (const key of LIVE_KEYS) {
    const spec = SETTINGS[key];
    if (spec.type !== 'integer' && spec.type !== 'number') continue;
    for (const ok of [spec.minimum, spec.maximum]) {
      assert.deepEqual(readSettings(from({ [key]: ok })).problems, [], `${key} ${ok}`);
    }
    const step = spec.type === 'integer' ? 1 : 0.01;
    for (const bad of [spec.minimum - step, spec.maximum + step]) {
      assert.deepEqual(readSettings(from({ [key]: bad })).problems.map((p) => p.key), [key], `${key} ${bad}`);
    }
  }
});

test('null means unset (the Settings editor clears a value that way): the default', () => {
  const { settings, problems } = readSettings(from({ maxNewTokens: null, model: null, suppressions: null }));
  assert.deepEqual(problems, []);
  assert.equal(settings.maxNewTokens, 64);
  assert.equal(settings.model, '');
  assert.deepEqual(toServerSettings(settings, vars), DEFAULTS);
});

test('paths: ~ and ${workspaceFolder} expand; hub ids and embedded names stay as they are', () => {
  assert.equal(expandPath('~/m', vars), '/home/u/m');
  assert.equal(expandPath('${workspaceFolder}/models/tiny', vars), '/ws/models/tiny');
  assert.equal(expandPath('${userHome}/x', vars), '/home/u/x');
  assert.equal(expandPath('~user/x', vars), '~user/x');
  const model = (m: string) => toServerSettings(readSettings(from({ model: m })).settings, vars).model;
  assert.equal(model('~/m.gguf'), '/home/u/m.gguf');
  assert.equal(model('Salesforce/codegen-350M-mono'), 'Salesforce/codegen-350M-mono');
  assert.equal(model('embedded:gemma3-270m'), 'embedded:gemma3-270m');
  assert.equal(model('  '), null);
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

test('activation events follow the languages served by default; * has no event of its own', () => {
  assert.deepEqual(activationEvents(), ['onLanguage:python']);
  assert.deepEqual(activationEvents(['python', 'go', '*']), ['onLanguage:python', 'onLanguage:go']);
});

test('a restart only for model, dataDir and runtime, and what the client starts and serves', () => {
  assert.deepEqual(
    [...RESTART_KEYS].sort(),
    ['dataDir', 'enabledLanguages', 'model', 'runtime', 'server.command', 'server.pythonPath'],
  );
  const affects = (changed: string) => (section: string) => section === changed;
  for (const key of RESTART_KEYS) {
    assert.ok(needsRestart(affects(`hotfix.${key}`)), key);
    assert.ok(!changesLiveSettings(affects(`hotfix.${key}`)), key);
  }
  for (const key of ['trace.server', 'completionItems', ...LIVE_KEYS]) assert.ok(!needsRestart(affects(`hotfix.${key}`)), key);
  assert.ok(!needsRestart(affects('editor.fontSize')));
  assert.ok(!changesLiveSettings(affects('hotfix.completionItems')));
  assert.ok(!changesLiveSettings(affects('hotfix.trace.server')));
});

test('every other server setting is live', () => {
  assert.deepEqual(
    [...LIVE_KEYS].sort(),
    SERVER_KEYS.filter((key) => !['model', 'runtime', 'dataDir'].includes(key)).sort(),
  );
  for (const key of LIVE_KEYS) {
    assert.ok(changesLiveSettings((section) => section === `hotfix.${key}`), key);
    assert.ok(!(RESTART_KEYS as readonly string[]).includes(key), key);
  }
});

test('the runtime: auto is left to the server (null), a bad one falls back with a message', () => {
  assert.equal(readSettings(from({ runtime: 'auto' })).settings.runtime, 'auto');
  const { settings, problems } = readSettings(from({ runtime: 'vllm' }));
  assert.equal(settings.runtime, 'auto');
  assert.deepEqual(problems.map((p) => p.key), ['runtime']);
  assert.equal(toServerSettings(settings, vars).runtime, null);
  assert.equal(toServerSettings(readSettings(from({ runtime: 'llama.cpp' })).settings, vars).runtime, 'llama.cpp');
});

test('suppressions: workspace by default and sent, everywhere or off sent, a bad value falls back', () => {
  assert.equal(toServerSettings(readSettings(from({})).settings, vars).suppressions, 'workspace');
  for (const scope of ['everywhere', 'off'] as const) {
    const { settings, problems } = readSettings(from({ suppressions: scope }));
    assert.deepEqual(problems, []);
    assert.equal(toServerSettings(settings, vars).suppressions, scope);
  }
  const { settings, problems } = readSettings(from({ suppressions: 'never' }));
  assert.equal(settings.suppressions, 'workspace');
  assert.deepEqual(problems.map((p) => p.key), ['suppressions']);
  assert.match(problems[0].message, /one of workspace, everywhere, off; using workspace/);
});

test('a live update sends every key: the live ones as they are now (removed: the default), the restart ones as the server started', () => {
  const started = toServerSettings(readSettings(from({ model: 'org/a', record: 'all', maxNewTokens: 24, suppressions: 'off' })).settings, vars);
  const sent = liveUpdate(started, readSettings(from({ model: 'org/b', record: 'off', temperature: 0.5 })).settings, vars);
  assert.deepEqual(sent, { ...DEFAULTS, model: 'org/a', record: 'off', temperature: 0.5 });
  // The options a crashed server is restarted with follow too, and are not the object sent.
  assert.deepEqual(started, sent);
  assert.notEqual(started, sent);
});

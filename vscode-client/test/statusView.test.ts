import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { lastReportPath, parseStatus, pollIntervalMs, renderStatus, shortModel, summarizeLastResult } from '../src/statusView';

const base = {
  model: 'embedded:gemma3-270m',
  modelReady: true,
  adapter: null,
  trainer: { state: 'idle', progress: null, lastResult: null },
  store: { suggestions: 4, outcomes: 1 },
};

test('parseStatus rejects what is not a status object', () => {
  assert.equal(parseStatus(null), undefined);
  assert.equal(parseStatus({ model: 'x' }), undefined);
  assert.equal(parseStatus([1]), undefined);
});

// What hotfix_server's runtime.status() answers (snake_case trainer file, null model while the default loads).
const SERVER_ANSWER = {
  model: null,
  modelKey: null,
  modelReady: false,
  modelError: null,
  adapter: null,
  record: 'patterns',
  dataDir: '/data',
  store: { suggestions: 0, outcomes: 0, accepted: 0 },
  storeError: null,
  trainer: { state: 'idle', progress: null, message: 'no improvement', pid: null, started: null, last_result: null },
  trainerRunning: false,
  continuousHotfixing: false,
};

test('the server\'s real answer: loading the default model', () => {
  const s = parseStatus(SERVER_ANSWER)!;
  assert.equal(s.model, 'default model');
  assert.equal(renderStatus('running', s).text, '$(loading~spin) default model · loading');
  assert.match(renderStatus('running', s).tooltip, /Continuous hotfixing: off/);
});

test('a model that failed to load is an error, polled slowly', () => {
  const s = parseStatus({ ...SERVER_ANSWER, model: '/m/tiny', modelError: 'no model at /m/tiny' })!;
  const view = renderStatus('running', s);
  assert.equal(view.text, '$(error) tiny · not loaded');
  assert.equal(view.severity, 'error');
  assert.match(view.tooltip, /Model error: no model at \/m\/tiny/);
  assert.equal(pollIntervalMs(s), 15000);
});

test('last_result from the trainer file, and the manifest that holds its evaluation', () => {
  const s = parseStatus({
    ...SERVER_ANSWER,
    model: '/m/tiny',
    modelKey: 'tiny-abc',
    modelReady: true,
    adapter: 'v0001',
    trainer: { ...SERVER_ANSWER.trainer, last_result: { version: 'v0001', published: true, current: true, reason: 'fixed rate up' } },
  })!;
  assert.match(renderStatus('running', s).tooltip, /Last training: v0001 published: fixed rate up/);
  assert.equal(lastReportPath(s, path.posix.join), '/data/adapters/tiny-abc/v0001/manifest.json');
  assert.equal(lastReportPath(parseStatus(SERVER_ANSWER)!, path.posix.join), undefined);
});

test('a running step shows the trainer message; a failed run shows why', () => {
  const running = parseStatus({ ...SERVER_ANSWER, modelReady: true, model: 'm', trainer: { state: 'evaluating', progress: null, message: 'measuring the new version' } })!;
  assert.match(renderStatus('running', running).tooltip, /Trainer: evaluating \(measuring the new version\)/);
  const failed = parseStatus({ ...SERVER_ANSWER, modelReady: true, model: 'm', trainer: { state: 'failed', message: 'out of memory' } })!;
  assert.match(renderStatus('running', failed).tooltip, /Trainer: failed \(out of memory\)/);
});

test('a trainer process that has not written its state yet already counts as training', () => {
  const s = parseStatus({ ...SERVER_ANSWER, modelReady: true, model: '/m/tiny', adapter: 'v0001', trainerRunning: true })!;
  assert.equal(renderStatus('running', s).text, '$(sync~spin) tiny · v0001 · training');
  assert.equal(pollIntervalMs(s), 2000);
});

test('a store error is a warning', () => {
  const s = parseStatus({ ...SERVER_ANSWER, modelReady: true, model: 'm', storeError: 'database is locked' })!;
  assert.equal(renderStatus('running', s).severity, 'warning');
});

test('ready on the base model: model and "base"', () => {
  const view = renderStatus('running', parseStatus(base));
  assert.equal(view.text, '$(sparkle) gemma3-270m · base');
  assert.match(view.tooltip, /Adapter: none \(base model\)/);
  assert.match(view.tooltip, /Store: 4 suggestions, 1 outcomes/);
  assert.equal(view.severity, 'normal');
});

test('adapter version, as a string or an object', () => {
  assert.equal(renderStatus('running', parseStatus({ ...base, adapter: 'v0007' })).text, '$(sparkle) gemma3-270m · v0007');
  assert.equal(parseStatus({ ...base, adapter: { version: 'v0008', path: '/a' } })!.adapter, 'v0008');
});

test('training shows state and percent, from a fraction or a percentage', () => {
  const s = parseStatus({ ...base, adapter: 'v0001', trainer: { state: 'training', progress: 0.425, lastResult: null } });
  assert.equal(renderStatus('running', s).text, '$(sync~spin) gemma3-270m · v0001 · training 43%');
  const p = parseStatus({ ...base, trainer: { state: 'evaluating', progress: { percentage: 80, message: 'held-out pairs' } } });
  assert.equal(renderStatus('running', p).text, '$(sync~spin) gemma3-270m · base · evaluating 80%');
  assert.match(renderStatus('running', p).tooltip, /Trainer: evaluating 80% \(held-out pairs\)/);
  assert.equal(pollIntervalMs(s), 2000);
});

test('loading, starting, failed', () => {
  assert.equal(renderStatus('running', parseStatus({ ...base, modelReady: false })).text, '$(loading~spin) gemma3-270m · loading');
  assert.equal(renderStatus('starting', undefined).text, '$(loading~spin) hotfix');
  const failed = renderStatus('failed', undefined, 'python3 not found');
  assert.equal(failed.severity, 'error');
  assert.match(failed.tooltip, /python3 not found/);
});

test('a server-side error is a warning', () => {
  const view = renderStatus('running', parseStatus({ ...base, error: 'store is read-only' }));
  assert.equal(view.severity, 'warning');
  assert.match(view.tooltip, /Error: store is read-only/);
});

test('idle and ready polls slowly', () => {
  assert.equal(pollIntervalMs(parseStatus(base)), 15000);
  assert.equal(pollIntervalMs(undefined), 2000);
});

test('shortModel: folder name, file stem, embedded name', () => {
  assert.equal(shortModel('/tmp/models/tiny/'), 'tiny');
  assert.equal(shortModel('/m/gemma.Q4.gguf'), 'gemma.Q4');
  assert.equal(shortModel('Salesforce/codegen-350M-mono'), 'codegen-350M-mono');
});

test('summarizeLastResult reads the common shapes', () => {
  assert.equal(summarizeLastResult(null), undefined);
  assert.equal(summarizeLastResult({ version: 'v0003', published: true }), 'v0003 published');
  assert.equal(
    summarizeLastResult({ version: 'v0004', published: false, reason: 'fixed rate did not improve' }),
    'v0004 not published: fixed rate did not improve',
  );
  assert.equal(summarizeLastResult('cancelled'), 'cancelled');
  assert.equal(summarizeLastResult({ state: 'failed' }), 'failed');
});

test('the tooltip names the runtime once the model is loaded', () => {
  const ready = parseStatus({ ...SERVER_ANSWER, model: 'embedded:gemma3-270m', modelReady: true, runtime: 'llama.cpp' })!;
  assert.match(renderStatus('running', ready).tooltip, /^Model: embedded:gemma3-270m\nRuntime: llama\.cpp\nAdapter: /);
  const loading = parseStatus({ ...SERVER_ANSWER, runtime: null })!;
  assert.doesNotMatch(renderStatus('running', loading).tooltip, /Runtime:/);
});

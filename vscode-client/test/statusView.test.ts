import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseStatus, pollIntervalMs, renderStatus, shortModel, summarizeLastResult } from '../src/statusView';

const base = {
  model: 'embedded:gemma3-270m',
  modelReady: true,
  adapter: null,
  trainer: { state: 'idle', progress: null, lastResult: null },
  store: { suggestions: 4, outcomes: 1 },
};

test('parseStatus rejects what is not a status object', () => {
  assert.equal(parseStatus(null), undefined);
  assert.equal(parseStatus({ modelReady: true }), undefined);
  assert.equal(parseStatus([1]), undefined);
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

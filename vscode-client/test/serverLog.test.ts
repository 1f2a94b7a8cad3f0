import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stderrLevel } from '../src/serverLog';

test('logging lines keep their level', () => {
  assert.equal(stderrLevel('2026-11-25 19:37:28,004 INFO hotfix_engine.models: loaded x'), 'info');
  assert.equal(stderrLevel('2026-11-25 19:37:28,004 WARNING hotfix_server: slow'), 'warn');
  assert.equal(stderrLevel('2026-11-25 19:37:28,004 ERROR hotfix_server: boom'), 'error');
});

test('tracebacks and CLI errors are errors; library warnings are warnings; progress bars are info', () => {
  assert.equal(stderrLevel('Traceback (most recent call last):'), 'error');
  assert.equal(stderrLevel('  File "/x/server.py", line 80, in __init__'), 'error');
  assert.equal(stderrLevel("AttributeError: 'method' object has no attribute 'reg_name'"), 'error');
  assert.equal(stderrLevel('hotfix_engine.errors.ModelError: no model'), 'error');
  assert.equal(stderrLevel('hotfix: error: bad'), 'error');
  assert.equal(stderrLevel('/x/modeling_utils.py:3312: FutureWarning: deprecated'), 'warn');
  assert.equal(stderrLevel('Loading weights: 100%|██████████| 21/21'), 'info');
});

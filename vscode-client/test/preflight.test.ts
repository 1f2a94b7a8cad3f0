import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runProcess, Tail } from '../src/preflight';

test('a program that does not exist is a spawn error, not a crash', async () => {
  const r = await runProcess('/nonexistent/python3', ['-c', 'pass']);
  assert.equal(r.spawnError, 'ENOENT');
});

test('exit code and stderr come back', async () => {
  const r = await runProcess('sh', ['-c', 'echo "No module named hotfix_server" >&2; exit 1']);
  assert.equal(r.exitCode, 1);
  assert.match(r.stderr, /No module named hotfix_server/);
});

test('a hung interpreter is stopped at the timeout', async () => {
  const r = await runProcess('sh', ['-c', 'sleep 5'], { timeoutMs: 200 });
  assert.equal(r.exitCode, null);
  assert.match(r.stderr, /did not answer within 200 ms/);
});

test('Tail keeps the end', () => {
  const t = new Tail(5);
  t.push('abcdef');
  t.push('gh');
  assert.equal(String(t), 'defgh');
});

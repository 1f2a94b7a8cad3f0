import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeCommand, resolveServerCommand } from '../src/serverCommand';

test('an explicit command wins over every interpreter', () => {
  const c = resolveServerCommand({ command: ['hotfix', 'serve', '--stdio'], pythonPath: '/py', pythonExtension: '/ext/py' });
  assert.deepEqual(c, { program: 'hotfix', args: ['serve', '--stdio'], python: undefined, source: 'hotfix.server.command' });
});

test('then hotfix.server.pythonPath, then the Python extension, then python3', () => {
  const base = { command: [] as string[] };
  assert.equal(resolveServerCommand({ ...base, pythonPath: '/py', pythonExtension: '/ext/py' }).program, '/py');
  const ext = resolveServerCommand({ ...base, pythonPath: '', pythonExtension: '/ext/py' });
  assert.equal(ext.program, '/ext/py');
  assert.equal(ext.source, 'python extension');
  const def = resolveServerCommand({ ...base, pythonPath: '', pythonExtension: undefined });
  assert.deepEqual(def, { program: 'python3', args: ['-m', 'hotfix_server', '--stdio'], python: 'python3', source: 'default' });
});

test('describeCommand quotes what a shell would split', () => {
  const c = resolveServerCommand({ command: [], pythonPath: '/My Envs/py', pythonExtension: undefined });
  assert.equal(describeCommand(c), "'/My Envs/py' -m hotfix_server --stdio");
});

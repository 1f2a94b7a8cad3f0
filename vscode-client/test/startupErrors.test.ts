import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diagnose, lastErrorLine, missingModel } from '../src/startupErrors';
import { resolveServerCommand } from '../src/serverCommand';

const py = resolveServerCommand({ command: [], pythonPath: '/venv/bin/python', pythonExtension: undefined });
const custom = resolveServerCommand({ command: ['hotfix', 'serve', '--stdio'], pythonPath: '', pythonExtension: undefined });

test('interpreter not found: names it, where it came from, and the setting to fix', () => {
  const d = diagnose({ command: py, spawnError: 'ENOENT', stderr: '', pythonExtension: true });
  assert.equal(
    d.message,
    'hotfix: the Python interpreter "/venv/bin/python" (from hotfix.server.pythonPath) was not found. Point hotfix.server.pythonPath at the Python where hotfix is installed.',
  );
  assert.deepEqual(
    d.actions.map((a) => a.kind),
    ['selectInterpreter', 'openSettings', 'openLog'],
  );
});

test('custom command not found points at hotfix.server.command', () => {
  const d = diagnose({ command: custom, spawnError: 'ENOENT', stderr: '', pythonExtension: false });
  assert.match(d.message, /the server command "hotfix"/);
  assert.deepEqual(d.actions[0], { kind: 'openSettings', title: 'Open Settings', setting: 'hotfix.server.command' });
});

test('hotfix not installed: the pip command for that interpreter, ready to copy', () => {
  const d = diagnose({ command: py, exitCode: 1, stderr: '/venv/bin/python: No module named hotfix_server\n', pythonExtension: false });
  assert.match(d.message, /^hotfix is not installed for \/venv\/bin\/python \(from hotfix.server.pythonPath\)\. Install it with: \/venv\/bin\/python -m pip install -e '<path to your hotfix checkout>'$/);
  assert.deepEqual(d.actions[0], { kind: 'copy', title: 'Copy Install Command', text: "/venv/bin/python -m pip install -e '<path to your hotfix checkout>'" });
});

test('a missing dependency is named', () => {
  const stderr = 'Traceback (most recent call last):\n  File "x", line 1\nModuleNotFoundError: No module named \'pygls\'\n';
  const d = diagnose({ command: py, exitCode: 1, stderr, pythonExtension: false });
  assert.match(d.message, /dependency "pygls" is missing/);
});

test('model errors lead to hotfix.model', () => {
  const d = diagnose({
    command: py,
    exitCode: 1,
    stderr: 'loading\nhotfix: error: no model at /x/tiny (not a folder, .gguf file or Hub id)\n',
    pythonExtension: false,
  });
  assert.equal(d.message, 'hotfix: the model could not be loaded: no model at /x/tiny (not a folder, .gguf file or Hub id). Check hotfix.model.');
  assert.deepEqual(d.actions[0], { kind: 'openSettings', title: 'Open Settings', setting: 'hotfix.model' });
});

test('an old Python is named as such', () => {
  const d = diagnose({ command: py, exitCode: 1, stderr: '  File "x"\nSyntaxError: invalid syntax\n', pythonExtension: false });
  assert.match(d.message, /needs Python 3\.10 or later/);
});

test('anything else: the exit code and the last line, with restart and log', () => {
  const d = diagnose({ command: py, exitCode: 3, stderr: 'Traceback...\nhotfix_engine.errors.StoreError: database is locked\n', pythonExtension: false });
  assert.equal(d.message, 'hotfix: the server stopped (exit code 3): StoreError: database is locked.');
  assert.deepEqual(d.actions.map((a) => a.kind), ['restart', 'openLog']);
});

test('lastErrorLine prefers the CLI error line over later noise', () => {
  assert.equal(lastErrorLine('hotfix: error: bad thing\nexiting\n'), 'bad thing');
  assert.equal(lastErrorLine('\n\n'), undefined);
});

test('missingModel checks only what the caller says is a path', () => {
  assert.equal(missingModel('/there', () => true), undefined);
  assert.match(missingModel('/gone', () => false)!.message, /"\/gone", which does not exist/);
  assert.equal(missingModel(undefined, () => false), undefined);
});

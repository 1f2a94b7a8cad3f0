/**
 * The manifest (package.json) and the code agree: every setting's type, range, choices and default, every
 * command, and the activation events. The server's settings (server/hotfix_server/config.py) are checked
 * too, when the repository is there: package.json's defaults and ranges are the server's.
 */
import './mocks/install';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { activationEvents, readSettings, SERVER_KEYS, SETTINGS, SettingKey, SettingSpec } from '../src/settings';
import { COMMANDS } from '../src/controller';

const CLIENT = path.join(__dirname, '..', '..');
const manifest = JSON.parse(fs.readFileSync(path.join(CLIENT, 'package.json'), 'utf8'));
const props: Record<string, Record<string, unknown>> = manifest.contributes.configuration.properties;
const from = (values: Record<string, unknown>) => (key: string) => values[key];

/** What package.json should say for a setting, from its spec. */
function declared(spec: SettingSpec): Record<string, unknown> {
  switch (spec.type) {
    case 'string':
    case 'boolean':
      return { type: spec.type, default: spec.default };
    case 'integer':
    case 'number':
      return { type: spec.type, default: spec.default, minimum: spec.minimum, maximum: spec.maximum };
    case 'enum':
      return { type: 'string', enum: [...spec.values], default: spec.default };
    case 'strings':
      return { type: 'array', items: { type: 'string' }, default: [...spec.default] };
  }
}

test('package.json declares every setting as the settings module reads it, and no other', () => {
  const keys = Object.keys(SETTINGS) as SettingKey[];
  assert.deepEqual(Object.keys(props), keys.map((key) => `hotfix.${key}`));
  for (const key of keys) {
    const spec: SettingSpec = SETTINGS[key];
    const prop = props[`hotfix.${key}`];
    const want = declared(spec);
    const got = Object.fromEntries(Object.keys(want).map((k) => [k, prop[k]]));
    assert.deepEqual(got, want, key);
    for (const k of ['minimum', 'maximum', 'enum']) if (!(k in want)) assert.equal(prop[k], undefined, `${key}.${k}`);
    if (spec.type === 'enum') assert.equal((prop.enumDescriptions as string[]).length, spec.values.length, key);
    assert.equal(typeof prop.markdownDescription, 'string', key);
  }
  // Read with nothing set, the settings are package.json's defaults.
  const defaults = readSettings(from({})).settings as unknown as Record<string, unknown>;
  const field = (key: string) => ({ 'server.command': 'serverCommand', 'server.pythonPath': 'pythonPath' })[key] ?? key;
  for (const key of keys) if (key !== 'trace.server') assert.deepEqual(defaults[field(key)], props[`hotfix.${key}`].default, key);
});

test('package.json contributes every command, and Show Suppressed Suggestions is in the palette', () => {
  const contributed = manifest.contributes.commands.map((c: { command: string }) => c.command);
  for (const id of Object.values(COMMANDS)) assert.ok(contributed.includes(id), id);
  const hidden = manifest.contributes.menus.commandPalette.filter((m: { when: string }) => m.when === 'false');
  assert.ok(!hidden.some((m: { command: string }) => m.command === COMMANDS.showSuppressions));
  assert.equal(
    manifest.contributes.commands.find((c: { command: string }) => c.command === COMMANDS.showSuppressions).title,
    'Show Suppressed Suggestions',
  );
});

test('the extension activates on the languages it serves by default and on its commands, not at start-up', () => {
  const events: string[] = manifest.activationEvents;
  assert.deepEqual(events, activationEvents(props['hotfix.enabledLanguages'].default as string[]));
  assert.ok(events.includes('onLanguage:python'));
  for (const eager of ['*', 'onStartupFinished']) assert.ok(!events.includes(eager), eager);
  // VS Code 1.74 and later activate an extension for the commands it contributes (checked above), so the
  // manifest lists no onCommand events; the engine this extension needs is past that.
  const engine = /^\^?(\d+)\.(\d+)\./.exec(manifest.engines.vscode);
  assert.ok(engine, manifest.engines.vscode);
  assert.ok(Number(engine[1]) > 1 || Number(engine[2]) >= 74, manifest.engines.vscode);
  assert.deepEqual(events.filter((e) => e.startsWith('onCommand:')), []);
});

const CONFIG_PY = path.join(CLIENT, '..', 'server', 'hotfix_server', 'config.py');
// Choices the server's settings take from the engine (config.py imports RECORD_MODES from the store).
const STORE_PY = path.join(CLIENT, '..', 'hotfix_engine', 'store.py');

test('package.json\'s server settings have the server\'s defaults, ranges and choices', { skip: !fs.existsSync(CONFIG_PY) && 'no server/hotfix_server/config.py' }, () => {
  const source = fs.readFileSync(CONFIG_PY, 'utf8');
  const python = (literal: string): unknown => {
    const v = literal.trim();
    if (v === 'None') return null;
    if (v === 'True' || v === 'False') return v === 'True';
    if (/^["'].*["']$/.test(v)) return v.slice(1, -1);
    return Number(v);
  };
  const defaults = new Map<string, unknown>();
  for (const m of source.matchAll(/field\(\s*default=([^,]+?),\s*metadata=_wire\("(\w+)"\)\s*\)/g)) defaults.set(m[2], python(m[1]));
  assert.deepEqual([...defaults.keys()].sort(), [...SERVER_KEYS].sort(), 'the server fields with a default');
  const ranges = new Map<string, [number, number]>();
  for (const m of source.matchAll(/_check_range\(\s*"(\w+)",\s*self\.\w+,\s*([\d.]+),\s*([\d.]+)\s*\)/g)) ranges.set(m[1], [Number(m[2]), Number(m[3])]);
  const choices = new Map<string, string[]>();
  const tuples: Record<string, string> = { RECORD_MODES: 'record', RUNTIMES: 'runtime', SUPPRESSION_SCOPES: 'suppressions' };
  const constants = source + '\n' + fs.readFileSync(STORE_PY, 'utf8');
  for (const m of constants.matchAll(/^(\w+) = \(([^)]*)\)/gm)) {
    if (tuples[m[1]]) choices.set(tuples[m[1]], [...m[2].matchAll(/"([^"]*)"/g)].map((x) => x[1]));
  }
  for (const key of SERVER_KEYS) {
    const spec: SettingSpec = SETTINGS[key];
    // The server's "not set" (None) is the client's empty string, sent as null.
    assert.deepEqual(spec.default === '' ? null : spec.default, defaults.get(key), `${key}: default`);
    if (spec.type === 'integer' || spec.type === 'number') {
      assert.deepEqual([spec.minimum, spec.maximum], ranges.get(key), `${key}: range`);
    } else {
      assert.equal(ranges.get(key), undefined, key);
    }
    if (spec.type === 'enum') assert.deepEqual([...spec.values], choices.get(key), `${key}: choices`);
  }
  assert.deepEqual([...ranges.keys()].sort(), SERVER_KEYS.filter((k) => ['integer', 'number'].includes(SETTINGS[k].type)).sort());
});

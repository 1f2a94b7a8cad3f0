/** The manifest (package.json) and the code agree: every setting's choices and default, every command. */
import './mocks/install';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { COMPLETION_ITEM_MODES, readSettings, RECORD_MODES, RUNTIMES, SUPPRESSION_SCOPES } from '../src/settings';
import { COMMANDS } from '../src/controller';

const from = (values: Record<string, unknown>) => (key: string) => values[key];

test('package.json declares what the settings module reads: enums, defaults, and every command', () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8'));
  const props = manifest.contributes.configuration.properties;
  const enums: [string, readonly string[]][] = [
    ['record', RECORD_MODES],
    ['runtime', RUNTIMES],
    ['completionItems', COMPLETION_ITEM_MODES],
    ['suppressions', SUPPRESSION_SCOPES],
  ];
  const defaults = readSettings(from({})).settings as unknown as Record<string, unknown>;
  for (const [key, values] of enums) {
    assert.deepEqual(props[`hotfix.${key}`].enum, [...values], key);
    assert.equal(props[`hotfix.${key}`].enumDescriptions.length, values.length, key);
    assert.equal(props[`hotfix.${key}`].default, defaults[key], key);
  }
  const contributed = manifest.contributes.commands.map((c: { command: string }) => c.command);
  for (const id of Object.values(COMMANDS)) assert.ok(contributed.includes(id), id);
  const hidden = manifest.contributes.menus.commandPalette.filter((m: { when: string }) => m.when === 'false');
  assert.ok(!hidden.some((m: { command: string }) => m.command === COMMANDS.showSuppressions));
  assert.equal(
    manifest.contributes.commands.find((c: { command: string }) => c.command === COMMANDS.showSuppressions).title,
    'Show Suppressed Suggestions',
  );
});

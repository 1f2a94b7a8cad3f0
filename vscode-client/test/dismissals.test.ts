import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShownSuggestions, suggestionId, wantsCompletionItems } from '../src/dismissals';

test('suggestionId reads only our accept command', () => {
  assert.equal(suggestionId({ command: 'hotfix.accept', arguments: ['abc'] }), 'abc');
  assert.equal(suggestionId({ command: 'other.accept', arguments: ['abc'] }), undefined);
  assert.equal(suggestionId({ command: 'hotfix.accept', arguments: [] }), undefined);
  assert.equal(suggestionId(undefined), undefined);
});

test('a dismissal takes the first shown item once', () => {
  const s = new ShownSuggestions();
  s.record('file:///a.py', 2, ['x', 'y'], 1000);
  assert.equal(s.takeDismissed('file:///a.py', 2, 1500), 'x');
  assert.equal(s.takeDismissed('file:///a.py', 2, 1600), undefined);
});

test('no dismissal for another line, another file, an old suggestion, or an accepted one', () => {
  const s = new ShownSuggestions(10_000);
  s.record('file:///a.py', 2, ['x'], 0);
  assert.equal(s.takeDismissed('file:///b.py', 2, 1), undefined);
  assert.equal(s.takeDismissed('file:///a.py', 3, 1), undefined);
  s.record('file:///a.py', 2, ['x'], 0);
  assert.equal(s.takeDismissed('file:///a.py', 2, 20_000), undefined);
  s.record('file:///a.py', 2, ['x'], 0);
  s.accepted('x');
  assert.equal(s.takeDismissed('file:///a.py', 2, 1), undefined);
});

test('an empty answer replaces what was shown before', () => {
  const s = new ShownSuggestions();
  s.record('file:///a.py', 2, ['x'], 0);
  s.record('file:///a.py', 2, [], 1);
  assert.equal(s.takeDismissed('file:///a.py', 2, 2), undefined);
});

test('classic completion items: invoke by default, always, or off', () => {
  assert.equal(wantsCompletionItems('invoke', true), true);
  assert.equal(wantsCompletionItems('invoke', false), false);
  assert.equal(wantsCompletionItems('always', false), true);
  assert.equal(wantsCompletionItems('off', true), false);
});

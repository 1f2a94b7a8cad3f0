import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { Debouncer } from '../src/debounce';

test('a burst of triggers runs the action once, after the quiet period', () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    let runs = 0;
    const d = new Debouncer(() => (runs += 1), 500);
    d.trigger();
    mock.timers.tick(300);
    d.trigger();
    mock.timers.tick(300);
    assert.equal(runs, 0);
    assert.ok(d.pending);
    mock.timers.tick(200);
    assert.equal(runs, 1);
    assert.ok(!d.pending);
  } finally {
    mock.timers.reset();
  }
});

test('cancel drops a pending run', () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    let runs = 0;
    const d = new Debouncer(() => (runs += 1), 100);
    d.trigger();
    d.cancel();
    mock.timers.tick(1000);
    assert.equal(runs, 0);
  } finally {
    mock.timers.reset();
  }
});

/**
 * The level at which a line of the server's stderr goes into the log. Python's logging writes
 * everything to stderr, so treating stderr as errors (the client's default) would paint every INFO red.
 */

export type LineLevel = 'error' | 'warn' | 'info';

// "2026-11-25 19:37:28,004 INFO hotfix_engine.models: ..." (the server's logging format)
const LOGGING_LEVEL = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (\w+) /;

export function stderrLevel(line: string): LineLevel {
  const m = LOGGING_LEVEL.exec(line);
  if (m) {
    if (m[1] === 'ERROR' || m[1] === 'CRITICAL') return 'error';
    if (m[1] === 'WARNING') return 'warn';
    return 'info';
  }
  if (/^Traceback \(most recent call last\)|^\s+File "|^([A-Za-z_]\w*\.)*[A-Za-z_]\w*(Error|Exception):|^hotfix: error:/.test(line)) {
    return 'error';
  }
  if (/Warning\b/.test(line)) return 'warn';
  return 'info';
}

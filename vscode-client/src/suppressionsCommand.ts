/**
 * **Hotfix: Show Suppressed Suggestions**: lists what the server suppresses (suggestions the user
 * rejected, not suggested again at the same place until an adapter learns them) and removes the ones
 * the user picks, or all of them. The server's side is `workspace/executeCommand hotfix.suppressions`
 * with `list`, `remove ID...` or `clear`.
 */
import * as vscode from 'vscode';
import type { SuppressionScope } from './settings';

export const SUPPRESSIONS_COMMAND = 'hotfix.suppressions';

export type SuppressionReason = 'dismissed' | 'diverged' | 'edited';

/** One entry of the server's `{"suppressions": [...]}`. */
export interface Suppression {
  readonly id: string;
  /** Unix seconds. */
  readonly created: number;
  readonly workspace: string;
  /** The last non-blank line above the suggestion. */
  readonly context: string;
  /** The line as it was suggested. */
  readonly line: string;
  /** The rejected statement. */
  readonly statement: string;
  /** The user's fix, suggested there instead; null when they only rejected it. */
  readonly fix: string | null;
  readonly reason: string;
  /** The adapter version that learnt it (from then on the adapter carries the lesson), or null. */
  readonly learnedBy: string | null;
}

/** How the editor reaches the server: undefined when it could not (the caller has said why). */
export type SuppressionsRequest = (args: string[]) => Promise<unknown>;

export interface ShowSuppressionsOptions {
  readonly request: SuppressionsRequest;
  /** `hotfix.suppressions`, so that an empty list under `off` says why. */
  readonly scope: SuppressionScope;
  readonly log?: { warn(message: string): void };
  /** For tests: the clock, in milliseconds. */
  readonly now?: () => number;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const strOrNull = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);

/** The server's list answer, or undefined when it is not one (an older or broken server). */
export function parseSuppressions(result: unknown): Suppression[] | undefined {
  if (typeof result !== 'object' || result === null) return undefined;
  const list = (result as { suppressions?: unknown }).suppressions;
  if (!Array.isArray(list)) return undefined;
  const out: Suppression[] = [];
  for (const raw of list) {
    if (typeof raw !== 'object' || raw === null) continue;
    const r = raw as Record<string, unknown>;
    const id = str(r.id);
    if (!id) continue;
    out.push({
      id,
      created: typeof r.created === 'number' && Number.isFinite(r.created) ? r.created : 0,
      workspace: str(r.workspace) ?? '',
      context: str(r.context) ?? '',
      line: str(r.line) ?? '',
      statement: str(r.statement) ?? '',
      fix: strOrNull(r.fix),
      reason: str(r.reason) ?? '',
      learnedBy: strOrNull(r.learnedBy),
    });
  }
  return out;
}

/** `{"removed": n}` from remove and clear; undefined when the answer is something else. */
export function parseRemoved(result: unknown): number | undefined {
  if (typeof result !== 'object' || result === null) return undefined;
  const n = (result as { removed?: unknown }).removed;
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 ? n : undefined;
}

/** Code on one line, as a QuickPick shows it: whitespace runs become one space, long text is cut. */
export function oneLine(code: string, max = 80): string {
  const flat = code.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

const REASONS: Record<string, string> = {
  dismissed: 'dismissed',
  diverged: 'typed over',
  edited: 'edited after accepting',
};

/** "just now", "5 minutes ago", "3 hours ago", "2 days ago", then the date. */
export function ago(createdSeconds: number, nowMs: number): string {
  if (!createdSeconds) return 'at an unknown time';
  const s = Math.max(0, Math.round(nowMs / 1000 - createdSeconds));
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'} ago`;
  if (s < 60) return 'just now';
  if (s < 3600) return plural(Math.floor(s / 60), 'minute');
  if (s < 86_400) return plural(Math.floor(s / 3600), 'hour');
  if (s < 30 * 86_400) return plural(Math.floor(s / 86_400), 'day');
  return `on ${new Date(createdSeconds * 1000).toISOString().slice(0, 10)}`;
}

export interface SuppressionItem extends vscode.QuickPickItem {
  readonly suppression?: Suppression;
  readonly clearAll?: true;
}

/** One QuickPick row: the statement; the fix or why it was rejected; the line above and when. */
export function toItem(s: Suppression, nowMs: number, showWorkspace: boolean): SuppressionItem {
  const label = oneLine(s.statement || s.line) || '(an empty line)';
  const why = s.fix !== null ? `fixed to ${oneLine(s.fix, 60)}` : (REASONS[s.reason] ?? s.reason);
  const learnt = s.learnedBy ? ` · learnt by adapter ${s.learnedBy}` : '';
  const above = s.context ? `below ${oneLine(s.context, 60)}` : 'at the top of the file';
  const where = showWorkspace && s.workspace ? ` · in ${baseName(s.workspace)}` : '';
  return { label, description: why + learnt, detail: `${above} · ${ago(s.created, nowMs)}${where}`, suppression: s };
}

function baseName(folder: string): string {
  const parts = folder.replace(/[\\/]+$/, '').split(/[\\/]/);
  return parts[parts.length - 1] || folder;
}

function count(n: number): string {
  return `${n} suppressed suggestion${n === 1 ? '' : 's'}`;
}

/** The message after a removal: how many, and which (a few of them). */
export function removedMessage(removed: number, picked: readonly Suppression[]): string {
  if (removed === 0) return 'hotfix: nothing was removed; those suggestions were no longer suppressed.';
  const names = picked.slice(0, 3).map((s) => `\`${oneLine(s.statement || s.line, 40)}\``);
  const more = picked.length > 3 ? ` and ${picked.length - 3} more` : '';
  const missing = removed < picked.length ? ` (${picked.length - removed} of those picked were already gone)` : '';
  return `hotfix: removed ${count(removed)}: ${names.join(', ')}${more}${missing}. They can be suggested again.`;
}

export function emptyMessage(scope: SuppressionScope): string {
  if (scope === 'off') {
    return 'hotfix: no suggestions are suppressed, and none will be: hotfix.suppressions is off, so a rejected suggestion is suggested again until training learns from it.';
  }
  return (
    'hotfix: no suggestions are suppressed. When you dismiss a suggestion (Escape) or type something else over it, ' +
    'hotfix does not suggest it again at the same place; when you accept one and then fix it, your fix is suggested there instead.'
  );
}

export async function showSuppressions(o: ShowSuppressionsOptions): Promise<void> {
  const answer = await o.request(['list']);
  if (answer === undefined) return;
  const list = parseSuppressions(answer);
  if (list === undefined) {
    o.log?.warn(`${SUPPRESSIONS_COMMAND} list answered ${JSON.stringify(answer)}`);
    void vscode.window.showErrorMessage('hotfix: the server did not answer with a list of suppressions; is it an older version?');
    return;
  }
  if (list.length === 0) {
    void vscode.window.showInformationMessage(emptyMessage(o.scope));
    return;
  }
  const now = (o.now ?? Date.now)();
  const workspaces = new Set(list.map((s) => s.workspace));
  const rows = [...list].sort((a, b) => b.created - a.created).map((s) => toItem(s, now, workspaces.size > 1));
  const items: SuppressionItem[] = [
    { label: '$(clear-all) Clear all', description: `remove all ${count(list.length)}`, clearAll: true },
    { label: '', kind: vscode.QuickPickItemKind.Separator },
    ...rows,
  ];
  const off = o.scope === 'off' ? ' (hotfix.suppressions is off: none of them applies)' : '';
  const picked = await vscode.window.showQuickPick(items, {
    title: `Hotfix: ${count(list.length)}${off}`,
    placeHolder: 'Check the ones to suggest again, or Clear all, then press Enter',
    canPickMany: true,
    matchOnDescription: true,
    matchOnDetail: true,
    ignoreFocusOut: true,
  });
  if (!picked || picked.length === 0) return;

  // Removal answers {"removed": n}; undefined when the request failed (already reported) or said something else.
  const remove = async (args: string[]): Promise<number | undefined> => {
    const result = await o.request(args);
    const removed = parseRemoved(result);
    if (result !== undefined && removed === undefined) {
      o.log?.warn(`${SUPPRESSIONS_COMMAND} ${args[0]} answered ${JSON.stringify(result)}`);
      void vscode.window.showErrorMessage(`hotfix: the server did not say what it removed; run the command again to see what is left.`);
    }
    return removed;
  };

  if (picked.some((i) => i.clearAll)) {
    const removed = await remove(['clear']);
    if (removed !== undefined) {
      void vscode.window.showInformationMessage(
        removed === 0 ? 'hotfix: there was nothing left to clear.' : `hotfix: cleared all ${count(removed)}. They can be suggested again.`,
      );
    }
    return;
  }
  const chosen = picked.flatMap((i) => (i.suppression ? [i.suppression] : []));
  if (chosen.length === 0) return;
  const removed = await remove(['remove', ...chosen.map((s) => s.id)]);
  if (removed !== undefined) void vscode.window.showInformationMessage(removedMessage(removed, chosen));
}

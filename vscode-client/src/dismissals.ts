/**
 * Remembers which suggestions were last handed to the editor, so that an explicit dismissal (Escape while
 * the ghost text is visible) can be reported as `hotfix.reject [id]`.
 *
 * Why this exists: VS Code 1.100's stable API tells an inline provider nothing after it returns items
 * (`handleDidShowCompletionItem`, `handleDidPartiallyAcceptCompletionItem` and rejection events belong to
 * the proposed `inlineCompletionsAdditions` API, which installed extensions cannot use). Acceptance still
 * arrives through each item's `hotfix.accept` command, and the server infers partial accepts, superseded
 * and diverged suggestions from `didChange`; only "the user pressed Escape" is invisible to it.
 */

export const ACCEPT_COMMAND = 'hotfix.accept';
export const REJECT_COMMAND = 'hotfix.reject';

interface Shown {
  readonly uri: string;
  readonly line: number;
  readonly ids: readonly string[];
  readonly at: number;
}

/** A command as it sits on a completion item (`vscode.Command` or LSP `Command`). */
export interface ItemCommand {
  readonly command: string;
  readonly arguments?: readonly unknown[];
}

/** The suggestion id the server put on an item, if the item is ours. */
export function suggestionId(command: ItemCommand | undefined): string | undefined {
  if (!command || command.command !== ACCEPT_COMMAND) return undefined;
  const id = command.arguments?.[0];
  return typeof id === 'string' && id.length > 0 ? id : undefined;
}

export class ShownSuggestions {
  private readonly byUri = new Map<string, Shown>();

  /** Suggestions older than this are settled by the server's own inference; never reject them late. */
  constructor(private readonly maxAgeMs = 120_000) {}

  /** The editor asked again for this document: what it got last time is superseded (the server knows). */
  record(uri: string, line: number, ids: readonly string[], now: number): void {
    if (ids.length === 0) this.byUri.delete(uri);
    else this.byUri.set(uri, { uri, line, ids, at: now });
  }

  accepted(id: string): void {
    for (const [uri, shown] of this.byUri) if (shown.ids.includes(id)) this.byUri.delete(uri);
  }

  /**
   * The suggestion the user just dismissed in `uri` with the cursor on `line`, consumed so that it is
   * reported once. The editor shows the first item unless the user cycled, which the API does not reveal.
   */
  takeDismissed(uri: string, line: number, now: number): string | undefined {
    const shown = this.byUri.get(uri);
    if (!shown) return undefined;
    this.byUri.delete(uri);
    if (shown.line !== line || now - shown.at > this.maxAgeMs) return undefined;
    return shown.ids[0];
  }

  forget(uri: string): void {
    this.byUri.delete(uri);
  }

  clear(): void {
    this.byUri.clear();
  }
}

/** Classic completion items cost a model call each: by default only when the user asks (Ctrl+Space). */
export function wantsCompletionItems(mode: 'invoke' | 'always' | 'off', invokedExplicitly: boolean): boolean {
  return mode === 'always' || (mode === 'invoke' && invokedExplicitly);
}

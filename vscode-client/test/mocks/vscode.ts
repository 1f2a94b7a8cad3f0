/**
 * A small stand-in for the `vscode` module: just the surface the controller touches, recording what
 * it is asked to do so that tests can check the wiring without an editor.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';

type Listener<T> = (e: T) => void;

export class EventEmitter<T> {
  private listeners: Listener<T>[] = [];
  event = (listener: Listener<T>) => {
    this.listeners.push(listener);
    return { dispose: () => (this.listeners = this.listeners.filter((l) => l !== listener)) };
  };
  fire(e: T): void {
    for (const l of [...this.listeners]) l(e);
  }
  dispose(): void {
    this.listeners = [];
  }
}

export const LogLevel = { Off: 0, Trace: 1, Debug: 2, Info: 3, Warning: 4, Error: 5 };

export const StatusBarAlignment = { Left: 1, Right: 2 };
export const ConfigurationTarget = { Global: 1, Workspace: 2, WorkspaceFolder: 3 };
export const QuickPickItemKind = { Separator: -1, Default: 0 };
export const CompletionTriggerKind = { Invoke: 0, TriggerCharacter: 1, TriggerForIncompleteCompletions: 2 };

export class ThemeColor {
  constructor(readonly id: string) {}
}

export class Uri {
  private constructor(readonly fsPath: string) {}
  static file(path: string): Uri {
    return new Uri(path);
  }
  toString(): string {
    return `file://${this.fsPath}`;
  }
}

export interface StatusItem {
  name?: string;
  text: string;
  tooltip?: string;
  command?: string;
  backgroundColor?: ThemeColor;
  visible: boolean;
  show(): void;
  hide(): void;
  dispose(): void;
}

/** Everything the tests inspect or script, reset by `reset()`. */
export const recorded = {
  errors: [] as { message: string; items: string[] }[],
  warnings: [] as string[],
  infos: [] as string[],
  statusMessages: [] as string[],
  executed: [] as { command: string; args: unknown[] }[],
  statusItems: [] as StatusItem[],
  logLines: [] as string[],
  shownDocuments: [] as unknown[],
  /** The answer showErrorMessage gives (the title of a button), or undefined for "closed". */
  errorAnswer: undefined as string | undefined,
  /** Picks the quick pick item whose label contains this text (with canPickMany: each of these texts). */
  quickPickAnswer: undefined as string | string[] | undefined,
  /** The quick picks shown: their items and options. */
  quickPicks: [] as { items: { label: string }[]; options: { canPickMany?: boolean; title?: string } | undefined }[],
};

const commands = new Map<string, (...args: unknown[]) => unknown>();
const configChanged = new EventEmitter<{ affectsConfiguration(section: string): boolean }>();
const closedDocs = new EventEmitter<unknown>();
let settingsStore: Record<string, unknown> = {};

export function reset(settings: Record<string, unknown> = {}): void {
  recorded.errors = [];
  recorded.warnings = [];
  recorded.infos = [];
  recorded.statusMessages = [];
  recorded.executed = [];
  recorded.statusItems = [];
  recorded.logLines = [];
  recorded.shownDocuments = [];
  recorded.errorAnswer = undefined;
  recorded.quickPickAnswer = undefined;
  recorded.quickPicks = [];
  commands.clear();
  for (const k of Object.keys(installedExtensions)) delete installedExtensions[k];
  settingsStore = { ...settings };
  window.activeTextEditor = undefined;
}

/** Changes settings as the Settings editor would, firing one change event per key. */
export function setSetting(key: string, value: unknown): void {
  settingsStore[key] = value;
  configChanged.fire({ affectsConfiguration: (section) => `hotfix.${key}` === section || `hotfix.${key}`.startsWith(`${section}.`) });
}

const disposable = { dispose() {} };

export const window = {
  activeTextEditor: undefined as
    | undefined
    | { document: { uri: Uri }; selection: { active: { line: number; character: number } } },
  createOutputChannel(_name: string, _options?: unknown) {
    const line = (level: string) => (msg: string) => recorded.logLines.push(`${level} ${msg}`);
    return {
      name: _name,
      logLevel: LogLevel.Info,
      replace: line('replace'),
      clear() {},
      hide() {},
      info: line('info'),
      warn: line('warn'),
      error: line('error'),
      debug: line('debug'),
      trace: line('trace'),
      append: line('append'),
      appendLine: line('line'),
      show() {},
      dispose() {},
    };
  },
  createStatusBarItem(_id: string, _alignment: number, _priority: number): StatusItem {
    const item: StatusItem = {
      text: '',
      visible: false,
      show() {
        item.visible = true;
      },
      hide() {
        item.visible = false;
      },
      dispose() {},
    };
    recorded.statusItems.push(item);
    return item;
  },
  showErrorMessage(message: string, ...items: string[]) {
    recorded.errors.push({ message, items });
    return Promise.resolve(recorded.errorAnswer);
  },
  showWarningMessage(message: string) {
    recorded.warnings.push(message);
    return Promise.resolve(undefined);
  },
  showInformationMessage(message: string) {
    recorded.infos.push(message);
    return Promise.resolve(undefined);
  },
  setStatusBarMessage(message: string) {
    recorded.statusMessages.push(message);
    return disposable;
  },
  showQuickPick<T extends { label: string; kind?: number }>(items: T[], options?: { canPickMany?: boolean; title?: string }) {
    recorded.quickPicks.push({ items, options });
    const want = recorded.quickPickAnswer;
    if (want === undefined) return Promise.resolve(undefined);
    const wants = typeof want === 'string' ? [want] : want;
    const pickable = items.filter((i) => i.kind !== QuickPickItemKind.Separator);
    if (options?.canPickMany) return Promise.resolve(pickable.filter((i) => wants.some((w) => i.label.includes(w))));
    return Promise.resolve(pickable.find((i) => wants.some((w) => i.label.includes(w))));
  },
  showTextDocument(doc: unknown) {
    recorded.shownDocuments.push(doc);
    return Promise.resolve({});
  },
};

export const commandsApi = {
  registerCommand(id: string, fn: (...args: unknown[]) => unknown) {
    if (commands.has(id)) throw new Error(`command '${id}' already exists`);
    commands.set(id, fn);
    return { dispose: () => commands.delete(id) };
  },
  executeCommand(id: string, ...args: unknown[]) {
    recorded.executed.push({ command: id, args });
    const fn = commands.get(id);
    return Promise.resolve(fn ? fn(...args) : undefined);
  },
  registered(): string[] {
    return [...commands.keys()];
  },
};
export { commandsApi as commands };

/** The defaults package.json declares, keyed below `hotfix.`: VS Code's `get` returns them for unset keys. */
const manifestDefaults: Record<string, unknown> = Object.fromEntries(
  Object.entries(
    (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as {
      contributes: { configuration: { properties: Record<string, { default?: unknown }> } };
    }).contributes.configuration.properties,
  ).map(([key, spec]) => [key.replace(/^hotfix\./, ''), spec.default]),
);

export const workspace = {
  workspaceFolders: undefined as undefined | { uri: Uri }[],
  getConfiguration(section: string) {
    const full = (key: string) => `${section}.${key}`.replace(/^hotfix\./, '');
    const value = (key: string) => (settingsStore[full(key)] === undefined ? manifestDefaults[full(key)] : settingsStore[full(key)]);
    return {
      get: <T>(key: string, fallback?: T) => value(key) ?? fallback,
      inspect: (key: string) => ({ key, defaultValue: manifestDefaults[full(key)], globalValue: settingsStore[full(key)] }),
      update: (key: string, value: unknown) => {
        setSetting(full(key), value);
        return Promise.resolve();
      },
    };
  },
  onDidChangeConfiguration: configChanged.event,
  onDidCloseTextDocument: closedDocs.event,
  openTextDocument(options: unknown) {
    return Promise.resolve({ options });
  },
};

/** Set by a test to stand in for the Python extension (`ms-python.python`). */
export const installedExtensions: Record<string, unknown> = {};

export const extensions = {
  getExtension(id: string): unknown {
    return installedExtensions[id];
  },
};

export const env = {
  clipboard: {
    text: '',
    writeText(text: string) {
      env.clipboard.text = text;
      return Promise.resolve();
    },
  },
};

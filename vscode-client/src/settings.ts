/**
 * The extension's settings (`hotfix.*`): what each one is (its type, range and default, as package.json
 * declares it; test/manifest.test.ts keeps the two, and the server's config.py, equal), what a change of
 * it needs, and their translation into what the server reads. Pure: the editor hands in a getter, so
 * tests need no VS Code.
 */

export const RECORD_MODES = ['patterns', 'all', 'off'] as const;
export type RecordMode = (typeof RECORD_MODES)[number];

export const RUNTIMES = ['auto', 'llama.cpp', 'transformers'] as const;
export type Runtime = (typeof RUNTIMES)[number];

export const SUPPRESSION_SCOPES = ['workspace', 'everywhere', 'off'] as const;
export type SuppressionScope = (typeof SUPPRESSION_SCOPES)[number];

export const COMPLETION_ITEM_MODES = ['invoke', 'always', 'off'] as const;
export type CompletionItemMode = (typeof COMPLETION_ITEM_MODES)[number];

export const TRACE_LEVELS = ['off', 'messages', 'verbose'] as const;

/**
 * One setting. `server`: the server reads it, under the same key. `change`: `restart` starts a new server
 * (it decides which model, store or process the server is, or what the client serves); `live` is applied
 * as it changes, by the running server (sent with workspace/didChangeConfiguration) or by the client.
 */
export type SettingSpec = { readonly server: boolean; readonly change: 'restart' | 'live' } & (
  | { readonly type: 'string'; readonly default: string }
  | { readonly type: 'boolean'; readonly default: boolean }
  | { readonly type: 'integer' | 'number'; readonly default: number; readonly minimum: number; readonly maximum: number }
  | { readonly type: 'enum'; readonly values: readonly string[]; readonly default: string }
  | { readonly type: 'strings'; readonly default: readonly string[] }
);

/** Every `hotfix.*` setting, keyed below `hotfix.`, in package.json's order. */
export const SETTINGS = {
  model: { type: 'string', default: '', server: true, change: 'restart' },
  runtime: { type: 'enum', values: RUNTIMES, default: 'auto', server: true, change: 'restart' },
  dataDir: { type: 'string', default: '', server: true, change: 'restart' },
  continuousHotfixing: { type: 'boolean', default: false, server: true, change: 'live' },
  record: { type: 'enum', values: RECORD_MODES, default: 'patterns', server: true, change: 'live' },
  suppressions: { type: 'enum', values: SUPPRESSION_SCOPES, default: 'workspace', server: true, change: 'live' },
  maxNewTokens: { type: 'integer', minimum: 1, maximum: 1024, default: 64, server: true, change: 'live' },
  temperature: { type: 'number', minimum: 0, maximum: 2, default: 0, server: true, change: 'live' },
  contextTokens: { type: 'integer', minimum: 16, maximum: 32768, default: 1536, server: true, change: 'live' },
  debounceMs: { type: 'integer', minimum: 0, maximum: 10000, default: 75, server: true, change: 'live' },
  predictBudgetMs: { type: 'integer', minimum: 0, maximum: 600000, default: 500, server: true, change: 'live' },
  suggestionExpirySeconds: { type: 'number', minimum: 0.1, maximum: 86400, default: 30, server: true, change: 'live' },
  editWindowSeconds: { type: 'number', minimum: 0.1, maximum: 86400, default: 60, server: true, change: 'live' },
  // The document selector is fixed when the client starts.
  enabledLanguages: { type: 'strings', default: ['python'], server: false, change: 'restart' },
  // Read at each request.
  completionItems: { type: 'enum', values: COMPLETION_ITEM_MODES, default: 'invoke', server: false, change: 'live' },
  'server.pythonPath': { type: 'string', default: '', server: false, change: 'restart' },
  'server.command': { type: 'strings', default: [], server: false, change: 'restart' },
  // The trace channel reads it at each message.
  'trace.server': { type: 'enum', values: TRACE_LEVELS, default: 'off', server: false, change: 'live' },
} as const satisfies Record<string, SettingSpec>;

export type SettingKey = keyof typeof SETTINGS;
const KEYS = Object.keys(SETTINGS) as SettingKey[];

/** Settings whose change needs a new server: the model, store and runtime it loads, and what the client starts and serves. */
export const RESTART_KEYS = KEYS.filter((key) => SETTINGS[key].change === 'restart');

/** Server settings the running server applies as they change (workspace/didChangeConfiguration). */
export const LIVE_KEYS = KEYS.filter((key) => SETTINGS[key].server && SETTINGS[key].change === 'live') as LiveKey[];

/** The keys the server reads: initializationOptions and every change carry all of them. */
export const SERVER_KEYS = KEYS.filter((key) => SETTINGS[key].server) as ServerKey[];

export interface HotfixSettings {
  readonly model: string;
  readonly runtime: Runtime;
  readonly dataDir: string;
  readonly continuousHotfixing: boolean;
  readonly record: RecordMode;
  readonly suppressions: SuppressionScope;
  readonly maxNewTokens: number;
  readonly temperature: number;
  readonly contextTokens: number;
  readonly debounceMs: number;
  readonly predictBudgetMs: number;
  readonly suggestionExpirySeconds: number;
  readonly editWindowSeconds: number;
  readonly enabledLanguages: readonly string[];
  readonly completionItems: CompletionItemMode;
  readonly serverCommand: readonly string[];
  readonly pythonPath: string;
}

/**
 * What the server reads, at start (initializationOptions) and at every change (didChangeConfiguration):
 * every key with the value in force, so that a setting the user removes reaches the server as its
 * default, not as "absent" (which the server reads as "the value at start"). null, for the three keys
 * that only change with a new server, leaves the choice to the server: its default, or its command line's.
 */
export interface ServerSettings {
  model: string | null;
  runtime: Runtime | null;
  dataDir: string | null;
  continuousHotfixing: boolean;
  record: RecordMode;
  suppressions: SuppressionScope;
  maxNewTokens: number;
  temperature: number;
  contextTokens: number;
  debounceMs: number;
  predictBudgetMs: number;
  suggestionExpirySeconds: number;
  editWindowSeconds: number;
}
export type ServerKey = keyof ServerSettings;
export type LiveKey = Exclude<ServerKey, 'model' | 'runtime' | 'dataDir'>;

/** Reads one setting below `hotfix.`; VS Code's returns the default when unset; undefined or null count as unset. */
export type SettingGetter = (key: string) => unknown;

/** A problem with one setting: the default is used instead, and the user is told once. */
export interface SettingProblem {
  readonly key: string;
  readonly message: string;
}

export interface ReadResult {
  readonly settings: HotfixSettings;
  readonly problems: readonly SettingProblem[];
}

export type PathVars = { home: string; workspaceFolder?: string };

/** Expands `~` and `${workspaceFolder}` / `${userHome}` in paths the user typed. */
export function expandPath(value: string, vars: PathVars): string {
  let out = value.trim();
  if (out === '~' || out.startsWith('~/')) {
    out = vars.home + out.slice(1);
  }
  out = out.replace(/\$\{userHome\}/g, vars.home);
  if (vars.workspaceFolder !== undefined) {
    out = out.replace(/\$\{workspaceFolder\}/g, vars.workspaceFolder);
  }
  return out;
}

export function readSettings(get: SettingGetter): ReadResult {
  const problems: SettingProblem[] = [];
  const shown = (v: unknown) => JSON.stringify(v);

  const str = (key: 'model' | 'dataDir' | 'server.pythonPath'): string => {
    const v = get(key);
    if (v === undefined || v === null) return SETTINGS[key].default;
    if (typeof v !== 'string') {
      problems.push({ key, message: `hotfix.${key} must be a string; ignoring it.` });
      return SETTINGS[key].default;
    }
    return v.trim();
  };
  const bool = (key: 'continuousHotfixing'): boolean => {
    const fallback = SETTINGS[key].default;
    const v = get(key);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') {
      problems.push({ key, message: `hotfix.${key} must be true or false; using ${fallback}.` });
      return fallback;
    }
    return v;
  };
  type NumberKey = { [K in SettingKey]: (typeof SETTINGS)[K]['type'] extends 'integer' | 'number' ? K : never }[SettingKey];
  const num = (key: NumberKey): number => {
    const spec = SETTINGS[key];
    const integer = spec.type === 'integer';
    const v = get(key);
    if (v === undefined || v === null) return spec.default;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < spec.minimum || v > spec.maximum || (integer && !Number.isInteger(v))) {
      const kind = integer ? 'an integer' : 'a number';
      problems.push({
        key,
        message: `hotfix.${key} must be ${kind} from ${spec.minimum} to ${spec.maximum}; using the default, ${spec.default}.`,
      });
      return spec.default;
    }
    return v;
  };
  const choice = <T extends string>(key: 'runtime' | 'record' | 'suppressions' | 'completionItems'): T => {
    const spec = SETTINGS[key];
    const fallback = spec.default as T;
    const v = get(key);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'string' || !(spec.values as readonly string[]).includes(v)) {
      problems.push({ key, message: `hotfix.${key} must be one of ${spec.values.join(', ')}; using ${fallback}.` });
      return fallback;
    }
    return v as T;
  };
  const strings = (key: 'enabledLanguages' | 'server.command'): readonly string[] => {
    const fallback = SETTINGS[key].default;
    const v = get(key);
    if (v === undefined || v === null) return fallback;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
      problems.push({ key, message: `hotfix.${key} must be a list of strings; using ${shown(fallback)}.` });
      return fallback;
    }
    return v.map((x: string) => x.trim()).filter((x) => x.length > 0);
  };

  const settings: HotfixSettings = {
    model: str('model'),
    runtime: choice<Runtime>('runtime'),
    dataDir: str('dataDir'),
    continuousHotfixing: bool('continuousHotfixing'),
    record: choice<RecordMode>('record'),
    suppressions: choice<SuppressionScope>('suppressions'),
    maxNewTokens: num('maxNewTokens'),
    temperature: num('temperature'),
    contextTokens: num('contextTokens'),
    debounceMs: num('debounceMs'),
    predictBudgetMs: num('predictBudgetMs'),
    suggestionExpirySeconds: num('suggestionExpirySeconds'),
    editWindowSeconds: num('editWindowSeconds'),
    enabledLanguages: strings('enabledLanguages'),
    completionItems: choice<CompletionItemMode>('completionItems'),
    serverCommand: strings('server.command'),
    pythonPath: str('server.pythonPath'),
  };
  return { settings, problems };
}

/** Every server key with its value in force (see ServerSettings). */
export function toServerSettings(s: HotfixSettings, vars: PathVars): ServerSettings {
  return {
    model: s.model ? (looksLikePath(s.model) ? expandPath(s.model, vars) : s.model) : null,
    runtime: s.runtime === 'auto' ? null : s.runtime,
    dataDir: s.dataDir ? expandPath(s.dataDir, vars) : null,
    continuousHotfixing: s.continuousHotfixing,
    record: s.record,
    suppressions: s.suppressions,
    maxNewTokens: s.maxNewTokens,
    temperature: s.temperature,
    contextTokens: s.contextTokens,
    debounceMs: s.debounceMs,
    predictBudgetMs: s.predictBudgetMs,
    suggestionExpirySeconds: s.suggestionExpirySeconds,
    editWindowSeconds: s.editWindowSeconds,
  };
}

/**
 * What a change of live settings sends to a server started with `started`: every key, the live ones as
 * they are now, the restart keys as that server has them (a change of those waits for the new server).
 * `started` is brought up to date in place too: the client hands that object to a server it restarts
 * after a crash.
 */
export function liveUpdate(started: ServerSettings, s: HotfixSettings, vars: PathVars): ServerSettings {
  const fresh = toServerSettings(s, vars);
  const target = started as unknown as Record<LiveKey, unknown>;
  for (const key of LIVE_KEYS) target[key] = fresh[key];
  return { ...started };
}

/**
 * Whether a model spec names a local file or folder rather than `embedded:...` or a Hub id `org/name`
 * (docs/architecture.md, Contracts): local specs are absolute, home- or dot-relative, or end in `.gguf`.
 */
export function looksLikePath(spec: string): boolean {
  return (
    spec.startsWith('/') ||
    spec.startsWith('~') ||
    spec.startsWith('./') ||
    spec.startsWith('../') ||
    spec.startsWith('${') ||
    /^[A-Za-z]:[\\/]/.test(spec) ||
    spec.toLowerCase().endsWith('.gguf')
  );
}

/** The documents the client serves: files and unsaved buffers in the enabled languages ("*" = all). */
export function documentSelector(languages: readonly string[]): { scheme: string; language?: string }[] {
  const schemes = ['file', 'untitled'];
  if (languages.includes('*')) return schemes.map((scheme) => ({ scheme }));
  return languages.flatMap((language) => schemes.map((scheme) => ({ scheme, language })));
}

/**
 * The activation events for the languages served by default: the extension starts when a document in
 * one of them opens (or when one of its commands runs, an event VS Code derives from the commands).
 */
export function activationEvents(languages: readonly string[] = SETTINGS.enabledLanguages.default): string[] {
  return languages.filter((language) => language !== '*').map((language) => `onLanguage:${language}`);
}

/** Whether a configuration change (tested key by key) should restart the server. */
export function needsRestart(affects: (section: string) => boolean): boolean {
  return RESTART_KEYS.some((key) => affects(`hotfix.${key}`));
}

/** Whether a configuration change touches a setting the running server takes without a restart. */
export function changesLiveSettings(affects: (section: string) => boolean): boolean {
  return LIVE_KEYS.some((key) => affects(`hotfix.${key}`));
}

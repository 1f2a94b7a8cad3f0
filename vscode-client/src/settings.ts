/**
 * The extension's settings (`hotfix.*`), validated, and their translation into the server's
 * initializationOptions. Pure: the editor hands in a getter, so tests need no VS Code.
 */

export const RECORD_MODES = ['patterns', 'all', 'off'] as const;
export type RecordMode = (typeof RECORD_MODES)[number];

export const RUNTIMES = ['auto', 'llama.cpp', 'transformers'] as const;
export type Runtime = (typeof RUNTIMES)[number];

export const SUPPRESSION_SCOPES = ['workspace', 'everywhere', 'off'] as const;
export type SuppressionScope = (typeof SUPPRESSION_SCOPES)[number];

export const COMPLETION_ITEM_MODES = ['invoke', 'always', 'off'] as const;
export type CompletionItemMode = (typeof COMPLETION_ITEM_MODES)[number];

export interface HotfixSettings {
  readonly model: string;
  readonly runtime: Runtime;
  readonly dataDir: string;
  readonly continuousHotfixing: boolean;
  readonly record: RecordMode;
  readonly suppressions: SuppressionScope;
  readonly maxNewTokens: number | undefined;
  readonly temperature: number | undefined;
  readonly contextTokens: number | undefined;
  readonly debounceMs: number | undefined;
  readonly predictBudgetMs: number | undefined;
  readonly suggestionExpirySeconds: number | undefined;
  readonly editWindowSeconds: number | undefined;
  readonly enabledLanguages: readonly string[];
  readonly completionItems: CompletionItemMode;
  readonly serverCommand: readonly string[];
  readonly pythonPath: string;
}

/** What the server reads at start; only keys the user set are sent, so the server's defaults stay its own. */
export interface InitializationOptions {
  model?: string;
  runtime?: Runtime;
  dataDir?: string;
  continuousHotfixing: boolean;
  record: RecordMode;
  suppressions?: SuppressionScope;
  maxNewTokens?: number;
  temperature?: number;
  contextTokens?: number;
  debounceMs?: number;
  predictBudgetMs?: number;
  suggestionExpirySeconds?: number;
  editWindowSeconds?: number;
}

/** Reads one setting below `hotfix.`; returns undefined when unset. */
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

/** Settings whose change needs a new server (everything the server or the client's selector reads at start). */
export const RESTART_KEYS = [
  'model',
  'runtime',
  'dataDir',
  'continuousHotfixing',
  'record',
  'maxNewTokens',
  'temperature',
  'contextTokens',
  'debounceMs',
  'predictBudgetMs',
  'suggestionExpirySeconds',
  'editWindowSeconds',
  'enabledLanguages',
  'server.command',
  'server.pythonPath',
] as const;

/**
 * Server settings the server applies as they change (workspace/didChangeConfiguration): no restart.
 * Only keys that always have a value belong here: the server reads a change over the initialization
 * options, so a key the user clears would fall back to its value at start, not to the server's default.
 */
export const LIVE_KEYS = ['suppressions'] as const;
export type LiveKey = (typeof LIVE_KEYS)[number];

/** What a change of live settings sends; every live key, so a return to the default is sent too. */
export type LiveOptions = Pick<Required<InitializationOptions>, LiveKey>;

/** Expands `~` and `${workspaceFolder}` / `${userHome}` in paths the user typed. */
export function expandPath(value: string, vars: { home: string; workspaceFolder?: string }): string {
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

  const str = (key: string): string => {
    const v = get(key);
    if (v === undefined || v === null) return '';
    if (typeof v !== 'string') {
      problems.push({ key, message: `hotfix.${key} must be a string; ignoring it.` });
      return '';
    }
    return v.trim();
  };
  const bool = (key: string, fallback: boolean): boolean => {
    const v = get(key);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') {
      problems.push({ key, message: `hotfix.${key} must be true or false; using ${fallback}.` });
      return fallback;
    }
    return v;
  };
  const num = (key: string, min: number, max: number, integer: boolean): number | undefined => {
    const v = get(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
      const kind = integer ? 'an integer' : 'a number';
      problems.push({ key, message: `hotfix.${key} must be ${kind} from ${min} to ${max}; using the server's default.` });
      return undefined;
    }
    return v;
  };
  const choice = <T extends string>(key: string, valid: readonly T[], fallback: T): T => {
    const v = get(key);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'string' || !(valid as readonly string[]).includes(v)) {
      problems.push({ key, message: `hotfix.${key} must be one of ${valid.join(', ')}; using ${fallback}.` });
      return fallback;
    }
    return v as T;
  };
  const strings = (key: string, fallback: readonly string[]): readonly string[] => {
    const v = get(key);
    if (v === undefined || v === null) return fallback;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
      problems.push({ key, message: `hotfix.${key} must be a list of strings; using ${JSON.stringify(fallback)}.` });
      return fallback;
    }
    return v.map((x: string) => x.trim()).filter((x) => x.length > 0);
  };

  const settings: HotfixSettings = {
    model: str('model'),
    runtime: choice('runtime', RUNTIMES, 'auto'),
    dataDir: str('dataDir'),
    continuousHotfixing: bool('continuousHotfixing', false),
    record: choice('record', RECORD_MODES, 'patterns'),
    suppressions: choice('suppressions', SUPPRESSION_SCOPES, 'workspace'),
    maxNewTokens: num('maxNewTokens', 1, 4096, true),
    temperature: num('temperature', 0, 5, false),
    contextTokens: num('contextTokens', 16, 1_000_000, true),
    debounceMs: num('debounceMs', 0, 10_000, true),
    predictBudgetMs: num('predictBudgetMs', 0, 600_000, true),
    suggestionExpirySeconds: num('suggestionExpirySeconds', 0.1, 86_400, false),
    editWindowSeconds: num('editWindowSeconds', 0.1, 86_400, false),
    enabledLanguages: strings('enabledLanguages', ['python']),
    completionItems: choice('completionItems', COMPLETION_ITEM_MODES, 'invoke'),
    serverCommand: strings('server.command', []),
    pythonPath: str('server.pythonPath'),
  };
  return { settings, problems };
}

export function toInitializationOptions(
  s: HotfixSettings,
  vars: { home: string; workspaceFolder?: string },
): InitializationOptions {
  const opts: InitializationOptions = { continuousHotfixing: s.continuousHotfixing, record: s.record };
  if (s.model) opts.model = looksLikePath(s.model) ? expandPath(s.model, vars) : s.model;
  if (s.runtime !== 'auto') opts.runtime = s.runtime;
  if (s.dataDir) opts.dataDir = expandPath(s.dataDir, vars);
  if (s.suppressions !== 'workspace') opts.suppressions = s.suppressions;
  if (s.maxNewTokens !== undefined) opts.maxNewTokens = s.maxNewTokens;
  if (s.temperature !== undefined) opts.temperature = s.temperature;
  if (s.contextTokens !== undefined) opts.contextTokens = s.contextTokens;
  if (s.debounceMs !== undefined) opts.debounceMs = s.debounceMs;
  if (s.predictBudgetMs !== undefined) opts.predictBudgetMs = s.predictBudgetMs;
  if (s.suggestionExpirySeconds !== undefined) opts.suggestionExpirySeconds = s.suggestionExpirySeconds;
  if (s.editWindowSeconds !== undefined) opts.editWindowSeconds = s.editWindowSeconds;
  return opts;
}

export function toLiveOptions(s: HotfixSettings): LiveOptions {
  return { suppressions: s.suppressions };
}

/**
 * Brings the live keys of initialization options already handed to the client up to date, in place:
 * the client sends that object again when it restarts a crashed server.
 */
export function updateLiveOptions(
  init: InitializationOptions,
  s: HotfixSettings,
  vars: { home: string; workspaceFolder?: string },
): void {
  const fresh = toInitializationOptions(s, vars);
  const target = init as unknown as Record<string, unknown>;
  for (const key of LIVE_KEYS) {
    if (fresh[key] === undefined) delete target[key];
    else target[key] = fresh[key];
  }
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

/** Whether a configuration change (tested key by key) should restart the server. */
export function needsRestart(affects: (section: string) => boolean): boolean {
  return RESTART_KEYS.some((key) => affects(`hotfix.${key}`));
}

/** Whether a configuration change touches a setting the running server takes without a restart. */
export function changesLiveSettings(affects: (section: string) => boolean): boolean {
  return LIVE_KEYS.some((key) => affects(`hotfix.${key}`));
}

/**
 * What the status bar says, computed from the server's `hotfix/status` answer. Pure, so the wording
 * for each state is tested; the server's object is read leniently (extra keys are ignored).
 */

export interface TrainerStatus {
  readonly state: string;
  /** The server's own trainer process is alive (it may not have written its first state yet). */
  readonly running: boolean;
  /** 0..1 when known. */
  readonly progress: number | undefined;
  readonly progressMessage: string | undefined;
  readonly lastResult: unknown;
}

export interface ServerStatus {
  readonly model: string;
  /** The filesystem-safe key adapters are filed under; undefined until the model is loaded. */
  readonly modelKey: string | undefined;
  readonly modelReady: boolean;
  /** Why the model did not load; the server keeps running without completions. */
  readonly modelError: string | undefined;
  /** What runs the model: llama.cpp or transformers; undefined until it is loaded. */
  readonly runtime: string | undefined;
  readonly adapter: string | null;
  readonly trainer: TrainerStatus;
  readonly store: Readonly<Record<string, number>>;
  readonly dataDir: string | undefined;
  readonly continuousHotfixing: boolean | undefined;
  /** Any other problem the server reports (e.g. the store could not be opened). */
  readonly error: string | undefined;
  readonly raw: Record<string, unknown>;
}

export type ClientPhase = 'starting' | 'running' | 'failed' | 'stopped';

export interface StatusView {
  readonly text: string;
  readonly tooltip: string;
  readonly severity: 'normal' | 'warning' | 'error';
}

const ACTIVE_TRAINER_STATES = new Set(['queued', 'training', 'evaluating', 'publishing', 'running', 'starting']);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function toFraction(v: unknown): number | undefined {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) return undefined;
  // The server reports a fraction; a percentage above 1 is accepted too.
  return v > 1 ? Math.min(v / 100, 1) : v;
}

const text = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

/** Reads the server's status object; undefined when it is not one. */
export function parseStatus(value: unknown): ServerStatus | undefined {
  if (!isObject(value) || typeof value.modelReady !== 'boolean') return undefined;
  const t = isObject(value.trainer) ? value.trainer : {};
  const state = text(t.state) ?? 'idle';
  let progress: number | undefined;
  let progressMessage: string | undefined;
  if (isObject(t.progress)) {
    const p = t.progress;
    progress =
      typeof p.percentage === 'number' ? toFraction(p.percentage / 100) : toFraction(p.fraction ?? p.value);
    progressMessage = text(p.message);
  } else {
    progress = toFraction(t.progress);
  }
  // The trainer's message explains a running step ("measuring the new version"); when idle it repeats the last result.
  if (progressMessage === undefined && ACTIVE_TRAINER_STATES.has(state)) progressMessage = text(t.message);
  const storeSource = isObject(value.store) ? value.store : isObject(value.counts) ? value.counts : {};
  const store: Record<string, number> = {};
  for (const [k, v] of Object.entries(storeSource)) if (typeof v === 'number') store[k] = v;
  const adapter = value.adapter;
  const failedMessage = state === 'failed' ? text(t.message) : undefined;
  return {
    model: text(value.model) ?? text(value.modelKey) ?? 'default model',
    modelKey: text(value.modelKey),
    modelReady: value.modelReady,
    modelError: text(value.modelError),
    runtime: text(value.runtime),
    adapter: typeof adapter === 'string' ? adapter : isObject(adapter) && typeof adapter.version === 'string' ? adapter.version : null,
    trainer: {
      state,
      running: value.trainerRunning === true,
      progress,
      progressMessage: progressMessage ?? failedMessage,
      lastResult: t.lastResult ?? t.last_result ?? null,
    },
    store,
    dataDir: text(value.dataDir),
    continuousHotfixing: typeof value.continuousHotfixing === 'boolean' ? value.continuousHotfixing : undefined,
    error: text(value.storeError) ?? text(value.error),
    raw: value,
  };
}

/** The manifest of the last trained version: its gate metrics are the evaluation report. */
export function lastReportPath(s: ServerStatus, join: (...parts: string[]) => string): string | undefined {
  const r = s.trainer.lastResult;
  const version = isObject(r) ? text(r.version) : undefined;
  if (!version || !s.dataDir || !s.modelKey) return undefined;
  return join(s.dataDir, 'adapters', s.modelKey, version, 'manifest.json');
}

/** Short model name for the status bar: the last path part without `.gguf`, or the embedded name. */
export function shortModel(model: string): string {
  const base = model.replace(/[\\/]+$/, '').split(/[\\/]/).at(-1) ?? model;
  return base.replace(/^embedded:/, '').replace(/\.gguf$/i, '');
}


export function isTraining(s: ServerStatus): boolean {
  return s.trainer.running || ACTIVE_TRAINER_STATES.has(s.trainer.state);
}

/** "training" while the process starts up and has not reported a state yet. */
function trainerLabel(s: ServerStatus): string {
  return ACTIVE_TRAINER_STATES.has(s.trainer.state) ? s.trainer.state : 'training';
}

/** A one-line summary of the trainer's last result, e.g. "v0003 published" or "not published: worse". */
export function summarizeLastResult(r: unknown): string | undefined {
  if (r === null || r === undefined) return undefined;
  if (typeof r === 'string') return r;
  if (!isObject(r)) return JSON.stringify(r);
  const version = typeof r.version === 'string' ? r.version : undefined;
  const text = [r.summary, r.message, r.reason].find((x): x is string => typeof x === 'string' && x.length > 0);
  if (typeof r.published === 'boolean') {
    const head = r.published ? `${version ?? 'adapter'} published` : `${version ?? 'adapter'} not published`;
    return text ? `${head}: ${text}` : head;
  }
  if (text) return version ? `${version}: ${text}` : text;
  if (typeof r.state === 'string') return version ? `${version} ${r.state}` : r.state;
  return version;
}

export function renderStatus(phase: ClientPhase, s: ServerStatus | undefined, failure?: string): StatusView {
  if (phase === 'failed') {
    return { text: '$(error) hotfix', tooltip: `hotfix server is not running: ${failure ?? 'see the log'}\nClick for actions.`, severity: 'error' };
  }
  if (phase === 'stopped') {
    return { text: '$(circle-slash) hotfix', tooltip: 'hotfix server is stopped. Click for actions.', severity: 'warning' };
  }
  if (phase === 'starting' || s === undefined) {
    return { text: '$(loading~spin) hotfix', tooltip: 'hotfix server is starting…', severity: 'normal' };
  }
  const model = shortModel(s.model);
  const adapter = s.adapter ?? 'base';
  const loading = s.modelError ? ' (failed to load)' : s.modelReady ? '' : ' (loading)';
  const lines = [`Model: ${s.model}${loading}`];
  if (s.runtime) lines.push(`Runtime: ${s.runtime}`);
  lines.push(`Adapter: ${s.adapter ?? 'none (base model)'}`);
  let trainerLine = `Trainer: ${isTraining(s) ? trainerLabel(s) : s.trainer.state}`;
  if (s.trainer.progress !== undefined && isTraining(s)) trainerLine += ` ${Math.round(s.trainer.progress * 100)}%`;
  if (s.trainer.progressMessage) trainerLine += ` (${s.trainer.progressMessage})`;
  lines.push(trainerLine);
  const last = summarizeLastResult(s.trainer.lastResult);
  if (last) lines.push(`Last training: ${last}`);
  if (s.continuousHotfixing !== undefined) lines.push(`Continuous hotfixing: ${s.continuousHotfixing ? 'on' : 'off'}`);
  const counts = Object.entries(s.store);
  if (counts.length > 0) lines.push(`Store: ${counts.map(([k, v]) => `${v} ${k}`).join(', ')}`);
  if (s.modelError) lines.push(`Model error: ${s.modelError}`);
  if (s.error) lines.push(`Error: ${s.error}`);
  lines.push('Click for actions.');
  const tooltip = lines.join('\n');

  if (s.modelError) return { text: `$(error) ${model} · not loaded`, tooltip, severity: 'error' };
  if (s.error) return { text: `$(warning) ${model} · ${adapter}`, tooltip, severity: 'warning' };
  if (!s.modelReady) return { text: `$(loading~spin) ${model} · loading`, tooltip, severity: 'normal' };
  if (isTraining(s)) {
    const pct = s.trainer.progress === undefined ? '' : ` ${Math.round(s.trainer.progress * 100)}%`;
    return { text: `$(sync~spin) ${model} · ${adapter} · ${trainerLabel(s)}${pct}`, tooltip, severity: 'normal' };
  }
  return { text: `$(sparkle) ${model} · ${adapter}`, tooltip, severity: 'normal' };
}

/** Poll often while something moves (loading, training), rarely otherwise. */
export function pollIntervalMs(s: ServerStatus | undefined): number {
  if (s === undefined || (!s.modelReady && !s.modelError) || isTraining(s)) return 2000;
  return 15000;
}

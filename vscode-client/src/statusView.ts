/**
 * What the status bar says, computed from the server's `hotfix/status` answer. Pure, so the wording
 * for each state is tested; the server's object is read leniently (extra keys are ignored).
 */

export interface TrainerStatus {
  readonly state: string;
  /** 0..1 when known. */
  readonly progress: number | undefined;
  readonly progressMessage: string | undefined;
  readonly lastResult: unknown;
}

export interface ServerStatus {
  readonly model: string;
  readonly modelReady: boolean;
  readonly adapter: string | null;
  readonly trainer: TrainerStatus;
  readonly store: Readonly<Record<string, number>>;
  readonly continuousHotfixing: boolean | undefined;
  readonly error: string | undefined;
  readonly raw: Record<string, unknown>;
}

export type ClientPhase = 'starting' | 'running' | 'failed' | 'stopped';

export interface StatusView {
  readonly text: string;
  readonly tooltip: string;
  readonly severity: 'normal' | 'warning' | 'error';
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function toFraction(v: unknown): number | undefined {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) return undefined;
  // The server reports a fraction; a percentage above 1 is accepted too.
  return v > 1 ? Math.min(v / 100, 1) : v;
}

/** Reads the server's status object; undefined when it is not one. */
export function parseStatus(value: unknown): ServerStatus | undefined {
  if (!isObject(value) || typeof value.model !== 'string') return undefined;
  const t = isObject(value.trainer) ? value.trainer : {};
  let progress: number | undefined;
  let progressMessage: string | undefined;
  if (isObject(t.progress)) {
    const p = t.progress;
    progress =
      typeof p.percentage === 'number' ? toFraction(p.percentage / 100) : toFraction(p.fraction ?? p.value);
    progressMessage = typeof p.message === 'string' ? p.message : undefined;
  } else {
    progress = toFraction(t.progress);
  }
  const storeSource = isObject(value.store) ? value.store : isObject(value.counts) ? value.counts : {};
  const store: Record<string, number> = {};
  for (const [k, v] of Object.entries(storeSource)) if (typeof v === 'number') store[k] = v;
  const adapter = value.adapter;
  return {
    model: value.model,
    modelReady: value.modelReady === true,
    adapter: typeof adapter === 'string' ? adapter : isObject(adapter) && typeof adapter.version === 'string' ? adapter.version : null,
    trainer: {
      state: typeof t.state === 'string' ? t.state : 'idle',
      progress,
      progressMessage,
      lastResult: t.lastResult ?? null,
    },
    store,
    continuousHotfixing: typeof value.continuousHotfixing === 'boolean' ? value.continuousHotfixing : undefined,
    error: typeof value.error === 'string' && value.error ? value.error : undefined,
    raw: value,
  };
}

/** Short model name for the status bar: the last path part without `.gguf`, or the embedded name. */
export function shortModel(model: string): string {
  const base = model.replace(/[\\/]+$/, '').split(/[\\/]/).at(-1) ?? model;
  return base.replace(/^embedded:/, '').replace(/\.gguf$/i, '');
}

const ACTIVE_TRAINER_STATES = new Set(['queued', 'training', 'evaluating', 'publishing', 'running', 'starting']);

export function isTraining(s: ServerStatus): boolean {
  return ACTIVE_TRAINER_STATES.has(s.trainer.state);
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
  const lines = [`Model: ${s.model}${s.modelReady ? '' : ' (loading)'}`, `Adapter: ${s.adapter ?? 'none (base model)'}`];
  let trainerLine = `Trainer: ${s.trainer.state}`;
  if (s.trainer.progress !== undefined && isTraining(s)) trainerLine += ` ${Math.round(s.trainer.progress * 100)}%`;
  if (s.trainer.progressMessage) trainerLine += ` (${s.trainer.progressMessage})`;
  lines.push(trainerLine);
  const last = summarizeLastResult(s.trainer.lastResult);
  if (last) lines.push(`Last training: ${last}`);
  if (s.continuousHotfixing !== undefined) lines.push(`Continuous hotfixing: ${s.continuousHotfixing ? 'on' : 'off'}`);
  const counts = Object.entries(s.store);
  if (counts.length > 0) lines.push(`Store: ${counts.map(([k, v]) => `${v} ${k}`).join(', ')}`);
  if (s.error) lines.push(`Error: ${s.error}`);
  lines.push('Click for actions.');
  const tooltip = lines.join('\n');

  if (s.error) return { text: `$(warning) ${model} · ${adapter}`, tooltip, severity: 'warning' };
  if (!s.modelReady) return { text: `$(loading~spin) ${model} · loading`, tooltip, severity: 'normal' };
  if (isTraining(s)) {
    const pct = s.trainer.progress === undefined ? '' : ` ${Math.round(s.trainer.progress * 100)}%`;
    return { text: `$(sync~spin) ${model} · ${adapter} · ${s.trainer.state}${pct}`, tooltip, severity: 'normal' };
  }
  return { text: `$(sparkle) ${model} · ${adapter}`, tooltip, severity: 'normal' };
}

/** Poll often while something moves (loading, training), rarely otherwise. */
export function pollIntervalMs(s: ServerStatus | undefined): number {
  if (s === undefined || !s.modelReady || isTraining(s)) return 2000;
  return 15000;
}

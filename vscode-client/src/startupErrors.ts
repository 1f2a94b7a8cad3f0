/**
 * Turns a failed server start (spawn error, exit code, stderr) into one actionable message.
 * Pure, so each known failure has a test: the user should learn what to do, not read a traceback.
 */
import { describeCommand, ServerCommand } from './serverCommand';

export type FixAction =
  | { kind: 'openSettings'; title: string; setting: string }
  | { kind: 'selectInterpreter'; title: string }
  | { kind: 'copy'; title: string; text: string }
  | { kind: 'openLog'; title: string }
  | { kind: 'restart'; title: string };

export interface Diagnosis {
  /** One line for the notification. */
  readonly message: string;
  readonly actions: readonly FixAction[];
}

export interface Failure {
  readonly command: ServerCommand;
  /** `error.code` when the process could not be spawned at all (ENOENT, EACCES). */
  readonly spawnError?: string;
  readonly exitCode?: number | null;
  readonly stderr: string;
  /** Whether the Python extension is there to pick an interpreter with. */
  readonly pythonExtension: boolean;
}

/**
 * hotfix installs from its source tree: the name "hotfix" on PyPI belongs to an unrelated project, so a
 * bare `pip install hotfix` would install the wrong thing.
 */
export const INSTALL_SOURCE = '<path to your hotfix checkout>';

const OPEN_LOG: FixAction = { kind: 'openLog', title: 'Open Log' };

export function installCommand(python: string): string {
  return `${describeCommand({ program: python, args: [], python, source: 'default' })} -m pip install -e '${INSTALL_SOURCE}'`;
}

function interpreterActions(f: Failure): FixAction[] {
  const actions: FixAction[] = [];
  if (f.pythonExtension) actions.push({ kind: 'selectInterpreter', title: 'Select Interpreter' });
  const setting = f.command.python === undefined ? 'hotfix.server.command' : 'hotfix.server.pythonPath';
  actions.push({ kind: 'openSettings', title: 'Open Settings', setting });
  return actions;
}

/** The last meaningful stderr line: a traceback's final line, or the CLI's `hotfix: error: ...`. */
export function lastErrorLine(stderr: string): string | undefined {
  const lines = stderr
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  const cli = [...lines].reverse().find((l) => l.startsWith('hotfix: error:'));
  if (cli) return cli.slice('hotfix: error:'.length).trim();
  const last = lines.at(-1);
  if (last === undefined) return undefined;
  // "hotfix_engine.errors.ModelError: no model at /x" -> "ModelError: no model at /x"
  return last.replace(/^(?:[A-Za-z_][\w]*\.)+(?=[A-Za-z_]\w*(?:Error|Exception)\b)/, '');
}

export function diagnose(f: Failure): Diagnosis {
  const who = f.command.source === 'default' ? '' : ` (from ${f.command.source})`;
  if (f.spawnError === 'ENOENT') {
    const what = f.command.python === undefined ? 'the server command' : 'the Python interpreter';
    return {
      message: `hotfix: ${what} "${f.command.program}"${who} was not found. Point hotfix.server.pythonPath at the Python where hotfix is installed.`,
      actions: [...interpreterActions(f), OPEN_LOG],
    };
  }
  if (f.spawnError === 'EACCES') {
    return {
      message: `hotfix: "${f.command.program}"${who} is not executable.`,
      actions: [...interpreterActions(f), OPEN_LOG],
    };
  }
  if (f.spawnError) {
    return {
      message: `hotfix: could not start "${describeCommand(f.command)}": ${f.spawnError}.`,
      actions: [...interpreterActions(f), OPEN_LOG],
    };
  }

  const missing = /No module named '?([\w.]+)'?/.exec(f.stderr);
  if (missing && f.command.python !== undefined) {
    const install = installCommand(f.command.python);
    const module = missing[1];
    const message =
      module === 'hotfix_server' || module.startsWith('hotfix_')
        ? `hotfix is not installed for ${f.command.python}${who}. Install it with: ${install}`
        : `hotfix's dependency "${module}" is missing for ${f.command.python}${who}. Reinstall with: ${install}`;
    return {
      message,
      actions: [{ kind: 'copy', title: 'Copy Install Command', text: install }, ...interpreterActions(f), OPEN_LOG],
    };
  }

  const line = lastErrorLine(f.stderr);
  if (line && /\bmodel\b|ModelError|\.gguf\b/i.test(line)) {
    return {
      message: `hotfix: the model could not be loaded: ${line}. Check hotfix.model.`,
      actions: [{ kind: 'openSettings', title: 'Open Settings', setting: 'hotfix.model' }, OPEN_LOG],
    };
  }
  if (line && /SyntaxError|requires Python|Python 3\.\d+ or later/i.test(line)) {
    return {
      message: `hotfix needs Python 3.10 or later; ${f.command.program}${who} is older: ${line}`,
      actions: [...interpreterActions(f), OPEN_LOG],
    };
  }
  const code = f.exitCode === undefined || f.exitCode === null ? '' : ` (exit code ${f.exitCode})`;
  return {
    message: `hotfix: the server stopped${code}${line ? `: ${line}` : ''}.`,
    actions: [{ kind: 'restart', title: 'Restart Server' }, OPEN_LOG],
  };
}

/** Checked before starting: a local model path that does not exist would only fail after seconds of start-up. */
export function missingModel(modelSpec: string | undefined, exists: (path: string) => boolean): Diagnosis | undefined {
  if (!modelSpec || exists(modelSpec)) return undefined;
  return {
    message: `hotfix: hotfix.model is "${modelSpec}", which does not exist. Set it to a model folder, a .gguf file, a Hugging Face id or embedded:gemma3-270m.`,
    actions: [{ kind: 'openSettings', title: 'Open Settings', setting: 'hotfix.model' }],
  };
}

/** The server runs on without a model when it cannot load one; the user still needs to hear why. */
export function modelLoadFailed(modelError: string, modelSpec: string): Diagnosis {
  return {
    message: `hotfix: the model "${modelSpec}" could not be loaded: ${modelError.replace(/\.$/, '')}. Check hotfix.model.`,
    actions: [
      { kind: 'openSettings', title: 'Open Settings', setting: 'hotfix.model' },
      { kind: 'openLog', title: 'Open Log' },
    ],
  };
}

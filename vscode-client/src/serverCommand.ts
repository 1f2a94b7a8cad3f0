/**
 * Which program starts the language server. Pure, so the order of precedence is tested:
 * an explicit command, then an explicit interpreter, then the Python extension's interpreter, then python3.
 */

export type CommandSource = 'hotfix.server.command' | 'hotfix.server.pythonPath' | 'python extension' | 'default';

export interface ServerCommand {
  readonly program: string;
  readonly args: readonly string[];
  /** The interpreter when we start `python -m hotfix_server`; undefined for a custom command. */
  readonly python: string | undefined;
  readonly source: CommandSource;
}

export interface CommandInputs {
  readonly command: readonly string[];
  readonly pythonPath: string;
  /** The Python extension's interpreter for the workspace, when that extension is installed. */
  readonly pythonExtension: string | undefined;
  readonly defaultPython?: string;
}

/** The module entry point accepts the same flags as `hotfix serve`. */
export const SERVER_MODULE_ARGS = ['-m', 'hotfix_server', '--stdio'] as const;

export function resolveServerCommand(i: CommandInputs): ServerCommand {
  if (i.command.length > 0) {
    return { program: i.command[0], args: i.command.slice(1), python: undefined, source: 'hotfix.server.command' };
  }
  const [python, source]: [string, CommandSource] = i.pythonPath
    ? [i.pythonPath, 'hotfix.server.pythonPath']
    : i.pythonExtension
      ? [i.pythonExtension, 'python extension']
      : [i.defaultPython ?? 'python3', 'default'];
  return { program: python, args: [...SERVER_MODULE_ARGS], python, source };
}

/** A shell-like rendering for messages and the log. */
export function describeCommand(c: ServerCommand): string {
  const quote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  return [c.program, ...c.args].map(quote).join(' ');
}

/**
 * The interpreter the Python extension (`ms-python.python`) selected for the workspace: the server's
 * Python when no hotfix setting names one. A new pick there is reported, so that the server follows it.
 */
import * as vscode from 'vscode';

export class PythonExtensionInterpreter implements vscode.Disposable {
  /** Whether the Python extension is installed (known after the first lookup): a fix can then offer its picker. */
  present = false;
  private listener: vscode.Disposable | undefined;

  constructor(
    private readonly log: vscode.LogOutputChannel,
    private readonly onDidChange: () => void,
  ) {}

  /** The selected interpreter, or undefined when the extension is missing or does not say. */
  async lookup(): Promise<string | undefined> {
    const ext = vscode.extensions.getExtension('ms-python.python');
    this.present = ext !== undefined;
    if (!ext) return undefined;
    try {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const api: any = ext.isActive ? ext.exports : await ext.activate();
      const resource = vscode.workspace.workspaceFolders?.[0]?.uri;
      const envs = api?.environments;
      if (!this.listener && typeof envs?.onDidChangeActiveEnvironmentPath === 'function') {
        this.listener = envs.onDidChangeActiveEnvironmentPath(() => this.onDidChange());
      }
      if (envs?.getActiveEnvironmentPath) {
        const active = envs.getActiveEnvironmentPath(resource);
        const resolved = await envs.resolveEnvironment?.(active);
        const exe: string | undefined = resolved?.executable?.uri?.fsPath ?? active?.path;
        if (exe) return exe;
      }
      const details = api?.settings?.getExecutionDetails?.(resource);
      return details?.execCommand?.[0];
    } catch (e) {
      this.log.warn(`Could not ask the Python extension for its interpreter: ${String(e)}`);
      return undefined;
    }
  }

  dispose(): void {
    this.listener?.dispose();
    this.listener = undefined;
  }
}

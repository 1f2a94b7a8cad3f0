/** Shows a diagnosis (a failed start, a model that did not load) with its fixes as buttons, and runs the one picked. */
import * as vscode from 'vscode';
import { Diagnosis, FixAction } from './startupErrors';

export function showDiagnosis(d: Diagnosis, log: vscode.LogOutputChannel, restart: () => Promise<void>): void {
  log.error(d.message);
  const titles = d.actions.map((a) => a.title);
  void Promise.resolve(vscode.window.showErrorMessage(d.message, ...titles)).then((picked) => {
    const action = d.actions.find((a) => a.title === picked);
    if (action) void runFix(action, log, restart);
  });
}

async function runFix(a: FixAction, log: vscode.LogOutputChannel, restart: () => Promise<void>): Promise<void> {
  switch (a.kind) {
    case 'openSettings':
      await vscode.commands.executeCommand('workbench.action.openSettings', a.setting);
      return;
    case 'selectInterpreter':
      await vscode.commands.executeCommand('python.setInterpreter');
      return;
    case 'copy':
      await vscode.env.clipboard.writeText(a.text);
      vscode.window.showInformationMessage(`Copied: ${a.text}`);
      return;
    case 'openLog':
      log.show(true);
      return;
    case 'restart':
      await restart();
      return;
  }
}

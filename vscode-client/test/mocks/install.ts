/**
 * Routes `require('vscode')` and `require('vscode-languageclient/node')` to the mocks. Import this
 * before the code under test.
 */
import Module from 'node:module';
import * as path from 'node:path';

const targets: Record<string, string> = {
  vscode: path.join(__dirname, 'vscode.js'),
  'vscode-languageclient/node': path.join(__dirname, 'languageclient.js'),
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const mod = Module as any;
const original = mod._resolveFilename;
mod._resolveFilename = function (request: string, ...rest: unknown[]) {
  return original.call(this, targets[request] ?? request, ...rest);
};

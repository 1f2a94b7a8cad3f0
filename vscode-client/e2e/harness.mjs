// Start an isolated code-server (open-source VS Code) with one .vsix installed, open it in headless
// Debian Chromium through Playwright, and tear everything down. Adapted from the reference harness in
// ../shared/vscode-e2e/, which lists why each step is done this way.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const CODE_SERVER =
  process.env.CODE_SERVER_BIN || path.resolve(HERE, '..', '.code-server', 'node_modules', '.bin', 'code-server');
export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

// Nothing may compete with the ghost text: no suggestion popup, no trust prompt, no update or git noise.
const DEFAULT_SETTINGS = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'security.workspace.trust.enabled': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'editor.inlineSuggest.enabled': true,
  'editor.quickSuggestions': { other: false, comments: false, strings: false },
  'editor.suggestOnTriggerCharacters': false,
  'editor.wordBasedSuggestions': 'off',
  'editor.acceptSuggestionOnEnter': 'off',
  'files.autoSave': 'off',
  'git.enabled': false,
  'chat.commandCenter.enabled': false,
};

async function freePort() {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
    s.on('error', rej);
  });
}

/**
 * @param {{root:string, workspace:string, extensionVsix:string, settings?:object, machineSettings?:object, env?:object}} o
 * `machineSettings` go to the Remote (machine) settings: code-server is a remote window, where settings
 * scoped `machine` or `machine-overridable` are not taken from the User settings.
 * No keybindings are added: Alt+\ must come from our extension's own contribution.
 */
export async function startCodeServer(o) {
  const root = fs.mkdtempSync(path.join(o.root, 'cs-'));
  const udd = path.join(root, 'user-data');
  const extDir = path.join(root, 'extensions');
  fs.mkdirSync(path.join(udd, 'User'), { recursive: true });
  fs.mkdirSync(extDir, { recursive: true });
  fs.writeFileSync(
    path.join(udd, 'User', 'settings.json'),
    JSON.stringify({ ...DEFAULT_SETTINGS, ...(o.settings || {}) }, null, 2),
  );
  if (o.machineSettings) {
    fs.mkdirSync(path.join(udd, 'Machine'), { recursive: true });
    fs.writeFileSync(path.join(udd, 'Machine', 'settings.json'), JSON.stringify(o.machineSettings, null, 2));
  }
  fs.writeFileSync(path.join(root, 'config.yaml'), 'auth: none\ncert: false\n');
  const env = {
    ...process.env,
    XDG_CONFIG_HOME: path.join(root, 'xdg-config'),
    XDG_DATA_HOME: path.join(root, 'xdg-data'),
    XDG_CACHE_HOME: path.join(root, 'xdg-cache'),
    ...(o.env || {}),
  };
  const common = ['--config', path.join(root, 'config.yaml'), '--user-data-dir', udd, '--extensions-dir', extDir];
  execFileSync(process.execPath, [CODE_SERVER, ...common, '--install-extension', o.extensionVsix, '--force'], {
    env,
    stdio: 'pipe',
  });

  const port = await freePort();
  const logFile = path.join(root, 'code-server.log');
  const log = fs.openSync(logFile, 'a');
  const child = spawn(
    process.execPath,
    [CODE_SERVER, ...common, '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none', '--disable-telemetry',
      '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override', '--disable-proxy',
      o.workspace],
    // Its own process group, so that stop() reaches extension hosts and language servers too.
    { env, detached: true, stdio: ['ignore', log, log] },
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60000;
  for (;;) {
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`code-server did not start; see ${logFile}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const stop = async () => {
    try { process.kill(-child.pid, 'SIGTERM'); } catch { /* already gone */ }
    await new Promise((r) => setTimeout(r, 1000));
    try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
  };
  return { url, root, userDataDir: udd, logFile, pid: child.pid, stop };
}

export async function openBrowser({ root, viewport = { width: 1280, height: 760 } }) {
  const profile = fs.mkdtempSync(path.join(root, 'chrome-profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const close = async () => {
    // Leaving the page first shuts the workbench down cleanly, so code-server disposes the extension host now.
    for (const p of context.pages()) {
      try { await p.goto('about:blank', { timeout: 5000 }); } catch { /* closing anyway */ }
    }
    await context.close();
  };
  return { context, close };
}

export async function openWorkbench(page, url, folder) {
  await page.goto(`${url}/?folder=${encodeURIComponent(folder)}`);
  await page.waitForSelector('.monaco-workbench', { timeout: 60000 });
  await page.waitForSelector('.explorer-folders-view .monaco-list-row', { timeout: 60000 });
}

export async function openFile(page, name) {
  await page.keyboard.press('Control+P');
  await page.waitForSelector('.quick-input-widget input', { state: 'visible', timeout: 15000 });
  await page.keyboard.type(name, { delay: 20 });
  await page.waitForSelector('.quick-input-list .monaco-list-row', { timeout: 15000 });
  await page.keyboard.press('Enter');
  await page.waitForSelector(`.tab.active[aria-label*="${name}"]`, { timeout: 15000 });
  const editor = page.locator('.editor-instance .monaco-editor').first();
  await editor.locator('.view-lines').click();
  return editor;
}

export const GHOST = '.monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text';

/** Waits for ghost text, asking again with Alt+\ (our extension's keybinding) while none shows. */
export async function waitForGhost(page, { timeoutMs = 60000, retriggerMs = 4000 } = {}) {
  const ghost = page.locator(GHOST);
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await ghost.first().waitFor({ timeout: retriggerMs }).then(() => true, () => false)) {
      const text = (await ghost.allTextContents()).join('');
      if (text.trim()) return text;
    }
    await page.keyboard.press('Alt+Backslash');
  }
  throw new Error('ghost text did not appear');
}

/** The text of our status bar entry (the one whose text contains `needle`). */
export async function statusBarText(page, needle, timeoutMs = 60000) {
  const item = page.locator('.statusbar-item', { hasText: needle }).first();
  await item.waitFor({ timeout: timeoutMs });
  return (await item.innerText()).trim();
}

/** Waits for a status bar entry containing `needle`; fails fast, with its text, on an error toast from hotfix. */
export async function waitForStatus(page, needle, timeoutMs = 120000) {
  const end = Date.now() + timeoutMs;
  const item = page.locator('.statusbar-item', { hasText: needle }).first();
  const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'hotfix', has: page.locator('.codicon-error') });
  while (Date.now() < end) {
    if (await item.count()) return (await item.innerText()).trim();
    if (await toast.count()) throw new Error(`the extension reported: ${(await toast.first().innerText()).replace(/\s+/g, ' ')}`);
    await page.waitForTimeout(500);
  }
  const all = await page.locator('.statusbar-item').allInnerTexts();
  throw new Error(`no status bar entry with "${needle}" after ${timeoutMs} ms; entries: ${JSON.stringify(all.filter(Boolean))}`);
}

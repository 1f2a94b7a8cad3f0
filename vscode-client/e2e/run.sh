#!/usr/bin/env bash
# The real-editor end-to-end test of the VS Code extension: installs what it needs (apt packages,
# code-server 4.100.3 from npm, playwright-core), builds the .vsix, and runs e2e.mjs against our real
# Python server. HOTFIX_PYTHON picks the interpreter that has hotfix installed (default: the repo's
# .venv, else python3). Exits non-zero on failure.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CLIENT=$(dirname "$HERE")
REPO=$(dirname "$CLIENT")

if [ -z "${HOTFIX_PYTHON:-}" ]; then
  if [ -x "$REPO/.venv/bin/python" ]; then HOTFIX_PYTHON="$REPO/.venv/bin/python"; else HOTFIX_PYTHON=python3; fi
fi
export HOTFIX_PYTHON

# 1. System packages: Chromium to drive, ripgrep (code-server's search, and its install seeds from it),
#    a compiler and Kerberos headers for code-server's native modules.
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v rg >/dev/null || missing+=(ripgrep)
command -v g++ >/dev/null && command -v make >/dev/null || missing+=(build-essential)
[ -e /usr/include/krb5.h ] || [ -e /usr/include/gssapi/gssapi.h ] || missing+=(libkrb5-dev)
if [ ${#missing[@]} -gt 0 ]; then
  echo "e2e: installing ${missing[*]}"
  SUDO=
  [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. code-server (about a minute the first time; skipped when already there).
DEST="$CLIENT/.code-server" bash "$HERE/install-code-server.sh"

# 3. The extension and the test driver.
cd "$CLIENT"
[ -d node_modules/playwright-core ] && [ -d node_modules/@vscode/vsce ] || npm ci --no-audit --no-fund
npm run --silent package >/dev/null
echo "e2e: built $CLIENT/hotfix-vscode.vsix"

# 4. The server must be importable by the interpreter the extension will start.
if ! "$HOTFIX_PYTHON" -c 'import hotfix_server, hotfix_engine' 2>/dev/null; then
  echo "e2e: $HOTFIX_PYTHON cannot import hotfix_server; install the project first (make test, or pip install -e .)" >&2
  exit 1
fi

node "$HERE/e2e.mjs"

#!/bin/bash
# Install code-server (open-source VS Code) from the npm registry alone into $DEST, without the GitHub
# downloads its dependencies normally make. Adapted from the reference recipe in ../shared/vscode-e2e/.
# Needs: npm registry access, apt packages build-essential python3 libkrb5-dev ripgrep (for /usr/bin/rg),
#        Node 20 with headers in /usr/include/node (Debian/NodeSource nodejs package).
# 4.100.3 (VS Code 1.100.3) is the newest release that runs on Node 20 and installs without GitHub.
set -euo pipefail
CS_VERSION=${CS_VERSION:-4.100.3}
DEST=${DEST:-$PWD/.code-server}
TMP=${TMPDIR:-/tmp}

# Already there: reinstalling costs minutes of native compilation.
if [ -f "$DEST/node_modules/code-server/package.json" ] &&
   [ "$(node -p "require('$DEST/node_modules/code-server/package.json').version")" = "$CS_VERSION" ]; then
  echo "code-server $CS_VERSION already in $DEST"
  exit 0
fi

mkdir -p "$DEST" && cd "$DEST"
[ -f package.json ] || echo '{"name":"cs","private":true}' > package.json

# 1) Pre-seed @vscode/ripgrep's download cache with Debian's rg, so its postinstall never hits GitHub.
#    Cache path = os.tmpdir()/vscode-ripgrep-cache-<pkgver>/ripgrep-<rgTag>-x86_64-unknown-linux-musl.tar.gz
npm pack "code-server@$CS_VERSION" --pack-destination "$TMP" >/dev/null 2>&1
RG_PKG_VER=$(tar -xzOf "$TMP/code-server-$CS_VERSION.tgz" package/lib/vscode/npm-shrinkwrap.json \
  | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).packages["node_modules/@vscode/ripgrep"].version))')
npm pack "@vscode/ripgrep@$RG_PKG_VER" --pack-destination "$TMP" >/dev/null 2>&1
RG_TAG=$(tar -xzOf "$TMP/vscode-ripgrep-$RG_PKG_VER.tgz" package/lib/postinstall.js | sed -n "s/^const VERSION = '\(.*\)';/\1/p")
rm -f "$TMP/code-server-$CS_VERSION.tgz" "$TMP/vscode-ripgrep-$RG_PKG_VER.tgz"
mkdir -p "$TMP/vscode-ripgrep-cache-$RG_PKG_VER" "$TMP/rgseed.$$"
cp /usr/bin/rg "$TMP/rgseed.$$/rg"
tar -czf "$TMP/vscode-ripgrep-cache-$RG_PKG_VER/ripgrep-$RG_TAG-x86_64-unknown-linux-musl.tar.gz" -C "$TMP/rgseed.$$" rg
rm -rf "$TMP/rgseed.$$"
echo "seeded ripgrep cache: $TMP/vscode-ripgrep-cache-$RG_PKG_VER/ripgrep-$RG_TAG-x86_64-unknown-linux-musl.tar.gz"

# 2) Install. npm_config_unsafe_perm=true: code-server's postinstall.sh refuses to run as root without it.
#    npm_config_yes=true: node-pty's postinstall runs `npx node-gyp ...`, which otherwise aborts
#    ("npx canceled due to missing packages and no YES option").
#    npm_config_nodedir=/usr: node-gyp uses local headers instead of downloading them from nodejs.org.
#    argon2 and kerberos try GitHub prebuilt binaries, fail (ENOTFOUND), and fall back to compiling: fine.
export npm_config_unsafe_perm=true npm_config_yes=true npm_config_nodedir=/usr
npm install --foreground-scripts "code-server@$CS_VERSION"

# 3) Sanity checks
# Not `rg --version | head -1`: under pipefail, rg's "broken pipe" when head exits first fails the run.
rg_version=$("$DEST/node_modules/code-server/lib/vscode/node_modules/@vscode/ripgrep/bin/rg" --version)
echo "${rg_version%%$'\n'*}"
for m in node-pty/build/Release/pty.node @vscode/spdlog/build/Release/spdlog.node native-watchdog/build/Release/watchdog.node kerberos/build/Release/kerberos.node; do
  test -f "$DEST/node_modules/code-server/lib/vscode/node_modules/$m" || { echo "MISSING $m"; exit 1; }
done
XDG_DATA_HOME="$TMP/cs-xdg" XDG_CONFIG_HOME="$TMP/cs-xdg" node "$DEST/node_modules/.bin/code-server" --config /dev/null --version; rm -rf "$TMP/cs-xdg"

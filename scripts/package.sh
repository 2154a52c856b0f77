#!/usr/bin/env bash
# Builds the production bundles and packages the extension as basin.vsix (repo root).
#   scripts/package.sh [OUT.vsix]        (npm run package)
# The vsix holds dist/ (no source maps), media/, examples/, the docs and esbuild for this
# platform (see .vscodeignore), so it is marked with this platform's --target.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-basin.vsix}
t0=$(date +%s)
TARGET=${BASIN_VSIX_TARGET:-$(node -p "process.platform + '-' + process.arch")}
node esbuild.js
[ -f dist/extension.js ] && [ -f dist/worker.js ] || { echo "package: build produced no dist/extension.js or dist/worker.js" >&2; exit 1; }
rm -f "$OUT"
# Dependencies are collected with `npm list --omit=dev`, then .vscodeignore keeps esbuild only.
npx --no-install vsce package --target "$TARGET" --out "$OUT" \
  --allow-missing-repository --no-rewrite-relative-links
echo "package: $OUT ($(du -k "$OUT" | cut -f1) KiB, target $TARGET) in $(( $(date +%s) - t0 ))s"

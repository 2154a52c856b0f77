#!/usr/bin/env bash
# Builds the production bundles and packages the extension as a platform-specific vsix.
#   scripts/package.sh [OUT.vsix]        (npm run package; default basin.vsix)
#   BASIN_VSIX_TARGET=linux-arm64 scripts/package.sh basin-linux-arm64.vsix
# The vsix holds dist/ (no source maps), media/, examples/, the docs, esbuild for the target and
# ONNX Runtime's native binaries for the target only (see .vscodeignore), and is marked with
# that --target. The target defaults to this machine's platform-arch. onnxruntime-node ships
# every platform's binaries, so any machine can package any target's ORT; esbuild's binary is
# this platform's only: for another target install it first, without saving, e.g.
#   npm install --no-save --force @esbuild/linux-arm64@$(node -p "require('esbuild/package.json').version")
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-basin.vsix}
t0=$(date +%s)
TARGET=${BASIN_VSIX_TARGET:-$(node -p "process.platform + '-' + process.arch")}
OS=${TARGET%%-*}
ARCH=${TARGET#*-}
node esbuild.js
[ -f dist/extension.js ] && [ -f dist/worker.js ] || { echo "package: build produced no dist/extension.js or dist/worker.js" >&2; exit 1; }
[ -x "node_modules/@esbuild/$TARGET/bin/esbuild" ] || [ -f "node_modules/@esbuild/$TARGET/esbuild.exe" ] ||
  { echo "package: esbuild's binary for $TARGET is not installed (node_modules/@esbuild/$TARGET); see the comment at the top of $0" >&2; exit 1; }
# The whitelist plus this target's ONNX Runtime binaries, in a temporary ignore file.
IGNORE=$(mktemp .vscodeignore.XXXXXX)
trap 'rm -f "$IGNORE"' EXIT
cp .vscodeignore "$IGNORE"
ORT_BIN=$(ls -d node_modules/onnxruntime-node/bin/napi-v*/"$OS"/"$ARCH" 2>/dev/null | head -1 || true)
if [ -n "$ORT_BIN" ]; then
  echo "!$ORT_BIN/**" >>"$IGNORE"
  ORT_NOTE="onnxruntime $ORT_BIN"
else
  ORT_NOTE="no onnxruntime binaries for $TARGET (the extension computes on TF.js)"
  echo "package: warning: $ORT_NOTE" >&2
fi
rm -f "$OUT"
# Dependencies are collected with `npm list --omit=dev`; the ignore file keeps esbuild and ONNX Runtime only.
npx --no-install vsce package --target "$TARGET" --out "$OUT" --ignoreFile "$IGNORE" \
  --allow-missing-repository --no-rewrite-relative-links
echo "package: $OUT ($(du -k "$OUT" | cut -f1) KiB, target $TARGET, $ORT_NOTE) in $(( $(date +%s) - t0 ))s"

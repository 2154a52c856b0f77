#!/usr/bin/env bash
# The README's main job: Basin's curvature engine end to end on the bundled spiral example
# (a 2-32-32-3 tanh MLP trained on a 3-arm spiral). Writes JSON results to out/example/.
set -euo pipefail
cd "$(dirname "$0")/.."
basin() { node dist/cli.js "$@"; }
out=out/example
mkdir -p "$out"
model=(--model examples/spiral/model.json --data examples/spiral/data.json)
basin info    "${model[@]}" --out "$out/info.json"
echo
basin eigs    "${model[@]}" --k 5 --out "$out/eigs-top.json"
echo
basin eigs    "${model[@]}" --k 3 --which bottom --out "$out/eigs-bottom.json"
echo
basin trace   "${model[@]}" --matvecs 90 --out "$out/trace.json"
echo
basin density "${model[@]}" --steps 60 --runs 3 --out "$out/density.json"
echo
echo "Report: $out/ (info.json, eigs-top.json, eigs-bottom.json, trace.json, density.json)"

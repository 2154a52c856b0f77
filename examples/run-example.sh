#!/usr/bin/env bash
# The README's main job, end to end on the bundled examples; everything lands in out/example/:
#  1. the edge-of-stability example trained with full-batch GD and probed as it trains
#     (lambda_max climbs to 2/lr and hovers there): out/example/eos-run/
#  2. the curvature and landscape commands on the spiral classifier: JSON results.
set -euo pipefail
cd "$(dirname "$0")/.."
basin() { node dist/cli.js "$@"; }
out=out/example
rm -rf "$out"
mkdir -p "$out"
basin train examples/edge-of-stability.basin.ts --trace-every 250 --layers-every 250 --out "$out/eos-run"
echo
basin compare "$out/eos-run"
echo
model=(--model examples/spiral/model.json --data examples/spiral/data.json)
basin info     "${model[@]}" --out "$out/info.json"
echo
basin eigs     "${model[@]}" --k 5 --out "$out/eigs-top.json"
echo
basin eigs     "${model[@]}" --k 3 --which bottom --out "$out/eigs-bottom.json"
echo
basin trace    "${model[@]}" --matvecs 90 --out "$out/trace.json"
echo
basin density  "${model[@]}" --steps 60 --runs 3 --out "$out/density.json"
echo
basin slice    "${model[@]}" --dir eigen,random,gradient --x -0.5:0.5:51 --out "$out/slice.json"
echo
basin surface  "${model[@]}" --x -1:1:41 --out "$out/surface.json" --csv "$out/surface.csv"
echo
basin flatness "${model[@]}" --out "$out/flatness.json"
echo
basin report "$out/eos-run" "$out"/eigs-top.json "$out"/density.json "$out"/slice.json "$out"/surface.json "$out"/flatness.json --out "$out/report.html"
echo
echo "Report: $out/report.html (open it in a browser); the run is in $out/eos-run/, every result as JSON in $out/"


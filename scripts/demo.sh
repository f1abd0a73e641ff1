#!/usr/bin/env bash
# The main demo: check every example, train the two-moons diffusion model briefly, draw its
# diagram and a plot of samples next to held-out data, and print its metrics.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
OUT=runs/ddpm_moons

"$BIN/dtg" check examples/*.dtg
"$BIN/dtg" train examples/ddpm_moons.dtg --out "$OUT" --steps "${DEMO_STEPS:-3000}" --force  # a re-run trains afresh
if command -v dot >/dev/null 2>&1; then
  "$BIN/dtg" render examples/ddpm_moons.dtg -o "$OUT/diagram.png" --view unrolled
  "$BIN/dtg" render examples/ddpm_moons.dtg -o "$OUT/diagram.svg" --view unrolled
else
  "$BIN/dtg" render examples/ddpm_moons.dtg -o "$OUT/diagram.dot" --view unrolled
  "$BIN/dtg" render examples/ddpm_moons.dtg -o "$OUT/diagram.tex" --view unrolled
fi
"$BIN/dtg" sample examples/ddpm_moons.dtg --checkpoint "$OUT/checkpoint.pt" -n 2000 \
  -o "$OUT/samples.npy" --plot "$OUT/samples.png"
"$BIN/dtg" eval examples/ddpm_moons.dtg --checkpoint "$OUT/checkpoint.pt" -n 2000
echo "demo: wrote $OUT/ (checkpoint.pt, metrics.jsonl, diagram, samples.png)"

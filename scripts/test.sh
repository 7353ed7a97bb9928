#!/usr/bin/env bash
# The README's test command: set up (idempotent), then run the default suite
# (everything but the `slow` label). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ctest --test-dir build --output-on-failure -j"${VPTQ_TEST_JOBS:-2}" -LE slow "$@"

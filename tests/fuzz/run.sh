#!/usr/bin/env bash
# Builds the safetensors fuzzer with clang (libFuzzer + ASan + UBSan) in
# build-fuzz/ and runs it over a scratch copy of tests/fuzz/corpus, so the
# checked-in seeds stay as they are.
#   tests/fuzz/run.sh [seconds=180]
# Exits non-zero when the fuzzer finds a crash, sanitizer report, leak or
# timeout. The reproducer lands in build-fuzz/fuzz-artifacts/; add it to
# tests/fuzz/corpus/ (named bad_*, ok_* or as found) and the normal build's
# corpus test replays it from then on.
set -euo pipefail
seconds="${1:-180}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${VPTQ_FUZZ_BUILD_DIR:-$root/build-fuzz}"

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DVPTQ_BUILD_FUZZERS=ON -DVPTQ_BUILD_CUDA=OFF >/dev/null
ninja -C "$build" -j"${VPTQ_JOBS:-2}" safetensors_fuzzer

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$root"/tests/fuzz/corpus/* "$work"/
mkdir -p "$build/fuzz-artifacts"

"$build/tests/fuzz/safetensors_fuzzer" \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
  -dict="$root/tests/fuzz/safetensors.dict" \
  -artifact_prefix="$build/fuzz-artifacts/" -print_final_stats=1 "$work"
echo "fuzz: no crash in ${seconds}s" >&2

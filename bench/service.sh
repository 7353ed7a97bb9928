#!/usr/bin/env bash
# bench/run service: the service's two benchmarks, JSON lines on stdout.
#   {"bench":"service_overhead","ratio":...}   embedded vs coordinator + 1 worker
#   {"bench":"scheduler","shape":"7b"|"70b"|"405b",...}  64 simulated workers
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export VPTQ_SOURCE_DIR="$root" VPTQ_BUILD_DIR="$root/build"
python3 "$root/bench/service_overhead.py" "$@"
"$root/build/bench/service_scheduler_benchmark" --shape all --workers 64 --repeats 7

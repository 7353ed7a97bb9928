#!/usr/bin/env bash
# Writes deploy/base/tokens.env: two different random bearer tokens (64 hex
# characters each) for clients and workers, readable only by you. Refuses to
# overwrite an existing file (delete it first to rotate the tokens).
#   bash deploy/make-tokens.sh
set -euo pipefail
out="$(dirname "$0")/base/tokens.env"
if [ -e "$out" ]; then
  echo "make-tokens: $out exists; remove it first to make new tokens" >&2
  exit 1
fi
token() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
umask 077
{
  echo "VPTQ_CLIENT_TOKEN=$(token)"
  echo "VPTQ_WORKER_TOKEN=$(token)"
} >"$out"
echo "make-tokens: wrote $out" >&2

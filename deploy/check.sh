#!/usr/bin/env bash
# Checks deploy/ and docker/ without a cluster or a Docker engine (ctest
# deploy_check, label unit):
#   1. `kubectl kustomize` renders base, every overlay and monitoring/, with
#      tokens made by make-tokens.sh in a scratch copy (the tree is not
#      touched); tools/check_manifests.py then checks each overlay's output;
#   2. the dashboard is JSON, and the dashboard and alert rules use only the
#      metric names, labels and label values the coordinator exports
#      (tools/check_metrics.py); with promtool installed, every query parses
#      and the alerts pass monitoring/vptq-alerts.test.yaml;
#   3. the Dockerfiles agree with scripts/setup.sh and with themselves
#      (tools/check_images.py).
# Needs bash, python3 with PyYAML, and kubectl for step 1. Exit 0: all good;
# 1: a check failed; 77 (ctest: skipped): a tool is missing, the rest passed.
#   bash deploy/check.sh
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failed=0
missing=()
fail() { echo "deploy check: FAILED: $*" >&2; failed=1; }

if ! python3 -c 'import yaml' 2>/dev/null; then
  echo "deploy check: SKIPPED: python3 with PyYAML is needed (Debian: python3-yaml)" >&2
  exit 77
fi

# 2. Dashboard JSON and metric names.
python3 -m json.tool "$here/monitoring/vptq-dashboard.json" >/dev/null \
  || fail "monitoring/vptq-dashboard.json is not valid JSON"
python3 "$here/tools/check_metrics.py" \
  --source "$repo/coordinator/coordinator_metrics.cc" --source "$repo/common/metrics.cc" \
  --literals-dir "$repo/coordinator" --literals-dir "$repo/common" \
  --dashboard "$here/monitoring/vptq-dashboard.json" \
  --rules "$here/monitoring/vptq-alerts.yaml" --emit-rules "$tmp/dashboard-queries.yaml" \
  || fail "dashboard or rules use metrics the coordinator does not export"
# PromQL syntax of every query, and the alerts' behaviour on test series.
if command -v promtool >/dev/null 2>&1; then
  promtool check rules "$here/monitoring/vptq-alerts.yaml" "$tmp/dashboard-queries.yaml" \
    >/dev/null || fail "promtool check rules (alert rules or dashboard queries)"
  (cd "$here/monitoring" && promtool test rules vptq-alerts.test.yaml) \
    || fail "promtool test rules vptq-alerts.test.yaml"
else
  echo "deploy check: note: promtool not installed (Debian: prometheus); PromQL syntax" \
    "and alert tests not run" >&2
fi

# 3. Images.
python3 "$here/tools/check_images.py" --repo "$repo" || fail "docker/ images"

# 1. Kustomize, in a scratch copy with fresh tokens.
if command -v kubectl >/dev/null 2>&1; then
  cp -r "$here" "$tmp/deploy"
  rm -f "$tmp/deploy/base/tokens.env"
  bash "$tmp/deploy/make-tokens.sh" 2>/dev/null || fail "make-tokens.sh"
  if ! grep -Eq '^VPTQ_CLIENT_TOKEN=[0-9a-f]{64}$' "$tmp/deploy/base/tokens.env" \
    || ! grep -Eq '^VPTQ_WORKER_TOKEN=[0-9a-f]{64}$' "$tmp/deploy/base/tokens.env"; then
    fail "make-tokens.sh did not write two 64-hex-digit tokens"
  fi
  if bash "$tmp/deploy/make-tokens.sh" 2>/dev/null; then
    fail "make-tokens.sh overwrote existing tokens"
  fi
  dirs=(base monitoring)
  for d in "$tmp"/deploy/overlays/*/; do dirs+=("overlays/$(basename "$d")"); done
  for dir in "${dirs[@]}"; do
    out="$tmp/$(echo "$dir" | tr / -).yaml"
    if ! kubectl kustomize "$tmp/deploy/$dir" >"$out" 2>"$out.err"; then
      cat "$out.err" >&2
      fail "kubectl kustomize deploy/$dir"
      continue
    fi
    case "$dir" in
      overlays/*)
        python3 "$here/tools/check_manifests.py" --overlay "$(basename "$dir")" --repo "$repo" "$out" \
          || fail "deploy/$dir manifests"
        ;;
    esac
  done
  # Without tokens the build must fail rather than deploy an empty Secret.
  rm -f "$tmp/deploy/base/tokens.env"
  if kubectl kustomize "$tmp/deploy/overlays/cpu" >/dev/null 2>&1; then
    fail "deploy/overlays/cpu renders without base/tokens.env"
  fi
else
  missing+=(kubectl)
fi

if ((failed)); then
  exit 1
fi
if ((${#missing[@]})); then
  echo "deploy check: SKIPPED kustomize checks: ${missing[*]} not installed; the rest passed" >&2
  exit 77
fi
echo "deploy check: ok (kustomize: base, overlays, monitoring; metrics; images)"

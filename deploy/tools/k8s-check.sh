#!/usr/bin/env bash
# Renders every kustomize overlay, validates the output with kubeconform (strict: unknown
# fields fail; Kubernetes, CloudNativePG and Strimzi schemas from the local cache, never the
# network) and lints every Dockerfile with hadolint. Exits non-zero on any failure.
#
#   bash deploy/tools/k8s-check.sh [DEPLOY_DIR]     (default: this repository's deploy/)
#
# The tools come from deploy/tools/fetch-tools.sh (run first; cached in .cache/tools/, so
# after the first run this works offline). CRM_TOOLS_DIR overrides the cache directory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEPLOY="$(cd "${1:-$ROOT/deploy}" && pwd)"
TOOLS="$(bash "$ROOT/deploy/tools/fetch-tools.sh" | tail -n 1)"
SCHEMAS="$TOOLS/schemas"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

failed=0
fail() { echo "k8s-check: FAIL: $*" >&2; failed=1; }

overlays=()
for kustomization in "$DEPLOY"/k8s/overlays/*/kustomization.yaml; do
  [[ -f "$kustomization" ]] && overlays+=("$(dirname "$kustomization")")
done
((${#overlays[@]} > 0)) || fail "no overlay under $DEPLOY/k8s/overlays"

for overlay in "${overlays[@]}"; do
  name="$(basename "$overlay")"
  echo "== kustomize build k8s/overlays/$name"
  if ! "$TOOLS/bin/kustomize" build "$overlay" >"$OUT/$name.yaml"; then
    fail "kustomize build $name"
    continue
  fi
  echo "== kubeconform k8s/overlays/$name"
  # -strict refuses fields a schema does not know (`replicsa: 2`); a kind without a schema
  # is an error, not a skip (no -ignore-missing-schemas).
  if ! "$TOOLS/bin/kubeconform" -strict -summary -output text \
    -schema-location "$SCHEMAS/kubernetes/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
    -schema-location "$SCHEMAS/crds/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json" \
    "$OUT/$name.yaml"; then
    fail "kubeconform $name"
  fi
done

dockerfiles=()
while IFS= read -r -d '' file; do dockerfiles+=("$file"); done \
  < <(find "$DEPLOY" -type f \( -name Dockerfile -o -name '*.Dockerfile' -o -name 'Dockerfile.*' \) \
    ! -name '*.dockerignore' -print0 | sort -z)
((${#dockerfiles[@]} > 0)) || fail "no Dockerfile under $DEPLOY"
for dockerfile in "${dockerfiles[@]}"; do
  echo "== hadolint ${dockerfile#"$DEPLOY"/}"
  "$TOOLS/bin/hadolint" --failure-threshold warning "$dockerfile" || fail "hadolint $dockerfile"
done

if ((failed)); then
  echo "k8s-check: failed" >&2
  exit 1
fi
echo "k8s-check: ${#overlays[@]} overlay(s) valid, ${#dockerfiles[@]} Dockerfile(s) clean"

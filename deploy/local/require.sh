#!/usr/bin/env bash
# Installs what the local servers need when the machine lacks it: Java 17+ and Maven for
# Kafka (PostgreSQL is installed by postgres.sh itself). Needs root for apt-get; otherwise
# it says what is missing and fails.
set -euo pipefail

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
if [[ -n "${CRM_KAFKA_BOOTSTRAP:-}" ]]; then missing=(); fi
((${#missing[@]} == 0)) && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "require.sh: please install ${missing[*]} (needs root)" >&2
  exit 1
fi
echo "require.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2

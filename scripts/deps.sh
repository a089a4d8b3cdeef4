#!/usr/bin/env bash
# Installs, with apt-get, every Debian package the project builds, runs or tests with.
# Idempotent: packages already present are not fetched again, and apt-get update runs only
# when something is missing. Used by README's commands and by .ci/run.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config clang-format
  libuv1-dev libcurl4-openssl-dev libssl-dev libyajl-dev libsqlite3-dev libexpat1-dev
  # tests
  libcriterion-dev curl python3 python3-botocore python3-boto3 awscli jq
  # a real private registry with htpasswd auth (test_registry_auth.sh, S15)
  docker-registry apache2-utils
  # the real Docker engine and the test image's contents
  docker.io busybox-static
  # packaging and the systemd tests: systemd-analyze, rpmbuild, a Debian root to boot
  systemd rpm debootstrap
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps: run as root (or with sudo) to install packages" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "deps: all ${#PACKAGES[@]} packages present"

#!/usr/bin/env bash
# Installs, with apt-get, the Debian packages the project needs:
#   scripts/deps.sh run    what building and running the daemon needs (README's first
#                          command: the compiler, the libraries, Docker, the aws CLI and a
#                          pager for it)
#   scripts/deps.sh        everything: the above and what the tests, the packaging and the
#                          systemd test need (README's second command, CI)
# Idempotent: packages already present are not fetched again, and apt-get update runs only
# when something is missing.
set -euo pipefail

RUN_PACKAGES=(
  # build
  build-essential cmake pkg-config
  libuv1-dev libcurl4-openssl-dev libssl-dev libyajl-dev libsqlite3-dev libexpat1-dev
  libpcre2-dev # SSM AllowedPattern
  # the real Docker engine and the image scripts/run.sh imports when it starts its own
  docker.io busybox-static
  # the aws CLI, and less: the CLI pages its answers in a terminal
  awscli less curl
)
TEST_PACKAGES=(
  clang-format
  # the compiler cache scripts/test.sh uses: a second run compiles only what changed
  ccache
  libcriterion-dev python3 python3-botocore python3-boto3 jq
  # a real private registry with htpasswd auth (test_registry_auth.sh, S15)
  docker-registry apache2-utils
  # Compose through the agent's Docker socket (test_docker_intake.sh)
  docker-compose
  # packaging and the systemd tests: systemd-analyze, rpmbuild, a Debian root to boot
  systemd rpm debootstrap
  # a three-member etcd cluster on loopback (test_cluster_etcd.sh, issue 23)
  etcd-server etcd-client
)
if [[ ${1-} == run ]]; then
  PACKAGES=("${RUN_PACKAGES[@]}")
else
  PACKAGES=("${RUN_PACKAGES[@]}" "${TEST_PACKAGES[@]}")
fi

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

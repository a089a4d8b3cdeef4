#!/usr/bin/env bash
# Quick start: installs what is missing, builds, and runs the daemon in the foreground on its
# embedded default (SSM, Secrets Manager, KMS, IAM and STS served on loopback; no AWS account).
# Extra arguments go to the daemon (see: build/agent/ecs-secrets-agent --help). Ctrl-C stops it.
#
# Docker: $DOCKER_HOST when it is set (it must answer); else the system's engine
# (/var/run/docker.sock) when it answers; otherwise a private dockerd is started with its own
# data directory (/var/lib/ecs-secrets-agent-docker), apart from the agent's state, and left
# running for the next start.
# The build goes to build/ (ES_RUN_BUILD_DIR to change it); an already configured build
# directory keeps its own settings.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh run

BUILD=${ES_RUN_BUILD_DIR:-build}
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
  # the daemon only: the tests, fuzzers and benchmarks are scripts/test.sh's
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
fi
cmake --build "$BUILD" -j"$(nproc)" --target ecs-secrets-agent >/dev/null
echo "run: built $BUILD/agent/ecs-secrets-agent"

if [[ -n ${DOCKER_HOST:-} ]]; then
  if [[ $DOCKER_HOST != unix://* ]] ||
    ! curl -sf --max-time 2 --unix-socket "${DOCKER_HOST#unix://}" http://localhost/_ping >/dev/null 2>&1; then
    echo "run: DOCKER_HOST=$DOCKER_HOST does not answer (a unix:// socket of a running dockerd is needed)" >&2
    exit 1
  fi
  echo "run: using the Docker engine at DOCKER_HOST=$DOCKER_HOST"
elif curl -sf --max-time 2 --unix-socket /var/run/docker.sock http://localhost/_ping >/dev/null 2>&1; then
  DOCKER_HOST=unix:///var/run/docker.sock
  echo "run: using the system's Docker engine at $DOCKER_HOST"
else
  export ES_TEST_DOCKER_ROOT=/var/lib/ecs-secrets-agent-docker
  echo "run: no Docker engine answers on /var/run/docker.sock; starting a private dockerd in $ES_TEST_DOCKER_ROOT"
  tests/harness/dockerd.sh start
  DOCKER_HOST=unix://$ES_TEST_DOCKER_ROOT/docker.sock
fi
export DOCKER_HOST
exec "$BUILD/agent/ecs-secrets-agent" "$@"

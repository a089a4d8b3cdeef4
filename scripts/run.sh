#!/usr/bin/env bash
# Quick start: installs what is missing, builds, and runs the daemon in the foreground on its
# embedded default (SSM, Secrets Manager, KMS, IAM and STS served on loopback; no AWS account).
# Extra arguments go to the daemon (see: build/agent/ecs-secrets-agent --help). Ctrl-C stops it.
#
# Docker: the system's engine (/var/run/docker.sock) when it answers; otherwise a private
# dockerd is started with its own data directory (/var/lib/ecs-secrets-agent-docker), apart
# from the agent's state, and left running for the next start.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
echo "run: built build/agent/ecs-secrets-agent"

if curl -sf --max-time 2 --unix-socket /var/run/docker.sock http://localhost/_ping >/dev/null 2>&1; then
  DOCKER_HOST=unix:///var/run/docker.sock
  echo "run: using the system's Docker engine at $DOCKER_HOST"
else
  export ES_TEST_DOCKER_ROOT=/var/lib/ecs-secrets-agent-docker
  echo "run: no Docker engine answers on /var/run/docker.sock; starting a private dockerd in $ES_TEST_DOCKER_ROOT"
  tests/harness/dockerd.sh start
  DOCKER_HOST=unix://$ES_TEST_DOCKER_ROOT/docker.sock
fi
export DOCKER_HOST
exec build/agent/ecs-secrets-agent "$@"

#!/usr/bin/env bash
# bench_docker against a private dockerd whose data root is on tmpfs.
#
#   bench/docker_bench.sh [BUILD_DIR] [CYCLES]     (defaults: build-rel, 200)
#
# On a disk, dockerd's create waits for fsyncs and copies the image's files
# (vfs): on the development VM it took 170-410 ms, moving from one minute to
# the next with the disk, and that drift, not the clients, decided the
# client/curl ratio. On tmpfs a create takes about 13 ms and what is left to
# compare is the clients and runc. Needs root (mount). The engine is stopped
# and the tmpfs unmounted at the end unless KEEP=1; BENCH_ROOT moves it
# (default /tmp/es-bench-docker). Extra environment (BENCH_DOCKER_SPLIT=1,
# BENCH_DOCKER_PAIRED=1, ...) passes through to bench_docker.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build-rel}
cycles=${2:-200}
root=${BENCH_ROOT:-/tmp/es-bench-docker}
bin=$build/bench/bench_docker
[ -x "$bin" ] || { echo "docker_bench: no $bin (build a Release tree first: README, Benchmarks)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "docker_bench: needs root to mount a tmpfs" >&2; exit 2; }

mkdir -p "$root"
mounted=0
if ! mountpoint -q "$root"; then
  mount -t tmpfs -o size=2g,mode=0755 tmpfs "$root"
  mounted=1
fi
finish() {
  if [ "${KEEP:-0}" != 1 ]; then
    ES_TEST_DOCKER_ROOT=$root "$here/tests/harness/dockerd.sh" stop >/dev/null 2>&1 || true
    # dockerd leaves its exec root's mounts behind it; then the tmpfs goes
    grep -o " $root/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    if [ "$mounted" = 1 ]; then umount -l "$root" 2>/dev/null || true; fi
  fi
}
trap finish EXIT

ES_TEST_DOCKER_ROOT=$root "$here/tests/harness/dockerd.sh" start
"$bin" "unix://$root/docker.sock" "$cycles"

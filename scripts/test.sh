#!/usr/bin/env bash
# The whole test suite, from nothing: installs what is missing (scripts/deps.sh), builds with
# -Werror and ASan/UBSan, then runs every test through ctest: unit tests, and integration
# tests against a private dockerd (started and stopped by the ctest fixture "dockerd"),
# the real daemon and the real aws CLI.
#
#   scripts/test.sh            # everything
#   scripts/test.sh -L unit    # extra arguments go to ctest
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

BUILD=${ES_BUILD_DIR:-build-test}
# ccache: a machine that built this tree before compiles only what changed, from any clone
# (the paths under the source directory are hashed relative to it; the build directory is not
# hashed, so debug info may name the directory of the clone that first compiled a file)
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=true
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$BUILD" -DWERROR=ON -DSANITIZE=address,undefined \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >/dev/null
cmake --build "$BUILD" -j"$(nproc)"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$BUILD"
# in parallel, two tests a core and one more: most integration tests wait on Docker, on timers,
# on etcd and on the aws CLI's start, not on a core (three a core overloaded a 2-core machine:
# CPU-bound tests such as test_packages' release build timed out). Four lanes of container tests (four engines) run
# beside the unit tests, the fuzz replays and the tests that need no container. The tests that
# share an engine's containers or the package directory hold ctest resource locks
# (tests/*/CMakeLists.txt).
cpu_busy() { # jiffies so far (/proc/stat's first line): busy (user, system, interrupts; not
  # niced work, which another engineer's build on a shared machine may be) and all
  awk '/^cpu /{ print $2 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat
}
read -r busy0 total0 < <(cpu_busy)
rc=0
ctest --output-on-failure -j"$((2 * $(nproc) + 1))" "$@" || rc=$?
# how busy the cores were: the figure that says whether more or fewer tests at once would help
read -r busy1 total1 < <(cpu_busy)
echo "test.sh: cores busy $(((busy1 - busy0) * 100 / (total1 - total0 + 1)))% while ctest ran ($(nproc) cores)"
exit "$rc"

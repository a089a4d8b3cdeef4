#!/usr/bin/env bash
# Builds the .deb and .rpm the way a release does: a separate configure without sanitizers
# (an ASan binary has no place in a hardened unit), prefix /usr, then CPack. Idempotent and
# incremental: the tests that need packages call it, and the second call only re-packs.
#
#   tests/harness/packages.sh [RELEASE...]   # default: 1
#
# Needs ES_SOURCE_DIR and ES_BUILD_DIR (ctest passes them). Everything goes under
# $ES_BUILD_DIR/pkg: the build in pkg/build, the packages in pkg/out (one of each per
# release, e.g. ecs-secrets-agent_0.1.0-2_amd64.deb).
set -euo pipefail
: "${ES_SOURCE_DIR:?}" "${ES_BUILD_DIR:?}"
PKG=$ES_BUILD_DIR/pkg
releases=("$@")
((${#releases[@]})) || releases=(1)

# No -Werror here: this is the build a user makes, and the warning gate is the sanitizer
# build's job (a new compiler's warning must not stop a package).
# ccache as scripts/test.sh uses it (the release objects are cached apart: other flags)
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_BASEDIR=$ES_SOURCE_DIR CCACHE_NOHASHDIR=true
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake -S "$ES_SOURCE_DIR" -B "$PKG/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWERROR=OFF \
  -DSANITIZE= -DBUILD_TESTING=OFF -DBUILD_FUZZERS=OFF -DBUILD_BENCHMARKS=OFF -DCMAKE_INSTALL_PREFIX=/usr \
  "${launcher[@]}" >/dev/null
if ! cmake --build "$PKG/build" -j2 --target ecs-secrets-agent >"$PKG/build.log" 2>&1; then
  echo "packages: the release build failed:" >&2
  tail -40 "$PKG/build.log" >&2
  exit 1
fi
mkdir -p "$PKG/out"
for rel in "${releases[@]}"; do
  for gen in DEB RPM; do
    if ! (cd "$PKG/build" && cpack -G $gen -B "$PKG/out" \
      -D CPACK_DEBIAN_PACKAGE_RELEASE="$rel" -D CPACK_RPM_PACKAGE_RELEASE="$rel") \
      >"$PKG/cpack-$gen.log" 2>&1; then
      echo "packages: cpack -G $gen failed:" >&2
      cat "$PKG/cpack-$gen.log" >&2
      exit 1
    fi
  done
done
rm -rf "$PKG/out/_CPack_Packages"
ls "$PKG"/out/*.deb "$PKG"/out/*.rpm

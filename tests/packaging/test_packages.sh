#!/usr/bin/env bash
# The .deb and .rpm, as built by tests/harness/packages.sh (no sanitizers, prefix /usr):
# the files in their places, agent.conf a conffile / %config(noreplace), the runtime
# dependencies, the maintainer scripts. Installing them under a real systemd is
# tests/integration/test_systemd.sh.
set -euo pipefail
: "${ES_SOURCE_DIR:?}" "${ES_BUILD_DIR:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
"$ES_SOURCE_DIR/tests/harness/packages.sh" 1 >/dev/null
OUT=$ES_BUILD_DIR/pkg/out
deb=$(ls "$OUT"/ecs-secrets-agent_*-1_*.deb)
rpm=$(ls "$OUT"/ecs-secrets-agent-*-1.*.rpm)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

want_files=(
  ./usr/bin/ecs-secrets-agent
  ./usr/lib/systemd/system/ecs-secrets-agent.service
  ./usr/lib/sysusers.d/ecs-secrets-agent.conf
  ./usr/lib/tmpfiles.d/ecs-secrets-agent.conf
  ./etc/ecs-secrets-agent/agent.conf
  ./usr/share/doc/ecs-secrets-agent/agent.conf.example
)

# ---- .deb ----
dpkg-deb -c "$deb" | awk '{print $6}' >"$tmp/deb.list"
for f in "${want_files[@]}"; do
  grep -qx "$f" "$tmp/deb.list" || fail "$deb lacks $f"
done
dpkg-deb -e "$deb" "$tmp/control"
[ "$(cat "$tmp/control/conffiles")" = /etc/ecs-secrets-agent/agent.conf ] ||
  fail "conffiles: $(cat "$tmp/control/conffiles")"
for s in postinst prerm postrm; do
  [ -x "$tmp/control/$s" ] || fail "no executable $s"
  sh -n "$tmp/control/$s" || fail "$s: syntax"
done
grep -q 'systemd-sysusers' "$tmp/control/postinst" || fail "postinst creates no user"
grep -q 'try-restart' "$tmp/control/postinst" || fail "postinst does not restart on upgrade"
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libuv1 libcurl4 libssl3 libyajl2 libsqlite3-0 libexpat1; do
  grep -qE "(^|, )$lib( |,|$)" <<<"$depends" || fail "Depends lacks $lib: $depends"
done
# every shared library the binary links directly (NEEDED) comes from a declared
# dependency (or libc); the libraries' own dependencies are their packages' business
dpkg-deb -x "$deb" "$tmp/root"
bin=$tmp/root/usr/bin/ecs-secrets-agent
ldd "$bin" >"$tmp/ldd" || fail "ldd failed"
! grep -qE 'libasan|libubsan' "$tmp/ldd" || fail "the packaged binary is a sanitizer build"
! grep -q 'not found' "$tmp/ldd" || fail "unresolved libraries: $(cat "$tmp/ldd")"
needed=$(readelf -d "$bin" | sed -nE 's/.*\(NEEDED\).*\[(.*)\]/\1/p')
[ -n "$needed" ] || fail "readelf found no NEEDED entries"
for so in $needed; do
  path=$(awk -v so="$so" '$1 == so && $2 == "=>" {print $3}' "$tmp/ldd")
  [ -n "$path" ] || fail "ldd does not resolve $so"
  owner=$( (dpkg -S "$path" 2>/dev/null || dpkg -S "$(readlink -f "$path")" 2>/dev/null ||
    dpkg -S "/usr$path" 2>/dev/null) | head -1 | cut -d: -f1) || true
  [ -n "$owner" ] || fail "no package owns $path ($so)"
  [ "$owner" = libc6 ] && continue
  grep -qE "(^|, )$owner( |,|$)" <<<"$depends" ||
    fail "$so comes from $owner, which Depends does not name: $depends"
  echo "ok: $so from $owner, declared"
done
grep -q '^ExecStart=/usr/bin/ecs-secrets-agent$' "$tmp/root/usr/lib/systemd/system/ecs-secrets-agent.service" ||
  fail "packaged unit's ExecStart: $(grep ExecStart= "$tmp/root/usr/lib/systemd/system/ecs-secrets-agent.service")"
"$bin" --version | grep -q '^ecs-secrets-agent ' || fail "the packaged binary does not run"
echo "ok: $(basename "$deb"): files, conffiles, scripts, Depends ($depends)"

# ---- .rpm ----
rpm -qpl "$rpm" 2>/dev/null | sed 's#^#.#' >"$tmp/rpm.list"
for f in "${want_files[@]}"; do
  grep -qx "$f" "$tmp/rpm.list" || fail "$rpm lacks $f"
done
[ "$(rpm -qp --configfiles "$rpm" 2>/dev/null)" = /etc/ecs-secrets-agent/agent.conf ] ||
  fail "rpm config files: $(rpm -qp --configfiles "$rpm")"
# %config(noreplace): rpm's file flags show it as "noreplace"
rpm -qp --queryformat '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$rpm" 2>/dev/null |
  grep -qE '^/etc/ecs-secrets-agent/agent.conf c?n' || fail "agent.conf is not noreplace: $(
    rpm -qp --queryformat '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$rpm" 2>/dev/null | grep agent.conf)"
reqs=$(rpm -qp --requires "$rpm" 2>/dev/null)
for r in libuv libcurl openssl-libs yajl sqlite-libs expat systemd; do
  grep -qE "^$r( |$)" <<<"$reqs" || fail "rpm Requires lacks $r: $reqs"
done
scripts=$(rpm -qp --scripts "$rpm" 2>/dev/null)
for s in preinstall postinstall preuninstall postuninstall; do
  grep -q "^$s scriptlet" <<<"$scripts" || fail "rpm has no $s scriptlet"
done
grep -q '^m ecs-secrets-agent docker$' <<<"$scripts" || fail "%pre does not put the user in docker"
echo "ok: $(basename "$rpm"): files, %config(noreplace), Requires, scriptlets"

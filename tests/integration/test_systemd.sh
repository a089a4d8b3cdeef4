#!/usr/bin/env bash
# The service under a real systemd: a Debian 12 root made with debootstrap (kept as a tarball
# in a machine-wide cache, as apt keeps its .debs: see step 2), imported into the test dockerd and booted with
# systemd as PID 1; then the .deb (a release build, tests/harness/packages.sh) goes in with
# dpkg -i and the unit is driven with systemctl:
#   - files, user, modes in place; systemd-analyze verify/security inside;
#   - systemctl start returns once READY=1 arrived: active, STATUS= says what it does;
#   - the process runs as the dedicated user, in the docker group, with no capabilities,
#     no_new_privs and a seccomp filter;
#   - the test dockerd's socket, mounted at /run/docker.sock (root:docker 0660), answers
#     /_ping from inside the unit's sandbox, and does not once the group is taken away;
#   - the watchdog (shortened to 3 s by a drop-in) is fed: still the same process later;
#   - systemctl reload applies the log level and refuses the listen address (journal);
#   - an upgrade to a newer package keeps the edited agent.conf and restarts the agent;
#   - Restart=on-failure brings a killed agent back;
#   - journalctl shows the agent's lines with their priorities; systemctl stop is clean;
#   - dpkg --purge removes it all; then the .rpm (rpm --nodeps: the libraries are Debian's)
#     goes through the same install, start, upgrade-keeps-config and erase.
#
# Env (ctest passes them): ES_TEST_DOCKER_HOST, ES_SOURCE_DIR, ES_BUILD_DIR;
# ES_DEBIAN_MIRROR overrides the mirror debootstrap uses (default: apt's own, from its sources);
# ES_TEST_CACHE_DIR where the Debian root is kept (default /var/cache/ecs-secrets-agent-tests).
set -euo pipefail
: "${ES_TEST_DOCKER_HOST:?}" "${ES_SOURCE_DIR:?}" "${ES_BUILD_DIR:?}"
export DOCKER_HOST=$ES_TEST_DOCKER_HOST
DOCKER_SOCK=${ES_TEST_DOCKER_HOST#unix://}
# the machine's own Debian mirror, as apt is set up to reach it (deb822 .sources or the
# one-line sources.list): the first URI that serves the suite, not a written host name
apt_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /-security/) { print $i; exit } }' "$f"
  done | head -n1
  if [[ -f /etc/apt/sources.list ]]; then
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/ && $i !~ /-security/) { print $i; exit } }' \
      /etc/apt/sources.list | head -n1
  fi
}
MIRROR=${ES_DEBIAN_MIRROR:-$(apt_mirror | head -n1)}
[[ -n $MIRROR ]] || { echo "test_systemd: no Debian mirror in /etc/apt/sources.list(.d); set ES_DEBIAN_MIRROR" >&2; exit 1; }
SUITE=bookworm
# systemd to boot, the agent's runtime libraries (the container has no network for apt), and
# rpm, to run the .rpm's scriptlets under systemd too, and curl, to probe the Docker socket
# from inside the agent's sandbox
INCLUDE=systemd,systemd-sysv,dbus,libuv1,libcurl4,libssl3,libyajl2,libsqlite3-0,libexpat1,rpm,curl
IMAGE=local/es-systemd-test:$$
C=es-systemd-test-$$
UNIT=ecs-secrets-agent.service
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh" # say, fail (no agent of its own: no it_workdir)

# what fail shows: the unit's status and the journal, from the container
it_on_fail() {
  if docker inspect "$C" >/dev/null 2>&1; then
    echo "---- systemctl status / journal in the container ----" >&2
    docker exec "$C" systemctl status "$UNIT" --no-pager -l >&2 || true
    docker exec "$C" journalctl -b --no-pager -n 60 >&2 || true
  fi
}
# the container changes the test dockerd socket's group and mode: put them back afterwards
SOCK_MODE=$(stat -c '%g %a' "$DOCKER_SOCK")
cleanup() {
  docker rm -f "$C" >/dev/null 2>&1 || true
  docker rmi -f "$IMAGE" >/dev/null 2>&1 || true
  chgrp "${SOCK_MODE% *}" "$DOCKER_SOCK" 2>/dev/null || true
  chmod "${SOCK_MODE#* }" "$DOCKER_SOCK" 2>/dev/null || true
}
trap cleanup EXIT
dx() { docker exec "$C" "$@"; }
show() { dx systemctl show -p "$1" --value "$UNIT"; }
# waits until "$@" succeeds, for up to $1 seconds
wait_for() {
  local secs=$1
  shift
  local i
  for ((i = 0; i < secs * 4; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.25
  done
  return 1
}
# grep reads everything (no -q): under pipefail an early exit of grep makes journalctl die of
# SIGPIPE and the pipeline fail although the line is there; the journal may also lag a little
journal_has_now() { dx journalctl -u "$UNIT" --no-pager -o cat "${@:2}" | grep -F -- "$1" >/dev/null; }
journal_has() { wait_for 5 journal_has_now "$@"; }

# ---- 1. the packages (release build, no sanitizers), releases 1 and 2 for the upgrade ----
"$ES_SOURCE_DIR/tests/harness/packages.sh" 1 2 >/dev/null
DEB1=$(ls "$ES_BUILD_DIR"/pkg/out/ecs-secrets-agent_*-1_*.deb)
DEB2=$(ls "$ES_BUILD_DIR"/pkg/out/ecs-secrets-agent_*-2_*.deb)
RPM1=$(ls "$ES_BUILD_DIR"/pkg/out/ecs-secrets-agent-*-1.*.rpm)
RPM2=$(ls "$ES_BUILD_DIR"/pkg/out/ecs-secrets-agent-*-2.*.rpm)
say "packages: $(basename "$DEB1") $(basename "$DEB2")"

# ---- 2. the Debian root: made once per machine and mirror release, kept as a tarball ----
# debootstrap takes 3-8 minutes here (most of it dpkg unpacking and configuring, not the
# download), the same every run. The finished root is kept in a machine-wide cache named by
# what made it: the suite, the package list, and the hash of the mirror's InRelease (a point
# release of the suite makes a new root). Only this test's tarballs are ever removed.
CACHE=${ES_TEST_CACHE_DIR:-/var/cache/ecs-secrets-agent-tests}
mkdir -p "$CACHE"
stamp=$(printf '%s %s' "$SUITE" "$INCLUDE" | sha256sum | cut -c1-16)
release=$(curl -fsS --max-time 30 "$MIRROR/dists/$SUITE/InRelease" | sha256sum | cut -c1-16) || release=
if [[ -n $release ]]; then
  ROOT_TAR=$CACHE/debian-root-$stamp-$release.tar
else
  # the mirror does not answer: the newest root made for this package list, if any
  ROOT_TAR=$(ls -t "$CACHE"/debian-root-"$stamp"-*.tar 2>/dev/null | head -n1) ||
    ROOT_TAR=
  [[ -n $ROOT_TAR ]] || fail "the mirror $MIRROR does not answer and no Debian root is cached in $CACHE"
  say "the mirror does not answer: the cached root $(basename "$ROOT_TAR")"
fi
if [[ ! -f $ROOT_TAR ]]; then
  ROOTDIR=$ES_BUILD_DIR/systemd-root
  say "debootstrap $SUITE into $ROOTDIR (minutes; cached as $ROOT_TAR)"
  rm -rf "$ROOTDIR"
  mkdir -p "$ROOTDIR"
  if ! debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$ROOTDIR/root" "$MIRROR" \
    >"$ROOTDIR/debootstrap.log" 2>&1; then
    tail -20 "$ROOTDIR/debootstrap.log" >&2
    fail "debootstrap failed (log: $ROOTDIR/debootstrap.log)"
  fi
  # written aside and renamed: a run stopped halfway leaves no truncated root behind
  tar -C "$ROOTDIR/root" -cf "$ROOT_TAR.$$" . || fail "could not write $ROOT_TAR"
  mv "$ROOT_TAR.$$" "$ROOT_TAR"
  rm -rf "$ROOTDIR"
  for old in "$CACHE"/debian-root-"$stamp"-*.tar; do
    [[ $old == "$ROOT_TAR" ]] || rm -f "$old"
  done
fi
# ctest's fixture test_systemd_prepare does steps 1 and 2 without holding engine A's lock
# (debootstrap takes minutes from the mirror); the test proper finds them done
if [[ ${1-} == --prepare ]]; then
  say "prepared: the packages and the Debian root"
  exit 0
fi
docker import -c 'CMD ["/sbin/init"]' - "$IMAGE" <"$ROOT_TAR" >/dev/null
say "imported $IMAGE"

# ---- 3. boot it: systemd as PID 1 (--privileged fails here: no CAP_SYS_RESOURCE) ----
docker run -d --name "$C" --cap-add ALL --cap-drop SYS_RESOURCE \
  --security-opt seccomp=unconfined --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
  --tmpfs /run --tmpfs /run/lock --network none -v "$DOCKER_SOCK:/run/docker.sock" \
  "$IMAGE" >/dev/null
state=
for ((i = 0; i < 240; i++)); do
  state=$(dx systemctl is-system-running 2>/dev/null) || true
  case "$state" in running | degraded) break ;; esac
  sleep 0.25
done
if [ "$state" != running ]; then
  dx systemctl --failed --no-pager >&2 || true
  fail "systemd in the container is '$state', not running"
fi
[ "$(dx cat /proc/1/comm)" = systemd ] || fail "PID 1 is not systemd"
say "booted: systemctl is-system-running = $state"

# ---- 4. install release 1 ----
docker cp "$DEB1" "$C:/tmp/agent-1.deb"
docker cp "$DEB2" "$C:/tmp/agent-2.deb"
docker cp "$RPM1" "$C:/tmp/agent-1.rpm"
docker cp "$RPM2" "$C:/tmp/agent-2.rpm"
dx dpkg -i /tmp/agent-1.deb </dev/null >/dev/null || fail "dpkg -i release 1"
dx test -x /usr/bin/ecs-secrets-agent || fail "no /usr/bin/ecs-secrets-agent"
dx systemctl cat "$UNIT" >/dev/null || fail "systemd does not know $UNIT"
dx test -f /usr/lib/sysusers.d/ecs-secrets-agent.conf || fail "no sysusers.d entry"
dx test -f /usr/lib/tmpfiles.d/ecs-secrets-agent.conf || fail "no tmpfiles.d entry"
groups=$(dx id -nG ecs-secrets-agent) || fail "no user ecs-secrets-agent"
[[ " $groups " == *" docker "* ]] || fail "ecs-secrets-agent is not in the docker group: $groups"
got=$(dx stat -c '%a %U %G' /etc/ecs-secrets-agent/agent.conf)
[ "$got" = "640 root ecs-secrets-agent" ] || fail "agent.conf is $got"
got=$(dx stat -c '%a %U %G' /etc/ecs-secrets-agent)
[ "$got" = "750 root ecs-secrets-agent" ] || fail "/etc/ecs-secrets-agent is $got"
got=$(dx stat -c '%a %U' /var/lib/ecs-secrets-agent)
[ "$got" = "700 ecs-secrets-agent" ] || fail "/var/lib/ecs-secrets-agent is $got"
dx dpkg-query -W -f='${Conffiles}\n' ecs-secrets-agent | grep '/etc/ecs-secrets-agent/agent.conf' >/dev/null ||
  fail "agent.conf is not a conffile"
[ "$(show UnitFileState)" = disabled ] || fail "a first install should leave the service off"
out=$(dx systemd-analyze verify "$UNIT" 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify: $out"
exposure=$(dx systemd-analyze security "$UNIT" --no-pager | grep 'Overall exposure') ||
  fail "systemd-analyze security gave no score"
say "installed $(dx dpkg-query -W -f='${Version}' ecs-secrets-agent); in place: binary, unit, user in docker, modes; $exposure"

# ---- 5. start: a watchdog drop-in short enough to watch, a quick restart ----
# READY=1 waits for Docker to answer: the socket as a host's Docker has it (root:docker 0660)
dx chgrp docker /run/docker.sock
dx chmod 0660 /run/docker.sock
dx mkdir -p /etc/systemd/system/$UNIT.d
printf '[Service]\nWatchdogSec=3s\nRestartSec=1s\n' | docker exec -i "$C" \
  sh -c "cat > /etc/systemd/system/$UNIT.d/test.conf"
dx systemctl daemon-reload
dx systemctl start "$UNIT" || fail "systemctl start"
# Type=notify: start returns only after READY=1 (or failure)
[ "$(dx systemctl is-active "$UNIT")" = active ] || fail "not active after start"
[ "$(show SubState)" = running ] || fail "SubState $(show SubState)"
status=$(show StatusText)
[[ "$status" == running:* ]] || fail "STATUS= is '$status'"
[ "$(show WatchdogUSec)" = 3s ] || fail "WatchdogUSec is $(show WatchdogUSec)"
pid=$(show MainPID)
[ "$pid" -gt 1 ] || fail "MainPID $pid"
say "active; STATUS=\"$status\"; main pid $pid"

# the process: our user, in the docker group, no capabilities, no_new_privs, seccomp
pst=$(dx cat /proc/"$pid"/status)
uid=$(dx id -u ecs-secrets-agent)
docker_gid=$(dx getent group docker | cut -d: -f3)
grep -qE "^Uid:\s+$uid\s" <<<"$pst" || fail "runs as $(echo "$pst" | grep ^Uid:), not uid $uid"
[[ " $(grep -E '^Groups:' <<<"$pst" | tr '\t' ' ') " == *" $docker_gid "* ]] || fail "not in docker ($docker_gid): $(echo "$pst" | grep ^Groups:)"
grep -qE '^CapEff:\s+0+$' <<<"$pst" || fail "capabilities: $(echo "$pst" | grep ^CapEff:)"
grep -qE '^CapBnd:\s+0+$' <<<"$pst" || fail "bounding set: $(echo "$pst" | grep ^CapBnd:)"
grep -qE '^NoNewPrivs:\s+1$' <<<"$pst" || fail "no_new_privs not set"
grep -qE '^Seccomp:\s+2$' <<<"$pst" || fail "no seccomp filter"
say "process: uid $uid, docker group, CapEff/CapBnd 0, NoNewPrivs 1, Seccomp 2"

# ---- 5b. the Docker socket through the sandbox: a oneshot copy of the installed unit (same
# user, same hardening) whose ExecStart is curl asking the test dockerd for /_ping ----
probe=es-docker-probe.service
dx sh -c "sed -e 's/^Type=notify/Type=oneshot/' -e '/^WatchdogSec=/d' -e '/^Restart=/d' \
  -e '/^RestartSec=/d' -e '/^ExecReload=/d' -e '/^NotifyAccess=/d' \
  -e 's#^ExecStart=.*#ExecStart=/usr/bin/curl -sS --max-time 5 --unix-socket /var/run/docker.sock http://localhost/_ping#' \
  /usr/lib/systemd/system/$UNIT > /etc/systemd/system/$probe"
dx grep -q '^ProtectSystem=strict' /etc/systemd/system/$probe || fail "probe unit lacks the sandbox"
dx systemctl daemon-reload
dx systemctl start $probe || fail "the sandboxed probe could not reach the Docker socket"
journal_has_probe() { dx journalctl -u $probe --no-pager -o cat | grep -x -- "$1" >/dev/null; }
wait_for 5 journal_has_probe OK || fail "no OK from /_ping in the probe's journal"
# the control: without the group's permission the same sandbox is refused
dx chmod 0600 /run/docker.sock
if dx systemctl start $probe 2>/dev/null; then
  dx chmod 0660 /run/docker.sock
  fail "the probe reached a 0600 root socket: the check proves nothing"
fi
dx chmod 0660 /run/docker.sock
say "Docker socket: /_ping answers OK inside the sandbox (group docker), refused at 0600"

# ---- 6. the watchdog is fed: after more than twice WatchdogSec, the same process ----
sleep 7
[ "$(dx systemctl is-active "$UNIT")" = active ] || fail "not active after 7 s (watchdog?)"
[ "$(show MainPID)" = "$pid" ] || fail "main pid changed from $pid to $(show MainPID): restarted"
[ "$(show NRestarts)" = 0 ] || fail "NRestarts $(show NRestarts)"
! journal_has_now "Watchdog timeout" || fail "the watchdog fired"
say "watchdog fed for 7 s at WatchdogSec=3s: same pid, no restart"

# ---- 7. systemctl reload: the log level applies, the listen address is refused ----
# (another loopback address: one off loopback needs TLS, and without it the whole reload
# is refused as a configuration error; the upgrade in 8 then restarts on 127.0.0.2)
dx sed -i -e 's/^#ECS_LOGLEVEL=.*/ECS_LOGLEVEL=debug/' \
  -e 's/^#ECS_SECRETS_LISTEN=.*/ECS_SECRETS_LISTEN=127.0.0.2:4577/' /etc/ecs-secrets-agent/agent.conf
dx systemctl reload "$UNIT" || fail "systemctl reload"
wait_for 10 journal_has "reload: 1 change applied, 1 refused" || fail "no reload summary in the journal"
journal_has "reload: ECS_LOGLEVEL: info -> debug" || fail "log level not applied"
journal_has "reload: ECS_SECRETS_LISTEN changed (127.0.0.1:4577 -> 127.0.0.2:4577" ||
  fail "listen change not refused"
# priorities: the refusal is a warning, the ready line is not
journal_has "ECS_SECRETS_LISTEN changed" -p warning || fail "the refusal is not a warning"
! journal_has "ready: running" -p warning || fail "the ready line logged as a warning"
wait_for 10 bash -c "[ \"\$(docker exec $C systemctl is-active $UNIT)\" = active ]" ||
  fail "not active after reload"
status=$(show StatusText)
[[ "$status" == *"last reload: 1 applied, 1 need a restart"* ]] || fail "STATUS= after reload: '$status'"
[ "$(show MainPID)" = "$pid" ] || fail "reload restarted the process"
say "reload: log level applied, listen refused; STATUS=\"$status\""

# ---- 8. upgrade to release 2 while running: the edited config stays, the agent restarts ----
dx sed -i 's/^#ECS_CLUSTER=.*/ECS_CLUSTER=edited-cluster/' /etc/ecs-secrets-agent/agent.conf
sum_before=$(dx sha256sum /etc/ecs-secrets-agent/agent.conf)
dx dpkg -i /tmp/agent-2.deb </dev/null >/dev/null || fail "dpkg -i release 2"
[ "$(dx dpkg-query -W -f='${Version}' ecs-secrets-agent)" = 0.1.0-2 ] || fail "not upgraded"
[ "$(dx sha256sum /etc/ecs-secrets-agent/agent.conf)" = "$sum_before" ] || fail "the upgrade changed agent.conf"
got=$(dx stat -c '%a %U %G' /etc/ecs-secrets-agent/agent.conf)
[ "$got" = "640 root ecs-secrets-agent" ] || fail "agent.conf after upgrade is $got"
wait_for 15 bash -c "[ \"\$(docker exec $C systemctl is-active $UNIT)\" = active ]" ||
  fail "not active after the upgrade"
newpid=$(show MainPID)
[ "$newpid" != "$pid" ] || fail "the upgrade did not restart the agent"
status=$(show StatusText)
[[ "$status" == *"cluster edited-cluster"* ]] || fail "the restarted agent did not read the kept config: '$status'"
say "upgrade to 0.1.0-2: agent.conf kept, agent restarted (pid $pid -> $newpid), STATUS=\"$status\""
pid=$newpid

# ---- 9. Restart=on-failure: a killed agent comes back ----
dx systemctl kill -s SIGKILL "$UNIT"
wait_for 15 bash -c "[ \"\$(docker exec $C systemctl show -p NRestarts --value $UNIT)\" = 1 ] &&
  [ \"\$(docker exec $C systemctl is-active $UNIT)\" = active ]" || fail "not restarted after SIGKILL"
[ "$(show MainPID)" != "$pid" ] || fail "same pid after a restart"
say "Restart=on-failure: killed agent back as pid $(show MainPID)"

# ---- 10. stop: clean ----
dx systemctl stop "$UNIT" || fail "systemctl stop"
[ "$(dx systemctl is-active "$UNIT")" = inactive ] || fail "is-active after stop: $(dx systemctl is-active "$UNIT")"
[ "$(show Result)" = success ] || fail "Result=$(show Result)"
[ "$(show ExecMainStatus)" = 0 ] || fail "exit status $(show ExecMainStatus)"
journal_has "SIGTERM received, stopping" || fail "no stop line"
journal_has "stopped" || fail "no 'stopped' line"
! journal_has "open handles" || fail "the loop closed with handles open"
journal_has "ecs-secrets-agent 0.1.0 starting: mode embedded, cluster edited-cluster" || fail "no start line"
echo "---- journalctl -u $UNIT (last lines) ----"
dx journalctl -u "$UNIT" --no-pager -n 12 -o short-precise || true
say "stopped cleanly: inactive, Result=success, exit 0"

# ---- 11. purge: the files, the unit and the state go; the user stays (Debian's way) ----
dx rm -rf /etc/systemd/system/$UNIT.d
dx dpkg --purge ecs-secrets-agent </dev/null >/dev/null || fail "dpkg --purge"
dx test ! -e /usr/bin/ecs-secrets-agent || fail "binary left after purge"
dx test ! -e /etc/ecs-secrets-agent/agent.conf || fail "agent.conf left after purge"
dx test ! -e /var/lib/ecs-secrets-agent || fail "state left after purge"
[ "$(show LoadState)" = not-found ] || fail "unit still loaded after purge: $(show LoadState)"
say "dpkg --purge: binary, config, state and unit gone"

# ---- 12. the .rpm: %pre user, %post modes, start, upgrade keeps config, erase stops ----
dx rpm --initdb 2>/dev/null || true
dx rpm -i --nodeps /tmp/agent-1.rpm >/dev/null 2>&1 || fail "rpm -i: $(dx rpm -i --nodeps /tmp/agent-1.rpm 2>&1)"
dx rpm -q ecs-secrets-agent >/dev/null || fail "rpm does not know the package"
got=$(dx stat -c '%a %U %G' /etc/ecs-secrets-agent/agent.conf)
[ "$got" = "640 root ecs-secrets-agent" ] || fail "rpm: agent.conf is $got"
got=$(dx stat -c '%a %U' /var/lib/ecs-secrets-agent)
[ "$got" = "700 ecs-secrets-agent" ] || fail "rpm: /var/lib/ecs-secrets-agent is $got"
dx systemctl start "$UNIT" || fail "rpm: systemctl start"
[ "$(dx systemctl is-active "$UNIT")" = active ] || fail "rpm: not active"
pid=$(show MainPID)
dx sed -i 's/^#ECS_CLUSTER=.*/ECS_CLUSTER=rpm-cluster/' /etc/ecs-secrets-agent/agent.conf
sum_before=$(dx sha256sum /etc/ecs-secrets-agent/agent.conf)
dx rpm -U --nodeps /tmp/agent-2.rpm >/dev/null 2>&1 || fail "rpm -U: $(dx rpm -U --nodeps /tmp/agent-2.rpm 2>&1)"
[ "$(dx rpm -q --qf '%{RELEASE}' ecs-secrets-agent)" = 2 ] || fail "rpm: not upgraded"
[ "$(dx sha256sum /etc/ecs-secrets-agent/agent.conf)" = "$sum_before" ] || fail "rpm -U changed agent.conf"
wait_for 15 bash -c "[ \"\$(docker exec $C systemctl is-active $UNIT)\" = active ]" ||
  fail "rpm: not active after the upgrade"
[ "$(show MainPID)" != "$pid" ] || fail "rpm -U did not restart the agent"
[[ "$(show StatusText)" == *"cluster rpm-cluster"* ]] || fail "rpm: STATUS=$(show StatusText)"
dx rpm -e ecs-secrets-agent >/dev/null 2>&1 || fail "rpm -e"
[ "$(dx systemctl is-active "$UNIT")" != active ] || fail "rpm -e left the agent running"
dx test ! -e /usr/bin/ecs-secrets-agent || fail "rpm -e left the binary"
say "rpm: installed, started, upgraded with agent.conf kept and a restart, erased"
echo "PASS: test_systemd in $(($(date +%s) - T0)) s"

#!/usr/bin/env bash
# A private Docker engine for the tests (and for README's quick start when the host has none).
#
#   tests/harness/dockerd.sh start   # starts it (or reuses a live one), imports local/busybox
#   tests/harness/dockerd.sh fresh   # start, then no container left (the ctest fixtures);
#                                    # an engine that cannot empty is killed and started again
#   tests/harness/dockerd.sh stop    # stops it, waits for it to exit
#   tests/harness/dockerd.sh status  # exit 0 when it answers /_ping
#   tests/harness/dockerd.sh env     # prints DOCKER_HOST=unix://...
#   DOCKER_HOST=unix:///S tests/harness/dockerd.sh import   # only imports the image there
#
# Everything lives under $ES_TEST_DOCKER_ROOT (default /tmp/es-test-docker): socket, data,
# exec root, pid file and log. No bridge, no iptables: containers run with network mode none.
# The image local/busybox:latest is made from Debian's busybox-static, as no registry is
# reachable here.
set -euo pipefail

ROOT=${ES_TEST_DOCKER_ROOT:-/tmp/es-test-docker}
SOCK=$ROOT/docker.sock
PIDFILE=$ROOT/docker.pid
LOG=$ROOT/dockerd.log
IMAGE=local/busybox:latest

ping_ok() {
  curl -sf --max-time 2 --unix-socket "$SOCK" http://localhost/_ping >/dev/null 2>&1
}

import_busybox() {
  if docker -H "unix://$SOCK" image inspect "$IMAGE" >/dev/null 2>&1; then
    return 0
  fi
  local dir
  dir=$(mktemp -d)
  mkdir -p "$dir/bin" "$dir/tmp" "$dir/etc"
  cp /bin/busybox "$dir/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$dir/bin/$applet"
  done
  echo 'root:x:0:0:root:/:/bin/sh' >"$dir/etc/passwd"
  tar -C "$dir" -c . | docker -H "unix://$SOCK" import \
    -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' - "$IMAGE" >/dev/null
  rm -rf "$dir"
  echo "dockerd: imported $IMAGE"
}

start() {
  mkdir -p "$ROOT"
  if ping_ok; then
    import_busybox
    echo "dockerd: already answering on unix://$SOCK"
    return 0
  fi
  command -v dockerd >/dev/null || { echo "dockerd: not installed (scripts/deps.sh installs docker.io)" >&2; exit 1; }
  rm -f "$SOCK"
  # setsid: the engine must outlive the shell that started it, and not get its signals
  setsid dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs \
    -H "unix://$SOCK" --data-root "$ROOT/data" --exec-root "$ROOT/exec" \
    --pidfile "$PIDFILE" >"$LOG" 2>&1 </dev/null &
  local i
  for i in $(seq 1 120); do
    if ping_ok; then
      import_busybox
      echo "dockerd: answering on unix://$SOCK (pid $(cat "$PIDFILE"))"
      return 0
    fi
    sleep 0.5
  done
  echo "dockerd: did not answer within 60 s; last lines of $LOG:" >&2
  tail -20 "$LOG" >&2 || true
  exit 1
}

stop() {
  [ -f "$PIDFILE" ] || { echo "dockerd: not running"; return 0; }
  local pid
  pid=$(cat "$PIDFILE")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    local i
    for i in $(seq 1 60); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  end_shims
  rm -f "$PIDFILE"
  echo "dockerd: stopped"
}

# Ends what outlives the engine under its exec root: containerd shims and their containers.
# A dockerd that was SIGKILLed (tests/faults/test_dockerd_restart.py does) leaves its shims
# running, each holding a container, and a later stop of the engine that followed does not
# know them (seen: 11 containers of a drill still running after the fixture's stop). Killing
# a container's first process ends its PID namespace, so every process in it goes too.
end_shims() {
  local shim
  for shim in $(pgrep -f -- "$ROOT/exec/containerd" 2>/dev/null || true); do
    pkill -KILL -P "$shim" 2>/dev/null || true
    kill -KILL "$shim" 2>/dev/null || true
  done
}

# Kills the engine and everything it started (containerd, shims, their containers) without
# asking it: for an engine that no longer answers (a wedged dockerd 20.10 held a stopped
# container "running" and hung every call touching it for an hour in one CI run). Its
# mounts under $ROOT go too, so that a new engine starts on the same data.
kill_hard() {
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null || true)
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
  end_shims
  sleep 1
  awk -v r="$ROOT/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -f "$PIDFILE" "$SOCK"
  echo "dockerd: killed the engine at $ROOT (goroutine stacks, if one was asked for: $ROOT/exec)"
}

# The ctest fixtures' start: an engine that holds no container, so that no test meets what an
# earlier run (or a run cut short) left, and an engine wedged by an earlier run is replaced.
fresh() {
  start
  local ids
  if ids=$(timeout 30 docker -H "unix://$SOCK" ps -aq); then
    if [ -z "$ids" ]; then return 0; fi
    # shellcheck disable=SC2086 # one id per word
    if timeout 120 docker -H "unix://$SOCK" rm -f $ids >/dev/null; then
      echo "dockerd: removed $(echo "$ids" | wc -w) containers left by an earlier run"
      return 0
    fi
  fi
  echo "dockerd: the engine at $ROOT did not empty within 150 s: killing it" >&2
  kill -USR1 "$(cat "$PIDFILE")" 2>/dev/null && sleep 2 || true
  kill_hard
  start
  ids=$(timeout 30 docker -H "unix://$SOCK" ps -aq)
  # shellcheck disable=SC2086
  [ -z "$ids" ] || timeout 120 docker -H "unix://$SOCK" rm -f $ids >/dev/null
}

case "${1:-}" in
  start) start ;;
  fresh) fresh ;;
  stop) stop ;;
  status) ping_ok ;;
  env) echo "DOCKER_HOST=unix://$SOCK" ;;
  import)
    [ -n "${DOCKER_HOST:-}" ] && SOCK=${DOCKER_HOST#unix://}
    import_busybox ;;
  *) echo "usage: $0 start|fresh|stop|status|env|import" >&2; exit 2 ;;
esac

#!/bin/sh
# dockerd-ctl.sh start|stop|status - a private dockerd for the Docker client's
# integration tests (stand-in until the project harness tests/harness/dockerd.sh
# lands; same flags). Its directory is $ES_TEST_DOCKERD_DIR (keep it short: the
# socket path must fit a sockaddr_un). `start` also imports local/busybox:latest
# (busybox-static plus symlinks) when missing. Tests get
#   ES_TEST_DOCKER_HOST=unix://$ES_TEST_DOCKERD_DIR/docker.sock
#   ES_TEST_DOCKERD_CTL="/path/to/dockerd-ctl.sh"   (called with stop / start)
set -eu
DIR=${ES_TEST_DOCKERD_DIR:-/tmp/dkh-$(id -u)}
SOCK=$DIR/docker.sock
PIDF=$DIR/docker.pid
DOCKER="docker -H unix://$SOCK"

running() {
    [ -f "$PIDF" ] && kill -0 "$(cat "$PIDF")" 2>/dev/null
}

case "${1:-}" in
start)
    mkdir -p "$DIR/data" "$DIR/exec"
    if ! running; then
        # setsid: dockerd must not die with the test that asked for it
        setsid dockerd --iptables=false --bridge=none --storage-driver=vfs \
            --shutdown-timeout=2 -H "unix://$SOCK" --data-root "$DIR/data" \
            --exec-root "$DIR/exec" --pidfile "$PIDF" >>"$DIR/dockerd.log" 2>&1 </dev/null &
    fi
    i=0
    until $DOCKER version >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -gt 120 ]; then
            echo "dockerd-ctl: dockerd did not come up, see $DIR/dockerd.log" >&2
            exit 1
        fi
        sleep 0.25
    done
    if ! $DOCKER image inspect local/busybox:latest >/dev/null 2>&1; then
        img=$(mktemp -d)
        mkdir -p "$img/bin"
        cp /bin/busybox "$img/bin/busybox"
        for x in sh env sleep echo cat true false ls kill; do ln -s busybox "$img/bin/$x"; done
        tar -C "$img" -c . | $DOCKER import - local/busybox:latest >/dev/null
        rm -rf "$img"
    fi
    ;;
stop)
    if running; then
        pid=$(cat "$PIDF")
        kill "$pid"
        i=0
        while kill -0 "$pid" 2>/dev/null; do
            i=$((i + 1))
            if [ $i -gt 240 ]; then
                echo "dockerd-ctl: dockerd $pid did not stop" >&2
                exit 1
            fi
            sleep 0.25
        done
    fi
    ;;
status)
    running && echo "running pid $(cat "$PIDF") socket $SOCK" || { echo stopped; exit 1; }
    ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac

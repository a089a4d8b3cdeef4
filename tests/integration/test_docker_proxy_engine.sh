#!/usr/bin/env bash
# The agent's Docker socket (ECS_SECRETS_DOCKER_PROXY, issue 19) under what test_docker_proxy.sh
# leaves out, with the real docker CLI:
#   - docker build (the classic builder: a chunked tar context streamed to POST /build, the
#     build's JSON stream back) through the socket gives the same image as built directly;
#     and with BuildKit (Debian's docker.io CLI, DOCKER_BUILDKIT=1: the context goes over a
#     hijacked /session connection) the image holds the same bytes;
#   - docker attach to a running container: its output byte for byte, and detaching leaves
#     it running;
#   - 1,000 clients at once, each on its own connection asking GET /containers/json (what
#     docker ps sends): every one answered 200 with the same list dockerd gives, the socket
#     holding less than 8 MiB of buffers at once;
#   - dockerd stopped and started under the agent: a long poll (docker events) through the
#     socket ends instead of hanging, calls made while dockerd is away fail with the proxy's
#     answer (no hang), and once dockerd is back the same socket serves again without the
#     agent being restarted.
# Holds both of engine A's locks (it stops engine A): tests/CMakeLists.txt ES_ENGINE_RESTART_TESTS.
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST, ES_TEST_DOCKERD_CTL.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

: "${ES_TEST_DOCKERD_CTL:?the dockerd control script (tests/harness/dockerd.sh)}"
it_workdir proxyeng
it_endpoint
PROXY=$WORK/docker.sock
NAME=es-proxyeng-$$
IMAGE=local/busybox:latest
TAG=es-proxyeng-$$
it_cleanup_hook() {
  it_rm_containers "name=$NAME"
  command docker -H "$ES_TEST_DOCKER_HOST" rmi -f "$TAG:proxy" "$TAG:direct" "$TAG:bk-proxy" \
    "$TAG:bk-direct" >/dev/null 2>&1 || true
}

# d ARGS...: the docker CLI through the agent's socket; dk: straight to dockerd
d() { DOCKER_HOST=unix://$PROXY timeout 120 docker "$@"; }
dk() { timeout 120 docker -H "$ES_TEST_DOCKER_HOST" "$@"; }

it_start_agent --docker-proxy "$PROXY"

say "docker build through the socket (classic builder, chunked context)"
mkdir -p "$WORK/ctx"
head -c $((4 * 1024 * 1024)) /dev/urandom >"$WORK/ctx/blob"
want=$(sha256sum <"$WORK/ctx/blob" | cut -c1-64)
cat >"$WORK/ctx/Dockerfile" <<EOF
FROM $IMAGE
COPY blob /blob
RUN sha256sum /blob | cut -c1-64 > /blob.sum
CMD ["cat", "/blob.sum"]
EOF
out=$(DOCKER_BUILDKIT=0 d build -q -t "$TAG:proxy" "$WORK/ctx" 2>&1) || fail "docker build: $out"
eq "$(d run --rm --network none "$TAG:proxy")" "$want" "the built image's checksum of its context"
DOCKER_BUILDKIT=0 dk build -q -t "$TAG:direct" "$WORK/ctx" >/dev/null 2>&1 || fail "docker build directly"
eq "$(dk run --rm --network none "$TAG:direct")" "$want" "the same build made directly"

say "docker build with BuildKit through the socket (Debian's docker.io CLI: /session, /grpc)"
# The CLI first in PATH may be a newer one that needs the buildx plugin for BuildKit; Debian's
# docker.io CLI (20.10) has BuildKit built in: a /session connection upgraded to h2c (hijacked)
# that the daemon's builder pulls the context and the Dockerfile through.
DEB_DOCKER=/usr/bin/docker
[[ -x $DEB_DOCKER ]] || fail "$DEB_DOCKER (Debian's docker.io) is not installed"
bk() { DOCKER_BUILDKIT=1 timeout 180 "$DEB_DOCKER" "$@"; }
hij0=$(curl -sf "$URL/metrics" | awk '$1 == "ecs_agent_docker_socket_hijacked_total" {print $2}')
out=$(DOCKER_HOST=unix://$PROXY bk build --no-cache --network none --progress plain \
  -t "$TAG:bk-proxy" "$WORK/ctx" 2>&1) || fail "docker build (BuildKit) through the socket: $out"
grep -qF "[internal] load build context" <<<"$out" || fail "not a BuildKit build: $out"
grep -qE "transferring context: 4\.[0-9]+MB" <<<"$out" || fail "the context did not go over the session: $out"
eq "$(d run --rm --network none "$TAG:bk-proxy")" "$want" "the BuildKit image's checksum of its context"
hij1=$(curl -sf "$URL/metrics" | awk '$1 == "ecs_agent_docker_socket_hijacked_total" {print $2}')
[[ $hij1 -gt $hij0 ]] || fail "the BuildKit session was not a hijacked connection ($hij0 -> $hij1)"
bk -H "$ES_TEST_DOCKER_HOST" build --no-cache --network none -q -t "$TAG:bk-direct" "$WORK/ctx" \
  >/dev/null 2>&1 || fail "docker build (BuildKit) directly"
eq "$(dk run --rm --network none "$TAG:bk-direct")" "$want" "the same BuildKit build made directly"

say "docker attach: the output byte for byte, detach leaves it running"
# shellcheck disable=SC2016 # expanded by the container's shell
d run -d --network none --name "$NAME-att" "$IMAGE" \
  sh -c 'sleep 2; i=0; while [ $i -lt 5 ]; do printf "tick %d\n" $i; i=$((i+1)); done; sleep 600' >/dev/null
(exec env DOCKER_HOST="unix://$PROXY" docker attach --no-stdin --sig-proxy=false "$NAME-att" \
  >"$WORK/att" 2>&1) &
att=$!
for _ in $(seq 200); do
  [[ $(wc -l <"$WORK/att") -ge 5 ]] && break
  sleep 0.1
done
kill -9 "$att" 2>/dev/null || true
wait "$att" 2>/dev/null || true
out=$(od -An -c <"$WORK/att" | tr -s ' ' | tr -d '\n')
eq "$out" " t i c k 0 \n t i c k 1 \n t i c k 2 \n t i c k 3 \n t i c k 4 \n" "docker attach's output"
eq "$(dk inspect -f '{{.State.Running}}' "$NAME-att")" true "the container after the attach ended"

say "1000 clients at once, one connection each, GET /containers/json"
ver=$(dk version --format '{{.Server.APIVersion}}')
direct=$(curl -sf --unix-socket "${ES_TEST_DOCKER_HOST#unix://}" "http://d/v$ver/containers/json" |
  python3 -c 'import json,sys; print(sorted(c["Id"] for c in json.load(sys.stdin)))')
python3 - "$PROXY" "$ver" "$direct" <<'PY' || fail "1000 concurrent clients"
import asyncio, json, sys
path, ver, want = sys.argv[1], sys.argv[2], sys.argv[3]
N = 1000

async def one(i):
    r, w = await asyncio.open_unix_connection(path)
    w.write(f"GET /v{ver}/containers/json HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n".encode())
    await w.drain()
    data = await r.read()
    w.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1]
    if b"transfer-encoding: chunked" in head.lower():
        out, rest = b"", body
        while True:
            size, _, rest = rest.partition(b"\r\n")
            n = int(size, 16)
            if n == 0:
                break
            out, rest = out + rest[:n], rest[n + 2:]
        body = out
    return status, body

async def main():
    res = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(N)), return_exceptions=True), 120)
    bad = [r for r in res if isinstance(r, Exception) or r[0] != b"200"]
    if bad:
        print(f"{len(bad)} of {N} failed, e.g. {bad[0]!r}", file=sys.stderr)
        sys.exit(1)
    lists = {str(sorted(c["Id"] for c in json.loads(b))) for _, b in res}
    if lists != {want}:
        print(f"answers differ from dockerd's: {len(lists)} distinct", file=sys.stderr)
        sys.exit(1)
    print(f"{N} answered 200 with dockerd's list")

asyncio.run(main())
PY
kill -0 "$PID" || fail "the agent died"

say "dockerd stopped and started under the agent"
(exec env DOCKER_HOST="unix://$PROXY" docker events --format '{{.Action}}' >"$WORK/events" 2>&1) &
ev=$!
sleep 1
"$ES_TEST_DOCKERD_CTL" stop >/dev/null 2>&1
# the long poll ends with dockerd (the proxy closes the client's side when dockerd's goes)
for _ in $(seq 100); do kill -0 "$ev" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$ev" 2>/dev/null; then
  kill -9 "$ev"
  fail "docker events through the socket still open 10 s after dockerd stopped"
fi
wait "$ev" 2>/dev/null || true
t=$SECONDS rc=0
out=$(d ps 2>&1) || rc=$?
[[ $rc -ne 0 && $((SECONDS - t)) -lt 30 ]] || fail "docker ps while dockerd is away: rc $rc after $((SECONDS - t)) s: $out"
say "while dockerd was away: $out"
"$ES_TEST_DOCKERD_CTL" start >/dev/null 2>&1
ok=0
for _ in $(seq 60); do
  if d ps >/dev/null 2>&1; then ok=1 && break; fi
  sleep 0.5
done
eq "$ok" 1 "docker ps through the same socket once dockerd is back"
eq "$(d run --rm --network none "$IMAGE" echo back)" back "docker run through the socket after the restart"
kill -0 "$PID" || fail "the agent died"

it_stop_agent
grep "Docker socket: " "$LOG" | tail -2
# what the socket held at once, the 1000 clients included: each small read is kept in a chunk
# of its size (it was 64 MiB, a 64 KiB read chunk per connection)
held=$(grep -o "at most [0-9]* bytes held" "$LOG" | tail -1 | grep -o "[0-9]*")
[[ -n $held && $held -lt $((8 * 1024 * 1024)) ]] || fail "the socket held $held bytes at once"
say "PASS"

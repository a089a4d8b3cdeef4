#!/usr/bin/env bash
# docker_proxy.sh - the agent's Docker socket (ECS_SECRETS_DOCKER_PROXY) beside dockerd's own
# (issue 19), with the real docker CLI:
#   1. `docker run --rm --network none local/busybox:latest true` through the proxy and
#      directly, alternating which goes first, PAIRS pairs: medians, p90s, the median ratio;
#   2. a 1 GiB stream: `docker cp` of a 1 GiB file into a created container and back out,
#      through the proxy and directly, alternating, CP_ROUNDS rounds: the times, their ratio,
#      and the agent's resident memory (VmRSS) before and after and its peak (VmHWM);
#   3. a launch with secrets (labels ecs-secrets.execution-role and one
#      ecs-secrets.secret.DB from an SSM SecureString of the embedded store) against a plain
#      `docker run`, both through the proxy, alternating, PAIRS pairs: the added time;
#   4. a big output stream: `docker run` of a container writing OUT_MIB MiB to its stdout
#      (the attach stream, a hijacked connection) through the proxy and directly,
#      alternating, CP_ROUNDS rounds: the times, their ratio, the agent's RSS as in 2.
# Figures only: not a test. Prints the load average before and after.
#
# Usage: bench/docker_proxy.sh [BUILD_DIR] [PAIRS]    (defaults: build-rel, 15)
# Env: ES_TEST_DOCKER_ROOT (/tmp/es-bench-docker): the private dockerd (tests/harness/dockerd.sh),
#      started if it does not answer and then stopped at the end; CP_ROUNDS (2); CP_MIB (1024);
#      OUT_MIB (1024); PARTS ("1 2 3 4"): which of the four to run.
# The machine this runs on may be shared: the figures are indicative only, and the load
# average printed before and after says how quiet it was.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build-rel}
PAIRS=${2:-15}
CP_ROUNDS=${CP_ROUNDS:-2}
CP_MIB=${CP_MIB:-1024}
OUT_MIB=${OUT_MIB:-1024}
PARTS=" ${PARTS:-1 2 3 4} "
AGENT=$BUILD/agent/ecs-secrets-agent
IMAGE=local/busybox:latest
[[ -x $AGENT ]] || {
  echo "missing $AGENT: cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF && cmake --build build-rel -j2" >&2
  exit 1
}
export ES_TEST_DOCKER_ROOT=${ES_TEST_DOCKER_ROOT:-/tmp/es-bench-docker}
DIRECT=unix://$ES_TEST_DOCKER_ROOT/docker.sock
STARTED=
if ! "$SRC/tests/harness/dockerd.sh" status; then
  "$SRC/tests/harness/dockerd.sh" start >/dev/null
  STARTED=1
fi

WORK=$(mktemp -d /tmp/es-bench-proxy-XXXXXX)
chmod 700 "$WORK"
STATE=$WORK/state
mkdir -m 700 "$STATE"
PROXY=$WORK/docker.sock
LOG=$WORK/agent.log
PID=
cleanup() {
  if [[ -n $PID ]] && kill -TERM "$PID" 2>/dev/null; then wait "$PID" 2>/dev/null || true; fi
  docker -H "$DIRECT" ps -aq --filter label=es-bench-proxy | xargs -r docker -H "$DIRECT" rm -f >/dev/null 2>&1 || true
  rm -rf "$WORK"
  if [[ -n $STARTED ]]; then "$SRC/tests/harness/dockerd.sh" stop >/dev/null || true; fi
}
trap cleanup EXIT

PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$AGENT" --mode embedded --state-dir "$STATE" --listen "127.0.0.1:$PORT" \
  --docker-host "$DIRECT" --docker-proxy "$PROXY" >"$LOG" 2>&1 &
PID=$!
for _ in $(seq 1 600); do
  grep -q "ready: " "$LOG" && break
  kill -0 "$PID" 2>/dev/null || { cat "$LOG" >&2; exit 1; }
  sleep 0.1
done
[[ -S $PROXY ]] || { echo "no proxy socket $PROXY" >&2; tail "$LOG" >&2; exit 1; }
VIA=unix://$PROXY

now() { date +%s%N; }
rss_kib() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$PID/status"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
# cpu_ms: the agent's user+system CPU so far, in ms
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print int(($14 + $15) * 1000 / hz)}' "/proc/$PID/stat"; }
# stats NAME FILE: median and p90 (nearest rank) of FILE's numbers (ms)
stats() {
  sort -n "$2" | awk -v n="$1" '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2;
    p=int(0.9*NR+0.999); printf "%s: median %.1f ms, p90 %.1f ms (%d runs)\n", n, m, a[p], NR}'
}
median() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
# timed HOST ARGS...: runs docker -H HOST ARGS quietly, prints the milliseconds it took
timed() {
  local h=$1 t0
  shift
  t0=$(now)
  docker -H "$h" "$@" >/dev/null
  echo $((($(now) - t0) / 1000)) | awk '{printf "%.3f\n", $1/1000}'
}

echo "docker_proxy: load average $(load) at the start; $(nproc) CPUs"
docker -H "$VIA" run --rm --network none "$IMAGE" true # warm-up, both paths
docker -H "$DIRECT" run --rm --network none "$IMAGE" true

if [[ $PARTS == *" 1 "* ]]; then
echo "1. docker run --rm --network none $IMAGE true, $PAIRS pairs alternating"
: >"$WORK/run-proxy"
: >"$WORK/run-direct"
: >"$WORK/run-ratio"
for ((i = 0; i < PAIRS; i++)); do
  if ((i % 2 == 0)); then
    p=$(timed "$VIA" run --rm --network none "$IMAGE" true)
    d=$(timed "$DIRECT" run --rm --network none "$IMAGE" true)
  else
    d=$(timed "$DIRECT" run --rm --network none "$IMAGE" true)
    p=$(timed "$VIA" run --rm --network none "$IMAGE" true)
  fi
  echo "$p" >>"$WORK/run-proxy"
  echo "$d" >>"$WORK/run-direct"
  awk -v p="$p" -v d="$d" 'BEGIN {print p/d}' >>"$WORK/run-ratio"
done
stats "   through the proxy" "$WORK/run-proxy"
stats "   directly         " "$WORK/run-direct"
echo "   ratio of the medians $(awk -v p="$(median "$WORK/run-proxy")" -v d="$(median "$WORK/run-direct")" 'BEGIN {printf "%.3f", p/d}'), median of the per-pair ratios $(median "$WORK/run-ratio")  (load $(load))"

fi

if [[ $PARTS == *" 2 "* ]]; then
echo "2. docker cp of a $CP_MIB MiB file in and out of a created container, $CP_ROUNDS rounds alternating"
head -c "$((CP_MIB << 20))" /dev/urandom >"$WORK/big"
SUM=$(sha256sum <"$WORK/big" | cut -d' ' -f1)
RSS0=$(rss_kib VmRSS)
HWM0=$(rss_kib VmHWM)
: >"$WORK/cp-proxy"
: >"$WORK/cp-direct"
: >"$WORK/cp-proxy.cpu"
: >"$WORK/cp-direct.cpu"
# cp_round HOST FILE: one copy in and one out through HOST; appends in and out ms to FILE
cp_round() {
  local h=$1 c tin tout
  c=$(docker -H "$h" create --label es-bench-proxy=1 --network none "$IMAGE" true)
  local cpu0
  cpu0=$(cpu_ms)
  tin=$(timed "$h" cp "$WORK/big" "$c:/big")
  rm -f "$WORK/out"
  tout=$(timed "$h" cp "$c:/big" "$WORK/out")
  echo $(($(cpu_ms) - cpu0)) >>"$2.cpu"
  [[ $(sha256sum <"$WORK/out" | cut -d' ' -f1) == "$SUM" ]] || { echo "cp through $h: bytes differ" >&2; exit 1; }
  docker -H "$DIRECT" rm -f "$c" >/dev/null
  echo "$tin $tout" >>"$2"
}
for ((i = 0; i < CP_ROUNDS; i++)); do
  if ((i % 2 == 0)); then
    cp_round "$VIA" "$WORK/cp-proxy"
    cp_round "$DIRECT" "$WORK/cp-direct"
  else
    cp_round "$DIRECT" "$WORK/cp-direct"
    cp_round "$VIA" "$WORK/cp-proxy"
  fi
done
RSS1=$(rss_kib VmRSS)
HWM1=$(rss_kib VmHWM)
sum_ms() { awk '{s += $1 + $2} END {printf "%.1f", s}' "$1"; }
awk '{printf "   through the proxy: in %.1f ms, out %.1f ms\n", $1, $2}' "$WORK/cp-proxy"
awk '{printf "   directly:          in %.1f ms, out %.1f ms\n", $1, $2}' "$WORK/cp-direct"
echo "   total through the proxy $(sum_ms "$WORK/cp-proxy") ms, directly $(sum_ms "$WORK/cp-direct") ms: ratio $(awk -v p="$(sum_ms "$WORK/cp-proxy")" -v d="$(sum_ms "$WORK/cp-direct")" 'BEGIN {printf "%.3f", p/d}')"
echo "   the agent's CPU during the copies: through the proxy $(paste -sd+ "$WORK/cp-proxy.cpu" | bc) ms, while the direct ones ran $(paste -sd+ "$WORK/cp-direct.cpu" | bc) ms"
echo "   agent VmRSS $RSS0 kB before, $RSS1 kB after: growth $((RSS1 - RSS0)) kB; VmHWM $HWM0 -> $HWM1 kB: peak growth $((HWM1 - HWM0)) kB (load $(load))"
rm -f "$WORK/big" "$WORK/out"
fi

if [[ $PARTS == *" 3 "* ]]; then

echo "3. a launch with a secret (SSM SecureString through the intake) against a plain one, both through the proxy, $PAIRS pairs alternating"
export AWS_SHARED_CREDENTIALS_FILE=$STATE/aws-credentials AWS_CONFIG_FILE=$STATE/aws-config AWS_PAGER='' AWS_EC2_METADATA_DISABLED=true
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_REGION AWS_DEFAULT_REGION || true
awsl() { /usr/bin/aws --profile ecs-secrets-agent --endpoint-url "http://127.0.0.1:$PORT" --output text "$@"; }
awsl ssm put-parameter --name /bench/proxy/db --type SecureString --value "bench-$RANDOM$RANDOM" >/dev/null
ROLE=$(awsl iam create-role --role-name bench-proxy-exec --query Role.Arn --assume-role-policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}')
awsl iam put-role-policy --role-name bench-proxy-exec --policy-name read --policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:GetParameters","kms:Decrypt"],"Resource":"*"}]}'
SECRET=(--label "ecs-secrets.execution-role=$ROLE" --label ecs-secrets.secret.DB=/bench/proxy/db)
out=$(docker -H "$VIA" run --rm --network none "${SECRET[@]}" "$IMAGE" sh -c 'test -n "$DB" && echo ok')
[[ $out == ok ]] || { echo "the secret launch did not get its value: $out" >&2; tail "$LOG" >&2; exit 1; }
: >"$WORK/sec-secret"
: >"$WORK/sec-plain"
for ((i = 0; i < PAIRS; i++)); do
  if ((i % 2 == 0)); then
    s=$(timed "$VIA" run --rm --network none "${SECRET[@]}" "$IMAGE" true)
    p=$(timed "$VIA" run --rm --network none "$IMAGE" true)
  else
    p=$(timed "$VIA" run --rm --network none "$IMAGE" true)
    s=$(timed "$VIA" run --rm --network none "${SECRET[@]}" "$IMAGE" true)
  fi
  echo "$s" >>"$WORK/sec-secret"
  echo "$p" >>"$WORK/sec-plain"
done
stats "   with a secret" "$WORK/sec-secret"
stats "   plain        " "$WORK/sec-plain"
echo "   added: $(awk -v s="$(median "$WORK/sec-secret")" -v p="$(median "$WORK/sec-plain")" 'BEGIN {printf "%.1f ms (medians)", s-p}')"
fi
if [[ $PARTS == *" 4 "* ]]; then
echo "4. docker run writing $OUT_MIB MiB to its stdout (the attach stream), $CP_ROUNDS rounds alternating"
RSS0=$(rss_kib VmRSS)
HWM0=$(rss_kib VmHWM)
: >"$WORK/out-proxy"
: >"$WORK/out-direct"
: >"$WORK/out-proxy.cpu"
: >"$WORK/out-direct.cpu"
# out_round HOST FILE: one run through HOST, its output counted; appends the ms to FILE
out_round() {
  local h=$1 t0 n cpu0
  cpu0=$(cpu_ms)
  t0=$(now)
  n=$(docker -H "$h" run --rm --network none --label es-bench-proxy=1 "$IMAGE" \
    head -c "$((OUT_MIB << 20))" /dev/zero | wc -c)
  echo $((($(now) - t0) / 1000)) | awk '{printf "%.3f\n", $1/1000}' >>"$2"
  echo $(($(cpu_ms) - cpu0)) >>"$2.cpu"
  [[ $n == $((OUT_MIB << 20)) ]] || { echo "run through $h: $n bytes, not $((OUT_MIB << 20))" >&2; exit 1; }
}
for ((i = 0; i < CP_ROUNDS; i++)); do
  if ((i % 2 == 0)); then
    out_round "$VIA" "$WORK/out-proxy"
    out_round "$DIRECT" "$WORK/out-direct"
  else
    out_round "$DIRECT" "$WORK/out-direct"
    out_round "$VIA" "$WORK/out-proxy"
  fi
done
RSS1=$(rss_kib VmRSS)
HWM1=$(rss_kib VmHWM)
sum1() { awk '{s += $1} END {printf "%.1f", s}' "$1"; }
echo "   through the proxy: $(paste -sd' ' "$WORK/out-proxy") ms; directly: $(paste -sd' ' "$WORK/out-direct") ms"
echo "   total through the proxy $(sum1 "$WORK/out-proxy") ms, directly $(sum1 "$WORK/out-direct") ms: ratio $(awk -v p="$(sum1 "$WORK/out-proxy")" -v d="$(sum1 "$WORK/out-direct")" 'BEGIN {printf "%.3f", p/d}')"
echo "   the agent's CPU during the runs: through the proxy $(paste -sd+ "$WORK/out-proxy.cpu" | bc) ms, while the direct ones ran $(paste -sd+ "$WORK/out-direct.cpu" | bc) ms"
echo "   agent VmRSS $RSS0 kB before, $RSS1 kB after: growth $((RSS1 - RSS0)) kB; VmHWM $HWM0 -> $HWM1 kB: peak growth $((HWM1 - HWM0)) kB (load $(load))"
fi
echo "docker_proxy: load average $(load) at the end"

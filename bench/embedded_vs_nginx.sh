#!/usr/bin/env bash
# embedded_vs_nginx.sh - the embedded store's GetParameters rate beside nginx (issue 5).
#
# What it measures, in one run on loopback:
#   1. the daemon (a Release build) answering a signed GetParameters of 10 SecureString names
#      WithDecryption over keep-alive: one request signed once with botocore and replayed by
#      wrk (the signature stays valid for the +-15 minutes the store accepts);
#   2. nginx (Debian's nginx-light) serving a static file of the same size as that answer,
#      keep-alive, no access log, one worker (the daemon answers from one loop thread);
#   3. the ratio of the two rates, each side's p99, and the goals (issue 22: >= 100 % of nginx's
#      rate and p99 <= nginx's p99 + 0.5 ms; issue 5's: >= 50 % of nginx's rate,
#      p99 <= 2 ms), per run and as medians; the CPU per request of the daemon, nginx and wrk
#      itself (/usr/bin/time, when installed);
#   4. PutParameter SecureString with durable commits (bench_put_parameter through the
#      project's AWS client), one call in flight and several.
# Figures only: this is not a test (shared machine, noisy).
#
# Usage: bench/embedded_vs_nginx.sh [BUILD_DIR]   (default build-rel)
#   BENCH_AGENT_B=PATH: a second ecs-secrets-agent binary (an older build, say), set up the same
#   way on its own state directory and measured in every run right after the first: A, B, nginx,
#   A, B, nginx... (on a shared, noisy machine only figures taken side by side compare; the
#   medians of B and the ratio A/B are printed too).
# Env: WRK_THREADS (1), WRK_CONNS (16, as issue 22 measures), WRK_SECONDS (10), NGINX_WORKERS (1), PUTS (2000),
#      BENCH_RUNS (3: the pair of measured runs is repeated, medians printed),
#      ES_BENCH_DOCKER_ROOT (/tmp/es-bench-docker): the daemon is ready only once Docker answers;
#      a private dockerd is started there (tests/harness/dockerd.sh) if none answers, and stopped
#      at the end; BENCH_PERF=FILE: `perf record -g` of the daemon during its wrk run into FILE
#      (the daemon's figures then carry perf's overhead); BENCH_PERF_CALLGRAPH (fp; dwarf for libraries
#      built without frame pointers); BENCH_SYSCALLS=1: after the runs, the system calls per
#      request of the daemon and of nginx, each under `strace -c -f` for a 3 s wrk run of its own;
#      BENCH_PIN=1: the servers (the daemons, nginx's master and workers) on the last CPU and wrk
#      on the first (taskset), the same for every side: the scheduler then neither moves them nor
#      runs wrk beside a server on one core while the other idles (its wake-affine placements
#      made single runs here swing by a third); off by default, as every earlier figure was taken.
#
# The replayed request (its Authorization header) is written to a 0600 Lua file in a 0700
# temporary directory for wrk, and removed at exit; it is signed with the throwaway
# administrator key of a throwaway store.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build-rel}
AGENT=$BUILD/agent/ecs-secrets-agent
PUTBENCH=$BUILD/bench/bench_put_parameter
THREADS=${WRK_THREADS:-1}
CONNS=${WRK_CONNS:-16}
SECS=${WRK_SECONDS:-10}
NGX_WORKERS=${NGINX_WORKERS:-1}
PUTS=${PUTS:-2000}
RUNS=${BENCH_RUNS:-3}
AGENT_B=${BENCH_AGENT_B:-}
# BENCH_PIN: SERVER_CPU and CLIENT_CPU prefixes (empty unless asked for and there are two CPUs)
SERVER_CPU=() CLIENT_CPU=()
if [[ ${BENCH_PIN:-} == 1 ]] && (($(nproc) >= 2)) && command -v taskset >/dev/null; then
  SERVER_CPU=(taskset -c "$(($(nproc) - 1))")
  CLIENT_CPU=(taskset -c 0)
fi
for f in "$AGENT" "$PUTBENCH" ${AGENT_B:+"$AGENT_B"}; do
  [[ -x $f ]] || {
    echo "missing $f: cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF && cmake --build build-rel -j2" >&2
    exit 1
  }
done
grep -q 'CMAKE_BUILD_TYPE:STRING=Release' "$BUILD/CMakeCache.txt" 2>/dev/null ||
  echo "warning: $BUILD is not a Release build; figures will be pessimistic" >&2
grep -q 'SANITIZE:STRING=.\+' "$BUILD/CMakeCache.txt" 2>/dev/null &&
  echo "warning: $BUILD has sanitizers on; figures will be pessimistic" >&2

# A benchmark installs its own tools (they are not test dependencies).
if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
  echo "installing wrk and nginx-light (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk nginx-light >/dev/null
fi

DOCKER_ROOT=${ES_BENCH_DOCKER_ROOT:-/tmp/es-bench-docker}
DOCKERD_STARTED=
if ! ES_TEST_DOCKER_ROOT=$DOCKER_ROOT "$SRC/tests/harness/dockerd.sh" status >/dev/null 2>&1; then
  ES_TEST_DOCKER_ROOT=$DOCKER_ROOT "$SRC/tests/harness/dockerd.sh" start >/dev/null
  DOCKERD_STARTED=1
fi

WORK=$(mktemp -d /tmp/es-bench-nginx-XXXXXX)
chmod 700 "$WORK"
STATE=$WORK/a/state
mkdir -m 700 "$WORK/a" "$WORK/b" "$STATE" "$WORK/b/state" "$WORK/www"
AGENT_PID= AGENT_B_PID= NGX_PID=
cleanup() {
  [[ -n $AGENT_PID ]] && kill -TERM "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null || true
  [[ -n ${SETUP_PID:-} ]] && kill -TERM "$SETUP_PID" 2>/dev/null && wait "$SETUP_PID" 2>/dev/null || true
  [[ -n $AGENT_B_PID ]] && kill -TERM "$AGENT_B_PID" 2>/dev/null && wait "$AGENT_B_PID" 2>/dev/null || true
  [[ -n $NGX_PID ]] && kill -QUIT "$NGX_PID" 2>/dev/null && wait "$NGX_PID" 2>/dev/null || true
  rm -rf "$WORK"
  [[ -n $DOCKERD_STARTED ]] && ES_TEST_DOCKER_ROOT=$DOCKER_ROOT "$SRC/tests/harness/dockerd.sh" stop >/dev/null || true
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NPORT=$(free_port)
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE \
  AWS_REGION AWS_DEFAULT_REGION AWS_ENDPOINT_URL || true
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER= AWS_MAX_ATTEMPTS=1 no_proxy=127.0.0.1,localhost

# setup_agent BINARY DIR: starts BINARY on DIR/state and a free port, stores the 10 parameters,
# writes DIR/get.lua (the signed request) and DIR/answer.json (its answer's sizes); sets
# SETUP_PID and SETUP_URL (a function in a pipeline or $(...) could not start a background
# process this shell waits for).
setup_agent() {
  local bin=$1 dir=$2 port i
  local state=$dir/state
  port=$(free_port)
  SETUP_URL=http://127.0.0.1:$port
  "${SERVER_CPU[@]}" "$bin" --state-dir "$state" --listen "127.0.0.1:$port" --region us-east-1 --log-level notice \
    --docker-host "unix://$DOCKER_ROOT/docker.sock" \
    >"$dir/agent.log" 2>&1 &
  SETUP_PID=$!
  for ((i = 0; i < 300; i++)); do
    grep -q "ready: " "$dir/agent.log" && break
    kill -0 "$SETUP_PID" 2>/dev/null || { cat "$dir/agent.log" >&2; exit 1; }
    sleep 0.1
  done
  grep -q "ready: " "$dir/agent.log" || { echo "the agent did not become ready" >&2; exit 1; }

  # 10 SecureString parameters (alias/aws/ssm), values of 32 characters
  NAMES=()
  for i in $(seq -w 1 10); do
    NAMES+=("/bench/db/secret$i")
    AWS_SHARED_CREDENTIALS_FILE=$state/aws-credentials AWS_CONFIG_FILE=$state/aws-config \
      /usr/bin/aws --profile ecs-secrets-agent --endpoint-url "$SETUP_URL" ssm put-parameter \
      --name "/bench/db/secret$i" --type SecureString --value "value-$i-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
      --output text >/dev/null
  done

  # one signed GetParameters request, sent once here (to check it and measure the answer) and
  # written as a wrk script
  PYTHONPATH="$SRC/bench" /usr/bin/python3 - "$SETUP_URL" "$state/aws-credentials" "$dir/get.lua" "$dir/answer.json" "${NAMES[@]}" <<'PYEOF'
import http.client, json, os, sys
from signed_get_parameters import signed_get_parameters
url, credfile, lua, answer, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
host, body, headers = signed_get_parameters(url, credfile, names)
c = http.client.HTTPConnection(host)
c.request("POST", "/", body=body, headers=headers)
r = c.getresponse()
data = r.read()
if r.status != 200:
    sys.exit("GetParameters answered %d" % r.status)
doc = json.loads(data)
if len(doc["Parameters"]) != 10 or doc["InvalidParameters"] or \
        not all(p["Value"].startswith("value-") for p in doc["Parameters"]):
    sys.exit("GetParameters: not the 10 decrypted values")
head = sum(len(k) + len(v) + 4 for k, v in r.getheaders()) + len("HTTP/1.1 200 OK\r\n\r\n")
with open(answer, "w") as f:
    f.write("%d %d\n" % (len(data), head))
fd = os.open(lua, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as f:
    f.write("wrk.method = \"POST\"\n")
    f.write("wrk.body = %s\n" % json.dumps(body))
    for k, v in headers.items():
        f.write("wrk.headers[%s] = %s\n" % (json.dumps(k), json.dumps(v)))
PYEOF
}
setup_agent "$AGENT" "$WORK/a"
AGENT_PID=$SETUP_PID URL=$SETUP_URL
export AWS_SHARED_CREDENTIALS_FILE=$STATE/aws-credentials AWS_CONFIG_FILE=$STATE/aws-config
if [[ -n $AGENT_B ]]; then
  setup_agent "$AGENT_B" "$WORK/b"
  AGENT_B_PID=$SETUP_PID URL_B=$SETUP_URL
  cmp -s "$WORK/a/answer.json" "$WORK/b/answer.json" || echo "warning: A and B answer different sizes" >&2
fi
read -r BODY_BYTES HEAD_BYTES <"$WORK/a/answer.json"

# nginx: a static file of the same size, keep-alive, no logging, NGX_WORKERS worker(s)
head -c "$BODY_BYTES" /dev/zero | tr '\0' 'x' >"$WORK/www/answer.json"
cat >"$WORK/nginx.conf" <<EOF
daemon off;
user root;
worker_processes $NGX_WORKERS;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  keepalive_timeout 65;
  keepalive_requests 100000000;
  default_type application/json;
  client_body_temp_path $WORK/ngx-body;
  proxy_temp_path $WORK/ngx-proxy;
  fastcgi_temp_path $WORK/ngx-fastcgi;
  server {
    listen 127.0.0.1:$NPORT;
    root $WORK/www;
  }
}
EOF
"${SERVER_CPU[@]}" nginx -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" &
NGX_PID=$!
for ((i = 0; i < 50; i++)); do
  curl -sf --noproxy '*' -o /dev/null "http://127.0.0.1:$NPORT/answer.json" && break
  sleep 0.1
done
NGX_BYTES=$(curl -sf --noproxy '*' "http://127.0.0.1:$NPORT/answer.json" | wc -c)
NGX_HEAD=$(curl -sf --noproxy '*' -D - -o /dev/null "http://127.0.0.1:$NPORT/answer.json" | wc -c)

# CPU time (clock ticks) of the given processes: "user+system user"
ticks() {
  local p
  for p in "$@"; do cat "/proc/$p/stat"; done | awk '{ t += $14 + $15; u += $14 } END { print t, u }'
}
HZ=$(getconf CLK_TCK)
# run_wrk "PIDS" wrk-args...: prints "rate p50_ms p99_ms non2xx errors cpu_us_per_request
# wrk_cpu_us_per_request user_cpu_us_per_request" (wrk's 0 without /usr/bin/time). The user
# part is what the server's own code costs; the rest is the kernel's (its socket calls and the
# loopback delivery to wrk, which the sender pays).
run_wrk() {
  local pids=$1 out t0 t1 u0 u1 timer=()
  shift
  [[ -x /usr/bin/time ]] && timer=(/usr/bin/time -f '%U %S' -o "$WORK/wrk-time")
  echo "0 0" >"$WORK/wrk-time"
  read -r t0 u0 < <(ticks $pids)
  out=$("${timer[@]}" "${CLIENT_CPU[@]}" wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency "$@")
  read -r t1 u1 < <(ticks $pids)
  echo "$out" >>"$WORK/wrk.txt"
  awk -v cpu=$((t1 - t0)) -v usr=$((u1 - u0)) -v hz="$HZ" -v wrkcpu="$(awk '{print $1 + $2}' "$WORK/wrk-time")" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec:/ { rate = $2 }
    /^ +99%/ { p99 = ms($2) }
    /^ +50%/ { p50 = ms($2) }
    /Non-2xx or 3xx responses:/ { bad = $NF }
    / requests in / { n = $1 }
    /Socket errors:/ { err = $0; sub(/.*Socket errors: /, "", err); gsub(/ /, "", err) }
    END { printf "%s %.3f %.3f %d %s %.1f %.1f %.1f\n", rate, p50, p99, bad + 0, (err == "" ? "none" : err),
          (n ? cpu / hz * 1e6 / n : 0), (n ? wrkcpu * 1e6 / n : 0), (n ? usr / hz * 1e6 / n : 0) }' <<<"$out"
}

echo "== issue 5: embedded store vs nginx, loopback, wrk -t$THREADS -c$CONNS -d${SECS}s, $(nproc) cores, $RUNS run(s)"
echo "daemon answer: $BODY_BYTES body bytes + $HEAD_BYTES head bytes; nginx file: $NGX_BYTES body bytes + $NGX_HEAD head bytes"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other processes share these cores)"
((${#SERVER_CPU[@]})) && echo "pinned (BENCH_PIN=1): servers on CPU ${SERVER_CPU[2]}, wrk on CPU ${CLIENT_CPU[2]}"
# short warm-ups, then the measured runs back to back, daemon then nginx, RUNS times
wrk -t1 -c"$CONNS" -d2s -s "$WORK/a/get.lua" "$URL/" >/dev/null
[[ -n $AGENT_B ]] && wrk -t1 -c"$CONNS" -d2s -s "$WORK/b/get.lua" "$URL_B/" >/dev/null
wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$NPORT/answer.json" >/dev/null
NGX_WORKER_PIDS=$(ps -o pid= --ppid "$NGX_PID" | tr '\n' ' ')
NGX_PIDS="$NGX_PID $NGX_WORKER_PIDS"
# one core against one core: the daemon answers from one loop thread, nginx from its workers
echo "nginx worker processes running: $(wc -w <<<"$NGX_WORKER_PIDS") (asked: $NGX_WORKERS); daemon threads: $(ls /proc/"$AGENT_PID"/task | wc -l) (the loop serves every request; libuv's pool, when started, only matches AllowedPatterns)"
[[ -n $AGENT_B ]] && echo "A: $AGENT; B: $AGENT_B"
FMT='%-58s %9s req/s  p50 %6.3f ms  p99 %7.3f ms  CPU %6.1f us/req (user %5.1f; wrk %5.1f)  non-2xx %s  socket errors %s\n'
NGX_NAME="nginx $(nginx -v 2>&1 | sed 's/.*\///'): static file, same size, $NGX_WORKERS worker"
: >"$WORK/runs"
BAD=0
for ((run = 1; run <= RUNS; run++)); do
  PERF_PID=
  if [[ -n ${BENCH_PERF:-} && $run == 1 ]]; then
    perf record -q --call-graph "${BENCH_PERF_CALLGRAPH:-fp}" -p "$AGENT_PID" -o "$BENCH_PERF" -- sleep "$SECS" >/dev/null 2>&1 &
    PERF_PID=$!
  fi
  read -r A_RATE A_P50 A_P99 A_BAD A_ERR A_CPU A_WRK A_USR < <(run_wrk "$AGENT_PID" -s "$WORK/a/get.lua" "$URL/")
  [[ -n $PERF_PID ]] && wait "$PERF_PID" || true
  if [[ -n $AGENT_B ]]; then
    read -r B_RATE B_P50 B_P99 B_BAD B_ERR B_CPU B_WRK B_USR < <(run_wrk "$AGENT_B_PID" -s "$WORK/b/get.lua" "$URL_B/")
    BAD=$((BAD + B_BAD))
  fi
  read -r N_RATE N_P50 N_P99 N_BAD N_ERR N_CPU N_WRK N_USR < <(run_wrk "$NGX_PIDS" "http://127.0.0.1:$NPORT/answer.json")
  echo "-- run $run"
  printf "$FMT" "daemon: signed GetParameters x10 SecureString, decrypted" "$A_RATE" "$A_P50" "$A_P99" \
    "$A_CPU" "$A_USR" "$A_WRK" "$A_BAD" "$A_ERR"
  [[ -n $AGENT_B ]] && printf "$FMT" "daemon B: the same request" "$B_RATE" "$B_P50" "$B_P99" \
    "$B_CPU" "$B_USR" "$B_WRK" "$B_BAD" "$B_ERR"
  printf "$FMT" "$NGX_NAME" "$N_RATE" "$N_P50" "$N_P99" "$N_CPU" "$N_USR" "$N_WRK" "$N_BAD" "$N_ERR"
  awk -v a="$A_RATE" -v n="$N_RATE" -v b="${B_RATE:-}" 'BEGIN { printf "ratio daemon/nginx: %.1f %%", a / n * 100
    if (b != "") printf "; B/nginx %.1f %%; A/B %.1f %%", b / n * 100, a / b * 100; printf "\n" }'
  echo "$A_RATE $N_RATE $A_P99 $N_P99 $A_CPU $N_CPU $A_WRK $N_WRK ${B_RATE:-0} ${B_P99:-0} ${B_CPU:-0} $A_USR $N_USR" >>"$WORK/runs"
  BAD=$((BAD + A_BAD))
done
# medians over the runs (the ratio is taken within each run, which cancels some of the noise)
awk '
  function median(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  { n++; ratio[n] = $1 / $2 * 100; ap99[n] = $3; np99[n] = $4; acpu[n] = $5; ncpu[n] = $6; awrk[n] = $7; nwrk[n] = $8
    arate[n] = $1; nrate[n] = $2; brate[n] = $9; bp99[n] = $10; bcpu[n] = $11; ausr[n] = $12; nusr[n] = $13; aker[n] = $5 - $12; nker[n] = $6 - $13; if ($9 > 0) { bratio[n] = $9 / $2 * 100; ab[n] = $1 / $9 * 100 } }
  END {
    r = median(ratio, n); p = median(ap99, n)
    printf "== median of %d run(s): daemon %.0f req/s, nginx %.0f req/s\n", n, median(arate, n), median(nrate, n)
    np = median(np99, n)
    printf "ratio daemon/nginx: %.1f %% of the rate (issue 5 >= 50 %%: %s; issue 22 >= 100 %%: %s); daemon p99 %.3f ms (issue 5 <= 2 ms: %s; issue 22 <= nginx p99 + 0.5 ms: %s); nginx p99 %.3f ms\n",
           r, (r >= 50 ? "met" : "MISSED"), (r >= 100 ? "met" : "MISSED"), p, (p <= 2 ? "met" : "MISSED"),
           (p <= np + 0.5 ? "met" : "MISSED"), np
    ac = median(acpu, n); nc = median(ncpu, n)
    printf "CPU per request: daemon %.1f us, nginx %.1f us (%.1f %%: the rate ratio a CPU-bound run on idle cores would approach)\n",
           ac, nc, (ac > 0 ? nc / ac * 100 : 0)
    au = median(ausr, n); nu = median(nusr, n)
    printf "of which user space (the server'"'"'s own code): daemon %.1f us, nginx %.1f us; the kernel'"'"'s: daemon %.1f us, nginx %.1f us\n",
           au, nu, median(aker, n), median(nker, n)
    if (brate[1] > 0)
      printf "B: %.0f req/s, %.1f %% of nginx, p99 %.3f ms, CPU %.1f us per request; A/B rate %.1f %% (medians)\n",
             median(brate, n), median(bratio, n), median(bp99, n), median(bcpu, n), median(ab, n)
    aw = median(awrk, n); nw = median(nwrk, n)
    if (aw > 0)
      printf "wrk itself: %.1f us per daemon request, %.1f us per nginx request; with wrk on one core and the server on the other, CPU alone would cap nginx near %.0f req/s (%s) and the daemon near %.0f req/s (%s)\n",
             aw, nw, 1e6 / (nw > nc ? nw : nc), (nw > nc ? "wrk" : "nginx"), 1e6 / (ac > aw ? ac : aw), (aw > ac ? "wrk" : "the daemon")
  }' "$WORK/runs"
[[ $BAD == 0 ]] || echo "WARNING: the daemon answered $BAD non-2xx responses (the signature may have expired)"

# system calls per request, each side under `strace -c -f` for one short wrk run of its own (the
# strace slows the server: these runs give counts, not rates)
syscalls_per_request() { # NAME PIDS wrk-args...
  local name=$1 pids=$2 spids=() p out n
  shift 2
  for p in $pids; do
    strace -c -f -q -o "$WORK/strace.$p" -p "$p" &
    spids+=($!)
  done
  sleep 0.5
  out=$(wrk -t"$THREADS" -c"$CONNS" -d3s "$@")
  kill -INT "${spids[@]}" 2>/dev/null || true
  wait "${spids[@]}" 2>/dev/null || true
  n=$(awk '/ requests in / { print $1 }' <<<"$out")
  cat "$WORK"/strace.* | awk -v n="$n" -v who="$name" '
    $1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" { calls[$NF] += $4 } # % seconds usecs/call calls [errors] syscall
    END { printf "%s, %d requests:", who, n; for (c in calls) if (calls[c] / n >= 0.01) printf " %s %.2f", c, calls[c] / n; printf " (per request)\n" }'
  rm -f "$WORK"/strace.*
}
if [[ -n ${BENCH_SYSCALLS:-} ]] && command -v strace >/dev/null; then
  echo "== system calls per request (strace -c -f, wrk -t$THREADS -c$CONNS -d3s each)"
  syscalls_per_request "daemon" "$AGENT_PID" -s "$WORK/a/get.lua" "$URL/"
  syscalls_per_request "nginx" "$NGX_PIDS" "http://127.0.0.1:$NPORT/answer.json"
fi

echo "== PutParameter SecureString, durable commits (synchronous=FULL, WAL), through the project's AWS client"
"$PUTBENCH" "$URL" "$STATE/aws-credentials" "$PUTS"

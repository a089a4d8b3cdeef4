#!/usr/bin/env bash
# store_callgrind.sh - instructions per request of the embedded store's GetParameters of 10
# SecureStrings WithDecryption (issue 22), counted by callgrind: deterministic where wall-clock
# rates on this shared, noisy machine are not (perf has no hardware counters in this VM).
#
# The daemon (a Release build) runs under `valgrind --tool=callgrind` counting only inside the
# listener's conn_feed (parse, verify, dispatch, answer: the request's work, not the loop's
# waiting); 10 SecureStrings are stored with the aws CLI, one request is signed with botocore and
# sent WARM + REQUESTS times over one
# keep-alive connection by a Python client, one at a time; the warm-up requests (first loads into the caches) are excluded by zeroing the
# counters after them (callgrind_control -z). Prints the instructions per request and the
# callgrind_annotate top entries (exclusive and inclusive).
#
# REQUEST=describe-tasks counts instead the ECS DescribeTasks of one RUNNING task (a task
# definition with the 10 parameters as secrets, run once on the private dockerd): what each of
# a polling client's calls costs the daemon (bench/client_view.py's describe_tasks every 2 ms).
#
# Usage: bench/store_callgrind.sh [BUILD_DIR]   (default build-rel)
# Env: REQUEST (get-parameters | describe-tasks), REQUESTS (2000), WARM (50), OUT (a directory to keep callgrind.out and the annotations;
#      default a temporary one, removed), ES_BENCH_DOCKER_ROOT (/tmp/es-bench-docker: the daemon
#      is ready only once Docker answers; a private dockerd is started there if none answers),
#      TOGGLE (the function whose calls are counted, callgrind's --toggle-collect; default
#      'conn_feed*'; 'uv_run' counts the whole loop a request: the read, the answer's write,
#      timers and the poll's bookkeeping too).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build-rel}
AGENT=$BUILD/agent/ecs-secrets-agent
REQUESTS=${REQUESTS:-2000}
REQUEST=${REQUEST:-get-parameters}
case $REQUEST in get-parameters | describe-tasks) ;; *) echo "REQUEST: get-parameters or describe-tasks" >&2; exit 2 ;; esac
WARM=${WARM:-50}
[[ -x $AGENT ]] || { echo "missing $AGENT" >&2; exit 1; }
for t in valgrind callgrind_control callgrind_annotate; do
  command -v $t >/dev/null || { echo "needs $t" >&2; exit 1; }
done

DOCKER_ROOT=${ES_BENCH_DOCKER_ROOT:-/tmp/es-bench-docker}
DOCKERD_STARTED=
if ! ES_TEST_DOCKER_ROOT=$DOCKER_ROOT "$SRC/tests/harness/dockerd.sh" status >/dev/null 2>&1; then
  ES_TEST_DOCKER_ROOT=$DOCKER_ROOT "$SRC/tests/harness/dockerd.sh" start >/dev/null
  DOCKERD_STARTED=1
fi
WORK=$(mktemp -d /tmp/es-callgrind-XXXXXX)
chmod 700 "$WORK"
mkdir -m 700 "$WORK/state"
KEEP=${OUT:-}
PID=
cleanup() {
  [[ -n $PID ]] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  if [[ $REQUEST == describe-tasks ]]; then
    docker -H "unix://$DOCKER_ROOT/docker.sock" ps -aq --filter label=com.amazonaws.ecs.task-definition-family=bench-describe |
      xargs -r docker -H "unix://$DOCKER_ROOT/docker.sock" rm -f >/dev/null 2>&1 || true
  fi
  if [[ -n $KEEP ]]; then
    mkdir -p "$KEEP" && cp "$WORK"/callgrind.out* "$WORK"/*.txt "$KEEP"/ 2>/dev/null || true
  fi
  rm -rf "$WORK"
  [[ -n $DOCKERD_STARTED ]] && ES_TEST_DOCKER_ROOT=$DOCKER_ROOT "$SRC/tests/harness/dockerd.sh" stop >/dev/null || true
}
trap cleanup EXIT
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE \
  AWS_REGION AWS_DEFAULT_REGION AWS_ENDPOINT_URL || true
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER= AWS_MAX_ATTEMPTS=1 no_proxy=127.0.0.1,localhost

PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" --toggle-collect="${TOGGLE:-conn_feed*}" \
  "$AGENT" --state-dir "$WORK/state" --listen "127.0.0.1:$PORT" --region us-east-1 \
  --log-level notice --docker-host "unix://$DOCKER_ROOT/docker.sock" >"$WORK/agent.log" 2>&1 &
PID=$!
for ((i = 0; i < 1200; i++)); do
  grep -q "ready: " "$WORK/agent.log" && break
  kill -0 "$PID" 2>/dev/null || { cat "$WORK/agent.log" >&2; exit 1; }
  sleep 0.1
done
grep -q "ready: " "$WORK/agent.log" || { echo "the agent did not become ready" >&2; exit 1; }
export AWS_SHARED_CREDENTIALS_FILE=$WORK/state/aws-credentials AWS_CONFIG_FILE=$WORK/state/aws-config
NAMES=()
for i in $(seq -w 1 10); do
  NAMES+=("/bench/db/secret$i")
  /usr/bin/aws --profile ecs-secrets-agent --endpoint-url "$URL" ssm put-parameter \
    --name "/bench/db/secret$i" --type SecureString \
    --value "value-$i-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" --output text >/dev/null
done
TARGET=("${NAMES[@]}")
if [[ $REQUEST == describe-tasks ]]; then
  # one task RUNNING, its definition's 10 secrets from those parameters (the role may read them)
  ACCT=123456789012
  ROLE=arn:aws:iam::$ACCT:role/bench-exec
  /usr/bin/aws --profile ecs-secrets-agent --endpoint-url "$URL" iam create-role --role-name bench-exec \
    --assume-role-policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}' >/dev/null
  /usr/bin/aws --profile ecs-secrets-agent --endpoint-url "$URL" iam put-role-policy --role-name bench-exec \
    --policy-name read --policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:GetParameters","kms:Decrypt"],"Resource":"*"}]}' >/dev/null
  SECRETS=$(printf '%s\n' "${NAMES[@]}" | awk -v a=$ACCT '{ printf "%s{\"name\":\"SECRET_%d\",\"valueFrom\":\"arn:aws:ssm:us-east-1:%s:parameter%s\"}", (NR > 1 ? "," : ""), NR - 1, a, $0 }')
  /usr/bin/aws --profile ecs-secrets-agent --endpoint-url "$URL" --region us-east-1 ecs register-task-definition \
    --family bench-describe --execution-role-arn "$ROLE" --network-mode none \
    --container-definitions "[{\"name\":\"app\",\"image\":\"local/busybox:latest\",\"command\":[\"sleep\",\"3600\"],\"memory\":32,\"essential\":true,\"secrets\":[$SECRETS]}]" >/dev/null
  TASK=$(/usr/bin/aws --profile ecs-secrets-agent --endpoint-url "$URL" --region us-east-1 ecs run-task \
    --cluster default --task-definition bench-describe --query 'tasks[0].taskArn' --output text)
  for ((i = 0; i < 600; i++)); do
    st=$(/usr/bin/aws --profile ecs-secrets-agent --endpoint-url "$URL" --region us-east-1 ecs describe-tasks \
      --cluster default --tasks "$TASK" --query 'tasks[0].lastStatus' --output text)
    [[ $st == RUNNING || $st == STOPPED ]] && break
    sleep 0.5
  done
  [[ $st == RUNNING ]] || { echo "the task is $st, not RUNNING" >&2; tail -20 "$WORK/agent.log" >&2; exit 1; }
  TARGET=("$TASK")
fi
# the client: one request signed with botocore, sent COUNT times over one keep-alive connection,
# each answer read whole and checked (200, 10 values or the task RUNNING) before the next is sent
cat >"$WORK/client.py" <<'PYEOF'
import http.client, sys
from signed_get_parameters import signed_get_parameters, signed_describe_tasks
mode, url, credfile, count, args = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:]
if mode == "describe-tasks":
    host, body, headers = signed_describe_tasks(url, credfile, "default", args)
    good = lambda d: d.count(b'"lastStatus":"RUNNING"') >= 1
else:
    host, body, headers = signed_get_parameters(url, credfile, args)
    good = lambda d: d.count(b'"Value":"value-') == 10
c = http.client.HTTPConnection(host)
bad = 0
for _ in range(count):
    c.request("POST", "/", body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    if r.status != 200 or not good(data):
        bad += 1
print("answers %d bad %d" % (count, bad))
PYEOF
# WARM requests, zero the counters, REQUESTS requests, dump
PYTHONPATH="$SRC/bench" /usr/bin/python3 "$WORK/client.py" "$REQUEST" "$URL" "$WORK/state/aws-credentials" "$WARM" "${TARGET[@]}" | sed 's/^/warm-up: /'
callgrind_control -z "$PID" >/dev/null
PYTHONPATH="$SRC/bench" /usr/bin/python3 "$WORK/client.py" "$REQUEST" "$URL" "$WORK/state/aws-credentials" "$REQUESTS" "${TARGET[@]}" >"$WORK/client.txt"
sed 's/^/measured: /' "$WORK/client.txt"
read -r _ ANSWERS _ BAD <"$WORK/client.txt"
[[ $BAD == 0 ]] || echo "WARNING: $BAD answers were not 200 with the expected content" >&2
callgrind_control -d "$PID" >/dev/null
sleep 1
F=$(ls -t "$WORK"/callgrind.out* | head -1)
TOTAL=$(callgrind_annotate "$F" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }')
echo "instructions: $TOTAL over $ANSWERS requests = $((TOTAL / ANSWERS)) per request"
callgrind_annotate --inclusive=no --threshold=100 "$F" 2>/dev/null >"$WORK/exclusive.txt"
callgrind_annotate --inclusive=yes --threshold=100 "$F" 2>/dev/null >"$WORK/inclusive.txt"
callgrind_annotate --tree=caller --inclusive=yes --threshold=100 "$F" 2>/dev/null >"$WORK/callers.txt"
echo "-- top exclusive (instructions per request, function)"
# (with --toggle-collect, the frames above conn_feed carry the whole total: left out)
awk -v n="$ANSWERS" -v t="$TOTAL" '/^-+$/ { sec++ } sec >= 4 && $1 ~ /^[0-9,]+$/ && $2 ~ /\(/ { v = $1; gsub(",", "", v); if (v + 0 < t + 0) printf "%8.0f  %s\n", v / n, $0 }' "$WORK/exclusive.txt" |
  sed -E 's/  [0-9,]+ \([ 0-9.%]+\)  / /; s/ \[[^]]*\]$//' | head -${TOP:-30}
echo "-- top inclusive"
awk -v n="$ANSWERS" '/^-+$/ { sec++ } sec >= 4 && $1 ~ /^[0-9,]+$/ && $2 ~ /\(/ { gsub(",", "", $1); printf "%8.0f  %s\n", $1 / n, $0 }' "$WORK/inclusive.txt" |
  sed -E 's/  [0-9,]+ \([ 0-9.%]+\)  / /; s/ \[[^]]*\]$//' | head -${TOP:-40}

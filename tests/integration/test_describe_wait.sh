#!/usr/bin/env bash
# Issue 22: DescribeTasks held while a task it names moves (agent/api/task_waits.h), with the
# real daemon, the real dockerd and boto3 (the aws CLI's second of start-up would hide the
# timings asked here):
#   - a launch polled in a tight loop: the question that sees RUNNING is answered at the
#     move; the client asks a handful of times, not hundreds;
#   - a RUNNING task's question is never held (the held counters do not move);
#   - a stopping task (its container ignores SIGTERM, stopTimeout 60) that does not move: the
#     question waits the whole ECS_SECRETS_DESCRIBE_WAIT_MS (>= 9.9 s of 10 s: long, so that
#     the move below surely comes while its question is held, even on a loaded machine), answered
#     "wait_over"; the same question held (the /metrics gauge says 1) is answered when the
#     container is killed under it, with the task's new lastStatus ("task_moved");
#   - the agent stopped (SIGTERM) while a question is held: the question is answered (HTTP
#     200, the task in it), and the agent exits 0;
#   - ECS_SECRETS_DESCRIBE_WAIT_MS=0: nothing is held.
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir describe-wait
CLUSTER=dwait-$$ # our containers carry it as a label (removed on exit)
it_endpoint
it_aws_env "$STATE"
export URL CLUSTER

it_start_agent --mode embedded --cluster "$CLUSTER" --describe-wait-ms 10000

# metric NAME-AND-LABELS: its value on /metrics (0 when absent)
metric() {
  curl -sf --max-time 5 "$URL/metrics" | awk -v k="$1" '$1 == k { print $2; found = 1 } END { if (!found) print 0 }'
}
held() { metric "ecs_agent_describe_tasks_held"; }
moved() { metric 'ecs_agent_describe_tasks_held_total{ended="task_moved"}'; }
over() { metric 'ecs_agent_describe_tasks_held_total{ended="wait_over"}'; }
num_eq() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 == b + 0) }' || fail "$3: got $1, want $2"; }
num_ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }' || fail "$3: got $1, want >= $2"; }

# py SCRIPT ARGS...: boto3 with the CLI's profile against $URL
py() {
  /usr/bin/python3 - "$@" <<PY
import json, os, sys, time
import boto3, botocore.config
ecs = boto3.Session(profile_name="ecs-secrets-agent").client(
    "ecs", endpoint_url=os.environ["URL"],
    config=botocore.config.Config(retries={"max_attempts": 1}, read_timeout=30))
C = os.environ["CLUSTER"]
$(cat)
PY
}

# timed_describe TASK: one DescribeTasks of TASK; prints its seconds and the task's lastStatus
timed_describe() {
  py "$1" <<'EOF'
s = time.monotonic()
t = ecs.describe_tasks(cluster=C, tasks=[sys.argv[1]])["tasks"][0]
print("%.3f" % (time.monotonic() - s), t["lastStatus"])
EOF
}

TD=$(jq -cn '{family: "dwait", networkMode: "none", containerDefinitions: [{name: "app",
  image: "local/busybox:latest", essential: true, stopTimeout: 60,
  command: ["sh", "-c", "trap \"\" TERM; while :; do sleep 1; done"]}]}')
aws ecs register-task-definition --cli-input-json "$TD" >/dev/null

say "a launch polled every 2 ms: the question that sees RUNNING answered at the move, few questions"
read -r T1 CALLS ELAPSED LAST_S <<<"$(py <<'EOF'
t0 = time.monotonic()
arn = ecs.run_task(cluster=C, taskDefinition="dwait")["tasks"][0]["taskArn"]
calls, last = 0, 0.0
while True:
    s = time.monotonic()
    st = ecs.describe_tasks(cluster=C, tasks=[arn])["tasks"][0]["lastStatus"]
    last = time.monotonic() - s
    calls += 1
    if st == "RUNNING" or st == "STOPPED" or time.monotonic() - t0 > 120:
        break
    time.sleep(0.002)
print(arn, calls, "%.3f" % (time.monotonic() - t0), st)
EOF
)"
say "  RUNNING seen after ${ELAPSED}s and $CALLS questions ($LAST_S)"
eq "$LAST_S" RUNNING "the launch's last status"
# one question a move (PENDING, RUNNING) and slack (a question asked between two moves);
# polling unheld, 2 ms apart, asks hundreds
num_ge 6 "$CALLS" "questions for a launch"
num_ge "$(moved)" 1 "questions answered by a move"

say "a RUNNING task's question is not held"
before_m=$(moved) before_o=$(over)
py "$T1" <<'EOF' >/dev/null
for _ in range(5):
    assert ecs.describe_tasks(cluster=C, tasks=[sys.argv[1]])["tasks"][0]["lastStatus"] == "RUNNING"
EOF
num_eq "$(moved)" "$before_m" "held for a RUNNING task (moved)"
num_eq "$(over)" "$before_o" "held for a RUNNING task (wait over)"
num_eq "$(held)" 0 "held now"

say "a stopping task that does not move: the whole wait, then the answer"
aws ecs stop-task --cluster "$CLUSTER" --task "$T1" >/dev/null
sleep 1 # the stop under way: the container ignores SIGTERM for its 60 s
before_o=$(over)
read -r TOOK S1 <<<"$(timed_describe "$T1")"
say "  answered after ${TOOK}s: $S1"
num_ge "$TOOK" 9.9 "a held question's wait"
[[ $S1 != STOPPED ]] || fail "the task stopped: its container should ignore SIGTERM"
num_eq "$(over)" "$((before_o + 1))" "questions answered at the end of the wait"

say "the same question held, the container killed under it: answered with the move"
before_m=$(moved)
CID=$(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$T1" --query 'tasks[0].containers[0].runtimeId' --output text)
timed_describe "$T1" >"$WORK/held.out" &
QPID=$!
for ((i = 0; i < 100; i++)); do [[ $(held) == 1 ]] && break; sleep 0.05; done
eq "$(held)" 1 "questions held now"
command docker -H "$ES_TEST_DOCKER_HOST" kill "$CID" >/dev/null
wait "$QPID" || fail "the held question failed"
read -r TOOK S2 <"$WORK/held.out"
say "  answered after ${TOOK}s: $S2"
[[ $S2 != "$S1" ]] || fail "the answer does not show the move ($S1 -> $S2)"
num_ge "$(moved)" "$((before_m + 1))" "questions answered by a move"

say "the agent stopped while a question is held: the question answered, the agent exits 0"
T2=$(aws ecs run-task --cluster "$CLUSTER" --task-definition dwait --query 'tasks[0].taskArn' --output text)
[[ $(wait_status "$T2" RUNNING) == RUNNING ]] || fail "the second task did not run"
aws ecs stop-task --cluster "$CLUSTER" --task "$T2" >/dev/null
sleep 1
py "$T2" >"$WORK/stop.out" 2>&1 <<'EOF' &
t = ecs.describe_tasks(cluster=C, tasks=[sys.argv[1]])["tasks"]
print(len(t), t[0]["taskArn"] if t else "-")
EOF
QPID=$!
for ((i = 0; i < 100; i++)); do [[ $(held) == 1 ]] && break; sleep 0.05; done
eq "$(held)" 1 "questions held before the stop"
it_stop_agent
wait "$QPID" || fail "the held question was not answered at the stop: $(cat "$WORK/stop.out")"
eq "$(cat "$WORK/stop.out")" "1 $T2" "the answer given at the stop"

say "ECS_SECRETS_DESCRIBE_WAIT_MS=0: nothing held"
ECS_SECRETS_DESCRIBE_WAIT_MS=0 it_start_agent --mode embedded --cluster "$CLUSTER"
read -r TOOK S3 <<<"$(timed_describe "$T2")"
say "  answered after ${TOOK}s: $S3"
[[ $S3 != STOPPED ]] || fail "the second task stopped: its container should still be stopping"
num_eq "$(moved)" 0 "held with the wait off (moved)"
num_eq "$(over)" 0 "held with the wait off (wait over)"
curl -sf "$URL/metrics" | grep -q '^ecs_agent_describe_tasks_held ' || fail "the gauge is missing"
it_stop_agent

say "bad values refused with the key's name"
for v in 20001 -1 abc 05; do
  if out=$("$ES_AGENT_BIN" --check-config --describe-wait-ms "$v" 2>&1); then
    fail "--describe-wait-ms $v accepted"
  fi
  grep -q "describe-wait-ms\|ECS_SECRETS_DESCRIBE_WAIT_MS" <<<"$out" || fail "no key named for $v: $out"
done
say "PASS"

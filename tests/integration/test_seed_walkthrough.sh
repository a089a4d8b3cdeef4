#!/usr/bin/env bash
# The seed's walkthrough (examples/seed/walkthrough.sh), as README shows it, against the daemon
# in embedded mode and the test dockerd, with the real aws CLI: its output is asserted line by
# line, and no secret value may be found in the daemon's log or state directory.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}" "${ES_SOURCE_DIR:?}"
WORK=$(mktemp -d /tmp/es-seed-XXXXXX)
STATE=$WORK/state
LOG=$WORK/agent.log
OUT=$WORK/out.txt
mkdir -m 700 "$STATE"
PID=
fail() {
  echo "FAIL: $*" >&2
  echo "---- walkthrough output ----" >&2
  cat "$OUT" >&2 || true
  echo "---- agent log ----" >&2
  tail -n 40 "$LOG" >&2 || true
  exit 1
}
cleanup() {
  if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then kill -TERM "$PID" || true; wait "$PID" || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_REGION \
  AWS_DEFAULT_REGION AWS_ENDPOINT_URL || true

PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$ES_AGENT_BIN" --state-dir "$STATE" --listen "127.0.0.1:$PORT" \
  --docker-host "$ES_TEST_DOCKER_HOST" >"$LOG" 2>&1 &
PID=$!
for ((i = 0; i < 100; i++)); do
  grep -q "ready: " "$LOG" && break
  kill -0 "$PID" 2>/dev/null || fail "the agent exited during start"
  sleep 0.1
done
grep -q "ready: " "$LOG" || fail "the agent did not become ready"

STATE_DIR=$STATE ENDPOINT=http://127.0.0.1:$PORT DOCKER_HOST=$ES_TEST_DOCKER_HOST \
  "$ES_SOURCE_DIR/examples/seed/walkthrough.sh" >"$OUT" 2>&1 || fail "the walkthrough failed"

expect() { grep -qF -- "$1" "$OUT" || fail "the walkthrough did not print: $1"; }
expect "/test/database_password	SecureString	1"
expect "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
expect "task-definition/seed-walkthrough:1	ACTIVE"
# S5-S7: the managed policy alone grants no secret; the preflight names every missing
# permission at once (both parameters, and the customer managed key of the SecureString;
# not the AWS managed key of the other)
expect "TaskFailedToStart	ResourceInitializationError: unable to pull secrets or registry auth: the execution role arn:aws:iam::123456789012:role/ecsTaskExecutionRole is missing 3 permissions: ssm:GetParameters on arn:aws:ssm:us-east-1:123456789012:parameter/test/database_password; ssm:GetParameters on arn:aws:ssm:us-east-1:123456789012:parameter/test/splunk_token; kms:Decrypt on arn:aws:kms:us-east-1:123456789012:key/"
# S1, S8: the value in the container; where it came from in describe-tasks
expect "DATABASE_PASSWORD=MyFirstParameter"
grep -qE "ecs-secrets-agent/secret/web/DATABASE_PASSWORD	version 1 hmac-sha256:[0-9a-f]{32}" "$OUT" ||
  fail "no secret metadata in describe-tasks"
# S9, S14: the log driver's token from secretOptions
expect "Splunk 0123-splunk-token-4567"
# S4: frozen at creation
expect "old task: DATABASE_PASSWORD=MyFirstParameter"
expect "new task: DATABASE_PASSWORD=MySecondParameter"
expect "STOPPED	UserInitiated	walkthrough done"

# the walkthrough ran 3 tasks: 3 resolutions timed, 2 launches to RUNNING, 1 failure
M=$(curl -sf "http://127.0.0.1:$PORT/metrics") || fail "GET /metrics"
grep -qx 'ecs_agent_secrets_resolve_seconds_count 3' <<<"$M" || fail "metrics: resolutions: $(grep resolve_seconds_count <<<"$M")"
grep -qx 'ecs_agent_task_launch_seconds_count 2' <<<"$M" || fail "metrics: launches: $(grep launch_seconds_count <<<"$M")"
grep -qx 'ecs_agent_task_launches_total{result="failed"} 1' <<<"$M" || fail "metrics: failed launches"
for v in MyFirstParameter MySecondParameter 0123-splunk-token-4567; do
  ! grep -qF -- "$v" <<<"$M" || fail "a value in /metrics"
done

kill -TERM "$PID"
wait "$PID" || fail "the agent exited with $? on SIGTERM"
PID=
for v in MyFirstParameter MySecondParameter 0123-splunk-token-4567; do
  if grep -rqaF -- "$v" "$LOG" "$STATE"; then
    fail "the value $v is in the agent's log or state directory"
  fi
done
echo "seed walkthrough: every step as README shows it; no value in the log or state"

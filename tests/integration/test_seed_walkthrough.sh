#!/usr/bin/env bash
# The seed's walkthrough (examples/seed/walkthrough.sh), as README shows it, against the daemon
# in embedded mode and the test dockerd, with the real aws CLI: its output is asserted line by
# line, and no secret value may be found in the daemon's log or state directory.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}" "${ES_SOURCE_DIR:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir seed
OUT=$WORK/out.txt
IT_FAIL_HEADER="---- agent log ----"
it_on_fail() {
  echo "---- walkthrough output ----" >&2
  cat "$OUT" >&2 || true
  it_show_log
}
it_aws_env # the walkthrough points the CLI at the state directory itself
it_endpoint
it_start_agent

AWS_CLI=$IT_AWS_BIN STATE_DIR=$STATE ENDPOINT=$URL DOCKER_HOST=$ES_TEST_DOCKER_HOST \
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
M=$(curl -sf "$URL/metrics") || fail "GET /metrics"
grep -qx 'ecs_agent_secrets_resolve_seconds_count 3' <<<"$M" || fail "metrics: resolutions: $(grep resolve_seconds_count <<<"$M")"
grep -qx 'ecs_agent_task_launch_seconds_count 2' <<<"$M" || fail "metrics: launches: $(grep launch_seconds_count <<<"$M")"
grep -qx 'ecs_agent_task_launches_total{result="failed",reason="ResourceInitializationError"} 1' <<<"$M" ||
  fail "metrics: failed launches, by reason: $(grep 'launches_total' <<<"$M")"
# what runs and for how long (issue 24)
grep -qE '^ecs_agent_build_info\{version="[0-9]+\.[0-9]+\.[0-9]+"\} 1$' <<<"$M" || fail "metrics: build_info"
grep -qE '^ecs_agent_uptime_seconds [0-9.e+]+$' <<<"$M" || fail "metrics: uptime"
grep -qE '^ecs_agent_start_time_seconds [0-9.e+]+$' <<<"$M" || fail "metrics: start time"
for v in MyFirstParameter MySecondParameter 0123-splunk-token-4567; do
  ! grep -qF -- "$v" <<<"$M" || fail "a value in /metrics"
done

it_stop_agent
for v in MyFirstParameter MySecondParameter 0123-splunk-token-4567; do
  if grep -rqaF -- "$v" "$LOG" "$STATE"; then
    fail "the value $v is in the agent's log or state directory"
  fi
done
echo "seed walkthrough: every step as README shows it; no value in the log or state"

#!/usr/bin/env bash
# The ECS-compatible API driven only by the real aws CLI (/usr/bin/aws ecs):
#   - register the seed's task definition (secrets + splunk logConfiguration with
#     secretOptions), describe it (family, family:rev, ARN), list (paged, DESC, INACTIVE),
#     families, deregister, register again: revision 2, never reused;
#   - validation errors answered with ECS's codes through the CLI (exit 254/255, the message);
#   - describe-clusters / list-clusters for the configured cluster, others MISSING;
#   - /metrics;
#   - aws mode: the same listener answers ECS but refuses SSM (UnknownOperationException).
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
T0=$(date +%s)
say() { echo "[$(($(date +%s) - T0))s] $*"; }
WORK=$(mktemp -d /tmp/es-ecs-api-XXXXXX)
STATE=$WORK/state
LOG=$WORK/agent.log
ANSWERS=$WORK/answers.log # every API answer, scanned for secret values at the end
mkdir -m 700 "$STATE"
PID=
fail() {
  echo "FAIL: $*" >&2
  echo "---- agent log ----" >&2
  tail -n 40 "$LOG" >&2 || true
  exit 1
}
cleanup() {
  if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then kill -TERM "$PID" || true; wait "$PID" || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE \
  AWS_REGION AWS_DEFAULT_REGION AWS_ENDPOINT_URL || true
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER= AWS_MAX_ATTEMPTS=1
export AWS_SHARED_CREDENTIALS_FILE=$STATE/aws-credentials AWS_CONFIG_FILE=$STATE/aws-config

start_agent() { # start_agent MODE
  "$ES_AGENT_BIN" --mode "$1" --state-dir "$STATE" --listen "127.0.0.1:$PORT" --region us-east-2 \
    --cluster blue --docker-host "$ES_TEST_DOCKER_HOST" --log-level debug >>"$LOG" 2>&1 &
  PID=$!
  local i want=$(($(grep -c "ready: " "$LOG" 2>/dev/null || true) + 1))
  for ((i = 0; i < 100; i++)); do
    [[ $(grep -c "ready: " "$LOG" 2>/dev/null || true) -ge $want ]] && return 0
    kill -0 "$PID" 2>/dev/null || fail "the agent exited during start"
    sleep 0.1
  done
  fail "the agent did not become ready"
}
stop_agent() {
  kill -TERM "$PID"
  wait "$PID" || fail "the agent exited with $? on SIGTERM"
  PID=
}

aws() {
  local out
  out=$(/usr/bin/aws --profile ecs-secrets-agent --endpoint-url "$URL" --output json "$@") || return $?
  printf '%s\n' "$out" >>"$ANSWERS"
  printf '%s\n' "$out"
}
# expect_error CODE MESSAGE-PART aws-args...: the CLI's exit for a service error (254 in
# awscli v2, 255 in v1), ECS's code and the message
expect_error() {
  local code=$1 part=$2 out rc=0
  shift 2
  out=$(/usr/bin/aws --profile ecs-secrets-agent --endpoint-url "$URL" --output json "$@" 2>&1) || rc=$?
  printf '%s\n' "$out" >>"$ANSWERS"
  [[ $rc -eq 254 || $rc -eq 255 ]] || fail "aws $*: exit $rc, wanted 254/255 ($code): $out"
  grep -qF "($code)" <<<"$out" || fail "aws $*: wanted $code, got: $out"
  grep -qF -- "$part" <<<"$out" || fail "aws $*: the message lacks '$part': $out"
}
eq() { [[ $1 == "$2" ]] || fail "$3: got '$1', want '$2'"; }

P=arn:aws:ecs:us-east-2:123456789012
# The seed's task definition: S5 execution role, S8 secrets by ARN and by name, S9 a log
# driver secret option (splunk-token), S11/S12 names.
cat >"$WORK/td.json" <<'EOF'
{
  "family": "seed-app",
  "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
  "networkMode": "none",
  "requiresCompatibilities": ["EC2"],
  "containerDefinitions": [{
    "name": "web",
    "image": "local/busybox:latest",
    "essential": true,
    "command": ["sh", "-c", "sleep 300"],
    "environment": [{"name": "MODE", "value": "test"}],
    "secrets": [
      {"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:us-east-2:123456789012:parameter/test/database_password"},
      {"name": "API_KEY", "valueFrom": "/test/api_key"}
    ],
    "logConfiguration": {
      "logDriver": "splunk",
      "options": {"splunk-url": "https://splunk.example:8088"},
      "secretOptions": [{"name": "splunk-token", "valueFrom": "/test/splunk_token"}]
    }
  }]
}
EOF

say "starting the agent (embedded) on $URL"
start_agent embedded

say "register, describe, list"
OUT=$(aws ecs register-task-definition --cli-input-json "file://$WORK/td.json")
eq "$(jq -r .taskDefinition.taskDefinitionArn <<<"$OUT")" "$P:task-definition/seed-app:1" "first ARN"
eq "$(jq -r .taskDefinition.revision <<<"$OUT")" 1 "first revision"
eq "$(jq -r .taskDefinition.status <<<"$OUT")" ACTIVE "status"
# epoch seconds on the wire; the CLI prints them as ISO 8601
[[ $(jq -r '.taskDefinition.registeredAt' <<<"$OUT") =~ ^20[0-9][0-9]-[0-9][0-9]-[0-9][0-9]T ]] ||
  fail "registeredAt: $(jq -r '.taskDefinition.registeredAt' <<<"$OUT")"
eq "$(jq -r '.taskDefinition.containerDefinitions[0].secrets[1].valueFrom' <<<"$OUT")" /test/api_key "secrets kept"
eq "$(jq -r '.taskDefinition.containerDefinitions[0].logConfiguration.secretOptions[0].name' <<<"$OUT")" \
  splunk-token "secretOptions kept"
for ref in seed-app seed-app:1 "$P:task-definition/seed-app:1"; do
  eq "$(aws ecs describe-task-definition --task-definition "$ref" --query taskDefinition.revision)" 1 "describe $ref"
done
eq "$(aws ecs describe-task-definition --task-definition seed-app \
  --query 'taskDefinition.containerDefinitions[0].logConfiguration.logDriver' --output text)" splunk "log driver"

# a second family, and more revisions, for the lists
sed 's/"seed-app"/"other"/' "$WORK/td.json" >"$WORK/other.json"
aws ecs register-task-definition --cli-input-json "file://$WORK/other.json" >/dev/null
aws ecs register-task-definition --cli-input-json "file://$WORK/other.json" >/dev/null
joined() { jq -r "$1 | join(\" \")"; }
eq "$(aws ecs list-task-definitions | joined .taskDefinitionArns)" \
  "$P:task-definition/other:1 $P:task-definition/other:2 $P:task-definition/seed-app:1" "list ASC"
eq "$(aws ecs list-task-definitions --sort DESC --page-size 1 | joined .taskDefinitionArns)" \
  "$P:task-definition/seed-app:1 $P:task-definition/other:2 $P:task-definition/other:1" "list DESC, paged by 1"
OUT=$(aws ecs list-task-definitions --family-prefix other --max-items 1)
eq "$(joined .taskDefinitionArns <<<"$OUT")" "$P:task-definition/other:1" "list one family, one item"
eq "$(aws ecs list-task-definitions --family-prefix other --starting-token "$(jq -r .NextToken <<<"$OUT")" |
  joined .taskDefinitionArns)" "$P:task-definition/other:2" "the next page"
eq "$(aws ecs list-task-definition-families --page-size 1 | joined .families)" "other seed-app" "families"

say "deregister, register again: revisions are never reused"
eq "$(aws ecs deregister-task-definition --task-definition seed-app:1 --query taskDefinition.status --output text)" \
  INACTIVE "deregistered"
expect_error ClientException "no ACTIVE revision" ecs describe-task-definition --task-definition seed-app
eq "$(aws ecs describe-task-definition --task-definition seed-app:1 --query taskDefinition.status --output text)" \
  INACTIVE "an inactive revision stays describable"
eq "$(aws ecs list-task-definitions --status INACTIVE --query 'taskDefinitionArns' --output text)" \
  "$P:task-definition/seed-app:1" "list INACTIVE"
eq "$(aws ecs list-task-definition-families --status INACTIVE --query families --output text)" seed-app "inactive family"
eq "$(aws ecs register-task-definition --cli-input-json "file://$WORK/td.json" --query taskDefinition.revision)" 2 \
  "revision 2 after deregistering 1"
aws ecs deregister-task-definition --task-definition "$P:task-definition/seed-app:2" >/dev/null
eq "$(aws ecs register-task-definition --cli-input-json "file://$WORK/td.json" --query taskDefinition.revision)" 3 \
  "revision 3: 2 is not reused"

say "validation errors with ECS's codes"
mk() { jq "$1" "$WORK/td.json" >"$WORK/bad.json"; }
mk '.family = "bad family!"'
expect_error ClientException "family" ecs register-task-definition --cli-input-json "file://$WORK/bad.json"
mk '.family = ("f" * 256)'
expect_error ClientException "family" ecs register-task-definition --cli-input-json "file://$WORK/bad.json"
mk 'del(.executionRoleArn)'
expect_error ClientException "executionRoleArn" ecs register-task-definition --cli-input-json "file://$WORK/bad.json"
mk '.containerDefinitions[0].name = ("n" * 256)'
expect_error ClientException "containerDefinitions[0].name" ecs register-task-definition --cli-input-json "file://$WORK/bad.json"
mk '.containerDefinitions[0].image = ("i" * 256)'
expect_error ClientException "containerDefinitions[0].image" ecs register-task-definition --cli-input-json "file://$WORK/bad.json"
mk '.containerDefinitions[0].secrets[0].valueFrom = "arn:aws:ssm:us-east-2:999999999999:parameter/x"'
expect_error ClientException "containerDefinitions[0].secrets[0].valueFrom" ecs register-task-definition --cli-input-json "file://$WORK/bad.json"
mk '.containerDefinitions[0].essential = false'
expect_error ClientException "essential" ecs register-task-definition --cli-input-json "file://$WORK/bad.json"
mk '.containerDefinitions[0].logConfiguration.secretOptions[0].valueFrom = ""'
expect_error ClientException "secretOptions[0].valueFrom" ecs register-task-definition --cli-input-json "file://$WORK/bad.json"
expect_error ClientException "Unable to find task definition nope:1" ecs describe-task-definition --task-definition nope:1
expect_error ClientException "region" ecs describe-task-definition --task-definition arn:aws:ecs:eu-west-1:123456789012:task-definition/seed-app:1
expect_error ClientException "a revision is required" ecs deregister-task-definition --task-definition seed-app
expect_error ClientException "revision" ecs deregister-task-definition --task-definition seed-app:0
expect_error InvalidParameterException "maxResults" ecs list-task-definitions --max-results 101 --no-paginate
expect_error InvalidParameterException "status" ecs list-task-definitions --status DELETED
expect_error InvalidParameterException "nextToken" ecs list-task-definitions --starting-token junk --max-items 1
eq "$(aws ecs describe-task-definition --task-definition seed-app --query taskDefinition.revision)" 3 \
  "refused registrations took no revision"

say "clusters"
eq "$(aws ecs list-clusters --query 'clusterArns' --output text)" "$P:cluster/blue" "list-clusters"
OUT=$(aws ecs describe-clusters --clusters blue red "$P:cluster/green")
eq "$(jq -r '.clusters[0].clusterArn' <<<"$OUT")" "$P:cluster/blue" "cluster ARN"
eq "$(jq -r '.clusters[0].status' <<<"$OUT")" ACTIVE "cluster status"
eq "$(jq -r '.clusters[0].runningTasksCount' <<<"$OUT")" 0 "running tasks"
eq "$(jq -r '[.failures[] | .arn + " " + .reason] | join(",")' <<<"$OUT")" \
  "$P:cluster/red MISSING,$P:cluster/green MISSING" "other clusters missing"
eq "$(aws ecs describe-clusters --query 'clusters[0].clusterName' --output text)" blue "default cluster"

say "metrics"
M=$(curl -sf "$URL/metrics") || fail "GET /metrics"
grep -q '^ecs_secrets_agent_api_requests_total{operation="RegisterTaskDefinition"} [1-9]' <<<"$M" || fail "no request counter: $M"
grep -q '^ecs_secrets_agent_api_errors_total{code="ClientException"} [1-9]' <<<"$M" || fail "no error counter"
grep -q '^ecs_secrets_agent_tasks{status="RUNNING"} 0' <<<"$M" || fail "no task gauge"

say "a restart keeps everything"
stop_agent
start_agent embedded
eq "$(aws ecs describe-task-definition --task-definition seed-app --query taskDefinition.revision)" 3 "after restart"
eq "$(aws ecs register-task-definition --cli-input-json "file://$WORK/td.json" --query taskDefinition.revision)" 4 \
  "revision 4 after restart"
stop_agent

say "aws mode: ECS answers, the embedded services do not"
start_agent aws
eq "$(aws ecs describe-task-definition --task-definition seed-app --query taskDefinition.revision)" 4 "aws mode ECS"
expect_error UnknownOperationException "" ssm get-parameter --name /test/database_password
expect_error UnknownOperationException "" secretsmanager list-secrets
expect_error UnknownOperationException "" kms list-keys
stop_agent

say "OK"

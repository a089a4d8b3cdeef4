#!/usr/bin/env bash
# The execution role's preflight (agent/preflight.h), driven only by the real aws CLI against
# the embedded endpoints and a real dockerd:
#   - a customer managed KMS key under alias/MyAliasName, a String parameter, a SecureString
#     under that key, a Secrets Manager secret (default key, named by its partial ARN in the
#     task definition), and an execution role holding only AmazonECSTaskExecutionRolePolicy;
#   - run-task -> STOPPED, stopCode TaskFailedToStart, one stoppedReason naming all 4 missing
#     permissions (ssm:GetParameters x2, secretsmanager:GetSecretValue on the secret's full
#     ARN, kms:Decrypt on the key's ARN), no container, no value fetched;
#   - the seed's inline policy (S7) for exactly those resources -> run-task -> RUNNING, and the
#     container prints the three values;
#   - ECS_SECRETS_PREFLIGHT=off: the same refused task fails on the fetch instead (AWS's
#     AccessDeniedException for the first secret), which is what the preflight replaces.
# No value appears in the agent's log or any API answer.
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
T0=$(date +%s)
say() { echo "[$(($(date +%s) - T0))s] $*"; }
WORK=$(mktemp -d /tmp/es-preflight-XXXXXX)
STATE=$WORK/state
LOG=$WORK/agent.log
ANSWERS=$WORK/answers.log
mkdir -m 700 "$STATE"
PID=
CLUSTER=pf-$$
fail() {
  echo "FAIL: $*" >&2
  echo "---- agent log ----" >&2
  tail -n 40 "$LOG" >&2 || true
  exit 1
}
cleanup() {
  if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then kill -TERM "$PID" || true; wait "$PID" || true; fi
  docker -H "$ES_TEST_DOCKER_HOST" ps -aq --filter "label=com.amazonaws.ecs.cluster=$CLUSTER" |
    xargs -r docker -H "$ES_TEST_DOCKER_HOST" rm -f >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE \
  AWS_REGION AWS_DEFAULT_REGION AWS_ENDPOINT_URL ECS_SECRETS_PREFLIGHT || true
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER= AWS_MAX_ATTEMPTS=1
export AWS_SHARED_CREDENTIALS_FILE=$STATE/aws-credentials AWS_CONFIG_FILE=$STATE/aws-config

start_agent() { # start_agent [extra flags]
  "$ES_AGENT_BIN" --mode embedded --state-dir "$STATE" --listen "127.0.0.1:$PORT" --region us-east-2 \
    --cluster "$CLUSTER" --docker-host "$ES_TEST_DOCKER_HOST" --log-level debug "$@" >>"$LOG" 2>&1 &
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
eq() { [[ $1 == "$2" ]] || fail "$3: got '$1', want '$2'"; }
wait_status() {
  local task=$1 s i
  shift
  for ((i = 0; i < 120; i++)); do
    s=$(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$task" --query 'tasks[0].lastStatus' --output text)
    for want in "$@"; do [[ $s == "$want" ]] && { echo "$s"; return 0; }; done
    sleep 0.5
  done
  echo "$s"
}
containers() {
  docker -H "$ES_TEST_DOCKER_HOST" ps -aq --filter "label=com.amazonaws.ecs.cluster=$CLUSTER" | wc -l
}

say "starting the agent (embedded) on $URL"
start_agent

say "the store: a customer key under alias/MyAliasName, two parameters, a secret, the role"
V_PLAIN="plain-$RANDOM$RANDOM"
V_SECURE="Secure-$RANDOM$RANDOM-x"
V_DB="Db-$RANDOM$RANDOM-y"
KEY_ARN=$(aws kms create-key --description preflight --query KeyMetadata.Arn --output text)
aws kms create-alias --alias-name alias/MyAliasName --target-key-id "$KEY_ARN" >/dev/null
aws ssm put-parameter --name /pf/plain --type String --value "$V_PLAIN" >/dev/null
aws ssm put-parameter --name /pf/secure --type SecureString --key-id alias/MyAliasName \
  --value "$V_SECURE" >/dev/null
SECRET_ARN=$(aws secretsmanager create-secret --name pf/db --secret-string "$V_DB" --query ARN --output text)
[[ $SECRET_ARN =~ ^arn:aws:secretsmanager:us-east-2:123456789012:secret:pf/db-[A-Za-z0-9]{6}$ ]] ||
  fail "secret ARN $SECRET_ARN"
aws iam create-role --role-name pf-exec --assume-role-policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}' >/dev/null
aws iam attach-role-policy --role-name pf-exec \
  --policy-arn arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy
ROLE=arn:aws:iam::123456789012:role/pf-exec

cat >"$WORK/td.json" <<JSON
{
  "family": "pf",
  "executionRoleArn": "$ROLE",
  "networkMode": "none",
  "containerDefinitions": [{
    "name": "app",
    "image": "local/busybox:latest",
    "command": ["sh", "-c", "echo \"\$PLAIN|\$SECURE|\$DB\"; sleep 300"],
    "stopTimeout": 2,
    "secrets": [
      {"name": "PLAIN", "valueFrom": "/pf/plain"},
      {"name": "SECURE", "valueFrom": "arn:aws:ssm:us-east-2:123456789012:parameter/pf/secure"},
      {"name": "DB", "valueFrom": "arn:aws:secretsmanager:us-east-2:123456789012:secret:pf/db"}
    ]
  }]
}
JSON
aws ecs register-task-definition --cli-input-json "file://$WORK/td.json" >/dev/null

say "run-task with the managed policy only: STOPPED, every missing permission named"
WANT="ResourceInitializationError: unable to pull secrets or registry auth: the execution role $ROLE is missing 4 permissions: ssm:GetParameters on arn:aws:ssm:us-east-2:123456789012:parameter/pf/plain; ssm:GetParameters on arn:aws:ssm:us-east-2:123456789012:parameter/pf/secure; secretsmanager:GetSecretValue on $SECRET_ARN; kms:Decrypt on $KEY_ARN"
TASK=$(aws ecs run-task --cluster "$CLUSTER" --task-definition pf --query 'tasks[0].taskArn' --output text)
eq "$(wait_status "$TASK" STOPPED)" STOPPED "the task without permissions"
OUT=$(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$TASK")
eq "$(jq -r '.tasks[0].stopCode' <<<"$OUT")" TaskFailedToStart "stopCode"
eq "$(jq -r '.tasks[0].stoppedReason' <<<"$OUT")" "$WANT" "stoppedReason"
eq "$(jq -r '.tasks[0].containers[0].runtimeId' <<<"$OUT")" null "runtimeId"
eq "$(containers)" 0 "containers created"
grep -q "GetParameters\b.*AccessDenied\|not authorized to perform: ssm:GetParameters" "$LOG" &&
  fail "a value fetch was attempted"

say "the seed's inline policy: RUNNING with the values"
cat >"$WORK/policy.json" <<JSON
{
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Allow",
    "Action": ["ssm:GetParameters", "secretsmanager:GetSecretValue", "kms:Decrypt"],
    "Resource": [
      "arn:aws:ssm:us-east-2:123456789012:parameter/pf/plain",
      "arn:aws:ssm:us-east-2:123456789012:parameter/pf/secure",
      "$SECRET_ARN",
      "$KEY_ARN"
    ]
  }]
}
JSON
aws iam put-role-policy --role-name pf-exec --policy-name secrets --policy-document "file://$WORK/policy.json"
TASK=$(aws ecs run-task --cluster "$CLUSTER" --task-definition pf --query 'tasks[0].taskArn' --output text)
eq "$(wait_status "$TASK" RUNNING STOPPED)" RUNNING \
  "the task with permissions ($(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$TASK" --query 'tasks[0].stoppedReason'))"
CID=$(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$TASK" --query 'tasks[0].containers[0].runtimeId' --output text)
for ((i = 0; i < 50; i++)); do
  docker -H "$ES_TEST_DOCKER_HOST" logs "$CID" 2>&1 | grep -qxF "$V_PLAIN|$V_SECURE|$V_DB" && break
  sleep 0.2
done
docker -H "$ES_TEST_DOCKER_HOST" logs "$CID" 2>&1 | grep -xF "$V_PLAIN|$V_SECURE|$V_DB" >/dev/null ||
  fail "the container did not print the values"
aws ecs stop-task --cluster "$CLUSTER" --task "$TASK" >/dev/null
eq "$(wait_status "$TASK" STOPPED)" STOPPED "stopped"

say "ECS_SECRETS_PREFLIGHT=off: the refusal comes from the fetch instead"
aws iam delete-role-policy --role-name pf-exec --policy-name secrets
stop_agent
start_agent --preflight off
TASK=$(aws ecs run-task --cluster "$CLUSTER" --task-definition pf --query 'tasks[0].taskArn' --output text)
eq "$(wait_status "$TASK" STOPPED)" STOPPED "the task without preflight"
REASON=$(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$TASK" --query 'tasks[0].stoppedReason' --output text)
[[ $REASON == *AccessDeniedException* && $REASON != *"is missing"* ]] || fail "reason without preflight: $REASON"
stop_agent

say "no value in the log or the API answers"
for v in "$V_PLAIN" "$V_SECURE" "$V_DB"; do
  grep -qF "$v" "$LOG" && fail "a value is in the agent's log"
  grep -qF "$v" "$ANSWERS" && fail "a value is in an API answer"
done
say "PASS"

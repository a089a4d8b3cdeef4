#!/usr/bin/env bash
# The execution role's preflight (agent/secrets/preflight.h), driven only by the real aws CLI against
# the embedded endpoints and a real dockerd:
#   - a customer managed KMS key under alias/MyAliasName, a String parameter, a SecureString
#     under that key, a Secrets Manager secret (default key, named by its partial ARN in the
#     task definition), and an execution role holding only AmazonECSTaskExecutionRolePolicy;
#   - run-task -> STOPPED, stopCode TaskFailedToStart, one stoppedReason naming all 4 missing
#     permissions (ssm:GetParameters x2, secretsmanager:GetSecretValue on the secret's full
#     ARN, kms:Decrypt on the key's ARN), no container, no value fetched;
#   - the seed's inline policy (S7) for exactly those resources -> run-task -> RUNNING, and the
#     container prints the three values;
#   - a typo in a valueFrom is named as missing and as not existing; a role that does not
#     exist is named as such (not as AccessDenied on sts:AssumeRole);
#   - ECS_SECRETS_PREFLIGHT=off: the same refused task fails on the fetch instead (AWS's
#     AccessDeniedException for the first secret), which is what the preflight replaces.
# No value appears in the agent's log or any API answer.
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir preflight
ANSWERS=$WORK/answers.log # every API answer, scanned for values at the end
IT_FAIL_HEADER="---- agent log ----"
CLUSTER=pf-$$ # our containers carry it as a label (removed on exit)
it_endpoint
it_aws_env "$STATE" 1
unset ECS_SECRETS_PREFLIGHT || true

start_agent() { # start_agent [extra flags]
  it_start_agent --mode embedded --region us-east-2 --cluster "$CLUSTER" --log-level debug "$@"
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
create_exec_role pf-exec
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
wait_container_log "$CID" 50 0.2 -xF "$V_PLAIN|$V_SECURE|$V_DB" ||
  fail "the container did not print the values"
aws ecs stop-task --cluster "$CLUSTER" --task "$TASK" >/dev/null
eq "$(wait_status "$TASK" STOPPED)" STOPPED "stopped"

say "mistakes explained (issue 24): a typo in a valueFrom, and a role that does not exist"
# the role may read /pf/* (the seed's policy is still on): a typo'd name it may not read is
# named as missing *and* as not existing
aws ecs register-task-definition --family pf-typo --execution-role-arn "$ROLE" --network-mode none \
  --container-definitions '[{"name":"app","image":"local/busybox:latest","command":["true"],"secrets":[{"name":"P","valueFrom":"/pf-typo/databse_password"}]}]' >/dev/null
TASK=$(aws ecs run-task --cluster "$CLUSTER" --task-definition pf-typo --query 'tasks[0].taskArn' --output text)
eq "$(wait_status "$TASK" STOPPED)" STOPPED "the task with a typo"
REASON=$(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$TASK" --query 'tasks[0].stoppedReason' --output text)
eq "$REASON" "ResourceInitializationError: unable to pull secrets or registry auth: the execution role $ROLE is missing 1 permission: ssm:GetParameters on arn:aws:ssm:us-east-2:123456789012:parameter/pf-typo/databse_password (which does not exist: check its name and region)" "the typo's reason"
aws ecs register-task-definition --family pf-norole \
  --execution-role-arn arn:aws:iam::123456789012:role/ecsTaskExecutionRoel --network-mode none \
  --container-definitions '[{"name":"app","image":"local/busybox:latest","command":["true"],"secrets":[{"name":"P","valueFrom":"/pf/plain"}]}]' >/dev/null
TASK=$(aws ecs run-task --cluster "$CLUSTER" --task-definition pf-norole --query 'tasks[0].taskArn' --output text)
eq "$(wait_status "$TASK" STOPPED)" STOPPED "the task with a missing role"
REASON=$(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$TASK" --query 'tasks[0].stoppedReason' --output text)
eq "$REASON" "ResourceInitializationError: unable to pull secrets or registry auth: the execution role arn:aws:iam::123456789012:role/ecsTaskExecutionRoel does not exist (check its name and account)" "the missing role's reason"
[[ $(containers) -eq 1 ]] || fail "a refused task created a container ($(containers) in the cluster, the stopped task's one included)"

say "ECS_SECRETS_PREFLIGHT=off: the refusal comes from the fetch instead"
aws iam delete-role-policy --role-name pf-exec --policy-name secrets
it_stop_agent
start_agent --preflight off
TASK=$(aws ecs run-task --cluster "$CLUSTER" --task-definition pf --query 'tasks[0].taskArn' --output text)
eq "$(wait_status "$TASK" STOPPED)" STOPPED "the task without preflight"
REASON=$(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$TASK" --query 'tasks[0].stoppedReason' --output text)
[[ $REASON == *AccessDeniedException* && $REASON != *"is missing"* ]] || fail "reason without preflight: $REASON"
it_stop_agent

say "no value in the log or the API answers"
for v in "$V_PLAIN" "$V_SECURE" "$V_DB"; do
  grep -qF "$v" "$LOG" && fail "a value is in the agent's log"
  grep -qF "$v" "$ANSWERS" && fail "a value is in an API answer"
done
say "PASS"

#!/usr/bin/env bash
# IAM users and groups (issue 18), driven only by the real aws CLI against the embedded IAM,
# STS, SSM and ECS API and a real dockerd:
#   - the administrator creates user "operator" and its access key, and attaches a policy
#     allowing ecs:RunTask (on the family, in this cluster) and ecs:DescribeTasks;
#   - with the operator's own key: run-task is accepted and its task runs; ssm get-parameters
#     is refused with AccessDeniedException worded as AWS words it;
#   - a group policy granting ssm:GetParameters, once the operator is in the group, makes it
#     succeed;
#   - GetSessionToken's credentials act as the user (get-caller-identity, get-parameters);
#   - GetAccessKeyInfo answers the account;
#   - UpdateAccessKey Inactive: the key is refused (InvalidClientTokenId /
#     UnrecognizedClientException), Active again: accepted;
#   - DeleteUser answers DeleteConflict while the user has keys, policies or groups;
#   - no secret of the user's key appears in the log.
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir iamusers
IT_FAIL_HEADER="---- agent log ----"
CLUSTER=users-$$
ACCT=123456789012
REGION=us-east-2
OPERATOR=arn:aws:iam::$ACCT:user/operator
it_endpoint
it_aws_env "$STATE" 1

# op ARGS...: the real CLI with the operator's key ($AKID/$SECRET, and $TOKEN when set)
op() {
  env AWS_ACCESS_KEY_ID="$AKID" AWS_SECRET_ACCESS_KEY="$SECRET" ${TOKEN:+AWS_SESSION_TOKEN="$TOKEN"} \
    AWS_REGION=$REGION "$IT_AWS_BIN" --endpoint-url "$URL" --output json "$@"
}
# op_error CODE MESSAGE-PART ARGS...: `op ARGS` fails with CODE and MESSAGE-PART
op_error() {
  local code=$1 part=$2 out rc=0
  shift 2
  out=$(op "$@" 2>&1) || rc=$?
  [[ $rc -eq 254 || $rc -eq 255 ]] || fail "operator: aws $*: exit $rc, wanted $code: $out"
  grep -qF "($code)" <<<"$out" || fail "operator: aws $*: wanted $code, got: $out"
  grep -qF -- "$part" <<<"$out" || fail "operator: aws $*: the message lacks '$part': $out"
}

say "starting the agent (embedded) on $URL"
it_start_agent --mode embedded --region "$REGION" --cluster "$CLUSTER" --log-level debug

say "the administrator: a parameter, a task definition, user operator and its key"
aws ssm put-parameter --name /app/motd --type String --value "hello" >/dev/null
cat >"$WORK/td.json" <<JSON
{"family": "ops", "networkMode": "none",
 "containerDefinitions": [{"name": "app", "image": "local/busybox:latest",
   "command": ["sh", "-c", "echo started; sleep 300"], "stopTimeout": 2}]}
JSON
aws ecs register-task-definition --cli-input-json "file://$WORK/td.json" >/dev/null
eq "$(aws iam create-user --user-name operator --query User.Arn --output text)" "$OPERATOR" \
  "the user's ARN"
expect_error EntityAlreadyExists "User with name operator already exists." \
  iam create-user --user-name operator
aws iam create-access-key --user-name operator >"$WORK/key.json"
AKID=$(jq -r .AccessKey.AccessKeyId "$WORK/key.json")
SECRET=$(jq -r .AccessKey.SecretAccessKey "$WORK/key.json")
[[ $AKID == AKIA* && ${#SECRET} -eq 40 ]] || fail "the key: $AKID"
eq "$(aws iam list-access-keys --user-name operator --query 'AccessKeyMetadata[0].Status' \
  --output text)" Active "the key's status"
aws iam put-user-policy --user-name operator --policy-name run --policy-document \
  "{\"Version\":\"2012-10-17\",\"Statement\":[
   {\"Effect\":\"Allow\",\"Action\":\"ecs:RunTask\",\"Resource\":\"arn:aws:ecs:$REGION:$ACCT:task-definition/ops:*\",
    \"Condition\":{\"ArnEquals\":{\"ecs:cluster\":\"arn:aws:ecs:$REGION:$ACCT:cluster/$CLUSTER\"}}},
   {\"Effect\":\"Allow\",\"Action\":\"ecs:DescribeTasks\",\"Resource\":\"*\"}]}"

say "with the operator's own key: run-task accepted, get-parameters refused"
eq "$(op sts get-caller-identity --query Arn --output text)" "$OPERATOR" "the caller"
TASK=$(op ecs run-task --cluster "$CLUSTER" --task-definition ops --query 'tasks[0].taskArn' \
  --output text)
[[ $TASK == arn:aws:ecs:$REGION:$ACCT:task/$CLUSTER/* ]] || fail "the operator's task: $TASK"
eq "$(wait_status "$TASK" RUNNING STOPPED)" RUNNING "the operator's task"
op_error AccessDeniedException "User: $OPERATOR is not authorized to perform: ssm:GetParameters on resource: arn:aws:ssm:$REGION:$ACCT:parameter/app/motd because no identity-based policy allows the ssm:GetParameters action" \
  ssm get-parameters --names /app/motd
op_error AccessDenied "iam:CreateUser" iam create-user --user-name intruder

say "a group granting ssm:GetParameters"
aws iam create-group --group-name readers >/dev/null
aws iam put-group-policy --group-name readers --policy-name read --policy-document \
  "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"ssm:GetParameters\",\"sts:GetAccessKeyInfo\"],\"Resource\":\"*\"}]}"
op_error AccessDeniedException "ssm:GetParameters" ssm get-parameters --names /app/motd
aws iam add-user-to-group --group-name readers --user-name operator
eq "$(aws iam get-group --group-name readers --query 'Users[0].UserName' --output text)" \
  operator "the group's member"
eq "$(aws iam list-groups-for-user --user-name operator --query 'Groups[0].GroupName' \
  --output text)" readers "the user's group"
eq "$(op ssm get-parameters --names /app/motd --query 'Parameters[0].Value' --output text)" \
  hello "the operator's read through its group"

say "GetSessionToken: credentials acting as the user"
op sts get-session-token --duration-seconds 900 >"$WORK/session.json"
# (the CLI itself refuses a DurationSeconds under 900: the unit tests check the server's answer)
(
  AKID=$(jq -r .Credentials.AccessKeyId "$WORK/session.json")
  SECRET=$(jq -r .Credentials.SecretAccessKey "$WORK/session.json")
  TOKEN=$(jq -r .Credentials.SessionToken "$WORK/session.json")
  [[ $AKID == ASIA* ]] || fail "the session's key: $AKID"
  eq "$(op sts get-caller-identity --query Arn --output text)" "$OPERATOR" "the session's caller"
  eq "$(op ssm get-parameters --names /app/motd --query 'Parameters[0].Value' --output text)" \
    hello "the session's read"
  op_error AccessDenied "Cannot call GetSessionToken with session credentials" \
    sts get-session-token
)

say "GetAccessKeyInfo"
eq "$(aws sts get-access-key-info --access-key-id "$AKID" --query Account --output text)" \
  "$ACCT" "the key's account"
eq "$(op sts get-access-key-info --access-key-id "$AKID" --query Account --output text)" \
  "$ACCT" "the key's account, asked by the operator"
expect_error ValidationError "accessKeyId" sts get-access-key-info --access-key-id 'AKIA-xxxxxxxxxxxx!'

say "UpdateAccessKey Inactive: refused; Active: accepted"
aws iam update-access-key --user-name operator --access-key-id "$AKID" --status Inactive
op_error InvalidClientTokenId "The security token included in the request is invalid." \
  sts get-caller-identity
op_error UnrecognizedClientException "The security token included in the request is invalid." \
  ssm get-parameters --names /app/motd
aws iam update-access-key --user-name operator --access-key-id "$AKID" --status Active
eq "$(op sts get-caller-identity --query Arn --output text)" "$OPERATOR" "the key, active again"

say "DeleteUser: DeleteConflict until keys, policies and groups are gone"
expect_error DeleteConflict "must delete access keys first" iam delete-user --user-name operator
aws iam delete-access-key --user-name operator --access-key-id "$AKID"
expect_error DeleteConflict "must delete policies first" iam delete-user --user-name operator
aws iam delete-user-policy --user-name operator --policy-name run
expect_error DeleteConflict "must remove users from group first" \
  iam delete-user --user-name operator
aws iam remove-user-from-group --group-name readers --user-name operator
aws iam delete-user --user-name operator
expect_error NoSuchEntity "The user with name operator cannot be found." \
  iam get-user --user-name operator

say "the log: no secret"
if grep -qF -- "$SECRET" "$LOG"; then fail "the log carries the user's secret"; fi
say "PASS"

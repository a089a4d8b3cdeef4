#!/usr/bin/env bash
# Who may hand a role to a task (issue 17): every ECS action is authorised with the caller's
# IAM policies, and naming a role needs iam:PassRole on it, driven only by the real aws CLI
# against the embedded IAM, STS and ECS API and a real dockerd:
#   - an STS session whose only permission is ssm:GetParameters on /public/* (the probe of the
#     issue) cannot register a task definition naming a privileged execution role, run the
#     administrator's privileged one, or list, describe, stop or delete anything; each refusal
#     is AccessDeniedException worded as AWS words it (action, resource, reason);
#   - a session of a role with no policy at all is refused the reads as well;
#   - a session allowed ecs:RunTask on one family in this cluster and iam:PassRole on one role
#     (iam:PassedToService ecs-tasks.amazonaws.com) runs exactly that: its task reaches
#     RUNNING; another family is refused on ecs:RunTask, and a revision of its own family that
#     names another execution role is refused on iam:PassRole, naming the role;
#   - no value of the privileged parameter ever reaches a refused caller or the log.
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir authz
IT_FAIL_HEADER="---- agent log ----"
CLUSTER=authz-$$
ACCT=123456789012
REGION=us-east-2
CLUSTER_ARN=arn:aws:ecs:$REGION:$ACCT:cluster/$CLUSTER
it_endpoint
it_aws_env "$STATE" 1

# as SESSION ARGS...: the real CLI with the credentials of $WORK/SESSION.json
as() {
  local f=$WORK/$1.json
  shift
  env AWS_ACCESS_KEY_ID="$(jq -r .Credentials.AccessKeyId "$f")" \
    AWS_SECRET_ACCESS_KEY="$(jq -r .Credentials.SecretAccessKey "$f")" \
    AWS_SESSION_TOKEN="$(jq -r .Credentials.SessionToken "$f")" \
    AWS_REGION=$REGION "$IT_AWS_BIN" --endpoint-url "$URL" --output json "$@"
}
# denied SESSION MESSAGE-PART ARGS...: `as SESSION ARGS` fails with AccessDeniedException
# whose message holds MESSAGE-PART
denied() {
  local who=$1 part=$2 out rc=0
  shift 2
  out=$(as "$who" "$@" 2>&1) || rc=$?
  [[ $rc -eq 254 || $rc -eq 255 ]] || fail "$who: aws $*: exit $rc, wanted a refusal: $out"
  grep -qF "(AccessDeniedException)" <<<"$out" || fail "$who: aws $*: not AccessDenied: $out"
  grep -qF -- "$part" <<<"$out" || fail "$who: aws $*: the message lacks '$part': $out"
  if grep -qF -- "$V_PROD" <<<"$out"; then fail "$who: a refusal carries the value"; fi
}
# role NAME POLICY-JSON|-: a role the account root may assume, with that inline policy
role() {
  aws iam create-role --role-name "$1" --assume-role-policy-document \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::$ACCT:root\"},\"Action\":\"sts:AssumeRole\"}]}" >/dev/null
  if [[ $2 != - ]]; then
    aws iam put-role-policy --role-name "$1" --policy-name p --policy-document "$2"
  fi
  aws sts assume-role --role-arn "arn:aws:iam::$ACCT:role/$1" --role-session-name "s-$1" \
    >"$WORK/$1.json"
}
td() { # td FAMILY EXEC-ROLE PARAMETER: a task definition file for register-task-definition
  cat >"$WORK/td-$1.json" <<JSON
{"family": "$1", "executionRoleArn": "arn:aws:iam::$ACCT:role/$2", "networkMode": "none",
 "containerDefinitions": [{"name": "app", "image": "local/busybox:latest",
   "command": ["sh", "-c", "echo started; sleep 300"], "stopTimeout": 2,
   "secrets": [{"name": "V", "valueFrom": "$3"}]}]}
JSON
}

say "starting the agent (embedded) on $URL"
it_start_agent --mode embedded --region "$REGION" --cluster "$CLUSTER" --log-level debug

say "the administrator: two parameters, two execution roles, two task definitions"
V_PROD="prod-$RANDOM$RANDOM-secret"
aws ssm put-parameter --name /prod/db_password --type SecureString --value "$V_PROD" >/dev/null
aws ssm put-parameter --name /public/motd --type String --value "hello" >/dev/null
create_exec_role priv-exec
aws iam put-role-policy --role-name priv-exec --policy-name p --policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:GetParameters","Resource":"*"}]}'
create_exec_role app-exec
aws iam put-role-policy --role-name app-exec --policy-name p --policy-document \
  "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:GetParameters\",\"Resource\":\"arn:aws:ssm:$REGION:$ACCT:parameter/public/*\"}]}"
td priv priv-exec /prod/db_password
td app app-exec /public/motd
aws ecs register-task-definition --cli-input-json "file://$WORK/td-priv.json" >/dev/null
aws ecs register-task-definition --cli-input-json "file://$WORK/td-app.json" >/dev/null
ADMIN_TASK=$(aws ecs run-task --cluster "$CLUSTER" --task-definition app \
  --query 'tasks[0].taskArn' --output text)
eq "$(wait_status "$ADMIN_TASK" RUNNING STOPPED)" RUNNING "the administrator's task"
aws ecs create-service --cluster "$CLUSTER" --service-name web --task-definition app \
  --desired-count 0 >/dev/null

say "a request signed for another region: refused as ECS's regional endpoints refuse it"
OTHER=eu-west-1
[[ $REGION == "$OTHER" ]] && OTHER=eu-central-1
OUT=$(aws --region "$OTHER" ecs list-clusters 2>&1) && fail "list-clusters signed for $OTHER answered: $OUT"
grep -q "InvalidSignatureException.*Credential should be scoped to a valid region, not '$OTHER'" <<<"$OUT" ||
  fail "the other region's refusal: $OUT"
eq "$(aws ecs list-clusters --query 'length(clusterArns)' --output text)" 1 \
  "list-clusters signed for $REGION"

say "the probe: a session allowed only ssm:GetParameters on /public/*"
role probe "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:GetParameters\",\"Resource\":\"arn:aws:ssm:$REGION:$ACCT:parameter/public/*\"}]}"
PROBE=arn:aws:sts::$ACCT:assumed-role/probe/s-probe
td evil priv-exec /prod/db_password
denied probe "User: $PROBE is not authorized to perform: ecs:RegisterTaskDefinition on resource: * because no identity-based policy allows the ecs:RegisterTaskDefinition action" \
  ecs register-task-definition --cli-input-json "file://$WORK/td-evil.json"
denied probe "User: $PROBE is not authorized to perform: ecs:RunTask on resource: arn:aws:ecs:$REGION:$ACCT:task-definition/priv:1 because no identity-based policy allows the ecs:RunTask action" \
  ecs run-task --cluster "$CLUSTER" --task-definition priv
denied probe "ecs:StartTask on resource: arn:aws:ecs:$REGION:$ACCT:task-definition/priv:1" \
  ecs start-task --cluster "$CLUSTER" --task-definition priv --container-instances x
denied probe "ecs:ListTasks on resource: *" ecs list-tasks --cluster "$CLUSTER"
denied probe "ecs:DescribeTasks on resource: $ADMIN_TASK" \
  ecs describe-tasks --cluster "$CLUSTER" --tasks "$ADMIN_TASK"
denied probe "ecs:StopTask on resource: $ADMIN_TASK" \
  ecs stop-task --cluster "$CLUSTER" --task "$ADMIN_TASK"
denied probe "ecs:DeleteService on resource: arn:aws:ecs:$REGION:$ACCT:service/$CLUSTER/web" \
  ecs delete-service --cluster "$CLUSTER" --service web --force
denied probe "ecs:UpdateService" ecs update-service --cluster "$CLUSTER" --service web \
  --task-definition priv
denied probe "ecs:DescribeTaskDefinition" ecs describe-task-definition --task-definition priv
denied probe "ecs:ListTaskDefinitions" ecs list-task-definitions
# the probe's own permission still works (what it was given, nothing more)
eq "$(as probe ssm get-parameters --names /public/motd --query 'Parameters[0].Value' --output text)" \
  hello "the probe's own permission"
eq "$(wait_status "$ADMIN_TASK" RUNNING STOPPED)" RUNNING "the administrator's task after the probe"

say "a session of a role with no policy: refused the reads too"
role nothing -
denied nothing "ecs:ListServices on resource: *" ecs list-services --cluster "$CLUSTER"
denied nothing "ecs:DescribeClusters" ecs describe-clusters --clusters "$CLUSTER"
denied nothing "ecs:ListTaskDefinitionFamilies" ecs list-task-definition-families

say "a session allowed RunTask on family app in this cluster and PassRole on app-exec"
role runner "{\"Version\":\"2012-10-17\",\"Statement\":[
 {\"Effect\":\"Allow\",\"Action\":\"ecs:RunTask\",\"Resource\":\"arn:aws:ecs:$REGION:$ACCT:task-definition/app:*\",
  \"Condition\":{\"ArnEquals\":{\"ecs:cluster\":\"$CLUSTER_ARN\"}}},
 {\"Effect\":\"Allow\",\"Action\":\"ecs:DescribeTasks\",\"Resource\":\"*\"},
 {\"Effect\":\"Allow\",\"Action\":\"iam:PassRole\",\"Resource\":\"arn:aws:iam::$ACCT:role/app-exec\",
  \"Condition\":{\"StringEquals\":{\"iam:PassedToService\":\"ecs-tasks.amazonaws.com\"}}}]}"
RUNNER=arn:aws:sts::$ACCT:assumed-role/runner/s-runner
TASK=$(as runner ecs run-task --cluster "$CLUSTER" --task-definition app \
  --query 'tasks[0].taskArn' --output text)
[[ $TASK == arn:aws:ecs:$REGION:$ACCT:task/$CLUSTER/* ]] || fail "runner's task: $TASK"
S=
for ((i = 0; i < 120; i++)); do
  S=$(as runner ecs describe-tasks --cluster "$CLUSTER" --tasks "$TASK" \
    --query 'tasks[0].lastStatus' --output text)
  [[ $S == RUNNING || $S == STOPPED ]] && break
  sleep 0.5
done
eq "$S" RUNNING "the runner's task"
denied runner "User: $RUNNER is not authorized to perform: ecs:RunTask on resource: arn:aws:ecs:$REGION:$ACCT:task-definition/priv:1" \
  ecs run-task --cluster "$CLUSTER" --task-definition priv
# a revision of its own family naming the privileged role: PassRole on that role is missing
td app priv-exec /prod/db_password
aws ecs register-task-definition --cli-input-json "file://$WORK/td-app.json" >/dev/null
denied runner "User: $RUNNER is not authorized to perform: iam:PassRole on resource: arn:aws:iam::$ACCT:role/priv-exec because no identity-based policy allows the iam:PassRole action" \
  ecs run-task --cluster "$CLUSTER" --task-definition app:2
denied runner "ecs:StopTask" ecs stop-task --cluster "$CLUSTER" --task "$TASK"
N=$(aws ecs list-tasks --cluster "$CLUSTER" --query 'length(taskArns)' --output text)
eq "$N" 2 "running tasks: the administrator's and the runner's, nothing the refusals made"

say "the log: every refusal named, no value"
grep -qF "ECS RunTask by $PROBE refused: User: $PROBE is not authorized" "$LOG" ||
  fail "the refusal is not logged"
if grep -qF -- "$V_PROD" "$LOG"; then fail "the log carries the value"; fi
say "PASS"

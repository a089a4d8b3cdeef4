#!/usr/bin/env bash
# Issue 21, expansion end to end with the real CLI and a real dockerd: the label
# ecs-secrets.expand.DB_ on a JSON secret gives DB_<key> for every top-level key, and
# ecs-secrets.expand.APP_ on an SSM path gives every parameter under it (recursively, names
# mapped: /exp/prod/db/pass -> APP_db_pass). describe-tasks names each label once with its
# version (the secret's version id, the path's set version), never a value. A role without
# ssm:GetParametersByPath on the path is refused by the preflight, naming it. Drift (every
# second here) makes the task stale once a parameter is added under the path.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir expansion
IT_TASK_SLEEP=0.25
it_aws_env "$STATE"
it_endpoint
it_start_agent --drift-interval 1

ACCT=123456789012
aws secretsmanager create-secret --name expdb \
  --secret-string '{"username":"exp-admin","password":"Pw-9x7q"}' >/dev/null
aws ssm put-parameter --name /exp/prod/host --type String --value host-4k2.local >/dev/null
aws ssm put-parameter --name /exp/prod/db/pass --type SecureString --value Sp-4q8w >/dev/null
aws ssm put-parameter --name /exp/prod/db/deep/x --type String --value deep-7y >/dev/null
aws ssm put-parameter --name /exp/prodx --type String --value beside-3z >/dev/null
create_exec_role exec
aws iam put-role-policy --role-name exec --policy-name exp --policy-document \
  "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:GetParametersByPath\",\"Resource\":\"arn:aws:ssm:us-east-1:$ACCT:parameter/exp/prod\"},{\"Effect\":\"Allow\",\"Action\":\"secretsmanager:GetSecretValue\",\"Resource\":\"arn:aws:secretsmanager:us-east-1:$ACCT:secret:expdb-*\"}]}"
defs='[{"name":"c","image":"local/busybox:latest","stopTimeout":1,"command":["sleep","120"],"dockerLabels":{"ecs-secrets.expand.DB_":"expdb","ecs-secrets.expand.APP_":"/exp/prod/"}}]'
aws ecs register-task-definition --family exp --network-mode none \
  --execution-role-arn "arn:aws:iam::$ACCT:role/exec" --container-definitions "$defs" >/dev/null
T=$(aws ecs run-task --task-definition exp --query 'tasks[0].taskArn' --output text)
s=$(wait_status "$T" RUNNING STOPPED)
[[ $s == RUNNING ]] || fail "task $s: $(aws ecs describe-tasks --tasks "$T" --query 'tasks[0].stoppedReason' --output text)"
C=$(aws ecs describe-tasks --tasks "$T" --query 'tasks[0].containers[0].runtimeId' --output text)
env=$(docker -H "$ES_TEST_DOCKER_HOST" exec "$C" env)
for want in DB_username=exp-admin DB_password=Pw-9x7q APP_host=host-4k2.local APP_db_pass=Sp-4q8w \
  APP_db_deep_x=deep-7y; do
  grep -qxF "$want" <<<"$env" || fail "the container's env lacks $want: $(grep -E '^(DB|APP)_' <<<"$env" | cut -d= -f1)"
done
[[ $(grep -cE '^(DB|APP)_' <<<"$env") -eq 5 ]] || fail "other variables: $(grep -E '^(DB|APP)_' <<<"$env" | cut -d= -f1)"
echo "expanded: DB_username, DB_password from the JSON secret; APP_host, APP_db_pass, APP_db_deep_x from /exp/prod/"

# one entry per label, never a value
attrs=$(aws ecs describe-tasks --tasks "$T" --query 'tasks[0].attributes[].[name,value]' --output text)
grep -qE "^ecs-secrets-agent/secret/c/ecs-secrets.expand.DB_	version [0-9a-f-]{36} " <<<"$attrs" ||
  fail "the JSON secret's entry: $attrs"
grep -qE "^ecs-secrets-agent/secret/c/ecs-secrets.expand.APP_	version set-sha256:[0-9a-f]{32} " <<<"$attrs" ||
  fail "the path's entry: $attrs"
target=$(aws ecs describe-tasks --tasks "$T" --query \
  "tasks[0].attributes[?name=='ecs-secrets-agent/secret/c/ecs-secrets.expand.APP_'].targetId" --output text)
eq "$target" "arn:aws:ssm:us-east-1:$ACCT:parameter/exp/prod" "the path's entry names the path's ARN"
raw=$(aws ecs describe-tasks --tasks "$T")
for v in Pw-9x7q Sp-4q8w host-4k2.local deep-7y exp-admin; do
  ! grep -qF "$v" <<<"$raw" || fail "describe-tasks holds a value ($v)"
done

# the preflight: a role that may read the secret but not list the path
create_exec_role exec2
aws iam put-role-policy --role-name exec2 --policy-name exp --policy-document \
  "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"secretsmanager:GetSecretValue\",\"ssm:GetParameters\"],\"Resource\":\"*\"}]}"
aws ecs register-task-definition --family exp2 --network-mode none \
  --execution-role-arn "arn:aws:iam::$ACCT:role/exec2" --container-definitions "$defs" >/dev/null
T2=$(aws ecs run-task --task-definition exp2 --query 'tasks[0].taskArn' --output text)
s=$(wait_status "$T2" STOPPED)
[[ $s == STOPPED ]] || fail "the task without ssm:GetParametersByPath is $s"
why=$(aws ecs describe-tasks --tasks "$T2" --query 'tasks[0].stoppedReason' --output text)
grep -qF "ResourceInitializationError" <<<"$why" || fail "stoppedReason: $why"
grep -qF "ssm:GetParametersByPath on arn:aws:ssm:us-east-1:$ACCT:parameter/exp/prod" <<<"$why" ||
  fail "the refusal does not name ssm:GetParametersByPath on the path: $why"
echo "refused: $why"

# a name given twice (the label's DB_username and environment's) stops the task, naming both
coll='[{"name":"c","image":"local/busybox:latest","stopTimeout":1,"command":["sleep","120"],"environment":[{"name":"DB_username","value":"env-1"}],"dockerLabels":{"ecs-secrets.expand.DB_":"expdb"}}]'
aws ecs register-task-definition --family exp3 --network-mode none \
  --execution-role-arn "arn:aws:iam::$ACCT:role/exec" --container-definitions "$coll" >/dev/null
T3=$(aws ecs run-task --task-definition exp3 --query 'tasks[0].taskArn' --output text)
s=$(wait_status "$T3" STOPPED)
[[ $s == STOPPED ]] || fail "the task with a collision is $s"
why=$(aws ecs describe-tasks --tasks "$T3" --query 'tasks[0].stoppedReason' --output text)
grep -qF "ResourceInitializationError" <<<"$why" || fail "stoppedReason: $why"
grep -qF "the variable DB_username of the label ecs-secrets.expand.DB_ is also given by environment" <<<"$why" ||
  fail "the collision is not named: $why"
! grep -qE "Pw-9x7q|exp-admin" <<<"$why" || fail "the reason holds a value: $why"
echo "refused: $why"

# drift: a parameter added under the path makes the task stale
stale() {
  aws ecs describe-tasks --tasks "$T" --query 'tasks[0].attributes[].[name,value]' --output text |
    grep -E "^ecs-secrets-agent/stale/c/ecs-secrets.expand.APP_	" || true
}
# the same through it_api, for the polling loops
stale_fast() {
  it_api ecs AmazonEC2ContainerServiceV20141113.DescribeTasks "$(jq -cn --arg t "$T" '{tasks: [$t]}')" |
    jq -r '.tasks[0].attributes[]? | [.name, .value] | @tsv' |
    grep -E "^ecs-secrets-agent/stale/c/ecs-secrets.expand.APP_	" || true
}
sleep 2
[[ -z $(stale) ]] || fail "stale before any change: $(stale)"
aws ssm put-parameter --name /exp/prod/added --type String --value added-5v >/dev/null
until=$((SECONDS + 90))
while [[ -z $(stale_fast) ]] && ((SECONDS < until)); do sleep 0.5; done
[[ -n $(stale) ]] || fail "drift did not see the parameter added under the path"
echo "drift: $(stale)"
! aws ecs describe-tasks --tasks "$T" --query 'tasks[0].attributes[].[name,value]' --output text |
  grep -qE "^ecs-secrets-agent/stale/c/ecs-secrets.expand.DB_	" || fail "the JSON secret is called stale"

# after a restart the entries are read back from the store and bound to their labels:
# drift still knows the path (stale) and the JSON secret (current)
it_stop_agent
it_start_agent --drift-interval 1
until=$((SECONDS + 90))
while [[ -z $(stale_fast) ]] && ((SECONDS < until)); do sleep 0.5; done
[[ -n $(stale) ]] || fail "after a restart drift no longer sees the path's change"
current() { # the raw answer's secretsResolved[] (botocore drops it)
  it_aws --debug ecs describe-tasks --tasks "$T" 2>&1 >/dev/null |
    grep -o "\"name\":\"ecs-secrets.expand.DB_\",[^}]*" | head -1 | grep -o '"current":[a-z]*' | cut -d: -f2
}
until=$((SECONDS + 60))
while [[ $(current) != true ]] && ((SECONDS < until)); do sleep 0.5; done
eq "$(current)" true "the JSON secret's entry after a restart"
echo "restart: the path's entry still stale, the JSON secret's current"

# a SecureString under the path with a customer key: the preflight names kms:Decrypt on it;
# once the role holds it, the variable comes decrypted
KEY=$(aws kms create-key --description exp --query KeyMetadata.Arn --output text)
aws ssm put-parameter --name /exp/prod/ck --type SecureString --key-id "$KEY" --value Ck-6t2r >/dev/null
T4=$(aws ecs run-task --task-definition exp --query 'tasks[0].taskArn' --output text)
s=$(wait_status "$T4" STOPPED)
[[ $s == STOPPED ]] || fail "the task without kms:Decrypt on the path's key is $s"
why=$(aws ecs describe-tasks --tasks "$T4" --query 'tasks[0].stoppedReason' --output text)
grep -qF "kms:Decrypt on $KEY" <<<"$why" || fail "the refusal does not name kms:Decrypt on $KEY: $why"
echo "refused: $why"
aws iam put-role-policy --role-name exec --policy-name key --policy-document \
  "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"kms:Decrypt\",\"Resource\":\"$KEY\"}]}"
T5=$(aws ecs run-task --task-definition exp --query 'tasks[0].taskArn' --output text)
s=$(wait_status "$T5" RUNNING STOPPED)
[[ $s == RUNNING ]] || fail "task $s: $(aws ecs describe-tasks --tasks "$T5" --query 'tasks[0].stoppedReason' --output text)"
C5=$(aws ecs describe-tasks --tasks "$T5" --query 'tasks[0].containers[0].runtimeId' --output text)
docker -H "$ES_TEST_DOCKER_HOST" exec "$C5" env | grep -qxF APP_ck=Ck-6t2r || fail "APP_ck is not the decrypted value"
aws ecs stop-task --task "$T5" >/dev/null
docker -H "$ES_TEST_DOCKER_HOST" rm -f "$C5" >/dev/null 2>&1 || true

for v in Pw-9x7q Sp-4q8w host-4k2.local deep-7y added-5v beside-3z Ck-6t2r; do
  ! grep -qF "$v" "$LOG" || fail "the agent's log holds a value ($v)"
done
aws ecs stop-task --task "$T" >/dev/null
docker -H "$ES_TEST_DOCKER_HOST" rm -f "$C" >/dev/null 2>&1 || true
echo "expansion: a JSON secret and an SSM path expanded, the preflight named, drift followed the path"

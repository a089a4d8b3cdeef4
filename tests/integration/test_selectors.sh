#!/usr/bin/env bash
# Beyond ECS: SSM `name:version` and `name:label` selectors in valueFrom are honoured, end to
# end with the real CLI: a container gets version 1 by number and by label while the bare name
# gets the current version 2. Drift (every second here) then follows the selectors: the
# label moved to version 2 makes the label's secret stale, the pinned :1 stays current; a
# /aws/reference/secretsmanager/ name is the secret's: put-secret-value makes it stale.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir selectors
IT_TASK_SLEEP=0.25
it_aws_env "$STATE"
it_endpoint
it_start_agent --drift-interval 1

aws ssm put-parameter --name /sel/p --type SecureString --value sel-one >/dev/null
aws ssm put-parameter --name /sel/p --type SecureString --value sel-two --overwrite >/dev/null
aws ssm label-parameter-version --name /sel/p --parameter-version 1 --labels first >/dev/null
aws secretsmanager create-secret --name selref --secret-string ref-one >/dev/null
create_exec_role exec
aws iam put-role-policy --role-name exec --policy-name sel --policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:GetParameters","Resource":"arn:aws:ssm:us-east-1:123456789012:parameter/sel/*"},{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:us-east-1:123456789012:secret:selref-*"}]}'
aws ecs register-task-definition --family sel --network-mode none \
  --execution-role-arn arn:aws:iam::123456789012:role/exec --container-definitions \
  '[{"name":"c","image":"local/busybox:latest","stopTimeout":1,"command":["sh","-c","echo V1=$V1 L=$L CUR=$CUR; sleep 60"],"secrets":[{"name":"V1","valueFrom":"/sel/p:1"},{"name":"L","valueFrom":"/sel/p:first"},{"name":"CUR","valueFrom":"/sel/p"},{"name":"R","valueFrom":"/aws/reference/secretsmanager/selref"}]}]' >/dev/null
T=$(aws ecs run-task --task-definition sel --query 'tasks[0].taskArn' --output text)
s=$(wait_status "$T" RUNNING STOPPED)
[[ $s == RUNNING ]] || fail "task $s: $(aws ecs describe-tasks --tasks "$T" --query 'tasks[0].stoppedReason' --output text)"
C=$(aws ecs describe-tasks --tasks "$T" --query 'tasks[0].containers[0].runtimeId' --output text)
wait_container_log "$C" 40 0.25 V1= || true
out=$(docker -H "$ES_TEST_DOCKER_HOST" logs "$C" 2>&1)
[[ $out == "V1=sel-one L=sel-one CUR=sel-two" ]] || fail "the container printed: $out"
# what each task got: the version resolved, for the pinned and the current reference
attrs=$(aws ecs describe-tasks --tasks "$T" --query 'tasks[0].attributes[].[name,value]' --output text)
grep -qE "secret/c/V1	version 1 " <<<"$attrs" || fail "V1's version: $attrs"
grep -qE "secret/c/CUR	version 2 " <<<"$attrs" || fail "CUR's version: $attrs"
# drift, from DescribeTasks' own secretsResolved[] (botocore drops it: the raw answer)
current() { # NAME -> true | false | (nothing: not checked yet)
  it_aws --debug ecs describe-tasks --tasks "$T" 2>&1 >/dev/null | grep -o "\"name\":\"$1\",[^}]*" | head -1 |
    grep -o '"current":[a-z]*' | cut -d: -f2
}
wait_current() { # NAME true|false: within 90 s (each poll is a CLI run: seconds on a loaded host)
  local until=$((SECONDS + 90))
  while ((SECONDS < until)); do
    [[ $(current "$1") == "$2" ]] && return 0
    sleep 0.5
  done
  fail "drift: $1 is not current=$2 ($(current "$1"))"
}
wait_current L true
wait_current R true
ver=$(grep -oE "secret/c/R	version [^ ]+" <<<"$attrs" | awk '{print $3}')
[[ $ver =~ ^[0-9a-f-]{36}$ ]] || fail "the reference records the secret's version id: $attrs"
aws ssm label-parameter-version --name /sel/p --parameter-version 2 --labels first >/dev/null
wait_current L false
eq_cur() { [[ $(current "$1") == "$2" ]] || fail "drift: $1 should be current=$2"; }
eq_cur V1 true
eq_cur CUR true
eq_cur R true
aws secretsmanager put-secret-value --secret-id selref --secret-string ref-two >/dev/null
wait_current R false
eq_cur V1 true
# and what the CLI prints (issue 24): the task's attributes say which secrets are stale,
# and the log names the task and the secret once, when it goes stale
attrs=$(aws ecs describe-tasks --tasks "$T" --query 'tasks[0].attributes[].[name,value]' --output text)
grep -qE "^ecs-secrets-agent/stale/c/R	the store has version [0-9a-f-]{36}$" <<<"$attrs" ||
  fail "no attribute says R is stale: $attrs"
grep -qE "^ecs-secrets-agent/stale/c/L	the store has version 2$" <<<"$attrs" ||
  fail "no attribute says L is stale: $attrs"
! grep -qE "^ecs-secrets-agent/stale/c/(V1|CUR)	" <<<"$attrs" || fail "a current secret is called stale: $attrs"
grep -qE "^ecs-secrets-agent/staleSecrets	2$" <<<"$attrs" || fail "the task's stale count: $attrs"
grep -qF "drift: task ${T##*/} (sel:1) container c holds a rotated value of /aws/reference/secretsmanager/selref (R)" "$LOG" ||
  fail "the drift log line naming the task and the secret"
[[ $(grep -cF "holds a rotated value of /aws/reference/secretsmanager/selref" "$LOG") -eq 1 ]] ||
  fail "the drift log line is repeated every round"
echo "drift: the moved label and the rotated reference are stale, the pinned version is not"
aws ecs stop-task --task "$T" >/dev/null
docker -H "$ES_TEST_DOCKER_HOST" rm -f "$C" >/dev/null 2>&1 || true
echo "selectors: :1 and :first gave version 1, the bare name version 2"

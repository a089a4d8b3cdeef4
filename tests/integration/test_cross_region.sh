#!/usr/bin/env bash
# The seed's cross-region rule (S8) and the regional stores end to end, without AWS (issue 18),
# driven by the real aws CLI against one agent whose home region is us-east-1:
#   - a parameter that exists only in us-west-2, named by its full ARN in a us-east-1 task:
#     the task runs and its container prints the value; the preflight asked for the us-west-2
#     ARN (a role allowed only us-east-1 ARNs is refused, the us-west-2 ARN named);
#   - the same parameter by bare name: it resolves in the task's region, where it does not
#     exist, and the task stops with ECS's reason (as ECS does);
#   - the same name in three regions holds three values; a container reads each by ARN;
#   - a KMS key pending deletion: a task whose SecureString is under it stops with KMS's reason;
#   - the built-in rotator (RotateSecret, no Lambda) changes a secret a service's tasks hold,
#     and the service's drift report notices it;
#   - a scheduled rotation (rate(4 hours), AWS's shortest, run 1440 times faster by
#     ECS_SECRETS_ROTATION_TIME_SCALE: every 10 s) happens by itself when DescribeSecret's
#     NextRotationDate said, and the service's drift event and its task's stale attribute
#     name the task holding the old value.
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir xregion
IT_FAIL_HEADER="---- agent log ----"
CLUSTER=xr-$$
ACCT=123456789012
it_endpoint
it_aws_env "$STATE" 1
unset ECS_SECRETS_PREFLIGHT || true

say "starting the agent, home region us-east-1"
it_start_agent --mode embedded --region us-east-1 --cluster "$CLUSTER" --drift-interval 1 --log-level debug \
  --rotation-time-scale 1440

say "the same name in three regions, three values"
for r in us-east-1 us-west-2 eu-west-1; do
  aws --region "$r" ssm put-parameter --name /xr/three --type SecureString --value "three-in-$r" >/dev/null
done
for r in us-east-1 us-west-2 eu-west-1; do
  eq "$(aws --region "$r" ssm get-parameter --name /xr/three --with-decryption --query Parameter.Value --output text)" \
    "three-in-$r" "the value in $r"
done
V_WEST="west-only-$RANDOM$RANDOM"
aws --region us-west-2 ssm put-parameter --name /xr/west --type String --value "$V_WEST" >/dev/null
expect_error ParameterNotFound "" --region us-east-1 ssm get-parameter --name /xr/west

create_exec_role xr-exec
ROLE=arn:aws:iam::$ACCT:role/xr-exec
policy() { # policy RESOURCE...: the role may read exactly these
  local res
  res=$(printf '"%s",' "$@")
  aws iam put-role-policy --role-name xr-exec --policy-name secrets --policy-document \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"ssm:GetParameters\",\"secretsmanager:GetSecretValue\",\"kms:Decrypt\"],\"Resource\":[${res%,}]}]}"
}
register() { # register FAMILY SECRETS-JSON COMMAND
  aws ecs register-task-definition --family "$1" --execution-role-arn "$ROLE" --network-mode none \
    --container-definitions "[{\"name\":\"app\",\"image\":\"local/busybox:latest\",\"stopTimeout\":2,\"command\":[\"sh\",\"-c\",\"$3\"],\"secrets\":$2}]" >/dev/null
}
run() { aws ecs run-task --cluster "$CLUSTER" --task-definition "$1" --query 'tasks[0].taskArn' --output text; }
reason() { aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$1" --query 'tasks[0].stoppedReason' --output text; }
cid() { aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$1" --query 'tasks[0].containers[0].runtimeId' --output text; }

WEST_ARN=arn:aws:ssm:us-west-2:$ACCT:parameter/xr/west
say "a us-west-2 parameter by ARN in a us-east-1 task: the preflight checks the us-west-2 ARN"
register xr-arn "[{\"name\":\"W\",\"valueFrom\":\"$WEST_ARN\"},{\"name\":\"A\",\"valueFrom\":\"arn:aws:ssm:us-east-1:$ACCT:parameter/xr/three\"},{\"name\":\"B\",\"valueFrom\":\"arn:aws:ssm:eu-west-1:$ACCT:parameter/xr/three\"}]" \
  'echo \"$W|$A|$B\"; sleep 300'
policy "arn:aws:ssm:us-east-1:$ACCT:parameter/xr/*" "arn:aws:ssm:eu-west-1:$ACCT:parameter/xr/*"
TASK=$(run xr-arn)
eq "$(wait_status "$TASK" STOPPED)" STOPPED "the task whose role may not read us-west-2"
R=$(reason "$TASK")
grep -qF "ssm:GetParameters on $WEST_ARN" <<<"$R" || fail "the preflight did not name the us-west-2 ARN: $R"
say "refused as: $R"
policy "arn:aws:ssm:*:$ACCT:parameter/xr/*"
TASK=$(run xr-arn)
eq "$(wait_status "$TASK" RUNNING STOPPED)" RUNNING "the cross-region task ($(reason "$TASK"))"
wait_container_log "$(cid "$TASK")" 50 0.2 -xF "$V_WEST|three-in-us-east-1|three-in-eu-west-1" ||
  fail "the container did not print the us-west-2, us-east-1 and eu-west-1 values"
aws ecs stop-task --cluster "$CLUSTER" --task "$TASK" >/dev/null

say "the same parameter by bare name: resolved in the task's region, where it does not exist"
register xr-bare '[{"name":"W","valueFrom":"/xr/west"}]' 'echo \"$W\"'
TASK=$(run xr-bare)
eq "$(wait_status "$TASK" STOPPED)" STOPPED "the bare-name task"
R=$(reason "$TASK")
# ECS's own words for a parameter the region does not have, naming the region
grep -qF "failed to fetch secret /xr/west from ssm in us-east-1: InvalidParameters" <<<"$R" ||
  fail "the bare name's reason: $R"
say "refused as: $R"

say "a KMS key pending deletion fails the task with KMS's reason"
KEY=$(aws kms create-key --description xr --query KeyMetadata.Arn --output text)
aws ssm put-parameter --name /xr/doomed --type SecureString --key-id "$KEY" --value "doomed-$RANDOM" >/dev/null
policy "arn:aws:ssm:*:$ACCT:parameter/xr/*" "$KEY"
register xr-doomed '[{"name":"D","valueFrom":"/xr/doomed"}]' 'echo \"$D\"; sleep 300'
aws kms schedule-key-deletion --key-id "$KEY" --pending-window-in-days 7 >/dev/null
TASK=$(run xr-doomed)
eq "$(wait_status "$TASK" STOPPED)" STOPPED "the task under a key pending deletion"
R=$(reason "$TASK")
grep -qF "pending deletion" <<<"$R" || fail "the reason does not name KMS's: $R"
say "refused as: $R"
aws kms cancel-key-deletion --key-id "$KEY" >/dev/null
aws kms enable-key --key-id "$KEY" >/dev/null
TASK=$(run xr-doomed)
eq "$(wait_status "$TASK" RUNNING STOPPED)" RUNNING "the task once the deletion is cancelled ($(reason "$TASK"))"
aws ecs stop-task --cluster "$CLUSTER" --task "$TASK" >/dev/null

say "the built-in rotator: a service's tasks hold the old value, drift notices"
SECRET=$(aws secretsmanager create-secret --name xr/db --secret-string '{"user":"app","password":"first"}' --query ARN --output text)
policy "arn:aws:ssm:*:$ACCT:parameter/xr/*" "$SECRET"
register xr-svc "[{\"name\":\"P\",\"valueFrom\":\"$SECRET:password::\"}]" 'echo \"$P\"; sleep 300'
aws ecs create-service --cluster "$CLUSTER" --service-name xr --task-definition xr-svc --desired-count 1 >/dev/null
end=$((SECONDS + 120))
while ((SECONDS < end)); do
  [[ $(it_service_json "$CLUSTER" xr | jq '.services[0].runningCount') == 1 ]] && break
  sleep 0.5
done
eq "$(aws ecs describe-services --cluster "$CLUSTER" --services xr --query 'services[0].runningCount' --output text)" 1 "the service's task"
aws secretsmanager rotate-secret --secret-id xr/db --rotation-rules 'AutomaticallyAfterDays=30' >/dev/null
NEW=$(aws secretsmanager get-secret-value --secret-id xr/db --query SecretString --output text)
OLD=$(aws secretsmanager get-secret-value --secret-id xr/db --version-stage AWSPREVIOUS --query SecretString --output text)
eq "$(jq -r .password <<<"$OLD")" first "AWSPREVIOUS holds the old value"
[[ $(jq -r .password <<<"$NEW") != first ]] || fail "the built-in rotator did not change the password"
eq "$(jq -r .user <<<"$NEW")" app "the rotator kept the other keys"
aws secretsmanager describe-secret --secret-id xr/db --query 'RotationEnabled' --output text | grep -qx True ||
  fail "rotation not enabled"
end=$((SECONDS + 90))
while ((SECONDS < end)); do
  it_service_events "$CLUSTER" xr | grep -qF "1 tasks hold a rotated value of $SECRET:password::" && break
  sleep 0.5
done
aws ecs describe-services --cluster "$CLUSTER" --services xr --query 'services[0].events[].message' --output text |
  grep -qF "1 tasks hold a rotated value of $SECRET:password::" || fail "drift did not notice the rotation"
grep -F "$(jq -r .password <<<"$NEW")" "$LOG" && fail "the rotated password is in the log"
aws ecs delete-service --cluster "$CLUSTER" --service xr --force >/dev/null

say "a scheduled rotation, rate(4 hours) at 1440 times: it happens by itself, drift names the task"
grep -qF "rotation schedules run 1440 times faster" "$LOG" || fail "the agent did not say its time scale"
CREATED=$(aws secretsmanager create-secret --name xr/sched --secret-string '{"user":"app","password":"first"}' --output json)
SCHED=$(jq -r .ARN <<<"$CREATED")
FIRST_VID=$(jq -r .VersionId <<<"$CREATED")
policy "arn:aws:ssm:*:$ACCT:parameter/xr/*" "$SCHED"
register xr-sched "[{\"name\":\"P\",\"valueFrom\":\"$SCHED:password::\"}]" 'echo \"$P\"; sleep 300'
aws ecs create-service --cluster "$CLUSTER" --service-name xs --task-definition xr-sched --desired-count 1 >/dev/null
end=$((SECONDS + 120))
while ((SECONDS < end)); do
  [[ $(it_service_json "$CLUSTER" xs | jq '.services[0].runningCount') == 1 ]] && break
  sleep 0.5
done
STASK=$(aws ecs list-tasks --cluster "$CLUSTER" --service-name xs --query 'taskArns[0]' --output text)
wait_container_log "$(cid "$STASK")" 50 0.2 -xF first || fail "the service's task did not print the first value"
epoch() { date -d "$1" +%s.%N; } # the CLI prints dates as ISO 8601
BEFORE=$(date +%s.%N)
aws secretsmanager rotate-secret --secret-id xr/sched --no-rotate-immediately \
  --rotation-rules 'ScheduleExpression=rate(4 hours)' >/dev/null
AFTER=$(date +%s.%N)
DESC=$(aws secretsmanager describe-secret --secret-id xr/sched --output json)
eq "$(jq -r .RotationRules.ScheduleExpression <<<"$DESC")" "rate(4 hours)" "the stored schedule (AWS's, unscaled)"
eq "$(jq -r .LastRotatedDate <<<"$DESC")" null "no rotation yet"
NEXT=$(epoch "$(jq -r .NextRotationDate <<<"$DESC")")
# 4 hours / 1440 = 10 s after the rotate-secret call
awk -v n="$NEXT" -v b="$BEFORE" -v a="$AFTER" 'BEGIN { exit !(n >= b + 10 - 0.01 && n <= a + 10 + 0.01) }' ||
  fail "NextRotationDate $NEXT is not 10 s after the call ($BEFORE..$AFTER)"
say "NextRotationDate is the call + 10 s, $(awk -v n="$NEXT" -v t="$(date +%s.%N)" 'BEGIN { printf "%.1f", n - t }') s from now; waiting, nothing asked of the secret"
# only the agent's own drift checks (metadata) and its timer touch the secret until the task
# has stopped printing the old value being current
end=$((SECONDS + 90))
while ((SECONDS < end)); do
  it_service_events "$CLUSTER" xs | grep -qF "(service xs) 1 tasks hold a rotated value of $SCHED:password::" && break
  sleep 0.25
done
SAW=$(date +%s.%N)
aws ecs describe-services --cluster "$CLUSTER" --services xs --query 'services[0].events[].message' --output text |
  grep -qF "(service xs) 1 tasks hold a rotated value of $SCHED:password::" ||
  fail "drift did not notice the scheduled rotation"
# the schedule keeps rotating every 10 s: stop it, then read when the first rotation was (the
# oldest version after the created one; a slow host may have seen more than one since)
aws secretsmanager cancel-rotate-secret --secret-id xr/sched >/dev/null
VERSIONS=$(aws secretsmanager list-secret-version-ids --secret-id xr/sched --include-deprecated --output json)
FIRST_ROT=$(jq -r --arg v "$FIRST_VID" '.Versions[] | select(.VersionId != $v) | .CreatedDate' <<<"$VERSIONS" |
  while read -r d; do epoch "$d"; done | sort -n | head -1)
[[ -n $FIRST_ROT ]] || fail "no rotated version: $VERSIONS"
awk -v l="$FIRST_ROT" -v n="$NEXT" 'BEGIN { exit !(l >= n - 0.001 && l <= n + 5) }' ||
  fail "the first rotation happened at $FIRST_ROT, NextRotationDate said $NEXT"
say "rotated at NextRotationDate +$(awk -v l="$FIRST_ROT" -v n="$NEXT" 'BEGIN { printf "%.2f", l - n }') s; drift's event $(awk -v s="$SAW" -v l="$FIRST_ROT" 'BEGIN { printf "%.1f", s - l }') s later"
grep -qF "rotation: 1 scheduled rotation(s)" "$LOG" || say "(rotated by a drift check's touch before the timer's tick)"
OLD=$(aws secretsmanager get-secret-value --secret-id xr/sched --version-id "$FIRST_VID" --query SecretString --output text)
eq "$(jq -r .password <<<"$OLD")" first "the created version holds the old value"
jq -e --arg v "$FIRST_VID" '.Versions[] | select(.VersionId == $v) | (.VersionStages // []) | index("AWSCURRENT") | not' \
  <<<"$VERSIONS" >/dev/null || fail "the created version is still AWSCURRENT: $VERSIONS"
# the task holding it: named by its stale attribute in describe-tasks
STALE=$(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$STASK" --query 'tasks[0].attributes[].name' --output text)
grep -qF "ecs-secrets-agent/stale/app/P" <<<"$STALE" || fail "the service's task $STASK is not marked stale: $STALE"
say "the task holding the old value: $STASK ($STALE)"
grep -F "$(jq -r .password <<<"$(aws secretsmanager get-secret-value --secret-id xr/sched --query SecretString --output text)")" "$LOG" &&
  fail "the rotated password is in the log"
aws ecs delete-service --cluster "$CLUSTER" --service xs --force >/dev/null
it_stop_agent
say "ok"

#!/usr/bin/env bash
# Redeploy on rotation (issue 21), with the real aws and docker CLIs only: a 2-task service
# tagged ecs-secrets:redeploy-on-rotation=true (min interval 60 s) and an untagged 1-task
# service beside it read one Secrets Manager secret; the agent checks drift every second.
# - the tags: malformed redeploy values refused naming the tag (create-service and
#   tag-resource), ECS's tag rules (aws: prefix, unknown resources, the short service ARN),
#   tag-resource / untag-resource / list-tags-for-resource on a service, a task definition
#   and a task;
# - put-secret-value v2: within one drift interval plus one deployment the tagged service's
#   PRIMARY deployment is a new one, started by itself with an event naming the secret's ARN
#   and the new version; its 2 new tasks hold v2 (docker exec ... env), the old ones are
#   STOPPED; the untagged service keeps its one deployment and its task holds v1;
# - put-secret-value v3 within the min interval: no deployment (the event says when the next
#   one may start), then one once the interval has passed, whose tasks hold v3;
# - /metrics counts 2 automatic redeployments; no value reaches the log.
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir svc-redeploy
CLUSTER=redeploy # its containers are removed on exit
IT_FAIL_LINES=40
it_endpoint
it_aws_env "$STATE" 1
ACCOUNT=123456789012
REGION=us-east-1
INTERVAL=60 # long enough for the checks in between (each CLI call takes a second or two)

it_start_agent --mode embedded --region $REGION --cluster $CLUSTER --drift-interval 1 --log-level info

events() { aws ecs describe-services --cluster $CLUSTER --services "$1" --query 'services[0].events[].message' --output text | tr '\t' '\n'; }
wait_event() { # SERVICE TEXT SECONDS (polled through it_api; the CLI's answer is what fails shows)
  local end=$((SECONDS + $3))
  while ((SECONDS < end)); do
    it_service_events $CLUSTER "$1" | grep -qF -- "$2" && return 0
    sleep 0.5
  done
  fail "no event '$2' in: $(events "$1" | head -8)"
}
# created SERVICE: the PRIMARY deployment's createdAt, epoch seconds
created() { date -d "$(aws ecs describe-services --cluster $CLUSTER --services "$1" --query 'services[0].deployments[0].createdAt' --output text)" +%s; }
primary() { aws ecs describe-services --cluster $CLUSTER --services "$1" --query 'services[0].deployments[0].id' --output text; }
n_deployments() { aws ecs describe-services --cluster $CLUSTER --services "$1" --query 'length(services[0].deployments)'; }
service_tasks() { aws ecs list-tasks --cluster $CLUSTER --service-name "$1" --query taskArns --output text; }
# holds TASK: the DB_PASSWORD the task's container was created with (docker exec ... env)
holds() {
  local cid
  cid=$(aws ecs describe-tasks --cluster $CLUSTER --tasks "$1" --query 'tasks[0].containers[0].runtimeId' --output text)
  command docker -H "$ES_TEST_DOCKER_HOST" exec "$cid" env | sed -n 's/^DB_PASSWORD=//p'
}
# rollout_done SERVICE DEPLOYMENT SECONDS: that deployment is PRIMARY, COMPLETED and alone
rollout_done() {
  local out end=$((SECONDS + $3))
  while ((SECONDS < end)); do
    out=$(it_service_json $CLUSTER "$1" | jq -r '.services[0].deployments[] | [.id, .rolloutState] | @tsv')
    [[ $out == "$2"$'\t'COMPLETED ]] && return 0
    sleep 0.5
  done
  fail "$1: deployment $2 did not complete alone: $out"
}

say "an execution role that may read rd/*, the secret rd/db = v1, a task definition reading it"
aws iam create-role --role-name rdExec --assume-role-policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}' >/dev/null
aws iam put-role-policy --role-name rdExec --policy-name rd --policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:*:*:secret:rd/*"}]}'
read -r ARN _ < <(aws secretsmanager create-secret --name rd/db --secret-string v1-of-rd-secret \
  --query '[ARN, VersionId]' --output text)
cat >"$WORK/td.json" <<TD
{"family": "rd", "executionRoleArn": "arn:aws:iam::$ACCOUNT:role/rdExec", "networkMode": "none",
 "containerDefinitions": [{"name": "app", "image": "local/busybox:latest",
   "command": ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait \$!; done"],
   "stopTimeout": 1, "secrets": [{"name": "DB_PASSWORD", "valueFrom": "$ARN"}]}],
 "tags": [{"key": "team", "value": "blue"}]}
TD
TD_ARN=$(aws ecs register-task-definition --cli-input-json "file://$WORK/td.json" --query taskDefinition.taskDefinitionArn --output text)
eq "$TD_ARN" "arn:aws:ecs:$REGION:$ACCOUNT:task-definition/rd:1" "the definition"
eq "$(aws ecs list-tags-for-resource --resource-arn "$TD_ARN" --query 'tags[0].[key,value]' --output text)" \
  $'team\tblue' "the definition's registered tags"

say "malformed redeploy tags are refused, naming the tag"
DC='maximumPercent=200,minimumHealthyPercent=100,deploymentCircuitBreaker={enable=true,rollback=false}'
expect_error InvalidParameterException "ecs-secrets:redeploy-on-rotation: must be true or false" \
  ecs create-service --cluster $CLUSTER --service-name bad --task-definition rd --desired-count 1 \
  --tags key=ecs-secrets:redeploy-on-rotation,value=yes
expect_error InvalidParameterException "ecs-secrets:redeploy-min-interval: must be a whole number" \
  ecs create-service --cluster $CLUSTER --service-name bad --task-definition rd --desired-count 1 \
  --tags key=ecs-secrets:redeploy-on-rotation,value=true key=ecs-secrets:redeploy-min-interval,value=5m
expect_error InvalidParameterException "aws: prefix is reserved" \
  ecs create-service --cluster $CLUSTER --service-name bad --task-definition rd --desired-count 1 \
  --tags key=aws:owner,value=x
eq "$(aws ecs list-services --cluster $CLUSTER --query 'length(serviceArns)')" 0 "nothing created"

say "the tagged service (2 tasks, min interval $INTERVAL s) and an untagged one"
OUT=$(aws ecs create-service --cluster $CLUSTER --service-name tagged --task-definition rd --desired-count 2 \
  --deployment-configuration "$DC" \
  --tags key=ecs-secrets:redeploy-on-rotation,value=true key=ecs-secrets:redeploy-min-interval,value=$INTERVAL)
eq "$(jq -r '[.service.tags[].key] | sort | join(",")' <<<"$OUT")" \
  "ecs-secrets:redeploy-min-interval,ecs-secrets:redeploy-on-rotation" "create-service answers the tags"
aws ecs create-service --cluster $CLUSTER --service-name plain --task-definition rd --desired-count 1 \
  --deployment-configuration "$DC" >/dev/null
wait_event tagged "has reached a steady state." 60
wait_event plain "has reached a steady state." 60
SVC=arn:aws:ecs:$REGION:$ACCOUNT:service/$CLUSTER/tagged
eq "$(aws ecs list-tags-for-resource --resource-arn "$SVC" --query 'length(tags)')" 2 "the service's tags"
eq "$(aws ecs describe-services --cluster $CLUSTER --services tagged --include TAGS --query 'length(services[0].tags)')" 2 \
  "describe-services --include TAGS"

say "tag-resource / untag-resource / list-tags-for-resource, and ECS's refusals"
read -r -a OLD <<<"$(service_tasks tagged)"
eq "${#OLD[@]}" 2 "two tasks"
aws ecs tag-resource --resource-arn "${OLD[0]}" --tags key=k1,value=v key=k2,value= >/dev/null
aws ecs untag-resource --resource-arn "${OLD[0]}" --tag-keys k1 nope >/dev/null
eq "$(aws ecs list-tags-for-resource --resource-arn "${OLD[0]}" --query 'tags[].[key,value]' --output text)" $'k2\t' "a task's tags"
aws ecs tag-resource --resource-arn "$TD_ARN" --tags key=team,value=green >/dev/null
eq "$(aws ecs describe-task-definition --task-definition rd:1 --include TAGS --query 'tags[0].value' --output text)" green \
  "describe-task-definition --include TAGS after tag-resource"
aws ecs tag-resource --resource-arn "$SVC" --tags key=owner,value=ops >/dev/null
eq "$(aws ecs list-tags-for-resource --resource-arn "$SVC" --query 'length(tags)')" 3 "a third tag"
aws ecs untag-resource --resource-arn "$SVC" --tag-keys owner >/dev/null
expect_error InvalidParameterException "ecs-secrets:redeploy-min-interval: must be a whole number" \
  ecs tag-resource --resource-arn "$SVC" --tags key=ecs-secrets:redeploy-min-interval,value=-1
expect_error InvalidParameterException "aws: prefix is reserved" \
  ecs untag-resource --resource-arn "$SVC" --tag-keys aws:cloudformation:stack-name
expect_error ResourceNotFoundException "The specified resource could not be found." \
  ecs list-tags-for-resource --resource-arn "arn:aws:ecs:$REGION:$ACCOUNT:service/$CLUSTER/nope"
expect_error ResourceNotFoundException "The specified resource could not be found." \
  ecs tag-resource --resource-arn "arn:aws:ecs:$REGION:$ACCOUNT:task-definition/rd:9" --tags key=a,value=b
expect_error InvalidParameterException "long ARN" \
  ecs tag-resource --resource-arn "arn:aws:ecs:$REGION:$ACCOUNT:service/tagged" --tags key=a,value=b
expect_error InvalidParameterException "not an ECS resource of this agent" \
  ecs list-tags-for-resource --resource-arn "arn:aws:ecs:eu-west-1:$ACCOUNT:service/$CLUSTER/tagged"
# shellcheck disable=SC2016 # JMESPath's literal, not a shell expansion
eq "$(aws ecs list-tags-for-resource --resource-arn "$SVC" --query 'tags[?key==`ecs-secrets:redeploy-min-interval`].value' --output text)" \
  "$INTERVAL" "the refused tag left the interval as it was"

for t in "${OLD[@]}"; do eq "$(holds "$t")" v1-of-rd-secret "an old task holds v1"; done
DEP0=$(primary tagged)
PLAIN_DEP=$(primary plain)
PLAIN_TASK=$(service_tasks plain)

say "rotation 1: put-secret-value v2"
V2=$(aws secretsmanager put-secret-value --secret-id "$ARN" --secret-string v2-of-rd-secret --query VersionId --output text)
T1=$(date +%s.%N)
wait_event tagged "has started a new deployment" 15
DEP1=$(primary tagged)
[[ $DEP1 != "$DEP0" ]] || fail "the PRIMARY deployment is still $DEP0"
R1=$(created tagged)
events tagged | grep -qxF "(service tagged) has started a new deployment $DEP1: secret $ARN version $V2 rotated (ecs-secrets:redeploy-on-rotation)." ||
  fail "the deployment's event: $(events tagged | head -5)"
rollout_done tagged "$DEP1" 30
T2=$(date +%s.%N)
say "rotation to a completed rollout: $(awk -v a="$T1" -v b="$T2" 'BEGIN { printf "%.1f", b - a }') s"
awk -v a="$T1" -v b="$T2" 'BEGIN { exit !(b - a < 30) }' || fail "the redeployment took over 30 s"

say "rotation 2 within the min interval: put-secret-value v3 (the checks of rotation 1 follow)"
V3=$(aws secretsmanager put-secret-value --secret-id "$ARN" --secret-string v3-of-rd-secret --query VersionId --output text)
(($(date +%s) < R1 + INTERVAL - 20)) || fail "the rollout took too long to test inside the interval"
read -r -a NEW <<<"$(service_tasks tagged)"
eq "${#NEW[@]}" 2 "two new tasks"
for t in "${NEW[@]}"; do
  [[ " ${OLD[*]} " != *" $t "* ]] || fail "$t is an old task"
  eq "$(aws ecs describe-tasks --cluster $CLUSTER --tasks "$t" --query 'tasks[0].startedBy' --output text)" "$DEP1" "started by the new deployment"
  eq "$(holds "$t")" v2-of-rd-secret "a new task holds v2"
done
for t in "${OLD[@]}"; do
  eq "$(wait_status "$t" STOPPED)" STOPPED "the old task $t"
done
eq "$(primary plain)" "$PLAIN_DEP" "the untagged service did not redeploy"
eq "$(n_deployments plain)" 1 "the untagged service has one deployment"
eq "$(holds "$PLAIN_TASK")" v1-of-rd-secret "the untagged service's task still holds v1"
events plain | grep -qF "(service plain) 1 tasks hold a rotated value of $ARN" || fail "drift: $(events plain | head -3)"

say "no deployment within the min interval"
wait_event tagged "the next automatic deployment may start in" 10
events tagged | grep -E "^\(service tagged\) 2 tasks hold a rotated value of $ARN; the next automatic deployment may start in [0-9]+ seconds \(ecs-secrets:redeploy-min-interval $INTERVAL\)\.\$" >/dev/null ||
  fail "the deferral's event: $(events tagged | head -3)"
# a look that begins before the interval's end may answer after it, when the next deployment
# has come: the createdAt of whichever deployment is seen next is what must be INTERVAL after
# R1 (checked below), not the moment a look happened to return
while (($(date +%s) < R1 + INTERVAL - 2)); do
  [[ $(primary tagged) == "$DEP1" ]] || break
  sleep 1
done
say "the min interval has passed (or a deployment came: its createdAt is checked)"
for ((i = 0; i < 30; i++)); do
  [[ $(primary tagged) != "$DEP1" ]] && break
  sleep 0.5
done
DEP2=$(primary tagged)
[[ $DEP2 != "$DEP1" ]] || fail "no deployment after the min interval"
R2=$(created tagged)
((R2 - R1 >= INTERVAL)) || fail "the second deployment came $((R2 - R1)) s after the first (min interval $INTERVAL)"
events tagged | grep -qxF "(service tagged) has started a new deployment $DEP2: secret $ARN version $V3 rotated (ecs-secrets:redeploy-on-rotation)." ||
  fail "the second deployment's event: $(events tagged | head -5)"
rollout_done tagged "$DEP2" 30
for t in $(service_tasks tagged); do eq "$(holds "$t")" v3-of-rd-secret "a task of the second deployment holds v3"; done
eq "$(primary plain)" "$PLAIN_DEP" "the untagged service still did not redeploy"

say "the tagged service's events about rotations (newest first):"
events tagged | grep -E "has started a new deployment|may start in" || true
metrics=$(curl -sf "$URL/metrics") || fail "no /metrics"
grep -qx "ecs_agent_service_redeployments_total 2" <<<"$metrics" ||
  fail "/metrics: $(grep redeploy <<<"$metrics")"
grep -qF -- "-of-rd-secret" "$LOG" && fail "a value reached the log"
echo OK

#!/usr/bin/env bash
# Services through the ECS API, driven only by the real aws CLI: create-service ->
# "has started 2 tasks" and "has reached a steady state." events, describe/list, the
# errors ECS answers (duplicate name, unknown service, delete above 0 without force),
# update-service --force-new-deployment -> a second deployment that completes, the old
# tasks stopped; delete-service --force -> DRAINING then INACTIVE. (The rotation example
# with its three stores, once the second half of this test, is test_services_rotate.sh: in
# another lane, so that neither is the suite's longest test.)
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir svc-cli
CLUSTER=svccli # its containers are removed on exit
IT_FAIL_LINES=30
it_endpoint
it_aws_env "$STATE" 1

it_start_agent --mode embedded --region us-east-1 --cluster svccli --drift-interval 2 --log-level info

events() { aws ecs describe-services --cluster svccli --services "$1" --query 'services[0].events[].message' --output text | tr '\t' '\n'; }
wait_event() { # SERVICE TEXT SECONDS (polled through it_api)
  local end=$((SECONDS + $3))
  while ((SECONDS < end)); do
    it_service_events svccli "$1" | grep -qF -- "$2" && return 0
    sleep 0.5
  done
  fail "no event '$2' in: $(events "$1" | head -5)"
}

cat >"$WORK/plain.json" <<'TD'
{"family": "plain", "networkMode": "none",
 "containerDefinitions": [{"name": "app", "image": "local/busybox:latest",
   "command": ["sleep", "3600"], "stopTimeout": 1}]}
TD
aws ecs register-task-definition --cli-input-json "file://$WORK/plain.json" >/dev/null
OUT=$(aws ecs create-service --cluster svccli --service-name web --task-definition plain --desired-count 2 \
  --deployment-configuration 'maximumPercent=200,minimumHealthyPercent=100')
eq "$(jq -r .service.serviceArn <<<"$OUT")" "arn:aws:ecs:us-east-1:123456789012:service/svccli/web" "serviceArn"
eq "$(jq -r '.service.deployments[0].status' <<<"$OUT")" PRIMARY "PRIMARY deployment"
eq "$(jq -r '.service.deployments[0].rolloutState' <<<"$OUT")" IN_PROGRESS "rolloutState"
wait_event web "has reached a steady state." 60
events web | grep -E '^\(service web\) has started 2 tasks: \(task [0-9a-f]{32}\) \(task [0-9a-f]{32}\)\.$' >/dev/null ||
  fail "the started event: $(events web)"
OUT=$(aws ecs describe-services --cluster svccli --services web nope)
eq "$(jq -r '.services[0].runningCount' <<<"$OUT")" 2 "runningCount"
eq "$(jq -r '.services[0].deployments[0].rolloutState' <<<"$OUT")" COMPLETED "COMPLETED"
eq "$(jq -r '.failures[0].reason' <<<"$OUT")" MISSING "a missing service"
eq "$(aws ecs list-services --cluster svccli --query 'serviceArns[0]' --output text)" \
  "arn:aws:ecs:us-east-1:123456789012:service/svccli/web" "list-services"
eq "$(aws ecs list-tasks --cluster svccli --service-name web --query 'length(taskArns)')" 2 "list-tasks --service-name"
TASK=$(aws ecs list-tasks --cluster svccli --service-name web --query 'taskArns[0]' --output text)
eq "$(aws ecs describe-tasks --cluster svccli --tasks "$TASK" --query 'tasks[0].group' --output text)" "service:web" "group"
[[ $(aws ecs describe-tasks --cluster svccli --tasks "$TASK" --query 'tasks[0].startedBy' --output text) == ecs-svc/* ]] ||
  fail "startedBy"

expect_error InvalidParameterException "not idempotent" ecs create-service --cluster svccli --service-name web \
  --task-definition plain --desired-count 1
expect_error ServiceNotFoundException "Service not found" ecs update-service --cluster svccli --service nope --desired-count 1
expect_error InvalidParameterException "scaled above 0" ecs delete-service --cluster svccli --service web
expect_error ClientException "TaskDefinition not found" ecs create-service --cluster svccli --service-name x \
  --task-definition missing --desired-count 1
expect_error InvalidParameterException "maximumPercent" ecs create-service --cluster svccli --service-name x \
  --task-definition plain --desired-count 2 --deployment-configuration 'maximumPercent=100,minimumHealthyPercent=100'

OUT=$(aws ecs update-service --cluster svccli --service web --force-new-deployment)
eq "$(jq -r '.service.deployments | length' <<<"$OUT")" 2 "two deployments"
eq "$(jq -r '.service.deployments[1].status' <<<"$OUT")" ACTIVE "the old one ACTIVE"
wait_event web "deployment completed." 60
end=$((SECONDS + 60))
while ((SECONDS < end)); do
  [[ $(it_service_json svccli web | jq '.services[0].deployments | length') == 1 ]] && break
  sleep 0.5
done
eq "$(aws ecs describe-services --cluster svccli --services web --query 'length(services[0].deployments)')" 1 "one deployment left"
events web | grep -E 'has stopped [12] running tasks' >/dev/null || fail "no stopped event: $(events web | head)"
eq "$(aws ecs describe-tasks --cluster svccli --tasks "$TASK" --query 'tasks[0].stopCode' --output text)" \
  ServiceSchedulerInitiated "the old task's stopCode"

eq "$(aws ecs delete-service --cluster svccli --service web --force --query service.status --output text)" DRAINING "delete"
end=$((SECONDS + 60))
while ((SECONDS < end)); do
  [[ $(it_service_json svccli web | jq -r '.services[0].status') == INACTIVE ]] && break
  sleep 0.5
done
eq "$(aws ecs describe-services --cluster svccli --services web --query 'services[0].status' --output text)" INACTIVE "INACTIVE"
eq "$(aws ecs list-services --cluster svccli --query 'length(serviceArns)')" 0 "nothing listed"

echo OK

#!/usr/bin/env bash
# Rotation made visible, with the real aws CLI only (no SDK, no AWS account in
# embedded mode): a service of 3 tasks reads /demo/db_password; the parameter is
# rotated; the service's events say which tasks still hold the old value; a
# forced deployment replaces them (within maximumPercent / minimumHealthyPercent)
# and each new task resolves the value afresh; drift then reports none stale.
#
#   ENDPOINT=http://127.0.0.1:4577 PROFILE=ecs-secrets-agent ./rotate.sh
#
# Needs a running ecs-secrets-agent (ECS_SECRETS_DRIFT_INTERVAL small, e.g. 2, to
# see drift quickly) and, for the tasks' execution role, STS: embedded IAM/STS
# where the build serves them, or aws mode. Where the role cannot be assumed, the
# tasks fail to start and the deployment circuit breaker stops the deployment:
# the script then shows that failure, with its reason, from the service's events,
# and exits 3.
set -euo pipefail
ENDPOINT=${ENDPOINT:-http://127.0.0.1:4577}
PROFILE=${PROFILE:-ecs-secrets-agent}
CLUSTER=${CLUSTER:-default}
ROLE=${ROLE:-arn:aws:iam::123456789012:role/ecsTaskExecutionRole}
export AWS_PAGER=
aws() { /usr/bin/aws --profile "$PROFILE" --endpoint-url "$ENDPOINT" --output json "$@"; }
say() { echo "== $*"; }
events() { aws ecs describe-services --cluster "$CLUSTER" --services web --query 'services[0].events[].message' --output text | tr '\t' '\n'; }
wait_event() { # wait_event TEXT SECONDS
  local i
  for ((i = 0; i < $2 * 2; i++)); do
    events | grep -qF -- "$1" && return 0
    if events | grep -qF "deployment failed"; then
      say "the deployment failed; the service's events say why:"
      events | head -5
      exit 3
    fi
    sleep 0.5
  done
  echo "timed out waiting for: $1" >&2
  events | head -5 >&2
  exit 1
}

say "an execution role that may read /demo/* (embedded IAM; in aws mode bring your own)"
if [[ ${CREATE_ROLE:-1} == 1 ]]; then
  aws iam create-role --role-name "${ROLE##*/}" --assume-role-policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com","AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}' \
    --query Role.Arn 2>/dev/null || echo "(role not created: $ROLE must exist)"
  aws iam put-role-policy --role-name "${ROLE##*/}" --policy-name demo-secrets --policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:GetParameters","Resource":"arn:aws:ssm:*:*:parameter/demo/*"}]}' \
    2>/dev/null || true
fi

say "a parameter, a task definition reading it, a service of 3 tasks"
aws ssm put-parameter --name /demo/db_password --type SecureString --value "first-$RANDOM" --overwrite --query Version
cat >/tmp/rotation-td.json <<TD
{"family": "rotation-demo", "executionRoleArn": "$ROLE", "networkMode": "none",
 "containerDefinitions": [{"name": "app", "image": "${IMAGE:-local/busybox:latest}",
   "command": ["sleep", "3600"], "stopTimeout": 2,
   "secrets": [{"name": "DB_PASSWORD", "valueFrom": "/demo/db_password"}]}]}
TD
aws ecs register-task-definition --cli-input-json file:///tmp/rotation-td.json --query taskDefinition.taskDefinitionArn
aws ecs create-service --cluster "$CLUSTER" --service-name web --task-definition rotation-demo \
  --desired-count 3 \
  --deployment-configuration 'maximumPercent=150,minimumHealthyPercent=100,deploymentCircuitBreaker={enable=true,rollback=false}' \
  --query service.status
wait_event "has reached a steady state." 120
events | head -3

say "rotate the parameter: running tasks keep the value they were created with"
aws ssm put-parameter --name /demo/db_password --type SecureString --value "second-$RANDOM" --overwrite --query Version
aws ecs describe-services --cluster "$CLUSTER" --services web --include DRIFT --query 'services[0].status' >/dev/null
wait_event "tasks hold a rotated value of /demo/db_password" 120
events | grep -F "rotated value" | head -1

say "update-service --force-new-deployment: a rolling replacement"
DEP=$(aws ecs update-service --cluster "$CLUSTER" --service web --force-new-deployment \
  --query 'service.deployments[0].id' --output text)
echo "new deployment: $DEP"
wait_event "(deployment $DEP) deployment completed." 300
aws ecs describe-services --cluster "$CLUSTER" --services web \
  --query 'services[0].deployments[].[status,rolloutState,runningCount]' --output text
events | head -6

say "drift again: no task holds the old value"
# staleTasks is our own member: botocore drops it, the raw answer (--debug) has it
stale() {
  /usr/bin/aws --profile "$PROFILE" --endpoint-url "$ENDPOINT" --debug ecs describe-services \
    --cluster "$CLUSTER" --services web --include DRIFT 2>&1 >/dev/null |
    grep -o '"staleTasks": *[0-9]*' | head -1 | grep -o '[0-9]*$'
}
for ((i = 0; i < 60; i++)); do
  [[ $(stale) == 0 ]] && break
  sleep 0.5
done
echo "staleTasks: $(stale)"
[[ $(stale) == 0 ]] || { echo "tasks still hold the old value" >&2; exit 1; }
aws ecs list-tasks --cluster "$CLUSTER" --service-name web --query 'length(taskArns)'

say "clean up"
aws ecs delete-service --cluster "$CLUSTER" --service web --force --query service.status

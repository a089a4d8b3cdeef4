#!/usr/bin/env bash
# The deployment circuit breaker with the real aws CLI and the embedded IAM, a removed
# permission as the cause:
#   1. a service of 3 tasks (circuit breaker with rollback) runs revision 1, whose execution
#      role may read /cb/pw;
#   2. revision 2 names a second role whose only policy was deleted (delete-role-policy):
#      update-service --task-definition :2 -> its tasks fail to start, the breaker fails the
#      deployment with the reason (the missing permission) in the service's events, and the
#      rollback to the last COMPLETED deployment (revision 1) completes: 3 tasks of :1 run;
#   3. the service's own role loses its policy, then update-service --force-new-deployment:
#      the deployment fails, the rollback (same revision, same role) fails too, and the
#      breaker stalls ("no completed deployment to roll back to.") instead of rolling back
#      for ever; the 3 running tasks keep serving and nothing more is launched;
#   4. the policy put back, a forced deployment completes and the service is steady;
#   5. ECS_SECRETS_DRIFT_INTERVAL changed in the file + SIGHUP: periodic drift checks start.
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir svc-cb
CLUSTER=svccb # its containers are removed on exit
IT_FAIL_LINES=30
echo "ECS_SECRETS_DRIFT_INTERVAL=600" >"$WORK/agent.conf"
it_endpoint
it_aws_env "$STATE" 1

it_start_agent --config "$WORK/agent.conf" --mode embedded --region us-east-1 --cluster svccb --log-level info

events() { aws ecs describe-services --cluster svccb --services cb --query 'services[0].events[].message' --output text | tr '\t' '\n'; }
count_events() { events | grep -cF -- "$1" || true; }
wait_count() { # TEXT N SECONDS: until N events hold TEXT (polled through it_api)
  local end=$((SECONDS + $3))
  while ((SECONDS < end)); do
    [[ $(it_service_events svccb cb | grep -cF -- "$1" || true) -ge $2 ]] && return 0
    sleep 0.5
  done
  fail "fewer than $2 events '$1' in: $(events | head -12)"
}
svc() { aws ecs describe-services --cluster svccb --services cb --output text --query "services[0].$1"; }
one_deployment() { # WHAT: waits up to 30 s for the service to have one deployment left
  local end=$((SECONDS + 30))
  while ((SECONDS < end)); do
    [[ $(it_service_json svccb cb | jq '.services[0].deployments | length') == 1 ]] && break
    sleep 0.5
  done
  eq "$(svc 'length(deployments)')" 1 "$1"
}

READ='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:GetParameters","Resource":"arn:aws:ssm:*:*:parameter/cb/*"}]}'
for role in cb-exec cb-broken; do
  create_exec_role "$role"
  aws iam put-role-policy --role-name $role --policy-name read-cb --policy-document "$READ"
done
say "the removed permission: cb-broken's only policy is deleted"
aws iam delete-role-policy --role-name cb-broken --policy-name read-cb
eq "$(aws iam list-role-policies --role-name cb-broken --query 'length(PolicyNames)')" 0 "cb-broken has no policy"
aws ssm put-parameter --name /cb/pw --type SecureString --value cb-value-1 >/dev/null
td() { # ROLE -> registers a revision of family cb
  cat >"$WORK/td.json" <<TD
{"family": "cb", "networkMode": "none", "executionRoleArn": "arn:aws:iam::123456789012:role/$1",
 "containerDefinitions": [{"name": "app", "image": "local/busybox:latest",
   "command": ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait \$!; done"], "stopTimeout": 2,
   "secrets": [{"name": "PW", "valueFrom": "/cb/pw"}]}]}
TD
  aws ecs register-task-definition --cli-input-json "file://$WORK/td.json" --query taskDefinition.revision --output text
}
eq "$(td cb-exec)" 1 "revision 1"
eq "$(td cb-broken)" 2 "revision 2"

say "1. a service of 3 tasks on revision 1, circuit breaker with rollback"
aws ecs create-service --cluster svccb --service-name cb --task-definition cb:1 --desired-count 3 \
  --deployment-configuration 'maximumPercent=200,minimumHealthyPercent=100,deploymentCircuitBreaker={enable=true,rollback=true}' >/dev/null
wait_count "has reached a steady state." 1 90
eq "$(svc runningCount)" 3 "runningCount"
eq "$(svc deploymentConfiguration.deploymentCircuitBreaker.rollback)" True "rollback on"
read -r -a FIRST <<<"$(aws ecs list-tasks --cluster svccb --service-name cb --query taskArns --output text)"
eq "${#FIRST[@]}" 3 "3 tasks"

say "2. revision 2 (a role without its permission): the breaker fails it, the rollback completes"
DEP2=$(aws ecs update-service --cluster svccb --service cb --task-definition cb:2 \
  --query 'service.deployments[0].id' --output text)
wait_count "(deployment $DEP2) deployment failed: tasks failed to start." 1 120
FAILED=$(events | grep -F "(deployment $DEP2) deployment failed")
echo "$FAILED"
grep -qE "[0-9]+ tasks failed \(threshold 3\); the last: \(task [0-9a-f]{32}\) " <<<"$FAILED" ||
  fail "the failure event names the count, the threshold and the last task: $FAILED"
grep -qF "cb-broken" <<<"$FAILED" || fail "the reason names the role: $FAILED"
grep -qF "ssm:GetParameters" <<<"$FAILED" || fail "the reason names the missing permission: $FAILED"
ROLLBACK=$(events | grep -F "rolling back to deployment" | head -1)
echo "$ROLLBACK"
[[ $ROLLBACK == *"deployment $DEP2 failed."* ]] || fail "no rollback from $DEP2: $(events | head)"
DEP3=$(sed -E 's/.*rolling back to deployment (ecs-svc\/[0-9]+).*/\1/' <<<"$ROLLBACK")
wait_count "(deployment $DEP3) deployment completed." 1 120
one_deployment "the failed deployment is gone once the rollback completed"
eq "$(svc 'deployments[0].id')" "$DEP3" "the rollback is PRIMARY"
eq "$(svc 'deployments[0].rolloutState')" COMPLETED "the rollback COMPLETED"
eq "$(svc taskDefinition)" "arn:aws:ecs:us-east-1:123456789012:task-definition/cb:1" "back on revision 1"
eq "$(svc runningCount)" 3 "3 running after the rollback"
N=$(aws ecs list-tasks --cluster svccb --service-name cb --query taskArns --output text)
eq "$(aws ecs describe-tasks --cluster svccb --tasks $N --output text \
  --query 'length(tasks[?taskDefinitionArn==`arn:aws:ecs:us-east-1:123456789012:task-definition/cb:1`])')" 3 \
  "the running tasks are revision 1's"
STOPPED2=$(aws ecs list-tasks --cluster svccb --started-by "$DEP2" --desired-status STOPPED --query taskArns --output text)
[[ -n $STOPPED2 ]] || fail "no stopped task of $DEP2"
aws ecs describe-tasks --cluster svccb --tasks $STOPPED2 --output text --query 'tasks[].stoppedReason' |
  tr '\t' '\n' | sort -u | grep -F "ResourceInitializationError" >/dev/null ||
  fail "the failed tasks' stoppedReason: $(aws ecs describe-tasks --cluster svccb --tasks $STOPPED2 --query 'tasks[0].stoppedReason')"

say "3. the service's own role loses its policy; a forced deployment fails, so does its rollback: it stalls"
read -r -a BEFORE <<<"$(aws ecs list-tasks --cluster svccb --service-name cb --query taskArns --output text)"
aws iam delete-role-policy --role-name cb-exec --policy-name read-cb
DEP4=$(aws ecs update-service --cluster svccb --service cb --force-new-deployment \
  --query 'service.deployments[0].id' --output text)
wait_count "(deployment $DEP4) deployment failed: tasks failed to start." 1 120
events | grep -F "(deployment $DEP4) deployment failed" | grep -F "cb-exec" >/dev/null || fail "the reason names cb-exec: $(events | head -3)"
DEP5=$(events | grep -F "deployment $DEP4 failed." | sed -E 's/.*rolling back to deployment (ecs-svc\/[0-9]+).*/\1/')
[[ $DEP5 == ecs-svc/* ]] || fail "no rollback from $DEP4: $(events | head)"
wait_count "(deployment $DEP5) deployment failed: tasks failed to start." 1 120
wait_count "(deployment $DEP5) no completed deployment to roll back to." 1 30
eq "$(count_events "rolling back to deployment")" 2 "one rollback per failed deployment (none of the rollback)"
eq "$(svc 'deployments[0].rolloutState')" FAILED "the rollback FAILED"
eq "$(svc 'deployments[0].rolloutStateReason')" "ECS deployment circuit breaker: tasks failed to start." "reason"
TOTAL=$(aws ecs list-tasks --cluster svccb --desired-status STOPPED --query 'length(taskArns)')
sleep 4
eq "$(aws ecs list-tasks --cluster svccb --desired-status STOPPED --query 'length(taskArns)')" "$TOTAL" \
  "a stalled service launches nothing more"
eq "$(svc runningCount)" 3 "the tasks of before still serve"
read -r -a NOW <<<"$(aws ecs list-tasks --cluster svccb --service-name cb --query taskArns --output text)"
eq "$(printf '%s\n' "${NOW[@]}" | sort | tr '\n' ' ')" "$(printf '%s\n' "${BEFORE[@]}" | sort | tr '\n' ' ')" \
  "the same tasks"

say "4. the policy put back: a forced deployment completes"
aws iam put-role-policy --role-name cb-exec --policy-name read-cb --policy-document "$READ"
DEP6=$(aws ecs update-service --cluster svccb --service cb --force-new-deployment \
  --query 'service.deployments[0].id' --output text)
wait_count "(deployment $DEP6) deployment completed." 1 120
one_deployment "one deployment left"
eq "$(svc runningCount)" 3 "3 running"

say "5. the drift interval, 600 s -> 1 s by SIGHUP"
checks() { curl -sf "$URL/metrics" | awk '$1 == "ecs_agent_drift_checks_total" { print $2 }'; }
C0=$(checks)
sleep 2
eq "$(checks)" "$C0" "no periodic drift check at 600 s"
echo "ECS_SECRETS_DRIFT_INTERVAL=1" >"$WORK/agent.conf"
kill -HUP "$PID"
for ((i = 0; i < 50; i++)); do
  grep -qF "drift: running tasks' secrets now checked every 1 s" "$LOG" && break
  sleep 0.1
done
grep -qF "drift: running tasks' secrets now checked every 1 s" "$LOG" || fail "the reload did not apply the interval"
grep -qF "reload: ECS_SECRETS_DRIFT_INTERVAL: 600 -> 1" "$LOG" || fail "the reload's log line"
sleep 3.5
(($(checks) >= C0 + 2)) || fail "periodic drift checks after the reload: $C0 -> $(checks)"

eq "$(aws ecs delete-service --cluster svccb --service cb --force --query service.status --output text)" DRAINING "delete"
grep -qF "cb-value-1" "$LOG" && fail "a value reached the log"
say OK

#!/usr/bin/env bash
# Issue 23: services across the cluster. Three agents in one cluster (cluster_lib.sh: three etcd
# members on loopback) sharing the lane's Docker engine; with the real aws CLI:
#   - create-service through agent 1, desired 3, distinctInstance: one task on each instance
#     (describe-services through agent 2: runningCount 3; `docker ps` by each instance's
#     label: 1 each), the service's record in etcd;
#   - desired 2, then an instance running one DRAINING (update-container-instances-state):
#     its task moves to the free instance (started there, stopped on the drained one, within
#     the service's percent bounds; replacement-first is test_svc_sched_ops'), back ACTIVE, 3;
#   - update-service through agents 2 and 3 at once (desiredCount, maximumPercent): both
#     answered, both in the service;
#   - update-service --force-new-deployment through agent 3, and the leader SIGKILLed once the
#     new deployment's first task is asked for: another agent takes over within the lease's TTL
#     and, from etcd's records alone, completes the deployment once the killed agent's instance
#     is back (describe-services: one deployment, PRIMARY, rolloutState COMPLETED, 3 running,
#     each instance running one of the new deployment's tasks);
#   - a non-leader SIGKILLed for good: its service task is STOPPED after the TTL and replaced
#     on... nowhere: distinctInstance of 3 on 2 instances places 2 and says so in the service's
#     events ("unable to place a task"), ECS's behaviour; desired 2 then completes;
#   - delete-service --force through the two live agents at once: both answered (the one whose
#     write lost the race deletes again on the winner's record, which already is DRAINING),
#     the service DRAINING or INACTIVE with desired 0.
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir cluster-services --no-state
it_aws_env

CLUSTER=itest-svc-$$
TTL=5
IMAGE=local/busybox:latest
LABEL=com.amazonaws.ecs.container-instance-arn
# shellcheck source=SCRIPTDIR/cluster_lib.sh
. "$(dirname "$0")/cluster_lib.sh"
cl_start_etcd

dk() { command docker -H "$ES_TEST_DOCKER_HOST" "$@"; }
running_on() { # running_on I: the running containers labelled with agent I's instance
  dk ps -q --filter "label=$LABEL=$(arn_of "$1")" | grep -c . || true
}
svc() { # svc I: the service as agent I describes it
  awsn "$1" ecs describe-services --cluster "$CLUSTER" --services web | jq -c '.services[0]'
}
leader() { # the instance ARN of the leader, as agent I sees it
  awsn "$1" ecs describe-container-instances --cluster "$CLUSTER" \
    --container-instances "$(arn_of 1)" "$(arn_of 2)" "$(arn_of 3)" 2>/dev/null |
    jq -r '.containerInstances[] | select(any(.attributes[]?;
      .name == "ecs-secrets.cluster-leader" and .value == "true")) | .containerInstanceArn'
}
# svc_fast I, leader_fast I: svc and leader through apin (for polls)
svc_fast() {
  apin "$1" DescribeServices "$(jq -cn --arg c "$CLUSTER" '{cluster: $c, services: ["web"]}')" |
    jq -c '.services[0]'
}
leader_fast() {
  apin "$1" DescribeContainerInstances "$(jq -cn --arg c "$CLUSTER" '{cluster: $c,
    containerInstances: $ARGS.positional}' --args "$(arn_of 1)" "$(arn_of 2)" "$(arn_of 3)")" \
    2>/dev/null | jq -r '.containerInstances[] | select(any(.attributes[]?;
      .name == "ecs-secrets.cluster-leader" and .value == "true")) | .containerInstanceArn'
}
agent_of() { # agent_of ARN: which agent's instance
  local i
  for i in 1 2 3; do [[ $(arn_of "$i") == "$1" ]] && { echo "$i"; return 0; }; done
  return 1
}
wait_steady() { # wait_steady I RUNNING TRIES: one COMPLETED deployment running RUNNING tasks
  local t s
  for ((t = 0; t < $3; t++)); do
    s=$(svc_fast "$1" || true)
    [[ $(jq -r '[.runningCount, (.deployments | length), .deployments[0].rolloutState] |
      join(" ")' <<<"$s") == "$2 1 COMPLETED" ]] && break
    sleep 0.5
  done
  # the state the test asserts, through the real CLI
  s=$(svc "$1")
  [[ $(jq -r '[.runningCount, (.deployments | length), .deployments[0].rolloutState] |
    join(" ")' <<<"$s") == "$2 1 COMPLETED" ]] && return 0
  echo "$s" | jq . >&2
  fail "service web through agent $1: not $2 running in one COMPLETED deployment"
}
running_all() { # web's running containers on the three instances, as "n1 n2 n3"
  echo "$(running_on 1) $(running_on 2) $(running_on 3)"
}
wait_docker() { # wait_docker N: Docker runs N of web's containers in all. A task the scheduler
  # stopped leaves the service's runningCount at once (it is DEACTIVATING, as in ECS) while
  # its container still runs out its stopTimeout: what Docker runs lags the service's count.
  local t n
  for ((t = 0; t < 60; t++)); do
    n=$(running_all)
    (( ${n// /+} == $1 )) && return 0
    sleep 0.5
  done
  fail "web's running containers on the three instances: $n, want $1 in all"
}

export ECS_SECRETS_INSTANCE_CPU=8192 ECS_SECRETS_INSTANCE_MEMORY=1024
say "starting three agents in cluster $CLUSTER"
for i in 1 2 3; do start_agent_n "$i"; done
wait_count 1 3 100 >/dev/null || fail "agent 1 does not list three instances"

cat >"$WORK/web.json" <<EOF
{"family": "web", "networkMode": "none",
 "containerDefinitions": [{"name": "app", "image": "$IMAGE", "essential": true, "memory": 64,
   "command": ["sleep", "600"], "stopTimeout": 1}]}
EOF
awsn 1 ecs register-task-definition --cli-input-json "file://$WORK/web.json" >/dev/null
for i in 2 3; do
  for ((t = 0; t < 50; t++)); do
    apin "$i" DescribeTaskDefinition '{"taskDefinition":"web:1"}' >/dev/null 2>&1 && break
    sleep 0.2
  done
done

say "create-service through agent 1: desired 3, distinctInstance"
OUT=$(awsn 1 ecs create-service --cluster "$CLUSTER" --service-name web --task-definition web:1 \
  --desired-count 3 --placement-constraints type=distinctInstance \
  --deployment-configuration maximumPercent=200,minimumHealthyPercent=50)
eq "$(jq -r '.service.placementConstraints[0].type' <<<"$OUT")" distinctInstance \
  "create-service's answer: the constraint"
ctl get "/ecs-secrets/clusters/$CLUSTER/services/web" --print-value-only >"$WORK/rec"
eq "$(jq -r '[.name, .status, .desiredCount] | join(" ")' "$WORK/rec")" "web ACTIVE 3" \
  "the service's record in etcd once create-service answered"
START=$SECONDS
wait_steady 2 3 120
say "steady (3 running, through agent 2) $((SECONDS - START)) s after create-service"
for i in 1 2 3; do eq "$(running_on "$i")" 1 "web's containers on agent $i's instance"; done
eq "$(awsn 3 ecs list-services --cluster "$CLUSTER" | jq -r '.serviceArns[0]')" \
  "arn:aws:ecs:us-east-2:123456789012:service/$CLUSTER/web" "list-services through agent 3"

say "desired 2 through agent 2 and maximumPercent 199 through agent 3 at once: both stand"
# two agents writing one service: the one whose write loses the race applies its change
# again on the winner's record (neither is lost, neither call is refused)
awsn 2 ecs update-service --cluster "$CLUSTER" --service web --desired-count 2 \
  >"$WORK/up2" 2>&1 & UP2=$!
awsn 3 ecs update-service --cluster "$CLUSTER" --service web \
  --deployment-configuration maximumPercent=199,minimumHealthyPercent=50 >"$WORK/up3" 2>&1 ||
  fail "update-service through agent 3: $(cat "$WORK/up3")"
wait "$UP2" || fail "update-service through agent 2: $(cat "$WORK/up2")"
for ((t = 0; t < 50; t++)); do
  S=$(svc 1)
  [[ $(jq -r '"\(.desiredCount) \(.deploymentConfiguration.maximumPercent)"' <<<"$S") == "2 199" ]] &&
    break
  sleep 0.2
done
eq "$(jq -r '"\(.desiredCount) \(.deploymentConfiguration.maximumPercent)"' <<<"$S")" "2 199" \
  "desiredCount and maximumPercent through agent 1"
say "(service write conflicts on agents 2 and 3 so far: $(for i in 2 3; do
  curl -s "http://127.0.0.1:${APORT[$i]}/metrics" |
    awk '/^ecs_agent_cluster_service_conflicts_total/ { print $2 }'; done | paste -sd+ | bc))"

say "then one of its instances DRAINING: its task moves to the free one"
wait_steady 1 2 120
wait_docker 2
D=
for i in 1 2 3; do [[ $(running_on "$i") -eq 1 ]] && { D=$i; break; }; done
[[ -n $D ]] || fail "no instance runs web"
F=
for i in 1 2 3; do [[ $(running_on "$i") -eq 0 ]] && F=$i; done
[[ -n $F ]] || fail "no free instance: $(running_all)"
DRAINED=$(dk ps --filter "label=$LABEL=$(arn_of "$D")" \
  --format '{{.Label "com.amazonaws.ecs.task-arn"}}')
DRAINED=${DRAINED##*/}
[[ ${#DRAINED} -eq 32 ]] || fail "the task on the instance to drain: '$DRAINED'"
awsn 3 ecs update-container-instances-state --cluster "$CLUSTER" \
  --container-instances "$(arn_of "$D")" --status DRAINING >/dev/null
START=$SECONDS
for ((t = 0; t < 120; t++)); do
  [[ $(running_on "$D") -eq 0 && $(running_on "$F") -eq 1 ]] && break
  sleep 0.5
done
eq "$(running_on "$D")/$(running_on "$F")" 0/1 "web on the drained instance / on the free one"
wait_steady 1 2 120
say "moved off the drained instance $((SECONDS - START)) s after DRAINING; back to ACTIVE, 3"
S=$(svc 1)
jq -e --arg t "(task $DRAINED)" --arg w "(service web) has stopped 1 running tasks:" \
  '[.events[].message | select(startswith($w) and contains($t))] | length > 0' <<<"$S" \
  >/dev/null || fail "no event of the drained task's stop"
awsn 3 ecs update-container-instances-state --cluster "$CLUSTER" \
  --container-instances "$(arn_of "$D")" --status ACTIVE >/dev/null
awsn 2 ecs update-service --cluster "$CLUSTER" --service web --desired-count 3 >/dev/null
wait_steady 1 3 120
wait_docker 3
for i in 1 2 3; do eq "$(running_on "$i")" 1 "web's containers on agent $i's instance"; done

say "force-new-deployment through agent 3; the leader SIGKILLed in the middle"
L=$(agent_of "$(leader 1)") || fail "no leader"
OUT=$(awsn 3 ecs update-service --cluster "$CLUSTER" --service web --force-new-deployment)
NEWDEP=$(jq -r '.service.deployments[0].id' <<<"$OUT")
[[ $NEWDEP == ecs-svc/* ]] || fail "update-service's new deployment: $NEWDEP"
for ((t = 0; t < 100; t++)); do
  ctl get --prefix "/ecs-secrets/clusters/$CLUSTER/" --print-value-only |
    grep -q "\"startedBy\":\"$NEWDEP\"" && break
  sleep 0.1
done
kill -KILL "${APID[$L]}"
wait "${APID[$L]}" 2>/dev/null || true
APID[L]=
A=1
[[ $L -eq 1 ]] && A=2
START=$SECONDS
for ((t = 0; t < 100; t++)); do
  N=$(agent_of "$(leader_fast "$A")" || true)
  [[ -n $N && $N != "$L" ]] && break
  sleep 0.2
done
N=$(agent_of "$(leader "$A")" || true)
[[ -n $N && $N != "$L" ]] || fail "no new leader after the SIGKILL of agent $L"
say "agent $N leads $((SECONDS - START)) s after the SIGKILL of agent $L (TTL ${TTL} s)"
say "agent $L back (its instance's tasks STOPPED by the new leader meanwhile)"
sleep "$TTL"
start_agent_n "$L"
START=$SECONDS
wait_steady "$A" 3 240
S=$(svc "$A")
eq "$(jq -r '.deployments[0].id' <<<"$S")" "$NEWDEP" "the completed deployment is the forced one"
say "the forced deployment COMPLETED $((SECONDS - START)) s after agent $L came back"
mapfile -t T < <(awsn "$A" ecs list-tasks --cluster "$CLUSTER" --started-by "$NEWDEP" |
  jq -r '.taskArns[]')
D=$(awsn "$A" ecs describe-tasks --cluster "$CLUSTER" --tasks "${T[@]}")
eq "$(jq -c '[.tasks[] | select(.lastStatus == "RUNNING") | .containerInstanceArn] | unique |
  length' <<<"$D")" 3 "instances running the new deployment's tasks"
wait_docker 3
for i in 1 2 3; do eq "$(running_on "$i")" 1 "web's containers on agent $i's instance"; done

say "a non-leader SIGKILLed for good: 2 instances left for distinctInstance of 3"
N=$(agent_of "$(leader "$A")")
K=
for i in 3 2 1; do [[ $i != "$N" ]] && { K=$i; break; }; done
KILLED_AT=$(date +%s)
kill -KILL "${APID[$K]}"
wait "${APID[$K]}" 2>/dev/null || true
APID[K]=
START=$SECONDS
# its task STOPPED after the TTL; the replacement fits nowhere: ECS's event, said after the kill
UNPLACED="(service web) was unable to place a task because no container instance met all of its"
UNPLACED+=" requirements. Reason: DistinctInstance placement constraint unsatisfied."
unplaced() {
  jq -e --argjson t "$KILLED_AT" --arg m "$UNPLACED" '.runningCount == 2 and
    ([.events[] | select(.createdAt >= $t and .message == $m)] | length > 0)' <<<"$1" >/dev/null
}
for ((t = 0; t < 120; t++)); do
  unplaced "$(svc_fast "$N" || true)" && break
  sleep 0.5
done
S=$(svc "$N")
unplaced "$S" || { jq . <<<"$S" >&2; fail "not 2 running with an 'unable to place' event"; }
say "2 running and ECS's 'unable to place' event $((SECONDS - START)) s after the SIGKILL"
awsn "$N" ecs update-service --cluster "$CLUSTER" --service web --desired-count 2 >/dev/null
wait_steady "$N" 2 120

O=
for i in 1 2 3; do [[ $i != "$N" && $i != "$K" ]] && O=$i; done
say "delete-service --force through agents $N and $O at once: both answered"
conflicts() { for i in "$N" "$O"; do curl -s "http://127.0.0.1:${APORT[$i]}/metrics" |
  awk '/^ecs_agent_cluster_service_conflicts_total/ { print $2 }'; done | paste -sd+ | bc; }
C0=$(conflicts)
awsn "$N" ecs delete-service --cluster "$CLUSTER" --service web --force >"$WORK/del1" 2>&1 & DEL=$!
awsn "$O" ecs delete-service --cluster "$CLUSTER" --service web --force >"$WORK/del2" 2>&1 ||
  fail "delete-service through agent $O: $(cat "$WORK/del2")"
wait "$DEL" || fail "delete-service through agent $N: $(cat "$WORK/del1")"
for f in del1 del2; do
  eq "$(jq -r '"\(.service.status) \(.service.desiredCount)"' "$WORK/$f")" "DRAINING 0" \
    "delete-service's answer ($f)"
done
S=$(svc "$O")
[[ $(jq -r '"\(.status) \(.desiredCount)"' <<<"$S") =~ ^(DRAINING|INACTIVE)\ 0$ ]] ||
  fail "the service after both deletes: $(jq -c '{status, desiredCount}' <<<"$S")"
say "(service write conflicts during the deletes: $(($(conflicts) - C0)))"
say "ok"

#!/usr/bin/env bash
# Issue 23: RunTask placed by the leader across the cluster's hosts. Three agents in one cluster
# (cluster_lib.sh: three etcd members on loopback) sharing the lane's Docker engine, each
# offering 1024 MiB; with the real aws CLI:
#   - a definition with an SSM secret (the parameter in every agent's embedded store, as each
#     host reads its own store here) registered through agent 1;
#   - 30 tasks run through agent 1 with spread over instanceId: 10 on each instance, by
#     describe-tasks' containerInstanceArn (through agent 2) and by `docker ps` on each agent's
#     container-instance label; every container holds the secret's value (docker inspect);
#   - a binpack run (memory) of 8 through agent 3: one instance takes 6 (all it has left), then
#     the next;
#   - a run that cannot fit (2048 MiB) answers failures[] with RESOURCE:MEMORY;
#   - a run whose placement fits no etcd transaction (10 tasks, 24 KiB of overrides each)
#     answers failures[] with PLACEMENT_TOO_LARGE from the receiving agent itself: no request
#     of it reaches etcd;
#   - a stop through agent 2 of a task agent 1 runs: STOPPED, its container gone from running;
#   - a lost host: a non-leader agent SIGKILLed; after its lease's TTL (5 s) describe-tasks
#     through another agent shows its tasks STOPPED (TerminationNotice, "Host EC2 (instance
#     ...) terminated."), its assignments are gone from etcd, a spread run places nothing on
#     it; restarted, it stops its old containers, leaves the STOPPED records, and takes 10 new
#     tasks (its 1024 MiB freed);
#   - every key and value in etcd is read: the secret's value is in none;
#   - STOPPED records expire (ECS_SECRETS_CLUSTER_STOPPED_TTL=20s for every agent, so the
#     leader's too): the stopped task's tasks/<id> key leaves etcd and describe-tasks through
#     an agent that never ran it answers MISSING, while a RUNNING task's record stays (the
#     returning host's check above accepts an expired record as well as a STOPPED one).
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir cluster-runtask --no-state
it_aws_env

CLUSTER=itest-run-$$
TTL=5
ACCT=123456789012
IMAGE=local/busybox:latest
SECRET="run-ssm-value-$RANDOM$RANDOM"
LABEL=com.amazonaws.ecs.container-instance-arn
# shellcheck source=SCRIPTDIR/cluster_lib.sh
. "$(dirname "$0")/cluster_lib.sh"
cl_start_etcd

dk() { command docker -H "$ES_TEST_DOCKER_HOST" "$@"; }
running_on() { # running_on I: the running containers labelled with agent I's instance
  dk ps -q --filter "label=$LABEL=$(arn_of "$1")" | grep -c . || true
}
wait_running_on() { # wait_running_on I N: polls until agent I's instance runs N containers
  local t
  for ((t = 0; t < 240; t++)); do
    [[ $(running_on "$1") -eq $2 ]] && return 0
    sleep 0.5
  done
  fail "agent $1's instance runs $(running_on "$1") containers, not $2"
}

export ECS_SECRETS_INSTANCE_CPU=8192 ECS_SECRETS_INSTANCE_MEMORY=1024
# long enough for the lost host's STOPPED records to be read (about 8 s after the SIGKILL),
# short enough that the first stop has expired, or nearly, by the end
STOPPED_TTL=20
export ECS_SECRETS_CLUSTER_STOPPED_TTL=${STOPPED_TTL}s
say "starting three agents in cluster $CLUSTER (1024 MiB each)"
for i in 1 2 3; do start_agent_n "$i"; done
wait_count 1 3 100 >/dev/null || fail "agent 1 does not list three instances"

say "the secret and the execution role on every agent; a definition through agent 1"
for i in 1 2 3; do
  awsn "$i" ssm put-parameter --name /itest/run/db --type SecureString --value "$SECRET" >/dev/null
  awsn "$i" iam create-role --role-name run-exec --assume-role-policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}' >/dev/null
  awsn "$i" iam put-role-policy --role-name run-exec --policy-name read --policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:GetParameters","kms:Decrypt"],"Resource":"*"}]}'
done
cat >"$WORK/sleep.json" <<EOF
{"family": "sleeper", "networkMode": "none",
 "executionRoleArn": "arn:aws:iam::$ACCT:role/run-exec",
 "containerDefinitions": [{"name": "app", "image": "$IMAGE", "essential": true, "memory": 64,
   "command": ["sleep", "600"], "stopTimeout": 2, "secrets": [{"name": "DB", "valueFrom": "/itest/run/db"}]}]}
EOF
awsn 1 ecs register-task-definition --cli-input-json "file://$WORK/sleep.json" >/dev/null
sed -e 's/"sleeper"/"big"/' -e 's/"memory": 64/"memory": 2048/' "$WORK/sleep.json" >"$WORK/big.json"
awsn 1 ecs register-task-definition --cli-input-json "file://$WORK/big.json" >/dev/null
for i in 2 3; do
  for ((t = 0; t < 50; t++)); do
    apin "$i" DescribeTaskDefinition '{"taskDefinition":"big:1"}' >/dev/null 2>&1 && break
    sleep 0.2
  done
done

say "30 tasks through agent 1, spread over instanceId (3 calls of 10)"
: >"$WORK/arns"
for n in 1 2 3; do
  OUT=$(awsn 1 ecs run-task --cluster "$CLUSTER" --task-definition sleeper:1 --count 10 \
    --placement-strategy type=spread,field=instanceId)
  eq "$(jq '.failures | length' <<<"$OUT")" 0 "call $n's failures"
  eq "$(jq '.tasks | length' <<<"$OUT")" 10 "call $n's tasks"
  jq -r '.tasks[].taskArn' <<<"$OUT" >>"$WORK/arns"
done
eq "$(sort -u "$WORK/arns" | grep -c .)" 30 "distinct task ARNs"
for i in 1 2 3; do wait_running_on "$i" 10; done
say "each instance runs 10 (docker ps by label); describe-tasks through agent 2 agrees"
mapfile -t ARNS <"$WORK/arns"
D=$(awsn 2 ecs describe-tasks --cluster "$CLUSTER" --tasks "${ARNS[@]:0:30}")
eq "$(jq '.tasks | length' <<<"$D")" 30 "tasks agent 2 describes"
for i in 1 2 3; do
  eq "$(jq --arg a "$(arn_of "$i")" '[.tasks[] | select(.containerInstanceArn == $a)] | length' \
    <<<"$D")" 10 "tasks on agent $i's instance (describe-tasks)"
done
Q=$(jq -cn --arg c "$CLUSTER" '{cluster: $c, tasks: $ARGS.positional}' --args "${ARNS[@]:0:30}")
# docker ps shows a container running before its start's answer reaches the agent: on a busy
# dockerd (CI) the answers came up to 30 s later
for ((t = 0; t < 180; t++)); do
  [[ $(apin 2 DescribeTasks "$Q" | jq '[.tasks[] | select(.lastStatus == "RUNNING")] | length') -eq 30 ]] && break
  sleep 0.5
done
D=$(awsn 2 ecs describe-tasks --cluster "$CLUSTER" --tasks "${ARNS[@]:0:30}")
eq "$(jq '[.tasks[] | select(.lastStatus == "RUNNING")] | length' <<<"$D")" 30 "RUNNING in etcd"
eq "$(awsn 3 ecs list-tasks --cluster "$CLUSTER" --family sleeper | jq -r '.taskArns[]' | sort)" \
  "$(sort "$WORK/arns")" "list-tasks through agent 3"
eq "$(awsn 3 ecs list-tasks --cluster "$CLUSTER" --family sleeper --max-items 7 --page-size 4 |
  jq '.taskArns | length')" 7 "list-tasks in pages of 4 (nextToken over the cluster's tasks)"
say "the secret's value in every container (docker inspect)"
mapfile -t CIDS < <(dk ps -q --filter "label=com.amazonaws.ecs.cluster=$CLUSTER")
eq "${#CIDS[@]}" 30 "containers of the cluster"
eq "$(dk inspect "${CIDS[@]}" | jq --arg v "DB=$SECRET" '[.[] | select(.Config.Env | index($v))] | length')" \
  30 "containers holding the secret"

say "binpack on memory through agent 3: one instance filled first (6 fit), then the next"
OUT=$(awsn 3 ecs run-task --cluster "$CLUSTER" --task-definition sleeper:1 --count 8 \
  --placement-strategy type=binpack,field=memory --started-by binpack)
eq "$(jq '.tasks | length' <<<"$OUT")" 8 "binpack's tasks"
eq "$(jq -c '[.tasks | group_by(.containerInstanceArn)[] | length] | sort' <<<"$OUT")" "[2,6]" \
  "binpack's tasks per instance"

say "a task that fits nowhere: failures[] with RESOURCE:MEMORY"
OUT=$(awsn 2 ecs run-task --cluster "$CLUSTER" --task-definition big:1 --count 2)
eq "$(jq '.tasks | length' <<<"$OUT")" 0 "big's tasks"
eq "$(jq -r '[.failures[].reason] | unique | join(",")' <<<"$OUT")" RESOURCE:MEMORY "big's failures"
eq "$(jq '.failures | length' <<<"$OUT")" 2 "one failure a task"

say "a run no etcd transaction can place: PLACEMENT_TOO_LARGE, refused by agent 2 itself"
runreq() { curl -sf "http://127.0.0.1:${APORT[2]}/metrics" |
  awk '/^ecs_agent_cluster_run_requests_total / { print $2 }'; }
BEFORE=$(runreq)
jq -cn '{containerOverrides: [{name: "app", environment: [range(0; 240) |
  {name: "V\(.)", value: ("x" * 90)}]}]}' >"$WORK/big-overrides.json"
OUT=$(awsn 2 ecs run-task --cluster "$CLUSTER" --task-definition sleeper:1 --count 10 \
  --overrides "file://$WORK/big-overrides.json")
eq "$(jq '.tasks | length' <<<"$OUT")" 0 "the too large run's tasks"
eq "$(jq -r '[.failures[].reason] | unique | join(",")' <<<"$OUT")" PLACEMENT_TOO_LARGE \
  "the too large run's failures"
eq "$(jq '.failures | length' <<<"$OUT")" 10 "one failure a task"
eq "$(runreq)" "$BEFORE" "requests agent 2 wrote to etcd for it"
eq "$(curl -sf "http://127.0.0.1:${APORT[2]}/metrics" |
  awk '/^ecs_agent_cluster_too_large_refused_total / { print $2 }')" 1 "agent 2's refusals"

say "a stop through agent 2 of a task on agent 1's instance"
VICTIM=$(jq -r --arg a "$(arn_of 1)" '[.tasks[] | select(.containerInstanceArn == $a)][0].taskArn' <<<"$D")
eq "$(awsn 2 ecs stop-task --cluster "$CLUSTER" --task "$VICTIM" | jq -r .task.desiredStatus)" \
  STOPPED "stop-task's answer"
VSTOP=$SECONDS
Q=$(jq -cn --arg c "$CLUSTER" --arg t "$VICTIM" '{cluster: $c, tasks: [$t]}')
for ((t = 0; t < 60; t++)); do
  [[ $(apin 3 DescribeTasks "$Q" | jq -r '.tasks[0].lastStatus') == STOPPED ]] && break
  sleep 0.5
done
S=$(awsn 3 ecs describe-tasks --cluster "$CLUSTER" --tasks "$VICTIM" | jq -r '.tasks[0].lastStatus')
eq "$S" STOPPED "the stopped task, through agent 3"
[[ -z $(dk ps -q --filter "label=com.amazonaws.ecs.task-arn=$VICTIM") ]] ||
  fail "the stopped task's container still runs"

say "a lost host: a non-leader agent SIGKILLed; after its lease's TTL its tasks are STOPPED"
LEADER=$(awsn 1 ecs describe-container-instances --cluster "$CLUSTER" \
  --container-instances "$(arn_of 1)" "$(arn_of 2)" "$(arn_of 3)" | jq -r '.containerInstances[] |
    select(any(.attributes[]?; .name == "ecs-secrets.cluster-leader" and .value == "true")) |
    .containerInstanceArn')
K=
for i in 3 2 1; do [[ $(arn_of "$i") != "$LEADER" ]] && { K=$i; break; }; done
[[ -n $K && -n $LEADER ]] || fail "no leader, or no agent to kill (leader: $LEADER)"
A=1
[[ $K -eq 1 ]] && A=2
mapfile -t ALL < <(awsn "$A" ecs list-tasks --cluster "$CLUSTER" | jq -r '.taskArns[]')
mapfile -t ONK < <(awsn "$A" ecs describe-tasks --cluster "$CLUSTER" --tasks "${ALL[@]}" |
  jq -r --arg a "$(arn_of "$K")" '.tasks[] | select(.containerInstanceArn == $a and
    .lastStatus != "STOPPED") | .taskArn')
[[ ${#ONK[@]} -ge 10 ]] || fail "agent $K's instance runs ${#ONK[@]} tasks, not 10 or more"
kill -KILL "${APID[$K]}"
wait "${APID[$K]}" 2>/dev/null || true
APID[K]=
START=$SECONDS
Q=$(jq -cn --arg c "$CLUSTER" '{cluster: $c, tasks: $ARGS.positional}' --args "${ONK[@]}")
for ((t = 0; t < 80; t++)); do
  [[ $(apin "$A" DescribeTasks "$Q" | jq '[.tasks[] | select(.lastStatus == "STOPPED")] | length') -eq ${#ONK[@]} ]] && break
  sleep 0.5
done
say "agent $K's ${#ONK[@]} tasks STOPPED $((SECONDS - START)) s after the SIGKILL (TTL ${TTL} s)"
D=$(awsn "$A" ecs describe-tasks --cluster "$CLUSTER" --tasks "${ONK[@]}")
eq "$(jq '[.tasks[] | select(.lastStatus == "STOPPED" and .desiredStatus == "STOPPED" and
  .stopCode == "TerminationNotice" and
  (.stoppedReason | test("^Host EC2 \\(instance [^)]+\\) terminated[.]$")))] | length' <<<"$D")" \
  "${#ONK[@]}" "the lost host's tasks STOPPED with ECS's reason (through agent $A)"
ctl get --prefix --keys-only "/ecs-secrets/clusters/$CLUSTER/assignments/$(cat "${ASTATE[$K]}/instance-id")/" \
  >"$WORK/asg.left"
eq "$(grep -c . "$WORK/asg.left" || true)" 0 "the lost host's assignments (reservations) left in etcd"

say "spread places nothing on the lost instance"
OUT=$(awsn "$A" ecs run-task --cluster "$CLUSTER" --task-definition sleeper:1 --count 2 \
  --placement-strategy type=spread,field=instanceId --started-by after-loss)
eq "$(jq '.tasks | length' <<<"$OUT")" 2 "tasks placed on the two live instances"
eq "$(jq --arg a "$(arn_of "$K")" '[.tasks[] | select(.containerInstanceArn == $a)] | length' \
  <<<"$OUT")" 0 "tasks placed on the lost instance"

say "agent $K back: its old containers stopped, its freed capacity (1024 MiB) taken again"
start_agent_n "$K"
for ((t = 0; t < 120; t++)); do
  [[ $(running_on "$K") -eq 0 ]] && break
  sleep 0.5
done
eq "$(running_on "$K")" 0 "the returning host's containers of STOPPED tasks still running"
D=$(awsn "$A" ecs describe-tasks --cluster "$CLUSTER" --tasks "${ONK[@]}")
# each STOPPED as the leader wrote it, or already expired (STOPPED_TTL): none written again
eq "$(jq '([.tasks[] | select(.lastStatus == "STOPPED" and .stopCode == "TerminationNotice")] |
  length) + ([.failures[]? | select(.reason == "MISSING")] | length)' <<<"$D")" "${#ONK[@]}" \
  "the returning host left the STOPPED records as they were (or expired)"
OUT=$(awsn "$A" ecs run-task --cluster "$CLUSTER" --task-definition sleeper:1 --count 10 \
  --placement-constraints "[{\"type\":\"memberOf\",\"expression\":\"attribute:agent == a$K\"}]")
eq "$(jq '.failures | length' <<<"$OUT")" 0 "failures on the returned instance (freed capacity)"
eq "$(jq --arg a "$(arn_of "$K")" '[.tasks[] | select(.containerInstanceArn == $a)] | length' \
  <<<"$OUT")" 10 "tasks on the returned instance"
wait_running_on "$K" 10
KEEP=$(jq -r '.tasks[0].taskArn' <<<"$OUT") # RUNNING to the end

say "no secret value in etcd (every key and value read)"
ctl get --prefix /ecs-secrets/ >"$WORK/etcd.dump"
grep -c "assignments/" "$WORK/etcd.dump" >/dev/null || fail "no assignment in etcd"
if grep -q -- "$SECRET" "$WORK/etcd.dump"; then fail "the secret's value is in etcd"; fi

say "STOPPED records expire after ECS_SECRETS_CLUSTER_STOPPED_TTL (${STOPPED_TTL} s); RUNNING ones stay"
VID=${VICTIM##*/}
for ((t = 0; t < 2 * (STOPPED_TTL + 10); t++)); do
  [[ -z $(ctl get --keys-only "/ecs-secrets/clusters/$CLUSTER/tasks/$VID") ]] && break
  sleep 0.5
done
eq "$(ctl get --keys-only "/ecs-secrets/clusters/$CLUSTER/tasks/$VID" | grep -c . || true)" 0 \
  "the stopped task's record in etcd $((SECONDS - VSTOP)) s after its stop"
(( SECONDS - VSTOP >= STOPPED_TTL )) || fail "the record went $((SECONDS - VSTOP)) s after the stop"
# agent 3 never ran it (agent 1 did, and its own engine still answers for it)
eq "$(awsn 3 ecs describe-tasks --cluster "$CLUSTER" --tasks "$VICTIM" |
  jq -r '"\(.tasks | length) \(.failures[0].reason // "")"')" "0 MISSING" \
  "describe-tasks of the expired task through agent 3"
eq "$(ctl get --keys-only "/ecs-secrets/clusters/$CLUSTER/tasks/${KEEP##*/}" | grep -c . || true)" 1 \
  "a RUNNING task's record in etcd"
eq "$(awsn 3 ecs describe-tasks --cluster "$CLUSTER" --tasks "$KEEP" | jq -r '.tasks[0].lastStatus')" \
  RUNNING "the RUNNING task through agent 3"
say "ok"

#!/usr/bin/env bash
# Containers created through the agent's Docker socket are tasks (issue 19, "Tracked like
# tasks"), driven by the real docker CLI and Debian's docker-compose through
# ECS_SECRETS_DOCKER_PROXY, the agent in embedded mode, the real aws CLI reading the tasks:
#   - docker run -d with secret labels: a task in list-tasks (also --started-by docker:0),
#     describe-tasks says startedBy docker:0, launchType EC2, RUNNING, the container's id, the
#     definition of the reserved family ecs-secrets-docker and the secret's version; /metrics
#     counts it;
#   - docker stop: STOPPED (EssentialContainerExited); docker rm of a running one: STOPPED, its
#     container says it was removed; the agent never removes the container itself;
#   - docker restart: the value stays the one the create got, after a rotation too; the
#     container started again is a new task (same definition and secret versions) drift names;
#   - the reserved family cannot be registered, run or made a service through the ECS API;
#   - Compose: each container's task has group compose:<project>; the rotation experiment:
#     rotate the SSM parameter, `docker-compose up -d --force-recreate web` gives the new web
#     container the new value, while the drift report (log line, task attributes) names the
#     second service's task, left running, as holding a rotated value;
#   - a restart of the agent reads the tasks and their definition back.
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir dtasks
IT_FAIL_HEADER="---- agent log ----"
ACCT=123456789012
NAME=es-dtasks-$$
PROJECT=esdt$$
IMAGE=local/busybox:latest
SOCKDIR=$(mktemp -d /tmp/es-dtasks-sock-XXXXXX)
chmod 755 "$SOCKDIR"
PROXY=$SOCKDIR/docker.sock
it_cleanup_hook() {
  it_rm_containers "name=$NAME"
  it_rm_containers "label=com.docker.compose.project=$PROJECT"
  rm -rf "$SOCKDIR"
}
it_endpoint
it_aws_env "$STATE" 1

d() { DOCKER_HOST=unix://$PROXY command docker "$@"; }
dk() { command docker -H "$ES_TEST_DOCKER_HOST" "$@"; }
# task_of CONTAINER: the task ARN the agent's labels gave the container (as dockerd has it)
task_of() { dk inspect -f '{{index .Config.Labels "com.amazonaws.ecs.task-arn"}}' "$1"; }
# field TASK QUERY: one field of describe-tasks' answer
field() { aws ecs describe-tasks --tasks "$1" --query "tasks[0].$2" --output text; }
must_reach() { # TASK STATUS
  local s
  s=$(wait_status "$1" "$2")
  [[ $s == "$2" ]] || fail "task $1 is $s, not $2"
}
# current TASK NAME -> true | false | (nothing): drift's verdict, from the raw answer
current() {
  it_aws --debug ecs describe-tasks --tasks "$1" 2>&1 >/dev/null | grep -o "\"name\":\"$2\",[^}]*" |
    head -1 | grep -o '"current":[a-z]*' | cut -d: -f2
}
wait_current() { # TASK NAME true|false, within 90 s
  local until=$((SECONDS + 90))
  while ((SECONDS < until)); do
    [[ $(current "$1" "$2") == "$3" ]] && return 0
    sleep 0.5
  done
  fail "drift: $2 of $1 is not current=$3 ($(current "$1" "$2"))"
}

ROLE=arn:aws:iam::$ACCT:role/dtasks-exec
say "starting the agent with its Docker socket, drift checked every second"
it_start_agent --mode embedded --docker-proxy "$PROXY" --drift-interval 1
V1="one-$RANDOM$RANDOM"
aws ssm put-parameter --name /dtasks/db --type SecureString --value "$V1" >/dev/null
create_exec_role dtasks-exec
aws iam put-role-policy --role-name dtasks-exec --policy-name read --policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:GetParameters","kms:Decrypt"],"Resource":"*"}]}'
LABELS=(--label "ecs-secrets.execution-role=$ROLE" --label ecs-secrets.secret.DB=/dtasks/db)

say "docker run -d: a task of the engine, startedBy docker:0, RUNNING, with its secret's version"
d run -d --network none --name "$NAME-a" "${LABELS[@]}" "$IMAGE" sleep 600 >/dev/null ||
  fail "docker run -d with secret labels"
TA=$(task_of "$NAME-a")
[[ $TA == arn:aws:ecs:us-east-1:$ACCT:task/default/* ]] || fail "the container's task label: '$TA'"
aws ecs list-tasks --query taskArns --output text | tr '\t' '\n' | grep -qxF "$TA" ||
  fail "list-tasks does not list $TA"
aws ecs list-tasks --started-by docker:0 --query taskArns --output text | tr '\t' '\n' |
  grep -qxF "$TA" || fail "list-tasks --started-by docker:0 does not list $TA"
must_reach "$TA" RUNNING
eq "$(field "$TA" startedBy)" "docker:0" "startedBy"
eq "$(field "$TA" launchType)" EC2 "launchType"
eq "$(field "$TA" 'containers[0].runtimeId')" "$(dk inspect -f '{{.Id}}' "$NAME-a")" "runtimeId"
eq "$(field "$TA" 'containers[0].image')" "$IMAGE" "the container's image"
TD=$(field "$TA" taskDefinitionArn)
[[ $TD =~ ^arn:aws:ecs:us-east-1:$ACCT:task-definition/ecs-secrets-docker:[0-9]+$ ]] ||
  fail "taskDefinitionArn: $TD"
eq "$(aws ecs describe-task-definition --task-definition "$TD" \
  --query 'taskDefinition.containerDefinitions[0].secrets[0].valueFrom' --output text)" \
  /dtasks/db "the stored definition's secret"
attrs=$(field "$TA" 'attributes[].[name,value]')
grep -qE "secret/container/DB	version 1 " <<<"$attrs" || fail "the secret's version: $attrs"
eq "$(dk exec "$NAME-a" sh -c 'echo $DB')" "$V1" "the value in the container"
metrics=$(curl -sf "$URL/metrics") || fail "no /metrics"
grep -qE '^ecs_agent_tasks\{status="RUNNING"\} [1-9]' <<<"$metrics" ||
  fail "/metrics does not count the RUNNING task: $(grep ecs_agent_tasks <<<"$metrics")"

say "the reserved family cannot be registered or run through the ECS API"
rc=0
out=$(aws ecs register-task-definition --family ecs-secrets-docker \
  --container-definitions "[{\"name\":\"c\",\"image\":\"$IMAGE\"}]" 2>&1) || rc=$?
[[ $rc -ne 0 ]] && grep -qF "ecs-secrets-docker is reserved" <<<"$out" ||
  fail "registering the reserved family: $out"
rc=0
out=$(aws ecs run-task --task-definition "$TD" 2>&1) || rc=$?
[[ $rc -ne 0 ]] && grep -qF "it cannot be run" <<<"$out" || fail "running the reserved family: $out"
rc=0
out=$(aws ecs create-service --service-name dtasks --task-definition "$TD" --desired-count 1 2>&1) ||
  rc=$?
[[ $rc -ne 0 ]] && grep -qF "it cannot be run" <<<"$out" || fail "a service of the reserved family: $out"

say "docker restart keeps the value, after a rotation too: a new task that drift names"
V2="two-$RANDOM$RANDOM"
aws ssm put-parameter --name /dtasks/db --type SecureString --value "$V2" --overwrite >/dev/null
d restart -t 1 "$NAME-a" >/dev/null
eq "$(dk exec "$NAME-a" sh -c 'echo $DB')" "$V1" "the value after docker restart"
must_reach "$TA" STOPPED
eq "$(field "$TA" stopCode)" EssentialContainerExited "the stop code when the container exited"
TA2=
for _ in $(seq 60); do
  TA2=$(it_ecs ListTasks '{"family":"ecs-secrets-docker","desiredStatus":"RUNNING"}' |
    jq -r '.taskArns[0] // empty') || TA2=
  [[ $TA2 == arn:* ]] && break
  sleep 0.5
done
[[ $TA2 == arn:* && $TA2 != "$TA" ]] || fail "no new task for the restarted container: '$TA2'"
must_reach "$TA2" RUNNING
eq "$(field "$TA2" 'containers[0].runtimeId')" "$(dk inspect -f '{{.Id}}' "$NAME-a")" \
  "the restarted container's task"
grep -qE "secret/container/DB	version 1 " <<<"$(field "$TA2" 'attributes[].[name,value]')" ||
  fail "the restarted container's task does not hold version 1"
wait_current "$TA2" DB false

say "docker stop: STOPPED; docker rm -f of a running one: STOPPED, removed"
d stop -t 1 "$NAME-a" >/dev/null
must_reach "$TA2" STOPPED
eq "$(field "$TA2" stopCode)" EssentialContainerExited "the stop code after docker stop"
sleep 1
dk inspect "$NAME-a" >/dev/null 2>&1 || fail "the agent removed a stopped container of the socket"
d rm "$NAME-a" >/dev/null
d run -d --network none --name "$NAME-b" "${LABELS[@]}" "$IMAGE" sleep 600 >/dev/null
TB=$(task_of "$NAME-b")
must_reach "$TB" RUNNING
eq "$(dk exec "$NAME-b" sh -c 'echo $DB')" "$V2" "a new container gets the rotated value"
d rm -f "$NAME-b" >/dev/null
must_reach "$TB" STOPPED
eq "$(field "$TB" 'containers[0].reason')" "the container was removed (docker rm)" "the reason"

say "Compose: group compose:<project>; the rotation experiment with --force-recreate"
command -v docker-compose >/dev/null || fail "docker-compose is not installed (scripts/deps.sh)"
mkdir -p "$WORK/compose"
cat >"$WORK/compose/docker-compose.yml" <<EOF
version: "2.4"
services:
  web:
    image: $IMAGE
    network_mode: none
    command: ["sleep", "600"]
    labels:
      ecs-secrets.execution-role: "$ROLE"
      ecs-secrets.secret.DB: /dtasks/db
  worker:
    image: $IMAGE
    network_mode: none
    command: ["sleep", "600"]
    labels:
      ecs-secrets.execution-role: "$ROLE"
      ecs-secrets.secret.DB: /dtasks/db
EOF
compose() { (cd "$WORK/compose" && DOCKER_HOST=unix://$PROXY docker-compose -p "$PROJECT" --no-ansi "$@"); }
cid() { dk ps -q --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.service=$1"; }
out=$(compose up -d 2>&1) || fail "docker-compose up -d: $out"
WEB1=$(task_of "$(cid web)")
WORKER=$(task_of "$(cid worker)")
must_reach "$WEB1" RUNNING
must_reach "$WORKER" RUNNING
eq "$(field "$WEB1" group)" "compose:$PROJECT" "the web task's group"
eq "$(field "$WORKER" group)" "compose:$PROJECT" "the worker task's group"
eq "$(dk exec "$(cid web)" sh -c 'echo $DB')" "$V2" "web's value"
wait_current "$WORKER" DB true
V3="three-$RANDOM$RANDOM"
aws ssm put-parameter --name /dtasks/db --type SecureString --value "$V3" --overwrite >/dev/null
out=$(compose up -d --force-recreate --no-deps web 2>&1) || fail "docker-compose up --force-recreate: $out"
WEB2=$(task_of "$(cid web)")
[[ $WEB2 != "$WEB1" ]] || fail "the recreated web container kept its task"
must_reach "$WEB2" RUNNING
eq "$(dk exec "$(cid web)" sh -c 'echo $DB')" "$V3" "the recreated web container's value"
must_reach "$WEB1" STOPPED
eq "$(dk exec "$(cid worker)" sh -c 'echo $DB')" "$V2" "the worker keeps its value"
wait_current "$WORKER" DB false
wait_current "$WEB2" DB true
attrs=$(field "$WORKER" 'attributes[].[name,value]')
grep -qE "^ecs-secrets-agent/stale/container/DB	the store has version 3$" <<<"$attrs" ||
  fail "no attribute says the worker's DB is stale: $attrs"
grep -qF "drift: task ${WORKER##*/} (ecs-secrets-docker:" "$LOG" ||
  fail "no drift line names the worker's task"
grep -E "drift: task ${WORKER##*/} .* holds a rotated value of /dtasks/db \(DB\): version 2, the store's is now 3" "$LOG" >/dev/null ||
  fail "the drift line: $(grep "drift: task ${WORKER##*/}" "$LOG")"

say "a restart of the agent reads the tasks and their definition back"
it_stop_agent
it_start_agent --mode embedded --docker-proxy "$PROXY" --drift-interval 1
eq "$(field "$WORKER" lastStatus)" RUNNING "the worker's task after a restart"
eq "$(field "$WEB1" lastStatus)" STOPPED "the old web task after a restart"
wait_current "$WORKER" DB false
compose down >/dev/null 2>&1 || fail "docker-compose down"
must_reach "$WORKER" STOPPED
must_reach "$WEB2" STOPPED

it_stop_agent
for v in "$V1" "$V2" "$V3"; do
  if grep -rqaF -- "$v" "$LOG" "$STATE"; then fail "the value $v is in the agent's log or state"; fi
done
say "PASS"

#!/usr/bin/env bash
# Issue 20: healthCheck and dependsOn's COMPLETE / SUCCESS / HEALTHY, registered with the real
# aws CLI and run on the real dockerd: a HEALTHY dependency delays the app container until its
# Docker health check passes (the app's StartedAt is after the check's first healthy result),
# describe-tasks shows the container's and the task's healthStatus; an init container that
# exits 0 lets the app start (SUCCESS); one that exits 3 fails the task with the reason; a
# service's task that turns UNHEALTHY is stopped and its service starts another.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir depends
IT_TASK_SLEEP=0.25
it_aws_env "$STATE"
it_endpoint
# shellcheck disable=SC2032 # (lib.sh runs the docker binary itself)
docker() { command docker -H "$ES_TEST_DOCKER_HOST" "$@"; }
CLUSTER=default
it_start_agent --task-cleanup-wait 60s

# ---- refusals name the field ----
expect_error ClientException "containerDefinitions[0].dependsOn[0].condition: HEALTHY needs a healthCheck on container 'db'" \
  ecs register-task-definition --family refused --container-definitions \
  '[{"name":"app","image":"local/busybox:latest","dependsOn":[{"containerName":"db","condition":"HEALTHY"}]},{"name":"db","image":"local/busybox:latest"}]'
expect_error ClientException "containerDefinitions[0].dependsOn[0].condition: SUCCESS can't be set on an essential container ('init')" \
  ecs register-task-definition --family refused --container-definitions \
  '[{"name":"app","image":"local/busybox:latest","dependsOn":[{"containerName":"init","condition":"SUCCESS"}]},{"name":"init","image":"local/busybox:latest"}]'
expect_error ClientException "containerDefinitions[0].healthCheck.interval: must be between 5 and 300" \
  ecs register-task-definition --family refused --container-definitions \
  '[{"name":"app","image":"local/busybox:latest","healthCheck":{"command":["CMD-SHELL","true"],"interval":1}}]'
say "refusals name the field"

# the epoch seconds (with fraction) of a Docker RFC 3339 time with nanoseconds
epoch() { python3 -c 'import sys,datetime as d; s=sys.argv[1]; b,_,f=s.rstrip("Z").partition("."); print(d.datetime.strptime(b,"%Y-%m-%dT%H:%M:%S").replace(tzinfo=d.timezone.utc).timestamp()+float("0."+(f or "0")))' "$1"; }
later() { python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)' "$1" "$2"; }
cid() {
  aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$1" \
    --query "tasks[0].containers[?name=='$2'].runtimeId | [0]" --output text
}

# ---- HEALTHY: the app waits for db's health check ----
cat >"$WORK/health.json" <<'EOF'
[{"name":"app","image":"local/busybox:latest","command":["sleep","600"],"stopTimeout":1,
  "dependsOn":[{"containerName":"db","condition":"HEALTHY"}]},
 {"name":"db","image":"local/busybox:latest","stopTimeout":1,
  "command":["sh","-c","sleep 3; touch /tmp/ready; exec sleep 600"],
  "healthCheck":{"command":["CMD-SHELL","test -f /tmp/ready"],"interval":5,"timeout":2,"retries":2}}]
EOF
aws ecs register-task-definition --family health --container-definitions "file://$WORK/health.json" >/dev/null
eq "$(aws ecs describe-task-definition --task-definition health --query 'taskDefinition.containerDefinitions[1].healthCheck' --output json | jq -c .)" \
  '{"command":["CMD-SHELL","test -f /tmp/ready"],"interval":5,"timeout":2,"retries":2}' \
  "describe-task-definition's healthCheck"
TASK=$(aws ecs run-task --cluster "$CLUSTER" --task-definition health --query 'tasks[0].taskArn' --output text)
# the app is not started while db has no verdict (Docker's first check is 5 s after db's
# start; the proof that does not depend on timing is the StartedAt comparison below)
s=$(task_status "$TASK")
[[ $s == PROVISIONING || $s == PENDING ]] || fail "the task is $s before db's health check could pass"
s=$(wait_status "$TASK" RUNNING STOPPED)
[[ $s == RUNNING ]] || fail "health: task is $s: $(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$TASK")"
DB=$(cid "$TASK" db)
APP=$(cid "$TASK" app)
eq "$(docker inspect -f '{{json .Config.Healthcheck}}' "$DB")" \
  '{"Test":["CMD-SHELL","test -f /tmp/ready"],"Interval":5000000000,"Timeout":2000000000,"Retries":2}' \
  "db's Config.Healthcheck (Docker leaves out a StartPeriod of 0)"
eq "$(docker inspect -f '{{.State.Health.Status}}' "$DB")" healthy "db's Docker health"
HEALTHY_AT=$(docker inspect "$DB" | jq -r '[.[0].State.Health.Log[] | select(.ExitCode == 0)][0].End')
APP_AT=$(docker inspect -f '{{.State.StartedAt}}' "$APP")
later "$(epoch "$APP_AT")" "$(epoch "$HEALTHY_AT")" ||
  fail "the app started at $APP_AT, before db's health check passed at $HEALTHY_AT"
say "the app started ($APP_AT) after db was healthy ($HEALTHY_AT)"
aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$TASK" >"$WORK/health.described"
eq "$(jq -r '.tasks[0].healthStatus' "$WORK/health.described")" HEALTHY "the task's healthStatus"
eq "$(jq -r '.tasks[0].containers[] | select(.name=="db") | .healthStatus' "$WORK/health.described")" \
  HEALTHY "db's healthStatus"
eq "$(jq -r '.tasks[0].containers[] | select(.name=="app") | .healthStatus' "$WORK/health.described")" \
  UNKNOWN "app's healthStatus (no health check)"
say "describe-tasks: healthStatus HEALTHY"
aws ecs stop-task --cluster "$CLUSTER" --task "$TASK" >/dev/null
eq "$(wait_status "$TASK" STOPPED)" STOPPED "health stopped"

# ---- SUCCESS: an init container that exits 0, then the app ----
cat >"$WORK/init.json" <<'EOF'
[{"name":"app","image":"local/busybox:latest","command":["sleep","600"],"stopTimeout":1,
  "dependsOn":[{"containerName":"init","condition":"SUCCESS"}]},
 {"name":"init","image":"local/busybox:latest","essential":false,
  "command":["sh","-c","sleep 1; exit 0"]}]
EOF
aws ecs register-task-definition --family init-ok --container-definitions "file://$WORK/init.json" >/dev/null
TASK=$(aws ecs run-task --cluster "$CLUSTER" --task-definition init-ok --query 'tasks[0].taskArn' --output text)
s=$(wait_status "$TASK" RUNNING STOPPED)
[[ $s == RUNNING ]] || fail "init-ok: task is $s: $(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$TASK")"
INIT=$(cid "$TASK" init)
APP=$(cid "$TASK" app)
eq "$(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$TASK" --query "tasks[0].containers[?name=='init'].exitCode | [0]" --output text)" \
  0 "init's exitCode"
later "$(epoch "$(docker inspect -f '{{.State.StartedAt}}' "$APP")")" \
  "$(epoch "$(docker inspect -f '{{.State.FinishedAt}}' "$INIT")")" ||
  fail "the app started before init exited"
say "SUCCESS: the app started after init exited 0"
aws ecs stop-task --cluster "$CLUSTER" --task "$TASK" >/dev/null
eq "$(wait_status "$TASK" STOPPED)" STOPPED "init-ok stopped"

# ---- SUCCESS not met: init exits 3, the task fails and the app never starts ----
sed 's/exit 0/exit 3/' "$WORK/init.json" >"$WORK/init-bad.json"
aws ecs register-task-definition --family init-bad --container-definitions "file://$WORK/init-bad.json" >/dev/null
TASK=$(aws ecs run-task --cluster "$CLUSTER" --task-definition init-bad --query 'tasks[0].taskArn' --output text)
eq "$(wait_status "$TASK" STOPPED)" STOPPED "init-bad stopped"
aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$TASK" >"$WORK/bad.described"
eq "$(jq -r '.tasks[0].stopCode' "$WORK/bad.described")" TaskFailedToStart "init-bad's stopCode"
eq "$(jq -r '.tasks[0].stoppedReason' "$WORK/bad.described")" \
  "CannotStartContainerError: app: its dependency was not resolved: init exited with code 3 (condition SUCCESS)" \
  "init-bad's stoppedReason"
eq "$(jq -r '.tasks[0].containers[] | select(.name=="init") | .exitCode' "$WORK/bad.described")" 3 \
  "init's exitCode"
say "SUCCESS not met: the task failed with the reason"

# ---- a service's task that turns UNHEALTHY is stopped and replaced ----
cat >"$WORK/sick.json" <<'EOF'
[{"name":"app","image":"local/busybox:latest","command":["sleep","600"],"stopTimeout":1,
  "healthCheck":{"command":["CMD-SHELL","exit 1"],"interval":5,"timeout":2,"retries":1}}]
EOF
aws ecs register-task-definition --family sick --container-definitions "file://$WORK/sick.json" >/dev/null
aws ecs create-service --cluster "$CLUSTER" --service-name sick --task-definition sick \
  --desired-count 1 >/dev/null
FIRST=
Q=$(jq -cn --arg c "$CLUSTER" '{cluster: $c, serviceName: "sick"}')
for ((i = 0; i < 120 && ${#FIRST} == 0; i++)); do
  FIRST=$(it_ecs ListTasks "$Q" | jq -r '.taskArns[0] // empty') || FIRST=
  sleep 0.25
done
[[ -n $FIRST ]] || fail "the service started no task"
eq "$(wait_status "$FIRST" STOPPED)" STOPPED "the unhealthy service task stopped"
aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$FIRST" >"$WORK/sick.described"
eq "$(jq -r '.tasks[0] | [.stopCode, .stoppedReason, .healthStatus] | join("|")' "$WORK/sick.described")" \
  "ServiceSchedulerInitiated|Task failed container health checks|UNHEALTHY" "the unhealthy task"
NEXT=
Q=$(jq -cn --arg c "$CLUSTER" '{cluster: $c, serviceName: "sick", desiredStatus: "RUNNING"}')
for ((i = 0; i < 120 && ${#NEXT} == 0; i++)); do
  NEXT=$(it_ecs ListTasks "$Q" | jq -r --arg f "$FIRST" '[.taskArns[] | select(. != $f)][0] // empty') || NEXT=
  sleep 0.25
done
[[ -n $NEXT ]] || fail "the service did not replace its unhealthy task"
say "a service's UNHEALTHY task was stopped and replaced"
aws ecs delete-service --cluster "$CLUSTER" --service sick --force >/dev/null
it_stop_agent
say "ok"

#!/usr/bin/env bash
# The agent killed with SIGKILL while its tasks run, then started again: the tasks are still
# RUNNING (their containers adopted), stoppable, and a task whose container died while the
# agent was away is found STOPPED with its exit code.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir restart
IT_TASK_SLEEP=0.25
it_aws_env "$STATE"
it_endpoint
# shellcheck disable=SC2032 # (lib.sh runs the docker binary itself)
docker() { command docker -H "$ES_TEST_DOCKER_HOST" "$@"; }
# want_status TASK STATUS: fails unless the task reaches STATUS within 30 s
want_status() {
  local s
  s=$(wait_status "$1" "$2")
  [[ $s == "$2" ]] || fail "task $1 is $s, not $2"
}

it_start_agent
aws ecs register-task-definition --family restart --network-mode none --container-definitions \
  '[{"name":"app","image":"local/busybox:latest","command":["sleep","600"],"stopTimeout":1}]' >/dev/null
A=$(aws ecs run-task --task-definition restart --query 'tasks[0].taskArn' --output text)
B=$(aws ecs run-task --task-definition restart --query 'tasks[0].taskArn' --output text)
want_status "$A" RUNNING
want_status "$B" RUNNING
CA=$(aws ecs describe-tasks --tasks "$A" --query 'tasks[0].containers[0].runtimeId' --output text)
CB=$(aws ecs describe-tasks --tasks "$B" --query 'tasks[0].containers[0].runtimeId' --output text)

kill -KILL "$PID"
wait "$PID" 2>/dev/null || true
PID=
docker kill "$CB" >/dev/null # dies while nobody watches
[[ $(docker inspect -f '{{.State.Running}}' "$CA") == true ]] || fail "A's container stopped with the agent"

it_start_agent
grep -q "reconciled" "$LOG" || sleep 1
want_status "$A" RUNNING
want_status "$B" STOPPED
[[ $(aws ecs describe-tasks --tasks "$B" --query 'tasks[0].stopCode' --output text) == EssentialContainerExited ]] ||
  fail "B's stop code"
[[ $(aws ecs describe-tasks --tasks "$B" --query 'tasks[0].containers[0].exitCode' --output text) == 137 ]] ||
  fail "B's exit code: $(aws ecs describe-tasks --tasks "$B" --query 'tasks[0].containers[0]')"
[[ $(docker ps -q --filter "label=com.amazonaws.ecs.task-arn=$A" | wc -l) -eq 1 ]] ||
  fail "A has not exactly one container"

aws ecs stop-task --task "$A" --reason "after the restart" >/dev/null
want_status "$A" STOPPED
[[ $(docker inspect -f '{{.State.Running}}' "$CA") == false ]] || fail "A's container still runs"
docker rm -f "$CA" "$CB" >/dev/null
echo "agent restart: A adopted and stopped, B found dead (137)"

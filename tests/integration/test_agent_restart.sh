#!/usr/bin/env bash
# The agent killed with SIGKILL while its tasks run, then started again: the tasks are still
# RUNNING (their containers adopted), stoppable, and a task whose container died while the
# agent was away is found STOPPED with its exit code.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
WORK=$(mktemp -d /tmp/es-restart-XXXXXX)
STATE=$WORK/state
LOG=$WORK/agent.log
mkdir -m 700 "$STATE"
PID=
fail() {
  echo "FAIL: $*" >&2
  tail -n 40 "$LOG" >&2 || true
  exit 1
}
cleanup() {
  if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then kill -TERM "$PID" || true; wait "$PID" || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_REGION || true
export AWS_SHARED_CREDENTIALS_FILE=$STATE/aws-credentials AWS_CONFIG_FILE=$STATE/aws-config
export AWS_PAGER= AWS_EC2_METADATA_DISABLED=true
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
aws() { /usr/bin/aws --profile ecs-secrets-agent --endpoint-url "http://127.0.0.1:$PORT" "$@"; }
docker() { command docker -H "$ES_TEST_DOCKER_HOST" "$@"; }

start_agent() {
  local want=$(($(grep -c "ready: " "$LOG" 2>/dev/null || true) + 1)) i
  "$ES_AGENT_BIN" --state-dir "$STATE" --listen "127.0.0.1:$PORT" \
    --docker-host "$ES_TEST_DOCKER_HOST" >>"$LOG" 2>&1 &
  PID=$!
  for ((i = 0; i < 100; i++)); do
    [[ $(grep -c "ready: " "$LOG" 2>/dev/null || true) -ge $want ]] && return 0
    kill -0 "$PID" 2>/dev/null || fail "the agent exited during start"
    sleep 0.1
  done
  fail "the agent did not become ready"
}
status() { aws ecs describe-tasks --tasks "$1" --query 'tasks[0].lastStatus' --output text; }
wait_status() {
  local i
  for ((i = 0; i < 120; i++)); do
    [[ $(status "$1") == "$2" ]] && return 0
    sleep 0.25
  done
  fail "task $1 is $(status "$1"), not $2"
}

start_agent
aws ecs register-task-definition --family restart --network-mode none --container-definitions \
  '[{"name":"app","image":"local/busybox:latest","command":["sleep","600"],"stopTimeout":1}]' >/dev/null
A=$(aws ecs run-task --task-definition restart --query 'tasks[0].taskArn' --output text)
B=$(aws ecs run-task --task-definition restart --query 'tasks[0].taskArn' --output text)
wait_status "$A" RUNNING
wait_status "$B" RUNNING
CA=$(aws ecs describe-tasks --tasks "$A" --query 'tasks[0].containers[0].runtimeId' --output text)
CB=$(aws ecs describe-tasks --tasks "$B" --query 'tasks[0].containers[0].runtimeId' --output text)

kill -KILL "$PID"
wait "$PID" 2>/dev/null || true
PID=
docker kill "$CB" >/dev/null # dies while nobody watches
[[ $(docker inspect -f '{{.State.Running}}' "$CA") == true ]] || fail "A's container stopped with the agent"

start_agent
grep -q "reconciled" "$LOG" || sleep 1
wait_status "$A" RUNNING
wait_status "$B" STOPPED
[[ $(aws ecs describe-tasks --tasks "$B" --query 'tasks[0].stopCode' --output text) == EssentialContainerExited ]] ||
  fail "B's stop code"
[[ $(aws ecs describe-tasks --tasks "$B" --query 'tasks[0].containers[0].exitCode' --output text) == 137 ]] ||
  fail "B's exit code: $(aws ecs describe-tasks --tasks "$B" --query 'tasks[0].containers[0]')"
[[ $(docker ps -q --filter "label=com.amazonaws.ecs.task-arn=$A" | wc -l) -eq 1 ]] ||
  fail "A has not exactly one container"

aws ecs stop-task --task "$A" --reason "after the restart" >/dev/null
wait_status "$A" STOPPED
[[ $(docker inspect -f '{{.State.Running}}' "$CA") == false ]] || fail "A's container still runs"
docker rm -f "$CA" "$CB" >/dev/null
echo "agent restart: A adopted and stopped, B found dead (137)"

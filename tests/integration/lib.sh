# lib.sh - what the integration scripts (tests/integration/test_*.sh) share: a work
# directory removed on exit, the daemon started in the background and waited for, the real
# aws CLI pointed at its embedded endpoints, task and container polling, assertions.
#
# Sourced, after `set -euo pipefail`, as  . "$(dirname "$0")/lib.sh"  (ctest runs the
# scripts from the source tree: `bash /path/to/test_x.sh`). Defines functions, sets T0 and
# clears the tuning variables below; everything else happens when a script calls it.
# Names: words used in a test's body (say, fail, eq, aws, expect_error, wait_status, ...) are
# bare; set-up and lifecycle helpers start with it_.
#
# Globals it sets: T0, WORK, STATE, LOG, PID (it_workdir, it_start_agent), PORT, URL
# (it_endpoint). Globals a script may set to tune it (defaults in brackets):
#   IT_FAIL_LINES [40]   lines of $LOG that fail prints
#   IT_FAIL_HEADER []    a line printed before them (e.g. "---- agent log ----")
#   IT_TASK_TRIES [120], IT_TASK_SLEEP [0.5]   how wait_status polls
#   CLUSTER []           the cluster the agent runs: passed to describe-tasks, and its
#                        containers are removed on exit
#   ANSWERS []           a file: every answer aws/expect_error get is appended to it (so the
#                        script can scan them for secret values)
# (these are cleared when lib.sh is sourced: set them after it, never inherit them)
# Hooks a script may define: it_on_fail (what fail prints after its message; default
# it_show_log), it_cleanup_hook (run on exit after the agent is stopped, before $WORK goes).
# lib.sh runs the docker binary itself (`command docker`), so a script's docker() wrapper
# does not change what it does.

unset CLUSTER ANSWERS IT_FAIL_LINES IT_FAIL_HEADER IT_TASK_TRIES IT_TASK_SLEEP IT_AWS_BIN IT_AWS_PID
T0=$(date +%s)
IT_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# say MSG...: prints MSG prefixed with the seconds since the script started
say() { echo "[$(($(date +%s) - T0))s] $*"; }

# it_show_log: prints IT_FAIL_HEADER (if set) and the last IT_FAIL_LINES lines of $LOG to stderr
it_show_log() {
  if [[ -n ${IT_FAIL_HEADER-} ]]; then echo "$IT_FAIL_HEADER" >&2; fi
  tail -n "${IT_FAIL_LINES:-40}" "${LOG-}" >&2 || true
}

# it_on_fail: what fail prints after its message; this default shows the agent's log (a
# script redefines it to show more, or something else)
it_on_fail() { it_show_log; }

# fail MSG...: prints "FAIL: MSG" and it_on_fail's context to stderr, exits 1
fail() {
  echo "FAIL: $*" >&2
  it_on_fail
  exit 1
}

# eq GOT WANT WHAT: fails (naming WHAT) unless GOT is the string WANT
eq() { [[ $1 == "$2" ]] || fail "$3: got '$1', want '$2'"; }

# it_kill PID: if PID (may be empty) is a running child, SIGTERM it and reap it; never fails
it_kill() {
  if [[ -n $1 ]] && kill -0 "$1" 2>/dev/null; then
    kill -TERM "$1" || true
    wait "$1" || true
  fi
}

# it_rm_containers FILTER: removes every container of the test engine ($ES_TEST_DOCKER_HOST)
# that `docker ps --filter FILTER` lists; never fails
# (bounded: an engine that no longer answers must not hold the test, and its lane, forever)
it_rm_containers() {
  timeout 30 docker -H "$ES_TEST_DOCKER_HOST" ps -aq --filter "$1" |
    xargs -r timeout 60 docker -H "$ES_TEST_DOCKER_HOST" rm -f >/dev/null 2>&1 || true
}

# it_cleanup: the EXIT trap: stops the agent ($PID), removes $CLUSTER's containers if CLUSTER
# is set, runs it_cleanup_hook if the script defines one, removes $WORK
it_cleanup() {
  it_kill "${PID-}"
  if [[ -n ${IT_AWS_PID-} ]]; then kill -TERM "$IT_AWS_PID" 2>/dev/null || true; fi
  if [[ -n ${CLUSTER-} ]]; then it_rm_containers "label=com.amazonaws.ecs.cluster=$CLUSTER"; fi
  if declare -F it_cleanup_hook >/dev/null; then it_cleanup_hook; fi
  rm -rf "$WORK"
}

# it_workdir NAME [--no-state]: WORK=a new /tmp/es-NAME-XXXXXX, STATE=$WORK/state (made with
# mode 700 unless --no-state), LOG=$WORK/agent.log, PID empty; sets the EXIT trap it_cleanup
it_workdir() {
  WORK=$(mktemp -d "/tmp/es-$1-XXXXXX")
  STATE=$WORK/state
  LOG=$WORK/agent.log
  PID=
  trap it_cleanup EXIT
  if [[ ${2-} != --no-state ]]; then mkdir -m 700 "$STATE"; fi
}

# it_free_port: prints a TCP port free on 127.0.0.1 right now
it_free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# it_endpoint: PORT=a free loopback port for the agent to listen on, URL=http://127.0.0.1:PORT
it_endpoint() {
  PORT=$(it_free_port)
  URL=http://127.0.0.1:$PORT
}

# it_aws_env [STATE_DIR [MAX_ATTEMPTS]]: nothing from the caller's environment reaches the
# CLI's credential chain; the CLI reads the credentials and config the agent writes into
# STATE_DIR (without it, AWS_SHARED_CREDENTIALS_FILE/AWS_CONFIG_FILE are left unset);
# MAX_ATTEMPTS (if given) becomes AWS_MAX_ATTEMPTS
# shellcheck disable=SC2120 # both arguments are optional
it_aws_env() {
  unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE \
    AWS_REGION AWS_DEFAULT_REGION AWS_ENDPOINT_URL AWS_SHARED_CREDENTIALS_FILE AWS_CONFIG_FILE || true
  export AWS_PAGER='' AWS_EC2_METADATA_DISABLED=true
  if [[ -n ${1-} ]]; then
    export AWS_SHARED_CREDENTIALS_FILE=$1/aws-credentials AWS_CONFIG_FILE=$1/aws-config
  fi
  if [[ -n ${2-} ]]; then export AWS_MAX_ATTEMPTS=$2; fi
  it_aws_forkserver
}

# it_aws_forkserver: starts aws_forkserver.py (the installed aws CLI imported once; each call a
# forked child on the caller's argv, environment, directory and stdio; about a fifth of a
# fresh /usr/bin/aws's CPU) on $WORK/aws.sock, and writes IT_AWS_BIN=$WORK/aws-cli, an
# executable that goes through it (or runs /usr/bin/aws when the server is not there) for
# what cannot call a shell function: `env -u`, rotation hooks, the examples (AWS_CLI=). Not
# with ES_TEST_AWS_FORKSERVER=0, nor twice; the server ends with this shell (or it_cleanup).
it_aws_forkserver() {
  [[ -n ${WORK-} && -z ${IT_AWS_BIN-} ]] || return 0
  local i
  IT_AWS_BIN=$WORK/aws-cli
  # the client: the build's aws_forkclient (C, a few ms of CPU a call) or, outside a build
  # (no ES_BUILD_DIR), aws_forkclient.py (Python's start: 50-90 ms a call); the same request
  local client="/usr/bin/python3 -I -S '$IT_LIB_DIR/aws_forkclient.py'"
  if [[ -x ${ES_BUILD_DIR-}/tests/integration/aws_forkclient ]]; then
    client="'$ES_BUILD_DIR/tests/integration/aws_forkclient'"
  fi
  cat >"$IT_AWS_BIN" <<EOF
#!/bin/sh
# the aws CLI through the fork server of the test in $WORK (tests/integration/lib.sh)
[ -S '$WORK/aws.sock' ] && exec $client '$WORK/aws.sock' "\$@"
exec /usr/bin/aws "\$@"
EOF
  chmod 0755 "$IT_AWS_BIN"
  [[ ${ES_TEST_AWS_FORKSERVER:-1} != 0 ]] || return 0
  /usr/bin/python3 "$IT_LIB_DIR/aws_forkserver.py" "$WORK/aws.sock" >>"$WORK/aws-forkserver.log" 2>&1 &
  IT_AWS_PID=$!
  disown "$IT_AWS_PID" # a script's bare `wait` does not wait for it
  for ((i = 0; i < 200; i++)); do
    [[ -S $WORK/aws.sock ]] && return 0
    sleep 0.05
  done
  echo "the aws CLI's fork server did not start; calls run /usr/bin/aws:" >&2
  cat "$WORK/aws-forkserver.log" >&2 || true
}

# it_aws_cli ARGS...: the installed aws CLI, through the fork server when it runs
it_aws_cli() {
  if [[ -n ${IT_AWS_BIN-} ]]; then "$IT_AWS_BIN" "$@"; else /usr/bin/aws "$@"; fi
}

# it_aws ARGS...: the real CLI (/usr/bin/aws) as the embedded administrator against $URL,
# nothing added (for --debug, stderr captures and the like)
it_aws() { it_aws_cli --profile ecs-secrets-agent --endpoint-url "$URL" "$@"; }

# aws ARGS...: it_aws --output json ARGS (a later --output wins); with ANSWERS set, the
# answer is also appended to that file
aws() {
  if [[ -z ${ANSWERS-} ]]; then
    it_aws --output json "$@"
    return
  fi
  local out
  out=$(it_aws --output json "$@") || return $?
  printf '%s\n' "$out" >>"$ANSWERS"
  printf '%s\n' "$out"
}

# expect_error CODE MESSAGE-PART ARGS...: `aws ARGS` fails as a service error does (exit 254
# in awscli v2, 255 in v1) with ECS/AWS's CODE and MESSAGE-PART in its message
expect_error() {
  local code=$1 part=$2 out rc=0
  shift 2
  out=$(it_aws --output json "$@" 2>&1) || rc=$?
  if [[ -n ${ANSWERS-} ]]; then printf '%s\n' "$out" >>"$ANSWERS"; fi
  [[ $rc -eq 254 || $rc -eq 255 ]] || fail "aws $*: exit $rc, wanted 254/255 ($code): $out"
  grep -qF "($code)" <<<"$out" || fail "aws $*: wanted $code, got: $out"
  grep -qF -- "$part" <<<"$out" || fail "aws $*: the message lacks '$part': $out"
}

# it_wait_ready WANT [TRIES [WHAT]]: waits (TRIES x 0.1 s, default 100) until $LOG holds WANT
# "ready: " lines; fails if process $PID (named WHAT, default "the agent") ends first
it_wait_ready() {
  local want=$1 tries=${2:-100} what=${3:-the agent} i
  for ((i = 0; i < tries; i++)); do
    [[ $(grep -c "ready: " "$LOG" 2>/dev/null || true) -ge $want ]] && return 0
    kill -0 "$PID" 2>/dev/null || fail "$what exited during start"
    sleep 0.1
  done
  [[ $(grep -c "ready: " "$LOG" 2>/dev/null || true) -ge $want ]] && return 0
  fail "$what did not become ready"
}

# it_start_agent [FLAGS...]: starts $ES_AGENT_BIN in the background on $STATE, 127.0.0.1:$PORT
# and the test engine, with FLAGS, appending to $LOG; PID=its pid; returns once it logged one
# more ready line than before (fails if it exits or takes over 10 s)
# shellcheck disable=SC2120 # FLAGS are optional
it_start_agent() {
  local want=$(($(grep -c "ready: " "$LOG" 2>/dev/null || true) + 1))
  "$ES_AGENT_BIN" --state-dir "$STATE" --listen "127.0.0.1:$PORT" \
    --docker-host "$ES_TEST_DOCKER_HOST" "$@" >>"$LOG" 2>&1 &
  PID=$!
  it_wait_ready "$want"
}

# it_stop_agent: SIGTERM to the agent ($PID); fails unless it exits with 0; PID empty again
it_stop_agent() {
  kill -TERM "$PID"
  wait "$PID" || fail "the agent exited with $? on SIGTERM"
  PID=
}

# create_exec_role ROLE: creates the IAM role ROLE that ecs-tasks.amazonaws.com may assume
create_exec_role() {
  aws iam create-role --role-name "$1" --assume-role-policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}' >/dev/null
}

# task_status TASK: prints the task's lastStatus (describe-tasks, in $CLUSTER if set)
task_status() {
  aws ecs describe-tasks ${CLUSTER:+--cluster "$CLUSTER"} --tasks "$1" \
    --query 'tasks[0].lastStatus' --output text
}

# it_api SERVICE TARGET JSON: one JSON-protocol call to $URL signed by curl's own SigV4
# (--aws-sigv4) with the embedded administrator's key from $AWS_SHARED_CREDENTIALS_FILE;
# prints the answer, fails on an HTTP error. For polling loops only: the aws CLI costs about
# a second of CPU a call (Python's start), which a loop polling every half second turns into
# minutes of a shared CI machine's two cores.
it_api() {
  local key secret region
  key=$(awk -F' *= *' '$1 == "aws_access_key_id" { print $2; exit }' "$AWS_SHARED_CREDENTIALS_FILE")
  secret=$(awk -F' *= *' '$1 == "aws_secret_access_key" { print $2; exit }' "$AWS_SHARED_CREDENTIALS_FILE")
  region=$(awk -F' *= *' '$1 == "region" { print $2; exit }' "$AWS_CONFIG_FILE")
  curl -sSf --max-time 20 --aws-sigv4 "aws:amz:$region:$1" --user "$key:$secret" \
    -H "X-Amz-Target: $2" -H 'Content-Type: application/x-amz-json-1.1' --data-binary "$3" "$URL/"
}

# it_ecs ACTION JSON: one ECS call (ACTION: DescribeTasks, ListTasks, ...) through it_api
it_ecs() { it_api ecs "AmazonEC2ContainerServiceV20141113.$1" "$2"; }

# it_task_status_fast TASK: task_status through it_api (for polling)
it_task_status_fast() {
  it_api ecs AmazonEC2ContainerServiceV20141113.DescribeTasks \
    "$(jq -cn --arg c "${CLUSTER-}" --arg t "$1" '{tasks: [$t]} + (if $c == "" then {} else {cluster: $c} end)')" |
    jq -r '.tasks[0].lastStatus // "None"'
}

# it_service_json CLUSTER SERVICE: DescribeServices through it_api (for polling loops)
it_service_json() {
  it_api ecs AmazonEC2ContainerServiceV20141113.DescribeServices \
    "$(jq -cn --arg c "$1" --arg s "$2" '{cluster: $c, services: [$s]}')"
}

# it_service_events CLUSTER SERVICE: the service's event messages, newest first, one a line
# (for polling loops)
it_service_events() { it_service_json "$1" "$2" | jq -r '.services[0].events[].message'; }

# wait_status TASK STATUS...: polls the task's status (IT_TASK_TRIES times, IT_TASK_SLEEP s
# apart, through it_api; through the CLI when that call fails, e.g. under a test's own
# credentials) until it is one of STATUS; prints the status it ended on (the caller asserts it)
wait_status() {
  local task=$1 s want i
  shift
  for ((i = 0; i < ${IT_TASK_TRIES:-120}; i++)); do
    s=$(it_task_status_fast "$task") || s=$(task_status "$task")
    for want in "$@"; do [[ $s == "$want" ]] && { echo "$s"; return 0; }; done
    sleep "${IT_TASK_SLEEP:-0.5}"
  done
  echo "$s"
}

# wait_container_log CID TRIES SECS GREP-ARGS...: polls `docker logs CID` (test engine) up to
# TRIES times, SECS apart, until `grep -q GREP-ARGS` matches it; returns 1 if it never did
wait_container_log() {
  local cid=$1 tries=$2 secs=$3 i
  shift 3
  for ((i = 0; i < tries; i++)); do
    grep -q "$@" <<<"$(command docker -H "$ES_TEST_DOCKER_HOST" logs "$cid" 2>&1)" && return 0
    sleep "$secs"
  done
  return 1
}

# it_registry USER PASSWORD REPO: a private registry, as a user runs one: Debian's
# docker-registry (distribution 2.x) with htpasswd basic auth for USER on a free loopback port
# (dockerd takes loopback registries as insecure: plain http), its storage under
# $WORK/registry, its log $WORK/registry.log; local/busybox pushed to it as
# IMG=127.0.0.1:RPORT/REPO:latest (docker login with a throwaway $WORK/docker config, logout
# after) and removed from the engine again, checked to be unpullable without credentials. Sets
# RPORT, REG_PID and IMG; the caller's it_cleanup_hook kills $REG_PID and removes $IMG.
it_registry() {
  local user=$1 pass=$2 repo=$3 code= i
  command -v /usr/bin/docker-registry >/dev/null || fail "docker-registry missing (scripts/deps.sh)"
  command -v htpasswd >/dev/null || fail "htpasswd missing (apache2-utils, scripts/deps.sh)"
  local dk=(env DOCKER_CONFIG="$WORK/docker" docker -H "$ES_TEST_DOCKER_HOST")
  RPORT=$(it_free_port)
  htpasswd -Bbn "$user" "$pass" >"$WORK/htpasswd"
  cat >"$WORK/registry.yml" <<REG
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: 127.0.0.1:$RPORT
  secret: es-test-not-a-secret
auth:
  htpasswd:
    realm: es-test
    path: $WORK/htpasswd
REG
  /usr/bin/docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 </dev/null &
  REG_PID=$!
  for ((i = 0; i < 100; i++)); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$RPORT/v2/" || true)
    [[ $code == 401 ]] && break
    sleep 0.1
  done
  [[ $code == 401 ]] || fail "the registry did not answer 401 on /v2/ ($code)"
  IMG=127.0.0.1:$RPORT/$repo:latest
  printf '%s' "$pass" | "${dk[@]}" login -u "$user" --password-stdin "127.0.0.1:$RPORT" >/dev/null 2>&1 ||
    fail "docker login to the test registry"
  "${dk[@]}" tag local/busybox:latest "$IMG"
  "${dk[@]}" push "$IMG" >/dev/null || fail "docker push"
  "${dk[@]}" logout "127.0.0.1:$RPORT" >/dev/null
  "${dk[@]}" rmi "$IMG" >/dev/null
  ! "${dk[@]}" image inspect "$IMG" >/dev/null 2>&1 || fail "$IMG still in the engine"
  # without credentials the engine cannot pull it: the registry really asks
  ! "${dk[@]}" pull "$IMG" >/dev/null 2>&1 || fail "the registry served $IMG without credentials"
}

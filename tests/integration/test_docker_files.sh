#!/usr/bin/env bash
# Secrets as files through the agent's Docker socket (issues 19 and 21), with the real docker
# CLI through ECS_SECRETS_DOCKER_PROXY, the test dockerd and the agent in embedded mode:
#   - docker run with ecs-secrets.secret.DB + ecs-secrets.file.DB=<path>:<mode>:<uid>: the
#     container reads the value at the path, with the mode and owner, read-only; DB is not a
#     variable (docker inspect's Env), the host file is on the agent's tmpfs under
#     docker/<task id>, the audit line says "file";
#   - docker stop then docker start: the task STOPPED, a new task, the same file (the
#     directory follows the container, not the task);
#   - docker rm: the files are gone (zeroed and unlinked);
#   - a container removed while the agent is down: its files are removed after the agent's
#     first reconciling list once it is back; a running one keeps its own;
#   - no value in the agent's log or state.
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir dockerfiles
IT_FAIL_HEADER="---- agent log ----"
ACCT=123456789012
NAME=es-dfiles-$$
IMAGE=local/busybox:latest
SOCKDIR=$(mktemp -d /tmp/es-dfiles-sock-XXXXXX)
PROXY=$SOCKDIR/docker.sock
# the files directory on a tmpfs of the test's own (root may mount one)
MEM=$WORK/mem
mkdir "$MEM"
mount -t tmpfs -o size=4m,mode=0700 tmpfs "$MEM" || fail "cannot mount a tmpfs on $MEM"
FILES=$MEM/files
it_cleanup_hook() {
  it_rm_containers "name=$NAME"
  umount -l "$MEM" 2>/dev/null || true
  rm -rf "$SOCKDIR"
}
it_endpoint
it_aws_env "$STATE" 1

d() { DOCKER_HOST=unix://$PROXY command docker "$@"; }
direct() { command docker -H "$ES_TEST_DOCKER_HOST" "$@"; }
start() { it_start_agent --mode embedded --docker-proxy "$PROXY" --files-dir "$FILES"; }
# the host directory of the container created as task TASK_ID
host_dir() { echo "$FILES/docker/$1"; }
# task id of the container NAME (its task-ARN label: the task its create made)
task_of() { direct inspect -f '{{index .Config.Labels "com.amazonaws.ecs.task-arn"}}' "$1" | sed 's|.*/||'; }
wait_until() { # SECONDS WHAT CMD: CMD (a shell line) true within SECONDS
  local end=$((SECONDS + $1))
  while ((SECONDS < end)); do
    eval "$3" && return 0
    sleep 0.3
  done
  fail "not within $1 s: $2"
}
gone_within() { # PATH SECONDS
  local end=$((SECONDS + $2))
  while ((SECONDS < end)); do
    [[ -e $1 ]] || return 0
    sleep 0.2
  done
  fail "$1 still exists after $2 s: $(ls -la "$1" 2>&1)"
}

start
V_DB="dbfile-$RANDOM$RANDOM$RANDOM"
V_ENV="dbenv-$RANDOM$RANDOM$RANDOM"
aws ssm put-parameter --name /dfiles/db --type SecureString --value "$V_DB" >/dev/null
aws ssm put-parameter --name /dfiles/env --type SecureString --value "$V_ENV" >/dev/null
create_exec_role dfiles-exec
aws iam put-role-policy --role-name dfiles-exec --policy-name read --policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:GetParameters","kms:Decrypt"],"Resource":"*"}]}'
ROLE=arn:aws:iam::$ACCT:role/dfiles-exec
LABELS=(--label "ecs-secrets.execution-role=$ROLE" --label ecs-secrets.secret.DB=/dfiles/db
  --label ecs-secrets.secret.ENVV=/dfiles/env --label ecs-secrets.file.DB=/run/secrets/db:0440:1000)

say "docker run -d with a file label: the file in the container, not in Env"
d run -d --network none --name "$NAME-a" "${LABELS[@]}" "$IMAGE" sleep 600 >/dev/null ||
  fail "docker run with a file label"
eq "$(d exec "$NAME-a" cat /run/secrets/db)" "$V_DB" "the file's content"
eq "$(d exec "$NAME-a" stat -c '%a %u' /run/secrets/db)" "440 1000" "mode and owner"
# shellcheck disable=SC2016 # expanded by the container's shell
eq "$(d exec "$NAME-a" sh -c 'echo "${DB:-unset} $ENVV"')" "unset $V_ENV" "DB is a file, ENVV a variable"
rc=0
d exec "$NAME-a" sh -c 'echo x > /run/secrets/db' 2>/dev/null || rc=$?
[[ $rc -ne 0 ]] || fail "the file is writable in the container"
env_json=$(direct inspect -f '{{json .Config.Env}}' "$NAME-a")
grep -qF "$V_DB" <<<"$env_json" && fail "the file's value is in docker inspect's Env"
TA=$(task_of "$NAME-a")
[[ $TA =~ ^[0-9a-f]{32}$ ]] || fail "no task id on $NAME-a: '$TA'"
eq "$(cat "$(host_dir "$TA")/c0/f0")" "$V_DB" "the host file"
eq "$(stat -f -c %T "$(host_dir "$TA")/c0/f0")" tmpfs "the host file's file system"
direct inspect -f '{{range .Mounts}}{{.Source}} {{.Destination}} {{.RW}};{{end}}' "$NAME-a" |
  grep -qF "$(host_dir "$TA")/c0/f0 /run/secrets/db false;" || fail "no read-only bind mount: $(direct inspect -f '{{json .Mounts}}' "$NAME-a")"
grep -qE "Docker socket: uid 0 created container $NAME-a \(task $TA\) with role $ROLE: .*file DB from arn:aws:ssm:us-east-1:$ACCT:parameter/dfiles/db version 1 fingerprint hmac-sha256:[0-9a-f]{32}" "$LOG" ||
  fail "the audit line: $(grep "created container $NAME-a" "$LOG")"

say "docker stop + docker start: a new task, the same file"
d stop -t 1 "$NAME-a" >/dev/null
wait_until 20 "the task of $NAME-a STOPPED" \
  "[[ \$(aws ecs describe-tasks --tasks $TA --query 'tasks[0].lastStatus' --output text) == STOPPED ]]"
[[ -f $(host_dir "$TA")/c0/f0 ]] || fail "the file went with the stopped task, its container still exists"
d start "$NAME-a" >/dev/null
eq "$(d exec "$NAME-a" cat /run/secrets/db)" "$V_DB" "the file after docker start"
wait_until 20 "a new task for $NAME-a" \
  "[[ \$(aws ecs list-tasks --family ecs-secrets-docker --desired-status RUNNING --query 'length(taskArns)') == 1 ]]"

say "docker rm -f: the files are removed"
d rm -f "$NAME-a" >/dev/null
gone_within "$(host_dir "$TA")" 10

say "a container removed while the agent is away: its files go after the first list"
d run -d --network none --name "$NAME-b" "${LABELS[@]}" "$IMAGE" sleep 600 >/dev/null
d run -d --network none --name "$NAME-c" "${LABELS[@]}" "$IMAGE" sleep 600 >/dev/null
TB=$(task_of "$NAME-b")
TC=$(task_of "$NAME-c")
[[ -f $(host_dir "$TB")/c0/f0 && -f $(host_dir "$TC")/c0/f0 ]] || fail "no files for b and c"
it_stop_agent
direct rm -f "$NAME-b" >/dev/null
start
gone_within "$(host_dir "$TB")" 20
eq "$(cat "$(host_dir "$TC")/c0/f0")" "$V_DB" "the running container's file kept across the restart"
eq "$(d exec "$NAME-c" cat /run/secrets/db)" "$V_DB" "c still reads its file"
d rm -f "$NAME-c" >/dev/null
gone_within "$(host_dir "$TC")" 10

it_stop_agent
for v in "$V_DB" "$V_ENV"; do
  if grep -rqaF -- "$v" "$LOG" "$STATE"; then fail "the value $v is in the agent's log or state"; fi
done
say "PASS"

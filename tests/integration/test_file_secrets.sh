#!/usr/bin/env bash
# Issue 21: secrets as files. Registered with the real aws CLI, run on the real dockerd:
#   - frozen: the file is readable in the container at the label's path with the label's
#     mode and owner, the value is absent from `docker inspect` (Env holds the other
#     secret only), the host file lives on a tmpfs and is gone once the task stops;
#   - a files directory on a disk is refused: the task STOPs with the reason, nothing
#     written;
#   - refresh: a new version of the parameter reaches the file while a reader loops in the
#     container (never an empty or partial value), and describe-tasks counts it current.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir filesecrets
IT_TASK_SLEEP=0.25
it_aws_env "$STATE"
it_endpoint
# shellcheck disable=SC2032 # (lib.sh runs the docker binary itself)
docker() { command docker -H "$ES_TEST_DOCKER_HOST" "$@"; }
CLUSTER=default
IMAGE=local/busybox:latest
ACCT=123456789012
ANSWERS=$WORK/answers

# the files directory on a tmpfs of the test's own (root may mount one)
MEM=$WORK/mem
mkdir "$MEM"
mount -t tmpfs -o size=4m,mode=0700 tmpfs "$MEM" || fail "cannot mount a tmpfs on $MEM"
it_cleanup_hook() { umount -l "$MEM" 2>/dev/null || true; }
FILES=$MEM/files

run_task() { # FAMILY -> task ARN
  aws ecs run-task --cluster "$CLUSTER" --task-definition "$1" --query 'tasks[0].taskArn' \
    --output text
}
must_reach() { # TASK STATUS
  local s
  s=$(wait_status "$1" "$2")
  [[ $s == "$2" ]] || fail "task $1 is $s, not $2: $(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$1")"
}
cid_of() { # TASK -> its container's Docker id
  aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$1" \
    --query 'tasks[0].containers[0].runtimeId' --output text
}
# current TASK NAME -> true | false | (nothing): drift's verdict, from the raw answer
# (secretsResolved is the agent's own field: botocore drops it)
current() {
  it_aws --debug ecs describe-tasks --cluster "$CLUSTER" --tasks "$1" 2>&1 >/dev/null |
    grep -o "\"name\": *\"$2\",[^}]*" | head -1 | grep -o '"current": *[a-z]*' | grep -o '[a-z]*$'
}

it_start_agent --mode embedded --files-dir "$FILES" --drift-interval 1s
V1="old-$RANDOM$RANDOM$RANDOM"
VE="env-$RANDOM$RANDOM$RANDOM"
aws ssm put-parameter --name /sf/db --type SecureString --value "$V1" >/dev/null
aws ssm put-parameter --name /sf/env --type SecureString --value "$VE" >/dev/null
create_exec_role sf-exec
aws iam put-role-policy --role-name sf-exec --policy-name read --policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:GetParameters","kms:Decrypt"],"Resource":"*"}]}'
ROLE=arn:aws:iam::$ACCT:role/sf-exec

say "registration refuses a label naming no secret, with the field"
cat >"$WORK/bad.json" <<JSON
[{"name":"app","image":"$IMAGE","secrets":[{"name":"DB","valueFrom":"/sf/db"}],
  "dockerLabels":{"ecs-secrets.file.NOPE":"/run/secrets/db"}}]
JSON
expect_error ClientException 'containerDefinitions[0].dockerLabels["ecs-secrets.file.NOPE"]' \
  ecs register-task-definition --family bad --execution-role-arn "$ROLE" \
  --container-definitions "file://$WORK/bad.json"

say "frozen: a file with its mode and owner, not in Env, on the tmpfs"
cat >"$WORK/frozen.json" <<JSON
[{"name":"app","image":"$IMAGE","command":["sleep","600"],"stopTimeout":1,
  "secrets":[{"name":"DB","valueFrom":"/sf/db"},{"name":"ENVV","valueFrom":"/sf/env"}],
  "dockerLabels":{"ecs-secrets.file.DB":"/run/secrets/db:0440:1000"}}]
JSON
aws ecs register-task-definition --family frozen --network-mode none --execution-role-arn "$ROLE" \
  --container-definitions "file://$WORK/frozen.json" >/dev/null
T=$(run_task frozen)
must_reach "$T" RUNNING
CID=$(cid_of "$T")
eq "$(docker exec "$CID" cat /run/secrets/db)" "$V1" "the file's content"
eq "$(docker exec "$CID" stat -c '%a %u' /run/secrets/db)" "440 1000" "the file's mode and owner"
if docker exec "$CID" sh -c 'echo x > /run/secrets/db' 2>/dev/null; then fail "the file is writable"; fi
ENV=$(docker inspect -f '{{json .Config.Env}}' "$CID")
if grep -qF "$V1" <<<"$ENV" || grep -q '"DB=' <<<"$ENV"; then fail "DB is in Env: $ENV"; fi
grep -qF "ENVV=$VE" <<<"$ENV" || fail "the other secret is not in Env: $ENV"
if docker inspect "$CID" | grep -qF "$V1"; then fail "docker inspect shows the value"; fi
TID=${T##*/}
HOSTFILE=$FILES/$TID/c0/f0
[[ -f $HOSTFILE ]] || fail "no host file $HOSTFILE: $(find "$FILES" 2>&1)"
eq "$(stat -f -c %T "$HOSTFILE")" tmpfs "the host file's file system"
eq "$(stat -c %a "$FILES/$TID")" 700 "the task directory's mode"
say "the task stops: its files are gone"
aws ecs stop-task --cluster "$CLUSTER" --task "$T" >/dev/null
must_reach "$T" STOPPED
if [[ -e $FILES/$TID ]]; then fail "the task's files are still there: $(find "$FILES/$TID")"; fi

say "a files directory on a disk: the task stops with the reason, nothing is written"
it_stop_agent
DISK=$WORK/disk
it_start_agent --mode embedded --files-dir "$DISK" --drift-interval 1s
T=$(run_task frozen)
must_reach "$T" STOPPED
R=$(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$T" --query 'tasks[0].stoppedReason' \
  --output text)
grep -q "^ResourceInitializationError: .*not on tmpfs or ramfs" <<<"$R" || fail "stoppedReason: $R"
[[ -z $(ls -A "$DISK" 2>/dev/null) ]] || fail "something was written on the disk: $(find "$DISK")"
it_stop_agent
it_start_agent --mode embedded --files-dir "$FILES" --drift-interval 1s

say "refresh: a reader loops on the file while the parameter is rotated"
cat >"$WORK/refresh.json" <<JSON
[{"name":"app","image":"$IMAGE","stopTimeout":1,"entryPoint":["/bin/sh","-c"],
  "command":["n=0; while :; do v=\$(cat /run/secrets/db); n=\$((n+1)); case \"\$v\" in old-*) ;; new-*) echo \"saw-new after \$n reads\"; break;; *) echo \"bad read \$n: \${#v} bytes\";; esac; [ \${#v} -eq $((${#V1})) ] || echo \"bad length \${#v} at read \$n\"; done; while :; do cat /run/secrets/db >/dev/null || echo bad-late; sleep 0.05; done"],
  "secrets":[{"name":"DB","valueFrom":"/sf/db"},{"name":"ENVV","valueFrom":"/sf/env"}],
  "dockerLabels":{"ecs-secrets.file.DB":"/run/secrets/db","ecs-secrets.file-policy.DB":"refresh"}}]
JSON
aws ecs register-task-definition --family refresh --network-mode none --execution-role-arn "$ROLE" \
  --container-definitions "file://$WORK/refresh.json" >/dev/null
T=$(run_task refresh)
must_reach "$T" RUNNING
CID=$(cid_of "$T")
TID=${T##*/}
eq "$(docker exec "$CID" cat /run/secrets/db)" "$V1" "the refresh file's first value"
eq "$(docker exec "$CID" stat -L -c '%a %u' /run/secrets/db)" "400 0" "the default mode and owner"
eq "$(docker exec "$CID" readlink /run/secrets/db)" "..data/db" "the atomic writer's link"
eq "$(stat -f -c %T "$FILES/$TID/c0/r0")" tmpfs "the refresh directory's file system"
FIRST_VER=$(docker exec "$CID" readlink /run/secrets/..data)
sleep 1.5 # a drift round or two with nothing to do: the reader keeps reading the old value
V2="new-${V1#old-}"
aws ssm put-parameter --name /sf/db --type SecureString --value "$V2" --overwrite >/dev/null
wait_container_log "$CID" 120 0.25 saw-new ||
  fail "the reader never saw the new value: $(docker logs "$CID" 2>&1 | tail -5)"
LOGS=$(docker logs "$CID" 2>&1)
if grep -q bad <<<"$LOGS"; then fail "the reader saw a partial or empty value: $(grep bad <<<"$LOGS" | head -5)"; fi
say "the reader: $(grep saw-new <<<"$LOGS")"
eq "$(docker exec "$CID" cat /run/secrets/db)" "$V2" "the file after the rotation"
[[ $(docker exec "$CID" readlink /run/secrets/..data) != "$FIRST_VER" ]] || fail "..data did not move"
eq "$(docker exec "$CID" sh -c 'ls -a /run/secrets | grep -c "^\.\.[0-9]"')" 1 \
  "one version directory left (the old one removed)"
eq "$(docker exec "$CID" sh -c 'echo "$ENVV"')" "$VE" "the env secret keeps its value"
for ((i = 0; i < 40; i++)); do
  [[ $(current "$T" DB) == true ]] && break
  sleep 0.25
done
eq "$(current "$T" DB)" true "describe-tasks: DB is current after the refresh"
RAW=$(it_aws --debug ecs describe-tasks --cluster "$CLUSTER" --tasks "$T" 2>&1 >/dev/null |
  grep -o "\"name\": *\"DB\",[^}]*" | head -1)
grep -q '"version": *"2"' <<<"$RAW" || fail "describe-tasks does not record version 2: $RAW"
sleep 2 # more drift rounds: still current, and the reader still fine
eq "$(current "$T" DB)" true "DB stays current"
if docker logs "$CID" 2>&1 | grep -q bad; then fail "a late read failed"; fi
aws ecs stop-task --cluster "$CLUSTER" --task "$T" >/dev/null
must_reach "$T" STOPPED
if [[ -e $FILES/$TID ]]; then fail "the refresh task's files are still there: $(find "$FILES/$TID")"; fi
if grep -rqF "$V2" "$LOG" "$ANSWERS"; then fail "the new value reached the log or an answer"; fi
if grep -rqF -e "$V1" -e "$VE" "$LOG" "$ANSWERS"; then fail "a value reached the log or an answer"; fi
say "ok"

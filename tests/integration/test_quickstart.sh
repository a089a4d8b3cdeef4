#!/usr/bin/env bash
# README's first command, as a new user runs it: scripts/run.sh builds (here: finds this test
# build up to date), picks the Docker engine ($DOCKER_HOST: the test engine), and runs the
# daemon in the foreground on its embedded default. The lines it prints are enough to use the
# aws CLI against it; a task with a secret runs; Ctrl-C (SIGINT) stops it with status 0.
set -euo pipefail
: "${ES_SOURCE_DIR:?}" "${ES_BUILD_DIR:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir quickstart --no-state
LOG=$WORK/run.log
IT_TASK_SLEEP=0.25
it_aws_env # the credentials file is taken from the daemon's own words below
it_endpoint

# a DOCKER_HOST that does not answer is refused with a clear message, before the daemon runs
if DOCKER_HOST=unix://$WORK/nothing.sock ES_RUN_BUILD_DIR=$ES_BUILD_DIR \
  "$ES_SOURCE_DIR/scripts/run.sh" --state-dir "$STATE" >"$LOG" 2>&1; then
  fail "run.sh accepted a DOCKER_HOST with no engine"
fi
grep -F "DOCKER_HOST=unix://$WORK/nothing.sock does not answer" "$LOG" >/dev/null ||
  fail "no clear message for a dead DOCKER_HOST"

DOCKER_HOST=$ES_TEST_DOCKER_HOST ES_RUN_BUILD_DIR=$ES_BUILD_DIR \
  "$ES_SOURCE_DIR/scripts/run.sh" --state-dir "$STATE" --listen "127.0.0.1:$PORT" >"$LOG" 2>&1 &
PID=$!
it_wait_ready 1 600 run.sh # the build step may have to relink
grep -F "run: using the Docker engine at DOCKER_HOST=$ES_TEST_DOCKER_HOST" "$LOG" >/dev/null ||
  fail "run.sh did not say which engine it uses"

# the daemon prints how to reach it; take the credentials file from its own words
CREDS=$(grep -oE "AWS_SHARED_CREDENTIALS_FILE=[^ ]+" "$LOG" | head -n 1 | cut -d= -f2)
[[ $CREDS == "$STATE/aws-credentials" ]] || fail "credentials line: '$CREDS'"
export AWS_SHARED_CREDENTIALS_FILE=$CREDS AWS_CONFIG_FILE=$STATE/aws-config

aws ssm put-parameter --name /quick/db --type SecureString --value quick-start-value >/dev/null
create_exec_role qexec
aws iam put-role-policy --role-name qexec --policy-name q --policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:GetParameters","Resource":"arn:aws:ssm:us-east-1:123456789012:parameter/quick/*"}]}'
aws ecs register-task-definition --family quick --network-mode none \
  --execution-role-arn arn:aws:iam::123456789012:role/qexec --container-definitions \
  '[{"name":"c","image":"local/busybox:latest","stopTimeout":1,"command":["sh","-c","echo DB=$DB; sleep 60"],"secrets":[{"name":"DB","valueFrom":"/quick/db"}]}]' >/dev/null
T=$(aws ecs run-task --task-definition quick --query 'tasks[0].taskArn' --output text)
s=$(wait_status "$T" RUNNING STOPPED)
[[ $s == RUNNING ]] || fail "task $s: $(aws ecs describe-tasks --tasks "$T" --query 'tasks[0].stoppedReason' --output text)"
C=$(aws ecs describe-tasks --tasks "$T" --query 'tasks[0].containers[0].runtimeId' --output text)
wait_container_log "$C" 40 0.25 -F DB= || true
out=$(docker -H "$ES_TEST_DOCKER_HOST" logs "$C" 2>&1)
[[ $out == "DB=quick-start-value" ]] || fail "container printed '$out'"
aws ecs stop-task --task "$T" >/dev/null

# Ctrl-C: the daemon stops cleanly (status 0) and says so
kill -INT "$PID"
rc=0
wait "$PID" || rc=$?
PID=
[[ $rc == 0 ]] || fail "the daemon exited with $rc after SIGINT"
grep -F "SIGINT received, stopping" "$LOG" >/dev/null || fail "no stop line"
if grep -F "quick-start-value" "$LOG" >/dev/null; then fail "the value reached the log"; fi
docker -H "$ES_TEST_DOCKER_HOST" rm -f "$C" >/dev/null 2>&1 || true
echo "PASS: scripts/run.sh runs the daemon, a task gets its secret, SIGINT stops it with 0"

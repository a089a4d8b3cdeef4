#!/usr/bin/env bash
# A full disk (issue 17): the state directory on a small tmpfs, filled up while the agent runs.
# The daemon stays up; reads keep working (the embedded SSM and Secrets Manager, the ECS API's
# descriptions); every write fails with a 5xx that says why (SQLite's "database or disk is
# full"), and the log holds exactly one line per failed write. A restart on the full disk
# starts (nothing is rewritten that did not change), and once space is back writes succeed.
#
# Needs root (mount). Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir diskfull --no-state
IT_FAIL_HEADER="---- agent log ----"
CLUSTER=diskfull-$$
mkdir -m 700 "$STATE"
mount -t tmpfs -o size=16m,mode=700 tmpfs "$STATE" || fail "cannot mount a tmpfs (run as root)"
it_cleanup_hook() { umount "$STATE" 2>/dev/null || true; }
it_endpoint
it_aws_env "$STATE" 1

say "starting the agent on a 16 MiB state directory"
it_start_agent --mode embedded --region us-east-2 --cluster "$CLUSTER"
aws ssm put-parameter --name /full/before --type SecureString --value "v-$RANDOM" >/dev/null
aws secretsmanager create-secret --name full-before --secret-string "s-$RANDOM" >/dev/null
cat >"$WORK/td.json" <<'JSON'
{"family": "full", "networkMode": "none",
 "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "command": ["true"]}]}
JSON
aws ecs register-task-definition --cli-input-json "file://$WORK/td.json" >/dev/null

say "filling the disk"
dd if=/dev/zero of="$STATE/filler" bs=64k 2>/dev/null || true
avail=$(df --output=avail -k "$STATE" | tail -1 | tr -d ' ')
eq "$avail" 0 "free space on the state directory"

say "reads keep working"
aws ssm get-parameter --name /full/before --with-decryption --query Parameter.Name --output text |
  grep -qx /full/before || fail "get-parameter on a full disk"
aws secretsmanager describe-secret --secret-id full-before >/dev/null || fail "describe-secret on a full disk"
aws ecs describe-task-definition --task-definition full >/dev/null || fail "describe-task-definition on a full disk"

say "writes fail with the reason, one log line each"
before=$(grep -c 'embedded store: .* failed' "$LOG" || true)
big=$(head -c 3000 /dev/zero | tr '\0' x)
for i in 1 2 3; do
  expect_error InternalServerError "database or disk is full" \
    ssm put-parameter --name "/full/after-$i" --type String --value "$big"
done
after=$(grep -c 'embedded store: AmazonSSM.PutParameter failed: database or disk is full (SQLITE_FULL' "$LOG" || true)
eq "$((after - before))" 3 "log lines for 3 failed writes"
grep 'embedded store: ' "$LOG" | grep -q "$big" && fail "a value in the log"
say "logged: $(grep -m1 'embedded store: ' "$LOG")"
# the ECS API's store is on the same disk
out=$(it_aws --output json ecs register-task-definition --cli-input-json "file://$WORK/td.json" 2>&1) &&
  fail "a task definition registered on a full disk: $out"
grep -q "ServerException" <<<"$out" || fail "register-task-definition: wanted ServerException: $out"
grep -qi "full" <<<"$out" || fail "register-task-definition: the reason is not named: $out"
say "ECS answered: $out"
kill -0 "$PID" || fail "the agent died on a full disk"
curl -fsS "$URL/metrics" >/dev/null || fail "/metrics on a full disk"

say "a restart on the full disk"
it_stop_agent
it_start_agent --mode embedded --region us-east-2 --cluster "$CLUSTER"
aws ssm get-parameter --name /full/before --with-decryption >/dev/null || fail "get-parameter after the restart"

say "space back: writes succeed"
rm -f "$STATE/filler"
aws ssm put-parameter --name /full/after --type String --value ok >/dev/null
eq "$(aws ssm get-parameter --name /full/after --query Parameter.Value --output text)" ok "written after the disk was freed"
aws ecs register-task-definition --cli-input-json "file://$WORK/td.json" >/dev/null
it_stop_agent
say "ok"

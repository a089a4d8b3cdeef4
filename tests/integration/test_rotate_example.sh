#!/usr/bin/env bash
# Issue 21, the experiment side by side: examples/rotation/rotate.sh --strategy all against a
# fresh agent (embedded mode, drift every second, secret files on a tmpfs of the test's own,
# the container endpoint on loopback), with the real aws and docker CLIs:
# - each of env, file-refresh, redeploy and runtime prints its summary with every one of its
#   3 consumers current, the restarts the strategy implies (3 new tasks for env and redeploy,
#   none for file-refresh and runtime) and where the value lives;
# - the script leaves no service and no running task behind;
# - no value reaches the agent's log nor the script's output (the script's values are
#   v1-/v2- and 16 random hex digits: the pattern is searched for).
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST, ES_SOURCE_DIR.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
SRC=${ES_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
it_workdir rotate-example
CLUSTER=rotate # its containers are removed on exit
IT_FAIL_LINES=60
it_endpoint
it_aws_env "$STATE"

MEM=$WORK/mem
mkdir "$MEM"
mount -t tmpfs -o size=4m,mode=0700 tmpfs "$MEM" || fail "cannot mount a tmpfs on $MEM"
it_cleanup_hook() { umount -l "$MEM" 2>/dev/null || true; }

it_start_agent --mode embedded --cluster $CLUSTER --drift-interval 1 --files-dir "$MEM/files" \
  --task-endpoint 127.0.0.1:0 --log-level info

OUT=$WORK/rotate.out
rc=0
say "rotate.sh --strategy all"
AWS_CLI=$IT_AWS_BIN DOCKER_HOST=$ES_TEST_DOCKER_HOST ENDPOINT=$URL CLUSTER=$CLUSTER MIN_INTERVAL=5 WAIT=120 \
  "$SRC/examples/rotation/rotate.sh" --strategy all >"$OUT" 2>&1 || rc=$?
cat "$OUT"
eq "$rc" 0 "rotate.sh --strategy all's exit status"

summary() { grep "^SUMMARY strategy=$1 " "$OUT" | tail -1; }
for s in env file-refresh redeploy runtime; do
  line=$(summary $s)
  [[ -n $line ]] || fail "no summary for $s"
  [[ $line == *" consumers_current=3/3 seconds="[0-9]* ]] || fail "$s: not every consumer current: $line"
  case $s in
  env | redeploy) want_restarts=3 want_where="Env in Docker's config" ;;
  file-refresh) want_restarts=0 want_where="tmpfs file" ;;
  runtime) want_restarts=0 want_where="process memory" ;;
  esac
  [[ $line == *" restarts=$want_restarts "* ]] || fail "$s: restarts, want $want_restarts: $line"
  [[ $line == *"value_in=\"$want_where"* ]] || fail "$s: where the value lives, want $want_where: $line"
done
# what each strategy costs the backends, as /metrics counted it
[[ $(summary env) == *" ssm=3 "* ]] || fail "env: 3 GetParameters (one per new task): $(summary env)"
[[ $(summary file-refresh) == *" ssm=3 "* ]] || fail "file-refresh: 3 GetParameters (one refresh per task): $(summary file-refresh)"
[[ $(summary runtime) == *" ssm=0 "* ]] || fail "runtime: no GetParameters by the agent: $(summary runtime)"
grep -qE "^ *\+[0-9.]+ s  \(service rotate-redeploy\) has started a new deployment .*ecs-secrets:redeploy-on-rotation" "$OUT" ||
  fail "redeploy: no automatic deployment in its timeline"

say "nothing left behind"
eq "$(aws ecs list-services --cluster $CLUSTER --query 'length(serviceArns)')" 0 "services left"
eq "$(aws ecs list-tasks --cluster $CLUSTER --query 'length(taskArns)')" 0 "running tasks left"

say "no value in the agent's log"
if grep -qE 'v[12]-[0-9a-f]{16}' "$LOG"; then fail "a value in the agent's log: $(grep -E 'v[12]-[0-9a-f]{16}' "$LOG" | head -3)"; fi
if grep -qE 'v[12]-[0-9a-f]{16}' "$OUT"; then fail "a value in the script's output"; fi
say "ok"

#!/usr/bin/env bash
# README's walkthrough "by hand" block, run as written against a running daemon with the real
# aws CLI and docker (issue 24: the walkthrough can be followed command by command, with no
# placeholder to guess). The shell set-up it relies on is README's own: the lines of "The
# embedded endpoints" block up to its aws() function. Only the state directory, the
# listener's port and the engine are replaced by this test's own.
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST, ES_SOURCE_DIR.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}" "${ES_SOURCE_DIR:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir readmewalk
it_endpoint
CLUSTER=default
it_start_agent

# block N (```sh) after heading H, whole or up to the first line matching STOP
block() { # HEADING STOP
  awk -v h="$1" -v stop="$2" '$0 == h { in_section = 1 }
             in_section && /^```sh$/ { grab = 1; next }
             grab && /^```$/ { exit }
             grab { print; if (stop != "" && $0 ~ stop) exit }' "$ES_SOURCE_DIR/README.md"
}
setup=$(block "## The embedded endpoints" '^aws\(\) \{')
walk=$(awk '/^\*\*By hand\*\*/ { in_section = 1 }
            in_section && /^```sh$/ { grab = 1; next }
            grab && /^```$/ { exit }
            grab { print }' "$ES_SOURCE_DIR/README.md")
grep -q '^aws() {' <<<"$setup" || fail "README's set-up block was not found: $setup"
[[ $(wc -l <<<"$walk") -ge 20 ]] || fail "README's walkthrough block was not found: $walk"
script="$setup"$'\n'"$walk"
script=${script//\/var\/lib\/ecs-secrets-agent-docker\/docker.sock/${ES_TEST_DOCKER_HOST#unix://}}
script=${script//\/var\/lib\/ecs-secrets-agent\//$STATE/}
script=${script//127.0.0.1:4577/127.0.0.1:$PORT}
script=${script//\/tmp\/seed-/$WORK\/seed-}
out=$(cd "$ES_SOURCE_DIR" && env -u AWS_PROFILE -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
  bash -euo pipefail -c "$script" 2>&1) || fail "README's walkthrough failed: $out"
while IFS= read -r line; do echo "  readme: $line"; done <<<"$out"
grep -q '^arn:aws:ecs:.*:task-definition/seed-walkthrough:1$' <<<"$out" || fail "no task definition registered"
grep -q '^ResourceInitializationError: unable to pull secrets or registry auth: the execution role .* is missing 3 permissions' <<<"$out" ||
  fail "the refusal without the inline policy"
[[ $(grep -c '^DATABASE_PASSWORD=MyFirstParameter$' <<<"$out") -eq 2 ]] ||
  fail "the first task's value, before and after the rotation"
[[ $(grep -c '^DATABASE_PASSWORD=MySecondParameter$' <<<"$out") -eq 1 ]] || fail "the new task's value"
[[ $(grep -c '^STOPPED$' <<<"$out") -eq 2 ]] || fail "the two stops"
grep -q 'MyFirstParameter\|MySecondParameter\|0123-splunk-token' "$LOG" && fail "a value in the agent's log"
say "PASS: README's walkthrough ran as written"

#!/usr/bin/env bash
# README's "The embedded endpoints" shell block, run as written against a running daemon with
# the real aws CLI and docker: only the state directory, the listener's port and the engine
# are replaced by this test's own (issue 24: README's walkthrough runs as written, with no
# placeholder to guess).
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST, ES_SOURCE_DIR.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}" "${ES_SOURCE_DIR:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir readme
it_endpoint
it_start_agent

# the first ```sh block after the heading
block=$(awk '/^## The embedded endpoints/ { in_section = 1 }
             in_section && /^```sh$/ { grab = 1; next }
             grab && /^```$/ { exit }
             grab { print }' "$ES_SOURCE_DIR/README.md")
[[ $(wc -l <<<"$block") -ge 8 ]] || fail "README's block was not found: $block"
grep -qF 'AWS_PAGER=' <<<"$block" || fail "README's block does not set AWS_PAGER"
grep -qF 'DOCKER_HOST=' <<<"$block" || fail "README's block does not set DOCKER_HOST"
! grep -qE '\b(KEY_ID|ACCOUNT|REGION)\b' <<<"$block" || fail "a placeholder is left in README's block"
script=$block
script=${script//\/var\/lib\/ecs-secrets-agent-docker\/docker.sock/${ES_TEST_DOCKER_HOST#unix://}}
script=${script//\/var\/lib\/ecs-secrets-agent\//$STATE/}
script=${script//127.0.0.1:4577/127.0.0.1:$PORT}
out=$(env -u AWS_PROFILE -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY bash -euo pipefail -c "$script" 2>&1) ||
  fail "README's block failed: $out"
grep -qx 'MyFirstParameter' <<<"$out" || fail "the parameter's value was not printed: $out"
grep -q '^CONTAINER ID' <<<"$out" || fail "docker ps did not answer: $out"
while IFS= read -r line; do echo "  readme: $line"; done <<<"$out"
say "PASS: README's block ran as written"

#!/usr/bin/env bash
# The rotation example (examples/rotation/rotate.sh) through the real aws CLI with --store
# ssm, secretsmanager and json-key, against an agent whose drift check runs every 2 s: after
# the rotation the 3 running tasks still print v1 (docker logs) and drift says so; after the
# forced deployment 3 new tasks print v2, the old ones are STOPPED, drift says all are
# current; the timeline's five steps are in order. No value reaches the log. (Split from
# test_services_cli.sh, whose second half it was: the two run in different lanes.)
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST, ES_SOURCE_DIR.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
SRC=${ES_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir svc-rotate
CLUSTER=svcrot # its containers are removed on exit
IT_FAIL_LINES=30
it_endpoint
it_aws_env "$STATE" 1

it_start_agent --mode embedded --region us-east-1 --cluster svcrot --drift-interval 2 --log-level info

# The rotation example, once per store: its output is the experiment's record.
section() { # FILE FROM TO: the lines after the first line starting with FROM, up to one starting with TO
  awk -v a="$2" -v b="$3" 'on && index($0, b) == 1 { exit } on { print } index($0, a) == 1 { on = 1 }' "$1"
}
count() { grep -cE -- "$2" <<<"$1" || true; }
for store in ssm secretsmanager json-key; do
  echo "the rotation example, --store $store"
  out=$WORK/example-$store.out
  rc=0
  AWS_CLI=$IT_AWS_BIN DOCKER_HOST=$ES_TEST_DOCKER_HOST ENDPOINT=$URL CLUSTER=svcrot "$SRC/examples/rotation/rotate.sh" --store "$store" \
    >"$out" 2>&1 || rc=$?
  cat "$out"
  eq "$rc" 0 "rotate.sh --store $store"
  case $store in
  ssm) vf='/demo/db_password' ;;
  secretsmanager) vf='arn:aws:secretsmanager:us-east-1:123456789012:secret:demo/db_password-[A-Za-z0-9]{6}' ;;
  json-key) vf='arn:aws:secretsmanager:us-east-1:123456789012:secret:demo/db_credentials-[A-Za-z0-9]{6}:password::' ;;
  esac
  grep -qE "^\(service web\) 3 tasks hold a rotated value of $vf\$" "$out" || fail "$store: no drift event for $vf"
  # after the rotation the running tasks still print v1
  sec=$(section "$out" "== rotate to" "== update-service")
  eq "$(count "$sec" '^  task [0-9a-f]{32} RUNNING .* prints: [0-9:]{8} DB_PASSWORD=v1-of-db-password$')" 3 "$store: 3 tasks still print v1"
  eq "$(count "$sec" 'v2-of-db-password')" 0 "$store: no task prints v2 before the deployment"
  # after the deployment: 3 new tasks print v2, the 3 old ones stopped (their logs: v1)
  sec=$(section "$out" "new tasks:" "old tasks:")
  eq "$(count "$sec" '^  task [0-9a-f]{32} RUNNING .* prints: [0-9:]{8} DB_PASSWORD=v2-of-db-password$')" 3 "$store: 3 new tasks print v2"
  sec=$(section "$out" "old tasks:" "==")
  eq "$(count "$sec" '^  task [0-9a-f]{32} STOPPED .* prints: [0-9:]{8} DB_PASSWORD=v1-of-db-password$')" 3 "$store: the 3 old tasks stopped"
  grep -qxF "(service web) all 3 tasks hold current secret values." "$out" || fail "$store: no all-current event"
  grep -qxF "staleTasks: 0" "$out" || fail "$store: drift not cleared after the deployment"
  # the timeline: five steps in order, detection within a few drift intervals
  mapfile -t t < <(section "$out" "== timeline" "  detection took" | grep -oE '^  \+ *[0-9.-]+' | tr -d ' +')
  eq "${#t[@]}" 5 "$store: five timeline steps"
  awk -v a="${t[0]}" -v b="${t[1]}" -v c="${t[2]}" -v d="${t[3]}" -v e="${t[4]}" \
    'BEGIN { exit !(a == 0 && a <= b && b <= c && c <= d && d <= e && b < 10) }' ||
    fail "$store: the timeline is out of order: ${t[*]}"
done
grep -qF -- "-of-db-password" "$LOG" && fail "a value reached the log"
echo OK

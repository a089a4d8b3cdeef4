#!/usr/bin/env bash
# Issue 23: task definitions shared through etcd. Two agents (then a third) in one cluster on a
# three-member etcd cluster on loopback (cluster_lib.sh), with the real aws CLI and boto3:
#   - a definition with secrets (an SSM SecureString and a Secrets Manager secret of agent 1's
#     embedded store, by ARN) registered through agent 1 is described and listed through
#     agent 2, the same containers and the same valueFrom references;
#   - 40 registrations of one family through agent 1 and 40 through agent 2 at once (boto3,
#     8 threads each): the answers' revisions are 1..80, each once; etcd holds exactly the keys
#     of revisions 1..80; both agents list 1..80;
#   - a revision deregistered through agent 2 is INACTIVE on agent 1;
#   - a third agent started afterwards reads all of it (pages of 64 keys) and lists 1..80;
#   - every key and value in etcd is read: no secret value (nor the environment's) is there.
# No container is run.
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir cluster-taskdefs --no-state
it_aws_env

CLUSTER=itest-td-$$
TTL=5
SSM_VALUE="td-ssm-value-$RANDOM$RANDOM"
SM_VALUE="td-sm-value-$RANDOM$RANDOM"
RACE=80
# shellcheck source=SCRIPTDIR/cluster_lib.sh
. "$(dirname "$0")/cluster_lib.sh"
cl_start_etcd
TD_PREFIX=/ecs-secrets/clusters/$CLUSTER/taskdefs/

revisions_on() { # revisions_on I FAMILY [STATUS]: agent I's revisions of FAMILY, one a line, sorted
  awsn "$1" ecs list-task-definitions --family-prefix "$2" --status "${3:-ACTIVE}" |
    jq -r '.taskDefinitionArns[] | sub(".*:"; "")' | sort -n
}
revisions_fast() { # revisions_fast I FAMILY: agent I's ACTIVE revisions through apin (for polls)
  local tok='' page
  while :; do
    page=$(apin "$1" ListTaskDefinitions "$(jq -cn --arg f "$2" --arg t "$tok" '{familyPrefix: $f,
      status: "ACTIVE"} + (if $t == "" then {} else {nextToken: $t} end)')") || break
    jq -r '.taskDefinitionArns[] | sub(".*:"; "")' <<<"$page"
    tok=$(jq -r '.nextToken // ""' <<<"$page")
    [[ -n $tok ]] || break
  done | sort -n
}
wait_revisions() { # wait_revisions I FAMILY N: polls until agent I lists N revisions of FAMILY
  # (apin, then the real CLI confirms it)
  local t
  for ((t = 0; t < 60; t++)); do
    [[ $(revisions_fast "$1" "$2" | grep -c .) -eq $3 && $(revisions_on "$1" "$2" | grep -c .) -eq $3 ]] &&
      return 0
    sleep 0.5
  done
  fail "agent $1 lists $(revisions_on "$1" "$2" | grep -c .) revisions of $2, not $3"
}

say "starting two agents in cluster $CLUSTER"
for i in 1 2; do start_agent_n "$i"; done

say "secrets in agent 1's embedded store, a definition referencing them through agent 1"
ssm_arn=$(awsn 1 ssm put-parameter --name /itest/td/db --type SecureString --value "$SSM_VALUE" \
  >/dev/null && awsn 1 ssm get-parameter --name /itest/td/db | jq -r .Parameter.ARN)
sm_arn=$(awsn 1 secretsmanager create-secret --name itest-td-api --secret-string "$SM_VALUE" |
  jq -r .ARN)
cat >"$WORK/web.json" <<EOF
{"family": "web", "cpu": "256", "memory": "512",
 "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
 "containerDefinitions": [{"name": "app", "image": "busybox:latest", "essential": true,
   "environment": [{"name": "MODE", "value": "plain-env-$CLUSTER"}],
   "secrets": [{"name": "DB", "valueFrom": "$ssm_arn"}, {"name": "API", "valueFrom": "$sm_arn"}]}],
 "tags": [{"key": "team", "value": "itest"}]}
EOF
OUT=$(awsn 1 ecs register-task-definition --cli-input-json "file://$WORK/web.json")
eq "$(jq -r .taskDefinition.revision <<<"$OUT")" 1 "web's first revision"
wait_revisions 2 web 1
D1=$(awsn 1 ecs describe-task-definition --task-definition web:1 --include TAGS)
D2=$(awsn 2 ecs describe-task-definition --task-definition web:1 --include TAGS)
eq "$(jq -cS '.taskDefinition.containerDefinitions' <<<"$D2")" \
  "$(jq -cS '.taskDefinition.containerDefinitions' <<<"$D1")" "web:1's containers on agent 2"
eq "$(jq -r '.taskDefinition.containerDefinitions[0].secrets[] | .valueFrom' <<<"$D2" | sort)" \
  "$(printf '%s\n' "$ssm_arn" "$sm_arn" | sort)" "the references agent 2 describes"
eq "$(jq -r '.taskDefinition.registeredAt' <<<"$D2")" "$(jq -r '.taskDefinition.registeredAt' <<<"$D1")" \
  "registeredAt on both"
eq "$(jq -r '.tags[0].key + "=" + .tags[0].value' <<<"$D2")" team=itest "the tags on agent 2"
eq "$(ctl get "${TD_PREFIX}web/0000000001" --keys-only | grep -c .)" 1 "web:1's key in etcd"
# the next one through agent 2: revision 2, seen by agent 1
OUT=$(awsn 2 ecs register-task-definition --cli-input-json "file://$WORK/web.json")
eq "$(jq -r .taskDefinition.revision <<<"$OUT")" 2 "web's second revision (through agent 2)"
wait_revisions 1 web 2

say "$RACE registrations of one family through two agents at once"
/usr/bin/python3 - "$RACE" "${APORT[1]}" "${ASTATE[1]}" "${APORT[2]}" "${ASTATE[2]}" \
  >"$WORK/race.txt" <<'PYEOF' || fail "the concurrent registrations"
import configparser, sys, threading
import boto3
from botocore.config import Config

n = int(sys.argv[1])
agents = [(sys.argv[2], sys.argv[3]), (sys.argv[4], sys.argv[5])]
results, errors, lock = [], [], threading.Lock()

def client(port, state):
    c = configparser.ConfigParser()
    c.read(state + "/aws-credentials")
    p = c["ecs-secrets-agent"]
    return boto3.client("ecs", region_name="us-east-2", endpoint_url="http://127.0.0.1:" + port,
                        aws_access_key_id=p["aws_access_key_id"],
                        aws_secret_access_key=p["aws_secret_access_key"],
                        config=Config(retries={"max_attempts": 1}, read_timeout=60))

def worker(ecs, count):
    for _ in range(count):
        try:
            r = ecs.register_task_definition(family="race", containerDefinitions=[
                {"name": "c", "image": "busybox:latest", "memory": 64, "essential": True}])
            with lock:
                results.append(r["taskDefinition"]["revision"])
        except Exception as e:  # noqa: BLE001 - every failure is reported
            with lock:
                errors.append(repr(e))

# clients made here, one a thread: making them is not thread-safe in boto3
threads = [threading.Thread(target=worker, args=(client(port, state), n // 2 // 8))
           for port, state in agents for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for e in errors:
    print("error", e, file=sys.stderr)
print("\n".join(str(r) for r in sorted(results)))
sys.exit(1 if errors else 0)
PYEOF
eq "$(grep -c . "$WORK/race.txt")" "$RACE" "registrations answered"
eq "$(cat "$WORK/race.txt")" "$(seq 1 "$RACE")" "the answers' revisions: 1..$RACE, each once"
eq "$(ctl get --prefix "${TD_PREFIX}race/" --keys-only | grep . | sed 's|.*/||' | sed 's/^0*//' | sort -n)" \
  "$(seq 1 "$RACE")" "the revisions in etcd"
conflicts=0
for i in 1 2; do
  c=$(curl -sf "http://127.0.0.1:${APORT[$i]}/metrics" |
    sed -nE 's/^ecs_agent_cluster_taskdefs_conflicts_total ([0-9]+)$/\1/p')
  conflicts=$((conflicts + ${c:-0}))
done
say "the transactions met $conflicts revisions taken by the other agent's (or their own) registrations"
((conflicts > 0)) || fail "no registration met another: the two agents did not race"
for i in 1 2; do
  wait_revisions "$i" race "$RACE"
  eq "$(revisions_on "$i" race)" "$(seq 1 "$RACE")" "agent $i's revisions of race"
done

say "deregistered through agent 2, INACTIVE on agent 1"
OUT=$(awsn 2 ecs deregister-task-definition --task-definition race:3)
eq "$(jq -r .taskDefinition.status <<<"$OUT")" INACTIVE "the deregistration's answer"
for ((t = 0; t < 40; t++)); do
  [[ $(apin 1 DescribeTaskDefinition '{"taskDefinition":"race:3"}' | jq -r .taskDefinition.status) == INACTIVE ]] &&
    break
  sleep 0.5
done
s=$(awsn 1 ecs describe-task-definition --task-definition race:3 | jq -r .taskDefinition.status)
eq "$s" INACTIVE "race:3 on agent 1"
eq "$(revisions_on 1 race INACTIVE)" 3 "agent 1's INACTIVE revisions of race"
# deregistering again through agent 1 answers INACTIVE without another write
OUT=$(awsn 1 ecs deregister-task-definition --task-definition race:3)
eq "$(jq -r .taskDefinition.status <<<"$OUT")" INACTIVE "a second deregistration"

say "a third agent joins later and reads every revision (pages of 64)"
start_agent_n 3
wait_revisions 3 race $((RACE - 1))
eq "$(revisions_on 3 race INACTIVE)" 3 "agent 3's INACTIVE revisions of race"
eq "$(revisions_on 3 web)" "$(printf '1\n2')" "agent 3's revisions of web"
grep -q "task definition revisions read at etcd revision" "${ALOG[3]}" ||
  fail "agent 3 did not log its read of the task definitions"
OUT=$(awsn 3 ecs register-task-definition --cli-input-json "file://$WORK/web.json")
eq "$(jq -r .taskDefinition.revision <<<"$OUT")" 3 "web's third revision (through agent 3)"

say "every key and value in etcd: no secret value"
ctl get --prefix "" -w json >"$WORK/etcd-dump.json"
jq -r '.kvs[]? | (.key | @base64d), (.value | @base64d)' "$WORK/etcd-dump.json" >"$WORK/etcd-plain.txt"
grep -qF "$ssm_arn" "$WORK/etcd-plain.txt" || fail "the SSM reference is not in etcd (the scan reads nothing?)"
for v in "$SSM_VALUE" "$SM_VALUE"; do
  if grep -qF "$v" "$WORK/etcd-plain.txt" "$WORK/etcd-dump.json"; then fail "a secret value is in etcd"; fi
done
while read -r k; do
  [[ $k == /ecs-secrets/clusters/$CLUSTER/* ]] || fail "a key outside the layout: $k"
done < <(jq -r '.kvs[]?.key | @base64d' "$WORK/etcd-dump.json")
for i in 1 2 3; do
  for v in "$SSM_VALUE" "$SM_VALUE"; do
    if grep -qF "$v" "${ALOG[$i]}"; then fail "a secret value is in agent $i's log"; fi
  done
done

say "the agents stop; the task definitions stay in etcd (no lease)"
for i in 1 2 3; do
  kill -TERM "${APID[$i]}"
  wait "${APID[$i]}" || fail "agent $i exited with $? on SIGTERM"
  APID[i]=
done
eq "$(ctl get --prefix "$TD_PREFIX" --keys-only | grep -c .)" $((RACE + 3)) "task definitions left in etcd"
say "ok"

#!/usr/bin/env bash
# Issue 23, first slice: three agents join one cluster through a three-member etcd cluster on
# loopback, and the real aws CLI against any of them sees the same container instances:
#   - list-container-instances lists 3 on every agent (and --filter in the cluster query
#     language picks by attribute); describe-container-instances shows the
#     attributes (ecs.os-type, ecs.instance-type, ecs.cpu-architecture, the custom ones of
#     ECS_INSTANCE_ATTRIBUTES) and CPU / MEMORY / PORTS / PORTS_UDP; describe-clusters counts 3;
#   - update-container-instances-state DRAINING through one agent is seen from another;
#   - a lease revoked behind an agent's back (etcdctl): the agent registers again;
#   - one etcd member SIGKILLed: the agents carry on (keepalives fail over), past several TTLs;
#   - an agent SIGKILLed: its instance goes once its lease's TTL (5 s) runs out, not before;
#   - an agent SIGTERMed: it revokes its lease and its instance goes at once;
#   - every key in etcd (etcdctl get --prefix "") is under the documented layout and holds no
#     secret value (a SecureString put into an agent's embedded store is looked for).
# No container is run: the agents only ping the test engine.
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir cluster-etcd --no-state
it_aws_env

CLUSTER=itest-etcd-$$
TTL=5
SECRET_VALUE="etcd-must-never-see-$RANDOM$RANDOM"
# shellcheck source=SCRIPTDIR/cluster_lib.sh
. "$(dirname "$0")/cluster_lib.sh"
cl_start_etcd

say "starting three agents in cluster $CLUSTER (lease TTL ${TTL}s)"
for i in 1 2 3; do start_agent_n "$i"; done
wait_count 1 3 100 >/dev/null || fail "agent 1 never listed 3 instances (lists $(count_on 1))"

say "every agent lists the same three instances"
want=$(printf '%s\n' "$(arn_of 1)" "$(arn_of 2)" "$(arn_of 3)" | sort)
for i in 1 2 3; do
  wait_count "$i" 3 50 >/dev/null || fail "agent $i lists $(count_on "$i") instances"
  got=$(awsn "$i" ecs list-container-instances --cluster "$CLUSTER" |
    jq -r '.containerInstanceArns[]' | sort)
  eq "$got" "$want" "the instances agent $i lists"
done
# pages of one
OUT=$(awsn 2 ecs list-container-instances --cluster "$CLUSTER" --max-items 1)
eq "$(jq '.containerInstanceArns | length' <<<"$OUT")" 1 "a page of one"
[[ -n $(jq -r '.NextToken // empty' <<<"$OUT") ]] || fail "no NextToken on a page of one"

say "--filter in the cluster query language"
OUT=$(awsn 3 ecs list-container-instances --cluster "$CLUSTER" --filter "attribute:agent == a2")
eq "$(jq -r '.containerInstanceArns | join(" ")' <<<"$OUT")" "$(arn_of 2)" "the instance attribute:agent == a2 names"
OUT=$(awsn 3 ecs list-container-instances --cluster "$CLUSTER" \
  --filter "attribute:stack == itest and not(attribute:agent in [a1, a3])")
eq "$(jq -r '.containerInstanceArns | join(" ")' <<<"$OUT")" "$(arn_of 2)" "a compound filter"
expect_err_n() { # expect_err_n I CODE ARGS...: aws against agent I fails with CODE
  local i=$1 code=$2 out rc=0
  shift 2
  out=$(awsn "$i" "$@" 2>&1) || rc=$?
  [[ $rc -eq 254 || $rc -eq 255 ]] || fail "aws $*: exit $rc: $out"
  grep -qF "($code)" <<<"$out" || fail "aws $*: wanted $code, got: $out"
}
expect_err_n 3 InvalidParameterException ecs list-container-instances --cluster "$CLUSTER" \
  --filter "task:group == service:web"

say "describe through another agent: attributes and resources"
OUT=$(awsn 2 ecs describe-container-instances --cluster "$CLUSTER" \
  --container-instances "$(arn_of 1)" "$(arn_of 3)" nosuchinstance)
eq "$(jq '.containerInstances | length' <<<"$OUT")" 2 "described"
eq "$(jq -r '.failures[0].reason' <<<"$OUT")" MISSING "the unknown one"
for i in 1 3; do
  ci=$(jq --arg a "$(arn_of "$i")" '.containerInstances[] | select(.containerInstanceArn == $a)' <<<"$OUT")
  attr() { jq -r --arg n "$1" '.attributes[] | select(.name == $n) | .value' <<<"$ci"; }
  eq "$(attr ecs.os-type)" linux "instance $i ecs.os-type"
  eq "$(attr ecs.instance-type)" self-managed "instance $i ecs.instance-type"
  eq "$(attr ecs.cpu-architecture)" "$(uname -m | sed 's/aarch64/arm64/')" "instance $i arch"
  eq "$(attr agent)" "a$i" "instance $i custom attribute"
  eq "$(jq -r .status <<<"$ci")" ACTIVE "instance $i status"
  eq "$(jq -r .agentConnected <<<"$ci")" true "instance $i agentConnected"
  eq "$(jq -r '[.registeredResources[].name] | join(",")' <<<"$ci")" "CPU,MEMORY,PORTS,PORTS_UDP" \
    "instance $i resources"
  eq "$(jq -r '.registeredResources[] | select(.name == "CPU") | .integerValue' <<<"$ci")" \
    "$(($(nproc) * 1024))" "instance $i CPU"
  mem=$(jq -r '.registeredResources[] | select(.name == "MEMORY") | .integerValue' <<<"$ci")
  eq "$mem" "$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024))" "instance $i MEMORY"
  eq "$(jq -r '.registeredResources[] | select(.name == "PORTS") | .stringSetValue | join(",")' <<<"$ci")" \
    "22,2375,2376,51678,51679" "instance $i reserved ports"
  [[ $(jq -r .registeredAt <<<"$ci") =~ ^20[0-9][0-9]- ]] || fail "instance $i registeredAt"
  eq "$(jq -r .versionInfo.agentVersion <<<"$ci")" "$("$ES_AGENT_BIN" --version | awk '{print $NF}')" \
    "instance $i agentVersion"
done
OUT=$(awsn 3 ecs describe-clusters --clusters "$CLUSTER")
eq "$(jq -r '.clusters[0].registeredContainerInstancesCount' <<<"$OUT")" 3 "describe-clusters count"

say "DRAINING through agent 1 is seen from agent 2"
OUT=$(awsn 1 ecs update-container-instances-state --cluster "$CLUSTER" \
  --container-instances "$(arn_of 3)" --status DRAINING)
eq "$(jq -r '.containerInstances[0].status' <<<"$OUT")" DRAINING "the update's answer"
eq "$(jq '.failures | length' <<<"$OUT")" 0 "the update's failures"
Q=$(jq -cn --arg c "$CLUSTER" --arg i "$(arn_of 3)" '{cluster: $c, containerInstances: [$i]}')
for ((t = 0; t < 25; t++)); do
  [[ $(apin 2 DescribeContainerInstances "$Q" | jq -r '.containerInstances[0].status') == DRAINING ]] && break
  sleep 0.2
done
s=$(awsn 2 ecs describe-container-instances --cluster "$CLUSTER" --container-instances "$(arn_of 3)" |
  jq -r '.containerInstances[0].status')
eq "$s" DRAINING "agent 2 sees agent 3 draining"
eq "$(count_on 3 DRAINING)" 1 "agent 3 lists itself DRAINING"
eq "$(count_on 2 ACTIVE)" 2 "ACTIVE ones"
# the stored record under the lease still (the update kept the lease)
# (-w fields: the lease as etcd wrote it; jq's doubles would round a 64-bit ID)
lease_of() { ctl get "$1" -w fields | sed -nE 's/^"Lease" : ([0-9]+)$/\1/p'; }
lease=$(lease_of "/ecs-secrets/clusters/$CLUSTER/instances/$(cat "${ASTATE[3]}/instance-id")")
[[ $lease =~ ^[0-9]+$ && $lease != 0 ]] || fail "agent 3's record lost its lease: $lease"
expect_err_n 1 InvalidParameterException ecs update-container-instances-state --cluster "$CLUSTER" \
  --container-instances "$(arn_of 3)" --status REGISTERING
expect_err_n 1 ClusterNotFoundException ecs list-container-instances --cluster other-cluster

say "a lease revoked behind agent 1's back: it registers again"
key1=/ecs-secrets/clusters/$CLUSTER/instances/$(cat "${ASTATE[1]}/instance-id")
lease=$(lease_of "$key1")
ctl lease revoke "$(printf '%x' "$lease")" >/dev/null
for ((t = 0; t < 50; t++)); do
  new=$(lease_of "$key1")
  [[ -n $new && $new != "$lease" ]] && break
  sleep 0.2
done
[[ -n $new && $new != "$lease" ]] || fail "agent 1 did not register again after its lease was revoked"
grep -q "registering again" "${ALOG[1]}" || fail "agent 1 did not log the lost lease"
wait_count 2 3 50 >/dev/null || fail "agent 2 does not list agent 1 again"

say "agent 1 DRAINING, SIGKILLed and started again within its TTL: still DRAINING"
OUT=$(awsn 2 ecs update-container-instances-state --cluster "$CLUSTER" \
  --container-instances "$(arn_of 1)" --status DRAINING)
eq "$(jq -r '.containerInstances[0].status' <<<"$OUT")" DRAINING "agent 1 drained through agent 2"
at=$(awsn 2 ecs describe-container-instances --cluster "$CLUSTER" --container-instances "$(arn_of 1)" \
  --query 'containerInstances[0].registeredAt' --output text)
before=$(lease_of "$key1")
kill -KILL "${APID[1]}"
wait "${APID[1]}" 2>/dev/null || true
start_agent_n 1
# registered again (a new lease) before its old lease ran out (the record never went)
for ((t = 0; t < 50; t++)); do
  new=$(lease_of "$key1")
  [[ -n $new && $new != "$before" ]] && break
  sleep 0.2
done
[[ -n $new && $new != "$before" ]] || fail "the restarted agent 1 did not register (lease $new)"
OUT=$(awsn 3 ecs describe-container-instances --cluster "$CLUSTER" --container-instances "$(arn_of 1)")
eq "$(jq -r '.containerInstances[0].status' <<<"$OUT")" DRAINING "agent 1's status after its restart"
eq "$(jq -r '.containerInstances[0].registeredAt' <<<"$OUT" | cut -c1-19)" "$(cut -c1-19 <<<"$at")" \
  "agent 1's registeredAt after its restart"
eq "$(count_on 1)" 3 "the restarted agent's view"
awsn 1 ecs update-container-instances-state --cluster "$CLUSTER" \
  --container-instances "$(arn_of 1)" --status ACTIVE >/dev/null

say "etcd member 1 SIGKILLed: the agents carry on"
kill -KILL "${EPID[1]}"
wait "${EPID[1]}" 2>/dev/null || true
EPID[1]=
ALL_EPS="${EURL[2]},${EURL[3]}"
# three TTLs: a keepalive that did not fail over would have lost the lease by then
sleep $((3 * TTL))
for i in 1 2 3; do
  eq "$(count_on "$i")" 3 "agent $i's instances with one etcd member down"
done
eq "$(ctl get --prefix "/ecs-secrets/clusters/$CLUSTER/instances/" --keys-only | grep -c .)" 3 \
  "records in etcd with one member down"
metrics=$(curl -sf "http://127.0.0.1:${APORT[1]}/metrics") || fail "agent 1's /metrics"
grep -qx 'ecs_agent_cluster_instances 3' <<<"$metrics" || fail "agent 1's instances gauge: $(grep cluster_ <<<"$metrics")"
grep -qx 'ecs_agent_cluster_registered 1' <<<"$metrics" || fail "agent 1's registered gauge"
failovers=$(sed -nE 's/^ecs_agent_etcd_failovers_total ([0-9]+)$/\1/p' <<<"$metrics")
[[ ${failovers:-0} -ge 1 ]] || fail "agent 1 (etcd 1 first) counted no failover: $(grep etcd_ <<<"$metrics")"
OUT=$(awsn 1 ecs update-container-instances-state --cluster "$CLUSTER" \
  --container-instances "$(arn_of 3)" --status ACTIVE)
eq "$(jq -r '.containerInstances[0].status' <<<"$OUT")" ACTIVE "an update through agent 1 (its first endpoint down)"

say "a SecureString in agent 1's embedded store, for the scan at the end"
awsn 1 ssm put-parameter --name /itest/etcd_secret --type SecureString \
  --value "$SECRET_VALUE" >/dev/null

say "agent 2 SIGKILLed: its instance goes once its lease runs out"
kill -KILL "${APID[2]}"
wait "${APID[2]}" 2>/dev/null || true
APID[2]=
killed=$SECONDS
# etcdctl, not the CLI: under load one aws call can take longer than the lease has left
eq "$(ctl get --prefix "/ecs-secrets/clusters/$CLUSTER/instances/" --keys-only | grep -c .)" 3 \
  "agent 2's record right after the kill (the lease still runs)"
secs=$(wait_count 1 2 $((TTL * 5 * 3))) || fail "agent 2's instance is still listed $((SECONDS - killed)) s after the kill"
gone=$((SECONDS - killed))
say "gone after ${gone} s (lease TTL ${TTL} s)"
((gone >= 2)) || fail "agent 2's instance went after ${gone} s: before its lease could have expired"
((gone <= TTL + 5)) || fail "agent 2's instance went after ${gone} s: well past its TTL"
: "$secs"

say "agent 3 SIGTERMed: it revokes its lease, its instance goes at once"
kill -TERM "${APID[3]}"
wait "${APID[3]}" || fail "agent 3 exited with $? on SIGTERM"
APID[3]=
# gone from etcd by the time the process has exited, not a TTL later
eq "$(ctl get "/ecs-secrets/clusters/$CLUSTER/instances/$(cat "${ASTATE[3]}/instance-id")" \
  --keys-only | grep -c . || true)" 0 "agent 3's record right after its exit"
secs=$(wait_count 1 1 10) || fail "agent 3's instance still listed 2 s after its stop"
grep -q "revoked" "${ALOG[3]}" || fail "agent 3 did not log its revoke"

say "every key in etcd: the layout, and no secret value"
ctl get --prefix "" -w json >"$WORK/etcd-dump.json"
keys=$(jq -r '.kvs[]?.key | @base64d' "$WORK/etcd-dump.json")
[[ -n $keys ]] || fail "etcd holds no key at all"
while read -r k; do
  [[ $k == /ecs-secrets/clusters/$CLUSTER/instances/* || $k == /ecs-secrets/clusters/$CLUSTER/leader ]] ||
    fail "a key outside the layout: $k"
done <<<"$keys"
jq -r '.kvs[]? | (.key | @base64d), (.value | @base64d)' "$WORK/etcd-dump.json" >"$WORK/etcd-plain.txt"
if grep -qF "$SECRET_VALUE" "$WORK/etcd-plain.txt" "$WORK/etcd-dump.json"; then
  fail "a secret value is in etcd"
fi
# and the value was there to be found: agent 1 answers it
eq "$(awsn 1 ssm get-parameter --name /itest/etcd_secret --with-decryption | jq -r .Parameter.Value)" \
  "$SECRET_VALUE" "the parameter"
for i in 1 3; do
  if grep -qF "$SECRET_VALUE" "${ALOG[$i]}"; then fail "the secret value is in agent $i's log"; fi
done

say "agent 1 stops cleanly"
kill -TERM "${APID[1]}"
wait "${APID[1]}" || fail "agent 1 exited with $? on SIGTERM"
APID[1]=
eq "$(ctl get --prefix "/ecs-secrets/clusters/$CLUSTER/" --keys-only | grep -c . || true)" 0 \
  "records left in etcd"
say "ok"

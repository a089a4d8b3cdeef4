# shellcheck shell=bash
# The loopback cluster the cluster tests share (issue 23): three etcd members and up to three
# agents, each with its own state dir, listener and etcd endpoint order, and the real aws CLI
# against any of them. Sourced after lib.sh and it_workdir / it_aws_env; the test sets
# CLUSTER and TTL (the agents' lease TTL, seconds) first, then calls cl_start_etcd and
# start_agent_n I for each agent. it_on_fail and it_cleanup_hook are defined here.
: "${CLUSTER:?}" "${TTL:?}"
if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
  # scripts/deps.sh installs them; a machine that ran an older deps.sh gets them here
  [[ $(id -u) -eq 0 ]] || fail "etcd-server and etcd-client are not installed (scripts/deps.sh)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    etcd-server etcd-client >/dev/null || fail "could not install etcd-server and etcd-client"
fi

# shellcheck disable=SC2034 # lib.sh reads it
IT_FAIL_LINES=30
declare -a EPID EURL APID APORT ASTATE ALOG PEER

it_on_fail() {
  local i
  for i in 1 2 3; do
    echo "---- agent $i log ----" >&2
    tail -n 30 "${ALOG[$i]-/dev/null}" >&2 || true
  done
  for i in 1 2 3; do
    echo "---- etcd $i log (tail) ----" >&2
    tail -n 5 "$WORK/etcd$i.log" >&2 || true
  done
}
it_cleanup_hook() {
  local i
  for i in 1 2 3; do
    if [[ -n ${APID[$i]-} ]]; then kill -KILL "${APID[$i]}" 2>/dev/null || true; fi
  done
  for i in 1 2 3; do
    if [[ -n ${EPID[$i]-} ]]; then kill -KILL "${EPID[$i]}" 2>/dev/null || true; fi
  done
  # a test's own helpers (an etcdctl watch retries forever once etcd is gone)
  for i in ${XPIDS[@]+"${XPIDS[@]}"}; do kill -KILL "$i" 2>/dev/null || true; done
  wait 2>/dev/null || true
}

cl_start_etcd() { # three etcd members on loopback; ctl reaches all of them
  local i t initial=
  say "starting a three-member etcd cluster on loopback"
  for i in 1 2 3; do
    EURL[i]=http://127.0.0.1:$(it_free_port)
    PEER[i]=http://127.0.0.1:$(it_free_port)
    initial+="${initial:+,}e$i=${PEER[$i]}"
  done
  for i in 1 2 3; do
    etcd --name "e$i" --data-dir "$WORK/etcd$i" \
      --listen-client-urls "${EURL[$i]}" --advertise-client-urls "${EURL[$i]}" \
      --listen-peer-urls "${PEER[$i]}" --initial-advertise-peer-urls "${PEER[$i]}" \
      --initial-cluster "$initial" --initial-cluster-state new \
      --initial-cluster-token "$CLUSTER" >"$WORK/etcd$i.log" 2>&1 &
    EPID[i]=$!
  done
  ALL_EPS="${EURL[1]},${EURL[2]},${EURL[3]}"
  for ((t = 0; t < 100; t++)); do
    ctl endpoint health >/dev/null 2>&1 && break
    sleep 0.2
  done
  ctl endpoint health >/dev/null 2>&1 || fail "etcd did not become healthy"
}
ctl() { ETCDCTL_API=3 etcdctl --endpoints="$ALL_EPS" --command-timeout=5s "$@"; }

# agent i lists the members starting with its own, so that the three use different ones
eps_for() {
  case $1 in
    1) echo "${EURL[1]},${EURL[2]},${EURL[3]}" ;;
    2) echo "${EURL[2]},${EURL[3]},${EURL[1]}" ;;
    3) echo "${EURL[3]},${EURL[1]},${EURL[2]}" ;;
  esac
}

start_agent_n() { # start_agent_n I: agent I in embedded mode, its own state and listener
  local i=$1 want t
  ASTATE[i]=$WORK/state$i
  ALOG[i]=$WORK/agent$i.log
  APORT[i]=$(it_free_port)
  [[ -d ${ASTATE[$i]} ]] || mkdir -m 700 "${ASTATE[$i]}"
  want=$(($(grep -c "ready: " "${ALOG[$i]}" 2>/dev/null || true) + 1))
  ECS_SECRETS_ETCD_ENDPOINTS=$(eps_for "$i") ECS_SECRETS_ETCD_LEASE_TTL=${TTL}s \
    ECS_INSTANCE_ATTRIBUTES="{\"agent\":\"a$i\",\"stack\":\"itest\"}" \
    "$ES_AGENT_BIN" --state-dir "${ASTATE[$i]}" --listen "127.0.0.1:${APORT[$i]}" \
    --docker-host "$ES_TEST_DOCKER_HOST" --mode embedded --region us-east-2 \
    --cluster "$CLUSTER" --log-level debug >>"${ALOG[$i]}" 2>&1 &
  APID[i]=$!
  for ((t = 0; t < 150; t++)); do
    [[ $(grep -c "ready: " "${ALOG[$i]}" 2>/dev/null || true) -ge $want ]] && return 0
    kill -0 "${APID[$i]}" 2>/dev/null || fail "agent $i exited during start"
    sleep 0.1
  done
  fail "agent $i did not become ready"
}

# awsn I ARGS...: the real CLI (through the test's fork server, lib.sh it_aws_cli) as agent I's
# administrator, against agent I
awsn() {
  local i=$1
  shift
  AWS_SHARED_CREDENTIALS_FILE=${ASTATE[$i]}/aws-credentials AWS_CONFIG_FILE=${ASTATE[$i]}/aws-config \
    it_aws_cli --profile ecs-secrets-agent --endpoint-url "http://127.0.0.1:${APORT[$i]}" \
    --output json "$@"
}
# apin I ACTION JSON: one ECS call (ACTION: DescribeTasks, ...) to agent I as its administrator,
# signed by curl (lib.sh it_api): for polls that only wait for a state; what a test asserts
# it asks through awsn. Fails on an HTTP error.
apin() {
  AWS_SHARED_CREDENTIALS_FILE=${ASTATE[$1]}/aws-credentials AWS_CONFIG_FILE=${ASTATE[$1]}/aws-config \
    URL=http://127.0.0.1:${APORT[$1]} it_api ecs "AmazonEC2ContainerServiceV20141113.$2" "$3"
}
count_on() { # count_on I [STATUS]: how many instances agent I lists
  awsn "$1" ecs list-container-instances --cluster "$CLUSTER" ${2:+--status "$2"} |
    jq '.containerInstanceArns | length'
}
count_on_fast() { # count_on_fast I: count_on through apin (for polls)
  apin "$1" ListContainerInstances "$(jq -cn --arg c "$CLUSTER" '{cluster: $c}')" |
    jq '.containerInstanceArns | length'
}
wait_count() { # wait_count I N TRIES: polls (0.2 s apart) until agent I lists N (apin, then the
  # real CLI confirms it); prints seconds
  local i=$1 n=$2 tries=$3 t start=$SECONDS
  for ((t = 0; t < tries; t++)); do
    [[ $(count_on_fast "$i" || true) == "$n" && $(count_on "$i") == "$n" ]] &&
      { echo $((SECONDS - start)); return 0; }
    sleep 0.2
  done
  return 1
}
arn_of() { # arn_of I: agent I's container-instance ARN (its ID is in its state dir)
  echo "arn:aws:ecs:us-east-2:123456789012:container-instance/$CLUSTER/$(cat "${ASTATE[$1]}/instance-id")"
}


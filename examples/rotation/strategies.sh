#!/usr/bin/env bash
# The rotation experiment side by side (issue 21): the same 3-task service through one
# rotation per strategy, with the real aws and docker CLIs only. rotate.sh runs this file
# when given --strategy.
#
#   ENDPOINT=http://127.0.0.1:4577 DOCKER_HOST=unix:///run/docker.sock \
#     ./rotate.sh --strategy env|file-refresh|redeploy|runtime|all
#
# Each strategy: one SSM SecureString /rotate/<strategy>/db (a random value v1), a task
# definition and a service of 3 tasks reading it; once steady and every consumer holds v1,
# the value is rotated to v2 (put-parameter --overwrite) and the script polls until every
# consumer is current, then deletes the service (every task STOPPED) and the parameter (the
# roles and the task definitions stay: a second run reuses the roles, registers new revisions).
#   env           the value in the container's Env; the script starts
#                 update-service --force-new-deployment right after the rotation. A consumer
#                 is a running container of the service's tasks (docker ps: one of a task being
#                 stopped still serves); current when its main process's environment
#                 (/proc/1/environ) holds v2.
#   file-refresh  the value as a file (ecs-secrets.file.DB=/run/secrets/db, policy refresh);
#                 the agent swaps the file when drift sees the new version. A consumer is one
#                 of the 3 tasks; current when `docker exec cat /run/secrets/db` gives v2.
#   redeploy      env, and the service tagged ecs-secrets:redeploy-on-rotation=true: the agent
#                 starts the deployment itself when drift sees the rotation. Consumers as env.
#   runtime       taskRoleArn, network mode host, no secret in the definition: the container
#                 fetches its task-role credentials with wget and the token (at start and every
#                 300 s, as the SDKs refresh) into /tmp/creds.json. busybox has no SigV4 client,
#                 so the read an application would make is made on the host with that
#                 container's own credentials (ssm get-parameter --with-decryption, on every use:
#                 no cache). A consumer is one of the 3 tasks; current when its read gives v2.
#                 An application caching the value for N s would be current up to N s later.
# Times are seconds after the rotation (the parameter's LastModifiedDate). A consumer's time is
# when the read that first saw v2 returned: the consumers are read all at once, in rounds
# 0.2 s apart, so a time is late by up to one round plus one read (docker exec: ~0.1-0.5 s;
# runtime's read is a CLI call, a second or more). The service's own events are merged in.
# Backend calls are the agent's /metrics before the rotation and once all are current:
# ecs_agent_ssm_calls_total (GetParameters of launches and refreshes), _secretsmanager_calls_total,
# _drift_calls_total (metadata calls), _task_credentials_requests_total; for runtime, plus the
# consumers' own GetParameter reads (the script counts them). Restarts: tasks of the service
# created after the rotation. The values never reach the output (v1 / v2 only).
#
# The agent must run in embedded mode with a small drift interval (e.g. --drift-interval 1;
# detection waits for the next check), a files directory on tmpfs (--files-dir) for
# file-refresh and its container endpoint on loopback (the default) for runtime. Env:
# ENDPOINT, PROFILE [ecs-secrets-agent], REGION [us-east-1], CLUSTER [default],
# IMAGE [local/busybox:latest], MIN_INTERVAL [300] (ecs-secrets:redeploy-min-interval),
# WAIT [180] (seconds a wait may take). Exit 0 when every strategy run had every consumer
# current; 1 otherwise.
set -euo pipefail
STRATEGY=
while (($#)); do
  case $1 in
  --strategy) STRATEGY=${2:?--strategy needs a value}; shift 2 ;;
  --strategy=*) STRATEGY=${1#*=}; shift ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
done
case $STRATEGY in
env | file-refresh | redeploy | runtime) STRATEGIES=("$STRATEGY") ;;
all) STRATEGIES=(env file-refresh redeploy runtime) ;;
*) echo "--strategy: env, file-refresh, redeploy, runtime or all" >&2; exit 2 ;;
esac
ENDPOINT=${ENDPOINT:-http://127.0.0.1:4577}
AWS_CLI=${AWS_CLI:-/usr/bin/aws} # the aws CLI to run
PROFILE=${PROFILE:-ecs-secrets-agent}
REGION=${REGION:-us-east-1}
CLUSTER=${CLUSTER:-default}
IMAGE=${IMAGE:-local/busybox:latest}
MIN_INTERVAL=${MIN_INTERVAL:-300}
WAIT=${WAIT:-180}
ACCOUNT=123456789012
N=3
export AWS_PAGER=
aws() { "$AWS_CLI" --profile "$PROFILE" --region "$REGION" --endpoint-url "$ENDPOINT" --output json "$@"; }
say() { echo "== $*"; }
now() { date +%s.%N; }
rel() { awk -v t="$1" -v r="$T_ROT" 'BEGIN { printf "%+8.2f", t - r }'; }
WORK=$(mktemp -d /tmp/rotate-XXXXXX)
MADE_SERVICES=()
MADE_PARAMS=()

# --- the parts each strategy shares ------------------------------------------------------
roles() { # the execution role (reads /rotate/*) and the runtime strategy's task role
  local trust='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
  local r
  for r in rotate-exec rotate-app; do
    aws iam get-role --role-name $r >/dev/null 2>&1 ||
      aws iam create-role --role-name $r --assume-role-policy-document "$trust" >/dev/null
  done
  aws iam put-role-policy --role-name rotate-exec --policy-name read --policy-document \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"ssm:GetParameters\",\"kms:Decrypt\"],\"Resource\":[\"arn:aws:ssm:*:*:parameter/rotate/*\",\"arn:aws:kms:*:*:key/*\"]}]}"
  aws iam put-role-policy --role-name rotate-app --policy-name read --policy-document \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"ssm:GetParameter\",\"kms:Decrypt\"],\"Resource\":[\"arn:aws:ssm:*:*:parameter/rotate/*\",\"arn:aws:kms:*:*:key/*\"]}]}"
}
# the sum of the series named $1 (all its labels) in /metrics
metric() { curl -sf "$ENDPOINT/metrics" | awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%d", s }'; }
METRICS=(ecs_agent_ssm_calls_total ecs_agent_secretsmanager_calls_total ecs_agent_drift_calls_total
  ecs_agent_task_credentials_requests_total)
snapshot() { local m; for m in "${METRICS[@]}"; do metric "$m"; echo; done; }
events_since() { # SERVICE T: the service's events created after T, oldest first, "EPOCH\tMESSAGE"
  aws ecs describe-services --cluster "$CLUSTER" --services "$1" --output text \
    --query 'services[0].events[].[createdAt, message]' |
    while IFS=$'\t' read -r at msg; do
      printf '%s\t%s\n' "$(date -d "$at" +%s.%N)" "$msg"
    done | awk -F'\t' -v t="$2" '$1 >= t' | sort -n
}
# the running containers of the family's tasks, "TASK-ID CID" lines, as Docker lists them (a
# container of a task being stopped still serves: it is a consumer until it is gone)
containers() { # FAMILY
  docker ps --filter "label=com.amazonaws.ecs.cluster=$CLUSTER" \
    --filter "label=com.amazonaws.ecs.task-definition-family=$1" \
    --format '{{.Label "com.amazonaws.ecs.task-arn"}} {{.ID}}' | sed 's#^[^ ]*/##'
}
# read_all READER LINES...: every consumer read at once; "TASK-ID EPOCH VALUE" lines, EPOCH
# when that read returned
read_all() {
  local reader=$1 line
  shift
  for line in "$@"; do
    (
      v=$($reader "${line#* }")
      printf '%s %s %s\n' "${line%% *}" "$(now)" "$v"
    ) &
  done
  wait
}
wait_steady() { # SERVICE
  local i
  local end=$((SECONDS + WAIT))
  while ((SECONDS < end)); do
    aws ecs describe-services --cluster "$CLUSTER" --services "$1" \
      --query 'services[0].events[].message' --output text | grep -qF "has reached a steady state." && return 0
    sleep "${POLL:-1}"
  done
  echo "service $1 did not reach a steady state" >&2
  return 1
}

# reads: what one consumer (container CID) holds now, by strategy
# env: the container's main process's own environment (busybox has no printenv)
read_env() { docker exec "$1" sh -c 'tr "\0" "\n" </proc/1/environ | sed -n "s/^DB_PASSWORD=//p"' 2>/dev/null || true; }
read_file() { docker exec "$1" cat /run/secrets/db 2>/dev/null || true; }
# each read is counted in $WORK/reads (readers run in command substitutions)
read_runtime() { # the application's read: GetParameter with the container's own credentials
  local c
  c=$(docker exec "$1" cat /tmp/creds.json 2>/dev/null) || return 0
  echo >>"$WORK/reads"
  AWS_ACCESS_KEY_ID=$(sed -n 's/.*"AccessKeyId" *: *"\([^"]*\)".*/\1/p' <<<"$c") \
    AWS_SECRET_ACCESS_KEY=$(sed -n 's/.*"SecretAccessKey" *: *"\([^"]*\)".*/\1/p' <<<"$c") \
    AWS_SESSION_TOKEN=$(sed -n 's/.*"Token" *: *"\([^"]*\)".*/\1/p' <<<"$c") \
    AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null \
    "$AWS_CLI" --region "$REGION" --endpoint-url "$ENDPOINT" ssm get-parameter --name "$PARAM" \
    --with-decryption --query Parameter.Value --output text 2>/dev/null || true
}

# --- one strategy ------------------------------------------------------------------------
# the containers' shell loops (no quotes: they go into JSON as they are)
IDLE='trap exit TERM; while :; do sleep 5 & wait $!; done'
# credentials at start (retried: 503 until the first AssumeRole is in), then every 300 s
FETCH='trap exit TERM; while :; do for i in 1 2 3 4 5 6 7 8 9 10; do wget -q --header Authorization:$AWS_CONTAINER_AUTHORIZATION_TOKEN -O /tmp/creds.new $AWS_CONTAINER_CREDENTIALS_FULL_URI && mv /tmp/creds.new /tmp/creds.json && break; sleep 0.5; done; sleep 300 & wait $!; done'
taskdef() { # STRATEGY: registers the strategy's task definition, prints its family
  local fam=rotate-$1 loop=$IDLE extra='' net=none role=''
  local secrets="\"secrets\": [{\"name\": \"DB_PASSWORD\", \"valueFrom\": \"$PARAM\"}],"
  case $1 in
  file-refresh)
    extra=', "dockerLabels": {"ecs-secrets.file.DB_PASSWORD": "/run/secrets/db", "ecs-secrets.file-policy.DB_PASSWORD": "refresh"}' ;;
  runtime)
    secrets='' net=host loop=$FETCH role="\"taskRoleArn\": \"arn:aws:iam::$ACCOUNT:role/rotate-app\"," ;;
  esac
  cat >"$WORK/td.json" <<TD
{"family": "$fam", "executionRoleArn": "arn:aws:iam::$ACCOUNT:role/rotate-exec", $role
 "networkMode": "$net",
 "containerDefinitions": [{"name": "app", "image": "$IMAGE", "stopTimeout": 2, $secrets
   "command": ["sh", "-c", "$loop"]$extra}]}
TD
  aws ecs register-task-definition --cli-input-json "file://$WORK/td.json" >/dev/null
  echo "$fam"
}

where_it_lives() { # STRATEGY CID: where the value is, checked on one consumer
  local inspect
  inspect=$(docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$2")
  case $1 in
  env | redeploy)
    grep -q '^DB_PASSWORD=' <<<"$inspect" && echo "Env in Docker's config (docker inspect shows it)" ||
      echo "? (not in Env)" ;;
  file-refresh)
    grep -q '^DB_PASSWORD=' <<<"$inspect" && echo "? (in Env too)" ||
      echo "tmpfs file on the host, mounted read-only (not in Env)" ;;
  runtime)
    grep -q '^DB_PASSWORD=' <<<"$inspect" && echo "? (in Env)" ||
      echo "process memory (read at each use; only credentials in the container)" ;;
  esac
}

run_strategy() { # STRATEGY: prints the timeline and the SUMMARY line
  local s=$1 svc=rotate-$1 fam tags=() i
  local v1 v2
  v1="v1-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
  v2="v2-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
  PARAM=/rotate/$s/db
  say "strategy $s: $PARAM = v1, a service of $N tasks"
  aws ssm put-parameter --name "$PARAM" --type SecureString --value "$v1" --overwrite >/dev/null
  MADE_PARAMS+=("$PARAM")
  fam=$(taskdef "$s") || return 1
  [[ $s == redeploy ]] && tags=(--tags "key=ecs-secrets:redeploy-on-rotation,value=true"
    "key=ecs-secrets:redeploy-min-interval,value=$MIN_INTERVAL")
  MADE_SERVICES+=("$svc")
  aws ecs create-service --cluster "$CLUSTER" --service-name "$svc" --task-definition "$fam" \
    --desired-count $N "${tags[@]}" \
    --deployment-configuration 'maximumPercent=200,minimumHealthyPercent=100,deploymentCircuitBreaker={enable=true,rollback=false}' \
    >/dev/null || return 1
  wait_steady "$svc" || return 1
  local reader=read_env
  [[ $s == file-refresh ]] && reader=read_file
  [[ $s == runtime ]] && reader=read_runtime
  local -a before
  mapfile -t before < <(containers "$fam")
  ((${#before[@]} == N)) || { echo "$svc: ${#before[@]} running containers, not $N" >&2; return 1; }
  local ok=0
  for ((i = 0; i < WAIT * 2; i++)); do # every consumer holds v1 (runtime: its credentials are in)
    ok=$(read_all $reader "${before[@]}" | awk -v v="$v1" '$3 == v' | wc -l)
    ((ok == N)) && break
    sleep 0.5
  done
  ((ok == N)) || { echo "$svc: only $ok of $N consumers hold v1" >&2; return 1; }
  local lives
  lives=$(where_it_lives "$s" "${before[0]#* }")
  local -a m0
  mapfile -t m0 < <(snapshot)
  : >"$WORK/reads"

  aws ssm put-parameter --name "$PARAM" --type SecureString --value "$v2" --overwrite >/dev/null
  local -a timeline=()
  if [[ $s == env ]]; then
    timeline+=("$(now)	update-service --force-new-deployment sent")
    aws ecs update-service --cluster "$CLUSTER" --service "$svc" --force-new-deployment >/dev/null
  fi
  timeline+=("$(now)	the first round of reads after the rotation begins")
  # until every consumer is current: N containers, each read giving v2
  local -A seen=()
  local t_all='' cur=0 tid at value
  for ((i = 0; i < WAIT * 2; i++)); do
    local -a consumers=("${before[@]}")
    [[ $s == env || $s == redeploy ]] && mapfile -t consumers < <(containers "$fam")
    cur=0
    while read -r tid at value; do
      [[ $value == "$v2" ]] || continue
      cur=$((cur + 1))
      [[ -n ${seen[$tid]-} ]] && continue
      seen[$tid]=1
      local kind="the same task"
      printf '%s\n' "${before[@]}" | grep -q "^$tid " || kind="a new task"
      timeline+=("$at	consumer $tid current ($kind)")
    done < <(read_all $reader "${consumers[@]}")
    if ((cur == N && ${#consumers[@]} == N)); then t_all=$(now); break; fi
    sleep 0.2
  done
  local reads
  reads=$(wc -l <"$WORK/reads")
  # the rotation's own time, asked once the measurement is over (the call takes a second)
  T_ROT=$(date -d "$(aws ssm describe-parameters --parameter-filters "Key=Name,Values=$PARAM" \
    --query 'Parameters[0].LastModifiedDate' --output text)" +%s.%N)
  timeline+=("$T_ROT	rotation: put-parameter --overwrite stored version 2 (its LastModifiedDate)")
  local -a m1
  mapfile -t m1 < <(snapshot)
  local -a d
  for i in "${!METRICS[@]}"; do d[i]=$((m1[i] - m0[i])); done
  [[ -n $t_all ]] && timeline+=("$t_all	every consumer current ($N of $N)")
  # the service's own events since the rotation (drift, deployments, tasks started/stopped)
  while IFS= read -r line; do timeline+=("$line"); done < <(events_since "$svc" "$T_ROT")
  local restarts
  restarts=$(aws ecs list-tasks --cluster "$CLUSTER" --service-name "$svc" --desired-status STOPPED \
    --query taskArns --output text; aws ecs list-tasks --cluster "$CLUSTER" --service-name "$svc" \
    --query taskArns --output text)
  restarts=$(tr '\t' '\n' <<<"$restarts" | grep -vc -e '^None$' -e '^$' || true)
  restarts=$((restarts - N))

  say "timeline ($s; seconds after the rotation)"
  printf '%s\n' "${timeline[@]}" | sort -n | while IFS=$'\t' read -r at what; do
    printf '  %s s  %s\n' "$(rel "$at")" "$what"
  done
  local calls="ssm=${d[0]} secretsmanager=${d[1]} drift=${d[2]} task_credentials=${d[3]}"
  [[ $s == runtime ]] && calls+=" consumer_GetParameter=$reads"
  local line_out
  if [[ -n $t_all ]]; then
    line_out="SUMMARY strategy=$s consumers_current=$N/$N seconds=$(rel "$t_all" | tr -d ' +') $calls restarts=$restarts value_in=\"$lives\""
  else
    line_out="SUMMARY strategy=$s consumers_current=$cur/$N seconds=timeout $calls restarts=$restarts value_in=\"$lives\""
  fi
  echo "$line_out"
  SUMMARIES+=("$line_out")
  remove_service "$svc"
  [[ -n $t_all ]]
}

remove_service() { # SERVICE: deleted, every task it had STOPPED
  local i arns
  arns=$( (aws ecs list-tasks --cluster "$CLUSTER" --service-name "$1" --query taskArns --output text
    aws ecs list-tasks --cluster "$CLUSTER" --service-name "$1" --desired-status STOPPED \
      --query taskArns --output text) 2>/dev/null | tr '\t' '\n' | grep -v '^None$' | grep . || true)
  aws ecs delete-service --cluster "$CLUSTER" --service "$1" --force >/dev/null 2>&1 || return 0
  [[ -n $arns ]] || return 0
  local end=$((SECONDS + WAIT))
  while ((SECONDS < end)); do
    # shellcheck disable=SC2086 # ARNs hold no blanks
    [[ $(aws ecs describe-tasks --cluster "$CLUSTER" --tasks $arns --output text \
      --query 'length(tasks[?lastStatus!=`STOPPED`])') == 0 ]] && return 0
    sleep "${POLL:-1}"
  done
  echo "service $1: tasks still running after delete-service" >&2
}
cleanup() {
  local s p
  for s in "${MADE_SERVICES[@]}"; do remove_service "$s"; done
  for p in "${MADE_PARAMS[@]}"; do aws ssm delete-parameter --name "$p" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

say "the roles: rotate-exec (execution role, reads /rotate/*) and rotate-app (task role, for runtime)"
roles
SUMMARIES=()
RC=0
# (a strategy that failed half-way leaves no task behind to count in the next one)
for s in "${STRATEGIES[@]}"; do run_strategy "$s" || { RC=1; remove_service "rotate-$s"; }; done
say "summary (seconds: rotation to every consumer current)"
printf '%s\n' "${SUMMARIES[@]}"
exit $RC

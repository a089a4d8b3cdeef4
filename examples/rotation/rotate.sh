#!/usr/bin/env bash
# Rotation made visible, with the real aws and docker CLIs only (no SDK, no AWS
# account in embedded mode): a service of 3 tasks reads a database password;
# the password is rotated; the tasks keep printing the old value (values are
# frozen when a container is created); the agent's drift check says which tasks
# hold it; a forced deployment replaces them within maximumPercent /
# minimumHealthyPercent, each new task resolving the value afresh; drift then
# reports none stale, and a timeline says how long each step took.
#
#   ENDPOINT=http://127.0.0.1:4577 PROFILE=ecs-secrets-agent ./rotate.sh [--store STORE]
#   (POLL=SECONDS sets how often it looks at the service while it waits: 1 by default; the
#   timeline comes from the agent's and the store's timestamps, not from these looks)
#   (AWS_CLI=PATH: the aws CLI to run, /usr/bin/aws by default)
#
#   --store ssm             an SSM SecureString, /demo/db_password (put-parameter --overwrite)
#   --store secretsmanager  a Secrets Manager secret, demo/db_password (put-secret-value)
#   --store json-key        the "password" key of a JSON secret, demo/db_credentials,
#                           valueFrom arn:...:secret:demo/db_credentials-XXXXXX:password::
#   --strategy S            instead: env, file-refresh, redeploy, runtime or all side by
#                           side (strategies.sh; README "Four strategies side by side")
#
# The values are made-up demo strings ("v1-of-db-password", "v2-..."), so the
# containers print them and `docker logs` shows them; a real application would
# never print a secret. Needs a running ecs-secrets-agent (ECS_SECRETS_DRIFT_INTERVAL
# small, e.g. 2, to see drift quickly: detection waits for the next periodic
# check), the docker CLI reaching the agent's engine (DOCKER_HOST), and for the
# tasks' execution role the embedded IAM/STS (or aws mode with ROLE and
# CREATE_ROLE=0). If the tasks fail to start, the deployment circuit breaker
# stops the deployment: the script shows that failure, with its reason, from the
# service's events, and exits 3.
set -euo pipefail
# --strategy env|file-refresh|redeploy|runtime|all: the four strategies side by side
# (strategies.sh beside this file; --strategy --help says what each measures)
for a in "$@"; do
  case $a in --strategy | --strategy=*) exec bash "$(dirname "$0")/strategies.sh" "$@" ;; esac
done
STORE=ssm
while (($#)); do
  case $1 in
  --store) STORE=${2:?--store needs a value}; shift 2 ;;
  --store=*) STORE=${1#*=}; shift ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
done
case $STORE in ssm | secretsmanager | json-key) ;; *) echo "--store: ssm, secretsmanager or json-key" >&2; exit 2 ;; esac
ENDPOINT=${ENDPOINT:-http://127.0.0.1:4577}
AWS_CLI=${AWS_CLI:-/usr/bin/aws} # the aws CLI to run
PROFILE=${PROFILE:-ecs-secrets-agent}
CLUSTER=${CLUSTER:-default}
SERVICE=${SERVICE:-web}
ROLE=${ROLE:-arn:aws:iam::123456789012:role/ecsTaskExecutionRole}
POLL=${POLL:-1} # seconds between two looks at the service (each one aws CLI call)
V1=v1-of-db-password
V2=v2-of-db-password
export AWS_PAGER=
aws() { "$AWS_CLI" --profile "$PROFILE" --endpoint-url "$ENDPOINT" --output json "$@"; }
say() { echo "== $*"; }
events() { aws ecs describe-services --cluster "$CLUSTER" --services "$SERVICE" --query 'services[0].events[].message' --output text | tr '\t' '\n'; }
epoch() { date -d "$1" +%s.%N; } # the CLI prints timestamps in ISO 8601
event_time() { # the createdAt (epoch seconds) of the oldest event holding TEXT
  epoch "$(aws ecs describe-services --cluster "$CLUSTER" --services "$SERVICE" --output text \
    --query "services[0].events[?contains(message, '$1')] | [-1].createdAt")"
}
wait_event() { # wait_event TEXT SECONDS
  local end=$((SECONDS + $2)) now
  while ((SECONDS < end)); do
    now=$(events)
    grep -qF -- "$1" <<<"$now" && return 0
    if grep -qF "deployment failed" <<<"$now"; then
      say "the deployment failed; the service's events say why:"
      head -5 <<<"$now"
      exit 3
    fi
    sleep "$POLL"
  done
  echo "timed out waiting for: $1" >&2
  events | head -5 >&2
  exit 1
}
# One line per task: id, status, the secret's version as the agent recorded it,
# and the last line its container printed.
show_tasks() { # ARN...
  local arn st rid attr
  aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$@" --output text --query \
    'tasks[].[taskArn, lastStatus, containers[0].runtimeId, attributes[?name==`ecs-secrets-agent/secret/app/DB_PASSWORD`].value | [0]]' |
    while read -r arn st rid attr; do
      printf '  task %s %-8s %-16s prints: %s\n' "${arn##*/}" "$st" "${attr%% hmac*}" \
        "$(docker logs --tail 1 "$rid" 2>&1)"
    done
}
service_tasks() { aws ecs list-tasks --cluster "$CLUSTER" --service-name "$SERVICE" --query taskArns --output text; }

say "an execution role that may read the demo secrets (embedded IAM; in aws mode bring your own)"
if [[ ${CREATE_ROLE:-1} == 1 ]]; then
  if ! aws iam get-role --role-name "${ROLE##*/}" --query Role.Arn 2>/dev/null; then
    aws iam create-role --role-name "${ROLE##*/}" --assume-role-policy-document \
      '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com","AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}' \
      --query Role.Arn
  fi
  aws iam put-role-policy --role-name "${ROLE##*/}" --policy-name demo-secrets --policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:GetParameters","Resource":"arn:aws:ssm:*:*:parameter/demo/*"},{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:*:*:secret:demo/*"}]}'
fi

# put VALUE: stores it, prints the version it became
case $STORE in
ssm)
  NAME=/demo/db_password
  put() { aws ssm put-parameter --name "$NAME" --type SecureString --value "$1" --overwrite --query Version --output text; }
  changed() { aws ssm describe-parameters --parameter-filters "Key=Name,Values=$NAME" --query 'Parameters[0].LastModifiedDate' --output text; }
  say "the parameter $NAME = $V1, a task definition reading it, a service of 3 tasks"
  echo "version $(put "$V1")"
  VALUE_FROM=$NAME
  ;;
secretsmanager | json-key)
  if [[ $STORE == secretsmanager ]]; then
    NAME=demo/db_password KEY=
    wrap() { printf '%s' "$1"; }
  else
    NAME=demo/db_credentials KEY=password
    wrap() { printf '{"username":"app","password":"%s"}' "$1"; }
  fi
  put() { aws secretsmanager put-secret-value --secret-id "$ARN" --secret-string "$(wrap "$1")" --query VersionId --output text; }
  changed() { aws secretsmanager describe-secret --secret-id "$ARN" --query LastChangedDate --output text; }
  say "the secret $NAME = '$(wrap "$V1")', a task definition reading it, a service of 3 tasks"
  if ARN=$(aws secretsmanager describe-secret --secret-id "$NAME" --query ARN --output text 2>/dev/null); then
    echo "version $(put "$V1")"
  else
    read -r ARN VER < <(aws secretsmanager create-secret --name "$NAME" --secret-string "$(wrap "$V1")" \
      --query '[ARN, VersionId]' --output text)
    echo "version $VER"
  fi
  VALUE_FROM=$ARN${KEY:+:$KEY::}
  ;;
esac
echo "valueFrom $VALUE_FROM"
cat >/tmp/rotation-td-$$.json <<TD
{"family": "rotation-demo", "executionRoleArn": "$ROLE", "networkMode": "none",
 "containerDefinitions": [{"name": "app", "image": "${IMAGE:-local/busybox:latest}",
   "command": ["sh", "-c", "trap 'exit 0' TERM; while :; do echo \"\$(date +%T) DB_PASSWORD=\$DB_PASSWORD\"; sleep 2 & wait \$!; done"],
   "stopTimeout": 2,
   "secrets": [{"name": "DB_PASSWORD", "valueFrom": "$VALUE_FROM"}]}]}
TD
aws ecs register-task-definition --cli-input-json "file:///tmp/rotation-td-$$.json" --query taskDefinition.taskDefinitionArn --output text
rm -f "/tmp/rotation-td-$$.json"
aws ecs create-service --cluster "$CLUSTER" --service-name "$SERVICE" --task-definition rotation-demo \
  --desired-count 3 \
  --deployment-configuration 'maximumPercent=150,minimumHealthyPercent=100,deploymentCircuitBreaker={enable=true,rollback=false}' \
  --query service.status --output text
wait_event "has reached a steady state." 120
events | head -3
read -r -a OLD <<<"$(service_tasks)"
show_tasks "${OLD[@]}"

say "rotate to $V2: running tasks keep the value they were created with"
echo "version $(put "$V2")"
T_ROT=$(epoch "$(changed)")
# no on-demand check here: detection waits for the agent's periodic drift check
wait_event "tasks hold a rotated value of $VALUE_FROM" 180
T_DET=$(event_time "tasks hold a rotated value")
events | grep -F "rotated value" | head -1
sleep 2 # one more line from each container
show_tasks "${OLD[@]}"

say "update-service --force-new-deployment: a rolling replacement"
read -r DEP CREATED < <(aws ecs update-service --cluster "$CLUSTER" --service "$SERVICE" \
  --force-new-deployment --query 'service.deployments[0].[id, createdAt]' --output text)
T_UPD=$(epoch "$CREATED")
echo "new deployment: $DEP"
wait_event "(deployment $DEP) deployment completed." 300
T_DONE=$(event_time "(deployment $DEP) deployment completed.")
aws ecs describe-services --cluster "$CLUSTER" --services "$SERVICE" \
  --query 'services[0].deployments[].[status,rolloutState,runningCount]' --output text
events | head -8
read -r -a NEW <<<"$(service_tasks)"
echo "new tasks:"
show_tasks "${NEW[@]}"
for ((i = 0; i < 60; i++)); do
  [[ $(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "${OLD[@]}" --output text \
    --query 'length(tasks[?lastStatus!=`STOPPED`])') == 0 ]] && break
  sleep "$POLL"
done
echo "old tasks:"
show_tasks "${OLD[@]}"

say "drift again: no task holds the old value"
wait_event "hold current secret values." 120
T_CUR=$(event_time "hold current secret values.")
events | grep -F "hold current secret values." | head -1
# staleTasks is our own member: botocore drops it, the raw answer (--debug) has it
stale() {
  "$AWS_CLI" --profile "$PROFILE" --endpoint-url "$ENDPOINT" --debug ecs describe-services \
    --cluster "$CLUSTER" --services "$SERVICE" --include DRIFT 2>&1 >/dev/null |
    grep -o '"staleTasks": *[0-9]*' | head -1 | grep -o '[0-9]*$'
}
for ((i = 0; i < 60; i++)); do
  [[ $(stale) == 0 ]] && break
  sleep "$POLL"
done
echo "staleTasks: $(stale)"
[[ $(stale) == 0 ]] || { echo "tasks still hold the old value" >&2; exit 1; }

say "timeline ($STORE; the agent's and the store's timestamps)"
line() { awk -v t="$1" -v r="$T_ROT" -v what="$2" 'BEGIN { printf "  +%7.2f s  %s\n", t - r, what }'; }
line "$T_ROT" "rotation: the new version is stored (its LastModifiedDate / LastChangedDate)"
line "$T_DET" "detection: drift event \"3 tasks hold a rotated value\""
line "$T_UPD" "forced deployment: the new deployment's createdAt"
line "$T_DONE" "deployment completed (event)"
line "$T_CUR" "all tasks current: drift event \"all 3 tasks hold current secret values.\""
awk -v a="$T_ROT" -v b="$T_DET" -v c="$T_UPD" -v d="$T_DONE" -v e="$T_CUR" 'BEGIN {
  printf "  detection took %.2f s, the deployment %.2f s, rotation to all current %.2f s\n", b - a, d - c, e - a }'

say "clean up"
aws ecs delete-service --cluster "$CLUSTER" --service "$SERVICE" --force --query service.status --output text
for ((i = 0; i < 60; i++)); do
  [[ $(aws ecs describe-services --cluster "$CLUSTER" --services "$SERVICE" --query 'services[0].status' --output text) == INACTIVE ]] && break
  sleep "$POLL"
done

#!/usr/bin/env bash
# Issue 21: runtime fetch with the task role, with the real aws CLI, boto3 and the real dockerd:
#   - a task naming taskRoleArn in the host network mode gets AWS_CONTAINER_CREDENTIALS_FULL_URI,
#     AWS_CONTAINER_AUTHORIZATION_TOKEN and ECS_CONTAINER_METADATA_URI_V4; its busybox container
#     fetches its credentials with wget and the token, and its task metadata;
#   - those credentials, used with the real CLI against the embedded endpoints, read what the
#     task role allows and are AccessDenied elsewhere; they are a session of the task role named
#     by the task's id (sts get-caller-identity);
#   - another task's token yields that task's own credentials, a made-up or missing token is
#     refused (403 / 401), and after stop-task the endpoint refuses the task's token;
#   - boto3's own container provider (the env variables set, from the host) reads the endpoint;
#   - refusals with the reason: the network mode none, a role whose trust policy does not allow
#     ecs-tasks.amazonaws.com;
#   - no token and no secret key in the agent's log.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir taskrole
IT_TASK_SLEEP=0.25
it_aws_env "$STATE"
it_endpoint
# shellcheck disable=SC2032 # (lib.sh runs the docker binary itself)
docker() { command docker -H "$ES_TEST_DOCKER_HOST" "$@"; }
CLUSTER=taskrole-$$
IMAGE=local/busybox:latest
ACCT=123456789012

run_task() { # FAMILY -> task ARN
  aws ecs run-task --cluster "$CLUSTER" --task-definition "$1" --query 'tasks[0].taskArn' \
    --output text
}
must_reach() { # TASK STATUS
  local s
  s=$(wait_status "$1" "$2")
  [[ $s == "$2" ]] || fail "task $1 is $s, not $2: $(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$1")"
}
cid_of() { # TASK -> its container's Docker id
  aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$1" \
    --query 'tasks[0].containers[0].runtimeId' --output text
}
env_of() { # CID NAME -> the value of NAME in the container's Env
  docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$1" | sed -n "s/^$2=//p"
}
reason_of() { # TASK -> stoppedReason
  aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$1" --query 'tasks[0].stoppedReason' \
    --output text
}
status_of() { # URL [TOKEN] -> the HTTP status of a GET (curl from the host)
  if [[ $# -gt 1 ]]; then
    curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $2" "$1"
  else
    curl -s -o /dev/null -w '%{http_code}' "$1"
  fi
}
json() { # JSON-TEXT PYTHON-EXPR(j) -> printed
  /usr/bin/python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}
as_task() { # CREDS-JSON ARGS... : the real CLI with the task's credentials
  local c=$1
  shift
  AWS_ACCESS_KEY_ID=$(json "$c" 'j["AccessKeyId"]') \
    AWS_SECRET_ACCESS_KEY=$(json "$c" 'j["SecretAccessKey"]') \
    AWS_SESSION_TOKEN=$(json "$c" 'j["Token"]') AWS_REGION=us-east-1 \
    AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null \
    it_aws_cli --endpoint-url "$URL" --output json "$@"
}

it_start_agent --mode embedded --cluster "$CLUSTER" --task-endpoint 127.0.0.1:0
EP=$(sed -n 's/.*container endpoints (task role credentials, task metadata v4) on \(http[^ ]*\).*/\1/p' "$LOG" | tail -1)
[[ $EP == http://127.0.0.1:* ]] || fail "no container endpoint in the log"
say "container endpoints on $EP"

ALLOWED="allowed-$RANDOM$RANDOM$RANDOM"
DENIED="denied-$RANDOM$RANDOM$RANDOM"
aws ssm put-parameter --name /tr/allowed --type SecureString --value "$ALLOWED" >/dev/null
aws ssm put-parameter --name /tr/denied --type SecureString --value "$DENIED" >/dev/null
create_exec_role tr-exec
create_exec_role tr-app
aws iam put-role-policy --role-name tr-app --policy-name read --policy-document \
  "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:GetParameter\",\"Resource\":\"arn:aws:ssm:us-east-1:$ACCT:parameter/tr/allowed\"},{\"Effect\":\"Allow\",\"Action\":\"kms:Decrypt\",\"Resource\":\"*\"}]}"
aws iam create-role --role-name tr-untrusted --assume-role-policy-document \
  "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::$ACCT:root\"},\"Action\":\"sts:AssumeRole\"}]}" >/dev/null
EXEC=arn:aws:iam::$ACCT:role/tr-exec
APP=arn:aws:iam::$ACCT:role/tr-app

# the container: its credentials (retried while the first AssumeRole is under way), then its
# task metadata, each on one line of its log
cat >"$WORK/app.json" <<'JSON'
[{"name":"app","image":"IMAGE","stopTimeout":1,"entryPoint":["/bin/sh","-c"],
  "command":["for i in 1 2 3 4 5 6 7 8 9 10; do c=$(wget -q --header \"Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN\" -O- \"$AWS_CONTAINER_CREDENTIALS_FULL_URI\") && break; sleep 0.5; done; echo \"CREDS:$c\"; echo \"META:$(wget -q -O- \"$ECS_CONTAINER_METADATA_URI_V4/task\")\"; echo \"SELF:$(wget -q -O- \"$ECS_CONTAINER_METADATA_URI_V4\")\"; exec sleep 600"]}]
JSON
sed -i "s#IMAGE#$IMAGE#" "$WORK/app.json"
aws ecs register-task-definition --family tr-app --network-mode host --execution-role-arn "$EXEC" \
  --task-role-arn "$APP" --container-definitions "file://$WORK/app.json" >/dev/null

say "a task with taskRoleArn in the host network mode: its container fetches its credentials"
T1=$(run_task tr-app)
must_reach "$T1" RUNNING
C1=$(cid_of "$T1")
wait_container_log "$C1" 60 0.5 '^SELF:' || fail "the container never printed its metadata: $(docker logs "$C1" 2>&1)"
LOG1=$(docker logs "$C1" 2>&1)
CREDS1=$(sed -n 's/^CREDS://p' <<<"$LOG1")
META1=$(sed -n 's/^META://p' <<<"$LOG1")
SELF1=$(sed -n 's/^SELF://p' <<<"$LOG1")
[[ -n $CREDS1 ]] || fail "the container got no credentials: $LOG1"
eq "$(json "$CREDS1" 'sorted(j)')" "['AccessKeyId', 'Expiration', 'RoleArn', 'SecretAccessKey', 'Token']" "the credentials' members"
eq "$(json "$CREDS1" 'j["RoleArn"]')" "$APP" "RoleArn"
[[ $(json "$CREDS1" 'j["Expiration"]') =~ ^20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-9:]{8}Z$ ]] || fail "Expiration: $CREDS1"
TOKEN1=$(env_of "$C1" AWS_CONTAINER_AUTHORIZATION_TOKEN)
[[ ${#TOKEN1} -eq 64 ]] || fail "the token is ${#TOKEN1} characters, not 64"
eq "$(env_of "$C1" AWS_CONTAINER_CREDENTIALS_FULL_URI)" "$EP/v2/credentials" "the credentials URI"

say "task metadata v4: the task and the container, in ECS's shape"
eq "$(json "$META1" 'j["TaskARN"]')" "$T1" "metadata TaskARN"
eq "$(json "$META1" 'j["Cluster"]')" "$CLUSTER" "metadata Cluster"
eq "$(json "$META1" 'j["Family"] + ":" + j["Revision"]')" "tr-app:1" "metadata Family:Revision"
eq "$(json "$META1" 'j["LaunchType"]')" "EC2" "metadata LaunchType"
eq "$(json "$META1" '[c["Name"] for c in j["Containers"]]')" "['app']" "metadata Containers"
eq "$(json "$SELF1" 'j["DockerId"]')" "$C1" "container metadata DockerId"
eq "$(json "$SELF1" 'j["DockerName"]')" "$(docker inspect -f '{{.Name}}' "$C1" | cut -c2-)" "container metadata DockerName"
eq "$(json "$SELF1" 'j["Labels"]["com.amazonaws.ecs.task-arn"]')" "$T1" "container metadata Labels"
if grep -qF "$TOKEN1" <<<"$META1$SELF1"; then fail "the metadata shows the token"; fi
eq "$(status_of "$EP/v4/00000000000000000000000000000000/task")" 404 "an unknown metadata id"
eq "$(status_of "$EP/v4/$(env_of "$C1" ECS_CONTAINER_METADATA_URI_V4 | sed 's#.*/v4/##')/stats")" 404 "stats (not served)"
eq "$(status_of "$EP/")" 404 "another path"

say "the credentials read what the task role allows, nothing else"
eq "$(as_task "$CREDS1" ssm get-parameter --name /tr/allowed --with-decryption --query Parameter.Value --output text)" \
  "$ALLOWED" "the allowed parameter, with the task's credentials"
OUT=$(as_task "$CREDS1" ssm get-parameter --name /tr/denied --with-decryption 2>&1) &&
  fail "the denied parameter was read: $OUT"
grep -q AccessDenied <<<"$OUT" || fail "the denied parameter: $OUT"
ARN1=$(as_task "$CREDS1" sts get-caller-identity --query Arn --output text)
eq "$ARN1" "arn:aws:sts::$ACCT:assumed-role/tr-app/${T1##*/}" "the session (named by the task's id)"

say "another task's token yields that task's credentials; a made-up or missing one is refused"
T2=$(run_task tr-app)
must_reach "$T2" RUNNING
C2=$(cid_of "$T2")
TOKEN2=$(env_of "$C2" AWS_CONTAINER_AUTHORIZATION_TOKEN)
[[ $TOKEN2 != "$TOKEN1" ]] || fail "two tasks share a token"
CREDS2=$(curl -sf -H "Authorization: $TOKEN2" "$EP/v2/credentials") || fail "task 2's token refused"
eq "$(as_task "$CREDS2" sts get-caller-identity --query Arn --output text)" \
  "arn:aws:sts::$ACCT:assumed-role/tr-app/${T2##*/}" "task 2's token gives task 2's session"
eq "$(status_of "$EP/v2/credentials" "${TOKEN1%?}x")" 403 "a token one character off"
eq "$(status_of "$EP/v2/credentials" "$TOKEN1$TOKEN2")" 403 "two tokens joined"
eq "$(status_of "$EP/v2/credentials")" 401 "no token"
BODY=$(curl -s -H "Authorization: nope" "$EP/v2/credentials")
eq "$(json "$BODY" 'j["code"]')" InvalidTokenInRequest "the refusal's code"

say "boto3's own container provider reads the endpoint (from the host)"
B=$(AWS_CONTAINER_CREDENTIALS_FULL_URI="$EP/v2/credentials" AWS_CONTAINER_AUTHORIZATION_TOKEN="$TOKEN1" \
  AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null /usr/bin/python3 -c '
import boto3
c = boto3.Session().get_credentials()
f = c.get_frozen_credentials()
print(c.method, f.access_key)')
eq "$B" "container-role $(json "$CREDS1" 'j["AccessKeyId"]')" "boto3's container provider"

say "stop-task: the endpoint refuses the stopped task's token and metadata"
aws ecs stop-task --cluster "$CLUSTER" --task "$T1" >/dev/null
must_reach "$T1" STOPPED
eq "$(status_of "$EP/v2/credentials" "$TOKEN1")" 403 "the stopped task's token"
MID=$(env_of "$C1" ECS_CONTAINER_METADATA_URI_V4)
eq "$(status_of "$MID/task")" 404 "the stopped task's metadata"
eq "$(status_of "$EP/v2/credentials" "$TOKEN2")" 200 "the running task's token still works"

say "refusals with the reason: network mode none, a role that does not trust ecs-tasks"
aws ecs register-task-definition --family tr-none --network-mode none --execution-role-arn "$EXEC" \
  --task-role-arn "$APP" --container-definitions "file://$WORK/app.json" >/dev/null
T3=$(run_task tr-none)
must_reach "$T3" STOPPED
R=$(reason_of "$T3")
grep -q "^ResourceInitializationError: the network mode none cannot reach" <<<"$R" || fail "network mode none: $R"
say "  stoppedReason: $R"
aws ecs register-task-definition --family tr-untrusted --network-mode host --execution-role-arn "$EXEC" \
  --task-role-arn "arn:aws:iam::$ACCT:role/tr-untrusted" --container-definitions "file://$WORK/app.json" >/dev/null
T4=$(run_task tr-untrusted)
must_reach "$T4" STOPPED
R=$(reason_of "$T4")
grep -q "^ResourceInitializationError: taskRoleArn .*: its trust policy does not allow ecs-tasks.amazonaws.com" <<<"$R" || fail "untrusted role: $R"
say "  stoppedReason: $R"

say "/metrics counts the credential requests by answer and the AssumeRole calls"
M=$(curl -s "$URL/metrics")
metric() { sed -n "s/^$1 //p" <<<"$M"; }
say "  $(grep -E '^ecs_agent_task_(credentials|role)' <<<"$M" | tr '\n' ' ')"
[[ $(metric 'ecs_agent_task_credentials_requests_total{result="served"}') -ge 4 ]] || fail "served: $(grep task_credentials <<<"$M")"
[[ $(metric 'ecs_agent_task_credentials_requests_total{result="refused"}') -ge 3 ]] || fail "refused: $(grep task_credentials <<<"$M")"
eq "$(metric 'ecs_agent_task_credentials_requests_total{result="no_token"}')" 1 "requests without a token"
[[ $(metric 'ecs_agent_task_role_assumed_total{result="ok"}') -ge 2 ]] || fail "assumed: $(grep task_role <<<"$M")"

say "no token and no secret key in the agent's log"
it_stop_agent
for s in "$TOKEN1" "$TOKEN2" "$(json "$CREDS1" 'j["SecretAccessKey"]')" "$(json "$CREDS2" 'j["SecretAccessKey"]')" "$ALLOWED"; do
  if grep -qF "$s" "$LOG"; then fail "the agent's log holds a secret"; fi
done
say "ok"

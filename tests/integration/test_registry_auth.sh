#!/usr/bin/env bash
# S15: private registry authentication, end to end against a REAL registry (Debian's
# docker-registry, the distribution registry 2.x, with htpasswd basic auth on a loopback port,
# which dockerd treats as insecure, so plain http works) and the real aws CLI:
#   - local/busybox is pushed to it with `docker login` and removed from the engine;
#   - a task whose image is 127.0.0.1:PORT/busybox:latest with repositoryCredentials naming a
#     Secrets Manager secret ({"username","password"}) is pulled with those credentials
#     through the execution role and reaches RUNNING; describe-tasks lists the credential
#     secret's ARN, version and fingerprint, never the password;
#   - the secret with a wrong password: STOPPED, CannotPullContainerError, no password in it;
#   - the execution role without secretsmanager:GetSecretValue on the secret: the preflight
#     refuses, naming the permission, before any fetch or pull;
#   - registration: repositoryCredentials without executionRoleArn, of the wrong type, or with
#     a malformed credentialsParameter are refused; describe-task-definition keeps it;
#   - no password in the agent's log or state directory.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
command -v /usr/bin/docker-registry >/dev/null || { echo "docker-registry missing (scripts/deps.sh)" >&2; exit 1; }
command -v htpasswd >/dev/null || { echo "htpasswd missing (apache2-utils, scripts/deps.sh)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/es-regauth-XXXXXX)
STATE=$WORK/state
LOG=$WORK/agent.log
mkdir -m 700 "$STATE"
PID=
REG_PID=
PASS='reg-Pa55-w0rd-7e1f9c'
WRONG='wrong-Pa55-3b8d20'
fail() {
  echo "FAIL: $*" >&2
  tail -n 40 "$LOG" >&2 || true
  echo "---- registry ----" >&2
  tail -n 10 "$WORK/registry.log" >&2 || true
  exit 1
}
D() { DOCKER_CONFIG=$WORK/docker docker -H "$ES_TEST_DOCKER_HOST" "$@"; }
cleanup() {
  if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then kill -TERM "$PID" || true; wait "$PID" || true; fi
  if [[ -n $REG_PID ]] && kill -0 "$REG_PID" 2>/dev/null; then kill -TERM "$REG_PID" || true; wait "$REG_PID" || true; fi
  # containers of this test's families, left when it failed half-way
  for fam in regauth regauth-arn; do
    D ps -aq --filter "label=com.amazonaws.ecs.task-definition-family=$fam" | xargs -r docker -H "$ES_TEST_DOCKER_HOST" rm -f >/dev/null 2>&1 || true
  done
  if [[ -n ${IMG:-} ]]; then D rmi -f "$IMG" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_REGION || true
export AWS_SHARED_CREDENTIALS_FILE=$STATE/aws-credentials AWS_CONFIG_FILE=$STATE/aws-config
export AWS_PAGER= AWS_EC2_METADATA_DISABLED=true
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---- the registry
RPORT=$(free_port)
htpasswd -Bbn reguser "$PASS" >"$WORK/htpasswd"
cat >"$WORK/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: 127.0.0.1:$RPORT
  secret: es-test-not-a-secret
auth:
  htpasswd:
    realm: es-test
    path: $WORK/htpasswd
EOF
/usr/bin/docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 </dev/null &
REG_PID=$!
for ((i = 0; i < 100; i++)); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$RPORT/v2/" || true)
  [[ $code == 401 ]] && break
  sleep 0.1
done
[[ $code == 401 ]] || fail "the registry did not answer 401 on /v2/ ($code)"
IMG=127.0.0.1:$RPORT/busybox:latest
printf '%s' "$PASS" | D login -u reguser --password-stdin "127.0.0.1:$RPORT" >/dev/null 2>&1 ||
  fail "docker login to the test registry"
D tag local/busybox:latest "$IMG"
D push "$IMG" >/dev/null || fail "docker push"
D logout "127.0.0.1:$RPORT" >/dev/null
D rmi "$IMG" >/dev/null
! D image inspect "$IMG" >/dev/null 2>&1 || fail "$IMG still in the engine"
# without credentials the engine cannot pull it: the registry really asks
! D pull "$IMG" >/dev/null 2>&1 || fail "the registry served $IMG without credentials"

# ---- the agent
PORT=$(free_port)
aws() { /usr/bin/aws --profile ecs-secrets-agent --endpoint-url "http://127.0.0.1:$PORT" "$@"; }
"$ES_AGENT_BIN" --state-dir "$STATE" --listen "127.0.0.1:$PORT" \
  --docker-host "$ES_TEST_DOCKER_HOST" >"$LOG" 2>&1 &
PID=$!
for ((i = 0; i < 100; i++)); do
  grep -q "ready: " "$LOG" && break
  kill -0 "$PID" 2>/dev/null || fail "the agent exited during start"
  sleep 0.1
done
grep -q "ready: " "$LOG" || fail "the agent did not become ready"

SECRET_ARN=$(aws secretsmanager create-secret --name regcreds \
  --secret-string "{\"username\":\"reguser\",\"password\":\"$PASS\"}" --query ARN --output text)
aws iam create-role --role-name regexec --assume-role-policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}' >/dev/null
allow() {
  aws iam put-role-policy --role-name regexec --policy-name reg --policy-document \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"secretsmanager:GetSecretValue\",\"Resource\":\"$1\"}]}"
}
ROLE=arn:aws:iam::123456789012:role/regexec

# ---- registration
reg_err() { # family, container-definitions JSON, [role] -> the error text
  local role=()
  [[ -n ${3:-} ]] && role=(--execution-role-arn "$3")
  aws ecs register-task-definition --family "$1" --network-mode none "${role[@]}" \
    --container-definitions "$2" 2>&1 >/dev/null && fail "$1: registered" || true
}
out=$(reg_err noexec "[{\"name\":\"c\",\"image\":\"$IMG\",\"repositoryCredentials\":{\"credentialsParameter\":\"regcreds\"}}]")
grep -q "ClientException.*executionRoleArn: When you are specifying repository credentials" <<<"$out" ||
  fail "no executionRoleArn: $out"
out=$(reg_err badname "[{\"name\":\"c\",\"image\":\"$IMG\",\"repositoryCredentials\":{\"credentialsParameter\":\"arn:aws:ssm:us-east-1:123456789012:parameter/x\"}}]" "$ROLE")
grep -q "ClientException.*repositoryCredentials.credentialsParameter: The repository credentials parameter specified for container 'c' is invalid" <<<"$out" ||
  fail "an SSM ARN as credentialsParameter: $out"
# botocore checks the shape first (a string where the object goes); a raw request reaches us
out=$(reg_err notobj "[{\"name\":\"c\",\"image\":\"$IMG\",\"repositoryCredentials\":{}}]" "$ROLE")
grep -q "credentialsParameter" <<<"$out" || fail "an empty repositoryCredentials: $out"

cdefs() { # the task's container, with credentialsParameter $1
  echo "[{\"name\":\"c\",\"image\":\"$IMG\",\"stopTimeout\":1,\"command\":[\"sh\",\"-c\",\"echo pulled-and-running; sleep 60\"],\"repositoryCredentials\":{\"credentialsParameter\":\"$1\"}}]"
}
aws ecs register-task-definition --family regauth --network-mode none --execution-role-arn "$ROLE" \
  --container-definitions "$(cdefs regcreds)" >/dev/null
kept=$(aws ecs describe-task-definition --task-definition regauth \
  --query 'taskDefinition.containerDefinitions[0].repositoryCredentials.credentialsParameter' --output text)
[[ $kept == regcreds ]] || fail "describe-task-definition: credentialsParameter is '$kept'"

run_until() { # task definition -> the task ARN, once RUNNING or STOPPED
  local t s
  t=$(aws ecs run-task --task-definition "$1" --query 'tasks[0].taskArn' --output text)
  for ((i = 0; i < 240; i++)); do
    s=$(aws ecs describe-tasks --tasks "$t" --query 'tasks[0].lastStatus' --output text)
    [[ $s == RUNNING || $s == STOPPED ]] && break
    sleep 0.25
  done
  echo "$t"
}
reason() { aws ecs describe-tasks --tasks "$1" --query 'tasks[0].[lastStatus,stopCode,stoppedReason]' --output text; }

# ---- 1. no permission: the preflight refuses before any fetch or pull
allow "arn:aws:secretsmanager:us-east-1:123456789012:secret:other-*"
T=$(run_until regauth)
r=$(reason "$T")
[[ $r == "STOPPED	TaskFailedToStart	ResourceInitializationError: unable to pull secrets or registry auth: the execution role $ROLE is missing 1 permission: secretsmanager:GetSecretValue on $SECRET_ARN" ]] ||
  fail "preflight: $r"
! D image inspect "$IMG" >/dev/null 2>&1 || fail "pulled although the preflight refused"

# ---- 2. the right credentials, by name: pulled with them, RUNNING
allow "$SECRET_ARN"
REG_LINES=$(wc -l <"$WORK/registry.log")
T=$(run_until regauth)
r=$(reason "$T")
[[ $r == RUNNING* ]] || fail "with credentials: $r"
D image inspect "$IMG" >/dev/null 2>&1 || fail "$IMG not in the engine after the task ran"
C=$(aws ecs describe-tasks --tasks "$T" --query 'tasks[0].containers[0].runtimeId' --output text)
for ((i = 0; i < 40; i++)); do
  D logs "$C" 2>&1 | grep -q pulled-and-running && break
  sleep 0.25
done
[[ $(D logs "$C" 2>&1) == pulled-and-running ]] || fail "the container printed: $(D logs "$C" 2>&1)"
# the registry answers the manifest only to an authenticated client
tail -n "+$((REG_LINES + 1))" "$WORK/registry.log" |
  grep -qE "\"(HEAD|GET) /v2/busybox/manifests/[^ ]+ HTTP/1.1\" 200" ||
  fail "the registry did not serve the manifest to an authenticated pull"
attrs=$(aws ecs describe-tasks --tasks "$T" --query 'tasks[0].attributes[].[name,value,targetId]' --output text)
grep -qE "^ecs-secrets-agent/registryauth/c/repositoryCredentials	version [0-9a-f-]+ hmac-sha256:[0-9a-f]{32}	$SECRET_ARN\$" <<<"$attrs" ||
  fail "the credential secret's metadata: $attrs"
aws ecs stop-task --task "$T" >/dev/null
D rm -f "$C" >/dev/null 2>&1 || true
D rmi "$IMG" >/dev/null

# ---- 3. a wrong password (the secret named by its ARN this time): CannotPullContainerError
aws secretsmanager put-secret-value --secret-id regcreds \
  --secret-string "{\"username\":\"reguser\",\"password\":\"$WRONG\"}" >/dev/null
aws ecs register-task-definition --family regauth-arn --network-mode none --execution-role-arn "$ROLE" \
  --container-definitions "$(cdefs "$SECRET_ARN")" >/dev/null
T=$(run_until regauth-arn)
r=$(reason "$T")
[[ $r == "STOPPED	TaskFailedToStart	CannotPullContainerError: $IMG: "* ]] || fail "wrong password: $r"
grep -qiE "unauthorized|authentication required|basic auth" <<<"$r" || fail "the reason does not say why: $r"
! grep -qF "$WRONG" <<<"$r" || fail "the reason holds the password"
echo "wrong password -> $r"
! D image inspect "$IMG" >/dev/null 2>&1 || fail "pulled with a wrong password"
[[ $(D ps -aq --filter "label=com.amazonaws.ecs.task-arn=$T") == "" ]] || fail "a container was left"

# ---- 4. a secret that is not {"username","password"}: the resolver says so, no value in it
aws secretsmanager put-secret-value --secret-id regcreds --secret-string "just-$WRONG" >/dev/null
T=$(run_until regauth)
r=$(reason "$T")
[[ $r == "STOPPED	TaskFailedToStart	ResourceInitializationError: unable to pull secrets or registry auth: "*"regcreds"*"not a JSON object"* ]] ||
  fail "a malformed credential secret: $r"
echo "malformed secret -> $r"
! grep -qF "$WRONG" <<<"$r" || fail "the reason holds the secret"

# ---- nothing kept: no password in the log or the state directory
for v in "$PASS" "$WRONG"; do
  ! grep -rqF -- "$v" "$LOG" || fail "the agent log holds a password"
  ! grep -rqaF -- "$v" "$STATE" || fail "the state directory holds a password"
done
echo "registry auth: preflight refusal, authenticated pull to RUNNING, wrong password and malformed secret refused, no password kept"

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
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir regauth
REG_PID=
PASS='reg-Pa55-w0rd-7e1f9c'
WRONG='wrong-Pa55-3b8d20'
IT_TASK_TRIES=240 IT_TASK_SLEEP=0.25
it_on_fail() {
  it_show_log
  echo "---- registry ----" >&2
  tail -n 10 "$WORK/registry.log" >&2 || true
}
D() { DOCKER_CONFIG=$WORK/docker docker -H "$ES_TEST_DOCKER_HOST" "$@"; }
it_cleanup_hook() {
  it_kill "$REG_PID"
  # containers of this test's families, left when it failed half-way
  for fam in regauth regauth-arn; do
    it_rm_containers "label=com.amazonaws.ecs.task-definition-family=$fam"
  done
  if [[ -n ${IMG:-} ]]; then D rmi -f "$IMG" >/dev/null 2>&1 || true; fi
}
it_aws_env "$STATE"

# ---- the registry (lib.sh), busybox pushed to it as $IMG
it_registry reguser "$PASS" busybox

# ---- the agent
it_endpoint
it_start_agent

SECRET_ARN=$(aws secretsmanager create-secret --name regcreds \
  --secret-string "{\"username\":\"reguser\",\"password\":\"$PASS\"}" --query ARN --output text)
create_exec_role regexec
allow() {
  aws iam put-role-policy --role-name regexec --policy-name reg --policy-document \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"secretsmanager:GetSecretValue\",\"Resource\":\"$1\"}]}"
}
ROLE=arn:aws:iam::123456789012:role/regexec

# ---- registration
reg_err() { # family, container-definitions JSON, [role] -> the error text
  local role=()
  [[ -n ${3:-} ]] && role=(--execution-role-arn "$3")
  # stderr is the answer wanted (stdout dropped); fail exits, so `|| true` covers the refusal only
  # shellcheck disable=SC2069,SC2015
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
  local t
  t=$(aws ecs run-task --task-definition "$1" --query 'tasks[0].taskArn' --output text)
  wait_status "$t" RUNNING STOPPED >/dev/null
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
wait_container_log "$C" 40 0.25 pulled-and-running || true
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
# the container says why too (containers[].reason, as ECS fills it; issue 24)
cr=$(aws ecs describe-tasks --tasks "$T" --query 'tasks[0].containers[0].reason' --output text)
[[ $cr == "CannotPullContainerError: $IMG: "* ]] || fail "the container's reason: $cr"
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

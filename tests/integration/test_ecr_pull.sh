#!/usr/bin/env bash
# Issue 20: an image from ECR pulled, as ECS pulls it, with the token of ecr:GetAuthorizationToken
# asked with the task's execution role; end to end against a REAL registry standing for the
# account's ECR (Debian's docker-registry with htpasswd on loopback, lib.sh's it_registry), the
# embedded ECR (ECS_SECRETS_ECR_REGISTRY / ECS_SECRETS_ECR_CREDENTIALS_FILE), the real aws CLI and
# a real dockerd:
#   - `aws ecr get-authorization-token` answers ECR's shape: base64 "USER:PASSWORD" of the
#     registry's user, expiresAt, proxyEndpoint;
#   - a role without ecr:BatchGetImage on the repository: the preflight refuses naming it
#     (ECS's ResourceInitializationError), nothing pulled, no container created;
#   - the role with ecr:GetAuthorizationToken on "*" and ecr:BatchGetImage /
#     ecr:GetDownloadUrlForLayer on arn:aws:ecr:REGION:ACCOUNT:repository/REPO: the image, only
#     in the local "ECR", is pulled with the token (the registry serves the manifest to an
#     authenticated pull) and the task runs;
#   - no password (nor the token) in the agent's log, the state directory or describe-tasks.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir ecrpull
REG_PID=
PASS='ecr-Pa55-w0rd-51c2a7'
ACCOUNT=123456789012
IT_TASK_TRIES=240 IT_TASK_SLEEP=0.25
it_on_fail() {
  it_show_log
  echo "---- registry ----" >&2
  tail -n 10 "$WORK/registry.log" >&2 || true
}
D() { DOCKER_CONFIG=$WORK/docker docker -H "$ES_TEST_DOCKER_HOST" "$@"; }
it_cleanup_hook() {
  it_kill "$REG_PID"
  it_rm_containers "label=com.amazonaws.ecs.task-definition-family=ecrpull"
  if [[ -n ${IMG:-} ]]; then D rmi -f "$IMG" >/dev/null 2>&1 || true; fi
}
it_aws_env "$STATE"

# ---- the registry standing for the account's ECR, the image only there
it_registry ecruser "$PASS" team/busybox
REPO_ARN=arn:aws:ecr:us-east-1:$ACCOUNT:repository/team/busybox
umask 077
printf 'ecruser:%s\n' "$PASS" >"$WORK/ecr-credentials"

# ---- the agent, its embedded ECR answering for that registry
it_endpoint
it_start_agent --region us-east-1 --account-id "$ACCOUNT" \
  --ecr-registry "127.0.0.1:$RPORT" --ecr-credentials-file "$WORK/ecr-credentials"

# the real CLI reads the embedded ECR's answer
tok=$(aws ecr get-authorization-token --query 'authorizationData[0].authorizationToken' --output text)
[[ $(base64 -d <<<"$tok") == "ecruser:$PASS" ]] || fail "the token is not the registry's user"
ep=$(aws ecr get-authorization-token --query 'authorizationData[0].proxyEndpoint' --output text)
eq "$ep" "https://127.0.0.1:$RPORT" "proxyEndpoint"
exp=$(aws ecr get-authorization-token --query 'authorizationData[0].expiresAt' --output text)
[[ -n $exp && $exp != None ]] || fail "no expiresAt"

create_exec_role ecrexec
ROLE=arn:aws:iam::$ACCOUNT:role/ecrexec
policy() { # the ecr:BatchGetImage statement's resource, or none
  local image=
  [[ -n ${1-} ]] && image=",{\"Effect\":\"Allow\",\"Action\":\"ecr:BatchGetImage\",\"Resource\":\"$1\"}"
  aws iam put-role-policy --role-name ecrexec --policy-name ecr --policy-document \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ecr:GetAuthorizationToken\",\"Resource\":\"*\"},{\"Effect\":\"Allow\",\"Action\":\"ecr:GetDownloadUrlForLayer\",\"Resource\":\"$REPO_ARN\"}$image]}"
}
aws ecs register-task-definition --family ecrpull --network-mode none --execution-role-arn "$ROLE" \
  --container-definitions "[{\"name\":\"c\",\"image\":\"$IMG\",\"stopTimeout\":1,\"command\":[\"sh\",\"-c\",\"echo pulled-from-ecr; sleep 60\"]}]" >/dev/null

run_until() { # task definition -> the task ARN, once RUNNING or STOPPED
  local t
  t=$(aws ecs run-task --task-definition "$1" --query 'tasks[0].taskArn' --output text)
  wait_status "$t" RUNNING STOPPED >/dev/null
  echo "$t"
}
reason() { aws ecs describe-tasks --tasks "$1" --query 'tasks[0].[lastStatus,stopCode,stoppedReason]' --output text; }

# ---- 1. no ecr:BatchGetImage on the repository: refused by name, nothing pulled or created
policy "arn:aws:ecr:us-east-1:$ACCOUNT:repository/other"
T=$(run_until ecrpull)
r=$(reason "$T")
[[ $r == "STOPPED	TaskFailedToStart	ResourceInitializationError: unable to pull secrets or registry auth: the execution role $ROLE is missing 1 permission: ecr:BatchGetImage on $REPO_ARN" ]] ||
  fail "preflight: $r"
echo "without ecr:BatchGetImage -> $r"
! D image inspect "$IMG" >/dev/null 2>&1 || fail "pulled although the preflight refused"
[[ $(D ps -aq --filter "label=com.amazonaws.ecs.task-arn=$T") == "" ]] || fail "a container was created"

# ---- 2. the permissions ECS's managed policy grants: pulled with the token, RUNNING
policy "$REPO_ARN"
REG_LINES=$(wc -l <"$WORK/registry.log")
T=$(run_until ecrpull)
r=$(reason "$T")
[[ $r == RUNNING* ]] || fail "with the permissions: $r"
D image inspect "$IMG" >/dev/null 2>&1 || fail "$IMG not in the engine after the task ran"
C=$(aws ecs describe-tasks --tasks "$T" --query 'tasks[0].containers[0].runtimeId' --output text)
wait_container_log "$C" 40 0.25 pulled-from-ecr || true
[[ $(D logs "$C" 2>&1) == pulled-from-ecr ]] || fail "the container printed: $(D logs "$C" 2>&1)"
# the registry answers the manifest only to an authenticated client: the token's user
tail -n "+$((REG_LINES + 1))" "$WORK/registry.log" |
  grep -qE "\"(HEAD|GET) /v2/team/busybox/manifests/[^ ]+ HTTP/1.1\" 200" ||
  fail "the registry did not serve the manifest to an authenticated pull"
grep -q "pulling $IMG with the ECR token" "$LOG" || fail "the agent did not say how it pulled"
desc=$(aws ecs describe-tasks --tasks "$T")
# one token asked (GetAuthorizationToken through the CLI above is the embedded ECR's own, not
# the agent's), none cached yet: the refused launch asked for none
m=$(curl -s "$URL/metrics")
grep -qx 'ecs_agent_ecr_token_calls_total 1' <<<"$m" || fail "token calls: $(grep ecr_ <<<"$m")"
aws ecs stop-task --task "$T" >/dev/null
# a second task of the definition: the token is taken from the cache (the image is there now,
# so nothing is pulled, but the launch resolves the token before it knows)
T2=$(run_until ecrpull)
[[ $(reason "$T2") == RUNNING* ]] || fail "the second task: $(reason "$T2")"
m=$(curl -s "$URL/metrics")
grep -qx 'ecs_agent_ecr_token_calls_total 1' <<<"$m" || fail "a second token call: $(grep ecr_ <<<"$m")"
grep -qx 'ecs_agent_ecr_tokens_cached_total 1' <<<"$m" || fail "not cached: $(grep ecr_ <<<"$m")"
aws ecs stop-task --task "$T2" >/dev/null
echo "with the permissions -> RUNNING, pulled with the ECR token; the second task's token from the cache"

# ---- nothing kept: no password nor token in the log, the state directory or the answers
for v in "$PASS" "$tok"; do
  ! grep -qF -- "$v" "$LOG" || fail "the agent log holds the registry password or token"
  ! grep -rqaF -- "$v" "$STATE" || fail "the state directory holds the registry password or token"
  ! grep -qF -- "$v" <<<"$desc" || fail "describe-tasks holds the registry password or token"
done
echo "ecr pull: token from the embedded ECR, preflight refusal by name, authenticated pull to RUNNING, nothing kept"

#!/usr/bin/env bash
# Issue 20: a container's restartPolicy as ECS runs it on EC2, with the real aws CLI and the
# real dockerd: a container that exits with code 3 after running past its
# restartAttemptPeriod (60 s, ECS's minimum) is started again in place by the agent (the same
# container: the task and the container stay RUNNING in describe-tasks, the same runtimeId),
# and it keeps the values it was created with: its secret, read before the exit, is rotated
# in SSM meanwhile, and the restarted container still prints the original (as ECS's restart,
# which starts the same container again).
# The definition is described as registered; ECS's rules are refused by name.
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir restart
CLUSTER=restart-$$ # our containers carry it as a label (removed on exit)
it_endpoint
it_aws_env "$STATE"
# shellcheck disable=SC2032 # (lib.sh runs the docker binary itself)
docker() { command docker -H "$ES_TEST_DOCKER_HOST" "$@"; }
ACCT=123456789012

it_start_agent --mode embedded --cluster "$CLUSTER"

# ecs_raw OPERATION JSON-FILE: the ECS API call as it goes on the wire (JSON 1.1, SigV4 with the
# CLI's profile), its answer printed; exit 1 on an error answer. The installed CLI's and boto3's
# models predate restartPolicy: they would refuse to send it and drop it from answers.
ecs_raw() {
  /usr/bin/python3 - "$URL" "$1" "$2" <<'PY'
import sys, urllib.request, urllib.error
import boto3, botocore.auth
from botocore.awsrequest import AWSRequest
url, op, path = sys.argv[1:4]
s = boto3.Session(profile_name="ecs-secrets-agent")
body = open(path, "rb").read()
req = AWSRequest(method="POST", url=url + "/", data=body, headers={
    "Content-Type": "application/x-amz-json-1.1",
    "X-Amz-Target": "AmazonEC2ContainerServiceV20141113." + op})
botocore.auth.SigV4Auth(s.get_credentials().get_frozen_credentials(), "ecs",
                        s.region_name or "us-east-1").add_auth(req)
try:
    with urllib.request.urlopen(urllib.request.Request(url + "/", data=body, method="POST",
                                                       headers=dict(req.headers.items()))) as r:
        print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.read().decode())
    sys.exit(1)
PY
}

say "registration: restartPolicy described as registered, ECS's rules refused by name"
V1="first-$RANDOM$RANDOM"
V2="rotated-$RANDOM$RANDOM"
aws ssm put-parameter --name /restart/db --type String --value "$V1" >/dev/null
create_exec_role restart-exec
aws iam put-role-policy --role-name restart-exec --policy-name ssm --policy-document \
  "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:GetParameters\",\"Resource\":\"arn:aws:ssm:*:$ACCT:parameter/restart/*\"}]}"
# the first run marks its writable layer and exits 3 after 62 s; the same container started
# again finds the mark and stays up
cat >"$WORK/td.json" <<JSON
{
  "family": "restart",
  "executionRoleArn": "arn:aws:iam::$ACCT:role/restart-exec",
  "networkMode": "none",
  "containerDefinitions": [{
    "name": "app",
    "image": "local/busybox:latest",
    "command": ["sh", "-c", "if [ -e /ran ]; then echo \"again|\$DB\"; exec sleep 300; fi; touch /ran; echo \"first|\$DB\"; sleep 62; exit 3"],
    "stopTimeout": 2,
    "secrets": [{"name": "DB", "valueFrom": "/restart/db"}],
    "restartPolicy": {"enabled": true, "ignoredExitCodes": [0], "restartAttemptPeriod": 60}
  }]
}
JSON
ecs_raw RegisterTaskDefinition "$WORK/td.json" >/dev/null || fail "registration refused"
echo '{"taskDefinition":"restart"}' >"$WORK/describe.json"
eq "$(ecs_raw DescribeTaskDefinition "$WORK/describe.json" |
  jq -c '.taskDefinition.containerDefinitions[0].restartPolicy')" \
  '{"enabled":true,"ignoredExitCodes":[0],"restartAttemptPeriod":60}' "restartPolicy described"
echo '{"family":"restart-bad","containerDefinitions":[{"name":"app","image":"local/busybox:latest","restartPolicy":{"enabled":true,"restartAttemptPeriod":10}}]}' >"$WORK/bad.json"
OUT=$(ecs_raw RegisterTaskDefinition "$WORK/bad.json") && fail "a period of 10 s was accepted"
eq "$(jq -r '.__type + ": " + .message' <<<"$OUT")" \
  "ClientException: containerDefinitions[0].restartPolicy.restartAttemptPeriod: must be between 60 and 1800" \
  "the refusal"

say "run-task: the container prints its value, exits 3 after 62 s, and is started again in place"
TASK=$(aws ecs run-task --cluster "$CLUSTER" --task-definition restart --query 'tasks[0].taskArn' --output text)
eq "$(wait_status "$TASK" RUNNING STOPPED)" RUNNING "the task"
CID=$(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$TASK" --query 'tasks[0].containers[0].runtimeId' --output text)
wait_container_log "$CID" 50 0.2 -xF "first|$V1" || fail "the container did not print its value"
aws ssm put-parameter --name /restart/db --type String --value "$V2" --overwrite >/dev/null
say "the parameter rotated; waiting for the exit and the restart"
wait_container_log "$CID" 120 1 -xF "again|$V1" ||
  fail "the container was not started again with its value (logs: $(docker logs "$CID" 2>&1))"
grep -q "container app exited with code 3: starting it again in place" "$LOG" ||
  fail "the agent did not log the restart"
docker logs "$CID" 2>&1 | grep -qF "$V2" && fail "the restarted container got the rotated value"
OUT=$(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$TASK")
eq "$(jq -r '.tasks[0].lastStatus' <<<"$OUT")" RUNNING "the task after the restart"
eq "$(jq -r '.tasks[0].containers[0].lastStatus' <<<"$OUT")" RUNNING "the container after the restart"
eq "$(jq -r '.tasks[0].containers[0].runtimeId' <<<"$OUT")" "$CID" "the same container"
eq "$(docker inspect "$CID" --format '{{.State.Running}}')" true "running in Docker"
ENV=$(docker inspect "$CID" --format '{{range .Config.Env}}{{println .}}{{end}}')
grep -qxF "DB=$V1" <<<"$ENV" || fail "the container's Env changed: $ENV"
aws ecs stop-task --cluster "$CLUSTER" --task "$TASK" >/dev/null
eq "$(wait_status "$TASK" STOPPED)" STOPPED "stopped"
grep -q "container app exited.*not started again" "$LOG" && fail "the stop's exit was taken for a restart"
say "ok"

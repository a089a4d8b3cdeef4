#!/usr/bin/env bash
# The seed's walkthrough (see README.md beside this file) against a running agent.
#   STATE_DIR   the agent's state directory (for its aws-credentials file)
#   ENDPOINT    the agent's listener URL
#   DOCKER_HOST the Docker engine the agent uses (to read the container's output)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
STATE_DIR=${STATE_DIR:-/var/lib/ecs-secrets-agent}
ENDPOINT=${ENDPOINT:-http://127.0.0.1:4577}
AWS_CLI=${AWS_CLI:-/usr/bin/aws} # the aws CLI to run
if [ -z "${DOCKER_HOST:-}" ]; then
  # scripts/run.sh uses the system's engine when it answers, else its private one
  DOCKER_HOST=unix:///var/run/docker.sock
  curl -sf --max-time 2 --unix-socket /var/run/docker.sock http://localhost/_ping >/dev/null 2>&1 ||
    DOCKER_HOST=unix:///var/lib/ecs-secrets-agent-docker/docker.sock
fi
export DOCKER_HOST
# the task's image, made from Debian's busybox-static when this engine lacks it
"$HERE/../../tests/harness/dockerd.sh" import >/dev/null
export AWS_SHARED_CREDENTIALS_FILE=$STATE_DIR/aws-credentials AWS_CONFIG_FILE=$STATE_DIR/aws-config
export AWS_PAGER= AWS_EC2_METADATA_DISABLED=true
aws() { "$AWS_CLI" --profile ecs-secrets-agent --endpoint-url "$ENDPOINT" "$@"; }
step() { printf '\n== %s\n' "$*"; }
WORK=$(mktemp -d)
trap 'kill $HEC_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT

ACCOUNT=$(aws sts get-caller-identity --query Account --output text)
REGION=$(aws configure get region)

# A Splunk HTTP Event Collector stand-in on loopback: it records the Authorization header the
# splunk log driver sends, which carries the token the task got from secretOptions.
HEC_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
/usr/bin/python3 - "$HEC_PORT" "$WORK/hec.log" <<'PY' &
import http.server, sys
port, out = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(out, "a") as f:
            f.write(self.headers.get("Authorization", "") + "\n")
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(b"{}")
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
HEC_PID=$!

step "S10: a KMS key aliased alias/MyAliasName, and the SecureString /test/database_password"
KEY_ID=$(aws kms create-key --description "seed walkthrough" --query KeyMetadata.KeyId --output text)
aws kms create-alias --alias-name alias/MyAliasName --target-key-id "$KEY_ID"
aws ssm put-parameter --name /test/database_password --type SecureString \
  --key-id alias/MyAliasName --value MyFirstParameter --description "seed walkthrough" --overwrite
aws ssm put-parameter --name /test/splunk_token --type SecureString \
  --value 0123-splunk-token-4567 --overwrite >/dev/null
aws ssm get-parameters --names /test/database_password --query 'Parameters[0].[Name,Type,Version]' --output text

step "S5-S6: the execution role, with the AWS managed policy only"
aws iam create-role --role-name ecsTaskExecutionRole \
  --assume-role-policy-document "file://$HERE/trust-policy.json" --query Role.Arn --output text
aws iam attach-role-policy --role-name ecsTaskExecutionRole \
  --policy-arn arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy

step "S8-S9, S11-S14: the task definition (secrets and logConfiguration.secretOptions)"
sed -e "s/ACCOUNT/$ACCOUNT/g" -e "s/REGION/$REGION/g" -e "s/HEC_PORT/$HEC_PORT/g" \
  "$HERE/task-definition.json" >"$WORK/td.json"
aws ecs register-task-definition --cli-input-json "file://$WORK/td.json" \
  --query 'taskDefinition.[taskDefinitionArn,status]' --output text

wait_task() { # wait_task ARN STATUS
  local i s
  for i in $(seq 1 120); do
    s=$(aws ecs describe-tasks --tasks "$1" --query 'tasks[0].lastStatus' --output text)
    [ "$s" = "$2" ] && return 0
    sleep 0.5
  done
  echo "task $1 did not reach $2 (last: $s)" >&2
  return 1
}
run() { aws ecs run-task --task-definition seed-walkthrough --query 'tasks[0].taskArn' --output text; }

step "without the inline policy the task cannot read its secrets"
T0=$(run)
wait_task "$T0" STOPPED
aws ecs describe-tasks --tasks "$T0" --query 'tasks[0].[stopCode,stoppedReason]' --output text

step "S7: the seed's inline policy"
sed -e "s/ACCOUNT/$ACCOUNT/g" -e "s/REGION/$REGION/g" -e "s/KEY_ID/$KEY_ID/g" \
  "$HERE/inline-policy.json" >"$WORK/policy.json"
aws iam put-role-policy --role-name ecsTaskExecutionRole --policy-name seed-secrets \
  --policy-document "file://$WORK/policy.json"

step "S1, S8: run-task; the container sees the value"
T1=$(run)
wait_task "$T1" RUNNING
C1=$(aws ecs describe-tasks --tasks "$T1" --query 'tasks[0].containers[0].runtimeId' --output text)
for i in $(seq 1 40); do docker logs "$C1" 2>&1 | grep -q DATABASE_PASSWORD && break; sleep 0.25; done
docker logs "$C1" 2>&1 | head -1
aws ecs describe-tasks --tasks "$T1" --query 'tasks[0].attributes[].[name,value]' --output text

step "S9, S14: the splunk log driver got its token from secretOptions"
for i in $(seq 1 40); do [ -s "$WORK/hec.log" ] && break; sleep 0.25; done
head -1 "$WORK/hec.log"

step "S4: rotate the parameter; the running task keeps its value, a new task gets the new one"
aws ssm put-parameter --name /test/database_password --type SecureString \
  --key-id alias/MyAliasName --value MySecondParameter --overwrite --query Version --output text
T2=$(run)
wait_task "$T2" RUNNING
C2=$(aws ecs describe-tasks --tasks "$T2" --query 'tasks[0].containers[0].runtimeId' --output text)
for i in $(seq 1 40); do docker logs "$C2" 2>&1 | grep -q DATABASE_PASSWORD && break; sleep 0.25; done
echo "old task: $(docker logs "$C1" 2>&1 | head -1)"
echo "new task: $(docker logs "$C2" 2>&1 | head -1)"

step "clean up"
for t in "$T1" "$T2"; do aws ecs stop-task --task "$t" --reason "walkthrough done" --query 'task.desiredStatus' --output text; done
wait_task "$T1" STOPPED
wait_task "$T2" STOPPED
aws ecs describe-tasks --tasks "$T1" --query 'tasks[0].[lastStatus,stopCode,stoppedReason]' --output text

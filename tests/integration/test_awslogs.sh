#!/usr/bin/env bash
# Issue 20: logConfiguration with the awslogs driver as ECS runs it, with the real aws CLI and
# the real dockerd (Debian's 20.10):
#   - ECS's standard configuration (awslogs-group, awslogs-region, awslogs-stream-prefix,
#     awslogs-create-group) registers, is described as registered, and reaches Docker as ECS
#     gives it: awslogs-stream = prefix/container-name/task-id, no awslogs-stream-prefix, mode
#     non-blocking with max-buffer-size 10m (ECS's defaults), and awslogs-credentials-endpoint
#     pointing Docker's driver at the agent's container endpoints (docker inspect);
#   - Docker's driver really ships with the execution role's credentials: the definition's own
#     awslogs-endpoint names a stand-in for CloudWatch Logs run by this test (no CloudWatch
#     Logs is served by the embedded services), which records what dockerd sends: the log
#     group created (awslogs-create-group after ResourceNotFoundException), the stream
#     prefix/app/<task id>, the container's lines, and the access key that signed them, which
#     is the one the agent serves at that path, a session of the execution role named by the
#     task's id (sts get-caller-identity);
#   - another path is refused, and the task's path is refused once the task is STOPPED;
#   - mode blocking with an unreachable CloudWatch Logs: the container cannot start, the task
#     stops with Docker's reason (what dockerd 20.10 does: the driver creates the stream at
#     start); without executionRoleArn no credentials endpoint is given (Docker's own, as ECS);
#   - registration refuses what Docker would refuse at create, naming the option;
#   - no credentials path id, secret key or session token in the agent's log.
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir awslogs
IT_TASK_SLEEP=0.25
it_aws_env "$STATE"
it_endpoint
# shellcheck disable=SC2032 # (lib.sh runs the docker binary itself)
docker() { command docker -H "$ES_TEST_DOCKER_HOST" "$@"; }
CLUSTER=awslogs-$$
IMAGE=local/busybox:latest
ACCT=123456789012

# The CloudWatch Logs stand-in: JSON 1.1 (X-Amz-Target Logs_20140328.*) on a free loopback
# port; CreateLogStream answers ResourceNotFoundException until CreateLogGroup made the group;
# every call is appended to $CWL_LOG as {"target", "akid", "token", "body"}.
CWL_LOG=$WORK/cwl.jsonl
CWL_PORT=$(it_free_port)
/usr/bin/python3 - "$CWL_PORT" "$CWL_LOG" >"$WORK/cwl.out" 2>&1 <<'PY' &
import http.server, json, re, sys
port, path = int(sys.argv[1]), sys.argv[2]
groups = set()
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        target = self.headers.get("X-Amz-Target", "")
        m = re.search(r"Credential=([^/]+)/", self.headers.get("Authorization", ""))
        with open(path, "a") as f:
            f.write(json.dumps({"target": target, "akid": m.group(1) if m else None,
                                "token": self.headers.get("X-Amz-Security-Token"),
                                "body": body}) + "\n")
        op = target.split(".")[-1]
        status, answer = 200, {}
        if op == "CreateLogGroup":
            groups.add(body.get("logGroupName"))
        elif op == "CreateLogStream" and body.get("logGroupName") not in groups:
            status, answer = 400, {"__type": "ResourceNotFoundException",
                                   "message": "The specified log group does not exist."}
        elif op == "PutLogEvents":
            answer = {"nextSequenceToken": "1"}
        out = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
CWL_PID=$!
trap 'kill $CWL_PID 2>/dev/null || true; it_cleanup' EXIT
CWL=http://127.0.0.1:$CWL_PORT

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
reason_of() { # TASK -> stoppedReason
  aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$1" --query 'tasks[0].stoppedReason' \
    --output text
}
log_opt() { # CID NAME -> HostConfig.LogConfig.Config[NAME] ("<none>" when absent)
  docker inspect -f "{{with index .HostConfig.LogConfig.Config \"$2\"}}{{.}}{{else}}<none>{{end}}" "$1"
}
json() { # JSON-TEXT PYTHON-EXPR(j) -> printed
  /usr/bin/python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}
register() { # FAMILY OPTIONS-JSON [MORE-ARGS...]: the app container logging with awslogs
  local family=$1 opts=$2
  shift 2
  cat >"$WORK/$family.json" <<JSON
[{"name":"app","image":"$IMAGE","stopTimeout":1,"entryPoint":["/bin/sh","-c"],
  "command":["echo line-one; echo line-two; exec sleep 600"],
  "logConfiguration":{"logDriver":"awslogs","options":$opts}}]
JSON
  aws ecs register-task-definition --family "$family" --network-mode none \
    --container-definitions "file://$WORK/$family.json" "$@"
}

it_start_agent --mode embedded --cluster "$CLUSTER" --task-endpoint 127.0.0.1:0
EP=$(sed -n 's/.*container endpoints (task role credentials, task metadata v4) on \(http[^ ]*\).*/\1/p' "$LOG" | tail -1)
[[ $EP == http://127.0.0.1:* ]] || fail "no container endpoint in the log"
EP_PORT=${EP##*:}
create_exec_role logs-exec
EXEC=arn:aws:iam::$ACCT:role/logs-exec

say "registration: ECS's standard awslogs configuration, described as registered"
STD='{"awslogs-group":"g","awslogs-region":"us-east-1","awslogs-stream-prefix":"web","awslogs-create-group":"true","awslogs-endpoint":"'"$CWL"'"}'
OUT=$(register logs-app "$STD" --execution-role-arn "$EXEC")
eq "$(json "$OUT" 'j["taskDefinition"]["containerDefinitions"][0]["logConfiguration"]["options"]["awslogs-stream-prefix"]')" \
  web "the prefix as registered"
eq "$(aws ecs describe-task-definition --task-definition logs-app --query \
  'taskDefinition.containerDefinitions[0].logConfiguration.options' --output json | jq -cS .)" \
  "$(jq -cS . <<<"$STD")" "describe-task-definition's options"

say "registration refuses what Docker would refuse at create, naming the option"
refuse() { # OPTIONS-JSON MESSAGE-PART
  local out rc=0
  out=$(register logs-bad "$1" --execution-role-arn "$EXEC" 2>&1) || rc=$?
  [[ $rc -ne 0 ]] || fail "registered: $1"
  grep -qF "(ClientException)" <<<"$out" || fail "not a ClientException: $out"
  grep -qF -- "$2" <<<"$out" || fail "the message lacks '$2': $out"
  say "  $(sed -n 's/.*(ClientException).*: //p' <<<"$out" | head -1)"
}
refuse '{"awslogs-region":"us-east-1"}' 'logConfiguration.options.awslogs-group: required'
refuse '{"awslogs-group":"g","awslogs-stream-prefix":"web","awslogs-stream":"s"}' \
  'awslogs-stream-prefix and awslogs-stream cannot both be set'
refuse '{"awslogs-group":"g","awslogs-credentials-endpoint":"/v2/credentials/x"}' \
  "'awslogs-credentials-endpoint' is set by the agent"
refuse '{"awslogs-group":"g","awslogs-stream-prefx":"web"}' \
  "'awslogs-stream-prefx' is not an option of the awslogs log driver"
refuse '{"awslogs-group":"g","awslogs-create-group":"yes"}' \
  "awslogs-create-group: 'yes' is not true or false"
refuse '{"awslogs-group":"g","awslogs-stream-prefix":"a:b"}' "awslogs-stream-prefix: a log stream name's prefix"

say "the task: what Docker was given"
T1=$(run_task logs-app)
ID1=${T1##*/}
must_reach "$T1" RUNNING
C1=$(cid_of "$T1")
eq "$(docker inspect -f '{{.HostConfig.LogConfig.Type}}' "$C1")" awslogs "the driver"
eq "$(log_opt "$C1" awslogs-stream)" "web/app/$ID1" "awslogs-stream"
eq "$(log_opt "$C1" awslogs-stream-prefix)" "<none>" "awslogs-stream-prefix (ECS's, never Docker's)"
eq "$(log_opt "$C1" awslogs-group)" g "awslogs-group"
eq "$(log_opt "$C1" awslogs-region)" us-east-1 "awslogs-region"
eq "$(log_opt "$C1" awslogs-create-group)" true "awslogs-create-group"
eq "$(log_opt "$C1" awslogs-endpoint)" "$CWL" "awslogs-endpoint (the definition's)"
eq "$(log_opt "$C1" mode)" non-blocking "mode (ECS's default)"
eq "$(log_opt "$C1" max-buffer-size)" 10m "max-buffer-size (ECS's agent's default)"
CREDS_OPT=$(log_opt "$C1" awslogs-credentials-endpoint)
[[ $CREDS_OPT =~ ^@127\.0\.0\.1:$EP_PORT/v2/credentials/[0-9a-f]{64}$ ]] ||
  fail "awslogs-credentials-endpoint: $CREDS_OPT"
LOGS_ID=${CREDS_OPT##*/}
eq "$(docker inspect -f '{{len .HostConfig.LogConfig.Config}}' "$C1")" 8 "the number of options"
say "  $(docker inspect -f '{{json .HostConfig.LogConfig}}' "$C1" | sed "s/$LOGS_ID/<id>/")"

say "Docker's driver ships the container's lines with the execution role's credentials"
for ((i = 0; i < 60; i++)); do
  if [[ -s $CWL_LOG ]] && [[ $(jq -r 'select(.target == "Logs_20140328.PutLogEvents") |
      .body.logEvents[].message' "$CWL_LOG" | grep -c '^line-') -ge 2 ]]; then break; fi
  sleep 0.5
done
jq -c '{target, stream: .body.logStreamName, group: .body.logGroupName}' "$CWL_LOG" | sed 's/^/  /'
eq "$(jq -r 'select(.target == "Logs_20140328.PutLogEvents") | .body.logEvents[].message' "$CWL_LOG" | tr '\n' ' ')" \
  "line-one line-two " "the lines shipped"
eq "$(jq -r '.target' "$CWL_LOG" | sed 's/Logs_20140328\.//' | uniq | tr '\n' ' ')" \
  "CreateLogStream CreateLogGroup CreateLogStream PutLogEvents " "the calls (awslogs-create-group)"
eq "$(jq -r 'select(.target == "Logs_20140328.PutLogEvents") | .body.logStreamName' "$CWL_LOG" | sort -u)" \
  "web/app/$ID1" "the stream PutLogEvents wrote"
eq "$(jq -r '.body.logGroupName' "$CWL_LOG" | sort -u)" g "the group"
AKID=$(jq -r '.akid' "$CWL_LOG" | sort -u)
[[ $(wc -l <<<"$AKID") -eq 1 && $AKID != null ]] || fail "the calls were signed by: $AKID"
[[ $(jq -r '.token' "$CWL_LOG" | sort -u) != null ]] || fail "no session token: temporary credentials sign"
# the same path, asked by us: the credentials Docker got, a session of the execution role
CREDS=$(curl -sf "$EP/v2/credentials/$LOGS_ID") || fail "the task's awslogs credentials path answers $(curl -s -o /dev/null -w '%{http_code}' "$EP/v2/credentials/$LOGS_ID")"
eq "$(json "$CREDS" 'j["AccessKeyId"]')" "$AKID" "the key that signed is the one served"
eq "$(json "$CREDS" 'j["RoleArn"]')" "$EXEC" "RoleArn"
SECRET=$(json "$CREDS" 'j["SecretAccessKey"]')
SESSION=$(json "$CREDS" 'j["Token"]')
ARN=$(AWS_ACCESS_KEY_ID=$AKID AWS_SECRET_ACCESS_KEY=$SECRET AWS_SESSION_TOKEN=$SESSION \
  AWS_REGION=us-east-1 AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null \
  /usr/bin/aws --endpoint-url "$URL" sts get-caller-identity --query Arn --output text)
eq "$ARN" "arn:aws:sts::$ACCT:assumed-role/logs-exec/$ID1" "the session (named by the task's id)"

say "only the task's own path answers, and only while the task runs"
eq "$(curl -s -o /dev/null -w '%{http_code}' "$EP/v2/credentials/$(printf '0%.0s' {1..64})")" 403 "a made-up id"
eq "$(curl -s -o /dev/null -w '%{http_code}' "$EP/v2/credentials/${LOGS_ID:0:63}")" 403 "a shortened id"
eq "$(curl -s -o /dev/null -w '%{http_code}' "$EP/v2/credentials")" 401 "the task role's path without a token"
aws ecs stop-task --cluster "$CLUSTER" --task "$T1" >/dev/null
must_reach "$T1" STOPPED
eq "$(curl -s -o /dev/null -w '%{http_code}' "$EP/v2/credentials/$LOGS_ID")" 403 "the id after STOPPED"

say "mode blocking with an unreachable CloudWatch Logs: the container cannot start (dockerd 20.10)"
DEAD=http://127.0.0.1:$(it_free_port)
register logs-blocking '{"awslogs-group":"g","awslogs-stream-prefix":"web","mode":"blocking","awslogs-endpoint":"'"$DEAD"'"}' \
  --execution-role-arn "$EXEC" >/dev/null
T2=$(run_task logs-blocking)
must_reach "$T2" STOPPED
R=$(reason_of "$T2")
say "  stoppedReason: $R"
grep -q "^CannotStartContainerError: app: .*failed to initialize logging driver" <<<"$R" || fail "blocking: $R"
if grep -qE '/v2/credentials/[0-9a-f]{8}' <<<"$R"; then fail "the reason shows a credentials path's id: $R"; fi

say "without executionRoleArn: Docker's own credentials, as ECS (no credentials endpoint)"
register logs-norole '{"awslogs-group":"g","awslogs-endpoint":"'"$CWL"'"}' >/dev/null
T3=$(run_task logs-norole)
must_reach "$T3" RUNNING
C3=$(cid_of "$T3")
eq "$(log_opt "$C3" awslogs-credentials-endpoint)" "<none>" "no credentials endpoint"
eq "$(log_opt "$C3" awslogs-region)" us-east-1 "the task's region when none is given"
eq "$(log_opt "$C3" awslogs-stream)" "<none>" "no prefix: Docker names the stream"
aws ecs stop-task --cluster "$CLUSTER" --task "$T3" >/dev/null
must_reach "$T3" STOPPED

say "/metrics: the execution role assumed for the awslogs driver, its path served and refused"
M=$(curl -s "$URL/metrics")
metric() { sed -n "s/^$1 //p" <<<"$M"; }
say "  $(grep -E '^ecs_agent_task_(credentials|role)' <<<"$M" | tr '\n' ' ')"
[[ $(metric 'ecs_agent_task_role_assumed_total{result="ok"}') -ge 2 ]] || fail "assumed: $(grep task_role <<<"$M")"
[[ $(metric 'ecs_agent_task_credentials_requests_total{result="served"}') -ge 2 ]] || fail "served: $(grep task_credentials <<<"$M")"
[[ $(metric 'ecs_agent_task_credentials_requests_total{result="refused"}') -ge 3 ]] || fail "refused: $(grep task_credentials <<<"$M")"

say "no credentials path id, secret key or session token in the agent's log"
it_stop_agent
for s in "$LOGS_ID" "$SECRET" "$SESSION"; do
  if grep -qF "$s" "$LOG"; then fail "the agent's log holds a secret"; fi
done
grep -q "task $ID1: credentials of its execution role (awslogs) $EXEC" "$LOG" ||
  fail "the log does not say the execution role's credentials were fetched"
say "ok"

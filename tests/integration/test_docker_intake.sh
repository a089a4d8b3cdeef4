#!/usr/bin/env bash
# Launches through the agent's Docker socket get their secrets (issue 19 part 2), driven by the
# real docker CLI through ECS_SECRETS_DOCKER_PROXY against the agent in embedded mode and the
# test dockerd, with the real aws CLI for the set-up:
#   - docker run with ecs-secrets.secret.* labels: an SSM SecureString and a Secrets Manager
#     json-key reach the container (it prints them); a secret overrides an -e of the same name;
#   - ecs-secrets.log-secret.splunk-token: the splunk log driver's token reaches a loopback HEC
#     receiver as "Authorization: Splunk <token>";
#   - ecs-secrets.task-definition + ecs-secrets.container: a registered definition's secrets;
#   - ecs-secrets.expand.<PREFIX>: a Secrets Manager JSON secret's keys and an SSM path's
#     parameters become variables (over an -e of the same name), from labels and from a
#     registered definition's container; a refreshed secret file (ecs-secrets.file-policy.*=
#     refresh) is refused with the reason, nothing created (frozen files: test_docker_files.sh);
#   - a role missing permissions: docker run prints the preflight's ECS-shaped reason naming
#     every missing permission, and no container is created;
#   - labels that cannot be read: docker run prints why (400), nothing created;
#   - a caller that is not root (the docker CLI run as nobody): a role outside its
#     ECS_SECRETS_DOCKER_ROLES allow-list is refused with the reason, a role its pattern matches
#     runs, and a uid mapped to an embedded IAM user runs only what the user may iam:PassRole;
#   - Compose (Debian's docker-compose): a service with an SSM SecureString and a Secrets Manager
#     json-key gets its values; a missing permission is printed by docker-compose up, with every
#     missing permission named, and nothing is created;
#   - one audit line per injected launch (uid, container, role, ARN, version, fingerprint), and
#     no value in the agent's log or state, /metrics or describe-tasks.
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir intake
IT_FAIL_HEADER="---- agent log ----"
ACCT=123456789012
NAME=es-intake-$$
IMAGE=local/busybox:latest
# the socket where nobody can reach it ($WORK is 0700)
SOCKDIR=$(mktemp -d /tmp/es-intake-sock-XXXXXX)
chmod 755 "$SOCKDIR"
PROXY=$SOCKDIR/docker.sock
HEC_PID=
it_cleanup_hook() {
  it_kill "$HEC_PID"
  it_rm_containers "name=$NAME"
  rm -rf "$SOCKDIR"
}
it_endpoint
it_aws_env "$STATE" 1

# d ARGS...: the docker CLI through the agent's socket, as root
d() { DOCKER_HOST=unix://$PROXY command docker "$@"; }
# d_nobody ARGS...: the same as uid/gid 65534, no other group
NOBODY_CFG=$SOCKDIR/nobody-docker
mkdir -p "$NOBODY_CFG"
chown 65534:65534 "$NOBODY_CFG"
d_nobody() {
  setpriv --reuid 65534 --regid 65534 --clear-groups \
    env HOME="$NOBODY_CFG" DOCKER_CONFIG="$NOBODY_CFG" DOCKER_HOST="unix://$PROXY" docker "$@"
}
# exists NAME: whether the test engine has a container of that name
exists() { [[ -n $(command docker -H "$ES_TEST_DOCKER_HOST" ps -aq --filter "name=^$1\$") ]]; }

APP_ROLE=arn:aws:iam::$ACCT:role/intake-app-web
PASSED_ROLE=arn:aws:iam::$ACCT:role/intake-passed
ROLE=arn:aws:iam::$ACCT:role/intake-exec
BARE=arn:aws:iam::$ACCT:role/intake-bare
say "starting the agent with its Docker socket (group nogroup) and an allow-list for nobody"
it_start_agent --mode embedded --docker-proxy "$PROXY" --docker-proxy-group 65534 \
  --docker-roles "uid:65534=arn:aws:iam::$ACCT:role/intake-app-*;gid:65534=arn:aws:iam::$ACCT:user/alice"

say "secrets: an SSM SecureString, a Secrets Manager secret (json-key), a splunk token"
V_DB="db-$RANDOM$RANDOM"
V_PW="pw-$RANDOM$RANDOM"
V_TOK="tok-$RANDOM$RANDOM"
aws ssm put-parameter --name /intake/db --type SecureString --value "$V_DB" >/dev/null
aws ssm put-parameter --name /intake/splunk_token --type SecureString --value "$V_TOK" >/dev/null
SM_ARN=$(aws secretsmanager create-secret --name intake/app \
  --secret-string "{\"username\":\"app\",\"password\":\"$V_PW\"}" --query ARN --output text)
V_EXP="exp-$RANDOM$RANDOM"
aws ssm put-parameter --name /intake/exp/db/user --type SecureString --value "$V_EXP" >/dev/null
aws ssm put-parameter --name /intake/exp/host --type String --value db.example >/dev/null
READ='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:GetParameters","ssm:GetParametersByPath","secretsmanager:GetSecretValue","kms:Decrypt"],"Resource":"*"}]}'
for r in intake-exec intake-app-web intake-passed intake-bare; do create_exec_role "$r"; done
for r in intake-exec intake-app-web intake-passed; do
  aws iam put-role-policy --role-name "$r" --policy-name read --policy-document "$READ"
done
# alice (the embedded IAM user nobody's group maps to) may pass intake-passed only
aws iam create-user --user-name alice >/dev/null
aws iam put-user-policy --user-name alice --policy-name pass --policy-document \
  "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"iam:PassRole\",\"Resource\":\"$PASSED_ROLE\",\"Condition\":{\"StringEquals\":{\"iam:PassedToService\":\"ecs-tasks.amazonaws.com\"}}}]}"

SECRET_LABELS=(--label "ecs-secrets.secret.DB=/intake/db"
  --label "ecs-secrets.secret.PW=$SM_ARN:password::")
# shellcheck disable=SC2016 # expanded by the container's shell
PRINT='echo "DB=$DB PW=$PW"'

say "docker run: the values in the container; the secret overrides -e DB"
out=$(d run --rm --network none --name "$NAME-run" -e DB=mine -e KEEP=kept \
  --label "ecs-secrets.execution-role=$ROLE" "${SECRET_LABELS[@]}" "$IMAGE" \
  sh -c "$PRINT; echo KEEP=\$KEEP") || fail "docker run with secret labels: $out"
eq "$out" "DB=$V_DB PW=$V_PW
KEEP=kept" "what the container printed"
grep -qE "Docker socket: uid 0 created container $NAME-run \(task [0-9a-f]{32}\) with role $ROLE: variable DB from arn:aws:ssm:us-east-1:$ACCT:parameter/intake/db version 1 fingerprint hmac-sha256:[0-9a-f]{32}; variable PW from $SM_ARN version [0-9a-f-]{36} fingerprint hmac-sha256:[0-9a-f]{32}$" "$LOG" ||
  fail "no audit line for $NAME-run"

say "ecs-secrets.log-secret.splunk-token reaches a loopback HEC receiver"
HEC_PORT=$(it_free_port)
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
d run -d --network none --name "$NAME-splunk" --log-driver splunk \
  --log-opt "splunk-url=http://127.0.0.1:$HEC_PORT" --log-opt splunk-verify-connection=false \
  --log-opt splunk-format=raw --label "ecs-secrets.execution-role=$ROLE" \
  --label ecs-secrets.log-secret.splunk-token=/intake/splunk_token \
  "$IMAGE" sh -c 'echo to-splunk; sleep 600' >/dev/null || fail "docker run with a log secret"
for _ in $(seq 80); do [[ -s $WORK/hec.log ]] && break; sleep 0.25; done
eq "$(head -1 "$WORK/hec.log" 2>/dev/null)" "Splunk $V_TOK" "the HEC receiver's Authorization"
d rm -f "$NAME-splunk" >/dev/null

say "ecs-secrets.task-definition: a registered definition's container"
aws ecs register-task-definition --family intake-td --execution-role-arn "$ROLE" \
  --container-definitions "[{\"name\":\"app\",\"image\":\"$IMAGE\",\"secrets\":[{\"name\":\"DB\",\"valueFrom\":\"/intake/db\"}]}]" >/dev/null
# shellcheck disable=SC2016 # expanded by the container's shell
out=$(d run --rm --network none --name "$NAME-td" --label ecs-secrets.task-definition=intake-td:1 \
  --label ecs-secrets.container=app "$IMAGE" sh -c 'echo "DB=$DB"') || fail "docker run -td: $out"
eq "$out" "DB=$V_DB" "the registered definition's secret"

say "ecs-secrets.expand.*: a JSON secret's keys and an SSM path's parameters as variables"
# shellcheck disable=SC2016 # expanded by the container's shell
EXP_PRINT='echo "$APP_username $APP_password $CFG_db_user $CFG_host"'
out=$(d run --rm --network none --name "$NAME-exp" -e CFG_host=mine \
  --label "ecs-secrets.execution-role=$ROLE" --label "ecs-secrets.expand.APP_=intake/app" \
  --label ecs-secrets.expand.CFG_=/intake/exp/ "$IMAGE" sh -c "$EXP_PRINT") ||
  fail "docker run with expansion labels: $out"
eq "$out" "app $V_PW $V_EXP db.example" "the expanded variables (over -e CFG_host)"
grep -qE "Docker socket: uid 0 created container $NAME-exp \(task [0-9a-f]{32}\) with role $ROLE: variables ecs-secrets.expand.APP_ from $SM_ARN version [0-9a-f-]{36} fingerprint hmac-sha256:[0-9a-f]{32}; variables ecs-secrets.expand.CFG_ from arn:aws:ssm:us-east-1:$ACCT:parameter/intake/exp version set-sha256:[0-9a-f]{32} fingerprint hmac-sha256:[0-9a-f]{32}$" "$LOG" ||
  fail "no audit line for $NAME-exp: $(grep "$NAME-exp" "$LOG")"
aws ecs register-task-definition --family intake-exp --execution-role-arn "$ROLE" \
  --container-definitions "[{\"name\":\"app\",\"image\":\"$IMAGE\",\"dockerLabels\":{\"ecs-secrets.expand.CFG_\":\"/intake/exp/\"}}]" >/dev/null
# shellcheck disable=SC2016 # expanded by the container's shell
out=$(d run --rm --network none --name "$NAME-exp-td" --label ecs-secrets.task-definition=intake-exp \
  --label ecs-secrets.container=app "$IMAGE" sh -c 'echo "$CFG_db_user $CFG_host"') ||
  fail "docker run -td with an expansion: $out"
eq "$out" "$V_EXP db.example" "a registered definition's expansion"

say "ecs-secrets.file-policy.*=refresh: refused with the reason, nothing created (frozen files: test_docker_files.sh)"
rc=0
out=$(d run --rm --network none --name "$NAME-file" --label "ecs-secrets.execution-role=$ROLE" \
  --label ecs-secrets.secret.DB=/intake/db --label ecs-secrets.file.DB=/run/secrets/db \
  --label ecs-secrets.file-policy.DB=refresh "$IMAGE" true 2>&1) || rc=$?
[[ $rc -ne 0 ]] || fail "a refreshed secret file ran"
grep -qF "docker: Error response from daemon: label ecs-secrets.file-policy.DB: only frozen secret files are served on the Docker socket" <<<"$out" ||
  fail "docker run printed: $out"
! exists "$NAME-file" || fail "a container was created for the refreshed secret file"

say "a role missing permissions: every missing one printed, nothing created"
rc=0
out=$(d run --rm --network none --name "$NAME-bare" --label "ecs-secrets.execution-role=$BARE" \
  "${SECRET_LABELS[@]}" "$IMAGE" true 2>&1) || rc=$?
[[ $rc -ne 0 ]] || fail "a role without permissions ran: $out"
want="docker: Error response from daemon: ResourceInitializationError: unable to pull secrets or registry auth: the execution role $BARE is missing 2 permissions: ssm:GetParameters on arn:aws:ssm:us-east-1:$ACCT:parameter/intake/db; secretsmanager:GetSecretValue on $SM_ARN"
grep -qF -- "$want" <<<"$out" || fail "docker run printed: $out"
! exists "$NAME-bare" || fail "a container was created for the refused launch"

say "labels that cannot be read: 400, nothing created"
rc=0
out=$(d run --rm --network none --name "$NAME-bad" --label "ecs-secrets.secret.DB=/intake/db" \
  "$IMAGE" true 2>&1) || rc=$?
[[ $rc -ne 0 ]] || fail "labels without a role ran"
grep -qF "docker: Error response from daemon: labels ecs-secrets.secret.*, ecs-secrets.log-secret.* and ecs-secrets.expand.* need ecs-secrets.execution-role=<role ARN>" <<<"$out" ||
  fail "docker run printed: $out"
! exists "$NAME-bad" || fail "a container was created for the bad labels"

say "nobody: a role outside its allow-list is refused"
eq "$(stat -c '%a %g' "$PROXY")" "660 65534" "the socket's mode and group"
d_nobody ps >/dev/null || fail "nobody cannot use the socket"
rc=0
out=$(d_nobody run --rm --network none --name "$NAME-nobody" --label "ecs-secrets.execution-role=$ROLE" \
  "${SECRET_LABELS[@]}" "$IMAGE" true 2>&1) || rc=$?
[[ $rc -ne 0 ]] || fail "nobody passed a role outside its allow-list"
grep -qF "docker: Error response from daemon: uid 65534 (as arn:aws:iam::$ACCT:user/alice) may not name the execution role $ROLE: User: arn:aws:iam::$ACCT:user/alice is not authorized to perform: iam:PassRole on resource: $ROLE" <<<"$out" ||
  fail "docker run as nobody printed: $out"
! exists "$NAME-nobody" || fail "a container was created for nobody's refused launch"
grep -q "Docker socket: uid 65534: create of $NAME-nobody refused (403)" "$LOG" ||
  fail "no refusal line for nobody"

say "nobody: a role its pattern matches runs; a role alice may pass runs"
out=$(d_nobody run --rm --network none --name "$NAME-nobody-ok" \
  --label "ecs-secrets.execution-role=$APP_ROLE" "${SECRET_LABELS[@]}" "$IMAGE" sh -c "$PRINT") ||
  fail "nobody with an allowed role: $out"
eq "$out" "DB=$V_DB PW=$V_PW" "nobody's container (pattern)"
out=$(d_nobody run --rm --network none --name "$NAME-nobody-alice" \
  --label "ecs-secrets.execution-role=$PASSED_ROLE" "${SECRET_LABELS[@]}" "$IMAGE" sh -c "$PRINT") ||
  fail "nobody with a role alice may pass: $out"
eq "$out" "DB=$V_DB PW=$V_PW" "nobody's container (alice's PassRole)"
grep -q "Docker socket: uid 65534 created container $NAME-nobody-alice (task [0-9a-f]*) with role $PASSED_ROLE:" "$LOG" ||
  fail "no audit line for nobody's launch"

say "Compose (docker-compose): a service gets its values; a missing permission is printed"
command -v docker-compose >/dev/null || fail "docker-compose is not installed (scripts/deps.sh)"
mkdir -p "$WORK/compose"
compose_file() { # compose_file ROLE: a one-service project whose role is ROLE
  cat >"$WORK/compose/docker-compose.yml" <<EOF
version: "2.4"
services:
  app:
    image: $IMAGE
    network_mode: none
    command: ["sh", "-c", "echo DB=\$\$DB PW=\$\$PW"]
    labels:
      ecs-secrets.execution-role: "$1"
      ecs-secrets.secret.DB: /intake/db
      ecs-secrets.secret.PW: "$SM_ARN:password::"
EOF
}
compose() { (cd "$WORK/compose" && DOCKER_HOST=unix://$PROXY docker-compose -p "$NAME" --no-ansi "$@"); }
compose_file "$ROLE"
out=$(compose up --no-color 2>&1) || fail "docker-compose up: $out"
grep -qF "| DB=$V_DB PW=$V_PW" <<<"$out" || fail "docker-compose up printed: $out"
compose down >/dev/null 2>&1 || fail "docker-compose down"
compose_file "$BARE"
rc=0
out=$(compose up --no-color 2>&1) || rc=$?
[[ $rc -ne 0 ]] || fail "docker-compose up with a role without permissions succeeded: $out"
grep -qF "ResourceInitializationError: unable to pull secrets or registry auth: the execution role $BARE is missing 2 permissions: ssm:GetParameters on arn:aws:ssm:us-east-1:$ACCT:parameter/intake/db; secretsmanager:GetSecretValue on $SM_ARN" <<<"$out" ||
  fail "docker-compose up printed: $out"
[[ -z $(command docker -H "$ES_TEST_DOCKER_HOST" ps -aq --filter "label=com.docker.compose.project=$NAME") ]] ||
  fail "a container was created for the refused Compose service"
compose down >/dev/null 2>&1 || true

say "a create without labels is not touched (docker run still works through the socket)"
eq "$(d run --rm --network none "$IMAGE" echo plain)" plain "a plain docker run"

say "/metrics counts the socket's creates by outcome, its requests and bytes"
metrics=$(curl -sf "$URL/metrics") || fail "no /metrics"
grep -qx 'ecs_agent_docker_socket_creates_total{outcome="injected"} 8' <<<"$metrics" &&
  grep -qx 'ecs_agent_docker_socket_creates_total{outcome="refused"} 5' <<<"$metrics" &&
  grep -qE '^ecs_agent_docker_socket_requests_total [1-9]' <<<"$metrics" &&
  grep -qE '^ecs_agent_docker_socket_bytes_total\{direction="from_docker"\} [1-9]' <<<"$metrics" &&
  grep -qE '^ecs_agent_docker_socket_hijacked_total [1-9]' <<<"$metrics" ||
  fail "/metrics: $(grep docker_socket <<<"$metrics")"

say "no value in /metrics or in describe-tasks of the socket's tasks"
answers=$metrics
for st in RUNNING STOPPED; do
  arns=$(aws ecs list-tasks --family ecs-secrets-docker --desired-status "$st" --query taskArns --output text)
  # shellcheck disable=SC2086 # one ARN a word
  [[ -z $arns || $arns == None ]] || answers+=$(aws ecs describe-tasks --tasks $arns --output json)
done
grep -q '"startedBy": "docker:0"' <<<"$answers" || fail "describe-tasks shows no task of the socket"
for v in "$V_DB" "$V_PW" "$V_TOK" "$V_EXP"; do
  if grep -qF -- "$v" <<<"$answers"; then fail "the value $v is in /metrics or describe-tasks"; fi
done

it_stop_agent
grep -q "Docker socket: [0-9]* creates, 8 given secrets, 5 refused" "$LOG" ||
  fail "the intake's stop line: $(grep 'given secrets' "$LOG")"
for v in "$V_DB" "$V_PW" "$V_TOK" "$V_EXP"; do
  if grep -rqaF -- "$v" "$LOG" "$STATE"; then fail "the value $v is in the agent's log or state"; fi
done
say "PASS"

#!/usr/bin/env bash
# Issue 17: remote listeners speak TLS. Two agents on loopback and the test engine:
#   - refusals: a listener off loopback without a certificate and key, or with one of the
#     two, is refused at start (exit 2) with the reason; a key that is not the certificate's
#     is refused too (exit 1, the reason logged);
#   - agent A, embedded mode, serves HTTPS on 127.0.0.1:PORT_A with a self-signed
#     certificate (openssl req, IP SAN 127.0.0.1): the real aws CLI with AWS_CA_BUNDLE (and
#     --ca-bundle) puts a SecureString parameter and a secret through it, creates the execution
#     role, and runs a task through A's own ECS API over TLS (A's resolver reaches its store
#     on its own unix socket, STATE/self.sock); without the CA the CLI refuses the
#     certificate, and plain HTTP is told to use https;
#   - agent B, mode aws, its endpoints (ECS_SECRETS_ENDPOINT_*) at https://127.0.0.1:PORT_A,
#     ECS_SECRETS_CA_FILE = the certificate, A's administrator key as its static keys: a task
#     run through B gets the parameter and the secret from A (AssumeRole of the execution
#     role, GetParameters, GetSecretValue, all over TLS) in its container's environment;
#   - no value in either log; A counted the handshakes.
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir tls
IT_FAIL_HEADER="---- agent A log ----"
IT_TASK_SLEEP=0.25
CLUSTER=tlsa
it_aws_env "$STATE"

CERT=$WORK/cert.pem KEY=$WORK/key.pem
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -days 2 -keyout "$KEY" -out "$CERT" 2>/dev/null || fail "openssl req"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/other-key.pem" 2>/dev/null

B_PID='' B_STATE=$WORK/state-b B_LOG=$WORK/agent-b.log
it_cleanup_hook() {
  it_kill "$B_PID"
  it_rm_containers "label=com.amazonaws.ecs.cluster=tlsb"
}
it_on_fail() {
  it_show_log
  echo "---- agent B log ----" >&2
  tail -n 40 "$B_LOG" >&2 2>/dev/null || true
}

say "refusals at start"
refused() { # WANT-EXIT WANT-TEXT ARGS...
  local want=$1 text=$2 rc=0 out
  shift 2
  out=$("$ES_AGENT_BIN" --config /dev/null --state-dir "$WORK/refused" \
    --docker-host "$ES_TEST_DOCKER_HOST" "$@" 2>&1) || rc=$?
  [[ $rc -eq $want ]] || fail "$* exited $rc, wanted $want: $out"
  grep -qF -- "$text" <<<"$out" || fail "$*: wanted '$text' in: $out"
}
refused 2 "configuration error: --listen: ECS_SECRETS_LISTEN 0.0.0.0:4577 is not loopback: it needs ECS_SECRETS_TLS_CERT and ECS_SECRETS_TLS_KEY (answers carry secret values)" \
  --listen 0.0.0.0:4577
refused 2 "ECS_SECRETS_TLS_CERT is set but ECS_SECRETS_TLS_KEY is not" \
  --listen 0.0.0.0:4577 --tls-cert "$CERT"
refused 2 "ECS_SECRETS_TLS_KEY is set but ECS_SECRETS_TLS_CERT is not" \
  --listen "127.0.0.1:$(it_free_port)" --tls-key "$KEY"
refused 1 "listener TLS (ECS_SECRETS_TLS_CERT, ECS_SECRETS_TLS_KEY): key $WORK/other-key.pem does not belong to the certificate $CERT" \
  --listen "127.0.0.1:$(it_free_port)" --tls-cert "$CERT" --tls-key "$WORK/other-key.pem"
out=$("$ES_AGENT_BIN" --config /dev/null --state-dir "$WORK/refused" --docker-host "$ES_TEST_DOCKER_HOST" \
  --listen 0.0.0.0:4577 --tls-cert "$CERT" --tls-key "$KEY" --check-config 2>&1) ||
  fail "--check-config with TLS: $out"
grep -qF "# check: listener 0.0.0.0:4577 is not loopback; scheme https (TLS 1.2 or later), certificate $CERT: subject /CN=127.0.0.1, names IP:127.0.0.1" <<<"$out" ||
  fail "--check-config does not show the scheme: $out"

say "agent A: embedded, HTTPS on 127.0.0.1"
it_endpoint
URL=https://127.0.0.1:$PORT
PORT_A=$PORT URL_A=$URL
it_start_agent --cluster tlsa --tls-cert "$CERT" --tls-key "$KEY" --log-level debug
grep -qF "use them with: AWS_CA_BUNDLE=$CERT AWS_SHARED_CREDENTIALS_FILE=$STATE/aws-credentials" "$LOG" ||
  fail "no usage line with the CA in the log"
grep -qF -- "--endpoint-url $URL_A" "$LOG" || fail "the usage line does not say https"
export AWS_CA_BUNDLE=$CERT

# without the CA the CLI refuses the certificate; --ca-bundle works as the variable does
rc=0
out=$(env -u AWS_CA_BUNDLE "$IT_AWS_BIN" --profile ecs-secrets-agent --endpoint-url "$URL_A" \
  sts get-caller-identity 2>&1) || rc=$?
if [[ $rc -eq 0 ]] || ! grep -qiE "ssl|certificate" <<<"$out"; then
  fail "a CLI without the CA: exit $rc: $out"
fi
eq "$(env -u AWS_CA_BUNDLE "$IT_AWS_BIN" --profile ecs-secrets-agent --endpoint-url "$URL_A" \
  --ca-bundle "$CERT" sts get-caller-identity --query Arn --output text)" \
  "arn:aws:iam::123456789012:root" "--ca-bundle"
# plain HTTP to the TLS port
out=$(curl -sS "http://127.0.0.1:$PORT_A/" -d x 2>&1 || true)
grep -qF "This listener speaks HTTPS (TLS) only: use an https:// endpoint." <<<"$out" ||
  fail "plain HTTP to the TLS listener: $out"
# GET /metrics over TLS with curl, verified
out=$(curl -sS --cacert "$CERT" "https://127.0.0.1:$PORT_A/metrics" 2>&1) || fail "curl /metrics: $out"
grep -q '^ecs_agent_' <<<"$out" || fail "GET /metrics over TLS: $out"

aws ssm put-parameter --name /tls/db_password --type SecureString --value Tls-Param-Value-5c1e >/dev/null
eq "$(aws ssm get-parameter --name /tls/db_password --with-decryption --query Parameter.Value --output text)" \
  Tls-Param-Value-5c1e "the parameter through A"
SECRET_ARN=$(aws secretsmanager create-secret --name tls-api-key --secret-string Tls-Secret-Value-9d2f \
  --query ARN --output text)
create_exec_role exec
aws iam put-role-policy --role-name exec --policy-name tls --policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:GetParameters","Resource":"arn:aws:ssm:us-east-1:123456789012:parameter/tls/*"},{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:us-east-1:123456789012:secret:tls-api-key-*"}]}'
# shellcheck disable=SC2016 # $P and $S are the container's shell's
TASKDEF='[{"name":"c","image":"local/busybox:latest","stopTimeout":1,"command":["sh","-c","echo P=$P S=$S; sleep 60"],"secrets":[{"name":"P","valueFrom":"/tls/db_password"},{"name":"S","valueFrom":"'$SECRET_ARN'"}]}]'

say "a task through A's ECS API over TLS"
aws ecs register-task-definition --family tls --network-mode none \
  --execution-role-arn arn:aws:iam::123456789012:role/exec --container-definitions "$TASKDEF" >/dev/null
T=$(aws ecs run-task --cluster tlsa --task-definition tls --query 'tasks[0].taskArn' --output text)
s=$(wait_status "$T" RUNNING STOPPED)
[[ $s == RUNNING ]] || fail "A's task $s: $(aws ecs describe-tasks --cluster tlsa --tasks "$T" --query 'tasks[0].stoppedReason' --output text)"
C=$(aws ecs describe-tasks --cluster tlsa --tasks "$T" --query 'tasks[0].containers[0].runtimeId' --output text)
wait_container_log "$C" 40 0.25 'P=' || true
out=$(command docker -H "$ES_TEST_DOCKER_HOST" logs "$C" 2>&1)
eq "$out" "P=Tls-Param-Value-5c1e S=Tls-Secret-Value-9d2f" "A's container"
grep -qF "the agent's own calls to the embedded endpoints go to the unix socket $STATE/self.sock (mode 0600" "$LOG" ||
  fail "A does not say where its own calls go"
aws ecs stop-task --cluster tlsa --task "$T" >/dev/null

say "agent B: mode aws, its endpoints A over TLS"
AKID=$(sed -n 's/^aws_access_key_id = //p' "$STATE/aws-credentials")
ADMIN_SECRET=$(sed -n 's/^aws_secret_access_key = //p' "$STATE/aws-credentials")
mkdir -m 700 "$B_STATE"
PORT_B=$(it_free_port)
URL_B=http://127.0.0.1:$PORT_B
# (the preflight is on: in aws mode it asks iam:SimulatePrincipalPolicy, which A's embedded IAM
# answers, with DescribeParameters / DescribeSecret for the keys)
ECS_SECRETS_ACCESS_KEY_ID=$AKID ECS_SECRETS_SECRET_ACCESS_KEY=$ADMIN_SECRET \
  ECS_SECRETS_ENDPOINT_SSM=$URL_A ECS_SECRETS_ENDPOINT_SECRETSMANAGER=$URL_A \
  ECS_SECRETS_ENDPOINT_KMS=$URL_A ECS_SECRETS_ENDPOINT_STS=$URL_A ECS_SECRETS_ENDPOINT_IAM=$URL_A \
  ECS_SECRETS_CA_FILE=$CERT \
  "$ES_AGENT_BIN" --mode aws --cluster tlsb --state-dir "$B_STATE" \
  --listen "127.0.0.1:$PORT_B" --docker-host "$ES_TEST_DOCKER_HOST" --log-level debug >>"$B_LOG" 2>&1 &
B_PID=$!
for ((i = 0; i < 100; i++)); do
  grep -q "ready: " "$B_LOG" 2>/dev/null && break
  kill -0 "$B_PID" 2>/dev/null || fail "agent B exited during start"
  sleep 0.1
done
grep -q "ready: " "$B_LOG" || fail "agent B did not become ready"
grep -qF "https:// verified with the CA file $CERT" "$B_LOG" || fail "B does not name its CA file"
b_aws() {
  AWS_SHARED_CREDENTIALS_FILE=$B_STATE/aws-credentials AWS_CONFIG_FILE=$B_STATE/aws-config \
    it_aws_cli --profile ecs-secrets-agent --endpoint-url "$URL_B" --output json "$@"
}
b_aws ecs register-task-definition --family tls --network-mode none \
  --execution-role-arn arn:aws:iam::123456789012:role/exec --container-definitions "$TASKDEF" >/dev/null
TB=$(b_aws ecs run-task --cluster tlsb --task-definition tls --query 'tasks[0].taskArn' --output text)
for ((i = 0; i < 120; i++)); do
  s=$(b_aws ecs describe-tasks --cluster tlsb --tasks "$TB" --query 'tasks[0].lastStatus' --output text)
  [[ $s == RUNNING || $s == STOPPED ]] && break
  sleep 0.25
done
[[ $s == RUNNING ]] || fail "B's task $s: $(b_aws ecs describe-tasks --cluster tlsb --tasks "$TB" --query 'tasks[0].stoppedReason' --output text)"
CB=$(b_aws ecs describe-tasks --cluster tlsb --tasks "$TB" --query 'tasks[0].containers[0].runtimeId' --output text)
wait_container_log "$CB" 40 0.25 'P=' || true
out=$(command docker -H "$ES_TEST_DOCKER_HOST" logs "$CB" 2>&1)
eq "$out" "P=Tls-Param-Value-5c1e S=Tls-Secret-Value-9d2f" "B's container, its values from A over TLS"
b_aws ecs stop-task --cluster tlsb --task "$TB" >/dev/null
grep -qF "preflight of arn:aws:iam::123456789012:role/exec: simulate -> done" "$B_LOG" ||
  fail "B's preflight did not simulate against A's IAM"

say "agent B's preflight against A's IAM: a role missing two permissions is refused with both"
create_exec_role thin
aws iam put-role-policy --role-name thin --policy-name tls --policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"},{"Effect":"Deny","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:us-east-1:123456789012:secret:tls-api-key-*"}]}'
b_aws ecs register-task-definition --family thin --network-mode none \
  --execution-role-arn arn:aws:iam::123456789012:role/thin --container-definitions "$TASKDEF" >/dev/null
TT=$(b_aws ecs run-task --cluster tlsb --task-definition thin --query 'tasks[0].taskArn' --output text)
for ((i = 0; i < 120; i++)); do
  s=$(b_aws ecs describe-tasks --cluster tlsb --tasks "$TT" --query 'tasks[0].lastStatus' --output text)
  [[ $s == STOPPED ]] && break
  sleep 0.25
done
reason=$(b_aws ecs describe-tasks --cluster tlsb --tasks "$TT" --query 'tasks[0].stoppedReason' --output text)
eq "$reason" "ResourceInitializationError: unable to pull secrets or registry auth: the execution role arn:aws:iam::123456789012:role/thin is missing 2 permissions: ssm:GetParameters on arn:aws:ssm:us-east-1:123456789012:parameter/tls/db_password; secretsmanager:GetSecretValue on $SECRET_ARN" \
  "B's refusal, decided by A's simulator"
eq "$(command docker -H "$ES_TEST_DOCKER_HOST" ps -aq --filter "label=com.amazonaws.ecs.task-arn=$TT" | wc -l)" 0 \
  "containers of the refused task"
it_kill "$B_PID"
B_PID=

say "no values in the logs; A counted its handshakes"
it_stop_agent
for f in "$LOG" "$B_LOG"; do
  ! grep -qE "Tls-Param-Value-5c1e|Tls-Secret-Value-9d2f|$ADMIN_SECRET" "$f" || fail "a secret value in $f"
done
line=$(grep -F "listener TLS: " "$LOG" | grep handshakes | tail -1)
[[ $line =~ listener\ TLS:\ ([0-9]+)\ handshakes,\ ([0-9]+)\ failed\ or\ timed\ out,\ ([0-9]+)\ plain ]] ||
  fail "no TLS counts at A's stop: $line"
((BASH_REMATCH[1] >= 10)) || fail "A counted ${BASH_REMATCH[1]} handshakes: $line"
((BASH_REMATCH[3] == 1)) || fail "A counted ${BASH_REMATCH[3]} plain HTTP requests: $line"
echo "PASS: test_tls_store in $(($(date +%s) - T0)) s: $line"

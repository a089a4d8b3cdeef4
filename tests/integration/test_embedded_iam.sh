#!/usr/bin/env bash
# The embedded IAM and STS, and the authorisation of the embedded SSM / Secrets Manager / KMS
# calls, driven by the real aws CLI (/usr/bin/aws) as a user would:
#   - iam create-role (trust policy from a file), attach-role-policy with the AWS managed
#     AmazonECSTaskExecutionRolePolicy, sts assume-role, sts get-caller-identity;
#   - with the session's credentials: ssm get-parameters --with-decryption and
#     secretsmanager get-secret-value are denied with AWS's wording (S7);
#   - iam put-role-policy with the seed's policy: exactly those reads are then allowed;
#     without kms:Decrypt the customer managed key's parameter is denied naming kms:Decrypt;
#   - a Secrets Manager resource policy naming the role grants it; a KMS key policy that no
#     longer delegates to IAM refuses the role's kms:Decrypt;
#   - the session token must be sent and match; IAM errors come back with IAM's codes;
#   - a role declared in <config dir>/roles/*.json is served, read-only; a bad role file stops
#     the start with the file named;
#   - sessions survive a restart; their secrets and tokens are not stored in the clear.
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST (READY waits for Docker).
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir iam
ETC=$WORK/etc
mkdir -m 700 "$ETC" "$ETC/roles"
: >"$ETC/agent.conf"
IT_FAIL_HEADER="---- agent log ----"
it_endpoint
it_aws_env "$STATE" 1

start_agent() { it_start_agent --config "$ETC/agent.conf" --region us-east-2 --log-level debug; }

# the assumed-role session whose credentials are in $WORK/creds.json
as_task() {
  env AWS_ACCESS_KEY_ID="$(jq -r .Credentials.AccessKeyId "$WORK/creds.json")" \
    AWS_SECRET_ACCESS_KEY="$(jq -r .Credentials.SecretAccessKey "$WORK/creds.json")" \
    AWS_SESSION_TOKEN="${TOKEN_OVERRIDE-$(jq -r .Credentials.SessionToken "$WORK/creds.json")}" \
    AWS_REGION=us-east-2 "$IT_AWS_BIN" --endpoint-url "$URL" --output json "$@"
}
# expect_error CODE cmd...: fails with that AWS error code; the message is left in $ERR (this
# test's own, replacing lib.sh's: any command, as the administrator or as the task)
expect_error() {
  local code=$1
  shift
  if ERR=$("$@" 2>&1); then fail "$* succeeded; wanted $code"; fi
  grep -qF "($code)" <<<"$ERR" || fail "$*: wanted $code, got: $ERR"
}
has() { grep -qF -- "$2" <<<"$1" || fail "$3: '$2' not in: $1"; }

ACCT=123456789012
EXEC_POLICY=arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy
cat >"$WORK/trust.json" <<'JSON'
{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
  ]
}
JSON
cat >"$ETC/roles/file-role.json" <<JSON
{
  "RoleName": "file-exec",
  "Description": "declared in a file",
  "AssumeRolePolicyDocument": $(cat "$WORK/trust.json"),
  "Policies": [{"PolicyName": "read-url", "PolicyDocument": {"Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "ssm:GetParameters",
                   "Resource": "arn:aws:ssm:us-east-2:$ACCT:parameter/app/url"}]}}],
  "ManagedPolicyArns": ["$EXEC_POLICY"]
}
JSON

say "starting the agent on $URL"
start_agent

say "the store, as the administrator"
KEY=$(aws kms create-key --description app --query KeyMetadata.KeyId --output text)
KEY_ARN=arn:aws:kms:us-east-2:$ACCT:key/$KEY
aws ssm put-parameter --name /test/database_password --type SecureString --key-id "$KEY" \
  --value Db-Pass-9c1e >/dev/null
aws ssm put-parameter --name /test/other --type SecureString --value Other-9c1e >/dev/null
aws ssm put-parameter --name /app/url --type String --value https://app.test >/dev/null
SECRET_ARN=$(aws secretsmanager create-secret --name test/api_key --kms-key-id "$KEY" \
  --secret-string Api-Key-9c1e --query ARN --output text)
PARAM_ARN=arn:aws:ssm:us-east-2:$ACCT:parameter/test/database_password

say "IAM: roles and policies"
OUT=$(aws iam create-role --role-name exec --assume-role-policy-document "file://$WORK/trust.json")
eq "$(jq -r .Role.Arn <<<"$OUT")" "arn:aws:iam::$ACCT:role/exec" "role ARN"
[[ $(jq -r .Role.RoleId <<<"$OUT") =~ ^AROA[A-Z2-7]{17}$ ]] || fail "role id: $OUT"
eq "$(jq -r '.Role.AssumeRolePolicyDocument.Statement[0].Principal.Service' <<<"$OUT")" \
  ecs-tasks.amazonaws.com "trust policy decoded by the CLI"
expect_error EntityAlreadyExists aws iam create-role --role-name exec \
  --assume-role-policy-document "file://$WORK/trust.json"
expect_error NoSuchEntity aws iam get-role --role-name nobody
expect_error MalformedPolicyDocument aws iam create-role --role-name bad \
  --assume-role-policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}'
expect_error ValidationError aws iam create-role --role-name 'no spaces' \
  --assume-role-policy-document "file://$WORK/trust.json"
aws iam attach-role-policy --role-name exec --policy-arn "$EXEC_POLICY"
eq "$(aws iam list-attached-role-policies --role-name exec --query 'AttachedPolicies[0].PolicyName' --output text)" \
  AmazonECSTaskExecutionRolePolicy "attached"
eq "$(aws iam get-policy-version --policy-arn "$EXEC_POLICY" --version-id v1 \
  --query 'PolicyVersion.Document.Statement[0].Action' --output text)" \
  "ecr:GetAuthorizationToken	ecr:BatchCheckLayerAvailability	ecr:GetDownloadUrlForLayer	ecr:BatchGetImage	logs:CreateLogStream	logs:PutLogEvents" \
  "the managed policy's real content"
eq "$(aws iam list-roles --query 'Roles[].RoleName' --output text)" "exec	file-exec" "list-roles"

say "STS: assume-role as the ECS control plane"
aws sts assume-role --role-arn "arn:aws:iam::$ACCT:role/exec" --role-session-name task-1 >"$WORK/creds.json"
[[ $(jq -r .Credentials.AccessKeyId "$WORK/creds.json") =~ ^ASIA ]] || fail "not an ASIA key"
eq "$(jq -r .AssumedRoleUser.Arn "$WORK/creds.json")" "arn:aws:sts::$ACCT:assumed-role/exec/task-1" "session ARN"
expect_error ValidationError aws sts assume-role --role-arn "arn:aws:iam::$ACCT:role/exec" \
  --role-session-name t1 --duration-seconds 3601
expect_error AccessDenied aws sts assume-role --role-arn "arn:aws:iam::$ACCT:role/nobody" --role-session-name t1
eq "$(as_task sts get-caller-identity --query Arn --output text)" "arn:aws:sts::$ACCT:assumed-role/exec/task-1" \
  "caller identity of the session"

say "the managed policy alone grants no secret"
expect_error AccessDeniedException as_task ssm get-parameters --names /test/database_password --with-decryption
has "$ERR" "User: arn:aws:sts::$ACCT:assumed-role/exec/task-1 is not authorized to perform: ssm:GetParameters on resource: $PARAM_ARN because no identity-based policy allows the ssm:GetParameters action" "S7 wording"
expect_error AccessDeniedException as_task secretsmanager get-secret-value --secret-id test/api_key
has "$ERR" "secretsmanager:GetSecretValue on resource: $SECRET_ARN" "secret denial"
expect_error AccessDenied as_task iam create-role --role-name escalate \
  --assume-role-policy-document "file://$WORK/trust.json"

say "the seed's inline policy without kms:Decrypt: the customer key is refused"
cat >"$WORK/nokms.json" <<JSON
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
  "Action": ["ssm:GetParameters", "secretsmanager:GetSecretValue"],
  "Resource": ["$PARAM_ARN", "$SECRET_ARN"]}]}
JSON
aws iam put-role-policy --role-name exec --policy-name secrets --policy-document "file://$WORK/nokms.json"
expect_error AccessDeniedException as_task ssm get-parameters --names /test/database_password --with-decryption
has "$ERR" "is not authorized to perform: kms:Decrypt on resource: $KEY_ARN because no identity-based policy allows the kms:Decrypt action" "kms wording"
if grep -qF Db-Pass-9c1e <<<"$ERR"; then fail "the value leaked into the error"; fi

say "the seed's inline policy (S7): exactly its reads are allowed"
cat >"$WORK/seed.json" <<JSON
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
  "Action": ["ssm:GetParameters", "secretsmanager:GetSecretValue", "kms:Decrypt"],
  "Resource": ["$PARAM_ARN", "$SECRET_ARN", "$KEY_ARN"]}]}
JSON
aws iam put-role-policy --role-name exec --policy-name secrets --policy-document "file://$WORK/seed.json"
eq "$(aws iam get-role-policy --role-name exec --policy-name secrets --query 'PolicyDocument.Statement[0].Action[2]' --output text)" \
  kms:Decrypt "get-role-policy decodes the document"
eq "$(as_task ssm get-parameters --names /test/database_password --with-decryption --query 'Parameters[0].Value' --output text)" \
  Db-Pass-9c1e "allowed read"
eq "$(as_task secretsmanager get-secret-value --secret-id "$SECRET_ARN" --query SecretString --output text)" \
  Api-Key-9c1e "allowed secret"
expect_error AccessDeniedException as_task ssm get-parameters --names /test/other --with-decryption
expect_error AccessDeniedException as_task ssm put-parameter --name /test/database_password --type String \
  --value x --overwrite
expect_error DeleteConflict aws iam delete-role --role-name exec

say "resource policies: a secret shared with the role by its resource policy; key policies"
OTHER_ARN=$(aws secretsmanager create-secret --name shared --secret-string Shared-9c1e --query ARN --output text)
expect_error AccessDeniedException as_task secretsmanager get-secret-value --secret-id "$OTHER_ARN"
aws secretsmanager put-resource-policy --secret-id shared --block-public-policy --resource-policy \
  "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::$ACCT:role/exec\"},\"Action\":\"secretsmanager:GetSecretValue\",\"Resource\":\"*\"}]}" >/dev/null
eq "$(as_task secretsmanager get-secret-value --secret-id "$OTHER_ARN" --query SecretString --output text)" \
  Shared-9c1e "granted by the resource policy"
has "$(aws secretsmanager get-resource-policy --secret-id shared --query ResourcePolicy --output text)" \
  "role/exec" "get-resource-policy"
expect_error PublicPolicyException aws secretsmanager put-resource-policy --secret-id shared \
  --block-public-policy --resource-policy \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"secretsmanager:*","Resource":"*"}]}'
has "$(aws kms get-key-policy --key-id "$KEY" --policy-name default --query Policy --output text)" \
  "arn:aws:iam::$ACCT:root" "default key policy"
aws kms put-key-policy --key-id "$KEY" --policy-name default --policy \
  "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::$ACCT:root\"},\"Action\":[\"kms:PutKeyPolicy\",\"kms:GetKeyPolicy\"],\"Resource\":\"*\"}]}"
expect_error AccessDeniedException as_task ssm get-parameters --names /test/database_password --with-decryption
has "$ERR" "because no resource-based policy allows the kms:Decrypt action" "key policy without delegation"
aws kms put-key-policy --key-id "$KEY" --policy-name default --policy \
  "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::$ACCT:root\"},\"Action\":\"kms:*\",\"Resource\":\"*\"}]}"
eq "$(as_task ssm get-parameters --names /test/database_password --with-decryption --query 'Parameters[0].Value' --output text)" \
  Db-Pass-9c1e "delegating again"

say "the session token must be sent and match"
TOKEN_OVERRIDE='' expect_error UnrecognizedClientException as_task ssm get-parameters --names /test/database_password
TOKEN_OVERRIDE=AAAA$(jq -r .Credentials.SessionToken "$WORK/creds.json" | cut -c5-) \
  expect_error UnrecognizedClientException as_task ssm get-parameters --names /test/database_password

say "a role declared in a file"
aws sts assume-role --role-arn "arn:aws:iam::$ACCT:role/file-exec" --role-session-name f1 >"$WORK/creds.json"
eq "$(as_task ssm get-parameters --names /app/url --query 'Parameters[0].Value' --output text)" https://app.test \
  "file role's inline policy"
expect_error AccessDeniedException as_task ssm get-parameters --names /test/other
expect_error UnmodifiableEntity aws iam put-role-policy --role-name file-exec --policy-name x \
  --policy-document "file://$WORK/seed.json"

say "reload (SIGHUP) reads the role files again; a bad file keeps the roles loaded before"
sed 's/"file-exec"/"file-exec-2"/' "$ETC/roles/file-role.json" >"$ETC/roles/second.json"
kill -HUP "$PID"
for ((i = 0; i < 50; i++)); do grep -q "role files reloaded" "$LOG" && break; sleep 0.1; done
grep -q "role files reloaded" "$LOG" || fail "no reload of the role files"
eq "$(aws iam get-role --role-name file-exec-2 --query Role.RoleName --output text)" file-exec-2 "reloaded role"
echo '{"AssumeRolePolicyDocument": 3}' >"$ETC/roles/broken.json"
kill -HUP "$PID"
for ((i = 0; i < 50; i++)); do grep -q "broken.json: " "$LOG" && break; sleep 0.1; done
grep -q "broken.json: AssumeRolePolicyDocument" "$LOG" || fail "the bad file is not named in the log"
eq "$(aws iam get-role --role-name file-exec-2 --query Role.RoleName --output text)" file-exec-2 "roles kept"
rm "$ETC/roles/broken.json" "$ETC/roles/second.json"

say "restart: sessions survive; secrets are stored only wrapped or hashed"
SESSION_SECRET=$(jq -r .Credentials.SecretAccessKey "$WORK/creds.json")
SESSION_TOKEN=$(jq -r .Credentials.SessionToken "$WORK/creds.json")
it_stop_agent
start_agent
eq "$(as_task ssm get-parameters --names /app/url --query 'Parameters[0].Value' --output text)" https://app.test \
  "session after restart"
it_stop_agent
for v in "$SESSION_SECRET" "$SESSION_TOKEN" Db-Pass-9c1e Api-Key-9c1e Shared-9c1e; do
  if grep -rlaF -- "$v" "$STATE" "$LOG"; then fail "'${v:0:6}...' found in the clear"; fi
done

say "a bad role file stops the start, naming the file"
echo '{"RoleName": "x", "Trust": {}}' >"$ETC/roles/zz-bad.json"
if "$ES_AGENT_BIN" --config "$ETC/agent.conf" --state-dir "$STATE" --listen "127.0.0.1:$PORT" \
  --region us-east-2 --docker-host "$ES_TEST_DOCKER_HOST" >"$WORK/bad.log" 2>&1; then fail "the agent started with a bad role file"; fi
grep -qF 'zz-bad.json: unknown member "Trust"' "$WORK/bad.log" || fail "no file-named error: $(cat "$WORK/bad.log")"
say "PASS"

#!/usr/bin/env bash
# The embedded Secrets Manager's regions, GetRandomPassword, tags, BatchGetSecretValue and
# rotation, driven only by the real aws CLI (/usr/bin/aws) and boto3:
#   - the same secret name in two regions holds two values; an ARN of the other region is
#     ResourceNotFoundException;
#   - get-random-password with options, and a validation error;
#   - tag-resource / untag-resource, and the aws: prefix refused;
#   - batch-get-secret-value (a botocore-signed request) by ids (one missing: in Errors) and by filter;
#   - rotate-secret with the built-in rotator: AWSCURRENT changes, AWSPREVIOUS holds the old
#     value, describe-secret shows the rules and dates;
#   - a hook in ECS_SECRETS_ROTATION_DIR run through its four steps (it records them and
#     makes the new version through the CLI itself), and a failing hook that leaves
#     AWSCURRENT where it was and AWSPENDING on the new version;
#   - replication from us-east-1 to eu-west-1 and ap-southeast-2: each replica read with
#     --region, put-secret-value on the primary reaching them, a write to a replica and the
#     deletion of a replicated primary refused, a name taken in the target region, a region
#     removed, a replica promoted by stop-replication-to-replica.
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST (READY waits for Docker).
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir sm-regions
IT_FAIL_HEADER="---- agent log ----"
it_endpoint
it_aws_env "$STATE" 1

HOOKS=$WORK/rotation
mkdir -p "$HOOKS"
# a hook as a rotation Lambda is written: createSecret puts the AWSPENDING version under
# the token, finishSecret moves AWSCURRENT to it; every step is recorded
cat >"$HOOKS/rotator" <<'HOOK'
#!/usr/bin/env bash
set -eu
event=$(cat)
echo "$ES_ROTATION_STEP $event" >>"$(dirname "$0")/steps.log"
cli() { "$(dirname "$0")/../aws-cli" --endpoint-url "$AWS_ENDPOINT_URL" --output text "$@"; }
case $ES_ROTATION_STEP in
createSecret)
  cli secretsmanager put-secret-value --secret-id "$ES_ROTATION_SECRET_ID" \
    --client-request-token "$ES_ROTATION_TOKEN" --secret-string "from-the-hook" \
    --version-stages AWSPENDING >/dev/null ;;
finishSecret)
  cur=$(cli secretsmanager describe-secret --secret-id "$ES_ROTATION_SECRET_ID" \
    --query 'VersionIdsToStages' --output json |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print([k for k,v in d.items() if "AWSCURRENT" in v][0])')
  cli secretsmanager update-secret-version-stage --secret-id "$ES_ROTATION_SECRET_ID" \
    --version-stage AWSCURRENT --move-to-version-id "$ES_ROTATION_TOKEN" \
    --remove-from-version-id "$cur" >/dev/null ;;
esac
HOOK
cat >"$HOOKS/failing" <<'HOOK'
#!/bin/sh
echo "$ES_ROTATION_STEP" >>"$(dirname "$0")/failing.log"
[ "$ES_ROTATION_STEP" = testSecret ] && { echo "the new password does not log in" >&2; exit 1; }
exit 0
HOOK
chmod 0755 "$HOOKS/rotator" "$HOOKS/failing"

say "starting the agent on $URL (rotation hooks in $HOOKS)"
it_start_agent --region us-east-2 --rotation-dir "$HOOKS"

say "the same name in two regions"
EAST=$(aws secretsmanager create-secret --name app/db --secret-string east-value --query ARN --output text)
WEST=$(aws --region eu-west-1 secretsmanager create-secret --name app/db --secret-string west-value --query ARN --output text)
[[ $EAST == arn:aws:secretsmanager:us-east-2:123456789012:secret:app/db-?????? ]] || fail "east ARN $EAST"
[[ $WEST == arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/db-?????? ]] || fail "west ARN $WEST"
eq "$(aws secretsmanager get-secret-value --secret-id app/db --query SecretString --output text)" east-value "home region value"
eq "$(aws --region eu-west-1 secretsmanager get-secret-value --secret-id app/db --query SecretString --output text)" west-value "eu-west-1 value"
expect_error ResourceNotFoundException "Secrets Manager can't find the specified secret." \
  secretsmanager get-secret-value --secret-id "$WEST"
eq "$(aws --region eu-west-1 secretsmanager list-secrets --query 'length(SecretList)' --output text)" 1 "eu-west-1 lists its own"

say "get-random-password"
PW=$(aws secretsmanager get-random-password --password-length 40 --exclude-punctuation --query RandomPassword --output text)
[[ ${#PW} -eq 40 && $PW =~ ^[A-Za-z0-9]+$ ]] || fail "password '$PW'"
PW=$(aws secretsmanager get-random-password --password-length 12 --exclude-characters 'abcdefghijklmnopqrstuvwxyz' \
  --exclude-uppercase --exclude-punctuation --include-space --query RandomPassword --output text)
[[ ${#PW} -eq 12 && $PW =~ ^[0-9\ ]+$ && $PW == *" "* ]] || fail "password '$PW'"
expect_error InvalidParameterException "too short" secretsmanager get-random-password --password-length 3
expect_error ValidationException "4096" secretsmanager get-random-password --password-length 5000

say "tags"
aws secretsmanager tag-resource --secret-id app/db --tags Key=team,Value=a Key=env,Value=prod
aws secretsmanager untag-resource --secret-id app/db --tag-keys env
eq "$(aws secretsmanager describe-secret --secret-id app/db --query 'Tags[].Key' --output text)" team "tags after untag"
expect_error InvalidParameterException "aws:" secretsmanager tag-resource --secret-id app/db --tags Key=aws:x,Value=y
eq "$(aws --region eu-west-1 secretsmanager describe-secret --secret-id app/db --query 'length(Tags)' --output text)" 0 "eu-west-1 untouched"

say "batch-get-secret-value (awscli 2.9 and this botocore predate it: a request signed by botocore)"
aws secretsmanager create-secret --name app/cache --secret-string cache-value >/dev/null
/usr/bin/python3 - "$URL" <<'PYEOF' || fail "batch-get-secret-value"
import json, sys, urllib.request, urllib.error, boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
creds = boto3.Session(profile_name="ecs-secrets-agent").get_credentials()

def call(op, body):
    req = AWSRequest(method="POST", url=sys.argv[1] + "/", data=json.dumps(body),
                     headers={"X-Amz-Target": "secretsmanager." + op,
                              "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(creds, "secretsmanager", "us-east-2").add_auth(req)
    data = req.body if isinstance(req.body, bytes) else req.body.encode()
    r = urllib.request.Request(req.url, data=data, headers=dict(req.headers))
    try:
        with urllib.request.urlopen(r) as resp:
            return 200, json.load(resp)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)

st, r = call("BatchGetSecretValue", {"SecretIdList": ["app/db", "app/none", "app/cache"]})
assert st == 200, r
assert [v["SecretString"] for v in r["SecretValues"]] == ["east-value", "cache-value"], r
assert [(e["SecretId"], e["ErrorCode"]) for e in r["Errors"]] == [
    ("app/none", "ResourceNotFoundException")], r["Errors"]
st, r = call("BatchGetSecretValue", {"Filters": [{"Key": "name", "Values": ["app/ca"]}]})
assert st == 200 and [v["Name"] for v in r["SecretValues"]] == ["app/cache"], r
st, r = call("BatchGetSecretValue", {"SecretIdList": ["a"],
                                     "Filters": [{"Key": "name", "Values": ["a"]}]})
assert st == 400 and r["__type"] == "InvalidParameterException", r
PYEOF

say "rotate-secret, built-in rotator"
aws secretsmanager create-secret --name db/creds --secret-string '{"username":"app","password":"first"}' >/dev/null
aws secretsmanager rotate-secret --secret-id db/creds --rotation-rules AutomaticallyAfterDays=30 >/dev/null
CUR=$(aws secretsmanager get-secret-value --secret-id db/creds --query SecretString --output text)
eq "$(jq -r .username <<<"$CUR")" app "username kept"
[[ $(jq -r .password <<<"$CUR") != first && $(jq -r '.password | length' <<<"$CUR") -eq 32 ]] || fail "password not rotated: $CUR"
eq "$(aws secretsmanager get-secret-value --secret-id db/creds --version-stage AWSPREVIOUS --query SecretString --output text)" \
  '{"username":"app","password":"first"}' "AWSPREVIOUS"
DESC=$(aws secretsmanager describe-secret --secret-id db/creds)
eq "$(jq -r '.RotationEnabled, .RotationRules.AutomaticallyAfterDays' <<<"$DESC" | paste -sd' ')" "true 30" "rotation shown"
[[ $(jq -r .LastRotatedDate <<<"$DESC") != null && $(jq -r .NextRotationDate <<<"$DESC") != null ]] || fail "dates: $DESC"
expect_error InvalidParameterException "You cannot specify both rotation frequency and schedule expression together." secretsmanager rotate-secret --secret-id db/creds \
  --rotation-rules '{"AutomaticallyAfterDays":3,"ScheduleExpression":"rate(3 days)"}'

say "boto3: the same in the other region, and a schedule"
/usr/bin/python3 - "$URL" <<'PYEOF' || fail "boto3 checks"
import sys, boto3
sm = boto3.Session(profile_name="ecs-secrets-agent").client(
    "secretsmanager", endpoint_url=sys.argv[1], region_name="eu-west-1")
assert sm.get_secret_value(SecretId="app/db")["SecretString"] == "west-value"
sm.rotate_secret(SecretId="app/db", RotateImmediately=False,
                 RotationRules={"ScheduleExpression": "cron(0 16 1,15 * ? *)", "Duration": "2h"})
d = sm.describe_secret(SecretId="app/db")
assert d["RotationEnabled"] and d["RotationRules"]["ScheduleExpression"] == "cron(0 16 1,15 * ? *)", d
# botocore 1.29 (Debian's) does not know NextRotationDate yet; newer ones parse it
n = d.get("NextRotationDate")
assert n is None or (n.hour == 16 and n.day in (1, 15)), d
assert sm.get_secret_value(SecretId="app/db")["SecretString"] == "west-value"
pw = sm.get_random_password(PasswordLength=20, ExcludeNumbers=True)["RandomPassword"]
assert len(pw) == 20 and not any(c.isdigit() for c in pw), pw
PYEOF

# wait_rotation ID: touches the secret until its rotation is no longer in flight
wait_rotation() {
  local i
  for ((i = 0; i < 120; i++)); do
    if it_aws secretsmanager rotate-secret --secret-id "$1" --no-rotate-immediately >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  fail "the rotation of $1 did not end"
}

say "rotation hook: four steps"
aws secretsmanager create-secret --name hooked --secret-string before-hook >/dev/null
TOKEN=$(aws secretsmanager rotate-secret --secret-id hooked \
  --rotation-lambda-arn arn:aws:lambda:us-east-2:123456789012:function:rotator --query VersionId --output text)
wait_rotation hooked
eq "$(cut -d' ' -f1 "$HOOKS/steps.log" | paste -sd' ')" "createSecret setSecret testSecret finishSecret" "the steps"
grep -qF "\"ClientRequestToken\":\"$TOKEN\",\"Step\":\"finishSecret\"" "$HOOKS/steps.log" || fail "event: $(cat "$HOOKS/steps.log")"
eq "$(aws secretsmanager get-secret-value --secret-id hooked --query SecretString --output text)" from-the-hook "AWSCURRENT after the hook"
eq "$(aws secretsmanager get-secret-value --secret-id hooked --version-stage AWSPREVIOUS --query SecretString --output text)" before-hook "AWSPREVIOUS after the hook"
eq "$(aws secretsmanager describe-secret --secret-id hooked --query RotationLambdaARN --output text)" \
  arn:aws:lambda:us-east-2:123456789012:function:rotator "RotationLambdaARN"

say "rotation hook: a failing step"
aws secretsmanager create-secret --name fragile --secret-string stays >/dev/null
aws secretsmanager put-secret-value --secret-id fragile --secret-string would-be --version-stages AWSPENDING >/dev/null
aws secretsmanager rotate-secret --secret-id fragile \
  --rotation-lambda-arn arn:aws:lambda:us-east-2:123456789012:function:failing >/dev/null
wait_rotation fragile
eq "$(paste -sd' ' "$HOOKS/failing.log")" "createSecret setSecret testSecret" "the failing hook's steps"
eq "$(aws secretsmanager get-secret-value --secret-id fragile --query SecretString --output text)" stays "AWSCURRENT kept"
eq "$(aws secretsmanager get-secret-value --secret-id fragile --version-stage AWSPENDING --query SecretString --output text)" would-be "AWSPENDING kept"
eq "$(aws secretsmanager describe-secret --secret-id fragile --query LastRotatedDate --output text)" None "no LastRotatedDate"
grep -q "rotation step testSecret of $HOOKS/failing failed: exited with status 1" "$LOG" || fail "the failure is not logged"
expect_error AccessDeniedException "cannot invoke the specified Lambda function" secretsmanager rotate-secret \
  --secret-id fragile --rotation-lambda-arn arn:aws:lambda:us-east-2:123456789012:function:absent

say "replication: us-east-1 to eu-west-1 and ap-southeast-2 (the CLI's own commands)"
PRIMARY=$(aws --region us-east-1 secretsmanager create-secret --name shared/api-key \
  --secret-string repl-first --query ARN --output text)
eq "$(aws --region us-east-1 secretsmanager replicate-secret-to-regions --secret-id shared/api-key \
  --add-replica-regions Region=eu-west-1 Region=ap-southeast-2 \
  | jq -r '[.ReplicationStatus[] | .Region + "=" + .Status] | join(" ")')" \
  "ap-southeast-2=InSync eu-west-1=InSync" "replication status"
for r in eu-west-1 ap-southeast-2; do
  eq "$(aws --region "$r" secretsmanager get-secret-value --secret-id shared/api-key --query SecretString --output text)" \
    repl-first "the replica's value in $r"
  eq "$(aws --region "$r" secretsmanager describe-secret --secret-id shared/api-key | jq -r '.ARN + " " + .PrimaryRegion')" \
    "${PRIMARY/:us-east-1:/:$r:} us-east-1" "the replica's ARN and primary in $r"
done
aws --region us-east-1 secretsmanager put-secret-value --secret-id shared/api-key --secret-string repl-second >/dev/null
for r in eu-west-1 ap-southeast-2; do
  eq "$(aws --region "$r" secretsmanager get-secret-value --secret-id shared/api-key --query SecretString --output text)" \
    repl-second "put-secret-value reached $r"
done
expect_error InvalidParameterException "Operation not permitted on a replica secret. Call must be made in primary secret's region." \
  --region eu-west-1 secretsmanager put-secret-value --secret-id shared/api-key --secret-string nope
expect_error InvalidParameterException "You can't delete secret shared/api-key that still has replica regions [ap-southeast-2,eu-west-1]" \
  --region us-east-1 secretsmanager delete-secret --secret-id shared/api-key
# a name taken in the target region fails that region only
aws --region us-west-2 secretsmanager create-secret --name shared/api-key --secret-string other >/dev/null
eq "$(aws --region us-east-1 secretsmanager replicate-secret-to-regions --secret-id shared/api-key \
  --add-replica-regions Region=us-west-2 --query 'ReplicationStatus[?Region==`us-west-2`].StatusMessage' --output text)" \
  "Replication failed: Secret name shared/api-key already exists in region us-west-2." "a taken name"
eq "$(aws --region us-west-2 secretsmanager get-secret-value --secret-id shared/api-key --query SecretString --output text)" \
  other "the other secret kept"

say "replication: remove a region, promote a replica"
aws --region us-east-1 secretsmanager remove-regions-from-replication --secret-id shared/api-key \
  --remove-replica-regions ap-southeast-2 us-west-2 >/dev/null
expect_error ResourceNotFoundException "Secrets Manager can't find the specified secret." \
  --region ap-southeast-2 secretsmanager get-secret-value --secret-id shared/api-key
eq "$(aws --region eu-west-1 secretsmanager stop-replication-to-replica --secret-id shared/api-key --query ARN --output text)" \
  "${PRIMARY/:us-east-1:/:eu-west-1:}" "the promoted replica's ARN"
aws --region eu-west-1 secretsmanager put-secret-value --secret-id shared/api-key --secret-string eu-own >/dev/null
aws --region us-east-1 secretsmanager put-secret-value --secret-id shared/api-key --secret-string repl-third >/dev/null
eq "$(aws --region eu-west-1 secretsmanager get-secret-value --secret-id shared/api-key --query SecretString --output text)" \
  eu-own "the promoted secret is its own"
eq "$(aws --region us-east-1 secretsmanager describe-secret --secret-id shared/api-key --query 'length(ReplicationStatus || `[]`)' --output text)" \
  0 "the primary has no replica left"
aws --region us-east-1 secretsmanager delete-secret --secret-id shared/api-key --force-delete-without-recovery >/dev/null

say "no secret value in the log"
for v in east-value west-value cache-value from-the-hook before-hook would-be repl-first repl-second eu-own; do
  ! grep -qF "$v" "$LOG" || fail "$v in the log"
done
it_stop_agent
say "ok"

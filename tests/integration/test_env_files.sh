#!/usr/bin/env bash
# Issue 20: the embedded S3 subset and ECS's environmentFiles, with the real aws CLI and the
# real dockerd:
#   - `aws s3 mb / cp / ls / rm`, `aws s3api head-object / put-bucket-policy /
#     get-bucket-policy` against the embedded S3 (the CLI's own signing: a payload digest over
#     http); S3's errors (NoSuchKey, BucketNotEmpty, AccessDenied from a bucket policy's Deny);
#   - nothing of an object's content in the state directory, in clear;
#   - a task definition with environmentFiles (two files), environment and secrets naming the
#     same variables: registered and described as given; run-task with an execution role
#     without s3:GetObject is STOPPED with the preflight's reason naming s3:GetObject on both
#     objects and no container; with it, the container's Env (docker inspect) and what it
#     prints follow ECS's precedence (environment over the files, the first file over the
#     second, secrets over all); no file content in the agent's log or any API answer.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir envfiles
IT_TASK_SLEEP=0.25
it_aws_env "$STATE"
it_endpoint
# shellcheck disable=SC2032 # (lib.sh runs the docker binary itself)
docker() { command docker -H "$ES_TEST_DOCKER_HOST" "$@"; }
ACCT=123456789012
MARK="mark$RANDOM$RANDOM$RANDOM"
CLUSTER=envfiles-$$ # our containers carry it as a label (removed on exit)
ANSWERS=$WORK/answers.log # every API answer, scanned for the files' content at the end

it_start_agent --mode embedded --cluster "$CLUSTER"

say "aws s3 mb / cp / ls / cp - / head-object through the CLI"
it_aws s3 mb s3://envs >/dev/null
printf '# the app'"'"'s settings\nFROM_FILE=%s\nSHARED=file\n\nBOTH=file-one\n' "$MARK" >"$WORK/app.env"
printf 'BOTH=file-two\nSECOND=two\n' >"$WORK/second.env"
it_aws s3 cp "$WORK/app.env" s3://envs/app.env >/dev/null
it_aws s3 cp "$WORK/second.env" s3://envs/dir/second.env >/dev/null
LS=$(it_aws s3 ls s3://envs/)
grep -q ' app.env$' <<<"$LS" || fail "aws s3 ls lacks app.env: $LS"
grep -q 'PRE dir/$' <<<"$LS" || fail "aws s3 ls lacks the dir/ prefix: $LS"
eq "$(it_aws s3 ls s3://envs/ --recursive | wc -l)" 2 "objects listed recursively"
eq "$(it_aws s3 ls | awk '{print $3}')" envs "aws s3 ls (ListBuckets)"
eq "$(it_aws s3 cp s3://envs/app.env - | sha256sum)" "$(sha256sum <"$WORK/app.env")" \
  "the object read back"
eq "$(aws s3api head-object --bucket envs --key app.env --query ContentLength --output text)" \
  "$(stat -c %s "$WORK/app.env")" "head-object's ContentLength"
expect_error 404 'Not Found' s3api head-object --bucket envs --key nope
expect_error NoSuchKey 'does not exist' s3api get-object --bucket envs --key nope "$WORK/nope"
expect_error BucketNotEmpty 'not empty' s3api delete-bucket --bucket envs

say "a bucket policy's Deny refuses an IAM user its identity policy allows"
aws iam create-user --user-name reader >/dev/null
aws iam put-user-policy --user-name reader --policy-name s3 --policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":"*"}]}'
read -r AK SK < <(aws iam create-access-key --user-name reader \
  --query 'AccessKey.[AccessKeyId,SecretAccessKey]' --output text)
as_reader() { AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_SHARED_CREDENTIALS_FILE=/dev/null \
  it_aws_cli --endpoint-url "$URL" --region us-east-1 "$@"; }
as_reader s3 cp s3://envs/app.env - | grep -q "FROM_FILE=$MARK" || fail "the reader cannot read"
out=$(as_reader s3 cp "$WORK/app.env" s3://envs/other.env 2>&1) && fail "the reader wrote: $out"
grep -q AccessDenied <<<"$out" || fail "no AccessDenied for s3:PutObject: $out"
aws s3api put-bucket-policy --bucket envs --policy \
  "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Deny\",\"Principal\":{\"AWS\":\"arn:aws:iam::$ACCT:user/reader\"},\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::envs/app.env\"}]}"
aws s3api get-bucket-policy --bucket envs --query Policy --output text | grep -q '"Deny"' ||
  fail "get-bucket-policy does not give the policy back"
# (aws s3 cp asks HeadObject first, whose 403 has no body: the code shows on GetObject)
out=$(as_reader s3api get-object --bucket envs --key app.env "$WORK/denied" 2>&1) &&
  fail "the bucket policy's Deny was not applied"
grep -q '(AccessDenied)' <<<"$out" || fail "no AccessDenied: $out"
grep -q 'explicit deny' <<<"$out" || fail "the refusal does not name the explicit deny: $out"
as_reader s3 cp s3://envs/dir/second.env - | grep -q SECOND=two ||
  fail "the Deny reached another object"
aws s3api delete-bucket-policy --bucket envs
as_reader s3 cp s3://envs/app.env - | grep -q "FROM_FILE=$MARK" || fail "the policy was not removed"

say "aws s3 rm; the state directory never holds an object's content in clear"
it_aws s3 cp "$WORK/app.env" s3://envs/gone.env >/dev/null
it_aws s3 rm s3://envs/gone.env >/dev/null
expect_error 404 'Not Found' s3api head-object --bucket envs --key gone.env
if grep -rqa "$MARK" "$STATE"; then fail "the object's content is in $STATE in clear"; fi

say "environmentFiles: registered with environment and secrets naming the same variables"
V_SECRET="secret-$RANDOM$RANDOM"
aws ssm put-parameter --name /envfiles/second --type String --value "$V_SECRET" >/dev/null
create_exec_role env-exec
aws iam attach-role-policy --role-name env-exec \
  --policy-arn arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy
aws iam put-role-policy --role-name env-exec --policy-name base --policy-document \
  "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:GetParameters\",\"Resource\":\"arn:aws:ssm:*:$ACCT:parameter/envfiles/*\"},{\"Effect\":\"Allow\",\"Action\":\"s3:GetBucketLocation\",\"Resource\":\"arn:aws:s3:::envs\"}]}"
ROLE=arn:aws:iam::$ACCT:role/env-exec
# app.env: FROM_FILE=$MARK SHARED=file BOTH=file-one; dir/second.env: BOTH=file-two SECOND=two
cat >"$WORK/td.json" <<JSON
{
  "family": "envfiles",
  "executionRoleArn": "$ROLE",
  "networkMode": "none",
  "containerDefinitions": [{
    "name": "app",
    "image": "local/busybox:latest",
    "command": ["sh", "-c", "echo \"\$FROM_FILE|\$SHARED|\$BOTH|\$SECOND\"; sleep 300"],
    "stopTimeout": 2,
    "environment": [{"name": "SHARED", "value": "env"}],
    "environmentFiles": [
      {"value": "arn:aws:s3:::envs/app.env", "type": "s3"},
      {"value": "arn:aws:s3:::envs/dir/second.env", "type": "s3"}
    ],
    "secrets": [{"name": "SECOND", "valueFrom": "/envfiles/second"}]
  }]
}
JSON
aws ecs register-task-definition --cli-input-json "file://$WORK/td.json" >/dev/null
eq "$(aws ecs describe-task-definition --task-definition envfiles \
  --query 'taskDefinition.containerDefinitions[0].environmentFiles' | jq -c .)" \
  '[{"value":"arn:aws:s3:::envs/app.env","type":"s3"},{"value":"arn:aws:s3:::envs/dir/second.env","type":"s3"}]' \
  "environmentFiles described as registered"
expect_error ClientException 'containerDefinitions[0].environmentFiles[0].value: not an S3 object ARN' \
  ecs register-task-definition --family envfiles-bad --container-definitions \
  '[{"name":"app","image":"local/busybox:latest","environmentFiles":[{"value":"s3://envs/app.env","type":"s3"}]}]'

containers() {
  command docker -H "$ES_TEST_DOCKER_HOST" ps -aq --filter "label=com.amazonaws.ecs.cluster=$CLUSTER" | wc -l
}
say "run-task with a role without s3:GetObject: STOPPED by the preflight, no container"
WANT="ResourceInitializationError: unable to pull secrets or registry auth: the execution role $ROLE is missing 2 permissions: s3:GetObject on arn:aws:s3:::envs/app.env; s3:GetObject on arn:aws:s3:::envs/dir/second.env"
TASK=$(aws ecs run-task --cluster "$CLUSTER" --task-definition envfiles --query 'tasks[0].taskArn' --output text)
eq "$(wait_status "$TASK" STOPPED)" STOPPED "the task without s3:GetObject"
OUT=$(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$TASK")
eq "$(jq -r '.tasks[0].stopCode' <<<"$OUT")" TaskFailedToStart "stopCode"
eq "$(jq -r '.tasks[0].stoppedReason' <<<"$OUT")" "$WANT" "stoppedReason"
eq "$(containers)" 0 "containers created"

say "with s3:GetObject: RUNNING; Env as ECS lays it: environment > first file > second, secrets over all"
aws iam put-role-policy --role-name env-exec --policy-name files --policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::envs/*"}]}'
TASK=$(aws ecs run-task --cluster "$CLUSTER" --task-definition envfiles --query 'tasks[0].taskArn' --output text)
eq "$(wait_status "$TASK" RUNNING STOPPED)" RUNNING \
  "the task with s3:GetObject ($(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$TASK" --query 'tasks[0].stoppedReason'))"
CID=$(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$TASK" --query 'tasks[0].containers[0].runtimeId' --output text)
wait_container_log "$CID" 50 0.2 -xF "$MARK|env|file-one|$V_SECRET" ||
  fail "the container printed $(command docker -H "$ES_TEST_DOCKER_HOST" logs "$CID" 2>&1)"
ENV=$(docker inspect "$CID" --format '{{range .Config.Env}}{{println .}}{{end}}')
for want in "FROM_FILE=$MARK" SHARED=env BOTH=file-one "SECOND=$V_SECRET"; do
  grep -qxF "$want" <<<"$ENV" || fail "docker inspect: no $want in Env: $ENV"
done
eq "$(grep -c '^SHARED=\|^BOTH=\|^SECOND=' <<<"$ENV")" 3 "each variable once in Env"
aws ecs stop-task --cluster "$CLUSTER" --task "$TASK" >/dev/null
eq "$(wait_status "$TASK" STOPPED)" STOPPED "stopped"

say "no file content in the agent's log, any API answer, or the state directory"
if grep -qF "$MARK" "$LOG"; then fail "the file's content is in the agent's log"; fi
if grep -qF "$MARK" "$ANSWERS"; then fail "the file's content is in an API answer"; fi
if grep -rqa "$MARK" "$STATE"; then fail "the file's content is in $STATE in clear"; fi

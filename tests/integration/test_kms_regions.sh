#!/usr/bin/env bash
# The embedded KMS across regions, driven only by the real aws CLI (/usr/bin/aws) and boto3:
#   - a key lives in one region: a us-east-1 SSM SecureString refuses a key of eu-west-1,
#     a ciphertext of eu-west-1 does not decrypt in us-east-1;
#   - tags, ReEncrypt, GenerateRandom, GenerateDataKeyWithoutPlaintext;
#   - rotation on demand: the old ciphertext still decrypts;
#   - schedule deletion: decrypt fails with KMSInvalidStateException (and SSM's
#     GetParameter --with-decryption with KMS's reason), cancel, enable, decrypt works;
#   - alias update and delete; everything survives a restart.
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST (READY waits for Docker).
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir kms-regions
IT_FAIL_HEADER="---- agent log ----"
it_endpoint
it_aws_env "$STATE" 1

say "starting the agent on $URL (home region us-east-2)"
it_start_agent --region us-east-2 --log-level debug

say "a key lives in one region"
EU_ARN=$(aws --region eu-west-1 kms create-key --description eu --query KeyMetadata.Arn --output text)
[[ $EU_ARN == arn:aws:kms:eu-west-1:123456789012:key/* ]] || fail "eu-west-1 key ARN: $EU_ARN"
EU_KEY=${EU_ARN##*/}
expect_error NotFoundException "Key '$EU_ARN' does not exist" --region us-east-1 kms describe-key --key-id "$EU_ARN"
expect_error NotFoundException "does not exist" --region us-east-1 kms describe-key --key-id "$EU_KEY"
expect_error InvalidKeyId "$EU_KEY" --region us-east-1 ssm put-parameter --name /kms/p --type SecureString \
  --value RegionalValue-1c9e --key-id "$EU_ARN"
aws --region eu-west-1 ssm put-parameter --name /kms/p --type SecureString --value RegionalValue-1c9e \
  --key-id "$EU_ARN" >/dev/null
eq "$(aws --region eu-west-1 ssm get-parameter --name /kms/p --with-decryption --query Parameter.Value --output text)" \
  RegionalValue-1c9e "eu-west-1 SecureString"
printf 'KmsRegional-52b1' >"$WORK/pt"
aws --region eu-west-1 kms encrypt --key-id "$EU_ARN" --plaintext "fileb://$WORK/pt" \
  --query CiphertextBlob --output text | base64 -d >"$WORK/ct-eu"
eq "$(aws --region eu-west-1 kms decrypt --ciphertext-blob "fileb://$WORK/ct-eu" --query Plaintext --output text | base64 -d)" \
  KmsRegional-52b1 "decrypt in eu-west-1"
expect_error InvalidCiphertextException "" --region us-east-1 kms decrypt --ciphertext-blob "fileb://$WORK/ct-eu"
# each region has its own AWS managed keys, made on first use
SSM_EU=$(aws --region eu-west-1 kms describe-key --key-id alias/aws/ssm --query KeyMetadata.Arn --output text)
SSM_US=$(aws --region us-east-1 kms describe-key --key-id alias/aws/ssm --query KeyMetadata.Arn --output text)
[[ $SSM_EU == arn:aws:kms:eu-west-1:* && $SSM_US == arn:aws:kms:us-east-1:* ]] || fail "managed keys: $SSM_EU $SSM_US"

say "tags"
KEY=$(aws --region us-east-1 kms create-key --query KeyMetadata.KeyId --output text)
aws --region us-east-1 kms tag-resource --key-id "$KEY" --tags TagKey=team,TagValue=payments TagKey=env,TagValue=prod
eq "$(aws --region us-east-1 kms list-resource-tags --key-id "$KEY" --query 'Tags[].TagKey' --output text)" \
  "env	team" "tags listed"
aws --region us-east-1 kms untag-resource --key-id "$KEY" --tag-keys env
eq "$(aws --region us-east-1 kms list-resource-tags --key-id "$KEY" --query 'Tags[].TagKey' --output text)" team "after untag"
expect_error TagException "Tags beginning with aws: are reserved" --region us-east-1 kms tag-resource --key-id "$KEY" --tags TagKey=aws:x,TagValue=1

say "ReEncrypt, GenerateRandom, GenerateDataKeyWithoutPlaintext"
KEY2=$(aws --region us-east-1 kms create-key --query KeyMetadata.KeyId --output text)
aws --region us-east-1 kms encrypt --key-id "$KEY" --plaintext "fileb://$WORK/pt" --encryption-context a=1 \
  --query CiphertextBlob --output text | base64 -d >"$WORK/ct1"
aws --region us-east-1 kms re-encrypt --ciphertext-blob "fileb://$WORK/ct1" --source-encryption-context a=1 \
  --destination-key-id "$KEY2" --destination-encryption-context b=2 --query CiphertextBlob --output text |
  base64 -d >"$WORK/ct2"
eq "$(aws --region us-east-1 kms decrypt --ciphertext-blob "fileb://$WORK/ct2" --encryption-context b=2 --query KeyId --output text)" \
  "arn:aws:kms:us-east-1:123456789012:key/$KEY2" "re-encrypted under KEY2"
eq "$(aws --region us-east-1 kms generate-random --number-of-bytes 48 --query Plaintext --output text | base64 -d | wc -c)" \
  48 "generate-random length"
expect_error ValidationException "" --region us-east-1 kms generate-random --number-of-bytes 1025
DK=$(aws --region us-east-1 kms generate-data-key-without-plaintext --key-id "$KEY" --key-spec AES_256 --output json)
grep -q '"Plaintext"' <<<"$DK" && fail "generate-data-key-without-plaintext answered a plaintext"

say "rotation on demand: the old ciphertext still decrypts"
# awscli 2.9 and this boto3 predate RotateKeyOnDemand, ListKeyRotations and
# RotationPeriodInDays: those requests are signed with botocore's SigV4 and sent as is
/usr/bin/python3 - "$URL" "$KEY" <<'PYEOF' || fail "rotation requests"
import json, sys, urllib.request
import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
url, key = sys.argv[1], sys.argv[2]
creds = boto3.Session(profile_name="ecs-secrets-agent").get_credentials()
def kms(op, body):
    req = AWSRequest(method="POST", url=url + "/", data=json.dumps(body).encode(),
                     headers={"Content-Type": "application/x-amz-json-1.1",
                              "X-Amz-Target": "TrentService." + op})
    SigV4Auth(creds, "kms", "us-east-1").add_auth(req)
    p = req.prepare()
    with urllib.request.urlopen(urllib.request.Request(p.url, data=p.body, headers=dict(p.headers),
                                                       method="POST")) as r:
        return json.loads(r.read() or b"{}")
assert kms("RotateKeyOnDemand", {"KeyId": key})["KeyId"].endswith(key)
rot = kms("ListKeyRotations", {"KeyId": key})["Rotations"]
assert [r["RotationType"] for r in rot] == ["ON_DEMAND"], rot
kms("EnableKeyRotation", {"KeyId": key, "RotationPeriodInDays": 90})
st = kms("GetKeyRotationStatus", {"KeyId": key})
assert st["KeyRotationEnabled"] and st["RotationPeriodInDays"] == 90, st
try:
    kms("EnableKeyRotation", {"KeyId": key, "RotationPeriodInDays": 89})
    raise SystemExit("a period of 89 days was accepted")
except urllib.error.HTTPError as e:
    assert e.code == 400 and json.loads(e.read())["__type"].endswith("ValidationException")
PYEOF
eq "$(aws --region us-east-1 kms decrypt --ciphertext-blob "fileb://$WORK/ct1" --encryption-context a=1 --query Plaintext --output text | base64 -d)" \
  KmsRegional-52b1 "old ciphertext after rotation"
eq "$(aws --region us-east-1 kms get-key-rotation-status --key-id "$KEY" --query KeyRotationEnabled --output text)" True "rotation enabled"
aws --region us-east-1 kms encrypt --key-id "$KEY" --plaintext "fileb://$WORK/pt" \
  --query CiphertextBlob --output text | base64 -d >"$WORK/ct3"
aws --region us-east-1 kms disable-key-rotation --key-id "$KEY"

say "key deletion: scheduled, refused, cancelled, enabled"
aws --region us-east-1 ssm put-parameter --name /kms/doomed --type SecureString --value DoomedValue-88aa \
  --key-id "$KEY2" >/dev/null
eq "$(aws --region us-east-1 kms schedule-key-deletion --key-id "$KEY2" --pending-window-in-days 7 --query KeyState --output text)" \
  PendingDeletion "scheduled"
expect_error KMSInvalidStateException "is pending deletion" --region us-east-1 kms decrypt --ciphertext-blob "fileb://$WORK/ct2" \
  --encryption-context b=2
expect_error InvalidKeyId "is pending deletion" --region us-east-1 ssm get-parameter --name /kms/doomed --with-decryption
expect_error ValidationException "" --region us-east-1 kms schedule-key-deletion --key-id "$KEY" --pending-window-in-days 6
aws --region us-east-1 kms cancel-key-deletion --key-id "$KEY2" >/dev/null
eq "$(aws --region us-east-1 kms describe-key --key-id "$KEY2" --query KeyMetadata.KeyState --output text)" Disabled "after cancel"
aws --region us-east-1 kms enable-key --key-id "$KEY2"
eq "$(aws --region us-east-1 kms decrypt --ciphertext-blob "fileb://$WORK/ct2" --encryption-context b=2 --query Plaintext --output text | base64 -d)" \
  KmsRegional-52b1 "decrypt after enable"

say "alias update and delete"
aws --region us-east-1 kms create-alias --alias-name alias/app --target-key-id "$KEY"
aws --region us-east-1 kms update-alias --alias-name alias/app --target-key-id "$KEY2"
eq "$(aws --region us-east-1 kms describe-key --key-id alias/app --query KeyMetadata.KeyId --output text)" "$KEY2" "alias moved"
expect_error NotAuthorizedException "" --region us-east-1 kms delete-alias --alias-name alias/aws/ssm
aws --region us-east-1 kms delete-alias --alias-name alias/app
expect_error NotFoundException "is not found" --region us-east-1 kms describe-key --key-id alias/app

say "boto3"
/usr/bin/python3 - "$URL" "$EU_ARN" <<'PYEOF' || fail "boto3 checks"
import sys
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
url, eu_arn = sys.argv[1], sys.argv[2]
cfg = Config(retries={"max_attempts": 1})
s = boto3.Session(profile_name="ecs-secrets-agent")
eu = s.client("kms", endpoint_url=url, config=cfg, region_name="eu-west-1")
us = s.client("kms", endpoint_url=url, config=cfg, region_name="us-east-1")
ct = eu.encrypt(KeyId=eu_arn, Plaintext=b"boto3-regional")["CiphertextBlob"]
assert eu.decrypt(CiphertextBlob=ct)["Plaintext"] == b"boto3-regional"
try:
    us.decrypt(CiphertextBlob=ct)
    raise SystemExit("decrypted in another region")
except ClientError as e:
    assert e.response["Error"]["Code"] == "InvalidCiphertextException", e.response
assert len(us.generate_random(NumberOfBytes=16)["Plaintext"]) == 16
PYEOF

say "restart: keys, rotations and regions survive"
it_stop_agent
it_start_agent --region us-east-2 --log-level debug
eq "$(aws --region us-east-1 kms decrypt --ciphertext-blob "fileb://$WORK/ct1" --encryption-context a=1 --query Plaintext --output text | base64 -d)" \
  KmsRegional-52b1 "rotated key's old ciphertext after restart"
eq "$(aws --region us-east-1 kms decrypt --ciphertext-blob "fileb://$WORK/ct3" --query Plaintext --output text | base64 -d)" \
  KmsRegional-52b1 "rotated key's new ciphertext after restart"
eq "$(aws --region eu-west-1 kms decrypt --ciphertext-blob "fileb://$WORK/ct-eu" --query Plaintext --output text | base64 -d)" \
  KmsRegional-52b1 "eu-west-1 after restart"
expect_error NotFoundException "" --region us-east-2 kms describe-key --key-id "$EU_KEY"
it_stop_agent

say "no plaintext in the state files or the log"
for v in KmsRegional-52b1 RegionalValue-1c9e DoomedValue-88aa boto3-regional; do
  if grep -rlaF -- "$v" "$STATE" "$LOG"; then fail "plaintext '$v' found on disk"; fi
done
say "PASS"

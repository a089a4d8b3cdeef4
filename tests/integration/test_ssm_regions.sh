#!/usr/bin/env bash
# The embedded SSM Parameter Store across regions, driven by the real aws CLI (/usr/bin/aws) and
# boto3 against one running daemon (one endpoint, every region: the SigV4 scope names it):
#   - one parameter name in us-east-1, us-west-2 and eu-west-1 holding three values, each read
#     back with --region; listings stay in their region; another region's ARN is not found;
#   - cn-north-1: the ARN starts arn:aws-cn:ssm:cn-north-1:;
#   - tags: put-parameter --tags, add/list/remove-tags-for-resource;
#   - describe-parameters filters (Path, Type, tag:, Tier; the deprecated --filters);
#   - the Advanced tier and parameter policies (shown with their status); an Expiration policy
#     that deletes the parameter;
#   - a validation error of each operation, with AWS's code;
#   - the regional data survive a restart.
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST (READY waits for Docker).
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir ssm-regions
IT_FAIL_HEADER="---- agent log ----"
it_endpoint
it_aws_env "$STATE" 1

start_agent() { it_start_agent --region us-east-2 --log-level debug; }

say "starting the agent on $URL"
start_agent

say "one name, three regions, three values"
for r in us-east-1 us-west-2 eu-west-1; do
  eq "$(aws --region "$r" ssm put-parameter --name /app/db/url --type String --value "db.$r.example" \
    --query Version --output text)" 1 "first version in $r"
done
for r in us-east-1 us-west-2 eu-west-1; do
  OUT=$(aws --region "$r" ssm get-parameter --name /app/db/url)
  eq "$(jq -r .Parameter.Value <<<"$OUT")" "db.$r.example" "value in $r"
  eq "$(jq -r .Parameter.ARN <<<"$OUT")" "arn:aws:ssm:$r:123456789012:parameter/app/db/url" "ARN in $r"
done
# the home region (the profile's, us-east-2) holds none of them
expect_error ParameterNotFound "not found" ssm get-parameter --name /app/db/url
# a SecureString under the AWS managed key, in one region only
aws --region eu-west-1 ssm put-parameter --name /app/db/password --type SecureString --value Eu-Secret-9c1e >/dev/null
eq "$(aws --region eu-west-1 ssm get-parameter --name /app/db/password --with-decryption --query Parameter.Value --output text)" \
  Eu-Secret-9c1e "SecureString in eu-west-1"
expect_error ParameterNotFound "not found" --region us-west-2 ssm get-parameter --name /app/db/password
# another region's ARN is not found; in get-parameters it is an invalid parameter
expect_error ParameterNotFound "not found" --region us-east-1 ssm get-parameter \
  --name arn:aws:ssm:us-west-2:123456789012:parameter/app/db/url
eq "$(aws --region us-east-1 ssm get-parameters --names /app/db/url arn:aws:ssm:eu-west-1:123456789012:parameter/app/db/url \
  --query 'InvalidParameters[0]' --output text)" arn:aws:ssm:eu-west-1:123456789012:parameter/app/db/url "foreign ARN invalid"
eq "$(aws --region us-west-2 ssm get-parameter --name arn:aws:ssm:us-west-2:123456789012:parameter/app/db/url \
  --query Parameter.Value --output text)" db.us-west-2.example "own ARN"
# listings stay in the region
eq "$(aws --region eu-west-1 ssm get-parameters-by-path --path /app --recursive --query 'length(Parameters)')" 2 "by path in eu-west-1"
eq "$(aws --region us-east-1 ssm describe-parameters --query 'length(Parameters)')" 1 "describe in us-east-1"
# a delete in one region leaves the others
aws --region us-east-1 ssm delete-parameter --name /app/db/url
expect_error ParameterNotFound "not found" --region us-east-1 ssm get-parameter --name /app/db/url
eq "$(aws --region us-west-2 ssm get-parameter --name /app/db/url --query Parameter.Value --output text)" \
  db.us-west-2.example "us-west-2 untouched"

say "the China partition"
aws --region cn-north-1 ssm put-parameter --name /cn/p --type String --value china >/dev/null
ARN=$(aws --region cn-north-1 ssm get-parameter --name /cn/p --query Parameter.ARN --output text)
[[ $ARN == arn:aws-cn:ssm:cn-north-1:123456789012:parameter/cn/p ]] || fail "cn-north-1 ARN: $ARN"
eq "$(aws --region cn-north-1 ssm get-parameter --name "$ARN" --query Parameter.Value --output text)" china "by aws-cn ARN"

say "tags"
aws --region us-west-2 ssm put-parameter --name /tagged/p --type String --value t \
  --tags Key=env,Value=prod Key=team,Value=blue >/dev/null
aws --region us-west-2 ssm add-tags-to-resource --resource-type Parameter --resource-id /tagged/p \
  --tags Key=owner,Value=ops Key=env,Value=staging
eq "$(aws --region us-west-2 ssm list-tags-for-resource --resource-type Parameter --resource-id /tagged/p \
  --query 'TagList[].[Key,Value]' --output text | tr '\t\n' '=;')" "env=staging;owner=ops;team=blue;" "tags after add"
aws --region us-west-2 ssm remove-tags-from-resource --resource-type Parameter --resource-id /tagged/p --tag-keys team
eq "$(aws --region us-west-2 ssm list-tags-for-resource --resource-type Parameter --resource-id /tagged/p \
  --query 'length(TagList)')" 2 "tags after remove"
expect_error InvalidResourceId "isn't valid" --region us-east-1 ssm list-tags-for-resource --resource-type Parameter --resource-id /tagged/p
expect_error InvalidResourceType "isn't valid" --region us-west-2 ssm list-tags-for-resource --resource-type Document --resource-id /tagged/p
expect_error ValidationException "reserved" --region us-west-2 ssm add-tags-to-resource --resource-type Parameter \
  --resource-id /tagged/p --tags Key=aws:x,Value=1
expect_error ValidationException "tagKeys.1.member" --region us-west-2 ssm remove-tags-from-resource --resource-type Parameter \
  --resource-id /tagged/p --tag-keys 'bad#key'
expect_error ValidationException "tags and overwrite can't be used together" --region us-west-2 ssm put-parameter \
  --name /tagged/p --type String --value u --overwrite --tags Key=a,Value=b

say "describe-parameters filters"
aws --region us-west-2 ssm put-parameter --name /tagged/big --type String --tier Advanced --value adv >/dev/null
eq "$(aws --region us-west-2 ssm describe-parameters --parameter-filters Key=tag:env,Values=staging \
  --query 'Parameters[].Name' --output text)" /tagged/p "tag filter"
eq "$(aws --region us-west-2 ssm describe-parameters --parameter-filters Key=Tier,Values=Advanced \
  --query 'Parameters[].Name' --output text)" /tagged/big "tier filter"
eq "$(aws --region us-west-2 ssm describe-parameters --parameter-filters Key=Path,Option=Recursive,Values=/tagged \
  Key=Type,Values=String --query 'length(Parameters)')" 2 "path and type filters"
eq "$(aws --region us-west-2 ssm describe-parameters --parameter-filters 'Key=Name,Option=Contains,Values=db' \
  --query 'Parameters[].Name' --output text)" /app/db/url "name contains"
eq "$(aws --region us-west-2 ssm describe-parameters --filters Key=Name,Values=/tagged \
  --query 'length(Parameters)')" 2 "deprecated Filters"
expect_error InvalidFilterKey "Valid filter keys include" --region us-west-2 ssm describe-parameters \
  --parameter-filters Key=Label,Values=x
expect_error InvalidFilterOption "Valid options include: [Recursive, OneLevel]" --region us-west-2 ssm describe-parameters \
  --parameter-filters Key=Path,Option=Equals,Values=/tagged
expect_error InvalidFilterValue "missing" --region us-west-2 ssm describe-parameters --parameter-filters Key=Name

say "tiers and policies"
expect_error ValidationException "policies" --region us-west-2 ssm put-parameter --name /pol/std --type String --value v \
  --policies '[{"Type":"NoChangeNotification","Version":"1.0","Attributes":{"After":"5","Unit":"Days"}}]'
eq "$(aws --region us-west-2 ssm put-parameter --name /pol/it --type String --value v --tier Intelligent-Tiering \
  --policies '[{"Type":"NoChangeNotification","Version":"1.0","Attributes":{"After":"5","Unit":"Days"}}]' \
  --query Tier --output text)" Advanced "Intelligent-Tiering with policies"
OUT=$(aws --region us-west-2 ssm describe-parameters --parameter-filters Key=Name,Values=/pol/it)
eq "$(jq -r '.Parameters[0].Policies[0].PolicyType' <<<"$OUT")" NoChangeNotification "policy type"
eq "$(jq -r '.Parameters[0].Policies[0].PolicyStatus' <<<"$OUT")" Pending "policy status"
expect_error ValidationException "downgrade" --region us-west-2 ssm put-parameter --name /pol/it --value w --overwrite --tier Standard
expect_error ValidationException "4096" --region us-west-2 ssm put-parameter --name /pol/big --type String \
  --value "$(head -c 4097 /dev/zero | tr '\0' v)"
eq "$(aws --region us-west-2 ssm put-parameter --name /pol/big --type String --tier Advanced \
  --value "$(head -c 8000 /dev/zero | tr '\0' v)" --query Tier --output text)" Advanced "8000 bytes in Advanced"
expect_error InvalidPolicyTypeException "Expiration, ExpirationNotification, and NoChangeNotification" --region us-west-2 \
  ssm put-parameter --name /pol/x --type String --value v --tier Advanced --policies '[{"Type":"Rotate","Version":"1.0","Attributes":{}}]'
expect_error InvalidPolicyAttributeException "invalid" --region us-west-2 ssm put-parameter --name /pol/x --type String \
  --value v --tier Advanced --policies '[{"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":"tomorrow"}}]'
# an Expiration a little ahead (12 s: a loaded host's CLI takes seconds to start, and the
# timestamp must still be in the future when the call arrives): the parameter is gone after it
AT_S=$(($(date +%s) + 12))
AT=$(date -u -d "@$AT_S" +%Y-%m-%dT%H:%M:%S.000Z)
aws --region us-west-2 ssm put-parameter --name /pol/expiring --type String --value soon --tier Advanced \
  --policies "[{\"Type\":\"Expiration\",\"Version\":\"1.0\",\"Attributes\":{\"Timestamp\":\"$AT\"}}]" >/dev/null
eq "$(aws --region us-west-2 ssm get-parameter --name /pol/expiring --query Parameter.Value --output text)" soon "before expiry"
while (($(date +%s) <= AT_S)); do sleep 0.5; done
expect_error ParameterNotFound "not found" --region us-west-2 ssm get-parameter --name /pol/expiring
# and a later write removes it for good: the name starts again at version 1
aws --region us-west-2 ssm put-parameter --name /pol/other --type String --value x >/dev/null
eq "$(aws --region us-west-2 ssm put-parameter --name /pol/expiring --type String --value again \
  --query Version --output text)" 1 "re-created after expiry"

say "boto3: regions, tags and a validation error per operation"
/usr/bin/python3 - "$URL" <<'PYEOF' || fail "boto3 checks"
import sys
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
url = sys.argv[1]
s = boto3.Session(profile_name="ecs-secrets-agent")
cfg = Config(retries={"max_attempts": 1})
west = s.client("ssm", endpoint_url=url, region_name="us-west-2", config=cfg)
east = s.client("ssm", endpoint_url=url, region_name="us-east-1", config=cfg)
def code_of(f):
    try:
        f()
    except ClientError as e:
        return e.response["Error"]["Code"]
    return None
assert west.get_parameter(Name="/app/db/url")["Parameter"]["Value"] == "db.us-west-2.example"
east.put_parameter(Name="/py/p", Type="String", Value="py", Tags=[{"Key": "k", "Value": "v"}])
assert east.list_tags_for_resource(ResourceType="Parameter", ResourceId="/py/p")["TagList"] == [{"Key": "k", "Value": "v"}]
assert code_of(lambda: west.list_tags_for_resource(ResourceType="Parameter", ResourceId="/py/p")) == "InvalidResourceId"
checks = {
    "PutParameter": lambda: east.put_parameter(Name="/py/p", Type="String", Value="again"),
    "GetParameter": lambda: east.get_parameter(Name="/py/missing"),
    "GetParameters": lambda: east.get_parameters(Names=["a b"] * 11),
    "GetParametersByPath": lambda: east.get_parameters_by_path(Path="no-slash"),
    "GetParameterHistory": lambda: east.get_parameter_history(Name="/py/missing"),
    "DescribeParameters": lambda: east.describe_parameters(ParameterFilters=[{"Key": "Label", "Values": ["x"]}]),
    "DeleteParameter": lambda: east.delete_parameter(Name="/py/missing"),
    "DeleteParameters": lambda: east.delete_parameters(Names=["x"] * 11),
    "LabelParameterVersion": lambda: east.label_parameter_version(Name="/py/p", ParameterVersion=9, Labels=["l"]),
    "UnlabelParameterVersion": lambda: east.unlabel_parameter_version(Name="/py/p", ParameterVersion=9, Labels=["l"]),
    "AddTagsToResource": lambda: east.add_tags_to_resource(ResourceType="Parameter", ResourceId="/py/missing", Tags=[{"Key": "a", "Value": "b"}]),
    "ListTagsForResource": lambda: east.list_tags_for_resource(ResourceType="Document", ResourceId="/py/p"),
    "RemoveTagsFromResource": lambda: east.remove_tags_from_resource(ResourceType="Parameter", ResourceId="/py/missing", TagKeys=["a"]),
}
want = {
    "PutParameter": "ParameterAlreadyExists", "GetParameter": "ParameterNotFound",
    "GetParameters": "ValidationException", "GetParametersByPath": "ValidationException",
    "GetParameterHistory": "ParameterNotFound", "DescribeParameters": "InvalidFilterKey",
    "DeleteParameter": "ParameterNotFound", "DeleteParameters": "ValidationException",
    "LabelParameterVersion": "ParameterVersionNotFound", "UnlabelParameterVersion": "ParameterVersionNotFound",
    "AddTagsToResource": "InvalidResourceId", "ListTagsForResource": "InvalidResourceType",
    "RemoveTagsFromResource": "InvalidResourceId",
}
for op, f in checks.items():
    c = code_of(f)
    assert c == want[op], (op, c, want[op])
print("boto3 ok")
PYEOF

say "restart: every region's parameters survive"
it_stop_agent
start_agent
for r in us-west-2 eu-west-1; do
  eq "$(aws --region "$r" ssm get-parameter --name /app/db/url --query Parameter.Value --output text)" "db.$r.example" "$r after restart"
done
eq "$(aws --region cn-north-1 ssm get-parameter --name /cn/p --query Parameter.ARN --output text)" "$ARN" "cn-north-1 after restart"
it_stop_agent

say "no plaintext SecureString in the state files or the log"
if grep -rlaF -- Eu-Secret-9c1e "$STATE" "$LOG"; then fail "plaintext found on disk"; fi
say "PASS"

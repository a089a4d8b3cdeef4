/* Tests for aws/policy: a table of evaluator cases written from the IAM
 * documentation (policy grammar, evaluation logic, condition operators,
 * policy variables), the seed's S7 inline policy, the AWS managed
 * AmazonECSTaskExecutionRolePolicy, resource-based and KMS key policies,
 * permissions boundaries, parser errors and limits. */
#include <criterion/criterion.h>

#include "aws/policy.h"
#include "common/alloc.h"

#include <stdio.h>
#include <string.h>

#define ACCT "123456789012"
#define OTHER "210987654321"
#define ROLE "arn:aws:iam::" ACCT ":role/ecsTaskExecutionRole"
#define SESSION "arn:aws:sts::" ACCT ":assumed-role/ecsTaskExecutionRole/task-1"
#define PARAM "arn:aws:ssm:us-east-1:" ACCT ":parameter/test/database_password"
#define SECRET "arn:aws:secretsmanager:us-east-1:" ACCT ":secret:prod/db-AbCdEf"
#define KEY "arn:aws:kms:us-east-1:" ACCT ":key/1234abcd-12ab-34cd-56ef-1234567890ab"

#define A AW_DECISION_ALLOW
#define X AW_DECISION_EXPLICIT_DENY
#define I AW_DECISION_IMPLICIT_DENY

/* ---- helpers ---- */

#define MAX_CTX 16

typedef struct ctxbuf {
    aw_ctx_entry e[MAX_CTX];
    const char *v[MAX_CTX][8];
    char store[2048];
    size_t n;
} ctxbuf;

/* "k=v|k2=[a,b]|k3=[]": '|' separates keys, [..] makes a multivalued key. */
static void ctx_parse(ctxbuf *c, const char *spec)
{
    memset(c, 0, sizeof *c);
    if (!spec || !*spec)
        return;
    cr_assert_lt(strlen(spec), sizeof c->store);
    memcpy(c->store, spec, strlen(spec) + 1);
    char *save = NULL;
    for (char *item = strtok_r(c->store, "|", &save); item; item = strtok_r(NULL, "|", &save)) {
        char *eq = strchr(item, '=');
        cr_assert(eq, "bad ctx spec %s", spec);
        *eq = '\0';
        aw_ctx_entry *e = &c->e[c->n];
        e->key = item;
        e->values = c->v[c->n];
        char *val = eq + 1;
        if (*val == '[') {
            e->multi = true;
            val++;
            char *end = strchr(val, ']');
            cr_assert(end);
            *end = '\0';
            char *s2 = NULL;
            for (char *x = strtok_r(val, ",", &s2); x; x = strtok_r(NULL, ",", &s2))
                c->v[c->n][e->n++] = x;
        } else {
            e->n = 1;
            c->v[c->n][0] = val;
        }
        c->n++;
    }
}

static aw_policy *parse_kind(const char *json, aw_policy_kind kind)
{
    aw_policy *p = NULL;
    char err[256];
    int rc = aw_policy_parse(json, strlen(json), kind, "test-policy", NULL, &p, err, sizeof err);
    cr_assert_eq(rc, 0, "parse failed (%d): %s\n%s", rc, err, json);
    return p;
}

static aw_decision eval_full(const char *identity, const char *boundary, const char *resource_pol,
                             const char *principal, const char *action, const char *resource,
                             const char *ctxspec)
{
    aw_policy *id = identity ? parse_kind(identity, AW_POLICY_IDENTITY) : NULL;
    aw_policy *pb = boundary ? parse_kind(boundary, AW_POLICY_BOUNDARY) : NULL;
    aw_policy *rp = resource_pol ? parse_kind(resource_pol, AW_POLICY_RESOURCE) : NULL;
    ctxbuf c;
    ctx_parse(&c, ctxspec);
    aw_request req = {.principal_arn = principal,
                      .action = action,
                      .resource = resource,
                      .ctx = c.e,
                      .nctx = c.n};
    const aw_policy *ids[1] = {id}, *pbs[1] = {pb};
    aw_policy_set set = {.identity = ids,
                         .n_identity = id ? 1 : 0,
                         .boundary = pbs,
                         .n_boundary = pb ? 1 : 0,
                         .resource = rp};
    aw_decision d;
    cr_assert_eq(aw_policy_evaluate(&set, &req, &d), 0);
    /* the decision borrows from the policies: copy what tests look at */
    d.sid = NULL;
    d.policy = NULL;
    aw_policy_free(id);
    aw_policy_free(pb);
    aw_policy_free(rp);
    return d;
}

static char doc[8192];

/* One identity policy made of the given statements. */
static const char *pol(const char *statements)
{
    snprintf(doc, sizeof doc, "{\"Version\":\"2012-10-17\",\"Statement\":[%s]}", statements);
    return doc;
}

/* ---- the table ---- */

typedef struct tcase {
    const char *name;
    const char *statements; /* identity policy statements */
    const char *action;
    const char *resource;
    const char *ctx;
    aw_decision_kind want;
} tcase;

#define ALLOW_ALL "{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}"
#define GET_PARAM "ssm:GetParameters"
/* an Allow of everything guarded by one condition */
#define COND(c) "{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":" c "}"

static const tcase cases[] = {
    /* evaluation logic: explicit deny > allow > implicit deny */
    {"allow all", ALLOW_ALL, GET_PARAM, PARAM, "", A},
    {"no statement applies",
     "{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"*\"}", GET_PARAM, PARAM, "",
     I},
    {"deny wins over allow",
     ALLOW_ALL ",{\"Effect\":\"Deny\",\"Action\":\"ssm:*\",\"Resource\":\"*\"}", GET_PARAM, PARAM,
     "", X},
    {"deny first still wins",
     "{\"Effect\":\"Deny\",\"Action\":\"ssm:GetParameters\",\"Resource\":\"" PARAM "\"}," ALLOW_ALL,
     GET_PARAM, PARAM, "", X},
    {"deny elsewhere does not apply",
     ALLOW_ALL
     ",{\"Effect\":\"Deny\",\"Action\":\"ssm:*\",\"Resource\":\"arn:aws:ssm:*:*:parameter/"
     "prod/*\"}",
     GET_PARAM, PARAM, "", A},
    /* action matching */
    {"action case-insensitive",
     "{\"Effect\":\"Allow\",\"Action\":\"SSM:getparameters\",\"Resource\":\"*\"}", GET_PARAM, PARAM,
     "", A},
    {"action star suffix", "{\"Effect\":\"Allow\",\"Action\":\"ssm:Get*\",\"Resource\":\"*\"}",
     GET_PARAM, PARAM, "", A},
    {"action star middle",
     "{\"Effect\":\"Allow\",\"Action\":\"ssm:*Parameters\",\"Resource\":\"*\"}", GET_PARAM, PARAM,
     "", A},
    {"action qmark one char",
     "{\"Effect\":\"Allow\",\"Action\":\"ssm:GetParameter?\",\"Resource\":\"*\"}", GET_PARAM, PARAM,
     "", A},
    {"action qmark needs a char",
     "{\"Effect\":\"Allow\",\"Action\":\"ssm:GetParameters?\",\"Resource\":\"*\"}", GET_PARAM,
     PARAM, "", I},
    {"action service must match",
     "{\"Effect\":\"Allow\",\"Action\":\"ssmx:GetParameters\",\"Resource\":\"*\"}", GET_PARAM,
     PARAM, "", I},
    {"action prefix only is not a match",
     "{\"Effect\":\"Allow\",\"Action\":\"ssm:GetParameter\",\"Resource\":\"*\"}", GET_PARAM, PARAM,
     "", I},
    {"action list any",
     "{\"Effect\":\"Allow\",\"Action\":[\"s3:*\",\"ssm:GetParameters\"],\"Resource\":\"*\"}",
     GET_PARAM, PARAM, "", A},
    {"NotAction allows the rest",
     "{\"Effect\":\"Allow\",\"NotAction\":\"iam:*\",\"Resource\":\"*\"}", GET_PARAM, PARAM, "", A},
    {"NotAction excludes", "{\"Effect\":\"Allow\",\"NotAction\":\"ssm:*\",\"Resource\":\"*\"}",
     GET_PARAM, PARAM, "", I},
    {"Deny NotAction denies the rest",
     ALLOW_ALL ",{\"Effect\":\"Deny\",\"NotAction\":[\"ecr:*\",\"logs:*\"],\"Resource\":\"*\"}",
     GET_PARAM, PARAM, "", X},
    /* resource matching */
    {"resource exact", "{\"Effect\":\"Allow\",\"Action\":\"ssm:*\",\"Resource\":\"" PARAM "\"}",
     GET_PARAM, PARAM, "", A},
    {"resource part is case-sensitive",
     "{\"Effect\":\"Allow\",\"Action\":\"ssm:*\",\"Resource\":"
     "\"arn:aws:ssm:us-east-1:" ACCT ":parameter/TEST/database_password\"}",
     GET_PARAM, PARAM, "", I},
    {"resource region wildcard",
     "{\"Effect\":\"Allow\",\"Action\":\"ssm:*\",\"Resource\":\"arn:aws:ssm:*:" ACCT
     ":parameter/test/*\"}",
     GET_PARAM, PARAM, "", A},
    {"star does not cross ARN parts",
     "{\"Effect\":\"Allow\",\"Action\":\"ssm:*\",\"Resource\":\"arn:aws:ssm:us-*" ACCT
     ":parameter/test/*\"}",
     GET_PARAM, PARAM, "", I},
    {"resource part star crosses slashes",
     "{\"Effect\":\"Allow\",\"Action\":\"ssm:*\",\"Resource\":\"arn:aws:ssm:us-east-1:" ACCT
     ":parameter/*password\"}",
     GET_PARAM, PARAM, "", A},
    {"resource part may contain colons",
     "{\"Effect\":\"Allow\",\"Action\":\"secretsmanager:*\",\"Resource\":"
     "\"arn:aws:secretsmanager:us-east-1:" ACCT ":secret:prod/*\"}",
     "secretsmanager:GetSecretValue", SECRET, "", A},
    {"secret ARN needs its suffix",
     "{\"Effect\":\"Allow\",\"Action\":\"secretsmanager:*\",\"Resource\":"
     "\"arn:aws:secretsmanager:us-east-1:" ACCT ":secret:prod/db\"}",
     "secretsmanager:GetSecretValue", SECRET, "", I},
    {"resource qmark",
     "{\"Effect\":\"Allow\",\"Action\":\"ssm:*\",\"Resource\":\"arn:aws:ssm:us-east-?:" ACCT
     ":parameter/test/database_passwor?\"}",
     GET_PARAM, PARAM, "", A},
    {"account mismatch",
     "{\"Effect\":\"Allow\",\"Action\":\"ssm:*\",\"Resource\":\"arn:aws:ssm:*:" OTHER ":*\"}",
     GET_PARAM, PARAM, "", I},
    {"NotResource",
     "{\"Effect\":\"Allow\",\"Action\":\"ssm:*\",\"NotResource\":\"arn:aws:ssm:*:*:parameter/prod/"
     "*\"}",
     GET_PARAM, PARAM, "", A},
    {"NotResource excludes",
     "{\"Effect\":\"Allow\",\"Action\":\"ssm:*\",\"NotResource\":\"arn:aws:ssm:*:*:parameter/test/"
     "*\"}",
     GET_PARAM, PARAM, "", I},
    {"Deny NotResource protects all but one",
     ALLOW_ALL ",{\"Effect\":\"Deny\",\"Action\":\"*\",\"NotResource\":\"" KEY "\"}", GET_PARAM,
     PARAM, "", X},
    {"short ARN padded in identity policies",
     "{\"Effect\":\"Allow\",\"Action\":\"ssm:*\",\"Resource\":\"arn:aws:ssm\"}", GET_PARAM, PARAM,
     "", A},
    /* String operators */
    {"StringEquals", COND("{\"StringEquals\":{\"aws:PrincipalTag/team\":\"platform\"}}"), GET_PARAM,
     PARAM, "aws:PrincipalTag/team=platform", A},
    {"StringEquals is case-sensitive",
     COND("{\"StringEquals\":{\"aws:PrincipalTag/team\":\"Platform\"}}"), GET_PARAM, PARAM,
     "aws:PrincipalTag/team=platform", I},
    {"StringEquals key name case-insensitive",
     COND("{\"StringEquals\":{\"AWS:principaltag/TEAM\":\"platform\"}}"), GET_PARAM, PARAM,
     "aws:PrincipalTag/team=platform", A},
    {"StringEquals missing key",
     COND("{\"StringEquals\":{\"aws:PrincipalTag/team\":\"platform\"}}"), GET_PARAM, PARAM, "", I},
    {"StringEquals star is literal", COND("{\"StringEquals\":{\"aws:PrincipalTag/team\":\"*\"}}"),
     GET_PARAM, PARAM, "aws:PrincipalTag/team=platform", I},
    {"StringEquals values OR",
     COND("{\"StringEquals\":{\"aws:PrincipalTag/team\":[\"data\",\"platform\"]}}"), GET_PARAM,
     PARAM, "aws:PrincipalTag/team=platform", A},
    {"StringNotEquals",
     COND("{\"StringNotEquals\":{\"aws:PrincipalTag/team\":[\"data\",\"ops\"]}}"), GET_PARAM, PARAM,
     "aws:PrincipalTag/team=platform", A},
    {"StringNotEquals values NOR",
     COND("{\"StringNotEquals\":{\"aws:PrincipalTag/team\":[\"data\",\"platform\"]}}"), GET_PARAM,
     PARAM, "aws:PrincipalTag/team=platform", I},
    {"StringNotEquals missing key is true",
     COND("{\"StringNotEquals\":{\"aws:PrincipalTag/team\":\"data\"}}"), GET_PARAM, PARAM, "", A},
    {"StringEqualsIgnoreCase",
     COND("{\"StringEqualsIgnoreCase\":{\"aws:PrincipalTag/team\":\"PLATFORM\"}}"), GET_PARAM,
     PARAM, "aws:PrincipalTag/team=platform", A},
    {"StringNotEqualsIgnoreCase",
     COND("{\"StringNotEqualsIgnoreCase\":{\"aws:PrincipalTag/team\":\"PLATFORM\"}}"), GET_PARAM,
     PARAM, "aws:PrincipalTag/team=platform", I},
    {"StringLike star", COND("{\"StringLike\":{\"secretsmanager:VersionStage\":\"AWS*\"}}"),
     "secretsmanager:GetSecretValue", SECRET, "secretsmanager:VersionStage=AWSCURRENT", A},
    {"StringLike qmark", COND("{\"StringLike\":{\"secretsmanager:VersionStage\":\"AWS?URRENT\"}}"),
     "secretsmanager:GetSecretValue", SECRET, "secretsmanager:VersionStage=AWSCURRENT", A},
    {"StringLike anchors", COND("{\"StringLike\":{\"secretsmanager:VersionStage\":\"AWS\"}}"),
     "secretsmanager:GetSecretValue", SECRET, "secretsmanager:VersionStage=AWSCURRENT", I},
    {"StringNotLike", COND("{\"StringNotLike\":{\"secretsmanager:VersionStage\":\"AWSPREV*\"}}"),
     "secretsmanager:GetSecretValue", SECRET, "secretsmanager:VersionStage=AWSCURRENT", A},
    {"multiple keys AND",
     COND("{\"StringEquals\":{\"aws:PrincipalTag/team\":\"platform\",\"aws:RequestedRegion\":"
          "\"us-east-1\"}}"),
     GET_PARAM, PARAM, "aws:PrincipalTag/team=platform|aws:RequestedRegion=eu-west-1", I},
    {"multiple operators AND",
     COND("{\"StringEquals\":{\"aws:PrincipalTag/team\":\"platform\"},\"Bool\":{\"aws:"
          "SecureTransport\":\"true\"}}"),
     GET_PARAM, PARAM, "aws:PrincipalTag/team=platform|aws:SecureTransport=true", A},
    {"single-valued operator on a multivalued key",
     COND("{\"StringEquals\":{\"aws:TagKeys\":\"team\"}}"), GET_PARAM, PARAM, "aws:TagKeys=[team]",
     I},
    /* Numeric */
    {"NumericLessThan", COND("{\"NumericLessThan\":{\"aws:MultiFactorAuthAge\":\"3600\"}}"),
     GET_PARAM, PARAM, "aws:MultiFactorAuthAge=300", A},
    {"NumericLessThan false", COND("{\"NumericLessThan\":{\"aws:MultiFactorAuthAge\":\"3600\"}}"),
     GET_PARAM, PARAM, "aws:MultiFactorAuthAge=3600", I},
    {"NumericLessThanEquals", COND("{\"NumericLessThanEquals\":{\"aws:MultiFactorAuthAge\":3600}}"),
     GET_PARAM, PARAM, "aws:MultiFactorAuthAge=3600", A},
    {"NumericEquals decimal", COND("{\"NumericEquals\":{\"s3:max-keys\":\"10.0\"}}"), GET_PARAM,
     PARAM, "s3:max-keys=10", A},
    {"NumericNotEquals", COND("{\"NumericNotEquals\":{\"s3:max-keys\":[\"10\",\"20\"]}}"),
     GET_PARAM, PARAM, "s3:max-keys=10", I},
    {"NumericGreaterThan", COND("{\"NumericGreaterThan\":{\"s3:max-keys\":\"-1.5\"}}"), GET_PARAM,
     PARAM, "s3:max-keys=0", A},
    {"NumericGreaterThanEquals non-number request",
     COND("{\"NumericGreaterThanEquals\":{\"s3:max-keys\":\"1\"}}"), GET_PARAM, PARAM,
     "s3:max-keys=ten", I},
    /* Date */
    {"DateLessThan ISO", COND("{\"DateLessThan\":{\"aws:CurrentTime\":\"2026-01-01T00:00:00Z\"}}"),
     GET_PARAM, PARAM, "aws:CurrentTime=2025-06-30T23:59:59Z", A},
    {"DateLessThan ISO false",
     COND("{\"DateLessThan\":{\"aws:CurrentTime\":\"2025-01-01T00:00:00Z\"}}"), GET_PARAM, PARAM,
     "aws:CurrentTime=2025-06-30T23:59:59Z", I},
    {"DateGreaterThan date only",
     COND("{\"DateGreaterThan\":{\"aws:CurrentTime\":\"2025-06-30\"}}"), GET_PARAM, PARAM,
     "aws:CurrentTime=2025-06-30T00:00:01Z", A},
    {"DateEquals with offset",
     COND("{\"DateEquals\":{\"aws:CurrentTime\":\"2025-06-30T01:00:00+01:00\"}}"), GET_PARAM, PARAM,
     "aws:CurrentTime=2025-06-30T00:00:00Z", A},
    {"DateEquals epoch vs ISO", COND("{\"DateEquals\":{\"aws:EpochTime\":\"1751241600\"}}"),
     GET_PARAM, PARAM, "aws:EpochTime=2025-06-30T00:00:00Z", A},
    {"DateNotEquals", COND("{\"DateNotEquals\":{\"aws:CurrentTime\":\"2025-06-30T00:00:00Z\"}}"),
     GET_PARAM, PARAM, "aws:CurrentTime=2025-06-30T00:00:00Z", I},
    {"DateGreaterThanEquals fraction",
     COND("{\"DateGreaterThanEquals\":{\"aws:CurrentTime\":\"2025-06-30T00:00:00.5Z\"}}"),
     GET_PARAM, PARAM, "aws:CurrentTime=2025-06-30T00:00:00Z", A},
    /* Bool */
    {"Bool true", COND("{\"Bool\":{\"aws:SecureTransport\":\"true\"}}"), GET_PARAM, PARAM,
     "aws:SecureTransport=true", A},
    {"Bool case-insensitive", COND("{\"Bool\":{\"aws:SecureTransport\":\"TRUE\"}}"), GET_PARAM,
     PARAM, "aws:SecureTransport=True", A},
    {"Bool json boolean", COND("{\"Bool\":{\"aws:SecureTransport\":false}}"), GET_PARAM, PARAM,
     "aws:SecureTransport=false", A},
    {"Bool mismatch", COND("{\"Bool\":{\"aws:SecureTransport\":\"true\"}}"), GET_PARAM, PARAM,
     "aws:SecureTransport=false", I},
    {"Bool missing", COND("{\"Bool\":{\"aws:SecureTransport\":\"false\"}}"), GET_PARAM, PARAM, "",
     I},
    {"BoolIfExists missing", COND("{\"BoolIfExists\":{\"aws:SecureTransport\":\"false\"}}"),
     GET_PARAM, PARAM, "", A},
    {"deny insecure transport",
     ALLOW_ALL ",{\"Effect\":\"Deny\",\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":{\"Bool\":{"
               "\"aws:SecureTransport\":\"false\"}}}",
     GET_PARAM, PARAM, "aws:SecureTransport=false", X},
    /* IP */
    {"IpAddress v4", COND("{\"IpAddress\":{\"aws:SourceIp\":\"203.0.113.0/24\"}}"), GET_PARAM,
     PARAM, "aws:SourceIp=203.0.113.9", A},
    {"IpAddress v4 outside", COND("{\"IpAddress\":{\"aws:SourceIp\":\"203.0.113.0/25\"}}"),
     GET_PARAM, PARAM, "aws:SourceIp=203.0.113.200", I},
    {"IpAddress /0", COND("{\"IpAddress\":{\"aws:SourceIp\":\"0.0.0.0/0\"}}"), GET_PARAM, PARAM,
     "aws:SourceIp=198.51.100.1", A},
    {"IpAddress bare address", COND("{\"IpAddress\":{\"aws:SourceIp\":\"203.0.113.9\"}}"),
     GET_PARAM, PARAM, "aws:SourceIp=203.0.113.9", A},
    {"IpAddress v6", COND("{\"IpAddress\":{\"aws:SourceIp\":\"2001:db8::/32\"}}"), GET_PARAM, PARAM,
     "aws:SourceIp=2001:db8:1::5", A},
    {"IpAddress v6 /33", COND("{\"IpAddress\":{\"aws:SourceIp\":\"2001:db8:8000::/33\"}}"),
     GET_PARAM, PARAM, "aws:SourceIp=2001:db8:1::5", I},
    {"IpAddress family mismatch", COND("{\"IpAddress\":{\"aws:SourceIp\":\"0.0.0.0/0\"}}"),
     GET_PARAM, PARAM, "aws:SourceIp=2001:db8::1", I},
    {"NotIpAddress",
     COND("{\"NotIpAddress\":{\"aws:SourceIp\":[\"10.0.0.0/8\",\"192.168.0.0/16\"]}}"), GET_PARAM,
     PARAM, "aws:SourceIp=203.0.113.9", A},
    {"NotIpAddress inside", COND("{\"NotIpAddress\":{\"aws:SourceIp\":[\"10.0.0.0/8\"]}}"),
     GET_PARAM, PARAM, "aws:SourceIp=10.1.2.3", I},
    {"NotIpAddress v6 request vs v4 range",
     COND("{\"NotIpAddress\":{\"aws:SourceIp\":\"203.0.113.9\"}}"), GET_PARAM, PARAM,
     "aws:SourceIp=2001:db8::1", A},
    /* Arn */
    {"ArnEquals", COND("{\"ArnEquals\":{\"aws:PrincipalArn\":\"" ROLE "\"}}"), GET_PARAM, PARAM,
     "aws:PrincipalArn=" ROLE, A},
    {"ArnLike", COND("{\"ArnLike\":{\"aws:PrincipalArn\":\"arn:aws:iam::*:role/ecs*\"}}"),
     GET_PARAM, PARAM, "aws:PrincipalArn=" ROLE, A},
    {"ArnLike star stays in its part",
     COND("{\"ArnLike\":{\"aws:PrincipalArn\":\"arn:aws:iam::*Role\"}}"), GET_PARAM, PARAM,
     "aws:PrincipalArn=" ROLE, I},
    {"ArnNotLike", COND("{\"ArnNotLike\":{\"aws:PrincipalArn\":\"arn:aws:iam::*:user/*\"}}"),
     GET_PARAM, PARAM, "aws:PrincipalArn=" ROLE, A},
    {"ArnNotEquals", COND("{\"ArnNotEquals\":{\"aws:PrincipalArn\":\"" ROLE "\"}}"), GET_PARAM,
     PARAM, "aws:PrincipalArn=" ROLE, I},
    {"ArnLike non-ARN value", COND("{\"ArnLike\":{\"aws:PrincipalArn\":\"*\"}}"), GET_PARAM, PARAM,
     "aws:PrincipalArn=" ROLE, I},
    /* Null */
    {"Null true: absent", COND("{\"Null\":{\"aws:TokenIssueTime\":\"true\"}}"), GET_PARAM, PARAM,
     "", A},
    {"Null true: present", COND("{\"Null\":{\"aws:TokenIssueTime\":\"true\"}}"), GET_PARAM, PARAM,
     "aws:TokenIssueTime=2025-01-01T00:00:00Z", I},
    {"Null false: present", COND("{\"Null\":{\"aws:TokenIssueTime\":false}}"), GET_PARAM, PARAM,
     "aws:TokenIssueTime=2025-01-01T00:00:00Z", A},
    {"Null false: absent", COND("{\"Null\":{\"aws:TokenIssueTime\":\"false\"}}"), GET_PARAM, PARAM,
     "", I},
    {"Null empty set is present", COND("{\"Null\":{\"aws:TagKeys\":\"false\"}}"), GET_PARAM, PARAM,
     "aws:TagKeys=[]", A},
    /* IfExists */
    {"StringEqualsIfExists absent",
     COND("{\"StringEqualsIfExists\":{\"ec2:InstanceType\":\"t2.micro\"}}"), GET_PARAM, PARAM, "",
     A},
    {"StringEqualsIfExists present wrong",
     COND("{\"StringEqualsIfExists\":{\"ec2:InstanceType\":\"t2.micro\"}}"), GET_PARAM, PARAM,
     "ec2:InstanceType=m5.large", I},
    {"NumericLessThanIfExists present",
     COND("{\"NumericLessThanIfExists\":{\"aws:MultiFactorAuthAge\":\"60\"}}"), GET_PARAM, PARAM,
     "aws:MultiFactorAuthAge=30", A},
    {"IpAddressIfExists absent", COND("{\"IpAddressIfExists\":{\"aws:SourceIp\":\"10.0.0.0/8\"}}"),
     GET_PARAM, PARAM, "", A},
    /* set operators */
    {"ForAllValues subset",
     COND("{\"ForAllValues:StringEquals\":{\"aws:TagKeys\":[\"team\",\"env\"]}}"), GET_PARAM, PARAM,
     "aws:TagKeys=[team]", A},
    {"ForAllValues not subset",
     COND("{\"ForAllValues:StringEquals\":{\"aws:TagKeys\":[\"team\",\"env\"]}}"), GET_PARAM, PARAM,
     "aws:TagKeys=[team,owner]", I},
    {"ForAllValues empty set is true",
     COND("{\"ForAllValues:StringEquals\":{\"aws:TagKeys\":[\"team\"]}}"), GET_PARAM, PARAM,
     "aws:TagKeys=[]", A},
    {"ForAllValues missing key is true",
     COND("{\"ForAllValues:StringEquals\":{\"aws:TagKeys\":[\"team\"]}}"), GET_PARAM, PARAM, "", A},
    {"ForAllValues missing key guarded by Null",
     COND("{\"ForAllValues:StringEquals\":{\"aws:TagKeys\":[\"team\"]},\"Null\":{\"aws:TagKeys\":"
          "\"false\"}}"),
     GET_PARAM, PARAM, "", I},
    {"ForAnyValue one matches",
     COND("{\"ForAnyValue:StringLike\":{\"aws:PrincipalServiceNamesList\":\"ecs*\"}}"), GET_PARAM,
     PARAM, "aws:PrincipalServiceNamesList=[ec2.amazonaws.com,ecs-tasks.amazonaws.com]", A},
    {"ForAnyValue none matches", COND("{\"ForAnyValue:StringEquals\":{\"aws:TagKeys\":\"team\"}}"),
     GET_PARAM, PARAM, "aws:TagKeys=[env,owner]", I},
    {"ForAnyValue missing key is false",
     COND("{\"ForAnyValue:StringEquals\":{\"aws:TagKeys\":\"team\"}}"), GET_PARAM, PARAM, "", I},
    {"ForAnyValue IfExists missing key is true",
     COND("{\"ForAnyValue:StringEqualsIfExists\":{\"aws:TagKeys\":\"team\"}}"), GET_PARAM, PARAM,
     "", A},
    {"ForAnyValue IfExists present key is evaluated",
     COND("{\"ForAnyValue:StringEqualsIfExists\":{\"aws:TagKeys\":\"team\"}}"), GET_PARAM, PARAM,
     "aws:TagKeys=[env]", I},
    {"ForAnyValue empty set is false",
     COND("{\"ForAnyValue:StringEquals\":{\"aws:TagKeys\":\"team\"}}"), GET_PARAM, PARAM,
     "aws:TagKeys=[]", I},
    {"ForAnyValue single-valued key",
     COND("{\"ForAnyValue:StringEquals\":{\"aws:PrincipalTag/team\":\"platform\"}}"), GET_PARAM,
     PARAM, "aws:PrincipalTag/team=platform", A},
    {"ForAllValues StringNotEquals",
     COND("{\"ForAllValues:StringNotEquals\":{\"aws:TagKeys\":[\"secret\"]}}"), GET_PARAM, PARAM,
     "aws:TagKeys=[team,secret]", I},
    /* policy variables */
    {"variable in resource",
     "{\"Effect\":\"Allow\",\"Action\":\"ssm:*\",\"Resource\":\"arn:aws:ssm:*:*:parameter/"
     "${aws:username}/*\"}",
     GET_PARAM, "arn:aws:ssm:us-east-1:" ACCT ":parameter/alice/token", "aws:username=alice", A},
    {"variable in resource other user",
     "{\"Effect\":\"Allow\",\"Action\":\"ssm:*\",\"Resource\":\"arn:aws:ssm:*:*:parameter/"
     "${aws:username}/*\"}",
     GET_PARAM, "arn:aws:ssm:us-east-1:" ACCT ":parameter/bob/token", "aws:username=alice", I},
    {"variable missing: no match",
     "{\"Effect\":\"Allow\",\"Action\":\"ssm:*\",\"Resource\":\"arn:aws:ssm:*:*:parameter/"
     "${aws:username}/*\"}",
     GET_PARAM, "arn:aws:ssm:us-east-1:" ACCT ":parameter/alice/token", "", I},
    {"variable default",
     "{\"Effect\":\"Allow\",\"Action\":\"ssm:*\",\"Resource\":\"arn:aws:ssm:*:*:parameter/"
     "${aws:PrincipalTag/team, 'shared'}/*\"}",
     GET_PARAM, "arn:aws:ssm:us-east-1:" ACCT ":parameter/shared/token", "", A},
    {"variable default with spaces",
     "{\"Effect\":\"Allow\",\"Action\":\"ssm:*\",\"Resource\":\"arn:aws:ssm:*:*:parameter/"
     "${ aws:PrincipalTag/team ,  'shared' }/*\"}",
     GET_PARAM, "arn:aws:ssm:us-east-1:" ACCT ":parameter/shared/token", "", A},
    {"variable beats its default",
     "{\"Effect\":\"Allow\",\"Action\":\"ssm:*\",\"Resource\":\"arn:aws:ssm:*:*:parameter/"
     "${aws:PrincipalTag/team, 'shared'}/*\"}",
     GET_PARAM, "arn:aws:ssm:us-east-1:" ACCT ":parameter/shared/token",
     "aws:PrincipalTag/team=ops", I},
    {"variable value is literal",
     "{\"Effect\":\"Allow\",\"Action\":\"ssm:*\",\"Resource\":\"arn:aws:ssm:*:*:parameter/"
     "${aws:username}\"}",
     GET_PARAM, "arn:aws:ssm:us-east-1:" ACCT ":parameter/anything", "aws:username=*", I},
    {"variable in condition",
     COND("{\"StringEquals\":{\"aws:PrincipalTag/owner\":\"${aws:username}\"}}"), GET_PARAM, PARAM,
     "aws:username=alice|aws:PrincipalTag/owner=alice", A},
    {"principal tag variable",
     COND("{\"StringEquals\":{\"aws:ResourceTag/team\":\"${aws:PrincipalTag/team}\"}}"), GET_PARAM,
     PARAM, "aws:PrincipalTag/team=platform|aws:ResourceTag/team=platform", A},
    {"negated op with missing variable is false",
     COND("{\"StringNotEquals\":{\"aws:PrincipalTag/team\":\"${aws:username}\"}}"), GET_PARAM,
     PARAM, "aws:PrincipalTag/team=platform", I},
    {"special ${*}", COND("{\"StringLike\":{\"aws:PrincipalTag/team\":\"a${*}b*\"}}"), GET_PARAM,
     PARAM, "aws:PrincipalTag/team=a*bc", A},
    {"special ${*} is literal", COND("{\"StringLike\":{\"aws:PrincipalTag/team\":\"a${*}b\"}}"),
     GET_PARAM, PARAM, "aws:PrincipalTag/team=axb", I},
    {"special ${?} and ${$}", COND("{\"StringEquals\":{\"aws:PrincipalTag/team\":\"${?}${$}\"}}"),
     GET_PARAM, PARAM, "aws:PrincipalTag/team=?$", A},
    {"multivalued variable does not resolve",
     COND("{\"StringEquals\":{\"aws:PrincipalTag/team\":\"${aws:TagKeys}\"}}"), GET_PARAM, PARAM,
     "aws:TagKeys=[platform]|aws:PrincipalTag/team=platform", I},
};

Test(policy, table)
{
    size_t n = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < n; i++) {
        const tcase *t = &cases[i];
        aw_decision d =
            eval_full(pol(t->statements), NULL, NULL, SESSION, t->action, t->resource, t->ctx);
        cr_expect_eq(d.kind, t->want, "case \"%s\": got %s, want %s", t->name,
                     aw_decision_kind_name(d.kind), aw_decision_kind_name(t->want));
    }
}

Test(policy, version_2008_has_no_variables)
{
    const char *p = "{\"Version\":\"2008-10-17\",\"Statement\":{\"Effect\":\"Allow\",\"Action\":"
                    "\"ssm:*\",\"Resource\":\"arn:aws:ssm:*:*:parameter/${aws:username}\"}}";
    aw_decision d =
        eval_full(p, NULL, NULL, SESSION, GET_PARAM,
                  "arn:aws:ssm:us-east-1:" ACCT ":parameter/alice", "aws:username=alice");
    cr_assert_eq(d.kind, I);
    d = eval_full(p, NULL, NULL, SESSION, GET_PARAM,
                  "arn:aws:ssm:us-east-1:" ACCT ":parameter/${aws:username}", "aws:username=alice");
    cr_assert_eq(d.kind, A);
}

/* ---- the seed: S5-S7 ---- */

static const char s7_policy[] =
    "{ \"Version\": \"2012-10-17\", \"Statement\": [ { \"Effect\": \"Allow\", \"Action\": [ "
    "\"ssm:GetParameters\", \"secretsmanager:GetSecretValue\", \"kms:Decrypt\" ], \"Resource\": [ "
    "\"" PARAM "\", \"" SECRET "\", \"" KEY "\" ] } ] }";

/* AmazonECSTaskExecutionRolePolicy, the AWS managed policy (version 1). */
static const char ecs_managed_policy[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":["
    "\"ecr:GetAuthorizationToken\",\"ecr:BatchCheckLayerAvailability\","
    "\"ecr:GetDownloadUrlForLayer\",\"ecr:BatchGetImage\",\"logs:CreateLogStream\","
    "\"logs:PutLogEvents\"],\"Resource\":\"*\"}]}";

static const char default_key_policy[] =
    "{\"Version\":\"2012-10-17\",\"Id\":\"key-default-1\",\"Statement\":[{\"Sid\":\"Enable IAM "
    "User Permissions\",\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::" ACCT
    ":root\"},\"Action\":\"kms:*\",\"Resource\":\"*\"}]}";

/* aw_policy_uses_context: what the embedded store's kept decisions rely on */
Test(policy, uses_context)
{
    struct {
        const char *doc;
        aw_policy_kind kind;
        bool want;
    } cases[] = {
        {"{\"Version\":\"2012-10-17\",\"Statement\":[" ALLOW_ALL "]}", AW_POLICY_IDENTITY, false},
        {"{\"Version\":\"2012-10-17\",\"Statement\":[" ALLOW_ALL
         "," COND("{\"DateLessThan\":{\"aws:CurrentTime\":\"2030-01-01T00:00:00Z\"}}") "]}",
         AW_POLICY_IDENTITY, true},
        {"{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Deny\",\"Action\":\"*\","
         "\"Resource\":\"*\",\"Condition\":{\"IpAddress\":{\"aws:SourceIp\":\"10.0.0.0/8\"}}}}",
         AW_POLICY_IDENTITY, true},
        {"{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\",\"Action\":"
         "\"ssm:*\",\"Resource\":\"arn:aws:ssm:*:*:parameter/${aws:username}/*\"}}",
         AW_POLICY_IDENTITY, true},
        {"{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\",\"Action\":"
         "\"ssm:*\",\"NotResource\":\"arn:aws:ssm:*:*:parameter/${aws:username}\"}}",
         AW_POLICY_IDENTITY, true},
        /* 2008-10-17: "${...}" is literal */
        {"{\"Version\":\"2008-10-17\",\"Statement\":{\"Effect\":\"Allow\",\"Action\":"
         "\"ssm:*\",\"Resource\":\"arn:aws:ssm:*:*:parameter/${aws:username}\"}}",
         AW_POLICY_IDENTITY, false},
        {default_key_policy, AW_POLICY_RESOURCE, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        aw_policy *p = parse_kind(cases[i].doc, cases[i].kind);
        cr_assert_eq(aw_policy_uses_context(p), cases[i].want, "case %zu: %s", i, cases[i].doc);
        aw_policy_free(p);
    }
    cr_assert_not(aw_policy_uses_context(NULL));
}

Test(policy, seed_s7_inline_policy_grants_exactly_its_three_permissions)
{
    struct {
        const char *action, *resource;
        aw_decision_kind want;
    } t[] = {
        {"ssm:GetParameters", PARAM, A},
        {"secretsmanager:GetSecretValue", SECRET, A},
        {"ssm:GetParameters", "arn:aws:ssm:us-east-1:" ACCT ":parameter/test/other", I},
        {"ssm:GetParameter", PARAM, I}, /* singular is another action */
        {"ssm:PutParameter", PARAM, I},
        {"secretsmanager:GetSecretValue",
         "arn:aws:secretsmanager:us-east-1:" ACCT ":secret:prod/other-AbCdEf", I},
        {"secretsmanager:PutSecretValue", SECRET, I},
        {"kms:Encrypt", KEY, I},
        {"ssm:GetParameters", "arn:aws:ssm:eu-west-1:" ACCT ":parameter/test/database_password", I},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        aw_decision d = eval_full(s7_policy, NULL, NULL, SESSION, t[i].action, t[i].resource, "");
        cr_expect_eq(d.kind, t[i].want, "%s on %s: got %s", t[i].action, t[i].resource,
                     aw_decision_kind_name(d.kind));
    }
    /* kms:Decrypt on the custom key: the key policy must delegate to IAM */
    aw_decision d = eval_full(s7_policy, NULL, default_key_policy, SESSION, "kms:Decrypt", KEY, "");
    cr_expect_eq(d.kind, A);
    cr_expect_eq(d.source, AW_SOURCE_IDENTITY);
    d = eval_full(s7_policy, NULL, NULL, SESSION, "kms:Decrypt", KEY, "");
    cr_expect_eq(d.kind, I, "no key policy: KMS trusts no IAM policy");
    cr_expect_eq(d.reason, AW_IMPLICIT_NO_RESOURCE_ALLOW);
}

Test(policy, ecs_managed_policy_grants_no_secret_read)
{
    const char *secret_actions[][2] = {
        {"ssm:GetParameters", PARAM},
        {"secretsmanager:GetSecretValue", SECRET},
        {"kms:Decrypt", KEY},
    };
    for (size_t i = 0; i < 3; i++) {
        aw_decision d = eval_full(ecs_managed_policy, NULL, i == 2 ? default_key_policy : NULL,
                                  SESSION, secret_actions[i][0], secret_actions[i][1], "");
        cr_expect_eq(d.kind, I, "%s", secret_actions[i][0]);
        cr_expect_eq(d.reason, AW_IMPLICIT_NO_IDENTITY_ALLOW);
    }
    const char *granted[] = {"ecr:GetAuthorizationToken", "ecr:BatchGetImage",
                             "logs:CreateLogStream", "logs:PutLogEvents"};
    for (size_t i = 0; i < 4; i++) {
        aw_decision d = eval_full(ecs_managed_policy, NULL, NULL, SESSION, granted[i], "*", "");
        cr_expect_eq(d.kind, A, "%s", granted[i]);
    }
}

/* ---- resource-based policies, KMS, cross-account, boundaries ---- */

#define XSESSION "arn:aws:sts::" OTHER ":assumed-role/ecsTaskExecutionRole/task-9"
#define XROLE "arn:aws:iam::" OTHER ":role/ecsTaskExecutionRole"

static const char *rpol(const char *principal, const char *effect)
{
    static char b[2048];
    snprintf(b, sizeof b,
             "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"RP\",\"Effect\":\"%s\","
             "\"Principal\":%s,\"Action\":\"secretsmanager:GetSecretValue\",\"Resource\":\"*\"}]}",
             effect, principal);
    return b;
}

#define SM_ALLOW                                                                                   \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"                 \
    "\"secretsmanager:GetSecretValue\",\"Resource\":\"*\"}]}"
#define GSV "secretsmanager:GetSecretValue"

Test(policy, same_account_resource_policy_alone_allows)
{
    aw_decision d =
        eval_full(NULL, NULL, rpol("{\"AWS\":\"" ROLE "\"}", "Allow"), SESSION, GSV, SECRET, "");
    cr_assert_eq(d.kind, A, "the role ARN names its sessions");
    cr_assert_eq(d.source, AW_SOURCE_RESOURCE);
    d = eval_full(NULL, NULL, rpol("{\"AWS\":\"" ACCT "\"}", "Allow"), SESSION, GSV, SECRET, "");
    cr_assert_eq(d.kind, I, "an account principal only delegates to IAM");
    d = eval_full(NULL, NULL, rpol("\"*\"", "Allow"), SESSION, GSV, SECRET, "");
    cr_assert_eq(d.kind, A);
    d = eval_full(NULL, NULL, rpol("{\"AWS\":\"arn:aws:iam::" ACCT ":role/other\"}", "Allow"),
                  SESSION, GSV, SECRET, "");
    cr_assert_eq(d.kind, I);
}

Test(policy, cross_account_needs_both_sides)
{
    /* caller in OTHER reads a secret in ACCT */
    aw_decision d = eval_full(SM_ALLOW, NULL, NULL, XSESSION, GSV, SECRET, "");
    cr_assert_eq(d.kind, I);
    cr_assert_eq(d.reason, AW_IMPLICIT_NO_RESOURCE_ALLOW);
    d = eval_full(NULL, NULL, rpol("{\"AWS\":\"" XROLE "\"}", "Allow"), XSESSION, GSV, SECRET, "");
    cr_assert_eq(d.kind, I);
    cr_assert_eq(d.reason, AW_IMPLICIT_NO_IDENTITY_ALLOW);
    d = eval_full(SM_ALLOW, NULL, rpol("{\"AWS\":\"" XROLE "\"}", "Allow"), XSESSION, GSV, SECRET,
                  "");
    cr_assert_eq(d.kind, A);
    d = eval_full(SM_ALLOW, NULL, rpol("{\"AWS\":\"arn:aws:iam::" OTHER ":root\"}", "Allow"),
                  XSESSION, GSV, SECRET, "");
    cr_assert_eq(d.kind, A, "the account principal trusts the other account's IAM");
    d = eval_full(SM_ALLOW, NULL, rpol("{\"AWS\":\"arn:aws:iam::" ACCT ":root\"}", "Allow"),
                  XSESSION, GSV, SECRET, "");
    cr_assert_eq(d.kind, I);
}

Test(policy, resource_policy_deny_wins)
{
    aw_decision d =
        eval_full(SM_ALLOW, NULL, rpol("{\"AWS\":\"" ACCT "\"}", "Deny"), SESSION, GSV, SECRET, "");
    cr_assert_eq(d.kind, X);
    cr_assert_eq(d.source, AW_SOURCE_RESOURCE);
    cr_assert_eq(d.statement_index, 0);
    char msg[512];
    aw_request req = {.principal_arn = SESSION, .action = GSV, .resource = SECRET};
    aw_decision_message(&req, &d, msg, sizeof msg);
    cr_assert_str_eq(msg,
                     "User: " SESSION " is not authorized to perform: " GSV " on resource: " SECRET
                     " with an explicit deny in a resource-based policy");
    /* a Deny for someone else does not apply */
    d = eval_full(SM_ALLOW, NULL, rpol("{\"AWS\":\"" XROLE "\"}", "Deny"), SESSION, GSV, SECRET,
                  "");
    cr_assert_eq(d.kind, A);
}

Test(policy, not_principal_deny)
{
    const char *rp =
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Deny\","
        "\"NotPrincipal\":{\"AWS\":\"" ROLE "\"},\"Action\":\"*\",\"Resource\":\"*\"}]}";
    aw_decision d = eval_full(SM_ALLOW, NULL, rp, SESSION, GSV, SECRET, "");
    cr_assert_eq(d.kind, A, "the named role's session is spared");
    d = eval_full(SM_ALLOW, NULL, rp, "arn:aws:iam::" ACCT ":user/mallory", GSV, SECRET, "");
    cr_assert_eq(d.kind, X);
    /* with a permissions boundary, NotPrincipal+Deny always applies */
    d = eval_full(SM_ALLOW, SM_ALLOW, rp, SESSION, GSV, SECRET, "");
    cr_assert_eq(d.kind, X);
}

Test(policy, kms_key_policy_model)
{
    const char *decrypt_allow = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
                                "\"Action\":\"kms:Decrypt\",\"Resource\":\"" KEY "\"}]}";
    const char *key_names_role = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
                                 "\"Principal\":{\"AWS\":\"" ROLE "\"},\"Action\":\"kms:Decrypt\","
                                 "\"Resource\":\"*\"}]}";
    const char *key_no_iam = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
                             "\"Principal\":{\"AWS\":\"arn:aws:iam::" ACCT ":user/admin\"},"
                             "\"Action\":\"kms:*\",\"Resource\":\"*\"}]}";
    aw_decision d =
        eval_full(decrypt_allow, NULL, default_key_policy, SESSION, "kms:Decrypt", KEY, "");
    cr_assert_eq(d.kind, A);
    d = eval_full(NULL, NULL, key_names_role, SESSION, "kms:Decrypt", KEY, "");
    cr_assert_eq(d.kind, A, "the key policy alone can grant");
    d = eval_full(decrypt_allow, NULL, key_no_iam, SESSION, "kms:Decrypt", KEY, "");
    cr_assert_eq(d.kind, I, "a key policy without the root statement ignores IAM policies");
    cr_assert_eq(d.reason, AW_IMPLICIT_NO_RESOURCE_ALLOW);
    const char *ctx_allow =
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
        "\"kms:Decrypt\",\"Resource\":\"*\",\"Condition\":{\"StringEquals\":{"
        "\"kms:EncryptionContext:PARAMETER_ARN\":\"" PARAM "\"}}}]}";
    d = eval_full(ctx_allow, NULL, default_key_policy, SESSION, "kms:Decrypt", KEY,
                  "kms:EncryptionContext:PARAMETER_ARN=" PARAM);
    cr_assert_eq(d.kind, A, "encryption context condition");
    d = eval_full(ctx_allow, NULL, default_key_policy, SESSION, "kms:Decrypt", KEY,
                  "kms:EncryptionContext:PARAMETER_ARN=" SECRET);
    cr_assert_eq(d.kind, I);
    d = eval_full(NULL, NULL, default_key_policy, SESSION, "kms:Decrypt", KEY, "");
    cr_assert_eq(d.kind, I, "delegation to IAM still needs an IAM allow");
    cr_assert_eq(d.reason, AW_IMPLICIT_NO_IDENTITY_ALLOW);
}

Test(policy, permissions_boundary)
{
    const char *pb_ssm = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
                         "\"Action\":\"ssm:*\",\"Resource\":\"*\"}]}";
    aw_decision d = eval_full(s7_policy, pb_ssm, NULL, SESSION, GET_PARAM, PARAM, "");
    cr_assert_eq(d.kind, A);
    d = eval_full(s7_policy, pb_ssm, NULL, SESSION, GSV, SECRET, "");
    cr_assert_eq(d.kind, I);
    cr_assert_eq(d.reason, AW_IMPLICIT_NO_BOUNDARY_ALLOW);
    char msg[512];
    aw_request req = {.principal_arn = SESSION, .action = GSV, .resource = SECRET};
    aw_decision_message(&req, &d, msg, sizeof msg);
    cr_assert(strstr(msg, "because no permissions boundary allows the " GSV " action"), "%s", msg);
    /* a same-account resource policy naming the session itself is not limited */
    d = eval_full(NULL, pb_ssm, rpol("{\"AWS\":\"" SESSION "\"}", "Allow"), SESSION, GSV, SECRET,
                  "");
    cr_assert_eq(d.kind, A);
    /* but naming the role is */
    d = eval_full(NULL, pb_ssm, rpol("{\"AWS\":\"" ROLE "\"}", "Allow"), SESSION, GSV, SECRET, "");
    cr_assert_eq(d.kind, I);
    /* an explicit deny in the boundary */
    const char *pb_deny = "{\"Version\":\"2012-10-17\",\"Statement\":[" ALLOW_ALL
                          ",{\"Effect\":\"Deny\",\"Action\":\"ssm:*\",\"Resource\":\"*\"}]}";
    d = eval_full(s7_policy, pb_deny, NULL, SESSION, GET_PARAM, PARAM, "");
    cr_assert_eq(d.kind, X);
    cr_assert_eq(d.source, AW_SOURCE_BOUNDARY);
}

Test(policy, decision_names_the_statement)
{
    const char *p = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
                    "\"s3:*\",\"Resource\":\"*\"},{\"Sid\":\"ReadParams\",\"Effect\":\"Allow\","
                    "\"Action\":\"ssm:GetParameters\",\"Resource\":\"*\"},{\"Effect\":\"Deny\","
                    "\"Action\":\"ssm:GetParameters\",\"Resource\":\"arn:aws:ssm:*:*:parameter/"
                    "prod/*\"}]}";
    aw_policy *pp = parse_kind(p, AW_POLICY_IDENTITY);
    const aw_policy *ids[1] = {pp};
    aw_policy_set set = {.identity = ids, .n_identity = 1};
    aw_request req = {.principal_arn = SESSION, .action = GET_PARAM, .resource = PARAM};
    aw_decision d;
    cr_assert_eq(aw_policy_evaluate(&set, &req, &d), 0);
    cr_assert_eq(d.kind, A);
    cr_assert_eq(d.statement_index, 1);
    cr_assert_str_eq(d.sid, "ReadParams");
    cr_assert_eq(d.policy, pp);
    req.resource = "arn:aws:ssm:us-east-1:" ACCT ":parameter/prod/x";
    cr_assert_eq(aw_policy_evaluate(&set, &req, &d), 0);
    cr_assert_eq(d.kind, X);
    cr_assert_eq(d.statement_index, 2);
    cr_assert_null(d.sid);
    char msg[512];
    aw_decision_message(&req, &d, msg, sizeof msg);
    cr_assert_str_eq(msg, "User: " SESSION " is not authorized to perform: ssm:GetParameters on "
                          "resource: arn:aws:ssm:us-east-1:" ACCT ":parameter/prod/x with an "
                          "explicit deny in an identity-based policy");
    req.action = "ssm:PutParameter";
    cr_assert_eq(aw_policy_evaluate(&set, &req, &d), 0);
    cr_assert_eq(d.kind, I);
    cr_assert_eq(d.reason, AW_IMPLICIT_NO_IDENTITY_ALLOW);
    aw_decision_message(&req, &d, msg, sizeof msg);
    cr_assert_str_eq(msg, "User: " SESSION " is not authorized to perform: ssm:PutParameter on "
                          "resource: arn:aws:ssm:us-east-1:" ACCT ":parameter/prod/x because no "
                          "identity-based policy allows the ssm:PutParameter action");
    /* truncation: snprintf-like */
    char small[8];
    size_t need = aw_decision_message(&req, &d, small, sizeof small);
    cr_assert_eq(need, strlen(msg));
    cr_assert_eq(strlen(small), 7);
    aw_policy_free(pp);
}

Test(policy, multiple_identity_policies)
{
    aw_policy *a = parse_kind(pol("{\"Effect\":\"Allow\",\"Action\":\"ssm:*\",\"Resource\":\"*\"}"),
                              AW_POLICY_IDENTITY);
    aw_policy *b = parse_kind(pol("{\"Sid\":\"NoProd\",\"Effect\":\"Deny\",\"Action\":\"*\","
                                  "\"Resource\":\"" PARAM "\"}"),
                              AW_POLICY_IDENTITY);
    const aw_policy *ids[2] = {a, b};
    aw_policy_set set = {.identity = ids, .n_identity = 2};
    aw_request req = {.principal_arn = SESSION, .action = GET_PARAM, .resource = PARAM};
    aw_decision d;
    cr_assert_eq(aw_policy_evaluate(&set, &req, &d), 0);
    cr_assert_eq(d.kind, X);
    cr_assert_eq(d.policy, b);
    cr_assert_str_eq(d.sid, "NoProd");
    set.n_identity = 1;
    cr_assert_eq(aw_policy_evaluate(&set, &req, &d), 0);
    cr_assert_eq(d.kind, A);
    aw_policy_free(a);
    aw_policy_free(b);
}

/* ---- parser: bad input ---- */

typedef struct badcase {
    const char *json;
    aw_policy_kind kind;
    int rc;
    const char *msg; /* substring of the error */
} badcase;

static const badcase bad[] = {
    {"", AW_POLICY_IDENTITY, AW_POLICY_E_MALFORMED, "not valid JSON"},
    {"{", AW_POLICY_IDENTITY, AW_POLICY_E_MALFORMED, "not valid JSON"},
    {"[]", AW_POLICY_IDENTITY, AW_POLICY_E_MALFORMED, "must be a JSON object"},
    {"{\"Version\":\"2012-10-17\"}", AW_POLICY_IDENTITY, AW_POLICY_E_MALFORMED,
     "missing Statement"},
    {"{\"Version\":\"2010-01-01\",\"Statement\":[]}", AW_POLICY_IDENTITY, AW_POLICY_E_MALFORMED,
     "Version must be"},
    {"{\"Statement\":[]}", AW_POLICY_IDENTITY, AW_POLICY_E_MALFORMED, "must not be empty"},
    {"{\"Statement\":\"x\"}", AW_POLICY_IDENTITY, AW_POLICY_E_MALFORMED, "object or an array"},
    {"{\"Statement\":{},\"Foo\":1}", AW_POLICY_IDENTITY, AW_POLICY_E_MALFORMED, "unknown element"},
    {"{\"Statement\":{\"Action\":\"*\",\"Resource\":\"*\"}}", AW_POLICY_IDENTITY,
     AW_POLICY_E_MALFORMED, "missing Effect"},
    {"{\"Statement\":{\"Effect\":\"allow\",\"Action\":\"*\",\"Resource\":\"*\"}}",
     AW_POLICY_IDENTITY, AW_POLICY_E_MALFORMED, "Effect must be"},
    {"{\"Statement\":{\"Effect\":\"Allow\",\"Resource\":\"*\"}}", AW_POLICY_IDENTITY,
     AW_POLICY_E_MALFORMED, "missing Action or NotAction"},
    {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"NotAction\":\"*\",\"Resource\":\"*\"}"
     "}",
     AW_POLICY_IDENTITY, AW_POLICY_E_MALFORMED, "both Action and NotAction"},
    {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\"}}", AW_POLICY_IDENTITY,
     AW_POLICY_E_MALFORMED, "missing Resource or NotResource"},
    {"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"},{\"Effect\":"
     "\"Allow\",\"Action\":\"ssm\",\"Resource\":\"*\"}]}",
     AW_POLICY_IDENTITY, AW_POLICY_E_MALFORMED, "\"service:action\" (Statement 1)"},
    {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":[],\"Resource\":\"*\"}}", AW_POLICY_IDENTITY,
     AW_POLICY_E_MALFORMED, "empty array"},
    {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":[1],\"Resource\":\"*\"}}", AW_POLICY_IDENTITY,
     AW_POLICY_E_MALFORMED, "only strings"},
    {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Principal\":\"*\"}"
     "}",
     AW_POLICY_IDENTITY, AW_POLICY_E_MALFORMED, "should not specify a principal"},
    {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}}",
     AW_POLICY_RESOURCE, AW_POLICY_E_MALFORMED, "missing Principal"},
    {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Principal\":{"
     "\"Foo\":\"x\"}}}",
     AW_POLICY_RESOURCE, AW_POLICY_E_MALFORMED, "unknown principal type"},
    {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Principal\":{"
     "\"AWS\":\"bob\"}}}",
     AW_POLICY_RESOURCE, AW_POLICY_E_MALFORMED, "invalid AWS principal"},
    {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"NotPrincipal\":{"
     "\"AWS\":\"123456789012\"}}}",
     AW_POLICY_RESOURCE, AW_POLICY_E_MALFORMED, "only supported with Effect Deny"},
    {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":{"
     "\"StringEqualz\":{\"a:b\":\"c\"}}}}",
     AW_POLICY_IDENTITY, AW_POLICY_E_MALFORMED, "unknown operator \"StringEqualz\""},
    {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":{"
     "\"StringEquals\":\"x\"}}}",
     AW_POLICY_IDENTITY, AW_POLICY_E_MALFORMED, "must map to an object"},
    {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":{"
     "\"StringEquals\":{\"a:b\":[]}}}}",
     AW_POLICY_IDENTITY, AW_POLICY_E_MALFORMED, "empty array of values"},
    {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":{"
     "\"StringEquals\":{\"a:b\":{\"x\":1}}}}}",
     AW_POLICY_IDENTITY, AW_POLICY_E_MALFORMED, "strings, numbers or booleans"},
    {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":{"
     "\"NullIfExists\":{\"a:b\":\"true\"}}}}",
     AW_POLICY_IDENTITY, AW_POLICY_E_MALFORMED, "Null takes no IfExists"},
    {"{\"Statement\":{\"Sid\":1,\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}}",
     AW_POLICY_IDENTITY, AW_POLICY_E_MALFORMED, "Sid must be a string"},
    {"{\"Statement\":{\"Effect\":\"Allow\",\"Effect\":\"Deny\",\"Action\":\"*\",\"Resource\":\"*\"}"
     "}",
     AW_POLICY_IDENTITY, AW_POLICY_E_MALFORMED, "appears twice"},
    {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"\"}}",
     AW_POLICY_IDENTITY, AW_POLICY_E_MALFORMED, "empty string"},
    {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"my-bucket\"}}",
     AW_POLICY_IDENTITY, AW_POLICY_E_MALFORMED, "must be in ARN format"},
    {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Principal\":{"
     "\"AWS\":\"arn:aws:iam::123456789012:role/*\"}}}",
     AW_POLICY_RESOURCE, AW_POLICY_E_MALFORMED, "wildcards are not allowed in principal ARNs"},
    {"{\"Statement\":[{\"Sid\":\"A\",\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"},{"
     "\"Sid\":\"A\",\"Effect\":\"Deny\",\"Action\":\"*\",\"Resource\":\"*\"}]}",
     AW_POLICY_IDENTITY, AW_POLICY_E_MALFORMED, "must be unique"},
};

Test(policy, malformed_documents)
{
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        aw_policy *p = (aw_policy *)0x1;
        char err[256];
        int rc = aw_policy_parse(bad[i].json, strlen(bad[i].json), bad[i].kind, NULL, NULL, &p, err,
                                 sizeof err);
        cr_expect_eq(rc, bad[i].rc, "case %zu (%s): rc %d, err %s", i, bad[i].json, rc, err);
        cr_expect(strstr(err, bad[i].msg), "case %zu: error \"%s\" lacks \"%s\"", i, err,
                  bad[i].msg);
        cr_expect_eq(p, (aw_policy *)0x1, "out-param untouched on failure");
    }
}

Test(policy, limits)
{
    /* size: 6144 for managed, 10240 inline; whitespace does not count */
    char big[16000];
    size_t n = (size_t)snprintf(big, sizeof big, "{\"Version\":\"2012-10-17\",\"Statement\":[");
    for (int k = 0; k < 7; k++) {
        n += (size_t)snprintf(big + n, sizeof big - n,
                              "%s{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\","
                              "\"Sid\":\"",
                              k ? "," : "");
        for (int c = 0; c < 900; c++)
            big[n++] = (char)('a' + (c + k) % 26); /* Sids must differ */
        big[n++] = '"';
        big[n++] = '}';
    }
    memcpy(big + n, "]}", 3);
    n += 2;
    aw_policy *p = NULL;
    char err[256];
    cr_assert_eq(aw_policy_parse(big, n, AW_POLICY_IDENTITY, NULL, &aw_policy_managed_limits, &p,
                                 err, sizeof err),
                 AW_POLICY_E_TOO_BIG);
    cr_assert(strstr(err, "more than the limit of 6144"), "%s", err);
    cr_assert_eq(aw_policy_parse(big, n, AW_POLICY_IDENTITY, NULL, NULL, &p, err, sizeof err), 0,
                 "%s", err);
    p = aw_policy_free(p);
    cr_assert_null(p);
    char spaced[2000];
    size_t sn = (size_t)snprintf(spaced, sizeof spaced, "{\"Statement\":");
    while (sn < 1500)
        spaced[sn++] = ' ';
    sn += (size_t)snprintf(spaced + sn, sizeof spaced - sn, "%s}", ALLOW_ALL);
    {
        aw_policy_limits l = aw_policy_managed_limits;
        l.max_bytes = 100;
        cr_assert_eq(aw_policy_parse(spaced, sn, AW_POLICY_IDENTITY, NULL, &l, &p, err, sizeof err),
                     0, "whitespace is not counted: %s", err);
        p = aw_policy_free(p);
        l.max_raw_bytes = 1000;
        cr_assert_eq(aw_policy_parse(spaced, sn, AW_POLICY_IDENTITY, NULL, &l, &p, err, sizeof err),
                     AW_POLICY_E_TOO_BIG);
    }

    /* statement count */
    aw_policy_limits lim = aw_policy_inline_limits;
    lim.max_statements = 2;
    const char *three = "{\"Statement\":[" ALLOW_ALL "," ALLOW_ALL "," ALLOW_ALL "]}";
    cr_assert_eq(
        aw_policy_parse(three, strlen(three), AW_POLICY_IDENTITY, NULL, &lim, &p, err, sizeof err),
        AW_POLICY_E_LIMIT);
    cr_assert(strstr(err, "3 statements"), "%s", err);

    /* values per element */
    lim = aw_policy_inline_limits;
    lim.max_values = 2;
    const char *vals = "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":[\"a:b\",\"a:c\",\"a:d\"],"
                       "\"Resource\":\"*\"}}";
    cr_assert_eq(
        aw_policy_parse(vals, strlen(vals), AW_POLICY_IDENTITY, NULL, &lim, &p, err, sizeof err),
        AW_POLICY_E_LIMIT);
    cr_assert(strstr(err, "Action has 3 values"), "%s", err);

    /* nesting */
    const char *deep = "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\","
                       "\"Condition\":{\"StringEquals\":{\"a:b\":[[[[[[[[\"x\"]]]]]]]]}}}}";
    cr_assert_neq(
        aw_policy_parse(deep, strlen(deep), AW_POLICY_IDENTITY, NULL, NULL, &p, err, sizeof err),
        0);

    /* too many wildcards in one value */
    char wild[400] = "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"ssm:";
    size_t w = strlen(wild);
    for (int i = 0; i < 70; i++) {
        wild[w++] = 'a';
        wild[w++] = '*';
    }
    memcpy(wild + w, "\",\"Resource\":\"*\"}}", 19);
    cr_assert_eq(
        aw_policy_parse(wild, strlen(wild), AW_POLICY_IDENTITY, NULL, NULL, &p, err, sizeof err),
        AW_POLICY_E_LIMIT);
}

Test(policy, statement_object_and_defaults)
{
    const char *p = "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"ssm:GetParameters\","
                    "\"Resource\":\"" PARAM "\"}}";
    aw_policy *pp = parse_kind(p, AW_POLICY_IDENTITY);
    cr_assert_eq(aw_policy_statement_count(pp), 1);
    cr_assert_str_eq(aw_policy_name(pp), "test-policy");
    aw_policy_free(pp);
    cr_assert_null(aw_policy_free(NULL));
}

Test(policy, evaluate_rejects_bad_arguments)
{
    aw_policy_set set = {0};
    aw_request req = {.principal_arn = SESSION, .action = GET_PARAM, .resource = NULL};
    aw_decision d;
    cr_assert_eq(aw_policy_evaluate(&set, &req, &d), AW_POLICY_E_INVAL);
    req.resource = PARAM;
    set.n_identity = 1;
    cr_assert_eq(aw_policy_evaluate(&set, &req, &d), AW_POLICY_E_INVAL);
    set.n_identity = 0;
    cr_assert_eq(aw_policy_evaluate(&set, &req, &d), 0);
    cr_assert_eq(d.kind, I);
}

Test(policy, allocation_failures_are_reported_and_leak_nothing)
{
    const char *p =
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"A\",\"Effect\":\"Allow\","
        "\"Action\":[\"ssm:Get*\",\"kms:Decrypt\"],\"Resource\":\"arn:aws:ssm:*:*:"
        "parameter/${aws:username}/*\",\"Condition\":{\"StringLike\":{\"a:b\":[\"x*\","
        "\"y\"]},\"IpAddress\":{\"aws:SourceIp\":\"10.0.0.0/8\"}}}]}";
    int failures = 0;
    for (long k = 0; k < 200; k++) {
        aw_policy *out = NULL;
        es_alloc_fail_after(k);
        int rc = aw_policy_parse(p, strlen(p), AW_POLICY_IDENTITY, "n", NULL, &out, NULL, 0);
        es_alloc_fail_after(-1);
        if (rc == 0) {
            aw_policy_free(out);
            break;
        }
        cr_assert(rc == AW_POLICY_E_NOMEM || rc == AW_POLICY_E_MALFORMED || rc == AW_POLICY_E_LIMIT,
                  "rc %d", rc);
        cr_assert_null(out);
        failures++;
    }
    cr_assert_gt(failures, 3);
}

Test(policy, evaluation_allocates_nothing)
{
    aw_policy *p = parse_kind(
        pol("{\"Effect\":\"Allow\",\"Action\":\"ssm:Get*\",\"Resource\":\"arn:aws:ssm:*:*:"
            "parameter/${aws:PrincipalTag/team}/*\",\"Condition\":{\"IpAddress\":{\"aws:SourceIp\":"
            "\"10.0.0.0/8\"},\"DateLessThan\":{\"aws:CurrentTime\":\"2030-01-01T00:00:00Z\"},"
            "\"ForAnyValue:StringLike\":{\"aws:TagKeys\":\"te*\"}}}"),
        AW_POLICY_IDENTITY);
    ctxbuf c;
    ctx_parse(&c, "aws:PrincipalTag/team=app|aws:SourceIp=10.1.1.1|aws:CurrentTime=2026-11-29T00:"
                  "00:00Z|aws:TagKeys=[env,team]");
    const aw_policy *ids[1] = {p};
    aw_policy_set set = {.identity = ids, .n_identity = 1};
    aw_request req = {.principal_arn = SESSION,
                      .action = GET_PARAM,
                      .resource = "arn:aws:ssm:us-east-1:" ACCT ":parameter/app/x",
                      .ctx = c.e,
                      .nctx = c.n};
    aw_decision d;
    /* exactly one allocation may succeed from here on: if evaluation made
     * any, the probe below gets NULL */
    es_alloc_fail_after(1);
    int rc = 0;
    for (int i = 0; i < 100 && rc == 0; i++)
        rc = aw_policy_evaluate(&set, &req, &d);
    char msg[256];
    aw_decision_message(&req, &d, msg, sizeof msg);
    void *probe = es_malloc(16);
    es_alloc_fail_after(-1);
    cr_assert_not_null(probe, "aw_policy_evaluate allocated");
    es_free(probe);
    cr_assert_eq(rc, 0);
    cr_assert_eq(d.kind, A);
    aw_policy_free(p);
}

Test(policy, more_principal_shapes)
{
    const char *fed = "arn:aws:sts::" ACCT ":federated-user/alice";
    /* a federated user session is named by its IAM user */
    aw_decision d =
        eval_full(NULL, NULL, rpol("{\"AWS\":\"arn:aws:iam::" ACCT ":user/alice\"}", "Allow"), fed,
                  GSV, SECRET, "");
    cr_assert_eq(d.kind, A);
    /* {"AWS": "*"} is the same as "*" */
    d = eval_full(NULL, NULL, rpol("{\"AWS\":\"*\"}", "Allow"), XSESSION, GSV, SECRET, "");
    cr_assert_eq(d.kind, I, "cross-account still needs an identity allow");
    d = eval_full(SM_ALLOW, NULL, rpol("{\"AWS\":\"*\"}", "Allow"), XSESSION, GSV, SECRET, "");
    cr_assert_eq(d.kind, A);
    /* a role named with a path still names its sessions (IAM matches the
     * role name in the session ARN) */
    d = eval_full(
        NULL, NULL,
        rpol("{\"AWS\":\"arn:aws:iam::" ACCT ":role/team/ecsTaskExecutionRole\"}", "Allow"),
        SESSION, GSV, SECRET, "");
    cr_assert_eq(d.kind, A);
    /* a service principal caller: only the resource policy can grant */
    d = eval_full(SM_ALLOW, NULL, NULL, "ecs-tasks.amazonaws.com", GSV, SECRET, "");
    cr_assert_eq(d.kind, I);
    d = eval_full(NULL, NULL, rpol("{\"Service\":\"ecs-tasks.amazonaws.com\"}", "Allow"),
                  "ecs-tasks.amazonaws.com", GSV, SECRET, "");
    cr_assert_eq(d.kind, A);
    d = eval_full(NULL, NULL, rpol("{\"Service\":[\"ssm.amazonaws.com\"]}", "Allow"),
                  "ecs-tasks.amazonaws.com", GSV, SECRET, "");
    cr_assert_eq(d.kind, I);
}

Test(policy, not_resource_with_unresolvable_variable)
{
    /* the literal parts already rule the value out: a plain mismatch, so
     * the NotResource Deny applies */
    const char *p1 = pol(ALLOW_ALL ",{\"Effect\":\"Deny\",\"Action\":\"*\",\"NotResource\":"
                                   "\"arn:aws:ssm:*:*:parameter/${aws:username}/public\"}");
    aw_decision d = eval_full(p1, NULL, NULL, SESSION, GET_PARAM, PARAM, "");
    cr_assert_eq(d.kind, X);
    /* it could have named the resource: the statement does not apply */
    const char *p2 = pol(ALLOW_ALL ",{\"Effect\":\"Deny\",\"Action\":\"*\",\"NotResource\":"
                                   "\"arn:aws:ssm:*:*:parameter/${aws:username}/*\"}");
    d = eval_full(p2, NULL, NULL, SESSION, GET_PARAM, PARAM, "");
    cr_assert_eq(d.kind, A);
    /* resolved: the ordinary answer */
    d = eval_full(p2, NULL, NULL, SESSION, GET_PARAM, PARAM, "aws:username=test");
    cr_assert_eq(d.kind, A);
    d = eval_full(p2, NULL, NULL, SESSION, GET_PARAM, PARAM, "aws:username=prod");
    cr_assert_eq(d.kind, X);
}

Test(policy, binary_and_numbers_as_json)
{
    aw_decision d = eval_full(pol(COND("{\"BinaryEquals\":{\"s3:x-amz-meta\":\"QmluYXJ5\"}}")),
                              NULL, NULL, SESSION, GET_PARAM, PARAM, "s3:x-amz-meta=QmluYXJ5");
    cr_assert_eq(d.kind, A);
    d = eval_full(pol(COND("{\"NumericEquals\":{\"s3:max-keys\":[1e3]}}")), NULL, NULL, SESSION,
                  GET_PARAM, PARAM, "s3:max-keys=1000");
    cr_assert_eq(d.kind, I, "exponents are not IAM numbers");
    d = eval_full(pol(COND("{\"StringEquals\":{\"aws:MultiFactorAuthPresent\":true}}")), NULL, NULL,
                  SESSION, GET_PARAM, PARAM, "aws:MultiFactorAuthPresent=true");
    cr_assert_eq(d.kind, A, "JSON booleans are written as strings");
}

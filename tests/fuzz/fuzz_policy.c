/* libFuzzer driver for aws/policy: the parser/compiler on arbitrary bytes,
 * then the evaluator on whatever compiled, against requests whose context
 * exercises variables, multivalued keys and every operator family. */
#include "aws/policy.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const team[] = {"platform"};
static const char *const tags[] = {"team", "env"};
static const char *const ip[] = {"2001:db8::1"};
static const char *const ip4[] = {"10.1.2.3"};
static const char *const when[] = {"2025-06-30T12:00:00Z"};
static const char *const yes[] = {"true"};
static const char *const age[] = {"300"};
static const char *const user[] = {"alice"};
static const char *const parn[] = {"arn:aws:iam::123456789012:role/ecsTaskExecutionRole"};

static const aw_ctx_entry ctx[] = {
    {"aws:PrincipalTag/team", team, 1, false},
    {"aws:TagKeys", tags, 2, true},
    {"aws:SourceIp", ip, 1, false},
    {"aws:VpcSourceIp", ip4, 1, false},
    {"aws:CurrentTime", when, 1, false},
    {"aws:SecureTransport", yes, 1, false},
    {"aws:MultiFactorAuthAge", age, 1, false},
    {"aws:username", user, 1, false},
    {"aws:PrincipalArn", parn, 1, false},
    {"aws:EmptySet", NULL, 0, true},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    aw_policy_kind kind = (aw_policy_kind)(data[0] % 3);
    aw_policy *p = NULL;
    char err[256];
    if (aw_policy_parse((const char *)data + 1, size - 1, kind, "fuzz", NULL, &p, err,
                        sizeof err) != 0)
        return 0;
    static const char *const principals[] = {
        "arn:aws:sts::123456789012:assumed-role/ecsTaskExecutionRole/task-1",
        "arn:aws:iam::210987654321:user/alice",
        "ecs-tasks.amazonaws.com",
    };
    static const char *const resources[] = {
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf",
        "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "*",
        "not-an-arn",
    };
    const aw_policy *one[1] = {p};
    for (size_t i = 0; i < 3; i++) {
        for (size_t j = 0; j < 4; j++) {
            aw_request req = {
                .principal_arn = principals[i],
                .action = j == 1 ? "kms:Decrypt" : "secretsmanager:GetSecretValue",
                .resource = resources[j],
                .ctx = ctx,
                .nctx = sizeof ctx / sizeof ctx[0],
            };
            aw_policy_set set = {0};
            if (kind == AW_POLICY_RESOURCE) {
                set.resource = p;
            } else if (kind == AW_POLICY_BOUNDARY) {
                set.identity = one;
                set.n_identity = 1;
                set.boundary = one;
                set.n_boundary = 1;
            } else {
                set.identity = one;
                set.n_identity = 1;
            }
            aw_decision d;
            if (aw_policy_evaluate(&set, &req, &d) == 0) {
                char msg[256];
                aw_decision_message(&req, &d, msg, sizeof msg);
            }
        }
    }
    aw_policy_free(p);
    return 0;
}

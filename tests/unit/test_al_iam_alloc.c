/* The embedded IAM, STS and the authorisation hook under allocation
 * failure: each call is run with the Nth allocation failing, for every N
 * until it succeeds; it must answer a complete error (never crash, never
 * half an answer, never an allow it would not give with memory), and ASan's
 * leak check at exit proves nothing is lost. */
#include "iam_helpers.h"

#include <stdarg.h>

#include "common/alloc.h"

TestSuite(al_iam_alloc, .init = alt_setup, .fini = alt_teardown);

#define SESSION "arn:aws:sts::123456789012:assumed-role/r/s1"

/* body may hold one %ld, replaced by the attempt number (fresh names for
 * calls that are not idempotent). */
static void under_failures(const char *service, const char *principal, const char *fmt)
{
    for (long n = 0; n < 3000; n++) {
        char body[4096];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(body, sizeof body, fmt, n);
#pragma GCC diagnostic pop
        es_buf_reset(&T.out);
        memset(&T.err, 0, sizeof T.err);
        es_alloc_fail_after(n);
        int r = al_query_dispatch(T.ctx, service, principal, body, strlen(body), &T.out, &T.err);
        es_alloc_fail_after(-1);
        if (r == 0) {
            cr_assert_gt(n, 0, "%s never allocated", body);
            return;
        }
        cr_assert(T.err.status >= 400 && T.err.code[0], "%s n=%ld: incomplete error", body, n);
        cr_assert_eq(T.out.len, 0, "%s n=%ld: half an answer", body, n);
        cr_assert_str_neq(T.err.code, "AccessDenied", "%s n=%ld: denied for want of memory", body,
                          n);
    }
    cr_assert_fail("%s never succeeded", fmt);
}

#define ENC_TRUST                                                                                  \
    "%%7B%%22Version%%22%%3A%%222012-10-17%%22%%2C%%22Statement%%22%%3A%%5B%%7B%%22Effect%%22%%3A" \
    "%%22Allow%%22%%2C%%22Principal%%22%%3A%%7B%%22Service%%22%%3A%%22ecs-tasks.amazonaws.com%%22" \
    "%%7D%%2C%%22Action%%22%%3A%%22sts%%3AAssumeRole%%22%%7D%%5D%%7D"
#define ENC_POLICY                                                                                 \
    "%%7B%%22Version%%22%%3A%%222012-10-17%%22%%2C%%22Statement%%22%%3A%%5B%%7B%%22Effect%%22%%3A" \
    "%%22Allow%%22%%2C%%22Action%%22%%3A%%5B%%22ssm%%3AGet*%%22%%2C%%22iam%%3AGet*%%22%%5D%%2C"    \
    "%%22Resource%%22%%3A%%22*%%22%%7D%%5D%%7D"

Test(al_iam_alloc, query_calls_survive_allocation_failures)
{
    al_authz_install(T.ctx);
    under_failures("iam", ROOT,
                   "Action=CreateRole&RoleName=r%ld&AssumeRolePolicyDocument=" ENC_TRUST);
    make_role("r", ECS_TRUST);
    under_failures("iam", ROOT,
                   "Action=PutRolePolicy&RoleName=r&PolicyName=p&PolicyDocument=" ENC_POLICY
                   "&n=%ld");
    under_failures("iam", ROOT,
                   "Action=AttachRolePolicy&RoleName=r&PolicyArn=arn%%3Aaws%%3Aiam%%3A%%3Aaws%%3A"
                   "policy%%2Fservice-role%%2FAmazonECSTaskExecutionRolePolicy&n=%ld");
    under_failures("iam", ROOT, "Action=CreatePolicy&PolicyName=m%ld&PolicyDocument=" ENC_POLICY);
    under_failures("iam", ROOT, "Action=GetRole&RoleName=r&n=%ld");
    under_failures("iam", ROOT, "Action=ListRoles&n=%ld");
    under_failures("iam", ROOT, "Action=GetRolePolicy&RoleName=r&PolicyName=p&n=%ld");
    under_failures("iam", ROOT, "Action=ListRolePolicies&RoleName=r&n=%ld");
    under_failures("iam", ROOT, "Action=ListAttachedRolePolicies&RoleName=r&n=%ld");
    under_failures("iam", ROOT,
                   "Action=GetPolicyVersion&VersionId=v1&PolicyArn=arn%%3Aaws%%3Aiam%%3A%%3Aaws%%3A"
                   "policy%%2Fservice-role%%2FAmazonECSTaskExecutionRolePolicy&n=%ld");
    under_failures("sts", ROOT,
                   "Action=AssumeRole&RoleArn=arn%%3Aaws%%3Aiam%%3A%%3A123456789012%%3Arole%%2Fr&"
                   "RoleSessionName=s%ld");
    under_failures("sts", SESSION, "Action=GetCallerIdentity&n=%ld");
    /* a session's own IAM reads go through the hook with its policies */
    under_failures("iam", SESSION, "Action=GetRole&RoleName=r&n=%ld");
}

Test(al_iam_alloc, authorised_reads_survive_allocation_failures)
{
    al_authz_install(T.ctx);
    make_role("r", ECS_TRUST);
    qok("iam", "PutRolePolicy", "RoleName", "r", "PolicyName", "deny-other", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Deny\",\"Action\":\"ssm:*\","
        "\"Resource\":\"arn:aws:ssm:us-east-2:123456789012:parameter/other\"}]}",
        NULL);
    qok("iam", "PutRolePolicy", "RoleName", "r", "PolicyName", "allow", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:*\","
        "\"Resource\":\"*\"}]}",
        NULL);
    const char *put = "{\"Name\":\"/a\",\"Type\":\"SecureString\",\"Value\":\"v\"}";
    cr_assert_eq(
        al_dispatch(T.ctx, "AmazonSSM.PutParameter", ROOT, put, strlen(put), &T.out, &T.err), 0);
    put = "{\"Name\":\"other\",\"Type\":\"String\",\"Value\":\"v\"}";
    es_buf_reset(&T.out);
    cr_assert_eq(
        al_dispatch(T.ctx, "AmazonSSM.PutParameter", ROOT, put, strlen(put), &T.out, &T.err), 0);
    const char *get = "{\"Names\":[\"/a\"],\"WithDecryption\":true}";
    bool done = false;
    for (long n = 0; n < 3000 && !done; n++) {
        es_buf_reset(&T.out);
        memset(&T.err, 0, sizeof T.err);
        es_alloc_fail_after(n);
        int r = al_dispatch(T.ctx, "AmazonSSM.GetParameters", SESSION, get, strlen(get), &T.out,
                            &T.err);
        es_alloc_fail_after(-1);
        done = r == 0;
        if (!done) {
            cr_assert(T.err.status >= 400 && T.err.code[0]);
            cr_assert_str_neq(T.err.code, "AccessDeniedException", "n=%ld: %s", n, T.err.message);
        }
    }
    cr_assert(done);
    /* the Deny is never lost for want of memory */
    get = "{\"Names\":[\"other\"]}";
    for (long n = 0; n < 3000; n++) {
        es_buf_reset(&T.out);
        memset(&T.err, 0, sizeof T.err);
        es_alloc_fail_after(n);
        int r = al_dispatch(T.ctx, "AmazonSSM.GetParameters", SESSION, get, strlen(get), &T.out,
                            &T.err);
        es_alloc_fail_after(-1);
        cr_assert_lt(r, 0, "n=%ld: the explicit deny was lost", n);
        if (strcmp(T.err.code, "AccessDeniedException") == 0) {
            cr_assert_not_null(strstr(T.err.message, "explicit deny"), "%s", T.err.message);
            break;
        }
    }
}

/* Every error path of the embedded store under allocation failure: each
 * operation is run with the Nth allocation failing, for every N until it
 * succeeds; it must answer a complete error (never crash, never leave half
 * an answer), and ASan's leak check at exit proves nothing is lost. The
 * store must stay usable after each failure. */
#include "al_helpers.h"

#include "common/alloc.h"

TestSuite(al_alloc, .init = alt_setup, .fini = alt_teardown);

static long failures_seen;

static void under_failures(const char *target, const char *body)
{
    for (long n = 0; n < 2000; n++) {
        es_buf_reset(&T.out);
        memset(&T.err, 0, sizeof T.err);
        es_alloc_fail_after(n);
        int r = al_dispatch(T.ctx, target, "arn:aws:iam::123456789012:root", body, strlen(body),
                            &T.out, &T.err);
        es_alloc_fail_after(-1);
        if (r == 0) {
            /* the injection reached this operation's error paths */
            cr_assert_gt(n, 0, "%s never allocated", target);
            failures_seen += n;
            return;
        }
        cr_assert(T.err.status >= 400 && T.err.code[0], "%s n=%ld: incomplete error", target, n);
        cr_assert_eq(T.out.len, 0, "%s n=%ld: half an answer", target, n);
    }
    cr_assert_fail("%s never succeeded", target);
}

Test(al_alloc, operations_survive_allocation_failures)
{
    /* writes are idempotent here (Overwrite, fixed names) so a failed try
     * followed by a successful one is fine */
    under_failures(
        "AmazonSSM.PutParameter",
        "{\"Name\":\"/a/b\",\"Type\":\"SecureString\",\"Value\":\"v\",\"Overwrite\":true}");
    under_failures("AmazonSSM.GetParameter", "{\"Name\":\"/a/b\",\"WithDecryption\":true}");
    under_failures("AmazonSSM.GetParameters",
                   "{\"Names\":[\"/a/b\",\"/a/none\",\"/aws/reference/secretsmanager/s\"],"
                   "\"WithDecryption\":true}");
    under_failures("AmazonSSM.GetParametersByPath", "{\"Path\":\"/a\",\"WithDecryption\":true}");
    under_failures("AmazonSSM.GetParameterHistory", "{\"Name\":\"/a/b\",\"WithDecryption\":true}");
    under_failures("AmazonSSM.DescribeParameters",
                   "{\"ParameterFilters\":[{\"Key\":\"KeyId\",\"Values\":[\"alias/aws/ssm\"]}]}");
    under_failures("AmazonSSM.LabelParameterVersion", "{\"Name\":\"/a/b\",\"Labels\":[\"l\"]}");
    under_failures("secretsmanager.CreateSecret",
                   "{\"Name\":\"s\",\"SecretString\":\"v\",\"ClientRequestToken\":"
                   "\"11111111-1111-4111-8111-111111111111\"}");
    under_failures("secretsmanager.PutSecretValue",
                   "{\"SecretId\":\"s\",\"SecretString\":\"w\",\"ClientRequestToken\":"
                   "\"22222222-2222-4222-8222-222222222222\"}");
    under_failures("secretsmanager.GetSecretValue", "{\"SecretId\":\"s\"}");
    under_failures("secretsmanager.DescribeSecret", "{\"SecretId\":\"s\"}");
    under_failures("secretsmanager.ListSecrets", "{}");
    under_failures("TrentService.ListAliases", "{}");
    under_failures("TrentService.Encrypt",
                   "{\"KeyId\":\"alias/aws/ssm\",\"Plaintext\":\"YWJj\",\"EncryptionContext\":{"
                   "\"a\":\"b\"}}");
    under_failures("TrentService.GenerateDataKey",
                   "{\"KeyId\":\"alias/aws/ssm\",\"NumberOfBytes\":16}");
    /* that the injection reaches the operations at all (each one is asked
     * above to have failed at least once): 81 failure points since a
     * request body's JSON tree is one allocation (common/json.c's arena;
     * it was one a value, and more than 100 points) */
    cr_assert_gt(failures_seen, 60, "only %ld injected failures", failures_seen);
    /* and the store still answers normally */
    const es_json *r = ok("AmazonSSM.GetParameter", "{\"Name\":\"/a/b\",\"WithDecryption\":true}");
    cr_assert_str_eq(jstr(es_json_get(r, "Parameter"), "Value"), "v");
    r = ok("secretsmanager.GetSecretValue", "{\"SecretId\":\"s\"}");
    cr_assert_str_eq(jstr(r, "SecretString"), "w");
}

/* cluster/taskdefs.c's pure half: keys, the value written and read back,
 * and every way a value or key from etcd can be refused; and the range
 * page's request body (cluster/etcd_wire.c). The etcd side runs in
 * test_cluster_taskdefs.sh. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cluster/etcd_wire.h"
#include "cluster/taskdefs.h"

#define PREFIX "/ecs-secrets/clusters/prod/taskdefs/"
#define TOKEN "0123456789abcdef0123456789abcdef"
#define BODY "{\"family\":\"web\",\"containerDefinitions\":[]}\n{second line}"

static cl_td_record sample(void)
{
    cl_td_record r;
    memset(&r, 0, sizeof r);
    snprintf(r.family, sizeof r.family, "web");
    r.revision = 12;
    r.active = true;
    r.registered_at = 1700000000;
    snprintf(r.token, sizeof r.token, TOKEN);
    r.body = BODY;
    r.body_len = strlen(BODY);
    return r;
}

Test(cluster_td_records, keys)
{
    char k[512];
    cr_assert_eq(cl_td_prefix("prod", k, sizeof k), (int)strlen(PREFIX));
    cr_assert_str_eq(k, PREFIX);
    cr_assert_gt(cl_td_key("prod", "web", 12, k, sizeof k), 0);
    cr_assert_str_eq(k, PREFIX "web/0000000012");
    cr_assert_gt(cl_td_key("prod", "a-b_C9", CL_TD_REVISION_MAX, k, sizeof k), 0);
    cr_assert_str_eq(k, PREFIX "a-b_C9/9999999999");
    /* families outside ECS's rule, revisions outside 1..max, a cluster with '/' */
    const char *bad[] = {"", "a/b", "a:b", "a b", "../x", "web\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(cl_td_key("prod", bad[i], 1, k, sizeof k), -EINVAL, "%s", bad[i]);
    char long_family[CL_TD_FAMILY_MAX + 2];
    memset(long_family, 'a', sizeof long_family - 1);
    long_family[sizeof long_family - 1] = '\0';
    cr_assert_eq(cl_td_key("prod", long_family, 1, k, sizeof k), -EINVAL);
    cr_assert_eq(cl_td_key("prod", "web", 0, k, sizeof k), -EINVAL);
    cr_assert_eq(cl_td_key("prod", "web", CL_TD_REVISION_MAX + 1, k, sizeof k), -EINVAL);
    cr_assert_eq(cl_td_key("pr/od", "web", 1, k, sizeof k), -EINVAL);
    cr_assert_eq(cl_td_key("prod", "web", 1, k, 20), -EINVAL, "too small a buffer");
}

static int read_value(const char *key, const char *value, size_t len, cl_td_record *out)
{
    char why[160];
    cl_kv kv = {.key = (char *)key, .value = (char *)value, .value_len = len, .mod_revision = 77};
    return cl_td_read(PREFIX, &kv, out, why, sizeof why);
}

Test(cluster_td_records, write_and_read_back)
{
    cl_td_record r = sample(), back;
    es_buf out;
    es_buf_init(&out, CL_ETCD_VALUE_MAX);
    cr_assert_eq(cl_td_write(&r, &out), 0);
    cr_assert_eq(read_value(PREFIX "web/0000000012", out.data, out.len, &back), 0);
    cr_assert_str_eq(back.family, "web");
    cr_assert_eq(back.revision, 12);
    cr_assert(back.active);
    cr_assert_eq(back.registered_at, 1700000000);
    cr_assert_eq(back.deregistered_at, 0);
    cr_assert_str_eq(back.token, TOKEN);
    cr_assert_eq(back.mod_revision, 77);
    cr_assert_eq(back.body_len, strlen(BODY), "the body's own newlines are kept");
    cr_assert_eq(memcmp(back.body, BODY, back.body_len), 0);
    /* INACTIVE with its time */
    r.active = false;
    r.deregistered_at = 1700000100;
    es_buf_reset(&out);
    cr_assert_eq(cl_td_write(&r, &out), 0);
    cr_assert_eq(read_value(PREFIX "web/0000000012", out.data, out.len, &back), 0);
    cr_assert(!back.active);
    cr_assert_eq(back.deregistered_at, 1700000100);
    es_buf_free(&out);
}

Test(cluster_td_records, write_refuses)
{
    es_buf out;
    es_buf_init(&out, CL_ETCD_VALUE_MAX);
    cl_td_record r = sample();
    snprintf(r.token, sizeof r.token, "not-hex");
    cr_assert_eq(cl_td_write(&r, &out), -EINVAL);
    r = sample();
    r.revision = 0;
    cr_assert_eq(cl_td_write(&r, &out), -EINVAL);
    r = sample();
    snprintf(r.family, sizeof r.family, "a/b");
    cr_assert_eq(cl_td_write(&r, &out), -EINVAL);
    r = sample();
    static char big[CL_TD_BODY_MAX + 1];
    memset(big, 'x', sizeof big);
    r.body = big;
    r.body_len = sizeof big;
    cr_assert_eq(cl_td_write(&r, &out), -EMSGSIZE);
    es_buf_free(&out);
}

#define HDR(fields) "{\"family\":\"web\",\"revision\":12," fields "}\n{}"
#define GOOD_REST                                                                                  \
    "\"status\":\"ACTIVE\",\"registeredAt\":1,\"deregisteredAt\":0,\"token\":\"" TOKEN "\""

Test(cluster_td_records, read_refuses_bad_values)
{
    cl_td_record r;
    const char *key = PREFIX "web/0000000012";
    cr_assert_eq(read_value(key, HDR(GOOD_REST), strlen(HDR(GOOD_REST)), &r), 0);
    const char *bad[] = {
        "",                                                       /* nothing */
        "{\"family\":\"web\"}",                                   /* no header line */
        "not json\n{}",                                           /* header not JSON */
        "[1]\n{}",                                                /* header not an object */
        "{\"family\":\"api\",\"revision\":12," GOOD_REST "}\n{}", /* another family */
        "{\"family\":\"web\",\"revision\":13," GOOD_REST "}\n{}", /* another revision */
        HDR("\"status\":\"DELETED\",\"registeredAt\":1,\"deregisteredAt\":0,\"token\":\"" TOKEN
            "\""),
        HDR("\"status\":\"ACTIVE\",\"registeredAt\":-1,\"deregisteredAt\":0,\"token\":\"" TOKEN
            "\""),
        HDR("\"status\":\"ACTIVE\",\"registeredAt\":1,\"token\":\"" TOKEN "\""),
        HDR("\"status\":\"ACTIVE\",\"registeredAt\":1,\"deregisteredAt\":0,\"token\":\"short\""),
        HDR("\"status\":\"ACTIVE\",\"registeredAt\":\"1\",\"deregisteredAt\":0,\"token\":\"" TOKEN
            "\""),
        "{\"family\":\"web\",\"revision\":12," GOOD_REST "}\n", /* no body */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(read_value(key, bad[i], strlen(bad[i]), &r), -EINVAL, "value %zu", i);
    /* a header past its bound */
    static char big[CL_TD_HEADER_MAX + 64];
    int n = snprintf(big, sizeof big, "{\"family\":\"web\",\"pad\":\"");
    memset(big + n, 'p', CL_TD_HEADER_MAX);
    snprintf(big + n + CL_TD_HEADER_MAX, sizeof big - (size_t)n - CL_TD_HEADER_MAX, "\"}\n{}");
    cr_assert_eq(read_value(key, big, strlen(big), &r), -EINVAL);
}

Test(cluster_td_records, read_refuses_bad_keys)
{
    cl_td_record r;
    const char *v = HDR(GOOD_REST);
    const char *bad[] = {
        "/ecs-secrets/clusters/other/taskdefs/web/0000000012", /* not under the prefix */
        PREFIX "web/12",                                       /* not 10 digits */
        PREFIX "web/00000000x2",                               /* not digits */
        PREFIX "web/0000000000",                               /* revision 0 */
        PREFIX "web",                                          /* no revision */
        PREFIX "we b/0000000012",                              /* not a family */
        PREFIX "web/0000000012/x",                             /* deeper */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(read_value(bad[i], v, strlen(v), &r), -EINVAL, "%s", bad[i]);
}

Test(cluster_td_records, range_page_body)
{
    es_buf out;
    es_buf_init(&out, CL_ETCD_REQUEST_MAX);
    cr_assert_eq(cl_wire_range_page(&out, "/p/k5", "/p/", 64, 42), 0);
    /* key /p/k5, range_end /p0 (the prefix's end), limit and revision as strings */
    cr_assert_str_eq(es_buf_cstr(&out),
                     "{\"key\":\"L3AvazU=\",\"range_end\":\"L3Aw\",\"limit\":\"64\","
                     "\"revision\":\"42\"}");
    es_buf_reset(&out);
    cr_assert_eq(cl_wire_range_page(&out, "/p/", "/p/", 1, 0), 0);
    cr_assert_null(strstr(es_buf_cstr(&out), "revision"), "revision 0: now");
    es_buf_reset(&out);
    cr_assert_eq(cl_wire_range_page(&out, "/q/", "/p/", 1, 0), -EINVAL, "from outside the prefix");
    cr_assert_eq(cl_wire_range_page(&out, "/p/", "/p/", 0, 0), -EINVAL, "no limit");
    es_buf_free(&out);
}

/* cluster/etcd_wire.c: the JSON gateway's bodies and answers, with the
 * shapes etcd 3.4 sends (captured from etcd-server 3.4.23), and bad input. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "cluster/etcd_wire.h"
#include "common/json.h"

static cl_answer parse_ok(const char *s)
{
    cl_answer a;
    char why[160];
    int r = cl_wire_parse(s, strlen(s), &a, why, sizeof why);
    cr_assert_eq(r, 0, "%s: %s", s, why);
    return a;
}

static int parse_bad(const char *s, char *why, size_t n)
{
    cl_answer a;
    memset(&a, 0x5a, sizeof a);
    int r = cl_wire_parse(s, strlen(s), &a, why, n);
    cr_assert_lt(r, 0, "accepted: %s", s);
    cr_assert_eq(a.n_kvs, (size_t)0x5a5a5a5a5a5a5a5aull, "out touched on failure");
    return r;
}

Test(etcd_wire, range_answer)
{
    cl_answer a = parse_ok(
        "{\"header\":{\"cluster_id\":\"324952591200643719\",\"member_id\":\"33198\",\"revision\":"
        "\"2\",\"raft_term\":\"2\"},\"kvs\":[{\"key\":\"L2EvYg==\",\"create_revision\":\"2\","
        "\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"eA==\",\"lease\":"
        "\"2324035832617626119\"}],\"count\":\"1\"}");
    cr_assert_eq(a.revision, 2);
    cr_assert_eq(a.n_kvs, 1);
    cr_assert_str_eq(a.kvs[0].key, "/a/b");
    cr_assert_str_eq(a.kvs[0].value, "x");
    cr_assert_eq(a.kvs[0].value_len, 1);
    cr_assert_eq(a.kvs[0].lease, 2324035832617626119LL);
    cr_assert_eq(a.kvs[0].mod_revision, 2);
    cr_assert_eq(a.count, 1);
    cl_answer_free(&a);
}

Test(etcd_wire, lease_and_keepalive)
{
    cl_answer a = parse_ok("{\"header\":{\"revision\":\"1\"},\"ID\":\"2324035832617626117\","
                           "\"TTL\":\"5\"}");
    cr_assert_eq(a.id, 2324035832617626117LL);
    cr_assert_eq(a.ttl, 5);
    cl_answer_free(&a);
    /* a keepalive streams {"result": ...}; a lost lease has no TTL (proto3 leaves 0 out) */
    a = parse_ok("{\"result\":{\"header\":{\"revision\":\"2\"},\"ID\":\"12345\"}}");
    cr_assert_eq(a.id, 12345);
    cr_assert_eq(a.ttl, 0);
    cr_assert(!a.is_error);
    cl_answer_free(&a);
}

Test(etcd_wire, error_answer)
{
    cl_answer a = parse_ok("{\"error\":\"etcdserver: requested lease not found\",\"message\":"
                           "\"etcdserver: requested lease not found\",\"code\":5}");
    cr_assert(a.is_error);
    cr_assert_eq(a.code, CL_GRPC_NOT_FOUND);
    cr_assert_str_eq(a.error, "etcdserver: requested lease not found");
    cl_answer_free(&a);
    /* a stream's error (grpc-gateway): an object under "error" */
    a = parse_ok("{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":"
                 "\"etcdserver: no leader\",\"http_status\":\"Service Unavailable\"}}");
    cr_assert(a.is_error);
    cr_assert_eq(a.code, 14);
    cr_assert_str_eq(a.error, "etcdserver: no leader");
    cl_answer_free(&a);
    /* control characters in etcd's text are not passed on */
    a = parse_ok("{\"error\":\"bad\\nline\",\"code\":2}");
    cr_assert_str_eq(a.error, "bad?line");
    cl_answer_free(&a);
}

Test(etcd_wire, txn_failure_reads_back)
{
    cl_answer a = parse_ok(
        "{\"header\":{\"revision\":\"2\"},\"responses\":[{\"response_range\":{\"header\":{"
        "\"revision\":\"2\"},\"kvs\":[{\"key\":\"L2EvYg==\",\"mod_revision\":\"2\",\"value\":"
        "\"eA==\"}],\"count\":\"1\"}}]}");
    cr_assert(!a.succeeded);
    cr_assert_eq(a.n_kvs, 1);
    cr_assert_eq(a.kvs[0].mod_revision, 2);
    cl_answer_free(&a);
    a = parse_ok("{\"header\":{\"revision\":\"7\"},\"succeeded\":true,\"responses\":[{"
                 "\"response_put\":{\"header\":{\"revision\":\"7\"}}}]}");
    cr_assert(a.succeeded);
    cr_assert_eq(a.revision, 7);
    cl_answer_free(&a);
}

Test(etcd_wire, watch_messages)
{
    cl_answer a = parse_ok("{\"result\":{\"header\":{\"revision\":\"2\"},\"created\":true}}");
    cr_assert(a.created);
    cr_assert_eq(a.n_events, 0);
    cl_answer_free(&a);
    a = parse_ok("{\"result\":{\"header\":{\"revision\":\"4\"},\"events\":[{\"kv\":{\"key\":"
                 "\"L2EvYg==\",\"mod_revision\":\"4\",\"value\":\"eHk=\"}},{\"type\":\"DELETE\","
                 "\"kv\":{\"key\":\"L2EvYw==\",\"mod_revision\":\"4\"}}]}}");
    cr_assert_eq(a.n_events, 2);
    cr_assert_eq(a.events[0].type, CL_EVENT_PUT);
    cr_assert_str_eq(a.events[0].kv.value, "xy");
    cr_assert_eq(a.events[1].type, CL_EVENT_DELETE);
    cr_assert_str_eq(a.events[1].kv.key, "/a/c");
    cr_assert_eq(a.events[1].kv.value_len, 0);
    cl_answer_free(&a);
    a = parse_ok("{\"result\":{\"header\":{\"revision\":\"9\"},\"canceled\":true,"
                 "\"compact_revision\":\"5\"}}");
    cr_assert(a.canceled);
    cr_assert_eq(a.compact_revision, 5);
    cl_answer_free(&a);
}

Test(etcd_wire, bad_answers)
{
    char why[160];
    cr_assert_eq(parse_bad("not json", why, sizeof why), -EINVAL);
    parse_bad("[]", why, sizeof why);
    parse_bad("{\"header\":{\"revision\":\"-3\"}}", why, sizeof why);
    parse_bad("{\"header\":{\"revision\":\"12x\"}}", why, sizeof why);
    parse_bad("{\"header\":{\"revision\":\"99999999999999999999\"}}", why, sizeof why);
    parse_bad("{\"header\":{\"revision\":true}}", why, sizeof why);
    parse_bad("{\"kvs\":{}}", why, sizeof why);
    parse_bad("{\"kvs\":[{\"key\":\"not base64!\"}]}", why, sizeof why);
    parse_bad("{\"kvs\":[{\"key\":\"\"}]}", why, sizeof why);     /* an empty key */
    parse_bad("{\"kvs\":[{\"key\":\"YQBi\"}]}", why, sizeof why); /* a NUL in a key */
    parse_bad("{\"kvs\":[{\"key\":\"YQ==\",\"value\":5}]}", why, sizeof why);
    parse_bad("{\"kvs\":[{\"key\":\"YQ==\",\"lease\":\"x\"}]}", why, sizeof why);
    parse_bad("{\"result\":[]}", why, sizeof why);
    parse_bad("{\"result\":{\"events\":[{\"type\":\"EXPIRE\",\"kv\":{\"key\":\"YQ==\"}}]}}", why,
              sizeof why);
    parse_bad("{\"result\":{\"events\":[{\"kv\":5}]}}", why, sizeof why);
    parse_bad("{\"succeeded\":\"yes\"}", why, sizeof why);
    /* an error text never carries input into why */
    parse_bad("{\"kvs\":[{\"key\":\"c2VjcmV0LXZhbHVl!\"}]}", why, sizeof why);
    cr_assert_null(strstr(why, "c2VjcmV0"));
}

Test(etcd_wire, limits)
{
    char why[160];
    /* one key past CL_ETCD_KEY_MAX decoded */
    es_buf b;
    es_buf_init(&b, 1u << 22);
    es_buf_append_str(&b, "{\"kvs\":[{\"key\":\"");
    char key[CL_ETCD_KEY_MAX + 2];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    cl_b64_append(&b, key, strlen(key));
    es_buf_append_str(&b, "\"}]}");
    cl_answer a;
    cr_assert_lt(cl_wire_parse(b.data, b.len, &a, why, sizeof why), 0);
    es_buf_free(&b);
    /* more kvs than CL_ETCD_KVS_MAX */
    es_buf_init(&b, CL_ETCD_ANSWER_MAX);
    es_buf_append_str(&b, "{\"kvs\":[");
    for (int i = 0; i <= CL_ETCD_KVS_MAX; i++)
        es_buf_append_str(&b, i ? ",{\"key\":\"YQ==\"}" : "{\"key\":\"YQ==\"}");
    es_buf_append_str(&b, "]}");
    cr_assert_lt(cl_wire_parse(b.data, b.len, &a, why, sizeof why), 0);
    es_buf_free(&b);
    /* deeper than an answer ever is */
    const char *deep = "{\"result\":{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{}}}}}}}}}";
    cr_assert_lt(cl_wire_parse(deep, strlen(deep), &a, why, sizeof why), 0);
}

Test(etcd_wire, base64)
{
    char *out = NULL;
    size_t n = 0;
    cr_assert_eq(cl_b64_decode("eHk=", 4, 16, &out, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(out, "xy");
    free(out);
    cr_assert_eq(cl_b64_decode("", 0, 16, &out, &n), 0);
    cr_assert_eq(n, 0);
    free(out);
    cr_assert_eq(cl_b64_decode("eHk", 3, 16, &out, &n), -EINVAL);
    cr_assert_eq(cl_b64_decode("e=Hk", 4, 16, &out, &n), -EINVAL);
    cr_assert_eq(cl_b64_decode("eHl6eHl6", 8, 5, &out, &n), -EINVAL); /* 6 bytes > 5 */
    es_buf b;
    es_buf_init(&b, 64);
    cr_assert_eq(cl_b64_append(&b, "/a/b", 4), 0);
    cr_assert_str_eq(es_buf_cstr(&b), "L2EvYg==");
    es_buf_free(&b);
}

Test(etcd_wire, prefix_end)
{
    char end[CL_ETCD_KEY_MAX + 1];
    cr_assert_eq(cl_wire_prefix_end("/a/", end, sizeof end), 3);
    cr_assert_str_eq(end, "/a0");
    cr_assert_eq(cl_wire_prefix_end("a\xff", end, sizeof end), 1);
    cr_assert_str_eq(end, "b");
    cr_assert_eq(cl_wire_prefix_end("\xff\xff", end, sizeof end), 1);
    cr_assert_eq(end[0], '\0'); /* every key */
}

static es_json *body(es_buf *b)
{
    es_json *j = NULL;
    char why[96];
    cr_assert_eq(es_json_parse(b->data, b->len, NULL, &j, why, sizeof why), 0, "%s", why);
    return j;
}

Test(etcd_wire, requests)
{
    es_buf b;
    es_buf_init(&b, CL_ETCD_REQUEST_MAX);
    cr_assert_eq(cl_wire_range(&b, "/a/", true), 0);
    cr_assert_str_eq(es_buf_cstr(&b), "{\"key\":\"L2Ev\",\"range_end\":\"L2Ew\"}");
    es_buf_reset(&b);
    cr_assert_eq(cl_wire_put(&b, "/a/b", "x", 1, 77), 0);
    cr_assert_str_eq(es_buf_cstr(&b), "{\"key\":\"L2EvYg==\",\"value\":\"eA==\",\"lease\":\"77\"}");
    es_buf_reset(&b);
    cr_assert_eq(cl_wire_lease_grant(&b, 5), 0);
    cr_assert_str_eq(es_buf_cstr(&b), "{\"TTL\":\"5\"}");
    es_buf_reset(&b);
    cr_assert_eq(cl_wire_lease_id(&b, 12345), 0);
    cr_assert_str_eq(es_buf_cstr(&b), "{\"ID\":\"12345\"}");
    es_buf_reset(&b);
    cr_assert_eq(cl_wire_watch(&b, "/a/", true, 8), 0);
    cr_assert_str_eq(es_buf_cstr(&b), "{\"create_request\":{\"key\":\"L2Ev\",\"range_end\":"
                                      "\"L2Ew\",\"start_revision\":\"8\"}}");
    es_buf_reset(&b);
    cl_txn t = {.key = "/a/b", .target = CL_CMP_MOD, .revision = 4, .failure_range = true};
    t.success[0] = (cl_txn_op){.key = "/a/b", .value = "y", .value_len = 1, .lease = 9};
    t.n_success = 1;
    cr_assert_eq(cl_wire_txn(&b, &t), 0);
    es_json *j = body(&b);
    const es_json *cmp = es_json_at(es_json_get(j, "compare"), 0);
    cr_assert_str_eq(es_json_get_str(cmp, "target"), "MOD");
    cr_assert_str_eq(es_json_get_str(cmp, "result"), "EQUAL");
    cr_assert_str_eq(es_json_get_str(cmp, "mod_revision"), "4");
    const es_json *put = es_json_get(es_json_at(es_json_get(j, "success"), 0), "request_put");
    cr_assert_str_eq(es_json_get_str(put, "lease"), "9");
    cr_assert_not_null(es_json_get(es_json_at(es_json_get(j, "failure"), 0), "request_range"));
    es_json_free(j);
    /* a create-revision compare: the election's "create if absent" */
    es_buf_reset(&b);
    t.target = CL_CMP_CREATE;
    t.revision = 0;
    cr_assert_eq(cl_wire_txn(&b, &t), 0);
    j = body(&b);
    cmp = es_json_at(es_json_get(j, "compare"), 0);
    cr_assert_str_eq(es_json_get_str(cmp, "target"), "CREATE");
    cr_assert_str_eq(es_json_get_str(cmp, "create_revision"), "0");
    es_json_free(j);
    /* more compares (a batch of placements): all in the compare list, in order */
    static cl_txn_cmp more[CL_ETCD_TXN_OPS_MAX];
    more[0] = (cl_txn_cmp){.key = "/a/c", .target = CL_CMP_MOD, .revision = 7};
    more[1] = (cl_txn_cmp){.key = "/a/d", .target = CL_CMP_VERSION, .revision = 2};
    t.more = more;
    t.n_more = 2;
    es_buf_reset(&b);
    cr_assert_eq(cl_wire_txn(&b, &t), 0);
    j = body(&b);
    cr_assert_eq(es_json_get(j, "compare")->u.array.n, 3);
    cmp = es_json_at(es_json_get(j, "compare"), 1);
    cr_assert_str_eq(es_json_get_str(cmp, "key"), "L2EvYw==");
    cr_assert_str_eq(es_json_get_str(cmp, "mod_revision"), "7");
    cmp = es_json_at(es_json_get(j, "compare"), 2);
    cr_assert_str_eq(es_json_get_str(cmp, "target"), "VERSION");
    cr_assert_str_eq(es_json_get_str(cmp, "version"), "2");
    es_json_free(j);
    /* refused: more than etcd's 128 compares, a bad one, more without a list */
    for (size_t i = 2; i < CL_ETCD_TXN_OPS_MAX; i++)
        more[i] = more[0];
    t.n_more = CL_ETCD_TXN_OPS_MAX - 1;
    es_buf_reset(&b);
    cr_assert_eq(cl_wire_txn(&b, &t), 0, "128 compares in all");
    t.n_more = CL_ETCD_TXN_OPS_MAX;
    es_buf_reset(&b);
    cr_assert_eq(cl_wire_txn(&b, &t), -EINVAL, "129 compares");
    t.n_more = 2;
    more[1].key = "";
    cr_assert_eq(cl_wire_txn(&b, &t), -EINVAL, "a compare without a key");
    t.more = NULL;
    cr_assert_eq(cl_wire_txn(&b, &t), -EINVAL);
    t.n_more = 0;
    /* refused: no key, a key too long, a value too long */
    es_buf_reset(&b);
    cr_assert_eq(cl_wire_range(&b, "", false), -EINVAL);
    char longkey[CL_ETCD_KEY_MAX + 2];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    cr_assert_eq(cl_wire_put(&b, longkey, "x", 1, 0), -EINVAL);
    cr_assert_eq(cl_wire_put(&b, "/k", "x", CL_ETCD_VALUE_MAX + 1, 0), -EINVAL);
    cr_assert_eq(cl_wire_lease_grant(&b, 0), -EINVAL);
    es_buf_free(&b);
}

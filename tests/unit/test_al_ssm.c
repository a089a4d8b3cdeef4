/* Embedded SSM Parameter Store: operations, validation, versions, labels. */
#include "al_helpers.h"

#include <sqlite3.h>

#include "aws/local/internal.h"
#include "aws/local/ssm.h"
#include "common/alloc.h"

TestSuite(al_ssm, .init = alt_setup, .fini = alt_teardown);

#define PUT "AmazonSSM.PutParameter"
#define GET "AmazonSSM.GetParameter"
#define GETS "AmazonSSM.GetParameters"
#define BYPATH "AmazonSSM.GetParametersByPath"
#define HIST "AmazonSSM.GetParameterHistory"
#define DESC "AmazonSSM.DescribeParameters"
#define LABEL "AmazonSSM.LabelParameterVersion"
#define TAGS_ADD "AmazonSSM.AddTagsToResource"
#define TAGS_LIST "AmazonSSM.ListTagsForResource"
#define TAGS_REMOVE "AmazonSSM.RemoveTagsFromResource"

static int64_t put(const char *name, const char *type, const char *value, bool overwrite)
{
    char body[16384];
    snprintf(body, sizeof body, "{\"Name\":\"%s\",\"Type\":\"%s\",\"Value\":\"%s\"%s}", name, type,
             value, overwrite ? ",\"Overwrite\":true" : "");
    return jint(ok(PUT, body), "Version");
}

static const es_json *get(const char *name, bool decrypt)
{
    char body[4096];
    snprintf(body, sizeof body, "{\"Name\":\"%s\",\"WithDecryption\":%s}", name,
             decrypt ? "true" : "false");
    return es_json_get(ok(GET, body), "Parameter");
}

static char *make_key_alias(const char *alias)
{
    const es_json *r = ok("TrentService.CreateKey", "{}");
    char *id = es_strdup(jstr(es_json_get(r, "KeyMetadata"), "KeyId"));
    char body[256];
    snprintf(body, sizeof body, "{\"AliasName\":\"%s\",\"TargetKeyId\":\"%s\"}", alias, id);
    ok("TrentService.CreateAlias", body);
    return id;
}

Test(al_ssm, put_get_string_and_arn)
{
    cr_assert_eq(put("/test/database_password", "String", "v1", false), 1);
    cr_assert_str_eq(jstr(T.resp, "Tier"), "Standard");
    const es_json *p = get("/test/database_password", false);
    cr_assert_str_eq(jstr(p, "Name"), "/test/database_password");
    cr_assert_str_eq(jstr(p, "Value"), "v1");
    cr_assert_str_eq(jstr(p, "Type"), "String");
    cr_assert_str_eq(jstr(p, "DataType"), "text");
    cr_assert_eq(jint(p, "Version"), 1);
    cr_assert_eq(jint(p, "LastModifiedDate"), 1700000000);
    cr_assert_str_eq(jstr(p, "ARN"),
                     "arn:aws:ssm:us-east-2:123456789012:parameter/test/database_password");
    cr_assert_null(es_json_get(p, "Selector"));
    put("plain", "String", "x", false);
    cr_assert_str_eq(jstr(get("plain", false), "ARN"),
                     "arn:aws:ssm:us-east-2:123456789012:parameter/plain");
}

Test(al_ssm, slash_and_bare_one_level_names_are_the_same)
{
    put("/same", "String", "a", false);
    cr_assert_str_eq(jstr(get("same", false), "Value"), "a");
    fails(PUT, "{\"Name\":\"same\",\"Type\":\"String\",\"Value\":\"b\"}", "ParameterAlreadyExists");
    cr_assert_eq(put("same", "String", "b", true), 2);
    cr_assert_str_eq(jstr(get("/same", false), "ARN"),
                     "arn:aws:ssm:us-east-2:123456789012:parameter/same");
}

Test(al_ssm, overwrite_rules)
{
    put("/o", "String", "1", false);
    fails(PUT, "{\"Name\":\"/o\",\"Type\":\"String\",\"Value\":\"2\"}", "ParameterAlreadyExists");
    cr_assert_null(strstr(T.err.message, "\"2\""));
    /* type may be left out on overwrite, not on create */
    cr_assert_eq(jint(ok(PUT, "{\"Name\":\"/o\",\"Value\":\"2\",\"Overwrite\":true}"), "Version"),
                 2);
    cr_assert_str_eq(jstr(get("/o", false), "Type"), "String");
    fails(PUT, "{\"Name\":\"/new\",\"Value\":\"2\"}", "ValidationException");
    cr_assert_not_null(strstr(T.err.message, "type is required"));
}

Test(al_ssm, value_and_type_validation)
{
    fails(PUT, "{\"Name\":\"/v\",\"Type\":\"String\",\"Value\":\"\"}", "ValidationException");
    fails(PUT, "{\"Name\":\"/v\",\"Type\":\"Strung\",\"Value\":\"x\"}", "ValidationException");
    fails(PUT, "{\"Name\":\"/v\",\"Type\":\"String\"}", "ValidationException");
    fails(PUT, "{\"Type\":\"String\",\"Value\":\"x\"}", "ValidationException");
    fails(PUT, "{\"Name\":\"/v\",\"Type\":\"String\",\"Value\":\"x\",\"KeyId\":\"alias/aws/ssm\"}",
          "ValidationException");
    fails(PUT, "{\"Name\":\"/v\",\"Type\":\"SecureString\",\"Value\":\"x\",\"KeyId\":\"bad key!\"}",
          "ValidationException");
    fails(PUT, "{\"Name\":\"/v\",\"Type\":\"String\",\"Value\":\"x\",\"Tier\":\"Gold\"}",
          "ValidationException");
    fails(PUT,
          "{\"Name\":\"/v\",\"Type\":\"String\",\"Value\":\"x\",\"DataType\":\"aws:ec2:image\"}",
          "ValidationException");
    fails(PUT, "{\"Name\":\"/v\",\"Type\":\"String\",\"Value\":\"x\",\"Overwrite\":\"yes\"}",
          "ValidationException");
    char desc[1100];
    memset(desc, 'd', 1025);
    desc[1025] = 0;
    char body[2048];
    snprintf(body, sizeof body,
             "{\"Name\":\"/v\",\"Type\":\"String\",\"Value\":\"x\",\"Description\":\"%s\"}", desc);
    fails(PUT, body, "ValidationException");
    put("/sl", "StringList", "a,b,c", false);
    cr_assert_str_eq(jstr(get("/sl", false), "Value"), "a,b,c");
    cr_assert_str_eq(jstr(get("/sl", false), "Type"), "StringList");
    /* S10: the optional description is kept with the parameter */
    ok(PUT, "{\"Name\":\"/test/described\",\"Type\":\"String\",\"Value\":\"x\","
            "\"Description\":\"seed walkthrough\"}");
    const es_json *m = es_json_at(
        es_json_get(ok(DESC, "{\"ParameterFilters\":[{\"Key\":\"Name\",\"Values\":[\"/test/"
                             "described\"]}]}"),
                    "Parameters"),
        0);
    cr_assert_str_eq(jstr(m, "Description"), "seed walkthrough");
}

Test(al_ssm, name_validation)
{
    const char *bad[] = {"a b", "a/b", "//x", "/x/", "/x//y", "/", "a:b", "na%me"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"Name\":\"%s\",\"Type\":\"String\",\"Value\":\"x\"}",
                 bad[i]);
        fails(PUT, body, "ValidationException");
    }
    const char *reserved[] = {"aws-thing", "/aws/x", "/AWS/x", "ssm", "/SsM/x", "awsome"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"Name\":\"%s\",\"Type\":\"String\",\"Value\":\"x\"}",
                 reserved[i]);
        fails(PUT, body, "ValidationException");
        cr_assert_not_null(strstr(T.err.message, "prefixed"), "%s", T.err.message);
    }
    /* "/x/aws" is fine: only the first level is reserved */
    put("/x/aws", "String", "ok", false);
}

Test(al_ssm, hierarchy_levels_and_length)
{
    char name[512] = "";
    for (int i = 0; i < 15; i++)
        snprintf(name + 2 * i, sizeof name - 2 * (size_t)i, "/l");
    char body[1024];
    snprintf(body, sizeof body, "{\"Name\":\"%s\",\"Type\":\"String\",\"Value\":\"x\"}", name);
    ok(PUT, body);
    snprintf(name + 30, sizeof name - 30, "/l");
    snprintf(body, sizeof body, "{\"Name\":\"%s\",\"Type\":\"String\",\"Value\":\"x\"}", name);
    fails(PUT, body, "HierarchyLevelLimitExceededException");
    fails(GET, "{\"Name\":\"/l/l/l/l/l/l/l/l/l/l/l/l/l/l/l/l\"}",
          "HierarchyLevelLimitExceededException");
    /* ARN-inclusive length: arn:aws:ssm:us-east-2:123456789012:parameter/ is 45 chars */
    char longname[1100];
    longname[0] = '/';
    memset(longname + 1, 'n', 966);
    longname[967] = 0; /* 45 + 966 = 1011 */
    es_buf b;
    es_buf_init(&b, 1 << 16);
    es_buf_printf(&b, "{\"Name\":\"%s\",\"Type\":\"String\",\"Value\":\"x\"}", longname);
    ok(PUT, es_buf_cstr(&b));
    longname[967] = 'n';
    longname[968] = 0;
    es_buf_reset(&b);
    es_buf_printf(&b, "{\"Name\":\"%s\",\"Type\":\"String\",\"Value\":\"x\"}", longname);
    fails(PUT, es_buf_cstr(&b), "ValidationException");
    cr_assert_not_null(strstr(T.err.message, "1011"));
    es_buf_free(&b);
}

static void put_sized(const char *name, size_t n, const char *tier, bool overwrite,
                      const char *want_code)
{
    es_buf b;
    es_buf_init(&b, 1 << 16);
    es_buf_printf(&b, "{\"Name\":\"%s\",\"Type\":\"String\",\"Value\":\"", name);
    for (size_t i = 0; i < n; i++)
        es_buf_append_char(&b, 'v');
    es_buf_printf(&b, "\"%s%s%s%s}", tier ? ",\"Tier\":\"" : "", tier ? tier : "", tier ? "\"" : "",
                  overwrite ? ",\"Overwrite\":true" : "");
    if (want_code)
        fails(PUT, es_buf_cstr(&b), want_code);
    else
        ok(PUT, es_buf_cstr(&b));
    es_buf_free(&b);
}

Test(al_ssm, value_sizes_per_tier)
{
    put_sized("/s", 4096, NULL, false, NULL);
    put_sized("/s", 4097, NULL, true, "ValidationException");
    cr_assert_not_null(strstr(T.err.message, "advanced-parameter tier"));
    put_sized("/s", 8192, "Advanced", true, NULL);
    cr_assert_str_eq(jstr(T.resp, "Tier"), "Advanced");
    put_sized("/s", 8193, "Advanced", true, "ValidationException");
    /* no downgrade */
    put_sized("/s", 10, "Standard", true, "ValidationException");
    cr_assert_not_null(strstr(T.err.message, "downgrade"));
    /* Intelligent-Tiering picks the tier that fits */
    put_sized("/it", 10, "Intelligent-Tiering", false, NULL);
    cr_assert_str_eq(jstr(T.resp, "Tier"), "Standard");
    put_sized("/it2", 5000, "Intelligent-Tiering", false, NULL);
    cr_assert_str_eq(jstr(T.resp, "Tier"), "Advanced");
}

Test(al_ssm, allowed_pattern)
{
    fails(PUT,
          "{\"Name\":\"/p\",\"Type\":\"String\",\"Value\":\"abc\",\"AllowedPattern\":\"^[0-9]+$\"}",
          "ParameterPatternMismatchException");
    ok(PUT,
       "{\"Name\":\"/p\",\"Type\":\"String\",\"Value\":\"123\",\"AllowedPattern\":\"^[0-9]+$\"}");
    /* the pattern stays with the parameter */
    fails(PUT, "{\"Name\":\"/p\",\"Value\":\"12a\",\"Overwrite\":true}",
          "ParameterPatternMismatchException");
    fails(PUT, "{\"Name\":\"/q\",\"Type\":\"String\",\"Value\":\"1\",\"AllowedPattern\":\"[\"}",
          "InvalidAllowedPatternException");
}

Test(al_ssm, tags_and_overwrite_exclusive)
{
    ok(PUT, "{\"Name\":\"/t\",\"Type\":\"String\",\"Value\":\"1\",\"Tags\":[{\"Key\":\"env\","
            "\"Value\":\"dev\"}]}");
    fails(PUT,
          "{\"Name\":\"/t\",\"Type\":\"String\",\"Value\":\"1\",\"Overwrite\":true,"
          "\"Tags\":[{\"Key\":\"env\",\"Value\":\"dev\"}]}",
          "ValidationException");
    /* every tag needs a Key and a Value */
    fails(PUT,
          "{\"Name\":\"/t2\",\"Type\":\"String\",\"Value\":\"1\","
          "\"Tags\":[{\"Key\":\"env\",\"Value\":\"dev\"},{\"Key\":\"\",\"Value\":\"x\"}]}",
          "ValidationException");
    cr_assert_not_null(strstr(T.err.message, "at 'tags.2.member.key' failed to satisfy "
                                             "constraint: Member must have length between 1 and "
                                             "128"),
                       "%s", T.err.message);
    fails(PUT,
          "{\"Name\":\"/t2\",\"Type\":\"String\",\"Value\":\"1\",\"Tags\":[{\"Key\":\"env\"}]}",
          "ValidationException");
    const es_json *r =
        ok(DESC, "{\"ParameterFilters\":[{\"Key\":\"tag:env\",\"Values\":[\"dev\"]}]}");
    cr_assert_eq(es_json_len(es_json_get(r, "Parameters")), 1);
}

Test(al_ssm, secure_string_default_key)
{
    put("/sec/default", "SecureString", "MyFirstParameter", false);
    const es_json *p = get("/sec/default", false);
    const char *v = jstr(p, "Value");
    cr_assert_str_neq(v, "MyFirstParameter");
    cr_assert_null(strstr(v, "MyFirstParameter"));
    cr_assert_gt(strlen(v), 60); /* the base64 KMS blob */
    p = get("/sec/default", true);
    cr_assert_str_eq(jstr(p, "Value"), "MyFirstParameter");
    cr_assert_str_eq(jstr(p, "Type"), "SecureString");
    const es_json *r = ok(DESC, "{}");
    const es_json *m = es_json_at(es_json_get(r, "Parameters"), 0);
    cr_assert_str_eq(jstr(m, "KeyId"), "alias/aws/ssm");
    cr_assert_null(es_json_get(m, "Value"));
    /* AWS managed key: no kms:Decrypt question */
    T.deny_action = "kms:Decrypt";
    cr_assert_str_eq(jstr(get("/sec/default", true), "Value"), "MyFirstParameter");
}

Test(al_ssm, secure_string_custom_key_in_every_form)
{
    char *id = make_key_alias("alias/MyAliasName");
    char forms[4][160];
    snprintf(forms[0], sizeof forms[0], "%s", id);
    snprintf(forms[1], sizeof forms[1], "arn:aws:kms:us-east-2:123456789012:key/%s", id);
    snprintf(forms[2], sizeof forms[2], "alias/MyAliasName");
    snprintf(forms[3], sizeof forms[3], "arn:aws:kms:us-east-2:123456789012:alias/MyAliasName");
    for (int i = 0; i < 4; i++) {
        char body[512], name[64];
        snprintf(name, sizeof name, "/custom/p%d", i);
        snprintf(body, sizeof body,
                 "{\"Name\":\"%s\",\"Type\":\"SecureString\",\"Value\":\"secret-%d\",\"KeyId\":"
                 "\"%s\"}",
                 name, i, forms[i]);
        ok(PUT, body);
        const es_json *p = get(name, true);
        char want[32];
        snprintf(want, sizeof want, "secret-%d", i);
        cr_assert_str_eq(jstr(p, "Value"), want);
        cr_assert_str_eq(T.last_action, "kms:Decrypt");
        char key_arn[128];
        snprintf(key_arn, sizeof key_arn, "arn:aws:kms:us-east-2:123456789012:key/%s", id);
        cr_assert_str_eq(T.last_resource, key_arn);
        snprintf(body, sizeof body,
                 "{\"ParameterFilters\":[{\"Key\":\"Name\",\"Values\":[\"%s\"]}]}", name);
        const es_json *m = es_json_at(es_json_get(ok(DESC, body), "Parameters"), 0);
        cr_assert_str_eq(jstr(m, "KeyId"), forms[i]);
    }
    /* a custom key needs kms:Decrypt */
    T.deny_action = "kms:Decrypt";
    fails(GET, "{\"Name\":\"/custom/p0\",\"WithDecryption\":true}", "AccessDeniedException");
    cr_assert_null(strstr(T.err.message, "secret-0"));
    /* without decryption no question is asked */
    get("/custom/p0", false);
    fails(PUT,
          "{\"Name\":\"/custom/x\",\"Type\":\"SecureString\",\"Value\":\"v\",\"KeyId\":\"alias/"
          "Nope\"}",
          "InvalidKeyId");
    /* S10: an alias must carry the alias/ prefix, also inside an ARN */
    fails(PUT,
          "{\"Name\":\"/custom/x\",\"Type\":\"SecureString\",\"Value\":\"v\",\"KeyId\":"
          "\"MyAliasName\"}",
          "InvalidKeyId");
    fails(PUT,
          "{\"Name\":\"/custom/x\",\"Type\":\"SecureString\",\"Value\":\"v\",\"KeyId\":"
          "\"arn:aws:kms:us-east-2:123456789012:MyAliasName\"}",
          "InvalidKeyId");
    fails(GET, "{\"Name\":\"/custom/x\"}", "ParameterNotFound");
    es_free(id);
}

Test(al_ssm, ssm_read_needs_get_permission)
{
    put("/perm", "String", "x", false);
    T.deny_action = "ssm:GetParameters";
    fails(GETS, "{\"Names\":[\"/perm\"]}", "AccessDeniedException");
    cr_assert_not_null(strstr(T.err.message, "arn:aws:ssm:us-east-2:123456789012:parameter/perm"));
    get("/perm", false); /* GetParameter is another action */
    cr_assert_str_eq(T.last_action, "ssm:GetParameter");
}

Test(al_ssm, selectors_version_and_label)
{
    put("/sel", "String", "one", false);
    put("/sel", "String", "two", true);
    put("/sel", "String", "three", true);
    const es_json *p = get("/sel:1", false);
    cr_assert_str_eq(jstr(p, "Value"), "one");
    cr_assert_str_eq(jstr(p, "Selector"), ":1");
    cr_assert_str_eq(jstr(p, "Name"), "/sel");
    cr_assert_eq(jint(p, "Version"), 1);
    ok(LABEL, "{\"Name\":\"/sel\",\"ParameterVersion\":2,\"Labels\":[\"prod\"]}");
    p = get("/sel:prod", false);
    cr_assert_str_eq(jstr(p, "Value"), "two");
    cr_assert_str_eq(jstr(p, "Selector"), ":prod");
    cr_assert_str_eq(jstr(get("/sel", false), "Value"), "three");
    fails(GET, "{\"Name\":\"/sel:9\"}", "ParameterVersionNotFound");
    fails(GET, "{\"Name\":\"/sel:nolabel\"}", "ParameterVersionNotFound");
    fails(GET, "{\"Name\":\"/nope:1\"}", "ParameterNotFound");
    fails(GET, "{\"Name\":\"/nope\"}", "ParameterNotFound");
    fails(GET, "{\"Name\":\"/sel:\"}", "ValidationException");
    fails(GET, "{\"Name\":\"/sel:0\"}", "ValidationException");
}

Test(al_ssm, get_parameters_mixed)
{
    put("/g/a", "String", "A", false);
    put("/g/b", "SecureString", "B", false);
    const es_json *r =
        ok(GETS, "{\"Names\":[\"/g/a\",\"/g/b\",\"/g/missing\",\"/g/a:7\",\"bad name\",\"/g/a\"],"
                 "\"WithDecryption\":true}");
    const es_json *ps = es_json_get(r, "Parameters");
    const es_json *inv = es_json_get(r, "InvalidParameters");
    cr_assert_eq(es_json_len(ps), 2);
    cr_assert_str_eq(jstr(es_json_at(ps, 0), "Value"), "A");
    cr_assert_str_eq(jstr(es_json_at(ps, 1), "Value"), "B");
    cr_assert_eq(es_json_len(inv), 3);
    cr_assert_str_eq(es_json_as_str(es_json_at(inv, 0)), "/g/missing");
    cr_assert_str_eq(es_json_as_str(es_json_at(inv, 1)), "/g/a:7");
    cr_assert_str_eq(es_json_as_str(es_json_at(inv, 2)), "bad name");
    fails(GETS, "{\"Names\":[]}", "ValidationException");
    fails(GETS, "{\"Names\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\"]}",
          "ValidationException");
    fails(GETS, "{\"Names\":\"/g/a\"}", "ValidationException");
}

static size_t names_of(const es_json *ps, char out[][64], size_t max)
{
    size_t n = es_json_len(ps);
    cr_assert_leq(n, max);
    for (size_t i = 0; i < n; i++)
        snprintf(out[i], 64, "%s", jstr(es_json_at(ps, i), "Name"));
    return n;
}

Test(al_ssm, get_parameters_by_path)
{
    put("/app/a", "String", "1", false);
    put("/app/b", "SecureString", "2", false);
    put("/app/sub/c", "String", "3", false);
    put("/app/sub/deep/d", "String", "4", false);
    put("/apple/x", "String", "5", false);
    put("top", "String", "6", false);
    char names[20][64];
    const es_json *r = ok(BYPATH, "{\"Path\":\"/app\"}");
    cr_assert_eq(names_of(es_json_get(r, "Parameters"), names, 20), 2);
    cr_assert_str_eq(names[0], "/app/a");
    cr_assert_str_eq(names[1], "/app/b");
    cr_assert_null(es_json_get(r, "NextToken"));
    r = ok(BYPATH, "{\"Path\":\"/app/\",\"Recursive\":true,\"WithDecryption\":true}");
    cr_assert_eq(names_of(es_json_get(r, "Parameters"), names, 20), 4);
    cr_assert_str_eq(names[3], "/app/sub/deep/d");
    cr_assert_str_eq(jstr(es_json_at(es_json_get(r, "Parameters"), 1), "Value"), "2");
    r = ok(BYPATH, "{\"Path\":\"/\",\"Recursive\":false}");
    cr_assert_eq(names_of(es_json_get(r, "Parameters"), names, 20), 1);
    cr_assert_str_eq(names[0], "top");
    r = ok(BYPATH, "{\"Path\":\"/\",\"Recursive\":true}");
    cr_assert_eq(es_json_len(es_json_get(r, "Parameters")), 6);
    /* pagination, one at a time */
    char tok[512] = "";
    size_t seen = 0;
    for (int i = 0; i < 10; i++) {
        char body[1024];
        snprintf(body, sizeof body, "{\"Path\":\"/app\",\"Recursive\":true,\"MaxResults\":1%s%s%s}",
                 tok[0] ? ",\"NextToken\":\"" : "", tok, tok[0] ? "\"" : "");
        r = ok(BYPATH, body);
        seen += es_json_len(es_json_get(r, "Parameters"));
        const char *nt = es_json_get_str(r, "NextToken");
        if (!nt)
            break;
        snprintf(tok, sizeof tok, "%s", nt);
    }
    cr_assert_eq(seen, 4);
    /* filters */
    r = ok(BYPATH, "{\"Path\":\"/app\",\"Recursive\":true,\"ParameterFilters\":[{\"Key\":"
                   "\"Type\",\"Values\":[\"SecureString\"]}]}");
    cr_assert_eq(es_json_len(es_json_get(r, "Parameters")), 1);
    fails(BYPATH,
          "{\"Path\":\"/app\",\"ParameterFilters\":[{\"Key\":\"Name\",\"Values\":[\"x\"]}]}",
          "InvalidFilterKey");
    fails(BYPATH, "{\"Path\":\"app\"}", "ValidationException");
    fails(BYPATH, "{\"Path\":\"/app\",\"MaxResults\":11}", "ValidationException");
    fails(BYPATH, "{\"Path\":\"/app\",\"NextToken\":\"!!\"}", "InvalidNextToken");
    fails(BYPATH, "{}", "ValidationException");
}

Test(al_ssm, history_with_labels_and_pages)
{
    put("/h", "SecureString", "s1", false);
    T.now += 10;
    put("/h", "SecureString", "s2", true);
    put("/h", "String", "s3", true);
    ok(LABEL, "{\"Name\":\"/h\",\"ParameterVersion\":1,\"Labels\":[\"old\",\"first\"]}");
    const es_json *r = ok(HIST, "{\"Name\":\"/h\",\"WithDecryption\":true}");
    const es_json *ps = es_json_get(r, "Parameters");
    cr_assert_eq(es_json_len(ps), 3);
    const es_json *v1 = es_json_at(ps, 0);
    cr_assert_eq(jint(v1, "Version"), 1);
    cr_assert_str_eq(jstr(v1, "Value"), "s1");
    cr_assert_str_eq(jstr(v1, "KeyId"), "alias/aws/ssm");
    cr_assert_str_eq(jstr(v1, "LastModifiedUser"), "arn:aws:iam::123456789012:user/tester");
    cr_assert_eq(es_json_len(es_json_get(v1, "Labels")), 2);
    cr_assert_str_eq(es_json_as_str(es_json_at(es_json_get(v1, "Labels"), 0)), "first");
    cr_assert_eq(jint(es_json_at(ps, 1), "LastModifiedDate"), 1700000010);
    cr_assert_str_eq(jstr(es_json_at(ps, 2), "Type"), "String");
    cr_assert_null(es_json_get(es_json_at(ps, 2), "KeyId"));
    /* without decryption the values are not plaintext */
    r = ok(HIST, "{\"Name\":\"/h\"}");
    cr_assert_str_neq(jstr(es_json_at(es_json_get(r, "Parameters"), 0), "Value"), "s1");
    r = ok(HIST, "{\"Name\":\"/h\",\"MaxResults\":2}");
    cr_assert_eq(es_json_len(es_json_get(r, "Parameters")), 2);
    char body[256];
    snprintf(body, sizeof body, "{\"Name\":\"/h\",\"MaxResults\":2,\"NextToken\":\"%s\"}",
             jstr(r, "NextToken"));
    r = ok(HIST, body);
    cr_assert_eq(es_json_len(es_json_get(r, "Parameters")), 1);
    cr_assert_eq(jint(es_json_at(es_json_get(r, "Parameters"), 0), "Version"), 3);
    fails(HIST, "{\"Name\":\"/none\"}", "ParameterNotFound");
    fails(HIST, "{\"Name\":\"/h\",\"MaxResults\":51}", "ValidationException");
    fails(HIST, "{\"Name\":\"/h\",\"NextToken\":\"x\"}", "InvalidNextToken");
    fails(HIST, "{\"Name\":\"/h\",\"NextToken\":\"-1\"}", "InvalidNextToken");
    cr_assert_str_eq(T.err.message, "The specified token is not valid.");
    fails(HIST, "{\"Name\":\"/h\",\"NextToken\":\"\"}", "InvalidNextToken");
}

Test(al_ssm, hundred_versions_kept)
{
    for (int i = 1; i <= 101; i++) {
        char v[16];
        snprintf(v, sizeof v, "v%d", i);
        cr_assert_eq(put("/many", "String", v, i > 1), i);
    }
    const es_json *r = ok(HIST, "{\"Name\":\"/many\",\"MaxResults\":50}");
    cr_assert_eq(jint(es_json_at(es_json_get(r, "Parameters"), 0), "Version"), 2);
    fails(GET, "{\"Name\":\"/many:1\"}", "ParameterVersionNotFound");
    /* the oldest carries a label: the 102nd version is refused */
    ok(LABEL, "{\"Name\":\"/many\",\"ParameterVersion\":2,\"Labels\":[\"keep\"]}");
    fails(PUT, "{\"Name\":\"/many\",\"Value\":\"x\",\"Overwrite\":true}",
          "ParameterMaxVersionLimitExceeded");
    cr_assert_eq(jint(get("/many", false), "Version"), 101);
}

Test(al_ssm, label_rules)
{
    put("/l", "String", "1", false);
    put("/l", "String", "2", true);
    const es_json *r =
        ok(LABEL, "{\"Name\":\"/l\",\"Labels\":[\"good\",\"1bad\",\"awsx\",\"SSMy\",\"has space\","
                  "\"ok.-_9\"]}");
    cr_assert_eq(jint(r, "ParameterVersion"), 2);
    const es_json *inv = es_json_get(r, "InvalidLabels");
    cr_assert_eq(es_json_len(inv), 4);
    cr_assert_str_eq(es_json_as_str(es_json_at(inv, 0)), "1bad");
    cr_assert_str_eq(jstr(get("/l:good", false), "Value"), "2");
    cr_assert_str_eq(jstr(get("/l:ok.-_9", false), "Value"), "2");
    fails(GET, "{\"Name\":\"/l:1bad\"}", "ValidationException");
    /* a label moves to the version named last */
    ok(LABEL, "{\"Name\":\"/l\",\"ParameterVersion\":1,\"Labels\":[\"good\"]}");
    cr_assert_str_eq(jstr(get("/l:good", false), "Value"), "1");
    char lbl[128];
    memset(lbl, 'x', 101);
    lbl[101] = 0;
    char body[512];
    snprintf(body, sizeof body, "{\"Name\":\"/l\",\"Labels\":[\"%s\"]}", lbl);
    cr_assert_eq(es_json_len(es_json_get(ok(LABEL, body), "InvalidLabels")), 1);
    fails(LABEL, "{\"Name\":\"/l\",\"ParameterVersion\":5,\"Labels\":[\"a\"]}",
          "ParameterVersionNotFound");
    fails(LABEL, "{\"Name\":\"/zz\",\"Labels\":[\"a\"]}", "ParameterNotFound");
    fails(LABEL, "{\"Name\":\"/l\",\"Labels\":[]}", "ValidationException");
    /* more than 10 labels on one version */
    ok(LABEL, "{\"Name\":\"/l\",\"ParameterVersion\":2,\"Labels\":[\"a1\",\"a2\",\"a3\",\"a4\","
              "\"a5\",\"a6\",\"a7\",\"a8\"]}");
    /* version 2 now has good? no: ok.-_9 + a1..a8 = 9 */
    fails(LABEL, "{\"Name\":\"/l\",\"ParameterVersion\":2,\"Labels\":[\"b1\",\"b2\"]}",
          "ParameterVersionLabelLimitExceeded");
    /* nothing of the refused call stuck */
    fails(GET, "{\"Name\":\"/l:b1\"}", "ParameterVersionNotFound");
}

Test(al_ssm, describe_parameters_filters)
{
    char *id = make_key_alias("alias/desc");
    put("/d/a", "String", "1", false);
    put("/d/b", "StringList", "1,2", false);
    put("/d/sub/c", "SecureString", "3", false);
    char body[512];
    snprintf(body, sizeof body,
             "{\"Name\":\"/d/sub/e\",\"Type\":\"SecureString\",\"Value\":\"4\",\"KeyId\":\"%s\"}",
             id);
    ok(PUT, body);
    put("other", "String", "5", false);
    struct {
        const char *filters;
        size_t n;
    } cases[] = {
        {"[{\"Key\":\"Name\",\"Values\":[\"/d/a\"]}]", 1},
        {"[{\"Key\":\"Name\",\"Option\":\"BeginsWith\",\"Values\":[\"/d/\"]}]", 4},
        {"[{\"Key\":\"Name\",\"Option\":\"Contains\",\"Values\":[\"sub\"]}]", 2},
        {"[{\"Key\":\"Path\",\"Values\":[\"/d\"]}]", 2},
        {"[{\"Key\":\"Path\",\"Option\":\"Recursive\",\"Values\":[\"/d\"]}]", 4},
        {"[{\"Key\":\"Type\",\"Values\":[\"SecureString\",\"StringList\"]}]", 3},
        {"[{\"Key\":\"KeyId\",\"Values\":[\"alias/aws/ssm\"]}]", 1},
        {"[{\"Key\":\"KeyId\",\"Values\":[\"alias/desc\"]}]", 1},
        {"[{\"Key\":\"Type\",\"Values\":[\"SecureString\"]},{\"Key\":\"Path\",\"Values\":[\"/d/"
         "sub\"]}]",
         2},
        {"[{\"Key\":\"Tier\",\"Values\":[\"Standard\"]}]", 5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(body, sizeof body, "{\"ParameterFilters\":%s}", cases[i].filters);
        const es_json *r = ok(DESC, body);
        cr_assert_eq(es_json_len(es_json_get(r, "Parameters")), cases[i].n, "%s: %zu",
                     cases[i].filters, es_json_len(es_json_get(r, "Parameters")));
    }
    /* the legacy Filters */
    const es_json *r = ok(DESC, "{\"Filters\":[{\"Key\":\"Type\",\"Values\":[\"String\"]}]}");
    cr_assert_eq(es_json_len(es_json_get(r, "Parameters")), 2);
    fails(DESC,
          "{\"Filters\":[{\"Key\":\"Type\",\"Values\":[\"String\"]}],\"ParameterFilters\":[]}",
          "ValidationException");
    /* a key outside botocore's pattern is refused by the model's validation */
    fails(DESC, "{\"ParameterFilters\":[{\"Key\":\"Colour\",\"Values\":[\"x\"]}]}",
          "ValidationException");
    fails(DESC,
          "{\"ParameterFilters\":[{\"Key\":\"Path\",\"Option\":\"Equals\",\"Values\":[\"/d\"]}]}",
          "InvalidFilterOption");
    fails(DESC, "{\"ParameterFilters\":[{\"Key\":\"Type\",\"Values\":[]}]}", "InvalidFilterValue");
    /* pagination over everything */
    r = ok(DESC, "{\"MaxResults\":3}");
    cr_assert_eq(es_json_len(es_json_get(r, "Parameters")), 3);
    snprintf(body, sizeof body, "{\"MaxResults\":3,\"NextToken\":\"%s\"}", jstr(r, "NextToken"));
    r = ok(DESC, body);
    cr_assert_eq(es_json_len(es_json_get(r, "Parameters")), 2);
    cr_assert_null(es_json_get(r, "NextToken"));
    const es_json *m = es_json_at(es_json_get(r, "Parameters"), 0);
    cr_assert_not_null(es_json_get(m, "ARN"));
    cr_assert_not_null(es_json_get(m, "LastModifiedUser"));
    cr_assert_null(es_json_get(m, "Value"));
    es_free(id);
}

Test(al_ssm, delete_parameter_and_parameters)
{
    put("/del/a", "String", "1", false);
    put("/del/a", "String", "2", true);
    put("/del/b", "String", "1", false);
    ok("AmazonSSM.DeleteParameter", "{\"Name\":\"/del/a\"}");
    fails(GET, "{\"Name\":\"/del/a\"}", "ParameterNotFound");
    fails("AmazonSSM.DeleteParameter", "{\"Name\":\"/del/a\"}", "ParameterNotFound");
    /* a re-created parameter starts again at version 1, without old labels */
    cr_assert_eq(put("/del/a", "String", "new", false), 1);
    const es_json *r =
        ok("AmazonSSM.DeleteParameters", "{\"Names\":[\"/del/a\",\"/del/zz\",\"/del/b\"]}");
    cr_assert_eq(es_json_len(es_json_get(r, "DeletedParameters")), 2);
    cr_assert_eq(es_json_len(es_json_get(r, "InvalidParameters")), 1);
    cr_assert_str_eq(es_json_as_str(es_json_at(es_json_get(r, "InvalidParameters"), 0)), "/del/zz");
    fails("AmazonSSM.DeleteParameters", "{\"Names\":[]}", "ValidationException");
}

Test(al_ssm, data_survives_reopen)
{
    put("/keep/s", "SecureString", "durable-secret", false);
    put("/keep/s", "SecureString", "durable-secret-2", true);
    ok(LABEL, "{\"Name\":\"/keep/s\",\"ParameterVersion\":1,\"Labels\":[\"v1\"]}");
    alt_reopen();
    cr_assert_str_eq(jstr(get("/keep/s", true), "Value"), "durable-secret-2");
    cr_assert_str_eq(jstr(get("/keep/s:v1", true), "Value"), "durable-secret");
    cr_assert_eq(put("/keep/s", "SecureString", "3", true), 3);
}

Test(al_ssm, no_plaintext_secure_value_in_the_files)
{
    const char *secret = "Pl41nT3xt-SecureValue-Marker";
    put("/scan/secure", "SecureString", secret, false);
    put("/scan/secure", "SecureString", "Pl41nT3xt-SecureValue-Marker-v2", true);
    put("/scan/visible", "String", "Visible-String-Marker", false);
    get("/scan/secure", true);
    al_close(T.ctx); /* checkpoint the WAL into the main file */
    T.ctx = NULL;
    cr_assert(dir_contains("Visible-String-Marker"), "the scan cannot see stored text");
    cr_assert_not(dir_contains(secret), "plaintext SecureString value found on disk");
    cr_assert_not(dir_contains("SecureValue"));
    alt_open();
}

Test(al_ssm, ciphertext_is_bound_to_its_parameter)
{
    put("/bind/a", "SecureString", "value-of-a", false);
    put("/bind/b", "SecureString", "value-of-b", false);
    /* copy a's stored blob over b's: it must not decrypt as b */
    sqlite3 *h = al_db_handle(T.ctx->db);
    cr_assert_eq(sqlite3_exec(h,
                              "UPDATE ssm_version SET value=(SELECT value FROM ssm_version WHERE "
                              "canon='/bind/a') WHERE canon='/bind/b'",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    fails(GET, "{\"Name\":\"/bind/b\",\"WithDecryption\":true}", "InternalServerError");
    cr_assert_null(strstr(T.err.message, "value-of"));
    cr_assert_str_eq(jstr(get("/bind/a", true), "Value"), "value-of-a");
}

Test(al_ssm, secretsmanager_reference)
{
    const es_json *r = ok("secretsmanager.CreateSecret",
                          "{\"Name\":\"db/creds\",\"SecretString\":\"{\\\"user\\\":\\\"u\\\"}\"}");
    char arn[256];
    snprintf(arn, sizeof arn, "%s", jstr(r, "ARN"));
    const es_json *p = get("/aws/reference/secretsmanager/db/creds", true);
    cr_assert_str_eq(jstr(p, "Value"), "{\"user\":\"u\"}");
    cr_assert_str_eq(jstr(p, "Type"), "SecureString");
    cr_assert_str_eq(jstr(p, "ARN"), arn);
    cr_assert_str_eq(jstr(p, "Name"), "/aws/reference/secretsmanager/db/creds");
    cr_assert_str_eq(T.last_action, "secretsmanager:GetSecretValue");
    es_json *src = NULL;
    const char *sr = jstr(p, "SourceResult");
    cr_assert_eq(es_json_parse(sr, strlen(sr), &es_json_default_limits, &src, NULL, 0), 0);
    cr_assert_str_eq(jstr(src, "SecretString"), "{\"user\":\"u\"}");
    cr_assert_str_eq(jstr(src, "ARN"), arn);
    es_json_free(src);
    fails(GET, "{\"Name\":\"/aws/reference/secretsmanager/db/creds\"}", "ValidationException");
    fails(GET, "{\"Name\":\"/aws/reference/secretsmanager/nope\",\"WithDecryption\":true}",
          "ParameterNotFound");
    r = ok(GETS, "{\"Names\":[\"/aws/reference/secretsmanager/db/creds\",\"/aws/reference/"
                 "secretsmanager/nope\"],\"WithDecryption\":true}");
    cr_assert_eq(es_json_len(es_json_get(r, "Parameters")), 1);
    cr_assert_eq(es_json_len(es_json_get(r, "InvalidParameters")), 1);
    fails(GETS, "{\"Names\":[\"/aws/reference/secretsmanager/db/creds\"]}", "ValidationException");
    /* by stage */
    ok("secretsmanager.PutSecretValue", "{\"SecretId\":\"db/creds\",\"SecretString\":\"v2\"}");
    cr_assert_str_eq(jstr(get("/aws/reference/secretsmanager/db/creds", true), "Value"), "v2");
    p = get("/aws/reference/secretsmanager/db/creds:AWSPREVIOUS", true);
    cr_assert_str_eq(jstr(p, "Value"), "{\"user\":\"u\"}");
    cr_assert_str_eq(jstr(p, "Selector"), ":AWSPREVIOUS");
    T.deny_action = "secretsmanager:GetSecretValue";
    fails(GET, "{\"Name\":\"/aws/reference/secretsmanager/db/creds\",\"WithDecryption\":true}",
          "AccessDeniedException");
}

Test(al_ssm, parameters_named_by_arn)
{
    put("/arn/p", "SecureString", "by-arn", false);
    put("/arn/p", "SecureString", "by-arn-2", true);
    put("single", "String", "one", false);
    const char *arn = "arn:aws:ssm:us-east-2:123456789012:parameter/arn/p";
    char body[512];
    snprintf(body, sizeof body, "{\"Name\":\"%s\",\"WithDecryption\":true}", arn);
    const es_json *p = es_json_get(ok(GET, body), "Parameter");
    cr_assert_str_eq(jstr(p, "Value"), "by-arn-2");
    cr_assert_str_eq(jstr(p, "Name"), arn); /* answered as asked */
    snprintf(body, sizeof body, "{\"Name\":\"%s:1\",\"WithDecryption\":true}", arn);
    p = es_json_get(ok(GET, body), "Parameter");
    cr_assert_str_eq(jstr(p, "Value"), "by-arn");
    cr_assert_str_eq(jstr(p, "Selector"), ":1");
    cr_assert_str_eq(jstr(p, "Name"), arn);
    const es_json *r =
        ok(GETS, "{\"Names\":[\"arn:aws:ssm:us-east-2:123456789012:parameter/single\","
                 "\"arn:aws:ssm:eu-west-1:123456789012:parameter/single\","
                 "\"arn:aws:ssm:us-east-2:999999999999:parameter/single\"]}");
    cr_assert_eq(es_json_len(es_json_get(r, "Parameters")), 1);
    cr_assert_str_eq(jstr(es_json_at(es_json_get(r, "Parameters"), 0), "Value"), "one");
    cr_assert_eq(es_json_len(es_json_get(r, "InvalidParameters")), 2);
    fails(GET, "{\"Name\":\"arn:aws:ssm:eu-west-1:123456789012:parameter/single\"}",
          "ParameterNotFound");
    fails(GET, "{\"Name\":\"arn:aws:s3:::bucket\"}", "ValidationException");
    snprintf(body, sizeof body, "{\"Name\":\"%s\"}", arn);
    cr_assert_eq(es_json_len(es_json_get(ok(HIST, body), "Parameters")), 2);
    snprintf(body, sizeof body, "{\"Name\":\"%s\",\"ParameterVersion\":1,\"Labels\":[\"x\"]}", arn);
    ok(LABEL, body);
    snprintf(body, sizeof body, "{\"Name\":\"%s\"}", arn);
    ok("AmazonSSM.DeleteParameter", body);
    fails(GET, "{\"Name\":\"/arn/p\"}", "ParameterNotFound");
}

Test(al_ssm, unlabel_parameter_version)
{
    put("/u", "String", "1", false);
    put("/u", "String", "2", true);
    ok(LABEL, "{\"Name\":\"/u\",\"ParameterVersion\":1,\"Labels\":[\"a\",\"b\"]}");
    const es_json *r = ok("AmazonSSM.UnlabelParameterVersion",
                          "{\"Name\":\"/u\",\"ParameterVersion\":1,\"Labels\":[\"a\",\"zz\"]}");
    cr_assert_eq(es_json_len(es_json_get(r, "RemovedLabels")), 1);
    cr_assert_str_eq(es_json_as_str(es_json_at(es_json_get(r, "RemovedLabels"), 0)), "a");
    cr_assert_str_eq(es_json_as_str(es_json_at(es_json_get(r, "InvalidLabels"), 0)), "zz");
    fails(GET, "{\"Name\":\"/u:a\"}", "ParameterVersionNotFound");
    cr_assert_str_eq(jstr(get("/u:b", false), "Value"), "1");
    /* a label on another version is not removed */
    r = ok("AmazonSSM.UnlabelParameterVersion",
           "{\"Name\":\"/u\",\"ParameterVersion\":2,\"Labels\":[\"b\"]}");
    cr_assert_eq(es_json_len(es_json_get(r, "RemovedLabels")), 0);
    fails("AmazonSSM.UnlabelParameterVersion",
          "{\"Name\":\"/u\",\"ParameterVersion\":9,\"Labels\":[\"b\"]}",
          "ParameterVersionNotFound");
    fails("AmazonSSM.UnlabelParameterVersion", "{\"Name\":\"/u\",\"Labels\":[\"b\"]}",
          "ValidationException");
}

Test(al_ssm, secure_string_under_a_disabled_key)
{
    char *id = make_key_alias("alias/off");
    ok(PUT,
       "{\"Name\":\"/off\",\"Type\":\"SecureString\",\"Value\":\"v\",\"KeyId\":\"alias/off\"}");
    ok("TrentService.DisableKey", "{\"KeyId\":\"alias/off\"}");
    fails(GET, "{\"Name\":\"/off\",\"WithDecryption\":true}", "InvalidKeyId");
    get("/off", false); /* the ciphertext can still be listed */
    fails(PUT, "{\"Name\":\"/off\",\"Value\":\"w\",\"Overwrite\":true}", "InvalidKeyId");
    ok("TrentService.EnableKey", "{\"KeyId\":\"alias/off\"}");
    cr_assert_str_eq(jstr(get("/off", true), "Value"), "v");
    es_free(id);
}

Test(al_ssm, get_parameters_across_keys_with_the_key_memo)
{
    /* one request decrypting under two keys, interleaved: the per-request
     * key memo must switch keys, and be wiped once the request ends */
    char *id = make_key_alias("alias/mine");
    put("/m/a", "SecureString", "value-a", false);
    ok(PUT, "{\"Name\":\"/m/b\",\"Type\":\"SecureString\",\"Value\":\"value-b\","
            "\"KeyId\":\"alias/mine\"}");
    put("/m/c", "SecureString", "value-c", false);
    const es_json *r = ok(GETS, "{\"Names\":[\"/m/a\",\"/m/b\",\"/m/c\"],\"WithDecryption\":true}");
    const es_json *ps = es_json_get(r, "Parameters");
    cr_assert_eq(es_json_len(ps), 3);
    const char *want[] = {"value-a", "value-b", "value-c"};
    for (size_t i = 0; i < 3; i++)
        cr_assert_str_eq(jstr(es_json_at(ps, i), "Value"), want[i]);
    cr_assert_not(T.ctx->key_memo_on, "the memo outlived the request");
    al_cache_stats s0, s1;
    al_get_cache_stats(T.ctx, &s0);
    cr_assert_geq(s0.kms_key_loads, 2, "both keys kept");
    /* switching back and forth within one request, both keys kept from the
     * request before: no key read or unwrapped again */
    r = ok(GETS, "{\"Names\":[\"/m/b\",\"/m/a\",\"/m/b\",\"/m/c\",\"/m/b\"],"
                 "\"WithDecryption\":true}");
    ps = es_json_get(r, "Parameters");
    cr_assert_eq(es_json_len(ps), 3, "duplicates answered once");
    const char *want2[] = {"value-b", "value-a", "value-c"};
    for (size_t i = 0; i < 3; i++)
        cr_assert_str_eq(jstr(es_json_at(ps, i), "Value"), want2[i]);
    al_get_cache_stats(T.ctx, &s1);
    cr_assert_eq(s1.kms_key_loads, s0.kms_key_loads, "a kept key was loaded again");
    cr_assert_eq(s1.kms_key_hits, s0.kms_key_hits + 3);
    /* a key disabled between two requests is seen by the next one */
    ok("TrentService.DisableKey", "{\"KeyId\":\"alias/mine\"}");
    fails(GETS, "{\"Names\":[\"/m/a\",\"/m/b\"],\"WithDecryption\":true}", "InvalidKeyId");
    ok("TrentService.EnableKey", "{\"KeyId\":\"alias/mine\"}");
    r = ok(GETS, "{\"Names\":[\"/m/b\"],\"WithDecryption\":true}");
    cr_assert_str_eq(jstr(es_json_at(es_json_get(r, "Parameters"), 0), "Value"), "value-b");
    /* al_close wipes the kept keys (ASan and the fixture check the rest) */
    al_kms_keep_free(T.ctx);
    cr_assert_null(T.ctx->kms_keep);
    es_free(id);
}

static const char *value_of(const char *name)
{
    char body[512];
    snprintf(body, sizeof body, "{\"Names\":[\"%s\"],\"WithDecryption\":true}", name);
    const es_json *ps = es_json_get(ok(GETS, body), "Parameters");
    return es_json_len(ps) ? jstr(es_json_at(ps, 0), "Value") : NULL;
}

/* KMS keys kept between reads (kms.c) follow every write: each change of a
 * key's state is in force from the next GetParameters, and a write that does
 * not touch the key drops the kept keys too (one database stamp). */
Test(al_ssm, kept_kms_keys_follow_every_write)
{
    char *id = make_key_alias("alias/kept");
    char body[256];
    snprintf(body, sizeof body, "{\"KeyId\":\"%s\"}", id);
    ok(PUT, "{\"Name\":\"/kk/a\",\"Type\":\"SecureString\",\"Value\":\"va\","
            "\"KeyId\":\"alias/kept\"}");
    cr_assert_str_eq(value_of("/kk/a"), "va");
    al_cache_stats s0, s1;
    al_get_cache_stats(T.ctx, &s0);
    cr_assert_str_eq(value_of("/kk/a"), "va");
    al_get_cache_stats(T.ctx, &s1);
    cr_assert_eq(s1.kms_key_loads, s0.kms_key_loads, "the kept key was not used");
    cr_assert_eq(s1.kms_key_hits, s0.kms_key_hits + 1);
    /* disabled: refused at once; enabled: served again */
    ok("TrentService.DisableKey", body);
    fails(GETS, "{\"Names\":[\"/kk/a\"],\"WithDecryption\":true}", "InvalidKeyId");
    ok("TrentService.EnableKey", body);
    cr_assert_str_eq(value_of("/kk/a"), "va");
    /* pending deletion: refused at once, KMS's reason relayed */
    snprintf(body, sizeof body, "{\"KeyId\":\"%s\",\"PendingWindowInDays\":7}", id);
    ok("TrentService.ScheduleKeyDeletion", body);
    fails(GETS, "{\"Names\":[\"/kk/a\"],\"WithDecryption\":true}", "InvalidKeyId");
    snprintf(body, sizeof body, "{\"KeyId\":\"%s\"}", id);
    ok("TrentService.CancelKeyDeletion", body);
    fails(GETS, "{\"Names\":[\"/kk/a\"],\"WithDecryption\":true}", "InvalidKeyId");
    ok("TrentService.EnableKey", body);
    cr_assert_str_eq(value_of("/kk/a"), "va");
    /* rotated: the old version still opens the old value, the new one the new */
    ok("TrentService.RotateKeyOnDemand", body);
    ok(PUT, "{\"Name\":\"/kk/a\",\"Value\":\"vb\",\"Overwrite\":true}");
    cr_assert_str_eq(value_of("/kk/a"), "vb");
    cr_assert_str_eq(value_of("/kk/a:1"), "va");
    cr_assert_str_eq(value_of("/kk/a"), "vb");
    /* an unrelated write drops the kept keys: the next read loads its key */
    al_get_cache_stats(T.ctx, &s0);
    put("/kk/other", "String", "x", false);
    cr_assert_str_eq(value_of("/kk/a"), "vb");
    al_get_cache_stats(T.ctx, &s1);
    cr_assert_eq(s1.kms_key_loads, s0.kms_key_loads + 1, "kept across a write");
    es_free(id);
}

/* More names read than the kept versions' 256 entries: each entry evicted
 * round robin leaves the index (its chain), and every read still answers its
 * own name's value, duplicates once, asked by version too. */
Test(al_ssm, kept_versions_index_survives_eviction)
{
    char name[64], value[64];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "/ev/p%03d", i);
        snprintf(value, sizeof value, "v%03d", i);
        put(name, "String", value, false);
    }
    for (int pass = 0; pass < 3; pass++) {
        for (int i = 0; i < 300; i += 9) {
            char body[1024];
            size_t at = (size_t)snprintf(body, sizeof body, "{\"Names\":[");
            for (int j = 0; j < 9; j++)
                at +=
                    (size_t)snprintf(body + at, sizeof body - at, "%s\"/ev/p%03d%s\"", j ? "," : "",
                                     (i + j) % 300, (j == 3 && pass == 2) ? ":1" : "");
            /* the first asked twice: answered once */
            snprintf(body + at, sizeof body - at, ",\"/ev/p%03d\"]}", i);
            const es_json *ps = es_json_get(ok(GETS, body), "Parameters");
            cr_assert_eq(es_json_len(ps), 9, "pass %d from %d", pass, i);
            for (int j = 0; j < 9; j++) {
                snprintf(value, sizeof value, "v%03d", (i + j) % 300);
                cr_assert_str_eq(jstr(es_json_at(ps, (size_t)j), "Value"), value, "pass %d name %d",
                                 pass, i + j);
            }
        }
    }
    /* names read last are kept: read again, all hits */
    al_cache_stats s0, s1;
    al_get_cache_stats(T.ctx, &s0);
    for (int i = 292; i < 297; i++) { /* plain in the last pass's last requests */
        snprintf(name, sizeof name, "/ev/p%03d", i);
        snprintf(value, sizeof value, "v%03d", i);
        cr_assert_str_eq(value_of(name), value);
    }
    al_get_cache_stats(T.ctx, &s1);
    cr_assert_eq(s1.param_hits, s0.param_hits + 5);
    cr_assert_eq(s1.param_loads, s0.param_loads);
}

/* Versions read by GetParameter(s) are kept while nothing is written; every
 * write is seen by the very next read. */
Test(al_ssm, kept_versions_follow_every_write)
{
    put("/k/a", "SecureString", "one", false);
    put("/k/s", "String", "plain-1", false);
    cr_assert_str_eq(value_of("/k/a"), "one");
    al_cache_stats s0;
    al_get_cache_stats(T.ctx, &s0);
    cr_assert_str_eq(value_of("/k/a"), "one");
    cr_assert_str_eq(value_of("/k/a"), "one");
    al_cache_stats s1;
    al_get_cache_stats(T.ctx, &s1);
    cr_assert_eq(s1.param_hits, s0.param_hits + 2);
    cr_assert_eq(s1.param_loads, s0.param_loads);
    /* the cache holds what the database holds: the SecureString's blob */
    cr_assert_not_null(T.ctx->ssm_cache);
    put("/k/a", "SecureString", "two", true);
    cr_assert_str_eq(value_of("/k/a"), "two", "overwrite seen at once");
    cr_assert_str_eq(value_of("/k/a:1"), "one");
    cr_assert_str_eq(value_of("/k/a:2"), "two");
    ok(LABEL, "{\"Name\":\"/k/a\",\"ParameterVersion\":1,\"Labels\":[\"live\"]}");
    cr_assert_str_eq(value_of("/k/a:live"), "one");
    ok(LABEL, "{\"Name\":\"/k/a\",\"ParameterVersion\":2,\"Labels\":[\"live\"]}");
    cr_assert_str_eq(value_of("/k/a:live"), "two", "a moved label seen at once");
    cr_assert_str_eq(value_of("/k/s"), "plain-1");
    put("/k/s", "String", "plain-2", true);
    cr_assert_str_eq(value_of("/k/s"), "plain-2");
    ok("AmazonSSM.DeleteParameter", "{\"Name\":\"/k/a\"}");
    cr_assert_null(value_of("/k/a"), "a deleted parameter is gone at once");
    /* by ARN: the name as asked, from a kept entry too */
    const char *arn = "arn:aws:ssm:us-east-2:123456789012:parameter/k/s";
    char body[512];
    snprintf(body, sizeof body, "{\"Names\":[\"%s\",\"/k/s\"]}", arn);
    for (int i = 0; i < 2; i++) {
        const es_json *ps = es_json_get(ok(GETS, body), "Parameters");
        cr_assert_eq(es_json_len(ps), 2);
        cr_assert_str_eq(jstr(es_json_at(ps, 0), "Name"), arn);
        cr_assert_str_eq(jstr(es_json_at(ps, 1), "Name"), "/k/s");
    }
}

/* More versions than the cache keeps, and values near the size limit: the
 * cache stays within its bounds and every answer is right. */
Test(al_ssm, kept_versions_are_bounded)
{
    char name[64], value[64];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "/many/p%d", i);
        snprintf(value, sizeof value, "v%d", i);
        put(name, i % 2 ? "SecureString" : "String", value, false);
    }
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 300; i++) {
            snprintf(name, sizeof name, "/many/p%d", i);
            snprintf(value, sizeof value, "v%d", i);
            cr_assert_str_eq(value_of(name), value);
        }
}

/* ---- regions ---- */

/* call() in a region (the SigV4 scope's, as al_verify hands it over). */
static int call_in(const char *region, const char *target, const char *body)
{
    es_json_free(T.resp);
    T.resp = NULL;
    es_buf_reset(&T.out);
    memset(&T.err, 0, sizeof T.err);
    int r = al_dispatch_in(T.ctx, region, target, "arn:aws:iam::123456789012:user/tester", body,
                           strlen(body), &T.out, &T.err);
    if (r < 0) {
        cr_assert_eq(T.out.len, 0, "output left after an error");
        return T.err.status;
    }
    cr_assert_eq(es_json_parse(T.out.data, T.out.len, &es_json_default_limits, &T.resp, NULL, 0),
                 0);
    return 0;
}

static const es_json *ok_in(const char *region, const char *target, const char *body)
{
    int st = call_in(region, target, body);
    cr_assert_eq(st, 0, "%s %s %s -> %d %s: %s", region, target, body, st, T.err.code,
                 T.err.message);
    return T.resp;
}

static void fails_in(const char *region, const char *target, const char *body, const char *code,
                     const char *message)
{
    int st = call_in(region, target, body);
    cr_assert_neq(st, 0, "%s %s %s succeeded: %s", region, target, body, es_buf_cstr(&T.out));
    cr_assert_str_eq(T.err.code, code, "%s %s -> %s (%s), want %s", target, body, T.err.code,
                     T.err.message, code);
    if (message)
        cr_assert_not_null(strstr(T.err.message, message), "%s: message '%s' lacks '%s'", target,
                           T.err.message, message);
}

static const char *region_value(const char *region, const char *name)
{
    char body[512];
    snprintf(body, sizeof body, "{\"Name\":\"%s\",\"WithDecryption\":true}", name);
    return jstr(es_json_get(ok_in(region, GET, body), "Parameter"), "Value");
}

Test(al_ssm, one_name_in_three_regions_is_three_parameters)
{
    const char *regions[] = {"us-east-1", "us-west-2", "eu-west-1"};
    char body[512];
    for (size_t i = 0; i < 3; i++) {
        snprintf(body, sizeof body,
                 "{\"Name\":\"/app/db\",\"Type\":\"SecureString\",\"Value\":\"v-%s\"}", regions[i]);
        cr_assert_eq(jint(ok_in(regions[i], PUT, body), "Version"), 1);
    }
    for (size_t i = 0; i < 3; i++) {
        char want[64];
        snprintf(want, sizeof want, "v-%s", regions[i]);
        cr_assert_str_eq(region_value(regions[i], "/app/db"), want);
        char arn[128];
        snprintf(arn, sizeof arn, "arn:aws:ssm:%s:123456789012:parameter/app/db", regions[i]);
        cr_assert_str_eq(jstr(es_json_get(T.resp, "Parameter"), "ARN"), arn);
        /* by its own ARN in its region */
        cr_assert_str_eq(region_value(regions[i], arn), want);
    }
    /* the home region (al_dispatch) has none of them */
    fails(GET, "{\"Name\":\"/app/db\"}", "ParameterNotFound");
    /* another region's ARN is not found, as AWS answers it */
    fails_in("us-east-1", GET, "{\"Name\":\"arn:aws:ssm:us-west-2:123456789012:parameter/app/db\"}",
             "ParameterNotFound", "not found");
    const es_json *r =
        ok_in("us-east-1", GETS,
              "{\"Names\":[\"/app/db\",\"arn:aws:ssm:eu-west-1:123456789012:parameter/app/db\"]}");
    cr_assert_eq(es_json_len(es_json_get(r, "Parameters")), 1);
    cr_assert_str_eq(es_json_as_str(es_json_at(es_json_get(r, "InvalidParameters"), 0)),
                     "arn:aws:ssm:eu-west-1:123456789012:parameter/app/db");
    /* listings stay in the region */
    ok_in("us-west-2", PUT, "{\"Name\":\"/app/only-west\",\"Type\":\"String\",\"Value\":\"w\"}");
    r = ok_in("us-east-1", BYPATH, "{\"Path\":\"/app\"}");
    cr_assert_eq(es_json_len(es_json_get(r, "Parameters")), 1);
    r = ok_in("us-west-2", DESC, "{}");
    cr_assert_eq(es_json_len(es_json_get(r, "Parameters")), 2);
    /* deleting in one region leaves the others */
    ok_in("eu-west-1", "AmazonSSM.DeleteParameter", "{\"Name\":\"/app/db\"}");
    fails_in("eu-west-1", GET, "{\"Name\":\"/app/db\"}", "ParameterNotFound", NULL);
    cr_assert_str_eq(region_value("us-east-1", "/app/db"), "v-us-east-1");
    /* versions and labels are per region too */
    ok_in("us-west-2", PUT,
          "{\"Name\":\"/app/db\",\"Type\":\"SecureString\",\"Value\":\"w2\",\"Overwrite\":true}");
    ok_in("us-west-2", LABEL, "{\"Name\":\"/app/db\",\"ParameterVersion\":1,\"Labels\":[\"old\"]}");
    cr_assert_str_eq(region_value("us-west-2", "/app/db:old"), "v-us-west-2");
    fails_in("us-east-1", GET, "{\"Name\":\"/app/db:old\"}", "ParameterVersionNotFound", NULL);
}

/* The first of an answer's Parameters, as its bytes, into out. */
static void first_param_bytes(const char *region, const char *target, const char *body, char *out,
                              size_t n)
{
    int st = call_in(region, target, body);
    cr_assert_eq(st, 0, "%s %s -> %d %s", target, body, st, T.err.code);
    const char *s = es_buf_cstr(&T.out);
    const char *a = strstr(s, "\"Parameters\":[{");
    cr_assert_not_null(a, "%s: %s", body, s);
    a += strlen("\"Parameters\":[");
    const char *p = a;
    int depth = 0;
    bool in_str = false;
    for (; *p; p++) {
        if (in_str) {
            if (*p == '\\')
                p++;
            else if (*p == '"')
                in_str = false;
        } else if (*p == '"') {
            in_str = true;
        } else if (*p == '{') {
            depth++;
        } else if (*p == '}' && --depth == 0) {
            break;
        }
    }
    cr_assert_eq(*p, '}', "%s", s);
    size_t len = (size_t)(p + 1 - a);
    cr_assert_lt(len, n);
    memcpy(out, a, len);
    out[len] = '\0';
}

/* want with ins inserted before the first occurrence of at */
static void insert_before(char *want, size_t n, const char *at, const char *ins)
{
    char *x = strstr(want, at);
    cr_assert_not_null(x, "%s in %s", at, want);
    size_t il = strlen(ins), tl = strlen(x);
    cr_assert_lt(strlen(want) + il, n);
    memmove(x + il, x, tl + 1);
    memcpy(x, ins, il);
}

/* A kept version's answer is copied from its members encoded once (pv's
 * meta): byte for byte what GetParametersByPath (whose versions are never
 * kept: written member by member) answers for it, cold and warm, with a
 * selector, after an overwrite and a label move, in another region, asked
 * by ARN. */
static void gets_is_by_path(const char *region, const char *asked, const char *path,
                            const char *selector, const char *as_name)
{
    char want[8192], got[8192], body[1024];
    snprintf(body, sizeof body, "{\"Path\":\"%s\",\"WithDecryption\":true}", path);
    first_param_bytes(region, BYPATH, body, want, sizeof want);
    if (selector) {
        char sel[256];
        snprintf(sel, sizeof sel, ",\"Selector\":\"%s\"", selector);
        insert_before(want, sizeof want, ",\"LastModifiedDate\":", sel);
    }
    if (as_name) {
        const char *n0 = strstr(want, "\"Name\":\"") + strlen("\"Name\":\"");
        const char *n1 = strchr(n0, '"');
        char renamed[8192];
        snprintf(renamed, sizeof renamed, "%.*s%s%s", (int)(n0 - want), want, as_name, n1);
        snprintf(want, sizeof want, "%s", renamed);
    }
    snprintf(body, sizeof body, "{\"Names\":[\"%s\"],\"WithDecryption\":true}", asked);
    for (int pass = 0; pass < 2; pass++) { /* cold (loaded, kept), then warm (kept) */
        al_cache_stats s0, s1;
        al_get_cache_stats(T.ctx, &s0);
        first_param_bytes(region, GETS, body, got, sizeof got);
        al_get_cache_stats(T.ctx, &s1);
        cr_assert_str_eq(got, want, "%s pass %d", asked, pass);
        if (pass == 1)
            cr_assert_eq(s1.param_hits, s0.param_hits + 1, "%s: not answered from the kept", asked);
    }
}

/* The kept versions' index hashes the region once per request and compares
 * the name by its length and bytes: names that are prefixes of one another
 * or differ in their last byte, and one name in two regions read in turn,
 * each answer their own value, from a kept entry after the first read. */
Test(al_ssm, kept_versions_tell_names_and_regions_apart)
{
    const char *names[] = {"/n/ab", "/n/abc",       "/n/abd",      "/n/a",
                           "ab",    "/n/abcdefgh1", "/n/abcdefgh2"};
    const char *regions[] = {"us-east-1", "eu-west-1"};
    char body[512], want[64];
    for (size_t r = 0; r < 2; r++) {
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            snprintf(body, sizeof body,
                     "{\"Name\":\"%s\",\"Type\":\"SecureString\",\"Value\":\"%s-%zu\"}", names[i],
                     regions[r], i);
            ok_in(regions[r], PUT, body);
        }
    }
    for (int pass = 0; pass < 3; pass++) {
        al_cache_stats s0, s1;
        al_get_cache_stats(T.ctx, &s0);
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            for (size_t r = 0; r < 2; r++) {
                snprintf(want, sizeof want, "%s-%zu", regions[r], i);
                cr_assert_str_eq(region_value(regions[r], names[i]), want, "pass %d", pass);
            }
        }
        /* "/ab" is stored as "ab": the same parameter, from the same entry */
        cr_assert_str_eq(region_value("eu-west-1", "/ab"), "eu-west-1-4");
        al_get_cache_stats(T.ctx, &s1);
        size_t reads = 2 * sizeof names / sizeof names[0] + 1;
        if (pass > 0) {
            cr_assert_eq(s1.param_hits - s0.param_hits, reads, "pass %d: every read kept", pass);
            cr_assert_eq(s1.param_loads, s0.param_loads, "pass %d", pass);
        }
    }
}

Test(al_ssm, kept_answer_members_are_the_written_ones)
{
    const char *west = "us-west-2";
    ok_in(west, PUT, "{\"Name\":\"/m1/p\",\"Type\":\"SecureString\",\"Value\":\"one\"}");
    gets_is_by_path(west, "/m1/p", "/m1", NULL, NULL);
    gets_is_by_path(west, "/m1/p:1", "/m1", ":1", NULL);
    ok_in(west, LABEL, "{\"Name\":\"/m1/p\",\"ParameterVersion\":1,\"Labels\":[\"live\"]}");
    gets_is_by_path(west, "/m1/p:live", "/m1", ":live", NULL);
    /* an overwrite: a new version, date and value */
    T.now += 12.5;
    ok_in(west, PUT,
          "{\"Name\":\"/m1/p\",\"Type\":\"SecureString\",\"Value\":\"two\",\"Overwrite\":true}");
    gets_is_by_path(west, "/m1/p", "/m1", NULL, NULL);
    gets_is_by_path(west, "/m1/p:2", "/m1", ":2", NULL);
    /* the label moved to the new version */
    ok_in(west, LABEL, "{\"Name\":\"/m1/p\",\"ParameterVersion\":2,\"Labels\":[\"live\"]}");
    gets_is_by_path(west, "/m1/p:live", "/m1", ":live", NULL);
    /* asked by ARN: its Name is the ARN */
    const char *arn = "arn:aws:ssm:us-west-2:123456789012:parameter/m1/p";
    gets_is_by_path(west, arn, "/m1", NULL, arn);
    /* the same name in another region: its own version, ARN and value */
    ok_in("eu-west-1", PUT, "{\"Name\":\"/m1/p\",\"Type\":\"String\",\"Value\":\"eu\"}");
    gets_is_by_path("eu-west-1", "/m1/p", "/m1", NULL, NULL);
    gets_is_by_path(west, "/m1/p", "/m1", NULL, NULL);
    char got[8192];
    first_param_bytes("eu-west-1", GETS, "{\"Names\":[\"/m1/p\"]}", got, sizeof got);
    cr_assert_not_null(strstr(got, "\"ARN\":\"arn:aws:ssm:eu-west-1:123456789012:parameter/m1/p\""),
                       "%s", got);
    /* a one-level name, stored without its slash, and a China region's partition */
    ok_in("cn-north-1", PUT, "{\"Name\":\"/solo\",\"Type\":\"String\",\"Value\":\"cn\"}");
    gets_is_by_path("cn-north-1", "/solo", "/", NULL, NULL);
    gets_is_by_path("cn-north-1", "solo", "/", NULL, NULL);
}

Test(al_ssm, china_partition_arns)
{
    const es_json *r = ok_in("cn-north-1", PUT,
                             "{\"Name\":\"/cn/p\",\"Type\":\"String\","
                             "\"Value\":\"c\"}");
    cr_assert_eq(jint(r, "Version"), 1);
    const es_json *p = es_json_get(ok_in("cn-north-1", GET, "{\"Name\":\"/cn/p\"}"), "Parameter");
    cr_assert_str_eq(jstr(p, "ARN"), "arn:aws-cn:ssm:cn-north-1:123456789012:parameter/cn/p");
    ok_in("cn-north-1", GET,
          "{\"Name\":\"arn:aws-cn:ssm:cn-north-1:123456789012:parameter/cn/p\"}");
    /* an aws-partition ARN for the same region and name is another world */
    fails_in("cn-north-1", GET, "{\"Name\":\"arn:aws:ssm:cn-north-1:123456789012:parameter/cn/p\"}",
             "ParameterNotFound", NULL);
    /* the authorisation question names the partition */
    cr_assert_str_eq(T.last_resource, "arn:aws-cn:ssm:cn-north-1:123456789012:parameter/cn/p");
    /* an unknown region is refused as the credential scope check does */
    fails_in("cn-nowhere-1", GET, "{\"Name\":\"/cn/p\"}", "InvalidSignatureException", NULL);
}

/* A database of the schema before regional parameters: its parameters, with
 * their versions, labels and tags, move to the home region only. */
Test(al_ssm, migration_moves_old_parameters_to_the_home_region)
{
    al_close(T.ctx);
    T.ctx = NULL;
    char path[128], why[256] = "";
    snprintf(path, sizeof path, "%s/" AL_DB_FILE, T.dir);
    unlink(path);
    /* the file as the program before regional parameters wrote it: schema
     * version 4 (migration 5 makes SSM regional) */
    al_db *db = NULL;
    cr_assert_eq(al_db_open_at(path, 4, &db, why, sizeof why), 0, "%s", why);
    sqlite3 *h = al_db_handle(db);
    const char *sql =
        "INSERT INTO ssm_param VALUES ('/old/p', '/old/p', 2, 3);"
        "INSERT INTO ssm_version VALUES ('/old/p', 1, 'String', 'first', NULL, NULL, 'd', "
        "NULL, 'Standard', 'text', 1600000000, 'arn:aws:iam::123456789012:root');"
        "INSERT INTO ssm_version VALUES ('/old/p', 2, 'String', 'second', NULL, NULL, 'd', "
        "NULL, 'Standard', 'text', 1600000001, 'arn:aws:iam::123456789012:root');"
        "INSERT INTO ssm_label VALUES ('/old/p', 'prev', 1);"
        "INSERT INTO ssm_tag VALUES ('/old/p', 'team', 'blue');";
    char *err = NULL;
    cr_assert_eq(sqlite3_exec(h, sql, NULL, NULL, &err), SQLITE_OK, "%s", err ? err : "");
    al_db_close(db);
    alt_open();
    /* served in the home region (us-east-2), whole */
    cr_assert_str_eq(jstr(get("/old/p", false), "Value"), "second");
    cr_assert_str_eq(jstr(get("/old/p", false), "ARN"),
                     "arn:aws:ssm:us-east-2:123456789012:parameter/old/p");
    cr_assert_str_eq(jstr(get("/old/p:prev", false), "Value"), "first");
    const es_json *t = ok(TAGS_LIST, "{\"ResourceType\":\"Parameter\",\"ResourceId\":\"/old/p\"}");
    cr_assert_str_eq(jstr(es_json_at(es_json_get(t, "TagList"), 0), "Value"), "blue");
    cr_assert_eq(put("/old/p", "String", "third", true), 3);
    /* and nowhere else */
    fails_in("us-west-2", GET, "{\"Name\":\"/old/p\"}", "ParameterNotFound", NULL);
    /* a second start changes nothing */
    alt_reopen();
    cr_assert_str_eq(jstr(get("/old/p", false), "Value"), "third");
}

/* ---- tags ---- */

static const es_json *tag_list(const char *id)
{
    char body[512];
    snprintf(body, sizeof body, "{\"ResourceType\":\"Parameter\",\"ResourceId\":\"%s\"}", id);
    return es_json_get(ok(TAGS_LIST, body), "TagList");
}

Test(al_ssm, tags_round_trip)
{
    ok(PUT, "{\"Name\":\"/tg/p\",\"Type\":\"String\",\"Value\":\"1\",\"Tags\":[{\"Key\":\"env\","
            "\"Value\":\"dev\"}]}");
    ok(TAGS_ADD, "{\"ResourceType\":\"Parameter\",\"ResourceId\":\"/tg/p\",\"Tags\":[{\"Key\":"
                 "\"team\",\"Value\":\"blue\"},{\"Key\":\"env\",\"Value\":\"prod\"},{\"Key\":"
                 "\"empty\",\"Value\":\"\"}]}");
    cr_assert_str_eq(T.last_action, "ssm:AddTagsToResource");
    cr_assert_str_eq(T.last_resource, "arn:aws:ssm:us-east-2:123456789012:parameter/tg/p");
    const es_json *l = tag_list("/tg/p");
    cr_assert_eq(es_json_len(l), 3);
    cr_assert_str_eq(jstr(es_json_at(l, 1), "Key"), "env"); /* sorted by key */
    cr_assert_str_eq(jstr(es_json_at(l, 1), "Value"), "prod");
    /* by ARN too */
    cr_assert_eq(es_json_len(tag_list("arn:aws:ssm:us-east-2:123456789012:parameter/tg/p")), 3);
    ok(TAGS_REMOVE, "{\"ResourceType\":\"Parameter\",\"ResourceId\":\"/tg/p\",\"TagKeys\":"
                    "[\"env\",\"absent\"]}");
    cr_assert_str_eq(T.last_action, "ssm:RemoveTagsFromResource");
    cr_assert_eq(es_json_len(tag_list("/tg/p")), 2);
    /* Unicode letters and the allowed symbols */
    ok(TAGS_ADD, "{\"ResourceType\":\"Parameter\",\"ResourceId\":\"/tg/p\",\"Tags\":[{\"Key\":"
                 "\"caf\\u00e9 a_.:/=+-@\",\"Value\":\"\\u00fcber 1\"}]}");
    /* tags stay with their region */
    fails_in("eu-west-1", TAGS_LIST, "{\"ResourceType\":\"Parameter\",\"ResourceId\":\"/tg/p\"}",
             "InvalidResourceId", "isn't valid");
}

Test(al_ssm, tag_errors)
{
    put("/te", "String", "1", false);
    fails(TAGS_LIST, "{\"ResourceType\":\"Parameter\",\"ResourceId\":\"/missing\"}",
          "InvalidResourceId");
    cr_assert_str_eq(T.err.message,
                     "The resource ID isn't valid. Verify that you entered the correct ID and try "
                     "again.");
    fails(TAGS_LIST, "{\"ResourceType\":\"Parameter\",\"ResourceId\":\"bad name!\"}",
          "InvalidResourceId");
    fails(TAGS_LIST, "{\"ResourceType\":\"Document\",\"ResourceId\":\"/te\"}",
          "InvalidResourceType");
    fails(TAGS_LIST, "{\"ResourceType\":\"Bucket\",\"ResourceId\":\"/te\"}", "ValidationException");
    cr_assert_not_null(strstr(T.err.message, "at 'resourceType'"));
    fails(TAGS_ADD, "{\"ResourceType\":\"Parameter\",\"ResourceId\":\"/te\"}",
          "ValidationException");
    fails(TAGS_ADD,
          "{\"ResourceType\":\"Parameter\",\"ResourceId\":\"/te\",\"Tags\":[{\"Key\":"
          "\"aws:x\",\"Value\":\"1\"}]}",
          "ValidationException");
    cr_assert_not_null(strstr(T.err.message, "reserved"));
    fails(TAGS_ADD,
          "{\"ResourceType\":\"Parameter\",\"ResourceId\":\"/te\",\"Tags\":[{\"Key\":"
          "\"k!\",\"Value\":\"1\"}]}",
          "ValidationException");
    cr_assert_not_null(strstr(T.err.message, "tags.1.member.key"));
    fails(TAGS_ADD,
          "{\"ResourceType\":\"Parameter\",\"ResourceId\":\"/te\",\"Tags\":[{\"Key\":"
          "\"k\",\"Value\":\"a#b\"}]}",
          "ValidationException");
    cr_assert_not_null(strstr(T.err.message, "tags.1.member.value"));
    fails(TAGS_ADD,
          "{\"ResourceType\":\"Parameter\",\"ResourceId\":\"/te\",\"Tags\":[{\"Key\":"
          "\"\",\"Value\":\"1\"}]}",
          "ValidationException");
    fails(TAGS_REMOVE, "{\"ResourceType\":\"Parameter\",\"ResourceId\":\"/te\",\"TagKeys\":[\"\"]}",
          "ValidationException");
    cr_assert_not_null(strstr(T.err.message, "tagKeys.1.member"));
    /* 129-character key, 257-character value */
    char body[2048], k[130], v[258];
    memset(k, 'k', 129), k[129] = 0;
    memset(v, 'v', 257), v[257] = 0;
    snprintf(body, sizeof body,
             "{\"ResourceType\":\"Parameter\",\"ResourceId\":\"/te\",\"Tags\":[{\"Key\":\"%s\","
             "\"Value\":\"1\"}]}",
             k);
    fails(TAGS_ADD, body, "ValidationException");
    snprintf(body, sizeof body,
             "{\"ResourceType\":\"Parameter\",\"ResourceId\":\"/te\",\"Tags\":[{\"Key\":\"k\","
             "\"Value\":\"%s\"}]}",
             v);
    fails(TAGS_ADD, body, "ValidationException");
    /* 50 tags at most per parameter, counted with the ones it has */
    es_buf b;
    es_buf_init(&b, 1 << 16);
    es_buf_printf(&b, "{\"ResourceType\":\"Parameter\",\"ResourceId\":\"/te\",\"Tags\":[");
    for (int i = 0; i < 50; i++)
        es_buf_printf(&b, "%s{\"Key\":\"k%d\",\"Value\":\"v\"}", i ? "," : "", i);
    es_buf_printf(&b, "]}");
    ok(TAGS_ADD, es_buf_cstr(&b));
    fails(TAGS_ADD,
          "{\"ResourceType\":\"Parameter\",\"ResourceId\":\"/te\",\"Tags\":[{\"Key\":\"one-more\","
          "\"Value\":\"1\"}]}",
          "TooManyTagsError");
    cr_assert_eq(es_json_len(tag_list("/te")), 50); /* nothing of the refused call stuck */
    /* replacing an existing key is not one more */
    ok(TAGS_ADD, "{\"ResourceType\":\"Parameter\",\"ResourceId\":\"/te\",\"Tags\":[{\"Key\":\"k0\","
                 "\"Value\":\"new\"}]}");
    es_buf_free(&b);
    /* Tags with Overwrite: AWS's own refusal */
    fails(PUT,
          "{\"Name\":\"/te\",\"Type\":\"String\",\"Value\":\"2\",\"Overwrite\":true,\"Tags\":[{"
          "\"Key\":\"a\",\"Value\":\"b\"}]}",
          "ValidationException");
    cr_assert_not_null(strstr(T.err.message, "tags and overwrite can't be used together"));
    /* authorisation */
    T.deny_action = "ssm:ListTagsForResource";
    fails(TAGS_LIST, "{\"ResourceType\":\"Parameter\",\"ResourceId\":\"/te\"}",
          "AccessDeniedException");
}

/* ---- DescribeParameters filters ---- */

Test(al_ssm, describe_filter_options_and_errors)
{
    ok(PUT, "{\"Name\":\"/f/a\",\"Type\":\"String\",\"Value\":\"1\",\"Tags\":[{\"Key\":\"env\","
            "\"Value\":\"prod-eu\"}]}");
    ok(PUT, "{\"Name\":\"/f/b\",\"Type\":\"StringList\",\"Value\":\"1\",\"Tier\":\"Advanced\"}");
    ok(PUT, "{\"Name\":\"f-plain\",\"Type\":\"SecureString\",\"Value\":\"1\"}");
    struct {
        const char *filters;
        size_t n;
    } cases[] = {
        {"[{\"Key\":\"Type\",\"Option\":\"BeginsWith\",\"Values\":[\"String\"]}]", 2},
        {"[{\"Key\":\"Tier\",\"Values\":[\"Advanced\"]}]", 1},
        {"[{\"Key\":\"DataType\",\"Values\":[\"text\"]}]", 3},
        {"[{\"Key\":\"tag:env\",\"Option\":\"BeginsWith\",\"Values\":[\"prod\"]}]", 1},
        {"[{\"Key\":\"tag:env\"}]", 1},
        {"[{\"Key\":\"tag:env\",\"Values\":[\"prod\"]}]", 0},
        {"[{\"Key\":\"Name\",\"Values\":[\"f-plain\"]}]", 1},
        {"[{\"Key\":\"Name\",\"Values\":[\"/f-plain\"]}]", 1},
        {"[{\"Key\":\"Name\",\"Option\":\"BeginsWith\",\"Values\":[\"f\"]}]", 3},
        {"[{\"Key\":\"Path\",\"Values\":[\"/\"]}]", 1},
        {"[{\"Key\":\"KeyId\",\"Option\":\"BeginsWith\",\"Values\":[\"alias/aws\"]}]", 1},
    };
    char body[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(body, sizeof body, "{\"ParameterFilters\":%s}", cases[i].filters);
        const es_json *r = ok(DESC, body);
        cr_assert_eq(es_json_len(es_json_get(r, "Parameters")), cases[i].n, "%s: %zu",
                     cases[i].filters, es_json_len(es_json_get(r, "Parameters")));
    }
    /* the deprecated Filters: Name matches prefixes */
    cr_assert_eq(
        es_json_len(es_json_get(ok(DESC, "{\"Filters\":[{\"Key\":\"Name\",\"Values\":[\"/f/\"]}]}"),
                                "Parameters")),
        2);
    struct {
        const char *filters, *code, *message;
    } bad[] = {
        {"[{\"Key\":\"Label\",\"Values\":[\"x\"]}]", "InvalidFilterKey",
         "The following filter key is not valid: Label. Valid filter keys include: [Path, Name, "
         "Type, KeyId, Tier]."},
        {"[{\"Key\":\"Colour\",\"Values\":[\"x\"]}]", "ValidationException",
         "Member must satisfy regular expression pattern: "
         "tag:.+|Name|Type|KeyId|Path|Label|Tier|DataType"},
        {"[{\"Key\":\"Name\"}]", "InvalidFilterValue",
         "The following filter values are missing : null for filter key Name."},
        {"[{\"Key\":\"KeyId\",\"Values\":[\"a\"]},{\"Key\":\"KeyId\",\"Values\":[\"b\"]}]",
         "InvalidFilterKey", "The following filter is duplicated in the request: KeyId."},
        {"[{\"Key\":\"Type\",\"Option\":\"Contains\",\"Values\":[\"String\"]}]",
         "InvalidFilterOption",
         "The following filter option is not valid: Contains. Valid options include: "
         "[BeginsWith, Equals]."},
        {"[{\"Key\":\"Path\",\"Option\":\"Equals\",\"Values\":[\"/f\"]}]", "InvalidFilterOption",
         "Valid options include: [Recursive, OneLevel]."},
        {"[{\"Key\":\"Tier\",\"Values\":[\"Gold\"]}]", "InvalidFilterOption",
         "The following filter value is not valid: Gold. Valid values include: [Standard, "
         "Advanced, Intelligent-Tiering]."},
        {"[{\"Key\":\"Type\",\"Values\":[\"Str\"]}]", "InvalidFilterOption",
         "Valid values include: [String, StringList, SecureString]."},
        {"[{\"Key\":\"Path\",\"Values\":[\"/aws/x\"]}]", "ValidationException",
         "Filters for common parameters can't be prefixed with \"aws\" or \"ssm\""},
        {"[{\"Key\":\"Path\",\"Values\":[\"relative\"]}]", "ValidationException",
         "The parameter name must begin with a forward slash"},
        {"[{\"Key\":\"Name\",\"Option\":\"Whatever-long\",\"Values\":[\"x\"]}]",
         "ValidationException", "Member must have length less than or equal to 10"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(body, sizeof body, "{\"ParameterFilters\":%s}", bad[i].filters);
        fails(DESC, body, bad[i].code);
        cr_assert_not_null(strstr(T.err.message, bad[i].message), "%s: %s", bad[i].filters,
                           T.err.message);
    }
    fails(DESC, "{\"Filters\":[{\"Key\":\"Path\",\"Values\":[\"/f\"]}]}", "ValidationException");
    fails(DESC, "{\"MaxResults\":51}", "ValidationException");
    fails(DESC, "{\"MaxResults\":0}", "ValidationException");
    fails(DESC, "{\"NextToken\":\"%%%\"}", "InvalidNextToken");
    /* GetParametersByPath takes fewer keys */
    fails(BYPATH, "{\"Path\":\"/f\",\"ParameterFilters\":[{\"Key\":\"Tier\",\"Values\":[\"x\"]}]}",
          "InvalidFilterKey");
    cr_assert_str_eq(T.err.message, "The following filter key is not valid: Tier. Valid filter "
                                    "keys include: [Type, KeyId].");
}

/* ---- parameter policies and tiers ---- */

#define EXPIRE_2023_11_15 "2023-11-15T00:00:00.000Z" /* the fixture's clock is 2023-11-14 22:13 */

Test(al_ssm, policies_need_the_advanced_tier)
{
    const char *pol = "[{\\\"Type\\\":\\\"Expiration\\\",\\\"Version\\\":\\\"1.0\\\","
                      "\\\"Attributes\\\":{\\\"Timestamp\\\":\\\"" EXPIRE_2023_11_15 "\\\"}}]";
    char body[1024];
    snprintf(body, sizeof body,
             "{\"Name\":\"/pol/std\",\"Type\":\"String\",\"Value\":\"1\",\"Policies\":\"%s\"}",
             pol);
    fails(PUT, body, "ValidationException");
    cr_assert_not_null(strstr(T.err.message, "policies"));
    snprintf(body, sizeof body,
             "{\"Name\":\"/pol/std\",\"Type\":\"String\",\"Value\":\"1\",\"Tier\":\"Standard\","
             "\"Policies\":\"%s\"}",
             pol);
    fails(PUT, body, "ValidationException");
    /* Intelligent-Tiering picks Advanced for policies */
    snprintf(body, sizeof body,
             "{\"Name\":\"/pol/it\",\"Type\":\"String\",\"Value\":\"1\",\"Tier\":"
             "\"Intelligent-Tiering\",\"Policies\":\"%s\"}",
             pol);
    cr_assert_str_eq(jstr(ok(PUT, body), "Tier"), "Advanced");
    /* and a downgrade is refused with AWS's words */
    fails(PUT, "{\"Name\":\"/pol/it\",\"Value\":\"2\",\"Overwrite\":true,\"Tier\":\"Standard\"}",
          "ValidationException");
    cr_assert_not_null(strstr(T.err.message, "You can't downgrade a parameter from the "
                                             "advanced-parameter tier"));
}

Test(al_ssm, policies_shown_kept_and_removed)
{
    char body[2048];
    snprintf(body, sizeof body,
             "{\"Name\":\"/pol/a\",\"Type\":\"String\",\"Value\":\"1\",\"Tier\":\"Advanced\","
             "\"Policies\":\"[{\\\"Type\\\":\\\"Expiration\\\",\\\"Version\\\":\\\"1.0\\\","
             "\\\"Attributes\\\":{\\\"Timestamp\\\":\\\"" EXPIRE_2023_11_15 "\\\"}},"
             "{\\\"Type\\\":\\\"ExpirationNotification\\\",\\\"Version\\\":\\\"1.0\\\","
             "\\\"Attributes\\\":{\\\"Before\\\":\\\"1\\\",\\\"Unit\\\":\\\"Hours\\\"}},"
             "{\\\"Type\\\":\\\"NoChangeNotification\\\",\\\"Version\\\":\\\"1.0\\\","
             "\\\"Attributes\\\":{\\\"After\\\":\\\"20\\\",\\\"Unit\\\":\\\"Days\\\"}}]\"}");
    cr_assert_str_eq(jstr(ok(PUT, body), "Tier"), "Advanced");
    const char *desc = "{\"ParameterFilters\":[{\"Key\":\"Name\",\"Values\":[\"/pol/a\"]}]}";
    const es_json *pols =
        es_json_get(es_json_at(es_json_get(ok(DESC, desc), "Parameters"), 0), "Policies");
    cr_assert_eq(es_json_len(pols), 3);
    cr_assert_str_eq(jstr(es_json_at(pols, 0), "PolicyType"), "Expiration");
    cr_assert_str_eq(jstr(es_json_at(pols, 0), "PolicyStatus"), "Pending");
    cr_assert_not_null(strstr(jstr(es_json_at(pols, 0), "PolicyText"), EXPIRE_2023_11_15));
    cr_assert_str_eq(jstr(es_json_at(pols, 2), "PolicyType"), "NoChangeNotification");
    /* an overwrite without Policies keeps them */
    ok(PUT, "{\"Name\":\"/pol/a\",\"Value\":\"2\",\"Overwrite\":true}");
    pols = es_json_get(es_json_at(es_json_get(ok(DESC, desc), "Parameters"), 0), "Policies");
    cr_assert_eq(es_json_len(pols), 3);
    /* an empty list removes them, and with them the expiration */
    ok(PUT, "{\"Name\":\"/pol/a\",\"Value\":\"3\",\"Overwrite\":true,\"Policies\":\"[]\"}");
    pols = es_json_get(es_json_at(es_json_get(ok(DESC, desc), "Parameters"), 0), "Policies");
    cr_assert_eq(es_json_len(pols), 0);
    T.now += 86400;
    cr_assert_str_eq(jstr(get("/pol/a", false), "Value"), "3");
}

Test(al_ssm, policy_errors)
{
    struct {
        const char *policies, *code;
    } bad[] = {
        {"[{\\\"Type\\\":\\\"Rotation\\\",\\\"Version\\\":\\\"1.0\\\",\\\"Attributes\\\":{}}]",
         "InvalidPolicyTypeException"},
        {"[{\\\"Type\\\":\\\"Expiration\\\",\\\"Version\\\":\\\"2.0\\\",\\\"Attributes\\\":{"
         "\\\"Timestamp\\\":\\\"" EXPIRE_2023_11_15 "\\\"}}]",
         "InvalidPolicyAttributeException"},
        {"[{\\\"Type\\\":\\\"Expiration\\\",\\\"Version\\\":\\\"1.0\\\",\\\"Attributes\\\":{"
         "\\\"Timestamp\\\":\\\"next week\\\"}}]",
         "InvalidPolicyAttributeException"},
        {"[{\\\"Type\\\":\\\"Expiration\\\",\\\"Version\\\":\\\"1.0\\\",\\\"Attributes\\\":{"
         "\\\"Timestamp\\\":\\\"2020-01-01T00:00:00Z\\\"}}]",
         "InvalidPolicyAttributeException"},
        {"[{\\\"Type\\\":\\\"NoChangeNotification\\\",\\\"Version\\\":\\\"1.0\\\","
         "\\\"Attributes\\\":{\\\"After\\\":\\\"0\\\",\\\"Unit\\\":\\\"Days\\\"}}]",
         "InvalidPolicyAttributeException"},
        {"[{\\\"Type\\\":\\\"NoChangeNotification\\\",\\\"Version\\\":\\\"1.0\\\","
         "\\\"Attributes\\\":{\\\"After\\\":\\\"3\\\",\\\"Unit\\\":\\\"Weeks\\\"}}]",
         "InvalidPolicyAttributeException"},
        {"not json", "InvalidPolicyAttributeException"},
        {"[{\\\"Type\\\":\\\"Expiration\\\",\\\"Version\\\":\\\"1.0\\\",\\\"Attributes\\\":{"
         "\\\"Timestamp\\\":\\\"" EXPIRE_2023_11_15 "\\\"}},{\\\"Type\\\":\\\"Expiration\\\","
         "\\\"Version\\\":\\\"1.0\\\",\\\"Attributes\\\":{\\\"Timestamp\\\":\\\"" EXPIRE_2023_11_15
         "\\\"}}]",
         "IncompatiblePolicyException"},
    };
    char body[2048];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(body, sizeof body,
                 "{\"Name\":\"/pe\",\"Type\":\"String\",\"Value\":\"1\",\"Tier\":\"Advanced\","
                 "\"Policies\":\"%s\"}",
                 bad[i].policies);
        fails(PUT, body, bad[i].code);
    }
    fails(PUT,
          "{\"Name\":\"/pe\",\"Type\":\"String\",\"Value\":\"1\",\"Tier\":\"Advanced\","
          "\"Policies\":\"[{\\\"Type\\\":\\\"Rotation\\\"}]\"}",
          "InvalidPolicyTypeException");
    cr_assert_str_eq(T.err.message, "The policy type isn't supported. Parameter Store supports the "
                                    "following policy types: Expiration, ExpirationNotification, "
                                    "and NoChangeNotification.");
    /* 11 policies */
    es_buf b;
    es_buf_init(&b, 1 << 16);
    es_buf_printf(&b, "{\"Name\":\"/pe\",\"Type\":\"String\",\"Value\":\"1\",\"Tier\":\"Advanced\","
                      "\"Policies\":\"[");
    for (int i = 0; i < 11; i++)
        es_buf_printf(&b,
                      "%s{\\\"Type\\\":\\\"NoChangeNotification\\\",\\\"Version\\\":\\\"1.0\\\","
                      "\\\"Attributes\\\":{\\\"After\\\":\\\"1\\\",\\\"Unit\\\":\\\"Days\\\"}}",
                      i ? "," : "");
    es_buf_printf(&b, "]\"}");
    fails(PUT, es_buf_cstr(&b), "PoliciesLimitExceededException");
    cr_assert_str_eq(T.err.message, "You specified more than the maximum number of allowed "
                                    "policies for the parameter. The maximum is 10.");
    es_buf_free(&b);
    /* nothing was made */
    fails(GET, "{\"Name\":\"/pe\"}", "ParameterNotFound");
}

Test(al_ssm, expiration_deletes_the_parameter)
{
    char body[1024];
    snprintf(
        body, sizeof body,
        "{\"Name\":\"/exp/p\",\"Type\":\"SecureString\",\"Value\":\"gone-soon\",\"Tier\":"
        "\"Advanced\",\"Policies\":\"[{\\\"Type\\\":\\\"Expiration\\\",\\\"Version\\\":\\\"1.0\\\","
        "\\\"Attributes\\\":{\\\"Timestamp\\\":\\\"" EXPIRE_2023_11_15 "\\\"}}]\"}");
    ok(PUT, body);
    ok(TAGS_ADD, "{\"ResourceType\":\"Parameter\",\"ResourceId\":\"/exp/p\",\"Tags\":[{\"Key\":"
                 "\"k\",\"Value\":\"v\"}]}");
    cr_assert_str_eq(jstr(get("/exp/p", true), "Value"), "gone-soon"); /* cached from here */
    T.now = 1700006400.0;                                              /* 2023-11-15T00:00:00Z */
    /* every read answers as if it were gone, before any write */
    fails(GET, "{\"Name\":\"/exp/p\"}", "ParameterNotFound");
    const es_json *r = ok(GETS, "{\"Names\":[\"/exp/p\"]}");
    cr_assert_eq(es_json_len(es_json_get(r, "InvalidParameters")), 1);
    cr_assert_eq(es_json_len(es_json_get(ok(DESC, "{}"), "Parameters")), 0);
    cr_assert_eq(es_json_len(es_json_get(ok(BYPATH, "{\"Path\":\"/exp\"}"), "Parameters")), 0);
    fails(HIST, "{\"Name\":\"/exp/p\"}", "ParameterNotFound");
    fails(TAGS_LIST, "{\"ResourceType\":\"Parameter\",\"ResourceId\":\"/exp/p\"}",
          "InvalidResourceId");
    /* the next write deletes it: a new parameter of the name starts at 1, without tags */
    put("/exp/other", "String", "x", false);
    cr_assert_eq(put("/exp/p", "String", "again", false), 1);
    cr_assert_eq(es_json_len(tag_list("/exp/p")), 0);
}

/* The dispatcher's index of operations (local.c): every entry of every
 * service's table is found under its service, nothing else is - another
 * service's operation, a name one byte longer or shorter or of another
 * case, an empty part. */
Test(al_ssm, every_operation_is_found_under_its_service_only)
{
    static const struct {
        const char *service;
        const al_op *table;
    } services[] = {{"AmazonSSM", al_ssm_ops},
                    {"secretsmanager", al_sm_ops},
                    {"TrentService", al_kms_ops},
                    {"AmazonEC2ContainerRegistry_V20150921", al_ecr_ops}};
    char target[256];
    size_t n = sizeof services / sizeof services[0];
    for (size_t i = 0; i < n; i++) {
        size_t count = 0;
        for (const al_op *o = services[i].table; o->name; o++, count++) {
            snprintf(target, sizeof target, "%s.%s", services[i].service, o->name);
            cr_assert(al_knows_target(target), "%s", target);
            snprintf(target, sizeof target, "%s.%sx", services[i].service, o->name);
            cr_assert_not(al_knows_target(target), "%s", target);
            snprintf(target, sizeof target, "%s.%.*s", services[i].service,
                     (int)strlen(o->name) - 1, o->name);
            bool also = false; /* GetParameter is GetParameters less its last byte */
            for (const al_op *p = services[i].table; p->name; p++)
                also |= strcmp(p->name, target + strlen(services[i].service) + 1) == 0;
            cr_assert_eq(al_knows_target(target), also, "%s", target);
            snprintf(target, sizeof target, "%sx.%s", services[i].service, o->name);
            cr_assert_not(al_knows_target(target), "%s", target);
            snprintf(target, sizeof target, "%.*s.%s", (int)strlen(services[i].service) - 1,
                     services[i].service, o->name);
            cr_assert_not(al_knows_target(target), "%s", target);
            /* under every other service: only where that table has it too */
            for (size_t j = 0; j < n; j++) {
                if (j == i)
                    continue;
                bool there = false;
                for (const al_op *p = services[j].table; p->name; p++)
                    there |= strcmp(p->name, o->name) == 0;
                snprintf(target, sizeof target, "%s.%s", services[j].service, o->name);
                cr_assert_eq(al_knows_target(target), there, "%s", target);
            }
        }
        cr_assert_gt(count, 0);
    }
    cr_assert(al_knows_target("AmazonSSM.GetParameters"));
    cr_assert_not(al_knows_target("AmazonSSM.getParameters"));
    cr_assert_not(al_knows_target("amazonSSM.GetParameters"));
    cr_assert_not(al_knows_target("AmazonSSM."));
    cr_assert_not(al_knows_target(".GetParameters"));
    cr_assert_not(al_knows_target("AmazonSSMGetParameters"));
    cr_assert_not(al_knows_target(""));
    cr_assert_not(al_knows_target(NULL));
    /* the read-only operations are served, and so is a write after them */
    ok(PUT, "{\"Name\":\"/idx/a\",\"Type\":\"String\",\"Value\":\"1\"}");
    cr_assert_str_eq(jstr(es_json_get(ok(GET, "{\"Name\":\"/idx/a\"}"), "Parameter"), "Value"),
                     "1");
    ok(PUT, "{\"Name\":\"/idx/a\",\"Type\":\"String\",\"Value\":\"2\",\"Overwrite\":true}");
    cr_assert_str_eq(jstr(es_json_get(ok(GET, "{\"Name\":\"/idx/a\"}"), "Parameter"), "Value"),
                     "2");
}

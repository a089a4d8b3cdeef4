/* Expansion (issue 21): the ecs-secrets.expand.<PREFIX> labels read at
 * registration (agent/tasks/td_expand.h) and what they become at launch
 * (agent/secrets/expand.h): the name rule, the limits, the collisions, the
 * SSM path's set version. No error quotes a value. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/secrets/expand.h"
#include "agent/tasks/taskdef.h"
#include "common/alloc.h"

static const ag_td_ctx ctx = {.region = "us-east-1", .account = "123456789012"};
#define SM_ARN "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"

static char *with_labels(bool role, const char *labels, const char *extra)
{
    static char buf[16384];
    snprintf(
        buf, sizeof buf,
        "{\"family\":\"web\",%s\"containerDefinitions\":[{\"name\":\"app\",\"image\":\"busybox\","
        "\"dockerLabels\":{%s}%s%s}]}",
        role ? "\"executionRoleArn\":\"arn:aws:iam::123456789012:role/r\"," : "", labels,
        extra && *extra ? "," : "", extra ? extra : "");
    return buf;
}

static ag_taskdef *parse_ok(const char *labels, const char *extra)
{
    ag_taskdef *td = NULL;
    ag_td_error e = {0};
    const char *body = with_labels(true, labels, extra);
    cr_assert_eq(ag_taskdef_parse(body, strlen(body), &ctx, &td, &e), 0, "%s: %s", e.message, body);
    return td;
}

static void parse_bad(const char *labels, const char *want)
{
    ag_taskdef *td = NULL;
    ag_td_error e = {0};
    const char *body = with_labels(true, labels, NULL);
    cr_assert_lt(ag_taskdef_parse(body, strlen(body), &ctx, &td, &e), 0, "accepted: %s", body);
    cr_assert_str_eq(e.code, "ClientException", "%s", e.message);
    cr_assert_not_null(strstr(e.message, want), "'%s' lacks '%s'", e.message, want);
}

Test(expand, labels_parsed_once_typed)
{
    ag_taskdef *td =
        parse_ok("\"ecs-secrets.expand.DB_\":\"" SM_ARN "\","
                 "\"ecs-secrets.expand.APP_\":\"/app/prod/\","
                 "\"ecs-secrets.expand.OLD_\":\"" SM_ARN "::AWSPREVIOUS:\","
                 "\"ecs-secrets.expand.X\":\"arn:aws:ssm:eu-west-1:123456789012:parameter/a/b/\","
                 "\"ecs-secrets.expand.\":\"plain-name\",\"other\":\"x\"",
                 NULL);
    const ag_container_def *c = &td->containers[0];
    cr_assert_eq(c->n_expands, 5);
    cr_assert_str_eq(c->expands[0].prefix, "DB_");
    cr_assert_not(c->expands[0].ssm_path);
    cr_assert_str_eq(c->expands[0].ref->name, "ecs-secrets.expand.DB_");
    cr_assert_eq(c->expands[0].ref->vf.kind, AG_VF_SECRETSMANAGER);
    cr_assert_str_eq(c->expands[0].ref->vf.secret_id, SM_ARN);
    cr_assert(c->expands[1].ssm_path);
    cr_assert_str_eq(c->expands[1].ref->vf.ssm_name, "/app/prod", "the path without its '/'");
    cr_assert_str_eq(c->expands[1].ref->vf.region, "us-east-1");
    cr_assert_str_eq(c->expands[1].ref->value_from, "/app/prod/", "kept as registered");
    cr_assert_str_eq(c->expands[2].ref->vf.version_stage, "AWSPREVIOUS");
    cr_assert(c->expands[3].ssm_path);
    cr_assert_str_eq(c->expands[3].ref->vf.region, "eu-west-1");
    cr_assert_str_eq(c->expands[3].ref->vf.ssm_name, "/a/b");
    cr_assert_str_eq(c->expands[4].prefix, "");
    cr_assert_str_eq(c->expands[4].ref->vf.secret_id, "plain-name");
    ag_taskdef_free(td);
}

Test(expand, malformed_labels_refused_naming_the_field)
{
    const char *field = "containerDefinitions[0].dockerLabels[\"ecs-secrets.expand.DB_\"]";
    parse_bad("\"ecs-secrets.expand.DB_\":\"\"", field);
    parse_bad("\"ecs-secrets.expand.DB_\":\"" SM_ARN ":password::\"", "json-key part empty");
    parse_bad("\"ecs-secrets.expand.DB_\":\"/app/prod\"", "an SSM path ends with '/'");
    parse_bad("\"ecs-secrets.expand.DB_\":\"arn:aws:ssm:us-east-1:123456789012:parameter/a\"",
              "end it with '/'");
    parse_bad("\"ecs-secrets.expand.DB_\":\"/\"", "below the root");
    parse_bad("\"ecs-secrets.expand.DB_\":\"/app//\"", "below the root");
    parse_bad("\"ecs-secrets.expand.DB_\":\"app/prod/\"", "must start with '/'");
    parse_bad("\"ecs-secrets.expand.DB_\":\"/aws/reference/secretsmanager/x/\"", "not a secret");
    parse_bad("\"ecs-secrets.expand.DB_\":\"arn:aws:ssm:us-east-1:999999999999:parameter/a/\"",
              "another account");
    parse_bad("\"ecs-secrets.expand.DB_\":\"arn:aws:s3:::bucket\"", field);
    parse_bad("\"ecs-secrets.expand.1DB\":\"" SM_ARN "\"", "the prefix must be");
    parse_bad("\"ecs-secrets.expand.D-B\":\"" SM_ARN "\"", "the prefix must be");
    char many[4096] = "";
    size_t o = 0;
    for (int i = 0; i <= AG_EXPAND_LABELS_MAX; i++)
        o += (size_t)snprintf(many + o, sizeof many - o, "%s\"ecs-secrets.expand.P%d_\":\"/a/\"",
                              i ? "," : "", i);
    parse_bad(many, "more than 10");

    /* an expansion is a secret: the execution role fetches it */
    ag_taskdef *td = NULL;
    ag_td_error e = {0};
    const char *body = with_labels(false, "\"ecs-secrets.expand.DB_\":\"/a/\"", NULL);
    cr_assert_lt(ag_taskdef_parse(body, strlen(body), &ctx, &td, &e), 0);
    cr_assert_not_null(strstr(e.message, "executionRoleArn"), "%s", e.message);
}

Test(expand, ssm_name_rule)
{
    char out[AG_EXPAND_NAME_MAX + 1], err[256];
    cr_assert_eq(ag_expand_ssm_var("APP_", "/app/prod", "/app/prod/db/user", out, sizeof out, err,
                                   sizeof err),
                 0, "%s", err);
    cr_assert_str_eq(out, "APP_db_user");
    cr_assert_eq(
        ag_expand_ssm_var("", "/app/prod", "/app/prod/port", out, sizeof out, err, sizeof err), 0);
    cr_assert_str_eq(out, "port");
    /* not a variable name: refused with the parameter and the name */
    cr_assert_eq(ag_expand_ssm_var("", "/app", "/app/db-user", out, sizeof out, err, sizeof err),
                 -EINVAL);
    cr_assert_not_null(strstr(err, "'/app/db-user' gives 'db-user'"), "%s", err);
    cr_assert_eq(ag_expand_ssm_var("", "/app", "/app/1st", out, sizeof out, err, sizeof err),
                 -EINVAL);
    cr_assert_eq(ag_expand_ssm_var("", "/app", "/app/x.y", out, sizeof out, err, sizeof err),
                 -EINVAL);
    /* not under the path ("/application" is not under "/app") */
    cr_assert_eq(ag_expand_ssm_var("P", "/app", "/application/x", out, sizeof out, err, sizeof err),
                 -EINVAL);
    cr_assert_not_null(strstr(err, "not under"), "%s", err);
    char small[4];
    cr_assert_eq(ag_expand_ssm_var("P", "/app", "/app/long", small, sizeof small, err, sizeof err),
                 -EMSGSIZE);
    cr_assert(ag_expand_name_ok("_a9", 3));
    cr_assert_not(ag_expand_name_ok("", 0));
    cr_assert_not(ag_expand_name_ok("a=b", 3));
}

static size_t count_entries(const es_buf *b)
{
    size_t n = 0;
    for (size_t o = 0; o < b->len; o += strlen(b->data + o) + 1)
        n++;
    return n;
}

Test(expand, json_secret_every_top_level_key)
{
    es_buf env;
    es_buf_init(&env, AG_EXPAND_ENV_MAX);
    size_t n = 0;
    char err[256];
    const char *s = "{\"username\":\"admin\",\"password\":\"p@ss\",\"port\":5432,"
                    "\"opts\":{\"tls\":true},\"username\":\"last\"}";
    cr_assert_eq(ag_expand_json("DB_", s, strlen(s), &env, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 4, "a key given twice counts once");
    cr_assert_eq(count_entries(&env), 4);
    const char *want[] = {"DB_password=p@ss", "DB_port=5432", "DB_opts={\"tls\":true}",
                          "DB_username=last"};
    size_t o = 0;
    for (size_t i = 0; i < 4; i++) {
        cr_assert_str_eq(env.data + o, want[i]);
        o += strlen(env.data + o) + 1;
    }
    /* a bad key, a NUL in a value, not an object: refused, nothing added, no value quoted */
    size_t len0 = env.len;
    const char *bad = "{\"ok\":\"v1\",\"bad-key\":\"s3cr3t\"}";
    cr_assert_eq(ag_expand_json("DB_", bad, strlen(bad), &env, &n, err, sizeof err), -EINVAL);
    cr_assert_not_null(strstr(err, "'bad-key'"), "%s", err);
    cr_assert_null(strstr(err, "s3cr3t"));
    cr_assert_eq(env.len, len0);
    cr_assert_eq(n, 4);
    const char *nul = "{\"k\":\"a\\u0000b\"}";
    cr_assert_eq(ag_expand_json("", nul, strlen(nul), &env, &n, err, sizeof err), -EILSEQ);
    cr_assert_not_null(strstr(err, "NUL"), "%s", err);
    cr_assert_eq(env.len, len0);
    cr_assert_eq(ag_expand_json("", "text", 4, &env, &n, err, sizeof err), -EINVAL);
    cr_assert_not_null(strstr(err, "not a JSON object"), "%s", err);
    es_buf_free_secret(&env);
}

Test(expand, at_most_AG_EXPAND_MAX_variables)
{
    es_buf doc, env;
    es_buf_init(&doc, 1 << 20);
    es_buf_init(&env, AG_EXPAND_ENV_MAX);
    es_buf_append_str(&doc, "{");
    for (int i = 0; i <= AG_EXPAND_MAX; i++) {
        char kv[32];
        snprintf(kv, sizeof kv, "%s\"k%d\":\"v\"", i ? "," : "", i);
        es_buf_append_str(&doc, kv);
    }
    es_buf_append_str(&doc, "}");
    size_t n = 0;
    char err[256];
    cr_assert_eq(ag_expand_json("", doc.data, doc.len, &env, &n, err, sizeof err), -EINVAL);
    cr_assert_not_null(strstr(err, "more than 100"), "%s", err);
    cr_assert_eq(n, 0);
    cr_assert_eq(env.len, 0);
    n = AG_EXPAND_MAX;
    cr_assert_eq(ag_expand_add_param("", "/a", "/a/b", "v", 1, &env, &n, err, sizeof err), -EINVAL);
    cr_assert_not_null(strstr(err, "more than 100 parameters"), "%s", err);
    es_buf_free(&doc);
    es_buf_free_secret(&env);
}

Test(expand, collisions_named_with_both_sources)
{
    ag_taskdef *td = parse_ok("\"ecs-secrets.expand.DB_\":\"" SM_ARN "\","
                              "\"ecs-secrets.expand.D\":\"/app/\"",
                              "\"environment\":[{\"name\":\"DB_host\",\"value\":\"h\"}],"
                              "\"secrets\":[{\"name\":\"Dx\",\"valueFrom\":\"/p\"}]");
    const ag_container_def *c = &td->containers[0];
    char err[512];
    static const char a[] = "DB_user=u\0DB_password=p\0", b[] = "Dy=1\0Dz=2\0";
    const char *sets[2] = {a, b};
    size_t lens[2] = {sizeof a - 1, sizeof b - 1};
    cr_assert_eq(ag_expand_check_names(c, sets, lens, err, sizeof err), 0, "%s", err);

    static const char env_clash[] = "DB_host=x\0";
    sets[0] = env_clash;
    lens[0] = sizeof env_clash - 1;
    cr_assert_eq(ag_expand_check_names(c, sets, lens, err, sizeof err), -EINVAL);
    cr_assert_not_null(strstr(err, "DB_host of the label ecs-secrets.expand.DB_ is also given by "
                                   "environment"),
                       "%s", err);
    cr_assert_null(strstr(err, "=x"), "%s", err);
    static const char sec_clash[] = "Dx=1\0";
    sets[0] = a;
    lens[0] = sizeof a - 1;
    sets[1] = sec_clash;
    lens[1] = sizeof sec_clash - 1;
    cr_assert_eq(ag_expand_check_names(c, sets, lens, err, sizeof err), -EINVAL);
    cr_assert_not_null(strstr(err, "by secrets"), "%s", err);
    /* "DB_" + "user" and "D" + "B_user": two labels giving one name */
    static const char cross[] = "B=1\0DB_user=2\0";
    sets[1] = cross;
    lens[1] = sizeof cross - 1;
    cr_assert_eq(ag_expand_check_names(c, sets, lens, err, sizeof err), -EINVAL);
    cr_assert_not_null(strstr(err, "DB_user of the label ecs-secrets.expand.D is also given by the "
                                   "label ecs-secrets.expand.DB_"),
                       "%s", err);
    ag_taskdef_free(td);
}

Test(expand, set_version_follows_names_and_versions)
{
    const char *n1[] = {"/a/y", "/a/x"};
    int64_t v1[] = {2, 1};
    const char *n2[] = {"/a/x", "/a/y"};
    int64_t v2[] = {1, 2};
    char a[AG_EXPAND_VERSION_LEN + 1], b[AG_EXPAND_VERSION_LEN + 1];
    cr_assert_eq(ag_expand_set_version(n1, v1, 2, a, sizeof a), 0);
    cr_assert_eq(ag_expand_set_version(n2, v2, 2, b, sizeof b), 0);
    cr_assert_str_eq(a, b, "the order of the answer does not matter");
    cr_assert_eq(strlen(a), AG_EXPAND_VERSION_LEN);
    cr_assert_lt(strlen(a), 72, "fits ag_secret_meta.latest_version");
    v2[1] = 3; /* changed */
    cr_assert_eq(ag_expand_set_version(n2, v2, 2, b, sizeof b), 0);
    cr_assert_str_neq(a, b);
    cr_assert_eq(ag_expand_set_version(n2, v2, 1, b, sizeof b), 0); /* removed */
    cr_assert_str_neq(a, b);
    const char *n3[] = {"/a/x", "/a/y", "/a/z"}; /* added */
    int64_t v3[] = {1, 2, 1};
    cr_assert_eq(ag_expand_set_version(n3, v3, 3, b, sizeof b), 0);
    cr_assert_str_neq(a, b);
    cr_assert_eq(ag_expand_set_version(n3, v3, 0, b, sizeof b), 0, "an empty path has a version");
}

/* The task's metadata names an expansion by its label's key: a secrets[]
 * entry may not take such a name. */
Test(expand, secret_named_as_a_label_refused)
{
    ag_taskdef *td = NULL;
    ag_td_error e = {0};
    const char *body =
        with_labels(true, "\"ecs-secrets.expand.DB_\":\"/app/\"",
                    "\"secrets\":[{\"name\":\"ecs-secrets.expand.X\",\"valueFrom\":\"/a\"}]");
    cr_assert_lt(ag_taskdef_parse(body, strlen(body), &ctx, &td, &e), 0, "accepted: %s", body);
    cr_assert_not_null(strstr(e.message, "containerDefinitions[0].secrets[0].name"), "%s",
                       e.message);
    cr_assert_not_null(strstr(e.message, "reserved"), "%s", e.message);
}

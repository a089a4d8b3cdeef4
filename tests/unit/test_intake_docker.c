/* The Docker-socket intake's pure parts (issue 19 part 2): the create body's
 * rewrite (docker/create_body.h), the ecs-secrets.* labels and the one-
 * container task definition they make (agent/intake/labels.h), and who may
 * name which role (agent/intake/roles.h). The whole path, through the real
 * docker CLI and dockerd: tests/integration/test_docker_intake.sh. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/intake/labels.h"
#include "agent/intake/roles.h"
#include "agent/tasks/td_files.h"
#include "docker/create_body.h"

static es_json *parse(const char *body)
{
    es_json *doc = NULL;
    char err[256] = "";
    cr_assert_eq(dk_create_body_parse(body, strlen(body), &doc, err, sizeof err), 0, "%s: %s", body,
                 err);
    return doc;
}

/* rewrite(body, edit) as a string (static buffer) */
static const char *rewrite(const char *body, const dk_create_edit *ed)
{
    static char out[8192];
    es_json *doc = parse(body);
    es_buf b;
    es_buf_init(&b, DK_CREATE_BODY_OUT_MAX);
    char err[256] = "";
    int r = dk_create_body_rewrite(doc, ed, &b, err, sizeof err);
    cr_assert_eq(r, 0, "%s", err);
    snprintf(out, sizeof out, "%s", es_buf_cstr(&b));
    es_buf_free_secret(&b);
    es_json_free_secret(doc);
    return out;
}

#define KV(k, v)                                                                                   \
    {                                                                                              \
        k, v, sizeof v - 1, 0                                                                      \
    }

Test(create_body, env_added_replaced_and_appended)
{
    dk_body_kv env[] = {KV("DB", "s3cret"), KV("NEW", "x=y")};
    dk_create_edit ed = {.env = env, .nenv = 2};
    /* no Env: one is added at the end; other fields as they were, numbers
     * keeping their text */
    cr_assert_str_eq(rewrite("{\"Image\":\"busybox\",\"StopTimeout\":1.50,\"Tty\":false}", &ed),
                     "{\"Image\":\"busybox\",\"StopTimeout\":1.50,\"Tty\":false,"
                     "\"Env\":[\"DB=s3cret\",\"NEW=x=y\"]}");
    /* -e DB=mine is overridden in place, a second DB dropped, a bare DB
     * too; other variables kept in order */
    cr_assert_str_eq(
        rewrite("{\"Env\":[\"A=1\",\"DB=mine\",\"B\",\"DB=again\",\"DB\"],\"X\":[]}", &ed),
        "{\"Env\":[\"A=1\",\"DB=s3cret\",\"B\",\"NEW=x=y\"],\"X\":[]}");
    /* Env null: as empty */
    cr_assert_str_eq(rewrite("{\"Env\":null}", &ed), "{\"Env\":[\"DB=s3cret\",\"NEW=x=y\"]}");
    /* Go's decoder takes field names case-insensitively, the last winning:
     * the last one is rewritten, earlier ones stay */
    cr_assert_str_eq(rewrite("{\"Env\":[\"A=1\"],\"env\":[\"DB=x\"]}", &ed),
                     "{\"Env\":[\"A=1\"],\"Env\":[\"DB=s3cret\",\"NEW=x=y\"]}");
}

Test(create_body, log_config_merged)
{
    dk_body_kv log[] = {KV("splunk-token", "tok")};
    dk_create_edit ed = {.log_config = log, .nlog = 1};
    cr_assert_str_eq(
        rewrite("{\"HostConfig\":{\"Memory\":0,\"LogConfig\":{\"Type\":\"splunk\",\"Config\":"
                "{\"splunk-url\":\"http://h\",\"splunk-token\":\"user's\"}},\"Binds\":null}}",
                &ed),
        "{\"HostConfig\":{\"Memory\":0,\"LogConfig\":{\"Type\":\"splunk\",\"Config\":"
        "{\"splunk-url\":\"http://h\",\"splunk-token\":\"tok\"}},\"Binds\":null}}");
    /* no HostConfig, no LogConfig, no Config: made */
    cr_assert_str_eq(rewrite("{\"Image\":\"i\"}", &ed),
                     "{\"Image\":\"i\",\"HostConfig\":{\"LogConfig\":{\"Config\":"
                     "{\"splunk-token\":\"tok\"}}}}");
    cr_assert_str_eq(
        rewrite("{\"HostConfig\":{\"LogConfig\":{\"Type\":\"\",\"Config\":null}}}", &ed),
        "{\"HostConfig\":{\"LogConfig\":{\"Type\":\"\",\"Config\":"
        "{\"splunk-token\":\"tok\"}}}}");
    /* a registered definition's driver replaces the client's */
    ed.log_type = "splunk";
    cr_assert_str_eq(rewrite("{\"HostConfig\":{\"LogConfig\":{\"Type\":\"json-file\"}}}", &ed),
                     "{\"HostConfig\":{\"LogConfig\":{\"Type\":\"splunk\",\"Config\":"
                     "{\"splunk-token\":\"tok\"}}}}");
}

/* secret files' bind mounts: after the client's own, the rest of HostConfig
 * as it was (LogConfig untouched when the edit has no log option) */
Test(create_body, mounts_appended)
{
    dk_mount m[] = {{"/run/f/docker/t1/c0/f0", "/run/secrets/db", true},
                    {"/run/f/docker/t1/c0/f1", "/etc/app/key", true}};
    dk_create_edit ed = {.mounts = m, .nmounts = 2};
    cr_assert_str_eq(
        rewrite("{\"HostConfig\":{\"LogConfig\":{\"Type\":\"json-file\"},\"Mounts\":[{\"Type\":"
                "\"volume\",\"Target\":\"/data\"}],\"NetworkMode\":\"none\"}}",
                &ed),
        "{\"HostConfig\":{\"LogConfig\":{\"Type\":\"json-file\"},\"Mounts\":[{\"Type\":\"volume\","
        "\"Target\":\"/data\"},{\"Type\":\"bind\",\"Source\":\"/run/f/docker/t1/c0/f0\",\"Target\":"
        "\"/run/secrets/db\",\"ReadOnly\":true},{\"Type\":\"bind\",\"Source\":"
        "\"/run/f/docker/t1/c0/f1\",\"Target\":\"/etc/app/key\",\"ReadOnly\":true}],"
        "\"NetworkMode\":\"none\"}}");
    /* no HostConfig, no Mounts (null): made; Go's case-insensitive name found */
    ed.nmounts = 1;
    cr_assert_str_eq(
        rewrite("{\"Image\":\"i\"}", &ed),
        "{\"Image\":\"i\",\"HostConfig\":{\"Mounts\":[{\"Type\":\"bind\",\"Source\":"
        "\"/run/f/docker/t1/c0/f0\",\"Target\":\"/run/secrets/db\",\"ReadOnly\":true}]}}");
    cr_assert_str_eq(
        rewrite("{\"hostconfig\":{\"mounts\":null}}", &ed),
        "{\"HostConfig\":{\"Mounts\":[{\"Type\":\"bind\",\"Source\":"
        "\"/run/f/docker/t1/c0/f0\",\"Target\":\"/run/secrets/db\",\"ReadOnly\":true}]}}");
    /* refusals: Mounts not a list; a relative path */
    es_json *doc = parse("{\"HostConfig\":{\"Mounts\":{}}}");
    es_buf b;
    es_buf_init(&b, DK_CREATE_BODY_OUT_MAX);
    char err[256] = "";
    cr_assert_eq(dk_create_body_rewrite(doc, &ed, &b, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "HostConfig.Mounts"), "%s", err);
    es_buf_free_secret(&b);
    es_json_free(doc);
    dk_mount rel = {"run/x", "/x", true};
    ed.mounts = &rel;
    doc = parse("{}");
    es_buf_init(&b, DK_CREATE_BODY_OUT_MAX);
    cr_assert_eq(dk_create_body_rewrite(doc, &ed, &b, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "absolute"), "%s", err);
    es_buf_free_secret(&b);
    es_json_free(doc);
}

/* the task's labels: a client's label of the same name is replaced (a
 * container cannot claim another task's ARN), others kept, new ones added */
Test(create_body, labels_replaced_and_added)
{
    dk_body_kv lab[] = {KV("com.amazonaws.ecs.task-arn", "arn:t"),
                        KV("com.amazonaws.ecs.cluster", "c")};
    dk_create_edit ed = {.labels = lab, .nlabels = 2};
    cr_assert_str_eq(
        rewrite(
            "{\"Labels\":{\"a\":\"b\",\"com.amazonaws.ecs.task-arn\":\"forged\"},\"Image\":\"i\"}",
            &ed),
        "{\"Labels\":{\"a\":\"b\",\"com.amazonaws.ecs.task-arn\":\"arn:t\","
        "\"com.amazonaws.ecs.cluster\":\"c\"},\"Image\":\"i\"}");
    /* no Labels, or null: made; the last "labels" (any case) is the one rewritten */
    cr_assert_str_eq(rewrite("{\"Image\":\"i\"}", &ed),
                     "{\"Image\":\"i\",\"Labels\":{\"com.amazonaws.ecs.task-arn\":\"arn:t\","
                     "\"com.amazonaws.ecs.cluster\":\"c\"}}");
    cr_assert_str_eq(rewrite("{\"Labels\":{\"x\":\"1\"},\"labels\":null}", &ed),
                     "{\"Labels\":{\"x\":\"1\"},\"Labels\":{\"com.amazonaws.ecs.task-arn\":"
                     "\"arn:t\",\"com.amazonaws.ecs.cluster\":\"c\"}}");
    char err[DK_CREATE_BODY_ERR_MAX];
    es_json *doc = NULL;
    cr_assert_eq(dk_create_body_parse("{\"Labels\":[1]}", 14, &doc, err, sizeof err), 0);
    es_buf out;
    es_buf_init(&out, DK_CREATE_BODY_OUT_MAX);
    cr_assert_eq(dk_create_body_rewrite(doc, &ed, &out, err, sizeof err), -EINVAL);
    cr_assert_str_eq(err, "Labels is not an object");
    es_buf_free_secret(&out);
    es_json_free_secret(doc);
}

Test(create_body, nothing_to_do_writes_the_same_tree)
{
    dk_create_edit ed = {0};
    const char *b = "{\"Image\":\"a\",\"Labels\":{\"k\":\"v\"},\"HostConfig\":{\"X\":1e3}}";
    cr_assert_str_eq(rewrite(b, &ed), b);
}

Test(create_body, bad_input)
{
    es_json *doc = NULL;
    char err[256];
    cr_assert_eq(dk_create_body_parse("[1]", 3, &doc, err, sizeof err), -EINVAL);
    cr_assert_str_eq(err, "the body is not a JSON object");
    cr_assert_eq(dk_create_body_parse("{\"a\":", 5, &doc, err, sizeof err), -EINVAL);
    /* deeper than the limit */
    char deep[2 * (DK_CREATE_BODY_DEPTH + 2) + 8];
    size_t n = 0;
    for (int i = 0; i < DK_CREATE_BODY_DEPTH + 2; i++)
        deep[n++] = '[';
    for (int i = 0; i < DK_CREATE_BODY_DEPTH + 2; i++)
        deep[n++] = ']';
    cr_assert_eq(dk_create_body_parse(deep, n, &doc, err, sizeof err), -EINVAL);
    /* over the size limit */
    size_t big = DK_CREATE_BODY_MAX + 16;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    huge[0] = '{';
    huge[big - 1] = '}';
    cr_assert_eq(dk_create_body_parse(huge, big, &doc, err, sizeof err), -EINVAL);
    free(huge);

    dk_body_kv nul[] = {{"DB", "a\0b", 3, 0}};
    dk_create_edit ed = {.env = nul, .nenv = 1};
    doc = parse("{}");
    es_buf b;
    es_buf_init(&b, DK_CREATE_BODY_OUT_MAX);
    cr_assert_eq(dk_create_body_rewrite(doc, &ed, &b, err, sizeof err), -EINVAL);
    cr_assert_str_eq(err, "the value of the variable DB holds a NUL byte");
    dk_body_kv latin[] = {{"DB", "\xe9t\xe9", 3, 0}};
    ed.env = latin;
    cr_assert_eq(dk_create_body_rewrite(doc, &ed, &b, err, sizeof err), -EINVAL);
    cr_assert_str_eq(err, "the variable DB is not UTF-8 text");
    es_json_free(doc);
    dk_body_kv ok[] = {KV("DB", "v")};
    ed.env = ok;
    doc = parse("{\"Env\":\"DB=x\"}");
    es_buf_reset(&b);
    cr_assert_eq(dk_create_body_rewrite(doc, &ed, &b, err, sizeof err), -EINVAL);
    cr_assert_str_eq(err, "Env is not a list");
    es_json_free(doc);
    /* past the output's maximum */
    doc = parse("{}");
    es_buf small;
    es_buf_init(&small, 8);
    cr_assert_eq(dk_create_body_rewrite(doc, &ed, &small, err, sizeof err), -EMSGSIZE);
    es_buf_free_secret(&small);
    es_buf_free_secret(&b);
    es_json_free(doc);
}

Test(create_body, fields_found_as_go_finds_them)
{
    es_json *doc = parse("{\"labels\":{\"a\":\"1\"},\"LABELS\":{\"b\":\"2\"},"
                         "\"ho\xc5\xbftconfig\":{\"logconfig\":{\"type\":\"splunk\"}},"
                         "\"image\":\"busybox\"}");
    const es_json *l = dk_create_body_labels(doc);
    cr_assert_not_null(l);
    cr_assert_str_eq(l->u.object.keys[0], "b");
    cr_assert_str_eq(dk_create_body_log_type(doc), "splunk");
    cr_assert_str_eq(dk_create_body_image(doc), "busybox");
    es_json_free(doc);
}

/* ---- labels ---- */

static int labels(const char *json, ag_intake_req *rq, char *err, size_t n, es_json **keep)
{
    *keep = parse(json);
    return ag_intake_read_labels(*keep, rq, err, n);
}

Test(intake_labels, none_ask_nothing)
{
    ag_intake_req rq;
    char err[AG_INTAKE_ERR_MAX];
    es_json *j;
    cr_assert_eq(labels("{\"com.docker.compose.project\":\"p\"}", &rq, err, sizeof err, &j), 0);
    es_json_free(j);
    cr_assert_eq(ag_intake_read_labels(NULL, &rq, err, sizeof err), 0);
}

Test(intake_labels, secrets_and_role)
{
    ag_intake_req rq;
    char err[AG_INTAKE_ERR_MAX] = "";
    es_json *j;
    cr_assert_eq(labels("{\"ecs-secrets.secret.DB\":\"/test/db\",\"other\":\"x\","
                        "\"ecs-secrets.log-secret.splunk-token\":\"/test/tok\","
                        "\"ecs-secrets.execution-role\":\"arn:aws:iam::123456789012:role/r\"}",
                        &rq, err, sizeof err, &j),
                 1, "%s", err);
    cr_assert_eq(rq.n_env, 1);
    cr_assert_str_eq(rq.env[0].name, "DB");
    cr_assert_str_eq(rq.env[0].value_from, "/test/db");
    cr_assert_eq(rq.n_log, 1);
    cr_assert_str_eq(rq.log[0].name, "splunk-token");
    cr_assert_str_eq(rq.role, "arn:aws:iam::123456789012:role/r");
    es_json_free(j);
}

static void expect_label_error(const char *json, const char *want)
{
    ag_intake_req rq;
    char err[AG_INTAKE_ERR_MAX] = "";
    es_json *j;
    cr_assert_eq(labels(json, &rq, err, sizeof err, &j), -EINVAL, "accepted %s", json);
    cr_assert(strstr(err, want), "'%s' lacks '%s'", err, want);
    es_json_free(j);
}

#define ROLE "\"ecs-secrets.execution-role\":\"arn:aws:iam::123456789012:role/r\""

Test(intake_labels, bad_labels)
{
    expect_label_error("{\"ecs-secrets.secrets.DB\":\"/x\"," ROLE "}",
                       "unknown label ecs-secrets.secrets.DB (known: ecs-secrets.secret.");
    expect_label_error("{\"ecs-secrets.secret.DB\":\"/x\"}",
                       "labels ecs-secrets.secret.*, ecs-secrets.log-secret.* and "
                       "ecs-secrets.expand.* need ecs-secrets.execution-role=<role ARN>");
    expect_label_error("{\"ecs-secrets.expand.DB_\":\"db\"}",
                       "need ecs-secrets.execution-role=<role ARN>");
    /* a refreshed file's directory is its task's, which a socket container
     * outlives: refused by name; frozen files are served */
    expect_label_error("{\"ecs-secrets.secret.DB\":\"/x\",\"ecs-secrets.file-policy.DB\":"
                       "\"refresh\"," ROLE "}",
                       "label ecs-secrets.file-policy.DB: only frozen secret files are served on "
                       "the Docker socket");
    expect_label_error("{\"ecs-secrets.file.DB\":\"/run/db\",\"ecs-secrets.file.DB\":\"/run/e\","
                       "\"ecs-secrets.secret.DB\":\"/x\"," ROLE "}",
                       "label ecs-secrets.file.DB is given twice");
    expect_label_error("{\"ecs-secrets.task-definition\":\"app\",\"ecs-secrets.container\":\"c\","
                       "\"ecs-secrets.file.DB\":\"/run/db\"}",
                       "cannot be given with");
    expect_label_error("{\"ecs-secrets.task-definition\":\"app\",\"ecs-secrets.container\":\"w\","
                       "\"ecs-secrets.expand.X_\":\"s\"}",
                       "ecs-secrets.log-secret.*, ecs-secrets.expand.* or ecs-secrets.file.*");
    expect_label_error("{\"ecs-secrets.expand.X_\":\"a\",\"ecs-secrets.expand.X_\":\"b\"," ROLE "}",
                       "label ecs-secrets.expand.X_ is given twice");
    expect_label_error("{" ROLE "}", "label ecs-secrets.execution-role names no secret to read");
    expect_label_error("{\"ecs-secrets.secret.\":\"/x\"," ROLE "}",
                       "names no variable or option after the dot");
    expect_label_error("{\"ecs-secrets.secret.DB\":1," ROLE "}",
                       "label ecs-secrets.secret.DB: the value must be a string");
    expect_label_error("{\"ecs-secrets.secret.DB\":\"/x\",\"ecs-secrets.secret.DB\":\"/y\"," ROLE
                       "}",
                       "label ecs-secrets.secret.DB is given twice");
    expect_label_error("{" ROLE "," ROLE "}", "label ecs-secrets.execution-role is given twice");
    expect_label_error("{\"ecs-secrets.task-definition\":\"app:1\"}",
                       "label ecs-secrets.task-definition needs ecs-secrets.container=<name>");
    expect_label_error("{\"ecs-secrets.container\":\"web\"}",
                       "label ecs-secrets.container needs ecs-secrets.task-definition");
    expect_label_error("{\"ecs-secrets.task-definition\":\"app\",\"ecs-secrets.container\":\"w\","
                       "\"ecs-secrets.secret.DB\":\"/x\"}",
                       "cannot be given with ecs-secrets.execution-role");
    /* a value too long, a key too long, too many secrets */
    char big[AG_INTAKE_LABEL_VALUE_MAX + 200];
    snprintf(big, sizeof big, "{\"ecs-secrets.secret.DB\":\"/%0*d\"," ROLE "}",
             AG_INTAKE_LABEL_VALUE_MAX, 0);
    expect_label_error(big, "label ecs-secrets.secret.DB: the value is longer than 2048 bytes");
    snprintf(big, sizeof big, "{\"ecs-secrets.secret.%0*d\":\"/x\"," ROLE "}",
             AG_INTAKE_LABEL_KEY_MAX, 0);
    expect_label_error(big, "is longer than 512 bytes");
    es_buf many;
    es_buf_init(&many, 1u << 20);
    es_buf_append_str(&many, "{" ROLE);
    for (int i = 0; i <= AG_TD_SECRETS_MAX; i++)
        es_buf_printf(&many, ",\"ecs-secrets.secret.V%d\":\"/p%d\"", i, i);
    es_buf_append_str(&many, "}");
    expect_label_error(es_buf_cstr(&many), "more than 100 labels ecs-secrets.secret.");
    es_buf_free(&many);
}

/* ecs-secrets.expand.<PREFIX> (the prefix may be empty): named by the
 * whole key, as a definition's dockerLabels hold it; alone with the role */
Test(intake_labels, expansion)
{
    ag_intake_req rq;
    char err[AG_INTAKE_ERR_MAX] = "";
    es_json *j;
    cr_assert_eq(labels("{\"ecs-secrets.expand.DB_\":\"db-credentials\","
                        "\"ecs-secrets.expand.\":\"/app/prod/\"," ROLE "}",
                        &rq, err, sizeof err, &j),
                 1, "%s", err);
    cr_assert_eq(rq.n_env, 0);
    cr_assert_eq(rq.n_expand, 2);
    cr_assert_str_eq(rq.expand[0].name, "ecs-secrets.expand.DB_");
    cr_assert_str_eq(rq.expand[0].value_from, "db-credentials");
    cr_assert_str_eq(rq.expand[1].name, "ecs-secrets.expand.");
    es_json_free(j);
    es_buf many;
    es_buf_init(&many, 1u << 16);
    es_buf_append_str(&many, "{" ROLE);
    for (int i = 0; i <= AG_EXPAND_LABELS_MAX; i++)
        es_buf_printf(&many, ",\"ecs-secrets.expand.P%d_\":\"s%d\"", i, i);
    es_buf_append_str(&many, "}");
    expect_label_error(es_buf_cstr(&many), "more than 10 labels ecs-secrets.expand.");
    es_buf_free(&many);
}

Test(intake_labels, td_ref)
{
    char fam[AG_TD_NAME_MAX + 1];
    long long rev = -1;
    cr_assert_eq(ag_intake_td_ref("app", fam, sizeof fam, &rev), 0);
    cr_assert_str_eq(fam, "app");
    cr_assert_eq(rev, 0);
    cr_assert_eq(ag_intake_td_ref("app:12", fam, sizeof fam, &rev), 0);
    cr_assert_eq(rev, 12);
    const char *bad[] = {"", ":1", "app:", "app:0", "app:x", "app:-1", "app:1234567890"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(ag_intake_td_ref(bad[i], fam, sizeof fam, &rev), -EINVAL, "%s", bad[i]);
}

/* ---- the one-container definition ---- */

static const ag_td_ctx CTX = {.region = "us-east-1", .account = "123456789012"};

static int from_labels(const char *json, ag_taskdef **td, char *err, size_t n)
{
    ag_intake_req rq;
    es_json *j;
    int r = labels(json, &rq, err, n, &j);
    cr_assert_eq(r, 1, "%s", err);
    r = ag_intake_taskdef(&rq, NULL, &CTX, td, err, n);
    es_json_free(j);
    return r;
}

Test(intake_taskdef, same_rules_as_register_task_definition)
{
    ag_taskdef *td = NULL;
    char err[AG_INTAKE_ERR_MAX] = "";
    cr_assert_eq(from_labels("{\"ecs-secrets.secret.DB\":\"/test/db\","
                             "\"ecs-secrets.secret.USER\":\"arn:aws:secretsmanager:us-east-1:"
                             "123456789012:secret:app-AbCdEf:username::\","
                             "\"ecs-secrets.log-secret.splunk-token\":\"/test/tok\"," ROLE "}",
                             &td, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(td->n_containers, 1);
    cr_assert_str_eq(td->execution_role_arn, "arn:aws:iam::123456789012:role/r");
    const ag_container_def *c = &td->containers[0];
    cr_assert_eq(c->n_secrets, 2);
    cr_assert_str_eq(c->secrets[1].vf.json_key, "username");
    cr_assert_eq(c->log->n_secret_options, 1);
    ag_taskdef_free(td);

    /* the parser's reasons, named by label */
    cr_assert_eq(from_labels("{\"ecs-secrets.secret.DB\":\"arn:aws:ssm:us-east-1:999999999999:"
                             "parameter/x\"," ROLE "}",
                             &td, err, sizeof err),
                 -EINVAL);
    cr_assert(strncmp(err, "label ecs-secrets.secret.DB: ", 29) == 0, "%s", err);
    cr_assert_eq(from_labels("{\"ecs-secrets.log-secret.tok\":\"arn:aws:ssm:us-wst-2:"
                             "123456789012:parameter/x\"," ROLE "}",
                             &td, err, sizeof err),
                 -EINVAL);
    cr_assert(strstr(err, "label ecs-secrets.log-secret.tok: ") && strstr(err, "us-west-2"), "%s",
              err);
    cr_assert_eq(from_labels("{\"ecs-secrets.secret.DB\":\"/x\","
                             "\"ecs-secrets.execution-role\":\"role/r\"}",
                             &td, err, sizeof err),
                 -EINVAL);
    cr_assert(strncmp(err, "label ecs-secrets.execution-role: ", 34) == 0, "%s", err);
    cr_assert_eq(from_labels("{\"ecs-secrets.secret.A=B\":\"/x\"," ROLE "}", &td, err, sizeof err),
                 -EINVAL);
    cr_assert(strstr(err, "cannot contain '='"), "%s", err);
}

Test(intake_taskdef, from_a_registered_container)
{
    const char *reg = "{\"family\":\"app\",\"executionRoleArn\":\"arn:aws:iam::123456789012:role/"
                      "x\",\"containerDefinitions\":[{\"name\":\"web\",\"image\":\"i\","
                      "\"secrets\":[{\"name\":\"DB\",\"valueFrom\":\"/db\"}],"
                      "\"logConfiguration\":{\"logDriver\":\"splunk\",\"options\":{\"splunk-url\":"
                      "\"http://h\"},\"secretOptions\":[{\"name\":\"splunk-token\",\"valueFrom\":"
                      "\"/tok\"}]}},{\"name\":\"other\",\"image\":\"i\",\"secrets\":[{\"name\":"
                      "\"O\",\"valueFrom\":\"/o\"}]}]}";
    ag_taskdef *registered = NULL, *td = NULL;
    ag_td_error te;
    cr_assert_eq(ag_taskdef_parse(reg, strlen(reg), &CTX, &registered, &te), 0, "%s", te.message);
    ag_intake_req rq = {.td_ref = "app", .container = "web"};
    char err[AG_INTAKE_ERR_MAX] = "";
    cr_assert_eq(ag_intake_taskdef(&rq, registered, &CTX, &td, err, sizeof err), 0, "%s", err);
    cr_assert_eq(td->n_containers, 1);
    cr_assert_str_eq(td->family, AG_ENGINE_DOCKER_FAMILY); /* registered under it */
    cr_assert_str_eq(td->containers[0].secrets[0].name, "DB");
    cr_assert_str_eq(td->containers[0].log->driver, "splunk");
    cr_assert_str_eq(td->containers[0].log->options[0].value, "http://h");
    ag_taskdef_free(td);
    rq.container = "nope";
    cr_assert_eq(ag_intake_taskdef(&rq, registered, &CTX, &td, err, sizeof err), -EINVAL);
    cr_assert_str_eq(err, "the task definition app:0 has no container nope");
    ag_taskdef_free(registered);
}

/* Expansion labels from the labels themselves: the definition's
 * dockerLabels, parsed by td_expand.c (its reasons named by label). */
/* ecs-secrets.file.* from labels: td_files.c's rules (mode, owner, the
 * secret it names); a file naming no secret is refused by the label */
Test(intake_taskdef, files_from_labels)
{
    ag_taskdef *td = NULL;
    char err[AG_INTAKE_ERR_MAX] = "";
    cr_assert_eq(from_labels("{\"ecs-secrets.secret.DB\":\"/db\",\"ecs-secrets.secret.X\":\"/x\","
                             "\"ecs-secrets.file.DB\":\"/run/secrets/db:0440:1000\","
                             "\"ecs-secrets.file-policy.DB\":\"frozen\"," ROLE "}",
                             &td, err, sizeof err),
                 0, "%s", err);
    const ag_container_def *c = &td->containers[0];
    cr_assert_eq(c->n_secrets, 2);
    cr_assert_eq(c->n_files, 1);
    cr_assert_str_eq(c->secrets[c->files[0].secret].name, "DB");
    cr_assert_str_eq(c->files[0].path, "/run/secrets/db");
    cr_assert_eq(c->files[0].mode, 0440);
    cr_assert_eq(c->files[0].uid, 1000);
    cr_assert_eq(c->files[0].policy, AG_FILE_FROZEN);
    cr_assert_not_null(ag_td_file_for(c, "DB"));
    cr_assert_null(ag_td_file_for(c, "X"));
    ag_taskdef_free(td);
    td = NULL;
    cr_assert_eq(from_labels("{\"ecs-secrets.secret.DB\":\"/db\",\"ecs-secrets.file.NOPE\":"
                             "\"/run/n\"," ROLE "}",
                             &td, err, sizeof err),
                 -EINVAL);
    cr_assert(strstr(err, "ecs-secrets.file.NOPE"), "%s", err);
    cr_assert_null(td);
}

Test(intake_taskdef, expansion_from_labels)
{
    ag_taskdef *td = NULL;
    char err[AG_INTAKE_ERR_MAX] = "";
    cr_assert_eq(from_labels("{\"ecs-secrets.expand.DB_\":\"db-credentials\","
                             "\"ecs-secrets.expand.APP_\":\"/app/prod/\","
                             "\"ecs-secrets.secret.X\":\"/x\"," ROLE "}",
                             &td, err, sizeof err),
                 0, "%s", err);
    const ag_container_def *c = &td->containers[0];
    cr_assert_eq(c->n_secrets, 1);
    cr_assert_eq(c->n_expands, 2);
    cr_assert_str_eq(c->expands[0].prefix, "DB_");
    cr_assert(!c->expands[0].ssm_path);
    cr_assert_str_eq(c->expands[1].prefix, "APP_");
    cr_assert_str_eq(c->expands[1].ref->name, "ecs-secrets.expand.APP_");
    cr_assert(c->expands[1].ssm_path);
    ag_taskdef_free(td);
    cr_assert_eq(from_labels("{\"ecs-secrets.expand.1X\":\"db\"," ROLE "}", &td, err, sizeof err),
                 -EINVAL);
    cr_assert(strncmp(err, "label ecs-secrets.expand.1X: the prefix must be", 47) == 0, "%s", err);
    cr_assert_eq(
        from_labels("{\"ecs-secrets.expand.A_\":\"/app//\"," ROLE "}", &td, err, sizeof err),
        -EINVAL);
    cr_assert(strncmp(err, "label ecs-secrets.expand.A_: an SSM path", 40) == 0, "%s", err);
    /* a secret named as the label is reserved (describe-tasks names it so) */
    cr_assert_eq(from_labels("{\"ecs-secrets.expand.A_\":\"db\","
                             "\"ecs-secrets.secret.ecs-secrets.expand.A_\":\"/x\"," ROLE "}",
                             &td, err, sizeof err),
                 -EINVAL);
    cr_assert(strstr(err, "label ecs-secrets.secret.ecs-secrets.expand.A_: ") &&
                  strstr(err, "reserved"),
              "%s", err);
}

/* A registered container's expansion and frozen file labels come along
 * (its other labels are the client's business); a refreshed file is
 * refused, naming it, rather than served frozen without a word. */
Test(intake_taskdef, registered_expansion_kept_files_refused)
{
    const char *reg = "{\"family\":\"app\",\"executionRoleArn\":\"arn:aws:iam::123456789012:role/"
                      "x\",\"containerDefinitions\":[{\"name\":\"web\",\"image\":\"i\","
                      "\"dockerLabels\":{\"ecs-secrets.expand.APP_\":\"/app/prod/\",\"k\":\"v\"}},"
                      "{\"name\":\"f\",\"image\":\"i\",\"secrets\":[{\"name\":\"DB\","
                      "\"valueFrom\":\"/db\"}],\"dockerLabels\":{\"ecs-secrets.file.DB\":"
                      "\"/run/s/db\"}}]}";
    ag_taskdef *registered = NULL, *td = NULL;
    ag_td_error te;
    cr_assert_eq(ag_taskdef_parse(reg, strlen(reg), &CTX, &registered, &te), 0, "%s", te.message);
    ag_intake_req rq = {.td_ref = "app", .container = "web"};
    char err[AG_INTAKE_ERR_MAX] = "";
    cr_assert_eq(ag_intake_taskdef(&rq, registered, &CTX, &td, err, sizeof err), 0, "%s", err);
    cr_assert_eq(td->containers[0].n_expands, 1);
    cr_assert_str_eq(td->containers[0].expands[0].ref->value_from, "/app/prod/");
    cr_assert_eq(td->containers[0].n_docker_labels, 1); /* "k" stays the client's */
    ag_taskdef_free(td);
    td = NULL;
    rq.container = "f";
    cr_assert_eq(ag_intake_taskdef(&rq, registered, &CTX, &td, err, sizeof err), 0, "%s", err);
    cr_assert_eq(td->containers[0].n_files, 1);
    cr_assert_str_eq(td->containers[0].files[0].path, "/run/s/db");
    cr_assert_eq(td->containers[0].files[0].mode, 0400);
    ag_taskdef_free(td);
    td = NULL;
    ag_taskdef_free(registered);
    reg = "{\"family\":\"app\",\"executionRoleArn\":\"arn:aws:iam::123456789012:role/x\","
          "\"containerDefinitions\":[{\"name\":\"f\",\"image\":\"i\",\"secrets\":[{\"name\":"
          "\"DB\",\"valueFrom\":\"/db\"}],\"dockerLabels\":{\"ecs-secrets.file.DB\":"
          "\"/run/s/db\",\"ecs-secrets.file-policy.DB\":\"refresh\"}}]}";
    cr_assert_eq(ag_taskdef_parse(reg, strlen(reg), &CTX, &registered, &te), 0, "%s", te.message);
    cr_assert_eq(ag_intake_taskdef(&rq, registered, &CTX, &td, err, sizeof err), -EINVAL);
    cr_assert_null(td);
    cr_assert(strstr(err, "has a refreshed secret file (DB): only frozen files are served on the "
                          "Docker socket"),
              "%s", err);
    ag_taskdef_free(registered);
}

/* An Env variable named inside a longer "NAME=VALUE" string (key_len):
 * how an expansion's list reaches the rewrite without a copy. */
Test(create_body, env_key_by_length)
{
    static const char list[] = "DB_user=admin";
    dk_body_kv env[] = {{list, list + 8, 5, 7}};
    dk_create_edit ed = {.env = env, .nenv = 1};
    cr_assert_str_eq(rewrite("{\"Env\":[\"DB_user=old\",\"A=1\"]}", &ed),
                     "{\"Env\":[\"DB_user=admin\",\"A=1\"]}");
    cr_assert_str_eq(rewrite("{}", &ed), "{\"Env\":[\"DB_user=admin\"]}");
}

/* ---- who may name which role ---- */

Test(intake_roles, allow_list)
{
    cf_docker_rule *rules = NULL;
    size_t n = 0;
    char why[AG_INTAKE_WHY_MAX];
    cr_assert_eq(cf_docker_roles_parse("uid:1000=arn:aws:iam::123456789012:role/app-*;"
                                       "gid:2000=arn:aws:iam::123456789012:role/ci-?;"
                                       "uid:1001=arn:aws:iam::123456789012:user/alice",
                                       true, &rules, &n, why, sizeof why),
                 0, "%s", why);
    gid_t g1000[] = {1000}, g2000[] = {1000, 2000};
    ag_intake_caller root = {0, g1000, 1}, u1000 = {1000, g1000, 1}, u1002 = {1002, g2000, 2};
    const char *app = "arn:aws:iam::123456789012:role/app-web";
    const char *ci = "arn:aws:iam::123456789012:role/ci-1";
    cr_assert_eq(ag_intake_may_pass(NULL, 0, NULL, &root, app, why, sizeof why), 0);
    cr_assert_eq(ag_intake_may_pass(rules, n, NULL, &u1000, app, why, sizeof why), 0);
    /* '*' matches across '/' (IAM's ARN matching) */
    cr_assert_eq(ag_intake_may_pass(rules, n, NULL, &u1000,
                                    "arn:aws:iam::123456789012:role/app-x/y", why, sizeof why),
                 0);
    cr_assert_eq(ag_intake_may_pass(rules, n, NULL, &u1000, ci, why, sizeof why), -EACCES);
    cr_assert_str_eq(why, "uid 1000 may not name the execution role "
                          "arn:aws:iam::123456789012:role/ci-1: no entry of "
                          "ECS_SECRETS_DOCKER_ROLES for its uid or groups allows it (only root "
                          "may name any role)");
    /* a supplementary group */
    cr_assert_eq(ag_intake_may_pass(rules, n, NULL, &u1002, ci, why, sizeof why), 0);
    cr_assert_eq(ag_intake_may_pass(rules, n, NULL, &u1002, "arn:aws:iam::123456789012:role/ci-12",
                                    why, sizeof why),
                 -EACCES);
    /* nothing configured: root only */
    cr_assert_eq(ag_intake_may_pass(NULL, 0, NULL, &u1000, app, why, sizeof why), -EACCES);
    /* a user entry without an embedded IAM decides nothing */
    ag_intake_caller u1001 = {1001, g1000, 1};
    cr_assert_eq(ag_intake_may_pass(rules, n, NULL, &u1001, app, why, sizeof why), -EACCES);
    cf_docker_rules_free(rules, n);
}

Test(intake_roles, groups_start_with_the_primary)
{
    gid_t g[AG_INTAKE_GROUPS_MAX];
    size_t n = ag_intake_groups(0, 0, g, AG_INTAKE_GROUPS_MAX);
    cr_assert_geq(n, 1);
    cr_assert_eq(g[0], 0);
    for (size_t i = 1; i < n; i++)
        cr_assert_neq(g[i], 0);
    /* an unknown uid: its primary group only */
    cr_assert_eq(ag_intake_groups(3999999, 77, g, AG_INTAKE_GROUPS_MAX), 1);
    cr_assert_eq(g[0], 77);
}

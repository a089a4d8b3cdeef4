#include <criterion/criterion.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/inject.h"
#include "common/alloc.h"
#include "common/json.h"

static const ag_td_ctx tctx = {.region = "us-east-1", .account = "123456789012"};

static ag_taskdef *td_parse(const char *body)
{
    ag_taskdef *td = NULL;
    ag_td_error e;
    cr_assert_eq(ag_taskdef_parse(body, strlen(body), &tctx, &td, &e), 0, "%s", e.message);
    return td;
}

#define ROLE "\"executionRoleArn\":\"arn:aws:iam::123456789012:role/exec\""
#define TASK_ARN "arn:aws:ecs:us-east-1:123456789012:task/default/0123456789abcdef0123456789abcdef"

static const ag_inject_ctx ictx = {
    .task_arn = TASK_ARN, .cluster = "default", .family = "web", .revision = 5};

static const char *env_of(const ag_create_params *p, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < p->n_env; i++)
        if (strncmp(p->env[i], name, n) == 0 && p->env[i][n] == '=')
            return p->env[i] + n + 1;
    return NULL;
}

static const char *kv_of(const ag_kv *kv, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i].name, name) == 0)
            return kv[i].value;
    return NULL;
}

Test(inject, env_precedence_secrets_win)
{
    ag_taskdef *td = td_parse(
        "{\"family\":\"web\"," ROLE ",\"containerDefinitions\":[{\"name\":\"app\",\"image\":"
        "\"busybox\",\"command\":[\"def\"],\"environment\":[{\"name\":\"A\",\"value\":\"def\"},"
        "{\"name\":\"B\",\"value\":\"def\"},{\"name\":\"C\",\"value\":\"def\"}],"
        "\"secrets\":[{\"name\":\"B\",\"valueFrom\":\"/b\"},{\"name\":\"S\",\"valueFrom\":\"/s\"}]"
        "}]}");
    ag_container_override ov = {.name = "app"};
    char *cmd[] = {"over", "ride"};
    ag_kv oenv[] = {{"A", "over"}, {"B", "over"}, {"N", "new"}};
    ov.command = cmd;
    ov.n_command = 2;
    ov.environment = oenv;
    ov.n_environment = 3;
    ag_secret_value vals[] = {
        {.target = AG_SECRET_ENV, .name = "S", .value = "sv", .len = 2},
        {.target = AG_SECRET_ENV, .name = "B", .value = "secretB", .len = 7},
    };
    ag_create_params *p = NULL;
    char err[AG_INJECT_ERR_MAX];
    cr_assert_eq(ag_inject_build(&td->containers[0], &ov, vals, 2, &ictx, &p, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(p->n_env, 5);
    /* order: definition order, replaced in place; new names appended */
    cr_assert_str_eq(p->env[0], "A=over");
    cr_assert_str_eq(p->env[1], "B=secretB", "a secret beats both the definition and override");
    cr_assert_str_eq(p->env[2], "C=def");
    cr_assert_str_eq(p->env[3], "N=new");
    cr_assert_str_eq(p->env[4], "S=sv");
    cr_assert_eq(p->n_cmd, 2);
    cr_assert_str_eq(p->cmd[0], "over");
    cr_assert_null(p->log_type);
    ag_create_params_free(p);

    /* without override: the definition's command */
    cr_assert_eq(ag_inject_build(&td->containers[0], NULL, vals, 2, &ictx, &p, err, sizeof err), 0);
    cr_assert_str_eq(p->cmd[0], "def");
    cr_assert_str_eq(env_of(p, "A"), "def");
    ag_create_params_free(p);
    ag_taskdef_free(td);
}

Test(inject, log_config_labels_and_name)
{
    ag_taskdef *td = td_parse(
        "{\"family\":\"web\"," ROLE ",\"containerDefinitions\":[{\"name\":\"app_1\",\"image\":"
        "\"busybox\",\"dockerLabels\":{\"team\":\"x\",\"com.amazonaws.ecs.cluster\":\"spoof\"},"
        "\"stopTimeout\":20,\"memory\":64,\"cpu\":1,\"user\":\"nobody\",\"workingDirectory\":"
        "\"/w\",\"entryPoint\":[\"/bin/sh\"],"
        "\"logConfiguration\":{\"logDriver\":\"fluentd\",\"options\":{\"tag\":\"t\","
        "\"fluentd-address\":\"plain:24224\"},\"secretOptions\":[{\"name\":\"fluentd-address\","
        "\"valueFrom\":\"/fa\"},{\"name\":\"extra\",\"valueFrom\":\"/x\"}]}}]}");
    ag_secret_value vals[] = {
        {.target = AG_SECRET_LOG, .name = "fluentd-address", .value = "10.0.0.1:24224", .len = 14},
        {.target = AG_SECRET_LOG, .name = "extra", .value = "e", .len = 1},
    };
    ag_create_params *p = NULL;
    char err[AG_INJECT_ERR_MAX];
    ag_inject_ctx nctx = ictx;
    nctx.network_mode = "bridge";
    cr_assert_eq(ag_inject_build(&td->containers[0], NULL, vals, 2, &nctx, &p, err, sizeof err), 0,
                 "%s", err);
    cr_assert_str_eq(p->network_mode, "bridge");
    cr_assert_str_eq(p->log_type, "fluentd");
    cr_assert_eq(p->n_log_config, 3);
    cr_assert_str_eq(kv_of(p->log_config, p->n_log_config, "tag"), "t");
    cr_assert_str_eq(kv_of(p->log_config, p->n_log_config, "fluentd-address"), "10.0.0.1:24224");
    cr_assert_str_eq(kv_of(p->log_config, p->n_log_config, "extra"), "e");
    cr_assert_str_eq(kv_of(p->labels, p->n_labels, "team"), "x");
    cr_assert_str_eq(kv_of(p->labels, p->n_labels, "com.amazonaws.ecs.task-arn"), TASK_ARN);
    cr_assert_str_eq(kv_of(p->labels, p->n_labels, "com.amazonaws.ecs.container-name"), "app_1");
    cr_assert_str_eq(kv_of(p->labels, p->n_labels, "com.amazonaws.ecs.task-definition-family"),
                     "web");
    cr_assert_str_eq(kv_of(p->labels, p->n_labels, "com.amazonaws.ecs.task-definition-version"),
                     "5");
    cr_assert_str_eq(kv_of(p->labels, p->n_labels, "com.amazonaws.ecs.cluster"), "default",
                     "our labels win over dockerLabels");
    cr_assert_eq(p->n_labels, 6);
    cr_assert(p->has_memory && p->memory_bytes == 64 * 1024 * 1024);
    cr_assert(p->has_cpu && p->cpu_shares == 2, "Docker's minimum share");
    cr_assert(p->has_stop_timeout && p->stop_timeout == 20);
    cr_assert_str_eq(p->user, "nobody");
    cr_assert_str_eq(p->working_dir, "/w");

    regex_t re;
    cr_assert_eq(regcomp(&re, "^ecs-web-5-app_1-[0-9a-f]{16}$", REG_EXTENDED | REG_NOSUB), 0);
    cr_assert_eq(regexec(&re, p->name, 0, NULL, 0), 0, "name %s", p->name);
    regfree(&re);

    /* the Docker body */
    es_buf body;
    es_buf_init(&body, AG_CREATE_BODY_MAX);
    cr_assert_eq(ag_create_params_write_json(p, &body), 0);
    es_json *j = NULL;
    cr_assert_eq(es_json_parse(body.data, body.len, NULL, &j, NULL, 0), 0);
    cr_assert_str_eq(es_json_get_str(j, "Image"), "busybox");
    const es_json *hc = es_json_get(j, "HostConfig");
    const es_json *lc = es_json_get(hc, "LogConfig");
    cr_assert_str_eq(es_json_get_str(lc, "Type"), "fluentd");
    cr_assert_str_eq(es_json_get_str(es_json_get(lc, "Config"), "fluentd-address"),
                     "10.0.0.1:24224");
    int64_t v;
    cr_assert(es_json_get_int64(hc, "Memory", &v) && v == 64 * 1024 * 1024);
    cr_assert_str_eq(es_json_get_str(hc, "NetworkMode"), "bridge");
    cr_assert(es_json_get_int64(j, "StopTimeout", &v) && v == 20);
    cr_assert_str_eq(es_json_get_str(es_json_get(j, "Labels"), "com.amazonaws.ecs.cluster"),
                     "default");
    cr_assert_eq(es_json_get(j, "Env")->type, ES_JSON_ARRAY);
    cr_assert_str_eq(es_json_as_str(es_json_at(es_json_get(j, "Entrypoint"), 0)), "/bin/sh");
    cr_assert_null(es_json_get(j, "Cmd"), "no command: the image's");
    es_json_free_secret(j);
    es_buf_free_secret(&body);
    ag_create_params_free(p);
    ag_taskdef_free(td);
}

Test(inject, missing_binary_nul_and_undeclared_values_are_errors)
{
    ag_taskdef *td = td_parse("{\"family\":\"web\"," ROLE ",\"containerDefinitions\":[{\"name\":"
                              "\"app\",\"image\":\"i\",\"secrets\":[{\"name\":\"S\","
                              "\"valueFrom\":\"/s\"}]}]}");
    const ag_container_def *cd = &td->containers[0];
    ag_create_params *p = (ag_create_params *)0x1;
    char err[AG_INJECT_ERR_MAX];
    static const char secret[] = "hunter2-value";
    cr_assert_eq(ag_inject_build(cd, NULL, NULL, 0, &ictx, &p, err, sizeof err), -ENOENT);
    cr_assert_not_null(strstr(err, "secrets S: no value"), "%s", err);

    ag_secret_value bin = {.target = AG_SECRET_ENV,
                           .name = "S",
                           .value = secret,
                           .len = sizeof secret - 1,
                           .binary = true};
    cr_assert_eq(ag_inject_build(cd, NULL, &bin, 1, &ictx, &p, err, sizeof err), -EINVAL);
    cr_assert_not_null(strstr(err, "binary"), "%s", err);
    cr_assert_null(strstr(err, secret));

    ag_secret_value nul = {.target = AG_SECRET_ENV, .name = "S", .value = "a\0b", .len = 3};
    cr_assert_eq(ag_inject_build(cd, NULL, &nul, 1, &ictx, &p, err, sizeof err), -EINVAL);
    cr_assert_not_null(strstr(err, "NUL"), "%s", err);

    ag_secret_value two[] = {{.target = AG_SECRET_ENV, .name = "S", .value = "a", .len = 1},
                             {.target = AG_SECRET_ENV, .name = "S", .value = "b", .len = 1}};
    cr_assert_eq(ag_inject_build(cd, NULL, two, 2, &ictx, &p, err, sizeof err), -EINVAL);

    ag_secret_value extra[] = {{.target = AG_SECRET_ENV, .name = "S", .value = "a", .len = 1},
                               {.target = AG_SECRET_LOG, .name = "opt", .value = "b", .len = 1}};
    cr_assert_eq(ag_inject_build(cd, NULL, extra, 2, &ictx, &p, err, sizeof err), -EINVAL);
    cr_assert_not_null(strstr(err, "does not declare"), "%s", err);
    cr_assert_eq(p, (ag_create_params *)0x1, "out untouched");

    ag_container_override wrong = {.name = "other"};
    ag_secret_value ok = {.target = AG_SECRET_ENV, .name = "S", .value = "", .len = 0};
    cr_assert_eq(ag_inject_build(cd, &wrong, &ok, 1, &ictx, &p, err, sizeof err), -EINVAL);
    /* an empty value is a value */
    cr_assert_eq(ag_inject_build(cd, NULL, &ok, 1, &ictx, &p, err, sizeof err), 0);
    cr_assert_str_eq(p->env[0], "S=");
    ag_create_params_free(p);
    ag_create_params_free(NULL);
    ag_taskdef_free(td);
}

Test(inject, allocation_failures_are_clean)
{
    ag_taskdef *td = td_parse(
        "{\"family\":\"web\"," ROLE ",\"containerDefinitions\":[{\"name\":\"app\",\"image\":"
        "\"i\",\"command\":[\"c\"],\"entryPoint\":[\"e\"],\"user\":\"u\","
        "\"environment\":[{\"name\":\"A\",\"value\":\"1\"}],\"dockerLabels\":{\"l\":\"v\"},"
        "\"secrets\":[{\"name\":\"S\",\"valueFrom\":\"/s\"}],\"logConfiguration\":{\"logDriver\":"
        "\"gelf\",\"options\":{\"o\":\"1\"},\"secretOptions\":[{\"name\":\"x\",\"valueFrom\":"
        "\"/x\"}]}}]}");
    ag_secret_value vals[] = {{.target = AG_SECRET_ENV, .name = "S", .value = "v", .len = 1},
                              {.target = AG_SECRET_LOG, .name = "x", .value = "w", .len = 1}};
    int failures = 0;
    for (long n = 0; n < 200; n++) {
        ag_create_params *p = NULL;
        char err[AG_INJECT_ERR_MAX];
        es_alloc_fail_after(n);
        int r = ag_inject_build(&td->containers[0], NULL, vals, 2, &ictx, &p, err, sizeof err);
        es_alloc_fail_after(-1);
        if (r == 0) {
            ag_create_params_free(p);
            break;
        }
        cr_assert_eq(r, -ENOMEM, "n=%ld: %s", n, err);
        failures++;
    }
    cr_assert_gt(failures, 10);
    ag_taskdef_free(td);
}

static int jk(const char *secret, const char *key, char *out, size_t outlen, char *err)
{
    es_buf b;
    es_buf_init(&b, 4096);
    int r = ag_secret_json_key(secret, strlen(secret), key, &b, err, 256);
    snprintf(out, outlen, "%s", es_buf_cstr(&b));
    es_buf_free_secret(&b);
    return r;
}

Test(inject, json_key_extraction)
{
    char out[512], err[256];
    const char *s = "{\"user\":\"admin\",\"port\":5432,\"ratio\":1.50,\"tls\":true,\"none\":null,"
                    "\"nested\":{\"a\":[1,\"x\"]},\"esc\":\"a\\\"b\\u00e9\",\"user\":\"last\"}";
    cr_assert_eq(jk(s, "port", out, sizeof out, err), 0);
    cr_assert_str_eq(out, "5432");
    cr_assert_eq(jk(s, "ratio", out, sizeof out, err), 0);
    cr_assert_str_eq(out, "1.50", "numbers keep their source text");
    cr_assert_eq(jk(s, "tls", out, sizeof out, err), 0);
    cr_assert_str_eq(out, "true");
    cr_assert_eq(jk(s, "none", out, sizeof out, err), 0);
    cr_assert_str_eq(out, "null");
    cr_assert_eq(jk(s, "nested", out, sizeof out, err), 0);
    cr_assert_str_eq(out, "{\"a\":[1,\"x\"]}");
    cr_assert_eq(jk(s, "esc", out, sizeof out, err), 0);
    cr_assert_str_eq(out, "a\"b\xc3\xa9", "strings as is, unescaped");
    cr_assert_eq(jk(s, "user", out, sizeof out, err), 0);
    cr_assert_str_eq(out, "last", "the last duplicate wins, as in botocore");

    cr_assert_eq(jk(s, "missing", out, sizeof out, err), -EINVAL);
    cr_assert_not_null(strstr(err, "'missing' not found"), "%s", err);
    cr_assert_null(strstr(err, "admin"));
    cr_assert_str_eq(out, "", "nothing appended on failure");

    cr_assert_eq(jk("plain-text-secret", "k", out, sizeof out, err), -EINVAL);
    cr_assert_not_null(strstr(err, "not a JSON object"), "%s", err);
    cr_assert_null(strstr(err, "plain-text-secret"));
    cr_assert_eq(jk("[\"array\"]", "k", out, sizeof out, err), -EINVAL);
    cr_assert_eq(jk("{\"k\":1", "k", out, sizeof out, err), -EINVAL);
    cr_assert_eq(jk("{\"k\":1}", "", out, sizeof out, err), -EINVAL);

    /* appends after what the buffer held; too big for the buffer is an error */
    es_buf b;
    es_buf_init(&b, 8);
    es_buf_append_str(&b, "x");
    cr_assert_eq(ag_secret_json_key("{\"k\":\"abc\"}", 11, "k", &b, err, sizeof err), 0);
    cr_assert_str_eq(b.data, "xabc");
    cr_assert_eq(ag_secret_json_key("{\"k\":[1,2,3,4,5]}", 17, "k", &b, err, sizeof err),
                 -EMSGSIZE);
    cr_assert_str_eq(b.data, "xabc", "a failed extraction leaves the buffer as it was");
    es_buf_free_secret(&b);
}

Test(inject, fingerprint_is_keyed_and_stable)
{
    unsigned char k1[32] = {1}, k2[32] = {2};
    char a[AG_FINGERPRINT_LEN + 1], b[AG_FINGERPRINT_LEN + 1], c[AG_FINGERPRINT_LEN + 1];
    cr_assert_eq(ag_secret_fingerprint(k1, sizeof k1, "value", 5, a, sizeof a), 0);
    cr_assert_eq(ag_secret_fingerprint(k1, sizeof k1, "value", 5, b, sizeof b), 0);
    cr_assert_str_eq(a, b);
    cr_assert_eq(strlen(a), AG_FINGERPRINT_LEN);
    cr_assert_eq(strncmp(a, "hmac-sha256:", 12), 0);
    cr_assert_eq(ag_secret_fingerprint(k2, sizeof k2, "value", 5, c, sizeof c), 0);
    cr_assert_str_neq(a, c, "another key, another fingerprint");
    cr_assert_eq(ag_secret_fingerprint(k1, sizeof k1, "valuf", 5, c, sizeof c), 0);
    cr_assert_str_neq(a, c);
    cr_assert_eq(ag_secret_fingerprint(k1, sizeof k1, "value", 5, c, 10), -EINVAL);
    /* RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?") */
    cr_assert_eq(ag_secret_fingerprint("Jefe", 4, "what do ya want for nothing?", 28, c, sizeof c),
                 0);
    cr_assert_str_eq(c, "hmac-sha256:5bdcc146bf60754e6a042426089575c7");
}

Test(inject, container_name_rules)
{
    char out[64];
    cr_assert_eq(ag_container_name("fam", 12, "a_b-c", out, sizeof out), 0);
    cr_assert_eq(strncmp(out, "ecs-fam-12-a_b-c-", 17), 0);
    cr_assert_eq(strlen(out), 17 + 16);
    char other[64];
    ag_container_name("fam", 12, "a_b-c", other, sizeof other);
    cr_assert_str_neq(out, other, "random suffix");
    cr_assert_eq(ag_container_name("f", 1, "x y/z", out, sizeof out), 0);
    cr_assert_eq(strncmp(out, "ecs-f-1-x-y-z-", 14), 0, "%s", out);
    cr_assert_eq(ag_container_name("f", 1, "n", out, 10), -EMSGSIZE);
}

Test(inject, image_registry)
{
    static const char *const cases[][2] = {
        {"busybox", "https://index.docker.io/v1/"},
        {"library/busybox:1", "https://index.docker.io/v1/"},
        {"user/app@sha256:00", "https://index.docker.io/v1/"},
        {"127.0.0.1:5000/busybox:latest", "127.0.0.1:5000"},
        {"localhost/app", "localhost"},
        {"registry.example.com/team/app:2", "registry.example.com"},
        {"123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
         "123456789012.dkr.ecr.us-east-1.amazonaws.com"},
    };
    char out[300];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cr_assert_eq(ag_image_registry(cases[i][0], out, sizeof out), 0);
        cr_assert_str_eq(out, cases[i][1], "%s", cases[i][0]);
    }
    char small[8];
    cr_assert_eq(ag_image_registry("registry.example.com/a", small, sizeof small), -EMSGSIZE);
}

/* Decodes base64url with padding (what Docker's daemon reads). */
static size_t b64url_decode(const char *in, char *out, size_t cap)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    for (const char *p = in; *p && *p != '='; p++) {
        const char *q = strchr(alphabet, *p);
        cr_assert_not_null(q, "not base64url: %c", *p);
        acc = (acc << 6) | (unsigned)(q - alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            cr_assert_lt(n, cap);
            out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    cr_assert_eq(strlen(in) % 4, 0, "padded");
    out[n] = '\0';
    return n;
}

Test(inject, registry_auth_header)
{
    es_buf out;
    es_buf_init(&out, AG_REGISTRY_AUTH_MAX);
    char err[AG_INJECT_ERR_MAX];
    /* characters that base64 encodes to '+' and '/' in the standard alphabet */
    const char *secret = "{\"username\":\"u\\u00e9>>?\",\"password\":\"p\\\"w?>~~\",\"extra\":1}";
    cr_assert_eq(ag_registry_auth_build("127.0.0.1:5000/busybox:latest", secret, strlen(secret),
                                        &out, err, sizeof err),
                 0, "%s", err);
    cr_assert_null(strpbrk(out.data, "+/\r\n"), "%s", out.data);
    char doc[1024];
    size_t n = b64url_decode(out.data, doc, sizeof doc - 1);
    es_json *j = NULL;
    cr_assert_eq(es_json_parse(doc, n, NULL, &j, NULL, 0), 0, "%s", doc);
    cr_assert_str_eq(es_json_get_str(j, "username"), "u\xc3\xa9>>?");
    cr_assert_str_eq(es_json_get_str(j, "password"), "p\"w?>~~");
    cr_assert_str_eq(es_json_get_str(j, "serveraddress"), "127.0.0.1:5000");
    cr_assert_null(es_json_get(j, "extra"), "only the three members");
    es_json_free(j);
    es_buf_reset_secret(&out);

    static const char *const bad[] = {
        "s3cr3t-not-json",
        "[\"s3cr3t\"]",
        "{\"username\":\"u\"}",
        "{\"password\":\"s3cr3t\"}",
        "{\"username\":1,\"password\":\"s3cr3t\"}",
        "{\"username\":\"u\",\"password\":{\"v\":\"s3cr3t\"}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        cr_assert_eq(
            ag_registry_auth_build("busybox", bad[i], strlen(bad[i]), &out, err, sizeof err),
            -EINVAL, "%s", bad[i]);
        cr_assert(strstr(err, "registry credentials secret"), "%s", err);
        cr_assert_null(strstr(err, "s3cr3t"), "the error quotes the secret: %s", err);
        cr_assert_eq(out.len, 0, "nothing left in out");
    }
    es_buf_free_secret(&out);
}

/* A credential whose X-Registry-Auth would not fit the Docker client's
 * header buffer is refused when built (a clear "too large" at resolution),
 * not later as an opaque failure to start the pull. */
Test(inject, registry_auth_longer_than_docker_takes_is_refused)
{
    /* base64 makes 4 of 3: a 48 KiB password encodes past 64 KiB */
    size_t pwlen = 48 * 1024;
    size_t cap = pwlen + 64;
    char *secret = malloc(cap);
    cr_assert_not_null(secret);
    int n = snprintf(secret, cap, "{\"username\":\"u\",\"password\":\"");
    memset(secret + n, 'k', pwlen);
    snprintf(secret + (size_t)n + pwlen, cap - (size_t)n - pwlen, "\"}");
    es_buf out;
    es_buf_init(&out, AG_REGISTRY_AUTH_MAX);
    char err[AG_INJECT_ERR_MAX] = "";
    cr_assert_eq(
        ag_registry_auth_build("r.example/a", secret, strlen(secret), &out, err, sizeof err),
        -EMSGSIZE, "%s", err);
    cr_assert(strstr(err, "too large"), "%s", err);
    cr_assert_null(strstr(err, "kkkk"), "the error quotes the secret");
    cr_assert_eq(out.len, 0);
    es_buf_free_secret(&out);

    /* what is built is what dk_image_pull takes */
    cr_assert_leq(AG_REGISTRY_AUTH_MAX, DK_REGISTRY_AUTH_MAX);
    free(secret);
}

Test(inject, registry_auth_allocation_failures_are_clean)
{
    const char *secret = "{\"username\":\"u\",\"password\":\"p\"}";
    int failures = 0;
    for (long n = 0; n < 200; n++) {
        es_buf out;
        es_buf_init(&out, AG_REGISTRY_AUTH_MAX);
        char err[AG_INJECT_ERR_MAX];
        es_alloc_fail_after(n);
        int r =
            ag_registry_auth_build("r.example/a", secret, strlen(secret), &out, err, sizeof err);
        es_alloc_fail_after(-1);
        if (r == 0) {
            cr_assert_gt(out.len, 0);
            es_buf_free_secret(&out);
            break;
        }
        cr_assert_eq(r, -ENOMEM, "n=%ld: %d %s", n, r, err);
        cr_assert_eq(out.len, 0);
        es_buf_free_secret(&out);
        failures++;
    }
    cr_assert_gt(failures, 2);
}

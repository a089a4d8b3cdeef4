#include <criterion/criterion.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/secrets/inject.h"
#include "agent/tasks/td_awslogs.h"
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

/* Issue 20: the environment files' variables (merged at resolution, the
 * first file winning) lie under everything: environment, a RunTask
 * override's and secrets replace them; the agent's own come last. */
Test(inject, environment_files_lie_under_environment_and_secrets)
{
    ag_taskdef *td = td_parse(
        "{\"family\":\"web\"," ROLE ",\"containerDefinitions\":[{\"name\":\"app\",\"image\":"
        "\"busybox\",\"environment\":[{\"name\":\"BOTH\",\"value\":\"env\"}],"
        "\"secrets\":[{\"name\":\"SEC\",\"valueFrom\":\"/s\"}],"
        "\"environmentFiles\":[{\"value\":\"arn:aws:s3:::envs/app.env\",\"type\":\"s3\"}]}]}");
    static const char files[] = "FILE=f\0BOTH=file\0SEC=file\0OVER=file\0TOKEN=file\0EMPTYISH==\0";
    ag_secret_value vals[] = {
        {.target = AG_SECRET_ENV, .name = "SEC", .value = "secret", .len = 6}};
    ag_kv oenv[] = {{"OVER", "override"}};
    ag_container_override ov = {.name = "app", .environment = oenv, .n_environment = 1};
    const char *agent_env[] = {"TOKEN=agent"};
    ag_inject_ctx c = ictx;
    c.envfile_env = files;
    c.envfile_len = sizeof files - 1;
    c.agent_env = agent_env;
    c.n_agent_env = 1;
    ag_create_params *p = NULL;
    char err[AG_INJECT_ERR_MAX];
    cr_assert_eq(ag_inject_build(&td->containers[0], &ov, vals, 1, &c, &p, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(p->n_env, 6);
    cr_assert_str_eq(env_of(p, "FILE"), "f");
    cr_assert_str_eq(env_of(p, "BOTH"), "env", "environment wins over the files");
    cr_assert_str_eq(env_of(p, "SEC"), "secret", "a secret wins over the files");
    cr_assert_str_eq(env_of(p, "OVER"), "override", "a RunTask override wins over the files");
    cr_assert_str_eq(env_of(p, "TOKEN"), "agent", "the agent's own win over the files");
    cr_assert_str_eq(env_of(p, "EMPTYISH"), "=", "the value is the rest of the line");
    ag_create_params_free(p);

    /* no files: nothing of them */
    c.envfile_env = NULL;
    c.envfile_len = 0;
    cr_assert_eq(ag_inject_build(&td->containers[0], NULL, vals, 1, &c, &p, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(p->n_env, 3);
    cr_assert_null(env_of(p, "FILE"));
    ag_create_params_free(p);
    ag_taskdef_free(td);
}

Test(inject, the_agents_own_variables_come_last_and_win)
{
    ag_taskdef *td = td_parse(
        "{\"family\":\"web\"," ROLE ",\"containerDefinitions\":[{\"name\":\"app\",\"image\":"
        "\"busybox\",\"environment\":[{\"name\":\"AWS_CONTAINER_AUTHORIZATION_TOKEN\","
        "\"value\":\"mine\"},{\"name\":\"A\",\"value\":\"a\"}]}]}");
    const char *agent_env[] = {"AWS_CONTAINER_AUTHORIZATION_TOKEN=t0ken",
                               "ECS_CONTAINER_METADATA_URI_V4=http://127.0.0.1:9/v4/x"};
    ag_inject_ctx c = ictx;
    c.agent_env = agent_env;
    c.n_agent_env = 2;
    ag_create_params *p = NULL;
    char err[AG_INJECT_ERR_MAX];
    cr_assert_eq(ag_inject_build(&td->containers[0], NULL, NULL, 0, &c, &p, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(p->n_env, 3);
    cr_assert_str_eq(p->env[0], "AWS_CONTAINER_AUTHORIZATION_TOKEN=t0ken",
                     "the agent's token replaces a definition's variable of the same name");
    cr_assert_str_eq(p->env[1], "A=a");
    cr_assert_str_eq(p->env[2], "ECS_CONTAINER_METADATA_URI_V4=http://127.0.0.1:9/v4/x");
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
    nctx.pid_mode = "host";
    nctx.ipc_mode = "none";
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
    cr_assert_eq(dk_create_body(&p->spec, &body), 0);
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
    cr_assert_str_eq(es_json_get_str(hc, "PidMode"), "host");
    cr_assert_str_eq(es_json_get_str(hc, "IpcMode"), "none");
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

/* ---- issue 20: the runtime members in the ContainerCreate body ---- */

/* The body dk_container_create would send for td's first container. */
static es_json *body_of(const ag_taskdef *td, const char *network_mode)
{
    ag_create_params *p = NULL;
    char err[AG_INJECT_ERR_MAX];
    ag_inject_ctx nctx = ictx;
    nctx.network_mode = network_mode;
    cr_assert_eq(ag_inject_build(&td->containers[0], NULL, NULL, 0, &nctx, &p, err, sizeof err), 0,
                 "%s", err);
    es_buf body;
    es_buf_init(&body, AG_CREATE_BODY_MAX);
    cr_assert_eq(dk_create_body(&p->spec, &body), 0);
    es_json *j = NULL;
    cr_assert_eq(es_json_parse(body.data, body.len, NULL, &j, NULL, 0), 0);
    es_buf_free_secret(&body);
    ag_create_params_free(p);
    return j;
}

static const char *str_at(const es_json *j, const char *key, size_t i)
{
    return es_json_as_str(es_json_at(es_json_get(j, key), i));
}

Test(inject, runtime_members_reach_the_body)
{
    ag_taskdef *td = td_parse(
        "{\"family\":\"web\",\"containerDefinitions\":[{\"name\":\"app\",\"image\":\"busybox\","
        "\"memory\":256,\"memoryReservation\":128,\"hostname\":\"app-1\","
        "\"extraHosts\":[{\"hostname\":\"db\",\"ipAddress\":\"10.0.0.3\"},"
        "{\"hostname\":\"v6\",\"ipAddress\":\"fd00::1\"}],\"dnsServers\":[\"10.0.0.2\"],"
        "\"dnsSearchDomains\":[\"example.internal\"],\"privileged\":true,"
        "\"readonlyRootFilesystem\":true,\"interactive\":true,\"pseudoTerminal\":true,"
        "\"disableNetworking\":true,\"dockerSecurityOptions\":[\"no-new-privileges\"],"
        "\"ulimits\":[{\"name\":\"nofile\",\"softLimit\":1024,\"hardLimit\":2048}],"
        "\"systemControls\":[{\"namespace\":\"net.core.somaxconn\",\"value\":\"1024\"}]}]}");
    es_json *j = body_of(td, "bridge");
    bool b = false;
    int64_t v = 0;
    cr_assert_str_eq(es_json_get_str(j, "Hostname"), "app-1");
    cr_assert(es_json_get_bool(j, "OpenStdin", &b) && b);
    cr_assert(es_json_get_bool(j, "Tty", &b) && b);
    cr_assert(es_json_get_bool(j, "NetworkDisabled", &b) && b);
    const es_json *hc = es_json_get(j, "HostConfig");
    cr_assert_str_eq(str_at(hc, "ExtraHosts", 0), "db:10.0.0.3");
    cr_assert_str_eq(str_at(hc, "ExtraHosts", 1), "v6:fd00::1");
    cr_assert_str_eq(str_at(hc, "Dns", 0), "10.0.0.2");
    cr_assert_str_eq(str_at(hc, "DnsSearch", 0), "example.internal");
    cr_assert(es_json_get_bool(hc, "Privileged", &b) && b);
    cr_assert(es_json_get_bool(hc, "ReadonlyRootfs", &b) && b);
    cr_assert_str_eq(str_at(hc, "SecurityOpt", 0), "no-new-privileges");
    const es_json *u = es_json_at(es_json_get(hc, "Ulimits"), 0);
    cr_assert_str_eq(es_json_get_str(u, "Name"), "nofile");
    cr_assert(es_json_get_int64(u, "Soft", &v) && v == 1024);
    cr_assert(es_json_get_int64(u, "Hard", &v) && v == 2048);
    cr_assert_str_eq(es_json_get_str(es_json_get(hc, "Sysctls"), "net.core.somaxconn"), "1024");
    cr_assert(es_json_get_int64(hc, "MemoryReservation", &v) && v == 128 * 1024 * 1024);
    cr_assert(es_json_get_int64(hc, "Memory", &v) && v == 256 * 1024 * 1024);
    es_json_free(j);
    ag_taskdef_free(td);

    /* absent and false members are left to Docker's defaults: not written */
    td = td_parse("{\"family\":\"web\",\"containerDefinitions\":[{\"name\":\"app\",\"image\":"
                  "\"busybox\",\"privileged\":false,\"hostname\":\"\",\"dnsServers\":[]}]}");
    j = body_of(td, "bridge");
    hc = es_json_get(j, "HostConfig");
    cr_assert_null(es_json_get(j, "Hostname"));
    cr_assert_null(es_json_get(j, "OpenStdin"));
    cr_assert_null(es_json_get(hc, "Privileged"));
    cr_assert_null(es_json_get(hc, "Dns"));
    cr_assert_null(es_json_get(hc, "MemoryReservation"));
    es_json_free(j);
    ag_taskdef_free(td);
}

Test(inject, runtime_members_allocation_failures_are_clean)
{
    ag_taskdef *td = td_parse(
        "{\"family\":\"web\",\"containerDefinitions\":[{\"name\":\"app\",\"image\":\"busybox\","
        "\"extraHosts\":[{\"hostname\":\"db\",\"ipAddress\":\"10.0.0.3\"}],"
        "\"ulimits\":[{\"name\":\"nofile\",\"softLimit\":1,\"hardLimit\":2}],"
        "\"systemControls\":[{\"namespace\":\"kernel.sem\",\"value\":\"1\"}]}]}");
    bool succeeded = false;
    for (long n = 0; n < 200 && !succeeded; n++) {
        ag_create_params *p = NULL;
        char err[AG_INJECT_ERR_MAX];
        es_alloc_fail_after(n);
        int r = ag_inject_build(&td->containers[0], NULL, NULL, 0, &ictx, &p, err, sizeof err);
        es_alloc_fail_after(-1);
        if (r == 0) {
            succeeded = true;
            cr_assert_eq(p->n_extra_hosts, 1);
            ag_create_params_free(p);
        } else {
            cr_assert_eq(r, -ENOMEM);
        }
    }
    cr_assert(succeeded);
    ag_taskdef_free(td);
}

Test(inject, linux_parameters_reach_the_body)
{
    ag_taskdef *td = td_parse(
        "{\"family\":\"web\",\"containerDefinitions\":[{\"name\":\"app\",\"image\":\"busybox\","
        "\"memory\":64,\"linuxParameters\":{\"capabilities\":{\"add\":[\"NET_ADMIN\"],"
        "\"drop\":[\"CHOWN\"]},\"devices\":[{\"hostPath\":\"/dev/null\",\"containerPath\":"
        "\"/dev/mynull\",\"permissions\":[\"read\",\"write\",\"read\"]},{\"hostPath\":"
        "\"/dev/zero\"}],\"initProcessEnabled\":true,\"sharedMemorySize\":16,"
        "\"tmpfs\":[{\"containerPath\":\"/scratch\",\"size\":8,\"mountOptions\":[\"noexec\","
        "\"mode=1777\"]}],\"maxSwap\":32}}]}");
    es_json *j = body_of(td, "none");
    const es_json *hc = es_json_get(j, "HostConfig");
    bool b = false;
    int64_t v = 0;
    cr_assert_str_eq(str_at(hc, "CapAdd", 0), "NET_ADMIN");
    cr_assert_str_eq(str_at(hc, "CapDrop", 0), "CHOWN");
    const es_json *d0 = es_json_at(es_json_get(hc, "Devices"), 0);
    const es_json *d1 = es_json_at(es_json_get(hc, "Devices"), 1);
    cr_assert_str_eq(es_json_get_str(d0, "PathOnHost"), "/dev/null");
    cr_assert_str_eq(es_json_get_str(d0, "PathInContainer"), "/dev/mynull");
    cr_assert_str_eq(es_json_get_str(d0, "CgroupPermissions"), "rw");
    cr_assert_str_eq(es_json_get_str(d1, "PathInContainer"), "/dev/zero", "as on the host");
    cr_assert_str_eq(es_json_get_str(d1, "CgroupPermissions"), "rwm", "docker run's default");
    cr_assert(es_json_get_bool(hc, "Init", &b) && b);
    cr_assert(es_json_get_int64(hc, "ShmSize", &v) && v == 16 << 20);
    cr_assert_str_eq(es_json_get_str(es_json_get(hc, "Tmpfs"), "/scratch"),
                     "size=8m,noexec,mode=1777");
    cr_assert(es_json_get_int64(hc, "MemorySwap", &v) && v == (64 + 32) << 20, "memory + maxSwap");
    cr_assert(es_json_get_int64(hc, "MemorySwappiness", &v) && v == 60, "ECS's default");
    es_json_free(j);
    ag_taskdef_free(td);

    /* swappiness without maxSwap has no effect, as in ECS */
    td = td_parse("{\"family\":\"web\",\"containerDefinitions\":[{\"name\":\"app\",\"image\":"
                  "\"busybox\",\"memory\":64,\"linuxParameters\":{\"swappiness\":5}}]}");
    j = body_of(td, "none");
    hc = es_json_get(j, "HostConfig");
    cr_assert_null(es_json_get(hc, "MemorySwappiness"));
    cr_assert_null(es_json_get(hc, "MemorySwap"));
    es_json_free(j);
    ag_taskdef_free(td);
}

/* An expansion label's value is its "NAME=VALUE\0" list: each variable goes
 * into Env after the secrets (over an override's name, as a secret); a list
 * missing, given twice or for an undeclared label is an error. */
Test(inject, expansion_lists_into_env)
{
    ag_taskdef *td = td_parse(
        "{\"family\":\"web\"," ROLE ",\"containerDefinitions\":[{\"name\":\"app\",\"image\":"
        "\"busybox\",\"environment\":[{\"name\":\"A\",\"value\":\"def\"}],"
        "\"secrets\":[{\"name\":\"S\",\"valueFrom\":\"/s\"}],"
        "\"dockerLabels\":{\"ecs-secrets.expand.DB_\":\"db\",\"ecs-secrets.expand.APP_\":"
        "\"/app/prod/\"}}]}");
    static const char db[] = "DB_user=u1\0DB_pass=p=2\0";
    static const char app[] = "APP_host=h\0";
    ag_secret_value vals[] = {
        {.target = AG_SECRET_ENV, .name = "S", .value = "sv", .len = 2},
        {.target = AG_SECRET_ENV,
         .name = "ecs-secrets.expand.DB_",
         .value = db,
         .len = sizeof db - 1,
         .expand = true},
        {.target = AG_SECRET_ENV,
         .name = "ecs-secrets.expand.APP_",
         .value = app,
         .len = sizeof app - 1,
         .expand = true},
    };
    ag_container_override ov = {.name = "app"};
    ag_kv oenv[] = {{"APP_host", "over"}};
    ov.environment = oenv;
    ov.n_environment = 1;
    ag_create_params *p = NULL;
    char err[AG_INJECT_ERR_MAX];
    cr_assert_eq(ag_inject_build(&td->containers[0], &ov, vals, 3, &ictx, &p, err, sizeof err), 0,
                 "%s", err);
    cr_expect_eq(p->n_env, 5);
    cr_expect_str_eq(env_of(p, "A"), "def");
    cr_expect_str_eq(env_of(p, "S"), "sv");
    cr_expect_str_eq(env_of(p, "DB_user"), "u1");
    cr_expect_str_eq(env_of(p, "DB_pass"), "p=2", "the value keeps its '='");
    cr_expect_str_eq(env_of(p, "APP_host"), "h", "the expansion wins over the override");
    cr_expect_null(env_of(p, "ecs-secrets.expand.DB_"), "the label is no variable");
    ag_create_params_free(p);
    /* an empty list (an empty path) gives no variable */
    ag_secret_value empty = vals[2];
    empty.value = "";
    empty.len = 0;
    ag_secret_value v2[] = {vals[0], vals[1], empty};
    cr_assert_eq(ag_inject_build(&td->containers[0], NULL, v2, 3, &ictx, &p, err, sizeof err), 0,
                 "%s", err);
    cr_expect_eq(p->n_env, 4);
    ag_create_params_free(p);
    /* a label without its list, twice, or one the definition lacks */
    cr_expect_eq(ag_inject_build(&td->containers[0], NULL, vals, 2, &ictx, &p, err, sizeof err),
                 -EINVAL);
    cr_expect(strstr(err, "ecs-secrets.expand.APP_") && strstr(err, "no value"), "%s", err);
    ag_secret_value v3[] = {vals[0], vals[1], vals[2], vals[2]};
    cr_expect_eq(ag_inject_build(&td->containers[0], NULL, v3, 4, &ictx, &p, err, sizeof err),
                 -EINVAL);
    cr_expect(strstr(err, "more than one"), "%s", err);
    ag_secret_value v4[] = {vals[0], vals[1], vals[2], vals[2]};
    v4[3].name = "ecs-secrets.expand.X_";
    cr_expect_eq(ag_inject_build(&td->containers[0], NULL, v4, 4, &ictx, &p, err, sizeof err),
                 -EINVAL);
    cr_expect(strstr(err, "does not declare"), "%s", err);
    ag_taskdef_free(td);
}

/* healthCheck: Config.Healthcheck, durations in nanoseconds, ECS's
 * defaults for what was not given */
Test(inject, health_check_reaches_the_body)
{
    ag_taskdef *td = td_parse(
        "{\"family\":\"web\",\"containerDefinitions\":[{\"name\":\"app\",\"image\":\"busybox\","
        "\"healthCheck\":{\"command\":[\"CMD-SHELL\",\"test -f /tmp/ready\"],\"interval\":5,"
        "\"startPeriod\":10}}]}");
    es_json *j = body_of(td, "none");
    const es_json *h = es_json_get(j, "Healthcheck");
    int64_t v = 0;
    cr_assert_not_null(h);
    cr_assert_str_eq(str_at(h, "Test", 0), "CMD-SHELL");
    cr_assert_str_eq(str_at(h, "Test", 1), "test -f /tmp/ready");
    cr_assert(es_json_get_int64(h, "Interval", &v) && v == 5000000000LL);
    cr_assert(es_json_get_int64(h, "Timeout", &v) && v == 5000000000LL, "ECS's default 5 s");
    cr_assert(es_json_get_int64(h, "StartPeriod", &v) && v == 10000000000LL);
    cr_assert(es_json_get_int64(h, "Retries", &v) && v == 3, "ECS's default 3");
    es_json_free(j);
    ag_taskdef_free(td);
    /* none given: the image's own health check stays (no Healthcheck written) */
    td = td_parse("{\"family\":\"web\",\"containerDefinitions\":[{\"name\":\"app\",\"image\":"
                  "\"busybox\"}]}");
    j = body_of(td, "none");
    cr_assert_null(es_json_get(j, "Healthcheck"));
    es_json_free(j);
    ag_taskdef_free(td);
}

/* awslogs as ECS gives it to Docker (td_awslogs.h): the stream prefix made
 * awslogs-stream "prefix/name/taskid" and gone, the task's region, ECS's
 * non-blocking default with its 10m buffer, the execution role's
 * credentials endpoint; what the user gave otherwise as given. */
#define AWSLOGS_TD(opts)                                                                           \
    "{\"family\":\"web\"," ROLE ",\"containerDefinitions\":[{\"name\":\"app\",\"image\":\"i\","    \
    "\"logConfiguration\":{\"logDriver\":\"awslogs\",\"options\":{" opts "}}}]}"
#define TASK_ID "0123456789abcdef0123456789abcdef"
#define CREDS_URI "@127.0.0.1:5/v2/credentials/abc"

static ag_create_params *awslogs_build(const ag_taskdef *td, const char *creds)
{
    ag_inject_ctx c = ictx;
    c.task_id = TASK_ID;
    c.region = "eu-west-3";
    c.log_credentials_uri = creds;
    ag_create_params *p = NULL;
    char err[AG_INJECT_ERR_MAX];
    cr_assert_eq(ag_inject_build(&td->containers[0], NULL, NULL, 0, &c, &p, err, sizeof err), 0,
                 "%s", err);
    return p;
}

Test(inject, awslogs_as_ecs_gives_it_to_docker)
{
    ag_taskdef *td = td_parse(AWSLOGS_TD(
        "\"awslogs-group\":\"g\",\"awslogs-region\":\"us-east-1\",\"awslogs-stream-prefix\":"
        "\"web\",\"awslogs-create-group\":\"true\""));
    ag_create_params *p = awslogs_build(td, CREDS_URI);
    const ag_kv *kv = p->log_config;
    size_t n = p->n_log_config;
    cr_assert_str_eq(p->log_type, "awslogs");
    cr_assert_null(kv_of(kv, n, "awslogs-stream-prefix"), "ECS's option never reaches Docker");
    cr_assert_str_eq(kv_of(kv, n, "awslogs-stream"), "web/app/" TASK_ID);
    cr_assert_str_eq(kv_of(kv, n, "awslogs-group"), "g");
    cr_assert_str_eq(kv_of(kv, n, "awslogs-region"), "us-east-1", "the given region stays");
    cr_assert_str_eq(kv_of(kv, n, "awslogs-create-group"), "true");
    cr_assert_str_eq(kv_of(kv, n, "mode"), "non-blocking");
    cr_assert_str_eq(kv_of(kv, n, "max-buffer-size"), "10m");
    cr_assert_str_eq(kv_of(kv, n, "awslogs-credentials-endpoint"), CREDS_URI);
    cr_assert_eq(n, 7);
    /* in the body Docker gets */
    es_buf body;
    es_buf_init(&body, AG_CREATE_BODY_MAX);
    cr_assert_eq(dk_create_body(&p->spec, &body), 0);
    es_json *j = NULL;
    cr_assert_eq(es_json_parse(body.data, body.len, NULL, &j, NULL, 0), 0);
    const es_json *cfg =
        es_json_get(es_json_get(es_json_get(j, "HostConfig"), "LogConfig"), "Config");
    cr_assert_str_eq(es_json_get_str(cfg, "awslogs-stream"), "web/app/" TASK_ID);
    cr_assert_null(es_json_get(cfg, "awslogs-stream-prefix"));
    es_json_free_secret(j);
    es_buf_free_secret(&body);
    ag_create_params_free(p);
    ag_taskdef_free(td);

    /* no region: the task's; blocking kept without a buffer; no execution
     * role's endpoint: none (Docker's own credentials); no prefix: no stream */
    td = td_parse(AWSLOGS_TD("\"awslogs-group\":\"g\",\"mode\":\"blocking\""));
    p = awslogs_build(td, NULL);
    kv = p->log_config;
    n = p->n_log_config;
    cr_assert_str_eq(kv_of(kv, n, "awslogs-region"), "eu-west-3");
    cr_assert_str_eq(kv_of(kv, n, "mode"), "blocking");
    cr_assert_null(kv_of(kv, n, "max-buffer-size"));
    cr_assert_null(kv_of(kv, n, "awslogs-credentials-endpoint"));
    cr_assert_null(kv_of(kv, n, "awslogs-stream"), "Docker names the stream after the container");
    cr_assert_eq(n, 3);
    ag_create_params_free(p);
    ag_taskdef_free(td);

    /* a buffer the user chose stays */
    td = td_parse(AWSLOGS_TD("\"awslogs-group\":\"g\",\"max-buffer-size\":\"2m\""));
    p = awslogs_build(td, NULL);
    cr_assert_str_eq(kv_of(p->log_config, p->n_log_config, "max-buffer-size"), "2m");
    cr_assert_str_eq(kv_of(p->log_config, p->n_log_config, "mode"), "non-blocking");
    ag_create_params_free(p);
    ag_taskdef_free(td);

    /* another driver is left alone */
    td = td_parse("{\"family\":\"web\"," ROLE ",\"containerDefinitions\":[{\"name\":\"app\","
                  "\"image\":\"i\",\"logConfiguration\":{\"logDriver\":\"gelf\",\"options\":{"
                  "\"gelf-address\":\"udp://h:1\"}}}]}");
    p = awslogs_build(td, CREDS_URI);
    cr_assert_eq(p->n_log_config, 1);
    ag_create_params_free(p);
    ag_taskdef_free(td);
}

Test(inject, awslogs_stream_name_and_allocation_failures)
{
    char out[AG_AWSLOGS_STREAM_MAX + 1];
    cr_assert_eq(ag_awslogs_stream_name("p", "c", TASK_ID, out, sizeof out), 0);
    cr_assert_str_eq(out, "p/c/" TASK_ID);
    char big[600];
    memset(big, 'x', 477); /* 477 + "/c/" + 32 = 512 */
    big[477] = '\0';
    cr_assert_eq(ag_awslogs_stream_name(big, "c", TASK_ID, out, sizeof out), 0, "512 exactly");
    cr_assert_eq(strlen(out), 512);
    big[477] = 'x';
    big[478] = '\0';
    cr_assert_eq(ag_awslogs_stream_name(big, "c", TASK_ID, out, sizeof out), -EMSGSIZE);
    cr_assert_eq(ag_awslogs_stream_name("p", "c", TASK_ID, out, 5), -EMSGSIZE);

    ag_taskdef *td = td_parse(AWSLOGS_TD(
        "\"awslogs-group\":\"g\",\"awslogs-stream-prefix\":\"web\",\"awslogs-create-group\":"
        "\"true\""));
    ag_inject_ctx c = ictx;
    c.task_id = TASK_ID;
    c.region = "eu-west-3";
    c.log_credentials_uri = CREDS_URI;
    int failures = 0;
    for (long k = 0; k < 300; k++) {
        ag_create_params *p = NULL;
        char err[AG_INJECT_ERR_MAX];
        es_alloc_fail_after(k);
        int r = ag_inject_build(&td->containers[0], NULL, NULL, 0, &c, &p, err, sizeof err);
        es_alloc_fail_after(-1);
        if (r == 0) {
            cr_assert_str_eq(kv_of(p->log_config, p->n_log_config, "awslogs-stream"),
                             "web/app/" TASK_ID);
            ag_create_params_free(p);
            break;
        }
        cr_assert_eq(r, -ENOMEM, "k=%ld: %s", k, err);
        failures++;
    }
    cr_assert_gt(failures, 10);
    ag_taskdef_free(td);
}

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/secrets/envfile.h"
#include "agent/tasks/taskdef.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/json.h"

static const ag_td_ctx ctx = {.region = "us-east-1", .account = "123456789012"};

#define ROLE "\"executionRoleArn\":\"arn:aws:iam::123456789012:role/ecsTaskExecutionRole\""

static ag_taskdef *parse_ok(const char *body)
{
    ag_taskdef *td = NULL;
    ag_td_error e = {0};
    int r = ag_taskdef_parse(body, strlen(body), &ctx, &td, &e);
    cr_assert_eq(r, 0, "parse failed: %s: %s\n%s", e.code, e.message, body);
    cr_assert_not_null(td);
    return td;
}

/* Expects a refusal with this code and a message starting with `path`. */
static void parse_bad(const char *body, const char *code, const char *path)
{
    ag_taskdef *td = (ag_taskdef *)0x1;
    ag_td_error e = {0};
    int r = ag_taskdef_parse(body, strlen(body), &ctx, &td, &e);
    cr_assert_lt(r, 0, "must be refused: %s", body);
    cr_assert_eq(td, (ag_taskdef *)0x1, "out untouched on failure");
    cr_assert_str_eq(e.code, code, "code %s, message %s", e.code, e.message);
    cr_assert_eq(strncmp(e.message, path, strlen(path)), 0, "message '%s' should start with '%s'",
                 e.message, path);
}

/* A one-container definition with `extra` spliced into the container. */
static char *one(const char *extra)
{
    static char buf[65536];
    snprintf(buf, sizeof buf,
             "{\"family\":\"web\"," ROLE ",\"containerDefinitions\":[{\"name\":\"app\","
             "\"image\":\"busybox\"%s%s}]}",
             extra && *extra ? "," : "", extra ? extra : "");
    return buf;
}

/* The seed's two snippets, completed with what ECS requires of any task
 * definition (family, name, image, executionRoleArn) and with the
 * placeholders region / aws_account_id filled in. */
Test(taskdef, seed_example)
{
    const char *body =
        "{\"family\":\"seed\"," ROLE ",\"containerDefinitions\":[{"
        "\"name\":\"web\",\"image\":\"busybox\","
        "\"secrets\":[{\"name\":\"environment_variable_name\",\"valueFrom\":"
        "\"arn:aws:ssm:us-east-1:123456789012:parameter/parameter_name\"}],"
        "\"logConfiguration\":[{\"logDriver\":\"fluentd\",\"options\":{\"tag\":\"fluentd demo\"},"
        "\"secretOptions\":[{\"name\":\"fluentd-address\",\"valueFrom\":"
        "\"arn:aws:ssm:us-east-1:123456789012:parameter/parameter_name\"}]}]}]}";
    ag_taskdef *td = parse_ok(body);
    cr_assert_str_eq(td->family, "seed");
    cr_assert_eq(td->n_containers, 1);
    const ag_container_def *c = &td->containers[0];
    cr_assert(c->essential, "essential defaults to true");
    cr_assert_eq(c->n_secrets, 1);
    cr_assert_str_eq(c->secrets[0].name, "environment_variable_name");
    cr_assert_not_null(c->log);
    cr_assert_str_eq(c->log->driver, "fluentd");
    cr_assert_eq(c->log->n_options, 1);
    cr_assert_str_eq(c->log->options[0].name, "tag");
    cr_assert_str_eq(c->log->options[0].value, "fluentd demo");
    cr_assert_eq(c->log->n_secret_options, 1);
    cr_assert_str_eq(c->log->secret_options[0].name, "fluentd-address");
    /* the array form is accepted with a warning for the answer */
    cr_assert_eq(td->n_warnings, 1);
    cr_assert_not_null(strstr(td->warnings[0], "containerDefinitions[0].logConfiguration"));
    cr_assert(ag_taskdef_has_secrets(td));
    ag_taskdef_free(td);
}

Test(taskdef, seed_snippets_verbatim_are_refused_precisely)
{
    /* as printed: no family, no name, no image, placeholder account */
    parse_bad("{ \"containerDefinitions\": [{ \"secrets\": [{ \"name\": "
              "\"environment_variable_name\", \"valueFrom\": "
              "\"arn:aws:ssm:region:aws_account_id:parameter/parameter_name\" }] }] }",
              "ClientException", "family: required");
    parse_bad("{\"family\":\"f\"," ROLE ",\"containerDefinitions\": [{\"name\":\"a\","
              "\"image\":\"i\",\"secrets\": [{ \"name\": \"environment_variable_name\", "
              "\"valueFrom\": \"arn:aws:ssm:region:aws_account_id:parameter/parameter_name\" "
              "}] }] }",
              "ClientException", "containerDefinitions[0].secrets[0].valueFrom: ");
}

Test(taskdef, every_field_is_read)
{
    const char *body =
        "{\"family\":\"full_1\"," ROLE ",\"taskRoleArn\":\"appRole\",\"networkMode\":\"bridge\","
        "\"requiresCompatibilities\":[\"EC2\",\"EXTERNAL\"],\"cpu\":\"256\",\"memory\":\"512\","
        "\"tags\":[{\"key\":\"k\",\"value\":\"v\"}],"
        "\"containerDefinitions\":[{\"name\":\"db\",\"image\":\"postgres:16\","
        "\"essential\":false,\"startTimeout\":30,\"portMappings\":[]},"
        "{\"name\":\"app\",\"image\":\"registry.example.com:5000/team/app@sha256:abc\","
        "\"command\":[\"sh\",\"-c\",\"echo $A\"],\"entryPoint\":[\"/bin/env\"],"
        "\"environment\":[{\"name\":\"A\",\"value\":\"1\"},{\"name\":\"EMPTY\"}],"
        "\"secrets\":[{\"name\":\"A\",\"valueFrom\":\"/app/a\"}],"
        "\"dockerLabels\":{\"team\":\"x\"},\"stopTimeout\":30,\"memory\":128,\"cpu\":64,"
        "\"workingDirectory\":\"/srv\",\"user\":\"1000:1000\","
        "\"dependsOn\":[{\"containerName\":\"db\",\"condition\":\"START\"}],"
        "\"logConfiguration\":{\"logDriver\":\"json-file\",\"options\":{\"max-size\":\"1m\"}}}]}";
    ag_taskdef *td = parse_ok(body);
    cr_assert_str_eq(td->task_role_arn, "appRole");
    cr_assert_str_eq(td->network_mode, "bridge");
    cr_assert_eq(td->n_requires_compatibilities, 2);
    cr_assert_str_eq(td->requires_compatibilities[1], "EXTERNAL");
    cr_assert_str_eq(td->cpu, "256");
    cr_assert_str_eq(td->memory, "512");
    cr_assert_not(td->containers[0].essential);
    const ag_container_def *c = ag_taskdef_container(td, "app");
    cr_assert_not_null(c);
    cr_assert(c->essential);
    cr_assert_eq(c->n_command, 3);
    cr_assert_str_eq(c->command[2], "echo $A");
    cr_assert_eq(c->n_entry_point, 1);
    cr_assert_eq(c->n_environment, 2);
    cr_assert_str_eq(c->environment[1].value, "", "a missing value is empty");
    /* environment and secrets may share a name (the secret wins at injection) */
    cr_assert_eq(c->n_secrets, 1);
    cr_assert_str_eq(c->docker_labels[0].value, "x");
    cr_assert(c->has_stop_timeout && c->stop_timeout == 30);
    cr_assert(c->has_memory && c->memory == 128);
    cr_assert(c->has_cpu && c->cpu == 64);
    cr_assert_str_eq(c->working_directory, "/srv");
    cr_assert_str_eq(c->user, "1000:1000");
    cr_assert_str_eq(c->depends_on_json, "[{\"containerName\":\"db\",\"condition\":\"START\"}]");
    cr_assert_eq(td->n_warnings, 0);
    cr_assert_null(ag_taskdef_container(td, "nope"));
    /* kept as registered: the task's tags; db's startTimeout and its empty
     * portMappings are modelled (present, empty) */
    cr_assert_eq(td->n_kept, 1);
    cr_assert_str_eq(td->kept[0].name, "tags");
    cr_assert_str_eq(td->kept[0].value, "[{\"key\":\"k\",\"value\":\"v\"}]");
    cr_assert_eq(td->containers[0].n_kept, 0);
    cr_assert(td->containers[0].has_start_timeout && td->containers[0].start_timeout == 30);
    cr_assert_not_null(td->containers[0].cv.ports);
    cr_assert_eq(td->containers[0].cv.n_ports, 0);
    /* app depends on db (START): db starts first */
    cr_assert_eq(td->start_order[0], 0);
    cr_assert_eq(td->start_order[1], 1);
    ag_taskdef_free(td);
}

Test(taskdef, family_and_container_names)
{
    parse_bad("{\"family\":\"bad name\",\"containerDefinitions\":[]}", "ClientException",
              "family: up to 255");
    parse_bad("{\"family\":\"\",\"containerDefinitions\":[]}", "ClientException", "family:");
    parse_bad("{\"family\":7,\"containerDefinitions\":[]}", "InvalidParameterException",
              "family: must be a string");
    char fam[300];
    memset(fam, 'a', 256);
    fam[256] = '\0';
    char body[1024];
    snprintf(body, sizeof body,
             "{\"family\":\"%s\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\"}]}",
             fam);
    parse_bad(body, "ClientException", "family: longer than 255");
    fam[255] = '\0';
    snprintf(body, sizeof body,
             "{\"family\":\"%s\",\"containerDefinitions\":[{\"name\":\"A-b_9\",\"image\":\"i\"}]}",
             fam);
    ag_taskdef_free(parse_ok(body));
    /* S11: letters of both cases, digits, hyphens and underscores; nothing else */
    ag_taskdef *td = parse_ok("{\"family\":\"Seed-Task_01\",\"containerDefinitions\":[{"
                              "\"name\":\"a\",\"image\":\"i\"}]}");
    cr_assert_str_eq(td->family, "Seed-Task_01");
    ag_taskdef_free(td);
    parse_bad("{\"family\":\"seed.task\",\"containerDefinitions\":[]}", "ClientException",
              "family: up to 255");
    parse_bad("{\"family\":\"seed/task\",\"containerDefinitions\":[]}", "ClientException",
              "family: up to 255");
    parse_bad(one("\"essential\":true}, {\"name\":\"a.b\",\"image\":\"i\""), "ClientException",
              "containerDefinitions[1].name: up to 255");
    /* S12: a container name of 255 characters is taken, 256 are not */
    char cname[300];
    memset(cname, 'c', 256);
    cname[256] = '\0';
    snprintf(body, sizeof body,
             "{\"family\":\"f\",\"containerDefinitions\":[{\"name\":\"%s\",\"image\":\"i\"}]}",
             cname);
    parse_bad(body, "ClientException", "containerDefinitions[0].name: longer than 255");
    cname[255] = '\0';
    snprintf(body, sizeof body,
             "{\"family\":\"f\",\"containerDefinitions\":[{\"name\":\"%s\",\"image\":\"i\"}]}",
             cname);
    td = parse_ok(body);
    cr_assert_eq(strlen(td->containers[0].name), 255);
    ag_taskdef_free(td);
    parse_bad("{\"family\":\"f\",\"containerDefinitions\":[{\"image\":\"i\"}]}", "ClientException",
              "containerDefinitions[0].name: required");
    parse_bad(one("\"essential\":true}, {\"name\":\"app\",\"image\":\"i\""), "ClientException",
              "containerDefinitions[1].name: duplicate container name 'app'");
}

Test(taskdef, image_rules)
{
    parse_bad("{\"family\":\"f\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"\"}]}",
              "ClientException", "containerDefinitions[0].image:");
    parse_bad("{\"family\":\"f\",\"containerDefinitions\":[{\"name\":\"a\"}]}", "ClientException",
              "containerDefinitions[0].image: required");
    parse_bad("{\"family\":\"f\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"a b\"}]}",
              "ClientException", "containerDefinitions[0].image:");
    char img[300], body[1024];
    memset(img, 'i', 256);
    img[256] = '\0';
    snprintf(body, sizeof body,
             "{\"family\":\"f\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"%s\"}]}",
             img);
    parse_bad(body, "ClientException", "containerDefinitions[0].image: longer than 255");
    img[255] = '\0';
    snprintf(body, sizeof body,
             "{\"family\":\"f\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"%s\"}]}",
             img);
    ag_taskdef_free(parse_ok(body));
    /* S12: an image is a name or a private registry's path (host:port/repo:tag or @digest) */
    const char *const paths[] = {
        "busybox",
        "registry.example.com:5000/team/app:1.0",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/app@sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    };
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        snprintf(body, sizeof body,
                 "{\"family\":\"f\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"%s\"}]}",
                 paths[i]);
        ag_taskdef *td = parse_ok(body);
        cr_assert_str_eq(td->containers[0].image, paths[i]);
        ag_taskdef_free(td);
    }
}

Test(taskdef, container_count_and_essential)
{
    es_buf b;
    es_buf_init(&b, 1 << 16);
    es_buf_append_str(&b, "{\"family\":\"f\",\"containerDefinitions\":[");
    for (int i = 0; i < 11; i++)
        es_buf_printf(&b, "%s{\"name\":\"c%d\",\"image\":\"i\"}", i ? "," : "", i);
    es_buf_append_str(&b, "]}");
    parse_bad(b.data, "ClientException", "containerDefinitions: 11 containers");
    es_buf_free(&b);
    es_buf_init(&b, 1 << 16);
    es_buf_append_str(&b, "{\"family\":\"f\",\"containerDefinitions\":[");
    for (int i = 0; i < 10; i++)
        es_buf_printf(&b, "%s{\"name\":\"c%d\",\"image\":\"i\",\"essential\":%s}", i ? "," : "", i,
                      i == 9 ? "true" : "false");
    es_buf_append_str(&b, "]}");
    ag_taskdef *td = parse_ok(b.data);
    cr_assert_eq(td->n_containers, 10);
    ag_taskdef_free(td);
    es_buf_free(&b);
    parse_bad("{\"family\":\"f\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\","
              "\"essential\":false}]}",
              "ClientException", "containerDefinitions: the task definition must have at least");
    parse_bad("{\"family\":\"f\",\"containerDefinitions\":[]}", "ClientException",
              "containerDefinitions: at least one");
    parse_bad("{\"family\":\"f\"}", "ClientException", "containerDefinitions: required");
    parse_bad("{\"family\":\"f\",\"containerDefinitions\":{}}", "InvalidParameterException",
              "containerDefinitions: must be a list");
    parse_bad(one("\"essential\":\"yes\""), "InvalidParameterException",
              "containerDefinitions[0].essential");
}

Test(taskdef, secrets_rules)
{
    parse_bad(one("\"secrets\":[{\"valueFrom\":\"/a\"}]"), "ClientException",
              "containerDefinitions[0].secrets[0].name: required");
    parse_bad(one("\"secrets\":[{\"name\":\"A\"}]"), "ClientException",
              "containerDefinitions[0].secrets[0].valueFrom: required");
    parse_bad(one("\"secrets\":[{\"name\":\"A\",\"valueFrom\":\"\"}]"), "ClientException",
              "containerDefinitions[0].secrets[0].valueFrom:");
    parse_bad(one("\"secrets\":[{\"name\":\"A\",\"valueFrom\":\"/a\"},{\"name\":\"A\","
                  "\"valueFrom\":\"/b\"}]"),
              "ClientException",
              "containerDefinitions[0].secrets[1].name: Duplicate secret names found: A.");
    parse_bad(one("\"secrets\":[{\"name\":\"A=B\",\"valueFrom\":\"/a\"}]"), "ClientException",
              "containerDefinitions[0].secrets[0].name:");
    parse_bad(one("\"secrets\":[{\"name\":\"A\",\"valueFrom\":\"arn:aws:s3:::bucket/x\"}]"),
              "ClientException", "containerDefinitions[0].secrets[0].valueFrom: the ARN's service");
    parse_bad(one("\"secrets\":{\"A\":\"/a\"}"), "InvalidParameterException",
              "containerDefinitions[0].secrets: must be a list");
    parse_bad(one("\"secrets\":[\"A\"]"), "InvalidParameterException",
              "containerDefinitions[0].secrets[0]: must be an object");
    /* the same name in two containers is fine; in environment and secrets too */
    ag_taskdef *td = parse_ok(
        "{\"family\":\"f\"," ROLE ",\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\","
        "\"environment\":[{\"name\":\"A\",\"value\":\"plain\"}],"
        "\"secrets\":[{\"name\":\"A\",\"valueFrom\":\"/a\"}]},{\"name\":\"b\",\"image\":\"i\","
        "\"secrets\":[{\"name\":\"A\",\"valueFrom\":\"arn:aws:secretsmanager:eu-west-1:"
        "999999999999:secret:x-AbCdEf:k::\"}]}]}");
    ag_taskdef_free(td);
}

Test(taskdef, env_secret_clash_can_be_refused_as_ecs_does)
{
    const char *body = one("\"environment\":[{\"name\":\"DB_PASSWORD\",\"value\":\"x\"}],"
                           "\"secrets\":[{\"name\":\"DB_PASSWORD\",\"valueFrom\":\"/p\"}]");
    ag_taskdef_free(parse_ok(body)); /* default: allowed, the secret wins */
    ag_td_ctx strict = ctx;
    strict.reject_env_secret_clash = true;
    ag_taskdef *td = NULL;
    ag_td_error e;
    cr_assert_eq(ag_taskdef_parse(body, strlen(body), &strict, &td, &e), -EINVAL);
    cr_assert_str_eq(e.code, "ClientException");
    cr_assert_str_eq(e.message,
                     "containerDefinitions[0].secrets[0].name: The secret name must be unique and "
                     "not shared with any new or existing environment variables set on the "
                     "container, such as 'DB_PASSWORD'.");
    body = one("\"environment\":[{\"name\":\"A\",\"value\":\"x\"}],"
               "\"secrets\":[{\"name\":\"B\",\"valueFrom\":\"/p\"}]");
    cr_assert_eq(ag_taskdef_parse(body, strlen(body), &strict, &td, &e), 0);
    ag_taskdef_free(td);
}

Test(taskdef, ssm_parameter_in_another_account_is_refused_S2)
{
    parse_bad(one("\"secrets\":[{\"name\":\"A\",\"valueFrom\":\"arn:aws:ssm:us-east-1:"
                  "210987654321:parameter/a\"}]"),
              "ClientException",
              "containerDefinitions[0].secrets[0].valueFrom: the SSM parameter "
              "is in account 210987654321");
    parse_bad(one("\"logConfiguration\":{\"logDriver\":\"fluentd\",\"secretOptions\":[{\"name\":"
                  "\"fluentd-address\",\"valueFrom\":\"arn:aws:ssm:us-east-1:210987654321:"
                  "parameter/a\"}]}"),
              "ClientException",
              "containerDefinitions[0].logConfiguration.secretOptions[0].valueFrom: the SSM");
    /* another region of the same account is fine (S8: needs the full ARN) */
    ag_taskdef_free(parse_ok(one("\"secrets\":[{\"name\":\"A\",\"valueFrom\":\"arn:aws:ssm:"
                                 "ap-northeast-1:123456789012:parameter/a\"}]")));
    /* with no configured account (reloading) the check is skipped */
    const char *body = one("\"secrets\":[{\"name\":\"A\",\"valueFrom\":\"arn:aws:ssm:us-east-1:"
                           "210987654321:parameter/a\"}]");
    ag_taskdef *td = NULL;
    ag_td_error e;
    cr_assert_eq(ag_taskdef_parse(body, strlen(body), &(ag_td_ctx){0}, &td, &e), 0);
    ag_taskdef_free(td);
}

Test(taskdef, execution_role_required_with_secrets_S5)
{
    const char *base = "{\"family\":\"f\",\"containerDefinitions\":[{\"name\":\"a\","
                       "\"image\":\"i\",%s}]}";
    char body[1024];
    snprintf(body, sizeof body, base, "\"secrets\":[{\"name\":\"A\",\"valueFrom\":\"/a\"}]");
    parse_bad(body, "ClientException",
              "executionRoleArn: When you are specifying container secrets");
    snprintf(body, sizeof body, base,
             "\"logConfiguration\":{\"logDriver\":\"fluentd\",\"secretOptions\":[{\"name\":"
             "\"fluentd-address\",\"valueFrom\":\"/a\"}]}");
    parse_bad(body, "ClientException", "executionRoleArn:");
    snprintf(body, sizeof body, base, "\"environment\":[{\"name\":\"A\",\"value\":\"b\"}]");
    ag_taskdef_free(parse_ok(body));
    parse_bad("{\"family\":\"f\",\"executionRoleArn\":\"ecsTaskExecutionRole\","
              "\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\"}]}",
              "ClientException", "executionRoleArn: Role is not valid");
    parse_bad("{\"family\":\"f\",\"executionRoleArn\":\"arn:aws:iam::123456789012:user/bob\","
              "\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\"}]}",
              "ClientException", "executionRoleArn: Role is not valid");
    parse_bad("{\"family\":\"f\",\"taskRoleArn\":\"bad role\","
              "\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\"}]}",
              "ClientException", "taskRoleArn:");
}

Test(taskdef, log_configuration_rules)
{
    parse_bad(one("\"logConfiguration\":{\"secretOptions\":[{\"name\":\"x\",\"valueFrom\":"
                  "\"/a\"}]}"),
              "ClientException",
              "containerDefinitions[0].logConfiguration.secretOptions: secret options need a "
              "logDriver");
    parse_bad(one("\"logConfiguration\":{\"options\":{}}"), "ClientException",
              "containerDefinitions[0].logConfiguration.logDriver: required");
    parse_bad(one("\"logConfiguration\":{\"logDriver\":\"local\"}"), "ClientException",
              "containerDefinitions[0].logConfiguration.logDriver: 'local' is not one of");
    parse_bad(one("\"logConfiguration\":[]"), "InvalidParameterException",
              "containerDefinitions[0].logConfiguration: must be an object");
    parse_bad(one("\"logConfiguration\":[{\"logDriver\":\"gelf\"},{\"logDriver\":\"gelf\"}]"),
              "InvalidParameterException", "containerDefinitions[0].logConfiguration:");
    parse_bad(one("\"logConfiguration\":[\"gelf\"]"), "InvalidParameterException",
              "containerDefinitions[0].logConfiguration:");
    parse_bad(one("\"logConfiguration\":\"gelf\""), "InvalidParameterException",
              "containerDefinitions[0].logConfiguration:");
    parse_bad(one("\"logConfiguration\":{\"logDriver\":\"gelf\",\"options\":[\"a\"]}"),
              "InvalidParameterException", "containerDefinitions[0].logConfiguration.options");
    parse_bad(one("\"logConfiguration\":{\"logDriver\":\"gelf\",\"options\":{\"a\":1}}"),
              "InvalidParameterException", "containerDefinitions[0].logConfiguration.options.a");
    parse_bad(one("\"logConfiguration\":{\"logDriver\":\"fluentd\",\"secretOptions\":[{\"name\":"
                  "\"x\",\"valueFrom\":\"/a\"},{\"name\":\"x\",\"valueFrom\":\"/b\"}]}"),
              "ClientException",
              "containerDefinitions[0].logConfiguration.secretOptions[1].name: Duplicate");
    ag_taskdef *td = parse_ok(one(
        "\"logConfiguration\":{\"logDriver\":\"awslogs\",\"options\":{\"awslogs-group\":\"g\"}}"));
    cr_assert_eq(td->n_warnings, 0);
    cr_assert_str_eq(td->containers[0].log->driver, "awslogs");
    ag_taskdef_free(td);
}

/* awslogs (td_awslogs.h): ECS's standard configuration is taken and
 * described as registered; what Docker's driver would refuse at create is
 * refused here, naming the option. */
#define AWSLOGS(opts) "\"logConfiguration\":{\"logDriver\":\"awslogs\",\"options\":{" opts "}}"
#define LC "containerDefinitions[0].logConfiguration"
static char *describe(const ag_taskdef *td);
Test(taskdef, awslogs_options)
{
    ag_taskdef *td = parse_ok(one(AWSLOGS(
        "\"awslogs-group\":\"g\",\"awslogs-region\":\"us-east-1\",\"awslogs-stream-prefix\":"
        "\"web\",\"awslogs-create-group\":\"true\"")));
    const ag_logconf *l = td->containers[0].log;
    cr_assert_eq(l->n_options, 4, "kept as registered: the translation is at launch");
    cr_assert_str_eq(l->options[2].name, "awslogs-stream-prefix");
    char *d = describe(td);
    cr_assert_not_null(strstr(d, "\"awslogs-stream-prefix\":\"web\""), "%s", d);
    es_free(d);
    ag_taskdef_free(td);
    /* Docker's other options and Go's booleans */
    ag_taskdef_free(parse_ok(one(AWSLOGS(
        "\"awslogs-group\":\"g\",\"awslogs-stream\":\"s\",\"awslogs-create-group\":\"F\","
        "\"awslogs-endpoint\":\"http://127.0.0.1:1\",\"awslogs-datetime-format\":\"%Y\","
        "\"awslogs-force-flush-interval-seconds\":\"+5\",\"awslogs-max-buffered-events\":\"9\","
        "\"tag\":\"t\",\"mode\":\"non-blocking\",\"max-buffer-size\":\"4m\""))));
    /* a group given as a secret option counts */
    ag_taskdef_free(parse_ok(one("\"logConfiguration\":{\"logDriver\":\"awslogs\","
                                 "\"secretOptions\":[{\"name\":\"awslogs-group\",\"valueFrom\":"
                                 "\"/g\"}]}")));

    parse_bad(one(AWSLOGS("\"awslogs-region\":\"us-east-1\"")), "ClientException",
              LC ".options.awslogs-group: required");
    parse_bad(one(AWSLOGS("\"awslogs-group\":\"\"")), "ClientException",
              LC ".options.awslogs-group: required");
    parse_bad(one(AWSLOGS("\"awslogs-group\":\"g\",\"awslogs-stream-prefixx\":\"w\"")),
              "ClientException",
              LC ".options: 'awslogs-stream-prefixx' is not an option of the awslogs log driver");
    parse_bad(one("\"logConfiguration\":{\"logDriver\":\"awslogs\",\"options\":{\"awslogs-"
                  "group\":\"g\"},\"secretOptions\":[{\"name\":\"env\",\"valueFrom\":\"/e\"}]}"),
              "ClientException", LC ".secretOptions: 'env' is not an option");
    parse_bad(one(AWSLOGS("\"awslogs-group\":\"g\",\"awslogs-credentials-endpoint\":\"/x\"")),
              "ClientException", LC ".options: 'awslogs-credentials-endpoint' is set by the agent");
    parse_bad(one(AWSLOGS("\"awslogs-group\":\"g\",\"awslogs-create-group\":\"yes\"")),
              "ClientException", LC ".options.awslogs-create-group: 'yes' is not true or false");
    parse_bad(one(AWSLOGS("\"awslogs-group\":\"g\",\"awslogs-max-buffered-events\":\"0\"")),
              "ClientException",
              LC ".options.awslogs-max-buffered-events: '0' is not a positive integer");
    parse_bad(
        one(AWSLOGS("\"awslogs-group\":\"g\",\"awslogs-force-flush-interval-seconds\":\"1s\"")),
        "ClientException", LC ".options.awslogs-force-flush-interval-seconds: '1s'");
    parse_bad(one(AWSLOGS("\"awslogs-group\":\"g\",\"awslogs-datetime-format\":\"%Y\","
                          "\"awslogs-multiline-pattern\":\"^x\"")),
              "ClientException",
              LC ".options: awslogs-datetime-format and awslogs-multiline-pattern cannot both");
    parse_bad(one(AWSLOGS("\"awslogs-group\":\"g\",\"mode\":\"fast\"")), "ClientException",
              LC ".options.mode: 'fast' is not blocking or non-blocking");
    parse_bad(one(AWSLOGS("\"awslogs-group\":\"g\",\"mode\":\"blocking\",\"max-buffer-size\":"
                          "\"1m\"")),
              "ClientException", LC ".options.max-buffer-size: only with mode non-blocking");
    parse_bad(one(AWSLOGS("\"awslogs-group\":\"g\",\"awslogs-stream\":\"s\","
                          "\"awslogs-stream-prefix\":\"p\"")),
              "ClientException",
              LC ".options: awslogs-stream-prefix and awslogs-stream cannot both be set");
    parse_bad(one(AWSLOGS("\"awslogs-group\":\"g\",\"awslogs-stream-prefix\":\"a:b\"")),
              "ClientException", LC ".options.awslogs-stream-prefix: a log stream name's prefix");
    parse_bad(one(AWSLOGS("\"awslogs-group\":\"g\",\"awslogs-stream-prefix\":\"a*\"")),
              "ClientException", LC ".options.awslogs-stream-prefix:");
    parse_bad(one(AWSLOGS("\"awslogs-group\":\"g\",\"awslogs-stream-prefix\":\"\"")),
              "ClientException", LC ".options.awslogs-stream-prefix:");
    parse_bad(one("\"logConfiguration\":{\"logDriver\":\"awslogs\",\"options\":{\"awslogs-"
                  "group\":\"g\"},\"secretOptions\":[{\"name\":\"awslogs-stream-prefix\","
                  "\"valueFrom\":\"/p\"}]}"),
              "ClientException", LC ".secretOptions: awslogs-stream-prefix names the stream");
    /* prefix/app/<32 hex> fits 512 with a prefix of 512 - 5 - 32 = 475 */
    char opts[1024], prefix[600];
    memset(prefix, 'p', 475);
    prefix[475] = '\0';
    snprintf(opts, sizeof opts,
             "\"logConfiguration\":{\"logDriver\":\"awslogs\",\"options\":{\"awslogs-group\":"
             "\"g\",\"awslogs-stream-prefix\":\"%s\"}}",
             prefix);
    ag_taskdef_free(parse_ok(one(opts)));
    prefix[475] = 'p';
    prefix[476] = '\0';
    snprintf(opts, sizeof opts,
             "\"logConfiguration\":{\"logDriver\":\"awslogs\",\"options\":{\"awslogs-group\":"
             "\"g\",\"awslogs-stream-prefix\":\"%s\"}}",
             prefix);
    parse_bad(one(opts), "ClientException",
              LC ".options.awslogs-stream-prefix: the stream's name <prefix>/app/<task id> would "
                 "be longer than 512");
    /* other drivers' options are theirs: not checked against awslogs' */
    ag_taskdef_free(parse_ok(one("\"logConfiguration\":{\"logDriver\":\"gelf\",\"options\":{"
                                 "\"awslogs-stream-prefix\":\"x\"}}")));
}

Test(taskdef, limits_and_types)
{
    es_buf b;
    es_buf_init(&b, 1 << 20);
    es_buf_append_str(&b, "\"environment\":[");
    for (int i = 0; i <= AG_TD_ENV_MAX; i++)
        es_buf_printf(&b, "%s{\"name\":\"V%d\"}", i ? "," : "", i);
    es_buf_append_str(&b, "]");
    char *body = one(b.data);
    parse_bad(body, "ClientException", "containerDefinitions[0].environment: more than 1000");
    es_buf_free(&b);

    es_buf_init(&b, 1 << 20);
    es_buf_append_str(&b, "\"secrets\":[");
    for (int i = 0; i <= AG_TD_SECRETS_MAX; i++)
        es_buf_printf(&b, "%s{\"name\":\"S%d\",\"valueFrom\":\"/s\"}", i ? "," : "", i);
    es_buf_append_str(&b, "]");
    parse_bad(one(b.data), "ClientException", "containerDefinitions[0].secrets: more than 100");
    es_buf_free(&b);

    parse_bad(one("\"environment\":[{\"name\":\"\",\"value\":\"x\"}]"), "ClientException",
              "containerDefinitions[0].environment[0].name:");
    parse_bad(one("\"environment\":[{\"name\":\"A\",\"value\":\"x\\u0000y\"}]"), "ClientException",
              "containerDefinitions[0].environment[0].value: must not contain");
    parse_bad(one("\"environment\":[{\"name\":\"A\",\"value\":\"\xc0\x80\"}]"), "ClientException",
              "containerDefinitions[0].environment[0].value: must be valid UTF-8");
    parse_bad(one("\"dockerLabels\":{\"\xc0\x80\":\"v\"}"), "ClientException",
              "containerDefinitions[0].dockerLabels: a key is not valid UTF-8");
    ag_taskdef_free(parse_ok(one("\"environment\":[{\"name\":\"A\",\"value\":\"\xe7\xa7\x98\"}]")));
    parse_bad(one("\"command\":\"echo\""), "InvalidParameterException",
              "containerDefinitions[0].command: must be a list");
    parse_bad(one("\"command\":[1]"), "InvalidParameterException",
              "containerDefinitions[0].command[0]: must be a string");
    parse_bad(one("\"stopTimeout\":121"), "ClientException",
              "containerDefinitions[0].stopTimeout: must be between 0 and 120");
    parse_bad(one("\"stopTimeout\":\"30\""), "InvalidParameterException",
              "containerDefinitions[0].stopTimeout: must be an integer");
    parse_bad(one("\"memory\":4"), "ClientException", "containerDefinitions[0].memory:");
    parse_bad(one("\"dockerLabels\":{\"a\":\"1\",\"a\":\"2\"}"), "ClientException",
              "containerDefinitions[0].dockerLabels: duplicate key");
    parse_bad(one("\"dependsOn\":[{\"containerName\":\"nope\",\"condition\":\"START\"}]"),
              "ClientException", "containerDefinitions[0].dependsOn[0].containerName");
    parse_bad(one("\"dependsOn\":[{\"containerName\":\"app\",\"condition\":\"SOON\"}]"),
              "ClientException", "containerDefinitions[0].dependsOn[0]");
    parse_bad("{\"family\":\"f\",\"networkMode\":\"nat\",\"containerDefinitions\":[]}",
              "ClientException", "networkMode");
    parse_bad("{\"family\":\"f\",\"requiresCompatibilities\":[\"EC2\",\"EC2\"],"
              "\"containerDefinitions\":[]}",
              "ClientException", "requiresCompatibilities[1]: duplicate");
    /* S11: the launch type compatibility is EC2, FARGATE or EXTERNAL */
    ag_taskdef *lt =
        parse_ok("{\"family\":\"f\",\"requiresCompatibilities\":[\"FARGATE\",\"EC2\","
                 "\"EXTERNAL\"],\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\"}]}");
    cr_assert_eq(lt->n_requires_compatibilities, 3);
    cr_assert_str_eq(lt->requires_compatibilities[0], "FARGATE");
    ag_taskdef_free(lt);
    parse_bad("{\"family\":\"f\",\"requiresCompatibilities\":[\"MARS\"],"
              "\"containerDefinitions\":[]}",
              "ClientException", "requiresCompatibilities[0]");
    parse_bad("[1]", "InvalidParameterException", "the request must be a JSON object");
    parse_bad("{\"family\":", "SerializationException", "the request body is not valid JSON");

    /* over 64 KiB */
    size_t n = AG_TD_BODY_MAX + 10;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    ag_taskdef *td = NULL;
    ag_td_error e;
    cr_assert_eq(ag_taskdef_parse(big, n, &ctx, &td, &e), -EMSGSIZE);
    cr_assert_str_eq(e.code, "ClientException");
    free(big);
}

static char *describe(const ag_taskdef *td)
{
    es_buf b;
    es_buf_init(&b, 1 << 20);
    es_jw w;
    es_jw_init(&w, &b);
    ag_taskdef_write_describe(td, "us-east-1", "123456789012", &w);
    cr_assert_eq(es_jw_finish(&w), 0);
    return es_buf_steal(&b);
}

Test(taskdef, describe_shape)
{
    ag_taskdef *td = parse_ok(one("\"secrets\":[{\"name\":\"A\",\"valueFrom\":\"/a\"}],"
                                  "\"logConfiguration\":[{\"logDriver\":\"gelf\"}]"));
    td->revision = 3;
    td->registered_at = 1700000000;
    char *s = describe(td);
    es_json *j = NULL;
    cr_assert_eq(es_json_parse(s, strlen(s), NULL, &j, NULL, 0), 0);
    cr_assert_str_eq(es_json_get_str(j, "taskDefinitionArn"),
                     "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3");
    int64_t v = 0;
    cr_assert(es_json_get_int64(j, "revision", &v) && v == 3);
    cr_assert(es_json_get_int64(j, "registeredAt", &v) && v == 1700000000);
    cr_assert_str_eq(es_json_get_str(j, "status"), "ACTIVE");
    cr_assert_str_eq(es_json_as_str(es_json_at(es_json_get(j, "compatibilities"), 0)), "EC2");
    const es_json *c = es_json_at(es_json_get(j, "containerDefinitions"), 0);
    bool ess = false;
    cr_assert(es_json_get_bool(c, "essential", &ess) && ess);
    cr_assert_eq(es_json_get(c, "logConfiguration")->type, ES_JSON_OBJECT,
                 "written back as ECS's object");
    cr_assert_str_eq(es_json_get_str(es_json_at(es_json_get(c, "secrets"), 0), "valueFrom"), "/a");
    cr_assert_null(es_json_get(j, "deregisteredAt"));
    es_json_free(j);
    es_free(s);
    td->status = AG_TD_INACTIVE;
    td->deregistered_at = 1700000100;
    s = describe(td);
    cr_assert_not_null(strstr(s, "\"status\":\"INACTIVE\""));
    cr_assert_not_null(strstr(s, "\"deregisteredAt\":1700000100"));
    es_free(s);
    ag_taskdef_free(td);
}

Test(taskdef, request_round_trip_is_lossless)
{
    const char *body =
        "{\"family\":\"rt\"," ROLE ",\"networkMode\":\"host\",\"cpu\":\"1 vCPU\","
        "\"requiresCompatibilities\":[\"EXTERNAL\"],"
        "\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\",\"essential\":true,"
        "\"command\":[],\"environment\":[{\"name\":\"X\",\"value\":\"\\\"q\\\"\"}],"
        "\"secrets\":[{\"name\":\"S\",\"valueFrom\":\"arn:aws:secretsmanager:us-east-1:"
        "123456789012:secret:s-AbCdEf:k:AWSCURRENT:\"}],\"dockerLabels\":{\"l\":\"v\"},"
        "\"dependsOn\":[{\"containerName\":\"b\",\"condition\":\"START\"}],"
        "\"versionConsistency\":\"disabled\",\"links\":[],"
        "\"logConfiguration\":{\"logDriver\":\"fluentd\",\"options\":{\"tag\":\"t\"},"
        "\"secretOptions\":[{\"name\":\"fluentd-address\",\"valueFrom\":\"/fa\"}]}},"
        "{\"name\":\"b\",\"image\":\"j\",\"essential\":false,\"stopTimeout\":0}]}";
    ag_taskdef *td = parse_ok(body);
    es_buf b1, b2;
    es_buf_init(&b1, 1 << 20);
    es_buf_init(&b2, 1 << 20);
    es_jw w;
    es_jw_init(&w, &b1);
    ag_taskdef_write_request(td, &w);
    cr_assert_eq(es_jw_finish(&w), 0);
    ag_taskdef *td2 = parse_ok(b1.data);
    es_jw_init(&w, &b2);
    ag_taskdef_write_request(td2, &w);
    cr_assert_eq(es_jw_finish(&w), 0);
    cr_assert_str_eq(b1.data, b2.data);
    cr_assert_eq(td2->containers[0].n_command, 0);
    cr_assert_not_null(td2->containers[0].command, "an empty command stays present");
    cr_assert(td2->containers[1].has_stop_timeout);
    cr_assert_not_null(strstr(b1.data, "\"versionConsistency\":\"disabled\",\"links\":[]"), "%s",
                       b1.data);
    cr_assert_eq(td2->start_order[0], 1, "b starts before a, which depends on it");
    es_buf_free(&b1);
    es_buf_free(&b2);
    ag_taskdef_free(td);
    ag_taskdef_free(td2);
}

Test(taskdef, overrides)
{
    ag_taskdef *td = parse_ok(one("\"environment\":[{\"name\":\"A\",\"value\":\"1\"}]"));
    const char *ov = "{\"containerOverrides\":[{\"name\":\"app\",\"command\":[\"x\"],"
                     "\"environment\":[{\"name\":\"B\",\"value\":\"2\"}]}]}";
    es_json *j = NULL;
    cr_assert_eq(es_json_parse(ov, strlen(ov), NULL, &j, NULL, 0), 0);
    ag_overrides *o = NULL;
    ag_td_error e;
    cr_assert_eq(ag_overrides_parse(j, td, &o, &e), 0, "%s", e.message);
    const ag_container_override *co = ag_overrides_for(o, "app");
    cr_assert_not_null(co);
    cr_assert_eq(co->n_command, 1);
    cr_assert_str_eq(co->environment[0].name, "B");
    cr_assert_null(ag_overrides_for(o, "other"));
    ag_overrides_free(o);
    es_json_free(j);

    const char *bads[] = {
        "{\"containerOverrides\":[{\"name\":\"nope\"}]}",
        "{\"containerOverrides\":[{\"command\":[\"x\"]}]}",
        "{\"containerOverrides\":[{\"name\":\"app\"},{\"name\":\"app\"}]}",
        "{\"containerOverrides\":[{\"name\":\"app\",\"environment\":[{\"value\":\"v\"}]}]}",
        "{\"containerOverrides\":{}}",
        "[]",
    };
    for (size_t i = 0; i < sizeof bads / sizeof *bads; i++) {
        j = NULL;
        cr_assert_eq(es_json_parse(bads[i], strlen(bads[i]), NULL, &j, NULL, 0), 0);
        o = (ag_overrides *)0x1;
        cr_assert_lt(ag_overrides_parse(j, td, &o, &e), 0, "%s", bads[i]);
        cr_assert_eq(o, (ag_overrides *)0x1);
        cr_assert_not_null(strstr(e.message, "overrides"), "%s", e.message);
        es_json_free(j);
    }
    /* no overrides at all */
    cr_assert_eq(ag_overrides_parse(NULL, td, &o, &e), 0);
    cr_assert_eq(o->n_containers, 0);
    ag_overrides_free(o);
    ag_taskdef_free(td);
}

Test(taskdef, every_allocation_failure_is_clean)
{
    const char *body =
        "{\"family\":\"seed\"," ROLE ",\"containerDefinitions\":[{"
        "\"name\":\"web\",\"image\":\"busybox\",\"command\":[\"a\"],"
        "\"environment\":[{\"name\":\"E\",\"value\":\"v\"}],\"dockerLabels\":{\"k\":\"v\"},"
        "\"secrets\":[{\"name\":\"S\",\"valueFrom\":\"/p\"}],"
        "\"repositoryCredentials\":{\"credentialsParameter\":\"reg/hub\"},"
        "\"dependsOn\":[{\"containerName\":\"b\",\"condition\":\"START\"}],"
        "\"logConfiguration\":[{\"logDriver\":\"fluentd\",\"options\":{\"tag\":\"x\"},"
        "\"secretOptions\":[{\"name\":\"fluentd-address\",\"valueFrom\":\"/q\"}]}]},"
        "{\"name\":\"b\",\"image\":\"i\"}]}";
    int failures = 0;
    for (long n = 0; n < 400; n++) {
        ag_taskdef *td = NULL;
        ag_td_error e;
        es_alloc_fail_after(n);
        int r = ag_taskdef_parse(body, strlen(body), &ctx, &td, &e);
        es_alloc_fail_after(-1);
        if (r == 0) {
            ag_taskdef_free(td);
            break;
        }
        cr_assert_eq(r, -ENOMEM, "n=%ld: %d %s", n, r, e.message);
        failures++;
    }
    cr_assert_gt(failures, 20, "the injection reached the parser's allocations");
    /* leaks are caught by ASan's leak checker at exit */
}

/* S15: repositoryCredentials {credentialsParameter: a Secrets Manager secret's
 * ARN or name}; needs executionRoleArn; kept through the request and describe
 * shapes. */
Test(taskdef, repository_credentials_S15)
{
    ag_taskdef *td =
        parse_ok(one("\"repositoryCredentials\":{\"credentialsParameter\":\"reg/hub\"}"));
    cr_assert_not_null(td->containers[0].repository_credentials);
    cr_assert_str_eq(td->containers[0].repository_credentials->value_from, "reg/hub");
    cr_assert(ag_taskdef_has_registry_auth(td));
    cr_assert_not(ag_taskdef_has_secrets(td), "registry auth is not an S3 secret");
    es_buf b;
    es_buf_init(&b, 1 << 16);
    es_jw w;
    es_jw_init(&w, &b);
    ag_taskdef_write_describe(td, "us-east-1", "123456789012", &w);
    cr_assert_eq(es_jw_finish(&w), 0);
    cr_assert(strstr(b.data, "\"repositoryCredentials\":{\"credentialsParameter\":\"reg/hub\"}"),
              "%s", b.data);
    es_buf_reset(&b);
    es_jw_init(&w, &b);
    ag_taskdef_write_request(td, &w);
    cr_assert_eq(es_jw_finish(&w), 0);
    ag_taskdef *td2 = parse_ok(b.data);
    cr_assert_str_eq(td2->containers[0].repository_credentials->value_from, "reg/hub");
    ag_taskdef_free(td2);
    ag_taskdef_free(td);
    es_buf_free(&b);

    td = parse_ok(one("\"repositoryCredentials\":{\"credentialsParameter\":"
                      "\"arn:aws:secretsmanager:eu-west-1:210987654321:secret:hub-AbCdEf\"}"));
    cr_assert_not_null(td->containers[0].repository_credentials);
    ag_taskdef_free(td);

    parse_bad(one("\"repositoryCredentials\":\"reg\""), "InvalidParameterException",
              "containerDefinitions[0].repositoryCredentials: must be an object");
    parse_bad(one("\"repositoryCredentials\":{}"), "ClientException",
              "containerDefinitions[0].repositoryCredentials.credentialsParameter:");
    parse_bad(one("\"repositoryCredentials\":{\"credentialsParameter\":5}"),
              "InvalidParameterException",
              "containerDefinitions[0].repositoryCredentials.credentialsParameter:");
    static const char *const bad[] = {
        "arn:aws:ssm:us-east-1:123456789012:parameter/reg",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:hub:password::",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:hub:",
        "reg hub",
        "reg#hub",
        "arn:aws:secretsmanager:us-east-1:12345:secret:hub",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char extra[512];
        snprintf(extra, sizeof extra, "\"repositoryCredentials\":{\"credentialsParameter\":\"%s\"}",
                 bad[i]);
        parse_bad(one(extra), "ClientException",
                  "containerDefinitions[0].repositoryCredentials.credentialsParameter: The "
                  "repository credentials parameter specified for container 'app' is invalid");
    }
    parse_bad("{\"family\":\"f\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\","
              "\"repositoryCredentials\":{\"credentialsParameter\":\"reg\"}}]}",
              "ClientException",
              "executionRoleArn: When you are specifying repository credentials, you must also "
              "specify a value for 'executionRoleArn'.");
}

/* Issue 20: no member is ignored. */
Test(taskdef, every_member_is_known_kept_or_refused)
{
    parse_bad(one("\"portMapping\":[{\"containerPort\":80}]"), "ClientException",
              "containerDefinitions[0].portMapping: not a member of ContainerDefinition");
    parse_bad("{\"family\":\"f\",\"revision\":3,\"containerDefinitions\":[{\"name\":\"a\","
              "\"image\":\"i\"}]}",
              "ClientException", "revision: not a member of RegisterTaskDefinition");
    parse_bad(one("\"firelensConfiguration\":{\"type\":\"fluentbit\"}"), "ClientException",
              "containerDefinitions[0].firelensConfiguration: FireLens needs a log router");
    parse_bad("{\"family\":\"f\",\"volumes\":[{\"name\":\"v\",\"efsVolumeConfiguration\":"
              "{\"fileSystemId\":\"fs-1\"}}],\"containerDefinitions\":"
              "[{\"name\":\"a\",\"image\":\"i\"}]}",
              "ClientException", "volumes[0].efsVolumeConfiguration: Amazon EFS file systems");
    parse_bad("{\"family\":\"f\",\"networkMode\":\"awsvpc\",\"containerDefinitions\":"
              "[{\"name\":\"a\",\"image\":\"i\"}]}",
              "ClientException", "networkMode: awsvpc gives each task");
    /* an empty value of a refused member says nothing: kept as given */
    ag_taskdef *td = parse_ok("{\"family\":\"f\",\"volumes\":[],\"placementConstraints\":[],"
                              "\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\","
                              "\"links\":[],\"mountPoints\":[],\"healthCheck\":null,"
                              "\"privileged\":false}]}");
    cr_assert_eq(td->n_kept, 1, "volumes is modelled: an empty list stays present");
    cr_assert_eq(td->containers[0].n_kept, 1, "null is absent");
    char *s = describe(td);
    cr_assert_not_null(strstr(s, "\"links\":[]"), "%s", s);
    cr_assert_not_null(strstr(s, "\"mountPoints\":[]"), "%s", s);
    cr_assert_not_null(strstr(s, "\"volumes\":[]"), "%s", s);
    cr_assert_not_null(strstr(s, "\"privileged\":false"), "a working member, as given: %s", s);
    es_free(s);
    ag_taskdef_free(td);
}

Test(taskdef, runtime_platform_is_this_host)
{
    ag_taskdef *td =
        parse_ok("{\"family\":\"f\",\"runtimePlatform\":{\"operatingSystemFamily\":\"LINUX\"},"
                 "\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\"}]}");
    cr_assert_str_eq(td->os_family, "LINUX");
    ag_taskdef_free(td);
    parse_bad("{\"family\":\"f\",\"runtimePlatform\":{\"operatingSystemFamily\":"
              "\"WINDOWS_SERVER_2022_CORE\"},\"containerDefinitions\":[{\"name\":\"a\","
              "\"image\":\"i\"}]}",
              "ClientException",
              "runtimePlatform.operatingSystemFamily: WINDOWS_SERVER_2022_CORE, but");
    parse_bad("{\"family\":\"f\",\"runtimePlatform\":{\"cpuArchitecture\":\"MIPS\"},"
              "\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\"}]}",
              "ClientException", "runtimePlatform.cpuArchitecture: must be X86_64 or ARM64");
    parse_bad("{\"family\":\"f\",\"runtimePlatform\":{\"cpu\":\"X86_64\"},"
              "\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\"}]}",
              "ClientException", "runtimePlatform.cpu: not a member");
}

Test(taskdef, depends_on_start_order_and_cycles)
{
    const char *three =
        "{\"family\":\"f\",\"containerDefinitions\":["
        "{\"name\":\"web\",\"image\":\"i\",\"dependsOn\":[{\"containerName\":\"app\","
        "\"condition\":\"START\"}]},"
        "{\"name\":\"app\",\"image\":\"i\",\"dependsOn\":[{\"containerName\":\"db\","
        "\"condition\":\"START\"}]},"
        "{\"name\":\"db\",\"image\":\"i\"}]}";
    ag_taskdef *td = parse_ok(three);
    cr_assert_eq(td->start_order[0], 2);
    cr_assert_eq(td->start_order[1], 1);
    cr_assert_eq(td->start_order[2], 0);
    ag_taskdef_free(td);
    parse_bad("{\"family\":\"f\",\"containerDefinitions\":["
              "{\"name\":\"a\",\"image\":\"i\",\"dependsOn\":[{\"containerName\":\"b\","
              "\"condition\":\"START\"}]},"
              "{\"name\":\"b\",\"image\":\"i\",\"dependsOn\":[{\"containerName\":\"a\","
              "\"condition\":\"START\"}]}]}",
              "ClientException", "containerDefinitions: the containers' dependsOn form a cycle");
    /* HEALTHY needs a health check on the container it names */
    parse_bad(one("\"essential\":true}, {\"name\":\"b\",\"image\":\"i\",\"dependsOn\":"
                  "[{\"containerName\":\"app\",\"condition\":\"HEALTHY\"}]"),
              "ClientException",
              "containerDefinitions[1].dependsOn[0].condition: HEALTHY needs a healthCheck on "
              "container 'app'");
}

/* ---- issue 20: the members that change what Docker is given (td_runtime.h) ---- */

/* containerDefinitions[0].key of td as described, in compact JSON. */
static char *described_member(const ag_taskdef *td, const char *key)
{
    char *s = describe(td);
    es_json *j = NULL;
    cr_assert_eq(es_json_parse(s, strlen(s), NULL, &j, NULL, 0), 0);
    const es_json *v = es_json_get(es_json_at(es_json_get(j, "containerDefinitions"), 0), key);
    char *out = NULL;
    if (v) {
        es_buf b;
        es_buf_init(&b, 1 << 20);
        es_jw w;
        es_jw_init(&w, &b);
        es_jw_value(&w, v);
        cr_assert_eq(es_jw_finish(&w), 0);
        out = es_buf_steal(&b);
    }
    es_json_free(j);
    es_free(s);
    return out;
}

/* Each member registered alone is described back exactly as given. */
static void round_trips(const char *key, const char *value)
{
    char extra[4096];
    snprintf(extra, sizeof extra, "\"memory\":512,\"%s\":%s", key, value);
    ag_taskdef *td = parse_ok(one(extra));
    char *got = described_member(td, key);
    cr_assert_not_null(got, "%s is not described", key);
    cr_assert_str_eq(got, value, "%s described as %s", key, got);
    es_free(got);
    /* and through the store's request form */
    es_buf b;
    es_buf_init(&b, 1 << 20);
    es_jw w;
    es_jw_init(&w, &b);
    ag_taskdef_write_request(td, &w);
    cr_assert_eq(es_jw_finish(&w), 0);
    ag_taskdef *td2 = parse_ok(b.data);
    got = described_member(td2, key);
    cr_assert_str_eq(got, value, "%s after the store: %s", key, got);
    es_free(got);
    es_buf_free(&b);
    ag_taskdef_free(td2);
    ag_taskdef_free(td);
}

Test(taskdef, runtime_members_parse_and_round_trip)
{
    ag_taskdef *td = parse_ok(
        one("\"memory\":256,\"memoryReservation\":128,\"hostname\":\"app-1.internal\","
            "\"extraHosts\":[{\"hostname\":\"db\",\"ipAddress\":\"10.0.0.3\"},"
            "{\"hostname\":\"v6\",\"ipAddress\":\"fd00::1\"}],\"dnsServers\":[\"10.0.0.2\"],"
            "\"dnsSearchDomains\":[\"example.internal\"],\"privileged\":true,"
            "\"readonlyRootFilesystem\":true,\"interactive\":true,\"pseudoTerminal\":false,"
            "\"disableNetworking\":true,\"dockerSecurityOptions\":[\"no-new-privileges\","
            "\"label:type:svirt_apache_t\"],\"ulimits\":[{\"name\":\"nofile\",\"softLimit\":1024,"
            "\"hardLimit\":2048}],\"systemControls\":[{\"namespace\":\"net.core.somaxconn\","
            "\"value\":\"1024\"},{\"namespace\":\"kernel.shmmax\",\"value\":\"65536\"}]"));
    const ag_container_runtime *rt = &td->containers[0].rt;
    cr_assert_str_eq(rt->hostname, "app-1.internal");
    cr_assert_eq(rt->n_extra_hosts, 2);
    cr_assert_str_eq(rt->extra_hosts[1].b, "fd00::1");
    cr_assert_eq(rt->n_dns_servers, 1);
    cr_assert_str_eq(rt->dns_search[0], "example.internal");
    cr_assert(rt->privileged.set && rt->privileged.value);
    cr_assert(rt->pseudo_terminal.set && !rt->pseudo_terminal.value, "false is kept as given");
    cr_assert(rt->interactive.set && rt->interactive.value);
    cr_assert(rt->disable_networking.value && rt->readonly_rootfs.value);
    cr_assert_eq(rt->n_security_opts, 2);
    cr_assert_eq(rt->n_ulimits, 1);
    cr_assert(rt->ulimits[0].soft == 1024 && rt->ulimits[0].hard == 2048);
    cr_assert_eq(rt->n_sysctls, 2);
    cr_assert(rt->has_memory_reservation && rt->memory_reservation == 128);
    ag_taskdef_free(td);

    round_trips("memoryReservation", "128");
    round_trips("hostname", "\"app\"");
    round_trips("hostname", "\"\"");
    round_trips("extraHosts", "[{\"hostname\":\"db\",\"ipAddress\":\"10.0.0.3\"}]");
    round_trips("extraHosts", "[]");
    round_trips("dnsServers", "[\"10.0.0.2\",\"2001:db8::53\"]");
    round_trips("dnsSearchDomains", "[\"a.example\",\"b.example\"]");
    round_trips("privileged", "false");
    round_trips("readonlyRootFilesystem", "true");
    round_trips("interactive", "true");
    round_trips("pseudoTerminal", "true");
    round_trips("disableNetworking", "false");
    round_trips("dockerSecurityOptions", "[\"apparmor:docker-default\"]");
    round_trips("ulimits", "[{\"name\":\"core\",\"softLimit\":0,\"hardLimit\":0}]");
    round_trips("systemControls", "[{\"namespace\":\"fs.mqueue.msg_max\",\"value\":\"20\"}]");
}

/* pidMode and ipcMode: host (and ipcMode none) as Docker's, task refused
 * with the reason, anything else refused; described back as registered. */
Test(taskdef, pid_and_ipc_modes)
{
    const char *body = "{\"family\":\"web\"," ROLE ",\"pidMode\":\"host\",\"ipcMode\":\"%s\","
                       "\"containerDefinitions\":[{\"name\":\"app\",\"image\":\"busybox\"%s}]}";
    char buf[1024];
    const char *modes[] = {"host", "none"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(buf, sizeof buf, body, modes[i], "");
        ag_taskdef *td = parse_ok(buf);
        cr_assert_str_eq(td->pid_mode, "host");
        cr_assert_str_eq(td->ipc_mode, modes[i]);
        char *d = describe(td);
        char want[64];
        snprintf(want, sizeof want, "\"ipcMode\":\"%s\"", modes[i]);
        cr_assert(strstr(d, "\"pidMode\":\"host\"") && strstr(d, want), "%s", d);
        es_free(d);
        ag_taskdef_free(td);
    }
    ag_taskdef *td = parse_ok(one(NULL));
    cr_assert_null(td->pid_mode, "absent: the container's own namespace");
    cr_assert_null(td->ipc_mode);
    ag_taskdef_free(td);

    parse_bad("{\"family\":\"web\"," ROLE ",\"pidMode\":\"task\",\"containerDefinitions\":[{"
              "\"name\":\"app\",\"image\":\"busybox\"}]}",
              "ClientException", "pidMode: task shares one namespace");
    parse_bad("{\"family\":\"web\"," ROLE ",\"ipcMode\":\"task\",\"containerDefinitions\":[{"
              "\"name\":\"app\",\"image\":\"busybox\"}]}",
              "ClientException", "ipcMode: task shares one namespace");
    parse_bad("{\"family\":\"web\"," ROLE ",\"pidMode\":\"none\",\"containerDefinitions\":[{"
              "\"name\":\"app\",\"image\":\"busybox\"}]}",
              "ClientException", "pidMode: must be one of host, task");
    parse_bad("{\"family\":\"web\"," ROLE ",\"ipcMode\":\"shareable\",\"containerDefinitions\":[{"
              "\"name\":\"app\",\"image\":\"busybox\"}]}",
              "ClientException", "ipcMode: must be one of host, none, task");
    parse_bad("{\"family\":\"web\"," ROLE ",\"ipcMode\":7,\"containerDefinitions\":[{"
              "\"name\":\"app\",\"image\":\"busybox\"}]}",
              "InvalidParameterException", "ipcMode");
    /* the host's IPC namespace: its IPC kernel parameters are the host's */
    snprintf(buf, sizeof buf, body, "host",
             ",\"systemControls\":[{\"namespace\":\"kernel.shmmax\",\"value\":\"1\"}]");
    parse_bad(buf, "ClientException", "containerDefinitions[0].systemControls[0].namespace");
    snprintf(buf, sizeof buf, body, "none",
             ",\"systemControls\":[{\"namespace\":\"kernel.shmmax\",\"value\":\"1\"}]");
    ag_taskdef_free(parse_ok(buf));
}

Test(taskdef, runtime_members_bad_input)
{
    const char *C = "ClientException", *I = "InvalidParameterException";
    const char *P = "containerDefinitions[0].";
    struct {
        const char *extra, *code, *path;
    } cases[] = {
        {"\"hostname\":\"has space\"", C, "hostname"},
        {"\"hostname\":\"0123456789012345678901234567890123456789012345678901234567890123x\"", C,
         "hostname"},
        {"\"hostname\":7", I, "hostname"},
        {"\"extraHosts\":[{\"hostname\":\"db\"}]", C, "extraHosts[0].ipAddress"},
        {"\"extraHosts\":[{\"hostname\":\"db\",\"ipAddress\":\"10.0.0.300\"}]", C,
         "extraHosts[0].ipAddress"},
        {"\"extraHosts\":[{\"hostname\":\"a:b\",\"ipAddress\":\"10.0.0.3\"}]", C,
         "extraHosts[0].hostname"},
        {"\"extraHosts\":[\"db:10.0.0.3\"]", I, "extraHosts[0]"},
        {"\"extraHosts\":{}", I, "extraHosts"},
        {"\"dnsServers\":[\"dns.example\"]", C, "dnsServers[0]"},
        {"\"dnsSearchDomains\":[\"a b\"]", C, "dnsSearchDomains[0]"},
        {"\"dnsSearchDomains\":[\"\"]", C, "dnsSearchDomains[0]"},
        {"\"privileged\":\"true\"", I, "privileged"},
        {"\"readonlyRootFilesystem\":1", I, "readonlyRootFilesystem"},
        {"\"dockerSecurityOptions\":[\"seccomp=unconfined\"]", C, "dockerSecurityOptions[0]"},
        {"\"dockerSecurityOptions\":[\"credentialspec:file://x.json\"]", C,
         "dockerSecurityOptions[0]"},
        {"\"dockerSecurityOptions\":[\"apparmor:\"]", C, "dockerSecurityOptions[0]"},
        {"\"ulimits\":[{\"name\":\"files\",\"softLimit\":1,\"hardLimit\":1}]", C,
         "ulimits[0].name"},
        {"\"ulimits\":[{\"name\":\"nofile\",\"softLimit\":1}]", C, "ulimits[0].hardLimit"},
        {"\"ulimits\":[{\"name\":\"nofile\",\"softLimit\":2,\"hardLimit\":1}]", C,
         "ulimits[0].softLimit"},
        {"\"ulimits\":[{\"name\":\"nofile\",\"softLimit\":-1,\"hardLimit\":1}]", C,
         "ulimits[0].softLimit"},
        {"\"ulimits\":[{\"name\":\"nofile\",\"softLimit\":1,\"hardLimit\":1},"
         "{\"name\":\"nofile\",\"softLimit\":1,\"hardLimit\":1}]",
         C, "ulimits[1].name"},
        {"\"systemControls\":[{\"namespace\":\"vm.swappiness\",\"value\":\"1\"}]", C,
         "systemControls[0].namespace"},
        {"\"systemControls\":[{\"namespace\":\"net.core.somaxconn\"}]", C,
         "systemControls[0].value"},
        {"\"systemControls\":[{\"namespace\":\"kernel.sem\",\"value\":\"1\"},"
         "{\"namespace\":\"kernel.sem\",\"value\":\"2\"}]",
         C, "systemControls[1].namespace"},
        {"\"memoryReservation\":5", C, "memoryReservation"},
        {"\"memoryReservation\":\"64\"", I, "memoryReservation"},
        {"\"memory\":64,\"memoryReservation\":128", C, "memoryReservation"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s%s", P, cases[i].path);
        parse_bad(one(cases[i].extra), cases[i].code, path);
    }
    /* ECS's limits: more entries than allowed */
    char big[8192] = "\"dnsServers\":[";
    size_t at = strlen(big);
    for (int i = 0; i <= AG_TD_DNS_MAX; i++)
        at += (size_t)snprintf(big + at, sizeof big - at, i ? ",\"10.0.0.1\"" : "\"10.0.0.1\"");
    snprintf(big + at, sizeof big - at, "]");
    parse_bad(one(big), C, "containerDefinitions[0].dnsServers");
    /* net.* sysctls would change the host's namespace in host mode */
    parse_bad("{\"family\":\"web\",\"networkMode\":\"host\",\"containerDefinitions\":[{\"name\":"
              "\"app\",\"image\":\"busybox\",\"systemControls\":[{\"namespace\":"
              "\"net.core.somaxconn\",\"value\":\"1\"}]}]}",
              C, "containerDefinitions[0].systemControls[0].namespace");
    /* equal reservation and limit are fine, as Docker takes them */
    ag_taskdef_free(parse_ok(one("\"memory\":64,\"memoryReservation\":64")));
}

Test(taskdef, linux_parameters)
{
    const char *lp =
        "{\"capabilities\":{\"add\":[\"NET_ADMIN\"],\"drop\":[\"CHOWN\",\"MKNOD\"]},"
        "\"devices\":[{\"hostPath\":\"/dev/null\",\"containerPath\":\"/dev/mynull\","
        "\"permissions\":[\"read\",\"write\"]},{\"hostPath\":\"/dev/zero\"}],"
        "\"initProcessEnabled\":true,\"sharedMemorySize\":16,\"tmpfs\":[{\"containerPath\":"
        "\"/scratch\",\"size\":8,\"mountOptions\":[\"noexec\",\"mode=1777\"]}],"
        "\"maxSwap\":32,\"swappiness\":10}";
    round_trips("linuxParameters", lp);
    round_trips("linuxParameters", "{}");
    round_trips("linuxParameters", "{\"capabilities\":{},\"devices\":[],\"tmpfs\":[]}");
    char extra[2048];
    snprintf(extra, sizeof extra, "\"memory\":64,\"linuxParameters\":%s", lp);
    ag_taskdef *td = parse_ok(one(extra));
    const ag_linux_params *l = td->containers[0].rt.linux_params;
    cr_assert_not_null(l);
    cr_assert(l->has_capabilities && l->n_cap_add == 1 && l->n_cap_drop == 2);
    cr_assert_eq(l->n_devices, 2);
    cr_assert_null(l->devices[1].container_path);
    cr_assert(l->init.set && l->init.value);
    cr_assert(l->has_shm_size && l->shm_size == 16);
    cr_assert(l->n_tmpfs == 1 && l->tmpfs[0].size == 8 && l->tmpfs[0].n_mount_options == 2);
    cr_assert(l->has_max_swap && l->max_swap == 32 && l->swappiness == 10);
    ag_taskdef_free(td);

    const char *C = "ClientException", *I = "InvalidParameterException";
    struct {
        const char *lp, *code, *path;
    } cases[] = {
        {"{\"sysctls\":{}}", C, "sysctls: not a member of LinuxParameters"},
        {"[]", I, ""},
        {"{\"capabilities\":{\"add\":[\"CAP_NET_ADMIN\"]}}", C, "capabilities.add[0]"},
        {"{\"capabilities\":{\"keep\":[]}}", C, "capabilities.keep"},
        {"{\"devices\":[{\"containerPath\":\"/dev/x\"}]}", C, "devices[0].hostPath: required"},
        {"{\"devices\":[{\"hostPath\":\"dev/null\"}]}", C, "devices[0].hostPath"},
        {"{\"devices\":[{\"hostPath\":\"/dev/null\",\"permissions\":[\"all\"]}]}", C,
         "devices[0].permissions[0]"},
        {"{\"initProcessEnabled\":1}", I, "initProcessEnabled"},
        {"{\"sharedMemorySize\":0}", C, "sharedMemorySize"},
        {"{\"tmpfs\":[{\"containerPath\":\"/t\"}]}", C, "tmpfs[0].size: required"},
        {"{\"tmpfs\":[{\"containerPath\":\"/t\",\"size\":1,\"mountOptions\":[\"size=9m\"]}]}", C,
         "tmpfs[0].mountOptions[0]"},
        {"{\"tmpfs\":[{\"containerPath\":\"/t\",\"size\":1,\"mountOptions\":[\"mode=1,ro\"]}]}", C,
         "tmpfs[0].mountOptions[0]"},
        {"{\"tmpfs\":[{\"containerPath\":\"/t\",\"size\":1},{\"containerPath\":\"/t\","
         "\"size\":2}]}",
         C, "tmpfs[1].containerPath"},
        {"{\"swappiness\":101}", C, "swappiness"},
        {"{\"maxSwap\":-1}", C, "maxSwap"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char path[160];
        snprintf(path, sizeof path, "containerDefinitions[0].linuxParameters%s%s",
                 *cases[i].path ? "." : "", cases[i].path);
        snprintf(extra, sizeof extra, "\"memory\":64,\"linuxParameters\":%s", cases[i].lp);
        parse_bad(one(extra), cases[i].code, path);
    }
    /* maxSwap is added to the memory limit: it needs one */
    parse_bad(one("\"linuxParameters\":{\"maxSwap\":10}"), C,
              "containerDefinitions[0].linuxParameters.maxSwap: needs the container's memory");
}

/* healthCheck: ECS's limits, wording naming the member, and the defaults
 * ECS describes back (interval 30, timeout 5, retries 3). */
Test(taskdef, health_check)
{
    ag_taskdef *td =
        parse_ok(one("\"healthCheck\":{\"command\":[\"CMD\",\"/bin/check\",\"-q\"],\"interval\":10,"
                     "\"timeout\":2,\"retries\":10,\"startPeriod\":300}"));
    const ag_healthcheck *h = td->containers[0].rt.health_check;
    cr_assert_not_null(h);
    cr_assert_eq(h->n_command, 3);
    cr_assert(ag_hc_interval(h) == 10 && ag_hc_timeout(h) == 2 && ag_hc_retries(h) == 10 &&
              ag_hc_start_period(h) == 300);
    ag_taskdef_free(td);
    round_trips("healthCheck", "{\"command\":[\"CMD-SHELL\",\"true\"],\"interval\":5,"
                               "\"timeout\":60,\"retries\":1,\"startPeriod\":0}");
    /* what was not given is described with ECS's defaults */
    td = parse_ok(one("\"healthCheck\":{\"command\":[\"CMD-SHELL\",\"true\"]}"));
    char *got = described_member(td, "healthCheck");
    cr_assert_str_eq(got, "{\"command\":[\"CMD-SHELL\",\"true\"],\"interval\":30,"
                          "\"timeout\":5,\"retries\":3}");
    es_free(got);
    ag_taskdef_free(td);

    const char *C = "ClientException", *I = "InvalidParameterException";
    struct {
        const char *hc, *code, *path;
    } cases[] = {
        {"{}", C, "command: required"},
        {"{\"command\":[]}", C, "command: must be"},
        {"{\"command\":[\"true\"]}", C, "command: must be"},
        {"{\"command\":[\"CMD\"]}", C, "command: must be"},
        {"{\"command\":[\"CMD-SHELL\",\"a\",\"b\"]}", C, "command: must be"},
        {"{\"command\":[\"NONE\"]}", C, "command: must be"},
        {"{\"command\":[\"CMD\",\"\"]}", C, "command[1]"},
        {"{\"command\":\"CMD-SHELL true\"}", I, "command"},
        {"{\"command\":[\"CMD\",\"x\"],\"interval\":4}", C, "interval: must be between 5 and 300"},
        {"{\"command\":[\"CMD\",\"x\"],\"interval\":301}", C, "interval"},
        {"{\"command\":[\"CMD\",\"x\"],\"timeout\":1}", C, "timeout: must be between 2 and 60"},
        {"{\"command\":[\"CMD\",\"x\"],\"timeout\":61}", C, "timeout"},
        {"{\"command\":[\"CMD\",\"x\"],\"retries\":0}", C, "retries: must be between 1 and 10"},
        {"{\"command\":[\"CMD\",\"x\"],\"retries\":11}", C, "retries"},
        {"{\"command\":[\"CMD\",\"x\"],\"startPeriod\":-1}", C, "startPeriod"},
        {"{\"command\":[\"CMD\",\"x\"],\"startPeriod\":301}", C, "startPeriod"},
        {"{\"command\":[\"CMD\",\"x\"],\"interval\":\"30\"}", I, "interval"},
        {"{\"command\":[\"CMD\",\"x\"],\"every\":30}", C, "every: not a member of HealthCheck"},
        {"[]", I, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char extra[512], path[160];
        snprintf(path, sizeof path, "containerDefinitions[0].healthCheck%s%s",
                 *cases[i].path ? "." : "", cases[i].path);
        snprintf(extra, sizeof extra, "\"healthCheck\":%s", cases[i].hc);
        parse_bad(one(extra), cases[i].code, path);
    }
}

/* COMPLETE, SUCCESS and HEALTHY: typed, with ECS's rules between containers */
Test(taskdef, depends_on_conditions)
{
    ag_taskdef *td =
        parse_ok("{\"family\":\"f\",\"containerDefinitions\":["
                 "{\"name\":\"app\",\"image\":\"i\",\"dependsOn\":["
                 "{\"containerName\":\"init\",\"condition\":\"SUCCESS\"},"
                 "{\"containerName\":\"db\",\"condition\":\"HEALTHY\"},"
                 "{\"containerName\":\"seed\",\"condition\":\"COMPLETE\"}]},"
                 "{\"name\":\"db\",\"image\":\"i\",\"startTimeout\":30,\"healthCheck\":"
                 "{\"command\":[\"CMD-SHELL\",\"true\"]}},"
                 "{\"name\":\"init\",\"image\":\"i\",\"essential\":false},"
                 "{\"name\":\"seed\",\"image\":\"i\",\"essential\":false}]}");
    const ag_container_def *app = &td->containers[0];
    cr_assert_eq(app->n_depends, 3);
    cr_assert(app->depends[0].container == 2 && app->depends[0].condition == AG_DEP_SUCCESS);
    cr_assert(app->depends[1].container == 1 && app->depends[1].condition == AG_DEP_HEALTHY);
    cr_assert(app->depends[2].container == 3 && app->depends[2].condition == AG_DEP_COMPLETE);
    cr_assert(td->containers[1].has_start_timeout && td->containers[1].start_timeout == 30);
    cr_assert_eq(td->start_order[3], 0, "app starts after the three it names");
    char *got = described_member(td, "dependsOn");
    cr_assert_not_null(strstr(got, "\"condition\":\"HEALTHY\""), "%s", got);
    es_free(got);
    ag_taskdef_free(td);
    round_trips("startTimeout", "120");

    /* an essential container exiting stops the task: it cannot be waited for */
    const char *conds[] = {"COMPLETE", "SUCCESS"};
    for (size_t i = 0; i < 2; i++) {
        char body[1024];
        snprintf(body, sizeof body,
                 "{\"family\":\"f\",\"containerDefinitions\":[{\"name\":\"app\",\"image\":"
                 "\"i\",\"dependsOn\":[{\"containerName\":\"init\",\"condition\":\"%s\"}]},"
                 "{\"name\":\"init\",\"image\":\"i\"}]}",
                 conds[i]);
        parse_bad(body, "ClientException", "containerDefinitions[0].dependsOn[0].condition: ");
    }
    parse_bad(one("\"dependsOn\":[{\"containerName\":\"app\",\"condition\":\"START\"}]"),
              "ClientException", "containerDefinitions[0].dependsOn[0].containerName");
    parse_bad(one("\"dependsOn\":[{\"containerName\":\"x\",\"condition\":\"READY\"}]"),
              "ClientException", "containerDefinitions[0].dependsOn[0]: needs containerName");
    parse_bad(one("\"startTimeout\":1"), "ClientException", "containerDefinitions[0].startTimeout");
    parse_bad(one("\"startTimeout\":\"30\""), "InvalidParameterException",
              "containerDefinitions[0].startTimeout");
}

/* Issue 20: environmentFiles, typed at registration, described as given. */
Test(taskdef, environment_files)
{
    ag_taskdef *td = parse_ok(
        one("\"environmentFiles\":[{\"value\":\"arn:aws:s3:::envs/app.env\",\"type\":\"s3\"},"
            "{\"type\":\"s3\",\"value\":\"arn:aws-cn:s3:::my.bucket-1/dir/second file.env\"}]"));
    const ag_container_def *c = &td->containers[0];
    cr_assert_eq(c->n_env_files, 2);
    cr_assert_str_eq(c->env_files[0].bucket, "envs");
    cr_assert_str_eq(c->env_files[0].key, "app.env");
    cr_assert_str_eq(c->env_files[0].partition, "aws");
    cr_assert_str_eq(c->env_files[1].bucket, "my.bucket-1");
    cr_assert_str_eq(c->env_files[1].key, "dir/second file.env");
    char arn[128];
    cr_assert_eq(ag_env_file_bucket_arn(&c->env_files[1], arn, sizeof arn), 0);
    cr_assert_str_eq(arn, "arn:aws-cn:s3:::my.bucket-1");
    cr_assert(ag_taskdef_has_env_files(td));
    ag_taskdef_free(td);
    round_trips("environmentFiles", "[{\"value\":\"arn:aws:s3:::envs/app.env\",\"type\":\"s3\"}]");
    /* an empty list says nothing */
    td = parse_ok(one("\"environmentFiles\":[]"));
    cr_assert_eq(td->containers[0].n_env_files, 0);
    cr_assert_not(ag_taskdef_has_env_files(td));
    ag_taskdef_free(td);

    parse_bad(
        one("\"environmentFiles\":[{\"value\":\"arn:aws:s3:::envs/a.env\",\"type\":\"ssm\"}]"),
        "ClientException", "containerDefinitions[0].environmentFiles[0].type: must be s3");
    parse_bad(one("\"environmentFiles\":[{\"value\":\"arn:aws:s3:::envs/a.env\"}]"),
              "ClientException", "containerDefinitions[0].environmentFiles[0].type: required");
    parse_bad(one("\"environmentFiles\":[{\"type\":\"s3\"}]"), "ClientException",
              "containerDefinitions[0].environmentFiles[0].value: required");
    const char *bad_arns[] = {"s3://envs/a.env",          "arn:aws:s3:::envs",
                              "arn:aws:s3:::envs/",       "arn:aws:s3:::Envs/a.env",
                              "arn:aws:ssm:::envs/a.env", "arn:aws:s3:us-east-1::envs/a.env",
                              "arn:aws:s3:::e/a.env"};
    for (size_t i = 0; i < sizeof bad_arns / sizeof *bad_arns; i++) {
        char extra[256];
        snprintf(extra, sizeof extra, "\"environmentFiles\":[{\"value\":\"%s\",\"type\":\"s3\"}]",
                 bad_arns[i]);
        parse_bad(one(extra), "ClientException",
                  "containerDefinitions[0].environmentFiles[0].value: not an S3 object ARN");
    }
    parse_bad(one("\"environmentFiles\":[{\"value\":\"arn:aws:s3:::envs/a.env\",\"type\":\"s3\","
                  "\"region\":\"x\"}]"),
              "ClientException",
              "containerDefinitions[0].environmentFiles[0].region: not a member of "
              "EnvironmentFile");
    parse_bad(one("\"environmentFiles\":{\"value\":\"arn:aws:s3:::envs/a.env\"}"),
              "InvalidParameterException",
              "containerDefinitions[0].environmentFiles: must be a list");
    parse_bad(one("\"environmentFiles\":[\"arn:aws:s3:::envs/a.env\"]"),
              "InvalidParameterException",
              "containerDefinitions[0].environmentFiles[0]: must be an object");
    /* ECS's limit: ten files a container */
    char extra[4096] = "\"environmentFiles\":[";
    for (int i = 0; i <= AG_ENVFILES_MAX; i++)
        snprintf(extra + strlen(extra), sizeof extra - strlen(extra),
                 "%s{\"value\":\"arn:aws:s3:::envs/%d.env\",\"type\":\"s3\"}", i ? "," : "", i);
    snprintf(extra + strlen(extra), sizeof extra - strlen(extra), "]");
    parse_bad(one(extra), "ClientException",
              "containerDefinitions[0].environmentFiles: more than 10 entries");
}

/* Issue 20: restartPolicy as ECS takes it, and its agent's decision. */
Test(taskdef, restart_policy)
{
    ag_taskdef *td = parse_ok(one("\"restartPolicy\":{\"enabled\":true,\"ignoredExitCodes\":[0,"
                                  "143],\"restartAttemptPeriod\":60}"));
    const ag_restart_policy *p = &td->containers[0].restart;
    cr_assert(p->present && p->enabled);
    cr_assert_eq(p->n_ignored, 2);
    cr_assert_eq(p->ignored[1], 143);
    cr_assert_eq(p->period, 60);
    ag_taskdef_free(td);
    td = parse_ok(one("\"restartPolicy\":{\"enabled\":true}"));
    cr_assert_eq(td->containers[0].restart.period, AG_RESTART_PERIOD_DEFAULT, "300 by default");
    ag_taskdef_free(td);
    td = parse_ok(one(NULL));
    cr_assert_not(td->containers[0].restart.present);
    cr_assert_not(td->containers[0].restart.enabled);
    ag_taskdef_free(td);
    round_trips("restartPolicy",
                "{\"enabled\":true,\"ignoredExitCodes\":[0,143],\"restartAttemptPeriod\":60}");
    round_trips("restartPolicy", "{\"enabled\":false}");
    round_trips("restartPolicy", "{\"enabled\":true,\"ignoredExitCodes\":[]}");

    parse_bad(one("\"restartPolicy\":{}"), "ClientException",
              "containerDefinitions[0].restartPolicy.enabled: required");
    parse_bad(one("\"restartPolicy\":{\"enabled\":\"yes\"}"), "InvalidParameterException",
              "containerDefinitions[0].restartPolicy.enabled: must be a boolean");
    parse_bad(one("\"restartPolicy\":{\"enabled\":true,\"restartAttemptPeriod\":59}"),
              "ClientException",
              "containerDefinitions[0].restartPolicy.restartAttemptPeriod: must be between 60 and "
              "1800");
    parse_bad(one("\"restartPolicy\":{\"enabled\":true,\"restartAttemptPeriod\":1801}"),
              "ClientException", "containerDefinitions[0].restartPolicy.restartAttemptPeriod");
    parse_bad(one("\"restartPolicy\":{\"enabled\":true,\"ignoredExitCodes\":[\"1\"]}"),
              "InvalidParameterException",
              "containerDefinitions[0].restartPolicy.ignoredExitCodes[0]");
    parse_bad(one("\"restartPolicy\":{\"enabled\":true,\"maxRestarts\":3}"), "ClientException",
              "containerDefinitions[0].restartPolicy.maxRestarts: not a member of "
              "ContainerRestartPolicy");
    parse_bad(one("\"restartPolicy\":[true]"), "InvalidParameterException",
              "containerDefinitions[0].restartPolicy: must be an object");
    char extra[1024] = "\"restartPolicy\":{\"enabled\":true,\"ignoredExitCodes\":[";
    for (int i = 0; i <= AG_RESTART_IGNORED_MAX; i++)
        snprintf(extra + strlen(extra), sizeof extra - strlen(extra), "%s%d", i ? "," : "", i);
    snprintf(extra + strlen(extra), sizeof extra - strlen(extra), "]}");
    parse_bad(one(extra), "ClientException",
              "containerDefinitions[0].restartPolicy.ignoredExitCodes: more than 50 entries");
}

Test(taskdef, restart_decision_as_ecs_agent)
{
    ag_restart_policy p = {.present = true, .enabled = true, .period = 60};
    p.ignored[p.n_ignored++] = 0;
    char why[AG_RESTART_WHY_MAX];
    int code = 3, zero = 0;
    cr_assert(ag_restart_decide(&p, false, &code, 60, why, sizeof why));
    cr_assert(ag_restart_decide(&p, false, &code, 3600, why, sizeof why));
    cr_assert_not(ag_restart_decide(&p, false, &code, 59, why, sizeof why));
    cr_assert_str_eq(why, "it ran 59 s, less than its restartAttemptPeriod (60 s)");
    cr_assert_not(ag_restart_decide(&p, false, &zero, 600, why, sizeof why));
    cr_assert_str_eq(why, "exit code 0 is ignored");
    cr_assert_not(ag_restart_decide(&p, false, NULL, 600, why, sizeof why));
    cr_assert_str_eq(why, "exit code is unknown");
    cr_assert_not(ag_restart_decide(&p, true, &code, 600, why, sizeof why));
    cr_assert_str_eq(why, "the task is stopping");
    p.enabled = false;
    cr_assert_not(ag_restart_decide(&p, false, &code, 600, why, sizeof why));
    cr_assert_str_eq(why, "restart policy is not enabled");
}

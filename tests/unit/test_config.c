#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "config/docker_roles.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/es-cfg-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(config, .init = setup, .fini = teardown);

static const char *write_file(const char *name, const char *text)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static int load(cf_config *c, const char *file, char *const envp[], es_buf *err, int nextra,
                const char *extra[])
{
    char *argv[16] = {"ecs-secrets-agent", "--config", (char *)file};
    int argc = 3;
    for (int i = 0; i < nextra; i++)
        argv[argc++] = (char *)extra[i];
    cf_action action;
    es_buf_init(err, 4096);
    return cf_load(c, argc, argv, envp, &action, err);
}

Test(config, defaults_file_env_flags_layering)
{
    const char *f = write_file("a.conf", "# comment\n"
                                         "; other comment\n"
                                         "ECS_CLUSTER=from-file\n"
                                         "  AWS_REGION = eu-west-1  \n"
                                         "ECS_LOGLEVEL=debug\n");
    char *envp[] = {"ECS_LOGLEVEL=warn", "PATH=/bin", "UNRELATED_KEY=1", NULL};
    const char *flags[] = {"--region", "ap-south-1"};
    cf_config c;
    es_buf err;
    cr_assert_eq(load(&c, f, envp, &err, 2, flags), 0, "%s", es_buf_cstr(&err));
    cr_assert_str_eq(cf_get(&c, CF_CLUSTER), "from-file");
    cr_assert_str_eq(cf_get(&c, CF_REGION), "ap-south-1", "flags beat the file");
    cr_assert_str_eq(cf_get(&c, CF_LOG_LEVEL), "warn", "environment beats the file");
    cr_assert_eq(c.log_level, ES_LOG_WARN);
    cr_assert_str_eq(cf_get(&c, CF_MODE), "embedded");
    cr_assert_str_eq(c.source[CF_MODE], "default");
    cr_assert(strstr(c.source[CF_CLUSTER], "a.conf:3") != NULL, "%s", c.source[CF_CLUSTER]);
    cr_assert_str_eq(c.listen_host, "127.0.0.1");
    cr_assert_eq(c.listen_port, 4577);
    cr_assert_str_eq(c.docker_socket, "/var/run/docker.sock");
    cf_free(&c);
    es_buf_free(&err);
}

Test(config, quoting_as_systemd_reads_it)
{
    const char *f = write_file("q.conf", "ECS_CLUSTER=\"quoted\"\n"
                                         "ECS_SECRETS_STATE_DIR='/var/lib/with space'\n"
                                         "ECS_SECRETS_SECRET_ACCESS_KEY=\"a\\\"b\\\\c\"\n"
                                         "ECS_SECRETS_ACCESS_KEY_ID=AKID\\\n"
                                         "CONT\n");
    cf_config c;
    es_buf err;
    cr_assert_eq(load(&c, f, NULL, &err, 0, NULL), 0, "%s", es_buf_cstr(&err));
    cr_assert_str_eq(cf_get(&c, CF_CLUSTER), "quoted");
    cr_assert_str_eq(cf_get(&c, CF_STATE_DIR), "/var/lib/with space");
    cr_assert_str_eq(cf_get(&c, CF_SECRET_ACCESS_KEY), "a\"b\\c");
    cr_assert_str_eq(cf_get(&c, CF_ACCESS_KEY_ID), "AKIDCONT");
    cf_free(&c);
    es_buf_free(&err);
}

static void expect_error(const char *text, const char *want)
{
    const char *f = write_file("bad.conf", text);
    cf_config c;
    es_buf err;
    cr_assert_neq(load(&c, f, NULL, &err, 0, NULL), 0, "accepted: %s", text);
    cr_assert(strstr(es_buf_cstr(&err), want) != NULL, "error '%s' lacks '%s'", es_buf_cstr(&err),
              want);
    es_buf_free(&err);
}

Test(config, errors_name_file_line_and_key)
{
    expect_error("ECS_CLUSTER=ok\nECS_CLUSTR=x\n",
                 "bad.conf:2: unknown key ECS_CLUSTR (did you mean ECS_CLUSTER?)");
    expect_error("\n\nECS_SECRETS_MODE=cloud\n",
                 "bad.conf:3: ECS_SECRETS_MODE: must be 'embedded' or 'aws'");
    expect_error("ECS_SECRETS_LISTEN=127.0.0.1:99999\n", "bad.conf:1: ECS_SECRETS_LISTEN");
    expect_error("DOCKER_HOST=tcp://1.2.3.4:2375\n", "DOCKER_HOST: must be unix:///");
    expect_error("ECS_CLUSTER=\"unterminated\n", "bad.conf:2: unterminated double quote");
    expect_error("just words\n", "bad.conf:1: expected '='");
    expect_error("ECS_SECRETS_ACCOUNT_ID=12345\n", "must be 12 digits");
    expect_error("AWS_REGION=Mars\n", "'Mars' is not an AWS region (like us-east-1)");
    expect_error("AWS_REGION=us-wst-2\n",
                 "'us-wst-2' is not an AWS region; did you mean us-west-2?");
    expect_error("AWS_REGION=eu-west-99\n", "did you mean eu-west-1?");
    expect_error("ECS_SECRETS_SECRET_ACCESS_KEY=s3cr3t\n",
                 "is set but ECS_SECRETS_ACCESS_KEY_ID is not");
}

Test(config, secret_values_never_in_errors_or_print)
{
    const char *f = write_file("s.conf", "ECS_SECRETS_ACCESS_KEY_ID=AKIDEXAMPLE\n"
                                         "ECS_SECRETS_SECRET_ACCESS_KEY=TopSecretValue\n");
    cf_config c;
    es_buf err;
    cr_assert_eq(load(&c, f, NULL, &err, 0, NULL), 0);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    cf_print(&c, m);
    fclose(m);
    cr_assert_null(strstr(text, "TopSecretValue"), "%s", text);
    cr_assert_not_null(strstr(text, "ECS_SECRETS_SECRET_ACCESS_KEY=****"));
    cr_assert_not_null(strstr(text, "ECS_SECRETS_ACCESS_KEY_ID=AKIDEXAMPLE"));
    free(text);
    cf_free(&c);
    es_buf_free(&err);
}

Test(config, missing_explicit_file_is_an_error_default_file_is_not)
{
    cf_config c;
    es_buf err;
    char path[128];
    snprintf(path, sizeof path, "%s/nope.conf", dir);
    cr_assert_neq(load(&c, path, NULL, &err, 0, NULL), 0);
    cr_assert_not_null(strstr(es_buf_cstr(&err), "nope.conf: cannot open"));
    es_buf_free(&err);
}

Test(config, bad_flags)
{
    cf_config c;
    cf_action action;
    es_buf err;
    char *argv1[] = {"x", "--bogus", NULL};
    es_buf_init(&err, 1024);
    cr_assert_neq(cf_load(&c, 2, argv1, NULL, &action, &err), 0);
    cr_assert_not_null(strstr(es_buf_cstr(&err), "unknown option --bogus"));
    es_buf_free(&err);
    char *argv2[] = {"x", "--mode", NULL};
    es_buf_init(&err, 1024);
    cr_assert_neq(cf_load(&c, 2, argv2, NULL, &action, &err), 0);
    cr_assert_not_null(strstr(es_buf_cstr(&err), "needs a value"), "%s", es_buf_cstr(&err));
    es_buf_free(&err);
    char *argv3[] = {"x", "--mode", "aws", "--check-config", NULL};
    es_buf_init(&err, 1024);
    cr_assert_eq(cf_load(&c, 4, argv3, NULL, &action, &err), 0, "%s", es_buf_cstr(&err));
    cr_assert_eq(action, CF_ACTION_CHECK);
    cr_assert_eq(c.mode, CF_MODE_AWS);
    cf_free(&c);
    es_buf_free(&err);
}

static int count_assign(const char *k, const char *v, unsigned line, void *arg)
{
    (void)k;
    (void)v;
    (void)line;
    (*(int *)arg)++;
    return 0;
}

Test(config, limits_on_lines_and_nul)
{
    char err[128];
    unsigned line = 0;
    int n = 0;
    static char big[CF_VALUE_MAX + 100];
    memcpy(big, "K=", 2);
    memset(big + 2, 'v', sizeof big - 3);
    big[sizeof big - 1] = '\0';
    cr_assert_eq(cf_parse_text(big, strlen(big), count_assign, &n, &line, err, sizeof err),
                 -EINVAL);
    cr_assert_not_null(strstr(err, "value longer than"));
    const char nul[] = "K=a\0b\n";
    cr_assert_eq(cf_parse_text(nul, sizeof nul - 1, count_assign, &n, &line, err, sizeof err),
                 -EINVAL);
    cr_assert_not_null(strstr(err, "NUL"));
    n = 0;
    const char ok[] = "A=1\n\n# c\nB=2\\\n3\nC=\n";
    cr_assert_eq(cf_parse_text(ok, sizeof ok - 1, count_assign, &n, &line, err, sizeof err), 0);
    cr_assert_eq(n, 3);
}

Test(config, durations)
{
    long s = 0;
    cr_assert_eq(cf_parse_duration("90", &s), 0);
    cr_assert_eq(s, 90);
    cr_assert_eq(cf_parse_duration("15m", &s), 0);
    cr_assert_eq(s, 900);
    cr_assert_eq(cf_parse_duration("3h", &s), 0);
    cr_assert_eq(s, 10800);
    cr_assert_neq(cf_parse_duration("3d", &s), 0);
    cr_assert_neq(cf_parse_duration("h", &s), 0);
    cr_assert_neq(cf_parse_duration("-5s", &s), 0);
    cr_assert_neq(cf_parse_duration("5mm", &s), 0);
    cr_assert_neq(cf_parse_duration("1000h", &s), 0, "past 30 days");
    expect_error("ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION=soon\n",
                 "ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION: must be a duration");
}

/* Every duration option takes the same units; the drift interval's default
 * depends on the mode and is made effective, so --check-config shows it. */
Test(config, drift_interval_takes_durations_and_shows_its_effective_default)
{
    const char *f = write_file("empty.conf", "");
    cf_config c;
    es_buf err;
    const char *five_min[] = {"--drift-interval", "5m"};
    cr_assert_eq(load(&c, f, NULL, &err, 2, five_min), 0, "%s", es_buf_cstr(&err));
    long s = 0;
    cr_assert_eq(cf_parse_duration(cf_get(&c, CF_DRIFT_INTERVAL), &s), 0);
    cr_assert_eq(s, 300);
    cf_free(&c);
    es_buf_free(&err);

    cr_assert_eq(load(&c, f, NULL, &err, 0, NULL), 0, "%s", es_buf_cstr(&err));
    cr_assert_str_eq(cf_get(&c, CF_DRIFT_INTERVAL), "60", "embedded mode's default");
    char *out = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&out, &len);
    cf_print(&c, m);
    fclose(m);
    cr_assert_not_null(strstr(out, "ECS_SECRETS_DRIFT_INTERVAL=60\t# default (embedded mode)"),
                       "%s", out);
    cr_assert_null(strstr(out, "ECS_SECRETS_DRIFT_INTERVAL is not set"));
    free(out);
    cf_free(&c);
    es_buf_free(&err);

    const char *aws[] = {"--mode", "aws"};
    cr_assert_eq(load(&c, f, NULL, &err, 2, aws), 0, "%s", es_buf_cstr(&err));
    cr_assert_str_eq(cf_get(&c, CF_DRIFT_INTERVAL), "0", "off in aws mode");
    cf_free(&c);
    es_buf_free(&err);

    expect_error("ECS_SECRETS_DRIFT_INTERVAL=2d\n",
                 "ECS_SECRETS_DRIFT_INTERVAL: must be 0 (off) or "
                 "a duration");
    expect_error("ECS_SECRETS_DRIFT_INTERVAL=25h\n", "at most 1 day");
}

/* Issue 17: a listener off loopback serves secret values only over TLS.
 * Loopback: 127.0.0.0/8, ::1 (and ::ffff:127.x), the name localhost. */
Test(config, loopback_hosts)
{
    const char *yes[] = {"127.0.0.1",        "127.0.0.2", "127.255.255.254", "::1",
                         "::ffff:127.0.0.1", "localhost", "0:0:0:0:0:0:0:1"};
    const char *no[] = {"0.0.0.0",           "::",  "10.0.0.1",        "192.168.1.2",
                        "128.0.0.1",         "::2", "::ffff:10.0.0.1", "myhost",
                        "localhost.example", "",    "127.0.0.1x"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        cr_assert(cf_host_is_loopback(yes[i]), "%s", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        cr_assert_not(cf_host_is_loopback(no[i]), "%s", no[i]);
}

Test(config, listener_off_loopback_needs_tls_cert_and_key)
{
    /* refused without TLS, naming where the address came from and why */
    expect_error("ECS_SECRETS_LISTEN=0.0.0.0:4577\n",
                 "bad.conf:1: ECS_SECRETS_LISTEN 0.0.0.0:4577 is not loopback: it needs "
                 "ECS_SECRETS_TLS_CERT and ECS_SECRETS_TLS_KEY (answers carry secret values)");
    expect_error("ECS_SECRETS_LISTEN=[::]:4577\n", "ECS_SECRETS_LISTEN [::]:4577 is not loopback");
    expect_error("ECS_SECRETS_LISTEN=10.1.2.3:80\n",
                 "ECS_SECRETS_LISTEN 10.1.2.3:80 is not loopback");
    expect_error("ECS_SECRETS_LISTEN=agent.example:80\n", "is not loopback");
    /* one of the two is refused too, wherever the listener is */
    expect_error("ECS_SECRETS_TLS_CERT=/etc/tls/cert.pem\n",
                 "bad.conf:1: ECS_SECRETS_TLS_CERT is set but ECS_SECRETS_TLS_KEY is not: the "
                 "listener needs both for TLS");
    expect_error("ECS_SECRETS_LISTEN=0.0.0.0:4577\nECS_SECRETS_TLS_KEY=/etc/tls/key.pem\n",
                 "bad.conf:2: ECS_SECRETS_TLS_KEY is set but ECS_SECRETS_TLS_CERT is not");
    expect_error("ECS_SECRETS_TLS_CERT=cert.pem\nECS_SECRETS_TLS_KEY=/k.pem\n",
                 "bad.conf:1: ECS_SECRETS_TLS_CERT: must be an absolute path");
    expect_error("ECS_SECRETS_CA_FILE=ca.pem\n", "ECS_SECRETS_CA_FILE: must be an absolute path");

    /* loopback without TLS: as before; other loopback addresses too */
    const char *lo[] = {"127.0.0.1:4577", "127.0.0.2:4577", "[::1]:4577", "localhost:4577"};
    cf_config c;
    es_buf err;
    for (size_t i = 0; i < sizeof lo / sizeof lo[0]; i++) {
        const char *flags[] = {"--listen", lo[i]};
        cr_assert_eq(load(&c, "/dev/null", NULL, &err, 2, flags), 0, "%s: %s", lo[i],
                     es_buf_cstr(&err));
        cr_assert_not(c.listen_tls);
        cf_free(&c);
        es_buf_free(&err);
    }

    /* both given: accepted anywhere (the files are loaded at start, not here) */
    const char *f = write_file("tls.conf", "ECS_SECRETS_LISTEN=0.0.0.0:4577\n"
                                           "ECS_SECRETS_TLS_CERT=/etc/tls/cert.pem\n");
    char *envp[] = {"ECS_SECRETS_TLS_KEY=/etc/tls/key.pem", NULL};
    cr_assert_eq(load(&c, f, envp, &err, 0, NULL), 0, "%s", es_buf_cstr(&err));
    cr_assert(c.listen_tls);
    cr_assert_str_eq(c.listen_host, "0.0.0.0");
    cr_assert_str_eq(cf_get(&c, CF_TLS_KEY), "/etc/tls/key.pem");
    cr_assert_str_eq(cf_source(&c, CF_TLS_KEY), "environment");
    cf_free(&c);
    es_buf_free(&err);
    const char *flags[] = {"--listen",  "[::]:443", "--tls-cert", "/c.pem",
                           "--tls-key", "/k.pem",   "--ca-file",  "/ca.pem"};
    cr_assert_eq(load(&c, "/dev/null", NULL, &err, 8, flags), 0, "%s", es_buf_cstr(&err));
    cr_assert(c.listen_tls);
    cr_assert_str_eq(cf_get(&c, CF_CA_FILE), "/ca.pem");
    cr_assert_str_eq(cf_source(&c, CF_TLS_CERT), "--tls-cert");
    cf_free(&c);
    es_buf_free(&err);
    /* the flag's name in the error when the flag set the address */
    const char *bare[] = {"--listen", "0.0.0.0:9"};
    cr_assert_neq(load(&c, "/dev/null", NULL, &err, 2, bare), 0);
    cr_assert_not_null(strstr(es_buf_cstr(&err), "--listen: ECS_SECRETS_LISTEN 0.0.0.0:9 is not "
                                                 "loopback"),
                       "%s", es_buf_cstr(&err));
    es_buf_free(&err);
}

/* --help reads the table: the new keys and flags are there */
Test(config, help_lists_tls_keys)
{
    char *out = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&out, &len);
    cf_print_help(m, "ecs-secrets-agent");
    fclose(m);
    cr_assert_not_null(strstr(out, "--tls-cert FILE"), "%s", out);
    cr_assert_not_null(strstr(out, "key ECS_SECRETS_TLS_CERT"), "%s", out);
    cr_assert_not_null(strstr(out, "--tls-key FILE"), "%s", out);
    cr_assert_not_null(strstr(out, "key ECS_SECRETS_TLS_KEY"), "%s", out);
    cr_assert_not_null(strstr(out, "--ca-file FILE"), "%s", out);
    cr_assert_not_null(strstr(out, "key ECS_SECRETS_CA_FILE"), "%s", out);
    free(out);
}

Test(config, docker_proxy_keys)
{
    expect_error("ECS_SECRETS_DOCKER_PROXY=docker.sock\n",
                 "bad.conf:1: ECS_SECRETS_DOCKER_PROXY: must be an absolute path");
    expect_error("ECS_SECRETS_DOCKER_PROXY=/run/"
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\n",
                 "ECS_SECRETS_DOCKER_PROXY: socket path longer than 107 bytes");
    expect_error("ECS_SECRETS_DOCKER_PROXY_GROUP=Docker Users\n",
                 "ECS_SECRETS_DOCKER_PROXY_GROUP: must be a group name or a numeric gid");
    cf_config c;
    es_buf err;
    const char *ok[] = {"docker", "ecs-secrets-agent", "_grp", "998", "machine$"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        const char *flags[] = {"--docker-proxy", "/run/ecs-secrets-agent/docker.sock",
                               "--docker-proxy-group", ok[i]};
        cr_assert_eq(load(&c, "/dev/null", NULL, &err, 4, flags), 0, "%s: %s", ok[i],
                     err.data ? err.data : "");
        cr_assert_str_eq(cf_get(&c, CF_DOCKER_PROXY_GROUP), ok[i]);
        cf_free(&c);
        es_buf_free(&err);
    }
    /* unset by default: the socket is off */
    cr_assert_eq(load(&c, "/dev/null", NULL, &err, 0, NULL), 0);
    cr_assert_null(cf_get(&c, CF_DOCKER_PROXY));
    cr_assert_str_eq(cf_get(&c, CF_DOCKER_PROXY_GROUP), "root");
    cf_free(&c);
    es_buf_free(&err);
}

Test(config, docker_roles_key)
{
    expect_error("ECS_SECRETS_DOCKER_ROLES=1000=arn:aws:iam::123456789012:role/app\n",
                 "bad.conf:1: ECS_SECRETS_DOCKER_ROLES: entry '1000=arn:aws:iam::123456789012:"
                 "role/app': must begin with uid:N= or gid:N=");
    expect_error("ECS_SECRETS_DOCKER_ROLES=uid:alice=arn:aws:iam::123456789012:role/app\n",
                 "the uid or gid must be a number followed by '='");
    expect_error("ECS_SECRETS_DOCKER_ROLES=uid:99999999999=arn:aws:iam::123456789012:role/a\n",
                 "the uid or gid must be a number");
    expect_error("ECS_SECRETS_DOCKER_ROLES=uid:4294967295=arn:aws:iam::123456789012:role/a\n",
                 "the uid or gid is out of range");
    expect_error("ECS_SECRETS_DOCKER_ROLES=uid:1000=\n", "names no ARN after '='");
    expect_error("ECS_SECRETS_DOCKER_ROLES=uid:1000=arn:aws:s3:::bucket\n",
                 "not an IAM ARN (arn:aws:iam::ACCOUNT:...: no region)");
    expect_error("ECS_SECRETS_DOCKER_ROLES=uid:1000=arn:aws:iam::12345:role/a\n",
                 "the account is not 12 digits");
    expect_error("ECS_SECRETS_DOCKER_ROLES=uid:1000=arn:aws:iam::123456789012:group/a\n",
                 "names neither a role (...:role/NAME) nor a user (...:user/NAME)");
    expect_error("ECS_SECRETS_DOCKER_ROLES=uid:1000=arn:aws:iam::123456789012:user/a*\n",
                 "a user ARN may not hold '*' or '?'");
    expect_error("ECS_SECRETS_DOCKER_ROLES=uid:1000=arn:aws:iam::123456789012:role/[ab]\n",
                 "one of [ ] \\ =");
    expect_error("ECS_SECRETS_MODE=aws\nECS_SECRETS_DOCKER_ROLES=uid:1000=arn:aws:iam::"
                 "123456789012:user/alice\n",
                 "ECS_SECRETS_DOCKER_ROLES: entry 'uid:1000=arn:aws:iam::123456789012:user/alice': "
                 "a user ARN maps to the embedded IAM, which aws mode does not have");
    /* 257 ARNs (past a file's value length, so asked of the parser itself) */
    es_buf many;
    es_buf_init(&many, 1u << 20);
    es_buf_append_str(&many, "uid:1=");
    for (int i = 0; i < 257; i++)
        es_buf_printf(&many, "%sarn:aws:iam::1?:role/r", i ? "," : "");
    cf_docker_rule *mr = NULL;
    size_t mn = 0;
    char mwhy[256];
    cr_assert_eq(cf_docker_roles_parse(es_buf_cstr(&many), true, &mr, &mn, mwhy, sizeof mwhy),
                 -EINVAL);
    cr_assert(strstr(mwhy, "more than 256 ARNs in all"), "%s", mwhy);
    cr_assert_null(mr);
    es_buf_free(&many);

    cf_config c;
    es_buf err;
    const char *ok = " uid:1000 = arn:aws:iam::123456789012:role/app-* , "
                     "arn:aws:iam::*:role/ci-?; ;gid:2000=arn:aws:iam::123456789012:user/alice;";
    const char *flags[] = {"--docker-roles", ok};
    cr_assert_eq(load(&c, "/dev/null", NULL, &err, 2, flags), 0, "%s", es_buf_cstr(&err));
    cf_free(&c);
    es_buf_free(&err);

    cf_docker_rule *r = NULL;
    size_t n = 0;
    char why[256];
    cr_assert_eq(cf_docker_roles_parse(ok, true, &r, &n, why, sizeof why), 0, "%s", why);
    cr_assert_eq(n, 3);
    cr_assert(!r[0].gid && r[0].id == 1000 && !r[0].principal);
    cr_assert_str_eq(r[0].arn, "arn:aws:iam::123456789012:role/app-*");
    cr_assert_str_eq(r[1].arn, "arn:aws:iam::*:role/ci-?");
    cr_assert(r[2].gid && r[2].id == 2000 && r[2].principal);
    cr_assert_str_eq(r[2].arn, "arn:aws:iam::123456789012:user/alice");
    cf_docker_rules_free(r, n);
    /* empty: no rule, root only */
    cr_assert_eq(cf_docker_roles_parse(" ; ", true, &r, &n, why, sizeof why), 0);
    cr_assert_eq(n, 0);
    cr_assert_null(r);
}

/* ECS_SECRETS_ROTATION_TIME_SCALE: a whole number 1..14400, embedded mode
 * only, shown by --check-config. */
Test(config, rotation_time_scale)
{
    const char *bad[] = {"0", "-3", "1.5", "14401", "99999999999999999999", "", "ten", "12 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "ECS_SECRETS_ROTATION_TIME_SCALE='%s'\n", bad[i]);
        expect_error(text, "bad.conf:1: ECS_SECRETS_ROTATION_TIME_SCALE: must be a whole number "
                           "from 1 (real time) to 14400 (rate(4 hours) every second)");
    }
    expect_error("ECS_SECRETS_MODE=aws\nECS_SECRETS_ROTATION_TIME_SCALE=1440\n",
                 "bad.conf:2: ECS_SECRETS_ROTATION_TIME_SCALE=1440 applies to the embedded "
                 "Secrets Manager only: in aws mode rotations run on AWS's clock");
    cf_config c;
    es_buf err;
    cr_assert_eq(load(&c, "/dev/null", NULL, &err, 0, NULL), 0);
    cr_assert_eq(c.rotation_time_scale, 1);
    cf_free(&c);
    es_buf_free(&err);
    /* aws mode with the default is fine */
    const char *aws[] = {"--mode", "aws"};
    cr_assert_eq(load(&c, "/dev/null", NULL, &err, 2, aws), 0, "%s", es_buf_cstr(&err));
    cf_free(&c);
    es_buf_free(&err);
    const char *fast[] = {"--rotation-time-scale", "1440"};
    cr_assert_eq(load(&c, "/dev/null", NULL, &err, 2, fast), 0, "%s", es_buf_cstr(&err));
    cr_assert_eq(c.rotation_time_scale, 1440);
    char *out = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&out, &len);
    cf_print(&c, m);
    fclose(m);
    cr_assert_not_null(strstr(out, "ECS_SECRETS_ROTATION_TIME_SCALE=1440\t# --rotation-time-scale"),
                       "%s", out);
    free(out);
    cf_free(&c);
    es_buf_free(&err);
}

/* Issue 21: the container endpoints' address: loopback or ECS's link-local one (the SDKs send
 * the task's token over plain HTTP to no other), port 0 for any free one, or off. */
Test(config, task_endpoint)
{
    const char *ok[][3] = {{"127.0.0.1:0", "127.0.0.1", "0"},
                           {"169.254.170.2:51679", "169.254.170.2", "51679"},
                           {"[::1]:8080", "::1", "8080"}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char line[128];
        snprintf(line, sizeof line, "ECS_SECRETS_TASK_ENDPOINT=%s\n", ok[i][0]);
        const char *f = write_file("te.conf", line);
        cf_config c;
        es_buf err;
        cr_assert_eq(load(&c, f, NULL, &err, 0, NULL), 0, "%s: %s", ok[i][0], es_buf_cstr(&err));
        cr_assert_str_eq(c.task_endpoint_host, ok[i][1]);
        cr_assert_eq(c.task_endpoint_port, strtol(ok[i][2], NULL, 10));
        cf_free(&c);
        es_buf_free(&err);
    }
    const char *f = write_file("te.conf", "ECS_SECRETS_TASK_ENDPOINT=off\n");
    cf_config c;
    es_buf err;
    cr_assert_eq(load(&c, f, NULL, &err, 0, NULL), 0, "%s", es_buf_cstr(&err));
    cr_assert_null(c.task_endpoint_host);
    cf_free(&c);
    es_buf_free(&err);
    expect_error("ECS_SECRETS_TASK_ENDPOINT=10.0.0.1:80\n",
                 "bad.conf:1: ECS_SECRETS_TASK_ENDPOINT: the host must be loopback or "
                 "169.254.170.2");
    expect_error("ECS_SECRETS_TASK_ENDPOINT=0.0.0.0:80\n", "the host must be loopback");
    expect_error("ECS_SECRETS_TASK_ENDPOINT=127.0.0.1\n", "must be HOST:PORT");
}

/* Issue 20: the embedded ECR's local registry: HOST[:PORT] as an image name's registry, its
 * credentials file absolute; both or neither; embedded mode only. */
Test(config, ecr_registry_keys)
{
    const char *bad[] = {"",       "registry",          "a b:5000", "host:",
                         "host:0", "host:65536",        "host:12x", "host:123456",
                         ":5000",  "https://host:5000", "host/x:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[128];
        snprintf(text, sizeof text,
                 "ECS_SECRETS_ECR_REGISTRY='%s'\nECS_SECRETS_ECR_CREDENTIALS_FILE=/c\n", bad[i]);
        expect_error(text, "bad.conf:1: ECS_SECRETS_ECR_REGISTRY: must be HOST[:PORT] as an "
                           "image name's registry");
    }
    expect_error("ECS_SECRETS_ECR_REGISTRY=127.0.0.1:5000\nECS_SECRETS_ECR_CREDENTIALS_FILE=c\n",
                 "bad.conf:2: ECS_SECRETS_ECR_CREDENTIALS_FILE: must be an absolute path");
    expect_error("ECS_SECRETS_ECR_REGISTRY=127.0.0.1:5000\n",
                 "bad.conf:1: ECS_SECRETS_ECR_REGISTRY is set but ECS_SECRETS_ECR_CREDENTIALS_FILE "
                 "is not: the local ECR needs both");
    expect_error("ECS_SECRETS_ECR_CREDENTIALS_FILE=/c\n",
                 "bad.conf:1: ECS_SECRETS_ECR_CREDENTIALS_FILE is set but ECS_SECRETS_ECR_REGISTRY "
                 "is not");
    expect_error("ECS_SECRETS_MODE=aws\nECS_SECRETS_ECR_REGISTRY=localhost:5000\n"
                 "ECS_SECRETS_ECR_CREDENTIALS_FILE=/c\n",
                 "bad.conf:2: ECS_SECRETS_ECR_REGISTRY applies to the embedded ECR only");
    const char *good[] = {"127.0.0.1:5000", "localhost", "localhost:1", "registry.lan",
                          "Reg-1.example.com:65535"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char text[160];
        snprintf(text, sizeof text,
                 "ECS_SECRETS_ECR_REGISTRY=%s\nECS_SECRETS_ECR_CREDENTIALS_FILE=/etc/c\n", good[i]);
        cf_config c;
        es_buf err;
        cr_assert_eq(load(&c, write_file("ecr.conf", text), NULL, &err, 0, NULL), 0, "%s: %s",
                     good[i], es_buf_cstr(&err));
        cr_assert_str_eq(cf_get(&c, CF_ECR_REGISTRY), good[i]);
        cr_assert_str_eq(cf_get(&c, CF_ECR_CREDENTIALS_FILE), "/etc/c");
        cf_free(&c);
        es_buf_free(&err);
    }
}

/* Issue 22: how long a DescribeTasks of a moving task may wait for the move (ms, 0-20000). */
Test(config, describe_wait_ms)
{
    const char *bad[] = {"-1", "20001", "1.5", "05", "", "fifty", "50ms", "99999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "ECS_SECRETS_DESCRIBE_WAIT_MS='%s'\n", bad[i]);
        expect_error(text, "bad.conf:1: ECS_SECRETS_DESCRIBE_WAIT_MS: must be a whole number of "
                           "milliseconds from 0 (off) to 20000");
    }
    cf_config c;
    es_buf err;
    cr_assert_eq(load(&c, "/dev/null", NULL, &err, 0, NULL), 0);
    cr_assert_str_eq(cf_get(&c, CF_DESCRIBE_WAIT_MS), "50", "the default");
    cf_free(&c);
    es_buf_free(&err);
    const char *good[] = {"0", "1", "20000"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        const char *flag[] = {"--describe-wait-ms", good[i]};
        cr_assert_eq(load(&c, "/dev/null", NULL, &err, 2, flag), 0, "%s", es_buf_cstr(&err));
        cr_assert_str_eq(cf_get(&c, CF_DESCRIBE_WAIT_MS), good[i]);
        cf_free(&c);
        es_buf_free(&err);
    }
}

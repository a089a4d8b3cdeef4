/* The container endpoints' pure parts (agent/endpoints/shapes.h, reachability): the token
 * check, the answers' shapes, the refresh timing with a given clock. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "agent/endpoints/endpoints.h"
#include "agent/endpoints/shapes.h"
#include "common/alloc.h"
#include "common/json.h"

static es_json *parse(const es_buf *b)
{
    es_json *j = NULL;
    char err[128];
    cr_assert_eq(es_json_parse(b->data, b->len, &es_json_default_limits, &j, err, sizeof err), 0,
                 "%s", err);
    return j;
}

Test(endpoints, tokens_are_random_hex_of_256_bits)
{
    char a[AG_EP_TOKEN_HEX + 1], b[AG_EP_TOKEN_HEX + 1];
    cr_assert_eq(ag_ep_random_hex(a, AG_EP_TOKEN_BYTES), 0);
    cr_assert_eq(ag_ep_random_hex(b, AG_EP_TOKEN_BYTES), 0);
    cr_assert_eq(strlen(a), 64);
    cr_assert_eq(strspn(a, "0123456789abcdef"), 64);
    cr_assert_str_neq(a, b);
}

Test(endpoints, a_token_matches_only_itself_whole)
{
    char t[AG_EP_TOKEN_HEX + 1], other[AG_EP_TOKEN_HEX + 1], longer[AG_EP_TOKEN_HEX + 2];
    cr_assert_eq(ag_ep_random_hex(t, AG_EP_TOKEN_BYTES), 0);
    cr_assert(ag_ep_token_matches(t, t));
    memcpy(other, t, sizeof other);
    other[AG_EP_TOKEN_HEX - 1] = other[AG_EP_TOKEN_HEX - 1] == 'a' ? 'b' : 'a';
    cr_assert_not(ag_ep_token_matches(other, t), "the last character differs");
    cr_assert_not(ag_ep_token_matches(NULL, t));
    cr_assert_not(ag_ep_token_matches("", t));
    char prefix[AG_EP_TOKEN_HEX];
    memcpy(prefix, t, AG_EP_TOKEN_HEX - 1);
    prefix[AG_EP_TOKEN_HEX - 1] = '\0';
    cr_assert_not(ag_ep_token_matches(prefix, t), "a prefix");
    snprintf(longer, sizeof longer, "%sx", t);
    cr_assert_not(ag_ep_token_matches(longer, t), "the token and more");
}

Test(endpoints, refresh_timing)
{
    /* none yet: fetch; in flight: wait */
    cr_assert(ag_ep_refresh_due(1000, false, 0, 1200, false, 0));
    cr_assert_not(ag_ep_refresh_due(1000, false, 0, 1200, true, 0));
    /* an hour's credentials: not before 20 minutes are left, then at once */
    time_t exp = 1000 + 3600;
    cr_assert_not(ag_ep_refresh_due(1000, true, exp, 1200, false, 0));
    cr_assert_not(ag_ep_refresh_due(exp - 1200, true, exp, 1200, false, 0));
    cr_assert(ag_ep_refresh_due(exp - 1199, true, exp, 1200, false, 0));
    /* still ahead of the SDKs, which fetch again when 15 minutes are left */
    cr_assert(ag_ep_refresh_due(exp - 15 * 60, true, exp, 1200, false, 0));
    /* after a failure, not before the retry time */
    cr_assert_not(ag_ep_refresh_due(exp - 100, true, exp, 1200, false, exp - 90));
    cr_assert(ag_ep_refresh_due(exp - 90, true, exp, 1200, false, exp - 90));
}

Test(endpoints, credentials_in_the_sdks_shape)
{
    es_buf b;
    es_buf_init(&b, 4096);
    es_jw w;
    es_jw_init(&w, &b);
    cr_assert_eq(ag_ep_write_credentials(&w, "ASIAEXAMPLE", "sekrit", "tok", 1796486400,
                                         "arn:aws:iam::123456789012:role/app"),
                 0);
    es_json *j = parse(&b);
    cr_assert_str_eq(es_json_get_str(j, "AccessKeyId"), "ASIAEXAMPLE");
    cr_assert_str_eq(es_json_get_str(j, "SecretAccessKey"), "sekrit");
    cr_assert_str_eq(es_json_get_str(j, "Token"), "tok");
    cr_assert_str_eq(es_json_get_str(j, "Expiration"), "2026-12-05T16:00:00Z");
    cr_assert_str_eq(es_json_get_str(j, "RoleArn"), "arn:aws:iam::123456789012:role/app");
    cr_assert_eq(es_json_len(j), 5);
    es_json_free_secret(j);
    es_buf_free_secret(&b);
}

Test(endpoints, errors_in_ecs_shape)
{
    es_buf b;
    es_buf_init(&b, 4096);
    es_jw w;
    es_jw_init(&w, &b);
    cr_assert_eq(ag_ep_write_error(&w, "InvalidTokenInRequest", "no such task"), 0);
    es_json *j = parse(&b);
    cr_assert_str_eq(es_json_get_str(j, "code"), "InvalidTokenInRequest");
    cr_assert_str_eq(es_json_get_str(j, "message"), "no such task");
    es_json_free(j);
    es_buf_free(&b);
}

static const ag_td_ctx tctx = {.region = "us-east-1", .account = "123456789012"};

Test(endpoints, metadata_v4_shapes_carry_no_env_or_secret)
{
    const char *body = "{\"family\":\"web\",\"networkMode\":\"host\","
                       "\"taskRoleArn\":\"arn:aws:iam::123456789012:role/app\","
                       "\"executionRoleArn\":\"arn:aws:iam::123456789012:role/exec\","
                       "\"containerDefinitions\":[{\"name\":\"app\",\"image\":\"busybox\","
                       "\"environment\":[{\"name\":\"PLAIN\",\"value\":\"visible-env\"}],"
                       "\"secrets\":[{\"name\":\"DB\",\"valueFrom\":\"/db/pass\"}],"
                       "\"dockerLabels\":{\"team\":\"blue\"}}]}";
    ag_taskdef *td = NULL;
    ag_td_error e;
    cr_assert_eq(ag_taskdef_parse(body, strlen(body), &tctx, &td, &e), 0, "%s", e.message);
    ag_task *t = NULL;
    cr_assert_eq(ag_task_create("us-east-1", "123456789012", "prod", "web", 3, NULL, NULL, NULL,
                                1796486400, &t),
                 0);
    cr_assert_eq(ag_task_add_container(t, "app", "busybox"), 0);
    cr_assert_eq(ag_task_container_update(t, "app", "d0cker1d", "RUNNING", NULL, NULL), 0);
    t->containers[0].docker_name = es_strdup("ecs-web-3-app-0123456789abcdef");
    ag_ep_meta_ctx m = {.t = t, .td = td, .az = "us-east-1a", .network_mode = "host"};
    es_buf b;
    es_buf_init(&b, 65536);
    es_jw w;
    es_jw_init(&w, &b);
    ag_ep_write_task(&w, &m);
    cr_assert_eq(es_jw_finish(&w), 0);
    cr_assert_null(strstr(b.data, "visible-env"), "no Env in the metadata");
    cr_assert_null(strstr(b.data, "/db/pass"), "no secret reference either");
    es_json *j = parse(&b);
    cr_assert_str_eq(es_json_get_str(j, "Cluster"), "prod");
    cr_assert_str_eq(es_json_get_str(j, "TaskARN"), t->arn);
    cr_assert_str_eq(es_json_get_str(j, "Family"), "web");
    cr_assert_str_eq(es_json_get_str(j, "Revision"), "3");
    cr_assert_str_eq(es_json_get_str(j, "DesiredStatus"), "RUNNING");
    cr_assert_str_eq(es_json_get_str(j, "KnownStatus"), "PROVISIONING");
    cr_assert_str_eq(es_json_get_str(j, "LaunchType"), "EC2");
    cr_assert_str_eq(es_json_get_str(j, "AvailabilityZone"), "us-east-1a");
    cr_assert_str_eq(es_json_get_str(j, "CreatedAt"), "2026-12-05T16:00:00Z");
    const es_json *cs = es_json_get(j, "Containers");
    cr_assert_eq(es_json_len(cs), 1);
    const es_json *c = es_json_at(cs, 0);
    cr_assert_str_eq(es_json_get_str(c, "DockerId"), "d0cker1d");
    cr_assert_str_eq(es_json_get_str(c, "Name"), "app");
    cr_assert_str_eq(es_json_get_str(c, "DockerName"), "ecs-web-3-app-0123456789abcdef");
    cr_assert_str_eq(es_json_get_str(c, "Image"), "busybox");
    cr_assert_str_eq(es_json_get_str(c, "KnownStatus"), "RUNNING");
    cr_assert_str_eq(es_json_get_str(c, "Type"), "NORMAL");
    const char *carn = es_json_get_str(c, "ContainerARN");
    cr_assert(carn && strncmp(carn, "arn:aws:ecs:us-east-1:123456789012:container/prod/", 50) == 0,
              "%s", carn);
    es_json_free(j);
    es_buf_free(&b);
    ag_task_free(t);
    ag_taskdef_free(td);
}

/* Issue 20: with a restartPolicy, a container's metadata counts its
 * restarts (RestartCount, as ECS's agent shows it); without, no member. */
Test(endpoints, metadata_v4_restart_count)
{
    const char *body =
        "{\"family\":\"web\",\"containerDefinitions\":["
        "{\"name\":\"app\",\"image\":\"busybox\",\"restartPolicy\":{\"enabled\":true}},"
        "{\"name\":\"side\",\"image\":\"busybox\"}]}";
    ag_taskdef *td = NULL;
    ag_td_error e;
    cr_assert_eq(ag_taskdef_parse(body, strlen(body), &tctx, &td, &e), 0, "%s", e.message);
    ag_task *t = NULL;
    cr_assert_eq(ag_task_create("us-east-1", "123456789012", "prod", "web", 1, NULL, NULL, NULL,
                                1796486400, &t),
                 0);
    cr_assert_eq(ag_task_add_container(t, "app", "busybox"), 0);
    cr_assert_eq(ag_task_add_container(t, "side", "busybox"), 0);
    t->containers[0].restart_count = 2;
    ag_ep_meta_ctx m = {.t = t, .td = td, .az = "us-east-1a", .network_mode = "host"};
    for (size_t i = 0; i < 2; i++) {
        es_buf b;
        es_buf_init(&b, 65536);
        es_jw w;
        es_jw_init(&w, &b);
        ag_ep_write_container(&w, &m, i);
        cr_assert_eq(es_jw_finish(&w), 0);
        es_json *j = parse(&b);
        int64_t n = -1;
        const es_json *rc = es_json_get(j, "RestartCount");
        if (i == 0)
            cr_assert(rc && es_json_as_int64(rc, &n) && n == 2, "app's RestartCount");
        else
            cr_assert_null(rc, "no RestartCount without a policy");
        es_json_free(j);
        es_buf_free(&b);
    }
    ag_task_free(t);
    ag_taskdef_free(td);
}

Test(endpoints, which_network_modes_reach_the_endpoint)
{
    char why[512];
    cr_assert(ag_endpoints_reachable("127.0.0.1", "host", why, sizeof why));
    cr_assert_not(ag_endpoints_reachable("127.0.0.1", "none", why, sizeof why));
    cr_assert(strstr(why, "none"), "%s", why);
    cr_assert_not(ag_endpoints_reachable("127.0.0.1", "bridge", why, sizeof why));
    cr_assert(strstr(why, "169.254.170.2"), "%s", why);
    cr_assert_not(ag_endpoints_reachable("127.0.0.1", NULL, why, sizeof why), "bridge: default");
    cr_assert(ag_endpoints_reachable(AG_EP_LINK_LOCAL, "bridge", why, sizeof why));
    cr_assert(ag_endpoints_reachable(AG_EP_LINK_LOCAL, "host", why, sizeof why));
    cr_assert(ag_endpoints_host_ok("127.0.0.1") && ag_endpoints_host_ok("::1") &&
              ag_endpoints_host_ok(AG_EP_LINK_LOCAL));
    cr_assert_not(ag_endpoints_host_ok("0.0.0.0"));
    cr_assert_not(ag_endpoints_host_ok("10.0.0.1"));
    cr_assert_not(ag_endpoints_host_ok("127.evil.example"), "a name is not an address");
}

Test(endpoints, metadata_paths)
{
    char id[AG_EP_ID_HEX + 1];
    bool task = true;
    cr_assert(ag_ep_parse_meta_path("/v4/0123456789abcdef0123456789abcdef", id, &task));
    cr_assert_str_eq(id, "0123456789abcdef0123456789abcdef");
    cr_assert_not(task);
    cr_assert(ag_ep_parse_meta_path("/v4/0123456789abcdef0123456789abcdef/task", id, &task));
    cr_assert(task);
    cr_assert_not(ag_ep_parse_meta_path("/v4/0123456789abcdef0123456789abcde", id, &task));
    cr_assert_not(ag_ep_parse_meta_path("/v4/0123456789abcdef0123456789abcdef0", id, &task));
    cr_assert_not(ag_ep_parse_meta_path("/v4/0123456789ABCDEF0123456789abcdef", id, &task));
    cr_assert_not(ag_ep_parse_meta_path("/v4/0123456789abcdef0123456789abcdef/stats", id, &task));
    cr_assert_not(ag_ep_parse_meta_path("/v4/0123456789abcdef0123456789abcdef/task/", id, &task));
    cr_assert_not(ag_ep_parse_meta_path("/v3/0123456789abcdef0123456789abcdef", id, &task));
}

#define LOGS_ID "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

/* Docker's awslogs driver asks http://169.254.170.2 followed by the option's
 * value; the value carries the endpoint's authority. */
Test(endpoints, awslogs_credentials_paths_and_uris)
{
    char id[AG_EP_TOKEN_HEX + 1];
    cr_assert(ag_ep_parse_logs_path("/v2/credentials/" LOGS_ID, id));
    cr_assert_str_eq(id, LOGS_ID);
    cr_assert_not(ag_ep_parse_logs_path("/v2/credentials/" LOGS_ID "0", id), "too long");
    cr_assert_not(ag_ep_parse_logs_path("/v2/credentials/" LOGS_ID "/", id));
    cr_assert_not(ag_ep_parse_logs_path("/v2/credentials/" LOGS_ID "?x=1", id));
    cr_assert_not(ag_ep_parse_logs_path("/v2/credentials/0011", id), "too short");
    cr_assert_not(ag_ep_parse_logs_path("/v2/credentials/", id));
    cr_assert_not(ag_ep_parse_logs_path("/v2/credentials", id));
    cr_assert_not(
        ag_ep_parse_logs_path(
            "/v2/credentials/00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff", id),
        "upper case is not ours");
    cr_assert_not(ag_ep_parse_logs_path("/v1/credentials/" LOGS_ID, id));

    char out[256];
    cr_assert_eq(ag_ep_logs_uri("127.0.0.1", 51679, LOGS_ID, out, sizeof out), 0);
    cr_assert_str_eq(out, "@127.0.0.1:51679/v2/credentials/" LOGS_ID);
    cr_assert_eq(ag_ep_logs_uri("::1", 5, LOGS_ID, out, sizeof out), 0);
    cr_assert_str_eq(out, "@[::1]:5/v2/credentials/" LOGS_ID);
    cr_assert_eq(ag_ep_logs_uri("169.254.170.2", 51679, LOGS_ID, out, sizeof out), 0);
    cr_assert_str_eq(out, ":51679/v2/credentials/" LOGS_ID);
    cr_assert_eq(ag_ep_logs_uri("169.254.170.2", 80, LOGS_ID, out, sizeof out), 0);
    cr_assert_str_eq(out, "/v2/credentials/" LOGS_ID, "ECS's own form");
    cr_assert_eq(ag_ep_logs_uri("127.0.0.1", 51679, LOGS_ID, out, 40), -EMSGSIZE);
}

/* Issue 20: volumes, mountPoints, volumesFrom and portMappings, parsed at
 * registration (agent/tasks/td_volumes.c) and written by docker/'s create
 * and volume bodies. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "agent/tasks/taskdef.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/secure.h"
#include "docker/docker.h"

static const ag_td_ctx ctx = {.region = "us-east-1", .account = "123456789012"};

#define ROLE "\"executionRoleArn\":\"arn:aws:iam::123456789012:role/ecsTaskExecutionRole\""

static ag_taskdef *parse_ok(const char *body)
{
    ag_taskdef *td = NULL;
    ag_td_error e = {0};
    int r = ag_taskdef_parse(body, strlen(body), &ctx, &td, &e);
    cr_assert_eq(r, 0, "parse failed: %s: %s\n%s", e.code, e.message, body);
    return td;
}

static void parse_bad(const char *body, const char *msg)
{
    ag_taskdef *td = NULL;
    ag_td_error e = {0};
    int r = ag_taskdef_parse(body, strlen(body), &ctx, &td, &e);
    cr_assert_lt(r, 0, "must be refused: %s", body);
    cr_assert_str_eq(e.code, "ClientException", "%s: %s", e.code, e.message);
    cr_assert_eq(strncmp(e.message, msg, strlen(msg)), 0, "message '%s' should start with '%s'",
                 e.message, msg);
}

/* A definition: network mode (NULL: none given), volumes JSON (NULL: none),
 * then the containers' JSON. */
static char *td_json(const char *mode, const char *volumes, const char *containers)
{
    static char buf[65536];
    char nm[64] = "";
    if (mode)
        snprintf(nm, sizeof nm, "\"networkMode\":\"%s\",", mode);
    snprintf(buf, sizeof buf, "{\"family\":\"vol\",%s%s%s%s\"containerDefinitions\":[%s]}", nm,
             volumes ? "\"volumes\":" : "", volumes ? volumes : "", volumes ? "," : "", containers);
    return buf;
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

#define VOLS                                                                                       \
    "[{\"name\":\"data\",\"host\":{\"sourcePath\":\"/srv/data\"}},{\"name\":\"scratch\"},"         \
    "{\"name\":\"cache\",\"dockerVolumeConfiguration\":{\"scope\":\"shared\","                     \
    "\"autoprovision\":true,\"driver\":\"local\",\"driverOpts\":{\"type\":\"tmpfs\"},"             \
    "\"labels\":{\"team\":\"a\"}}},{\"name\":\"empty\",\"host\":{}}]"

Test(td_volumes, parsed_and_described_as_registered)
{
    ag_taskdef *td = parse_ok(td_json(
        NULL, VOLS,
        "{\"name\":\"writer\",\"image\":\"busybox\",\"mountPoints\":[{\"sourceVolume\":\"data\","
        "\"containerPath\":\"/data\",\"readOnly\":true},{\"sourceVolume\":\"scratch\","
        "\"containerPath\":\"/scratch\"}],\"portMappings\":[{\"containerPort\":80,\"hostPort\":0,"
        "\"protocol\":\"udp\",\"name\":\"web\",\"appProtocol\":\"http\"},{\"containerPortRange\":"
        "\"9000-9002\"}]},{\"name\":\"reader\",\"image\":\"busybox\",\"volumesFrom\":[{"
        "\"sourceContainer\":\"writer\",\"readOnly\":true}]}"));
    cr_assert_eq(td->n_volumes, 4);
    cr_assert_eq(td->volumes[0].kind, AG_VOLUME_HOST);
    cr_assert_str_eq(td->volumes[0].source_path, "/srv/data");
    cr_assert_eq(td->volumes[1].kind, AG_VOLUME_TASK);
    cr_assert(ag_td_volume_task_scoped(&td->volumes[1]));
    cr_assert_eq(td->volumes[2].kind, AG_VOLUME_DOCKER);
    cr_assert_not(ag_td_volume_task_scoped(&td->volumes[2]), "shared");
    cr_assert(td->volumes[2].autoprovision);
    cr_assert_str_eq(td->volumes[2].driver_opts[0].value, "tmpfs");
    cr_assert_eq(td->volumes[3].kind, AG_VOLUME_TASK, "an empty host: a Docker volume (ECS)");
    const ag_container_def *w = &td->containers[0];
    cr_assert_eq(w->cv.n_mount_points, 2);
    cr_assert_eq(w->cv.mount_points[1].volume, 1);
    cr_assert(w->cv.mount_points[0].read_only);
    cr_assert_eq(w->cv.n_ports, 2);
    cr_assert_str_eq(ag_port_protocol(&w->cv.ports[0]), "udp");
    cr_assert_str_eq(ag_port_protocol(&w->cv.ports[1]), "tcp");
    cr_assert_eq(w->cv.ports[1].range_lo, 9000);
    cr_assert_eq(w->cv.ports[1].range_hi, 9002);
    cr_assert_eq(td->containers[1].cv.volumes_from[0].container, 0);
    char *s = describe(td);
    const char *want[] = {
        "\"volumes\":[{\"name\":\"data\",\"host\":{\"sourcePath\":\"/srv/data\"}},{\"name\":"
        "\"scratch\"},{\"name\":\"cache\",\"dockerVolumeConfiguration\":{\"scope\":\"shared\","
        "\"autoprovision\":true,\"driver\":\"local\",\"driverOpts\":{\"type\":\"tmpfs\"},"
        "\"labels\":{\"team\":\"a\"}}},{\"name\":\"empty\",\"host\":{}}]",
        "\"mountPoints\":[{\"sourceVolume\":\"data\",\"containerPath\":\"/data\",\"readOnly\":"
        "true},{\"sourceVolume\":\"scratch\",\"containerPath\":\"/scratch\"}]",
        "\"portMappings\":[{\"containerPort\":80,\"hostPort\":0,\"protocol\":\"udp\",\"name\":"
        "\"web\",\"appProtocol\":\"http\"},{\"containerPortRange\":\"9000-9002\"}]",
        "\"volumesFrom\":[{\"sourceContainer\":\"writer\",\"readOnly\":true}]",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        cr_assert_not_null(strstr(s, want[i]), "missing %s in %s", want[i], s);
    /* and what is described registers again, the same */
    ag_taskdef *again = NULL;
    es_buf b;
    es_buf_init(&b, 1 << 20);
    es_jw jw;
    es_jw_init(&jw, &b);
    ag_taskdef_write_request(td, &jw);
    cr_assert_eq(es_jw_finish(&jw), 0);
    ag_td_error e = {0};
    cr_assert_eq(ag_taskdef_parse(b.data, b.len, &ctx, &again, &e), 0, "%s", e.message);
    cr_assert_eq(again->n_volumes, 4);
    ag_taskdef_free(again);
    es_buf_free(&b);
    es_free(s);
    ag_taskdef_free(td);
}

#define C1 "{\"name\":\"a\",\"image\":\"busybox\""

Test(td_volumes, volume_refusals_name_the_field)
{
    parse_bad(td_json(NULL,
                      "[{\"name\":\"v\",\"efsVolumeConfiguration\":{\"fileSystemId\":"
                      "\"fs-1\"}}]",
                      C1 "}"),
              "volumes[0].efsVolumeConfiguration: Amazon EFS");
    parse_bad(td_json(NULL,
                      "[{\"name\":\"v\",\"fsxWindowsFileServerVolumeConfiguration\":{"
                      "\"fileSystemId\":\"fs-1\"}}]",
                      C1 "}"),
              "volumes[0].fsxWindowsFileServerVolumeConfiguration: ");
    parse_bad(td_json(NULL, "[{\"name\":\"v\",\"configuredAtLaunch\":true}]", C1 "}"),
              "volumes[0].configuredAtLaunch: ");
    parse_bad(td_json(NULL, "[{\"name\":\"v\",\"host\":{\"sourcePath\":\"rel\"}}]", C1 "}"),
              "volumes[0].host.sourcePath: must be an absolute path");
    parse_bad(td_json(NULL, "[{\"name\":\"v\",\"host\":{\"sourcePath\":\"/a:b\"}}]", C1 "}"),
              "volumes[0].host.sourcePath: ");
    parse_bad(
        td_json(NULL, "[{\"name\":\"v\",\"host\":{},\"dockerVolumeConfiguration\":{}}]", C1 "}"),
        "volumes[0]: a volume takes host or dockerVolumeConfiguration");
    parse_bad(
        td_json(NULL, "[{\"name\":\"v\",\"dockerVolumeConfiguration\":{\"scope\":\"x\"}}]", C1 "}"),
        "volumes[0].dockerVolumeConfiguration.scope: must be task or shared");
    parse_bad(td_json(NULL,
                      "[{\"name\":\"v\",\"dockerVolumeConfiguration\":{\"autoprovision\":"
                      "true}}]",
                      C1 "}"),
              "volumes[0].dockerVolumeConfiguration.autoprovision: Autoprovision can only");
    parse_bad(
        td_json(NULL, "[{\"name\":\"v\",\"dockerVolumeConfiguration\":{\"nope\":1}}]", C1 "}"),
        "volumes[0].dockerVolumeConfiguration.nope: not a member of "
        "DockerVolumeConfiguration");
    parse_bad(td_json(NULL, "[{\"name\":\"v w\"}]", C1 "}"), "volumes[0].name: up to 255");
    parse_bad(td_json(NULL, "[{}]", C1 "}"), "volumes[0].name: required");
    parse_bad(td_json(NULL, "[{\"name\":\"v\"},{\"name\":\"v\"}]", C1 "}"),
              "volumes[1].name: duplicate volume name 'v'");
    char many[8192] = "[";
    for (int i = 0; i <= AG_TD_VOLUMES_MAX; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%s{\"name\":\"v%d\"}",
                 i ? "," : "", i);
    snprintf(many + strlen(many), sizeof many - strlen(many), "]");
    ag_taskdef *td = NULL;
    ag_td_error e = {0};
    const char *body = td_json(NULL, many, C1 "}");
    cr_assert_lt(ag_taskdef_parse(body, strlen(body), &ctx, &td, &e), 0);
    cr_assert_not_null(strstr(e.message, "volumes: more than"), "%s", e.message);
}

Test(td_volumes, mount_refusals_name_the_field)
{
    const char *v = "[{\"name\":\"v\"}]";
    parse_bad(td_json(NULL, v,
                      C1 ",\"mountPoints\":[{\"sourceVolume\":\"w\",\"containerPath\":\"/d\"}]}"),
              "containerDefinitions[0].mountPoints[0].sourceVolume: 'w' is not a volume");
    parse_bad(
        td_json(NULL, v, C1 ",\"mountPoints\":[{\"sourceVolume\":\"v\",\"containerPath\":\"d\"}]}"),
        "containerDefinitions[0].mountPoints[0].containerPath: must be an absolute");
    parse_bad(td_json(NULL, v, C1 ",\"mountPoints\":[{\"sourceVolume\":\"v\"}]}"),
              "containerDefinitions[0].mountPoints[0].containerPath: required");
    parse_bad(td_json(NULL, v,
                      C1 ",\"mountPoints\":[{\"sourceVolume\":\"v\",\"containerPath\":\"/d\"},"
                         "{\"sourceVolume\":\"v\",\"containerPath\":\"/d\"}]}"),
              "containerDefinitions[0].mountPoints[1].containerPath: '/d' is mounted by");
    parse_bad(td_json(NULL, v, C1 ",\"volumesFrom\":[{\"sourceContainer\":\"a\"}]}"),
              "containerDefinitions[0].volumesFrom[0].sourceContainer: 'a' is not another");
    parse_bad(td_json(NULL, v,
                      C1 ",\"volumesFrom\":[{\"sourceContainer\":\"b\"}]},"
                         "{\"name\":\"b\",\"image\":\"i\",\"volumesFrom\":[{"
                         "\"sourceContainer\":\"a\"}]}"),
              "containerDefinitions: the containers' volumesFrom form a cycle");
}

/* A secret file is a bind mount of its own: a mountPoint there is refused. */
Test(td_volumes, mount_on_a_secret_file_is_refused)
{
    const char *fmt =
        "{\"family\":\"vol\"," ROLE ",\"volumes\":[{\"name\":\"v\"}],\"containerDefinitions\":"
        "[{\"name\":\"a\",\"image\":\"i\",\"secrets\":[{\"name\":\"DB\",\"valueFrom\":\"/db\"}],"
        "\"dockerLabels\":{\"ecs-secrets.file.DB\":\"/run/app/db\"%s},"
        "\"mountPoints\":[{\"sourceVolume\":\"v\",\"containerPath\":\"%s\"}]}]}";
    char body[2048];
    snprintf(body, sizeof body, fmt, "", "/run/app/db");
    parse_bad(body, "containerDefinitions[0].mountPoints[0].containerPath: '/run/app/db' is where "
                    "the secret file of DB");
    snprintf(body, sizeof body, fmt, ",\"ecs-secrets.file-policy.DB\":\"refresh\"", "/run/app");
    parse_bad(body, "containerDefinitions[0].mountPoints[0].containerPath: '/run/app' is where");
    snprintf(body, sizeof body, fmt, ",\"ecs-secrets.file-policy.DB\":\"refresh\"", "/run/app/x");
    parse_bad(body, "containerDefinitions[0].mountPoints[0].containerPath: '/run/app/x' is where");
    /* beside it is fine */
    snprintf(body, sizeof body, fmt, "", "/run/other");
    ag_taskdef_free(parse_ok(body));
}

Test(td_volumes, port_rules_by_network_mode)
{
    const char *p80 = C1 ",\"portMappings\":[{\"containerPort\":80,\"hostPort\":8080}]}";
    ag_taskdef_free(parse_ok(td_json("bridge", NULL, p80)));
    ag_taskdef_free(parse_ok(td_json(NULL, NULL, p80)));
    parse_bad(td_json("host", NULL, p80),
              "containerDefinitions[0].portMappings[0].hostPort: When networkMode=host");
    ag_taskdef_free(parse_ok(
        td_json("host", NULL, C1 ",\"portMappings\":[{\"containerPort\":80,\"hostPort\":80}]}")));
    ag_taskdef_free(
        parse_ok(td_json("host", NULL, C1 ",\"portMappings\":[{\"containerPort\":80}]}")));
    parse_bad(td_json("none", NULL, p80),
              "containerDefinitions[0].portMappings: a task in the none network mode");
    parse_bad(td_json("host", NULL, C1 ",\"portMappings\":[{\"containerPortRange\":\"1-2\"}]}"),
              "containerDefinitions[0].portMappings[0].containerPortRange: only in the bridge");
    parse_bad(td_json(NULL, NULL, C1 ",\"portMappings\":[{\"containerPort\":0}]}"),
              "containerDefinitions[0].portMappings[0].containerPort: must be between 1");
    parse_bad(td_json(NULL, NULL, C1 ",\"portMappings\":[{\"containerPort\":65536}]}"),
              "containerDefinitions[0].portMappings[0].containerPort: must be between");
    parse_bad(td_json(NULL, NULL, C1 ",\"portMappings\":[{\"hostPort\":80}]}"),
              "containerDefinitions[0].portMappings[0].containerPort: required");
    parse_bad(
        td_json(NULL, NULL, C1 ",\"portMappings\":[{\"containerPort\":80,\"protocol\":\"sctp\"}]}"),
        "containerDefinitions[0].portMappings[0].protocol: must be tcp or udp");
    parse_bad(td_json(NULL, NULL,
                      C1 ",\"portMappings\":[{\"containerPort\":80},{\"containerPort\":80}]}"),
              "containerDefinitions[0].portMappings[1]: maps a container port");
    parse_bad(td_json(NULL, NULL,
                      C1 ",\"portMappings\":[{\"containerPortRange\":\"100-200\"},"
                         "{\"containerPort\":150}]}"),
              "containerDefinitions[0].portMappings[1]: maps a container port");
    parse_bad(td_json(NULL, NULL, C1 ",\"portMappings\":[{\"containerPortRange\":\"9-3\"}]}"),
              "containerDefinitions[0].portMappings[0].containerPortRange: must be LOW-HIGH");
    parse_bad(td_json(NULL, NULL, C1 ",\"portMappings\":[{\"containerPortRange\":\"1-x\"}]}"),
              "containerDefinitions[0].portMappings[0].containerPortRange: must be LOW-HIGH");
    parse_bad(td_json(NULL, NULL,
                      C1 ",\"portMappings\":[{\"containerPortRange\":\"1-2\",\"hostPort\":1}]}"),
              "containerDefinitions[0].portMappings[0].containerPortRange: not with");
    parse_bad(td_json(NULL, NULL, C1 ",\"portMappings\":[{\"containerPortRange\":\"1-5000\"}]}"),
              "containerDefinitions[0].portMappings: the containerPortRanges hold more than");
    parse_bad(
        td_json(NULL, NULL, C1 ",\"portMappings\":[{\"containerPort\":80,\"name\":\"-web\"}]}"),
        "containerDefinitions[0].portMappings[0].name: lowercase");
    parse_bad(td_json(NULL, NULL,
                      C1 ",\"portMappings\":[{\"containerPort\":80,\"appProtocol\":\"ftp\"}]}"),
              "containerDefinitions[0].portMappings[0].appProtocol: must be http");
    parse_bad(td_json(NULL, NULL, C1 ",\"portMappings\":[{\"containerPort\":80,\"x\":1}]}"),
              "containerDefinitions[0].portMappings[0].x: not a member of PortMapping");
}

/* docker/ writes what the agent gives: Binds, VolumesFrom, ExposedPorts and
 * (bridge) PortBindings with "" for a dynamic host port. */
Test(td_volumes, create_body_bridge)
{
    const char *binds[] = {"/srv/data:/data:ro", "ecs-t-1-scratch:/scratch"};
    const char *from[] = {"0123abcd:ro"};
    dk_port ports[] = {{80, 0, "tcp"}, {53, 5353, "udp"}};
    dk_create_spec s = {.image = "busybox",
                        .binds = binds,
                        .nbinds = 2,
                        .volumes_from = from,
                        .nvolumes_from = 1,
                        .ports = ports,
                        .nports = 2,
                        .publish_ports = true};
    es_buf b;
    es_buf_init(&b, 1 << 16);
    cr_assert_eq(dk_create_body(&s, &b), 0);
    const char *body = es_buf_cstr(&b);
    cr_assert_not_null(strstr(body, "\"ExposedPorts\":{\"80/tcp\":{},\"53/udp\":{}}"), "%s", body);
    cr_assert_not_null(strstr(body, "\"Binds\":[\"/srv/data:/data:ro\",\"ecs-t-1-scratch:"
                                    "/scratch\"],\"VolumesFrom\":[\"0123abcd:ro\"]"),
                       "%s", body);
    cr_assert_not_null(strstr(body, "\"PortBindings\":{\"80/tcp\":[{\"HostPort\":\"\"}],\"53/udp\":"
                                    "[{\"HostPort\":\"5353\"}]}"),
                       "%s", body);
    /* host mode: the ports are exposed, not bound */
    es_buf_reset(&b);
    s.publish_ports = false;
    cr_assert_eq(dk_create_body(&s, &b), 0);
    cr_assert_null(strstr(es_buf_cstr(&b), "PortBindings"));
    cr_assert_not_null(strstr(es_buf_cstr(&b), "ExposedPorts"));
    es_buf_free_secret(&b);
}

Test(td_volumes, volume_create_body)
{
    dk_kv opts[] = {{"type", "tmpfs"}, {"device", "tmpfs"}};
    dk_kv labels[] = {{"com.amazonaws.ecs.task-arn", "arn:x"}};
    dk_volume_spec v = {.name = "ecs-t-0-scratch",
                        .driver_opts = opts,
                        .ndriver_opts = 2,
                        .labels = labels,
                        .nlabels = 1};
    es_buf b;
    es_buf_init(&b, 1 << 16);
    cr_assert_eq(dk_volume_create_body(&v, &b), 0);
    cr_assert_str_eq(es_buf_cstr(&b),
                     "{\"Name\":\"ecs-t-0-scratch\",\"Driver\":\"local\",\"DriverOpts\":{\"type\":"
                     "\"tmpfs\",\"device\":\"tmpfs\"},\"Labels\":{\"com.amazonaws.ecs.task-arn\":"
                     "\"arn:x\"}}");
    es_buf_reset(&b);
    v.name = "";
    cr_assert_lt(dk_volume_create_body(&v, &b), 0);
    es_buf_free(&b);
}

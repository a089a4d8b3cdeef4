/* Fuzzes the ECS API's request handling (agent/api/api.c) as the listener calls
 * it: the first byte picks the operation, the rest is the body. An answer
 * must be a JSON object; an error must carry a code, a message and a 4xx/5xx
 * status, and leave no answer behind. The store lives in a temporary
 * directory for the run (a few task definitions are registered up front so
 * that lookups find something). The task operations run over an engine that
 * is never started (its loop never runs): RunTask creates tasks in
 * PROVISIONING that DescribeTasks, ListTasks and StopTask then find. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "agent/api/api.h"
#include "agent/api/tasks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ag_api *api;

static void init(void)
{
    static char dir[] = "/tmp/es-fuzz-api-XXXXXX";
    if (!mkdtemp(dir))
        abort();
    ag_store *st = NULL;
    char err[AG_STORE_ERR_MAX];
    if (ag_store_open(dir, &st, err, sizeof err) < 0)
        abort();
    ag_api_config c = {.store = st,
                       .metrics = ag_metrics_create(),
                       .region = "us-east-1",
                       .account = "123456789012",
                       .cluster = "default"};
    if (ag_api_create(&c, &api) < 0)
        abort();
    static uv_loop_t loop;
    if (uv_loop_init(&loop) < 0)
        abort();
    aw_client_config cc = {.region = "us-east-1", .max_attempts = 1};
    for (int i = 0; i < AW_SVC_COUNT; i++)
        cc.endpoint_override[i] = "http://127.0.0.1:1";
    aw_client *awc = NULL;
    aw_creds *creds = NULL;
    ag_resolver *res = NULL;
    dk_client *dk = NULL;
    ag_engine *eng = NULL;
    ag_api_tasks *tasks = NULL;
    static const uint8_t key[32] = {1};
    aw_creds_config pc = {.access_key_id = "AKID", .secret_access_key = "SECRET"};
    ag_resolver_config rc = {.region = "us-east-1", .fp_key = key, .fp_key_len = sizeof key};
    char host[128];
    snprintf(host, sizeof host, "unix://%s/none.sock", dir);
    dk_options dko = {.host = host};
    if (aw_client_create(&loop, &cc, &awc) < 0 || aw_creds_create(awc, &pc, &creds) < 0)
        abort();
    rc.client = awc;
    rc.creds = creds;
    if (ag_resolver_create(&rc, &res) < 0 || dk_client_create(&loop, &dko, &dk) < 0)
        abort();
    ag_engine_config ec = {.loop = &loop,
                           .store = st,
                           .docker = dk,
                           .resolver = res,
                           .region = "us-east-1",
                           .account = "123456789012",
                           .cluster = "default"};
    if (ag_engine_create(&ec, &eng) < 0 || ag_api_tasks_attach(api, eng, &tasks) < 0)
        abort();
    static const char *const seed[] = {
        "{\"family\":\"web\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"b\"}]}",
        "{\"family\":\"web\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"c\"}]}",
        "{\"family\":\"db\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"d\"}]}",
    };
    for (size_t i = 0; i < sizeof seed / sizeof *seed; i++) {
        es_buf out;
        es_buf_init(&out, 1 << 20);
        al_error e;
        if (ag_api_handle(api, "RegisterTaskDefinition", "arn:aws:iam::123456789012:root", seed[i],
                          strlen(seed[i]), &out, &e) < 0)
            abort();
        es_buf_free(&out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const ops[] = {
        "DescribeTaskDefinition",
        "ListTaskDefinitions",
        "DeregisterTaskDefinition",
        "ListTaskDefinitionFamilies",
        "ListClusters",
        "DescribeClusters",
        "RegisterTaskDefinition",
        "RunTask",
    };
    if (!api)
        init();
    if (size < 1)
        return 0;
    const char *op = ops[data[0] % (sizeof ops / sizeof *ops)];
    es_buf out;
    es_buf_init(&out, 1 << 20);
    al_error e = {0};
    int r = ag_api_handle(api, op, "arn:aws:iam::123456789012:root", (const char *)data + 1,
                          size - 1, &out, &e);
    if (r == 0) {
        es_json *j = NULL;
        if (es_json_parse(out.data, out.len, NULL, &j, NULL, 0) != 0 || j->type != ES_JSON_OBJECT)
            __builtin_trap();
        es_json_free(j);
    } else {
        if (!e.code[0] || !e.message[0] || e.status < 400 || out.len != 0)
            __builtin_trap();
    }
    es_buf_free(&out);
    return 0;
}

/* cluster/services.c: a service's key, its record written and read back,
 * the newest events kept when a record would not fit, and the refusals of
 * keys and values from etcd (outside input). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/services.h"

#define ROOT "/ecs-secrets/clusters/prod/"
#define PREFIX ROOT "services/"
#define DEP1 "ecs-svc/1234567890123456789"
#define DEP2 "ecs-svc/9876543210987654321"
#define EV "0123abcd-0123-4567-89ab-0123456789ab"

static char why[256];

static cl_kv kv_of(const char *key, const char *value, size_t len)
{
    return (cl_kv){
        .key = (char *)key, .value = (char *)value, .value_len = len, .mod_revision = 77};
}

static cl_sv_record *sample(void)
{
    cl_sv_record *r = calloc(1, sizeof *r);
    cr_assert_not_null(r);
    snprintf(r->name, sizeof r->name, "web");
    snprintf(r->status, sizeof r->status, "ACTIVE");
    snprintf(r->family, sizeof r->family, "web-td");
    r->revision = 4;
    r->desired = 3;
    r->max_percent = 200;
    r->min_healthy = 50;
    r->cb_enable = true;
    r->created_at = 1700000000;
    r->redeployed_at = 1700000100;
    snprintf(r->strategies[0].type, sizeof r->strategies[0].type, "spread");
    snprintf(r->strategies[0].field, sizeof r->strategies[0].field, "instanceId");
    r->n_strategies = 1;
    snprintf(r->constraints[0].type, sizeof r->constraints[0].type, "distinctInstance");
    snprintf(r->constraints[1].type, sizeof r->constraints[1].type, "memberOf");
    snprintf(r->constraints[1].expression, sizeof r->constraints[1].expression,
             "attribute:zone in [a, b]");
    r->n_constraints = 2;
    cl_sv_deployment *d = &r->deps[0];
    snprintf(d->id, sizeof d->id, DEP1);
    snprintf(d->status, sizeof d->status, "PRIMARY");
    snprintf(d->family, sizeof d->family, "web-td");
    d->revision = 4;
    d->desired = 3;
    snprintf(d->rollout, sizeof d->rollout, "IN_PROGRESS");
    snprintf(d->rollout_reason, sizeof d->rollout_reason, "ECS deployment " DEP1 " in progress.");
    d->created_at = d->updated_at = 1700000200;
    d = &r->deps[1];
    snprintf(d->id, sizeof d->id, DEP2);
    snprintf(d->status, sizeof d->status, "ACTIVE");
    snprintf(d->family, sizeof d->family, "web-td");
    d->revision = 3;
    d->desired = 3;
    snprintf(d->rollout, sizeof d->rollout, "COMPLETED");
    d->created_at = d->updated_at = 1700000000;
    r->n_deps = 2;
    snprintf(r->events[0].id, sizeof r->events[0].id, EV);
    r->events[0].created_ms = 1700000200123;
    snprintf(r->events[0].message, sizeof r->events[0].message,
             "(service web) has started 1 tasks: (task 0123).");
    r->n_events = 1;
    snprintf(r->tags[0].key, sizeof r->tags[0].key, "team");
    snprintf(r->tags[0].value, sizeof r->tags[0].value, "payments \"core\"");
    snprintf(r->tags[1].key, sizeof r->tags[1].key, "empty");
    r->n_tags = 2;
    return r;
}

/* Writes rec, reads it back under key; the read's answer. */
static int round_trip(const cl_sv_record *rec, const char *key, cl_sv_record *back, size_t *ev)
{
    es_buf b;
    es_buf_init(&b, CL_SV_VALUE_MAX);
    int r = cl_sv_write(rec, &b, ev);
    cr_assert_eq(r, 0, "write: %d", r);
    cl_kv kv = kv_of(key, b.data, b.len);
    r = cl_sv_read(PREFIX, &kv, back, why, sizeof why);
    es_buf_free(&b);
    return r;
}

/* A value as JSON text read under the sample's key. */
static int read_text(const char *json, cl_sv_record *out)
{
    cl_kv kv = kv_of(PREFIX "web", json, strlen(json));
    return cl_sv_read(PREFIX, &kv, out, why, sizeof why);
}

Test(cluster_service_records, keys)
{
    char k[512];
    cr_assert_gt(cl_sv_key("prod", "web", k, sizeof k), 0);
    cr_assert_str_eq(k, PREFIX "web");
    cr_assert_gt(cl_sv_prefix("prod", k, sizeof k), 0);
    cr_assert_str_eq(k, PREFIX);
    const char *bad[] = {"", "../x", "a/b", "a b", "é"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(cl_sv_key("prod", bad[i], k, sizeof k), -EINVAL, "%s", bad[i]);
    char longname[CL_SV_NAME_MAX + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    cr_assert_eq(cl_sv_key("prod", longname, k, sizeof k), -EINVAL);
    longname[CL_SV_NAME_MAX] = '\0';
    cr_assert_gt(cl_sv_key("prod", longname, k, sizeof k), 0);
    cr_assert_eq(cl_sv_key("bad/cluster", "web", k, sizeof k), -EINVAL);
    cr_assert_eq(cl_sv_key("prod", "web", k, 10), -EINVAL);
}

Test(cluster_service_records, round_trip)
{
    cl_sv_record *rec = sample(), *back = calloc(1, sizeof *back);
    size_t ev = 99;
    cr_assert_eq(round_trip(rec, PREFIX "web", back, &ev), 0, "%s", why);
    cr_assert_eq(ev, 1);
    cr_assert_eq(back->mod_revision, 77);
    back->mod_revision = 0;
    /* every field, byte for byte */
    cr_assert_eq(memcmp(rec, back, sizeof *rec), 0);
    free(rec);
    free(back);
}

Test(cluster_service_records, the_newest_events_that_fit)
{
    cl_sv_record *rec = sample(), *back = calloc(1, sizeof *back);
    /* every field at its longest: the events cannot all fit */
    for (size_t i = 0; i < CL_PL_CONSTRAINTS_MAX; i++) {
        cl_tk_constraint_text *c = &rec->constraints[i];
        snprintf(c->type, sizeof c->type, "memberOf");
        memset(c->expression, 0, sizeof c->expression);
        /* seven values of 250 bytes: near the 2000 bytes an expression may have */
        snprintf(c->expression, sizeof c->expression, "attribute:zone in [");
        size_t n = strlen(c->expression);
        for (int k = 0; k < 7; k++) {
            memset(c->expression + n, (char)('a' + k), 250);
            n += 250;
            c->expression[n++] = k < 6 ? ',' : ']';
        }
        c->expression[n] = '\0';
        cr_assert_gt(n, 1750);
    }
    rec->n_constraints = CL_PL_CONSTRAINTS_MAX;
    for (size_t i = 0; i < CL_SV_TAGS_MAX; i++) {
        snprintf(rec->tags[i].key, sizeof rec->tags[i].key, "k%03zu", i);
        memset(rec->tags[i].value, 'v', 256); /* ECS's longest (ASCII) */
        rec->tags[i].value[256] = '\0';
    }
    rec->n_tags = CL_SV_TAGS_MAX;
    for (size_t i = 0; i < CL_SV_EVENTS_MAX; i++) {
        snprintf(rec->events[i].id, sizeof rec->events[i].id, EV);
        memset(rec->events[i].message, '"', CL_SV_EVENT_MAX); /* escaped: twice as long */
        rec->events[i].message[CL_SV_EVENT_MAX] = '\0';
        rec->events[i].message[0] = (char)('a' + i);
    }
    rec->n_events = CL_SV_EVENTS_MAX;
    size_t ev = 0;
    cr_assert_eq(round_trip(rec, PREFIX "web", back, &ev), 0, "%s", why);
    cr_assert_lt(ev, (size_t)CL_SV_EVENTS_MAX);
    cr_assert_gt(ev, 0);
    cr_assert_eq(back->n_events, ev);
    /* the newest first, kept in order */
    for (size_t i = 0; i < ev; i++)
        cr_assert_eq(back->events[i].message[0], 'a' + (int)i);
    cr_assert_eq(back->n_constraints, CL_PL_CONSTRAINTS_MAX);
    cr_assert_eq(back->n_tags, CL_SV_TAGS_MAX);
    free(rec);
    free(back);
}

Test(cluster_service_records, write_refuses_what_a_read_would)
{
    es_buf b;
    es_buf_init(&b, CL_SV_VALUE_MAX);
    cl_sv_record *r = sample();
    snprintf(r->name, sizeof r->name, "a/b");
    cr_assert_eq(cl_sv_write(r, &b, NULL), -EINVAL);
    free(r);
    r = sample();
    snprintf(r->status, sizeof r->status, "RUNNING");
    cr_assert_eq(cl_sv_write(r, &b, NULL), -EINVAL);
    free(r);
    r = sample();
    r->max_percent = 99;
    cr_assert_eq(cl_sv_write(r, &b, NULL), -EINVAL);
    free(r);
    r = sample();
    r->desired = CL_SV_DESIRED_MAX + 1;
    cr_assert_eq(cl_sv_write(r, &b, NULL), -EINVAL);
    free(r);
    r = sample();
    r->n_deps = 0;
    cr_assert_eq(cl_sv_write(r, &b, NULL), -EINVAL);
    free(r);
    r = sample();
    snprintf(r->deps[1].id, sizeof r->deps[1].id, DEP1); /* twice */
    cr_assert_eq(cl_sv_write(r, &b, NULL), -EINVAL);
    free(r);
    r = sample();
    snprintf(r->deps[1].status, sizeof r->deps[1].status, "PRIMARY"); /* two primaries */
    cr_assert_eq(cl_sv_write(r, &b, NULL), -EINVAL);
    free(r);
    r = sample();
    snprintf(r->events[0].message, sizeof r->events[0].message, "a\nb");
    cr_assert_eq(cl_sv_write(r, &b, NULL), -EINVAL);
    free(r);
    r = sample();
    snprintf(r->strategies[0].type, sizeof r->strategies[0].type, "fastest");
    cr_assert_eq(cl_sv_write(r, &b, NULL), -EINVAL);
    free(r);
    r = sample();
    snprintf(r->tags[1].key, sizeof r->tags[1].key, "team"); /* twice */
    cr_assert_eq(cl_sv_write(r, &b, NULL), -EINVAL);
    free(r);
    cr_assert_eq(b.len, 0, "a refused record wrote nothing");
    es_buf_free(&b);
}

Test(cluster_service_records, read_refusals)
{
    cl_sv_record *rec = sample(), *out = calloc(1, sizeof *out);
    es_buf b;
    es_buf_init(&b, CL_SV_VALUE_MAX);
    cr_assert_eq(cl_sv_write(rec, &b, NULL), 0);
    const char *good = b.data;

    /* the key */
    cl_kv kv = kv_of(PREFIX "other", good, b.len);
    cr_assert_eq(cl_sv_read(PREFIX, &kv, out, why, sizeof why), -EINVAL);
    cr_assert_str_eq(why, "name: not the key's");
    kv = kv_of(PREFIX "a/b", good, b.len);
    cr_assert_eq(cl_sv_read(PREFIX, &kv, out, why, sizeof why), -EINVAL);
    cr_assert_str_eq(why, "not a service's key");
    kv = kv_of(ROOT "tasks/web", good, b.len);
    cr_assert_eq(cl_sv_read(PREFIX, &kv, out, why, sizeof why), -EINVAL);

    /* the value: each a field of the good one changed */
    struct {
        const char *from, *to, *why;
    } cases[] = {
        {"\"status\":\"ACTIVE\"", "\"status\":\"RUNNING\"",
         "status: not ACTIVE, DRAINING or INACTIVE"},
        {"\"desiredCount\":3,", "\"desiredCount\":-1,",
         "desiredCount, maximumPercent or minimumHealthyPercent: out of range"},
        {"\"maximumPercent\":200", "\"maximumPercent\":\"200\"", "maximumPercent: not a number"},
        {"\"circuitBreakerEnable\":true", "\"circuitBreakerEnable\":1",
         "circuitBreakerEnable: not a boolean"},
        {"\"revision\":4,\"desiredCount\":3,\"maximumPercent\"",
         "\"revision\":0,\"desiredCount\":3,\"maximumPercent\"",
         "family or revision: not a task definition"},
        {"\"id\":\"" DEP1 "\"", "\"id\":\"ecs-svc/12\"",
         "deployments[0].id: not ecs-svc/ and 19 digits"},
        {"\"status\":\"PRIMARY\"", "\"status\":\"ACTIVE\"", "deployments[0].status: not PRIMARY"},
        {"\"rolloutState\":\"COMPLETED\"", "\"rolloutState\":\"DONE\"",
         "deployments[1]: desiredCount, rolloutState or a time not valid"},
        {"\"id\":\"" EV "\"", "\"id\":\"0123ABCD-0123-4567-89ab-0123456789ab\"",
         "events[0]: id, createdAt or message not valid"},
        {"\"type\":\"distinctInstance\"", "\"type\":\"distinctHost\"",
         "a strategy or a constraint: not one placement takes"},
        {"attribute:zone in [a, b]", "task:group == x",
         "a strategy or a constraint: not one placement takes"},
        {"\"placementStrategy\":[", "\"placementStrategy\":[7,",
         "placementStrategy[0]: not an object"},
        {"\"tags\":[", "\"tags\":{\"a\":1},\"x\":[", "tags: not an array"},
        {"\"name\":\"web\"", "\"name\":7", "name: not a string of at most 255 characters"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *at = strstr(good, cases[i].from);
        cr_assert_not_null(at, "%s", cases[i].from);
        size_t vlen = b.len + 256;
        char *v = malloc(vlen);
        int pre = (int)(at - good);
        int w = snprintf(v, vlen, "%.*s%s%s", pre, good, cases[i].to, at + strlen(cases[i].from));
        cr_assert(w > 0 && (size_t)w < vlen);
        why[0] = '\0';
        cr_assert_eq(read_text(v, out), -EINVAL, "%s", cases[i].to);
        cr_assert_str_eq(why, cases[i].why, "%s", cases[i].to);
        free(v);
    }
    /* too many of a list */
    es_buf big;
    es_buf_init(&big, CL_SV_VALUE_MAX);
    cr_assert_eq(es_buf_append(&big, good, b.len - 1), 0); /* without the closing brace */
    cr_assert_eq(es_buf_append_str(&big, ",\"events\":["), 0);
    for (int i = 0; i <= CL_SV_EVENTS_MAX; i++)
        cr_assert_eq(es_buf_printf(&big, "%s{\"id\":\"" EV "\",\"createdAt\":1,\"message\":\"m\"}",
                                   i ? "," : ""),
                     0);
    cr_assert_eq(es_buf_append_str(&big, "]}"), 0);
    cr_assert_eq(read_text(big.data, out), -EINVAL);
    es_buf_free(&big);
    /* not JSON, not an object, too long */
    cr_assert_eq(read_text("{", out), -EINVAL);
    cr_assert_eq(read_text("[1]", out), -EINVAL);
    cr_assert_str_eq(why, "not a JSON object");
    kv = kv_of(PREFIX "web", good, CL_SV_VALUE_MAX + 1);
    cr_assert_eq(cl_sv_read(PREFIX, &kv, out, why, sizeof why), -EINVAL);
    /* missing members */
    cr_assert_eq(read_text("{\"name\":\"web\"}", out), -EINVAL);
    cr_assert_str_eq(why, "status: missing");
    es_buf_free(&b);
    free(rec);
    free(out);
}

/* The fuzz driver's seeds are records a reader takes. */
Test(cluster_service_records, the_fuzz_seed_reads)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tests/fuzz/corpus/cluster_services/record", ES_SOURCE_DIR);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    static char buf[CL_SV_VALUE_MAX + 1];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* the driver's input: the key's name, a newline, the value */
    const char *nl = strchr(buf, '\n');
    cr_assert_not_null(nl);
    cl_sv_record *out = calloc(1, sizeof *out);
    cr_assert_eq(read_text(nl + 1, out), 0, "%s", why);
    cr_assert_str_eq(out->name, "web");
    free(out);
}

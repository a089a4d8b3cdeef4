/* td_shared.c - RegisterTaskDefinition and DeregisterTaskDefinition when the
 * cluster shares its task definitions (api.h's ag_api_td_share): the write
 * goes to the share (etcd, agent/cluster_td.c), which puts what it wrote
 * into the store, and the call is answered from there once it has. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "agent/api/api.h"
#include "common/alloc.h"
#include "common/log.h"

#define SERVER "ServerException"
#define CLIENT "ClientException"
#define ANSWER_MAX (1u << 20)

typedef struct shared_call {
    ag_api *api;
    aw_listener_reply *reply;
    ag_taskdef *td; /* as parsed (its warnings), or as loaded */
    int64_t now;
    bool registering;
    char principal[256];
} shared_call;

static void call_free(shared_call *c)
{
    ag_taskdef_free(c->td);
    es_free(c);
}

static void answer(shared_call *c)
{
    es_buf out;
    es_buf_init(&out, ANSWER_MAX);
    es_jw w;
    es_jw_init(&w, &out);
    es_jw_obj(&w);
    int r = ag_api_write_taskdef(c->api, &w, c->td, c->registering);
    if (c->registering) {
        /* our own field, as the store's path answers it */
        es_jw_key(&w, "warnings");
        es_jw_arr(&w);
        for (size_t i = 0; i < c->td->n_warnings; i++)
            es_jw_str(&w, c->td->warnings[i]);
        es_jw_arr_end(&w);
    }
    es_jw_obj_end(&w);
    if (r < 0)
        ag_api_reply_error(c->api, c->reply, SERVER, "taskDefinition: the tags cannot be read");
    else if (es_jw_finish(&w) < 0)
        ag_api_reply_error(c->api, c->reply, SERVER, "the answer is too large to send");
    else
        aw_listener_reply_ok(c->reply, out.data, out.len);
    es_buf_free(&out);
}

static void on_registered(void *ctx, int err, int64_t revision, const char *why)
{
    shared_call *c = ctx;
    if (err) {
        es_err("RegisterTaskDefinition %s: the cluster: %s", c->td->family, why);
        ag_api_reply_error(c->api, c->reply, SERVER,
                           "family: the cluster's task definitions (etcd) failed: %s", why);
        call_free(c);
        return;
    }
    c->td->revision = revision;
    c->td->registered_at = c->now;
    c->td->deregistered_at = 0;
    es_info("task definition %s:%" PRId64 " registered in the cluster by %s", c->td->family,
            revision, c->principal);
    for (size_t i = 0; i < c->td->n_warnings; i++)
        es_notice("task definition %s:%" PRId64 ": %s", c->td->family, revision,
                  c->td->warnings[i]);
    answer(c);
    call_free(c);
}

static shared_call *call_new(ag_api_req *rq, ag_taskdef *td, bool registering)
{
    shared_call *c = es_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->api = rq->api;
    c->td = td;
    c->now = ag_api_now(rq->api);
    c->registering = registering;
    snprintf(c->principal, sizeof c->principal, "%s", rq->principal ? rq->principal : "");
    if (!rq->call || !(c->reply = aw_listener_defer(rq->call))) {
        es_free(c);
        return NULL;
    }
    return c;
}

int ag_api_td_register_shared(ag_api_req *rq, ag_taskdef *td)
{
    const ag_api_td_share *share = ag_api_get_td_share(rq->api);
    int64_t last = 0;
    if (ag_store_taskdef_last_revision(ag_api_store(rq->api), td->family, &last) < 0)
        last = 0; /* a hint only: the transaction finds the free revision */
    es_buf body;
    es_buf_init(&body, 4 * AG_TD_BODY_MAX);
    es_jw w;
    es_jw_init(&w, &body);
    ag_taskdef_write_request(td, &w);
    if (es_jw_finish(&w) < 0) {
        es_buf_free(&body);
        ag_taskdef_free(td);
        return ag_api_fail(rq, SERVER, "the task definition cannot be encoded");
    }
    shared_call *c = call_new(rq, td, true);
    if (!c) {
        es_buf_free(&body);
        ag_taskdef_free(td);
        return ag_api_fail(rq, SERVER, "the registration cannot wait for the cluster here");
    }
    int r = share->register_td(share->arg, td->family, body.data, body.len, last + 1, c->now,
                               on_registered, c);
    es_buf_free(&body);
    if (r < 0) {
        ag_api_reply_error(rq->api, c->reply, r == -EMSGSIZE ? CLIENT : SERVER, "%s",
                           r == -EMSGSIZE
                               ? "the task definition is too large to share through etcd"
                               : "the cluster's task definitions (etcd) cannot be reached");
        call_free(c);
    }
    return AW_LISTENER_LATER;
}

static void on_deregistered(void *ctx, int err, int64_t revision, const char *why)
{
    shared_call *c = ctx;
    (void)revision;
    if (err) {
        es_err("DeregisterTaskDefinition %s:%" PRId64 ": the cluster: %s", c->td->family,
               c->td->revision, why);
        ag_api_reply_error(c->api, c->reply, SERVER,
                           "taskDefinition: the cluster's task definitions (etcd) failed: %s", why);
        call_free(c);
        return;
    }
    /* as the cluster holds it now (deregistered here, or before by another agent) */
    ag_taskdef *now = NULL;
    if (ag_store_taskdef_get(ag_api_store(c->api), c->td->family, c->td->revision, &now) == 0) {
        ag_taskdef_free(c->td);
        c->td = now;
    } else {
        ag_taskdef_deregister(c->td, c->now);
    }
    es_info("task definition %s:%" PRId64 " deregistered in the cluster by %s", c->td->family,
            c->td->revision, c->principal);
    answer(c);
    call_free(c);
}

int ag_api_td_deregister_shared(ag_api_req *rq, ag_taskdef *td)
{
    const ag_api_td_share *share = ag_api_get_td_share(rq->api);
    shared_call *c = call_new(rq, td, false);
    if (!c) {
        ag_taskdef_free(td);
        return ag_api_fail(rq, SERVER, "the deregistration cannot wait for the cluster here");
    }
    int r = share->deregister_td(share->arg, td->family, td->revision, c->now, on_deregistered, c);
    if (r < 0) {
        ag_api_reply_error(rq->api, c->reply, SERVER,
                           "the cluster's task definitions (etcd) cannot be reached");
        call_free(c);
    }
    return AW_LISTENER_LATER;
}

/* libFuzzer driver for the Docker client's decoders of dockerd output: the
 * /events line splitter and event decoder, the pull progress stream, and the
 * JSON answers of version/create/inspect/list/image inspect. The static
 * functions are reached by compiling the module files into the driver.
 *
 * First byte: bits 0-2 pick the decoder, the rest a split step. */
#include "../../docker/events.c"
#include "../../docker/ops.c"

#include <stdlib.h>

static void check_str(const char *s)
{
    if (s)
        (void)strlen(s);
}

static void f_event(void *ud, const dk_event *e)
{
    (void)ud;
    if (!e->id || !e->action)
        abort();
    check_str(e->name);
    check_str(e->image);
    check_str(e->task_arn);
}

static void f_error(void *ud, int err, unsigned attempt, uint64_t delay)
{
    (void)ud;
    (void)attempt;
    (void)delay;
    if (err >= 0)
        abort();
}

static void f_done(void *ud, const dk_result *r)
{
    (void)ud;
    check_str(r->message);
}

static void f_version(void *ud, const dk_result *r, const dk_version_info *v)
{
    (void)ud;
    if (!r->err && !v)
        abort();
}

static void f_create(void *ud, const dk_result *r, const char *id)
{
    (void)ud;
    if (!r->err && !id)
        abort();
}

static void f_inspect(void *ud, const dk_result *r, const dk_container_info *i)
{
    (void)ud;
    if (r->err)
        return;
    check_str(i->id);
    for (size_t k = 0; k < i->nlabels; k++)
        check_str(i->labels[k].key), check_str(i->labels[k].value);
    for (size_t k = 0; k < i->nenv; k++)
        check_str(i->env[k]);
    for (size_t k = 0; k < i->nlog_opts; k++)
        check_str(i->log_opts[k].value);
}

static void f_list(void *ud, const dk_result *r, const dk_container_summary *it, size_t n)
{
    (void)ud;
    (void)r;
    for (size_t k = 0; k < n; k++) {
        check_str(it[k].id);
        check_str(it[k].name);
        for (size_t l = 0; l < it[k].nlabels; l++)
            check_str(it[k].labels[l].value);
    }
}

static void f_image(void *ud, const dk_result *r, const dk_image_info *i)
{
    (void)ud;
    if (!r->err && (!i || !i->id))
        abort();
}

/* The create answer's recogniser accepts only documents the JSON parser
 * accepts, with the same Id. */
static void check_create_fast(const char *d, size_t n)
{
    char id[DK__ID_LEN + 1];
    if (!create_id_fast(d, n, id))
        return;
    es_json *j = NULL;
    if (es_json_parse(d, n, &resp_limits, &j, NULL, 0) != 0)
        abort();
    const char *full = es_json_get_str(j, "Id");
    if (!full || strcmp(full, id) != 0)
        abort();
    es_json_free(j);
}

static void fuzz_events(const char *d, size_t n, size_t step)
{
    dk_events w;
    memset(&w, 0, sizeof(w));
    w.state = W_STREAMING;
    w.cbs.on_event = f_event;
    w.cbs.on_error = f_error;
    es_buf_init(&w.line, 512);
    dk__req r;
    memset(&r, 0, sizeof(r));
    r.op = &w;
    for (size_t off = 0; off < n; off += step)
        events_stream(&r, d + off, n - off < step ? n - off : step);
    es_buf_free(&w.line);
}

/* A client that never connects (nothing is submitted): it hands out the
 * request blocks and takes them back, as for real operations. */
static dk_client *fuzz_client(void)
{
    static dk_client *c;
    static uv_loop_t loop;
    if (!c) {
        dk_options o = {.host = "unix:///nonexistent/fuzz.sock"};
        if (uv_loop_init(&loop) != 0 || dk_client_create(&loop, &o, &c) != 0)
            abort();
    }
    return c;
}

static void fuzz_answer(int which, const char *d, size_t n, size_t step)
{
    static const op_kind kinds[] = {OP_VERSION, OP_CREATE, OP_INSPECT, OP_LIST, OP_IMAGE, OP_PULL};
    dk__req *r = op_req(fuzz_client(), kinds[which], NULL, "GET", true);
    if (!r || es_buf_append_str(&r->path, "/x") < 0)
        abort();
    op *o = r->op;
    switch (o->kind) {
    case OP_VERSION:
        o->cb.version = f_version;
        break;
    case OP_CREATE:
        o->cb.create = f_create;
        break;
    case OP_INSPECT:
        o->cb.inspect = f_inspect;
        break;
    case OP_LIST:
        o->cb.list = f_list;
        break;
    case OP_IMAGE:
        o->cb.image = f_image;
        break;
    default:
        o->cb.done = f_done;
        break;
    }
    r->status = (n & 1) ? 200 : 404;
    r->resp.max = 1 << 20;
    if (o->kind == OP_PULL) {
        r->status = 200;
        for (size_t off = 0; off < n; off += step)
            if (pull_stream(r, d + off, n - off < step ? n - off : step) < 0)
                break;
        pull_done(r, 0);
        return;
    }
    es_buf_append(&r->resp, d, n);
    if (o->kind == OP_CREATE)
        check_create_fast(d, n);
    on_done(r, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int which = data[0] & 7;
    size_t step = (size_t)(data[0] >> 3) + 1;
    const char *d = (const char *)data + 1;
    size--;
    if (which >= 6)
        fuzz_events(d, size, step);
    else
        fuzz_answer(which, d, size, step);
    return 0;
}

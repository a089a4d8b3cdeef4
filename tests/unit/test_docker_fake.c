/* The Docker client against a scripted fake dockerd on a unix socket in the
 * same loop: wire details that a real dockerd will not produce on demand
 * (version headers, an error line after a 200 pull, limits, timeouts,
 * close-delimited answers, split/oversized event lines, resume with since=). */
#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "common/http.h"
#include "docker/docker.h"
#include "docker/internal.h"

static uv_loop_t loop;
static uv_pipe_t server;
static char sock_path[108];
static char host[128];
static dk_client *cli;

/* what the fake answers with */
static const char *ping_api = "1.41"; /* NULL: no Api-Version header */
static char last_target[4096];
static char last_request[8192];
static char events_targets[4][1024];
static int nevents_conns;
static int nconns;
static int nrequests; /* complete requests the fake read */
static int drop_next; /* > 0: close the connection on the next request, unanswered */

typedef struct fconn {
    uv_pipe_t pipe;
    es_http_parser *p;
    es_buf req;
    bool events;
} fconn;

static fconn *fconns[512]; /* the fake's open connections */

static void fc_closed(uv_handle_t *h)
{
    fconn *f = h->data;
    for (size_t i = 0; i < 512; i++)
        if (fconns[i] == f)
            fconns[i] = NULL;
    es_http_parser_free(f->p);
    es_buf_free(&f->req);
    free(f);
}

static void fc_close(fconn *f)
{
    if (!uv_is_closing((uv_handle_t *)&f->pipe))
        uv_close((uv_handle_t *)&f->pipe, fc_closed);
}

typedef struct wr {
    uv_write_t w;
    char *data;
    fconn *f;
    bool close_after;
} wr;

static void on_written(uv_write_t *w, int status)
{
    (void)status;
    wr *x = (wr *)w;
    if (x->close_after)
        fc_close(x->f);
    free(x->data);
    free(x);
}

static void send_str(fconn *f, const char *s, size_t n, bool close_after)
{
    wr *x = calloc(1, sizeof(*x));
    x->data = malloc(n);
    memcpy(x->data, s, n);
    x->f = f;
    x->close_after = close_after;
    uv_buf_t b = uv_buf_init(x->data, (unsigned)n);
    cr_assert_eq(uv_write(&x->w, (uv_stream_t *)&f->pipe, &b, 1, on_written), 0);
}

/* chunked body helper */
static void chunk(es_buf *b, const char *s)
{
    cr_assert_eq(es_http_write_chunk(b, s, strlen(s)), 0);
}

static const char *events_script; /* the events stream body for the next connection */

static const char *create_answer; /* the create answer's body; NULL: the default */

/* "/containers/late/...": 204 after 600 ms */
typedef struct late {
    uv_timer_t t;
    fconn *f;
} late;

static void late_closed(uv_handle_t *h)
{
    free(h->data);
}

static void late_fire(uv_timer_t *t)
{
    late *l = t->data;
    es_buf b;
    es_buf_init(&b, 4096);
    es_http_write_status_line(&b, 204, NULL);
    es_http_write_end_head(&b);
    send_str(l->f, b.data, b.len, false);
    es_buf_free(&b);
    uv_close((uv_handle_t *)t, late_closed);
}

static void answer(fconn *f)
{
    const char *t = es_http_parser_target(f->p);
    snprintf(last_target, sizeof(last_target), "%s", t);
    es_buf b;
    es_buf_init(&b, 1 << 20);
    if (strcmp(t, "/_ping") == 0) {
        /* formatted without es_ allocations: a_steady_request_allocates_nothing
         * makes every es_ allocation fail while the fake answers a ping */
        char a[256];
        int n = snprintf(a, sizeof(a),
                         "HTTP/1.1 200 OK\r\n%s%s%sContent-Type: text/plain\r\n"
                         "Content-Length: 2\r\n\r\nOK",
                         ping_api ? "API-VERSION: " : "", ping_api ? ping_api : "",
                         ping_api ? "\r\n" : "");
        send_str(f, a, (size_t)n, false);
    } else if (strstr(t, "/containers/create")) {
        es_http_write_status_line(&b, 201, NULL);
        es_http_write_header(&b, "Transfer-Encoding", "chunked");
        es_http_write_end_head(&b);
        if (create_answer) {
            chunk(&b, create_answer);
        } else {
            chunk(&b, "{\"Id\":\"ab");
            chunk(&b, "c123\",\"Warnings\":null}\n");
        }
        es_http_write_chunk(&b, NULL, 0);
        send_str(f, b.data, b.len, false);
    } else if (strstr(t, "/images/create?fromImage=bad")) {
        es_http_write_status_line(&b, 200, NULL);
        es_http_write_header(&b, "Transfer-Encoding", "chunked");
        es_http_write_end_head(&b);
        chunk(&b, "{\"status\":\"Pulling from x\"}\r\n{\"status\":\"Downl");
        chunk(&b, "oading\",\"progress\":\"[=> ]\"}\r\n");
        chunk(&b, "{\"errorDetail\":{\"message\":\"unauthorized: denied\"},"
                  "\"error\":\"unauthorized: denied\"}\r\n");
        es_http_write_chunk(&b, NULL, 0);
        send_str(f, b.data, b.len, false);
    } else if (strstr(t, "/images/create?fromImage=good")) {
        es_http_write_status_line(&b, 200, NULL);
        es_http_write_header(&b, "Transfer-Encoding", "chunked");
        es_http_write_end_head(&b);
        chunk(&b, "{\"status\":\"Pulling\"}\r\n{\"status\":\"Status: Downloaded newer image\"}");
        es_http_write_chunk(&b, NULL, 0);
        send_str(f, b.data, b.len, false);
    } else if (strstr(t, "/containers/slow/")) {
        /* never answers */
    } else if (strstr(t, "/containers/late/")) {
        late *l = calloc(1, sizeof(*l));
        l->f = f;
        l->t.data = l;
        uv_timer_init(&loop, &l->t);
        uv_timer_start(&l->t, late_fire, 600, 0);
    } else if (strstr(t, "/containers/manyhdr/")) {
        es_http_write_status_line(&b, 200, NULL);
        for (int i = 0; i < 150; i++)
            es_buf_printf(&b, "X-H%d: v\r\n", i);
        es_http_write_body(&b, NULL, "{}", 2);
        send_str(f, b.data, b.len, false);
    } else if (strstr(t, "/containers/bighead/")) {
        es_http_write_status_line(&b, 200, NULL);
        es_buf_append_str(&b, "X-Big: ");
        for (int i = 0; i < 20000; i++)
            es_buf_append_char(&b, 'a');
        es_buf_append_str(&b, "\r\n");
        es_http_write_body(&b, NULL, "{}", 2);
        send_str(f, b.data, b.len, false);
    } else if (strstr(t, "/containers/hugebody/")) {
        es_http_write_status_line(&b, 200, NULL);
        es_http_write_end_head(&b); /* close-delimited */
        es_buf_append_char(&b, '"');
        for (int i = 0; i < 5000; i++)
            es_buf_append_char(&b, 'b');
        send_str(f, b.data, b.len, true);
    } else if (strstr(t, "/containers/hugecl/")) {
        /* a Content-Length past the client's body maximum (4096) */
        es_http_write_status_line(&b, 200, NULL);
        es_buf_printf(&b, "Content-Length: 5000\r\n\r\n\"");
        for (int i = 0; i < 4999; i++)
            es_buf_append_char(&b, 'c');
        send_str(f, b.data, b.len, false);
    } else if (strstr(t, "/containers/exactcl/")) {
        /* a Content-Length answer of exactly the maximum */
        es_http_write_status_line(&b, 200, NULL);
        es_buf_printf(&b, "Content-Length: 4096\r\n\r\n{\"Id\":\"e1\",\"State\":{},\"Pad\":\"");
        size_t body_so_far = strlen("{\"Id\":\"e1\",\"State\":{},\"Pad\":\"");
        for (size_t i = body_so_far; i < 4096 - 2; i++)
            es_buf_append_char(&b, 'p');
        es_buf_append_str(&b, "\"}");
        send_str(f, b.data, b.len, false);
    } else if (strstr(t, "/containers/closedelim/json")) {
        es_buf_append_str(&b, "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n"
                              "{\"Id\":\"cd1\",\"Name\":\"/cd\",\"State\":{\"Status\":\"exited\","
                              "\"Running\":false,\"ExitCode\":3,\"OOMKilled\":true},"
                              "\"Config\":{\"Image\":\"img\",\"Labels\":{\"a\":\"b\"},"
                              "\"Env\":[\"K=V\"]}}");
        send_str(f, b.data, b.len, true);
    } else if (strstr(t, "/containers/gone/")) {
        es_http_write_status_line(&b, 404, NULL);
        es_http_write_body(&b, "application/json", "{\"message\":\"No such container: gone\"}", 37);
        send_str(f, b.data, b.len, false);
    } else if (strstr(t, "/events?")) {
        f->events = true;
        if (nevents_conns < 4)
            snprintf(events_targets[nevents_conns], sizeof(events_targets[0]), "%s", t);
        nevents_conns++;
        es_http_write_status_line(&b, 200, NULL);
        es_http_write_header(&b, "Transfer-Encoding", "chunked");
        es_http_write_end_head(&b);
        if (events_script) {
            /* one event split across three chunks, then the rest */
            size_t n = strlen(events_script);
            size_t a = n / 3, c = 2 * n / 3;
            es_http_write_chunk(&b, events_script, a);
            es_http_write_chunk(&b, events_script + a, c - a);
            es_http_write_chunk(&b, events_script + c, n - c);
        }
        /* the stream ends (dockerd went away) */
        send_str(f, b.data, b.len, true);
        events_script = NULL;
    } else {
        es_http_write_status_line(&b, 500, NULL);
        es_http_write_body(&b, "application/json", "{\"message\":\"unscripted\"}", 24);
        send_str(f, b.data, b.len, false);
    }
    es_buf_free(&b);
}

static void fc_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(s);
    b->len = s;
}

static void fc_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    fconn *f = s->data;
    if (n < 0) {
        fc_close(f);
        free(buf->base);
        return;
    }
    size_t off = 0;
    es_buf_append(&f->req, buf->base, (size_t)n);
    for (;;) {
        size_t used = 0;
        int rc = es_http_parser_feed(f->p, buf->base + off, (size_t)n - off, &used);
        off += used;
        if (rc == ES_HTTP_HEADERS)
            continue;
        if (rc == ES_HTTP_DONE) {
            snprintf(last_request, sizeof(last_request), "%s", es_buf_cstr(&f->req));
            es_buf_reset(&f->req);
            nrequests++;
            if (drop_next > 0) {
                drop_next--;
                fc_close(f); /* read, never answered */
                break;
            }
            answer(f);
            es_http_parser_reset(f->p);
            continue;
        }
        cr_assert_geq(rc, 0, "fake dockerd: bad request: %s", es_http_strerror(rc));
        break; /* need more */
    }
    free(buf->base);
}

static void on_conn(uv_stream_t *srv, int status)
{
    cr_assert_eq(status, 0);
    fconn *f = calloc(1, sizeof(*f));
    uv_pipe_init(&loop, &f->pipe, 0);
    f->pipe.data = f;
    cr_assert_eq(es_http_parser_create(ES_HTTP_REQUEST, NULL, &f->p), 0);
    es_buf_init(&f->req, 1 << 20);
    cr_assert_eq(uv_accept(srv, (uv_stream_t *)&f->pipe), 0);
    uv_read_start((uv_stream_t *)&f->pipe, fc_alloc, fc_read);
    nconns++;
    for (size_t i = 0; i < 512; i++)
        if (!fconns[i]) {
            fconns[i] = f;
            break;
        }
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN); /* as the daemon does: a peer gone mid-write is an error */
    cr_assert_eq(uv_loop_init(&loop), 0);
    snprintf(sock_path, sizeof(sock_path), "/tmp/es-dkfake-%d.sock", (int)getpid());
    unlink(sock_path);
    uv_pipe_init(&loop, &server, 0);
    cr_assert_eq(uv_pipe_bind(&server, sock_path), 0);
    cr_assert_eq(uv_listen((uv_stream_t *)&server, 16, on_conn), 0);
    snprintf(host, sizeof(host), "unix://%s", sock_path);
    dk_options o = {.host = host, .timeout_ms = 300, .max_body = 4096};
    cr_assert_eq(dk_client_create(&loop, &o, &cli), 0);
    ping_api = "1.41";
    nconns = nevents_conns = nrequests = drop_next = 0;
    events_script = NULL;
}

static void teardown(void)
{
    dk_client_free(cli);
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_close((uv_handle_t *)&server, NULL);
    for (size_t i = 0; i < 512; i++)
        if (fconns[i])
            fc_close(fconns[i]);
    uv_run(&loop, UV_RUN_DEFAULT);
    unlink(sock_path);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

TestSuite(docker_fake, .init = setup, .fini = teardown, .timeout = 30);

typedef struct res {
    bool done;
    int err, status;
    char msg[256];
    char id[80];
    char extra[512];
} res;

static void done_cb(void *ud, const dk_result *r)
{
    res *x = ud;
    x->done = true;
    x->err = r->err;
    x->status = r->status;
    snprintf(x->msg, sizeof(x->msg), "%s", r->message ? r->message : "");
}

static void create_cb(void *ud, const dk_result *r, const char *id)
{
    done_cb(ud, r);
    if (id)
        snprintf(((res *)ud)->id, sizeof(((res *)ud)->id), "%s", id);
}

static void inspect_cb(void *ud, const dk_result *r, const dk_container_info *i)
{
    done_cb(ud, r);
    if (i)
        snprintf(((res *)ud)->extra, sizeof(((res *)ud)->extra), "%s %s %s %d %d %d %s=%s %s",
                 i->id, i->name, i->status, i->running, i->exit_code, i->oom_killed,
                 i->nlabels ? i->labels[0].key : "", i->nlabels ? i->labels[0].value : "",
                 i->nenv ? i->env[0] : "");
}

static void run_until(const bool *flag)
{
    for (int i = 0; i < 100000 && !*flag; i++)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert(*flag);
}

/* A create whose Env carries a secret value (DB_PASSWORD=hunter2), run to
 * its answer, which must be a success. */
static res create_with_secret_env(void)
{
    dk_kv env[] = {{"DB_PASSWORD", "hunter2"}};
    dk_create_spec s = {.name = "n", .image = "img", .env = env, .nenv = 1};
    res r = {0};
    cr_assert_eq(dk_container_create(cli, &s, create_cb, &r), 0);
    run_until(&r.done);
    cr_assert_eq(r.err, 0, "%s", dk_strerror(r.err));
    return r;
}

static res inspect(const char *id)
{
    res r = {0};
    cr_assert_eq(dk_container_inspect(cli, id, inspect_cb, &r), 0);
    run_until(&r.done);
    return r;
}

Test(docker_fake, version_negotiation)
{
    struct {
        const char *api, *want;
    } cases[] = {{"1.41", "1.41"}, {"1.43", "1.41"}, {"1.30", "1.30"}, {NULL, "1.24"}};
    for (size_t i = 0; i < 4; i++) {
        dk_client_free(cli);
        dk_options o = {.host = host, .timeout_ms = 300};
        cr_assert_eq(dk_client_create(&loop, &o, &cli), 0);
        ping_api = cases[i].api;
        res r = inspect("gone");
        cr_assert_eq(r.err, DK_E_NOT_FOUND);
        cr_assert_str_eq(dk_client_api_version(cli), cases[i].want);
        char want[64];
        snprintf(want, sizeof(want), "/v%s/containers/gone/json", cases[i].want);
        cr_assert_str_eq(last_target, want);
        cr_assert_str_eq(r.msg, "No such container: gone");
    }
}

Test(docker_fake, create_request_on_the_wire_and_chunked_answer)
{
    dk_kv env[] = {{"DB_PASSWORD", "hunter2"}};
    dk_kv lopts[] = {{"splunk-token", "tok-123"}};
    dk_kv labels[] = {{DK_TASK_ARN_LABEL, "arn:x"}};
    const char *cmd[] = {"sh", "-c", "echo \"hi\""};
    dk_create_spec s = {.name = "my name",
                        .image = "img:1",
                        .cmd = cmd,
                        .ncmd = 3,
                        .env = env,
                        .nenv = 1,
                        .labels = labels,
                        .nlabels = 1,
                        .log_driver = "splunk",
                        .log_opts = lopts,
                        .nlog_opts = 1,
                        .network_mode = "none"};
    res r = {0};
    cr_assert_eq(dk_container_create(cli, &s, create_cb, &r), 0);
    run_until(&r.done);
    cr_assert_eq(r.err, 0, "%s", dk_strerror(r.err));
    cr_assert_eq(r.status, 201);
    cr_assert_str_eq(r.id, "abc123");
    cr_assert(strstr(last_request, "POST /v1.41/containers/create?name=my%20name HTTP/1.1\r\n"),
              "%s", last_request);
    cr_assert(strstr(last_request, "\r\nHost: docker\r\n"));
    cr_assert(strstr(last_request, "\r\nContent-Type: application/json\r\n"));
    cr_assert(strstr(last_request, "\"Env\":[\"DB_PASSWORD=hunter2\"]"), "%s", last_request);
    cr_assert(strstr(last_request, "\"LogConfig\":{\"Type\":\"splunk\",\"Config\":{\"splunk-token\""
                                   ":\"tok-123\"}}"),
              "%s", last_request);
    cr_assert(strstr(last_request, "\"NetworkMode\":\"none\""));
    cr_assert(strstr(last_request, "\"Cmd\":[\"sh\",\"-c\",\"echo \\\"hi\\\"\"]"));

    es_buf d;
    es_buf_init(&d, 65536);
    cr_assert_eq(dk_create_spec_dump(&s, &d), 0);
    cr_assert_null(strstr(es_buf_cstr(&d), "hunter2"), "Env value masked in the dump");
    cr_assert_null(strstr(es_buf_cstr(&d), "tok-123"), "log option value masked in the dump");
    cr_assert(strstr(es_buf_cstr(&d), "DB_PASSWORD=***"));
    cr_assert(strstr(es_buf_cstr(&d), "arn:x"), "labels are not secret");
    es_buf_free(&d);
}

/* What the agent's containers need besides (agent/secrets/inject.h fills these):
 * Docker's own "NAME=value" Env lines after the pairs, Entrypoint, WorkingDir,
 * User, StopTimeout, Memory and CpuShares; the dump masks the lines' values. */
Test(docker_fake, create_body_carries_every_field_the_agent_sets)
{
    dk_kv env[] = {{"A", "pair-value"}};
    const char *lines[] = {"B=line-secret", "C="};
    const char *ep[] = {"/bin/sh", "-c"};
    dk_create_spec s = {.image = "img:1",
                        .entrypoint = ep,
                        .nentrypoint = 2,
                        .env = env,
                        .nenv = 1,
                        .env_lines = lines,
                        .nenv_lines = 2,
                        .working_dir = "/w",
                        .user = "nobody",
                        .has_stop_timeout = true,
                        .stop_timeout_s = 20,
                        .has_memory = true,
                        .memory_bytes = 64 << 20,
                        .has_cpu = true,
                        .cpu_shares = 256};
    es_buf b;
    es_buf_init(&b, 65536);
    cr_assert_eq(dk_create_body(&s, &b), 0);
    const char *body = es_buf_cstr(&b);
    cr_assert(strstr(body, "\"Env\":[\"A=pair-value\",\"B=line-secret\",\"C=\"]"), "%s", body);
    cr_assert(strstr(body, "\"Entrypoint\":[\"/bin/sh\",\"-c\"]"), "%s", body);
    cr_assert_null(strstr(body, "\"Cmd\""), "no command: the image's");
    cr_assert(strstr(body, "\"WorkingDir\":\"/w\",\"User\":\"nobody\",\"StopTimeout\":20"), "%s",
              body);
    cr_assert(strstr(body, "\"HostConfig\":{\"Memory\":67108864,\"CpuShares\":256}"), "%s", body);
    es_buf_free_secret(&b);

    es_buf d;
    es_buf_init(&d, 65536);
    cr_assert_eq(dk_create_spec_dump(&s, &d), 0);
    cr_assert_null(strstr(es_buf_cstr(&d), "line-secret"), "Env line value masked");
    cr_assert_null(strstr(es_buf_cstr(&d), "pair-value"));
    cr_assert(strstr(es_buf_cstr(&d), "\"B=***\""), "%s", es_buf_cstr(&d));
    es_buf_free(&d);
}

Test(docker_fake, pull_error_line_after_200_is_a_failure)
{
    res r = {0};
    cr_assert_eq(dk_image_pull(cli, "bad", "latest", "eyJ1c2VybmFtZSI6InUifQ", done_cb, &r), 0);
    run_until(&r.done);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.err, DK_E_PULL, "%s", dk_strerror(r.err));
    cr_assert_str_eq(r.msg, "unauthorized: denied");
    cr_assert(strstr(last_request, "\r\nX-Registry-Auth: eyJ1c2VybmFtZSI6InUifQ\r\n"));
    res g = {0};
    cr_assert_eq(dk_image_pull(cli, "good", NULL, NULL, done_cb, &g), 0);
    run_until(&g.done);
    cr_assert_eq(g.err, 0, "%s %s", dk_strerror(g.err), g.msg);
    cr_assert_eq(dk_image_pull(cli, "x", NULL, "a\r\nInjected: 1", done_cb, &g), -EINVAL);
    /* the named maximum of an X-Registry-Auth value */
    char *big = malloc(DK_REGISTRY_AUTH_MAX + 2);
    cr_assert_not_null(big);
    memset(big, 'A', DK_REGISTRY_AUTH_MAX + 1);
    big[DK_REGISTRY_AUTH_MAX + 1] = '\0';
    cr_assert_eq(dk_image_pull(cli, "x", NULL, big, done_cb, &g), -EMSGSIZE);
    free(big);
}

Test(docker_fake, limits_and_timeout_are_named_errors)
{
    res r = inspect("slow");
    cr_assert_eq(r.err, -ETIMEDOUT, "%s", dk_strerror(r.err));
    r = inspect("manyhdr");
    cr_assert_eq(r.err, ES_HTTP_E_TOO_MANY_HEADERS, "%s", dk_strerror(r.err));
    r = inspect("bighead");
    cr_assert_eq(r.err, ES_HTTP_E_HEADER_TOO_LARGE, "%s", dk_strerror(r.err));
    r = inspect("hugebody");
    cr_assert_eq(r.err, ES_HTTP_E_BODY_TOO_LARGE, "%s", dk_strerror(r.err));
    r = inspect("hugecl");
    cr_assert_eq(r.err, ES_HTTP_E_BODY_TOO_LARGE, "%s", dk_strerror(r.err));
    r = inspect("exactcl"); /* collected in one allocation of the announced size */
    cr_assert_eq(r.err, 0, "%s", dk_strerror(r.err));
    cr_assert(strstr(r.extra, "e1 "), "%s", r.extra);
    /* the client still works afterwards */
    r = inspect("closedelim");
    cr_assert_eq(r.err, 0, "%s", dk_strerror(r.err));
}

Test(docker_fake, close_delimited_answer_and_pool_bound)
{
    res r = inspect("closedelim");
    cr_assert_eq(r.err, 0, "%s", dk_strerror(r.err));
    cr_assert_str_eq(r.extra, "cd1 cd exited 0 3 1 a=b K=V");
    /* 10 parallel requests share at most 4 connections */
    int before = nconns;
    res many[10];
    memset(many, 0, sizeof(many));
    for (int i = 0; i < 10; i++)
        cr_assert_eq(dk_container_inspect(cli, "gone", inspect_cb, &many[i]), 0);
    for (int i = 0; i < 10; i++) {
        run_until(&many[i].done);
        cr_assert_eq(many[i].err, DK_E_NOT_FOUND);
    }
    cr_assert_leq(nconns - before, 4, "pool bound");
    dk_stats st;
    dk_client_stats(cli, &st);
    cr_assert_geq(st.reused, 6);
}

/* ---- retries on a stale kept-alive connection ---- */

/* Closes the fake's side of every connection now (uv_close closes the fd at
 * once), as dockerd does when it restarts: the client has not seen it yet. */
static void fake_close_all(void)
{
    for (size_t i = 0; i < 512; i++)
        if (fconns[i])
            fc_close(fconns[i]);
}

/* One exchange, so that the pool holds an idle kept-alive connection. */
static void warm_up(void)
{
    res r = inspect("gone");
    cr_assert_eq(r.err, DK_E_NOT_FOUND);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static uint64_t retries(void)
{
    dk_stats st;
    dk_client_stats(cli, &st);
    return st.retries;
}

Test(docker_fake, stale_connection_write_refused_post_is_sent_again)
{
    warm_up();
    int conns = nconns, reqs = nrequests;
    fake_close_all();
    /* the create goes to the idle connection, whose peer is gone: the
     * write fails (EPIPE) with nothing accepted, so dockerd cannot have
     * seen it: sent again, body and all, on a fresh connection */
    res r = create_with_secret_env();
    cr_assert_str_eq(r.id, "abc123");
    cr_assert(strstr(last_request, "\"Env\":[\"DB_PASSWORD=hunter2\"]"), "%s", last_request);
    cr_assert_eq(nconns, conns + 1, "a fresh connection");
    cr_assert_eq(nrequests, reqs + 1, "the fake saw the create once");
    cr_assert_eq(retries(), 1);
}

Test(docker_fake, stale_connection_reset_with_request_unread_post_is_sent_again)
{
    warm_up();
    int conns = nconns, reqs = nrequests;
    for (size_t i = 0; i < 512; i++)
        if (fconns[i])
            uv_read_stop((uv_stream_t *)&fconns[i]->pipe);
    res r = {0};
    cr_assert_eq(dk_container_start(cli, "gone", done_cb, &r), 0); /* written at once */
    /* closed with the start unread: the client reads ECONNRESET, which on a
     * unix socket means the peer never read it */
    fake_close_all();
    run_until(&r.done);
    cr_assert_eq(r.err, DK_E_NOT_FOUND, "%s", dk_strerror(r.err));
    cr_assert_str_eq(r.msg, "No such container: gone");
    cr_assert(strstr(last_request, "POST /v1.41/containers/gone/start HTTP/1.1\r\n"));
    cr_assert_eq(nconns, conns + 1);
    cr_assert_eq(nrequests, reqs + 1, "the fake read the start once");
    cr_assert_eq(retries(), 1);
}

Test(docker_fake, stale_connection_eof_after_the_request_was_read_post_is_not_sent_again)
{
    warm_up();
    int conns = nconns, reqs = nrequests;
    drop_next = 1;
    res r = {0};
    cr_assert_eq(dk_container_start(cli, "gone", done_cb, &r), 0);
    run_until(&r.done);
    /* dockerd read it and said nothing: it may have started the container,
     * so the error is reported rather than the start repeated */
    cr_assert_eq(r.err, -ECONNRESET, "%s", dk_strerror(r.err));
    cr_assert_eq(nrequests, reqs + 1, "sent once");
    cr_assert_eq(nconns, conns);
    cr_assert_eq(retries(), 0);
    /* the same for a remove (DELETE) */
    warm_up();
    reqs = nrequests;
    drop_next = 1;
    memset(&r, 0, sizeof(r));
    cr_assert_eq(dk_container_remove(cli, "gone", true, done_cb, &r), 0);
    run_until(&r.done);
    cr_assert_eq(r.err, -ECONNRESET, "%s", dk_strerror(r.err));
    cr_assert_eq(nrequests, reqs + 1, "sent once");
    cr_assert_eq(retries(), 0);
}

Test(docker_fake, stale_connection_eof_get_is_sent_again_once)
{
    warm_up();
    int conns = nconns, reqs = nrequests;
    drop_next = 1;
    res r = inspect("gone");
    cr_assert_eq(r.err, DK_E_NOT_FOUND, "%s", dk_strerror(r.err));
    cr_assert_eq(nrequests, reqs + 2);
    cr_assert_eq(nconns, conns + 1);
    cr_assert_eq(retries(), 1);
    /* only once: dropped again on the fresh connection, it fails */
    warm_up();
    reqs = nrequests;
    drop_next = 2;
    r = inspect("gone");
    cr_assert_eq(r.err, -ECONNRESET, "%s", dk_strerror(r.err));
    cr_assert_eq(nrequests, reqs + 2);
    cr_assert_eq(retries(), 2);
}

/* The deadline timer is armed lazily (docker/conn.c, "Deadlines"). On one
 * kept connection: a request with a later deadline outlives the timer armed
 * for an earlier request (it fires, sees the deadline ahead and re-arms),
 * and a request with an earlier deadline than the armed one still times out
 * on time. */
Test(docker_fake, deadlines_on_one_kept_connection)
{
    warm_up(); /* one connection, its timer armed for 300 ms */
    int conns = nconns;
    res r = {0};
    uint64_t t0 = uv_now(&loop);
    /* a stop's deadline is its grace period plus 30 s; answered at 600 ms */
    cr_assert_eq(dk_container_stop(cli, "late", 0, done_cb, &r), 0);
    run_until(&r.done);
    cr_assert_eq(r.err, 0, "%s", dk_strerror(r.err));
    cr_assert_eq(r.status, 204);
    cr_assert_geq(uv_now(&loop) - t0, 550);
    /* the timer now waits for the stop's 30 s: the inspect's 300 ms rule */
    t0 = uv_now(&loop);
    r = inspect("slow");
    cr_assert_eq(r.err, -ETIMEDOUT, "%s", dk_strerror(r.err));
    uint64_t took = uv_now(&loop) - t0;
    cr_assert(took >= 250 && took < 5000, "timed out after %llu ms", (unsigned long long)took);
    cr_assert_eq(nconns, conns, "all on the one connection");
}

/* A start and a create have deadlines of their own (the ECS agent's 3 and 4
 * minutes by default): a busy dockerd answering a start after the ordinary
 * deadline (300 ms here) is still waited for, and a client given a shorter
 * start deadline gives up on it. */
Test(docker_fake, start_has_its_own_deadline)
{
    res r = {0};
    cr_assert_eq(dk_container_start(cli, "late", done_cb, &r), 0); /* answered at 600 ms */
    run_until(&r.done);
    cr_assert_eq(r.err, 0, "%s", dk_strerror(r.err));
    cr_assert_eq(r.status, 204);

    dk_client *c2;
    dk_options o = {.host = host, .timeout_ms = 5000, .start_timeout_ms = 200};
    cr_assert_eq(dk_client_create(&loop, &o, &c2), 0);
    r = (res){0};
    uint64_t t0 = uv_now(&loop);
    cr_assert_eq(dk_container_start(c2, "slow", done_cb, &r), 0); /* never answered */
    run_until(&r.done);
    cr_assert_eq(r.err, -ETIMEDOUT, "%s", dk_strerror(r.err));
    uint64_t took = uv_now(&loop) - t0;
    cr_assert(took >= 150 && took < 4000, "timed out after %llu ms", (unsigned long long)took);
    dk_client_free(c2);
}

Test(docker_fake, failure_on_a_fresh_connection_is_not_retried)
{
    drop_next = 1;
    res r = {0};
    cr_assert_eq(dk_ping(cli, done_cb, &r), 0);
    run_until(&r.done);
    cr_assert_eq(r.err, -ECONNRESET, "%s", dk_strerror(r.err));
    cr_assert_eq(nrequests, 1);
    cr_assert_eq(nconns, 1);
    cr_assert_eq(retries(), 0);
    /* a timeout is not retried either */
    warm_up();
    int reqs = nrequests;
    r = inspect("slow");
    cr_assert_eq(r.err, -ETIMEDOUT);
    cr_assert_eq(nrequests, reqs + 1);
    cr_assert_eq(retries(), 0);
}

/* ---- events ---- */

typedef struct evs {
    int events, connected, reconnected, errors, too_long;
    char log[1024];
} evs;

static void on_ev(void *ud, const dk_event *e)
{
    evs *x = ud;
    x->events++;
    char one[160];
    snprintf(one, sizeof(one), "%d:%s:%s:%d:%s;", (int)e->type, e->id,
             e->task_arn ? e->task_arn : "-", e->has_exit_code ? e->exit_code : -1,
             e->name ? e->name : "-");
    strncat(x->log, one, sizeof(x->log) - strlen(x->log) - 1);
}

static void on_connected(void *ud, bool again)
{
    evs *x = ud;
    x->connected++;
    x->reconnected += again;
}

static void on_error(void *ud, int err, unsigned attempt, uint64_t delay)
{
    evs *x = ud;
    (void)attempt;
    (void)delay;
    if (err == DK_E_LINE_TOO_LONG)
        x->too_long++;
    else
        x->errors++;
}

static void wait_int(const int *v, int want)
{
    for (int i = 0; i < 100000 && *v < want; i++)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert_geq(*v, want);
}

#define EV(action, id, t, extra)                                                                   \
    "{\"Type\":\"container\",\"Action\":\"" action "\",\"Actor\":{\"ID\":\"" id                    \
    "\",\"Attributes\":{\"name\":\"n-" id "\",\"" DK_TASK_ARN_LABEL "\":\"arn-" id "\"" extra      \
    "}},\"time\":1700000000,\"timeNano\":" t "}\n"

Test(docker_fake, events_decode_split_lines_skip_long_and_resume_with_since)
{
    static char script[8192];
    char longline[3000];
    memset(longline, 'x', sizeof(longline) - 2);
    longline[sizeof(longline) - 2] = '\n';
    longline[sizeof(longline) - 1] = '\0';
    snprintf(script, sizeof(script), "%s%s%s%s%s", EV("create", "c1", "1700000000000000001", ""),
             EV("start", "c1", "1700000000000000002", ""), longline,
             EV("die", "c1", "1700000000123456789", ",\"exitCode\":\"42\""),
             EV("oom", "c1", "1700000000123456790", ""));
    events_script = script;
    static evs x;
    memset(&x, 0, sizeof(x));
    dk_events_cbs cbs = {on_ev, on_connected, on_error};
    dk_events_options eo = {.backoff_min_ms = 5, .backoff_max_ms = 20, .max_line = 1024};
    dk_events *w = NULL;
    cr_assert_eq(dk_events_start(cli, &eo, &cbs, &x, &w), 0);
    wait_int(&x.events, 4);
    cr_assert_str_eq(x.log, "1:c1:arn-c1:-1:n-c1;2:c1:arn-c1:-1:n-c1;3:c1:arn-c1:42:n-c1;"
                            "4:c1:arn-c1:-1:n-c1;");
    cr_assert_eq(x.too_long, 1, "the oversized line is reported and skipped");
    cr_assert_eq(x.connected, 1);
    cr_assert_eq(x.reconnected, 0);
    /* the fake closed the stream: the watcher comes back, resuming after the
     * last event, and says it reconnected; a replayed last event is dropped */
    static char script2[2048];
    snprintf(script2, sizeof(script2), "%s%s", EV("oom", "c1", "1700000000123456790", ""),
             EV("destroy", "c1", "1700000001000000000", ""));
    events_script = script2;
    wait_int(&x.reconnected, 1);
    wait_int(&x.events, 5);
    cr_assert(strstr(x.log, ";5:c1:"), "%s", x.log);
    cr_assert_eq(x.events, 5, "the replayed oom was not delivered twice");
    cr_assert_geq(nevents_conns, 2);
    cr_assert(strstr(events_targets[0], "/v1.41/events?filters="), "%s", events_targets[0]);
    cr_assert(strstr(events_targets[0], "com.amazonaws.ecs.task-arn"), "%s", events_targets[0]);
    cr_assert_null(strstr(events_targets[0], "since="), "first stream starts now");
    cr_assert(strstr(events_targets[1], "&since=1700000000.123456790"), "%s", events_targets[1]);
    cr_assert_geq(x.errors, 1, "the loss was reported");
    dk_events_free(w);
}

/* Docker's health_status actions ("health_status: healthy") are typed, with
 * the status after the colon; one with nothing after it is not. */
typedef struct hevs {
    int events;
    char log[512];
} hevs;

static void on_health_ev(void *ud, const dk_event *e)
{
    hevs *x = ud;
    x->events++;
    char one[96];
    snprintf(one, sizeof(one), "%d:%s:%s;", (int)e->type, e->id, e->health ? e->health : "-");
    strncat(x->log, one, sizeof(x->log) - strlen(x->log) - 1);
}

Test(docker_fake, events_health_status)
{
    static char script[4096];
    snprintf(script, sizeof(script), "%s%s%s%s%s",
             EV("health_status: starting", "c1", "1700000000000000001", ""),
             EV("health_status: healthy", "c1", "1700000000000000002", ""),
             EV("health_status:unhealthy", "c1", "1700000000000000003", ""),
             EV("health_status", "c1", "1700000000000000004", ""),
             EV("exec_start: sh -c true", "c1", "1700000000000000005", ""));
    events_script = script;
    static hevs x;
    memset(&x, 0, sizeof(x));
    dk_events_cbs cbs = {on_health_ev, NULL, NULL};
    dk_events_options eo = {.backoff_min_ms = 5, .backoff_max_ms = 20, .max_line = 1024};
    dk_events *w = NULL;
    cr_assert_eq(dk_events_start(cli, &eo, &cbs, &x, &w), 0);
    wait_int(&x.events, 5);
    char want[256];
    snprintf(want, sizeof want, "%d:c1:starting;%d:c1:healthy;%d:c1:unhealthy;%d:c1:-;%d:c1:-;",
             DK_EV_HEALTH, DK_EV_HEALTH, DK_EV_HEALTH, DK_EV_OTHER, DK_EV_OTHER);
    cr_assert_str_eq(x.log, want);
    dk_events_free(w);
}

typedef struct freer {
    int calls, cancelled, first_err;
} freer;

static void free_in_cb(void *ud, const dk_result *r)
{
    freer *f = ud;
    if (f->calls++ == 0) {
        f->first_err = r->err;
        dk_client_free(cli); /* from inside its own callback */
        cli = NULL;
    } else if (r->err == -ECANCELED) {
        f->cancelled++;
    }
}

Test(docker_fake, client_freed_inside_its_callbacks)
{
    /* a failed negotiation fails the queue; the first callback frees */
    static freer f;
    memset(&f, 0, sizeof(f));
    dk_client_free(cli);
    dk_options o = {.host = "unix:///tmp/es-dkfake-no-such.sock"};
    cr_assert_eq(dk_client_create(&loop, &o, &cli), 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(dk_container_start(cli, "x", free_in_cb, &f), 0);
    for (int i = 0; i < 1000 && f.calls < 3; i++)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert_eq(f.calls, 3);
    cr_assert_eq(f.first_err, -ENOENT);
    cr_assert_eq(f.cancelled, 2);

    /* and on a live connection */
    memset(&f, 0, sizeof(f));
    dk_options o2 = {.host = host};
    cr_assert_eq(dk_client_create(&loop, &o2, &cli), 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(dk_container_start(cli, "gone", free_in_cb, &f), 0);
    for (int i = 0; i < 1000 && f.calls < 3; i++)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert_eq(f.calls, 3);
    cr_assert_eq(f.first_err, DK_E_NOT_FOUND);
    cr_assert_eq(f.cancelled, 2);
}

#include "common/alloc.h"

Test(docker_fake, allocation_failures_are_clean)
{
    dk_kv env[] = {{"A", "secret"}};
    const char *cmd[] = {"/bin/true"};
    dk_create_spec s = {.name = "n", .image = "img", .cmd = cmd, .ncmd = 1, .env = env, .nenv = 1};
    int ok = 0;
    static res r[60];
    memset(r, 0, sizeof(r));
    for (long n = 0; n < 60; n++) {
        es_alloc_fail_after(n);
        int e = dk_container_create(cli, &s, create_cb, &r[n]);
        es_alloc_fail_after(-1);
        if (e < 0) {
            cr_assert_eq(e, -ENOMEM, "n=%ld: %d", n, e);
            r[n].done = true; /* no callback comes for a refused call */
            continue;
        }
        ok++;
    }
    for (int n = 0; n < 60; n++)
        run_until(&r[n].done);
    cr_assert_gt(ok, 0);
    cr_assert_str_eq(r[59].id, "abc123");
}

Test(docker_fake, create_with_a_caller_built_body)
{
    const char body[] = "{\"Image\":\"img\",\"Entrypoint\":[\"/x\"],\"Env\":[\"S=v4lue\"]}";
    res r = {0};
    cr_assert_eq(dk_container_create_json(cli, "j name", body, sizeof(body) - 1, create_cb, &r), 0);
    run_until(&r.done);
    cr_assert_eq(r.err, 0, "%s", dk_strerror(r.err));
    cr_assert_str_eq(r.id, "abc123");
    cr_assert(strstr(last_request, "POST /v1.41/containers/create?name=j%20name HTTP/1.1\r\n"));
    char cl[64];
    snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", sizeof(body) - 1);
    cr_assert(strstr(last_request, cl), "%s", last_request);
    cr_assert(strstr(last_request, body));
}

/* A request made after the caller blocked outside the loop for longer than
 * the timeout (bench_docker runs curl for minutes between its halves; any
 * long synchronous step in a callback does the same on a smaller scale):
 * the loop's cached clock is that old, and a deadline taken from it expired
 * before the request was sent. It used to fail with ETIMEDOUT and close the
 * kept-alive connection it was sent on. */
Test(docker_fake, a_request_after_blocking_outside_the_loop_keeps_its_full_timeout)
{
    warm_up();
    int conns = nconns;
    usleep(400 * 1000); /* the client's timeout is 300 ms */
    res r = inspect("gone");
    cr_assert_eq(r.err, DK_E_NOT_FOUND, "%s", dk_strerror(r.err));
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(nconns, conns, "the kept-alive connection served it");
    dk_stats st;
    dk_client_stats(cli, &st);
    cr_assert_eq(st.connects, 1);
}

/* Query and path pieces: unreserved bytes as they are, every other byte
 * (including UTF-8 and controls) as %XX with upper-case hex. */
Test(docker_urlencode, runs_and_escapes)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"", ""},
        {"bench-12", "bench-12"},
        {"a b", "a%20b"},
        {" ", "%20"},
        {"~._-AZaz09", "~._-AZaz09"},
        {"/x?y=z&w#", "%2Fx%3Fy%3Dz%26w%23"},
        {"\xc3\xa9\x01\x7f", "%C3%A9%01%7F"},
        {"{\"label\":[\"k=v\"]}", "%7B%22label%22%3A%5B%22k%3Dv%22%5D%7D"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        es_buf b;
        es_buf_init(&b, 1024);
        cr_assert_eq(dk__urlencode(&b, cases[i].in), 0);
        cr_assert_str_eq(es_buf_cstr(&b), cases[i].out, "case %zu", i);
        es_buf_free(&b);
    }
    es_buf b;
    es_buf_init(&b, 5);
    cr_assert_eq(dk__urlencode(&b, "abcd "), -EMSGSIZE, "the escape does not fit");
    cr_assert_str_eq(es_buf_cstr(&b), "abcd");
    es_buf_free(&b);
}

/* dockerd's own create answer is read without the JSON parser (ops.c,
 * create_id_fast); every other form goes through it: the same ids, and the
 * same refusal of an answer without a string Id. */
Test(docker_fake, create_answers_exact_and_other_forms)
{
#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    static const struct {
        const char *body, *id;
    } cases[] = {
        {"{\"Id\":\"" HEX64 "\",\"Warnings\":[]}\n", HEX64},
        {"{\"Id\":\"" HEX64 "\",\"Warnings\":null}", HEX64},
        {"{\"Id\":\"" HEX64 "\",\"Warnings\":[\"low memory\"]}\n", HEX64},
        {"{ \"Id\": \"" HEX64 "\", \"Warnings\": [] }", HEX64},
        {"{\"Id\":\"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\","
         "\"Warnings\":[]}",
         "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"},
        {"{\"Id\":\"short\",\"Warnings\":[]}", "short"},
        {"{\"Id\":\"" HEX64 "\",\"Warnings\":[]}x", NULL},
        {"{\"Id\":12,\"Warnings\":[]}", NULL},
    };
#undef HEX64
    dk_create_spec s = {.name = "c", .image = "img:1"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        create_answer = cases[i].body;
        res r = {0};
        cr_assert_eq(dk_container_create(cli, &s, create_cb, &r), 0);
        run_until(&r.done);
        if (cases[i].id) {
            cr_assert_eq(r.err, 0, "case %zu: %s", i, dk_strerror(r.err));
            cr_assert_str_eq(r.id, cases[i].id, "case %zu", i);
        } else {
            cr_assert_eq(r.err, DK_E_PROTOCOL, "case %zu: %s", i, dk_strerror(r.err));
        }
    }
    create_answer = NULL;
}

/* ---- recycled request blocks (client.c, spares) ---- */

static bool holds(const es_buf *b, const char *needle)
{
    return b->data && memmem(b->data, b->cap, needle, strlen(needle)) != NULL;
}

/* A finished request's block is kept for the next operation: wiped of
 * everything it carried (the create's Env value, a pull's registry auth),
 * and the next request on it sends none of it. */
Test(docker_fake, a_recycled_request_carries_nothing_of_the_last)
{
    (void)create_with_secret_env();
    cr_assert(strstr(last_request, "hunter2"), "the create sent its Env");
    /* the block the create used, as the next operation gets it */
    dk__req *q = dk__client_req(cli, "GET", true);
    cr_assert_not_null(q);
    cr_assert_eq(q->body.len, 0);
    cr_assert_eq(q->path.len, 0);
    cr_assert(q->body.cap >= 1000, "the body buffer is kept (cap %zu)", q->body.cap);
    cr_assert_not(holds(&q->body, "hunter2"), "a spare holds the last body's secret");
    cr_assert_not(holds(&q->resp, "abc123"), "a spare holds the last answer");
    cr_assert_not(q->secret);
    cr_assert_null(q->done);
    cr_assert_null(q->op);
    dk__client_recycle(cli, q);

    /* a pull's X-Registry-Auth goes with it */
    res g = {0};
    cr_assert_eq(dk_image_pull(cli, "good", NULL, "c2VjcmV0LWF1dGg", done_cb, &g), 0);
    run_until(&g.done);
    cr_assert_eq(g.err, 0, "%s %s", dk_strerror(g.err), g.msg);
    cr_assert(strstr(last_request, "X-Registry-Auth: c2VjcmV0LWF1dGg\r\n"));
    res p = {0};
    cr_assert_eq(dk_ping(cli, done_cb, &p), 0);
    run_until(&p.done);
    cr_assert_eq(p.err, 0);
    cr_assert_str_eq(last_request, "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n");
}

/* In the steady state a request allocates nothing through es_alloc: its
 * block, op context, path and answer buffers come from the spares, the
 * connection keeps its write buffer and parser. The third ping runs with
 * every es_ allocation failing. */
Test(docker_fake, a_steady_request_allocates_nothing)
{
    for (int i = 0; i < 3; i++) {
        res p = {0};
        if (i == 2)
            es_alloc_fail_after(0);
        int e = dk_ping(cli, done_cb, &p);
        if (e == 0)
            run_until(&p.done);
        es_alloc_fail_after(-1);
        cr_assert_eq(e, 0, "ping %d: %d", i, e);
        cr_assert_eq(p.err, 0, "ping %d: %s", i, dk_strerror(p.err));
    }
    /* and with no spare, the failure is a clean -ENOMEM */
    dk__req *held[8];
    for (int i = 0; i < 8; i++)
        held[i] = dk__client_req(cli, "GET", false);
    es_alloc_fail_after(0);
    res p = {0};
    int e = dk_ping(cli, done_cb, &p);
    es_alloc_fail_after(-1);
    cr_assert_eq(e, -ENOMEM);
    for (int i = 0; i < 8; i++)
        dk__client_recycle(cli, held[i]);
}

/* bench_aws - cost of an SSM GetParameters call through aws/ (JSON body,
 * SigV4, curl multi on libuv, answer parsed) beside the floor: the same
 * POSTs from curl's own multi interface with no signing and no parsing.
 *
 * A loopback HTTP/1.1 server on its own thread (libuv, keep-alive) answers
 * every request with the same GetParameters body (10 parameters). Each side
 * makes N calls of 10 names, C in flight; we print requests/s and the
 * client thread's CPU time per request (getrusage RUSAGE_THREAD), then the
 * ratios.
 *
 * Usage: bench_aws [N=1000] [C=64] */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "aws/ssm.h"
#include "common/buf.h"

/* ---- the server --------------------------------------------------------- */

static char answer[8192];
static size_t answer_len;

typedef struct conn {
    uv_tcp_t tcp;
    char buf[65536];
    size_t len;
} conn;

static void on_conn_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_written(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

static void srv_alloc(uv_handle_t *h, size_t sug, uv_buf_t *b)
{
    (void)sug;
    conn *c = h->data;
    b->base = c->buf + c->len;
    b->len = sizeof c->buf - c->len;
}

/* Answers every complete request in the buffer. */
static void srv_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    conn *c = s->data;
    if (n < 0 || (n == 0 && c->len == sizeof c->buf)) {
        uv_close((uv_handle_t *)s, on_conn_closed);
        return;
    }
    c->len += (size_t)n;
    for (;;) {
        c->buf[c->len < sizeof c->buf ? c->len : sizeof c->buf - 1] = '\0';
        char *end = strstr(c->buf, "\r\n\r\n");
        if (!end)
            return;
        size_t hl = (size_t)(end + 4 - c->buf), cl = 0;
        char *p = strcasestr(c->buf, "\r\ncontent-length:");
        if (p && p < end)
            cl = (size_t)strtoul(p + 17, NULL, 10);
        if (c->len < hl + cl)
            return;
        memmove(c->buf, c->buf + hl + cl, c->len - hl - cl);
        c->len -= hl + cl;
        uv_write_t *w = malloc(sizeof *w);
        uv_buf_t out = uv_buf_init(answer, (unsigned)answer_len);
        if (uv_write(w, s, &out, 1, on_written) != 0)
            free(w);
    }
}

static void on_accept(uv_stream_t *srv, int status)
{
    if (status < 0)
        return;
    conn *c = calloc(1, sizeof *c);
    uv_tcp_init(srv->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(srv, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, srv_alloc, srv_read);
}

typedef struct server {
    uv_loop_t loop;
    uv_tcp_t tcp;
    uv_async_t stop;
    int port;
    uv_thread_t thread;
    uv_sem_t ready;
} server;

static void close_all(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, h->type == UV_TCP && h->data ? on_conn_closed : NULL);
}

static void on_stop(uv_async_t *a)
{
    uv_walk(a->loop, close_all, NULL);
}

static void server_main(void *arg)
{
    server *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
}

static void server_start(server *s)
{
    uv_loop_init(&s->loop);
    uv_tcp_init(&s->loop, &s->tcp);
    s->tcp.data = NULL;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_bind(&s->tcp, (struct sockaddr *)&a, 0);
    if (uv_listen((uv_stream_t *)&s->tcp, 512, on_accept) != 0) {
        fprintf(stderr, "listen failed\n");
        exit(1);
    }
    struct sockaddr_storage ss;
    int len = sizeof ss;
    uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&ss, &len);
    s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    uv_async_init(&s->loop, &s->stop, on_stop);
    uv_thread_create(&s->thread, server_main, s);
}

static void server_stop(server *s)
{
    uv_async_send(&s->stop);
    uv_thread_join(&s->thread);
    uv_loop_close(&s->loop);
}

/* ---- measurements ------------------------------------------------------- */

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double wall_now(void)
{
    return (double)uv_hrtime() / 1e9;
}

static const char *names[10] = {"/bench/p0", "/bench/p1", "/bench/p2", "/bench/p3", "/bench/p4",
                                "/bench/p5", "/bench/p6", "/bench/p7", "/bench/p8", "/bench/p9"};

/* ours */
typedef struct run {
    aw_client *c;
    aw_sigv4_creds creds;
    int total, started, done, failed;
} run;

static void start_one(run *r);

static void on_ssm(void *arg, const aw_error *err, aw_ssm_result *res)
{
    run *r = arg;
    r->done++;
    if (err || res->n_params != 10)
        r->failed++;
    if (r->started < r->total)
        start_one(r);
}

static void start_one(run *r)
{
    r->started++;
    if (aw_ssm_get_parameters(r->c, &r->creds, NULL, names, 10, on_ssm, r) != 0) {
        r->done++;
        r->failed++;
    }
}

static unsigned long connections;

static void bench_ours(int port, int total, int conc, double *rps, double *cpu_us)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    aw_client_config cfg = {.region = "us-east-1"};
    cfg.endpoint_override[AW_SVC_SSM] = url;
    run r = {.creds = {"AKIDBENCH", "benchsecretbenchsecret", NULL}, .total = total};
    if (aw_client_create(&loop, &cfg, &r.c) != 0) {
        fprintf(stderr, "client create failed\n");
        exit(1);
    }
    double w0 = wall_now(), c0 = cpu_now();
    for (int i = 0; i < conc && r.started < total; i++)
        start_one(&r);
    while (r.done < total)
        uv_run(&loop, UV_RUN_ONCE);
    double w1 = wall_now(), c1 = cpu_now();
    aw_http_stats hs;
    aw_http_get_stats(aw_client_http(r.c), &hs);
    connections = hs.connects;
    aw_client_close(r.c, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    if (r.failed)
        fprintf(stderr, "ours: %d of %d calls failed\n", r.failed, total);
    *rps = total / (w1 - w0);
    *cpu_us = (c1 - c0) * 1e6 / total;
}

/* the floor: curl multi, same POST, no signing, no parsing */
static size_t sink(char *p, size_t s, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return s * n;
}

static CURL *floor_easy(const char *url, struct curl_slist *h, const char *body)
{
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    return e;
}

static void bench_floor(int port, int total, int conc, double *rps, double *cpu_us)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    const char *body = "{\"Names\":[\"/bench/p0\",\"/bench/p1\",\"/bench/p2\",\"/bench/p3\","
                       "\"/bench/p4\",\"/bench/p5\",\"/bench/p6\",\"/bench/p7\",\"/bench/p8\","
                       "\"/bench/p9\"],\"WithDecryption\":true}";
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/x-amz-json-1.1");
    h = curl_slist_append(h, "X-Amz-Target: AmazonSSM.GetParameters");
    h = curl_slist_append(h, "Expect:");
    CURLM *m = curl_multi_init();
    int started = 0, done = 0, failed = 0;
    double w0 = wall_now(), c0 = cpu_now();
    for (; started < conc && started < total; started++)
        curl_multi_add_handle(m, floor_easy(url, h, body));
    while (done < total) {
        int running;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int q;
        while ((msg = curl_multi_info_read(m, &q))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *e = msg->easy_handle;
            if (msg->data.result != CURLE_OK)
                failed++;
            curl_multi_remove_handle(m, e);
            curl_easy_cleanup(e);
            done++;
            if (started < total) {
                curl_multi_add_handle(m, floor_easy(url, h, body));
                started++;
            }
        }
        if (done < total)
            curl_multi_poll(m, NULL, 0, 1000, NULL);
    }
    double w1 = wall_now(), c1 = cpu_now();
    curl_multi_cleanup(m);
    curl_slist_free_all(h);
    if (failed)
        fprintf(stderr, "floor: %d of %d calls failed\n", failed, total);
    *rps = total / (w1 - w0);
    *cpu_us = (c1 - c0) * 1e6 / total;
}

/* CPU of the two pieces the floor does not do, alone: signing a
 * GetParameters request and parsing its answer. */
static void bench_pieces(const char *body, size_t body_len, double *sign_us, double *parse_us)
{
    const int n = 20000;
    aw_signer *s = aw_signer_create();
    static const char req[] = "{\"Names\":[\"/bench/p0\",\"/bench/p1\",\"/bench/p2\","
                              "\"/bench/p3\",\"/bench/p4\",\"/bench/p5\",\"/bench/p6\","
                              "\"/bench/p7\",\"/bench/p8\",\"/bench/p9\"],\"WithDecryption\":true}";
    aw_sigv4_creds cr = {"AKIDBENCH", "benchsecretbenchsecret", NULL};
    double c0 = cpu_now();
    for (int i = 0; i < n; i++) {
        char ph[65];
        aw_sigv4_sha256_hex(req, sizeof req - 1, ph);
        aw_header h[] = {{"Host", "127.0.0.1:1234"},
                         {"Content-Type", "application/x-amz-json-1.1"},
                         {"X-Amz-Target", "AmazonSSM.GetParameters"}};
        aw_sigv4_input in = {"POST", "/", NULL, h, 3, ph, false};
        aw_sigv4_result r;
        if (aw_signer_sign(s, &cr, "us-east-1", "ssm", 1700000000 + i / 1000, &in, &r) == 0)
            es_buf_free_secret(&r.authorization);
    }
    double c1 = cpu_now();
    for (int i = 0; i < n; i++) {
        aw_ssm_result r;
        if (aw_ssm_parse_result(body, body_len, &r) == 0)
            aw_ssm_result_clear(&r);
    }
    double c2 = cpu_now();
    aw_signer_free(s);
    *sign_us = (c1 - c0) * 1e6 / n;
    *parse_us = (c2 - c1) * 1e6 / n;
}

int main(int argc, char **argv)
{
    long total_l = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
    long conc_l = argc > 2 ? strtol(argv[2], NULL, 10) : 64;
    if (total_l <= 0 || total_l > 10000000 || conc_l <= 0 || conc_l > 4096)
        return 2;
    int total = (int)total_l, conc = (int)conc_l;
    setenv("no_proxy", "127.0.0.1", 1);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    es_buf b;
    es_buf_init(&b, sizeof answer - 256);
    es_buf_append_str(&b, "{\"Parameters\":[");
    for (int i = 0; i < 10; i++)
        es_buf_printf(&b,
                      "%s{\"Name\":\"/bench/p%d\",\"Type\":\"SecureString\",\"Value\":\"value-%d-"
                      "abcdefghijklmnopqrstuvwxyz\",\"Version\":3,\"LastModifiedDate\":1.7E9,"
                      "\"ARN\":\"arn:aws:ssm:us-east-1:123456789012:parameter/bench/p%d\","
                      "\"DataType\":\"text\"}",
                      i ? "," : "", i, i, i);
    es_buf_append_str(&b, "],\"InvalidParameters\":[]}");
    double sign_us, parse_us;
    bench_pieces(es_buf_cstr(&b), b.len, &sign_us, &parse_us);
    answer_len = (size_t)snprintf(answer, sizeof answer,
                                  "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\n"
                                  "x-amzn-RequestId: 0\r\nContent-Length: %zu\r\n\r\n%s",
                                  b.len, es_buf_cstr(&b));
    es_buf_free(&b);

    server s;
    server_start(&s);
    double r_ours, c_ours, r_floor, c_floor;
    /* warm-up of both, then the measured runs */
    bench_floor(s.port, 100, conc, &r_floor, &c_floor);
    bench_ours(s.port, 100, conc, &r_ours, &c_ours);
    bench_floor(s.port, total, conc, &r_floor, &c_floor);
    bench_ours(s.port, total, conc, &r_ours, &c_ours);
    server_stop(&s);

    printf("GetParameters x %d (10 names each), %d in flight, loopback server on its own thread\n",
           total, conc);
    printf("  aws/ (JSON + SigV4 + curl multi on libuv + parse): %8.0f req/s  %7.1f us CPU/req\n",
           r_ours, c_ours);
    printf("  floor (curl multi, no signing, no parsing)       : %8.0f req/s  %7.1f us CPU/req\n",
           r_floor, c_floor);
    printf("  connections opened by aws/: %lu\n", connections);
    printf(
        "  of aws/'s CPU per request, alone: SigV4 signing %.1f us, parsing the answer %.1f us\n",
        sign_us, parse_us);
    printf("  ratio ours/floor: throughput %.2f, CPU per request %.2f\n", r_ours / r_floor,
           c_ours / c_floor);
    curl_global_cleanup();
    return 0;
}

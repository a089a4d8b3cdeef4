/* al_server_helpers.h - the harness of the tests that speak HTTP to a real
 * listener with the embedded services mounted (test_al_server.c,
 * test_al_match.c): the loop runs on the test's thread, a client thread
 * speaks raw HTTP over blocking sockets. Not a test file itself. */
#ifndef TEST_AL_SERVER_HELPERS_H
#define TEST_AL_SERVER_HELPERS_H

#include "al_helpers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <uv.h>

#include "aws/local/auth.h"
#include "aws/local/internal.h"
#include "aws/listener.h"
#include "aws/sigv4.h"
#include "common/alloc.h"

typedef struct run {
    uv_loop_t loop;
    uv_async_t done;
    aw_listener *srv;
    int port;
    char akid[AL_AKID_LEN + 1];
    char secret[64];
    void (*client)(struct run *r);
    pthread_t th;
} run;

/* the listener's counters when the client ended, just before its close */
static aw_listener_stats last_stats;

__attribute__((unused)) static void on_done(uv_async_t *a)
{
    run *r = a->data;
    aw_listener_get_stats(r->srv, &last_stats);
    aw_listener_close(r->srv, NULL, NULL);
    uv_close((uv_handle_t *)&r->done, NULL);
}

static void *client_main(void *arg)
{
    run *r = arg;
    r->client(r);
    uv_async_send(&r->done);
    return NULL;
}

__attribute__((unused)) static void load_admin(run *r)
{
    char err[256] = "";
    cr_assert_eq(al_admin_init(T.ctx, T.dir, r->akid, err, sizeof err), 0, "%s", err);
    char p[256], text[1024];
    snprintf(p, sizeof p, "%s/%s", T.dir, AL_CREDENTIALS_FILE);
    FILE *f = fopen(p, "r");
    cr_assert_not_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    const char *s = strstr(text, "aws_secret_access_key = ") + 24;
    snprintf(r->secret, sizeof r->secret, "%.*s", (int)strcspn(s, "\n"), s);
}

static void (*route_hook)(aw_listener *srv);
/* the store mounted only as the keeper of keys (the agent's aws mode) */
static bool store_auth_only;
/* when set, the listener is a unix socket there (dial connects to it) */
static char unix_path[AW_LISTENER_PATH_MAX + 1];

__attribute__((unused)) static aw_listener_stats run_client(void (*client)(run *r),
                                                            const aw_listener_limits *lim)
{
    run r;
    memset(&r, 0, sizeof r);
    load_admin(&r);
    r.client = client;
    cr_assert_eq(uv_loop_init(&r.loop), 0);
    if (unix_path[0]) {
        cr_assert_eq(aw_listener_start_unix(&r.loop, unix_path, 0600, lim, &r.srv), 0);
        cr_assert_eq(al_mount(T.ctx, r.srv), 0);
        cr_assert_eq(aw_listener_port(r.srv), 0);
        r.port = 1; /* no port: dial connects to unix_path */
    } else if (store_auth_only) {
        cr_assert_eq(aw_listener_start(&r.loop, "127.0.0.1", 0, lim, &r.srv), 0);
        al_mount_auth(T.ctx, r.srv);
    } else {
        cr_assert_eq(alt_listen(&r.loop, T.ctx, lim, &r.srv), 0);
    }
    if (!unix_path[0])
        r.port = aw_listener_port(r.srv);
    if (route_hook)
        route_hook(r.srv);
    cr_assert_gt(r.port, 0);
    uv_async_init(&r.loop, &r.done, on_done);
    r.done.data = &r;
    aw_listener_stats st;
    memset(&st, 0, sizeof st);
    cr_assert_eq(pthread_create(&r.th, NULL, client_main, &r), 0);
    /* stats are read just before the close (in on_done) through a prepare */
    uv_run(&r.loop, UV_RUN_DEFAULT);
    pthread_join(r.th, NULL);
    cr_assert_eq(uv_loop_close(&r.loop), 0, "handles left open");
    return st;
}

/* ---- client side ----
 * Criterion's assertions must not run off the main thread: the client
 * records its first failure here and the test asserts on it after join. */
static char client_fail[512];
#define CK(cond)                                                                                   \
    do {                                                                                           \
        if (!(cond) && !client_fail[0])                                                            \
            snprintf(client_fail, sizeof client_fail, "line %d: %s", __LINE__, #cond);             \
    } while (0)

__attribute__((unused)) static void run_and_check(void (*client)(run *r),
                                                  const aw_listener_limits *lim)
{
    client_fail[0] = 0;
    run_client(client, lim);
    cr_assert_eq(client_fail[0], 0, "client: %s", client_fail);
}

__attribute__((unused)) static int dial(int port)
{
    if (unix_path[0]) {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        CK(fd >= 0);
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof a.sun_path, "%s", unix_path);
        CK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
        return fd;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CK((fd) >= (0));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CK((connect(fd, (struct sockaddr *)&a, sizeof a)) == (0));
    return fd;
}

__attribute__((unused)) static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the server may close on us: the reader sees it */
        p += w;
        n -= (size_t)w;
    }
}

typedef struct resp {
    int status;
    char head[4096];
    char body[65536];
    bool closed; /* EOF instead of an answer */
} resp;

/* Reads one answer (head + Content-Length body) within timeout_ms. */
__attribute__((unused)) static void read_resp(int fd, resp *out, int timeout_ms)
{
    memset(out, 0, sizeof *out);
    static char buf[1 << 17];
    static size_t have;
    static int have_fd = -1;
    if (have_fd != fd) {
        have = 0;
        have_fd = fd;
    }
    for (;;) {
        char *end = have ? memmem(buf, have, "\r\n\r\n", 4) : NULL;
        if (end) {
            size_t hl = (size_t)(end - buf) + 4;
            const char *cl = strcasestr(buf, "content-length:");
            size_t bl = cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
            if (have >= hl + bl) {
                snprintf(out->head, sizeof out->head, "%.*s", (int)hl, buf);
                snprintf(out->body, sizeof out->body, "%.*s", (int)bl, buf + hl);
                out->status = (int)strtol(buf + 9, NULL, 10);
                memmove(buf, buf + hl + bl, have - hl - bl);
                have -= hl + bl;
                return;
            }
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, timeout_ms) != 1) {
            CK(!"no answer in time");
            out->closed = true;
            return;
        }
        ssize_t n = recv(fd, buf + have, sizeof buf - have, 0);
        if (n <= 0) {
            out->closed = true;
            have = 0; /* the descriptor number may be reused by the next connection */
            have_fd = -1;
            return;
        }
        have += (size_t)n;
    }
}

__attribute__((unused)) static bool closed_within(int fd, int ms)
{
    char b[256];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) != 1)
        return false;
    return recv(fd, b, sizeof b, 0) <= 0;
}

/* A request as the CLI builds it, signed with creds (or unsigned when akid
 * is NULL). */
__attribute__((unused)) static void build(run *r, es_buf *out, const char *target, const char *body,
                                          const char *akid, const char *secret)
{
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%d", r->port);
    aw_header h[8];
    size_t n = 0;
    h[n++] = (aw_header){"Host", host};
    h[n++] = (aw_header){"Content-Type", "application/x-amz-json-1.1"};
    h[n++] = (aw_header){"X-Amz-Target", target};
    es_buf_printf(out,
                  "POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: "
                  "application/x-amz-json-1.1\r\nX-Amz-Target: %s\r\nContent-Length: %zu\r\n",
                  host, target, strlen(body));
    if (akid) {
        char hash[65];
        aw_sigv4_sha256_hex(body, strlen(body), hash);
        aw_sigv4_input in = {"POST", "/", NULL, h, n, hash, false};
        aw_signer *s = aw_signer_create();
        aw_sigv4_creds creds = {akid, secret, NULL};
        aw_sigv4_result res;
        /* targets of other modules' routes are signed for "ssm": the wrong service */
        const char *svc = al_signing_name(target) ? al_signing_name(target) : "ssm";
        if (aw_signer_sign(s, &creds, "us-east-2", svc, time(NULL), &in, &res) != 0) {
            CK(!"signing failed");
            aw_signer_free(s);
            return;
        }
        es_buf_printf(out, "X-Amz-Date: %s\r\nAuthorization: %s\r\n", res.amz_date,
                      es_buf_cstr(&res.authorization));
        es_buf_free_secret(&res.authorization);
        aw_signer_free(s);
    }
    es_buf_printf(out, "\r\n%s", body);
}

__attribute__((unused)) static void request(run *r, int fd, const char *target, const char *body,
                                            resp *out)
{
    es_buf b;
    es_buf_init(&b, 1 << 20);
    build(r, &b, target, body, r->akid, r->secret);
    send_all(fd, b.data, b.len);
    es_buf_free(&b);
    read_resp(fd, out, 5000);
}

#endif

/* The listener over TLS (issue 17): a self-signed certificate made with the
 * openssl command, the server on the test's loop, a client thread speaking
 * HTTPS through OpenSSL on a blocking socket and verifying the certificate
 * (CA = the certificate itself, IP 127.0.0.1). Also the loading of the
 * certificate and key, and what a bad file is refused with. */
#include "al_helpers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <uv.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "aws/local/auth.h"
#include "aws/local/internal.h"
#include "aws/listener.h"
#include "aws/tls.h"
#include "aws/sigv4.h"
#include "common/alloc.h"

TestSuite(al_server_tls, .init = alt_setup, .fini = alt_teardown);

static char cert[128], key[128];

/* cert.pem / key.pem (RSA 2048, CN and IP SAN 127.0.0.1) in the test's
 * directory, as the brief for the listener says to make them. */
static void make_cert(const char *name, const char *keyopt)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey %s -nodes -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1 -days 2 -keyout %s/%s-key.pem "
             "-out %s/%s-cert.pem 2>/dev/null",
             keyopt, T.dir, name, T.dir, name);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static void make_main_cert(void)
{
    make_cert("main", "rsa:2048");
    snprintf(cert, sizeof cert, "%s/main-cert.pem", T.dir);
    snprintf(key, sizeof key, "%s/main-key.pem", T.dir);
}

static aw_tls *load_main(void)
{
    aw_tls *t = NULL;
    char err[512] = "";
    cr_assert_eq(aw_tls_load(cert, key, &t, err, sizeof err), 0, "%s", err);
    return t;
}

/* ---- the server on the test's loop, a client thread ---- */

typedef struct run {
    uv_loop_t loop;
    uv_async_t done;
    aw_listener *srv;
    int port;
    char akid[AL_AKID_LEN + 1];
    char secret[64];
    void (*client)(struct run *r);
    pthread_t th;
    aw_listener_stats st; /* read just before the close */
} run;

static void on_done(uv_async_t *a)
{
    run *r = a->data;
    aw_listener_get_stats(r->srv, &r->st);
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

static void load_admin(run *r)
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

static char client_fail[512];
#define CK(cond)                                                                                   \
    do {                                                                                           \
        if (!(cond) && !client_fail[0])                                                            \
            snprintf(client_fail, sizeof client_fail, "line %d: %s", __LINE__, #cond);             \
    } while (0)

static aw_listener_stats run_tls(void (*client)(run *r), const aw_listener_limits *lim)
{
    static run r;
    memset(&r, 0, sizeof r);
    client_fail[0] = 0;
    load_admin(&r);
    r.client = client;
    cr_assert_eq(uv_loop_init(&r.loop), 0);
    cr_assert_eq(alt_listen(&r.loop, T.ctx, lim, &r.srv), 0);
    aw_listener_set_tls(r.srv, load_main());
    cr_assert(aw_listener_tls(r.srv));
    r.port = aw_listener_port(r.srv);
    if (route_hook)
        route_hook(r.srv);
    uv_async_init(&r.loop, &r.done, on_done);
    r.done.data = &r;
    cr_assert_eq(pthread_create(&r.th, NULL, client_main, &r), 0);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    pthread_join(r.th, NULL);
    cr_assert_eq(uv_loop_close(&r.loop), 0, "handles left open");
    cr_assert_eq(client_fail[0], 0, "client: %s", client_fail);
    return r.st;
}

/* ---- client side ---- */

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CK(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static bool closed_within(int fd, int ms)
{
    char b[256];
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, ms) != 1)
            return false;
        ssize_t n = recv(fd, b, sizeof b, 0);
        if (n <= 0)
            return true; /* else an alert or a record: read on */
    }
}

typedef struct tconn {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    char buf[1 << 17];
    size_t have;
} tconn;

/* max_version 0: any; verifies the server against cert.pem and 127.0.0.1.
 * False when the handshake fails. */
static bool tls_dial(run *r, tconn *c, int min_version, int max_version)
{
    memset(c, 0, sizeof *c);
    c->ctx = SSL_CTX_new(TLS_client_method());
    CK(c->ctx != NULL);
    if (min_version || max_version) {
        SSL_CTX_set_security_level(c->ctx, 0);
        SSL_CTX_set_cipher_list(c->ctx, "DEFAULT:@SECLEVEL=0");
    }
    if (min_version)
        SSL_CTX_set_min_proto_version(c->ctx, min_version);
    if (max_version)
        SSL_CTX_set_max_proto_version(c->ctx, max_version);
    CK(SSL_CTX_load_verify_locations(c->ctx, cert, NULL) == 1);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    c->fd = dial(r->port);
    c->ssl = SSL_new(c->ctx);
    SSL_set_fd(c->ssl, c->fd);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), "127.0.0.1");
    static const unsigned char alpn[] = "\x02h2\x08http/1.1";
    SSL_set_alpn_protos(c->ssl, alpn, sizeof alpn - 1);
    return SSL_connect(c->ssl) == 1;
}

static void tls_close(tconn *c)
{
    if (c->ssl)
        SSL_free(c->ssl);
    if (c->ctx)
        SSL_CTX_free(c->ctx);
    if (c->fd > 0)
        close(c->fd);
    ERR_clear_error();
}

static void tls_send(tconn *c, const char *p, size_t n)
{
    while (n) {
        int w = SSL_write(c->ssl, p, (int)n);
        if (w <= 0) {
            CK(!"SSL_write failed");
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

typedef struct resp {
    int status;
    char head[4096];
    char *body; /* malloc'ed */
    size_t body_len;
    bool closed;
} resp;

/* One answer: head, then Content-Length bytes. */
static void tls_read_resp(tconn *c, resp *out)
{
    free(out->body);
    memset(out, 0, sizeof *out);
    for (;;) {
        char *end = c->have ? memmem(c->buf, c->have, "\r\n\r\n", 4) : NULL;
        if (end) {
            size_t hl = (size_t)(end - c->buf) + 4;
            snprintf(out->head, sizeof out->head, "%.*s", (int)hl, c->buf);
            const char *cl = strcasestr(out->head, "content-length:");
            size_t bl = cl ? strtoul(cl + 15, NULL, 10) : 0;
            out->status = (int)strtol(c->buf + 9, NULL, 10);
            out->body = malloc(bl + 1);
            size_t got = c->have - hl < bl ? c->have - hl : bl;
            memcpy(out->body, c->buf + hl, got);
            memmove(c->buf, c->buf + hl + got, c->have - hl - got);
            c->have -= hl + got;
            while (got < bl) {
                int n = SSL_read(c->ssl, out->body + got, (int)(bl - got));
                if (n <= 0) {
                    out->closed = true;
                    break;
                }
                got += (size_t)n;
            }
            out->body[got] = '\0';
            out->body_len = got;
            return;
        }
        int n = SSL_read(c->ssl, c->buf + c->have, (int)(sizeof c->buf - c->have));
        if (n <= 0) {
            out->closed = true;
            return;
        }
        c->have += (size_t)n;
    }
}

/* A request as the CLI builds it, signed with the administrator's key. */
static void build(run *r, es_buf *out, const char *target, const char *body)
{
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%d", r->port);
    aw_header h[3] = {
        {"Host", host}, {"Content-Type", "application/x-amz-json-1.1"}, {"X-Amz-Target", target}};
    es_buf_printf(out,
                  "POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: "
                  "application/x-amz-json-1.1\r\nX-Amz-Target: %s\r\nContent-Length: %zu\r\n",
                  host, target, strlen(body));
    char hash[65];
    aw_sigv4_sha256_hex(body, strlen(body), hash);
    aw_sigv4_input in = {"POST", "/", NULL, h, 3, hash, false};
    aw_signer *s = aw_signer_create();
    aw_sigv4_creds creds = {r->akid, r->secret, NULL};
    aw_sigv4_result res;
    if (aw_signer_sign(s, &creds, "us-east-2", al_signing_name(target), time(NULL), &in, &res) !=
        0) {
        CK(!"signing failed");
        aw_signer_free(s);
        return;
    }
    es_buf_printf(out, "X-Amz-Date: %s\r\nAuthorization: %s\r\n\r\n%s", res.amz_date,
                  es_buf_cstr(&res.authorization), body);
    es_buf_free_secret(&res.authorization);
    aw_signer_free(s);
}

static void request(run *r, tconn *c, const char *target, const char *body, resp *out)
{
    es_buf b;
    es_buf_init(&b, 1 << 20);
    build(r, &b, target, body);
    tls_send(c, b.data, b.len);
    es_buf_free(&b);
    tls_read_resp(c, out);
}

/* ---- tests ---- */

/* SSM over HTTPS: a SecureString in and out on one kept-alive connection,
 * errors keep it; TLS 1.3 by default, ALPN http/1.1 (never h2). */
static void c_keep_alive(run *r)
{
    tconn c;
    CK(tls_dial(r, &c, 0, 0));
    CK(strcmp(SSL_get_version(c.ssl), "TLSv1.3") == 0);
    const unsigned char *proto = NULL;
    unsigned plen = 0;
    SSL_get0_alpn_selected(c.ssl, &proto, &plen);
    CK(plen == 8 && memcmp(proto, "http/1.1", 8) == 0);
    resp a = {0};
    request(r, &c, "AmazonSSM.PutParameter",
            "{\"Name\":\"/tls/a\",\"Type\":\"SecureString\",\"Value\":\"over-https\"}", &a);
    CK(a.status == 200);
    CK(strstr(a.body, "\"Version\":1") != NULL);
    request(r, &c, "AmazonSSM.GetParameter", "{\"Name\":\"/tls/a\",\"WithDecryption\":true}", &a);
    CK(a.status == 200);
    CK(strstr(a.body, "\"Value\":\"over-https\"") != NULL);
    request(r, &c, "AmazonSSM.GetParameter", "{\"Name\":\"/tls/none\"}", &a);
    CK(a.status == 400);
    CK(strstr(a.body, "ParameterNotFound") != NULL);
    request(r, &c, "TrentService.ListAliases", "{}", &a);
    CK(a.status == 200);
    free(a.body);
    tls_close(&c);
}

Test(al_server_tls, answers_over_https_with_keep_alive)
{
    make_main_cert();
    aw_listener_stats st = run_tls(c_keep_alive, NULL);
    cr_assert_eq(st.connections_accepted, 1);
    cr_assert_eq(st.requests, 4);
    cr_assert_eq(st.tls_handshakes, 1);
    cr_assert_eq(st.tls_failures, 0);
}

/* Pipelined requests, one of them answered by a Connection: close error:
 * answers in order, then close_notify and the end of the connection. And
 * TLS 1.2 is accepted; 1.1 is not. */
static void c_pipelined_and_versions(run *r)
{
    tconn c;
    CK(tls_dial(r, &c, 0, TLS1_2_VERSION));
    CK(strcmp(SSL_get_version(c.ssl), "TLSv1.2") == 0);
    es_buf b;
    es_buf_init(&b, 1 << 20);
    build(r, &b, "TrentService.ListKeys", "{}");
    build(r, &b, "TrentService.ListAliases", "{}");
    es_buf_append_str(&b, "GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    tls_send(&c, b.data, b.len);
    es_buf_free(&b);
    resp a = {0};
    tls_read_resp(&c, &a);
    CK(a.status == 200 && strstr(a.body, "\"Keys\"") != NULL);
    tls_read_resp(&c, &a);
    CK(a.status == 200 && strstr(a.body, "\"Aliases\"") != NULL);
    tls_read_resp(&c, &a);
    CK(a.status == 403); /* S3's path (the REST route), unsigned: AccessDenied */
    CK(strcasestr(a.head, "Connection: close") != NULL);
    char x;
    CK(SSL_read(c.ssl, &x, 1) == 0 && SSL_get_error(c.ssl, 0) == SSL_ERROR_ZERO_RETURN);
    free(a.body);
    tls_close(&c);

    CK(!tls_dial(r, &c, TLS1_1_VERSION, TLS1_1_VERSION));
    tls_close(&c);
}

Test(al_server_tls, pipelined_requests_tls12_and_no_tls11)
{
    make_main_cert();
    aw_listener_stats st = run_tls(c_pipelined_and_versions, NULL);
    cr_assert_eq(st.tls_handshakes, 1);
    cr_assert_eq(st.tls_failures, 1, "the TLS 1.1 handshake");
    cr_assert_eq(st.requests, 3);
}

/* An answer of 3 MiB (many records, more than the socket takes at once)
 * twice, pipelined, to a client that reads late: the records are queued, the
 * second request's plaintext waits, both arrive whole and in order. */
#define BIG_ANSWER (3u << 20)

static int big_route(void *arg, const char *path, es_buf *out, const char **ct)
{
    (void)arg;
    (void)path;
    *ct = "application/octet-stream";
    char *p = es_buf_reserve(out, BIG_ANSWER, &(int){0});
    if (!p)
        return -ENOMEM;
    for (size_t i = 0; i < BIG_ANSWER; i++)
        p[i] = (char)('a' + i % 26);
    es_buf_commit(out, BIG_ANSWER);
    return 0;
}

static void add_big_route(aw_listener *srv)
{
    cr_assert_eq(aw_listener_add_get_route(srv, "/big", big_route, NULL), 0);
}

static bool big_ok(const resp *a)
{
    if (a->status != 200 || a->body_len != BIG_ANSWER)
        return false;
    for (size_t i = 0; i < BIG_ANSWER; i++)
        if (a->body[i] != (char)('a' + i % 26))
            return false;
    return true;
}

static void c_big(run *r)
{
    tconn c;
    CK(tls_dial(r, &c, 0, 0));
    const char *two = "GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /big HTTP/1.1\r\nHost: x\r\n\r\n";
    tls_send(&c, two, strlen(two));
    usleep(200 * 1000); /* the server fills the socket and queues the rest */
    resp a = {0};
    tls_read_resp(&c, &a);
    CK(big_ok(&a));
    tls_read_resp(&c, &a);
    CK(big_ok(&a));
    const char *get = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
    tls_send(&c, get, strlen(get));
    tls_read_resp(&c, &a);
    CK(big_ok(&a));
    free(a.body);
    tls_close(&c);
}

Test(al_server_tls, large_answers_to_a_late_reader)
{
    make_main_cert();
    route_hook = add_big_route;
    aw_listener_stats st = run_tls(c_big, NULL);
    route_hook = NULL;
    cr_assert_eq(st.requests, 3);
    cr_assert_eq(st.tls_failures, 0);
}

/* Plain HTTP to the TLS listener: told so in plain HTTP, then closed. */
static void c_plain(run *r)
{
    int fd = dial(r->port);
    const char *get = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    CK(send(fd, get, strlen(get), MSG_NOSIGNAL) == (ssize_t)strlen(get));
    char buf[1024] = "";
    size_t have = 0;
    ssize_t n;
    while (have < sizeof buf - 1 && (n = recv(fd, buf + have, sizeof buf - 1 - have, 0)) > 0)
        have += (size_t)n;
    buf[have] = '\0';
    CK(strncmp(buf, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
    CK(strstr(buf, "This listener speaks HTTPS (TLS) only: use an https:// endpoint.") != NULL);
    close(fd);
}

Test(al_server_tls, plain_http_is_told_to_use_https)
{
    make_main_cert();
    aw_listener_stats st = run_tls(c_plain, NULL);
    cr_assert_eq(st.tls_plain_http, 1);
    cr_assert_eq(st.requests, 0);
}

/* The handshake runs under the first-byte and head deadlines: a connection
 * that sends nothing goes at the first-byte deadline; one that starts a
 * handshake and stalls goes at the head deadline, counted as a TLS failure;
 * one that finishes its handshake but sends no request goes at the same
 * deadline (it ran from the handshake's first byte). */
static void c_deadlines(run *r)
{
    int fd = dial(r->port);
    CK(closed_within(fd, 2000));
    close(fd);
    fd = dial(r->port);
    static const char hello_start[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
    CK(send(fd, hello_start, sizeof hello_start - 1, MSG_NOSIGNAL) > 0);
    CK(closed_within(fd, 2000));
    close(fd);
    tconn c;
    CK(tls_dial(r, &c, 0, 0));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char x;
    CK(SSL_read(c.ssl, &x, 1) <= 0); /* the server closes: no answer, no request */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    CK(ms < 1500);
    tls_close(&c);
}

Test(al_server_tls, handshake_under_first_byte_and_head_deadlines)
{
    make_main_cert();
    aw_listener_limits lim = aw_listener_default_limits;
    lim.first_byte_timeout_ms = 200;
    lim.head_timeout_ms = 400;
    aw_listener_stats st = run_tls(c_deadlines, &lim);
    cr_assert_eq(st.tls_failures, 1, "the stalled handshake");
    cr_assert_eq(st.tls_handshakes, 1);
    cr_assert_eq(st.idle_timeouts, 2, "nothing sent; handshake but no request");
    cr_assert_eq(st.requests, 0);
}

/* ---- loading ---- */

static void expect_load_error(const char *c, const char *k, const char *want)
{
    aw_tls *t = NULL;
    char err[512] = "";
    cr_assert_lt(aw_tls_load(c, k, &t, err, sizeof err), 0, "%s + %s loaded", c, k);
    cr_assert_null(t);
    cr_assert_not_null(strstr(err, want), "wanted '%s' in: %s", want, err);
}

Test(al_server_tls, load_describe_and_bad_files)
{
    make_main_cert();
    aw_tls *t = load_main();
    char desc[AW_TLS_DESC_MAX];
    aw_tls_describe(t, desc, sizeof desc);
    cr_assert_not_null(strstr(desc, "subject /CN=127.0.0.1, names IP:127.0.0.1, valid until 20"),
                       "%s", desc);
    cr_assert_not(aw_tls_expired(t, time(NULL)));
    cr_assert(aw_tls_expired(t, time(NULL) + 3 * 86400));
    cr_assert(aw_tls_expired(t, time(NULL) - 86400));
    aw_tls_free(t);

    char missing[160], garbage[160], other_key[160], enc_key[160], cmd[600];
    snprintf(missing, sizeof missing, "%s/missing.pem", T.dir);
    expect_load_error(missing, key, "certificate ");
    expect_load_error(missing, key, "cannot open: No such file or directory");
    snprintf(garbage, sizeof garbage, "%s/garbage.pem", T.dir);
    FILE *f = fopen(garbage, "w");
    fputs("not a certificate\n", f);
    fclose(f);
    cr_assert_eq(chmod(garbage, 0600), 0);
    expect_load_error(garbage, key, "no PEM certificate in it");
    expect_load_error(cert, garbage, "no PEM private key in it");
    /* a key of another certificate */
    make_cert("other", "ec -pkeyopt ec_paramgen_curve:prime256v1");
    snprintf(other_key, sizeof other_key, "%s/other-key.pem", T.dir);
    expect_load_error(cert, other_key, "does not belong to the certificate");
    /* readable by others */
    cr_assert_eq(chmod(key, 0644), 0);
    expect_load_error(cert, key, "is readable by others (mode 644)");
    cr_assert_eq(chmod(key, 0640), 0);
    aw_tls_free(load_main());
    /* encrypted */
    snprintf(enc_key, sizeof enc_key, "%s/enc-key.pem", T.dir);
    snprintf(cmd, sizeof cmd,
             "openssl pkey -in %s -out %s -aes256 -passout pass:secret && chmod 600 %s", key,
             enc_key, enc_key);
    cr_assert_eq(system(cmd), 0);
    expect_load_error(cert, enc_key, "is encrypted");
    /* a directory */
    expect_load_error(T.dir, key, "not a regular file");
}

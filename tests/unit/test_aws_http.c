/* aws/http: curl multi on libuv against tests/aws_fake.py. */
#include "aws_fake.h"

#include <uv.h>

#include "aws/http.h"

typedef struct result {
    int calls;
    int err;
    long status;
    char body[256];
    size_t body_len;
    char request_id[128];
} result;

static void on_done(void *arg, int err, aw_http_response *resp)
{
    result *r = arg;
    r->calls++;
    r->err = err;
    r->status = resp->status;
    r->body_len = resp->body.len;
    snprintf(r->body, sizeof r->body, "%s", es_buf_cstr(&resp->body));
    snprintf(r->request_id, sizeof r->request_id, "%s", resp->request_id);
}

static fake f;
static uv_loop_t loop;
static aw_http *h;

static void setup(void)
{
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    fake_start(&f, NULL);
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(aw_http_create(&loop, &h), 0);
}

static void closed(void *arg)
{
    *(int *)arg = 1;
}

static void teardown(void)
{
    int c = 0;
    aw_http_close(h, closed, &c);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(c, 1);
    cr_expect_eq(uv_loop_close(&loop), 0);
    fake_stop(&f);
    expect_no_leaks();
}

static void get(const char *path, aw_http_request *q, result *r)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", f.base, path);
    aw_http_request d = {.method = "GET", .url = url};
    if (!q)
        q = &d;
    q->url = url;
    cr_assert_eq(aw_http_start(h, q, on_done, r), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(r->calls, 1);
}

TestSuite(http, .init = setup, .fini = teardown, .timeout = 60);

Test(http, get_and_connection_reuse)
{
    for (int i = 0; i < 5; i++) {
        result r = {0};
        get("/echo", NULL, &r);
        cr_expect_eq(r.err, 0);
        cr_expect_eq(r.status, 200);
        cr_expect_str_eq(r.body, "hello");
        cr_expect(strncmp(r.request_id, "req-", 4) == 0);
    }
    aw_http_stats st;
    aw_http_get_stats(h, &st);
    cr_expect_eq(st.completed, 5);
    cr_expect_eq(st.connects, 1, "connections opened: %lu", st.connects);
    /* ours, plus the one that asks for the stats */
    cr_expect_eq(fake_stat_int(&f, "connections"), 2);
}

/* A request on a reused connection costs about one loop turn on curl's
 * timer (its "start now" after curl_multi_add_handle); the rest is driven
 * by socket readiness. A regression that spins the loop shows here. */
Test(http, few_loop_turns_per_request)
{
    static const char body[] = "{\"Names\":[\"a\"],\"WithDecryption\":true}";
    aw_http_request post = {.method = "POST", .body = body, .body_len = sizeof body - 1};
    result r = {0};
    get("/__reset", &post, &r); /* connects */
    aw_http_stats a, b;
    aw_http_get_stats(h, &a);
    for (int i = 0; i < 10; i++) {
        result q = {0};
        aw_http_request p2 = post;
        get("/__reset", &p2, &q);
        cr_assert_eq(q.err, 0);
        cr_assert_eq(q.status, 200);
    }
    aw_http_get_stats(h, &b);
    unsigned long per = (b.timer_wakeups - a.timer_wakeups) / 10;
    cr_expect_leq(per, 3, "%lu timer wake-ups per request", per);
}

Test(http, status_and_post)
{
    result r = {0};
    get("/status/503", NULL, &r);
    cr_expect_eq(r.err, 0);
    cr_expect_eq(r.status, 503);
}

Test(http, request_timeout)
{
    result r = {0};
    aw_http_request q = {.method = "GET", .timeout_ms = 300};
    uint64_t t0 = uv_hrtime();
    get("/stall", &q, &r);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    cr_expect_eq(r.err, AW_HTTP_E_TIMEOUT);
    cr_expect(ms >= 250 && ms < 3000, "took %lu ms", (unsigned long)ms);
    cr_expect(aw_http_err_retryable(r.err));
    aw_http_stats st;
    aw_http_get_stats(h, &st);
    cr_expect_eq(st.timeouts, 1);
}

Test(http, connect_failure)
{
    /* a port nobody listens on: bind, read the port, close */
    uv_tcp_t t;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    cr_assert_eq(uv_tcp_init(&loop, &t), 0);
    cr_assert_eq(uv_tcp_bind(&t, (struct sockaddr *)&a, 0), 0);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    uv_tcp_getsockname(&t, (struct sockaddr *)&ss, &len);
    int port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    result r = {0};
    aw_http_request q = {.method = "GET", .url = url};
    cr_assert_eq(aw_http_start(h, &q, on_done, &r), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(r.err, AW_HTTP_E_CONNECT);
}

Test(http, body_limit)
{
    aw_http_request q = {.method = "GET", .max_body = 1000};
    result r = {0};
    get("/big?n=1000", &q, &r);
    cr_expect_eq(r.err, 0);
    cr_expect_eq(r.body_len, 1000);
    result r2 = {0};
    get("/big?n=1001", &q, &r2);
    cr_expect_eq(r2.err, AW_HTTP_E_BODY_TOO_BIG);
    result r3 = {0};
    get("/bigchunked?n=50000", &q, &r3);
    cr_expect_eq(r3.err, AW_HTTP_E_BODY_TOO_BIG);
    cr_expect_str_eq(aw_http_strerror(AW_HTTP_E_BODY_TOO_BIG), "response body larger than allowed");
    aw_http_stats st;
    aw_http_get_stats(h, &st);
    cr_expect_eq(st.body_too_big, 2);
}

Test(http, many_in_flight)
{
    result r[20];
    memset(r, 0, sizeof r);
    char url[128];
    snprintf(url, sizeof url, "%s/echo", f.base);
    for (int i = 0; i < 20; i++) {
        aw_http_request q = {.method = "GET", .url = url};
        cr_assert_eq(aw_http_start(h, &q, on_done, &r[i]), 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 20; i++) {
        cr_expect_eq(r[i].calls, 1);
        cr_expect_eq(r[i].err, 0);
        cr_expect_str_eq(r[i].body, "hello");
    }
}

static void close_from_callback(void *arg, int err, aw_http_response *resp)
{
    on_done(arg, err, resp);
    aw_http_close(h, NULL, NULL);
    h = NULL;
}

Test(http, close_cancels_in_flight_and_from_callback)
{
    /* one fast request whose callback closes the client while a stalled
     * one is in flight: the stalled one is canceled */
    char u1[128], u2[128];
    snprintf(u1, sizeof u1, "%s/echo", f.base);
    snprintf(u2, sizeof u2, "%s/stall", f.base);
    result fast = {0}, slow = {0};
    aw_http_request q1 = {.method = "GET", .url = u1}, q2 = {.method = "GET", .url = u2};
    cr_assert_eq(aw_http_start(h, &q2, on_done, &slow), 0);
    cr_assert_eq(aw_http_start(h, &q1, close_from_callback, &fast), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(fast.calls, 1);
    cr_expect_eq(fast.err, 0);
    cr_expect_eq(slow.calls, 1);
    cr_expect_eq(slow.err, AW_HTTP_E_CANCELED);
    /* teardown's close of NULL is a no-op; recreate so teardown has one */
    cr_assert_eq(aw_http_create(&loop, &h), 0);
}

Test(http, invalid_requests)
{
    char url[128];
    snprintf(url, sizeof url, "%s/echo", f.base);
    result r = {0};
    aw_http_header bad[] = {{"X-A", "a\r\nInjected: 1"}};
    aw_http_request q = {.method = "GET", .url = url, .headers = bad, .n_headers = 1};
    cr_expect_eq(aw_http_start(h, &q, on_done, &r), AW_HTTP_E_INVALID);
    aw_http_request q2 = {.method = "PATCH", .url = url};
    cr_expect_eq(aw_http_start(h, &q2, on_done, &r), AW_HTTP_E_INVALID);
    aw_http_request q3 = {.method = "GET", .url = "ftp://127.0.0.1/"};
    cr_assert_eq(aw_http_start(h, &q3, on_done, &r), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(r.calls, 1);
    cr_expect_eq(r.err, AW_HTTP_E_PROTOCOL);
    cr_expect_eq(r.calls, 1);
}

Test(http, proxy_variables_honoured_and_bypassed_on_request)
{
    /* a proxy that refuses connections: whatever goes through it fails */
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    setenv("http_proxy", "http://127.0.0.1:1", 1);
    char url[128];
    snprintf(url, sizeof url, "%s/echo", f.base);
    result via = {0}, direct = {0};
    aw_http_request q = {.method = "GET", .url = url};
    cr_assert_eq(aw_http_start(h, &q, on_done, &via), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    aw_http_request d = {.method = "GET", .url = url, .no_proxy = true};
    cr_assert_eq(aw_http_start(h, &d, on_done, &direct), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    unsetenv("http_proxy");
    cr_expect_eq(via.err, AW_HTTP_E_CONNECT, "the proxy was not used");
    cr_expect_eq(direct.err, 0);
    cr_expect_str_eq(direct.body, "hello");
}

/* TLS verification cannot be turned off: a self-signed certificate for
 * 127.0.0.1 is refused. */
Test(http, tls_peer_verified)
{
    char dir[] = "/tmp/aw-tls-XXXXXX";
    cr_assert(mkdtemp(dir));
    char cmd[512], cert[64], key[64];
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -addext "
             "subjectAltName=IP:127.0.0.1 -days 1 -keyout %s -out %s >/dev/null 2>&1",
             key, cert);
    if (system(cmd) != 0)
        cr_skip_test("openssl CLI not available");
    fake tls;
    const char *args[] = {"--tls", cert, key, NULL};
    fake_start(&tls, args);
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/echo", tls.port);
    result r = {0};
    aw_http_request q = {.method = "GET", .url = url};
    cr_assert_eq(aw_http_start(h, &q, on_done, &r), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(r.err, AW_HTTP_E_TLS, "err %d", r.err);
    /* the server itself is fine: trusting its certificate, curl gets the answer */
    snprintf(cmd, sizeof cmd, "curl -sf --noproxy '*' --cacert %s %s | grep -q hello", cert, url);
    if (access("/usr/bin/curl", X_OK) == 0)
        cr_expect_eq(system(cmd), 0, "the TLS fake does not answer with a trusted CA");
    cr_expect(!aw_http_err_retryable(r.err));
    fake_stop(&tls);
    unlink(cert);
    unlink(key);
    rmdir(dir);
}

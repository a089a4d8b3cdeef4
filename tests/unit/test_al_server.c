/* The embedded endpoints' HTTP listener: keep-alive, pipelining, SigV4
 * answers, limits and timeouts. The loop runs on the test's thread; a client
 * thread speaks raw HTTP over blocking sockets. */
#include "al_server_helpers.h"

TestSuite(al_server, .init = alt_setup, .fini = alt_teardown);

/* ---- tests ---- */

static void c_keep_alive(run *r)
{
    int fd = dial(r->port);
    resp a;
    request(r, fd, "AmazonSSM.PutParameter",
            "{\"Name\":\"/k/a\",\"Type\":\"SecureString\",\"Value\":\"over-http\"}", &a);
    CK((a.status) == (200));
    CK((strcasestr(a.head, "x-amzn-RequestId: ")) != NULL);
    CK((strcasestr(a.head, "Content-Type: application/x-amz-json-1.1")) != NULL);
    CK((strstr(a.body, "\"Version\":1")) != NULL);
    request(r, fd, "AmazonSSM.GetParameter", "{\"Name\":\"/k/a\",\"WithDecryption\":true}", &a);
    CK((a.status) == (200));
    CK((strstr(a.body, "\"Value\":\"over-http\"")) != NULL);
    /* errors keep the connection */
    request(r, fd, "AmazonSSM.GetParameter", "{\"Name\":\"/k/none\"}", &a);
    CK((a.status) == (400));
    CK(strcmp(a.body, "{\"__type\":\"ParameterNotFound\",\"message\":\"Parameter /k/none "
                      "not found.\"}") == 0);
    request(r, fd, "secretsmanager.GetSecretValue", "{\"SecretId\":\"none\"}", &a);
    CK((strstr(a.body, "\"Message\":")) != NULL);
    request(r, fd, "TrentService.ListAliases", "{}", &a);
    CK((a.status) == (200));
    close(fd);
}

Test(al_server, keep_alive_and_answers)
{
    run_and_check(c_keep_alive, NULL);
}

static void c_pipelined(run *r)
{
    int fd = dial(r->port);
    es_buf b;
    es_buf_init(&b, 1 << 20);
    build(r, &b, "AmazonSSM.PutParameter", "{\"Name\":\"/p1\",\"Type\":\"String\",\"Value\":\"1\"}",
          r->akid, r->secret);
    build(r, &b, "AmazonSSM.GetParameter", "{\"Name\":\"/p1\"}", r->akid, r->secret);
    build(r, &b, "AmazonSSM.GetParameter", "{\"Name\":\"/p2\"}", r->akid, r->secret);
    send_all(fd, b.data, b.len);
    es_buf_free(&b);
    resp a;
    read_resp(fd, &a, 5000);
    CK((a.status) == (200));
    CK((strstr(a.body, "\"Version\":1")) != NULL);
    read_resp(fd, &a, 5000);
    CK((a.status) == (200));
    CK((strstr(a.body, "\"Value\":\"1\"")) != NULL);
    read_resp(fd, &a, 5000);
    CK((a.status) == (400));
    close(fd);
}

Test(al_server, pipelined_requests_answered_in_order)
{
    run_and_check(c_pipelined, NULL);
}

static void c_auth(run *r)
{
    int fd = dial(r->port);
    es_buf b;
    es_buf_init(&b, 1 << 20);
    resp a;
    build(r, &b, "AmazonSSM.GetParameter", "{\"Name\":\"/x\"}", NULL, NULL);
    send_all(fd, b.data, b.len);
    read_resp(fd, &a, 5000);
    CK((a.status) == (400));
    CK((strstr(a.body, "MissingAuthenticationTokenException")) != NULL);
    es_buf_reset(&b);
    build(r, &b, "AmazonSSM.GetParameter", "{\"Name\":\"/x\"}", "AKIAAAAAAAAAAAAAAAAA", r->secret);
    send_all(fd, b.data, b.len);
    read_resp(fd, &a, 5000);
    CK((strstr(a.body, "UnrecognizedClientException")) != NULL);
    es_buf_reset(&b);
    build(r, &b, "AmazonSSM.GetParameter", "{\"Name\":\"/x\"}", r->akid,
          "wrongwrongwrongwrongwrongwrongwrongwrong");
    send_all(fd, b.data, b.len);
    read_resp(fd, &a, 5000);
    CK((strstr(a.body, "InvalidSignatureException")) != NULL);
    CK((strstr(a.body, r->secret)) == NULL);
    /* the signature covers the body */
    es_buf_reset(&b);
    build(r, &b, "AmazonSSM.GetParameter", "{\"Name\":\"/x\"}", r->akid, r->secret);
    b.data[b.len - 3] = 'y';
    send_all(fd, b.data, b.len);
    read_resp(fd, &a, 5000);
    CK((strstr(a.body, "InvalidSignatureException")) != NULL);
    /* unknown operation, wrong method, query protocol */
    es_buf_reset(&b);
    build(r, &b, "AmazonSSM.Frobnicate", "{}", r->akid, r->secret);
    send_all(fd, b.data, b.len);
    read_resp(fd, &a, 5000);
    CK((strstr(a.body, "UnknownOperationException")) != NULL);
    /* an unsigned GET / is S3's ListBuckets (the REST route): refused in S3's XML */
    const char *get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, get, strlen(get));
    read_resp(fd, &a, 5000);
    CK((a.status) == (403));
    CK(strstr(a.body, "<Code>AccessDenied</Code>") != NULL);
    const char *form = "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: "
                       "application/x-www-form-urlencoded; charset=utf-8\r\nContent-Length: "
                       "36\r\n\r\nAction=AssumeRole&Version=2011-06-15";
    send_all(fd, form, strlen(form));
    read_resp(fd, &a, 5000);
    /* the query protocol (IAM, STS) is served: unsigned, it is refused in XML */
    CK((a.status) == (403));
    CK((strstr(a.body, "<Code>MissingAuthenticationToken</Code>")) != NULL);
    es_buf_free(&b);
    close(fd);
}

Test(al_server, authentication_failures)
{
    run_and_check(c_auth, NULL);
}

static void c_limits(run *r)
{
    resp a;
    /* head too large */
    int fd = dial(r->port);
    es_buf b;
    es_buf_init(&b, 1 << 22);
    es_buf_append_str(&b, "POST / HTTP/1.1\r\nHost: x\r\nX-Big: ");
    for (int i = 0; i < 20000; i++)
        es_buf_append_char(&b, 'a');
    es_buf_append_str(&b, "\r\n\r\n");
    send_all(fd, b.data, b.len);
    read_resp(fd, &a, 5000);
    CK((a.status) == (431));
    CK(closed_within(fd, 2000));
    close(fd);
    /* body too large, announced */
    fd = dial(r->port);
    const char *big = "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AmazonSSM.GetParameter\r\n"
                      "Content-Length: 2000000\r\n\r\n";
    send_all(fd, big, strlen(big));
    read_resp(fd, &a, 5000);
    CK((a.status) == (413));
    close(fd);
    /* malformed */
    fd = dial(r->port);
    send_all(fd, "HELLO\r\n\r\n", 9);
    read_resp(fd, &a, 5000);
    CK((a.status) == (400));
    CK(closed_within(fd, 2000));
    close(fd);
    es_buf_free(&b);
}

Test(al_server, header_and_body_limits)
{
    run_and_check(c_limits, NULL);
}

static void c_timeouts(run *r)
{
    /* a request that never completes: 408 then closed */
    int fd = dial(r->port);
    send_all(fd, "POST / HTTP/1.1\r\nHost: x\r\n", 26);
    resp a;
    read_resp(fd, &a, 3000);
    CK((a.status) == (408));
    CK(closed_within(fd, 2000));
    close(fd);
    /* an idle kept-alive connection is closed without an answer */
    fd = dial(r->port);
    request(r, fd, "TrentService.ListKeys", "{}", &a);
    CK((a.status) == (200));
    CK(closed_within(fd, 3000));
    close(fd);
    /* each request moves the deadline on (the timer is not restarted for a
     * later one: listener.c, arm_timer): a connection used every 100 ms
     * stays open past the first deadline it was given, then idles out */
    fd = dial(r->port);
    for (int i = 0; i < 8; i++) {
        request(r, fd, "TrentService.ListKeys", "{}", &a);
        CK((a.status) == (200));
        usleep(100000);
    }
    request(r, fd, "TrentService.ListKeys", "{}", &a);
    CK((a.status) == (200));
    CK(closed_within(fd, 3000));
    close(fd);
}

Test(al_server, slow_and_idle_clients_time_out)
{
    aw_listener_limits lim = aw_listener_default_limits;
    lim.request_timeout_ms = 300;
    lim.idle_timeout_ms = 300;
    run_and_check(c_timeouts, &lim);
}

static void c_conn_limit(run *r)
{
    /* full: an idle connection makes room (idle floods cannot lock callers
     * out), a stranger's before a client's kept alive between two calls,
     * though the client's is the older */
    int a = dial(r->port), b = dial(r->port);
    resp x;
    request(r, a, "TrentService.ListKeys", "{}", &x); /* a idle after its answer, b never spoke */
    CK((x.status) == (200));
    int c = dial(r->port);
    request(r, c, "TrentService.ListKeys", "{}", &x);
    CK((x.status) == (200));
    CK(closed_within(b, 2000));                       /* the stranger */
    request(r, a, "TrentService.ListKeys", "{}", &x); /* the client kept its connection */
    CK((x.status) == (200));
    /* only clients idle: the oldest connection of them goes */
    int e = dial(r->port);
    request(r, e, "TrentService.ListKeys", "{}", &x);
    CK((x.status) == (200));
    CK(closed_within(a, 2000));
    close(a);
    a = e;
    /* every connection in the middle of a request: a new one is refused */
    const char *partial = "POST / HTTP/1.1\r\nHost: x\r\n";
    send_all(a, partial, strlen(partial));
    send_all(c, partial, strlen(partial));
    usleep(100000);
    int d = dial(r->port);
    CK(closed_within(d, 2000));
    close(d);
    close(a);
    close(b);
    close(c);
    /* a slot frees up again once the server has seen the closes (retry for
     * up to 5 s on a loaded machine) */
    x.status = 0;
    for (int i = 0; i < 50 && x.status != 200; i++) {
        usleep(100000);
        int d = dial(r->port);
        es_buf b;
        es_buf_init(&b, 1 << 16);
        build(r, &b, "TrentService.ListKeys", "{}", r->akid, r->secret);
        send_all(d, b.data, b.len);
        es_buf_free(&b);
        struct pollfd p = {.fd = d, .events = POLLIN};
        if (poll(&p, 1, 2000) == 1) {
            char peek;
            if (recv(d, &peek, 1, MSG_PEEK) == 1)
                read_resp(d, &x, 5000);
        }
        close(d);
    }
    CK((x.status) == (200));
}

Test(al_server, connection_limit)
{
    aw_listener_limits lim = aw_listener_default_limits;
    lim.max_connections = 2;
    run_and_check(c_conn_limit, &lim);
}

/* A connection from source address 127.0.0.SRC (a remote peer to the
 * per-peer cap unless SRC is 1). */
static int dial_from(int port, int src)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CK((fd) >= (0));
    struct sockaddr_in b = {.sin_family = AF_INET};
    b.sin_addr.s_addr = htonl((INADDR_LOOPBACK & 0xffffff00u) | (uint32_t)src);
    CK((bind(fd, (struct sockaddr *)&b, sizeof b)) == (0));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CK((connect(fd, (struct sockaddr *)&a, sizeof a)) == (0));
    return fd;
}

static void c_peer_limit(run *r)
{
    /* peer .2 may hold 2; its third connection evicts its own idle one */
    resp x;
    int a = dial_from(r->port, 2), b = dial_from(r->port, 2);
    request(r, a, "TrentService.ListKeys", "{}", &x);
    CK((x.status) == (200));
    request(r, b, "TrentService.ListKeys", "{}", &x);
    CK((x.status) == (200));
    int c = dial_from(r->port, 2);
    request(r, c, "TrentService.ListKeys", "{}", &x);
    CK((x.status) == (200));
    CK(closed_within(a, 2000)); /* its oldest idle one */
    /* both of its connections busy: the next is refused... */
    const char *partial = "POST / HTTP/1.1\r\nHost: x\r\n";
    send_all(b, partial, strlen(partial));
    send_all(c, partial, strlen(partial));
    usleep(100000);
    int d = dial_from(r->port, 2);
    CK(closed_within(d, 2000));
    /* ...while another peer, and a local client, are served */
    int e = dial_from(r->port, 3), f = dial(r->port);
    request(r, e, "TrentService.ListKeys", "{}", &x);
    CK((x.status) == (200));
    request(r, f, "TrentService.ListKeys", "{}", &x);
    CK((x.status) == (200));
    int fds[] = {a, b, c, d, e, f};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        close(fds[i]);
}

Test(al_server, connection_limit_per_peer)
{
    aw_listener_limits lim = aw_listener_default_limits;
    lim.max_connections_per_peer = 2;
    run_and_check(c_peer_limit, &lim);
}

static void c_expect(run *r)
{
    int fd = dial(r->port);
    es_buf b;
    es_buf_init(&b, 1 << 20);
    build(r, &b, "TrentService.ListKeys", "{}", r->akid, r->secret);
    /* insert Expect: 100-continue before the blank line and hold the body */
    char *blank = strstr(b.data, "\r\n\r\n");
    size_t head = (size_t)(blank - b.data) + 2;
    send_all(fd, b.data, head);
    send_all(fd, "Expect: 100-continue\r\n\r\n", 24);
    resp a;
    read_resp(fd, &a, 5000);
    CK((a.status) == (100));
    send_all(fd, blank + 4, strlen(blank + 4));
    read_resp(fd, &a, 5000);
    CK((a.status) == (200));
    es_buf_free(&b);
    close(fd);
}

Test(al_server, expect_continue)
{
    run_and_check(c_expect, NULL);
}

/* ---- routes of other modules on the same listener ---- */

static char route_seen[256];

static int ecs_route(void *arg, const aw_listener_call *k, es_buf *out, al_error *err)
{
    (void)arg;
    snprintf(route_seen, sizeof route_seen, "%s|%s|%.*s", k->operation, k->principal, (int)k->len,
             k->body);
    if (strcmp(k->operation, "Fail") == 0)
        return al_fail(err, 400, "ClientException", "as asked");
    return es_buf_append_str(out, "{\"tasks\":[]}");
}

static int metrics_route(void *arg, const char *path, es_buf *out, const char **ct)
{
    (void)arg;
    *ct = "text/plain; version=0.0.4";
    return es_buf_printf(out, "requests_on %s 1\n", path);
}

static void c_routes(run *r)
{
    int fd = dial(r->port);
    resp a;
    es_buf b;
    es_buf_init(&b, 1 << 20);
    /* signed for "ecs" like the CLI's ecs commands */
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%d", r->port);
    const char *target = "AmazonEC2ContainerServiceV20141113.RunTask";
    const char *body = "{\"cluster\":\"default\"}";
    aw_header h[] = {
        {"Host", host}, {"Content-Type", "application/x-amz-json-1.1"}, {"X-Amz-Target", target}};
    char hash[65];
    aw_sigv4_sha256_hex(body, strlen(body), hash);
    aw_sigv4_input in = {"POST", "/", NULL, h, 3, hash, false};
    aw_signer *s = aw_signer_create();
    aw_sigv4_creds creds = {r->akid, r->secret, NULL};
    aw_sigv4_result res;
    CK(aw_signer_sign(s, &creds, "us-east-2", "ecs", time(NULL), &in, &res) == 0);
    es_buf_printf(&b,
                  "POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-amz-json-1.1\r\n"
                  "X-Amz-Target: %s\r\nX-Amz-Date: %s\r\nAuthorization: %s\r\nContent-Length: "
                  "%zu\r\n\r\n%s",
                  host, target, res.amz_date, es_buf_cstr(&res.authorization), strlen(body), body);
    es_buf_free_secret(&res.authorization);
    aw_signer_free(s);
    send_all(fd, b.data, b.len);
    read_resp(fd, &a, 5000);
    CK(a.status == 200);
    CK(strcmp(a.body, "{\"tasks\":[]}") == 0);
    CK(strcmp(route_seen, "RunTask|arn:aws:iam::123456789012:root|{\"cluster\":\"default\"}") == 0);
    /* signed for another service: refused before the route runs */
    route_seen[0] = 0;
    es_buf_reset(&b);
    build(r, &b, "AmazonEC2ContainerServiceV20141113.Fail", "{}", r->akid, r->secret);
    send_all(fd, b.data, b.len);
    read_resp(fd, &a, 5000);
    CK(a.status == 400);
    CK(route_seen[0] == 0);
    /* unsigned GET route; other paths are refused */
    const char *get = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, get, strlen(get));
    read_resp(fd, &a, 5000);
    CK(a.status == 200);
    CK(strcmp(a.body, "requests_on /metrics 1\n") == 0);
    CK(strcasestr(a.head, "Content-Type: text/plain; version=0.0.4") != NULL);
    /* other paths are S3's (the REST route al_mount adds): an unsigned one is refused */
    get = "GET /other HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, get, strlen(get));
    read_resp(fd, &a, 5000);
    CK(a.status == 403);
    es_buf_free(&b);
    close(fd);
}

static void add_routes(aw_listener *srv)
{
    aw_json_route ecs = {.target_prefix = "AmazonEC2ContainerServiceV20141113.",
                         .signing_name = "ecs",
                         .fn = ecs_route};
    cr_assert_eq(aw_listener_add_json_route(srv, &ecs), 0);
    cr_assert_eq(aw_listener_add_get_route(srv, "/metrics", metrics_route, NULL), 0);
}

Test(al_server, routes_of_other_modules)
{
    route_hook = add_routes;
    run_and_check(c_routes, NULL);
    route_hook = NULL;
}

/* The agent's aws mode: the store's own operations and the query services
 * are refused; the routes still answer. */
static void c_no_store(run *r)
{
    int fd = dial(r->port);
    resp a;
    request(r, fd, "AmazonSSM.GetParameter", "{\"Name\":\"/x\"}", &a);
    CK(a.status == 400);
    CK(strstr(a.body, "UnknownOperationException") != NULL);
    request(r, fd, "TrentService.ListKeys", "{}", &a);
    CK(a.status == 400);
    CK(strstr(a.body, "UnknownOperationException") != NULL);
    const char *form = "Action=GetCallerIdentity&Version=2011-06-15";
    es_buf b;
    es_buf_init(&b, 4096);
    es_buf_printf(&b,
                  "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded; "
                  "charset=utf-8\r\nContent-Length: %zu\r\n\r\n%s",
                  strlen(form), form);
    send_all(fd, b.data, b.len);
    read_resp(fd, &a, 5000);
    CK(a.status == 400);
    CK(strstr(a.body, "<Code>UnknownOperationException</Code>") != NULL);
    es_buf_free(&b);
    const char *get = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, get, strlen(get));
    read_resp(fd, &a, 5000);
    CK(a.status == 200);
    close(fd);
}

Test(al_server, store_operations_turned_off)
{
    route_hook = add_routes;
    store_auth_only = true;
    run_and_check(c_no_store, NULL);
    store_auth_only = false;
    route_hook = NULL;
}

/* An answer larger than the socket takes at once, to a client that reads
 * late: the first writev is partial, the rest is copied into a queued write
 * and reading pauses meanwhile (the pipelined second request waits in
 * `pending`); both answers must arrive whole, in order, byte for byte. */
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

/* Reads one answer's head, then exactly its Content-Length bytes, checking
 * the pattern; false on any difference. */
static bool read_big(int fd)
{
    char head[4096];
    size_t hl = 0;
    while (hl < sizeof head - 1) {
        ssize_t n = recv(fd, head + hl, 1, 0); /* byte by byte: never past the head */
        if (n <= 0)
            return false;
        hl++;
        if (hl >= 4 && memcmp(head + hl - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    head[hl] = '\0';
    if (strncmp(head, "HTTP/1.1 200 ", 13) != 0)
        return false;
    const char *cl = strstr(head, "Content-Length: ");
    if (!cl || strtoul(cl + 16, NULL, 10) != BIG_ANSWER)
        return false;
    static char buf[1 << 16];
    size_t got = 0;
    while (got < BIG_ANSWER) {
        size_t want = BIG_ANSWER - got < sizeof buf ? BIG_ANSWER - got : sizeof buf;
        ssize_t n = recv(fd, buf, want, 0);
        if (n <= 0)
            return false;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != (char)('a' + (got + (size_t)i) % 26))
                return false;
        got += (size_t)n;
    }
    return true;
}

static void c_big(run *r)
{
    int fd = dial(r->port);
    const char *two = "GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /big HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, two, strlen(two));
    usleep(200 * 1000); /* the server fills the socket and queues the rest */
    CK(read_big(fd));
    CK(read_big(fd));
    /* the connection is still usable afterwards */
    const char *get = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, get, strlen(get));
    CK(read_big(fd));
    close(fd);
}

Test(al_server, large_answer_to_a_late_reader)
{
    route_hook = add_big_route;
    run_and_check(c_big, NULL);
    route_hook = NULL;
}

/* A caller the head already shows to be unknown gets no buffer: its body is
 * discarded as it arrives (an 800 KiB body passes a 64 KiB budget and is
 * refused for who sent it), while a known caller's bodies count against the
 * budget shared by all connections (503 SlowDown past it). */
static void c_body_budget(run *r)
{
    size_t n = 800u << 10;
    char *big = malloc(n + 32);
    CK(big != NULL);
    if (!big)
        return;
    snprintf(big, n + 32, "{\"Name\":\"/%0*d\"}", (int)n, 0);
    es_buf b;
    es_buf_init(&b, 2u << 20);
    resp a;
    int fd = dial(r->port);
    build(r, &b, "AmazonSSM.GetParameter", big, "AKIAAAAAAAAAAAAAAAAA", r->secret);
    send_all(fd, b.data, b.len);
    read_resp(fd, &a, 5000);
    CK((a.status) == (400));
    CK(strstr(a.body, "UnrecognizedClientException") != NULL);
    /* the connection stays usable: the body was consumed, not kept */
    request(r, fd, "TrentService.ListKeys", "{}", &a);
    CK((a.status) == (200));
    close(fd);
    /* the administrator's 100 KiB body is over the 64 KiB budget */
    big[100u << 10] = '\0';
    big[(100u << 10) - 2] = '"';
    big[(100u << 10) - 1] = '}';
    fd = dial(r->port);
    es_buf_reset(&b);
    build(r, &b, "AmazonSSM.GetParameter", big, r->akid, r->secret);
    send_all(fd, b.data, b.len);
    read_resp(fd, &a, 5000);
    CK((a.status) == (503));
    CK(strstr(a.body, "SlowDown") != NULL);
    close(fd);
    es_buf_free(&b);
    free(big);
}

Test(al_server, unknown_callers_bodies_are_not_buffered)
{
    aw_listener_limits lim = aw_listener_default_limits;
    lim.max_buffered_bodies = 64u << 10;
    run_and_check(c_body_budget, &lim);
}

/* The agent's reserved door (issue 17): a unix socket of its owner's only,
 * served like the TCP listener (signed calls, keep-alive); a stale socket
 * file is replaced, anything else at the path is not; the file goes with
 * the listener. */
static void c_unix(run *r)
{
    struct stat st;
    CK(stat(unix_path, &st) == 0);
    CK(S_ISSOCK(st.st_mode));
    CK((st.st_mode & 07777) == 0600);
    CK(st.st_uid == geteuid());
    int fd = dial(0);
    resp a;
    request(r, fd, "AmazonSSM.PutParameter",
            "{\"Name\":\"/u/a\",\"Type\":\"SecureString\",\"Value\":\"over-unix\"}", &a);
    CK(a.status == 200);
    request(r, fd, "AmazonSSM.GetParameter", "{\"Name\":\"/u/a\",\"WithDecryption\":true}", &a);
    CK(a.status == 200);
    CK(strstr(a.body, "\"Value\":\"over-unix\"") != NULL);
    /* unsigned: refused as on TCP */
    es_buf b;
    es_buf_init(&b, 4096);
    build(r, &b, "AmazonSSM.GetParameter", "{\"Name\":\"/u/a\"}", NULL, NULL);
    send_all(fd, b.data, b.len);
    es_buf_free(&b);
    read_resp(fd, &a, 5000);
    CK(a.status == 400);
    CK(strstr(a.body, "MissingAuthenticationTokenException") != NULL);
    close(fd);
}

Test(al_server, unix_socket_listener)
{
    uv_loop_t loop;
    aw_listener *l = NULL;
    snprintf(unix_path, sizeof unix_path, "%s/self.sock", T.dir);
    /* a regular file at the path is not ours to replace */
    FILE *f = fopen(unix_path, "w");
    cr_assert_not_null(f);
    fclose(f);
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(aw_listener_start_unix(&loop, unix_path, 0600, NULL, &l), -EEXIST);
    cr_assert_eq(unlink(unix_path), 0);
    /* a socket left by a process that is gone is */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", unix_path);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    close(fd);
    cr_assert_eq(uv_loop_close(&loop), 0);
    run_and_check(c_unix, NULL);
    struct stat st;
    cr_assert_lt(stat(unix_path, &st), 0, "the socket file outlived its listener");
    unix_path[0] = 0;
}

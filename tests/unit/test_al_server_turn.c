/* The listener's turn (aws/listener.c, "the turn's answers"): plain-HTTP
 * answers held until the loop has run its poll's callbacks, then written back
 * to back. Every answer reaches its own connection, whole and in order; more
 * connections than one turn holds; an answer made outside the poll (a timer's)
 * is not kept waiting for another event; clients that leave before their
 * answer. */
#include "al_server_helpers.h"

TestSuite(al_turn, .init = alt_setup, .fini = alt_teardown);

/* more than TURN_ANSWERS_MAX (32): a turn may write some before its end */
#define CONNS 40

static void c_many(run *r)
{
    int fd[CONNS];
    es_buf b;
    es_buf_init(&b, 1 << 20);
    char body[256];
    resp a;
    /* every connection's request sent before any answer is read */
    for (int i = 0; i < CONNS; i++) {
        fd[i] = dial(r->port);
        snprintf(body, sizeof body,
                 "{\"Name\":\"/turn/%d\",\"Type\":\"SecureString\",\"Value\":\"value-%d\"}", i,
                 i * 7);
        es_buf_reset(&b);
        build(r, &b, "AmazonSSM.PutParameter", body, r->akid, r->secret);
        send_all(fd[i], b.data, b.len);
    }
    for (int i = 0; i < CONNS; i++) {
        read_resp(fd[i], &a, 5000);
        CK(a.status == 200);
        CK(strstr(a.body, "\"Version\":1") != NULL);
    }
    /* reads, answered on each connection with its own value, read back to front */
    for (int i = 0; i < CONNS; i++) {
        snprintf(body, sizeof body, "{\"Name\":\"/turn/%d\",\"WithDecryption\":true}", i);
        es_buf_reset(&b);
        build(r, &b, "AmazonSSM.GetParameter", body, r->akid, r->secret);
        send_all(fd[i], b.data, b.len);
    }
    for (int i = CONNS - 1; i >= 0; i--) {
        read_resp(fd[i], &a, 5000);
        CK(a.status == 200);
        char want[64];
        snprintf(want, sizeof want, "\"Value\":\"value-%d\"", i * 7);
        CK(strstr(a.body, want) != NULL);
        snprintf(want, sizeof want, "\"Name\":\"/turn/%d\"", i);
        CK(strstr(a.body, want) != NULL);
        /* exactly one answer: nothing else arrives on the connection */
        struct pollfd p = {.fd = fd[i], .events = POLLIN};
        CK(poll(&p, 1, 0) == 0);
    }
    /* the connections stay usable for a second round */
    for (int i = 0; i < CONNS; i += 9) {
        request(r, fd[i], "AmazonSSM.GetParameter", "{\"Name\":\"/turn/none\"}", &a);
        CK(a.status == 400);
        CK(strstr(a.body, "ParameterNotFound") != NULL);
    }
    for (int i = 0; i < CONNS; i++)
        close(fd[i]);
    es_buf_free(&b);
}

Test(al_turn, every_connection_gets_its_own_answer)
{
    run_and_check(c_many, NULL);
    /* the answers went through the turn (every small plain answer does) */
    cr_assert_geq(last_stats.answers_held, 2 * CONNS + 5);
    cr_assert_leq(last_stats.answers_written_early, last_stats.answers_held);
}

/* ---- an answer made by a timer, outside the poll's callbacks ----
 * One timer for every request, closed by a last request served at once: a
 * handle closed in the timer's own callback would itself keep that turn's
 * poll from blocking, and hide what is tested. */

static uv_timer_t late_t;
static bool late_open;
static aw_listener_reply *late_reply;
static aw_listener *late_srv;

static void late_fire(uv_timer_t *t)
{
    (void)t;
    aw_listener_reply_ok(late_reply, "{\"late\":true}", 13);
    late_reply = NULL;
}

static int late_route(void *arg, const aw_listener_call *call, es_buf *out, aw_listener_error *err)
{
    (void)arg;
    (void)err;
    if (strcmp(call->operation, "Close") == 0) {
        if (late_open)
            uv_close((uv_handle_t *)&late_t, NULL);
        late_open = false;
        return es_buf_append_str(out, "{}");
    }
    if (!late_open) {
        uv_timer_init(aw_listener_loop(late_srv), &late_t);
        late_open = true;
    }
    late_reply = aw_listener_defer(call);
    cr_assert_not_null(late_reply);
    uv_timer_start(&late_t, late_fire, 20, 0);
    return AW_LISTENER_LATER;
}

static void add_late_route(aw_listener *srv)
{
    late_srv = srv;
    aw_json_route rt = {.target_prefix = "TurnTest.", .signing_name = "ssm", .fn = late_route};
    cr_assert_eq(aw_listener_add_json_route(srv, &rt), 0);
}

static void c_late(run *r)
{
    int fd = dial(r->port);
    resp a;
    for (int i = 0; i < 3; i++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        /* nothing else happens on the loop: without the idle handle the poll
         * would sleep until the connection's idle timeout (60 s) */
        request(r, fd, "TurnTest.Later", "{}", &a);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        CK(a.status == 200);
        CK(strcmp(a.body, "{\"late\":true}") == 0);
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        CK(ms < 2000);
    }
    request(r, fd, "TurnTest.Close", "{}", &a);
    CK(a.status == 200);
    close(fd);
}

Test(al_turn, an_answer_made_by_a_timer_is_written_in_its_turn)
{
    route_hook = add_late_route;
    run_and_check(c_late, NULL);
    route_hook = NULL;
    cr_assert_eq(last_stats.deferred, 3);
    cr_assert_geq(last_stats.answers_held, 3);
}

/* Clients that send and leave: their answers are held, then fail to be
 * written (or are written to a closed socket); the listener goes on. */
static void c_leavers(run *r)
{
    es_buf b;
    es_buf_init(&b, 1 << 20);
    int fd[CONNS];
    for (int i = 0; i < CONNS; i++) {
        fd[i] = dial(r->port);
        es_buf_reset(&b);
        build(r, &b, "TrentService.ListKeys", "{}", r->akid, r->secret);
        send_all(fd[i], b.data, b.len);
        /* RST on close: nothing of the answer is read */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    for (int i = 0; i < CONNS; i++)
        close(fd[i]);
    es_buf_free(&b);
    int f = dial(r->port);
    resp a;
    request(r, f, "TrentService.ListKeys", "{}", &a);
    CK(a.status == 200);
    close(f);
}

Test(al_turn, clients_that_leave_before_their_answer)
{
    run_and_check(c_leavers, NULL);
}

/* ---- a route that answers its reply before it returns ----
 * (the ECS API's cluster RunTask refusing a placement no transaction holds,
 * or an error found before any wait): exactly one answer, and the
 * connection's next request gets its own. A second answer written after the
 * first ("deferred without a reply") would be read as the next request's. */

static int at_once_route(void *arg, const aw_listener_call *call, es_buf *out,
                         aw_listener_error *err)
{
    (void)arg;
    (void)out;
    (void)err;
    aw_listener_reply *r = aw_listener_defer(call);
    cr_assert_not_null(r);
    if (strcmp(call->operation, "Refuse") == 0) {
        aw_listener_error e = {.status = 400};
        snprintf(e.code, sizeof e.code, "ClientException");
        snprintf(e.message, sizeof e.message, "refused at once");
        aw_listener_reply_error(r, &e);
    } else {
        aw_listener_reply_ok(r, "{\"at\":\"once\"}", 13);
    }
    return AW_LISTENER_LATER;
}

static void add_at_once_route(aw_listener *srv)
{
    aw_json_route rt = {.target_prefix = "AtOnce.", .signing_name = "ssm", .fn = at_once_route};
    cr_assert_eq(aw_listener_add_json_route(srv, &rt), 0);
}

static void c_at_once(run *r)
{
    int fd = dial(r->port);
    resp a;
    for (int i = 0; i < 3; i++) {
        request(r, fd, "AtOnce.Refuse", "{}", &a);
        CK(a.status == 400);
        CK(strstr(a.body, "refused at once") != NULL);
        request(r, fd, "AtOnce.Answer", "{}", &a);
        CK(a.status == 200);
        CK(strcmp(a.body, "{\"at\":\"once\"}") == 0);
        /* the store's own route after it, on the same connection */
        request(r, fd, "TrentService.ListKeys", "{}", &a);
        CK(a.status == 200);
        CK(strstr(a.body, "\"Keys\"") != NULL);
    }
    /* nothing more arrives: no second answer to any of them */
    struct pollfd p = {.fd = fd, .events = POLLIN};
    CK(poll(&p, 1, 200) == 0);
    close(fd);
}

Test(al_turn, a_reply_answered_within_the_call_is_the_only_answer)
{
    route_hook = add_at_once_route;
    run_and_check(c_at_once, NULL);
    route_hook = NULL;
    cr_assert_eq(last_stats.errors_5xx, 0);
}

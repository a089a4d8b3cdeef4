/* cluster/etcd.c against a real etcd (Debian's etcd-server, started here on
 * loopback in a temporary directory): every call's wire shape as etcd 3.4
 * answers it, failover past a dead endpoint, a watch's stream, leases, a
 * transaction's compare both ways, an etcd refusal, a close with a
 * watch and calls in flight, cluster/election.c's candidates on it, and a
 * cluster/member.c leader cut off from etcd stepping down before etcd ends
 * its lease. Needs the etcd binary
 * (scripts/deps.sh). */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "cluster/election.h"
#include "cluster/etcd.h"
#include "cluster/member.h"
#include "cluster/mirror.h"

static uv_loop_t loop;
static pid_t etcd_pid, tls_pid;
static char dir[64], url[64], dead_url[64];

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void start_etcd(void)
{
    cr_assert_eq(system("command -v etcd >/dev/null"), 0,
                 "etcd is not installed (scripts/deps.sh installs etcd-server)");
    snprintf(dir, sizeof dir, "/tmp/es-etcd-client-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    int cport = free_port(), pport = free_port();
    snprintf(url, sizeof url, "http://127.0.0.1:%d", cport);
    snprintf(dead_url, sizeof dead_url, "http://127.0.0.1:%d", free_port()); /* nothing there */
    char data[128], peer[64], initial[96], log[128];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(peer, sizeof peer, "http://127.0.0.1:%d", pport);
    snprintf(initial, sizeof initial, "e=%s", peer);
    snprintf(log, sizeof log, "%s/etcd.log", dir);
    etcd_pid = fork();
    cr_assert_geq(etcd_pid, 0);
    if (etcd_pid == 0) {
        /* dies with the test, also when a timeout kills the test with SIGKILL */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (!freopen(log, "w", stdout) || !freopen(log, "a", stderr))
            _exit(126);
        execlp("etcd", "etcd", "--name", "e", "--data-dir", data, "--listen-client-urls", url,
               "--advertise-client-urls", url, "--listen-peer-urls", peer,
               "--initial-advertise-peer-urls", peer, "--initial-cluster", initial, (char *)NULL);
        _exit(127);
    }
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "ETCDCTL_API=3 etcdctl --endpoints=%s endpoint health >/dev/null 2>&1", url);
    for (int i = 0; i < 100 && system(cmd) != 0; i++)
        usleep(100000);
    cr_assert_eq(system(cmd), 0, "etcd did not become healthy (see %s)", log);
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    cr_assert_eq(uv_loop_init(&loop), 0);
    start_etcd();
}

static void teardown(void)
{
    pid_t pids[] = {etcd_pid, tls_pid};
    for (size_t i = 0; i < 2; i++)
        if (pids[i] > 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], NULL, 0);
        }
    etcd_pid = tls_pid = 0;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(uv_loop_close(&loop), 0, "a handle was left open");
}

TestSuite(etcd_client, .init = setup, .fini = teardown, .timeout = 120);

/* What one call answered, kept past its callback. */
typedef struct result {
    bool done;
    int err;
    bool is_error, succeeded;
    int code;
    int64_t revision, id, ttl, mod_revision, lease;
    size_t n_kvs;
    char key[128], value[256];
} result;

static void on_result(void *arg, int err, const cl_answer *a)
{
    result *r = arg;
    memset(r, 0, sizeof *r);
    r->done = true;
    r->err = err;
    if (!a)
        return;
    r->is_error = a->is_error;
    r->code = a->code;
    r->succeeded = a->succeeded;
    r->revision = a->revision;
    r->id = a->id;
    r->ttl = a->ttl;
    r->n_kvs = a->n_kvs;
    if (a->n_kvs) {
        snprintf(r->key, sizeof r->key, "%s", a->kvs[0].key);
        snprintf(r->value, sizeof r->value, "%s", a->kvs[0].value);
        r->mod_revision = a->kvs[0].mod_revision;
        r->lease = a->kvs[0].lease;
    }
}

static void wait_for(const bool *flag)
{
    for (int i = 0; i < 10000 && !*flag; i++)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert(*flag, "no answer");
}

#define CALL(r, expr)                                                                              \
    do {                                                                                           \
        (r)->done = false;                                                                         \
        cr_assert_eq((expr), 0, #expr);                                                            \
        wait_for(&(r)->done);                                                                      \
    } while (0)

typedef struct watch_log {
    int created, puts, deletes;
    char last_put_value[64];
    bool ended;
    int end_err;
} watch_log;

static void on_watch_msg(void *arg, const cl_answer *a)
{
    watch_log *w = arg;
    w->created += a->created;
    for (size_t i = 0; i < a->n_events; i++) {
        if (a->events[i].type == CL_EVENT_DELETE) {
            w->deletes++;
        } else {
            w->puts++;
            snprintf(w->last_put_value, sizeof w->last_put_value, "%s", a->events[i].kv.value);
        }
    }
}

static void on_watch_end(void *arg, int err)
{
    watch_log *w = arg;
    w->ended = true;
    w->end_err = err;
}

static bool closed;
static void on_closed(void *arg)
{
    (void)arg;
    closed = true;
}

static cl_etcd *client(void)
{
    char eps[160], why[128];
    /* the dead endpoint first: every first call fails over */
    snprintf(eps, sizeof eps, "%s,%s", dead_url, url);
    cl_etcd_config c = {.endpoints = eps, .timeout_ms = 3000};
    cl_etcd *e = NULL;
    cr_assert_eq(cl_etcd_create(&loop, &c, &e, why, sizeof why), 0, "%s", why);
    return e;
}

static void close_client(cl_etcd *e)
{
    closed = false;
    cl_etcd_close(e, on_closed, NULL);
    wait_for(&closed);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
}

Test(etcd_client, kv_txn_and_failover)
{
    cl_etcd *e = client();
    result r;
    CALL(&r, cl_etcd_put(e, "/t/a", "one", 3, 0, on_result, &r));
    cr_assert_eq(r.err, 0);
    cr_assert_gt(r.revision, 0);
    cr_assert_str_eq(cl_etcd_current(e), url, "the live endpoint is now the first choice");
    cl_etcd_stats st;
    cl_etcd_get_stats(e, &st);
    cr_assert_eq(st.failovers, 1);
    CALL(&r, cl_etcd_put(e, "/t/b", "two", 3, 0, on_result, &r));
    CALL(&r, cl_etcd_put(e, "/u", "other", 5, 0, on_result, &r));
    CALL(&r, cl_etcd_range(e, "/t/", true, on_result, &r));
    cr_assert_eq(r.err, 0);
    cr_assert_eq(r.n_kvs, 2, "the prefix holds /t/a and /t/b only");
    cr_assert_str_eq(r.key, "/t/a");
    cr_assert_str_eq(r.value, "one");
    int64_t mod = r.mod_revision;
    /* a compare on a stale revision fails and reads the key back */
    cl_txn t = {.key = "/t/a", .target = CL_CMP_MOD, .revision = mod - 1, .failure_range = true};
    t.success[0] = (cl_txn_op){.key = "/t/a", .value = "uno", .value_len = 3};
    t.n_success = 1;
    CALL(&r, cl_etcd_txn(e, &t, on_result, &r));
    cr_assert_eq(r.err, 0);
    cr_assert(!r.succeeded);
    cr_assert_str_eq(r.value, "one");
    cr_assert_eq(r.mod_revision, mod);
    /* on the current one it writes */
    t.revision = mod;
    CALL(&r, cl_etcd_txn(e, &t, on_result, &r));
    cr_assert(r.succeeded);
    CALL(&r, cl_etcd_range(e, "/t/a", false, on_result, &r));
    cr_assert_str_eq(r.value, "uno");
    /* create-if-absent: create_revision == 0 holds for a new key only */
    cl_txn c = {.key = "/t/new", .target = CL_CMP_CREATE, .revision = 0};
    c.success[0] = (cl_txn_op){.key = "/t/new", .value = "x", .value_len = 1};
    c.n_success = 1;
    CALL(&r, cl_etcd_txn(e, &c, on_result, &r));
    cr_assert(r.succeeded);
    CALL(&r, cl_etcd_txn(e, &c, on_result, &r));
    cr_assert(!r.succeeded, "a second create of the same key");
    CALL(&r, cl_etcd_delete(e, "/t/", true, on_result, &r));
    cr_assert_eq(r.err, 0);
    CALL(&r, cl_etcd_range(e, "/t/", true, on_result, &r));
    cr_assert_eq(r.n_kvs, 0);
    CALL(&r, cl_etcd_range(e, "/u", false, on_result, &r));
    cr_assert_eq(r.n_kvs, 1, "the delete kept to its prefix");
    close_client(e);
}

Test(etcd_client, leases)
{
    cl_etcd *e = client();
    result r;
    CALL(&r, cl_etcd_lease_grant(e, 30, on_result, &r));
    cr_assert_eq(r.err, 0);
    cr_assert_neq(r.id, 0);
    cr_assert_eq(r.ttl, 30);
    int64_t id = r.id;
    CALL(&r, cl_etcd_put(e, "/l/k", "v", 1, id, on_result, &r));
    CALL(&r, cl_etcd_range(e, "/l/k", false, on_result, &r));
    cr_assert_eq(r.lease, id);
    CALL(&r, cl_etcd_lease_keepalive(e, id, on_result, &r));
    cr_assert_eq(r.err, 0);
    cr_assert_eq(r.ttl, 30);
    CALL(&r, cl_etcd_lease_revoke(e, id, on_result, &r));
    cr_assert_eq(r.err, 0);
    CALL(&r, cl_etcd_range(e, "/l/k", false, on_result, &r));
    cr_assert_eq(r.n_kvs, 0, "the key went with its lease");
    /* a lease that is gone: TTL 0 on keepalive, a refusal (NOT_FOUND) on a put */
    CALL(&r, cl_etcd_lease_keepalive(e, id, on_result, &r));
    cr_assert_eq(r.err, 0);
    cr_assert_eq(r.ttl, 0);
    CALL(&r, cl_etcd_put(e, "/l/k", "v", 1, id, on_result, &r));
    cr_assert_eq(r.err, CL_ETCD_E_REFUSED);
    cr_assert(r.is_error);
    cr_assert_eq(r.code, CL_GRPC_NOT_FOUND);
    close_client(e);
}

Test(etcd_client, watch_and_close_in_flight)
{
    cl_etcd *e = client();
    result r;
    /* fail over first, so that the watch starts on the live endpoint */
    CALL(&r, cl_etcd_range(e, "/w/", true, on_result, &r));
    watch_log w = {0};
    cl_etcd_watch_cbs cbs = {.on_msg = on_watch_msg, .on_end = on_watch_end, .arg = &w};
    cl_etcd_watch *h = NULL;
    cr_assert_eq(cl_etcd_watch_start(e, "/w/", true, r.revision + 1, &cbs, &h), 0);
    for (int i = 0; i < 2000 && !w.created; i++)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert_eq(w.created, 1);
    CALL(&r, cl_etcd_put(e, "/w/x", "first", 5, 0, on_result, &r));
    CALL(&r, cl_etcd_put(e, "/w/x", "second", 6, 0, on_result, &r));
    CALL(&r, cl_etcd_put(e, "/elsewhere", "z", 1, 0, on_result, &r));
    CALL(&r, cl_etcd_delete(e, "/w/x", false, on_result, &r));
    for (int i = 0; i < 2000 && w.deletes < 1; i++)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert_eq(w.puts, 2, "the two puts of the prefix, not the other key's");
    cr_assert_str_eq(w.last_put_value, "second");
    cr_assert_eq(w.deletes, 1);
    /* a cancel ends it */
    cl_etcd_watch_cancel(h);
    wait_for(&w.ended);
    cr_assert_eq(w.end_err, CL_ETCD_E_CANCELED);
    /* a close with a watch and a call in flight: both end, canceled */
    watch_log w2 = {0};
    cbs.arg = &w2;
    cr_assert_eq(cl_etcd_watch_start(e, "/w/", true, 0, &cbs, NULL), 0);
    r.done = false;
    cr_assert_eq(cl_etcd_range(e, "/w/", true, on_result, &r), 0);
    closed = false;
    cl_etcd_close(e, on_closed, NULL);
    wait_for(&closed);
    cr_assert(r.done);
    cr_assert_eq(r.err, CL_ETCD_E_CANCELED);
    cr_assert(w2.ended);
    cr_assert_eq(w2.end_err, CL_ETCD_E_CANCELED);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
}

Test(etcd_client, no_endpoint_answers)
{
    char why[128];
    cl_etcd_config c = {.endpoints = dead_url, .timeout_ms = 1000};
    cl_etcd *e = NULL;
    cr_assert_eq(cl_etcd_create(&loop, &c, &e, why, sizeof why), 0, "%s", why);
    result r;
    CALL(&r, cl_etcd_range(e, "/x", false, on_result, &r));
    cr_assert_eq(r.err, CL_ETCD_E_UNAVAILABLE);
    close_client(e);
}

/* ---- TLS: a member that asks for client certificates ------------------ */

/* ---- cluster/election.c on a real etcd ------------------------------- */

#define CANDIDATES 3
static const char *const cand_ids[CANDIDATES] = {"aaaa1", "bbbb2", "cccc3"};
static int leader_reports;

static void on_leader_change(void *arg, bool leading, const char *leader)
{
    (void)arg;
    (void)leading;
    (void)leader;
    leader_reports++;
}

/* Runs the loop until every candidate names the same leader and exactly one
 * leads (or none when want_none); the index of the leader, -1 for none. */
static int agreed_leader(cl_election **el, const bool *alive, bool want_none)
{
    for (int i = 0; i < 20000; i++) {
        int leading = -1, n_leading = 0;
        bool agree = true;
        const char *first = NULL;
        for (int c = 0; c < CANDIDATES; c++) {
            if (!alive[c])
                continue;
            if (cl_election_leading(el[c])) {
                leading = c;
                n_leading++;
            }
            if (!first)
                first = cl_election_leader(el[c]);
            else if (strcmp(first, cl_election_leader(el[c])) != 0)
                agree = false;
        }
        if (agree && want_none && n_leading == 0 && first && !first[0])
            return -1;
        if (agree && !want_none && n_leading == 1 && strcmp(first, cand_ids[leading]) == 0)
            return leading;
        uv_run(&loop, UV_RUN_ONCE);
    }
    cr_assert_fail("the candidates did not agree on %s", want_none ? "nobody" : "one leader");
    return -2;
}

static uv_timer_t pause_timer;
static bool paused;
static void on_pause(uv_timer_t *t)
{
    (void)t;
    paused = true;
}
static void run_for(uint64_t ms)
{
    paused = false;
    uv_timer_start(&pause_timer, on_pause, ms, 0);
    wait_for(&paused);
}

Test(etcd_client, election)
{
    cl_etcd *e = client();
    uv_timer_init(&loop, &pause_timer);
    cl_election *el[CANDIDATES];
    int64_t lease[CANDIDATES];
    bool alive[CANDIDATES] = {true, true, true};
    result r;
    for (int c = 0; c < CANDIDATES; c++) {
        cl_election_config cfg = {.loop = &loop,
                                  .etcd = e,
                                  .key = "/el/leader",
                                  .id = cand_ids[c],
                                  .retry_ms = 200,
                                  .on_change = on_leader_change};
        cr_assert_eq(cl_election_start(&cfg, &el[c]), 0);
        CALL(&r, cl_etcd_lease_grant(e, 30, on_result, &r));
        cr_assert_eq(r.err, 0, "lease grant: %s", cl_etcd_strerror(r.err));
        lease[c] = r.id;
    }
    /* no lease yet: they watch, nobody campaigns */
    run_for(300);
    cr_assert_eq(agreed_leader(el, alive, true), -1);
    for (int c = 0; c < CANDIDATES; c++)
        cl_election_set_lease(el[c], lease[c]);
    int l = agreed_leader(el, alive, false);
    CALL(&r, cl_etcd_range(e, "/el/leader", false, on_result, &r));
    cr_assert_str_eq(r.value, cand_ids[l]);
    cr_assert_eq(r.lease, lease[l], "the key lives under the leader's lease");
    cl_election_stats st;
    cl_election_get_stats(el[l], &st);
    cr_assert_eq(st.won, 1);

    /* the leader's lease ends: another leads, the key under its lease */
    int64_t vacant_before = cl_election_vacant_revision(el[0]);
    CALL(&r, cl_etcd_lease_revoke(e, lease[l], on_result, &r));
    int64_t revoked_at = r.revision; /* the key went in the revoke's revision */
    cr_assert_gt(revoked_at, vacant_before);
    alive[l] = false;
    int l2 = agreed_leader(el, alive, false);
    cr_assert_neq(l2, l);
    for (int c = 0; c < CANDIDATES; c++)
        if (alive[c])
            cr_assert_eq(cl_election_vacant_revision(el[c]), revoked_at,
                         "candidate %d saw the key go at %lld, not the revoke's %lld", c,
                         (long long)cl_election_vacant_revision(el[c]), (long long)revoked_at);
    CALL(&r, cl_etcd_range(e, "/el/leader", false, on_result, &r));
    cr_assert_str_eq(r.value, cand_ids[l2]);
    cr_assert_eq(r.lease, lease[l2]);
    cr_assert(!cl_election_leading(el[l]), "a candidate whose lease went does not lead");

    /* the member takes its lease back (a TTL without renewal): no longer
     * leading at once, and leading again when it is handed back (the key
     * is still under it) */
    cl_election_set_lease(el[l2], 0);
    cr_assert(!cl_election_leading(el[l2]));
    cl_election_set_lease(el[l2], lease[l2]);
    cr_assert(cl_election_leading(el[l2]));

    /* a value that is no instance ID (written behind the agents' backs):
     * nobody leads, and the candidates retry at retry_ms, not in a loop */
    CALL(&r, cl_etcd_lease_revoke(e, lease[l2], on_result, &r));
    alive[l2] = false;
    int third = 3 - l - l2;
    agreed_leader(el, alive, false);
    CALL(&r, cl_etcd_lease_revoke(e, lease[third], on_result, &r));
    CALL(&r, cl_etcd_lease_grant(e, 30, on_result, &r));
    lease[third] = r.id;
    agreed_leader(el, alive, true);
    CALL(&r, cl_etcd_put(e, "/el/leader", "Not An ID!", 10, 0, on_result, &r));
    cl_election_set_lease(el[third], lease[third]);
    cl_election_get_stats(el[third], &st);
    unsigned long before = st.campaigns;
    run_for(1000);
    cl_election_get_stats(el[third], &st);
    cr_assert_leq(st.campaigns - before, 8, "%lu campaigns in 1 s", st.campaigns - before);
    cr_assert(!cl_election_leading(el[third]));
    CALL(&r, cl_etcd_delete(e, "/el/leader", false, on_result, &r));
    cr_assert_eq(agreed_leader(el, alive, false), third);
    cr_assert_gt(leader_reports, 0);

    for (int c = 0; c < CANDIDATES; c++)
        cl_election_stop(el[c]);
    closed = false;
    cl_etcd_close(e, on_closed, NULL);
    wait_for(&closed);
    for (int c = 0; c < CANDIDATES; c++)
        cl_election_free(el[c], NULL, NULL);
    uv_close((uv_handle_t *)&pause_timer, NULL);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* A CA, a server certificate for 127.0.0.1 and a client certificate, in dir/tls. */
static void make_certs(void)
{
    sh("set -e; cd %s && mkdir tls && cd tls && "
       "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
       "-keyout ca.key -out ca.pem -days 1 -subj /CN=itest-etcd-ca 2>/dev/null && "
       "printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' >srv.ext "
       "&& "
       "printf 'extendedKeyUsage=clientAuth\\n' >cli.ext && "
       "for n in srv cli; do "
       "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout $n.key "
       "-out $n.csr -subj /CN=$n 2>/dev/null && "
       "openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $n.pem "
       "-days 1 -extfile $n.ext 2>/dev/null; done",
       dir);
}

Test(etcd_client, tls_with_client_certificates)
{
    make_certs();
    char tls_url[64], peer[64], initial[96], data[128], log[128], crt[128], key[128], ca[128];
    snprintf(tls_url, sizeof tls_url, "https://127.0.0.1:%d", free_port());
    snprintf(peer, sizeof peer, "http://127.0.0.1:%d", free_port());
    snprintf(initial, sizeof initial, "t=%s", peer);
    snprintf(data, sizeof data, "%s/tls-data", dir);
    snprintf(log, sizeof log, "%s/etcd-tls.log", dir);
    snprintf(crt, sizeof crt, "%s/tls/srv.pem", dir);
    snprintf(key, sizeof key, "%s/tls/srv.key", dir);
    snprintf(ca, sizeof ca, "%s/tls/ca.pem", dir);
    tls_pid = fork();
    cr_assert_geq(tls_pid, 0);
    if (tls_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (!freopen(log, "w", stdout) || !freopen(log, "a", stderr))
            _exit(126);
        execlp("etcd", "etcd", "--name", "t", "--data-dir", data, "--listen-client-urls", tls_url,
               "--advertise-client-urls", tls_url, "--listen-peer-urls", peer,
               "--initial-advertise-peer-urls", peer, "--initial-cluster", initial, "--cert-file",
               crt, "--key-file", key, "--trusted-ca-file", ca, "--client-cert-auth", (char *)NULL);
        _exit(127);
    }
    char ccrt[128], ckey[128];
    snprintf(ccrt, sizeof ccrt, "%s/tls/cli.pem", dir);
    snprintf(ckey, sizeof ckey, "%s/tls/cli.key", dir);
    char cmd[768];
    snprintf(cmd, sizeof cmd,
             "ETCDCTL_API=3 etcdctl --endpoints=%s --cacert=%s --cert=%s --key=%s endpoint "
             "health >/dev/null 2>&1",
             tls_url, ca, ccrt, ckey);
    for (int i = 0; i < 100 && system(cmd) != 0; i++)
        usleep(100000);
    cr_assert_eq(system(cmd), 0, "the TLS etcd did not become healthy (see %s)", log);

    /* with the CA and the client certificate: served */
    char why[128];
    cl_etcd_config c = {.endpoints = tls_url, .ca_file = ca, .cert = ccrt, .key = ckey};
    cl_etcd *e = NULL;
    cr_assert_eq(cl_etcd_create(&loop, &c, &e, why, sizeof why), 0, "%s", why);
    result r;
    CALL(&r, cl_etcd_put(e, "/tls/k", "v", 1, 0, on_result, &r));
    cr_assert_eq(r.err, 0);
    CALL(&r, cl_etcd_range(e, "/tls/k", false, on_result, &r));
    cr_assert_str_eq(r.value, "v");
    close_client(e);
    /* without the client certificate: refused by the member */
    c.cert = c.key = NULL;
    cr_assert_eq(cl_etcd_create(&loop, &c, &e, why, sizeof why), 0, "%s", why);
    CALL(&r, cl_etcd_range(e, "/tls/k", false, on_result, &r));
    cr_assert_neq(r.err, 0, "served without a client certificate");
    close_client(e);
    /* without the CA: the member's certificate is not trusted */
    c = (cl_etcd_config){.endpoints = tls_url, .cert = ccrt, .key = ckey};
    cr_assert_eq(cl_etcd_create(&loop, &c, &e, why, sizeof why), 0, "%s", why);
    CALL(&r, cl_etcd_range(e, "/tls/k", false, on_result, &r));
    cr_assert_eq(r.err, CL_ETCD_E_UNAVAILABLE, "trusted a certificate no CA of ours signed");
    close_client(e);
}

/* ---- cluster/mirror.c: deletions while its watch is down ------------------ */

/* A TCP relay to etcd (python3, its own process): killed, every connection
 * through it is cut at once while etcd stays up for the other client. */
static pid_t relay_pid;
static void relay_start(int port)
{
    static const char script[] =
        "import asyncio,sys\n"
        "async def pipe(r,w):\n"
        "  try:\n"
        "    while (d:=await r.read(65536)): w.write(d); await w.drain()\n"
        "  finally: w.close()\n"
        "async def conn(r,w):\n"
        "  er,ew=await asyncio.open_connection('127.0.0.1',int(sys.argv[2]))\n"
        "  await asyncio.gather(pipe(r,ew),pipe(er,w),return_exceptions=True)\n"
        "async def main():\n"
        "  s=await asyncio.start_server(conn,'127.0.0.1',int(sys.argv[1]),reuse_address=True)\n"
        "  await s.serve_forever()\n"
        "asyncio.run(main())\n";
    char p[16], target[16];
    snprintf(p, sizeof p, "%d", port);
    snprintf(target, sizeof target, "%s", strrchr(url, ':') + 1);
    relay_pid = fork();
    cr_assert_geq(relay_pid, 0);
    if (relay_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execlp("python3", "python3", "-c", script, p, target, (char *)NULL);
        _exit(127);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import socket;socket.create_connection((\"127.0.0.1\",%d))' 2>/dev/null",
             port);
    for (int i = 0; i < 100 && system(cmd) != 0; i++)
        usleep(50000);
    cr_assert_eq(system(cmd), 0, "the relay did not start");
}

static void relay_kill(void)
{
    kill(relay_pid, SIGKILL);
    waitpid(relay_pid, NULL, 0);
    relay_pid = 0;
}

typedef struct mirror_log {
    char keys[8][32]; /* held: put and not deleted */
    int syncs, deletes;
} mirror_log;

static int held(const mirror_log *l, const char *key)
{
    for (int i = 0; i < 8; i++)
        if (strcmp(l->keys[i], key) == 0)
            return i;
    return -1;
}

static void m_put(void *arg, const cl_kv *kv)
{
    mirror_log *l = arg;
    if (held(l, kv->key) < 0)
        for (int i = 0; i < 8; i++)
            if (!l->keys[i][0]) {
                snprintf(l->keys[i], sizeof l->keys[i], "%s", kv->key);
                break;
            }
}

static void m_delete(void *arg, const char *key)
{
    mirror_log *l = arg;
    int i = held(l, key);
    cr_assert_geq(i, 0, "a deletion of %s, never put", key);
    l->keys[i][0] = '\0';
    l->deletes++;
}

static void m_synced(void *arg, size_t n, int64_t revision)
{
    (void)n;
    (void)revision;
    ((mirror_log *)arg)->syncs++;
}

static void run_until(bool (*cond)(const mirror_log *, const char *), const mirror_log *l,
                      const char *key)
{
    for (int i = 0; i < 300 && !cond(l, key); i++)
        run_for(50);
}
static bool is_held(const mirror_log *l, const char *key)
{
    return held(l, key) >= 0;
}
static bool is_gone(const mirror_log *l, const char *key)
{
    return held(l, key) < 0;
}

Test(etcd_client, mirror_replays_deletions_missed_while_its_watch_was_down)
{
    uv_timer_init(&loop, &pause_timer);
    cl_etcd *e = client(); /* straight to etcd */
    int rport = free_port();
    char rurl[64], why[128];
    snprintf(rurl, sizeof rurl, "http://127.0.0.1:%d", rport);
    relay_start(rport);
    cl_etcd_config c = {.endpoints = rurl, .timeout_ms = 2000};
    cl_etcd *me = NULL; /* the mirror's: through the relay */
    cr_assert_eq(cl_etcd_create(&loop, &c, &me, why, sizeof why), 0, "%s", why);
    result r;
    CALL(&r, cl_etcd_put(e, "/m/a", "1", 1, 0, on_result, &r));
    CALL(&r, cl_etcd_put(e, "/m/b", "1", 1, 0, on_result, &r));
    CALL(&r, cl_etcd_put(e, "/m/c", "1", 1, 0, on_result, &r));
    mirror_log l = {0};
    cl_mirror_cbs cbs = {.on_put = m_put, .on_delete = m_delete, .on_synced = m_synced, .arg = &l};
    cl_mirror *m = NULL;
    cr_assert_eq(cl_mirror_start(&loop, me, "/m/", 200, &cbs, &m), 0);
    run_until(is_held, &l, "/m/c");
    cr_assert_eq(l.syncs, 1);
    run_for(300); /* the watch created */

    /* 1: the stream cut, a key deleted and one put meanwhile; back: the
     * watch resumes after the last revision and delivers both */
    relay_kill();
    run_for(500);
    CALL(&r, cl_etcd_delete(e, "/m/a", false, on_result, &r));
    CALL(&r, cl_etcd_put(e, "/m/d", "1", 1, 0, on_result, &r));
    run_for(300);
    cr_assert(is_held(&l, "/m/a"), "nothing can arrive while the relay is down");
    relay_start(rport);
    run_until(is_held, &l, "/m/d");
    run_until(is_gone, &l, "/m/a");
    cr_assert(is_gone(&l, "/m/a"), "the deletion made while the watch was down arrived");
    cr_assert(is_held(&l, "/m/d"));
    cl_mirror_stats st;
    cl_mirror_get_stats(m, &st);
    cr_assert_eq(l.syncs, 1, "resumed, not read whole");
    cr_assert_geq(st.resumes, 1);
    cr_assert_eq(st.swept, 0);

    /* 2: cut again, a key deleted, etcd compacted past it: the watch
     * cannot resume; the whole read finds the key gone and says so */
    relay_kill();
    run_for(500);
    CALL(&r, cl_etcd_delete(e, "/m/b", false, on_result, &r));
    CALL(&r, cl_etcd_put(e, "/elsewhere", "z", 1, 0, on_result, &r));
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ETCDCTL_API=3 etcdctl --endpoints=%s compact %lld >/dev/null", url,
             (long long)r.revision);
    cr_assert_eq(system(cmd), 0);
    relay_start(rport);
    run_until(is_gone, &l, "/m/b");
    cr_assert(is_gone(&l, "/m/b"), "the deletion compacted away was found by the read");
    cr_assert(is_held(&l, "/m/c"));
    cr_assert(is_held(&l, "/m/d"));
    cl_mirror_get_stats(m, &st);
    cr_assert_geq(st.compacted, 1);
    cr_assert_eq(st.swept, 1);
    cr_assert_eq(l.syncs, 2);
    cr_assert_eq(l.deletes, 2);

    cl_mirror_stop(m);
    relay_kill();
    closed = false;
    cl_etcd_close(me, on_closed, NULL);
    wait_for(&closed);
    cl_mirror_free(m, NULL, NULL);
    uv_close((uv_handle_t *)&pause_timer, NULL);
    close_client(e);
}

/* ---- cluster/member.c: a leader cut off steps down before its lease ends -- */

typedef struct stepdown_log {
    cl_member *m;
    bool was_leading;
    uint64_t stepped_ms, deleted_ms;
    char registered[256];
} stepdown_log;

static uint64_t mono_ms(void)
{
    return uv_hrtime() / 1000000;
}

static void sd_change(void *arg, cl_member_change what)
{
    stepdown_log *l = arg;
    if (what != CL_MEMBER_CHANGE_LEADER)
        return;
    bool leading = cl_member_is_leader(l->m);
    if (l->was_leading && !leading && !l->stepped_ms)
        l->stepped_ms = mono_ms();
    l->was_leading = leading;
}

static void sd_event(void *arg, cl_member_event ev, const char *detail)
{
    stepdown_log *l = arg;
    if (ev == CL_MEMBER_EV_REGISTERED)
        snprintf(l->registered, sizeof l->registered, "%s", detail);
}

static void sd_watch_msg(void *arg, const cl_answer *a)
{
    stepdown_log *l = arg;
    for (size_t i = 0; i < a->n_events; i++)
        if (a->events[i].type == CL_EVENT_DELETE && !l->deleted_ms)
            l->deleted_ms = mono_ms();
}

static void sd_watch_end(void *arg, int err)
{
    stepdown_log *l = arg;
    cr_assert(err == CL_ETCD_E_CANCELED || l->deleted_ms, "the observer's watch ended: %d", err);
}

static bool member_done;
static void on_member_done(void *arg)
{
    (void)arg;
    member_done = true;
}

/* The split-brain rule against the real etcd: the member reaches etcd through
 * a relay that is then killed (its keepalives fail, etcd stays up); it must
 * stop counting itself leader before etcd deletes the election key with the
 * expired lease (no other agent could win before that DELETE), and not
 * before its last renewal could have been sent. The configured TTL 3 s asks
 * etcd for 2 s, which etcd grants. */
Test(etcd_client, member_steps_down_before_etcd_ends_its_lease)
{
    uv_timer_init(&loop, &pause_timer);
    char why[160], key[CL_KEY_MAX + 1], rurl[64];
    cl_etcd_config oc = {.endpoints = url, .timeout_ms = 3000};
    cl_etcd *e = NULL; /* straight to etcd: the observer */
    cr_assert_eq(cl_etcd_create(&loop, &oc, &e, why, sizeof why), 0, "%s", why);
    int rport = free_port();
    snprintf(rurl, sizeof rurl, "http://127.0.0.1:%d", rport);
    relay_start(rport);
    cr_assert_gt(cl_cluster_key("prod", CL_LEADER_LEAF, key, sizeof key), 0);
    stepdown_log l = {0};
    cl_instance self;
    memset(&self, 0, sizeof self);
    snprintf(self.id, sizeof self.id, "0123456789abcdef0123456789abcdef");
    snprintf(self.arn, sizeof self.arn,
             "arn:aws:ecs:us-east-1:123456789012:container-instance/prod/%s", self.id);
    snprintf(self.status, sizeof self.status, "ACTIVE");
    self.cpu = 1024;
    self.memory = 1024;
    cl_etcd_config ec = {.endpoints = rurl};
    cl_member_config mc = {.loop = &loop,
                           .etcd = &ec,
                           .cluster = "prod",
                           .lease_ttl = 3,
                           .self = &self,
                           .on_event = sd_event,
                           .event_arg = &l};
    cr_assert_eq(cl_member_start(&mc, &l.m, why, sizeof why), 0, "%s", why);
    cr_assert_eq(cl_member_subscribe(l.m, sd_change, &l), 0);
    for (int i = 0; i < 200 && !cl_member_is_leader(l.m); i++)
        run_for(50);
    cr_assert(cl_member_is_leader(l.m), "the lone member did not lead");
    cr_assert_not_null(strstr(l.registered, "TTL 2 s granted for the configured 3 s"), "%s",
                       l.registered);
    cl_etcd_watch *w = NULL;
    cl_etcd_watch_cbs cbs = {.on_msg = sd_watch_msg, .on_end = sd_watch_end, .arg = &l};
    cr_assert_eq(cl_etcd_watch_start(e, key, false, 0, &cbs, &w), 0);
    run_for(1500); /* two keepalives at least: renewals carry the lead on */
    cr_assert(cl_member_is_leader(l.m));
    cr_assert_eq(l.stepped_ms, 0, "stepped down while renewing");
    relay_kill();
    uint64_t killed = mono_ms();
    for (int i = 0; i < 200 && !l.deleted_ms; i++)
        run_for(50);
    cr_assert_neq(l.deleted_ms, 0, "etcd never ended the lease");
    cr_assert_neq(l.stepped_ms, 0, "the member never stepped down");
    cr_assert_not(cl_member_is_leader(l.m));
    cr_assert_lt(l.stepped_ms, l.deleted_ms,
                 "stepped down %llu ms after the cut, etcd deleted the key after %llu ms",
                 (unsigned long long)(l.stepped_ms - killed),
                 (unsigned long long)(l.deleted_ms - killed));
    /* the last renewal sent 0 to a keepalive's period before the cut: the
     * step-down lead_ms after it, not earlier (a loop's slack allowed) */
    uint64_t after = l.stepped_ms - killed;
    cr_assert_geq(after + cl_member_keepalive_ms(2) + 100, cl_member_lead_ms(2),
                  "stepped down %llu ms after the cut: too early", (unsigned long long)after);
    cr_assert_leq(after, cl_member_lead_ms(2) + 300, "stepped down %llu ms after the cut",
                  (unsigned long long)after);
    cl_member_stats st;
    cl_member_get_stats(l.m, &st);
    cr_assert_eq(st.step_downs, 1);
    cr_log_info("cut -> step-down %llu ms, cut -> etcd's DELETE %llu ms", (unsigned long long)after,
                (unsigned long long)(l.deleted_ms - killed));
    cl_etcd_watch_cancel(w);
    member_done = false;
    cl_member_close(l.m, on_member_done, NULL);
    for (int i = 0; i < 200 && !member_done; i++)
        run_for(50);
    cr_assert(member_done);
    uv_close((uv_handle_t *)&pause_timer, NULL);
    close_client(e);
}

#include "aws/credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws/arn.h"
#include "aws/sts.h"
#include "common/alloc.h"
#include "common/json.h"
#include "common/secure.h"

#define IMDS_DEFAULT "http://169.254.169.254"
#define CONTAINER_HOST "http://169.254.170.2"
#define IMDS_TOKEN_TTL "21600"
#define META_MAX (64u * 1024u) /* IMDS / container answers */
#define IMDS_TOKEN_MAX 1024
#define ROLE_NAME_MAX 256

typedef struct waiter {
    aw_creds_cb cb;
    void *arg;
    struct waiter *next;
} waiter;

typedef struct role_entry {
    char *role_arn;
    aw_credentials creds;
    bool have, fetching;
    waiter *waiters;
    struct role_entry *next;
} role_entry;

/* An answer from the cache, delivered from the loop. */
typedef struct deferred {
    aw_creds_cb cb;
    void *arg;
    aw_credentials creds;
    struct deferred *next;
} deferred;

typedef enum host_step {
    HS_IDLE,
    HS_CONTAINER,
    HS_IMDS_TOKEN,
    HS_IMDS_ROLE,
    HS_IMDS_CREDS,
} host_step;

typedef struct identity_op {
    aw_creds *p;
    int step; /* 0: token, 1: document */
    char token[IMDS_TOKEN_MAX + 1];
    aw_creds_identity_cb cb;
    void *arg;
} identity_op;

struct aw_creds {
    aw_client *client;
    uv_loop_t *loop;
    char *static_akid, *static_secret, *static_token;
    char **envp;
    long imds_timeout_ms;
    unsigned refresh_before_s, role_duration_s;
    char session_name[65];

    aw_credentials host;
    bool host_have, host_fetching;
    waiter *host_waiters;
    host_step step;
    char imds_token[IMDS_TOKEN_MAX + 1];
    char role_name[ROLE_NAME_MAX + 1];
    unsigned in_flight; /* async operations holding p: HTTP requests, AssumeRole ops */
    bool timer_closed;

    role_entry *roles;
    size_t n_roles;

    uv_timer_t defer;
    deferred *queue, *queue_tail;

    bool closing;
    void (*closed)(void *);
    void *closed_arg;
    aw_creds_stats stats;
};

static bool maybe_free(aw_creds *p);

/* ---- credentials values ---------------------------------------------- */

int aw_credentials_copy(const aw_credentials *src, aw_credentials *dst)
{
    aw_credentials c = {0};
    c.access_key_id = es_strdup(src->access_key_id);
    c.secret_access_key = es_strdup(src->secret_access_key);
    c.session_token = src->session_token ? es_strdup(src->session_token) : NULL;
    c.expiration = src->expiration;
    c.source = src->source;
    if (!c.access_key_id || !c.secret_access_key || (src->session_token && !c.session_token)) {
        aw_credentials_clear(&c);
        return -ENOMEM;
    }
    *dst = c;
    return 0;
}

void aw_credentials_clear(aw_credentials *c)
{
    if (!c)
        return;
    es_free(c->access_key_id);
    es_free_secret_str(c->secret_access_key);
    es_free_secret_str(c->session_token);
    memset(c, 0, sizeof *c);
}

aw_sigv4_creds aw_credentials_view(const aw_credentials *c)
{
    aw_sigv4_creds v = {c->access_key_id, c->secret_access_key, c->session_token};
    return v;
}

static int set_creds(aw_credentials *dst, const char *akid, const char *secret, const char *token,
                     time_t exp, const char *source)
{
    aw_credentials tmp = {(char *)akid, (char *)secret, (char *)(token && *token ? token : NULL),
                          exp, source};
    aw_credentials c;
    int rc = aw_credentials_copy(&tmp, &c);
    if (rc < 0)
        return rc;
    aw_credentials_clear(dst);
    *dst = c;
    return 0;
}

static void make_error(aw_error *e, aw_error_kind kind, const char *code, const char *msg)
{
    memset(e, 0, sizeof *e);
    e->kind = kind;
    snprintf(e->code, sizeof e->code, "%s", code);
    snprintf(e->message, sizeof e->message, "%s", msg);
}

/* ---- environment and files ------------------------------------------- */

static const char *env_get(const aw_creds *p, const char *key)
{
    if (!p->envp)
        return getenv(key);
    size_t kl = strlen(key);
    for (char **e = p->envp; *e; e++)
        if (strncmp(*e, key, kl) == 0 && (*e)[kl] == '=')
            return *e + kl + 1;
    return NULL;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

int aw_creds_parse_ini(const char *text, size_t len, const char *profile, int config_style,
                       aw_credentials *out)
{
    if (len > AW_CREDS_FILE_MAX)
        return -EMSGSIZE;
    char want[300];
    if (config_style && strcmp(profile, "default") != 0)
        snprintf(want, sizeof want, "profile %s", profile);
    else
        snprintf(want, sizeof want, "%s", profile);
    char *line = es_malloc(AW_CREDS_LINE_MAX + 1);
    if (!line)
        return -ENOMEM;
    char *akid = NULL, *secret = NULL, *token = NULL;
    bool in = false, found = false;
    int rc = 0;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && text[j] != '\n')
            j++;
        size_t l = j - i;
        if (l > AW_CREDS_LINE_MAX) {
            rc = -EMSGSIZE;
            goto out;
        }
        memcpy(line, text + i, l);
        line[l] = '\0';
        i = j + 1;
        if (memchr(line, '\0', l)) {
            continue; /* a NUL inside a line: not ours */
        }
        char *s = trim(line);
        if (!*s || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *e = strchr(s, ']');
            if (!e)
                continue;
            *e = '\0';
            char *name = trim(s + 1);
            /* collapse inner runs of blanks in "profile   x" */
            char norm[300];
            size_t k = 0;
            for (char *q = name; *q && k < sizeof norm - 1; q++)
                if (!(*q == ' ' && (k == 0 || norm[k - 1] == ' ')))
                    norm[k++] = *q == '\t' ? ' ' : *q;
            norm[k] = '\0';
            in = strcmp(norm, want) == 0;
            found |= in;
            continue;
        }
        if (!in)
            continue;
        char *eq = strchr(s, '=');
        if (!eq)
            continue;
        *eq = '\0';
        char *k = trim(s), *v = trim(eq + 1);
        char **slot = strcmp(k, "aws_access_key_id") == 0       ? &akid
                      : strcmp(k, "aws_secret_access_key") == 0 ? &secret
                      : strcmp(k, "aws_session_token") == 0     ? &token
                                                                : NULL;
        if (!slot)
            continue;
        es_free_secret_str(*slot);
        if (!(*slot = es_strdup(v))) {
            rc = -ENOMEM;
            goto out;
        }
    }
    if (!found || !akid || !secret || !*akid || !*secret) {
        rc = -ENOENT;
        goto out;
    }
    rc = set_creds(out, akid, secret, token, 0, "shared-file");
out:
    es_wipe(line, AW_CREDS_LINE_MAX + 1);
    es_free(line);
    es_free_secret_str(akid);
    es_free_secret_str(secret);
    es_free_secret_str(token);
    return rc;
}

/* Reads a small file (bounded); the caller wipes and frees. */
static int read_small(const char *path, size_t max, char **out, size_t *outlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    es_buf b;
    es_buf_init(&b, max);
    int rc = 0;
    for (;;) {
        char tmp[4096];
        ssize_t n = read(fd, tmp, sizeof tmp);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        if ((rc = es_buf_append(&b, tmp, (size_t)n)) < 0)
            break;
        es_wipe(tmp, (size_t)n);
    }
    close(fd);
    if (rc < 0) {
        es_buf_free_secret(&b);
        return rc;
    }
    *outlen = b.len;
    *out = es_buf_steal(&b);
    return *out ? 0 : -ENOMEM;
}

static int from_file(aw_creds *p, const char *path, const char *profile, int config_style)
{
    char *text = NULL;
    size_t len = 0;
    int rc = read_small(path, AW_CREDS_FILE_MAX, &text, &len);
    if (rc < 0)
        return rc;
    rc = aw_creds_parse_ini(text, len, profile, config_style, &p->host);
    es_wipe(text, len);
    es_free(text);
    return rc;
}

static int from_files(aw_creds *p)
{
    const char *profile = env_get(p, "AWS_PROFILE");
    if (!profile || !*profile)
        profile = "default";
    const char *home = env_get(p, "HOME");
    char path[4096];
    const char *f = env_get(p, "AWS_SHARED_CREDENTIALS_FILE");
    if ((!f || !*f) && home && *home) {
        snprintf(path, sizeof path, "%s/.aws/credentials", home);
        f = path;
    }
    if (f && *f && from_file(p, f, profile, 0) == 0)
        return 0;
    f = env_get(p, "AWS_CONFIG_FILE");
    if ((!f || !*f) && home && *home) {
        snprintf(path, sizeof path, "%s/.aws/config", home);
        f = path;
    }
    if (f && *f && from_file(p, f, profile, 1) == 0)
        return 0;
    return -ENOENT;
}

/* ---- deferred answers -------------------------------------------------- */

static void on_defer(uv_timer_t *t)
{
    aw_creds *p = t->data;
    deferred *q = p->queue;
    p->queue = p->queue_tail = NULL;
    while (q) {
        deferred *next = q->next;
        if (p->closing) {
            aw_error e;
            make_error(&e, AW_ERR_CANCELED, "Canceled", "credentials provider closed");
            q->cb(q->arg, &e, NULL);
        } else {
            q->cb(q->arg, NULL, &q->creds);
        }
        aw_credentials_clear(&q->creds);
        es_free(q);
        q = next;
    }
}

static int defer_answer(aw_creds *p, const aw_credentials *c, aw_creds_cb cb, void *arg)
{
    deferred *d = es_calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    if (aw_credentials_copy(c, &d->creds) < 0) {
        es_free(d);
        return -ENOMEM;
    }
    d->cb = cb;
    d->arg = arg;
    if (p->queue_tail)
        p->queue_tail->next = d;
    else
        p->queue = d;
    p->queue_tail = d;
    if (uv_timer_start(&p->defer, on_defer, 0, 0) != 0) {
        /* cannot happen on an initialised timer; keep the answer queued */
        return -EIO;
    }
    return 0;
}

static bool fresh(const aw_creds *p, const aw_credentials *c)
{
    return c->expiration == 0 || time(NULL) + (time_t)p->refresh_before_s < c->expiration;
}

/* ---- host chain -------------------------------------------------------- */

static void host_set_step(aw_creds *p, host_step to);

/* Not expired yet (a refresh that fails inside the refresh window keeps
 * serving these, as the SDKs do). */
static bool still_valid(const aw_credentials *c)
{
    return c->access_key_id && (c->expiration == 0 || time(NULL) < c->expiration);
}

static void host_finish(aw_creds *p, const aw_error *err)
{
    if (err && err->kind != AW_ERR_CANCELED && p->host_have && still_valid(&p->host))
        err = NULL;
    p->host_fetching = false;
    host_set_step(p, HS_IDLE);
    es_wipe(p->imds_token, sizeof p->imds_token);
    waiter *w = p->host_waiters;
    p->host_waiters = NULL;
    aw_error cancel;
    make_error(&cancel, AW_ERR_CANCELED, "Canceled", "credentials provider closed");
    while (w) {
        waiter *next = w->next;
        if (p->closing)
            w->cb(w->arg, &cancel, NULL);
        else
            w->cb(w->arg, err, err ? NULL : &p->host);
        es_free(w);
        w = next;
    }
}

static void on_meta(void *arg, int err, aw_http_response *resp);

static int meta_request(aw_creds *p, const char *method, const char *url, const aw_http_header *h,
                        size_t nh)
{
    aw_http_request q = {.method = method,
                         .url = url,
                         .headers = h,
                         .n_headers = nh,
                         .timeout_ms = p->imds_timeout_ms,
                         .connect_timeout_ms = p->imds_timeout_ms,
                         .max_body = META_MAX,
                         .no_proxy = true};
    int rc = aw_http_start(aw_client_http(p->client), &q, on_meta, p);
    if (rc == 0)
        p->in_flight++;
    return rc;
}

/* https anywhere; http only to loopback (127.0.0.0/8, ::1, localhost) or
 * the ECS / EKS link-local agents (169.254.170.2, 169.254.170.23,
 * fd00:ec2::23), as the SDKs allow. */
static bool loopback_or_ecs(const char *url)
{
    if (strncmp(url, "https://", 8) == 0)
        return true;
    if (strncmp(url, "http://", 7) != 0)
        return false;
    const char *h = url + 7;
    size_t n;
    if (*h == '[') {
        n = strcspn(h, "]");
        if (h[n] != ']')
            return false;
        n++;
    } else {
        n = strcspn(h, ":/?#");
    }
    char host[64];
    if (n == 0 || n >= sizeof host)
        return false;
    memcpy(host, h, n);
    host[n] = '\0';
    if (h[n] != '\0' && h[n] != ':' && h[n] != '/')
        return false;
    static const char *const named[] = {"localhost", "[::1]", "169.254.170.2", "169.254.170.23",
                                        "[fd00:ec2::23]"};
    for (size_t i = 0; i < sizeof named / sizeof *named; i++)
        if (strcmp(host, named[i]) == 0)
            return true;
    /* 127.a.b.c, all decimal */
    if (strncmp(host, "127.", 4) != 0)
        return false;
    int dots = 0;
    for (const char *q = host + 4; *q; q++) {
        if (*q == '.') {
            if (q[1] == '.' || q[1] == '\0')
                return false;
            dots++;
        } else if (*q < '0' || *q > '9') {
            return false;
        }
    }
    return dots == 2 && host[4] != '.';
}

static void host_fail(aw_creds *p, const char *code, const char *msg)
{
    aw_error e;
    make_error(&e, AW_ERR_INVALID, code, msg);
    host_finish(p, &e);
}

static void start_container(aw_creds *p)
{
    const char *rel = env_get(p, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = env_get(p, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
    char url[2048];
    if (rel && *rel)
        snprintf(url, sizeof url, "%s%s%s", CONTAINER_HOST, rel[0] == '/' ? "" : "/", rel);
    else if (full && loopback_or_ecs(full))
        snprintf(url, sizeof url, "%s", full);
    else {
        host_fail(p, "InvalidContainerCredentialsUri",
                  "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https or a loopback http URL");
        return;
    }
    char *token = NULL;
    size_t tlen = 0;
    const char *tfile = env_get(p, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *tok = env_get(p, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
    if (tfile && *tfile) {
        if (read_small(tfile, AW_CREDS_TOKEN_FILE_MAX, &token, &tlen) < 0) {
            host_fail(p, "ContainerTokenUnreadable",
                      "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
            return;
        }
        while (tlen && (token[tlen - 1] == '\n' || token[tlen - 1] == '\r'))
            token[--tlen] = '\0';
        tok = token;
    }
    aw_http_header h[1] = {{"Authorization", tok ? tok : ""}};
    int rc = meta_request(p, "GET", url, h, tok && *tok ? 1 : 0);
    if (token) {
        es_wipe(token, tlen);
        es_free(token);
    }
    if (rc < 0) {
        host_fail(p, "ContainerCredentialsUnavailable", aw_http_strerror(rc));
        return;
    }
    host_set_step(p, HS_CONTAINER);
}

static const char *imds_base(const aw_creds *p)
{
    const char *e = env_get(p, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
    return e && *e ? e : IMDS_DEFAULT;
}

static void imds_get(aw_creds *p, const char *path, host_step next)
{
    char url[2048];
    snprintf(url, sizeof url, "%s%s", imds_base(p), path);
    aw_http_header h[1] = {{"X-aws-ec2-metadata-token", p->imds_token}};
    int rc = meta_request(p, "GET", url, h, 1);
    if (rc < 0) {
        host_fail(p, "ImdsUnavailable", aw_http_strerror(rc));
        return;
    }
    host_set_step(p, next);
}

static void start_imds(aw_creds *p)
{
    const char *dis = env_get(p, "AWS_EC2_METADATA_DISABLED");
    if (dis && strcasecmp(dis, "true") == 0) {
        host_fail(p, "NoCredentialProviders",
                  "no credentials: none configured, none in the environment or shared files, "
                  "no container endpoint, and IMDS is disabled");
        return;
    }
    char url[2048];
    snprintf(url, sizeof url, "%s/latest/api/token", imds_base(p));
    aw_http_header h[1] = {{"X-aws-ec2-metadata-token-ttl-seconds", IMDS_TOKEN_TTL}};
    int rc = meta_request(p, "PUT", url, h, 1);
    if (rc < 0) {
        host_fail(p, "ImdsUnavailable", aw_http_strerror(rc));
        return;
    }
    host_set_step(p, HS_IMDS_TOKEN);
}

/* Parses the container / IMDS credentials document into p->host. */
static int parse_meta_creds(aw_creds *p, const aw_http_response *r, const char *source)
{
    es_json *j = NULL;
    if (es_json_parse(es_buf_cstr(&r->body), r->body.len, &es_json_default_limits, &j, NULL, 0) !=
        0)
        return -EPROTO;
    int rc = -EPROTO;
    const char *code = es_json_get_str(j, "Code");
    const char *ak = es_json_get_str(j, "AccessKeyId");
    const char *sk = es_json_get_str(j, "SecretAccessKey");
    const char *tk = es_json_get_str(j, "Token");
    const char *ex = es_json_get_str(j, "Expiration");
    time_t exp = 0;
    if ((code && strcmp(code, "Success") != 0) || !ak || !sk || !*ak || !*sk ||
        (ex && aw_parse_iso8601(ex, &exp) != 0))
        goto out;
    rc = set_creds(&p->host, ak, sk, tk, exp, source);
out:
    es_json_free_secret(j);
    return rc;
}

static void on_meta(void *arg, int err, aw_http_response *resp)
{
    aw_creds *p = arg;
    p->in_flight--;
    if (p->closing || err == AW_HTTP_E_CANCELED) {
        host_fail(p, "Canceled", "credentials provider closed");
        maybe_free(p);
        return;
    }
    bool ok = err == 0 && resp->status == 200;
    char why[160];
    if (err)
        snprintf(why, sizeof why, "%s", aw_http_strerror(err));
    else
        snprintf(why, sizeof why, "HTTP %ld", resp->status);
    switch (p->step) {
    case HS_CONTAINER:
        if (!ok || parse_meta_creds(p, resp, "container") < 0) {
            host_fail(p, "ContainerCredentialsUnavailable", ok ? "malformed answer" : why);
            return;
        }
        p->host_have = true;
        host_finish(p, NULL);
        return;
    case HS_IMDS_TOKEN:
        if (!ok || resp->body.len == 0 || resp->body.len > IMDS_TOKEN_MAX) {
            host_fail(p, "NoCredentialProviders",
                      "no credentials found (static, environment, shared files, container, "
                      "IMDS token request failed)");
            return;
        }
        memcpy(p->imds_token, resp->body.data, resp->body.len);
        p->imds_token[resp->body.len] = '\0';
        imds_get(p, "/latest/meta-data/iam/security-credentials/", HS_IMDS_ROLE);
        return;
    case HS_IMDS_ROLE: {
        size_t n = ok ? strcspn(es_buf_cstr(&resp->body), "\r\n") : 0;
        if (!ok || n == 0 || n > ROLE_NAME_MAX) {
            host_fail(p, "ImdsNoRole", ok ? "the instance has no IAM role" : why);
            return;
        }
        const char *b = es_buf_cstr(&resp->body);
        for (size_t i = 0; i < n; i++)
            if (b[i] == '/' || b[i] == '?' || b[i] == '#' || (unsigned char)b[i] <= ' ') {
                host_fail(p, "ImdsNoRole", "malformed role name");
                return;
            }
        memcpy(p->role_name, b, n);
        p->role_name[n] = '\0';
        char path[512];
        snprintf(path, sizeof path, "/latest/meta-data/iam/security-credentials/%s", p->role_name);
        imds_get(p, path, HS_IMDS_CREDS);
        return;
    }
    case HS_IMDS_CREDS:
        if (!ok || parse_meta_creds(p, resp, "imds") < 0) {
            host_fail(p, "ImdsCredentialsUnavailable", ok ? "malformed answer" : why);
            return;
        }
        p->host_have = true;
        host_finish(p, NULL);
        return;
    case HS_IDLE:
        return;
    }
}

/* The one place the host chain changes step. */
static void host_set_step(aw_creds *p, host_step to)
{
    p->step = to;
}

static void host_fetch(aw_creds *p)
{
    p->host_fetching = true;
    p->stats.host_fetches++;
    if (p->static_akid && p->static_secret) {
        if (set_creds(&p->host, p->static_akid, p->static_secret, p->static_token, 0, "static") <
            0) {
            host_fail(p, "NoMemory", "out of memory");
            return;
        }
        p->host_have = true;
        host_finish(p, NULL);
        return;
    }
    const char *ak = env_get(p, "AWS_ACCESS_KEY_ID"), *sk = env_get(p, "AWS_SECRET_ACCESS_KEY");
    if (ak && *ak && sk && *sk) {
        if (set_creds(&p->host, ak, sk, env_get(p, "AWS_SESSION_TOKEN"), 0, "environment") < 0) {
            host_fail(p, "NoMemory", "out of memory");
            return;
        }
        p->host_have = true;
        host_finish(p, NULL);
        return;
    }
    if (from_files(p) == 0) {
        p->host_have = true;
        host_finish(p, NULL);
        return;
    }
    const char *rel = env_get(p, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = env_get(p, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if ((rel && *rel) || (full && *full)) {
        start_container(p);
        return;
    }
    start_imds(p);
}

/* Adds a waiter for the host credentials; starts a fetch if none runs.
 * The fetch may finish synchronously, so callers only use this from the
 * loop (the public entry defers). */
static int host_wait(aw_creds *p, aw_creds_cb cb, void *arg)
{
    waiter *w = es_calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->cb = cb;
    w->arg = arg;
    w->next = p->host_waiters;
    p->host_waiters = w;
    if (p->host_fetching)
        p->stats.coalesced++;
    else
        host_fetch(p);
    return 0;
}

/* A public ask that needs a fetch: queued so that it starts from the loop. */
typedef struct ask {
    aw_creds *p;
    aw_creds_cb cb;
    void *arg;
    role_entry *role; /* NULL: host credentials */
} ask;

static void role_fetch(aw_creds *p, role_entry *e);

static void on_ask(void *arg, const aw_error *err, const aw_credentials *c)
{
    /* the deferred hop: c is a dummy; now do the real work */
    (void)c;
    ask *a = arg;
    aw_creds *p = a->p;
    if (err || p->closing) {
        aw_error e;
        make_error(&e, AW_ERR_CANCELED, "Canceled", "credentials provider closed");
        a->cb(a->arg, err ? err : &e, NULL);
        es_free(a);
        return;
    }
    if (a->role) {
        role_entry *e = a->role;
        waiter *w = es_calloc(1, sizeof *w);
        if (!w) {
            aw_error m;
            make_error(&m, AW_ERR_NOMEM, "NoMemory", "out of memory");
            a->cb(a->arg, &m, NULL);
            es_free(a);
            return;
        }
        w->cb = a->cb;
        w->arg = a->arg;
        w->next = e->waiters;
        e->waiters = w;
        if (e->fetching)
            p->stats.coalesced++;
        else if (e->have && fresh(p, &e->creds)) {
            /* fetched meanwhile by an earlier ask */
            e->waiters = w->next;
            p->stats.role_cache_hits++;
            a->cb(a->arg, NULL, &e->creds);
            es_free(w);
        } else
            role_fetch(p, e);
    } else if (p->host_have && fresh(p, &p->host)) {
        a->cb(a->arg, NULL, &p->host);
    } else if (host_wait(p, a->cb, a->arg) < 0) {
        aw_error m;
        make_error(&m, AW_ERR_NOMEM, "NoMemory", "out of memory");
        a->cb(a->arg, &m, NULL);
    }
    es_free(a);
}

static int queue_ask(aw_creds *p, role_entry *role, aw_creds_cb cb, void *arg)
{
    ask *a = es_calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    a->p = p;
    a->cb = cb;
    a->arg = arg;
    a->role = role;
    aw_credentials dummy = {"-", "-", NULL, 0, "-"};
    int rc = defer_answer(p, &dummy, on_ask, a);
    if (rc < 0)
        es_free(a);
    return rc;
}

int aw_creds_get(aw_creds *p, aw_creds_cb cb, void *arg)
{
    if (!p || !cb)
        return -EINVAL;
    if (p->closing)
        return -ECANCELED;
    if (p->host_have && fresh(p, &p->host))
        return defer_answer(p, &p->host, cb, arg);
    return queue_ask(p, NULL, cb, arg);
}

/* ---- AssumeRole cache -------------------------------------------------- */

static void role_answer(aw_creds *p, role_entry *e, const aw_error *err)
{
    if (err && err->kind != AW_ERR_CANCELED && e->have && still_valid(&e->creds))
        err = NULL;
    e->fetching = false;
    waiter *w = e->waiters;
    e->waiters = NULL;
    while (w) {
        waiter *next = w->next;
        w->cb(w->arg, err, err ? NULL : &e->creds);
        es_free(w);
        w = next;
    }
    (void)p;
}

typedef struct role_op {
    aw_creds *p;
    role_entry *e;
} role_op;

static void role_op_done(role_op *op)
{
    aw_creds *p = op->p;
    es_free(op);
    p->in_flight--;
    maybe_free(p);
}

static void on_role_sts(void *arg, const aw_error *err, aw_sts_credentials *c)
{
    role_op *op = arg;
    aw_creds *p = op->p;
    role_entry *e = op->e;
    if (err) {
        role_answer(p, e, err);
        role_op_done(op);
        return;
    }
    aw_credentials_clear(&e->creds);
    e->creds.access_key_id = c->access_key_id;
    e->creds.secret_access_key = c->secret_access_key;
    e->creds.session_token = c->session_token;
    e->creds.expiration = c->expiration;
    e->creds.source = "assume-role";
    c->access_key_id = c->secret_access_key = c->session_token = NULL;
    e->have = true;
    role_answer(p, e, NULL);
    role_op_done(op);
}

static void on_role_host(void *arg, const aw_error *err, const aw_credentials *host)
{
    role_op *op = arg;
    aw_creds *p = op->p;
    role_entry *e = op->e;
    if (err || p->closing) {
        aw_error cancel;
        make_error(&cancel, AW_ERR_CANCELED, "Canceled", "credentials provider closed");
        role_answer(p, e, err ? err : &cancel);
        role_op_done(op);
        return;
    }
    aw_sigv4_creds v = aw_credentials_view(host);
    int rc = aw_sts_assume_role(p->client, &v, NULL, e->role_arn, p->session_name,
                                p->role_duration_s, on_role_sts, op);
    if (rc < 0) {
        aw_error m;
        make_error(&m, rc == -ENOMEM ? AW_ERR_NOMEM : AW_ERR_INVALID, "AssumeRoleNotStarted",
                   rc == -ENOMEM ? "out of memory" : "invalid AssumeRole request");
        role_answer(p, e, &m);
        role_op_done(op);
    }
}

static void role_fetch(aw_creds *p, role_entry *e)
{
    role_op *op = es_calloc(1, sizeof *op);
    aw_error m;
    if (!op) {
        make_error(&m, AW_ERR_NOMEM, "NoMemory", "out of memory");
        role_answer(p, e, &m);
        return;
    }
    op->p = p;
    op->e = e;
    p->in_flight++;
    e->fetching = true;
    p->stats.role_fetches++;
    if (p->host_have && fresh(p, &p->host)) {
        on_role_host(op, NULL, &p->host);
        return;
    }
    if (host_wait(p, on_role_host, op) < 0) {
        make_error(&m, AW_ERR_NOMEM, "NoMemory", "out of memory");
        role_answer(p, e, &m);
        role_op_done(op);
    }
}

static role_entry *role_find(aw_creds *p, const char *arn)
{
    for (role_entry *e = p->roles; e; e = e->next)
        if (strcmp(e->role_arn, arn) == 0)
            return e;
    return NULL;
}

/* Drops cached roles that expired and that nobody waits for. */
static void role_evict(aw_creds *p)
{
    for (role_entry **pp = &p->roles; *pp;) {
        role_entry *e = *pp;
        if (!e->fetching && !e->waiters && (!e->have || !fresh(p, &e->creds))) {
            *pp = e->next;
            aw_credentials_clear(&e->creds);
            es_free(e->role_arn);
            es_free(e);
            p->n_roles--;
        } else {
            pp = &e->next;
        }
    }
}

int aw_creds_assume_role(aw_creds *p, const char *role_arn, aw_creds_cb cb, void *arg)
{
    aw_arn a;
    if (!p || !cb || !role_arn || aw_arn_parse_str(role_arn, &a) != 0 || a.kind != AW_ARN_IAM_ROLE)
        return -EINVAL;
    if (p->closing)
        return -ECANCELED;
    role_entry *e = role_find(p, role_arn);
    if (e && e->have && fresh(p, &e->creds)) {
        p->stats.role_cache_hits++;
        return defer_answer(p, &e->creds, cb, arg);
    }
    if (!e) {
        if (p->n_roles >= AW_CREDS_ROLES_MAX)
            role_evict(p);
        if (p->n_roles >= AW_CREDS_ROLES_MAX)
            return -ENOSPC;
        e = es_calloc(1, sizeof *e);
        if (!e || !(e->role_arn = es_strdup(role_arn))) {
            es_free(e);
            return -ENOMEM;
        }
        e->next = p->roles;
        p->roles = e;
        p->n_roles++;
    }
    return queue_ask(p, e, cb, arg);
}

/* ---- IMDS identity document -------------------------------------------- */

static void on_identity(void *arg, int err, aw_http_response *resp)
{
    identity_op *op = arg;
    aw_creds *p = op->p;
    p->in_flight--;
    aw_error e;
    char why[160];
    if (err)
        snprintf(why, sizeof why, "%s", aw_http_strerror(err));
    else
        snprintf(why, sizeof why, "HTTP %ld", resp->status);
    if (p->closing || err == AW_HTTP_E_CANCELED) {
        make_error(&e, AW_ERR_CANCELED, "Canceled", "credentials provider closed");
        goto fail;
    }
    if (err || resp->status != 200) {
        make_error(&e, AW_ERR_TRANSPORT, "ImdsUnavailable", why);
        e.http_err = err;
        goto fail;
    }
    if (op->step == 0) {
        if (resp->body.len == 0 || resp->body.len > IMDS_TOKEN_MAX) {
            make_error(&e, AW_ERR_RESPONSE, "ImdsUnavailable", "bad token");
            goto fail;
        }
        memcpy(op->token, resp->body.data, resp->body.len);
        op->token[resp->body.len] = '\0';
        op->step = 1;
        char url[2048];
        snprintf(url, sizeof url, "%s/latest/dynamic/instance-identity/document", imds_base(p));
        aw_http_header h[1] = {{"X-aws-ec2-metadata-token", op->token}};
        aw_http_request q = {.method = "GET",
                             .url = url,
                             .headers = h,
                             .n_headers = 1,
                             .timeout_ms = p->imds_timeout_ms,
                             .connect_timeout_ms = p->imds_timeout_ms,
                             .max_body = META_MAX,
                             .no_proxy = true};
        int rc = aw_http_start(aw_client_http(p->client), &q, on_identity, op);
        if (rc < 0) {
            make_error(&e, AW_ERR_TRANSPORT, "ImdsUnavailable", aw_http_strerror(rc));
            goto fail;
        }
        p->in_flight++;
        return;
    }
    es_json *j = NULL;
    if (es_json_parse(es_buf_cstr(&resp->body), resp->body.len, &es_json_default_limits, &j, NULL,
                      0) != 0 ||
        !es_json_get_str(j, "region") || !es_json_get_str(j, "accountId")) {
        es_json_free(j);
        make_error(&e, AW_ERR_RESPONSE, "ImdsUnavailable", "malformed identity document");
        goto fail;
    }
    op->cb(op->arg, NULL, es_json_get_str(j, "region"), es_json_get_str(j, "accountId"));
    es_json_free(j);
    es_wipe(op->token, sizeof op->token);
    es_free(op);
    return;
fail:
    op->cb(op->arg, &e, NULL, NULL);
    es_wipe(op->token, sizeof op->token);
    es_free(op);
    maybe_free(p);
}

int aw_creds_imds_identity(aw_creds *p, aw_creds_identity_cb cb, void *arg)
{
    if (!p || !cb)
        return -EINVAL;
    if (p->closing)
        return -ECANCELED;
    const char *dis = env_get(p, "AWS_EC2_METADATA_DISABLED");
    if (dis && strcasecmp(dis, "true") == 0)
        return -EPERM;
    identity_op *op = es_calloc(1, sizeof *op);
    if (!op)
        return -ENOMEM;
    op->p = p;
    op->cb = cb;
    op->arg = arg;
    char url[2048];
    snprintf(url, sizeof url, "%s/latest/api/token", imds_base(p));
    aw_http_header h[1] = {{"X-aws-ec2-metadata-token-ttl-seconds", IMDS_TOKEN_TTL}};
    aw_http_request q = {.method = "PUT",
                         .url = url,
                         .headers = h,
                         .n_headers = 1,
                         .timeout_ms = p->imds_timeout_ms,
                         .connect_timeout_ms = p->imds_timeout_ms,
                         .max_body = META_MAX,
                         .no_proxy = true};
    int rc = aw_http_start(aw_client_http(p->client), &q, on_identity, op);
    if (rc < 0) {
        es_free(op);
        return rc == AW_HTTP_E_NOMEM ? -ENOMEM : -EIO;
    }
    p->in_flight++;
    return 0;
}

/* ---- lifetime ---------------------------------------------------------- */

int aw_creds_create(aw_client *client, const aw_creds_config *cfg, aw_creds **out)
{
    if (!client || !cfg || !out)
        return -EINVAL;
    if ((cfg->access_key_id && *cfg->access_key_id) !=
        (cfg->secret_access_key && *cfg->secret_access_key))
        return -EINVAL; /* one static key without the other */
    aw_creds *p = es_calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->client = client;
    p->loop = aw_client_loop(client);
    p->imds_timeout_ms = cfg->imds_timeout_ms > 0 ? cfg->imds_timeout_ms : 1000;
    p->refresh_before_s = cfg->refresh_before_s ? cfg->refresh_before_s : 300;
    p->role_duration_s = cfg->role_duration_s ? cfg->role_duration_s : 3600;
    snprintf(p->session_name, sizeof p->session_name, "%s",
             cfg->session_name ? cfg->session_name : "ecs-secrets-agent");
    int rc = -ENOMEM;
    if (cfg->access_key_id && *cfg->access_key_id) {
        if (!(p->static_akid = es_strdup(cfg->access_key_id)) ||
            !(p->static_secret = es_strdup(cfg->secret_access_key)) ||
            (cfg->session_token && *cfg->session_token &&
             !(p->static_token = es_strdup(cfg->session_token))))
            goto fail;
    }
    if (cfg->envp) {
        size_t n = 0;
        while (cfg->envp[n])
            n++;
        if (!(p->envp = es_calloc(n + 1, sizeof *p->envp)))
            goto fail;
        for (size_t i = 0; i < n; i++)
            if (!(p->envp[i] = es_strdup(cfg->envp[i])))
                goto fail;
    }
    if (uv_timer_init(p->loop, &p->defer) != 0) {
        rc = -EIO;
        goto fail;
    }
    p->defer.data = p;
    *out = p;
    return 0;
fail:
    es_free_secret_str(p->static_akid);
    es_free_secret_str(p->static_secret);
    es_free_secret_str(p->static_token);
    if (p->envp) {
        for (char **e = p->envp; *e; e++)
            es_free_secret_str(*e);
        es_free(p->envp);
    }
    es_free(p);
    return rc;
}

static void final_free(aw_creds *p)
{
    aw_credentials_clear(&p->host);
    for (role_entry *e = p->roles; e;) {
        role_entry *next = e->next;
        aw_credentials_clear(&e->creds);
        es_free(e->role_arn);
        es_free(e);
        e = next;
    }
    es_free_secret_str(p->static_akid);
    es_free_secret_str(p->static_secret);
    es_free_secret_str(p->static_token);
    if (p->envp) {
        for (char **e = p->envp; *e; e++)
            es_free_secret_str(*e); /* the environment may hold keys */
        es_free(p->envp);
    }
    void (*closed)(void *) = p->closed;
    void *arg = p->closed_arg;
    es_wipe(p, sizeof *p);
    es_free(p);
    if (closed)
        closed(arg);
}

/* Frees p once it is closing, its timer is closed and nothing in flight
 * refers to it. Callers return right after. */
static bool maybe_free(aw_creds *p)
{
    if (!p->closing || !p->timer_closed || p->in_flight)
        return false;
    final_free(p);
    return true;
}

static void on_closed(uv_handle_t *h)
{
    aw_creds *p = h->data;
    /* answers still queued are canceled */
    on_defer(&p->defer);
    p->timer_closed = true;
    maybe_free(p);
}

void aw_creds_close(aw_creds *p, void (*closed)(void *arg), void *arg)
{
    if (!p || p->closing)
        return;
    p->closing = true;
    p->closed = closed;
    p->closed_arg = arg;
    /* fetches in flight end when the client's HTTP requests do (the caller
     * closes the client after us, or they are answered); waiters still
     * queued are answered canceled now */
    aw_error e;
    make_error(&e, AW_ERR_CANCELED, "Canceled", "credentials provider closed");
    if (p->in_flight == 0 && p->host_fetching)
        host_finish(p, &e);
    for (role_entry *r = p->roles; r; r = r->next)
        if (!r->fetching)
            role_answer(p, r, &e);
    uv_timer_stop(&p->defer);
    uv_close((uv_handle_t *)&p->defer, on_closed);
}

void aw_creds_get_stats(const aw_creds *p, aw_creds_stats *out)
{
    *out = p->stats;
}

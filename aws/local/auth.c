#include "aws/local/auth.h"
#include "aws/region.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws/local/internal.h"
#include "aws/local/kms.h"
#include "aws/local/sts.h"
#include "common/alloc.h"
#include "common/secure.h"

#define LABEL_PREFIX "iam access key "
/* The AWS CLI credentials and config files written at start: a comment and one profile of a few
 * short lines (key id, secret, region). */
#define AL_AUTH_FILE_MAX 4096

const char *al_signing_name(const char *target)
{
    if (!target)
        return NULL;
    if (strncmp(target, "AmazonSSM.", 10) == 0)
        return "ssm";
    if (strncmp(target, "secretsmanager.", 15) == 0)
        return "secretsmanager";
    if (strncmp(target, "TrentService.", 13) == 0)
        return "kms";
    return NULL;
}

int al_access_key_add(al_ctx *c, const char *akid, const char *secret, const char *principal)
{
    return al_access_key_add_user(c, akid, secret, principal, NULL);
}

int al_access_key_add_user(al_ctx *c, const char *akid, const char *secret, const char *principal,
                           const char *user)
{
    char label[64];
    snprintf(label, sizeof label, LABEL_PREFIX "%s", akid);
    uint8_t *w = NULL;
    size_t wl = 0;
    int r = al_kms_wrap(c, label, (const uint8_t *)secret, strlen(secret), &w, &wl);
    if (r < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(
        c->db, "INSERT INTO iam_access_key(akid, wrapped, principal, created, user_name)"
               " VALUES (?,?,?,?,?)");
    if (!st) {
        es_free(w);
        return -EIO;
    }
    sqlite3_bind_text(st, 1, akid, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, w, (int)wl, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, principal, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 4, al_now(c));
    sqlite3_bind_text(st, 5, user, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    al_db_release(c->db, st);
    es_free(w);
    if (s == SQLITE_CONSTRAINT_PRIMARYKEY)
        return -EEXIST;
    return s == SQLITE_DONE ? 0 : -EIO;
}

/* The secret (es_malloc'ed, wipe it) and principal of akid. -ENOENT, -EIO.
 * An Inactive key (UpdateAccessKey) is not found: AWS answers it exactly as
 * an unknown key (InvalidClientTokenId / UnrecognizedClientException, "The
 * security token included in the request is invalid."). */
static int key_lookup(al_ctx *c, const char *akid, char **secret, char *principal, size_t plen)
{
    sqlite3_stmt *st = al_db_prepare(
        c->db, "SELECT wrapped, principal FROM iam_access_key WHERE akid=? AND status='Active'");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, akid, -1, SQLITE_STATIC);
    int r = -ENOENT, s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        char label[AW_SIGV4_AKID_MAX + sizeof LABEL_PREFIX];
        snprintf(label, sizeof label, LABEL_PREFIX "%s", akid);
        uint8_t *pt = NULL;
        size_t n = 0;
        r = al_kms_unwrap(c, label, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
                          &pt, &n);
        if (r == 0) {
            *secret = (char *)pt;
            snprintf(principal, plen, "%s", sqlite3_column_text(st, 1));
        } else {
            r = -EIO;
        }
    } else if (s != SQLITE_DONE) {
        r = -EIO;
    }
    al_db_release(c->db, st);
    return r;
}

static int meta_get(al_ctx *c, const char *key, char *out, size_t n)
{
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT value FROM meta WHERE key=?");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int r = -ENOENT, s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        snprintf(out, n, "%s", sqlite3_column_text(st, 0));
        r = 0;
    } else if (s != SQLITE_DONE) {
        r = -EIO;
    }
    al_db_release(c->db, st);
    return r;
}

static int meta_set(al_ctx *c, const char *key, const char *value)
{
    sqlite3_stmt *st = al_db_prepare(c->db, "INSERT OR REPLACE INTO meta(key, value) VALUES (?,?)");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    int r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
    al_db_release(c->db, st);
    return r;
}

/* Does path hold exactly text, as a regular file of ours with mode 0600? */
static bool same_private_file(const char *path, const char *text)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return false;
    struct stat st;
    size_t n = strlen(text);
    bool same = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600 &&
                st.st_uid == geteuid() && (size_t)st.st_size == n;
    char buf[AL_AUTH_FILE_MAX];
    if (same && n <= sizeof buf) {
        ssize_t r = read(fd, buf, n);
        same = r == (ssize_t)n && es_ct_equal(buf, text, n);
        es_wipe(buf, sizeof buf);
    } else {
        same = false;
    }
    close(fd);
    return same;
}

/* Writes text to dir/name atomically, mode 0600 (not at all when it already
 * holds exactly that). */
static int write_private(const char *dir, const char *name, const char *text, char *err,
                         size_t errlen)
{
    char path[4096], tmp[4200];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return -ENAMETOOLONG;
    if (same_private_file(path, text))
        return 0; /* unchanged: a start on a full disk must not need a write */
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "creating %s: %s", tmp, strerror(e));
        return -e;
    }
    size_t n = strlen(text);
    ssize_t w = write(fd, text, n);
    int e = w < 0 ? errno : EIO;
    bool okw = w == (ssize_t)n && fsync(fd) == 0;
    close(fd);
    if (!okw || rename(tmp, path) < 0) {
        e = okw ? errno : e;
        unlink(tmp);
        snprintf(err, errlen, "writing %s: %s", path, strerror(e));
        return -e;
    }
    return 0;
}

int al_admin_init(al_ctx *c, const char *state_dir, char akid[AL_AKID_LEN + 1], char *err,
                  size_t errlen)
{
    char id[AL_AKID_LEN + 1], principal[AL_PRINCIPAL_MAX];
    char *secret = NULL;
    int r = meta_get(c, "admin_access_key_id", id, sizeof id);
    if (r == -ENOENT) {
        char fresh[AL_SECRET_LEN + 1];
        memcpy(id, "AKIA", 4);
        if (al_random_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 32, id + 4, AL_AKID_LEN - 4) < 0 ||
            al_random_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 62,
                           fresh, AL_SECRET_LEN) < 0) {
            snprintf(err, errlen, "no randomness for the administrator key");
            return -EIO;
        }
        snprintf(principal, sizeof principal, "arn:aws:iam::%s:root", c->account);
        if (al_db_begin(c->db) < 0) {
            es_wipe(fresh, sizeof fresh);
            snprintf(err, errlen, "storing the administrator key: database busy");
            return -EIO;
        }
        r = al_access_key_add(c, id, fresh, principal);
        if (r == 0)
            r = meta_set(c, "admin_access_key_id", id);
        if (r == 0)
            r = al_db_commit(c->db);
        else
            al_db_rollback(c->db);
        es_wipe(fresh, sizeof fresh);
        if (r < 0) {
            snprintf(err, errlen, "storing the administrator key failed");
            return r;
        }
    } else if (r < 0) {
        snprintf(err, errlen, "reading the administrator key failed");
        return r;
    }
    r = key_lookup(c, id, &secret, principal, sizeof principal);
    if (r < 0) {
        snprintf(err, errlen, "the administrator key %s cannot be read (master key changed?)", id);
        return r;
    }
    es_buf text;
    es_buf_init(&text, AL_AUTH_FILE_MAX);
    es_buf_printf(&text,
                  "# Written by ecs-secrets-agent on every start: the administrator key of the\n"
                  "# embedded endpoints. Keep this file private (0600).\n"
                  "[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
                  AL_AUTH_PROFILE, id, secret);
    es_free_secret_str(secret);
    r = write_private(state_dir, AL_CREDENTIALS_FILE, es_buf_cstr(&text), err, errlen);
    es_buf_free_secret(&text);
    if (r < 0)
        return r;
    es_buf_init(&text, AL_AUTH_FILE_MAX);
    es_buf_printf(&text,
                  "# Written by ecs-secrets-agent on every start.\n[profile %s]\nregion = %s\n",
                  AL_AUTH_PROFILE, c->region);
    r = write_private(state_dir, AL_CONFIG_FILE, es_buf_cstr(&text), err, errlen);
    es_buf_free(&text);
    if (r < 0)
        return r;
    memcpy(akid, id, sizeof id);
    return 0;
}

int al_admin_credentials(al_ctx *c, char akid[AL_AKID_LEN + 1], char **secret)
{
    char id[AL_AKID_LEN + 1], principal[AL_PRINCIPAL_MAX];
    int r = meta_get(c, "admin_access_key_id", id, sizeof id);
    if (r < 0)
        return r;
    char *s = NULL;
    r = key_lookup(c, id, &s, principal, sizeof principal);
    if (r < 0)
        return r == -ENOENT ? -EIO : r;
    memcpy(akid, id, sizeof id);
    *secret = s;
    return 0;
}

/* ---- verification ---- */

const char *al_request_header(const al_request *rq, const char *name)
{
    for (size_t i = 0; i < rq->n_headers; i++)
        if (strcasecmp(rq->headers[i].name, name) == 0)
            return rq->headers[i].value;
    return NULL;
}

/* The headers whose signing a verification requires (or requires when they
 * are sent), as bits. */
enum {
    SIGNED_HOST = 1,
    SIGNED_DATE = 2,
    SIGNED_TARGET = 4,
    SIGNED_TOKEN = 8,
};

/* Which of those a parsed SignedHeaders list names, in one pass over it:
 * a look-up per name walked it up to four times with strchr, strlen and
 * strncmp per listed name. A name is compared only when its length is one
 * of theirs. */
static unsigned signed_required(const char *list)
{
    unsigned got = 0;
    for (const char *p = list; *p;) {
        const char *q = p;
        while (*q && *q != ';')
            q++;
        size_t n = (size_t)(q - p);
        if (n == 4 && memcmp(p, "host", 4) == 0)
            got |= SIGNED_HOST;
        else if (n == 10 && memcmp(p, "x-amz-date", 10) == 0)
            got |= SIGNED_DATE;
        else if (n == 12 && memcmp(p, "x-amz-target", 12) == 0)
            got |= SIGNED_TARGET;
        else if (n == 20 && memcmp(p, "x-amz-security-token", 20) == 0)
            got |= SIGNED_TOKEN;
        p = *q ? q + 1 : q;
    }
    return got;
}

/* ---- signing keys kept between requests ----
 *
 * Deriving a request's signing key takes the access key's row (SQLite), the
 * unwrapping of its secret (AES-GCM under the master key) and four HMACs:
 * the same for every request of a day, region and service. The cache keeps
 * the derived key (never the secret) per (access key id, date, region,
 * service) with the principal it stands for, and for temporary credentials
 * the SHA-256 of the session token and the expiry, which are checked on
 * every request as al_sts_lookup checks them. An entry is valid while the
 * database is unchanged (al_db_stamp): a key deactivated or deleted, a
 * session removed, a role deleted all change rows, which drops the whole
 * cache before the next request. Derived keys are secrets: entries are wiped
 * when evicted (round robin) or dropped, and at al_close. Each entry also
 * keeps its key's HMAC states (aw_sigv4_mac: the ipad and opad blocks hashed
 * once), which verify the entry's requests; freed cleansed with the entry. */
#define KEY_CACHE_SLOTS 16

typedef struct key_slot {
    bool used;
    bool session;        /* ASIA...: token and expiry checked on each use */
    char token_hash[65]; /* hex SHA-256 of the session token */
    double expires;
    char akid[AW_SIGV4_AKID_MAX + 1];
    char date[9];
    char region[AW_SIGV4_SCOPE_PART_MAX + 1];
    char service[AW_SIGV4_SCOPE_PART_MAX + 1];
    char principal[AL_PRINCIPAL_MAX];
    uint8_t key[32];
    aw_sigv4_mac *mac; /* key's HMAC states; NULL when they could not be made */
} key_slot;

/* The Authorization header the head's check (al_precheck) parsed last and
 * its parse, for the verification of the same request, which otherwise
 * parsed it a second time (3 K instructions, 1.5 % of a GetParameters of
 * 10). It depends on the header's bytes alone (not on the database): it is
 * used only when the verified request's header is byte for byte the one
 * parsed, and used once - the verification empties it, whatever it finds.
 * The signature it holds is wiped then, by the next precheck and at al_close. */
typedef struct auth_memo {
    bool set;
    size_t len;
    char header[AW_SIGV4_AUTH_MAX];
    aw_sigv4_auth parsed;
} auth_memo;

struct al_auth_cache {
    al_db_stamp stamp;
    key_slot slot[KEY_CACHE_SLOTS];
    unsigned next; /* round-robin victim */
    auth_memo memo;
};

static void slot_drop(key_slot *s)
{
    aw_sigv4_mac_free(s->mac);
    es_wipe(s, sizeof *s);
}

void al_auth_cache_free(al_ctx *c)
{
    if (!c->auth_cache)
        return;
    for (size_t i = 0; i < KEY_CACHE_SLOTS; i++)
        slot_drop(&c->auth_cache->slot[i]);
    es_wipe(c->auth_cache, sizeof *c->auth_cache);
    es_free(c->auth_cache);
    c->auth_cache = NULL;
}

static void memo_clear(auth_memo *m)
{
    if (!m->set)
        return;
    es_wipe(m->parsed.signature, sizeof m->parsed.signature);
    m->set = false;
}

/* The memo (allocating the cache it lives in); NULL without memory. Not
 * through key_cache: a changed database leaves a parse as it was. */
static auth_memo *memo_of(al_ctx *c)
{
    if (!c->auth_cache && !(c->auth_cache = es_calloc(1, sizeof *c->auth_cache)))
        return NULL;
    return &c->auth_cache->memo;
}

/* The cache, emptied when the database changed since it was filled; NULL
 * when it cannot be allocated (then nothing is kept). */
static struct al_auth_cache *key_cache(al_ctx *c)
{
    al_db_stamp now = al_db_stamp_now(c->db);
    if (!c->auth_cache && !(c->auth_cache = es_calloc(1, sizeof *c->auth_cache)))
        return NULL;
    struct al_auth_cache *k = c->auth_cache;
    if (!al_db_stamp_eq(k->stamp, now)) {
        bool had = false;
        for (size_t i = 0; i < KEY_CACHE_SLOTS; i++)
            had = had || k->slot[i].used;
        if (had)
            c->cache_stats.flushes++;
        for (size_t i = 0; i < KEY_CACHE_SLOTS; i++)
            slot_drop(&k->slot[i]);
        k->stamp = now;
    }
    return k;
}

/* snprintf(dst, cap, "%s", src) without the format machinery (about 550
 * instructions a call, four a verified request: the principal at the head's
 * check and at the verification, the region): truncated to cap - 1. */
static void copy_str(char *dst, size_t cap, const char *src)
{
    if (!cap)
        return;
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* The signing key of the request's credential scope and the principal its
 * access key stands for; AWS's errors in e (as before the cache: unknown
 * key, stray or wrong token, expired session). *mac: the kept entry's HMAC
 * states of that key, valid until the cache is next used; NULL when the key
 * is not kept (then key verifies). */
static int signing_key_of(al_ctx *c, const aw_sigv4_auth *a, const char *token, const char *service,
                          time_t now, uint8_t key[32], aw_sigv4_mac **mac, char *who, size_t wholen,
                          al_error *e)
{
    *mac = NULL;
    bool session = strncmp(a->access_key_id, "ASIA", 4) == 0;
    char token_hash[65] = "";
    if (session && token)
        aw_sigv4_sha256_hex(token, strlen(token), token_hash);
    struct al_auth_cache *k = key_cache(c);
    for (size_t i = 0; k && i < KEY_CACHE_SLOTS; i++) {
        key_slot *s = &k->slot[i];
        if (!s->used || strcmp(s->akid, a->access_key_id) != 0 || strcmp(s->date, a->date) != 0 ||
            strcmp(s->region, a->region) != 0 || strcmp(s->service, a->service) != 0)
            continue;
        /* a hit needs everything the lookup would check; anything else
         * takes the full path below, which answers the right error */
        if (s->session != session || (!session && token) ||
            (session &&
             (!token || !es_ct_equal(s->token_hash, token_hash, 64) || (double)now >= s->expires)))
            break;
        memcpy(key, s->key, 32);
        copy_str(who, wholen, s->principal);
        *mac = s->mac;
        c->cache_stats.key_hits++;
        return 0;
    }
    char *secret = NULL;
    double expires = 0;
    int r;
    if (session) {
        /* temporary credentials of the embedded STS: token checked there */
        r = al_sts_lookup_ex(c, a->access_key_id, token, service, now, &secret, who, wholen,
                             &expires, e);
        if (r < 0)
            return r;
    } else if ((r = key_lookup(c, a->access_key_id, &secret, who, wholen)) == -ENOENT)
        return al_fail(e, 400, "UnrecognizedClientException",
                       "The security token included in the request is invalid.");
    else if (r < 0)
        return al_fail_internal(e, "InternalFailure");
    else if (token) {
        /* long-term keys carry no session token */
        es_free_secret_str(secret);
        return al_fail(e, 400, "UnrecognizedClientException",
                       "The security token included in the request is invalid.");
    }
    r = aw_sigv4_signing_key(secret, a->date, a->region, a->service, key);
    es_free_secret_str(secret);
    if (r < 0)
        return al_fail_internal(e, "InternalFailure");
    c->cache_stats.key_derivations++;
    if (!k || strlen(who) >= AL_PRINCIPAL_MAX)
        return 0;
    key_slot *s = &k->slot[k->next];
    k->next = (k->next + 1) % KEY_CACHE_SLOTS;
    slot_drop(s);
    s->used = true;
    s->session = session;
    memcpy(s->token_hash, token_hash, sizeof token_hash);
    s->expires = expires;
    snprintf(s->akid, sizeof s->akid, "%s", a->access_key_id);
    memcpy(s->date, a->date, sizeof s->date);
    snprintf(s->region, sizeof s->region, "%s", a->region);
    snprintf(s->service, sizeof s->service, "%s", a->service);
    snprintf(s->principal, sizeof s->principal, "%s", who);
    memcpy(s->key, key, 32);
    *mac = s->mac = aw_sigv4_mac_new(key);
    return 0;
}

#define bad_sig(e, ...) al_fail(e, 400, "InvalidSignatureException", __VA_ARGS__)

int al_precheck(al_ctx *c, const char *authorization, const char *amz_date, const char *token,
                time_t now, al_error *e)
{
    if (!authorization)
        return al_fail(e, 400, "MissingAuthenticationTokenException",
                       "Missing Authentication Token");
    /* parsed into the memo the verification looks in (or on the stack when
     * the cache cannot be allocated); a failed parse leaves the memo empty */
    aw_sigv4_auth own;
    auth_memo *m = memo_of(c);
    aw_sigv4_auth *pa = m ? &m->parsed : &own;
    size_t len = strlen(authorization);
    time_t t;
    if (m)
        memo_clear(m);
    if (aw_sigv4_parse_authorization(authorization, len, pa) < 0 || !amz_date ||
        aw_sigv4_parse_amz_date(amz_date, &t) < 0) {
        es_wipe(pa->signature, sizeof pa->signature);
        return al_fail(e, 400, "IncompleteSignatureException",
                       "Authorization header requires 'Credential', 'Signature' and "
                       "'SignedHeaders' parameters and an 'X-Amz-Date' header.");
    }
    if (m) {
        memcpy(m->header, authorization, len); /* len <= AW_SIGV4_AUTH_MAX: parsed */
        m->len = len;
        m->set = true;
    } else {
        es_wipe(own.signature, sizeof own.signature);
    }

    if (t + AL_AUTH_SKEW_MAX < now || t - AL_AUTH_SKEW_MAX > now)
        return al_fail(e, 400, "InvalidSignatureException",
                       "Signature expired or not yet current: %s is more than 15 minutes from "
                       "now.",
                       amz_date);
    /* the key must be one we know (and the session's token its own); the
     * derived key lands in the cache the full verification uses next */
    uint8_t key[32];
    char who[AL_PRINCIPAL_MAX];
    aw_sigv4_mac *mac;
    int r = signing_key_of(c, pa, token, pa->service, now, key, &mac, who, sizeof who, e);
    es_wipe(key, sizeof key);
    if (r < 0 && m)
        memo_clear(m); /* refused: no verification follows */
    return r;
}

/* The payload hash S3 signs with: the x-amz-content-sha256 header's value
 * (a special value kept as it is, a digest checked against the body). 0, or
 * < 0 with e filled. */
static int s3_payload_hash(const al_request *rq, char hash[65], al_s3_payload *mode, al_error *e)
{
    static const struct {
        const char *value;
        al_s3_payload mode;
    } special[] = {
        {"UNSIGNED-PAYLOAD", AL_S3_PAYLOAD_UNSIGNED},
        {"STREAMING-AWS4-HMAC-SHA256-PAYLOAD", AL_S3_PAYLOAD_STREAMING},
        {"STREAMING-UNSIGNED-PAYLOAD-TRAILER", AL_S3_PAYLOAD_STREAMING_TRAILER},
    };
    const char *claimed = al_request_header(rq, "x-amz-content-sha256");
    if (!claimed)
        return al_fail(e, 400, "InvalidRequest",
                       "Missing required header for this request: x-amz-content-sha256");
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) {
        if (strcmp(claimed, special[i].value) == 0) {
            *mode = special[i].mode;
            snprintf(hash, 65, "%s", claimed);
            return 0;
        }
    }
    aw_sigv4_sha256_hex(rq->body ? rq->body : "", rq->body ? rq->body_len : 0, hash);
    if (strcmp(claimed, hash) != 0)
        return al_fail(e, 400, "XAmzContentSHA256Mismatch",
                       "The provided 'x-amz-content-sha256' header does not match what was "
                       "computed.");
    *mode = AL_S3_PAYLOAD_SIGNED;
    return 0;
}

static int verify_req(al_ctx *c, const al_request *rq, const char *service, time_t now,
                      char *principal, size_t principal_len, char region[AW_REGION_MAX + 1],
                      al_error *e, al_s3_auth *s3);

int al_verify(al_ctx *c, const al_request *rq, const char *service, time_t now, char *principal,
              size_t principal_len, char region[AW_REGION_MAX + 1], al_error *e)
{
    return verify_req(c, rq, service, now, principal, principal_len, region, e, NULL);
}

void al_s3_auth_wipe(al_s3_auth *a)
{
    es_wipe(a->key, sizeof a->key);
}

int al_verify_s3(al_ctx *c, const al_request *rq, time_t now, al_s3_auth *out, al_error *e)
{
    memset(out, 0, sizeof *out);
    return verify_req(c, rq, "s3", now, out->principal, sizeof out->principal, out->region, e, out);
}

/* The headers a verification reads, each the first of its name (as
 * al_request_header finds it), found in one pass over the request's headers:
 * five al_request_header calls walked them up to five times with strcasecmp
 * (1.4 K instructions a verified request under callgrind). A name is
 * compared whole only when its first letters could make it one of these. */
typedef struct sig_headers {
    const char *authorization, *amz_date, *target, *token, *content_sha256;
} sig_headers;

static void sig_headers_of(const al_request *rq, sig_headers *s)
{
    *s = (sig_headers){0};
    for (size_t i = 0; i < rq->n_headers; i++) {
        const char *n = rq->headers[i].name;
        const char **slot = NULL;
        if ((n[0] | 0x20) == 'a') {
            if (strcasecmp(n, "authorization") == 0)
                slot = &s->authorization;
        } else if ((n[0] | 0x20) == 'x' && strncasecmp(n, "x-amz-", 6) == 0) {
            const char *r = n + 6;
            switch (r[0] | 0x20) {
            case 'd':
                slot = strcasecmp(r, "date") == 0 ? &s->amz_date : NULL;
                break;
            case 't':
                slot = strcasecmp(r, "target") == 0 ? &s->target : NULL;
                break;
            case 's':
                slot = strcasecmp(r, "security-token") == 0 ? &s->token : NULL;
                break;
            case 'c':
                slot = strcasecmp(r, "content-sha256") == 0 ? &s->content_sha256 : NULL;
                break;
            default:
                break;
            }
        }
        if (slot && !*slot)
            *slot = rq->headers[i].value;
    }
}

/* s3: NULL for the JSON and query services; for S3, its payload rules, and
 * what its chunks need is written there. */
static int verify_req(al_ctx *c, const al_request *rq, const char *service, time_t now,
                      char *principal, size_t principal_len, char region[AW_REGION_MAX + 1],
                      al_error *e, al_s3_auth *s3)
{
    sig_headers sh;
    sig_headers_of(rq, &sh);
    const char *authz = sh.authorization;
    if (!authz) {
        if (rq->query && strstr(rq->query, "X-Amz-Algorithm="))
            return al_fail(e, 400, "IncompleteSignatureException",
                           "Query-string (presigned) authentication is not supported by the "
                           "embedded endpoints; sign with the Authorization header.");
        return al_fail(e, 400, "MissingAuthenticationTokenException",
                       "Missing Authentication Token");
    }
    /* the head's check parsed this very header (auth_memo): taken, not
     * parsed again; the memo is emptied here either way */
    aw_sigv4_auth a;
    size_t alen = strlen(authz);
    int r;
    auth_memo *m = c->auth_cache ? &c->auth_cache->memo : NULL;
    if (m && m->set && m->len == alen && memcmp(m->header, authz, alen) == 0) {
        aw_sigv4_auth_copy(&a, &m->parsed);
        r = 0;
        c->cache_stats.auth_memo_hits++;
    } else {
        r = aw_sigv4_parse_authorization(authz, alen, &a);
    }
    if (m)
        memo_clear(m);
    if (r == -EPROTONOSUPPORT)
        return al_fail(e, 400, "IncompleteSignatureException",
                       "Unsupported AWS 'algorithm': only AWS4-HMAC-SHA256 is accepted.");
    if (r < 0)
        return al_fail(e, 400, "IncompleteSignatureException",
                       "Authorization header requires 'Credential', 'Signature' and "
                       "'SignedHeaders' parameters with the scope "
                       "ACCESS_KEY/DATE/REGION/SERVICE/aws4_request.");
    const char *amz_date = sh.amz_date;
    time_t t;
    if (!amz_date)
        return al_fail(e, 400, "IncompleteSignatureException",
                       "Authorization header requires existence of a 'X-Amz-Date' header.");
    if (aw_sigv4_parse_amz_date(amz_date, &t) < 0)
        return al_fail(e, 400, "IncompleteSignatureException",
                       "X-Amz-Date must be in the ISO8601 basic format YYYYMMDDTHHMMSSZ.");
    unsigned signed_names = signed_required(a.signed_headers);
    if (!(signed_names & SIGNED_HOST))
        return bad_sig(e, "'Host' must be a 'SignedHeader' in the AWS Authorization.");
    if (!(signed_names & SIGNED_DATE))
        return bad_sig(e, "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.%s%s", "",
                       "");
    /* the headers that choose what is done, or as whom, must be covered by the
     * signature: an unsigned X-Amz-Target would let a captured request be
     * re-aimed at another operation (DescribeSecret -> GetSecretValue) */
    if (sh.target && !(signed_names & SIGNED_TARGET))
        return bad_sig(e, "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization.");
    if (strncmp(a.date, amz_date, 8) != 0)
        return bad_sig(e,
                       "Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                       "version of date from HTTP: '%s' != '%.8s'.",
                       a.date, amz_date);
    /* one endpoint for every region, as LocalStack and AWS's own test
     * endpoints do: the scope names the region the request is served in.
     * IAM is global (AWS signs it for us-east-1; the CLI signs for the
     * profile's region when given an endpoint URL: any region is accepted). */
    if (!aw_region_find(a.region)) {
        const char *near = aw_region_nearest(a.region);
        return bad_sig(e, "Credential should be scoped to a valid region, not '%s'.%s%s%s",
                       a.region, near ? " (Did you mean '" : "", near ? near : "",
                       near ? "'?)" : "");
    }
    if (strcmp(a.service, service) != 0)
        return bad_sig(e, "Credential should be scoped to correct service: '%s' (not '%s').",
                       service, a.service);
    if (t + AL_AUTH_SKEW_MAX < now || t - AL_AUTH_SKEW_MAX > now) {
        char n16[17];
        aw_sigv4_amz_date(now, n16);
        return al_fail(e, 400, "InvalidSignatureException",
                       "Signature %s: %s is %s than %s (%s %s 15 min.)",
                       t < now ? "expired" : "not yet current", amz_date,
                       t < now ? "now earlier" : "still later", n16, n16, t < now ? "-" : "+");
    }
    char who[AL_PRINCIPAL_MAX];
    uint8_t key[32];
    aw_sigv4_mac *mac;
    const char *token = sh.token;
    if ((r = signing_key_of(c, &a, token, service, now, key, &mac, who, sizeof who, e)) < 0) {
        es_wipe(a.signature, sizeof a.signature);
        return r;
    }
    /* a session's token names whom the request acts as: signed, or refused
     * (after the key lookup, which answers a stray token on a long-term key) */
    if (token && !(signed_names & SIGNED_TOKEN)) {
        es_wipe(key, sizeof key);
        es_wipe(a.signature, sizeof a.signature);
        return bad_sig(e,
                       "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.");
    }
    char hash[65];
    const char *claimed = sh.content_sha256;
    if (s3) {
        r = s3_payload_hash(rq, hash, &s3->payload, e);
    } else {
        const void *body = rq->body ? rq->body : "";
        size_t body_len = rq->body ? rq->body_len : 0;
        if (!mac || aw_sigv4_mac_sha256_hex(mac, body, body_len, hash) < 0)
            aw_sigv4_sha256_hex(body, body_len, hash);
        r = claimed && strcmp(claimed, hash) != 0
                ? al_fail(e, 400, "InvalidSignatureException",
                          "The provided 'x-amz-content-sha256' header does not match what was "
                          "computed.")
                : 0;
    }
    if (r < 0) {
        es_wipe(key, sizeof key);
        es_wipe(a.signature, sizeof a.signature);
        return r;
    }
    aw_sigv4_input in = {.method = rq->method,
                         .path = rq->path,
                         .query = rq->query,
                         .headers = rq->headers,
                         .n_headers = rq->n_headers,
                         .payload_hash = hash,
                         .s3 = s3 != NULL};
    /* mac: the kept entry's states of this very key (nothing used the cache
     * since signing_key_of) */
    r = mac ? aw_sigv4_verify_with_mac(&in, &a, amz_date, mac)
            : aw_sigv4_verify_with_key(&in, &a, amz_date, key);
    if (r == 0 && s3) {
        memcpy(s3->key, key, sizeof key);
        snprintf(s3->seed, sizeof s3->seed, "%s", a.signature);
        snprintf(s3->amz_date, sizeof s3->amz_date, "%s", amz_date);
        snprintf(s3->scope, sizeof s3->scope, "%s/%s/%s/aws4_request", a.date, a.region, a.service);
    }
    es_wipe(key, sizeof key);
    es_wipe(a.signature, sizeof a.signature);
    if (r == -EACCES)
        return al_fail(e, 400, "InvalidSignatureException",
                       "The request signature we calculated does not match the signature you "
                       "provided. Check your AWS Secret Access Key and signing method. Consult "
                       "the service documentation for details.");
    if (r < 0)
        return al_fail(e, 400, "IncompleteSignatureException",
                       "The request could not be canonicalised: a signed header is missing or "
                       "the request is too large.");
    copy_str(principal, principal_len, who);
    if (region)
        copy_str(region, AW_REGION_MAX + 1, a.region);
    return 0;
}

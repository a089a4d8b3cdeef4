#include "aws/local/kms.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws/local/kms_policy.h"
#include "common/alloc.h"
#include "common/secure.h"

#define WRAP_AAD_PREFIX "ecs-secrets-agent kms key "
#define WRAPPED_LEN (AL_KMS_IV_LEN + AL_KMS_TAG_LEN + AL_KEY_BYTES)
#define AL_KMS_DESCRIPTION_MAX 8192 /* CreateKey's Description (KMS's limit) */

static const struct {
    const char *alias;
    const char *description;
} managed_keys[] = {
    {"alias/aws/ssm", "Default key that protects my SSM parameters when no other key is defined"},
    {"alias/aws/secretsmanager",
     "Default key that protects my Secrets Manager data when no other key is defined"},
};

/* ---- AES-256-GCM ---- */

/* Fetched once: EVP_aes_256_gcm() makes OpenSSL 3 look the implementation
 * up again at every init (6 % of a GetParameters). Process-wide, read-only
 * once set, kept for the life of the process. */
static EVP_CIPHER *aes_gcm;
static pthread_once_t aes_gcm_once = PTHREAD_ONCE_INIT;

static void fetch_aes_gcm(void)
{
    aes_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

static const EVP_CIPHER *cipher(void)
{
    (void)pthread_once(&aes_gcm_once, fetch_aes_gcm);
    return aes_gcm ? aes_gcm : EVP_aes_256_gcm();
}

/* One AES-256-GCM operation on x. key NULL: x already holds the key (and
 * the direction) from an earlier call, only the IV is set - the key schedule
 * and GHASH tables are not computed again. */
static int gcm_on(EVP_CIPHER_CTX *x, bool enc, const uint8_t *key, const uint8_t *iv,
                  const uint8_t *aad1, size_t aad1len, const uint8_t *aad2, size_t aad2len,
                  const uint8_t *in, size_t n, uint8_t *out, uint8_t *tag)
{
    int len = 0;
    bool tag_set = false;
    if (n > INT32_MAX || aad1len > INT32_MAX || aad2len > INT32_MAX)
        return -EMSGSIZE;
    if (key) {
        if (EVP_CipherInit_ex(x, cipher(), NULL, NULL, NULL, enc ? 1 : 0) != 1 ||
            EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_IVLEN, AL_KMS_IV_LEN, NULL) != 1 ||
            EVP_CipherInit_ex(x, NULL, NULL, key, iv, enc ? 1 : 0) != 1)
            return -EIO;
    } else if (!enc) {
        /* the tag goes in with the IV: one provider call fewer than a
         * separate EVP_CTRL_GCM_SET_TAG (each looks its parameters up by name) */
        OSSL_PARAM ps[] = {
            OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, AL_KMS_TAG_LEN),
            OSSL_PARAM_construct_end()};
        if (EVP_DecryptInit_ex2(x, NULL, NULL, iv, ps) != 1)
            return -EIO;
        tag_set = true;
    } else if (EVP_CipherInit_ex(x, NULL, NULL, NULL, iv, 1) != 1) {
        return -EIO;
    }
    if (aad1len && EVP_CipherUpdate(x, NULL, &len, aad1, (int)aad1len) != 1)
        return -EIO;
    if (aad2len && EVP_CipherUpdate(x, NULL, &len, aad2, (int)aad2len) != 1)
        return -EIO;
    if (n && EVP_CipherUpdate(x, out, &len, in, (int)n) != 1)
        return -EIO;
    if (!enc && !tag_set && EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, AL_KMS_TAG_LEN, tag) != 1)
        return -EIO;
    if (EVP_CipherFinal_ex(x, out + len, &len) != 1)
        return enc ? -EIO : -EBADMSG;
    if (enc && EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, AL_KMS_TAG_LEN, tag) != 1)
        return -EIO;
    return 0;
}

static int gcm(bool enc, const uint8_t key[AL_KEY_BYTES], const uint8_t *iv, const uint8_t *aad1,
               size_t aad1len, const uint8_t *aad2, size_t aad2len, const uint8_t *in, size_t n,
               uint8_t *out, uint8_t *tag)
{
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    if (!x)
        return -ENOMEM;
    int r = gcm_on(x, enc, key, iv, aad1, aad1len, aad2, aad2len, in, n, out, tag);
    EVP_CIPHER_CTX_free(x); /* cleanses the key schedule */
    return r;
}

/* ---- master key ---- */

/* may_create: no wrapped key exists yet, so a missing file may be made. */
static int load_master(al_ctx *c, const char *state_dir, bool may_create, char *err, size_t errlen)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", state_dir, AL_MASTER_KEY_FILE) >= sizeof path)
        return -ENAMETOOLONG;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT && !may_create) {
        /* a new key would make every stored value unreadable: refuse */
        snprintf(err, errlen,
                 "%s is missing but the database holds keys wrapped by it; restore the file "
                 "(or remove %s to start over, losing every stored secret)",
                 path, AL_DB_FILE);
        return -ENOKEY;
    }
    if (fd < 0 && errno == ENOENT) {
        uint8_t k[AL_KEY_BYTES];
        if (es_random_bytes(k, sizeof k) < 0) {
            snprintf(err, errlen, "no randomness for the master key");
            return -EIO;
        }
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        unlink(tmp);
        int w = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (w < 0) {
            int e = errno;
            es_wipe(k, sizeof k);
            snprintf(err, errlen, "creating %s: %s", tmp, strerror(e));
            return -e;
        }
        ssize_t n = write(w, k, sizeof k);
        int e = errno;
        bool ok = n == (ssize_t)sizeof k && fsync(w) == 0;
        close(w);
        es_wipe(k, sizeof k);
        if (!ok || rename(tmp, path) < 0) {
            e = ok ? errno : (n < 0 ? e : EIO);
            unlink(tmp);
            snprintf(err, errlen, "writing %s: %s", path, strerror(e));
            return -e;
        }
        int d = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (d >= 0) {
            (void)fsync(d);
            close(d);
        }
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    }
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "opening %s: %s", path, strerror(e));
        return -e;
    }
    int r = -EINVAL;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", path);
        goto out;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen, "%s is readable by group or others (mode %03o); expected 0600", path,
                 (unsigned)(st.st_mode & 0777));
        r = -EPERM;
        goto out;
    }
    if (st.st_uid != geteuid()) {
        snprintf(err, errlen, "%s is owned by another user", path);
        r = -EPERM;
        goto out;
    }
    ssize_t n = read(fd, c->master, sizeof c->master);
    if (n != (ssize_t)sizeof c->master || st.st_size != (off_t)sizeof c->master) {
        snprintf(err, errlen, "%s does not hold a %d-byte key", path, AL_KEY_BYTES);
        es_wipe(c->master, sizeof c->master);
        goto out;
    }
    r = 0;
out:
    close(fd);
    return r;
}

/* ---- keys ---- */

static int wrap_key(al_ctx *c, const char *key_id, const uint8_t material[AL_KEY_BYTES],
                    uint8_t out[WRAPPED_LEN])
{
    if (es_random_bytes(out, AL_KMS_IV_LEN) < 0)
        return -EIO;
    return gcm(true, c->master, out, (const uint8_t *)WRAP_AAD_PREFIX, strlen(WRAP_AAD_PREFIX),
               (const uint8_t *)key_id, strlen(key_id), material, AL_KEY_BYTES,
               out + AL_KMS_IV_LEN + AL_KMS_TAG_LEN, out + AL_KMS_IV_LEN);
}

void al_kms_memo_begin(al_ctx *c)
{
    c->key_memo_on = true;
    c->key_memo_valid = false;
}

void al_kms_memo_end(al_ctx *c)
{
    es_wipe(c->key_memo, sizeof c->key_memo);
    c->key_memo_on = c->key_memo_valid = false;
    EVP_CIPHER_CTX_free(c->memo_gcm); /* cleanses the key schedule */
    c->memo_gcm = NULL;
    c->memo_gcm_ready = false;
}

/* Decrypts with the memo's key, keeping its expanded key between the
 * values of one operation (10 per GetParameters). */
static int gcm_memo_decrypt(al_ctx *c, const uint8_t *iv, const uint8_t *aad1, size_t aad1len,
                            const uint8_t *aad2, size_t aad2len, const uint8_t *in, size_t n,
                            uint8_t *out, uint8_t *tag)
{
    if (!c->memo_gcm && !(c->memo_gcm = EVP_CIPHER_CTX_new()))
        return -ENOMEM;
    int r = gcm_on(c->memo_gcm, false, c->memo_gcm_ready ? NULL : c->key_memo, iv, aad1, aad1len,
                   aad2, aad2len, in, n, out, tag);
    /* a failed init leaves no usable key: set it again next time */
    c->memo_gcm_ready = r == 0 || r == -EBADMSG;
    return r;
}

static int load_key_db(al_ctx *c, const char *key_id, uint8_t material[AL_KEY_BYTES]);

/* Loads and unwraps a key's material. -ENOENT, -EPERM (disabled), -EIO. */
static int load_key(al_ctx *c, const char *key_id, uint8_t material[AL_KEY_BYTES])
{
    if (c->key_memo_on && c->key_memo_valid && strcmp(c->key_memo_id, key_id) == 0) {
        memcpy(material, c->key_memo, AL_KEY_BYTES);
        return 0;
    }
    int r = load_key_db(c, key_id, material);
    if (r == 0 && c->key_memo_on && strlen(key_id) == AL_KEY_ID_LEN) {
        memcpy(c->key_memo, material, AL_KEY_BYTES);
        memcpy(c->key_memo_id, key_id, AL_KEY_ID_LEN + 1);
        c->key_memo_valid = true;
        c->memo_gcm_ready = false; /* another key: expand it again */
    }
    return r;
}

static int load_key_db(al_ctx *c, const char *key_id, uint8_t material[AL_KEY_BYTES])
{
    int r = -EIO;
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT wrapped, enabled FROM kms_key WHERE key_id=?");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    if (s == SQLITE_DONE) {
        r = -ENOENT;
        goto out;
    }
    if (s != SQLITE_ROW)
        goto out;
    const uint8_t *w = sqlite3_column_blob(st, 0);
    int wl = sqlite3_column_bytes(st, 0);
    if (!w || wl != WRAPPED_LEN)
        goto out;
    if (!sqlite3_column_int(st, 1)) {
        r = -EPERM;
        goto out;
    }
    uint8_t tag[AL_KMS_TAG_LEN];
    memcpy(tag, w + AL_KMS_IV_LEN, sizeof tag);
    r = gcm(false, c->master, w, (const uint8_t *)WRAP_AAD_PREFIX, strlen(WRAP_AAD_PREFIX),
            (const uint8_t *)key_id, strlen(key_id), w + AL_KMS_IV_LEN + AL_KMS_TAG_LEN,
            AL_KEY_BYTES, material, tag);
    if (r < 0) {
        es_wipe(material, AL_KEY_BYTES);
        r = -EIO; /* a wrapped key that fails to open is storage damage */
    }
out:
    al_db_release(c->db, st);
    return r;
}

static int create_key(al_ctx *c, const char *manager, const char *description,
                      char key_id[AL_KEY_ID_LEN + 1])
{
    uint8_t material[AL_KEY_BYTES], wrapped[WRAPPED_LEN];
    int r = al_uuid(key_id);
    if (r < 0)
        return r;
    if (es_random_bytes(material, sizeof material) < 0)
        return -EIO;
    r = wrap_key(c, key_id, material, wrapped);
    es_wipe(material, sizeof material);
    if (r < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(c->db, "INSERT INTO kms_key(key_id, description, manager, "
                                            "created, wrapped) VALUES (?,?,?,?,?)");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, description ? description : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, manager, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 4, al_now(c));
    sqlite3_bind_blob(st, 5, wrapped, sizeof wrapped, SQLITE_STATIC);
    r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
    al_db_release(c->db, st);
    return r;
}

static int insert_alias(al_ctx *c, const char *alias, const char *key_id)
{
    sqlite3_stmt *st =
        al_db_prepare(c->db, "INSERT INTO kms_alias(name, key_id, created, updated) VALUES "
                             "(?,?,?,?)");
    if (!st)
        return -EIO;
    double now = al_now(c);
    sqlite3_bind_text(st, 1, alias, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key_id, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 3, now);
    sqlite3_bind_double(st, 4, now);
    int s = sqlite3_step(st);
    al_db_release(c->db, st);
    if (s == SQLITE_CONSTRAINT_PRIMARYKEY || s == SQLITE_CONSTRAINT)
        return -EEXIST;
    return s == SQLITE_DONE ? 0 : -EIO;
}

static int alias_target(al_ctx *c, const char *alias, char key_id[AL_KEY_ID_LEN + 1])
{
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT key_id FROM kms_alias WHERE name=?");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, alias, -1, SQLITE_STATIC);
    int r = -EIO, s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        if (k && strlen(k) == AL_KEY_ID_LEN) {
            memcpy(key_id, k, AL_KEY_ID_LEN + 1);
            r = 0;
        }
    } else if (s == SQLITE_DONE) {
        r = -ENOENT;
    }
    al_db_release(c->db, st);
    return r;
}

int al_kms_init(al_ctx *c, const char *state_dir, char *err, size_t errlen)
{
    sqlite3_stmt *st = al_db_prepare(
        c->db, "SELECT (SELECT count(*) FROM kms_key) + (SELECT count(*) FROM iam_access_key)");
    if (!st || sqlite3_step(st) != SQLITE_ROW) {
        al_db_release(c->db, st);
        snprintf(err, errlen, "reading the key table failed");
        return -EIO;
    }
    bool empty = sqlite3_column_int64(st, 0) == 0;
    al_db_release(c->db, st);
    int r = load_master(c, state_dir, empty, err, errlen);
    if (r < 0)
        return r;
    for (size_t i = 0; i < sizeof managed_keys / sizeof managed_keys[0]; i++) {
        char id[AL_KEY_ID_LEN + 1];
        r = alias_target(c, managed_keys[i].alias, id);
        if (r == 0)
            continue;
        if (r != -ENOENT)
            goto fail;
        if (al_db_begin(c->db) < 0)
            goto fail;
        if (create_key(c, "AWS", managed_keys[i].description, id) < 0 ||
            insert_alias(c, managed_keys[i].alias, id) < 0 || al_db_commit(c->db) < 0) {
            al_db_rollback(c->db);
            goto fail;
        }
    }
    return 0;
fail:
    snprintf(err, errlen, "creating the AWS managed KMS keys: %s",
             sqlite3_errmsg(al_db_handle(c->db)));
    return -EIO;
}

/* ---- references ---- */

static bool is_uuid(const char *s)
{
    if (strlen(s) != AL_KEY_ID_LEN)
        return false;
    for (size_t i = 0; i < AL_KEY_ID_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return true;
}

static bool alias_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n <= 6 || n > AL_KMS_ALIAS_MAX || strncmp(s, "alias/", 6) != 0)
        return false;
    for (size_t i = 6; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '/' || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

static bool key_exists(al_ctx *c, const char *key_id, int *err)
{
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT 1 FROM kms_key WHERE key_id=?");
    if (!st) {
        *err = -EIO;
        return false;
    }
    sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    al_db_release(c->db, st);
    *err = s == SQLITE_ROW || s == SQLITE_DONE ? 0 : -EIO;
    return s == SQLITE_ROW;
}

int al_kms_resolve(al_ctx *c, const char *ref, char key_id[AL_KEY_ID_LEN + 1])
{
    if (!ref || !*ref || strlen(ref) > AL_KMS_REF_MAX)
        return -EINVAL;
    const char *rest = ref;
    if (strncmp(ref, "arn:", 4) == 0) {
        char prefix[256];
        int n = snprintf(prefix, sizeof prefix, "arn:aws:kms:%s:%s:", c->region, c->account);
        if (n < 0 || (size_t)n >= sizeof prefix || strncmp(ref, prefix, (size_t)n) != 0)
            return strncmp(ref, "arn:aws:kms:", 12) == 0 ? -ENOENT : -EINVAL;
        rest = ref + n;
        if (strncmp(rest, "key/", 4) == 0) {
            rest += 4;
            if (!is_uuid(rest))
                return -EINVAL;
        } else if (strncmp(rest, "alias/", 6) != 0) {
            return -EINVAL;
        }
    }
    if (strncmp(rest, "alias/", 6) == 0) {
        if (!alias_name_ok(rest))
            return -EINVAL;
        return alias_target(c, rest, key_id);
    }
    if (!is_uuid(rest))
        return -EINVAL;
    int err = 0;
    if (!key_exists(c, rest, &err))
        return err ? err : -ENOENT;
    memcpy(key_id, rest, AL_KEY_ID_LEN + 1);
    return 0;
}

int al_kms_resolve_e(al_ctx *c, const char *ref, const char *code, char key_id[AL_KEY_ID_LEN + 1],
                     al_error *e)
{
    int r = al_kms_resolve(c, ref, key_id);
    if (r == -EIO)
        return al_fail_internal(e, code ? "InternalServerError" : "KMSInternalException");
    if (r == -EINVAL)
        return al_fail(e, 400, code ? code : "NotFoundException",
                       "Invalid keyId '%s': expected a key id, key ARN, alias name (alias/...) "
                       "or alias ARN in %s/%s.",
                       ref ? ref : "", c->region, c->account);
    if (r == -ENOENT) {
        const char *what = strstr(ref, "alias/") ? "Alias" : "Key";
        return al_fail(e, 400, code ? code : "NotFoundException", "%s '%s' does not exist.", what,
                       ref);
    }
    return r;
}

void al_kms_key_arn(al_ctx *c, const char *key_id, char *out, size_t n)
{
    snprintf(out, n, "arn:aws:kms:%s:%s:key/%s", c->region, c->account, key_id);
}

bool al_kms_is_aws_managed(al_ctx *c, const char *key_id)
{
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT manager FROM kms_key WHERE key_id=?");
    if (!st)
        return false;
    sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
    bool aws = sqlite3_step(st) == SQLITE_ROW &&
               strcmp((const char *)sqlite3_column_text(st, 0), "AWS") == 0;
    al_db_release(c->db, st);
    return aws;
}

/* ---- encryption context ---- */

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const al_kv *)a)->k, ((const al_kv *)b)->k);
}

static int put_len(es_buf *b, size_t n)
{
    uint8_t l[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    return es_buf_append(b, l, 4);
}

/* Canonical bytes of the context into b (whose max bounds it). */
static int canon_context(const al_kv *ctx, size_t n, es_buf *b)
{
    if (n > AL_KMS_CONTEXT_MAX_PAIRS)
        return -EMSGSIZE;
    al_kv sorted[AL_KMS_CONTEXT_MAX_PAIRS];
    if (n)
        memcpy(sorted, ctx, n * sizeof *ctx);
    qsort(sorted, n, sizeof *sorted, kv_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i && strcmp(sorted[i].k, sorted[i - 1].k) == 0)
            return -EINVAL;
        size_t kl = strlen(sorted[i].k), vl = strlen(sorted[i].v);
        int r;
        if ((r = put_len(b, kl)) < 0 || (r = es_buf_append(b, sorted[i].k, kl)) < 0 ||
            (r = put_len(b, vl)) < 0 || (r = es_buf_append(b, sorted[i].v, vl)) < 0)
            return r;
    }
    return 0;
}

int al_kms_blob_key_id(const uint8_t *blob, size_t bloblen, char key_id[AL_KEY_ID_LEN + 1])
{
    if (bloblen < 2 + AL_KEY_ID_LEN + AL_KMS_IV_LEN + AL_KMS_TAG_LEN ||
        blob[0] != AL_KMS_BLOB_VERSION || blob[1] != AL_KEY_ID_LEN)
        return -EBADMSG;
    memcpy(key_id, blob + 2, AL_KEY_ID_LEN);
    key_id[AL_KEY_ID_LEN] = '\0';
    return is_uuid(key_id) ? 0 : -EBADMSG;
}

int al_kms_seal(al_ctx *c, const char *key_id, const al_kv *ctx, size_t nctx, const uint8_t *pt,
                size_t ptlen, uint8_t **blob, size_t *bloblen)
{
    if (ptlen > AL_KMS_SEAL_MAX)
        return -EMSGSIZE;
    if (!is_uuid(key_id))
        return -ENOENT;
    uint8_t material[AL_KEY_BYTES];
    es_buf aad;
    es_buf_init(&aad, AL_KMS_CONTEXT_MAX_BYTES + 4 * 2 * AL_KMS_CONTEXT_MAX_PAIRS);
    size_t hdr = 2 + AL_KEY_ID_LEN, total = hdr + AL_KMS_IV_LEN + AL_KMS_TAG_LEN + ptlen;
    uint8_t *b = NULL;
    int r = load_key(c, key_id, material);
    if (r < 0)
        goto out;
    r = canon_context(ctx, nctx, &aad);
    if (r < 0)
        goto out;
    b = es_malloc(total);
    if (!b) {
        r = -ENOMEM;
        goto out;
    }
    b[0] = AL_KMS_BLOB_VERSION;
    b[1] = AL_KEY_ID_LEN;
    memcpy(b + 2, key_id, AL_KEY_ID_LEN);
    if (es_random_bytes(b + hdr, AL_KMS_IV_LEN) < 0) {
        r = -EIO;
        goto out;
    }
    r = gcm(true, material, b + hdr, b, hdr, (const uint8_t *)es_buf_cstr(&aad), aad.len, pt, ptlen,
            b + hdr + AL_KMS_IV_LEN + AL_KMS_TAG_LEN, b + hdr + AL_KMS_IV_LEN);
    if (r < 0)
        goto out;
    *blob = b;
    *bloblen = total;
    b = NULL;
out:
    es_wipe(material, sizeof material);
    es_buf_free(&aad);
    es_free(b);
    return r;
}

int al_kms_unseal(al_ctx *c, const uint8_t *blob, size_t bloblen, const al_kv *ctx, size_t nctx,
                  uint8_t **pt, size_t *ptlen, char key_id[AL_KEY_ID_LEN + 1])
{
    char id[AL_KEY_ID_LEN + 1];
    uint8_t material[AL_KEY_BYTES];
    es_buf aad;
    es_buf_init(&aad, AL_KMS_CONTEXT_MAX_BYTES + 4 * 2 * AL_KMS_CONTEXT_MAX_PAIRS);
    uint8_t *out = NULL;
    int r = al_kms_blob_key_id(blob, bloblen, id);
    if (r < 0)
        return r;
    size_t hdr = 2 + AL_KEY_ID_LEN, n = bloblen - hdr - AL_KMS_IV_LEN - AL_KMS_TAG_LEN;
    r = load_key(c, id, material);
    if (r < 0)
        goto out;
    r = canon_context(ctx, nctx, &aad);
    if (r < 0) {
        r = -EBADMSG;
        goto out;
    }
    out = es_malloc(n + 1);
    if (!out) {
        r = -ENOMEM;
        goto out;
    }
    uint8_t tag[AL_KMS_TAG_LEN];
    memcpy(tag, blob + hdr + AL_KMS_IV_LEN, sizeof tag);
    if (c->key_memo_on && c->key_memo_valid && strcmp(c->key_memo_id, id) == 0)
        r = gcm_memo_decrypt(c, blob + hdr, blob, hdr, (const uint8_t *)es_buf_cstr(&aad), aad.len,
                             blob + hdr + AL_KMS_IV_LEN + AL_KMS_TAG_LEN, n, out, tag);
    else
        r = gcm(false, material, blob + hdr, blob, hdr, (const uint8_t *)es_buf_cstr(&aad), aad.len,
                blob + hdr + AL_KMS_IV_LEN + AL_KMS_TAG_LEN, n, out, tag);
    if (r < 0) {
        es_wipe(out, n + 1);
        goto out;
    }
    out[n] = 0;
    *pt = out;
    *ptlen = n;
    if (key_id)
        memcpy(key_id, id, sizeof id);
    out = NULL;
out:
    es_wipe(material, sizeof material);
    es_buf_free(&aad);
    es_free(out);
    return r;
}

int al_kms_wrap(al_ctx *c, const char *label, const uint8_t *pt, size_t ptlen, uint8_t **out,
                size_t *outlen)
{
    if (ptlen > AL_KMS_PLAINTEXT_MAX)
        return -EMSGSIZE;
    size_t n = AL_KMS_IV_LEN + AL_KMS_TAG_LEN + ptlen;
    uint8_t *b = es_malloc(n);
    if (!b)
        return -ENOMEM;
    int r = es_random_bytes(b, AL_KMS_IV_LEN) < 0 ? -EIO : 0;
    if (r == 0)
        r = gcm(true, c->master, b, (const uint8_t *)label, strlen(label), NULL, 0, pt, ptlen,
                b + AL_KMS_IV_LEN + AL_KMS_TAG_LEN, b + AL_KMS_IV_LEN);
    if (r < 0) {
        es_free(b);
        return r;
    }
    *out = b;
    *outlen = n;
    return 0;
}

int al_kms_unwrap(al_ctx *c, const char *label, const uint8_t *blob, size_t bloblen, uint8_t **pt,
                  size_t *ptlen)
{
    if (bloblen < AL_KMS_IV_LEN + AL_KMS_TAG_LEN)
        return -EBADMSG;
    size_t n = bloblen - AL_KMS_IV_LEN - AL_KMS_TAG_LEN;
    uint8_t *o = es_malloc(n + 1);
    if (!o)
        return -ENOMEM;
    uint8_t tag[AL_KMS_TAG_LEN];
    memcpy(tag, blob + AL_KMS_IV_LEN, sizeof tag);
    int r = gcm(false, c->master, blob, (const uint8_t *)label, strlen(label), NULL, 0,
                blob + AL_KMS_IV_LEN + AL_KMS_TAG_LEN, n, o, tag);
    if (r < 0) {
        es_wipe(o, n + 1);
        es_free(o);
        return r;
    }
    o[n] = 0;
    *pt = o;
    *ptlen = n;
    return 0;
}

/* ---- the KMS API ---- */

static int parse_context(const es_json *req, al_kv *kv, size_t *n, al_error *e)
{
    const es_json *ec = es_json_get(req, "EncryptionContext");
    *n = 0;
    if (!ec || ec->type == ES_JSON_NULL)
        return 0;
    if (ec->type != ES_JSON_OBJECT)
        return al_fail(e, 400, "ValidationException",
                       "EncryptionContext must be a map of strings.");
    if (ec->u.object.n > AL_KMS_CONTEXT_MAX_PAIRS)
        return al_fail(e, 400, "ValidationException", "EncryptionContext has more than %d pairs.",
                       AL_KMS_CONTEXT_MAX_PAIRS);
    size_t bytes = 0;
    for (size_t i = 0; i < ec->u.object.n; i++) {
        const char *v = es_json_as_str(ec->u.object.values[i]);
        if (!v)
            return al_fail(e, 400, "ValidationException",
                           "EncryptionContext values must be strings.");
        kv[i].k = ec->u.object.keys[i];
        kv[i].v = v;
        bytes += strlen(kv[i].k) + strlen(v);
        for (size_t j = 0; j < i; j++)
            if (strcmp(kv[j].k, kv[i].k) == 0)
                return al_fail(e, 400, "ValidationException",
                               "EncryptionContext repeats the key '%s'.", kv[i].k);
    }
    if (bytes > AL_KMS_CONTEXT_MAX_BYTES)
        return al_fail(e, 400, "ValidationException", "EncryptionContext is larger than %d bytes.",
                       AL_KMS_CONTEXT_MAX_BYTES);
    *n = ec->u.object.n;
    return 0;
}

static int key_from_req(al_ctx *c, const es_json *req, const char *principal, const char *action,
                        char id[AL_KEY_ID_LEN + 1], char *arn, size_t arnlen, al_error *e)
{
    const char *ref;
    if (!al_opt_str(req, "KeyId", &ref, e))
        return -EINVAL;
    if (!ref)
        return al_fail(e, 400, "ValidationException", "KeyId is required.");
    int r = al_kms_resolve_e(c, ref, NULL, id, e);
    if (r < 0)
        return r;
    al_kms_key_arn(c, id, arn, arnlen);
    return al_authorize(c, principal, action, arn, e);
}

static void write_metadata(al_ctx *c, es_jw *w, const char *key_id)
{
    sqlite3_stmt *st = al_db_prepare(
        c->db, "SELECT description, manager, enabled, created FROM kms_key WHERE key_id=?");
    if (!st) {
        w->err = -EIO;
        return;
    }
    sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW) {
        al_db_release(c->db, st);
        w->err = -EIO;
        return;
    }
    char arn[256];
    al_kms_key_arn(c, key_id, arn, sizeof arn);
    bool enabled = sqlite3_column_int(st, 2) != 0;
    es_jw_key(w, "KeyMetadata");
    es_jw_obj(w);
    es_jw_kstr(w, "AWSAccountId", c->account);
    es_jw_kstr(w, "KeyId", key_id);
    es_jw_kstr(w, "Arn", arn);
    es_jw_key(w, "CreationDate");
    es_jw_double(w, sqlite3_column_double(st, 3));
    es_jw_kbool(w, "Enabled", enabled);
    es_jw_kstr(w, "Description", (const char *)sqlite3_column_text(st, 0));
    es_jw_kstr(w, "KeyUsage", "ENCRYPT_DECRYPT");
    es_jw_kstr(w, "KeyState", enabled ? "Enabled" : "Disabled");
    es_jw_kstr(w, "Origin", "AWS_KMS");
    es_jw_kstr(w, "KeyManager", (const char *)sqlite3_column_text(st, 1));
    es_jw_kstr(w, "CustomerMasterKeySpec", "SYMMETRIC_DEFAULT");
    es_jw_kstr(w, "KeySpec", "SYMMETRIC_DEFAULT");
    es_jw_key(w, "EncryptionAlgorithms");
    es_jw_arr(w);
    es_jw_str(w, "SYMMETRIC_DEFAULT");
    es_jw_arr_end(w);
    es_jw_kbool(w, "MultiRegion", false);
    es_jw_obj_end(w);
    al_db_release(c->db, st);
}

static int op_create_key(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                         al_error *e)
{
    const char *desc, *usage, *spec, *cmk_spec, *origin;
    if (!al_opt_str(req, "Description", &desc, e) || !al_opt_str(req, "KeyUsage", &usage, e) ||
        !al_opt_str(req, "KeySpec", &spec, e) ||
        !al_opt_str(req, "CustomerMasterKeySpec", &cmk_spec, e) ||
        !al_opt_str(req, "Origin", &origin, e))
        return -EINVAL;
    if (desc && strlen(desc) > AL_KMS_DESCRIPTION_MAX)
        return al_fail(e, 400, "ValidationException", "Description is longer than %d characters.",
                       AL_KMS_DESCRIPTION_MAX);
    if (usage && strcmp(usage, "ENCRYPT_DECRYPT") != 0)
        return al_fail(e, 400, "UnsupportedOperationException",
                       "KeyUsage %s is not supported by the embedded KMS; only ENCRYPT_DECRYPT.",
                       usage);
    if ((spec && strcmp(spec, "SYMMETRIC_DEFAULT") != 0) ||
        (cmk_spec && strcmp(cmk_spec, "SYMMETRIC_DEFAULT") != 0))
        return al_fail(e, 400, "UnsupportedOperationException",
                       "Only SYMMETRIC_DEFAULT keys are supported by the embedded KMS.");
    if (origin && strcmp(origin, "AWS_KMS") != 0)
        return al_fail(e, 400, "UnsupportedOperationException",
                       "Origin %s is not supported by the embedded KMS; only AWS_KMS.", origin);
    int r = al_authorize(c, principal, "kms:CreateKey", "*", e);
    if (r < 0)
        return r;
    char id[AL_KEY_ID_LEN + 1];
    if (al_db_begin(c->db) < 0)
        return al_fail_internal(e, "KMSInternalException");
    if (create_key(c, "CUSTOMER", desc, id) < 0 || al_db_commit(c->db) < 0) {
        al_db_rollback(c->db);
        return al_fail_internal(e, "KMSInternalException");
    }
    es_jw_obj(w);
    write_metadata(c, w, id);
    es_jw_obj_end(w);
    return 0;
}

static int op_describe_key(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                           al_error *e)
{
    char id[AL_KEY_ID_LEN + 1], arn[256];
    int r = key_from_req(c, req, principal, "kms:DescribeKey", id, arn, sizeof arn, e);
    if (r < 0)
        return r;
    es_jw_obj(w);
    write_metadata(c, w, id);
    es_jw_obj_end(w);
    return 0;
}

static int op_list_keys(al_ctx *c, const char *principal, const es_json *req, es_jw *w, al_error *e)
{
    int64_t limit;
    const char *marker;
    if (!al_opt_int(req, "Limit", 1, 1000, 100, &limit, e) ||
        !al_opt_str(req, "Marker", &marker, e))
        return -EINVAL;
    int r = al_authorize(c, principal, "kms:ListKeys", "*", e);
    if (r < 0)
        return r;
    sqlite3_stmt *st =
        al_db_prepare(c->db, "SELECT key_id FROM kms_key WHERE key_id > ? ORDER BY key_id LIMIT ?");
    if (!st)
        return al_fail_internal(e, "KMSInternalException");
    sqlite3_bind_text(st, 1, marker ? marker : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, limit + 1);
    es_jw_obj(w);
    es_jw_key(w, "Keys");
    es_jw_arr(w);
    int64_t n = 0;
    char last[AL_KEY_ID_LEN + 1] = "";
    bool more = false;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        if (n == limit) {
            more = true;
            break;
        }
        char arn[256];
        al_kms_key_arn(c, id, arn, sizeof arn);
        es_jw_obj(w);
        es_jw_kstr(w, "KeyId", id);
        es_jw_kstr(w, "KeyArn", arn);
        es_jw_obj_end(w);
        snprintf(last, sizeof last, "%s", id);
        n++;
    }
    al_db_release(c->db, st);
    es_jw_arr_end(w);
    es_jw_kbool(w, "Truncated", more);
    if (more)
        es_jw_kstr(w, "NextMarker", last);
    es_jw_obj_end(w);
    return 0;
}

static int op_create_alias(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                           al_error *e)
{
    const char *alias, *target;
    if (!al_opt_str(req, "AliasName", &alias, e) || !al_opt_str(req, "TargetKeyId", &target, e))
        return -EINVAL;
    if (!alias || !target)
        return al_fail(e, 400, "ValidationException", "AliasName and TargetKeyId are required.");
    if (!alias_name_ok(alias))
        return al_fail(e, 400, "ValidationException",
                       "Alias name '%s' must begin with 'alias/' followed by letters, digits, "
                       "'/', '_' or '-', at most %d characters.",
                       alias, AL_KMS_ALIAS_MAX);
    if (strncmp(alias, "alias/aws/", 10) == 0)
        return al_fail(e, 400, "NotAuthorizedException",
                       "Alias names beginning with 'alias/aws/' are reserved for AWS managed "
                       "keys.");
    if (strncmp(target, "alias/", 6) == 0 || strstr(target, ":alias/"))
        return al_fail(e, 400, "ValidationException",
                       "TargetKeyId must be a key id or key ARN, not an alias.");
    char id[AL_KEY_ID_LEN + 1], arn[256], alias_arn[512];
    int r = al_kms_resolve_e(c, target, NULL, id, e);
    if (r < 0)
        return r;
    if (al_kms_is_aws_managed(c, id))
        return al_fail(e, 400, "NotAuthorizedException",
                       "An alias cannot point to an AWS managed key.");
    al_kms_key_arn(c, id, arn, sizeof arn);
    snprintf(alias_arn, sizeof alias_arn, "arn:aws:kms:%s:%s:%s", c->region, c->account, alias);
    if ((r = al_authorize(c, principal, "kms:CreateAlias", alias_arn, e)) < 0 ||
        (r = al_authorize(c, principal, "kms:CreateAlias", arn, e)) < 0)
        return r;
    r = insert_alias(c, alias, id);
    if (r == -EEXIST)
        return al_fail(e, 400, "AlreadyExistsException", "An alias with the name %s already exists",
                       alias_arn);
    if (r < 0)
        return al_fail_internal(e, "KMSInternalException");
    es_jw_obj(w);
    es_jw_obj_end(w);
    return 0;
}

static int op_list_aliases(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                           al_error *e)
{
    int64_t limit;
    const char *marker, *keyref;
    if (!al_opt_int(req, "Limit", 1, 100, 50, &limit, e) ||
        !al_opt_str(req, "Marker", &marker, e) || !al_opt_str(req, "KeyId", &keyref, e))
        return -EINVAL;
    char id[AL_KEY_ID_LEN + 1] = "";
    if (keyref) {
        int r = al_kms_resolve_e(c, keyref, NULL, id, e);
        if (r < 0)
            return r;
    }
    int r = al_authorize(c, principal, "kms:ListAliases", "*", e);
    if (r < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT name, key_id, created, updated FROM kms_alias "
                                            "WHERE name > ? AND (?='' OR key_id=?) ORDER BY name "
                                            "LIMIT ?");
    if (!st)
        return al_fail_internal(e, "KMSInternalException");
    sqlite3_bind_text(st, 1, marker ? marker : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, limit + 1);
    es_jw_obj(w);
    es_jw_key(w, "Aliases");
    es_jw_arr(w);
    int64_t n = 0;
    char last[AL_KMS_ALIAS_MAX + 1] = "";
    bool more = false;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (n == limit) {
            more = true;
            break;
        }
        char arn[512];
        snprintf(arn, sizeof arn, "arn:aws:kms:%s:%s:%s", c->region, c->account, name);
        es_jw_obj(w);
        es_jw_kstr(w, "AliasName", name);
        es_jw_kstr(w, "AliasArn", arn);
        es_jw_kstr(w, "TargetKeyId", (const char *)sqlite3_column_text(st, 1));
        es_jw_key(w, "CreationDate");
        es_jw_double(w, sqlite3_column_double(st, 2));
        es_jw_key(w, "LastUpdatedDate");
        es_jw_double(w, sqlite3_column_double(st, 3));
        es_jw_obj_end(w);
        snprintf(last, sizeof last, "%s", name);
        n++;
    }
    al_db_release(c->db, st);
    es_jw_arr_end(w);
    es_jw_kbool(w, "Truncated", more);
    if (more)
        es_jw_kstr(w, "NextMarker", last);
    es_jw_obj_end(w);
    return 0;
}

static int check_algorithm(const es_json *req, al_error *e)
{
    const char *alg;
    if (!al_opt_str(req, "EncryptionAlgorithm", &alg, e))
        return -EINVAL;
    if (alg && strcmp(alg, "SYMMETRIC_DEFAULT") != 0)
        return al_fail(e, 400, "InvalidKeyUsageException",
                       "EncryptionAlgorithm %s is not valid for a symmetric key.", alg);
    return 0;
}

static int seal_fail(int r, al_error *e)
{
    if (r == -EPERM)
        return al_fail(e, 400, "DisabledException", "The key is disabled.");
    if (r == -ENOENT)
        return al_fail(e, 400, "NotFoundException", "The key does not exist.");
    return al_fail_internal(e, "KMSInternalException");
}

/* Seals pt and writes CiphertextBlob, KeyId (and Plaintext when asked). */
static int encrypt_and_answer(al_ctx *c, const char *id, const char *arn, const al_kv *kv,
                              size_t nkv, const uint8_t *pt, size_t ptlen, bool with_plaintext,
                              es_jw *w, al_error *e)
{
    uint8_t *blob = NULL;
    size_t bloblen = 0;
    int r = al_kms_seal(c, id, kv, nkv, pt, ptlen, &blob, &bloblen);
    if (r < 0)
        return seal_fail(r, e);
    es_jw_obj(w);
    es_jw_key(w, "CiphertextBlob");
    al_jw_b64(w, blob, bloblen);
    es_jw_kstr(w, "KeyId", arn);
    if (with_plaintext) {
        es_jw_key(w, "Plaintext");
        al_jw_b64(w, pt, ptlen);
    } else {
        es_jw_kstr(w, "EncryptionAlgorithm", "SYMMETRIC_DEFAULT");
    }
    es_jw_obj_end(w);
    es_free(blob);
    return 0;
}

static int op_encrypt(al_ctx *c, const char *principal, const es_json *req, es_jw *w, al_error *e)
{
    char id[AL_KEY_ID_LEN + 1], arn[256];
    al_kv kv[AL_KMS_CONTEXT_MAX_PAIRS];
    size_t nkv;
    const char *pt64;
    int r;
    if (!al_opt_str(req, "Plaintext", &pt64, e))
        return -EINVAL;
    if ((r = check_algorithm(req, e)) < 0 || (r = parse_context(req, kv, &nkv, e)) < 0)
        return r;
    if (!pt64)
        return al_fail(e, 400, "ValidationException", "Plaintext is required.");
    if ((r = key_from_req(c, req, principal, "kms:Encrypt", id, arn, sizeof arn, e)) < 0)
        return r;
    uint8_t *pt = NULL;
    size_t ptlen = 0;
    r = al_b64_decode(pt64, strlen(pt64), &pt, &ptlen);
    if (r == -ENOMEM)
        return al_fail_internal(e, "KMSInternalException");
    if (r < 0)
        return al_fail(e, 400, "ValidationException", "Plaintext is not valid base64.");
    if (ptlen < 1 || ptlen > AL_KMS_PLAINTEXT_MAX)
        r = al_fail(e, 400, "ValidationException",
                    "1 validation error detected: Value at 'plaintext' failed to satisfy "
                    "constraint: Member must have length between 1 and %d",
                    AL_KMS_PLAINTEXT_MAX);
    else
        r = encrypt_and_answer(c, id, arn, kv, nkv, pt, ptlen, false, w, e);
    es_wipe(pt, ptlen);
    es_free(pt);
    return r;
}

static int op_generate_data_key(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                                al_error *e)
{
    char id[AL_KEY_ID_LEN + 1], arn[256];
    al_kv kv[AL_KMS_CONTEXT_MAX_PAIRS];
    size_t nkv;
    const char *spec;
    int64_t nbytes;
    int r;
    if (!al_opt_str(req, "KeySpec", &spec, e) ||
        !al_opt_int(req, "NumberOfBytes", 1, 1024, 0, &nbytes, e))
        return -EINVAL;
    if ((r = parse_context(req, kv, &nkv, e)) < 0)
        return r;
    if (spec && nbytes)
        return al_fail(e, 400, "ValidationException",
                       "Specify either KeySpec or NumberOfBytes, not both.");
    if (spec) {
        if (strcmp(spec, "AES_256") == 0)
            nbytes = 32;
        else if (strcmp(spec, "AES_128") == 0)
            nbytes = 16;
        else
            return al_fail(e, 400, "ValidationException",
                           "KeySpec must be AES_256 or AES_128, not '%s'.", spec);
    }
    if (!nbytes)
        return al_fail(e, 400, "ValidationException",
                       "Please specify either number of bytes or key spec.");
    if ((r = key_from_req(c, req, principal, "kms:GenerateDataKey", id, arn, sizeof arn, e)) < 0)
        return r;
    uint8_t dk[1024];
    if (es_random_bytes(dk, (size_t)nbytes) < 0)
        return al_fail_internal(e, "KMSInternalException");
    r = encrypt_and_answer(c, id, arn, kv, nkv, dk, (size_t)nbytes, true, w, e);
    es_wipe(dk, sizeof dk);
    return r;
}

static int op_decrypt(al_ctx *c, const char *principal, const es_json *req, es_jw *w, al_error *e)
{
    al_kv kv[AL_KMS_CONTEXT_MAX_PAIRS];
    size_t nkv;
    const char *blob64, *keyref;
    int r;
    if (!al_opt_str(req, "CiphertextBlob", &blob64, e) || !al_opt_str(req, "KeyId", &keyref, e))
        return -EINVAL;
    if ((r = check_algorithm(req, e)) < 0 || (r = parse_context(req, kv, &nkv, e)) < 0)
        return r;
    if (!blob64)
        return al_fail(e, 400, "ValidationException", "CiphertextBlob is required.");
    uint8_t *blob = NULL, *pt = NULL;
    size_t bloblen = 0, ptlen = 0;
    char id[AL_KEY_ID_LEN + 1], want[AL_KEY_ID_LEN + 1], arn[256];
    r = al_b64_decode(blob64, strlen(blob64), &blob, &bloblen);
    if (r == -ENOMEM)
        return al_fail_internal(e, "KMSInternalException");
    if (r < 0)
        return al_fail(e, 400, "InvalidCiphertextException", "CiphertextBlob is not valid base64.");
    if (al_kms_blob_key_id(blob, bloblen, id) < 0) {
        r = al_fail(e, 400, "InvalidCiphertextException",
                    "The ciphertext was not produced by this KMS.");
        goto out;
    }
    if (keyref) {
        if ((r = al_kms_resolve_e(c, keyref, NULL, want, e)) < 0)
            goto out;
        if (strcmp(want, id) != 0) {
            r = al_fail(e, 400, "IncorrectKeyException",
                        "The key ID in the request does not identify a CMK that can perform "
                        "this operation.");
            goto out;
        }
    }
    al_kms_key_arn(c, id, arn, sizeof arn);
    if ((r = al_authorize(c, principal, "kms:Decrypt", arn, e)) < 0)
        goto out;
    r = al_kms_unseal(c, blob, bloblen, kv, nkv, &pt, &ptlen, NULL);
    if (r == -EBADMSG || r == -ENOENT) {
        r = al_fail(e, 400, "InvalidCiphertextException",
                    "The ciphertext is invalid, was altered, or does not match the encryption "
                    "context.");
        goto out;
    }
    if (r < 0) {
        r = seal_fail(r, e);
        goto out;
    }
    es_jw_obj(w);
    es_jw_kstr(w, "KeyId", arn);
    es_jw_key(w, "Plaintext");
    al_jw_b64(w, pt, ptlen);
    es_jw_kstr(w, "EncryptionAlgorithm", "SYMMETRIC_DEFAULT");
    es_jw_obj_end(w);
out:
    if (pt) {
        es_wipe(pt, ptlen);
        es_free(pt);
    }
    es_free(blob);
    return r;
}

static int set_enabled(al_ctx *c, const char *principal, const es_json *req, bool on, es_jw *w,
                       al_error *e)
{
    char id[AL_KEY_ID_LEN + 1], arn[256];
    int r = key_from_req(c, req, principal, on ? "kms:EnableKey" : "kms:DisableKey", id, arn,
                         sizeof arn, e);
    if (r < 0)
        return r;
    if (al_kms_is_aws_managed(c, id))
        return al_fail(e, 400, "NotAuthorizedException",
                       "AWS managed keys cannot be enabled or disabled.");
    sqlite3_stmt *st = al_db_prepare(c->db, "UPDATE kms_key SET enabled=? WHERE key_id=?");
    if (!st)
        return al_fail_internal(e, "KMSInternalException");
    sqlite3_bind_int(st, 1, on ? 1 : 0);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    al_db_release(c->db, st);
    if (rc != SQLITE_DONE)
        return al_fail_internal(e, "KMSInternalException");
    es_jw_obj(w);
    es_jw_obj_end(w);
    return 0;
}

static int op_enable_key(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                         al_error *e)
{
    return set_enabled(c, principal, req, true, w, e);
}

static int op_disable_key(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                          al_error *e)
{
    return set_enabled(c, principal, req, false, w, e);
}

const al_op al_kms_ops[] = {
    {"CreateKey", op_create_key},
    {"DescribeKey", op_describe_key},
    {"ListKeys", op_list_keys},
    {"CreateAlias", op_create_alias},
    {"ListAliases", op_list_aliases},
    {"Encrypt", op_encrypt},
    {"Decrypt", op_decrypt},
    {"GenerateDataKey", op_generate_data_key},
    {"EnableKey", op_enable_key},
    {"DisableKey", op_disable_key},
    /* key policies: aws/local/kms_policy.c */
    {"PutKeyPolicy", al_kms_put_key_policy},
    {"GetKeyPolicy", al_kms_get_key_policy},
    {"ListKeyPolicies", al_kms_list_key_policies},
    {NULL, NULL},
};

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
#include "aws/local/tags.h"
#include "aws/region.h"
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
 * and GHASH tables are not computed again (EVP_EncryptInit(3): the _ex2
 * inits reuse a context; every parameter but the cipher may be NULL to keep
 * what an earlier call set). The IV length is set once with the key and
 * stays in the provider's context. */
static int gcm_on(EVP_CIPHER_CTX *x, bool enc, const uint8_t *key, const uint8_t *iv,
                  const uint8_t *aad1, size_t aad1len, const uint8_t *aad2, size_t aad2len,
                  const uint8_t *in, size_t n, uint8_t *out, uint8_t *tag)
{
    int len = 0;
    if (n > INT32_MAX || aad1len > INT32_MAX || aad2len > INT32_MAX)
        return -EMSGSIZE;
    if (key) {
        if (EVP_CipherInit_ex(x, cipher(), NULL, NULL, NULL, enc ? 1 : 0) != 1 ||
            EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_IVLEN, AL_KMS_IV_LEN, NULL) != 1 ||
            EVP_CipherInit_ex(x, NULL, NULL, key, iv, enc ? 1 : 0) != 1)
            return -EIO;
    } else if (EVP_CipherInit_ex2(x, NULL, NULL, iv, enc ? 1 : 0, NULL) != 1) {
        return -EIO;
    }
    if (!enc) {
        /* the expected tag, before any data: EVP_CIPHER_CTX_set_params is one
         * pass over the GCM provider's settable names (5 look-ups); the same
         * parameter in the init's list costs the init two look-ups more, the
         * EVP_CTRL_GCM_SET_TAG control a translation into this call (about
         * 100 and 120 instructions a value more under callgrind). Written by
         * the initialisers (OSSL_PARAM_int(3)), not OSSL_PARAM_construct_*:
         * two library calls a value fewer. */
        OSSL_PARAM ps[] = {OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, AL_KMS_TAG_LEN),
                           OSSL_PARAM_END};
        if (EVP_CIPHER_CTX_set_params(x, ps) != 1)
            return -EIO;
    }
    if (aad1len && EVP_CipherUpdate(x, NULL, &len, aad1, (int)aad1len) != 1)
        return -EIO;
    if (aad2len && EVP_CipherUpdate(x, NULL, &len, aad2, (int)aad2len) != 1)
        return -EIO;
    if (n && EVP_CipherUpdate(x, out, &len, in, (int)n) != 1)
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

/* The AAD of a wrapped material: the prefix, then the key id for version 1
 * (as before versions existed, so those rows still open) and "ID/vN" for
 * later versions, so that a version's row cannot stand in for another's. */
static void material_label(const char *key_id, uint32_t version, char *out, size_t n)
{
    if (version <= 1)
        snprintf(out, n, "%s", key_id);
    else
        snprintf(out, n, "%s/v%u", key_id, (unsigned)version);
}

static int wrap_key(al_ctx *c, const char *key_id, uint32_t version,
                    const uint8_t material[AL_KEY_BYTES], uint8_t out[WRAPPED_LEN])
{
    char label[64];
    material_label(key_id, version, label, sizeof label);
    if (es_random_bytes(out, AL_KMS_IV_LEN) < 0)
        return -EIO;
    return gcm(true, c->master, out, (const uint8_t *)WRAP_AAD_PREFIX, strlen(WRAP_AAD_PREFIX),
               (const uint8_t *)label, strlen(label), material, AL_KEY_BYTES,
               out + AL_KMS_IV_LEN + AL_KMS_TAG_LEN, out + AL_KMS_IV_LEN);
}

/* ---- keys kept between reads ----
 *
 * A GetParameters of 10 SecureStrings read its key's row, read and unwrapped
 * its material and expanded it for AES-GCM once per request: two statements
 * and two key schedules, a fifth of the daemon's own CPU per request under wrk.
 * Read-only operations now keep what they loaded, per (region, key, material
 * version): the unwrapped material and its expanded decryption context, for
 * as long as the database stamp (db.h) is unchanged - any write (DisableKey,
 * ScheduleKeyDeletion, a rotation, a new key, but also any PutParameter)
 * drops them all before the next use, so a key's state is in force from the
 * next read on. A key is kept only after its row said usable and holding the
 * version; what else could change its use without a write - its deletion
 * date passing - only concerns keys pending deletion, which are never usable
 * and so never kept. The process holds the master key, which unwraps every
 * key, so keeping a few unwrapped adds no secret it did not hold; they are
 * still bounded (KEY_KEEP_SLOTS, round robin) and wiped when dropped, evicted
 * or at al_close (EVP_CIPHER_CTX_free cleanses the expanded schedule). */
#define KEY_KEEP_SLOTS 8

typedef struct key_keep_slot {
    bool used;
    char region[AW_REGION_MAX + 1];
    char id[AL_KEY_ID_LEN + 1];
    uint32_t version;
    uint8_t material[AL_KEY_BYTES];
    EVP_CIPHER_CTX *gcm; /* expanded for decryption on the first value; NULL before */
    bool gcm_ready;
    /* c->rq_seq + 1 when region was last found to be the request's (al_region
     * stays one string while rq_seq does not move): compared once a request,
     * not once a value; 0: not yet */
    uint64_t region_seq;
} key_keep_slot;

struct al_kms_keep {
    al_db_stamp stamp;
    unsigned next;
    unsigned last; /* the slot keep_find found last (tried first) */
    key_keep_slot slot[KEY_KEEP_SLOTS];
};

static void keep_slot_clear(key_keep_slot *k)
{
    if (!k->used)
        return;
    es_wipe(k->material, sizeof k->material);
    EVP_CIPHER_CTX_free(k->gcm); /* cleanses the key schedule */
    memset(k, 0, sizeof *k);
}

static void keep_clear(struct al_kms_keep *kk)
{
    for (size_t i = 0; i < KEY_KEEP_SLOTS; i++)
        keep_slot_clear(&kk->slot[i]);
}

void al_kms_keep_free(al_ctx *c)
{
    if (!c->kms_keep)
        return;
    keep_clear(c->kms_keep);
    es_free(c->kms_keep);
    c->kms_keep = NULL;
}

/* The kept keys when they may be used now (dropped first if the database
 * changed); NULL outside a read-only operation or without memory. */
static struct al_kms_keep *keep_of(al_ctx *c)
{
    if (!c->key_memo_on)
        return NULL;
    if (!c->kms_keep && !(c->kms_keep = es_calloc(1, sizeof *c->kms_keep)))
        return NULL;
    struct al_kms_keep *kk = c->kms_keep;
    /* renew: inside a read it compares counters, where al_db_stamp_now made
     * a whole stamp for every value opened */
    if (!al_db_stamp_renew(c->db, &kk->stamp)) {
        bool had = false;
        for (size_t i = 0; i < KEY_KEEP_SLOTS; i++)
            had = had || kk->slot[i].used;
        keep_clear(kk);
        if (had)
            c->cache_stats.flushes++;
    }
    return kk;
}

/* Is slot k material `version` of key_id (its AL_KEY_ID_LEN bytes, not
 * necessarily NUL-ended: a blob's header) in the request's region? */
static bool keep_is(const al_ctx *c, key_keep_slot *k, const char *key_id, uint32_t version)
{
    if (!k->used || k->version != version || memcmp(k->id, key_id, AL_KEY_ID_LEN) != 0)
        return false;
    if (k->region_seq == c->rq_seq + 1)
        return true;
    if (strcmp(k->region, al_region(c)) != 0)
        return false;
    k->region_seq = c->rq_seq + 1;
    return true;
}

/* key_id: AL_KEY_ID_LEN bytes (a kept id is that long: keep_put). The slot
 * found last is tried first: a GetParameters' values mostly share a key. */
static key_keep_slot *keep_find(al_ctx *c, const char *key_id, uint32_t version)
{
    struct al_kms_keep *kk = keep_of(c);
    if (!kk)
        return NULL;
    if (keep_is(c, &kk->slot[kk->last], key_id, version))
        return &kk->slot[kk->last];
    for (unsigned i = 0; i < KEY_KEEP_SLOTS; i++) {
        if (keep_is(c, &kk->slot[i], key_id, version)) {
            kk->last = i;
            return &kk->slot[i];
        }
    }
    return NULL;
}

/* Keeps a usable key's material (read, checked and unwrapped just now). */
static void keep_put(al_ctx *c, const char *key_id, uint32_t version,
                     const uint8_t material[AL_KEY_BYTES])
{
    struct al_kms_keep *kk = keep_of(c);
    const char *region = al_region(c);
    if (!kk || strlen(key_id) != AL_KEY_ID_LEN || strlen(region) > AW_REGION_MAX)
        return;
    key_keep_slot *k = &kk->slot[kk->next];
    kk->next = (kk->next + 1) % KEY_KEEP_SLOTS;
    keep_slot_clear(k);
    k->used = true;
    memcpy(k->region, region, strlen(region) + 1);
    memcpy(k->id, key_id, AL_KEY_ID_LEN + 1);
    k->version = version;
    memcpy(k->material, material, AL_KEY_BYTES);
    c->cache_stats.kms_key_loads++;
}

void al_kms_memo_begin(al_ctx *c)
{
    c->key_memo_on = true;
}

void al_kms_memo_end(al_ctx *c)
{
    c->key_memo_on = false;
}

/* Decrypts with a kept key, its expanded schedule made on the first value
 * and reused for every value after (10 per GetParameters). */
static int gcm_keep_decrypt(key_keep_slot *k, const uint8_t *iv, const uint8_t *aad1,
                            size_t aad1len, const uint8_t *aad2, size_t aad2len, const uint8_t *in,
                            size_t n, uint8_t *out, uint8_t *tag)
{
    if (!k->gcm && !(k->gcm = EVP_CIPHER_CTX_new()))
        return -ENOMEM;
    int r = gcm_on(k->gcm, false, k->gcm_ready ? NULL : k->material, iv, aad1, aad1len, aad2,
                   aad2len, in, n, out, tag);
    /* a failed init leaves no usable key: set it again next time */
    k->gcm_ready = r == 0 || r == -EBADMSG;
    return r;
}

/* What a key's row says. A key whose deletion date has passed is gone: it
 * is answered as missing (and removed by the next write, purge_deleted). */
typedef struct key_row {
    bool enabled;
    bool aws_managed;
    double deletion;         /* 0: not pending deletion */
    int64_t rotation_period; /* days; 0: rotation off */
    double rotation_next;
    uint32_t newest; /* the newest material version */
} key_row;

/* The key key_id of the request's region. 0, -ENOENT, -EIO. */
static int key_row_get(al_ctx *c, const char *key_id, key_row *k)
{
    sqlite3_stmt *st = al_db_prepare(
        c->db, "SELECT enabled, manager, deletion, rotation_period, rotation_next, "
               "(SELECT max(version) FROM kms_key_material m WHERE m.key_id=k.key_id) "
               "FROM kms_key k WHERE key_id=? AND region=? AND (deletion IS NULL OR deletion>?)");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, al_region(c), -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 3, al_now(c));
    int s = sqlite3_step(st), r = s == SQLITE_DONE ? -ENOENT : -EIO;
    if (s == SQLITE_ROW) {
        const char *m = (const char *)sqlite3_column_text(st, 1);
        *k = (key_row){.enabled = sqlite3_column_int(st, 0) != 0,
                       .aws_managed = m && strcmp(m, "AWS") == 0,
                       .deletion = sqlite3_column_double(st, 2),
                       .rotation_period = sqlite3_column_int64(st, 3),
                       .rotation_next = sqlite3_column_double(st, 4),
                       .newest = (uint32_t)sqlite3_column_int64(st, 5)};
        if (k->newest < 1)
            k->newest = 1;
        r = 0;
    }
    al_db_release(c->db, st);
    return r;
}

/* May the key be used for cryptography? -EKEYREVOKED pending deletion,
 * -EPERM disabled. */
static int key_usable(const key_row *k)
{
    if (k->deletion > 0)
        return -EKEYREVOKED;
    return k->enabled ? 0 : -EPERM;
}

/* Reads and unwraps one material version of a key. -ENOENT, -EIO. */
static int load_material(al_ctx *c, const char *key_id, uint32_t version,
                         uint8_t material[AL_KEY_BYTES])
{
    sqlite3_stmt *st =
        version <= 1
            ? al_db_prepare(c->db, "SELECT wrapped FROM kms_key WHERE key_id=?")
            : al_db_prepare(c->db,
                            "SELECT wrapped FROM kms_key_material WHERE key_id=? AND version=?");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
    if (version > 1)
        sqlite3_bind_int64(st, 2, version);
    int s = sqlite3_step(st), r = s == SQLITE_DONE ? -ENOENT : -EIO;
    const uint8_t *w = s == SQLITE_ROW ? sqlite3_column_blob(st, 0) : NULL;
    if (w && sqlite3_column_bytes(st, 0) == WRAPPED_LEN) {
        char label[64];
        uint8_t tag[AL_KMS_TAG_LEN];
        material_label(key_id, version, label, sizeof label);
        memcpy(tag, w + AL_KMS_IV_LEN, sizeof tag);
        r = gcm(false, c->master, w, (const uint8_t *)WRAP_AAD_PREFIX, strlen(WRAP_AAD_PREFIX),
                (const uint8_t *)label, strlen(label), w + AL_KMS_IV_LEN + AL_KMS_TAG_LEN,
                AL_KEY_BYTES, material, tag);
        if (r < 0) {
            es_wipe(material, AL_KEY_BYTES);
            r = -EIO; /* a wrapped key that fails to open is storage damage */
        }
    }
    al_db_release(c->db, st);
    return r;
}

/* Loads and unwraps material `version` of a usable key (key_id: its
 * AL_KEY_ID_LEN characters) of this region. -ENOENT, -EPERM (disabled), -EKEYREVOKED (pending
 * deletion), -EIO. */
static int load_key(al_ctx *c, const char *key_id, uint32_t version, uint8_t material[AL_KEY_BYTES])
{
    /* kept only after this key's row said usable and holding this
     * version, and dropped by any write since (keep_of) */
    key_keep_slot *kept = keep_find(c, key_id, version);
    if (kept) {
        memcpy(material, kept->material, AL_KEY_BYTES);
        return 0;
    }
    key_row k;
    int r = key_row_get(c, key_id, &k);
    if (r < 0 || (r = key_usable(&k)) < 0)
        return r;
    if (version > k.newest)
        return -ENOENT;
    r = load_material(c, key_id, version, material);
    if (r == 0)
        keep_put(c, key_id, version, material);
    return r;
}

/* Savepoints let a helper write atomically both alone and inside the
 * caller's transaction (SSM's PutParameter seals inside its own). */
static int sp_begin(al_ctx *c)
{
    return al_db_exec(c->db, "SAVEPOINT kms");
}

static int sp_end(al_ctx *c, int r)
{
    if (r < 0) {
        al_db_exec(c->db, "ROLLBACK TO kms");
        al_db_exec(c->db, "RELEASE kms");
        return r;
    }
    return al_db_exec(c->db, "RELEASE kms") < 0 ? -EIO : r;
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
    r = wrap_key(c, key_id, 1, material, wrapped);
    es_wipe(material, sizeof material);
    if (r < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(c->db, "INSERT INTO kms_key(key_id, description, manager, "
                                            "created, wrapped, region) VALUES (?,?,?,?,?,?)");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, description ? description : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, manager, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 4, al_now(c));
    sqlite3_bind_blob(st, 5, wrapped, sizeof wrapped, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, al_region(c), -1, SQLITE_STATIC);
    r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
    al_db_release(c->db, st);
    return r;
}

/* Adds material version `version` to a key (a rotation) and moves its next
 * scheduled rotation one period on. */
static int add_material(al_ctx *c, const char *key_id, uint32_t version, bool on_demand)
{
    uint8_t material[AL_KEY_BYTES], wrapped[WRAPPED_LEN];
    if (es_random_bytes(material, sizeof material) < 0)
        return -EIO;
    int r = wrap_key(c, key_id, version, material, wrapped);
    es_wipe(material, sizeof material);
    if (r < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(c->db, "INSERT INTO kms_key_material(key_id, version, "
                                            "wrapped, created, on_demand) VALUES (?,?,?,?,?)");
    if (!st)
        return -EIO;
    double now = al_now(c);
    sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, version);
    sqlite3_bind_blob(st, 3, wrapped, sizeof wrapped, SQLITE_STATIC);
    sqlite3_bind_double(st, 4, now);
    sqlite3_bind_int(st, 5, on_demand ? 1 : 0);
    r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
    al_db_release(c->db, st);
    if (r < 0 || on_demand)
        return r; /* an on-demand rotation leaves the schedule as it was (AWS) */
    st = al_db_prepare(c->db, "UPDATE kms_key SET rotation_next=rotation_next+"
                              "rotation_period*86400.0 WHERE key_id=? AND rotation_period>0");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
    r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
    al_db_release(c->db, st);
    return r;
}

/* Scheduled rotation, done lazily when the key encrypts: every period that
 * has passed since the last one adds one version (capped: a key unused for
 * years gets one new version per call until it has caught up). */
static int rotate_if_due(al_ctx *c, const char *key_id, key_row *k)
{
    if (k->rotation_period <= 0 || k->rotation_next <= 0 || k->rotation_next > al_now(c))
        return 0;
    int r = sp_begin(c) < 0 ? -EIO : 0;
    if (r == 0)
        r = sp_end(c, add_material(c, key_id, k->newest + 1, false));
    if (r == 0)
        k->newest++;
    return r;
}

static int insert_alias(al_ctx *c, const char *alias, const char *key_id)
{
    sqlite3_stmt *st = al_db_prepare(
        c->db, "INSERT INTO kms_alias(region, name, key_id, created, updated) VALUES (?,?,?,?,?)");
    if (!st)
        return -EIO;
    double now = al_now(c);
    sqlite3_bind_text(st, 1, al_region(c), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, alias, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, key_id, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 4, now);
    sqlite3_bind_double(st, 5, now);
    int s = sqlite3_step(st);
    al_db_release(c->db, st);
    if (s == SQLITE_CONSTRAINT_PRIMARYKEY || s == SQLITE_CONSTRAINT)
        return -EEXIST;
    return s == SQLITE_DONE ? 0 : -EIO;
}

/* The key an alias of this region points at (a key past its deletion date
 * leaves its alias dangling until purged: answered as missing). */
static int alias_target(al_ctx *c, const char *alias, char key_id[AL_KEY_ID_LEN + 1])
{
    sqlite3_stmt *st = al_db_prepare(
        c->db, "SELECT a.key_id FROM kms_alias a JOIN kms_key k ON k.key_id=a.key_id "
               "WHERE a.region=? AND a.name=? AND (k.deletion IS NULL OR k.deletion>?)");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, al_region(c), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, alias, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 3, al_now(c));
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

static int managed_index(const char *alias)
{
    for (size_t i = 0; i < sizeof managed_keys / sizeof managed_keys[0]; i++)
        if (strcmp(managed_keys[i].alias, alias) == 0)
            return (int)i;
    return -1;
}

/* The AWS managed key behind a managed alias of this region, made on first
 * use in the region (AWS makes them when a service first needs them; there
 * are ~45 regions, so not all at start). */
static int managed_target(al_ctx *c, const char *alias, char key_id[AL_KEY_ID_LEN + 1])
{
    int i = managed_index(alias);
    int r = alias_target(c, alias, key_id);
    if (r != -ENOENT || i < 0)
        return r;
    if (sp_begin(c) < 0)
        return -EIO;
    r = create_key(c, "AWS", managed_keys[i].description, key_id);
    if (r == 0)
        r = insert_alias(c, alias, key_id);
    return sp_end(c, r);
}

/* Removes the keys whose deletion date has passed (their aliases, policies,
 * tags and versions go with them: ON DELETE CASCADE). Run by the writes of
 * KMS; reads already answer such keys as missing. */
static int purge_deleted(al_ctx *c)
{
    sqlite3_stmt *st = al_db_prepare(c->db, "DELETE FROM kms_key WHERE deletion<=?");
    if (!st)
        return -EIO;
    sqlite3_bind_double(st, 1, al_now(c));
    int r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
    al_db_release(c->db, st);
    return r;
}

/* Rows written before KMS was regional (region '', migration 4) belong to
 * the home region: the migration is plain SQL and cannot know it. Runs at
 * every open; after the first it changes nothing. */
static int adopt_old_rows(al_ctx *c)
{
    sqlite3 *h = al_db_handle(c->db);
    const char *sql[] = {"UPDATE kms_key SET region=? WHERE region=''",
                         "UPDATE kms_alias SET region=? WHERE region=''"};
    for (size_t i = 0; i < 2; i++) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(h, sql[i], -1, &st, NULL) != SQLITE_OK) {
            sqlite3_finalize(st);
            return -EIO;
        }
        sqlite3_bind_text(st, 1, c->region, -1, SQLITE_STATIC);
        int s = sqlite3_step(st);
        sqlite3_finalize(st);
        if (s != SQLITE_DONE)
            return -EIO;
    }
    return 0;
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
    /* the home region's managed keys exist from the start (other regions'
     * on first use) */
    r = adopt_old_rows(c);
    for (size_t i = 0; r == 0 && i < sizeof managed_keys / sizeof managed_keys[0]; i++) {
        char id[AL_KEY_ID_LEN + 1];
        r = managed_target(c, managed_keys[i].alias, id);
    }
    if (r < 0) {
        snprintf(err, errlen, "creating the AWS managed KMS keys: %s",
                 sqlite3_errmsg(al_db_handle(c->db)));
        return -EIO;
    }
    return 0;
}

/* ---- references ---- */

/* A key id: 8-4-4-4-12 lower-case hex digits. The dashes are checked at
 * their places and the 32 digits through a table (once per value opened:
 * the per-character place test cost about 10 instructions a character). */
static bool is_uuid36(const char *s)
{
    static const bool hex[256] = {
        ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
        ['8'] = 1, ['9'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1};
    static const uint8_t group_end[5] = {8, 13, 18, 23, AL_KEY_ID_LEN};
    size_t i = 0;
    for (size_t g = 0; g < 5; g++) {
        for (; i < group_end[g]; i++)
            if (!hex[(unsigned char)s[i]])
                return false;
        if (g < 4 && s[i++] != '-')
            return false;
    }
    return true;
}

static bool is_uuid(const char *s)
{
    return strnlen(s, AL_KEY_ID_LEN + 1) == AL_KEY_ID_LEN && is_uuid36(s);
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

/* Is ref a KMS ARN ("arn:PARTITION:kms:...") of any known partition? */
static bool is_kms_arn(const char *ref)
{
    const char *p = ref + 4, *colon = strchr(p, ':');
    return colon && aw_partition_known(p, (size_t)(colon - p)) && strncmp(colon, ":kms:", 5) == 0;
}

/* The part after "arn:PARTITION:kms:REGION:ACCOUNT:" of an ARN of this
 * region and account; NULL for another region, partition or account (a
 * resource this region does not have). */
static const char *arn_local_part(al_ctx *c, const char *ref)
{
    char prefix[256];
    int n = snprintf(prefix, sizeof prefix, "arn:%s:kms:%s:%s:", al_partition(c), al_region(c),
                     c->account);
    if (n < 0 || (size_t)n >= sizeof prefix || strncmp(ref, prefix, (size_t)n) != 0)
        return NULL;
    return ref + n;
}

int al_kms_resolve(al_ctx *c, const char *ref, char key_id[AL_KEY_ID_LEN + 1])
{
    if (!ref || !*ref || strlen(ref) > AL_KMS_REF_MAX)
        return -EINVAL;
    const char *rest = ref;
    if (strncmp(ref, "arn:", 4) == 0) {
        if (!is_kms_arn(ref))
            return -EINVAL;
        if (!(rest = arn_local_part(c, ref)))
            return -ENOENT;
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
        return managed_target(c, rest, key_id);
    }
    if (!is_uuid(rest))
        return -EINVAL;
    key_row k;
    int r = key_row_get(c, rest, &k);
    if (r < 0)
        return r;
    memcpy(key_id, rest, AL_KEY_ID_LEN + 1);
    return 0;
}

/* How AWS names a missing key: always as an ARN of the request's region
 * ("Key 'arn:aws:kms:us-east-1:111122223333:key/...' does not exist"), an
 * ARN as given. */
static void missing_key_name(al_ctx *c, const char *ref, char *out, size_t n)
{
    if (strncmp(ref, "arn:", 4) == 0)
        snprintf(out, n, "%s", ref);
    else if (strncmp(ref, "alias/", 6) == 0)
        snprintf(out, n, "arn:%s:kms:%s:%s:%s", al_partition(c), al_region(c), c->account, ref);
    else
        snprintf(out, n, "arn:%s:kms:%s:%s:key/%s", al_partition(c), al_region(c), c->account, ref);
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
                       ref ? ref : "", al_region(c), c->account);
    if (r == -ENOENT) {
        char name[AL_KMS_REF_MAX + 128];
        missing_key_name(c, ref, name, sizeof name);
        if (strstr(ref, "alias/"))
            return al_fail(e, 400, code ? code : "NotFoundException", "Alias %s is not found.",
                           name);
        return al_fail(e, 400, code ? code : "NotFoundException", "Key '%s' does not exist", name);
    }
    return r;
}

void al_kms_key_arn(al_ctx *c, const char *key_id, char *out, size_t n)
{
    snprintf(out, n, "arn:%s:kms:%s:%s:key/%s", al_partition(c), al_region(c), c->account, key_id);
}

static void alias_arn_of(al_ctx *c, const char *alias, char *out, size_t n)
{
    snprintf(out, n, "arn:%s:kms:%s:%s:%s", al_partition(c), al_region(c), c->account, alias);
}

bool al_kms_is_aws_managed(al_ctx *c, const char *key_id)
{
    key_row k;
    return key_row_get(c, key_id, &k) == 0 && k.aws_managed;
}

int al_kms_usable(al_ctx *c, const char *key_id)
{
    key_row k;
    int r = key_row_get(c, key_id, &k);
    return r < 0 ? r : key_usable(&k);
}

void al_kms_reason(al_ctx *c, int r, const char *key_id, char *out, size_t n)
{
    char arn[256];
    al_kms_key_arn(c, key_id, arn, sizeof arn);
    if (r == -EKEYREVOKED)
        snprintf(out, n, "%s is pending deletion.", arn);
    else if (r == -EPERM)
        snprintf(out, n, "%s is disabled.", arn);
    else if (r == -ENOENT)
        snprintf(out, n, "Key '%s' does not exist", arn);
    else
        snprintf(out, n, "KMS could not use %s.", arn);
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
    /* room for all of it at once: one allocation per value opened, not one
     * per doubling (b's max still bounds it) */
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && strcmp(sorted[i].k, sorted[i - 1].k) == 0)
            return -EINVAL;
        total += 8 + strlen(sorted[i].k) + strlen(sorted[i].v);
    }
    int er = es_buf_expect(b, total);
    if (er < 0)
        return er;
    for (size_t i = 0; i < n; i++) {
        size_t kl = strlen(sorted[i].k), vl = strlen(sorted[i].v);
        int r;
        if ((r = put_len(b, kl)) < 0 || (r = es_buf_append(b, sorted[i].k, kl)) < 0 ||
            (r = put_len(b, vl)) < 0 || (r = es_buf_append(b, sorted[i].v, vl)) < 0)
            return r;
    }
    return 0;
}

/* The header of a blob: its key id, material version and length. Version 1
 * blobs (before rotation) name no material version: they were sealed with
 * material version 1. */
static int blob_header_raw(const uint8_t *blob, size_t bloblen, char key_id[AL_KEY_ID_LEN + 1],
                           uint32_t *version, size_t *hdr)
{
    if (bloblen < 2 || blob[1] != AL_KEY_ID_LEN)
        return -EBADMSG;
    if (blob[0] == AL_KMS_BLOB_VERSION) {
        *hdr = 2 + AL_KEY_ID_LEN;
        *version = 1;
    } else if (blob[0] == AL_KMS_BLOB_VERSION_ROTATED) {
        *hdr = 2 + AL_KEY_ID_LEN + 4;
        if (bloblen < *hdr)
            return -EBADMSG;
        const uint8_t *v = blob + 2 + AL_KEY_ID_LEN;
        *version = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
        if (*version < 2)
            return -EBADMSG;
    } else {
        return -EBADMSG;
    }
    if (bloblen < *hdr + AL_KMS_IV_LEN + AL_KMS_TAG_LEN)
        return -EBADMSG;
    memcpy(key_id, blob + 2, AL_KEY_ID_LEN);
    key_id[AL_KEY_ID_LEN] = '\0';
    return 0;
}

/* blob_header_raw with the key id checked (36 bytes: a NUL among them is
 * no hex digit). */
static int blob_header(const uint8_t *blob, size_t bloblen, char key_id[AL_KEY_ID_LEN + 1],
                       uint32_t *version, size_t *hdr)
{
    int r = blob_header_raw(blob, bloblen, key_id, version, hdr);
    if (r < 0)
        return r;
    return is_uuid36(key_id) ? 0 : -EBADMSG;
}

int al_kms_blob_key_id(const uint8_t *blob, size_t bloblen, char key_id[AL_KEY_ID_LEN + 1])
{
    uint32_t version;
    size_t hdr;
    return blob_header(blob, bloblen, key_id, &version, &hdr);
}

/* Writes a blob's header for material `version` into b; answers its length. */
static size_t put_header(uint8_t *b, const char *key_id, uint32_t version)
{
    b[0] = version <= 1 ? AL_KMS_BLOB_VERSION : AL_KMS_BLOB_VERSION_ROTATED;
    b[1] = AL_KEY_ID_LEN;
    memcpy(b + 2, key_id, AL_KEY_ID_LEN);
    if (version <= 1)
        return 2 + AL_KEY_ID_LEN;
    uint8_t *v = b + 2 + AL_KEY_ID_LEN;
    v[0] = (uint8_t)(version >> 24);
    v[1] = (uint8_t)(version >> 16);
    v[2] = (uint8_t)(version >> 8);
    v[3] = (uint8_t)version;
    return 2 + AL_KEY_ID_LEN + 4;
}

/* The newest material of a usable key (rotating first when a scheduled
 * rotation is due). */
static int newest_material(al_ctx *c, const char *key_id, uint8_t material[AL_KEY_BYTES],
                           uint32_t *version)
{
    key_row k;
    int r = key_row_get(c, key_id, &k);
    if (r < 0 || (r = key_usable(&k)) < 0 || (r = rotate_if_due(c, key_id, &k)) < 0)
        return r;
    *version = k.newest;
    return load_key(c, key_id, k.newest, material);
}

int al_kms_seal(al_ctx *c, const char *key_id, const al_kv *ctx, size_t nctx, const uint8_t *pt,
                size_t ptlen, uint8_t **blob, size_t *bloblen)
{
    if (ptlen > AL_KMS_SEAL_MAX)
        return -EMSGSIZE;
    if (!is_uuid(key_id))
        return -ENOENT;
    uint8_t material[AL_KEY_BYTES];
    uint32_t version = 1;
    es_buf aad;
    es_buf_init(&aad, AL_KMS_CONTEXT_MAX_BYTES + 4 * 2 * AL_KMS_CONTEXT_MAX_PAIRS);
    size_t total = 2 + AL_KEY_ID_LEN + 4 + AL_KMS_IV_LEN + AL_KMS_TAG_LEN + ptlen, hdr;
    uint8_t *b = NULL;
    int r = newest_material(c, key_id, material, &version);
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
    hdr = put_header(b, key_id, version);
    total = hdr + AL_KMS_IV_LEN + AL_KMS_TAG_LEN + ptlen;
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

/* AES-GCM-opens the blob's body with the kept key (its expanded schedule)
 * when there is one, else with material.
 * The AAD is the blob's header followed by the canonical context: given as
 * (aad1, aad2) - aad1 the header itself, or already both when the caller
 * joined them (aad2len 0: one AAD update instead of two, a provider call
 * fewer per value; GCM authenticates the concatenation either way). */
static int open_body(key_keep_slot *kept, const uint8_t *material, const uint8_t *blob, size_t hdr,
                     size_t n, const uint8_t *aad1, size_t aad1len, const uint8_t *aad2,
                     size_t aad2len, uint8_t *out)
{
    uint8_t tag[AL_KMS_TAG_LEN];
    memcpy(tag, blob + hdr + AL_KMS_IV_LEN, sizeof tag);
    if (kept)
        return gcm_keep_decrypt(kept, blob + hdr, aad1, aad1len, aad2, aad2len,
                                blob + hdr + AL_KMS_IV_LEN + AL_KMS_TAG_LEN, n, out, tag);
    return gcm(false, material, blob + hdr, aad1, aad1len, aad2, aad2len,
               blob + hdr + AL_KMS_IV_LEN + AL_KMS_TAG_LEN, n, out, tag);
}

/* The canonical context of one pair (SSM's PARAMETER_ARN: every value
 * GetParameters opens) into dst, without sorting or allocating; -ENOSPC when
 * it does not fit (then canon_context makes it). */
static int canon_one(const al_kv *kv, uint8_t *dst, size_t cap, size_t *len)
{
    size_t kl = strlen(kv->k), vl = strlen(kv->v);
    if (8 + kl + vl > cap || kl > UINT32_MAX || vl > UINT32_MAX)
        return -ENOSPC;
    uint8_t *d = dst;
    const size_t lens[2] = {kl, vl};
    const char *parts[2] = {kv->k, kv->v};
    for (int i = 0; i < 2; i++) {
        size_t l = lens[i];
        d[0] = (uint8_t)(l >> 24);
        d[1] = (uint8_t)(l >> 16);
        d[2] = (uint8_t)(l >> 8);
        d[3] = (uint8_t)l;
        memcpy(d + 4, parts[i], l);
        d += 4 + l;
    }
    *len = (size_t)(d - dst);
    return 0;
}

/* al_kms_unseal and al_kms_unseal_into: the plaintext into dst[0..cap) when
 * dst is given (-ENOSPC when it needs more), else into an es_malloc'ed *pt. */
static int unseal(al_ctx *c, const uint8_t *blob, size_t bloblen, const al_kv *ctx, size_t nctx,
                  uint8_t *dst, size_t cap, uint8_t **pt, size_t *ptlen,
                  char key_id[AL_KEY_ID_LEN + 1])
{
    char id[AL_KEY_ID_LEN + 1];
    /* written (and then wiped) only when no kept key opens the value: with
     * a kept key it holds nothing, and wiping it anyway was 10 of a
     * GetParameters' 34 explicit_bzero calls */
    uint8_t material[AL_KEY_BYTES];
    bool loaded = false;
    uint32_t version;
    size_t hdr;
    es_buf aad;
    /* the context is not secret; one pair (SSM's) is made here, on the
     * stack, after a copy of the blob's header: the whole AAD in one piece */
    uint8_t aad_one[512];
    const uint8_t *aad_bytes = aad_one;
    size_t aad_len = 0;
    bool joined = false;
    uint8_t *out = NULL;
    /* the key id is checked only when no kept key has it: a kept key's id
     * was checked when it was kept (36 bytes equal to it are as good), and
     * the 36-character check was 8 % of a value's open, 200 instructions) */
    int r = blob_header_raw(blob, bloblen, id, &version, &hdr);
    if (r < 0)
        return r;
    key_keep_slot *kept = keep_find(c, id, version);
    if (!kept && !is_uuid36(id))
        return -EBADMSG;
    es_buf_init(&aad, AL_KMS_CONTEXT_MAX_BYTES + 4 * 2 * AL_KMS_CONTEXT_MAX_PAIRS);
    size_t n = bloblen - hdr - AL_KMS_IV_LEN - AL_KMS_TAG_LEN;
    if (dst && n + 1 > cap)
        return -ENOSPC;
    if (kept) {
        c->cache_stats.kms_key_hits++;
    } else {
        loaded = true;
        if ((r = load_key(c, id, version, material)) < 0)
            goto out;
        kept = keep_find(c, id, version); /* kept just now, inside a read-only operation */
    }
    if (nctx == 1 && hdr < sizeof aad_one &&
        canon_one(ctx, aad_one + hdr, sizeof aad_one - hdr, &aad_len) == 0) {
        memcpy(aad_one, blob, hdr);
        aad_len += hdr;
        joined = true;
    } else {
        if (canon_context(ctx, nctx, &aad) < 0) {
            r = -EBADMSG;
            goto out;
        }
        aad_bytes = (const uint8_t *)es_buf_cstr(&aad);
        aad_len = aad.len;
    }
    uint8_t *into = dst;
    if (!into && !(into = out = es_malloc(n + 1))) {
        r = -ENOMEM;
        goto out;
    }
    r = joined ? open_body(kept, material, blob, hdr, n, aad_bytes, aad_len, NULL, 0, into)
               : open_body(kept, material, blob, hdr, n, blob, hdr, aad_bytes, aad_len, into);
    if (r < 0) {
        es_wipe(into, n + 1);
        goto out;
    }
    into[n] = 0;
    if (pt)
        *pt = out;
    *ptlen = n;
    if (key_id)
        memcpy(key_id, id, sizeof id);
    out = NULL;
out:
    if (loaded)
        es_wipe(material, sizeof material);
    es_buf_free(&aad);
    es_free(out);
    return r;
}

int al_kms_unseal(al_ctx *c, const uint8_t *blob, size_t bloblen, const al_kv *ctx, size_t nctx,
                  uint8_t **pt, size_t *ptlen, char key_id[AL_KEY_ID_LEN + 1])
{
    return unseal(c, blob, bloblen, ctx, nctx, NULL, 0, pt, ptlen, key_id);
}

int al_kms_unseal_into(al_ctx *c, const uint8_t *blob, size_t bloblen, const al_kv *ctx,
                       size_t nctx, uint8_t *buf, size_t cap, size_t *ptlen)
{
    if (!buf)
        return -EINVAL;
    return unseal(c, blob, bloblen, ctx, nctx, buf, cap, NULL, ptlen, NULL);
}

static int wrap_upto(al_ctx *c, const char *label, const uint8_t *pt, size_t ptlen, size_t max,
                     uint8_t **out, size_t *outlen);

int al_kms_wrap(al_ctx *c, const char *label, const uint8_t *pt, size_t ptlen, uint8_t **out,
                size_t *outlen)
{
    return wrap_upto(c, label, pt, ptlen, AL_KMS_PLAINTEXT_MAX, out, outlen);
}

int al_kms_wrap_large(al_ctx *c, const char *label, const uint8_t *pt, size_t ptlen, uint8_t **out,
                      size_t *outlen)
{
    return wrap_upto(c, label, pt, ptlen, AL_KMS_WRAP_LARGE_MAX, out, outlen);
}

static int wrap_upto(al_ctx *c, const char *label, const uint8_t *pt, size_t ptlen, size_t max,
                     uint8_t **out, size_t *outlen)
{
    if (ptlen > max)
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

static int parse_context_of(const es_json *req, const char *field, al_kv *kv, size_t *n,
                            al_error *e)
{
    const es_json *ec = es_json_get(req, field);
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

static int parse_context(const es_json *req, al_kv *kv, size_t *n, al_error *e)
{
    return parse_context_of(req, "EncryptionContext", kv, n, e);
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
        c->db,
        "SELECT description, manager, enabled, created, deletion FROM kms_key WHERE key_id=?");
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
    double deletion = sqlite3_column_double(st, 4);
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
    es_jw_kstr(w, "KeyState", deletion > 0 ? "PendingDeletion" : enabled ? "Enabled" : "Disabled");
    if (deletion > 0) {
        es_jw_key(w, "DeletionDate");
        es_jw_double(w, deletion);
    }
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
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT key_id FROM kms_key WHERE region=? AND "
                                            "key_id > ? AND (deletion IS NULL OR deletion>?) "
                                            "ORDER BY key_id LIMIT ?");
    if (!st)
        return al_fail_internal(e, "KMSInternalException");
    sqlite3_bind_text(st, 1, al_region(c), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, marker ? marker : "", -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 3, al_now(c));
    sqlite3_bind_int64(st, 4, limit + 1);
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
    alias_arn_of(c, alias, alias_arn, sizeof alias_arn);
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
                                            "WHERE region=? AND name > ? AND (?='' OR key_id=?) "
                                            "ORDER BY name LIMIT ?");
    if (!st)
        return al_fail_internal(e, "KMSInternalException");
    sqlite3_bind_text(st, 1, al_region(c), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, marker ? marker : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, limit + 1);
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
        alias_arn_of(c, name, arn, sizeof arn);
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

static int check_algorithm(const es_json *req, const char *field, al_error *e)
{
    const char *alg;
    if (!al_opt_str(req, field, &alg, e))
        return -EINVAL;
    if (alg && strcmp(alg, "SYMMETRIC_DEFAULT") != 0)
        return al_fail(e, 400, "InvalidKeyUsageException",
                       "%s %s is not valid for a symmetric key.", field, alg);
    return 0;
}

/* A key that may not be used, in KMS's codes and words. */
static int seal_fail(al_ctx *c, const char *key_id, int r, al_error *e)
{
    char why[512];
    if (r != -EPERM && r != -ENOENT && r != -EKEYREVOKED)
        return al_fail_internal(e, "KMSInternalException");
    al_kms_reason(c, r, key_id, why, sizeof why);
    return al_fail(e, 400,
                   r == -EPERM    ? "DisabledException"
                   : r == -ENOENT ? "NotFoundException"
                                  : "KMSInvalidStateException",
                   "%s", why);
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
        return seal_fail(c, id, r, e);
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
    if ((r = check_algorithm(req, "EncryptionAlgorithm", e)) < 0 ||
        (r = parse_context(req, kv, &nkv, e)) < 0)
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

/* GenerateDataKey's KeySpec / NumberOfBytes: the data key's length. */
static int data_key_length(const es_json *req, int64_t *nbytes, al_error *e)
{
    const char *spec;
    if (!al_opt_str(req, "KeySpec", &spec, e) ||
        !al_opt_int(req, "NumberOfBytes", 1, 1024, 0, nbytes, e))
        return -EINVAL;
    if (spec && *nbytes)
        return al_fail(e, 400, "ValidationException",
                       "Specify either KeySpec or NumberOfBytes, not both.");
    if (spec) {
        if (strcmp(spec, "AES_256") == 0)
            *nbytes = 32;
        else if (strcmp(spec, "AES_128") == 0)
            *nbytes = 16;
        else
            return al_fail(e, 400, "ValidationException",
                           "KeySpec must be AES_256 or AES_128, not '%s'.", spec);
    }
    if (!*nbytes)
        return al_fail(e, 400, "ValidationException",
                       "Please specify either number of bytes or key spec.");
    return 0;
}

/* GenerateDataKey and GenerateDataKeyWithoutPlaintext: one body, the
 * second leaves the plaintext key out of the answer. */
static int generate_data_key(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                             al_error *e, bool with_plaintext)
{
    char id[AL_KEY_ID_LEN + 1], arn[256];
    al_kv kv[AL_KMS_CONTEXT_MAX_PAIRS];
    size_t nkv;
    int64_t nbytes;
    int r;
    if ((r = data_key_length(req, &nbytes, e)) < 0 || (r = parse_context(req, kv, &nkv, e)) < 0)
        return r;
    if ((r = key_from_req(c, req, principal,
                          with_plaintext ? "kms:GenerateDataKey"
                                         : "kms:GenerateDataKeyWithoutPlaintext",
                          id, arn, sizeof arn, e)) < 0)
        return r;
    uint8_t dk[1024];
    if (es_random_bytes(dk, (size_t)nbytes) < 0)
        return al_fail_internal(e, "KMSInternalException");
    r = encrypt_and_answer(c, id, arn, kv, nkv, dk, (size_t)nbytes, with_plaintext, w, e);
    es_wipe(dk, sizeof dk);
    return r;
}

static int op_generate_data_key(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                                al_error *e)
{
    return generate_data_key(c, principal, req, w, e, true);
}

static int op_generate_data_key_without_plaintext(al_ctx *c, const char *principal,
                                                  const es_json *req, es_jw *w, al_error *e)
{
    return generate_data_key(c, principal, req, w, e, false);
}

static int op_generate_random(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                              al_error *e)
{
    int64_t n;
    const char *store;
    if (!al_opt_int(req, "NumberOfBytes", 1, 1024, 0, &n, e) ||
        !al_opt_str(req, "CustomKeyStoreId", &store, e))
        return -EINVAL;
    if (store)
        return al_fail(e, 400, "CustomKeyStoreNotFoundException",
                       "Custom key store '%.64s' does not exist.", store);
    if (!n)
        return al_fail(e, 400, "ValidationException", "NumberOfBytes is required.");
    int r = al_authorize(c, principal, "kms:GenerateRandom", "*", e);
    if (r < 0)
        return r;
    uint8_t rnd[1024];
    if (es_random_bytes(rnd, (size_t)n) < 0)
        return al_fail_internal(e, "KMSInternalException");
    es_jw_obj(w);
    es_jw_key(w, "Plaintext");
    al_jw_b64(w, rnd, (size_t)n);
    es_jw_obj_end(w);
    es_wipe(rnd, sizeof rnd);
    return 0;
}

/* A ciphertext of the request, opened: the blob named by blob_field, its
 * context in ctx_field, the key it must be under (key_field, optional),
 * authorised as action on its key. *pt is es_malloc'ed (wipe it); id and
 * arn receive the key. Decrypt and ReEncrypt's source. */
static int open_request_blob(al_ctx *c, const char *principal, const es_json *req,
                             const char *blob_field, const char *ctx_field, const char *key_field,
                             const char *action, uint8_t **pt, size_t *ptlen,
                             char id[AL_KEY_ID_LEN + 1], char arn[256], al_error *e)
{
    al_kv kv[AL_KMS_CONTEXT_MAX_PAIRS];
    size_t nkv;
    const char *blob64, *keyref;
    char want[AL_KEY_ID_LEN + 1];
    int r;
    if (!al_opt_str(req, blob_field, &blob64, e) || !al_opt_str(req, key_field, &keyref, e))
        return -EINVAL;
    if ((r = parse_context_of(req, ctx_field, kv, &nkv, e)) < 0)
        return r;
    if (!blob64)
        return al_fail(e, 400, "ValidationException", "%s is required.", blob_field);
    uint8_t *blob = NULL;
    size_t bloblen = 0;
    r = al_b64_decode(blob64, strlen(blob64), &blob, &bloblen);
    if (r == -ENOMEM)
        return al_fail_internal(e, "KMSInternalException");
    if (r < 0)
        return al_fail(e, 400, "InvalidCiphertextException", "%s is not valid base64.", blob_field);
    if (al_kms_blob_key_id(blob, bloblen, id) < 0)
        r = al_fail(e, 400, "InvalidCiphertextException",
                    "The ciphertext was not produced by this KMS.");
    else if (keyref && (r = al_kms_resolve_e(c, keyref, NULL, want, e)) == 0 &&
             strcmp(want, id) != 0)
        r = al_fail(e, 400, "IncorrectKeyException",
                    "The key ID in the request does not identify a CMK that can perform "
                    "this operation.");
    if (r == 0) {
        al_kms_key_arn(c, id, arn, 256);
        r = al_authorize(c, principal, action, arn, e);
    }
    if (r < 0) {
        es_free(blob);
        return r; /* e filled above */
    }
    r = al_kms_unseal(c, blob, bloblen, kv, nkv, pt, ptlen, NULL);
    es_free(blob);
    if (r == -EBADMSG || r == -ENOENT)
        /* a key of another region is not there: the blob cannot be opened */
        return al_fail(e, 400, "InvalidCiphertextException",
                       "The ciphertext is invalid, was altered, or does not match the "
                       "encryption context.");
    return r < 0 ? seal_fail(c, id, r, e) : 0;
}

static void free_plaintext(uint8_t *pt, size_t n)
{
    if (pt) {
        es_wipe(pt, n);
        es_free(pt);
    }
}

static int op_decrypt(al_ctx *c, const char *principal, const es_json *req, es_jw *w, al_error *e)
{
    char id[AL_KEY_ID_LEN + 1], arn[256];
    uint8_t *pt = NULL;
    size_t ptlen = 0;
    int r = check_algorithm(req, "EncryptionAlgorithm", e);
    if (r < 0 || (r = open_request_blob(c, principal, req, "CiphertextBlob", "EncryptionContext",
                                        "KeyId", "kms:Decrypt", &pt, &ptlen, id, arn, e)) < 0)
        return r;
    es_jw_obj(w);
    es_jw_kstr(w, "KeyId", arn);
    es_jw_key(w, "Plaintext");
    al_jw_b64(w, pt, ptlen);
    es_jw_kstr(w, "EncryptionAlgorithm", "SYMMETRIC_DEFAULT");
    es_jw_obj_end(w);
    free_plaintext(pt, ptlen);
    return 0;
}

/* Decrypts under the source key, encrypts under the destination key (and
 * context) without the plaintext leaving KMS. */
static int op_re_encrypt(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                         al_error *e)
{
    char sid[AL_KEY_ID_LEN + 1], sarn[256], did[AL_KEY_ID_LEN + 1], darn[256];
    al_kv kv[AL_KMS_CONTEXT_MAX_PAIRS];
    size_t nkv;
    const char *dref;
    int r;
    if (!al_opt_str(req, "DestinationKeyId", &dref, e))
        return -EINVAL;
    if ((r = check_algorithm(req, "SourceEncryptionAlgorithm", e)) < 0 ||
        (r = check_algorithm(req, "DestinationEncryptionAlgorithm", e)) < 0 ||
        (r = parse_context_of(req, "DestinationEncryptionContext", kv, &nkv, e)) < 0)
        return r;
    if (!dref)
        return al_fail(e, 400, "ValidationException", "DestinationKeyId is required.");
    if ((r = al_kms_resolve_e(c, dref, NULL, did, e)) < 0)
        return r;
    al_kms_key_arn(c, did, darn, sizeof darn);
    if ((r = al_authorize(c, principal, "kms:ReEncryptTo", darn, e)) < 0)
        return r;
    uint8_t *pt = NULL, *blob = NULL;
    size_t ptlen = 0, bloblen = 0;
    if ((r = open_request_blob(c, principal, req, "CiphertextBlob", "SourceEncryptionContext",
                               "SourceKeyId", "kms:ReEncryptFrom", &pt, &ptlen, sid, sarn, e)) < 0)
        return r;
    r = al_kms_seal(c, did, kv, nkv, pt, ptlen, &blob, &bloblen);
    free_plaintext(pt, ptlen);
    if (r < 0)
        return seal_fail(c, did, r, e);
    es_jw_obj(w);
    es_jw_key(w, "CiphertextBlob");
    al_jw_b64(w, blob, bloblen);
    es_jw_kstr(w, "SourceKeyId", sarn);
    es_jw_kstr(w, "KeyId", darn);
    es_jw_kstr(w, "SourceEncryptionAlgorithm", "SYMMETRIC_DEFAULT");
    es_jw_kstr(w, "DestinationEncryptionAlgorithm", "SYMMETRIC_DEFAULT");
    es_jw_obj_end(w);
    es_free(blob);
    return 0;
}

static int run_bound(al_ctx *c, const char *sql, const char *id, double d)
{
    sqlite3_stmt *st = al_db_prepare(c->db, sql);
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 2, d);
    int s = sqlite3_step(st);
    al_db_release(c->db, st);
    return s == SQLITE_DONE ? 0 : -EIO;
}

static void answer_empty(es_jw *w)
{
    es_jw_obj(w);
    es_jw_obj_end(w);
}

/* The key of KeyId for an administrative action: resolved, authorised,
 * its row read; refused when AWS managed (those are AWS's to manage) or,
 * unless pending_ok, pending deletion. */
static int admin_key(al_ctx *c, const char *principal, const es_json *req, const char *action,
                     bool pending_ok, char id[AL_KEY_ID_LEN + 1], char arn[256], key_row *k,
                     al_error *e)
{
    int r = key_from_req(c, req, principal, action, id, arn, 256, e);
    if (r < 0)
        return r;
    if ((r = key_row_get(c, id, k)) < 0)
        return seal_fail(c, id, r, e);
    if (k->aws_managed)
        return al_fail(e, 400, "UnsupportedOperationException",
                       "%s is an AWS managed key: %s is not allowed on it.", arn, action + 4);
    if (!pending_ok && k->deletion > 0)
        return seal_fail(c, id, -EKEYREVOKED, e);
    return 0;
}

static int set_enabled(al_ctx *c, const char *principal, const es_json *req, bool on, es_jw *w,
                       al_error *e)
{
    char id[AL_KEY_ID_LEN + 1], arn[256];
    key_row k;
    int r = key_from_req(c, req, principal, on ? "kms:EnableKey" : "kms:DisableKey", id, arn,
                         sizeof arn, e);
    if (r < 0)
        return r;
    if (al_kms_is_aws_managed(c, id))
        return al_fail(e, 400, "NotAuthorizedException",
                       "AWS managed keys cannot be enabled or disabled.");
    if ((r = key_row_get(c, id, &k)) < 0)
        return seal_fail(c, id, r, e);
    if (k.deletion > 0)
        return seal_fail(c, id, -EKEYREVOKED, e);
    if (run_bound(c, "UPDATE kms_key SET enabled=?2 WHERE key_id=?1", id, on ? 1 : 0) < 0)
        return al_fail_internal(e, "KMSInternalException");
    answer_empty(w);
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

/* ---- key deletion ---- */

static int op_schedule_key_deletion(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                                    al_error *e)
{
    char id[AL_KEY_ID_LEN + 1], arn[256];
    key_row k;
    int64_t days;
    if (!al_opt_int(req, "PendingWindowInDays", AL_KMS_PENDING_MIN, AL_KMS_PENDING_MAX,
                    AL_KMS_PENDING_MAX, &days, e))
        return -EINVAL;
    int r = admin_key(c, principal, req, "kms:ScheduleKeyDeletion", false, id, arn, &k, e);
    if (r < 0)
        return r;
    /* AWS deletes at the end of the day the window ends on */
    double when = al_now(c) + (double)days * 86400.0;
    if (purge_deleted(c) < 0 ||
        run_bound(c, "UPDATE kms_key SET deletion=?2, enabled=0 WHERE key_id=?1", id, when) < 0)
        return al_fail_internal(e, "KMSInternalException");
    es_jw_obj(w);
    es_jw_kstr(w, "KeyId", arn);
    es_jw_key(w, "DeletionDate");
    es_jw_double(w, when);
    es_jw_kstr(w, "KeyState", "PendingDeletion");
    es_jw_kint(w, "PendingWindowInDays", days);
    es_jw_obj_end(w);
    return 0;
}

/* Cancelling leaves the key Disabled, as AWS does: EnableKey uses it again. */
static int op_cancel_key_deletion(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                                  al_error *e)
{
    char id[AL_KEY_ID_LEN + 1], arn[256];
    key_row k;
    int r = admin_key(c, principal, req, "kms:CancelKeyDeletion", true, id, arn, &k, e);
    if (r < 0)
        return r;
    if (k.deletion <= 0)
        return al_fail(e, 400, "KMSInvalidStateException", "%s is not pending deletion.", arn);
    if (run_bound(c, "UPDATE kms_key SET deletion=NULL, enabled=0 WHERE key_id=?1", id, 0) < 0)
        return al_fail_internal(e, "KMSInternalException");
    es_jw_obj(w);
    es_jw_kstr(w, "KeyId", arn);
    es_jw_obj_end(w);
    return 0;
}

/* ---- tags ---- */

static int tag_count(al_ctx *c, const char *id, int64_t *n)
{
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT count(*) FROM kms_tag WHERE key_id=?");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int r = sqlite3_step(st) == SQLITE_ROW ? 0 : -EIO;
    *n = sqlite3_column_int64(st, 0);
    al_db_release(c->db, st);
    return r;
}

/* KMS's words for the shared tag rules (tags.h), as LocalStack's test_kms
 * snapshots recorded them against AWS. */
static int kms_tag_refuse(const al_tag_fault *f, al_error *e)
{
    const char *field = f->kind == AL_TAG_KEY_BAD ? "tagKey" : "tagValue";
    switch (f->kind) {
    case AL_TAG_NOT_LIST:
        return f->in_keys
                   ? al_fail(e, 400, "ValidationException",
                             "TagKeys is required (a list of strings).")
                   : al_fail(e, 400, "ValidationException", "Tags is required (a list of tags).");
    case AL_TAG_KEY_BAD:
    case AL_TAG_VALUE_BAD:
        if (f->in_keys)
            return al_fail(e, 400, "ValidationException",
                           "1 validation error detected: Value at 'tagKeys' failed to satisfy "
                           "constraint: Member must have length between 1 and %d",
                           AL_TAG_KEY_MAX);
        if (!f->text)
            return al_fail(e, 400, "ValidationException",
                           "Each tag needs a TagKey and a TagValue (strings).");
        if (!*f->text)
            return al_fail(e, 400, "ValidationException",
                           "1 validation error detected: Value '' at 'tags.%zu.member.%s' failed "
                           "to satisfy constraint: Member must have length greater than or equal "
                           "to 1",
                           f->index + 1, field);
        return al_fail(e, 400, "ValidationException",
                       "1 validation error detected: Value '%.300s' at 'tags.%zu.member.%s' "
                       "failed to satisfy constraint: Member must have length less than or equal "
                       "to %d",
                       f->text, f->index + 1, field,
                       f->kind == AL_TAG_KEY_BAD ? AL_TAG_KEY_MAX : AL_TAG_VALUE_MAX);
    case AL_TAG_RESERVED:
        return al_fail(e, 400, "TagException", "Tags beginning with aws: are reserved");
    case AL_TAG_DUPLICATE:
        return al_fail(e, 400, "TagException", "Duplicate tag keys");
    case AL_TAG_TOO_MANY:
        return al_fail(e, 400, "TagException", "Too many tags");
    default:
        return al_fail_internal(e, "KMSInternalException");
    }
}

static const al_tag_rules KMS_TAGS = {
    .key_field = "TagKey", .value_field = "TagValue", .duplicates = true, .refuse = kms_tag_refuse};

static int put_tag(al_ctx *c, const char *id, const char *k, const char *v)
{
    sqlite3_stmt *st =
        al_db_prepare(c->db, "INSERT OR REPLACE INTO kms_tag(key_id, key, value) VALUES (?,?,?)");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, k, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, v, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    al_db_release(c->db, st);
    return s == SQLITE_DONE ? 0 : -EIO;
}

/* Writes the tags in one transaction; more than AL_KMS_TAGS_MAX on the key
 * afterwards undoes them all. */
static int put_tags(al_ctx *c, const char *id, const es_json *tags, al_error *e)
{
    int64_t n = 0;
    if (al_db_begin(c->db) < 0)
        return al_fail_internal(e, "KMSInternalException");
    int r = 0;
    for (size_t i = 0; r == 0 && i < es_json_len(tags); i++) {
        const es_json *t = es_json_at(tags, i);
        if (put_tag(c, id, es_json_get_str(t, "TagKey"), es_json_get_str(t, "TagValue")) < 0)
            r = al_fail_internal(e, "KMSInternalException");
    }
    if (r == 0 && tag_count(c, id, &n) < 0)
        r = al_fail_internal(e, "KMSInternalException");
    if (r == 0)
        r = al_tags_total_check(n, &KMS_TAGS, e);
    if (r == 0 && al_db_commit(c->db) < 0)
        r = al_fail_internal(e, "KMSInternalException");
    if (r < 0)
        al_db_rollback(c->db);
    return r;
}

static int op_tag_resource(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                           al_error *e)
{
    char id[AL_KEY_ID_LEN + 1], arn[256];
    key_row k;
    const es_json *tags = es_json_get(req, "Tags");
    int r = al_tags_check(tags, SIZE_MAX, &KMS_TAGS, e); /* the 50 are counted after */
    if (r < 0)
        return r;
    r = admin_key(c, principal, req, "kms:TagResource", false, id, arn, &k, e);
    if (r < 0)
        return r;
    if ((r = put_tags(c, id, tags, e)) < 0)
        return r;
    answer_empty(w);
    return 0;
}

static int op_untag_resource(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                             al_error *e)
{
    char id[AL_KEY_ID_LEN + 1], arn[256];
    key_row k;
    const es_json *keys = es_json_get(req, "TagKeys");
    int r = al_tag_keys_check(keys, &KMS_TAGS, e);
    if (r < 0)
        return r;
    r = admin_key(c, principal, req, "kms:UntagResource", false, id, arn, &k, e);
    if (r < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(c->db, "DELETE FROM kms_tag WHERE key_id=? AND key=?");
    if (!st)
        return al_fail_internal(e, "KMSInternalException");
    for (size_t i = 0; r == 0 && i < es_json_len(keys); i++) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, es_json_as_str(es_json_at(keys, i)), -1, SQLITE_STATIC);
        r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
        sqlite3_reset(st);
    }
    al_db_release(c->db, st);
    if (r < 0)
        return al_fail_internal(e, "KMSInternalException");
    answer_empty(w);
    return 0;
}

static int op_list_resource_tags(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                                 al_error *e)
{
    char id[AL_KEY_ID_LEN + 1], arn[256];
    int64_t limit;
    const char *marker;
    if (!al_opt_int(req, "Limit", 1, AL_KMS_TAGS_MAX, AL_KMS_TAGS_MAX, &limit, e) ||
        !al_opt_str(req, "Marker", &marker, e))
        return -EINVAL;
    int r = key_from_req(c, req, principal, "kms:ListResourceTags", id, arn, sizeof arn, e);
    if (r < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(
        c->db, "SELECT key, value FROM kms_tag WHERE key_id=? AND key>? ORDER BY key LIMIT ?");
    if (!st)
        return al_fail_internal(e, "KMSInternalException");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, marker ? marker : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, limit + 1);
    es_jw_obj(w);
    es_jw_key(w, "Tags");
    es_jw_arr(w);
    char last[AL_TAG_KEY_MAX + 1] = "";
    bool more = false;
    for (int64_t n = 0; sqlite3_step(st) == SQLITE_ROW; n++) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        if ((more = n == limit))
            break;
        es_jw_obj(w);
        es_jw_kstr(w, "TagKey", k);
        es_jw_kstr(w, "TagValue", (const char *)sqlite3_column_text(st, 1));
        es_jw_obj_end(w);
        snprintf(last, sizeof last, "%s", k);
    }
    al_db_release(c->db, st);
    es_jw_arr_end(w);
    es_jw_kbool(w, "Truncated", more);
    if (more)
        es_jw_kstr(w, "NextMarker", last);
    es_jw_obj_end(w);
    return 0;
}

/* ---- aliases: update, delete ---- */

/* AliasName of the request: well formed and not AWS's. */
static int alias_from_req(al_ctx *c, const es_json *req, const char **alias, char *alias_arn,
                          size_t n, al_error *e)
{
    if (!al_opt_str(req, "AliasName", alias, e))
        return -EINVAL;
    if (!*alias)
        return al_fail(e, 400, "ValidationException", "AliasName is required.");
    if (!alias_name_ok(*alias))
        return al_fail(e, 400, "ValidationException",
                       "Alias name '%s' must begin with 'alias/' followed by letters, digits, "
                       "'/', '_' or '-', at most %d characters.",
                       *alias, AL_KMS_ALIAS_MAX);
    alias_arn_of(c, *alias, alias_arn, n);
    if (strncmp(*alias, "alias/aws/", 10) == 0)
        return al_fail(e, 400, "NotAuthorizedException",
                       "Alias names beginning with 'alias/aws/' are reserved for AWS managed "
                       "keys: %s cannot be changed.",
                       alias_arn);
    return 0;
}

/* The key the alias points at now, authorised for action. */
static int alias_current(al_ctx *c, const char *principal, const char *alias, const char *alias_arn,
                         const char *action, char id[AL_KEY_ID_LEN + 1], al_error *e)
{
    char arn[256];
    int r = alias_target(c, alias, id);
    if (r == -ENOENT)
        return al_fail(e, 400, "NotFoundException", "Alias %s is not found.", alias_arn);
    if (r < 0)
        return al_fail_internal(e, "KMSInternalException");
    al_kms_key_arn(c, id, arn, sizeof arn);
    if ((r = al_authorize(c, principal, action, alias_arn, e)) < 0)
        return r;
    return al_authorize(c, principal, action, arn, e);
}

static int op_update_alias(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                           al_error *e)
{
    const char *alias, *target;
    char alias_arn[512], old[AL_KEY_ID_LEN + 1], id[AL_KEY_ID_LEN + 1], arn[256];
    int r = alias_from_req(c, req, &alias, alias_arn, sizeof alias_arn, e);
    if (r < 0)
        return r;
    if (!al_opt_str(req, "TargetKeyId", &target, e))
        return -EINVAL;
    if (!target)
        return al_fail(e, 400, "ValidationException", "TargetKeyId is required.");
    if (strncmp(target, "alias/", 6) == 0 || strstr(target, ":alias/"))
        return al_fail(e, 400, "ValidationException",
                       "TargetKeyId must be a key id or key ARN, not an alias.");
    if ((r = al_kms_resolve_e(c, target, NULL, id, e)) < 0 ||
        (r = alias_current(c, principal, alias, alias_arn, "kms:UpdateAlias", old, e)) < 0)
        return r;
    if (al_kms_is_aws_managed(c, id))
        return al_fail(e, 400, "NotAuthorizedException",
                       "An alias cannot point to an AWS managed key.");
    al_kms_key_arn(c, id, arn, sizeof arn);
    if ((r = al_authorize(c, principal, "kms:UpdateAlias", arn, e)) < 0)
        return r;
    sqlite3_stmt *st =
        al_db_prepare(c->db, "UPDATE kms_alias SET key_id=?, updated=? WHERE region=? AND name=?");
    if (!st)
        return al_fail_internal(e, "KMSInternalException");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 2, al_now(c));
    sqlite3_bind_text(st, 3, al_region(c), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, alias, -1, SQLITE_STATIC);
    r = sqlite3_step(st) == SQLITE_DONE ? 0 : al_fail_internal(e, "KMSInternalException");
    al_db_release(c->db, st);
    if (r == 0)
        answer_empty(w);
    return r;
}

static int op_delete_alias(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                           al_error *e)
{
    const char *alias;
    char alias_arn[512], old[AL_KEY_ID_LEN + 1];
    int r = alias_from_req(c, req, &alias, alias_arn, sizeof alias_arn, e);
    if (r < 0 || (r = alias_current(c, principal, alias, alias_arn, "kms:DeleteAlias", old, e)) < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(c->db, "DELETE FROM kms_alias WHERE region=? AND name=?");
    if (!st)
        return al_fail_internal(e, "KMSInternalException");
    sqlite3_bind_text(st, 1, al_region(c), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, alias, -1, SQLITE_STATIC);
    r = sqlite3_step(st) == SQLITE_DONE ? 0 : al_fail_internal(e, "KMSInternalException");
    al_db_release(c->db, st);
    if (r == 0)
        answer_empty(w);
    return r;
}

/* ---- rotation ---- */

/* Rotation changes need a usable key (a disabled one: DisabledException). */
static int rotation_key(al_ctx *c, const char *principal, const es_json *req, const char *action,
                        char id[AL_KEY_ID_LEN + 1], char arn[256], key_row *k, al_error *e)
{
    int r = admin_key(c, principal, req, action, false, id, arn, k, e);
    if (r < 0)
        return r;
    if ((r = key_usable(k)) < 0)
        return seal_fail(c, id, r, e);
    return 0;
}

static int op_enable_key_rotation(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                                  al_error *e)
{
    char id[AL_KEY_ID_LEN + 1], arn[256];
    key_row k;
    int64_t days;
    if (!al_opt_int(req, "RotationPeriodInDays", AL_KMS_ROTATION_MIN, AL_KMS_ROTATION_MAX,
                    AL_KMS_ROTATION_DEFAULT, &days, e))
        return -EINVAL;
    int r = rotation_key(c, principal, req, "kms:EnableKeyRotation", id, arn, &k, e);
    if (r < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(
        c->db, "UPDATE kms_key SET rotation_period=?, rotation_next=? WHERE key_id=?");
    if (!st)
        return al_fail_internal(e, "KMSInternalException");
    sqlite3_bind_int64(st, 1, days);
    sqlite3_bind_double(st, 2, al_now(c) + (double)days * 86400.0);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
    r = sqlite3_step(st) == SQLITE_DONE ? 0 : al_fail_internal(e, "KMSInternalException");
    al_db_release(c->db, st);
    if (r == 0)
        answer_empty(w);
    return r;
}

static int op_disable_key_rotation(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                                   al_error *e)
{
    char id[AL_KEY_ID_LEN + 1], arn[256];
    key_row k;
    int r = rotation_key(c, principal, req, "kms:DisableKeyRotation", id, arn, &k, e);
    if (r < 0)
        return r;
    if (run_bound(c, "UPDATE kms_key SET rotation_period=NULL, rotation_next=NULL WHERE key_id=?1",
                  id, 0) < 0)
        return al_fail_internal(e, "KMSInternalException");
    answer_empty(w);
    return 0;
}

static int op_get_key_rotation_status(al_ctx *c, const char *principal, const es_json *req,
                                      es_jw *w, al_error *e)
{
    char id[AL_KEY_ID_LEN + 1], arn[256];
    key_row k;
    int r = key_from_req(c, req, principal, "kms:GetKeyRotationStatus", id, arn, sizeof arn, e);
    if (r < 0)
        return r;
    if ((r = key_row_get(c, id, &k)) < 0)
        return seal_fail(c, id, r, e);
    if (k.deletion > 0)
        return seal_fail(c, id, -EKEYREVOKED, e);
    es_jw_obj(w);
    es_jw_kstr(w, "KeyId", arn);
    es_jw_kbool(w, "KeyRotationEnabled", k.rotation_period > 0);
    if (k.rotation_period > 0) {
        es_jw_kint(w, "RotationPeriodInDays", k.rotation_period);
        es_jw_key(w, "NextRotationDate");
        es_jw_double(w, k.rotation_next);
    }
    es_jw_obj_end(w);
    return 0;
}

static int on_demand_count(al_ctx *c, const char *id, int64_t *n)
{
    sqlite3_stmt *st =
        al_db_prepare(c->db, "SELECT count(*) FROM kms_key_material WHERE key_id=? AND on_demand");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int r = sqlite3_step(st) == SQLITE_ROW ? 0 : -EIO;
    *n = sqlite3_column_int64(st, 0);
    al_db_release(c->db, st);
    return r;
}

static int op_rotate_key_on_demand(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                                   al_error *e)
{
    char id[AL_KEY_ID_LEN + 1], arn[256];
    key_row k;
    int64_t n = 0;
    int r = rotation_key(c, principal, req, "kms:RotateKeyOnDemand", id, arn, &k, e);
    if (r < 0)
        return r;
    if (on_demand_count(c, id, &n) < 0)
        return al_fail_internal(e, "KMSInternalException");
    if (n >= AL_KMS_ON_DEMAND_MAX)
        return al_fail(e, 400, "LimitExceededException",
                       "%s has been rotated on demand %d times, the most a key may be.", arn,
                       AL_KMS_ON_DEMAND_MAX);
    if (al_db_begin(c->db) < 0)
        return al_fail_internal(e, "KMSInternalException");
    if (add_material(c, id, k.newest + 1, true) < 0 || al_db_commit(c->db) < 0) {
        al_db_rollback(c->db);
        return al_fail_internal(e, "KMSInternalException");
    }
    es_jw_obj(w);
    es_jw_kstr(w, "KeyId", arn);
    es_jw_obj_end(w);
    return 0;
}

static int op_list_key_rotations(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                                 al_error *e)
{
    char id[AL_KEY_ID_LEN + 1], arn[256];
    int64_t limit, from = 0;
    const char *marker;
    if (!al_opt_int(req, "Limit", 1, 1000, 100, &limit, e) ||
        !al_opt_str(req, "Marker", &marker, e))
        return -EINVAL;
    if (marker && !al_number_token(marker, &from))
        return al_fail(e, 400, "InvalidMarkerException", "Invalid marker");
    int r = key_from_req(c, req, principal, "kms:ListKeyRotations", id, arn, sizeof arn, e);
    if (r < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT version, created, on_demand FROM "
                                            "kms_key_material WHERE key_id=? AND version>? "
                                            "ORDER BY version LIMIT ?");
    if (!st)
        return al_fail_internal(e, "KMSInternalException");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, limit + 1);
    es_jw_obj(w);
    es_jw_key(w, "Rotations");
    es_jw_arr(w);
    int64_t last = 0;
    bool more = false;
    for (int64_t n = 0; sqlite3_step(st) == SQLITE_ROW; n++) {
        if ((more = n == limit))
            break;
        last = sqlite3_column_int64(st, 0);
        es_jw_obj(w);
        es_jw_kstr(w, "KeyId", arn);
        es_jw_key(w, "RotationDate");
        es_jw_double(w, sqlite3_column_double(st, 1));
        es_jw_kstr(w, "RotationType", sqlite3_column_int(st, 2) ? "ON_DEMAND" : "AUTOMATIC");
        es_jw_obj_end(w);
    }
    al_db_release(c->db, st);
    es_jw_arr_end(w);
    es_jw_kbool(w, "Truncated", more);
    if (more) {
        char tok[32];
        snprintf(tok, sizeof tok, "%lld", (long long)last);
        es_jw_kstr(w, "NextMarker", tok);
    }
    es_jw_obj_end(w);
    return 0;
}

const al_op al_kms_ops[] = {
    {"CreateKey", op_create_key},
    {"DescribeKey", op_describe_key},
    {"ListKeys", op_list_keys},
    {"CreateAlias", op_create_alias},
    {"UpdateAlias", op_update_alias},
    {"DeleteAlias", op_delete_alias},
    {"ListAliases", op_list_aliases},
    {"Encrypt", op_encrypt},
    {"Decrypt", op_decrypt},
    {"ReEncrypt", op_re_encrypt},
    {"GenerateDataKey", op_generate_data_key},
    {"GenerateDataKeyWithoutPlaintext", op_generate_data_key_without_plaintext},
    {"GenerateRandom", op_generate_random},
    {"EnableKey", op_enable_key},
    {"DisableKey", op_disable_key},
    {"ScheduleKeyDeletion", op_schedule_key_deletion},
    {"CancelKeyDeletion", op_cancel_key_deletion},
    {"TagResource", op_tag_resource},
    {"UntagResource", op_untag_resource},
    {"ListResourceTags", op_list_resource_tags},
    {"EnableKeyRotation", op_enable_key_rotation},
    {"DisableKeyRotation", op_disable_key_rotation},
    {"GetKeyRotationStatus", op_get_key_rotation_status},
    {"RotateKeyOnDemand", op_rotate_key_on_demand},
    {"ListKeyRotations", op_list_key_rotations},
    /* key policies: aws/local/kms_policy.c */
    {"PutKeyPolicy", al_kms_put_key_policy},
    {"GetKeyPolicy", al_kms_get_key_policy},
    {"ListKeyPolicies", al_kms_list_key_policies},
    {NULL, NULL},
};

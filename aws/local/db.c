#include "aws/local/db.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"

/* Prepared statements kept for reuse, keyed by their SQL text (see
 * al_db_prepare). One entry is lent to one user at a time. */
typedef struct cached_stmt {
    char *sql;
    sqlite3_stmt *st;
    bool lent;
} cached_stmt;

struct al_db {
    sqlite3 *h;
    cached_stmt cache[AL_DB_STMT_CACHE];
    size_t ncache;
    bool reading; /* inside al_db_read_begin/_end */
    /* The read's BEGIN has run: it runs before the read's first statement
     * (al_db_prepare), not at al_db_read_begin, so a read answered from the
     * caches alone (a GetParameters of kept versions and decisions) runs no
     * BEGIN and no COMMIT (1.8 K instructions a request); see al_db_read_begin. */
    bool read_open;
    /* BEGIN DEFERRED and COMMIT, prepared once: run by every read that
     * reaches the database and every write, without the cache's look-up */
    sqlite3_stmt *begin_st, *commit_st;
    /* The pager's data version read once per read-only operation (al_db_stamp_now): it moves
     * only when another connection commits, which the exclusive lock excludes, and a read
     * operation's caches asked for it some 30 times (sqlite3_file_control, 200 instructions
     * each). Valid while reading and dv_known. */
    bool dv_known;
    unsigned dv;
    uint64_t rollbacks;    /* transactions rolled back (al_db_stamp) */
    al_db_failure failure; /* the first since al_db_failure_take; code 0: none */
};

/* Keeps the first failure of an operation: the ROLLBACK that follows it
 * succeeds and resets SQLite's own error code, and later statements' errors
 * are its consequences. Messages of SQLite name no bound value. */
static void note_failure(al_db *db, int code)
{
    if (db->failure.code || code == SQLITE_OK || code == SQLITE_ROW || code == SQLITE_DONE ||
        (code & 0xff) == SQLITE_CONSTRAINT) /* an answer of the logic ("exists"), not a fault */
        return;
    db->failure.code = code;
    snprintf(db->failure.message, sizeof db->failure.message, "%s", sqlite3_errmsg(db->h));
}

static void on_rollback(void *arg)
{
    ((al_db *)arg)->rollbacks++;
}

/* Each entry brings the schema from version i to i+1. Never edit a landed
 * migration: append a new one. */
static const char *const migrations[] = {
    /* 1: KMS, SSM, Secrets Manager */
    "CREATE TABLE kms_key ("
    " key_id TEXT PRIMARY KEY,"
    " description TEXT NOT NULL DEFAULT '',"
    " manager TEXT NOT NULL," /* AWS or CUSTOMER */
    " enabled INTEGER NOT NULL DEFAULT 1,"
    " created REAL NOT NULL,"
    " wrapped BLOB NOT NULL);" /* iv | tag | AES-256-GCM(master, material) */
    "CREATE TABLE kms_alias ("
    " name TEXT PRIMARY KEY,"
    " key_id TEXT NOT NULL REFERENCES kms_key(key_id),"
    " created REAL NOT NULL,"
    " updated REAL NOT NULL);"
    "CREATE TABLE ssm_param ("
    " canon TEXT PRIMARY KEY," /* name without the leading '/' of a one-level name */
    " name TEXT NOT NULL,"
    " version INTEGER NOT NULL," /* latest */
    " next_version INTEGER NOT NULL);"
    "CREATE TABLE ssm_version ("
    " canon TEXT NOT NULL REFERENCES ssm_param(canon) ON DELETE CASCADE,"
    " version INTEGER NOT NULL,"
    " type TEXT NOT NULL,"
    " value BLOB NOT NULL," /* String/StringList: text; SecureString: KMS blob */
    " key_id TEXT,"         /* SecureString: the key id (uuid) */
    " key_ref TEXT,"        /* SecureString: as the caller named the key */
    " description TEXT,"
    " allowed_pattern TEXT,"
    " tier TEXT NOT NULL,"
    " data_type TEXT NOT NULL,"
    " modified REAL NOT NULL,"
    " modified_user TEXT NOT NULL,"
    " PRIMARY KEY (canon, version));"
    "CREATE TABLE ssm_label ("
    " canon TEXT NOT NULL REFERENCES ssm_param(canon) ON DELETE CASCADE,"
    " label TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " PRIMARY KEY (canon, label));"
    "CREATE TABLE ssm_tag ("
    " canon TEXT NOT NULL REFERENCES ssm_param(canon) ON DELETE CASCADE,"
    " key TEXT NOT NULL, value TEXT NOT NULL,"
    " PRIMARY KEY (canon, key));"
    "CREATE TABLE sm_secret ("
    " arn TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " description TEXT,"
    " kms_key_ref TEXT," /* as given, NULL for the default key */
    " key_id TEXT NOT NULL,"
    " created REAL NOT NULL,"
    " changed REAL NOT NULL,"
    " accessed REAL,"
    " deletion REAL);" /* scheduled deletion date, NULL when live */
    "CREATE TABLE sm_version ("
    " arn TEXT NOT NULL REFERENCES sm_secret(arn) ON DELETE CASCADE,"
    " version_id TEXT NOT NULL,"
    " binary INTEGER NOT NULL,"
    " blob BLOB NOT NULL," /* KMS ciphertext of the value */
    " created REAL NOT NULL,"
    " PRIMARY KEY (arn, version_id));"
    "CREATE TABLE sm_stage ("
    " arn TEXT NOT NULL REFERENCES sm_secret(arn) ON DELETE CASCADE,"
    " stage TEXT NOT NULL,"
    " version_id TEXT NOT NULL,"
    " PRIMARY KEY (arn, stage));"
    "CREATE TABLE sm_tag ("
    " arn TEXT NOT NULL REFERENCES sm_secret(arn) ON DELETE CASCADE,"
    " key TEXT NOT NULL, value TEXT NOT NULL,"
    " PRIMARY KEY (arn, key));",
    /* 2: callers' access keys (secret wrapped by the master key), settings */
    "CREATE TABLE iam_access_key ("
    " akid TEXT PRIMARY KEY,"
    " wrapped BLOB NOT NULL," /* iv | tag | AES-256-GCM(master, secret) */
    " principal TEXT NOT NULL,"
    " status TEXT NOT NULL DEFAULT 'Active',"
    " created REAL NOT NULL);"
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    /* 3: embedded IAM (roles, inline and customer managed policies) and STS
     * sessions (aws/local/iam.h, sts.h). source: NULL for roles made through
     * the API, else the file under the roles directory that declares it. */
    "CREATE TABLE iam_role ("
    " name TEXT PRIMARY KEY COLLATE NOCASE,"
    " role_id TEXT NOT NULL UNIQUE,"
    " path TEXT NOT NULL,"
    " trust TEXT NOT NULL,"
    " description TEXT,"
    " max_session INTEGER NOT NULL,"
    " boundary TEXT," /* permissions boundary policy ARN */
    " created REAL NOT NULL,"
    " source TEXT);"
    "CREATE TABLE iam_role_policy ("
    " role TEXT NOT NULL COLLATE NOCASE REFERENCES iam_role(name) ON DELETE CASCADE,"
    " name TEXT NOT NULL COLLATE NOCASE,"
    " document TEXT NOT NULL,"
    " PRIMARY KEY (role, name));"
    "CREATE TABLE iam_policy ("
    " arn TEXT PRIMARY KEY,"
    " name TEXT NOT NULL COLLATE NOCASE UNIQUE,"
    " policy_id TEXT NOT NULL,"
    " path TEXT NOT NULL,"
    " description TEXT,"
    " document TEXT NOT NULL,"
    " created REAL NOT NULL);"
    "CREATE TABLE iam_role_attached ("
    " role TEXT NOT NULL COLLATE NOCASE REFERENCES iam_role(name) ON DELETE CASCADE,"
    " policy_arn TEXT NOT NULL,"
    " PRIMARY KEY (role, policy_arn));"
    "CREATE TABLE sts_session ("
    " akid TEXT PRIMARY KEY,"
    " wrapped BLOB NOT NULL,"    /* iv | tag | AES-256-GCM(master, secret) */
    " token_hash BLOB NOT NULL," /* SHA-256 of the session token */
    " principal TEXT NOT NULL,"  /* arn:aws:sts::ACCT:assumed-role/ROLE/SESSION */
    " role TEXT NOT NULL,"
    " role_id TEXT NOT NULL," /* a role deleted and made again is another role */
    " expires REAL NOT NULL,"
    " created REAL NOT NULL);"
    "CREATE TABLE kms_key_policy ("
    " key_id TEXT PRIMARY KEY REFERENCES kms_key(key_id) ON DELETE CASCADE,"
    " policy TEXT NOT NULL);" /* absent: the default key policy */
    "CREATE TABLE sm_resource_policy ("
    " arn TEXT PRIMARY KEY REFERENCES sm_secret(arn) ON DELETE CASCADE,"
    " policy TEXT NOT NULL);",
    /* 4: IAM users, groups (aws/local/iam_users.c): users with tags, inline
     * and attached policies; groups with theirs and their members. A user's
     * access keys are rows of iam_access_key naming it (user_name; NULL for
     * the administrator's key). sts_session.kind tells a role's session from
     * GetSessionToken's (kind 'user': role holds the user name and role_id
     * its user id, so a user deleted and made again is another user; 'root':
     * the account root). */
    "CREATE TABLE iam_user ("
    " name TEXT PRIMARY KEY COLLATE NOCASE,"
    " user_id TEXT NOT NULL UNIQUE,"
    " path TEXT NOT NULL,"
    " created REAL NOT NULL);"
    "CREATE TABLE iam_user_tag ("
    " user TEXT NOT NULL COLLATE NOCASE REFERENCES iam_user(name) ON DELETE CASCADE,"
    " key TEXT NOT NULL,"
    " value TEXT NOT NULL,"
    " PRIMARY KEY (user, key));"
    "CREATE TABLE iam_user_policy ("
    " user TEXT NOT NULL COLLATE NOCASE REFERENCES iam_user(name) ON DELETE CASCADE,"
    " name TEXT NOT NULL COLLATE NOCASE,"
    " document TEXT NOT NULL,"
    " PRIMARY KEY (user, name));"
    "CREATE TABLE iam_user_attached ("
    " user TEXT NOT NULL COLLATE NOCASE REFERENCES iam_user(name) ON DELETE CASCADE,"
    " policy_arn TEXT NOT NULL,"
    " PRIMARY KEY (user, policy_arn));"
    "CREATE TABLE iam_group ("
    " name TEXT PRIMARY KEY COLLATE NOCASE,"
    " group_id TEXT NOT NULL UNIQUE,"
    " path TEXT NOT NULL,"
    " created REAL NOT NULL);"
    "CREATE TABLE iam_group_policy ("
    " grp TEXT NOT NULL COLLATE NOCASE REFERENCES iam_group(name) ON DELETE CASCADE,"
    " name TEXT NOT NULL COLLATE NOCASE,"
    " document TEXT NOT NULL,"
    " PRIMARY KEY (grp, name));"
    "CREATE TABLE iam_group_attached ("
    " grp TEXT NOT NULL COLLATE NOCASE REFERENCES iam_group(name) ON DELETE CASCADE,"
    " policy_arn TEXT NOT NULL,"
    " PRIMARY KEY (grp, policy_arn));"
    "CREATE TABLE iam_group_member ("
    " grp TEXT NOT NULL COLLATE NOCASE REFERENCES iam_group(name) ON DELETE CASCADE,"
    " user TEXT NOT NULL COLLATE NOCASE REFERENCES iam_user(name) ON DELETE CASCADE,"
    " PRIMARY KEY (grp, user));"
    "CREATE INDEX iam_group_member_user ON iam_group_member(user);"
    "ALTER TABLE iam_access_key ADD COLUMN user_name TEXT;"
    "CREATE INDEX iam_access_key_user ON iam_access_key(user_name);"
    "ALTER TABLE sts_session ADD COLUMN kind TEXT NOT NULL DEFAULT 'role';",
    /* 5: regional SSM Parameter Store (aws/local/ssm.h). Every table is keyed
     * by (region, canon): the same name in two regions is two parameters.
     * The parameter row also carries its policies (PutParameter's Policies,
     * normalised JSON array; NULL: none) and the Expiration policy's time
     * (NULL: none), which the lazy sweep deletes by. Rows of the older schema
     * move here with region '' and al_ssm_adopt_home (run by al_open right
     * after the migrations) gives them the home region: the migration is
     * plain SQL and does not know it. The children's foreign keys cascade on
     * update, so that one UPDATE of ssm_param moves a parameter whole. The
     * new tables are built beside the old ones (children dropped before
     * their parent, so no cascade fires), then renamed: SQLite rewrites the
     * children's REFERENCES clauses to the parent's final name. */
    "CREATE TABLE ssm_param_r ("
    " region TEXT NOT NULL,"
    " canon TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " next_version INTEGER NOT NULL,"
    " policies TEXT,"
    " expires REAL,"
    " PRIMARY KEY (region, canon));"
    "INSERT INTO ssm_param_r(region, canon, name, version, next_version)"
    " SELECT '', canon, name, version, next_version FROM ssm_param;"
    "CREATE TABLE ssm_version_r ("
    " region TEXT NOT NULL,"
    " canon TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " type TEXT NOT NULL,"
    " value BLOB NOT NULL,"
    " key_id TEXT,"
    " key_ref TEXT,"
    " description TEXT,"
    " allowed_pattern TEXT,"
    " tier TEXT NOT NULL,"
    " data_type TEXT NOT NULL,"
    " modified REAL NOT NULL,"
    " modified_user TEXT NOT NULL,"
    " PRIMARY KEY (region, canon, version),"
    " FOREIGN KEY (region, canon) REFERENCES ssm_param_r(region, canon)"
    "  ON DELETE CASCADE ON UPDATE CASCADE);"
    "INSERT INTO ssm_version_r SELECT '', canon, version, type, value, key_id, key_ref,"
    " description, allowed_pattern, tier, data_type, modified, modified_user FROM ssm_version;"
    "CREATE TABLE ssm_label_r ("
    " region TEXT NOT NULL,"
    " canon TEXT NOT NULL,"
    " label TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " PRIMARY KEY (region, canon, label),"
    " FOREIGN KEY (region, canon) REFERENCES ssm_param_r(region, canon)"
    "  ON DELETE CASCADE ON UPDATE CASCADE);"
    "INSERT INTO ssm_label_r SELECT '', canon, label, version FROM ssm_label;"
    "CREATE TABLE ssm_tag_r ("
    " region TEXT NOT NULL,"
    " canon TEXT NOT NULL,"
    " key TEXT NOT NULL, value TEXT NOT NULL,"
    " PRIMARY KEY (region, canon, key),"
    " FOREIGN KEY (region, canon) REFERENCES ssm_param_r(region, canon)"
    "  ON DELETE CASCADE ON UPDATE CASCADE);"
    "INSERT INTO ssm_tag_r SELECT '', canon, key, value FROM ssm_tag;"
    "DROP TABLE ssm_tag; DROP TABLE ssm_label; DROP TABLE ssm_version; DROP TABLE ssm_param;"
    "ALTER TABLE ssm_param_r RENAME TO ssm_param;"
    "ALTER TABLE ssm_version_r RENAME TO ssm_version;"
    "ALTER TABLE ssm_label_r RENAME TO ssm_label;"
    "ALTER TABLE ssm_tag_r RENAME TO ssm_tag;"
    "CREATE INDEX ssm_param_expires ON ssm_param(expires) WHERE expires IS NOT NULL;",
    /* 6: regional Secrets Manager (aws/local/secretsmanager.h). sm_secret
     * gains region (a name is unique per region, not globally), the rotation
     * settings and state, and primary_region (a replica's primary; NULL for
     * a primary). Existing rows get the region their ARN names: every one was
     * made in the home region of its day and its ARN says which, so the
     * migration needs no C step and a row can never disagree with its own
     * ARN. The children stay keyed by the ARN, which names the region (a
     * surrogate key unique across regions). SQLite cannot drop a UNIQUE
     * constraint in place, so the tables are rebuilt; foreign_keys is on and
     * cannot change inside the migration's transaction, so the children are
     * copied to new tables and dropped before the parent (whose DROP would
     * otherwise cascade into them), and the renames rewrite the children's
     * REFERENCES sm_secret_new to sm_secret. */
    "CREATE TABLE sm_secret_new ("
    " arn TEXT PRIMARY KEY,"
    " region TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " description TEXT,"
    " kms_key_ref TEXT,"
    " key_id TEXT NOT NULL,"
    " created REAL NOT NULL,"
    " changed REAL NOT NULL,"
    " accessed REAL,"
    " deletion REAL,"
    " rotation_enabled INTEGER NOT NULL DEFAULT 0,"
    " rotation_lambda TEXT,"   /* RotationLambdaARN, NULL: the built-in rotator */
    " rotation_days INTEGER,"  /* RotationRules.AutomaticallyAfterDays */
    " rotation_schedule TEXT," /* RotationRules.ScheduleExpression */
    " rotation_window TEXT,"   /* RotationRules.Duration */
    " last_rotated REAL,"
    " next_rotation REAL,"
    " rotation_failure TEXT," /* why the last rotation failed, NULL when it did not */
    " primary_region TEXT,"
    " UNIQUE (region, name));"
    "INSERT INTO sm_secret_new(arn, region, name, description, kms_key_ref, key_id, created,"
    " changed, accessed, deletion)"
    " SELECT arn, substr(substr(arn, instr(arn, ':secretsmanager:') + 16), 1,"
    " instr(substr(arn, instr(arn, ':secretsmanager:') + 16), ':') - 1),"
    " name, description, kms_key_ref, key_id, created, changed, accessed, deletion"
    " FROM sm_secret;"
    "CREATE TABLE sm_version_new ("
    " arn TEXT NOT NULL REFERENCES sm_secret_new(arn) ON DELETE CASCADE,"
    " version_id TEXT NOT NULL,"
    " binary INTEGER NOT NULL,"
    " blob BLOB NOT NULL,"
    " created REAL NOT NULL,"
    " PRIMARY KEY (arn, version_id));"
    "INSERT INTO sm_version_new SELECT arn, version_id, binary, blob, created FROM sm_version;"
    "CREATE TABLE sm_stage_new ("
    " arn TEXT NOT NULL REFERENCES sm_secret_new(arn) ON DELETE CASCADE,"
    " stage TEXT NOT NULL,"
    " version_id TEXT NOT NULL,"
    " PRIMARY KEY (arn, stage));"
    "INSERT INTO sm_stage_new SELECT arn, stage, version_id FROM sm_stage;"
    "CREATE TABLE sm_tag_new ("
    " arn TEXT NOT NULL REFERENCES sm_secret_new(arn) ON DELETE CASCADE,"
    " key TEXT NOT NULL, value TEXT NOT NULL,"
    " PRIMARY KEY (arn, key));"
    "INSERT INTO sm_tag_new SELECT arn, key, value FROM sm_tag;"
    "CREATE TABLE sm_resource_policy_new ("
    " arn TEXT PRIMARY KEY REFERENCES sm_secret_new(arn) ON DELETE CASCADE,"
    " policy TEXT NOT NULL);"
    "INSERT INTO sm_resource_policy_new SELECT arn, policy FROM sm_resource_policy;"
    "DROP TABLE sm_resource_policy;"
    "DROP TABLE sm_tag;"
    "DROP TABLE sm_stage;"
    "DROP TABLE sm_version;"
    "DROP TABLE sm_secret;"
    "ALTER TABLE sm_secret_new RENAME TO sm_secret;"
    "ALTER TABLE sm_version_new RENAME TO sm_version;"
    "ALTER TABLE sm_stage_new RENAME TO sm_stage;"
    "ALTER TABLE sm_tag_new RENAME TO sm_tag;"
    "ALTER TABLE sm_resource_policy_new RENAME TO sm_resource_policy;",
    /* 7: regional KMS (aws/local/kms.c). A key lives in one region; its id
     * is a random UUID, unique in every region as in AWS, so kms_key keeps
     * key_id as its key and gains a region column that every lookup
     * matches (no rebuild: dropping kms_key would cascade into
     * kms_key_policy). Aliases are per region: rebuilt keyed (region, name).
     * Rows of older versions get region '' here and the home region in
     * al_kms_init (the migration is plain SQL and does not know it).
     * Also: pending deletion (deletion date), rotation (period in days,
     * next date), material versions after the first (the first stays in
     * kms_key.wrapped), and tags. */
    "ALTER TABLE kms_key ADD COLUMN region TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE kms_key ADD COLUMN deletion REAL;"           /* NULL: not pending deletion */
    "ALTER TABLE kms_key ADD COLUMN rotation_period INTEGER;" /* days; NULL: no rotation */
    "ALTER TABLE kms_key ADD COLUMN rotation_next REAL;"
    "CREATE INDEX kms_key_by_region ON kms_key(region, key_id);"
    "CREATE TABLE kms_alias_regional ("
    " region TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " key_id TEXT NOT NULL REFERENCES kms_key(key_id) ON DELETE CASCADE,"
    " created REAL NOT NULL,"
    " updated REAL NOT NULL,"
    " PRIMARY KEY (region, name));"
    "INSERT INTO kms_alias_regional SELECT '', name, key_id, created, updated FROM kms_alias;"
    "DROP TABLE kms_alias;"
    "ALTER TABLE kms_alias_regional RENAME TO kms_alias;"
    "CREATE TABLE kms_key_material ("
    " key_id TEXT NOT NULL REFERENCES kms_key(key_id) ON DELETE CASCADE,"
    " version INTEGER NOT NULL," /* 2, 3, ...: version 1 is kms_key.wrapped */
    " wrapped BLOB NOT NULL,"    /* iv | tag | AES-256-GCM(master, material) */
    " created REAL NOT NULL,"
    " on_demand INTEGER NOT NULL,"
    " PRIMARY KEY (key_id, version));"
    "CREATE TABLE kms_tag ("
    " key_id TEXT NOT NULL REFERENCES kms_key(key_id) ON DELETE CASCADE,"
    " key TEXT NOT NULL, value TEXT NOT NULL,"
    " PRIMARY KEY (key_id, key));",
    /* 8: Secrets Manager replication (aws/local/secretsmanager.c). A
     * replica is an sm_secret row of its own region (primary_region set,
     * migration 6); what the primary keeps is this list of the regions it
     * replicates to, with the key asked for and the outcome, because a
     * Failed region has no replica row to hold them (its name is another
     * secret's there). Keyed by the primary's ARN: removing the primary
     * removes its list. */
    "CREATE TABLE sm_replica ("
    " arn TEXT NOT NULL REFERENCES sm_secret(arn) ON DELETE CASCADE,"
    " region TEXT NOT NULL,"
    " kms_key_ref TEXT,"     /* the KmsKeyId asked for; NULL: alias/aws/secretsmanager */
    " status TEXT NOT NULL," /* InSync or Failed */
    " status_message TEXT,"  /* why Failed; NULL when InSync */
    " PRIMARY KEY (arn, region));",
    /* 9: the embedded S3 subset (aws/local/s3.c, issue 20). Bucket names
     * are global, as in S3; a bucket lives in the region it was made in.
     * An object's content is sealed under the host master key with its
     * bucket and key bound in (never in clear on disk); its size and ETag
     * (the MD5 of the content, as S3's for a single PUT) are metadata. */
    "CREATE TABLE s3_bucket ("
    " name TEXT PRIMARY KEY,"
    " region TEXT NOT NULL,"
    " created REAL NOT NULL,"
    " policy TEXT);" /* the bucket policy's JSON; NULL: none */
    "CREATE TABLE s3_object ("
    " bucket TEXT NOT NULL REFERENCES s3_bucket(name) ON DELETE CASCADE,"
    " key TEXT NOT NULL,"
    " sealed BLOB NOT NULL," /* iv | tag | AES-256-GCM(master, content) */
    " size INTEGER NOT NULL,"
    " etag TEXT NOT NULL,"
    " content_type TEXT NOT NULL,"
    " modified REAL NOT NULL,"
    " PRIMARY KEY (bucket, key));",
};

#define NMIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

int al_db_schema_version(void)
{
    return NMIGRATIONS;
}

static void seterr(char *err, size_t errlen, const char *what, sqlite3 *h)
{
    if (err && errlen)
        snprintf(err, errlen, "%s: %s", what, h ? sqlite3_errmsg(h) : "out of memory");
}

int al_db_exec(al_db *db, const char *sql)
{
    int rc = sqlite3_exec(db->h, sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        return 0;
    note_failure(db, sqlite3_extended_errcode(db->h));
    return -EIO;
}

bool al_db_failure_take(al_db *db, al_db_failure *out)
{
    if (!db->failure.code)
        return false;
    if (out)
        *out = db->failure;
    memset(&db->failure, 0, sizeof db->failure);
    return true;
}

int al_db_file_version(al_db *db)
{
    sqlite3_stmt *st = NULL;
    int v = -1;
    if (sqlite3_prepare_v2(db->h, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int migrate(al_db *db, int upto, char *err, size_t errlen)
{
    int have = al_db_file_version(db);
    if (have < 0) {
        seterr(err, errlen, "reading the schema version", db->h);
        return -EIO;
    }
    if (have > NMIGRATIONS) {
        if (err && errlen)
            snprintf(err, errlen, "database schema version %d is newer than this program's (%d)",
                     have, NMIGRATIONS);
        return -EPROTO;
    }
    for (int v = have; v < upto; v++) {
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v + 1);
        if (al_db_exec(db, "BEGIN IMMEDIATE") < 0) {
            seterr(err, errlen, "starting a migration", db->h);
            return -EIO;
        }
        if (al_db_exec(db, migrations[v]) < 0 || al_db_exec(db, pragma) < 0) {
            seterr(err, errlen, "applying a schema migration", db->h);
            al_db_exec(db, "ROLLBACK");
            return -EIO;
        }
        if (al_db_exec(db, "COMMIT") < 0) {
            seterr(err, errlen, "committing a migration", db->h);
            al_db_exec(db, "ROLLBACK");
            return -EIO;
        }
    }
    return 0;
}

int al_db_open(const char *path, al_db **out, char *err, size_t errlen)
{
    return al_db_open_at(path, NMIGRATIONS, out, err, errlen);
}

int al_db_open_at(const char *path, int version, al_db **out, char *err, size_t errlen)
{
    if (version < 0 || version > NMIGRATIONS)
        return -EINVAL;
    int r = -EIO;
    al_db *db = es_calloc(1, sizeof *db);
    if (!db)
        return -ENOMEM;
    /* Create the file ourselves so that its mode is 0600 whatever the umask. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        r = -errno;
        if (err && errlen)
            snprintf(err, errlen, "opening %s: %s", path, strerror(-r));
        goto out;
    }
    (void)fchmod(fd, 0600);
    close(fd);
    if (sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        seterr(err, errlen, "opening the database", db->h);
        goto out;
    }
    sqlite3_busy_timeout(db->h, AL_DB_BUSY_TIMEOUT_MS);
    /* explicit ROLLBACKs and the ones SQLite makes after an error */
    sqlite3_rollback_hook(db->h, on_rollback, db);
    sqlite3_extended_result_codes(db->h, 1);
    /* journal_mode answers a row; sqlite3_exec discards it. locking_mode
     * first: WAL entered in exclusive mode keeps its index in heap memory
     * (no -shm file, no shared-memory locks). */
    if (al_db_exec(db, "PRAGMA locking_mode=EXCLUSIVE") < 0 ||
        al_db_exec(db, "PRAGMA journal_mode=WAL") < 0 ||
        al_db_exec(db, "PRAGMA synchronous=FULL") < 0 ||
        al_db_exec(db, "PRAGMA foreign_keys=ON") < 0 ||
        al_db_exec(db, "PRAGMA secure_delete=ON") < 0) {
        seterr(err, errlen, "configuring the database", db->h);
        if ((sqlite3_errcode(db->h) & 0xff) == SQLITE_BUSY) {
            r = -EBUSY;
            if (err && errlen)
                snprintf(err, errlen,
                         "%s is in use by another process (another ecs-secrets-agent on the same "
                         "state directory?)",
                         path);
        }
        goto out;
    }
    r = migrate(db, version, err, errlen);
    if (r < 0)
        goto out;
    *out = db;
    db = NULL;
    r = 0;
out:
    al_db_close(db);
    return r;
}

void al_db_close(al_db *db)
{
    if (!db)
        return;
    for (size_t i = 0; i < db->ncache; i++) {
        sqlite3_finalize(db->cache[i].st);
        es_free(db->cache[i].sql);
    }
    sqlite3_finalize(db->begin_st);
    sqlite3_finalize(db->commit_st);
    sqlite3_close_v2(db->h);
    es_free(db);
}

sqlite3 *al_db_handle(al_db *db)
{
    return db->h;
}

int al_db_begin(al_db *db)
{
    /* a write inside a read-only operation: the read snapshot ends first */
    if (db->reading) {
        db->reading = false;
        db->read_open = false;
        if (sqlite3_get_autocommit(db->h) == 0 && al_db_commit(db) < 0)
            return -EIO;
    }
    return al_db_exec(db, "BEGIN IMMEDIATE");
}

/* A statement without rows or parameters, prepared once into *kept and run:
 * BEGIN and COMMIT. 0 or -EIO. */
static int run_kept(al_db *db, sqlite3_stmt **kept, const char *sql)
{
    if (!*kept &&
        sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, kept, NULL) != SQLITE_OK) {
        note_failure(db, sqlite3_extended_errcode(db->h));
        sqlite3_finalize(*kept);
        *kept = NULL;
        return -EIO;
    }
    int s = sqlite3_step(*kept);
    note_failure(db, sqlite3_reset(*kept));
    return s == SQLITE_DONE ? 0 : -EIO;
}

/* The read's BEGIN, before its first statement. What it gives is one
 * snapshot and one set of WAL read locks for all of the operation's
 * statements; a read whose answers all come from the caches runs none, and
 * its caches' stamps are what they would be inside a transaction: the
 * connection holds the file exclusively (locking_mode=EXCLUSIVE), so only
 * its own statements change the data, and an empty deferred transaction
 * takes no lock and reads nothing. */
static int read_open(al_db *db)
{
    db->read_open = true;
    if (sqlite3_get_autocommit(db->h) == 0)
        return 0; /* inside a transaction already */
    return run_kept(db, &db->begin_st, "BEGIN DEFERRED");
}

int al_db_read_begin(al_db *db)
{
    if (db->reading || sqlite3_get_autocommit(db->h) == 0)
        return 0; /* already inside a transaction: nothing to add */
    db->reading = true;
    db->read_open = false;
    db->dv_known = false;
    return 0;
}

void al_db_read_end(al_db *db)
{
    if (!db->reading)
        return;
    db->reading = false;
    db->read_open = false;
    db->dv_known = false;
    if (sqlite3_get_autocommit(db->h) == 0)
        (void)al_db_commit(db); /* rolls back on failure */
}

int al_db_commit(al_db *db)
{
    if (run_kept(db, &db->commit_st, "COMMIT") < 0) {
        al_db_exec(db, "ROLLBACK");
        return -EIO;
    }
    return 0;
}

void al_db_rollback(al_db *db)
{
    note_failure(db, sqlite3_extended_errcode(db->h));
    if (sqlite3_get_autocommit(db->h) == 0)
        al_db_exec(db, "ROLLBACK");
}

al_db_stamp al_db_stamp_now(al_db *db)
{
    al_db_stamp s = {
        .changes = sqlite3_total_changes64(db->h), .rollbacks = db->rollbacks, .data_version = 0};
    if (db->reading && db->dv_known) {
        s.data_version = db->dv;
        return s;
    }
    /* NULL names the main database (sqlite3_file_control(3)); "main" was
     * looked up by name, a case-insensitive compare with every attached
     * database's name (sqlite3StrICmp, 0.22 % of the daemon's samples) */
    if (sqlite3_file_control(db->h, NULL, SQLITE_FCNTL_DATA_VERSION, &s.data_version) !=
        SQLITE_OK) {
        s.changes = -1; /* unknown: never equal to a stamp taken before */
        return s;
    }
    if (db->reading) {
        db->dv = s.data_version;
        db->dv_known = true;
    }
    return s;
}

bool al_db_stamp_eq(al_db_stamp a, al_db_stamp b)
{
    return a.changes >= 0 && a.changes == b.changes && a.rollbacks == b.rollbacks &&
           a.data_version == b.data_version;
}

bool al_db_stamp_renew(al_db *db, al_db_stamp *kept)
{
    if (db->reading && db->dv_known) {
        /* the stamp al_db_stamp_now would make, without making it (it
         * was 40 instructions a call, some 30 calls a GetParameters) */
        int64_t changes = sqlite3_total_changes64(db->h);
        if (kept->changes >= 0 && kept->changes == changes && kept->rollbacks == db->rollbacks &&
            kept->data_version == db->dv)
            return true;
        *kept =
            (al_db_stamp){.changes = changes, .rollbacks = db->rollbacks, .data_version = db->dv};
        return false;
    }
    al_db_stamp now = al_db_stamp_now(db);
    if (al_db_stamp_eq(*kept, now))
        return true;
    *kept = now;
    return false;
}

sqlite3_stmt *al_db_prepare(al_db *db, const char *sql)
{
    if (db->reading && !db->read_open && read_open(db) < 0)
        return NULL;
    for (size_t i = 0; i < db->ncache; i++) {
        cached_stmt *e = &db->cache[i];
        if (!e->lent && strcmp(e->sql, sql) == 0) {
            e->lent = true;
            return e->st;
        }
    }
    sqlite3_stmt *st = NULL;
    bool keep = db->ncache < AL_DB_STMT_CACHE;
    if (sqlite3_prepare_v3(db->h, sql, -1, keep ? SQLITE_PREPARE_PERSISTENT : 0, &st, NULL) !=
        SQLITE_OK) {
        note_failure(db, sqlite3_extended_errcode(db->h));
        sqlite3_finalize(st);
        return NULL;
    }
    if (keep && st) {
        /* out of memory for the copy: the statement is simply not kept */
        char *copy = es_strdup(sql);
        if (copy)
            db->cache[db->ncache++] = (cached_stmt){.sql = copy, .st = st, .lent = true};
    }
    return st;
}

void al_db_release(al_db *db, sqlite3_stmt *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < db->ncache; i++) {
        cached_stmt *e = &db->cache[i];
        if (e->st == st) {
            /* ends the statement's implicit transaction, drops the bound
             * values (they point at the caller's memory); answers the last
             * step's error, if it failed */
            note_failure(db, sqlite3_reset(st));
            sqlite3_clear_bindings(st);
            e->lent = false;
            return;
        }
    }
    note_failure(db, sqlite3_finalize(st));
}

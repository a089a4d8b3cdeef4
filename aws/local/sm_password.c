#include "aws/local/sm_password.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "common/secure.h"

void al_sm_pw_defaults(al_sm_pw_opts *o)
{
    memset(o, 0, sizeof *o);
    o->length = AL_SM_PASSWORD_DEFAULT;
    o->each_type = true;
}

/* The characters of each included type, less the excluded ones; a type left
 * empty by ExcludeCharacters is no longer a type to require. */
typedef struct pw_types {
    char set[5][96];
    size_t n[5];
    size_t ntypes;
    char all[100];
    size_t nall;
} pw_types;

static void add_type(pw_types *t, const char *chars, const char *exclude)
{
    size_t k = t->ntypes, n = 0;
    for (const char *p = chars; *p; p++)
        if (!exclude || !strchr(exclude, *p)) {
            t->set[k][n++] = *p;
            t->all[t->nall++] = *p;
        }
    t->set[k][n] = '\0';
    t->all[t->nall] = '\0';
    if (n) {
        t->n[k] = n;
        t->ntypes++;
    }
}

static void build_types(const al_sm_pw_opts *o, pw_types *t)
{
    memset(t, 0, sizeof *t);
    if (!o->no_upper)
        add_type(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", o->exclude);
    if (!o->no_lower)
        add_type(t, "abcdefghijklmnopqrstuvwxyz", o->exclude);
    if (!o->no_numbers)
        add_type(t, "0123456789", o->exclude);
    if (!o->no_punctuation)
        add_type(t, AL_SM_PUNCTUATION, o->exclude);
    if (o->space)
        add_type(t, " ", o->exclude);
}

/* A uniform index in [0, n): draws again above the largest multiple of n. */
static int uniform(size_t n, size_t *out)
{
    uint32_t lim = UINT32_MAX - UINT32_MAX % (uint32_t)n, x;
    do {
        if (es_random_bytes(&x, sizeof x) < 0)
            return -EIO;
    } while (x >= lim);
    *out = x % (uint32_t)n;
    return 0;
}

/* One character of each type in the first places, then a Fisher-Yates
 * shuffle so that they are anywhere. */
static int place_each_type(const pw_types *t, char *pw, size_t len)
{
    char one[2]; /* al_random_from ends what it draws with a NUL */
    for (size_t k = 0; k < t->ntypes; k++) {
        if (al_random_from(t->set[k], t->n[k], one, 1) < 0)
            return -EIO;
        pw[k] = one[0];
    }
    pw[len] = '\0';
    for (size_t i = len - 1; i > 0; i--) {
        size_t j;
        if (uniform(i + 1, &j) < 0)
            return -EIO;
        char x = pw[i];
        pw[i] = pw[j];
        pw[j] = x;
    }
    return 0;
}

int al_sm_random_password(const al_sm_pw_opts *o, char **out, al_error *e)
{
    pw_types t;
    build_types(o, &t);
    *out = NULL;
    if (t.nall == 0)
        return al_fail(e, 400, "InvalidParameterException",
                       "The password can't be generated: every character type is excluded.");
    if (o->each_type && o->length < t.ntypes)
        return al_fail(e, 400, "InvalidParameterException",
                       "Password length is too short based on the required types.");
    char *pw = es_malloc(o->length + 1);
    if (!pw)
        return al_fail_internal(e, "InternalServiceError");
    int r = al_random_from(t.all, t.nall, pw, o->length);
    if (r == 0 && o->each_type)
        r = place_each_type(&t, pw, o->length);
    es_wipe(&t, sizeof t);
    if (r < 0) {
        es_free_secret_str(pw);
        return al_fail_internal(e, "InternalServiceError");
    }
    *out = pw;
    return 0;
}

/* PasswordLength, 1..AL_SM_PASSWORD_MAX, in AWS's words (as moto recorded
 * them: the member named in camel case, the one bound broken). */
static bool password_length(const es_json *req, int64_t *len, al_error *e)
{
    if (!al_opt_int(req, "PasswordLength", INT64_MIN, INT64_MAX, AL_SM_PASSWORD_DEFAULT, len, e))
        return false;
    if (*len >= 1 && *len <= AL_SM_PASSWORD_MAX)
        return true;
    al_fail(e, 400, "ValidationException",
            "1 validation error detected: Value '%lld' at 'passwordLength' failed to satisfy "
            "constraint: Member must have value %s %d",
            (long long)*len, *len < 1 ? "greater than or equal to" : "less than or equal to",
            *len < 1 ? 1 : AL_SM_PASSWORD_MAX);
    return false;
}

int al_sm_get_random_password(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                              al_error *e)
{
    al_sm_pw_opts o;
    al_sm_pw_defaults(&o);
    int64_t len;
    if (!password_length(req, &len, e) || !al_opt_str(req, "ExcludeCharacters", &o.exclude, e) ||
        !al_opt_bool(req, "ExcludeNumbers", false, &o.no_numbers, e) ||
        !al_opt_bool(req, "ExcludePunctuation", false, &o.no_punctuation, e) ||
        !al_opt_bool(req, "ExcludeUppercase", false, &o.no_upper, e) ||
        !al_opt_bool(req, "ExcludeLowercase", false, &o.no_lower, e) ||
        !al_opt_bool(req, "IncludeSpace", false, &o.space, e) ||
        !al_opt_bool(req, "RequireEachIncludedType", true, &o.each_type, e))
        return -EINVAL;
    if (o.exclude && strlen(o.exclude) > AL_SM_PASSWORD_MAX)
        return al_fail(e, 400, "ValidationException",
                       "1 validation error detected: Value at 'excludeCharacters' failed to "
                       "satisfy constraint: Member must have length less than or equal to %d",
                       AL_SM_PASSWORD_MAX);
    o.length = (size_t)len;
    int r = al_authorize(c, principal, "secretsmanager:GetRandomPassword", "*", e);
    if (r < 0)
        return r;
    char *pw;
    if ((r = al_sm_random_password(&o, &pw, e)) < 0)
        return r;
    es_jw_obj(w);
    es_jw_kstr(w, "RandomPassword", pw);
    es_jw_obj_end(w);
    es_free_secret_str(pw);
    return 0;
}

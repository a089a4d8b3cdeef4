/* create_body.c - reading and rewriting a client's ContainerCreate body
 * (create_body.h). */
#include "docker/create_body.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/utf8.h"

static const es_json_limits body_limits = {
    .max_bytes = DK_CREATE_BODY_MAX,
    .max_depth = DK_CREATE_BODY_DEPTH,
    .max_string = DK_CREATE_BODY_MAX,
    .max_values = DK_CREATE_BODY_VALUES,
};

int dk_create_body_parse(const char *body, size_t len, es_json **out, char *err, size_t errlen)
{
    es_json *doc = NULL;
    int r = es_json_parse(body, len, &body_limits, &doc, err, errlen);
    if (r == ES_JSON_E_NOMEM)
        return -ENOMEM;
    if (r < 0)
        return -EINVAL;
    if (doc->type != ES_JSON_OBJECT) {
        es_json_free_secret(doc);
        snprintf(err, errlen, "the body is not a JSON object");
        return -EINVAL;
    }
    *out = doc;
    return 0;
}

/* One character of a field name folded as Go's encoding/json folds names
 * (bytes.EqualFold: simple case folding). Beyond ASCII, the only letters of
 * Docker's field names with other members in their fold orbit are s (U+017F
 * LONG S) and k (U+212A KELVIN SIGN): both are folded, so that a field
 * dockerd would take is found here too. Advances *p past the character. */
static int fold_next(const char **p)
{
    const unsigned char *s = (const unsigned char *)*p;
    if (s[0] == 0xC5 && s[1] == 0xBF) {
        *p += 2;
        return 's';
    }
    if (s[0] == 0xE2 && s[1] == 0x84 && s[2] == 0xAA) {
        *p += 3;
        return 'k';
    }
    *p += 1;
    return s[0] >= 'A' && s[0] <= 'Z' ? s[0] + ('a' - 'A') : s[0];
}

static bool name_eq(const char *a, const char *b)
{
    while (*a && *b)
        if (fold_next(&a) != fold_next(&b))
            return false;
    return !*a && !*b;
}

/* The index of the member dockerd decodes last under name, or SIZE_MAX. */
static size_t last_index(const es_json *obj, const char *name)
{
    if (!obj || obj->type != ES_JSON_OBJECT)
        return SIZE_MAX;
    for (size_t i = obj->u.object.n; i-- > 0;)
        if (name_eq(obj->u.object.keys[i], name))
            return i;
    return SIZE_MAX;
}

const es_json *dk_create_body_member(const es_json *obj, const char *key)
{
    size_t i = last_index(obj, key);
    return i == SIZE_MAX ? NULL : obj->u.object.values[i];
}

const es_json *dk_create_body_labels(const es_json *doc)
{
    const es_json *l = dk_create_body_member(doc, "Labels");
    return l && l->type == ES_JSON_OBJECT ? l : NULL;
}

const char *dk_create_body_log_type(const es_json *doc)
{
    const es_json *lc =
        dk_create_body_member(dk_create_body_member(doc, "HostConfig"), "LogConfig");
    const char *t = es_json_as_str(dk_create_body_member(lc, "Type"));
    return t && *t ? t : NULL;
}

const char *dk_create_body_image(const es_json *doc)
{
    return es_json_as_str(dk_create_body_member(doc, "Image"));
}

/* ---- the writer ---- */

typedef struct rw {
    es_jw w;
    const dk_create_edit *ed;
    char *err;
    size_t errlen;
} rw;

static int refuse(rw *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(rw *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, r->errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static size_t key_len(const dk_body_kv *kv)
{
    return kv->key_len ? kv->key_len : strlen(kv->key);
}

static int check_value(rw *r, const dk_body_kv *kv, const char *kind)
{
    char what[DK_CREATE_BODY_ERR_MAX / 2];
    size_t kl = key_len(kv);
    snprintf(what, sizeof what, "%s %.*s", kind, (int)(kl < 100 ? kl : 100), kv->key);
    if (memchr(kv->key, '\0', kl))
        return refuse(r, "the name of %s holds a NUL byte", what);
    if (memchr(kv->value, '\0', kv->len))
        return refuse(r, "the value of %s holds a NUL byte", what);
    if (!es_utf8_valid(kv->value, kv->len) || !es_utf8_valid(kv->key, kl))
        return refuse(r, "%s is not UTF-8 text", what);
    return 0;
}

/* "KEY=value" as one string: the pieces are put together in a buffer wiped
 * right after. */
static int write_env_item(rw *r, const dk_body_kv *kv)
{
    es_buf b;
    es_buf_init(&b, key_len(kv) + 1 + kv->len + 1);
    int e = es_buf_append(&b, kv->key, key_len(kv));
    if (!e)
        e = es_buf_append_char(&b, '=');
    if (!e)
        e = es_buf_append(&b, kv->value, kv->len);
    if (!e)
        es_jw_strn(&r->w, b.data, b.len);
    es_buf_free_secret(&b);
    return e;
}

/* The edit's variable an Env item names ("KEY=..." or a bare "KEY"). */
static size_t env_match(const dk_create_edit *ed, const es_json *item)
{
    if (item->type != ES_JSON_STRING)
        return SIZE_MAX;
    const char *s = item->u.string.s, *eq = memchr(s, '=', item->u.string.len);
    size_t n = eq ? (size_t)(eq - s) : item->u.string.len;
    for (size_t k = 0; k < ed->nenv; k++)
        if (key_len(&ed->env[k]) == n && memcmp(ed->env[k].key, s, n) == 0)
            return k;
    return SIZE_MAX;
}

/* Env: the client's items in order, a variable of the edit taking the place
 * of the first item of that name (later ones dropped: it is set once, as a
 * secret overrides -e in ECS), then the edit's other variables. */
static int write_env(rw *r, const es_json *env)
{
    const dk_create_edit *ed = r->ed;
    if (env && env->type != ES_JSON_ARRAY && env->type != ES_JSON_NULL)
        return refuse(r, "%s is not a list", "Env");
    bool *used = es_calloc(ed->nenv + 1, sizeof *used);
    if (!used)
        return -ENOMEM;
    int e = 0;
    es_jw_key(&r->w, "Env");
    es_jw_arr(&r->w);
    size_t n = env && env->type == ES_JSON_ARRAY ? env->u.array.n : 0;
    for (size_t i = 0; i < n && !e; i++) {
        const es_json *it = env->u.array.items[i];
        size_t k = env_match(ed, it);
        if (k == SIZE_MAX)
            es_jw_value(&r->w, it);
        else if (!used[k]) {
            used[k] = true;
            e = write_env_item(r, &ed->env[k]);
        }
    }
    for (size_t k = 0; k < ed->nenv && !e; k++)
        if (!used[k])
            e = write_env_item(r, &ed->env[k]);
    es_jw_arr_end(&r->w);
    es_free(used);
    return e;
}

/* A map of strings (LogConfig.Config, Labels): a member of the edit
 * replaces the client's of the same name (map keys are matched exactly),
 * new ones are added. */
static int write_map(rw *r, const char *key, const char *path, const es_json *map,
                     const dk_body_kv *kv, size_t nkv)
{
    if (map && map->type != ES_JSON_OBJECT && map->type != ES_JSON_NULL)
        return refuse(r, "%s is not an object", path);
    bool *used = es_calloc(nkv + 1, sizeof *used);
    if (!used)
        return -ENOMEM;
    es_jw_key(&r->w, key);
    es_jw_obj(&r->w);
    size_t n = map && map->type == ES_JSON_OBJECT ? map->u.object.n : 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = map->u.object.keys[i];
        size_t k = 0;
        while (k < nkv && strcmp(kv[k].key, name) != 0)
            k++;
        if (k == nkv) {
            es_jw_key(&r->w, name);
            es_jw_value(&r->w, map->u.object.values[i]);
        } else if (!used[k]) {
            used[k] = true;
            es_jw_key(&r->w, name);
            es_jw_strn(&r->w, kv[k].value, kv[k].len);
        }
    }
    for (size_t k = 0; k < nkv; k++)
        if (!used[k]) {
            es_jw_key(&r->w, kv[k].key);
            es_jw_strn(&r->w, kv[k].value, kv[k].len);
        }
    es_jw_obj_end(&r->w);
    es_free(used);
    return 0;
}

static int write_log_config(rw *r, const es_json *cfg)
{
    return write_map(r, "Config", "HostConfig.LogConfig.Config", cfg, r->ed->log_config,
                     r->ed->nlog);
}

static int write_labels(rw *r, const es_json *labels)
{
    return write_map(r, "Labels", "Labels", labels, r->ed->labels, r->ed->nlabels);
}

static int write_log(rw *r, const es_json *lc)
{
    if (lc && lc->type != ES_JSON_OBJECT && lc->type != ES_JSON_NULL)
        return refuse(r, "%s is not an object", "HostConfig.LogConfig");
    size_t ti = last_index(lc, "Type"), ci = last_index(lc, "Config");
    size_t n = lc && lc->type == ES_JSON_OBJECT ? lc->u.object.n : 0;
    int e = 0;
    es_jw_key(&r->w, "LogConfig");
    es_jw_obj(&r->w);
    for (size_t i = 0; i < n && !e; i++) {
        if (i == ti && r->ed->log_type)
            es_jw_kstr(&r->w, "Type", r->ed->log_type);
        else if (i == ci)
            e = write_log_config(r, lc->u.object.values[i]);
        else {
            es_jw_key(&r->w, lc->u.object.keys[i]);
            es_jw_value(&r->w, lc->u.object.values[i]);
        }
    }
    if (!e && ti == SIZE_MAX && r->ed->log_type)
        es_jw_kstr(&r->w, "Type", r->ed->log_type);
    if (!e && ci == SIZE_MAX)
        e = write_log_config(r, NULL);
    es_jw_obj_end(&r->w);
    return e;
}

/* Mounts: the client's items as they were, then the edit's bind mounts
 * (dockerd refuses a target mounted twice: the create fails, as it should). */
static int write_mounts(rw *r, const es_json *mounts)
{
    if (mounts && mounts->type != ES_JSON_ARRAY && mounts->type != ES_JSON_NULL)
        return refuse(r, "%s is not a list", "HostConfig.Mounts");
    es_jw_key(&r->w, "Mounts");
    es_jw_arr(&r->w);
    size_t n = mounts && mounts->type == ES_JSON_ARRAY ? mounts->u.array.n : 0;
    for (size_t i = 0; i < n; i++)
        es_jw_value(&r->w, mounts->u.array.items[i]);
    for (size_t k = 0; k < r->ed->nmounts; k++) {
        const dk_mount *m = &r->ed->mounts[k];
        es_jw_obj(&r->w);
        es_jw_kstr(&r->w, "Type", "bind");
        es_jw_kstr(&r->w, "Source", m->source);
        es_jw_kstr(&r->w, "Target", m->target);
        es_jw_kbool(&r->w, "ReadOnly", m->read_only);
        es_jw_obj_end(&r->w);
    }
    es_jw_arr_end(&r->w);
    return 0;
}

static bool edits_log(const dk_create_edit *ed)
{
    return ed->nlog > 0 || ed->log_type;
}

static int write_host(rw *r, const es_json *host)
{
    if (host && host->type != ES_JSON_OBJECT && host->type != ES_JSON_NULL)
        return refuse(r, "%s is not an object", "HostConfig");
    bool log = edits_log(r->ed), mounts = r->ed->nmounts > 0;
    size_t li = log ? last_index(host, "LogConfig") : SIZE_MAX;
    size_t mi = mounts ? last_index(host, "Mounts") : SIZE_MAX;
    size_t n = host && host->type == ES_JSON_OBJECT ? host->u.object.n : 0;
    int e = 0;
    es_jw_key(&r->w, "HostConfig");
    es_jw_obj(&r->w);
    for (size_t i = 0; i < n && !e; i++) {
        if (i == li)
            e = write_log(r, host->u.object.values[i]);
        else if (i == mi)
            e = write_mounts(r, host->u.object.values[i]);
        else {
            es_jw_key(&r->w, host->u.object.keys[i]);
            es_jw_value(&r->w, host->u.object.values[i]);
        }
    }
    if (!e && log && li == SIZE_MAX)
        e = write_log(r, NULL);
    if (!e && mounts && mi == SIZE_MAX)
        e = write_mounts(r, NULL);
    es_jw_obj_end(&r->w);
    return e;
}

static int check_edit(rw *r)
{
    const dk_create_edit *ed = r->ed;
    int e = 0;
    for (size_t k = 0; k < ed->nenv && !e; k++)
        e = check_value(r, &ed->env[k], "the variable");
    for (size_t k = 0; k < ed->nlog && !e; k++)
        e = check_value(r, &ed->log_config[k], "the log option");
    for (size_t k = 0; k < ed->nlabels && !e; k++)
        e = check_value(r, &ed->labels[k], "the label");
    if (!e && ed->log_type && !es_utf8_valid(ed->log_type, strlen(ed->log_type)))
        e = refuse(r, "%s is not UTF-8 text", "the log driver");
    for (size_t k = 0; k < ed->nmounts && !e; k++) {
        const dk_mount *m = &ed->mounts[k];
        if (!m->source || !m->target || m->source[0] != '/' || m->target[0] != '/' ||
            !es_utf8_valid(m->source, strlen(m->source)) ||
            !es_utf8_valid(m->target, strlen(m->target)))
            e = refuse(r, "mount %zu: the source and the target must be absolute paths", k);
    }
    return e;
}

/* Each member as it was, but the last Env and HostConfig (the ones dockerd
 * keeps) rewritten when the edit touches them; earlier duplicates stay as
 * they were, since dockerd's decoder reads them too (into the same struct)
 * before the last one overrides. */
int dk_create_body_rewrite(const es_json *doc, const dk_create_edit *ed, es_buf *out, char *err,
                           size_t errlen)
{
    rw r = {.ed = ed, .err = err, .errlen = errlen};
    if (!doc || doc->type != ES_JSON_OBJECT)
        return refuse(&r, "%s is not a JSON object", "the body");
    int e = check_edit(&r);
    if (e)
        return e;
    bool env = ed->nenv > 0, log = edits_log(ed) || ed->nmounts > 0, lab = ed->nlabels > 0;
    size_t ei = env ? last_index(doc, "Env") : SIZE_MAX;
    size_t hi = log ? last_index(doc, "HostConfig") : SIZE_MAX;
    size_t li = lab ? last_index(doc, "Labels") : SIZE_MAX;
    es_jw_init(&r.w, out);
    es_jw_obj(&r.w);
    for (size_t i = 0; i < doc->u.object.n && !e; i++) {
        if (i == ei)
            e = write_env(&r, doc->u.object.values[i]);
        else if (i == li)
            e = write_labels(&r, doc->u.object.values[i]);
        else if (i == hi)
            e = write_host(&r, doc->u.object.values[i]);
        else {
            es_jw_key(&r.w, doc->u.object.keys[i]);
            es_jw_value(&r.w, doc->u.object.values[i]);
        }
    }
    if (!e && env && ei == SIZE_MAX)
        e = write_env(&r, NULL);
    if (!e && log && hi == SIZE_MAX)
        e = write_host(&r, NULL);
    if (!e && lab && li == SIZE_MAX)
        e = write_labels(&r, NULL);
    es_jw_obj_end(&r.w);
    int f = es_jw_finish(&r.w);
    if (!e && f) {
        e = f;
        snprintf(err, errlen, "%s",
                 f == -EMSGSIZE ? "the rewritten body is too big"
                 : f == -ENOMEM ? "out of memory"
                                : "the body could not be written back (text that is not UTF-8)");
    }
    return e;
}

/* json.h - JSON over yajl: a bounded tree parser and a writer into es_buf.
 *
 * The parser enforces limits on input size, nesting depth, string length and
 * the total number of values, each with its own error, because every JSON
 * document we read comes from a peer (API clients, AWS, Docker). Numbers keep
 * their source text so that nothing is lost by a double round trip.
 *
 * A tree lives in one arena (a block or a few, allocated with the parse):
 * its nodes are not freed one by one, es_json_free takes the root only.
 * Trees that may hold secret values are released with es_json_free_secret,
 * which wipes every byte of the arena that was used before freeing it. */
#ifndef ES_COMMON_JSON_H
#define ES_COMMON_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

typedef enum es_json_type {
    ES_JSON_NULL,
    ES_JSON_BOOL,
    ES_JSON_NUMBER,
    ES_JSON_STRING,
    ES_JSON_ARRAY,
    ES_JSON_OBJECT,
} es_json_type;

typedef struct es_json es_json;
struct es_json {
    es_json_type type;
    union {
        bool boolean;
        struct {
            char *text; /* as written in the source */
        } number;
        struct {
            char *s; /* NUL-terminated; may contain NULs (see len) */
            size_t len;
        } string;
        struct {
            es_json **items;
            size_t n;
        } array;
        struct {
            char **keys;
            es_json **values;
            size_t n;
        } object;
    } u;
};

typedef struct es_json_limits {
    size_t max_bytes;  /* input size */
    size_t max_depth;  /* nesting of arrays/objects */
    size_t max_string; /* one string or key, in bytes */
    size_t max_values; /* values in the whole document */
} es_json_limits;

/* 1 MiB, depth 32, strings 256 KiB, 100k values: what our API bodies need. */
extern const es_json_limits es_json_default_limits;

typedef enum es_json_err {
    ES_JSON_OK = 0,
    ES_JSON_E_SYNTAX = -1,
    ES_JSON_E_TOO_BIG = -2,
    ES_JSON_E_TOO_DEEP = -3,
    ES_JSON_E_STRING_TOO_LONG = -4,
    ES_JSON_E_TOO_MANY_VALUES = -5,
    ES_JSON_E_NOMEM = -6,
} es_json_err;

/* Parses text[0..len). On failure *out is untouched and, when err is not
 * NULL, a one-line reason is written into err (never any input text beyond
 * yajl's position marker, so no secret is echoed). */
int es_json_parse(const char *text, size_t len, const es_json_limits *lim, es_json **out, char *err,
                  size_t errlen);
/* Root nodes only (what es_json_parse gave); NULL is nothing to free. */
void es_json_free(es_json *j);
void es_json_free_secret(es_json *j);
/* The wipe of es_json_free_secret without the free: every node, array and
 * string of the tree reads as zeros after it (the tree must not be walked
 * again; only freed). */
void es_json_wipe(es_json *j);

/* Lookups: NULL / false when absent or of another type. */
const es_json *es_json_get(const es_json *obj, const char *key);
const char *es_json_get_str(const es_json *obj, const char *key);
bool es_json_get_bool(const es_json *obj, const char *key, bool *out);
bool es_json_get_int64(const es_json *obj, const char *key, int64_t *out);
bool es_json_as_int64(const es_json *j, int64_t *out);
const char *es_json_as_str(const es_json *j);
size_t es_json_len(const es_json *arr_or_obj);
const es_json *es_json_at(const es_json *arr, size_t i);

/* Writer: compact JSON straight into out, as yajl_gen writes it (no
 * spaces; strings escaped as yajl escapes them - \" \\ \b \f \n \r \t and
 * \u00XX for other control characters, '/' kept - and refused with -EINVAL
 * when not UTF-8). Misuse is an error too: a value where an object's key
 * must be, closing what is not open, a second top-level value, more than
 * ES_JW_DEPTH_MAX levels. Errors are sticky: check es_jw_finish once at the
 * end. */
#define ES_JW_DEPTH_MAX 128
typedef struct es_jw {
    es_buf *out;
    int err;
    unsigned depth;
    bool done;                            /* a top-level value is complete */
    unsigned char level[ES_JW_DEPTH_MAX]; /* per open container: ES_JW_* bits */
} es_jw;

void es_jw_init(es_jw *w, es_buf *out);
void es_jw_obj(es_jw *w);
void es_jw_obj_end(es_jw *w);
void es_jw_arr(es_jw *w);
void es_jw_arr_end(es_jw *w);
void es_jw_key(es_jw *w, const char *k);
void es_jw_str(es_jw *w, const char *s);
void es_jw_strn(es_jw *w, const char *s, size_t n);
void es_jw_int(es_jw *w, int64_t v);
void es_jw_double(es_jw *w, double v);
void es_jw_bool(es_jw *w, bool v);
void es_jw_null(es_jw *w);
/* Writes a parsed value back out (used for json-key extraction). */
void es_jw_value(es_jw *w, const es_json *j);
/* Convenience: key + value. */
void es_jw_kstr(es_jw *w, const char *k, const char *s);
void es_jw_kint(es_jw *w, const char *k, int64_t v);
void es_jw_kbool(es_jw *w, const char *k, bool v);
/* Keys known when the program is written (an answer's shape: "Name",
 * "Type", ...), given already quoted and never scanned: ES_JW_LIT("Name")
 * is the literal "\"Name\"" and its length. Only for string literals of
 * plain bytes (printable ASCII but '"' and '\\'), never for text from
 * outside: a debug build checks each one. A GetParameters answer writes
 * about seven keys a parameter; each of these writes its key and value in
 * one copy when the buffer has room (the general path otherwise). */
#define ES_JW_LIT(k) ("\"" k "\""), (sizeof("\"" k "\"") - 1)
void es_jw_key_lit(es_jw *w, const char *quoted, size_t qn);
/* key and string value s[0..n) */
void es_jw_kstrn_lit(es_jw *w, const char *quoted, size_t qn, const char *s, size_t n);
void es_jw_kint_lit(es_jw *w, const char *quoted, size_t qn, int64_t v);
/* key and a number's text as es_jw_double_text made it */
void es_jw_knum_lit(es_jw *w, const char *quoted, size_t qn, const char *num, size_t n);
/* key and JSON text the caller encoded and kept: one value, or a value and
 * more members of the same object after it ("v","K2":... - members
 * pre-encoded once and copied whole into every answer). Copied as it is,
 * unchecked: only for text this process wrote with an es_jw. */
void es_jw_kraw_lit(es_jw *w, const char *quoted, size_t qn, const char *json, size_t n);
/* The text es_jw_double writes for v, into out (NUL-ended): its length,
 * or -EINVAL (not finite: JSON has no such number). For a value written
 * often, formatted once and kept beside it (es_jw_knum_lit). */
#define ES_JW_NUM_MAX 64
int es_jw_double_text(double v, char out[ES_JW_NUM_MAX]);
/* Returns the first error (0, -ENOMEM, -EMSGSIZE, -EINVAL); -EINVAL too when
 * a container is left open. */
int es_jw_finish(es_jw *w);

#endif

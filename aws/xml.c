#include "aws/xml.h"

#include <stdbool.h>
#include <string.h>

#include <expat.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/secure.h"

typedef struct pick {
    XML_Parser p;
    const char *const *paths;
    size_t n;
    char **values;
    es_buf path;                        /* current element path */
    size_t stack[AW_XML_MAX_DEPTH + 1]; /* path lengths before each level */
    size_t depth;
    int capturing; /* index of the path being captured, or -1 */
    size_t cap_depth;
    es_buf text;
    int err;
} pick;

static void fail(pick *k, int err)
{
    if (!k->err)
        k->err = err;
    XML_StopParser(k->p, XML_FALSE);
}

static void on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    (void)attrs;
    pick *k = ud;
    if (k->err)
        return;
    if (k->depth >= AW_XML_MAX_DEPTH) {
        fail(k, AW_XML_E_TOO_DEEP);
        return;
    }
    k->stack[k->depth++] = k->path.len;
    if ((k->path.len && es_buf_append_char(&k->path, '/') < 0) ||
        es_buf_append_str(&k->path, name) < 0) {
        fail(k, AW_XML_E_TOO_DEEP);
        return;
    }
    if (k->capturing >= 0)
        return; /* nested markup inside a picked element: text only */
    for (size_t i = 0; i < k->n; i++) {
        if (!k->values[i] && strcmp(k->paths[i], es_buf_cstr(&k->path)) == 0) {
            k->capturing = (int)i;
            k->cap_depth = k->depth;
            es_buf_reset_secret(&k->text);
            break;
        }
    }
}

static void on_end(void *ud, const XML_Char *name)
{
    (void)name;
    pick *k = ud;
    if (k->err || k->depth == 0)
        return;
    if (k->capturing >= 0 && k->depth == k->cap_depth) {
        char *v = es_strndup(es_buf_cstr(&k->text), k->text.len);
        if (!v) {
            fail(k, AW_XML_E_NOMEM);
            return;
        }
        k->values[k->capturing] = v;
        k->capturing = -1;
        es_buf_reset_secret(&k->text);
    }
    k->depth--;
    k->path.len = k->stack[k->depth];
    k->path.data[k->path.len] = '\0';
}

static void on_text(void *ud, const XML_Char *s, int len)
{
    pick *k = ud;
    if (k->err || k->capturing < 0 || len <= 0)
        return;
    if (es_buf_append(&k->text, s, (size_t)len) < 0)
        fail(k, AW_XML_E_TEXT_TOO_LONG);
}

static void on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
                       int has_internal)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal;
    fail(ud, AW_XML_E_DOCTYPE);
}

int aw_xml_pick(const char *doc, size_t len, const char *const *paths, size_t n, char **values)
{
    if (!doc || !paths || !values || n == 0 || n > AW_XML_MAX_PATHS)
        return AW_XML_E_INVALID;
    for (size_t i = 0; i < n; i++)
        values[i] = NULL;
    if (len > AW_XML_MAX_BYTES)
        return AW_XML_E_TOO_BIG;
    pick k;
    memset(&k, 0, sizeof k);
    k.paths = paths;
    k.n = n;
    k.values = values;
    k.capturing = -1;
    es_buf_init(&k.path, AW_XML_MAX_PATH_LEN);
    es_buf_init(&k.text, AW_XML_MAX_TEXT);
    k.p = XML_ParserCreate("UTF-8");
    if (!k.p)
        return AW_XML_E_NOMEM;
    XML_SetUserData(k.p, &k);
    XML_SetElementHandler(k.p, on_start, on_end);
    XML_SetCharacterDataHandler(k.p, on_text);
    XML_SetStartDoctypeDeclHandler(k.p, on_doctype);
    if (es_buf_append_char(&k.path, 'x') == 0) /* allocate once so data is non-NULL */
        es_buf_reset(&k.path);
    else
        k.err = AW_XML_E_NOMEM;
    if (!k.err && XML_Parse(k.p, doc, (int)len, XML_TRUE) == XML_STATUS_ERROR && !k.err)
        k.err = AW_XML_E_SYNTAX;
    int rc = k.err;
    XML_ParserFree(k.p);
    es_buf_free(&k.path);
    es_buf_free_secret(&k.text);
    if (rc)
        aw_xml_pick_free(values, n);
    return rc;
}

void aw_xml_pick_free(char **values, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        es_free_secret_str(values[i]);
        values[i] = NULL;
    }
}

const char *aw_xml_strerror(int err)
{
    switch (err) {
    case AW_XML_OK:
        return "ok";
    case AW_XML_E_SYNTAX:
        return "malformed XML";
    case AW_XML_E_TOO_BIG:
        return "XML document too large";
    case AW_XML_E_TOO_DEEP:
        return "XML nested too deeply";
    case AW_XML_E_TEXT_TOO_LONG:
        return "XML element text too long";
    case AW_XML_E_DOCTYPE:
        return "XML DOCTYPE not allowed";
    case AW_XML_E_NOMEM:
        return "out of memory";
    default:
        return "invalid XML request";
    }
}

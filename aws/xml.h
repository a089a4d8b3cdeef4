/* xml.h - picks element texts out of an AWS query-protocol answer (STS,
 * IAM) with expat.
 *
 * The caller names the element paths it wants, '/'-separated from the root
 * ("AssumeRoleResponse/AssumeRoleResult/Credentials/AccessKeyId"); the text
 * of the first element at each path is returned. Bounded: input size, depth,
 * text per element; DOCTYPE (hence entity declarations) refused. Values may
 * be secrets (SecretAccessKey, SessionToken): aw_xml_pick_free wipes them. */
#ifndef ES_AWS_XML_H
#define ES_AWS_XML_H

#include <stddef.h>

#define AW_XML_MAX_BYTES (256u * 1024u) /* whole document */
#define AW_XML_MAX_DEPTH 16             /* element nesting */
#define AW_XML_MAX_TEXT 8192            /* text of one picked element */
#define AW_XML_MAX_PATHS 16             /* paths per call */
#define AW_XML_MAX_PATH_LEN 4096        /* open elements' names, '/'-joined */

typedef enum aw_xml_err {
    AW_XML_OK = 0,
    AW_XML_E_SYNTAX = -1,
    AW_XML_E_TOO_BIG = -2,
    AW_XML_E_TOO_DEEP = -3,
    AW_XML_E_TEXT_TOO_LONG = -4,
    AW_XML_E_DOCTYPE = -5,
    AW_XML_E_NOMEM = -6,
    AW_XML_E_INVALID = -7,
} aw_xml_err;

/* values[i] receives a malloc'd copy of the text at paths[i], or NULL when
 * absent. On failure nothing is returned (all values NULL). */
int aw_xml_pick(const char *doc, size_t len, const char *const *paths, size_t n, char **values);
/* Wipes and frees values[0..n). */
void aw_xml_pick_free(char **values, size_t n);
const char *aw_xml_strerror(int err);

#endif

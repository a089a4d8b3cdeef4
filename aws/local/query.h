/* query.h - the AWS query protocol of the embedded IAM and STS.
 *
 * Requests: POST / with an application/x-www-form-urlencoded body
 * ("Action=CreateRole&Version=2010-05-08&RoleName=r&..."), lists as
 * "Param.member.N" (N from 1). al_form_parse decodes such a body with named
 * limits: AL_FORM_MAX_BYTES of body, AL_FORM_MAX_PARAMS pairs, AL_FORM_KEY_MAX
 * bytes per key; '+' is a space, %XX an octet; a bad escape, an empty key, a
 * NUL byte (decoded or raw) or a repeated key is -EINVAL.
 *
 * Answers: XML, written by the al_xw_* helpers (text escaped: & < > " ' and
 * control characters; characters XML 1.0 cannot carry become U+FFFD) as
 *   <ActionResponse xmlns="NS"><ActionResult>...</ActionResult>
 *   <ResponseMetadata><RequestId>uuid</RequestId></ResponseMetadata>
 *   </ActionResponse>
 * and errors as
 *   <ErrorResponse xmlns="NS"><Error><Type>Sender</Type><Code>C</Code>
 *   <Message>M</Message></Error><RequestId>uuid</RequestId></ErrorResponse>.
 *
 * al_query_dispatch runs one IAM ("iam") or STS ("sts") request for a
 * verified principal; the HTTP layer routes a request here when it has no
 * X-Amz-Target and a form content type, taking the service from the SigV4
 * credential scope. */
#ifndef AL_QUERY_H
#define AL_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "aws/local/auth.h"
#include "aws/local/local.h"
#include "common/buf.h"

#define AL_FORM_MAX_BYTES (256u * 1024u) /* IAM's documents are 10 KiB at most */
#define AL_FORM_MAX_PARAMS 512
#define AL_FORM_KEY_MAX 256

#define AL_IAM_XMLNS "https://iam.amazonaws.com/doc/2010-05-08/"
#define AL_STS_XMLNS "https://sts.amazonaws.com/doc/2011-06-15/"

typedef struct al_form al_form;

/* Decodes body[0..len). 0, -EMSGSIZE (body too large), -E2BIG (too many
 * pairs or a key too long), -EINVAL (malformed), -ENOMEM. */
int al_form_parse(const char *body, size_t len, al_form **out);
/* Wipes the decoded text; NULL-safe. */
void al_form_free(al_form *f);
/* The value of key, NULL when absent. */
const char *al_form_get(const al_form *f, const char *key);
/* The value of "<prefix>.member.<n>" (n from 1), NULL when absent. */
const char *al_form_member(const al_form *f, const char *prefix, size_t n);
size_t al_form_count(const al_form *f);

/* XML writing into an es_buf; errors are sticky in w->err (first wins). */
typedef struct al_xw {
    es_buf *out;
    int err;
} al_xw;

void al_xw_init(al_xw *w, es_buf *out);
void al_xw_open(al_xw *w, const char *name);
void al_xw_close(al_xw *w, const char *name);
/* <name>escaped text</name> */
void al_xw_elem(al_xw *w, const char *name, const char *text);
void al_xw_elemf(al_xw *w, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Escaped text alone. */
void al_xw_text(al_xw *w, const char *text, size_t n);
/* <name>URL-encoded text</name>: how IAM answers policy documents. */
void al_xw_elem_urlenc(al_xw *w, const char *name, const char *text);
/* <name>2026-11-29T15:45:02Z</name> */
void al_xw_elem_time(al_xw *w, const char *name, double t);

/* Runs one query request. service: "iam" or "sts". On success answers 0 and
 * appends the XML answer to out; on failure a negative errno, err filled
 * with the query code ("NoSuchEntity", "AccessDenied", ...) and its HTTP
 * status, out left empty (render it with al_query_error_xml). Answers may
 * hold secrets (AssumeRole's): release out with es_buf_free_secret. */
int al_query_dispatch(al_ctx *c, const char *service, const char *principal, const char *body,
                      size_t len, es_buf *out, al_error *err);

/* Rewrites an error of the JSON services' vocabulary (al_verify's codes,
 * AccessDeniedException) into the query services' (SignatureDoesNotMatch,
 * InvalidClientTokenId, ExpiredToken, AccessDenied, ...) with their
 * statuses; other codes are kept. */
void al_query_error_from_json(al_error *err);

/* The query handling of the loopback server: verifies rq for the service
 * named by its SigV4 credential scope ("iam" or "sts") with al_verify at
 * time now and runs it. Answers the HTTP status and appends the XML body
 * (the answer or an ErrorResponse) to out; release out with
 * es_buf_free_secret. -ENOMEM when not even an error could be written. */
int al_query_serve(al_ctx *c, const al_request *rq, time_t now, es_buf *out);

/* Appends the ErrorResponse document for err. */
int al_query_error_xml(const char *service, const al_error *err, es_buf *out);

/* True when service ("iam", "sts") serves action ("CreateRole"). */
bool al_query_is_action(const char *service, const char *action);

#endif

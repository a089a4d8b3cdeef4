/* http.h - an incremental HTTP/1.1 message codec (RFC 9112), no library.
 *
 * One parser reads one message at a time from a byte stream, in REQUEST mode
 * (the daemon's API server) or RESPONSE mode (the Docker client). It is a push
 * parser: the caller hands it whatever the socket produced, split anywhere,
 * and es_http_parser_feed() says how many bytes it took and what happened:
 *
 *   ES_HTTP_NEED_MORE  every byte was consumed; the message is not finished.
 *   ES_HTTP_HEADERS    the head (start line + header fields) is complete.
 *                      `consumed` stops right after it so that the caller can
 *                      look at the status, the headers, Expect: 100-continue,
 *                      and only then feed the rest (call feed again with the
 *                      bytes not consumed).
 *   ES_HTTP_DONE       the message is complete; `consumed` stops right after
 *                      it (a pipelined next message is left for the caller).
 *                      es_http_parser_reset() prepares the next message on the
 *                      same connection.
 *   < 0                an es_http_err (or -ENOMEM, or a body callback's own
 *                      negative value). Errors are sticky: the connection is
 *                      no longer in sync and must be closed.
 *
 * Body bytes are handed out as they arrive, never only at the end: either
 * to a callback (one call per contiguous piece of decoded body, so Docker's
 * endless chunked /events stream works), or, with no callback, appended to an
 * internal buffer read with es_http_parser_body().
 *
 * Every input-driven size has a named limit with its own error: the head
 * (start line + headers, also applied to chunked trailers), the number of
 * header fields, the body (decoded bytes; set SIZE_MAX for endless streams
 * and bound them by other means), and the chunk-size line.
 *
 * Framing follows RFC 9112 section 6: requests carry a body only with
 * Content-Length or Transfer-Encoding: chunked, and both at once is rejected
 * (request smuggling). Responses to HEAD (caller says so), 1xx, 204 and 304
 * have no body; otherwise chunked, Content-Length, or close-delimited (ended
 * by es_http_parser_eof()). Line endings must be CRLF; obs-fold, whitespace
 * before the colon and control characters in fields are errors. */
#ifndef ES_COMMON_HTTP_H
#define ES_COMMON_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

typedef enum es_http_mode {
    ES_HTTP_REQUEST,
    ES_HTTP_RESPONSE,
} es_http_mode;

typedef struct es_http_limits {
    size_t max_header_bytes; /* start line + header fields + final CRLF; also trailers */
    size_t max_headers;      /* header fields (also trailer fields) */
    size_t max_body;         /* decoded body bytes */
    size_t max_chunk_line;   /* one chunk-size line with its extensions and CRLF */
} es_http_limits;

/* 16 KiB head, 100 fields, 1 MiB body, 1 KiB chunk line. */
extern const es_http_limits es_http_default_limits;

typedef enum es_http_event {
    ES_HTTP_NEED_MORE = 0,
    ES_HTTP_HEADERS = 1,
    ES_HTTP_DONE = 2,
} es_http_event;

typedef enum es_http_err {
    ES_HTTP_E_HEADER_TOO_LARGE = -1001,
    ES_HTTP_E_TOO_MANY_HEADERS = -1002,
    ES_HTTP_E_BODY_TOO_LARGE = -1003,
    ES_HTTP_E_BAD_CHUNK = -1004,
    ES_HTTP_E_CHUNK_LINE_TOO_LONG = -1005,
    ES_HTTP_E_BAD_STATUS_LINE = -1006,
    ES_HTTP_E_BAD_REQUEST_LINE = -1007,
    ES_HTTP_E_BAD_VERSION = -1008,
    ES_HTTP_E_BAD_HEADER = -1009,
    ES_HTTP_E_BAD_CONTENT_LENGTH = -1010, /* not digits, overflow, conflicting values */
    ES_HTTP_E_CL_AND_TE = -1011,          /* request with both: smuggling attempt */
    ES_HTTP_E_UNSUPPORTED_TE = -1012,     /* a coding other than chunked, or TE on 1.0 */
    ES_HTTP_E_TRUNCATED = -1013,          /* eof in the middle of a message */
} es_http_err;

/* Text for an es_http_err, or strerror for a negative errno. Never NULL. */
const char *es_http_strerror(int err);

/* Receives body bytes in order as they are decoded. Return 0 to go on or a
 * negative value, which es_http_parser_feed returns (and keeps returning). */
typedef int (*es_http_body_cb)(void *ud, const char *data, size_t len);

typedef struct es_http_parser es_http_parser;

/* limits NULL means es_http_default_limits. 0 or -ENOMEM. */
int es_http_parser_create(es_http_mode mode, const es_http_limits *limits, es_http_parser **out);
void es_http_parser_free(es_http_parser *p);
/* Sets (or with cb NULL, clears) the body callback; survives reset. */
void es_http_parser_set_body_cb(es_http_parser *p, es_http_body_cb cb, void *ud);
/* RESPONSE mode: the message being parsed answers a HEAD request, so it has
 * no body whatever its headers say. Cleared by reset. */
void es_http_parser_set_head_response(es_http_parser *p, bool head);
/* Forgets the current message (and any error) for the next one. */
void es_http_parser_reset(es_http_parser *p);

/* Consumes a prefix of data[0..len) (see the top of this file). */
int es_http_parser_feed(es_http_parser *p, const char *data, size_t len, size_t *consumed);
/* The peer closed the connection. ES_HTTP_DONE when that ends a
 * close-delimited body, 0 when no byte of a message had arrived (a clean
 * close between messages), ES_HTTP_E_TRUNCATED otherwise (or the sticky
 * error). */
int es_http_parser_eof(es_http_parser *p);

/* Message accessors: valid once ES_HTTP_HEADERS was returned, until reset or
 * free. Strings are NUL-terminated and point into the parser. */
const char *es_http_parser_method(const es_http_parser *p); /* REQUEST */
const char *es_http_parser_target(const es_http_parser *p); /* REQUEST */
int es_http_parser_status(const es_http_parser *p);         /* RESPONSE; 0 before */
const char *es_http_parser_reason(const es_http_parser *p); /* RESPONSE; may be "" */
int es_http_parser_version_minor(const es_http_parser *p);  /* 0 or 1 */
size_t es_http_parser_header_count(const es_http_parser *p);
/* false when i is out of range. */
bool es_http_parser_header_at(const es_http_parser *p, size_t i, const char **name,
                              const char **value);
/* First value of a header field, name[0..n) (no NUL in it) matched
 * case-insensitively; NULL when absent. */
const char *es_http_parser_header_n(const es_http_parser *p, const char *name, size_t n);
/* The same for a NUL-terminated name. Inline so that a literal name's
 * length is known where it is written: the callers' names are literals, and
 * a strlen call each was 12 a request (issue 22). */
static inline const char *es_http_parser_header(const es_http_parser *p, const char *name)
{
    return es_http_parser_header_n(p, name, __builtin_strlen(name));
}
/* Whether the connection may carry another message after this one: HTTP/1.1
 * unless "Connection: close", HTTP/1.0 only with "Connection: keep-alive";
 * never after a close-delimited response body. */
bool es_http_parser_keep_alive(const es_http_parser *p);
/* REQUEST: "Expect: 100-continue" was sent; the server answers
 * "HTTP/1.1 100 Continue" before reading the body (or a final status). */
bool es_http_parser_expect_continue(const es_http_parser *p);
bool es_http_parser_chunked(const es_http_parser *p);
/* The Content-Length, or -1 when the message has none. */
int64_t es_http_parser_content_length(const es_http_parser *p);
/* Decoded body bytes seen so far in this message. */
uint64_t es_http_parser_body_bytes(const es_http_parser *p);
/* With no body callback: the body collected so far (NUL-terminated). */
const char *es_http_parser_body(const es_http_parser *p, size_t *len);

/* True when `list` (a comma-separated header value) holds `token`,
 * case-insensitively, e.g. es_http_token_in_list("Keep-Alive, Upgrade",
 * "upgrade"). */
bool es_http_token_in_list(const char *list, const char *token);

/* Serializer. Each function appends to `out` and returns 0, -EMSGSIZE (the
 * buffer's maximum), -ENOMEM, or -EINVAL when a name or value would break
 * the framing (CR, LF, NUL; a name that is not a token). */
int es_http_write_request_line(es_buf *out, const char *method, const char *target);
/* reason NULL means the standard phrase for the status. */
int es_http_write_status_line(es_buf *out, int status, const char *reason);
int es_http_write_header(es_buf *out, const char *name, const char *value);
/* Content-Length (always, also for 0) and, when content_type is not NULL,
 * Content-Type; then the blank line and the body. Ends the message. */
int es_http_write_body(es_buf *out, const char *content_type, const void *body, size_t len);
/* Ends the head without a body and without a Content-Length. */
int es_http_write_end_head(es_buf *out);
/* One chunk of a chunked body; len 0 writes the last chunk and the end. */
int es_http_write_chunk(es_buf *out, const void *data, size_t len);
/* The standard reason phrase, "Unknown" for others. */
const char *es_http_reason_phrase(int status);

#endif

/* log.h - the daemon's log, with one redaction choke point.
 *
 * Only the program (agent/) logs above debug; libraries return errors and
 * let the boundary that reports them word the message (STYLE.md).
 *
 * Every line passes through es_log_redact before it is written: whatever
 * follows a credential marker (Authorization, Signature=, a secret access
 * key, a session token, ...) is replaced with "***". Callers still never
 * pass a secret value: the choke point is the second line of defence.
 *
 * When stderr is the journal (JOURNAL_STREAM names it) each line carries a
 * syslog priority prefix such as "<3>" and no timestamp; otherwise lines are
 * "2026-11-29T15:00:00.123Z error: message". */
#ifndef ES_COMMON_LOG_H
#define ES_COMMON_LOG_H

#include <stdarg.h>
#include <stddef.h>

typedef enum es_log_level {
    ES_LOG_ERROR = 3, /* values are syslog priorities */
    ES_LOG_WARN = 4,
    ES_LOG_NOTICE = 5,
    ES_LOG_INFO = 6,
    ES_LOG_DEBUG = 7,
} es_log_level;

/* Parses "error|warn|notice|info|debug"; 0 or -EINVAL. */
int es_log_level_parse(const char *s, es_log_level *out);
const char *es_log_level_name(es_log_level l);

void es_log_set_level(es_log_level l);
es_log_level es_log_get_level(void);
/* Decides the output format from JOURNAL_STREAM and stderr. Call once at
 * start-up (tests may call it again). */
void es_log_init(void);
/* Redirects output to a caller-supplied sink (tests). NULL restores stderr. */
typedef void (*es_log_sink)(es_log_level l, const char *line, void *arg);
void es_log_set_sink(es_log_sink sink, void *arg);

void es_log(es_log_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void es_vlog(es_log_level l, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#define es_err(...) es_log(ES_LOG_ERROR, __VA_ARGS__)
#define es_warn(...) es_log(ES_LOG_WARN, __VA_ARGS__)
#define es_notice(...) es_log(ES_LOG_NOTICE, __VA_ARGS__)
#define es_info(...) es_log(ES_LOG_INFO, __VA_ARGS__)
#define es_debug(...) es_log(ES_LOG_DEBUG, __VA_ARGS__)

/* Masks, in place, the value after every credential marker in s (a
 * NUL-terminated string). Exposed for the tests and for any other text the
 * daemon emits that might carry a header dump (API error bodies). */
void es_log_redact(char *s);

#endif

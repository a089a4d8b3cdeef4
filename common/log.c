#include "common/log.h"
#include "common/secure.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* One line at most; longer messages are cut (and say so). */
#define LOG_LINE_MAX 4096

static es_log_level cur_level = ES_LOG_INFO;
static int to_journal;
static es_log_sink sink_fn;
static void *sink_arg;

static const struct {
    const char *name;
    es_log_level level;
} level_names[] = {
    {"error", ES_LOG_ERROR},   {"warn", ES_LOG_WARN}, {"warning", ES_LOG_WARN},
    {"notice", ES_LOG_NOTICE}, {"info", ES_LOG_INFO}, {"debug", ES_LOG_DEBUG},
};

int es_log_level_parse(const char *s, es_log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(s, level_names[i].name) == 0) {
            *out = level_names[i].level;
            return 0;
        }
    }
    return -EINVAL;
}

const char *es_log_level_name(es_log_level l)
{
    switch (l) {
    case ES_LOG_ERROR:
        return "error";
    case ES_LOG_WARN:
        return "warn";
    case ES_LOG_NOTICE:
        return "notice";
    case ES_LOG_INFO:
        return "info";
    case ES_LOG_DEBUG:
        return "debug";
    }
    return "?";
}

void es_log_set_level(es_log_level l)
{
    cur_level = l;
}

es_log_level es_log_get_level(void)
{
    return cur_level;
}

/* systemd sets JOURNAL_STREAM=<dev>:<ino> for the stream it connected to
 * stderr; when it still is stderr, the journal wants "<N>" prefixes. */
void es_log_init(void)
{
    to_journal = 0;
    const char *js = getenv("JOURNAL_STREAM");
    if (!js)
        return;
    unsigned long long dev = 0, ino = 0;
    if (sscanf(js, "%llu:%llu", &dev, &ino) != 2)
        return;
    struct stat st;
    if (fstat(STDERR_FILENO, &st) < 0)
        return;
    to_journal = (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void es_log_set_sink(es_log_sink sink, void *arg)
{
    sink_fn = sink;
    sink_arg = arg;
}

/* Markers after which a credential follows. Matching is case-insensitive.
 * The value ends at whitespace, a quote, '&', ',' or ';' (so the masking of
 * an Authorization header covers its whole remaining line). */
static const struct {
    const char *marker;
    int to_eol; /* mask to end of line rather than to the next delimiter */
} markers[] = {
    {"authorization:", 1},
    {"authorization\":", 0},
    {"signature=", 0},
    {"x-amz-signature=", 0},
    {"x-amz-security-token:", 1},
    {"x-amz-security-token=", 0},
    {"x-amz-security-token\":", 0},
    {"secretaccesskey", 0},
    {"secret_access_key", 0},
    {"sessiontoken", 0},
    {"session_token", 0},
    {"aws_secret_access_key", 0},
    {"\"token\":", 0},
    {"password=", 0},
    /* the awslogs credentials path's id (agent/endpoints/): Docker quotes
     * the URL when it cannot reach it */
    {"/v2/credentials/", 0},
};

static int is_delim(char c)
{
    return c == '\0' || isspace((unsigned char)c) || c == '&' || c == ',' || c == ';' || c == '"' ||
           c == '\'' || c == '<' || c == '}';
}

void es_log_redact(char *s)
{
    for (size_t m = 0; m < sizeof(markers) / sizeof(markers[0]); m++) {
        size_t ml = strlen(markers[m].marker);
        char *p = s;
        while ((p = strcasestr(p, markers[m].marker)) != NULL) {
            char *v = p + ml;
            /* skip separators between the marker and its value */
            while (*v == ' ' || *v == '"' || *v == ':' || *v == '=' || *v == '>')
                v++;
            char *e = v;
            if (markers[m].to_eol) {
                while (*e && *e != '\n' && *e != '\r')
                    e++;
            } else {
                while (!is_delim(*e))
                    e++;
            }
            if (e > v) {
                size_t n = (size_t)(e - v);
                if (n >= 3) {
                    memcpy(v, "***", 3);
                    memmove(v + 3, e, strlen(e) + 1);
                    e = v + 3;
                } else {
                    memset(v, '*', n);
                }
            }
            p = e;
        }
    }
}

void es_vlog(es_log_level l, const char *fmt, va_list ap)
{
    if (l > cur_level)
        return;
    char line[LOG_LINE_MAX];
    int n = vsnprintf(line, sizeof line, fmt, ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line)
        memcpy(line + sizeof line - 16, "... (truncated)", 16);
    /* one line per record: a newline inside a message becomes a space, so
     * that nobody can forge a log line through a peer's text */
    for (char *c = line; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    es_log_redact(line);
    if (sink_fn) {
        sink_fn(l, line, sink_arg);
    } else if (to_journal) {
        fprintf(stderr, "<%d>%s\n", (int)l, line);
    } else {
        struct timespec ts;
        struct tm tm;
        char when[32];
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(stderr, "%s.%03ldZ %s: %s\n", when, ts.tv_nsec / 1000000L, es_log_level_name(l),
                line);
    }
    es_wipe(line, sizeof line);
}

void es_log(es_log_level l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    es_vlog(l, fmt, ap);
    va_end(ap);
}

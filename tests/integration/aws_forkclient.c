/* aws_forkclient SOCKET ARGS...: one aws CLI call through aws_forkserver.py (see there), the
 * same request as aws_forkclient.py sends, from a process that costs a few milliseconds of CPU
 * instead of Python's 50-90 (the interpreter's start and its json and socket imports, measured
 * with scripts/cpu_by_command.py): a test makes up to a hundred calls, the suite over a
 * thousand. The CLI itself is unchanged: it runs in the server's forked child.
 *
 * Sends a 4-byte big-endian length with stdin, stdout and stderr themselves (SCM_RIGHTS), then
 * {"argv": [ARGS...], "env": {NAME: VALUE...}, "cwd": DIR} as JSON; exits with the CLI's exit
 * code, or 255 when the server ends the call without one. Strings are escaped as Python's
 * json.dumps escapes what os.environ decoded: a byte that is not UTF-8 goes as the lone
 * surrogate U+DC80-U+DCFF (surrogateescape), which the server's child turns back into the
 * same byte. The environment is the one aws_forkclient.py's interpreter would send: Python
 * (PEP 538) sets LC_CTYPE to a UTF-8 locale when the C locale is in effect, and so does this. */
#include <arpa/inet.h>
#include <errno.h>
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;

#define REQUEST_MAX (4u << 20) /* the server's limit on one call's argv and environment */

typedef struct {
    char *data;
    size_t len, cap;
} out_buf;

static void die(const char *what)
{
    fprintf(stderr, "aws_forkclient: %s: %s\n", what, strerror(errno));
    exit(255);
}

static void put(out_buf *b, const void *p, size_t n)
{
    if (b->len + n > REQUEST_MAX) {
        fprintf(stderr, "aws_forkclient: the call's argv and environment exceed %u bytes\n",
                REQUEST_MAX);
        exit(255);
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + n)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            die("realloc");
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void put_s(out_buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* the length of the valid UTF-8 sequence at s (strict: no overlong forms, no surrogates, at
 * most U+10FFFF), 0 if there is none */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (s[0] >= 0xe0 && s[0] <= 0xef) {
        unsigned lo = s[0] == 0xe0 ? 0xa0 : 0x80, hi = s[0] == 0xed ? 0x9f : 0xbf;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        unsigned lo = s[0] == 0xf0 ? 0x90 : 0x80, hi = s[0] == 0xf4 ? 0x8f : 0xbf;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80 ? 4 : 0;
    }
    return 0;
}

static void put_json_string(out_buf *b, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    char esc[8];
    put(b, "\"", 1);
    while (*s) {
        size_t n = utf8_len(s);
        if (n == 0) { /* not UTF-8: the byte as Python's surrogateescape decodes it */
            snprintf(esc, sizeof esc, "\\udc%02x", *s);
            put(b, esc, 6);
            s++;
        } else if (*s == '"' || *s == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*s;
            put(b, esc, 2);
            s++;
        } else if (*s < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *s);
            put(b, esc, 6);
            s++;
        } else {
            put(b, s, n);
            s += n;
        }
    }
    put(b, "\"", 1);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL); /* a server gone: an error, not SIGPIPE */
        if (w < 0) {
            if (errno == EINTR)
                continue;
            die("send");
        }
        p += w;
        n -= (size_t)w;
    }
}

/* what Python's start does to the environment in the C locale (PEP 538, with -I: no
 * PYTHONCOERCECLOCALE): unless LC_ALL is set, a "C" or "POSIX" LC_CTYPE (also the one left
 * when the environment names a locale that does not exist) becomes the first of C.UTF-8,
 * C.utf8, UTF-8 the C library knows, exported as LC_CTYPE */
static void coerce_c_locale(void)
{
    const char *all = getenv("LC_ALL");
    if (all && *all)
        return;
    setlocale(LC_CTYPE, "");
    const char *loc = setlocale(LC_CTYPE, NULL);
    if (!loc || (strcmp(loc, "C") != 0 && strcmp(loc, "POSIX") != 0))
        return;
    static const char *const targets[] = {"C.UTF-8", "C.utf8", "UTF-8"};
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        if (setlocale(LC_CTYPE, targets[i])) {
            setenv("LC_CTYPE", targets[i], 1);
            return;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: aws_forkclient SOCKET ARGS...\n");
        return 2;
    }
    coerce_c_locale();
    out_buf body = {0};
    put_s(&body, "{\"argv\": [");
    for (int i = 2; i < argc; i++) {
        if (i > 2)
            put_s(&body, ", ");
        put_json_string(&body, argv[i]);
    }
    put_s(&body, "], \"env\": {");
    int first = 1;
    for (char **e = environ; *e; e++) {
        char *eq = strchr(*e, '=');
        if (!eq || eq == *e)
            continue; /* os.environ leaves out what has no name */
        if (!first)
            put_s(&body, ", ");
        first = 0;
        *eq = '\0';
        put_json_string(&body, *e);
        *eq = '=';
        put_s(&body, ": ");
        put_json_string(&body, eq + 1);
    }
    put_s(&body, "}, \"cwd\": ");
    char *cwd = getcwd(NULL, 0);
    if (!cwd)
        die("getcwd");
    put_json_string(&body, cwd);
    free(cwd);
    put_s(&body, "}");

    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        die("socket");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t path_len = strlen(argv[1]);
    if (path_len >= sizeof sa.sun_path) {
        fprintf(stderr, "aws_forkclient: socket path too long: %s\n", argv[1]);
        return 255;
    }
    memcpy(sa.sun_path, argv[1], path_len + 1);
    if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0)
        die(argv[1]);

    uint32_t len = htonl((uint32_t)body.len);
    int fds[3] = {0, 1, 2};
    union {
        char buf[CMSG_SPACE(sizeof fds)];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct iovec iov = {.iov_base = &len, .iov_len = sizeof len};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof fds);
    memcpy(CMSG_DATA(cm), fds, sizeof fds);
    ssize_t w;
    do
        w = sendmsg(s, &msg, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w != (ssize_t)sizeof len)
        die("sendmsg");
    write_all(s, body.data, body.len);
    free(body.data);

    unsigned char rc[4];
    size_t got = 0;
    while (got < sizeof rc) {
        ssize_t r = read(s, rc + got, sizeof rc - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            fputs("aws_forkclient: the CLI's process ended without an exit code\n", stderr);
            return 255;
        }
        got += (size_t)r;
    }
    int32_t code = (int32_t)(((uint32_t)rc[0] << 24) | ((uint32_t)rc[1] << 16) |
                             ((uint32_t)rc[2] << 8) | rc[3]);
    return code & 0xff; /* as sys.exit(code) leaves it in the exit status */
}

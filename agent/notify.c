#include "agent/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int ag_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return 0;
    size_t plen = strlen(path);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if ((path[0] != '/' && path[0] != '@') || plen >= sizeof sa.sun_path)
        return -EINVAL;
    memcpy(sa.sun_path, path, plen);
    if (path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract namespace */
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);

    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
    int ret = n < 0 ? -errno : 0;
    close(fd);
    return ret;
}

int ag_notifyf(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    return ag_notify(msg);
}

uint64_t ag_watchdog_usec(void)
{
    const char *us = getenv("WATCHDOG_USEC");
    if (!us)
        return 0;
    const char *pid = getenv("WATCHDOG_PID");
    if (pid) {
        char *end = NULL;
        long p = strtol(pid, &end, 10);
        if (!end || *end || p != (long)getpid())
            return 0;
    }
    char *end = NULL;
    unsigned long long v = strtoull(us, &end, 10);
    if (!end || *end)
        return 0;
    return (uint64_t)v;
}

/* rotator.c - the timer that carries out due rotations (rotator.h). */
#include "agent/rotator.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/log.h"

struct ag_rotator {
    uv_timer_t timer;
    al_ctx *al;
    void (*done)(void *arg);
    void *done_arg;
    int last_error; /* a failure is logged when it first appears, not every tick */
};

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_tick(uv_timer_t *t)
{
    ag_rotator *r = t->data;
    int n = al_sm_rotate_due(r->al, wall_now());
    if (n < 0 && n != r->last_error)
        es_warn("rotation: due rotations could not be carried out: %s", strerror(-n));
    else if (n > 0)
        es_info("rotation: %d scheduled rotation(s) or hook step(s) carried out", n);
    r->last_error = n < 0 ? n : 0;
}

int ag_rotator_start(uv_loop_t *loop, al_ctx *al, uint64_t tick_ms, ag_rotator **out)
{
    if (!loop || !al || !out || tick_ms == 0)
        return -EINVAL;
    ag_rotator *r = es_calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->al = al;
    int rc = uv_timer_init(loop, &r->timer);
    if (rc < 0) {
        es_free(r);
        return rc;
    }
    r->timer.data = r;
    if ((rc = uv_timer_start(&r->timer, on_tick, tick_ms, tick_ms)) < 0) {
        uv_close((uv_handle_t *)&r->timer, (uv_close_cb)es_free);
        return rc;
    }
    *out = r;
    return 0;
}

static void closed(uv_handle_t *h)
{
    ag_rotator *r = h->data;
    void (*done)(void *) = r->done;
    void *arg = r->done_arg;
    es_free(r);
    if (done)
        done(arg);
}

void ag_rotator_close(ag_rotator *r, void (*done)(void *arg), void *arg)
{
    if (!r) {
        if (done)
            done(arg);
        return;
    }
    r->done = done;
    r->done_arg = arg;
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, closed);
}

/* rotator.h - the embedded Secrets Manager's scheduled rotations, driven
 * from the loop.
 *
 * A secret whose rotation schedule has come due (RotateSecret's
 * RotationRules) is rotated when something touches it, or by this timer,
 * whichever comes first: without it a secret nobody reads would never
 * rotate, and a service's drift report could not notice the new value. The
 * same tick advances rotation hooks (executables run for RotationLambdaARN)
 * from one step to the next. Embedded mode only: in aws mode AWS rotates. */
#ifndef AG_ROTATOR_H
#define AG_ROTATOR_H

#include <stdint.h>
#include <uv.h>

#include "aws/local/local.h"

/* The tick: short, because each hook step waits for it (four steps). One
 * tick is one indexed query when nothing is due. */
#define AG_ROTATOR_TICK_MS 1000

typedef struct ag_rotator ag_rotator;

/* Starts ticking every tick_ms on loop over the store al (which must outlive
 * the rotator until its close has reported). 0 or -errno. */
int ag_rotator_start(uv_loop_t *loop, al_ctx *al, uint64_t tick_ms, ag_rotator **out);
/* Stops the timer; done(arg) once its handle is closed and the memory gone. */
void ag_rotator_close(ag_rotator *r, void (*done)(void *arg), void *arg);

#endif

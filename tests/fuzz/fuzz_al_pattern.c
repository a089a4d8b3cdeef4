/* Fuzzes SSM's AllowedPattern check (al_ssm_check_pattern, PCRE2 with bounded cost): the
 * input up to its first newline is the pattern, the rest the value (each cut at a NUL, as the
 * C strings PutParameter passes; each cut to what PutParameter admits). Every answer is a
 * match, a mismatch, a refused pattern or an internal error, complete, with a message naming
 * the pattern and never the value; and no check runs for long (the limits of
 * aws/local/ssm.c hold whatever the pattern). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/local/ssm.h"

/* far above the store's CPU ceiling (100 ms): only a bound that does not hold trips it */
#define FUZZ_PATTERN_CPU_MAX_MS 2000.0

static double cpu_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char pattern[AL_SSM_PATTERN_MAX + 1], value[AL_SSM_ADVANCED_VALUE_MAX + 1];
    const uint8_t *nl = memchr(data, '\n', size);
    size_t plen = nl ? (size_t)(nl - data) : size;
    size_t vlen = nl ? size - plen - 1 : 0;
    if (plen > AL_SSM_PATTERN_MAX)
        plen = AL_SSM_PATTERN_MAX;
    if (vlen > AL_SSM_ADVANCED_VALUE_MAX)
        vlen = AL_SSM_ADVANCED_VALUE_MAX;
    memcpy(pattern, data, plen);
    pattern[plen] = '\0';
    if (nl)
        memcpy(value, nl + 1, vlen);
    value[vlen] = '\0';

    al_error e;
    memset(&e, 0, sizeof e);
    double t0 = cpu_ms();
    int r = al_ssm_check_pattern(pattern, value, &e);
    if (cpu_ms() - t0 > FUZZ_PATTERN_CPU_MAX_MS)
        __builtin_trap(); /* the cost of a check is bounded */
    if (r == 0)
        return 0;
    if (e.status < 400 || !e.code[0] || !e.message[0])
        __builtin_trap(); /* every failure is a complete AWS error */
    /* and one of these, whose message names the pattern, never the value (it may be a
     * secret) */
    char want[AL_MESSAGE_MAX], costly[AL_MESSAGE_MAX] = "";
    if (strcmp(e.code, "InvalidAllowedPatternException") == 0) {
        snprintf(want, sizeof want, "The allowed pattern '%s' is not a valid regular expression.",
                 pattern);
    } else if (strcmp(e.code, "ParameterPatternMismatchException") == 0) {
        snprintf(want, sizeof want,
                 "Parameter value, cannot be validated against allowedPattern: %s", pattern);
        snprintf(costly, sizeof costly,
                 "Parameter value, cannot be validated against allowedPattern: the pattern is "
                 "too costly to evaluate against this value (it backtracks beyond the "
                 "embedded store's limits; simplify it): %s",
                 pattern);
    } else if (strcmp(e.code, "InternalServerError") == 0) {
        snprintf(want, sizeof want, "An internal error occurred in the embedded store.");
    } else {
        __builtin_trap();
    }
    if (strcmp(e.message, want) != 0 && strcmp(e.message, costly) != 0)
        __builtin_trap();
    return 0;
}

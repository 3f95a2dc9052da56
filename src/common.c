/* common.c - the project-wide error helper and clocks (see include/egressd/common.h). */
#include "egressd/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int egr_fail(struct egr_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

static uint64_t clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t egr_mono_us(void)
{
    return clock_us(CLOCK_MONOTONIC);
}

uint64_t egr_wall_us(void)
{
    return clock_us(CLOCK_REALTIME);
}

void egr_copy(char *dst, size_t n, const char *src)
{
    if (n == 0)
        return;
    const char *end = memchr(src, '\0', n - 1);
    size_t len = end ? (size_t)(end - src) : n - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

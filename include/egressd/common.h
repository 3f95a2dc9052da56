/* common.h - the project-wide return convention and small shared helpers.
 *
 * One convention everywhere (see docs/architecture.md): functions that can
 * fail return EGR_OK (0) on success and a negative EGR_E* code on failure.
 * A caller that needs words gets them through a caller-owned `struct egr_err`
 * filled by the failing function; deep code never prints and never exits.
 */
#ifndef EGRESSD_COMMON_H
#define EGRESSD_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define EGR_OK 0
#define EGR_ERR (-1)    /* generic failure, message in struct egr_err */
#define EGR_ENOMEM (-2) /* allocation failed */
#define EGR_EINVAL (-3) /* invalid argument or input */
#define EGR_EIO (-4)    /* I/O error (file, socket) */

#define EGR_ERR_MAX 512

/* A caller-owned error message. Functions that fail write one line into it
 * (no trailing newline), naming the object (file, field) and the reason. */
struct egr_err {
    char msg[EGR_ERR_MAX];
};

/* Formats into err (if non-NULL) and returns `code`, so a failure path reads
 * `return egr_fail(err, EGR_EINVAL, "%s: bad value", path);` */
int egr_fail(struct egr_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies src into dst (n bytes), cut to fit and always terminated when n
 * > 0: snprintf(dst, n, "%s", src) without the format machinery, which was
 * a visible share of the per-record path. */
void egr_copy(char *dst, size_t n, const char *src);

#define EGR_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Clocks in microseconds: monotonic for intervals and deadlines, wall
 * (CLOCK_REALTIME) for timestamps written out. */
uint64_t egr_mono_us(void);
uint64_t egr_wall_us(void);

#endif

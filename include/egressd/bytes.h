/* bytes.h - a bounded reader over untrusted bytes (packets, payloads).
 *
 * Every read says how many bytes it needs and fails, consuming nothing,
 * when fewer remain: code that parses wire data never indexes a buffer
 * directly, so a short or hostile packet becomes an error return instead of
 * a read past the end (the role tcpdump's GET_BE_U_2 and friends play, with
 * a return code where tcpdump longjmps). Multi-byte getters are big-endian
 * (network order) unless the name says otherwise.
 *
 * Return convention (common.h): EGR_OK, or EGR_EINVAL when the window holds
 * fewer bytes than asked; on failure the position is unchanged and an output
 * value is set to 0, so a caller that ignores an error reads zeros, never
 * stale or uninitialised data. Reads can be chained with ||:
 *
 *     if (bytes_get_be16(&r, &sport) || bytes_get_be16(&r, &dport))
 *         return short_packet();
 *
 * A reader does not own its bytes; it is valid as long as they are. All
 * functions are inline and allocation-free (they run per packet).
 */
#ifndef EGRESSD_BYTES_H
#define EGRESSD_BYTES_H

#include <stdint.h>
#include <string.h>

#include "egressd/common.h"

struct bytes_rd {
    const uint8_t *p; /* start of the window */
    uint32_t len;     /* bytes in the window */
    uint32_t off;     /* read position; invariant: off <= len */
};

static inline void bytes_init(struct bytes_rd *r, const uint8_t *p, uint32_t len)
{
    r->p = p;
    r->len = len;
    r->off = 0;
}

/* Bytes left to read. */
static inline uint32_t bytes_left(const struct bytes_rd *r)
{
    return r->len - r->off;
}

/* 1 if at least n bytes are left. Written so that no sum can overflow. */
static inline int bytes_has(const struct bytes_rd *r, uint32_t n)
{
    return n <= r->len - r->off;
}

/* The read position as a pointer (one past the end when nothing is left;
 * never dereference it without a length check). */
static inline const uint8_t *bytes_cur(const struct bytes_rd *r)
{
    return r->p + r->off;
}

/* Shrinks the window so that at most n bytes are left from the position
 * (e.g. an IP total length below the captured length). Never grows it. */
static inline void bytes_clip(struct bytes_rd *r, uint32_t n)
{
    if (n < r->len - r->off)
        r->len = r->off + n;
}

static inline int bytes_skip(struct bytes_rd *r, uint32_t n)
{
    if (!bytes_has(r, n))
        return EGR_EINVAL;
    r->off += n;
    return EGR_OK;
}

static inline int bytes_get_u8(struct bytes_rd *r, uint8_t *v)
{
    if (!bytes_has(r, 1)) {
        *v = 0;
        return EGR_EINVAL;
    }
    *v = r->p[r->off];
    r->off += 1;
    return EGR_OK;
}

static inline int bytes_get_be16(struct bytes_rd *r, uint16_t *v)
{
    if (!bytes_has(r, 2)) {
        *v = 0;
        return EGR_EINVAL;
    }
    const uint8_t *b = r->p + r->off;
    *v = (uint16_t)((unsigned)b[0] << 8 | b[1]);
    r->off += 2;
    return EGR_OK;
}

static inline int bytes_get_be32(struct bytes_rd *r, uint32_t *v)
{
    if (!bytes_has(r, 4)) {
        *v = 0;
        return EGR_EINVAL;
    }
    const uint8_t *b = r->p + r->off;
    *v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    r->off += 4;
    return EGR_OK;
}

/* Copies n bytes out (addresses, opaque fields). */
static inline int bytes_get_bytes(struct bytes_rd *r, void *dst, uint32_t n)
{
    if (!bytes_has(r, n)) {
        memset(dst, 0, n);
        return EGR_EINVAL;
    }
    if (n)
        memcpy(dst, r->p + r->off, n);
    r->off += n;
    return EGR_OK;
}

/* Peeks: read `at` bytes beyond the position without moving it. */
static inline int bytes_peek_u8(const struct bytes_rd *r, uint32_t at, uint8_t *v)
{
    if (at >= r->len - r->off) {
        *v = 0;
        return EGR_EINVAL;
    }
    *v = r->p[r->off + at];
    return EGR_OK;
}

static inline int bytes_peek_be16(const struct bytes_rd *r, uint32_t at, uint16_t *v)
{
    struct bytes_rd t = *r;
    if (bytes_skip(&t, at) != EGR_OK) {
        *v = 0;
        return EGR_EINVAL;
    }
    return bytes_get_be16(&t, v);
}

static inline int bytes_peek_be32(const struct bytes_rd *r, uint32_t at, uint32_t *v)
{
    struct bytes_rd t = *r;
    if (bytes_skip(&t, at) != EGR_OK) {
        *v = 0;
        return EGR_EINVAL;
    }
    return bytes_get_be32(&t, v);
}

#endif

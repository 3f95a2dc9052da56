/* redis-url.c - parses the Redis URL of redis.url / --redis (see
 * include/egressd/redis-url.h).
 *
 * Strict on purpose: a port out of range, a database that is not a number
 * or an unknown query parameter is an error at start, not a surprise at the
 * first reconnect. Messages never repeat a user's password.
 */
#include "egressd/redis-url.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_PORT 6379

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into out (NUL-terminated). -1 if it does not fit,
 * holds a bad escape, or decodes to a NUL (which no C string can carry). */
static int pct_decode(const char *s, size_t n, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int h = hexval((unsigned char)s[i + 1]), l = hexval((unsigned char)s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = h * 16 + l;
            i += 2;
        }
        if (o + 1 >= size || c == 0)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

/* Decimal s[0..n), no sign, at most max. */
static int parse_uint(const char *s, size_t n, unsigned long max, unsigned long *out)
{
    if (n == 0 || n > 10)
        return -1;
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

static void make_shown(struct redis_endpoint *ep)
{
    if (ep->is_unix) {
        if (ep->db)
            snprintf(ep->shown, sizeof(ep->shown), "unix://%.300s?db=%u", ep->host, ep->db);
        else
            snprintf(ep->shown, sizeof(ep->shown), "unix://%.300s", ep->host);
    } else {
        int v6 = strchr(ep->host, ':') != NULL;
        snprintf(ep->shown, sizeof(ep->shown), "redis://%.100s%s%s%.200s%s:%d/%u", ep->user,
                 ep->user[0] ? "@" : "", v6 ? "[" : "", ep->host, v6 ? "]" : "", ep->port, ep->db);
    }
    for (char *c = ep->shown; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?'; /* a decoded %0a must not split a log line */
}

/* unix://PATH[?db=N&user=U&password=P] */
static int parse_unix(const char *rest, struct redis_endpoint *ep, struct egr_err *err)
{
    const char *q = strchr(rest, '?');
    size_t plen = q ? (size_t)(q - rest) : strlen(rest);
    if (plen == 0 || rest[0] != '/' || pct_decode(rest, plen, ep->host, sizeof(ep->host)))
        return egr_fail(err, EGR_EINVAL,
                        "redis.url: bad socket path (want unix:///path/to/redis.sock)");
    ep->is_unix = 1;
    while (q) {
        const char *k = q + 1, *amp = strchr(k, '&');
        size_t klen = amp ? (size_t)(amp - k) : strlen(k);
        const char *eq = memchr(k, '=', klen);
        if (!eq)
            return egr_fail(err, EGR_EINVAL, "redis.url: bad parameter \"%.*s\" (want name=value)",
                            klen > 40 ? 40 : (int)klen, k);
        size_t nlen = (size_t)(eq - k), vlen = klen - nlen - 1;
        const char *val = eq + 1;
        unsigned long v;
        if (nlen == 2 && !memcmp(k, "db", 2)) {
            if (parse_uint(val, vlen, INT_MAX, &v))
                return egr_fail(err, EGR_EINVAL, "redis.url: bad database number");
            ep->db = (unsigned)v;
        } else if (nlen == 4 && !memcmp(k, "user", 4)) {
            if (pct_decode(val, vlen, ep->user, sizeof(ep->user)))
                return egr_fail(err, EGR_EINVAL, "redis.url: bad user name");
        } else if (nlen == 8 && !memcmp(k, "password", 8)) {
            if (pct_decode(val, vlen, ep->pass, sizeof(ep->pass)))
                return egr_fail(err, EGR_EINVAL, "redis.url: bad password");
        } else {
            return egr_fail(err, EGR_EINVAL,
                            "redis.url: unknown parameter \"%.*s\" (known: db, user, password)",
                            nlen > 40 ? 40 : (int)nlen, k);
        }
        q = amp;
    }
    return EGR_OK;
}

/* redis://[[user]:password@]host[:port][/db] */
static int parse_tcp(const char *p, struct redis_endpoint *ep, struct egr_err *err)
{
    const char *slash = strchr(p, '/');
    const char *end = slash ? slash : p + strlen(p);
    const char *at = NULL;
    for (const char *x = p; x < end; x++)
        if (*x == '@')
            at = x; /* the last '@': a password may hold one, encoded or not */
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            if (pct_decode(p, (size_t)(colon - p), ep->user, sizeof(ep->user)) ||
                pct_decode(colon + 1, (size_t)(at - colon - 1), ep->pass, sizeof(ep->pass)))
                return egr_fail(err, EGR_EINVAL, "redis.url: bad user or password");
        } else if (pct_decode(p, (size_t)(at - p), ep->pass, sizeof(ep->pass))) {
            return egr_fail(err, EGR_EINVAL, "redis.url: bad password");
        }
        p = at + 1;
    }

    const char *hend;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        size_t hlen = rb ? (size_t)(rb - p - 1) : 0;
        if (!rb || hlen == 0 || hlen >= sizeof(ep->host))
            return egr_fail(err, EGR_EINVAL, "redis.url: bad bracketed host");
        memcpy(ep->host, p + 1, hlen);
        hend = rb + 1;
    } else {
        hend = memchr(p, ':', (size_t)(end - p));
        if (!hend)
            hend = end;
        size_t hlen = (size_t)(hend - p);
        if (hlen == 0 || hlen >= sizeof(ep->host))
            return egr_fail(err, EGR_EINVAL, "redis.url: missing or bad host");
        memcpy(ep->host, p, hlen);
    }
    unsigned long v;
    if (hend < end) {
        if (*hend != ':' || parse_uint(hend + 1, (size_t)(end - hend - 1), 65535, &v) || v == 0)
            return egr_fail(err, EGR_EINVAL, "redis.url: bad port");
        ep->port = (int)v;
    }
    if (slash && slash[1]) {
        if (parse_uint(slash + 1, strlen(slash + 1), INT_MAX, &v))
            return egr_fail(err, EGR_EINVAL, "redis.url: bad database number \"%.20s\"",
                            slash + 1);
        ep->db = (unsigned)v;
    }
    return EGR_OK;
}

int redis_url_parse(const char *url, struct redis_endpoint *ep, struct egr_err *err)
{
    memset(ep, 0, sizeof(*ep));
    ep->port = DEFAULT_PORT;
    int rc;
    if (!strncmp(url, "unix://", 7))
        rc = parse_unix(url + 7, ep, err);
    else if (!strncmp(url, "redis://", 8))
        rc = parse_tcp(url + 8, ep, err);
    else if (!strncmp(url, "rediss://", 9))
        rc = egr_fail(err, EGR_EINVAL, "redis.url: TLS (rediss://) is not supported");
    else {
        /* Only the scheme is quoted: the rest may hold a password. */
        const char *sep = strstr(url, "://");
        int n = sep && sep - url < 16 ? (int)(sep - url) : 0;
        rc = egr_fail(err, EGR_EINVAL,
                      "redis.url: %s%.*s%s is not redis://[user:password@]host[:port][/db] or "
                      "unix:///path",
                      n ? "scheme \"" : "the value", n, url, n ? "\"" : "");
    }
    if (rc != EGR_OK) {
        /* Leave nothing of a password behind in a failed parse. */
        memset(ep, 0, sizeof(*ep));
        return rc;
    }
    make_shown(ep);
    return EGR_OK;
}

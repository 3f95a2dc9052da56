/* redis-url.h - where a Redis server is and how to log in: the URL of
 * redis.url / --redis, parsed.
 *
 *   redis://[[user]:password@]host[:port][/db]    ("secret@host" alone is a
 *                                                  password, as redis-cli reads it)
 *   unix:///path/to/redis.sock[?db=N&user=U&password=P]
 *
 * User, password and socket path may be percent-encoded; an IPv6 address is
 * written in brackets. rediss:// (TLS) is refused. Pure parsing, no I/O.
 */
#ifndef EGRESSD_REDIS_URL_H
#define EGRESSD_REDIS_URL_H

#include "egressd/common.h"

struct redis_endpoint {
    int is_unix;
    char host[256];  /* host name or address, or the socket path */
    int port;        /* 6379 unless given */
    unsigned db;     /* 0 unless given */
    char user[128];  /* "" = the default user */
    char pass[256];  /* "" = no AUTH */
    /* The URL for messages: no password, control bytes as '?', so it is
     * safe in a log line. */
    char shown[400];
};

/* Parses url into ep. EGR_OK, or EGR_EINVAL with "redis.url: reason" in
 * err (the password is never quoted back). */
int redis_url_parse(const char *url, struct redis_endpoint *ep, struct egr_err *err);

#endif

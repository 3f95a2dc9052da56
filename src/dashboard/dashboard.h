/* dashboard.h - private interfaces of egressd-dashboard, the web service
 * that shows what sensors wrote to Redis (docs/dashboard.md). It reads
 * only Redis: dash-redis.c keeps the connections, dash-http.c answers the
 * HTTP requests, main.c wires them on one libevent loop (one thread).
 */
#ifndef EGRESSD_DASHBOARD_H
#define EGRESSD_DASHBOARD_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

struct evhttp;
struct evhttp_request;
struct evconnlistener;

#include "egressd/common.h"
#include "egressd/redis-url.h"

/* A Redis reply copied out of hiredis (which frees its replies when the
 * callback returns). type is hiredis' REDIS_REPLY_*. */
struct dash_val {
    int type;
    long long integer;
    char *str; /* NUL-terminated copy of len bytes (status, error, string) */
    size_t len;
    struct dash_val *el; /* arrays: n elements */
    size_t n;
};

struct dash_redis;

/* Called for each alert entry the blocking reader sees ([id, [f, v, ...]]),
 * and with entry NULL when Redis goes up or down (up says which). */
typedef void (*dash_redis_notify_fn)(void *ctx, const struct dash_val *entry, int up);

/* --layout: the keys the sensors write (docs/redis-schema.md#layouts). */
enum { DASH_LAYOUT_AUTO = 0, DASH_LAYOUT_SHARED, DASH_LAYOUT_PER_SENSOR };

/* Connections to ep on base: one for queries (on a cluster, one per
 * master), and what follows new alerts: on one server with the shared
 * layout a connection that tails {prefix}:alerts with XREAD BLOCK from "$",
 * otherwise a poll of every sensor's alert stream. All reconnect by
 * themselves (100 ms doubling to 5 s). Commands of batches are written as
 * for the shared layout; with the per-sensor one (layout, or auto on a
 * cluster) they are sent to every sensor's keys and the replies merged.
 * Returns NULL on allocation failure. */
struct dash_redis *dash_redis_new(struct event_base *base, const struct redis_endpoint *ep,
                                  const char *prefix, int layout, dash_redis_notify_fn fn,
                                  void *ctx);
/* Closes both connections; pending batches are answered as failed. */
void dash_redis_free(struct dash_redis *r);
int dash_redis_up(const struct dash_redis *r);
const char *dash_redis_prefix(const struct dash_redis *r);

/* A batch: commands pipelined on the query connection, whose replies are
 * handed to fn together once all have arrived. ok is 0 when Redis was down
 * or the connection dropped before every reply came (replies then holds
 * nothing useful). The batch and its replies are freed when fn returns;
 * fn may start new batches. fn is always called exactly once, possibly
 * from dash_batch_run() itself. */
struct dash_batch;
typedef void (*dash_batch_fn)(void *ctx, const struct dash_val *replies, size_t n, int ok);
struct dash_batch *dash_batch_new(struct dash_redis *r, dash_batch_fn fn, void *ctx);
void dash_batch_cmd(struct dash_batch *b, int argc, const char **argv, const size_t *lens);
/* Printf-free convenience: arguments as NUL-terminated strings, NULL-ended. */
void dash_batch_cmdv(struct dash_batch *b, const char *arg0, ...);
void dash_batch_run(struct dash_batch *b);

struct dash_http_opts {
    const char *listen_host;
    int listen_port;
    const char *token;      /* NULL or "" = no token */
    const char *static_dir; /* the dashboards/ directory */
    size_t max_conns;       /* connections open at once (dash-conn.c) */
    double request_timeout; /* seconds for a request to arrive whole */
};

struct dash_http;
/* Binds and serves on base. EGR_OK or an error with a message in err. */
int dash_http_new(struct event_base *base, struct dash_redis **redis,
                  const struct dash_http_opts *o, struct dash_http **out, struct egr_err *err);
/* For dash_redis_notify_fn: fans alerts and Redis state out to SSE clients. */
void dash_http_notify(void *ctx, const struct dash_val *entry, int up);
void dash_http_free(struct dash_http *h);

/* Connection limits (dash-conn.c): a deadline for each request, a cap on
 * open connections, accept() errors backed off. */
struct dash_conns;
struct dash_conn_stats {
    size_t open, max;
    uint64_t late, evicted, accept_errors;
};
/* Hooks into http (evhttp_set_bevcb) before it accepts anything. NULL on
 * allocation failure. */
struct dash_conns *dash_conns_new(struct event_base *base, struct evhttp *http, size_t max_conns,
                                  double request_timeout);
/* The listener http accepts on (bound with evhttp_bind_listener): its
 * errors are backed off, and it is paused at the cap. */
void dash_conns_listen(struct dash_conns *c, struct evconnlistener *lev);
/* A request arrived whole: its connection is busy until the reply is sent. */
void dash_conns_request(struct dash_conns *c, struct evhttp_request *req);
void dash_conns_stats(const struct dash_conns *c, struct dash_conn_stats *st);
/* Before evhttp_free(): stop minding the listener; dash_conns_free()
 * after it drops what is left. */
void dash_conns_detach(struct dash_conns *c);
void dash_conns_free(struct dash_conns *c);

#endif

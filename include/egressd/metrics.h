/* metrics.h - Prometheus /metrics and /healthz over HTTP (libevent's
 * evhttp) on the control thread's event loop.
 *
 * The server owns no counters: on every request it asks its owner for a
 * view (per-worker run_stats, the sensor's totals, whether capture is
 * healthy) and renders it in the Prometheus text exposition format.
 */
#ifndef EGRESSD_METRICS_H
#define EGRESSD_METRICS_H

#include <stddef.h>

#include "egressd/common.h"
#include "egressd/sink.h"

struct event_base;
struct evbuffer;

struct metrics_view {
    size_t nworkers;
    const struct run_stats *worker; /* [nworkers] each worker's own counters */
    const char *const *iface;       /* [nworkers] the interface each one reads */
    const struct run_stats *total;  /* workers summed, plus the sensor's counters */
    int healthy;                    /* 1 while every worker is capturing */
};

/* Fills *v; the arrays stay valid until the next call. Called on the
 * control thread. */
typedef void (*metrics_view_fn)(void *arg, struct metrics_view *v);

struct metrics;

/* Listens on `addr`: "HOST:PORT", "[V6]:PORT" or "PORT" (127.0.0.1). Port 0
 * picks a free one (see metrics_port). Errors: EGR_EINVAL for a malformed
 * address, EGR_EIO when it cannot be bound. */
int metrics_open(struct event_base *base, const char *addr, metrics_view_fn fn, void *arg,
                 struct metrics **out, struct egr_err *err);

/* The port actually bound. */
int metrics_port(const struct metrics *m);

void metrics_close(struct metrics *m);

/* Renders v in the text exposition format into buf (exposed for tests). */
void metrics_render(struct evbuffer *buf, const struct metrics_view *v);

#endif

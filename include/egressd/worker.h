/* worker.h - per-packet glue: decode -> flow table -> classify, for one
 * capture worker. A worker owns its decode counters, its nDPI module and its
 * flow table, and shares nothing, so workers need no locks. Records leave
 * through the emit callback given at creation.
 */
#ifndef EGRESSD_WORKER_H
#define EGRESSD_WORKER_H

#include "egressd/capture.h"
#include "egressd/config.h"
#include "egressd/flow.h"
#include "egressd/sink.h"

struct worker;

/* Called on every record before enrichment reads its direction: the policy
 * sets direction, asset and role here. Must be cheap and thread-safe for a
 * shared read-only policy. */
typedef void (*worker_annotate_fn)(void *arg, struct flow_record *rec);
void worker_set_annotate(struct worker *w, worker_annotate_fn fn, void *arg);

int worker_new(const struct egr_config *cfg, flow_emit_fn emit, void *emit_arg,
               struct worker **out, struct egr_err *err);
void worker_free(struct worker *w);

/* Decodes and accounts one frame of link type dlt. */
void worker_packet(struct worker *w, int dlt, const struct capture_pkt *p);

/* Moves the worker's time to now_us without a packet (a live capture on a
 * quiet link, with the wall clock), so idle flows expire. Ignored when
 * now_us is not later than the newest packet seen. */
void worker_tick(struct worker *w, uint64_t now_us);

/* Emits every tracked flow with `reason`. */
void worker_flush(struct worker *w, enum flow_end_reason reason);

/* Adds this worker's counters into *st (capture, decode and flow sections). */
void worker_stats(const struct worker *w, struct run_stats *st);

#endif

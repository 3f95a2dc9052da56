/* worker.h - per-packet glue: decode -> flow table -> classify -> judge,
 * for one capture worker. A worker owns its decode counters, its nDPI
 * module, its flow table and its policy stage, and reaches what is shared
 * (policy, alert state, sinks) only through its own sensor port, so workers
 * take no lock on the packet or record path.
 */
#ifndef EGRESSD_WORKER_H
#define EGRESSD_WORKER_H

#include "egressd/capture.h"
#include "egressd/config.h"
#include "egressd/flow.h"
#include "egressd/sensor.h"
#include "egressd/sink.h"

struct worker;

/* A worker writing into sensor s through a port of its own. Call it from
 * the thread that will run it (or before starting that thread). */
int worker_new(const struct egr_config *cfg, struct sensor *s, struct worker **out,
               struct egr_err *err);
/* Closes the worker's port (its buffered output goes to the sinks). */
void worker_free(struct worker *w);

/* Makes w worker `self` of n replaying the same capture side by side
 * (replay.h): every one of them is given every frame, accounts only the
 * flows whose address pair hashes to it, and lets the other frames move its
 * clock and feed its passive DNS. n <= 1: the worker takes every frame. */
void worker_share(struct worker *w, unsigned self, unsigned n);

/* Decodes and accounts one frame of link type dlt. */
void worker_packet(struct worker *w, int dlt, const struct capture_pkt *p);

/* Moves the worker's time to now_us without a packet (a live capture on a
 * quiet link, with the wall clock), so idle flows expire and open flows
 * past their decision bound are decided. Ignored when now_us is not later
 * than the newest packet seen. */
void worker_tick(struct worker *w, uint64_t now_us);

/* Hands the worker's buffered records to the sinks if it has not done so
 * for a while (force: now). Call it between packets now and then. */
void worker_output_tick(struct worker *w, int force);

/* Emits every tracked flow with `reason`. */
void worker_flush(struct worker *w, enum flow_end_reason reason);

/* Adds this worker's counters into *st (capture, decode and flow sections). */
/* (names_learned counts the passive-DNS table's inserts: every worker of a
 * shared replay learns every answer, so take one worker's, not the sum.) */
void worker_stats(const struct worker *w, struct run_stats *st);

/* Adds the counters of one worker's snapshot s into d (the sums of
 * several workers: live capture, shared replay). */
void worker_stats_add(struct run_stats *d, const struct run_stats *s);

#endif

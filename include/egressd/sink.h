/* sink.h - where records go. A sink is a small table of function pointers,
 * so the JSON and Redis sinks are peers and a third sink is one new file.
 * Sinks see records and stats by const pointer and copy what they keep.
 *
 * Records reach a sink through writers: each thread that makes records (a
 * capture worker, the control thread) opens its own writer, which formats
 * and buffers them in that thread and hands them to the sink in whole
 * batches, so no lock is taken per record and the JSON file only ever gets
 * whole lines. Everything else (stats, flush, reopen, close) belongs to
 * the control thread; writers must be freed before the sink is closed.
 */
#ifndef EGRESSD_SINK_H
#define EGRESSD_SINK_H

#include <stdint.h>

#include "egressd/alert.h"
#include "egressd/cid.h"
#include "egressd/common.h"
#include "egressd/decode.h"
#include "egressd/flow.h"
#include "egressd/record.h"

/* Delivery to Redis (sink-redis.h), in the stats event when Redis is
 * configured. records = sent + dropped + undelivered. */
struct redis_stats {
    int enabled;               /* Redis configured: the counters below are meaningful */
    uint64_t records;          /* records handed to the Redis sink */
    uint64_t sent;             /* stream entries written (acknowledged by Redis) */
    uint64_t queued;           /* records that went into the memory queue */
    uint64_t spooled;          /* records that went to the on-disk spool */
    uint64_t unspooled;        /* records kept in memory only because a named spool was full
                                * or failing (lost if the process dies before delivery) */
    uint64_t dropped;          /* lost: queue and spool full, or refused by Redis */
    uint64_t rejected;         /* of dropped, refused by Redis (WRONGTYPE, ...) */
    uint64_t undelivered;      /* still waiting when the run ended */
    uint64_t reconnects;       /* connections made after the first (per node) */
    uint64_t resent;           /* records whose stream entry was sent again after a lost
                                * answer or a lost master: each may be in its stream twice */
    uint64_t agg_unwritten;    /* aggregate updates that did not reach Redis (queue and spool
                                * full, refused, or left at the end): the run exits 1 */
    uint64_t queue_depth;      /* now: records waiting in memory */
    uint64_t spool_depth;      /* now: records waiting in the on-disk spool */
};

/* Totals of one run, for the final (and periodic) `stats` event. */
struct run_stats {
    uint64_t ts_us;            /* packet time of the event */
    uint64_t packets;          /* frames read from all inputs */
    uint64_t bytes;            /* wire bytes of those frames */
    uint64_t ip_packets;       /* frames that decoded to IP */
    uint64_t not_ip;           /* frames without IP (ARP, ...) */
    uint64_t time_backwards;   /* frames stamped before the newest one its
                                * worker had seen (a clock step, merged or
                                * reordered captures); processed all the same */
    uint64_t inputs;           /* capture files / interfaces read */
    uint64_t input_errors;     /* inputs that ended in an error */
    /* live capture drops (0 in replay): libpcap's counters summed over
     * workers. A worker reads its own capture, so no queue inside the
     * sensor can overflow and lose packets; the flow cap ends flows early
     * (reason "evicted") instead of dropping them. */
    uint64_t drop_kernel;      /* ps_drop: the kernel's capture buffer was full */
    uint64_t drop_ifdrop;      /* ps_ifdrop: dropped by the interface or driver */
    struct decode_stats decode;
    struct flow_stats flow;
    /* enrichment */
    uint64_t geo_lookups;      /* GeoIP lookups (one per record with a remote end) */
    uint64_t geo_cache_hits;
    uint64_t dns_responses;    /* DNS responses parsed for passive DNS */
    uint64_t dns_errors;       /* of those, malformed (answers before the fault kept) */
    uint64_t names_learned;    /* addresses learned from them */
    uint64_t names_hits;       /* records named from passive DNS */
    /* alerts (filled by the policy stage) */
    uint64_t alerts;           /* alert events written (first alerts and updates) */
    uint64_t alerts_suppressed; /* matches folded into an earlier alert (dedup) */
    uint64_t alerts_rate_limited; /* alerts not written: over alerts.max_per_second */
    uint64_t learned;          /* destinations learned by roles in learn mode */
    /* Redis delivery (filled by outputs_finish before the stats event) */
    struct redis_stats redis;
};

struct sink_ops {
    const char *name;
    /* A writer for the calling thread (NULL when out of memory). Its calls
     * may run in parallel with other writers' and with the ops below. */
    void *(*writer_new)(void *self);
    int (*write_flow)(void *w, const struct flow_record *rec);
    int (*write_alert)(void *w, const struct alert_record *a);
    /* Hands what the writer holds to the sink; `urgent` (an alert) also
     * pushes it on at once (to the file, to the I/O thread). */
    int (*writer_flush)(void *w, int urgent);
    void (*writer_free)(void *w); /* flushes first */
    int (*stats)(void *self, const struct run_stats *st);
    int (*flush)(void *self);
    void (*close)(void *self); /* flushes and frees self */
    /* One line saying why the last call failed ("PATH: write: No space
     * left on device"), or "" if none failed. */
    const char *(*error)(void *self);
    /* Optional (NULL: nothing to do): reopen output files by name, after
     * logrotate moved them. On failure the old file stays in use. */
    int (*reopen)(void *self, struct egr_err *err);
};

struct sink {
    const struct sink_ops *ops;
    void *self;
};

/* EVE-style JSON lines to `path` ("-" = stdout), truncated at open, or
 * appended to when `append` (a long-running sensor keeps its history across
 * restarts). */
int sink_json_open(const char *path, int append, struct sink *out, struct egr_err *err);

#endif

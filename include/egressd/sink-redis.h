/* sink-redis.h - the Redis sink: flow records, alerts and a heartbeat pushed
 * to Redis (keys: docs/redis-schema.md) without ever making the packet path
 * wait.
 *
 * Records are formatted into a bounded memory queue and written as
 * pipelined batches over hiredis' asynchronous API on a libevent base;
 * whatever does not fit in memory waits in a bounded on-disk spool
 * (spool.h) and only when that is full too is a record dropped (counted).
 * Connection loss, a server that stops answering or refuses writes, and
 * authentication failures are retried with capped exponential backoff;
 * each change of state is one line through the log callback.
 *
 * Threads: the sink runs its own I/O thread (connection, queue, spool);
 * its functions may be called from any thread, one call at a time (the
 * caller serialises them, as struct sensor does). flow()/alert() format
 * the record and hand it over; they never wait for Redis or the disk.
 */
#ifndef EGRESSD_SINK_REDIS_H
#define EGRESSD_SINK_REDIS_H

#include <stdint.h>

#include "egressd/common.h"
#include "egressd/redis-eve.h"
#include "egressd/sink.h"

#define REDIS_SEEDS_MAX 16
#define REDIS_SEED_LEN 272 /* "host:port" */

/* redis.layout: where a sensor's keys go (docs/redis-schema.md). */
enum redis_layout {
    REDIS_LAYOUT_AUTO = 0,   /* per_sensor on a cluster, shared on one server */
    REDIS_LAYOUT_SHARED,     /* {prefix}:flows, ...: one set of keys for every sensor */
    REDIS_LAYOUT_PER_SENSOR, /* {prefix}:{id}:flows, ...: a hash tag per sensor */
};

#define REDIS_WAIT_AUTO (-1)

/* The redis: section of the configuration. */
struct sink_redis_config {
    char url[1024];           /* redis-url.h; "" = off */
    char username[128];       /* ACL user; overrides the URL's */
    char password[256];       /* overrides the URL's */
    char prefix[64];          /* key prefix */
    char sensor_id[128];      /* "" = the host name */
    uint32_t flows_maxlen;    /* stream trim length; 0 = no trimming */
    uint32_t alerts_maxlen;
    uint32_t aggregate_ttl;   /* seconds; 0 = no aggregates */
    uint32_t heartbeat_interval; /* seconds */
    uint32_t heartbeat_ttl;   /* seconds */
    uint64_t queue_max_bytes; /* memory queue bound */
    uint32_t queue_max_records;
    uint32_t batch_records;   /* records sent at once when this many wait */
    uint32_t flush_ms;        /* ... or when the oldest has waited this long */
    char spool_dir[1024];     /* "" = an anonymous spool in $TMPDIR or /tmp */
    uint64_t spool_max_bytes; /* 0 = no spool */
    int spool_fsync;          /* enum spool_fsync: named spool, when records reach the disk */
    uint32_t drain_timeout;   /* seconds to wait for delivery at the end */
    uint32_t timeout;         /* seconds without an answer before reconnecting */
    /* Other nodes of a cluster to ask for its map when the URL's is down. */
    struct {
        unsigned n;
        char v[REDIS_SEEDS_MAX][REDIS_SEED_LEN];
    } seeds;
    int layout;               /* enum redis_layout */
    int32_t wait_replicas;    /* WAIT for this many replicas; REDIS_WAIT_AUTO = 1 if the
                               * master has one; 0 = never */
    uint32_t wait_timeout_ms; /* WAIT's timeout */

    uint8_t streams;          /* the flat-field streams and the live channel; 0 = only EVE */
    struct redis_eve_config eve; /* whole EVE events, as Suricata writes them (redis-eve.h) */
};

void sink_redis_config_defaults(struct sink_redis_config *c);

/* One line, no newline: a state change (connected, lost, refused, ...). */
typedef void (*sink_redis_log_fn)(void *arg, const char *line);

/* Opens the sink and starts its I/O thread. `source` names what the
 * sensor reads ("interface eth0", "file a.pcap"; NULL = "") for the
 * heartbeat. Connecting is asynchronous: a server that is absent is not an
 * error here, only a bad URL, an unusable spool directory or a lack of
 * memory is. `log` is called from the I/O thread. */
int sink_redis_open(const struct sink_redis_config *cfg, const char *source,
                    sink_redis_log_fn log, void *log_arg, struct sink *out,
                    struct egr_err *err);

/* The sink's self if s is a Redis sink, else NULL. */
void *sink_redis_self(const struct sink *s);

/* Hands over the summed aggregates when they are due (records carry the
 * check too; this covers a quiet link). Cheap. */
void sink_redis_poll(void *self);

/* Waits until every record is delivered, or until drain_timeout has passed,
 * or, when nothing can be delivered (no connection), until the deadline.
 * Returns EGR_OK if nothing is left undelivered and nothing was dropped,
 * else EGR_EIO with one line in the sink's error() saying how many records
 * did not reach Redis and why. Records still waiting stay in the spool
 * when it is a named one (spool_dir set), for the next run. */
int sink_redis_drain(void *self);

/* The capture's counters for the next heartbeat (packets, bytes, drops,
 * active flows); sends nothing. */
void sink_redis_progress(void *self, const struct run_stats *st);

/* The sink's counters so far. */
void sink_redis_counters(void *self, struct redis_stats *out);

#endif

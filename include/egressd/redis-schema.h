/* redis-schema.h - what egressd writes to Redis for each record, as data:
 * the Redis commands of one flow record, alert or heartbeat, encoded into
 * one byte string that can wait in memory or in the spool and be sent later
 * exactly as built. The keys and fields are described in
 * docs/redis-schema.md.
 *
 * Encoding (rcmd_*): a record is
 *     u8 version (1) | u8 kind | u16 command count | commands...
 * and a command is
 *     u16 argument count | for each argument: u32 length | bytes
 * (integers little-endian). Arguments are raw bytes of any value, sent as
 * length-prefixed bulk strings, so nothing a packet carries can change the
 * shape of a command. The first command of a flow or alert record is its
 * stream entry (XADD): a record counts as delivered when that entry is
 * written.
 *
 * Builders (redis_schema_*) are pure formatting: no I/O, no state; each
 * clears the buffer and fills it with the commands of one record.
 * Ownership: an rcmd_buf owns its memory (rcmd_free()); allocation failure
 * is sticky and checked with rcmd_ok().
 */
#ifndef EGRESSD_REDIS_SCHEMA_H
#define EGRESSD_REDIS_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include "egressd/alert.h"
#include "egressd/json.h"
#include "egressd/record.h"

/* Limits a decoder enforces (a record from a damaged spool is refused). */
#define RCMD_MAX_ARGS 128
#define RCMD_MAX_CMDS 64

/* RCMD_EVE: EVE events without a record of their own (the stats event,
 * redis-eve.h); delivered and counted like a record. */
enum rcmd_kind { RCMD_FLOW = 1, RCMD_ALERT = 2, RCMD_HEARTBEAT = 3, RCMD_AGG = 4, RCMD_EVE = 5 };

struct rcmd_buf {
    uint8_t *buf;
    size_t len, cap;
    int oom;
    size_t cmd_off;  /* start of the command being built */
    unsigned argc;   /* its arguments so far */
    unsigned ncmd;
};

void rcmd_init(struct rcmd_buf *b);
void rcmd_free(struct rcmd_buf *b);
void rcmd_reset(struct rcmd_buf *b, enum rcmd_kind kind); /* keeps memory */
int rcmd_ok(const struct rcmd_buf *b); /* 1 unless an allocation failed or a limit was hit */

void rcmd_begin(struct rcmd_buf *b);
void rcmd_arg(struct rcmd_buf *b, const void *p, size_t n);
void rcmd_arg_str(struct rcmd_buf *b, const char *s);
void rcmd_arg_u64(struct rcmd_buf *b, uint64_t v);
void rcmd_end(struct rcmd_buf *b);

/* Walks an encoded record. rcmd_iter_init() checks the header and the
 * whole record (every length inside its bounds); it returns EGR_OK or
 * EGR_EINVAL. rcmd_iter_again() starts a walk of a record that
 * rcmd_iter_init() accepted before and that has not changed since, without
 * checking it again (the sink checks each record once, when it takes it,
 * and walks it on every send). rcmd_next() gives the next command's
 * arguments as pointers into the record: 1, or 0 after the last. */
struct rcmd_iter {
    const uint8_t *p, *end;
    unsigned left;
};
int rcmd_iter_init(struct rcmd_iter *it, const void *rec, size_t len, unsigned *kind,
                   unsigned *ncmd);
void rcmd_iter_again(struct rcmd_iter *it, const void *rec, size_t len);
int rcmd_next(struct rcmd_iter *it, const char **argv, size_t *argvlen, unsigned *argc);

/* Where and how records are written. */
struct redis_schema {
    const char *prefix;     /* key prefix ("egress") */
    const char *sensor;     /* sensor id */
    uint64_t flows_maxlen;  /* 0: streams are not trimmed */
    uint64_t alerts_maxlen;
    uint32_t aggregate_ttl; /* seconds; aggregates off when 0 */
    /* 0: the shared layout ({prefix}:flows, {prefix}:sensor:{id}, ...);
     * 1: every key of the sensor behind a hash tag of its id
     * ({prefix}:{id}:flows, {prefix}:{id}:sensor, ...), so a cluster keeps
     * them in one slot and spreads sensors over its masters. The sensor set
     * and the live channel are global in both. */
    int per_sensor;
};

/* "{prefix}:agg_buckets" ("{prefix}:{id}:agg_buckets" per sensor): a sorted set of the newest minutes that have
 * aggregates (member and score the bucket), into out of cap bytes; returns
 * the length. */
size_t redis_schema_buckets_key(const struct redis_schema *sc, char *out, size_t cap);

/* Minute of a record: aggregate keys are per bucket (packet time / 60 s). */
uint64_t redis_schema_bucket(uint64_t ts_us);

/* True for records that go to the aggregates: egress, or direction unknown
 * (no home_net configured). */
int redis_schema_counts_as_egress(const struct flow_record *r);

/* "{prefix}:agg:{bucket}:{metric}:{part}" (after "{prefix}:{id}" per sensor) into out (cut to fit); returns
 * its length. The aggregates themselves are summed by redis-agg.h. */
size_t redis_schema_agg_key(const struct redis_schema *sc, char *out, size_t cap, uint64_t bucket,
                            const char *metric, const char *part, size_t plen);

/* XADD {prefix}:flows (or {prefix}:{id}:flows) MAXLEN ~ N * field value ... (the record's stream
 * entry; its aggregates are summed apart, redis-agg.h). */
void redis_schema_flow(const struct redis_schema *sc, const struct flow_record *r,
                       struct rcmd_buf *b);

/* XADD {prefix}:alerts ... and PUBLISH {prefix}:alerts:live with the EVE
 * JSON of the alert (formatted in scratch). */
void redis_schema_alert(const struct redis_schema *sc, const struct alert_record *a,
                        struct jbuf *scratch, struct rcmd_buf *b);

/* A sensor's state for its heartbeat hash. */
struct redis_heartbeat {
    const char *version;
    const char *source;     /* what is read ("" if unknown) */
    uint64_t start_us;      /* wall clock at start */
    uint64_t now_us;        /* wall clock now */
    uint64_t packets, bytes, drops, active_flows;
    uint64_t queue_depth, sent, queued, spooled, dropped, undelivered, reconnects, resent;
    const char *last_error; /* "" if none */
    uint32_t ttl;           /* seconds */
};

/* HSET {prefix}:sensor:{id} ({prefix}:{id}:sensor per sensor) ..., EXPIRE,
 * SADD {prefix}:sensors {id}. */
void redis_schema_heartbeat(const struct redis_schema *sc, const struct redis_heartbeat *hb,
                            struct rcmd_buf *b);

#endif

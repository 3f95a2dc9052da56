/* redis-agg.h - the live aggregates of docs/redis-schema.md (bytes and
 * flows per asset, role, nDPI protocol, country and ASN; unique and top
 * destinations per asset; all per minute bucket), summed in memory and
 * written as one batch of commands per interval.
 *
 * Written per record, the aggregates cost about 24 commands for every flow
 * record (an HINCRBY and an EXPIRE per dimension, ...): far more than the
 * record's own XADD. Summed first, a batch needs one command per distinct
 * (bucket, key, member) and one EXPIRE per key, however many records
 * contributed, which is what keeps the Redis output cheap on a busy link.
 * The sums are the same numbers the per-record commands would give.
 *
 * Memory is fixed at creation (entries and the bytes of their names); when
 * it is full redis_agg_add() says so and the caller writes a batch out.
 * Not thread-safe: the Redis sink's thread owns it.
 */
#ifndef EGRESSD_REDIS_AGG_H
#define EGRESSD_REDIS_AGG_H

#include <stdint.h>

#include "egressd/common.h"
#include "egressd/record.h"
#include "egressd/redis-schema.h"

struct redis_agg;

/* A table for up to max_entries distinct (bucket, key, member) sums. */
int redis_agg_new(uint32_t max_entries, struct redis_agg **out, struct egr_err *err);
void redis_agg_free(struct redis_agg *a);

/* Adds the contributions of one flow record (the caller decides which
 * records count: redis_schema_counts_as_egress()). Returns 1 when added,
 * 0 when the table is full (nothing added: write a batch out and add
 * again). */
int redis_agg_add(struct redis_agg *a, const struct flow_record *r);

/* Distinct sums waiting. */
uint32_t redis_agg_count(const struct redis_agg *a);

/* Writes every waiting sum as commands (HINCRBY / PFADD / ZINCRBY, then one
 * EXPIRE per key with sc->aggregate_ttl; last, the flush's newest bucket into
 * the agg_buckets sorted set, trimmed to 100, with the same EXPIRE) into records of kind RCMD_AGG of at
 * most RCMD_MAX_CMDS commands, handing each full record to emit(arg, b),
 * and empties the table. Returns the number of records emitted. */
unsigned redis_agg_flush(struct redis_agg *a, const struct redis_schema *sc, struct rcmd_buf *b,
                         void (*emit)(void *arg, struct rcmd_buf *b), void *arg);

#endif

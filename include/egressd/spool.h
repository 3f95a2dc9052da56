/* spool.h - a bounded on-disk FIFO of byte records, for data that has to wait
 * (records the Redis sink cannot deliver while the memory queue is full).
 *
 * The file is a ring: a 64-byte header (capacity, position and sequence
 * number of the oldest record) and a data region of `capacity` bytes holding
 * length-prefixed, checksummed records in the order they were pushed. A
 * record never splits across the end of the region: it starts again at the
 * beginning when it does not fit in what is left. So the file never grows
 * beyond 64 bytes + capacity, and records come out exactly in push order.
 *
 * A named spool survives the process: opening an existing file recovers the
 * records that were pushed and not yet popped (as of the last spool_sync()),
 * stopping at the first record that is torn or fails its checksum (a write
 * cut short by a crash). Popped records are forgotten on disk only at the
 * next spool_sync(), so after a crash a record may come out twice, never not
 * at all; fsync is not called, so this holds across a process crash, not a
 * crash of the host. A named spool is locked (flock) against a second
 * process.
 *
 * Errors follow common.h; spool_push() returns SPOOL_FULL (positive, not an
 * error) when the record does not fit. Not thread-safe: one owner.
 */
#ifndef EGRESSD_SPOOL_H
#define EGRESSD_SPOOL_H

#include <stdint.h>

#include "egressd/common.h"

#define SPOOL_FULL 1

/* Bytes a record of `len` payload bytes takes in the file (header and
 * padding included): what counts against the capacity. */
#define SPOOL_REC_OVERHEAD 24u
uint64_t spool_record_size(uint32_t len);

/* Smallest capacity accepted (a few records of typical size). */
#define SPOOL_MIN_CAPACITY 4096u

struct spool;

/* What opening an existing file found. */
struct spool_recovery {
    uint64_t records;   /* records recovered, to be popped first */
    int torn_tail;      /* 1 if the scan stopped at a torn or corrupt record */
    uint64_t capacity;  /* capacity in use (the file's own while it holds records) */
};

/* Opens or creates the spool file `path` with `capacity` bytes of data
 * region (>= SPOOL_MIN_CAPACITY). An existing spool keeps its own capacity
 * while it holds records and takes the new one once empty. A file that is
 * not a spool is refused, never overwritten. rec may be NULL. */
int spool_open(const char *path, uint64_t capacity, struct spool **out,
               struct spool_recovery *rec, struct egr_err *err);

/* Opens an anonymous spool: a file in directory `dir` that has no name (it
 * disappears when closed or when the process dies). */
int spool_open_temp(const char *dir, uint64_t capacity, struct spool **out,
                    struct egr_err *err);

/* Appends a record of len bytes (len > 0). EGR_OK, SPOOL_FULL if it does not
 * fit now (or ever: larger than the capacity), EGR_EIO on a write error (the
 * record is not stored; the spool stays usable). */
int spool_push(struct spool *s, const void *data, uint32_t len, struct egr_err *err);

/* Length of the oldest record: 1 and *len set, 0 if the spool is empty,
 * EGR_EIO if it cannot be read (the spool is then emptied: its remaining
 * records are lost and counted in spool_lost()). */
int spool_head(struct spool *s, uint32_t *len, struct egr_err *err);

/* Copies the oldest record into buf (cap bytes, at least its length as told
 * by spool_head()) and removes it. 1 popped, 0 empty, negative on error as
 * spool_head(). */
int spool_pop(struct spool *s, void *buf, uint32_t cap, uint32_t *len, struct egr_err *err);

/* Writes the header so that a restart does not recover popped records. */
int spool_sync(struct spool *s, struct egr_err *err);

uint64_t spool_count(const struct spool *s);    /* records held */
uint64_t spool_used(const struct spool *s);     /* bytes of the region in use */
uint64_t spool_capacity(const struct spool *s);
uint64_t spool_lost(const struct spool *s);     /* records lost to read errors */
const char *spool_path(const struct spool *s);  /* "" for an anonymous spool */

/* Syncs, unlocks and closes. A named spool left empty is removed. s may be
 * NULL. */
void spool_close(struct spool *s);

#endif

/* spool.h - a bounded on-disk FIFO of byte records, for data that has to wait
 * (the Redis sink's records: a write-ahead log of every record with a named
 * spool, the overflow of the memory queue otherwise).
 *
 * The file is a ring: a 64-byte header (capacity, position and sequence
 * number of the oldest record kept) and a data region of `capacity` bytes
 * holding length-prefixed, checksummed records in the order they were
 * appended. A record never splits across the end of the region: it starts
 * again at the beginning when it does not fit in what is left. So the file
 * never grows beyond 64 bytes + capacity, and records come out exactly in
 * append order.
 *
 * Three positions: the oldest record kept (head, in the header), the next
 * to read (in memory only) and the end. Reading a record does not forget
 * it: spool_release() does, once its owner is done with it (the Redis sink:
 * once Redis acknowledged it), and spool_sync() writes that to the header.
 * spool_pop() is read and release in one.
 *
 * A named spool survives the process: opening an existing file recovers the
 * records from the header's oldest one (as of the last spool_sync()),
 * stopping at the first record that is torn or fails its checksum (a write
 * cut short by a crash). Records released after the last sync come out
 * again, never fewer. Appends are write(2)s: they survive the process
 * dying at once; the host crashing only with spool_set_fsync(ALWAYS) (every
 * commit) or within a second of EVERYSEC (the owner calls
 * spool_datasync() once a second). A named spool is locked (flock) against
 * a second process.
 *
 * Errors follow common.h; appends return SPOOL_FULL (positive, not an
 * error) when the record does not fit. Not thread-safe: one owner (or one
 * lock around every call).
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

/* A record's place in the ring, as an append or a read tells it. */
struct spool_pos {
    uint64_t off, end;  /* where it starts and where the next may */
    uint64_t seq;       /* its number (0: none) */
};

/* Record flag: a record of another kind (the Redis sink's aggregate
 * batches), counted apart. Stored with the record. */
#define SPOOL_AUX 1u

enum spool_fsync { SPOOL_FSYNC_NO = 0, SPOOL_FSYNC_EVERYSEC, SPOOL_FSYNC_ALWAYS };

/* What opening an existing file found. */
struct spool_recovery {
    uint64_t records;   /* records recovered (without SPOOL_AUX), to be read first */
    uint64_t aux;       /* SPOOL_AUX records recovered */
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

/* A batch: spool_append() puts records into the ring in memory (pos set,
 * may be NULL); spool_commit() writes the whole batch with a write per run
 * of bytes (two when the ring wraps inside it). A commit that fails leaves
 * the ring as it was before the batch: none of its records is stored.
 * spool_append returns EGR_OK, SPOOL_FULL (the record is not in the batch;
 * the batch so far stays), EGR_EINVAL or EGR_ENOMEM. */
int spool_append(struct spool *s, const void *data, uint32_t len, uint32_t flags,
                 struct spool_pos *pos, struct egr_err *err);
int spool_commit(struct spool *s, struct egr_err *err);

/* Appends a record of len bytes (len > 0). EGR_OK, SPOOL_FULL if it does not
 * fit now (or ever: larger than the capacity), EGR_EIO on a write error (the
 * record is not stored; the spool stays usable). */
int spool_push(struct spool *s, const void *data, uint32_t len, struct egr_err *err);

/* Length of the next record to read: 1 and *len set, 0 if the spool is empty,
 * EGR_EIO if it cannot be read (the spool is then emptied: its remaining
 * records are lost and counted in spool_lost()). */
int spool_head(struct spool *s, uint32_t *len, struct egr_err *err);

/* Copies the oldest record into buf (cap bytes, at least its length as told
 * by spool_head()) and removes it. 1 popped, 0 empty, negative on error as
 * spool_head(). */
int spool_pop(struct spool *s, void *buf, uint32_t cap, uint32_t *len, struct egr_err *err);

/* Reads the next record as spool_pop() does, without forgetting it; flags
 * and pos may be NULL. */
int spool_read(struct spool *s, void *buf, uint32_t cap, uint32_t *len, uint32_t *flags,
               struct spool_pos *pos, struct egr_err *err);

/* The record at pos, just appended and held by the caller already, counts
 * as read (only if it is the next to read). */
void spool_skip(struct spool *s, const struct spool_pos *pos, uint32_t flags);

/* Forgets every record before the one at `oldest` (which must have been
 * read), or every record read when oldest is NULL. */
int spool_release(struct spool *s, const struct spool_pos *oldest, struct egr_err *err);

/* Writes the header so that a restart does not recover released records. */
int spool_sync(struct spool *s, struct egr_err *err);

/* fdatasync if records were written since the last one (not with NO). */
int spool_datasync(struct spool *s, struct egr_err *err);
void spool_set_fsync(struct spool *s, enum spool_fsync mode);
/* For an fdatasync outside the owner's lock: the file's descriptor if
 * records were written since the last call (and the mode is not NO), else
 * -1. */
int spool_sync_fd(struct spool *s);
/* The flags of the record spool_head() just told about. */
uint32_t spool_head_flags(const struct spool *s);

uint64_t spool_count(const struct spool *s);    /* records held (read ones too, until released) */
uint64_t spool_unread(const struct spool *s);   /* records not read yet */
uint64_t spool_unread_aux(const struct spool *s); /* of those, SPOOL_AUX ones */
uint64_t spool_next_seq(const struct spool *s); /* the number the next append gets */
uint64_t spool_read_seq(const struct spool *s); /* the number of the next to read */
uint64_t spool_used(const struct spool *s);     /* bytes of the region in use */
uint64_t spool_capacity(const struct spool *s);
uint64_t spool_lost(const struct spool *s);     /* records lost to read errors */
const char *spool_path(const struct spool *s);  /* "" for an anonymous spool */

/* Syncs, unlocks and closes. A named spool left empty is removed. s may be
 * NULL. */
void spool_close(struct spool *s);

#endif

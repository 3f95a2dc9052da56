/* spool.c - the bounded on-disk record FIFO (see include/egressd/spool.h).
 *
 * File layout, all integers little-endian:
 *
 *   header (64 bytes)            record (24 bytes + payload padded to 8)
 *   0  "EGRSPOOL"                0  u32 magic "ESR1"
 *   8  u32 version (1)           4  u32 payload length (0xffffffff: wrap
 *   12 u32 CRC-32C of 16..63            marker, the next record is at 0)
 *   16 u64 capacity              8  u64 sequence number
 *   24 u64 offset of the oldest  16 u32 CRC-32C of bytes 4..15 + payload
 *   32 u64 its sequence number   20 u32 zero
 *
 * Offsets are relative to the data region, which starts at byte 64. Records
 * are numbered consecutively; the header names the oldest one, and the
 * writer's position is found again on open by following records while each
 * is intact and carries the next number. A stale record left over from an
 * earlier lap of the ring has a smaller number, so it ends the scan as
 * cleanly as the end of the file does; a record with the right number whose
 * payload is short or fails its CRC is a write cut short (torn tail).
 *
 * The header is written when the spool empties (so the ring restarts at 0
 * and the file is truncated) and on spool_sync(); pushes never write it.
 */
#define _GNU_SOURCE /* O_TMPFILE */
#include "egressd/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define HDR_SIZE 64u
#define REC_MAGIC 0x31525345u /* "ESR1" */
#define WRAP_LEN 0xffffffffu
#define VERSION 1u
/* Larger capacities are refused as a corrupt header rather than trusted. */
#define CAP_MAX (1ull << 40)

struct spool {
    int fd;
    char *path;          /* NULL for an anonymous spool */
    uint64_t cap;        /* data region in use */
    uint64_t want_cap;   /* capacity to take when the spool next empties */
    uint64_t head, tail; /* oldest record; where the next one goes */
    uint64_t used;       /* bytes from head to tail, wrap waste included */
    uint64_t count;
    uint64_t head_seq, next_seq;
    uint64_t lost;
    uint64_t rd, rd_seq; /* the next record to read (head <= rd <= tail) */
    uint64_t unread_aux; /* unread records pushed with SPOOL_AUX */
    int dirty;           /* header differs from memory */
    int data_dirty;      /* records written since the last fdatasync */
    int head_known;      /* head_len is valid for the record at rd */
    uint32_t head_len, head_flags;
    enum spool_fsync fsync_mode;
    /* An open batch (spool_append .. spool_commit): its bytes, in at most
     * two runs (before and after the ring's wrap), and the state to go back
     * to if writing them fails. */
    uint8_t *wb[2];
    size_t wlen[2], wcap[2];
    uint64_t woff[2];
    int nseg, in_batch;
    struct { uint64_t head, tail, used, count, head_seq, next_seq, rd, rd_seq, unread_aux; } undo;
};

/* ---- CRC-32C (Castagnoli), table-driven -------------------------------- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc_update(uint32_t crc, const void *p, size_t n)
{
    const uint8_t *b = p;
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = crc_table[(crc ^ b[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ---- little-endian fields ---------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

uint64_t spool_record_size(uint32_t len)
{
    return SPOOL_REC_OVERHEAD + (((uint64_t)len + 7) & ~(uint64_t)7);
}

static const char *name_of(const struct spool *s)
{
    return s->path ? s->path : "anonymous spool";
}

/* ---- I/O helpers -------------------------------------------------------- */

/* Reads exactly n bytes at off: n, fewer at end of file, -1 on error. */
static ssize_t read_at(int fd, void *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static int write_all_at(int fd, struct iovec *iov, int n, uint64_t off)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    size_t done = 0;
    while (done < total) {
        ssize_t w = pwritev(fd, iov, n, (off_t)(off + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        done += (size_t)w;
        /* Advance the vector past what was written (short writes are rare:
         * a full disk shows up as an error on the next call). */
        size_t skip = (size_t)w;
        while (n > 0 && skip >= iov[0].iov_len) {
            skip -= iov[0].iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov[0].iov_base = (char *)iov[0].iov_base + skip;
            iov[0].iov_len -= skip;
        }
    }
    return 0;
}

static int write_header(struct spool *s, struct egr_err *err)
{
    uint8_t h[HDR_SIZE];
    memset(h, 0, sizeof(h));
    memcpy(h, "EGRSPOOL", 8);
    put32(h + 8, VERSION);
    put64(h + 16, s->cap);
    put64(h + 24, s->count ? s->head : 0);
    put64(h + 32, s->count ? s->head_seq : s->next_seq);
    put32(h + 12, crc_update(0, h + 16, HDR_SIZE - 16));
    struct iovec iov = {h, sizeof(h)};
    if (write_all_at(s->fd, &iov, 1, 0) != 0)
        return egr_fail(err, EGR_EIO, "%s: write: %s", name_of(s), strerror(errno));
    s->dirty = 0;
    return EGR_OK;
}

/* Bytes from head to tail, wrap waste included. */
static uint64_t used_of(const struct spool *s)
{
    if (s->count == 0)
        return 0;
    return s->tail > s->head ? s->tail - s->head : s->cap - s->head + s->tail;
}

/* Empties the ring: positions back to 0, the new capacity taken, the file
 * cut back to its header (so an idle spool costs no disk). */
static int reset(struct spool *s, struct egr_err *err)
{
    s->head = s->tail = s->used = s->count = s->rd = 0;
    s->head_seq = s->rd_seq = s->next_seq;
    s->unread_aux = 0;
    s->head_known = 0;
    s->cap = s->want_cap;
    if (ftruncate(s->fd, HDR_SIZE) != 0)
        return egr_fail(err, EGR_EIO, "%s: truncate: %s", name_of(s), strerror(errno));
    return write_header(s, err);
}

/* Drops everything after a read failure; returns EGR_EIO with why. */
static int lose_all(struct spool *s, struct egr_err *err, const char *why)
{
    uint64_t n = s->next_seq - s->rd_seq;
    s->lost += n;
    struct egr_err ignored;
    reset(s, &ignored);
    return egr_fail(err, EGR_EIO, "%s: %s: %llu spooled records lost", name_of(s), why,
                    (unsigned long long)n);
}

static uint32_t rec_crc(const uint8_t *hdr, const void *payload, uint32_t len)
{
    uint32_t c = crc_update(0, hdr + 4, 12);
    return len == WRAP_LEN ? c : crc_update(c, payload, len);
}

static void rec_header(uint8_t *h, uint32_t len, uint64_t seq, const void *payload,
                       uint32_t flags)
{
    memset(h, 0, SPOOL_REC_OVERHEAD);
    put32(h, REC_MAGIC);
    put32(h + 4, len);
    put64(h + 8, seq);
    put32(h + 16, rec_crc(h, payload, len));
    put32(h + 20, flags);
}

/* ---- append / commit ---------------------------------------------------- */

static int seg_add(struct spool *s, uint64_t off, const void *a, size_t alen, const void *b,
                   size_t blen, size_t pad)
{
    int i = s->nseg - 1;
    if (i < 0 || s->woff[i] + s->wlen[i] != off) {
        i = s->nseg++; /* a new run: the batch starts, or the ring wrapped */
        s->woff[i] = off;
        s->wlen[i] = 0;
    }
    size_t need = s->wlen[i] + alen + blen + pad;
    if (need > s->wcap[i]) {
        size_t nc = s->wcap[i] ? s->wcap[i] : 65536;
        while (nc < need)
            nc *= 2;
        uint8_t *nb = realloc(s->wb[i], nc);
        if (!nb)
            return -1;
        s->wb[i] = nb;
        s->wcap[i] = nc;
    }
    memcpy(s->wb[i] + s->wlen[i], a, alen);
    if (blen)
        memcpy(s->wb[i] + s->wlen[i] + alen, b, blen);
    memset(s->wb[i] + s->wlen[i] + alen + blen, 0, pad);
    s->wlen[i] = need;
    return 0;
}

int spool_append(struct spool *s, const void *data, uint32_t len, uint32_t flags,
                 struct spool_pos *pos, struct egr_err *err)
{
    if (len == 0 || len == WRAP_LEN)
        return egr_fail(err, EGR_EINVAL, "%s: bad record length %u", name_of(s), len);
    uint64_t need = spool_record_size(len);
    if (need > s->cap)
        return SPOOL_FULL;

    uint64_t at, waste = 0;
    if (s->count == 0) {
        at = 0; /* an empty ring always restarts at 0 (see reset) */
    } else if (s->tail > s->head) {
        if (need <= s->cap - s->tail) {
            at = s->tail;
        } else if (need <= s->head) {
            waste = s->cap - s->tail;
            at = 0;
        } else {
            return SPOOL_FULL;
        }
    } else if (s->tail < s->head && need <= s->head - s->tail) {
        at = s->tail;
    } else {
        return SPOOL_FULL; /* tail == head with records: every byte in use */
    }
    if (s->nseg == 2 && at == 0 && waste)
        return SPOOL_FULL; /* cannot happen: one batch wraps once at most */

    if (!s->in_batch) {
        s->undo.head = s->head;
        s->undo.tail = s->tail;
        s->undo.used = s->used;
        s->undo.count = s->count;
        s->undo.head_seq = s->head_seq;
        s->undo.next_seq = s->next_seq;
        s->undo.rd = s->rd;
        s->undo.rd_seq = s->rd_seq;
        s->undo.unread_aux = s->unread_aux;
        s->in_batch = 1;
    }
    if (waste >= SPOOL_REC_OVERHEAD) {
        /* Tells the reader (and a recovery scan) to continue at 0. Its
         * number is the next record's, so the scan checks it like one. */
        uint8_t m[SPOOL_REC_OVERHEAD];
        rec_header(m, WRAP_LEN, s->next_seq, NULL, 0);
        if (seg_add(s, s->tail, m, sizeof(m), NULL, 0, 0) != 0)
            return egr_fail(err, EGR_ENOMEM, "%s: out of memory", name_of(s));
    }
    uint8_t h[SPOOL_REC_OVERHEAD];
    rec_header(h, len, s->next_seq, data, flags);
    if (seg_add(s, at, h, sizeof(h), data, len, (size_t)(need - SPOOL_REC_OVERHEAD - len)) != 0)
        return egr_fail(err, EGR_ENOMEM, "%s: out of memory", name_of(s));

    if (s->count == 0) {
        s->head = s->rd = 0;
        s->head_seq = s->rd_seq = s->next_seq;
    }
    if (pos) {
        pos->off = at;
        pos->end = at + need;
        pos->seq = s->next_seq;
    }
    s->tail = at + need;
    s->count++;
    s->next_seq++;
    s->used = used_of(s);
    if (flags & SPOOL_AUX)
        s->unread_aux++;
    return EGR_OK;
}

int spool_commit(struct spool *s, struct egr_err *err)
{
    if (!s->in_batch)
        return EGR_OK;
    int rc = EGR_OK;
    for (int i = 0; i < s->nseg && rc == EGR_OK; i++) {
        struct iovec iov = {s->wb[i], s->wlen[i]};
        if (write_all_at(s->fd, &iov, 1, HDR_SIZE + s->woff[i]) != 0)
            rc = egr_fail(err, EGR_EIO, "%s: write: %s", name_of(s), strerror(errno));
    }
    if (rc == EGR_OK && s->fsync_mode == SPOOL_FSYNC_ALWAYS && fdatasync(s->fd) != 0)
        rc = egr_fail(err, EGR_EIO, "%s: fdatasync: %s", name_of(s), strerror(errno));
    if (rc != EGR_OK) {
        /* Not stored: the ring is as before the batch. Records of it that
         * did reach the file whole carry numbers the ring hands out again;
         * the next batches overwrite them, but should the process die
         * before, a recovery scan that lines up with them may take them as
         * records (a duplicate of what went on in memory, never a loss). */
        s->head = s->undo.head;
        s->tail = s->undo.tail;
        s->used = s->undo.used;
        s->count = s->undo.count;
        s->head_seq = s->undo.head_seq;
        s->next_seq = s->undo.next_seq;
        s->rd = s->undo.rd;
        s->rd_seq = s->undo.rd_seq;
        s->unread_aux = s->undo.unread_aux;
    } else {
        s->data_dirty = s->fsync_mode != SPOOL_FSYNC_ALWAYS;
    }
    s->nseg = 0;
    s->in_batch = 0;
    return rc;
}

int spool_push(struct spool *s, const void *data, uint32_t len, struct egr_err *err)
{
    int rc = spool_append(s, data, len, 0, NULL, err);
    if (rc != EGR_OK) {
        struct egr_err ignored;
        spool_commit(s, &ignored); /* what an earlier append of the batch holds */
        return rc;
    }
    return spool_commit(s, err);
}

/* ---- read / release ----------------------------------------------------- */

int spool_head(struct spool *s, uint32_t *len, struct egr_err *err)
{
    if (s->rd_seq == s->next_seq)
        return 0;
    if (s->head_known) {
        *len = s->head_len;
        return 1;
    }
    for (int laps = 0; laps < 2; laps++) {
        if (s->cap - s->rd < SPOOL_REC_OVERHEAD)
            s->rd = 0;
        uint8_t h[SPOOL_REC_OVERHEAD];
        ssize_t r = read_at(s->fd, h, sizeof(h), HDR_SIZE + s->rd);
        if (r < 0)
            return lose_all(s, err, strerror(errno));
        if (r != (ssize_t)sizeof(h) || get32(h) != REC_MAGIC || get64(h + 8) != s->rd_seq)
            return lose_all(s, err, "record header damaged");
        uint32_t n = get32(h + 4);
        if (n == WRAP_LEN) {
            if (get32(h + 16) != rec_crc(h, NULL, WRAP_LEN))
                return lose_all(s, err, "record header damaged");
            s->rd = 0;
            continue;
        }
        if (n == 0 || spool_record_size(n) > s->cap - s->rd)
            return lose_all(s, err, "record header damaged");
        s->head_len = n;
        s->head_flags = get32(h + 20);
        s->head_known = 1;
        *len = n;
        return 1;
    }
    return lose_all(s, err, "two wrap markers in a row");
}

int spool_read(struct spool *s, void *buf, uint32_t cap, uint32_t *len, uint32_t *flags,
               struct spool_pos *pos, struct egr_err *err)
{
    uint32_t n;
    int rc = spool_head(s, &n, err);
    if (rc <= 0)
        return rc;
    if (n > cap)
        return egr_fail(err, EGR_EINVAL, "%s: record of %u bytes, buffer of %u", name_of(s),
                        n, cap);
    uint8_t h[SPOOL_REC_OVERHEAD];
    if (read_at(s->fd, h, sizeof(h), HDR_SIZE + s->rd) != (ssize_t)sizeof(h) ||
        read_at(s->fd, buf, n, HDR_SIZE + s->rd + SPOOL_REC_OVERHEAD) != (ssize_t)n)
        return lose_all(s, err, "short read");
    if (get32(h + 16) != rec_crc(h, buf, n))
        return lose_all(s, err, "record checksum mismatch");
    uint64_t need = spool_record_size(n);
    if (pos) {
        pos->off = s->rd;
        pos->end = s->rd + need;
        pos->seq = s->rd_seq;
    }
    if (flags)
        *flags = s->head_flags;
    if ((s->head_flags & SPOOL_AUX) && s->unread_aux)
        s->unread_aux--;
    s->rd += need;
    s->rd_seq++;
    s->head_known = 0;
    *len = n;
    return 1;
}

void spool_skip(struct spool *s, const struct spool_pos *pos, uint32_t flags)
{
    if (pos->seq != s->rd_seq)
        return; /* only the next record to read can be taken as read */
    s->rd = pos->end;
    s->rd_seq++;
    s->head_known = 0;
    if ((flags & SPOOL_AUX) && s->unread_aux)
        s->unread_aux--;
}

int spool_release(struct spool *s, const struct spool_pos *oldest, struct egr_err *err)
{
    uint64_t off = oldest ? oldest->off : s->rd, seq = oldest ? oldest->seq : s->rd_seq;
    if (seq <= s->head_seq || seq > s->rd_seq)
        return EGR_OK; /* nothing to forget, or a position from before a reset */
    s->head = off;
    s->count -= seq - s->head_seq;
    s->head_seq = seq;
    s->used = used_of(s);
    s->dirty = 1;
    if (s->count == 0)
        return reset(s, err);
    return EGR_OK;
}

int spool_pop(struct spool *s, void *buf, uint32_t cap, uint32_t *len, struct egr_err *err)
{
    int rc = spool_read(s, buf, cap, len, NULL, NULL, err);
    if (rc <= 0)
        return rc;
    int r2 = spool_release(s, NULL, err);
    return r2 == EGR_OK ? 1 : r2;
}

int spool_sync(struct spool *s, struct egr_err *err)
{
    return s->dirty ? write_header(s, err) : EGR_OK;
}

int spool_datasync(struct spool *s, struct egr_err *err)
{
    if (!s->data_dirty || s->fsync_mode == SPOOL_FSYNC_NO)
        return EGR_OK;
    s->data_dirty = 0;
    if (fdatasync(s->fd) != 0)
        return egr_fail(err, EGR_EIO, "%s: fdatasync: %s", name_of(s), strerror(errno));
    return EGR_OK;
}

int spool_sync_fd(struct spool *s)
{
    if (!s->data_dirty || s->fsync_mode == SPOOL_FSYNC_NO)
        return -1;
    s->data_dirty = 0;
    return s->fd;
}

uint32_t spool_head_flags(const struct spool *s)
{
    return s->head_known ? s->head_flags : 0;
}

void spool_set_fsync(struct spool *s, enum spool_fsync mode)
{
    s->fsync_mode = mode;
}

uint64_t spool_count(const struct spool *s) { return s->count; }
uint64_t spool_unread(const struct spool *s) { return s->next_seq - s->rd_seq; }
uint64_t spool_unread_aux(const struct spool *s) { return s->unread_aux; }
uint64_t spool_next_seq(const struct spool *s) { return s->next_seq; }
uint64_t spool_read_seq(const struct spool *s) { return s->rd_seq; }
uint64_t spool_used(const struct spool *s) { return s->used; }
uint64_t spool_capacity(const struct spool *s) { return s->cap; }
uint64_t spool_lost(const struct spool *s) { return s->lost; }
const char *spool_path(const struct spool *s) { return s->path ? s->path : ""; }

/* ---- open / recover / close -------------------------------------------- */

static struct spool *spool_alloc(int fd, uint64_t capacity)
{
    struct spool *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->fd = fd;
    s->cap = s->want_cap = capacity;
    s->next_seq = s->head_seq = s->rd_seq = 1;
    return s;
}

/* Follows the records from the header's oldest one; sets head, tail, used,
 * count and next_seq. Returns 1 if it stopped at a torn record. */
static int recover(struct spool *s, uint64_t head, uint64_t seq)
{
    uint64_t pos = head, pending_waste = 0;
    int wrapped = 0;
    s->head = s->tail = s->rd = head;
    s->head_seq = s->next_seq = s->rd_seq = seq;
    s->used = s->count = s->unread_aux = 0;
    if (head > s->cap)
        return 0;
    for (;;) {
        if (s->cap - pos < SPOOL_REC_OVERHEAD) {
            if (wrapped)
                return 0;
            pending_waste += s->cap - pos;
            pos = 0;
            wrapped = 1;
        }
        uint8_t h[SPOOL_REC_OVERHEAD];
        ssize_t r = read_at(s->fd, h, sizeof(h), HDR_SIZE + pos);
        if (r == 0)
            return 0; /* end of the file: the writer stopped here */
        if (r != (ssize_t)sizeof(h))
            return 1;
        if (get32(h) != REC_MAGIC || get64(h + 8) != s->next_seq)
            return 0; /* stale bytes from an earlier lap */
        uint32_t n = get32(h + 4);
        if (n == WRAP_LEN) {
            if (get32(h + 16) != rec_crc(h, NULL, WRAP_LEN))
                return 1;
            if (wrapped)
                return 0;
            pending_waste += s->cap - pos;
            pos = 0;
            wrapped = 1;
            continue;
        }
        uint64_t need = spool_record_size(n);
        if (n == 0 || need > s->cap - pos || (wrapped && pos + need > head))
            return 1;
        uint8_t *payload = malloc(n);
        if (!payload)
            return 1;
        int ok = read_at(s->fd, payload, n, HDR_SIZE + pos + SPOOL_REC_OVERHEAD) == (ssize_t)n &&
                 get32(h + 16) == rec_crc(h, payload, n);
        free(payload);
        if (!ok)
            return 1;
        pos += need;
        s->used += pending_waste + need;
        pending_waste = 0;
        s->tail = pos;
        s->count++;
        s->next_seq++;
        if (get32(h + 20) & SPOOL_AUX)
            s->unread_aux++;
    }
}

/* Closes a spool that failed to open: the file is left as it was found. */
static void drop(struct spool *s)
{
    close(s->fd);
    free(s->wb[0]);
    free(s->wb[1]);
    free(s->path);
    free(s);
}

static int fresh(struct spool *s, struct egr_err *err)
{
    s->count = 0;
    return reset(s, err);
}

int spool_open(const char *path, uint64_t capacity, struct spool **out,
               struct spool_recovery *rec, struct egr_err *err)
{
    pthread_once(&crc_once, crc_init);
    if (capacity < SPOOL_MIN_CAPACITY || capacity > CAP_MAX)
        return egr_fail(err, EGR_EINVAL, "%s: spool capacity %llu outside %u..%llu", path,
                        (unsigned long long)capacity, SPOOL_MIN_CAPACITY,
                        (unsigned long long)CAP_MAX);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return egr_fail(err, EGR_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return egr_fail(err, EGR_EIO, "%s: in use by another process", path);
        return egr_fail(err, EGR_EIO, "%s: lock: %s", path, strerror(e));
    }
    struct spool *s = spool_alloc(fd, capacity);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        close(fd);
        return egr_fail(err, EGR_ENOMEM, "%s: out of memory", path);
    }

    struct spool_recovery r = {0, 0, 0, capacity};
    uint8_t h[HDR_SIZE];
    ssize_t got = read_at(fd, h, sizeof(h), 0);
    int rc;
    if (got < 0) {
        rc = egr_fail(err, EGR_EIO, "%s: read: %s", path, strerror(errno));
    } else if (got == 0) {
        rc = fresh(s, err);
    } else if (got < (ssize_t)HDR_SIZE || memcmp(h, "EGRSPOOL", 8) != 0) {
        rc = egr_fail(err, EGR_EINVAL, "%s: not a spool file (refusing to overwrite it)", path);
    } else if (get32(h + 8) != VERSION) {
        rc = egr_fail(err, EGR_EINVAL, "%s: spool version %u, expected %u", path, get32(h + 8),
                      VERSION);
    } else if (get32(h + 12) != crc_update(0, h + 16, HDR_SIZE - 16) ||
               get64(h + 16) < SPOOL_MIN_CAPACITY || get64(h + 16) > CAP_MAX) {
        r.torn_tail = 1; /* header damaged: nothing can be trusted */
        rc = fresh(s, err);
    } else {
        s->cap = get64(h + 16);
        r.torn_tail = recover(s, get64(h + 24), get64(h + 32));
        rc = s->count ? EGR_OK : reset(s, err);
    }
    if (rc != EGR_OK) {
        drop(s);
        return rc;
    }
    r.records = s->count - s->unread_aux;
    r.aux = s->unread_aux;
    r.capacity = s->cap;
    if (rec)
        *rec = r;
    *out = s;
    return EGR_OK;
}

int spool_open_temp(const char *dir, uint64_t capacity, struct spool **out,
                    struct egr_err *err)
{
    pthread_once(&crc_once, crc_init);
    if (capacity < SPOOL_MIN_CAPACITY || capacity > CAP_MAX)
        return egr_fail(err, EGR_EINVAL, "%s: spool capacity %llu outside %u..%llu", dir,
                        (unsigned long long)capacity, SPOOL_MIN_CAPACITY,
                        (unsigned long long)CAP_MAX);
    int fd = open(dir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        /* File systems without O_TMPFILE: a named file removed at once. */
        char tmpl[4096];
        int n = snprintf(tmpl, sizeof(tmpl), "%s/egressd-spool-XXXXXX", dir);
        if (n < 0 || (size_t)n >= sizeof(tmpl))
            return egr_fail(err, EGR_EINVAL, "%s: directory name too long", dir);
        fd = mkstemp(tmpl);
        if (fd < 0)
            return egr_fail(err, EGR_EIO, "%s: cannot create a spool file: %s", dir,
                            strerror(errno));
        unlink(tmpl);
    }
    struct spool *s = spool_alloc(fd, capacity);
    if (!s) {
        close(fd);
        return egr_fail(err, EGR_ENOMEM, "%s: out of memory", dir);
    }
    int rc = fresh(s, err);
    if (rc != EGR_OK) {
        drop(s);
        return rc;
    }
    *out = s;
    return EGR_OK;
}

void spool_close(struct spool *s)
{
    if (!s)
        return;
    struct egr_err ignored;
    if (s->fd >= 0) {
        if (s->path && s->count == 0)
            unlink(s->path); /* still locked: nobody else holds it */
        else if (spool_sync(s, &ignored) == EGR_OK)
            spool_datasync(s, &ignored);
        close(s->fd);
    }
    free(s->wb[0]);
    free(s->wb[1]);
    free(s->path);
    free(s);
}

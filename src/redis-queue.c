/* redis-queue.c - the Redis sink's memory queue and its disk spool (see
 * sink-redis.c for the path of a record): records in arrival order, bounded
 * in records and bytes, overflowing into the spool and refilled from it in
 * order, and what is left at the end of a run kept for the next one.
 *
 * A named spool is a write-ahead log: every record is appended to it by
 * its writer (rs_wal_append) before the I/O thread sees it. A record that
 * is the next one to read from the spool and finds room goes to memory at
 * once (and counts as read); otherwise it stays on disk and is read back in
 * order. Spooled records in memory carry their position; after each round
 * of replies the spool forgets everything before the oldest of them still
 * in memory (rs_wal_release), one header write a round. A killed process
 * thus loses nothing that reached the spool, and sends again at most what
 * was in flight.
 *
 * Threads: the sink's I/O thread, except rs_wal_append (writers); every
 * spool call holds spool_mx.
 */
#include "redis-int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- memory queue ------------------------------------------------------- */

uint64_t rs_full_mask(unsigned ncmd)
{
    return ncmd >= 64 ? UINT64_MAX : (1ull << ncmd) - 1;
}

/* Room for a record: aggregate batches do not count against the bounds
 * (they have their own, AGG_MEM_MAX). */
int rs_mem_fits(const struct sink_redis *s, uint32_t len)
{
    uint64_t count = s->mem_count - s->mem_agg, bytes = s->mem_bytes - s->mem_agg_bytes;
    if (count == 0)
        return 1; /* a record larger than the whole bound still gets through alone */
    return count < s->cfg.queue_max_records && bytes + len <= s->cfg.queue_max_bytes;
}

struct rrec *rs_rrec_new(const void *data, uint32_t len)
{
    unsigned kind, ncmd;
    struct rcmd_iter it;
    if (rcmd_iter_init(&it, data, len, &kind, &ncmd) != EGR_OK)
        return NULL;
    struct rrec *r = malloc(sizeof(*r) + len);
    if (!r)
        return NULL;
    memset(r, 0, sizeof(*r));
    r->len = len;
    r->kind = (uint8_t)kind;
    r->ncmd = (uint8_t)ncmd;
    memcpy(r->data, data, len);
    return r;
}

void rs_mem_append(struct sink_redis *s, struct rrec *r)
{
    r->next = NULL;
    r->prev = s->tail;
    if (s->tail)
        s->tail->next = r;
    else
        s->head = r;
    s->tail = r;
    if (!s->cursor)
        s->cursor = r;
    s->mem_count++;
    s->mem_bytes += r->len;
    s->n_unsent++;
}

void rs_mem_remove(struct sink_redis *s, struct rrec *r)
{
    if (r->kind == RCMD_AGG) {
        s->mem_agg--;
        s->mem_agg_bytes -= r->len;
    }
    if (r->prev)
        r->prev->next = r->next;
    else
        s->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        s->tail = r->prev;
    if (r->pos.seq)
        s->release_due = 1;
    if (s->cursor == r) {
        s->cursor = r->next; /* only at close: queued records are never removed */
        s->n_unsent--;
    }
    s->mem_count--;
    s->mem_bytes -= r->len;
    free(r);
}

/* Room for r in memory: a record within the queue's bounds, an aggregate
 * batch within AGG_MEM_MAX. Records read back from the spool take half of
 * it (`refill`), so that records the spool cannot take (full, failing)
 * always find room in memory while Redis takes writes. */
static int fits(const struct sink_redis *s, unsigned kind, uint32_t len, int refill)
{
    if (kind == RCMD_AGG)
        return s->mem_agg_bytes + len <= (refill ? AGG_MEM_MAX / 2 : AGG_MEM_MAX);
    if (!refill)
        return rs_mem_fits(s, len);
    uint64_t count = s->mem_count - s->mem_agg, bytes = s->mem_bytes - s->mem_agg_bytes;
    return count == 0 || (count < (s->cfg.queue_max_records + 1) / 2 &&
                          bytes + len <= s->cfg.queue_max_bytes / 2);
}

static void mem_take(struct sink_redis *s, struct rrec *r)
{
    rs_mem_append(s, r);
    if (r->kind == RCMD_AGG) {
        s->mem_agg++;
        s->mem_agg_bytes += r->len;
    }
}

static void spool_error(struct sink_redis *s, const struct egr_err *e)
{
    rs_say(s, "%s", e->msg);
    rs_set_error(s, e->msg);
}

/* Moves spooled records into the memory queue while it has room: with a
 * named spool they stay in it until Redis has them (released later), else
 * they leave it as they are read. */
void rs_refill(struct sink_redis *s)
{
    if (!s->spool || s->finished)
        return;
    uint64_t limit = s->wal ? s->avail_seq : UINT64_MAX;
    pthread_mutex_lock(&s->spool_mx);
    while (spool_unread(s->spool) > 0 && spool_read_seq(s->spool) < limit) {
        uint32_t len, flags;
        struct egr_err e = {""};
        int rc = spool_head(s->spool, &len, &e);
        if (rc <= 0) {
            if (rc < 0)
                spool_error(s, &e);
            break;
        }
        if (!fits(s, (spool_head_flags(s->spool) & SPOOL_AUX) ? RCMD_AGG : RCMD_FLOW, len, 1))
            break;
        if (len > s->popcap) {
            uint8_t *nb = realloc(s->popbuf, len);
            if (!nb)
                break;
            s->popbuf = nb;
            s->popcap = len;
        }
        struct spool_pos pos;
        rc = spool_read(s->spool, s->popbuf, s->popcap, &len, &flags, &pos, &e);
        if (rc <= 0) {
            if (rc < 0)
                spool_error(s, &e);
            break;
        }
        if (!s->wal && spool_release(s->spool, NULL, &e) != EGR_OK)
            spool_error(s, &e);
        struct rrec *r = rs_rrec_new(s->popbuf, len);
        if (!r) {
            s->st.dropped++; /* malformed (never written so) or out of memory */
            continue;
        }
        if (s->wal)
            r->pos = pos;
        mem_take(s, r);
    }
    uint64_t lost = spool_lost(s->spool);
    uint64_t unread = spool_unread(s->spool);
    pthread_mutex_unlock(&s->spool_mx);
    if (lost > s->spool_lost_seen) {
        /* Records the spool could not read back count as dropped. */
        s->st.dropped += lost - s->spool_lost_seen;
        s->spool_lost_seen = lost;
    }
    if (s->spilling && unread == 0) {
        s->spilling = 0;
        rs_say(s, "spool empty again: records go through memory");
    }
}

uint64_t rs_spool_depth(struct sink_redis *s)
{
    if (!s->spool)
        return 0;
    pthread_mutex_lock(&s->spool_mx);
    uint64_t n = spool_unread(s->spool) - spool_unread_aux(s->spool);
    pthread_mutex_unlock(&s->spool_mx);
    return n;
}

/* Records not yet written: in memory (aggregate batches apart) and on disk (with spooled
 * aggregate batches, which the drain waits for too). */
uint64_t rs_waiting(const struct sink_redis *s)
{
    uint64_t disk = 0;
    if (s->spool) {
        pthread_mutex_lock((pthread_mutex_t *)&s->spool_mx);
        disk = spool_unread(s->spool);
        pthread_mutex_unlock((pthread_mutex_t *)&s->spool_mx);
    }
    return s->mem_count - s->mem_agg + disk;
}

/* ---- write-ahead ---------------------------------------------------------- */

uint64_t rs_wal_append(struct sink_redis *s, struct rrec *list, char *err, size_t errsize)
{
    struct egr_err e = {""};
    uint64_t n = 0;
    int stop = 0;
    for (struct rrec *r = list; r; r = r->next) {
        r->pos.seq = 0;
        if (stop || r->kind == KIND_RAW_FLOW)
            continue;
        int rc = spool_append(s->spool, r->data, r->len, r->kind == RCMD_AGG ? SPOOL_AUX : 0,
                              &r->pos, &e);
        if (rc == EGR_OK) {
            n++;
            continue;
        }
        /* Full (or failing): this record and the rest of the batch go in
         * memory only, so the batch keeps its order. */
        r->pos.seq = 0;
        stop = 1;
        if (rc < 0)
            rs_copy_cut(err, errsize, e.msg);
    }
    if (n && spool_commit(s->spool, &e) != EGR_OK) {
        for (struct rrec *r = list; r; r = r->next)
            r->pos.seq = 0;
        rs_copy_cut(err, errsize, e.msg);
        n = 0;
    }
    return n;
}

void rs_wal_release(struct sink_redis *s)
{
    if (!s->wal || !s->release_due || s->finished)
        return;
    s->release_due = 0;
    const struct rrec *r = s->head;
    while (r && !r->pos.seq)
        r = r->next;
    struct egr_err e = {""};
    pthread_mutex_lock(&s->spool_mx);
    uint64_t seq = r ? r->pos.seq : spool_read_seq(s->spool);
    int rc = EGR_OK;
    if (seq != s->released_seq) {
        rc = spool_release(s->spool, r ? &r->pos : NULL, &e);
        if (rc == EGR_OK)
            rc = spool_sync(s->spool, &e);
        s->released_seq = seq;
    }
    pthread_mutex_unlock(&s->spool_mx);
    if (rc != EGR_OK)
        spool_error(s, &e);
}

void rs_spool_tick(struct sink_redis *s)
{
    if (!s->wal)
        return;
    pthread_mutex_lock(&s->spool_mx);
    int fd = spool_sync_fd(s->spool);
    pthread_mutex_unlock(&s->spool_mx);
    /* Outside the lock: the writers append meanwhile. */
    if (fd >= 0 && fdatasync(fd) != 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "%s: fdatasync: %s", spool_path(s->spool), strerror(errno));
        rs_set_error(s, msg);
    }
}

/* ---- enqueue -------------------------------------------------------------- */

static void note_taking(struct sink_redis *s, int agg)
{
    if (!agg && s->dropping) {
        s->dropping = 0;
        rs_say(s, "taking records again (%" PRIu64 " dropped while full)",
            s->st.dropped - s->drop_mark);
    }
}

/* I/O thread: a record or an aggregate batch from the inbox.
 *
 * Named spool: the writer put it in the spool already. It goes to memory
 * too when it is the next record to read from the spool and memory has
 * room; otherwise it is left to be read back in order (rs_refill). One the
 * spool could not take goes to memory alone, ahead of any backlog on disk:
 * new records are not dropped while Redis takes writes however full the
 * disk is.
 *
 * Otherwise: memory while the spool holds nothing and memory has room,
 * else the spool. Dropped (counted) only when neither can take it. r is
 * consumed. */
void rs_enqueue(struct sink_redis *s, struct rrec *r)
{
    int agg = r->kind == RCMD_AGG;
    if (!agg)
        s->st.records++;
    uint32_t len = r->len;
    if (r->pos.seq) {
        if (!agg)
            s->st.spooled++;
        int direct = 0;
        pthread_mutex_lock(&s->spool_mx);
        if (r->pos.seq == spool_read_seq(s->spool) && fits(s, r->kind, len, 0)) {
            spool_skip(s->spool, &r->pos, agg ? SPOOL_AUX : 0);
            direct = 1;
        }
        pthread_mutex_unlock(&s->spool_mx);
        if (s->bypass_noted && !agg) {
            s->bypass_noted = 0;
            rs_say(s, "%s takes records again", spool_path(s->spool));
        }
        if (direct) {
            mem_take(s, r);
            if (!agg)
                s->st.queued++;
        } else {
            if (r->pos.seq + 1 > s->avail_seq)
                s->avail_seq = r->pos.seq + 1;
            free(r);
            if (!s->spilling) {
                s->spilling = 1;
                rs_say(s, "memory queue full (%" PRIu64 " records, %" PRIu64 " bytes): records "
                    "wait in %s", s->mem_count - s->mem_agg, s->mem_bytes - s->mem_agg_bytes,
                    spool_path(s->spool));
            }
        }
        note_taking(s, agg);
        return;
    }
    uint64_t backlog = 0;
    if (s->spool && !s->wal) {
        pthread_mutex_lock(&s->spool_mx);
        backlog = spool_unread(s->spool);
        pthread_mutex_unlock(&s->spool_mx);
    }
    if (backlog == 0 && fits(s, r->kind, len, 0)) {
        mem_take(s, r);
        if (!agg)
            s->st.queued++;
        if (s->wal && !agg && !s->finished) {
            s->st.unspooled++;
            if (!s->bypass_noted) {
                s->bypass_noted = 1;
                rs_say(s, "%s cannot take more (%s): new records are kept in memory only until "
                    "it has room", spool_path(s->spool),
                    s->last_error[0] ? s->last_error : "full");
            }
        }
        note_taking(s, agg);
        return;
    }
    if (s->spool && !s->wal) {
        struct egr_err e = {""};
        pthread_mutex_lock(&s->spool_mx);
        int rc = spool_append(s->spool, r->data, len, agg ? SPOOL_AUX : 0, NULL, &e);
        if (rc == EGR_OK)
            rc = spool_commit(s->spool, &e);
        else
            spool_commit(s->spool, &(struct egr_err){""});
        uint64_t used = spool_used(s->spool), cap = spool_capacity(s->spool);
        pthread_mutex_unlock(&s->spool_mx);
        if (rc == EGR_OK) {
            free(r);
            if (!agg)
                s->st.spooled++;
            if (!s->spilling) {
                s->spilling = 1;
                rs_say(s, "memory queue full (%" PRIu64 " records, %" PRIu64 " bytes): spooling to %s",
                    s->mem_count, s->mem_bytes, "an unnamed file");
            }
            note_taking(s, agg);
            return;
        }
        if (rc < 0 && !s->dropping) {
            rs_set_error(s, e.msg);
            rs_say(s, "%s: dropping records", e.msg);
        } else if (!s->dropping) {
            rs_say(s, "spool full (%" PRIu64 " of %" PRIu64 " bytes): dropping records", used, cap);
        }
    } else if (!s->dropping && !agg) {
        if (s->wal) {
            pthread_mutex_lock(&s->spool_mx);
            uint64_t used = spool_used(s->spool), cap = spool_capacity(s->spool);
            pthread_mutex_unlock(&s->spool_mx);
            rs_say(s, "spool full (%" PRIu64 " of %" PRIu64 " bytes) and memory queue full: "
                "dropping records", used, cap);
        } else {
            rs_say(s, "memory queue full and no spool: dropping records");
        }
    }
    if (agg) {
        s->agg_unsent += r->ncmd;
        free(r);
        return;
    }
    free(r);
    if (!s->dropping) {
        s->dropping = 1;
        s->drop_mark = s->st.dropped;
    }
    s->st.dropped++;
}

/* I/O thread: an aggregate batch, the same way as a record. */
void rs_enqueue_agg(struct sink_redis *s, struct rrec *r)
{
    rs_enqueue(s, r);
}

/* Records whose stream entry has not been written. */
uint64_t rs_undelivered_now(const struct sink_redis *s)
{
    uint64_t n = 0;
    if (s->spool) {
        pthread_mutex_lock((pthread_mutex_t *)&s->spool_mx);
        n = spool_unread(s->spool) - spool_unread_aux(s->spool);
        pthread_mutex_unlock((pthread_mutex_t *)&s->spool_mx);
    }
    for (const struct rrec *r = s->head; r; r = r->next)
        if (!(r->done & 1) && r->kind != RCMD_AGG)
            n++;
    return n;
}

/* At the end: what is still in memory goes to a named spool for the next
 * run (only the commands not yet answered), behind what the spool holds.
 * With the write-ahead spool the records in memory are in it already, some
 * partly written: they are forgotten there first and written again as
 * what is left of them, so nothing Redis has is sent twice. */
uint64_t rs_keep_for_next_run(struct sink_redis *s)
{
    if (!s->spool || !spool_path(s->spool)[0])
        return 0;
    struct egr_err e = {""};
    pthread_mutex_lock(&s->spool_mx);
    if (s->wal && spool_release(s->spool, NULL, &e) == EGR_OK)
        spool_sync(s->spool, &e);
    for (struct rrec *r = s->head, *next; r; r = next) {
        next = r->next;
        if ((r->done & 1) || r->kind == RCMD_AGG)
            continue; /* aggregate batches are not kept (counted as unsent) */
        struct rcmd_iter it;
        const char *argv[RCMD_MAX_ARGS];
        size_t lens[RCMD_MAX_ARGS];
        unsigned argc;
        if (rcmd_iter_init(&it, r->data, r->len, NULL, NULL) != EGR_OK)
            continue;
        rcmd_reset(&s->rb, (enum rcmd_kind)r->kind);
        for (unsigned i = 0; rcmd_next(&it, argv, lens, &argc) == 1; i++) {
            if (r->done & (1ull << i))
                continue;
            rcmd_begin(&s->rb);
            for (unsigned a = 0; a < argc; a++)
                rcmd_arg(&s->rb, argv[a], lens[a]);
            rcmd_end(&s->rb);
        }
        if (rcmd_ok(&s->rb) && spool_push(s->spool, s->rb.buf, (uint32_t)s->rb.len, &e) == EGR_OK &&
            !r->out)
            rs_mem_remove(s, r); /* one still in flight is freed at close */
    }
    uint64_t n = spool_unread(s->spool) - spool_unread_aux(s->spool);
    pthread_mutex_unlock(&s->spool_mx);
    return n;
}

/* The sensor id as a file name: anything but [A-Za-z0-9._-] becomes '_'. */
static void file_name(const char *id, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; id[i] && o + 1 < size; i++) {
        unsigned char c = (unsigned char)id[i];
        out[o++] = (isalnum(c) || c == '.' || c == '_' || c == '-') && !(i == 0 && c == '.')
                       ? (char)c
                       : '_';
    }
    out[o] = '\0';
}

int rs_open_spool(struct sink_redis *s, struct egr_err *err)
{
    const struct sink_redis_config *c = &s->cfg;
    if (c->spool_max_bytes == 0)
        return EGR_OK;
    if (c->spool_max_bytes < SPOOL_MIN_CAPACITY)
        return egr_fail(err, EGR_EINVAL,
                        "redis.spool_max_bytes: %" PRIu64 " is below %u (or 0 for no spool)",
                        c->spool_max_bytes, SPOOL_MIN_CAPACITY);
    if (!c->spool_dir[0]) {
        const char *tmp = getenv("TMPDIR");
        return spool_open_temp(tmp && tmp[0] ? tmp : "/tmp", c->spool_max_bytes, &s->spool, err);
    }
    if (mkdir(c->spool_dir, 0700) != 0 && errno != EEXIST)
        return egr_fail(err, EGR_EIO, "redis.spool_dir: %s: %s", c->spool_dir, strerror(errno));
    char name[160], path[1400];
    file_name(s->sensor, name, sizeof(name));
    snprintf(path, sizeof(path), "%s/%s.spool", c->spool_dir, name);
    struct spool_recovery rec;
    int rc = spool_open(path, c->spool_max_bytes, &s->spool, &rec, err);
    if (rc != EGR_OK)
        return rc;
    s->wal = 1;
    spool_set_fsync(s->spool, (enum spool_fsync)c->spool_fsync);
    s->avail_seq = spool_next_seq(s->spool); /* what an earlier run left is readable */
    s->released_seq = spool_read_seq(s->spool);
    if (rec.records || rec.torn_tail)
        rs_say(s, "%s: %" PRIu64 " records from an earlier run to deliver first%s", path, rec.records,
            rec.torn_tail ? " (a damaged record at the end was discarded)" : "");
    if (rec.records) {
        s->st.records += rec.records;
        s->spilling = 1;
    }
    return EGR_OK;
}

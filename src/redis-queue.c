/* redis-queue.c - the Redis sink's memory queue and its disk spool (see
 * sink-redis.c for the path of a record): records in arrival order, bounded
 * in records and bytes, overflowing into the spool and refilled from it in
 * order, and what is left at the end of a run kept for the next one.
 *
 * Threads: the sink's I/O thread only.
 */
#include "redis-int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
    if (s->cursor == r) {
        s->cursor = r->next; /* only at close: queued records are never removed */
        s->n_unsent--;
    }
    s->mem_count--;
    s->mem_bytes -= r->len;
    free(r);
}

/* Moves spooled records into the memory queue while it has room. */
void rs_refill(struct sink_redis *s)
{
    if (!s->spool || s->finished)
        return;
    while (spool_count(s->spool) > 0) {
        uint32_t len;
        struct egr_err e = {""};
        int rc = spool_head(s->spool, &len, &e);
        if (rc <= 0) {
            if (rc < 0) {
                rs_say(s, "%s", e.msg);
                rs_set_error(s, e.msg);
            }
            break;
        }
        if (!rs_mem_fits(s, len))
            break;
        if (len > s->popcap) {
            uint8_t *nb = realloc(s->popbuf, len);
            if (!nb)
                break;
            s->popbuf = nb;
            s->popcap = len;
        }
        rc = spool_pop(s->spool, s->popbuf, s->popcap, &len, &e);
        if (rc <= 0) {
            if (rc < 0) {
                rs_say(s, "%s", e.msg);
                rs_set_error(s, e.msg);
            }
            break;
        }
        struct rrec *r = rs_rrec_new(s->popbuf, len);
        if (!r) {
            s->st.dropped++; /* malformed (never written so) or out of memory */
            continue;
        }
        rs_mem_append(s, r);
    }
    uint64_t lost = spool_lost(s->spool);
    if (lost > s->spool_lost_seen) {
        /* Records the spool could not read back count as dropped. */
        s->st.dropped += lost - s->spool_lost_seen;
        s->spool_lost_seen = lost;
    }
    if (s->spilling && spool_count(s->spool) == 0) {
        s->spilling = 0;
        rs_say(s, "spool empty again: records go through memory");
    }
}

/* Records (not aggregate batches) not yet written. */
uint64_t rs_waiting(const struct sink_redis *s)
{
    return s->mem_count - s->mem_agg + (s->spool ? spool_count(s->spool) : 0);
}

/* ---- enqueue -------------------------------------------------------------- */

/* I/O thread: a record from the inbox goes to the memory queue, else the
 * spool, else it is dropped (counted). r is consumed. */
void rs_enqueue(struct sink_redis *s, struct rrec *r)
{
    s->st.records++;
    uint32_t len = r->len;
    if ((!s->spool || spool_count(s->spool) == 0) && rs_mem_fits(s, len)) {
        rs_mem_append(s, r);
        s->st.queued++;
        goto queued;
    }
    if (s->spool) {
        struct egr_err e = {""};
        int rc = spool_push(s->spool, r->data, len, &e);
        if (rc == EGR_OK) {
            free(r);
            s->st.spooled++;
            if (!s->spilling) {
                s->spilling = 1;
                rs_say(s, "memory queue full (%" PRIu64 " records, %" PRIu64 " bytes): spooling to %s",
                    s->mem_count, s->mem_bytes,
                    spool_path(s->spool)[0] ? spool_path(s->spool) : "an unnamed file");
            }
            goto queued;
        }
        if (rc < 0 && !s->dropping) {
            rs_set_error(s, e.msg);
            rs_say(s, "%s: dropping records", e.msg);
        } else if (!s->dropping) {
            rs_say(s, "spool full (%" PRIu64 " of %" PRIu64 " bytes): dropping records",
                spool_used(s->spool), spool_capacity(s->spool));
        }
    } else if (!s->dropping) {
        rs_say(s, "memory queue full and no spool: dropping records");
    }
    free(r);
    if (!s->dropping) {
        s->dropping = 1;
        s->drop_mark = s->st.dropped;
    }
    s->st.dropped++;
    return;
queued:
    if (s->dropping) {
        s->dropping = 0;
        rs_say(s, "taking records again (%" PRIu64 " dropped while full)",
            s->st.dropped - s->drop_mark);
    }
}

/* I/O thread: an aggregate batch waits in memory only. */
void rs_enqueue_agg(struct sink_redis *s, struct rrec *r)
{
    if (s->mem_agg_bytes + r->len > AGG_MEM_MAX) {
        s->agg_unsent += r->ncmd;
        free(r);
        return;
    }
    rs_mem_append(s, r);
    s->mem_agg++;
    s->mem_agg_bytes += r->len;
}

/* Records whose stream entry has not been written. */
uint64_t rs_undelivered_now(const struct sink_redis *s)
{
    uint64_t n = s->spool ? spool_count(s->spool) : 0;
    for (const struct rrec *r = s->head; r; r = r->next)
        if (!(r->done & 1) && r->kind != RCMD_AGG)
            n++;
    return n;
}

/* At the end: what is still in memory goes to a named spool for the next
 * run (only the commands not yet answered), behind what the spool holds. */
uint64_t rs_keep_for_next_run(struct sink_redis *s)
{
    if (!s->spool || !spool_path(s->spool)[0])
        return 0;
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
        struct egr_err e;
        if (rcmd_ok(&s->rb) && spool_push(s->spool, s->rb.buf, (uint32_t)s->rb.len, &e) == EGR_OK &&
            !r->out)
            rs_mem_remove(s, r); /* one still in flight is freed at close */
    }
    return spool_count(s->spool);
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
    if (rec.records || rec.torn_tail)
        rs_say(s, "%s: %" PRIu64 " records from an earlier run to deliver first%s", path, rec.records,
            rec.torn_tail ? " (a damaged record at the end was discarded)" : "");
    if (rec.records) {
        s->st.records += rec.records;
        s->spilling = 1;
    }
    return EGR_OK;
}

/* redis-writer.c - the Redis sink's writers: the caller's side, one per
 * thread that makes records (see sink.h).
 *
 * A writer gathers its thread's records in a private list and hands the
 * whole list to the sink's inbox under one lock when redis.batch_records
 * have gathered, on an alert (which also wakes the I/O thread at once, so a
 * live alert is not held for a batch) or when its thread flushes it. Flow
 * records travel as copies and are formatted on the I/O thread while it
 * keeps up; once its inbox holds RAW_MAX entries the writer formats them
 * itself, so the inbox stays compact.
 *
 * With a named spool (write-ahead) records are formatted here and the
 * whole list is appended to the spool by this thread before it is handed
 * over, so a record the sink has is on disk whatever happens to the
 * process next.
 *
 * Aggregates are summed in the writer's own table (no lock per record) and
 * handed over as command batches every AGG_FLUSH_MS, when the table fills
 * and when the writer is freed. Without a named spool the sums stay in the
 * table while Redis does not take writes; when it fills they go as batches
 * (to the queue, then the spool) and the table starts again.
 *
 * Threads: a writer belongs to one thread; it touches the sink only under
 * the sink's mx.
 */
#include "redis-int.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct rs_writer {
    struct sink_redis *s;
    struct rrec *head, *tail;   /* records not handed over yet */
    struct rrec *spare;         /* record copies taken from the sink's pool */
    uint32_t n;
    uint64_t bytes;
    struct rcmd_buf rb;         /* records formatted here */
    struct jbuf jb;
    struct redis_agg *agg;      /* NULL when aggregates are off */
    uint64_t agg_flushed_us;
    uint64_t agg_skipped;       /* records not aggregated, not yet reported */
    uint64_t agg_lost;          /* aggregate commands that could not be handed over */
    int ready;                  /* Redis took writes at the last hand-over */
};

void *rs_writer_new(void *self)
{
    struct sink_redis *s = self;
    struct rs_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->s = s;
    rcmd_init(&w->rb);
    jbuf_init(&w->jb);
    struct egr_err err;
    if (s->cfg.aggregate_ttl && redis_agg_new(AGG_MAX_ENTRIES, &w->agg, &err) != EGR_OK) {
        rcmd_free(&w->rb);
        jbuf_free(&w->jb);
        free(w);
        return NULL;
    }
    w->agg_flushed_us = egr_mono_us();
    pthread_mutex_lock(&s->mx);
    w->ready = s->ready;
    pthread_mutex_unlock(&s->mx);
    return w;
}

static void keep(struct rs_writer *w, struct rrec *r)
{
    r->next = NULL;
    if (w->tail)
        w->tail->next = r;
    else
        w->head = r;
    w->tail = r;
    w->n++;
    w->bytes += r->len;
}

void rs_raw_give(struct sink_redis *s, struct rrec *list)
{
    pthread_mutex_lock(&s->mx);
    while (list && s->raw_npool < RAW_POOL_MAX) {
        struct rrec *r = list;
        list = r->next;
        r->next = s->raw_pool;
        s->raw_pool = r;
        s->raw_npool++;
    }
    pthread_mutex_unlock(&s->mx);
    while (list) {
        struct rrec *r = list;
        list = r->next;
        free(r);
    }
}

/* A buffer for a record copy: a spare one, else a new one. */
static struct rrec *raw_take(struct rs_writer *w)
{
    struct rrec *r = w->spare;
    if (r)
        w->spare = r->next;
    else
        r = malloc(sizeof(*r) + sizeof(struct flow_record));
    return r;
}

/* Under mx: the list into the inbox, as far as its bound allows. */
static void hand_over_locked(struct rs_writer *w, int urgent)
{
    struct sink_redis *s = w->s;
    uint64_t max_count = (uint64_t)s->cfg.queue_max_records + INBOX_SLACK;
    uint64_t max_bytes = s->cfg.queue_max_bytes + (uint64_t)INBOX_SLACK * 4096u;
    for (struct rrec *r = w->head, *next; r; r = next) {
        next = r->next;
        if (r->kind != RCMD_AGG)
            s->in_records++;
        if (r->pos.seq && (s->in_count >= max_count || s->in_bytes + r->len > max_bytes)) {
            /* In the spool already: the thread reads it back from there. */
            if (r->pos.seq + 1 > s->in_avail)
                s->in_avail = r->pos.seq + 1;
            if (r->kind != RCMD_AGG) {
                s->in_records--;
                s->in_walonly++;
            }
            free(r);
            continue;
        }
        if (s->in_count >= max_count || s->in_bytes + r->len > max_bytes) {
            /* The I/O thread is that far behind: dropped (counted). */
            if (r->kind == RCMD_AGG)
                s->in_agg_lost += r->ncmd;
            else
                s->in_dropped++;
            free(r);
            continue;
        }
        rs_inbox_push(s, r);
    }
    w->head = w->tail = NULL;
    w->n = 0;
    w->bytes = 0;
    s->agg_skipped += w->agg_skipped;
    w->agg_skipped = 0;
    s->in_agg_lost += w->agg_lost;
    w->agg_lost = 0;
    w->ready = s->ready;
    if (!w->spare && s->raw_pool) {
        /* The whole pool: the next batch's copies without malloc. */
        w->spare = s->raw_pool;
        s->raw_pool = NULL;
        s->raw_npool = 0;
    }
    if (urgent && s->in_count) {
        s->in_urgent = 1;
        rs_wake(s);
    }
}

/* The list to the sink. With a named spool the records are written to it
 * first, in one batch, by this thread: once this returns they survive the
 * process (write-ahead). spool_mx is held across the inbox push so that
 * the inbox has them in spool order. */
static void hand_over(struct rs_writer *w, int urgent)
{
    struct sink_redis *s = w->s;
    char werr[256] = "";
    if (s->wal) {
        pthread_mutex_lock(&s->spool_mx);
        if (w->head)
            rs_wal_append(s, w->head, werr, sizeof(werr));
    }
    pthread_mutex_lock(&s->mx);
    if (werr[0])
        rs_copy_cut(s->in_wal_err, sizeof(s->in_wal_err), werr);
    hand_over_locked(w, urgent);
    pthread_mutex_unlock(&s->mx);
    if (s->wal)
        pthread_mutex_unlock(&s->spool_mx);
}

static void agg_batch(void *arg, struct rcmd_buf *b)
{
    struct rs_writer *w = arg;
    struct rrec *r = rcmd_ok(b) ? rs_rrec_new(b->buf, (uint32_t)b->len) : NULL;
    if (!r) {
        w->agg_lost += b->ncmd;
        return;
    }
    keep(w, r);
}

static void agg_flush(struct rs_writer *w)
{
    if (w->agg && redis_agg_count(w->agg) > 0)
        redis_agg_flush(w->agg, &w->s->schema, &w->rb, agg_batch, w);
    w->agg_flushed_us = egr_mono_us();
}

static void agg_record(struct rs_writer *w, const struct flow_record *rec)
{
    if (!w->agg || !redis_schema_counts_as_egress(rec))
        return;
    if (!redis_agg_add(w->agg, rec)) {
        /* Full: the sums go now, whether or not Redis takes writes; they
         * wait in the queue and the spool like records. */
        agg_flush(w);
        redis_agg_add(w->agg, rec); /* cannot fail on an empty table */
    }
}

int rs_writer_flush(void *wp, int urgent)
{
    struct rs_writer *w = wp;
    /* Without a named spool the sums wait in the table while Redis is away
     * (merged there, they take no room in the queue); with one they go to
     * the spool every second like records, so a crash loses at most that. */
    if ((w->ready || w->s->wal) && egr_mono_us() - w->agg_flushed_us >= AGG_FLUSH_MS * 1000u)
        agg_flush(w);
    if (!w->head && !urgent && !w->agg_skipped && !w->agg_lost)
        return EGR_OK;
    hand_over(w, urgent);
    return EGR_OK; /* the capture never stops for Redis */
}

static int gathered(struct rs_writer *w)
{
    return w->n >= w->s->cfg.batch_records ? rs_writer_flush(w, 0) : EGR_OK;
}

int rs_write_flow(void *wp, const struct flow_record *rec)
{
    struct rs_writer *w = wp;
    struct sink_redis *s = w->s;
    agg_record(w, rec);
    /* A racy read is enough to choose where the record is formatted. */
    uint64_t inbox = __atomic_load_n(&s->in_count, __ATOMIC_RELAXED);
    struct rrec *r = NULL;
    /* With a named spool the record is formatted here: it goes to the
     * spool from this thread. */
    if (!s->wal && inbox < RAW_MAX && (r = raw_take(w))) {
        memset(r, 0, sizeof(*r));
        r->kind = KIND_RAW_FLOW;
        r->len = sizeof(*rec);
        memcpy(r->data, rec, sizeof(*rec));
    } else {
        rs_format_flow(s, rec, &w->jb, &w->rb);
        if (rcmd_ok(&w->rb) && w->rb.ncmd == 0)
            return EGR_OK; /* nothing of it goes to Redis (redis.streams off, its EVE types not chosen) */
        r = rcmd_ok(&w->rb) ? rs_rrec_new(w->rb.buf, (uint32_t)w->rb.len) : NULL;
    }
    if (!r) {
        pthread_mutex_lock(&s->mx);
        s->in_records++;
        s->in_dropped++;
        pthread_mutex_unlock(&s->mx);
        return EGR_OK;
    }
    keep(w, r);
    return gathered(w);
}

int rs_write_alert(void *wp, const struct alert_record *a)
{
    struct rs_writer *w = wp;
    rs_format_alert(w->s, a, &w->jb, &w->rb);
    if (rcmd_ok(&w->rb) && w->rb.ncmd == 0)
        return EGR_OK;
    struct rrec *r = rcmd_ok(&w->rb) ? rs_rrec_new(w->rb.buf, (uint32_t)w->rb.len) : NULL;
    if (!r) {
        pthread_mutex_lock(&w->s->mx);
        w->s->in_records++;
        w->s->in_dropped++;
        pthread_mutex_unlock(&w->s->mx);
        return EGR_OK;
    }
    keep(w, r);
    return gathered(w);
}

void rs_writer_free(void *wp)
{
    struct rs_writer *w = wp;
    if (!w)
        return;
    /* The last sums go whether or not Redis takes writes now: the drain at
     * the end of the run waits for them. */
    agg_flush(w);
    hand_over(w, 1);
    while (w->spare) {
        struct rrec *r = w->spare;
        w->spare = r->next;
        free(r);
    }
    redis_agg_free(w->agg);
    rcmd_free(&w->rb);
    jbuf_free(&w->jb);
    free(w);
}

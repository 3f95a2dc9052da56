/* sink-redis.c - the Redis sink (see include/egressd/sink-redis.h; keys in
 * docs/redis-schema.md).
 *
 * Path of a record:
 *
 *   flow()/alert() --format--> memory queue --send--> in flight --reply--> gone
 *                     \ (queue full)    ^ (refill in order)
 *                      `--> spool ------'        (spool full: dropped, counted)
 *
 * With a named spool (redis.spool_dir) the spool is a write-ahead log
 * instead: the writers append every record to it before handing it over,
 * the memory queue holds a window of it, and what Redis acknowledged is
 * released (the spool's header moved past it) after each round of replies;
 * records the spool cannot take travel in memory only (counted as
 * unspooled). See redis-queue.c.
 *
 * A record is the encoded commands of redis-schema.h. The memory queue is a
 * list in arrival order, bounded in records and bytes, that holds a record
 * until every one of its commands has been answered: records before
 * `cursor` are in flight, the rest wait. While the spool holds anything, new
 * records go behind it, so records reach Redis in the order they were made.
 *
 * Replies arrive in command order; each command carries its record as
 * privdata and the record knows which of its commands are out (`out` bits),
 * so the answered command is the lowest outstanding one. A record's stream
 * entry (command 0) decides its fate: acknowledged = sent; refused for good
 * (WRONGTYPE and any error not listed as transient) = dropped and counted
 * as rejected. Aggregate commands that fail for good are counted and not
 * retried. Transient errors (OOM under maxmemory/noeviction, LOADING, BUSY,
 * NOPERM, ...) keep the record: sending stops, and after a backoff one
 * record is sent as a probe; when it goes through, pipelining resumes from
 * the oldest record, resending only the commands not yet acknowledged (so
 * an XADD that succeeded is not written twice).
 *
 * Connections: hiredis async on a libevent base. A lost connection returns
 * the in-flight records to the queue (hiredis answers their callbacks with
 * NULL) and a new connection is tried after a backoff doubling from 100 ms
 * to 5 s; AUTH and SELECT are sent first and records only once they
 * succeed. A server that answers nothing for `timeout` seconds is
 * disconnected and reconnected: commands it may have executed without
 * answering are sent again, the one case where a record can be written
 * twice.
 *
 * End of a run (sink_redis_drain): wait until the queue and the spool are
 * empty or redis.drain_timeout has passed, then say exactly what did not
 * reach Redis. With a named spool, what is left is written to it and the
 * next run with the same spool delivers it first.
 *
 * Threads: the sink runs its own I/O thread, which owns the event base,
 * the connection, the memory queue and the spool; nothing above runs on
 * the caller's thread. flow() hands a copy of the record over through a
 * locked inbox (the thread is woken through an eventfd once a batch has
 * gathered) and the thread formats it, so the packet path pays for a copy
 * and a lock, never for formatting, the protocol, replies or the disk. If
 * the thread falls behind, the caller formats records itself (the inbox
 * then holds their compact commands). Requests (heartbeat, drain, stop)
 * go the same way and drain/close wait for the thread's answer; counters
 * are published by the thread under the same lock.
 *
 * Aggregates (redis-agg.h) do not travel with their records: the caller's
 * side sums them in a fixed table and hands the sums over as batches every
 * AGG_FLUSH_MS or when the table fills. A batch waits in the memory queue
 * and the spool like a record; if both are full it is dropped, counted,
 * and the run exits 1. A
 * batch in flight when the connection drops is sent again like a record (an
 * increment may then count twice): aggregates are for dashboards, the
 * streams are the record of truth.
 *
 * Logging: one line per change of state (connected, lost, refused,
 * spooling, dropping), through the callback given at open, at most
 * LOG_BURST lines per minute. Text from outside (server errors, keys, the
 * sensor id, the URL) is shown with control bytes escaped, so a line stays
 * one line.
 */
#include "redis-int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

void sink_redis_config_defaults(struct sink_redis_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->prefix, sizeof(c->prefix), "egress");
    c->flows_maxlen = 100000;
    c->alerts_maxlen = 1000000;
    c->aggregate_ttl = 7200;
    c->heartbeat_interval = 10;
    c->heartbeat_ttl = 60;
    c->queue_max_bytes = 64ull << 20;
    c->queue_max_records = 100000;
    c->batch_records = 256;
    c->flush_ms = 100;
    c->spool_max_bytes = 256ull << 20;
    c->spool_fsync = SPOOL_FSYNC_EVERYSEC;
    c->drain_timeout = 30;
    c->timeout = 10;
    c->layout = REDIS_LAYOUT_AUTO;
    c->wait_replicas = REDIS_WAIT_AUTO;
    c->wait_timeout_ms = 1000;
    c->streams = 1;
    redis_eve_config_defaults(&c->eve);
}

/* The commands of a flow record: its flat stream entry (unless
 * redis.streams is off), then its EVE events (redis.eve). The record may
 * end up with no command at all. */
void rs_format_flow(const struct sink_redis *s, const struct flow_record *rec, struct jbuf *jb,
                    struct rcmd_buf *b)
{
    if (s->cfg.streams)
        redis_schema_flow(&s->schema, rec, b);
    else
        rcmd_reset(b, RCMD_FLOW);
    redis_eve_flow(&s->cfg.eve, rec, jb, b);
}

/* The commands of an alert: its flat stream entry and live PUBLISH
 * (unless redis.streams is off), then its EVE event. */
void rs_format_alert(const struct sink_redis *s, const struct alert_record *a, struct jbuf *jb,
                     struct rcmd_buf *b)
{
    if (s->cfg.streams)
        redis_schema_alert(&s->schema, a, jb, b);
    else
        rcmd_reset(b, RCMD_ALERT);
    redis_eve_alert(&s->cfg.eve, a, jb, b);
}

/* One line through the callback, at most LOG_BURST per window: a flapping
 * server cannot flood the log. */
void rs_say(struct sink_redis *s, const char *fmt, ...)
{
    time_t now = time(NULL);
    if (now - s->log_window >= LOG_WINDOW_S) {
        s->log_window = now;
        s->log_lines = 0;
    }
    if (s->log_lines >= LOG_BURST) {
        s->log_suppressed++;
        return;
    }
    s->log_lines++;
    char line[1024];
    int n = snprintf(line, sizeof(line), "redis: ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (s->log_suppressed) {
        size_t l = strlen(line);
        snprintf(line + l, sizeof(line) - l, " (%u earlier lines suppressed)", s->log_suppressed);
        s->log_suppressed = 0;
    }
    if (s->log)
        s->log(s->log_arg, line);
}

/* Printable form of bytes from Redis or a key, for one log line. */
void rs_show(char *out, size_t size, const char *p, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && i < KEY_SHOW_MAX && o + 5 < size; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f)
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
    }
    if (n > KEY_SHOW_MAX && o + 4 < size) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* Copies a message, cut to fit (messages are one line; the end matters
 * least). */
void rs_copy_cut(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void rs_set_error(struct sink_redis *s, const char *msg)
{
    rs_copy_cut(s->last_error, sizeof(s->last_error), msg);
}

/* ---- the I/O thread ------------------------------------------------------ */

void rs_wake(struct sink_redis *s)
{
    uint64_t one = 1;
    ssize_t n = write(s->wake_fd, &one, sizeof(one));
    (void)n; /* EAGAIN: the counter is already non-zero, the thread will wake */
}

/* Caller's side, under mx. The thread is woken once a batch has gathered
 * (redis.batch_records); what gathers slower is taken by its flush_ms
 * timer. A wake per record would cost two context switches per record. */
void rs_inbox_push(struct sink_redis *s, struct rrec *r)
{
    r->next = NULL;
    if (s->in_tail)
        s->in_tail->next = r;
    else
        s->in_head = r;
    s->in_tail = r;
    s->in_count++;
    s->in_bytes += r->len;
    if (s->in_count == s->cfg.batch_records)
        rs_wake(s);
}

/* Publishes the counters for other threads. Under mx. */
static void publish(struct sink_redis *s)
{
    s->snap = s->st;
    s->snap.enabled = 1;
    s->snap.queue_depth = s->mem_count - s->mem_agg;
    s->snap.spool_depth = s->spool_depth_seen;
    s->snap.agg_unwritten = s->agg_unsent + s->agg_refused + s->agg_skipped;
    s->ready = rs_usable(s) && !s->stalled && !s->finished;
    if (!s->ready && s->agg_skipped && !s->agg_full_noted) {
        s->agg_full_noted = 1;
        rs_say(s, "aggregate table full while %s does not take writes: the aggregates of further "
            "records are not counted until it does", s->ep.shown);
    }
    if (s->ready)
        s->agg_full_noted = 0;
}

/* The eventfd, or the inbox timer (fd -1): the loop around takes the
 * inbox after every event. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    uint64_t v;
    if (fd >= 0) {
        ssize_t n = read(fd, &v, sizeof(v));
        (void)n;
    }
}

/* Takes what the callers handed over. Returns the requests seen. */
static void take_inbox(struct sink_redis *s, int *heartbeat, int *drain, int *stop)
{
    pthread_mutex_lock(&s->mx);
    struct rrec *r = s->in_head;
    s->in_head = s->in_tail = NULL;
    s->in_count = s->in_bytes = 0;
    int urgent = s->in_urgent;
    s->in_urgent = 0;
    /* rs_enqueue() counts the records it takes; those the inbox dropped are
     * counted here. */
    uint64_t lost = s->in_dropped;
    s->st.records += lost;
    s->st.dropped += lost;
    s->in_records = s->in_dropped = 0;
    s->agg_unsent += s->in_agg_lost;
    s->in_agg_lost = 0;
    /* Spooled by the writers and left out of the inbox (it was full). */
    uint64_t avail = s->in_avail, walonly = s->in_walonly;
    s->in_walonly = 0;
    char wal_err[256];
    rs_copy_cut(wal_err, sizeof(wal_err), s->in_wal_err);
    s->in_wal_err[0] = '\0';
    *heartbeat = s->req_heartbeat;
    *drain = s->req_drain && !s->drain_done;
    *stop = s->req_stop;
    s->req_heartbeat = 0;
    pthread_mutex_unlock(&s->mx);

    if (lost)
        rs_say(s, "the Redis thread fell behind: %" PRIu64 " records dropped at hand-over", lost);
    if (wal_err[0]) {
        if (strcmp(wal_err, s->last_error) != 0)
            rs_say(s, "%s", wal_err);
        rs_set_error(s, wal_err);
    }
    s->st.records += walonly;
    s->st.spooled += walonly;
    struct rrec *spare = NULL;
    while (r) {
        struct rrec *next = r->next;
        if (r->kind == KIND_RAW_FLOW) {
            /* Formatted here, on the I/O thread (its aggregates were summed
             * by the writer that made it). */
            const struct flow_record *rec = (const struct flow_record *)(const void *)r->data;
            rs_format_flow(s, rec, &s->jb, &s->rb);
            int none = rcmd_ok(&s->rb) && s->rb.ncmd == 0;
            struct rrec *f = rcmd_ok(&s->rb) && !none ? rs_rrec_new(s->rb.buf, (uint32_t)s->rb.len) : NULL;
            r->next = spare;
            spare = r;
            if (none) {
                /* nothing to send */
            } else if (f) {
                rs_enqueue(s, f);
            } else {
                s->st.records++;
                s->st.dropped++;
                rs_set_error(s, "out of memory formatting a record");
            }
        } else if (r->kind == RCMD_AGG) {
            rs_enqueue_agg(s, r);
        } else {
            rs_enqueue(s, r);
        }
        r = next;
    }
    if (spare)
        rs_raw_give(s, spare);
    if (avail > s->avail_seq)
        s->avail_seq = avail;
    if (s->n_unsent >= s->cfg.batch_records || (urgent && s->n_unsent))
        rs_send_some(s);
    else if (s->n_unsent)
        rs_arm_flush(s);
}

static int drain_now(struct sink_redis *s);

static void *io_main(void *arg)
{
    struct sink_redis *s = arg;
    int heartbeat, drain, stop;
    for (;;) {
        event_base_loop(s->base, EVLOOP_ONCE);
        take_inbox(s, &heartbeat, &drain, &stop);
        /* What Redis acknowledged in this round is forgotten in the spool:
         * one header write per round of replies, not per record. */
        rs_wal_release(s);
        s->spool_depth_seen = rs_spool_depth(s);
        if (heartbeat)
            rs_send_heartbeat(s);
        if (drain) {
            int rc = drain_now(s);
            s->spool_depth_seen = rs_spool_depth(s);
            pthread_mutex_lock(&s->mx);
            publish(s);
            s->drain_rc = rc;
            s->drain_done = 1;
            pthread_cond_broadcast(&s->cv);
            pthread_mutex_unlock(&s->mx);
        }
        pthread_mutex_lock(&s->mx);
        publish(s);
        pthread_mutex_unlock(&s->mx);
        if (stop)
            break;
    }
    /* The last heartbeat: send what waits and give the replies a moment. */
    rs_send_some(s);
    uint64_t until = egr_mono_us() + FINAL_FLUSH_MS * 1000u;
    /* Records handed over after the drain (the final stats event, when
     * redis.eve sends stats) are waited for too. */
    while (rs_usable(s) && (s->inflight_plain > 0 || s->inflight > 0) && egr_mono_us() < until)
        event_base_loop(s->base, EVLOOP_ONCE);
    return NULL;
}

/* ---- sink ops --------------------------------------------------------- */

void sink_redis_progress(void *self, const struct run_stats *st)
{
    struct sink_redis *s = self;
    pthread_mutex_lock(&s->mx);
    s->hb_packets = st->packets;
    s->hb_bytes = st->bytes;
    s->hb_drops = st->drop_kernel + st->drop_ifdrop;
    s->hb_active = st->flow.active;
    pthread_mutex_unlock(&s->mx);
}

static int sr_stats(void *self, const struct run_stats *st)
{
    struct sink_redis *s = self;
    sink_redis_progress(s, st);
    rcmd_reset(&s->stats_rb, RCMD_EVE);
    int eve = redis_eve_stats(&s->cfg.eve, st, &s->stats_jb, &s->stats_rb) > 0;
    struct rrec *r = eve && rcmd_ok(&s->stats_rb) ? rs_rrec_new(s->stats_rb.buf,
                                                                (uint32_t)s->stats_rb.len)
                                                  : NULL;
    char werr[256] = "";
    /* After the drain (the final stats event) the spool is not released
     * any more: such a record travels in memory only, or the next run would
     * send it again. */
    pthread_mutex_lock(&s->mx);
    int wal = r && s->wal && !s->drain_done;
    pthread_mutex_unlock(&s->mx);
    if (wal) {
        r->next = NULL;
        pthread_mutex_lock(&s->spool_mx);
        rs_wal_append(s, r, werr, sizeof(werr));
    }
    pthread_mutex_lock(&s->mx);
    if (werr[0])
        rs_copy_cut(s->in_wal_err, sizeof(s->in_wal_err), werr);
    if (eve) {
        s->in_records++;
        if (r)
            rs_inbox_push(s, r);
        else
            s->in_dropped++;
    }
    s->req_heartbeat = 1;
    rs_wake(s);
    pthread_mutex_unlock(&s->mx);
    if (wal)
        pthread_mutex_unlock(&s->spool_mx);
    return EGR_OK;
}

/* The thread sends on its own; the last heartbeat is waited for at close. */
static int sr_flush(void *self)
{
    struct sink_redis *s = self;
    pthread_mutex_lock(&s->mx);
    int failed = s->drain_done ? s->drain_rc : EGR_OK;
    pthread_mutex_unlock(&s->mx);
    return failed;
}

static const char *sr_error(void *self)
{
    const struct sink_redis *s = self;
    return s->failed ? s->errmsg : "";
}

/* I/O thread: the end of a run (see sink_redis_drain). */
static int drain_now(struct sink_redis *s)
{
    uint64_t deadline = egr_mono_us() + (uint64_t)s->cfg.drain_timeout * 1000000u;
    int hb, dr, st;
    take_inbox(s, &hb, &dr, &st);
    rs_send_some(s);
    while ((rs_waiting(s) > 0 || s->mem_agg > 0) && egr_mono_us() < deadline) {
        event_base_loop(s->base, EVLOOP_ONCE);
        rs_wal_release(s);
        rs_send_some(s);
    }
    rs_wal_release(s);
    s->finished = 1;
    uint64_t left = rs_undelivered_now(s);
    s->st.undelivered = left;
    for (const struct rrec *r = s->head; r; r = r->next)
        if (r->kind == RCMD_AGG)
            s->agg_unsent += r->ncmd - (unsigned)__builtin_popcountll(r->done);
    /* When records are missing too, the summary below says so; aggregates
     * alone are worth a line of their own. */
    pthread_mutex_lock(&s->mx);
    uint64_t skipped = s->agg_skipped;
    pthread_mutex_unlock(&s->mx);
    if (s->agg_refused)
        rs_say(s, "%" PRIu64 " aggregate updates were refused by Redis (not retried)", s->agg_refused);
    if ((s->agg_unsent || skipped) && left == 0 && s->st.dropped == 0) {
        /* The records are all there but the dashboards' numbers are not:
         * a run that lost some says so in its exit status too. */
        s->failed = EGR_EIO;
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "redis: aggregates incomplete: %" PRIu64 " updates not written, %" PRIu64
                 " records not counted", s->agg_unsent, skipped);
        return s->failed;
    }
    if (left == 0 && s->st.dropped == 0)
        return EGR_OK;

    uint64_t kept = left ? rs_keep_for_next_run(s) : 0;
    char tail[600] = "";
    size_t n = 0;
    if (left)
        n += (size_t)snprintf(tail + n, sizeof(tail) - n,
                              "; %" PRIu64 " still waiting after redis.drain_timeout (%u s)", left,
                              s->cfg.drain_timeout);
    if (s->unconfirmed)
        n += (size_t)snprintf(tail + n, sizeof(tail) - n,
                              " (%" PRIu64 " of them written but not confirmed by a replica)",
                              s->unconfirmed);
    if (kept)
        n += (size_t)snprintf(tail + n, sizeof(tail) - n,
                              ", %" PRIu64 " kept in %s for the next run", kept,
                              spool_path(s->spool));
    if (s->st.dropped > s->st.rejected)
        n += (size_t)snprintf(tail + n, sizeof(tail) - n,
                              "; %" PRIu64 " dropped (queue and spool full)",
                              s->st.dropped - s->st.rejected);
    if (s->st.rejected)
        n += (size_t)snprintf(tail + n, sizeof(tail) - n, "; %" PRIu64 " refused by Redis",
                              s->st.rejected);
    if (s->last_error[0] && n < sizeof(tail))
        snprintf(tail + n, sizeof(tail) - n, "; last error: %s", s->last_error);
    s->failed = EGR_EIO;
    char msg[1200];
    snprintf(msg, sizeof(msg), "redis: %" PRIu64 " of %" PRIu64 " records not delivered to %s%s",
             left + s->st.dropped, s->st.records, s->ep.shown, tail);
    rs_copy_cut(s->errmsg, sizeof(s->errmsg), msg);
    return s->failed;
}

int sink_redis_drain(void *self)
{
    struct sink_redis *s = self;
    pthread_mutex_lock(&s->mx);
    s->req_drain = 1;
    rs_wake(s);
    while (!s->drain_done)
        pthread_cond_wait(&s->cv, &s->mx);
    int rc = s->drain_rc;
    pthread_mutex_unlock(&s->mx);
    return rc;
}

void sink_redis_counters(void *self, struct redis_stats *out)
{
    struct sink_redis *s = self;
    pthread_mutex_lock(&s->mx);
    *out = s->snap;
    /* Handed over, not yet seen by the thread. */
    out->records += s->in_records;
    out->dropped += s->in_dropped;
    out->queue_depth += s->in_count;
    out->enabled = 1;
    pthread_mutex_unlock(&s->mx);
}

void sink_redis_poll(void *self)
{
    /* The thread needs no pumping, and each writer sends its own sums when
     * it is flushed. */
    (void)self;
}

static void sr_free(struct sink_redis *s)
{
    rs_nodes_free(s);
    struct event *evs[] = {s->ev_flush, s->ev_retry, s->ev_watchdog, s->ev_heartbeat,
                           s->ev_wake, s->ev_inbox, s->ev_refresh, s->ev_wait};
    for (size_t i = 0; i < EGR_ARRAY_LEN(evs); i++)
        if (evs[i])
            event_free(evs[i]);
    while (s->head)
        rs_mem_remove(s, s->head);
    while (s->in_head) {
        struct rrec *r = s->in_head;
        s->in_head = r->next;
        free(r);
    }
    while (s->raw_pool) {
        struct rrec *r = s->raw_pool;
        s->raw_pool = r->next;
        free(r);
    }
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    pthread_mutex_destroy(&s->mx);
    pthread_mutex_destroy(&s->spool_mx);
    pthread_cond_destroy(&s->cv);
    spool_close(s->spool);
    if (s->own_base && s->base)
        event_base_free(s->base);
    rcmd_free(&s->rb);
    rcmd_free(&s->stats_rb);
    jbuf_free(&s->stats_jb);
    rcmd_free(&s->hb_rb);
    jbuf_free(&s->jb);
    free(s->popbuf);
    free(s->resp);
    free(s->map);
    free(s);
}

static void sr_close(void *self)
{
    struct sink_redis *s = self;
    if (s->thread_started) {
        pthread_mutex_lock(&s->mx);
        s->req_stop = 1;
        rs_wake(s);
        pthread_mutex_unlock(&s->mx);
        pthread_join(s->thread, NULL);
    }
    s->closing = 1;
    s->finished = 1; /* nothing leaves the spool any more */
    rs_nodes_free(s); /* answers what is in flight with NULL */
    sr_free(s);
}

static const struct sink_ops sink_redis_ops = {
    .name = "redis",
    .writer_new = rs_writer_new,
    .write_flow = rs_write_flow,
    .write_alert = rs_write_alert,
    .writer_flush = rs_writer_flush,
    .writer_free = rs_writer_free,
    .stats = sr_stats,
    .flush = sr_flush,
    .close = sr_close,
    .error = sr_error,
};

void *sink_redis_self(const struct sink *s)
{
    return s->ops == &sink_redis_ops ? s->self : NULL;
}

int sink_redis_open(const struct sink_redis_config *cfg, const char *source, sink_redis_log_fn log, void *log_arg, struct sink *out,
                    struct egr_err *err)
{
    struct sink_redis *s = calloc(1, sizeof(*s));
    if (!s)
        return egr_fail(err, EGR_ENOMEM, "redis: out of memory");
    s->wake_fd = -1;
    pthread_mutex_init(&s->mx, NULL);
    pthread_mutex_init(&s->spool_mx, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->cfg = *cfg;
    snprintf(s->source, sizeof(s->source), "%s", source ? source : "");
    s->log = log;
    s->log_arg = log_arg;
    rcmd_init(&s->rb);
    rcmd_init(&s->hb_rb);
    jbuf_init(&s->jb);
    rcmd_init(&s->stats_rb);
    jbuf_init(&s->stats_jb);
    int rc = redis_url_parse(cfg->url, &s->ep, err);
    if (rc != EGR_OK)
        goto fail;
    if (!cfg->prefix[0]) {
        rc = egr_fail(err, EGR_EINVAL, "redis.prefix: must not be empty");
        goto fail;
    }
    if (cfg->eve.mode != REDIS_EVE_OFF && !cfg->eve.key[0]) {
        rc = egr_fail(err, EGR_EINVAL, "redis.eve.key: must not be empty when redis.eve.mode is %s",
                      redis_eve_mode_name(cfg->eve.mode));
        goto fail;
    }
    if (!cfg->streams && cfg->eve.mode == REDIS_EVE_OFF) {
        rc = egr_fail(err, EGR_EINVAL, "redis.streams is false and redis.eve.mode is off: no record "
                      "would be written (set redis.eve.mode, or leave redis.streams true)");
        goto fail;
    }
    if (cfg->sensor_id[0]) {
        snprintf(s->sensor, sizeof(s->sensor), "%s", cfg->sensor_id);
    } else if (gethostname(s->sensor, sizeof(s->sensor) - 1) != 0 || !s->sensor[0]) {
        snprintf(s->sensor, sizeof(s->sensor), "unknown");
    }
    if (s->ep.is_unix && cfg->seeds.n) {
        rc = egr_fail(err, EGR_EINVAL, "redis.seeds: a unix:// redis.url takes no seeds "
                      "(a cluster is reached over TCP)");
        goto fail;
    }
    if (!(s->map = calloc(1, sizeof(*s->map)))) {
        rc = egr_fail(err, EGR_ENOMEM, "redis: out of memory");
        goto fail;
    }
    /* The layout must be known before the first record is formatted: ask
     * the server now (a blocking question of at most PROBE_TIMEOUT_MS per
     * seed) unless the configuration says. */
    if (cfg->layout == REDIS_LAYOUT_AUTO || cfg->seeds.n) {
        if ((rc = rs_probe(s, err)) != EGR_OK)
            goto fail;
    } else if (s->ep.is_unix) {
        s->mode = MODE_SINGLE;
    }
    int per_sensor = cfg->layout == REDIS_LAYOUT_PER_SENSOR ||
                     (cfg->layout == REDIS_LAYOUT_AUTO && s->mode == MODE_CLUSTER);
    s->layout_guessed = cfg->layout == REDIS_LAYOUT_AUTO && s->mode == MODE_UNKNOWN;
    s->schema = (struct redis_schema){
        .prefix = s->cfg.prefix,
        .sensor = s->sensor,
        .flows_maxlen = cfg->flows_maxlen,
        .alerts_maxlen = cfg->alerts_maxlen,
        .aggregate_ttl = cfg->aggregate_ttl,
        .per_sensor = per_sensor,
    };
    s->max_inflight = (uint64_t)cfg->batch_records * 8;
    if (s->max_inflight < 64)
        s->max_inflight = 64;
    s->retry_ms = s->wait_retry_ms = BACKOFF_MIN_MS;
    s->start_us = egr_wall_us();
    s->log_window = time(NULL);
    if ((rc = rs_open_spool(s, err)) != EGR_OK)
        goto fail;
    s->base = event_base_new();
    s->own_base = 1;
    s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->wake_fd < 0) {
        rc = egr_fail(err, EGR_EIO, "redis: eventfd: %s", strerror(errno));
        goto fail;
    }
    if (!s->base ||
        !(s->ev_wake = event_new(s->base, s->wake_fd, EV_READ | EV_PERSIST, on_wake, s)) ||
        !(s->ev_inbox = event_new(s->base, -1, EV_PERSIST, on_wake, s)) ||
        !(s->ev_flush = evtimer_new(s->base, rs_on_flush, s)) ||
        !(s->ev_refresh = evtimer_new(s->base, rs_on_refresh_timer, s)) ||
        !(s->ev_wait = evtimer_new(s->base, rs_on_wait_timer, s)) ||
        !(s->ev_retry = evtimer_new(s->base, rs_on_retry_timer, s)) ||
        !(s->ev_watchdog = event_new(s->base, -1, EV_PERSIST, rs_on_watchdog, s)) ||
        !(s->ev_heartbeat = event_new(s->base, -1, EV_PERSIST, rs_on_heartbeat, s))) {
        rc = egr_fail(err, EGR_ENOMEM, "redis: cannot set up the event loop");
        goto fail;
    }
    struct timeval wd = {WATCHDOG_MS / 1000, (WATCHDOG_MS % 1000) * 1000};
    struct timeval hb = {(time_t)cfg->heartbeat_interval, 0};
    event_add(s->ev_watchdog, &wd);
    event_add(s->ev_heartbeat, &hb);
    event_add(s->ev_wake, NULL);
    struct timeval fl = {cfg->flush_ms / 1000, (cfg->flush_ms % 1000) * 1000};
    event_add(s->ev_inbox, &fl);

    /* A peer that closes the socket must give hiredis an EPIPE error, not
     * kill the sensor; only a default disposition is changed. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);

    /* Node 0 is the URL's server; the seeds are asked for the map when no
     * master answers. */
    if (!rs_node_get(s, s->ep.host, s->ep.port, s->ep.is_unix)) {
        rc = egr_fail(err, EGR_ENOMEM, "redis: out of memory");
        goto fail;
    }
    for (unsigned i = 0; i < cfg->seeds.n; i++) {
        char host[REDIS_CLUSTER_HOST_MAX];
        int port;
        struct rnode *n;
        if (redis_cluster_endpoint(cfg->seeds.v[i], strlen(cfg->seeds.v[i]), host, &port) !=
            EGR_OK) {
            rc = egr_fail(err, EGR_EINVAL, "redis.seeds: \"%s\" is not host:port", cfg->seeds.v[i]);
            goto fail;
        }
        if ((n = rs_node_get(s, host, port, 0)))
            n->seed = 1;
    }
    rs_install_probed(s);
    rs_connect_now(s->nodes[0]);
    /* From here on only the thread touches the base and the connections. */
    if (pthread_create(&s->thread, NULL, io_main, s) != 0) {
        rc = egr_fail(err, EGR_ENOMEM, "redis: cannot start the I/O thread");
        goto fail;
    }
    s->thread_started = 1;
    out->ops = &sink_redis_ops;
    out->self = s;
    return EGR_OK;
fail:
    sr_free(s);
    return rc;
}


/* redis-send.c - the Redis sink's pipeline: queued records out in order,
 * replies matched to their commands, transient refusals waited out with a
 * probe, permanent ones counted; and the heartbeat.
 *
 * Threads: the sink's I/O thread only.
 */
#include "redis-int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void cb_record(redisAsyncContext *ac, void *reply, void *privdata);

/* Sends the unanswered commands of r. 0, or -1 if hiredis refused (the
 * connection is going away). */
static int send_record(struct sink_redis *s, struct rrec *r)
{
    struct rcmd_iter it;
    const char *argv[RCMD_MAX_ARGS];
    size_t lens[RCMD_MAX_ARGS];
    unsigned argc;
    if (rcmd_iter_init(&it, r->data, r->len, NULL, NULL) != EGR_OK)
        return -1; /* cannot happen: checked when queued */
    r->again = 0;
    for (unsigned i = 0; rcmd_next(&it, argv, lens, &argc) == 1; i++) {
        if (r->done & (1ull << i))
            continue;
        if (rs_send_command(s, cb_record, r, argc, argv, lens) != REDIS_OK)
            return -1;
        r->out |= 1ull << i;
    }
    return 0;
}

void rs_arm_flush(struct sink_redis *s)
{
    if (!evtimer_pending(s->ev_flush, NULL)) {
        struct timeval tv = {s->cfg.flush_ms / 1000, (s->cfg.flush_ms % 1000) * 1000};
        evtimer_add(s->ev_flush, &tv);
    }
}

void rs_send_some(struct sink_redis *s)
{
    rs_refill(s);
    if (!rs_usable(s) || s->stalled)
        return;
    while (s->cursor && s->inflight < s->max_inflight) {
        if (s->probing && s->inflight > 0)
            break; /* one record at a time until the refusal is over */
        struct rrec *r = s->cursor;
        if (s->inflight == 0 && s->inflight_plain == 0)
            s->progress_us = egr_mono_us(); /* the silence clock starts now */
        int rc = send_record(s, r);
        if (r->out) {
            s->cursor = r->next;
            s->n_unsent--;
            s->inflight++;
        }
        if (rc != 0)
            break;
    }
    if (s->n_unsent > 0)
        rs_arm_flush(s);
}

/* After a transient refusal or a reconnection: start again from the oldest
 * record once nothing is in flight (so the queue order holds). */
void rs_resume(struct sink_redis *s)
{
    if (!rs_usable(s) || s->inflight > 0 || evtimer_pending(s->ev_retry, NULL))
        return;
    if (s->stalled) {
        s->stalled = 0;
        s->probing = 1;
    }
    s->cursor = s->head;
    s->n_unsent = s->mem_count;
    rs_send_some(s);
}

/* The key argument of command i of r, for a message. */
static void command_key(const struct rrec *r, unsigned idx, char *out, size_t size)
{
    struct rcmd_iter it;
    const char *argv[RCMD_MAX_ARGS];
    size_t lens[RCMD_MAX_ARGS];
    unsigned argc;
    out[0] = '\0';
    if (rcmd_iter_init(&it, r->data, r->len, NULL, NULL) != EGR_OK)
        return;
    for (unsigned i = 0; rcmd_next(&it, argv, lens, &argc) == 1; i++) {
        if (i == idx && argc >= 2) {
            char cmd[32], key[KEY_SHOW_MAX * 4 + 8];
            rs_show(cmd, sizeof(cmd), argv[0], lens[0]);
            rs_show(key, sizeof(key), argv[1], lens[1]);
            snprintf(out, size, "%s %s", cmd, key);
            return;
        }
    }
}

static void retry_later(struct sink_redis *s)
{
    struct timeval tv = {s->retry_ms / 1000, (s->retry_ms % 1000) * 1000};
    evtimer_add(s->ev_retry, &tv);
    s->retry_ms = s->retry_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->retry_ms * 2;
}

static void on_refused(struct sink_redis *s, const struct redisReply *rep, const struct rrec *r,
                       unsigned idx)
{
    char msg[160], key[400];
    rs_show(msg, sizeof(msg), rep->str, rep->len);
    command_key(r, idx, key, sizeof(key));
    if (rs_transient(rep->str)) {
        if (!s->stalled) {
            s->stalled = 1;
            s->probing = 0;
            retry_later(s);
        }
        int seen = 0;
        unsigned nseen = s->nrefusal_seen < EGR_ARRAY_LEN(s->refusal_seen)
                             ? s->nrefusal_seen : (unsigned)EGR_ARRAY_LEN(s->refusal_seen);
        for (unsigned i = 0; i < nseen && !seen; i++)
            seen = !strcmp(s->refusal_seen[i], msg);
        snprintf(s->refusal, sizeof(s->refusal), "%s", msg);
        if (!seen) {
            unsigned slot = s->nrefusal_seen++ % EGR_ARRAY_LEN(s->refusal_seen);
            snprintf(s->refusal_seen[slot], sizeof(s->refusal_seen[slot]), "%s", msg);
            rs_say(s, "%s refuses writes: %s (records kept, retrying)", s->ep.shown, msg);
        }
        rs_set_error(s, msg);
        if (!strncmp(rep->str, "NOAUTH", 6) || !strncmp(rep->str, "READONLY", 8)) {
            /* The server changed under us (restarted with a password, made
             * a replica): a fresh connection authenticates again. */
            if (s->ac)
                redisAsyncDisconnect(s->ac);
        }
        return;
    }
    char line[600];
    snprintf(line, sizeof(line), "%s (%s)", msg, key);
    int record = idx == 0 && r->kind != RCMD_AGG;
    char *last = s->reject_msg[record ? 0 : 1];
    if (strcmp(last, line) != 0) {
        rs_copy_cut(last, sizeof(s->reject_msg[0]), line);
        rs_say(s, "%s refused %s: %s; %s", s->ep.shown,
            record ? "a record" : r->kind == RCMD_AGG ? "an aggregate update" : "a live PUBLISH",
            line, record ? "such records are dropped (counted as rejected)" : "not retried");
    }
    rs_set_error(s, line);
}

/* A record with nothing out any more: gone if all its commands are
 * answered, else it waits to be sent again. */
static void record_settled(struct sink_redis *s, struct rrec *r)
{
    int clean = !r->again;
    s->inflight--;
    if (r->done == rs_full_mask(r->ncmd))
        rs_mem_remove(s, r);
    if (s->probing && clean && !s->stalled)
        s->probing = 0; /* the probe went through: pipeline again */
    if (s->inflight == 0)
        rs_resume(s); /* what came back unanswered goes again, oldest first */
    rs_send_some(s);
}

static void cb_record(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct sink_redis *s = ac->data;
    struct rrec *r = privdata;
    redisReply *rep = reply;
    if (!r->out)
        return; /* cannot happen */
    unsigned idx = (unsigned)__builtin_ctzll(r->out);
    uint64_t bit = 1ull << idx;
    r->out &= ~bit;
    if (!rep) {
        r->again = 1; /* connection gone: send again on the next one */
    } else {
        s->progress_us = egr_mono_us();
        if (rep->type == REDIS_REPLY_ERROR) {
            if (rs_transient(rep->str)) {
                r->again = 1;
            } else {
                r->done |= bit;
                if (idx == 0 && r->kind != RCMD_AGG) {
                    s->st.dropped++;
                    s->st.rejected++;
                } else {
                    s->agg_refused++;
                }
            }
            on_refused(s, rep, r, idx);
        } else {
            r->done |= bit;
            if (idx == 0 && r->kind != RCMD_AGG) {
                s->st.sent++;
                if (s->refusal[0]) {
                    rs_say(s, "%s accepts writes again", s->ep.shown);
                    s->refusal[0] = '\0';
                    s->nrefusal_seen = 0;
                }
                s->retry_ms = BACKOFF_MIN_MS;
            }
        }
    }
    if (!r->out)
        record_settled(s, r);
}

static void cb_plain(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct sink_redis *s = ac->data;
    redisReply *rep = reply;
    if (s->inflight_plain)
        s->inflight_plain--;
    if (rep) {
        s->progress_us = egr_mono_us();
        if (rep->type == REDIS_REPLY_ERROR) {
            char msg[160];
            rs_show(msg, sizeof(msg), rep->str, rep->len);
            rs_set_error(s, msg);
        }
    }
}

void rs_send_heartbeat(struct sink_redis *s)
{
    if (!rs_usable(s))
        return;
    pthread_mutex_lock(&s->mx);
    uint64_t packets = s->hb_packets, bytes = s->hb_bytes, drops = s->hb_drops,
             active = s->hb_active;
    pthread_mutex_unlock(&s->mx);
    struct redis_heartbeat hb = {
        .version = EGRESSD_VERSION,
        .source = s->source,
        .start_us = s->start_us,
        .now_us = egr_wall_us(),
        .packets = packets,
        .bytes = bytes,
        .drops = drops,
        .active_flows = active,
        .queue_depth = rs_waiting(s),
        .sent = s->st.sent,
        .queued = s->st.queued,
        .spooled = s->st.spooled,
        .dropped = s->st.dropped,
        .undelivered = s->st.undelivered,
        .reconnects = s->st.reconnects,
        .last_error = s->last_error,
        .ttl = s->cfg.heartbeat_ttl,
    };
    redis_schema_heartbeat(&s->schema, &hb, &s->hb_rb);
    struct rcmd_iter it;
    const char *argv[RCMD_MAX_ARGS];
    size_t lens[RCMD_MAX_ARGS];
    unsigned argc;
    if (!rcmd_ok(&s->hb_rb) ||
        rcmd_iter_init(&it, s->hb_rb.buf, s->hb_rb.len, NULL, NULL) != EGR_OK)
        return;
    if (s->inflight == 0 && s->inflight_plain == 0)
        s->progress_us = egr_mono_us();
    while (rcmd_next(&it, argv, lens, &argc) == 1) {
        if (rs_send_command(s, cb_plain, NULL, argc, argv, lens) != REDIS_OK)
            return;
        s->inflight_plain++;
    }
}

/* ---- timers -------------------------------------------------------------- */

void rs_on_flush(evutil_socket_t fd, short what, void *arg)
{
    rs_send_some(arg);
}

void rs_on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
    rs_resume(arg);
}

void rs_on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    rs_send_heartbeat(arg);
}

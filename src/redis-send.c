/* redis-send.c - the Redis sink's pipeline: queued records out in order,
 * each command to the node of its key's slot, replies matched to their
 * commands, MOVED and ASK followed, transient refusals waited out with a
 * probe, permanent ones counted, writes confirmed by WAIT before a record
 * is forgotten; and the heartbeat.
 *
 * Replies on one connection come in command order, so each node keeps a
 * ring of what it awaits (struct pend): the reply at hand answers the
 * ring's head. With WAIT on (a master with replicas, redis.wait_replicas),
 * a command Redis acknowledged moves to the node's second ring and stays
 * unforgotten until a WAIT sent after it reports enough replicas; since a
 * WAIT covers every write before it on its connection, one WAIT per batch
 * confirms the whole batch. A connection lost with commands acknowledged
 * but unconfirmed sends them again (their records are counted as resent:
 * the entry may then be in the stream twice, which is the at-least-once
 * promise); nothing acknowledged by a master that dies before its replica
 * had it is lost.
 *
 * Order: records leave the queue in order and stop at the first one whose
 * node is not connected, so a stream's entries are written in the order
 * they were made. Whatever comes back unwritten (lost connection, MOVED,
 * ASK, a transient refusal) is resent from the oldest record once nothing
 * is in flight any more ("rewind").
 *
 * Threads: the sink's I/O thread only.
 */
#include "redis-int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void retry_later(struct sink_redis *s);

unsigned rs_wait_want(const struct rnode *n)
{
    const struct sink_redis *s = n->s;
    if (n->wait_refused || s->cfg.wait_replicas == 0)
        return 0;
    if (s->cfg.wait_replicas == REDIS_WAIT_AUTO)
        return n->replicas > 0 ? 1 : 0;
    return (unsigned)s->cfg.wait_replicas;
}

/* The node of a key: the single server, or the slot's master. */
static struct rnode *route(struct sink_redis *s, const char *key, size_t klen, unsigned *slot)
{
    *slot = 0;
    if (s->mode != MODE_CLUSTER)
        return s->nodes[0];
    *slot = redis_cluster_key_slot(key, klen);
    uint8_t i = s->route[*slot];
    return i ? s->nodes[i - 1] : s->nodes[0];
}

static int is_publish(const char *c, size_t n)
{
    return n == 7 && !strncasecmp(c, "PUBLISH", 7);
}

/* Sends the commands of r not yet answered, each to its node. 1 when sent,
 * 0 when a node is not connected (nothing sent; the node is asked for),
 * -1 if hiredis refused (the connection is going away). */
static int send_record(struct sink_redis *s, struct rrec *r)
{
    struct rcmd_iter it;
    const char *argv[RCMD_MAX_ARGS];
    size_t lens[RCMD_MAX_ARGS];
    unsigned argc;
    struct rnode *to[RCMD_MAX_CMDS];
    uint8_t ask[RCMD_MAX_CMDS];
    /* Every node first, so a record is sent whole or not at all. One
     * server takes every command (channels too), so one look does. */
    if (s->mode != MODE_CLUSTER) {
        if (r->done != rs_full_mask(r->ncmd) && !rs_node_usable(s->nodes[0])) {
            rs_node_want(s->nodes[0]);
            return 0;
        }
        for (unsigned i = 0; i < r->ncmd; i++) {
            to[i] = s->nodes[0];
            ask[i] = 0;
        }
    } else {
        struct rnode *prev = NULL;
        rcmd_iter_again(&it, r->data, r->len); /* checked by rs_rrec_new() */
        for (unsigned i = 0; rcmd_next(&it, argv, lens, &argc) == 1; i++) {
            unsigned slot = 0;
            struct rnode *n;
            ask[i] = 0;
            /* A channel is no key: a cluster carries a message to every
             * node, so it goes with the record's stream entry. */
            if (prev && is_publish(argv[0], lens[0]))
                n = prev;
            else
                n = route(s, argc > 1 ? argv[1] : "", argc > 1 ? lens[1] : 0, &slot);
            if (r->ask_node && slot == r->ask_slot) {
                n = s->nodes[r->ask_node - 1];
                ask[i] = 1;
            }
            prev = n;
            to[i] = n;
            if (r->done & (1ull << i))
                continue;
            if (!rs_node_usable(n)) {
                rs_node_want(n);
                return 0;
            }
        }
    }
    rcmd_iter_again(&it, r->data, r->len);
    r->again = 0;
    r->ask_node = 0;
    for (unsigned i = 0; rcmd_next(&it, argv, lens, &argc) == 1; i++) {
        uint64_t bit = 1ull << i;
        if (r->done & bit)
            continue;
        struct rnode *n = to[i];
        if (ask[i] && rs_send_command(n, (struct pend){.kind = P_ASKING}, 1,
                                      (const char *[]){"ASKING"}, (size_t[]){6}) != REDIS_OK)
            return -1;
        unsigned want = rs_wait_want(n);
        struct pend p = {.r = r, .kind = P_CMD, .idx = (uint8_t)i, .confirm = want > 0};
        if (rs_send_command(n, p, argc, argv, lens) != REDIS_OK)
            return -1;
        r->out |= bit;
        if (want)
            n->since_wait++;
        if (i == 0 && (r->flags & RF_UNCERTAIN)) {
            r->flags &= (uint8_t)~RF_UNCERTAIN;
            if (r->kind != RCMD_AGG)
                s->st.resent++;
        }
    }
    return 1;
}

/* One WAIT on every node that took writes to confirm since its last,
 * unless one is out: a client blocked in WAIT holds back everything sent
 * behind it, so the writes of the meantime wait for its answer and one
 * WAIT then covers them all (a WAIT per round trip, not per send). */
static void send_waits(struct sink_redis *s)
{
    char tmo[16];
    int tl = -1; /* formatted when a WAIT goes: this runs after every send */
    for (unsigned i = 0; i < s->nnodes; i++) {
        struct rnode *n = s->nodes[i];
        if (!n->since_wait || n->waits_out || !rs_node_usable(n))
            continue;
        if (tl < 0)
            tl = snprintf(tmo, sizeof(tmo), "%u", s->cfg.wait_timeout_ms);
        unsigned want = rs_wait_want(n);
        char nr[16];
        int nl = snprintf(nr, sizeof(nr), "%u", want ? want : 1);
        const char *argv[] = {"WAIT", nr, tmo};
        size_t lens[] = {4, (size_t)nl, (size_t)tl};
        struct pend p = {.kind = P_WAIT, .confirm = (uint8_t)(want ? want : 1)};
        if (rs_send_command(n, p, 3, argv, lens) == REDIS_OK) {
            n->waits_out++;
            n->since_wait = 0;
        }
    }
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
    if (s->closing || s->stalled)
        return;
    if (s->rewind) {
        if (s->inflight > 0)
            return; /* what is out settles first, so the order holds */
        s->rewind = 0;
        s->cursor = s->head;
        s->n_unsent = s->mem_count;
    }
    while (s->cursor && s->inflight < s->max_inflight) {
        if (s->probing && s->inflight > 0)
            break; /* one record at a time until the refusal is over */
        struct rrec *r = s->cursor;
        int rc = send_record(s, r);
        if (r->out) {
            s->cursor = r->next;
            s->n_unsent--;
            s->inflight++;
        }
        if (rc <= 0)
            break;
    }
    send_waits(s);
    if (s->n_unsent > 0)
        rs_arm_flush(s);
}

/* After a transient refusal or a reconnection: start again from the oldest
 * record once nothing is in flight (so the queue order holds). */
void rs_resume(struct sink_redis *s)
{
    if (s->closing || evtimer_pending(s->ev_retry, NULL))
        return;
    if (s->stalled) {
        if (s->inflight > 0)
            return;
        s->stalled = 0;
        s->probing = 1;
    }
    s->rewind = 1;
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

/* A transient refusal: sending stops and one record probes after a
 * backoff. Each refusal is said once per episode. */
static void wait_out(struct sink_redis *s, const struct rnode *n, const char *msg)
{
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
        rs_say(s, "%s refuses writes: %s (records kept, retrying)", n->shown, msg);
    }
    rs_set_error(s, msg);
}

static void on_refused(struct sink_redis *s, struct rnode *n, const struct redisReply *rep,
                       const struct rrec *r, unsigned idx)
{
    char msg[160], key[400];
    rs_show(msg, sizeof(msg), rep->str, rep->len);
    command_key(r, idx, key, sizeof(key));
    if (rs_transient(rep->str)) {
        wait_out(s, n, msg);
        if (!strncmp(rep->str, "CLUSTERDOWN", 11) || !strncmp(rep->str, "TRYAGAIN", 8))
            rs_want_refresh(s); /* a failover or a resharding is on */
        if (!strncmp(rep->str, "NOAUTH", 6) || !strncmp(rep->str, "READONLY", 8)) {
            /* The server changed under us (restarted with a password, made
             * a replica): a fresh connection authenticates again, and a
             * cluster may have a new master for these slots. */
            if (n->ac)
                redisAsyncDisconnect(n->ac);
            rs_want_refresh(s);
        }
        return;
    }
    char line[600];
    snprintf(line, sizeof(line), "%s (%s)", msg, key);
    int record = idx == 0 && r->kind != RCMD_AGG;
    char *last = s->reject_msg[record ? 0 : 1];
    if (strcmp(last, line) != 0) {
        rs_copy_cut(last, sizeof(s->reject_msg[0]), line);
        rs_say(s, "%s refused %s: %s; %s", n->shown,
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

/* Command idx of r is written for good (acknowledged, and confirmed when
 * WAIT is on). */
static void confirmed(struct sink_redis *s, struct rrec *r, unsigned idx)
{
    uint64_t bit = 1ull << idx;
    r->done |= bit;
    r->out &= ~bit;
    s->redirects = 0;
    if (idx == 0 && r->kind != RCMD_AGG) {
        s->st.sent++;
        if (r->flags & RF_ACKED0) {
            r->flags &= (uint8_t)~RF_ACKED0;
            s->unconfirmed--;
        }
        if (s->refusal[0]) {
            rs_say(s, "%s accepts writes again", s->nodes[0]->shown);
            s->refusal[0] = '\0';
            s->nrefusal_seen = 0;
        }
        s->retry_ms = BACKOFF_MIN_MS;
    }
    if (!r->out)
        record_settled(s, r);
}

/* Command idx of r came back unwritten (or maybe written: `uncertain`). */
static void unwritten(struct sink_redis *s, struct rrec *r, unsigned idx, int uncertain)
{
    r->out &= ~(1ull << idx);
    r->again = 1;
    s->rewind = 1;
    if (idx == 0 && uncertain)
        r->flags |= RF_UNCERTAIN;
    if (idx == 0 && (r->flags & RF_ACKED0)) {
        r->flags &= (uint8_t)~RF_ACKED0;
        s->unconfirmed--;
    }
    if (!r->out)
        record_settled(s, r);
}

static void confirm_all(struct rnode *n)
{
    while (n->uc.len) {
        struct pend p = rs_pring_pop(&n->uc);
        confirmed(n->s, p.r, p.idx);
    }
}

void rs_node_lost(struct rnode *n)
{
    struct sink_redis *s = n->s;
    n->waits_out = 0;
    n->since_wait = 0;
    /* Replies hiredis did not answer with NULL (none expected). */
    while (n->q.len) {
        struct pend p = rs_pring_pop(&n->q);
        if (p.kind == P_CMD)
            unwritten(s, p.r, p.idx, 1);
        else if (p.kind == P_SLOTS)
            s->refresh_out = 0;
    }
    /* Acknowledged but not confirmed: the master may have died before its
     * replica had them. */
    while (n->uc.len) {
        struct pend p = rs_pring_pop(&n->uc);
        unwritten(s, p.r, p.idx, 1);
    }
}

static void on_redirect(struct sink_redis *s, struct rnode *n, struct rrec *r, unsigned idx,
                        const struct redis_redirect *rd)
{
    if (rd->kind == REDIS_REDIRECT_MOVED) {
        rs_moved(s, n, rd->slot, rd->host, rd->port);
    } else {
        /* ASK: this command, once, to the node importing the slot. */
        struct rnode *t = rs_node_get(s, rd->host[0] ? rd->host : n->host, rd->port, 0);
        if (t) {
            r->ask_node = (uint8_t)(t->idx + 1);
            r->ask_slot = (uint16_t)rd->slot;
            rs_node_want(t);
        }
        if (s->mode != MODE_CLUSTER)
            rs_moved(s, n, REDIS_CLUSTER_SLOTS, "", 0); /* a cluster after all */
    }
    if (++s->redirects > REDIRECTS_MAX) {
        /* A map that does not settle (a cluster being reconfigured, a
         * redirection loop): back off instead of spinning. */
        char msg[120];
        snprintf(msg, sizeof(msg), "%u redirections without a write", s->redirects);
        s->redirects = 0;
        wait_out(s, n, msg);
    }
}

static void on_cmd_reply(struct sink_redis *s, struct rnode *n, struct pend p,
                         const redisReply *rep)
{
    struct rrec *r = p.r;
    unsigned idx = p.idx;
    uint64_t bit = 1ull << idx;
    if (!(r->out & bit))
        return; /* cannot happen */
    if (!rep) {
        unwritten(s, r, idx, 1); /* connection gone: maybe written, send again */
        return;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        struct redis_redirect rd;
        if (redis_cluster_parse_redirect(rep->str, rep->len, &rd) == EGR_OK) {
            on_redirect(s, n, r, idx, &rd);
            unwritten(s, r, idx, 0);
            return;
        }
        if (rs_transient(rep->str)) {
            on_refused(s, n, rep, r, idx);
            unwritten(s, r, idx, 0);
            return;
        }
        r->done |= bit;
        r->out &= ~bit;
        if (idx == 0 && r->kind != RCMD_AGG) {
            s->st.dropped++;
            s->st.rejected++;
        } else {
            s->agg_refused++;
        }
        on_refused(s, n, rep, r, idx);
        if (!r->out)
            record_settled(s, r);
        return;
    }
    if (p.confirm) {
        /* Written on the master; kept until a WAIT says a replica has it. */
        if (rs_pring_push(&n->uc, p) == 0) {
            if (idx == 0 && r->kind != RCMD_AGG && !(r->flags & RF_ACKED0)) {
                r->flags |= RF_ACKED0;
                s->unconfirmed++;
            }
            return;
        }
        /* Out of memory for the ring: count it written. */
    }
    confirmed(s, r, idx);
}

static void on_wait_reply(struct sink_redis *s, struct rnode *n, struct pend p,
                          const redisReply *rep)
{
    if (n->waits_out)
        n->waits_out--;
    if (!rep)
        return; /* the connection is gone: rs_node_lost() resends */
    if (rep->type == REDIS_REPLY_ERROR) {
        /* An ACL without WAIT, a server that has none: acknowledgement is
         * all there is. Said once. */
        if (!n->wait_refused) {
            char msg[200];
            rs_show(msg, sizeof(msg), rep->str, rep->len);
            rs_say(s, "%s refuses WAIT: %s (records count as written once acknowledged)",
                n->shown, msg);
            n->wait_refused = 1;
        }
        confirm_all(n);
        send_waits(s);
        return;
    }
    if (rep->type == REDIS_REPLY_INTEGER && rep->integer >= p.confirm) {
        if (n->wait_short) {
            rs_say(s, "%s: replicas confirm writes again", n->shown);
            n->wait_short = 0;
        }
        s->wait_retry_ms = BACKOFF_MIN_MS;
        confirm_all(n);
        send_waits(s); /* for what was sent while it was out */
        return;
    }
    /* Fewer replicas than asked within the timeout: the writes stay
     * unconfirmed (and the records kept). Ask how many replicas there are
     * now, and WAIT again later. */
    if (!n->wait_short && n->uc.len) {
        n->wait_short = 1;
        rs_say(s, "%s: %lld of %u replicas confirmed writes within %u ms (records kept until "
            "confirmed)", n->shown, rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0,
            p.confirm, s->cfg.wait_timeout_ms);
    }
    if (s->mode == MODE_CLUSTER)
        rs_want_refresh(s);
    else
        rs_ask_replicas(n);
    if (!evtimer_pending(s->ev_wait, NULL)) {
        struct timeval tv = {s->wait_retry_ms / 1000, (s->wait_retry_ms % 1000) * 1000};
        evtimer_add(s->ev_wait, &tv);
        s->wait_retry_ms = s->wait_retry_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                                 : s->wait_retry_ms * 2;
    }
}

/* After a short WAIT: WAIT again for what is unconfirmed, or, when the
 * master has no replica any more (auto), take it as written. */
void rs_on_wait_timer(evutil_socket_t fd, short what, void *arg)
{
    struct sink_redis *s = arg;
    for (unsigned i = 0; i < s->nnodes; i++) {
        struct rnode *n = s->nodes[i];
        if (!n->uc.len || n->waits_out || !rs_node_usable(n))
            continue;
        if (rs_wait_want(n) == 0)
            confirm_all(n);
        else
            n->since_wait++; /* send_waits() asks again */
    }
    send_waits(s);
}

static void on_plain(struct sink_redis *s, const redisReply *rep)
{
    if (s->inflight_plain)
        s->inflight_plain--;
    if (rep && rep->type == REDIS_REPLY_ERROR) {
        char msg[160];
        rs_show(msg, sizeof(msg), rep->str, rep->len);
        rs_set_error(s, msg);
    }
}

void rs_on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct rnode *n = privdata;
    struct sink_redis *s = n->s;
    const redisReply *rep = reply;
    if (!n->q.len)
        return; /* cannot happen */
    struct pend p = rs_pring_pop(&n->q);
    if (rep)
        n->progress_us = egr_mono_us();
    switch (p.kind) {
    case P_CMD:
        on_cmd_reply(s, n, p, rep);
        return;
    case P_ASKING:
        return; /* the command after it says how it went */
    case P_WAIT:
        on_wait_reply(s, n, p, rep);
        return;
    case P_PLAIN:
        on_plain(s, rep);
        return;
    default:
        rs_on_control(n, p, rep);
        return;
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
        .resent = s->st.resent,
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
    /* Best effort: a command whose node is down is left out (the next
     * heartbeat comes soon). */
    while (rcmd_next(&it, argv, lens, &argc) == 1) {
        unsigned slot;
        struct rnode *n = route(s, argc > 1 ? argv[1] : "", argc > 1 ? lens[1] : 0, &slot);
        if (!rs_node_usable(n)) {
            rs_node_want(n);
            continue;
        }
        if (rs_send_command(n, (struct pend){.kind = P_PLAIN}, argc, argv, lens) == REDIS_OK)
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

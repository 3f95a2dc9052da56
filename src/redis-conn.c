/* redis-conn.c - the Redis sink's connections: one hiredis async context
 * per node (the single server, or each master of a cluster) on the I/O
 * thread's event base; AUTH/SELECT before anything else; reconnection with
 * a doubling backoff; the watchdog for a node that stops answering; the
 * cluster's slot map (CLUSTER SLOTS, refreshed after MOVED, CLUSTERDOWN or
 * a lost master); and reply objects that allocate only when a reply's
 * content matters.
 *
 * Modes: at open, rs_probe() asks the URL's server (then the seeds) with a
 * blocking CLUSTER SLOTS whether it is a cluster, so the key layout is
 * settled before the first record is formatted. A server that does not
 * answer leaves the mode unknown; the first connection asks again and a
 * MOVED reply settles it too. In a cluster every node is a struct rnode;
 * commands pick theirs by key slot (redis-send.c), and a slot the map does
 * not know goes to the first node, whose MOVED then corrects the map.
 *
 * Threads: the sink's I/O thread only, except rs_probe() (at open, before
 * the thread starts).
 */
#include "redis-int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- awaited replies ------------------------------------------------------ */

int rs_pring_push(struct pring *q, struct pend p)
{
    if (q->len == q->cap) {
        uint32_t cap = q->cap ? q->cap * 2 : 256;
        struct pend *nv = malloc(sizeof(*nv) * cap);
        if (!nv)
            return -1;
        for (uint32_t i = 0; i < q->len; i++)
            nv[i] = q->v[(q->head + i) % q->cap];
        free(q->v);
        q->v = nv;
        q->head = 0;
        q->cap = cap;
    }
    q->v[(q->head + q->len) % q->cap] = p;
    q->len++;
    return 0;
}

struct pend rs_pring_pop(struct pring *q)
{
    struct pend p = {0};
    if (!q->len)
        return p;
    p = q->v[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
    return p;
}

/* "<c><decimal>\r\n" at p; returns the end. */
static char *resp_len(char *p, char c, size_t v)
{
    char t[24];
    int n = 0;
    *p = c;
    if (v < 100) { /* most arguments: field names, numbers, short strings */
        if (v >= 10)
            *++p = (char)('0' + v / 10);
        p[1] = (char)('0' + v % 10);
        p[2] = '\r';
        p[3] = '\n';
        return p + 4;
    }
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    p++;
    while (n)
        *p++ = t[--n];
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* Queues one command, formatted here: hiredis' own argv formatting
 * (sdscatfmt per argument) cost more than everything else the sink does.
 * Every argument is a length-prefixed bulk string, whatever its bytes. */
int rs_send_command(struct rnode *n, struct pend p, unsigned argc, const char **argv,
                    const size_t *lens)
{
    struct sink_redis *s = n->s;
    size_t need = 32;
    for (unsigned a = 0; a < argc; a++)
        need += lens[a] + 32;
    if (need > s->resp_cap) {
        char *nb = realloc(s->resp, need);
        if (!nb)
            return REDIS_ERR;
        s->resp = nb;
        s->resp_cap = need;
    }
    char *o = resp_len(s->resp, '*', argc);
    for (unsigned a = 0; a < argc; a++) {
        o = resp_len(o, '$', lens[a]);
        memcpy(o, argv[a], lens[a]);
        o += lens[a];
        *o++ = '\r';
        *o++ = '\n';
    }
    if (!n->ac || rs_pring_push(&n->q, p) != 0)
        return REDIS_ERR;
    if (n->q.len == 1)
        n->progress_us = egr_mono_us(); /* the silence clock starts now */
    if (redisAsyncFormattedCommand(n->ac, rs_on_reply, n, s->resp, (size_t)(o - s->resp)) !=
        REDIS_OK) {
        n->q.len--; /* never sent: no reply comes */
        return REDIS_ERR;
    }
    return REDIS_OK;
}

int rs_node_usable(const struct rnode *n)
{
    return n && n->ac && n->state == ST_READY &&
           !(n->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING));
}

int rs_usable(const struct sink_redis *s)
{
    if (s->closing)
        return 0;
    for (unsigned i = 0; i < s->nnodes; i++)
        if (rs_node_usable(s->nodes[i]))
            return 1;
    return 0;
}

/* Errors after which the same command may succeed later. */
int rs_transient(const char *e)
{
    static const char *const prefixes[] = {
        "OOM", "LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "NOAUTH", "NOPERM",
        "READONLY", "CLUSTERDOWN", "NOREPLICAS", "MISCONF",
    };
    for (size_t i = 0; i < EGR_ARRAY_LEN(prefixes); i++) {
        size_t n = strlen(prefixes[i]);
        if (!strncmp(e, prefixes[i], n) && (e[n] == ' ' || e[n] == '\0'))
            return 1;
    }
    return 0;
}

/* ---- replies -------------------------------------------------------------- */

/* The write path only asks whether a reply is an error, and which.
 * hiredis' default reply objects cost a malloc and a free for every
 * answer (tens of thousands a second); here every reply but an error is
 * one shared, immutable object, and only errors are allocated. The few
 * replies whose content matters (CLUSTER SLOTS, INFO, WAIT) are built
 * whole: the reader knows its node (task->privdata), and the node knows
 * what the reply being read answers (the head of its ring, since replies
 * come in order and callbacks run one reply at a time). Whole replies are
 * laid out as hiredis' own, so freeReplyObject() frees them. */
static redisReply ok_reply = {.type = REDIS_REPLY_STATUS};

static int wants_whole(const redisReadTask *task)
{
    const struct rnode *n = task->privdata;
    if (!n || !n->q.len)
        return 0;
    unsigned k = n->q.v[n->q.head].kind;
    return k == P_SLOTS || k == P_INFO || k == P_WAIT;
}

static void *attach(const redisReadTask *task, redisReply *r)
{
    if (task->parent) {
        redisReply *parent = task->parent->obj;
        if (parent && parent != &ok_reply && parent->type == REDIS_REPLY_ARRAY &&
            (size_t)task->idx < parent->elements)
            parent->element[task->idx] = r;
    }
    return r;
}

static void *light_string(const redisReadTask *task, char *str, size_t len)
{
    if (task->type != REDIS_REPLY_ERROR && !wants_whole(task))
        return &ok_reply;
    redisReply *r = calloc(1, sizeof(*r));
    char *copy = malloc(len + 1);
    if (!r || !copy) {
        free(r);
        free(copy);
        return NULL; /* hiredis reports out of memory */
    }
    memcpy(copy, str, len);
    copy[len] = '\0';
    r->type = task->type;
    r->str = copy;
    r->len = len;
    return attach(task, r);
}

static void *light_array(const redisReadTask *task, int elements)
{
    if (!wants_whole(task))
        return &ok_reply;
    redisReply *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->type = REDIS_REPLY_ARRAY;
    if (elements > 0) {
        r->element = calloc((size_t)elements, sizeof(*r->element));
        if (!r->element) {
            free(r);
            return NULL;
        }
    }
    r->elements = elements > 0 ? (size_t)elements : 0;
    return attach(task, r);
}

static void *light_integer(const redisReadTask *task, long long value)
{
    if (!wants_whole(task))
        return &ok_reply;
    redisReply *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->type = REDIS_REPLY_INTEGER;
    r->integer = value;
    return attach(task, r);
}

static void *light_nil(const redisReadTask *task)
{
    if (!wants_whole(task))
        return &ok_reply;
    redisReply *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->type = REDIS_REPLY_NIL;
    return attach(task, r);
}

static void light_free(void *obj)
{
    if (!obj || obj == &ok_reply)
        return;
    redisReply *r = obj;
    if (r->type == REDIS_REPLY_ARRAY) {
        /* Elements may be the shared object (an array read in light mode
         * never holds allocated ones, but be safe). */
        for (size_t i = 0; i < r->elements; i++)
            if (r->element[i] != &ok_reply)
                light_free(r->element[i]);
        free(r->element);
        free(r);
        return;
    }
    free(r->str);
    free(r);
}

static redisReplyObjectFunctions light_replies = {
    light_string, light_array, light_integer, light_nil, light_free,
};

/* ---- nodes ------------------------------------------------------------------ */

struct rnode *rs_node_get(struct sink_redis *s, const char *host, int port, int is_unix)
{
    for (unsigned i = 0; i < s->nnodes; i++) {
        struct rnode *n = s->nodes[i];
        if (n->port == port && n->is_unix == is_unix && !strcmp(n->host, host))
            return n;
    }
    if (s->nnodes >= NODE_MAX)
        return NULL;
    struct rnode *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->ev_reconnect = evtimer_new(s->base, rs_on_reconnect_timer, n);
    if (!n->ev_reconnect) {
        free(n);
        return NULL;
    }
    n->s = s;
    n->idx = s->nnodes;
    snprintf(n->host, sizeof(n->host), "%s", host);
    n->port = port;
    n->is_unix = is_unix;
    n->backoff_ms = BACKOFF_MIN_MS;
    if (s->nnodes == 0) {
        /* The URL's server speaks as the URL (its db, no password). */
        snprintf(n->shown, sizeof(n->shown), "%s", s->ep.shown);
    } else {
        char h[REDIS_CLUSTER_HOST_MAX * 4 + 8];
        rs_show(h, sizeof(h), host, strlen(host));
        snprintf(n->shown, sizeof(n->shown), strchr(host, ':') ? "redis://[%s]:%d" : "redis://%s:%d",
                 h, port);
    }
    s->nodes[s->nnodes++] = n;
    return n;
}

void rs_nodes_free(struct sink_redis *s)
{
    for (unsigned i = 0; i < s->nnodes; i++) {
        struct rnode *n = s->nodes[i];
        if (n->ac) {
            redisAsyncContext *ac = n->ac;
            n->ac = NULL;
            redisAsyncFree(ac); /* answers what is in flight with NULL */
        }
        if (n->ev_reconnect)
            event_free(n->ev_reconnect);
        free(n->q.v);
        free(n->uc.v);
        free(n);
    }
    s->nnodes = 0;
}

/* A node worth a connection: the single server, a master of the map, or a
 * seed while the map must be fetched. */
static int node_needed(const struct rnode *n)
{
    const struct sink_redis *s = n->s;
    if (s->mode != MODE_CLUSTER)
        return n->idx == 0;
    return n->in_map || n->wanted || (n->seed && s->refresh_wanted) ||
           (n->idx == 0 && s->masters == 0);
}

static void schedule_reconnect(struct rnode *n)
{
    if (n->s->closing || evtimer_pending(n->ev_reconnect, NULL))
        return;
    struct timeval tv = {n->backoff_ms / 1000, (n->backoff_ms % 1000) * 1000};
    evtimer_add(n->ev_reconnect, &tv);
    n->backoff_ms = n->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : n->backoff_ms * 2;
}

/* Never connects from here: a command that wants a node may be routed
 * from inside hiredis' callbacks of another (or of this one going down),
 * so the attempt is made from the timer, at once or after the backoff. */
void rs_node_want(struct rnode *n)
{
    n->wanted = 1;
    if (!n->ac && !n->s->closing && !evtimer_pending(n->ev_reconnect, NULL)) {
        struct timeval now = {0, 0};
        evtimer_add(n->ev_reconnect, &now);
    }
}

/* The connection is gone (or never came): note it once, try again later. */
static void went_down(struct rnode *n, const char *why)
{
    struct sink_redis *s = n->s;
    int was = n->state;
    n->state = ST_DOWN;
    n->ac = NULL;
    n->hs_pending = 0;
    n->failures++;
    if (s->mode == MODE_CLUSTER && !n->in_map)
        n->wanted = 0; /* only records routed to it again bring it back */
    /* The backoff first: what follows may route commands to this node. */
    if (node_needed(n))
        schedule_reconnect(n);
    if (!n->hs_failed)
        rs_set_error(s, why); /* else the refusal stays the error to report */
    /* A cluster node that is no master of the map is let go quietly: its
     * slots are elsewhere now (or will be once the map is refreshed). */
    int quiet = s->mode == MODE_CLUSTER && !n->in_map && !(n->seed && s->masters == 0);
    if (!n->down_logged && !quiet) {
        n->down_logged = 1;
        n->down_since_us = egr_mono_us();
        if (was == ST_READY || was == ST_HANDSHAKE)
            rs_say(s, "connection to %s lost: %s (%" PRIu64 " records waiting; reconnecting)",
                n->shown, why, rs_waiting(s));
        else
            rs_say(s, "cannot connect to %s: %s (retrying, backoff up to %u s)", n->shown, why,
                BACKOFF_MAX_MS / 1000);
    }
    if (s->mode == MODE_CLUSTER)
        rs_want_refresh(s); /* a master that is gone may have been replaced */
    rs_node_lost(n);
    rs_send_some(s);
}

static void send_refresh(struct sink_redis *s);

static void on_ready(struct rnode *n)
{
    struct sink_redis *s = n->s;
    n->state = ST_READY;
    n->backoff_ms = BACKOFF_MIN_MS;
    n->hs_failed = 0;
    n->failures = 0;
    n->progress_us = egr_mono_us();
    if (n->connections++ > 0)
        s->st.reconnects++;
    s->connections++;
    if (s->connections == 1 && !n->down_logged) {
        char id[KEY_SHOW_MAX * 4 + 8], more[128] = "";
        rs_show(id, sizeof(id), s->sensor, strlen(s->sensor));
        if (s->mode == MODE_CLUSTER)
            snprintf(more, sizeof(more), " (a cluster of %u masters; %s layout%s)", s->masters,
                     s->schema.per_sensor ? "per-sensor" : "shared",
                     s->layout_guessed ? ", as it did not answer at start" : "");
        rs_say(s, "connected to %s as sensor \"%s\"%s", n->shown, id, more);
    } else if (n->down_logged) {
        rs_say(s, "connected to %s after %.1f s (%" PRIu64 " records waiting)", n->shown,
            (double)(egr_mono_us() - n->down_since_us) / 1e6, rs_waiting(s));
    }
    n->down_logged = 0;
    s->stalled = 0;
    s->probing = s->refusal[0] != '\0';
    evtimer_del(s->ev_retry);
    if (s->refresh_wanted && s->mode == MODE_CLUSTER)
        send_refresh(s);
    rs_send_heartbeat(s);
    rs_resume(s);
}

/* Handshake replies (AUTH, SELECT, and the questions asked before the
 * first record: is it a cluster, has it replicas). */
static void handshake_step(struct rnode *n)
{
    if (n->hs_pending && --n->hs_pending == 0 && n->state == ST_HANDSHAKE)
        on_ready(n);
}

static void handshake_refused(struct rnode *n, const char *what, const redisReply *rep)
{
    struct sink_redis *s = n->s;
    char msg[200], line[300];
    rs_show(msg, sizeof(msg), rep->str, rep->len);
    snprintf(line, sizeof(line), "%s failed: %s", what, msg);
    if (!n->hs_failed || strcmp(s->last_error, line) != 0)
        rs_say(s, "%s: %s (records kept, retrying)", n->shown, line);
    n->hs_failed = 1;
    n->down_logged = 1;
    if (!n->down_since_us)
        n->down_since_us = egr_mono_us();
    rs_set_error(s, line);
    redisAsyncDisconnect(n->ac);
}

/* ---- the slot map --------------------------------------------------------------- */

/* Installs s->map (just parsed): nodes for its masters, the route of every
 * slot. Records in flight stay where they went; they settle there or come
 * back and go the new way. */
static void install_map(struct sink_redis *s)
{
    const struct redis_slot_map *m = s->map;
    int mapped[REDIS_CLUSTER_NODES_MAX];
    unsigned masters = 0;
    char added[300] = "", gone[300] = "";
    size_t na = 0, ng = 0;
    for (unsigned i = 0; i < m->nnodes; i++) {
        struct rnode *n = rs_node_get(s, m->node[i].host, m->node[i].port, 0);
        mapped[i] = n ? (int)n->idx : -1;
        if (!n)
            continue;
        if (!n->in_map && s->masters && na < sizeof(added) - 1)
            na += (size_t)snprintf(added + na, sizeof(added) - na, "%s%s:%d", na ? ", " : "",
                                   n->host, n->port);
        n->replicas = m->node[i].replicas;
        masters++;
    }
    for (unsigned i = 0; i < s->nnodes; i++) {
        struct rnode *n = s->nodes[i];
        int now = 0;
        for (unsigned k = 0; k < m->nnodes; k++)
            now |= mapped[k] == (int)n->idx;
        if (n->in_map && !now && ng < sizeof(gone) - 1)
            ng += (size_t)snprintf(gone + ng, sizeof(gone) - ng, "%s%s:%d", ng ? ", " : "",
                                   n->host, n->port);
        n->in_map = now;
    }
    for (unsigned slot = 0; slot < REDIS_CLUSTER_SLOTS; slot++) {
        int i = redis_cluster_map_lookup(m, slot);
        s->route[slot] = i >= 0 && mapped[i] >= 0 ? (uint8_t)(mapped[i] + 1) : 0;
    }
    if (na || ng)
        rs_say(s, "cluster map changed: %u masters%s%s%s%s", masters, na ? "; new: " : "", added,
            ng ? "; gone: " : "", gone);
    s->masters = masters;
    s->refresh_wanted = 0;
    /* A master still unreachable: ask again soon, the failover may be on. */
    for (unsigned i = 0; i < s->nnodes; i++) {
        struct rnode *n = s->nodes[i];
        if (n->in_map && n->state != ST_READY && n->failures > 0)
            s->refresh_wanted = 1;
        if (n->in_map)
            rs_node_want(n);
    }
    if (s->refresh_wanted)
        rs_want_refresh(s);
}

static void set_cluster(struct sink_redis *s)
{
    if (s->mode == MODE_CLUSTER)
        return;
    s->mode = MODE_CLUSTER;
    memset(s->route, 0, sizeof(s->route));
    s->nodes[0]->seed = 1;
}

/* A CLUSTER SLOTS reply on n. */
static void on_slots(struct rnode *n, const redisReply *rep, int handshake)
{
    struct sink_redis *s = n->s;
    s->refresh_out = 0;
    if (!rep)
        return;
    if (n->hs_failed)
        return; /* after a refused AUTH: says nothing about the server */
    if (rep->type == REDIS_REPLY_ERROR) {
        if (!strncmp(rep->str, "NOAUTH", 6))
            return; /* the handshake failed; the next connection asks again */
        if (s->mode == MODE_UNKNOWN) {
            /* "cluster support disabled", or a user without the command:
             * one server, as before clusters existed. */
            s->mode = MODE_SINGLE;
        } else if (s->mode == MODE_CLUSTER && !s->slots_refused) {
            char msg[200];
            rs_show(msg, sizeof(msg), rep->str, rep->len);
            rs_say(s, "%s refuses CLUSTER SLOTS: %s (following MOVED replies instead)", n->shown,
                msg);
            s->slots_refused = 1;
        }
        s->refresh_wanted = 0;
        return;
    }
    struct egr_err err = {""};
    if (redis_cluster_map_parse(rep, n->host, s->map, &err) != EGR_OK) {
        rs_say(s, "%s: %s (keeping the map)", n->shown, err.msg);
        s->refresh_wanted = 0;
        return;
    }
    if (s->mode != MODE_CLUSTER) {
        set_cluster(s);
        if (!handshake || s->layout_guessed)
            rs_say(s, "%s is a cluster: records go to each key's master (%s layout)", n->shown,
                s->schema.per_sensor ? "per-sensor" : "shared");
    }
    install_map(s);
}

static void send_refresh(struct sink_redis *s)
{
    if (s->refresh_out || s->slots_refused || s->closing)
        return;
    uint64_t now = egr_mono_us();
    unsigned gap = s->masters && s->refresh_us ? REFRESH_MIN_MS : 0;
    if (now - s->refresh_us < (uint64_t)gap * 1000u) {
        if (!evtimer_pending(s->ev_refresh, NULL)) {
            uint64_t left = (uint64_t)gap * 1000u - (now - s->refresh_us);
            struct timeval tv = {(time_t)(left / 1000000u), (suseconds_t)(left % 1000000u)};
            evtimer_add(s->ev_refresh, &tv);
        }
        return;
    }
    /* Any connected node knows the map; the first found will do. */
    for (unsigned i = 0; i < s->nnodes; i++) {
        struct rnode *n = s->nodes[i];
        if (!rs_node_usable(n))
            continue;
        const char *argv[] = {"CLUSTER", "SLOTS"};
        size_t lens[] = {7, 5};
        if (rs_send_command(n, (struct pend){.kind = P_SLOTS}, 2, argv, lens) == REDIS_OK) {
            s->refresh_out = 1;
            s->refresh_us = now;
            return;
        }
    }
    /* None connected: reach the masters known and the seeds; the first to
     * come up is asked. */
    for (unsigned i = 0; i < s->nnodes; i++) {
        struct rnode *n = s->nodes[i];
        if (n->in_map || n->seed)
            rs_node_want(n);
    }
    if (!evtimer_pending(s->ev_refresh, NULL)) {
        struct timeval tv = {0, REFRESH_DOWN_MS * 1000};
        evtimer_add(s->ev_refresh, &tv);
    }
}

void rs_want_refresh(struct sink_redis *s)
{
    if (s->mode != MODE_CLUSTER || s->slots_refused)
        return;
    s->refresh_wanted = 1;
    /* While a master is down the answer will not change for a moment:
     * pace the questions. */
    int down = 0;
    for (unsigned i = 0; i < s->nnodes; i++)
        down |= s->nodes[i]->in_map && s->nodes[i]->state != ST_READY &&
                s->nodes[i]->failures > 0;
    if (down) {
        if (!evtimer_pending(s->ev_refresh, NULL)) {
            struct timeval tv = {0, REFRESH_DOWN_MS * 1000};
            evtimer_add(s->ev_refresh, &tv);
        }
        return;
    }
    send_refresh(s);
}

void rs_on_refresh_timer(evutil_socket_t fd, short what, void *arg)
{
    struct sink_redis *s = arg;
    if (s->refresh_wanted)
        send_refresh(s);
}

void rs_moved(struct sink_redis *s, struct rnode *from, unsigned slot, const char *host, int port)
{
    if (s->mode != MODE_CLUSTER) {
        set_cluster(s);
        rs_say(s, "%s answers with redirections: it is a cluster; following them (%s layout)",
            from->shown, s->schema.per_sensor ? "per-sensor" : "shared");
    }
    if (slot < REDIS_CLUSTER_SLOTS) {
        struct rnode *n = rs_node_get(s, host[0] ? host : from->host, port, 0);
        if (n) {
            s->route[slot] = (uint8_t)(n->idx + 1);
            rs_node_want(n);
        }
    }
    rs_want_refresh(s);
}

/* INFO replication: "connected_slaves:N". */
static void on_info(struct rnode *n, const redisReply *rep)
{
    if (!rep || rep->type != REDIS_REPLY_STRING)
        return; /* refused (an ACL without INFO): no replica known, no WAIT */
    const char *p = strstr(rep->str, "connected_slaves:");
    n->replicas = p ? (unsigned)strtoul(p + 17, NULL, 10) : 0;
}

/* Replies to the handshake and the map/replica questions (rs_on_reply
 * sends them here). */
void rs_on_control(struct rnode *n, struct pend p, const redisReply *rep)
{
    struct sink_redis *s = n->s;
    if (!rep) {
        if (p.kind == P_SLOTS)
            s->refresh_out = 0;
        return; /* the connection is going; its disconnect says so */
    }
    n->progress_us = egr_mono_us();
    switch (p.kind) {
    case P_AUTH:
    case P_SELECT:
        if (rep->type == REDIS_REPLY_ERROR) {
            handshake_refused(n, p.kind == P_AUTH ? "AUTH" : "SELECT", rep);
            return;
        }
        handshake_step(n);
        return;
    case P_SLOTS:
        on_slots(n, rep, p.confirm);
        if (p.confirm)
            handshake_step(n);
        return;
    case P_INFO:
        on_info(n, rep);
        if (p.confirm)
            handshake_step(n);
        return;
    default:
        return;
    }
}

static void ask_info(struct rnode *n, int handshake)
{
    const char *argv[] = {"INFO", "replication"};
    size_t lens[] = {4, 11};
    if (rs_send_command(n, (struct pend){.kind = P_INFO, .confirm = (uint8_t)handshake}, 2, argv,
                        lens) == REDIS_OK && handshake)
        n->hs_pending++;
}

void rs_ask_replicas(struct rnode *n)
{
    if (rs_node_usable(n) && n->s->mode == MODE_SINGLE)
        ask_info(n, 0);
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct rnode *n = ac->data;
    struct sink_redis *s = n->s;
    if (n->ac != ac)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback */
        went_down(n, ac->errstr[0] ? ac->errstr : "connection failed");
        return;
    }
    n->progress_us = egr_mono_us();
    n->state = ST_HANDSHAKE;
    n->hs_pending = 0;
    const char *user = s->cfg.username[0] ? s->cfg.username : s->ep.user;
    const char *pass = s->cfg.password[0] ? s->cfg.password : s->ep.pass;
    if (pass[0]) {
        const char *argv[3] = {"AUTH", user, pass};
        size_t lens[3] = {4, strlen(user), strlen(pass)};
        int rc = user[0] ? rs_send_command(n, (struct pend){.kind = P_AUTH}, 3, argv, lens)
                         : rs_send_command(n, (struct pend){.kind = P_AUTH}, 2,
                                           (const char *[]){"AUTH", pass}, (size_t[]){4, lens[2]});
        if (rc == REDIS_OK)
            n->hs_pending++;
    }
    /* A cluster has database 0 only (SELECT is refused there). */
    if (s->ep.db && s->mode != MODE_CLUSTER) {
        char db[16];
        int len = snprintf(db, sizeof(db), "%u", s->ep.db);
        if (rs_send_command(n, (struct pend){.kind = P_SELECT}, 2, (const char *[]){"SELECT", db},
                            (size_t[]){6, (size_t)len}) == REDIS_OK)
            n->hs_pending++;
    }
    if (s->mode == MODE_UNKNOWN && n->idx == 0) {
        /* Not known at open: ask before the first record. An error (no
         * cluster support, no permission) means one server. */
        if (rs_send_command(n, (struct pend){.kind = P_SLOTS, .confirm = 1}, 2,
                            (const char *[]){"CLUSTER", "SLOTS"}, (size_t[]){7, 5}) == REDIS_OK) {
            n->hs_pending++;
            s->refresh_out = 1;
        }
    }
    if (s->cfg.wait_replicas == REDIS_WAIT_AUTO && s->mode != MODE_CLUSTER && n->idx == 0)
        ask_info(n, 1); /* a cluster's map says it; one server is asked */
    if (n->hs_pending == 0)
        on_ready(n);
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct rnode *n = ac->data;
    if (n->ac != ac || n->s->closing)
        return; /* freed on purpose (watchdog, close) */
    went_down(n, ac->errstr[0] ? ac->errstr : status == REDIS_OK ? "closed" : "connection lost");
}

void rs_connect_now(struct rnode *n)
{
    struct sink_redis *s = n->s;
    if (n->ac || s->closing)
        return;
    redisAsyncContext *ac = n->is_unix ? redisAsyncConnectUnix(n->host)
                                       : redisAsyncConnect(n->host, n->port);
    if (!ac) {
        went_down(n, "out of memory");
        return;
    }
    if (ac->err) {
        char why[200];
        snprintf(why, sizeof(why), "%s", ac->errstr);
        redisAsyncFree(ac);
        went_down(n, why);
        return;
    }
    ac->data = n;
    ac->c.reader->fn = &light_replies;
    ac->c.reader->privdata = n;
    if (redisLibeventAttach(ac, s->base) != REDIS_OK) {
        redisAsyncFree(ac);
        went_down(n, "cannot attach to the event loop");
        return;
    }
    n->ac = ac;
    n->state = ST_CONNECTING;
    n->progress_us = egr_mono_us();
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
}

/* Drops a connection from outside hiredis' callbacks. */
void rs_drop_connection(struct rnode *n, const char *why)
{
    redisAsyncContext *ac = n->ac;
    if (!ac)
        return;
    n->ac = NULL; /* on_disconnect sees a stranger and stays quiet */
    n->state = ST_DOWN;
    if (node_needed(n))
        schedule_reconnect(n); /* before the callbacks below can ask for it */
    redisAsyncFree(ac);
    went_down(n, why);
}

void rs_on_reconnect_timer(evutil_socket_t fd, short what, void *arg)
{
    struct rnode *n = arg;
    if (node_needed(n))
        rs_connect_now(n);
}

void rs_on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    struct sink_redis *s = arg;
    rs_spool_tick(s);
    for (unsigned i = 0; i < s->nnodes; i++) {
        struct rnode *n = s->nodes[i];
        if (!n->ac)
            continue;
        int busy = n->state != ST_READY || n->q.len > 0;
        uint64_t idle = egr_mono_us() - n->progress_us;
        /* A WAIT may hold its answer back for its whole timeout. */
        uint64_t limit = (uint64_t)s->cfg.timeout * 1000000u +
                         (n->waits_out ? (uint64_t)s->cfg.wait_timeout_ms * 1000u : 0);
        if (busy && idle > limit) {
            char why[120];
            snprintf(why, sizeof(why), "no answer for %u s", s->cfg.timeout);
            if (!n->down_logged)
                rs_say(s, "%s: %s, reconnecting (%" PRIu64 " records waiting)", n->shown, why,
                    rs_waiting(s));
            n->down_logged = 1;
            n->down_since_us = egr_mono_us();
            rs_drop_connection(n, why);
        }
    }
}

/* ---- the probe at open ----------------------------------------------------------- */

/* One blocking CLUSTER SLOTS on host:port. 1 = a cluster (map in s->map),
 * 0 = one server, -1 = no answer. */
static int probe_one(struct sink_redis *s, const char *host, int port)
{
    struct timeval tv = {PROBE_TIMEOUT_MS / 1000, (PROBE_TIMEOUT_MS % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return -1;
    }
    redisSetTimeout(c, tv);
    int result = -1;
    const char *user = s->cfg.username[0] ? s->cfg.username : s->ep.user;
    const char *pass = s->cfg.password[0] ? s->cfg.password : s->ep.pass;
    redisReply *r = NULL;
    if (pass[0]) {
        r = user[0] ? redisCommandArgv(c, 3, (const char *[]){"AUTH", user, pass},
                                       (size_t[]){4, strlen(user), strlen(pass)})
                    : redisCommandArgv(c, 2, (const char *[]){"AUTH", pass},
                                       (size_t[]){4, strlen(pass)});
        if (!r || r->type == REDIS_REPLY_ERROR)
            goto out; /* the connection will say why, and keep trying */
        freeReplyObject(r);
    }
    r = redisCommandArgv(c, 2, (const char *[]){"CLUSTER", "SLOTS"}, (size_t[]){7, 5});
    if (!r)
        goto out;
    if (r->type == REDIS_REPLY_ERROR) {
        /* Refused for lack of permission says nothing either way. */
        result = strncmp(r->str, "NOPERM", 6) && strncmp(r->str, "NOAUTH", 6) ? 0 : -1;
    } else {
        struct egr_err e = {""};
        result = redis_cluster_map_parse(r, host, s->map, &e) == EGR_OK ? 1 : -1;
    }
out:
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return result;
}

int rs_probe(struct sink_redis *s, struct egr_err *err)
{
    s->mode = MODE_UNKNOWN;
    if (s->ep.is_unix) {
        s->mode = MODE_SINGLE; /* clients of a cluster reach it over TCP */
        return EGR_OK;
    }
    int found = probe_one(s, s->ep.host, s->ep.port);
    for (unsigned i = 0; found < 0 && i < s->cfg.seeds.n; i++) {
        char host[REDIS_CLUSTER_HOST_MAX];
        int port;
        if (redis_cluster_endpoint(s->cfg.seeds.v[i], strlen(s->cfg.seeds.v[i]), host, &port) ==
            EGR_OK)
            found = probe_one(s, host, port);
    }
    if (found == 0) {
        s->mode = MODE_SINGLE;
    } else if (found == 1) {
        if (s->ep.db)
            return egr_fail(err, EGR_EINVAL,
                            "redis.url: %s is a cluster, which has database 0 only (drop /%u)",
                            s->ep.shown, s->ep.db);
        s->mode = MODE_CLUSTER;
    }
    return EGR_OK;
}

/* After the nodes exist: the probe's map becomes the routes. */
void rs_install_probed(struct sink_redis *s)
{
    if (s->mode != MODE_CLUSTER)
        return;
    s->nodes[0]->seed = 1;
    install_map(s);
}

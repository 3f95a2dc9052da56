/* dash-redis.c - the dashboard's two Redis connections (see dashboard.h).
 *
 * The query connection carries batches: the commands of one HTTP request,
 * pipelined, their replies copied out of hiredis and handed over together.
 * Replies on one connection come in command order, so a batch needs only a
 * counter to know which reply is which. The tail connection does nothing
 * but XREAD BLOCK on {prefix}:alerts, so new alerts reach the SSE clients
 * without polling and without holding up queries.
 *
 * Both reconnect with a backoff doubling from 100 ms to 5 s; a connection
 * counts as up once AUTH/SELECT (if any) and a PING have been answered.
 * While the query connection is down, batches fail at once, which the HTTP
 * side turns into 503.
 */
#include "dashboard.h"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define TAIL_BLOCK_MS "10000"
#define BATCH_MAX_ARGS 80

enum conn_kind { CONN_QUERY, CONN_TAIL };

struct conn {
    struct dash_redis *r;
    enum conn_kind kind;
    redisAsyncContext *ac;
    int up;
    int backoff_ms;
    struct event *retry;
};

struct dash_redis {
    struct event_base *base;
    struct redis_endpoint ep;
    char prefix[256];
    char alerts_key[300];
    char last_id[64]; /* tail position: "$" until the first entry */
    dash_redis_notify_fn notify;
    void *ctx;
    int stopping;
    struct conn q, t;
};

struct dash_batch {
    struct dash_redis *r;
    dash_batch_fn fn;
    void *ctx;
    struct dash_val *replies;
    size_t n, cap, got;
    int failed;
    int running; /* dash_batch_run() called */
};

/* ---- reply copies ---------------------------------------------------------- */

static void val_clear(struct dash_val *v)
{
    for (size_t i = 0; i < v->n; i++)
        val_clear(&v->el[i]);
    free(v->el);
    free(v->str);
    memset(v, 0, sizeof(*v));
}

/* Returns 0 on allocation failure (v then holds what was copied). */
static int val_copy(struct dash_val *v, const redisReply *rep)
{
    memset(v, 0, sizeof(*v));
    v->type = rep->type;
    v->integer = rep->integer;
    if (rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS ||
        rep->type == REDIS_REPLY_ERROR) {
        v->str = malloc(rep->len + 1);
        if (!v->str)
            return 0;
        memcpy(v->str, rep->str, rep->len);
        v->str[rep->len] = '\0';
        v->len = rep->len;
    } else if (rep->type == REDIS_REPLY_ARRAY && rep->elements) {
        v->el = calloc(rep->elements, sizeof(*v->el));
        if (!v->el)
            return 0;
        v->n = rep->elements;
        for (size_t i = 0; i < rep->elements; i++)
            if (!val_copy(&v->el[i], rep->element[i]))
                return 0;
    }
    return 1;
}

/* ---- connections ------------------------------------------------------------ */

static void conn_start(struct conn *c);
static void tail_next(struct dash_redis *r);

static void set_up(struct conn *c, int up)
{
    if (c->up == up)
        return;
    c->up = up;
    if (c->kind == CONN_QUERY && c->r->notify && !c->r->stopping)
        c->r->notify(c->r->ctx, NULL, up);
}

static void schedule_retry(struct conn *c)
{
    if (c->r->stopping)
        return;
    struct timeval tv = {c->backoff_ms / 1000, (c->backoff_ms % 1000) * 1000};
    evtimer_add(c->retry, &tv);
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    conn_start(arg);
}

static void cb_handshake(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct conn *c = ac->data;
    redisReply *rep = reply;
    if (!c || !rep)
        return;
    if (rep->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "egressd-dashboard: redis: %s refused: %s\n", c->r->ep.shown, rep->str);
        redisAsyncDisconnect(ac);
        return;
    }
    if (privdata) { /* the PING: everything before it went through */
        c->backoff_ms = BACKOFF_MIN_MS;
        if (c->kind == CONN_QUERY)
            fprintf(stderr, "egressd-dashboard: redis: connected to %s\n", c->r->ep.shown);
        set_up(c, 1);
        if (c->kind == CONN_TAIL)
            tail_next(c->r);
    }
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct conn *c = ac->data;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback. */
        c->ac = NULL;
        schedule_retry(c);
        return;
    }
    const struct redis_endpoint *ep = &c->r->ep;
    if (ep->pass[0]) {
        if (ep->user[0])
            redisAsyncCommandArgv(ac, cb_handshake, NULL, 3,
                                  (const char *[]){"AUTH", ep->user, ep->pass},
                                  (size_t[]){4, strlen(ep->user), strlen(ep->pass)});
        else
            redisAsyncCommandArgv(ac, cb_handshake, NULL, 2, (const char *[]){"AUTH", ep->pass},
                                  (size_t[]){4, strlen(ep->pass)});
    }
    if (ep->db) {
        char db[16];
        int n = snprintf(db, sizeof(db), "%u", ep->db);
        redisAsyncCommandArgv(ac, cb_handshake, NULL, 2, (const char *[]){"SELECT", db},
                              (size_t[]){6, (size_t)n});
    }
    redisAsyncCommandArgv(ac, cb_handshake, (void *)"PING", 1, (const char *[]){"PING"},
                          (size_t[]){4});
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    struct conn *c = cac->data;
    if (!c)
        return;
    c->ac = NULL; /* hiredis frees it */
    if (c->up && c->kind == CONN_QUERY && !c->r->stopping)
        fprintf(stderr, "egressd-dashboard: redis: connection to %s lost (reconnecting)\n",
                c->r->ep.shown);
    set_up(c, 0);
    schedule_retry(c);
}

static void conn_start(struct conn *c)
{
    const struct redis_endpoint *ep = &c->r->ep;
    redisAsyncContext *ac = ep->is_unix ? redisAsyncConnectUnix(ep->host)
                                        : redisAsyncConnect(ep->host, ep->port);
    if (!ac || ac->err) {
        if (ac)
            redisAsyncFree(ac);
        schedule_retry(c);
        return;
    }
    if (redisLibeventAttach(ac, c->r->base) != REDIS_OK) {
        redisAsyncFree(ac);
        schedule_retry(c);
        return;
    }
    ac->data = c;
    c->ac = ac;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
}

/* ---- the alert tail ------------------------------------------------------- */

static void cb_tail(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct conn *c = ac->data;
    redisReply *rep = reply;
    if (!c || !rep || c->r->stopping)
        return;
    struct dash_redis *r = c->r;
    /* [[key, [[id, [f, v, ...]], ...]]], or nil when BLOCK timed out */
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
        rep->element[0]->type == REDIS_REPLY_ARRAY && rep->element[0]->elements == 2) {
        const redisReply *entries = rep->element[0]->element[1];
        for (size_t i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++) {
            const redisReply *e = entries->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
                e->element[0]->type != REDIS_REPLY_STRING)
                continue;
            if (e->element[0]->len < sizeof(r->last_id)) {
                memcpy(r->last_id, e->element[0]->str, e->element[0]->len);
                r->last_id[e->element[0]->len] = '\0';
            }
            struct dash_val v;
            if (val_copy(&v, e) && r->notify)
                r->notify(r->ctx, &v, 1);
            val_clear(&v);
        }
    } else if (rep->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "egressd-dashboard: redis: XREAD %s: %s\n", r->alerts_key, rep->str);
        redisAsyncDisconnect(ac);
        return;
    }
    tail_next(r);
}

static void tail_next(struct dash_redis *r)
{
    if (!r->t.ac || !r->t.up)
        return;
    const char *argv[] = {"XREAD", "BLOCK", TAIL_BLOCK_MS, "STREAMS", r->alerts_key, r->last_id};
    size_t lens[6];
    for (int i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    redisAsyncCommandArgv(r->t.ac, cb_tail, NULL, 6, argv, lens);
}

/* ---- the service ------------------------------------------------------------ */

struct dash_redis *dash_redis_new(struct event_base *base, const struct redis_endpoint *ep,
                                  const char *prefix, dash_redis_notify_fn fn, void *ctx)
{
    struct dash_redis *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->base = base;
    r->ep = *ep;
    snprintf(r->prefix, sizeof(r->prefix), "%s", prefix);
    snprintf(r->alerts_key, sizeof(r->alerts_key), "%s:alerts", prefix);
    strcpy(r->last_id, "$");
    r->notify = fn;
    r->ctx = ctx;
    struct conn *cs[2] = {&r->q, &r->t};
    for (int i = 0; i < 2; i++) {
        cs[i]->r = r;
        cs[i]->kind = i ? CONN_TAIL : CONN_QUERY;
        cs[i]->backoff_ms = BACKOFF_MIN_MS;
        cs[i]->retry = evtimer_new(base, on_retry, cs[i]);
        if (!cs[i]->retry) {
            dash_redis_free(r);
            return NULL;
        }
    }
    conn_start(&r->q);
    conn_start(&r->t);
    return r;
}

void dash_redis_free(struct dash_redis *r)
{
    if (!r)
        return;
    r->stopping = 1;
    struct conn *cs[2] = {&r->q, &r->t};
    for (int i = 0; i < 2; i++) {
        if (cs[i]->ac) {
            redisAsyncContext *ac = cs[i]->ac;
            cs[i]->ac = NULL;
            ac->data = NULL;
            redisAsyncFree(ac); /* answers pending commands with NULL */
        }
        if (cs[i]->retry)
            event_free(cs[i]->retry);
    }
    free(r);
}

int dash_redis_up(const struct dash_redis *r)
{
    return r->q.up && r->q.ac;
}

const char *dash_redis_prefix(const struct dash_redis *r)
{
    return r->prefix;
}

/* ---- batches ---------------------------------------------------------------- */

struct dash_batch *dash_batch_new(struct dash_redis *r, dash_batch_fn fn, void *ctx)
{
    struct dash_batch *b = calloc(1, sizeof(*b));
    if (!b) {
        fn(ctx, NULL, 0, 0);
        return NULL;
    }
    b->r = r;
    b->fn = fn;
    b->ctx = ctx;
    return b;
}

static void batch_finish(struct dash_batch *b)
{
    b->fn(b->ctx, b->replies, b->n, !b->failed);
    for (size_t i = 0; i < b->n; i++)
        val_clear(&b->replies[i]);
    free(b->replies);
    free(b);
}

static void cb_batch(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct dash_batch *b = privdata;
    redisReply *rep = reply;
    size_t i = b->got++;
    if (!rep || !val_copy(&b->replies[i], rep))
        b->failed = 1;
    if (b->got == b->n && b->running)
        batch_finish(b);
}

void dash_batch_cmd(struct dash_batch *b, int argc, const char **argv, const size_t *lens)
{
    if (!b || b->failed)
        return;
    if (!dash_redis_up(b->r)) {
        b->failed = 1;
        return;
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        struct dash_val *nv = realloc(b->replies, cap * sizeof(*nv));
        if (!nv) {
            b->failed = 1;
            return;
        }
        memset(nv + b->cap, 0, (cap - b->cap) * sizeof(*nv));
        b->replies = nv;
        b->cap = cap;
    }
    if (redisAsyncCommandArgv(b->r->q.ac, cb_batch, b, argc, argv, lens) != REDIS_OK) {
        b->failed = 1;
        return;
    }
    b->n++;
}

void dash_batch_cmdv(struct dash_batch *b, const char *arg0, ...)
{
    const char *argv[BATCH_MAX_ARGS];
    size_t lens[BATCH_MAX_ARGS];
    int argc = 0;
    va_list ap;
    va_start(ap, arg0);
    for (const char *a = arg0; a && argc < BATCH_MAX_ARGS; a = va_arg(ap, const char *)) {
        argv[argc] = a;
        lens[argc++] = strlen(a);
    }
    va_end(ap);
    dash_batch_cmd(b, argc, argv, lens);
}

void dash_batch_run(struct dash_batch *b)
{
    if (!b)
        return;
    b->running = 1;
    /* Commands already sent are answered later (with NULL if the connection
     * drops); only a batch with nothing outstanding finishes now. */
    if (b->got == b->n)
        batch_finish(b);
}

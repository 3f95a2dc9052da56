/* dash-redis.c - the dashboard's Redis side (see dashboard.h): the
 * connections, batches of commands with their replies, the alert tail, and
 * the translation that lets dash-http.c speak one layout whatever the
 * sensors wrote.
 *
 * Connections. The first server is the URL's. When it answers CLUSTER
 * SLOTS with a map it is a cluster node: every master gets a connection
 * and each command goes to the master of its key's slot (MOVED and ASK are
 * followed, and the map refreshed, as the sensor does; see
 * include/egressd/redis-cluster.h). Otherwise (one server, or a user
 * without CLUSTER) everything goes to it. Connections reconnect with a
 * backoff doubling from 100 ms to 5 s; the dashboard counts as up once the
 * first server has answered AUTH/SELECT (if any), the cluster question and
 * a PING, and, with per-sensor keys, the sensor set.
 *
 * Layouts (docs/redis-schema.md). dash-http.c asks for the shared keys
 * ({prefix}:alerts, {prefix}:agg:{bucket}:bytes:asset, ...). When the
 * sensors write the per-sensor layout ({prefix}:{id}:alerts, ...: auto on a
 * cluster), each such command is sent once per sensor of {prefix}:sensors
 * (refreshed every few seconds), with its keys rewritten, and the replies
 * are merged into the one reply the shared key would have given: stream
 * entries by ID, newest first, up to COUNT (alerts; flow entries: COUNT of
 * each sensor); hashes and sorted-set scores
 * summed; PFCOUNT summed (an asset seen by two sensors counts a destination
 * each saw once per sensor); the newest bucket the largest. The heartbeat
 * {prefix}:sensor:{id} becomes {prefix}:{id}:sensor, the sensor set stays.
 *
 * Batches: the commands of one HTTP request are sent at once; replies are
 * copied out of hiredis and handed over together, in command order, once
 * every part of every command has come back.
 *
 * The alert tail: on one server with the shared layout a connection of its
 * own does nothing but XREAD BLOCK on {prefix}:alerts, so new alerts reach
 * the SSE clients without polling. Otherwise (a cluster keeps each sensor's
 * stream on its own slot, and one XREAD may only name keys of one slot)
 * every sensor's alert stream is read from its last ID every TAIL_POLL_MS,
 * starting from the dashboard's start.
 */
#include "dashboard.h"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "egressd/redis-cluster.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define TAIL_BLOCK_MS "10000"
#define TAIL_POLL_MS 500
#define TAIL_COUNT "200"
#define SENSORS_REFRESH_MS 1000
#define SENSORS_MAX 1024
#define BATCH_MAX_ARGS 80
#define NODES_MAX 72
#define REDIRECTS_MAX 5 /* per command, then its error is the reply */

enum conn_kind { CONN_QUERY, CONN_TAIL };

/* The blocking tail's connection (one server, shared layout). */
struct conn {
    struct dash_redis *r;
    enum conn_kind kind;
    redisAsyncContext *ac;
    int up;
    int backoff_ms;
    struct event *retry;
};

/* A server commands go to: node 0 is the URL's (its connection is the
 * query connection), others are a cluster's masters. */
struct node {
    struct dash_redis *r;
    unsigned idx;
    char host[REDIS_CLUSTER_HOST_MAX];
    int port;
    int is_unix;
    redisAsyncContext *ac;
    int up; /* node 0: handshake done; others: connected */
    int backoff_ms;
    struct event *retry;
};

struct tail_pos {
    char *key;
    size_t klen;
    char last[48];
};

struct dash_redis {
    struct event_base *base;
    struct redis_endpoint ep;
    char prefix[256];
    size_t plen;
    char alerts_key[300];
    char last_id[64]; /* blocking tail position: "$" until the first entry */
    dash_redis_notify_fn notify;
    void *ctx;
    int stopping;
    int layout;       /* DASH_LAYOUT_* as asked */
    int per_sensor;   /* the sensors' keys are per sensor (decided once) */
    int cluster;      /* the URL's server is a cluster node */
    int discovered;   /* the mode is known */
    int up;           /* published state (dash_redis_up) */
    struct node *nodes[NODES_MAX];
    unsigned nnodes;
    uint8_t route[REDIS_CLUSTER_SLOTS]; /* node index + 1; 0 = node 0 */
    struct redis_slot_map *map;
    int refresh_out, refresh_wanted;
    struct event *refresh_timer;
    struct conn t;
    /* the sensor set, for the per-sensor layout */
    char **ids;
    size_t *idlens;
    size_t nids;
    int sensors_loaded, sensors_out;
    struct event *sensors_timer;
    /* the polling tail */
    struct tail_pos *tails;
    size_t ntails;
    char start_id[48];
    int poll_out;
    struct event *poll_timer;
};

/* How the parts of one command become its reply. */
enum merge { MG_ONE, MG_STREAM, MG_HASH_SUM, MG_ZSET_SUM, MG_ZSET_NUM, MG_INT_SUM };

struct part;

struct lcmd {
    enum merge merge;
    long limit;          /* entries/members kept; -1 = all */
    size_t nparts, done;
    struct dash_val *parts;
};

struct dash_batch {
    struct dash_redis *r;
    dash_batch_fn fn;
    void *ctx;
    struct dash_val *replies;
    struct lcmd *l;
    size_t n, cap, got;
    int failed;
    int running; /* dash_batch_run() called */
    int raw;     /* internal: no translation */
};

/* One command on the wire; kept (with a copy of its arguments) until its
 * reply, so a redirection can send it again. */
struct part {
    struct dash_batch *b;
    size_t li, pi;
    int argc;
    char **argv;
    size_t *lens;
    int redirects;
    int asking;
    int ask_node;
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

static int val_str(struct dash_val *v, int type, const char *s, size_t n)
{
    memset(v, 0, sizeof(*v));
    v->type = type;
    v->str = malloc(n + 1);
    if (!v->str)
        return 0;
    memcpy(v->str, s, n);
    v->str[n] = '\0';
    v->len = n;
    return 1;
}

/* ---- merging the parts of a per-sensor command --------------------------------- */

/* "ms-seq" of a stream ID, for ordering. */
static void id_parts(const struct dash_val *id, uint64_t *ms, uint64_t *seq)
{
    char *end;
    *ms = strtoull(id->str ? id->str : "0", &end, 10);
    *seq = *end == '-' ? strtoull(end + 1, NULL, 10) : 0;
}

static int entry_newer(const struct dash_val *a, const struct dash_val *b)
{
    uint64_t am, as, bm, bs;
    id_parts(&a->el[0], &am, &as);
    id_parts(&b->el[0], &bm, &bs);
    return am != bm ? am > bm : as > bs;
}

static int is_entry(const struct dash_val *e)
{
    return e->type == REDIS_REPLY_ARRAY && e->n == 2 && e->el[0].type == REDIS_REPLY_STRING;
}

static int cmp_entry_desc(const void *x, const void *y)
{
    const struct dash_val *a = *(const struct dash_val *const *)x;
    const struct dash_val *b = *(const struct dash_val *const *)y;
    return entry_newer(a, b) ? -1 : entry_newer(b, a) ? 1 : 0;
}

static int cmp_entry_asc(const void *x, const void *y)
{
    return -cmp_entry_desc(x, y);
}

/* Moves the entries of every part into out, newest first, at most limit. */
static int merge_stream(struct dash_val *parts, size_t n, long limit, struct dash_val *out)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (parts[i].type == REDIS_REPLY_ARRAY)
            total += parts[i].n;
    memset(out, 0, sizeof(*out));
    out->type = REDIS_REPLY_ARRAY;
    if (!total)
        return 1;
    struct dash_val **all = malloc(total * sizeof(*all));
    if (!all)
        return 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; parts[i].type == REDIS_REPLY_ARRAY && j < parts[i].n; j++)
            if (is_entry(&parts[i].el[j]))
                all[k++] = &parts[i].el[j];
    qsort(all, k, sizeof(*all), cmp_entry_desc);
    size_t keep = limit >= 0 && (size_t)limit < k ? (size_t)limit : k;
    out->el = calloc(keep ? keep : 1, sizeof(*out->el));
    if (!out->el) {
        free(all);
        return 0;
    }
    for (size_t i = 0; i < keep; i++) {
        out->el[i] = *all[i];
        memset(all[i], 0, sizeof(*all[i])); /* moved */
    }
    out->n = keep;
    free(all);
    return 1;
}

/* Members and sums: a small open-addressing table over the members. */
struct sums {
    const struct dash_val **name;
    double *v;
    uint32_t *slot; /* index + 1 */
    size_t n, cap, mask;
};

static uint64_t hash_str(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

static int sums_init(struct sums *t, size_t max)
{
    memset(t, 0, sizeof(*t));
    size_t slots = 16;
    while (slots < max * 2)
        slots <<= 1;
    t->cap = max ? max : 1;
    t->mask = slots - 1;
    t->name = malloc(t->cap * sizeof(*t->name));
    t->v = malloc(t->cap * sizeof(*t->v));
    t->slot = calloc(slots, sizeof(*t->slot));
    return t->name && t->v && t->slot;
}

static void sums_free(struct sums *t)
{
    free(t->name);
    free(t->v);
    free(t->slot);
}

static void sums_add(struct sums *t, const struct dash_val *name, double v, int max)
{
    size_t i = hash_str(name->str, name->len) & t->mask;
    for (;; i = (i + 1) & t->mask) {
        uint32_t k = t->slot[i];
        if (!k)
            break;
        const struct dash_val *m = t->name[k - 1];
        if (m->len == name->len && !memcmp(m->str, name->str, name->len)) {
            if (max)
                t->v[k - 1] = v > t->v[k - 1] ? v : t->v[k - 1];
            else
                t->v[k - 1] += v;
            return;
        }
    }
    if (t->n >= t->cap)
        return;
    t->name[t->n] = name;
    t->v[t->n] = v;
    t->slot[i] = (uint32_t)++t->n;
}

static int num_text(struct dash_val *v, double x, int integer)
{
    char t[64];
    int n = integer ? snprintf(t, sizeof(t), "%.0f", x) : snprintf(t, sizeof(t), "%.17g", x);
    return val_str(v, REDIS_REPLY_STRING, t, (size_t)n);
}

static const struct sums *sorting;

static int cmp_sum_desc(const void *x, const void *y)
{
    size_t a = *(const size_t *)x, b = *(const size_t *)y;
    double va = sorting->v[a], vb = sorting->v[b];
    return va < vb ? 1 : va > vb ? -1 : a < b ? -1 : a > b;
}

/* HGETALL: [f, v, ...] summed per field. ZREVRANGE ... WITHSCORES: [m, s,
 * ...] summed per member, best first. ZREVRANGE of numbers (the bucket
 * index): the largest first. */
static int merge_sums(struct dash_val *parts, size_t n, enum merge how, long limit,
                      struct dash_val *out)
{
    size_t total = 0;
    int pairs = how != MG_ZSET_NUM;
    for (size_t i = 0; i < n; i++)
        if (parts[i].type == REDIS_REPLY_ARRAY)
            total += pairs ? parts[i].n / 2 : parts[i].n;
    memset(out, 0, sizeof(*out));
    out->type = REDIS_REPLY_ARRAY;
    struct sums t;
    if (!sums_init(&t, total)) {
        sums_free(&t);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        const struct dash_val *p = &parts[i];
        if (p->type != REDIS_REPLY_ARRAY)
            continue;
        for (size_t j = 0; j + (pairs ? 1 : 0) < p->n; j += pairs ? 2 : 1) {
            if (p->el[j].type != REDIS_REPLY_STRING)
                continue;
            const struct dash_val *num = pairs ? &p->el[j + 1] : &p->el[j];
            double v = num->type == REDIS_REPLY_INTEGER ? (double)num->integer
                       : num->str ? strtod(num->str, NULL) : 0;
            sums_add(&t, &p->el[j], v, how == MG_ZSET_NUM);
        }
    }
    size_t *order = malloc((t.n ? t.n : 1) * sizeof(*order));
    if (!order) {
        sums_free(&t);
        return 0;
    }
    for (size_t i = 0; i < t.n; i++)
        order[i] = i;
    if (how != MG_HASH_SUM) {
        sorting = &t;
        qsort(order, t.n, sizeof(*order), cmp_sum_desc);
    }
    size_t keep = limit >= 0 && (size_t)limit < t.n ? (size_t)limit : t.n;
    out->el = calloc(keep ? keep * 2 : 1, sizeof(*out->el));
    int ok = out->el != NULL;
    for (size_t i = 0; ok && i < keep; i++) {
        const struct dash_val *m = t.name[order[i]];
        ok = val_str(&out->el[out->n], REDIS_REPLY_STRING, m->str, m->len);
        out->n++;
        if (ok && pairs) {
            ok = num_text(&out->el[out->n], t.v[order[i]], how == MG_HASH_SUM);
            out->n++;
        }
    }
    free(order);
    sums_free(&t);
    return ok;
}

static int merge_parts(struct lcmd *l, struct dash_val *out)
{
    /* An error of every part is the reply; otherwise errors are left out
     * (a sensor whose key is of another type spoils nothing else). */
    size_t errors = 0;
    for (size_t i = 0; i < l->nparts; i++)
        errors += l->parts[i].type == REDIS_REPLY_ERROR;
    if (l->nparts && errors == l->nparts) {
        *out = l->parts[0];
        memset(&l->parts[0], 0, sizeof(l->parts[0]));
        return 1;
    }
    switch (l->merge) {
    case MG_ONE:
        if (l->nparts) {
            *out = l->parts[0];
            memset(&l->parts[0], 0, sizeof(l->parts[0]));
        } else {
            memset(out, 0, sizeof(*out));
            out->type = REDIS_REPLY_ARRAY;
        }
        return 1;
    case MG_STREAM:
        return merge_stream(l->parts, l->nparts, l->limit, out);
    case MG_INT_SUM: {
        memset(out, 0, sizeof(*out));
        out->type = REDIS_REPLY_INTEGER;
        for (size_t i = 0; i < l->nparts; i++)
            if (l->parts[i].type == REDIS_REPLY_INTEGER)
                out->integer += l->parts[i].integer;
        return 1;
    }
    default:
        return merge_sums(l->parts, l->nparts, l->merge, l->limit, out);
    }
}

/* ---- nodes and routing ---------------------------------------------------------- */

static void node_start(struct node *n);
static void batch_cmd_raw(struct dash_batch *b, int argc, const char **argv, const size_t *lens);

static void on_node_retry(evutil_socket_t fd, short what, void *arg)
{
    node_start(arg);
}

static struct node *node_get(struct dash_redis *r, const char *host, int port, int is_unix)
{
    for (unsigned i = 0; i < r->nnodes; i++) {
        struct node *n = r->nodes[i];
        if (n->port == port && n->is_unix == is_unix && !strcmp(n->host, host))
            return n;
    }
    if (r->nnodes >= NODES_MAX)
        return NULL;
    struct node *n = calloc(1, sizeof(*n));
    if (!n || !(n->retry = evtimer_new(r->base, on_node_retry, n))) {
        free(n);
        return NULL;
    }
    n->r = r;
    n->idx = r->nnodes;
    snprintf(n->host, sizeof(n->host), "%s", host);
    n->port = port;
    n->is_unix = is_unix;
    n->backoff_ms = BACKOFF_MIN_MS;
    r->nodes[r->nnodes++] = n;
    return n;
}

static struct node *route(struct dash_redis *r, const char *key, size_t klen)
{
    if (!r->cluster || !key)
        return r->nodes[0];
    unsigned slot = redis_cluster_key_slot(key, klen);
    return r->route[slot] ? r->nodes[r->route[slot] - 1] : r->nodes[0];
}

/* Some server takes queries: the URL's, or on a cluster any master (the
 * URL's may be the one that failed). */
static int any_up(const struct dash_redis *r)
{
    if (!r->cluster)
        return r->nodes[0]->up;
    for (unsigned i = 0; i < r->nnodes; i++)
        if (r->nodes[i]->up && r->nodes[i]->ac)
            return 1;
    return 0;
}

static void publish_up(struct dash_redis *r)
{
    int up = any_up(r) && r->discovered && (!r->per_sensor || r->sensors_loaded);
    if (up == r->up)
        return;
    r->up = up;
    if (r->notify && !r->stopping)
        r->notify(r->ctx, NULL, up);
}

static void send_refresh(struct dash_redis *r);

static void on_refresh_timer(evutil_socket_t fd, short what, void *arg)
{
    send_refresh(arg);
}

static void want_refresh(struct dash_redis *r)
{
    if (!r->cluster || r->stopping)
        return;
    r->refresh_wanted = 1;
    if (!evtimer_pending(r->refresh_timer, NULL)) {
        struct timeval tv = {0, 200 * 1000};
        evtimer_add(r->refresh_timer, &tv);
    }
}

/* A CLUSTER SLOTS reply from node n: cluster mode, and the routes. */
static void take_map(struct dash_redis *r, struct node *n, const redisReply *rep)
{
    struct egr_err err = {""};
    if (redis_cluster_map_parse(rep, n->host, r->map, &err) != EGR_OK) {
        fprintf(stderr, "egressd-dashboard: redis: %s (keeping the map)\n", err.msg);
        return;
    }
    if (!r->cluster)
        fprintf(stderr, "egressd-dashboard: redis: %s is a cluster of %u masters\n", r->ep.shown,
                r->map->nnodes);
    r->cluster = 1;
    int idx[REDIS_CLUSTER_NODES_MAX];
    for (unsigned i = 0; i < r->map->nnodes; i++) {
        struct node *m = node_get(r, r->map->node[i].host, r->map->node[i].port, 0);
        idx[i] = m ? (int)m->idx : -1;
        if (m && !m->ac && !evtimer_pending(m->retry, NULL))
            node_start(m);
    }
    for (unsigned s = 0; s < REDIS_CLUSTER_SLOTS; s++) {
        int i = redis_cluster_map_lookup(r->map, s);
        r->route[s] = i >= 0 && idx[i] >= 0 ? (uint8_t)(idx[i] + 1) : 0;
    }
    r->refresh_wanted = 0;
}

static void cb_refresh(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct node *n = privdata;
    struct dash_redis *r = n->r;
    r->refresh_out = 0;
    if (reply && ((redisReply *)reply)->type == REDIS_REPLY_ARRAY && !r->stopping)
        take_map(r, n, reply);
}

static void send_refresh(struct dash_redis *r)
{
    if (!r->refresh_wanted || r->refresh_out || r->stopping)
        return;
    for (unsigned i = 0; i < r->nnodes; i++) {
        struct node *n = r->nodes[i];
        if (n->ac && n->up &&
            redisAsyncCommand(n->ac, cb_refresh, n, "CLUSTER SLOTS") == REDIS_OK) {
            r->refresh_out = 1;
            return;
        }
    }
    want_refresh(r); /* none up yet: later */
}

/* ---- the sensor set ----------------------------------------------------------------- */

static void tails_sync(struct dash_redis *r);
static size_t sensor_key(const struct dash_redis *r, size_t i, const char *key, size_t klen,
                         char *out, size_t cap);

static void cb_sensors(void *ctx, const struct dash_val *rep, size_t n, int ok)
{
    struct dash_redis *r = ctx;
    r->sensors_out = 0;
    if (!ok || n != 1 || rep[0].type != REDIS_REPLY_ARRAY || r->stopping)
        return;
    for (size_t i = 0; i < r->nids; i++)
        free(r->ids[i]);
    r->nids = 0;
    size_t want = rep[0].n < SENSORS_MAX ? rep[0].n : SENSORS_MAX;
    char **ids = realloc(r->ids, (want ? want : 1) * sizeof(*ids));
    size_t *lens = realloc(r->idlens, (want ? want : 1) * sizeof(*lens));
    if (ids)
        r->ids = ids;
    if (lens)
        r->idlens = lens;
    if (!ids || !lens)
        return;
    for (size_t i = 0; i < want; i++) {
        const struct dash_val *v = &rep[0].el[i];
        if (v->type != REDIS_REPLY_STRING || !(r->ids[r->nids] = malloc(v->len + 1)))
            continue;
        memcpy(r->ids[r->nids], v->str, v->len);
        r->ids[r->nids][v->len] = '\0';
        r->idlens[r->nids++] = v->len;
    }
    r->sensors_loaded = 1;
    tails_sync(r);
    publish_up(r);
}

static void load_sensors(struct dash_redis *r)
{
    if (r->sensors_out || !r->discovered || !any_up(r) || r->stopping)
        return;
    struct dash_batch *b = dash_batch_new(r, cb_sensors, r);
    if (!b)
        return;
    b->raw = 1;
    char key[300];
    int kl = snprintf(key, sizeof(key), "%s:sensors", r->prefix);
    batch_cmd_raw(b, 2, (const char *[]){"SMEMBERS", key}, (size_t[]){8, (size_t)kl});
    r->sensors_out = 1;
    dash_batch_run(b);
}

static void on_sensors_timer(evutil_socket_t fd, short what, void *arg)
{
    struct dash_redis *r = arg;
    if (r->per_sensor)
        load_sensors(r);
}

/* ---- node 0's handshake, and the blocking tail's ------------------------------------------ */

static void conn_start(struct conn *c);
static void tail_next(struct dash_redis *r);

static void schedule_conn_retry(struct conn *c)
{
    if (c->r->stopping)
        return;
    struct timeval tv = {c->backoff_ms / 1000, (c->backoff_ms % 1000) * 1000};
    evtimer_add(c->retry, &tv);
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

static void schedule_node_retry(struct node *n)
{
    if (n->r->stopping || evtimer_pending(n->retry, NULL))
        return;
    struct timeval tv = {n->backoff_ms / 1000, (n->backoff_ms % 1000) * 1000};
    evtimer_add(n->retry, &tv);
    n->backoff_ms = n->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : n->backoff_ms * 2;
}

static void on_conn_retry(evutil_socket_t fd, short what, void *arg)
{
    conn_start(arg);
}

/* The end of node 0's handshake (its PING): the mode is known. */
static void node0_ready(struct node *n)
{
    struct dash_redis *r = n->r;
    n->backoff_ms = BACKOFF_MIN_MS;
    fprintf(stderr, "egressd-dashboard: redis: connected to %s\n", r->ep.shown);
    if (!r->discovered) {
        r->discovered = 1;
        r->per_sensor = r->layout == DASH_LAYOUT_PER_SENSOR ||
                        (r->layout == DASH_LAYOUT_AUTO && r->cluster);
        fprintf(stderr, "egressd-dashboard: redis: reading the %s layout%s\n",
                r->per_sensor ? "per-sensor" : "shared",
                r->cluster ? " from every master" : "");
        if (!r->per_sensor && !r->cluster)
            conn_start(&r->t); /* the blocking tail */
        else
            tails_sync(r);
    }
    n->up = 1;
    if (r->per_sensor)
        load_sensors(r);
    publish_up(r);
}

static void cb_handshake(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct node *n = ac->data;
    redisReply *rep = reply;
    if (!n || !rep)
        return;
    struct dash_redis *r = n->r;
    const char *step = privdata;
    if (step && !strcmp(step, "SLOTS")) {
        if (rep->type == REDIS_REPLY_ARRAY)
            take_map(r, n, rep);
        return; /* an error: one server (or a user without CLUSTER) */
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "egressd-dashboard: redis: %s refused: %s\n", r->ep.shown, rep->str);
        redisAsyncDisconnect(ac);
        return;
    }
    if (step && !strcmp(step, "PING"))
        node0_ready(n);
}

static void send_auth(redisAsyncContext *ac, const struct redis_endpoint *ep,
                      redisCallbackFn *fn, void *privdata)
{
    if (!ep->pass[0])
        return;
    if (ep->user[0])
        redisAsyncCommandArgv(ac, fn, privdata, 3, (const char *[]){"AUTH", ep->user, ep->pass},
                              (size_t[]){4, strlen(ep->user), strlen(ep->pass)});
    else
        redisAsyncCommandArgv(ac, fn, privdata, 2, (const char *[]){"AUTH", ep->pass},
                              (size_t[]){4, strlen(ep->pass)});
}

static void node0_connected(struct node *n)
{
    struct dash_redis *r = n->r;
    redisAsyncContext *ac = n->ac;
    const struct redis_endpoint *ep = &r->ep;
    send_auth(ac, ep, cb_handshake, NULL);
    if (ep->db && !r->cluster) {
        char db[16];
        int len = snprintf(db, sizeof(db), "%u", ep->db);
        redisAsyncCommandArgv(ac, cb_handshake, NULL, 2, (const char *[]){"SELECT", db},
                              (size_t[]){6, (size_t)len});
    }
    if (!ep->is_unix)
        redisAsyncCommandArgv(ac, cb_handshake, (void *)"SLOTS", 2,
                              (const char *[]){"CLUSTER", "SLOTS"}, (size_t[]){7, 5});
    redisAsyncCommandArgv(ac, cb_handshake, (void *)"PING", 1, (const char *[]){"PING"},
                          (size_t[]){4});
}

static void cb_node_auth(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct node *n = ac->data;
    redisReply *rep = reply;
    if (n && rep && rep->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "egressd-dashboard: redis: %s:%d refused: %s\n", n->host, n->port,
                rep->str);
        redisAsyncDisconnect(ac);
    }
}

static void on_node_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct node *n = ac->data;
    if (!n)
        return;
    if (status != REDIS_OK) {
        n->ac = NULL; /* hiredis frees the context after this callback */
        n->up = 0;
        publish_up(n->r);
        want_refresh(n->r);
        schedule_node_retry(n);
        return;
    }
    if (n->idx == 0)
        node0_connected(n);
    else {
        n->up = 1;
        n->backoff_ms = BACKOFF_MIN_MS;
        publish_up(n->r);
    }
}

static void on_node_disconnect(const redisAsyncContext *cac, int status)
{
    struct node *n = cac->data;
    if (!n)
        return;
    n->ac = NULL; /* hiredis frees it */
    int was = n->up;
    n->up = 0;
    if (n->idx == 0 && was && !n->r->stopping)
        fprintf(stderr, "egressd-dashboard: redis: connection to %s lost (reconnecting)\n",
                n->r->ep.shown);
    publish_up(n->r);
    want_refresh(n->r);
    schedule_node_retry(n);
}

static void node_start(struct node *n)
{
    struct dash_redis *r = n->r;
    if (n->ac || r->stopping)
        return;
    redisAsyncContext *ac = n->is_unix ? redisAsyncConnectUnix(n->host)
                                       : redisAsyncConnect(n->host, n->port);
    if (!ac || ac->err) {
        if (ac)
            redisAsyncFree(ac);
        schedule_node_retry(n);
        return;
    }
    if (redisLibeventAttach(ac, r->base) != REDIS_OK) {
        redisAsyncFree(ac);
        schedule_node_retry(n);
        return;
    }
    ac->data = n;
    n->ac = ac;
    redisAsyncSetConnectCallback(ac, on_node_connect);
    redisAsyncSetDisconnectCallback(ac, on_node_disconnect);
    /* A master's AUTH goes first, before any command queued while it
     * connects (hiredis sends in order). */
    if (n->idx > 0)
        send_auth(ac, &r->ep, cb_node_auth, NULL);
}

/* The blocking tail's connection. */
static void cb_tail_handshake(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct conn *c = ac->data;
    redisReply *rep = reply;
    if (!c || !rep)
        return;
    if (rep->type == REDIS_REPLY_ERROR) {
        redisAsyncDisconnect(ac);
        return;
    }
    if (privdata) {
        c->backoff_ms = BACKOFF_MIN_MS;
        c->up = 1;
        tail_next(c->r);
    }
}

static void on_conn_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct conn *c = ac->data;
    if (status != REDIS_OK) {
        c->ac = NULL;
        schedule_conn_retry(c);
        return;
    }
    const struct redis_endpoint *ep = &c->r->ep;
    send_auth(ac, ep, cb_tail_handshake, NULL);
    if (ep->db) {
        char db[16];
        int n = snprintf(db, sizeof(db), "%u", ep->db);
        redisAsyncCommandArgv(ac, cb_tail_handshake, NULL, 2, (const char *[]){"SELECT", db},
                              (size_t[]){6, (size_t)n});
    }
    redisAsyncCommandArgv(ac, cb_tail_handshake, (void *)"PING", 1, (const char *[]){"PING"},
                          (size_t[]){4});
}

static void on_conn_disconnect(const redisAsyncContext *cac, int status)
{
    struct conn *c = cac->data;
    if (!c)
        return;
    c->ac = NULL;
    c->up = 0;
    schedule_conn_retry(c);
}

static void conn_start(struct conn *c)
{
    const struct redis_endpoint *ep = &c->r->ep;
    if (c->ac || c->r->stopping)
        return;
    redisAsyncContext *ac = ep->is_unix ? redisAsyncConnectUnix(ep->host)
                                        : redisAsyncConnect(ep->host, ep->port);
    if (!ac || ac->err) {
        if (ac)
            redisAsyncFree(ac);
        schedule_conn_retry(c);
        return;
    }
    if (redisLibeventAttach(ac, c->r->base) != REDIS_OK) {
        redisAsyncFree(ac);
        schedule_conn_retry(c);
        return;
    }
    ac->data = c;
    c->ac = ac;
    redisAsyncSetConnectCallback(ac, on_conn_connect);
    redisAsyncSetDisconnectCallback(ac, on_conn_disconnect);
}

/* ---- the alert tail --------------------------------------------------------- */

static void notify_entry(struct dash_redis *r, const struct dash_val *e)
{
    if (r->notify)
        r->notify(r->ctx, e, 1);
}

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
            if (val_copy(&v, e))
                notify_entry(r, &v);
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

/* The polled tail: one position per alert stream (a sensor's, or the
 * shared one on a cluster), kept across refreshes of the sensor set. */
static void tails_sync(struct dash_redis *r)
{
    size_t want = r->per_sensor ? r->nids : 1;
    struct tail_pos *nt = calloc(want ? want : 1, sizeof(*nt));
    if (!nt)
        return;
    size_t n = 0;
    for (size_t i = 0; i < want; i++) {
        char key[1400];
        size_t kl = 0;
        if (r->per_sensor) {
            char logical[300];
            int ll = snprintf(logical, sizeof(logical), "%s:alerts", r->prefix);
            kl = ll > 0 ? sensor_key(r, i, logical, (size_t)ll, key, sizeof(key)) : 0;
        } else {
            int ll = snprintf(key, sizeof(key), "%s:alerts", r->prefix);
            kl = ll > 0 ? (size_t)ll : 0;
        }
        if (!kl || !(nt[n].key = malloc(kl + 1)))
            continue;
        memcpy(nt[n].key, key, kl);
        nt[n].key[kl] = '\0';
        nt[n].klen = kl;
        snprintf(nt[n].last, sizeof(nt[n].last), "%s", r->start_id);
        for (size_t k = 0; k < r->ntails; k++)
            if (r->tails[k].klen == nt[n].klen && !memcmp(r->tails[k].key, key, nt[n].klen))
                snprintf(nt[n].last, sizeof(nt[n].last), "%s", r->tails[k].last);
        n++;
    }
    for (size_t k = 0; k < r->ntails; k++)
        free(r->tails[k].key);
    free(r->tails);
    r->tails = nt;
    r->ntails = n;
}

static void cb_poll(void *ctx, const struct dash_val *rep, size_t n, int ok)
{
    struct dash_redis *r = ctx;
    r->poll_out = 0;
    if (!ok || r->stopping)
        return;
    /* Entries of every stream, oldest first, each stream's position moved
     * to its newest. */
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (rep[i].type == REDIS_REPLY_ARRAY && rep[i].n == 1 && rep[i].el[0].n == 2)
            total += rep[i].el[0].el[1].n;
    const struct dash_val **all = total ? malloc(total * sizeof(*all)) : NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (rep[i].type != REDIS_REPLY_ARRAY || rep[i].n != 1 || rep[i].el[0].n != 2 ||
            rep[i].el[0].el[0].type != REDIS_REPLY_STRING)
            continue;
        /* By its key: the sensor set may have changed since the poll began. */
        const struct dash_val *key = &rep[i].el[0].el[0];
        struct tail_pos *t = NULL;
        for (size_t q = 0; q < r->ntails && !t; q++)
            if (r->tails[q].klen == key->len && !memcmp(r->tails[q].key, key->str, key->len))
                t = &r->tails[q];
        const struct dash_val *entries = &rep[i].el[0].el[1];
        for (size_t j = 0; j < entries->n; j++) {
            const struct dash_val *e = &entries->el[j];
            if (!is_entry(e))
                continue;
            if (t && e->el[0].len < sizeof(t->last))
                memcpy(t->last, e->el[0].str, e->el[0].len + 1);
            if (all)
                all[k++] = e;
        }
    }
    if (all) {
        qsort(all, k, sizeof(*all), cmp_entry_asc);
        for (size_t i = 0; i < k; i++)
            notify_entry(r, all[i]);
        free(all);
    }
}

static void on_poll_timer(evutil_socket_t fd, short what, void *arg)
{
    struct dash_redis *r = arg;
    if (r->poll_out || !r->up || !r->ntails || r->stopping)
        return;
    struct dash_batch *b = dash_batch_new(r, cb_poll, r);
    if (!b)
        return;
    b->raw = 1;
    for (size_t i = 0; i < r->ntails; i++) {
        const char *argv[] = {"XREAD", "COUNT", TAIL_COUNT, "STREAMS", r->tails[i].key,
                              r->tails[i].last};
        size_t lens[] = {5, 5, strlen(TAIL_COUNT), 7, r->tails[i].klen, strlen(r->tails[i].last)};
        batch_cmd_raw(b, 6, argv, lens);
    }
    r->poll_out = 1;
    dash_batch_run(b);
}

/* ---- the service ------------------------------------------------------------ */

struct dash_redis *dash_redis_new(struct event_base *base, const struct redis_endpoint *ep,
                                  const char *prefix, int layout, dash_redis_notify_fn fn,
                                  void *ctx)
{
    struct dash_redis *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->base = base;
    r->ep = *ep;
    r->layout = layout;
    snprintf(r->prefix, sizeof(r->prefix), "%s", prefix);
    r->plen = strlen(r->prefix);
    snprintf(r->alerts_key, sizeof(r->alerts_key), "%s:alerts", prefix);
    strcpy(r->last_id, "$");
    struct timeval now;
    gettimeofday(&now, NULL);
    snprintf(r->start_id, sizeof(r->start_id), "%" PRIu64 "-0",
             (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_usec / 1000u);
    r->notify = fn;
    r->ctx = ctx;
    r->t.r = r;
    r->t.kind = CONN_TAIL;
    r->t.backoff_ms = BACKOFF_MIN_MS;
    struct timeval poll = {0, TAIL_POLL_MS * 1000};
    struct timeval sens = {SENSORS_REFRESH_MS / 1000, (SENSORS_REFRESH_MS % 1000) * 1000};
    if (!(r->map = calloc(1, sizeof(*r->map))) ||
        !(r->t.retry = evtimer_new(base, on_conn_retry, &r->t)) ||
        !(r->refresh_timer = evtimer_new(base, on_refresh_timer, r)) ||
        !(r->poll_timer = event_new(base, -1, EV_PERSIST, on_poll_timer, r)) ||
        !(r->sensors_timer = event_new(base, -1, EV_PERSIST, on_sensors_timer, r)) ||
        !node_get(r, ep->host, ep->port, ep->is_unix)) {
        dash_redis_free(r);
        return NULL;
    }
    event_add(r->poll_timer, &poll);
    event_add(r->sensors_timer, &sens);
    node_start(r->nodes[0]);
    return r;
}

void dash_redis_free(struct dash_redis *r)
{
    if (!r)
        return;
    r->stopping = 1;
    if (r->t.ac) {
        redisAsyncContext *ac = r->t.ac;
        r->t.ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    for (unsigned i = 0; i < r->nnodes; i++) {
        struct node *n = r->nodes[i];
        if (n->ac) {
            redisAsyncContext *ac = n->ac;
            n->ac = NULL;
            ac->data = NULL;
            redisAsyncFree(ac); /* answers pending commands with NULL */
        }
        if (n->retry)
            event_free(n->retry);
        free(n);
    }
    struct event *evs[] = {r->t.retry, r->refresh_timer, r->poll_timer, r->sensors_timer};
    for (size_t i = 0; i < EGR_ARRAY_LEN(evs); i++)
        if (evs[i])
            event_free(evs[i]);
    for (size_t i = 0; i < r->nids; i++)
        free(r->ids[i]);
    free(r->ids);
    free(r->idlens);
    for (size_t i = 0; i < r->ntails; i++)
        free(r->tails[i].key);
    free(r->tails);
    free(r->map);
    free(r);
}

int dash_redis_up(const struct dash_redis *r)
{
    return r->up;
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
    for (size_t i = 0; i < b->n; i++) {
        val_clear(&b->replies[i]);
        for (size_t k = 0; k < b->l[i].nparts; k++)
            val_clear(&b->l[i].parts[k]);
        free(b->l[i].parts);
    }
    free(b->replies);
    free(b->l);
    free(b);
}

static void part_free(struct part *p)
{
    for (int i = 0; i < p->argc; i++)
        free(p->argv[i]);
    free(p->argv);
    free(p->lens);
    free(p);
}

static void lcmd_done(struct dash_batch *b, size_t li)
{
    struct lcmd *l = &b->l[li];
    if (!merge_parts(l, &b->replies[li]))
        b->failed = 1;
    b->got++;
    if (b->got == b->n && b->running)
        batch_finish(b);
}

static int part_send(struct part *p, struct node *n);

static void cb_part(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct part *p = privdata;
    struct dash_batch *b = p->b;
    struct dash_redis *r = b->r;
    redisReply *rep = reply;
    if (p->asking) { /* the ASKING before the command: its reply says nothing */
        p->asking = 0;
        return;
    }
    struct lcmd *l = &b->l[p->li];
    if (rep && rep->type == REDIS_REPLY_ERROR && p->redirects < REDIRECTS_MAX && !r->stopping) {
        struct redis_redirect rd;
        if (redis_cluster_parse_redirect(rep->str, rep->len, &rd) == EGR_OK) {
            struct node *from = ac->data;
            const char *host = rd.host[0] ? rd.host : from ? from->host : r->ep.host;
            struct node *to = node_get(r, host, rd.port, 0);
            p->redirects++;
            if (to) {
                if (rd.kind == REDIS_REDIRECT_MOVED) {
                    r->cluster = 1;
                    r->route[rd.slot] = (uint8_t)(to->idx + 1);
                    want_refresh(r);
                } else {
                    p->asking = 1;
                }
                if (!to->ac)
                    node_start(to);
                if (part_send(p, to) == 0)
                    return;
            }
        }
    }
    if (!rep || !val_copy(&l->parts[p->pi], rep))
        b->failed = 1;
    size_t li = p->li;
    part_free(p);
    if (++l->done == l->nparts)
        lcmd_done(b, li);
}

static int part_send(struct part *p, struct node *n)
{
    if (!n->ac)
        return -1;
    if (p->asking &&
        redisAsyncCommandArgv(n->ac, cb_part, p, 1, (const char *[]){"ASKING"}, (size_t[]){6}) !=
            REDIS_OK)
        return -1;
    return redisAsyncCommandArgv(n->ac, cb_part, p, p->argc, (const char **)p->argv, p->lens) ==
                   REDIS_OK
               ? 0
               : -1;
}

/* Adds logical command li's part pi with these arguments. */
static void add_part(struct dash_batch *b, size_t li, int argc, const char **argv,
                     const size_t *lens)
{
    struct lcmd *l = &b->l[li];
    struct part *p = calloc(1, sizeof(*p));
    size_t pi = l->nparts;
    struct dash_val *np = realloc(l->parts, (pi + 1) * sizeof(*np));
    if (np) {
        l->parts = np;
        memset(&l->parts[pi], 0, sizeof(l->parts[pi]));
    }
    if (!p || !np || !(p->argv = calloc((size_t)argc, sizeof(*p->argv))) ||
        !(p->lens = calloc((size_t)argc, sizeof(*p->lens)))) {
        if (p)
            part_free(p);
        b->failed = 1;
        return;
    }
    p->b = b;
    p->li = li;
    p->pi = pi;
    for (int i = 0; i < argc; i++) {
        if (!(p->argv[i] = malloc(lens[i] + 1))) {
            p->argc = i;
            part_free(p);
            b->failed = 1;
            return;
        }
        memcpy(p->argv[i], argv[i], lens[i]);
        p->argv[i][lens[i]] = '\0';
        p->lens[i] = lens[i];
    }
    p->argc = argc;
    struct node *n = route(b->r, argc > 1 ? argv[1] : NULL, argc > 1 ? lens[1] : 0);
    if (!n->ac && n->idx > 0)
        node_start(n);
    if (part_send(p, n) != 0) {
        part_free(p);
        b->failed = 1;
        return;
    }
    l->nparts++;
}

/* A new logical command; its index, or -1. */
static long lcmd_new(struct dash_batch *b, enum merge how, long limit)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        struct dash_val *nv = realloc(b->replies, cap * sizeof(*nv));
        if (nv)
            b->replies = nv;
        struct lcmd *nl = realloc(b->l, cap * sizeof(*nl));
        if (nl)
            b->l = nl;
        if (!nv || !nl) {
            b->failed = 1;
            return -1;
        }
        memset(b->replies + b->cap, 0, (cap - b->cap) * sizeof(*nv));
        memset(b->l + b->cap, 0, (cap - b->cap) * sizeof(*nl));
        b->cap = cap;
    }
    b->l[b->n] = (struct lcmd){.merge = how, .limit = limit};
    return (long)b->n++;
}

/* The logical command's parts are all sent: one that has none finishes
 * now (an empty result), as does one whose parts failed to send. */
static void lcmd_sent(struct dash_batch *b, long li)
{
    struct lcmd *l = &b->l[li];
    if (l->done == l->nparts)
        lcmd_done(b, (size_t)li);
}

static void batch_cmd_raw(struct dash_batch *b, int argc, const char **argv, const size_t *lens)
{
    long li = lcmd_new(b, MG_ONE, -1);
    if (li < 0)
        return;
    add_part(b, (size_t)li, argc, argv, lens);
    lcmd_sent(b, li);
}

static long arg_long(const char *s, size_t n, long dflt)
{
    if (!n || n > 18)
        return dflt;
    char t[20];
    memcpy(t, s, n);
    t[n] = '\0';
    char *end;
    long v = strtol(t, &end, 10);
    return *end ? dflt : v;
}

/* Per-sensor layout: the key "{prefix}:{rest}" of the sensor i is
 * "{prefix}:{<id>}:{rest}". */
static size_t sensor_key(const struct dash_redis *r, size_t i, const char *key, size_t klen,
                         char *out, size_t cap)
{
    const char *rest = key + r->plen + 1;
    size_t rl = klen - r->plen - 1, il = r->idlens[i];
    if (r->plen + il + 4 + rl > cap)
        return 0;
    size_t n = 0;
    memcpy(out, r->prefix, r->plen);
    n += r->plen;
    memcpy(out + n, ":{", 2);
    n += 2;
    memcpy(out + n, r->ids[i], il);
    n += il;
    memcpy(out + n, "}:", 2);
    n += 2;
    memcpy(out + n, rest, rl);
    return n + rl;
}

static int starts(const char *s, size_t n, const char *p)
{
    size_t pl = strlen(p);
    return n >= pl && !memcmp(s, p, pl);
}

/* A command of dash-http.c in the per-sensor layout. Returns 0 if it is
 * not a per-sensor key (sent as it is). */
static int per_sensor_cmd(struct dash_batch *b, int argc, const char **argv, const size_t *lens)
{
    struct dash_redis *r = b->r;
    if (argc < 2 || lens[1] <= r->plen + 1 || memcmp(argv[1], r->prefix, r->plen) ||
        argv[1][r->plen] != ':')
        return 0;
    const char *rest = argv[1] + r->plen + 1;
    size_t rl = lens[1] - r->plen - 1;
    if ((rl == 7 && !memcmp(rest, "sensors", 7)) || starts(rest, rl, "alerts:live"))
        return 0; /* global keys */
    const char *cmd = argv[0];
    size_t cl = lens[0];
    if (starts(rest, rl, "sensor:")) {
        /* {prefix}:sensor:{id} -> {prefix}:{id}:sensor */
        char key[1400];
        size_t idl = rl - 7;
        if (r->plen + idl + 12 > sizeof(key))
            return 0;
        size_t n = 0;
        memcpy(key, r->prefix, r->plen);
        n += r->plen;
        memcpy(key + n, ":{", 2);
        n += 2;
        memcpy(key + n, rest + 7, idl);
        n += idl;
        memcpy(key + n, "}:sensor", 8);
        n += 8;
        const char *av[BATCH_MAX_ARGS];
        size_t al[BATCH_MAX_ARGS];
        for (int i = 0; i < argc && i < BATCH_MAX_ARGS; i++) {
            av[i] = argv[i];
            al[i] = lens[i];
        }
        av[1] = key;
        al[1] = (size_t)n;
        batch_cmd_raw(b, argc, av, al);
        return 1;
    }
    enum merge how;
    long limit = -1;
    int keys_to = 2; /* arguments [1, keys_to) are keys */
    if (cl == 9 && !strncasecmp(cmd, "XREVRANGE", 9)) {
        how = MG_STREAM;
        /* The newest COUNT alerts of all sensors; but the newest COUNT flow
         * entries of each sensor (a search for a pair's flows should not
         * miss a quiet sensor's behind a busy one's). */
        if (argc >= 6 && lens[4] == 5 && !strncasecmp(argv[4], "COUNT", 5) &&
            !(rl == 5 && !memcmp(rest, "flows", 5)))
            limit = arg_long(argv[5], lens[5], -1);
    } else if (cl == 7 && !strncasecmp(cmd, "HGETALL", 7)) {
        how = MG_HASH_SUM;
    } else if (cl == 9 && !strncasecmp(cmd, "ZREVRANGE", 9) && argc >= 4) {
        int scores = argc >= 5 && lens[4] == 10 && !strncasecmp(argv[4], "WITHSCORES", 10);
        how = scores ? MG_ZSET_SUM : MG_ZSET_NUM;
        long stop = arg_long(argv[3], lens[3], -1);
        limit = stop >= 0 ? stop + 1 : -1;
    } else if (cl == 7 && !strncasecmp(cmd, "PFCOUNT", 7)) {
        how = MG_INT_SUM;
        keys_to = argc;
    } else {
        return 0;
    }
    long li = lcmd_new(b, how, limit);
    if (li < 0)
        return 1;
    /* Every sensor's keys; a sensor's keys share its slot, so a multi-key
     * command stays one command per sensor. */
    static char keys[BATCH_MAX_ARGS][1400];
    const char *av[BATCH_MAX_ARGS];
    size_t al[BATCH_MAX_ARGS];
    for (size_t s = 0; s < r->nids && !b->failed; s++) {
        int ok = 1;
        for (int i = 0; i < argc && i < BATCH_MAX_ARGS; i++) {
            av[i] = argv[i];
            al[i] = lens[i];
            if (i >= 1 && i < keys_to) {
                size_t kl = lens[i] > r->plen && !memcmp(argv[i], r->prefix, r->plen)
                                ? sensor_key(r, s, argv[i], lens[i], keys[i], sizeof(keys[i]))
                                : 0;
                ok &= kl > 0;
                av[i] = keys[i];
                al[i] = kl;
            }
        }
        if (ok)
            add_part(b, (size_t)li, argc, av, al);
    }
    lcmd_sent(b, li);
    return 1;
}

void dash_batch_cmd(struct dash_batch *b, int argc, const char **argv, const size_t *lens)
{
    if (!b || b->failed)
        return;
    if (!b->raw && !dash_redis_up(b->r)) {
        b->failed = 1;
        return;
    }
    if (!b->raw && b->r->per_sensor && per_sensor_cmd(b, argc, argv, lens))
        return;
    batch_cmd_raw(b, argc, argv, lens);
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

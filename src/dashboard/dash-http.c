/* dash-http.c - the dashboard's HTTP side (see dashboard.h and
 * docs/dashboard.md): the page's static files, the JSON API answered from
 * Redis, and Server-Sent Events of new alerts.
 *
 * Every value that came from Redis is written through the project's JSON
 * writer (include/egressd/json.h), which escapes any byte: names from the
 * wire may hold markup, control bytes or bytes that are not UTF-8. Field
 * names are taken only when they look like the schema's (lowercase, digits,
 * '_'), since a JSON key from an arbitrary entry would be no safer.
 *
 * Aggregates are per minute of packet time, so "the last hour" is the hour
 * that ends at the minute of the newest flow record, not at the wall clock:
 * a replayed capture of last month shows its own hour.
 */
#include "dashboard.h"

#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "egressd/json.h"

#define HOUR_BUCKETS 60
#define MAX_NAMES 64         /* series per chart (assets, protocols, countries) */
#define FLOW_SCAN 2000       /* flow entries searched by /api/flows */
#define ROLE_SCAN 1000       /* flow entries read for the asset -> role map */
#define TOP_PER_BUCKET "49"  /* ZREVRANGE 0..49 per minute */
#define HEARTBEAT_STALE_S 20 /* 2 x the sensors' heartbeat interval (10 s) */
#define KEEPALIVE_S 15
#define STATIC_MAX_BYTES (4 << 20)
#define SSE_MAX_BACKLOG (1 << 20) /* bytes unsent to one event-stream client */

struct sse_client {
    struct dash_http *h;
    struct evhttp_request *req;
    struct sse_client *next;
};

struct dash_http {
    struct event_base *base;
    struct evhttp *http;
    struct dash_redis **redis;
    char token[256];
    char static_dir[4096];
    struct sse_client *clients;
    size_t nclients;
    struct event *keepalive;
    struct dash_conns *conns;
};

/* ---- replies -------------------------------------------------------------- */

static void send_json(struct evhttp_request *req, int code, struct jbuf *jb)
{
    struct evkeyvalq *hd = evhttp_request_get_output_headers(req);
    evhttp_add_header(hd, "Content-Type", "application/json; charset=utf-8");
    evhttp_add_header(hd, "Cache-Control", "no-store");
    evhttp_add_header(hd, "X-Content-Type-Options", "nosniff");
    struct evbuffer *out = evbuffer_new();
    if (!out || !jbuf_ok(jb)) {
        evhttp_send_error(req, 500, NULL);
        if (out)
            evbuffer_free(out);
        return;
    }
    evbuffer_add(out, jb->buf, jb->len);
    evhttp_send_reply(req, code, code == 200 ? "OK" : NULL, out);
    evbuffer_free(out);
}

static void send_error(struct evhttp_request *req, int code, const char *msg)
{
    struct jbuf jb;
    jbuf_init(&jb);
    json_obj_open(&jb);
    json_kv_str(&jb, "error", msg);
    json_obj_close(&jb);
    send_json(req, code, &jb);
    jbuf_free(&jb);
}

static void send_unavailable(struct evhttp_request *req)
{
    send_error(req, 503, "redis unavailable");
}

/* ---- reading replies ------------------------------------------------------- */

static int is_str(const struct dash_val *v)
{
    return v && v->type == REDIS_REPLY_STRING;
}

static int field_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 40)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_'))
            return 0;
    return 1;
}

/* The value of field name in a stream entry's [f, v, ...] array, or NULL. */
static const struct dash_val *entry_get(const struct dash_val *kv, const char *name)
{
    if (!kv || kv->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < kv->n; i += 2)
        if (is_str(&kv->el[i]) && strcmp(kv->el[i].str, name) == 0 && is_str(&kv->el[i + 1]))
            return &kv->el[i + 1];
    return NULL;
}

static int entry_ok(const struct dash_val *e)
{
    return e->type == REDIS_REPLY_ARRAY && e->n == 2 && is_str(&e->el[0]) &&
           e->el[1].type == REDIS_REPLY_ARRAY;
}

/* One stream entry as {"id": ..., field: value, ...}. */
static void json_entry(struct jbuf *jb, const struct dash_val *e)
{
    json_obj_open(jb);
    json_kv_strn(jb, "id", e->el[0].str, e->el[0].len);
    const struct dash_val *kv = &e->el[1];
    for (size_t i = 0; i + 1 < kv->n; i += 2) {
        const struct dash_val *k = &kv->el[i], *v = &kv->el[i + 1];
        if (!is_str(k) || !is_str(v) || !field_name_ok(k->str, k->len) ||
            strcmp(k->str, "id") == 0)
            continue;
        json_kv_strn(jb, k->str, v->str, v->len);
    }
    json_obj_close(jb);
}

static uint64_t to_u64(const struct dash_val *v)
{
    if (!v)
        return 0;
    if (v->type == REDIS_REPLY_INTEGER)
        return v->integer > 0 ? (uint64_t)v->integer : 0;
    if (!is_str(v))
        return 0;
    return strtoull(v->str, NULL, 10);
}

/* "2025-10-15T08:01:01.000000+0000" (always UTC) -> seconds, 0 if not. */
static int64_t parse_time(const struct dash_val *v)
{
    if (!is_str(v))
        return 0;
    struct tm tm = {0};
    if (sscanf(v->str, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

/* ---- named series: the sums of one dimension over the hour's minutes --------- */

struct series {
    char *name;
    size_t len;
    uint64_t v[HOUR_BUCKETS];
    uint64_t total;
    char role[128];
    uint64_t uniq;
    struct series_top *top;
    size_t ntop;
};

struct series_top {
    char *name;
    size_t len;
    double bytes;
};

struct table {
    struct series s[MAX_NAMES];
    size_t n;
};

static struct series *table_get(struct table *t, const char *name, size_t len)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->s[i].len == len && memcmp(t->s[i].name, name, len) == 0)
            return &t->s[i];
    if (t->n == MAX_NAMES)
        return NULL;
    struct series *s = &t->s[t->n];
    memset(s, 0, sizeof(*s));
    s->name = malloc(len + 1);
    if (!s->name)
        return NULL;
    memcpy(s->name, name, len);
    s->name[len] = '\0';
    s->len = len;
    t->n++;
    return s;
}

static void table_free(struct table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        for (size_t j = 0; j < t->s[i].ntop; j++)
            free(t->s[i].top[j].name);
        free(t->s[i].top);
        free(t->s[i].name);
    }
    t->n = 0;
}

/* Adds an HGETALL reply ([field, value, ...]) to minute `slot`. */
static void table_add_hash(struct table *t, const struct dash_val *h, size_t slot)
{
    if (h->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i + 1 < h->n; i += 2) {
        if (!is_str(&h->el[i]))
            continue;
        struct series *s = table_get(t, h->el[i].str, h->el[i].len);
        if (!s)
            continue;
        uint64_t b = to_u64(&h->el[i + 1]);
        s->v[slot] += b;
        s->total += b;
    }
}

static int cmp_total(const void *a, const void *b)
{
    const struct series *x = a, *y = b;
    return x->total < y->total ? 1 : x->total > y->total ? -1 : 0;
}

static int cmp_top(const void *a, const void *b)
{
    const struct series_top *x = a, *y = b;
    return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : 0;
}

/* ---- requests that take several steps ----------------------------------------- */

enum job_kind { JOB_ASSETS, JOB_PROTOCOLS, JOB_COUNTRIES };

struct job {
    struct dash_http *h;
    struct evhttp_request *req;
    enum job_kind kind;
    uint64_t last_bucket; /* minute of the newest flow record; 0 = none */
    struct table t;
    /* asset -> role, from recent flow records (the aggregates keep no roles) */
    struct table roles;
    struct table role_bytes; /* /api/assets: bytes per role over the hour */
};

static void job_free(struct job *j)
{
    table_free(&j->t);
    table_free(&j->roles);
    table_free(&j->role_bytes);
    free(j);
}

static size_t agg_key(const struct dash_http *h, char *out, size_t cap, uint64_t bucket,
                      const char *metric, const char *part, size_t plen)
{
    int n = snprintf(out, cap, "%s:agg:%" PRIu64 ":%s:", dash_redis_prefix(*h->redis), bucket,
                     metric);
    if (n < 0 || (size_t)n >= cap)
        return 0;
    if (plen > cap - (size_t)n)
        plen = cap - (size_t)n;
    memcpy(out + n, part, plen);
    return (size_t)n + plen;
}

static void json_hour(struct jbuf *jb, const struct job *j)
{
    json_kv_u64(jb, "last_bucket", j->last_bucket);
    json_kv_u64(jb, "first_bucket", j->last_bucket >= HOUR_BUCKETS - 1
                                        ? j->last_bucket - (HOUR_BUCKETS - 1) : 0);
}

static void json_series_values(struct jbuf *jb, const struct series *s)
{
    json_kv_arr(jb, "series");
    for (size_t k = 0; k < HOUR_BUCKETS; k++)
        json_u64(jb, s->v[k]);
    json_arr_close(jb);
}

static void finish_dim(struct job *j)
{
    struct jbuf jb;
    jbuf_init(&jb);
    qsort(j->t.s, j->t.n, sizeof(j->t.s[0]), cmp_total);
    json_obj_open(&jb);
    json_hour(&jb, j);
    json_kv_arr(&jb, j->kind == JOB_PROTOCOLS ? "protocols" : "countries");
    for (size_t i = 0; i < j->t.n; i++) {
        const struct series *s = &j->t.s[i];
        json_obj_open(&jb);
        json_kv_strn(&jb, "name", s->name, s->len);
        json_kv_u64(&jb, "bytes", s->total);
        if (j->kind == JOB_PROTOCOLS)
            json_series_values(&jb, s);
        json_obj_close(&jb);
    }
    json_arr_close(&jb);
    json_obj_close(&jb);
    send_json(j->req, 200, &jb);
    jbuf_free(&jb);
}

static void finish_assets(struct job *j)
{
    struct jbuf jb;
    jbuf_init(&jb);
    qsort(j->t.s, j->t.n, sizeof(j->t.s[0]), cmp_total);
    json_obj_open(&jb);
    json_hour(&jb, j);
    json_kv_arr(&jb, "assets");
    for (size_t i = 0; i < j->t.n; i++) {
        struct series *s = &j->t.s[i];
        json_obj_open(&jb);
        json_kv_strn(&jb, "asset", s->name, s->len);
        json_kv_str(&jb, "role", s->role);
        json_kv_u64(&jb, "bytes", s->total);
        json_kv_u64(&jb, "unique_destinations", s->uniq);
        json_series_values(&jb, s);
        qsort(s->top, s->ntop, sizeof(s->top[0]), cmp_top);
        json_kv_arr(&jb, "top");
        for (size_t k = 0; k < s->ntop && k < 10; k++) {
            json_obj_open(&jb);
            json_kv_strn(&jb, "dest", s->top[k].name, s->top[k].len);
            json_kv_u64(&jb, "bytes", (uint64_t)s->top[k].bytes);
            json_obj_close(&jb);
        }
        json_arr_close(&jb);
        json_obj_close(&jb);
    }
    json_arr_close(&jb);
    qsort(j->role_bytes.s, j->role_bytes.n, sizeof(j->role_bytes.s[0]), cmp_total);
    json_kv_arr(&jb, "roles");
    for (size_t i = 0; i < j->role_bytes.n; i++) {
        const struct series *s = &j->role_bytes.s[i];
        json_obj_open(&jb);
        json_kv_strn(&jb, "role", s->name, s->len);
        json_kv_u64(&jb, "bytes", s->total);
        json_series_values(&jb, s);
        json_obj_close(&jb);
    }
    json_arr_close(&jb);
    json_obj_close(&jb);
    send_json(j->req, 200, &jb);
    jbuf_free(&jb);
}

static void top_add(struct series *s, const char *name, size_t len, double bytes)
{
    for (size_t i = 0; i < s->ntop; i++)
        if (s->top[i].len == len && memcmp(s->top[i].name, name, len) == 0) {
            s->top[i].bytes += bytes;
            return;
        }
    if (s->ntop >= 1024)
        return;
    struct series_top *nt = realloc(s->top, (s->ntop + 1) * sizeof(*nt));
    if (!nt)
        return;
    s->top = nt;
    char *c = malloc(len + 1);
    if (!c)
        return;
    memcpy(c, name, len);
    c[len] = '\0';
    s->top[s->ntop++] = (struct series_top){c, len, bytes};
}

/* Step 3 of /api/assets: per asset, HOUR_BUCKETS ZREVRANGEs and a PFCOUNT. */
static void cb_assets_detail(void *ctx, const struct dash_val *rep, size_t n, int ok)
{
    struct job *j = ctx;
    if (!ok || n != j->t.n * (HOUR_BUCKETS + 1)) {
        send_unavailable(j->req);
        job_free(j);
        return;
    }
    for (size_t i = 0; i < j->t.n; i++) {
        struct series *s = &j->t.s[i];
        const struct dash_val *r = rep + i * (HOUR_BUCKETS + 1);
        for (size_t k = 0; k < HOUR_BUCKETS; k++) {
            if (r[k].type != REDIS_REPLY_ARRAY)
                continue;
            for (size_t m = 0; m + 1 < r[k].n; m += 2)
                if (is_str(&r[k].el[m]) && is_str(&r[k].el[m + 1]))
                    top_add(s, r[k].el[m].str, r[k].el[m].len, strtod(r[k].el[m + 1].str, NULL));
        }
        s->uniq = to_u64(&r[HOUR_BUCKETS]);
        for (size_t k = 0; k < j->roles.n; k++)
            if (j->roles.s[k].len == s->len && memcmp(j->roles.s[k].name, s->name, s->len) == 0)
                snprintf(s->role, sizeof(s->role), "%s", j->roles.s[k].role);
    }
    finish_assets(j);
    job_free(j);
}

/* Step 2: the hour's HGETALLs of one dimension (for assets, then of roles). */
static void cb_hour(void *ctx, const struct dash_val *rep, size_t n, int ok)
{
    struct job *j = ctx;
    if (!ok || n != (j->kind == JOB_ASSETS ? 2 : 1) * HOUR_BUCKETS) {
        send_unavailable(j->req);
        job_free(j);
        return;
    }
    for (size_t k = 0; k < HOUR_BUCKETS; k++)
        table_add_hash(&j->t, &rep[k], k);
    if (j->kind == JOB_ASSETS)
        for (size_t k = 0; k < HOUR_BUCKETS; k++)
            table_add_hash(&j->role_bytes, &rep[HOUR_BUCKETS + k], k);
    if (j->kind != JOB_ASSETS) {
        finish_dim(j);
        job_free(j);
        return;
    }
    struct dash_batch *b = dash_batch_new(*j->h->redis, cb_assets_detail, j);
    if (!b)
        return;
    uint64_t first = j->last_bucket - (HOUR_BUCKETS - 1);
    char key[1200];
    for (size_t i = 0; i < j->t.n; i++) {
        const struct series *s = &j->t.s[i];
        for (size_t k = 0; k < HOUR_BUCKETS; k++) {
            size_t kn = agg_key(j->h, key, sizeof(key), first + k, "top", s->name, s->len);
            const char *argv[] = {"ZREVRANGE", key, "0", TOP_PER_BUCKET, "WITHSCORES"};
            size_t lens[] = {9, kn, 1, strlen(TOP_PER_BUCKET), 10};
            dash_batch_cmd(b, 5, argv, lens);
        }
        /* PFCOUNT of several keys counts their union without writing. */
        char keys[HOUR_BUCKETS][1200];
        const char *argv[HOUR_BUCKETS + 1];
        size_t lens[HOUR_BUCKETS + 1];
        argv[0] = "PFCOUNT";
        lens[0] = 7;
        for (size_t k = 0; k < HOUR_BUCKETS; k++) {
            lens[k + 1] = agg_key(j->h, keys[k], sizeof(keys[k]), first + k, "dests", s->name,
                                  s->len);
            argv[k + 1] = keys[k];
        }
        dash_batch_cmd(b, HOUR_BUCKETS + 1, argv, lens);
    }
    dash_batch_run(b);
}

/* Step 1: the newest flow records give the hour (and the assets' roles). */
static void cb_anchor(void *ctx, const struct dash_val *rep, size_t n, int ok)
{
    struct job *j = ctx;
    if (!ok || n != 2) {
        send_unavailable(j->req);
        job_free(j);
        return;
    }
    /* The hour ends at the newest minute the sensors wrote aggregates for
     * ({prefix}:agg_buckets): a replay whose last records were not egress
     * still shows the hour its egress had. Sensors older than that key: the
     * newest flow record's minute. */
    const struct dash_val *z = &rep[1];
    if (z->type == REDIS_REPLY_ARRAY && z->n >= 1 && z->el[0].type == REDIS_REPLY_STRING)
        j->last_bucket = strtoull(z->el[0].str, NULL, 10);
    const struct dash_val *a = &rep[0];
    for (size_t i = 0; a->type == REDIS_REPLY_ARRAY && i < a->n; i++) {
        const struct dash_val *e = &a->el[i];
        if (!entry_ok(e))
            continue;
        if (!j->last_bucket) {
            int64_t ts = parse_time(entry_get(&e->el[1], "ts"));
            if (ts > 0)
                j->last_bucket = (uint64_t)ts / 60;
        }
        const struct dash_val *asset = entry_get(&e->el[1], "asset");
        const struct dash_val *role = entry_get(&e->el[1], "role");
        if (asset && role) {
            struct series *s = table_get(&j->roles, asset->str, asset->len);
            if (s && !s->role[0])
                snprintf(s->role, sizeof(s->role), "%s", role->str);
        }
    }
    if (j->last_bucket < HOUR_BUCKETS) { /* no records: nothing to show */
        j->last_bucket = 0;
        j->kind == JOB_ASSETS ? finish_assets(j) : finish_dim(j);
        job_free(j);
        return;
    }
    static const char *dims[] = {"asset", "proto", "country"};
    const char *dim = dims[j->kind];
    struct dash_batch *b = dash_batch_new(*j->h->redis, cb_hour, j);
    if (!b)
        return;
    char key[1200];
    for (int pass = 0; pass < (j->kind == JOB_ASSETS ? 2 : 1); pass++) {
        if (pass)
            dim = "role";
        for (size_t k = 0; k < HOUR_BUCKETS; k++) {
            size_t kn = agg_key(j->h, key, sizeof(key), j->last_bucket - (HOUR_BUCKETS - 1) + k,
                                "bytes", dim, strlen(dim));
            const char *argv[] = {"HGETALL", key};
            size_t lens[] = {7, kn};
            dash_batch_cmd(b, 2, argv, lens);
        }
    }
    dash_batch_run(b);
}

static void start_job(struct dash_http *h, struct evhttp_request *req, enum job_kind kind)
{
    struct job *j = calloc(1, sizeof(*j));
    if (!j) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    j->h = h;
    j->req = req;
    j->kind = kind;
    char key[300], count[16];
    snprintf(key, sizeof(key), "%s:flows", dash_redis_prefix(*h->redis));
    snprintf(count, sizeof(count), "%d", kind == JOB_ASSETS ? ROLE_SCAN : 1);
    struct dash_batch *b = dash_batch_new(*h->redis, cb_anchor, j);
    dash_batch_cmdv(b, "XREVRANGE", key, "+", "-", "COUNT", count, NULL);
    snprintf(key, sizeof(key), "%s:agg_buckets", dash_redis_prefix(*h->redis));
    dash_batch_cmdv(b, "ZREVRANGE", key, "0", "0", NULL);
    dash_batch_run(b);
}

/* ---- simple requests -------------------------------------------------------- */

struct simple {
    struct dash_http *h;
    struct evhttp_request *req;
    char src[64], dest[64];
    int limit;
};

static void cb_alerts(void *ctx, const struct dash_val *rep, size_t n, int ok)
{
    struct simple *s = ctx;
    if (!ok || n != 1) {
        send_unavailable(s->req);
        free(s);
        return;
    }
    struct jbuf jb;
    jbuf_init(&jb);
    json_obj_open(&jb);
    json_kv_arr(&jb, "alerts");
    for (size_t i = 0; rep[0].type == REDIS_REPLY_ARRAY && i < rep[0].n; i++)
        if (entry_ok(&rep[0].el[i]))
            json_entry(&jb, &rep[0].el[i]);
    json_arr_close(&jb);
    json_obj_close(&jb);
    send_json(s->req, 200, &jb);
    jbuf_free(&jb);
    free(s);
}

static int val_eq(const struct dash_val *v, const char *s)
{
    return v && strcmp(v->str, s) == 0;
}

static void cb_flows(void *ctx, const struct dash_val *rep, size_t n, int ok)
{
    struct simple *s = ctx;
    if (!ok || n != 1) {
        send_unavailable(s->req);
        free(s);
        return;
    }
    struct jbuf jb;
    jbuf_init(&jb);
    json_obj_open(&jb);
    json_kv_u64(&jb, "scanned", rep[0].n);
    json_kv_arr(&jb, "flows");
    int found = 0;
    for (size_t i = 0; rep[0].type == REDIS_REPLY_ARRAY && i < rep[0].n && found < s->limit;
         i++) {
        const struct dash_val *e = &rep[0].el[i];
        if (!entry_ok(e) || !val_eq(entry_get(&e->el[1], "src_ip"), s->src) ||
            !val_eq(entry_get(&e->el[1], "dest_ip"), s->dest))
            continue;
        json_entry(&jb, e);
        found++;
    }
    json_arr_close(&jb);
    json_obj_close(&jb);
    send_json(s->req, 200, &jb);
    jbuf_free(&jb);
    free(s);
}

static void cb_sensor_hashes(void *ctx, const struct dash_val *rep, size_t n, int ok);

static void cb_sensor_ids(void *ctx, const struct dash_val *rep, size_t n, int ok)
{
    struct simple *s = ctx;
    if (!ok || n != 1 || rep[0].type != REDIS_REPLY_ARRAY) {
        send_unavailable(s->req);
        free(s);
        return;
    }
    struct dash_batch *b = dash_batch_new(*s->h->redis, cb_sensor_hashes, s);
    if (!b)
        return;
    /* the ids go first as an ECHO each, so the next step has them in order */
    char key[1200];
    const char *prefix = dash_redis_prefix(*s->h->redis);
    for (size_t i = 0; i < rep[0].n && i < 256; i++) {
        if (!is_str(&rep[0].el[i]))
            continue;
        int kn = snprintf(key, sizeof(key), "%s:sensor:", prefix);
        size_t len = rep[0].el[i].len;
        if (len > sizeof(key) - (size_t)kn)
            len = sizeof(key) - (size_t)kn;
        memcpy(key + kn, rep[0].el[i].str, len);
        const char *a1[] = {"HGETALL", key};
        size_t l1[] = {7, (size_t)kn + len};
        dash_batch_cmd(b, 2, a1, l1);
        const char *a2[] = {"ECHO", rep[0].el[i].str};
        size_t l2[] = {4, rep[0].el[i].len};
        dash_batch_cmd(b, 2, a2, l2);
    }
    dash_batch_run(b);
}

static const char *const sensor_fields[] = {
    "version", "source", "start_time", "updated", "packets", "bytes", "drops", "active_flows",
    "queue_depth", "sent", "queued", "spooled", "dropped", "undelivered", "reconnects",
    "last_error"};

static void cb_sensor_hashes(void *ctx, const struct dash_val *rep, size_t n, int ok)
{
    struct simple *s = ctx;
    if (!ok) {
        send_unavailable(s->req);
        free(s);
        return;
    }
    int64_t now = (int64_t)time(NULL);
    struct jbuf jb;
    jbuf_init(&jb);
    json_obj_open(&jb);
    json_kv_i64(&jb, "now", now);
    json_kv_u64(&jb, "stale_after_s", HEARTBEAT_STALE_S);
    json_kv_arr(&jb, "sensors");
    for (size_t i = 0; i + 1 < n; i += 2) {
        const struct dash_val *h = &rep[i], *id = &rep[i + 1];
        if (!is_str(id) || h->type != REDIS_REPLY_ARRAY)
            continue;
        json_obj_open(&jb);
        json_kv_strn(&jb, "id", id->str, id->len);
        /* A heartbeat key that expired means the sensor stopped refreshing it. */
        json_kv_bool(&jb, "present", h->n > 0);
        for (size_t f = 0; f < EGR_ARRAY_LEN(sensor_fields); f++) {
            const struct dash_val *v = entry_get(h, sensor_fields[f]);
            if (v)
                json_kv_strn(&jb, sensor_fields[f], v->str, v->len);
        }
        int64_t updated = parse_time(entry_get(h, "updated"));
        int64_t start = parse_time(entry_get(h, "start_time"));
        int64_t age = updated ? now - updated : -1;
        json_kv_i64(&jb, "age_s", age);
        json_kv_bool(&jb, "stale", h->n == 0 || age < 0 || age > HEARTBEAT_STALE_S);
        uint64_t pkts = to_u64(entry_get(h, "packets"));
        double secs = updated > start && start > 0 ? (double)(updated - start) : 0;
        json_kv_dbl(&jb, "packets_per_s", secs > 0 ? (double)pkts / secs : 0);
        json_obj_close(&jb);
    }
    json_arr_close(&jb);
    json_obj_close(&jb);
    send_json(s->req, 200, &jb);
    jbuf_free(&jb);
    free(s);
}

/* ---- Server-Sent Events ------------------------------------------------------ */

static void sse_send(struct dash_http *h, const char *s, size_t n)
{
    for (struct sse_client *c = h->clients; c; c = c->next) {
        /* A client that stopped reading gets nothing more rather than
         * growing our memory; the page reloads the alerts when its event
         * stream reconnects. */
        struct evhttp_connection *evcon = evhttp_request_get_connection(c->req);
        struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
        if (!bev || evbuffer_get_length(bufferevent_get_output(bev)) > SSE_MAX_BACKLOG)
            continue;
        struct evbuffer *b = evbuffer_new();
        if (!b)
            continue;
        evbuffer_add(b, s, n);
        evhttp_send_reply_chunk(c->req, b);
        evbuffer_free(b);
    }
}

static void sse_closed(struct evhttp_connection *evcon, void *arg)
{
    struct sse_client *c = arg;
    struct dash_http *h = c->h;
    for (struct sse_client **p = &h->clients; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            h->nclients--;
            break;
        }
    /* A client that went away leaves the request to us (libevent detaches
     * a request whose reply is still open); at shutdown the closecb is
     * cleared first and the connection frees its requests itself. */
    if (!evhttp_request_get_connection(c->req))
        evhttp_request_free(c->req);
    free(c);
}

static void on_keepalive(evutil_socket_t fd, short what, void *arg)
{
    static const char ka[] = ": keepalive\n\n";
    sse_send(arg, ka, sizeof(ka) - 1);
}

void dash_http_notify(void *ctx, const struct dash_val *entry, int up)
{
    struct dash_http *h = ctx;
    struct jbuf jb;
    jbuf_init(&jb);
    json_raw(&jb, entry ? "event: alert\ndata: " : "event: redis\ndata: ", entry ? 19 : 19);
    if (entry) {
        if (entry_ok(entry))
            json_entry(&jb, entry);
    } else {
        json_obj_open(&jb);
        json_kv_bool(&jb, "up", up);
        json_obj_close(&jb);
    }
    json_raw(&jb, "\n\n", 2);
    /* json.h escapes control bytes, so the data line holds no newline. */
    if (jbuf_ok(&jb))
        sse_send(h, jb.buf, jb.len);
    jbuf_free(&jb);
}

static void serve_events(struct dash_http *h, struct evhttp_request *req)
{
    /* An event stream holds its connection for good and is never pushed
     * out at the cap: half the cap at most, so streams cannot take every
     * connection. */
    struct dash_conn_stats st;
    dash_conns_stats(h->conns, &st);
    if (h->nclients >= (st.max + 1) / 2) {
        send_error(req, 503, "too many event streams");
        return;
    }
    struct sse_client *c = calloc(1, sizeof(*c));
    if (!c) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    c->h = h;
    c->req = req;
    struct evkeyvalq *hd = evhttp_request_get_output_headers(req);
    evhttp_add_header(hd, "Content-Type", "text/event-stream; charset=utf-8");
    evhttp_add_header(hd, "Cache-Control", "no-store");
    evhttp_add_header(hd, "X-Accel-Buffering", "no");
    evhttp_send_reply_start(req, 200, "OK");
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), sse_closed, c);
    c->next = h->clients;
    h->clients = c;
    h->nclients++;
    char hello[64];
    int n = snprintf(hello, sizeof(hello), "retry: 2000\nevent: redis\ndata: {\"up\":%s}\n\n",
                     dash_redis_up(*h->redis) ? "true" : "false");
    struct evbuffer *b = evbuffer_new();
    if (b) {
        evbuffer_add(b, hello, (size_t)n);
        evhttp_send_reply_chunk(req, b);
        evbuffer_free(b);
    }
}

/* ---- static files -------------------------------------------------------------- */

static const char *content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},  {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},    {".json", "application/json; charset=utf-8"},
        {".svg", "image/svg+xml"},              {".png", "image/png"},
        {".ico", "image/x-icon"},               {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < EGR_ARRAY_LEN(types); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return NULL;
}

/* Only names made of [A-Za-z0-9._-] segments that do not start with '.':
 * no "..", no hidden files, no encoded tricks (the path is decoded first). */
static int static_path_ok(const char *p)
{
    if (*p != '/')
        return 0;
    for (const char *seg = p + 1; *seg;) {
        if (*seg == '.' || *seg == '/')
            return 0;
        const char *e = seg;
        for (; *e && *e != '/'; e++)
            if (!isalnum((unsigned char)*e) && *e != '.' && *e != '-' && *e != '_')
                return 0;
        seg = *e ? e + 1 : e;
    }
    return 1;
}

static void serve_static(struct dash_http *h, struct evhttp_request *req, const char *path)
{
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    const char *type = content_type(path);
    char full[8192];
    if (!static_path_ok(path) || !type ||
        (size_t)snprintf(full, sizeof(full), "%s%s", h->static_dir, path) >= sizeof(full)) {
        evhttp_send_error(req, 404, NULL);
        return;
    }
    int fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > STATIC_MAX_BYTES) {
        if (fd >= 0)
            close(fd);
        evhttp_send_error(req, 404, NULL);
        return;
    }
    struct evbuffer *out = evbuffer_new();
    if (!out || evbuffer_add_file(out, fd, 0, st.st_size) != 0) { /* takes fd */
        if (out)
            evbuffer_free(out);
        evhttp_send_error(req, 500, NULL);
        return;
    }
    struct evkeyvalq *hd = evhttp_request_get_output_headers(req);
    evhttp_add_header(hd, "Content-Type", type);
    /* Revalidate every time: a new build's page must not mix with old scripts. */
    evhttp_add_header(hd, "Cache-Control", "no-cache");
    evhttp_add_header(hd, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(hd, "Content-Security-Policy",
                      "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                      "base-uri 'none'; frame-ancestors 'none'");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

/* ---- routing ------------------------------------------------------------------ */

static int token_eq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = la != lb;
    for (size_t i = 0; i < lb; i++)
        d |= (unsigned char)(a[i % (la ? la : 1)] ^ b[i]);
    return la && d == 0;
}

static int authorized(const struct dash_http *h, struct evhttp_request *req,
                      const struct evkeyvalq *q)
{
    if (!h->token[0])
        return 1;
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (auth && strncmp(auth, "Bearer ", 7) == 0 && token_eq(auth + 7, h->token))
        return 1;
    const char *t = q ? evhttp_find_header(q, "token") : NULL;
    return t && token_eq(t, h->token);
}

/* A decoded path with a NUL or another control byte: the NUL would end
 * the string every later check sees ("/app.js%00/../x" is "/app.js"). */
static int path_has_ctl(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
            return 1;
    return 0;
}

static void route(struct evhttp_request *req, void *arg)
{
    struct dash_http *h = arg;
    dash_conns_request(h->conns, req);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
        evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
        send_error(req, 405, "method not allowed");
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *raw = uri ? evhttp_uri_get_path(uri) : NULL;
    /* The token first, from the header alone, before any decoding or
     * Redis work (a ?token= still needs the query parsed below). */
    int authed = authorized(h, req, NULL);
    size_t plen = 0;
    char *path = raw ? evhttp_uridecode(raw, 0, &plen) : NULL;
    if (!path || path_has_ctl(path, plen)) {
        free(path);
        send_error(req, 400, "bad path");
        return;
    }
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    const char *query = evhttp_uri_get_query(uri);
    if (query && evhttp_parse_query_str(query, &q) != 0) {
        evhttp_clear_headers(&q);
        TAILQ_INIT(&q);
    }
    int is_api = strncmp(path, "/api/", 5) == 0 || strcmp(path, "/healthz") == 0;
    if (!is_api) {
        serve_static(h, req, path);
    } else if (!authed && !authorized(h, req, &q)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"egressd-dashboard\"");
        send_error(req, 401, "unauthorized");
    } else if (strcmp(path, "/healthz") == 0) {
        struct jbuf jb;
        jbuf_init(&jb);
        json_obj_open(&jb);
        json_kv_str(&jb, "status", "ok");
        json_kv_bool(&jb, "redis", dash_redis_up(*h->redis));
        struct dash_conn_stats st;
        dash_conns_stats(h->conns, &st);
        json_kv_obj(&jb, "connections");
        json_kv_u64(&jb, "open", st.open);
        json_kv_u64(&jb, "max", st.max);
        json_kv_u64(&jb, "closed_late", st.late);
        json_kv_u64(&jb, "pushed_out", st.evicted);
        json_kv_u64(&jb, "accept_errors", st.accept_errors);
        json_obj_close(&jb);
        json_obj_close(&jb);
        send_json(req, 200, &jb);
        jbuf_free(&jb);
    } else if (strcmp(path, "/api/events") == 0) {
        serve_events(h, req);
    } else if (!dash_redis_up(*h->redis)) {
        send_unavailable(req);
    } else if (strcmp(path, "/api/assets") == 0) {
        start_job(h, req, JOB_ASSETS);
    } else if (strcmp(path, "/api/protocols") == 0) {
        start_job(h, req, JOB_PROTOCOLS);
    } else if (strcmp(path, "/api/countries") == 0) {
        start_job(h, req, JOB_COUNTRIES);
    } else if (strcmp(path, "/api/alerts") == 0 || strcmp(path, "/api/flows") == 0 ||
               strcmp(path, "/api/sensors") == 0) {
        struct simple *s = calloc(1, sizeof(*s));
        if (!s) {
            evhttp_send_error(req, 500, NULL);
            goto out;
        }
        s->h = h;
        s->req = req;
        char key[300], count[16];
        const char *prefix = dash_redis_prefix(*h->redis);
        struct dash_batch *b;
        if (path[5] == 'a') {
            const char *c = evhttp_find_header(&q, "count");
            long n = c ? strtol(c, NULL, 10) : 50;
            n = n < 1 ? 1 : n > 1000 ? 1000 : n;
            snprintf(count, sizeof(count), "%ld", n);
            snprintf(key, sizeof(key), "%s:alerts", prefix);
            b = dash_batch_new(*h->redis, cb_alerts, s);
            dash_batch_cmdv(b, "XREVRANGE", key, "+", "-", "COUNT", count, NULL);
        } else if (path[5] == 'f') {
            const char *src = evhttp_find_header(&q, "src");
            const char *dest = evhttp_find_header(&q, "dest");
            if (!src || !dest || strlen(src) >= sizeof(s->src) || strlen(dest) >= sizeof(s->dest)) {
                free(s);
                send_error(req, 400, "src and dest (addresses) are required");
                goto out;
            }
            strcpy(s->src, src);
            strcpy(s->dest, dest);
            s->limit = 100;
            snprintf(key, sizeof(key), "%s:flows", prefix);
            snprintf(count, sizeof(count), "%d", FLOW_SCAN);
            b = dash_batch_new(*h->redis, cb_flows, s);
            dash_batch_cmdv(b, "XREVRANGE", key, "+", "-", "COUNT", count, NULL);
        } else {
            snprintf(key, sizeof(key), "%s:sensors", prefix);
            b = dash_batch_new(*h->redis, cb_sensor_ids, s);
            dash_batch_cmdv(b, "SMEMBERS", key, NULL);
        }
        dash_batch_run(b);
    } else {
        send_error(req, 404, "no such endpoint");
    }
out:
    evhttp_clear_headers(&q);
    free(path);
}

int dash_http_new(struct event_base *base, struct dash_redis **redis,
                  const struct dash_http_opts *o, struct dash_http **out, struct egr_err *err)
{
    struct dash_http *h = calloc(1, sizeof(*h));
    if (!h)
        return egr_fail(err, EGR_ENOMEM, "out of memory");
    h->base = base;
    h->redis = redis;
    snprintf(h->token, sizeof(h->token), "%s", o->token ? o->token : "");
    snprintf(h->static_dir, sizeof(h->static_dir), "%s", o->static_dir);
    h->http = evhttp_new(base);
    h->keepalive = event_new(base, -1, EV_PERSIST, on_keepalive, h);
    if (!h->http || !h->keepalive) {
        dash_http_free(h);
        return egr_fail(err, EGR_ENOMEM, "out of memory");
    }
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_timeout(h->http, 120);
    evhttp_set_max_headers_size(h->http, 16384);
    evhttp_set_max_body_size(h->http, 0);
    evhttp_set_gencb(h->http, route, h);
    h->conns = dash_conns_new(base, h->http, o->max_conns, o->request_timeout);
    if (!h->conns) {
        dash_http_free(h);
        return egr_fail(err, EGR_ENOMEM, "out of memory");
    }
    /* Our own listener, so that its accept() errors come to dash-conn.c
     * rather than to libevent's log on every loop iteration. */
    struct evutil_addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_NUMERICSERV;
    char port[8];
    snprintf(port, sizeof(port), "%d", o->listen_port);
    int gai = evutil_getaddrinfo(o->listen_host, port, &hints, &ai);
    if (gai != 0 || !ai) {
        dash_http_free(h);
        return egr_fail(err, EGR_EIO, "cannot listen on %s:%d: %s", o->listen_host,
                        o->listen_port, evutil_gai_strerror(gai));
    }
    struct evconnlistener *lev = evconnlistener_new_bind(
        base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 128,
        ai->ai_addr, (int)ai->ai_addrlen);
    int e = errno;
    evutil_freeaddrinfo(ai);
    if (!lev || !evhttp_bind_listener(h->http, lev)) {
        if (lev)
            evconnlistener_free(lev);
        dash_http_free(h);
        return egr_fail(err, EGR_EIO, "cannot listen on %s:%d: %s", o->listen_host,
                        o->listen_port, strerror(e));
    }
    dash_conns_listen(h->conns, lev);
    struct timeval tv = {KEEPALIVE_S, 0};
    event_add(h->keepalive, &tv);
    *out = h;
    return EGR_OK;
}

void dash_http_free(struct dash_http *h)
{
    if (!h)
        return;
    while (h->clients) {
        struct sse_client *c = h->clients;
        h->clients = c->next;
        evhttp_connection_set_closecb(evhttp_request_get_connection(c->req), NULL, NULL);
        evhttp_send_reply_end(c->req);
        free(c);
    }
    if (h->keepalive)
        event_free(h->keepalive);
    if (h->conns)
        dash_conns_detach(h->conns);
    if (h->http)
        evhttp_free(h->http);
    dash_conns_free(h->conns);
    free(h);
}

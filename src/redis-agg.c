/* redis-agg.c - live aggregates summed in memory (see redis-agg.h).
 *
 * An entry is one sum: (bucket, metric, dimension, member) for the hashes,
 * (bucket, dests|top, asset, destination) for the HyperLogLogs and sorted
 * sets. Entries live in a fixed array, found through an open-addressing
 * index of twice their number, with their names in a fixed byte arena;
 * flushing sorts the entries so that those of one Redis key are adjacent,
 * writes their commands and the key's EXPIRE, and empties everything in one
 * step. No allocation after redis_agg_new().
 */
#define _GNU_SOURCE /* qsort_r */
#include "egressd/redis-agg.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "egressd/eve.h"
#include "egressd/hash.h"

/* Metrics, in the order a flush writes them. */
enum { M_BYTES, M_FLOWS, M_DESTS, M_TOP };
/* Dimensions of the bytes/flows hashes. */
enum { D_ASSET, D_ROLE, D_PROTO, D_COUNTRY, D_ASN, D_NONE };

static const char *const metric_name[] = {"bytes", "flows", "dests", "top"};
static const char *const dim_name[] = {"asset", "role", "proto", "country", "asn", ""};

/* Names are at most a record field (REC_NAME_MAX); the arena is sized for
 * this many bytes per entry on average and says "full" before overflowing. */
#define ARENA_PER_ENTRY 64u
#define PFADD_MAX_MEMBERS 100u
/* A record adds at most 13 entries of two names each. */
#define RECORD_ENTRIES_MAX 13u
#define RECORD_NAMES_MAX (RECORD_ENTRIES_MAX * 2u * REC_NAME_MAX)

struct entry {
    uint64_t bucket;
    uint64_t value;   /* bytes or flows summed; unused for dests */
    uint32_t off;     /* arena offset of `a` then `b` */
    uint16_t alen;    /* hashes: the member; dests/top: the asset */
    uint16_t blen;    /* dests/top: the destination */
    uint8_t metric, dim;
};

struct redis_agg {
    struct entry *ent;
    uint32_t n, max;
    uint32_t *index;  /* entry number + 1; 0 = empty */
    uint32_t mask;
    char *arena;
    uint32_t used, cap;
    uint32_t *order;  /* flush: entries sorted by key */
};

int redis_agg_new(uint32_t max_entries, struct redis_agg **out, struct egr_err *err)
{
    if (max_entries < 16)
        max_entries = 16;
    if (max_entries > (1u << 24))
        max_entries = 1u << 24;
    uint32_t slots = 32;
    while (slots < max_entries * 2u)
        slots <<= 1;
    struct redis_agg *a = calloc(1, sizeof(*a));
    if (a) {
        a->max = max_entries;
        a->mask = slots - 1;
        /* Plus the most one record can need, so a fresh table takes any. */
        a->cap = max_entries * ARENA_PER_ENTRY + RECORD_NAMES_MAX;
        a->ent = malloc(sizeof(*a->ent) * max_entries);
        a->order = malloc(sizeof(*a->order) * max_entries);
        a->index = calloc(slots, sizeof(*a->index));
        a->arena = malloc(a->cap);
    }
    if (!a || !a->ent || !a->order || !a->index || !a->arena) {
        redis_agg_free(a);
        return egr_fail(err, EGR_ENOMEM, "redis: out of memory for the aggregate table");
    }
    *out = a;
    return EGR_OK;
}

void redis_agg_free(struct redis_agg *a)
{
    if (!a)
        return;
    free(a->ent);
    free(a->order);
    free(a->index);
    free(a->arena);
    free(a);
}

uint32_t redis_agg_count(const struct redis_agg *a)
{
    return a->n;
}

static uint64_t hash_bytes(uint64_t h, const char *p, size_t n)
{
    /* FNV-1a over the bytes, then the shared finalizer. */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    return h;
}

static int same(const struct redis_agg *a, const struct entry *e, uint64_t bucket, int metric,
                int dim, const char *x, size_t xl, const char *y, size_t yl)
{
    return e->bucket == bucket && e->metric == metric && e->dim == dim && e->alen == xl &&
           e->blen == yl && !memcmp(a->arena + e->off, x, xl) &&
           !memcmp(a->arena + e->off + xl, y, yl);
}

/* Finds or makes the entry; NULL when full. */
static struct entry *slot(struct redis_agg *a, uint64_t bucket, int metric, int dim, const char *x,
                          size_t xl, const char *y, size_t yl)
{
    uint64_t h = 0xcbf29ce484222325ull ^ bucket ^ ((uint64_t)metric << 56) ^ ((uint64_t)dim << 48);
    h = hash_bytes(h, x, xl);
    h = hash_bytes(h ^ 0xff, y, yl);
    uint32_t i = (uint32_t)hash_mix64(h) & a->mask;
    for (;; i = (i + 1) & a->mask) {
        uint32_t k = a->index[i];
        if (!k)
            break;
        struct entry *e = &a->ent[k - 1];
        if (same(a, e, bucket, metric, dim, x, xl, y, yl))
            return e;
    }
    if (a->n >= a->max || a->cap - a->used < xl + yl)
        return NULL;
    struct entry *e = &a->ent[a->n];
    *e = (struct entry){.bucket = bucket, .off = a->used, .alen = (uint16_t)xl,
                        .blen = (uint16_t)yl, .metric = (uint8_t)metric, .dim = (uint8_t)dim};
    memcpy(a->arena + a->used, x, xl);
    memcpy(a->arena + a->used + xl, y, yl);
    a->used += (uint32_t)(xl + yl);
    a->index[i] = ++a->n;
    return e;
}

/* Room for every entry a record can add, so a record is added whole or
 * not at all. */
static int room_for_record(const struct redis_agg *a)
{
    return a->n + RECORD_ENTRIES_MAX <= a->max && a->cap - a->used >= RECORD_NAMES_MAX;
}

static void add(struct redis_agg *a, uint64_t bucket, int metric, int dim, const char *x,
                size_t xl, const char *y, size_t yl, uint64_t v)
{
    struct entry *e = slot(a, bucket, metric, dim, x, xl, y, yl);
    if (e) /* cannot fail after room_for_record() */
        e->value += v;
}

static void add_dim(struct redis_agg *a, uint64_t bucket, int dim, const char *m, size_t ml,
                    uint64_t bytes, int first)
{
    if (ml == 0)
        return;
    add(a, bucket, M_BYTES, dim, m, ml, "", 0, bytes);
    if (first)
        add(a, bucket, M_FLOWS, dim, m, ml, "", 0, 1);
}

int redis_agg_add(struct redis_agg *a, const struct flow_record *r)
{
    if (!room_for_record(a))
        return 0;
    const struct rec_enrich *e = &r->enrich;
    uint64_t bucket = redis_schema_bucket(r->emit_us);
    /* Interim records carry the bytes since the previous record, so bytes
     * add up per record; a flow is counted once, at its first record. */
    uint64_t bytes = r->bytes_toserver + r->bytes_toclient;
    int first = r->seq == 0;

    /* The local end: the inventory's asset name, else the initiator's
     * address (egress flows start inside). */
    char local[INET6_ADDRSTRLEN > sizeof(e->asset) ? INET6_ADDRSTRLEN : sizeof(e->asset)];
    size_t llen = strnlen(e->asset, sizeof(e->asset));
    if (llen) {
        memcpy(local, e->asset, llen);
    } else {
        eve_format_ip(r->family, r->src_ip, local, sizeof(local));
        llen = strlen(local);
    }
    /* The remote end as a dashboard names it: its name when known. */
    char dip[INET6_ADDRSTRLEN];
    const char *dest = e->dest_name;
    size_t dlen = strnlen(e->dest_name, sizeof(e->dest_name));
    if (!dlen) {
        eve_format_ip(r->family, r->dst_ip, dip, sizeof(dip));
        dest = dip;
        dlen = strlen(dip);
    }

    add_dim(a, bucket, D_ASSET, local, llen, bytes, first);
    add_dim(a, bucket, D_ROLE, e->role, strnlen(e->role, sizeof(e->role)), bytes, first);
    if (r->ndpi.proto[0])
        add_dim(a, bucket, D_PROTO, r->ndpi.proto, strnlen(r->ndpi.proto, sizeof(r->ndpi.proto)),
                bytes, first);
    else
        add_dim(a, bucket, D_PROTO, "Unknown", 7, bytes, first);
    if (e->has_country)
        add_dim(a, bucket, D_COUNTRY, e->country, strnlen(e->country, sizeof(e->country)), bytes,
                first);
    if (e->has_asn) {
        char asn[16];
        size_t n = 0;
        uint32_t v = e->asn;
        char t[16];
        do {
            t[n++] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        for (size_t i = 0; i < n; i++)
            asn[i] = t[n - 1 - i];
        add_dim(a, bucket, D_ASN, asn, n, bytes, first);
    }
    add(a, bucket, M_DESTS, D_NONE, local, llen, dest, dlen, 0);
    add(a, bucket, M_TOP, D_NONE, local, llen, dest, dlen, bytes);
    return 1;
}

/* ---- flush ---------------------------------------------------------------- */

/* The Redis key of an entry: (bucket, metric, dim) for hashes, (bucket,
 * metric, asset) for the others. Then the member, for a stable order. */
static int by_key(const void *pa, const void *pb, void *arg)
{
    const struct redis_agg *sorting = arg;
    const struct entry *x = &sorting->ent[*(const uint32_t *)pa];
    const struct entry *y = &sorting->ent[*(const uint32_t *)pb];
    if (x->bucket != y->bucket)
        return x->bucket < y->bucket ? -1 : 1;
    if (x->metric != y->metric)
        return x->metric - y->metric;
    if (x->dim != y->dim)
        return x->dim - y->dim;
    size_t n = x->alen < y->alen ? x->alen : y->alen;
    int c = memcmp(sorting->arena + x->off, sorting->arena + y->off, n);
    if (c || x->alen != y->alen)
        return c ? c : (x->alen < y->alen ? -1 : 1);
    n = x->blen < y->blen ? x->blen : y->blen;
    c = memcmp(sorting->arena + x->off + x->alen, sorting->arena + y->off + y->alen, n);
    return c ? c : (x->blen < y->blen ? -1 : x->blen > y->blen);
}

static int same_key(const struct redis_agg *a, const struct entry *x, const struct entry *y)
{
    if (x->bucket != y->bucket || x->metric != y->metric || x->dim != y->dim)
        return 0;
    if (x->metric == M_BYTES || x->metric == M_FLOWS)
        return 1;
    return x->alen == y->alen && !memcmp(a->arena + x->off, a->arena + y->off, x->alen);
}

struct out {
    struct rcmd_buf *b;
    void (*emit)(void *arg, struct rcmd_buf *b);
    void *arg;
    unsigned records;
};

/* Starts a command, first handing over a record that is full. */
static void begin(struct out *o, unsigned cmds_needed)
{
    if (o->b->ncmd + cmds_needed > RCMD_MAX_CMDS) {
        o->emit(o->arg, o->b);
        o->records++;
        rcmd_reset(o->b, RCMD_AGG);
    }
    rcmd_begin(o->b);
}

static void expire(struct rcmd_buf *b, const char *key, size_t kl, uint32_t ttl)
{
    rcmd_begin(b);
    rcmd_arg_str(b, "EXPIRE");
    rcmd_arg(b, key, kl);
    rcmd_arg_u64(b, ttl);
    rcmd_end(b);
}

unsigned redis_agg_flush(struct redis_agg *a, const struct redis_schema *sc, struct rcmd_buf *b,
                         void (*emit)(void *arg, struct rcmd_buf *b), void *arg)
{
    if (a->n == 0)
        return 0;
    for (uint32_t i = 0; i < a->n; i++)
        a->order[i] = i;
    qsort_r(a->order, a->n, sizeof(*a->order), by_key, a);

    struct out o = {b, emit, arg, 0};
    rcmd_reset(b, RCMD_AGG);
    char key[1024];
    for (uint32_t i = 0; i < a->n;) {
        const struct entry *k = &a->ent[a->order[i]];
        const char *part = k->metric <= M_FLOWS ? dim_name[k->dim] : a->arena + k->off;
        size_t plen = k->metric <= M_FLOWS ? strlen(part) : k->alen;
        size_t kl = redis_schema_agg_key(sc, key, sizeof(key), k->bucket, metric_name[k->metric],
                                         part, plen);
        uint32_t j = i;
        if (k->metric == M_DESTS) {
            /* One PFADD per PFADD_MAX_MEMBERS destinations. */
            while (j < a->n && same_key(a, k, &a->ent[a->order[j]])) {
                begin(&o, 2);
                rcmd_arg_str(b, "PFADD");
                rcmd_arg(b, key, kl);
                for (unsigned m = 0; m < PFADD_MAX_MEMBERS && j < a->n &&
                                     same_key(a, k, &a->ent[a->order[j]]);
                     m++, j++) {
                    const struct entry *e = &a->ent[a->order[j]];
                    rcmd_arg(b, a->arena + e->off + e->alen, e->blen);
                }
                rcmd_end(b);
            }
        } else {
            for (; j < a->n && same_key(a, k, &a->ent[a->order[j]]); j++) {
                const struct entry *e = &a->ent[a->order[j]];
                begin(&o, 2);
                if (e->metric == M_TOP) {
                    rcmd_arg_str(b, "ZINCRBY");
                    rcmd_arg(b, key, kl);
                    rcmd_arg_u64(b, e->value);
                    rcmd_arg(b, a->arena + e->off + e->alen, e->blen);
                } else {
                    rcmd_arg_str(b, "HINCRBY");
                    rcmd_arg(b, key, kl);
                    rcmd_arg(b, a->arena + e->off, e->alen);
                    rcmd_arg_u64(b, e->value);
                }
                rcmd_end(b);
            }
        }
        /* The key's EXPIRE after its last update (begin() reserved room
         * for it, so it never starts a record on its own). */
        expire(b, key, kl, sc->aggregate_ttl);
        i = j;
    }
    /* The newest minute with aggregates, for readers that must find "the
     * last hour" of a replay whose final records were not egress (the
     * dashboard). One small sorted set, trimmed and expiring with them. */
    uint64_t newest = a->ent[a->order[a->n - 1]].bucket;
    size_t kl = redis_schema_buckets_key(sc, key, sizeof(key));
    begin(&o, 3);
    rcmd_arg_str(b, "ZADD");
    rcmd_arg(b, key, kl);
    rcmd_arg_u64(b, newest);
    rcmd_arg_u64(b, newest);
    rcmd_end(b);
    rcmd_begin(b);
    rcmd_arg_str(b, "ZREMRANGEBYRANK");
    rcmd_arg(b, key, kl);
    rcmd_arg_str(b, "0");
    rcmd_arg_str(b, "-101"); /* the newest 100 minutes stay */
    rcmd_end(b);
    expire(b, key, kl, sc->aggregate_ttl);
    if (b->ncmd) {
        emit(arg, b);
        o.records++;
    }
    a->n = 0;
    a->used = 0;
    memset(a->index, 0, sizeof(*a->index) * ((size_t)a->mask + 1));
    return o.records;
}

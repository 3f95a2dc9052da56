/* policy-alerts.c - the alert state every worker shares: deduplication by
 * alert_key with a suppression window, the rate limit, and the per-asset
 * volume windows of the exfiltration check.
 *
 * Workers raise alerts from their own threads, so nothing here is guarded
 * by one lock:
 *   - the dedup table is split into DEDUP_SHARDS shards by key, each with
 *     its own mutex, LRU list and open-addressing index; an alert takes the
 *     lock of its key's shard for a few lookups and copies;
 *   - the rate limit is one small mutex taken only when an alert is about
 *     to be written (alerts are rare next to records);
 *   - volume windows are a fixed table of slots found without a lock (the
 *     slot's asset hash is claimed with a compare-and-swap) and updated
 *     under a per-slot spin lock, since they are touched per packet of a
 *     named asset's egress flows;
 *   - counters are atomics.
 * The alert event itself is formatted by the caller after the locks are
 * released, into the caller's own scratch record.
 */
#include <gcrypt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egressd/hash.h"
#include "policy-int.h"

#define DEDUP_SHARDS 16u
#define SHARD_MAX (DEDUP_MAX / DEDUP_SHARDS) /* keys per shard */
#define SHARD_SLOTS (2u * SHARD_MAX)         /* index size, power of two */

struct dedup {
    uint8_t key[20];
    uint64_t first_seen, last_seen, last_emit;
    uint64_t count, reported;
    int32_t prev, next;          /* LRU list, most recent at head */
    struct alert_record *pending; /* latest unreported match, or NULL */
};

struct shard {
    pthread_mutex_t mu;
    struct dedup *dd;            /* SHARD_MAX entries */
    int32_t *index;              /* SHARD_SLOTS, -1 empty */
    uint32_t used;
    int32_t lru_head, lru_tail;
};

struct exfil {
    _Atomic uint64_t hash;       /* of the asset name; 0 = free slot */
    atomic_flag busy;            /* spin lock over the fields below */
    uint64_t window_start, bytes;
    uint64_t alerted_window;     /* window_start of the window that alerted, +1 */
};

struct policy_state {
    struct shard sh[DEDUP_SHARDS];
    pthread_mutex_t rl_mu;
    uint64_t rl_second;          /* rate limit: current second of packet time */
    uint32_t rl_count;
    struct exfil *ex;            /* EXFIL_MAX slots */
    struct learn_set *learned;
    atomic_uint_fast64_t alerts, alerts_first, suppressed, rate_limited, dedup_evicted;
};

static pthread_once_t gcry_once = PTHREAD_ONCE_INIT;
static void gcry_init(void)
{
    (void)gcry_check_version(NULL);
    gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
    gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
}

struct policy_state *policy_state_new(void)
{
    pthread_once(&gcry_once, gcry_init);
    struct policy_state *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    pthread_mutex_init(&st->rl_mu, NULL);
    int ok = 1;
    for (unsigned s = 0; s < DEDUP_SHARDS; s++) {
        struct shard *sh = &st->sh[s];
        pthread_mutex_init(&sh->mu, NULL);
        sh->dd = calloc(SHARD_MAX, sizeof(*sh->dd));
        sh->index = malloc(SHARD_SLOTS * sizeof(*sh->index));
        if (!sh->dd || !sh->index) {
            ok = 0;
            continue;
        }
        for (uint32_t i = 0; i < SHARD_SLOTS; i++)
            sh->index[i] = -1;
        sh->lru_head = sh->lru_tail = -1;
    }
    st->ex = calloc(EXFIL_MAX, sizeof(*st->ex));
    st->learned = pol_learn_new();
    if (!ok || !st->ex || !st->learned) {
        policy_state_free(st);
        return NULL;
    }
    for (uint32_t i = 0; i < EXFIL_MAX; i++)
        atomic_flag_clear(&st->ex[i].busy);
    return st;
}

void policy_state_free(struct policy_state *st)
{
    if (!st)
        return;
    for (unsigned s = 0; s < DEDUP_SHARDS; s++) {
        struct shard *sh = &st->sh[s];
        for (uint32_t i = 0; sh->dd && i < SHARD_MAX; i++)
            free(sh->dd[i].pending);
        free(sh->dd);
        free(sh->index);
        pthread_mutex_destroy(&sh->mu);
    }
    pthread_mutex_destroy(&st->rl_mu);
    free(st->ex);
    pol_learn_free(st->learned);
    free(st);
}

struct learn_set *pol_state_learned(struct policy_state *st)
{
    return st->learned;
}

void policy_state_stats(const struct policy_state *st, struct policy_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->alerts = atomic_load(&st->alerts);
    out->alerts_first = atomic_load(&st->alerts_first);
    out->suppressed = atomic_load(&st->suppressed);
    out->rate_limited = atomic_load(&st->rate_limited);
    out->dedup_evicted = atomic_load(&st->dedup_evicted);
    pol_learn_stats(st->learned, &out->learned, &out->learn_dropped);
}

/* ---- one shard of the dedup table ---------------------------------------- */

static struct shard *shard_of(struct policy_state *st, const uint8_t key[20])
{
    return &st->sh[key[19] % DEDUP_SHARDS];
}

static uint32_t slot_of(const uint8_t key[20])
{
    uint64_t h;
    memcpy(&h, key, 8);
    return (uint32_t)(hash_mix64(h) & (SHARD_SLOTS - 1));
}

static int32_t dd_find(const struct shard *sh, const uint8_t key[20])
{
    for (uint32_t j = slot_of(key);; j = (j + 1) & (SHARD_SLOTS - 1)) {
        int32_t i = sh->index[j];
        if (i < 0)
            return -1;
        if (!memcmp(sh->dd[i].key, key, 20))
            return i;
    }
}

static void lru_unlink(struct shard *sh, int32_t i)
{
    struct dedup *d = &sh->dd[i];
    if (d->prev >= 0)
        sh->dd[d->prev].next = d->next;
    else
        sh->lru_head = d->next;
    if (d->next >= 0)
        sh->dd[d->next].prev = d->prev;
    else
        sh->lru_tail = d->prev;
}

static void lru_push(struct shard *sh, int32_t i)
{
    struct dedup *d = &sh->dd[i];
    d->prev = -1;
    d->next = sh->lru_head;
    if (sh->lru_head >= 0)
        sh->dd[sh->lru_head].prev = i;
    sh->lru_head = i;
    if (sh->lru_tail < 0)
        sh->lru_tail = i;
}

/* Removes entry i from the index (backward-shift deletion keeps probe
 * chains intact without tombstones). */
static void dd_unindex(struct shard *sh, int32_t i)
{
    const uint32_t mask = SHARD_SLOTS - 1;
    uint32_t j = slot_of(sh->dd[i].key);
    while (sh->index[j] != i)
        j = (j + 1) & mask;
    uint32_t hole = j;
    for (uint32_t k = (hole + 1) & mask; sh->index[k] >= 0; k = (k + 1) & mask) {
        uint32_t home = slot_of(sh->dd[sh->index[k]].key);
        /* Can the entry at k move to the hole? Only if its home is not in
         * the (cyclic) range (hole, k]. */
        int between = hole <= k ? (home > hole && home <= k) : (home > hole || home <= k);
        if (!between) {
            sh->index[hole] = sh->index[k];
            hole = k;
        }
    }
    sh->index[hole] = -1;
}

static int32_t dd_insert(struct policy_state *st, struct shard *sh, const uint8_t key[20])
{
    int32_t i;
    if (sh->used < SHARD_MAX) {
        i = (int32_t)sh->used++;
    } else {
        /* Full: forget the shard's least recently matched key. Its pending
         * count is lost with it (counted). */
        i = sh->lru_tail;
        lru_unlink(sh, i);
        dd_unindex(sh, i);
        free(sh->dd[i].pending);
        atomic_fetch_add(&st->dedup_evicted, 1);
    }
    memset(&sh->dd[i], 0, sizeof(sh->dd[i]));
    memcpy(sh->dd[i].key, key, 20);
    uint32_t j = slot_of(key);
    while (sh->index[j] >= 0)
        j = (j + 1) & (SHARD_SLOTS - 1);
    sh->index[j] = i;
    lru_push(sh, i);
    return i;
}

/* ---- raising ------------------------------------------------------------- */

void pol_alert_key(unsigned kind, const char *asset, const char *dest, const char *service,
                   uint8_t key[20])
{
    pthread_once(&gcry_once, gcry_init);
    /* kind, asset, destination, service: NUL-separated so no value can
     * imitate another split. */
    char keytext[1024];
    int kl = snprintf(keytext, sizeof(keytext), "%s%c%s%c%s%c%s", alert_kind_name(kind), 0,
                      asset, 0, dest, 0, service);
    if (kl < 0 || (size_t)kl >= sizeof(keytext))
        kl = (int)sizeof(keytext) - 1;
    gcry_md_hash_buffer(GCRY_MD_SHA1, key, keytext, (size_t)kl);
}

static int rate_ok(struct policy_state *st, const struct policy_config *pc, uint64_t now_us)
{
    if (!pc->max_per_second)
        return 1;
    uint64_t sec = now_us / 1000000;
    pthread_mutex_lock(&st->rl_mu);
    if (sec != st->rl_second) {
        st->rl_second = sec;
        st->rl_count = 0;
    }
    int ok = st->rl_count < pc->max_per_second;
    if (ok)
        st->rl_count++;
    pthread_mutex_unlock(&st->rl_mu);
    if (!ok)
        atomic_fetch_add(&st->rate_limited, 1);
    return ok;
}

static void hex_key(const uint8_t key[20], char out[41])
{
    static const char hex[] = "0123456789abcdef";
    for (int b = 0; b < 20; b++) {
        out[2 * b] = hex[key[b] >> 4];
        out[2 * b + 1] = hex[key[b] & 15];
    }
    out[40] = '\0';
}

int pol_alert_raise(struct policy_state *st, const struct policy_config *pc,
                    struct alert_record *a, const uint8_t key[20], uint64_t now_us,
                    policy_alert_fn fn, void *arg)
{
    const struct flow_record *rec = &a->flow;
    struct shard *sh = shard_of(st, key);
    pthread_mutex_lock(&sh->mu);
    int32_t i = dd_find(sh, key);
    struct dedup *d = i >= 0 ? &sh->dd[i] : NULL;
    int update = d != NULL;
    if (d) {
        lru_unlink(sh, i);
        lru_push(sh, i);
        d->count++;
        if (rec->last_us > d->last_seen)
            d->last_seen = rec->last_us;
        atomic_fetch_add(&st->suppressed, 1);
        if (now_us < d->last_emit + (uint64_t)pc->suppress * 1000000 ||
            !rate_ok(st, pc, now_us)) {
            /* Inside the window: remember the latest match; its count goes
             * out with the next update (or at the end of the run). */
            if (!d->pending)
                d->pending = malloc(sizeof(*d->pending));
            if (d->pending)
                *d->pending = *a;
            pthread_mutex_unlock(&sh->mu);
            return 0;
        }
    } else {
        if (!rate_ok(st, pc, now_us)) {
            pthread_mutex_unlock(&sh->mu);
            return 0; /* not remembered: the next match may alert */
        }
        i = dd_insert(st, sh, key);
        d = &sh->dd[i];
        d->first_seen = rec->first_us;
        d->last_seen = rec->last_us;
        d->count = 1;
    }
    free(d->pending);
    d->pending = NULL;
    d->last_emit = now_us;
    d->reported = d->count;
    a->ts_us = now_us;
    a->first_seen_us = d->first_seen;
    a->last_seen_us = d->last_seen;
    a->count = d->count;
    a->update = (uint8_t)update;
    pthread_mutex_unlock(&sh->mu);

    hex_key(key, a->alert_key);
    atomic_fetch_add(&st->alerts, 1);
    if (!update)
        atomic_fetch_add(&st->alerts_first, 1);
    fn(arg, a);
    return 1;
}

/* A pending update taken out of the table at the end of a run. */
struct due {
    struct alert_record *a;
    uint64_t last_seen;
};

static int by_last_seen(const void *x, const void *y)
{
    const struct due *a = x, *b = y;
    if (a->last_seen != b->last_seen)
        return a->last_seen < b->last_seen ? -1 : 1;
    return strcmp(a->a->alert_key, b->a->alert_key);
}

void policy_flush(const struct policy *p, struct policy_state *st, uint64_t now_us,
                  policy_alert_fn fn, void *arg)
{
    (void)p;
    /* Updates go out oldest first (by the last match), whichever shard they
     * are in, so the end of a run reads in the order things happened. */
    struct due *due = NULL;
    size_t n = 0, cap = 0;
    for (unsigned s = 0; s < DEDUP_SHARDS; s++) {
        struct shard *sh = &st->sh[s];
        pthread_mutex_lock(&sh->mu);
        for (int32_t i = sh->lru_head; i >= 0; i = sh->dd[i].next) {
            struct dedup *d = &sh->dd[i];
            if (!d->pending || d->count == d->reported)
                continue;
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 64;
                struct due *nd = realloc(due, nc * sizeof(*nd));
                if (!nd)
                    break; /* out of memory: these updates are not written */
                due = nd;
                cap = nc;
            }
            struct alert_record *a = d->pending;
            d->pending = NULL;
            a->ts_us = now_us > d->last_seen ? now_us : d->last_seen;
            a->first_seen_us = d->first_seen;
            a->last_seen_us = d->last_seen;
            a->count = d->count;
            a->update = 1;
            hex_key(d->key, a->alert_key);
            d->reported = d->count;
            d->last_emit = a->ts_us;
            due[n++] = (struct due){a, d->last_seen};
        }
        pthread_mutex_unlock(&sh->mu);
    }
    if (n)
        qsort(due, n, sizeof(*due), by_last_seen);
    for (size_t i = 0; i < n; i++) {
        atomic_fetch_add(&st->alerts, 1);
        fn(arg, due[i].a);
        free(due[i].a);
    }
    free(due);
}

/* ---- volume windows ------------------------------------------------------ */

uint32_t pol_exfil_slot(struct policy_state *st, const char *asset)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *c = asset; *c; c++)
        h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
    h = hash_mix64(h) | 1; /* never 0: 0 marks a free slot */
    for (uint32_t j = (uint32_t)(h & (EXFIL_MAX - 1)), n = 0; n < EXFIL_MAX;
         j = (j + 1) & (EXFIL_MAX - 1), n++) {
        uint64_t cur = atomic_load_explicit(&st->ex[j].hash, memory_order_acquire);
        if (cur == h)
            return j + 1;
        if (cur == 0) {
            uint64_t expect = 0;
            if (atomic_compare_exchange_strong(&st->ex[j].hash, &expect, h) || expect == h)
                return j + 1;
        }
    }
    return 0; /* table full: the asset is not counted */
}

uint64_t pol_exfil_add(struct policy_state *st, uint32_t slot, uint64_t bytes, uint64_t now_us,
                       uint64_t window_us, uint64_t threshold)
{
    if (!slot || slot > EXFIL_MAX)
        return 0;
    struct exfil *x = &st->ex[slot - 1];
    while (atomic_flag_test_and_set_explicit(&x->busy, memory_order_acquire))
        ;
    if (now_us >= x->window_start + window_us || !x->window_start) {
        /* A window starts at the first byte counted after the last one
         * ended, as the record-time check always did. */
        x->window_start = now_us ? now_us : 1;
        x->bytes = 0;
    }
    x->bytes += bytes;
    uint64_t crossed = 0;
    if (x->bytes > threshold && x->alerted_window != x->window_start + 1) {
        x->alerted_window = x->window_start + 1;
        crossed = x->bytes;
    }
    atomic_flag_clear_explicit(&x->busy, memory_order_release);
    return crossed;
}

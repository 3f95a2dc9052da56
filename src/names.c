/* names.c - the passive DNS table: address -> the name the client resolved
 * (see include/egressd/names.h and docs/passive-dns.md).
 *
 * Layout: one array of fixed-size entries allocated by names_new, indexed
 * by uint32_t. Each entry sits on two lists:
 *   - a hash chain from a power-of-two bucket array (the lookup path);
 *   - the age list, least recently learned first (the eviction order).
 * Free entries are chained through the age links; entries never used yet
 * are taken in order from the untouched end of the array. Nothing is allocated
 * after names_new, and no operation walks more than one hash chain plus
 * NAMES_EVICT_SCAN age-list entries.
 *
 * The addresses come from DNS answers, which an attacker can choose, so the
 * bucket hash is keyed with a per-table random seed: colliding addresses
 * cannot be precomputed. The seed changes only where an entry is stored,
 * never what a lookup answers, so replays stay deterministic.
 */
#include "egressd/hash.h"
#include "egressd/names.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define NIL UINT32_MAX
#define US_PER_S 1000000ull
#define TTL_LIMIT_S (30u * 86400u)

struct names_entry {
    uint64_t expire_us;   /* live while now_us < expire_us */
    uint32_t hnext;       /* hash chain */
    uint32_t older, newer; /* age list; free list uses newer */
    uint16_t name_len;
    uint8_t family;       /* 4 or 6; 0 = free */
    uint8_t addr[16];     /* family 4: first 4 bytes, rest zero */
    char name[DNS_NAME_TEXT_MAX + 1];
};

struct names {
    struct names_entry *e;
    uint32_t cap, used;
    uint32_t *buckets;
    uint32_t mask;
    uint32_t oldest, newest; /* age list ends */
    uint32_t free_head;
    uint32_t fresh; /* entries from here on were never used (still zero) */
    uint64_t seed;
    uint64_t ttl_min_us, ttl_max_us;
    struct names_stats st;
};

size_t names_entry_size(void)
{
    return sizeof(struct names_entry);
}

/* ---- keys --------------------------------------------------------------- */


static uint32_t bucket_of(const struct names *t, int family, const uint8_t addr[16])
{
    uint64_t w0, w1;
    memcpy(&w0, addr, 8);
    memcpy(&w1, addr + 8, 8);
    uint64_t h = hash_mix64(t->seed ^ (uint64_t)family);
    h = hash_mix64(h ^ w0);
    h = hash_mix64(h ^ w1 ^ t->seed);
    return (uint32_t)h & t->mask;
}

/* Brings an address to its stored form: IPv4 in the first 4 bytes, the
 * rest zero; IPv4-mapped IPv6 becomes that IPv4 address. 0 for a bad
 * family. */
static int key_of(int family, const uint8_t *addr, uint8_t key[16])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memset(key, 0, 16);
    if (family == 4) {
        memcpy(key, addr, 4);
        return 4;
    }
    if (family != 6)
        return 0;
    if (memcmp(addr, mapped, sizeof(mapped)) == 0) {
        memcpy(key, addr + 12, 4);
        return 4;
    }
    memcpy(key, addr, 16);
    return 6;
}

/* ---- lists -------------------------------------------------------------- */

static void age_unlink(struct names *t, uint32_t i)
{
    struct names_entry *x = &t->e[i];
    if (x->older != NIL)
        t->e[x->older].newer = x->newer;
    else
        t->oldest = x->newer;
    if (x->newer != NIL)
        t->e[x->newer].older = x->older;
    else
        t->newest = x->older;
    x->older = x->newer = NIL;
}

static void age_push_newest(struct names *t, uint32_t i)
{
    struct names_entry *x = &t->e[i];
    x->newer = NIL;
    x->older = t->newest;
    if (t->newest != NIL)
        t->e[t->newest].newer = i;
    else
        t->oldest = i;
    t->newest = i;
}

static uint32_t find(const struct names *t, int family, const uint8_t key[16], uint32_t *bucket)
{
    *bucket = bucket_of(t, family, key);
    for (uint32_t i = t->buckets[*bucket]; i != NIL; i = t->e[i].hnext) {
        const struct names_entry *x = &t->e[i];
        if (x->family == family && memcmp(x->addr, key, 16) == 0)
            return i;
    }
    return NIL;
}

/* Takes entry i off its hash chain and the age list, onto the free list. */
static void drop(struct names *t, uint32_t i)
{
    struct names_entry *x = &t->e[i];
    uint32_t *link = &t->buckets[bucket_of(t, x->family, x->addr)];
    while (*link != i)
        link = &t->e[*link].hnext;
    *link = x->hnext;
    age_unlink(t, i);
    x->family = 0;
    x->hnext = NIL;
    x->newer = t->free_head;
    t->free_head = i;
    t->used--;
}

/* An entry for a new address: a free one, else the first expired entry
 * among the NAMES_EVICT_SCAN oldest, else the oldest. */
static uint32_t take_entry(struct names *t, uint64_t now_us)
{
    if (t->free_head == NIL && t->fresh < t->cap) {
        /* Entries are handed out in order before any is reused, so a table
         * sized for the worst case costs memory only as it fills. */
        uint32_t i = t->fresh++;
        t->e[i].hnext = t->e[i].older = t->e[i].newer = NIL;
        t->used++;
        return i;
    }
    if (t->free_head == NIL) {
        uint32_t victim = t->oldest;
        unsigned seen = 0;
        for (uint32_t i = t->oldest; i != NIL && seen < NAMES_EVICT_SCAN;
             i = t->e[i].newer, seen++) {
            if (t->e[i].expire_us <= now_us) {
                victim = i;
                break;
            }
        }
        if (t->e[victim].expire_us <= now_us)
            t->st.expired++;
        else
            t->st.evictions++;
        drop(t, victim);
    }
    uint32_t i = t->free_head;
    t->free_head = t->e[i].newer;
    t->used++;
    return i;
}

/* ---- API ---------------------------------------------------------------- */

int names_new(uint32_t max_entries, struct names **out, struct egr_err *err)
{
    *out = NULL;
    if (max_entries == 0 || max_entries > NAMES_MAX_ENTRIES)
        return egr_fail(err, EGR_EINVAL, "names: max_entries %u out of range 1..%u",
                        max_entries, NAMES_MAX_ENTRIES);
    struct names *t = calloc(1, sizeof(*t));
    if (!t)
        return egr_fail(err, EGR_ENOMEM, "names: out of memory");
    /* One bucket per entry, rounded up to a power of two: chains stay
     * short at capacity. */
    uint32_t nb = 64;
    while (nb < max_entries)
        nb <<= 1;
    t->e = calloc(max_entries, sizeof(*t->e));
    t->buckets = malloc((size_t)nb * sizeof(*t->buckets));
    if (!t->e || !t->buckets) {
        names_free(t);
        return egr_fail(err, EGR_ENOMEM, "names: out of memory for %u entries", max_entries);
    }
    memset(t->buckets, 0xff, (size_t)nb * sizeof(*t->buckets)); /* all NIL */
    t->cap = max_entries;
    t->mask = nb - 1;
    t->oldest = t->newest = NIL;
    /* No free list yet: take_entry hands out t->e[fresh...] untouched, so
     * calloc's zero pages stay unmapped until a name needs them. */
    t->free_head = NIL;
    t->fresh = 0;
    /* The seed only spreads buckets, so a failed getrandom costs hash
     * flooding resistance, not correctness: fall back to the address. */
    if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != (ssize_t)sizeof(t->seed))
        t->seed = (uint64_t)(uintptr_t)t ^ 0x6e616d6573ull;
    t->ttl_min_us = NAMES_TTL_MIN_DEFAULT * US_PER_S;
    t->ttl_max_us = NAMES_TTL_MAX_DEFAULT * US_PER_S;
    *out = t;
    return EGR_OK;
}

void names_free(struct names *t)
{
    if (!t)
        return;
    free(t->e);
    free(t->buckets);
    free(t);
}

int names_set_ttl(struct names *t, uint32_t min_s, uint32_t max_s, struct egr_err *err)
{
    if (min_s > max_s || max_s > TTL_LIMIT_S)
        return egr_fail(err, EGR_EINVAL,
                        "names: ttl clamp [%u, %u] s invalid (need min <= max <= %u)", min_s,
                        max_s, TTL_LIMIT_S);
    t->ttl_min_us = min_s * US_PER_S;
    t->ttl_max_us = max_s * US_PER_S;
    return EGR_OK;
}

/* Stores (or refreshes) one address -> name mapping. */
static void learn_one(struct names *t, int family, const uint8_t *addr,
                      const struct dns_name *name, uint64_t expire_us, uint64_t now_us)
{
    uint8_t key[16];
    uint32_t b;
    int fam = key_of(family, addr, key);
    if (!fam)
        return;
    uint32_t i = find(t, fam, key, &b);
    if (i == NIL) {
        i = take_entry(t, now_us);
        /* take_entry may have dropped an entry from this very bucket, so
         * the bucket head is read only now. */
        struct names_entry *x = &t->e[i];
        x->family = (uint8_t)fam;
        memcpy(x->addr, key, 16);
        x->hnext = t->buckets[b];
        t->buckets[b] = i;
    } else {
        age_unlink(t, i);
    }
    struct names_entry *x = &t->e[i];
    age_push_newest(t, i);
    x->expire_us = expire_us;
    x->name_len = name->len;
    memcpy(x->name, name->text, name->len);
    x->name[name->len] = '\0';
    t->st.learned++;
}

unsigned names_learn(struct names *t, const struct dns_answers *a, uint64_t now_us)
{
    if (!a->has_question || a->rcode != DNS_RCODE_NOERROR || a->qname.len == 0)
        return 0;
    struct dns_addr_name linked[DNS_ANSWERS_MAX];
    unsigned n = dns_addresses(a, linked);
    unsigned addrs = 0;
    for (unsigned i = 0; i < a->count && i < DNS_ANSWERS_MAX; i++)
        addrs += a->an[i].type == DNS_TYPE_A || a->an[i].type == DNS_TYPE_AAAA;
    t->st.unlinked += addrs - n;

    for (unsigned i = 0; i < n; i++) {
        const struct dns_answer *rr = linked[i].rr;
        uint64_t ttl = (uint64_t)rr->ttl * US_PER_S;
        if (ttl < t->ttl_min_us)
            ttl = t->ttl_min_us;
        if (ttl > t->ttl_max_us)
            ttl = t->ttl_max_us;
        /* Saturate rather than wrap for a packet time near the end of time. */
        uint64_t expire = now_us > UINT64_MAX - ttl ? UINT64_MAX : now_us + ttl;
        learn_one(t, rr->family, rr->addr, linked[i].head, expire, now_us);
    }
    return n;
}

int names_lookup(struct names *t, int family, const uint8_t *addr, uint64_t now_us, char *out,
                 size_t n)
{
    uint8_t key[16];
    uint32_t b;
    if (out && n)
        out[0] = '\0';
    t->st.lookups++;
    int fam = key_of(family, addr, key);
    if (!fam)
        return 0;
    uint32_t i = find(t, fam, key, &b);
    if (i == NIL)
        return 0;
    const struct names_entry *x = &t->e[i];
    if (x->expire_us <= now_us) {
        t->st.expired++;
        drop(t, i);
        return 0;
    }
    if (out && n) {
        size_t k = x->name_len < n - 1 ? x->name_len : n - 1;
        memcpy(out, x->name, k);
        out[k] = '\0';
    }
    t->st.hits++;
    return 1;
}

uint32_t names_count(const struct names *t)
{
    return t->used;
}

const struct names_stats *names_stats(const struct names *t)
{
    return &t->st;
}

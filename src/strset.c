/* strset.c - case-insensitive string set (see strset.h).
 *
 * Keys live in one growable arena as length-prefixed lowercase bytes; the
 * table holds arena offsets (0 = empty) and is kept at most half full, so a
 * probe ends quickly. FNV-1a over the lowercased bytes, finished with the
 * project's 64-bit mixer.
 */
#include "egressd/strset.h"

#include <stdlib.h>
#include <string.h>

#include "egressd/hash.h"

struct strset {
    uint32_t *slots; /* arena offset + 1 of each key, 0 = empty */
    uint32_t nslots; /* power of two */
    uint32_t count;
    char *arena;     /* [len byte][bytes]... */
    size_t used, cap;
};

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static uint64_t key_hash(const char *k, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= lower((unsigned char)k[i]);
        h *= 0x100000001b3ull;
    }
    return hash_mix64(h ^ n);
}

static int key_equal(const struct strset *s, uint32_t slot, const char *k, size_t n)
{
    const char *e = s->arena + slot - 1;
    if ((unsigned char)e[0] != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)e[1 + i] != lower((unsigned char)k[i]))
            return 0;
    return 1;
}

struct strset *strset_new(void)
{
    struct strset *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->nslots = 64;
    s->slots = calloc(s->nslots, sizeof(*s->slots));
    if (!s->slots) {
        free(s);
        return NULL;
    }
    return s;
}

void strset_free(struct strset *s)
{
    if (!s)
        return;
    free(s->slots);
    free(s->arena);
    free(s);
}

static int grow(struct strset *s)
{
    uint32_t n = s->nslots * 2;
    uint32_t *slots = calloc(n, sizeof(*slots));
    if (!slots)
        return EGR_ENOMEM;
    for (uint32_t i = 0; i < s->nslots; i++) {
        uint32_t off = s->slots[i];
        if (!off)
            continue;
        const char *e = s->arena + off - 1;
        uint64_t j = key_hash(e + 1, (unsigned char)e[0]) & (n - 1);
        while (slots[j])
            j = (j + 1) & (n - 1);
        slots[j] = off;
    }
    free(s->slots);
    s->slots = slots;
    s->nslots = n;
    return EGR_OK;
}

int strset_add(struct strset *s, const char *key, size_t n)
{
    if (n == 0 || n > STRSET_KEY_MAX)
        return EGR_EINVAL;
    if (strset_has(s, key, n))
        return EGR_OK;
    if ((s->count + 1) * 2 > s->nslots && grow(s) != EGR_OK)
        return EGR_ENOMEM;
    if (s->used + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        while (cap < s->used + n + 1)
            cap *= 2;
        if (cap > UINT32_MAX - 1)
            return EGR_ENOMEM;
        char *a = realloc(s->arena, cap);
        if (!a)
            return EGR_ENOMEM;
        s->arena = a;
        s->cap = cap;
    }
    char *e = s->arena + s->used;
    e[0] = (char)(unsigned char)n;
    for (size_t i = 0; i < n; i++)
        e[1 + i] = (char)lower((unsigned char)key[i]);
    uint64_t j = key_hash(key, n) & (s->nslots - 1);
    while (s->slots[j])
        j = (j + 1) & (s->nslots - 1);
    s->slots[j] = (uint32_t)s->used + 1;
    s->used += n + 1;
    s->count++;
    return EGR_OK;
}

int strset_has(const struct strset *s, const char *key, size_t n)
{
    if (!s || s->count == 0 || n == 0 || n > STRSET_KEY_MAX)
        return 0;
    uint64_t j = key_hash(key, n) & (s->nslots - 1);
    while (s->slots[j]) {
        if (key_equal(s, s->slots[j], key, n))
            return 1;
        j = (j + 1) & (s->nslots - 1);
    }
    return 0;
}

int strset_has_domain(const struct strset *s, const char *name)
{
    if (!s || s->count == 0 || !name)
        return 0;
    size_t n = strlen(name);
    if (n && name[n - 1] == '.')
        n--;
    const char *p = name;
    while (n) {
        if (strset_has(s, p, n))
            return 1;
        const char *dot = memchr(p, '.', n);
        if (!dot)
            break;
        n -= (size_t)(dot + 1 - p);
        p = dot + 1;
    }
    return 0;
}

uint32_t strset_count(const struct strset *s)
{
    return s ? s->count : 0;
}

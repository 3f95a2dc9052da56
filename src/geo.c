/* geo.c - country/ASN enrichment from MaxMind DB files through
 * libmaxminddb, with a bounded cache (see include/egressd/geo.h and
 * docs/geoip.md for the field rules).
 *
 * The cache is two-way set associative: an address hashes to one set of two
 * entries, and a miss replaces the one used less recently. That is nearly as
 * good as an LRU for the "many flows share a few remote ends" pattern at the
 * cost of one compare more than a direct-mapped table, allocates once at
 * open, and never grows. Negative answers (nothing known) are cached too:
 * they cost a full tree walk in both databases.
 */
#include "egressd/geo.h"

#include <errno.h>
#include <maxminddb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "egressd/netset.h"

struct geo_cache_entry {
    uint8_t addr[16]; /* IPv4 in the first 4 bytes, rest zero */
    uint8_t family;   /* 0 = empty slot */
    uint8_t special;  /* a special-purpose address: nothing to look up */
    struct geo_info info;
};

struct geo {
    MMDB_s country_db;
    MMDB_s asn_db;
    int have_country, have_asn;
    struct geo_cache_entry *cache; /* n_sets * 2 entries; set s = [2s, 2s+1]; mapped */
    size_t cache_bytes;
    uint8_t *mru;                  /* per set: the way used last */
    uint8_t *written;              /* bitmap of the cache's 4 KiB units ever written */
    uint32_t set_mask;
    struct geo_stats st;
};

#define GEO_UNIT_SHIFT 12 /* see unit_written() */

static const uint8_t geo_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

void geo_config_defaults(struct geo_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->cache_size = GEO_CACHE_DEFAULT;
}

static int geo_open_db(const char *path, MMDB_s *db, struct egr_err *err)
{
    int status = MMDB_open(path, MMDB_MODE_MMAP, db);
    int saved_errno = errno;
    if (status == MMDB_SUCCESS)
        return EGR_OK;
    /* MMDB_open has already released *db on failure. */
    if (status == MMDB_FILE_OPEN_ERROR || status == MMDB_IO_ERROR)
        return egr_fail(err, EGR_EIO, "%s: cannot open MaxMind database: %s (%s)", path,
                        MMDB_strerror(status), strerror(saved_errno));
    return egr_fail(err, status == MMDB_OUT_OF_MEMORY_ERROR ? EGR_ENOMEM : EGR_EINVAL,
                    "%s: cannot open MaxMind database: %s", path, MMDB_strerror(status));
}

int geo_open(const struct geo_config *cfg, struct geo **out, struct egr_err *err)
{
    *out = NULL;
    if (strnlen(cfg->country_db, GEO_PATH_MAX) == GEO_PATH_MAX ||
        strnlen(cfg->asn_db, GEO_PATH_MAX) == GEO_PATH_MAX)
        return egr_fail(err, EGR_EINVAL, "geo: database path longer than %d bytes",
                        GEO_PATH_MAX - 1);
    uint32_t want = cfg->cache_size ? cfg->cache_size : GEO_CACHE_DEFAULT;
    if (want > GEO_CACHE_MAX)
        return egr_fail(err, EGR_EINVAL, "geo: cache size %u is over the maximum %u", want,
                        GEO_CACHE_MAX);
    uint32_t entries = 2;
    while (entries < want)
        entries *= 2;

    struct geo *g = calloc(1, sizeof(*g));
    if (!g)
        return egr_fail(err, EGR_ENOMEM, "geo: out of memory");
    /* A mapping of its own: zero without being touched, and page-aligned, so
     * the cache's units are its pages (unit_written()). */
    g->cache_bytes = (size_t)entries * sizeof(*g->cache);
    g->cache = mmap(NULL, g->cache_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->cache == MAP_FAILED)
        g->cache = NULL;
    g->mru = calloc(entries / 2, 1);
    g->written = calloc((g->cache_bytes >> GEO_UNIT_SHIFT) / 8 + 1, 1);
    if (!g->cache || !g->mru || !g->written) {
        geo_free(g);
        return egr_fail(err, EGR_ENOMEM, "geo: out of memory for a %u-entry cache", entries);
    }
    g->set_mask = entries / 2 - 1;

    int rc;
    if (cfg->country_db[0]) {
        if ((rc = geo_open_db(cfg->country_db, &g->country_db, err)) != EGR_OK) {
            geo_free(g);
            return rc;
        }
        g->have_country = 1;
    }
    if (cfg->asn_db[0]) {
        if ((rc = geo_open_db(cfg->asn_db, &g->asn_db, err)) != EGR_OK) {
            geo_free(g);
            return rc;
        }
        g->have_asn = 1;
    }
    *out = g;
    return EGR_OK;
}

void geo_free(struct geo *g)
{
    if (!g)
        return;
    if (g->have_country)
        MMDB_close(&g->country_db);
    if (g->have_asn)
        MMDB_close(&g->asn_db);
    if (g->cache)
        munmap(g->cache, g->cache_bytes);
    free(g->mru);
    free(g->written);
    free(g);
}

const struct geo_stats *geo_stats(const struct geo *g)
{
    return &g->st;
}

/* Finds the record for the address; 0 when the database has none. */
static int geo_find(struct geo *g, const MMDB_s *db, int family, const uint8_t *addr,
                    MMDB_entry_s *entry)
{
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    const struct sockaddr *sa;
    if (family == 4) {
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        memcpy(&sin.sin_addr, addr, 4);
        sa = (const struct sockaddr *)&sin;
    } else {
        memset(&sin6, 0, sizeof(sin6));
        sin6.sin6_family = AF_INET6;
        memcpy(&sin6.sin6_addr, addr, 16);
        sa = (const struct sockaddr *)&sin6;
    }
    int mmdb_error = MMDB_SUCCESS;
    MMDB_lookup_result_s res = MMDB_lookup_sockaddr(db, sa, &mmdb_error);
    if (mmdb_error != MMDB_SUCCESS) {
        /* An IPv6 address in an IPv4-only database simply has no entry. */
        if (mmdb_error != MMDB_IPV6_LOOKUP_IN_IPV4_DATABASE_ERROR)
            g->st.db_errors++;
        return 0;
    }
    if (!res.found_entry)
        return 0;
    *entry = res.entry;
    return 1;
}

/* Reads one value of the given type at path. A missing key, a path that
 * does not fit the record, or another type is "no value"; only damaged data
 * counts as an error. */
static int geo_get(struct geo *g, MMDB_entry_s *entry, const char *const *path,
                   MMDB_entry_data_s *d)
{
    int status = MMDB_aget_value(entry, d, path);
    if (status == MMDB_SUCCESS)
        return d->has_data;
    if (status != MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR &&
        status != MMDB_INVALID_LOOKUP_PATH_ERROR)
        g->st.db_errors++;
    return 0;
}

static int geo_country_code(MMDB_entry_data_s *d, char out[3])
{
    if (d->type != MMDB_DATA_TYPE_UTF8_STRING || d->data_size != 2)
        return 0;
    for (int i = 0; i < 2; i++) {
        char ch = d->utf8_string[i];
        if (ch >= 'a' && ch <= 'z')
            ch = (char)(ch - 'a' + 'A');
        if (ch < 'A' || ch > 'Z')
            return 0;
        out[i] = ch;
    }
    out[2] = '\0';
    return 1;
}

static void geo_read_country(struct geo *g, MMDB_entry_s *entry, struct geo_info *info)
{
    static const char *const maxmind_path[] = {"country", "iso_code", NULL};
    static const char *const flat_path[] = {"country_code", NULL};
    MMDB_entry_data_s d;
    if (geo_get(g, entry, maxmind_path, &d) && geo_country_code(&d, info->country)) {
        info->has_country = 1;
        return;
    }
    if (geo_get(g, entry, flat_path, &d) && geo_country_code(&d, info->country))
        info->has_country = 1;
}

static void geo_read_asn(struct geo *g, MMDB_entry_s *entry, struct geo_info *info)
{
    static const char *const asn_path[] = {"autonomous_system_number", NULL};
    static const char *const org_path[] = {"autonomous_system_organization", NULL};
    MMDB_entry_data_s d;
    if (geo_get(g, entry, asn_path, &d)) {
        uint64_t v = 0;
        if (d.type == MMDB_DATA_TYPE_UINT32)
            v = d.uint32;
        else if (d.type == MMDB_DATA_TYPE_UINT16)
            v = d.uint16;
        else if (d.type == MMDB_DATA_TYPE_UINT64)
            v = d.uint64;
        else if (d.type == MMDB_DATA_TYPE_INT32 && d.int32 > 0)
            v = (uint64_t)d.int32;
        /* AS0 means "not routed" (RFC 7607): not an origin AS. */
        if (v > 0 && v <= UINT32_MAX) {
            info->asn = (uint32_t)v;
            info->has_asn = 1;
        }
    }
    if (geo_get(g, entry, org_path, &d) && d.type == MMDB_DATA_TYPE_UTF8_STRING &&
        d.data_size > 0) {
        size_t n = d.data_size;
        if (n > GEO_ORG_MAX - 1) {
            n = GEO_ORG_MAX - 1;
            /* Cut before a UTF-8 continuation byte, never inside a character. */
            while (n > 0 && ((unsigned char)d.utf8_string[n] & 0xc0) == 0x80)
                n--;
        }
        memcpy(info->as_org, d.utf8_string, n);
        info->as_org[n] = '\0';
        if (info->as_org[0])
            info->has_org = 1;
        else
            memset(info->as_org, 0, sizeof(info->as_org));
    }
}

static uint32_t geo_hash(int family, const uint8_t *addr)
{
    uint64_t h = (uint64_t)family * 0x9e3779b97f4a7c15ull;
    size_t len = family == 4 ? 4 : 16;
    for (size_t i = 0; i < len; i += 4) {
        uint32_t w = (uint32_t)addr[i] << 24 | (uint32_t)addr[i + 1] << 16 |
                     (uint32_t)addr[i + 2] << 8 | addr[i + 3];
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
    }
    h ^= h >> 29;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 32;
    return (uint32_t)h;
}

/* Why the cache tracks what it has written: it is a fresh mapping, and
 * reading a page of it maps the shared zero page; the first write after
 * that is a copy-on-write fault, which flushes the page from every CPU the
 * process runs on (an inter-processor interrupt to each other worker, 7% of
 * a two-worker replay's time). A set in a unit never written is empty
 * without looking, so the first touch of every page is the write that
 * fills it. Units are 4 KiB (GEO_UNIT_SHIFT), no larger than any page, and
 * start where pages start: the mapping is page-aligned. (From calloc, the
 * cache began 16 bytes into its first page, so every unit's last 16 bytes
 * lay in the next page, and a set read there because its unit was written
 * could still map that page's zero page.) */
static int unit_written(const struct geo *g, size_t off)
{
    size_t u = off >> GEO_UNIT_SHIFT;
    return g->written[u / 8] >> (u % 8) & 1;
}

static void mark_written(struct geo *g, size_t off)
{
    size_t u = off >> GEO_UNIT_SHIFT;
    g->written[u / 8] |= (uint8_t)(1u << (u % 8));
}

/* Whether set may hold entries; every write of a set marks both ends. */
static int set_written(const struct geo *g, uint32_t set)
{
    size_t first = (size_t)set * 2 * sizeof(*g->cache);
    return unit_written(g, first) && unit_written(g, first + 2 * sizeof(*g->cache) - 1);
}

static int geo_found(const struct geo_info *info)
{
    return info->has_country || info->has_asn || info->has_org;
}

int geo_lookup(struct geo *g, int family, const uint8_t *addr, struct geo_info *out)
{
    memset(out, 0, sizeof(*out));
    g->st.lookups++;
    if (addr && family == 6 && memcmp(addr, geo_mapped_prefix, sizeof(geo_mapped_prefix)) == 0) {
        family = 4;
        addr += 12;
    }
    if (!addr || (family != 4 && family != 6)) {
        g->st.skipped_special++;
        return 0;
    }

    /* The cache is asked first and remembers special-purpose addresses
     * too: the special-range scan costs more than a cache hit, and every
     * flow is enriched when it is judged and again when it is recorded. */
    uint8_t key[16] = {0};
    memcpy(key, addr, family == 4 ? 4 : 16);
    uint32_t set = geo_hash(family, key) & g->set_mask;
    struct geo_cache_entry *way = &g->cache[(size_t)set * 2];
    int fresh = !set_written(g, set);
    for (int w = 0; !fresh && w < 2; w++) {
        if (way[w].family == family && memcmp(way[w].addr, key, 16) == 0) {
            g->mru[set] = (uint8_t)w;
            if (way[w].special) {
                g->st.skipped_special++;
                return 0;
            }
            g->st.cache_hits++;
            *out = way[w].info;
            return geo_found(out);
        }
    }

    int special = netset_is_special(family, addr);
    if (special) {
        g->st.skipped_special++;
    } else {
        g->st.db_lookups++;
        MMDB_entry_s entry;
        if (g->have_country && geo_find(g, &g->country_db, family, key, &entry))
            geo_read_country(g, &entry, out);
        if (g->have_asn && geo_find(g, &g->asn_db, family, key, &entry))
            geo_read_asn(g, &entry, out);
    }

    int victim;
    if (fresh) {
        size_t first = (size_t)set * 2 * sizeof(*g->cache);
        mark_written(g, first);
        mark_written(g, first + 2 * sizeof(*g->cache) - 1);
        /* Both ways written now (the second as empty), so both units the
         * set may span are touched by a write first. */
        memset(&way[1], 0, sizeof(way[1]));
        victim = 0;
    } else {
        victim = way[0].family == 0 ? 0 : way[1].family == 0 ? 1 : !g->mru[set];
    }
    memcpy(way[victim].addr, key, 16);
    way[victim].family = (uint8_t)family;
    way[victim].special = (uint8_t)special;
    way[victim].info = *out;
    g->mru[set] = (uint8_t)victim;
    return special ? 0 : geo_found(out);
}

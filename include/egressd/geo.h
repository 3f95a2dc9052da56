/* geo.h - country and ASN enrichment of a remote address from MaxMind DB
 * (.mmdb) files through libmaxminddb, with a bounded per-handle cache.
 *
 * Two optional databases: a country database (MaxMind GeoIP2/GeoLite2
 * Country or City layout, or the ip-location-db layout) and an ASN database
 * (GeoLite2-ASN / GeoIP2-ISP layout). Field rules (docs/geoip.md):
 *   country: `country.iso_code`, else top-level `country_code`; never
 *            `registered_country` (that is where the block is registered,
 *            not where it is used);
 *   asn:     `autonomous_system_number` (AS0, "not routed", is no value);
 *   as_org:  `autonomous_system_organization`.
 * A key missing from the record, a record with no entry for the address, or
 * a value of the wrong type is "no value" (has_* = 0), never "" or 0.
 * Special-purpose addresses (netset_is_special) are never looked up, since
 * free databases answer nonsense there; IPv4-mapped IPv6 is looked up as
 * IPv4, since not every database aliases ::ffff:0:0/96.
 *
 * Thread safety: a struct geo is NOT thread safe (the cache and counters
 * are written by every lookup): create one per worker. The databases are
 * mapped read-only, so several handles on the same files share the page
 * cache and cost little beyond their caches.
 */
#ifndef EGRESSD_GEO_H
#define EGRESSD_GEO_H

#include <stdint.h>

#include "egressd/common.h"

#define GEO_PATH_MAX 512
#define GEO_CACHE_DEFAULT 65536u
#define GEO_CACHE_MAX (1u << 24)
#define GEO_ORG_MAX 128

struct geo_config {
    char country_db[GEO_PATH_MAX]; /* "" = no country lookups */
    char asn_db[GEO_PATH_MAX];     /* "" = no ASN/org lookups */
    /* Cache entries (160 bytes each). 0 = GEO_CACHE_DEFAULT; rounded
     * up to a power of two, at most GEO_CACHE_MAX. */
    uint32_t cache_size;
};

/* Empty paths, default cache size. */
void geo_config_defaults(struct geo_config *cfg);

struct geo_info {
    char country[3];           /* ISO 3166-1 alpha-2, upper case, NUL-terminated */
    uint32_t asn;
    char as_org[GEO_ORG_MAX];  /* UTF-8 as stored, NUL-terminated; cut on a
                                  character boundary when longer */
    uint8_t has_country, has_asn, has_org;
};

struct geo_stats {
    uint64_t lookups;         /* geo_lookup calls */
    uint64_t skipped_special; /* of those, special-purpose or bad-family addresses */
    uint64_t cache_hits;      /* of those, answered from the cache */
    uint64_t db_lookups;      /* of those, looked up in the databases */
    uint64_t db_errors;       /* database answers that were corrupt or failed */
};

struct geo;

/* Opens the configured databases. Either path may be empty (that database
 * is not used; both empty is allowed and every lookup answers 0). An
 * unreadable or invalid file fails with
 * "PATH: cannot open MaxMind database: reason" (EGR_EIO for a file that
 * cannot be read, EGR_EINVAL for one that is not a valid database), and
 * EGR_ENOMEM. On success *out owns the handle; free it with geo_free. */
int geo_open(const struct geo_config *cfg, struct geo **out, struct egr_err *err);

/* Closes the databases and frees the handle. NULL is allowed. */
void geo_free(struct geo *g);

/* Looks up one remote address (family 4: 4 bytes, family 6: 16 bytes).
 * *out is always fully written (zeroed when nothing is known). Returns 1 if
 * any of country, asn or as_org was found, else 0 (also for special-purpose
 * addresses, a bad family, and addresses no database knows). Negative
 * answers are cached too. Cannot fail. */
int geo_lookup(struct geo *g, int family, const uint8_t *addr, struct geo_info *out);

/* Counters since geo_open. */
const struct geo_stats *geo_stats(const struct geo *g);

#endif

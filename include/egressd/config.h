/* config.h - the sensor configuration: defaults, YAML loading, validation.
 *
 * Configuration is data: every key is one row of a table in config.c (path,
 * type, bounds, default, field). config_load() reports the first error as
 * "FILE:LINE:COLUMN: KEY: reason".
 */
#ifndef EGRESSD_CONFIG_H
#define EGRESSD_CONFIG_H

#include "egressd/cid.h"
#include "egressd/classify.h"
#include "egressd/common.h"
#include "egressd/flow.h"
#include "egressd/geo.h"
#include "egressd/policy.h"
#include "egressd/sink-redis.h"

struct egr_config {
    struct flow_config flow;         /* flow: */
    struct classify_config classify; /* classify: */
    char json_path[1024];            /* output.json ("" = none) */
    int json_append;                 /* output.append */
    struct geo_config geo;           /* geoip: */
    uint32_t names_max;              /* passive_dns.max_entries */
    uint32_t names_min_ttl;          /* passive_dns.min_ttl (s) */
    uint32_t names_max_ttl;          /* passive_dns.max_ttl (s) */
    struct sink_redis_config redis;  /* redis: */
    struct policy_config policy;     /* home_net, assets, roles, intel, alerts, ... */
};

/* Where scripts/geoip-db.sh installs the default databases. When the
 * geoip keys are left at these defaults and the files are absent, the
 * sensor runs without them (see config_resolve_geo). */
#define CONFIG_GEOIP_DIR "/var/lib/egressd/geoip"
#define CONFIG_COUNTRY_DB_DEFAULT CONFIG_GEOIP_DIR "/geo-whois-asn-country.mmdb"
#define CONFIG_ASN_DB_DEFAULT CONFIG_GEOIP_DIR "/asn.mmdb"

/* Clears a GeoIP path that is still the default and names a missing file,
 * so a machine without the default databases runs without enrichment
 * instead of failing. An explicitly configured path is never touched. */
void config_resolve_geo(struct egr_config *cfg);

/* Fills every field with its documented default. Cannot fail. */
void config_defaults(struct egr_config *cfg);

/* Releases what the configuration holds on the heap (the policy lists).
 * cfg is at its defaults afterwards. */
void config_free(struct egr_config *cfg);

/* Loads YAML file `path` over the current contents of cfg (call
 * config_defaults() first). The policy lists (home_net, assets, roles,
 * default_role, intel) of a file replace earlier ones as a whole. On error returns EGR_EINVAL (or EGR_EIO for an
 * unreadable file) with "path:line:col: key: reason" in err, and cfg is left
 * unchanged. */
int config_load(struct egr_config *cfg, const char *path, struct egr_err *err);

/* The redis section's keys that only mean something together (the URL
 * parses; a prefix; no seeds with a unix socket), as the Redis sink checks
 * them when it opens. config_load() calls it; call it again after changing
 * redis.url (--redis). `where` starts the message ("FILE" or "--redis").
 * EGR_OK or EGR_EINVAL. */
struct sink_redis_config;
int config_check_redis(const struct sink_redis_config *r, const char *where, struct egr_err *err);

#endif

/* config.c - the sensor configuration: defaults and the key table, loaded
 * by the YAML table loader (cfgload.c).
 *
 * Every key is one row of config_keys[] (dotted path, type, bounds, field).
 * The file is loaded whole into a copy of the caller's configuration, which
 * is only replaced when everything parsed: a bad file never leaves a
 * half-applied configuration (the reload rule: build new state, then swap).
 *
 * Keys and defaults: docs/configuration.md.
 */
#include "egressd/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "egressd/classify.h"
#include "egressd/flow.h"
#include "egressd/geo.h"
#include "egressd/names.h"
#include "egressd/redis-cluster.h"
#include "egressd/redis-url.h"
#include "egressd/spool.h"
#include "cfgload.h"
#include "policy-cfg.h"
#include "policy-guard.h"

#include "redis-eve-cfg.h"

#define DAY 86400u

/* ---- redis: keys of their own kind ------------------------------------------ */

/* redis.seeds: a sequence of "host:port" (IPv6 in brackets). */
static int seed_item(struct config_parse *p, size_t i, yaml_node_t *item, void *arg)
{
    struct sink_redis_config *rc = arg;
    char path[64];
    snprintf(path, sizeof(path), "redis.seeds[%zu]", i);
    size_t len;
    const char *v = config_scalar(item, &len);
    if (!v)
        return config_error(p, item, path, "expected host:port, got a %s",
                            item->type == YAML_MAPPING_NODE ? "mapping" : "sequence");
    if (i >= REDIS_SEEDS_MAX)
        return config_error(p, item, "redis.seeds", "more than %d seeds", REDIS_SEEDS_MAX);
    char host[REDIS_CLUSTER_HOST_MAX];
    int port;
    if (len >= REDIS_SEED_LEN || memchr(v, '\0', len) ||
        redis_cluster_endpoint(v, len, host, &port) != EGR_OK || !host[0])
        return config_error(p, item, path,
                            "expected host:port (an IPv6 address in brackets, port 1..65535)");
    memcpy(rc->seeds.v[i], v, len);
    rc->seeds.v[i][len] = '\0';
    rc->seeds.n = (unsigned)i + 1;
    return EGR_OK;
}

static int parse_redis_seeds(struct config_parse *p, yaml_node_t *node, const char *path,
                             void *field)
{
    struct sink_redis_config *rc = (struct sink_redis_config *)(void *)((char *)field -
                                   offsetof(struct sink_redis_config, seeds));
    memset(&rc->seeds, 0, sizeof(rc->seeds));
    size_t len;
    const char *v = config_scalar(node, &len);
    if (v && len == 0)
        return EGR_OK;
    if (v)
        return config_error(p, node, path, "expected a sequence of host:port, e.g. "
                            "[10.0.0.1:6379, 10.0.0.2:6379]");
    return config_each_item(p, node, path, seed_item, rc);
}

static int parse_redis_layout(struct config_parse *p, yaml_node_t *node, const char *path,
                              void *field)
{
    static const char *const names[] = {"auto", "shared", "per_sensor"};
    size_t len;
    const char *v = config_scalar(node, &len);
    for (size_t i = 0; v && i < EGR_ARRAY_LEN(names); i++)
        if (!strcmp(v, names[i])) {
            *(int *)field = (int)i;
            return EGR_OK;
        }
    return config_error(p, node, path, "expected auto, shared or per_sensor");
}

/* redis.spool_fsync: no, everysec or always (enum spool_fsync). */
static int parse_redis_fsync(struct config_parse *p, yaml_node_t *node, const char *path,
                             void *field)
{
    static const char *const names[] = {"no", "everysec", "always"};
    size_t len;
    const char *v = config_scalar(node, &len);
    for (size_t i = 0; v && i < EGR_ARRAY_LEN(names); i++)
        if (!strcmp(v, names[i])) {
            *(int *)field = (int)i;
            return EGR_OK;
        }
    return config_error(p, node, path, "expected no, everysec or always");
}

/* redis.wait_replicas: auto, or a count. */
static int parse_redis_wait(struct config_parse *p, yaml_node_t *node, const char *path,
                            void *field)
{
    size_t len;
    const char *v = config_scalar(node, &len);
    if (v && !strcmp(v, "auto")) {
        *(int32_t *)field = REDIS_WAIT_AUTO;
        return EGR_OK;
    }
    char *end;
    errno = 0;
    unsigned long n = v && len && v[0] >= '0' && v[0] <= '9' ? strtoul(v, &end, 10) : 0;
    if (!v || !len || v[0] < '0' || v[0] > '9' || *end || errno || n > 16)
        return config_error(p, node, path, "expected auto or a number of replicas 0..16");
    *(int32_t *)field = (int32_t)n;
    return EGR_OK;
}

/* redis.url: parsed here as the sink will parse it, so a URL that cannot
 * work fails the load (and --check-config) with its position rather than
 * the start of a run. */
static int parse_redis_url(struct config_parse *p, yaml_node_t *node, const char *path,
                           void *field)
{
    static const struct config_key row = {"redis.url", CONFIG_STRING, 0, 0, 0,
                                           sizeof(((struct sink_redis_config *)0)->url), NULL};
    int rc = config_set_value(p, node, path, &row, field);
    if (rc != EGR_OK || !((char *)field)[0])
        return rc;
    struct redis_endpoint ep;
    struct egr_err e = {""};
    if (redis_url_parse(field, &ep, &e) != EGR_OK) {
        /* "redis.url: reason": the path is ours to add. */
        const char *reason = strncmp(e.msg, "redis.url: ", 11) ? e.msg : e.msg + 11;
        return config_error(p, node, path, "%s", reason);
    }
    return EGR_OK;
}

/* redis.spool_max_bytes: 0 (no spool) or a spool's smallest size and up. */
static int parse_spool_max(struct config_parse *p, yaml_node_t *node, const char *path,
                           void *field)
{
    static const struct config_key row = {"redis.spool_max_bytes", CONFIG_UINT, 0, 1ull << 40,
                                           0, sizeof(uint64_t), NULL};
    int rc = config_set_value(p, node, path, &row, field);
    uint64_t v;
    memcpy(&v, field, sizeof(v));
    if (rc == EGR_OK && v != 0 && v < SPOOL_MIN_CAPACITY)
        return config_error(p, node, path, "%" PRIu64 " is below %u (or 0 for no spool)", v,
                            SPOOL_MIN_CAPACITY);
    return rc;
}

/* Keys of the redis section that only mean something together, checked
 * as the sink checks them when it opens (sink-redis.c). `where` names the
 * file (or --redis). */
int config_check_redis(const struct sink_redis_config *r, const char *where, struct egr_err *err)
{
    if (!r->url[0])
        return EGR_OK;
    struct redis_endpoint ep;
    struct egr_err e = {""};
    if (redis_url_parse(r->url, &ep, &e) != EGR_OK)
        return egr_fail(err, EGR_EINVAL, "%s: %s", where, e.msg);
    if (!r->prefix[0])
        return egr_fail(err, EGR_EINVAL, "%s: redis.prefix: must not be empty", where);
    if (ep.is_unix && r->seeds.n)
        return egr_fail(err, EGR_EINVAL, "%s: redis.seeds: a unix:// redis.url takes no seeds "
                        "(a cluster is reached over TCP)", where);
    return EGR_OK;
}

/* ---- the table ---------------------------------------------------------- */

#define FIELD(m) offsetof(struct egr_config, m), sizeof(((struct egr_config *)0)->m)

/* Timeouts: at least a second (0 would end a flow at its first expiry check),
 * at most a day; tcp_closed may be 0 (record at once after the close) and
 * active 0 means no interim records. */
const struct config_key config_keys[] = {
    {"flow.max_flows", CONFIG_UINT, 1, 100000000, FIELD(flow.max_flows), NULL},
    {"flow.hash_seed", CONFIG_UINT, 0, UINT32_MAX, FIELD(flow.hash_seed), NULL},
    {"flow.timeouts.tcp_new", CONFIG_DURATION, 1, DAY, FIELD(flow.tcp_new_timeout), NULL},
    {"flow.timeouts.tcp_established", CONFIG_DURATION, 1, DAY, FIELD(flow.tcp_est_timeout), NULL},
    {"flow.timeouts.tcp_closed", CONFIG_DURATION, 0, DAY, FIELD(flow.tcp_closed_timeout), NULL},
    {"flow.timeouts.udp", CONFIG_DURATION, 1, DAY, FIELD(flow.udp_timeout), NULL},
    {"flow.timeouts.icmp", CONFIG_DURATION, 1, DAY, FIELD(flow.icmp_timeout), NULL},
    {"flow.timeouts.other", CONFIG_DURATION, 1, DAY, FIELD(flow.other_timeout), NULL},
    {"flow.timeouts.active", CONFIG_DURATION, 0, DAY, FIELD(flow.active_timeout), NULL},
    {"classify.max_packets_tcp", CONFIG_UINT, 1, 10000, FIELD(classify.max_pkts_tcp), NULL},
    {"classify.max_packets_udp", CONFIG_UINT, 1, 10000, FIELD(classify.max_pkts_udp), NULL},
    {"community_id.seed", CONFIG_UINT, 0, UINT16_MAX, FIELD(flow.cid.seed), NULL},
    {"community_id.base64", CONFIG_BOOL, 0, 1, FIELD(flow.cid.base64), NULL},
    {"output.json", CONFIG_STRING, 0, 0, FIELD(json_path), NULL},
    {"output.append", CONFIG_BOOL, 0, 1, FIELD(json_append), NULL},
    {"geoip.country_db", CONFIG_STRING, 0, 0, FIELD(geo.country_db), NULL},
    {"geoip.asn_db", CONFIG_STRING, 0, 0, FIELD(geo.asn_db), NULL},
    {"geoip.cache_size", CONFIG_UINT, 0, GEO_CACHE_MAX, FIELD(geo.cache_size), NULL},
    {"passive_dns.max_entries", CONFIG_UINT, 1, NAMES_MAX_ENTRIES, FIELD(names_max), NULL},
    {"passive_dns.min_ttl", CONFIG_DURATION, 0, 30 * DAY, FIELD(names_min_ttl), NULL},
    {"passive_dns.max_ttl", CONFIG_DURATION, 1, 30 * DAY, FIELD(names_max_ttl), NULL},
    {"redis.url", CONFIG_CUSTOM, 0, 0, FIELD(redis.url), parse_redis_url},
    {"redis.username", CONFIG_STRING, 0, 0, FIELD(redis.username), NULL},
    {"redis.password", CONFIG_STRING, 0, 0, FIELD(redis.password), NULL},
    {"redis.prefix", CONFIG_STRING, 0, 0, FIELD(redis.prefix), NULL},
    {"redis.sensor_id", CONFIG_STRING, 0, 0, FIELD(redis.sensor_id), NULL},
    {"redis.flows_maxlen", CONFIG_UINT, 0, 1000000000, FIELD(redis.flows_maxlen), NULL},
    {"redis.alerts_maxlen", CONFIG_UINT, 0, 1000000000, FIELD(redis.alerts_maxlen), NULL},
    {"redis.aggregate_ttl", CONFIG_DURATION, 0, 30 * DAY, FIELD(redis.aggregate_ttl), NULL},
    {"redis.heartbeat_interval", CONFIG_DURATION, 1, 3600, FIELD(redis.heartbeat_interval), NULL},
    {"redis.heartbeat_ttl", CONFIG_DURATION, 1, DAY, FIELD(redis.heartbeat_ttl), NULL},
    {"redis.queue_max_bytes", CONFIG_UINT, 1024, 1ull << 40, FIELD(redis.queue_max_bytes), NULL},
    {"redis.queue_max_records", CONFIG_UINT, 1, 100000000, FIELD(redis.queue_max_records), NULL},
    {"redis.batch_records", CONFIG_UINT, 1, 100000, FIELD(redis.batch_records), NULL},
    {"redis.flush_ms", CONFIG_UINT, 1, 60000, FIELD(redis.flush_ms), NULL},
    {"redis.spool_dir", CONFIG_STRING, 0, 0, FIELD(redis.spool_dir), NULL},
    {"redis.spool_max_bytes", CONFIG_CUSTOM, 0, 0, FIELD(redis.spool_max_bytes), parse_spool_max},
    {"redis.spool_fsync", CONFIG_CUSTOM, 0, 0, FIELD(redis.spool_fsync), parse_redis_fsync},
    {"redis.drain_timeout", CONFIG_DURATION, 0, DAY, FIELD(redis.drain_timeout), NULL},
    {"redis.timeout", CONFIG_DURATION, 1, 3600, FIELD(redis.timeout), NULL},
    {"redis.seeds", CONFIG_CUSTOM, 0, 0, FIELD(redis.seeds), parse_redis_seeds},
    {"redis.layout", CONFIG_CUSTOM, 0, 0, FIELD(redis.layout), parse_redis_layout},
    {"redis.wait_replicas", CONFIG_CUSTOM, 0, 0, FIELD(redis.wait_replicas), parse_redis_wait},
    {"redis.wait_timeout_ms", CONFIG_UINT, 1, 60000, FIELD(redis.wait_timeout_ms), NULL},

    {"redis.streams", CONFIG_BOOL, 0, 1, FIELD(redis.streams), NULL},
    {"redis.eve.mode", CONFIG_CUSTOM, 0, 0, FIELD(redis.eve.mode), redis_eve_parse_mode},
    {"redis.eve.key", CONFIG_STRING, 0, 0, FIELD(redis.eve.key), NULL},
    {"redis.eve.types", CONFIG_CUSTOM, 0, 0, FIELD(redis.eve.types), redis_eve_parse_types},
    {"redis.eve.stream_maxlen", CONFIG_UINT, 0, 1000000000, FIELD(redis.eve.stream_maxlen), NULL},
    {"redis.eve.stream_trim_exact", CONFIG_BOOL, 0, 1, FIELD(redis.eve.trim_exact), NULL},
    {"home_net", CONFIG_CUSTOM, 0, 0, FIELD(policy.spec), policy_parse_home_net},
    {"assets", CONFIG_CUSTOM, 0, 0, FIELD(policy.spec), policy_parse_assets},
    {"default_role", CONFIG_CUSTOM, 0, 0, FIELD(policy.spec), policy_parse_default_role},
    {"roles", CONFIG_CUSTOM, 0, 0, FIELD(policy.spec), policy_parse_roles},
    {"intel", CONFIG_CUSTOM, 0, 0, FIELD(policy.spec), policy_parse_intel},
    {"guarded_services", CONFIG_CUSTOM, 0, 0, FIELD(policy.spec), policy_guard_parse},
    {"intel_check_interval", CONFIG_DURATION, 0, DAY, FIELD(policy.intel_check), NULL},
    {"alerts.suppress", CONFIG_DURATION, 0, 30 * DAY, FIELD(policy.suppress), NULL},
    {"alerts.max_per_second", CONFIG_UINT, 0, 1000000, FIELD(policy.max_per_second), NULL},
    {"alerts.decide_packets", CONFIG_UINT, 1, 1000, FIELD(policy.decide_packets), NULL},
    {"alerts.decide_seconds", CONFIG_DURATION, 1, 3600, FIELD(policy.decide_seconds), NULL},
    {"alerts.risks", CONFIG_CUSTOM, 0, 0, FIELD(policy.risk_mask), policy_parse_risks},
    {"alerts.risk_severity", CONFIG_CUSTOM, 0, 0, FIELD(policy.risk_severity),
     policy_parse_severity},
    {"exfiltration.window", CONFIG_DURATION, 1, DAY, FIELD(policy.exfil_window), NULL},
    {"exfiltration.bytes", CONFIG_UINT, 0, 1ull << 50, FIELD(policy.exfil_bytes), NULL},
    {"exfiltration.severity", CONFIG_CUSTOM, 0, 0, FIELD(policy.exfil_severity),
     policy_parse_severity},
    {"learning.baseline_file", CONFIG_CUSTOM, 0, 0, FIELD(policy.baseline_file),
     policy_parse_path},
    {"learning.save_interval", CONFIG_DURATION, 1, DAY, FIELD(policy.save_interval), NULL},
};
const size_t config_nkeys = EGR_ARRAY_LEN(config_keys);

void config_defaults(struct egr_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    flow_config_defaults(&cfg->flow);
    classify_config_defaults(&cfg->classify);
    cfg->json_path[0] = '\0';
    geo_config_defaults(&cfg->geo);
    snprintf(cfg->geo.country_db, sizeof(cfg->geo.country_db), "%s", CONFIG_COUNTRY_DB_DEFAULT);
    snprintf(cfg->geo.asn_db, sizeof(cfg->geo.asn_db), "%s", CONFIG_ASN_DB_DEFAULT);
    cfg->names_max = 65536;
    cfg->names_min_ttl = NAMES_TTL_MIN_DEFAULT;
    cfg->names_max_ttl = NAMES_TTL_MAX_DEFAULT;
    sink_redis_config_defaults(&cfg->redis);
    policy_config_defaults(&cfg->policy);
}

void config_free(struct egr_config *cfg)
{
    policy_config_release(&cfg->policy);
    config_defaults(cfg);
}

void config_resolve_geo(struct egr_config *cfg)
{
    if (!strcmp(cfg->geo.country_db, CONFIG_COUNTRY_DB_DEFAULT) &&
        access(CONFIG_COUNTRY_DB_DEFAULT, R_OK) != 0)
        cfg->geo.country_db[0] = '\0';
    if (!strcmp(cfg->geo.asn_db, CONFIG_ASN_DB_DEFAULT) && access(CONFIG_ASN_DB_DEFAULT, R_OK) != 0)
        cfg->geo.asn_db[0] = '\0';
}

int config_load(struct egr_config *cfg, const char *path, struct egr_err *err)
{
    /* The policy lists are heap data shared by reference: the file builds
     * its own spec, which replaces the old one only when all of it loaded. */
    struct egr_config next = *cfg;
    next.policy.spec = NULL;
    int rc = config_load_table(path, config_keys, config_nkeys, &next, err);
    if (rc == EGR_OK)
        rc = policy_spec_resolve(next.policy.spec, path, err);
    /* Keys that only mean something together (redis-eve.h). */
    if (rc == EGR_OK && !next.redis.streams && next.redis.eve.mode == REDIS_EVE_OFF)
        rc = egr_fail(err, EGR_EINVAL, "%s: redis.streams: false needs redis.eve.mode set: no record "
                      "would be written to Redis", path);
    if (rc == EGR_OK && next.redis.eve.mode != REDIS_EVE_OFF && !next.redis.eve.key[0])
        rc = egr_fail(err, EGR_EINVAL, "%s: redis.eve.key: must not be empty with redis.eve.mode %s",
                      path, redis_eve_mode_name(next.redis.eve.mode));
    if (rc == EGR_OK)
        rc = config_check_redis(&next.redis, path, err);
    if (rc == EGR_OK && next.names_min_ttl > next.names_max_ttl)
        rc = egr_fail(err, EGR_EINVAL, "%s: passive_dns.min_ttl: %u s is above "
                      "passive_dns.max_ttl (%u s)", path, (unsigned)next.names_min_ttl,
                      (unsigned)next.names_max_ttl);
    /* Sections present but empty (`home_net: []`, as sensors/replay.yaml
     * shows them) configure no policy at all. */
    if (rc == EGR_OK && policy_spec_is_empty(next.policy.spec))
        policy_config_release(&next.policy);
    if (rc != EGR_OK) {
        policy_config_release(&next.policy);
        return rc;
    }
    if (next.policy.spec)
        policy_config_release(&cfg->policy);
    else
        next.policy.spec = cfg->policy.spec;
    *cfg = next;
    return EGR_OK;
}

/* alert.h - an alert: what the policy says about a flow, by value, for sinks.
 *
 * One alert per (asset, destination, service) and alert kind; repeats inside
 * the suppression window update count and last_seen of the same alert_key
 * and are written again only as updates (update = 1).
 */
#ifndef EGRESSD_ALERT_H
#define EGRESSD_ALERT_H

#include <stdint.h>

#include "egressd/record.h"

enum alert_kind {
    ALERT_UNEXPECTED = 0, /* no allow rule of the role matched */
    ALERT_INTEL,          /* matched a threat-intel list */
    ALERT_EXFIL,          /* outbound volume over the threshold */
    ALERT_RISK,           /* an nDPI risk chosen in the configuration */
    ALERT_GUARD_CALLER,   /* a guarded service called by a caller not on its list */
    ALERT_GUARD_NEW,      /* a guarded service called by a caller never seen before */
    ALERT_GUARD_VOLUME,   /* a caller's bytes to or from a guarded service over its limit */
    ALERT_KIND_MAX
};

const char *alert_kind_name(unsigned k); /* "unexpected-destination", ... */

/* Suricata's convention: 1 is the most severe. */
enum alert_severity { SEV_HIGH = 1, SEV_MEDIUM = 2, SEV_LOW = 3 };

const char *alert_severity_name(unsigned s); /* "high", "medium", "low" */

/* 1 for the guarded-service kinds (ALERT_GUARD_*). */
int alert_kind_is_guard(unsigned k);

/* The output field that carries alert_record.intel_list for kind k:
 * "guarded_service" for the guarded-service kinds, else "intel_list". */
const char *alert_list_field(unsigned k);

struct alert_record {
    uint64_t ts_us;          /* packet time of this event */
    uint64_t first_seen_us;  /* first flow that raised this alert_key */
    uint64_t last_seen_us;
    uint64_t count;          /* flows that matched this alert_key so far */
    uint8_t kind;            /* enum alert_kind */
    uint8_t severity;        /* enum alert_severity */
    uint8_t update;          /* 0: first alert; 1: count/last_seen update */
    char alert_key[41];      /* hex SHA-1 of kind, asset, destination, service */
    char reason[256];        /* the rule outcome in words */
    char intel_list[64];     /* the named list behind the alert: the intel list
                              * (ALERT_INTEL) or the guarded service
                              * (ALERT_GUARD_*); written as intel_list or
                              * guarded_service, see alert_list_field() */
    char service[64];        /* what the destination was contacted for ("tcp/443 TLS") */
    struct flow_record flow; /* the flow that raised it (enriched) */
};

#endif

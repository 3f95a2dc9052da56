/* policy-guard.h - guarded services: SaaS and identity services named by
 * domain, who may call them, and how much a caller may move (private to
 * the policy; docs/policy.md, "Guarded services").
 *
 * The rest of the policy says what an asset may reach; this section says
 * who may reach a service. For an egress record whose destination name
 * (TLS SNI, HTTP Host, passive-DNS name) falls under a service's domains:
 *   - mode deny: a caller not listed in the service's `callers` alerts
 *     (ALERT_GUARD_CALLER);
 *   - mode learn: an unlisted caller seen for the first time is added to
 *     guarded_services.callers_file, never alerted;
 *   - mode baseline: an unlisted caller that the callers file does not
 *     know alerts (ALERT_GUARD_NEW);
 *   - mode monitor: callers are not judged;
 *   and in every mode, the bytes a caller sends to and receives from the
 *   service within the service's window are summed in packet time; each
 *   threshold crossed alerts once per window (ALERT_GUARD_VOLUME).
 *
 * Lifetime and threads. A struct policy_guard is built by the configuration
 * loader (policy_guard_parse as a CONFIG_CUSTOM row, then
 * policy_guard_resolve once the file is read), hangs off the policy spec
 * and goes with it. Its parsed form never changes after resolve; its state
 * (the callers known from the file and learned since, the volume windows)
 * sits behind its own mutex, so the checks below may run from any number
 * of threads at once, independently of the engine's own alert state. A
 * reload builds a new guard: windows start afresh, known callers are read
 * again from the callers file (which already holds everything learned,
 * because learning appends to it at once).
 */
#ifndef EGRESSD_POLICY_GUARD_H
#define EGRESSD_POLICY_GUARD_H

#include <stddef.h>
#include <stdint.h>

#include "cfgload.h"
#include "egressd/record.h"

struct policy_guard;
struct policy_spec;

/* Where one alert goes: the engine's own raising path (dedup, rate limit,
 * sinks). `caller` and `key_dest` make the alert key with the kind (the
 * caller is the asset name, else the caller's address); `service` is the
 * guarded service's name, written as alert.guarded_service; `reason` is the
 * signature. The record the guard was given is the alert's flow. */
typedef void (*policy_guard_raise_fn)(void *ctx, unsigned kind, unsigned severity,
                                      const char *caller, const char *key_dest,
                                      const char *service, const char *reason);

/* ---- configuration (config.c's table) ----------------------------------- */

/* The `guarded_services` section: builds spec->guard (field is the
 * configuration's struct policy_spec pointer, as for the other policy
 * rows). */
int policy_guard_parse(struct config_parse *p, yaml_node_t *node, const char *path,
                       void *field);

/* After the whole file: checks the callers' asset and role names against
 * the spec, that a learning service has a callers file and that egress can
 * be told at all (home_net or assets), then loads the callers file. Errors
 * carry file:line:column ("guarded-callers.txt:3: ..."  for the file). */
int policy_guard_resolve(struct policy_guard *g, const struct policy_spec *s, const char *file,
                         struct egr_err *err);

void policy_guard_free(struct policy_guard *g);

/* 1 if the section names at least one service. */
int policy_guard_active(const struct policy_guard *g);

/* ---- evaluation ---------------------------------------------------------- */

/* Judges one annotated, enriched record (egress only; anything else is
 * ignored): the caller against the service's list and the known callers,
 * then its bytes against the volume thresholds. Every alert goes to fn.
 * Thread-safe. */
void policy_guard_check(struct policy_guard *g, const struct flow_record *rec,
                        policy_guard_raise_fn fn, void *ctx);

/* The caller part of policy_guard_check alone (deny, learn, baseline). */
void policy_guard_check_caller(struct policy_guard *g, const struct flow_record *rec,
                               policy_guard_raise_fn fn, void *ctx);

/* Index of the first service whose domains match the record's names, or
 * -1. Read-only. */
int policy_guard_service_of(const struct policy_guard *g, const struct flow_record *rec);

/* Name of service i (NULL if out of range). */
const char *policy_guard_service_name(const struct policy_guard *g, size_t i);

/* A caller of a service, resolved once per flow: who it is (the asset's
 * name, else its address) and the volume limits that apply to it (its
 * callers entry's, else the service's; 0 = no limit). */
struct policy_guard_caller {
    char id[REC_NAME_MAX];
    int listed;            /* 1 if an entry of the service's callers matched */
    uint64_t max_out, max_in;
};

void policy_guard_caller_of(const struct policy_guard *g, size_t svc,
                            const struct flow_record *rec, struct policy_guard_caller *out);

/* What a volume update found: the window's totals after it, and which
 * thresholds it took the caller over (GUARD_VOL_* bits; each is reported
 * once per window). */
#define GUARD_VOL_OUT 1u
#define GUARD_VOL_IN 2u

struct policy_guard_volume {
    uint64_t window_start_us;
    uint64_t bytes_out, bytes_in;
    unsigned crossed;
};

/* Adds bytes_out (caller to service) and bytes_in (service to caller) seen
 * at packet time t_us to the caller's window for service svc. Driven per
 * record today; written so that it can be driven per packet (any split of
 * the same bytes over the same window gives the same crossings). A window
 * opens at the first bytes and lasts the service's `window`; a later time
 * opens a new one. Returns the crossed bits (also in *out if non-NULL).
 * When the table of windows is full (65536 callers per guard), the bytes
 * are not counted and 0 is returned (counted in stats.windows_full).
 * Thread-safe. */
unsigned policy_guard_volume(struct policy_guard *g, const struct policy_guard_caller *caller,
                             size_t svc, uint64_t bytes_out, uint64_t bytes_in, uint64_t t_us,
                             struct policy_guard_volume *out);

/* The volume alerts of one update that crossed thresholds (`crossed`, the
 * GUARD_VOL_* bits policy_guard_volume returned). */
void policy_guard_alert_volume(struct policy_guard *g, const struct policy_guard_caller *c,
                               size_t svc, const struct policy_guard_volume *v, unsigned crossed,
                               policy_guard_raise_fn fn, void *ctx);

struct policy_guard_stats {
    uint64_t known;          /* callers known (file + learned) */
    uint64_t learned;        /* learned this run */
    uint64_t learn_dropped;  /* not learned: the set is full */
    uint64_t write_errors;   /* learned callers the file did not take */
    uint64_t windows_full;   /* volume updates not counted: no free window */
};
void policy_guard_stats(struct policy_guard *g, struct policy_guard_stats *out);

/* 1 if `caller` is a known caller of service svc (from the file or
 * learned). Thread-safe. */
int policy_guard_known(struct policy_guard *g, size_t svc, const char *caller);

#endif

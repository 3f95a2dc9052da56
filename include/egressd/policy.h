/* policy.h - the egress policy: which local hosts are infrastructure, what
 * each role may reach, threat-intel lists, and the alerts that follow.
 *
 * Three objects with separate lifetimes:
 *   - struct policy_config: the configuration (config.h holds one). Its
 *     parsed lists (home_net, assets, roles, intel) sit in a reference-
 *     counted struct policy_spec built by the configuration loader.
 *   - struct policy: built from a configuration by policy_new (loads the
 *     intel files and the baseline), then only read, by any number of
 *     threads; reference-counted, so a reload builds a new one, swaps it in
 *     and each worker lets go of the old one when it picks up the new one.
 *   - struct policy_state: what the sensor remembers across reloads (alert
 *     dedup, exfiltration windows, what learn mode saw). Shared by every
 *     worker: sharded and locked inside (policy-alerts.c), never by a lock
 *     around a whole record.
 *
 * A worker judges each flow with policy_judge() at the packets that can
 * settle its verdict (verdict.h); policy_evaluate() judges a finished
 * record in one go. Evaluation order (docs/policy.md):
 *   1. intel lists, for any host and direction: ALERT_INTEL;
 *   2. egress from a host with a role: monitor -> nothing; learn -> the
 *      destination is learned; deny / baseline -> allow rules in order, then
 *      (baseline) the learned baseline; nothing matched -> ALERT_UNEXPECTED;
 *   3. egress with a configured nDPI risk: ALERT_RISK;
 *   4. egress bytes of the asset over the window: ALERT_EXFIL;
 *   5. egress to a guarded service (policy-guard.h): its caller and volume,
 *      ALERT_GUARD_CALLER, ALERT_GUARD_NEW, ALERT_GUARD_VOLUME.
 * Each alert then goes through dedup (alert_key) and the rate limit.
 */
#ifndef EGRESSD_POLICY_H
#define EGRESSD_POLICY_H

#include <stdint.h>

#include "egressd/alert.h"
#include "egressd/common.h"
#include "egressd/record.h"
#include "egressd/verdict.h"

struct policy_spec; /* parsed lists; see policy-int.h */

enum policy_mode { MODE_DENY = 0, MODE_LEARN, MODE_BASELINE, MODE_MONITOR };
const char *policy_mode_name(unsigned m);

struct policy_config {
    struct policy_spec *spec;  /* NULL: no lists configured */
    uint32_t suppress;         /* alerts.suppress (s) */
    uint32_t max_per_second;   /* alerts.max_per_second; 0 = no limit */
    uint64_t risk_mask;        /* alerts.risks as nDPI risk bits */
    uint8_t risk_severity;     /* alerts.risk_severity */
    uint32_t exfil_window;     /* exfiltration.window (s) */
    uint64_t exfil_bytes;      /* exfiltration.bytes; 0 = off */
    uint8_t exfil_severity;
    char baseline_file[1024];  /* learning.baseline_file, resolved */
    uint32_t save_interval;    /* learning.save_interval (s, wall clock) */
    uint32_t intel_check;      /* intel_check_interval (s, wall clock); 0 = never */
    uint32_t decide_packets;   /* alerts.decide_packets: initiator payload packets */
    uint32_t decide_seconds;   /* alerts.decide_seconds: after the first packet */
};

void policy_config_defaults(struct policy_config *pc);
/* Drops this configuration's reference to its spec (pc->spec = NULL). */
void policy_config_release(struct policy_config *pc);

struct policy;
struct policy_state;

/* Builds a policy from pc: compiles the lists, loads every intel file and
 * (for roles in baseline mode) the baseline file. Errors name the file and
 * line ("intel/c2.txt:14: not an IP address or CIDR: 'x'"). */
int policy_new(const struct policy_config *pc, struct policy **out, struct egr_err *err);
/* Another reference to p (thread-safe); policy_free drops one and frees the
 * policy with the last. */
struct policy *policy_ref(struct policy *p);
void policy_free(struct policy *p);

/* Sets rec->enrich.direction, asset and role from home_net and the assets.
 * Read-only on p: safe from many threads at once. */
void policy_annotate(const struct policy *p, struct flow_record *rec);

struct policy_state *policy_state_new(void);
void policy_state_free(struct policy_state *st);

typedef void (*policy_alert_fn)(void *arg, const struct alert_record *a);

/* Evaluates one (annotated, enriched) record; every alert event goes to fn
 * (first alerts, and updates of suppressed ones when due). Sets
 * rec->alerted when the record matched any alert condition. */
void policy_evaluate(const struct policy *p, struct policy_state *st, struct flow_record *rec,
                     policy_alert_fn fn, void *arg);

/* What policy_judge may take as known (`known`). */
enum {
    PJ_NAME = 1,         /* the destination's name will not change any more */
    PJ_NDPI = 2,         /* nDPI's classification is final */
    PJ_PACKET_BYTES = 4, /* volume is counted per packet (policy_volume_*): the
                          * record's byte counters are not added */
};
/* What a judgement leaves open (policy_judge's result). */
enum {
    PJ_OPEN_ROLE = 1,    /* the role's verdict waits for a name or nDPI */
    PJ_OPEN_RISK = 2,    /* the risk check waits for nDPI's final answer */
    PJ_OPEN_INTEL = 4,   /* a name or fingerprint list may still match */
};

/* 1 if p judges anything at all (it has networks, assets, roles or lists). */
int policy_active(const struct policy *p);
/* 1 if ip is a local address of p (home_net or an asset), 0 otherwise or
 * without a policy. Thread-safe (p is read-only). */
int policy_is_local(const struct policy *p, int family, const uint8_t *ip);
/* 1 if p has local networks at all (home_net or assets). */
int policy_has_local(const struct policy *p);
/* 1 if an intel list matches names or TLS fingerprints, which come after a
 * flow's first packets. */
int policy_late_intel(const struct policy *p);

/* Judges a flow on what rec (annotated, enriched) says now. Raises every
 * alert condition met that the flow has not raised yet (v->keys), each
 * through fn with scratch as the event's storage; records the first one's
 * stage (`by`, enum verdict_stage) and time in v. The role's verdict is
 * taken only when no more information could change it (PJ_OPEN_ROLE
 * otherwise). Thread-safe for a shared p and st. */
unsigned policy_judge(const struct policy *p, struct policy_state *st, struct flow_record *rec,
                      struct flow_verdict *v, unsigned known, unsigned by,
                      struct alert_record *scratch, policy_alert_fn fn, void *arg);

/* The volume window of rec's asset when the exfiltration check applies to
 * it (egress from a named asset, exfiltration.bytes set): a slot for
 * policy_volume_add(), else 0. */
uint32_t policy_volume_slot(const struct policy *p, struct policy_state *st,
                            const struct flow_record *rec);
/* Counts bytes the asset sent at now_us; 1 when they took its window over
 * the threshold: then call policy_volume_alert() with the flow's record. */
int policy_volume_add(const struct policy *p, struct policy_state *st, uint32_t slot,
                      uint64_t bytes, uint64_t now_us, uint64_t *total);
void policy_volume_alert(const struct policy *p, struct policy_state *st,
                         struct flow_record *rec, struct flow_verdict *v, uint64_t total,
                         struct alert_record *scratch, policy_alert_fn fn, void *arg);

/* Counts bytes of a flow to a guarded service whose caller has volume
 * limits (v->guard, set when its name was settled); 1 when a threshold
 * was crossed: then call policy_guard_volume_alert() with its record. */
int policy_guard_bytes(const struct policy *p, struct flow_verdict *v, uint64_t bytes_out,
                       uint64_t bytes_in, uint64_t now_us);
void policy_guard_volume_alert(const struct policy *p, struct policy_state *st,
                               struct flow_record *rec, struct flow_verdict *v,
                               struct alert_record *scratch, policy_alert_fn fn, void *arg);

/* At the end of a run: one update event for every alert_key whose count
 * grew since its last event, so sinks end with the true counts. */
void policy_flush(const struct policy *p, struct policy_state *st, uint64_t now_us,
                  policy_alert_fn fn, void *arg);

/* Takes the entries of the baseline file p loaded into st's learned set,
 * so saving keeps what earlier runs learned. Call after policy_new. */
void policy_state_seed(const struct policy *p, struct policy_state *st);

/* Writes what learn mode has seen (plus the baseline it started from) to
 * learning.baseline_file, atomically. EGR_OK also when there is nothing to
 * write or no file is configured. */
int policy_save_baseline(const struct policy *p, struct policy_state *st, struct egr_err *err);

/* 1 if a learn-mode role exists and a baseline file is configured. */
int policy_learning(const struct policy *p);

/* 1 if an intel file changed (mtime, size or inode) since p loaded it. */
int policy_intel_changed(const struct policy *p);

const struct policy_config *policy_config_of(const struct policy *p);

struct policy_stats {
    uint64_t alerts;         /* alert events emitted (first + updates) */
    uint64_t alerts_first;
    uint64_t suppressed;     /* matches folded into an existing alert_key */
    uint64_t rate_limited;   /* alerts not written: over max_per_second */
    uint64_t learned;        /* destinations learned */
    uint64_t learn_dropped;  /* not learned: the learned set is full */
    uint64_t dedup_evicted;  /* alert keys forgotten: the dedup table is full */
};
void policy_state_stats(const struct policy_state *st, struct policy_stats *out);

#endif

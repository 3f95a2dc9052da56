/* policy-int.h - the policy's private parts, shared by its files:
 *
 *   policy-config.c  the configuration sections -> struct policy_spec
 *   policy.c         building a policy, direction and asset, judging flows
 *   policy-rules.c   allow rules and the per-role index
 *   policy-intel.c   threat-intel lists
 *   policy-learn.c   the baseline file and the learned set
 *   policy-alerts.c  shared alert state: dedup, rate limit, volume windows
 *
 * A spec is built while a configuration file is read, never changed after
 * the load succeeds, and shared by reference count between the
 * configuration and every policy built from it (control thread only).
 */
#ifndef EGRESSD_POLICY_INT_H
#define EGRESSD_POLICY_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "egressd/netset.h"
#include "egressd/policy.h"
#include "egressd/strset.h"

#define POLICY_NAME_MAX 64

struct port_range {
    uint16_t lo, hi;
};

/* One allow rule: every key that is set must match; within a key any value
 * does. */
struct pol_rule {
    char name[POLICY_NAME_MAX];
    char **domains;      /* lowercase; "*.x" kept as is (suffix match) */
    size_t ndomains;
    struct netset *cidrs; /* NULL: no cidr key */
    char first_cidr[64];  /* text of the first cidr value (baseline files) */
    uint32_t *asns;
    size_t nasns;
    char (*countries)[3]; /* uppercase ISO codes */
    size_t ncountries;
    char **ndpi;         /* nDPI protocol names, compared case-insensitively */
    size_t nndpi;
    int proto;           /* IP protocol number, -1 = any */
    struct port_range *ports;
    size_t nports;
};

struct pol_role {
    char name[POLICY_NAME_MAX];
    uint8_t mode;        /* enum policy_mode */
    uint8_t severity;    /* enum alert_severity */
    struct pol_rule *rules;
    size_t nrules;
};

struct pol_asset {
    char name[POLICY_NAME_MAX];
    char role[POLICY_NAME_MAX];
    int role_index;      /* into spec->roles, resolved after the load */
    unsigned line, col;  /* of the role value, for a late error */
};

enum intel_type { INTEL_IP = 0, INTEL_DOMAIN, INTEL_JA3, INTEL_SHA1 };

struct pol_intel {
    char name[POLICY_NAME_MAX];
    uint8_t type;        /* enum intel_type */
    uint8_t severity;
    char file[1024];     /* resolved against the configuration's directory */
};

struct policy_spec {
    unsigned refs;
    struct netset *home_net;  /* NULL: none configured */
    struct netset *asset_net; /* host/CIDR -> index into assets */
    struct pol_asset *assets;
    size_t nassets;
    struct pol_role *roles;
    size_t nroles;
    char default_role[POLICY_NAME_MAX];
    int default_role_index;   /* -1: none */
    unsigned default_role_line, default_role_col;
    struct pol_intel *intel;
    size_t nintel;
    struct policy_guard *guard; /* guarded_services (policy-guard.h); NULL: none */
};

struct policy_spec *policy_spec_new(void);
void policy_spec_ref(struct policy_spec *s);
void policy_spec_unref(struct policy_spec *s);

/* Frees the contents of one rule (not the struct). */
void pol_rule_clear(struct pol_rule *r);

/* 1 if rule r matches the record. */
int pol_rule_match(const struct pol_rule *r, const struct flow_record *rec);

/* Case-insensitive domain pattern match: exact, or "*.suffix" for any name
 * below suffix (not suffix itself). A trailing dot on name is ignored. */
int pol_domain_match(const char *pattern, const char *name);

/* Index of role `name` in spec, or -1. */
int pol_role_find(const struct policy_spec *s, const char *name);

/* ---- the compiled policy (policy.c) -------------------------------------- */

#define DEDUP_MAX 65536u /* alert keys remembered (over all shards) */
#define EXFIL_MAX 65536u /* assets with a running volume window */

/* Keys of a rule that need a lookup to match. */
enum { NEED_CIDR = 1, NEED_DOMAIN = 2, NEED_ASN = 4, NEED_COUNTRY = 8, NEED_NDPI = 16,
       NEED_ALL = 32 };

struct role_index {
    struct netset *cidrs;
    struct strset *exact, *suffix; /* "a.b" and "*.b" (kept as "b") */
    struct strset *asns, *countries, *ndpi;
    const struct pol_rule **bucket[NEED_ALL]; /* rules by the kinds they need */
    size_t nbucket[NEED_ALL];
};

struct intel_list {
    struct netset *ips;   /* INTEL_IP */
    struct strset *strs;  /* domain, ja3, sha1 */
    struct stat st;       /* of the file when loaded, for change detection */
    int stat_ok;
};

/* Built once, then only read (any thread); freed when the last reference
 * goes (policy_unref). */
struct policy {
    atomic_uint refs;
    struct policy_config pc; /* holds a reference to spec */
    const struct policy_spec *spec;
    struct intel_list *intel; /* one per spec->intel */
    /* Baseline entries per role (index as spec->roles), from the baseline
     * file; used in baseline mode and carried over when learning. */
    struct pol_role *baseline;
    size_t nbaseline;
    int learning;
    int intel_late;              /* a list matches names or fingerprints */
    struct role_index *index;    /* one per spec->roles */
    struct role_index *bindex;   /* one per baseline role */
};

/* 1 if ip is inside home_net or an asset. */
int pol_local(const struct policy_spec *s, int family, const uint8_t *ip);
/* An address as text ("?" if it cannot be written). */
void pol_ip_text(int family, const uint8_t *ip, char *out, size_t n);

/* ---- policy-rules.c ---- */

int pol_index_build(struct role_index *x, const struct pol_role *role);
void pol_index_free(struct role_index *x);
/* 1 if some rule of the role allows the record. */
int pol_allowed(const struct role_index *x, const struct flow_record *rec);
/* 1 if some rule that needs none of the kinds in `unknown` allows it: an
 * answer more information cannot change. */
int pol_allowed_known(const struct role_index *x, const struct flow_record *rec,
                      unsigned unknown);
/* 1 if a rule that needs a kind in `unknown` (NEED_DOMAIN, NEED_NDPI) matches
 * on every other key: once those are known it might allow the record. */
int pol_could_allow(const struct role_index *x, const struct flow_record *rec, unsigned unknown);

/* ---- policy-intel.c ---- */

int pol_intel_load(struct intel_list *l, const struct pol_intel *def, struct egr_err *err);
void pol_intel_free(struct intel_list *l);
typedef void (*pol_intel_hit_fn)(void *arg, const struct pol_intel *def, const char *hit);
/* Calls fn for every list rec matches, with the indicator that matched. */
void pol_intel_check(const struct policy *p, const struct flow_record *rec, pol_intel_hit_fn fn,
                     void *arg);
/* 1 if a list matches names or TLS fingerprints (known only after the
 * first packets). */
int pol_intel_needs_classification(const struct policy *p);

/* ---- policy-learn.c ---- */

struct learn_set;
int pol_baseline_load(struct policy *p, struct egr_err *err);
void pol_roles_free(struct pol_role *roles, size_t n);
struct learn_set *pol_learn_new(void);
void pol_learn_free(struct learn_set *ls);
/* Learns rec's destination for role (thread-safe). */
void pol_learn_flow(struct learn_set *ls, const char *role, const struct flow_record *rec);
void pol_learn_seed(const struct policy *p, struct learn_set *ls);
int pol_learn_save(const struct policy *p, struct learn_set *ls, struct egr_err *err);
void pol_learn_stats(const struct learn_set *ls, uint64_t *learned, uint64_t *dropped);

/* ---- policy-alerts.c ---- */

struct learn_set *pol_state_learned(struct policy_state *st);
/* The alert key of (kind, asset, destination, service). */
void pol_alert_key(unsigned kind, const char *asset, const char *dest, const char *service,
                   uint8_t key[20]);
/* One match of key: a is filled but for the dedup fields (ts, counts,
 * update, alert_key), which this sets. Writes it through fn (first alert, or
 * an update past the suppression window) and returns 1, or folds it into the
 * key's count (0). Thread-safe; fn runs with no lock held. */
int pol_alert_raise(struct policy_state *st, const struct policy_config *pc,
                    struct alert_record *a, const uint8_t key[20], uint64_t now_us,
                    policy_alert_fn fn, void *arg);
/* The volume window of an asset: slot + 1, or 0 when the table is full. */
uint32_t pol_exfil_slot(struct policy_state *st, const char *asset);
/* Adds bytes sent at now_us; returns the window's total when this took it
 * over threshold (once per window), else 0. Thread-safe, lock-free lookup. */
uint64_t pol_exfil_add(struct policy_state *st, uint32_t slot, uint64_t bytes, uint64_t now_us,
                       uint64_t window_us, uint64_t threshold);

#endif

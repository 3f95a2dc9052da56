/* policy-int.h - the parsed policy lists shared by the configuration side
 * (policy-config.c) and the engine (policy.c).
 *
 * A spec is built while a configuration file is read, never changed after
 * the load succeeds, and shared by reference count between the
 * configuration and every policy built from it (control thread only).
 */
#ifndef EGRESSD_POLICY_INT_H
#define EGRESSD_POLICY_INT_H

#include <stddef.h>
#include <stdint.h>

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

#endif

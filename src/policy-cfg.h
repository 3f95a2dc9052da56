/* policy-cfg.h - the configuration rows of the policy sections, for
 * config.c's table (implemented in policy-config.c). */
#ifndef EGRESSD_POLICY_CFG_H
#define EGRESSD_POLICY_CFG_H

#include "cfgload.h"

struct netset;
struct pol_role;
struct policy_spec;

int policy_parse_home_net(struct config_parse *p, yaml_node_t *node, const char *path,
                          void *field);
int policy_parse_assets(struct config_parse *p, yaml_node_t *node, const char *path,
                        void *field);
int policy_parse_default_role(struct config_parse *p, yaml_node_t *node, const char *path,
                              void *field);
int policy_parse_roles(struct config_parse *p, yaml_node_t *node, const char *path, void *field);
int policy_parse_intel(struct config_parse *p, yaml_node_t *node, const char *path, void *field);
int policy_parse_risks(struct config_parse *p, yaml_node_t *node, const char *path, void *field);
int policy_parse_severity(struct config_parse *p, yaml_node_t *node, const char *path,
                          void *field);
int policy_parse_path(struct config_parse *p, yaml_node_t *node, const char *path, void *field);

/* An allow-rule list (roles.X.allow, and the baseline file's entries). */
int policy_parse_rule_list(struct config_parse *p, yaml_node_t *node, const char *path,
                           struct pol_role *role);

/* Checks the references between sections once the file is read (asset
 * roles, default_role); errors carry the position kept at parse time. */
int policy_spec_resolve(struct policy_spec *s, const char *file, struct egr_err *err);

/* 1 if s configures nothing (no networks, assets, roles or lists). */
int policy_spec_is_empty(const struct policy_spec *s);

/* The value parsers of the policy sections, for the sections that live in
 * their own files (policy-guard.c), so every section reads and reports its
 * values the same way. Each returns EGR_OK or config_error()'s code. */

/* The spec a policy row writes into (field), made on first use. */
struct policy_spec *pol_cfg_spec(struct config_parse *p, yaml_node_t *node, const char *path,
                                 void *field);
/* A name: letters, digits, '.', '_', '-', shorter than max (POLICY_NAME_MAX
 * for the sections' names). */
int pol_cfg_name(struct config_parse *p, yaml_node_t *node, const char *path, char *out,
                 size_t max);
/* high, medium or low. */
int pol_cfg_severity(struct config_parse *p, yaml_node_t *node, const char *path, uint8_t *out);
/* deny, learn, baseline or monitor (enum policy_mode). */
int pol_cfg_mode(struct config_parse *p, yaml_node_t *node, const char *path, uint8_t *out);
/* A file path, relative to the configuration file's directory. */
int pol_cfg_path(struct config_parse *p, yaml_node_t *node, const char *path, char *out,
                 size_t max);
/* One domain value ("name" or "*.suffix"), lowercased, without a trailing
 * dot, into a new string (*out, owned by the caller). */
int pol_cfg_domain(struct config_parse *p, yaml_node_t *node, const char *path, char **out);
/* An address or CIDR added to set (with value 1). */
int pol_cfg_cidr(struct config_parse *p, yaml_node_t *node, const char *path,
                 struct netset *set);
/* A scalar, or a sequence of scalars: fn for each ("path[i]" for items). */
typedef int (*pol_cfg_value_fn)(struct config_parse *p, yaml_node_t *node, const char *path,
                                void *arg);
int pol_cfg_values(struct config_parse *p, yaml_node_t *node, const char *path,
                   pol_cfg_value_fn fn, void *arg);

#endif

/* policy-cfg.h - the configuration rows of the policy sections, for
 * config.c's table (implemented in policy-config.c). */
#ifndef EGRESSD_POLICY_CFG_H
#define EGRESSD_POLICY_CFG_H

#include "cfgload.h"

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

#endif

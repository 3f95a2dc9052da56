/* redis-eve-cfg.h - the parsers of redis.eve.mode and redis.eve.types for
 * the configuration table (config.c); defined in redis-eve.c. */
#ifndef EGRESSD_REDIS_EVE_CFG_H
#define EGRESSD_REDIS_EVE_CFG_H

#include "cfgload.h"

/* One of Suricata's mode names (redis_eve_mode_of) into a uint8_t. */
int redis_eve_parse_mode(struct config_parse *p, yaml_node_t *node, const char *path, void *field);

/* A non-empty list of event types, each once, into a uint8_t mask. */
int redis_eve_parse_types(struct config_parse *p, yaml_node_t *node, const char *path, void *field);

#endif

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

struct egr_config {
    struct flow_config flow;         /* flow: */
    struct classify_config classify; /* classify: */
    char json_path[1024];            /* output.json ("" = none) */
};

/* Fills every field with its documented default. Cannot fail. */
void config_defaults(struct egr_config *cfg);

/* Loads YAML file `path` over the current contents of cfg (call
 * config_defaults() first). On error returns EGR_EINVAL (or EGR_EIO for an
 * unreadable file) with "path:line:col: key: reason" in err, and cfg is left
 * unchanged. */
int config_load(struct egr_config *cfg, const char *path, struct egr_err *err);

#endif

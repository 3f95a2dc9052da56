/* cfgload.h - the YAML table loader (cfgload.c), for modules whose section needs
 * more than plain keys.
 *
 * config.c describes every key as one row (struct config_key) of a table and
 * walks the YAML document (libyaml's document API) against it. A key whose
 * value is a list, a CIDR set or anything else the row types cannot express
 * is a CONFIG_CUSTOM row: the walker hands its YAML node to the row's
 * function, which uses the helpers below so its errors read like every other
 * one ("FILE:LINE:COLUMN: KEY: reason") and nothing is ever printed.
 *
 * Adding a section: add rows for its keys to config_keys[] in config.c (and
 * a field to struct egr_config); for a list, add a CONFIG_CUSTOM row whose
 * function walks the items with config_each_item() and each item with
 * config_walk() over the module's own row table.
 *
 * Nodes may be shared (YAML aliases) and, with an alias inside its own
 * anchor, even cyclic: a custom function must only descend as far as its own
 * schema goes, never follow a document's structure blindly.
 */
#ifndef EGRESSD_CFGLOAD_H
#define EGRESSD_CFGLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "egressd/common.h"

struct config_parse; /* one load in progress: document, file name, error */

enum config_type {
    CONFIG_UINT,     /* decimal or 0x-hex unsigned integer, min..max */
    CONFIG_BOOL,     /* true/false (also yes/no, on/off) */
    CONFIG_DURATION, /* seconds, plain or with an s, m or h suffix, min..max */
    CONFIG_STRING,   /* into a char[size]; an empty or null value gives "" */
    CONFIG_CUSTOM,   /* the node goes to `parse` */
};

typedef int (*config_custom_fn)(struct config_parse *p, yaml_node_t *node,
                                const char *path, void *field);

struct config_key {
    const char *path;       /* dotted, relative to the table's root */
    enum config_type type;
    uint64_t min, max;      /* CONFIG_UINT and CONFIG_DURATION (seconds) */
    size_t offset, size;    /* the field in the base struct, and its size:
                             * 1, 2, 4 or 8 for numbers, sizeof(int) or 1
                             * for booleans, the buffer for strings */
    config_custom_fn parse; /* CONFIG_CUSTOM only; gets base + offset */
};

/* The sensor's own table (defined in config.c, not here), exposed so tests can check every row
 * against its field, its default and the documentation. */
extern const struct config_key config_keys[];
extern const size_t config_nkeys;

/* Loads YAML file `path` into base by `keys` (the engine of config_load()).
 * base is written as keys are met: callers wanting all-or-nothing pass a
 * copy. Returns EGR_OK, EGR_EINVAL with "path:line:col: key: reason",
 * EGR_EIO for an unreadable file, EGR_ENOMEM. */
int config_load_table(const char *path, const struct config_key *keys, size_t nkeys,
                      void *base, struct egr_err *err);

/* Walks mapping `node` against `keys` (paths relative to node) storing into
 * base. `path` is the node's dotted name for messages ("" at the top). A null
 * node (an empty section) is an empty mapping. */
int config_walk(struct config_parse *p, yaml_node_t *node, const char *path,
                const struct config_key *keys, size_t nkeys, void *base);

/* Parses one value by row k (any type but CONFIG_CUSTOM, whose function is
 * called instead) into base + k->offset. */
int config_set_value(struct config_parse *p, yaml_node_t *node, const char *path,
                     const struct config_key *k, void *base);

typedef int (*config_pair_fn)(struct config_parse *p, const char *key,
                              yaml_node_t *knode, yaml_node_t *value, void *arg);
typedef int (*config_item_fn)(struct config_parse *p, size_t index,
                              yaml_node_t *item, void *arg);

/* Calls fn for each pair of mapping `node` in document order, after checking
 * that it is a mapping (null counts as empty), that every key is a scalar and
 * that no key repeats. Stops at and returns the first non-EGR_OK result. */
int config_each_pair(struct config_parse *p, yaml_node_t *node, const char *path,
                     config_pair_fn fn, void *arg);

/* Same for sequence `node` (null counts as empty). */
int config_each_item(struct config_parse *p, yaml_node_t *node, const char *path,
                     config_item_fn fn, void *arg);

/* Formats "FILE:LINE:COLUMN: PATH: reason" at node's start (or
 * "FILE:LINE:COLUMN: reason" for an empty path) and returns EGR_EINVAL. */
int config_error(struct config_parse *p, const yaml_node_t *node, const char *path,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The file being loaded, as given to the loader (for relative paths). */
const char *config_file_name(const struct config_parse *p);

/* The text of a scalar node (NUL-terminated, may hold NULs before len), or
 * NULL if node is not a scalar. */
const char *config_scalar(const yaml_node_t *node, size_t *len);

#endif

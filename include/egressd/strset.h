/* strset.h - a set of short strings (domain names, JA3 and certificate
 * hashes) compared case-insensitively, for the policy's lists.
 *
 * Built once, then only read: lookups never write, so many threads may look
 * up at once once the set is published (the netset rule). Open addressing
 * over one arena: no allocation per lookup.
 */
#ifndef EGRESSD_STRSET_H
#define EGRESSD_STRSET_H

#include <stddef.h>
#include <stdint.h>

#include "egressd/common.h"

#define STRSET_KEY_MAX 255

struct strset;

struct strset *strset_new(void); /* NULL when out of memory */
void strset_free(struct strset *s);

/* Adds n bytes of key (lowercased as stored). A key already present is left
 * as it is. Returns EGR_OK, EGR_EINVAL (empty or longer than
 * STRSET_KEY_MAX) or EGR_ENOMEM. */
int strset_add(struct strset *s, const char *key, size_t n);

/* 1 if the n bytes of key are in the set (ASCII case ignored). */
int strset_has(const struct strset *s, const char *key, size_t n);

/* 1 if name or any parent domain of it is in the set ("a.b.example.com"
 * looks up itself, "b.example.com", "example.com" and "com"); a trailing
 * dot is ignored. */
int strset_has_domain(const struct strset *s, const char *name);

uint32_t strset_count(const struct strset *s);

#endif

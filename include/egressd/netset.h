/* netset.h - sets of IPv4/IPv6 CIDR prefixes with a small value per prefix,
 * answered by longest-prefix match; plus the special-purpose address test.
 *
 * A set is built once (netset_new, netset_add*) and then only read: lookups
 * never write to the set, so any number of threads may call netset_lookup on
 * the same set at once without locks, provided the set is complete before it
 * is published to them (build, then hand the pointer over; e.g. on reload,
 * build a new set and swap the pointer).
 *
 * Addresses are raw network-order bytes: 4 for family 4, 16 for family 6.
 * IPv4-mapped IPv6 (::ffff:a.b.c.d) is treated as the IPv4 address it
 * carries, both when adding (a mapped prefix of /96 or longer becomes an
 * IPv4 prefix) and when looking up, so one IPv4 rule covers both spellings.
 * A mapped prefix shorter than /96 stays an IPv6 prefix and so never matches
 * a mapped address (those are looked up as IPv4).
 */
#ifndef EGRESSD_NETSET_H
#define EGRESSD_NETSET_H

#include <stdint.h>

#include "egressd/common.h"

struct netset;

/* Creates an empty set. Returns NULL only when out of memory. */
struct netset *netset_new(void);

/* Frees the set and everything in it. NULL is allowed. */
void netset_free(struct netset *set);

/* Adds one prefix written as text: "10.0.0.0/8", "2001:db8::/32", or a bare
 * address (= /32 or /128). The text must be exactly the prefix: no
 * whitespace, no zone ("%eth0"), no host bits set beyond the prefix length
 * ("10.0.0.1/8" is refused as ambiguous). Adding a prefix that is already in
 * the set replaces its value (the last add wins).
 * Returns EGR_OK, EGR_EINVAL with a one-line reason naming the text in err,
 * or EGR_ENOMEM. The set is unchanged on failure. */
int netset_add(struct netset *set, const char *cidr_text, uint32_t value, struct egr_err *err);

/* Adds one prefix in binary form: family 4 (addr = 4 bytes, prefix 0..32)
 * or 6 (16 bytes, 0..128). Bits beyond the prefix length are ignored.
 * Same replace rule as netset_add. Returns EGR_OK, EGR_EINVAL (bad family
 * or prefix length) or EGR_ENOMEM. */
int netset_add_bin(struct netset *set, int family, const uint8_t *addr, unsigned prefix,
                   uint32_t value);

/* Adds every prefix of `from` to `to`, each with `value` (a union of
 * sets). Returns EGR_OK, EGR_EINVAL (to == from, NULL) or EGR_ENOMEM. */
int netset_add_all(struct netset *to, const struct netset *from, uint32_t value);

/* Longest-prefix match. Returns 1 and stores the matching prefix's value in
 * *value (if value is non-NULL), or 0 when no prefix covers the address or
 * the family is not 4 or 6. Family 6 with an IPv4-mapped address is looked
 * up as IPv4. Never writes to the set (safe from many threads at once). */
int netset_lookup(const struct netset *set, int family, const uint8_t *addr, uint32_t *value);

/* Number of distinct prefixes in the set. */
uint32_t netset_count(const struct netset *set);

/* 1 if the address is in a special-purpose block that is not a real remote
 * end (private, loopback, link-local, CGNAT, documentation, benchmarking,
 * multicast, broadcast, reserved, unique local, ...; the full table and its
 * sources are in netset.c), else 0. IPv4-mapped IPv6 is judged by the IPv4
 * address it carries. Family other than 4 or 6 gives 0. Such addresses are
 * never looked up in GeoIP databases. Pure function: thread safe. */
int netset_is_special(int family, const uint8_t *addr);

#endif

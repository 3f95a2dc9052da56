/* names.h - passive DNS: which name a client resolved to reach an address.
 *
 * Fed with parsed DNS responses (dns.h), the table maps each A/AAAA answer
 * address to the question name the client asked for (the head of the CNAME
 * chain: "api.f5.com", not "f5.edgekey.net"), so a flow to a bare address
 * can carry the name. Behaviour and bounds are described in
 * docs/passive-dns.md; in short:
 *
 *   - an entry lives until packet time now + TTL, the TTL clamped to
 *     [ttl_min, ttl_max] (defaults NAMES_TTL_MIN_DEFAULT and
 *     NAMES_TTL_MAX_DEFAULT seconds); expired entries are never returned;
 *   - an address resolved by several names keeps the most recent one;
 *   - only NOERROR responses with a question are learned, and only the
 *     answers linked to the question (dns_addresses);
 *   - IPv4-mapped IPv6 (::ffff:a.b.c.d) is stored and looked up as the IPv4
 *     address it carries;
 *   - capacity is fixed at names_new: all memory is allocated there. When
 *     the table is full, a new address replaces the first expired entry among
 *     the NAMES_EVICT_SCAN least recently learned, else the least recently
 *     learned entry; either way it is counted.
 *
 * Time is packet time (now_us, microseconds), never the wall clock, so a
 * replay gives the same names as the live capture did. Look a flow up with
 * the time of its first packet: that is when the client used the answer.
 *
 * Thread safety: none. A struct names is written by names_learn and by
 * names_lookup (counters, removal of an expired entry); one thread at a
 * time, or the caller's lock.
 */
#ifndef EGRESSD_NAMES_H
#define EGRESSD_NAMES_H

#include <stddef.h>
#include <stdint.h>

#include "egressd/common.h"
#include "egressd/dns.h"

#define NAMES_MAX_ENTRIES (1u << 22)      /* cap on max_entries (about 1.3 GB) */
#define NAMES_TTL_MIN_DEFAULT 300u        /* seconds; see docs/passive-dns.md */
#define NAMES_TTL_MAX_DEFAULT 86400u      /* one day */
#define NAMES_EVICT_SCAN 8                /* oldest entries searched for an expired one */

struct names_stats {
    uint64_t learned;   /* addresses stored or refreshed by names_learn */
    uint64_t unlinked;  /* A/AAAA answers not linked to the question: not learned */
    uint64_t lookups;   /* names_lookup calls */
    uint64_t hits;      /* of those, answered with a name */
    uint64_t evictions; /* live entries dropped to make room */
    uint64_t expired;   /* expired entries dropped (found by a lookup or reused) */
};

struct names;

/* Creates a table of max_entries addresses (1..NAMES_MAX_ENTRIES), all
 * memory allocated now (names_entry_size() bytes per entry plus a bucket
 * array; pages never touched cost no RSS). Returns EGR_OK with *out owning
 * the table, EGR_EINVAL for a bad size, or EGR_ENOMEM; err gets one line. */
int names_new(uint32_t max_entries, struct names **out, struct egr_err *err);

/* Frees the table. NULL is allowed. */
void names_free(struct names *t);

/* Sets the TTL clamp, in seconds, for answers learned from now on. Needs
 * min <= max and max <= 30 days; else EGR_EINVAL and no change. */
int names_set_ttl(struct names *t, uint32_t min_s, uint32_t max_s, struct egr_err *err);

/* Learns the linked address answers of one parsed response (see the rules
 * above). A response whose parse failed part way is learned from the
 * answers that were complete. Returns the number of addresses learned.
 * Never allocates; cannot fail. */
unsigned names_learn(struct names *t, const struct dns_answers *a, uint64_t now_us);

/* Looks an address up (family 4: 4 bytes, 6: 16 bytes) at packet time
 * now_us. On a live entry returns 1 and writes the name into out: its raw
 * bytes, cut to n - 1 bytes, then a NUL (a name holding a 0x00 byte reads
 * short as a C string; see DNS_NAME_NUL_IN_LABEL). Returns 0 when the
 * address is unknown or its entry has expired (the entry is then dropped),
 * and for a bad family; out then holds "" (if n > 0). */
int names_lookup(struct names *t, int family, const uint8_t *addr, uint64_t now_us, char *out,
                 size_t n);

/* Live and expired-but-not-yet-dropped entries currently held. */
uint32_t names_count(const struct names *t);

/* Counters since names_new. */
const struct names_stats *names_stats(const struct names *t);

/* Bytes of one entry, for sizing max_entries. */
size_t names_entry_size(void);

#endif

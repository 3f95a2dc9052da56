/* cid.h - Community ID v1 flow hashing (https://github.com/corelight/community-id-spec).
 *
 * Pure functions: no state beyond the caller's settings.
 */
#ifndef EGRESSD_CID_H
#define EGRESSD_CID_H

#include <stddef.h>
#include <stdint.h>

#define CID_STR_MAX 48 /* "1:" + 40 hex chars + NUL fits */

struct cid_settings {
    uint16_t seed;  /* default 0 */
    int base64;     /* 1 = base64 (default), 0 = lowercase hex */
};

/* Computes the Community ID of one directional tuple as seen on the wire.
 * family 4 (addresses are 4 bytes) or 6 (16 bytes). For ICMP (1) and
 * ICMPv6 (58) sport/dport are the raw type and code; the spec's mapping is
 * applied here. For protocols without ports pass has_ports = 0. Writes a
 * NUL-terminated string into out (size >= CID_STR_MAX). Cannot fail. */
void cid_compute(const struct cid_settings *s, int family, const uint8_t *saddr,
                 const uint8_t *daddr, uint8_t proto, uint16_t sport,
                 uint16_t dport, int has_ports, char *out);

/* cid_compute in two steps, for a caller that keeps the 20-byte hash of a
 * flow instead of hashing again for every record of it. */
#define CID_DIGEST_LEN 20
void cid_digest(const struct cid_settings *s, int family, const uint8_t *saddr,
                const uint8_t *daddr, uint8_t proto, uint16_t sport, uint16_t dport,
                int has_ports, uint8_t out[CID_DIGEST_LEN]);
void cid_format(const struct cid_settings *s, const uint8_t digest[CID_DIGEST_LEN], char *out);

/* The Zeek/Community-ID ICMP mapping: for a request/reply type returns 1 and
 * its counterpart in *peer; for other types returns 0 (one-way flow). */
int cid_icmp_counterpart(uint8_t proto, uint8_t type, uint8_t *peer);

#endif

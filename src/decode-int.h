/* decode-int.h - what the decoder files share (decode.c, decode-l2.c,
 * decode-ip.c, decode-tunnel.c); nothing outside the decoder includes it.
 *
 * Every layer function takes the bytes of its layer as (p, len), where len
 * is already bounded by the capture and by any enclosing length field, reads
 * them only through struct bytes_rd, and returns a decode_result. A layer
 * that fails bumps exactly one counter and returns DECODE_ERROR at once, so a
 * DECODE_ERROR reaching decode_packet() always carries exactly one counter.
 * DEC_NOT_IP is counted once, by decode_packet(), for the frame as a whole.
 *
 * Tunnels: the IP layer first describes the outer packet completely in
 * c->m, then hands the tunnel payload to dec_gre()/dec_vxlan()/dec_ipip().
 * Those either leave c->m describing the inner packet, or (inner packet
 * malformed, not IP, unsupported or too deep) restore the outer description:
 * they cannot turn an accounted outer packet into an error.
 */
#ifndef EGRESSD_DECODE_INT_H
#define EGRESSD_DECODE_INT_H

#include <stdint.h>

#include "egressd/decode.h"
#include "egressd/pkt.h"

/* Decapsulations allowed in one frame; one more is tunnel_too_deep. */
#define DEC_MAX_TUNNEL_DEPTH 4
/* IPv6 extension headers walked before giving up (ipv6_ext_too_many). Real
 * traffic carries at most 3 or 4; RFC 8200 allows each at most once or twice. */
#define DEC_MAX_IPV6_EXT 8

/* Per-frame state, on decode_packet()'s stack. */
struct dec_ctx {
    struct decode_stats *st;
    struct pkt_meta *m;
    unsigned depth; /* decapsulations in progress */
};

static inline void dec_count(struct dec_ctx *c, enum decode_counter k)
{
    c->st->c[k]++;
}

/* Counts failure k and returns DECODE_ERROR: the one way to fail. */
static inline int dec_fail(struct dec_ctx *c, enum decode_counter k)
{
    c->st->c[k]++;
    return DECODE_ERROR;
}

/* decode-l2.c */
int dec_ethernet(struct dec_ctx *c, const uint8_t *p, uint32_t len);
int dec_ethertype(struct dec_ctx *c, uint16_t type, const uint8_t *p, uint32_t len);
int dec_mpls(struct dec_ctx *c, const uint8_t *p, uint32_t len);
int dec_ppp_proto(struct dec_ctx *c, uint16_t proto, const uint8_t *p, uint32_t len);

/* decode-ip.c */
int dec_ipv4(struct dec_ctx *c, const uint8_t *p, uint32_t len);
int dec_ipv6(struct dec_ctx *c, const uint8_t *p, uint32_t len);
/* IP of either version, told by the first nibble (raw IP links; an empty
 * frame is l2_truncated). */
int dec_ip_any(struct dec_ctx *c, const uint8_t *p, uint32_t len);

/* decode-tunnel.c: p/len is the outer packet's GRE header / UDP payload /
 * IP payload. They return nothing: c->m is always a valid description. */
void dec_gre(struct dec_ctx *c, const uint8_t *p, uint32_t len);
void dec_vxlan(struct dec_ctx *c, const uint8_t *p, uint32_t len);
void dec_ipip(struct dec_ctx *c, int inner_family, const uint8_t *p, uint32_t len);

#endif

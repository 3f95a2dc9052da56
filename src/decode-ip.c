/* decode-ip.c - IPv4 (RFC 791), IPv6 with extension headers (RFC 8200) and
 * the L4 headers the flow key needs: TCP, UDP, SCTP ports, ICMP/ICMPv6 type
 * and code. Tunnel payloads (GRE, IP-in-IP, VXLAN) go to decode-tunnel.c
 * once the outer packet is fully described.
 *
 * Lengths: the IP total length (IPv4) or 40 + payload length (IPv6) clips
 * everything after the IP header, so Ethernet padding or trailing garbage is
 * never taken as L4 data; a capture shorter than the IP length (snaplen)
 * clips it further. l3_len is the smaller of the two.
 *
 * Fragments: only a fragment at offset 0 has an L4 header. A later fragment
 * is reported with its protocol but never parsed as L4 (PKT_F_L4 unset,
 * l4 NULL), however much its bytes look like one. Fragmented packets are not
 * decapsulated: only the first fragment would hold the inner header, and
 * the flow table can tie all fragments to one outer flow, not to an inner
 * one.
 *
 * L4 problems (header cut by the capture, TCP data offset below 5) do not
 * fail the packet: the IP packet is real and its bytes belong to a flow, so
 * it is returned as DECODE_OK keyed by addresses only (no PKT_F_L4), with
 * the problem counted.
 *
 *   IPv6 extension headers walked: hop-by-hop (0), routing (43), fragment
 *   (44), destination options (60): length in 8-byte units not counting the
 *   first 8; AH (51): length in 4-byte units not counting the first 8.
 *   ESP (50) and no-next-header (59) end the walk like any upper layer.
 */
#include <stdint.h>
#include <string.h>

#include "decode-int.h"
#include "egressd/bytes.h"

#define IPV4_MIN_HLEN 20
#define IPV6_HLEN 40

#define IPPROTO_HOPOPTS_ 0
#define IPPROTO_ICMP_ 1
#define IPPROTO_IPIP_ 4
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPPROTO_IPV6_ 41
#define IPPROTO_ROUTING_ 43
#define IPPROTO_FRAGMENT_ 44
#define IPPROTO_GRE_ 47
#define IPPROTO_AH_ 51
#define IPPROTO_ICMPV6_ 58
#define IPPROTO_DSTOPTS_ 60
#define IPPROTO_SCTP_ 132

#define TCP_MIN_HLEN 20
#define UDP_HLEN 8
#define SCTP_COMMON_HLEN 12
#define ICMP_HLEN 8 /* type, code, checksum and 4 type-specific bytes */

#define VXLAN_PORT 4789

#define IPV4_OFFSET_MASK 0x1fffu
#define IPV4_MF 0x2000u
#define IPV6_FRAG_OFFSET_MASK 0xfff8u
#define IPV6_FRAG_M 0x0001u

/* Clears what an IP layer describes, so an inner packet never inherits a
 * field of the outer one (link fields, VLANs and the tunnel kind stay). */
static void ip_reset(struct pkt_meta *m)
{
    m->family = 0;
    m->proto = 0;
    m->tcp_flags = 0;
    m->ttl = 0;
    memset(m->src, 0, sizeof(m->src));
    memset(m->dst, 0, sizeof(m->dst));
    m->sport = m->dport = 0;
    m->frag_id = 0;
    m->flags = 0;
    m->l3 = m->l4 = m->payload = NULL;
    m->l3_len = m->l4_len = m->payload_len = 0;
}

/* The L4 header was cut (by the capture or by the IP length). */
static int l4_truncated(struct dec_ctx *c, enum decode_counter k)
{
    c->m->flags |= PKT_F_L4_TRUNC;
    c->m->payload = NULL;
    c->m->payload_len = 0;
    dec_count(c, k);
    return DECODE_OK;
}

static int l4_tcp(struct dec_ctx *c, const uint8_t *p, uint32_t len)
{
    struct pkt_meta *m = c->m;
    struct bytes_rd r;
    uint16_t sport, dport;
    uint8_t off_rsvd, flags;
    bytes_init(&r, p, len);
    if (bytes_get_be16(&r, &sport) || bytes_get_be16(&r, &dport) ||
        bytes_skip(&r, 8) /* seq, ack */ || bytes_get_u8(&r, &off_rsvd) ||
        bytes_get_u8(&r, &flags) || bytes_skip(&r, 6) /* window, sum, urg */)
        return l4_truncated(c, DEC_TCP_TRUNCATED);
    uint32_t hlen = (uint32_t)(off_rsvd >> 4) * 4;
    if (hlen < TCP_MIN_HLEN) {
        /* Where the header ends is unknown, so are its fields' meaning. */
        m->payload = NULL;
        m->payload_len = 0;
        dec_count(c, DEC_TCP_BAD_HLEN);
        return DECODE_OK;
    }
    m->sport = sport;
    m->dport = dport;
    m->tcp_flags = flags;
    m->flags |= PKT_F_L4;
    /* Options cut: ports and flags are good, the payload start is not. */
    if (hlen > len)
        return l4_truncated(c, DEC_TCP_TRUNCATED);
    m->l4_len = hlen;
    m->payload = p + hlen;
    m->payload_len = len - hlen;
    return DECODE_OK;
}

static int l4_udp(struct dec_ctx *c, const uint8_t *p, uint32_t len)
{
    struct pkt_meta *m = c->m;
    struct bytes_rd r;
    uint16_t sport, dport, ulen;
    bytes_init(&r, p, len);
    if (bytes_get_be16(&r, &sport) || bytes_get_be16(&r, &dport) ||
        bytes_get_be16(&r, &ulen) || bytes_skip(&r, 2))
        return l4_truncated(c, DEC_UDP_TRUNCATED);
    m->sport = sport;
    m->dport = dport;
    m->flags |= PKT_F_L4;
    m->l4_len = UDP_HLEN;
    m->payload = p + UDP_HLEN;
    m->payload_len = len - UDP_HLEN;
    /* A sane UDP length below what we hold clips the payload too (a VXLAN
     * frame must not include bytes past its datagram). */
    if (ulen >= UDP_HLEN && (uint32_t)ulen - UDP_HLEN < m->payload_len)
        m->payload_len = (uint32_t)ulen - UDP_HLEN;
    if (dport == VXLAN_PORT && !(m->flags & PKT_F_FRAG))
        dec_vxlan(c, m->payload, m->payload_len);
    return DECODE_OK;
}

static int l4_sctp(struct dec_ctx *c, const uint8_t *p, uint32_t len)
{
    struct pkt_meta *m = c->m;
    struct bytes_rd r;
    uint16_t sport, dport;
    bytes_init(&r, p, len);
    if (bytes_get_be16(&r, &sport) || bytes_get_be16(&r, &dport) ||
        bytes_skip(&r, 8) /* verification tag, checksum */)
        return l4_truncated(c, DEC_SCTP_TRUNCATED);
    m->sport = sport;
    m->dport = dport;
    m->flags |= PKT_F_L4;
    m->l4_len = SCTP_COMMON_HLEN;
    m->payload = p + SCTP_COMMON_HLEN;
    m->payload_len = len - SCTP_COMMON_HLEN;
    return DECODE_OK;
}

static int l4_icmp(struct dec_ctx *c, const uint8_t *p, uint32_t len)
{
    struct pkt_meta *m = c->m;
    struct bytes_rd r;
    uint8_t type, code;
    bytes_init(&r, p, len);
    if (bytes_get_u8(&r, &type) || bytes_get_u8(&r, &code) || bytes_skip(&r, ICMP_HLEN - 2))
        return l4_truncated(c, DEC_ICMP_TRUNCATED);
    m->sport = type;
    m->dport = code;
    m->flags |= PKT_F_L4;
    m->l4_len = ICMP_HLEN;
    m->payload = p + ICMP_HLEN;
    m->payload_len = len - ICMP_HLEN;
    return DECODE_OK;
}

/* p/len: the bytes after the last IP header, bounded by the IP length, of a
 * non-fragment or a first fragment. m->proto is set. */
static int dec_l4(struct dec_ctx *c, const uint8_t *p, uint32_t len)
{
    struct pkt_meta *m = c->m;
    int may_decap = !(m->flags & PKT_F_FRAG);
    /* Until a header is parsed, everything after IP is payload. */
    m->payload = p;
    m->payload_len = len;
    switch (m->proto) {
    case IPPROTO_TCP_:
    case IPPROTO_UDP_:
    case IPPROTO_SCTP_:
    case IPPROTO_ICMP_:
    case IPPROTO_ICMPV6_:
        m->l4 = p;
        m->l4_len = len;
        break;
    default:
        break;
    }
    switch (m->proto) {
    case IPPROTO_TCP_:
        return l4_tcp(c, p, len);
    case IPPROTO_UDP_:
        return l4_udp(c, p, len);
    case IPPROTO_SCTP_:
        return l4_sctp(c, p, len);
    case IPPROTO_ICMP_:
    case IPPROTO_ICMPV6_:
        return l4_icmp(c, p, len);
    case IPPROTO_GRE_:
        if (may_decap)
            dec_gre(c, p, len);
        return DECODE_OK;
    case IPPROTO_IPIP_:
        if (may_decap)
            dec_ipip(c, 4, p, len);
        return DECODE_OK;
    case IPPROTO_IPV6_:
        if (may_decap)
            dec_ipip(c, 6, p, len);
        return DECODE_OK;
    default:
        return DECODE_OK; /* ESP, OSPF, no-next-header, ...: no L4 for us */
    }
}

int dec_ipv4(struct dec_ctx *c, const uint8_t *p, uint32_t len)
{
    struct pkt_meta *m = c->m;
    struct bytes_rd r;
    uint8_t vhl, ttl, proto;
    uint16_t total, id, frag;
    ip_reset(m);
    bytes_init(&r, p, len);
    if (bytes_peek_u8(&r, 0, &vhl))
        return dec_fail(c, DEC_IPV4_TRUNCATED);
    if (vhl >> 4 != 4)
        return dec_fail(c, DEC_IP_BAD_VERSION);
    uint32_t hlen = (uint32_t)(vhl & 0x0f) * 4;
    if (hlen < IPV4_MIN_HLEN)
        return dec_fail(c, DEC_IPV4_BAD_HLEN);
    if (bytes_skip(&r, 2) /* version/IHL, TOS */ || bytes_get_be16(&r, &total) ||
        bytes_get_be16(&r, &id) || bytes_get_be16(&r, &frag) || bytes_get_u8(&r, &ttl) ||
        bytes_get_u8(&r, &proto) || bytes_skip(&r, 2) /* checksum */ ||
        bytes_get_bytes(&r, m->src, 4) || bytes_get_bytes(&r, m->dst, 4) ||
        bytes_skip(&r, hlen - IPV4_MIN_HLEN) /* options */)
        return dec_fail(c, DEC_IPV4_TRUNCATED);
    /* A total length of 0 is what segmentation offload leaves in packets
     * captured on the sending host: the captured bytes are the packet. */
    if (total != 0) {
        if (total < hlen)
            return dec_fail(c, DEC_IPV4_BAD_LEN);
        bytes_clip(&r, total - hlen);
    }

    m->family = 4;
    m->ttl = ttl;
    m->proto = proto;
    m->l3 = p;
    m->l3_len = hlen + bytes_left(&r);

    if (frag & (IPV4_OFFSET_MASK | IPV4_MF)) {
        m->flags |= PKT_F_FRAG;
        m->frag_id = id;
        dec_count(c, DEC_FRAGMENT);
        if (frag & IPV4_OFFSET_MASK) {
            m->payload = bytes_cur(&r);
            m->payload_len = bytes_left(&r);
            return DECODE_OK;
        }
        m->flags |= PKT_F_FRAG_FIRST;
    }
    return dec_l4(c, bytes_cur(&r), bytes_left(&r));
}

static int ipv6_is_ext(uint8_t nh)
{
    return nh == IPPROTO_HOPOPTS_ || nh == IPPROTO_ROUTING_ || nh == IPPROTO_FRAGMENT_ ||
           nh == IPPROTO_DSTOPTS_ || nh == IPPROTO_AH_;
}

int dec_ipv6(struct dec_ctx *c, const uint8_t *p, uint32_t len)
{
    struct pkt_meta *m = c->m;
    struct bytes_rd r;
    uint8_t vtc, nh, hlim;
    uint16_t plen;
    ip_reset(m);
    bytes_init(&r, p, len);
    if (bytes_peek_u8(&r, 0, &vtc))
        return dec_fail(c, DEC_IPV6_TRUNCATED);
    if (vtc >> 4 != 6)
        return dec_fail(c, DEC_IP_BAD_VERSION);
    if (bytes_skip(&r, 4) /* version, class, flow label */ || bytes_get_be16(&r, &plen) ||
        bytes_get_u8(&r, &nh) || bytes_get_u8(&r, &hlim) || bytes_get_bytes(&r, m->src, 16) ||
        bytes_get_bytes(&r, m->dst, 16))
        return dec_fail(c, DEC_IPV6_TRUNCATED);
    /* Payload length 0 with hop-by-hop options is a jumbogram (RFC 2675):
     * the real length is in an option; trust the capture instead. */
    if (!(plen == 0 && nh == IPPROTO_HOPOPTS_))
        bytes_clip(&r, plen);

    m->family = 6;
    m->ttl = hlim;
    m->l3 = p;
    m->l3_len = IPV6_HLEN + bytes_left(&r);

    for (unsigned n = 0; ipv6_is_ext(nh); n++) {
        if (n == DEC_MAX_IPV6_EXT)
            return dec_fail(c, DEC_IPV6_EXT_TOO_MANY);
        uint8_t next, hl;
        if (nh == IPPROTO_FRAGMENT_) {
            uint16_t fo;
            uint32_t id;
            if (bytes_get_u8(&r, &next) || bytes_skip(&r, 1) || bytes_get_be16(&r, &fo) ||
                bytes_get_be32(&r, &id))
                return dec_fail(c, DEC_IPV6_EXT_TRUNCATED);
            nh = next;
            /* Offset 0 without M is an atomic fragment (RFC 6946): a whole
             * packet, processed as if unfragmented. */
            if (!(fo & (IPV6_FRAG_OFFSET_MASK | IPV6_FRAG_M)))
                continue;
            if (!(m->flags & PKT_F_FRAG)) {
                m->flags |= PKT_F_FRAG;
                m->frag_id = id;
                dec_count(c, DEC_FRAGMENT);
            }
            if (fo & IPV6_FRAG_OFFSET_MASK) {
                m->flags &= ~PKT_F_FRAG_FIRST;
                m->proto = nh;
                m->payload = bytes_cur(&r);
                m->payload_len = bytes_left(&r);
                return DECODE_OK;
            }
            m->flags |= PKT_F_FRAG_FIRST;
            continue;
        }
        if (bytes_get_u8(&r, &next) || bytes_get_u8(&r, &hl))
            return dec_fail(c, DEC_IPV6_EXT_TRUNCATED);
        uint32_t size = nh == IPPROTO_AH_ ? ((uint32_t)hl + 2) * 4 : ((uint32_t)hl + 1) * 8;
        if (bytes_skip(&r, size - 2))
            return dec_fail(c, DEC_IPV6_EXT_TRUNCATED);
        nh = next;
    }
    m->proto = nh;
    return dec_l4(c, bytes_cur(&r), bytes_left(&r));
}

int dec_ip_any(struct dec_ctx *c, const uint8_t *p, uint32_t len)
{
    struct bytes_rd r;
    uint8_t v;
    bytes_init(&r, p, len);
    if (bytes_peek_u8(&r, 0, &v))
        return dec_fail(c, DEC_L2_TRUNCATED); /* a raw IP frame of 0 bytes */
    switch (v >> 4) {
    case 4:
        return dec_ipv4(c, p, len);
    case 6:
        return dec_ipv6(c, p, len);
    default:
        return dec_fail(c, DEC_IP_BAD_VERSION);
    }
}

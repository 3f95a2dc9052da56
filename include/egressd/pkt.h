/* pkt.h - the decoded view of one captured packet (output of decode, input
 * of the flow table).
 *
 * A pkt_meta only points into the capture buffer: it is valid until the next
 * packet is read and owns nothing. Every pointer/length pair lies inside
 * [frame, frame + caplen): decode never lets a reader past caplen.
 */
#ifndef EGRESSD_PKT_H
#define EGRESSD_PKT_H

#include <stdint.h>

/* pkt_meta.flags */
#define PKT_F_FRAG (1u << 0)       /* IPv4/IPv6 fragment (first or not) */
#define PKT_F_FRAG_FIRST (1u << 1) /* fragment at offset 0: L4 header present */
#define PKT_F_L4 (1u << 2)         /* sport/dport (or ICMP type/code) valid */
#define PKT_F_TUNNEL (1u << 3)     /* tracked IP packet was decapsulated */
#define PKT_F_L4_TRUNC (1u << 4)   /* L4 header claimed but cut by caplen */

/* pkt_meta.tunnel: the outermost encapsulation removed */
enum pkt_tunnel {
    PKT_TUN_NONE = 0,
    PKT_TUN_GRE,
    PKT_TUN_ERSPAN2,
    PKT_TUN_ERSPAN3,
    PKT_TUN_VXLAN,
    PKT_TUN_IPIP, /* IPv4/IPv6 in IPv4/IPv6 (4in6, 6in4, 4in4, 6in6) */
};

struct pkt_meta {
    uint64_t ts_us;     /* capture timestamp, microseconds since the epoch */
    uint32_t wire_len;  /* frame length on the wire (pcap hdr len) */
    uint32_t cap_len;   /* bytes captured (pcap hdr caplen) */

    uint16_t vlan[2];   /* VLAN ids of the innermost Ethernet layer, outer first; 0 = none */
    uint8_t vlan_count; /* tags seen in that layer (may exceed 2; only 2 kept) */
    uint8_t tunnel;     /* enum pkt_tunnel */

    uint8_t family;     /* 4 or 6 */
    uint8_t proto;      /* L4 protocol number (after IPv6 extension headers) */
    uint8_t tcp_flags;  /* TCP flags byte, 0 if not TCP or not PKT_F_L4 */
    uint8_t ttl;        /* IPv4 TTL / IPv6 hop limit */
    uint8_t src[16];    /* IPv4: 4 bytes then zeros; IPv6: 16 bytes */
    uint8_t dst[16];
    uint16_t sport;     /* host order; ICMP/ICMPv6: type */
    uint16_t dport;     /* host order; ICMP/ICMPv6: code */
    uint32_t frag_id;   /* IPv4 id / IPv6 fragment identification, if PKT_F_FRAG */
    uint32_t flags;     /* PKT_F_* */

    /* Innermost IP header, as nDPI wants it: l3_len = min(bytes captured,
     * IP total length). */
    const uint8_t *l3;
    uint32_t l3_len;
    /* L4 header (NULL for non-first fragments and for protocols without
     * one we parse, e.g. ESP, OSPF, GRE; the bytes present when it is cut,
     * see PKT_F_L4_TRUNC) and its payload (without an L4 header: the whole
     * IP payload; NULL when the L4 header is cut). */
    const uint8_t *l4;
    uint32_t l4_len;
    const uint8_t *payload;
    uint32_t payload_len;
};

#endif

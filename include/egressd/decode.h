/* decode.h - link layer to L4: fills a struct pkt_meta from a captured frame.
 *
 * Handles Ethernet, 802.1Q / 802.1ad (stacked) VLANs, Linux SLL and SLL2,
 * raw IP, BSD null/loopback, PPP, Cisco HDLC, PPPoE sessions, MPLS label
 * stacks, IPv4 (options, fragments), IPv6 with extension headers,
 * TCP/UDP/ICMP/ICMPv6/SCTP, and decapsulates GRE, ERSPAN II/III, VXLAN and
 * IP-in-IP so the inner flow is tracked (docs/decoding.md). Anomalies
 * become counters in struct decode_stats, never log lines.
 *
 * Thread safety: none needed; each worker owns its decode_stats.
 */
#ifndef EGRESSD_DECODE_H
#define EGRESSD_DECODE_H

#include <stdint.h>

#include "egressd/pkt.h"

/* decode_packet() results */
enum decode_result {
    DECODE_OK = 0,      /* an IP packet: meta is filled */
    DECODE_NOT_IP = 1,  /* well-formed but carries no IP (ARP, LLDP, ...) */
    DECODE_ERROR = -1,  /* malformed or unsupported: a counter was bumped */
};

/* One counter per kind of decode failure (and a few per-kind totals).
 * X-macro so names and enum stay in one place. */
#define DECODE_COUNTERS(X)                                                   \
    X(DEC_LINKTYPE_UNSUPPORTED, "linktype_unsupported")                      \
    X(DEC_L2_TRUNCATED, "l2_truncated")                                      \
    X(DEC_VLAN_TRUNCATED, "vlan_truncated")                                  \
    X(DEC_MPLS_TRUNCATED, "mpls_truncated")                                  \
    X(DEC_MPLS_UNKNOWN_PAYLOAD, "mpls_unknown_payload")                      \
    X(DEC_NOT_IP, "not_ip")                                                  \
    X(DEC_IPV4_TRUNCATED, "ipv4_truncated")                                  \
    X(DEC_IPV4_BAD_HLEN, "ipv4_bad_hlen")                                    \
    X(DEC_IPV4_BAD_LEN, "ipv4_bad_total_len")                                \
    X(DEC_IPV6_TRUNCATED, "ipv6_truncated")                                  \
    X(DEC_IPV6_EXT_TRUNCATED, "ipv6_ext_truncated")                          \
    X(DEC_IPV6_EXT_TOO_MANY, "ipv6_ext_too_many")                            \
    X(DEC_IP_BAD_VERSION, "ip_bad_version")                                  \
    X(DEC_FRAGMENT, "fragments")                                             \
    X(DEC_TCP_TRUNCATED, "tcp_truncated")                                    \
    X(DEC_TCP_BAD_HLEN, "tcp_bad_hlen")                                      \
    X(DEC_UDP_TRUNCATED, "udp_truncated")                                    \
    X(DEC_ICMP_TRUNCATED, "icmp_truncated")                                  \
    X(DEC_SCTP_TRUNCATED, "sctp_truncated")                                  \
    X(DEC_GRE_TRUNCATED, "gre_truncated")                                    \
    X(DEC_GRE_UNSUPPORTED, "gre_unsupported")                                \
    X(DEC_ERSPAN_TRUNCATED, "erspan_truncated")                              \
    X(DEC_VXLAN_TRUNCATED, "vxlan_truncated")                                \
    X(DEC_TUNNEL_TOO_DEEP, "tunnel_too_deep")                                \
    X(DEC_TUNNELED, "tunneled")

enum decode_counter {
#define DECODE_ENUM_(id, name) id,
    DECODE_COUNTERS(DECODE_ENUM_)
#undef DECODE_ENUM_
    DEC_COUNTER_MAX
};

struct decode_stats {
    uint64_t c[DEC_COUNTER_MAX];
};

/* Name of counter i (stable, used in the stats event). */
const char *decode_counter_name(unsigned i);

/* Returns 1 if libpcap link type `dlt` is decodable, else 0. */
int decode_linktype_supported(int dlt);

/* Decodes one frame of link type `dlt` (a DLT_* value from pcap_datalink).
 * Fills *m (ts_us, wire_len and cap_len set from the arguments) and returns
 * DECODE_OK, DECODE_NOT_IP or DECODE_ERROR. Never reads past frame+caplen.
 * On DECODE_ERROR exactly one failure counter has been incremented; *m is
 * meaningful only on DECODE_OK. Allocates nothing; cannot fail otherwise. */
int decode_packet(struct decode_stats *st, int dlt, const uint8_t *frame,
                  uint32_t caplen, uint32_t wire_len, uint64_t ts_us,
                  struct pkt_meta *m);

#endif

/* decode.c - decoder entry point: counter names, the link types we accept
 * and their framing, down to the first ethertype / PPP protocol / IP header.
 *
 * Link framings handled here (the rest of the stack is in decode-l2.c,
 * decode-ip.c and decode-tunnel.c; see docs/decoding.md):
 *
 *   DLT_EN10MB       Ethernet II (decode-l2.c)
 *   DLT_LINUX_SLL    16 bytes: pkttype(2) hatype(2) halen(2) addr(8) proto(2)
 *   DLT_LINUX_SLL2   20 bytes: proto(2) rsvd(2) ifindex(4) hatype(2)
 *                    pkttype(1) halen(1) addr(8)
 *   DLT_RAW, 101     bare IPv4 or IPv6, told by the version nibble
 *   DLT_IPV4/IPV6    bare IP of that version
 *   DLT_NULL/LOOP    4-byte address family, host order (NULL) or network
 *                    order (LOOP); both orders are accepted for both, as
 *                    captures move between machines
 *   DLT_PPP          [ff 03] protocol(1 or 2): HDLC-like framing optional,
 *                    protocol field compression (RFC 1661 6.5) accepted
 *   DLT_PPP_SERIAL   ff 03 protocol(2), or Cisco HDLC framing (RFC 1547 4.3.1
 *                    lets such links carry either)
 *   DLT_C_HDLC       address(1) control(1) ethertype(2) (Cisco HDLC)
 */
#include "egressd/decode.h"

#include <string.h>

#include "decode-int.h"
#include "egressd/bytes.h"

#include <pcap/dlt.h>

/* The on-disk LINKTYPE_RAW. libpcap maps it to DLT_RAW when reading a file,
 * but a caller may pass the file's value straight through. */
#define LINKTYPE_RAW_ 101

#define SLL_HDR_LEN 16
#define SLL2_HDR_LEN 20
#define ARPHRD_NETLINK_ 824 /* SLL "protocol" is then a netlink family */

/* BSD address families as written by DLT_NULL/DLT_LOOP: AF_INET is 2
 * everywhere, AF_INET6 differs (NetBSD/OpenBSD 24, FreeBSD 28, macOS 30). */
#define BSD_AF_INET 2
#define BSD_AF_INET6_NETBSD 24
#define BSD_AF_INET6_FREEBSD 28
#define BSD_AF_INET6_DARWIN 30

static const char *const counter_names[DEC_COUNTER_MAX] = {
#define DECODE_NAME_(id, name) [id] = name,
    DECODE_COUNTERS(DECODE_NAME_)
#undef DECODE_NAME_
};

const char *decode_counter_name(unsigned i)
{
    return i < DEC_COUNTER_MAX ? counter_names[i] : "unknown";
}

int decode_linktype_supported(int dlt)
{
    switch (dlt) {
    case DLT_EN10MB:
    case DLT_LINUX_SLL:
    case DLT_LINUX_SLL2:
    case DLT_RAW:
    case LINKTYPE_RAW_:
    case DLT_IPV4:
    case DLT_IPV6:
    case DLT_NULL:
    case DLT_LOOP:
    case DLT_PPP:
    case DLT_PPP_SERIAL:
    case DLT_C_HDLC:
        return 1;
    default:
        return 0;
    }
}

static int link_sll(struct dec_ctx *c, const uint8_t *p, uint32_t len)
{
    struct bytes_rd r;
    uint16_t hatype, proto;
    bytes_init(&r, p, len);
    if (bytes_peek_be16(&r, 2, &hatype) || bytes_peek_be16(&r, 14, &proto) ||
        bytes_skip(&r, SLL_HDR_LEN))
        return dec_fail(c, DEC_L2_TRUNCATED);
    if (hatype == ARPHRD_NETLINK_)
        return DECODE_NOT_IP;
    return dec_ethertype(c, proto, bytes_cur(&r), bytes_left(&r));
}

static int link_sll2(struct dec_ctx *c, const uint8_t *p, uint32_t len)
{
    struct bytes_rd r;
    uint16_t hatype, proto;
    bytes_init(&r, p, len);
    if (bytes_peek_be16(&r, 0, &proto) || bytes_peek_be16(&r, 8, &hatype) ||
        bytes_skip(&r, SLL2_HDR_LEN))
        return dec_fail(c, DEC_L2_TRUNCATED);
    if (hatype == ARPHRD_NETLINK_)
        return DECODE_NOT_IP;
    return dec_ethertype(c, proto, bytes_cur(&r), bytes_left(&r));
}

static int link_null(struct dec_ctx *c, const uint8_t *p, uint32_t len)
{
    struct bytes_rd r;
    uint32_t af;
    bytes_init(&r, p, len);
    if (bytes_get_be32(&r, &af))
        return dec_fail(c, DEC_L2_TRUNCATED);
    /* Families are small numbers: if the high half is set, the field was
     * written little-endian. */
    if (af & 0xffff0000u)
        af = (af >> 24) | ((af >> 8) & 0xff00u) | ((af << 8) & 0xff0000u) | (af << 24);
    switch (af) {
    case BSD_AF_INET:
        return dec_ipv4(c, bytes_cur(&r), bytes_left(&r));
    case BSD_AF_INET6_NETBSD:
    case BSD_AF_INET6_FREEBSD:
    case BSD_AF_INET6_DARWIN:
        return dec_ipv6(c, bytes_cur(&r), bytes_left(&r));
    default:
        return DECODE_NOT_IP;
    }
}

/* PPP with optional ff 03 and a 1- or 2-byte protocol field. */
static int link_ppp(struct dec_ctx *c, const uint8_t *p, uint32_t len)
{
    struct bytes_rd r;
    uint8_t b0, b1;
    uint16_t proto;
    bytes_init(&r, p, len);
    if (bytes_peek_u8(&r, 0, &b0))
        return dec_fail(c, DEC_L2_TRUNCATED);
    if (b0 == 0xff) {
        if (bytes_peek_u8(&r, 1, &b1))
            return dec_fail(c, DEC_L2_TRUNCATED);
        if (b1 == 0x03)
            (void)bytes_skip(&r, 2); /* both bytes were just peeked */
    }
    if (bytes_peek_u8(&r, 0, &b0))
        return dec_fail(c, DEC_L2_TRUNCATED);
    if (b0 & 1) {
        /* Compressed: protocol numbers have an odd low byte and an even
         * high byte, so an odd first byte is a 1-byte protocol. */
        (void)bytes_skip(&r, 1);
        proto = b0;
    } else if (bytes_get_be16(&r, &proto)) {
        return dec_fail(c, DEC_L2_TRUNCATED);
    }
    return dec_ppp_proto(c, proto, bytes_cur(&r), bytes_left(&r));
}

static int link_chdlc(struct dec_ctx *c, const uint8_t *p, uint32_t len)
{
    struct bytes_rd r;
    uint16_t type;
    bytes_init(&r, p, len);
    if (bytes_skip(&r, 2) || bytes_get_be16(&r, &type))
        return dec_fail(c, DEC_L2_TRUNCATED);
    return dec_ethertype(c, type, bytes_cur(&r), bytes_left(&r));
}

static int link_ppp_serial(struct dec_ctx *c, const uint8_t *p, uint32_t len)
{
    struct bytes_rd r;
    uint8_t addr;
    bytes_init(&r, p, len);
    if (bytes_peek_u8(&r, 0, &addr))
        return dec_fail(c, DEC_L2_TRUNCATED);
    /* Cisco HDLC unicast / broadcast address. */
    if (addr == 0x0f || addr == 0x8f)
        return link_chdlc(c, p, len);
    return link_ppp(c, p, len);
}

int decode_packet(struct decode_stats *st, int dlt, const uint8_t *frame,
                  uint32_t caplen, uint32_t wire_len, uint64_t ts_us,
                  struct pkt_meta *m)
{
    memset(m, 0, sizeof(*m));
    m->ts_us = ts_us;
    m->wire_len = wire_len;
    m->cap_len = caplen;

    struct dec_ctx c = {.st = st, .m = m, .depth = 0};
    int rc;
    switch (dlt) {
    case DLT_EN10MB:
        rc = dec_ethernet(&c, frame, caplen);
        break;
    case DLT_LINUX_SLL:
        rc = link_sll(&c, frame, caplen);
        break;
    case DLT_LINUX_SLL2:
        rc = link_sll2(&c, frame, caplen);
        break;
    case DLT_RAW:
    case LINKTYPE_RAW_:
        rc = dec_ip_any(&c, frame, caplen);
        break;
    case DLT_IPV4:
        rc = dec_ipv4(&c, frame, caplen);
        break;
    case DLT_IPV6:
        rc = dec_ipv6(&c, frame, caplen);
        break;
    case DLT_NULL:
    case DLT_LOOP:
        rc = link_null(&c, frame, caplen);
        break;
    case DLT_PPP:
        rc = link_ppp(&c, frame, caplen);
        break;
    case DLT_PPP_SERIAL:
        rc = link_ppp_serial(&c, frame, caplen);
        break;
    case DLT_C_HDLC:
        rc = link_chdlc(&c, frame, caplen);
        break;
    default:
        rc = dec_fail(&c, DEC_LINKTYPE_UNSUPPORTED);
        break;
    }
    if (rc == DECODE_NOT_IP)
        dec_count(&c, DEC_NOT_IP);
    return rc;
}

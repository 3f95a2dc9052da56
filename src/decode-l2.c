/* decode-l2.c - Ethernet and what can sit between it and IP: 802.1Q /
 * 802.1ad / 0x9100 VLAN tags, MPLS label stacks, PPPoE sessions, and the PPP
 * protocol numbers shared by PPP links and PPPoE.
 *
 *   Ethernet II    dst(6) src(6) type(2); type < 0x0600 is an 802.3 length
 *                  (LLC follows: not IP for us)
 *   VLAN tag       TCI(2) = PCP(3) DEI(1) VID(12), then the next type(2)
 *   MPLS entry     label(20) TC(3) S(1) TTL(8); S marks the bottom of stack
 *                  (RFC 3032). The payload type is not on the wire: IPv4 or
 *                  IPv6 is guessed from the first nibble after the bottom
 *                  entry, anything else (pseudowires, control word) is
 *                  mpls_unknown_payload.
 *   PPPoE session  ver/type(1) code(1) session(2) length(2) PPP proto(2)
 *                  (RFC 2516)
 */
#include <stdint.h>

#include "decode-int.h"
#include "egressd/bytes.h"

#define ETH_HDR_LEN 14
#define ETH_MIN_TYPE 0x0600 /* below: an 802.3 length field */

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86dd
#define ETHERTYPE_VLAN 0x8100
#define ETHERTYPE_QINQ 0x88a8
#define ETHERTYPE_QINQ_OLD 0x9100 /* pre-standard stacked tag */
#define ETHERTYPE_MPLS 0x8847
#define ETHERTYPE_MPLS_MC 0x8848
#define ETHERTYPE_PPPOE_SESS 0x8864

#define PPP_IPV4 0x0021
#define PPP_IPV6 0x0057
#define PPP_MPLS 0x0281
#define PPP_MPLS_MC 0x0283

#define PPPOE_HDR_LEN 6
#define PPPOE_VER_TYPE 0x11

#define MPLS_BOS 0x100u

int dec_ethernet(struct dec_ctx *c, const uint8_t *p, uint32_t len)
{
    struct bytes_rd r;
    uint16_t type;
    /* A new Ethernet layer: VLANs of an outer one (before a VXLAN or ERSPAN
     * header) do not describe the inner frame. */
    c->m->vlan[0] = c->m->vlan[1] = 0;
    c->m->vlan_count = 0;
    bytes_init(&r, p, len);
    if (bytes_peek_be16(&r, 12, &type) || bytes_skip(&r, ETH_HDR_LEN))
        return dec_fail(c, DEC_L2_TRUNCATED);
    if (type < ETH_MIN_TYPE)
        return DECODE_NOT_IP;
    return dec_ethertype(c, type, bytes_cur(&r), bytes_left(&r));
}

static int dec_pppoe(struct dec_ctx *c, const uint8_t *p, uint32_t len)
{
    struct bytes_rd r;
    uint8_t vt;
    uint16_t proto;
    bytes_init(&r, p, len);
    if (bytes_peek_u8(&r, 0, &vt) || bytes_skip(&r, PPPOE_HDR_LEN) || bytes_get_be16(&r, &proto))
        return dec_fail(c, DEC_L2_TRUNCATED);
    if (vt != PPPOE_VER_TYPE)
        return DECODE_NOT_IP; /* a PPPoE version we do not know */
    return dec_ppp_proto(c, proto, bytes_cur(&r), bytes_left(&r));
}

int dec_ethertype(struct dec_ctx *c, uint16_t type, const uint8_t *p, uint32_t len)
{
    struct bytes_rd r;
    bytes_init(&r, p, len);
    /* Tags are peeled in a loop: each consumes 4 bytes, so the capture
     * length bounds it. */
    for (;;) {
        switch (type) {
        case ETHERTYPE_VLAN:
        case ETHERTYPE_QINQ:
        case ETHERTYPE_QINQ_OLD: {
            uint16_t tci;
            if (bytes_get_be16(&r, &tci) || bytes_get_be16(&r, &type))
                return dec_fail(c, DEC_VLAN_TRUNCATED);
            struct pkt_meta *m = c->m;
            if (m->vlan_count < 2)
                m->vlan[m->vlan_count] = tci & 0x0fff;
            if (m->vlan_count < UINT8_MAX)
                m->vlan_count++;
            continue;
        }
        case ETHERTYPE_IPV4:
            return dec_ipv4(c, bytes_cur(&r), bytes_left(&r));
        case ETHERTYPE_IPV6:
            return dec_ipv6(c, bytes_cur(&r), bytes_left(&r));
        case ETHERTYPE_MPLS:
        case ETHERTYPE_MPLS_MC:
            return dec_mpls(c, bytes_cur(&r), bytes_left(&r));
        case ETHERTYPE_PPPOE_SESS:
            return dec_pppoe(c, bytes_cur(&r), bytes_left(&r));
        default:
            return DECODE_NOT_IP;
        }
    }
}

int dec_mpls(struct dec_ctx *c, const uint8_t *p, uint32_t len)
{
    struct bytes_rd r;
    uint32_t entry;
    uint8_t first;
    bytes_init(&r, p, len);
    do {
        if (bytes_get_be32(&r, &entry))
            return dec_fail(c, DEC_MPLS_TRUNCATED);
    } while (!(entry & MPLS_BOS));
    if (bytes_peek_u8(&r, 0, &first))
        return dec_fail(c, DEC_MPLS_TRUNCATED);
    switch (first >> 4) {
    case 4:
        return dec_ipv4(c, bytes_cur(&r), bytes_left(&r));
    case 6:
        return dec_ipv6(c, bytes_cur(&r), bytes_left(&r));
    default:
        return dec_fail(c, DEC_MPLS_UNKNOWN_PAYLOAD);
    }
}

int dec_ppp_proto(struct dec_ctx *c, uint16_t proto, const uint8_t *p, uint32_t len)
{
    switch (proto) {
    case PPP_IPV4:
        return dec_ipv4(c, p, len);
    case PPP_IPV6:
        return dec_ipv6(c, p, len);
    case PPP_MPLS:
    case PPP_MPLS_MC:
        return dec_mpls(c, p, len);
    default:
        return DECODE_NOT_IP; /* LCP, IPCP, CHAP, ... */
    }
}

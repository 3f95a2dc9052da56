/* decode-tunnel.c - decapsulation of GRE (RFC 2784, key and sequence of
 * RFC 2890), ERSPAN type I/II/III over GRE, VXLAN (RFC 7348) and IP-in-IP
 * (IPv4/IPv6 in IPv4/IPv6: RFC 2003, RFC 4213, RFC 2473), so the flow table
 * sees the inner packet.
 *
 * Policy (docs/decoding.md): the outer packet is already fully described in
 * c->m when a function here is called. If the inner packet decodes to an IP
 * packet, c->m describes it instead, with PKT_F_TUNNEL and the tunnel kind
 * of the outermost layer removed. Otherwise (inner malformed, not IP, an
 * unsupported GRE variant, or more than DEC_MAX_TUNNEL_DEPTH layers) the
 * problem is counted and c->m is put back to the outer packet, so the bytes
 * are still accounted to the outer flow (e.g. proto 47 between the two GRE
 * endpoints). Teredo, GTP and CAPWAP are not decapsulated: they stay UDP
 * flows, which nDPI names.
 *
 * GRE:
 *   |C|R|K|S|s|Recur|  Flags  | Ver |         Protocol Type         |
 *   |      Checksum (if C)          |       Reserved1 (if C)        |
 *   |                         Key (if K)                            |
 *   |                   Sequence Number (if S)                      |
 *   Version 1 is PPTP's enhanced GRE (carries PPP): unsupported. R (RFC 1701
 *   source routing) changes the layout and is unsupported too.
 *
 * ERSPAN type II (protocol 0x88BE with S set; type I has S clear and no
 * header at all):
 *   | Ver=1 |         VLAN          | COS |En |T|    Session ID     |
 *   |       Reserved        |                 Index                 |
 * ERSPAN type III (protocol 0x22EB):
 *   | Ver=2 |         VLAN          | COS |BSO|T|    Session ID     |
 *   |                           Timestamp                           |
 *   |              SGT              |P|   FT    |   Hw ID   |D|Gra|O|
 *   | platform-specific subheader, 8 bytes, present if O            |
 *   FT (frame type) 0 is Ethernet; other frame types are unsupported.
 *
 * VXLAN (UDP destination port 4789, I flag set):
 *   |R|R|R|R|I|R|R|R|                   Reserved                    |
 *   |            VXLAN Network Identifier (VNI)     |   Reserved    |
 */
#include <stdint.h>

#include "decode-int.h"
#include "egressd/bytes.h"

#define GRE_F_CSUM 0x8000u
#define GRE_F_ROUTING 0x4000u
#define GRE_F_KEY 0x2000u
#define GRE_F_SEQ 0x1000u
#define GRE_VER_MASK 0x0007u

#define GRE_PT_IPV4 0x0800
#define GRE_PT_IPV6 0x86dd
#define GRE_PT_MPLS 0x8847
#define GRE_PT_MPLS_MC 0x8848
#define GRE_PT_TEB 0x6558 /* transparent Ethernet bridging */
#define GRE_PT_ERSPAN2 0x88be
#define GRE_PT_ERSPAN3 0x22eb

#define ERSPAN2_HLEN 8
#define ERSPAN2_VER 1
#define ERSPAN3_HLEN 12
#define ERSPAN3_VER 2
#define ERSPAN3_SUBHDR_LEN 8
#define ERSPAN3_FT_ETHERNET 0

#define VXLAN_HLEN 8
#define VXLAN_F_I 0x08u

typedef int (*dec_layer_fn)(struct dec_ctx *c, const uint8_t *p, uint32_t len);

/* Decodes the inner packet (p, len) with `inner`; keeps it if it is an IP
 * packet, else puts the outer description back. */
static void tunnel_decap(struct dec_ctx *c, enum pkt_tunnel kind, dec_layer_fn inner,
                         const uint8_t *p, uint32_t len)
{
    if (c->depth >= DEC_MAX_TUNNEL_DEPTH) {
        dec_count(c, DEC_TUNNEL_TOO_DEEP);
        return;
    }
    struct pkt_meta outer = *c->m;
    c->depth++;
    int rc = inner(c, p, len);
    c->depth--;
    if (rc != DECODE_OK) {
        /* DECODE_ERROR was counted by the inner layer; DECODE_NOT_IP (ARP
         * in VXLAN, ...) is no error: the outer packet is what we have. */
        *c->m = outer;
        return;
    }
    /* Set on the way out, so the outermost layer's kind is the one left. */
    c->m->flags |= PKT_F_TUNNEL;
    c->m->tunnel = (uint8_t)kind;
    dec_count(c, DEC_TUNNELED);
}

static void gre_erspan2(struct dec_ctx *c, struct bytes_rd *r, int seq_bit)
{
    uint8_t ver;
    if (!seq_bit) {
        /* Type I: the mirrored frame follows the GRE header directly.
         * pkt.h has one kind for protocol 0x88BE, so it is reported as II. */
        tunnel_decap(c, PKT_TUN_ERSPAN2, dec_ethernet, bytes_cur(r), bytes_left(r));
        return;
    }
    if (bytes_peek_u8(r, 0, &ver) || bytes_skip(r, ERSPAN2_HLEN)) {
        dec_count(c, DEC_ERSPAN_TRUNCATED);
        return;
    }
    if (ver >> 4 != ERSPAN2_VER) {
        dec_count(c, DEC_GRE_UNSUPPORTED);
        return;
    }
    tunnel_decap(c, PKT_TUN_ERSPAN2, dec_ethernet, bytes_cur(r), bytes_left(r));
}

static void gre_erspan3(struct dec_ctx *c, struct bytes_rd *r)
{
    uint8_t ver, b10, b11;
    if (bytes_peek_u8(r, 0, &ver) || bytes_peek_u8(r, 10, &b10) || bytes_peek_u8(r, 11, &b11) ||
        bytes_skip(r, ERSPAN3_HLEN)) {
        dec_count(c, DEC_ERSPAN_TRUNCATED);
        return;
    }
    if (ver >> 4 != ERSPAN3_VER || ((b10 >> 2) & 0x1f) != ERSPAN3_FT_ETHERNET) {
        dec_count(c, DEC_GRE_UNSUPPORTED);
        return;
    }
    if ((b11 & 0x01) && bytes_skip(r, ERSPAN3_SUBHDR_LEN)) {
        dec_count(c, DEC_ERSPAN_TRUNCATED);
        return;
    }
    tunnel_decap(c, PKT_TUN_ERSPAN3, dec_ethernet, bytes_cur(r), bytes_left(r));
}

void dec_gre(struct dec_ctx *c, const uint8_t *p, uint32_t len)
{
    struct bytes_rd r;
    uint16_t fv, proto;
    bytes_init(&r, p, len);
    if (bytes_get_be16(&r, &fv) || bytes_get_be16(&r, &proto)) {
        dec_count(c, DEC_GRE_TRUNCATED);
        return;
    }
    if ((fv & GRE_VER_MASK) != 0 || (fv & GRE_F_ROUTING)) {
        dec_count(c, DEC_GRE_UNSUPPORTED);
        return;
    }
    uint32_t opt = ((fv & GRE_F_CSUM) ? 4u : 0u) + ((fv & GRE_F_KEY) ? 4u : 0u) +
                   ((fv & GRE_F_SEQ) ? 4u : 0u);
    if (bytes_skip(&r, opt)) {
        dec_count(c, DEC_GRE_TRUNCATED);
        return;
    }
    switch (proto) {
    case GRE_PT_IPV4:
        tunnel_decap(c, PKT_TUN_GRE, dec_ipv4, bytes_cur(&r), bytes_left(&r));
        return;
    case GRE_PT_IPV6:
        tunnel_decap(c, PKT_TUN_GRE, dec_ipv6, bytes_cur(&r), bytes_left(&r));
        return;
    case GRE_PT_MPLS:
    case GRE_PT_MPLS_MC:
        tunnel_decap(c, PKT_TUN_GRE, dec_mpls, bytes_cur(&r), bytes_left(&r));
        return;
    case GRE_PT_TEB:
        tunnel_decap(c, PKT_TUN_GRE, dec_ethernet, bytes_cur(&r), bytes_left(&r));
        return;
    case GRE_PT_ERSPAN2:
        gre_erspan2(c, &r, (fv & GRE_F_SEQ) != 0);
        return;
    case GRE_PT_ERSPAN3:
        gre_erspan3(c, &r);
        return;
    default:
        dec_count(c, DEC_GRE_UNSUPPORTED);
        return;
    }
}

void dec_vxlan(struct dec_ctx *c, const uint8_t *p, uint32_t len)
{
    struct bytes_rd r;
    uint8_t fl;
    bytes_init(&r, p, len);
    /* Without the I flag this is some other use of port 4789: a UDP flow. */
    if (bytes_peek_u8(&r, 0, &fl) == EGR_OK && !(fl & VXLAN_F_I))
        return;
    if (bytes_skip(&r, VXLAN_HLEN)) {
        dec_count(c, DEC_VXLAN_TRUNCATED);
        return;
    }
    tunnel_decap(c, PKT_TUN_VXLAN, dec_ethernet, bytes_cur(&r), bytes_left(&r));
}

void dec_ipip(struct dec_ctx *c, int inner_family, const uint8_t *p, uint32_t len)
{
    tunnel_decap(c, PKT_TUN_IPIP, inner_family == 4 ? dec_ipv4 : dec_ipv6, p, len);
}

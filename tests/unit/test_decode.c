/* test_decode.c - the packet decoder (decode.h): every link type, VLAN
 * stacks, MPLS, PPPoE, IPv4 options and fragments, IPv6 extension headers,
 * each L4 protocol, GRE / ERSPAN II / ERSPAN III / VXLAN / IP-in-IP
 * decapsulation and its fallbacks, padding, truncation of two sample frames
 * at every byte offset, and every packet of real captures from
 * $EGRESSD_SHARED/pcaps with counts cross-checked against tshark.
 *
 * Fixtures are raw byte arrays built by the small writers below (one per
 * header). Every decode runs on a heap copy of exactly caplen bytes so
 * ASan reports any read past the capture, and every result is checked
 * against the decoder's contract (pointers inside the frame, one counter
 * per DECODE_ERROR, no L4 on a non-first fragment) before the test looks
 * at it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "egressd/decode.h"
#include "shared_dir.h"
#include "egressd/pkt.h"

/* ---- frame writer ------------------------------------------------------- */

enum fix_kind { FIX_IPV4, FIX_IPV6, FIX_UDP };

struct pb {
    uint8_t b[2048];
    uint32_t n;
    /* Length fields patched by pb_finish() to "up to the end". */
    struct {
        uint32_t at;
        enum fix_kind kind;
    } fix[16];
    unsigned nfix;
};

static void put8(struct pb *p, unsigned v)
{
    assert_true(p->n < sizeof(p->b));
    p->b[p->n++] = (uint8_t)v;
}

static void put16(struct pb *p, unsigned v)
{
    put8(p, v >> 8);
    put8(p, v);
}

static void put32(struct pb *p, uint32_t v)
{
    put16(p, v >> 16);
    put16(p, v & 0xffff);
}

static void putn(struct pb *p, const void *d, uint32_t n)
{
    assert_true(p->n + n <= sizeof(p->b));
    memcpy(p->b + p->n, d, n);
    p->n += n;
}

/* Payload bytes that look like nothing in particular. */
static void fill(struct pb *p, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        put8(p, 0xa0 + i % 16);
}

static void add_fix(struct pb *p, enum fix_kind k)
{
    assert_true(p->nfix < 16);
    p->fix[p->nfix].at = p->n;
    p->fix[p->nfix].kind = k;
    p->nfix++;
}

static void pb_finish(struct pb *p)
{
    for (unsigned i = 0; i < p->nfix; i++) {
        uint32_t at = p->fix[i].at, v = p->n - at;
        uint32_t field = at;
        switch (p->fix[i].kind) {
        case FIX_IPV4:
            field = at + 2;
            break;
        case FIX_IPV6:
            field = at + 4;
            v -= 40;
            break;
        case FIX_UDP:
            field = at + 4;
            break;
        }
        p->b[field] = (uint8_t)(v >> 8);
        p->b[field + 1] = (uint8_t)v;
    }
    p->nfix = 0;
}

static void addr4(const char *s, uint8_t out[4])
{
    assert_int_equal(inet_pton(AF_INET, s, out), 1);
}

static void addr6(const char *s, uint8_t out[16])
{
    assert_int_equal(inet_pton(AF_INET6, s, out), 1);
}

static void eth(struct pb *p, uint16_t type)
{
    static const uint8_t macs[12] = {0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02};
    putn(p, macs, sizeof(macs));
    put16(p, type);
}

/* A tag: TCI then the type that follows it. */
static void vlan(struct pb *p, uint16_t vid, uint16_t next)
{
    put16(p, 0x2000 | vid); /* PCP 1, so the id must be masked */
    put16(p, next);
}

static void mpls(struct pb *p, uint32_t label, int bos)
{
    put32(p, label << 12 | (bos ? 0x100u : 0) | 64);
}

/* IPv4 header with optlen bytes of options (NOPs) and fragment field frag. */
static void ipv4x(struct pb *p, uint8_t proto, const char *src, const char *dst,
                  uint32_t optlen, uint16_t id, uint16_t frag)
{
    uint8_t a[4];
    add_fix(p, FIX_IPV4);
    put8(p, 0x40 | (5 + optlen / 4));
    put8(p, 0);
    put16(p, 0); /* total length: pb_finish */
    put16(p, id);
    put16(p, frag);
    put8(p, 64);
    put8(p, proto);
    put16(p, 0);
    addr4(src, a);
    putn(p, a, 4);
    addr4(dst, a);
    putn(p, a, 4);
    for (uint32_t i = 0; i < optlen; i++)
        put8(p, 1);
}

static void ipv4(struct pb *p, uint8_t proto, const char *src, const char *dst)
{
    ipv4x(p, proto, src, dst, 0, 0x1234, 0x4000 /* DF */);
}

static void ipv6(struct pb *p, uint8_t nh, const char *src, const char *dst)
{
    uint8_t a[16];
    add_fix(p, FIX_IPV6);
    put32(p, 0x60000000);
    put16(p, 0); /* payload length: pb_finish */
    put8(p, nh);
    put8(p, 57);
    addr6(src, a);
    putn(p, a, 16);
    addr6(dst, a);
    putn(p, a, 16);
}

/* Generic extension header (hop-by-hop, routing, destination options) of
 * (units + 1) * 8 bytes. */
static void ext6(struct pb *p, uint8_t nh, uint8_t units)
{
    put8(p, nh);
    put8(p, units);
    for (unsigned i = 2; i < (units + 1u) * 8; i++)
        put8(p, i == 2 ? 1 : 0); /* PadN-ish filler */
}

static void frag6(struct pb *p, uint8_t nh, uint16_t offset8, int more, uint32_t id)
{
    put8(p, nh);
    put8(p, 0);
    put16(p, (uint16_t)(offset8 << 3) | (more ? 1 : 0));
    put32(p, id);
}

/* AH with payload length `len4` (the header is (len4 + 2) * 4 bytes). */
static void ah6(struct pb *p, uint8_t nh, uint8_t len4)
{
    put8(p, nh);
    put8(p, len4);
    for (unsigned i = 2; i < (len4 + 2u) * 4; i++)
        put8(p, 0x55);
}

static void tcp(struct pb *p, uint16_t sport, uint16_t dport, uint8_t flags, uint32_t optlen)
{
    put16(p, sport);
    put16(p, dport);
    put32(p, 1000);
    put32(p, 2000);
    put8(p, (uint8_t)((5 + optlen / 4) << 4));
    put8(p, flags);
    put16(p, 65535);
    put16(p, 0);
    put16(p, 0);
    for (uint32_t i = 0; i < optlen; i++)
        put8(p, 1);
}

static void udp(struct pb *p, uint16_t sport, uint16_t dport)
{
    add_fix(p, FIX_UDP);
    put16(p, sport);
    put16(p, dport);
    put16(p, 0); /* length: pb_finish */
    put16(p, 0);
}

static void icmp(struct pb *p, uint8_t type, uint8_t code)
{
    put8(p, type);
    put8(p, code);
    put16(p, 0);
    put16(p, 0x77);
    put16(p, 1);
}

static void sctp(struct pb *p, uint16_t sport, uint16_t dport)
{
    put16(p, sport);
    put16(p, dport);
    put32(p, 0xdeadbeef);
    put32(p, 0);
}

#define GRE_C 0x8000
#define GRE_K 0x2000
#define GRE_S 0x1000

static void gre(struct pb *p, uint16_t flags_ver, uint16_t proto)
{
    put16(p, flags_ver);
    put16(p, proto);
    if (flags_ver & GRE_C)
        put32(p, 0xabcd0000);
    if (flags_ver & GRE_K)
        put32(p, 0x00000064);
    if (flags_ver & GRE_S)
        put32(p, 7);
}

static void erspan2(struct pb *p, uint16_t vlan_id, uint16_t session)
{
    put16(p, 0x1000 | vlan_id); /* version 1 */
    put16(p, session & 0x3ff);
    put32(p, 42);
}

static void erspan3(struct pb *p, uint16_t session, int o_bit)
{
    put16(p, 0x2000); /* version 2, VLAN 0 */
    put16(p, session & 0x3ff);
    put32(p, 0x11223344); /* timestamp */
    put16(p, 0);          /* SGT */
    put8(p, 0x00);        /* P=0, FT=0 (Ethernet), HW ID high bits */
    put8(p, 0x04 | (o_bit ? 1 : 0)); /* HW ID low, D, Gra=1, O */
    if (o_bit)
        for (int i = 0; i < 8; i++)
            put8(p, 0xee);
}

static void vxlan(struct pb *p, uint32_t vni, uint8_t flags)
{
    put8(p, flags);
    put8(p, 0);
    put16(p, 0);
    put32(p, vni << 8);
}

/* ---- running the decoder ----------------------------------------------- */

/* Result with pointers turned into offsets into the frame (-1 = NULL): the
 * frame is freed before the test looks. */
struct res {
    int rc;
    struct pkt_meta m;
    long l3, l4, pl;
    struct decode_stats st;
};

static long off_of(const uint8_t *ptr, const uint8_t *frame)
{
    return ptr ? (long)(ptr - frame) : -1;
}

static uint64_t failures(const struct decode_stats *st)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < DEC_COUNTER_MAX; i++)
        if (i != DEC_FRAGMENT && i != DEC_TUNNELED && i != DEC_NOT_IP)
            n += st->c[i];
    return n;
}

static uint64_t all_counters(const struct decode_stats *st)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < DEC_COUNTER_MAX; i++)
        n += st->c[i];
    return n;
}

static void check_range(const uint8_t *ptr, uint32_t len, const uint8_t *frame, uint32_t caplen)
{
    if (!ptr) {
        assert_int_equal(len, 0);
        return;
    }
    assert_true(ptr >= frame);
    assert_true((uint64_t)(ptr - frame) + len <= caplen);
}

/* The contract of decode_packet(), checked on every decode of this file. */
static void check_contract(int rc, const struct pkt_meta *m, const struct decode_stats *delta,
                           const uint8_t *frame, uint32_t caplen, uint32_t wire_len)
{
    assert_true(rc == DECODE_OK || rc == DECODE_NOT_IP || rc == DECODE_ERROR);
    if (rc == DECODE_ERROR) {
        assert_int_equal(failures(delta), 1);
        return;
    }
    if (rc == DECODE_NOT_IP) {
        assert_int_equal(delta->c[DEC_NOT_IP], 1);
        return;
    }
    assert_int_equal(delta->c[DEC_NOT_IP], 0);
    assert_int_equal(m->cap_len, caplen);
    assert_int_equal(m->wire_len, wire_len);
    assert_true(m->family == 4 || m->family == 6);
    assert_non_null(m->l3);
    check_range(m->l3, m->l3_len, frame, caplen);
    check_range(m->l4, m->l4_len, frame, caplen);
    check_range(m->payload, m->payload_len, frame, caplen);
    if (m->l4)
        assert_true(m->l4 >= m->l3 && m->l4 + m->l4_len <= m->l3 + m->l3_len);
    if ((m->flags & PKT_F_FRAG) && !(m->flags & PKT_F_FRAG_FIRST)) {
        assert_null(m->l4);
        assert_false(m->flags & PKT_F_L4);
    }
    if (m->flags & PKT_F_FRAG_FIRST)
        assert_true(m->flags & PKT_F_FRAG);
    if (!(m->flags & PKT_F_L4)) {
        assert_int_equal(m->sport, 0);
        assert_int_equal(m->dport, 0);
        assert_int_equal(m->tcp_flags, 0);
    }
    assert_int_equal(!!(m->flags & PKT_F_TUNNEL), m->tunnel != PKT_TUN_NONE);
    if (m->family == 4)
        for (int i = 4; i < 16; i++)
            assert_int_equal(m->src[i] | m->dst[i], 0);
}

static struct res run_dlt(int dlt, const uint8_t *bytes, uint32_t caplen, uint32_t wire_len)
{
    struct res r;
    memset(&r, 0, sizeof(r));
    uint8_t *frame = malloc(caplen ? caplen : 1);
    assert_non_null(frame);
    if (caplen)
        memcpy(frame, bytes, caplen);
    r.rc = decode_packet(&r.st, dlt, frame, caplen, wire_len, 1700000000123456ull, &r.m);
    check_contract(r.rc, &r.m, &r.st, frame, caplen, wire_len);
    if (r.rc == DECODE_OK) {
        assert_int_equal(r.m.ts_us, 1700000000123456ull);
        r.l3 = off_of(r.m.l3, frame);
        r.l4 = off_of(r.m.l4, frame);
        r.pl = off_of(r.m.payload, frame);
    }
    r.m.l3 = r.m.l4 = r.m.payload = NULL;
    free(frame);
    return r;
}

static struct res run(int dlt, const struct pb *p)
{
    return run_dlt(dlt, p->b, p->n, p->n);
}

static struct res run_eth(const struct pb *p)
{
    return run(DLT_EN10MB, p);
}

static void expect_error(int dlt, const struct pb *p, enum decode_counter k)
{
    struct res r = run(dlt, p);
    assert_int_equal(r.rc, DECODE_ERROR);
    if (r.st.c[k] != 1)
        fail_msg("expected counter %s, got rc %d", decode_counter_name(k), r.rc);
}

static void expect_addr4(const uint8_t *got, const char *want)
{
    uint8_t a[16] = {0};
    addr4(want, a);
    assert_memory_equal(got, a, 16);
}

static void expect_addr6(const uint8_t *got, const char *want)
{
    uint8_t a[16];
    addr6(want, a);
    assert_memory_equal(got, a, 16);
}

/* Ethernet + IPv4 + UDP 10.0.0.1:5000 -> 10.0.0.2:53 with n payload bytes. */
static void eth_ipv4_udp(struct pb *p, uint32_t n)
{
    eth(p, 0x0800);
    ipv4(p, 17, "10.0.0.1", "10.0.0.2");
    udp(p, 5000, 53);
    fill(p, n);
    pb_finish(p);
}

static void expect_udp4(const struct res *r)
{
    assert_int_equal(r->rc, DECODE_OK);
    assert_int_equal(r->m.family, 4);
    assert_int_equal(r->m.proto, 17);
    expect_addr4(r->m.src, "10.0.0.1");
    expect_addr4(r->m.dst, "10.0.0.2");
    assert_int_equal(r->m.sport, 5000);
    assert_int_equal(r->m.dport, 53);
    assert_true(r->m.flags & PKT_F_L4);
}

/* ---- counters and link types ------------------------------------------- */

static void test_counter_names(void **state)
{
    (void)state;
    assert_string_equal(decode_counter_name(DEC_LINKTYPE_UNSUPPORTED), "linktype_unsupported");
    assert_string_equal(decode_counter_name(DEC_TUNNELED), "tunneled");
    assert_string_equal(decode_counter_name(DEC_IPV6_EXT_TOO_MANY), "ipv6_ext_too_many");
    assert_string_equal(decode_counter_name(DEC_COUNTER_MAX), "unknown");
    for (unsigned i = 0; i < DEC_COUNTER_MAX; i++) {
        const char *n = decode_counter_name(i);
        assert_non_null(n);
        assert_true(strlen(n) > 0);
        for (unsigned j = 0; j < i; j++)
            assert_string_not_equal(n, decode_counter_name(j));
    }
}

static void test_linktype_supported(void **state)
{
    (void)state;
    static const int yes[] = {DLT_EN10MB, DLT_LINUX_SLL, DLT_LINUX_SLL2, DLT_RAW, 101,
                              DLT_IPV4,   DLT_IPV6,      DLT_NULL,       DLT_LOOP, DLT_PPP,
                              DLT_PPP_SERIAL, DLT_C_HDLC};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        assert_int_equal(decode_linktype_supported(yes[i]), 1);
    assert_int_equal(decode_linktype_supported(DLT_IEEE802_11), 0);
    assert_int_equal(decode_linktype_supported(DLT_USB_LINUX), 0);
    assert_int_equal(decode_linktype_supported(-1), 0);

    struct pb p = {0};
    eth_ipv4_udp(&p, 4);
    expect_error(DLT_IEEE802_11, &p, DEC_LINKTYPE_UNSUPPORTED);
}

static void test_ethernet(void **state)
{
    (void)state;
    struct pb p = {0};
    eth_ipv4_udp(&p, 12);
    struct res r = run_eth(&p);
    expect_udp4(&r);
    assert_int_equal(r.m.ttl, 64);
    assert_int_equal(r.m.vlan_count, 0);
    assert_int_equal(r.m.tunnel, PKT_TUN_NONE);
    assert_int_equal(r.l3, 14);
    assert_int_equal(r.m.l3_len, 20 + 8 + 12);
    assert_int_equal(r.l4, 34);
    assert_int_equal(r.m.l4_len, 8);
    assert_int_equal(r.pl, 42);
    assert_int_equal(r.m.payload_len, 12);
    assert_int_equal(all_counters(&r.st), 0);

    /* wire_len is taken from the caller, not the frame. */
    r = run_dlt(DLT_EN10MB, p.b, p.n, 1514);
    assert_int_equal(r.m.wire_len, 1514);
    assert_int_equal(r.m.cap_len, p.n);

    /* ARP and an 802.3/LLC frame are well-formed but not IP. */
    struct pb a = {0};
    eth(&a, 0x0806);
    fill(&a, 28);
    r = run_eth(&a);
    assert_int_equal(r.rc, DECODE_NOT_IP);
    assert_int_equal(r.st.c[DEC_NOT_IP], 1);
    assert_int_equal(all_counters(&r.st), 1);
    struct pb llc = {0};
    eth(&llc, 46);
    fill(&llc, 46);
    assert_int_equal(run_eth(&llc).rc, DECODE_NOT_IP);

    /* Ethertype 0x0800 carrying an IPv6 header. */
    struct pb bad = {0};
    eth(&bad, 0x0800);
    ipv6(&bad, 59, "2001:db8::1", "2001:db8::2");
    pb_finish(&bad);
    expect_error(DLT_EN10MB, &bad, DEC_IP_BAD_VERSION);
}

static void test_linux_sll(void **state)
{
    (void)state;
    struct pb p = {0};
    put16(&p, 0);      /* packet type: to us */
    put16(&p, 1);      /* ARPHRD_ETHER */
    put16(&p, 6);      /* address length */
    fill(&p, 8);       /* address, padded */
    put16(&p, 0x0800); /* protocol */
    ipv4(&p, 6, "192.0.2.1", "198.51.100.7");
    tcp(&p, 44321, 443, 0x02, 0);
    pb_finish(&p);
    struct res r = run(DLT_LINUX_SLL, &p);
    assert_int_equal(r.rc, DECODE_OK);
    assert_int_equal(r.l3, 16);
    assert_int_equal(r.m.proto, 6);
    assert_int_equal(r.m.sport, 44321);
    assert_int_equal(r.m.dport, 443);
    assert_int_equal(r.m.tcp_flags, 0x02);
    expect_addr4(r.m.dst, "198.51.100.7");

    /* A VLAN tag kept in the cooked header's protocol field. */
    struct pb v = {0};
    put16(&v, 4);
    put16(&v, 1);
    put16(&v, 6);
    fill(&v, 8);
    put16(&v, 0x8100);
    vlan(&v, 77, 0x0800);
    ipv4(&v, 17, "10.0.0.1", "10.0.0.2");
    udp(&v, 5000, 53);
    pb_finish(&v);
    r = run(DLT_LINUX_SLL, &v);
    expect_udp4(&r);
    assert_int_equal(r.m.vlan_count, 1);
    assert_int_equal(r.m.vlan[0], 77);

    /* Netlink captures on "any" are not IP whatever the protocol says. */
    struct pb nl = {0};
    put16(&nl, 4);
    put16(&nl, 824);
    put16(&nl, 0);
    fill(&nl, 8);
    put16(&nl, 0x0800);
    fill(&nl, 20);
    assert_int_equal(run(DLT_LINUX_SLL, &nl).rc, DECODE_NOT_IP);

    struct pb s = {0};
    fill(&s, 15);
    expect_error(DLT_LINUX_SLL, &s, DEC_L2_TRUNCATED);
}

static void test_linux_sll2(void **state)
{
    (void)state;
    struct pb p = {0};
    put16(&p, 0x86dd); /* protocol */
    put16(&p, 0);      /* reserved */
    put32(&p, 3);      /* ifindex */
    put16(&p, 1);      /* ARPHRD_ETHER */
    put8(&p, 4);       /* outgoing */
    put8(&p, 6);
    fill(&p, 8);
    ipv6(&p, 17, "2001:db8::1", "2001:db8::53");
    udp(&p, 33000, 53);
    fill(&p, 20);
    pb_finish(&p);
    struct res r = run(DLT_LINUX_SLL2, &p);
    assert_int_equal(r.rc, DECODE_OK);
    assert_int_equal(r.m.family, 6);
    assert_int_equal(r.l3, 20);
    assert_int_equal(r.m.l3_len, 40 + 8 + 20);
    assert_int_equal(r.m.ttl, 57);
    expect_addr6(r.m.src, "2001:db8::1");
    expect_addr6(r.m.dst, "2001:db8::53");
    assert_int_equal(r.m.sport, 33000);
    assert_int_equal(r.m.dport, 53);

    struct pb nl = {0};
    put16(&nl, 0x0800);
    put16(&nl, 0);
    put32(&nl, 1);
    put16(&nl, 824); /* ARPHRD_NETLINK */
    put16(&nl, 0);
    fill(&nl, 8);
    fill(&nl, 20);
    assert_int_equal(run(DLT_LINUX_SLL2, &nl).rc, DECODE_NOT_IP);

    struct pb s = {0};
    fill(&s, 19);
    expect_error(DLT_LINUX_SLL2, &s, DEC_L2_TRUNCATED);
}

static void test_raw_links(void **state)
{
    (void)state;
    struct pb v4 = {0}, v6 = {0};
    ipv4(&v4, 17, "10.0.0.1", "10.0.0.2");
    udp(&v4, 5000, 53);
    pb_finish(&v4);
    ipv6(&v6, 6, "2001:db8::1", "2001:db8::2");
    tcp(&v6, 1234, 80, 0x18, 0);
    fill(&v6, 5);
    pb_finish(&v6);

    static const int raw[] = {DLT_RAW, 101};
    for (int i = 0; i < 2; i++) {
        struct res r = run(raw[i], &v4);
        expect_udp4(&r);
        assert_int_equal(r.l3, 0);
        r = run(raw[i], &v6);
        assert_int_equal(r.rc, DECODE_OK);
        assert_int_equal(r.m.family, 6);
        assert_int_equal(r.m.dport, 80);
        assert_int_equal(r.m.tcp_flags, 0x18);
        assert_int_equal(r.m.payload_len, 5);
    }
    struct res r = run(DLT_IPV4, &v4);
    expect_udp4(&r);
    r = run(DLT_IPV6, &v6);
    assert_int_equal(r.rc, DECODE_OK);
    assert_int_equal(r.m.family, 6);
    /* The link type fixes the version. */
    expect_error(DLT_IPV4, &v6, DEC_IP_BAD_VERSION);
    expect_error(DLT_IPV6, &v4, DEC_IP_BAD_VERSION);

    struct pb junk = {0};
    put8(&junk, 0x55);
    fill(&junk, 30);
    expect_error(DLT_RAW, &junk, DEC_IP_BAD_VERSION);
    struct pb empty = {0};
    expect_error(DLT_RAW, &empty, DEC_L2_TRUNCATED);
    expect_error(DLT_IPV4, &empty, DEC_IPV4_TRUNCATED);
    expect_error(DLT_IPV6, &empty, DEC_IPV6_TRUNCATED);
}

static void test_null_loop(void **state)
{
    (void)state;
    /* Address family as the capturing host wrote it (little-endian here),
     * and in network order as DLT_LOOP has it; IPv6 has three values. */
    struct {
        int dlt;
        uint8_t af[4];
        int family;
    } cases[] = {
        {DLT_NULL, {2, 0, 0, 0}, 4},  {DLT_NULL, {0, 0, 0, 2}, 4},
        {DLT_LOOP, {0, 0, 0, 2}, 4},  {DLT_LOOP, {2, 0, 0, 0}, 4},
        {DLT_NULL, {24, 0, 0, 0}, 6}, {DLT_NULL, {28, 0, 0, 0}, 6},
        {DLT_NULL, {30, 0, 0, 0}, 6}, {DLT_LOOP, {0, 0, 0, 30}, 6},
        {DLT_LOOP, {0, 0, 0, 24}, 6},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pb p = {0};
        putn(&p, cases[i].af, 4);
        if (cases[i].family == 4)
            ipv4(&p, 6, "127.0.0.1", "127.0.0.1");
        else
            ipv6(&p, 6, "::1", "::1");
        tcp(&p, 4222, 50000, 0x10, 0);
        pb_finish(&p);
        struct res r = run(cases[i].dlt, &p);
        assert_int_equal(r.rc, DECODE_OK);
        assert_int_equal(r.m.family, cases[i].family);
        assert_int_equal(r.l3, 4);
        assert_int_equal(r.m.sport, 4222);
    }
    struct pb other = {0};
    put32(&other, 7); /* AF_UNIX-ish: not IP */
    fill(&other, 20);
    assert_int_equal(run(DLT_NULL, &other).rc, DECODE_NOT_IP);
    struct pb s = {0};
    put16(&s, 2);
    expect_error(DLT_NULL, &s, DEC_L2_TRUNCATED);
}

static void test_ppp(void **state)
{
    (void)state;
    /* HDLC-like framing ff 03, plain 2-byte protocol, compressed protocol. */
    const uint8_t heads[][4] = {{0xff, 0x03, 0x00, 0x21}, {0x00, 0x21}, {0x21}};
    const uint32_t lens[] = {4, 2, 1};
    for (int i = 0; i < 3; i++) {
        struct pb p = {0};
        putn(&p, heads[i], lens[i]);
        ipv4(&p, 17, "10.0.0.1", "10.0.0.2");
        udp(&p, 5000, 53);
        pb_finish(&p);
        struct res r = run(DLT_PPP, &p);
        expect_udp4(&r);
        assert_int_equal(r.l3, lens[i]);
    }
    struct pb v6 = {0};
    put16(&v6, 0xff03);
    put16(&v6, 0x0057);
    ipv6(&v6, 58, "fe80::1", "fe80::2");
    icmp(&v6, 135, 0);
    pb_finish(&v6);
    struct res r = run(DLT_PPP, &v6);
    assert_int_equal(r.rc, DECODE_OK);
    assert_int_equal(r.m.proto, 58);
    assert_int_equal(r.m.sport, 135);

    struct pb pm = {0};
    put16(&pm, 0xff03);
    put16(&pm, 0x0281);
    mpls(&pm, 40, 1);
    ipv4(&pm, 17, "10.0.0.1", "10.0.0.2");
    udp(&pm, 5000, 53);
    pb_finish(&pm);
    r = run(DLT_PPP, &pm);
    expect_udp4(&r);
    assert_int_equal(r.l3, 8);

    struct pb lcp = {0};
    put16(&lcp, 0xff03);
    put16(&lcp, 0xc021);
    fill(&lcp, 10);
    assert_int_equal(run(DLT_PPP, &lcp).rc, DECODE_NOT_IP);

    /* PPP over serial: HDLC-like, or Cisco HDLC framing on the same link. */
    struct pb ser = {0};
    put16(&ser, 0xff03);
    put16(&ser, 0x0021);
    ipv4(&ser, 17, "10.0.0.1", "10.0.0.2");
    udp(&ser, 5000, 53);
    pb_finish(&ser);
    r = run(DLT_PPP_SERIAL, &ser);
    expect_udp4(&r);
    struct pb cis = {0};
    put8(&cis, 0x0f);
    put8(&cis, 0);
    put16(&cis, 0x0800);
    ipv4(&cis, 17, "10.0.0.1", "10.0.0.2");
    udp(&cis, 5000, 53);
    pb_finish(&cis);
    r = run(DLT_PPP_SERIAL, &cis);
    expect_udp4(&r);
    r = run(DLT_C_HDLC, &cis);
    expect_udp4(&r);
    assert_int_equal(r.l3, 4);

    struct pb s = {0};
    put8(&s, 0xff);
    expect_error(DLT_PPP, &s, DEC_L2_TRUNCATED);
    expect_error(DLT_PPP_SERIAL, &s, DEC_L2_TRUNCATED);
    struct pb s0 = {0};
    expect_error(DLT_PPP_SERIAL, &s0, DEC_L2_TRUNCATED);
    expect_error(DLT_PPP, &s0, DEC_L2_TRUNCATED);
    struct pb s3 = {0};
    put8(&s3, 0x0f);
    put16(&s3, 0x0008);
    expect_error(DLT_C_HDLC, &s3, DEC_L2_TRUNCATED);
    struct pb s2 = {0};
    put16(&s2, 0xff03);
    put8(&s2, 0x00);
    expect_error(DLT_PPP, &s2, DEC_L2_TRUNCATED);
}

static void test_pppoe(void **state)
{
    (void)state;
    struct pb p = {0};
    eth(&p, 0x8864);
    put8(&p, 0x11);
    put8(&p, 0);
    put16(&p, 0x1234); /* session */
    put16(&p, 2 + 20 + 8);
    put16(&p, 0x0021);
    ipv4(&p, 17, "10.0.0.1", "10.0.0.2");
    udp(&p, 5000, 53);
    pb_finish(&p);
    struct res r = run_eth(&p);
    expect_udp4(&r);
    assert_int_equal(r.l3, 14 + 8);

    struct pb v6 = {0};
    eth(&v6, 0x8864);
    put16(&v6, 0x1100);
    put16(&v6, 1);
    put16(&v6, 42);
    put16(&v6, 0x0057);
    ipv6(&v6, 17, "2001:db8::1", "2001:db8::2");
    udp(&v6, 1, 2);
    pb_finish(&v6);
    r = run_eth(&v6);
    assert_int_equal(r.rc, DECODE_OK);
    assert_int_equal(r.m.family, 6);

    struct pb lcp = {0};
    eth(&lcp, 0x8864);
    put16(&lcp, 0x1100);
    put16(&lcp, 1);
    put16(&lcp, 10);
    put16(&lcp, 0xc021);
    fill(&lcp, 8);
    assert_int_equal(run_eth(&lcp).rc, DECODE_NOT_IP);
    struct pb v2 = {0};
    eth(&v2, 0x8864);
    put16(&v2, 0x2100); /* version 2: unknown */
    put16(&v2, 1);
    put16(&v2, 22);
    put16(&v2, 0x0021);
    ipv4(&v2, 17, "10.0.0.1", "10.0.0.2");
    pb_finish(&v2);
    assert_int_equal(run_eth(&v2).rc, DECODE_NOT_IP);
    struct pb disc = {0};
    eth(&disc, 0x8863);
    fill(&disc, 20);
    assert_int_equal(run_eth(&disc).rc, DECODE_NOT_IP);

    struct pb s = {0};
    eth(&s, 0x8864);
    put16(&s, 0x1100);
    put16(&s, 1);
    put16(&s, 10);
    put8(&s, 0x00);
    expect_error(DLT_EN10MB, &s, DEC_L2_TRUNCATED);
}

/* ---- VLAN, MPLS -------------------------------------------------------- */

static void test_vlan(void **state)
{
    (void)state;
    struct pb one = {0};
    eth(&one, 0x8100);
    vlan(&one, 100, 0x0800);
    ipv4(&one, 17, "10.0.0.1", "10.0.0.2");
    udp(&one, 5000, 53);
    pb_finish(&one);
    struct res r = run_eth(&one);
    expect_udp4(&r);
    assert_int_equal(r.m.vlan_count, 1);
    assert_int_equal(r.m.vlan[0], 100);
    assert_int_equal(r.m.vlan[1], 0);
    assert_int_equal(r.l3, 18);

    /* 802.1ad outer, 0x9100, then 802.1Q: three tags, first two kept. */
    struct pb three = {0};
    eth(&three, 0x88a8);
    vlan(&three, 200, 0x9100);
    vlan(&three, 300, 0x8100);
    vlan(&three, 4094, 0x86dd);
    ipv6(&three, 17, "2001:db8::1", "2001:db8::2");
    udp(&three, 1000, 2000);
    pb_finish(&three);
    r = run_eth(&three);
    assert_int_equal(r.rc, DECODE_OK);
    assert_int_equal(r.m.vlan_count, 3);
    assert_int_equal(r.m.vlan[0], 200);
    assert_int_equal(r.m.vlan[1], 300);
    assert_int_equal(r.l3, 26);
    assert_int_equal(r.m.dport, 2000);

    /* A tagged ARP is still not IP. */
    struct pb arp = {0};
    eth(&arp, 0x8100);
    vlan(&arp, 5, 0x0806);
    fill(&arp, 28);
    assert_int_equal(run_eth(&arp).rc, DECODE_NOT_IP);
}

static void test_mpls(void **state)
{
    (void)state;
    struct pb p = {0};
    eth(&p, 0x8847);
    mpls(&p, 16, 0);
    mpls(&p, 17, 0);
    mpls(&p, 18, 1);
    ipv4(&p, 6, "10.1.0.1", "10.2.0.1");
    tcp(&p, 179, 40000, 0x18, 0);
    pb_finish(&p);
    struct res r = run_eth(&p);
    assert_int_equal(r.rc, DECODE_OK);
    assert_int_equal(r.l3, 14 + 12);
    assert_int_equal(r.m.sport, 179);

    struct pb m6 = {0};
    eth(&m6, 0x8100);
    vlan(&m6, 9, 0x8848);
    mpls(&m6, 2, 1); /* IPv6 explicit null */
    ipv6(&m6, 17, "2001:db8::1", "2001:db8::2");
    udp(&m6, 1, 2);
    pb_finish(&m6);
    r = run_eth(&m6);
    assert_int_equal(r.rc, DECODE_OK);
    assert_int_equal(r.m.family, 6);
    assert_int_equal(r.m.vlan[0], 9);

    /* A pseudowire control word (first nibble 0) is no IP we can guess. */
    struct pb pw = {0};
    eth(&pw, 0x8847);
    mpls(&pw, 100, 1);
    put32(&pw, 0);
    eth(&pw, 0x0800);
    expect_error(DLT_EN10MB, &pw, DEC_MPLS_UNKNOWN_PAYLOAD);

    struct pb cut = {0};
    eth(&cut, 0x8847);
    mpls(&cut, 100, 0);
    put16(&cut, 0);
    expect_error(DLT_EN10MB, &cut, DEC_MPLS_TRUNCATED);
    struct pb nopl = {0};
    eth(&nopl, 0x8847);
    mpls(&nopl, 100, 1);
    expect_error(DLT_EN10MB, &nopl, DEC_MPLS_TRUNCATED);

    /* MPLS on a Cisco HDLC link (as in BGP_redist.pcap). */
    struct pb ch = {0};
    put8(&ch, 0x0f);
    put8(&ch, 0);
    put16(&ch, 0x8847);
    mpls(&ch, 24, 1);
    ipv4(&ch, 17, "10.0.0.1", "10.0.0.2");
    udp(&ch, 5000, 53);
    pb_finish(&ch);
    r = run(DLT_C_HDLC, &ch);
    expect_udp4(&r);
}

/* ---- IPv4 -------------------------------------------------------------- */

static void test_ipv4_options(void **state)
{
    (void)state;
    for (uint32_t opt = 4; opt <= 40; opt += 36) {
        struct pb p = {0};
        eth(&p, 0x0800);
        ipv4x(&p, 6, "10.0.0.1", "10.0.0.2", opt, 1, 0);
        tcp(&p, 1111, 2222, 0x11, 0);
        fill(&p, 3);
        pb_finish(&p);
        struct res r = run_eth(&p);
        assert_int_equal(r.rc, DECODE_OK);
        assert_int_equal(r.l4, 14 + 20 + opt);
        assert_int_equal(r.m.sport, 1111);
        assert_int_equal(r.m.dport, 2222);
        assert_int_equal(r.m.tcp_flags, 0x11);
        assert_int_equal(r.m.payload_len, 3);
        assert_int_equal(r.m.l3_len, 20 + opt + 20 + 3);
    }

    struct pb bad = {0};
    eth(&bad, 0x0800);
    ipv4(&bad, 17, "10.0.0.1", "10.0.0.2");
    udp(&bad, 1, 2);
    pb_finish(&bad);
    bad.b[14] = 0x44; /* IHL 4: 16 bytes */
    expect_error(DLT_EN10MB, &bad, DEC_IPV4_BAD_HLEN);
    bad.b[14] = 0x4f; /* IHL 15: 60 bytes, more than the frame */
    expect_error(DLT_EN10MB, &bad, DEC_IPV4_TRUNCATED);
    bad.b[14] = 0x45;
    bad.b[16] = 0;
    bad.b[17] = 19; /* total length below the header */
    expect_error(DLT_EN10MB, &bad, DEC_IPV4_BAD_LEN);

    /* Total length 0 (segmentation offload): the captured bytes count. */
    bad.b[17] = 0;
    struct res tso = run_eth(&bad);
    assert_int_equal(tso.rc, DECODE_OK);
    assert_int_equal(tso.m.l3_len, 20 + 8);
    assert_int_equal(tso.m.dport, 2);
}

static void test_ipv4_fragments(void **state)
{
    (void)state;
    /* First fragment: MF, offset 0. */
    struct pb first = {0};
    eth(&first, 0x0800);
    ipv4x(&first, 17, "10.0.0.1", "10.0.0.2", 0, 0xbeef, 0x2000);
    udp(&first, 5000, 53);
    fill(&first, 64);
    pb_finish(&first);
    struct res r = run_eth(&first);
    assert_int_equal(r.rc, DECODE_OK);
    assert_int_equal(r.m.flags & (PKT_F_FRAG | PKT_F_FRAG_FIRST | PKT_F_L4),
                     PKT_F_FRAG | PKT_F_FRAG_FIRST | PKT_F_L4);
    assert_int_equal(r.m.frag_id, 0xbeef);
    assert_int_equal(r.m.sport, 5000);
    assert_int_equal(r.m.dport, 53);
    assert_int_equal(r.st.c[DEC_FRAGMENT], 1);

    /* Later fragment whose data looks exactly like a TCP header: it must
     * not be read as one. */
    struct pb later = {0};
    eth(&later, 0x0800);
    ipv4x(&later, 6, "10.0.0.1", "10.0.0.2", 0, 0xbeef, 185);
    tcp(&later, 80, 8080, 0x02, 0);
    fill(&later, 16);
    pb_finish(&later);
    r = run_eth(&later);
    assert_int_equal(r.rc, DECODE_OK);
    assert_true(r.m.flags & PKT_F_FRAG);
    assert_false(r.m.flags & PKT_F_FRAG_FIRST);
    assert_false(r.m.flags & PKT_F_L4);
    assert_int_equal(r.l4, -1);
    assert_int_equal(r.m.sport, 0);
    assert_int_equal(r.m.dport, 0);
    assert_int_equal(r.m.tcp_flags, 0);
    assert_int_equal(r.m.proto, 6);
    assert_int_equal(r.m.frag_id, 0xbeef);
    assert_int_equal(r.pl, 34);
    assert_int_equal(r.m.payload_len, 36);
    assert_int_equal(r.st.c[DEC_FRAGMENT], 1);

    /* Last fragment (offset, no MF) and a middle one (offset and MF). */
    later.b[20] = 0x20; /* MF + offset 185 */
    r = run_eth(&later);
    assert_true(r.m.flags & PKT_F_FRAG);
    assert_false(r.m.flags & (PKT_F_FRAG_FIRST | PKT_F_L4));

    /* DF alone is not a fragment. */
    struct pb df = {0};
    eth_ipv4_udp(&df, 0);
    r = run_eth(&df);
    assert_false(r.m.flags & PKT_F_FRAG);
    assert_int_equal(r.m.frag_id, 0);
    assert_int_equal(r.st.c[DEC_FRAGMENT], 0);

    /* A first fragment too short for its UDP header still counts. */
    struct pb tiny = {0};
    eth(&tiny, 0x0800);
    ipv4x(&tiny, 17, "10.0.0.1", "10.0.0.2", 0, 9, 0x2000);
    put32(&tiny, 0x13880035);
    pb_finish(&tiny);
    r = run_eth(&tiny);
    assert_int_equal(r.rc, DECODE_OK);
    assert_true(r.m.flags & PKT_F_FRAG_FIRST);
    assert_true(r.m.flags & PKT_F_L4_TRUNC);
    assert_false(r.m.flags & PKT_F_L4);
    assert_int_equal(r.st.c[DEC_UDP_TRUNCATED], 1);
}

static void test_padding(void **state)
{
    (void)state;
    /* 14 + 20 + 8 + 4 = 46 bytes; Ethernet pads to 60. */
    struct pb p = {0};
    eth_ipv4_udp(&p, 4);
    while (p.n < 60)
        put8(&p, 0);
    struct res r = run_eth(&p);
    expect_udp4(&r);
    assert_int_equal(r.m.l3_len, 32);
    assert_int_equal(r.m.payload_len, 4);
    assert_int_equal(r.m.cap_len, 60);

    /* The same for IPv6 (payload length), with a TCP payload. */
    struct pb v6 = {0};
    eth(&v6, 0x86dd);
    ipv6(&v6, 6, "2001:db8::1", "2001:db8::2");
    tcp(&v6, 1, 2, 0x10, 0);
    fill(&v6, 2);
    pb_finish(&v6);
    fill(&v6, 9); /* trailer */
    r = run_eth(&v6);
    assert_int_equal(r.m.l3_len, 40 + 20 + 2);
    assert_int_equal(r.m.payload_len, 2);

    /* A UDP length shorter than the IP payload clips the UDP payload. */
    struct pb u = {0};
    eth_ipv4_udp(&u, 10);
    u.b[14 + 20 + 5] = 8 + 3;
    r = run_eth(&u);
    assert_int_equal(r.m.l3_len, 38);
    assert_int_equal(r.m.payload_len, 3);

    /* A capture shorter than the IP length (snaplen) clips instead. */
    struct pb big = {0};
    eth_ipv4_udp(&big, 1000);
    r = run_dlt(DLT_EN10MB, big.b, 96, big.n);
    expect_udp4(&r);
    assert_int_equal(r.m.l3_len, 96 - 14);
    assert_int_equal(r.m.payload_len, 96 - 42);
    assert_int_equal(r.m.wire_len, big.n);
    assert_false(r.m.flags & PKT_F_L4_TRUNC);
}

/* ---- IPv6 -------------------------------------------------------------- */

static void test_ipv6_ext(void **state)
{
    (void)state;
    /* hop-by-hop + fragment (first) + UDP */
    struct pb p = {0};
    eth(&p, 0x86dd);
    ipv6(&p, 0, "2001:db8::1", "2001:db8::2");
    ext6(&p, 44, 0);
    frag6(&p, 17, 0, 1, 0xcafe0001);
    udp(&p, 5353, 5353);
    fill(&p, 100);
    pb_finish(&p);
    struct res r = run_eth(&p);
    assert_int_equal(r.rc, DECODE_OK);
    assert_int_equal(r.m.proto, 17);
    assert_int_equal(r.m.flags & (PKT_F_FRAG | PKT_F_FRAG_FIRST | PKT_F_L4),
                     PKT_F_FRAG | PKT_F_FRAG_FIRST | PKT_F_L4);
    assert_int_equal(r.m.frag_id, 0xcafe0001);
    assert_int_equal(r.m.sport, 5353);
    assert_int_equal(r.l4, 14 + 40 + 8 + 8);
    assert_int_equal(r.st.c[DEC_FRAGMENT], 1);

    /* The following fragment: TCP-looking data, never parsed. */
    struct pb nf = {0};
    eth(&nf, 0x86dd);
    ipv6(&nf, 0, "2001:db8::1", "2001:db8::2");
    ext6(&nf, 44, 0);
    frag6(&nf, 6, 181, 0, 0xcafe0001);
    tcp(&nf, 80, 8080, 0x02, 0);
    pb_finish(&nf);
    r = run_eth(&nf);
    assert_int_equal(r.rc, DECODE_OK);
    assert_int_equal(r.m.proto, 6);
    assert_true(r.m.flags & PKT_F_FRAG);
    assert_false(r.m.flags & (PKT_F_FRAG_FIRST | PKT_F_L4));
    assert_int_equal(r.l4, -1);
    assert_int_equal(r.m.sport, 0);
    assert_int_equal(r.m.frag_id, 0xcafe0001);
    assert_int_equal(r.pl, 14 + 40 + 8 + 8);

    /* An atomic fragment (offset 0, no M) is a whole packet (RFC 6946). */
    struct pb at = {0};
    eth(&at, 0x86dd);
    ipv6(&at, 44, "2001:db8::1", "2001:db8::2");
    frag6(&at, 17, 0, 0, 5);
    udp(&at, 1, 2);
    pb_finish(&at);
    r = run_eth(&at);
    assert_int_equal(r.rc, DECODE_OK);
    assert_false(r.m.flags & PKT_F_FRAG);
    assert_true(r.m.flags & PKT_F_L4);
    assert_int_equal(r.st.c[DEC_FRAGMENT], 0);

    /* destination options (16 bytes), routing, AH (24 bytes), TCP */
    struct pb chain = {0};
    eth(&chain, 0x86dd);
    ipv6(&chain, 60, "2001:db8::1", "2001:db8::2");
    ext6(&chain, 43, 1);
    ext6(&chain, 51, 0);
    ah6(&chain, 6, 4);
    tcp(&chain, 22, 50022, 0x18, 8);
    fill(&chain, 7);
    pb_finish(&chain);
    r = run_eth(&chain);
    assert_int_equal(r.rc, DECODE_OK);
    assert_int_equal(r.m.proto, 6);
    assert_int_equal(r.l4, 14 + 40 + 16 + 8 + 24);
    assert_int_equal(r.m.l4_len, 28);
    assert_int_equal(r.m.payload_len, 7);
    assert_int_equal(r.m.sport, 22);

    /* ESP and no-next-header end the walk: protocol set, no L4. */
    static const uint8_t enders[] = {50, 59};
    for (int i = 0; i < 2; i++) {
        struct pb e = {0};
        eth(&e, 0x86dd);
        ipv6(&e, 0, "2001:db8::1", "2001:db8::2");
        ext6(&e, enders[i], 0);
        fill(&e, 24);
        pb_finish(&e);
        r = run_eth(&e);
        assert_int_equal(r.rc, DECODE_OK);
        assert_int_equal(r.m.proto, enders[i]);
        assert_false(r.m.flags & PKT_F_L4);
        assert_int_equal(r.l4, -1);
        assert_int_equal(r.m.payload_len, 24);
    }

    /* Too many extension headers: a bounded walk. */
    struct pb many = {0};
    eth(&many, 0x86dd);
    ipv6(&many, 60, "2001:db8::1", "2001:db8::2");
    for (int i = 0; i < 9; i++)
        ext6(&many, i == 8 ? 17 : 60, 0);
    udp(&many, 1, 2);
    pb_finish(&many);
    expect_error(DLT_EN10MB, &many, DEC_IPV6_EXT_TOO_MANY);
    /* ...but 8 are fine. */
    struct pb eight = {0};
    eth(&eight, 0x86dd);
    ipv6(&eight, 60, "2001:db8::1", "2001:db8::2");
    for (int i = 0; i < 8; i++)
        ext6(&eight, i == 7 ? 17 : 60, 0);
    udp(&eight, 1, 2);
    pb_finish(&eight);
    r = run_eth(&eight);
    assert_int_equal(r.rc, DECODE_OK);
    assert_int_equal(r.m.dport, 2);

    /* An extension header longer than the payload length says. */
    struct pb cut = {0};
    eth(&cut, 0x86dd);
    ipv6(&cut, 0, "2001:db8::1", "2001:db8::2");
    ext6(&cut, 17, 3);
    udp(&cut, 1, 2);
    pb_finish(&cut);
    cut.b[14 + 4] = 0;
    cut.b[14 + 5] = 16; /* payload length 16 < 32 */
    expect_error(DLT_EN10MB, &cut, DEC_IPV6_EXT_TRUNCATED);

    struct pb fc = {0};
    eth(&fc, 0x86dd);
    ipv6(&fc, 44, "2001:db8::1", "2001:db8::2");
    frag6(&fc, 17, 0, 1, 99);
    pb_finish(&fc);
    fc.n -= 1;
    expect_error(DLT_EN10MB, &fc, DEC_IPV6_EXT_TRUNCATED);

    struct pb sh = {0};
    eth(&sh, 0x86dd);
    ipv6(&sh, 17, "2001:db8::1", "2001:db8::2");
    pb_finish(&sh);
    sh.n -= 1;
    expect_error(DLT_EN10MB, &sh, DEC_IPV6_TRUNCATED);
}

/* ---- L4 ---------------------------------------------------------------- */

static void test_l4(void **state)
{
    (void)state;
    struct pb p = {0};
    eth(&p, 0x0800);
    ipv4(&p, 6, "10.0.0.1", "10.0.0.2");
    tcp(&p, 40000, 443, 0x12, 4);
    fill(&p, 9);
    pb_finish(&p);
    struct res r = run_eth(&p);
    assert_int_equal(r.rc, DECODE_OK);
    assert_int_equal(r.m.tcp_flags, 0x12);
    assert_int_equal(r.m.l4_len, 24);
    assert_int_equal(r.pl, 14 + 20 + 24);
    assert_int_equal(r.m.payload_len, 9);

    struct pb ic = {0};
    eth(&ic, 0x0800);
    ipv4(&ic, 1, "10.0.0.1", "10.0.0.2");
    icmp(&ic, 8, 0);
    fill(&ic, 56);
    pb_finish(&ic);
    r = run_eth(&ic);
    assert_int_equal(r.rc, DECODE_OK);
    assert_int_equal(r.m.proto, 1);
    assert_int_equal(r.m.sport, 8);
    assert_int_equal(r.m.dport, 0);
    assert_true(r.m.flags & PKT_F_L4);
    assert_int_equal(r.m.payload_len, 56);

    struct pb ic6 = {0};
    eth(&ic6, 0x86dd);
    ipv6(&ic6, 58, "2001:db8::1", "2001:db8::2");
    icmp(&ic6, 1, 4); /* destination unreachable, port unreachable */
    pb_finish(&ic6);
    r = run_eth(&ic6);
    assert_int_equal(r.m.proto, 58);
    assert_int_equal(r.m.sport, 1);
    assert_int_equal(r.m.dport, 4);

    struct pb sc = {0};
    eth(&sc, 0x0800);
    ipv4(&sc, 132, "10.0.0.1", "10.0.0.2");
    sctp(&sc, 2905, 2906);
    fill(&sc, 16);
    pb_finish(&sc);
    r = run_eth(&sc);
    assert_int_equal(r.m.proto, 132);
    assert_int_equal(r.m.sport, 2905);
    assert_int_equal(r.m.dport, 2906);
    assert_int_equal(r.m.l4_len, 12);
    assert_int_equal(r.m.payload_len, 16);

    /* OSPF: protocol only. */
    struct pb o = {0};
    eth(&o, 0x0800);
    ipv4(&o, 89, "10.0.0.1", "224.0.0.5");
    fill(&o, 40);
    pb_finish(&o);
    r = run_eth(&o);
    assert_int_equal(r.rc, DECODE_OK);
    assert_int_equal(r.m.proto, 89);
    assert_false(r.m.flags & PKT_F_L4);
    assert_int_equal(r.l4, -1);
    assert_int_equal(r.pl, 34);
    assert_int_equal(r.m.payload_len, 40);
    assert_int_equal(all_counters(&r.st), 0);

    /* L4 headers cut: DECODE_OK, no ports, flagged and counted. */
    static const struct {
        uint8_t proto;
        uint32_t have;
        enum decode_counter k;
    } cut[] = {{6, 19, DEC_TCP_TRUNCATED},   {17, 7, DEC_UDP_TRUNCATED},
               {132, 11, DEC_SCTP_TRUNCATED}, {1, 7, DEC_ICMP_TRUNCATED},
               {58, 1, DEC_ICMP_TRUNCATED},   {6, 0, DEC_TCP_TRUNCATED}};
    for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
        struct pb c = {0};
        eth(&c, 0x0800);
        ipv4(&c, cut[i].proto, "10.0.0.1", "10.0.0.2");
        fill(&c, cut[i].have);
        pb_finish(&c);
        r = run_eth(&c);
        assert_int_equal(r.rc, DECODE_OK);
        assert_int_equal(r.m.proto, cut[i].proto);
        assert_true(r.m.flags & PKT_F_L4_TRUNC);
        assert_false(r.m.flags & PKT_F_L4);
        assert_int_equal(r.st.c[cut[i].k], 1);
        assert_int_equal(all_counters(&r.st), 1);
        assert_int_equal(r.m.payload_len, 0);
    }

    /* TCP options cut by the capture: ports and flags good, header cut. */
    struct pb opt = {0};
    eth(&opt, 0x0800);
    ipv4(&opt, 6, "10.0.0.1", "10.0.0.2");
    tcp(&opt, 1, 2, 0x02, 20);
    pb_finish(&opt);
    r = run_dlt(DLT_EN10MB, opt.b, 14 + 20 + 30, opt.n);
    assert_int_equal(r.rc, DECODE_OK);
    assert_int_equal(r.m.flags & (PKT_F_L4 | PKT_F_L4_TRUNC), PKT_F_L4 | PKT_F_L4_TRUNC);
    assert_int_equal(r.m.sport, 1);
    assert_int_equal(r.m.tcp_flags, 0x02);
    assert_int_equal(r.st.c[DEC_TCP_TRUNCATED], 1);

    /* TCP data offset below 5. */
    struct pb bad = {0};
    eth(&bad, 0x0800);
    ipv4(&bad, 6, "10.0.0.1", "10.0.0.2");
    tcp(&bad, 1, 2, 0x02, 0);
    pb_finish(&bad);
    bad.b[14 + 20 + 12] = 0x40;
    r = run_eth(&bad);
    assert_int_equal(r.rc, DECODE_OK);
    assert_false(r.m.flags & PKT_F_L4);
    assert_int_equal(r.st.c[DEC_TCP_BAD_HLEN], 1);
    assert_int_equal(all_counters(&r.st), 1);
}

/* ---- tunnels ----------------------------------------------------------- */

/* Appends inner IPv4/TCP 192.168.1.10:51000 -> 93.184.216.34:80 + 5 bytes. */
static void inner_tcp4(struct pb *p)
{
    ipv4(p, 6, "192.168.1.10", "93.184.216.34");
    tcp(p, 51000, 80, 0x18, 0);
    fill(p, 5);
}

static void expect_inner_tcp4(const struct res *r, enum pkt_tunnel kind)
{
    assert_int_equal(r->rc, DECODE_OK);
    assert_true(r->m.flags & PKT_F_TUNNEL);
    assert_int_equal(r->m.tunnel, kind);
    assert_int_equal(r->m.family, 4);
    assert_int_equal(r->m.proto, 6);
    expect_addr4(r->m.src, "192.168.1.10");
    expect_addr4(r->m.dst, "93.184.216.34");
    assert_int_equal(r->m.sport, 51000);
    assert_int_equal(r->m.dport, 80);
    assert_int_equal(r->m.tcp_flags, 0x18);
    assert_int_equal(r->m.payload_len, 5);
    assert_int_equal(r->m.l3_len, 45);
    assert_int_equal(r->st.c[DEC_TUNNELED], 1);
}

/* Outer Ethernet + VLAN 7 + IPv4 10.9.9.1 -> 10.9.9.2 with protocol proto. */
static void outer4(struct pb *p, uint8_t proto)
{
    eth(p, 0x8100);
    vlan(p, 7, 0x0800);
    ipv4(p, proto, "10.9.9.1", "10.9.9.2");
}

static void expect_outer_gre(const struct res *r)
{
    assert_int_equal(r->rc, DECODE_OK);
    assert_int_equal(r->m.proto, 47);
    assert_int_equal(r->m.tunnel, PKT_TUN_NONE);
    assert_false(r->m.flags & (PKT_F_TUNNEL | PKT_F_L4));
    expect_addr4(r->m.src, "10.9.9.1");
    assert_int_equal(r->l3, 18);
    assert_int_equal(r->m.vlan_count, 1);
    assert_int_equal(r->m.vlan[0], 7);
    assert_int_equal(r->st.c[DEC_TUNNELED], 0);
}

static void test_gre(void **state)
{
    (void)state;
    struct pb p = {0};
    outer4(&p, 47);
    gre(&p, 0, 0x0800);
    inner_tcp4(&p);
    pb_finish(&p);
    struct res r = run_eth(&p);
    expect_inner_tcp4(&r, PKT_TUN_GRE);
    assert_int_equal(r.l3, 18 + 20 + 4);
    /* No new Ethernet layer: the VLAN is still the innermost one. */
    assert_int_equal(r.m.vlan[0], 7);
    assert_int_equal(all_counters(&r.st), 1);

    /* key + sequence (RFC 2890), and checksum + key + sequence */
    static const uint16_t fl[] = {GRE_K | GRE_S, GRE_C | GRE_K | GRE_S, GRE_C};
    for (int i = 0; i < 3; i++) {
        struct pb k = {0};
        outer4(&k, 47);
        gre(&k, fl[i], 0x0800);
        inner_tcp4(&k);
        pb_finish(&k);
        r = run_eth(&k);
        expect_inner_tcp4(&r, PKT_TUN_GRE);
        uint32_t opt = (fl[i] & GRE_C ? 4 : 0) + (fl[i] & GRE_K ? 4 : 0) + (fl[i] & GRE_S ? 4 : 0);
        assert_int_equal(r.l3, 18 + 20 + 4 + opt);
    }

    /* IPv6 inner and transparent Ethernet bridging (inner VLAN wins). */
    struct pb g6 = {0};
    outer4(&g6, 47);
    gre(&g6, GRE_K, 0x86dd);
    ipv6(&g6, 17, "2001:db8::1", "2001:db8::2");
    udp(&g6, 1, 2);
    pb_finish(&g6);
    r = run_eth(&g6);
    assert_int_equal(r.rc, DECODE_OK);
    assert_int_equal(r.m.family, 6);
    assert_int_equal(r.m.tunnel, PKT_TUN_GRE);
    struct pb teb = {0};
    outer4(&teb, 47);
    gre(&teb, 0, 0x6558);
    eth(&teb, 0x8100);
    vlan(&teb, 55, 0x0800);
    inner_tcp4(&teb);
    pb_finish(&teb);
    r = run_eth(&teb);
    expect_inner_tcp4(&r, PKT_TUN_GRE);
    assert_int_equal(r.m.vlan_count, 1);
    assert_int_equal(r.m.vlan[0], 55);

    /* GRE version 1 (PPTP, PPP inside): the outer packet is the flow. */
    struct pb v1 = {0};
    outer4(&v1, 47);
    put16(&v1, 0x3081);
    put16(&v1, 0x880b);
    put16(&v1, 30);
    put16(&v1, 0x9850);
    put32(&v1, 106);
    put32(&v1, 140);
    put16(&v1, 0xff03);
    put16(&v1, 0x0021);
    inner_tcp4(&v1);
    pb_finish(&v1);
    r = run_eth(&v1);
    expect_outer_gre(&r);
    assert_int_equal(r.st.c[DEC_GRE_UNSUPPORTED], 1);
    assert_int_equal(r.m.l3_len, v1.n - 18);

    /* Unknown protocol type, routing bit: outer flow, unsupported. */
    struct pb unk = {0};
    outer4(&unk, 47);
    gre(&unk, 0, 0x0806);
    fill(&unk, 28);
    pb_finish(&unk);
    r = run_eth(&unk);
    expect_outer_gre(&r);
    assert_int_equal(r.st.c[DEC_GRE_UNSUPPORTED], 1);
    struct pb rt = {0};
    outer4(&rt, 47);
    gre(&rt, 0x4000, 0x0800);
    inner_tcp4(&rt);
    pb_finish(&rt);
    r = run_eth(&rt);
    expect_outer_gre(&r);
    assert_int_equal(r.st.c[DEC_GRE_UNSUPPORTED], 1);

    /* GRE header cut; inner packet malformed: outer flow, counted. */
    struct pb gc = {0};
    outer4(&gc, 47);
    gre(&gc, GRE_K, 0x0800);
    pb_finish(&gc);
    gc.n -= 2;
    r = run_eth(&gc);
    expect_outer_gre(&r);
    assert_int_equal(r.st.c[DEC_GRE_TRUNCATED], 1);
    assert_int_equal(all_counters(&r.st), 1);
    struct pb bi = {0};
    outer4(&bi, 47);
    gre(&bi, 0, 0x0800);
    inner_tcp4(&bi);
    pb_finish(&bi);
    bi.b[18 + 24] = 0x43; /* inner IHL 3 */
    r = run_eth(&bi);
    expect_outer_gre(&r);
    assert_int_equal(r.st.c[DEC_IPV4_BAD_HLEN], 1);
    assert_int_equal(all_counters(&r.st), 1);

    /* Inner ARP (TEB): not IP, so the outer GRE packet is the flow, and
     * it is no error. */
    struct pb ia = {0};
    outer4(&ia, 47);
    gre(&ia, 0, 0x6558);
    eth(&ia, 0x0806);
    fill(&ia, 28);
    pb_finish(&ia);
    r = run_eth(&ia);
    expect_outer_gre(&r);
    assert_int_equal(all_counters(&r.st), 0);

    /* Fewer than 4 bytes of GRE. */
    struct pb g2 = {0};
    outer4(&g2, 47);
    put16(&g2, 0);
    pb_finish(&g2);
    r = run_eth(&g2);
    expect_outer_gre(&r);
    assert_int_equal(r.st.c[DEC_GRE_TRUNCATED], 1);

    /* MPLS over GRE (RFC 4023). */
    struct pb gm = {0};
    outer4(&gm, 47);
    gre(&gm, 0, 0x8847);
    mpls(&gm, 30, 1);
    inner_tcp4(&gm);
    pb_finish(&gm);
    r = run_eth(&gm);
    expect_inner_tcp4(&r, PKT_TUN_GRE);

    /* A fragmented GRE packet is not decapsulated. */
    struct pb fr = {0};
    eth(&fr, 0x0800);
    ipv4x(&fr, 47, "10.9.9.1", "10.9.9.2", 0, 77, 0x2000);
    gre(&fr, 0, 0x0800);
    inner_tcp4(&fr);
    pb_finish(&fr);
    r = run_eth(&fr);
    assert_int_equal(r.rc, DECODE_OK);
    assert_int_equal(r.m.proto, 47);
    assert_false(r.m.flags & PKT_F_TUNNEL);
    assert_true(r.m.flags & PKT_F_FRAG_FIRST);
    assert_int_equal(r.st.c[DEC_TUNNELED], 0);
}

static void test_erspan(void **state)
{
    (void)state;
    /* Type II: GRE with S, 8-byte header, mirrored frame (no VLAN). */
    struct pb p = {0};
    outer4(&p, 47);
    gre(&p, GRE_S, 0x88be);
    erspan2(&p, 12, 100);
    eth(&p, 0x0800);
    inner_tcp4(&p);
    pb_finish(&p);
    struct res r = run_eth(&p);
    expect_inner_tcp4(&r, PKT_TUN_ERSPAN2);
    assert_int_equal(r.l3, 18 + 20 + 8 + 8 + 14);
    /* The mirrored frame is the innermost Ethernet layer: no VLAN. */
    assert_int_equal(r.m.vlan_count, 0);
    assert_int_equal(r.m.vlan[0], 0);

    /* Type I: no S bit, no header. */
    struct pb t1 = {0};
    outer4(&t1, 47);
    gre(&t1, 0, 0x88be);
    eth(&t1, 0x0800);
    inner_tcp4(&t1);
    pb_finish(&t1);
    r = run_eth(&t1);
    expect_inner_tcp4(&r, PKT_TUN_ERSPAN2);
    assert_int_equal(r.l3, 18 + 20 + 4 + 14);

    /* Type III without and with the platform-specific subheader. */
    for (int o = 0; o <= 1; o++) {
        struct pb t3 = {0};
        outer4(&t3, 47);
        gre(&t3, GRE_S, 0x22eb);
        erspan3(&t3, 5, o);
        eth(&t3, 0x8100);
        vlan(&t3, 300, 0x0800);
        inner_tcp4(&t3);
        pb_finish(&t3);
        r = run_eth(&t3);
        expect_inner_tcp4(&r, PKT_TUN_ERSPAN3);
        assert_int_equal(r.l3, 18 + 20 + 8 + 12 + (o ? 8 : 0) + 18);
        assert_int_equal(r.m.vlan_count, 1);
        assert_int_equal(r.m.vlan[0], 300);
    }

    /* Headers cut: outer flow, erspan_truncated. */
    struct pb c2 = {0};
    outer4(&c2, 47);
    gre(&c2, GRE_S, 0x88be);
    put32(&c2, 0x10000001);
    pb_finish(&c2);
    r = run_eth(&c2);
    expect_outer_gre(&r);
    assert_int_equal(r.st.c[DEC_ERSPAN_TRUNCATED], 1);
    struct pb c3 = {0};
    outer4(&c3, 47);
    gre(&c3, GRE_S, 0x22eb);
    erspan3(&c3, 5, 1);
    pb_finish(&c3);
    c3.n -= 3; /* inside the subheader */
    c3.b[18 + 3] = (uint8_t)(c3.n - 18);
    r = run_eth(&c3);
    expect_outer_gre(&r);
    assert_int_equal(r.st.c[DEC_ERSPAN_TRUNCATED], 1);
    assert_int_equal(all_counters(&r.st), 1);

    struct pb c4 = {0};
    outer4(&c4, 47);
    gre(&c4, GRE_S, 0x22eb);
    put32(&c4, 0x20000005);
    put32(&c4, 0);
    pb_finish(&c4);
    r = run_eth(&c4);
    expect_outer_gre(&r);
    assert_int_equal(r.st.c[DEC_ERSPAN_TRUNCATED], 1);

    /* Wrong ERSPAN version; ERSPAN III frame type IP (unsupported). */
    struct pb wv = {0};
    outer4(&wv, 47);
    gre(&wv, GRE_S, 0x88be);
    erspan2(&wv, 0, 1);
    eth(&wv, 0x0800);
    inner_tcp4(&wv);
    pb_finish(&wv);
    wv.b[18 + 20 + 8] = 0x20;
    r = run_eth(&wv);
    expect_outer_gre(&r);
    assert_int_equal(r.st.c[DEC_GRE_UNSUPPORTED], 1);
    struct pb ft = {0};
    outer4(&ft, 47);
    gre(&ft, GRE_S, 0x22eb);
    erspan3(&ft, 5, 0);
    inner_tcp4(&ft);
    pb_finish(&ft);
    ft.b[18 + 20 + 8 + 10] = 2 << 2; /* FT = 2 */
    r = run_eth(&ft);
    expect_outer_gre(&r);
    assert_int_equal(r.st.c[DEC_GRE_UNSUPPORTED], 1);
}

/* Ethernet + VLAN 7 + IPv4 + UDP -> 4789 + VXLAN + Ethernet + inner TCP. */
static void vxlan_frame(struct pb *p)
{
    outer4(p, 17);
    udp(p, 49152, 4789);
    vxlan(p, 5000, 0x08);
    eth(p, 0x0800);
    inner_tcp4(p);
    pb_finish(p);
}

static void test_vxlan(void **state)
{
    (void)state;
    struct pb p = {0};
    vxlan_frame(&p);
    struct res r = run_eth(&p);
    expect_inner_tcp4(&r, PKT_TUN_VXLAN);
    assert_int_equal(r.l3, 18 + 20 + 8 + 8 + 14);
    assert_int_equal(r.m.vlan_count, 0);
    assert_int_equal(all_counters(&r.st), 1);

    /* Without the I flag it is just UDP to port 4789. */
    p.b[18 + 20 + 8] = 0x00;
    r = run_eth(&p);
    assert_int_equal(r.rc, DECODE_OK);
    assert_int_equal(r.m.proto, 17);
    assert_int_equal(r.m.dport, 4789);
    assert_int_equal(r.m.tunnel, PKT_TUN_NONE);
    assert_int_equal(r.m.vlan[0], 7);
    assert_int_equal(all_counters(&r.st), 0);

    /* VXLAN carrying ARP: the outer UDP flow. */
    struct pb a = {0};
    outer4(&a, 17);
    udp(&a, 49152, 4789);
    vxlan(&a, 1, 0x08);
    eth(&a, 0x0806);
    fill(&a, 28);
    pb_finish(&a);
    r = run_eth(&a);
    assert_int_equal(r.rc, DECODE_OK);
    assert_int_equal(r.m.dport, 4789);
    assert_false(r.m.flags & PKT_F_TUNNEL);

    /* Source port 4789 is not VXLAN. */
    struct pb sp = {0};
    outer4(&sp, 17);
    udp(&sp, 4789, 4000);
    vxlan(&sp, 1, 0x08);
    eth(&sp, 0x0800);
    inner_tcp4(&sp);
    pb_finish(&sp);
    r = run_eth(&sp);
    assert_int_equal(r.m.tunnel, PKT_TUN_NONE);
}

static void test_ipip(void **state)
{
    (void)state;
    /* 6in4 */
    struct pb p = {0};
    eth(&p, 0x0800);
    ipv4(&p, 41, "198.51.100.1", "192.88.99.1");
    ipv6(&p, 6, "2001:db8::1", "2001:db8::2");
    tcp(&p, 50000, 443, 0x02, 0);
    pb_finish(&p);
    struct res r = run_eth(&p);
    assert_int_equal(r.rc, DECODE_OK);
    assert_int_equal(r.m.tunnel, PKT_TUN_IPIP);
    assert_int_equal(r.m.family, 6);
    expect_addr6(r.m.src, "2001:db8::1");
    assert_int_equal(r.m.dport, 443);
    assert_int_equal(r.l3, 34);

    /* 4in6 */
    struct pb q = {0};
    eth(&q, 0x86dd);
    ipv6(&q, 4, "2001:db8::1", "2001:db8::2");
    inner_tcp4(&q);
    pb_finish(&q);
    r = run_eth(&q);
    expect_inner_tcp4(&r, PKT_TUN_IPIP);
    assert_int_equal(r.l3, 54);

    /* 4in4 whose inner header says IPv6: outer flow, counted. */
    struct pb b = {0};
    eth(&b, 0x0800);
    ipv4(&b, 4, "198.51.100.1", "192.0.2.1");
    ipv6(&b, 59, "2001:db8::1", "2001:db8::2");
    pb_finish(&b);
    r = run_eth(&b);
    assert_int_equal(r.rc, DECODE_OK);
    assert_int_equal(r.m.family, 4);
    assert_int_equal(r.m.proto, 4);
    assert_false(r.m.flags & PKT_F_TUNNEL);
    expect_addr4(r.m.dst, "192.0.2.1");
    assert_int_equal(r.st.c[DEC_IP_BAD_VERSION], 1);
    assert_int_equal(all_counters(&r.st), 1);
}

static void test_tunnel_depth(void **state)
{
    (void)state;
    /* Six IP headers: five IP-in-IP layers. Four are removed; the fifth
     * layer is reported as it is (protocol 4) and counted. */
    struct pb p = {0};
    eth(&p, 0x0800);
    static const char *const a[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3",
                                     "10.0.0.4", "10.0.0.5", "10.0.0.6"};
    for (int i = 0; i < 6; i++)
        ipv4(&p, i == 5 ? 17 : 4, a[i], "10.255.255.255");
    udp(&p, 1, 2);
    pb_finish(&p);
    struct res r = run_eth(&p);
    assert_int_equal(r.rc, DECODE_OK);
    assert_int_equal(r.m.tunnel, PKT_TUN_IPIP);
    assert_int_equal(r.m.proto, 4);
    expect_addr4(r.m.src, "10.0.0.5");
    assert_int_equal(r.st.c[DEC_TUNNELED], 4);
    assert_int_equal(r.st.c[DEC_TUNNEL_TOO_DEEP], 1);

    /* Mixed kinds: the outermost kind is reported. VXLAN in GRE. */
    struct pb m = {0};
    outer4(&m, 47);
    gre(&m, 0, 0x0800);
    ipv4(&m, 17, "172.16.0.1", "172.16.0.2");
    udp(&m, 30000, 4789);
    vxlan(&m, 9, 0x08);
    eth(&m, 0x0800);
    inner_tcp4(&m);
    pb_finish(&m);
    r = run_eth(&m);
    assert_int_equal(r.rc, DECODE_OK);
    assert_int_equal(r.m.tunnel, PKT_TUN_GRE);
    expect_addr4(r.m.src, "192.168.1.10");
    assert_int_equal(r.st.c[DEC_TUNNELED], 2);
    assert_int_equal(r.m.vlan_count, 0);
}

/* ---- every truncation of two sample frames ---------------------------- */

static void test_truncate_tcp(void **state)
{
    (void)state;
    /* eth 0..13, VLAN 14..17, IPv4 18..37, TCP (12 bytes options) 38..69,
     * payload 70..79 */
    struct pb p = {0};
    eth(&p, 0x8100);
    vlan(&p, 100, 0x0800);
    ipv4(&p, 6, "10.0.0.1", "10.0.0.2");
    tcp(&p, 40000, 443, 0x18, 12);
    fill(&p, 10);
    pb_finish(&p);
    assert_int_equal(p.n, 80);
    for (uint32_t k = 0; k <= p.n; k++) {
        struct res r = run_dlt(DLT_EN10MB, p.b, k, p.n);
        enum decode_counter want = DEC_COUNTER_MAX;
        if (k < 14)
            want = DEC_L2_TRUNCATED;
        else if (k < 18)
            want = DEC_VLAN_TRUNCATED;
        else if (k < 38)
            want = DEC_IPV4_TRUNCATED;
        if (want != DEC_COUNTER_MAX) {
            assert_int_equal(r.rc, DECODE_ERROR);
            if (r.st.c[want] != 1)
                fail_msg("cut at %u: expected %s", k, decode_counter_name(want));
            continue;
        }
        assert_int_equal(r.rc, DECODE_OK);
        assert_int_equal(r.m.vlan[0], 100);
        assert_int_equal(r.m.l3_len, k - 18);
        assert_int_equal(r.m.proto, 6);
        if (k < 58) {
            assert_int_equal(r.m.flags & (PKT_F_L4 | PKT_F_L4_TRUNC), PKT_F_L4_TRUNC);
            assert_int_equal(r.st.c[DEC_TCP_TRUNCATED], 1);
            assert_int_equal(all_counters(&r.st), 1);
        } else if (k < 70) {
            assert_int_equal(r.m.flags & (PKT_F_L4 | PKT_F_L4_TRUNC), PKT_F_L4 | PKT_F_L4_TRUNC);
            assert_int_equal(r.m.sport, 40000);
            assert_int_equal(r.st.c[DEC_TCP_TRUNCATED], 1);
            assert_int_equal(all_counters(&r.st), 1);
        } else {
            assert_int_equal(r.m.flags & (PKT_F_L4 | PKT_F_L4_TRUNC), PKT_F_L4);
            assert_int_equal(r.m.dport, 443);
            assert_int_equal(r.pl, 70);
            assert_int_equal(r.m.payload_len, k - 70);
            assert_int_equal(all_counters(&r.st), 0);
        }
    }
}

static void test_truncate_vxlan(void **state)
{
    (void)state;
    /* eth 0, VLAN 14, IPv4 18, UDP 38, VXLAN 46, inner eth 54, inner IPv4
     * 68, inner TCP 88, payload 108..112 */
    struct pb p = {0};
    vxlan_frame(&p);
    assert_int_equal(p.n, 113);
    for (uint32_t k = 0; k <= p.n; k++) {
        struct res r = run_dlt(DLT_EN10MB, p.b, k, p.n);
        enum decode_counter want = DEC_COUNTER_MAX;
        if (k < 14)
            want = DEC_L2_TRUNCATED;
        else if (k < 18)
            want = DEC_VLAN_TRUNCATED;
        else if (k < 38)
            want = DEC_IPV4_TRUNCATED;
        if (want != DEC_COUNTER_MAX) {
            assert_int_equal(r.rc, DECODE_ERROR);
            if (r.st.c[want] != 1)
                fail_msg("cut at %u: expected %s", k, decode_counter_name(want));
            continue;
        }
        assert_int_equal(r.rc, DECODE_OK);
        if (k < 88) {
            /* Outer UDP flow; what failed inside is counted. */
            assert_int_equal(r.m.tunnel, PKT_TUN_NONE);
            assert_int_equal(r.m.proto, 17);
            expect_addr4(r.m.src, "10.9.9.1");
            assert_int_equal(r.m.vlan[0], 7);
            assert_int_equal(r.m.l3_len, k - 18);
            assert_int_equal(r.st.c[DEC_TUNNELED], 0);
            assert_int_equal(all_counters(&r.st), 1);
            if (k < 46) {
                assert_int_equal(r.m.flags & (PKT_F_L4 | PKT_F_L4_TRUNC), PKT_F_L4_TRUNC);
                assert_int_equal(r.st.c[DEC_UDP_TRUNCATED], 1);
                continue;
            }
            assert_int_equal(r.m.flags & (PKT_F_L4 | PKT_F_L4_TRUNC), PKT_F_L4);
            assert_int_equal(r.m.dport, 4789);
            enum decode_counter inner = k < 54   ? DEC_VXLAN_TRUNCATED
                                        : k < 68 ? DEC_L2_TRUNCATED
                                                 : DEC_IPV4_TRUNCATED;
            if (r.st.c[inner] != 1)
                fail_msg("cut at %u: expected %s", k, decode_counter_name(inner));
            continue;
        }
        assert_int_equal(r.m.tunnel, PKT_TUN_VXLAN);
        assert_int_equal(r.l3, 68);
        assert_int_equal(r.m.l3_len, k - 68);
        assert_int_equal(r.st.c[DEC_TUNNELED], 1);
        if (k < 108) {
            assert_int_equal(r.m.flags & (PKT_F_L4 | PKT_F_L4_TRUNC), PKT_F_L4_TRUNC);
            assert_int_equal(r.st.c[DEC_TCP_TRUNCATED], 1);
            assert_int_equal(all_counters(&r.st), 2);
        } else {
            assert_int_equal(r.m.flags & (PKT_F_L4 | PKT_F_L4_TRUNC), PKT_F_L4);
            assert_int_equal(r.m.payload_len, k - 108);
            assert_int_equal(all_counters(&r.st), 1);
        }
    }
}

/* ---- real captures ----------------------------------------------------- */

static char pcap_dir[1024];

static void find_pcaps(void)
{
    if (test_shared_absent())
        skip();
    if (test_shared_path("pcaps", pcap_dir, sizeof(pcap_dir)) != 0)
        fail_msg("EGRESSD_SHARED path too long");
    struct stat st;
    if (stat(pcap_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        fail_msg("%s not found: set EGRESSD_SHARED to the shared test data (../shared)",
                 pcap_dir);
}

struct tally {
    unsigned pkts, ok, not_ip, err;
    unsigned tunneled[8]; /* by pkt_tunnel kind */
    unsigned fam[7];      /* by family */
    unsigned proto[256];
    unsigned frag_first, frag_later, l4;
    struct decode_stats st;
};

typedef void (*pkt_check_fn)(void *arg, const struct res *r);

/* Decodes every packet of pcaps/<name>, checking the contract on each. */
static void run_capture(const char *name, struct tally *t, pkt_check_fn check, void *arg)
{
    char path[1300], eb[PCAP_ERRBUF_SIZE];
    snprintf(path, sizeof(path), "%s/%s", pcap_dir, name);
    pcap_t *pc = pcap_open_offline(path, eb);
    if (!pc)
        fail_msg("%s: %s", path, eb);
    int dlt = pcap_datalink(pc);
    memset(t, 0, sizeof(*t));
    struct pcap_pkthdr *h;
    const u_char *d;
    while (pcap_next_ex(pc, &h, &d) == 1) {
        struct res r = run_dlt(dlt, d, h->caplen, h->len);
        t->pkts++;
        for (unsigned i = 0; i < DEC_COUNTER_MAX; i++)
            t->st.c[i] += r.st.c[i];
        if (r.rc == DECODE_NOT_IP) {
            t->not_ip++;
            continue;
        }
        if (r.rc != DECODE_OK) {
            t->err++;
            continue;
        }
        t->ok++;
        t->tunneled[r.m.tunnel & 7]++;
        t->fam[r.m.family]++;
        t->proto[r.m.proto]++;
        if (r.m.flags & PKT_F_FRAG)
            (r.m.flags & PKT_F_FRAG_FIRST) ? t->frag_first++ : t->frag_later++;
        if (r.m.flags & PKT_F_L4)
            t->l4++;
        if (check)
            check(arg, &r);
    }
    pcap_close(pc);
}

static void vxlan_check(void *arg, const struct res *r)
{
    (void)arg;
    /* The mirrored VMs' frames are untagged (VLAN 5 is on the outside). */
    assert_int_equal(r->m.vlan_count, 0);
    assert_true(r->m.flags & PKT_F_L4);
}

static void test_pcap_vxlan(void **state)
{
    find_pcaps(); /* skipped when the corpus is absent */
    (void)state;
    struct tally t;
    run_capture("vxlan.pcap", &t, vxlan_check, NULL);
    /* tshark -r vxlan.pcap -Y 'udp.dstport==4789' | wc -l  -> 127, all
     * frames; -Y 'vxlan && tcp' -> 119, -Y 'vxlan && udp.port==53' -> 8. */
    assert_int_equal(t.pkts, 127);
    assert_int_equal(t.ok, 127);
    assert_int_equal(t.tunneled[PKT_TUN_VXLAN], 127);
    assert_int_equal(t.st.c[DEC_TUNNELED], 127);
    assert_int_equal(t.proto[6], 119);
    assert_int_equal(t.proto[17], 8);
    assert_int_equal(t.fam[4], 127);
    assert_int_equal(failures(&t.st), 0);
}

static void gre_check(void *arg, const struct res *r)
{
    (void)arg;
    assert_int_equal(r->m.proto, 47);
    assert_int_equal(r->m.vlan[0], 142);
    expect_addr4(r->m.src, "109.105.228.253");
    expect_addr4(r->m.dst, "10.177.98.84");
}

static void test_pcap_gre(void **state)
{
    find_pcaps(); /* skipped when the corpus is absent */
    (void)state;
    struct tally t;
    /* One PPTP packet (tshark: GRE flags 0x3081, version 1, protocol PPP
     * 0x880b, in VLAN 142): unsupported, so the outer GRE flow. */
    run_capture("gre.pcapng", &t, gre_check, NULL);
    assert_int_equal(t.pkts, 1);
    assert_int_equal(t.ok, 1);
    assert_int_equal(t.tunneled[PKT_TUN_NONE], 1);
    assert_int_equal(t.st.c[DEC_GRE_UNSUPPORTED], 1);
    assert_int_equal(failures(&t.st), 1);
}

static void test_pcap_ipip(void **state)
{
    find_pcaps(); /* skipped when the corpus is absent */
    (void)state;
    struct tally t;
    /* tshark -r 4in6tunnel.pcap -Y 'ipv6.nxt==4' | wc -l -> 4 (all TCP) */
    run_capture("4in6tunnel.pcap", &t, NULL, NULL);
    assert_int_equal(t.pkts, 4);
    assert_int_equal(t.tunneled[PKT_TUN_IPIP], 4);
    assert_int_equal(t.fam[4], 4);
    assert_int_equal(t.proto[6], 4);
    assert_int_equal(t.l4, 4);
    /* tshark -r 6in4tunnel.pcap -Y 'ip.proto==41' -> 127 of 127; the first
     * ipv6.nxt of each (-T fields -e ipv6.nxt | cut -d, -f1 | sort | uniq -c)
     * gives 75 TCP, 4 UDP, 48 ICMPv6. */
    run_capture("6in4tunnel.pcap", &t, NULL, NULL);
    assert_int_equal(t.pkts, 127);
    assert_int_equal(t.tunneled[PKT_TUN_IPIP], 127);
    assert_int_equal(t.st.c[DEC_TUNNELED], 127);
    assert_int_equal(t.fam[6], 127);
    assert_int_equal(t.proto[6], 75);
    assert_int_equal(t.proto[17], 4);
    assert_int_equal(t.proto[58], 48);
    assert_int_equal(failures(&t.st), 0);
}

struct vlan_count {
    unsigned by_id[4096];
    unsigned qinq;
};

static void vlan_check(void *arg, const struct res *r)
{
    struct vlan_count *v = arg;
    if (r->m.vlan_count >= 1)
        v->by_id[r->m.vlan[0]]++;
    if (r->m.vlan_count == 2) {
        v->qinq++;
        assert_int_equal(r->m.vlan[0], 93);
        assert_int_equal(r->m.vlan[1], 258);
    }
}

static void test_pcap_vlan_mpls(void **state)
{
    find_pcaps(); /* skipped when the corpus is absent */
    (void)state;
    struct tally t;
    struct vlan_count *v = calloc(1, sizeof(*v));
    assert_non_null(v);
    /* tshark -r mongodb.pcap -T fields -e vlan.id | sort | uniq -c:
     * 8 x 100, 12 x 300, 7 x 50 (27 frames). */
    run_capture("mongodb.pcap", &t, vlan_check, v);
    assert_int_equal(t.ok, 27);
    assert_int_equal(v->by_id[100], 8);
    assert_int_equal(v->by_id[300], 12);
    assert_int_equal(v->by_id[50], 7);
    /* Same for ja3_lots_of_cipher_suites.pcap: 11 x "93,258" (QinQ). */
    memset(v, 0, sizeof(*v));
    run_capture("ja3_lots_of_cipher_suites.pcap", &t, vlan_check, v);
    assert_int_equal(t.ok, 11);
    assert_int_equal(v->qinq, 11);
    free(v);
    /* BGP_redist.pcap: Cisco HDLC, 2 TCP frames, one through an MPLS label
     * (tshark frame.protocols: chdlc:mpls:ip:tcp:bgp, chdlc:ip:tcp:bgp). */
    run_capture("BGP_redist.pcap", &t, NULL, NULL);
    assert_int_equal(t.ok, 2);
    assert_int_equal(t.proto[6], 2);
    assert_int_equal(t.l4, 2);
}

static void test_pcap_fragments(void **state)
{
    find_pcaps(); /* skipped when the corpus is absent */
    (void)state;
    struct tally t;
    /* tshark -r dns_fragmented.pcap -Y 'ip.flags.mf==1 || ip.frag_offset>0'
     * -> 8 (4 at offset 0); -Y ipv6.fraghdr -> 6 (3 at offset 0). */
    run_capture("dns_fragmented.pcap", &t, NULL, NULL);
    assert_int_equal(t.pkts, 66);
    assert_int_equal(t.st.c[DEC_FRAGMENT], 14);
    assert_int_equal(t.frag_first, 7);
    assert_int_equal(t.frag_later, 7);
    /* ip_fragmented_garbage.pcap: 9077 TCP fragments, 29 at offset 0 (same
     * tshark filters); the others must never produce ports. */
    run_capture("ip_fragmented_garbage.pcap", &t, NULL, NULL);
    assert_int_equal(t.st.c[DEC_FRAGMENT], 9077);
    assert_int_equal(t.frag_first, 29);
    assert_int_equal(t.frag_later, 9048);
    assert_true(t.l4 <= 29);
}

static void test_pcap_links(void **state)
{
    find_pcaps(); /* skipped when the corpus is absent */
    (void)state;
    /* Packets from capinfos -c; protocols of the outer IP header from
     * tshark -r F -T fields -e ip.proto | cut -d, -f1 | sort | uniq -c
     * (the cut drops the header quoted inside an ICMP error). */
    static const struct {
        const char *file;
        int dlt;
        unsigned pkts, tcp, udp, icmp;
    } c[] = {
        {"nats.pcap", DLT_NULL, 27, 27, 0, 0},
        {"dlt_ppp.pcap", DLT_PPP, 1, 0, 1, 0},
        {"ocs.pcap", DLT_RAW, 946, 938, 8, 0},
        {"KakaoTalk_chat.pcap", DLT_LINUX_SLL, 347, 310, 36, 1},
        {"quic-fuzz-overflow.pcapng", DLT_IPV4, 1, 0, 1, 0},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        struct tally t;
        char path[1200], eb[PCAP_ERRBUF_SIZE];
        snprintf(path, sizeof(path), "%s/%s", pcap_dir, c[i].file);
        pcap_t *pc = pcap_open_offline(path, eb);
        if (!pc)
            fail_msg("%s: %s", path, eb);
        assert_int_equal(pcap_datalink(pc), c[i].dlt);
        pcap_close(pc);
        run_capture(c[i].file, &t, NULL, NULL);
        assert_int_equal(t.pkts, c[i].pkts);
        assert_int_equal(t.ok, c[i].pkts);
        assert_int_equal(t.proto[6], c[i].tcp);
        assert_int_equal(t.proto[17], c[i].udp);
        assert_int_equal(t.proto[1], c[i].icmp);
    }
}

/* Every capture in the directory: no crash, the contract on every packet. */
static void test_pcap_all(void **state)
{
    find_pcaps(); /* skipped when the corpus is absent */
    (void)state;
    DIR *dir = opendir(pcap_dir);
    assert_non_null(dir);
    unsigned files = 0, pkts = 0, ok = 0;
    struct tally *t = malloc(sizeof(*t));
    assert_non_null(t);
    for (struct dirent *de; (de = readdir(dir)) != NULL;) {
        const char *name = de->d_name;
        size_t n = strlen(name);
        if (!((n > 5 && !strcmp(name + n - 5, ".pcap")) ||
              (n > 7 && !strcmp(name + n - 7, ".pcapng"))))
            continue;
        char path[1300], eb[PCAP_ERRBUF_SIZE];
        snprintf(path, sizeof(path), "%s/%s", pcap_dir, name);
        pcap_t *pc = pcap_open_offline(path, eb);
        if (!pc)
            continue; /* a capture libpcap cannot open is not ours to judge */
        int dlt = pcap_datalink(pc);
        pcap_close(pc);
        if (!decode_linktype_supported(dlt))
            fail_msg("%s: link type %d not supported", name, dlt);
        run_capture(name, t, NULL, NULL);
        files++;
        pkts += t->pkts;
        ok += t->ok;
    }
    free(t);
    closedir(dir);
    assert_true(files >= 150);
    /* Nearly everything in the corpus is IP. */
    assert_true(ok > pkts - pkts / 50);
}

static int setup(void **state)
{
    (void)state;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_names),
        cmocka_unit_test(test_linktype_supported),
        cmocka_unit_test(test_ethernet),
        cmocka_unit_test(test_linux_sll),
        cmocka_unit_test(test_linux_sll2),
        cmocka_unit_test(test_raw_links),
        cmocka_unit_test(test_null_loop),
        cmocka_unit_test(test_ppp),
        cmocka_unit_test(test_pppoe),
        cmocka_unit_test(test_vlan),
        cmocka_unit_test(test_mpls),
        cmocka_unit_test(test_ipv4_options),
        cmocka_unit_test(test_ipv4_fragments),
        cmocka_unit_test(test_padding),
        cmocka_unit_test(test_ipv6_ext),
        cmocka_unit_test(test_l4),
        cmocka_unit_test(test_gre),
        cmocka_unit_test(test_erspan),
        cmocka_unit_test(test_vxlan),
        cmocka_unit_test(test_ipip),
        cmocka_unit_test(test_tunnel_depth),
        cmocka_unit_test(test_truncate_tcp),
        cmocka_unit_test(test_truncate_vxlan),
        cmocka_unit_test_setup(test_pcap_vxlan, setup),
        cmocka_unit_test_setup(test_pcap_gre, setup),
        cmocka_unit_test_setup(test_pcap_ipip, setup),
        cmocka_unit_test_setup(test_pcap_vlan_mpls, setup),
        cmocka_unit_test_setup(test_pcap_fragments, setup),
        cmocka_unit_test_setup(test_pcap_links, setup),
        cmocka_unit_test_setup(test_pcap_all, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

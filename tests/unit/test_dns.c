/* test_dns.c - the DNS response parser: A, AAAA and CNAME answers, CNAME
 * chains linked to the question in any order, name compression (nested,
 * suffixes, into RDATA), the question echo, NXDOMAIN, header checks, a cut
 * at every byte offset of real and built responses, pointer loops, pointers
 * to themselves, forward and out of range, the 128-jump cap, 63-byte labels,
 * the 255-byte name limit, hostile label bytes kept raw, more answers than
 * the fixed array, bad RDATA, DNS over TCP framing, two real responses from
 * teams.pcap, and every DNS response of six real captures checked against
 * the counts tshark 4.0 gives for them.
 *
 * Messages are built by hand with the small builder below, and each parse
 * reads from a heap copy of exactly the message length so AddressSanitizer
 * sees any read past the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "egressd/dns.h"

/* ---- message builder ---------------------------------------------------- */

struct msg {
    uint8_t b[8192];
    uint32_t n;
};

static void put8(struct msg *m, uint8_t v)
{
    assert_true(m->n < sizeof(m->b));
    m->b[m->n++] = v;
}

static void put16(struct msg *m, uint16_t v)
{
    put8(m, (uint8_t)(v >> 8));
    put8(m, (uint8_t)v);
}

static void put32(struct msg *m, uint32_t v)
{
    put16(m, (uint16_t)(v >> 16));
    put16(m, (uint16_t)v);
}

static void putn(struct msg *m, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put8(m, ((const uint8_t *)p)[i]);
}

/* One label: length byte then the raw bytes. */
static void label(struct msg *m, const void *p, size_t n)
{
    put8(m, (uint8_t)n);
    putn(m, p, n);
}

/* Dotted text as labels, without the terminating root byte. */
static void labels(struct msg *m, const char *dotted)
{
    const char *s = dotted;
    while (*s) {
        const char *dot = strchr(s, '.');
        size_t n = dot ? (size_t)(dot - s) : strlen(s);
        label(m, s, n);
        s += n + (dot ? 1 : 0);
    }
}

static void name(struct msg *m, const char *dotted)
{
    labels(m, dotted);
    put8(m, 0);
}

static void ptr(struct msg *m, uint16_t off)
{
    put16(m, (uint16_t)(0xc000 | off));
}

#define ID 0x1234
#define FL_RESPONSE 0x8180 /* QR, RD, RA, NOERROR */

static void header(struct msg *m, uint16_t flags, uint16_t qd, uint16_t an, uint16_t ns,
                   uint16_t ar)
{
    m->n = 0;
    put16(m, ID);
    put16(m, flags);
    put16(m, qd);
    put16(m, an);
    put16(m, ns);
    put16(m, ar);
}

/* A whole question at the current offset (12 for the first). */
static void question(struct msg *m, const char *qname, uint16_t qtype)
{
    name(m, qname);
    put16(m, qtype);
    put16(m, DNS_CLASS_IN);
}

/* TYPE CLASS TTL, then RDLENGTH as a placeholder: returns where RDATA
 * starts, for rr_end. The owner name is written by the caller before. */
static uint32_t rr_begin(struct msg *m, uint16_t type, uint16_t cls, uint32_t ttl)
{
    put16(m, type);
    put16(m, cls);
    put32(m, ttl);
    put16(m, 0);
    return m->n;
}

static void rr_end(struct msg *m, uint32_t rdata)
{
    uint32_t len = m->n - rdata;
    m->b[rdata - 2] = (uint8_t)(len >> 8);
    m->b[rdata - 1] = (uint8_t)len;
}

static void rr_a(struct msg *m, uint32_t ttl, const char *text)
{
    uint8_t a[4];
    assert_int_equal(inet_pton(AF_INET, text, a), 1);
    uint32_t r = rr_begin(m, DNS_TYPE_A, DNS_CLASS_IN, ttl);
    putn(m, a, 4);
    rr_end(m, r);
}

static void rr_aaaa(struct msg *m, uint32_t ttl, const char *text)
{
    uint8_t a[16];
    assert_int_equal(inet_pton(AF_INET6, text, a), 1);
    uint32_t r = rr_begin(m, DNS_TYPE_AAAA, DNS_CLASS_IN, ttl);
    putn(m, a, 16);
    rr_end(m, r);
}

/* ---- parsing and checks ------------------------------------------------- */

static struct dns_answers A, FULL;

/* Parses the first len bytes of m from a heap block of exactly that size. */
static int parse_n(const struct msg *m, uint32_t len, struct dns_answers *out)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, m->b, len);
    int rc = dns_parse_response(copy, len, out);
    free(copy);
    return rc;
}

static int parse(const struct msg *m)
{
    return parse_n(m, m->n, &A);
}

static void expect_error(const struct msg *m, int e)
{
    int rc = parse(m);
    if (rc != EGR_EINVAL || A.error != e)
        fail_msg("expected %s, got rc %d error %s at %u", dns_error_name(e), rc,
                 dns_error_name(A.error), A.error_offset);
}

static void expect_ok(const struct msg *m)
{
    int rc = parse(m);
    if (rc != EGR_OK)
        fail_msg("parse failed: %s at offset %u", dns_error_name(A.error), A.error_offset);
    assert_int_equal(A.error, DNS_E_NONE);
}

static void expect_name_n(const struct dns_name *n, const void *text, size_t len)
{
    if (n->len != len || memcmp(n->text, text, len) != 0)
        fail_msg("name is '%.*s' (%u bytes), expected '%.*s' (%zu bytes)", (int)n->len, n->text,
                 n->len, (int)len, (const char *)text, len);
    assert_int_equal(n->text[n->len], '\0');
}

static void expect_name(const struct dns_name *n, const char *text)
{
    expect_name_n(n, text, strlen(text));
}

static void expect_addr(const struct dns_answer *rr, const char *text)
{
    uint8_t a[16] = {0};
    if (strchr(text, ':')) {
        assert_int_equal(inet_pton(AF_INET6, text, a), 1);
        assert_int_equal(rr->type, DNS_TYPE_AAAA);
        assert_int_equal(rr->family, 6);
        assert_memory_equal(rr->addr, a, 16);
    } else {
        assert_int_equal(inet_pton(AF_INET, text, a), 1);
        assert_int_equal(rr->type, DNS_TYPE_A);
        assert_int_equal(rr->family, 4);
        assert_memory_equal(rr->addr, a, 4);
    }
    assert_int_equal(rr->target.len, 0);
}

static void answers_equal(const struct dns_answer *x, const struct dns_answer *y)
{
    assert_int_equal(x->type, y->type);
    assert_int_equal(x->family, y->family);
    assert_int_equal(x->ttl, y->ttl);
    expect_name_n(&x->owner, y->owner.text, y->owner.len);
    expect_name_n(&x->target, y->target.text, y->target.len);
    if (x->family)
        assert_memory_equal(x->addr, y->addr, 16);
}

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex) / 2;
    assert_true(n <= cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

static void load_hex(struct msg *m, const char *hex)
{
    m->n = (uint32_t)unhex(hex, m->b, sizeof(m->b));
}

/* ---- answers ------------------------------------------------------------ */

static void test_a_answer(void **state)
{
    struct msg m;
    header(&m, FL_RESPONSE, 1, 1, 0, 0);
    question(&m, "www.Example.COM", DNS_TYPE_A);
    ptr(&m, 12);
    rr_a(&m, 300, "93.184.216.34");
    expect_ok(&m);

    assert_int_equal(A.id, ID);
    assert_int_equal(A.flags, DNS_F_RD | DNS_F_RA);
    assert_int_equal(A.rcode, DNS_RCODE_NOERROR);
    assert_int_equal(A.qdcount, 1);
    assert_int_equal(A.ancount, 1);
    assert_int_equal(A.has_question, 1);
    assert_int_equal(A.qtype, DNS_TYPE_A);
    assert_int_equal(A.qclass, DNS_CLASS_IN);
    expect_name(&A.qname, "www.example.com"); /* ASCII folded to lower case */
    assert_int_equal(A.count, 1);
    assert_int_equal(A.dropped, 0);
    assert_int_equal(A.skipped, 0);
    expect_name(&A.an[0].owner, "www.example.com");
    assert_int_equal(A.an[0].ttl, 300);
    expect_addr(&A.an[0], "93.184.216.34");

    struct dns_addr_name l[DNS_ANSWERS_MAX];
    assert_int_equal(dns_addresses(&A, l), 1);
    assert_ptr_equal(l[0].head, &A.qname);
    assert_ptr_equal(l[0].owner, &A.an[0].owner);
    assert_ptr_equal(l[0].rr, &A.an[0]);
}

static void test_aaaa_answer(void **state)
{
    struct msg m;
    header(&m, FL_RESPONSE, 1, 2, 0, 0);
    question(&m, "v6.example.net", DNS_TYPE_AAAA);
    ptr(&m, 12);
    rr_aaaa(&m, 60, "2001:db8::1");
    ptr(&m, 12);
    rr_aaaa(&m, 61, "2001:db8:ffff::ff00:2");
    expect_ok(&m);
    assert_int_equal(A.qtype, DNS_TYPE_AAAA);
    assert_int_equal(A.count, 2);
    expect_addr(&A.an[0], "2001:db8::1");
    expect_addr(&A.an[1], "2001:db8:ffff::ff00:2");
    assert_int_equal(A.an[0].ttl, 60);
    assert_int_equal(A.an[1].ttl, 61);
    struct dns_addr_name l[DNS_ANSWERS_MAX];
    assert_int_equal(dns_addresses(&A, l), 2);
}

/* api.f5.com CNAME f5.edgekey.net CNAME e1.a.akamaiedge.net A/AAAA; the
 * target of each CNAME is compressed against the previous one. */
static void build_chain(struct msg *m, int reversed)
{
    header(m, FL_RESPONSE, 1, 5, 0, 0);
    question(m, "api.f5.com", DNS_TYPE_A);
    if (!reversed) {
        ptr(m, 12);
        uint32_t r = rr_begin(m, DNS_TYPE_CNAME, DNS_CLASS_IN, 3600);
        uint32_t t1 = m->n;
        name(m, "f5.edgekey.net");
        rr_end(m, r);
        ptr(m, (uint16_t)t1);
        r = rr_begin(m, DNS_TYPE_CNAME, DNS_CLASS_IN, 20);
        uint32_t t2 = m->n;
        labels(m, "e1.a.akamaiedge");
        ptr(m, (uint16_t)(t1 + 11)); /* "net" inside f5.edgekey.net */
        rr_end(m, r);
        ptr(m, (uint16_t)t2);
        rr_a(m, 20, "192.0.2.10");
        ptr(m, (uint16_t)t2);
        rr_a(m, 20, "192.0.2.11");
        ptr(m, (uint16_t)t2);
        rr_aaaa(m, 20, "2001:db8::10");
        return;
    }
    /* Same records, addresses first and the chain last (order is not
     * significant within a section, RFC 2181 5). Names are spelled out so
     * no pointer goes forward. */
    name(m, "E1.A.akamaiedge.net");
    rr_a(m, 20, "192.0.2.10");
    name(m, "e1.a.akamaiedge.net");
    rr_a(m, 20, "192.0.2.11");
    name(m, "e1.a.akamaiedge.net");
    rr_aaaa(m, 20, "2001:db8::10");
    name(m, "f5.edgekey.net");
    uint32_t r = rr_begin(m, DNS_TYPE_CNAME, DNS_CLASS_IN, 20);
    name(m, "e1.a.akamaiedge.net");
    rr_end(m, r);
    ptr(m, 12);
    r = rr_begin(m, DNS_TYPE_CNAME, DNS_CLASS_IN, 3600);
    name(m, "f5.edgekey.net");
    rr_end(m, r);
}

static void check_chain(void)
{
    assert_int_equal(A.count, 5);
    struct dns_addr_name l[DNS_ANSWERS_MAX];
    assert_int_equal(dns_addresses(&A, l), 3);
    const char *addrs[] = {"192.0.2.10", "192.0.2.11", "2001:db8::10"};
    for (unsigned i = 0; i < 3; i++) {
        expect_name(l[i].head, "api.f5.com");
        expect_name(l[i].owner, "e1.a.akamaiedge.net");
        expect_addr(l[i].rr, addrs[i]);
        assert_int_equal(l[i].rr->ttl, 20);
    }
}

static void test_cname_chain(void **state)
{
    struct msg m;
    build_chain(&m, 0);
    expect_ok(&m);
    assert_int_equal(A.an[0].type, DNS_TYPE_CNAME);
    assert_int_equal(A.an[0].family, 0);
    assert_int_equal(A.an[0].ttl, 3600);
    expect_name(&A.an[0].owner, "api.f5.com");
    expect_name(&A.an[0].target, "f5.edgekey.net");
    expect_name(&A.an[1].owner, "f5.edgekey.net");
    expect_name(&A.an[1].target, "e1.a.akamaiedge.net");
    check_chain();

    build_chain(&m, 1);
    expect_ok(&m);
    expect_name(&A.an[4].owner, "api.f5.com");
    check_chain();
}

/* Addresses whose owner is not on the question's chain are not linked, and
 * a CNAME loop ends. */
static void test_unlinked_and_cname_loop(void **state)
{
    struct msg m;
    header(&m, FL_RESPONSE, 1, 6, 0, 0);
    question(&m, "a.example", DNS_TYPE_A);
    name(&m, "evil.example"); /* not asked for */
    rr_a(&m, 60, "198.51.100.66");
    ptr(&m, 12); /* a CNAME b */
    uint32_t r = rr_begin(&m, DNS_TYPE_CNAME, DNS_CLASS_IN, 60);
    uint32_t b = m.n;
    name(&m, "b.example");
    rr_end(&m, r);
    ptr(&m, (uint16_t)b); /* b CNAME a: a loop */
    r = rr_begin(&m, DNS_TYPE_CNAME, DNS_CLASS_IN, 60);
    ptr(&m, 12);
    rr_end(&m, r);
    name(&m, "c.example"); /* not on the chain */
    rr_a(&m, 60, "198.51.100.67");
    ptr(&m, (uint16_t)b);
    rr_a(&m, 60, "198.51.100.68");
    ptr(&m, 12);
    rr_a(&m, 60, "198.51.100.69");
    expect_ok(&m);
    assert_int_equal(A.count, 6);
    struct dns_addr_name l[DNS_ANSWERS_MAX];
    assert_int_equal(dns_addresses(&A, l), 2);
    expect_addr(l[0].rr, "198.51.100.68");
    expect_name(l[0].owner, "b.example");
    expect_name(l[0].head, "a.example");
    expect_addr(l[1].rr, "198.51.100.69");
    expect_name(l[1].owner, "a.example");
}

/* Pointers to suffixes, to names that themselves end in a pointer, and from
 * a CNAME's RDATA into an earlier RDATA. */
static void test_compression_nested(void **state)
{
    struct msg m;
    header(&m, FL_RESPONSE, 1, 3, 0, 0);
    question(&m, "www.example.com", DNS_TYPE_A); /* \3www at 12, \7example at 16 */
    uint32_t o1 = m.n;
    labels(&m, "mail");
    ptr(&m, 16);
    uint32_t r = rr_begin(&m, DNS_TYPE_CNAME, DNS_CLASS_IN, 1);
    uint32_t t1 = m.n;
    labels(&m, "relay.eu");
    ptr(&m, (uint16_t)o1); /* relay.eu.mail.example.com */
    rr_end(&m, r);
    uint32_t o2 = m.n;
    labels(&m, "a");
    ptr(&m, (uint16_t)o1); /* a.mail.example.com: two jumps */
    r = rr_begin(&m, DNS_TYPE_CNAME, DNS_CLASS_IN, 2);
    labels(&m, "x");
    ptr(&m, (uint16_t)(t1 + 6)); /* x.eu.mail.example.com: into RDATA, then on */
    rr_end(&m, r);
    ptr(&m, (uint16_t)o2);
    rr_a(&m, 3, "203.0.113.5");
    expect_ok(&m);
    assert_int_equal(A.count, 3);
    expect_name(&A.an[0].owner, "mail.example.com");
    expect_name(&A.an[0].target, "relay.eu.mail.example.com");
    expect_name(&A.an[1].owner, "a.mail.example.com");
    expect_name(&A.an[1].target, "x.eu.mail.example.com");
    expect_name(&A.an[2].owner, "a.mail.example.com");
    expect_addr(&A.an[2], "203.0.113.5");
}

/* ---- header and question ------------------------------------------------ */

static void test_question_echo(void **state)
{
    struct msg m;
    /* QR AA TC RD RA AD CD, two questions (the first is kept), no answers */
    header(&m, 0x87b0, 2, 0, 0, 0);
    question(&m, "First.Example", DNS_TYPE_AAAA);
    labels(&m, "second");
    ptr(&m, 12 + 6);
    put16(&m, 99);
    put16(&m, 3);
    expect_ok(&m);
    assert_int_equal(A.flags, DNS_F_AA | DNS_F_TC | DNS_F_RD | DNS_F_RA | DNS_F_AD | DNS_F_CD);
    assert_int_equal(A.qdcount, 2);
    assert_int_equal(A.has_question, 1);
    expect_name(&A.qname, "first.example");
    assert_int_equal(A.qtype, DNS_TYPE_AAAA);
    assert_int_equal(A.qclass, DNS_CLASS_IN);
    assert_int_equal(A.count, 0);

    /* No question at all: answers are parsed, none is linked. */
    header(&m, FL_RESPONSE, 0, 1, 0, 0);
    name(&m, "x.example");
    rr_a(&m, 5, "192.0.2.1");
    expect_ok(&m);
    assert_int_equal(A.has_question, 0);
    assert_int_equal(A.qname.len, 0);
    assert_int_equal(A.count, 1);
    struct dns_addr_name l[DNS_ANSWERS_MAX];
    assert_int_equal(dns_addresses(&A, l), 0);
}

static void test_nxdomain(void **state)
{
    struct msg m;
    header(&m, 0x8183, 1, 0, 1, 0);
    question(&m, "nope.example.com", DNS_TYPE_A);
    ptr(&m, 12 + 5); /* example.com SOA ... in the authority section */
    uint32_t r = rr_begin(&m, 6, DNS_CLASS_IN, 900);
    labels(&m, "ns1");
    ptr(&m, 12 + 5);
    labels(&m, "hostmaster");
    ptr(&m, 12 + 5);
    for (int i = 0; i < 5; i++)
        put32(&m, 1000u + (uint32_t)i);
    rr_end(&m, r);
    expect_ok(&m);
    assert_int_equal(A.rcode, DNS_RCODE_NXDOMAIN);
    assert_int_equal(A.count, 0);
    assert_int_equal(A.skipped, 0); /* the authority section is not read */
    expect_name(&A.qname, "nope.example.com");

    /* Sections after the answers are never read, even when they are junk. */
    header(&m, FL_RESPONSE, 1, 1, 3, 2);
    question(&m, "ok.example", DNS_TYPE_A);
    ptr(&m, 12);
    rr_a(&m, 5, "192.0.2.7");
    put8(&m, 0xff);
    put8(&m, 0xc0);
    expect_ok(&m);
    assert_int_equal(A.count, 1);
}

static void test_header_checks(void **state)
{
    struct msg m;
    header(&m, FL_RESPONSE, 1, 1, 0, 0);
    question(&m, "example.org", DNS_TYPE_A);
    ptr(&m, 12);
    rr_a(&m, 5, "192.0.2.8");
    for (uint32_t n = 0; n < DNS_HEADER_LEN; n++) {
        assert_int_equal(parse_n(&m, n, &A), EGR_EINVAL);
        assert_int_equal(A.error, DNS_E_TRUNCATED);
        assert_int_equal(A.count, 0);
        assert_int_equal(A.has_question, 0);
    }

    m.b[2] = 0x01; /* a query: QR clear */
    expect_error(&m, DNS_E_NOT_RESPONSE);
    assert_int_equal(A.error_offset, 2);
    m.b[2] = 0x88; /* opcode 1, IQUERY */
    expect_error(&m, DNS_E_OPCODE);
    m.b[2] = 0x90; /* opcode 2, STATUS */
    expect_error(&m, DNS_E_OPCODE);
    m.b[2] = 0xa8; /* opcode 5, UPDATE */
    expect_error(&m, DNS_E_OPCODE);
    m.b[2] = 0x81;
    expect_ok(&m);

    /* Counts larger than the message: truncated, not a long loop. */
    header(&m, FL_RESPONSE, 0xffff, 0xffff, 0xffff, 0xffff);
    question(&m, "example.org", DNS_TYPE_A);
    expect_error(&m, DNS_E_TRUNCATED);
    assert_int_equal(A.has_question, 1);
    header(&m, FL_RESPONSE, 1, 0xffff, 0, 0);
    question(&m, "example.org", DNS_TYPE_A);
    ptr(&m, 12);
    rr_a(&m, 5, "192.0.2.8");
    expect_error(&m, DNS_E_TRUNCATED);
    assert_int_equal(A.count, 1);
}

/* ---- truncation --------------------------------------------------------- */

/* teams.pcap frame 1799 (192.168.1.1 -> 192.168.1.6, UDP 53, 2018 capture of
 * Microsoft Teams; UDP payload as `tshark -r teams.pcap -Y frame.number==1799
 * -T fields -e udp.payload` prints it): outlook.office.com A, five CNAMEs
 * then k-0002.k-msedge.net A 13.107.18.11. */
static const char teams_1799[] =
    "974581800001000600000000076f75746c6f6f6b066f666669636503636f6d0000010001c00c00050001"
    "00000035000c09737562737472617465c014c03000050001000000c50014097375627374726174650"
    "76d732d61636463c014c04800050001000000260008056166642d6bc014c068000500010000002600"
    "28126f75746c6f6f6b2d6f66666963652d636f6d066b2d30303032086b2d6d7365646765036e6574"
    "00c07c00050001000000a00002c08fc08f000100010000009f00040d6b120b";

/* teams.pcap frame 1781: trouter2-asse-a.trouter.teams.microsoft.com AAAA,
 * CNAME trouter2-asse-a.cloudapp.net, AAAA 2a01:111:f100:7000::6fdd:54a1. */
static const char teams_1781[] =
    "f401818000010002000000000f74726f75746572322d617373652d610774726f75746572057465616d"
    "73096d6963726f736f667403636f6d00001c0001c00c0005000100000d8b001e0f74726f75746572"
    "322d617373652d6108636c6f7564617070036e657400c049001c00010000000500102a010111f100"
    "7000000000006fdd54a1";

static void test_real_teams_responses(void **state)
{
    struct msg m;
    load_hex(&m, teams_1799);
    assert_int_equal(m.n, 194);
    expect_ok(&m);
    assert_int_equal(A.id, 0x9745);
    expect_name(&A.qname, "outlook.office.com");
    assert_int_equal(A.count, 6);
    static const char *const chain[][2] = {
        {"outlook.office.com", "substrate.office.com"},
        {"substrate.office.com", "substrate.ms-acdc.office.com"},
        {"substrate.ms-acdc.office.com", "afd-k.office.com"},
        {"afd-k.office.com", "outlook-office-com.k-0002.k-msedge.net"},
        {"outlook-office-com.k-0002.k-msedge.net", "k-0002.k-msedge.net"},
    };
    static const uint32_t ttls[] = {53, 197, 38, 38, 160, 159};
    for (unsigned i = 0; i < 5; i++) {
        assert_int_equal(A.an[i].type, DNS_TYPE_CNAME);
        expect_name(&A.an[i].owner, chain[i][0]);
        expect_name(&A.an[i].target, chain[i][1]);
    }
    for (unsigned i = 0; i < 6; i++)
        assert_int_equal(A.an[i].ttl, ttls[i]);
    expect_addr(&A.an[5], "13.107.18.11");
    struct dns_addr_name l[DNS_ANSWERS_MAX];
    assert_int_equal(dns_addresses(&A, l), 1);
    expect_name(l[0].head, "outlook.office.com");
    expect_name(l[0].owner, "k-0002.k-msedge.net");

    load_hex(&m, teams_1781);
    expect_ok(&m);
    assert_int_equal(A.qtype, DNS_TYPE_AAAA);
    assert_int_equal(A.count, 2);
    expect_name(&A.an[0].target, "trouter2-asse-a.cloudapp.net");
    assert_int_equal(A.an[0].ttl, 3467);
    assert_int_equal(dns_addresses(&A, l), 1);
    expect_name(l[0].head, "trouter2-asse-a.trouter.teams.microsoft.com");
    expect_name(l[0].owner, "trouter2-asse-a.cloudapp.net");
    expect_addr(l[0].rr, "2a01:111:f100:7000::6fdd:54a1");
    assert_int_equal(l[0].rr->ttl, 5);
}

/* Cuts m at every offset: each cut fails as truncated, keeps the question
 * once it is whole and exactly the answers that end before the cut, equal
 * to those of the whole message. */
static void cut_everywhere(const struct msg *m, uint32_t qend, const uint32_t *ends, unsigned nends)
{
    assert_int_equal(parse_n(m, m->n, &FULL), EGR_OK);
    assert_int_equal(FULL.count, nends);
    for (uint32_t cut = 0; cut < m->n; cut++) {
        int rc = parse_n(m, cut, &A);
        if (rc != EGR_EINVAL || A.error != DNS_E_TRUNCATED)
            fail_msg("cut at %u: rc %d error %s", cut, rc, dns_error_name(A.error));
        assert_true(A.error_offset <= cut);
        assert_int_equal(A.has_question, cut >= qend);
        if (A.has_question)
            expect_name_n(&A.qname, FULL.qname.text, FULL.qname.len);
        else
            expect_name(&A.qname, ""); /* no half question */
        unsigned want = 0;
        while (want < nends && ends[want] <= cut)
            want++;
        if (A.count != want)
            fail_msg("cut at %u: %u answers, expected %u", cut, A.count, want);
        for (unsigned i = 0; i < A.count; i++)
            answers_equal(&A.an[i], &FULL.an[i]);
    }
}

static void test_truncated_every_offset(void **state)
{
    struct msg m;
    load_hex(&m, teams_1799);
    static const uint32_t ends[] = {60, 92, 112, 164, 178, 194};
    cut_everywhere(&m, 36, ends, 6);

    /* The built chain: record ends found by building it step by step. */
    build_chain(&m, 0);
    struct msg p;
    uint32_t bends[5];
    header(&p, FL_RESPONSE, 1, 5, 0, 0);
    question(&p, "api.f5.com", DNS_TYPE_A);
    uint32_t qend = p.n;
    /* Walk m's records with the parser itself on growing prefixes: the
     * first prefix that parses k answers ends record k. */
    unsigned k = 0;
    for (uint32_t n = qend; n <= m.n && k < 5; n++) {
        struct msg q = m;
        q.b[7] = (uint8_t)(k + 1); /* ANCOUNT = k + 1 */
        if (parse_n(&q, n, &A) == EGR_OK)
            bends[k++] = n;
    }
    assert_int_equal(k, 5);
    assert_int_equal(bends[4], m.n);
    cut_everywhere(&m, qend, bends, 5);
}

/* ---- compression pointers ----------------------------------------------- */

static void test_pointer_loop(void **state)
{
    struct msg m;
    /* The question name points back to its own start. */
    header(&m, FL_RESPONSE, 1, 0, 0, 0);
    label(&m, "a", 1);
    ptr(&m, 12);
    put16(&m, 1);
    put16(&m, 1);
    expect_error(&m, DNS_E_PTR_LOOP);
    assert_int_equal(A.error_offset, 14);
    assert_int_equal(A.has_question, 0);

    /* A pointer to a name whose own pointer lands inside that name (not a
     * forward pointer, but into the labels being followed). */
    header(&m, FL_RESPONSE, 1, 1, 0, 0);
    question(&m, "q.example", DNS_TYPE_A);
    uint32_t at = m.n;
    labels(&m, "c.d"); /* \1c\1d at at..at+3 */
    ptr(&m, (uint16_t)(at + 2)); /* back to \1d: d.d.d... */
    rr_a(&m, 5, "192.0.2.9");
    expect_error(&m, DNS_E_PTR_LOOP);
    assert_int_equal(A.error_offset, at + 4);

    /* Two-step: the second name jumps to the first, whose pointer jumps
     * into the first name's own labels. */
    header(&m, FL_RESPONSE, 1, 2, 0, 0);
    question(&m, "q.example", DNS_TYPE_A);
    at = m.n;
    name(&m, "ok.example");
    rr_a(&m, 5, "192.0.2.9");
    uint32_t at2 = m.n;
    labels(&m, "c.d");
    ptr(&m, (uint16_t)(at2 + 1)); /* misaligned into "\1c" itself */
    rr_a(&m, 5, "192.0.2.9");
    expect_error(&m, DNS_E_PTR_LOOP);
    assert_int_equal(A.count, 1); /* the first answer survives */
    expect_name(&A.an[0].owner, "ok.example");
}

static void test_pointer_self_and_forward(void **state)
{
    struct msg m;
    header(&m, FL_RESPONSE, 1, 1, 0, 0);
    question(&m, "q.example", DNS_TYPE_A);
    uint32_t at = m.n;
    ptr(&m, (uint16_t)at); /* itself */
    rr_a(&m, 5, "192.0.2.9");
    expect_error(&m, DNS_E_PTR_FORWARD);
    assert_int_equal(A.error_offset, at);

    /* A pointer to a name later in the message. */
    header(&m, FL_RESPONSE, 1, 2, 0, 0);
    question(&m, "q.example", DNS_TYPE_A);
    at = m.n;
    ptr(&m, (uint16_t)(at + 2 + 14));
    rr_a(&m, 5, "192.0.2.9");
    name(&m, "later.example");
    rr_a(&m, 5, "192.0.2.10");
    expect_error(&m, DNS_E_PTR_FORWARD);
    assert_int_equal(A.count, 0);

    /* A forward pointer reached through a backward one: a skipped record's
     * RDATA holds \1x and a pointer to the end of the message; the next
     * owner points at that RDATA. */
    header(&m, FL_RESPONSE, 1, 2, 0, 0);
    question(&m, "q.example", DNS_TYPE_A);
    ptr(&m, 12);
    uint32_t r = rr_begin(&m, 10, DNS_CLASS_IN, 0);
    label(&m, "x", 1);
    uint32_t fwd = m.n;
    ptr(&m, 0);
    rr_end(&m, r);
    ptr(&m, (uint16_t)r);
    rr_a(&m, 5, "192.0.2.10");
    name(&m, "end");
    m.b[fwd + 1] = (uint8_t)(m.n - 5); /* the "end" name above */
    m.b[7] = 2;
    expect_error(&m, DNS_E_PTR_FORWARD);
    assert_int_equal(A.error_offset, fwd);
    assert_int_equal(A.skipped, 1);

    /* In a question: a pointer to its own second byte. */
    header(&m, FL_RESPONSE, 1, 0, 0, 0);
    put8(&m, 0xc0);
    put8(&m, 13);
    expect_error(&m, DNS_E_PTR_FORWARD);
}

static void test_pointer_out_of_range(void **state)
{
    struct msg m;
    header(&m, FL_RESPONSE, 1, 1, 0, 0);
    question(&m, "q.example", DNS_TYPE_A);
    uint32_t at = m.n;
    ptr(&m, 5); /* into the header */
    rr_a(&m, 5, "192.0.2.9");
    expect_error(&m, DNS_E_PTR_RANGE);
    assert_int_equal(A.error_offset, at);
    m.b[at] = 0xff; /* 0x3f.. : past the end */
    expect_error(&m, DNS_E_PTR_RANGE);
    m.b[at] = 0xc0;
    m.b[at + 1] = 0; /* offset 0 */
    expect_error(&m, DNS_E_PTR_RANGE);
    m.b[at + 1] = 12;
    expect_ok(&m);
    /* A pointer cut after its first byte. */
    assert_int_equal(parse_n(&m, at + 1, &A), EGR_EINVAL);
    assert_int_equal(A.error, DNS_E_TRUNCATED);
}

/* Builds a message whose only A answer is owned by a name reached through
 * 1 + chain pointers: a skipped record's RDATA holds `chain` pointers each
 * pointing 2 bytes back, the first to the question name "a". */
static void build_jumps(struct msg *m, unsigned chain)
{
    header(m, FL_RESPONSE, 1, 2, 0, 0);
    question(m, "a", DNS_TYPE_A);
    ptr(m, 12);
    uint32_t r = rr_begin(m, 10 /* NULL */, DNS_CLASS_IN, 0);
    for (unsigned i = 0; i < chain; i++)
        ptr(m, (uint16_t)(i == 0 ? 12 : r + 2 * (i - 1)));
    rr_end(m, r);
    ptr(m, (uint16_t)(r + 2 * (chain - 1)));
    rr_a(m, 7, "192.0.2.77");
}

static void test_pointer_jump_cap(void **state)
{
    struct msg m;
    build_jumps(&m, DNS_PTR_JUMPS_MAX - 1); /* 128 jumps: allowed */
    expect_ok(&m);
    assert_int_equal(A.count, 1);
    assert_int_equal(A.skipped, 1);
    expect_name(&A.an[0].owner, "a");
    build_jumps(&m, DNS_PTR_JUMPS_MAX); /* 129 */
    expect_error(&m, DNS_E_PTR_TOO_MANY);
    assert_int_equal(A.count, 0);
    build_jumps(&m, 1000);
    expect_error(&m, DNS_E_PTR_TOO_MANY);
}

/* ---- labels and names --------------------------------------------------- */

static void test_label_lengths(void **state)
{
    char l63[63];
    memset(l63, 'X', 63);
    struct msg m;
    header(&m, FL_RESPONSE, 1, 1, 0, 0);
    label(&m, l63, 63);
    name(&m, "example");
    put16(&m, DNS_TYPE_A);
    put16(&m, DNS_CLASS_IN);
    ptr(&m, 12);
    rr_a(&m, 5, "192.0.2.1");
    expect_ok(&m);
    char want[80];
    memset(want, 'x', 63);
    strcpy(want + 63, ".example");
    expect_name(&A.qname, want);
    expect_name(&A.an[0].owner, want);

    m.b[12] = 64; /* 0x40: the "extended label" type */
    expect_error(&m, DNS_E_LABEL_TYPE);
    assert_int_equal(A.error_offset, 12);
    m.b[12] = 0x80; /* reserved type 10 */
    expect_error(&m, DNS_E_LABEL_TYPE);
    m.b[12] = 0xbf;
    expect_error(&m, DNS_E_LABEL_TYPE);
}

/* A name of `labels_n` labels of sizes from `sizes` (cycled). */
static void long_name(struct msg *m, const unsigned *sizes, unsigned nsizes, unsigned labels_n)
{
    for (unsigned i = 0; i < labels_n; i++) {
        char l[64];
        memset(l, 'a' + (int)(i % 26), sizes[i % nsizes]);
        label(m, l, sizes[i % nsizes]);
    }
}

static void test_name_limit(void **state)
{
    struct msg m;
    /* 3 x (1 + 63) + (1 + 61) + 1 = 255 bytes: the longest name. */
    static const unsigned s255[] = {63, 63, 63, 61};
    header(&m, FL_RESPONSE, 1, 0, 0, 0);
    long_name(&m, s255, 4, 4);
    put8(&m, 0);
    put16(&m, 1);
    put16(&m, 1);
    expect_ok(&m);
    assert_int_equal(A.qname.len, DNS_NAME_TEXT_MAX);
    assert_int_equal(A.qname.text[63], '.');

    static const unsigned s256[] = {63, 63, 63, 62};
    header(&m, FL_RESPONSE, 1, 0, 0, 0);
    long_name(&m, s256, 4, 4);
    put8(&m, 0);
    put16(&m, 1);
    put16(&m, 1);
    expect_error(&m, DNS_E_NAME_TOO_LONG);
    assert_int_equal(A.error_offset, 12 + 3 * 64);

    /* Too many labels: 127 one-byte labels fit (2 x 127 + 1), 128 do not. */
    static const unsigned s1[] = {1};
    header(&m, FL_RESPONSE, 1, 0, 0, 0);
    long_name(&m, s1, 1, 127);
    put8(&m, 0);
    put16(&m, 1);
    put16(&m, 1);
    expect_ok(&m);
    assert_int_equal(A.qname.len, 253);
    header(&m, FL_RESPONSE, 1, 0, 0, 0);
    long_name(&m, s1, 1, 128);
    put8(&m, 0);
    put16(&m, 1);
    put16(&m, 1);
    expect_error(&m, DNS_E_NAME_TOO_LONG);

    /* Over the limit only once a pointer is followed: a 200-byte question
     * name, and an owner of 60 bytes of labels before a pointer to it. */
    static const unsigned s50[] = {49};
    header(&m, FL_RESPONSE, 1, 1, 0, 0);
    long_name(&m, s50, 1, 4); /* 4 x 50 + 1 = 201 */
    put8(&m, 0);
    put16(&m, 1);
    put16(&m, 1);
    static const unsigned s53[] = {53};
    long_name(&m, s53, 1, 1); /* 54 + 201 = 255: fits */
    ptr(&m, 12);
    rr_a(&m, 5, "192.0.2.1");
    expect_ok(&m);
    assert_int_equal(A.an[0].owner.len, 253);
    header(&m, FL_RESPONSE, 1, 1, 0, 0);
    long_name(&m, s50, 1, 4);
    put8(&m, 0);
    put16(&m, 1);
    put16(&m, 1);
    static const unsigned s54[] = {54};
    long_name(&m, s54, 1, 1); /* 55 + 201 = 256 */
    ptr(&m, 12);
    rr_a(&m, 5, "192.0.2.1");
    expect_error(&m, DNS_E_NAME_TOO_LONG);
}

/* Label bytes are kept raw: markup, NUL, 0xff, a dot inside a label, and
 * non-ASCII; only ASCII A-Z are folded. */
static void test_hostile_bytes(void **state)
{
    struct msg m;
    header(&m, FL_RESPONSE, 1, 1, 0, 0);
    label(&m, "<script>", 8);
    label(&m, "a\0b", 3);
    label(&m, "\xff\xfe", 2);
    label(&m, "Dot.Ted", 7);
    label(&m, "\xc4Z\"\\", 4);
    put8(&m, 0);
    put16(&m, DNS_TYPE_A);
    put16(&m, DNS_CLASS_IN);
    ptr(&m, 12);
    rr_a(&m, 5, "192.0.2.1");
    expect_ok(&m);
    static const char want[] = "<script>.a\0b.\xff\xfe.dot.ted.\xc4z\"\\";
    expect_name_n(&A.qname, want, sizeof(want) - 1);
    assert_int_equal(A.qname.flags, DNS_NAME_DOT_IN_LABEL | DNS_NAME_NUL_IN_LABEL);
    expect_name_n(&A.an[0].owner, want, sizeof(want) - 1);
    struct dns_addr_name l[DNS_ANSWERS_MAX];
    assert_int_equal(dns_addresses(&A, l), 1);

    /* A plain name has no flags. */
    header(&m, FL_RESPONSE, 1, 0, 0, 0);
    question(&m, "plain.example", DNS_TYPE_A);
    expect_ok(&m);
    assert_int_equal(A.qname.flags, 0);

    /* The root name: empty text. */
    header(&m, FL_RESPONSE, 1, 0, 0, 0);
    put8(&m, 0);
    put16(&m, 2);
    put16(&m, 1);
    expect_ok(&m);
    assert_int_equal(A.has_question, 1);
    assert_int_equal(A.qname.len, 0);
    assert_int_equal(A.qname.text[0], '\0');
}

/* ---- record section ----------------------------------------------------- */

static void test_too_many_answers(void **state)
{
    struct msg m;
    header(&m, FL_RESPONSE, 1, 44, 0, 0);
    question(&m, "many.example", DNS_TYPE_A);
    for (unsigned i = 0; i < 40; i++) {
        char a[32];
        snprintf(a, sizeof(a), "10.0.%u.%u", i / 256, i % 256);
        ptr(&m, 12);
        rr_a(&m, 100 + i, a);
        if (i % 13 == 0) { /* TXT records in between are skipped */
            ptr(&m, 12);
            uint32_t r = rr_begin(&m, 16, DNS_CLASS_IN, 1);
            label(&m, "hello", 5);
            rr_end(&m, r);
        }
    }
    expect_ok(&m);
    assert_int_equal(A.count, DNS_ANSWERS_MAX);
    assert_int_equal(A.dropped, 40 - DNS_ANSWERS_MAX);
    assert_int_equal(A.skipped, 4);
    expect_addr(&A.an[31], "10.0.0.31");
    assert_int_equal(A.an[31].ttl, 131);
    struct dns_addr_name l[DNS_ANSWERS_MAX];
    assert_int_equal(dns_addresses(&A, l), DNS_ANSWERS_MAX);

    struct dns_stats st;
    memset(&st, 0, sizeof(st));
    dns_stats_count(&st, &A);
    m.b[2] = 0x01;
    parse(&m);
    dns_stats_count(&st, &A);
    assert_int_equal(st.messages, 2);
    assert_int_equal(st.ok, 1);
    assert_int_equal(st.errors[DNS_E_NOT_RESPONSE], 1);
    assert_int_equal(st.answers, DNS_ANSWERS_MAX);
    assert_int_equal(st.dropped, 8);
    assert_int_equal(st.skipped, 4);
}

static void test_other_types_and_classes(void **state)
{
    struct msg m;
    header(&m, FL_RESPONSE, 1, 5, 0, 0);
    question(&m, "mx.example", DNS_TYPE_A);
    ptr(&m, 12); /* MX with a compressed name in RDATA */
    uint32_t r = rr_begin(&m, 15, DNS_CLASS_IN, 5);
    put16(&m, 10);
    labels(&m, "mail");
    ptr(&m, 12);
    rr_end(&m, r);
    ptr(&m, 12); /* A in class CH: not an Internet address */
    r = rr_begin(&m, DNS_TYPE_A, 3, 5);
    putn(&m, "\x0a\x00\x00\x01", 4);
    rr_end(&m, r);
    ptr(&m, 12); /* CNAME in class HS */
    r = rr_begin(&m, DNS_TYPE_CNAME, 4, 5);
    put8(&m, 0);
    rr_end(&m, r);
    ptr(&m, 12); /* an unknown type with a 0-byte RDATA */
    rr_begin(&m, 65280, DNS_CLASS_IN, 5);
    ptr(&m, 12);
    rr_a(&m, 0x80000001u, "192.0.2.55"); /* TTL with the top bit set: 0 */
    expect_ok(&m);
    assert_int_equal(A.count, 1);
    assert_int_equal(A.skipped, 4);
    expect_addr(&A.an[0], "192.0.2.55");
    assert_int_equal(A.an[0].ttl, 0);
    m.b[m.n - 10] = 0x7f;
    expect_ok(&m);
    assert_int_equal(A.an[0].ttl, 0x7f000001u);
}

static void test_bad_rdata(void **state)
{
    struct msg m;
    /* A with 5 bytes, after a good record that survives */
    header(&m, FL_RESPONSE, 1, 2, 0, 0);
    question(&m, "bad.example", DNS_TYPE_A);
    ptr(&m, 12);
    rr_a(&m, 5, "192.0.2.1");
    ptr(&m, 12);
    uint32_t r = rr_begin(&m, DNS_TYPE_A, DNS_CLASS_IN, 5);
    putn(&m, "\1\2\3\4\5", 5);
    rr_end(&m, r);
    expect_error(&m, DNS_E_BAD_RDATA);
    assert_int_equal(A.count, 1);
    expect_addr(&A.an[0], "192.0.2.1");

    /* AAAA with 4 bytes */
    header(&m, FL_RESPONSE, 1, 1, 0, 0);
    question(&m, "bad.example", DNS_TYPE_AAAA);
    ptr(&m, 12);
    r = rr_begin(&m, DNS_TYPE_AAAA, DNS_CLASS_IN, 5);
    putn(&m, "\1\2\3\4", 4);
    rr_end(&m, r);
    expect_error(&m, DNS_E_BAD_RDATA);

    /* CNAME whose RDATA is longer than its name */
    header(&m, FL_RESPONSE, 1, 1, 0, 0);
    question(&m, "bad.example", DNS_TYPE_A);
    ptr(&m, 12);
    r = rr_begin(&m, DNS_TYPE_CNAME, DNS_CLASS_IN, 5);
    name(&m, "t.example");
    put8(&m, 0);
    rr_end(&m, r);
    expect_error(&m, DNS_E_BAD_RDATA);

    /* CNAME whose name runs past its RDATA into the next record */
    header(&m, FL_RESPONSE, 1, 2, 0, 0);
    question(&m, "bad.example", DNS_TYPE_A);
    ptr(&m, 12);
    r = rr_begin(&m, DNS_TYPE_CNAME, DNS_CLASS_IN, 5);
    labels(&m, "t");
    rr_end(&m, r); /* RDATA = "\1t" only */
    put8(&m, 0);   /* ... the name ends in the next byte */
    ptr(&m, 12);
    rr_a(&m, 5, "192.0.2.1");
    expect_error(&m, DNS_E_BAD_RDATA);

    /* RDLENGTH past the end of the message */
    header(&m, FL_RESPONSE, 1, 1, 0, 0);
    question(&m, "bad.example", DNS_TYPE_A);
    ptr(&m, 12);
    rr_a(&m, 5, "192.0.2.1");
    m.b[m.n - 5] = 5;
    expect_error(&m, DNS_E_TRUNCATED);
}

/* ---- TCP framing -------------------------------------------------------- */

static void test_tcp(void **state)
{
    struct msg m1, m2;
    build_chain(&m1, 0);
    load_hex(&m2, teams_1781);
    uint32_t total = 2 + m1.n + 2 + m2.n;
    uint8_t *buf = malloc(total);
    assert_non_null(buf);
    buf[0] = (uint8_t)(m1.n >> 8);
    buf[1] = (uint8_t)m1.n;
    memcpy(buf + 2, m1.b, m1.n);
    buf[2 + m1.n] = (uint8_t)(m2.n >> 8);
    buf[3 + m1.n] = (uint8_t)m2.n;
    memcpy(buf + 4 + m1.n, m2.b, m2.n);

    uint32_t used = 0;
    assert_int_equal(dns_parse_tcp(buf, total, &A, &used), EGR_OK);
    assert_int_equal(used, 2 + m1.n);
    check_chain();
    assert_int_equal(dns_parse_tcp(buf + used, total - used, &A, &used), EGR_OK);
    assert_int_equal(used, 2 + m2.n);
    assert_int_equal(A.count, 2);
    expect_name(&A.qname, "trouter2-asse-a.trouter.teams.microsoft.com");

    /* prefix cut, message cut, empty */
    assert_int_equal(dns_parse_tcp(buf, 1, &A, &used), EGR_EINVAL);
    assert_int_equal(A.error, DNS_E_TRUNCATED);
    assert_int_equal(used, 0);
    assert_int_equal(dns_parse_tcp(buf, 2 + m1.n - 1, &A, &used), EGR_EINVAL);
    assert_int_equal(A.error, DNS_E_TRUNCATED);
    assert_int_equal(used, 0);
    assert_int_equal(dns_parse_tcp(buf, 0, &A, NULL), EGR_EINVAL);

    /* an error inside the message: its offset counts from buf */
    buf[2 + 2] = 0x01; /* QR clear */
    assert_int_equal(dns_parse_tcp(buf, total, &A, &used), EGR_EINVAL);
    assert_int_equal(A.error, DNS_E_NOT_RESPONSE);
    assert_int_equal(A.error_offset, 4);
    assert_int_equal(used, 2 + m1.n);
    free(buf);
}

/* ---- names of errors ---------------------------------------------------- */

static void test_error_names(void **state)
{
    for (int i = 0; i < DNS_E_MAX; i++) {
        const char *n = dns_error_name(i);
        assert_non_null(n);
        assert_true(strlen(n) > 0);
        assert_string_not_equal(n, "unknown");
        for (int j = 0; j < i; j++)
            assert_string_not_equal(n, dns_error_name(j));
    }
    assert_string_equal(dns_error_name(DNS_E_NONE), "none");
    assert_string_equal(dns_error_name(DNS_E_PTR_LOOP), "pointer_loop");
    assert_string_equal(dns_error_name(-1), "unknown");
    assert_string_equal(dns_error_name(DNS_E_MAX), "unknown");
}

/* ---- real captures ------------------------------------------------------ */

static const char *shared_dir(void)
{
    static char dir[1024];
    const char *env = getenv("EGRESSD_SHARED");
    if (env && *env) {
        snprintf(dir, sizeof(dir), "%s", env);
    } else {
        /* <repo>/tests/unit/test_dns.c -> <repo>/../shared */
        snprintf(dir, sizeof(dir), "%s", __FILE__);
        char *cut = strstr(dir, "/tests/unit/");
        if (!cut)
            fail_msg("EGRESSD_SHARED is not set and %s is not in <repo>/tests/unit", __FILE__);
        strcpy(cut, "/../shared");
    }
    return dir;
}

struct sweep {
    unsigned responses, ok, a, aaaa, cname;
    unsigned errors[DNS_E_MAX];
};

/* The UDP payload of an Ethernet (+802.1Q) / IPv4 or IPv6 / UDP frame from
 * port 53, unfragmented; NULL otherwise. Test-only: the sensor's decoder is
 * decode.c. */
static const uint8_t *udp53_payload(const uint8_t *p, uint32_t len, uint32_t *out_len)
{
    if (len < 14)
        return NULL;
    uint32_t off = 12;
    uint16_t et = (uint16_t)(p[off] << 8 | p[off + 1]);
    off += 2;
    while ((et == 0x8100 || et == 0x88a8) && off + 4 <= len) {
        et = (uint16_t)(p[off + 2] << 8 | p[off + 3]);
        off += 4;
    }
    uint8_t proto;
    uint32_t end = len;
    if (et == 0x0800) {
        if (off + 20 > len)
            return NULL;
        uint32_t hl = (p[off] & 0x0fu) * 4;
        uint32_t tl = (uint32_t)(p[off + 2] << 8 | p[off + 3]);
        if ((p[off + 6] & 0x3f) || p[off + 7]) /* MF or a fragment offset */
            return NULL;
        proto = p[off + 9];
        if (off + tl < end)
            end = off + tl;
        off += hl;
    } else if (et == 0x86dd) {
        if (off + 40 > len)
            return NULL;
        proto = p[off + 6];
        uint32_t pl = (uint32_t)(p[off + 4] << 8 | p[off + 5]);
        off += 40;
        if (off + pl < end)
            end = off + pl;
    } else {
        return NULL;
    }
    if (proto != 17 || off + 8 > end)
        return NULL;
    if ((p[off] << 8 | p[off + 1]) != 53)
        return NULL;
    *out_len = end - off - 8;
    return p + off + 8;
}

static void sweep_file(const char *file, struct sweep *s)
{
    char path[1280], eb[PCAP_ERRBUF_SIZE];
    struct stat st;
    if (stat(shared_dir(), &st) != 0) {
        printf("SKIP: the test corpus %s is absent (scripts/get-test-corpus.py fetches it)\n", shared_dir());
        skip();
    }
    snprintf(path, sizeof(path), "%s/pcaps/%s", shared_dir(), file);
    pcap_t *pc = pcap_open_offline(path, eb);
    if (!pc)
        fail_msg("%s: %s (set EGRESSD_SHARED to the shared test data, ../shared)", path, eb);
    memset(s, 0, sizeof(*s));
    struct pcap_pkthdr *h;
    const u_char *d;
    while (pcap_next_ex(pc, &h, &d) == 1) {
        uint32_t n = 0;
        const uint8_t *pl = udp53_payload(d, h->caplen, &n);
        if (!pl)
            continue;
        uint8_t *copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, pl, n);
        int rc = dns_parse_response(copy, n, &A);
        free(copy);
        if (A.error == DNS_E_NOT_RESPONSE)
            continue; /* a query from port 53 */
        s->responses++;
        if (rc == EGR_OK)
            s->ok++;
        s->errors[A.error]++;
        for (unsigned i = 0; i < A.count; i++) {
            s->a += A.an[i].type == DNS_TYPE_A;
            s->aaaa += A.an[i].type == DNS_TYPE_AAAA;
            s->cname += A.an[i].type == DNS_TYPE_CNAME;
        }
    }
    pcap_close(pc);
}

/* Expected values: the responses `tshark -r FILE -Y 'udp.srcport==53 &&
 * dns.flags.response==1 && !(ip.flags.mf==1) && !(ip.frag_offset>0)' -T
 * json` lists, and the class IN records of each type in their Answers
 * (tshark 4.0.17). tshark agrees record by record (names, TTLs, data) on
 * every response parsed here. malformed_dns.pcap holds a second question
 * name over 255 bytes (tshark: "<Name too long>"); dns_invert_query.pcapng
 * is an IQUERY (opcode 1) response. */
static void test_real_captures(void **state)
{
    static const struct {
        const char *file;
        unsigned responses, ok, a, aaaa, cname;
        int error;
    } cases[] = {
        {"teams.pcap", 22, 22, 17, 1, 40, -1},
        {"iphone.pcap", 19, 19, 43, 0, 42, -1},
        {"alexa-app.pcapng", 31, 31, 57, 1, 19, -1},
        {"dns-invalid-chars.pcap", 1, 1, 1, 0, 0, -1},
        {"malformed_dns.pcap", 4, 0, 0, 0, 0, DNS_E_NAME_TOO_LONG},
        {"dns_invert_query.pcapng", 1, 0, 0, 0, 0, DNS_E_OPCODE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sweep s;
        sweep_file(cases[i].file, &s);
        if (s.responses != cases[i].responses || s.ok != cases[i].ok || s.a != cases[i].a ||
            s.aaaa != cases[i].aaaa || s.cname != cases[i].cname)
            fail_msg("%s: %u responses, %u ok, %u A, %u AAAA, %u CNAME; expected %u %u %u %u %u",
                     cases[i].file, s.responses, s.ok, s.a, s.aaaa, s.cname, cases[i].responses,
                     cases[i].ok, cases[i].a, cases[i].aaaa, cases[i].cname);
        if (cases[i].error >= 0)
            assert_int_equal(s.errors[cases[i].error], cases[i].responses - cases[i].ok);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_answer),
        cmocka_unit_test(test_aaaa_answer),
        cmocka_unit_test(test_cname_chain),
        cmocka_unit_test(test_unlinked_and_cname_loop),
        cmocka_unit_test(test_compression_nested),
        cmocka_unit_test(test_question_echo),
        cmocka_unit_test(test_nxdomain),
        cmocka_unit_test(test_header_checks),
        cmocka_unit_test(test_real_teams_responses),
        cmocka_unit_test(test_truncated_every_offset),
        cmocka_unit_test(test_pointer_loop),
        cmocka_unit_test(test_pointer_self_and_forward),
        cmocka_unit_test(test_pointer_out_of_range),
        cmocka_unit_test(test_pointer_jump_cap),
        cmocka_unit_test(test_label_lengths),
        cmocka_unit_test(test_name_limit),
        cmocka_unit_test(test_hostile_bytes),
        cmocka_unit_test(test_too_many_answers),
        cmocka_unit_test(test_other_types_and_classes),
        cmocka_unit_test(test_bad_rdata),
        cmocka_unit_test(test_tcp),
        cmocka_unit_test(test_error_names),
        cmocka_unit_test(test_real_captures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

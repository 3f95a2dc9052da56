/* test_classify.c - nDPI classification (src/classify.c): packets built by
 * hand (IPv4/IPv6 + UDP/TCP headers written into a buffer, a pkt_meta filled
 * as decode would) go through classify_packet, and the record section
 * classify_fill_record() makes of the result is checked field by field:
 * DNS (A and AAAA), TLS ClientHello (SNI, JA3 checked against an MD5 of the
 * JA3 string we built), HTTP, SSH banners, unknown traffic given up, the
 * packet budgets, the free list, hostile bytes and long strings, risks, and
 * packets cut at every length. Needs nothing but the classify module. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <gcrypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egressd/classify.h"

/* ---- packet builder --------------------------------------------------- */

#define PKT_MAX 4096

struct tpkt {
    uint8_t buf[PKT_MAX];
    struct pkt_meta m;
};

/* One end of a conversation. */
struct ep {
    uint8_t family; /* 4 or 6 */
    uint8_t addr[16];
    uint16_t port;
};

static void put16(uint8_t *b, uint16_t v)
{
    b[0] = (uint8_t)(v >> 8);
    b[1] = (uint8_t)v;
}

static void put32(uint8_t *b, uint32_t v)
{
    put16(b, (uint16_t)(v >> 16));
    put16(b + 2, (uint16_t)v);
}

static struct ep ep4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port)
{
    struct ep e = {.family = 4, .port = port};
    e.addr[0] = a, e.addr[1] = b, e.addr[2] = c, e.addr[3] = d;
    return e;
}

static struct ep ep6(uint16_t last, uint16_t port)
{
    /* 2001:db8::<last> (documentation prefix) */
    struct ep e = {.family = 6, .port = port};
    put16(e.addr, 0x2001);
    put16(e.addr + 2, 0x0db8);
    put16(e.addr + 14, last);
    return e;
}

/* Writes IP + UDP (proto 17) or TCP (proto 6) headers and the payload into
 * p->buf and fills p->m the way decode does. */
static void build(struct tpkt *p, uint8_t proto, const struct ep *src, const struct ep *dst,
                  uint8_t tcp_flags, uint32_t seq, uint32_t ack, const void *payload, size_t plen,
                  uint64_t ts_us)
{
    memset(p, 0, sizeof(*p));
    size_t l3h = src->family == 4 ? 20 : 40;
    size_t l4h = proto == 6 ? 20 : 8;
    assert_true(l3h + l4h + plen <= PKT_MAX);
    uint8_t *ip = p->buf, *l4 = p->buf + l3h, *pl = l4 + l4h;
    size_t total = l3h + l4h + plen;

    if (src->family == 4) {
        ip[0] = 0x45;
        put16(ip + 2, (uint16_t)total);
        put16(ip + 4, 0x1234);
        ip[8] = 64;
        ip[9] = proto;
        memcpy(ip + 12, src->addr, 4);
        memcpy(ip + 16, dst->addr, 4);
    } else {
        ip[0] = 0x60;
        put16(ip + 4, (uint16_t)(l4h + plen));
        ip[6] = proto;
        ip[7] = 64;
        memcpy(ip + 8, src->addr, 16);
        memcpy(ip + 24, dst->addr, 16);
    }
    put16(l4, src->port);
    put16(l4 + 2, dst->port);
    if (proto == 6) {
        put32(l4 + 4, seq);
        put32(l4 + 8, ack);
        l4[12] = 5 << 4;
        l4[13] = tcp_flags;
        put16(l4 + 14, 65535);
    } else {
        put16(l4 + 4, (uint16_t)(l4h + plen));
    }
    if (plen)
        memcpy(pl, payload, plen);

    struct pkt_meta *m = &p->m;
    m->ts_us = ts_us;
    m->wire_len = m->cap_len = (uint32_t)total + 14;
    m->family = src->family;
    m->proto = proto;
    m->tcp_flags = proto == 6 ? tcp_flags : 0;
    m->ttl = 64;
    memcpy(m->src, src->addr, 16);
    memcpy(m->dst, dst->addr, 16);
    m->sport = src->port;
    m->dport = dst->port;
    m->flags = PKT_F_L4;
    m->l3 = ip;
    m->l3_len = (uint32_t)total;
    m->l4 = l4;
    m->l4_len = (uint32_t)(l4h + plen);
    m->payload = pl;
    m->payload_len = (uint32_t)plen;
}

/* A TCP or UDP conversation between a client and a server, keeping the TCP
 * sequence numbers right so that nDPI sees no retransmissions. */
struct conv {
    struct classify_ctx *ctx;
    struct classify_flow *cf;
    uint8_t proto;
    struct ep cli, srv;
    uint32_t cseq, sseq;
    uint64_t ts;
    struct tpkt pkt;
};

static void conv_init(struct conv *c, struct classify_ctx *ctx, uint8_t proto, struct ep cli,
                      struct ep srv)
{
    memset(c, 0, sizeof(*c));
    c->ctx = ctx;
    c->cf = classify_flow_new(ctx);
    assert_non_null(c->cf);
    c->proto = proto;
    c->cli = cli;
    c->srv = srv;
    c->cseq = 1000;
    c->sseq = 50000;
    c->ts = 1700000000000000ull;
}

static int conv_send_flags(struct conv *c, int from_client, uint8_t flags, const void *data,
                           size_t len)
{
    c->ts += 1000;
    if (from_client)
        build(&c->pkt, c->proto, &c->cli, &c->srv, flags, c->cseq, c->sseq, data, len, c->ts);
    else
        build(&c->pkt, c->proto, &c->srv, &c->cli, flags, c->sseq, c->cseq, data, len, c->ts);
    uint32_t adv = (uint32_t)len + ((flags & 0x03) ? 1 : 0); /* SYN and FIN take one */
    if (from_client)
        c->cseq += adv;
    else
        c->sseq += adv;
    return classify_packet(c->ctx, c->cf, &c->pkt.m, from_client);
}

static int conv_send(struct conv *c, int from_client, const void *data, size_t len)
{
    return conv_send_flags(c, from_client, c->proto == 6 ? 0x18 : 0, data, len); /* PSH|ACK */
}

static void conv_handshake(struct conv *c)
{
    assert_int_equal(conv_send_flags(c, 1, 0x02, NULL, 0), 0);
    assert_int_equal(conv_send_flags(c, 0, 0x12, NULL, 0), 0);
    assert_int_equal(conv_send_flags(c, 1, 0x10, NULL, 0), 0);
}

static void conv_finish(struct conv *c, struct classify_result *res, struct rec_ndpi *rec)
{
    memset(res, 0, sizeof(*res));
    classify_flow_finish(c->ctx, c->cf, res);
    c->cf = NULL;
    classify_fill_record(c->ctx, res, rec);
}

/* ---- payloads --------------------------------------------------------- */

static size_t dns_name(uint8_t *out, const char *name)
{
    size_t n = 0;
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        out[n++] = (uint8_t)l;
        memcpy(out + n, name, l);
        n += l;
        name += l;
        if (*name == '.')
            name++;
    }
    out[n++] = 0;
    return n;
}

/* A standard query for name/qtype; with answer non-NULL, the response with
 * one answer record of answer_len bytes. */
static size_t dns_msg(uint8_t *out, uint16_t id, const char *name, uint16_t qtype,
                      const uint8_t *answer, size_t answer_len)
{
    size_t n = 0;
    put16(out, id);
    put16(out + 2, answer ? 0x8180 : 0x0100);
    put16(out + 4, 1);
    put16(out + 6, answer ? 1 : 0);
    put16(out + 8, 0);
    put16(out + 10, 0);
    n = 12;
    n += dns_name(out + n, name);
    put16(out + n, qtype);
    put16(out + n + 2, 1);
    n += 4;
    if (answer) {
        put16(out + n, 0xc00c); /* pointer to the question name */
        put16(out + n + 2, qtype);
        put16(out + n + 4, 1);
        put32(out + n + 6, 300);
        put16(out + n + 10, (uint16_t)answer_len);
        n += 12;
        memcpy(out + n, answer, answer_len);
        n += answer_len;
    }
    return n;
}

/* A TLS 1.2 ClientHello: ciphers 0x1301, 0x1302, 0xc02f, 0xc030; extensions
 * server_name, supported_groups (x25519), ec_point_formats (uncompressed),
 * ALPN (h2, http/1.1), signature_algorithms. Its JA3 string is
 * JA3_STRING. */
#define JA3_STRING "771,4865-4866-49199-49200,0-10-11-16-13,29,0"

static size_t client_hello(uint8_t *out, const uint8_t *sni, size_t sni_len)
{
    uint8_t body[1024];
    size_t n = 0;
    put16(body + n, 0x0303);
    n += 2;
    for (int i = 0; i < 32; i++)
        body[n++] = (uint8_t)(0x40 + i); /* random */
    body[n++] = 0;                       /* session id */
    static const uint8_t ciphers[] = {0x00, 0x08, 0x13, 0x01, 0x13, 0x02,
                                      0xc0, 0x2f, 0xc0, 0x30, 0x01, 0x00};
    memcpy(body + n, ciphers, sizeof(ciphers)); /* suites, then 1 compression: null */
    n += sizeof(ciphers);

    uint8_t ext[1024];
    size_t e = 0;
    put16(ext + e, 0x0000);
    put16(ext + e + 2, (uint16_t)(sni_len + 5));
    put16(ext + e + 4, (uint16_t)(sni_len + 3));
    ext[e + 6] = 0;
    put16(ext + e + 7, (uint16_t)sni_len);
    memcpy(ext + e + 9, sni, sni_len);
    e += 9 + sni_len;
    static const uint8_t rest[] = {
        0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x1d,             /* supported_groups */
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00,                         /* ec_point_formats */
        0x00, 0x10, 0x00, 0x0e, 0x00, 0x0c, 0x02, 'h', '2', 0x08,   /* ALPN */
        'h', 't', 't', 'p', '/', '1', '.', '1',                     /* */
        0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03,             /* signature_algs */
    };
    memcpy(ext + e, rest, sizeof(rest));
    e += sizeof(rest);
    put16(body + n, (uint16_t)e);
    n += 2;
    memcpy(body + n, ext, e);
    n += e;

    out[0] = 0x16;
    put16(out + 1, 0x0301);
    put16(out + 3, (uint16_t)(n + 4));
    out[5] = 0x01;
    out[6] = 0;
    put16(out + 7, (uint16_t)n);
    memcpy(out + 9, body, n);
    return n + 9;
}

static void md5_hex(const char *s, char out[33])
{
    uint8_t d[16];
    gcry_md_hash_buffer(GCRY_MD_MD5, d, s, strlen(s));
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static int is_lower_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* Deterministic filler that looks like no protocol. */
static void garbage(uint8_t *out, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out[i] = (uint8_t)x;
    }
}

/* ---- fixtures --------------------------------------------------------- */

static int setup(void **state)
{
    struct classify_config cfg;
    classify_config_defaults(&cfg);
    struct classify_ctx *ctx = NULL;
    struct egr_err err = {{0}};
    if (classify_new(&cfg, &ctx, &err) != EGR_OK) {
        fprintf(stderr, "classify_new: %s\n", err.msg);
        return -1;
    }
    *state = ctx;
    return 0;
}

static int teardown(void **state)
{
    classify_free(*state);
    return 0;
}

/* ---- tests ------------------------------------------------------------ */

static void test_defaults_and_bad_config(void **state)
{
    (void)state;
    struct classify_config cfg;
    memset(&cfg, 0xff, sizeof(cfg));
    classify_config_defaults(&cfg);
    assert_int_equal(cfg.max_pkts_tcp, 80);
    assert_int_equal(cfg.max_pkts_udp, 24);

    struct classify_ctx *ctx = (struct classify_ctx *)(uintptr_t)1; /* must become NULL */
    struct egr_err err = {{0}};
    cfg.max_pkts_udp = 0;
    assert_int_equal(classify_new(&cfg, &ctx, &err), EGR_EINVAL);
    assert_null(ctx);
    assert_non_null(strstr(err.msg, "classify"));

    assert_true(classify_flow_state_size() > 600);
    const char *v = classify_ndpi_version();
    assert_non_null(v);
    assert_memory_equal(v, "4.2", 3);
}

static void test_dns_a(void **state)
{
    struct conv c;
    conv_init(&c, *state, 17, ep4(10, 0, 0, 2, 40001), ep4(10, 0, 0, 1, 53));
    uint8_t q[512], r[512];
    static const uint8_t addr[4] = {93, 184, 216, 34};
    size_t ql = dns_msg(q, 0x4242, "example.com", 1, NULL, 0);
    size_t rl = dns_msg(r, 0x4242, "example.com", 1, addr, 4);

    /* The query detects DNS, but the answer is still to come. */
    assert_int_equal(conv_send(&c, 1, q, ql), 0);

    struct classify_result snap = {0};
    struct rec_ndpi rec;
    classify_flow_peek(c.ctx, c.cf, &snap);
    assert_int_equal(snap.done, 0);
    classify_fill_record(c.ctx, &snap, &rec);
    assert_string_equal(rec.proto, "DNS");
    assert_string_equal(rec.dns_query, "example.com");
    assert_int_equal(rec.dns_is_response, 0);
    assert_int_equal(rec.dns_parsed, 0);
    assert_int_equal(rec.dns_rr_count, 0);
    /* the query's id is kept from its header */
    assert_int_equal(rec.dns_has_id, 1);
    assert_int_equal(rec.dns_id, 0x4242);
    /* peek replaces what the result held */
    classify_flow_peek(c.ctx, c.cf, &snap);
    classify_result_clear(&snap);
    assert_null(snap.meta);
    assert_int_equal(snap.master_id, 0);

    /* The response ends detection. */
    assert_int_equal(conv_send(&c, 0, r, rl), 1);
    struct classify_result res;
    conv_finish(&c, &res, &rec);
    assert_int_equal(res.done, 1);
    assert_non_null(res.meta);
    assert_string_equal(rec.proto, "DNS");
    assert_string_equal(rec.master, "DNS");
    assert_string_equal(rec.app, "");
    assert_int_equal(rec.master_id, 5);
    assert_int_equal(rec.app_id, 0);
    assert_string_equal(rec.category, "Network");
    assert_string_equal(rec.confidence, "DPI");
    assert_string_equal(rec.dns_query, "example.com");
    assert_int_equal(rec.dns_qtype, 1);
    assert_int_equal(rec.dns_rcode, 0);
    assert_int_equal(rec.dns_is_response, 1);
    /* the response, from the sensor's own parse: header, question, answer */
    assert_int_equal(rec.dns_parsed, 1);
    assert_int_equal(rec.dns_resp_id, 0x4242);
    assert_int_equal(rec.dns_flags, 0x8180);
    assert_true(rec.dns_resp_us > 0);
    assert_int_equal(rec.dns_qname_len, 11);
    assert_memory_equal(rec.dns_pool + rec.dns_qname_off, "example.com", 11);
    assert_int_equal(rec.dns_rr_count, 1);
    assert_int_equal(rec.dns_rr_cut, 0);
    assert_int_equal(rec.dns_rr[0].type, 1);
    assert_int_equal(rec.dns_rr[0].ttl, 300);
    assert_int_equal(rec.dns_rr[0].owner_len, 11);
    /* the owner is the question name, stored once */
    assert_int_equal(rec.dns_rr[0].owner_off, rec.dns_qname_off);
    assert_int_equal(rec.dns_rr[0].data_len, 4);
    assert_memory_equal(rec.dns_pool + rec.dns_rr[0].data_off, addr, 4);
    /* nothing of the other protocols */
    assert_string_equal(rec.tls_sni, "");
    assert_string_equal(rec.http_host, "");
    assert_int_equal(rec.http_status, 0);
    classify_result_clear(&res);
    assert_null(res.meta);
    assert_int_equal(res.done, 0);
}

static void test_dns_aaaa_ipv6(void **state)
{
    struct conv c;
    conv_init(&c, *state, 17, ep6(2, 40002), ep6(1, 53));
    uint8_t q[512], r[512];
    uint8_t addr[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34};
    size_t ql = dns_msg(q, 7, "ipv6.example.net", 28, NULL, 0);
    size_t rl = dns_msg(r, 7, "ipv6.example.net", 28, addr, 16);
    assert_int_equal(conv_send(&c, 1, q, ql), 0);
    assert_int_equal(conv_send(&c, 0, r, rl), 1);
    struct classify_result res;
    struct rec_ndpi rec;
    conv_finish(&c, &res, &rec);
    assert_string_equal(rec.proto, "DNS");
    assert_string_equal(rec.dns_query, "ipv6.example.net");
    assert_int_equal(rec.dns_qtype, 28);
    assert_int_equal(rec.dns_rr_count, 1);
    assert_int_equal(rec.dns_rr[0].type, 28);
    assert_int_equal(rec.dns_rr[0].data_len, 16);
    assert_memory_equal(rec.dns_pool + rec.dns_rr[0].data_off, addr, 16);
    assert_int_equal(rec.dns_id, 7);
    assert_int_equal(rec.dns_resp_id, 7);
    classify_result_clear(&res);
}

static void tls_flow(struct classify_ctx *ctx, const uint8_t *sni, size_t sni_len,
                     struct classify_result *res, struct rec_ndpi *rec)
{
    struct conv c;
    conv_init(&c, ctx, 6, ep4(192, 168, 1, 10, 51000), ep4(10, 9, 8, 7, 443));
    conv_handshake(&c);
    uint8_t hello[1500];
    size_t hl = client_hello(hello, sni, sni_len);
    /* TLS is known from the ClientHello; the certificate may still come. */
    assert_int_equal(conv_send(&c, 1, hello, hl), 0);
    conv_finish(&c, res, rec);
}

static void test_tls_client_hello(void **state)
{
    struct classify_result res;
    struct rec_ndpi rec;
    const char *sni = "www.example.org";
    tls_flow(*state, (const uint8_t *)sni, strlen(sni), &res, &rec);
    assert_int_equal(res.done, 1);
    assert_string_equal(rec.proto, "TLS");
    assert_string_equal(rec.master, "TLS");
    assert_int_equal(rec.master_id, 91);
    assert_string_equal(rec.tls_sni, "www.example.org");
    assert_int_equal(rec.tls_version, 0x0303);
    assert_string_equal(rec.tls_alpn, "h2,http/1.1");
    assert_true(is_lower_hex(rec.tls_ja3c, 32));
    char want[33];
    md5_hex(JA3_STRING, want);
    assert_string_equal(rec.tls_ja3c, want);
    /* the string nDPI hashed, rebuilt from the same ClientHello */
    assert_string_equal(rec.tls_ja3c_str, JA3_STRING);
    /* no server side seen */
    assert_string_equal(rec.tls_ja3s, "");
    assert_string_equal(rec.tls_sha1, "");
    assert_string_equal(rec.tls_issuer, "");
    assert_string_equal(rec.dns_query, "");
    classify_result_clear(&res);
}

static void test_tls_hostile_sni(void **state)
{
    /* Quotes, backslash and '<' survive as raw bytes (escaping is the
     * sinks' job); nDPI lowercases the name, stops at the NUL, turns
     * unprintable bytes into '?' and flags them (risk 39). */
    static const uint8_t sni[] = {'A', '"', 'b', '\'', '\\', 0xff, 0x01, '<', 'x', '>',
                                  0x00, 'h', 'i', 'd', 'd', 'e', 'n'};
    static const char want[] = "a\"b'\\?" "?<x>"; /* split: not a trigraph */
    struct classify_result res;
    struct rec_ndpi rec;
    memset(&rec, 0x55, sizeof(rec));
    tls_flow(*state, sni, sizeof(sni), &res, &rec);
    assert_string_equal(rec.proto, "TLS");
    assert_memory_equal(rec.tls_sni, want, sizeof(want));
    assert_true(rec.risk & (1ull << 39));
    assert_string_equal(classify_risk_name(39), "Text Contains Non-Printable Characters");
    /* the NUL-filled remainder: no stale bytes from before the fill */
    for (size_t i = sizeof(want); i < sizeof(rec.tls_sni); i++)
        assert_int_equal(rec.tls_sni[i], 0);
    classify_result_clear(&res);

    /* A name longer than any buffer on the way stays bounded. */
    uint8_t longname[600];
    memset(longname, 'q', sizeof(longname));
    memcpy(longname + sizeof(longname) - 12, ".example.com", 12);
    tls_flow(*state, longname, sizeof(longname), &res, &rec);
    size_t n = strnlen(rec.tls_sni, sizeof(rec.tls_sni));
    assert_true(n > 0 && n < sizeof(rec.tls_sni));
    /* nDPI keeps the end of a long name */
    assert_memory_equal(rec.tls_sni + n - 12, ".example.com", 12);
    classify_result_clear(&res);
}

static void http_flow(struct classify_ctx *ctx, const char *req, const char *rsp,
                      struct classify_result *res, struct rec_ndpi *rec, int *last_rc)
{
    struct conv c;
    conv_init(&c, ctx, 6, ep4(192, 168, 1, 10, 51001), ep4(10, 9, 8, 7, 80));
    conv_handshake(&c);
    assert_int_equal(conv_send(&c, 1, req, strlen(req)), 0);
    *last_rc = conv_send(&c, 0, rsp, strlen(rsp));
    conv_finish(&c, res, rec);
}

static void test_http(void **state)
{
    struct classify_result res;
    struct rec_ndpi rec;
    int rc;
    http_flow(*state,
              "GET /index.html HTTP/1.1\r\nHost: www.example.com\r\n"
              "User-Agent: egressd-test/1.0\r\nAccept: */*\r\n\r\n",
              "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello",
              &res, &rec, &rc);
    /* Host and status known: nothing more to learn after the response. */
    assert_int_equal(rc, 1);
    assert_string_equal(rec.proto, "HTTP");
    assert_string_equal(rec.master, "HTTP");
    assert_string_equal(rec.app, "");
    assert_string_equal(rec.http_host, "www.example.com");
    assert_string_equal(rec.http_ua, "egressd-test/1.0");
    assert_string_equal(rec.http_url, "www.example.com/index.html");
    assert_int_equal(rec.http_status, 200);
    assert_string_equal(rec.tls_sni, "");
    classify_result_clear(&res);
}

static void test_http_hostile_user_agent(void **state)
{
    /* nDPI keeps the user agent as it came: quotes, backslashes, 0xff and
     * control bytes reach the record unchanged. */
    struct classify_result res;
    struct rec_ndpi rec;
    int rc;
    http_flow(*state,
              "GET / HTTP/1.1\r\nHost: q.example\r\n"
              "User-Agent: a\"b\\c\xff\x01\x7f'}{\r\n\r\n",
              "HTTP/1.1 204 No Content\r\n\r\n", &res, &rec, &rc);
    assert_string_equal(rec.proto, "HTTP");
    assert_string_equal(rec.http_ua, "a\"b\\c\xff\x01\x7f'}{");
    assert_int_equal(rec.http_status, 204);
    classify_result_clear(&res);
}

static void test_http_long_strings(void **state)
{
    /* A user agent and URL longer than the record fields are cut, with
     * their NUL, and nothing past the field is written. */
    char ua[1200], path[1200], req[3000];
    memset(ua, 'u', sizeof(ua) - 1);
    ua[sizeof(ua) - 1] = 0;
    memset(path, 'p', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = 0;
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: h.example\r\nUser-Agent: %s\r\n\r\n",
             path, ua);
    struct classify_result res;
    struct rec_ndpi rec;
    int rc;
    http_flow(*state, req, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", &res, &rec,
              &rc);
    assert_string_equal(rec.proto, "HTTP");
    assert_int_equal(strlen(rec.http_ua), sizeof(rec.http_ua) - 1);
    assert_memory_equal(rec.http_ua, ua, sizeof(rec.http_ua) - 1);
    assert_int_equal(strlen(rec.http_url), sizeof(rec.http_url) - 1);
    assert_memory_equal(rec.http_url, "h.example/ppp", 13);
    assert_int_equal(rec.http_status, 404);
    classify_result_clear(&res);
}

static void test_ssh(void **state)
{
    struct conv c;
    conv_init(&c, *state, 6, ep4(192, 168, 1, 10, 51002), ep4(10, 9, 8, 7, 22));
    conv_handshake(&c);
    const char *cb = "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3\r\n";
    const char *sb = "SSH-2.0-OpenSSH_7.4\r\n";
    /* SSH is detected on the client banner; the key exchange (HASSH) would
     * follow, so detection goes on. */
    assert_int_equal(conv_send(&c, 1, cb, strlen(cb)), 0);
    assert_int_equal(conv_send(&c, 0, sb, strlen(sb)), 0);
    struct classify_result res;
    struct rec_ndpi rec;
    conv_finish(&c, &res, &rec);
    assert_string_equal(rec.proto, "SSH");
    assert_int_equal(rec.master_id, 92);
    assert_string_equal(rec.ssh_client, "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3");
    assert_string_equal(rec.ssh_server, "SSH-2.0-OpenSSH_7.4");
    assert_string_equal(rec.ssh_hassh_client, "");
    classify_result_clear(&res);
}

static void test_unknown_udp_given_up(void **state)
{
    struct conv c;
    conv_init(&c, *state, 17, ep4(10, 1, 1, 1, 47123), ep4(10, 2, 2, 2, 52345));
    uint8_t junk[200];
    for (uint32_t i = 0; i < 6; i++) {
        garbage(junk, sizeof(junk), i + 1);
        assert_int_equal(conv_send(&c, (int)(i & 1) == 0, junk, 40 + i * 20), 0);
    }
    struct classify_result res;
    struct rec_ndpi rec;
    conv_finish(&c, &res, &rec);
    assert_int_equal(res.done, 1);
    assert_string_equal(rec.proto, "Unknown");
    assert_string_equal(rec.master, "");
    assert_string_equal(rec.app, "");
    assert_int_equal(rec.master_id, 0);
    assert_int_equal(rec.app_id, 0);
    assert_string_equal(rec.confidence, "Unknown");
    assert_string_equal(rec.category, "Unspecified");
    assert_null(res.meta);
    classify_result_clear(&res);
}

static void test_budget(void **state)
{
    (void)state;
    struct classify_config cfg = {.max_pkts_tcp = 5, .max_pkts_udp = 3};
    struct classify_ctx *ctx;
    struct egr_err err;
    assert_int_equal(classify_new(&cfg, &ctx, &err), EGR_OK);
    uint8_t junk[100];

    /* UDP: the packets within the budget are dissected and the one past it
     * ends detection (ndpiReader counts the packet, then compares with >). */
    struct conv c;
    conv_init(&c, ctx, 17, ep4(10, 1, 1, 1, 47123), ep4(10, 2, 2, 2, 52345));
    for (uint32_t i = 0; i < cfg.max_pkts_udp; i++) {
        garbage(junk, sizeof(junk), 100 + i);
        assert_int_equal(conv_send(&c, 1, junk, sizeof(junk)), 0);
    }
    assert_int_equal(conv_send(&c, 0, junk, sizeof(junk)), 1);
    /* and stays ended: nothing more is fed */
    assert_int_equal(conv_send(&c, 1, junk, sizeof(junk)), 1);
    struct classify_result res;
    struct rec_ndpi rec;
    conv_finish(&c, &res, &rec);
    assert_int_equal(res.done, 1);
    assert_string_equal(rec.proto, "Unknown");
    classify_result_clear(&res);

    /* TCP has its own budget (handshake packets count). */
    conv_init(&c, ctx, 6, ep4(10, 1, 1, 1, 47124), ep4(10, 2, 2, 2, 52346));
    conv_handshake(&c);
    garbage(junk, sizeof(junk), 7);
    assert_int_equal(conv_send(&c, 1, junk, sizeof(junk)), 0);
    assert_int_equal(conv_send(&c, 0, junk, sizeof(junk)), 0);
    assert_int_equal(conv_send(&c, 1, junk, sizeof(junk)), 1);
    conv_finish(&c, &res, &rec);
    assert_string_equal(rec.proto, "Unknown");
    classify_result_clear(&res);

    /* Packets without an IP header are ignored and not counted. */
    conv_init(&c, ctx, 17, ep4(10, 1, 1, 1, 47125), ep4(10, 2, 2, 2, 52347));
    struct pkt_meta none;
    memset(&none, 0, sizeof(none));
    for (int i = 0; i < 10; i++)
        assert_int_equal(classify_packet(ctx, c.cf, &none, 1), 0);
    for (uint32_t i = 0; i < cfg.max_pkts_udp; i++)
        assert_int_equal(conv_send(&c, 1, junk, sizeof(junk)), 0);
    assert_int_equal(conv_send(&c, 1, junk, sizeof(junk)), 1);
    conv_finish(&c, &res, &rec);
    classify_result_clear(&res);

    classify_free(ctx);
}

static void test_state_reuse(void **state)
{
    struct classify_ctx *ctx = *state;
    struct classify_flow *first[16];
    struct classify_result res = {0};
    for (int i = 0; i < 16; i++)
        assert_non_null(first[i] = classify_flow_new(ctx));
    for (int i = 0; i < 16; i++) {
        classify_flow_finish(ctx, first[i], &res); /* no packet: nothing known */
        assert_int_equal(res.done, 1);
        assert_null(res.meta);
        classify_result_clear(&res);
    }
    /* Warm: new flows come from the states just returned. */
    struct classify_flow *again[16];
    for (int i = 0; i < 16; i++) {
        again[i] = classify_flow_new(ctx);
        int found = 0;
        for (int j = 0; j < 16; j++)
            found |= again[i] == first[j];
        assert_true(found);
    }
    memcpy(first, again, sizeof(first));
    /* A reused state starts clean: a DNS flow on it classifies normally. */
    for (int i = 0; i < 16; i++)
        classify_flow_finish(ctx, first[i], &res);
    classify_result_clear(&res);
    struct conv c;
    conv_init(&c, ctx, 17, ep4(10, 0, 0, 2, 40003), ep4(10, 0, 0, 1, 53));
    int reused = 0;
    for (int j = 0; j < 16; j++)
        reused |= c.cf == first[j];
    assert_true(reused);
    uint8_t q[256];
    size_t ql = dns_msg(q, 1, "reuse.example", 1, NULL, 0);
    assert_int_equal(conv_send(&c, 1, q, ql), 0);
    struct rec_ndpi rec;
    conv_finish(&c, &res, &rec);
    assert_string_equal(rec.proto, "DNS");
    assert_string_equal(rec.dns_query, "reuse.example");
    classify_result_clear(&res);

    /* More flows at once than the free list keeps: the surplus is freed
     * (ASan's leak check at exit holds us to it). Each carries nDPI-owned
     * strings (HTTP URL and user agent) that must be released too. */
    enum { N = 5000 };
    struct classify_flow **many = calloc(N, sizeof(*many));
    assert_non_null(many);
    const char *req = "GET /x HTTP/1.1\r\nHost: a.example\r\nUser-Agent: t\r\n\r\n";
    for (int i = 0; i < N; i++) {
        conv_init(&c, ctx, 6, ep4(10, 3, (uint8_t)(i >> 8), (uint8_t)i, 30000),
                  ep4(10, 4, 4, 4, 80));
        conv_handshake(&c);
        assert_int_equal(conv_send(&c, 1, req, strlen(req)), 0);
        many[i] = c.cf;
    }
    for (int i = 0; i < N; i++) {
        classify_flow_finish(ctx, many[i], &res);
        if (i == 0) {
            classify_fill_record(ctx, &res, &rec);
            assert_string_equal(rec.http_ua, "t");
        }
    }
    classify_result_clear(&res);
    free(many);
}

static void test_risk(void **state)
{
    struct classify_result res;
    struct rec_ndpi rec;
    int rc;
    http_flow(*state, "GET / HTTP/1.1\r\nHost: 10.9.8.7\r\nUser-Agent: x/1\r\n\r\n",
              "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", &res, &rec, &rc);
    assert_string_equal(rec.proto, "HTTP");
    /* HTTP with a numeric host (nDPI risk 12) */
    assert_true(rec.risk & (1ull << 12));
    assert_int_equal(rec.risk, res.risk);
    for (unsigned bit = 0; bit < 64; bit++)
        if (rec.risk & (1ull << bit))
            assert_non_null(classify_risk_name(bit));
    assert_string_equal(classify_risk_name(12), "HTTP Numeric IP Address");
    assert_string_equal(classify_risk_name(6), "Self-signed Certificate");
    assert_null(classify_risk_name(0));
    assert_null(classify_risk_name(64));
    assert_null(classify_risk_name(1000));
    classify_result_clear(&res);
}

static void test_zero_result(void **state)
{
    struct classify_result res = {0};
    struct rec_ndpi rec;
    memset(&rec, 0x7f, sizeof(rec));
    classify_fill_record(*state, &res, &rec);
    assert_string_equal(rec.proto, "Unknown");
    assert_string_equal(rec.master, "");
    assert_string_equal(rec.app, "");
    assert_string_equal(rec.tls_sni, "");
    assert_int_equal(rec.risk, 0);
    assert_int_equal(rec.dns_rr_count, 0);
    assert_int_equal(rec.dns_parsed, 0);
    assert_string_equal(rec.tls_ja3c_str, "");
    classify_result_clear(&res);
}

static void test_l3_len_clamped(void **state)
{
    /* l3_len over nDPI's 16-bit length is cut to 65535, never wrapped. */
    struct classify_ctx *ctx = *state;
    struct classify_flow *cf = classify_flow_new(ctx);
    uint8_t *big = calloc(1, 70000);
    assert_non_null(big);
    struct tpkt *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    struct ep a = ep4(10, 5, 5, 5, 1234), b = ep4(10, 6, 6, 6, 5678);
    build(p, 17, &a, &b, 0, 0, 0, "abc", 3, 1000000);
    memcpy(big, p->buf, p->m.l3_len);
    big[2] = 0xff, big[3] = 0xff; /* IPv4 total length 65535 */
    put16(big + 24, 65535 - 20);  /* UDP length */
    p->m.l3 = big;
    p->m.l3_len = 70000;
    assert_int_equal(classify_packet(ctx, cf, &p->m, 1), 0);
    struct classify_result res = {0};
    classify_flow_finish(ctx, cf, &res);
    assert_int_equal(res.done, 1);
    classify_result_clear(&res);
    free(p);
    free(big);
}

/* Every prefix of the ClientHello and DNS response packets, with the IP
 * and UDP lengths saying so, goes through nDPI and our copy without
 * reading out of bounds (ASan watches). */
static void test_truncated(void **state)
{
    struct classify_ctx *ctx = *state;
    uint8_t hello[1500], dns[512];
    const char *sni = "cut.example.org";
    size_t hl = client_hello(hello, (const uint8_t *)sni, strlen(sni));
    static const uint8_t addr[4] = {1, 2, 3, 4};
    size_t dl = dns_msg(dns, 9, "cut.example.org", 1, addr, 4);
    struct tpkt *p = calloc(1, sizeof(*p));
    assert_non_null(p);

    for (int which = 0; which < 2; which++) {
        const uint8_t *pl = which ? dns : hello;
        size_t len = which ? dl : hl;
        uint8_t proto = which ? 17 : 6;
        struct ep cli = ep4(10, 7, 7, 7, 40000), srv = ep4(10, 8, 8, 8, which ? 53 : 443);
        for (size_t cut = 0; cut <= len; cut++) {
            struct classify_flow *cf = classify_flow_new(ctx);
            assert_non_null(cf);
            /* exactly-sized copy so ASan sees any read past the end */
            uint8_t *payload = malloc(cut ? cut : 1);
            assert_non_null(payload);
            memcpy(payload, pl, cut);
            build(p, proto, &cli, &srv, which ? 0 : 0x18, 1, 1, payload, cut, 2000000 + cut);
            uint8_t *exact = malloc(p->m.l3_len);
            assert_non_null(exact);
            memcpy(exact, p->buf, p->m.l3_len);
            p->m.l3 = exact;
            classify_packet(ctx, cf, &p->m, 0);
            struct classify_result res = {0};
            struct rec_ndpi rec;
            classify_flow_finish(ctx, cf, &res);
            classify_fill_record(ctx, &res, &rec);
            assert_true(strlen(rec.proto) < sizeof(rec.proto));
            assert_true(strlen(rec.tls_sni) < sizeof(rec.tls_sni));
            assert_true(strlen(rec.dns_query) < sizeof(rec.dns_query));
            classify_result_clear(&res);
            free(exact);
            free(payload);
        }
    }
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_bad_config),
        cmocka_unit_test_setup_teardown(test_dns_a, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dns_aaaa_ipv6, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_client_hello, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_hostile_sni, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_hostile_user_agent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_long_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ssh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_udp_given_up, setup, teardown),
        cmocka_unit_test(test_budget),
        cmocka_unit_test_setup_teardown(test_state_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_risk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_result, setup, teardown),
        cmocka_unit_test_setup_teardown(test_l3_len_clamped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* pktgen-payload.c - application payload builders of include/egressd/pktgen.h:
 * DNS queries and responses with name compression (RFC 1035 4.1), TLS 1.2 /
 * 1.3 handshake records (RFC 8446 4.1.2, RFC 5246 7.4) with a DER X.509
 * certificate (RFC 5280 4.1), HTTP/1.1 messages (RFC 9112), NTPv4 packets
 * (RFC 5905 7.3) and an SSH KEXINIT packet (RFC 4253 6, 7.1).
 *
 * Every builder writes through a bounded cursor (struct pg_buf): a write
 * that does not fit marks the cursor bad, nothing past `cap` is touched,
 * and the builder returns 0. Length fields are written as placeholders and
 * patched when their content is complete.
 */
#include "egressd/pktgen.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/* ----------------------------------------------------------------------
 * Bounded cursor
 */

struct pg_buf {
    uint8_t *p;
    size_t cap, len;
    int bad;
};

static void pb_init(struct pg_buf *b, uint8_t *buf, size_t cap)
{
    b->p = buf;
    b->cap = buf ? cap : 0;
    b->len = 0;
    b->bad = 0;
}

static size_t pb_done(const struct pg_buf *b)
{
    return b->bad ? 0 : b->len;
}

/* Reserves n bytes and returns where they start, or NULL (cursor bad). */
static uint8_t *pb_room(struct pg_buf *b, size_t n)
{
    if (b->bad || n > b->cap - b->len) {
        b->bad = 1;
        return NULL;
    }
    uint8_t *q = b->p + b->len;
    b->len += n;
    return q;
}

static void pb_raw(struct pg_buf *b, const void *d, size_t n)
{
    uint8_t *q = pb_room(b, n);
    if (q && n)
        memcpy(q, d, n);
}

static void pb_u8(struct pg_buf *b, unsigned v)
{
    uint8_t c = (uint8_t)v;
    pb_raw(b, &c, 1);
}

static void pb_u16(struct pg_buf *b, unsigned v)
{
    uint8_t c[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    pb_raw(b, c, 2);
}

static void pb_u32(struct pg_buf *b, uint32_t v)
{
    uint8_t c[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    pb_raw(b, c, 4);
}

static void pb_str(struct pg_buf *b, const char *s)
{
    pb_raw(b, s, strlen(s));
}

/* A length field of `width` bytes whose value is the size of what follows
 * until pb_close(): returns the content start. */
static size_t pb_open(struct pg_buf *b, int width)
{
    pb_room(b, (size_t)width);
    return b->len;
}

static void pb_close(struct pg_buf *b, size_t start, int width)
{
    if (b->bad)
        return;
    size_t n = b->len - start;
    if (width < 4 && n >> (8 * width)) {
        b->bad = 1; /* content too long for its length field */
        return;
    }
    for (int i = 0; i < width; i++)
        b->p[start - 1 - (size_t)i] = (uint8_t)(n >> (8 * i));
}

static uint32_t pg_next(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

void pg_fill(void *buf, size_t n, uint32_t seed)
{
    uint8_t *p = buf;
    uint32_t s = seed ? seed : 0x9e3779b9u;
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(pg_next(&s) >> 24);
}

static void pb_fill(struct pg_buf *b, size_t n, uint32_t seed)
{
    uint8_t *q = pb_room(b, n);
    if (q)
        pg_fill(q, n, seed);
}

static uint32_t pg_seed(const void *p, size_t n, uint32_t salt)
{
    const uint8_t *b = p;
    uint32_t h = 2166136261u ^ salt;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 16777619u;
    }
    return h ? h : 1;
}

/* ----------------------------------------------------------------------
 * DNS
 */

#define PG_DNS_COMP_MAX 64

/* Names already in the message, as (dotted text suffix, message offset),
 * for compression pointers. The text points into the caller's strings. */
struct pg_dns_comp {
    const uint8_t *text[PG_DNS_COMP_MAX];
    size_t len[PG_DNS_COMP_MAX];
    uint16_t off[PG_DNS_COMP_MAX];
    size_t n;
};

/* Checks a dotted name (one trailing dot allowed, dropped from *n) and
 * returns its encoded length, or 0 if it is not a valid name. */
static size_t pg_dns_check(const uint8_t *name, size_t *n)
{
    if (*n && name[*n - 1] == '.')
        (*n)--;
    if (*n == 0)
        return 1; /* the root */
    size_t enc = 1, lab = 0;
    for (size_t i = 0; i <= *n; i++) {
        if (i == *n || name[i] == '.') {
            if (lab == 0 || lab > 63)
                return 0;
            enc += lab + 1;
            lab = 0;
        } else {
            lab++;
        }
    }
    return enc <= 255 ? enc : 0;
}

/* Writes a name, pointing at the longest suffix already in the message. */
static void pb_dns_name(struct pg_buf *b, struct pg_dns_comp *comp, const void *name, size_t n)
{
    const uint8_t *s = name;
    if (!s && n) {
        b->bad = 1;
        return;
    }
    if (pg_dns_check(s, &n) == 0) {
        b->bad = 1;
        return;
    }
    size_t i = 0;
    while (i < n) {
        for (size_t k = 0; k < comp->n; k++) {
            if (comp->len[k] == n - i && memcmp(comp->text[k], s + i, n - i) == 0) {
                pb_u16(b, 0xc000u | comp->off[k]);
                return;
            }
        }
        if (comp->n < PG_DNS_COMP_MAX && b->len < 0x3fff) {
            comp->text[comp->n] = s + i;
            comp->len[comp->n] = n - i;
            comp->off[comp->n] = (uint16_t)b->len;
            comp->n++;
        }
        size_t lab = 0;
        while (i + lab < n && s[i + lab] != '.')
            lab++;
        pb_u8(b, (unsigned)lab);
        pb_raw(b, s + i, lab);
        i += lab + 1;
    }
    pb_u8(b, 0);
}

size_t pg_dns_query_n(uint8_t *buf, size_t cap, uint16_t id, const void *name, size_t name_len,
                      uint16_t qtype)
{
    struct pg_buf b;
    struct pg_dns_comp comp = {.n = 0};
    pb_init(&b, buf, cap);
    pb_u16(&b, id);
    pb_u16(&b, 0x0100); /* standard query, recursion desired */
    pb_u16(&b, 1);
    pb_u16(&b, 0);
    pb_u16(&b, 0);
    pb_u16(&b, 0);
    pb_dns_name(&b, &comp, name, name_len);
    pb_u16(&b, qtype);
    pb_u16(&b, 1); /* IN */
    return pb_done(&b);
}

size_t pg_dns_query(uint8_t *buf, size_t cap, uint16_t id, const char *name, uint16_t qtype)
{
    return name ? pg_dns_query_n(buf, cap, id, name, strlen(name), qtype) : 0;
}

size_t pg_dns_response_n(uint8_t *buf, size_t cap, uint16_t id, const void *name, size_t name_len,
                         uint16_t qtype, uint8_t rcode, const struct pg_dns_answer *answers,
                         size_t n)
{
    struct pg_buf b;
    struct pg_dns_comp comp = {.n = 0};
    if ((n && !answers) || n > 0xffff || rcode > 15)
        return 0;
    pb_init(&b, buf, cap);
    pb_u16(&b, id);
    pb_u16(&b, 0x8180u | rcode); /* response, RD, RA */
    pb_u16(&b, 1);
    pb_u16(&b, (unsigned)n);
    pb_u16(&b, 0);
    pb_u16(&b, 0);
    pb_dns_name(&b, &comp, name, name_len);
    pb_u16(&b, qtype);
    pb_u16(&b, 1);
    const void *chain = name;
    size_t chain_len = name_len;
    for (size_t i = 0; i < n && !b.bad; i++) {
        const struct pg_dns_answer *a = &answers[i];
        if (!a->data)
            return 0;
        if (a->owner)
            pb_dns_name(&b, &comp, a->owner, strlen(a->owner));
        else
            pb_dns_name(&b, &comp, chain, chain_len);
        pb_u16(&b, a->type);
        pb_u16(&b, 1);
        pb_u32(&b, a->ttl);
        size_t rd = pb_open(&b, 2);
        uint8_t addr[16];
        switch (a->type) {
        case PG_DNS_A:
            if (inet_pton(AF_INET, a->data, addr) != 1)
                return 0;
            pb_raw(&b, addr, 4);
            break;
        case PG_DNS_AAAA:
            if (inet_pton(AF_INET6, a->data, addr) != 1)
                return 0;
            pb_raw(&b, addr, 16);
            break;
        case PG_DNS_CNAME:
            pb_dns_name(&b, &comp, a->data, strlen(a->data));
            chain = a->data;
            chain_len = strlen(a->data);
            break;
        default:
            return 0;
        }
        pb_close(&b, rd, 2);
    }
    return pb_done(&b);
}

size_t pg_dns_response(uint8_t *buf, size_t cap, uint16_t id, const char *name, uint16_t qtype,
                       const struct pg_dns_answer *answers, size_t n)
{
    if (!name)
        return 0;
    return pg_dns_response_n(buf, cap, id, name, strlen(name), qtype, 0, answers, n);
}

/* ----------------------------------------------------------------------
 * TLS
 */

#define PG_TLS_RECORD_MAX 16384

static void pb_tls_ext(struct pg_buf *b, unsigned type, const void *body, size_t n)
{
    pb_u16(b, type);
    pb_u16(b, (unsigned)n);
    pb_raw(b, body, n);
}

size_t pg_tls_client_hello_n(uint8_t *buf, size_t cap, const void *sni, size_t sni_len)
{
    /* TLS 1.3 suites, then ECDHE AEAD, ECDHE CBC and RSA fallbacks */
    static const uint16_t suites[] = {0x1301, 0x1303, 0x1302, 0xc02b, 0xc02f, 0xcca9,
                                      0xcca8, 0xc02c, 0xc030, 0xc00a, 0xc009, 0xc013,
                                      0xc014, 0x009c, 0x009d, 0x002f, 0x0035};
    /* x25519, secp256r1, secp384r1, secp521r1, ffdhe2048, ffdhe3072 */
    static const uint8_t groups[] = {0x00, 0x0c, 0x00, 0x1d, 0x00, 0x17, 0x00,
                                     0x18, 0x00, 0x19, 0x01, 0x00, 0x01, 0x01};
    static const uint8_t ec_formats[] = {0x01, 0x00};
    static const uint8_t alpn[] = {0x00, 0x0c, 0x02, 'h', '2', 0x08, 'h', 't',
                                   't',  'p',  '/',  '1', '.', '1'};
    static const uint8_t status_req[] = {0x01, 0x00, 0x00, 0x00, 0x00};
    static const uint8_t versions[] = {0x04, 0x03, 0x04, 0x03, 0x03};
    /* ecdsa p256/p384/p521 sha2, rsa-pss sha2, rsa-pkcs1 sha2, sha1 */
    static const uint8_t sigalgs[] = {0x00, 0x16, 0x04, 0x03, 0x05, 0x03, 0x06, 0x03,
                                      0x08, 0x04, 0x08, 0x05, 0x08, 0x06, 0x04, 0x01,
                                      0x05, 0x01, 0x06, 0x01, 0x02, 0x03, 0x02, 0x01};
    static const uint8_t psk_modes[] = {0x01, 0x01};
    static const uint8_t rec_limit[] = {0x40, 0x01};
    static const uint8_t reneg[] = {0x00};
    struct pg_buf b;
    if ((!sni && sni_len) || sni_len > 0xffff)
        return 0;
    uint32_t seed = pg_seed(sni, sni ? sni_len : 0, 0x636c6e74);
    pb_init(&b, buf, cap);
    pb_u8(&b, 0x16);    /* handshake */
    pb_u16(&b, 0x0301); /* record version, as browsers send it */
    size_t rec = pb_open(&b, 2);
    pb_u8(&b, 1); /* client_hello */
    size_t hs = pb_open(&b, 3);
    pb_u16(&b, 0x0303);
    pb_fill(&b, 32, seed);
    pb_u8(&b, 32); /* legacy session id: the middlebox-compatibility mode */
    pb_fill(&b, 32, seed ^ 0x5555u);
    pb_u16(&b, (unsigned)(2 * EGR_ARRAY_LEN(suites)));
    for (size_t i = 0; i < EGR_ARRAY_LEN(suites); i++)
        pb_u16(&b, suites[i]);
    pb_u8(&b, 1);
    pb_u8(&b, 0); /* null compression */
    size_t exts = pb_open(&b, 2);
    if (sni) {
        pb_u16(&b, 0x0000); /* server_name */
        size_t e = pb_open(&b, 2);
        size_t list = pb_open(&b, 2);
        pb_u8(&b, 0); /* host_name */
        pb_u16(&b, (unsigned)sni_len);
        pb_raw(&b, sni, sni_len);
        pb_close(&b, list, 2);
        pb_close(&b, e, 2);
    }
    pb_tls_ext(&b, 0x0017, NULL, 0); /* extended_master_secret */
    pb_tls_ext(&b, 0xff01, reneg, sizeof(reneg));
    pb_tls_ext(&b, 0x000a, groups, sizeof(groups));
    pb_tls_ext(&b, 0x000b, ec_formats, sizeof(ec_formats));
    pb_tls_ext(&b, 0x0023, NULL, 0); /* session_ticket */
    pb_tls_ext(&b, 0x0010, alpn, sizeof(alpn));
    pb_tls_ext(&b, 0x0005, status_req, sizeof(status_req));
    pb_u16(&b, 0x0033); /* key_share: one x25519 share */
    pb_u16(&b, 38);
    pb_u16(&b, 36);
    pb_u16(&b, 0x001d);
    pb_u16(&b, 32);
    pb_fill(&b, 32, seed ^ 0xaaaau);
    pb_tls_ext(&b, 0x002b, versions, sizeof(versions));
    pb_tls_ext(&b, 0x000d, sigalgs, sizeof(sigalgs));
    pb_tls_ext(&b, 0x002d, psk_modes, sizeof(psk_modes));
    pb_tls_ext(&b, 0x001c, rec_limit, sizeof(rec_limit));
    pb_close(&b, exts, 2);
    pb_close(&b, hs, 3);
    pb_close(&b, rec, 2);
    if (!b.bad && b.len - rec > PG_TLS_RECORD_MAX)
        return 0; /* one record only: keep the SNI below ~16 KB */
    return pb_done(&b);
}

size_t pg_tls_client_hello(uint8_t *buf, size_t cap, const char *sni)
{
    return pg_tls_client_hello_n(buf, cap, sni, sni ? strlen(sni) : 0);
}

/* DER is written backwards (from the end of a scratch buffer) so every
 * length is known when its header is written. */
struct pg_der {
    uint8_t *buf;
    size_t pos;
    int bad;
};

static void der_raw(struct pg_der *d, const void *p, size_t n)
{
    if (d->bad || n > d->pos) {
        d->bad = 1;
        return;
    }
    d->pos -= n;
    if (n)
        memcpy(d->buf + d->pos, p, n);
}

/* Tag and minimal length for the content written since `end`. */
static void der_wrap(struct pg_der *d, uint8_t tag, size_t end)
{
    if (d->bad)
        return;
    size_t n = end - d->pos;
    uint8_t h[6];
    size_t k = 0;
    if (n < 0x80) {
        h[k++] = (uint8_t)n;
    } else {
        uint8_t tmp[4];
        size_t m = 0;
        for (size_t v = n; v; v >>= 8)
            tmp[m++] = (uint8_t)v;
        h[k++] = (uint8_t)(0x80 | m);
        while (m)
            h[k++] = tmp[--m];
    }
    der_raw(d, h, k);
    der_raw(d, &tag, 1);
}

static void der_tlv(struct pg_der *d, uint8_t tag, const void *p, size_t n)
{
    size_t end = d->pos;
    der_raw(d, p, n);
    der_wrap(d, tag, end);
}

/* A positive INTEGER of n filler bytes (top bit cleared, first byte set so
 * the encoding is minimal). */
static void der_int_fill(struct pg_der *d, size_t n, uint32_t seed)
{
    uint8_t v[32];
    pg_fill(v, n, seed);
    v[0] = (uint8_t)((v[0] & 0x7f) | 0x40);
    der_tlv(d, 0x02, v, n);
}

static const uint8_t PG_OID_ECDSA_SHA256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
static const uint8_t PG_OID_EC_PUBKEY[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
static const uint8_t PG_OID_P256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t PG_OID_CN[] = {0x55, 0x04, 0x03};
static const uint8_t PG_OID_O[] = {0x55, 0x04, 0x0a};
static const uint8_t PG_OID_C[] = {0x55, 0x04, 0x06};
static const uint8_t PG_OID_SAN[] = {0x55, 0x1d, 0x11};

static void der_ecdsa_sig(struct pg_der *d, uint32_t seed)
{
    size_t end = d->pos;
    der_int_fill(d, 32, seed + 1);
    der_int_fill(d, 32, seed + 2);
    der_wrap(d, 0x30, end);
}

static void der_alg(struct pg_der *d, const uint8_t *oid, size_t n)
{
    size_t end = d->pos;
    der_tlv(d, 0x06, oid, n);
    der_wrap(d, 0x30, end);
}

/* RelativeDistinguishedName: SET { SEQUENCE { type, value } } */
static void der_rdn(struct pg_der *d, const uint8_t *oid, size_t oid_len, uint8_t str_tag,
                    const void *v, size_t n)
{
    size_t end = d->pos;
    der_tlv(d, str_tag, v, n);
    der_tlv(d, 0x06, oid, oid_len);
    der_wrap(d, 0x30, end);
    der_wrap(d, 0x31, end);
}

/* An X.509 v3 certificate for `name` (subject CN and SAN dNSName), issued by
 * the project's made-up demo CA, ECDSA P-256 key, filler signature. It ends
 * where d->pos was and starts at the new d->pos. */
static void der_certificate(struct pg_der *d, const void *name, size_t n, uint32_t seed)
{
    static const char ca_o[] = "egressd demo CA";
    static const char ca_cn[] = "egressd demo CA R1";
    size_t cert = d->pos;
    /* signatureValue */
    size_t end = d->pos;
    der_ecdsa_sig(d, seed);
    der_raw(d, "", 1); /* no unused bits */
    der_wrap(d, 0x03, end);
    der_alg(d, PG_OID_ECDSA_SHA256, sizeof(PG_OID_ECDSA_SHA256));

    size_t tbs = d->pos;
    /* extensions [3] { SEQUENCE { subjectAltName } } */
    size_t ext3 = d->pos;
    size_t ext = d->pos;
    size_t octet = d->pos;
    size_t gnames = d->pos;
    der_tlv(d, 0x82, name, n); /* dNSName [2] IMPLICIT IA5String */
    der_wrap(d, 0x30, gnames);
    der_wrap(d, 0x04, octet);
    der_tlv(d, 0x06, PG_OID_SAN, sizeof(PG_OID_SAN));
    der_wrap(d, 0x30, ext);
    der_wrap(d, 0x30, ext3);
    der_wrap(d, 0xa3, ext3);
    /* subjectPublicKeyInfo */
    size_t spki = d->pos;
    uint8_t point[66];
    point[0] = 0; /* no unused bits */
    point[1] = 0x04;
    pg_fill(point + 2, 64, seed + 3);
    der_tlv(d, 0x03, point, sizeof(point));
    size_t alg = d->pos;
    der_tlv(d, 0x06, PG_OID_P256, sizeof(PG_OID_P256));
    der_tlv(d, 0x06, PG_OID_EC_PUBKEY, sizeof(PG_OID_EC_PUBKEY));
    der_wrap(d, 0x30, alg);
    der_wrap(d, 0x30, spki);
    /* subject */
    size_t subj = d->pos;
    der_rdn(d, PG_OID_CN, sizeof(PG_OID_CN), 0x0c, name, n);
    der_wrap(d, 0x30, subj);
    /* validity */
    size_t val = d->pos;
    der_tlv(d, 0x17, "261013000000Z", 13);
    der_tlv(d, 0x17, "250915000000Z", 13);
    der_wrap(d, 0x30, val);
    /* issuer */
    size_t iss = d->pos;
    der_rdn(d, PG_OID_CN, sizeof(PG_OID_CN), 0x0c, ca_cn, strlen(ca_cn));
    der_rdn(d, PG_OID_O, sizeof(PG_OID_O), 0x0c, ca_o, strlen(ca_o));
    der_rdn(d, PG_OID_C, sizeof(PG_OID_C), 0x13, "US", 2);
    der_wrap(d, 0x30, iss);
    der_alg(d, PG_OID_ECDSA_SHA256, sizeof(PG_OID_ECDSA_SHA256));
    der_int_fill(d, 16, seed + 4); /* serialNumber */
    size_t ver = d->pos;
    der_tlv(d, 0x02, "\x02", 1); /* v3 */
    der_wrap(d, 0xa0, ver);
    der_wrap(d, 0x30, tbs);
    der_wrap(d, 0x30, cert);
}

size_t pg_tls_server_hello_n(uint8_t *buf, size_t cap, const void *cert_name, size_t name_len)
{
    static const uint8_t exts[] = {
        0xff, 0x01, 0x00, 0x01, 0x00,       /* renegotiation_info */
        0x00, 0x17, 0x00, 0x00,             /* extended_master_secret */
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, /* ec_point_formats: uncompressed */
        0x00, 0x10, 0x00, 0x05, 0x00, 0x03, 0x02, 'h', '2'};
    uint8_t scratch[PG_TLS_RECORD_MAX];
    struct pg_der d = {scratch, sizeof(scratch), 0};
    struct pg_buf b;
    if (!cert_name && name_len)
        return 0;
    uint32_t seed = pg_seed(cert_name, cert_name ? name_len : 0, 0x73727672);
    if (cert_name) {
        der_certificate(&d, cert_name, name_len, seed);
        if (d.bad)
            return 0;
    }
    pb_init(&b, buf, cap);
    pb_u8(&b, 0x16);
    pb_u16(&b, 0x0303);
    size_t rec = pb_open(&b, 2);

    pb_u8(&b, 2); /* server_hello */
    size_t hs = pb_open(&b, 3);
    pb_u16(&b, 0x0303);
    pb_fill(&b, 32, seed);
    pb_u8(&b, 32);
    pb_fill(&b, 32, seed ^ 0x5555u);
    pb_u16(&b, 0xc02b); /* TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 */
    pb_u8(&b, 0);
    pb_u16(&b, sizeof(exts));
    pb_raw(&b, exts, sizeof(exts));
    pb_close(&b, hs, 3);

    if (cert_name) {
        pb_u8(&b, 11); /* certificate */
        hs = pb_open(&b, 3);
        size_t list = pb_open(&b, 3);
        size_t one = pb_open(&b, 3);
        pb_raw(&b, scratch + d.pos, sizeof(scratch) - d.pos);
        pb_close(&b, one, 3);
        pb_close(&b, list, 3);
        pb_close(&b, hs, 3);
    }

    pb_u8(&b, 12); /* server_key_exchange: named curve x25519, ECDSA-SHA256 signature */
    hs = pb_open(&b, 3);
    pb_u8(&b, 3);
    pb_u16(&b, 0x001d);
    pb_u8(&b, 32);
    pb_fill(&b, 32, seed + 5);
    pb_u16(&b, 0x0403);
    uint8_t sig[80];
    struct pg_der sd = {sig, sizeof(sig), 0};
    der_ecdsa_sig(&sd, seed + 6);
    pb_u16(&b, (unsigned)(sizeof(sig) - sd.pos));
    pb_raw(&b, sig + sd.pos, sizeof(sig) - sd.pos);
    pb_close(&b, hs, 3);

    pb_u8(&b, 14); /* server_hello_done */
    pb_u8(&b, 0);
    pb_u16(&b, 0);
    pb_close(&b, rec, 2);
    if (!b.bad && b.len - rec > PG_TLS_RECORD_MAX)
        return 0;
    return pb_done(&b);
}

size_t pg_tls_server_hello(uint8_t *buf, size_t cap, const char *cert_name)
{
    return pg_tls_server_hello_n(buf, cap, cert_name, cert_name ? strlen(cert_name) : 0);
}

size_t pg_tls_finished(uint8_t *buf, size_t cap, int from_client)
{
    struct pg_buf b;
    uint32_t seed = from_client ? 0x46696e43u : 0x46696e53u;
    pb_init(&b, buf, cap);
    if (from_client) {
        pb_u8(&b, 0x16);
        pb_u16(&b, 0x0303);
        pb_u16(&b, 37);
        pb_u8(&b, 16); /* client_key_exchange: x25519 public value */
        pb_u8(&b, 0);
        pb_u16(&b, 33);
        pb_u8(&b, 32);
        pb_fill(&b, 32, seed);
    }
    static const uint8_t ccs[] = {0x14, 0x03, 0x03, 0x00, 0x01, 0x01};
    pb_raw(&b, ccs, sizeof(ccs));
    /* Finished under AES-GCM: 8-byte explicit nonce, 16 encrypted, 16 tag */
    pb_u8(&b, 0x16);
    pb_u16(&b, 0x0303);
    pb_u16(&b, 40);
    pb_fill(&b, 40, seed + 1);
    return pb_done(&b);
}

size_t pg_tls_app_data(uint8_t *buf, size_t cap, size_t len, uint32_t seed)
{
    struct pg_buf b;
    pb_init(&b, buf, cap);
    for (size_t off = 0; off < len && !b.bad;) {
        size_t n = len - off > PG_TLS_RECORD_MAX ? PG_TLS_RECORD_MAX : len - off;
        pb_u8(&b, 0x17);
        pb_u16(&b, 0x0303);
        pb_u16(&b, (unsigned)(n + 24));
        pb_fill(&b, n + 24, seed + (uint32_t)off);
        off += n;
    }
    return pb_done(&b);
}

/* ----------------------------------------------------------------------
 * HTTP
 */

static void pb_body(struct pg_buf *b, const char *content_type, size_t n)
{
    static const char text[] = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do "
                               "eiusmod tempor incididunt ut labore et dolore magna aliqua.\n";
    if (content_type && strncmp(content_type, "text/", 5) == 0) {
        for (size_t i = 0; i < n && !b->bad;) {
            size_t k = n - i < sizeof(text) - 1 ? n - i : sizeof(text) - 1;
            pb_raw(b, text, k);
            i += k;
        }
    } else {
        pb_fill(b, n, (uint32_t)n * 2654435761u);
    }
}

static void pb_http_head(struct pg_buf *b, const char *method, const char *host, const char *path,
                         const char *ua)
{
    pb_str(b, method ? method : "GET");
    pb_str(b, " ");
    pb_str(b, path ? path : "/");
    pb_str(b, " HTTP/1.1\r\n");
    if (host) {
        pb_str(b, "Host: ");
        pb_str(b, host);
        pb_str(b, "\r\n");
    }
    if (ua) {
        pb_str(b, "User-Agent: ");
        pb_str(b, ua);
        pb_str(b, "\r\n");
    }
    pb_str(b, "Accept: */*\r\n");
}

size_t pg_http_request(uint8_t *buf, size_t cap, const char *method, const char *host,
                       const char *path, const char *ua)
{
    struct pg_buf b;
    pb_init(&b, buf, cap);
    pb_http_head(&b, method, host, path, ua);
    pb_str(&b, "\r\n");
    return pb_done(&b);
}

size_t pg_http_request_body(uint8_t *buf, size_t cap, const char *method, const char *host,
                            const char *path, const char *ua, const char *content_type,
                            size_t body_len)
{
    struct pg_buf b;
    char num[32];
    pb_init(&b, buf, cap);
    pb_http_head(&b, method ? method : "POST", host, path, ua);
    pb_str(&b, "Content-Type: ");
    pb_str(&b, content_type ? content_type : "application/octet-stream");
    snprintf(num, sizeof(num), "%zu", body_len);
    pb_str(&b, "\r\nContent-Length: ");
    pb_str(&b, num);
    pb_str(&b, "\r\n\r\n");
    pb_body(&b, content_type, body_len);
    return pb_done(&b);
}

static const char *pg_http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

size_t pg_http_response(uint8_t *buf, size_t cap, int status, const char *content_type,
                        size_t body_len)
{
    struct pg_buf b;
    char line[96];
    if (status < 100 || status > 999)
        return 0;
    pb_init(&b, buf, cap);
    snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status, pg_http_reason(status));
    pb_str(&b, line);
    pb_str(&b, "Server: nginx\r\n");
    if (content_type) {
        pb_str(&b, "Content-Type: ");
        pb_str(&b, content_type);
        pb_str(&b, "\r\n");
    }
    snprintf(line, sizeof(line), "Content-Length: %zu\r\n", body_len);
    pb_str(&b, line);
    pb_str(&b, "Connection: keep-alive\r\n\r\n");
    pb_body(&b, content_type, body_len);
    return pb_done(&b);
}

/* ----------------------------------------------------------------------
 * NTP
 */

static void pb_ntp_time(struct pg_buf *b, uint64_t t_us)
{
    /* seconds since 1900, then a 32-bit binary fraction */
    pb_u32(b, (uint32_t)(t_us / 1000000u + 2208988800u));
    pb_u32(b, (uint32_t)(((t_us % 1000000u) << 32) / 1000000u));
}

size_t pg_ntp_client(uint8_t *buf, size_t cap, uint64_t t_us)
{
    struct pg_buf b;
    pb_init(&b, buf, cap);
    pb_u8(&b, 0x23); /* LI 0, version 4, mode 3 (client) */
    pb_u8(&b, 0);    /* stratum: unspecified */
    pb_u8(&b, 6);    /* poll 64 s */
    pb_u8(&b, 0xe9); /* precision 2^-23 */
    pb_u32(&b, 0);   /* root delay */
    pb_u32(&b, 0);   /* root dispersion */
    pb_u32(&b, 0);   /* reference id */
    pb_ntp_time(&b, 0);
    pb_ntp_time(&b, 0);
    pb_ntp_time(&b, 0);
    pb_ntp_time(&b, t_us); /* transmit */
    return pb_done(&b);
}

size_t pg_ntp_server(uint8_t *buf, size_t cap, uint64_t req_t_us, uint64_t t_us)
{
    struct pg_buf b;
    pb_init(&b, buf, cap);
    pb_u8(&b, 0x24); /* LI 0, version 4, mode 4 (server) */
    pb_u8(&b, 2);    /* stratum 2 */
    pb_u8(&b, 6);
    pb_u8(&b, 0xe7);        /* precision 2^-25 */
    pb_u32(&b, 0x00000211); /* root delay ~8 ms */
    pb_u32(&b, 0x0000001f); /* root dispersion ~0.5 ms */
    pb_raw(&b, "\x0a\x11\x08\x04", 4);
    pb_ntp_time(&b, t_us - t_us % 1000000u - 16000000u); /* reference: last sync */
    pb_ntp_time(&b, req_t_us);                           /* origin */
    pb_ntp_time(&b, t_us - 20);                          /* receive */
    pb_ntp_time(&b, t_us);                               /* transmit */
    return pb_done(&b);
}

/* ----------------------------------------------------------------------
 * SSH
 */

size_t pg_ssh_kexinit(uint8_t *buf, size_t cap, int server, uint32_t seed)
{
    static const char *const client_lists[10] = {
        "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,"
        "ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,"
        "diffie-hellman-group18-sha512,diffie-hellman-group14-sha256,ext-info-c",
        "ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ssh-ed25519,"
        "ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256",
        "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,"
        "aes256-gcm@openssh.com",
        "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,"
        "aes256-gcm@openssh.com",
        "umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,"
        "hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,"
        "umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1",
        "umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,"
        "hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,"
        "umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1",
        "none,zlib@openssh.com",
        "none,zlib@openssh.com",
        "",
        ""};
    static const char *const server_lists[10] = {
        "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,"
        "ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,"
        "diffie-hellman-group18-sha512,diffie-hellman-group14-sha256,diffie-hellman-group14-sha1",
        "rsa-sha2-512,rsa-sha2-256,ssh-rsa,ecdsa-sha2-nistp256,ssh-ed25519",
        "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,"
        "aes256-gcm@openssh.com",
        "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,"
        "aes256-gcm@openssh.com",
        "umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,"
        "hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,"
        "umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1",
        "umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,"
        "hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,"
        "umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1",
        "none,zlib@openssh.com",
        "none,zlib@openssh.com",
        "",
        ""};
    const char *const *lists = server ? server_lists : client_lists;
    struct pg_buf b;
    pb_init(&b, buf, cap);
    size_t pkt = pb_open(&b, 4);
    size_t padpos = b.len;
    pb_u8(&b, 0); /* padding length, patched below */
    pb_u8(&b, 20); /* SSH_MSG_KEXINIT */
    pb_fill(&b, 16, seed);
    for (int i = 0; i < 10; i++) {
        pb_u32(&b, (uint32_t)strlen(lists[i]));
        pb_str(&b, lists[i]);
    }
    pb_u8(&b, 0);  /* first_kex_packet_follows */
    pb_u32(&b, 0); /* reserved */
    if (b.bad)
        return 0;
    /* RFC 4253 6: at least 4 bytes of padding, whole packet a multiple of 8 */
    size_t pad = 8 - (b.len - pkt + 4) % 8;
    if (pad < 4)
        pad += 8;
    pb_fill(&b, pad, seed + 1);
    pb_close(&b, pkt, 4);
    if (!b.bad)
        b.p[padpos] = (uint8_t)pad;
    return pb_done(&b);
}

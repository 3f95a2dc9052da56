/* cid.c - Community ID v1 (see include/egressd/cid.h and
 * https://github.com/corelight/community-id-spec).
 *
 * Hash input, network byte order, 32-bit aligned:
 *
 *    0               2                      2+A                    2+2A
 *   +---------------+----------------------+----------------------+
 *   | seed (16)     | saddr (A = 4 or 16)  | daddr (A)            |
 *   +-------+-------+---------------+------+----------------------+
 *   | proto | 0x00  | sport (16)    | dport (16)    |   (ports only for
 *   +-------+-------+---------------+---------------+    TCP/UDP/SCTP/ICMP/ICMPv6)
 *
 * The endpoints are ordered so both directions hash alike: the smaller
 * address first, ports breaking a tie. ICMP and ICMPv6 use Zeek's mapping:
 * sport = type, dport = the counterpart type for request/reply types, else
 * the code; a type without a counterpart is a one-way flow and is never
 * reordered. Output: "1:" + base64(SHA-1) or "1:" + hex(SHA-1).
 */
#include "egressd/cid.h"

#include "egressd/common.h"

#include <gcrypt.h>
#include <pthread.h>
#include <string.h>

/* libgcrypt wants gcry_check_version() before first use; once per process
 * is enough and it is harmless when nDPI has already done it. */
static pthread_once_t cid_gcry_once = PTHREAD_ONCE_INIT;

static void cid_gcry_init(void)
{
    (void)gcry_check_version(NULL);
}

struct icmp_pair {
    uint8_t a, b;
};

static const struct icmp_pair icmp4_pairs[] = {
    {8, 0}, {13, 14}, {15, 16}, {10, 9}, {17, 18},
};

static const struct icmp_pair icmp6_pairs[] = {
    {128, 129}, {130, 131}, {133, 134}, {135, 136}, {139, 140}, {144, 145},
};

int cid_icmp_counterpart(uint8_t proto, uint8_t type, uint8_t *peer)
{
    const struct icmp_pair *t;
    size_t n;
    if (proto == 1) {
        t = icmp4_pairs;
        n = EGR_ARRAY_LEN(icmp4_pairs);
    } else if (proto == 58) {
        t = icmp6_pairs;
        n = EGR_ARRAY_LEN(icmp6_pairs);
    } else {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (t[i].a == type) {
            *peer = t[i].b;
            return 1;
        }
        if (t[i].b == type) {
            *peer = t[i].a;
            return 1;
        }
    }
    return 0;
}

static void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* Standard alphabet with '=' padding (RFC 4648 section 4). out must hold
 * 4 * ceil(n / 3) + 1 bytes. */
static void base64(const uint8_t *in, size_t n, char *out)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i = 0, o = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
}

void cid_digest(const struct cid_settings *s, int family, const uint8_t *saddr,
                const uint8_t *daddr, uint8_t proto, uint16_t sport, uint16_t dport,
                int has_ports, uint8_t out[CID_DIGEST_LEN])
{
    size_t alen = family == 6 ? 16 : 4;
    int one_way = 0;

    if (has_ports && (proto == 1 || proto == 58)) {
        uint8_t peer;
        uint8_t type = (uint8_t)sport;
        if (cid_icmp_counterpart(proto, type, &peer)) {
            sport = type;
            dport = peer;
        } else {
            sport = type;
            dport = (uint8_t)dport; /* the code */
            one_way = 1;
        }
    }

    if (!one_way) {
        int c = memcmp(saddr, daddr, alen);
        if (c > 0 || (c == 0 && has_ports && sport > dport)) {
            const uint8_t *ta = saddr;
            saddr = daddr;
            daddr = ta;
            uint16_t tp = sport;
            sport = dport;
            dport = tp;
        }
    }

    uint8_t buf[2 + 16 + 16 + 2 + 4];
    size_t n = 0;
    put_be16(buf, s->seed);
    n += 2;
    memcpy(buf + n, saddr, alen);
    n += alen;
    memcpy(buf + n, daddr, alen);
    n += alen;
    buf[n++] = proto;
    buf[n++] = 0;
    if (has_ports) {
        put_be16(buf + n, sport);
        put_be16(buf + n + 2, dport);
        n += 4;
    }

    pthread_once(&cid_gcry_once, cid_gcry_init);
    gcry_md_hash_buffer(GCRY_MD_SHA1, out, buf, n);
}

void cid_format(const struct cid_settings *s, const uint8_t digest[CID_DIGEST_LEN], char *out)
{
    out[0] = '1';
    out[1] = ':';
    if (s->base64) {
        base64(digest, CID_DIGEST_LEN, out + 2); /* 28 chars + NUL */
    } else {
        static const char hex[] = "0123456789abcdef";
        for (size_t i = 0; i < CID_DIGEST_LEN; i++) {
            out[2 + 2 * i] = hex[digest[i] >> 4];
            out[3 + 2 * i] = hex[digest[i] & 15];
        }
        out[2 + 2 * CID_DIGEST_LEN] = '\0';
    }
}

void cid_compute(const struct cid_settings *s, int family, const uint8_t *saddr,
                 const uint8_t *daddr, uint8_t proto, uint16_t sport,
                 uint16_t dport, int has_ports, char *out)
{
    uint8_t digest[CID_DIGEST_LEN];
    cid_digest(s, family, saddr, daddr, proto, sport, dport, has_ports, digest);
    cid_format(s, digest, out);
}

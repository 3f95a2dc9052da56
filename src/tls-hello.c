/* tls-hello.c - the JA3 string of a TLS ClientHello (see
 * include/egressd/tls-hello.h).
 *
 * A TLS record carrying a ClientHello, as far as JA3 reads it:
 *
 *   record    | type 22 | version (2) | length (2) | handshake ...
 *   handshake | type 1  | length (3)  | client_version (2) | random (32)
 *             | session_id: len (1) + bytes
 *             | cipher_suites: len (2) + u16 each
 *             | compression_methods: len (1) + bytes
 *             | extensions: len (2) + { type (2) | len (2) | data }
 *   supported_groups (10): len (2) + u16 each     -> EllipticCurves
 *   ec_point_formats (11): len (1) + u8 each      -> EllipticCurvePointFormats
 *
 * The handshake must lie inside the record and the record inside the
 * segment: a ClientHello split across records or segments is not parsed.
 */
#include "egressd/tls-hello.h"

#include <pthread.h>
#include <string.h>

#include <gcrypt.h>

#include "egressd/bytes.h"

#define TLS_CT_HANDSHAKE 22
#define TLS_HS_CLIENT_HELLO 1
#define TLS_EXT_SUPPORTED_GROUPS 10
#define TLS_EXT_EC_POINT_FORMATS 11

int tls_hello_looks_like(const uint8_t *p, uint32_t len)
{
    return len >= 6 && p[0] == TLS_CT_HANDSHAKE && p[1] == 3 && p[5] == TLS_HS_CLIENT_HELLO;
}

/* RFC 8701: 0x?a?a with both bytes equal. */
static int is_grease(uint16_t v)
{
    return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

/* The output: fails (sticky) once cap would be exceeded. */
struct ja3_out {
    char *p;
    size_t n, cap;
    int full;
    int first; /* no '-' before the first value of a field */
};

static void out_raw(struct ja3_out *o, const char *s, size_t n)
{
    if (o->full || n >= o->cap - o->n) {
        o->full = 1;
        return;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
}

static void out_field(struct ja3_out *o)
{
    out_raw(o, ",", 1);
    o->first = 1;
}

/* A value (at most 65535) in decimal, '-' before all but a field's first.
 * By hand: a ClientHello has a hundred values, and snprintf was most of
 * the cost of the string. */
static void out_value(struct ja3_out *o, unsigned v)
{
    char t[8];
    char *p = t + sizeof(t);
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (!o->first)
        *--p = '-';
    out_raw(o, p, (size_t)(t + sizeof(t) - p));
    o->first = 0;
}

/* A list of u16 values of `bytes` bytes (even), GREASE left out. */
static int list16(struct bytes_rd *r, uint32_t bytes, struct ja3_out *o)
{
    if (bytes % 2 || !bytes_has(r, bytes))
        return EGR_EINVAL;
    for (uint32_t i = 0; i < bytes; i += 2) {
        uint16_t v;
        bytes_get_be16(r, &v);
        if (!is_grease(v))
            out_value(o, v);
    }
    return EGR_OK;
}

/* One extension's data, for the two lists taken from extensions. */
static int ext_list(const struct bytes_rd *data, int u16, struct ja3_out *o)
{
    struct bytes_rd r = *data;
    if (u16) {
        uint16_t n;
        if (bytes_get_be16(&r, &n))
            return EGR_EINVAL;
        return list16(&r, n, o);
    }
    uint8_t n;
    if (bytes_get_u8(&r, &n) || !bytes_has(&r, n))
        return EGR_EINVAL;
    for (unsigned i = 0; i < n; i++) {
        uint8_t v;
        bytes_get_u8(&r, &v);
        out_value(o, v);
    }
    return EGR_OK;
}

static int parse(const uint8_t *p, uint32_t len, char *out, size_t cap, size_t *n)
{
    struct bytes_rd r;
    bytes_init(&r, p, len);
    uint8_t ct, hs, l_hi;
    uint16_t rec_ver, rec_len, l_lo, version;
    if (bytes_get_u8(&r, &ct) || bytes_get_be16(&r, &rec_ver) || bytes_get_be16(&r, &rec_len) ||
        ct != TLS_CT_HANDSHAKE || !bytes_has(&r, rec_len))
        return EGR_EINVAL;
    bytes_clip(&r, rec_len);
    if (bytes_get_u8(&r, &hs) || bytes_get_u8(&r, &l_hi) || bytes_get_be16(&r, &l_lo) ||
        hs != TLS_HS_CLIENT_HELLO)
        return EGR_EINVAL;
    uint32_t hs_len = (uint32_t)l_hi << 16 | l_lo;
    if (!bytes_has(&r, hs_len))
        return EGR_EINVAL;
    bytes_clip(&r, hs_len);

    struct ja3_out o = {out, 0, cap, 0, 1};
    uint8_t sid_len, comp_len;
    uint16_t cs_len;
    if (bytes_get_be16(&r, &version) || bytes_skip(&r, 32) || bytes_get_u8(&r, &sid_len) ||
        bytes_skip(&r, sid_len) || bytes_get_be16(&r, &cs_len))
        return EGR_EINVAL;
    out_value(&o, version);
    out_field(&o);
    if (list16(&r, cs_len, &o) || bytes_get_u8(&r, &comp_len) || bytes_skip(&r, comp_len))
        return EGR_EINVAL;

    /* Extensions are optional (a ClientHello may end after compression). */
    struct bytes_rd groups = {0}, formats = {0};
    int have_groups = 0, have_formats = 0;
    out_field(&o);
    if (bytes_left(&r) > 0) {
        uint16_t ext_total;
        if (bytes_get_be16(&r, &ext_total) || !bytes_has(&r, ext_total))
            return EGR_EINVAL;
        bytes_clip(&r, ext_total);
        while (bytes_left(&r) > 0) {
            uint16_t type, elen;
            if (bytes_get_be16(&r, &type) || bytes_get_be16(&r, &elen) || !bytes_has(&r, elen))
                return EGR_EINVAL;
            struct bytes_rd data;
            bytes_init(&data, bytes_cur(&r), elen);
            bytes_skip(&r, elen);
            if (is_grease(type))
                continue;
            out_value(&o, type);
            if (type == TLS_EXT_SUPPORTED_GROUPS && !have_groups) {
                groups = data;
                have_groups = 1;
            } else if (type == TLS_EXT_EC_POINT_FORMATS && !have_formats) {
                formats = data;
                have_formats = 1;
            }
        }
    }
    out_field(&o);
    if (have_groups && ext_list(&groups, 1, &o))
        return EGR_EINVAL;
    out_field(&o);
    if (have_formats && ext_list(&formats, 0, &o))
        return EGR_EINVAL;
    if (o.full)
        return EGR_EINVAL;
    out[o.n] = '\0';
    *n = o.n;
    return EGR_OK;
}

int tls_hello_ja3(const uint8_t *p, uint32_t len, char *out, size_t cap, size_t *n)
{
    *n = 0;
    if (cap < 2) {
        if (cap)
            out[0] = '\0';
        return EGR_EINVAL;
    }
    int rc = parse(p, len, out, cap, n);
    if (rc != EGR_OK) {
        out[0] = '\0'; /* a half-built string is never left behind */
        *n = 0;
    }
    return rc;
}

/* libgcrypt wants gcry_check_version() before first use. */
static pthread_once_t md5_once = PTHREAD_ONCE_INIT;

static void md5_init(void)
{
    (void)gcry_check_version(NULL);
}

void tls_ja3_md5_hex(const char *s, size_t n, char out[33])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char d[16];
    pthread_once(&md5_once, md5_init);
    gcry_md_hash_buffer(GCRY_MD_MD5, d, s, n);
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[32] = '\0';
}

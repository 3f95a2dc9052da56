/* test_tls_hello.c - the JA3 string of a ClientHello: a ClientHello built
 * byte by byte against its known JA3 string, GREASE values left out of
 * every list, a ClientHello without extensions, one cut at every offset
 * (never a string, never a read past the end: ASan), lengths that lie, a
 * string too long for the caller's buffer, and the MD5 helper against a
 * published JA3 (Salesforce's README example). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "egressd/tls-hello.h"

struct buf {
    uint8_t b[2048];
    size_t n;
};

static void u8(struct buf *b, unsigned v)
{
    b->b[b->n++] = (uint8_t)v;
}

static void u16(struct buf *b, unsigned v)
{
    u8(b, v >> 8);
    u8(b, v & 0xff);
}

static void patch16(struct buf *b, size_t at, size_t v)
{
    b->b[at] = (uint8_t)(v >> 8);
    b->b[at + 1] = (uint8_t)(v & 0xff);
}

/* Record + handshake headers with lengths filled in at the end. */
static size_t begin(struct buf *b)
{
    b->n = 0;
    u8(b, 22);
    u16(b, 0x0301);
    u16(b, 0); /* record length at 3 */
    u8(b, 1);
    u8(b, 0);
    u16(b, 0); /* handshake length at 6..8 */
    return b->n;
}

static void end(struct buf *b)
{
    patch16(b, 3, b->n - 5);
    patch16(b, 7, b->n - 9);
}

/* client_version, random, session id of 32 bytes, the ciphers given,
 * compression null. */
static void hello_start(struct buf *b, const uint16_t *ciphers, size_t nc)
{
    begin(b);
    u16(b, 0x0303);
    for (int i = 0; i < 32; i++)
        u8(b, (unsigned)i);
    u8(b, 32);
    for (int i = 0; i < 32; i++)
        u8(b, 0xee);
    u16(b, (unsigned)(2 * nc));
    for (size_t i = 0; i < nc; i++)
        u16(b, ciphers[i]);
    u8(b, 1);
    u8(b, 0);
}

/* A Chrome-like ClientHello with GREASE in ciphers, extensions and groups. */
static void chrome_like(struct buf *b)
{
    static const uint16_t ciphers[] = {0x8a8a, 0x1301, 0x1302, 0xc02b, 0x009c};
    hello_start(b, ciphers, 5);
    size_t ext_len_at = b->n;
    u16(b, 0);
    u16(b, 0x2a2a); /* GREASE extension */
    u16(b, 0);
    u16(b, 0); /* server_name, empty */
    u16(b, 0);
    u16(b, 10); /* supported_groups: GREASE, x25519, secp256r1 */
    u16(b, 8);
    u16(b, 6);
    u16(b, 0xdada);
    u16(b, 29);
    u16(b, 23);
    u16(b, 11); /* ec_point_formats: uncompressed */
    u16(b, 2);
    u8(b, 1);
    u8(b, 0);
    u16(b, 43); /* supported_versions */
    u16(b, 3);
    u8(b, 2);
    u16(b, 0x0304);
    u16(b, 0xfafa); /* trailing GREASE with a byte of data */
    u16(b, 1);
    u8(b, 0);
    patch16(b, ext_len_at, b->n - ext_len_at - 2);
    end(b);
}

#define CHROME_JA3 "771,4865-4866-49195-156,0-10-11-43,29-23,0"

static void test_known_string(void **state)
{
    (void)state;
    struct buf b;
    chrome_like(&b);
    assert_true(tls_hello_looks_like(b.b, (uint32_t)b.n));
    char out[TLS_JA3_STR_MAX];
    size_t n = 99;
    assert_int_equal(tls_hello_ja3(b.b, (uint32_t)b.n, out, sizeof(out), &n), EGR_OK);
    assert_string_equal(out, CHROME_JA3);
    assert_int_equal(n, strlen(CHROME_JA3));
    /* Bytes after the record (the next record in the segment) are ignored. */
    u8(&b, 23);
    u16(&b, 0x0303);
    assert_int_equal(tls_hello_ja3(b.b, (uint32_t)b.n, out, sizeof(out), &n), EGR_OK);
    assert_string_equal(out, CHROME_JA3);
}

static void test_no_extensions(void **state)
{
    (void)state;
    static const uint16_t ciphers[] = {0x002f, 0x0035};
    struct buf b;
    hello_start(&b, ciphers, 2);
    end(&b);
    char out[TLS_JA3_STR_MAX];
    size_t n;
    assert_int_equal(tls_hello_ja3(b.b, (uint32_t)b.n, out, sizeof(out), &n), EGR_OK);
    assert_string_equal(out, "771,47-53,,,");
}

static void test_cut_everywhere(void **state)
{
    (void)state;
    struct buf b;
    chrome_like(&b);
    char out[TLS_JA3_STR_MAX];
    size_t n;
    /* Every prefix, copied into an exactly-sized buffer so ASan sees any
     * read past its end. */
    for (size_t len = 0; len < b.n; len++) {
        uint8_t *p = malloc(len ? len : 1);
        assert_non_null(p);
        memcpy(p, b.b, len);
        memset(out, 'x', sizeof(out));
        int rc = tls_hello_ja3(p, (uint32_t)len, out, sizeof(out), &n);
        if (rc != EGR_EINVAL)
            fail_msg("a ClientHello cut at %zu of %zu bytes parsed", len, b.n);
        assert_string_equal(out, "");
        assert_int_equal(n, 0);
        free(p);
    }
}

static void test_lying_lengths(void **state)
{
    (void)state;
    struct buf b;
    char out[TLS_JA3_STR_MAX];
    size_t n;
    /* Not a handshake record; not a ClientHello. */
    chrome_like(&b);
    b.b[0] = 23;
    assert_false(tls_hello_looks_like(b.b, (uint32_t)b.n));
    assert_int_equal(tls_hello_ja3(b.b, (uint32_t)b.n, out, sizeof(out), &n), EGR_EINVAL);
    chrome_like(&b);
    b.b[5] = 2; /* ServerHello */
    assert_false(tls_hello_looks_like(b.b, (uint32_t)b.n));
    assert_int_equal(tls_hello_ja3(b.b, (uint32_t)b.n, out, sizeof(out), &n), EGR_EINVAL);
    /* A handshake longer than its record. */
    chrome_like(&b);
    patch16(&b, 7, b.n);
    assert_int_equal(tls_hello_ja3(b.b, (uint32_t)b.n, out, sizeof(out), &n), EGR_EINVAL);
    /* An odd cipher list length. */
    static const uint16_t ciphers[] = {0x002f};
    hello_start(&b, ciphers, 1);
    end(&b);
    b.b[9 + 2 + 32 + 1 + 32 + 1] = 3;
    assert_int_equal(tls_hello_ja3(b.b, (uint32_t)b.n, out, sizeof(out), &n), EGR_EINVAL);
    /* An extension running past the extensions block. */
    chrome_like(&b);
    size_t ext0 = 9 + 2 + 32 + 1 + 32 + 2 + 10 + 2; /* the extensions length */
    patch16(&b, ext0 + 2 + 2, 200);
    assert_int_equal(tls_hello_ja3(b.b, (uint32_t)b.n, out, sizeof(out), &n), EGR_EINVAL);
    /* supported_groups whose list overruns its extension. */
    chrome_like(&b);
    size_t groups = ext0 + 2 + 4 + 4 + 4;
    patch16(&b, groups, 40);
    assert_int_equal(tls_hello_ja3(b.b, (uint32_t)b.n, out, sizeof(out), &n), EGR_EINVAL);
}

static void test_too_long(void **state)
{
    (void)state;
    /* 300 ciphers give a string far over TLS_JA3_STR_MAX: refused, not cut. */
    uint16_t ciphers[300];
    for (int i = 0; i < 300; i++)
        ciphers[i] = (uint16_t)(10000 + i);
    struct buf b;
    hello_start(&b, ciphers, 300);
    end(&b);
    char out[TLS_JA3_STR_MAX];
    size_t n;
    assert_int_equal(tls_hello_ja3(b.b, (uint32_t)b.n, out, sizeof(out), &n), EGR_EINVAL);
    assert_string_equal(out, "");
    /* A buffer just too small for a short string, and one just right. */
    chrome_like(&b);
    char small[sizeof(CHROME_JA3)];
    assert_int_equal(tls_hello_ja3(b.b, (uint32_t)b.n, small, sizeof(small) - 1, &n), EGR_EINVAL);
    assert_int_equal(tls_hello_ja3(b.b, (uint32_t)b.n, small, sizeof(small), &n), EGR_OK);
    assert_string_equal(small, CHROME_JA3);
    assert_int_equal(tls_hello_ja3(b.b, (uint32_t)b.n, small, 1, &n), EGR_EINVAL);
}

static void test_md5(void **state)
{
    (void)state;
    /* The example of github.com/salesforce/ja3's README. */
    const char *s = "769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0";
    char hex[33];
    tls_ja3_md5_hex(s, strlen(s), hex);
    assert_string_equal(hex, "ada70206e40642a3e4461f35503241d5");
    tls_ja3_md5_hex("", 0, hex);
    assert_string_equal(hex, "d41d8cd98f00b204e9800998ecf8427e");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_string),  cmocka_unit_test(test_no_extensions),
        cmocka_unit_test(test_cut_everywhere), cmocka_unit_test(test_lying_lengths),
        cmocka_unit_test(test_too_long),      cmocka_unit_test(test_md5),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

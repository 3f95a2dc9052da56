/* test_cid.c - Community ID v1: every row of
 * $EGRESSD_SHARED/testdata/community-id/tuple-vectors.tsv (the spec's
 * baseline tables and pycommunityid's unit-test vectors) in all three
 * settings (seed 0 base64, seed 1 base64, seed 0 hex), plus the ICMP
 * counterpart table, symmetry of two-way tuples and the one-way ICMP rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egressd/cid.h"
#include "shared_dir.h"

#define VECTORS_MIN_ROWS 35 /* as shipped; fewer means the file was cut */

static void shared_path(const char *rel, char *out, size_t n)
{
    if (test_shared_path(rel, out, n) != 0)
        fail_msg("EGRESSD_SHARED path too long");
}

/* Splits line at tabs in place; returns the number of fields. */
static int split_tabs(char *line, char **f, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        f[n++] = p;
        char *t = strchr(p, '\t');
        if (!t)
            break;
        *t = '\0';
        p = t + 1;
    }
    return n;
}

static int parse_addr(const char *text, uint8_t out[16])
{
    memset(out, 0, 16);
    if (strchr(text, ':')) {
        if (inet_pton(AF_INET6, text, out) != 1)
            fail_msg("bad IPv6 address '%s' in vectors", text);
        return 6;
    }
    if (inet_pton(AF_INET, text, out) != 1)
        fail_msg("bad IPv4 address '%s' in vectors", text);
    return 4;
}

static unsigned parse_num(const char *text, unsigned max)
{
    char *end;
    unsigned long v = strtoul(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v > max)
        fail_msg("bad number '%s' in vectors", text);
    return (unsigned)v;
}

static void test_tuple_vectors(void **state)
{
    (void)state;
    char path[1200];
    if (test_shared_absent())
        skip();
    shared_path("testdata/community-id/tuple-vectors.tsv", path, sizeof(path));
    FILE *fp = fopen(path, "r");
    if (!fp)
        fail_msg("%s: cannot open (set EGRESSD_SHARED to the shared test data, ../shared)",
                 path);

    static const struct {
        const char *name;
        struct cid_settings s;
        int col;
    } settings[] = {
        {"default", {.seed = 0, .base64 = 1}, 5},
        {"seed1", {.seed = 1, .base64 = 1}, 6},
        {"nob64", {.seed = 0, .base64 = 0}, 7},
    };

    char line[2048];
    unsigned rows = 0, checks = 0, failures = 0, lineno = 0;
    while (fgets(line, sizeof(line), fp)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (lineno == 1) {
            static const char hdr[] =
                "proto\tsaddr\tdaddr\tsport\tdport\tcid_default\tcid_seed1\tcid_nob64\t";
            if (strncmp(line, hdr, sizeof(hdr) - 1) != 0)
                fail_msg("%s: unexpected header '%s'", path, line);
            continue;
        }
        if (line[0] == '\0')
            continue;
        char *f[12];
        if (split_tabs(line, f, 12) < 8)
            fail_msg("%s:%u: fewer than 8 columns", path, lineno);
        uint8_t proto = (uint8_t)parse_num(f[0], 255);
        uint8_t sa[16], da[16];
        int fam = parse_addr(f[1], sa);
        if (parse_addr(f[2], da) != fam)
            fail_msg("%s:%u: mixed address families", path, lineno);
        int has_ports = strcmp(f[3], "-") != 0;
        if (has_ports != (strcmp(f[4], "-") != 0))
            fail_msg("%s:%u: one port given, one not", path, lineno);
        uint16_t sp = has_ports ? (uint16_t)parse_num(f[3], 65535) : 0;
        uint16_t dp = has_ports ? (uint16_t)parse_num(f[4], 65535) : 0;
        rows++;
        if (f[5][0] == '\0')
            fail_msg("%s:%u: no default ID", path, lineno);
        for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
            const char *want = f[settings[i].col];
            if (want[0] == '\0')
                continue; /* the CLI vector has only the default */
            char got[CID_STR_MAX];
            memset(got, 'X', sizeof(got));
            cid_compute(&settings[i].s, fam, sa, da, proto, sp, dp, has_ports, got);
            checks++;
            if (strcmp(got, want) != 0) {
                failures++;
                print_error("%s:%u %s: %s %s -> %s: got %s want %s\n", path, lineno,
                            settings[i].name, f[0], f[1], f[2], got, want);
            }
        }
    }
    fclose(fp);
    print_message("%u rows, %u IDs checked\n", rows, checks);
    if (rows < VECTORS_MIN_ROWS)
        fail_msg("%s: only %u rows (want >= %d)", path, rows, VECTORS_MIN_ROWS);
    assert_true(checks >= 3 * (rows - 1));
    assert_int_equal(failures, 0);
}

static void test_icmp_counterparts(void **state)
{
    (void)state;
    static const uint8_t v4[][2] = {{8, 0}, {13, 14}, {15, 16}, {10, 9}, {17, 18}};
    static const uint8_t v6[][2] = {{128, 129}, {130, 131}, {133, 134},
                                    {135, 136}, {139, 140}, {144, 145}};
    uint8_t peer;
    for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++) {
        assert_int_equal(cid_icmp_counterpart(1, v4[i][0], &peer), 1);
        assert_int_equal(peer, v4[i][1]);
        assert_int_equal(cid_icmp_counterpart(1, v4[i][1], &peer), 1);
        assert_int_equal(peer, v4[i][0]);
        /* the ICMPv4 table does not apply to ICMPv6 and back */
        assert_int_equal(cid_icmp_counterpart(58, v4[i][0], &peer), 0);
    }
    for (size_t i = 0; i < sizeof(v6) / sizeof(v6[0]); i++) {
        assert_int_equal(cid_icmp_counterpart(58, v6[i][0], &peer), 1);
        assert_int_equal(peer, v6[i][1]);
        assert_int_equal(cid_icmp_counterpart(58, v6[i][1], &peer), 1);
        assert_int_equal(peer, v6[i][0]);
        assert_int_equal(cid_icmp_counterpart(1, v6[i][0], &peer), 0);
    }
    unsigned pairs4 = 0, pairs6 = 0;
    for (unsigned t = 0; t < 256; t++) {
        pairs4 += (unsigned)cid_icmp_counterpart(1, (uint8_t)t, &peer);
        pairs6 += (unsigned)cid_icmp_counterpart(58, (uint8_t)t, &peer);
    }
    assert_int_equal(pairs4, 10);
    assert_int_equal(pairs6, 12);
    assert_int_equal(cid_icmp_counterpart(6, 8, &peer), 0);
    assert_int_equal(cid_icmp_counterpart(17, 0, &peer), 0);
}

/* Two-way tuples hash alike in both directions, for every port-carrying
 * protocol and a port-less one, over many pseudo-random tuples; a one-way
 * ICMP type does not. Output shape is checked for both encodings. */
static void test_symmetry_and_shape(void **state)
{
    (void)state;
    const struct cid_settings b64 = {.seed = 0, .base64 = 1}, hex = {.seed = 7, .base64 = 0};
    static const uint8_t protos[] = {6, 17, 132, 46};
    uint32_t x = 12345;
    for (int i = 0; i < 2000; i++) {
        uint8_t a[16], b[16];
        for (int j = 0; j < 16; j++) {
            x = x * 1103515245u + 12345u;
            a[j] = (uint8_t)(x >> 16);
            x = x * 1103515245u + 12345u;
            b[j] = (uint8_t)(x >> 16);
        }
        if (i % 50 == 0)
            memcpy(b, a, 16); /* same address: ports decide the order */
        x = x * 1103515245u + 12345u;
        uint16_t sp = (uint16_t)(x >> 8), dp = (uint16_t)(x >> 3);
        uint8_t proto = protos[i % 4];
        int fam = i % 2 ? 6 : 4, hp = proto != 46;
        char c1[CID_STR_MAX], c2[CID_STR_MAX];
        cid_compute(&b64, fam, a, b, proto, sp, dp, hp, c1);
        cid_compute(&b64, fam, b, a, proto, dp, sp, hp, c2);
        assert_string_equal(c1, c2);
        assert_int_equal(strlen(c1), 30);
        assert_memory_equal(c1, "1:", 2);
        assert_int_equal(c1[29], '=');
        assert_int_equal(strspn(c1 + 2, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"), 27);
        cid_compute(&hex, fam, a, b, proto, sp, dp, hp, c1);
        cid_compute(&hex, fam, b, a, proto, dp, sp, hp, c2);
        assert_string_equal(c1, c2);
        assert_int_equal(strlen(c1), 42);
        assert_int_equal(strspn(c1 + 2, "0123456789abcdef"), 40);
    }

    /* ICMP time exceeded (11) is one-way: the reverse tuple differs. */
    uint8_t a[16] = {10, 0, 0, 1}, b[16] = {10, 0, 0, 2};
    char c1[CID_STR_MAX], c2[CID_STR_MAX];
    cid_compute(&b64, 4, a, b, 1, 11, 0, 1, c1);
    cid_compute(&b64, 4, b, a, 1, 11, 0, 1, c2);
    assert_string_not_equal(c1, c2);
    /* Echo request and reply (code ignored for paired types) meet. */
    cid_compute(&b64, 4, a, b, 1, 8, 0, 1, c1);
    cid_compute(&b64, 4, b, a, 1, 0, 5, 1, c2);
    assert_string_equal(c1, c2);
    /* The seed changes the ID. */
    const struct cid_settings s1 = {.seed = 1, .base64 = 1};
    cid_compute(&s1, 4, a, b, 1, 8, 0, 1, c2);
    assert_string_not_equal(c1, c2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tuple_vectors),
        cmocka_unit_test(test_icmp_counterparts),
        cmocka_unit_test(test_symmetry_and_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

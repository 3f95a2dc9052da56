/* test_netset.c - CIDR sets: longest-prefix match for both families,
 * overlapping and repeated prefixes, /0, host routes, IPv4-mapped
 * normalisation, refusal messages for bad text, 100k random prefixes checked
 * against an independent reference, and the special-purpose address table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "egressd/netset.h"

/* Parses an address as the tests write it: family from the text. */
static int addr(const char *text, uint8_t out[16])
{
    memset(out, 0, 16);
    if (strchr(text, ':')) {
        assert_int_equal(inet_pton(AF_INET6, text, out), 1);
        return 6;
    }
    assert_int_equal(inet_pton(AF_INET, text, out), 1);
    return 4;
}

/* Looks an address up; returns the value or -1 when nothing matches. */
static int64_t look(const struct netset *s, const char *text)
{
    uint8_t a[16];
    int fam = addr(text, a);
    uint32_t v = 0xdeadbeef;
    if (!netset_lookup(s, fam, a, &v)) {
        assert_int_equal(v, 0xdeadbeef); /* untouched on a miss */
        return -1;
    }
    return v;
}

static void add(struct netset *s, const char *cidr, uint32_t value)
{
    struct egr_err err = {{0}};
    int rc = netset_add(s, cidr, value, &err);
    if (rc != EGR_OK)
        fail_msg("netset_add(%s): %d %s", cidr, rc, err.msg);
}

static void test_v4_longest_prefix(void **state)
{
    struct netset *s = netset_new();
    assert_non_null(s);
    add(s, "10.0.0.0/8", 1);
    add(s, "10.1.2.3", 4); /* bare address = /32, added before its parents */
    add(s, "10.1.2.0/24", 3);
    add(s, "10.1.0.0/16", 2);
    add(s, "10.1.2.128/25", 5);
    assert_int_equal(netset_count(s), 5);

    assert_int_equal(look(s, "10.200.0.1"), 1);
    assert_int_equal(look(s, "10.1.200.1"), 2);
    assert_int_equal(look(s, "10.1.2.1"), 3);
    assert_int_equal(look(s, "10.1.2.3"), 4);
    assert_int_equal(look(s, "10.1.2.2"), 3);
    assert_int_equal(look(s, "10.1.2.4"), 3);
    assert_int_equal(look(s, "10.1.2.127"), 3);
    assert_int_equal(look(s, "10.1.2.128"), 5);
    assert_int_equal(look(s, "10.1.2.255"), 5);
    assert_int_equal(look(s, "10.1.3.0"), 2);
    assert_int_equal(look(s, "10.255.255.255"), 1);
    assert_int_equal(look(s, "9.255.255.255"), -1);
    assert_int_equal(look(s, "11.0.0.0"), -1);
    /* IPv4 prefixes do not answer IPv6 lookups of the same bytes. */
    assert_int_equal(look(s, "a01:203::"), -1);
    /* value pointer may be NULL */
    uint8_t a[16];
    addr("10.1.2.3", a);
    assert_int_equal(netset_lookup(s, 4, a, NULL), 1);
    netset_free(s);
}

static void test_v6_longest_prefix(void **state)
{
    struct netset *s = netset_new();
    add(s, "2001:db8::/32", 1);
    add(s, "2001:db8:1:2::1", 4); /* /128 */
    add(s, "2001:db8:1::/48", 2);
    add(s, "2001:db8:1:2::/64", 3);
    add(s, "2001:db8:1:2:8000::/65", 5);
    add(s, "2001:db8:ffff:ffff:ffff:ffff:ffff:fffe/127", 6);
    assert_int_equal(netset_count(s), 6);

    assert_int_equal(look(s, "2001:db8:9::1"), 1);
    assert_int_equal(look(s, "2001:db8:1:9::1"), 2);
    assert_int_equal(look(s, "2001:db8:1:2::2"), 3);
    assert_int_equal(look(s, "2001:db8:1:2::1"), 4);
    assert_int_equal(look(s, "2001:db8:1:2::"), 3);
    assert_int_equal(look(s, "2001:db8:1:2:7fff:ffff:ffff:ffff"), 3);
    assert_int_equal(look(s, "2001:db8:1:2:8000::"), 5);
    assert_int_equal(look(s, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"), 6);
    assert_int_equal(look(s, "2001:db8:ffff:ffff:ffff:ffff:ffff:fffe"), 6);
    assert_int_equal(look(s, "2001:db8:ffff:ffff:ffff:ffff:ffff:fffd"), 1);
    assert_int_equal(look(s, "2001:db9::"), -1);
    assert_int_equal(look(s, "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"), -1);
    assert_int_equal(look(s, "32.1.13.184"), -1); /* same first bytes, other family */
    netset_free(s);
}

static void test_overlap_and_replace(void **state)
{
    struct netset *s = netset_new();
    /* Sibling and nested prefixes in an order that forces glue nodes and
     * re-parenting: two /24s meet at a /22 branch point, then a /23 and
     * the /22 itself are added into that glue. */
    add(s, "192.168.1.0/24", 1);
    add(s, "192.168.2.0/24", 2);
    assert_int_equal(look(s, "192.168.3.1"), -1);
    assert_int_equal(look(s, "192.168.0.1"), -1);
    add(s, "192.168.0.0/23", 3);
    add(s, "192.168.0.0/22", 4);
    assert_int_equal(netset_count(s), 4);
    assert_int_equal(look(s, "192.168.0.1"), 3);
    assert_int_equal(look(s, "192.168.1.1"), 1);
    assert_int_equal(look(s, "192.168.2.1"), 2);
    assert_int_equal(look(s, "192.168.3.1"), 4);
    assert_int_equal(look(s, "192.168.4.1"), -1);

    /* the same prefix again replaces the value, count unchanged */
    add(s, "192.168.0.0/23", 30);
    add(s, "192.168.1.0/24", 10);
    assert_int_equal(netset_count(s), 4);
    assert_int_equal(look(s, "192.168.0.1"), 30);
    assert_int_equal(look(s, "192.168.1.1"), 10);
    /* a value of 0 is a real value, not "absent" */
    add(s, "192.168.2.0/24", 0);
    assert_int_equal(look(s, "192.168.2.1"), 0);
    netset_free(s);
}

static void test_default_and_host_routes(void **state)
{
    struct netset *s = netset_new();
    add(s, "0.0.0.0/0", 7);
    assert_int_equal(look(s, "0.0.0.0"), 7);
    assert_int_equal(look(s, "255.255.255.255"), 7);
    assert_int_equal(look(s, "::1"), -1); /* /0 of IPv4 is not IPv6 */
    add(s, "::/0", 8);
    assert_int_equal(look(s, "::1"), 8);
    assert_int_equal(look(s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 8);
    add(s, "255.255.255.255/32", 9);
    add(s, "0.0.0.0/32", 10);
    add(s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", 11);
    add(s, "::/128", 12);
    assert_int_equal(look(s, "255.255.255.255"), 9);
    assert_int_equal(look(s, "255.255.255.254"), 7);
    assert_int_equal(look(s, "0.0.0.0"), 10);
    assert_int_equal(look(s, "0.0.0.1"), 7);
    assert_int_equal(look(s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 11);
    assert_int_equal(look(s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"), 8);
    assert_int_equal(look(s, "::"), 12);
    assert_int_equal(look(s, "::2"), 8);
    assert_int_equal(netset_count(s), 6);
    netset_free(s);
}

static void test_mapped_addresses(void **state)
{
    struct netset *s = netset_new();
    add(s, "10.0.0.0/8", 1);
    add(s, "::ffff:192.0.2.0/120", 2);   /* becomes 192.0.2.0/24 */
    add(s, "::ffff:0:0/96", 3);          /* becomes 0.0.0.0/0 */
    add(s, "::/0", 4);                   /* IPv6 only: mapped addresses go to IPv4 */
    assert_int_equal(netset_count(s), 4);

    assert_int_equal(look(s, "::ffff:10.1.1.1"), 1);
    assert_int_equal(look(s, "10.1.1.1"), 1);
    assert_int_equal(look(s, "192.0.2.77"), 2);
    assert_int_equal(look(s, "::ffff:192.0.2.77"), 2);
    assert_int_equal(look(s, "8.8.8.8"), 3);
    assert_int_equal(look(s, "::ffff:8.8.8.8"), 3);
    assert_int_equal(look(s, "2001:db8::1"), 4);
    assert_int_equal(look(s, "::8.8.8.8"), 4); /* IPv4-compatible is not mapped */

    /* the mapped spelling of an existing IPv4 prefix is the same prefix */
    add(s, "::ffff:10.0.0.0/104", 5);
    assert_int_equal(netset_count(s), 4);
    assert_int_equal(look(s, "10.9.9.9"), 5);

    /* binary adds normalise the same way */
    uint8_t a[16];
    addr("::ffff:172.16.0.0", a);
    assert_int_equal(netset_add_bin(s, 6, a, 108, 6), EGR_OK);
    assert_int_equal(look(s, "172.16.5.5"), 6);
    assert_int_equal(look(s, "172.32.0.0"), 3);
    netset_free(s);
}

static void test_bad_input(void **state)
{
    static const struct {
        const char *text;
        const char *reason;
    } bad[] = {
        {"", "empty"},
        {"10.0.0.0/", "prefix length must be a number 0..32"},
        {"10.0.0.0/33", "prefix length 33 is over 32"},
        {"2001:db8::/129", "prefix length 129 is over 128"},
        {"10.0.0.0/8x", "prefix length must be a number"},
        {"10.0.0.0/-1", "prefix length must be a number"},
        {"10.0.0.0//8", "prefix length must be a number"},
        {"10.0.0.0/ 8", "prefix length must be a number"},
        {"10.0.0.0/99999", "prefix length must be a number"},
        {"/8", "missing address"},
        {"10.0.0.1/8", "host bits set beyond /8 (network is 10.0.0.0/8)"},
        {"2001:db8::1/32", "host bits set beyond /32 (network is 2001:db8::/32)"},
        {"10.0.0", "not a valid IPv4 or IPv6 address"},
        {"256.1.1.1", "not a valid IPv4 or IPv6 address"},
        {"010.1.1.1", "not a valid IPv4 or IPv6 address"},
        {" 10.0.0.0/8", "not a valid IPv4 or IPv6 address"},
        {"hello", "not a valid IPv4 or IPv6 address"},
        {"2001:db8:::1", "not a valid IPv6 address"},
        {"fe80::1%eth0", "zone index not allowed"},
        {"1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25.26.27.28",
         "too long"},
    };
    struct netset *s = netset_new();
    for (size_t i = 0; i < EGR_ARRAY_LEN(bad); i++) {
        struct egr_err err = {{0}};
        int rc = netset_add(s, bad[i].text, 1, &err);
        if (rc != EGR_EINVAL)
            fail_msg("\"%s\" accepted (rc %d)", bad[i].text, rc);
        if (!strstr(err.msg, bad[i].reason))
            fail_msg("\"%s\": message \"%s\" lacks \"%s\"", bad[i].text, err.msg, bad[i].reason);
        /* the message names the text (quoted), on one line */
        char quoted[128];
        snprintf(quoted, sizeof(quoted), "\"%.40s", bad[i].text);
        if (!strstr(err.msg, quoted))
            fail_msg("message \"%s\" does not name \"%s\"", err.msg, bad[i].text);
        assert_null(strchr(err.msg, '\n'));
    }
    assert_int_equal(netset_count(s), 0);

    /* control bytes never reach the message */
    struct egr_err err = {{0}};
    assert_int_equal(netset_add(s, "10.0.0.0/8\n\x1b[31m", 1, &err), EGR_EINVAL);
    assert_null(strchr(err.msg, '\n'));
    assert_null(strchr(err.msg, '\x1b'));
    assert_int_equal(netset_add(s, NULL, 1, &err), EGR_EINVAL);
    /* err may be NULL */
    assert_int_equal(netset_add(s, "x", 1, NULL), EGR_EINVAL);

    uint8_t a[16] = {0};
    assert_int_equal(netset_add_bin(s, 4, a, 33, 1), EGR_EINVAL);
    assert_int_equal(netset_add_bin(s, 6, a, 129, 1), EGR_EINVAL);
    assert_int_equal(netset_add_bin(s, 5, a, 8, 1), EGR_EINVAL);
    assert_int_equal(netset_count(s), 0);
    assert_int_equal(netset_lookup(s, 5, a, NULL), 0);
    /* binary adds ignore host bits */
    addr("10.1.2.3", a);
    assert_int_equal(netset_add_bin(s, 4, a, 8, 42), EGR_OK);
    assert_int_equal(look(s, "10.200.0.0"), 42);
    netset_free(s);
    netset_free(NULL);
}

/* ---- 100k random prefixes against an independent reference ---------------
 * The reference keeps every (family, masked address, length) in a hash
 * table, last add winning, and answers a lookup by trying every length from
 * the longest down: slow, obviously correct, and sharing no code with the
 * trie. */

#define NPREFIX 120000 /* about 100k distinct once repeats merge */
#define NQUERY 300000

struct ref_ent {
    uint8_t used, family, plen;
    uint8_t a[16];
    uint32_t value;
};

struct ref {
    struct ref_ent *t;
    size_t mask;
    size_t count;
};

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void mask_bytes(uint8_t *a, unsigned len, unsigned plen)
{
    for (unsigned i = 0; i < len; i++) {
        unsigned bits = plen > i * 8 ? plen - i * 8 : 0;
        if (bits < 8)
            a[i] &= (uint8_t)(0xff00u >> bits);
    }
}

static size_t ref_slot(const struct ref *r, int family, unsigned plen, const uint8_t *a)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)(family * 256 + plen);
    for (int i = 0; i < 16; i++)
        h = (h ^ a[i]) * 1099511628211ull;
    size_t i = (size_t)h & r->mask;
    while (r->t[i].used &&
           !(r->t[i].family == family && r->t[i].plen == plen && !memcmp(r->t[i].a, a, 16)))
        i = (i + 1) & r->mask;
    return i;
}

static void ref_add(struct ref *r, int family, const uint8_t *a, unsigned plen, uint32_t v)
{
    uint8_t k[16] = {0};
    memcpy(k, a, family == 4 ? 4 : 16);
    mask_bytes(k, 16, plen);
    size_t i = ref_slot(r, family, plen, k);
    if (!r->t[i].used) {
        r->t[i].used = 1;
        r->t[i].family = (uint8_t)family;
        r->t[i].plen = (uint8_t)plen;
        memcpy(r->t[i].a, k, 16);
        r->count++;
    }
    r->t[i].value = v;
}

static int ref_lookup(const struct ref *r, int family, const uint8_t *a, uint32_t *v)
{
    unsigned maxlen = family == 4 ? 32 : 128;
    for (int plen = (int)maxlen; plen >= 0; plen--) {
        uint8_t k[16] = {0};
        memcpy(k, a, family == 4 ? 4 : 16);
        mask_bytes(k, 16, (unsigned)plen);
        size_t i = ref_slot(r, family, (unsigned)plen, k);
        if (r->t[i].used) {
            *v = r->t[i].value;
            return 1;
        }
    }
    return 0;
}

/* A random address near one of 1024 bases, so that prefixes nest and overlap
 * heavily instead of scattering over the whole space: the first `keep`
 * bytes come from the base, the rest are random. */
#define NBASE 1024

static void random_addr(int family, uint8_t bases[][16], unsigned keep, uint8_t *a)
{
    memcpy(a, bases[rnd() % NBASE], 16);
    unsigned len = family == 4 ? 4 : 16;
    for (unsigned i = keep; i < len; i++)
        a[i] = (uint8_t)rnd();
    if (family == 6 && a[0] == 0)
        a[0] = 0x20; /* stay clear of ::ffff:0:0/96, which normalises to IPv4 */
}

static unsigned random_plen(int family)
{
    if (family == 4)
        return 12 + (unsigned)(rnd() % 21);
    return rnd() % 10 == 0 ? 128 : 20 + (unsigned)(rnd() % 109);
}

static void test_random_vs_reference(void **state)
{
    struct ref r = {0};
    r.mask = (1u << 18) - 1;
    r.t = calloc(r.mask + 1, sizeof(*r.t));
    assert_non_null(r.t);
    uint8_t bases4[NBASE][16], bases6[NBASE][16];
    for (int i = 0; i < NBASE; i++)
        for (int j = 0; j < 16; j++) {
            bases4[i][j] = (uint8_t)rnd();
            bases6[i][j] = (uint8_t)rnd();
        }

    struct netset *s = netset_new();
    for (uint32_t i = 0; i < NPREFIX; i++) {
        int family = rnd() % 10 < 6 ? 4 : 6;
        uint8_t a[16];
        unsigned plen = random_plen(family);
        /* keep at least the base's first byte: a prefix lands near a base */
        unsigned len = family == 4 ? 4 : 16;
        random_addr(family, family == 4 ? bases4 : bases6, 1 + (unsigned)(rnd() % (len - 1)), a);
        uint32_t v = (uint32_t)rnd();
        assert_int_equal(netset_add_bin(s, family, a, plen, v), EGR_OK);
        ref_add(&r, family, a, plen, v);
    }
    assert_int_equal(netset_count(s), r.count);
    assert_true(r.count >= 100000); /* repeats happen (and are checked), most are distinct */

    struct timespec t0, t1;
    unsigned hits = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint32_t i = 0; i < NQUERY; i++) {
        int family = rnd() % 2 ? 4 : 6;
        uint8_t a[16];
        unsigned len = family == 4 ? 4 : 16;
        random_addr(family, family == 4 ? bases4 : bases6, (unsigned)(rnd() % len), a);
        uint32_t got = 0, want = 0;
        int g = netset_lookup(s, family, a, &got);
        int w = ref_lookup(&r, family, a, &want);
        if (g != w || (g && got != want)) {
            char text[INET6_ADDRSTRLEN];
            inet_ntop(family == 4 ? AF_INET : AF_INET6, a, text, sizeof(text));
            fail_msg("%s: netset %d/%u, reference %d/%u", text, g, got, w, want);
        }
        hits += (unsigned)g;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* both outcomes must be well exercised */
    assert_true(hits > NQUERY / 10);
    assert_true(hits < NQUERY - NQUERY / 10);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    print_message("%u prefixes, %u queries (%u hits), %.2f s including the reference\n",
                  netset_count(s), NQUERY, hits, secs);

    /* netset alone: an order-of-magnitude check, not a benchmark */
    uint8_t probe[16];
    random_addr(4, bases4, 1, probe);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint32_t sink = 0;
    for (uint32_t i = 0; i < 1000000; i++) {
        uint32_t v = 0;
        probe[3] = (uint8_t)i;
        probe[2] = (uint8_t)(i >> 8);
        sink += (uint32_t)netset_lookup(s, 4, probe, &v) + v;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    print_message("1M IPv4 lookups: %.0f ns each (checksum %u)\n", secs * 1e3, sink);

    netset_free(s);
    free(r.t);
}

static void test_is_special(void **state)
{
    static const struct {
        const char *a;
        int special;
    } rows[] = {
        /* IPv4 */
        {"0.0.0.0", 1},         {"0.1.2.3", 1},          {"10.0.0.1", 1},
        {"9.255.255.255", 0},   {"11.0.0.0", 0},         {"100.63.255.255", 0},
        {"100.64.0.0", 1},      {"100.127.255.255", 1},  {"100.128.0.0", 0},
        {"127.0.0.1", 1},       {"169.254.1.1", 1},      {"169.255.0.1", 0},
        {"172.15.255.255", 0},  {"172.16.0.0", 1},       {"172.31.255.255", 1},
        {"172.32.0.0", 0},      {"192.0.0.8", 1},        {"192.0.0.9", 0},
        {"192.0.0.10", 0},      {"192.0.0.170", 1},      {"192.0.1.1", 0},
        {"192.0.2.1", 1},       {"192.88.99.1", 1},      {"192.31.196.1", 0},
        {"192.52.193.1", 0},    {"192.175.48.1", 0},     {"192.167.255.255", 0},
        {"192.168.1.1", 1},     {"192.169.0.0", 0},      {"198.17.255.255", 0},
        {"198.18.0.1", 1},      {"198.19.255.255", 1},   {"198.20.0.0", 0},
        {"198.51.100.7", 1},    {"203.0.113.9", 1},      {"203.0.114.1", 0},
        {"223.255.255.255", 0}, {"224.0.0.1", 1},        {"239.255.255.255", 1},
        {"240.0.0.1", 1},       {"255.255.255.255", 1},  {"8.8.8.8", 0},
        {"1.1.1.1", 0},
        /* IPv6 */
        {"::", 1},              {"::1", 1},              {"::2", 1},
        {"::8.8.8.8", 1},       {"::ffff:10.0.0.1", 1},  {"::ffff:8.8.8.8", 0},
        {"::ffff:192.0.2.1", 1}, {"64:ff9b::808:808", 0}, {"64:ff9b::a00:1", 0},
        {"64:ff9b:1::1", 1},    {"100::1", 1},           {"100:0:0:1::1", 1},
        {"2001::1", 1},         {"2001:0:4136:e378:8000:63bf:3fff:fdd2", 1},
        {"2001:1::1", 0},       {"2001:1::2", 0},        {"2001:1::3", 0},
        {"2001:1::4", 1},       {"2001:2::1", 1},        {"2001:3::1", 0},
        {"2001:4:112::1", 0},   {"2001:10::1", 1},       {"2001:20::1", 1},
        {"2001:30::1", 0},      {"2001:1ff::1", 1},      {"2001:200::1", 0},
        {"2001:db8::1", 1},     {"2001:db9::1", 0},      {"2002:c058:6301::1", 1},
        {"2002:808:808::1", 0}, {"2620:4f:8000::1", 0},  {"3fff::1", 1},
        {"3fff:fff::1", 1},     {"3fff:1000::1", 0},     {"5f00::1", 1},
        {"fc00::1", 1},         {"fdff:ffff::1", 1},     {"fe80::1", 1},
        {"febf::1", 1},         {"fec0::1", 1},          {"ff02::1", 1},
        {"2606:4700:4700::1111", 0}, {"2001:4860:4860::8888", 0},
    };
    for (size_t i = 0; i < EGR_ARRAY_LEN(rows); i++) {
        uint8_t a[16];
        int fam = addr(rows[i].a, a);
        if (netset_is_special(fam, a) != rows[i].special)
            fail_msg("netset_is_special(%s) = %d, want %d", rows[i].a, !rows[i].special,
                     rows[i].special);
        /* every IPv4 row gives the same answer through its mapped form */
        if (fam == 4) {
            uint8_t m[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
            memcpy(m + 12, a, 4);
            if (netset_is_special(6, m) != rows[i].special)
                fail_msg("netset_is_special(::ffff:%s) differs from IPv4", rows[i].a);
        }
    }
    uint8_t z[16] = {0};
    assert_int_equal(netset_is_special(5, z), 0);
    assert_int_equal(netset_is_special(4, NULL), 0);
}

/* The union of sets: every prefix of each, with the new value, and nothing
 * else (a glue node of a trie is no prefix). */
static void test_add_all(void **state)
{
    (void)state;
    struct netset *a = netset_new(), *b = netset_new(), *u = netset_new();
    struct egr_err err;
    assert_int_equal(netset_add(a, "10.0.0.0/8", 5, &err), EGR_OK);
    assert_int_equal(netset_add(a, "10.1.0.0/16", 6, &err), EGR_OK);
    assert_int_equal(netset_add(a, "2001:db8::/32", 7, &err), EGR_OK);
    assert_int_equal(netset_add(b, "192.0.2.1", 8, &err), EGR_OK);
    assert_int_equal(netset_add(b, "10.128.0.0/9", 9, &err), EGR_OK);
    assert_int_equal(netset_add_all(u, a, 1), EGR_OK);
    assert_int_equal(netset_add_all(u, b, 2), EGR_OK);
    assert_int_equal(netset_count(u), 5);
    assert_int_equal(look(u, "10.1.2.3"), 1);
    assert_int_equal(look(u, "10.200.0.1"), 2);
    assert_int_equal(look(u, "10.2.0.1"), 1);
    assert_int_equal(look(u, "192.0.2.1"), 2);
    assert_int_equal(look(u, "192.0.2.2"), -1);
    assert_int_equal(look(u, "2001:db8:ffff::1"), 1);
    assert_int_equal(look(u, "2001:db9::1"), -1);
    assert_int_equal(netset_add_all(u, u, 1), EGR_EINVAL);
    netset_free(a);
    netset_free(b);
    netset_free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v4_longest_prefix),
        cmocka_unit_test(test_add_all),
        cmocka_unit_test(test_v6_longest_prefix),
        cmocka_unit_test(test_overlap_and_replace),
        cmocka_unit_test(test_default_and_host_routes),
        cmocka_unit_test(test_mapped_addresses),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_random_vs_reference),
        cmocka_unit_test(test_is_special),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

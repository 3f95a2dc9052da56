/* test_names.c - the passive DNS table: learn and look up, the CNAME head
 * name, TTL expiry by packet time with the clamp, the most recent name
 * winning, responses that are not learned, capacity eviction (expired
 * entries first), IPv6 and IPv4-mapped normalisation, the output buffer,
 * size limits, a real response from teams.pcap, and 50,000 random
 * operations checked against a simple reference model of the same rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egressd/dns.h"
#include "egressd/names.h"

#define S 1000000ull /* one second of packet time, in microseconds */
#define T0 (1700000000ull * S)

/* ---- building parsed responses by hand ---------------------------------- */

static struct dns_answers R;

static void set_name(struct dns_name *n, const void *text, size_t len)
{
    assert_true(len <= DNS_NAME_TEXT_MAX);
    memcpy(n->text, text, len);
    n->text[len] = '\0';
    n->len = (uint16_t)len;
    n->flags = 0;
}

static void resp(const char *qname)
{
    memset(&R, 0, sizeof(R));
    R.has_question = 1;
    R.qdcount = 1;
    R.qtype = DNS_TYPE_A;
    R.qclass = DNS_CLASS_IN;
    set_name(&R.qname, qname, strlen(qname));
}

static struct dns_answer *add_rr(const char *owner, uint16_t type, uint32_t ttl)
{
    assert_true(R.count < DNS_ANSWERS_MAX);
    struct dns_answer *rr = &R.an[R.count++];
    R.ancount = R.count;
    rr->type = type;
    rr->ttl = ttl;
    set_name(&rr->owner, owner, strlen(owner));
    return rr;
}

static void add_cname(const char *owner, const char *target, uint32_t ttl)
{
    struct dns_answer *rr = add_rr(owner, DNS_TYPE_CNAME, ttl);
    set_name(&rr->target, target, strlen(target));
}

static void add_addr(const char *owner, const char *text, uint32_t ttl)
{
    int v6 = strchr(text, ':') != NULL;
    struct dns_answer *rr = add_rr(owner, v6 ? DNS_TYPE_AAAA : DNS_TYPE_A, ttl);
    rr->family = v6 ? 6 : 4;
    assert_int_equal(inet_pton(v6 ? AF_INET6 : AF_INET, text, rr->addr), 1);
}

/* ---- table helpers ------------------------------------------------------ */

static struct names *new_table(uint32_t cap)
{
    struct names *t = NULL;
    struct egr_err err = {{0}};
    int rc = names_new(cap, &t, &err);
    if (rc != EGR_OK)
        fail_msg("names_new(%u): %d %s", cap, rc, err.msg);
    assert_non_null(t);
    return t;
}

/* The name for an address at time now, or NULL. */
static const char *look(struct names *t, const char *text, uint64_t now)
{
    static char out[DNS_NAME_TEXT_MAX + 1];
    uint8_t a[16] = {0};
    int fam = strchr(text, ':') ? 6 : 4;
    assert_int_equal(inet_pton(fam == 6 ? AF_INET6 : AF_INET, text, a), 1);
    memset(out, 'Z', sizeof(out));
    int hit = names_lookup(t, fam, a, now, out, sizeof(out));
    if (!hit) {
        assert_string_equal(out, "");
        return NULL;
    }
    return out;
}

static void expect_name(struct names *t, const char *addr, uint64_t now, const char *name)
{
    const char *got = look(t, addr, now);
    if (!name && got)
        fail_msg("%s: expected no name, got '%s'", addr, got);
    if (name && (!got || strcmp(got, name) != 0))
        fail_msg("%s: expected '%s', got %s%s%s", addr, name, got ? "'" : "", got ? got : "none",
                 got ? "'" : "");
}

/* ---- tests -------------------------------------------------------------- */

static void test_learn_lookup(void **state)
{
    struct names *t = new_table(16);
    resp("www.example.com");
    add_addr("www.example.com", "192.0.2.1", 3600);
    add_addr("www.example.com", "192.0.2.2", 3600);
    assert_int_equal(names_learn(t, &R, T0), 2);
    assert_int_equal(names_count(t), 2);
    expect_name(t, "192.0.2.1", T0, "www.example.com");
    expect_name(t, "192.0.2.2", T0 + 10 * S, "www.example.com");
    expect_name(t, "192.0.2.3", T0, NULL);
    expect_name(t, "2001:db8::1", T0, NULL);
    const struct names_stats *st = names_stats(t);
    assert_int_equal(st->learned, 2);
    assert_int_equal(st->lookups, 4);
    assert_int_equal(st->hits, 2);
    assert_int_equal(st->evictions, 0);
    assert_int_equal(st->expired, 0);
    assert_int_equal(st->unlinked, 0);
    names_free(t);
    names_free(NULL);
}

/* The name kept is the question (what the client asked for), not the
 * owner at the end of the CNAME chain. */
static void test_cname_head(void **state)
{
    struct names *t = new_table(16);
    resp("api.f5.com");
    add_cname("api.f5.com", "f5.edgekey.net", 3600);
    add_cname("f5.edgekey.net", "e1.a.akamaiedge.net", 20);
    add_addr("e1.a.akamaiedge.net", "192.0.2.10", 20);
    add_addr("e1.a.akamaiedge.net", "2001:db8::10", 20);
    assert_int_equal(names_learn(t, &R, T0), 2);
    expect_name(t, "192.0.2.10", T0 + S, "api.f5.com");
    expect_name(t, "2001:db8::10", T0 + S, "api.f5.com");
    names_free(t);
}

static void test_ttl_expiry(void **state)
{
    struct names *t = new_table(16);
    resp("hour.example");
    add_addr("hour.example", "192.0.2.1", 3600);
    names_learn(t, &R, T0);
    expect_name(t, "192.0.2.1", T0 + 3600 * S - 1, "hour.example");
    expect_name(t, "192.0.2.1", T0 + 3600 * S, NULL); /* live while now < learned + TTL */
    assert_int_equal(names_stats(t)->expired, 1);
    assert_int_equal(names_count(t), 0); /* dropped by the lookup */
    expect_name(t, "192.0.2.1", T0, NULL); /* and gone for good */

    /* Short TTLs are raised to the floor, TTL 0 included. */
    resp("short.example");
    add_addr("short.example", "192.0.2.2", 5);
    add_addr("short.example", "192.0.2.3", 0);
    names_learn(t, &R, T0);
    expect_name(t, "192.0.2.2", T0 + (NAMES_TTL_MIN_DEFAULT - 1) * S, "short.example");
    expect_name(t, "192.0.2.3", T0 + (NAMES_TTL_MIN_DEFAULT - 1) * S, "short.example");
    expect_name(t, "192.0.2.2", T0 + NAMES_TTL_MIN_DEFAULT * S, NULL);
    expect_name(t, "192.0.2.3", T0 + NAMES_TTL_MIN_DEFAULT * S, NULL);

    /* Long TTLs are cut to the ceiling. */
    resp("week.example");
    add_addr("week.example", "192.0.2.4", 7 * 86400);
    add_addr("week.example", "192.0.2.5", UINT32_MAX >> 1);
    names_learn(t, &R, T0);
    expect_name(t, "192.0.2.4", T0 + (NAMES_TTL_MAX_DEFAULT - 1) * S, "week.example");
    expect_name(t, "192.0.2.5", T0 + (NAMES_TTL_MAX_DEFAULT - 1) * S, "week.example");
    expect_name(t, "192.0.2.4", T0 + NAMES_TTL_MAX_DEFAULT * S, NULL);
    expect_name(t, "192.0.2.5", T0 + NAMES_TTL_MAX_DEFAULT * S, NULL);

    /* A configured clamp. */
    struct egr_err err = {{0}};
    assert_int_equal(names_set_ttl(t, 10, 20, &err), EGR_OK);
    resp("clamp.example");
    add_addr("clamp.example", "192.0.2.6", 5);
    add_addr("clamp.example", "192.0.2.7", 15);
    add_addr("clamp.example", "192.0.2.8", 100);
    names_learn(t, &R, T0);
    expect_name(t, "192.0.2.6", T0 + 9 * S, "clamp.example");
    expect_name(t, "192.0.2.6", T0 + 10 * S, NULL);
    expect_name(t, "192.0.2.7", T0 + 14 * S, "clamp.example");
    expect_name(t, "192.0.2.7", T0 + 15 * S, NULL);
    expect_name(t, "192.0.2.8", T0 + 19 * S, "clamp.example");
    expect_name(t, "192.0.2.8", T0 + 20 * S, NULL);
    assert_int_equal(names_set_ttl(t, 0, 0, &err), EGR_OK); /* 0..0: as the packet says, 0 */
    assert_int_equal(names_set_ttl(t, 30, 20, &err), EGR_EINVAL);
    assert_non_null(strstr(err.msg, "[30, 20]"));
    assert_int_equal(names_set_ttl(t, 1, 31 * 86400, &err), EGR_EINVAL);
    names_free(t);
}

static void test_most_recent_wins(void **state)
{
    struct names *t = new_table(16);
    resp("a.example");
    add_addr("a.example", "192.0.2.1", 86400);
    names_learn(t, &R, T0);
    resp("b.example");
    add_addr("b.example", "192.0.2.1", 600);
    names_learn(t, &R, T0 + 10 * S);
    expect_name(t, "192.0.2.1", T0 + 11 * S, "b.example");
    assert_int_equal(names_count(t), 1);
    /* The expiry is the newest answer's, even though it is sooner. */
    expect_name(t, "192.0.2.1", T0 + 610 * S, NULL);
    /* A longer name replaced by a shorter one leaves no tail behind. */
    resp("a-much-longer-name.example");
    add_addr("a-much-longer-name.example", "192.0.2.9", 600);
    names_learn(t, &R, T0);
    resp("x.example");
    add_addr("x.example", "192.0.2.9", 600);
    names_learn(t, &R, T0);
    expect_name(t, "192.0.2.9", T0, "x.example");
    assert_int_equal(names_stats(t)->learned, 4);
    names_free(t);
}

static void test_not_learned(void **state)
{
    struct names *t = new_table(16);
    resp("nx.example");
    add_addr("nx.example", "192.0.2.1", 60);
    R.rcode = DNS_RCODE_NXDOMAIN;
    assert_int_equal(names_learn(t, &R, T0), 0);
    R.rcode = 2; /* SERVFAIL */
    assert_int_equal(names_learn(t, &R, T0), 0);
    R.rcode = 0;
    R.has_question = 0; /* no question: nothing to name the address with */
    assert_int_equal(names_learn(t, &R, T0), 0);
    resp(""); /* the root name */
    add_addr("", "192.0.2.1", 60);
    assert_int_equal(names_learn(t, &R, T0), 0);
    assert_int_equal(names_count(t), 0);

    /* An answer for a name the client did not ask for. */
    resp("asked.example");
    add_addr("other.example", "192.0.2.66", 60);
    add_cname("asked.example", "cdn.example", 60);
    add_addr("cdn.example", "192.0.2.67", 60);
    assert_int_equal(names_learn(t, &R, T0), 1);
    assert_int_equal(names_stats(t)->unlinked, 1);
    expect_name(t, "192.0.2.66", T0, NULL);
    expect_name(t, "192.0.2.67", T0, "asked.example");

    /* A parse that failed part way is learned from its complete answers. */
    resp("partial.example");
    add_addr("partial.example", "192.0.2.70", 60);
    R.error = DNS_E_TRUNCATED;
    assert_int_equal(names_learn(t, &R, T0), 1);
    expect_name(t, "192.0.2.70", T0, "partial.example");
    names_free(t);
}

static void test_capacity_eviction(void **state)
{
    struct names *t = new_table(4);
    const char *addrs[] = {"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5",
                           "192.0.2.6"};
    char qn[32];
    for (unsigned i = 0; i < 4; i++) {
        snprintf(qn, sizeof(qn), "n%u.example", i);
        resp(qn);
        add_addr(qn, addrs[i], 3600);
        names_learn(t, &R, T0 + i * S);
    }
    assert_int_equal(names_count(t), 4);
    /* n1 is learned again: it becomes the most recent. */
    resp("n1.example");
    add_addr("n1.example", addrs[1], 3600);
    names_learn(t, &R, T0 + 10 * S);
    /* Two new addresses push out the two least recently learned: n0, n2. */
    resp("n4.example");
    add_addr("n4.example", addrs[4], 3600);
    add_addr("n4.example", addrs[5], 3600);
    assert_int_equal(names_learn(t, &R, T0 + 11 * S), 2);
    assert_int_equal(names_count(t), 4);
    assert_int_equal(names_stats(t)->evictions, 2);
    assert_int_equal(names_stats(t)->expired, 0);
    expect_name(t, addrs[0], T0 + 12 * S, NULL);
    expect_name(t, addrs[1], T0 + 12 * S, "n1.example");
    expect_name(t, addrs[2], T0 + 12 * S, NULL);
    expect_name(t, addrs[3], T0 + 12 * S, "n3.example");
    expect_name(t, addrs[4], T0 + 12 * S, "n4.example");
    expect_name(t, addrs[5], T0 + 12 * S, "n4.example");
    names_free(t);

    /* A table of one entry. */
    t = new_table(1);
    resp("one.example");
    add_addr("one.example", "192.0.2.1", 60);
    add_addr("one.example", "192.0.2.2", 60);
    assert_int_equal(names_learn(t, &R, T0), 2);
    assert_int_equal(names_count(t), 1);
    expect_name(t, "192.0.2.1", T0, NULL);
    expect_name(t, "192.0.2.2", T0, "one.example");
    names_free(t);
}

/* When full, an expired entry among the oldest goes before a live one. */
static void test_evict_expired_first(void **state)
{
    struct names *t = new_table(4);
    struct egr_err err = {{0}};
    assert_int_equal(names_set_ttl(t, 1, 86400, &err), EGR_OK);
    const uint32_t ttls[] = {86400, 100, 86400, 86400};
    const char *addrs[] = {"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"};
    for (unsigned i = 0; i < 4; i++) {
        resp("e.example");
        add_addr("e.example", addrs[i], ttls[i]);
        names_learn(t, &R, T0);
    }
    resp("new.example");
    add_addr("new.example", "192.0.2.5", 60);
    names_learn(t, &R, T0 + 200 * S); /* the 100 s entry has expired */
    assert_int_equal(names_stats(t)->expired, 1);
    assert_int_equal(names_stats(t)->evictions, 0);
    expect_name(t, addrs[0], T0 + 200 * S, "e.example"); /* oldest, but live: kept */
    expect_name(t, addrs[1], T0 + 200 * S, NULL);
    expect_name(t, "192.0.2.5", T0 + 200 * S, "new.example");
    names_free(t);

    /* An expired entry beyond the NAMES_EVICT_SCAN oldest is not searched
     * for: the oldest goes. */
    uint32_t cap = NAMES_EVICT_SCAN + 4;
    t = new_table(cap);
    assert_int_equal(names_set_ttl(t, 1, 86400, &err), EGR_OK);
    for (uint32_t i = 0; i < cap; i++) {
        char a[32];
        snprintf(a, sizeof(a), "10.0.0.%u", i);
        resp("f.example");
        add_addr("f.example", a, i == NAMES_EVICT_SCAN ? 100 : 86400);
        names_learn(t, &R, T0);
    }
    resp("g.example");
    add_addr("g.example", "10.1.0.0", 60);
    names_learn(t, &R, T0 + 200 * S);
    assert_int_equal(names_stats(t)->evictions, 1);
    assert_int_equal(names_stats(t)->expired, 0);
    expect_name(t, "10.0.0.0", T0 + 200 * S, NULL);
    expect_name(t, "10.0.0.1", T0 + 200 * S, "f.example");
    names_free(t);
}

static void test_ipv6_and_mapped(void **state)
{
    struct names *t = new_table(16);
    resp("v6.example");
    add_addr("v6.example", "2001:db8::1", 600);
    add_addr("v6.example", "::ffff:192.0.2.5", 600);
    assert_int_equal(names_learn(t, &R, T0), 2);
    expect_name(t, "2001:db8::1", T0, "v6.example");
    expect_name(t, "2001:db8::2", T0, NULL);
    expect_name(t, "32.1.13.184", T0, NULL); /* the first 4 bytes of 2001:db8:: as IPv4 */
    /* An IPv4-mapped answer is the IPv4 address, under both spellings. */
    expect_name(t, "192.0.2.5", T0, "v6.example");
    expect_name(t, "::ffff:192.0.2.5", T0, "v6.example");
    expect_name(t, "::192.0.2.5", T0, NULL); /* IPv4-compatible is not mapped */
    /* ... and one key: an A answer for it replaces the entry. */
    resp("v4.example");
    add_addr("v4.example", "192.0.2.5", 600);
    names_learn(t, &R, T0);
    assert_int_equal(names_count(t), 2);
    expect_name(t, "::ffff:192.0.2.5", T0, "v4.example");

    uint8_t a[16] = {0};
    char out[8] = "x";
    assert_int_equal(names_lookup(t, 5, a, T0, out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_equal(names_lookup(t, 0, a, T0, out, sizeof(out)), 0);
    names_free(t);
}

static void test_lookup_buffer(void **state)
{
    struct names *t = new_table(16);
    resp("www.example.com");
    add_addr("www.example.com", "192.0.2.1", 600);
    names_learn(t, &R, T0);
    uint8_t a[4] = {192, 0, 2, 1};
    char out[16];
    memset(out, 'Z', sizeof(out));
    assert_int_equal(names_lookup(t, 4, a, T0, out, 5), 1);
    assert_string_equal(out, "www.");
    assert_int_equal(out[5], 'Z'); /* nothing written past n */
    assert_int_equal(names_lookup(t, 4, a, T0, out, 1), 1);
    assert_string_equal(out, "");
    assert_int_equal(names_lookup(t, 4, a, T0, NULL, 0), 1);

    /* Raw bytes, a 0x00 included, come back as they were. */
    static const char raw[] = "a\0b.<x>\xff";
    resp("placeholder");
    set_name(&R.qname, raw, sizeof(raw) - 1);
    add_addr("placeholder", "192.0.2.2", 600);
    set_name(&R.an[0].owner, raw, sizeof(raw) - 1);
    assert_int_equal(names_learn(t, &R, T0), 1);
    uint8_t b[4] = {192, 0, 2, 2};
    memset(out, 'Z', sizeof(out));
    assert_int_equal(names_lookup(t, 4, b, T0, out, sizeof(out)), 1);
    assert_memory_equal(out, raw, sizeof(raw)); /* the bytes and the NUL after them */

    /* The longest name fits the documented buffer. */
    char longest[DNS_NAME_TEXT_MAX + 1];
    memset(longest, 'q', DNS_NAME_TEXT_MAX);
    longest[DNS_NAME_TEXT_MAX] = '\0';
    resp(longest);
    add_addr(longest, "192.0.2.3", 600);
    names_learn(t, &R, T0);
    expect_name(t, "192.0.2.3", T0, longest);
    names_free(t);
}

static void test_new_bounds(void **state)
{
    struct names *t = (struct names *)&t;
    struct egr_err err = {{0}};
    assert_int_equal(names_new(0, &t, &err), EGR_EINVAL);
    assert_null(t);
    assert_non_null(strstr(err.msg, "max_entries"));
    assert_int_equal(names_new(NAMES_MAX_ENTRIES + 1, &t, &err), EGR_EINVAL);
    assert_null(t);
    assert_true(names_entry_size() >= DNS_NAME_TEXT_MAX + 1 + 16);
    assert_true(names_entry_size() <= 320);
}

/* teams.pcap frame 1799 (UDP payload): outlook.office.com CNAME x5 ->
 * k-0002.k-msedge.net A 13.107.18.11 (TTL 159). */
static const char teams_1799[] =
    "974581800001000600000000076f75746c6f6f6b066f666669636503636f6d0000010001c00c00050001"
    "00000035000c09737562737472617465c014c03000050001000000c50014097375627374726174650"
    "76d732d61636463c014c04800050001000000260008056166642d6bc014c068000500010000002600"
    "28126f75746c6f6f6b2d6f66666963652d636f6d066b2d30303032086b2d6d7365646765036e6574"
    "00c07c00050001000000a00002c08fc08f000100010000009f00040d6b120b";

static void test_real_response(void **state)
{
    uint8_t msg[256];
    size_t n = strlen(teams_1799) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(teams_1799 + 2 * i, "%2x", &v), 1);
        msg[i] = (uint8_t)v;
    }
    assert_int_equal(dns_parse_response(msg, (uint32_t)n, &R), EGR_OK);
    struct names *t = new_table(64);
    assert_int_equal(names_learn(t, &R, T0), 1);
    expect_name(t, "13.107.18.11", T0 + 159 * S, "outlook.office.com");
    /* TTL 159 is under the floor: the entry lives NAMES_TTL_MIN_DEFAULT s. */
    expect_name(t, "13.107.18.11", T0 + (NAMES_TTL_MIN_DEFAULT - 1) * S, "outlook.office.com");
    expect_name(t, "13.107.18.11", T0 + NAMES_TTL_MIN_DEFAULT * S, NULL);
    names_free(t);
}

/* ---- random operations against a reference model ------------------------ */

#define M_CAP 64
#define M_ADDRS 200

struct model_entry {
    uint32_t addr;
    int name;
    uint64_t expire;
};

/* The reference: entries in learn order, oldest first; the same rules as
 * names.h says, written the slow, obvious way. */
static struct model_entry model[M_CAP];
static unsigned model_n;
static uint64_t m_evictions, m_expired;

static void model_remove(unsigned i)
{
    memmove(&model[i], &model[i + 1], (model_n - i - 1) * sizeof(model[0]));
    model_n--;
}

static int model_find(uint32_t addr)
{
    for (unsigned i = 0; i < model_n; i++)
        if (model[i].addr == addr)
            return (int)i;
    return -1;
}

static void model_learn(uint32_t addr, int name, uint64_t expire, uint64_t now)
{
    int i = model_find(addr);
    if (i >= 0) {
        model_remove((unsigned)i);
    } else if (model_n == M_CAP) {
        unsigned victim = 0;
        for (unsigned k = 0; k < model_n && k < NAMES_EVICT_SCAN; k++) {
            if (model[k].expire <= now) {
                victim = k;
                break;
            }
        }
        if (model[victim].expire <= now)
            m_expired++;
        else
            m_evictions++;
        model_remove(victim);
    }
    model[model_n].addr = addr;
    model[model_n].name = name;
    model[model_n].expire = expire;
    model_n++;
}

static int model_lookup(uint32_t addr, uint64_t now)
{
    int i = model_find(addr);
    if (i < 0)
        return -1;
    if (model[i].expire <= now) {
        m_expired++;
        model_remove((unsigned)i);
        return -1;
    }
    return model[i].name;
}

static uint64_t rnd_state = 0x243f6a8885a308d3ull;

static uint32_t rnd(uint32_t n)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return (uint32_t)(rnd_state % n);
}

static void test_random_against_model(void **state)
{
    struct names *t = new_table(M_CAP);
    struct egr_err err = {{0}};
    assert_int_equal(names_set_ttl(t, 30, 900, &err), EGR_OK);
    uint64_t now = T0;
    unsigned hits = 0;
    for (unsigned op = 0; op < 50000; op++) {
        now += rnd(20) * S + rnd(1000);
        uint32_t addr = 0x0a000000u + rnd(M_ADDRS);
        uint8_t a[4] = {(uint8_t)(addr >> 24), (uint8_t)(addr >> 16), (uint8_t)(addr >> 8),
                        (uint8_t)addr};
        if (rnd(3)) {
            int name = (int)rnd(10);
            char qn[32];
            snprintf(qn, sizeof(qn), "host%d.example", name);
            resp(qn);
            unsigned n = 1 + rnd(3);
            for (unsigned k = 0; k < n; k++) {
                char text[32];
                uint32_t ad = k == 0 ? addr : 0x0a000000u + rnd(M_ADDRS);
                snprintf(text, sizeof(text), "10.0.%u.%u", (ad >> 8) & 0xff, ad & 0xff);
                uint32_t ttl = rnd(1200);
                add_addr(qn, text, ttl);
                uint64_t cl = ttl < 30 ? 30 : ttl > 900 ? 900 : ttl;
                model_learn(ad, name, now + cl * S, now);
            }
            assert_int_equal(names_learn(t, &R, now), n);
        } else {
            char out[64];
            int want = model_lookup(addr, now);
            int got = names_lookup(t, 4, a, now, out, sizeof(out));
            if (want < 0) {
                if (got)
                    fail_msg("op %u: 10.0.%u.%u: got '%s', model has none", op,
                             (addr >> 8) & 0xff, addr & 0xff, out);
            } else {
                char exp[32];
                snprintf(exp, sizeof(exp), "host%d.example", want);
                if (!got || strcmp(out, exp) != 0)
                    fail_msg("op %u: 10.0.%u.%u: got %s, model has %s", op, (addr >> 8) & 0xff,
                             addr & 0xff, got ? out : "none", exp);
                hits++;
            }
        }
        assert_int_equal(names_count(t), model_n);
    }
    assert_int_equal(names_stats(t)->evictions, m_evictions);
    assert_int_equal(names_stats(t)->expired, m_expired);
    assert_int_equal(names_stats(t)->hits, hits);
    /* The run must have exercised every path. */
    assert_true(hits > 1000);
    assert_true(m_evictions > 100);
    assert_true(m_expired > 100);
    names_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_learn_lookup),
        cmocka_unit_test(test_cname_head),
        cmocka_unit_test(test_ttl_expiry),
        cmocka_unit_test(test_most_recent_wins),
        cmocka_unit_test(test_not_learned),
        cmocka_unit_test(test_capacity_eviction),
        cmocka_unit_test(test_evict_expired_first),
        cmocka_unit_test(test_ipv6_and_mapped),
        cmocka_unit_test(test_lookup_buffer),
        cmocka_unit_test(test_new_bounds),
        cmocka_unit_test(test_real_response),
        cmocka_unit_test(test_random_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

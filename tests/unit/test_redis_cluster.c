/* test_redis_cluster.c - the cluster's slot routing: CRC16/XMODEM against
 * the specification's test vector, key slots of known keys (values as
 * CLUSTER KEYSLOT of redis-server 7 gives them), the hash-tag rules (first
 * '{', first '}' after it, "{}" is no tag), endpoints and MOVED/ASK
 * replies with IPv4, IPv6 and host names (and malformed ones), and slot
 * maps built from CLUSTER SLOTS replies given as the protocol's own bytes
 * (parsed by hiredis' reader into real reply objects). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egressd/redis-cluster.h"

static unsigned slot_of(const char *k)
{
    return redis_cluster_key_slot(k, strlen(k));
}

static void test_crc16(void **state)
{
    /* The specification's check value. */
    assert_int_equal(redis_cluster_crc16("123456789", 9), 0x31C3);
    assert_int_equal(redis_cluster_crc16("", 0), 0);
    /* A byte with the top bit set goes through the table like any other. */
    const unsigned char hi[] = {0xff, 0x80, 0x00};
    assert_int_equal(redis_cluster_crc16(hi, 3), redis_cluster_crc16(hi, 3));
    assert_int_not_equal(redis_cluster_crc16(hi, 3), redis_cluster_crc16(hi, 2));
}

static void test_key_slot(void **state)
{
    /* CLUSTER KEYSLOT of redis-server 7.0. */
    static const struct {
        const char *key;
        unsigned slot;
    } known[] = {
        {"123456789", 12739}, {"foo", 12182}, {"bar", 5061}, {"hello", 866},
        {"somekey", 11058}, {"{user1000}.following", 3443}, {"user1000", 3443},
        {"foo{}{bar}", 8363}, {"foo{{bar}}zap", 4015}, {"{bar", 4015},
        {"foo{bar}{zap}", 5061}, {"{}", 15257}, {"a{b", 13340}, {"}{x}", 16287},
        {"egress:{edge-1}:flows", 8815}, {"edge-1", 8815}, {"", 0}, {"{{}}", 4092},
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (slot_of(known[i].key) != known[i].slot)
            fail_msg("slot of \"%s\" is %u, want %u", known[i].key, slot_of(known[i].key),
                     known[i].slot);
}

static void test_hash_tags(void **state)
{
    /* Keys sharing a tag share a slot, whatever surrounds it. */
    assert_int_equal(slot_of("egress:{s1}:flows"), slot_of("s1"));
    assert_int_equal(slot_of("egress:{s1}:alerts"), slot_of("egress:{s1}:agg:1:bytes:asset"));
    /* Only the first '{' and the first '}' after it count. */
    assert_int_equal(slot_of("x{a}{b}"), slot_of("a"));
    assert_int_equal(slot_of("x{a{b}c}"), slot_of("a{b"));
    assert_int_equal(slot_of("x}{a}"), slot_of("a"));
    /* "{}" is no tag, and the key is hashed whole (not the next tag). */
    assert_int_equal(slot_of("foo{}{bar}"), redis_cluster_crc16("foo{}{bar}", 10) & 0x3fff);
    assert_int_not_equal(slot_of("foo{}{bar}"), slot_of("bar"));
    /* No closing brace: the whole key. */
    assert_int_equal(slot_of("ab{cd"), redis_cluster_crc16("ab{cd", 5) & 0x3fff);
    /* Binary keys: a NUL inside is a byte like any other. */
    assert_int_equal(redis_cluster_key_slot("{a\0b}x", 6), redis_cluster_crc16("a\0b", 3) & 0x3fff);
    /* Every slot is in range. */
    char k[16];
    for (int i = 0; i < 20000; i++) {
        int n = snprintf(k, sizeof(k), "k%d", i);
        assert_true(redis_cluster_key_slot(k, (size_t)n) < REDIS_CLUSTER_SLOTS);
    }
}

static void test_endpoint(void **state)
{
    char host[REDIS_CLUSTER_HOST_MAX];
    int port = 0;
    assert_int_equal(redis_cluster_endpoint("127.0.0.1:7000", 14, host, &port), EGR_OK);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 7000);
    /* IPv6 as Redis writes it (bare) and in brackets. */
    assert_int_equal(redis_cluster_endpoint("::1:6380", 8, host, &port), EGR_OK);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 6380);
    assert_int_equal(redis_cluster_endpoint("[fd00::2]:65535", 15, host, &port), EGR_OK);
    assert_string_equal(host, "fd00::2");
    assert_int_equal(port, 65535);
    assert_int_equal(redis_cluster_endpoint("redis-1.example:1", 17, host, &port), EGR_OK);
    assert_string_equal(host, "redis-1.example");
    assert_int_equal(port, 1);
    /* An empty host: the node that answered. */
    assert_int_equal(redis_cluster_endpoint(":6379", 5, host, &port), EGR_OK);
    assert_string_equal(host, "");
    static const char *const bad[] = {
        "", "host", "host:", "host:0", "host:65536", "host:12a", "host:-1", "host:+1",
        "[::1:6379", "::1]:6379", "[]x:1", "a b:1", "a\tb:1", "h/x:1", "u@h:1", "host:1234567",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (redis_cluster_endpoint(bad[i], strlen(bad[i]), host, &port) != EGR_EINVAL)
            fail_msg("endpoint \"%s\" accepted", bad[i]);
    char longhost[400];
    memset(longhost, 'a', 300);
    memcpy(longhost + 300, ":1", 3);
    assert_int_equal(redis_cluster_endpoint(longhost, strlen(longhost), host, &port), EGR_EINVAL);
}

static void test_redirect(void **state)
{
    struct redis_redirect r;
    const char *m = "MOVED 3999 127.0.0.1:6381";
    assert_int_equal(redis_cluster_parse_redirect(m, strlen(m), &r), EGR_OK);
    assert_int_equal(r.kind, REDIS_REDIRECT_MOVED);
    assert_int_equal(r.slot, 3999);
    assert_string_equal(r.host, "127.0.0.1");
    assert_int_equal(r.port, 6381);
    m = "ASK 16383 ::1:7002";
    assert_int_equal(redis_cluster_parse_redirect(m, strlen(m), &r), EGR_OK);
    assert_int_equal(r.kind, REDIS_REDIRECT_ASK);
    assert_int_equal(r.slot, 16383);
    assert_string_equal(r.host, "::1");
    assert_int_equal(r.port, 7002);
    m = "MOVED 0 node-3.cluster.internal:6379";
    assert_int_equal(redis_cluster_parse_redirect(m, strlen(m), &r), EGR_OK);
    assert_int_equal(r.slot, 0);
    assert_string_equal(r.host, "node-3.cluster.internal");
    m = "MOVED 12 :7000"; /* unknown endpoint: the same host, this port */
    assert_int_equal(redis_cluster_parse_redirect(m, strlen(m), &r), EGR_OK);
    assert_string_equal(r.host, "");
    assert_int_equal(r.port, 7000);
    static const char *const bad[] = {
        "MOVED", "MOVED ", "MOVED 1", "MOVED 1 ", "MOVED 16384 h:1", "MOVED -1 h:1",
        "MOVED x h:1", "MOVED 1 h", "MOVED 1 h:0", "MOVED  1 h:1", "ASK 1 h:99999",
        "moved 1 h:1", "ERR unknown command", "TRYAGAIN Multiple keys request during rehashing",
        "CLUSTERDOWN The cluster is down", "ASKING", "MOVED 1 h:1 extra",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (redis_cluster_parse_redirect(bad[i], strlen(bad[i]), &r) != EGR_EINVAL)
            fail_msg("redirect \"%s\" accepted", bad[i]);
}

/* ---- slot maps from CLUSTER SLOTS ------------------------------------------ */

/* A reply object from the protocol's bytes (hiredis' own reader). */
static redisReply *resp(const char *bytes)
{
    redisReader *rd = redisReaderCreate();
    assert_non_null(rd);
    assert_int_equal(redisReaderFeed(rd, bytes, strlen(bytes)), REDIS_OK);
    void *rep = NULL;
    assert_int_equal(redisReaderGetReply(rd, &rep), REDIS_OK);
    assert_non_null(rep);
    redisReaderFree(rd);
    return rep;
}

/* A node entry [host, port, id] in the protocol. */
#define NODE(h, hl, p) "*3\r\n$" #hl "\r\n" h "\r\n:" #p "\r\n$3\r\nabc\r\n"

static char *three_masters(void)
{
    /* What a 3-master, 3-replica cluster of `redis-cli --cluster create`
     * answers (hosts, ports, ids shortened; Redis 7 adds a fourth element
     * with metadata, which is ignored). */
    static char buf[2048];
    snprintf(buf, sizeof(buf),
             "*3\r\n"
             "*4\r\n:0\r\n:5460\r\n"
             "*4\r\n$9\r\n127.0.0.1\r\n:7000\r\n$2\r\nid\r\n*0\r\n"
             "*4\r\n$9\r\n127.0.0.1\r\n:7004\r\n$2\r\nid\r\n*0\r\n"
             "*4\r\n:5461\r\n:10922\r\n"
             "*4\r\n$9\r\n127.0.0.1\r\n:7001\r\n$2\r\nid\r\n*2\r\n$8\r\nhostname\r\n$2\r\nn1\r\n"
             "*3\r\n$9\r\n127.0.0.1\r\n:7005\r\n$2\r\nid\r\n"
             "*3\r\n:10923\r\n:16383\r\n"
             "*3\r\n$9\r\n127.0.0.1\r\n:7002\r\n$2\r\nid\r\n");
    return buf;
}

static void test_map_parse(void **state)
{
    struct redis_slot_map *m = calloc(1, sizeof(*m));
    struct egr_err err = {""};
    redisReply *r = resp(three_masters());
    if (redis_cluster_map_parse(r, "seed", m, &err) != EGR_OK)
        fail_msg("%s", err.msg);
    freeReplyObject(r);
    assert_int_equal(m->nnodes, 3);
    assert_int_equal(m->covered, REDIS_CLUSTER_SLOTS);
    assert_int_equal(redis_cluster_map_lookup(m, 0), 0);
    assert_int_equal(redis_cluster_map_lookup(m, 5460), 0);
    assert_int_equal(redis_cluster_map_lookup(m, 5461), 1);
    assert_int_equal(redis_cluster_map_lookup(m, 16383), 2);
    assert_int_equal(redis_cluster_map_lookup(m, 16384), -1);
    assert_string_equal(m->node[1].host, "127.0.0.1");
    assert_int_equal(m->node[1].port, 7001);
    assert_int_equal(m->node[0].replicas, 1);
    assert_int_equal(m->node[1].replicas, 1);
    assert_int_equal(m->node[2].replicas, 0); /* its replica failed: not listed */
    assert_int_equal(redis_cluster_map_find(m, "127.0.0.1", 7002), 2);
    assert_int_equal(redis_cluster_map_find(m, "127.0.0.1", 7003), -1);
    /* A key goes where its slot is. */
    assert_int_equal(redis_cluster_map_lookup(m, slot_of("egress:{edge-1}:flows")), 1);

    /* Refresh after a MOVED: the slot moves, a new master appears, the
     * rest stays. */
    assert_int_equal(redis_cluster_map_move(m, 8815, "127.0.0.1", 7005), 3);
    assert_int_equal(redis_cluster_map_lookup(m, 8815), 3);
    assert_int_equal(redis_cluster_map_lookup(m, 8814), 1);
    assert_int_equal(m->covered, REDIS_CLUSTER_SLOTS);
    assert_int_equal(redis_cluster_map_move(m, 8816, "127.0.0.1", 7005), 3);
    assert_int_equal(m->nnodes, 4);
    assert_int_equal(redis_cluster_map_move(m, 16384, "x", 1), -1);

    /* A full refresh replaces everything: after a failover the replica
     * 7004 serves 0-5460 and has no replica of its own. */
    r = resp("*2\r\n"
             "*3\r\n:0\r\n:5460\r\n" NODE("127.0.0.1", 9, 7004)
             "*4\r\n:5461\r\n:16383\r\n" NODE("127.0.0.1", 9, 7001) NODE("127.0.0.1", 9, 7002));
    assert_int_equal(redis_cluster_map_parse(r, "seed", m, &err), EGR_OK);
    freeReplyObject(r);
    assert_int_equal(m->nnodes, 2);
    assert_int_equal(m->node[redis_cluster_map_lookup(m, 0)].port, 7004);
    assert_int_equal(m->node[redis_cluster_map_lookup(m, 0)].replicas, 0);
    assert_int_equal(m->node[redis_cluster_map_lookup(m, 9000)].port, 7001);
    assert_int_equal(m->node[redis_cluster_map_lookup(m, 9000)].replicas, 1);

    /* One master with two ranges (after resharding) is one node; a gap is
     * a slot without a master; an empty or "?" host is the one asked. */
    r = resp("*3\r\n"
             "*3\r\n:0\r\n:99\r\n*3\r\n$0\r\n\r\n:7000\r\n$1\r\na\r\n"
             "*3\r\n:200\r\n:299\r\n*3\r\n$0\r\n\r\n:7000\r\n$1\r\na\r\n"
             "*3\r\n:300\r\n:300\r\n*3\r\n$1\r\n?\r\n:7001\r\n$1\r\nb\r\n");
    assert_int_equal(redis_cluster_map_parse(r, "10.0.0.9", m, &err), EGR_OK);
    freeReplyObject(r);
    assert_int_equal(m->nnodes, 2);
    assert_int_equal(m->covered, 201);
    assert_string_equal(m->node[0].host, "10.0.0.9");
    assert_int_equal(redis_cluster_map_lookup(m, 150), -1);
    assert_int_equal(redis_cluster_map_lookup(m, 250), 0);
    assert_int_equal(redis_cluster_map_lookup(m, 300), 1);
    assert_string_equal(m->node[1].host, "10.0.0.9");
    /* A null host (RESP2 nil) too. */
    r = resp("*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$-1\r\n:7000\r\n$1\r\na\r\n");
    assert_int_equal(redis_cluster_map_parse(r, "h", m, &err), EGR_OK);
    freeReplyObject(r);
    assert_string_equal(m->node[0].host, "h");
    /* No slots assigned yet (a fresh cluster): an empty map, not an error. */
    r = resp("*0\r\n");
    assert_int_equal(redis_cluster_map_parse(r, "h", m, &err), EGR_OK);
    freeReplyObject(r);
    assert_int_equal(m->covered, 0);
    assert_int_equal(redis_cluster_map_lookup(m, 0), -1);
    free(m);
}

static void bad_map(const char *bytes, const char *want)
{
    struct redis_slot_map *m = calloc(1, sizeof(*m));
    struct egr_err err = {""};
    redisReply *r = resp(bytes);
    if (redis_cluster_map_parse(r, "h", m, &err) != EGR_EINVAL)
        fail_msg("accepted: %s", bytes);
    if (!strstr(err.msg, want) || strncmp(err.msg, "CLUSTER SLOTS: ", 15))
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, want);
    freeReplyObject(r);
    free(m);
}

static void test_map_malformed(void **state)
{
    bad_map("-ERR This instance has cluster support disabled\r\n", "not an array");
    bad_map("$3\r\nabc\r\n", "not an array");
    bad_map("*1\r\n:5\r\n", "range 0 is not");
    bad_map("*1\r\n*2\r\n:0\r\n:1\r\n", "range 0 is not");
    bad_map("*1\r\n*3\r\n:5\r\n:4\r\n" NODE("h", 1, 1), "out of order");
    bad_map("*1\r\n*3\r\n:0\r\n:16384\r\n" NODE("h", 1, 1), "outside 0..16383");
    bad_map("*1\r\n*3\r\n:-1\r\n:3\r\n" NODE("h", 1, 1), "outside");
    bad_map("*1\r\n*3\r\n$1\r\n0\r\n:3\r\n" NODE("h", 1, 1), "out of order");
    bad_map("*1\r\n*3\r\n:0\r\n:3\r\n*3\r\n$1\r\nh\r\n:0\r\n$1\r\na\r\n", "port");
    bad_map("*1\r\n*3\r\n:0\r\n:3\r\n*3\r\n$1\r\nh\r\n:70000\r\n$1\r\na\r\n", "port");
    bad_map("*1\r\n*3\r\n:0\r\n:3\r\n*3\r\n$1\r\nh\r\n$4\r\n7000\r\n$1\r\na\r\n", "port");
    bad_map("*1\r\n*3\r\n:0\r\n:3\r\n*1\r\n$1\r\nh\r\n", "a node is not");
    bad_map("*1\r\n*3\r\n:0\r\n:3\r\n:7\r\n", "a node is not");
    bad_map("*1\r\n*3\r\n:0\r\n:3\r\n*3\r\n:1\r\n:7000\r\n$1\r\na\r\n", "host is not");
    bad_map("*1\r\n*3\r\n:0\r\n:3\r\n*3\r\n$3\r\na\nb\r\n:7000\r\n$1\r\na\r\n", "control byte");
    bad_map("*1\r\n*4\r\n:0\r\n:3\r\n" NODE("h", 1, 1) ":9\r\n", "a node is not");
    bad_map("*2\r\n*3\r\n:0\r\n:3\r\n" NODE("h", 1, 1) "*3\r\n:3\r\n:4\r\n" NODE("g", 1, 2),
            "slot 3 is served twice");
    /* More masters than a map holds. */
    char big[16384], *p = big;
    p += sprintf(p, "*%d\r\n", REDIS_CLUSTER_NODES_MAX + 1);
    for (int i = 0; i <= REDIS_CLUSTER_NODES_MAX; i++)
        p += sprintf(p, "*3\r\n:%d\r\n:%d\r\n*3\r\n$1\r\nh\r\n:%d\r\n$1\r\na\r\n", i, i, 1000 + i);
    bad_map(big, "more than 64 masters");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc16),       cmocka_unit_test(test_key_slot),
        cmocka_unit_test(test_hash_tags),   cmocka_unit_test(test_endpoint),
        cmocka_unit_test(test_redirect),    cmocka_unit_test(test_map_parse),
        cmocka_unit_test(test_map_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

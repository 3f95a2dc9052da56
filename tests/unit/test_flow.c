/* test_flow.c - flow table: keys, initiator logic, every expiry path,
 * eviction at the cap, fragments, ICMP pairing. Packets are pkt_meta values
 * built by hand; classification is off (cls = NULL) so only this module's
 * logic is under test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egressd/flow.h"

#define SEC 1000000ull
#define T0 (1700000000ull * SEC)
#define MAXREC 64

struct sinkrec {
    struct flow_record r[MAXREC];
    unsigned n;
};

static void collect(void *arg, struct flow_record *rec)
{
    struct sinkrec *s = arg;
    assert_true(s->n < MAXREC);
    s->r[s->n++] = *rec;
}

static struct pkt_meta pkt(const char *src, uint16_t sp, const char *dst, uint16_t dp,
                           uint8_t proto, uint8_t flags, uint64_t ts)
{
    struct pkt_meta m;
    memset(&m, 0, sizeof(m));
    if (strchr(src, ':')) {
        m.family = 6;
        assert_int_equal(inet_pton(AF_INET6, src, m.src), 1);
        assert_int_equal(inet_pton(AF_INET6, dst, m.dst), 1);
    } else {
        m.family = 4;
        assert_int_equal(inet_pton(AF_INET, src, m.src), 1);
        assert_int_equal(inet_pton(AF_INET, dst, m.dst), 1);
    }
    m.proto = proto;
    m.sport = sp;
    m.dport = dp;
    m.tcp_flags = flags;
    m.flags = PKT_F_L4;
    m.ts_us = ts;
    m.wire_len = 100;
    m.cap_len = 100;
    return m;
}

static struct flow_table *table(struct sinkrec *s, uint32_t max_flows)
{
    struct flow_config c;
    struct flow_table *ft;
    struct egr_err err;
    flow_config_defaults(&c);
    c.max_flows = max_flows;
    memset(s, 0, sizeof(*s));
    assert_int_equal(flow_table_new(&c, NULL, collect, s, &ft, &err), EGR_OK);
    return ft;
}

static void feed(struct flow_table *ft, struct pkt_meta m)
{
    flow_table_packet(ft, &m);
}

static void assert_ip(const uint8_t *a, const char *text)
{
    uint8_t b[16] = {0};
    if (strchr(text, ':'))
        assert_int_equal(inet_pton(AF_INET6, text, b), 1);
    else
        assert_int_equal(inet_pton(AF_INET, text, b), 1);
    assert_memory_equal(a, b, 16);
}

static void test_syn_initiator(void **state)
{
    struct sinkrec s;
    struct flow_table *ft = table(&s, 100);
    feed(ft, pkt("10.0.0.1", 40000, "8.8.8.8", 443, 6, 0x02, T0));
    feed(ft, pkt("8.8.8.8", 443, "10.0.0.1", 40000, 6, 0x12, T0 + 1000));
    feed(ft, pkt("10.0.0.1", 40000, "8.8.8.8", 443, 6, 0x10, T0 + 2000));
    feed(ft, pkt("10.0.0.1", 40000, "8.8.8.8", 443, 6, 0x18, T0 + 3000));
    assert_int_equal(s.n, 0);
    flow_table_flush(ft, END_SHUTDOWN);
    assert_int_equal(s.n, 1);
    struct flow_record *r = &s.r[0];
    assert_ip(r->src_ip, "10.0.0.1");
    assert_ip(r->dst_ip, "8.8.8.8");
    assert_int_equal(r->src_port, 40000);
    assert_int_equal(r->dst_port, 443);
    assert_int_equal(r->pkts_toserver, 3);
    assert_int_equal(r->pkts_toclient, 1);
    assert_int_equal(r->bytes_toserver, 300);
    assert_int_equal(r->tcp_flags_ts, 0x1a);
    assert_int_equal(r->tcp_flags_tc, 0x12);
    assert_int_equal(r->init_how, INIT_SYN);
    assert_int_equal(r->state, FST_ESTABLISHED);
    assert_int_equal(r->reason, END_SHUTDOWN);
    assert_int_equal(r->first_us, T0);
    assert_int_equal(r->last_us, T0 + 3000);
    assert_int_equal(flow_table_stats(ft)->active, 0);
    flow_table_free(ft);
}

static void test_synack_first(void **state)
{
    struct sinkrec s;
    struct flow_table *ft = table(&s, 100);
    /* The SYN was lost: the SYN-ACK's receiver opened the connection, even
     * though it uses the lower port. */
    feed(ft, pkt("8.8.8.8", 50000, "10.0.0.1", 80, 6, 0x12, T0));
    flow_table_flush(ft, END_SHUTDOWN);
    assert_int_equal(s.n, 1);
    assert_ip(s.r[0].src_ip, "10.0.0.1");
    assert_int_equal(s.r[0].src_port, 80);
    assert_int_equal(s.r[0].init_how, INIT_SYNACK);
    assert_int_equal(s.r[0].pkts_toclient, 1);
    flow_table_free(ft);
}

static void test_midstream_port_heuristic(void **state)
{
    struct sinkrec s;
    struct flow_table *ft = table(&s, 100);
    /* Mid-stream: the server (port 22) speaks first. */
    feed(ft, pkt("10.20.1.10", 22, "198.51.100.7", 51000, 6, 0x18, T0));
    feed(ft, pkt("198.51.100.7", 51000, "10.20.1.10", 22, 6, 0x10, T0 + 10));
    /* Both ports high and unknown: first packet decides. */
    feed(ft, pkt("10.0.0.2", 40001, "10.0.0.3", 40002, 17, 0, T0 + 20));
    flow_table_flush(ft, END_SHUTDOWN);
    assert_int_equal(s.n, 2);
    for (unsigned i = 0; i < 2; i++) {
        if (s.r[i].proto == 6) {
            assert_ip(s.r[i].src_ip, "198.51.100.7");
            assert_int_equal(s.r[i].dst_port, 22);
            assert_int_equal(s.r[i].init_how, INIT_PORT);
            assert_int_equal(s.r[i].pkts_toserver, 1);
            assert_int_equal(s.r[i].pkts_toclient, 1);
        } else {
            assert_ip(s.r[i].src_ip, "10.0.0.2");
            assert_int_equal(s.r[i].init_how, INIT_FIRST);
        }
    }
    flow_table_free(ft);
}

static void test_idle_timeouts(void **state)
{
    struct sinkrec s;
    struct flow_table *ft = table(&s, 100);
    feed(ft, pkt("10.0.0.1", 5353, "8.8.8.8", 53, 17, 0, T0));
    feed(ft, pkt("10.0.0.1", 1, "9.9.9.9", 2, 47 /* other */, 0, T0));
    /* default udp 180 s, other 60 s: at T0+61 only "other" is due */
    feed(ft, pkt("10.0.0.9", 1000, "10.0.0.8", 2000, 17, 0, T0 + 61 * SEC));
    assert_int_equal(s.n, 1);
    assert_int_equal(s.r[0].proto, 47);
    assert_int_equal(s.r[0].reason, END_TIMEOUT);
    assert_int_equal(s.r[0].state, FST_NEW);
    /* exactly at last + 180 s the UDP flow expires */
    flow_table_expire(ft, T0 + 180 * SEC - 1);
    assert_int_equal(s.n, 1);
    flow_table_expire(ft, T0 + 180 * SEC);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.r[1].proto, 17);
    assert_int_equal(s.r[1].dst_port, 53);
    assert_int_equal(s.r[1].reason, END_TIMEOUT);
    assert_int_equal(flow_table_stats(ft)->records[END_TIMEOUT], 2);
    flow_table_free(ft);
}

static void test_tcp_new_vs_established_timeout(void **state)
{
    struct sinkrec s;
    struct flow_table *ft = table(&s, 100);
    feed(ft, pkt("10.0.0.1", 40000, "8.8.8.8", 443, 6, 0x02, T0)); /* never answered */
    feed(ft, pkt("10.0.0.1", 40001, "8.8.4.4", 443, 6, 0x02, T0));
    feed(ft, pkt("8.8.4.4", 443, "10.0.0.1", 40001, 6, 0x12, T0 + 1));
    flow_table_expire(ft, T0 + 60 * SEC);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.r[0].dst_port, 443);
    assert_ip(s.r[0].dst_ip, "8.8.8.8");
    flow_table_expire(ft, T0 + 600 * SEC + 1);
    assert_int_equal(s.n, 2);
    assert_ip(s.r[1].dst_ip, "8.8.4.4");
    assert_int_equal(s.r[1].state, FST_ESTABLISHED);
    flow_table_free(ft);
}

static void test_tcp_close_fin_rst_and_reuse(void **state)
{
    struct sinkrec s;
    struct flow_table *ft = table(&s, 100);
    /* FIN both ways: closed, emitted after the 10 s linger with trailing ACK */
    feed(ft, pkt("10.0.0.1", 40000, "8.8.8.8", 80, 6, 0x02, T0));
    feed(ft, pkt("8.8.8.8", 80, "10.0.0.1", 40000, 6, 0x12, T0 + 1));
    feed(ft, pkt("10.0.0.1", 40000, "8.8.8.8", 80, 6, 0x11, T0 + 2));
    feed(ft, pkt("8.8.8.8", 80, "10.0.0.1", 40000, 6, 0x11, T0 + 3));
    feed(ft, pkt("10.0.0.1", 40000, "8.8.8.8", 80, 6, 0x10, T0 + 4));
    /* RST closes immediately (state), emitted after the linger too */
    feed(ft, pkt("10.0.0.1", 40001, "8.8.8.8", 80, 6, 0x02, T0 + 5));
    feed(ft, pkt("8.8.8.8", 80, "10.0.0.1", 40001, 6, 0x14, T0 + 6));
    assert_int_equal(s.n, 0);
    flow_table_expire(ft, T0 + 4 + 10 * SEC);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.r[0].reason, END_CLOSED);
    assert_int_equal(s.r[0].state, FST_CLOSED);
    assert_int_equal(s.r[0].pkts_toserver, 3);
    flow_table_expire(ft, T0 + 6 + 10 * SEC);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.r[1].src_port, 40001);
    assert_int_equal(s.r[1].reason, END_CLOSED);

    /* Port reuse: a new SYN on a closed flow ends it and starts another. */
    feed(ft, pkt("10.0.0.1", 40002, "8.8.8.8", 80, 6, 0x02, T0 + 30 * SEC));
    feed(ft, pkt("8.8.8.8", 80, "10.0.0.1", 40002, 6, 0x04, T0 + 30 * SEC + 1));
    feed(ft, pkt("10.0.0.1", 40002, "8.8.8.8", 80, 6, 0x02, T0 + 31 * SEC));
    assert_int_equal(s.n, 3);
    assert_int_equal(s.r[2].reason, END_CLOSED);
    assert_int_equal(s.r[2].pkts_toserver, 1);
    flow_table_flush(ft, END_SHUTDOWN);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.r[3].src_port, 40002);
    assert_int_equal(s.r[3].pkts_toserver, 1);
    assert_int_equal(s.r[3].state, FST_NEW);
    assert_true(s.r[3].flow_id != s.r[2].flow_id);
    flow_table_free(ft);
}

static void test_active_timeout_interim(void **state)
{
    struct sinkrec s;
    struct flow_config c;
    struct flow_table *ft;
    struct egr_err err;
    flow_config_defaults(&c);
    c.active_timeout = 60;
    memset(&s, 0, sizeof(s));
    assert_int_equal(flow_table_new(&c, NULL, collect, &s, &ft, &err), EGR_OK);
    /* a packet every 10 s for 150 s, each way */
    for (unsigned i = 0; i <= 15; i++) {
        feed(ft, pkt("10.0.0.1", 40000, "8.8.8.8", 22, 6, 0x10, T0 + i * 10 * SEC));
        feed(ft, pkt("8.8.8.8", 22, "10.0.0.1", 40000, 6, 0x10, T0 + i * 10 * SEC + 5));
    }
    flow_table_flush(ft, END_SHUTDOWN);
    assert_int_equal(s.n, 3); /* interims at 60 s and 120 s, then final */
    uint64_t pk = 0;
    for (unsigned i = 0; i < s.n; i++) {
        assert_int_equal(s.r[i].seq, i);
        assert_int_equal(s.r[i].flow_id, s.r[0].flow_id);
        assert_int_equal(s.r[i].first_us, T0);
        pk += s.r[i].pkts_toserver + s.r[i].pkts_toclient;
    }
    assert_int_equal(s.r[0].reason, END_ACTIVE);
    assert_int_equal(s.r[1].reason, END_ACTIVE);
    assert_int_equal(s.r[2].reason, END_SHUTDOWN);
    assert_int_equal(pk, 32); /* deltas add up to the whole flow */
    flow_table_free(ft);
}

static void test_eviction_at_cap(void **state)
{
    struct sinkrec s;
    struct flow_table *ft = table(&s, 4);
    feed(ft, pkt("10.0.0.1", 1001, "8.8.8.8", 53, 17, 0, T0 + 1));
    feed(ft, pkt("10.0.0.1", 1002, "8.8.8.8", 53, 17, 0, T0 + 2));
    feed(ft, pkt("10.0.0.1", 1003, "8.8.8.8", 53, 17, 0, T0 + 3));
    feed(ft, pkt("10.0.0.1", 1004, "8.8.8.8", 53, 17, 0, T0 + 4));
    feed(ft, pkt("10.0.0.1", 1001, "8.8.8.8", 53, 17, 0, T0 + 5)); /* refresh 1001 */
    assert_int_equal(s.n, 0);
    feed(ft, pkt("10.0.0.1", 1005, "8.8.8.8", 53, 17, 0, T0 + 6));
    assert_int_equal(s.n, 1);
    assert_int_equal(s.r[0].reason, END_EVICTED);
    assert_int_equal(s.r[0].src_port, 1002); /* least recently seen */
    assert_int_equal(flow_table_stats(ft)->active, 4);
    assert_int_equal(flow_table_stats(ft)->records[END_EVICTED], 1);
    flow_table_flush(ft, END_SHUTDOWN);
    assert_int_equal(s.n, 5);
    flow_table_free(ft);
}

static void test_fragments(void **state)
{
    struct sinkrec s;
    struct flow_table *ft = table(&s, 100);
    struct pkt_meta first = pkt("10.0.0.1", 5000, "8.8.8.8", 53, 17, 0, T0);
    first.flags |= PKT_F_FRAG | PKT_F_FRAG_FIRST;
    first.frag_id = 0x1234;
    struct pkt_meta rest = pkt("10.0.0.1", 0, "8.8.8.8", 0, 17, 0, T0 + 1);
    rest.flags = PKT_F_FRAG;
    rest.frag_id = 0x1234;
    struct pkt_meta orphan = rest;
    orphan.frag_id = 0x9999;
    feed(ft, first);
    feed(ft, rest);
    feed(ft, orphan);
    flow_table_flush(ft, END_SHUTDOWN);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.r[0].pkts_toserver, 2);
    assert_int_equal(s.r[0].dst_port, 53);
    assert_int_equal(flow_table_stats(ft)->frag_orphans, 1);
    flow_table_free(ft);
}

static void test_icmp_pairing(void **state)
{
    struct sinkrec s;
    struct flow_table *ft = table(&s, 100);
    feed(ft, pkt("192.168.0.89", 8, "192.168.0.1", 0, 1, 0, T0));     /* echo request */
    feed(ft, pkt("192.168.0.1", 0, "192.168.0.89", 0, 1, 0, T0 + 1)); /* echo reply */
    feed(ft, pkt("10.0.0.1", 11, "10.0.0.2", 0, 1, 0, T0 + 2));       /* time exceeded */
    /* an echo reply seen first: the requester is the initiator */
    feed(ft, pkt("fe80::1", 129, "fe80::2", 0, 58, 0, T0 + 3));
    flow_table_flush(ft, END_SHUTDOWN);
    assert_int_equal(s.n, 3);
    for (unsigned i = 0; i < s.n; i++) {
        const struct flow_record *r = &s.r[i];
        if (r->proto == 58) {
            assert_ip(r->src_ip, "fe80::2");
            assert_int_equal(r->src_port, 128);
            assert_int_equal(r->init_how, INIT_PORT);
            assert_int_equal(r->pkts_toclient, 1);
        } else if (r->src_port == 8) {
            assert_int_equal(r->pkts_toserver, 1);
            assert_int_equal(r->pkts_toclient, 1);
            /* Community ID spec baseline for this ICMP echo pair */
            assert_string_equal(r->community_id, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=");
        } else {
            assert_int_equal(r->src_port, 11);
            assert_int_equal(r->pkts_toserver, 1);
        }
    }
    flow_table_free(ft);
}

static void test_key_separation(void **state)
{
    struct sinkrec s;
    struct flow_table *ft = table(&s, 100);
    /* IPv6 addresses that differ only in the last bits, and the same tuple
     * on two VLANs, are four flows. */
    feed(ft, pkt("2001:db8::1", 1000, "2001:db8::2", 80, 6, 0x02, T0));
    feed(ft, pkt("2001:db8::1:0:0:1", 1000, "2001:db8::2", 80, 6, 0x02, T0));
    struct pkt_meta v = pkt("10.0.0.1", 1000, "10.0.0.2", 80, 6, 0x02, T0);
    v.vlan[0] = 10;
    v.vlan_count = 1;
    feed(ft, v);
    v.vlan[0] = 20;
    feed(ft, v);
    assert_int_equal(flow_table_stats(ft)->flows_created, 4);
    flow_table_flush(ft, END_SHUTDOWN);
    assert_int_equal(s.n, 4);
    flow_table_free(ft);
}

static void test_flow_id_deterministic(void **state)
{
    struct sinkrec a, b;
    struct flow_table *fa = table(&a, 10), *fb = table(&b, 10);
    feed(fa, pkt("10.0.0.1", 1, "10.0.0.2", 2, 17, 0, T0));
    feed(fb, pkt("10.0.0.1", 1, "10.0.0.2", 2, 17, 0, T0));
    feed(fb, pkt("10.0.0.1", 1, "10.0.0.2", 2, 17, 0, T0 + 200 * SEC)); /* new flow */
    flow_table_flush(fa, END_SHUTDOWN);
    flow_table_flush(fb, END_SHUTDOWN);
    assert_int_equal(a.n, 1);
    assert_int_equal(b.n, 2);
    assert_int_equal(a.r[0].flow_id, b.r[0].flow_id);
    assert_true(b.r[1].flow_id != b.r[0].flow_id);
    assert_true(a.r[0].flow_id < (1ull << 51));
    flow_table_free(fa);
    flow_table_free(fb);
}

static void test_bad_config(void **state)
{
    struct flow_config c;
    struct flow_table *ft = NULL;
    struct egr_err err;
    flow_config_defaults(&c);
    c.max_flows = 0;
    assert_int_equal(flow_table_new(&c, NULL, collect, NULL, &ft, &err), EGR_EINVAL);
    assert_non_null(strstr(err.msg, "max_flows"));
}

/* Time that steps back (a merged capture): the older flow is due first and
 * must end at the first expiry after it is due, not wait behind the newer
 * flow in front of it on the idle list. */
static void test_expiry_time_steps_back(void **state)
{
    struct sinkrec s;
    struct flow_table *ft = table(&s, 100);
    feed(ft, pkt("10.0.0.1", 1000, "8.8.8.8", 53, 17, 0, T0 + 100 * SEC));
    feed(ft, pkt("10.0.0.2", 1000, "8.8.8.8", 53, 17, 0, T0 + 50 * SEC));
    /* udp timeout 180 s: the second flow is due at 230 s, the first at 280 s. */
    flow_table_expire(ft, T0 + 231 * SEC);
    assert_int_equal(s.n, 1);
    assert_ip(s.r[0].src_ip, "10.0.0.2");
    assert_int_equal(s.r[0].reason, END_TIMEOUT);
    assert_int_equal(s.r[0].emit_us, T0 + 231 * SEC);
    flow_table_expire(ft, T0 + 281 * SEC);
    assert_int_equal(s.n, 2);
    assert_ip(s.r[1].src_ip, "10.0.0.1");
    flow_table_free(ft);
}

struct counter {
    unsigned records;
    uint64_t packets;
};

static void count(void *arg, struct flow_record *rec)
{
    struct counter *c = arg;
    c->records++;
    c->packets += rec->pkts_toserver + rec->pkts_toclient;
}

/* The bucket array starts small and doubles as flows pile up: every flow
 * must still be found after each rehash. */
static void test_buckets_grow(void **state)
{
    enum { N = 20000 };
    struct flow_config c;
    struct flow_table *ft;
    struct egr_err err;
    struct counter k = {0, 0};
    flow_config_defaults(&c);
    assert_int_equal(flow_table_new(&c, NULL, count, &k, &ft, &err), EGR_OK);
    for (unsigned round = 0; round < 2; round++) {
        for (unsigned i = 0; i < N; i++) {
            char src[32];
            snprintf(src, sizeof(src), "10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
            struct pkt_meta m = pkt(src, (uint16_t)(1024 + i % 60000), "8.8.8.8", 53, 17, 0,
                                    T0 + round * SEC + i);
            flow_table_packet(ft, &m);
        }
    }
    assert_int_equal(flow_table_stats(ft)->flows_created, N);
    assert_int_equal(flow_table_stats(ft)->active, N);
    flow_table_flush(ft, END_SHUTDOWN);
    assert_int_equal(k.records, N);
    assert_int_equal(k.packets, 2 * N);
    flow_table_free(ft);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syn_initiator),
        cmocka_unit_test(test_synack_first),
        cmocka_unit_test(test_midstream_port_heuristic),
        cmocka_unit_test(test_idle_timeouts),
        cmocka_unit_test(test_tcp_new_vs_established_timeout),
        cmocka_unit_test(test_tcp_close_fin_rst_and_reuse),
        cmocka_unit_test(test_active_timeout_interim),
        cmocka_unit_test(test_eviction_at_cap),
        cmocka_unit_test(test_fragments),
        cmocka_unit_test(test_icmp_pairing),
        cmocka_unit_test(test_key_separation),
        cmocka_unit_test(test_flow_id_deterministic),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_expiry_time_steps_back),
        cmocka_unit_test(test_buckets_grow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_redis_schema.c - the Redis commands of each record: the flow stream
 * entry field by field (empty fields left out, ICMP without ports), hostile
 * bytes passed as exact binary arguments, the per-minute aggregates summed
 * in memory (egress only, flows counted at a flow's first record, bytes
 * summed, one EXPIRE per key after its updates, records split at the
 * command limit, a full table refusing whole records),
 * the alert stream entry and its EVE JSON on the live channel, the
 * heartbeat, the per-sensor layout (every key of a sensor behind its hash
 * tag, so in one cluster slot; the sensor set and the live channel global),
 * and the encoding: every truncation and corruption of a record is refused
 * by the decoder, limits are enforced. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egressd/eve.h"
#include "egressd/redis-agg.h"
#include "egressd/redis-cluster.h"
#include "egressd/redis-schema.h"
#include "json_check.h"

static const struct redis_schema schema = {
    .prefix = "egress",
    .sensor = "s1",
    .flows_maxlen = 100000,
    .alerts_maxlen = 1000000,
    .aggregate_ttl = 7200,
};

/* 2023-11-14T22:13:20Z */
#define T0 1700000000000000ull

static void flow(struct flow_record *r)
{
    memset(r, 0, sizeof(*r));
    r->flow_id = 1234567890123ull;
    r->first_us = T0 + 500000;
    r->last_us = T0 + 2750000;
    r->emit_us = T0 + 62000000; /* bucket 28333334 */
    r->family = 4;
    r->proto = 6;
    memcpy(r->src_ip, (uint8_t[]){10, 0, 0, 5}, 4);
    memcpy(r->dst_ip, (uint8_t[]){192, 0, 2, 7}, 4);
    r->src_port = 40000;
    r->dst_port = 443;
    r->pkts_toserver = 11;
    r->pkts_toclient = 9;
    r->bytes_toserver = 1500;
    r->bytes_toclient = 9000;
    r->reason = END_CLOSED;
    strcpy(r->community_id, "1:abc=");
    strcpy(r->ndpi.proto, "TLS.Google");
    strcpy(r->ndpi.master, "TLS");
    strcpy(r->ndpi.app, "Google");
    strcpy(r->ndpi.tls_sni, "www.google.com");
    strcpy(r->ndpi.tls_ja3c, "0123456789abcdef0123456789abcdef");
    r->enrich.direction = DIR_EGRESS;
    r->enrich.dest_name_src = NAME_SNI;
    strcpy(r->enrich.dest_name, "www.google.com");
    r->enrich.has_country = r->enrich.has_asn = r->enrich.has_org = 1;
    strcpy(r->enrich.country, "US");
    r->enrich.asn = 15169;
    strcpy(r->enrich.as_org, "Google LLC");
    strcpy(r->enrich.asset, "laptop-7");
    strcpy(r->enrich.role, "workstation");
}

/* The decoded commands of a record, for comparison. */
struct cmds {
    unsigned n;
    unsigned argc[RCMD_MAX_CMDS];
    const char *argv[RCMD_MAX_CMDS][RCMD_MAX_ARGS];
    size_t len[RCMD_MAX_CMDS][RCMD_MAX_ARGS];
};

static void decode(const struct rcmd_buf *b, struct cmds *c, unsigned want_kind)
{
    struct rcmd_iter it;
    unsigned kind, ncmd;
    assert_true(rcmd_ok(b));
    assert_int_equal(rcmd_iter_init(&it, b->buf, b->len, &kind, &ncmd), EGR_OK);
    assert_int_equal(kind, want_kind);
    memset(c, 0, sizeof(*c));
    while (rcmd_next(&it, c->argv[c->n], c->len[c->n], &c->argc[c->n]) == 1)
        c->n++;
    assert_int_equal(c->n, ncmd);
}

static int arg_is(const struct cmds *c, unsigned i, unsigned a, const char *want)
{
    return a < c->argc[i] && c->len[i][a] == strlen(want) &&
           !memcmp(c->argv[i][a], want, c->len[i][a]);
}

/* Command i is exactly the given text arguments (NULL-terminated). */
static void expect_cmd(const struct cmds *c, unsigned i, ...)
{
    va_list ap;
    va_start(ap, i);
    unsigned a = 0;
    for (const char *w; (w = va_arg(ap, const char *)); a++)
        if (!arg_is(c, i, a, w))
            fail_msg("command %u argument %u: got \"%.*s\", want \"%s\"", i, a,
                     a < c->argc[i] ? (int)c->len[i][a] : 0, a < c->argc[i] ? c->argv[i][a] : "",
                     w);
    va_end(ap);
    if (a != c->argc[i])
        fail_msg("command %u has %u arguments, want %u", i, c->argc[i], a);
}

/* The value of field `name` in stream command i (after the ID "*"), or
 * NULL; n gets its length. */
static const char *field(const struct cmds *c, unsigned i, const char *name, size_t *n)
{
    unsigned a = 2;
    while (a < c->argc[i] && !arg_is(c, i, a, "*"))
        a++;
    for (a++; a + 1 < c->argc[i]; a += 2)
        if (arg_is(c, i, a, name)) {
            *n = c->len[i][a + 1];
            return c->argv[i][a + 1];
        }
    return NULL;
}

static void expect_field(const struct cmds *c, unsigned i, const char *name, const char *want)
{
    size_t n = 0;
    const char *v = field(c, i, name, &n);
    if (!v)
        fail_msg("field %s missing", name);
    if (n != strlen(want) || memcmp(v, want, n))
        fail_msg("field %s: got \"%.*s\", want \"%s\"", name, (int)n, v, want);
}

static void expect_no_field(const struct cmds *c, unsigned i, const char *name)
{
    size_t n;
    if (field(c, i, name, &n))
        fail_msg("field %s present", name);
}

/* The stream entry of flow()'s record, in b (initialised here). */
static void flow_entry(struct rcmd_buf *b)
{
    struct flow_record r;
    flow(&r);
    rcmd_init(b);
    redis_schema_flow(&schema, &r, b);
    assert_true(rcmd_ok(b));
}

static void test_flow_entry(void **state)
{
    struct flow_record r;
    flow(&r);
    struct rcmd_buf b;
    rcmd_init(&b);
    redis_schema_flow(&schema, &r, &b);
    struct cmds c;
    decode(&b, &c, RCMD_FLOW);
    /* The whole entry, in order. */
    expect_cmd(&c, 0, "XADD", "egress:flows", "MAXLEN", "~", "100000", "*", "sensor", "s1",
               "ts", "2023-11-14T22:14:22.000000+0000", "flow_id", "1234567890123", "src_ip",
               "10.0.0.5", "src_port", "40000", "dest_ip", "192.0.2.7", "dest_port", "443",
               "proto", "TCP", "app_proto", "tls", "ndpi_proto", "TLS.Google", "community_id",
               "1:abc=", "direction", "egress", "dest_name", "www.google.com",
               "dest_name_source", "sni", "asset", "laptop-7", "role", "workstation", "country",
               "US", "asn", "15169", "as_org", "Google LLC", "pkts_toserver", "11",
               "pkts_toclient", "9", "bytes_toserver", "1500", "bytes_toclient", "9000", "start",
               "2023-11-14T22:13:20.500000+0000", "end", "2023-11-14T22:13:22.750000+0000",
               "reason", "closed", "alerted", "false", "tls_sni", "www.google.com", "ja3c",
               "0123456789abcdef0123456789abcdef", NULL);

    /* Empty values are left out; ICMP has type and code, no ports; an
     * interim record says its seq; maxlen 0 does not trim. */
    r.proto = 1;
    r.src_port = 8;
    r.dst_port = 0;
    r.ndpi.tls_sni[0] = r.ndpi.tls_ja3c[0] = r.ndpi.proto[0] = '\0';
    r.ndpi.master[0] = r.ndpi.app[0] = '\0';
    r.enrich.dest_name[0] = r.enrich.asset[0] = r.enrich.role[0] = '\0';
    r.enrich.has_country = r.enrich.has_asn = r.enrich.has_org = 0;
    r.enrich.direction = DIR_UNKNOWN;
    r.community_id[0] = '\0';
    r.alerted = 1;
    r.seq = 3;
    r.reason = END_ACTIVE;
    struct redis_schema nolimit = schema;
    nolimit.flows_maxlen = 0;
    redis_schema_flow(&nolimit, &r, &b);
    decode(&b, &c, RCMD_FLOW);
    assert_true(arg_is(&c, 0, 0, "XADD") && arg_is(&c, 0, 1, "egress:flows") &&
                arg_is(&c, 0, 2, "*"));
    expect_field(&c, 0, "proto", "ICMP");
    expect_field(&c, 0, "icmp_type", "8");
    expect_field(&c, 0, "icmp_code", "0");
    expect_field(&c, 0, "app_proto", "failed");
    expect_field(&c, 0, "alerted", "true");
    expect_field(&c, 0, "seq", "3");
    expect_field(&c, 0, "reason", "active_timeout");
    static const char *const absent[] = {
        "src_port", "dest_port", "ndpi_proto", "community_id", "direction", "dest_name",
        "dest_name_source", "asset", "role", "country", "asn", "as_org", "tls_sni",
        "http_host", "dns_query", "ja3c",
    };
    for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
        expect_no_field(&c, 0, absent[i]);

    /* IPv6 addresses as EVE writes them. */
    flow(&r);
    r.family = 6;
    memset(r.src_ip, 0, 16);
    r.src_ip[0] = 0x20;
    r.src_ip[1] = 0x01;
    r.src_ip[2] = 0x0d;
    r.src_ip[3] = 0xb8;
    r.src_ip[15] = 1;
    redis_schema_flow(&schema, &r, &b);
    decode(&b, &c, RCMD_FLOW);
    expect_field(&c, 0, "src_ip", "2001:db8::1");
    rcmd_free(&b);
}

static const char evil_name[] = "a\r\n*3\r\n$3\r\nDEL\r\n$1\r\nx\xff\xc0\xaf<script>\x01";

static void find_evil_member(void *arg, struct rcmd_buf *b)
{
    struct cmds c;
    decode(b, &c, RCMD_AGG);
    for (unsigned i = 0; i < c.n; i++)
        if (arg_is(&c, i, 0, "ZINCRBY") && arg_is(&c, i, 3, evil_name))
            ++*(int *)arg;
}

/* Names from the wire are bytes: the protocol's own delimiters, a NUL-free
 * run of invalid UTF-8 and markup arrive as the exact argument. */
static void test_hostile_bytes(void **state)
{
    const char *evil = evil_name;
    struct flow_record r;
    flow(&r);
    strcpy(r.enrich.dest_name, evil);
    strcpy(r.ndpi.http_host, evil);
    strcpy(r.ndpi.dns_query, "q\r\n");
    /* A name filling its array without a terminator is cut at the array. */
    memset(r.ndpi.tls_sni, 'A', sizeof(r.ndpi.tls_sni));
    struct rcmd_buf b;
    rcmd_init(&b);
    redis_schema_flow(&schema, &r, &b);
    struct cmds c;
    decode(&b, &c, RCMD_FLOW);
    expect_field(&c, 0, "dest_name", evil);
    expect_field(&c, 0, "http_host", evil);
    expect_field(&c, 0, "dns_query", "q\r\n");
    size_t n;
    const char *sni = field(&c, 0, "tls_sni", &n);
    assert_non_null(sni);
    assert_int_equal(n, sizeof(r.ndpi.tls_sni));
    rcmd_free(&b);

    /* The same bytes name the top-destination member. */
    struct redis_agg *a;
    struct egr_err err;
    assert_int_equal(redis_agg_new(64, &a, &err), EGR_OK);
    assert_int_equal(redis_agg_add(a, &r), 1);
    int found = 0;
    struct rcmd_buf out;
    rcmd_init(&out);
    redis_agg_flush(a, &schema, &out, find_evil_member, &found);
    assert_int_equal(found, 1);
    rcmd_free(&out);
    redis_agg_free(a);
}

/* ---- aggregates (redis-agg.h) ------------------------------------------- */

/* Every command of every record a flush emits, as "ARG|ARG|..." with the
 * exact bytes of each argument. */
struct collected {
    unsigned n, records, max_per_record;
    char *cmd[4096];
    size_t len[4096];
};

static void collect(void *arg, struct rcmd_buf *b)
{
    struct collected *col = arg;
    struct cmds c;
    decode(b, &c, RCMD_AGG);
    col->records++;
    if (c.n > col->max_per_record)
        col->max_per_record = c.n;
    for (unsigned i = 0; i < c.n; i++) {
        size_t total = 0;
        for (unsigned a = 0; a < c.argc[i]; a++)
            total += c.len[i][a] + 1;
        char *t = malloc(total + 1), *p = t;
        assert_non_null(t);
        for (unsigned a = 0; a < c.argc[i]; a++) {
            if (a)
                *p++ = '|';
            memcpy(p, c.argv[i][a], c.len[i][a]);
            p += c.len[i][a];
        }
        *p = '\0';
        assert_true(col->n < 4096);
        col->len[col->n] = (size_t)(p - t);
        col->cmd[col->n++] = t;
    }
}

static void collected_free(struct collected *col)
{
    for (unsigned i = 0; i < col->n; i++)
        free(col->cmd[i]);
    memset(col, 0, sizeof(*col));
}

static void flush_all(struct redis_agg *a, struct collected *col)
{
    struct rcmd_buf b;
    rcmd_init(&b);
    memset(col, 0, sizeof(*col));
    unsigned recs = redis_agg_flush(a, &schema, &b, collect, col);
    assert_int_equal(recs, col->records);
    assert_int_equal(redis_agg_count(a), 0);
    rcmd_free(&b);
}

static void expect_cmds(const struct collected *col, const char *const *want, size_t n)
{
    for (size_t i = 0; i < n && i < col->n; i++)
        if (strcmp(col->cmd[i], want[i]))
            fail_msg("command %zu: got \"%s\", want \"%s\"", i, col->cmd[i], want[i]);
    assert_int_equal(col->n, n);
}

static void test_aggregates(void **state)
{
    struct redis_agg *a;
    struct egr_err err;
    assert_int_equal(redis_agg_new(1024, &a, &err), EGR_OK);
    struct flow_record r;
    flow(&r);
    assert_int_equal(redis_schema_bucket(r.emit_us), 28333334);
    /* The stream entry alone: aggregates are summed apart. */
    struct rcmd_buf b;
    rcmd_init(&b);
    redis_schema_flow(&schema, &r, &b);
    struct cmds c;
    decode(&b, &c, RCMD_FLOW);
    assert_int_equal(c.n, 1);
    rcmd_free(&b);

    /* Two flows and an interim record of the second: bytes add up per
     * record, flows count first records only, one member per destination;
     * updates grouped per key, each key's EXPIRE after its last update. */
    assert_int_equal(redis_agg_add(a, &r), 1);
    assert_int_equal(redis_agg_add(a, &r), 1);
    r.seq = 1;
    assert_int_equal(redis_agg_add(a, &r), 1);
    static const char *const want[] = {
        "HINCRBY|egress:agg:28333334:bytes:asset|laptop-7|31500",
        "EXPIRE|egress:agg:28333334:bytes:asset|7200",
        "HINCRBY|egress:agg:28333334:bytes:role|workstation|31500",
        "EXPIRE|egress:agg:28333334:bytes:role|7200",
        "HINCRBY|egress:agg:28333334:bytes:proto|TLS.Google|31500",
        "EXPIRE|egress:agg:28333334:bytes:proto|7200",
        "HINCRBY|egress:agg:28333334:bytes:country|US|31500",
        "EXPIRE|egress:agg:28333334:bytes:country|7200",
        "HINCRBY|egress:agg:28333334:bytes:asn|15169|31500",
        "EXPIRE|egress:agg:28333334:bytes:asn|7200",
        "HINCRBY|egress:agg:28333334:flows:asset|laptop-7|2",
        "EXPIRE|egress:agg:28333334:flows:asset|7200",
        "HINCRBY|egress:agg:28333334:flows:role|workstation|2",
        "EXPIRE|egress:agg:28333334:flows:role|7200",
        "HINCRBY|egress:agg:28333334:flows:proto|TLS.Google|2",
        "EXPIRE|egress:agg:28333334:flows:proto|7200",
        "HINCRBY|egress:agg:28333334:flows:country|US|2",
        "EXPIRE|egress:agg:28333334:flows:country|7200",
        "HINCRBY|egress:agg:28333334:flows:asn|15169|2",
        "EXPIRE|egress:agg:28333334:flows:asn|7200",
        "PFADD|egress:agg:28333334:dests:laptop-7|www.google.com",
        "EXPIRE|egress:agg:28333334:dests:laptop-7|7200",
        "ZINCRBY|egress:agg:28333334:top:laptop-7|31500|www.google.com",
        "EXPIRE|egress:agg:28333334:top:laptop-7|7200",
        /* the flush's newest minute, for readers looking for the last hour */
        "ZADD|egress:agg_buckets|28333334|28333334",
        "ZREMRANGEBYRANK|egress:agg_buckets|0|-101",
        "EXPIRE|egress:agg_buckets|7200",
    };
    struct collected col;
    flush_all(a, &col);
    expect_cmds(&col, want, sizeof(want) / sizeof(want[0]));
    assert_int_equal(col.records, 1);
    collected_free(&col);

    /* Without a name or an inventory the addresses stand in; an unknown
     * protocol is "Unknown"; a role-less record has no role member. Two
     * hash members of one key share its EXPIRE. */
    r.seq = 0;
    r.enrich.asset[0] = r.enrich.role[0] = r.enrich.dest_name[0] = r.ndpi.proto[0] = '\0';
    r.enrich.has_country = r.enrich.has_asn = 0;
    assert_int_equal(redis_agg_add(a, &r), 1);
    r.emit_us += 60000000; /* the next minute */
    strcpy(r.ndpi.proto, "DNS");
    assert_int_equal(redis_agg_add(a, &r), 1);
    r.emit_us -= 60000000;
    assert_int_equal(redis_agg_add(a, &r), 1);
    static const char *const want2[] = {
        "HINCRBY|egress:agg:28333334:bytes:asset|10.0.0.5|21000",
        "EXPIRE|egress:agg:28333334:bytes:asset|7200",
        "HINCRBY|egress:agg:28333334:bytes:proto|DNS|10500",
        "HINCRBY|egress:agg:28333334:bytes:proto|Unknown|10500",
        "EXPIRE|egress:agg:28333334:bytes:proto|7200",
        "HINCRBY|egress:agg:28333334:flows:asset|10.0.0.5|2",
        "EXPIRE|egress:agg:28333334:flows:asset|7200",
        "HINCRBY|egress:agg:28333334:flows:proto|DNS|1",
        "HINCRBY|egress:agg:28333334:flows:proto|Unknown|1",
        "EXPIRE|egress:agg:28333334:flows:proto|7200",
        "PFADD|egress:agg:28333334:dests:10.0.0.5|192.0.2.7",
        "EXPIRE|egress:agg:28333334:dests:10.0.0.5|7200",
        "ZINCRBY|egress:agg:28333334:top:10.0.0.5|21000|192.0.2.7",
        "EXPIRE|egress:agg:28333334:top:10.0.0.5|7200",
        "HINCRBY|egress:agg:28333335:bytes:asset|10.0.0.5|10500",
        "EXPIRE|egress:agg:28333335:bytes:asset|7200",
        "HINCRBY|egress:agg:28333335:bytes:proto|DNS|10500",
        "EXPIRE|egress:agg:28333335:bytes:proto|7200",
        "HINCRBY|egress:agg:28333335:flows:asset|10.0.0.5|1",
        "EXPIRE|egress:agg:28333335:flows:asset|7200",
        "HINCRBY|egress:agg:28333335:flows:proto|DNS|1",
        "EXPIRE|egress:agg:28333335:flows:proto|7200",
        "PFADD|egress:agg:28333335:dests:10.0.0.5|192.0.2.7",
        "EXPIRE|egress:agg:28333335:dests:10.0.0.5|7200",
        "ZINCRBY|egress:agg:28333335:top:10.0.0.5|10500|192.0.2.7",
        "EXPIRE|egress:agg:28333335:top:10.0.0.5|7200",
        "ZADD|egress:agg_buckets|28333335|28333335", /* the newer of the two */
        "ZREMRANGEBYRANK|egress:agg_buckets|0|-101",
        "EXPIRE|egress:agg_buckets|7200",
    };
    flush_all(a, &col);
    expect_cmds(&col, want2, sizeof(want2) / sizeof(want2[0]));
    collected_free(&col);

    /* Direction unknown (no home_net) counts as egress; the others do not
     * (the sink asks before adding). */
    static const uint8_t dirs[] = {DIR_INBOUND, DIR_INTERNAL, DIR_EXTERNAL};
    for (size_t i = 0; i < sizeof(dirs); i++) {
        r.enrich.direction = dirs[i];
        assert_false(redis_schema_counts_as_egress(&r));
    }
    r.enrich.direction = DIR_UNKNOWN;
    assert_true(redis_schema_counts_as_egress(&r));
    redis_agg_free(a);
}

/* Many destinations: PFADD takes them 100 at a time, records hold at most
 * RCMD_MAX_CMDS commands, and every update reaches the output once. */
static void test_aggregates_split(void **state)
{
    struct redis_agg *a;
    struct egr_err err;
    assert_int_equal(redis_agg_new(4096, &a, &err), EGR_OK);
    struct flow_record r;
    flow(&r);
    for (int i = 0; i < 150; i++) {
        snprintf(r.enrich.dest_name, sizeof(r.enrich.dest_name), "d%03d.example", i);
        assert_int_equal(redis_agg_add(a, &r), 1);
    }
    struct collected col;
    flush_all(a, &col);
    assert_true(col.records > 1);
    assert_true(col.max_per_record <= RCMD_MAX_CMDS);
    unsigned pfadd = 0, members = 0, zincr = 0, expires = 0;
    for (unsigned i = 0; i < col.n; i++) {
        if (!strncmp(col.cmd[i], "PFADD|", 6)) {
            pfadd++;
            for (const char *p = col.cmd[i]; (p = strchr(p, '|')); p++)
                members++;
            members--; /* the key */
        } else if (!strncmp(col.cmd[i], "ZINCRBY|", 8)) {
            zincr++;
        } else if (!strncmp(col.cmd[i], "EXPIRE|", 7)) {
            expires++;
        }
    }
    assert_int_equal(pfadd, 2);
    assert_int_equal(members, 150);
    assert_int_equal(zincr, 150);
    /* 10 hashes, the HyperLogLog, the sorted set, agg_buckets */
    assert_int_equal(expires, 13);
    /* The sorted set's EXPIRE comes after all its updates; agg_buckets last. */
    assert_string_equal(col.cmd[col.n - 4], "EXPIRE|egress:agg:28333334:top:laptop-7|7200");
    assert_string_equal(col.cmd[col.n - 1], "EXPIRE|egress:agg_buckets|7200");
    collected_free(&col);
    redis_agg_free(a);
}

/* A full table adds nothing and says so; a flush makes room. */
static void test_aggregates_full(void **state)
{
    struct redis_agg *a;
    struct egr_err err;
    assert_int_equal(redis_agg_new(64, &a, &err), EGR_OK);
    struct flow_record r;
    flow(&r);
    int added = 0;
    for (int i = 0; i < 100; i++) {
        snprintf(r.enrich.dest_name, sizeof(r.enrich.dest_name), "d%03d.example", i);
        if (!redis_agg_add(a, &r))
            break;
        added++;
    }
    assert_true(added > 1 && added < 100);
    uint32_t n = redis_agg_count(a);
    assert_int_equal(redis_agg_add(a, &r), 0);
    assert_int_equal(redis_agg_count(a), n);
    struct collected col;
    flush_all(a, &col);
    unsigned zincr = 0;
    for (unsigned i = 0; i < col.n; i++)
        zincr += !strncmp(col.cmd[i], "ZINCRBY|", 8);
    assert_int_equal(zincr, (unsigned)added);
    collected_free(&col);
    assert_int_equal(redis_agg_add(a, &r), 1);
    redis_agg_free(a);
}

static void test_alert(void **state)
{
    struct alert_record a;
    memset(&a, 0, sizeof(a));
    flow(&a.flow);
    a.ts_us = T0 + 3000000;
    a.first_seen_us = T0;
    a.last_seen_us = T0 + 3000000;
    a.count = 4;
    a.kind = ALERT_INTEL;
    a.severity = SEV_HIGH;
    a.update = 1;
    strcpy(a.alert_key, "0123456789012345678901234567890123456789");
    strcpy(a.reason, "destination on list \"bad\"\r\n<b>");
    strcpy(a.intel_list, "bad-ips");
    strcpy(a.service, "tcp/443 TLS");
    struct rcmd_buf b;
    struct jbuf jb;
    rcmd_init(&b);
    jbuf_init(&jb);
    redis_schema_alert(&schema, &a, &jb, &b);
    struct cmds c;
    decode(&b, &c, RCMD_ALERT);
    assert_int_equal(c.n, 2);
    expect_cmd(&c, 0, "XADD", "egress:alerts", "MAXLEN", "~", "1000000", "*", "sensor", "s1",
               "ts", "2023-11-14T22:13:23.000000+0000", "alert_key",
               "0123456789012345678901234567890123456789", "category", alert_kind_name(ALERT_INTEL),
               "severity", "1", "severity_name", "high", "signature",
               "destination on list \"bad\"\r\n<b>", "service", "tcp/443 TLS", "intel_list",
               "bad-ips", "count", "4", "first_seen", "2023-11-14T22:13:20.000000+0000",
               "last_seen", "2023-11-14T22:13:23.000000+0000", "update", "true", "flow_id",
               "1234567890123", "src_ip", "10.0.0.5", "src_port", "40000", "dest_ip", "192.0.2.7",
               "dest_port", "443", "proto", "TCP", "app_proto", "tls", "ndpi_proto", "TLS.Google",
               "community_id", "1:abc=", "direction", "egress", "dest_name", "www.google.com",
               "dest_name_source", "sni", "asset", "laptop-7", "role", "workstation", "country",
               "US", "asn", "15169", "as_org", "Google LLC", NULL);

    /* The live channel gets the alert exactly as the JSON sink writes it. */
    assert_true(arg_is(&c, 1, 0, "PUBLISH") && arg_is(&c, 1, 1, "egress:alerts:live"));
    struct jbuf want;
    jbuf_init(&want);
    eve_format_alert(&want, &a);
    assert_int_equal(c.len[1][2], want.len);
    assert_memory_equal(c.argv[1][2], want.buf, want.len);
    assert_int_equal(jc_check_text(c.argv[1][2], c.len[1][2], "doc",
                                   "d[\"event_type\"] == \"alert\" and "
                                   "d[\"alert\"][\"count\"] == 4"),
                     0);

    /* A first alert without a list or service leaves them out. */
    a.update = 0;
    a.intel_list[0] = a.service[0] = '\0';
    a.kind = ALERT_UNEXPECTED;
    a.severity = SEV_MEDIUM;
    redis_schema_alert(&schema, &a, &jb, &b);
    decode(&b, &c, RCMD_ALERT);
    expect_field(&c, 0, "update", "false");
    expect_field(&c, 0, "severity", "2");
    expect_field(&c, 0, "severity_name", "medium");
    expect_field(&c, 0, "category", alert_kind_name(ALERT_UNEXPECTED));
    expect_no_field(&c, 0, "intel_list");
    expect_no_field(&c, 0, "service");
    jbuf_free(&want);
    jbuf_free(&jb);
    rcmd_free(&b);
}

static void test_heartbeat(void **state)
{
    struct redis_heartbeat hb = {
        .version = "0.1.0", .source = "eth0", .start_us = T0, .now_us = T0 + 10000000,
        .packets = 100, .bytes = 20000, .drops = 1, .active_flows = 7, .queue_depth = 3,
        .sent = 50, .queued = 52, .spooled = 2, .dropped = 0, .undelivered = 0,
        .reconnects = 1, .resent = 3, .last_error = "OOM", .ttl = 60,
    };
    struct rcmd_buf b;
    rcmd_init(&b);
    redis_schema_heartbeat(&schema, &hb, &b);
    struct cmds c;
    decode(&b, &c, RCMD_HEARTBEAT);
    assert_int_equal(c.n, 3);
    expect_cmd(&c, 0, "HSET", "egress:sensor:s1", "version", "0.1.0", "source", "eth0",
               "start_time", "2023-11-14T22:13:20.000000+0000", "updated",
               "2023-11-14T22:13:30.000000+0000", "packets", "100", "bytes", "20000", "drops",
               "1", "active_flows", "7", "queue_depth", "3", "sent", "50", "queued", "52",
               "spooled", "2", "dropped", "0", "undelivered", "0", "reconnects", "1",
               "resent", "3", "last_error", "OOM", NULL);
    expect_cmd(&c, 1, "EXPIRE", "egress:sensor:s1", "60", NULL);
    expect_cmd(&c, 2, "SADD", "egress:sensors", "s1", NULL);
    rcmd_free(&b);
}

/* The slot of command i's key argument. */
static unsigned key_slot(const struct cmds *c, unsigned i)
{
    return redis_cluster_key_slot(c->argv[i][1], c->len[i][1]);
}

static void test_per_sensor_layout(void **state)
{
    struct redis_schema sc = schema;
    sc.per_sensor = 1;
    sc.sensor = "edge-1";
    unsigned slot = redis_cluster_key_slot("edge-1", 6);
    struct rcmd_buf b;
    struct cmds c;
    rcmd_init(&b);

    struct flow_record r;
    flow(&r);
    redis_schema_flow(&sc, &r, &b);
    decode(&b, &c, RCMD_FLOW);
    assert_true(arg_is(&c, 0, 1, "egress:{edge-1}:flows"));
    expect_field(&c, 0, "sensor", "edge-1");
    assert_int_equal(key_slot(&c, 0), slot);

    struct alert_record a;
    struct jbuf jb;
    jbuf_init(&jb);
    memset(&a, 0, sizeof(a));
    flow(&a.flow);
    a.ts_us = a.first_seen_us = a.last_seen_us = T0;
    a.kind = ALERT_UNEXPECTED;
    a.severity = SEV_MEDIUM;
    redis_schema_alert(&sc, &a, &jb, &b);
    decode(&b, &c, RCMD_ALERT);
    assert_true(arg_is(&c, 0, 1, "egress:{edge-1}:alerts"));
    assert_int_equal(key_slot(&c, 0), slot);
    assert_true(arg_is(&c, 1, 0, "PUBLISH"));
    assert_true(arg_is(&c, 1, 1, "egress:alerts:live")); /* one channel for every sensor */
    jbuf_free(&jb);

    struct redis_heartbeat hb = {.version = "v", .source = "", .last_error = "", .ttl = 60};
    redis_schema_heartbeat(&sc, &hb, &b);
    decode(&b, &c, RCMD_HEARTBEAT);
    assert_true(arg_is(&c, 0, 0, "HSET"));
    assert_true(arg_is(&c, 0, 1, "egress:{edge-1}:sensor"));
    expect_cmd(&c, 1, "EXPIRE", "egress:{edge-1}:sensor", "60", NULL);
    expect_cmd(&c, 2, "SADD", "egress:sensors", "edge-1", NULL); /* the global set */

    /* Aggregates: the sensor's keys, its own bucket index, all in its slot. */
    struct redis_agg *ag;
    struct egr_err err;
    assert_int_equal(redis_agg_new(64, &ag, &err), EGR_OK);
    assert_int_equal(redis_agg_add(ag, &r), 1);
    struct collected col;
    memset(&col, 0, sizeof(col));
    redis_agg_flush(ag, &sc, &b, collect, &col);
    assert_true(col.n > 10);
    for (unsigned i = 0; i < col.n; i++) {
        const char *k = strchr(col.cmd[i], '|') + 1;
        size_t kl = strcspn(k, "|");
        if (strncmp(k, "egress:{edge-1}:agg", 19))
            fail_msg("aggregate command %u outside the sensor's keys: %s", i, col.cmd[i]);
        assert_int_equal(redis_cluster_key_slot(k, kl), slot);
    }
    assert_non_null(strstr(col.cmd[0], "HINCRBY|egress:{edge-1}:agg:28333334:bytes:asset|"));
    assert_string_equal(col.cmd[col.n - 3], "ZADD|egress:{edge-1}:agg_buckets|28333334|28333334");
    collected_free(&col);
    redis_agg_free(ag);
    char key[256];
    size_t n = redis_schema_agg_key(&sc, key, sizeof(key), 7, "top", "a", 1);
    assert_int_equal(n, strlen("egress:{edge-1}:agg:7:top:a"));
    assert_memory_equal(key, "egress:{edge-1}:agg:7:top:a", n);

    /* Ids that hold braces still give every key of the sensor one slot
     * (the tag ends at the first '}'), and other sensors other slots. */
    static const char *const ids[] = {"a}b", "{x}", "s:1", "node{7"};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        sc.sensor = ids[i];
        redis_schema_flow(&sc, &r, &b);
        decode(&b, &c, RCMD_FLOW);
        unsigned s0 = key_slot(&c, 0);
        redis_schema_heartbeat(&sc, &hb, &b);
        decode(&b, &c, RCMD_HEARTBEAT);
        assert_int_equal(key_slot(&c, 0), s0);
        n = redis_schema_buckets_key(&sc, key, sizeof(key));
        assert_int_equal(redis_cluster_key_slot(key, n), s0);
    }
    unsigned slots[8];
    static const char *const names[] = {"s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"};
    for (size_t i = 0; i < 8; i++) {
        sc.sensor = names[i];
        redis_schema_flow(&sc, &r, &b);
        decode(&b, &c, RCMD_FLOW);
        slots[i] = key_slot(&c, 0);
        for (size_t k = 0; k < i; k++)
            assert_int_not_equal(slots[i], slots[k]);
    }
    rcmd_free(&b);
}

/* The decoder trusts nothing: every cut of a valid record, any byte
 * appended, and damaged headers are refused. */
static void test_decoder_refuses_damage(void **state)
{
    struct rcmd_buf b;
    flow_entry(&b);
    struct rcmd_iter it;
    for (size_t n = 0; n < b.len; n++)
        if (rcmd_iter_init(&it, b.buf, n, NULL, NULL) != EGR_EINVAL)
            fail_msg("a record cut to %zu of %zu bytes was accepted", n, b.len);
    uint8_t *copy = malloc(b.len + 1);
    assert_non_null(copy);
    memcpy(copy, b.buf, b.len);
    copy[b.len] = 0;
    assert_int_equal(rcmd_iter_init(&it, copy, b.len + 1, NULL, NULL), EGR_EINVAL);
    assert_int_equal(rcmd_iter_init(&it, copy, b.len, NULL, NULL), EGR_OK);
    copy[0] = 2; /* version */
    assert_int_equal(rcmd_iter_init(&it, copy, b.len, NULL, NULL), EGR_EINVAL);
    copy[0] = 1;
    copy[2] = copy[3] = 0; /* no commands */
    assert_int_equal(rcmd_iter_init(&it, copy, b.len, NULL, NULL), EGR_EINVAL);
    memcpy(copy, b.buf, b.len);
    copy[6] = 0xff; /* first argument's length far past the end */
    copy[7] = 0xff;
    assert_int_equal(rcmd_iter_init(&it, copy, b.len, NULL, NULL), EGR_EINVAL);
    free(copy);

    /* Limits: too many arguments or commands make the record unusable. */
    rcmd_reset(&b, RCMD_FLOW);
    rcmd_begin(&b);
    for (unsigned i = 0; i <= RCMD_MAX_ARGS; i++)
        rcmd_arg_str(&b, "x");
    rcmd_end(&b);
    assert_false(rcmd_ok(&b));
    rcmd_reset(&b, RCMD_FLOW);
    assert_true(rcmd_ok(&b));
    for (unsigned i = 0; i <= RCMD_MAX_CMDS; i++) {
        rcmd_begin(&b);
        rcmd_arg_str(&b, "PING");
        rcmd_end(&b);
    }
    assert_false(rcmd_ok(&b));
    rcmd_free(&b);
}

/* A second walk of a record the checking walk accepted (what the sink does
 * on every send) gives the same commands, argument for argument. */
static unsigned walk_same(const struct rcmd_buf *b)
{
    struct rcmd_iter a, again;
    unsigned ncmd = 0;
    assert_int_equal(rcmd_iter_init(&a, b->buf, b->len, NULL, &ncmd), EGR_OK);
    rcmd_iter_again(&again, b->buf, b->len);
    const char *av[RCMD_MAX_ARGS], *bv[RCMD_MAX_ARGS];
    size_t al[RCMD_MAX_ARGS], bl[RCMD_MAX_ARGS];
    unsigned ac, bc, walked = 0;
    while (rcmd_next(&a, av, al, &ac) == 1) {
        assert_int_equal(rcmd_next(&again, bv, bl, &bc), 1);
        assert_int_equal(ac, bc);
        for (unsigned i = 0; i < ac; i++) {
            assert_int_equal(al[i], bl[i]);
            assert_ptr_equal(av[i], bv[i]);
        }
        walked++;
    }
    assert_int_equal(rcmd_next(&again, bv, bl, &bc), 0);
    assert_int_equal(walked, ncmd);
    return walked;
}

static void test_walk_again(void **state)
{
    (void)state;
    struct rcmd_buf b;
    flow_entry(&b);
    assert_int_equal(walk_same(&b), b.ncmd);
    /* Several commands, empty and long arguments. */
    char big[300];
    memset(big, 'x', sizeof(big));
    rcmd_reset(&b, RCMD_AGG);
    for (unsigned c = 0; c < 3; c++) {
        rcmd_begin(&b);
        rcmd_arg_str(&b, "HINCRBY");
        rcmd_arg(&b, big, c * 100);
        rcmd_arg(&b, "", 0);
        rcmd_arg_u64(&b, 1234567890123ull * c);
        rcmd_end(&b);
    }
    assert_true(rcmd_ok(&b));
    assert_int_equal(walk_same(&b), 3);
    rcmd_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flow_entry),
        cmocka_unit_test(test_hostile_bytes),
        cmocka_unit_test(test_aggregates),
        cmocka_unit_test(test_aggregates_split),
        cmocka_unit_test(test_aggregates_full),
        cmocka_unit_test(test_alert),
        cmocka_unit_test(test_heartbeat),
        cmocka_unit_test(test_per_sensor_layout),
        cmocka_unit_test(test_decoder_refuses_damage),
        cmocka_unit_test(test_walk_again),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_redis_eve.c - whole EVE events as Suricata's EVE Redis output writes
 * them: the command of every mode (LPUSH, RPUSH, PUBLISH, XADD with MAXLEN
 * ~, =, or none), Suricata's mode names and the default key, a DNS flow's
 * events in order (dns before flow) and each filtered by type, alerts and
 * stats, mode off writing nothing, the event argument byte for byte what
 * the JSON lines output writes (hostile bytes included), the commands
 * appended after a record's flat stream entry, and the configuration's
 * refusals (unknown mode, unknown or repeated type, empty list). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "egressd/config.h"
#include "egressd/eve.h"
#include "egressd/redis-eve.h"
#include "egressd/redis-schema.h"
#include "json_check.h"

#define T0 1700000000000000ull

static void dns_flow(struct flow_record *r)
{
    memset(r, 0, sizeof(*r));
    r->flow_id = 77;
    r->first_us = T0;
    r->last_us = r->emit_us = T0 + 1000;
    r->family = 4;
    r->proto = 17;
    memcpy(r->src_ip, (uint8_t[]){10, 0, 0, 5}, 4);
    memcpy(r->dst_ip, (uint8_t[]){10, 0, 0, 53}, 4);
    r->src_port = 40000;
    r->dst_port = 53;
    strcpy(r->ndpi.proto, "DNS");
    strcpy(r->ndpi.app, "DNS");
    /* a hostile name: quotes, '<', a newline, a raw 0xff byte */
    strcpy(r->ndpi.dns_query, "a\"<b>\n\xff.example");
    r->ndpi.dns_qtype = 1;
    r->ndpi.dns_has_id = 1;
    r->ndpi.dns_id = 5;
    r->ndpi.dns_parsed = 1;
    r->ndpi.dns_flags = 0x8180;
}

/* The commands of b, as argv vectors of strings (arguments with a NUL are
 * compared by length in the tests that need it). */
struct cmds {
    unsigned n;
    unsigned argc[8];
    char *argv[8][RCMD_MAX_ARGS];
    size_t len[8][RCMD_MAX_ARGS];
};

static void decode(const struct rcmd_buf *b, struct cmds *c)
{
    memset(c, 0, sizeof(*c));
    struct rcmd_iter it;
    unsigned kind, ncmd;
    assert_int_equal(rcmd_iter_init(&it, b->buf, b->len, &kind, &ncmd), EGR_OK);
    const char *argv[RCMD_MAX_ARGS];
    size_t lens[RCMD_MAX_ARGS];
    unsigned argc;
    while (rcmd_next(&it, argv, lens, &argc) == 1) {
        assert_true(c->n < 8 && argc <= RCMD_MAX_ARGS);
        c->argc[c->n] = argc;
        for (unsigned a = 0; a < argc; a++) {
            c->argv[c->n][a] = strndup(argv[a], lens[a]);
            c->len[c->n][a] = lens[a];
        }
        c->n++;
    }
    assert_int_equal(c->n, ncmd);
}

static void cmds_free(struct cmds *c)
{
    for (unsigned i = 0; i < c->n; i++)
        for (unsigned a = 0; a < c->argc[i]; a++)
            free(c->argv[i][a]);
}

/* Event i of r, as the JSON lines output writes it (no newline). */
static char *event_text(const struct flow_record *r, unsigned i, size_t *n)
{
    struct jbuf jb;
    jbuf_init(&jb);
    eve_format_record_event(&jb, r, i);
    assert_true(jbuf_ok(&jb));
    char *s = malloc(jb.len + 1);
    memcpy(s, jb.buf, jb.len + 1);
    *n = jb.len;
    jbuf_free(&jb);
    return s;
}

static void test_modes(void **state)
{
    (void)state;
    struct flow_record r;
    dns_flow(&r);
    assert_int_equal(eve_record_events(&r), 3); /* query, answer, flow */
    struct redis_eve_config c;
    redis_eve_config_defaults(&c);
    assert_int_equal(c.mode, REDIS_EVE_OFF);
    assert_string_equal(c.key, "suricata");
    assert_int_equal(c.types, REDIS_EVE_ALL);
    assert_int_equal(c.stream_maxlen, 100000);
    struct jbuf jb;
    jbuf_init(&jb);
    struct rcmd_buf b;
    rcmd_init(&b);

    /* off: nothing */
    rcmd_reset(&b, RCMD_FLOW);
    assert_int_equal(redis_eve_flow(&c, &r, &jb, &b), 0);
    assert_int_equal(b.ncmd, 0);

    static const struct {
        const char *name;
        const char *verb;
        int maxlen; /* 0 none, 1 ~, 2 = */
    } cases[] = {
        {"list", "LPUSH", 0},   {"lpush", "LPUSH", 0},  {"rpush", "RPUSH", 0},
        {"channel", "PUBLISH", 0}, {"publish", "PUBLISH", 0}, {"stream", "XADD", 1},
        {"xadd", "XADD", 2},    {"XADD", "XADD", 0},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        int m = redis_eve_mode_of(cases[k].name);
        assert_true(m > 0);
        c.mode = (uint8_t)m;
        c.trim_exact = cases[k].maxlen == 2;
        c.stream_maxlen = cases[k].maxlen ? 5000 : 0;
        snprintf(c.key, sizeof(c.key), "eve:%s", cases[k].name);
        rcmd_reset(&b, RCMD_FLOW);
        assert_int_equal(redis_eve_flow(&c, &r, &jb, &b), 3);
        struct cmds d;
        decode(&b, &d);
        assert_int_equal(d.n, 3);
        for (unsigned i = 0; i < 3; i++) {
            assert_string_equal(d.argv[i][0], cases[k].verb);
            assert_string_equal(d.argv[i][1], c.key);
            unsigned ev = 2;
            if (!strcmp(cases[k].verb, "XADD")) {
                if (cases[k].maxlen) {
                    assert_string_equal(d.argv[i][2], "MAXLEN");
                    assert_string_equal(d.argv[i][3], cases[k].maxlen == 2 ? "=" : "~");
                    assert_string_equal(d.argv[i][4], "5000");
                    ev = 5;
                }
                assert_string_equal(d.argv[i][ev], "*");
                assert_string_equal(d.argv[i][ev + 1], "eve");
                ev += 2;
            }
            assert_int_equal(d.argc[i], ev + 1);
            /* The event is exactly the JSON line, as one argument. */
            size_t n;
            char *want = event_text(&r, i, &n);
            assert_int_equal(d.len[i][ev], n);
            assert_memory_equal(d.argv[i][ev], want, n);
            assert_null(strchr(d.argv[i][ev], '<')); /* escaped as in the file */
            free(want);
        }
        assert_non_null(strstr(d.argv[0][d.argc[0] - 1], "\"type\":\"query\""));
        assert_non_null(strstr(d.argv[1][d.argc[1] - 1], "\"type\":\"answer\""));
        assert_non_null(strstr(d.argv[2][d.argc[2] - 1], "\"event_type\":\"flow\""));
        cmds_free(&d);
    }
    assert_int_equal(redis_eve_mode_of("queue"), -1);
    assert_int_equal(redis_eve_mode_of("off"), REDIS_EVE_OFF);
    assert_string_equal(redis_eve_mode_name(REDIS_EVE_LPUSH), "list");
    assert_string_equal(redis_eve_mode_name(REDIS_EVE_XADD), "stream");

    /* Types: dns alone, flow alone; alert and stats of their own. */
    c.mode = REDIS_EVE_LPUSH;
    c.types = REDIS_EVE_DNS;
    rcmd_reset(&b, RCMD_FLOW);
    assert_int_equal(redis_eve_flow(&c, &r, &jb, &b), 2);
    c.types = REDIS_EVE_FLOW;
    rcmd_reset(&b, RCMD_FLOW);
    assert_int_equal(redis_eve_flow(&c, &r, &jb, &b), 1);
    struct cmds d;
    decode(&b, &d);
    assert_non_null(strstr(d.argv[0][2], "\"event_type\":\"flow\""));
    cmds_free(&d);
    c.types = REDIS_EVE_ALERT | REDIS_EVE_STATS;
    rcmd_reset(&b, RCMD_FLOW);
    assert_int_equal(redis_eve_flow(&c, &r, &jb, &b), 0);

    struct alert_record a;
    memset(&a, 0, sizeof(a));
    a.flow = r;
    a.ts_us = T0;
    strcpy(a.alert_key, "k");
    rcmd_reset(&b, RCMD_ALERT);
    assert_int_equal(redis_eve_alert(&c, &a, &jb, &b), 1);
    decode(&b, &d);
    assert_int_equal(jc_check_text(d.argv[0][2], d.len[0][2], "doc",
                                   "d[\"event_type\"] == \"alert\" and d[\"flow_id\"] == 77"),
                     0);
    cmds_free(&d);
    struct run_stats st;
    memset(&st, 0, sizeof(st));
    st.ts_us = T0;
    st.packets = 9;
    rcmd_reset(&b, RCMD_EVE);
    assert_int_equal(redis_eve_stats(&c, &st, &jb, &b), 1);
    decode(&b, &d);
    assert_int_equal(jc_check_text(d.argv[0][2], d.len[0][2], "doc",
                                   "d[\"event_type\"] == \"stats\" and "
                                   "d[\"stats\"][\"capture\"][\"packets\"] == 9"),
                     0);
    cmds_free(&d);
    c.types = REDIS_EVE_FLOW;
    rcmd_reset(&b, RCMD_EVE);
    assert_int_equal(redis_eve_stats(&c, &st, &jb, &b), 0);
    rcmd_reset(&b, RCMD_ALERT);
    assert_int_equal(redis_eve_alert(&c, &a, &jb, &b), 0);

    /* After a record's flat entry: appended, the entry stays command 0. */
    const struct redis_schema sc = {.prefix = "egress", .sensor = "s1"};
    redis_schema_flow(&sc, &r, &b);
    c.types = REDIS_EVE_ALL;
    assert_int_equal(redis_eve_flow(&c, &r, &jb, &b), 3);
    decode(&b, &d);
    assert_int_equal(d.n, 4);
    assert_string_equal(d.argv[0][0], "XADD");
    assert_string_equal(d.argv[0][1], "egress:flows");
    assert_string_equal(d.argv[3][0], "LPUSH");
    cmds_free(&d);

    rcmd_free(&b);
    jbuf_free(&jb);
}

/* A configuration snippet under redis: loaded, returns the rc and message. */
static int load(const char *yaml, struct egr_config *cfg, struct egr_err *err)
{
    char path[] = "/tmp/egressd-test-redis-eve-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);
    config_defaults(cfg);
    int rc = config_load(cfg, path, err);
    unlink(path);
    return rc;
}

static void test_config(void **state)
{
    (void)state;
    struct egr_config cfg;
    struct egr_err err = {""};
    assert_int_equal(load("redis:\n  streams: false\n  eve:\n    mode: stream\n    key: ids:eve\n"
                          "    types: [dns, alert]\n    stream_maxlen: 0\n    stream_trim_exact: true\n",
                          &cfg, &err),
                     EGR_OK);
    assert_int_equal(cfg.redis.streams, 0);
    assert_int_equal(cfg.redis.eve.mode, REDIS_EVE_XADD);
    assert_string_equal(cfg.redis.eve.key, "ids:eve");
    assert_int_equal(cfg.redis.eve.types, REDIS_EVE_DNS | REDIS_EVE_ALERT);
    assert_int_equal(cfg.redis.eve.stream_maxlen, 0);
    assert_int_equal(cfg.redis.eve.trim_exact, 1);
    config_free(&cfg);

    static const struct {
        const char *yaml, *want;
    } bad[] = {
        {"redis:\n  eve:\n    mode: queue\n",
         ":3:11: redis.eve.mode: 'queue' is not a mode: off, list (= lpush), rpush, channel (= publish), "
         "stream (= xadd)"},
        {"redis:\n  eve:\n    mode: [list]\n", ":3:11: redis.eve.mode: expected off, list, lpush, rpush, "
                                               "channel, publish, stream or xadd"},
        {"redis:\n  eve:\n    types: [flow, tls]\n",
         ":3:19: redis.eve.types[1]: expected an event type: flow, dns, alert or stats"},
        {"redis:\n  eve:\n    types: [flow, flow]\n", ":3:19: redis.eve.types[1]: 'flow' is listed twice"},
        {"redis:\n  eve:\n    types: []\n",
         ":3:12: redis.eve.types: the list is empty (set redis.eve.mode: off to write no events)"},
        {"redis:\n  eve:\n    types: flow\n",
         ":3:12: redis.eve.types: expected a list of event types ([flow, dns, alert, stats])"},
        {"redis:\n  eve:\n    stream_maxlen: -1\n", "redis.eve.stream_maxlen"},
        {"redis:\n  eve:\n    moed: list\n", "redis.eve.moed"},
        {"redis:\n  streams: maybe\n", "redis.streams"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = load(bad[i].yaml, &cfg, &err);
        if (rc != EGR_EINVAL || !strstr(err.msg, bad[i].want))
            fail_msg("%s: rc %d, message '%s', wanted '%s'", bad[i].yaml, rc, err.msg, bad[i].want);
        assert_null(strchr(err.msg, '\n'));
        config_free(&cfg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

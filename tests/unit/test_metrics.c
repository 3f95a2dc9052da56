/* test_metrics.c - Prometheus rendering (families, labels, escaping) and
 * the listener's address parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "egressd/metrics.h"

/* Renders v into a NUL-terminated string the caller frees. */
static char *render(const struct metrics_view *v)
{
    struct evbuffer *b = evbuffer_new();
    assert_non_null(b);
    metrics_render(b, v);
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    assert_non_null(s);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    evbuffer_free(b);
    return s;
}

static void test_render_workers(void **state)
{
    (void)state;
    struct run_stats ws[2], total;
    memset(ws, 0, sizeof(ws));
    memset(&total, 0, sizeof(total));
    ws[0].packets = 10;
    ws[1].packets = 32;
    ws[1].bytes = 4096;
    ws[0].drop_kernel = 7;
    ws[1].flow.active = 3;
    ws[0].flow.records[END_SHUTDOWN] = 5;
    total.alerts = 2;
    const char *ifs[2] = {"eth0", "we\"ird\\if\nx"};
    struct metrics_view v = {2, ws, ifs, &total, 1};
    char *s = render(&v);
    assert_non_null(strstr(s, "# HELP egressd_packets_total "));
    assert_non_null(strstr(s, "# TYPE egressd_packets_total counter\n"
                              "egressd_packets_total{interface=\"eth0\",worker=\"0\"} 10\n"));
    /* backslash, quote and newline escaped in label values */
    assert_non_null(
        strstr(s, "egressd_packets_total{interface=\"we\\\"ird\\\\if\\nx\",worker=\"1\"} 32\n"));
    assert_non_null(strstr(s, "egressd_bytes_total{interface=\"eth0\",worker=\"0\"} 0\n"));
    assert_non_null(
        strstr(s, "egressd_drops_total{interface=\"eth0\",worker=\"0\",cause=\"kernel\"} 7\n"));
    assert_non_null(
        strstr(s, "egressd_drops_total{interface=\"eth0\",worker=\"0\",cause=\"ifdrop\"} 0\n"));
    /* no Redis configured: no Redis families */
    assert_null(strstr(s, "egressd_redis_"));
    assert_non_null(strstr(s, "# TYPE egressd_flows_active gauge\n"));
    assert_non_null(strstr(s, ",worker=\"1\"} 3\n"));
    assert_non_null(strstr(
        s, "egressd_flows_ended_total{interface=\"eth0\",worker=\"0\",reason=\"shutdown\"} 5\n"));
    assert_non_null(strstr(s, "egressd_alerts_total 2\n"));
    assert_non_null(strstr(s, "egressd_up 1\n"));
    /* every sample line follows its family's TYPE line */
    assert_true(strstr(s, "# TYPE egressd_drops_total") < strstr(s, "egressd_drops_total{"));
    free(s);
    v.healthy = 0;
    s = render(&v);
    assert_non_null(strstr(s, "egressd_up 0\n"));
    free(s);
    /* with Redis: delivery counters and the queue and spool depths */
    total.redis.enabled = 1;
    total.redis.sent = 41;
    total.redis.dropped = 3;
    total.redis.queue_depth = 17;
    total.redis.spool_depth = 9;
    s = render(&v);
    assert_non_null(strstr(s, "# TYPE egressd_redis_sent_total counter\negressd_redis_sent_total 41\n"));
    assert_non_null(strstr(s, "egressd_redis_dropped_total 3\n"));
    assert_non_null(strstr(s, "# TYPE egressd_redis_queue_depth gauge\negressd_redis_queue_depth 17\n"));
    assert_non_null(strstr(s, "egressd_redis_spool_depth 9\n"));
    free(s);
}

static void no_view(void *arg, struct metrics_view *v)
{
    (void)arg;
    (void)v;
}

static void test_open_addresses(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    assert_non_null(base);
    struct metrics *m = NULL;
    struct egr_err err;
    static const char *bad[] = {"", "x", "127.0.0.1:", ":80", "1.2.3.4:99999", "[::1]80", "-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(metrics_open(base, bad[i], no_view, NULL, &m, &err), EGR_EINVAL);
        assert_non_null(strstr(err.msg, "--metrics"));
    }
    assert_int_equal(metrics_open(base, "0", no_view, NULL, &m, &err), EGR_OK);
    assert_true(metrics_port(m) > 0);
    metrics_close(m);
    assert_int_equal(metrics_open(base, "127.0.0.1:0", no_view, NULL, &m, &err), EGR_OK);
    int port = metrics_port(m);
    assert_true(port > 0);
    /* the same port again cannot be bound */
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    struct metrics *m2 = NULL;
    assert_int_equal(metrics_open(base, addr, no_view, NULL, &m2, &err), EGR_EIO);
    metrics_close(m);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_workers),
        cmocka_unit_test(test_open_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_metrics.c - Prometheus rendering (families, labels, escaping), the
 * listener's address parsing, and the HTTP endpoints answering a real
 * client on the same event loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

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
    /* build_info: one sample, value 1, the version and libraries in labels */
    assert_non_null(strstr(s, "# TYPE egressd_build_info gauge\n"));
    char want[128];
    snprintf(want, sizeof(want), "egressd_build_info{version=\"%s\",ndpi=\"4.2", EGRESSD_VERSION);
    assert_non_null(strstr(s, want));
    const char *bi = strstr(s, "egressd_build_info{");
    assert_non_null(strstr(bi, ",libpcap=\"libpcap version "));
    assert_non_null(strstr(bi, ",libevent=\"2."));
    assert_non_null(strstr(bi, ",hiredis=\"0.14."));
    assert_memory_equal(strchr(bi, '}'), "} 1\n", 4);
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
    total.redis.resent = 5;
    s = render(&v);
    assert_non_null(strstr(s, "# TYPE egressd_redis_sent_total counter\negressd_redis_sent_total 41\n"));
    assert_non_null(strstr(s, "egressd_redis_dropped_total 3\n"));
    assert_non_null(strstr(s, "# TYPE egressd_redis_queue_depth gauge\negressd_redis_queue_depth 17\n"));
    assert_non_null(strstr(s, "egressd_redis_spool_depth 9\n"));
    assert_non_null(strstr(s, "# TYPE egressd_redis_resent_total counter\negressd_redis_resent_total 5\n"));
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

/* ---- HTTP: a libevent client against the server on one loop ----------- */

struct fake {
    struct run_stats ws[1], total;
    const char *ifs[1];
    int healthy;
};

static void fake_view(void *arg, struct metrics_view *v)
{
    struct fake *f = arg;
    v->nworkers = 1;
    v->worker = f->ws;
    v->iface = f->ifs;
    v->total = &f->total;
    v->healthy = f->healthy;
}

struct reply {
    struct event_base *base;
    int code;
    char body[8192];
    char ctype[128];
};

static void on_reply(struct evhttp_request *req, void *arg)
{
    struct reply *r = arg;
    r->code = req ? evhttp_request_get_response_code(req) : -1;
    if (req) {
        struct evbuffer *b = evhttp_request_get_input_buffer(req);
        size_t n = evbuffer_get_length(b);
        if (n >= sizeof(r->body))
            n = sizeof(r->body) - 1;
        evbuffer_remove(b, r->body, n);
        r->body[n] = '\0';
        const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
        snprintf(r->ctype, sizeof(r->ctype), "%s", ct ? ct : "");
    }
    event_base_loopbreak(r->base);
}

static void get(struct event_base *base, int port, const char *path, struct reply *r)
{
    memset(r, 0, sizeof(*r));
    r->base = base;
    struct evhttp_connection *cn = evhttp_connection_base_new(base, NULL, "127.0.0.1", (ev_uint16_t)port);
    assert_non_null(cn);
    evhttp_connection_set_timeout(cn, 5);
    struct evhttp_request *req = evhttp_request_new(on_reply, r);
    assert_non_null(req);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Host", "127.0.0.1");
    assert_int_equal(evhttp_make_request(cn, req, EVHTTP_REQ_GET, path), 0);
    event_base_dispatch(base);
    evhttp_connection_free(cn);
}

static void test_http(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    assert_non_null(base);
    struct fake f;
    memset(&f, 0, sizeof(f));
    f.ifs[0] = "eth0";
    f.ws[0].packets = 5;
    f.healthy = 1;
    struct metrics *m = NULL;
    struct egr_err err;
    assert_int_equal(metrics_open(base, "127.0.0.1:0", fake_view, &f, &m, &err), EGR_OK);
    int port = metrics_port(m);
    struct reply r;

    get(base, port, "/healthz", &r);
    assert_int_equal(r.code, 200);
    assert_string_equal(r.body, "ok\n");
    /* a failed worker (or a stopping sensor): 503, which HEALTHCHECK and
     * load balancers read as down */
    f.healthy = 0;
    get(base, port, "/healthz", &r);
    assert_int_equal(r.code, 503);
    assert_string_equal(r.body, "not capturing\n");

    get(base, port, "/metrics", &r);
    assert_int_equal(r.code, 200);
    assert_non_null(strstr(r.ctype, "text/plain; version=0.0.4"));
    assert_non_null(strstr(r.body, "egressd_packets_total{interface=\"eth0\",worker=\"0\"} 5\n"));
    assert_non_null(strstr(r.body, "egressd_up 0\n"));

    get(base, port, "/nothing", &r);
    assert_int_equal(r.code, 404);

    metrics_close(m);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_workers),
        cmocka_unit_test(test_open_addresses),
        cmocka_unit_test(test_http),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

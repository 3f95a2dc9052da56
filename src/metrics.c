/* metrics.c - Prometheus text exposition and a health check over evhttp
 * (see metrics.h).
 *
 * Format: https://prometheus.io/docs/instrumenting/exposition_formats/ -
 * one HELP and one TYPE line per family, then its samples; label values
 * escape backslash, double quote and newline. Counters are per worker
 * (labels interface and worker) so a scrape shows an unbalanced fanout.
 */
#include "egressd/metrics.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <hiredis/hiredis.h>
#include <pcap/pcap.h>

#include "egressd/classify.h"

#ifndef EGRESSD_VERSION
#define EGRESSD_VERSION "unknown"
#endif

struct metrics {
    struct evhttp *http;
    metrics_view_fn fn;
    void *arg;
    int port;
};

static void put_label_value(struct evbuffer *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            evbuffer_add(b, "\\\\", 2);
        else if (*s == '"')
            evbuffer_add(b, "\\\"", 2);
        else if (*s == '\n')
            evbuffer_add(b, "\\n", 2);
        else
            evbuffer_add(b, s, 1);
    }
}

static void family(struct evbuffer *b, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{interface="..",worker="N"[,extra]} value */
static void worker_sample(struct evbuffer *b, const char *name, const struct metrics_view *v,
                          size_t i, const char *extra, uint64_t value)
{
    evbuffer_add_printf(b, "%s{interface=\"", name);
    put_label_value(b, v->iface[i]);
    evbuffer_add_printf(b, "\",worker=\"%zu\"%s%s} %" PRIu64 "\n", i, extra ? "," : "",
                        extra ? extra : "", value);
}

/* Prometheus' build_info convention: value 1, what was built in labels
 * (the libraries as loaded at run time where they can say so). */
static void write_build_info(struct evbuffer *b)
{
    family(b, "egressd_build_info", "gauge",
           "Always 1; the labels say which egressd and libraries are running.");
    evbuffer_add_printf(b, "egressd_build_info{version=\"");
    put_label_value(b, EGRESSD_VERSION);
    evbuffer_add_printf(b, "\",ndpi=\"");
    put_label_value(b, classify_ndpi_version());
    evbuffer_add_printf(b, "\",libpcap=\"");
    put_label_value(b, pcap_lib_version());
    evbuffer_add_printf(b, "\",libevent=\"");
    put_label_value(b, event_get_version());
    evbuffer_add_printf(b, "\",hiredis=\"%d.%d.%d\"} 1\n", HIREDIS_MAJOR, HIREDIS_MINOR,
                        HIREDIS_PATCH);
}

void metrics_render(struct evbuffer *b, const struct metrics_view *v)
{
    static const struct {
        const char *name, *help;
        size_t off;
    } counters[] = {
        {"egressd_packets_total", "Frames captured.", offsetof(struct run_stats, packets)},
        {"egressd_bytes_total", "Wire bytes of the frames captured.",
         offsetof(struct run_stats, bytes)},
        {"egressd_ip_packets_total", "Frames that decoded to IP.",
         offsetof(struct run_stats, ip_packets)},
        {"egressd_time_backwards_total",
         "Frames stamped before the newest frame the worker had seen.",
         offsetof(struct run_stats, time_backwards)},
    };
    for (size_t k = 0; k < EGR_ARRAY_LEN(counters); k++) {
        family(b, counters[k].name, "counter", counters[k].help);
        for (size_t i = 0; i < v->nworkers; i++) {
            uint64_t val;
            memcpy(&val, (const char *)&v->worker[i] + counters[k].off, sizeof(val));
            worker_sample(b, counters[k].name, v, i, NULL, val);
        }
    }
    family(b, "egressd_drops_total", "counter",
           "Packets lost before egressd saw them: kernel = capture ring full, "
           "ifdrop = interface or driver.");
    for (size_t i = 0; i < v->nworkers; i++) {
        worker_sample(b, "egressd_drops_total", v, i, "cause=\"kernel\"", v->worker[i].drop_kernel);
        worker_sample(b, "egressd_drops_total", v, i, "cause=\"ifdrop\"", v->worker[i].drop_ifdrop);
    }
    family(b, "egressd_flows_active", "gauge", "Flows tracked now.");
    for (size_t i = 0; i < v->nworkers; i++)
        worker_sample(b, "egressd_flows_active", v, i, NULL, v->worker[i].flow.active);
    family(b, "egressd_flows_created_total", "counter", "Flows created.");
    for (size_t i = 0; i < v->nworkers; i++)
        worker_sample(b, "egressd_flows_created_total", v, i, NULL,
                      v->worker[i].flow.flows_created);
    family(b, "egressd_flows_ended_total", "counter",
           "Flow records emitted, by reason (active = interim record).");
    for (size_t i = 0; i < v->nworkers; i++) {
        for (unsigned r = 0; r < END_REASON_MAX; r++) {
            char extra[64];
            snprintf(extra, sizeof(extra), "reason=\"%s\"", flow_end_reason_name(r));
            worker_sample(b, "egressd_flows_ended_total", v, i, extra, v->worker[i].flow.records[r]);
        }
    }
    family(b, "egressd_alerts_total", "counter", "Alert events written.");
    evbuffer_add_printf(b, "egressd_alerts_total %" PRIu64 "\n", v->total->alerts);
    family(b, "egressd_alerts_suppressed_total", "counter",
           "Policy matches folded into an earlier alert.");
    evbuffer_add_printf(b, "egressd_alerts_suppressed_total %" PRIu64 "\n",
                        v->total->alerts_suppressed);
    const struct redis_stats *r = &v->total->redis;
    if (r->enabled) {
        static const struct {
            const char *name, *type, *help;
            size_t off;
        } rs[] = {
            {"egressd_redis_records_total", "counter", "Records handed to the Redis sink.",
             offsetof(struct redis_stats, records)},
            {"egressd_redis_sent_total", "counter", "Stream entries Redis acknowledged.",
             offsetof(struct redis_stats, sent)},
            {"egressd_redis_spooled_total", "counter",
             "Records written to the on-disk spool (all of them with a named spool).",
             offsetof(struct redis_stats, spooled)},
            {"egressd_redis_unspooled_total", "counter",
             "Records kept in memory only: the named spool was full or failing.",
             offsetof(struct redis_stats, unspooled)},
            {"egressd_redis_aggregates_unwritten_total", "counter",
             "Aggregate updates that did not reach Redis.",
             offsetof(struct redis_stats, agg_unwritten)},
            {"egressd_redis_dropped_total", "counter",
             "Records lost: queue and spool full, or refused by Redis.",
             offsetof(struct redis_stats, dropped)},
            {"egressd_redis_reconnects_total", "counter", "Connections made after the first.",
             offsetof(struct redis_stats, reconnects)},
            {"egressd_redis_resent_total", "counter",
             "Records sent again after a lost answer or master (each may be written twice).",
             offsetof(struct redis_stats, resent)},
            {"egressd_redis_queue_depth", "gauge", "Records waiting in memory for Redis.",
             offsetof(struct redis_stats, queue_depth)},
            {"egressd_redis_spool_depth", "gauge", "Records waiting in the on-disk spool.",
             offsetof(struct redis_stats, spool_depth)},
        };
        for (size_t k = 0; k < EGR_ARRAY_LEN(rs); k++) {
            uint64_t val;
            memcpy(&val, (const char *)r + rs[k].off, sizeof(val));
            family(b, rs[k].name, rs[k].type, rs[k].help);
            evbuffer_add_printf(b, "%s %" PRIu64 "\n", rs[k].name, val);
        }
    }
    family(b, "egressd_up", "gauge", "1 while every worker is capturing.");
    evbuffer_add_printf(b, "egressd_up %d\n", v->healthy ? 1 : 0);
    write_build_info(b);
}

/* Both endpoints answer from a fresh view: /metrics the exposition format,
 * /healthz a word and 200 or 503. */
static void answer(struct evhttp_request *req, struct metrics *m, int health)
{
    struct metrics_view v;
    memset(&v, 0, sizeof(v));
    m->fn(m->arg, &v);
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    if (!health) {
        metrics_render(b, &v);
        evhttp_add_header(h, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        evhttp_send_reply(req, HTTP_OK, "OK", b);
    } else {
        evbuffer_add_printf(b, "%s\n", v.healthy ? "ok" : "not capturing");
        evhttp_add_header(h, "Content-Type", "text/plain");
        evhttp_send_reply(req, v.healthy ? HTTP_OK : HTTP_SERVUNAVAIL,
                          v.healthy ? "OK" : "Service Unavailable", b);
    }
    evbuffer_free(b);
}

static void on_metrics(struct evhttp_request *req, void *arg)
{
    answer(req, arg, 0);
}

static void on_healthz(struct evhttp_request *req, void *arg)
{
    answer(req, arg, 1);
}

/* "PORT", "HOST:PORT", "[V6]:PORT" -> host, port. */
static int parse_addr(const char *addr, char *host, size_t hostlen, int *port)
{
    const char *colon;
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (!end || end[1] != ':' || (size_t)(end - addr - 1) >= hostlen)
            return -1;
        memcpy(host, addr + 1, (size_t)(end - addr - 1));
        host[end - addr - 1] = '\0';
        colon = end + 1;
    } else if ((colon = strrchr(addr, ':'))) {
        if ((size_t)(colon - addr) >= hostlen || colon == addr)
            return -1;
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
    } else {
        snprintf(host, hostlen, "127.0.0.1");
        colon = addr - 1;
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || p < 0 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

int metrics_open(struct event_base *base, const char *addr, metrics_view_fn fn, void *arg,
                 struct metrics **out, struct egr_err *err)
{
    char host[128];
    int port;
    if (parse_addr(addr, host, sizeof(host), &port) != 0)
        return egr_fail(err, EGR_EINVAL, "--metrics '%s': expected PORT, HOST:PORT or [V6]:PORT",
                        addr);
    struct metrics *m = calloc(1, sizeof(*m));
    if (!m || !(m->http = evhttp_new(base))) {
        free(m);
        return egr_fail(err, EGR_ENOMEM, "metrics: out of memory");
    }
    m->fn = fn;
    m->arg = arg;
    evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_cb(m->http, "/metrics", on_metrics, m);
    evhttp_set_cb(m->http, "/healthz", on_healthz, m);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(m->http, host, (uint16_t)port);
    if (!bs) {
        evhttp_free(m->http);
        free(m);
        return egr_fail(err, EGR_EIO, "--metrics %s: cannot listen (address in use or not local)",
                        addr);
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    m->port = port;
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &len) == 0)
        m->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    *out = m;
    return EGR_OK;
}

int metrics_port(const struct metrics *m)
{
    return m->port;
}

void metrics_close(struct metrics *m)
{
    if (!m)
        return;
    evhttp_free(m->http);
    free(m);
}

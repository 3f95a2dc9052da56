/* main.c - egressd-dashboard: options, wiring, the event loop.
 *
 *   egressd-dashboard [--redis URL] [--prefix P] [--layout L] [--listen HOST:PORT]
 *                     [--token T] [--static DIR] [--max-connections N]
 *                     [--request-timeout S]
 *
 * One thread: libevent runs the HTTP server (dash-http.c) and the Redis
 * connections (dash-redis.c). It reads Redis only; see docs/dashboard.md.
 */
#include <event2/event.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dashboard.h"

#ifndef EGRESSD_DASHBOARD_DIR
#define EGRESSD_DASHBOARD_DIR "/usr/local/share/egressd/dashboards"
#endif

/* Descriptors kept for what is not a client: Redis (one per cluster
 * master and the alert reader), the static file being sent, the listener,
 * the event loop's own, and the 16 that connections being closed may hold
 * for a moment beyond the cap (dash-conn.c). */
#define FD_RESERVE 48

static void usage(FILE *f)
{
    fprintf(f,
            "usage: egressd-dashboard [options]\n"
            "  --redis URL        Redis to read (default redis://127.0.0.1:6379; same syntax as egressd)\n"
            "  --prefix P         key prefix (default egress)\n"
            "  --layout L         the sensors' redis.layout: auto (per_sensor on a cluster), shared\n"
            "                     or per_sensor (default auto)\n"
            "  --listen HOST:PORT address to serve on (default 127.0.0.1:8080)\n"
            "  --token T          require 'Authorization: Bearer T' or ?token=T on /api/* and /healthz\n"
            "                     (default: $EGRESSD_DASHBOARD_TOKEN)\n"
            "  --static DIR       the page's files (default: dashboards/ beside the build or installed)\n"
            "  --max-connections N  connections open at once (default 1024, and at most the\n"
            "                     descriptor limit less %d); beyond it a new one pushes out the\n"
            "                     oldest that is not being answered\n"
            "  --request-timeout S  seconds a request may take to arrive whole (default 10)\n",
            FD_RESERVE);
}

/* The soft descriptor limit raised to the hard one; the connection cap is
 * what that leaves. */
static size_t conn_cap(size_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return want;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit up = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl.rlim_cur = rl.rlim_max;
    }
    if (rl.rlim_cur == RLIM_INFINITY)
        return want;
    size_t room = rl.rlim_cur > FD_RESERVE + 8 ? (size_t)rl.rlim_cur - FD_RESERVE : 8;
    return want < room ? want : room;
}

/* 127.0.0.0/8, ::1, "localhost": nothing beyond this host can connect. */
static int is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (!strcmp(host, "localhost"))
        return 1;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

static int has_index(const char *dir)
{
    char p[PATH_MAX];
    struct stat st;
    return (size_t)snprintf(p, sizeof(p), "%s/index.html", dir) < sizeof(p) && stat(p, &st) == 0 &&
           S_ISREG(st.st_mode);
}

/* The dashboards/ directory: beside the build directory (a source tree's
 * build/), under the executable's prefix, or where `install` put it. The
 * places tried go into `tried` for the error message. */
static int find_static(char *out, size_t cap, char *tried, size_t tcap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    const char *rel[] = {"/../dashboards", "/../share/egressd/dashboards"};
    size_t tl = 0;
    tried[0] = '\0';
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
            char cand[PATH_MAX + 64];
            snprintf(cand, sizeof(cand), "%s%s", exe, rel[i]);
            char *real = realpath(cand, NULL);
            if (real && has_index(real) && strlen(real) < cap) {
                strcpy(out, real);
                free(real);
                return 1;
            }
            free(real);
            if (tl < tcap) {
                int w = snprintf(tried + tl, tcap - tl, "%s, ", cand);
                tl += w > 0 ? (size_t)w : 0;
            }
        }
    }
    if (has_index(EGRESSD_DASHBOARD_DIR) && strlen(EGRESSD_DASHBOARD_DIR) < cap) {
        strcpy(out, EGRESSD_DASHBOARD_DIR);
        return 1;
    }
    if (tl < tcap)
        snprintf(tried + tl, tcap - tl, "%s", EGRESSD_DASHBOARD_DIR);
    return 0;
}

/* "host:port", "[v6]:port", "host" (port 8080) or ":port" (127.0.0.1). */
static int parse_listen(const char *s, char *host, size_t cap, int *port)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close)
            return 0;
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close[1] == ':' ? close + 1 : NULL;
        if (close[1] && !colon)
            return 0;
    } else {
        colon = strrchr(s, ':');
        hl = colon ? (size_t)(colon - s) : strlen(s);
    }
    if (hl >= cap)
        return 0;
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (!hl)
        strcpy(host, "127.0.0.1");
    *port = 8080;
    if (colon) {
        char *end;
        long p = strtol(colon + 1, &end, 10);
        if (*end || p < 0 || p > 65535 || end == colon + 1)
            return 0;
        *port = (int)p;
    }
    return 1;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"redis", required_argument, NULL, 'r'},  {"prefix", required_argument, NULL, 'p'},
        {"listen", required_argument, NULL, 'l'}, {"token", required_argument, NULL, 't'},
        {"static", required_argument, NULL, 's'}, {"help", no_argument, NULL, 'h'},
        {"layout", required_argument, NULL, 'L'},
        {"max-connections", required_argument, NULL, 'm'},
        {"request-timeout", required_argument, NULL, 'T'},
        {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0}};
    const char *url = "redis://127.0.0.1:6379", *prefix = "egress", *listen = "127.0.0.1:8080";
    const char *token = getenv("EGRESSD_DASHBOARD_TOKEN"), *static_opt = NULL;
    const char *layout_opt = "auto";
    long max_conns = 1024;
    double req_timeout = 10;
    char *end;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'r': url = optarg; break;
        case 'p': prefix = optarg; break;
        case 'l': listen = optarg; break;
        case 't': token = optarg; break;
        case 's': static_opt = optarg; break;
        case 'L': layout_opt = optarg; break;
        case 'm':
            max_conns = strtol(optarg, &end, 10);
            if (*end || end == optarg || max_conns < 1 || max_conns > 1000000) {
                fprintf(stderr, "egressd-dashboard: --max-connections %s: expected 1 to 1000000\n",
                        optarg);
                return 2;
            }
            break;
        case 'T':
            req_timeout = strtod(optarg, &end);
            if (*end || end == optarg || !(req_timeout >= 0.1 && req_timeout <= 3600)) {
                fprintf(stderr, "egressd-dashboard: --request-timeout %s: expected 0.1 to 3600 s\n",
                        optarg);
                return 2;
            }
            break;
        case 'V': printf("egressd-dashboard %s\n", EGRESSD_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "egressd-dashboard: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    struct egr_err err = {{0}};
    struct redis_endpoint ep;
    if (redis_url_parse(url, &ep, &err) != EGR_OK) {
        fprintf(stderr, "egressd-dashboard: %s\n", err.msg);
        return 1;
    }
    if (!*prefix || strlen(prefix) > 200) {
        fprintf(stderr, "egressd-dashboard: --prefix must be 1 to 200 characters\n");
        return 1;
    }
    int layout;
    if (!strcmp(layout_opt, "auto"))
        layout = DASH_LAYOUT_AUTO;
    else if (!strcmp(layout_opt, "shared"))
        layout = DASH_LAYOUT_SHARED;
    else if (!strcmp(layout_opt, "per_sensor"))
        layout = DASH_LAYOUT_PER_SENSOR;
    else {
        fprintf(stderr, "egressd-dashboard: --layout %s: expected auto, shared or per_sensor\n",
                layout_opt);
        return 1;
    }
    struct dash_http_opts o = {0};
    char host[256], dir[PATH_MAX], tried[3 * PATH_MAX];
    if (!parse_listen(listen, host, sizeof(host), &o.listen_port)) {
        fprintf(stderr, "egressd-dashboard: --listen %s: expected HOST:PORT\n", listen);
        return 1;
    }
    o.listen_host = host;
    if (static_opt) {
        if (!has_index(static_opt)) {
            fprintf(stderr, "egressd-dashboard: --static %s: no index.html there\n", static_opt);
            return 1;
        }
        snprintf(dir, sizeof(dir), "%s", static_opt);
    } else if (!find_static(dir, sizeof(dir), tried, sizeof(tried))) {
        fprintf(stderr,
                "egressd-dashboard: the page's files are missing: no index.html in %s "
                "(give --static DIR)\n",
                tried);
        return 1;
    }
    o.static_dir = dir;
    o.token = token;
    o.max_conns = conn_cap((size_t)max_conns);
    o.request_timeout = req_timeout;
    if (!(token && *token) && !is_loopback(host))
        fprintf(stderr,
                "egressd-dashboard: warning: listening on %s with no token: anyone who can reach "
                "it reads the sensors' data (give --token or EGRESSD_DASHBOARD_TOKEN)\n",
                host);

    signal(SIGPIPE, SIG_IGN);
    struct event_base *base = event_base_new();
    if (!base) {
        fprintf(stderr, "egressd-dashboard: cannot create the event loop\n");
        return 1;
    }
    struct dash_redis *redis = NULL;
    struct dash_http *http = NULL;
    if (dash_http_new(base, &redis, &o, &http, &err) != EGR_OK) {
        fprintf(stderr, "egressd-dashboard: %s\n", err.msg);
        event_base_free(base);
        return 1;
    }
    redis = dash_redis_new(base, &ep, prefix, layout, dash_http_notify, http);
    struct event *sigint = evsignal_new(base, SIGINT, on_signal, base);
    struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    if (!redis || !sigint || !sigterm) {
        fprintf(stderr, "egressd-dashboard: out of memory\n");
        return 1;
    }
    event_add(sigint, NULL);
    event_add(sigterm, NULL);
    fprintf(stderr,
            "egressd-dashboard: serving http://%s%s%s:%d/ from %s, reading %s%s (at most %zu "
            "connections)\n",
            strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", o.listen_port,
            dir, ep.shown, token && *token ? " (token required)" : "", o.max_conns);
    event_base_dispatch(base);

    /* Redis first: its pending batches answer their HTTP requests. */
    dash_redis_free(redis);
    redis = NULL;
    dash_http_free(http);
    event_free(sigint);
    event_free(sigterm);
    event_base_free(base);
    return 0;
}

/* pktgen-demo.c - the ready scenarios of include/egressd/pktgen.h: the demo
 * capture (a datacenter edge: load balancer and firewall management hosts,
 * an IPv6 appliance, a workstation; 2025-10-15 08:00 UTC, five minutes) and
 * the hostile capture (names full of markup, quotes, control bytes and
 * invalid UTF-8). docs/pktgen.md lists every flow: the demo policy and the
 * tests written against these captures depend on that list, so change both
 * together.
 *
 * Each conversation is written whole, one after the other; the writer's
 * sort mode interleaves them by time.
 */
#include "egressd/pktgen.h"

#include <stdlib.h>
#include <string.h>

#define T0 PG_DEMO_START_US
#define AT(s, ms) (T0 + PG_US(s) + PG_MS(ms))
#define SCRATCH (512 * 1024)

/* Home addresses of the demo (see docs/pktgen.md) */
#define RESOLVER "10.20.0.53"
#define RESOLVER6 "fd00:20::53"
#define BIGIP "10.20.1.10"
#define FORTIGATE "10.20.1.20"
#define VIRTUAL_SERVER "10.20.2.80"
#define WORKSTATION "10.20.5.50"
#define APPLIANCE6 "fd00:20::10"

struct scn {
    struct pg_writer *w;
    uint8_t *buf; /* SCRATCH bytes for payloads */
    uint16_t dns_id;
};

/* One DNS question and its answer: query at t, answer rtt_us later. */
static void dns(struct scn *s, const char *client, uint16_t cport, const char *server,
                const void *name, size_t name_len, uint16_t qtype,
                const struct pg_dns_answer *ans, size_t n, uint64_t t, uint32_t rtt_us)
{
    uint16_t id = s->dns_id;
    s->dns_id = (uint16_t)(s->dns_id * 31u + 0x2f1bu);
    uint8_t *q = s->buf, *r = s->buf + SCRATCH / 2;
    size_t qn = pg_dns_query_n(q, SCRATCH / 2, id, name, name_len, qtype);
    size_t rn = pg_dns_response_n(r, SCRATCH / 2, id, name, name_len, qtype, 0, ans, n);
    if (qn == 0 || rn == 0) {
        pg_abort(s->w, "DNS builder refused a name");
        return;
    }
    pg_udp(s->w, client, cport, server, 53, q, qn, t);
    pg_udp(s->w, server, 53, client, cport, r, rn, t + rtt_us);
}

/* A lookup through the site resolver: the client asks RESOLVER, which (on a
 * cache miss, upstream != NULL) asks `upstream` first. */
static void lookup(struct scn *s, const char *client, uint16_t cport, const char *upstream,
                   uint16_t rport, const char *name, uint16_t qtype,
                   const struct pg_dns_answer *ans, size_t n, uint64_t t)
{
    int v6 = strchr(client, ':') != NULL;
    const char *res = v6 ? RESOLVER6 : RESOLVER;
    uint32_t total = 400;
    if (upstream) {
        dns(s, res, rport, upstream, name, strlen(name), qtype, ans, n, t + 150, 11800);
        total += 11800;
    }
    dns(s, client, cport, res, name, strlen(name), qtype, ans, n, t, total);
}

/* A payload builder's result; 0 (it refused) fails the scenario. */
static size_t need(struct scn *s, size_t n, const char *what)
{
    if (n == 0)
        pg_abort(s->w, what);
    return n;
}

/* A TLS 1.2 session: handshake with SNI (NULL: none) and certificate,
 * `up` and `down` bytes of application data, close by the client. */
static void tls(struct scn *s, const char *client, uint16_t cport, const char *server,
                uint16_t sport, const char *sni, const char *cert, size_t up, size_t down,
                uint64_t t, uint32_t rtt_us, int client_near)
{
    struct pg_tcp *c = pg_tcp_new(s->w, client, cport, server, sport);
    pg_tcp_set_rtt(c, rtt_us, client_near);
    pg_tcp_handshake(c, t);
    size_t n = need(s, pg_tls_client_hello(s->buf, SCRATCH, sni), "ClientHello");
    pg_tcp_send(c, PG_C2S, s->buf, n, PG_T_NEXT);
    n = need(s, pg_tls_server_hello(s->buf, SCRATCH, cert), "ServerHello");
    pg_tcp_send(c, PG_S2C, s->buf, n, PG_T_NEXT);
    n = need(s, pg_tls_finished(s->buf, SCRATCH, 1), "Finished");
    pg_tcp_send(c, PG_C2S, s->buf, n, PG_T_NEXT);
    n = need(s, pg_tls_finished(s->buf, SCRATCH, 0), "Finished");
    pg_tcp_send(c, PG_S2C, s->buf, n, PG_T_NEXT);
    n = need(s, pg_tls_app_data(s->buf, SCRATCH, up, (uint32_t)cport), "application data");
    pg_tcp_send(c, PG_C2S, s->buf, n, PG_T_NEXT);
    n = need(s, pg_tls_app_data(s->buf, SCRATCH, down, (uint32_t)cport + 7u), "application data");
    pg_tcp_send(c, PG_S2C, s->buf, n, PG_T_NEXT);
    pg_tcp_close(c, PG_CLOSE_FIN, PG_MS(200) + pg_tcp_time(c));
}

/* An HTTP/1.1 exchange on a new connection: request (with a body when
 * body > 0), a response of resp_len bytes, close by the client. */
static void http(struct scn *s, const char *client, uint16_t cport, const char *server,
                 uint16_t sport, const char *method, const char *host, const char *path,
                 const char *ua, size_t body, int status, const char *ctype, size_t resp_len,
                 uint64_t t, uint32_t rtt_us)
{
    struct pg_tcp *c = pg_tcp_new(s->w, client, cport, server, sport);
    pg_tcp_set_rtt(c, rtt_us, 1);
    pg_tcp_handshake(c, t);
    size_t n = body ? pg_http_request_body(s->buf, SCRATCH, method, host, path, ua,
                                           "application/octet-stream", body)
                    : pg_http_request(s->buf, SCRATCH, method, host, path, ua);
    pg_tcp_send(c, PG_C2S, s->buf, need(s, n, "HTTP request"), PG_T_NEXT);
    n = need(s, pg_http_response(s->buf, SCRATCH, status, ctype, resp_len), "HTTP response");
    pg_tcp_send(c, PG_S2C, s->buf, n, PG_T_NEXT);
    pg_tcp_close(c, PG_CLOSE_FIN, PG_MS(50) + pg_tcp_time(c));
}

static void ntp(struct scn *s, const char *client, const char *server, uint64_t t, uint32_t rtt_us)
{
    size_t n = need(s, pg_ntp_client(s->buf, SCRATCH, t), "NTP");
    pg_udp(s->w, client, 123, server, 123, s->buf, n, t);
    n = need(s, pg_ntp_server(s->buf, SCRATCH, t, t + rtt_us), "NTP");
    pg_udp(s->w, server, 123, client, 123, s->buf, n, t + rtt_us);
}

static void ping(struct scn *s, const char *src, const char *dst, uint16_t id, uint16_t seq,
                 uint64_t t, uint32_t rtt_us)
{
    uint8_t data[56];
    pg_fill(data, sizeof(data), seq);
    pg_icmp_echo(s->w, src, dst, 0, id, seq, data, sizeof(data), t);
    pg_icmp_echo(s->w, dst, src, 1, id, seq, data, sizeof(data), t + rtt_us);
}

/* SSH seen from the middle: the capture starts at the server's banner (no
 * handshake), so only the ports say who is the client. */
static void ssh_midstream(struct scn *s, uint64_t t)
{
    static const char server_banner[] = "SSH-2.0-OpenSSH_7.4\r\n";
    static const char client_banner[] = "SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13.5\r\n";
    struct pg_tcp *c = pg_tcp_new(s->w, "67.43.156.1", 51514, BIGIP, 22);
    pg_tcp_set_rtt(c, 80000, 0);
    pg_tcp_send(c, PG_S2C, server_banner, sizeof(server_banner) - 1, t);
    pg_tcp_send(c, PG_C2S, client_banner, sizeof(client_banner) - 1, PG_T_NEXT);
    size_t n = need(s, pg_ssh_kexinit(s->buf, SCRATCH, 1, 0x5e44), "KEXINIT");
    pg_tcp_send(c, PG_S2C, s->buf, n, PG_T_NEXT);
    n = need(s, pg_ssh_kexinit(s->buf, SCRATCH, 0, 0xc11e), "KEXINIT");
    pg_tcp_send(c, PG_C2S, s->buf, n, PG_T_NEXT);
    /* key exchange, authentication, then an interactive session: opaque
     * packets of SSH-like sizes */
    static const uint16_t sizes[][2] = {{48, 0}, {0, 1124}, {16, 0}, {0, 52}, {68, 0},
                                        {0, 52}, {116, 0}, {0, 36}, {100, 0}, {0, 580}};
    for (size_t i = 0; i < EGR_ARRAY_LEN(sizes); i++) {
        int from_client = sizes[i][0] != 0;
        size_t len = from_client ? sizes[i][0] : sizes[i][1];
        pg_fill(s->buf, len, (uint32_t)i + 1);
        pg_tcp_send(c, from_client ? PG_C2S : PG_S2C, s->buf, len, PG_T_NEXT);
    }
    /* keystrokes and echoes over the next two minutes */
    for (int k = 0; k < 24; k++) {
        uint64_t tk = t + PG_US(5) + (uint64_t)k * PG_MS(4700);
        pg_fill(s->buf, 36, 100u + (uint32_t)k);
        pg_tcp_send(c, PG_C2S, s->buf, 36, tk);
        pg_tcp_send(c, PG_S2C, s->buf, k % 6 == 5 ? 1380 : 36, PG_T_NEXT);
    }
    pg_tcp_close(c, PG_CLOSE_FIN, PG_T_NEXT);
}

static int finish(struct pg_writer *w, struct scn *s, struct egr_err *err)
{
    free(s->buf);
    return pg_close(w, err);
}

int pg_demo_write(const char *path, struct egr_err *err)
{
    static const char ua_firefox[] =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0";
    struct scn s = {.w = pg_open(path, err), .buf = malloc(SCRATCH), .dns_id = 0x3a1f};
    if (!s.w) {
        free(s.buf);
        return EGR_EIO;
    }
    if (!s.buf) {
        pg_abort(s.w, "out of memory");
        return finish(s.w, &s, err);
    }
    pg_set_sort(s.w, 1);

    /* --- F5 BIG-IP management address 10.20.1.10 --- */
    const struct pg_dns_answer ntp_ans[] = {{PG_DNS_A, 150, NULL, "162.159.200.123"},
                                            {PG_DNS_A, 150, NULL, "162.159.200.1"}};
    lookup(&s, BIGIP, 41234, "8.8.8.8", 53411, "pool.ntp.org", PG_DNS_A, ntp_ans, 2, AT(0, 0));
    for (int i = 0; i < 5; i++)
        ntp(&s, BIGIP, "162.159.200.123", AT(64 * i, 50), 14800);

    const struct pg_dns_answer f5_ans[] = {{PG_DNS_CNAME, 300, NULL, "f5.map.fastly.net"},
                                           {PG_DNS_A, 30, NULL, "151.101.1.140"},
                                           {PG_DNS_A, 30, NULL, "151.101.65.140"}};
    lookup(&s, BIGIP, 41240, "8.8.4.4", 53412, "api.f5.com", PG_DNS_A, f5_ans, 3, AT(2, 0));
    tls(&s, BIGIP, 45112, "151.101.1.140", 443, "api.f5.com", "api.f5.com", 612, 4350, AT(2, 100),
        18000, 1);

    const struct pg_dns_answer sync_ans[] = {{PG_DNS_A, 60, NULL, "89.160.20.112"}};
    lookup(&s, BIGIP, 41251, "8.8.8.8", 53413, "cdn-updates.example-sync.net", PG_DNS_A,
           sync_ans, 1, AT(30, 0));
    tls(&s, BIGIP, 45130, "89.160.20.112", 443, "cdn-updates.example-sync.net",
        "cdn-updates.example-sync.net", 820, 48000, AT(30, 150), 35000, 1);

    http(&s, BIGIP, 45144, "175.16.199.1", 80, "POST", "175.16.199.1", "/upload/bigip-ucs.bin",
         "curl/7.47.1", 300 * 1024, 200, "text/plain", 2, AT(61, 0), 190000);

    tls(&s, BIGIP, 45160, "81.2.69.142", 443, NULL, "localhost", 2200, 1800, AT(95, 0), 25000, 1);

    ssh_midstream(&s, AT(120, 0));

    /* --- inbound to the virtual server 10.20.2.80:443 (not egress) --- */
    tls(&s, "216.160.83.56", 52811, VIRTUAL_SERVER, 443, "shop.example.com", "shop.example.com",
        740, 12500, AT(10, 0), 60000, 0);
    tls(&s, "2.125.160.216", 60233, VIRTUAL_SERVER, 443, "shop.example.com", "shop.example.com",
        910, 23100, AT(140, 0), 30000, 0);

    /* --- FortiGate management host 10.20.1.20 --- */
    const struct pg_dns_answer fgd_ans[] = {{PG_DNS_A, 300, NULL, "208.91.113.83"}};
    lookup(&s, FORTIGATE, 53001, "8.8.4.4", 53414, "update.fortiguard.net", PG_DNS_A, fgd_ans, 1,
           AT(5, 0));
    tls(&s, FORTIGATE, 30012, "208.91.113.83", 443, "update.fortiguard.net",
        "update.fortiguard.net", 2100, 20300, AT(5, 100), 95000, 1);
    for (uint16_t i = 0; i < 5; i++)
        ping(&s, FORTIGATE, "1.1.1.1", 0x1f2e, (uint16_t)(i + 1), AT(1 + 60 * i, 0), 12000);

    /* --- IPv6 appliance fd00:20::10 --- */
    const struct pg_dns_answer cf_ans[] = {{PG_DNS_AAAA, 300, NULL, "2606:4700:4700::1111"},
                                           {PG_DNS_AAAA, 300, NULL, "2606:4700:4700::1001"}};
    lookup(&s, APPLIANCE6, 50123, "2001:4860:4860::8888", 53420, "cloudflare-dns.com",
           PG_DNS_AAAA, cf_ans, 2, AT(20, 0));
    tls(&s, APPLIANCE6, 50124, "2606:4700:4700::1111", 443, "cloudflare-dns.com",
        "cloudflare-dns.com", 1500, 2600, AT(20, 100), 9000, 1);

    /* --- workstation 10.20.5.50, for contrast --- */
    const struct pg_dns_answer nssl_ans[] = {{PG_DNS_A, 60, NULL, "34.223.124.45"}};
    lookup(&s, WORKSTATION, 52001, "8.8.8.8", 53415, "neverssl.com", PG_DNS_A, nssl_ans, 1,
           AT(40, 0));
    http(&s, WORKSTATION, 51000, "34.223.124.45", 80, "GET", "neverssl.com", "/", ua_firefox, 0,
         200, "text/html", 2540, AT(40, 100), 150000);

    const struct pg_dns_answer bing_ans[] = {
        {PG_DNS_CNAME, 300, NULL, "www-www.bing.com.trafficmanager.net"},
        {PG_DNS_CNAME, 300, NULL, "dual-a-0001.a-msedge.net"},
        {PG_DNS_A, 60, NULL, "13.107.21.200"},
        {PG_DNS_A, 60, NULL, "204.79.197.200"}};
    lookup(&s, WORKSTATION, 52002, NULL, 0, "www.bing.com", PG_DNS_A, bing_ans, 4, AT(70, 0));
    tls(&s, WORKSTATION, 51010, "13.107.21.200", 443, "www.bing.com", "www.bing.com", 1900,
        31000, AT(70, 100), 12000, 1);

    const struct pg_dns_answer gh_ans[] = {{PG_DNS_A, 60, NULL, "140.82.121.4"}};
    lookup(&s, WORKSTATION, 52003, NULL, 0, "github.com", PG_DNS_A, gh_ans, 1, AT(150, 0));
    tls(&s, WORKSTATION, 51020, "140.82.121.4", 443, "github.com", "github.com", 2400, 61000,
        AT(150, 100), 21000, 1);

    const struct pg_dns_answer ghp_ans[] = {{PG_DNS_A, 3600, NULL, "185.199.108.153"}};
    lookup(&s, WORKSTATION, 52004, "8.8.4.4", 53416, "pages.github.com", PG_DNS_A, ghp_ans, 1,
           AT(210, 0));
    tls(&s, WORKSTATION, 51030, "185.199.108.153", 443, "pages.github.com", "pages.github.com",
        1300, 15800, AT(210, 100), 16000, 1);

    return finish(s.w, &s, err);
}

/* ----------------------------------------------------------------------
 * Hostile names
 */

#define HS(lit) lit, sizeof(lit) - 1

int pg_hostile_write(const char *path, struct egr_err *err)
{
    /* name: for TLS SNI, certificate and DNS; http: for HTTP Host and
     * User-Agent (no CR, LF or NUL, which would end the header) */
    static const struct {
        const char *name;
        size_t len;
        const char *http;
    } cases[] = {
        {HS("<script>alert(1)</script>"), "<script>alert(1)</script>"},
        {HS("\"><img src=x onerror=alert(1)>"), "\"><img src=x onerror=alert(1)>"},
        {HS("quote\"back\\slash'single.example"), "quote\"back\\slash'single.example"},
        {HS("\xff\xfe.bad\xc3.example"), "\xff\xfe.bad\xc3.example"},
        {HS("ctl\x01\x1f\x7f\t\n\r.example"), "ctl\x01\x1f\x7f\t.example"},
        {HS("nul\0byte.example"), NULL},
    };
    struct scn s = {.w = pg_open(path, err), .buf = malloc(SCRATCH), .dns_id = 0x0bad};
    if (!s.w) {
        free(s.buf);
        return EGR_EIO;
    }
    if (!s.buf) {
        pg_abort(s.w, "out of memory");
        return finish(s.w, &s, err);
    }
    for (size_t i = 0; i < EGR_ARRAY_LEN(cases); i++) {
        uint64_t t = T0 + PG_US(10 * i);
        uint16_t p = (uint16_t)(40000 + 10 * i);
        const struct pg_dns_answer a[] = {{PG_DNS_A, 60, NULL, "81.2.69.142"}};
        dns(&s, "10.20.9.9", p, RESOLVER, cases[i].name, cases[i].len, PG_DNS_A, a, 1, t, 900);

        struct pg_tcp *c = pg_tcp_open(s.w, "10.20.9.9", (uint16_t)(p + 1), "81.2.69.142", 443,
                                       t + PG_MS(100));
        size_t n = need(&s, pg_tls_client_hello_n(s.buf, SCRATCH, cases[i].name, cases[i].len),
                        "ClientHello");
        pg_tcp_send(c, PG_C2S, s.buf, n, PG_T_NEXT);
        n = need(&s, pg_tls_server_hello_n(s.buf, SCRATCH, cases[i].name, cases[i].len),
                 "ServerHello");
        pg_tcp_send(c, PG_S2C, s.buf, n, PG_T_NEXT);
        pg_tcp_close(c, PG_CLOSE_FIN, PG_T_NEXT);

        if (cases[i].http) {
            c = pg_tcp_open(s.w, "10.20.9.9", (uint16_t)(p + 2), "81.2.69.142", 80,
                            t + PG_MS(500));
            n = pg_http_request(s.buf, SCRATCH, "GET", cases[i].http,
                                i == 0 ? "/<script>alert(1)</script>?q=\"'\\" : "/",
                                cases[i].http);
            pg_tcp_send(c, PG_C2S, s.buf, need(&s, n, "HTTP request"), PG_T_NEXT);
            n = need(&s, pg_http_response(s.buf, SCRATCH, 404, "text/html", 120), "HTTP response");
            pg_tcp_send(c, PG_S2C, s.buf, n, PG_T_NEXT);
            pg_tcp_close(c, PG_CLOSE_FIN, PG_T_NEXT);
        }
    }
    return finish(s.w, &s, err);
}

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

#include "pktgen-scn.h"

#include <stdlib.h>
#include <string.h>

#define T0 PG_DEMO_START_US
#define AT(s, ms) (T0 + PG_US(s) + PG_MS(ms))

/* Home addresses of the demo (see docs/pktgen.md) */
#define RESOLVER "10.20.0.53"
#define RESOLVER6 "fd00:20::53"
#define BIGIP "10.20.1.10"
#define FORTIGATE "10.20.1.20"
#define VIRTUAL_SERVER "10.20.2.80"
#define WORKSTATION "10.20.5.50"
#define APPLIANCE6 "fd00:20::10"

/* A lookup through the demo's resolver (by the client's family). */
static void lookup(struct pg_scn *s, const char *client, uint16_t cport, const char *upstream,
                   uint16_t rport, const char *name, uint16_t qtype,
                   const struct pg_dns_answer *ans, size_t n, uint64_t t)
{
    const char *res = strchr(client, ':') ? RESOLVER6 : RESOLVER;
    pg_scn_lookup(s, res, client, cport, upstream, rport, name, qtype, ans, n, t);
}

/* SSH seen from the middle: the capture starts at the server's banner (no
 * handshake), so only the ports say who is the client. */
static void ssh_midstream(struct pg_scn *s, uint64_t t)
{
    static const char server_banner[] = "SSH-2.0-OpenSSH_7.4\r\n";
    static const char client_banner[] = "SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13.5\r\n";
    struct pg_tcp *c = pg_tcp_new(s->w, "67.43.156.1", 51514, BIGIP, 22);
    pg_tcp_set_rtt(c, 80000, 0);
    pg_tcp_send(c, PG_S2C, server_banner, sizeof(server_banner) - 1, t);
    pg_tcp_send(c, PG_C2S, client_banner, sizeof(client_banner) - 1, PG_T_NEXT);
    size_t n = pg_scn_need(s, pg_ssh_kexinit(s->buf, PG_SCN_SCRATCH, 1, 0x5e44), "KEXINIT");
    pg_tcp_send(c, PG_S2C, s->buf, n, PG_T_NEXT);
    n = pg_scn_need(s, pg_ssh_kexinit(s->buf, PG_SCN_SCRATCH, 0, 0xc11e), "KEXINIT");
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

int pg_demo_write(const char *path, struct egr_err *err)
{
    static const char ua_firefox[] =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0";
    struct pg_scn s;
    if (pg_scn_open(&s, path, 1, 0x3a1f, err) != EGR_OK)
        return EGR_EIO;
    if (!s.buf)
        return pg_scn_finish(&s, err);

    /* --- F5 BIG-IP management address 10.20.1.10 --- */
    const struct pg_dns_answer ntp_ans[] = {{PG_DNS_A, 150, NULL, "162.159.200.123"},
                                            {PG_DNS_A, 150, NULL, "162.159.200.1"}};
    lookup(&s, BIGIP, 41234, "8.8.8.8", 53411, "pool.ntp.org", PG_DNS_A, ntp_ans, 2, AT(0, 0));
    for (int i = 0; i < 5; i++)
        pg_scn_ntp(&s, BIGIP, "162.159.200.123", AT(64 * i, 50), 14800);

    const struct pg_dns_answer f5_ans[] = {{PG_DNS_CNAME, 300, NULL, "f5.map.fastly.net"},
                                           {PG_DNS_A, 30, NULL, "151.101.1.140"},
                                           {PG_DNS_A, 30, NULL, "151.101.65.140"}};
    lookup(&s, BIGIP, 41240, "8.8.4.4", 53412, "api.f5.com", PG_DNS_A, f5_ans, 3, AT(2, 0));
    pg_scn_tls(&s, BIGIP, 45112, "151.101.1.140", 443, "api.f5.com", "api.f5.com", 612, 4350, AT(2, 100),
        18000, 1);

    const struct pg_dns_answer sync_ans[] = {{PG_DNS_A, 60, NULL, "89.160.20.112"}};
    lookup(&s, BIGIP, 41251, "8.8.8.8", 53413, "cdn-updates.example-sync.net", PG_DNS_A,
           sync_ans, 1, AT(30, 0));
    pg_scn_tls(&s, BIGIP, 45130, "89.160.20.112", 443, "cdn-updates.example-sync.net",
        "cdn-updates.example-sync.net", 820, 48000, AT(30, 150), 35000, 1);

    pg_scn_http(&s, BIGIP, 45144, "175.16.199.1", 80, "POST", "175.16.199.1", "/upload/bigip-ucs.bin",
         "curl/7.47.1", 300 * 1024, 200, "text/plain", 2, AT(61, 0), 190000);

    pg_scn_tls(&s, BIGIP, 45160, "81.2.69.142", 443, NULL, "localhost", 2200, 1800, AT(95, 0), 25000, 1);

    ssh_midstream(&s, AT(120, 0));

    /* --- inbound to the virtual server 10.20.2.80:443 (not egress) --- */
    pg_scn_tls(&s, "216.160.83.56", 52811, VIRTUAL_SERVER, 443, "shop.example.com", "shop.example.com",
        740, 12500, AT(10, 0), 60000, 0);
    pg_scn_tls(&s, "2.125.160.216", 60233, VIRTUAL_SERVER, 443, "shop.example.com", "shop.example.com",
        910, 23100, AT(140, 0), 30000, 0);

    /* --- FortiGate management host 10.20.1.20 --- */
    const struct pg_dns_answer fgd_ans[] = {{PG_DNS_A, 300, NULL, "208.91.113.83"}};
    lookup(&s, FORTIGATE, 53001, "8.8.4.4", 53414, "update.fortiguard.net", PG_DNS_A, fgd_ans, 1,
           AT(5, 0));
    pg_scn_tls(&s, FORTIGATE, 30012, "208.91.113.83", 443, "update.fortiguard.net",
        "update.fortiguard.net", 2100, 20300, AT(5, 100), 95000, 1);
    for (uint16_t i = 0; i < 5; i++)
        pg_scn_ping(&s, FORTIGATE, "1.1.1.1", 0x1f2e, (uint16_t)(i + 1), AT(1 + 60 * i, 0), 12000);

    /* --- IPv6 appliance fd00:20::10 --- */
    const struct pg_dns_answer cf_ans[] = {{PG_DNS_AAAA, 300, NULL, "2606:4700:4700::1111"},
                                           {PG_DNS_AAAA, 300, NULL, "2606:4700:4700::1001"}};
    lookup(&s, APPLIANCE6, 50123, "2001:4860:4860::8888", 53420, "cloudflare-dns.com",
           PG_DNS_AAAA, cf_ans, 2, AT(20, 0));
    pg_scn_tls(&s, APPLIANCE6, 50124, "2606:4700:4700::1111", 443, "cloudflare-dns.com",
        "cloudflare-dns.com", 1500, 2600, AT(20, 100), 9000, 1);

    /* --- workstation 10.20.5.50, for contrast --- */
    const struct pg_dns_answer nssl_ans[] = {{PG_DNS_A, 60, NULL, "34.223.124.45"}};
    lookup(&s, WORKSTATION, 52001, "8.8.8.8", 53415, "neverssl.com", PG_DNS_A, nssl_ans, 1,
           AT(40, 0));
    pg_scn_http(&s, WORKSTATION, 51000, "34.223.124.45", 80, "GET", "neverssl.com", "/", ua_firefox, 0,
         200, "text/html", 2540, AT(40, 100), 150000);

    const struct pg_dns_answer bing_ans[] = {
        {PG_DNS_CNAME, 300, NULL, "www-www.bing.com.trafficmanager.net"},
        {PG_DNS_CNAME, 300, NULL, "dual-a-0001.a-msedge.net"},
        {PG_DNS_A, 60, NULL, "13.107.21.200"},
        {PG_DNS_A, 60, NULL, "204.79.197.200"}};
    lookup(&s, WORKSTATION, 52002, NULL, 0, "www.bing.com", PG_DNS_A, bing_ans, 4, AT(70, 0));
    pg_scn_tls(&s, WORKSTATION, 51010, "13.107.21.200", 443, "www.bing.com", "www.bing.com", 1900,
        31000, AT(70, 100), 12000, 1);

    const struct pg_dns_answer gh_ans[] = {{PG_DNS_A, 60, NULL, "140.82.121.4"}};
    lookup(&s, WORKSTATION, 52003, NULL, 0, "github.com", PG_DNS_A, gh_ans, 1, AT(150, 0));
    pg_scn_tls(&s, WORKSTATION, 51020, "140.82.121.4", 443, "github.com", "github.com", 2400, 61000,
        AT(150, 100), 21000, 1);

    const struct pg_dns_answer ghp_ans[] = {{PG_DNS_A, 3600, NULL, "185.199.108.153"}};
    lookup(&s, WORKSTATION, 52004, "8.8.4.4", 53416, "pages.github.com", PG_DNS_A, ghp_ans, 1,
           AT(210, 0));
    pg_scn_tls(&s, WORKSTATION, 51030, "185.199.108.153", 443, "pages.github.com", "pages.github.com",
        1300, 15800, AT(210, 100), 16000, 1);

    return pg_scn_finish(&s, err);
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
    struct pg_scn s;
    if (pg_scn_open(&s, path, 0, 0x0bad, err) != EGR_OK)
        return EGR_EIO;
    if (!s.buf)
        return pg_scn_finish(&s, err);
    for (size_t i = 0; i < EGR_ARRAY_LEN(cases); i++) {
        uint64_t t = T0 + PG_US(10 * i);
        uint16_t p = (uint16_t)(40000 + 10 * i);
        const struct pg_dns_answer a[] = {{PG_DNS_A, 60, NULL, "81.2.69.142"}};
        pg_scn_dns(&s, "10.20.9.9", p, RESOLVER, cases[i].name, cases[i].len, PG_DNS_A, a, 1, t, 900);

        struct pg_tcp *c = pg_tcp_open(s.w, "10.20.9.9", (uint16_t)(p + 1), "81.2.69.142", 443,
                                       t + PG_MS(100));
        size_t n = pg_scn_need(&s, pg_tls_client_hello_n(s.buf, PG_SCN_SCRATCH, cases[i].name, cases[i].len),
                        "ClientHello");
        pg_tcp_send(c, PG_C2S, s.buf, n, PG_T_NEXT);
        n = pg_scn_need(&s, pg_tls_server_hello_n(s.buf, PG_SCN_SCRATCH, cases[i].name, cases[i].len),
                 "ServerHello");
        pg_tcp_send(c, PG_S2C, s.buf, n, PG_T_NEXT);
        pg_tcp_close(c, PG_CLOSE_FIN, PG_T_NEXT);

        if (cases[i].http) {
            c = pg_tcp_open(s.w, "10.20.9.9", (uint16_t)(p + 2), "81.2.69.142", 80,
                            t + PG_MS(500));
            n = pg_http_request(s.buf, PG_SCN_SCRATCH, "GET", cases[i].http,
                                i == 0 ? "/<script>alert(1)</script>?q=\"'\\" : "/",
                                cases[i].http);
            pg_tcp_send(c, PG_C2S, s.buf, pg_scn_need(&s, n, "HTTP request"), PG_T_NEXT);
            n = pg_scn_need(&s, pg_http_response(s.buf, PG_SCN_SCRATCH, 404, "text/html", 120), "HTTP response");
            pg_tcp_send(c, PG_S2C, s.buf, n, PG_T_NEXT);
            pg_tcp_close(c, PG_CLOSE_FIN, PG_T_NEXT);
        }
    }
    return pg_scn_finish(&s, err);
}

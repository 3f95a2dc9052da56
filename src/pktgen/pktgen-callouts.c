/* pktgen-callouts.c - the long-lived callouts scenario (docs/pktgen.md):
 * what a compromised appliance does that a record-time check reports half
 * an hour late, beside traffic that must never alert.
 *
 * One BIG-IP management address (10.20.1.10) and a second one (10.20.1.11)
 * in home_net 10.20.0.0/16, 2025-10-15 09:00:00 UTC (PG_CALLOUTS_START_US):
 *
 *   shell       10.20.1.10:50001 -> 203.0.113.66:4444 TCP, a reverse shell to
 *               a bare address: SYN at +10 s, a command and its output every
 *               30 s for two hours (a quarter of that in the short version);
 *   shell443    10.20.1.10:50002 -> 203.0.113.67:443 TCP, the same over port
 *               443 without TLS: SYN at +12 s, first data 0.5 s later;
 *   tls         10.20.1.10:50003 -> 203.0.113.77:443 TCP, TLS with SNI
 *               update.evil-cdn.example: SYN at +20 s, ClientHello 2 ms
 *               later, then a keep-alive record every 60 s for an hour;
 *   beacon      10.20.1.10:53535 -> 198.51.100.53:53 UDP, a DNS query every
 *               60 s from +30 s for 30 minutes (15 in the short version),
 *               answered;
 *   vendor      10.20.1.10 resolves api.f5.com through 10.20.0.53 and opens
 *               TLS to it (allowed), plus NTP to 162.159.200.123 (allowed);
 *   upload      10.20.1.11:50010 -> api.f5.com (151.101.1.140):443, allowed
 *               TLS that uploads 3,000 bytes a second from +60 s for 10 min:
 *               1 MiB (1048576) is crossed about 6 minutes in;
 *   ssh-in      198.51.100.9:51515 -> 10.20.1.10:22, a mid-stream SSH session
 *               (no handshake seen, first packet from the appliance) every
 *               20 s for an hour: the appliance answers, never calls out;
 *   vs-clients  192.0.2.10..12 -> 10.20.2.80:443, clients of a virtual server.
 *
 * The short version (`short_version` = 1) starts every conversation at a
 * tenth of its offset and compresses every period and lifetime by 30 (the
 * shell and the beacon talk every second, the upload lasts 20 s), so that a
 * live test replays it in about half a minute; the decision points are the
 * same packets.
 */
#include "egressd/pktgen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCRATCH (256 * 1024)
#define BIGIP "10.20.1.10"
#define BIGIP2 "10.20.1.11"
#define RESOLVER "10.20.0.53"
#define VENDOR "151.101.1.140"

static void shell(struct pg_writer *w, uint8_t *buf, uint16_t cport, const char *dst,
                  uint16_t dport, uint64_t t, uint64_t period, uint64_t life, uint64_t first_delay)
{
    struct pg_tcp *c = pg_tcp_open(w, BIGIP, cport, dst, dport, t);
    pg_tcp_set_rtt(c, 40000, 1);
    uint64_t end = t + life;
    int i = 0;
    for (uint64_t at = t + first_delay; at < end; at += period, i++) {
        int n = snprintf((char *)buf, 128, "$ id; uname -a # %d\n", i);
        pg_tcp_send(c, PG_S2C, buf, (size_t)n, at);
        n = snprintf((char *)buf, 256, "uid=0(root) gid=0(root) groups=0(root)\nLinux bigip1 "
                     "3.10.0 #%d SMP x86_64 GNU/Linux\n", i);
        pg_tcp_send(c, PG_C2S, buf, (size_t)n, PG_T_NEXT);
    }
    pg_tcp_close(c, PG_CLOSE_FIN, end);
}

static void tls(struct pg_writer *w, uint8_t *buf, const char *client, uint16_t cport,
                const char *dst, const char *sni, uint64_t t, uint64_t period, uint64_t life,
                size_t up_per_period)
{
    struct pg_tcp *c = pg_tcp_open(w, client, cport, dst, 443, t);
    size_t n = pg_tls_client_hello(buf, SCRATCH, sni);
    pg_tcp_send(c, PG_C2S, buf, n, PG_T_NEXT);
    n = pg_tls_server_hello(buf, SCRATCH, sni);
    pg_tcp_send(c, PG_S2C, buf, n, PG_T_NEXT);
    n = pg_tls_finished(buf, SCRATCH, 1);
    pg_tcp_send(c, PG_C2S, buf, n, PG_T_NEXT);
    n = pg_tls_finished(buf, SCRATCH, 0);
    pg_tcp_send(c, PG_S2C, buf, n, PG_T_NEXT);
    uint64_t end = t + life;
    uint32_t seed = 7;
    for (uint64_t at = t + period; at < end; at += period) {
        n = pg_tls_app_data(buf, SCRATCH, up_per_period, seed++);
        pg_tcp_send(c, PG_C2S, buf, n, at);
        n = pg_tls_app_data(buf, SCRATCH, 64, seed++);
        pg_tcp_send(c, PG_S2C, buf, n, PG_T_NEXT);
    }
    pg_tcp_close(c, PG_CLOSE_FIN, end);
}

static int callouts(const char *path, int short_version, struct egr_err *err)
{
    struct pg_writer *w = pg_open(path, err);
    if (!w)
        return EGR_EIO;
    pg_set_sort(w, 1);
    uint8_t *buf = malloc(SCRATCH);
    if (!buf) {
        pg_abort(w, "out of memory");
        return pg_close(w, err);
    }
    const uint64_t T0 = PG_CALLOUTS_START_US;
    const uint64_t k = short_version ? 30 : 1; /* time compression */
    const uint64_t hour = PG_US(3600) / k;
#define AT(s) (T0 + PG_US(s) / (short_version ? 10 : 1)) /* a conversation's start */

    /* vendor: DNS for api.f5.com, TLS to it, NTP */
    struct pg_dns_answer ans[] = {{PG_DNS_A, 300, NULL, VENDOR}};
    size_t qn = pg_dns_query(buf, SCRATCH / 2, 0x4242, "api.f5.com", PG_DNS_A);
    size_t rn = pg_dns_response(buf + SCRATCH / 2, SCRATCH / 2, 0x4242, "api.f5.com", PG_DNS_A,
                                ans, 1);
    pg_udp(w, BIGIP, 41000, RESOLVER, 53, buf, qn, AT(1));
    pg_udp(w, RESOLVER, 53, BIGIP, 41000, buf + SCRATCH / 2, rn, AT(1) + PG_MS(3));
    tls(w, buf, BIGIP, 45000, VENDOR, "api.f5.com", AT(2), PG_US(30) / k, PG_US(120) / k,
        200);
    for (int i = 0; i < 4; i++) {
        uint64_t at = AT(5) + (uint64_t)i * PG_US(64) / k;
        size_t n = pg_ntp_client(buf, SCRATCH, at);
        pg_udp(w, BIGIP, 123, "162.159.200.123", 123, buf, n, at);
        n = pg_ntp_server(buf, SCRATCH, at, at + PG_MS(15));
        pg_udp(w, "162.159.200.123", 123, BIGIP, 123, buf, n, at + PG_MS(15));
    }

    /* shell and shell443 */
    shell(w, buf, 50001, "203.0.113.66", 4444, AT(10), PG_US(30) / k,
          short_version ? PG_US(30) : 2 * hour, PG_MS(500));
    shell(w, buf, 50002, "203.0.113.67", 443, AT(12), PG_US(30) / k,
          short_version ? PG_US(30) : 2 * hour, PG_MS(500));

    /* tls to an unknown name, kept alive */
    tls(w, buf, BIGIP, 50003, "203.0.113.77", "update.evil-cdn.example", AT(20),
        PG_US(60) / k, short_version ? PG_US(30) : hour, 100);

    /* beacon */
    for (int i = 0; i < (short_version ? 15 : 30); i++) {
        uint64_t at = AT(30) + (uint64_t)i * PG_US(60) / k;
        char name[64];
        snprintf(name, sizeof(name), "c%02d.beacon.example", i);
        struct pg_dns_answer b[] = {{PG_DNS_A, 60, NULL, "198.51.100.200"}};
        size_t q = pg_dns_query(buf, SCRATCH / 2, (uint16_t)(0x5000 + i), name, PG_DNS_A);
        size_t r = pg_dns_response(buf + SCRATCH / 2, SCRATCH / 2, (uint16_t)(0x5000 + i), name,
                                   PG_DNS_A, b, 1);
        pg_udp(w, BIGIP, 53535, "198.51.100.53", 53, buf, q, at);
        pg_udp(w, "198.51.100.53", 53, BIGIP, 53535, buf + SCRATCH / 2, r, at + PG_MS(30));
    }

    /* upload: 3000 bytes a second (100 per 1/30 s in the short version) */
    struct pg_tcp *u = pg_tcp_open(w, BIGIP2, 50010, VENDOR, 443, AT(60));
    size_t n = pg_tls_client_hello(buf, SCRATCH, "api.f5.com");
    pg_tcp_send(u, PG_C2S, buf, n, PG_T_NEXT);
    n = pg_tls_server_hello(buf, SCRATCH, "api.f5.com");
    pg_tcp_send(u, PG_S2C, buf, n, PG_T_NEXT);
    uint64_t up_end = AT(60) + PG_US(600) / k;
    uint32_t seed = 99;
    for (uint64_t at = AT(60) + PG_US(1) / k; at < up_end; at += PG_US(1) / k) {
        n = pg_tls_app_data(buf, SCRATCH, 3000 - 24, seed++);
        pg_tcp_send(u, PG_C2S, buf, n, at);
    }
    pg_tcp_close(u, PG_CLOSE_FIN, up_end);

    /* ssh-in, mid-stream: the appliance (server) speaks first in the capture */
    struct pg_tcp *s = pg_tcp_new(w, "198.51.100.9", 51515, BIGIP, 22);
    uint64_t ssh_end = AT(3) + (short_version ? PG_US(30) : hour);
    for (uint64_t at = AT(3); at < ssh_end; at += PG_US(20) / k) {
        n = pg_tls_app_data(buf, SCRATCH, 48, seed++); /* opaque bytes */
        pg_tcp_segment(s, PG_S2C, PG_TCP_PSH | PG_TCP_ACK, buf, n, at);
        pg_tcp_segment(s, PG_C2S, PG_TCP_PSH | PG_TCP_ACK, buf, 36, at + PG_MS(40));
    }
    pg_tcp_close(s, PG_CLOSE_NONE, ssh_end);

    /* vs-clients */
    for (int i = 0; i < 3; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "192.0.2.%d", 10 + i);
        struct pg_tcp *v = pg_tcp_open(w, ip, (uint16_t)(60000 + i), "10.20.2.80", 443,
                                       AT(4) + (uint64_t)i * PG_MS(700));
        n = pg_tls_client_hello(buf, SCRATCH, "shop.example.com");
        pg_tcp_send(v, PG_C2S, buf, n, PG_T_NEXT);
        n = pg_tls_server_hello(buf, SCRATCH, "shop.example.com");
        pg_tcp_send(v, PG_S2C, buf, n, PG_T_NEXT);
        pg_tcp_close(v, PG_CLOSE_FIN, PG_T_NEXT);
    }

#undef AT
    free(buf);
    return pg_close(w, err);
}

int pg_callouts_write(const char *path, struct egr_err *err)
{
    return callouts(path, 0, err);
}

int pg_callouts_short_write(const char *path, struct egr_err *err)
{
    return callouts(path, 1, err);
}

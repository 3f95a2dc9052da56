/* pktgen-scn.c - the conversation helpers of the ready scenarios (see
 * pktgen-scn.h): DNS exchanges and lookups through a resolver, TLS and
 * HTTP sessions, NTP polls, pings, opaque TCP exchanges.
 */
#include "pktgen-scn.h"

#include <stdlib.h>
#include <string.h>

/* Application data is built in pieces of this size: the scratch buffer
 * bounds one piece, not a session. */
#define APP_PIECE (256 * 1024)

int pg_scn_open(struct pg_scn *s, const char *path, int sort, uint16_t dns_id,
                struct egr_err *err)
{
    memset(s, 0, sizeof(*s));
    s->dns_id = dns_id;
    if (!(s->w = pg_open(path, err)))
        return EGR_EIO;
    if (!(s->buf = malloc(PG_SCN_SCRATCH)))
        pg_abort(s->w, "out of memory");
    if (sort)
        pg_set_sort(s->w, 1);
    return EGR_OK;
}

int pg_scn_finish(struct pg_scn *s, struct egr_err *err)
{
    free(s->buf);
    s->buf = NULL;
    return pg_close(s->w, err);
}

size_t pg_scn_need(struct pg_scn *s, size_t n, const char *what)
{
    if (n == 0)
        pg_abort(s->w, what);
    return n;
}

void pg_scn_dns(struct pg_scn *s, const char *client, uint16_t cport, const char *server,
                const void *name, size_t name_len, uint16_t qtype,
                const struct pg_dns_answer *ans, size_t n, uint64_t t, uint32_t rtt_us)
{
    if (!s->buf)
        return;
    uint16_t id = s->dns_id;
    s->dns_id = (uint16_t)(s->dns_id * 31u + 0x2f1bu);
    uint8_t *q = s->buf, *r = s->buf + PG_SCN_SCRATCH / 2;
    size_t qn = pg_dns_query_n(q, PG_SCN_SCRATCH / 2, id, name, name_len, qtype);
    size_t rn = pg_dns_response_n(r, PG_SCN_SCRATCH / 2, id, name, name_len, qtype, 0, ans, n);
    if (qn == 0 || rn == 0) {
        pg_abort(s->w, "DNS builder refused a name");
        return;
    }
    pg_udp(s->w, client, cport, server, 53, q, qn, t);
    pg_udp(s->w, server, 53, client, cport, r, rn, t + rtt_us);
}

void pg_scn_lookup(struct pg_scn *s, const char *resolver, const char *client, uint16_t cport,
                   const char *upstream, uint16_t rport, const char *name, uint16_t qtype,
                   const struct pg_dns_answer *ans, size_t n, uint64_t t)
{
    uint32_t total = 400;
    if (upstream) {
        pg_scn_dns(s, resolver, rport, upstream, name, strlen(name), qtype, ans, n, t + 150,
                   11800);
        total += 11800;
    }
    pg_scn_dns(s, client, cport, resolver, name, strlen(name), qtype, ans, n, t, total);
}

/* len bytes of application data from one side, in pieces; the first piece
 * uses `seed` itself, so sessions of one piece are as they always were. */
static void app_data(struct pg_scn *s, struct pg_tcp *c, int from_client, size_t len,
                     uint32_t seed)
{
    for (uint32_t i = 0; len > 0; i++) {
        size_t piece = len < APP_PIECE ? len : APP_PIECE;
        size_t n = pg_scn_need(s, pg_tls_app_data(s->buf, PG_SCN_SCRATCH, piece,
                                                  seed + 101u * i), "application data");
        if (!n)
            return;
        pg_tcp_send(c, from_client, s->buf, n, PG_T_NEXT);
        len -= piece;
    }
}

void pg_scn_tls(struct pg_scn *s, const char *client, uint16_t cport, const char *server,
                uint16_t sport, const char *sni, const char *cert, size_t up, size_t down,
                uint64_t t, uint32_t rtt_us, int client_near)
{
    if (!s->buf)
        return;
    struct pg_tcp *c = pg_tcp_new(s->w, client, cport, server, sport);
    pg_tcp_set_rtt(c, rtt_us, client_near);
    pg_tcp_handshake(c, t);
    size_t n = pg_scn_need(s, pg_tls_client_hello(s->buf, PG_SCN_SCRATCH, sni), "ClientHello");
    pg_tcp_send(c, PG_C2S, s->buf, n, PG_T_NEXT);
    n = pg_scn_need(s, pg_tls_server_hello(s->buf, PG_SCN_SCRATCH, cert), "ServerHello");
    pg_tcp_send(c, PG_S2C, s->buf, n, PG_T_NEXT);
    n = pg_scn_need(s, pg_tls_finished(s->buf, PG_SCN_SCRATCH, 1), "Finished");
    pg_tcp_send(c, PG_C2S, s->buf, n, PG_T_NEXT);
    n = pg_scn_need(s, pg_tls_finished(s->buf, PG_SCN_SCRATCH, 0), "Finished");
    pg_tcp_send(c, PG_S2C, s->buf, n, PG_T_NEXT);
    app_data(s, c, PG_C2S, up, (uint32_t)cport);
    app_data(s, c, PG_S2C, down, (uint32_t)cport + 7u);
    pg_tcp_close(c, PG_CLOSE_FIN, PG_MS(200) + pg_tcp_time(c));
}

void pg_scn_http(struct pg_scn *s, const char *client, uint16_t cport, const char *server,
                 uint16_t sport, const char *method, const char *host, const char *path,
                 const char *ua, size_t body, int status, const char *ctype, size_t resp_len,
                 uint64_t t, uint32_t rtt_us)
{
    if (!s->buf)
        return;
    struct pg_tcp *c = pg_tcp_new(s->w, client, cport, server, sport);
    pg_tcp_set_rtt(c, rtt_us, 1);
    pg_tcp_handshake(c, t);
    size_t n = body ? pg_http_request_body(s->buf, PG_SCN_SCRATCH, method, host, path, ua,
                                           "application/octet-stream", body)
                    : pg_http_request(s->buf, PG_SCN_SCRATCH, method, host, path, ua);
    pg_tcp_send(c, PG_C2S, s->buf, pg_scn_need(s, n, "HTTP request"), PG_T_NEXT);
    n = pg_scn_need(s, pg_http_response(s->buf, PG_SCN_SCRATCH, status, ctype, resp_len),
                    "HTTP response");
    pg_tcp_send(c, PG_S2C, s->buf, n, PG_T_NEXT);
    pg_tcp_close(c, PG_CLOSE_FIN, PG_MS(50) + pg_tcp_time(c));
}

void pg_scn_ntp(struct pg_scn *s, const char *client, const char *server, uint64_t t,
                uint32_t rtt_us)
{
    if (!s->buf)
        return;
    size_t n = pg_scn_need(s, pg_ntp_client(s->buf, PG_SCN_SCRATCH, t), "NTP");
    pg_udp(s->w, client, 123, server, 123, s->buf, n, t);
    n = pg_scn_need(s, pg_ntp_server(s->buf, PG_SCN_SCRATCH, t, t + rtt_us), "NTP");
    pg_udp(s->w, server, 123, client, 123, s->buf, n, t + rtt_us);
}

void pg_scn_ping(struct pg_scn *s, const char *src, const char *dst, uint16_t id, uint16_t seq,
                 uint64_t t, uint32_t rtt_us)
{
    uint8_t data[56];
    pg_fill(data, sizeof(data), seq);
    pg_icmp_echo(s->w, src, dst, 0, id, seq, data, sizeof(data), t);
    pg_icmp_echo(s->w, dst, src, 1, id, seq, data, sizeof(data), t + rtt_us);
}

void pg_scn_tcp_blob(struct pg_scn *s, const char *client, uint16_t cport, const char *server,
                     uint16_t sport, size_t up, size_t down, uint64_t t, uint32_t rtt_us)
{
    if (!s->buf)
        return;
    struct pg_tcp *c = pg_tcp_new(s->w, client, cport, server, sport);
    pg_tcp_set_rtt(c, rtt_us, 1);
    pg_tcp_handshake(c, t);
    size_t n = up < PG_SCN_SCRATCH ? up : PG_SCN_SCRATCH;
    pg_fill(s->buf, n, (uint32_t)cport);
    pg_tcp_send(c, PG_C2S, s->buf, n, PG_T_NEXT);
    n = down < PG_SCN_SCRATCH ? down : PG_SCN_SCRATCH;
    pg_fill(s->buf, n, (uint32_t)cport + 3u);
    pg_tcp_send(c, PG_S2C, s->buf, n, PG_T_NEXT);
    pg_tcp_close(c, PG_CLOSE_FIN, PG_MS(20) + pg_tcp_time(c));
}

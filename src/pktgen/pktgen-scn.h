/* pktgen-scn.h - conversation helpers the ready scenarios share (private to
 * src/pktgen: pktgen-demo.c, pktgen-incidents.c).
 *
 * A scenario is a writer in sort mode plus a scratch buffer: each helper
 * writes one whole conversation (a DNS exchange, a TLS session, an HTTP
 * exchange, an NTP poll, a ping) and the writer interleaves them by time at
 * close. A payload builder that refuses its input aborts the writer (sticky
 * error), so a scenario checks only pg_scn_finish().
 */
#ifndef EGRESSD_PKTGEN_SCN_H
#define EGRESSD_PKTGEN_SCN_H

#include <stddef.h>
#include <stdint.h>

#include "egressd/pktgen.h"

#define PG_SCN_SCRATCH (512 * 1024)

struct pg_scn {
    struct pg_writer *w;
    uint8_t *buf;     /* PG_SCN_SCRATCH bytes for payloads */
    uint16_t dns_id;  /* next DNS id; each exchange moves it on */
};

/* Opens path (sort = 1: in the writer's sort mode). EGR_OK, or EGR_EIO
 * with err set (nothing to finish). A scratch buffer that cannot be had
 * aborts the writer, so pg_scn_finish reports it. */
int pg_scn_open(struct pg_scn *s, const char *path, int sort, uint16_t dns_id,
                struct egr_err *err);

/* Writes the capture and frees everything: pg_close()'s result. */
int pg_scn_finish(struct pg_scn *s, struct egr_err *err);

/* n, or aborts the writer naming `what` when a builder returned 0. */
size_t pg_scn_need(struct pg_scn *s, size_t n, const char *what);

/* One DNS question and its answer: query at t, answer rtt_us later. */
void pg_scn_dns(struct pg_scn *s, const char *client, uint16_t cport, const char *server,
                const void *name, size_t name_len, uint16_t qtype,
                const struct pg_dns_answer *ans, size_t n, uint64_t t, uint32_t rtt_us);

/* A lookup through a site resolver: client asks `resolver`, which (on a
 * cache miss, upstream != NULL) asks `upstream` first, from port rport. */
void pg_scn_lookup(struct pg_scn *s, const char *resolver, const char *client, uint16_t cport,
                   const char *upstream, uint16_t rport, const char *name, uint16_t qtype,
                   const struct pg_dns_answer *ans, size_t n, uint64_t t);

/* A TLS 1.2 session: handshake with SNI (NULL: none) and certificate,
 * `up` and `down` bytes of application data (any size: written in pieces),
 * close by the client 200 ms after the last data. client_near = 0 puts the
 * sensor next to the server (pg_tcp_set_rtt). */
void pg_scn_tls(struct pg_scn *s, const char *client, uint16_t cport, const char *server,
                uint16_t sport, const char *sni, const char *cert, size_t up, size_t down,
                uint64_t t, uint32_t rtt_us, int client_near);

/* An HTTP/1.1 exchange on a new connection: request (with a body of `body`
 * bytes when > 0), a response of resp_len bytes, close by the client. */
void pg_scn_http(struct pg_scn *s, const char *client, uint16_t cport, const char *server,
                 uint16_t sport, const char *method, const char *host, const char *path,
                 const char *ua, size_t body, int status, const char *ctype, size_t resp_len,
                 uint64_t t, uint32_t rtt_us);

/* One NTP poll (port 123 both ends) and its answer. */
void pg_scn_ntp(struct pg_scn *s, const char *client, const char *server, uint64_t t,
                uint32_t rtt_us);

/* One echo request and its reply. */
void pg_scn_ping(struct pg_scn *s, const char *src, const char *dst, uint16_t id, uint16_t seq,
                 uint64_t t, uint32_t rtt_us);

/* A TCP connection carrying `up` and `down` opaque bytes (filler from
 * seed), for services whose payload no detection needs (WMI/DCE-RPC). */
void pg_scn_tcp_blob(struct pg_scn *s, const char *client, uint16_t cport, const char *server,
                     uint16_t sport, size_t up, size_t down, uint64_t t, uint32_t rtt_us);

#endif

/* pktgen.h - the project's own pcap writer and packet builder.
 *
 * The test suite crafts its captures with it and the demo writes its capture
 * with it, so the project never ships third-party captures. Output is a
 * classic pcap file, link type Ethernet, microsecond timestamps (libpcap's
 * dump API). Everything it writes is deterministic: the same calls give a
 * byte-identical file (sequence numbers, IP ids and "random" fields come
 * from hashes of the inputs, never from a clock or a RNG).
 *
 * Shape of a scenario:
 *
 *     struct egr_err err;
 *     struct pg_writer *w = pg_open("x.pcap", &err);
 *     struct pg_tcp *c = pg_tcp_open(w, "10.0.0.1", 40000, "8.8.8.8", 443, t);
 *     n = pg_tls_client_hello(buf, sizeof(buf), "dns.google");
 *     pg_tcp_send(c, PG_C2S, buf, n, PG_T_NEXT);
 *     pg_tcp_close(c, PG_CLOSE_FIN, PG_T_NEXT);
 *     if (pg_close(w, &err) != EGR_OK) ...
 *
 * Errors are sticky: a failing call (bad address text, oversized payload,
 * NULL connection after a failed pg_tcp_open) records the first error in the
 * writer and returns a negative EGR_E* code; later calls on that writer do
 * nothing, and pg_close() returns the first error with its message. So a
 * scenario may check only pg_close().
 *
 * Addresses are text ("10.0.0.1", "2001:db8::1"); the family follows from the
 * text and both ends of a packet must have the same family.
 *
 * Payload builders (pg_dns_*, pg_tls_*, pg_http_*, ...) write into a caller
 * buffer of `cap` bytes and return the length written, or 0 when `cap` is
 * too small or an argument is invalid; they never write past `cap`. Names
 * (SNI, DNS names, HTTP host, user agent) are raw bytes, not necessarily
 * UTF-8; the `_n` variants take (pointer, length) so a name may even hold a
 * NUL byte.
 *
 * Thread safety: a writer and its connections belong to one thread.
 */
#ifndef EGRESSD_PKTGEN_H
#define EGRESSD_PKTGEN_H

#include <stddef.h>
#include <stdint.h>

#include "egressd/common.h"

/* Time is microseconds since the epoch. */
#define PG_US(s) ((uint64_t)(s) * 1000000ull)
#define PG_MS(ms) ((uint64_t)(ms) * 1000ull)

/* As a time argument of a connection call: "just after the connection's
 * previous packet" (1 ms later), so conversations read as sequences. */
#define PG_T_NEXT UINT64_MAX

/* ----------------------------------------------------------------------
 * Writer
 */

struct pg_writer;

/* Creates the capture file at `path` ("-" = standard output). Returns NULL
 * with "PATH: reason" in err if it cannot be created. */
struct pg_writer *pg_open(const char *path, struct egr_err *err);

/* Writes any buffered frames, closes the file and frees the writer and every
 * connection still open on it (their handles become invalid). Returns EGR_OK,
 * the first sticky error of the writer, or EGR_EIO if the file could not be
 * written (e.g. a full disk); the message goes to err (may be NULL). */
int pg_close(struct pg_writer *w, struct egr_err *err);

/* Options; each applies to the packets written after the call. */

/* VLAN tags added to every built frame, outermost first (0 to 4 tags; n = 0
 * removes them). With one tag it is 802.1Q (0x8100); with more, the outer
 * ones are 802.1ad (0x88a8) and the innermost 0x8100. */
int pg_set_vlans(struct pg_writer *w, const uint16_t *vids, size_t n);

/* Ethernet addresses: `client` for frames sent by the first endpoint of a
 * call (the TCP client, the `src` of pg_udp/pg_icmp*), `server` for the
 * other. NULL, NULL restores the default: 02:00 followed by the last four
 * bytes of the sender's (receiver's) IP address. */
void pg_set_macs(struct pg_writer *w, const uint8_t client[6], const uint8_t server[6]);

/* IPv4 TTL / IPv6 hop limit (default 64). */
void pg_set_ttl(struct pg_writer *w, uint8_t ttl);

/* on = 1: frames are kept in memory and written in timestamp order at
 * pg_close() (stable: frames with equal times keep their call order), so a
 * scenario can write one conversation after another even when they overlap
 * in time. Limited to 256 MB of frames (EGR_ENOMEM beyond). Default off:
 * frames are written as the calls come. */
void pg_set_sort(struct pg_writer *w, int on);

/* Records a failure found by scenario code (say, a payload builder returned
 * 0) as the writer's sticky error, so pg_close() reports it. Returns the
 * sticky code (EGR_EINVAL, or an earlier error). */
int pg_abort(struct pg_writer *w, const char *why);

/* Frames written (or buffered) so far. */
uint64_t pg_frames(const struct pg_writer *w);

/* ----------------------------------------------------------------------
 * Packets
 */

/* Any bytes as one Ethernet frame (not touched: no VLAN, no checksums). */
int pg_raw_frame(struct pg_writer *w, const void *frame, size_t len, uint64_t t_us);

/* One IP packet of protocol `proto` whose payload is `data` as given (no L4
 * checksum computed): for GRE, ESP, or hand-made L4 headers. */
int pg_ip(struct pg_writer *w, const char *src, const char *dst, uint8_t proto, const void *data,
          size_t n, uint64_t t_us);

/* One UDP datagram (IPv4 or IPv6), checksums computed; n <= 65507 (IPv4),
 * 65527 (IPv6). */
int pg_udp(struct pg_writer *w, const char *src, uint16_t sport, const char *dst, uint16_t dport,
           const void *data, size_t n, uint64_t t_us);

/* ICMP (IPv4) or ICMPv6 (IPv6) message: type, code, the 4 bytes after the
 * checksum (`rest`, host order), then data. */
int pg_icmp(struct pg_writer *w, const char *src, const char *dst, uint8_t type, uint8_t code,
            uint32_t rest, const void *data, size_t n, uint64_t t_us);

/* Echo request (reply = 0) or echo reply (reply = 1), ICMP or ICMPv6 by the
 * address family. */
int pg_icmp_echo(struct pg_writer *w, const char *src, const char *dst, int reply, uint16_t id,
                 uint16_t seq, const void *data, size_t n, uint64_t t_us);

/* ----------------------------------------------------------------------
 * TCP connections: an object that tracks both sequence numbers, the ACKs and
 * the time of its last packet. Initial sequence numbers are derived from the
 * 4-tuple. Timing model: the sensor sits next to the client (outbound
 * connections); a packet that needs an answer from the server is answered
 * one RTT later, one from the client 100 us later (pg_tcp_set_rtt() to
 * change either). Segments are at most one MSS (1460 bytes IPv4, 1440 IPv6);
 * the sender sends up to 64 KB, the receiver ACKs every second segment.
 */

struct pg_tcp;

#define PG_C2S 1 /* from_client: client to server */
#define PG_S2C 0 /* server to client */

#define PG_TCP_FIN 0x01
#define PG_TCP_SYN 0x02
#define PG_TCP_RST 0x04
#define PG_TCP_PSH 0x08
#define PG_TCP_ACK 0x10

/* A connection object that has written nothing yet: for a mid-stream flow
 * (start with pg_tcp_send) or a hand-made handshake (pg_tcp_segment). NULL
 * (and a sticky writer error) on a bad address or no memory. Owned by the
 * writer until pg_tcp_close(). */
struct pg_tcp *pg_tcp_new(struct pg_writer *w, const char *client_ip, uint16_t cport,
                          const char *server_ip, uint16_t sport);

/* The three-way handshake (SYN, SYN-ACK, ACK) from t_us. */
int pg_tcp_handshake(struct pg_tcp *c, uint64_t t_us);

/* pg_tcp_new() then pg_tcp_handshake(). */
struct pg_tcp *pg_tcp_open(struct pg_writer *w, const char *client_ip, uint16_t cport,
                           const char *server_ip, uint16_t sport, uint64_t t_us);

/* rtt_us: how long the far end takes to answer (default 20 ms);
 * client_near = 0 puts the sensor next to the server instead (inbound).
 * Call it before the packets it should shape (pg_tcp_new, set, handshake). */
void pg_tcp_set_rtt(struct pg_tcp *c, uint32_t rtt_us, int client_near);

/* Sends len bytes from one side in MSS-sized segments starting at t_us
 * (PG_T_NEXT allowed), each burst followed by the receiver's ACKs. len = 0
 * writes nothing. Returns EGR_OK or the sticky error (c may be NULL). */
int pg_tcp_send(struct pg_tcp *c, int from_client, const void *data, size_t len, uint64_t t_us);

/* One segment with the given flags at the connection's current sequence
 * numbers (ACK field filled when PG_TCP_ACK is set); SYN and FIN take one
 * sequence number. len <= MSS. */
int pg_tcp_segment(struct pg_tcp *c, int from_client, uint8_t flags, const void *data, size_t len,
                   uint64_t t_us);

/* Ends the connection and frees c:
 *   PG_CLOSE_FIN         client FIN-ACK, server FIN-ACK, client ACK;
 *   PG_CLOSE_FIN_SERVER  the same with the server closing first;
 *   PG_CLOSE_RST         client RST-ACK;
 *   PG_CLOSE_RST_SERVER  server RST-ACK;
 *   PG_CLOSE_NONE        nothing written (a flow left to time out).
 * c may be NULL (then only the sticky error is returned). */
#define PG_CLOSE_NONE 0
#define PG_CLOSE_FIN 1
#define PG_CLOSE_RST 2
#define PG_CLOSE_RST_SERVER 3
#define PG_CLOSE_FIN_SERVER 4
int pg_tcp_close(struct pg_tcp *c, int how, uint64_t t_us);

/* Time of the connection's last packet (0 if none yet, or c is NULL). */
uint64_t pg_tcp_time(const struct pg_tcp *c);

/* ----------------------------------------------------------------------
 * Payload builders (see the rules at the top: bounded, 0 on failure).
 */

/* Deterministic pseudo-random bytes (xorshift from seed). */
void pg_fill(void *buf, size_t n, uint32_t seed);

/* DNS (RFC 1035). Names are dotted text ("www.example.com", trailing dot
 * allowed); each label 1..63 bytes of anything but '.', at most 255 bytes
 * encoded. Query: one question, RD set. */
#define PG_DNS_A 1
#define PG_DNS_CNAME 5
#define PG_DNS_AAAA 28

size_t pg_dns_query(uint8_t *buf, size_t cap, uint16_t id, const char *name, uint16_t qtype);
size_t pg_dns_query_n(uint8_t *buf, size_t cap, uint16_t id, const void *name, size_t name_len,
                      uint16_t qtype);

/* One answer record. owner: its name as dotted text, or NULL for "the query
 * name, or the target of the previous CNAME" so a chain reads top-down.
 * data: A/AAAA address text, or the CNAME target name. */
struct pg_dns_answer {
    uint16_t type; /* PG_DNS_A, PG_DNS_AAAA, PG_DNS_CNAME */
    uint32_t ttl;
    const char *owner;
    const char *data;
};

/* Response (QR, RD, RA set) echoing the question, with the answers; names
 * are compressed (RFC 1035 4.1.4) against every name already in the
 * message. */
size_t pg_dns_response(uint8_t *buf, size_t cap, uint16_t id, const char *name, uint16_t qtype,
                       const struct pg_dns_answer *answers, size_t n);
/* Same with a raw query name and an RCODE (3 = NXDOMAIN). */
size_t pg_dns_response_n(uint8_t *buf, size_t cap, uint16_t id, const void *name, size_t name_len,
                         uint16_t qtype, uint8_t rcode, const struct pg_dns_answer *answers,
                         size_t n);

/* TLS ClientHello record, as a current browser sends it: TLS 1.3 and 1.2
 * cipher suites, server_name (omitted when sni is NULL), extended master
 * secret, renegotiation_info, supported_groups, ec_point_formats,
 * session_ticket, ALPN (h2, http/1.1), status_request, key_share (x25519),
 * supported_versions (1.3, 1.2), signature_algorithms,
 * psk_key_exchange_modes, record_size_limit. Random and session id derive
 * from the SNI. */
size_t pg_tls_client_hello(uint8_t *buf, size_t cap, const char *sni);
size_t pg_tls_client_hello_n(uint8_t *buf, size_t cap, const void *sni, size_t sni_len);

/* The server's first flight of a TLS 1.2 handshake in one record:
 * ServerHello (ECDHE-ECDSA-AES128-GCM-SHA256, ALPN h2), Certificate (an
 * X.509 v3 DER certificate whose subject CN and subjectAltName dNSName are
 * cert_name; the signature is filler), ServerKeyExchange (x25519),
 * ServerHelloDone. cert_name NULL: no Certificate. */
size_t pg_tls_server_hello(uint8_t *buf, size_t cap, const char *cert_name);
size_t pg_tls_server_hello_n(uint8_t *buf, size_t cap, const void *cert_name, size_t name_len);

/* The end of the handshake: from the client ClientKeyExchange +
 * ChangeCipherSpec + encrypted Finished; from the server ChangeCipherSpec +
 * encrypted Finished. */
size_t pg_tls_finished(uint8_t *buf, size_t cap, int from_client);

/* len bytes of application data in records of at most 16 KB plus their
 * headers and 24 bytes of AEAD overhead each (filler content from seed). */
size_t pg_tls_app_data(uint8_t *buf, size_t cap, size_t len, uint32_t seed);

/* HTTP/1.1 request: "METHOD PATH HTTP/1.1", Host (omitted if NULL),
 * User-Agent (omitted if NULL), Accept. */
size_t pg_http_request(uint8_t *buf, size_t cap, const char *method, const char *host,
                       const char *path, const char *ua);
/* The same with Content-Type, Content-Length and a body of body_len filler
 * bytes (text for text/... types, pseudo-random bytes otherwise). */
size_t pg_http_request_body(uint8_t *buf, size_t cap, const char *method, const char *host,
                            const char *path, const char *ua, const char *content_type,
                            size_t body_len);
/* HTTP/1.1 response with Server, Content-Type, Content-Length and a body of
 * body_len filler bytes. */
size_t pg_http_response(uint8_t *buf, size_t cap, int status, const char *content_type,
                        size_t body_len);

/* NTPv4 (RFC 5905) client request (mode 3) sent at t_us, and the server's
 * reply (mode 4, stratum 2) to a request sent at req_t_us, sent at t_us. */
size_t pg_ntp_client(uint8_t *buf, size_t cap, uint64_t t_us);
size_t pg_ntp_server(uint8_t *buf, size_t cap, uint64_t req_t_us, uint64_t t_us);

/* SSH binary packet holding a KEXINIT (RFC 4253 7.1) with OpenSSH-like
 * algorithm lists (server = 1: the server's lists). */
size_t pg_ssh_kexinit(uint8_t *buf, size_t cap, int server, uint32_t seed);

/* ----------------------------------------------------------------------
 * Ready scenarios (described in docs/pktgen.md).
 */

/* 2025-10-15 08:00:00 UTC, the first packet of the demo capture. */
#define PG_DEMO_START_US 1760515200000000ull

/* The project's demo capture: a small datacenter edge scenario. */
int pg_demo_write(const char *path, struct egr_err *err);

/* Flows whose TLS SNI, certificate names, DNS names and HTTP host/user-agent
 * hold markup, quotes, backslashes, control bytes, NUL and invalid UTF-8:
 * input for escaping tests. */
int pg_hostile_write(const char *path, struct egr_err *err);

/* The long-lived callouts scenario (docs/pktgen.md): a reverse shell, TLS
 * to an unknown name and a DNS beacon held open for up to two hours, a slow
 * upload, and traffic that must never alert; `short_version` compresses
 * time 30-fold for live replays. */
#define PG_CALLOUTS_START_US 1760518800000000ull /* 2025-10-15 09:00:00 UTC */
int pg_callouts_write(const char *path, struct egr_err *err);
int pg_callouts_short_write(const char *path, struct egr_err *err);

/* 2025-10-15 09:00:00 UTC, the first packet of the incident scenarios. */
#define PG_INCIDENT_START_US (PG_DEMO_START_US + 3600ull * 1000000ull)

/* The scenarios of the profiles in sensors/ written for the supply-chain
 * incidents (docs/pktgen.md, docs/threat-model.md): each holds the traffic
 * its profile allows, traffic the hosts only answer, and each kind of
 * traffic the profile must alert on. */
int pg_cisco_write(const char *path, struct egr_err *err);      /* cisco-firepower.yaml */
int pg_zscaler_write(const char *path, struct egr_err *err);    /* zscaler-connector.yaml */
int pg_monitoring_write(const char *path, struct egr_err *err); /* monitoring-server.yaml */
int pg_saas_write(const char *path, struct egr_err *err);       /* saas-integrations.yaml */

#endif

/* eve.h - formats records, alerts and stats as Suricata EVE JSON objects.
 * Pure formatting into a jbuf: no I/O. Field reference: docs/eve-format.md.
 */
#ifndef EGRESSD_EVE_H
#define EGRESSD_EVE_H

#include "egressd/alert.h"
#include "egressd/json.h"
#include "egressd/record.h"
#include "egressd/sink.h"

/* Appends one `flow` event object (no newline) to jb. */
void eve_format_flow(struct jbuf *jb, const struct flow_record *rec);

/* The events of one flow record, in the order they are written: the
 * record's `dns` events (query, answer; on the first record of a DNS flow
 * only), then its `flow` event, which is always the last. Returns how
 * many (at least 1). */
unsigned eve_record_events(const struct flow_record *rec);

/* Appends event i (0 .. eve_record_events() - 1) of the record, one
 * object without a newline. */
void eve_format_record_event(struct jbuf *jb, const struct flow_record *rec, unsigned i);

/* Appends one `alert` event object (no newline) to jb. */
void eve_format_alert(struct jbuf *jb, const struct alert_record *a);

/* Appends one `stats` event object (no newline) to jb. */
void eve_format_stats(struct jbuf *jb, const struct run_stats *st);

/* "2023-11-14T22:13:20.123456+0000" (UTC) into out (>= 32 bytes). */
void eve_format_time(uint64_t ts_us, char *out, size_t n);

/* An address as EVE writes it (family 4 or 6; IPv6 in RFC 5952 form) into
 * out of n bytes (INET6_ADDRSTRLEN fits any). */
void eve_format_ip(int family, const uint8_t *a, char *out, size_t n);

/* EVE's proto name: "TCP", "UDP", "ICMP", "IPv6-ICMP", "SCTP", else the
 * number as decimal text into buf. */
const char *eve_proto_name(uint8_t proto, char *buf, size_t n);

/* Suricata's tls.version for a wire version ("TLS 1.2", "TLSv1", "SSLv3";
 * an unknown one as "0x%04x" in buf). */
const char *eve_tls_version_name(uint16_t v, char *buf, size_t n);

/* Suricata's dns rrtype ("A", "AAAA", "CNAME", ...; else the number in
 * buf) and rcode ("NOERROR", "NXDOMAIN", ...; else the number in buf). */
const char *eve_dns_rrtype_name(uint16_t type, char *buf, size_t n);
const char *eve_dns_rcode_name(unsigned rcode, char *buf, size_t n);

/* EVE-style lower-case app_proto from nDPI's master/app ("tls", "dns",
 * "http", ...; "failed" when unknown). */
const char *eve_app_proto(const struct rec_ndpi *n);

#endif

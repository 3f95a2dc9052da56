/* eve.h - formats records and stats as Suricata-EVE-style JSON objects.
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

/* EVE-style lower-case app_proto from nDPI's master/app ("tls", "dns",
 * "http", ...; "failed" when unknown). */
const char *eve_app_proto(const struct rec_ndpi *n);

#endif

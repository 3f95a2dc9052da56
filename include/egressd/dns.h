/* dns.h - DNS response parsing for passive DNS: the question and the A, AAAA
 * and CNAME records of the answer section (RFC 1035, RFC 3596, RFC 2181),
 * into a fixed-size struct, with no allocation.
 *
 * nDPI keeps one answer address per flow; the passive DNS table (names.h)
 * needs all of them and the CNAME chain that links them to the question, so
 * the sensor parses responses itself. The message is attacker-controlled:
 *
 *   - nothing is read at or past `len`;
 *   - a name is at most DNS_NAME_WIRE_MAX (255) bytes in wire form once its
 *     compression pointers are followed; labels are 1..63 bytes, the 0x40
 *     and 0x80 label types are refused;
 *   - a compression pointer must point inside the message, after the 12-byte
 *     header, before itself, and before every byte of the name already
 *     followed, so each jump moves strictly backwards: loops are impossible
 *     and at most DNS_PTR_JUMPS_MAX (128) jumps are taken per name;
 *   - at most DNS_ANSWERS_MAX answers are kept; the rest are counted.
 *
 * Names are the wire bytes: label bytes are copied as they are (0x00, 0xff,
 * '<', '.' included), except that ASCII 'A'..'Z' become lower case (DNS
 * compares names case-insensitively, RFC 4343). Labels are joined with '.'.
 * The text is NUL-terminated and `len` gives its length, since a label may
 * hold a 0x00 byte; flags say when the dotted text is not a faithful
 * spelling of the name. Every consumer must escape names for its own output.
 *
 * Sections after the answer section (authority, additional) are not read:
 * passive DNS needs only the answers, and bytes that are never read cannot
 * fail the parse.
 *
 * Thread safety: the functions keep no state; each caller owns its
 * struct dns_answers.
 */
#ifndef EGRESSD_DNS_H
#define EGRESSD_DNS_H

#include <stdint.h>

#include "egressd/common.h"

#define DNS_HEADER_LEN 12
#define DNS_LABEL_MAX 63
#define DNS_NAME_WIRE_MAX 255 /* RFC 1035 2.3.4: encoded length, length octets included */
#define DNS_NAME_TEXT_MAX 253 /* dotted text of a DNS_NAME_WIRE_MAX name */
#define DNS_PTR_JUMPS_MAX 128 /* compression pointers followed per name */
#define DNS_ANSWERS_MAX 32    /* answers kept per message */

#define DNS_TYPE_A 1
#define DNS_TYPE_CNAME 5
#define DNS_TYPE_AAAA 28
#define DNS_CLASS_IN 1

#define DNS_RCODE_NOERROR 0
#define DNS_RCODE_NXDOMAIN 3

/* Header flag bits kept in struct dns_answers.flags (header bit positions). */
#define DNS_F_AA 0x0400 /* authoritative answer */
#define DNS_F_TC 0x0200 /* truncated (the server cut the message) */
#define DNS_F_RD 0x0100 /* recursion desired */
#define DNS_F_RA 0x0080 /* recursion available */
#define DNS_F_AD 0x0020 /* authentic data (DNSSEC) */
#define DNS_F_CD 0x0010 /* checking disabled */

/* Why a message was refused. X-macro so names and enum stay in one place;
 * the names are counter names (struct dns_stats).
 *   truncated            ends inside the header, a name or a record
 *   not_response         QR bit clear: a query
 *   bad_opcode           opcode other than QUERY (0)
 *   bad_label_type       a length byte 0x40..0xbf (label types 01, 10)
 *   pointer_out_of_range a compression pointer into the header or past the end
 *   pointer_forward      a pointer to itself or to a later byte
 *   pointer_loop         a pointer back into the labels being followed
 *   too_many_pointers    more than DNS_PTR_JUMPS_MAX pointers in one name
 *   name_too_long        over DNS_NAME_WIRE_MAX bytes (too many or too long labels)
 *   bad_rdata            A not 4 bytes, AAAA not 16, a CNAME target not filling it */
#define DNS_ERRORS(X)                          \
    X(DNS_E_NONE, "none")                      \
    X(DNS_E_TRUNCATED, "truncated")            \
    X(DNS_E_NOT_RESPONSE, "not_response")      \
    X(DNS_E_OPCODE, "bad_opcode")              \
    X(DNS_E_LABEL_TYPE, "bad_label_type")      \
    X(DNS_E_PTR_RANGE, "pointer_out_of_range") \
    X(DNS_E_PTR_FORWARD, "pointer_forward")    \
    X(DNS_E_PTR_LOOP, "pointer_loop")          \
    X(DNS_E_PTR_TOO_MANY, "too_many_pointers") \
    X(DNS_E_NAME_TOO_LONG, "name_too_long")    \
    X(DNS_E_BAD_RDATA, "bad_rdata")

enum dns_error {
#define DNS_ENUM_(id, name) id,
    DNS_ERRORS(DNS_ENUM_)
#undef DNS_ENUM_
    DNS_E_MAX
};

/* Counter name of an enum dns_error ("truncated", ...); "unknown" when out
 * of range. Never NULL. */
const char *dns_error_name(int e);

/* dns_name.flags */
#define DNS_NAME_DOT_IN_LABEL 0x01 /* a label holds '.': the dotted text is ambiguous */
#define DNS_NAME_NUL_IN_LABEL 0x02 /* a label holds 0x00: C-string users see it cut short */

struct dns_name {
    uint16_t len;                     /* bytes in text, NUL excluded; 0 = the root */
    uint8_t flags;                    /* DNS_NAME_* */
    char text[DNS_NAME_TEXT_MAX + 1]; /* raw label bytes joined by '.', NUL-terminated */
};

struct dns_answer {
    uint16_t type;          /* DNS_TYPE_A, DNS_TYPE_AAAA or DNS_TYPE_CNAME */
    uint8_t family;         /* 4 (A), 6 (AAAA), 0 (CNAME) */
    uint32_t ttl;           /* seconds; RFC 2181 8: a TTL with the top bit set is 0 */
    struct dns_name owner;  /* the record's name */
    uint8_t addr[16];       /* A: 4 bytes, AAAA: 16, network order */
    struct dns_name target; /* CNAME: the canonical name; else len 0 */
};

struct dns_answers {
    uint16_t id;
    uint16_t flags;         /* DNS_F_* bits of the header */
    uint8_t rcode;          /* header RCODE (the EDNS extension bits are not read) */
    uint8_t error;          /* enum dns_error: DNS_E_NONE when the parse succeeded */
    uint32_t error_offset;  /* byte where the parse stopped, when error is set */
    uint16_t qdcount, ancount;
    uint8_t has_question;   /* 1 when the first question was read */
    uint16_t qtype, qclass; /* of the first question */
    struct dns_name qname;  /* the first question's name: what the client asked */
    uint16_t count;         /* entries in an[] */
    uint16_t dropped;       /* A/AAAA/CNAME answers beyond DNS_ANSWERS_MAX */
    uint16_t skipped;       /* answers of other types or classes (not kept) */
    struct dns_answer an[DNS_ANSWERS_MAX];
};

/* Parses one DNS response carried by UDP (msg = the UDP payload).
 *
 * Checks QR = 1 and opcode QUERY, reads every question (the first is kept),
 * then the ANCOUNT answer records: class IN A, AAAA and CNAME are kept in
 * an[] in message order, others are validated and skipped. The RCODE is
 * reported, not judged: an NXDOMAIN parses like any other answer.
 *
 * Returns EGR_OK, or EGR_EINVAL with out->error saying why and
 * out->error_offset where. On failure the header fields, the question (if it
 * was complete) and the answers complete before the failure are still valid:
 * a capture cut by its snap length gives the leading records. out is always
 * written; entries of an[] at count and beyond are unspecified. struct
 * dns_answers is about 17 KB: keep one per worker, not on a small stack. */
int dns_parse_response(const uint8_t *msg, uint32_t len, struct dns_answers *out);

/* The same for DNS over TCP (RFC 1035 4.2.2, RFC 7766): buf starts with the
 * 2-byte message length. Parses that one message; *used (if non-NULL) gets
 * 2 + its length so a caller holding several messages can step to the next.
 * A buffer shorter than the prefix says fails with DNS_E_TRUNCATED and
 * *used = 0. Reassembling TCP segments is the caller's job. */
int dns_parse_tcp(const uint8_t *buf, uint32_t len, struct dns_answers *out, uint32_t *used);

/* Names are equal: same length and bytes (both already lower case). */
int dns_name_equal(const struct dns_name *a, const struct dns_name *b);

/* One address answer linked to the question. */
struct dns_addr_name {
    const struct dns_name *head;  /* the question name: what the client asked for */
    const struct dns_name *owner; /* the A/AAAA record's owner: the end of the chain */
    const struct dns_answer *rr;  /* the A/AAAA record itself */
};

/* Links each A/AAAA answer to the question: an answer is linked when its
 * owner is the question name or is reached from it through the CNAME
 * records of the answer section (in any order; the first CNAME of a name is
 * followed, a chain is at most `count` long, so a CNAME loop ends). Answers
 * whose owner is not on that chain are left out: a stub resolver would not
 * use them either. Writes the linked answers, in message order, to out and
 * returns how many (0 when there is no question). Pointers in out point
 * into a, and live as long as it. */
unsigned dns_addresses(const struct dns_answers *a, struct dns_addr_name out[DNS_ANSWERS_MAX]);

/* Outcome counters for a stream of responses. */
struct dns_stats {
    uint64_t messages;            /* parses counted */
    uint64_t ok;                  /* of those, EGR_OK */
    uint64_t errors[DNS_E_MAX];   /* the others, by enum dns_error (0 unused) */
    uint64_t answers;             /* answers kept */
    uint64_t dropped;             /* answers beyond DNS_ANSWERS_MAX */
    uint64_t skipped;             /* answers of other types or classes */
};

/* Adds one parse result (the out of dns_parse_response/dns_parse_tcp). */
void dns_stats_count(struct dns_stats *st, const struct dns_answers *a);

#endif

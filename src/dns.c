/* dns.c - DNS response parser for passive DNS (see include/egressd/dns.h).
 *
 * RFC 1035 4.1 message layout, everything big-endian:
 *
 *     0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15
 *    +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
 *    |                      ID                       |
 *    |QR|  Opcode   |AA|TC|RD|RA| Z|AD|CD|   RCODE   |
 *    |              QDCOUNT (questions)              |
 *    |               ANCOUNT (answers)               |
 *    |        NSCOUNT, ARCOUNT (not read here)       |
 *    +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
 *    question:  QNAME  QTYPE(2) QCLASS(2)
 *    answer RR: NAME   TYPE(2) CLASS(2) TTL(4) RDLENGTH(2) RDATA
 *
 * A name is a run of labels (length byte 1..63, then the bytes) ended by a
 * zero byte or by a compression pointer (two bytes 11pppppp pppppppp: the
 * rest of the name is at offset p, RFC 1035 4.1.4).
 *
 * Every read of message bytes is preceded by rd_has() for exactly those
 * bytes. Offsets are uint32_t and rd_has compares against the remaining
 * length, so no offset + size can wrap.
 */
#include "egressd/dns.h"

#include <stddef.h>
#include <string.h>

static const char *const dns_error_names[] = {
#define DNS_ERR_NAME_(id, name) name,
    DNS_ERRORS(DNS_ERR_NAME_)
#undef DNS_ERR_NAME_
};

const char *dns_error_name(int e)
{
    if (e < 0 || e >= DNS_E_MAX)
        return "unknown";
    return dns_error_names[e];
}

/* ---- bounded reads ------------------------------------------------------ */

/* 1 if n bytes can be read at off. */
static inline int rd_has(uint32_t len, uint32_t off, uint32_t n)
{
    return off <= len && n <= len - off;
}

static inline uint16_t rd_u16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t rd_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- names -------------------------------------------------------------- */

/* Reads the name at off. On success stores in *next the offset just after
 * the name as it sits at off (after its first pointer, if any) and, when
 * name is non-NULL, the decompressed text. On failure returns the
 * enum dns_error and stores the failing offset in *err_off.
 *
 * Loop safety: `seg` is the offset where the labels being followed start
 * (the name itself, then each pointer target). A pointer must go below seg,
 * so seg strictly decreases at every jump and the walk ends after at most
 * off - DNS_HEADER_LEN jumps even without the jump cap. A pointer to seg or
 * above could only lead back to itself (or into the middle of a label);
 * no encoder writes one. */
static int read_name(const uint8_t *msg, uint32_t len, uint32_t off, struct dns_name *name,
                     uint32_t *next, uint32_t *err_off)
{
    uint32_t pos = off, seg = off, wire = 0, tlen = 0;
    unsigned jumps = 0;
    int have_next = 0;
    uint8_t flags = 0;

    for (;;) {
        if (!rd_has(len, pos, 1)) {
            *err_off = pos;
            return DNS_E_TRUNCATED;
        }
        uint8_t c = msg[pos];
        if ((c & 0xc0) == 0xc0) {
            if (!rd_has(len, pos, 2)) {
                *err_off = pos;
                return DNS_E_TRUNCATED;
            }
            uint32_t target = rd_u16(msg + pos) & 0x3fffu;
            *err_off = pos;
            if (target < DNS_HEADER_LEN || target >= len)
                return DNS_E_PTR_RANGE;
            if (target >= pos)
                return DNS_E_PTR_FORWARD;
            if (target >= seg)
                return DNS_E_PTR_LOOP;
            if (++jumps > DNS_PTR_JUMPS_MAX)
                return DNS_E_PTR_TOO_MANY;
            if (!have_next) {
                *next = pos + 2;
                have_next = 1;
            }
            pos = seg = target;
            continue;
        }
        if (c & 0xc0) {
            *err_off = pos;
            return DNS_E_LABEL_TYPE;
        }
        if (c == 0) {
            if (!have_next)
                *next = pos + 1;
            break;
        }
        /* This label, its length byte and the root byte still to come must
         * fit in DNS_NAME_WIRE_MAX; that also keeps the text within
         * DNS_NAME_TEXT_MAX (the wire form is the text + 2). */
        if (wire + 1u + c + 1u > DNS_NAME_WIRE_MAX) {
            *err_off = pos;
            return DNS_E_NAME_TOO_LONG;
        }
        if (!rd_has(len, pos + 1, c)) {
            *err_off = pos;
            return DNS_E_TRUNCATED;
        }
        if (name) {
            if (tlen)
                name->text[tlen++] = '.';
            const uint8_t *l = msg + pos + 1;
            for (unsigned i = 0; i < c; i++) {
                uint8_t b = l[i];
                if (b >= 'A' && b <= 'Z')
                    b = (uint8_t)(b + ('a' - 'A'));
                else if (b == '.')
                    flags |= DNS_NAME_DOT_IN_LABEL;
                else if (b == 0)
                    flags |= DNS_NAME_NUL_IN_LABEL;
                name->text[tlen++] = (char)b;
            }
        }
        wire += 1u + c;
        pos += 1u + c;
    }
    if (name) {
        name->text[tlen] = '\0';
        name->len = (uint16_t)tlen;
        name->flags = flags;
    }
    return DNS_E_NONE;
}

int dns_name_equal(const struct dns_name *a, const struct dns_name *b)
{
    return a->len == b->len && memcmp(a->text, b->text, a->len) == 0;
}

/* ---- messages ----------------------------------------------------------- */

static int fail(struct dns_answers *out, int e, uint32_t off)
{
    out->error = (uint8_t)e;
    out->error_offset = off;
    return EGR_EINVAL;
}

/* Reads one answer record at *pos. Kept records are written to
 * out->an[out->count] and counted only once complete, so a failure leaves
 * the earlier answers intact. */
static int read_answer(const uint8_t *msg, uint32_t len, uint32_t *pos, struct dns_answers *out)
{
    struct dns_answer *rr = out->count < DNS_ANSWERS_MAX ? &out->an[out->count] : NULL;
    uint32_t p = *pos, e_off = 0;

    /* The owner is decoded straight into the slot; if the record turns out
     * not to be kept, the slot is simply reused by the next one. */
    int e = read_name(msg, len, p, rr ? &rr->owner : NULL, &p, &e_off);
    if (e != DNS_E_NONE)
        return fail(out, e, e_off);
    if (!rd_has(len, p, 10))
        return fail(out, DNS_E_TRUNCATED, p);
    uint16_t type = rd_u16(msg + p);
    uint16_t cls = rd_u16(msg + p + 2);
    uint32_t ttl = rd_u32(msg + p + 4);
    uint16_t rdlen = rd_u16(msg + p + 8);
    uint32_t rdata = p + 10;
    if (!rd_has(len, rdata, rdlen))
        return fail(out, DNS_E_TRUNCATED, p + 8);
    *pos = rdata + rdlen;

    int keep = cls == DNS_CLASS_IN &&
               (type == DNS_TYPE_A || type == DNS_TYPE_AAAA || type == DNS_TYPE_CNAME);
    if (!keep) {
        out->skipped++;
        return EGR_OK;
    }
    if ((type == DNS_TYPE_A && rdlen != 4) || (type == DNS_TYPE_AAAA && rdlen != 16))
        return fail(out, DNS_E_BAD_RDATA, p + 8);
    struct dns_name *target = NULL;
    if (type == DNS_TYPE_CNAME) {
        uint32_t end = 0;
        target = rr ? &rr->target : NULL;
        /* Parsed against the whole message (the target may point back
         * anywhere), but its own bytes must be exactly the RDATA. */
        e = read_name(msg, len, rdata, target, &end, &e_off);
        if (e != DNS_E_NONE)
            return fail(out, e, e_off);
        if (end != rdata + rdlen)
            return fail(out, DNS_E_BAD_RDATA, p + 8);
    }
    if (!rr) {
        out->dropped++;
        return EGR_OK;
    }
    rr->type = type;
    rr->ttl = (ttl & 0x80000000u) ? 0 : ttl;
    memset(rr->addr, 0, sizeof(rr->addr));
    if (type == DNS_TYPE_A) {
        rr->family = 4;
        memcpy(rr->addr, msg + rdata, 4);
    } else if (type == DNS_TYPE_AAAA) {
        rr->family = 6;
        memcpy(rr->addr, msg + rdata, 16);
    } else {
        rr->family = 0;
    }
    if (!target) {
        rr->target.len = 0;
        rr->target.flags = 0;
        rr->target.text[0] = '\0';
    }
    out->count++;
    return EGR_OK;
}

int dns_parse_response(const uint8_t *msg, uint32_t len, struct dns_answers *out)
{
    /* Only the fixed part is reset: an[] is 16 KB and is written entry by
     * entry, so clearing it per message would cost more than the parse. */
    memset(out, 0, offsetof(struct dns_answers, an));

    if (!rd_has(len, 0, DNS_HEADER_LEN))
        return fail(out, DNS_E_TRUNCATED, len);
    uint16_t hflags = rd_u16(msg + 2);
    out->id = rd_u16(msg);
    out->flags = hflags & (DNS_F_AA | DNS_F_TC | DNS_F_RD | DNS_F_RA | DNS_F_AD | DNS_F_CD);
    out->rcode = (uint8_t)(hflags & 0x0f);
    out->qdcount = rd_u16(msg + 4);
    out->ancount = rd_u16(msg + 6);
    if (!(hflags & 0x8000))
        return fail(out, DNS_E_NOT_RESPONSE, 2);
    if ((hflags >> 11) & 0x0f)
        return fail(out, DNS_E_OPCODE, 2);

    /* Each question and record takes at least 5 and 11 bytes, so the loops
     * below end on truncation long before a forged count of 65535. */
    uint32_t pos = DNS_HEADER_LEN, e_off = 0;
    for (unsigned i = 0; i < out->qdcount; i++) {
        /* Only the first question is kept; it is written in place and
         * reported only once it is whole (has_question). */
        struct dns_name *qn = i == 0 ? &out->qname : NULL;
        int e = read_name(msg, len, pos, qn, &pos, &e_off);
        if (e == DNS_E_NONE && !rd_has(len, pos, 4)) {
            e = DNS_E_TRUNCATED;
            e_off = pos;
        }
        if (e != DNS_E_NONE) {
            if (qn) { /* a name without its type and class is no question */
                qn->len = 0;
                qn->flags = 0;
                qn->text[0] = '\0';
            }
            return fail(out, e, e_off);
        }
        if (i == 0) {
            out->qtype = rd_u16(msg + pos);
            out->qclass = rd_u16(msg + pos + 2);
            out->has_question = 1;
        }
        pos += 4;
    }
    for (unsigned i = 0; i < out->ancount; i++) {
        int rc = read_answer(msg, len, &pos, out);
        if (rc != EGR_OK)
            return rc;
    }
    return EGR_OK;
}

int dns_parse_tcp(const uint8_t *buf, uint32_t len, struct dns_answers *out, uint32_t *used)
{
    if (used)
        *used = 0;
    if (!rd_has(len, 0, 2)) {
        memset(out, 0, offsetof(struct dns_answers, an));
        return fail(out, DNS_E_TRUNCATED, len);
    }
    uint16_t mlen = rd_u16(buf);
    if (!rd_has(len, 2, mlen)) {
        memset(out, 0, offsetof(struct dns_answers, an));
        return fail(out, DNS_E_TRUNCATED, len);
    }
    if (used)
        *used = 2u + mlen;
    int rc = dns_parse_response(buf + 2, mlen, out);
    if (rc != EGR_OK)
        out->error_offset += 2; /* offsets count from buf, like the caller's */
    return rc;
}

/* ---- CNAME chains ------------------------------------------------------- */

unsigned dns_addresses(const struct dns_answers *a, struct dns_addr_name out[DNS_ANSWERS_MAX])
{
    if (!a->has_question)
        return 0;
    unsigned count = a->count < DNS_ANSWERS_MAX ? a->count : DNS_ANSWERS_MAX;

    /* The chain: the question name, then the target of the first CNAME
     * owned by the last name, and so on. It has at most count + 1 names, so
     * building it costs count^2 comparisons at worst, once per message,
     * and a CNAME loop simply stops adding names when the budget is spent. */
    const struct dns_name *chain[DNS_ANSWERS_MAX + 1];
    unsigned n = 0;
    chain[n++] = &a->qname;
    while (n <= count) {
        const struct dns_name *last = chain[n - 1], *nx = NULL;
        for (unsigned i = 0; i < count; i++) {
            const struct dns_answer *rr = &a->an[i];
            if (rr->type == DNS_TYPE_CNAME && dns_name_equal(&rr->owner, last)) {
                nx = &rr->target;
                break;
            }
        }
        if (!nx)
            break;
        chain[n++] = nx;
    }

    unsigned k = 0;
    for (unsigned i = 0; i < count; i++) {
        const struct dns_answer *rr = &a->an[i];
        if (rr->type != DNS_TYPE_A && rr->type != DNS_TYPE_AAAA)
            continue;
        for (unsigned j = 0; j < n; j++) {
            if (dns_name_equal(&rr->owner, chain[j])) {
                out[k].head = &a->qname;
                out[k].owner = &rr->owner;
                out[k].rr = rr;
                k++;
                break;
            }
        }
    }
    return k;
}

/* ---- counters ----------------------------------------------------------- */

void dns_stats_count(struct dns_stats *st, const struct dns_answers *a)
{
    st->messages++;
    if (a->error == DNS_E_NONE)
        st->ok++;
    else if (a->error < DNS_E_MAX)
        st->errors[a->error]++;
    st->answers += a->count;
    st->dropped += a->dropped;
    st->skipped += a->skipped;
}

/* pktgen.c - the pcap writer and packet builder of include/egressd/pktgen.h:
 * Ethernet frames (optional 802.1Q / 802.1ad tags), IPv4 (RFC 791) and IPv6
 * (RFC 8200) headers, UDP, ICMP, ICMPv6 and TCP with correct checksums
 * (RFC 1071 one's complement sum, RFC 768 / 793 / 8200 8.1 pseudo-headers),
 * and TCP connection objects that keep both sequence numbers consistent.
 *
 *   Ethernet | [TPID TCI]... | IPv4/IPv6 | UDP/TCP/ICMP header | payload
 *
 * Files are written through libpcap's dump API (link type Ethernet,
 * microsecond timestamps). The payload builders are in pktgen-payload.c, the
 * ready scenarios in pktgen-demo.c.
 */
#include "egressd/pktgen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pcap/pcap.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_SNAPLEN 262144
#define PG_MAX_VLANS 4
#define PG_FRAME_MAX (14 + 4 * PG_MAX_VLANS + 40 + 65535)
#define PG_SORT_LIMIT ((size_t)256 << 20)
#define PG_NEAR_US 100      /* reply delay of the endpoint next to the sensor */
#define PG_NEXT_GAP_US 1000 /* PG_T_NEXT: this long after the previous packet */
#define PG_BURST_SEGS 44    /* about 64 KB of MSS-sized segments per window */

struct pg_addr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t a[16];
};

/* A buffered frame in sort mode: bytes at arena + off. */
struct pg_rec {
    uint64_t ts;
    uint64_t order; /* call order, keeps the sort stable */
    size_t off;
    uint32_t len;
};

struct pg_writer {
    pcap_t *dead;
    pcap_dumper_t *dump;
    char path[256]; /* for messages */

    int err_code; /* first sticky error, EGR_OK if none */
    char err_msg[EGR_ERR_MAX];

    uint16_t vlans[PG_MAX_VLANS];
    size_t nvlans;
    int macs_set;
    uint8_t mac_client[6], mac_server[6];
    uint8_t ttl;
    uint16_t ip_id;
    uint64_t frames;

    int sort;
    struct pg_rec *recs;
    size_t nrecs, caprecs;
    uint8_t *arena;
    size_t arena_len, arena_cap;

    struct pg_tcp *conns; /* open connections, freed by pg_close */

    uint8_t frame[PG_FRAME_MAX];
};

/* Per-side arrays are indexed by `side`: 1 = client, 0 = server (the value
 * of from_client). */
struct pg_tcp {
    struct pg_writer *w;
    struct pg_tcp *prev, *next;
    struct pg_addr addr[2];
    uint16_t port[2];
    uint32_t seq[2]; /* next sequence number each side sends */
    uint64_t now;    /* time of the last packet */
    uint32_t rtt_us;
    int client_near;
    uint16_t mss;
};

__attribute__((format(printf, 3, 0))) static int pg_verr(struct pg_writer *w, int code,
                                                         const char *fmt, va_list ap)
{
    if (w->err_code == EGR_OK) {
        w->err_code = code;
        vsnprintf(w->err_msg, sizeof(w->err_msg), fmt, ap);
    }
    return w->err_code;
}

/* Records the writer's first error and returns the sticky code. */
__attribute__((format(printf, 3, 4))) static int pg_fail(struct pg_writer *w, int code,
                                                         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = pg_verr(w, code, fmt, ap);
    va_end(ap);
    return rc;
}

/* egr_fail() lives in the sensor's core library, which this library does
 * not link (the pktgen program links only libpcap), hence a local copy. */
__attribute__((format(printf, 3, 4))) static int pg_errf(struct egr_err *err, int code,
                                                         const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

static uint32_t pg_hash(uint32_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 16777619u; /* FNV-1a */
    }
    return h;
}

/* ----------------------------------------------------------------------
 * Writer
 */

struct pg_writer *pg_open(const char *path, struct egr_err *err)
{
    if (!path || !*path) {
        pg_errf(err, EGR_EINVAL, "pktgen: no output path");
        return NULL;
    }
    struct pg_writer *w = calloc(1, sizeof(*w));
    if (!w) {
        pg_errf(err, EGR_ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    snprintf(w->path, sizeof(w->path), "%s", path);
    w->ttl = 64;
    w->dead = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, PG_SNAPLEN,
                                                   PCAP_TSTAMP_PRECISION_MICRO);
    if (!w->dead) {
        pg_errf(err, EGR_ENOMEM, "%s: pcap_open_dead failed", path);
        free(w);
        return NULL;
    }
    /* The FILE is opened here rather than by pcap_dump_open() so the error
     * names the path with errno's reason, not libpcap's wording. */
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "wb");
    if (!f) {
        pg_errf(err, EGR_EIO, "%s: %s", path, strerror(errno));
        pcap_close(w->dead);
        free(w);
        return NULL;
    }
    w->dump = pcap_dump_fopen(w->dead, f);
    if (!w->dump) {
        pg_errf(err, EGR_EIO, "%s: %s", path, pcap_geterr(w->dead));
        if (f != stdout)
            fclose(f);
        pcap_close(w->dead);
        free(w);
        return NULL;
    }
    return w;
}

static int pg_rec_cmp(const void *a, const void *b)
{
    const struct pg_rec *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static void pg_dump(struct pg_writer *w, const uint8_t *frame, uint32_t len, uint64_t t_us)
{
    struct pcap_pkthdr h;
    memset(&h, 0, sizeof(h));
    h.ts.tv_sec = (time_t)(t_us / 1000000u);
    h.ts.tv_usec = (suseconds_t)(t_us % 1000000u);
    h.caplen = len;
    h.len = len;
    pcap_dump((u_char *)w->dump, &h, frame);
}

int pg_close(struct pg_writer *w, struct egr_err *err)
{
    if (!w)
        return pg_errf(err, EGR_EINVAL, "pktgen: no writer");
    if (w->nrecs) {
        qsort(w->recs, w->nrecs, sizeof(w->recs[0]), pg_rec_cmp);
        for (size_t i = 0; i < w->nrecs; i++)
            pg_dump(w, w->arena + w->recs[i].off, w->recs[i].len, w->recs[i].ts);
    }
    int rc = w->err_code;
    if (rc != EGR_OK)
        pg_errf(err, rc, "%s", w->err_msg);
    if (pcap_dump_flush(w->dump) != 0 || ferror(pcap_dump_file(w->dump))) {
        int e = errno;
        if (rc == EGR_OK)
            rc = pg_errf(err, EGR_EIO, "%s: write failed: %s", w->path, strerror(e));
    }
    pcap_dump_close(w->dump);
    pcap_close(w->dead);
    while (w->conns) {
        struct pg_tcp *c = w->conns;
        w->conns = c->next;
        free(c);
    }
    free(w->recs);
    free(w->arena);
    free(w);
    return rc;
}

int pg_set_vlans(struct pg_writer *w, const uint16_t *vids, size_t n)
{
    if (n > PG_MAX_VLANS || (n && !vids))
        return pg_fail(w, EGR_EINVAL, "pg_set_vlans: %zu tags (at most %d)", n, PG_MAX_VLANS);
    for (size_t i = 0; i < n; i++) {
        if (vids[i] > 4095)
            return pg_fail(w, EGR_EINVAL, "pg_set_vlans: VLAN id %u out of range", vids[i]);
        w->vlans[i] = vids[i];
    }
    w->nvlans = n;
    return EGR_OK;
}

void pg_set_macs(struct pg_writer *w, const uint8_t client[6], const uint8_t server[6])
{
    w->macs_set = client && server;
    if (w->macs_set) {
        memcpy(w->mac_client, client, 6);
        memcpy(w->mac_server, server, 6);
    }
}

void pg_set_ttl(struct pg_writer *w, uint8_t ttl)
{
    w->ttl = ttl;
}

void pg_set_sort(struct pg_writer *w, int on)
{
    w->sort = on != 0;
}

int pg_abort(struct pg_writer *w, const char *why)
{
    if (!w)
        return EGR_EINVAL;
    return pg_fail(w, EGR_EINVAL, "%s", why ? why : "scenario failed");
}

uint64_t pg_frames(const struct pg_writer *w)
{
    return w ? w->frames : 0;
}

/* Writes a finished frame, or keeps it for pg_close in sort mode. */
static int pg_put_frame(struct pg_writer *w, const uint8_t *frame, size_t len, uint64_t t_us)
{
    if (w->err_code != EGR_OK)
        return w->err_code;
    if (len > PG_SNAPLEN)
        return pg_fail(w, EGR_EINVAL, "frame of %zu bytes exceeds the snap length %d", len,
                       PG_SNAPLEN);
    if (t_us == PG_T_NEXT || t_us / 1000000u > INT32_MAX)
        return pg_fail(w, EGR_EINVAL, "timestamp %llu out of range", (unsigned long long)t_us);
    if (!w->sort) {
        pg_dump(w, frame, (uint32_t)len, t_us);
        w->frames++;
        return EGR_OK;
    }
    if (w->arena_len + len > PG_SORT_LIMIT)
        return pg_fail(w, EGR_ENOMEM, "%s: more than %zu MB of frames to sort", w->path,
                       PG_SORT_LIMIT >> 20);
    if (w->nrecs == w->caprecs) {
        size_t ncap = w->caprecs ? w->caprecs * 2 : 1024;
        struct pg_rec *r = realloc(w->recs, ncap * sizeof(*r));
        if (!r)
            return pg_fail(w, EGR_ENOMEM, "%s: out of memory", w->path);
        w->recs = r;
        w->caprecs = ncap;
    }
    if (w->arena_len + len > w->arena_cap) {
        size_t ncap = w->arena_cap ? w->arena_cap : 1u << 20;
        while (ncap < w->arena_len + len)
            ncap *= 2;
        uint8_t *a = realloc(w->arena, ncap);
        if (!a)
            return pg_fail(w, EGR_ENOMEM, "%s: out of memory", w->path);
        w->arena = a;
        w->arena_cap = ncap;
    }
    memcpy(w->arena + w->arena_len, frame, len);
    w->recs[w->nrecs] = (struct pg_rec){t_us, w->nrecs, w->arena_len, (uint32_t)len};
    w->nrecs++;
    w->arena_len += len;
    w->frames++;
    return EGR_OK;
}

int pg_raw_frame(struct pg_writer *w, const void *frame, size_t len, uint64_t t_us)
{
    if (!w)
        return EGR_EINVAL;
    if (len && !frame)
        return pg_fail(w, EGR_EINVAL, "pg_raw_frame: NULL frame");
    return pg_put_frame(w, len ? frame : (const uint8_t *)"", len, t_us);
}

/* ----------------------------------------------------------------------
 * Frames
 */

static int pg_parse(struct pg_writer *w, const char *text, struct pg_addr *a)
{
    memset(a, 0, sizeof(*a));
    if (text && inet_pton(AF_INET, text, a->a) == 1) {
        a->family = AF_INET;
        return EGR_OK;
    }
    if (text && inet_pton(AF_INET6, text, a->a) == 1) {
        a->family = AF_INET6;
        return EGR_OK;
    }
    return pg_fail(w, EGR_EINVAL, "'%s' is not an IPv4 or IPv6 address", text ? text : "(null)");
}

static uint8_t *pg_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static uint8_t *pg_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

/* RFC 1071 sum of 16-bit big-endian words; an odd tail is padded with 0.
 * Only the last piece of a sum may have an odd length. */
static uint64_t pg_sum(uint64_t sum, const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i + 1 < n; i += 2)
        sum += (uint32_t)p[i] << 8 | p[i + 1];
    if (i < n)
        sum += (uint32_t)p[i] << 8;
    return sum;
}

static uint16_t pg_fold(uint64_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static void pg_mac_of(const struct pg_addr *a, uint8_t mac[6])
{
    /* locally administered, unicast; the IP's last four bytes keep hosts
     * apart in a packet list */
    const uint8_t *tail = a->family == AF_INET ? a->a : a->a + 12;
    mac[0] = 0x02;
    mac[1] = 0x00;
    memcpy(mac + 2, tail, 4);
}

enum pg_csum { PG_CS_NONE, PG_CS_PLAIN, PG_CS_PSEUDO };

/* Builds Ethernet (+ tags) + IP header + l4 header `hdr` + data in the
 * writer's frame buffer, fills the L4 checksum at hdr offset csum_off as
 * `cs` says, and writes the frame. from_first: the sender is the first
 * endpoint of the call (chooses the MAC pair). */
static int pg_emit(struct pg_writer *w, const struct pg_addr *src, const struct pg_addr *dst,
                   int from_first, uint8_t proto, const uint8_t *hdr, size_t hlen,
                   const void *data, size_t n, enum pg_csum cs, size_t csum_off, uint64_t t_us)
{
    if (w->err_code != EGR_OK)
        return w->err_code;
    if (src->family != dst->family)
        return pg_fail(w, EGR_EINVAL, "IPv4 and IPv6 addresses mixed in one packet");
    if (n && !data)
        return pg_fail(w, EGR_EINVAL, "NULL payload of %zu bytes", n);
    int v4 = src->family == AF_INET;
    size_t l4len = hlen + n;
    if (l4len > 65535 - (v4 ? 20u : 0u))
        return pg_fail(w, EGR_EINVAL, "payload of %zu bytes does not fit an IP packet", n);

    uint8_t *f = w->frame, *p = f;
    uint8_t msrc[6], mdst[6];
    if (w->macs_set) {
        memcpy(msrc, from_first ? w->mac_client : w->mac_server, 6);
        memcpy(mdst, from_first ? w->mac_server : w->mac_client, 6);
    } else {
        pg_mac_of(src, msrc);
        pg_mac_of(dst, mdst);
    }
    memcpy(p, mdst, 6);
    memcpy(p + 6, msrc, 6);
    p += 12;
    for (size_t i = 0; i < w->nvlans; i++) {
        p = pg_put16(p, i + 1 < w->nvlans ? 0x88a8 : 0x8100);
        p = pg_put16(p, w->vlans[i]);
    }
    p = pg_put16(p, v4 ? 0x0800 : 0x86dd);

    uint8_t pseudo[40];
    size_t plen;
    uint8_t *ip = p;
    if (v4) {
        ip[0] = 0x45;
        ip[1] = 0;
        pg_put16(ip + 2, (uint16_t)(20 + l4len));
        pg_put16(ip + 4, w->ip_id++);
        pg_put16(ip + 6, proto == 6 ? 0x4000 : 0); /* DF on TCP, as stacks do */
        ip[8] = w->ttl;
        ip[9] = proto;
        pg_put16(ip + 10, 0);
        memcpy(ip + 12, src->a, 4);
        memcpy(ip + 16, dst->a, 4);
        pg_put16(ip + 10, pg_fold(pg_sum(0, ip, 20)));
        p = ip + 20;
        memcpy(pseudo, src->a, 4);
        memcpy(pseudo + 4, dst->a, 4);
        pseudo[8] = 0;
        pseudo[9] = proto;
        pg_put16(pseudo + 10, (uint16_t)l4len);
        plen = 12;
    } else {
        pg_put32(ip, 0x60000000u);
        pg_put16(ip + 4, (uint16_t)l4len);
        ip[6] = proto;
        ip[7] = w->ttl;
        memcpy(ip + 8, src->a, 16);
        memcpy(ip + 24, dst->a, 16);
        p = ip + 40;
        memcpy(pseudo, src->a, 16);
        memcpy(pseudo + 16, dst->a, 16);
        pg_put32(pseudo + 32, (uint32_t)l4len);
        memset(pseudo + 36, 0, 3);
        pseudo[39] = proto;
        plen = 40;
    }
    uint8_t *l4 = p;
    if (hlen)
        memcpy(p, hdr, hlen);
    if (n)
        memcpy(p + hlen, data, n);
    p += l4len;
    if (cs != PG_CS_NONE) {
        uint64_t sum = cs == PG_CS_PSEUDO ? pg_sum(0, pseudo, plen) : 0;
        uint16_t c = pg_fold(pg_sum(sum, l4, l4len));
        if (proto == 17 && c == 0)
            c = 0xffff; /* RFC 768: 0 means "no checksum" */
        pg_put16(l4 + csum_off, c);
    }
    return pg_put_frame(w, f, (size_t)(p - f), t_us);
}

int pg_ip(struct pg_writer *w, const char *src, const char *dst, uint8_t proto, const void *data,
          size_t n, uint64_t t_us)
{
    struct pg_addr s, d;
    if (!w)
        return EGR_EINVAL;
    if (pg_parse(w, src, &s) || pg_parse(w, dst, &d))
        return w->err_code;
    return pg_emit(w, &s, &d, 1, proto, NULL, 0, data, n, PG_CS_NONE, 0, t_us);
}

int pg_udp(struct pg_writer *w, const char *src, uint16_t sport, const char *dst, uint16_t dport,
           const void *data, size_t n, uint64_t t_us)
{
    struct pg_addr s, d;
    uint8_t h[8];
    if (!w)
        return EGR_EINVAL;
    if (pg_parse(w, src, &s) || pg_parse(w, dst, &d))
        return w->err_code;
    pg_put16(h, sport);
    pg_put16(h + 2, dport);
    pg_put16(h + 4, (uint16_t)(8 + n)); /* pg_emit rejects n that overflows */
    pg_put16(h + 6, 0);
    return pg_emit(w, &s, &d, 1, 17, h, 8, data, n, PG_CS_PSEUDO, 6, t_us);
}

int pg_icmp(struct pg_writer *w, const char *src, const char *dst, uint8_t type, uint8_t code,
            uint32_t rest, const void *data, size_t n, uint64_t t_us)
{
    struct pg_addr s, d;
    uint8_t h[8];
    if (!w)
        return EGR_EINVAL;
    if (pg_parse(w, src, &s) || pg_parse(w, dst, &d))
        return w->err_code;
    h[0] = type;
    h[1] = code;
    pg_put16(h + 2, 0);
    pg_put32(h + 4, rest);
    if (s.family == AF_INET)
        return pg_emit(w, &s, &d, 1, 1, h, 8, data, n, PG_CS_PLAIN, 2, t_us);
    return pg_emit(w, &s, &d, 1, 58, h, 8, data, n, PG_CS_PSEUDO, 2, t_us);
}

int pg_icmp_echo(struct pg_writer *w, const char *src, const char *dst, int reply, uint16_t id,
                 uint16_t seq, const void *data, size_t n, uint64_t t_us)
{
    uint8_t type;
    if (!w)
        return EGR_EINVAL;
    if (src && strchr(src, ':'))
        type = reply ? 129 : 128;
    else
        type = reply ? 0 : 8;
    return pg_icmp(w, src, dst, type, 0, (uint32_t)id << 16 | seq, data, n, t_us);
}

/* ----------------------------------------------------------------------
 * TCP
 */

struct pg_tcp *pg_tcp_new(struct pg_writer *w, const char *client_ip, uint16_t cport,
                          const char *server_ip, uint16_t sport)
{
    struct pg_addr cl, sv;
    if (!w || w->err_code != EGR_OK)
        return NULL;
    if (pg_parse(w, client_ip, &cl) || pg_parse(w, server_ip, &sv))
        return NULL;
    if (cl.family != sv.family) {
        pg_fail(w, EGR_EINVAL, "TCP %s -> %s: IPv4 and IPv6 mixed", client_ip, server_ip);
        return NULL;
    }
    struct pg_tcp *c = calloc(1, sizeof(*c));
    if (!c) {
        pg_fail(w, EGR_ENOMEM, "%s: out of memory", w->path);
        return NULL;
    }
    c->w = w;
    c->addr[1] = cl;
    c->addr[0] = sv;
    c->port[1] = cport;
    c->port[0] = sport;
    uint8_t ports[4];
    pg_put16(ports, cport);
    pg_put16(ports + 2, sport);
    uint32_t h = pg_hash(2166136261u, cl.a, 16); /* the same ISNs on every host */
    h = pg_hash(h, sv.a, 16);
    h = pg_hash(h, ports, sizeof(ports));
    c->seq[1] = h;
    c->seq[0] = pg_hash(h, "server", 6);
    c->rtt_us = 20000;
    c->client_near = 1;
    c->mss = cl.family == AF_INET ? 1460 : 1440;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    return c;
}

void pg_tcp_set_rtt(struct pg_tcp *c, uint32_t rtt_us, int client_near)
{
    if (c) {
        c->rtt_us = rtt_us;
        c->client_near = client_near != 0;
    }
}

uint64_t pg_tcp_time(const struct pg_tcp *c)
{
    return c ? c->now : 0;
}

/* How long `side` takes, seen from the sensor, to answer a packet sent to
 * it: the far end needs a round trip, the near end almost nothing. */
static uint64_t pg_reply_delay(const struct pg_tcp *c, int side)
{
    int near = c->client_near ? side == 1 : side == 0;
    return near ? PG_NEAR_US : c->rtt_us;
}

static int pg_tcp_time_of(struct pg_tcp *c, uint64_t t_us, uint64_t *out)
{
    if (t_us != PG_T_NEXT) {
        *out = t_us;
        return EGR_OK;
    }
    if (c->now == 0)
        return pg_fail(c->w, EGR_EINVAL, "PG_T_NEXT on a connection with no packet yet");
    *out = c->now + PG_NEXT_GAP_US;
    return EGR_OK;
}

/* One segment from `side` with an explicit ACK number. */
static int pg_tcp_emit(struct pg_tcp *c, int side, uint8_t flags, const void *data, size_t len,
                       uint32_t ack, uint64_t t_us)
{
    struct pg_writer *w = c->w;
    uint8_t h[32];
    size_t hlen = 20;
    if (len > c->mss)
        return pg_fail(w, EGR_EINVAL, "TCP segment of %zu bytes exceeds the MSS %u", len, c->mss);
    pg_put16(h, c->port[side]);
    pg_put16(h + 2, c->port[!side]);
    pg_put32(h + 4, c->seq[side]);
    pg_put32(h + 8, flags & PG_TCP_ACK ? ack : 0);
    h[13] = flags;
    pg_put16(h + 14, 502); /* 64256 with the window scale 7 of the SYN */
    pg_put16(h + 16, 0);
    pg_put16(h + 18, 0);
    if (flags & PG_TCP_SYN) {
        /* MSS, NOP, NOP, SACK permitted, NOP, window scale 7 */
        static const uint8_t opt[12] = {2, 4, 0, 0, 1, 1, 4, 2, 1, 3, 3, 7};
        memcpy(h + 20, opt, sizeof(opt));
        pg_put16(h + 22, c->mss);
        pg_put16(h + 14, side ? 64240 : 65160);
        hlen = 32;
    }
    h[12] = (uint8_t)(hlen / 4 << 4);
    int rc = pg_emit(w, &c->addr[side], &c->addr[!side], side == 1, 6, h, hlen, data, len,
                     PG_CS_PSEUDO, 16, t_us);
    if (rc != EGR_OK)
        return rc;
    c->seq[side] += (uint32_t)len + (flags & PG_TCP_SYN ? 1u : 0u) + (flags & PG_TCP_FIN ? 1u : 0u);
    c->now = t_us;
    return EGR_OK;
}

int pg_tcp_segment(struct pg_tcp *c, int from_client, uint8_t flags, const void *data, size_t len,
                   uint64_t t_us)
{
    uint64_t t = 0;
    if (!c)
        return EGR_EINVAL;
    if (c->w->err_code != EGR_OK)
        return c->w->err_code;
    int side = from_client != 0;
    if (pg_tcp_time_of(c, t_us, &t) != EGR_OK)
        return c->w->err_code;
    return pg_tcp_emit(c, side, flags, data, len, c->seq[!side], t);
}

int pg_tcp_handshake(struct pg_tcp *c, uint64_t t_us)
{
    if (!c)
        return EGR_EINVAL;
    struct pg_writer *w = c->w;
    if (t_us == PG_T_NEXT)
        return pg_fail(w, EGR_EINVAL, "pg_tcp_handshake: PG_T_NEXT needs a start time");
    uint64_t t = t_us;
    pg_tcp_emit(c, 1, PG_TCP_SYN, NULL, 0, 0, t);
    t += pg_reply_delay(c, 0);
    pg_tcp_emit(c, 0, PG_TCP_SYN | PG_TCP_ACK, NULL, 0, c->seq[1], t);
    t += pg_reply_delay(c, 1);
    pg_tcp_emit(c, 1, PG_TCP_ACK, NULL, 0, c->seq[0], t);
    return w->err_code;
}

struct pg_tcp *pg_tcp_open(struct pg_writer *w, const char *client_ip, uint16_t cport,
                           const char *server_ip, uint16_t sport, uint64_t t_us)
{
    struct pg_tcp *c = pg_tcp_new(w, client_ip, cport, server_ip, sport);
    if (c)
        pg_tcp_handshake(c, t_us);
    return c;
}

int pg_tcp_send(struct pg_tcp *c, int from_client, const void *data, size_t len, uint64_t t_us)
{
    uint64_t t = 0;
    if (!c)
        return EGR_EINVAL;
    struct pg_writer *w = c->w;
    if (w->err_code != EGR_OK)
        return w->err_code;
    if (len == 0)
        return EGR_OK;
    if (!data)
        return pg_fail(w, EGR_EINVAL, "pg_tcp_send: NULL data");
    if (pg_tcp_time_of(c, t_us, &t) != EGR_OK)
        return w->err_code;
    int side = from_client != 0;
    const uint8_t *d = data;
    size_t off = 0;
    while (off < len) {
        uint32_t acks[PG_BURST_SEGS / 2 + 1];
        size_t nacks = 0, nseg = 0;
        while (off < len && nseg < PG_BURST_SEGS) {
            size_t n = len - off < c->mss ? len - off : c->mss;
            int last = off + n == len || nseg + 1 == PG_BURST_SEGS;
            uint8_t flags = PG_TCP_ACK | (last ? PG_TCP_PSH : 0);
            if (pg_tcp_emit(c, side, flags, d + off, n, c->seq[!side], t) != EGR_OK)
                return w->err_code;
            off += n;
            nseg++;
            if (nseg % 2 == 0 || last)
                acks[nacks++] = c->seq[side];
            t += 1 + n * 8 / 1000; /* serialisation time at 1 Gb/s */
        }
        /* the receiver's delayed ACKs, every second segment */
        t = c->now + pg_reply_delay(c, !side);
        for (size_t i = 0; i < nacks; i++, t++)
            if (pg_tcp_emit(c, !side, PG_TCP_ACK, NULL, 0, acks[i], t) != EGR_OK)
                return w->err_code;
        if (off < len)
            t = c->now + pg_reply_delay(c, side);
    }
    return EGR_OK;
}

int pg_tcp_close(struct pg_tcp *c, int how, uint64_t t_us)
{
    if (!c)
        return EGR_EINVAL;
    struct pg_writer *w = c->w;
    uint64_t t = 0;
    if (how != PG_CLOSE_NONE)
        pg_tcp_time_of(c, t_us, &t);
    if (w->err_code == EGR_OK) {
        switch (how) {
        case PG_CLOSE_NONE:
            break;
        case PG_CLOSE_FIN:
        case PG_CLOSE_FIN_SERVER: {
            int a = how == PG_CLOSE_FIN ? 1 : 0; /* the side that closes first */
            pg_tcp_emit(c, a, PG_TCP_FIN | PG_TCP_ACK, NULL, 0, c->seq[!a], t);
            t += pg_reply_delay(c, !a);
            pg_tcp_emit(c, !a, PG_TCP_FIN | PG_TCP_ACK, NULL, 0, c->seq[a], t);
            t += pg_reply_delay(c, a);
            pg_tcp_emit(c, a, PG_TCP_ACK, NULL, 0, c->seq[!a], t);
            break;
        }
        case PG_CLOSE_RST:
            pg_tcp_emit(c, 1, PG_TCP_RST | PG_TCP_ACK, NULL, 0, c->seq[0], t);
            break;
        case PG_CLOSE_RST_SERVER:
            pg_tcp_emit(c, 0, PG_TCP_RST | PG_TCP_ACK, NULL, 0, c->seq[1], t);
            break;
        default:
            pg_fail(w, EGR_EINVAL, "pg_tcp_close: unknown close mode %d", how);
        }
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
    return w->err_code;
}

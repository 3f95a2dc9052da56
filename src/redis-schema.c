/* redis-schema.c - the Redis commands of each record (see
 * include/egressd/redis-schema.h and docs/redis-schema.md).
 *
 * Stream entries are flat field/value pairs named as in the EVE JSON
 * (src/eve.c), with the values written the way the JSON writes them (times
 * as "2023-11-14T22:13:20.123456+0000", booleans as true/false), so a
 * consumer can compare the two outputs field by field. Empty values are
 * left out, as the JSON leaves out empty members.
 *
 * Values taken from the wire (names, SNI, HTTP host, DNS query) are raw
 * bytes and go into arguments as they are: the encoding is length-prefixed
 * and hiredis sends each argument as a bulk string, so no escaping is
 * needed and none is done.
 */
#include "egressd/redis-schema.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egressd/eve.h"

#define VERSION 1
#define US_PER_MIN 60000000ull

/* ---- encoding ----------------------------------------------------------- */

void rcmd_init(struct rcmd_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void rcmd_free(struct rcmd_buf *b)
{
    free(b->buf);
    memset(b, 0, sizeof(*b));
}

int rcmd_ok(const struct rcmd_buf *b)
{
    return !b->oom;
}

static void put(struct rcmd_buf *b, const void *p, size_t n)
{
    if (b->oom)
        return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 1024;
        while (n > cap - b->len) {
            if (cap > SIZE_MAX / 2) {
                b->oom = 1;
                return;
            }
            cap *= 2;
        }
        uint8_t *nb = realloc(b->buf, cap);
        if (!nb) {
            b->oom = 1;
            return;
        }
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, p, n);
    b->len += n;
}

static void put16_at(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static unsigned get16(const uint8_t *p)
{
    return (unsigned)p[0] | (unsigned)p[1] << 8;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void rcmd_reset(struct rcmd_buf *b, enum rcmd_kind kind)
{
    b->len = 0;
    b->oom = 0;
    b->ncmd = 0;
    b->argc = 0;
    uint8_t h[4] = {VERSION, (uint8_t)kind, 0, 0};
    put(b, h, sizeof(h));
}

void rcmd_begin(struct rcmd_buf *b)
{
    b->cmd_off = b->len;
    b->argc = 0;
    uint8_t z[2] = {0, 0};
    put(b, z, sizeof(z));
}

void rcmd_arg(struct rcmd_buf *b, const void *p, size_t n)
{
    if (n > UINT32_MAX || b->argc >= RCMD_MAX_ARGS) {
        b->oom = 1; /* a builder bug, not data: refuse the whole record */
        return;
    }
    uint8_t l[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    put(b, l, sizeof(l));
    put(b, p, n);
    b->argc++;
}

void rcmd_arg_str(struct rcmd_buf *b, const char *s)
{
    rcmd_arg(b, s, strlen(s));
}

/* Decimal digits of v at the end of t[24]; returns the first. Numbers are
 * most of the arguments, and snprintf showed in profiles. */
static const char *u64_text(uint64_t v, char t[24], size_t *n)
{
    char *p = t + 24;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    *n = (size_t)(t + 24 - p);
    return p;
}

void rcmd_arg_u64(struct rcmd_buf *b, uint64_t v)
{
    char t[24];
    size_t n;
    const char *p = u64_text(v, t, &n);
    rcmd_arg(b, p, n);
}

void rcmd_end(struct rcmd_buf *b)
{
    if (b->oom)
        return;
    if (b->ncmd >= RCMD_MAX_CMDS) {
        b->oom = 1;
        return;
    }
    put16_at(b->buf + b->cmd_off, b->argc);
    b->ncmd++;
    put16_at(b->buf + 2, b->ncmd);
}

int rcmd_iter_init(struct rcmd_iter *it, const void *rec, size_t len, unsigned *kind,
                   unsigned *ncmd)
{
    const uint8_t *p = rec;
    if (len < 4 || p[0] != VERSION)
        return EGR_EINVAL;
    unsigned n = get16(p + 2);
    if (n == 0 || n > RCMD_MAX_CMDS)
        return EGR_EINVAL;
    /* Check every length once, so rcmd_next() can trust them. */
    const uint8_t *q = p + 4, *end = p + len;
    for (unsigned c = 0; c < n; c++) {
        if (end - q < 2)
            return EGR_EINVAL;
        unsigned argc = get16(q);
        q += 2;
        if (argc == 0 || argc > RCMD_MAX_ARGS)
            return EGR_EINVAL;
        for (unsigned a = 0; a < argc; a++) {
            if (end - q < 4)
                return EGR_EINVAL;
            uint32_t l = get32(q);
            q += 4;
            if ((size_t)(end - q) < l)
                return EGR_EINVAL;
            q += l;
        }
    }
    if (q != end)
        return EGR_EINVAL;
    it->p = p + 4;
    it->end = end;
    it->left = n;
    if (kind)
        *kind = p[1];
    if (ncmd)
        *ncmd = n;
    return EGR_OK;
}

void rcmd_iter_again(struct rcmd_iter *it, const void *rec, size_t len)
{
    const uint8_t *p = rec;
    it->p = p + 4;
    it->end = p + len;
    it->left = get16(p + 2);
}

int rcmd_next(struct rcmd_iter *it, const char **argv, size_t *argvlen, unsigned *argc)
{
    if (it->left == 0)
        return 0;
    unsigned n = get16(it->p);
    it->p += 2;
    for (unsigned a = 0; a < n; a++) {
        uint32_t l = get32(it->p);
        argv[a] = (const char *)it->p + 4;
        argvlen[a] = l;
        it->p += 4 + l;
    }
    *argc = n;
    it->left--;
    return 1;
}

/* ---- keys and fields ---------------------------------------------------- */

/* A key built from parts joined by ':'. Parts are bounded strings (config
 * values, names of at most a record field), so 1 KiB always holds one. */
struct key {
    char s[1024];
    size_t n;
};

static void key_part(struct key *k, const char *p, size_t n)
{
    if (k->n && k->n < sizeof(k->s))
        k->s[k->n++] = ':';
    if (n > sizeof(k->s) - k->n)
        n = sizeof(k->s) - k->n;
    memcpy(k->s + k->n, p, n);
    k->n += n;
}

static void key_str(struct key *k, const char *p)
{
    key_part(k, p, strlen(p));
}

static void key_u64(struct key *k, uint64_t v)
{
    char t[24];
    size_t n;
    const char *p = u64_text(v, t, &n);
    key_part(k, p, n);
}

/* The global part of every key: "{prefix}". */
static void key_global(struct key *k, const struct redis_schema *sc)
{
    k->n = 0;
    key_str(k, sc->prefix);
}

/* A sensor's key: "{prefix}", or "{prefix}:{<id>}" in the per-sensor
 * layout. The braces are the cluster's hash tag: every key of the sensor
 * hashes its id alone, so they share a slot (one node takes a record's
 * commands, a batch stays on one connection) and sensors spread. */
static void key_start(struct key *k, const struct redis_schema *sc)
{
    key_global(k, sc);
    if (!sc->per_sensor)
        return;
    size_t n = strlen(sc->sensor);
    if (k->n + 3 + n > sizeof(k->s))
        n = sizeof(k->s) - k->n - 3;
    k->s[k->n++] = ':';
    k->s[k->n++] = '{';
    memcpy(k->s + k->n, sc->sensor, n);
    k->n += n;
    k->s[k->n++] = '}';
}

static void field(struct rcmd_buf *b, const char *name, const char *v, size_t n)
{
    rcmd_arg_str(b, name);
    rcmd_arg(b, v, n);
}

static void field_str(struct rcmd_buf *b, const char *name, const char *v)
{
    field(b, name, v, strlen(v));
}

/* A record's char array, only when non-empty; strnlen keeps a record
 * without its terminator from being read past the array. */
#define FIELD_ARR(b, name, arr)                                                   \
    do {                                                                          \
        size_t n_ = strnlen((arr), sizeof(arr));                                  \
        if (n_)                                                                   \
            field((b), (name), (arr), n_);                                        \
    } while (0)

static void field_u64(struct rcmd_buf *b, const char *name, uint64_t v)
{
    rcmd_arg_str(b, name);
    rcmd_arg_u64(b, v);
}

static void field_time(struct rcmd_buf *b, const char *name, uint64_t ts_us)
{
    char t[40];
    eve_format_time(ts_us, t, sizeof(t));
    field_str(b, name, t);
}

static void ip_text(int family, const uint8_t *a, char *out, size_t n)
{
    eve_format_ip(family, a, out, n);
}

static int has_ports(uint8_t proto)
{
    return proto == 6 || proto == 17 || proto == 132;
}

static int is_icmp(uint8_t proto)
{
    return proto == 1 || proto == 58;
}

/* As eve.c's app_proto: nDPI's "IPsec" over UDP is IKE. */
static const char *app_proto(const struct flow_record *r)
{
    const char *ap = eve_app_proto(&r->ndpi);
    return strcmp(ap, "ipsec") == 0 && r->proto == 17 ? "ike" : ap;
}

static void stream_start(struct rcmd_buf *b, const struct redis_schema *sc, const char *stream,
                         uint64_t maxlen)
{
    struct key k;
    key_start(&k, sc);
    key_str(&k, stream);
    rcmd_begin(b);
    rcmd_arg_str(b, "XADD");
    rcmd_arg(b, k.s, k.n);
    if (maxlen) {
        /* "~": Redis trims whole macro nodes, far cheaper than exact. */
        rcmd_arg_str(b, "MAXLEN");
        rcmd_arg_str(b, "~");
        rcmd_arg_u64(b, maxlen);
    }
    rcmd_arg_str(b, "*");
    field_str(b, "sensor", sc->sensor);
}

/* The fields about the flow that alerts share with flow entries. */
static void flow_fields(struct rcmd_buf *b, const struct flow_record *r)
{
    char ip[INET6_ADDRSTRLEN], pbuf[8];
    int fam = r->family == 6 ? 6 : 4;
    field_u64(b, "flow_id", r->flow_id);
    ip_text(fam, r->src_ip, ip, sizeof(ip));
    field_str(b, "src_ip", ip);
    if (has_ports(r->proto))
        field_u64(b, "src_port", r->src_port);
    ip_text(fam, r->dst_ip, ip, sizeof(ip));
    field_str(b, "dest_ip", ip);
    if (has_ports(r->proto))
        field_u64(b, "dest_port", r->dst_port);
    field_str(b, "proto", eve_proto_name(r->proto, pbuf, sizeof(pbuf)));
    if (is_icmp(r->proto)) {
        field_u64(b, "icmp_type", r->src_port);
        field_u64(b, "icmp_code", r->dst_port);
    }
    field_str(b, "app_proto", app_proto(r));
    FIELD_ARR(b, "ndpi_proto", r->ndpi.proto);
    FIELD_ARR(b, "community_id", r->community_id);

    const struct rec_enrich *e = &r->enrich;
    if (e->direction != DIR_UNKNOWN)
        field_str(b, "direction", rec_direction_name(e->direction));
    if (e->dest_name[0]) {
        FIELD_ARR(b, "dest_name", e->dest_name);
        field_str(b, "dest_name_source", rec_name_src_name(e->dest_name_src));
    }
    FIELD_ARR(b, "asset", e->asset);
    FIELD_ARR(b, "role", e->role);
    if (e->has_country)
        FIELD_ARR(b, "country", e->country);
    if (e->has_asn)
        field_u64(b, "asn", e->asn);
    if (e->has_org)
        FIELD_ARR(b, "as_org", e->as_org);
}

/* ---- aggregates ----------------------------------------------------------- */

uint64_t redis_schema_bucket(uint64_t ts_us)
{
    return ts_us / US_PER_MIN;
}

int redis_schema_counts_as_egress(const struct flow_record *r)
{
    return r->enrich.direction == DIR_EGRESS || r->enrich.direction == DIR_UNKNOWN;
}

static void expire(struct rcmd_buf *b, const struct key *k, uint32_t ttl)
{
    rcmd_begin(b);
    rcmd_arg_str(b, "EXPIRE");
    rcmd_arg(b, k->s, k->n);
    rcmd_arg_u64(b, ttl);
    rcmd_end(b);
}

size_t redis_schema_buckets_key(const struct redis_schema *sc, char *out, size_t cap)
{
    struct key k;
    key_start(&k, sc);
    key_str(&k, "agg_buckets");
    size_t n = k.n < cap ? k.n : cap;
    memcpy(out, k.s, n);
    return n;
}

size_t redis_schema_agg_key(const struct redis_schema *sc, char *out, size_t cap, uint64_t bucket,
                            const char *metric, const char *part, size_t plen)
{
    struct key k;
    key_start(&k, sc);
    key_str(&k, "agg");
    key_u64(&k, bucket);
    key_str(&k, metric);
    key_part(&k, part, plen);
    size_t n = k.n < cap ? k.n : cap;
    memcpy(out, k.s, n);
    return n;
}

/* ---- records ------------------------------------------------------------- */

void redis_schema_flow(const struct redis_schema *sc, const struct flow_record *r,
                       struct rcmd_buf *b)
{
    rcmd_reset(b, RCMD_FLOW);
    stream_start(b, sc, "flows", sc->flows_maxlen);
    field_time(b, "ts", r->emit_us);
    flow_fields(b, r);
    field_u64(b, "pkts_toserver", r->pkts_toserver);
    field_u64(b, "pkts_toclient", r->pkts_toclient);
    field_u64(b, "bytes_toserver", r->bytes_toserver);
    field_u64(b, "bytes_toclient", r->bytes_toclient);
    field_time(b, "start", r->first_us);
    field_time(b, "end", r->last_us);
    field_str(b, "reason", flow_end_reason_name(r->reason));
    field_str(b, "alerted", r->alerted ? "true" : "false");
    if (r->nalert_keys) {
        /* The alerts this flow raised, space-separated hex keys. */
        static const char hex[] = "0123456789abcdef";
        char keys[VERDICT_KEYS_MAX * 41];
        size_t o = 0;
        for (unsigned i = 0; i < r->nalert_keys && i < VERDICT_KEYS_MAX; i++) {
            if (o)
                keys[o++] = ' ';
            for (int k = 0; k < 20; k++) {
                keys[o++] = hex[r->alert_keys[i][k] >> 4];
                keys[o++] = hex[r->alert_keys[i][k] & 15];
            }
        }
        keys[o] = '\0';
        field_str(b, "alert_keys", keys);
    }
    if (r->seq)
        field_u64(b, "seq", r->seq);
    FIELD_ARR(b, "tls_sni", r->ndpi.tls_sni);
    FIELD_ARR(b, "http_host", r->ndpi.http_host);
    FIELD_ARR(b, "dns_query", r->ndpi.dns_query);
    FIELD_ARR(b, "ja3c", r->ndpi.tls_ja3c);
    rcmd_end(b);
}

void redis_schema_alert(const struct redis_schema *sc, const struct alert_record *a,
                        struct jbuf *scratch, struct rcmd_buf *b)
{
    rcmd_reset(b, RCMD_ALERT);
    stream_start(b, sc, "alerts", sc->alerts_maxlen);
    field_time(b, "ts", a->ts_us);
    FIELD_ARR(b, "alert_key", a->alert_key);
    /* EVE's names: the kind is alert.category, the reason alert.signature. */
    field_str(b, "category", alert_kind_name(a->kind));
    field_u64(b, "severity", a->severity);
    field_str(b, "severity_name", alert_severity_name(a->severity));
    FIELD_ARR(b, "signature", a->reason);
    FIELD_ARR(b, "service", a->service);
    FIELD_ARR(b, alert_list_field(a->kind), a->intel_list);
    field_u64(b, "count", a->count);
    field_time(b, "first_seen", a->first_seen_us);
    field_time(b, "last_seen", a->last_seen_us);
    field_str(b, "update", a->update ? "true" : "false");
    flow_fields(b, &a->flow);
    rcmd_end(b);

    jbuf_reset(scratch);
    eve_format_alert(scratch, a);
    if (!jbuf_ok(scratch)) {
        b->oom = 1;
        return;
    }
    struct key k;
    key_global(&k, sc);
    key_str(&k, "alerts");
    key_str(&k, "live");
    rcmd_begin(b);
    rcmd_arg_str(b, "PUBLISH");
    rcmd_arg(b, k.s, k.n);
    rcmd_arg(b, scratch->buf, scratch->len);
    rcmd_end(b);
}

void redis_schema_heartbeat(const struct redis_schema *sc, const struct redis_heartbeat *hb,
                            struct rcmd_buf *b)
{
    struct key k;
    key_start(&k, sc);
    key_str(&k, "sensor");
    if (!sc->per_sensor)
        key_str(&k, sc->sensor);
    rcmd_reset(b, RCMD_HEARTBEAT);
    rcmd_begin(b);
    rcmd_arg_str(b, "HSET");
    rcmd_arg(b, k.s, k.n);
    field_str(b, "version", hb->version);
    field_str(b, "source", hb->source);
    field_time(b, "start_time", hb->start_us);
    field_time(b, "updated", hb->now_us);
    field_u64(b, "packets", hb->packets);
    field_u64(b, "bytes", hb->bytes);
    field_u64(b, "drops", hb->drops);
    field_u64(b, "active_flows", hb->active_flows);
    field_u64(b, "queue_depth", hb->queue_depth);
    field_u64(b, "sent", hb->sent);
    field_u64(b, "queued", hb->queued);
    field_u64(b, "spooled", hb->spooled);
    field_u64(b, "dropped", hb->dropped);
    field_u64(b, "undelivered", hb->undelivered);
    field_u64(b, "reconnects", hb->reconnects);
    field_u64(b, "resent", hb->resent);
    field_str(b, "last_error", hb->last_error);
    rcmd_end(b);
    expire(b, &k, hb->ttl);

    key_global(&k, sc);
    key_str(&k, "sensors");
    rcmd_begin(b);
    rcmd_arg_str(b, "SADD");
    rcmd_arg(b, k.s, k.n);
    rcmd_arg_str(b, sc->sensor);
    rcmd_end(b);
}

/* classify.c - protocol classification with nDPI 4.2 (see
 * include/egressd/classify.h and docs/classification.md).
 *
 * This is the only file that includes nDPI headers. It feeds nDPI the way
 * nDPI's own reference reader (ndpiReader 4.2) does, so that our verdicts can
 * be checked against its output flow by flow:
 *
 *   - one detection module per worker, all protocols enabled, default
 *     preferences;
 *   - every packet of the flow, both directions, as the IP header pointer and
 *     length, with the packet time in milliseconds (never going backwards);
 *   - stop when nDPI has an application answer and no extra dissection is
 *     possible, or when the packet budget is spent (the packet that crosses
 *     the budget is still fed, as ndpiReader's check counts it first;
 *     protocols other than TCP and UDP get the UDP budget, where
 *     ndpiReader has none and waits for the end of the capture);
 *   - a flow that ends without an answer goes through
 *     ndpi_detection_giveup() with guessing on.
 *
 * Then the few fields a record needs are copied into one exactly-sized
 * buffer (classify_result.meta) and the nDPI state goes back to a free list,
 * so a long flow costs only its compact result and, once warm, starting a
 * flow allocates nothing.
 *
 * meta layout: a sequence of items, each
 *
 *     +-----+----------------+------------------+
 *     | tag | length (2, LE) | length bytes     |
 *     +-----+----------------+------------------+
 *
 * strings without their NUL, numbers little-endian, and a zero tag byte
 * at the end, so the reader needs no length. Only this file writes and
 * reads it; unknown tags are skipped.
 *
 * Two things nDPI does not keep are taken from the packets it is fed, once
 * per flow, while detection runs: the JA3 string of the ClientHello
 * (tls-hello.h; kept only when its MD5 is the hash nDPI computed, so the
 * two always agree) and the flow's first DNS response, parsed by the
 * sensor's own parser (dns.h) for every answer with its TTL. A packet pays
 * for a few comparisons to find out it is neither.
 */
#include "egressd/classify.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ndpi_api.h>

#include "egressd/dns.h"
#include "egressd/tls-hello.h"

/* Free nDPI states kept for reuse; more are released (a burst of flows
 * should not pin its peak memory forever). */
#define CLS_FREE_MAX 4096

/* Slots of the protocol-name memo (a power of two). */
#define CLS_PNAME_SLOTS 64u

/* nDPI's packet length argument is an unsigned short. */
#define CLS_L3_MAX 65535u

struct classify_flow {
    struct classify_flow *next; /* free-list link */
    ndpi_protocol proto;        /* nDPI's latest answer */
    uint32_t pkts;              /* packets fed */
    uint8_t l4;                 /* IP protocol of the first packet fed */
    uint8_t completed;          /* nothing more to learn: stop feeding */
    uint8_t hello_tried;        /* a ClientHello was looked at */
    uint8_t dns_qid_set;        /* dns_qid holds the first query's id */
    uint16_t dns_qid;
    char *ja3_str;              /* owned; NUL-terminated */
    uint8_t *dns_resp;          /* owned: the packed first response (T_DNS_RESP) */
    uint32_t dns_resp_len;
    /* struct ndpi_flow_struct, sized by the library at run time; the
     * element type gives it the strictest alignment. */
    max_align_t state[];
};

struct classify_ctx {
    struct ndpi_detection_module_struct *ndpi;
    struct classify_flow *free_list;
    uint32_t free_count;
    uint32_t max_tcp, max_other;
    uint64_t last_ms; /* packet time never goes backwards for nDPI */
    size_t alloc_size; /* bytes of one classify_flow */
    struct dns_answers *dns; /* scratch for one parsed response (~17 KB), made on first use */
    /* ndpi_protocol2name() by (master, app): it formats with snprintf, a
     * visible share of writing a record, and a capture has few pairs. */
    struct {
        uint32_t key; /* master << 16 | app, valid when set */
        uint8_t set;
        char name[sizeof(((struct rec_ndpi *)0)->proto)];
    } pname[CLS_PNAME_SLOTS];
};

/* nDPI's module set-up must not run in parallel (ndpi_api.h); workers may
 * be created from different threads. */
static pthread_mutex_t cls_init_lock = PTHREAD_MUTEX_INITIALIZER;

static struct ndpi_flow_struct *cls_state(struct classify_flow *cf)
{
    return (struct ndpi_flow_struct *)(void *)cf->state;
}

static const struct ndpi_flow_struct *cls_cstate(const struct classify_flow *cf)
{
    return (const struct ndpi_flow_struct *)(const void *)cf->state;
}

static size_t cls_alloc_size(void)
{
    return sizeof(struct classify_flow) + ndpi_detection_get_sizeof_ndpi_flow_struct();
}

void classify_config_defaults(struct classify_config *c)
{
    c->max_pkts_tcp = 80;
    c->max_pkts_udp = 24;
}

int classify_new(const struct classify_config *cfg, struct classify_ctx **out,
                 struct egr_err *err)
{
    *out = NULL;
    struct classify_config def;
    if (!cfg) {
        classify_config_defaults(&def);
        cfg = &def;
    }
    if (cfg->max_pkts_tcp == 0 || cfg->max_pkts_udp == 0)
        return egr_fail(err, EGR_EINVAL, "classify: packet budgets must be at least 1");
    /* We read struct ndpi_flow_struct fields through the installed header:
     * a library built from other sources would have them elsewhere. */
    if (ndpi_detection_get_sizeof_ndpi_flow_struct() != sizeof(struct ndpi_flow_struct))
        return egr_fail(err, EGR_ERR,
                        "classify: nDPI library %s does not match its headers "
                        "(flow state %u bytes, header says %zu)",
                        ndpi_revision(), ndpi_detection_get_sizeof_ndpi_flow_struct(),
                        sizeof(struct ndpi_flow_struct));

    struct classify_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return egr_fail(err, EGR_ENOMEM, "classify: out of memory");
    ctx->max_tcp = cfg->max_pkts_tcp;
    ctx->max_other = cfg->max_pkts_udp;
    ctx->alloc_size = cls_alloc_size();

    pthread_mutex_lock(&cls_init_lock);
    ctx->ndpi = ndpi_init_detection_module(ndpi_no_prefs);
    if (ctx->ndpi) {
        NDPI_PROTOCOL_BITMASK all;
        NDPI_BITMASK_SET_ALL(all);
        ndpi_set_protocol_detection_bitmask2(ctx->ndpi, &all);
        ndpi_finalize_initialization(ctx->ndpi);
    }
    pthread_mutex_unlock(&cls_init_lock);
    if (!ctx->ndpi) {
        free(ctx);
        return egr_fail(err, EGR_ENOMEM, "classify: cannot create the nDPI detection module");
    }
    *out = ctx;
    return EGR_OK;
}

void classify_free(struct classify_ctx *ctx)
{
    if (!ctx)
        return;
    while (ctx->free_list) {
        struct classify_flow *cf = ctx->free_list;
        ctx->free_list = cf->next;
        free(cf);
    }
    pthread_mutex_lock(&cls_init_lock);
    ndpi_exit_detection_module(ctx->ndpi);
    pthread_mutex_unlock(&cls_init_lock);
    free(ctx->dns);
    free(ctx);
}

struct classify_flow *classify_flow_new(struct classify_ctx *ctx)
{
    struct classify_flow *cf = ctx->free_list;
    if (cf) {
        /* Entries on the free list were zeroed when they were returned. */
        ctx->free_list = cf->next;
        ctx->free_count--;
        cf->next = NULL;
        return cf;
    }
    return calloc(1, ctx->alloc_size);
}

static void put_le16(uint8_t *b, unsigned v)
{
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

/* The first ClientHello of a TCP flow: its JA3 string. */
static void take_hello(struct classify_flow *cf, const struct pkt_meta *m)
{
    cf->hello_tried = 1;
    char s[TLS_JA3_STR_MAX];
    size_t n;
    if (tls_hello_ja3(m->payload, m->payload_len, s, sizeof(s), &n) != EGR_OK)
        return;
    cf->ja3_str = malloc(n + 1);
    if (cf->ja3_str)
        memcpy(cf->ja3_str, s, n + 1);
}

/* A response's question and answers, packed for the record:
 *   u64 packet time | u16 id | u16 flags word | u16 qtype | u8 qname len | qname
 *   | u8 count | u8 cut
 *   then per answer: u16 type | u32 ttl | u8 owner len | owner | u8 data len | data
 * (names of at most DNS_NAME_TEXT_MAX bytes, so a u8 holds their length). */
static void take_dns_response(struct classify_ctx *ctx, struct classify_flow *cf,
                              const struct pkt_meta *m)
{
    if (!ctx->dns && !(ctx->dns = malloc(sizeof(*ctx->dns))))
        return;
    struct dns_answers *a = ctx->dns;
    if (m->proto == 17)
        dns_parse_response(m->payload, m->payload_len, a);
    else
        dns_parse_tcp(m->payload, m->payload_len, a, NULL);
    if (a->error == DNS_E_NOT_RESPONSE || a->error == DNS_E_OPCODE ||
        (!a->has_question && a->count == 0))
        return; /* not a response the record can describe */
    unsigned keep = a->count < REC_DNS_ANSWERS ? a->count : REC_DNS_ANSWERS;
    size_t need = 8 + 2 + 2 + 2 + 1 + a->qname.len + 2;
    for (unsigned i = 0; i < keep; i++)
        need += 2 + 4 + 1 + a->an[i].owner.len + 1 +
                (a->an[i].type == DNS_TYPE_CNAME ? a->an[i].target.len : a->an[i].family == 6 ? 16 : 4);
    uint8_t *b = malloc(need);
    if (!b)
        return;
    size_t o = 0;
    put_le32(b, (uint32_t)m->ts_us);
    put_le32(b + 4, (uint32_t)(m->ts_us >> 32));
    put_le16(b + 8, a->id);
    /* dns.h keeps the flag bits and the RCODE; QR is set (a response) and
     * the opcode is QUERY (0), or the parse refused the message. */
    put_le16(b + 10, 0x8000u | (a->flags & 0x07f0u) | (a->rcode & 0x0fu));
    put_le16(b + 12, a->qtype);
    o = 14;
    b[o++] = (uint8_t)a->qname.len;
    memcpy(b + o, a->qname.text, a->qname.len);
    o += a->qname.len;
    b[o++] = (uint8_t)keep;
    b[o++] = a->count > keep || a->dropped || a->error != DNS_E_NONE;
    for (unsigned i = 0; i < keep; i++) {
        const struct dns_answer *rr = &a->an[i];
        put_le16(b + o, rr->type);
        put_le32(b + o + 2, rr->ttl);
        o += 6;
        b[o++] = (uint8_t)rr->owner.len;
        memcpy(b + o, rr->owner.text, rr->owner.len);
        o += rr->owner.len;
        if (rr->type == DNS_TYPE_CNAME) {
            b[o++] = (uint8_t)rr->target.len;
            memcpy(b + o, rr->target.text, rr->target.len);
            o += rr->target.len;
        } else {
            unsigned al = rr->family == 6 ? 16 : 4;
            b[o++] = (uint8_t)al;
            memcpy(b + o, rr->addr, al);
            o += al;
        }
    }
    cf->dns_resp = b;
    cf->dns_resp_len = (uint32_t)o;
}

/* What nDPI does not keep, taken from the packets it is fed (see the top
 * of this file). Fragments and packets without a payload carry neither. */
static void take_extras(struct classify_ctx *ctx, struct classify_flow *cf,
                        const struct pkt_meta *m)
{
    if (!(m->flags & PKT_F_L4) || (m->flags & PKT_F_FRAG) || !m->payload || m->payload_len == 0)
        return;
    if (m->proto == 6 && !cf->hello_tried && tls_hello_looks_like(m->payload, m->payload_len)) {
        take_hello(cf, m);
        return;
    }
    if ((m->proto != 17 && m->proto != 6) || (m->sport != 53 && m->dport != 53))
        return;
    if (m->sport == 53) {
        if (!cf->dns_resp)
            take_dns_response(ctx, cf, m);
    } else if (!cf->dns_qid_set) {
        /* A query: only its id (nDPI has the rest). Over TCP the message
         * follows a 2-byte length. */
        uint32_t at = m->proto == 6 ? 2 : 0;
        if (m->payload_len >= at + DNS_HEADER_LEN) {
            cf->dns_qid = (uint16_t)(m->payload[at] << 8 | m->payload[at + 1]);
            cf->dns_qid_set = 1;
        }
    }
}

int classify_packet(struct classify_ctx *ctx, struct classify_flow *cf,
                    const struct pkt_meta *m, int from_initiator)
{
    /* from_initiator is not passed on: nDPI works out the direction from
     * the addresses itself, exactly as it does under ndpiReader. */
    if (cf->completed)
        return 1;
    if (!m->l3 || m->l3_len == 0)
        return 0;
    uint32_t len = m->l3_len > CLS_L3_MAX ? CLS_L3_MAX : m->l3_len;

    if (cf->pkts == 0)
        cf->l4 = m->proto;
    cf->pkts++;
    take_extras(ctx, cf, m);
    /* ndpiReader counts the packet first and gives up when the count is
     * over the limit: the packet that crosses it is still dissected. */
    uint32_t budget = cf->l4 == 6 ? ctx->max_tcp : ctx->max_other;
    int enough = cf->pkts > budget;

    uint64_t ms = m->ts_us / 1000;
    if (ms < ctx->last_ms)
        ms = ctx->last_ms;
    ctx->last_ms = ms;

    struct ndpi_flow_struct *f = cls_state(cf);
    cf->proto = ndpi_detection_process_packet(ctx->ndpi, f, m->l3, (unsigned short)len, ms);
    if (!enough) {
        if (cf->proto.app_protocol == NDPI_PROTOCOL_UNKNOWN)
            return 0;
        /* Detected, but more metadata may come (certificate, DNS answer,
         * HTTP response, SSH key exchange...). */
        if (ndpi_extra_dissection_possible(ctx->ndpi, f))
            return 0;
    }
    cf->completed = 1;
    return 1;
}

/* ---- the compact result ------------------------------------------------ */

enum cls_tag {
    T_TLS_SNI = 1,
    T_TLS_VERSION, /* u16 */
    T_TLS_ALPN,
    T_TLS_JA3C,
    T_TLS_JA3S,
    T_TLS_ISSUER,
    T_TLS_SUBJECT,
    T_TLS_SHA1, /* 20 raw bytes */
    T_HTTP_HOST,
    T_HTTP_UA,
    T_HTTP_URL,
    T_HTTP_STATUS, /* u16 */
    T_DNS_QUERY,
    T_DNS_INFO, /* qtype u16, rcode, is_response */
    T_SSH_CLIENT,
    T_SSH_SERVER,
    T_SSH_HASSH_C,
    T_SSH_HASSH_S,
    T_TLS_JA3C_STR,
    T_TLS_VALIDITY, /* not before u32, not after u32 */
    T_HTTP_METHOD,  /* u8 ndpi_http_method */
    T_HTTP_VERSION, /* u8: 10 or 11 */
    T_HTTP_CTYPE,
    T_DNS_ID,       /* u16 */
    T_DNS_RESP,     /* the packed first response (take_dns_response) */
};

/* Room in the record field, with its NUL. */
#define REC_CAP(field) sizeof(((struct rec_ndpi *)0)->field)

#define DNS_INFO_LEN 4
#define CLS_ITEMS_MAX 32

struct cls_item {
    uint8_t tag;
    uint16_t len;
    const void *data;
};

struct cls_pack {
    struct cls_item item[CLS_ITEMS_MAX];
    unsigned n;
    size_t total;
    uint8_t num[6][2];          /* storage for the u16 items */
    unsigned nnum;
    uint8_t dns[DNS_INFO_LEN];
    uint8_t validity[8];
    uint8_t http[2];            /* method, version */
    uint8_t dnsid[2];
};

static void pack_bytes(struct cls_pack *p, uint8_t tag, const void *data, size_t len)
{
    if (p->n >= CLS_ITEMS_MAX || len == 0)
        return;
    p->item[p->n++] = (struct cls_item){tag, (uint16_t)len, data};
    p->total += 3 + len;
}

/* A string from nDPI, cut to what the record field can hold (cap counts
 * the record's NUL): keeping more would only cost memory. Not inlined: once
 * per flow, and inlined copies make GCC's -O3 overread check see bounds of
 * one call site against the source array of another. */
__attribute__((noinline)) static void pack_str(struct cls_pack *p, uint8_t tag, const char *s, size_t max, size_t cap)
{
    if (!s)
        return;
    /* Never scan further than the record can keep. */
    size_t n = strnlen(s, max < cap - 1 ? max : cap - 1);
    pack_bytes(p, tag, s, n);
}

static void pack_u16(struct cls_pack *p, uint8_t tag, uint16_t v)
{
    if (v == 0 || p->nnum >= EGR_ARRAY_LEN(p->num))
        return;
    uint8_t *b = p->num[p->nnum++];
    b[0] = (uint8_t)(v & 0xff);
    b[1] = (uint8_t)(v >> 8);
    pack_bytes(p, tag, b, 2);
}

static int is_proto(const ndpi_protocol *pr, uint16_t id)
{
    return pr->master_protocol == id || pr->app_protocol == id;
}

static int stack_has(const struct ndpi_flow_struct *f, uint16_t id)
{
    return f->detected_protocol_stack[0] == id || f->detected_protocol_stack[1] == id;
}

/* nDPI's protos union holds one protocol's data; the pointers of its TLS
 * member are only owned (and freed by ndpi_free_flow_data) when one of
 * these is on the detection stack. */
static int tls_pointers_valid(const struct ndpi_flow_struct *f)
{
    return stack_has(f, NDPI_PROTOCOL_TLS) || stack_has(f, NDPI_PROTOCOL_QUIC) ||
           stack_has(f, NDPI_PROTOCOL_DTLS) || stack_has(f, NDPI_PROTOCOL_MAIL_SMTPS) ||
           stack_has(f, NDPI_PROTOCOL_MAIL_POPS) || stack_has(f, NDPI_PROTOCOL_MAIL_IMAPS);
}

static void collect_tls(struct cls_pack *p, const struct ndpi_flow_struct *f)
{
    pack_str(p, T_TLS_SNI, f->host_server_name, sizeof(f->host_server_name),
             REC_CAP(tls_sni));
    pack_u16(p, T_TLS_VERSION, f->protos.tls_quic.ssl_version);
    pack_str(p, T_TLS_JA3C, f->protos.tls_quic.ja3_client, sizeof(f->protos.tls_quic.ja3_client),
             REC_CAP(tls_ja3c));
    pack_str(p, T_TLS_JA3S, f->protos.tls_quic.ja3_server, sizeof(f->protos.tls_quic.ja3_server),
             REC_CAP(tls_ja3s));
    static const uint8_t zero_sha1[20];
    if (memcmp(f->protos.tls_quic.sha1_certificate_fingerprint, zero_sha1, 20) != 0)
        pack_bytes(p, T_TLS_SHA1, f->protos.tls_quic.sha1_certificate_fingerprint, 20);
    if (f->protos.tls_quic.notBefore || f->protos.tls_quic.notAfter) {
        put_le32(p->validity, f->protos.tls_quic.notBefore);
        put_le32(p->validity + 4, f->protos.tls_quic.notAfter);
        pack_bytes(p, T_TLS_VALIDITY, p->validity, 8);
    }
    if (tls_pointers_valid(f)) {
        pack_str(p, T_TLS_ALPN, f->protos.tls_quic.alpn, SIZE_MAX, REC_CAP(tls_alpn));
        pack_str(p, T_TLS_ISSUER, f->protos.tls_quic.issuerDN, SIZE_MAX, REC_CAP(tls_issuer));
        pack_str(p, T_TLS_SUBJECT, f->protos.tls_quic.subjectDN, SIZE_MAX,
                 REC_CAP(tls_subject));
    }
}

static void collect_dns(struct cls_pack *p, const struct ndpi_flow_struct *f)
{
    pack_str(p, T_DNS_QUERY, f->host_server_name, sizeof(f->host_server_name),
             REC_CAP(dns_query));
    uint8_t *d = p->dns;
    memset(d, 0, DNS_INFO_LEN);
    d[0] = (uint8_t)(f->protos.dns.query_type & 0xff);
    d[1] = (uint8_t)(f->protos.dns.query_type >> 8);
    d[2] = f->protos.dns.reply_code;
    d[3] = f->protos.dns.is_query ? 0 : 1;
    /* nDPI keeps only the first address of a response; the answers come
     * from the sensor's own parse (T_DNS_RESP). */
    pack_bytes(p, T_DNS_INFO, d, DNS_INFO_LEN);
}

static void collect_ssh(struct cls_pack *p, const struct ndpi_flow_struct *f)
{
    pack_str(p, T_SSH_CLIENT, f->protos.ssh.client_signature,
             sizeof(f->protos.ssh.client_signature), REC_CAP(ssh_client));
    pack_str(p, T_SSH_SERVER, f->protos.ssh.server_signature,
             sizeof(f->protos.ssh.server_signature), REC_CAP(ssh_server));
    pack_str(p, T_SSH_HASSH_C, f->protos.ssh.hassh_client, sizeof(f->protos.ssh.hassh_client),
             REC_CAP(ssh_hassh_client));
    pack_str(p, T_SSH_HASSH_S, f->protos.ssh.hassh_server, sizeof(f->protos.ssh.hassh_server),
             REC_CAP(ssh_hassh_server));
}

/* Which member of nDPI's protos union is valid follows the detected
 * protocol; the tests run in ndpiReader's order, so the union is read as
 * the protocol ndpiReader reads it as. MDNS and LLMNR are parsed by nDPI's
 * DNS dissector and share its member. host_server_name and the http member
 * lie outside the union and are always safe to read; http holds the
 * request of any flow the HTTP dissector saw, and QUIC's user agent. */
/* The JA3 string, when it is the input of the hash nDPI computed. */
static void collect_ja3(struct cls_pack *p, const struct ndpi_flow_struct *f,
                        const struct classify_flow *cf)
{
    if (!cf->ja3_str || !f->protos.tls_quic.ja3_client[0])
        return;
    size_t n = strlen(cf->ja3_str);
    char md5[33];
    tls_ja3_md5_hex(cf->ja3_str, n, md5);
    if (strncmp(md5, f->protos.tls_quic.ja3_client, 32) == 0)
        pack_bytes(p, T_TLS_JA3C_STR, cf->ja3_str, n);
}

static void collect(struct cls_pack *p, const struct ndpi_flow_struct *f, const ndpi_protocol *pr,
                    const struct classify_flow *cf)
{
    memset(p, 0, sizeof(*p));

    if (is_proto(pr, NDPI_PROTOCOL_DHCP) ||
        (is_proto(pr, NDPI_PROTOCOL_BITTORRENT) && !is_proto(pr, NDPI_PROTOCOL_TLS))) {
        /* the union holds data the record has no field for */
    } else if (is_proto(pr, NDPI_PROTOCOL_DNS) || is_proto(pr, NDPI_PROTOCOL_MDNS) ||
               is_proto(pr, NDPI_PROTOCOL_LLMNR)) {
        collect_dns(p, f);
    } else if (is_proto(pr, NDPI_PROTOCOL_UBNTAC2) || is_proto(pr, NDPI_PROTOCOL_FTP_CONTROL) ||
               is_proto(pr, NDPI_PROTOCOL_MAIL_IMAP) || is_proto(pr, NDPI_PROTOCOL_MAIL_POP) ||
               is_proto(pr, NDPI_PROTOCOL_MAIL_SMTP) || is_proto(pr, NDPI_PROTOCOL_KERBEROS)) {
        /* likewise */
    } else if (is_proto(pr, NDPI_PROTOCOL_HTTP) || is_proto(pr, NDPI_PROTOCOL_HTTP_CONNECT) ||
               is_proto(pr, NDPI_PROTOCOL_HTTP_PROXY)) {
        pack_str(p, T_HTTP_HOST, f->host_server_name, sizeof(f->host_server_name),
                 REC_CAP(http_host));
    } else if (is_proto(pr, NDPI_PROTOCOL_TELNET)) {
        /* likewise */
    } else if (is_proto(pr, NDPI_PROTOCOL_SSH)) {
        collect_ssh(p, f);
    } else if (is_proto(pr, NDPI_PROTOCOL_TLS) || is_proto(pr, NDPI_PROTOCOL_QUIC) ||
               is_proto(pr, NDPI_PROTOCOL_DTLS) || f->protos.tls_quic.ja3_client[0] != '\0') {
        collect_tls(p, f);
        collect_ja3(p, f, cf);
    }
    if (cf->dns_qid_set) {
        put_le16(p->dnsid, cf->dns_qid); /* 0 is an id like any other */
        pack_bytes(p, T_DNS_ID, p->dnsid, 2);
    }
    if (cf->dns_resp)
        pack_bytes(p, T_DNS_RESP, cf->dns_resp, cf->dns_resp_len);

    pack_str(p, T_HTTP_UA, f->http.user_agent, SIZE_MAX, REC_CAP(http_ua));
    pack_str(p, T_HTTP_URL, f->http.url, SIZE_MAX, REC_CAP(http_url));
    pack_u16(p, T_HTTP_STATUS, f->http.response_status_code);
    pack_str(p, T_HTTP_CTYPE, f->http.content_type, SIZE_MAX, REC_CAP(http_content_type));
    if (f->http.method != NDPI_HTTP_METHOD_UNKNOWN) {
        /* The request line was parsed: its version is known too. */
        p->http[0] = (uint8_t)f->http.method;
        p->http[1] = f->http.request_version ? 11 : 10;
        pack_bytes(p, T_HTTP_METHOD, &p->http[0], 1);
        pack_bytes(p, T_HTTP_VERSION, &p->http[1], 1);
    }
}

/* The items, then a zero tag so the reader needs no length; NULL when
 * there is nothing to keep or on allocation failure. */
static void *pack_write(const struct cls_pack *p)
{
    if (p->total == 0)
        return NULL;
    uint8_t *buf = malloc(p->total + 1);
    if (!buf)
        return NULL;
    uint8_t *w = buf;
    for (unsigned i = 0; i < p->n; i++) {
        const struct cls_item *it = &p->item[i];
        w[0] = it->tag;
        w[1] = (uint8_t)(it->len & 0xff);
        w[2] = (uint8_t)(it->len >> 8);
        memcpy(w + 3, it->data, it->len);
        w += 3 + it->len;
    }
    *w = 0;
    return buf;
}

static void make_result(const struct ndpi_flow_struct *f, const ndpi_protocol *pr,
                        const struct classify_flow *cf, struct classify_result *res)
{
    classify_result_clear(res);
    /* Normalised ids: master is the lower protocol ("TLS", or "DNS" when
     * there is only one), app the one above it or 0. ndpi_protocol2name()
     * names both forms the same. */
    if (pr->master_protocol == NDPI_PROTOCOL_UNKNOWN || pr->master_protocol == pr->app_protocol) {
        res->master_id = pr->app_protocol;
        res->app_id = NDPI_PROTOCOL_UNKNOWN;
    } else {
        res->master_id = pr->master_protocol;
        res->app_id = pr->app_protocol;
    }
    res->category = (uint16_t)pr->category;
    res->confidence = (uint8_t)f->confidence;
    res->risk = f->risk;

    struct cls_pack p;
    collect(&p, f, pr, cf);
    /* On allocation failure the names stay and the strings are lost. */
    res->meta = pack_write(&p);
}

void classify_flow_finish(struct classify_ctx *ctx, struct classify_flow *cf,
                          struct classify_result *res)
{
    struct ndpi_flow_struct *f = cls_state(cf);
    /* ndpiReader's two give-up paths: a flow that completed without an
     * application answer (budget spent), and a flow still in detection
     * when it ends. For a flow that already has an answer the call only
     * hands it back. */
    if (cf->pkts > 0 && (!cf->completed || cf->proto.app_protocol == NDPI_PROTOCOL_UNKNOWN)) {
        uint8_t guessed = 0;
        cf->proto = ndpi_detection_giveup(ctx->ndpi, f, 1, &guessed);
    }
    make_result(f, &cf->proto, cf, res);
    res->done = 1;

    ndpi_free_flow_data(f);
    free(cf->ja3_str);
    free(cf->dns_resp);
    if (ctx->free_count >= CLS_FREE_MAX) {
        free(cf);
        return;
    }
    memset(cf, 0, ctx->alloc_size);
    cf->next = ctx->free_list;
    ctx->free_list = cf;
    ctx->free_count++;
}

const char *classify_flow_dest_name(const struct classify_ctx *ctx, const struct classify_flow *cf)
{
    (void)ctx;
    const struct ndpi_flow_struct *f = cls_cstate(cf);
    if (!f->host_server_name[0])
        return NULL;
    /* host_server_name is also the name a DNS query asks for, which names
     * nothing about this flow's responder: only the protocols where it is
     * the responder's own name count. */
    const ndpi_protocol *pr = &cf->proto;
    if (is_proto(pr, NDPI_PROTOCOL_TLS) || is_proto(pr, NDPI_PROTOCOL_QUIC) ||
        is_proto(pr, NDPI_PROTOCOL_DTLS) || is_proto(pr, NDPI_PROTOCOL_HTTP) ||
        is_proto(pr, NDPI_PROTOCOL_HTTP_CONNECT) || is_proto(pr, NDPI_PROTOCOL_HTTP_PROXY) ||
        is_proto(pr, NDPI_PROTOCOL_MAIL_SMTPS) || is_proto(pr, NDPI_PROTOCOL_MAIL_IMAPS) ||
        is_proto(pr, NDPI_PROTOCOL_MAIL_POPS))
        return f->host_server_name;
    return NULL;
}

void classify_flow_peek(struct classify_ctx *ctx, const struct classify_flow *cf,
                        struct classify_result *res)
{
    make_result(cls_cstate(cf), &cf->proto, cf, res);
    res->done = 0;
}

void classify_result_clear(struct classify_result *res)
{
    free(res->meta);
    memset(res, 0, sizeof(*res));
}

/* ---- the record ------------------------------------------------------- */

static void copy_str(char *dst, size_t cap, const uint8_t *src, size_t len)
{
    if (len > cap - 1)
        len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static uint16_t get_u16(const uint8_t *b)
{
    return (uint16_t)(b[0] | (b[1] << 8));
}

static uint32_t get_u32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void copy_name(char *dst, size_t cap, const char *s);

/* Names into the record's pool, a name already there (the question, the
 * target of the CNAME before) stored once. */
struct pool {
    struct rec_ndpi *r;
    size_t used;
    struct {
        uint16_t off;
        uint8_t len;
    } seen[2 * REC_DNS_ANSWERS + 1];
    unsigned nseen;
};

static int pool_add(struct pool *pl, const uint8_t *name, uint8_t len, uint16_t *off)
{
    for (unsigned i = 0; i < pl->nseen; i++)
        if (pl->seen[i].len == len && memcmp(pl->r->dns_pool + pl->seen[i].off, name, len) == 0) {
            *off = pl->seen[i].off;
            return 1;
        }
    if (len > sizeof(pl->r->dns_pool) - pl->used)
        return 0;
    memcpy(pl->r->dns_pool + pl->used, name, len);
    *off = (uint16_t)pl->used;
    pl->used += len;
    if (pl->nseen < EGR_ARRAY_LEN(pl->seen))
        pl->seen[pl->nseen++] = (typeof(pl->seen[0])){*off, len};
    return 1;
}

/* T_DNS_RESP (take_dns_response) into the record. Answers whose names no
 * longer fit in the pool are left out and dns_rr_cut says so. The bytes
 * were written by this file, but every length is still checked. */
static void unpack_dns(const uint8_t *v, size_t len, struct rec_ndpi *out)
{
    struct pool pl = {.r = out};
    size_t o = 0;
    if (len < 15)
        return;
    out->dns_resp_us = get_u32(v) | (uint64_t)get_u32(v + 4) << 32;
    out->dns_resp_id = get_u16(v + 8);
    out->dns_flags = get_u16(v + 10);
    if (!out->dns_qtype)
        out->dns_qtype = get_u16(v + 12);
    uint8_t ql = v[14];
    o = 15;
    if (len - o < (size_t)ql + 2 || !pool_add(&pl, v + o, ql, &out->dns_qname_off))
        return;
    out->dns_qname_len = ql;
    o += ql;
    unsigned count = v[o];
    out->dns_rr_cut = v[o + 1];
    o += 2;
    out->dns_parsed = 1;
    for (unsigned i = 0; i < count && i < REC_DNS_ANSWERS; i++) {
        struct rec_dns_rr *rr = &out->dns_rr[out->dns_rr_count];
        if (len - o < 7)
            return;
        rr->type = get_u16(v + o);
        rr->ttl = get_u32(v + o + 2);
        o += 6;
        uint8_t ol = v[o++];
        if (len - o < (size_t)ol + 1)
            return;
        const uint8_t *owner = v + o;
        o += ol;
        uint8_t dl = v[o++];
        if (len - o < dl)
            return;
        if (!pool_add(&pl, owner, ol, &rr->owner_off) || !pool_add(&pl, v + o, dl, &rr->data_off)) {
            out->dns_rr_cut = 1;
            return;
        }
        rr->owner_len = ol;
        rr->data_len = dl;
        o += dl;
        out->dns_rr_count++;
    }
}

#define COPY(field) copy_str(out->field, sizeof(out->field), v, len)

static void unpack_meta(const uint8_t *b, struct rec_ndpi *out)
{
    static const char hex[] = "0123456789abcdef";
    while (b[0] != 0) {
        uint8_t tag = b[0];
        size_t len = get_u16(b + 1);
        const uint8_t *v = b + 3;
        switch (tag) {
        case T_TLS_SNI: COPY(tls_sni); break;
        case T_TLS_ALPN: COPY(tls_alpn); break;
        case T_TLS_JA3C: COPY(tls_ja3c); break;
        case T_TLS_JA3S: COPY(tls_ja3s); break;
        case T_TLS_ISSUER: COPY(tls_issuer); break;
        case T_TLS_SUBJECT: COPY(tls_subject); break;
        case T_HTTP_HOST: COPY(http_host); break;
        case T_HTTP_UA: COPY(http_ua); break;
        case T_HTTP_URL: COPY(http_url); break;
        case T_DNS_QUERY: COPY(dns_query); break;
        case T_SSH_CLIENT: COPY(ssh_client); break;
        case T_SSH_SERVER: COPY(ssh_server); break;
        case T_SSH_HASSH_C: COPY(ssh_hassh_client); break;
        case T_SSH_HASSH_S: COPY(ssh_hassh_server); break;
        case T_TLS_JA3C_STR: COPY(tls_ja3c_str); break;
        case T_HTTP_CTYPE: COPY(http_content_type); break;
        case T_TLS_VERSION:
            if (len == 2)
                out->tls_version = get_u16(v);
            break;
        case T_TLS_VALIDITY:
            if (len == 8) {
                out->tls_not_before = get_u32(v);
                out->tls_not_after = get_u32(v + 4);
            }
            break;
        case T_HTTP_METHOD:
            if (len == 1)
                copy_name(out->http_method, sizeof(out->http_method),
                          ndpi_http_method2str((ndpi_http_method)v[0]));
            break;
        case T_HTTP_VERSION:
            if (len == 1)
                out->http_version = v[0];
            break;
        case T_DNS_ID:
            if (len == 2) {
                out->dns_id = get_u16(v);
                out->dns_has_id = 1;
            }
            break;
        case T_DNS_RESP:
            unpack_dns(v, len, out);
            break;
        case T_HTTP_STATUS:
            if (len == 2)
                out->http_status = get_u16(v);
            break;
        case T_TLS_SHA1:
            if (len == 20) {
                for (size_t i = 0; i < 20; i++) {
                    out->tls_sha1[2 * i] = hex[v[i] >> 4];
                    out->tls_sha1[2 * i + 1] = hex[v[i] & 15];
                }
                out->tls_sha1[40] = '\0';
            }
            break;
        case T_DNS_INFO:
            if (len == DNS_INFO_LEN) {
                out->dns_qtype = get_u16(v);
                out->dns_rcode = v[2];
                out->dns_is_response = v[3];
            }
            break;
        default:
            break;
        }
        b = v + len;
    }
}

#undef COPY

static void copy_name(char *dst, size_t cap, const char *s)
{
    if (!s)
        s = "";
    copy_str(dst, cap, (const uint8_t *)s, strlen(s));
}

void classify_fill_record(struct classify_ctx *ctx, const struct classify_result *res,
                          struct rec_ndpi *out)
{
    memset(out, 0, sizeof(*out));
    uint32_t key = (uint32_t)res->master_id << 16 | res->app_id;
    uint32_t slot = (key * 2654435761u) >> 26; /* the top 6 bits: CLS_PNAME_SLOTS */
    if (!ctx->pname[slot].set || ctx->pname[slot].key != key) {
        /* The name depends on the two ids alone; the category is not used. */
        ndpi_protocol pr = {res->master_id, res->app_id, NDPI_PROTOCOL_CATEGORY_UNSPECIFIED};
        ndpi_protocol2name(ctx->ndpi, pr, ctx->pname[slot].name, sizeof(ctx->pname[slot].name));
        ctx->pname[slot].key = key;
        ctx->pname[slot].set = 1;
    }
    memcpy(out->proto, ctx->pname[slot].name, sizeof(out->proto));
    if (res->master_id != NDPI_PROTOCOL_UNKNOWN)
        copy_name(out->master, sizeof(out->master), ndpi_get_proto_name(ctx->ndpi, res->master_id));
    if (res->app_id != NDPI_PROTOCOL_UNKNOWN)
        copy_name(out->app, sizeof(out->app), ndpi_get_proto_name(ctx->ndpi, res->app_id));
    copy_name(out->category, sizeof(out->category),
              ndpi_category_get_name(ctx->ndpi, (ndpi_protocol_category_t)res->category));
    copy_name(out->confidence, sizeof(out->confidence),
              ndpi_confidence_get_name((ndpi_confidence_t)res->confidence));
    out->risk = res->risk;
    out->master_id = res->master_id;
    out->app_id = res->app_id;
    if (res->meta)
        unpack_meta(res->meta, out);
}

const char *classify_risk_name(unsigned bit)
{
    /* Every value in (NO_RISK, MAX_RISK) has a constant name in nDPI 4.2;
     * outside it ndpi_risk2str formats into a static buffer, which is not
     * safe with several workers. */
    if (bit == NDPI_NO_RISK || bit >= NDPI_MAX_RISK)
        return NULL;
    return ndpi_risk2str((ndpi_risk_enum)bit);
}

/* The names of nDPI's protocols, built once: a detection module is made
 * for it (a few MB for a moment) and dropped. */
static char **proto_names;
static size_t nproto_names;
static int proto_names_failed;
static pthread_once_t proto_names_once = PTHREAD_ONCE_INIT;

static void build_proto_names(void)
{
    pthread_mutex_lock(&cls_init_lock);
    struct ndpi_detection_module_struct *m = ndpi_init_detection_module(ndpi_no_prefs);
    if (m)
        ndpi_finalize_initialization(m);
    pthread_mutex_unlock(&cls_init_lock);
    u_int n = m ? ndpi_get_num_supported_protocols(m) : 0;
    proto_names = n ? calloc(n, sizeof(*proto_names)) : NULL;
    for (u_int i = 0; proto_names && i < n; i++) {
        const char *s = ndpi_get_proto_name(m, (u_int16_t)i);
        if (s && *s && (proto_names[nproto_names] = strdup(s)))
            nproto_names++;
    }
    proto_names_failed = !proto_names;
    pthread_mutex_lock(&cls_init_lock);
    if (m)
        ndpi_exit_detection_module(m);
    pthread_mutex_unlock(&cls_init_lock);
}

static int proto_name_in(const char *s, size_t len)
{
    for (size_t i = 0; i < nproto_names; i++)
        if (strlen(proto_names[i]) == len && !strncasecmp(proto_names[i], s, len))
            return 1;
    return 0;
}

int classify_proto_known(const char *name)
{
    pthread_once(&proto_names_once, build_proto_names);
    if (proto_names_failed)
        return EGR_ENOMEM;
    size_t len = strlen(name);
    if (proto_name_in(name, len))
        return 1;
    /* Names may hold dots themselves ("Amazon.com"?): try every split. */
    for (const char *dot = strchr(name, '.'); dot; dot = strchr(dot + 1, '.'))
        if (proto_name_in(name, (size_t)(dot - name)) &&
            proto_name_in(dot + 1, len - (size_t)(dot - name) - 1))
            return 1;
    return 0;
}

const char *classify_ndpi_version(void)
{
    return ndpi_revision();
}

uint32_t classify_flow_state_size(void)
{
    return (uint32_t)cls_alloc_size();
}

/* flow-table.c - the bidirectional flow table: keys, lookup, accounting,
 * initiator logic, expiry and eviction.
 *
 * Key: (VLANs, L4 protocol, address pair, port pair) in canonical order (the
 * smaller address:port endpoint first) plus a per-flow bit saying which
 * canonical endpoint is the initiator. The hash is seeded and, because the
 * key is canonical, symmetric: both directions land in the same bucket.
 * Full 128-bit addresses are kept, so distinct IPv6 flows never merge.
 *
 * Memory: flow entries come from chunks of FLOW_CHUNK entries allocated on
 * demand up to max_flows and recycled through a free list, so steady state
 * allocates nothing per packet (nDPI's own per-flow buffers aside).
 *
 * Time: only packet timestamps move time. Every flow sits on exactly one
 * idle list (by timeout class: TCP new / established / closed, UDP, ICMP,
 * other) kept in last-seen order, and on the active list kept in
 * last-report order; expiry pops list heads, so it is O(1) per expired flow
 * and replaying a file gives the same records as capturing it live.
 *
 * Fragments: the first fragment of a datagram records its ports in a small
 * fixed table keyed by (addresses, protocol, fragment id) so the following
 * fragments are accounted to the right flow without ever parsing their
 * payload as an L4 header. Fragments whose first piece was not seen are
 * counted (frag_orphans) and belong to no flow.
 */
#include "egressd/hash.h"
#include "egressd/flow.h"

#include <stdlib.h>
#include <string.h>

#include "egressd/classify.h"

#define FLOW_CHUNK 4096u
#define FRAG_SLOTS 4096u               /* power of two */
#define FRAG_TTL_US (30ull * 1000000ull) /* fragments older than this are stale */
#define FLOW_ID_MASK ((1ull << 51) - 1) /* JSON-safe integer, like Suricata's */
#define BUCKETS_START 4096u             /* power of two */

enum tclass { TC_TCP_NEW = 0, TC_TCP_EST, TC_TCP_CLOSED, TC_UDP, TC_ICMP, TC_OTHER, TC_MAX };

struct flow_key {
    uint8_t a[16], b[16]; /* canonical: (a, pa) <= (b, pb) */
    uint16_t pa, pb;
    uint16_t vlan[2];
    uint8_t proto, family;
    uint8_t pad[2]; /* always zero so keys compare with memcmp */
};

struct flow_list {
    struct flow *head, *tail;
};

struct flow {
    struct flow_key key;
    struct flow *hnext;          /* hash chain */
    struct flow *prev, *next;    /* idle list of its timeout class */
    struct flow *aprev, *anext;  /* active-timeout list */
    uint64_t first_us, last_us, report_us;
    uint64_t pkts[2], bytes[2];  /* [0] initiator->responder, [1] back */
    uint64_t rep_pkts[2], rep_bytes[2]; /* already reported in interim records */
    uint64_t flow_id;
    struct classify_flow *cls;   /* nDPI state while detection runs */
    struct classify_result res;  /* compact results once finished */
    uint32_t seq;
    uint8_t init_is_b;           /* initiator is canonical endpoint b */
    uint8_t init_how;
    uint8_t tclass;
    uint8_t state;
    uint8_t tcp_flags[2];
    uint8_t fin_seen;            /* bit 0: initiator sent FIN, bit 1: responder */
    uint8_t icmp_type, icmp_code, icmp_by_init;
    uint8_t vlan_count, tunnel;
    uint8_t cid_set;             /* cid holds the Community ID hash */
    uint8_t cid[CID_DIGEST_LEN]; /* hashed once: a flow is judged and recorded */
    struct flow_verdict vd;      /* the policy stage's, never read here */
};

struct frag_slot {
    uint8_t src[16], dst[16];
    uint32_t id;
    uint8_t proto, family, used;
    uint16_t sport, dport;
    uint64_t ts_us;
};

struct flow_table {
    struct flow_config cfg;
    struct classify_ctx *cls;
    flow_emit_fn emit;
    void *emit_arg;
    const struct flow_hooks *hooks; /* NULL: none */
    void *hooks_arg;

    struct flow **buckets;
    uint64_t nbuckets_mask;
    uint64_t max_buckets;        /* the most buckets it grows to (power of two) */
    uint64_t seed;

    struct flow **chunks;
    uint32_t nchunks, chunk_cap;
    uint32_t allocated;          /* entries handed out from chunks so far */
    struct flow *free_list;      /* recycled entries, linked by hnext */

    struct flow_list idle[TC_MAX];
    struct flow_list act;
    uint64_t timeout_us[TC_MAX];
    uint64_t active_us;
    uint64_t now_us;
    uint64_t next_expire_check_us;

    struct frag_slot frags[FRAG_SLOTS];
    struct flow_stats st;
    struct flow_record rec; /* scratch for emission, too big for the stack */
};

void flow_config_defaults(struct flow_config *c)
{
    memset(c, 0, sizeof(*c));
    c->max_flows = 1000000;
    c->hash_seed = 0;
    c->tcp_new_timeout = 60;
    c->tcp_est_timeout = 600;
    c->tcp_closed_timeout = 10;
    c->udp_timeout = 180;
    c->icmp_timeout = 60;
    c->other_timeout = 60;
    c->active_timeout = 1800;
    c->cid.seed = 0;
    c->cid.base64 = 1;
}

size_t flow_table_entry_size(void)
{
    return sizeof(struct flow);
}

/* ---- hashing ------------------------------------------------------------ */


static uint64_t hash_bytes(const void *p, size_t n, uint64_t seed)
{
    const uint8_t *b = p;
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        h = (h ^ hash_mix64(w)) * 0x9e3779b97f4a7c15ull;
        b += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, b, n);
    h = (h ^ hash_mix64(w)) * 0x9e3779b97f4a7c15ull;
    return hash_mix64(h);
}

/* ---- lists -------------------------------------------------------------- */

static void idle_unlink(struct flow_table *ft, struct flow *f)
{
    struct flow_list *l = &ft->idle[f->tclass];
    if (f->prev)
        f->prev->next = f->next;
    else
        l->head = f->next;
    if (f->next)
        f->next->prev = f->prev;
    else
        l->tail = f->prev;
    f->prev = f->next = NULL;
}

/* Lists stay sorted (last_us, report_us) even where a capture's time steps
 * back (merged or reordered files): a flow lands behind the last one not
 * newer than it. So expiry ends every flow at the first check after it is
 * due, never later because an undue flow sits in front of it, and what
 * ends when does not depend on which other flows share the table (each
 * worker of a shared replay holds only some). The walk is one comparison
 * while time moves forward; SORT_WALK bounds it on a capture whose time
 * jumps back and forth, which then expires a little late, as before. */
#define SORT_WALK 4096u

static void idle_append(struct flow_table *ft, struct flow *f, unsigned tc)
{
    struct flow_list *l = &ft->idle[tc];
    f->tclass = (uint8_t)tc;
    struct flow *after = l->tail;
    for (unsigned n = 0; after && after->last_us > f->last_us && n < SORT_WALK; n++)
        after = after->prev;
    f->prev = after;
    f->next = after ? after->next : l->head;
    if (f->next)
        f->next->prev = f;
    else
        l->tail = f;
    if (after)
        after->next = f;
    else
        l->head = f;
}

static void act_unlink(struct flow_table *ft, struct flow *f)
{
    if (f->aprev)
        f->aprev->anext = f->anext;
    else
        ft->act.head = f->anext;
    if (f->anext)
        f->anext->aprev = f->aprev;
    else
        ft->act.tail = f->aprev;
    f->aprev = f->anext = NULL;
}

static void act_append(struct flow_table *ft, struct flow *f)
{
    struct flow *after = ft->act.tail;
    for (unsigned n = 0; after && after->report_us > f->report_us && n < SORT_WALK; n++)
        after = after->aprev;
    f->aprev = after;
    f->anext = after ? after->anext : ft->act.head;
    if (f->anext)
        f->anext->aprev = f;
    else
        ft->act.tail = f;
    if (after)
        after->anext = f;
    else
        ft->act.head = f;
}

/* ---- creation and teardown ----------------------------------------------- */

int flow_table_new(const struct flow_config *cfg, struct classify_ctx *cls,
                   flow_emit_fn emit, void *emit_arg, struct flow_table **out,
                   struct egr_err *err)
{
    if (!cfg || !emit || !out)
        return egr_fail(err, EGR_EINVAL, "flow table: missing argument");
    if (cfg->max_flows == 0)
        return egr_fail(err, EGR_EINVAL, "flow.max_flows: must be at least 1");

    struct flow_table *ft = calloc(1, sizeof(*ft));
    if (!ft)
        return egr_fail(err, EGR_ENOMEM, "flow table: out of memory");
    ft->cfg = *cfg;
    ft->cls = cls;
    ft->emit = emit;
    ft->emit_arg = emit_arg;
    ft->seed = hash_mix64(0x6567726573736400ull ^ cfg->hash_seed);

    /* At most one bucket per flow at the cap, rounded up to a power of two;
     * the table starts small and doubles whenever the flows tracked at once
     * outnumber its buckets (grow_buckets). Sized for the cap up front, the
     * array was 8 MiB at the default cap, and flows hashed all over it made
     * every page of it resident within seconds though a few thousand flows
     * were open; small, it also stays in cache. */
    uint64_t n = 1024;
    while (n < cfg->max_flows)
        n <<= 1;
    ft->max_buckets = n;
    if (n > BUCKETS_START)
        n = BUCKETS_START;
    ft->buckets = calloc(n, sizeof(*ft->buckets));
    ft->nbuckets_mask = n - 1;
    ft->chunk_cap = (cfg->max_flows + FLOW_CHUNK - 1) / FLOW_CHUNK;
    ft->chunks = calloc(ft->chunk_cap, sizeof(*ft->chunks));
    if (!ft->buckets || !ft->chunks) {
        free(ft->buckets);
        free(ft->chunks);
        free(ft);
        return egr_fail(err, EGR_ENOMEM, "flow table: out of memory for %u flows",
                        cfg->max_flows);
    }

    const uint64_t s = 1000000ull;
    ft->timeout_us[TC_TCP_NEW] = cfg->tcp_new_timeout * s;
    ft->timeout_us[TC_TCP_EST] = cfg->tcp_est_timeout * s;
    ft->timeout_us[TC_TCP_CLOSED] = cfg->tcp_closed_timeout * s;
    ft->timeout_us[TC_UDP] = cfg->udp_timeout * s;
    ft->timeout_us[TC_ICMP] = cfg->icmp_timeout * s;
    ft->timeout_us[TC_OTHER] = cfg->other_timeout * s;
    ft->active_us = cfg->active_timeout * s;
    *out = ft;
    return EGR_OK;
}

static struct flow *flow_alloc(struct flow_table *ft)
{
    struct flow *f = ft->free_list;
    if (f) {
        ft->free_list = f->hnext;
        return f;
    }
    if (ft->allocated >= ft->cfg.max_flows)
        return NULL;
    uint32_t ci = ft->allocated / FLOW_CHUNK;
    if (ci >= ft->nchunks) {
        ft->chunks[ci] = malloc((size_t)FLOW_CHUNK * sizeof(struct flow));
        if (!ft->chunks[ci])
            return NULL;
        ft->nchunks = ci + 1;
    }
    return &ft->chunks[ci][ft->allocated++ % FLOW_CHUNK];
}

/* Doubles the bucket array and rehashes every chain into it. Out of memory,
 * the table keeps its buckets (longer chains, nothing lost). */
static void grow_buckets(struct flow_table *ft)
{
    uint64_t n = (ft->nbuckets_mask + 1) * 2;
    struct flow **nb = calloc(n, sizeof(*nb));
    if (!nb)
        return;
    for (uint64_t i = 0; i <= ft->nbuckets_mask; i++) {
        struct flow *f = ft->buckets[i];
        while (f) {
            struct flow *next = f->hnext;
            uint64_t h = hash_bytes(&f->key, sizeof(f->key), ft->seed) & (n - 1);
            f->hnext = nb[h];
            nb[h] = f;
            f = next;
        }
    }
    free(ft->buckets);
    ft->buckets = nb;
    ft->nbuckets_mask = n - 1;
}

static void hash_remove(struct flow_table *ft, struct flow *f)
{
    uint64_t h = hash_bytes(&f->key, sizeof(f->key), ft->seed) & ft->nbuckets_mask;
    struct flow **pp = &ft->buckets[h];
    while (*pp && *pp != f)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = f->hnext;
}

void flow_table_free(struct flow_table *ft)
{
    if (!ft)
        return;
    /* Flows still tracked own nDPI state and result strings. */
    for (unsigned tc = 0; tc < TC_MAX; tc++) {
        for (struct flow *f = ft->idle[tc].head; f; f = f->next) {
            if (f->cls && ft->cls)
                classify_flow_finish(ft->cls, f->cls, &f->res);
            classify_result_clear(&f->res);
            free(f->vd.keys);
            free(f->vd.guard);
        }
    }
    for (uint32_t i = 0; i < ft->nchunks; i++)
        free(ft->chunks[i]);
    free(ft->chunks);
    free(ft->buckets);
    free(ft);
}

const struct flow_stats *flow_table_stats(const struct flow_table *ft)
{
    return &ft->st;
}

/* ---- records ------------------------------------------------------------ */

static void endpoint(const struct flow *f, int initiator, const uint8_t **addr, uint16_t *port)
{
    int use_b = initiator ? f->init_is_b : !f->init_is_b;
    *addr = use_b ? f->key.b : f->key.a;
    *port = use_b ? f->key.pb : f->key.pa;
}

static int proto_has_ports(uint8_t proto)
{
    return proto == 6 || proto == 17 || proto == 132 || proto == 1 || proto == 58;
}

/* The fields of f's record that need no classification result: key,
 * times, counters (the delta since the previous record when `delta`),
 * flags and Community ID. */
static void fill_record(struct flow_table *ft, struct flow *f, struct flow_record *r,
                        int delta)
{
    memset(r, 0, sizeof(*r));
    r->flow_id = f->flow_id;
    r->first_us = f->first_us;
    r->last_us = f->last_us;
    r->emit_us = ft->now_us > f->last_us ? ft->now_us : f->last_us;
    r->family = f->key.family;
    r->proto = f->key.proto;

    const uint8_t *sa, *da;
    uint16_t sp, dp;
    endpoint(f, 1, &sa, &sp);
    endpoint(f, 0, &da, &dp);
    memcpy(r->src_ip, sa, 16);
    memcpy(r->dst_ip, da, 16);
    if (f->key.proto == 1 || f->key.proto == 58) {
        /* Keyed by the mapped pair; report the initiator's type/code. */
        uint8_t peer;
        if (f->icmp_by_init || !cid_icmp_counterpart(f->key.proto, f->icmp_type, &peer)) {
            sp = f->icmp_type;
            dp = f->icmp_code;
        } else {
            sp = peer;
            dp = 0;
        }
    }
    r->src_port = sp;
    r->dst_port = dp;
    memcpy(r->vlan, f->key.vlan, sizeof(r->vlan));
    r->vlan_count = f->vlan_count;
    r->tunnel = f->tunnel;

    r->pkts_toserver = f->pkts[0] - (delta ? f->rep_pkts[0] : 0);
    r->pkts_toclient = f->pkts[1] - (delta ? f->rep_pkts[1] : 0);
    r->bytes_toserver = f->bytes[0] - (delta ? f->rep_bytes[0] : 0);
    r->bytes_toclient = f->bytes[1] - (delta ? f->rep_bytes[1] : 0);
    r->tcp_flags_ts = f->tcp_flags[0];
    r->tcp_flags_tc = f->tcp_flags[1];
    r->state = f->state;
    r->init_how = f->init_how;
    r->seq = f->seq;

    /* The tuple above never changes for a flow: neither does its hash. */
    if (!f->cid_set) {
        cid_digest(&ft->cfg.cid, f->key.family == 6 ? 6 : 4, r->src_ip, r->dst_ip, r->proto,
                   r->src_port, r->dst_port, proto_has_ports(r->proto), f->cid);
        f->cid_set = 1;
    }
    cid_format(&ft->cfg.cid, f->cid, r->community_id);
}

/* The classification fields of f's record: a snapshot while detection
 * runs, the final result once it has ended. */
static void fill_ndpi(struct flow_table *ft, const struct flow *f, struct flow_record *r)
{
    if (!ft->cls)
        return;
    if (f->cls) {
        struct classify_result snap = {0};
        classify_flow_peek(ft->cls, f->cls, &snap);
        classify_fill_record(ft->cls, &snap, &r->ndpi);
        classify_result_clear(&snap);
        r->ndpi_done = 0;
    } else {
        classify_fill_record(ft->cls, &f->res, &r->ndpi);
        r->ndpi_done = f->res.done;
    }
}

void flow_table_snapshot(struct flow_table *ft, struct flow *f, int with_ndpi,
                         struct flow_record *r)
{
    fill_record(ft, f, r, 0);
    r->reason = END_ACTIVE;
    if (with_ndpi)
        fill_ndpi(ft, f, r);
}

/* Builds the record of f into ft->rec and hands it to the sink callback.
 * For END_ACTIVE the flow lives on; counters are the delta since the
 * previous record of the flow, so records of one flow_id add up. */
static void emit_record(struct flow_table *ft, struct flow *f, enum flow_end_reason reason)
{
    struct flow_record *r = &ft->rec;
    fill_record(ft, f, r, 1);
    r->reason = (uint8_t)reason;
    if (ft->cls && f->cls && reason != END_ACTIVE) {
        classify_flow_finish(ft->cls, f->cls, &f->res);
        f->cls = NULL;
    }
    fill_ndpi(ft, f, r);

    ft->st.records[reason]++;
    if (ft->hooks && ft->hooks->record)
        ft->hooks->record(ft->hooks_arg, f, &f->vd, r);
    ft->emit(ft->emit_arg, r);
}

/* Emits the final record of f and returns it to the free list. */
static void flow_end(struct flow_table *ft, struct flow *f, enum flow_end_reason reason)
{
    emit_record(ft, f, reason);
    idle_unlink(ft, f);
    act_unlink(ft, f);
    hash_remove(ft, f);
    if (f->cls && ft->cls)
        classify_flow_finish(ft->cls, f->cls, &f->res);
    classify_result_clear(&f->res);
    f->cls = NULL;
    free(f->vd.keys);
    free(f->vd.guard);
    memset(&f->vd, 0, sizeof(f->vd)); /* a queued reference to it sees no open flow */
    f->hnext = ft->free_list;
    ft->free_list = f;
    ft->st.active--;
}

static void flow_interim(struct flow_table *ft, struct flow *f)
{
    emit_record(ft, f, END_ACTIVE);
    memcpy(f->rep_pkts, f->pkts, sizeof(f->pkts));
    memcpy(f->rep_bytes, f->bytes, sizeof(f->bytes));
    f->seq++;
    f->report_us = ft->now_us;
    act_unlink(ft, f);
    act_append(ft, f);
}

/* ---- expiry ------------------------------------------------------------- */

void flow_table_expire(struct flow_table *ft, uint64_t now_us)
{
    if (now_us > ft->now_us)
        ft->now_us = now_us;
    now_us = ft->now_us;
    for (unsigned tc = 0; tc < TC_MAX; tc++) {
        struct flow *f;
        while ((f = ft->idle[tc].head) && f->last_us + ft->timeout_us[tc] <= now_us)
            flow_end(ft, f, tc == TC_TCP_CLOSED ? END_CLOSED : END_TIMEOUT);
    }
    if (ft->active_us) {
        struct flow *f;
        while ((f = ft->act.head) && f->report_us + ft->active_us <= now_us)
            flow_interim(ft, f);
    }
}

void flow_table_flush(struct flow_table *ft, enum flow_end_reason reason)
{
    for (unsigned tc = 0; tc < TC_MAX; tc++) {
        struct flow *f;
        while ((f = ft->idle[tc].head))
            flow_end(ft, f, reason);
    }
}

/* The flow seen least recently, over all idle lists (list heads). */
static struct flow *oldest_flow(struct flow_table *ft)
{
    struct flow *best = NULL;
    for (unsigned tc = 0; tc < TC_MAX; tc++) {
        struct flow *f = ft->idle[tc].head;
        if (f && (!best || f->last_us < best->last_us))
            best = f;
    }
    return best;
}

/* ---- fragments ---------------------------------------------------------- */

static struct frag_slot *frag_slot(struct flow_table *ft, const struct pkt_meta *m)
{
    struct {
        uint8_t s[16], d[16];
        uint32_t id;
        uint8_t proto, family, pad[2];
    } k;
    memset(&k, 0, sizeof(k));
    memcpy(k.s, m->src, 16);
    memcpy(k.d, m->dst, 16);
    k.id = m->frag_id;
    k.proto = m->proto;
    k.family = m->family;
    return &ft->frags[hash_bytes(&k, sizeof(k), ft->seed) & (FRAG_SLOTS - 1)];
}

static int frag_match(const struct frag_slot *s, const struct pkt_meta *m)
{
    return s->used && s->id == m->frag_id && s->proto == m->proto &&
           s->family == m->family && !memcmp(s->src, m->src, 16) &&
           !memcmp(s->dst, m->dst, 16);
}

/* ---- per packet --------------------------------------------------------- */

/* Ports that usually belong to a server. Below 1024, plus common service
 * ports above it; used only when the handshake was not seen. */
static int is_service_port(uint16_t p)
{
    static const uint16_t high[] = {1194, 1433, 1521, 1723, 1812, 1813, 1883, 2049, 2375,
                                    2376, 3128, 3268, 3306, 3389, 4500, 5060, 5061, 5222,
                                    5223, 5228, 5349, 5432, 5671, 5672, 5900, 5938, 6379,
                                    6443, 6514, 8080, 8443, 8883, 9000, 9092, 9200, 9300,
                                    9418, 11211, 27017};
    if (p == 0)
        return 0;
    if (p < 1024)
        return 1;
    for (size_t i = 0; i < EGR_ARRAY_LEN(high); i++)
        if (high[i] == p)
            return 1;
    return 0;
}

static int is_group_addr(uint8_t family, const uint8_t *a)
{
    if (family == 4)
        return (a[0] & 0xf0) == 0xe0 || (a[0] == 255 && a[1] == 255 && a[2] == 255 && a[3] == 255);
    return a[0] == 0xff;
}

static int icmp_is_reply(uint8_t proto, uint8_t type)
{
    static const uint8_t v4[] = {0, 14, 16, 9, 18};
    static const uint8_t v6[] = {129, 131, 134, 136, 140, 145};
    const uint8_t *t = proto == 1 ? v4 : v6;
    size_t n = proto == 1 ? sizeof(v4) : sizeof(v6);
    for (size_t i = 0; i < n; i++)
        if (t[i] == type)
            return 1;
    return 0;
}

/* Decides whether the sender of the first packet is the initiator, and how
 * we know. Returns 1 if the sender initiated. */
static int first_packet_initiator(const struct pkt_meta *m, uint8_t *how)
{
    int sender = 1;
    *how = INIT_FIRST;
    if (m->proto == 6 && (m->flags & PKT_F_L4)) {
        uint8_t fl = m->tcp_flags & 0x12; /* SYN|ACK */
        if (fl == 0x02) {
            *how = INIT_SYN;
            return 1;
        }
        if (fl == 0x12) {
            *how = INIT_SYNACK;
            return 0;
        }
    }
    if ((m->proto == 1 || m->proto == 58) && (m->flags & PKT_F_L4)) {
        if (icmp_is_reply(m->proto, (uint8_t)m->sport))
            sender = 0;
    } else if ((m->flags & PKT_F_L4) && is_service_port(m->sport) && !is_service_port(m->dport)) {
        sender = 0;
    }
    /* A multicast or broadcast address never opens a conversation. */
    if (!sender && is_group_addr(m->family, m->dst))
        sender = 1;
    if (sender && is_group_addr(m->family, m->src) && !is_group_addr(m->family, m->dst))
        sender = 0;
    if (!sender)
        *how = INIT_PORT;
    return sender;
}

static unsigned tclass_of(const struct flow *f)
{
    switch (f->key.proto) {
    case 6:
        if (f->state == FST_CLOSED)
            return TC_TCP_CLOSED;
        return f->state == FST_ESTABLISHED ? TC_TCP_EST : TC_TCP_NEW;
    case 17:
        return TC_UDP;
    case 1:
    case 58:
        return TC_ICMP;
    default:
        return TC_OTHER;
    }
}

/* Builds the canonical key of m; *sender_is_b tells which canonical endpoint
 * sent m. Ports are the L4 ports, the mapped ICMP pair, or 0. */
static void make_key(const struct pkt_meta *m, uint16_t sport, uint16_t dport,
                     struct flow_key *k, int *sender_is_b)
{
    memset(k, 0, sizeof(*k));
    int c = memcmp(m->src, m->dst, 16);
    int swap = c > 0 || (c == 0 && sport > dport);
    memcpy(k->a, swap ? m->dst : m->src, 16);
    memcpy(k->b, swap ? m->src : m->dst, 16);
    k->pa = swap ? dport : sport;
    k->pb = swap ? sport : dport;
    k->vlan[0] = m->vlan[0];
    k->vlan[1] = m->vlan[1];
    k->proto = m->proto;
    k->family = m->family;
    *sender_is_b = swap;
}

static void packet_ports(struct flow_table *ft, const struct pkt_meta *m, uint16_t *sp,
                         uint16_t *dp, int *ok)
{
    *ok = 1;
    *sp = *dp = 0;
    if (m->flags & PKT_F_FRAG) {
        struct frag_slot *s = frag_slot(ft, m);
        if (m->flags & PKT_F_FRAG_FIRST) {
            memset(s, 0, sizeof(*s));
            memcpy(s->src, m->src, 16);
            memcpy(s->dst, m->dst, 16);
            s->id = m->frag_id;
            s->proto = m->proto;
            s->family = m->family;
            s->used = 1;
            s->ts_us = m->ts_us;
            if (m->flags & PKT_F_L4) {
                s->sport = m->sport;
                s->dport = m->dport;
            }
        } else if (frag_match(s, m) && m->ts_us <= s->ts_us + FRAG_TTL_US) {
            *sp = s->sport;
            *dp = s->dport;
            return;
        } else {
            *ok = 0;
            return;
        }
    }
    if (!(m->flags & PKT_F_L4))
        return;
    if (m->proto == 1 || m->proto == 58) {
        /* Zeek's mapping (as Community ID): request/reply types pair with
         * their counterpart so both directions share a key; other types
         * are keyed by type and code. */
        uint8_t peer;
        *sp = m->sport;
        *dp = cid_icmp_counterpart(m->proto, (uint8_t)m->sport, &peer) ? peer : m->dport;
        return;
    }
    *sp = m->sport;
    *dp = m->dport;
}

static struct flow *flow_create(struct flow_table *ft, const struct flow_key *k, uint64_t h,
                                const struct pkt_meta *m, int sender_is_b)
{
    struct flow *f = flow_alloc(ft);
    if (!f) {
        struct flow *old = oldest_flow(ft);
        if (!old)
            return NULL;
        flow_end(ft, old, END_EVICTED);
        f = flow_alloc(ft);
        if (!f)
            return NULL;
    }
    memset(f, 0, sizeof(*f));
    f->key = *k;
    uint8_t how;
    int sender_init = first_packet_initiator(m, &how);
    f->init_how = how;
    f->init_is_b = (uint8_t)(sender_init ? sender_is_b : !sender_is_b);
    f->first_us = f->last_us = f->report_us = m->ts_us;
    f->state = FST_NEW;
    f->vlan_count = m->vlan_count;
    f->tunnel = m->tunnel;
    if ((m->proto == 1 || m->proto == 58) && (m->flags & PKT_F_L4)) {
        f->icmp_type = (uint8_t)m->sport;
        f->icmp_code = (uint8_t)m->dport;
        f->icmp_by_init = (uint8_t)sender_init;
    }
    uint64_t idv[3] = {hash_bytes(k, sizeof(*k), ft->seed ^ 0x5bd1e995ull), m->ts_us, 0};
    f->flow_id = hash_bytes(idv, sizeof(idv), ft->seed) & FLOW_ID_MASK;
    if (ft->cls) {
        f->cls = classify_flow_new(ft->cls);
        if (!f->cls)
            ft->st.classify_oom++;
    }
    if (ft->st.active > ft->nbuckets_mask && ft->nbuckets_mask + 1 < ft->max_buckets) {
        grow_buckets(ft);
        h = hash_bytes(k, sizeof(*k), ft->seed) & ft->nbuckets_mask;
    }
    f->hnext = ft->buckets[h];
    ft->buckets[h] = f;
    idle_append(ft, f, tclass_of(f));
    act_append(ft, f);
    ft->st.flows_created++;
    if (++ft->st.active > ft->st.active_max)
        ft->st.active_max = ft->st.active;
    return f;
}

void flow_table_advance(struct flow_table *ft, uint64_t ts_us)
{
    /* Timeouts are whole seconds: checking list heads once per second of
     * packet time finds everything due, deterministically. */
    if (ts_us >= ft->next_expire_check_us) {
        flow_table_expire(ft, ts_us);
        ft->next_expire_check_us = ts_us - ts_us % 1000000ull + 1000000ull;
    } else if (ts_us > ft->now_us) {
        ft->now_us = ts_us;
    }
}

void flow_table_packet(struct flow_table *ft, const struct pkt_meta *m)
{
    flow_table_advance(ft, m->ts_us);

    ft->st.packets++;
    ft->st.bytes += m->wire_len;

    uint16_t sp, dp;
    int ok;
    packet_ports(ft, m, &sp, &dp, &ok);
    if (!ok) {
        ft->st.frag_orphans++;
        return;
    }
    struct flow_key k;
    int sender_is_b;
    make_key(m, sp, dp, &k, &sender_is_b);
    uint64_t h = hash_bytes(&k, sizeof(k), ft->seed) & ft->nbuckets_mask;

    struct flow *f = ft->buckets[h];
    while (f && memcmp(&f->key, &k, sizeof(k)) != 0)
        f = f->hnext;

    /* A SYN on a closed connection is a new connection reusing the ports. */
    if (f && f->state == FST_CLOSED && k.proto == 6 && (m->flags & PKT_F_L4) &&
        (m->tcp_flags & 0x12) == 0x02) {
        flow_end(ft, f, END_CLOSED);
        f = NULL;
    }
    int created = 0;
    if (!f) {
        f = flow_create(ft, &k, h, m, sender_is_b);
        if (!f)
            return;
        created = 1;
    }

    int dir = (sender_is_b == f->init_is_b) ? 0 : 1; /* 0: from initiator */
    f->pkts[dir]++;
    f->bytes[dir] += m->wire_len;
    if (m->ts_us > f->last_us)
        f->last_us = m->ts_us;

    uint8_t old_state = f->state;
    if (k.proto == 6 && (m->flags & PKT_F_L4)) {
        uint8_t fl = m->tcp_flags;
        f->tcp_flags[dir] |= fl;
        if (fl & 0x04) /* RST */
            f->state = FST_CLOSED;
        if (fl & 0x01) /* FIN */
            f->fin_seen |= (uint8_t)(1u << dir);
        if (f->fin_seen == 3)
            f->state = FST_CLOSED;
    }
    if (f->state == FST_NEW && f->pkts[0] && f->pkts[1])
        f->state = FST_ESTABLISHED;

    unsigned tc = tclass_of(f);
    if (tc != f->tclass || f != ft->idle[tc].tail || f->state != old_state) {
        idle_unlink(ft, f);
        idle_append(ft, f, tc);
    }

    unsigned ev = created ? FE_NEW : 0;
    if (f->cls && m->l3 && !((m->flags & PKT_F_FRAG) && !(m->flags & PKT_F_FRAG_FIRST))) {
        if (classify_packet(ft->cls, f->cls, m, dir == 0)) {
            classify_flow_finish(ft->cls, f->cls, &f->res);
            f->cls = NULL;
            ev |= FE_CLASSIFIED;
        }
    }
    if (!ft->hooks || !ft->hooks->event)
        return;
    /* The policy stage sees a flow's first packet, and later only the
     * packets it asked for: most packets cost one test of watch. */
    uint8_t w = f->vd.watch;
    if (!ev && !w)
        return;
    if ((w & VW_NAME || ev & FE_NEW) && f->cls && classify_flow_dest_name(ft->cls, f->cls))
        ev |= FE_NAME;
    if ((ev & FE_NEW) || (w & VW_PACKETS) || (ev & FE_NAME) ||
        ((ev & FE_CLASSIFIED) && (w & VW_CLASSIFIED)))
        ft->hooks->event(ft->hooks_arg, f, &f->vd, m, dir == 0, ev);
}

void flow_table_set_hooks(struct flow_table *ft, const struct flow_hooks *h, void *arg)
{
    ft->hooks = h;
    ft->hooks_arg = arg;
}

uint64_t flow_table_flow_id(const struct flow *f)
{
    return f->flow_id;
}

uint64_t flow_table_first_us(const struct flow *f)
{
    return f->first_us;
}

struct flow_verdict *flow_table_verdict(struct flow *f)
{
    return &f->vd;
}

int flow_table_classified(const struct flow *f)
{
    return f->cls == NULL;
}

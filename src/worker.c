/* worker.c - per-packet glue for one capture worker (see worker.h):
 * decode -> passive DNS -> flow table -> classify -> judge (judge.c), and
 * the enrichment of each record and snapshot (direction and asset from the
 * policy, destination name, GeoIP/ASN of the remote end).
 *
 * Enrichment runs once per record or judgement, never per packet: GeoIP
 * answers are cached, and the destination name comes from what
 * classification already found (SNI, HTTP host) or from the passive-DNS
 * table.
 */
#include "egressd/worker.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egressd/classify.h"
#include "egressd/decode.h"
#include "egressd/dns.h"
#include "egressd/geo.h"
#include "egressd/hash.h"
#include "egressd/judge.h"
#include "egressd/names.h"
#include "egressd/netset.h"
#include "egressd/policy.h"

#define OWNER_MEMO 1024u /* power of two */

struct worker {
    struct classify_ctx *cls;
    struct flow_table *flows;
    struct geo *geo;
    struct names *names;
    struct dns_answers *dns; /* ~17 KB scratch for one parsed response */
    struct sensor_port *port;
    struct judge *judge;
    struct decode_stats dec;
    struct dns_stats dnsst;
    uint64_t packets, bytes, ip_packets, not_ip;
    uint64_t last_ts_us;
    uint64_t time_backwards; /* packets older than the newest one before */
    /* A replay shared by share_n workers (worker_share): this one is
     * share_self. Every worker decodes every frame, so worker 0's decode
     * counters are the run's and the others' go to `discard`, never read. */
    unsigned share_n, share_self;
    struct decode_stats discard;
    /* The policy in force when the replay started, for ownership only: a
     * reload must not move a flow to another worker. NULL when it has no
     * local networks. */
    struct policy *share_policy;
    /* Owners of recent address pairs: two netset lookups per frame were 8%
     * of a shared replay's instructions, and frames come in runs per flow. */
    struct owner_memo {
        uint64_t a[2], b[2];
        uint32_t family, owner;
    } *memo;
};

static void worker_emit(void *arg, struct flow_record *rec);
static void enrich(void *arg, const struct policy *p, struct flow_record *r);

int worker_new(const struct egr_config *cfg, struct sensor *s, struct worker **out,
               struct egr_err *err)
{
    struct worker *w = calloc(1, sizeof(*w));
    if (!w)
        return egr_fail(err, EGR_ENOMEM, "worker: out of memory");
    w->dns = malloc(sizeof(*w->dns));
    int rc = w->dns ? EGR_OK : egr_fail(err, EGR_ENOMEM, "worker: out of memory");
    if (rc == EGR_OK)
        rc = sensor_port_open(s, &w->port, err);
    if (rc == EGR_OK)
        rc = judge_new(w->port, enrich, w, &w->judge, err);
    /* A GeoIP database the configuration names and that cannot be opened
     * is a configuration error (exit 2), as --check-config finds it. */
    if (rc == EGR_OK && (rc = geo_open(&cfg->geo, &w->geo, err)) == EGR_EIO)
        rc = EGR_EINVAL;
    if (rc == EGR_OK)
        rc = names_new(cfg->names_max, &w->names, err);
    if (rc == EGR_OK)
        rc = names_set_ttl(w->names, cfg->names_min_ttl, cfg->names_max_ttl, err);
    if (rc == EGR_OK)
        rc = classify_new(&cfg->classify, &w->cls, err);
    if (rc == EGR_OK)
        rc = flow_table_new(&cfg->flow, w->cls, worker_emit, w, &w->flows, err);
    if (rc != EGR_OK) {
        worker_free(w);
        return rc;
    }
    judge_attach(w->judge, w->flows);
    *out = w;
    return EGR_OK;
}

void worker_free(struct worker *w)
{
    if (!w)
        return;
    /* The flow table hands nDPI state back to the module: free it first. */
    flow_table_free(w->flows);
    judge_free(w->judge);
    sensor_port_close(w->port);
    if (w->cls)
        classify_free(w->cls);
    geo_free(w->geo);
    names_free(w->names);
    policy_free(w->share_policy);
    free(w->memo);
    free(w->dns);
    free(w);
}

/* An HTTP Host that is an address literal ("10.1.2.3", "[2001:db8::1]:8080")
 * names nothing: the passive-DNS name, if any, says more. */
static int host_is_literal(const char *h)
{
    char buf[64];
    size_t n = strcspn(h, "]");
    if (h[0] == '[') {
        if (n - 1 >= sizeof(buf))
            return 0;
        memcpy(buf, h + 1, n - 1);
        buf[n - 1] = '\0';
    } else {
        n = strcspn(h, ":");
        if (n >= sizeof(buf) || strchr(h + n + (h[n] ? 1 : 0), ':'))
            n = strlen(h); /* bare IPv6 */
        if (n >= sizeof(buf))
            return 0;
        memcpy(buf, h, n);
        buf[n] = '\0';
    }
    uint8_t a[16];
    return inet_pton(AF_INET, buf, a) == 1 || inet_pton(AF_INET6, buf, a) == 1;
}

static void set_name(struct rec_enrich *e, const char *name, uint8_t src)
{
    egr_copy(e->dest_name, sizeof(e->dest_name), name);
    e->dest_name_src = src;
}

/* Direction, asset and role from the policy, then the responder's name
 * and the remote end's GeoIP: a record or a snapshot being judged. */
static void enrich(void *arg, const struct policy *p, struct flow_record *r)
{
    struct worker *w = arg;
    struct rec_enrich *e = &r->enrich;
    memset(e, 0, sizeof(*e));
    policy_annotate(p, r);

    /* The responder's name, best source first. */
    if (r->ndpi.tls_sni[0])
        set_name(e, r->ndpi.tls_sni, NAME_SNI);
    else if (r->ndpi.http_host[0] && !host_is_literal(r->ndpi.http_host))
        set_name(e, r->ndpi.http_host, NAME_HTTP);
    else if (names_lookup(w->names, r->family, r->dst_ip, r->first_us, e->dest_name,
                          sizeof(e->dest_name)))
        e->dest_name_src = NAME_DNS;

    /* GeoIP of the remote end: the initiator when it came from outside.
     * Without a home_net, the responder unless only the initiator is a
     * public address. */
    const uint8_t *remote = r->dst_ip;
    if (e->direction == DIR_INBOUND ||
        (e->direction == DIR_UNKNOWN && netset_is_special(r->family, r->dst_ip) &&
         !netset_is_special(r->family, r->src_ip)))
        remote = r->src_ip;
    struct geo_info gi;
    if (geo_lookup(w->geo, r->family, remote, &gi)) {
        e->has_country = gi.has_country;
        e->has_asn = gi.has_asn;
        e->has_org = gi.has_org;
        memcpy(e->country, gi.country, sizeof(e->country));
        e->asn = gi.asn;
        egr_copy(e->as_org, sizeof(e->as_org), gi.as_org);
    }
}

/* A record leaving the flow table, already enriched and judged by the
 * judge's record hook. */
static void worker_emit(void *arg, struct flow_record *r)
{
    struct worker *w = arg;
    sensor_port_flow(w->port, r);
}

/* DNS answers seen on the wire feed the passive-DNS table. Only responses
 * from port 53 are parsed; over TCP only a response that starts a segment
 * (no reassembly). */
static void learn_dns(struct worker *w, const struct pkt_meta *m, int count)
{
    if (!(m->flags & PKT_F_L4) || m->sport != 53 || !m->payload || m->payload_len == 0 ||
        (m->flags & PKT_F_FRAG))
        return;
    if (m->proto == 17)
        dns_parse_response(m->payload, m->payload_len, w->dns);
    else if (m->proto == 6)
        dns_parse_tcp(m->payload, m->payload_len, w->dns, NULL);
    else
        return;
    if (count)
        dns_stats_count(&w->dnsst, w->dns);
    names_learn(w->names, w->dns, m->ts_us);
}

void worker_share(struct worker *w, unsigned self, unsigned n)
{
    w->share_self = self;
    w->share_n = n > 1 ? n : 0;
    policy_free(w->share_policy);
    w->share_policy = NULL;
    /* The port's policy is read-only; the reference keeps it alive. */
    struct policy *p = (struct policy *)sensor_port_policy(w->port);
    if (w->share_n && policy_has_local(p)) {
        if (!w->memo)
            w->memo = calloc(OWNER_MEMO, sizeof(*w->memo)); /* NULL: no memo */
        w->share_policy = policy_ref(p);
    }
}

/* The worker owning a packet's flow. A flow with exactly one local end
 * (egress, inbound) goes by that address alone, so every flow of an asset
 * is tracked by one worker: what the policy sums over an asset's flows
 * (exfiltration volume, guarded services, alert suppression) and what nDPI
 * remembers per host then sees them in packet order, as one worker would.
 * Any other flow goes by a hash of its address pair that is the same both
 * ways. Both are the same for every fragment of a datagram (ports are not in
 * every fragment). */
static unsigned owner_of(const struct worker *w, const struct pkt_meta *m, unsigned n)
{
    uint64_t a[2], b[2];
    memcpy(a, m->src, sizeof(a));
    memcpy(b, m->dst, sizeof(b));
    const uint64_t k = 0x9e3779b97f4a7c15ull;
    uint64_t ha = a[0] ^ a[1] * k, hb = b[0] ^ b[1] * k;
    uint64_t pair = hash_mix64(ha + hb + m->family); /* a sum is the same both ways */
    if (!w->share_policy)
        return (unsigned)(((pair >> 32) * n) >> 32);
    struct owner_memo *e = w->memo ? &w->memo[pair & (OWNER_MEMO - 1)] : NULL;
    if (e && e->family == m->family &&
        ((e->a[0] == a[0] && e->a[1] == a[1] && e->b[0] == b[0] && e->b[1] == b[1]) ||
         (e->a[0] == b[0] && e->a[1] == b[1] && e->b[0] == a[0] && e->b[1] == a[1])))
        return e->owner; /* either direction: the index is symmetric */
    int la = policy_is_local(w->share_policy, m->family, m->src);
    int lb = policy_is_local(w->share_policy, m->family, m->dst);
    uint64_t h = la != lb ? hash_mix64((la ? ha : hb) + m->family) : pair;
    unsigned owner = (unsigned)(((h >> 32) * n) >> 32);
    if (e) {
        memcpy(e->a, a, sizeof(a));
        memcpy(e->b, b, sizeof(b));
        e->family = m->family;
        e->owner = owner;
    }
    return owner;
}

static void packet_owned(struct worker *w, int rc, const struct capture_pkt *p,
                         const struct pkt_meta *m)
{
    w->packets++;
    w->bytes += p->wire_len;
    if (rc == DECODE_OK) {
        w->ip_packets++;
        learn_dns(w, m, 1);
        flow_table_packet(w->flows, m);
    } else {
        if (rc == DECODE_NOT_IP)
            w->not_ip++;
        /* Time still moves on frames we cannot use. */
        flow_table_expire(w->flows, p->ts_us);
    }
}

/* A shared replay: every worker reads every packet, accounts only those of
 * its flows (frames without IP go to worker 0) and lets the others move its
 * clock exactly as they would move a single worker's (the same expiries,
 * the same decision bounds, the same record times) and teach its
 * passive-DNS table (so a flow is named whichever worker saw the answer). */
static void packet_shared(struct worker *w, int dlt, const struct capture_pkt *p)
{
    struct pkt_meta m;
    struct decode_stats *st = w->share_self == 0 ? &w->dec : &w->discard;
    int rc = decode_packet(st, dlt, p->data, p->caplen, p->wire_len, p->ts_us, &m);
    unsigned owner = rc == DECODE_OK ? owner_of(w, &m, w->share_n) : 0;
    if (owner == w->share_self) {
        packet_owned(w, rc, p, &m);
    } else if (rc == DECODE_OK) {
        learn_dns(w, &m, 0);
        flow_table_advance(w->flows, p->ts_us);
    } else {
        flow_table_expire(w->flows, p->ts_us);
    }
}

void worker_packet(struct worker *w, int dlt, const struct capture_pkt *p)
{
    if (p->ts_us > w->last_ts_us)
        w->last_ts_us = p->ts_us;
    else if (p->ts_us < w->last_ts_us && w->share_self == 0)
        w->time_backwards++; /* a shared replay: every worker sees the frame, one counts it */
    judge_tick(w->judge, p->ts_us);
    if (w->share_n) {
        packet_shared(w, dlt, p);
        return;
    }
    struct pkt_meta m;
    int rc = decode_packet(&w->dec, dlt, p->data, p->caplen, p->wire_len, p->ts_us, &m);
    packet_owned(w, rc, p, &m);
}

void worker_tick(struct worker *w, uint64_t now_us)
{
    if (now_us <= w->last_ts_us)
        return;
    /* last_ts_us stays the newest packet's time: the stats event reports
     * packet time, and a tick must not make later packets look old. */
    judge_tick(w->judge, now_us);
    flow_table_expire(w->flows, now_us);
}

void worker_output_tick(struct worker *w, int force)
{
    sensor_port_tick(w->port, egr_mono_us(), force);
}

void worker_flush(struct worker *w, enum flow_end_reason reason)
{
    flow_table_flush(w->flows, reason);
}

void worker_stats(const struct worker *w, struct run_stats *st)
{
    st->packets += w->packets;
    st->bytes += w->bytes;
    st->ip_packets += w->ip_packets;
    st->not_ip += w->not_ip;
    st->time_backwards += w->time_backwards;
    if (w->last_ts_us > st->ts_us)
        st->ts_us = w->last_ts_us;
    for (unsigned i = 0; i < DEC_COUNTER_MAX; i++)
        st->decode.c[i] += w->dec.c[i];
    const struct flow_stats *fs = flow_table_stats(w->flows);
    st->flow.packets += fs->packets;
    st->flow.bytes += fs->bytes;
    st->flow.flows_created += fs->flows_created;
    for (unsigned i = 0; i < END_REASON_MAX; i++)
        st->flow.records[i] += fs->records[i];
    st->flow.active += fs->active;
    st->flow.active_max += fs->active_max;
    st->flow.frag_orphans += fs->frag_orphans;
    st->flow.classify_oom += fs->classify_oom;
    const struct geo_stats *gs = geo_stats(w->geo);
    st->geo_lookups += gs->lookups;
    st->geo_cache_hits += gs->cache_hits;
    const struct names_stats *ns = names_stats(w->names);
    st->dns_responses += w->dnsst.messages;
    st->dns_errors += w->dnsst.messages - w->dnsst.ok;
    st->names_learned += ns->learned;
    st->names_hits += ns->hits;
}

/* The fields worker_stats and the capture fill. */
void worker_stats_add(struct run_stats *d, const struct run_stats *s)
{
    if (s->ts_us > d->ts_us)
        d->ts_us = s->ts_us;
    d->packets += s->packets;
    d->bytes += s->bytes;
    d->ip_packets += s->ip_packets;
    d->not_ip += s->not_ip;
    d->time_backwards += s->time_backwards;
    d->drop_kernel += s->drop_kernel;
    d->drop_ifdrop += s->drop_ifdrop;
    for (unsigned i = 0; i < DEC_COUNTER_MAX; i++)
        d->decode.c[i] += s->decode.c[i];
    d->flow.packets += s->flow.packets;
    d->flow.bytes += s->flow.bytes;
    d->flow.flows_created += s->flow.flows_created;
    for (unsigned i = 0; i < END_REASON_MAX; i++)
        d->flow.records[i] += s->flow.records[i];
    d->flow.active += s->flow.active;
    d->flow.active_max += s->flow.active_max;
    d->flow.frag_orphans += s->flow.frag_orphans;
    d->flow.classify_oom += s->flow.classify_oom;
    d->geo_lookups += s->geo_lookups;
    d->geo_cache_hits += s->geo_cache_hits;
    d->dns_responses += s->dns_responses;
    d->dns_errors += s->dns_errors;
    d->names_learned += s->names_learned;
    d->names_hits += s->names_hits;
}

/* worker.c - per-packet glue for one capture worker (see worker.h). */
#include "egressd/worker.h"

#include <stdlib.h>
#include <string.h>

#include "egressd/classify.h"
#include "egressd/decode.h"

struct worker {
    struct classify_ctx *cls;
    struct flow_table *flows;
    struct decode_stats dec;
    uint64_t packets, bytes, ip_packets, not_ip;
    uint64_t last_ts_us;
};

int worker_new(const struct egr_config *cfg, flow_emit_fn emit, void *emit_arg,
               struct worker **out, struct egr_err *err)
{
    struct worker *w = calloc(1, sizeof(*w));
    if (!w)
        return egr_fail(err, EGR_ENOMEM, "worker: out of memory");
    int rc = classify_new(&cfg->classify, &w->cls, err);
    if (rc == EGR_OK)
        rc = flow_table_new(&cfg->flow, w->cls, emit, emit_arg, &w->flows, err);
    if (rc != EGR_OK) {
        worker_free(w);
        return rc;
    }
    *out = w;
    return EGR_OK;
}

void worker_free(struct worker *w)
{
    if (!w)
        return;
    /* The flow table hands nDPI state back to the module: free it first. */
    flow_table_free(w->flows);
    if (w->cls)
        classify_free(w->cls);
    free(w);
}

void worker_packet(struct worker *w, int dlt, const struct capture_pkt *p)
{
    struct pkt_meta m;
    w->packets++;
    w->bytes += p->wire_len;
    if (p->ts_us > w->last_ts_us)
        w->last_ts_us = p->ts_us;
    int rc = decode_packet(&w->dec, dlt, p->data, p->caplen, p->wire_len, p->ts_us, &m);
    if (rc == DECODE_OK) {
        w->ip_packets++;
        flow_table_packet(w->flows, &m);
    } else {
        if (rc == DECODE_NOT_IP)
            w->not_ip++;
        /* Time still moves on frames we cannot use. */
        flow_table_expire(w->flows, p->ts_us);
    }
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
}

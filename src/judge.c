/* judge.c - a worker's policy stage (see judge.h and verdict.h): when a
 * flow is judged, and with what.
 *
 *   first packet   every flow: direction, asset, the address-only parts of
 *                  the policy (CIDR/port rules, IP intel, a role whose rules
 *                  could never match, learning by address); the flow stays
 *                  open only if a rule that needs a name or nDPI's answer
 *                  could still allow it, or a risk or name list could still
 *                  match;
 *   name           the packet that makes the TLS/QUIC SNI or HTTP Host known;
 *   classified     the packet that ends nDPI's classification;
 *   bound          the flow's alerts.decide_packets-th packet with payload
 *                  (either direction), or alerts.decide_seconds of packet
 *                  time after its first packet (also for a flow that went
 *                  quiet: pending
 *                  flows wait in a FIFO by deadline, swept as time moves);
 *                  the role's verdict and risks are then taken on what is
 *                  known, and only name/fingerprint intel keeps watching
 *                  until classification ends;
 *   record         a flow still open when a record is written is decided
 *                  on the record.
 * Volume (exfiltration) is counted on every packet from the initiator of a
 * named asset's egress flow, and alerts at the packet that crosses it.
 *
 * Cost: the flow table calls in only for a flow's first packet and for the
 * packets the verdict asks for (watch); a judgement builds one snapshot
 * record (without nDPI's strings at the first packet).
 */
#include "egressd/judge.h"

#include <stdlib.h>
#include <string.h>

struct pending {
    struct flow *f;  /* flow entries are never unmapped while the table lives */
    uint64_t id;     /* its flow_id when queued: a reused entry does not match */
    uint64_t deadline;
};

struct judge {
    struct sensor_port *port;
    judge_enrich_fn enrich;
    void *enrich_arg;
    struct flow_table *ft;
    struct pending *ring;        /* open flows by deadline (FIFO) */
    size_t cap, head, n;
    struct flow_record snap;     /* scratch: too big for the stack */
    struct alert_record alert;
};

static void on_event(void *arg, struct flow *f, struct flow_verdict *v, const struct pkt_meta *m,
                     int from_initiator, unsigned events);
static void on_record(void *arg, struct flow *f, struct flow_verdict *v, struct flow_record *rec);

static const struct flow_hooks judge_hooks = {on_event, on_record};

int judge_new(struct sensor_port *port, judge_enrich_fn enrich, void *enrich_arg,
              struct judge **out, struct egr_err *err)
{
    struct judge *j = calloc(1, sizeof(*j));
    if (!j)
        return egr_fail(err, EGR_ENOMEM, "judge: out of memory");
    j->port = port;
    j->enrich = enrich;
    j->enrich_arg = enrich_arg;
    *out = j;
    return EGR_OK;
}

void judge_free(struct judge *j)
{
    if (!j)
        return;
    free(j->ring);
    free(j);
}

void judge_attach(struct judge *j, struct flow_table *ft)
{
    j->ft = ft;
    flow_table_set_hooks(ft, &judge_hooks, j);
}

const struct policy *judge_policy(struct judge *j)
{
    return sensor_port_policy(j->port);
}

/* ---- the deadline FIFO ------------------------------------------------------ */

static void queue(struct judge *j, struct flow *f, uint64_t deadline)
{
    if (j->n == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 1024;
        struct pending *r = malloc(cap * sizeof(*r));
        if (!r)
            return; /* decided at its next packet or its record instead */
        for (size_t i = 0; i < j->n; i++)
            r[i] = j->ring[(j->head + i) % j->cap];
        free(j->ring);
        j->ring = r;
        j->cap = cap;
        j->head = 0;
    }
    j->ring[(j->head + j->n) % j->cap] = (struct pending){f, flow_table_flow_id(f), deadline};
    j->n++;
}

/* ---- judging ----------------------------------------------------------------- */

static uint64_t deadline_of(const struct policy *p, const struct flow *f)
{
    return flow_table_first_us(f) + (uint64_t)policy_config_of(p)->decide_seconds * 1000000u;
}

/* Judges f on what is known now and sets what to watch next. */
static void settle(struct judge *j, struct flow *f, struct flow_verdict *v, unsigned events,
                   unsigned by, uint64_t ts, int bound)
{
    const struct policy *p = judge_policy(j);
    struct policy_state *st = sensor_port_state(j->port);
    int classified = flow_table_classified(f);
    unsigned known = PJ_PACKET_BYTES;
    if (classified || bound)
        known |= PJ_NAME | PJ_NDPI;
    if (events & FE_NAME)
        known |= PJ_NAME;
    /* At the first packet nDPI has seen one packet: its strings matter only
     * if it already found a name (a QUIC Initial, say). */
    int with_ndpi = !(events & FE_NEW) || classified || (events & FE_NAME);
    struct flow_record *rec = &j->snap;
    flow_table_snapshot(j->ft, f, with_ndpi, rec);
    rec->emit_us = ts;
    j->enrich(j->enrich_arg, p, rec);
    if (events & FE_NEW)
        v->exfil = policy_volume_slot(p, st, rec);

    unsigned open = policy_judge(p, st, rec, v, known, by, &j->alert, sensor_port_alert_fn,
                                 j->port);
    if (bound)
        v->bounded = 1;
    int was_open = v->state == VST_OPEN;
    uint8_t watch = v->exfil || v->guard ? VW_PACKETS : 0;
    if (open & (PJ_OPEN_ROLE | PJ_OPEN_RISK)) {
        v->state = VST_OPEN;
        watch |= VW_NAME | VW_CLASSIFIED | VW_PACKETS;
        if (!was_open)
            queue(j, f, deadline_of(p, f));
    } else if ((open & PJ_OPEN_INTEL) || (!classified && policy_late_intel(p))) {
        /* Name and fingerprint lists keep watching until nDPI is done. */
        v->state = VST_OPEN;
        watch |= VW_NAME | VW_CLASSIFIED;
    } else {
        v->state = VST_DONE;
    }
    if (known & PJ_NAME)
        watch &= (uint8_t)~VW_NAME; /* the name is in: no more name events */
    v->watch = watch;
}

static void on_event(void *arg, struct flow *f, struct flow_verdict *v, const struct pkt_meta *m,
                     int from_initiator, unsigned events)
{
    struct judge *j = arg;
    const struct policy *p = judge_policy(j);
    /* Payload in either direction: a name comes in the initiator's first
     * flight, which a server that speaks first (a shell's prompt, a
     * banner) does not delay. */
    int payload = m->payload_len > 0;
    /* A guard resolved by this packet's judgement has counted it already. */
    int counted_guard = v->guard != NULL;
    if (events & FE_NEW) {
        if (!policy_active(p)) {
            v->state = VST_DONE;
            return;
        }
        v->payload = (uint8_t)payload;
        settle(j, f, v, events, VBY_FIRST_PACKET, m->ts_us, 0);
    } else if (v->state == VST_OPEN) {
        int bound = 0;
        if (!v->bounded && (v->watch & VW_PACKETS)) {
            if (payload && v->payload < UINT8_MAX)
                v->payload++;
            bound = v->payload >= policy_config_of(p)->decide_packets ||
                    m->ts_us >= deadline_of(p, f);
        }
        if (events & FE_NAME)
            settle(j, f, v, events, VBY_NAME, m->ts_us, bound);
        else if (events & FE_CLASSIFIED)
            settle(j, f, v, events, VBY_CLASSIFIED, m->ts_us, bound);
        else if (bound)
            settle(j, f, v, events, VBY_BOUND, m->ts_us, 1);
    }
    if (counted_guard && v->guard && m->wire_len &&
        policy_guard_bytes(p, v, from_initiator ? m->wire_len : 0, from_initiator ? 0 : m->wire_len,
                           m->ts_us)) {
        struct flow_record *rec = &j->snap;
        flow_table_snapshot(j->ft, f, 1, rec);
        rec->emit_us = m->ts_us;
        j->enrich(j->enrich_arg, p, rec);
        policy_guard_volume_alert(p, sensor_port_state(j->port), rec, v, &j->alert,
                                  sensor_port_alert_fn, j->port);
    }
    if (v->exfil && from_initiator) {
        uint64_t total;
        if (policy_volume_add(p, sensor_port_state(j->port), v->exfil, m->wire_len, m->ts_us,
                              &total)) {
            struct flow_record *rec = &j->snap;
            flow_table_snapshot(j->ft, f, 1, rec);
            rec->emit_us = m->ts_us;
            j->enrich(j->enrich_arg, p, rec);
            policy_volume_alert(p, sensor_port_state(j->port), rec, v, total, &j->alert,
                                sensor_port_alert_fn, j->port);
        }
    }
}

void judge_tick(struct judge *j, uint64_t now_us)
{
    while (j->n) {
        struct pending *e = &j->ring[j->head];
        if (e->deadline > now_us)
            break;
        struct pending due = *e;
        j->head = (j->head + 1) % j->cap;
        j->n--;
        struct flow_verdict *v = flow_table_verdict(due.f);
        if (flow_table_flow_id(due.f) != due.id || v->state != VST_OPEN || v->bounded)
            continue;
        /* At the moment the bound passed, whatever packet moved time past
         * it: a replay and a live capture give the same alert. */
        settle(j, due.f, v, 0, VBY_BOUND, due.deadline, 1);
    }
}

static void on_record(void *arg, struct flow *f, struct flow_verdict *v, struct flow_record *rec)
{
    struct judge *j = arg;
    const struct policy *p = judge_policy(j);
    j->enrich(j->enrich_arg, p, rec);
    if (v->state == VST_OPEN) {
        /* Still open when its record is written: decided on the record. */
        policy_judge(p, sensor_port_state(j->port), rec, v, PJ_NAME | PJ_NDPI | PJ_PACKET_BYTES,
                     VBY_RECORD, &j->alert, sensor_port_alert_fn, j->port);
        v->bounded = 1;
        if (rec->reason != END_ACTIVE || rec->ndpi_done) {
            v->state = VST_DONE;
            v->watch &= VW_PACKETS;
        }
        if (v->guard)
            v->watch |= VW_PACKETS;
    }
    (void)f;
    if (v->keys) {
        rec->alerted = 1;
        rec->verdict_by = v->by;
        rec->verdict_us = v->at_us;
        rec->nalert_keys = v->keys->n;
        memcpy(rec->alert_keys, v->keys->key, (size_t)v->keys->n * 20);
    }
}

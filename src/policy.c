/* policy.c - the egress policy engine (see policy.h): building a policy,
 * the direction and asset of each flow, and judging a flow against intel
 * lists, its role's allow rules, nDPI risks and the volume check.
 *
 * Judging may happen several times over a flow's life (verdict.h): at its
 * first packet with only addresses and ports, again when a name or nDPI's
 * answer arrives. Every call raises only what the flow has not raised yet
 * (its keys are in struct flow_verdict), and the role's verdict is taken
 * once, when nothing still to come could change it: an allow rule that
 * needs no unknown kind of key matches, or no rule could match whatever the
 * name or protocol turns out to be.
 *
 * Rule matching is in policy-rules.c, intel lists in policy-intel.c,
 * learning in policy-learn.c and the shared alert state in policy-alerts.c.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egressd/classify.h"
#include "policy-guard.h"
#include "policy-int.h"

const struct policy_config *policy_config_of(const struct policy *p)
{
    return &p->pc;
}

int policy_learning(const struct policy *p)
{
    return p && p->learning && p->pc.baseline_file[0];
}

void pol_ip_text(int family, const uint8_t *ip, char *out, size_t n)
{
    if (!inet_ntop(family == 6 ? AF_INET6 : AF_INET, ip, out, (socklen_t)n))
        snprintf(out, n, "?");
}

/* ---- building ------------------------------------------------------------ */

int policy_new(const struct policy_config *pc, struct policy **out, struct egr_err *err)
{
    struct policy *p = calloc(1, sizeof(*p));
    if (!p)
        return egr_fail(err, EGR_ENOMEM, "out of memory");
    atomic_init(&p->refs, 1);
    p->pc = *pc;
    policy_spec_ref(pc->spec);
    p->spec = pc->spec;
    int rc = EGR_OK;
    if (p->spec) {
        p->intel = calloc(p->spec->nintel ? p->spec->nintel : 1, sizeof(*p->intel));
        if (!p->intel)
            rc = egr_fail(err, EGR_ENOMEM, "out of memory");
        for (size_t i = 0; rc == EGR_OK && i < p->spec->nintel; i++)
            rc = pol_intel_load(&p->intel[i], &p->spec->intel[i], err);
        if (rc == EGR_OK)
            rc = pol_baseline_load(p, err);
        size_t nr = p->spec->nroles ? p->spec->nroles : 1;
        if (rc == EGR_OK && (!(p->index = calloc(nr, sizeof(*p->index))) ||
                             !(p->bindex = calloc(nr, sizeof(*p->bindex)))))
            rc = egr_fail(err, EGR_ENOMEM, "out of memory");
        for (size_t i = 0; rc == EGR_OK && i < p->spec->nroles; i++)
            if (pol_index_build(&p->index[i], &p->spec->roles[i]) != EGR_OK ||
                pol_index_build(&p->bindex[i], &p->baseline[i]) != EGR_OK)
                rc = egr_fail(err, EGR_ENOMEM, "out of memory");
        p->intel_late = pol_intel_needs_classification(p);
    }
    if (rc != EGR_OK) {
        policy_free(p);
        return rc;
    }
    *out = p;
    return EGR_OK;
}

struct policy *policy_ref(struct policy *p)
{
    if (p)
        atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    return p;
}

void policy_free(struct policy *p)
{
    if (!p || atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; p->intel && p->spec && i < p->spec->nintel; i++)
        pol_intel_free(&p->intel[i]);
    free(p->intel);
    for (size_t i = 0; p->spec && i < p->spec->nroles; i++) {
        if (p->index)
            pol_index_free(&p->index[i]);
        if (p->bindex)
            pol_index_free(&p->bindex[i]);
    }
    free(p->index);
    free(p->bindex);
    pol_roles_free(p->baseline, p->nbaseline);
    policy_config_release(&p->pc);
    free(p);
}

void policy_state_seed(const struct policy *p, struct policy_state *st)
{
    pol_learn_seed(p, pol_state_learned(st));
}

int policy_save_baseline(const struct policy *p, struct policy_state *st, struct egr_err *err)
{
    return pol_learn_save(p, pol_state_learned(st), err);
}

/* ---- annotation ---------------------------------------------------------- */

int policy_active(const struct policy *p)
{
    return p && p->spec;
}

int policy_is_local(const struct policy *p, int family, const uint8_t *ip)
{
    return p && p->spec && pol_local(p->spec, family, ip);
}

int policy_has_local(const struct policy *p)
{
    return p && p->spec && (p->spec->home_net || p->spec->asset_net);
}

int policy_late_intel(const struct policy *p)
{
    return p && p->intel_late;
}

int pol_local(const struct policy_spec *s, int family, const uint8_t *ip)
{
    return (s->home_net && netset_lookup(s->home_net, family, ip, NULL)) ||
           (s->asset_net && netset_lookup(s->asset_net, family, ip, NULL));
}

/* The role (index) and asset (index or -1) of a local address. Returns the
 * role index or -1. */
static int role_of(const struct policy_spec *s, int family, const uint8_t *ip, int *asset)
{
    uint32_t v;
    *asset = -1;
    if (s->asset_net && netset_lookup(s->asset_net, family, ip, &v) && v < s->nassets) {
        *asset = (int)v;
        return s->assets[v].role_index;
    }
    if (s->home_net && netset_lookup(s->home_net, family, ip, NULL))
        return s->default_role_index;
    return -1;
}

void policy_annotate(const struct policy *p, struct flow_record *rec)
{
    const struct policy_spec *s = p ? p->spec : NULL;
    struct rec_enrich *e = &rec->enrich;
    if (!s || (!s->home_net && !s->asset_net))
        return;
    int src_in = pol_local(s, rec->family, rec->src_ip);
    int dst_in = pol_local(s, rec->family, rec->dst_ip);
    e->direction = src_in ? (dst_in ? DIR_INTERNAL : DIR_EGRESS)
                          : (dst_in ? DIR_INBOUND : DIR_EXTERNAL);
    const uint8_t *lip = e->direction == DIR_INBOUND ? rec->dst_ip
                         : e->direction == DIR_EXTERNAL ? NULL : rec->src_ip;
    if (!lip)
        return;
    int asset, role = role_of(s, rec->family, lip, &asset);
    if (asset >= 0)
        egr_copy(e->asset, sizeof(e->asset), s->assets[asset].name);
    if (role >= 0)
        egr_copy(e->role, sizeof(e->role), s->roles[role].name);
}

/* ---- raising an alert ---------------------------------------------------- */

/* One judgement in progress. */
struct judge {
    const struct policy *p;
    struct policy_state *st;
    struct flow_record *rec;
    struct flow_verdict *v;     /* NULL: a record judged on its own */
    unsigned by;
    struct alert_record *a;     /* the event's storage */
    policy_alert_fn fn;
    void *arg;
    char dest_ip[64], asset_key[POLICY_NAME_MAX + 64]; /* filled on first use */
};

static void service_of(const struct flow_record *rec, char *out, size_t n)
{
    switch (rec->proto) {
    case 6: snprintf(out, n, "tcp/%u", rec->dst_port); break;
    case 17: snprintf(out, n, "udp/%u", rec->dst_port); break;
    case 132: snprintf(out, n, "sctp/%u", rec->dst_port); break;
    case 1: snprintf(out, n, "icmp"); break;
    case 58: snprintf(out, n, "icmp6"); break;
    default: snprintf(out, n, "proto/%u", rec->proto); break;
    }
}

/* The destination of a record for alert keys: its name, else the
 * responder's address. */
static const char *dest_of(struct judge *j)
{
    if (j->rec->enrich.dest_name[0])
        return j->rec->enrich.dest_name;
    if (!j->dest_ip[0])
        pol_ip_text(j->rec->family, j->rec->dst_ip, j->dest_ip, sizeof(j->dest_ip));
    return j->dest_ip;
}

/* The local side of a record for alert keys: its asset name, else its
 * address. */
static const char *asset_of(struct judge *j)
{
    if (!j->asset_key[0]) {
        const struct flow_record *rec = j->rec;
        const struct rec_enrich *e = &rec->enrich;
        if (e->asset[0])
            egr_copy(j->asset_key, sizeof(j->asset_key), e->asset);
        else
            pol_ip_text(rec->family, e->direction == DIR_INBOUND ? rec->dst_ip : rec->src_ip,
                        j->asset_key, sizeof(j->asset_key));
    }
    return j->asset_key;
}

static int flow_raised(const struct flow_verdict *v, const uint8_t key[20])
{
    for (unsigned i = 0; v->keys && i < v->keys->n; i++)
        if (!memcmp(v->keys->key[i], key, 20))
            return 1;
    return 0;
}

/* Remembers that the flow raised key (the first VERDICT_KEYS_MAX keys are
 * kept for its records; a flow raises at most one alert per kind and
 * intel list, so more is rare). */
static void flow_remember(struct judge *j, const uint8_t key[20], uint64_t now)
{
    struct flow_verdict *v = j->v;
    if (!v->keys && !(v->keys = calloc(1, sizeof(*v->keys))))
        return;
    if (!v->by) {
        v->by = (uint8_t)j->by;
        v->at_us = now;
    }
    if (v->keys->n < VERDICT_KEYS_MAX)
        memcpy(v->keys->key[v->keys->n++], key, 20);
}

static void raise_alert(struct judge *j, unsigned kind, unsigned severity, const char *asset,
                        const char *dest, const char *intel, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* One alert condition met by j->rec: `asset` identifies the local side,
 * `dest` the destination (a name or an indicator), for the key. */
static void raise_alert(struct judge *j, unsigned kind, unsigned severity, const char *asset,
                        const char *dest, const char *intel, const char *fmt, ...)
{
    struct flow_record *rec = j->rec;
    char service[64];
    service_of(rec, service, sizeof(service));
    if (kind == ALERT_EXFIL)
        service[0] = '\0'; /* one exfiltration alert per asset, whatever the service */
    uint8_t key[20];
    pol_alert_key(kind, asset, dest, service, key);
    /* A flow counts once per key, however often it is judged; a volume
     * alert belongs to the asset's window, not to the flow. */
    if (j->v && kind != ALERT_EXFIL && flow_raised(j->v, key))
        return;
    rec->alerted = 1;
    uint64_t now = rec->emit_us ? rec->emit_us : rec->last_us;
    if (j->v && !flow_raised(j->v, key))
        flow_remember(j, key, now);

    struct alert_record *a = j->a;
    memset(a, 0, offsetof(struct alert_record, flow));
    a->kind = (uint8_t)kind;
    a->severity = (uint8_t)severity;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->reason, sizeof(a->reason), fmt, ap);
    va_end(ap);
    snprintf(a->intel_list, sizeof(a->intel_list), "%s", intel ? intel : "");
    snprintf(a->service, sizeof(a->service), "%s", service);
    a->flow = *rec;
    pol_alert_raise(j->st, &j->p->pc, a, key, now, j->fn, j->arg);
}

/* ---- guarded services ------------------------------------------------------ */

/* A flow to a guarded service whose caller has volume limits: counted per
 * packet once its name is settled (verdict.h's guard). */
struct verdict_guard {
    const struct policy_guard *g;   /* the guard it was resolved against */
    size_t svc;
    struct policy_guard_caller c;
    struct policy_guard_volume last; /* of the update that crossed */
    unsigned crossed;
};

/* Guarded services raise through the same dedup and rate limit as every
 * other alert; the service's name rides as the list name. */
static void guard_raise(void *ctx, unsigned kind, unsigned severity, const char *caller,
                        const char *key_dest, const char *service, const char *reason)
{
    raise_alert(ctx, kind, severity, caller, key_dest, service, "%s", reason);
}

/* The guarded-service checks of an egress flow whose name is settled. */
static void judge_guard(struct judge *j, unsigned known)
{
    struct policy_guard *g = j->p->spec->guard;
    struct flow_record *rec = j->rec;
    if (!(known & PJ_PACKET_BYTES) || !j->v) {
        policy_guard_check(g, rec, guard_raise, j); /* a record on its own */
        return;
    }
    policy_guard_check_caller(g, rec, guard_raise, j);
    int si = policy_guard_service_of(g, rec);
    if (si < 0)
        return;
    struct verdict_guard *vg = calloc(1, sizeof(*vg));
    if (!vg)
        return;
    vg->g = g;
    vg->svc = (size_t)si;
    policy_guard_caller_of(g, vg->svc, rec, &vg->c);
    if (!vg->c.max_out && !vg->c.max_in) {
        free(vg);
        return;
    }
    free(j->v->guard);
    j->v->guard = vg;
    /* What the flow moved before its name was settled counts now. */
    uint64_t t = rec->emit_us ? rec->emit_us : rec->last_us;
    unsigned x = policy_guard_volume(g, &vg->c, vg->svc, rec->bytes_toserver, rec->bytes_toclient,
                                     t, &vg->last);
    if (x)
        policy_guard_alert_volume(g, &vg->c, vg->svc, &vg->last, x, guard_raise, j);
}

int policy_guard_bytes(const struct policy *p, struct flow_verdict *v, uint64_t bytes_out,
                       uint64_t bytes_in, uint64_t now_us)
{
    struct verdict_guard *vg = v->guard;
    if (!vg || !p || !p->spec || vg->g != p->spec->guard)
        return 0; /* a reload replaced the guard: its windows start afresh */
    vg->crossed = policy_guard_volume(p->spec->guard, &vg->c, vg->svc, bytes_out, bytes_in, now_us,
                                      &vg->last);
    return vg->crossed != 0;
}

void policy_guard_volume_alert(const struct policy *p, struct policy_state *st,
                               struct flow_record *rec, struct flow_verdict *v,
                               struct alert_record *scratch, policy_alert_fn fn, void *arg)
{
    struct verdict_guard *vg = v->guard;
    if (!vg || !vg->crossed)
        return;
    struct judge j = {.p = p, .st = st, .rec = rec, .v = v, .by = VBY_VOLUME, .a = scratch,
                      .fn = fn, .arg = arg};
    policy_guard_alert_volume(p->spec->guard, &vg->c, vg->svc, &vg->last, vg->crossed,
                              guard_raise, &j);
    vg->crossed = 0;
}

/* ---- judging ------------------------------------------------------------- */

static void intel_hit(void *arg, const struct pol_intel *def, const char *hit)
{
    struct judge *j = arg;
    raise_alert(j, ALERT_INTEL, def->severity, asset_of(j), hit, def->name,
                "matched intel list %s (%s %s)", def->name,
                def->type == INTEL_IP ? "address" : def->type == INTEL_DOMAIN ? "domain"
                : def->type == INTEL_JA3 ? "JA3" : "certificate SHA-1", hit);
}

/* The role's verdict. Returns 1 when it is taken, 0 when it must wait. */
static int judge_role(struct judge *j, int ri, unsigned known)
{
    const struct policy *p = j->p;
    const struct pol_role *role = &p->spec->roles[ri];
    if (role->mode == MODE_MONITOR)
        return 1;
    unsigned unknown = ((known & PJ_NAME) ? 0 : NEED_DOMAIN) | ((known & PJ_NDPI) ? 0 : NEED_NDPI);
    const struct role_index *x = &p->index[ri];
    const struct role_index *bx = role->mode == MODE_BASELINE && ri < (int)p->nbaseline
                                      ? &p->bindex[ri] : NULL;
    if (pol_allowed(x, j->rec) || (bx && pol_allowed(bx, j->rec))) {
        /* Allowed now; final once it rests on nothing still to come (a
         * name from DNS can still give way to the SNI). */
        return !unknown || pol_allowed_known(x, j->rec, unknown) ||
               (bx && pol_allowed_known(bx, j->rec, unknown));
    }
    if (unknown && (pol_could_allow(x, j->rec, unknown) || (bx && pol_could_allow(bx, j->rec, unknown))))
        return 0;
    switch (role->mode) {
    case MODE_LEARN:
        pol_learn_flow(pol_state_learned(j->st), role->name, j->rec);
        break;
    case MODE_DENY:
        raise_alert(j, ALERT_UNEXPECTED, role->severity, asset_of(j), dest_of(j), NULL,
                    "no allow rule of role %s matched", role->name);
        break;
    case MODE_BASELINE:
        raise_alert(j, ALERT_UNEXPECTED, role->severity, asset_of(j), dest_of(j), NULL,
                    "no allow rule of role %s matched, nor its learned baseline", role->name);
        break;
    }
    return 1;
}

static void judge_risks(struct judge *j)
{
    uint64_t risks = j->rec->ndpi.risk & j->p->pc.risk_mask;
    if (!risks)
        return;
    char names[200] = "";
    size_t o = 0;
    for (unsigned b = 0; b < 64 && o < sizeof(names); b++)
        if (risks & ((uint64_t)1 << b)) {
            const char *nm = classify_risk_name(b);
            int w = snprintf(names + o, sizeof(names) - o, "%s%s", o ? ", " : "", nm ? nm : "?");
            if (w > 0)
                o += (size_t)w;
        }
    raise_alert(j, ALERT_RISK, j->p->pc.risk_severity, asset_of(j), dest_of(j), NULL,
                "nDPI risk: %s", names);
}

static void exfil_alert(struct judge *j, uint64_t total)
{
    const struct policy_config *pc = &j->p->pc;
    raise_alert(j, ALERT_EXFIL, pc->exfil_severity, asset_of(j), "", NULL,
                "asset %s sent %" PRIu64 " bytes out within %u s (threshold %" PRIu64 ")",
                j->rec->enrich.asset, total, pc->exfil_window, pc->exfil_bytes);
}

unsigned policy_judge(const struct policy *p, struct policy_state *st, struct flow_record *rec,
                      struct flow_verdict *v, unsigned known, unsigned by,
                      struct alert_record *scratch, policy_alert_fn fn, void *arg)
{
    const struct policy_spec *s = p ? p->spec : NULL;
    if (!s)
        return 0;
    struct judge j = {.p = p, .st = st, .rec = rec, .v = v, .by = by, .a = scratch,
                      .fn = fn, .arg = arg};
    unsigned open = 0;
    int final = (known & (PJ_NAME | PJ_NDPI)) == (PJ_NAME | PJ_NDPI);
    if (s->nintel) {
        pol_intel_check(p, rec, intel_hit, &j);
        if (p->intel_late && !final)
            open |= PJ_OPEN_INTEL;
    }
    const struct rec_enrich *e = &rec->enrich;
    if (e->direction != DIR_EGRESS)
        return open;

    if (!v || !v->role_done) {
        int asset_idx, ri = role_of(s, rec->family, rec->src_ip, &asset_idx);
        if (ri >= 0 && !judge_role(&j, ri, known))
            open |= PJ_OPEN_ROLE;
        else if (v)
            v->role_done = 1;
    }

    if (s->guard && policy_guard_active(s->guard) && (!v || !v->guard_done)) {
        /* Who calls a guarded service is known only with the name. */
        if (known & PJ_NAME) {
            judge_guard(&j, known);
            if (v)
                v->guard_done = 1;
        } else {
            open |= PJ_OPEN_ROLE;
        }
    }

    if (p->pc.risk_mask) {
        /* Risks pile up while nDPI dissects: judged on its final answer (or
         * at the bound, on what it has found by then). */
        if (known & PJ_NDPI)
            judge_risks(&j);
        else
            open |= PJ_OPEN_RISK;
    }

    if (p->pc.exfil_bytes && e->asset[0] && !(known & PJ_PACKET_BYTES)) {
        uint32_t slot = pol_exfil_slot(st, e->asset);
        uint64_t now = rec->emit_us ? rec->emit_us : rec->last_us;
        uint64_t total = pol_exfil_add(st, slot, rec->bytes_toserver, now,
                                       (uint64_t)p->pc.exfil_window * 1000000, p->pc.exfil_bytes);
        if (total)
            exfil_alert(&j, total);
    }
    return open;
}

void policy_evaluate(const struct policy *p, struct policy_state *st, struct flow_record *rec,
                     policy_alert_fn fn, void *arg)
{
    struct alert_record *a = malloc(sizeof(*a));
    if (!a)
        return;
    policy_judge(p, st, rec, NULL, PJ_NAME | PJ_NDPI, VBY_RECORD, a, fn, arg);
    free(a);
}

/* ---- volume per packet --------------------------------------------------- */

uint32_t policy_volume_slot(const struct policy *p, struct policy_state *st,
                            const struct flow_record *rec)
{
    if (!p || !p->pc.exfil_bytes || rec->enrich.direction != DIR_EGRESS || !rec->enrich.asset[0])
        return 0;
    return pol_exfil_slot(st, rec->enrich.asset);
}

int policy_volume_add(const struct policy *p, struct policy_state *st, uint32_t slot,
                      uint64_t bytes, uint64_t now_us, uint64_t *total)
{
    if (!p->pc.exfil_bytes)
        return 0;
    *total = pol_exfil_add(st, slot, bytes, now_us, (uint64_t)p->pc.exfil_window * 1000000,
                           p->pc.exfil_bytes);
    return *total != 0;
}

void policy_volume_alert(const struct policy *p, struct policy_state *st,
                         struct flow_record *rec, struct flow_verdict *v, uint64_t total,
                         struct alert_record *scratch, policy_alert_fn fn, void *arg)
{
    struct judge j = {.p = p, .st = st, .rec = rec, .v = v, .by = VBY_VOLUME, .a = scratch,
                      .fn = fn, .arg = arg};
    exfil_alert(&j, total);
}

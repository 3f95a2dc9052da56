/* verdict.h - what the policy has decided about one flow, kept with the
 * flow while it lives.
 *
 * The flow table stores a struct flow_verdict in every flow entry and hands
 * it to the worker's policy stage (judge.c) on the events that can settle
 * the verdict: the flow's first packet, a destination name seen, the end of
 * classification, and every packet while the stage asks for them (watch).
 * The flow table never reads it (it only frees `keys` and `guard`, plain
 * heap blocks, when the flow ends); the policy stage and the policy engine
 * (policy.c) do. Zero-initialised means "not judged yet".
 *
 * Decision points (docs/policy.md, "When an alert is raised"):
 *   - addresses, ports and protocol alone: at the flow's first packet;
 *   - names and nDPI results: when a destination name is known (TLS/QUIC
 *     SNI, HTTP Host), when classification is final, or at the bound
 *     (alerts.decide_packets packets with payload, or
 *     alerts.decide_seconds after the first packet), whichever comes first;
 *   - a flow still open when its record is written is decided then.
 *
 * Thread safety: a flow's verdict belongs to the worker that owns the flow.
 */
#ifndef EGRESSD_VERDICT_H
#define EGRESSD_VERDICT_H

#include <stdint.h>

/* Where a flow is in its judgement. */
enum verdict_state {
    VST_NEW = 0, /* not judged yet */
    VST_OPEN,    /* judged on what was known; more may still decide it */
    VST_DONE,    /* nothing more can change it (exfiltration bytes aside) */
};

/* What the policy stage wants the flow table to report (flow_verdict.watch). */
enum {
    VW_PACKETS = 1,    /* every packet of the flow */
    VW_NAME = 2,       /* the packet that makes a destination name known */
    VW_CLASSIFIED = 4, /* the packet that ends classification */
};

/* Which event settled the first alert of a flow (flow_verdict.by), as
 * written in records ("verdict.by"). */
enum verdict_stage {
    VBY_NONE = 0,
    VBY_FIRST_PACKET, /* addresses, ports, protocol */
    VBY_NAME,         /* a destination name became known */
    VBY_CLASSIFIED,   /* nDPI's classification became final */
    VBY_BOUND,        /* the decision bound passed with the flow still open */
    VBY_VOLUME,       /* the packet that took a window over its threshold */
    VBY_RECORD,       /* the flow's record, with the flow still open */
    VBY_MAX
};

const char *verdict_stage_name(unsigned by); /* "first_packet", ... */

#define VERDICT_KEYS_MAX 8 /* alert keys remembered per flow */

/* The alert keys a flow raised, in order; allocated with the first. */
struct verdict_keys {
    uint8_t n;
    uint8_t key[VERDICT_KEYS_MAX][20];
};

struct verdict_guard; /* policy.c's */

struct flow_verdict {
    uint8_t state;     /* enum verdict_state */
    uint8_t watch;     /* VW_* */
    uint8_t by;        /* enum verdict_stage of the first alert, VBY_NONE if none */
    uint8_t payload;   /* packets with payload seen while open (saturates) */
    uint8_t role_done; /* the role's verdict (allow rules, learning) is settled */
    uint8_t bounded;   /* the decision bound has passed */
    uint8_t guard_done; /* the guarded-service checks ran */
    uint8_t pad;
    uint32_t exfil;    /* the asset's volume window + 1; 0: not counted */
    uint64_t at_us;    /* packet time of the first alert */
    struct verdict_keys *keys; /* NULL until the flow raises an alert */
    struct verdict_guard *guard; /* a guarded service's caller counted per packet, or NULL */
};

#endif

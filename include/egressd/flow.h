/* flow.h - the bidirectional flow table.
 *
 * Canonical key (VLANs, L4 protocol, address pair, port pair) with a
 * direction bit and a seeded symmetric hash; a preallocated pool with a hard
 * cap; expiry driven only by packet timestamps (TCP close, per-protocol idle
 * timeouts, active timeout with interim records) so a replay is
 * deterministic. Ended flows leave as struct flow_record through the emit
 * callback; nothing outside this module sees struct flow.
 *
 * Thread safety: a flow_table belongs to one worker; no locks.
 */
#ifndef EGRESSD_FLOW_H
#define EGRESSD_FLOW_H

#include <stdint.h>

#include "egressd/cid.h"
#include "egressd/common.h"
#include "egressd/pkt.h"
#include "egressd/record.h"
#include "egressd/verdict.h"

struct classify_ctx;

struct flow_config {
    uint32_t max_flows;          /* hard cap on tracked flows */
    uint32_t hash_seed;          /* seed of the flow hash */
    /* timeouts in seconds */
    uint32_t tcp_new_timeout;    /* TCP without a completed handshake */
    uint32_t tcp_est_timeout;    /* established TCP */
    uint32_t tcp_closed_timeout; /* linger after FIN both ways / RST */
    uint32_t udp_timeout;
    uint32_t icmp_timeout;
    uint32_t other_timeout;
    uint32_t active_timeout;     /* interim record every N s of a live flow; 0 = off */
    struct cid_settings cid;
};

void flow_config_defaults(struct flow_config *c);

struct flow_stats {
    uint64_t packets;            /* IP packets handed to the table */
    uint64_t bytes;
    uint64_t flows_created;
    uint64_t records[END_REASON_MAX]; /* records emitted by reason */
    uint64_t active;             /* flows tracked now */
    uint64_t active_max;         /* high-water mark */
    uint64_t frag_orphans;       /* non-first fragments with no known first */
    uint64_t classify_oom;       /* flows left unclassified: no nDPI state */
};

/* The record is the table's scratch: valid only during the call; the callee
 * may enrich it in place before passing it on. */
typedef void (*flow_emit_fn)(void *arg, struct flow_record *rec);

struct flow_table;

/* Creates a table. cls may be NULL (no classification). emit is called
 * synchronously for every record; the record is only valid during the call. */
int flow_table_new(const struct flow_config *cfg, struct classify_ctx *cls,
                   flow_emit_fn emit, void *emit_arg, struct flow_table **out,
                   struct egr_err *err);
void flow_table_free(struct flow_table *ft);

/* Accounts one decoded packet (expires due flows first, by m->ts_us). */
void flow_table_packet(struct flow_table *ft, const struct pkt_meta *m);

/* Expires flows due at now_us (packet time). */
void flow_table_expire(struct flow_table *ft, uint64_t now_us);

/* What an IP packet at ts_us does to the table's clock before it is
 * accounted (flow_table_packet() starts with it): flows due by then expire,
 * at most once per second of packet time. A replay worker calls it for the
 * packets of flows another worker owns, so its timeouts fire exactly where
 * a single worker's would. */
void flow_table_advance(struct flow_table *ft, uint64_t ts_us);

/* Emits every tracked flow with `reason` (END_SHUTDOWN at end of input). */
void flow_table_flush(struct flow_table *ft, enum flow_end_reason reason);

const struct flow_stats *flow_table_stats(const struct flow_table *ft);

/* ---- the policy stage's view of a flow ---------------------------------

 * A worker's policy stage (judge.c) follows a flow through hooks; it sees
 * the flow only as an opaque struct flow, valid during the call, and keeps
 * its own state in the flow's struct flow_verdict. */
struct flow;

/* Events of one packet (flow_hooks.event). */
enum {
    FE_NEW = 1,        /* the flow's first packet */
    FE_NAME = 2,       /* a destination name became known (asked with VW_NAME) */
    FE_CLASSIFIED = 4, /* classification ended with this packet */
};

struct flow_hooks {
    /* After a packet has been accounted and classified: every flow's first
     * packet, and later packets as v->watch asks (VW_*). */
    void (*event)(void *arg, struct flow *f, struct flow_verdict *v, const struct pkt_meta *m,
                  int from_initiator, unsigned events);
    /* Before a record leaves through the emit callback; may mark it up. */
    void (*record)(void *arg, struct flow *f, struct flow_verdict *v, struct flow_record *rec);
};

/* Sets the hooks (h must outlive the table). The table frees v->keys when a
 * flow ends. */
void flow_table_set_hooks(struct flow_table *ft, const struct flow_hooks *h, void *arg);

/* The record of f as it stands, counters over the whole flow, reason
 * END_ACTIVE; with_ndpi adds classification (a snapshot while detection
 * runs). For hooks. Not const: the flow keeps the Community ID hash the
 * first record of it computes. */
void flow_table_snapshot(struct flow_table *ft, struct flow *f, int with_ndpi,
                         struct flow_record *rec);
uint64_t flow_table_flow_id(const struct flow *f);
uint64_t flow_table_first_us(const struct flow *f);
struct flow_verdict *flow_table_verdict(struct flow *f);
/* 1 once classification has ended for f (or never ran). */
int flow_table_classified(const struct flow *f);

/* Bytes of one tracked flow entry (excluding classification strings). */
size_t flow_table_entry_size(void);

#endif

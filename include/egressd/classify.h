/* classify.h - protocol classification with nDPI. classify.c is the only
 * file that includes nDPI headers.
 *
 * One classify_ctx (one nDPI detection module) per worker thread; it is not
 * thread safe. A flow holds a classify_flow (the nDPI per-flow state) only
 * while detection or useful extra dissection runs; classify_flow_finish()
 * copies what the record needs into a compact classify_result and frees the
 * heavy state, so a long flow costs only its compact result.
 */
#ifndef EGRESSD_CLASSIFY_H
#define EGRESSD_CLASSIFY_H

#include <stdint.h>

#include "egressd/common.h"
#include "egressd/pkt.h"
#include "egressd/record.h"

struct classify_config {
    /* Give up after this many packets of a flow without a final answer
     * (ndpiReader's limits: 80 TCP, 24 UDP, and 24 for other protocols). */
    uint32_t max_pkts_tcp;
    uint32_t max_pkts_udp;
};

void classify_config_defaults(struct classify_config *c);

struct classify_ctx;
struct classify_flow;

/* The compact result a flow keeps. meta is a packed, exactly-sized, owned
 * buffer of the string fields (NULL when there are none); free it with
 * classify_result_clear(). Zero-initialised means "nothing known". */
struct classify_result {
    uint16_t master_id, app_id;
    uint16_t category;
    uint8_t confidence;
    uint8_t done;          /* detection finished (detected or given up) */
    uint64_t risk;
    void *meta;
};

/* Creates a detection module with all protocols enabled. */
int classify_new(const struct classify_config *cfg, struct classify_ctx **out,
                 struct egr_err *err);
void classify_free(struct classify_ctx *ctx);

/* Allocates per-flow nDPI state (from a free list: no allocation once warm).
 * Returns NULL on allocation failure. */
struct classify_flow *classify_flow_new(struct classify_ctx *ctx);

/* Feeds one packet of the flow (m->l3 .. m->l3_len). from_initiator is 1 for
 * initiator->responder packets. Returns 1 once nothing more is to be learnt
 * (detection complete and no extra dissection possible, or the packet budget
 * is spent): the caller should then call classify_flow_finish(). */
int classify_packet(struct classify_ctx *ctx, struct classify_flow *cf,
                    const struct pkt_meta *m, int from_initiator);

/* Ends detection (ndpi_detection_giveup when nothing was detected), replaces
 * *res with the results, and returns cf to the free list. cf is invalid
 * afterwards. */
void classify_flow_finish(struct classify_ctx *ctx, struct classify_flow *cf,
                          struct classify_result *res);

/* The responder's name nDPI has seen so far (TLS/QUIC SNI, HTTP Host), or
 * NULL. Cheap: for the packets of flows whose verdict waits for a name. */
const char *classify_flow_dest_name(const struct classify_ctx *ctx,
                                    const struct classify_flow *cf);

/* Snapshot of an unfinished flow (for interim records) into *res, replacing
 * its previous contents; cf stays valid and detection goes on. */
void classify_flow_peek(struct classify_ctx *ctx, const struct classify_flow *cf,
                        struct classify_result *res);

/* Frees res->meta and zeroes *res. */
void classify_result_clear(struct classify_result *res);

/* Fills the record's ndpi section (names and strings) from res. */
void classify_fill_record(struct classify_ctx *ctx,
                          const struct classify_result *res, struct rec_ndpi *out);

/* Name of nDPI risk bit `bit` ("TLS Self-signed Certificate"...), or NULL. */
const char *classify_risk_name(unsigned bit);

/* 1 if `name` is a protocol nDPI can report (case-insensitive, as policy
 * rules compare it: "TLS", "Google"), or a MASTER.APP pair of two such
 * names ("TLS.YouTube"); 0 if not; EGR_ENOMEM if the list could not be
 * built. The list is built from nDPI once, on first use, and shared by
 * every thread. */
int classify_proto_known(const char *name);

/* nDPI library revision string. */
const char *classify_ndpi_version(void);

/* Bytes of one nDPI per-flow state (for memory accounting in benchmarks). */
uint32_t classify_flow_state_size(void);

#endif

/* record.c - names of the flow record's enums (see include/egressd/record.h).
 * The names are part of the output format (docs/eve-format.md): they appear
 * as flow.reason, flow.state and flow.initiator and as stats keys, so they
 * never change once released.
 */
#include "egressd/record.h"

#include "egressd/common.h"

static const char *const reason_names[END_REASON_MAX] = {
    [END_TIMEOUT] = "timeout",
    [END_CLOSED] = "closed",
    [END_ACTIVE] = "active_timeout",
    [END_EVICTED] = "evicted",
    [END_SHUTDOWN] = "shutdown",
};

static const char *const state_names[] = {
    [FST_NEW] = "new",
    [FST_ESTABLISHED] = "established",
    [FST_CLOSED] = "closed",
};

static const char *const init_names[] = {
    [INIT_SYN] = "syn",
    [INIT_SYNACK] = "synack",
    [INIT_FIRST] = "first_packet",
    [INIT_PORT] = "port_heuristic",
};

/* Out-of-range values come only from a corrupted record; "unknown" keeps
 * the output valid and visible rather than crashing a sink. */
const char *flow_end_reason_name(unsigned r)
{
    return r < EGR_ARRAY_LEN(reason_names) ? reason_names[r] : "unknown";
}

const char *flow_state_name(unsigned s)
{
    return s < EGR_ARRAY_LEN(state_names) ? state_names[s] : "unknown";
}

const char *flow_init_how_name(unsigned h)
{
    return h < EGR_ARRAY_LEN(init_names) ? init_names[h] : "unknown";
}

static const char *const name_src_names[] = {
    [NAME_NONE] = "none",
    [NAME_SNI] = "sni",
    [NAME_HTTP] = "http",
    [NAME_DNS] = "dns",
};

static const char *const direction_names[] = {
    [DIR_UNKNOWN] = "unknown",
    [DIR_EGRESS] = "egress",
    [DIR_INBOUND] = "inbound",
    [DIR_INTERNAL] = "internal",
    [DIR_EXTERNAL] = "external",
};

const char *rec_name_src_name(unsigned s)
{
    return s < EGR_ARRAY_LEN(name_src_names) ? name_src_names[s] : "unknown";
}

const char *rec_direction_name(unsigned d)
{
    return d < EGR_ARRAY_LEN(direction_names) ? direction_names[d] : "unknown";
}

static const char *const stage_names[] = {
    [VBY_NONE] = "none",
    [VBY_FIRST_PACKET] = "first_packet",
    [VBY_NAME] = "name",
    [VBY_CLASSIFIED] = "classified",
    [VBY_BOUND] = "bound",
    [VBY_VOLUME] = "volume",
    [VBY_RECORD] = "record",
};

const char *verdict_stage_name(unsigned by)
{
    return by < EGR_ARRAY_LEN(stage_names) ? stage_names[by] : "unknown";
}

/* alert.c - names of the alert enums (see include/egressd/alert.h). They are
 * part of the output format (alert.category, alert.severity_name). */
#include "egressd/alert.h"

#include "egressd/common.h"

static const char *const kind_names[ALERT_KIND_MAX] = {
    [ALERT_UNEXPECTED] = "unexpected-destination",
    [ALERT_INTEL] = "intel-match",
    [ALERT_EXFIL] = "exfiltration",
    [ALERT_RISK] = "ndpi-risk",
    [ALERT_GUARD_CALLER] = "guarded-service-caller",
    [ALERT_GUARD_NEW] = "guarded-service-new-caller",
    [ALERT_GUARD_VOLUME] = "guarded-service-volume",
};

const char *alert_kind_name(unsigned k)
{
    return k < EGR_ARRAY_LEN(kind_names) ? kind_names[k] : "unknown";
}

int alert_kind_is_guard(unsigned k)
{
    return k == ALERT_GUARD_CALLER || k == ALERT_GUARD_NEW || k == ALERT_GUARD_VOLUME;
}

const char *alert_list_field(unsigned k)
{
    return alert_kind_is_guard(k) ? "guarded_service" : "intel_list";
}

const char *alert_severity_name(unsigned s)
{
    switch (s) {
    case SEV_HIGH:
        return "high";
    case SEV_MEDIUM:
        return "medium";
    case SEV_LOW:
        return "low";
    default:
        return "unknown";
    }
}

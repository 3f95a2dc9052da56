/* outputs.c - fan-out of records to the configured sinks (see outputs.h). */
#include "egressd/outputs.h"

#include <stdio.h>
#include <string.h>

static void note_failure(struct outputs *o, struct sink *s)
{
    if (o->failed)
        return;
    o->failed = 1;
    snprintf(o->err.msg, sizeof(o->err.msg), "%s", s->ops->error(s->self));
}

int outputs_open(struct outputs *o, const struct egr_config *cfg, const char *json_path,
                 struct egr_err *err)
{
    (void)cfg;
    memset(o, 0, sizeof(*o));
    int rc = sink_json_open(json_path, &o->sinks[o->n], err);
    if (rc != EGR_OK)
        return rc;
    o->n++;
    return EGR_OK;
}

void outputs_flow(struct outputs *o, const struct flow_record *rec)
{
    for (unsigned i = 0; i < o->n; i++) {
        struct sink *s = &o->sinks[i];
        if (s->ops->flow(s->self, rec) != EGR_OK)
            note_failure(o, s);
    }
}

void outputs_alert(struct outputs *o, const struct alert_record *a)
{
    for (unsigned i = 0; i < o->n; i++) {
        struct sink *s = &o->sinks[i];
        if (s->ops->alert(s->self, a) != EGR_OK)
            note_failure(o, s);
    }
}

void outputs_poll(struct outputs *o)
{
    (void)o;
}

int outputs_finish(struct outputs *o, const struct run_stats *st)
{
    for (unsigned i = 0; i < o->n; i++) {
        struct sink *s = &o->sinks[i];
        if (s->ops->stats(s->self, st) != EGR_OK || s->ops->flush(s->self) != EGR_OK)
            note_failure(o, s);
        s->ops->close(s->self);
    }
    o->n = 0;
    return o->failed ? EGR_EIO : EGR_OK;
}

const char *outputs_error(const struct outputs *o)
{
    return o->failed ? o->err.msg : "";
}

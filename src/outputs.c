/* outputs.c - fan-out of records to the configured sinks (see outputs.h).
 *
 * Sinks: the JSON lines file always, Redis when redis.url (or --redis) is
 * set. Redis delivers asynchronously: outputs_poll() lets it make progress
 * between packets, and outputs_finish() first waits for it to deliver (up
 * to redis.drain_timeout) so that the stats event every sink then writes
 * carries its final counters.
 */
#include "egressd/outputs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egressd/sink-redis.h"

static void note_failure(struct outputs *o, struct sink *s)
{
    pthread_mutex_lock(&o->mu);
    if (!o->failed) {
        snprintf(o->err.msg, sizeof(o->err.msg), "%s", s->ops->error(s->self));
        atomic_store(&o->failed, 1);
    }
    pthread_mutex_unlock(&o->mu);
}

/* The Redis sink's state changes (connected, lost, refusing writes, ...):
 * one line each, rate-limited by the sink. */
static void log_stderr(void *arg, const char *line)
{
    (void)arg;
    fprintf(stderr, "egressd: %s\n", line);
}

int outputs_open(struct outputs *o, const struct egr_config *cfg, const char *json_path,
                 const char *source, struct egr_err *err)
{
    memset(o, 0, sizeof(*o));
    pthread_mutex_init(&o->mu, NULL);
    /* Redis first: a bad URL or spool directory must not truncate the JSON
     * file of an earlier run. */
    struct sink redis = {NULL, NULL};
    if (cfg && cfg->redis.url[0]) {
        int rc = sink_redis_open(&cfg->redis, source, log_stderr, NULL, &redis, err);
        if (rc != EGR_OK)
            return rc;
    }
    int rc = sink_json_open(json_path, cfg && cfg->json_append, &o->sinks[o->n], err);
    if (rc != EGR_OK) {
        if (redis.ops)
            redis.ops->close(redis.self);
        return rc;
    }
    o->n++;
    if (redis.ops)
        o->sinks[o->n++] = redis;
    return EGR_OK;
}

int outputs_writer_open(struct outputs *o, struct outputs_writer **out, struct egr_err *err)
{
    struct outputs_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return egr_fail(err, EGR_ENOMEM, "outputs: out of memory");
    w->o = o;
    for (unsigned i = 0; i < o->n; i++) {
        struct sink *s = &o->sinks[i];
        if (!(w->w[i] = s->ops->writer_new(s->self))) {
            w->n = i;
            outputs_writer_close(w);
            return egr_fail(err, EGR_ENOMEM, "%s: out of memory for a writer", s->ops->name);
        }
    }
    w->n = o->n;
    *out = w;
    return EGR_OK;
}

void outputs_write_flow(struct outputs_writer *w, const struct flow_record *rec)
{
    for (unsigned i = 0; i < w->n; i++) {
        struct sink *s = &w->o->sinks[i];
        if (s->ops->write_flow(w->w[i], rec) != EGR_OK)
            note_failure(w->o, s);
    }
    /* Every sink's writer hands its batch over at the same records, so
     * what one output has after a crash the other has too. */
    if (++w->since_flush >= OUTPUTS_BATCH)
        outputs_writer_flush(w, 0);
}

void outputs_write_alert(struct outputs_writer *w, const struct alert_record *a)
{
    for (unsigned i = 0; i < w->n; i++) {
        struct sink *s = &w->o->sinks[i];
        if (s->ops->write_alert(w->w[i], a) != EGR_OK)
            note_failure(w->o, s);
    }
}

/* The last sink first: Redis (with a named spool, its records are on disk
 * when its writer returns) before the JSON file, so a record in the file
 * is in the spool too, whenever the process dies. */
void outputs_writer_flush(struct outputs_writer *w, int urgent)
{
    w->since_flush = 0;
    for (unsigned k = w->n; k-- > 0;) {
        unsigned i = k;
        struct sink *s = &w->o->sinks[i];
        if (s->ops->writer_flush(w->w[i], urgent) != EGR_OK)
            note_failure(w->o, s);
    }
}

void outputs_writer_close(struct outputs_writer *w)
{
    if (!w)
        return;
    outputs_writer_flush(w, 0);
    for (unsigned i = 0; i < w->n; i++)
        w->o->sinks[i].ops->writer_free(w->w[i]);
    free(w);
}

void outputs_stats(struct outputs *o, const struct run_stats *st)
{
    struct run_stats now = *st;
    for (unsigned i = 0; i < o->n; i++) {
        void *r = sink_redis_self(&o->sinks[i]);
        if (r)
            sink_redis_counters(r, &now.redis);
    }
    for (unsigned i = 0; i < o->n; i++) {
        struct sink *s = &o->sinks[i];
        if (s->ops->stats(s->self, &now) != EGR_OK || s->ops->flush(s->self) != EGR_OK)
            note_failure(o, s);
    }
}

void outputs_flush(struct outputs *o)
{
    for (unsigned i = 0; i < o->n; i++) {
        struct sink *s = &o->sinks[i];
        if (s->ops->flush(s->self) != EGR_OK)
            note_failure(o, s);
    }
}

void outputs_redis_counters(struct outputs *o, struct redis_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < o->n; i++) {
        void *r = sink_redis_self(&o->sinks[i]);
        if (r)
            sink_redis_counters(r, out);
    }
}

void outputs_progress(struct outputs *o, const struct run_stats *st)
{
    for (unsigned i = 0; i < o->n; i++) {
        void *r = sink_redis_self(&o->sinks[i]);
        if (r)
            sink_redis_progress(r, st);
    }
}

void outputs_poll(struct outputs *o)
{
    for (unsigned i = 0; i < o->n; i++) {
        void *r = sink_redis_self(&o->sinks[i]);
        if (r)
            sink_redis_poll(r);
    }
}

int outputs_finish(struct outputs *o, const struct run_stats *st)
{
    /* Delivery first, so the counters in the stats event are final. */
    struct run_stats fin = *st;
    for (unsigned i = 0; i < o->n; i++) {
        struct sink *s = &o->sinks[i];
        void *r = sink_redis_self(s);
        if (!r)
            continue;
        if (sink_redis_drain(r) != EGR_OK)
            note_failure(o, s);
        sink_redis_counters(r, &fin.redis);
    }
    for (unsigned i = 0; i < o->n; i++) {
        struct sink *s = &o->sinks[i];
        if (s->ops->stats(s->self, &fin) != EGR_OK || s->ops->flush(s->self) != EGR_OK)
            note_failure(o, s);
        s->ops->close(s->self);
    }
    o->n = 0;
    return atomic_load(&o->failed) ? EGR_EIO : EGR_OK;
}

int outputs_reopen(struct outputs *o, struct egr_err *err)
{
    int rc = EGR_OK;
    for (unsigned i = 0; i < o->n; i++) {
        struct sink *s = &o->sinks[i];
        if (s->ops->reopen && s->ops->reopen(s->self, err) != EGR_OK)
            rc = EGR_EIO;
    }
    return rc;
}

const char *outputs_error(const struct outputs *o)
{
    return atomic_load(&o->failed) ? o->err.msg : "";
}

int outputs_failed(const struct outputs *o)
{
    return atomic_load(&o->failed);
}

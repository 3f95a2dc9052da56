/* sensor.c - the I/O side of the sensor (see sensor.h): policy, alerts and
 * the sinks, fed by any number of workers.
 *
 * One mutex guards the sinks and the alert state. It is taken once per
 * record, and records are rare next to packets (a few per flow), so workers
 * never contend on the packet path.
 */
#include "egressd/sensor.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egressd/outputs.h"

struct sensor {
    pthread_mutex_t lock;
    struct outputs out; /* guarded by lock */
    uint64_t alerts;    /* alert events written; guarded by lock */
};

int sensor_open(const struct egr_config *cfg, const char *json_path, const char *source,
                struct sensor **out, struct egr_err *err)
{
    struct sensor *s = calloc(1, sizeof(*s));
    if (!s)
        return egr_fail(err, EGR_ENOMEM, "out of memory");
    int rc = outputs_open(&s->out, cfg, json_path, source, err);
    if (rc != EGR_OK) {
        free(s);
        return rc;
    }
    pthread_mutex_init(&s->lock, NULL);
    *out = s;
    return EGR_OK;
}

void sensor_annotate(void *arg, struct flow_record *rec)
{
    (void)arg;
    (void)rec;
}

void sensor_emit(void *arg, struct flow_record *rec)
{
    struct sensor *s = arg;
    pthread_mutex_lock(&s->lock);
    outputs_flow(&s->out, rec);
    pthread_mutex_unlock(&s->lock);
}

void sensor_poll(struct sensor *s)
{
    pthread_mutex_lock(&s->lock);
    outputs_poll(&s->out);
    pthread_mutex_unlock(&s->lock);
}

int sensor_reload(struct sensor *s, const struct egr_config *cfg, struct egr_err *err)
{
    (void)s;
    (void)cfg;
    (void)err;
    return EGR_OK;
}

void sensor_stats(struct sensor *s, struct run_stats *st)
{
    pthread_mutex_lock(&s->lock);
    st->alerts += s->alerts;
    pthread_mutex_unlock(&s->lock);
}

void sensor_write_stats(struct sensor *s, const struct run_stats *st)
{
    pthread_mutex_lock(&s->lock);
    outputs_stats(&s->out, st);
    pthread_mutex_unlock(&s->lock);
}

int sensor_failed(struct sensor *s)
{
    pthread_mutex_lock(&s->lock);
    int failed = s->out.failed;
    pthread_mutex_unlock(&s->lock);
    return failed;
}

int sensor_finish(struct sensor *s, struct run_stats *st, struct egr_err *err)
{
    sensor_stats(s, st);
    int rc = outputs_finish(&s->out, st);
    if (rc != EGR_OK)
        egr_fail(err, rc, "%s", outputs_error(&s->out));
    pthread_mutex_destroy(&s->lock);
    free(s);
    return rc;
}

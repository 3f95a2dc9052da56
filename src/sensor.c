/* sensor.c - the I/O side of the sensor (see sensor.h): policy, alerts and
 * the sinks, fed by any number of workers.
 *
 * Locks: `lock` (a mutex) guards the sinks and the policy state and is
 * taken once per record; records are rare next to packets (a few per flow),
 * so workers never contend on the packet path. `policy_lock` (a rwlock)
 * guards the policy pointer: workers annotate under the read side, a reload
 * swaps the pointer under the write side. The policy itself is never
 * written after it is built.
 */
#include "egressd/sensor.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "egressd/outputs.h"
#include "egressd/policy.h"

struct sensor {
    pthread_mutex_t lock;
    pthread_rwlock_t policy_lock;
    struct policy *policy;     /* policy_lock */
    struct policy_state *pstate; /* lock */
    struct outputs out;        /* lock */
    uint64_t last_us;          /* packet time of the latest record; lock */
    time_t next_save, next_intel_check, next_flush; /* control thread */
    struct egr_err note;       /* last background failure, for the log */
};

static time_t now_s(void)
{
    return (time_t)(egr_mono_us() / 1000000u);
}

static void schedule(struct sensor *s)
{
    const struct policy_config *pc = policy_config_of(s->policy);
    time_t now = now_s();
    s->next_save = now + pc->save_interval;
    s->next_intel_check = pc->intel_check ? now + pc->intel_check : 0;
}

int sensor_open(const struct egr_config *cfg, const char *json_path, const char *source,
                struct sensor **out, struct egr_err *err)
{
    struct sensor *s = calloc(1, sizeof(*s));
    if (!s)
        return egr_fail(err, EGR_ENOMEM, "out of memory");
    int rc = policy_new(&cfg->policy, &s->policy, err);
    if (rc == EGR_OK && !(s->pstate = policy_state_new()))
        rc = egr_fail(err, EGR_ENOMEM, "out of memory");
    if (rc == EGR_OK)
        rc = outputs_open(&s->out, cfg, json_path, source, err);
    if (rc != EGR_OK) {
        policy_state_free(s->pstate);
        policy_free(s->policy);
        free(s);
        return rc;
    }
    policy_state_seed(s->policy, s->pstate);
    pthread_mutex_init(&s->lock, NULL);
    pthread_rwlock_init(&s->policy_lock, NULL);
    schedule(s);
    *out = s;
    return EGR_OK;
}

void sensor_annotate(void *arg, struct flow_record *rec)
{
    struct sensor *s = arg;
    pthread_rwlock_rdlock(&s->policy_lock);
    policy_annotate(s->policy, rec);
    pthread_rwlock_unlock(&s->policy_lock);
}

static void emit_alert(void *arg, const struct alert_record *a)
{
    struct sensor *s = arg;
    outputs_alert(&s->out, a);
}

void sensor_emit(void *arg, struct flow_record *rec)
{
    struct sensor *s = arg;
    pthread_rwlock_rdlock(&s->policy_lock);
    pthread_mutex_lock(&s->lock);
    /* Alerts first, as Suricata writes them: the flow record that follows
     * says alerted=true. */
    policy_evaluate(s->policy, s->pstate, rec, emit_alert, s);
    if (rec->emit_us > s->last_us)
        s->last_us = rec->emit_us;
    outputs_flow(&s->out, rec);
    pthread_mutex_unlock(&s->lock);
    pthread_rwlock_unlock(&s->policy_lock);
}

/* Builds a policy from cfg and swaps it in; the old one is freed once no
 * worker can be reading it. */
static int swap_policy(struct sensor *s, const struct policy_config *pc, struct egr_err *err)
{
    struct policy *next;
    int rc = policy_new(pc, &next, err);
    if (rc != EGR_OK)
        return rc;
    pthread_rwlock_wrlock(&s->policy_lock);
    struct policy *old = s->policy;
    s->policy = next;
    pthread_mutex_lock(&s->lock);
    policy_state_seed(next, s->pstate);
    pthread_mutex_unlock(&s->lock);
    pthread_rwlock_unlock(&s->policy_lock);
    policy_free(old);
    schedule(s);
    return EGR_OK;
}

int sensor_reload(struct sensor *s, const struct egr_config *cfg, struct egr_err *err)
{
    return swap_policy(s, &cfg->policy, err);
}

static void save_baseline(struct sensor *s)
{
    struct egr_err e;
    pthread_mutex_lock(&s->lock);
    int rc = policy_save_baseline(s->policy, s->pstate, &e);
    pthread_mutex_unlock(&s->lock);
    if (rc != EGR_OK)
        fprintf(stderr, "egressd: baseline not saved: %s\n", e.msg);
}

int sensor_reopen(struct sensor *s, struct egr_err *err)
{
    pthread_mutex_lock(&s->lock);
    int rc = outputs_reopen(&s->out, err);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void sensor_progress(struct sensor *s, const struct run_stats *st)
{
    pthread_mutex_lock(&s->lock);
    outputs_progress(&s->out, st);
    pthread_mutex_unlock(&s->lock);
}

void sensor_poll(struct sensor *s)
{
    /* Timers run on the wall clock: a quiet sensor still saves what it
     * learned and picks up new intel. Only this thread swaps the policy,
     * so reading the pointer here needs no lock. */
    time_t now = now_s();
    pthread_mutex_lock(&s->lock);
    outputs_poll(&s->out);
    /* Once a second the JSON lines reach the file: a reader (tail -f, a SIEM
     * shipper) on a quiet link is never more than that behind, and a buffer
     * is not written per record. */
    if (now >= s->next_flush) {
        outputs_flush(&s->out);
        s->next_flush = now + 1;
    }
    pthread_mutex_unlock(&s->lock);

    if (policy_learning(s->policy) && now >= s->next_save) {
        save_baseline(s);
        s->next_save = now + policy_config_of(s->policy)->save_interval;
    }
    if (s->next_intel_check && now >= s->next_intel_check) {
        s->next_intel_check = now + policy_config_of(s->policy)->intel_check;
        if (policy_intel_changed(s->policy)) {
            struct egr_err e;
            /* A copy: swap_policy frees the policy that holds the config. */
            struct policy_config pc = *policy_config_of(s->policy);
            if (swap_policy(s, &pc, &e) == EGR_OK)
                fprintf(stderr, "egressd: intel lists reloaded\n");
            else if (strcmp(e.msg, s->note.msg)) {
                /* One line per distinct failure, not one per check. */
                fprintf(stderr, "egressd: intel lists not reloaded, the old ones stay: %s\n",
                        e.msg);
                s->note = e;
            }
        }
    }
}

void sensor_stats(struct sensor *s, struct run_stats *st)
{
    struct policy_stats ps;
    pthread_mutex_lock(&s->lock);
    policy_state_stats(s->pstate, &ps);
    outputs_redis_counters(&s->out, &st->redis);
    pthread_mutex_unlock(&s->lock);
    st->alerts += ps.alerts;
    st->alerts_suppressed += ps.suppressed;
    st->alerts_rate_limited += ps.rate_limited;
    st->learned += ps.learned;
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
    pthread_mutex_lock(&s->lock);
    policy_flush(s->policy, s->pstate, s->last_us, emit_alert, s);
    pthread_mutex_unlock(&s->lock);
    if (policy_learning(s->policy))
        save_baseline(s);
    sensor_stats(s, st);
    int rc = outputs_finish(&s->out, st);
    if (rc != EGR_OK)
        egr_fail(err, rc, "%s", outputs_error(&s->out));
    policy_state_free(s->pstate);
    policy_free(s->policy);
    pthread_rwlock_destroy(&s->policy_lock);
    pthread_mutex_destroy(&s->lock);
    free(s);
    return rc;
}

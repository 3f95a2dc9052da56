/* sensor.c - what every worker shares (see sensor.h): the policy in force,
 * the alert state and the sinks.
 *
 * The policy is read-mostly, so it is published RCU-style: `policy` is the
 * sensor's own reference to the one in force and `gen` counts swaps. A port
 * checks `gen` (one relaxed atomic load) when it is asked for the policy
 * and, only when it moved, takes a reference to the new one under pol_mu
 * and drops its old one; the last reference frees a policy. So a reload
 * never waits for the workers and a worker never waits for anyone on its
 * record path. The alert state shards its own locks (policy-alerts.c);
 * records and alerts go out through each port's own writers.
 *
 * A SIGHUP reload is parsed and built on a thread of its own (the reload
 * thread, started with the first one): a large or hostile configuration
 * file takes its time there while the packets go on. So are the intel
 * lists when the timer finds them changed. The finished policy
 * waits in `rl_ready`; the control thread swaps it in at its next
 * sensor_reload_poll() (a relaxed atomic load when there is nothing), and
 * hands the replaced policy back to the reload thread to drop, so freeing
 * big intel lists does not happen between packets either.
 */
#include "egressd/sensor.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "egressd/config.h"
#include "egressd/outputs.h"

#define FLUSH_US 100000u /* a port hands its buffers over at least this often */

struct sensor {
    pthread_mutex_t pol_mu;      /* guards `policy` against a swap while a port takes it */
    struct policy *policy;       /* the one in force (the sensor's reference) */
    atomic_uint gen;             /* bumped by every swap */
    struct policy_state *pstate; /* shared; locks inside */
    struct outputs out;
    struct outputs_writer *ctl;  /* the control thread's writer */
    struct alert_record scratch; /* control thread */
    _Atomic uint64_t last_us;    /* packet time of the latest record of any closed port */
    time_t next_save, next_intel_check, next_flush; /* control thread */
    struct egr_err note;         /* last background failure, for the log */
    /* the reload thread */
    pthread_t rl_thread;
    int rl_started;                  /* control thread */
    pthread_mutex_t rl_mu;           /* guards the five below */
    pthread_cond_t rl_cv;
    char rl_path[4096];
    int rl_want, rl_quit;
    struct policy *rl_old;           /* replaced, for the reload thread to drop */
    struct policy *rl_intel;         /* a reference: rebuild its configuration (intel changed) */
    _Atomic(struct policy *) rl_ready; /* built, for the control thread to swap in */
};

struct sensor_port {
    struct sensor *s;
    struct policy *policy;       /* this port's reference */
    unsigned gen;
    struct outputs_writer *w;
    uint64_t flushed_us;         /* monotonic */
    uint64_t last_us;            /* packet time of its latest record */
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
    /* An intel list or baseline that cannot be read is the configuration's
     * fault (--check-config says so too): not a run-time failure. */
    if (rc != EGR_OK && rc != EGR_ENOMEM)
        rc = EGR_EINVAL;
    if (rc == EGR_OK && !(s->pstate = policy_state_new()))
        rc = egr_fail(err, EGR_ENOMEM, "out of memory");
    int outputs_open_ok = 0;
    if (rc == EGR_OK && (rc = outputs_open(&s->out, cfg, json_path, source, err)) == EGR_OK)
        outputs_open_ok = 1;
    if (rc == EGR_OK)
        rc = outputs_writer_open(&s->out, &s->ctl, err);
    if (rc != EGR_OK) {
        if (outputs_open_ok) {
            struct run_stats none;
            memset(&none, 0, sizeof(none));
            outputs_finish(&s->out, &none);
        }
        policy_state_free(s->pstate);
        policy_free(s->policy);
        free(s);
        return rc;
    }
    policy_state_seed(s->policy, s->pstate);
    pthread_mutex_init(&s->pol_mu, NULL);
    pthread_mutex_init(&s->rl_mu, NULL);
    pthread_cond_init(&s->rl_cv, NULL);
    atomic_init(&s->rl_ready, NULL);
    schedule(s);
    *out = s;
    return EGR_OK;
}

/* ---- ports ---------------------------------------------------------------- */

int sensor_port_open(struct sensor *s, struct sensor_port **out, struct egr_err *err)
{
    struct sensor_port *pt = calloc(1, sizeof(*pt));
    if (!pt)
        return egr_fail(err, EGR_ENOMEM, "out of memory");
    int rc = outputs_writer_open(&s->out, &pt->w, err);
    if (rc != EGR_OK) {
        free(pt);
        return rc;
    }
    pt->s = s;
    pthread_mutex_lock(&s->pol_mu);
    pt->policy = policy_ref(s->policy);
    pt->gen = atomic_load(&s->gen);
    pthread_mutex_unlock(&s->pol_mu);
    pt->flushed_us = egr_mono_us();
    *out = pt;
    return EGR_OK;
}

void sensor_port_close(struct sensor_port *pt)
{
    if (!pt)
        return;
    outputs_writer_close(pt->w);
    uint64_t seen = atomic_load(&pt->s->last_us);
    while (pt->last_us > seen && !atomic_compare_exchange_weak(&pt->s->last_us, &seen, pt->last_us))
        ;
    policy_free(pt->policy);
    free(pt);
}

const struct policy *sensor_port_policy(struct sensor_port *pt)
{
    struct sensor *s = pt->s;
    unsigned gen = atomic_load_explicit(&s->gen, memory_order_acquire);
    if (gen != pt->gen) {
        pthread_mutex_lock(&s->pol_mu);
        struct policy *next = policy_ref(s->policy);
        pt->gen = atomic_load(&s->gen);
        pthread_mutex_unlock(&s->pol_mu);
        policy_free(pt->policy);
        pt->policy = next;
    }
    return pt->policy;
}

struct policy_state *sensor_port_state(struct sensor_port *pt)
{
    return pt->s->pstate;
}

void sensor_port_flow(struct sensor_port *pt, const struct flow_record *rec)
{
    if (rec->emit_us > pt->last_us)
        pt->last_us = rec->emit_us;
    outputs_write_flow(pt->w, rec);
}

void sensor_port_alert(struct sensor_port *pt, const struct alert_record *a)
{
    outputs_write_alert(pt->w, a);
    /* An alert is news: it goes to the file and to Redis now, with the
     * records written before it, not with the next batch. */
    outputs_writer_flush(pt->w, 1);
    pt->flushed_us = egr_mono_us();
}

void sensor_port_alert_fn(void *port, const struct alert_record *a)
{
    sensor_port_alert(port, a);
}

void sensor_port_tick(struct sensor_port *pt, uint64_t now_us, int force)
{
    if (!force && now_us - pt->flushed_us < FLUSH_US)
        return;
    outputs_writer_flush(pt->w, 0);
    pt->flushed_us = now_us;
}

/* ---- the control thread ------------------------------------------------------ */

/* Builds a policy from pc and swaps it in; the old one is freed by the
 * last port that lets go of it. */
static int swap_policy(struct sensor *s, const struct policy_config *pc, struct egr_err *err)
{
    struct policy *next;
    int rc = policy_new(pc, &next, err);
    if (rc != EGR_OK)
        return rc;
    policy_state_seed(next, s->pstate);
    pthread_mutex_lock(&s->pol_mu);
    struct policy *old = s->policy;
    s->policy = next;
    atomic_fetch_add_explicit(&s->gen, 1, memory_order_release);
    pthread_mutex_unlock(&s->pol_mu);
    policy_free(old);
    schedule(s);
    return EGR_OK;
}

int sensor_reload(struct sensor *s, const struct egr_config *cfg, struct egr_err *err)
{
    return swap_policy(s, &cfg->policy, err);
}

/* Loads rl_path and builds its policy; the result goes to rl_ready (a
 * newer one replaces one not yet swapped in). One line says how it went. */
static void reload_build(struct sensor *s, const char *path)
{
    struct egr_config cfg;
    struct egr_err err = {""};
    struct policy *next = NULL;
    config_defaults(&cfg);
    int rc = config_load(&cfg, path, &err);
    if (rc == EGR_OK)
        rc = policy_new(&cfg.policy, &next, &err);
    config_free(&cfg);
    if (rc != EGR_OK) {
        fprintf(stderr, "egressd: reload failed, the configuration in force stays: %s\n",
                err.msg);
        return;
    }
    /* The alert state locks itself: seeding it here races nothing. */
    policy_state_seed(next, s->pstate);
    policy_free(atomic_exchange(&s->rl_ready, next));
    /* In force from the next packet the control thread sees. */
    fprintf(stderr, "egressd: %s reloaded (policy, inventory, intel lists)\n", path);
}

/* The intel lists of `base` changed on disk: the same configuration built
 * again. Published only if no newer policy (a SIGHUP's, which read the
 * lists afresh) waits already. One line per distinct failure. */
static void intel_build(struct sensor *s, struct policy *base, struct egr_err *note)
{
    struct egr_err e = {""};
    struct policy *next = NULL;
    /* A copy: base (our reference) holds the configuration meanwhile. */
    struct policy_config pc = *policy_config_of(base);
    int rc = policy_new(&pc, &next, &e);
    policy_free(base);
    if (rc != EGR_OK) {
        if (strcmp(e.msg, note->msg)) {
            fprintf(stderr, "egressd: intel lists not reloaded, the old ones stay: %s\n", e.msg);
            *note = e;
        }
        return;
    }
    policy_state_seed(next, s->pstate);
    struct policy *none = NULL;
    if (!atomic_compare_exchange_strong(&s->rl_ready, &none, next)) {
        policy_free(next);
        return;
    }
    note->msg[0] = '\0';
    fprintf(stderr, "egressd: intel lists reloaded\n");
}

static void *reload_main(void *arg)
{
    struct sensor *s = arg;
    char path[sizeof(s->rl_path)];
    struct egr_err note = {""};
    pthread_mutex_lock(&s->rl_mu);
    for (;;) {
        while (!s->rl_want && !s->rl_quit && !s->rl_old && !s->rl_intel)
            pthread_cond_wait(&s->rl_cv, &s->rl_mu);
        if (s->rl_old) {
            struct policy *old = s->rl_old;
            s->rl_old = NULL;
            pthread_mutex_unlock(&s->rl_mu);
            policy_free(old);
            pthread_mutex_lock(&s->rl_mu);
            continue;
        }
        if (s->rl_quit)
            break;
        /* Before a SIGHUP's: that one is newer and must win. */
        if (s->rl_intel) {
            struct policy *base = s->rl_intel;
            s->rl_intel = NULL;
            pthread_mutex_unlock(&s->rl_mu);
            intel_build(s, base, &note);
            pthread_mutex_lock(&s->rl_mu);
            continue;
        }
        s->rl_want = 0;
        memcpy(path, s->rl_path, sizeof(path));
        pthread_mutex_unlock(&s->rl_mu);
        reload_build(s, path);
        pthread_mutex_lock(&s->rl_mu);
    }
    pthread_mutex_unlock(&s->rl_mu);
    return NULL;
}

static int reload_thread(struct sensor *s, struct egr_err *err)
{
    if (s->rl_started)
        return EGR_OK;
    int e = pthread_create(&s->rl_thread, NULL, reload_main, s);
    if (e != 0)
        return egr_fail(err, EGR_ERR, "cannot start the reload thread: %s", strerror(e));
    s->rl_started = 1;
    return EGR_OK;
}

int sensor_reload_start(struct sensor *s, const char *config_path, struct egr_err *err)
{
    if (strlen(config_path) >= sizeof(s->rl_path))
        return egr_fail(err, EGR_EINVAL, "%s: path too long", config_path);
    if (reload_thread(s, err) != EGR_OK)
        return EGR_ERR;
    pthread_mutex_lock(&s->rl_mu);
    /* A reload asked for while one is being built runs again after it:
     * the file may have changed since that one read it. */
    snprintf(s->rl_path, sizeof(s->rl_path), "%s", config_path);
    s->rl_want = 1;
    pthread_cond_signal(&s->rl_cv);
    pthread_mutex_unlock(&s->rl_mu);
    return EGR_OK;
}

int sensor_reload_poll(struct sensor *s)
{
    if (!atomic_load_explicit(&s->rl_ready, memory_order_relaxed))
        return 0;
    struct policy *next = atomic_exchange(&s->rl_ready, NULL);
    if (!next)
        return 0;
    pthread_mutex_lock(&s->pol_mu);
    struct policy *old = s->policy;
    s->policy = next;
    atomic_fetch_add_explicit(&s->gen, 1, memory_order_release);
    pthread_mutex_unlock(&s->pol_mu);
    schedule(s);
    pthread_mutex_lock(&s->rl_mu);
    struct policy *drop = s->rl_old; /* two swaps before the thread ran: rare */
    s->rl_old = old;
    pthread_cond_signal(&s->rl_cv);
    pthread_mutex_unlock(&s->rl_mu);
    policy_free(drop);
    return 1;
}

static void reload_stop(struct sensor *s)
{
    if (s->rl_started) {
        pthread_mutex_lock(&s->rl_mu);
        s->rl_quit = 1;
        pthread_cond_signal(&s->rl_cv);
        pthread_mutex_unlock(&s->rl_mu);
        pthread_join(s->rl_thread, NULL);
        s->rl_started = 0;
    }
    policy_free(s->rl_old);
    s->rl_old = NULL;
    policy_free(s->rl_intel);
    s->rl_intel = NULL;
    policy_free(atomic_exchange(&s->rl_ready, NULL));
}

static void save_baseline(struct sensor *s)
{
    struct egr_err e;
    if (policy_save_baseline(s->policy, s->pstate, &e) != EGR_OK)
        fprintf(stderr, "egressd: baseline not saved: %s\n", e.msg);
}

int sensor_reopen(struct sensor *s, struct egr_err *err)
{
    return outputs_reopen(&s->out, err);
}

void sensor_progress(struct sensor *s, const struct run_stats *st)
{
    outputs_progress(&s->out, st);
}

void sensor_poll(struct sensor *s)
{
    /* Timers run on the wall clock: a quiet sensor still saves what it
     * learned and picks up new intel. Only this thread swaps the policy,
     * so reading the pointer here needs no lock. */
    time_t now = now_s();
    sensor_reload_poll(s);
    outputs_poll(&s->out);
    /* Once a second the JSON lines the ports handed over reach the file: a
     * reader (tail -f, a SIEM shipper) on a quiet link is never more than
     * that behind, and the file is not written per record. */
    if (now >= s->next_flush) {
        outputs_writer_flush(s->ctl, 0);
        outputs_flush(&s->out);
        s->next_flush = now + 1;
    }

    if (policy_learning(s->policy) && now >= s->next_save) {
        save_baseline(s);
        s->next_save = now + policy_config_of(s->policy)->save_interval;
    }
    if (s->next_intel_check && now >= s->next_intel_check) {
        s->next_intel_check = now + policy_config_of(s->policy)->intel_check;
        /* Built on the reload thread, like a SIGHUP's; swapped in by
         * sensor_reload_poll() when done. */
        struct egr_err e = {""};
        if (!policy_intel_changed(s->policy)) {
            /* nothing to do */
        } else if (reload_thread(s, &e) == EGR_OK) {
            pthread_mutex_lock(&s->rl_mu);
            if (!s->rl_intel)
                s->rl_intel = policy_ref(s->policy);
            pthread_cond_signal(&s->rl_cv);
            pthread_mutex_unlock(&s->rl_mu);
        } else if (strcmp(e.msg, s->note.msg)) {
            fprintf(stderr, "egressd: intel lists not reloaded: %s\n", e.msg);
            s->note = e;
        }
    }
}

void sensor_stats(struct sensor *s, struct run_stats *st)
{
    struct policy_stats ps;
    policy_state_stats(s->pstate, &ps);
    outputs_redis_counters(&s->out, &st->redis);
    st->alerts += ps.alerts;
    st->alerts_suppressed += ps.suppressed;
    st->alerts_rate_limited += ps.rate_limited;
    st->learned += ps.learned;
}

void sensor_write_stats(struct sensor *s, const struct run_stats *st)
{
    outputs_writer_flush(s->ctl, 0);
    outputs_stats(&s->out, st);
}

int sensor_failed(struct sensor *s)
{
    return outputs_failed(&s->out);
}

static void ctl_alert(void *arg, const struct alert_record *a)
{
    struct sensor *s = arg;
    outputs_write_alert(s->ctl, a);
}

int sensor_finish(struct sensor *s, struct run_stats *st, struct egr_err *err)
{
    /* A reload still being built is waited for and dropped: it touches the
     * alert state, which goes below. */
    reload_stop(s);
    policy_flush(s->policy, s->pstate, atomic_load(&s->last_us), ctl_alert, s);
    if (policy_learning(s->policy))
        save_baseline(s);
    sensor_stats(s, st);
    outputs_writer_close(s->ctl);
    int rc = outputs_finish(&s->out, st);
    if (rc != EGR_OK)
        egr_fail(err, rc, "%s", outputs_error(&s->out));
    policy_state_free(s->pstate);
    policy_free(s->policy);
    pthread_mutex_destroy(&s->pol_mu);
    pthread_mutex_destroy(&s->rl_mu);
    pthread_cond_destroy(&s->rl_cv);
    free(s);
    return rc;
}

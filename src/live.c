/* live.c - the live run (see live.h): capture worker threads and the
 * control thread's event loop.
 *
 * Threads: worker threads run capture -> worker (and its sensor port) and nothing
 * else; they never touch libevent. The main thread runs the event loop:
 * signals (libevent turns them into events, so nothing runs in a signal
 * handler), a 250 ms timer for sensor_poll, stop checks and the periodic
 * stats event, and the metrics server. Workers block SIGINT & co. so the
 * signals reach the loop and never interrupt a capture read.
 *
 * Stopping: the control thread sets `stop`; each worker sees it within its
 * capture read timeout (100 ms), reads what the kernel already queued,
 * flushes its flow table with reason shutdown (on its own thread: the table
 * is its alone) and exits.
 */
#include "egressd/live.h"

#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "egressd/capture.h"
#include "egressd/decode.h"
#include "egressd/metrics.h"
#include "egressd/worker.h"

#define READ_TIMEOUT_MS 100
#define PUBLISH_US 100000ull /* how often a worker refreshes its snapshot */
#define TICK_MS 250
#define DRAIN_US 1000000ull  /* longest a stopping worker keeps reading */

enum lw_state { LW_RUNNING = 0, LW_STOPPED, LW_FAILED };

struct live_worker {
    struct live *l;
    const char *iface;
    struct capture *cap;
    struct worker *w;
    int dlt;
    pthread_t tid;
    int started;
    pthread_mutex_t mu;        /* guards snap, state, err */
    struct run_stats snap;     /* mu */
    int state;                 /* mu */
    struct egr_err err;        /* mu: why the capture failed */
};

struct live {
    struct live_opts o;
    struct sensor *sensor;
    struct live_worker *ws;
    size_t n;
    atomic_int stop;
    struct event_base *base;
    struct metrics *metrics;
    live_reload_fn reload;
    void *reload_arg;
    uint64_t inputs;
    int failed;                /* control thread: a capture or sink failed */
    struct egr_err fail_err;
    time_t next_stats, next_progress;
    /* metrics view storage, control thread */
    struct run_stats *view_ws;
    const char **view_if;
    struct run_stats view_total;
};

static time_t mono_s(void)
{
    return (time_t)(egr_mono_us() / 1000000u);
}

/* Worker thread: refreshes the snapshot the control thread reads. */
static void publish(struct live_worker *lw, int state)
{
    struct run_stats st;
    struct capture_stats cs;
    memset(&st, 0, sizeof(st));
    worker_stats(lw->w, &st);
    capture_stats(lw->cap, &cs);
    st.drop_kernel = cs.drop;
    st.drop_ifdrop = cs.ifdrop;
    pthread_mutex_lock(&lw->mu);
    lw->snap = st;
    if (state != LW_RUNNING)
        lw->state = state;
    pthread_mutex_unlock(&lw->mu);
}

static void *worker_main(void *arg)
{
    struct live_worker *lw = arg;
    struct live *l = lw->l;
    struct capture_pkt p;
    struct egr_err err = {""};
    uint64_t next_pub = 0;
    unsigned since_pub = 0;
    int state = LW_STOPPED;
    while (!atomic_load_explicit(&l->stop, memory_order_relaxed)) {
        int rc = capture_next(lw->cap, &p, &err);
        uint64_t now;
        if (rc == 1) {
            worker_packet(lw->w, lw->dlt, &p);
            /* By packet time, or by count should the clock step back. */
            if (p.ts_us < next_pub && ++since_pub < 65536)
                continue;
            now = p.ts_us;
        } else if (rc == 0) {
            /* A quiet link: the wall clock (the kernel stamps packets with
             * it too) moves time so idle flows still end. */
            now = egr_wall_us();
            worker_tick(lw->w, now);
        } else {
            pthread_mutex_lock(&lw->mu);
            lw->err = err;
            pthread_mutex_unlock(&lw->mu);
            state = LW_FAILED;
            break;
        }
        publish(lw, LW_RUNNING);
        worker_output_tick(lw->w, 0);
        next_pub = now + PUBLISH_US;
        since_pub = 0;
    }
    if (state != LW_FAILED) {
        /* Packets the kernel has already taken belong to this run: a
         * TPACKET_V3 block is handed over only when full or after the read
         * timeout, so read until the ring stays empty twice in a row
         * (bounded, in case the link is busy). */
        uint64_t deadline = egr_wall_us() + DRAIN_US;
        int empty = 0;
        while (empty < 2 && egr_wall_us() < deadline) {
            int rc = capture_next(lw->cap, &p, &err);
            if (rc == 1) {
                worker_packet(lw->w, lw->dlt, &p);
                empty = 0;
            } else if (rc == 0) {
                empty++;
            } else {
                break;
            }
        }
    }
    worker_flush(lw->w, END_SHUTDOWN);
    worker_output_tick(lw->w, 1);
    publish(lw, state);
    return NULL;
}

static void metrics_view(void *arg, struct metrics_view *v);

int live_open(const struct live_opts *o, struct live **out, struct egr_err *err)
{
    struct live *l = calloc(1, sizeof(*l));
    if (!l)
        return egr_fail(err, EGR_ENOMEM, "out of memory");
    l->o = *o;
    l->n = o->nifaces * o->workers;
    l->ws = calloc(l->n, sizeof(*l->ws));
    l->view_ws = calloc(l->n, sizeof(*l->view_ws));
    l->view_if = calloc(l->n, sizeof(*l->view_if));
    atomic_init(&l->stop, 0);
    int rc = l->ws && l->view_ws && l->view_if ? EGR_OK
                                               : egr_fail(err, EGR_ENOMEM, "out of memory");
    for (size_t i = 0; i < l->n; i++)
        pthread_mutex_init(&l->ws[i].mu, NULL);
    for (size_t i = 0; rc == EGR_OK && i < l->n; i++) {
        struct live_worker *lw = &l->ws[i];
        size_t ifn = i / o->workers;
        lw->l = l;
        lw->iface = o->ifaces[ifn];
        l->view_if[i] = lw->iface;
        struct capture_live_opts co = {
            .iface = lw->iface,
            .filter = o->filter,
            .snaplen = o->snaplen,
            .promisc = o->promisc,
            .buffer_mib = o->buffer_mib,
            .timeout_ms = READ_TIMEOUT_MS,
            /* One group per interface, unique on the host for this process. */
            .fanout_group = o->workers > 1 ? (int)(((unsigned)getpid() * 8u + ifn) & 0xffffu) : -1,
        };
        rc = capture_open_live(&co, &lw->cap, err);
        if (rc != EGR_OK)
            break;
        lw->dlt = capture_datalink(lw->cap);
        if (!decode_linktype_supported(lw->dlt)) {
            rc = egr_fail(err, EGR_EINVAL, "%s: unsupported link type %d", lw->iface, lw->dlt);
            break;
        }
    }
    if (rc == EGR_OK && !(l->base = event_base_new()))
        rc = egr_fail(err, EGR_ENOMEM, "cannot create the event loop");
    /* Bound here, before privileges are dropped: a port below 1024 works. */
    if (rc == EGR_OK && o->metrics)
        rc = metrics_open(l->base, o->metrics, metrics_view, l, &l->metrics, err);
    if (rc != EGR_OK) {
        live_free(l);
        return rc;
    }
    *out = l;
    return EGR_OK;
}

int live_attach(struct live *l, const struct egr_config *cfg, struct sensor *sensor,
                struct egr_err *err)
{
    l->sensor = sensor;
    for (size_t i = 0; i < l->n; i++) {
        struct live_worker *lw = &l->ws[i];
        int rc = worker_new(cfg, sensor, &lw->w, err);
        if (rc != EGR_OK)
            return rc;
    }
    return EGR_OK;
}

/* Control thread: the sum of the workers' snapshots. */
static void collect(struct live *l, struct run_stats *st, int *healthy)
{
    memset(st, 0, sizeof(*st));
    int ok = !atomic_load(&l->stop);
    for (size_t i = 0; i < l->n; i++) {
        struct live_worker *lw = &l->ws[i];
        pthread_mutex_lock(&lw->mu);
        l->view_ws[i] = lw->snap;
        if (lw->state != LW_RUNNING)
            ok = 0;
        pthread_mutex_unlock(&lw->mu);
        worker_stats_add(st, &l->view_ws[i]);
    }
    st->inputs = l->inputs;
    if (healthy)
        *healthy = ok;
}

static void write_stats(struct live *l)
{
    struct run_stats st;
    collect(l, &st, NULL);
    sensor_stats(l->sensor, &st);
    sensor_write_stats(l->sensor, &st);
}

static void metrics_view(void *arg, struct metrics_view *v)
{
    struct live *l = arg;
    int healthy;
    collect(l, &l->view_total, &healthy);
    sensor_stats(l->sensor, &l->view_total);
    v->nworkers = l->n;
    v->worker = l->view_ws;
    v->iface = l->view_if;
    v->total = &l->view_total;
    v->healthy = healthy;
}

static void request_stop(struct live *l)
{
    atomic_store(&l->stop, 1);
    event_base_loopbreak(l->base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct live *l = arg;
    if (sig == SIGHUP) {
        if (l->reload)
            l->reload(l->reload_arg);
    } else if (sig == SIGUSR1) {
        write_stats(l);
    } else {
        request_stop(l);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct live *l = arg;
    sensor_poll(l->sensor);
    if (sensor_failed(l->sensor)) {
        l->failed = 1;
        egr_fail(&l->fail_err, EGR_EIO, "an output failed; stopping");
        request_stop(l);
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        struct live_worker *lw = &l->ws[i];
        pthread_mutex_lock(&lw->mu);
        if (lw->state == LW_FAILED && !l->failed) {
            l->failed = 1;
            l->fail_err = lw->err;
        }
        pthread_mutex_unlock(&lw->mu);
    }
    if (l->failed) {
        request_stop(l);
        return;
    }
    time_t now = mono_s();
    if (now >= l->next_progress) {
        /* Counters for the Redis heartbeat. */
        struct run_stats st;
        collect(l, &st, NULL);
        sensor_progress(l->sensor, &st);
        l->next_progress = now + 1;
    }
    if (l->o.stats_interval && now >= l->next_stats) {
        write_stats(l);
        l->next_stats = now + (time_t)l->o.stats_interval;
    }
}

int live_run(struct live *l, live_reload_fn reload, void *reload_arg, struct run_stats *st,
             struct egr_err *err)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1};
    struct event *evs[EGR_ARRAY_LEN(sigs)] = {NULL};
    struct event *tick = NULL;
    int rc = EGR_OK;
    l->reload = reload;
    l->reload_arg = reload_arg;
    l->inputs = l->o.nifaces;
    for (size_t i = 0; rc == EGR_OK && i < EGR_ARRAY_LEN(sigs); i++) {
        evs[i] = evsignal_new(l->base, sigs[i], on_signal, l);
        if (!evs[i] || evsignal_add(evs[i], NULL) != 0)
            rc = egr_fail(err, EGR_EIO, "cannot watch signal %d", sigs[i]);
    }
    struct timeval tv = {0, TICK_MS * 1000};
    if (rc == EGR_OK && (!(tick = event_new(l->base, -1, EV_PERSIST, on_tick, l)) ||
                         event_add(tick, &tv) != 0))
        rc = egr_fail(err, EGR_EIO, "cannot start the timer");

    /* Workers inherit this mask: only the control thread takes signals. */
    sigset_t block, old;
    sigemptyset(&block);
    for (size_t i = 0; i < EGR_ARRAY_LEN(sigs); i++)
        sigaddset(&block, sigs[i]);
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    for (size_t i = 0; rc == EGR_OK && i < l->n; i++) {
        if (pthread_create(&l->ws[i].tid, NULL, worker_main, &l->ws[i]) != 0)
            rc = egr_fail(err, EGR_EIO, "cannot start worker %zu", i);
        else
            l->ws[i].started = 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (rc == EGR_OK) {
        l->next_stats = mono_s() + (time_t)l->o.stats_interval;
        if (l->metrics)
            fprintf(stderr, "egressd: metrics on %s, port %d\n", l->o.metrics,
                    metrics_port(l->metrics));
        fprintf(stderr, "egressd: capturing on %s%s (%u worker%s per interface)\n",
                l->o.ifaces[0], l->o.nifaces > 1 ? " ..." : "", l->o.workers,
                l->o.workers > 1 ? "s" : "");
        event_base_dispatch(l->base);
    }
    atomic_store(&l->stop, 1);
    for (size_t i = 0; i < l->n; i++) {
        if (l->ws[i].started)
            pthread_join(l->ws[i].tid, NULL);
        l->ws[i].started = 0;
    }
    /* After the joins: a failure seen by no tick yet still counts. */
    for (size_t i = 0; i < l->n && !l->failed; i++) {
        if (l->ws[i].state == LW_FAILED) {
            l->failed = 1;
            l->fail_err = l->ws[i].err;
        }
    }
    struct run_stats total;
    collect(l, &total, NULL);
    worker_stats_add(st, &total);
    st->inputs += total.inputs;
    if (l->failed)
        st->input_errors++;
    for (size_t i = 0; i < EGR_ARRAY_LEN(sigs); i++)
        if (evs[i])
            event_free(evs[i]);
    if (tick)
        event_free(tick);
    metrics_close(l->metrics);
    l->metrics = NULL;
    if (rc == EGR_OK && l->failed)
        rc = egr_fail(err, EGR_EIO, "%s", l->fail_err.msg);
    return rc;
}

void live_free(struct live *l)
{
    if (!l)
        return;
    for (size_t i = 0; l->ws && i < l->n; i++) {
        worker_free(l->ws[i].w);
        capture_close(l->ws[i].cap);
        pthread_mutex_destroy(&l->ws[i].mu);
    }
    metrics_close(l->metrics);
    if (l->base)
        event_base_free(l->base);
    free(l->ws);
    free(l->view_ws);
    free(l->view_if);
    free(l);
}

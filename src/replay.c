/* replay.c - replay sources and the shared replay (see replay.h).
 *
 * Why every worker reads the whole capture instead of one reader handing
 * packets out: the file is mapped, so a second reader costs page-table
 * work, not copies, and a worker that sees every packet's time needs no
 * time ticks from anyone: its idle timeouts, active timeouts and decision
 * bounds fire at the very packet they fire at in a single worker. What each
 * worker repeats is the decode of the other workers' packets (cheap next to
 * the flow table and nDPI, which it skips for them).
 */
#include "egressd/replay.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "egressd/decode.h"
#include "egressd/pcap-file.h"
#include "egressd/worker.h"

/* ---- sources ---------------------------------------------------------------- */

struct replay_src {
    struct pcap_file *pf; /* the mapped file, or */
    struct capture *cap;  /* libpcap */
    int dlt;
};

int replay_src_open(const char *path, struct replay_src **out, struct egr_err *err)
{
    struct replay_src *s = calloc(1, sizeof(*s));
    if (!s)
        return egr_fail(err, EGR_ENOMEM, "%s: out of memory", path);
    int rc = pcap_file_open(path, &s->pf, err);
    if (rc == EGR_OK) {
        s->dlt = pcap_file_datalink(s->pf);
    } else if (rc == PCAP_FILE_NOT_MINE) {
        rc = capture_open_file(path, &s->cap, err);
        if (rc == EGR_OK) {
            s->dlt = capture_datalink(s->cap);
            if (!decode_linktype_supported(s->dlt))
                rc = egr_fail(err, EGR_EINVAL, "%s: unsupported link type %d",
                              capture_name(s->cap), s->dlt);
        }
    }
    if (rc != EGR_OK) {
        replay_src_close(s);
        return rc;
    }
    *out = s;
    return EGR_OK;
}

int replay_src_datalink(const struct replay_src *s)
{
    return s->dlt;
}

int replay_src_next(struct replay_src *s, struct capture_pkt *p, struct egr_err *err)
{
    return s->pf ? pcap_file_next(s->pf, p, err) : capture_next(s->cap, p, err);
}

void replay_src_close(struct replay_src *s)
{
    if (!s)
        return;
    pcap_file_close(s->pf);
    capture_close(s->cap);
    free(s);
}

/* ---- shared replay ---------------------------------------------------------- */

#define BATCH 1024u        /* packets between output ticks and stop checks */
#define PUBLISH_MASK 65535u /* packets between snapshots */

struct par_worker {
    struct replay_par *rp;
    struct worker *w;
    unsigned self;
    pthread_t tid;
    int started;
    struct run_stats snap; /* rp->mu */
};

struct replay_par {
    struct sensor *s;
    const char *const *inputs;
    size_t ninputs;
    struct par_worker *ws;
    unsigned n;
    atomic_int stop;
    pthread_mutex_t mu;
    pthread_cond_t done_cv;
    unsigned done;   /* mu: workers finished */
    size_t inputs_read; /* worker 0's, read after the joins */
    char **errors;   /* [ninputs], worker 0's messages (all workers meet the same) */
};

static void publish(struct par_worker *pw)
{
    struct run_stats st;
    memset(&st, 0, sizeof(st));
    worker_stats(pw->w, &st);
    pthread_mutex_lock(&pw->rp->mu);
    pw->snap = st;
    pthread_mutex_unlock(&pw->rp->mu);
}

static int replay_one(struct par_worker *pw, const char *path, struct egr_err *err)
{
    struct replay_par *rp = pw->rp;
    struct replay_src *src;
    int rc = replay_src_open(path, &src, err);
    if (rc != EGR_OK)
        return rc;
    int dlt = replay_src_datalink(src);
    struct capture_pkt p;
    uint64_t n = 0;
    while (!atomic_load_explicit(&rp->stop, memory_order_relaxed)) {
        if ((rc = replay_src_next(src, &p, err)) != 1)
            break;
        worker_packet(pw->w, dlt, &p);
        if ((++n & (BATCH - 1)) == 0) {
            if ((n & PUBLISH_MASK) == 0)
                publish(pw);
            worker_output_tick(pw->w, 0);
            if (sensor_failed(rp->s))
                break;
        }
    }
    replay_src_close(src);
    return rc < 0 ? rc : EGR_OK;
}

static void *par_main(void *arg)
{
    struct par_worker *pw = arg;
    struct replay_par *rp = pw->rp;
    for (size_t i = 0; i < rp->ninputs; i++) {
        if (atomic_load(&rp->stop) || sensor_failed(rp->s))
            break;
        struct egr_err err = {""};
        int rc = replay_one(pw, rp->inputs[i], &err);
        if (pw->self == 0) {
            rp->inputs_read++;
            if (rc != EGR_OK)
                rp->errors[i] = strdup(err.msg[0] ? err.msg : "read error");
        }
    }
    worker_flush(pw->w, END_SHUTDOWN);
    worker_output_tick(pw->w, 1);
    publish(pw);
    pthread_mutex_lock(&rp->mu);
    rp->done++;
    pthread_cond_broadcast(&rp->done_cv);
    pthread_mutex_unlock(&rp->mu);
    return NULL;
}

static void par_free(struct replay_par *rp)
{
    for (unsigned i = 0; rp->ws && i < rp->n; i++)
        worker_free(rp->ws[i].w);
    for (size_t i = 0; rp->errors && i < rp->ninputs; i++)
        free(rp->errors[i]);
    free(rp->errors);
    free(rp->ws);
    pthread_cond_destroy(&rp->done_cv);
    pthread_mutex_destroy(&rp->mu);
    free(rp);
}

int replay_par_start(const struct egr_config *cfg, struct sensor *s, const char *const *inputs,
                     size_t ninputs, unsigned n, struct replay_par **out, struct egr_err *err)
{
    struct replay_par *rp = calloc(1, sizeof(*rp));
    if (!rp)
        return egr_fail(err, EGR_ENOMEM, "out of memory");
    pthread_mutex_init(&rp->mu, NULL);
    pthread_cond_init(&rp->done_cv, NULL);
    atomic_init(&rp->stop, 0);
    rp->s = s;
    rp->inputs = inputs;
    rp->ninputs = ninputs;
    rp->n = n;
    rp->ws = calloc(n, sizeof(*rp->ws));
    rp->errors = calloc(ninputs ? ninputs : 1, sizeof(*rp->errors));
    int rc = rp->ws && rp->errors ? EGR_OK : egr_fail(err, EGR_ENOMEM, "out of memory");
    for (unsigned i = 0; rc == EGR_OK && i < n; i++) {
        rp->ws[i].rp = rp;
        rp->ws[i].self = i;
        rc = worker_new(cfg, s, &rp->ws[i].w, err);
        if (rc == EGR_OK)
            worker_share(rp->ws[i].w, i, n);
    }
    /* Workers take no signals: the control thread acts on them. */
    sigset_t block, old;
    sigfillset(&block);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    for (unsigned i = 0; rc == EGR_OK && i < n; i++) {
        if (pthread_create(&rp->ws[i].tid, NULL, par_main, &rp->ws[i]) != 0)
            rc = egr_fail(err, EGR_EIO, "cannot start replay worker %u", i);
        else
            rp->ws[i].started = 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != EGR_OK) {
        atomic_store(&rp->stop, 1);
        for (unsigned i = 0; rp->ws && i < n; i++)
            if (rp->ws[i].started)
                pthread_join(rp->ws[i].tid, NULL);
        par_free(rp);
        return rc;
    }
    *out = rp;
    return EGR_OK;
}

int replay_par_wait(struct replay_par *rp, unsigned ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)(ms % 1000u) * 1000000L;
    ts.tv_sec += ms / 1000u + ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&rp->mu);
    while (rp->done < rp->n)
        if (pthread_cond_timedwait(&rp->done_cv, &rp->mu, &ts) != 0)
            break;
    int all = rp->done == rp->n;
    pthread_mutex_unlock(&rp->mu);
    return all;
}

void replay_par_stop(struct replay_par *rp)
{
    atomic_store(&rp->stop, 1);
}

/* Every worker learns every DNS answer: one worker's count is the run's. */
static void sum_snaps(struct replay_par *rp, struct run_stats *st)
{
    uint64_t learned = 0;
    pthread_mutex_lock(&rp->mu);
    for (unsigned i = 0; i < rp->n; i++) {
        uint64_t before = st->names_learned;
        worker_stats_add(st, &rp->ws[i].snap);
        st->names_learned = before;
        if (rp->ws[i].snap.names_learned > learned)
            learned = rp->ws[i].snap.names_learned;
    }
    pthread_mutex_unlock(&rp->mu);
    st->names_learned += learned;
}

void replay_par_stats(struct replay_par *rp, struct run_stats *st)
{
    sum_snaps(rp, st);
}

size_t replay_par_finish(struct replay_par *rp, struct run_stats *st,
                         void (*on_error)(void *arg, const char *msg), void *arg)
{
    for (unsigned i = 0; i < rp->n; i++)
        if (rp->ws[i].started)
            pthread_join(rp->ws[i].tid, NULL);
    sum_snaps(rp, st);
    size_t nerr = 0;
    for (size_t i = 0; i < rp->ninputs; i++) {
        if (rp->errors[i]) {
            nerr++;
            if (on_error)
                on_error(arg, rp->errors[i]);
        }
    }
    st->inputs += rp->inputs_read;
    st->input_errors += nerr;
    par_free(rp);
    return nerr;
}

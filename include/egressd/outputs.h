/* outputs.h - the set of sinks a run writes to, opened from the
 * configuration and the command line, fed by the I/O side (main thread).
 *
 * Records go to every sink in the order they were opened, through writers
 * (one per thread that makes records, see sink.h). The first sink failure
 * is kept (one line, in outputs_error()) and makes the run fail; later
 * records still go to the sinks that work.
 */
#ifndef EGRESSD_OUTPUTS_H
#define EGRESSD_OUTPUTS_H

#include <pthread.h>
#include <stdatomic.h>

#include "egressd/alert.h"
#include "egressd/config.h"
#include "egressd/sink.h"

#define OUTPUTS_MAX 4

struct outputs {
    struct sink sinks[OUTPUTS_MAX];
    unsigned n;
    atomic_int failed;
    pthread_mutex_t mu;  /* guards err while the first failure is noted */
    struct egr_err err;
};

/* One thread's writers, one per sink. */
/* Records after which every writer of an outputs_writer hands over. */
#define OUTPUTS_BATCH 256u

struct outputs_writer {
    struct outputs *o;
    void *w[OUTPUTS_MAX];
    unsigned n;
    unsigned since_flush;  /* records since the last hand-over */
};

/* Opens the sinks the configuration asks for: JSON lines to json_path
 * (never NULL: "-" is stdout). `source` says what the sensor reads ("file
 * a.pcap", "interface eth0") for sinks that report it (the Redis
 * heartbeat); NULL is "". On failure nothing stays open. */
int outputs_open(struct outputs *o, const struct egr_config *cfg, const char *json_path,
                 const char *source, struct egr_err *err);

/* A writer for the calling thread; close it (outputs_writer_close) before
 * outputs_finish. */
int outputs_writer_open(struct outputs *o, struct outputs_writer **out, struct egr_err *err);
void outputs_write_flow(struct outputs_writer *w, const struct flow_record *rec);
void outputs_write_alert(struct outputs_writer *w, const struct alert_record *a);
/* Hands what w holds to the sinks; `urgent` pushes it on at once (an alert
 * must reach the file and Redis now, not with the next batch). */
void outputs_writer_flush(struct outputs_writer *w, int urgent);
void outputs_writer_close(struct outputs_writer *w);

/* Writes a stats event to every sink now (a periodic or requested one; the
 * final one is written by outputs_finish). */
void outputs_stats(struct outputs *o, const struct run_stats *st);

/* The capture's counters so far, for sinks that report them on their own
 * schedule (the Redis heartbeat). Writes nothing. */
void outputs_progress(struct outputs *o, const struct run_stats *st);

/* Reopens output files by name (SIGHUP, after logrotate). EGR_OK, or an
 * error in err with the old files still in use. */
int outputs_reopen(struct outputs *o, struct egr_err *err);

/* Lets sinks with background work (network writes) make progress without
 * blocking. Called between packets; cheap when there is nothing to do. */
void outputs_poll(struct outputs *o);

/* Pushes buffered output to its files (once a second from sensor_poll). A
 * failure marks the outputs failed, as a failed write does. */
void outputs_flush(struct outputs *o);

/* The Redis sink's counters so far (enabled = 0 without one). */
void outputs_redis_counters(struct outputs *o, struct redis_stats *out);

/* Writes the final stats event, flushes every sink (waiting for sinks that
 * deliver asynchronously, up to their configured deadline) and closes them.
 * Returns EGR_OK or the first failure of the run. */
int outputs_finish(struct outputs *o, const struct run_stats *st);

/* 1 once a sink failed. Any thread. */
int outputs_failed(const struct outputs *o);

/* The first failure of the run, or "". */
const char *outputs_error(const struct outputs *o);

#endif

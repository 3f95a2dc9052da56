/* outputs.h - the set of sinks a run writes to, opened from the
 * configuration and the command line, fed by the I/O side (main thread).
 *
 * Records go to every sink in the order they were opened. The first sink
 * failure is kept (one line, in outputs_error()) and makes the run fail;
 * later records still go to the sinks that work.
 */
#ifndef EGRESSD_OUTPUTS_H
#define EGRESSD_OUTPUTS_H

#include "egressd/alert.h"
#include "egressd/config.h"
#include "egressd/sink.h"

#define OUTPUTS_MAX 4

struct outputs {
    struct sink sinks[OUTPUTS_MAX];
    unsigned n;
    int failed;
    struct egr_err err;
};

/* Opens the sinks the configuration asks for: JSON lines to json_path
 * (never NULL: "-" is stdout). `source` says what the sensor reads ("file
 * a.pcap", "interface eth0") for sinks that report it (the Redis
 * heartbeat); NULL is "". On failure nothing stays open. */
int outputs_open(struct outputs *o, const struct egr_config *cfg, const char *json_path,
                 const char *source, struct egr_err *err);

void outputs_flow(struct outputs *o, const struct flow_record *rec);
void outputs_alert(struct outputs *o, const struct alert_record *a);

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

/* The first failure of the run, or "". */
const char *outputs_error(const struct outputs *o);

#endif

/* sensor.h - the I/O side of the sensor: everything a flow record meets
 * after a worker's flow table (policy, alerts, sinks), behind one object.
 *
 * Workers emit records into sensor_emit() and let the policy mark them up in
 * sensor_annotate() (give both to worker_new / worker_set_annotate with the
 * sensor as the argument). Both may be called from several worker threads at
 * once: the sensor serialises what needs it (alert state, sinks) with a lock
 * taken per record, never per packet. Everything else (open, poll, reload,
 * stats, finish) belongs to one control thread.
 */
#ifndef EGRESSD_SENSOR_H
#define EGRESSD_SENSOR_H

#include "egressd/common.h"
#include "egressd/config.h"
#include "egressd/record.h"
#include "egressd/sink.h"

struct sensor;

/* Opens the sinks and builds the policy of cfg. `source` names what is
 * read ("file a.pcap", "interface eth0"), for the heartbeat; NULL is "".
 * The sensor keeps no pointer into cfg. */
int sensor_open(const struct egr_config *cfg, const char *json_path, const char *source,
                struct sensor **out, struct egr_err *err);

/* flow_emit_fn / worker_annotate_fn: `arg` is the struct sensor. */
void sensor_emit(void *arg, struct flow_record *rec);
void sensor_annotate(void *arg, struct flow_record *rec);

/* Lets sinks with background work make progress; cheap. Control thread. */
void sensor_poll(struct sensor *s); /* also flushes the JSON output once a second */

/* Hands the capture's counters so far (workers' *_stats()) to the sinks
 * that report them between stats events (the Redis heartbeat). Control
 * thread. */
void sensor_progress(struct sensor *s, const struct run_stats *st);

/* Replaces the policy (and the intel lists it names) with those of cfg.
 * On failure the old policy stays in force and err says why. Flow state in
 * the workers is untouched. Control thread. */
int sensor_reload(struct sensor *s, const struct egr_config *cfg, struct egr_err *err);

/* Reopens the output files by name (SIGHUP, after logrotate). On failure
 * the old files stay in use and err says why. Control thread. */
int sensor_reopen(struct sensor *s, struct egr_err *err);

/* Adds the sensor's own counters (alerts, ...) into *st. */
void sensor_stats(struct sensor *s, struct run_stats *st);

/* Writes a `stats` event now (SIGUSR1, periodic stats): st as filled by the
 * workers' and the sensor's *_stats(). */
void sensor_write_stats(struct sensor *s, const struct run_stats *st);

/* 1 once a sink failed; the run should stop reading. */
int sensor_failed(struct sensor *s);

/* Writes the final stats event (st plus the sensor's counters), flushes,
 * closes and frees everything. Returns EGR_OK or EGR_EIO with the first
 * failure of the run in err. s is gone afterwards. */
int sensor_finish(struct sensor *s, struct run_stats *st, struct egr_err *err);

#endif

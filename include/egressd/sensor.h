/* sensor.h - what every worker shares: the policy in force, the alert state
 * and the sinks, behind one object.
 *
 * Each worker (capture thread) opens a port: its own reference to the
 * policy, picked up again after a reload, and its own output writers
 * (outputs.h), so it judges flows and writes records and alerts without
 * taking any lock the other workers take per record. The alert state
 * (policy_state) is shared and locks inside by shard.
 *
 * Everything but the port functions (open, poll, reload, stats, finish)
 * belongs to one control thread. A port belongs to its worker's thread.
 */
#ifndef EGRESSD_SENSOR_H
#define EGRESSD_SENSOR_H

#include "egressd/alert.h"
#include "egressd/common.h"
#include "egressd/config.h"
#include "egressd/policy.h"
#include "egressd/record.h"
#include "egressd/sink.h"

struct sensor;
struct sensor_port;

/* Opens the sinks and builds the policy of cfg. `source` names what is
 * read ("file a.pcap", "interface eth0"), for the heartbeat; NULL is "".
 * The sensor keeps no pointer into cfg. Errors: EGR_EINVAL for what the
 * configuration names or says (a policy file missing or malformed, a
 * setting the sink refuses): egressd exits 2 for it, as --check-config
 * does; anything else (an output that cannot be opened) is a run-time
 * failure. */
int sensor_open(const struct egr_config *cfg, const char *json_path, const char *source,
                struct sensor **out, struct egr_err *err);

/* ---- a worker's port ------------------------------------------------------ */

int sensor_port_open(struct sensor *s, struct sensor_port **out, struct egr_err *err);
/* Flushes the port's writers and lets go of its policy. Before
 * sensor_finish. */
void sensor_port_close(struct sensor_port *pt);

/* The policy in force: the port's reference, replaced by the newest policy
 * when a reload swapped one in since the last call (one atomic load when
 * nothing changed). Valid until the next call on this port. */
const struct policy *sensor_port_policy(struct sensor_port *pt);
struct policy_state *sensor_port_state(struct sensor_port *pt);

/* A record or an alert through the port's writers. An alert is pushed on
 * to the sinks at once (with the records before it). */
void sensor_port_flow(struct sensor_port *pt, const struct flow_record *rec);
void sensor_port_alert(struct sensor_port *pt, const struct alert_record *a);
/* policy_alert_fn with the port as argument. */
void sensor_port_alert_fn(void *port, const struct alert_record *a);

/* Hands what the port's writers hold to the sinks if `now_us` (monotonic)
 * is FLUSH_US past the last hand-over, or always with force; call it on
 * the worker's ticks and between packets now and then. */
void sensor_port_tick(struct sensor_port *pt, uint64_t now_us, int force);

/* ---- the control thread ---------------------------------------------------- */

/* Lets sinks with background work make progress; cheap. Also flushes the
 * JSON output once a second and runs the learning and intel timers. */
void sensor_poll(struct sensor *s);

/* Hands the capture's counters so far (workers' *_stats()) to the sinks
 * that report them between stats events (the Redis heartbeat). */
void sensor_progress(struct sensor *s, const struct run_stats *st);

/* Replaces the policy (and the intel lists it names) with those of cfg:
 * built first, then swapped in; each worker picks it up at its next
 * packet. On failure the old policy stays in force and err says why. */
int sensor_reload(struct sensor *s, const struct egr_config *cfg, struct egr_err *err);

/* SIGHUP: loads config_path again and builds its policy on the sensor's
 * reload thread (started on first use), so a slow or hostile file never
 * holds up the packets. One line on stderr says "reloaded" or why not (the
 * old policy then stays). Only the configuration's policy, inventory and
 * intel lists change. Call from the control thread; EGR_OK once asked. */
int sensor_reload_start(struct sensor *s, const char *config_path, struct egr_err *err);

/* Swaps in a policy the reload thread finished, if any (one relaxed atomic
 * load when there is none): call it between packets on the control thread
 * (sensor_poll() does). Returns 1 if a new policy is now in force. */
int sensor_reload_poll(struct sensor *s);

/* Reopens the output files by name (SIGHUP, after logrotate). On failure
 * the old files stay in use and err says why. */
int sensor_reopen(struct sensor *s, struct egr_err *err);

/* Adds the sensor's own counters (alerts, ...) into *st. */
void sensor_stats(struct sensor *s, struct run_stats *st);

/* Writes a `stats` event now (SIGUSR1, periodic stats): st as filled by the
 * workers' and the sensor's *_stats(). */
void sensor_write_stats(struct sensor *s, const struct run_stats *st);

/* 1 once a sink failed; the run should stop reading. Any thread. */
int sensor_failed(struct sensor *s);

/* Writes the final alert updates and stats event (st plus the sensor's
 * counters), flushes, closes and frees everything. Every port must be
 * closed. Returns EGR_OK or EGR_EIO with the first failure of the run in
 * err. s is gone afterwards. */
int sensor_finish(struct sensor *s, struct run_stats *st, struct egr_err *err);

#endif

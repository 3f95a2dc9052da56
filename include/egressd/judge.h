/* judge.h - a worker's policy stage: follows each flow through the flow
 * table's hooks and judges it at the packets that can settle its verdict
 * (verdict.h), so an alert is raised while the flow is open, at the packet
 * that made its destination known, not when its record is written.
 *
 * One judge per worker, used only by that worker's thread. It reads the
 * policy through the worker's sensor port and writes alerts through it.
 */
#ifndef EGRESSD_JUDGE_H
#define EGRESSD_JUDGE_H

#include "egressd/common.h"
#include "egressd/flow.h"
#include "egressd/policy.h"
#include "egressd/sensor.h"

struct judge;

/* Fills rec->enrich for policy p (direction, asset, destination name,
 * GeoIP): the worker's enrichment, run on every record and snapshot. */
typedef void (*judge_enrich_fn)(void *arg, const struct policy *p, struct flow_record *rec);

int judge_new(struct sensor_port *port, judge_enrich_fn enrich, void *enrich_arg,
              struct judge **out, struct egr_err *err);
void judge_free(struct judge *j);

/* The table whose flows the judge follows; installs the hooks. */
void judge_attach(struct judge *j, struct flow_table *ft);

/* Moves packet time to now_us: flows still open past their decision bound
 * are decided now, even when they sent nothing since. */
void judge_tick(struct judge *j, uint64_t now_us);

/* The policy in force for this worker (picked up again after a reload). */
const struct policy *judge_policy(struct judge *j);

#endif

/* live.h - a live run: capture worker threads on one or more interfaces,
 * and the control thread's libevent loop (signals, timers, metrics).
 *
 * Each worker thread owns one capture and one struct worker (decode, flow
 * table, nDPI) and shares nothing on the packet path; with several workers
 * per interface their captures form one AF_PACKET fanout group hashed by
 * flow. Records go to the shared sensor (sensor_emit is thread-safe). The
 * control thread reads workers' counters from snapshots each worker
 * publishes under its own mutex about every 100 ms.
 */
#ifndef EGRESSD_LIVE_H
#define EGRESSD_LIVE_H

#include <stddef.h>

#include "egressd/common.h"
#include "egressd/config.h"
#include "egressd/sensor.h"
#include "egressd/sink.h"

struct live_opts {
    const char *const *ifaces;
    size_t nifaces;
    const char *filter;      /* BPF, NULL for none */
    int snaplen;
    int promisc;
    int buffer_mib;          /* 0: libpcap's default */
    unsigned workers;        /* per interface, >= 1 */
    unsigned stats_interval; /* seconds between stats events, 0 = none */
    const char *metrics;     /* "[HOST:]PORT" or NULL */
};

struct live;

/* Opens every capture and binds the metrics server: the steps that need
 * privileges. Starts no thread, so privileges can be dropped right after it
 * (before anything else, the sensor's Redis thread included, exists).
 * Errors as capture_open_live, EGR_EINVAL for an unsupported link type or a
 * bad metrics address. */
int live_open(const struct live_opts *o, struct live **out, struct egr_err *err);

/* Builds one worker (decode, flow table, nDPI) per capture, each sending its
 * records to `sensor`. Once, after live_open and before live_run. */
int live_attach(struct live *l, const struct egr_config *cfg, struct sensor *sensor,
                struct egr_err *err);

/* SIGHUP: called on the control thread. */
typedef void (*live_reload_fn)(void *arg);

/* Starts the workers and runs the control loop until SIGINT/SIGTERM, a
 * worker's capture failing, or a sink failing; then stops the workers, each
 * flushing its flows with reason shutdown, and sums their counters into *st
 * (the caller then calls sensor_finish). Returns EGR_OK after a requested
 * stop, EGR_EIO with err set when a capture or a sink failed. */
int live_run(struct live *l, live_reload_fn reload, void *reload_arg, struct run_stats *st,
             struct egr_err *err);

void live_free(struct live *l);

#endif

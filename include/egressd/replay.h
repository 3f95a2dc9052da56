/* replay.h - reading capture files: the packet source a replay reads from
 * (an mmap'd classic pcap when pcap-file.h takes the file, libpcap for
 * everything else), and a replay shared by several workers.
 *
 * Shared replay (-r FILE --workers N): N threads, each with its own worker
 * (worker_share), each reading every input itself from the page cache. A
 * worker accounts only the flows whose address pair hashes to it and lets
 * the other packets move its clock, so timeouts, decision bounds and record
 * times are those of a single worker and the run writes the same flow
 * records (as a set: workers hand their records to the sinks side by side,
 * each in its own order). Standard input cannot be read N times; main.c
 * refuses it.
 */
#ifndef EGRESSD_REPLAY_H
#define EGRESSD_REPLAY_H

#include <stddef.h>

#include "egressd/capture.h"
#include "egressd/config.h"
#include "egressd/sensor.h"
#include "egressd/sink.h"

struct replay_src;

/* Opens a capture file ("-": standard input). Errors as capture_open_file(),
 * plus EGR_EINVAL "NAME: unsupported link type N". */
int replay_src_open(const char *path, struct replay_src **out, struct egr_err *err);
int replay_src_datalink(const struct replay_src *s);
/* As capture_next() on a file: 1, 0 at the end, EGR_EIO with err. */
int replay_src_next(struct replay_src *s, struct capture_pkt *p, struct egr_err *err);
void replay_src_close(struct replay_src *s);

struct replay_par;

/* Starts n (2..64) workers replaying inputs[0..ninputs) in order into s. */
int replay_par_start(const struct egr_config *cfg, struct sensor *s, const char *const *inputs,
                     size_t ninputs, unsigned n, struct replay_par **out, struct egr_err *err);
/* Control thread: waits at most ms for the workers; 1 when all are done. */
int replay_par_wait(struct replay_par *rp, unsigned ms);
/* Asks every worker to stop at its next batch (their flows end "shutdown"). */
void replay_par_stop(struct replay_par *rp);
/* The workers' counters as last published (every 64 Ki packets), summed. */
void replay_par_stats(struct replay_par *rp, struct run_stats *st);
/* After replay_par_wait() returned 1: joins and frees the workers (their
 * output goes to the sinks), adds the final counters, inputs and input
 * errors into st and calls on_error with each input's error, in input order.
 * Returns the number of inputs that ended in an error. */
size_t replay_par_finish(struct replay_par *rp, struct run_stats *st,
                         void (*on_error)(void *arg, const char *msg), void *arg);

#endif

/* capture.h - packet sources through libpcap: capture files (pcap and
 * pcapng, detected from the content; "-" is standard input). Knows nothing
 * of decoding. Live interfaces come with the live-capture work.
 *
 * A capture owns its pcap handle; the packet returned by capture_next() is
 * valid until the next call.
 */
#ifndef EGRESSD_CAPTURE_H
#define EGRESSD_CAPTURE_H

#include <stdint.h>

#include "egressd/common.h"

struct capture;

struct capture_pkt {
    const uint8_t *data;
    uint32_t caplen;
    uint32_t wire_len;
    uint64_t ts_us;
};

/* Opens a capture file. Errors: EGR_EIO with "PATH: reason" in err (no such
 * file, not a capture file, ...). */
int capture_open_file(const char *path, struct capture **out, struct egr_err *err);

/* The libpcap link type (DLT_*) of the source. */
int capture_datalink(const struct capture *c);
const char *capture_name(const struct capture *c);

/* Reads the next packet: returns 1 with *p filled, 0 at the end of the
 * input, or EGR_EIO with "PATH: reason" (e.g. a truncated file) in err. */
int capture_next(struct capture *c, struct capture_pkt *p, struct egr_err *err);

void capture_close(struct capture *c);

/* libpcap's version string. */
const char *capture_lib_version(void);

#endif

/* capture.h - packet sources through libpcap: capture files (pcap and
 * pcapng, detected from the content; "-" is standard input) and live
 * interfaces (AF_PACKET with libpcap's TPACKET_V3 ring, optionally joined to
 * a fanout group so several captures share one interface by flow). Knows
 * nothing of decoding.
 *
 * A capture owns its pcap handle; the packet returned by capture_next() is
 * valid until the next call. A capture is used by one thread at a time.
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

/* How to open a live interface. */
struct capture_live_opts {
    const char *iface;
    const char *filter;   /* BPF expression, NULL or "" for none */
    int snaplen;          /* bytes kept per packet */
    int promisc;          /* 1: promiscuous mode */
    int buffer_mib;       /* kernel ring size in MiB; 0 = libpcap's default */
    int timeout_ms;       /* longest wait in capture_next() before it returns 0 */
    int fanout_group;     /* >= 0: join this PACKET_FANOUT group (hash by flow) */
};

/* Opens and activates a live capture. Needs CAP_NET_RAW (and CAP_NET_ADMIN
 * for promiscuous mode / fanout). Errors: EGR_EINVAL for a filter that does
 * not compile ("filter 'EXPR': reason") or an unsupported option, EGR_EIO
 * for anything else ("IFACE: reason"). */
int capture_open_live(const struct capture_live_opts *o, struct capture **out,
                      struct egr_err *err);

/* The kernel's counters of a live capture since it was opened, widened to
 * 64 bits (libpcap's are 32-bit and wrap): received, dropped because the
 * ring was full (ps_drop), dropped by the interface (ps_ifdrop). Call it from
 * the thread reading the capture, and often enough that a counter cannot
 * wrap twice between calls. All 0 for files. */
struct capture_stats {
    uint64_t recv, drop, ifdrop;
};
void capture_stats(struct capture *c, struct capture_stats *st);

/* The libpcap link type (DLT_*) of the source. */
int capture_datalink(const struct capture *c);
const char *capture_name(const struct capture *c);

/* Reads the next packet: returns 1 with *p filled, 0 at the end of a file
 * or when the read timeout of a live capture passed without a packet, or
 * EGR_EIO with "PATH: reason" (e.g. a truncated file, an interface that went
 * away) in err. */
int capture_next(struct capture *c, struct capture_pkt *p, struct egr_err *err);

void capture_close(struct capture *c);

/* libpcap's version string. */
const char *capture_lib_version(void);

#endif

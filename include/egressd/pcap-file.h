/* pcap-file.h - a classic-pcap capture file read in place through mmap(2):
 * no read(2) into a stdio buffer and no copy into libpcap's, the packet a
 * caller gets points into the mapping. Only what this reader can read exactly
 * as libpcap does is taken (classic pcap, microsecond or nanosecond magic,
 * either byte order, a link type whose LINKTYPE_ and DLT_ values agree);
 * anything else (pcapng, standard input, a pipe, the modified formats) is
 * left to libpcap (capture.h): pcap_file_open() then says PCAP_FILE_NOT_MINE.
 *
 * Timestamps: seconds are unsigned 32-bit (a classic-pcap header has no
 * sign, and reading them signed would end time in 2038); nanosecond files
 * are cut to microseconds as libpcap does.
 *
 * A pcap_file is read by one thread; several threads may each open the same
 * file (the page cache holds it once).
 */
#ifndef EGRESSD_PCAP_FILE_H
#define EGRESSD_PCAP_FILE_H

#include "egressd/capture.h"
#include "egressd/common.h"

struct pcap_file;

#define PCAP_FILE_NOT_MINE 1 /* pcap_file_open(): use libpcap for this one */

/* EGR_OK with *out, PCAP_FILE_NOT_MINE (nothing opened, err untouched), or
 * EGR_EIO with "PATH: cannot read capture: reason" (no such file, a header
 * cut short). */
int pcap_file_open(const char *path, struct pcap_file **out, struct egr_err *err);

/* The DLT_* link type. */
int pcap_file_datalink(const struct pcap_file *f);
const char *pcap_file_name(const struct pcap_file *f);

/* 1 with *p filled (valid until the next call), 0 at the end, EGR_EIO
 * with "PATH: reason" in err for a record cut short or a capture length
 * above the link type's maximum (libpcap's words, so the message does not
 * depend on the reader). */
int pcap_file_next(struct pcap_file *f, struct capture_pkt *p, struct egr_err *err);

void pcap_file_close(struct pcap_file *f);

#endif

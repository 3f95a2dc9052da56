/* fuzz_input.h - the input format shared by the packet fuzz targets and the
 * seed writer: byte 0 picks the link type from fuzz_dlts[], the rest is one
 * captured frame. */
#ifndef EGRESSD_FUZZ_INPUT_H
#define EGRESSD_FUZZ_INPUT_H

#include <pcap/dlt.h>

static const int fuzz_dlts[] = {DLT_EN10MB, DLT_LINUX_SLL, DLT_LINUX_SLL2, DLT_RAW,
                                DLT_NULL,   DLT_LOOP,      DLT_PPP,        DLT_IPV4,
                                DLT_IPV6,   101 /* LINKTYPE_RAW */, DLT_PPP_SERIAL,
                                DLT_C_HDLC};
#define FUZZ_NDLTS (sizeof(fuzz_dlts) / sizeof(fuzz_dlts[0]))

#endif

/* capture.c - libpcap packet sources (see include/egressd/capture.h).
 *
 * Files are opened with microsecond timestamp precision so nanosecond pcapng
 * captures are scaled by libpcap and all later time arithmetic is in us.
 */
#include "egressd/capture.h"

#include <pcap/pcap.h>
#include <stdlib.h>
#include <string.h>

struct capture {
    pcap_t *pcap;
    int dlt;
    char name[256];
};

int capture_open_file(const char *path, struct capture **out, struct egr_err *err)
{
    char ebuf[PCAP_ERRBUF_SIZE] = "";
    pcap_t *p = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_MICRO, ebuf);
    if (!p) {
        /* libpcap says "unknown file format" for data that is no capture. */
        return egr_fail(err, EGR_EIO, "%s: cannot read capture: %s",
                        strcmp(path, "-") ? path : "<stdin>", ebuf[0] ? ebuf : "unknown error");
    }
    struct capture *c = calloc(1, sizeof(*c));
    if (!c) {
        pcap_close(p);
        return egr_fail(err, EGR_ENOMEM, "%s: out of memory", path);
    }
    c->pcap = p;
    c->dlt = pcap_datalink(p);
    snprintf(c->name, sizeof(c->name), "%s", strcmp(path, "-") ? path : "<stdin>");
    *out = c;
    return EGR_OK;
}

int capture_datalink(const struct capture *c)
{
    return c->dlt;
}

const char *capture_name(const struct capture *c)
{
    return c->name;
}

int capture_next(struct capture *c, struct capture_pkt *p, struct egr_err *err)
{
    struct pcap_pkthdr *h;
    const u_char *data;
    int rc = pcap_next_ex(c->pcap, &h, &data);
    if (rc == 1) {
        p->data = data;
        p->caplen = h->caplen;
        p->wire_len = h->len < h->caplen ? h->caplen : h->len;
        /* Negative or absurd timestamps from broken files are clamped to 0. */
        p->ts_us = h->ts.tv_sec < 0 ? 0
                                    : (uint64_t)h->ts.tv_sec * 1000000ull +
                                          (uint64_t)(h->ts.tv_usec < 0 ? 0 : h->ts.tv_usec % 1000000);
        return 1;
    }
    if (rc == PCAP_ERROR_BREAK)
        return 0;
    return egr_fail(err, EGR_EIO, "%s: %s", c->name, pcap_geterr(c->pcap));
}

void capture_close(struct capture *c)
{
    if (!c)
        return;
    pcap_close(c->pcap);
    free(c);
}

const char *capture_lib_version(void)
{
    return pcap_lib_version();
}

/* capture.c - libpcap packet sources (see include/egressd/capture.h).
 *
 * Files are opened with microsecond timestamp precision so nanosecond pcapng
 * captures are scaled by libpcap and all later time arithmetic is in us.
 *
 * Live captures: libpcap on Linux uses a TPACKET_V3 ring unless immediate
 * mode is asked for; we keep the ring (blocks handed over in bulk, far fewer
 * wake-ups) and bound the latency with the read timeout instead (the kernel
 * retires a partly filled block after it). With TPACKET_V3 libpcap's own
 * blocking read waits without a timeout while the ring is empty, so the
 * handle is non-blocking and capture_next() poll()s its descriptor with the
 * timeout: the reading thread gets control back on a quiet link to expire
 * flows and to notice a stop request. Timestamps
 * are the kernel's, or the adapter's when the driver offers synchronised
 * hardware stamps, in nanoseconds when offered (scaled to us here). Several
 * captures of one interface can join a PACKET_FANOUT group with the kernel's
 * flow hash, which is symmetric, so both directions of a flow reach the same
 * capture; IP fragments are reassembled for the hash only (FLAG_DEFRAG) so
 * a fragmented datagram is not split either.
 */
#include "egressd/capture.h"

#include <linux/if_packet.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct capture {
    pcap_t *pcap;
    int dlt;
    int nano;                  /* timestamps in ns (live, when offered) */
    int live;
    int fd, timeout_ms;        /* live: poll()ed between non-blocking reads */
    uint32_t last_recv, last_drop, last_ifdrop; /* libpcap's 32-bit values */
    struct capture_stats st;   /* widened */
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

/* Prefers adapter timestamps synchronised to the system clock; anything
 * else the driver offers (unsynchronised adapter clocks) would break the
 * comparison with the wall clock that expires idle flows. */
static void pick_tstamp(pcap_t *p)
{
    int *types = NULL;
    int n = pcap_list_tstamp_types(p, &types);
    for (int i = 0; i < n; i++) {
        if (types[i] == PCAP_TSTAMP_ADAPTER) {
            pcap_set_tstamp_type(p, PCAP_TSTAMP_ADAPTER);
            break;
        }
    }
    if (n > 0)
        pcap_free_tstamp_types(types);
}

static int join_fanout(pcap_t *p, int group, const char *iface, struct egr_err *err)
{
    /* Group id in the low 16 bits, mode and flags in the high 16. */
    uint32_t val = ((uint32_t)group & 0xffffu) |
                   ((uint32_t)(PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG) << 16);
    if (setsockopt(pcap_fileno(p), SOL_PACKET, PACKET_FANOUT, &val, sizeof(val)) != 0)
        return egr_fail(err, EGR_EIO, "%s: cannot join fanout group %d: %m", iface, group);
    return EGR_OK;
}

int capture_open_live(const struct capture_live_opts *o, struct capture **out,
                      struct egr_err *err)
{
    char ebuf[PCAP_ERRBUF_SIZE] = "";
    pcap_t *p = pcap_create(o->iface, ebuf);
    if (!p)
        return egr_fail(err, EGR_EIO, "%s: %s", o->iface, ebuf);
    pcap_set_snaplen(p, o->snaplen);
    pcap_set_promisc(p, o->promisc);
    pcap_set_timeout(p, o->timeout_ms > 0 ? o->timeout_ms : 100);
    if (o->buffer_mib > 0)
        pcap_set_buffer_size(p, o->buffer_mib * 1024 * 1024);
    pick_tstamp(p);
    int nano = pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO) == 0;
    int rc = pcap_activate(p);
    if (rc < 0) {
        /* PCAP_ERROR carries its text in pcap_geterr; the others are codes. */
        const char *why = rc == PCAP_ERROR || rc == PCAP_ERROR_NO_SUCH_DEVICE ||
                                  rc == PCAP_ERROR_PERM_DENIED
                              ? pcap_geterr(p)
                              : pcap_statustostr(rc);
        if (!why[0])
            why = pcap_statustostr(rc);
        rc = egr_fail(err, EGR_EIO, "%s: cannot capture: %s", o->iface, why);
        pcap_close(p);
        return rc;
    }
    /* rc > 0 is a warning (promiscuous mode not supported, ...): carry on. */
    if (o->fanout_group >= 0 && join_fanout(p, o->fanout_group, o->iface, err) != EGR_OK) {
        pcap_close(p);
        return EGR_EIO;
    }
    if (o->filter && o->filter[0]) {
        struct bpf_program prog;
        if (pcap_compile(p, &prog, o->filter, 1, PCAP_NETMASK_UNKNOWN) != 0) {
            rc = egr_fail(err, EGR_EINVAL, "filter '%s': %s", o->filter, pcap_geterr(p));
            pcap_close(p);
            return rc;
        }
        rc = pcap_setfilter(p, &prog);
        pcap_freecode(&prog);
        if (rc != 0) {
            rc = egr_fail(err, EGR_EIO, "%s: filter '%s': %s", o->iface, o->filter,
                          pcap_geterr(p));
            pcap_close(p);
            return rc;
        }
    }
    int fd = pcap_get_selectable_fd(p);
    if (fd < 0 || pcap_setnonblock(p, 1, ebuf) != 0) {
        rc = egr_fail(err, EGR_EIO, "%s: cannot make the capture non-blocking: %s", o->iface,
                      fd < 0 ? "no selectable descriptor" : ebuf);
        pcap_close(p);
        return rc;
    }
    struct capture *c = calloc(1, sizeof(*c));
    if (!c) {
        pcap_close(p);
        return egr_fail(err, EGR_ENOMEM, "%s: out of memory", o->iface);
    }
    c->pcap = p;
    c->fd = fd;
    c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 100;
    c->dlt = pcap_datalink(p);
    c->nano = nano && pcap_get_tstamp_precision(p) == PCAP_TSTAMP_PRECISION_NANO;
    c->live = 1;
    snprintf(c->name, sizeof(c->name), "%s", o->iface);
    *out = c;
    return EGR_OK;
}

void capture_stats(struct capture *c, struct capture_stats *st)
{
    struct pcap_stat ps;
    if (c->live && pcap_stats(c->pcap, &ps) == 0) {
        /* Unsigned 32-bit differences stay right across one wrap. */
        c->st.recv += (uint32_t)(ps.ps_recv - c->last_recv);
        c->st.drop += (uint32_t)(ps.ps_drop - c->last_drop);
        c->st.ifdrop += (uint32_t)(ps.ps_ifdrop - c->last_ifdrop);
        c->last_recv = ps.ps_recv;
        c->last_drop = ps.ps_drop;
        c->last_ifdrop = ps.ps_ifdrop;
    }
    *st = c->st;
}

int capture_datalink(const struct capture *c)
{
    return c->dlt;
}

const char *capture_name(const struct capture *c)
{
    return c->name;
}

/* A classic pcap file stores seconds in 32 bits, which libpcap reads as
 * signed: from 2038-01-19T03:14:08Z on they come back negative. They are
 * unsigned in the format's practice (valid until 2106), so a negative value
 * in the 32-bit range is taken as such. pcapng's 64-bit times and the
 * kernel's never are negative; anything else negative is clamped to 0. */
static int64_t file_seconds(const struct capture *c, long long sec)
{
    if (sec >= 0)
        return sec;
    if (!c->live && sec >= INT32_MIN)
        return (int64_t)(uint32_t)(int32_t)sec;
    return 0;
}

int capture_next(struct capture *c, struct capture_pkt *p, struct egr_err *err)
{
    struct pcap_pkthdr *h;
    const u_char *data;
    int rc = pcap_next_ex(c->pcap, &h, &data);
    if (rc == 0 && c->live) {
        /* Nothing ready: wait once, at most the timeout. EINTR and the
         * timeout both come back as "no packet now". */
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        if (poll(&pfd, 1, c->timeout_ms) > 0)
            rc = pcap_next_ex(c->pcap, &h, &data);
    }
    if (rc == 1) {
        p->data = data;
        p->caplen = h->caplen;
        p->wire_len = h->len < h->caplen ? h->caplen : h->len;
        /* A file's fraction is unsigned 32-bit as its seconds are (libpcap
         * sign-extends both); the in-place reader (pcap-file.c) reads it so. */
        uint64_t frac = (uint32_t)h->ts.tv_usec;
        frac = c->nano ? frac % 1000000000u / 1000u : frac % 1000000u;
        p->ts_us = (uint64_t)file_seconds(c, h->ts.tv_sec) * 1000000ull + frac;
        return 1;
    }
    if (rc == PCAP_ERROR_BREAK || (rc == 0 && c->live))
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

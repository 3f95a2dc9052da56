/* pcap-file.c - classic-pcap files through mmap(2) (see pcap-file.h).
 *
 * libpcap reads a file with fread(3): the kernel copies each page into the
 * stdio buffer and libpcap copies each record again into its own. Here the
 * file is mapped and a packet is a pointer into the mapping, so replay pays
 * for page faults (read-ahead, MADV_SEQUENTIAL) and nothing else. The checks
 * on each record are libpcap 1.10's (sf-pcap.c), with its error words, so a
 * broken file ends the same way whichever reader took it.
 */
#include "egressd/pcap-file.h"

#include <errno.h>
#include <fcntl.h>
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC_US 0xa1b2c3d4u
#define MAGIC_NS 0xa1b23c4du
#define FILE_HDR 24u
#define REC_HDR 16u
#define MAX_SNAPLEN 262144u /* libpcap's MAXIMUM_SNAPLEN for the types below */
#define DROP_BYTES (1u << 20) /* unmap what was read in steps of this much */

struct pcap_file {
    const uint8_t *map;
    size_t size, off;
    size_t dropped; /* [0, dropped) is no longer mapped in */
    int swapped, nano, dlt;
    uint32_t snapshot;
    char name[1024];
};

static uint32_t rd32(const uint8_t *p, int swapped)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return swapped ? __builtin_bswap32(v) : v;
}

/* LINKTYPE_ value in the file -> DLT_ value, for the types whose mapping is
 * the identity or fixed on every platform; -1: leave the file to libpcap
 * (it knows the whole table and the FCS bits in the upper half). */
static int dlt_of(uint32_t lt)
{
    switch (lt) {
    case 0:   /* NULL */
    case 1:   /* EN10MB */
    case 113: /* LINUX_SLL */
    case 276: /* LINUX_SLL2 */
    case 228: /* IPV4 */
    case 229: /* IPV6 */
        return (int)lt;
    case 101: /* LINKTYPE_RAW */
        return DLT_RAW;
    default:
        return -1;
    }
}

int pcap_file_open(const char *path, struct pcap_file **out, struct egr_err *err)
{
    if (!strcmp(path, "-"))
        return PCAP_FILE_NOT_MINE;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return PCAP_FILE_NOT_MINE; /* libpcap words the error */
    struct stat st;
    uint8_t hdr[FILE_HDR];
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < (off_t)FILE_HDR ||
        pread(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr)) {
        close(fd);
        return PCAP_FILE_NOT_MINE;
    }
    uint32_t magic;
    memcpy(&magic, hdr, 4);
    int swapped = 0, nano = 0;
    if (magic == MAGIC_US || magic == MAGIC_NS) {
        nano = magic == MAGIC_NS;
    } else if (__builtin_bswap32(magic) == MAGIC_US || __builtin_bswap32(magic) == MAGIC_NS) {
        swapped = 1;
        nano = __builtin_bswap32(magic) == MAGIC_NS;
    } else {
        close(fd);
        return PCAP_FILE_NOT_MINE;
    }
    uint16_t major, minor;
    memcpy(&major, hdr + 4, 2);
    memcpy(&minor, hdr + 6, 2);
    if (swapped) {
        major = __builtin_bswap16(major);
        minor = __builtin_bswap16(minor);
    }
    int dlt = dlt_of(rd32(hdr + 20, swapped));
    /* Version 2.4 only: libpcap refuses minors above 4 and reads the length
     * fields of 2.0-2.3 files swapped (or perhaps swapped); those go to it. */
    /* A snapshot length above the link type's maximum: libpcap keeps it and
     * words its errors by it; such odd files go to libpcap too. */
    uint32_t snap = rd32(hdr + 16, swapped);
    if (major != 2 || minor != 4 || dlt < 0 || snap > MAX_SNAPLEN) {
        close(fd);
        return PCAP_FILE_NOT_MINE;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return PCAP_FILE_NOT_MINE;
    /* One pass front to back: aggressive read-ahead, pages dropped behind. */
    madvise(map, (size_t)st.st_size, MADV_SEQUENTIAL);
    struct pcap_file *f = calloc(1, sizeof(*f));
    if (!f) {
        munmap(map, (size_t)st.st_size);
        return egr_fail(err, EGR_ENOMEM, "%s: out of memory", path);
    }
    f->map = map;
    f->size = (size_t)st.st_size;
    f->off = FILE_HDR;
    f->swapped = swapped;
    f->nano = nano;
    f->dlt = dlt;
    /* libpcap: a snapshot length of 0 means the maximum. */
    f->snapshot = snap == 0 ? MAX_SNAPLEN : snap;
    snprintf(f->name, sizeof(f->name), "%s", path);
    *out = f;
    return EGR_OK;
}

int pcap_file_datalink(const struct pcap_file *f)
{
    return f->dlt;
}

const char *pcap_file_name(const struct pcap_file *f)
{
    return f->name;
}

int pcap_file_next(struct pcap_file *f, struct capture_pkt *p, struct egr_err *err)
{
    size_t left = f->size - f->off;
    if (left == 0)
        return 0;
    if (left < REC_HDR)
        return egr_fail(err, EGR_EIO,
                        "%s: truncated dump file; tried to read %u header bytes, only got %zu",
                        f->name, REC_HDR, left);
    if (f->off - f->dropped >= 2 * DROP_BYTES) {
        /* Pages behind the reader leave this process (they stay in the page
         * cache): otherwise a replay's resident size grows with the file. */
        size_t upto = (f->off - DROP_BYTES) & ~(size_t)(DROP_BYTES - 1);
        madvise((void *)(f->map + f->dropped), upto - f->dropped, MADV_DONTNEED);
        f->dropped = upto;
    }
    const uint8_t *h = f->map + f->off;
    uint32_t sec = rd32(h, f->swapped);
    uint32_t frac = rd32(h + 4, f->swapped);
    uint32_t caplen = rd32(h + 8, f->swapped);
    uint32_t len = rd32(h + 12, f->swapped);
    left -= REC_HDR;
    uint32_t keep = caplen;
    if (caplen > f->snapshot) {
        /* libpcap keeps the snapshot length's worth and skips the rest;
         * above the link type's maximum it gives up. */
        if (caplen > MAX_SNAPLEN)
            return egr_fail(err, EGR_EIO,
                            "%s: invalid packet capture length %u, bigger than snaplen of %u",
                            f->name, caplen, f->snapshot);
        keep = f->snapshot;
    }
    if (caplen > left)
        /* libpcap reads what it keeps first, then skips the rest: cut
         * inside the first part, it names that part's length. */
        return egr_fail(err, EGR_EIO,
                        "%s: truncated dump file; tried to read %u captured bytes, only got %zu",
                        f->name, left < keep ? keep : caplen, left);
    p->data = h + REC_HDR;
    p->caplen = keep;
    p->wire_len = len < keep ? keep : len;
    if (f->nano) {
        /* libpcap's scaling, on a long that is sign-extended from a file in
         * the host's byte order and not from a swapped one: a fraction no
         * valid file has (2^31 ns and up) still reads as through libpcap. */
        int64_t v = f->swapped ? (int64_t)frac : (int64_t)(int32_t)frac;
        frac = (uint32_t)(v / 1000);
    }
    p->ts_us = (uint64_t)sec * 1000000ull + frac % 1000000u;
    f->off += REC_HDR + caplen;
    return 1;
}

void pcap_file_close(struct pcap_file *f)
{
    if (!f)
        return;
    munmap((void *)f->map, f->size);
    free(f);
}

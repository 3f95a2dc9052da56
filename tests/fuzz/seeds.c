/* seeds.c - writes a libFuzzer seed corpus: one file per packet of each
 * capture given, in the fuzz_input.h format (link type index + frame).
 * Usage: fuzz-seeds OUTDIR MAX_PER_FILE CAPTURE... */
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_input.h"

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: fuzz-seeds OUTDIR MAX_PER_FILE CAPTURE...\n");
        return 2;
    }
    long max = strtol(argv[2], NULL, 10);
    unsigned long written = 0;
    for (int i = 3; i < argc; i++) {
        char eb[PCAP_ERRBUF_SIZE];
        pcap_t *p = pcap_open_offline(argv[i], eb);
        if (!p)
            continue; /* broken captures are fine: skip them */
        int dlt = pcap_datalink(p), idx = -1;
        for (unsigned k = 0; k < FUZZ_NDLTS; k++)
            if (fuzz_dlts[k] == dlt)
                idx = (int)k;
        struct pcap_pkthdr *h;
        const u_char *d;
        long n = 0;
        while (idx >= 0 && n < max && pcap_next_ex(p, &h, &d) == 1) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/seed-%d-%ld", argv[1], i, n++);
            FILE *f = fopen(path, "wb");
            if (!f) {
                perror(path);
                return 1;
            }
            unsigned char b = (unsigned char)idx;
            fwrite(&b, 1, 1, f);
            fwrite(d, 1, h->caplen, f);
            fclose(f);
            written++;
        }
        pcap_close(p);
    }
    printf("%lu seeds\n", written);
    return 0;
}

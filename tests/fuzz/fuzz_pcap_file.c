/* fuzz_pcap_file.c - libFuzzer target: the in-place classic-pcap reader
 * (pcap-file.c) on arbitrary file bytes, checked against libpcap itself.
 *
 * Captures handed to a replay come from anywhere, so the file header and
 * every record header are attacker-controlled. The input is written as a
 * file and read twice: by pcap_file (mmap) and by the libpcap path
 * (capture.c) that reads every other format. Where pcap_file takes the file,
 * both must deliver the same packets (lengths, bytes, time) and stop at the
 * same record, with the same message: a replay's result must not depend on
 * which reader took the file. Besides that, the sanitizers watch every read
 * from the mapping.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "egressd/capture.h"
#include "egressd/pcap-file.h"

#define CHECK(c)        \
    do {                \
        if (!(c))       \
            abort();    \
    } while (0)

static char g_path[64];

static void cleanup(void)
{
    unlink(g_path);
}

static void setup(void)
{
    snprintf(g_path, sizeof(g_path), "/tmp/fuzz-pcap-XXXXXX");
    int fd = mkstemp(g_path);
    CHECK(fd >= 0);
    close(fd);
    atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_path[0])
        setup();
    FILE *f = fopen(g_path, "wb");
    CHECK(f != NULL);
    CHECK(fwrite(data, 1, size, f) == size || size == 0);
    CHECK(fclose(f) == 0);

    struct egr_err err = {""};
    struct pcap_file *pf = NULL;
    int rc = pcap_file_open(g_path, &pf, &err);
    if (rc == PCAP_FILE_NOT_MINE)
        return 0;
    if (rc != EGR_OK) {
        CHECK(err.msg[0] != '\0');
        return 0;
    }
    struct capture *cap = NULL;
    struct egr_err cerr = {""};
    /* pcap_file takes only what libpcap reads too. */
    CHECK(capture_open_file(g_path, &cap, &cerr) == EGR_OK);
    CHECK(capture_datalink(cap) == pcap_file_datalink(pf));
    for (;;) {
        struct capture_pkt p, q;
        int n = pcap_file_next(pf, &p, &err);
        int m = capture_next(cap, &q, &cerr);
        CHECK(n == m);
        if (n != 1) {
            if (n != 0)
                CHECK(err.msg[0] != '\0' && strcmp(err.msg, cerr.msg) == 0);
            break;
        }
        CHECK(p.caplen == q.caplen && p.wire_len == q.wire_len && p.ts_us == q.ts_us);
        CHECK(memcmp(p.data, q.data, p.caplen) == 0);
    }
    capture_close(cap);
    pcap_file_close(pf);
    return 0;
}

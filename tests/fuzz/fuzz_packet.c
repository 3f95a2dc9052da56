/* fuzz_packet.c - libFuzzer target: one packet through decode -> flow table
 * -> nDPI classification (with the JA3 string and DNS answers taken on the
 * way) -> EVE formatting of every event of a record, the whole per-packet path.
 *
 * The worker persists across inputs (as in a real run) with a small flow cap
 * so eviction, expiry and nDPI state reuse are exercised; every 64 inputs the
 * table is flushed so records are formatted too. Input format: fuzz_input.h.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "egressd/config.h"
#include "egressd/eve.h"
#include "egressd/json.h"
#include "egressd/worker.h"
#include "fuzz_input.h"

static struct worker *g_worker;
static struct jbuf g_jb;
static uint64_t g_ts = 1700000000ull * 1000000ull;
static unsigned g_count;

static void emit(void *arg, struct flow_record *rec)
{
    (void)arg;
    /* Every event of the record: its dns events read the names and
     * answers taken from the packets. */
    unsigned n = eve_record_events(rec);
    for (unsigned i = 0; i < n; i++) {
        jbuf_reset(&g_jb);
        eve_format_record_event(&g_jb, rec, i);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_worker) {
        struct egr_config cfg;
        struct egr_err err;
        config_defaults(&cfg);
        cfg.flow.max_flows = 64;
        cfg.flow.active_timeout = 5;
        jbuf_init(&g_jb);
        if (worker_new(&cfg, emit, NULL, &g_worker, &err) != EGR_OK)
            abort();
    }
    if (size < 1)
        return 0;
    int dlt = fuzz_dlts[data[0] % FUZZ_NDLTS];
    /* The frame lives in its own heap block so ASan sees any overread. */
    size_t n = size - 1;
    uint8_t *frame = malloc(n ? n : 1);
    if (!frame)
        return 0;
    memcpy(frame, data + 1, n);
    struct capture_pkt p = {.data = frame, .caplen = (uint32_t)n,
                            .wire_len = (uint32_t)n + (data[0] >> 4), .ts_us = g_ts};
    g_ts += 250000 + (uint64_t)(data[0] & 0x0f) * 1000000ull;
    worker_packet(g_worker, dlt, &p);
    free(frame);
    if (++g_count % 64 == 0)
        worker_flush(g_worker, END_SHUTDOWN);
    return 0;
}

/* fuzz_packet.c - libFuzzer target: one packet through decode -> flow table
 * -> nDPI classification (with the JA3 string and DNS answers taken on the
 * way) -> the policy stage (judge) -> EVE formatting of every event of a
 * record, the whole per-packet path.
 *
 * The worker persists across inputs (as in a real run) with a small flow cap
 * so eviction, expiry and nDPI state reuse are exercised, under a policy
 * whose rules wait for names and nDPI (so flows stay open, are decided at
 * names, classification, the bound and records) with risk and volume
 * checks; every 64 inputs the table is flushed so records are formatted too.
 * Output goes to /dev/null. Input format: fuzz_input.h.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>
#include <unistd.h>

#include "egressd/config.h"
#include "egressd/sensor.h"
#include "egressd/worker.h"
#include "fuzz_input.h"

static struct sensor *g_sensor;
static struct worker *g_worker;
static uint64_t g_ts = 1700000000ull * 1000000ull;
static unsigned g_count;

static const char policy_yaml[] =
    "home_net: [10.0.0.0/8, 192.168.0.0/16, 172.16.0.0/12, \"fd00::/8\"]\n"
    "default_role: infra\n"
    "roles:\n"
    "  infra:\n"
    "    mode: deny\n"
    "    allow:\n"
    "      - {domain: [\"*.example.com\"], proto: tcp, port: [443, 80]}\n"
    "      - {ndpi: [DNS, NTP], proto: udp}\n"
    "      - {cidr: [8.8.8.0/24]}\n"
    "alerts: {risks: [\"Known Protocol on Non Standard Port\"], max_per_second: 0}\n"
    "exfiltration: {window: 60, bytes: 100000}\n";

static void start(void)
{
    char path[] = "/tmp/fuzz-packet-XXXXXX.yaml";
    int fd = mkstemps(path, 5);
    if (fd < 0 || write(fd, policy_yaml, sizeof(policy_yaml) - 1) < 0)
        abort();
    close(fd);
    struct egr_config cfg;
    struct egr_err err;
    config_defaults(&cfg);
    if (config_load(&cfg, path, &err) != EGR_OK) {
        fprintf(stderr, "%s\n", err.msg);
        abort();
    }
    unlink(path);
    cfg.flow.max_flows = 64;
    cfg.flow.active_timeout = 5;
    cfg.geo.country_db[0] = cfg.geo.asn_db[0] = '\0';
    if (sensor_open(&cfg, "/dev/null", "fuzz", &g_sensor, &err) != EGR_OK ||
        worker_new(&cfg, g_sensor, &g_worker, &err) != EGR_OK) {
        fprintf(stderr, "%s\n", err.msg);
        abort();
    }
    config_free(&cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_worker)
        start();
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
    if (++g_count % 64 == 0) {
        worker_flush(g_worker, END_SHUTDOWN);
        worker_output_tick(g_worker, 1);
    }
    return 0;
}

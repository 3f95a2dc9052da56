/* sensor-scale.c - how the sensor side scales with workers: N threads, each
 * with its own worker (decode, flow table, nDPI, judge, writers) and one
 * shared sensor (policy, alert state, sinks), each replaying the same
 * capture from memory as fast as it can. Prints one line:
 *
 *   workers packets records alerts seconds
 *
 * with packets and records summed over the workers and seconds of wall time
 * from the start barrier to the last worker's records handed to the sinks.
 * Every worker sees the same packets, so they hold the same flows in their
 * own tables and raise alerts on the same keys: the shared alert state gets
 * the worst case of contention, and each worker's work is identical, so
 * with enough cores N workers would take as long as one.
 *
 * Usage: sensor-scale CONFIG.yaml|- CAPTURE N [JSON_OUT [REDIS_URL]]
 * Built and run by bench/workers.sh against the release build's libraries.
 */
#include <pcap/pcap.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "egressd/capture.h"
#include "egressd/config.h"
#include "egressd/sensor.h"
#include "egressd/worker.h"

struct frame {
    uint32_t off, caplen, wire_len;
    uint64_t ts_us;
};

static uint8_t *g_bytes;
static struct frame *g_frames;
static size_t g_nframes;
static int g_dlt;
static struct egr_config g_cfg;
static struct sensor *g_sensor;
static pthread_barrier_t g_start;

struct job {
    pthread_t tid;
    struct run_stats st;
    int rc;
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int load(const char *path)
{
    char eb[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline(path, eb);
    if (!p) {
        fprintf(stderr, "sensor-scale: %s\n", eb);
        return -1;
    }
    g_dlt = pcap_datalink(p);
    size_t cap = 1 << 20, used = 0, fcap = 1 << 16;
    g_bytes = malloc(cap);
    g_frames = malloc(fcap * sizeof(*g_frames));
    struct pcap_pkthdr *h;
    const u_char *d;
    while (pcap_next_ex(p, &h, &d) == 1) {
        if (used + h->caplen > cap) {
            while (used + h->caplen > cap)
                cap *= 2;
            g_bytes = realloc(g_bytes, cap);
        }
        if (g_nframes == fcap)
            g_frames = realloc(g_frames, (fcap *= 2) * sizeof(*g_frames));
        if (!g_bytes || !g_frames) {
            fprintf(stderr, "sensor-scale: out of memory\n");
            return -1;
        }
        memcpy(g_bytes + used, d, h->caplen);
        g_frames[g_nframes++] = (struct frame){(uint32_t)used, h->caplen, h->len,
                                               (uint64_t)h->ts.tv_sec * 1000000u +
                                                   (uint64_t)h->ts.tv_usec};
        used += h->caplen;
    }
    pcap_close(p);
    return 0;
}

static void *run(void *arg)
{
    struct job *j = arg;
    struct worker *w;
    struct egr_err err;
    j->rc = worker_new(&g_cfg, g_sensor, &w, &err);
    pthread_barrier_wait(&g_start);
    if (j->rc != EGR_OK) {
        fprintf(stderr, "sensor-scale: %s\n", err.msg);
        return NULL;
    }
    for (size_t i = 0; i < g_nframes; i++) {
        const struct frame *f = &g_frames[i];
        struct capture_pkt p = {.data = g_bytes + f->off, .caplen = f->caplen,
                                .wire_len = f->wire_len, .ts_us = f->ts_us};
        worker_packet(w, g_dlt, &p);
        if ((i & 1023) == 0)
            worker_output_tick(w, 0);
    }
    worker_flush(w, END_SHUTDOWN);
    worker_stats(w, &j->st);
    worker_free(w);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: sensor-scale CONFIG.yaml|- CAPTURE N [JSON_OUT [REDIS_URL]]\n");
        return 2;
    }
    int n = atoi(argv[3]);
    if (n < 1 || n > 64) {
        fprintf(stderr, "sensor-scale: N must be 1..64\n");
        return 2;
    }
    struct egr_err err;
    config_defaults(&g_cfg);
    if (strcmp(argv[1], "-") && config_load(&g_cfg, argv[1], &err) != EGR_OK) {
        fprintf(stderr, "sensor-scale: %s\n", err.msg);
        return 2;
    }
    config_resolve_geo(&g_cfg);
    if (argc > 5)
        snprintf(g_cfg.redis.url, sizeof(g_cfg.redis.url), "%s", argv[5]);
    if (load(argv[2]) != 0)
        return 1;
    if (sensor_open(&g_cfg, argc > 4 ? argv[4] : "/dev/null", "bench", &g_sensor, &err) != EGR_OK) {
        fprintf(stderr, "sensor-scale: %s\n", err.msg);
        return 1;
    }
    struct job *jobs = calloc((size_t)n, sizeof(*jobs));
    pthread_barrier_init(&g_start, NULL, (unsigned)n + 1);
    for (int i = 0; i < n; i++)
        pthread_create(&jobs[i].tid, NULL, run, &jobs[i]);
    pthread_barrier_wait(&g_start);
    double t0 = now_s();
    struct run_stats total;
    memset(&total, 0, sizeof(total));
    uint64_t records = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(jobs[i].tid, NULL);
        total.packets += jobs[i].st.packets;
        for (unsigned r = 0; r < END_REASON_MAX; r++)
            records += jobs[i].st.flow.records[r];
    }
    double t1 = now_s();
    struct run_stats st;
    memset(&st, 0, sizeof(st));
    int rc = sensor_finish(g_sensor, &st, &err);
    printf("%d %llu %llu %llu %.3f\n", n, (unsigned long long)total.packets,
           (unsigned long long)records, (unsigned long long)st.alerts, t1 - t0);
    free(jobs);
    free(g_frames);
    free(g_bytes);
    config_free(&g_cfg);
    return rc == EGR_OK ? 0 : 1;
}

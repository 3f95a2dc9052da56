/* main.c - the egressd command line: parse options, load the configuration,
 * wire capture -> worker -> sinks, replay the inputs or capture live
 * (live.c), report.
 *
 * Exit status: 0 everything read, 1 a runtime failure (an input that could
 * not be read to its end, an output that could not be written), 2 a usage or
 * configuration error.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "egressd/capture.h"
#include "egressd/classify.h"
#include "egressd/config.h"
#include "egressd/decode.h"
#include "egressd/geo.h"
#include "egressd/live.h"
#include "egressd/policy.h"
#include "egressd/privs.h"
#include "egressd/replay.h"
#include "egressd/sensor.h"
#include "egressd/sink.h"
#include "egressd/worker.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

static void usage(FILE *to)
{
    fprintf(to,
            "Usage: egressd -r FILE [-r FILE...] [--workers N] [--json PATH] [-c CONFIG]\n"
            "       egressd -i IFACE [-i IFACE...] [-u USER] [live options] [--json PATH]\n"
            "               [-c CONFIG]\n"
            "       egressd -c CONFIG --check-config\n"
            "\n"
            "Replays capture files (pcap or pcapng; '-' reads standard input) or captures\n"
            "from interfaces, tracks bidirectional flows, classifies them with nDPI and\n"
            "writes one EVE-style JSON record per flow, then a final stats event.\n"
            "\n"
            "  -r, --read FILE      capture to replay (repeatable, read in order)\n"
            "      --workers N      with -r: N threads replay side by side, each tracking the\n"
            "                       flows of its share of host pairs (default 1, at most 64;\n"
            "                       not with '-r -')\n"
            "  -i, --interface IF   capture live from IF (repeatable; not with -r)\n"
            "  -j, --json PATH      write JSON lines to PATH ('-' = stdout, the default)\n"
            "  -c, --config FILE    YAML configuration (see docs/configuration.md)\n"
            "      --redis URL      also write to Redis: redis://[user:password@]host[:port][/db]\n"
            "                       or unix:///path (overrides redis.url; docs/redis-schema.md)\n"
            "      --check-config   validate the configuration and exit\n"
            "  -h, --help           this text\n"
            "  -V, --version        versions of egressd, nDPI and libpcap\n"
            "\n"
            "Live capture (docs/live.md):\n"
            "  -f, --filter EXPR    BPF filter (tcpdump syntax)\n"
            "  -s, --snaplen BYTES  bytes kept per packet (default 262144)\n"
            "  -B, --buffer MIB     kernel capture ring per worker (default: libpcap's)\n"
            "      --no-promisc     do not put the interfaces in promiscuous mode\n"
            "      --workers N      with -i: capture threads per interface, sharing it by\n"
            "                       flow through an AF_PACKET fanout group\n"
            "  -u, --user USER      after opening the interfaces, become USER and drop every\n"
            "                       capability (started as a user with CAP_NET_RAW and\n"
            "                       CAP_NET_ADMIN, egressd drops them without -u)\n"
            "      --allow-root     keep running as root without -u\n"
            "      --stats-interval SECS  write a stats event every SECS seconds (default 60,\n"
            "                       0 = only on SIGUSR1 and at the end)\n"
            "      --metrics [HOST:]PORT  serve /metrics (Prometheus) and /healthz over HTTP\n"
            "                       (HOST defaults to 127.0.0.1)\n"
            "      --log FILE       append diagnostics to FILE instead of standard error\n"
            "\n"
            "Signals: SIGHUP reloads the policy, inventory and intel lists of -c CONFIG;\n"
            "SIGUSR1 writes a stats event now; SIGINT/SIGTERM stop reading, end every\n"
            "flow with reason \"shutdown\" and exit as after the end of the input (live:\n"
            "every worker flushes its flows, exit 0).\n"
            "\n"
            "Exit status: 0 ok, 1 runtime failure (unreadable or truncated input,\n"
            "output error), 2 usage or configuration error.\n");
}

/* Signals only set flags; the replay loop acts on them between packets,
 * where no lock is held and no record is half written. */
static volatile sig_atomic_t sig_stop, sig_reload, sig_stats;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        sig_reload = 1;
    else if (sig == SIGUSR1)
        sig_stats = 1;
    else
        sig_stop = 1;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* SIGHUP and SIGUSR1 must not break a blocking read of the capture (a
     * pipe on stdin): restart it. SIGINT/SIGTERM should interrupt it. */
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_flags = 0;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* What a reload re-reads; the run's other settings came from the command
 * line and stay. */
struct run_ctl {
    const char *config_path;
    struct sensor *sensor;
    struct worker *worker;
    const struct run_stats *run; /* inputs so far */
};

/* SIGHUP: load the configuration file again and put its policy, inventory
 * and intel lists in force. The file is parsed and built on the sensor's
 * reload thread; the packet loop swaps the result in between packets
 * (sensor_reload_poll). A file that does not load is reported and the
 * policy in force stays; flow state is never touched. */
static void reload_config(const struct run_ctl *ctl)
{
    /* The output file first, whatever the configuration says: logrotate
     * moved it and the next records belong to a new one. */
    struct egr_err rerr = {""};
    if (sensor_reopen(ctl->sensor, &rerr) != EGR_OK)
        fprintf(stderr, "egressd: %s\n", rerr.msg);
    if (!ctl->config_path) {
        fprintf(stderr, "egressd: SIGHUP: output reopened; no configuration file (-c) to reload\n");
        return;
    }
    struct egr_err err = {""};
    if (sensor_reload_start(ctl->sensor, ctl->config_path, &err) != EGR_OK)
        fprintf(stderr, "egressd: reload failed, the configuration in force stays: %s\n", err.msg);
}

static void handle_signals(const struct run_ctl *ctl)
{
    if (sig_reload) {
        sig_reload = 0;
        reload_config(ctl);
    }
    if (sig_stats) {
        sig_stats = 0;
        struct run_stats st;
        memset(&st, 0, sizeof(st));
        st.inputs = ctl->run->inputs;
        st.input_errors = ctl->run->input_errors;
        worker_stats(ctl->worker, &st);
        sensor_stats(ctl->sensor, &st);
        sensor_write_stats(ctl->sensor, &st);
    }
}

/* Replays one file through the worker. Returns EGR_OK when the file was read
 * to its end; on failure err says why (everything before the fault has been
 * processed). */
static int replay_file(const struct run_ctl *ctl, const char *path, struct egr_err *err)
{
    struct worker *w = ctl->worker;
    struct sensor *s = ctl->sensor;
    struct replay_src *c;
    int rc = replay_src_open(path, &c, err);
    if (rc != EGR_OK)
        return rc;
    int dlt = replay_src_datalink(c);
    struct capture_pkt p;
    uint64_t n = 0;
    for (;;) {
        /* Before the read, so a stop that arrived while a packet was being
         * processed is seen before blocking on a quiet pipe. */
        if (sig_stop | sig_reload | sig_stats) {
            if (sig_stop)
                break;
            handle_signals(ctl);
        }
        if ((rc = replay_src_next(c, &p, err)) != 1)
            break;
        sensor_reload_poll(s);
        worker_packet(w, dlt, &p);
        if ((++n & 1023) == 0) {
            if ((n & 65535) == 0) {
                /* Counters for the Redis heartbeat of a long replay. */
                struct run_stats st;
                memset(&st, 0, sizeof(st));
                worker_stats(w, &st);
                sensor_progress(s, &st);
            }
            worker_output_tick(w, 0);
            sensor_poll(s);
            if (sensor_failed(s))
                break;
        }
    }
    replay_src_close(c);
    /* A read interrupted by SIGINT/SIGTERM is the stop asked for, not a
     * broken input. */
    return rc < 0 && !sig_stop ? rc : EGR_OK;
}

static void print_error(void *arg, const char *msg)
{
    (void)arg;
    fprintf(stderr, "egressd: %s\n", msg);
}

/* -r with --workers N: the workers run on their own threads (replay.h);
 * this thread acts on signals, polls the sensor and feeds the heartbeat
 * until they are done. Returns the exit status. */
static int replay_shared(const struct egr_config *cfg, const char *config_path,
                         struct sensor *s, const char *const *inputs, size_t ninputs,
                         unsigned n, struct run_stats *st)
{
    struct egr_err err = {""};
    struct replay_par *rp;
    if (replay_par_start(cfg, s, inputs, ninputs, n, &rp, &err) != EGR_OK) {
        fprintf(stderr, "egressd: %s\n", err.msg);
        return EXIT_RUNTIME;
    }
    struct run_ctl ctl = {config_path, s, NULL, st};
    uint64_t next_progress = 0;
    while (!replay_par_wait(rp, 50)) {
        if (sig_stop || sensor_failed(s))
            replay_par_stop(rp);
        if (sig_reload) {
            sig_reload = 0;
            reload_config(&ctl);
        }
        uint64_t now = egr_mono_us();
        if (sig_stats || now >= next_progress) {
            struct run_stats snap;
            memset(&snap, 0, sizeof(snap));
            replay_par_stats(rp, &snap);
            if (sig_stats) {
                sig_stats = 0;
                snap.inputs = ninputs;
                sensor_stats(s, &snap);
                sensor_write_stats(s, &snap);
            } else {
                /* Counters for the Redis heartbeat of a long replay. */
                sensor_progress(s, &snap);
            }
            next_progress = now + 1000000u;
        }
        sensor_poll(s);
    }
    size_t nerr = replay_par_finish(rp, st, print_error, NULL);
    return nerr ? EXIT_RUNTIME : 0;
}

static void live_reload(void *arg)
{
    reload_config(arg);
}

/* A configuration error found while building what the configuration names
 * (an intel list, the baseline, a GeoIP database): one line, with the
 * configuration's path in front unless the message has it already. */
static void config_fail(const char *config_path, const struct egr_err *err)
{
    if (config_path && strncmp(err->msg, config_path, strlen(config_path)) != 0)
        fprintf(stderr, "egressd: %s: %s\n", config_path, err->msg);
    else
        fprintf(stderr, "egressd: %s\n", err->msg);
}

/* What a run builds from the configuration, built once and dropped: the
 * GeoIP databases and, for --check-config, the policy (intel lists, the
 * baseline; a run builds it in sensor_open(), before any output). So the
 * check and the run refuse the same configurations, with exit status 2. */
static int check_built(const struct egr_config *cfg, const char *config_path, int policy)
{
    struct egr_err err = {""};
    struct geo *geo = NULL;
    struct policy *pol = NULL;
    int rc = geo_open(&cfg->geo, &geo, &err);
    if (rc == EGR_OK && policy)
        rc = policy_new(&cfg->policy, &pol, &err);
    policy_free(pol);
    geo_free(geo);
    if (rc != EGR_OK)
        config_fail(config_path, &err);
    return rc;
}

/* A whole decimal number in [lo, hi], or -1. */
static long parse_num(const char *s, long lo, long hi)
{
    char *end;
    long v = strtol(s, &end, 10);
    return *s && !*end && v >= lo && v <= hi ? v : -1;
}

/* The live run: captures opened as root, privileges dropped, then the
 * worker threads and the control loop. Returns the exit status. */
static int run_live(struct live_opts *lo, const char *user, struct egr_config *cfg,
                    const char *config_path, const char *json_path)
{
    struct egr_err err = {""};
    struct live *l = NULL;
    int rc = geteuid() != 0 ? privs_raise_caps(&err) : EGR_OK;
    if (rc == EGR_OK)
        rc = live_open(lo, &l, &err);
    /* Privileges go right after the captures and the metrics socket are
     * open, while this is the only thread (capabilities are per thread, and
     * the sensor's Redis thread is yet to start). Outputs are therefore
     * opened as the unprivileged user, as they are on every SIGHUP reopen. */
    if (rc == EGR_OK) {
        if (user)
            rc = privs_drop(user, &err);
        else if (geteuid() != 0)
            rc = privs_drop_caps(&err);
    }
    if (rc != EGR_OK) {
        fprintf(stderr, "egressd: %s\n", err.msg);
        live_free(l);
        return rc == EGR_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
    }
    char source[1200];
    snprintf(source, sizeof(source), "interface %s%s", lo->ifaces[0], lo->nifaces > 1 ? " ..." : "");
    struct sensor *sensor;
    if ((rc = sensor_open(cfg, json_path, source, &sensor, &err)) != EGR_OK) {
        if (rc == EGR_EINVAL)
            config_fail(config_path, &err);
        else
            fprintf(stderr, "egressd: %s\n", err.msg);
        live_free(l);
        return rc == EGR_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
    }
    struct run_stats st;
    memset(&st, 0, sizeof(st));
    int status = 0;
    if ((rc = live_attach(l, cfg, sensor, &err)) != EGR_OK) {
        fprintf(stderr, "egressd: %s\n", err.msg);
        status = rc == EGR_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
    } else if (!sig_stop) {
        /* A stop asked for while starting up (before the event loop watches
         * the signals) ends the run before it begins. */
        struct run_ctl ctl = {config_path, sensor, NULL, &st};
        if (live_run(l, live_reload, &ctl, &st, &err) != EGR_OK) {
            fprintf(stderr, "egressd: %s\n", err.msg);
            status = EXIT_RUNTIME;
        }
    }
    live_free(l);
    if (sensor_finish(sensor, &st, &err) != EGR_OK) {
        fprintf(stderr, "egressd: %s\n", err.msg);
        if (!status)
            status = EXIT_RUNTIME;
    }
    return status;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"read", required_argument, NULL, 'r'},
        {"json", required_argument, NULL, 'j'},
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'C'},
        {"redis", required_argument, NULL, 'R'},
        {"interface", required_argument, NULL, 'i'},
        {"filter", required_argument, NULL, 'f'},
        {"snaplen", required_argument, NULL, 's'},
        {"buffer", required_argument, NULL, 'B'},
        {"no-promisc", no_argument, NULL, 'P'},
        {"workers", required_argument, NULL, 'W'},
        {"user", required_argument, NULL, 'u'},
        {"allow-root", no_argument, NULL, 'A'},
        {"stats-interval", required_argument, NULL, 'S'},
        {"metrics", required_argument, NULL, 'M'},
        {"log", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char **inputs = calloc((size_t)argc + 1, sizeof(*inputs));
    const char **ifaces = calloc((size_t)argc + 1, sizeof(*ifaces));
    if (!inputs || !ifaces) {
        free(inputs);
        free(ifaces);
        return EXIT_RUNTIME;
    }
    size_t ninputs = 0, nifaces = 0;
    const char *json_path = NULL, *config_path = NULL, *redis_url = NULL;
    const char *user = NULL, *log_path = NULL, *live_only = NULL;
    struct live_opts lo = {.snaplen = 262144, .promisc = 1, .workers = 1, .stats_interval = 60};
    int check_only = 0, allow_root = 0, opt;
    long v;

    while ((opt = getopt_long(argc, argv, "r:j:c:i:f:s:B:u:hV", opts, NULL)) != -1) {
        const char *bad = NULL;
        switch (opt) {
        case 'r':
            inputs[ninputs++] = optarg;
            break;
        case 'i':
            ifaces[nifaces++] = optarg;
            break;
        case 'f':
            lo.filter = optarg;
            live_only = "-f";
            break;
        case 's':
            if ((v = parse_num(optarg, 64, 262144)) < 0)
                bad = "-s wants a snap length of 64 to 262144 bytes";
            lo.snaplen = (int)v;
            live_only = "-s";
            break;
        case 'B':
            if ((v = parse_num(optarg, 1, 4096)) < 0)
                bad = "-B wants a buffer size of 1 to 4096 MiB";
            lo.buffer_mib = (int)v;
            live_only = "-B";
            break;
        case 'P':
            lo.promisc = 0;
            live_only = "--no-promisc";
            break;
        case 'W':
            if ((v = parse_num(optarg, 1, 64)) < 0)
                bad = "--workers wants 1 to 64";
            lo.workers = (unsigned)v;
            break;
        case 'u':
            user = optarg;
            live_only = "-u";
            break;
        case 'A':
            allow_root = 1;
            break;
        case 'S':
            if ((v = parse_num(optarg, 0, 86400)) < 0)
                bad = "--stats-interval wants 0 to 86400 seconds";
            lo.stats_interval = (unsigned)v;
            live_only = "--stats-interval";
            break;
        case 'M':
            lo.metrics = optarg;
            live_only = "--metrics";
            break;
        case 'L':
            log_path = optarg;
            break;
        case 'j':
            json_path = optarg;
            break;
        case 'c':
            config_path = optarg;
            break;
        case 'C':
            check_only = 1;
            break;
        case 'R':
            redis_url = optarg;
            break;
        case 'h':
            usage(stdout);
            free(inputs);
            free(ifaces);
            return 0;
        case 'V':
            printf("egressd %s\nnDPI %s\n%s\n", EGRESSD_VERSION, classify_ndpi_version(),
                   capture_lib_version());
            free(inputs);
            free(ifaces);
            return 0;
        default:
            usage(stderr);
            free(inputs);
            free(ifaces);
            return EXIT_USAGE;
        }
        if (bad) {
            fprintf(stderr, "egressd: %s, not '%s'\n", bad, optarg);
            free(inputs);
            free(ifaces);
            return EXIT_USAGE;
        }
    }
    const char *usage_error = NULL;
    if (ninputs && nifaces)
        usage_error = "-r and -i do not go together: replay files or capture live";
    else if (live_only && !nifaces)
        usage_error = "live-capture options (-f, -s, -B, -u, --metrics, --no-promisc, "
                      "--stats-interval) "
                      "need -i IFACE";
    else if (nifaces && geteuid() == 0 && !user && !allow_root)
        usage_error = "refusing to capture as root: give -u USER to drop privileges once the "
                      "interfaces are open, or --allow-root";
    if (usage_error) {
        fprintf(stderr, "egressd: %s\n", usage_error);
        free(inputs);
        free(ifaces);
        return EXIT_USAGE;
    }
    if (log_path && !freopen(log_path, "a", stderr)) {
        /* stderr is gone with the failed freopen: say it on stdout. */
        printf("egressd: --log %s: cannot open\n", log_path);
        free(inputs);
        free(ifaces);
        return EXIT_USAGE;
    }
    if (log_path)
        setvbuf(stderr, NULL, _IOLBF, 0);
    if (optind < argc) {
        fprintf(stderr, "egressd: unexpected argument '%s' (captures are given with -r)\n",
                argv[optind]);
        free(inputs);
        free(ifaces);
        return EXIT_USAGE;
    }

    /* Early: a signal that arrives while the sensor starts is acted on at
     * the first packet instead of killing it. */
    install_signals();
    struct egr_config cfg;
    struct egr_err err = {""};
    config_defaults(&cfg);
    if (config_path && config_load(&cfg, config_path, &err) != EGR_OK) {
        fprintf(stderr, "egressd: %s\n", err.msg);
        free(inputs);
        free(ifaces);
        return EXIT_USAGE;
    }
    config_resolve_geo(&cfg);
    if (redis_url) {
        snprintf(cfg.redis.url, sizeof(cfg.redis.url), "%s", redis_url);
        if (config_check_redis(&cfg.redis, "--redis", &err) != EGR_OK) {
            fprintf(stderr, "egressd: %s\n", err.msg);
            free(inputs);
            free(ifaces);
            config_free(&cfg);
            return EXIT_USAGE;
        }
    }
    if (check_only) {
        if (!config_path) {
            fprintf(stderr, "egressd: --check-config needs -c CONFIG\n");
            free(inputs);
            free(ifaces);
            return EXIT_USAGE;
        }
        if (check_built(&cfg, config_path, 1) != EGR_OK) {
            free(inputs);
            free(ifaces);
            config_free(&cfg);
            return EXIT_USAGE;
        }
        printf("%s: configuration OK\n", config_path);
        free(inputs);
        free(ifaces);
        config_free(&cfg);
        return 0;
    }
    if (!json_path)
        json_path = cfg.json_path[0] ? cfg.json_path : "-";
    /* Before any output is opened (the policy fails in sensor_open(), also
     * before its outputs). */
    if ((nifaces || ninputs) && check_built(&cfg, config_path, 0) != EGR_OK) {
        free(inputs);
        free(ifaces);
        config_free(&cfg);
        return EXIT_USAGE;
    }
    if (nifaces) {
        lo.ifaces = ifaces;
        lo.nifaces = nifaces;
        int status = run_live(&lo, user, &cfg, config_path, json_path);
        free(inputs);
        free(ifaces);
        config_free(&cfg);
        return status;
    }
    free(ifaces);
    ifaces = NULL;
    if (ninputs == 0) {
        fprintf(stderr, "egressd: nothing to read: give a capture with -r FILE or an interface "
                        "with -i IFACE (see --help)\n");
        free(inputs);
        free(ifaces);
        config_free(&cfg);
        return EXIT_USAGE;
    }
    for (size_t i = 0; lo.workers > 1 && i < ninputs; i++) {
        if (!strcmp(inputs[i], "-")) {
            fprintf(stderr, "egressd: --workers %u: every worker reads the whole capture, so "
                            "standard input ('-r -') cannot be shared; give a file or one worker\n",
                    lo.workers);
            free(inputs);
            config_free(&cfg);
            return EXIT_USAGE;
        }
    }
    char source[1200];
    snprintf(source, sizeof(source), "file %s%s", inputs[0], ninputs > 1 ? " ..." : "");
    struct sensor *sensor;
    int orc = sensor_open(&cfg, json_path, source, &sensor, &err);
    if (orc != EGR_OK) {
        if (orc == EGR_EINVAL)
            config_fail(config_path, &err);
        else
            fprintf(stderr, "egressd: %s\n", err.msg);
        free(inputs);
        free(ifaces);
        config_free(&cfg);
        return orc == EGR_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
    }

    struct run_stats st;
    memset(&st, 0, sizeof(st));
    if (lo.workers > 1) {
        int status = replay_shared(&cfg, config_path, sensor, (const char *const *)inputs, ninputs,
                                   lo.workers, &st);
        if (sensor_finish(sensor, &st, &err) != EGR_OK) {
            fprintf(stderr, "egressd: %s\n", err.msg);
            status = EXIT_RUNTIME;
        }
        free(inputs);
        config_free(&cfg);
        return status;
    }
    struct worker *w;
    if ((orc = worker_new(&cfg, sensor, &w, &err)) != EGR_OK) {
        fprintf(stderr, "egressd: %s\n", err.msg);
        sensor_finish(sensor, &st, &err);
        free(inputs);
        free(ifaces);
        config_free(&cfg);
        return orc == EGR_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
    }

    struct run_ctl ctl = {config_path, sensor, w, &st};
    int status = 0;
    for (size_t i = 0; i < ninputs && !sensor_failed(sensor) && !sig_stop; i++) {
        st.inputs++;
        if (replay_file(&ctl, inputs[i], &err) != EGR_OK) {
            fprintf(stderr, "egressd: %s\n", err.msg);
            st.input_errors++;
            status = EXIT_RUNTIME;
        }
    }
    worker_flush(w, END_SHUTDOWN);
    worker_stats(w, &st);
    worker_free(w); /* its port's output goes to the sinks */
    if (sensor_finish(sensor, &st, &err) != EGR_OK) {
        fprintf(stderr, "egressd: %s\n", err.msg);
        status = EXIT_RUNTIME;
    }
    free(inputs);
    free(ifaces);
    config_free(&cfg);
    return status;
}

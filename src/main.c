/* main.c - the egressd command line: parse options, load the configuration,
 * wire capture -> worker -> sinks, replay the inputs, report.
 *
 * Exit status: 0 everything read, 1 a runtime failure (an input that could
 * not be read to its end, an output that could not be written), 2 a usage or
 * configuration error.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egressd/capture.h"
#include "egressd/classify.h"
#include "egressd/config.h"
#include "egressd/decode.h"
#include "egressd/sink.h"
#include "egressd/worker.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define MAX_SINKS 4

struct outputs {
    struct sink sinks[MAX_SINKS];
    unsigned n;
    int failed;          /* a sink reported a write error */
    struct egr_err err;
};

static void usage(FILE *to)
{
    fprintf(to,
            "Usage: egressd -r FILE [-r FILE...] [--json PATH] [-c CONFIG]\n"
            "       egressd -c CONFIG --check-config\n"
            "\n"
            "Replays capture files (pcap or pcapng; '-' reads standard input), tracks\n"
            "bidirectional flows, classifies them with nDPI and writes one EVE-style JSON\n"
            "record per flow, then a final stats event.\n"
            "\n"
            "  -r, --read FILE      capture to replay (repeatable, read in order)\n"
            "  -j, --json PATH      write JSON lines to PATH ('-' = stdout, the default)\n"
            "  -c, --config FILE    YAML configuration (see docs/configuration.md)\n"
            "      --check-config   validate the configuration and exit\n"
            "  -h, --help           this text\n"
            "  -V, --version        versions of egressd, nDPI and libpcap\n"
            "\n"
            "Exit status: 0 ok, 1 runtime failure (unreadable or truncated input,\n"
            "output error), 2 usage or configuration error.\n");
}

static void emit_flow(void *arg, struct flow_record *rec)
{
    struct outputs *o = arg;
    for (unsigned i = 0; i < o->n; i++) {
        struct sink *s = &o->sinks[i];
        if (s->ops->flow(s->self, rec) != EGR_OK && !o->failed) {
            o->failed = 1;
            snprintf(o->err.msg, sizeof(o->err.msg), "%s", s->ops->error(s->self));
        }
    }
}

/* Replays one file through the worker. Returns EGR_OK when the file was read
 * to its end; on failure err says why (everything before the fault has been
 * processed). */
static int replay_file(struct worker *w, const char *path, struct outputs *o,
                       struct egr_err *err)
{
    struct capture *c;
    int rc = capture_open_file(path, &c, err);
    if (rc != EGR_OK)
        return rc;
    int dlt = capture_datalink(c);
    if (!decode_linktype_supported(dlt)) {
        rc = egr_fail(err, EGR_EINVAL, "%s: unsupported link type %d", capture_name(c), dlt);
        capture_close(c);
        return rc;
    }
    struct capture_pkt p;
    while ((rc = capture_next(c, &p, err)) == 1 && !o->failed)
        worker_packet(w, dlt, &p);
    capture_close(c);
    return rc < 0 ? rc : EGR_OK;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"read", required_argument, NULL, 'r'},
        {"json", required_argument, NULL, 'j'},
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char **inputs = calloc((size_t)argc + 1, sizeof(*inputs));
    if (!inputs)
        return EXIT_RUNTIME;
    size_t ninputs = 0;
    const char *json_path = NULL, *config_path = NULL;
    int check_only = 0, opt;

    while ((opt = getopt_long(argc, argv, "r:j:c:hV", opts, NULL)) != -1) {
        switch (opt) {
        case 'r':
            inputs[ninputs++] = optarg;
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
        case 'h':
            usage(stdout);
            free(inputs);
            return 0;
        case 'V':
            printf("egressd %s\nnDPI %s\n%s\n", EGRESSD_VERSION, classify_ndpi_version(),
                   capture_lib_version());
            free(inputs);
            return 0;
        default:
            usage(stderr);
            free(inputs);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "egressd: unexpected argument '%s' (captures are given with -r)\n",
                argv[optind]);
        free(inputs);
        return EXIT_USAGE;
    }

    struct egr_config cfg;
    struct egr_err err = {""};
    config_defaults(&cfg);
    if (config_path && config_load(&cfg, config_path, &err) != EGR_OK) {
        fprintf(stderr, "egressd: %s\n", err.msg);
        free(inputs);
        return EXIT_USAGE;
    }
    config_resolve_geo(&cfg);
    if (check_only) {
        if (!config_path) {
            fprintf(stderr, "egressd: --check-config needs -c CONFIG\n");
            free(inputs);
            return EXIT_USAGE;
        }
        printf("%s: configuration OK\n", config_path);
        free(inputs);
        return 0;
    }
    if (ninputs == 0) {
        fprintf(stderr, "egressd: nothing to read: give a capture with -r FILE (see --help)\n");
        free(inputs);
        return EXIT_USAGE;
    }
    if (!json_path)
        json_path = cfg.json_path[0] ? cfg.json_path : "-";

    struct outputs out = {0};
    if (sink_json_open(json_path, &out.sinks[out.n], &err) != EGR_OK) {
        fprintf(stderr, "egressd: %s\n", err.msg);
        free(inputs);
        return EXIT_RUNTIME;
    }
    out.n++;

    struct worker *w;
    if (worker_new(&cfg, emit_flow, &out, &w, &err) != EGR_OK) {
        fprintf(stderr, "egressd: %s\n", err.msg);
        for (unsigned i = 0; i < out.n; i++)
            out.sinks[i].ops->close(out.sinks[i].self);
        free(inputs);
        return EXIT_RUNTIME;
    }

    int status = 0;
    struct run_stats st;
    memset(&st, 0, sizeof(st));
    for (size_t i = 0; i < ninputs && !out.failed; i++) {
        st.inputs++;
        if (replay_file(w, inputs[i], &out, &err) != EGR_OK) {
            fprintf(stderr, "egressd: %s\n", err.msg);
            st.input_errors++;
            status = EXIT_RUNTIME;
        }
    }
    worker_flush(w, END_SHUTDOWN);
    worker_stats(w, &st);
    for (unsigned i = 0; i < out.n; i++) {
        struct sink *s = &out.sinks[i];
        if ((s->ops->stats(s->self, &st) != EGR_OK || s->ops->flush(s->self) != EGR_OK) &&
            !out.failed) {
            out.failed = 1;
            snprintf(out.err.msg, sizeof(out.err.msg), "%s", s->ops->error(s->self));
        }
        s->ops->close(s->self);
    }
    if (out.failed) {
        fprintf(stderr, "egressd: %s\n", out.err.msg[0] ? out.err.msg : "output failed");
        status = EXIT_RUNTIME;
    }
    worker_free(w);
    free(inputs);
    return status;
}

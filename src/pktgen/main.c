/* main.c - egressd-pktgen: writes the project's ready-made captures (the
 * demo scenario, the hostile-names capture and the scenarios of the
 * incident profiles, see docs/pktgen.md).
 * Exit status: 0 written, 1 the file could not be written, 2 usage.
 */
#include <stdio.h>
#include <string.h>

#include "egressd/pktgen.h"

static const struct {
    const char *name;
    int (*write)(const char *, struct egr_err *);
    const char *what;
} scenarios[] = {
    {"demo", pg_demo_write, "the demo capture (docs/pktgen.md)"},
    {"hostile", pg_hostile_write, "flows with hostile names, for escaping tests"},
    {"cisco-firepower", pg_cisco_write, "Cisco FMC/FTD/ASA (sensors/cisco-firepower.yaml)"},
    {"zscaler-connector", pg_zscaler_write, "Zscaler App Connectors (sensors/zscaler-connector.yaml)"},
    {"monitoring-server", pg_monitoring_write, "an Orion-like server, SUNBURST lookups"},
    {"saas-integrations", pg_saas_write, "callers of guarded SaaS/identity services"},
    {"callouts", pg_callouts_write, "long-lived callouts from an appliance (2 h)"},
    {"callouts-short", pg_callouts_short_write, "the same, time compressed 30-fold"},
};

static void usage(FILE *f)
{
    for (size_t i = 0; i < EGR_ARRAY_LEN(scenarios); i++)
        fprintf(f, "%s egressd-pktgen %-17s OUT.pcap   %s\n", i ? "      " : "usage:",
                scenarios[i].name, scenarios[i].what);
    fputs("OUT.pcap may be - for standard output.\n", f);
}

int main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc != 3) {
        usage(stderr);
        return 2;
    }
    int (*write)(const char *, struct egr_err *) = NULL;
    for (size_t i = 0; i < EGR_ARRAY_LEN(scenarios); i++)
        if (strcmp(argv[1], scenarios[i].name) == 0)
            write = scenarios[i].write;
    if (!write) {
        fprintf(stderr, "egressd-pktgen: unknown scenario '%s'\n", argv[1]);
        usage(stderr);
        return 2;
    }
    struct egr_err err = {{0}};
    if (write(argv[2], &err) != EGR_OK) {
        fprintf(stderr, "egressd-pktgen: %s\n", err.msg);
        return 1;
    }
    return 0;
}

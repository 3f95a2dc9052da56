/* main.c - egressd-pktgen: writes the project's ready-made captures (the
 * demo scenario and the hostile-names capture, see docs/pktgen.md).
 * Exit status: 0 written, 1 the file could not be written, 2 usage.
 */
#include <stdio.h>
#include <string.h>

#include "egressd/pktgen.h"

static const char usage[] =
    "usage: egressd-pktgen demo OUT.pcap      the demo capture (docs/pktgen.md)\n"
    "       egressd-pktgen hostile OUT.pcap   flows with hostile names, for escaping tests\n"
    "       egressd-pktgen callouts OUT.pcap  long-lived callouts from an appliance (2 h)\n"
    "       egressd-pktgen callouts-short OUT.pcap  the same, time compressed 30-fold\n"
    "OUT.pcap may be - for standard output.\n";

int main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc != 3) {
        fputs(usage, stderr);
        return 2;
    }
    int (*write)(const char *, struct egr_err *) = NULL;
    int callouts = -1;
    if (strcmp(argv[1], "demo") == 0) {
        write = pg_demo_write;
    } else if (strcmp(argv[1], "hostile") == 0) {
        write = pg_hostile_write;
    } else if (strcmp(argv[1], "callouts") == 0 || strcmp(argv[1], "callouts-short") == 0) {
        callouts = strcmp(argv[1], "callouts-short") == 0;
    } else {
        fprintf(stderr, "egressd-pktgen: unknown scenario '%s'\n%s", argv[1], usage);
        return 2;
    }
    struct egr_err err = {{0}};
    if ((write ? write(argv[2], &err) : pg_callouts_write(argv[2], callouts, &err)) != EGR_OK) {
        fprintf(stderr, "egressd-pktgen: %s\n", err.msg);
        return 1;
    }
    return 0;
}

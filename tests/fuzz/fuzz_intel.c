/* fuzz_intel.c - libFuzzer target: threat-intel list files through the
 * policy loader (line splitting, comments, CIDR parsing into the netset,
 * domain / JA3 / SHA-1 checks into the string sets).
 *
 * Intel lists are often fetched from third-party feeds, so their bytes are
 * not the operator's own. The input is written as the one file all four
 * lists of a fixed configuration read (ip, domain, ja3, sha1); the policy is
 * built and freed. Besides the sanitizers the target checks that a failure
 * always comes with a one-line message naming the file.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "egressd/config.h"
#include "egressd/policy.h"

#define CHECK(c)        \
    do {                \
        if (!(c))       \
            abort();    \
    } while (0)

static char g_dir[64];
static char g_list[128];
static struct egr_config g_cfg;

static void cleanup(void)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/egressd.yaml", g_dir);
    unlink(path);
    unlink(g_list);
    rmdir(g_dir);
}

static void setup(void)
{
    snprintf(g_dir, sizeof(g_dir), "/tmp/fuzz-intel-XXXXXX");
    CHECK(mkdtemp(g_dir) != NULL);
    atexit(cleanup);
    snprintf(g_list, sizeof(g_list), "%s/list.txt", g_dir);
    char path[128];
    snprintf(path, sizeof(path), "%s/egressd.yaml", g_dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs("home_net: [10.0.0.0/8]\n"
          "intel:\n"
          "  - {name: ips, type: ip, file: list.txt}\n"
          "  - {name: names, type: domain, file: list.txt}\n"
          "  - {name: ja3, type: ja3, file: list.txt}\n"
          "  - {name: certs, type: sha1, file: list.txt}\n",
          f);
    CHECK(fclose(f) == 0);
    /* The configuration must load with the list present. */
    f = fopen(g_list, "w");
    CHECK(f != NULL);
    CHECK(fclose(f) == 0);
    struct egr_err err;
    config_defaults(&g_cfg);
    CHECK(config_load(&g_cfg, path, &err) == EGR_OK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_dir[0])
        setup();
    FILE *f = fopen(g_list, "w");
    CHECK(f != NULL);
    CHECK(fwrite(data, 1, size, f) == size);
    CHECK(fclose(f) == 0);
    struct policy *p = NULL;
    struct egr_err err;
    memset(&err, 0, sizeof(err));
    if (policy_new(&g_cfg.policy, &p, &err) == EGR_OK) {
        CHECK(p != NULL);
        policy_free(p);
    } else {
        CHECK(err.msg[0] != '\0');
        CHECK(strchr(err.msg, '\n') == NULL);
        CHECK(strstr(err.msg, "list.txt") != NULL);
    }
    return 0;
}

/* fuzz_callers.c - libFuzzer target: the guarded-services callers file
 * (guarded_services.callers_file) through the configuration loader (line
 * splitting, comments, "SERVICE CALLER" words, name and address checks,
 * the known-caller set).
 *
 * The file is written by the sensor but edited by people, and read again
 * at every load and reload. The input is written as the callers file of a
 * fixed configuration with one service in baseline mode; the
 * configuration is loaded and freed. Besides the sanitizers the target
 * checks that a failure always comes with a one-line message naming the
 * file, and that a caller the file names is known after a success.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "egressd/config.h"
#include "policy-guard.h"
#include "policy-int.h"

#define CHECK(c)        \
    do {                \
        if (!(c))       \
            abort();    \
    } while (0)

static char g_dir[64];
static char g_file[128];
static char g_cfg[128];

static void cleanup(void)
{
    unlink(g_cfg);
    unlink(g_file);
    rmdir(g_dir);
}

static void setup(void)
{
    snprintf(g_dir, sizeof(g_dir), "/tmp/fuzz-callers-XXXXXX");
    CHECK(mkdtemp(g_dir) != NULL);
    atexit(cleanup);
    snprintf(g_file, sizeof(g_file), "%s/callers.txt", g_dir);
    snprintf(g_cfg, sizeof(g_cfg), "%s/egressd.yaml", g_dir);
    FILE *f = fopen(g_cfg, "w");
    CHECK(f != NULL);
    fputs("home_net: [10.0.0.0/8]\n"
          "guarded_services:\n"
          "  callers_file: callers.txt\n"
          "  services:\n"
          "    idp: {domain: [\"*.idp.example\"], mode: baseline}\n"
          "    crm: {domain: [crm.example], mode: learn}\n",
          f);
    CHECK(fclose(f) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_dir[0])
        setup();
    FILE *f = fopen(g_file, "w");
    CHECK(f != NULL);
    CHECK(fwrite(data, 1, size, f) == size);
    CHECK(fclose(f) == 0);
    struct egr_config cfg;
    struct egr_err err;
    memset(&err, 0, sizeof(err));
    config_defaults(&cfg);
    if (config_load(&cfg, g_cfg, &err) == EGR_OK) {
        CHECK(cfg.policy.spec && cfg.policy.spec->guard);
        /* "idp NAME" as the first line, when it is one, must be known. */
        char text[200], svc[8], caller[200];
        if (size < sizeof(text) && !memchr(data, '#', size) && !memchr(data, '\0', size)) {
            memcpy(text, data, size);
            text[size] = '\0';
            if (sscanf(text, "%7s %199s", svc, caller) == 2 && !strcmp(svc, "idp"))
                CHECK(policy_guard_known(cfg.policy.spec->guard, 0, caller));
        }
    } else {
        CHECK(err.msg[0] != '\0');
        CHECK(strchr(err.msg, '\n') == NULL);
        CHECK(strstr(err.msg, "callers.txt") != NULL);
    }
    config_free(&cfg);
    return 0;
}

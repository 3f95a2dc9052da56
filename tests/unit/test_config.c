/* test_config.c - configuration loading: defaults, every key, duration
 * units, and every kind of error with its exact file:line:column; the key
 * table against its fields, defaults and documentation; the shipped
 * sensors/replay.yaml; the broken examples in tests/configs/bad-*.yaml (each
 * names its expected error on its first line); and the extension hooks a
 * later section uses (custom rows, sequences of mappings). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfgload.h"
#include "egressd/config.h"

/* ---- helpers ------------------------------------------------------------ */

/* The repository root: $EGRESSD_SRC (set by ctest), else from this file's
 * path (tests/unit/test_config.c). */
static const char *src_dir(void)
{
    static char dir[4096];
    const char *env = getenv("EGRESSD_SRC");
    if (env && env[0])
        return env;
    snprintf(dir, sizeof(dir), "%s", __FILE__);
    for (int i = 0; i < 3; i++) {
        char *slash = strrchr(dir, '/');
        if (!slash)
            fail_msg("cannot find the source tree: set EGRESSD_SRC");
        *slash = '\0';
    }
    return dir;
}

/* Writes text to a fresh temporary file; its name goes into path. */
static void write_tmp(char path[64], const char *text, size_t len)
{
    snprintf(path, 64, "/tmp/egressd-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

/* Loads text over defaults into *cfg; returns the result, message in err. */
static int load_text(const char *text, struct egr_config *cfg, struct egr_err *err,
                     char path[64])
{
    write_tmp(path, text, strlen(text));
    config_defaults(cfg);
    memset(err, 0, sizeof(*err));
    int rc = config_load(cfg, path, err);
    unlink(path);
    return rc;
}

/* Asserts that text fails with EGR_EINVAL and exactly "TMPFILE" + suffix, and
 * that the configuration was left at its defaults. */
static void expect_error(const char *text, const char *suffix)
{
    struct egr_config cfg, defaults;
    struct egr_err err;
    char path[64], want[EGR_ERR_MAX];
    config_defaults(&defaults);
    int rc = load_text(text, &cfg, &err, path);
    snprintf(want, sizeof(want), "%s%s", path, suffix);
    if (rc != EGR_EINVAL || strcmp(err.msg, want))
        fail_msg("config:\n%s\nrc %d, message\n  %s\nwanted\n  %s", text, rc, err.msg, want);
    assert_memory_equal(&cfg, &defaults, sizeof(cfg));
}

static struct egr_config expect_ok(const char *text)
{
    struct egr_config cfg;
    struct egr_err err;
    char path[64];
    int rc = load_text(text, &cfg, &err, path);
    if (rc != EGR_OK)
        fail_msg("config:\n%s\nrc %d: %s", text, rc, err.msg);
    return cfg;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* ---- values ------------------------------------------------------------- */

static void test_defaults(void **state)
{
    struct egr_config c;
    memset(&c, 0xa5, sizeof(c));
    config_defaults(&c);
    assert_int_equal(c.flow.max_flows, 1000000);
    assert_int_equal(c.flow.hash_seed, 0);
    assert_int_equal(c.flow.tcp_new_timeout, 60);
    assert_int_equal(c.flow.tcp_est_timeout, 600);
    assert_int_equal(c.flow.tcp_closed_timeout, 10);
    assert_int_equal(c.flow.udp_timeout, 180);
    assert_int_equal(c.flow.icmp_timeout, 60);
    assert_int_equal(c.flow.other_timeout, 60);
    assert_int_equal(c.flow.active_timeout, 1800);
    assert_int_equal(c.flow.cid.seed, 0);
    assert_int_equal(c.flow.cid.base64, 1);
    assert_int_equal(c.classify.max_pkts_tcp, 80);
    assert_int_equal(c.classify.max_pkts_udp, 24);
    assert_string_equal(c.json_path, "");
}

/* Nothing to configure is not an error: every spelling of "nothing". */
static void test_empty(void **state)
{
    static const char *const empty[] = {
        "", "\n\n", "# only a comment\n", "---\n", "---\n...\n", "~\n", "null\n",
        "flow:\n", "flow:\n  timeouts:\n", "flow: {}\n", "{}\n",
    };
    struct egr_config defaults;
    config_defaults(&defaults);
    for (size_t i = 0; i < EGR_ARRAY_LEN(empty); i++) {
        struct egr_config c = expect_ok(empty[i]);
        assert_memory_equal(&c, &defaults, sizeof(c));
    }
}

static void test_every_key(void **state)
{
    struct egr_config c = expect_ok(
        "flow:\n"
        "  max_flows: 100000000\n"
        "  hash_seed: 4294967295\n"
        "  timeouts:\n"
        "    tcp_new: 31\n"
        "    tcp_established: 32\n"
        "    tcp_closed: 0\n"
        "    udp: 34\n"
        "    icmp: 35\n"
        "    other: 86400\n"
        "    active: 0\n"
        "classify:\n"
        "  max_packets_tcp: 10000\n"
        "  max_packets_udp: 1\n"
        "community_id:\n"
        "  seed: 65535\n"
        "  base64: false\n"
        "output:\n"
        "  json: /var/log/egressd/eve.json\n");
    assert_int_equal(c.flow.max_flows, 100000000);
    assert_int_equal(c.flow.hash_seed, 4294967295u);
    assert_int_equal(c.flow.tcp_new_timeout, 31);
    assert_int_equal(c.flow.tcp_est_timeout, 32);
    assert_int_equal(c.flow.tcp_closed_timeout, 0);
    assert_int_equal(c.flow.udp_timeout, 34);
    assert_int_equal(c.flow.icmp_timeout, 35);
    assert_int_equal(c.flow.other_timeout, 86400);
    assert_int_equal(c.flow.active_timeout, 0);
    assert_int_equal(c.classify.max_pkts_tcp, 10000);
    assert_int_equal(c.classify.max_pkts_udp, 1);
    assert_int_equal(c.flow.cid.seed, 65535);
    assert_int_equal(c.flow.cid.base64, 0);
    assert_string_equal(c.json_path, "/var/log/egressd/eve.json");
}

/* Keys not in the file keep what the configuration held before the load. */
static void test_load_over_existing(void **state)
{
    char path[64];
    const char *text = "flow:\n  timeouts:\n    udp: 5\n";
    write_tmp(path, text, strlen(text));
    struct egr_config c;
    struct egr_err err;
    config_defaults(&c);
    c.flow.max_flows = 77;
    snprintf(c.json_path, sizeof(c.json_path), "keep.json");
    assert_int_equal(config_load(&c, path, &err), EGR_OK);
    unlink(path);
    assert_int_equal(c.flow.udp_timeout, 5);
    assert_int_equal(c.flow.max_flows, 77);
    assert_string_equal(c.json_path, "keep.json");
}

static void test_durations(void **state)
{
    struct egr_config c = expect_ok("flow:\n  timeouts:\n"
                                    "    tcp_new: 30s\n"
                                    "    tcp_established: 10m\n"
                                    "    tcp_closed: 0s\n"
                                    "    udp: 1h\n"
                                    "    icmp: \"45\"\n"
                                    "    other: '2m'\n"
                                    "    active: 24h\n");
    assert_int_equal(c.flow.tcp_new_timeout, 30);
    assert_int_equal(c.flow.tcp_est_timeout, 600);
    assert_int_equal(c.flow.tcp_closed_timeout, 0);
    assert_int_equal(c.flow.udp_timeout, 3600);
    assert_int_equal(c.flow.icmp_timeout, 45);
    assert_int_equal(c.flow.other_timeout, 120);
    assert_int_equal(c.flow.active_timeout, 86400);

    expect_error("flow:\n  timeouts:\n    udp: 10d\n",
                 ":3:10: flow.timeouts.udp: expected a duration (seconds, or a number with "
                 "s, m or h), got \"10d\"");
    expect_error("flow:\n  timeouts:\n    udp: 1.5m\n",
                 ":3:10: flow.timeouts.udp: expected a duration (seconds, or a number with "
                 "s, m or h), got \"1.5m\"");
    expect_error("flow:\n  timeouts:\n    udp: m\n",
                 ":3:10: flow.timeouts.udp: expected a duration (seconds, or a number with "
                 "s, m or h), got \"m\"");
    expect_error("flow:\n  timeouts:\n    udp: 0x10\n",
                 ":3:10: flow.timeouts.udp: expected a duration (seconds, or a number with "
                 "s, m or h), got \"0x10\"");
    expect_error("flow:\n  timeouts:\n    udp: 25h\n",
                 ":3:10: flow.timeouts.udp: out of range: 25h = 90000 s (allowed 1..86400 s)");
    expect_error("flow:\n  timeouts:\n    udp: 0\n",
                 ":3:10: flow.timeouts.udp: out of range: 0 s (allowed 1..86400 s)");
    expect_error("flow:\n  timeouts:\n    active: -5m\n",
                 ":3:13: flow.timeouts.active: out of range: -5m (allowed 0..86400 s)");
    expect_error("flow:\n  timeouts:\n    active: 99999999999999999999h\n",
                 ":3:13: flow.timeouts.active: out of range: 99999999999999999999h "
                 "(allowed 0..86400 s)");
    expect_error("flow:\n  timeouts:\n    active: 9999999999999999h\n",
                 ":3:13: flow.timeouts.active: out of range: 9999999999999999h "
                 "(allowed 0..86400 s)");
}

static void test_numbers_and_bools(void **state)
{
    struct egr_config c = expect_ok("flow:\n  hash_seed: 0xDEADbeef\n"
                                    "community_id:\n  seed: 0x10\n  base64: no\n");
    assert_int_equal(c.flow.hash_seed, 0xdeadbeefu);
    assert_int_equal(c.flow.cid.seed, 16);
    assert_int_equal(c.flow.cid.base64, 0);
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "on"};
    static const char *const no[] = {"false", "False", "no", "off", "OFF"};
    for (size_t i = 0; i < EGR_ARRAY_LEN(yes); i++) {
        char text[128];
        snprintf(text, sizeof(text), "community_id:\n  base64: %s\n", no[i]);
        assert_int_equal(expect_ok(text).flow.cid.base64, 0);
        snprintf(text, sizeof(text), "community_id: {base64: %s}\n", yes[i]);
        assert_int_equal(expect_ok(text).flow.cid.base64, 1);
    }
    /* Flow style, anchors and aliases are plain YAML and work. */
    c = expect_ok("classify: {max_packets_tcp: &n 12, max_packets_udp: *n}\n");
    assert_int_equal(c.classify.max_pkts_tcp, 12);
    assert_int_equal(c.classify.max_pkts_udp, 12);
}

static void test_out_of_range(void **state)
{
    expect_error("flow:\n  max_flows: 0\n",
                 ":2:14: flow.max_flows: out of range: 0 (allowed 1..100000000)");
    expect_error("flow:\n  max_flows: 100000001\n",
                 ":2:14: flow.max_flows: out of range: 100000001 (allowed 1..100000000)");
    expect_error("flow:\n  hash_seed: 4294967296\n",
                 ":2:14: flow.hash_seed: out of range: 4294967296 (allowed 0..4294967295)");
    expect_error("flow:\n  hash_seed: -1\n",
                 ":2:14: flow.hash_seed: out of range: -1 (allowed 0..4294967295)");
    expect_error("flow:\n  hash_seed: 18446744073709551616\n",
                 ":2:14: flow.hash_seed: out of range: 18446744073709551616 "
                 "(allowed 0..4294967295)");
    expect_error("community_id:\n  seed: 65536\n",
                 ":2:9: community_id.seed: out of range: 65536 (allowed 0..65535)");
    expect_error("classify:\n  max_packets_tcp: 10001\n",
                 ":2:20: classify.max_packets_tcp: out of range: 10001 (allowed 1..10000)");
    expect_error("classify:\n  max_packets_udp: 0\n",
                 ":2:20: classify.max_packets_udp: out of range: 0 (allowed 1..10000)");
}

/* ---- errors ------------------------------------------------------------- */

static void test_wrong_types(void **state)
{
    expect_error("flow:\n  max_flows: {a: 1}\n",
                 ":2:14: flow.max_flows: expected an unsigned integer, got a mapping");
    expect_error("flow:\n  max_flows: [1]\n",
                 ":2:14: flow.max_flows: expected an unsigned integer, got a sequence");
    expect_error("flow:\n  max_flows:\n",
                 ":2:13: flow.max_flows: expected an unsigned integer, got an empty value");
    expect_error("flow:\n  max_flows: 1e6\n",
                 ":2:14: flow.max_flows: expected an unsigned integer, got \"1e6\"");
    expect_error("flow:\n  max_flows: \"a\\\"b\\x01\"\n",
                 ":2:14: flow.max_flows: expected an unsigned integer, got \"a\\\"b\\x01\"");
    expect_error("flow:\n  timeouts:\n    udp: abc\n",
                 ":3:10: flow.timeouts.udp: expected a duration (seconds, or a number with "
                 "s, m or h), got \"abc\"");
    expect_error("flow:\n  timeouts: 5\n",
                 ":2:13: flow.timeouts: expected a mapping, got \"5\"");
    expect_error("flow: [1, 2]\n", ":1:7: flow: expected a mapping, got a sequence");
    expect_error("community_id:\n  base64: maybe\n",
                 ":2:11: community_id.base64: expected true or false, got \"maybe\"");
    expect_error("community_id:\n  base64: \"true\\0\"\n",
                 ":2:11: community_id.base64: expected true or false, got \"true\\x00\"");
    expect_error("community_id:\n  base64: 1\n",
                 ":2:11: community_id.base64: expected true or false, got \"1\"");
    expect_error("output:\n  json: {path: x}\n",
                 ":2:9: output.json: expected a string, got a mapping");
    expect_error("output:\n  json: \"a\\0b\"\n",
                 ":2:9: output.json: a NUL character is not allowed");
    expect_error("- flow\n", ":1:1: the top level must be a mapping of sections, got a sequence");
    expect_error("just text\n",
                 ":1:1: the top level must be a mapping of sections, got \"just text\"");
    expect_error("flow:\n  ? [a, b]\n  : 1\n", ":2:5: flow: a key must be a plain string, "
                 "not a sequence");
}

static void test_long_string(void **state)
{
    struct egr_config c;
    size_t max = sizeof(c.json_path) - 1;
    char *text = malloc(max + 64);
    assert_non_null(text);
    int n = snprintf(text, max + 64, "output:\n  json: ");
    memset(text + n, 'a', max);
    snprintf(text + n + max, 8, "\n");
    c = expect_ok(text);
    assert_int_equal(strlen(c.json_path), max);
    memset(text + n, 'a', max + 1);
    snprintf(text + n + max + 1, 8, "\n");
    expect_error(text, ":2:9: output.json: too long: 1024 bytes (at most 1023)");
    free(text);
    /* "-" (stdout) and the empty string (no file) are both values. */
    assert_string_equal(expect_ok("output:\n  json: \"-\"\n").json_path, "-");
    assert_string_equal(expect_ok("output:\n  json: ''\n").json_path, "");
    assert_string_equal(expect_ok("output:\n  json: ~\n").json_path, "");
}

static void test_unknown_keys(void **state)
{
    expect_error("flow:\n  timeout:\n    udp: 5\n",
                 ":2:3: flow.timeout: unknown key \"timeout\", did you mean 'timeouts'?");
    expect_error("flows:\n  max_flows: 5\n",
                 ":1:1: flows: unknown key \"flows\", did you mean 'flow'?");
    expect_error("flow:\n  timeouts:\n    UDP: 5\n",
                 ":3:5: flow.timeouts.UDP: unknown key \"UDP\", did you mean 'udp'?");
    expect_error("classify:\n  max_packets: 5\n",
                 ":2:3: classify.max_packets: unknown key \"max_packets\", did you mean "
                 "'max_packets_tcp'?");
    expect_error("syslog:\n  host: x\n", ":1:1: syslog: unknown key \"syslog\"");
    expect_error("redis:\n  host: x\n", ":2:3: redis.host: unknown key \"host\"");
    expect_error("flow:\n  timeouts:\n    quic: 5\n",
                 ":3:5: flow.timeouts.quic: unknown key \"quic\"");
    expect_error("flow.max_flows: 5\n",
                 ":1:1: flow.max_flows: unknown key \"flow.max_flows\" (nest mappings "
                 "instead of dotted keys)");
    expect_error("1: x\n", ":1:1: 1: unknown key \"1\"");
    /* A key that names a section where a value goes, and the reverse. */
    expect_error("flow:\n  timeouts:\n    udp:\n      new: 5\n",
                 ":4:7: flow.timeouts.udp: expected a duration, got a mapping");
}

static void test_duplicates(void **state)
{
    expect_error("flow:\n  max_flows: 5\n  hash_seed: 1\n  max_flows: 6\n",
                 ":4:3: flow.max_flows: duplicate key (first at line 2, column 3)");
    expect_error("flow: {}\nclassify: {}\nflow: {}\n",
                 ":3:1: flow: duplicate key (first at line 1, column 1)");
    expect_error("community_id: {seed: 1, \"seed\": 2}\n",
                 ":1:25: community_id.seed: duplicate key (first at line 1, column 16)");
}

static void test_syntax_errors(void **state)
{
    expect_error("flow:\n  max_flows: [1, 2\n",
                 ":3:1: YAML syntax error: did not find expected ',' or ']' (while parsing "
                 "a flow sequence at line 2, column 14)");
    expect_error("flow:\n  max_flows: 5\n hash_seed: 1\n",
                 ":3:2: YAML syntax error: did not find expected key (while parsing a block "
                 "mapping at line 1, column 1)");
    expect_error("flow:\n\tmax_flows: 5\n",
                 ":2:1: YAML syntax error: found character that cannot start any token "
                 "(while scanning for the next token at line 2, column 1)");
    expect_error("flow: *nowhere\n",
                 ":1:7: YAML syntax error: found undefined alias");
    /* Not UTF-8: the reader reports a byte offset, turned into line:column. */
    expect_error("flow:\n  max_flows: 5\n  hash\xff: 1\n",
                 ":3:7: invalid input: invalid leading UTF-8 octet (byte 0xff)");
    /* A second document would be ignored silently, so it is an error. */
    expect_error("flow: {}\n---\nflow: {}\n",
                 ":3:1: a second YAML document; a configuration is one document");
    expect_error("flow: {}\n---\nflow: [\n",
                 ":4:1: YAML syntax error: did not find expected node content (while "
                 "parsing a flow node at line 4, column 1)");
}

/* The shape limits of the loader, at their edges: 64 levels load (and
 * fail later on the unknown key), 65 do not; aliases standing for 250,000
 * nodes load, one node more does not. */
static void test_shape_limits(void **state)
{
    (void)state;
    char *t = malloc(1000);
    assert_non_null(t);
    /* "a: " is a mapping (1), the 63 '[' make 64 levels. */
    size_t n = (size_t)snprintf(t, 1000, "a: ");
    for (int i = 0; i < 63; i++)
        t[n++] = '[';
    for (int i = 0; i < 63; i++)
        t[n++] = ']';
    t[n] = '\0';
    strcat(t, "\n");
    expect_error(t, ":1:1: a: unknown key \"a\"");
    n = (size_t)snprintf(t, 1000, "a: ");
    for (int i = 0; i < 64; i++)
        t[n++] = '[';
    for (int i = 0; i < 64; i++)
        t[n++] = ']';
    t[n] = '\0';
    strcat(t, "\n");
    expect_error(t, ":1:67: nested deeper than 64 levels, not a configuration");
    free(t);

    /* An anchored sequence of 4999 scalars (5000 nodes) used 50 times:
     * 250,000 nodes; the 51st alias is one too many. */
    size_t cap = 5000 * 3 + 51 * 4 + 64;
    t = malloc(cap);
    assert_non_null(t);
    n = (size_t)snprintf(t, cap, "a: [&x [");
    for (int i = 0; i < 4999; i++)
        n += (size_t)snprintf(t + n, cap - n, "%s1", i ? "," : "");
    n += (size_t)snprintf(t + n, cap - n, "]");
    size_t at50 = n;
    for (int i = 0; i < 50; i++)
        n += (size_t)snprintf(t + n, cap - n, ",*x");
    snprintf(t + n, cap - n, "]\n");
    expect_error(t, ":1:1: a: unknown key \"a\"");
    n = at50;
    for (int i = 0; i < 51; i++)
        n += (size_t)snprintf(t + n, cap - n, ",*x");
    snprintf(t + n, cap - n, "]\n");
    char want[128];
    snprintf(want, sizeof(want), ":1:%zu: aliases stand for more than 250000 nodes, not a "
             "configuration", n - 1);
    expect_error(t, want);
    free(t);
}

static void test_unreadable(void **state)
{
    struct egr_config c, defaults;
    struct egr_err err;
    config_defaults(&c);
    defaults = c;
    const char *missing = "/nonexistent-egressd/conf.yaml";
    assert_int_equal(config_load(&c, missing, &err), EGR_EIO);
    assert_string_equal(err.msg,
                        "/nonexistent-egressd/conf.yaml: cannot open: No such file or directory");
    assert_memory_equal(&c, &defaults, sizeof(c));
    assert_int_equal(config_load(&c, "/tmp", &err), EGR_EIO);
    assert_string_equal(err.msg, "/tmp: cannot read: Is a directory");
    assert_memory_equal(&c, &defaults, sizeof(c));
}

/* An error after good keys leaves nothing of them behind. */
static void test_unchanged_after_error(void **state)
{
    char path[64];
    const char *text = "flow:\n  max_flows: 5\n  timeouts: {udp: 1, tcp_new: 2}\n"
                       "output:\n  json: x.json\n"
                       "classify:\n  max_packets_tcp: 0\n";
    write_tmp(path, text, strlen(text));
    struct egr_config c, before;
    struct egr_err err;
    config_defaults(&c);
    c.flow.hash_seed = 99;
    before = c;
    assert_int_equal(config_load(&c, path, &err), EGR_EINVAL);
    char want[EGR_ERR_MAX];
    snprintf(want, sizeof(want),
             "%s:7:20: classify.max_packets_tcp: out of range: 0 (allowed 1..10000)", path);
    assert_string_equal(err.msg, want);
    assert_memory_equal(&c, &before, sizeof(c));
    unlink(path);
}

/* ---- the table, the docs and the shipped files -------------------------- */

static void test_table(void **state)
{
    struct egr_config d;
    config_defaults(&d);
    char path[4200];
    snprintf(path, sizeof(path), "%s/docs/configuration.md", src_dir());
    char *doc = slurp(path);
    snprintf(path, sizeof(path), "%s/sensors/replay.yaml", src_dir());
    char *replay = slurp(path);
    assert_true(config_nkeys >= 14);
    for (size_t i = 0; i < config_nkeys; i++) {
        const struct config_key *k = &config_keys[i];
        assert_true(k->offset + k->size <= sizeof(struct egr_config));
        /* A path is a value or a section, never both, and appears once. */
        size_t n = strlen(k->path);
        for (size_t j = 0; j < config_nkeys; j++) {
            const char *other = config_keys[j].path;
            if (j < i && !strcmp(k->path, other))
                fail_msg("key %s twice in the table", k->path);
            if (!strncmp(other, k->path, n) && other[n] == '.')
                fail_msg("%s is a value and the section of %s", k->path, other);
        }
        if (k->type == CONFIG_CUSTOM)
            assert_non_null(k->parse);
        if (k->type == CONFIG_UINT || k->type == CONFIG_DURATION) {
            assert_true(k->size == 1 || k->size == 2 || k->size == 4 || k->size == 8);
            uint64_t fmax = k->size == 8 ? UINT64_MAX : (1ull << (8 * k->size)) - 1;
            if (k->max > fmax || k->min > k->max)
                fail_msg("%s: bounds %llu..%llu do not fit its %zu-byte field", k->path,
                         (unsigned long long)k->min, (unsigned long long)k->max, k->size);
            uint64_t v = 0;
            memcpy(&v, (char *)&d + k->offset, k->size); /* little endian */
            if (v < k->min || v > k->max)
                fail_msg("%s: default %llu outside %llu..%llu", k->path,
                         (unsigned long long)v, (unsigned long long)k->min,
                         (unsigned long long)k->max);
        }
        if (k->type == CONFIG_BOOL)
            assert_true(k->size == sizeof(int) || k->size == 1);
        /* Documented by its full dotted name, shipped by its last part. */
        char needle[300];
        snprintf(needle, sizeof(needle), "`%s`", k->path);
        if (!strstr(doc, needle))
            fail_msg("docs/configuration.md does not document %s", needle);
        const char *leaf = strrchr(k->path, '.');
        /* Top-level keys start a line; nested ones follow indentation. */
        snprintf(needle, sizeof(needle), "%c%s:", leaf ? ' ' : '\n', leaf ? leaf + 1 : k->path);
        if (!strstr(replay, needle))
            fail_msg("sensors/replay.yaml does not show %s", k->path);
    }
    free(doc);
    free(replay);
}

/* The shipped example sets every key to its default. */
static void test_replay_yaml(void **state)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/sensors/replay.yaml", src_dir());
    struct egr_config c, d;
    struct egr_err err = {""};
    config_defaults(&d);
    memset(&c, 0, sizeof(c));
    config_defaults(&c);
    if (config_load(&c, path, &err) != EGR_OK)
        fail_msg("%s", err.msg);
    assert_memory_equal(&c, &d, sizeof(c));
    /* And it does set them: loaded over zeros it gives the defaults too
     * (except fields the file leaves to their default "", none else). */
    memset(&c, 0, sizeof(c));
    if (config_load(&c, path, &err) != EGR_OK)
        fail_msg("%s", err.msg);
    assert_memory_equal(&c, &d, sizeof(c));
}

/* tests/configs/bad-*.yaml: first line "# expect: LINE:COL: message". */
static void test_bad_examples(void **state)
{
    char pattern[4200];
    snprintf(pattern, sizeof(pattern), "%s/tests/configs/bad-*.yaml", src_dir());
    glob_t g;
    assert_int_equal(glob(pattern, 0, NULL, &g), 0);
    assert_true(g.gl_pathc >= 10);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        const char *file = g.gl_pathv[i];
        char *text = slurp(file);
        const char *tag = "# expect: ";
        if (strncmp(text, tag, strlen(tag)))
            fail_msg("%s: first line must be '# expect: LINE:COL: message'", file);
        char *expect = text + strlen(tag);
        expect[strcspn(expect, "\n")] = '\0';
        char want[EGR_ERR_MAX];
        snprintf(want, sizeof(want), "%s:%s", file, expect);
        struct egr_config c, d;
        struct egr_err err = {""};
        config_defaults(&c);
        d = c;
        int rc = config_load(&c, file, &err);
        free(text);
        if (rc != EGR_EINVAL || strcmp(err.msg, want)) {
            globfree(&g);
            fail_msg("rc %d, message\n  %s\nwanted\n  %s", rc, err.msg, want);
        }
        assert_memory_equal(&c, &d, sizeof(c));
    }
    globfree(&g);
}

/* ---- extension: a section with its own rows and a list ------------------ */

struct rule {
    char name[16];
    uint16_t port;
    int block;
};

struct ext {
    uint32_t limit;
    struct rule rules[4];
    size_t nrules;
};

static const struct config_key rule_keys[] = {
    {"name", CONFIG_STRING, 0, 0, offsetof(struct rule, name), sizeof(((struct rule *)0)->name), NULL},
    {"port", CONFIG_UINT, 1, 65535, offsetof(struct rule, port), sizeof(uint16_t), NULL},
    {"block", CONFIG_BOOL, 0, 1, offsetof(struct rule, block), sizeof(int), NULL},
};

struct rules_ctx {
    struct config_parse *p;
    const char *path;
    struct ext *ext;
};

static int rule_item(struct config_parse *p, size_t i, yaml_node_t *item, void *arg)
{
    struct ext *e = arg;
    char path[64];
    snprintf(path, sizeof(path), "policy.rules[%zu]", i);
    if (e->nrules == EGR_ARRAY_LEN(e->rules))
        return config_error(p, item, path, "at most %zu rules", EGR_ARRAY_LEN(e->rules));
    int rc = config_walk(p, item, path, rule_keys, EGR_ARRAY_LEN(rule_keys),
                         &e->rules[e->nrules]);
    if (rc == EGR_OK)
        e->nrules++;
    return rc;
}

static int parse_rules(struct config_parse *p, yaml_node_t *node, const char *path, void *field)
{
    /* field is ext.rules; the list owner is the whole struct. */
    struct ext *e = (struct ext *)((char *)field - offsetof(struct ext, rules));
    return config_each_item(p, node, path, rule_item, e);
}

static const struct config_key ext_keys[] = {
    {"policy.limit", CONFIG_UINT, 0, 10, offsetof(struct ext, limit), sizeof(uint32_t), NULL},
    {"policy.rules", CONFIG_CUSTOM, 0, 0, offsetof(struct ext, rules), 0, parse_rules},
};

static int load_ext(const char *text, struct ext *e, struct egr_err *err, char path[64])
{
    write_tmp(path, text, strlen(text));
    memset(e, 0, sizeof(*e));
    int rc = config_load_table(path, ext_keys, EGR_ARRAY_LEN(ext_keys), e, err);
    unlink(path);
    return rc;
}

static void test_custom_section(void **state)
{
    struct ext e;
    struct egr_err err = {""};
    char path[64], want[EGR_ERR_MAX];
    int rc = load_ext("policy:\n  limit: 3\n  rules:\n"
                      "    - {name: dns, port: 53}\n"
                      "    - name: smb\n      port: 445\n      block: yes\n"
                      "    - {}\n",
                      &e, &err, path);
    if (rc != EGR_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(e.limit, 3);
    assert_int_equal(e.nrules, 3);
    assert_string_equal(e.rules[0].name, "dns");
    assert_int_equal(e.rules[0].port, 53);
    assert_int_equal(e.rules[0].block, 0);
    assert_string_equal(e.rules[1].name, "smb");
    assert_int_equal(e.rules[1].port, 445);
    assert_int_equal(e.rules[1].block, 1);
    assert_int_equal(e.rules[2].port, 0);

    rc = load_ext("policy:\n  rules:\n    - {name: a, port: 1}\n    - name: b\n      prot: 2\n",
                  &e, &err, path);
    snprintf(want, sizeof(want),
             "%s:5:7: policy.rules[1].prot: unknown key \"prot\", did you mean 'port'?", path);
    assert_int_equal(rc, EGR_EINVAL);
    assert_string_equal(err.msg, want);

    rc = load_ext("policy:\n  rules: {name: a}\n", &e, &err, path);
    snprintf(want, sizeof(want), "%s:2:10: policy.rules: expected a sequence, got a mapping",
             path);
    assert_int_equal(rc, EGR_EINVAL);
    assert_string_equal(err.msg, want);

    rc = load_ext("policy:\n  rules:\n    - port: 0\n", &e, &err, path);
    snprintf(want, sizeof(want),
             "%s:3:13: policy.rules[0].port: out of range: 0 (allowed 1..65535)", path);
    assert_int_equal(rc, EGR_EINVAL);
    assert_string_equal(err.msg, want);

    rc = load_ext("policy:\n  rules: [{}, {}, {}, {}, {}]\n", &e, &err, path);
    snprintf(want, sizeof(want), "%s:2:27: policy.rules[4]: at most 4 rules", path);
    assert_int_equal(rc, EGR_EINVAL);
    assert_string_equal(err.msg, want);

    /* A list item that is a scalar where a mapping is expected. */
    rc = load_ext("policy:\n  rules:\n    - dns\n", &e, &err, path);
    snprintf(want, sizeof(want), "%s:3:7: policy.rules[0]: expected a mapping, got \"dns\"",
             path);
    assert_int_equal(rc, EGR_EINVAL);
    assert_string_equal(err.msg, want);
}

/* An alias inside its own anchor makes a cyclic document; the walker only
 * goes as deep as the table, so it ends with an error instead of looping. */
static void test_cyclic_alias(void **state)
{
    expect_error("flow: &a\n  timeouts: *a\n",
                 ":2:3: flow.timeouts.timeouts: unknown key \"timeouts\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_load_over_existing),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_numbers_and_bools),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_long_string),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_shape_limits),
        cmocka_unit_test(test_unreadable),
        cmocka_unit_test(test_unchanged_after_error),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_replay_yaml),
        cmocka_unit_test(test_bad_examples),
        cmocka_unit_test(test_custom_section),
        cmocka_unit_test(test_cyclic_alias),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

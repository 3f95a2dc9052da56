/* test_policy_guard.c - guarded services (src/policy-guard.c): which
 * service a record reaches (SNI, HTTP Host, passive-DNS name; first service
 * wins; egress only); callers by asset, role and address; the three modes
 * that judge callers and the alerts they raise through the engine (kind,
 * key, service name, dedup); learn mode appending to the callers file and
 * baseline mode reading it back (also after a rebuild, as on reload); the
 * volume windows in both directions, per-caller limits, any split of the
 * same bytes crossing at the same point, once per window, a full table,
 * several threads at once; the alert as EVE writes it; and configuration
 * and callers-file errors naming file:line:column. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "egressd/config.h"
#include "egressd/eve.h"
#include "egressd/policy.h"
#include "policy-guard.h"
#include "policy-int.h"

static char tmpdir[] = "/tmp/egressd-test-guard-XXXXXX";

static void path_of(const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", tmpdir, name);
}

static void write_file(const char *name, const char *text)
{
    char path[256];
    path_of(name, path, sizeof(path));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static char *read_file(const char *name)
{
    char path[256];
    path_of(name, path, sizeof(path));
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int load(const char *text, struct egr_config *cfg, struct egr_err *err)
{
    write_file("g.yaml", text);
    char path[256];
    path_of("g.yaml", path, sizeof(path));
    config_defaults(cfg);
    return config_load(cfg, path, err);
}

static struct policy *build(const char *text, struct egr_config *cfg)
{
    struct egr_err err = {""};
    if (load(text, cfg, &err) != EGR_OK)
        fail_msg("%s", err.msg);
    struct policy *p;
    if (policy_new(&cfg->policy, &p, &err) != EGR_OK)
        fail_msg("%s", err.msg);
    return p;
}

static struct policy_guard *guard_of(struct egr_config *cfg)
{
    assert_non_null(cfg->policy.spec);
    assert_non_null(cfg->policy.spec->guard);
    return cfg->policy.spec->guard;
}

/* A TLS flow src -> dst:443 with an SNI (NULL: none). */
static void mk(struct flow_record *r, const char *src, const char *dst, const char *sni)
{
    memset(r, 0, sizeof(*r));
    int v6 = strchr(src, ':') != NULL;
    r->family = v6 ? 6 : 4;
    assert_int_equal(inet_pton(v6 ? AF_INET6 : AF_INET, src, r->src_ip), 1);
    assert_int_equal(inet_pton(v6 ? AF_INET6 : AF_INET, dst, r->dst_ip), 1);
    r->proto = 6;
    r->src_port = 40000;
    r->dst_port = 443;
    r->first_us = 1760518800000000ull;
    r->last_us = r->first_us + 1000;
    r->emit_us = r->last_us;
    r->bytes_toserver = 1000;
    r->bytes_toclient = 4000;
    snprintf(r->ndpi.proto, sizeof(r->ndpi.proto), "TLS");
    if (sni)
        snprintf(r->ndpi.tls_sni, sizeof(r->ndpi.tls_sni), "%s", sni);
}

struct got {
    int n;
    struct alert_record a[16];
};

static void collect(void *arg, const struct alert_record *a)
{
    struct got *g = arg;
    assert_true(g->n < 16);
    g->a[g->n++] = *a;
}

static int run(const struct policy *p, struct policy_state *st, struct flow_record *r,
               struct got *g)
{
    int before = g->n;
    policy_annotate(p, r);
    policy_evaluate(p, st, r, collect, g);
    return g->n - before;
}

static const char *base_yaml =
    "home_net: [10.21.0.0/16, \"fd00:21::/48\"]\n"
    "assets:\n"
    "  - {name: sync, hosts: [10.21.30.10], role: crm}\n"
    "  - {name: app1, hosts: [10.21.40.10], role: apps}\n"
    "  - {name: web1, hosts: [10.21.60.10], role: web}\n"
    "  - {name: web2, hosts: [10.21.60.11, \"fd00:21::60:11\"], role: web}\n"
    "roles:\n"
    "  crm: {mode: monitor}\n"
    "  apps: {mode: monitor}\n"
    "  web: {mode: monitor}\n";

static char *cat(const char *a, const char *b)
{
    static char buf[8192];
    snprintf(buf, sizeof(buf), "%s%s", a, b);
    return buf;
}

/* ---- matching -------------------------------------------------------------- */

static void test_service_matching(void **state)
{
    (void)state;
    struct egr_config cfg;
    struct policy *p = build(cat(base_yaml,
        "guarded_services:\n"
        "  services:\n"
        "    support: {domain: [support.vendor.example], mode: monitor}\n"
        "    vendor: {domain: [vendor.example, \"*.vendor.example\"], mode: monitor}\n"
        "    idp: {domain: [login.idp.example], mode: monitor}\n"), &cfg);
    struct policy_guard *g = guard_of(&cfg);
    assert_true(policy_guard_active(g));
    struct flow_record r;

    mk(&r, "10.21.40.10", "198.51.100.1", "Support.Vendor.Example.");
    assert_int_equal(policy_guard_service_of(g, &r), 0); /* first service wins */
    mk(&r, "10.21.40.10", "198.51.100.1", "api.vendor.example");
    assert_int_equal(policy_guard_service_of(g, &r), 1);
    mk(&r, "10.21.40.10", "198.51.100.1", "vendor.example");
    assert_int_equal(policy_guard_service_of(g, &r), 1);
    mk(&r, "10.21.40.10", "198.51.100.1", "evilvendor.example");
    assert_int_equal(policy_guard_service_of(g, &r), -1); /* a label boundary */
    mk(&r, "10.21.40.10", "198.51.100.1", "vendor.example.evil.net");
    assert_int_equal(policy_guard_service_of(g, &r), -1);
    mk(&r, "10.21.40.10", "198.51.100.1", NULL);
    snprintf(r.ndpi.http_host, sizeof(r.ndpi.http_host), "login.idp.example");
    assert_int_equal(policy_guard_service_of(g, &r), 2);
    mk(&r, "10.21.40.10", "198.51.100.1", NULL); /* a name from passive DNS */
    snprintf(r.enrich.dest_name, sizeof(r.enrich.dest_name), "x.vendor.example");
    assert_int_equal(policy_guard_service_of(g, &r), 1);
    mk(&r, "10.21.40.10", "198.51.100.1", NULL);
    assert_int_equal(policy_guard_service_of(g, &r), -1);
    assert_string_equal(policy_guard_service_name(g, 2), "idp");
    assert_null(policy_guard_service_name(g, 3));
    policy_free(p);
    config_free(&cfg);
}

static const char *deny_yaml =
    "guarded_services:\n"
    "  services:\n"
    "    crmsaas:\n"
    "      domain: [\"*.crm.example\"]\n"
    "      mode: deny\n"
    "      severity: medium\n"
    "      callers:\n"
    "        - {role: crm}\n"
    "        - {asset: app1}\n"
    "        - {cidr: [10.21.99.0/24, \"fd00:21:99::/64\"]}\n";

static void test_deny_callers(void **state)
{
    (void)state;
    struct egr_config cfg;
    struct policy *p = build(cat(base_yaml, deny_yaml), &cfg);
    struct policy_state *st = policy_state_new();
    struct got g = {0};
    struct flow_record r;

    /* Listed by role, by asset, by address: nothing. */
    mk(&r, "10.21.30.10", "198.51.100.7", "acme.crm.example");
    assert_int_equal(run(p, st, &r, &g), 0);
    assert_false(r.alerted);
    mk(&r, "10.21.40.10", "198.51.100.7", "acme.crm.example");
    assert_int_equal(run(p, st, &r, &g), 0);
    mk(&r, "10.21.99.4", "198.51.100.7", "acme.crm.example");
    assert_int_equal(run(p, st, &r, &g), 0);
    mk(&r, "fd00:21:99::4", "2001:db8::7", "acme.crm.example");
    assert_int_equal(run(p, st, &r, &g), 0);

    /* Unlisted: an asset of another role, a host that is no asset. */
    mk(&r, "10.21.60.10", "198.51.100.7", "acme.crm.example");
    assert_int_equal(run(p, st, &r, &g), 1);
    assert_true(r.alerted);
    struct alert_record *a = &g.a[0];
    assert_int_equal(a->kind, ALERT_GUARD_CALLER);
    assert_int_equal(a->severity, SEV_MEDIUM);
    assert_string_equal(a->intel_list, "crmsaas");
    assert_string_equal(a->reason,
                        "caller web1 (role web) is not on the callers list of guarded service "
                        "crmsaas");
    assert_string_equal(a->flow.enrich.asset, "web1");
    assert_string_equal(a->service, "tcp/443");
    char key1[41];
    memcpy(key1, a->alert_key, sizeof(key1));
    mk(&r, "10.21.77.7", "198.51.100.7", "other.crm.example");
    assert_int_equal(run(p, st, &r, &g), 1);
    assert_string_equal(g.a[1].reason,
                        "caller 10.21.77.7 is not on the callers list of guarded service crmsaas");
    assert_string_not_equal(g.a[1].alert_key, key1);

    /* The same caller again, another subdomain: the same alert key, folded
     * into the first alert's count (dedup), written at the end. */
    mk(&r, "10.21.60.10", "198.51.100.8", "eu.crm.example");
    assert_int_equal(run(p, st, &r, &g), 0);
    assert_true(r.alerted);
    policy_flush(p, st, r.last_us + 1, collect, &g);
    assert_int_equal(g.n, 3);
    assert_true(g.a[2].update);
    assert_int_equal(g.a[2].count, 2);
    assert_string_equal(g.a[2].alert_key, key1);

    /* Not egress: inbound to a listed name, internal. */
    mk(&r, "198.51.100.7", "10.21.60.10", "acme.crm.example");
    assert_int_equal(run(p, st, &r, &g), 0);
    mk(&r, "10.21.60.10", "10.21.30.10", "acme.crm.example");
    assert_int_equal(run(p, st, &r, &g), 0);
    /* Egress to something else. */
    mk(&r, "10.21.60.10", "198.51.100.7", "www.example.org");
    assert_int_equal(run(p, st, &r, &g), 0);
    assert_int_equal(g.n, 3);

    policy_state_free(st);
    policy_free(p);
    config_free(&cfg);
}

/* ---- learn, then baseline -------------------------------------------------- */

/* Two services in `mode`, known callers in callers.txt. */
static void learn_yaml(char *out, size_t n, const char *mode)
{
    snprintf(out, n,
             "guarded_services:\n"
             "  callers_file: callers.txt\n"
             "  services:\n"
             "    idp:\n"
             "      domain: [\"*.idp.example\"]\n"
             "      mode: %s\n"
             "      callers: [{role: apps}]\n"
             "    other:\n"
             "      domain: [other.example]\n"
             "      mode: %s\n", mode, mode);
}

static void test_learn_then_baseline(void **state)
{
    (void)state;
    char path[256];
    path_of("callers.txt", path, sizeof(path));
    unlink(path);
    char yaml[2048];
    learn_yaml(yaml, sizeof(yaml), "learn");
    struct egr_config cfg;
    struct policy *p = build(cat(base_yaml, yaml), &cfg);
    struct policy_state *st = policy_state_new();
    struct got g = {0};
    struct flow_record r;

    mk(&r, "10.21.40.10", "198.51.100.9", "acme.idp.example"); /* listed: not learned */
    assert_int_equal(run(p, st, &r, &g), 0);
    mk(&r, "10.21.60.10", "198.51.100.9", "acme.idp.example");
    assert_int_equal(run(p, st, &r, &g), 0);
    mk(&r, "10.21.60.10", "198.51.100.9", "acme.idp.example"); /* twice: one line */
    assert_int_equal(run(p, st, &r, &g), 0);
    mk(&r, "10.21.77.8", "198.51.100.9", "other.example");
    assert_int_equal(run(p, st, &r, &g), 0);
    assert_int_equal(g.n, 0);
    struct policy_guard_stats gs;
    policy_guard_stats(guard_of(&cfg), &gs);
    assert_int_equal(gs.learned, 2);
    assert_int_equal(gs.known, 2);
    assert_int_equal(gs.write_errors, 0);

    char *text = read_file("callers.txt");
    assert_non_null(text);
    assert_non_null(strstr(text, "# egressd guarded-service callers"));
    assert_non_null(strstr(text, "\nidp web1  # learned 2025-10-15T09:00:00Z from 10.21.60.10, "
                                 "role web\n"));
    assert_non_null(strstr(text, "\nother 10.21.77.8  # learned"));
    assert_null(strstr(text, "app1"));
    assert_null(strstr(strstr(text, "idp web1") + 1, "idp web1"));
    policy_state_free(st);
    policy_free(p);
    config_free(&cfg);

    /* Baseline reads the file: learned callers are known, a new one is not. */
    learn_yaml(yaml, sizeof(yaml), "baseline");
    p = build(cat(base_yaml, yaml), &cfg);
    assert_true(policy_guard_known(guard_of(&cfg), 0, "web1"));
    assert_false(policy_guard_known(guard_of(&cfg), 1, "web1"));
    st = policy_state_new();
    mk(&r, "10.21.60.10", "198.51.100.9", "acme.idp.example");
    assert_int_equal(run(p, st, &r, &g), 0);
    mk(&r, "10.21.77.8", "198.51.100.9", "other.example");
    assert_int_equal(run(p, st, &r, &g), 0);
    mk(&r, "10.21.60.11", "198.51.100.9", "acme.idp.example");
    assert_int_equal(run(p, st, &r, &g), 1);
    assert_int_equal(g.a[0].kind, ALERT_GUARD_NEW);
    assert_string_equal(g.a[0].intel_list, "idp");
    assert_string_equal(g.a[0].reason, "new caller web2 of guarded service idp: not on its "
                                       "callers list nor in the callers file");
    /* Baseline mode learns nothing: the file is as it was. */
    assert_null(strstr(read_file("callers.txt"), "web2"));
    policy_state_free(st);
    policy_free(p);
    config_free(&cfg);

    /* Learning again appends after what the file holds, also after an edit
     * that left the last line without its newline. */
    FILE *f = fopen(path, "a");
    fputs("idp app9", f);
    fclose(f);
    learn_yaml(yaml, sizeof(yaml), "learn");
    p = build(cat(base_yaml, yaml), &cfg);
    assert_true(policy_guard_known(guard_of(&cfg), 0, "app9"));
    st = policy_state_new();
    mk(&r, "10.21.60.11", "198.51.100.9", "acme.idp.example");
    assert_int_equal(run(p, st, &r, &g), 0);
    text = read_file("callers.txt");
    if (!strstr(text, "\nidp app9\nidp web2  # learned"))
        fail_msg("callers file:\n%s", text);
    policy_state_free(st);
    policy_free(p);
    config_free(&cfg);
}

static void test_learn_unwritable(void **state)
{
    (void)state;
    /* A callers file in a directory that does not exist: learning goes on
     * in memory, the failures are counted. */
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "guarded_services:\n"
             "  callers_file: no-such-dir/callers.txt\n"
             "  services:\n"
             "    idp: {domain: [\"*.idp.example\"], mode: learn}\n");
    struct egr_config cfg;
    struct policy *p = build(cat(base_yaml, yaml), &cfg);
    struct policy_state *st = policy_state_new();
    struct got g = {0};
    struct flow_record r;
    mk(&r, "10.21.60.10", "198.51.100.9", "acme.idp.example");
    assert_int_equal(run(p, st, &r, &g), 0);
    mk(&r, "10.21.60.11", "198.51.100.9", "acme.idp.example");
    assert_int_equal(run(p, st, &r, &g), 0);
    struct policy_guard_stats gs;
    policy_guard_stats(guard_of(&cfg), &gs);
    assert_int_equal(gs.learned, 2);
    assert_int_equal(gs.write_errors, 2);
    assert_true(policy_guard_known(guard_of(&cfg), 0, "web2"));
    policy_state_free(st);
    policy_free(p);
    config_free(&cfg);
}

/* ---- volume ---------------------------------------------------------------- */

static const char *volume_yaml =
    "guarded_services:\n"
    "  services:\n"
    "    crmsaas:\n"
    "      domain: [\"*.crm.example\"]\n"
    "      mode: monitor\n"
    "      window: 10m\n"
    "      max_bytes_out: 1000\n"
    "      max_bytes_in: 5000\n"
    "      callers:\n"
    "        - {role: crm, max_bytes_in: 50000}\n"
    "        - {asset: app1, max_bytes_out: 0}\n"
    "    nolimit: {domain: [nolimit.example], mode: monitor}\n";

static void test_volume_function(void **state)
{
    (void)state;
    struct egr_config cfg;
    struct policy *p = build(cat(base_yaml, volume_yaml), &cfg);
    struct policy_guard *g = guard_of(&cfg);
    struct flow_record r;
    struct policy_guard_caller c;

    /* The limits that apply: the service's, an entry's own, 0 = none. */
    mk(&r, "10.21.60.10", "198.51.100.1", "a.crm.example");
    policy_annotate(p, &r);
    policy_guard_caller_of(g, 0, &r, &c);
    assert_string_equal(c.id, "web1");
    assert_false(c.listed);
    assert_int_equal(c.max_out, 1000);
    assert_int_equal(c.max_in, 5000);
    mk(&r, "10.21.30.10", "198.51.100.1", "a.crm.example");
    policy_annotate(p, &r);
    policy_guard_caller_of(g, 0, &r, &c);
    assert_true(c.listed);
    assert_int_equal(c.max_out, 1000);
    assert_int_equal(c.max_in, 50000);
    mk(&r, "10.21.40.10", "198.51.100.1", "a.crm.example");
    policy_annotate(p, &r);
    policy_guard_caller_of(g, 0, &r, &c);
    assert_int_equal(c.max_out, 0);
    mk(&r, "fd00:21::60:11", "2001:db8::1", "a.crm.example"); /* an asset by its v6 address */
    policy_annotate(p, &r);
    policy_guard_caller_of(g, 0, &r, &c);
    assert_string_equal(c.id, "web2");
    mk(&r, "10.21.88.1", "198.51.100.1", "a.crm.example");
    policy_annotate(p, &r);
    policy_guard_caller_of(g, 0, &r, &c);
    assert_string_equal(c.id, "10.21.88.1");

    /* One caller, driven in pieces: the crossing comes with the piece that
     * takes the sum over the limit, once per window, both directions apart. */
    struct policy_guard_caller a = {"split", 0, 1000, 5000};
    struct policy_guard_volume v;
    uint64_t t = 1760518800000000ull;
    assert_int_equal(policy_guard_volume(g, &a, 0, 600, 1000, t, &v), 0);
    assert_int_equal(policy_guard_volume(g, &a, 0, 400, 1000, t + 1, &v), 0); /* = limit */
    assert_int_equal(v.bytes_out, 1000);
    assert_int_equal(policy_guard_volume(g, &a, 0, 1, 1000, t + 2, &v), GUARD_VOL_OUT);
    assert_int_equal(v.bytes_out, 1001);
    assert_int_equal(v.window_start_us, t);
    assert_int_equal(policy_guard_volume(g, &a, 0, 5000, 1000, t + 3, &v), 0); /* reported */
    assert_int_equal(policy_guard_volume(g, &a, 0, 0, 1001, t + 4, &v), GUARD_VOL_IN);
    assert_int_equal(v.bytes_in, 5001);
    assert_int_equal(policy_guard_volume(g, &a, 0, 9999, 9999, t + 5, &v), 0);
    /* The window ends after 600 s of packet time: a new one, new crossings. */
    assert_int_equal(policy_guard_volume(g, &a, 0, 10, 10, t + 600000000ull, &v), 0);
    assert_int_equal(v.window_start_us, t + 600000000ull);
    assert_int_equal(v.bytes_out, 10);
    assert_int_equal(policy_guard_volume(g, &a, 0, 2000, 6000, t + 600000001ull, &v),
                     GUARD_VOL_OUT | GUARD_VOL_IN);
    /* The same bytes in one piece cross at once; another caller and another
     * service have their own windows. */
    struct policy_guard_caller b = {"whole", 0, 1000, 5000};
    assert_int_equal(policy_guard_volume(g, &b, 0, 1001, 5001, t, &v),
                     GUARD_VOL_OUT | GUARD_VOL_IN);
    assert_int_equal(policy_guard_volume(g, &b, 1, 1001, 5001, t, &v),
                     GUARD_VOL_OUT | GUARD_VOL_IN);
    /* No limits: nothing is ever crossed. */
    struct policy_guard_caller n = {"whole", 0, 0, 0};
    assert_int_equal(policy_guard_volume(g, &n, 0, UINT32_MAX, UINT32_MAX, t, &v), 0);
    policy_free(p);
    config_free(&cfg);
}

static void test_volume_alerts(void **state)
{
    (void)state;
    struct egr_config cfg;
    struct policy *p = build(cat(base_yaml, volume_yaml), &cfg);
    struct policy_state *st = policy_state_new();
    struct got g = {0};
    struct flow_record r;

    /* The integration host pulls 40 kB (under its own 50 kB), then 20 kB. */
    mk(&r, "10.21.30.10", "198.51.100.1", "a.crm.example");
    r.bytes_toserver = 400;
    r.bytes_toclient = 40000;
    assert_int_equal(run(p, st, &r, &g), 0);
    mk(&r, "10.21.30.10", "198.51.100.1", "b.crm.example");
    r.bytes_toserver = 400;
    r.bytes_toclient = 20000;
    r.emit_us += 1000000;
    assert_int_equal(run(p, st, &r, &g), 1);
    assert_int_equal(g.a[0].kind, ALERT_GUARD_VOLUME);
    assert_string_equal(g.a[0].intel_list, "crmsaas");
    assert_string_equal(g.a[0].reason, "caller sync received 60000 bytes from guarded service "
                                       "crmsaas within 600 s (threshold 50000)");
    /* A web server uploading 1500 bytes (over the service's 1000). */
    mk(&r, "10.21.60.10", "198.51.100.1", "a.crm.example");
    r.bytes_toserver = 1500;
    r.bytes_toclient = 100;
    assert_int_equal(run(p, st, &r, &g), 1);
    assert_string_equal(g.a[1].reason, "caller web1 sent 1500 bytes to guarded service "
                                       "crmsaas within 600 s (threshold 1000)");
    /* Both directions at once: two alerts, two keys. */
    mk(&r, "10.21.60.11", "198.51.100.1", "a.crm.example");
    r.bytes_toserver = 2000;
    r.bytes_toclient = 6000;
    assert_int_equal(run(p, st, &r, &g), 2);
    assert_string_not_equal(g.a[2].alert_key, g.a[3].alert_key);
    assert_non_null(strstr(g.a[2].reason, "sent 2000"));
    assert_non_null(strstr(g.a[3].reason, "received 6000"));
    /* app1's out limit is its own 0: none. */
    mk(&r, "10.21.40.10", "198.51.100.1", "a.crm.example");
    r.bytes_toserver = 1u << 30;
    r.bytes_toclient = 10;
    assert_int_equal(run(p, st, &r, &g), 0);
    policy_state_free(st);
    policy_free(p);
    config_free(&cfg);
}

static void test_volume_table_full(void **state)
{
    (void)state;
    struct egr_config cfg;
    struct policy *p = build(cat(base_yaml, volume_yaml), &cfg);
    struct policy_guard *g = guard_of(&cfg);
    uint64_t t = 1760518800000000ull;
    struct policy_guard_caller c = {"", 0, 1000, 5000};
    unsigned counted = 0;
    for (unsigned i = 0; i < 70000; i++) {
        snprintf(c.id, sizeof(c.id), "caller-%u", i);
        struct policy_guard_volume v;
        counted += policy_guard_volume(g, &c, 0, 1001, 0, t, &v) == GUARD_VOL_OUT;
    }
    struct policy_guard_stats gs;
    policy_guard_stats(g, &gs);
    assert_true(counted <= 65536);
    assert_true(counted > 60000);
    assert_int_equal(gs.windows_full, 70000 - counted);
    /* Once those windows ended, their slots are taken over. */
    snprintf(c.id, sizeof(c.id), "late");
    assert_int_equal(policy_guard_volume(g, &c, 0, 1001, 0, t + 700000000ull, NULL),
                     GUARD_VOL_OUT);
    policy_free(p);
    config_free(&cfg);
}

struct hammer {
    struct policy_guard *g;
    unsigned crossings;
};

static void *hammer_run(void *arg)
{
    struct hammer *h = arg;
    struct policy_guard_caller c = {"shared", 0, 100000, 0};
    for (int i = 0; i < 20000; i++)
        h->crossings += policy_guard_volume(h->g, &c, 0, 10, 0, 1760518800000000ull + (uint64_t)i,
                                            NULL) != 0;
    return NULL;
}

static void test_volume_threads(void **state)
{
    (void)state;
    struct egr_config cfg;
    struct policy *p = build(cat(base_yaml, volume_yaml), &cfg);
    struct hammer h[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        h[i].g = guard_of(&cfg);
        h[i].crossings = 0;
        assert_int_equal(pthread_create(&th[i], NULL, hammer_run, &h[i]), 0);
    }
    unsigned total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += h[i].crossings;
    }
    /* 4 x 20000 x 10 bytes = 800000, over 100000 exactly once. */
    assert_int_equal(total, 1);
    struct policy_guard_caller c = {"shared", 0, 100000, 0};
    struct policy_guard_volume v;
    policy_guard_volume(guard_of(&cfg), &c, 0, 0, 0, 1760518800000000ull + 20000, &v);
    assert_int_equal(v.bytes_out, 800000);
    policy_free(p);
    config_free(&cfg);
}

/* ---- output ---------------------------------------------------------------- */

static void test_eve_field(void **state)
{
    (void)state;
    struct egr_config cfg;
    struct policy *p = build(cat(base_yaml, deny_yaml), &cfg);
    struct policy_state *st = policy_state_new();
    struct got g = {0};
    struct flow_record r;
    mk(&r, "10.21.60.10", "198.51.100.7", "acme.crm.example");
    assert_int_equal(run(p, st, &r, &g), 1);
    struct jbuf jb;
    jbuf_init(&jb);
    eve_format_alert(&jb, &g.a[0]);
    assert_true(jbuf_ok(&jb));
    char *json = strndup(jb.buf, jb.len);
    assert_non_null(strstr(json, "\"category\":\"guarded-service-caller\""));
    assert_non_null(strstr(json, "\"guarded_service\":\"crmsaas\""));
    assert_non_null(strstr(json, "\"signature_id\":9100004"));
    assert_null(strstr(json, "intel_list"));
    free(json);
    jbuf_free(&jb);
    assert_int_equal(alert_kind_is_guard(ALERT_GUARD_VOLUME), 1);
    assert_int_equal(alert_kind_is_guard(ALERT_INTEL), 0);
    assert_string_equal(alert_kind_name(ALERT_GUARD_NEW), "guarded-service-new-caller");
    assert_string_equal(alert_kind_name(ALERT_GUARD_VOLUME), "guarded-service-volume");
    assert_string_equal(alert_list_field(ALERT_INTEL), "intel_list");
    policy_state_free(st);
    policy_free(p);
    config_free(&cfg);
}

/* ---- errors ---------------------------------------------------------------- */

static void expect_error(const char *yaml, const char *want)
{
    struct egr_config cfg;
    struct egr_err err = {""};
    int rc = load(yaml, &cfg, &err);
    if (rc == EGR_OK) {
        config_free(&cfg);
        fail_msg("loaded, expected an error with '%s'", want);
    }
    char path[256];
    path_of("g.yaml", path, sizeof(path));
    if (!strstr(err.msg, want) || strncmp(err.msg, path, strlen(path)) != 0)
        fail_msg("error '%s' does not start with %s or lacks '%s'", err.msg, path, want);
    config_free(&cfg);
}

static void test_config_errors(void **state)
{
    (void)state;
    char y[4096];
#define SVC(body) (snprintf(y, sizeof(y), "%sguarded_services:\n  services:\n%s", base_yaml, \
                            body), y)
    expect_error(SVC("    s1: {mode: deny}\n"),
                 ":13:9: guarded_services.services.s1: a guarded service needs at least one "
                 "domain");
    expect_error(SVC("    s1: {domain: [a.example], colour: blue}\n"),
                 ":13:31: guarded_services.services.s1.colour: unknown key");
    expect_error(SVC("    s1: {domain: [\"a.*.example\"]}\n"),
                 "guarded_services.services.s1.domain[0]: 'a.*.example': a domain is a name or "
                 "*.suffix");
    expect_error(SVC("    s1: {domain: [a.example], mode: sometimes}\n"),
                 ":13:37: guarded_services.services.s1.mode: expected deny, learn, baseline or "
                 "monitor");
    expect_error(SVC("    s1: {domain: [a.example], severity: urgent}\n"),
                 "guarded_services.services.s1.severity: expected high, medium or low");
    expect_error(SVC("    s1: {domain: [a.example], window: 0}\n"),
                 "guarded_services.services.s1.window:");
    expect_error(SVC("    s1: {domain: [a.example], max_bytes_in: lots}\n"),
                 "guarded_services.services.s1.max_bytes_in:");
    expect_error(SVC("    s1: {domain: [a.example], callers: [{role: web, asset: web1}]}\n"),
                 "guarded_services.services.s1.callers[0]: a caller names exactly one of "
                 "asset, role or cidr (got 2)");
    expect_error(SVC("    s1: {domain: [a.example], callers: [{max_bytes_in: 5}]}\n"),
                 "(got 0)");
    expect_error(SVC("    s1: {domain: [a.example], callers: [web]}\n"),
                 "guarded_services.services.s1.callers[0]: expected a mapping");
    expect_error(SVC("    s1: {domain: [a.example], callers: [{cidr: [10.0.0.1/8]}]}\n"),
                 "guarded_services.services.s1.callers[0].cidr[0]:");
    expect_error(SVC("    s1: {domain: [a.example], callers: [{asset: nosuch}]}\n"),
                 ":13:49: guarded_services.services.s1.callers[0].asset: no asset 'nosuch' in "
                 "assets");
    expect_error(SVC("    s1: {domain: [a.example], callers: [{role: nosuch}]}\n"),
                 ":13:48: guarded_services.services.s1.callers[0].role: no role 'nosuch' in "
                 "roles");
    expect_error(SVC("    s1: {domain: [a.example], mode: learn}\n"),
                 ":13:37: guarded_services.services.s1.mode: learn needs "
                 "guarded_services.callers_file");
    expect_error(SVC("    \"bad name\": {domain: [a.example]}\n"),
                 "'bad name': a name may hold only letters");
    expect_error(SVC("    s1: [a.example]\n"), "guarded_services.services.s1: expected a mapping");
    snprintf(y, sizeof(y), "%sguarded_services:\n  servces: {}\n", base_yaml);
    expect_error(y, "guarded_services.servces: unknown key");
    snprintf(y, sizeof(y), "guarded_services:\n  services:\n    s1: {domain: [a.example]}\n");
    expect_error(y, ":2:3: guarded_services: callers are judged on egress, which needs "
                    "home_net or assets");

    /* The callers file: bad lines name file:line. */
    write_file("bad-callers.txt", "# known\nidp web1\nidp\n");
    snprintf(y, sizeof(y), "%sguarded_services:\n  callers_file: bad-callers.txt\n"
             "  services:\n    idp: {domain: [a.example], mode: baseline}\n", base_yaml);
    struct egr_config cfg;
    struct egr_err err = {""};
    assert_int_not_equal(load(y, &cfg, &err), EGR_OK);
    assert_non_null(strstr(err.msg, "bad-callers.txt:3: expected 'SERVICE CALLER'"));
    config_free(&cfg);
    write_file("bad-callers.txt", "idp web1 extra\n");
    assert_int_not_equal(load(y, &cfg, &err), EGR_OK);
    assert_non_null(strstr(err.msg, "bad-callers.txt:1: expected 'SERVICE CALLER'"));
    config_free(&cfg);
    write_file("bad-callers.txt", "idp web<1>\n");
    assert_int_not_equal(load(y, &cfg, &err), EGR_OK);
    assert_non_null(strstr(err.msg, "bad-callers.txt:1: 'web<1>' is not an asset name or an "
                                    "address"));
    config_free(&cfg);
    /* Unknown services in the file (since removed) are skipped; blank and
     * comment lines too; a directory is refused. */
    write_file("bad-callers.txt", "\n  # c\ngone web1\nidp 10.21.9.9 # note\n");
    assert_int_equal(load(y, &cfg, &err), EGR_OK);
    assert_true(policy_guard_known(guard_of(&cfg), 0, "10.21.9.9"));
    assert_false(policy_guard_known(guard_of(&cfg), 0, "web1"));
    config_free(&cfg);
    snprintf(y, sizeof(y), "%sguarded_services:\n  callers_file: .\n"
             "  services:\n    idp: {domain: [a.example], mode: baseline}\n", base_yaml);
    assert_int_not_equal(load(y, &cfg, &err), EGR_OK);
    assert_non_null(strstr(err.msg, "not a regular file"));
    config_free(&cfg);

    /* An empty section configures nothing; an empty services map neither. */
    snprintf(y, sizeof(y), "%sguarded_services:\n", base_yaml);
    assert_int_equal(load(y, &cfg, &err), EGR_OK);
    assert_false(policy_guard_active(cfg.policy.spec->guard));
    config_free(&cfg);
    snprintf(y, sizeof(y), "guarded_services: {services: {}}\n");
    assert_int_equal(load(y, &cfg, &err), EGR_OK);
    assert_null(cfg.policy.spec); /* nothing configured at all */
    config_free(&cfg);
#undef SVC
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_service_matching), cmocka_unit_test(test_deny_callers),
        cmocka_unit_test(test_learn_then_baseline), cmocka_unit_test(test_learn_unwritable),
        cmocka_unit_test(test_volume_function),  cmocka_unit_test(test_volume_alerts),
        cmocka_unit_test(test_volume_table_full), cmocka_unit_test(test_volume_threads),
        cmocka_unit_test(test_eve_field),        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

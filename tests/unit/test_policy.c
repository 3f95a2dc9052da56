/* test_policy.c - the egress policy: domain, CIDR (IPv4 and IPv6), ASN,
 * country, nDPI, protocol and port matching; direction and asset
 * annotation; evaluation order; dedup with its suppression window and the
 * final counts; the rate limit; the exfiltration window; learn mode writing
 * a baseline that baseline mode then reads; intel lists and their change
 * detection; configuration errors with file:line:column; and a reload with
 * a broken file that leaves the old policy in force. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "egressd/classify.h"
#include "egressd/config.h"
#include "egressd/policy.h"
#include "egressd/sensor.h"
#include "policy-int.h"

static char tmpdir[] = "/tmp/egressd-test-policy-XXXXXX";

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* Loads YAML text (written as tmpdir/NAME) into *cfg over the defaults. */
static int load(const char *name, const char *text, struct egr_config *cfg, struct egr_err *err)
{
    write_file(name, text);
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    config_defaults(cfg);
    return config_load(cfg, path, err);
}

static struct policy *build(const char *text, struct egr_config *cfg)
{
    struct egr_err err = {""};
    if (load("p.yaml", text, cfg, &err) != EGR_OK)
        fail_msg("%s", err.msg);
    struct policy *p;
    if (policy_new(&cfg->policy, &p, &err) != EGR_OK)
        fail_msg("%s", err.msg);
    return p;
}

/* A TCP flow record src:sport -> dst:dport. */
static void mk(struct flow_record *r, const char *src, const char *dst, unsigned proto,
               unsigned dport)
{
    memset(r, 0, sizeof(*r));
    int v6 = strchr(src, ':') != NULL;
    r->family = v6 ? 6 : 4;
    assert_int_equal(inet_pton(v6 ? AF_INET6 : AF_INET, src, r->src_ip), 1);
    assert_int_equal(inet_pton(v6 ? AF_INET6 : AF_INET, dst, r->dst_ip), 1);
    r->proto = (uint8_t)proto;
    r->src_port = 40000;
    r->dst_port = (uint16_t)dport;
    r->first_us = 1760515200000000ull;
    r->last_us = r->first_us + 1000;
    r->emit_us = r->last_us;
    r->bytes_toserver = 1000;
    snprintf(r->ndpi.proto, sizeof(r->ndpi.proto), "Unknown");
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

/* ---- matching ----------------------------------------------------------- */

static void test_domain_match(void **state)
{
    (void)state;
    assert_true(pol_domain_match("api.f5.com", "api.f5.com"));
    assert_true(pol_domain_match("api.f5.com", "API.F5.com."));
    assert_false(pol_domain_match("api.f5.com", "xapi.f5.com"));
    assert_false(pol_domain_match("api.f5.com", "api.f5.com.evil.net"));
    assert_true(pol_domain_match("*.f5.com", "a.b.F5.COM"));
    assert_true(pol_domain_match("*.f5.com", "api.f5.com."));
    assert_false(pol_domain_match("*.f5.com", "f5.com"));      /* suffix only below it */
    assert_false(pol_domain_match("*.f5.com", "evilf5.com"));  /* label boundary */
    assert_false(pol_domain_match("*.f5.com", ""));
    assert_false(pol_domain_match("*.f5.com", "."));
}

static const char *rules_yaml =
    "home_net: [10.0.0.0/8, \"fd00::/8\"]\n"
    "assets:\n"
    "  - {name: lb1, hosts: [10.1.1.10, \"fd00::10\"], role: lb}\n"
    "roles:\n"
    "  lb:\n"
    "    mode: deny\n"
    "    allow:\n"
    "      - {name: ntp, proto: udp, port: [123]}\n"
    "      - {name: vendor, domain: [\"*.vendor.example\"], proto: tcp, port: [443, \"8000-8010\"]}\n"
    "      - {name: net4, cidr: [192.0.2.0/24]}\n"
    "      - {name: net6, cidr: [\"2001:db8:1::/48\"], proto: tcp}\n"
    "      - {name: asn, asn: [AS64500, 64501]}\n"
    "      - {name: country, country: [se], ndpi: [TLS]}\n";

static int allowed(const struct policy *p, struct flow_record *r)
{
    struct policy_state *st = policy_state_new();
    struct got g = {0};
    run(p, st, r, &g);
    policy_state_free(st);
    return g.n == 0;
}

static void test_rules(void **state)
{
    (void)state;
    struct egr_config cfg;
    struct policy *p = build(rules_yaml, &cfg);
    struct flow_record r;

    mk(&r, "10.1.1.10", "198.51.100.1", 17, 123);
    assert_true(allowed(p, &r));
    mk(&r, "10.1.1.10", "198.51.100.1", 6, 123); /* NTP port but TCP */
    assert_false(allowed(p, &r));

    mk(&r, "10.1.1.10", "198.51.100.1", 6, 443);
    snprintf(r.ndpi.tls_sni, sizeof(r.ndpi.tls_sni), "Updates.Vendor.Example");
    assert_true(allowed(p, &r));
    r.dst_port = 8005; /* inside the range */
    assert_true(allowed(p, &r));
    r.dst_port = 8011;
    assert_false(allowed(p, &r));
    mk(&r, "10.1.1.10", "198.51.100.1", 6, 443); /* the name from passive DNS */
    snprintf(r.enrich.dest_name, sizeof(r.enrich.dest_name), "cdn.vendor.example");
    assert_true(allowed(p, &r));
    mk(&r, "10.1.1.10", "198.51.100.1", 6, 443); /* HTTP host */
    snprintf(r.ndpi.http_host, sizeof(r.ndpi.http_host), "vendor.example");
    assert_false(allowed(p, &r)); /* *.vendor.example is below it only */

    mk(&r, "10.1.1.10", "192.0.2.77", 6, 22);
    assert_true(allowed(p, &r));
    mk(&r, "10.1.1.10", "192.0.3.1", 6, 22);
    assert_false(allowed(p, &r));

    mk(&r, "fd00::10", "2001:db8:1:ffff::1", 6, 22);
    assert_true(allowed(p, &r));
    mk(&r, "fd00::10", "2001:db8:1:ffff::1", 17, 22); /* net6 is TCP only */
    assert_false(allowed(p, &r));
    mk(&r, "fd00::10", "2001:db8:2::1", 6, 22);
    assert_false(allowed(p, &r));

    mk(&r, "10.1.1.10", "203.0.113.9", 6, 25);
    r.enrich.has_asn = 1;
    r.enrich.asn = 64501;
    assert_true(allowed(p, &r));
    r.enrich.asn = 64502;
    assert_false(allowed(p, &r));

    /* country AND ndpi: both must hold */
    mk(&r, "10.1.1.10", "203.0.113.9", 6, 443);
    r.enrich.has_country = 1;
    memcpy(r.enrich.country, "SE", 3);
    snprintf(r.ndpi.proto, sizeof(r.ndpi.proto), "TLS.Google");
    snprintf(r.ndpi.master, sizeof(r.ndpi.master), "TLS");
    assert_true(allowed(p, &r));
    memcpy(r.enrich.country, "DE", 3);
    assert_false(allowed(p, &r));
    memcpy(r.enrich.country, "SE", 3);
    snprintf(r.ndpi.master, sizeof(r.ndpi.master), "QUIC");
    snprintf(r.ndpi.proto, sizeof(r.ndpi.proto), "QUIC.Google");
    assert_false(allowed(p, &r));
    /* an unknown country never matches a country rule */
    mk(&r, "10.1.1.10", "203.0.113.9", 6, 443);
    snprintf(r.ndpi.proto, sizeof(r.ndpi.proto), "TLS");
    assert_false(allowed(p, &r));

    policy_free(p);
    config_free(&cfg);
}

/* ---- annotation --------------------------------------------------------- */

static void test_annotate(void **state)
{
    (void)state;
    struct egr_config cfg;
    struct policy *p = build("home_net: [10.0.0.0/8, \"fd00::/8\"]\n"
                             "assets: [{name: lb1, hosts: [10.1.1.10], role: lb},\n"
                             "         {name: dmz, hosts: [198.51.100.7], role: lb}]\n"
                             "default_role: ws\n"
                             "roles: {lb: {mode: deny}, ws: {mode: monitor}}\n",
                             &cfg);
    struct flow_record r;
    mk(&r, "10.1.1.10", "8.8.8.8", 6, 443);
    policy_annotate(p, &r);
    assert_int_equal(r.enrich.direction, DIR_EGRESS);
    assert_string_equal(r.enrich.asset, "lb1");
    assert_string_equal(r.enrich.role, "lb");

    mk(&r, "8.8.8.8", "10.1.1.10", 6, 22); /* answered, not egress */
    policy_annotate(p, &r);
    assert_int_equal(r.enrich.direction, DIR_INBOUND);
    assert_string_equal(r.enrich.asset, "lb1");

    mk(&r, "10.9.9.9", "10.1.1.10", 6, 22);
    policy_annotate(p, &r);
    assert_int_equal(r.enrich.direction, DIR_INTERNAL);
    assert_string_equal(r.enrich.asset, "");
    assert_string_equal(r.enrich.role, "ws"); /* default role of the initiator */

    mk(&r, "8.8.8.8", "1.1.1.1", 17, 53);
    policy_annotate(p, &r);
    assert_int_equal(r.enrich.direction, DIR_EXTERNAL);
    assert_string_equal(r.enrich.role, "");

    /* an asset outside home_net is still local */
    mk(&r, "198.51.100.7", "1.1.1.1", 6, 443);
    policy_annotate(p, &r);
    assert_int_equal(r.enrich.direction, DIR_EGRESS);
    assert_string_equal(r.enrich.asset, "dmz");

    mk(&r, "fd00::1", "2001:db8::1", 6, 443);
    policy_annotate(p, &r);
    assert_int_equal(r.enrich.direction, DIR_EGRESS);
    assert_string_equal(r.enrich.role, "ws");

    /* IPv4-mapped IPv6 is the IPv4 address */
    mk(&r, "::ffff:10.1.1.10", "::ffff:8.8.8.8", 6, 443);
    policy_annotate(p, &r);
    assert_int_equal(r.enrich.direction, DIR_EGRESS);
    assert_string_equal(r.enrich.asset, "lb1");

    policy_free(p);
    config_free(&cfg);
}

/* ---- evaluation order, modes, intel ------------------------------------- */

static void test_order_and_modes(void **state)
{
    (void)state;
    write_file("ips.txt", "# c2 servers\n203.0.113.66   note\n\n2001:db8:bad::/48\n");
    write_file("doms.txt", "evil.example\n");
    write_file("ja3.txt", "63292E93CC661E4E442D804A56271239\n");
    struct egr_config cfg;
    struct policy *p = build(
        "home_net: [10.0.0.0/8]\n"
        "assets:\n"
        "  - {name: lb1, hosts: [10.1.1.10], role: lb}\n"
        "  - {name: mon1, hosts: [10.1.1.11], role: watch}\n"
        "roles:\n"
        "  lb: {mode: deny, severity: medium, allow: [{proto: tcp, port: [443]}]}\n"
        "  watch: {mode: monitor}\n"
        "intel:\n"
        "  - {name: c2-ips, type: ip, file: ips.txt}\n"
        "  - {name: bad-doms, type: domain, file: doms.txt, severity: low}\n"
        "  - {name: bad-ja3, type: ja3, file: ja3.txt}\n",
        &cfg);
    struct policy_state *st = policy_state_new();
    struct got g = {0};
    struct flow_record r;

    /* allowed by the role but on an intel list: the intel alert only */
    mk(&r, "10.1.1.10", "203.0.113.66", 6, 443);
    assert_int_equal(run(p, st, &r, &g), 1);
    assert_int_equal(g.a[0].kind, ALERT_INTEL);
    assert_string_equal(g.a[0].intel_list, "c2-ips");
    assert_string_equal(g.a[0].reason, "matched intel list c2-ips (address 203.0.113.66)");
    assert_int_equal(g.a[0].severity, SEV_HIGH);
    assert_int_equal(r.alerted, 1);

    /* intel first, then the role: two alerts, in that order */
    mk(&r, "10.1.1.10", "198.51.100.1", 17, 53);
    snprintf(r.enrich.dest_name, sizeof(r.enrich.dest_name), "x.evil.example");
    assert_int_equal(run(p, st, &r, &g), 2);
    assert_int_equal(g.a[1].kind, ALERT_INTEL);
    assert_string_equal(g.a[1].intel_list, "bad-doms");
    assert_int_equal(g.a[1].severity, SEV_LOW);
    assert_int_equal(g.a[2].kind, ALERT_UNEXPECTED);
    assert_string_equal(g.a[2].reason, "no allow rule of role lb matched");
    assert_int_equal(g.a[2].severity, SEV_MEDIUM);
    assert_string_equal(g.a[2].service, "udp/53");

    /* intel for any host and direction, e.g. an inbound scanner */
    mk(&r, "203.0.113.66", "10.7.7.7", 6, 22);
    assert_int_equal(run(p, st, &r, &g), 1);
    assert_int_equal(g.a[3].kind, ALERT_INTEL);

    /* JA3, case-insensitive */
    mk(&r, "10.7.7.7", "198.51.100.2", 6, 443);
    snprintf(r.ndpi.tls_ja3c, sizeof(r.ndpi.tls_ja3c), "63292e93cc661e4e442d804a56271239");
    assert_int_equal(run(p, st, &r, &g), 1);
    assert_string_equal(g.a[4].intel_list, "bad-ja3");

    /* monitor: nothing; a host without a role: nothing */
    mk(&r, "10.1.1.11", "198.51.100.1", 17, 9999);
    assert_int_equal(run(p, st, &r, &g), 0);
    mk(&r, "10.7.7.7", "198.51.100.1", 17, 9999);
    assert_int_equal(run(p, st, &r, &g), 0);
    assert_int_equal(r.alerted, 0);

    /* the role never judges inbound or internal flows */
    mk(&r, "198.51.100.1", "10.1.1.10", 17, 9999);
    assert_int_equal(run(p, st, &r, &g), 0);
    mk(&r, "10.1.1.10", "10.2.2.2", 17, 9999);
    assert_int_equal(run(p, st, &r, &g), 0);

    /* IPv6 list entries, either end, any direction (transit here) */
    mk(&r, "2001:db8:1::1", "2001:db8:bad:1::5", 6, 443);
    assert_int_equal(run(p, st, &r, &g), 1);
    assert_string_equal(g.a[5].reason, "matched intel list c2-ips (address 2001:db8:bad:1::5)");
    mk(&r, "2001:db8:bad::9", "2001:db8:1::1", 6, 443);
    assert_int_equal(run(p, st, &r, &g), 1);
    policy_state_free(st);
    policy_free(p);
    config_free(&cfg);
}

/* ---- dedup, window, flush, rate limit ------------------------------------ */

static void test_dedup(void **state)
{
    (void)state;
    struct egr_config cfg;
    struct policy *p = build("home_net: [10.0.0.0/8]\n"
                             "assets: [{name: lb1, hosts: [10.1.1.10], role: lb}]\n"
                             "roles: {lb: {mode: deny}}\n"
                             "alerts: {suppress: 60, max_per_second: 3}\n",
                             &cfg);
    struct policy_state *st = policy_state_new();
    struct got g = {0};
    struct flow_record r;
    const uint64_t t0 = 1760515200000000ull;

    mk(&r, "10.1.1.10", "198.51.100.1", 6, 443);
    assert_int_equal(run(p, st, &r, &g), 1);
    assert_int_equal(g.a[0].update, 0);
    assert_int_equal(g.a[0].count, 1);
    char key[41];
    memcpy(key, g.a[0].alert_key, 41);
    assert_int_equal(strlen(key), 40);

    /* same asset, destination and service within the window: folded */
    for (int i = 1; i <= 4; i++) {
        mk(&r, "10.1.1.10", "198.51.100.1", 6, 443);
        r.src_port = (uint16_t)(40000 + i);
        r.emit_us = r.last_us = t0 + (uint64_t)i * 10000000; /* +10 s each */
        assert_int_equal(run(p, st, &r, &g), 0);
        assert_int_equal(r.alerted, 1); /* it did match */
    }
    /* another port is another service: a new key */
    mk(&r, "10.1.1.10", "198.51.100.1", 6, 8443);
    assert_int_equal(run(p, st, &r, &g), 1);
    assert_string_not_equal(g.a[1].alert_key, key);

    /* past the window: one update carrying the count */
    mk(&r, "10.1.1.10", "198.51.100.1", 6, 443);
    r.emit_us = r.last_us = t0 + 61000000 + 1000;
    assert_int_equal(run(p, st, &r, &g), 1);
    assert_int_equal(g.a[2].update, 1);
    assert_int_equal(g.a[2].count, 6);
    assert_string_equal(g.a[2].alert_key, key);
    assert_int_equal(g.a[2].first_seen_us, t0);

    /* two more inside the new window, then the end of the run */
    for (int i = 0; i < 2; i++) {
        mk(&r, "10.1.1.10", "198.51.100.1", 6, 443);
        r.emit_us = r.last_us = t0 + 70000000 + (uint64_t)i;
        assert_int_equal(run(p, st, &r, &g), 0);
    }
    policy_flush(p, st, t0 + 80000000, collect, &g);
    assert_int_equal(g.n, 4);
    assert_int_equal(g.a[3].update, 1);
    assert_int_equal(g.a[3].count, 8);
    assert_string_equal(g.a[3].alert_key, key);
    policy_flush(p, st, t0 + 90000000, collect, &g); /* nothing new: nothing */
    assert_int_equal(g.n, 4);

    struct policy_stats ps;
    policy_state_stats(st, &ps);
    assert_int_equal(ps.alerts, 4);
    assert_int_equal(ps.alerts_first, 2);
    assert_int_equal(ps.suppressed, 7);

    /* rate limit: 3 per second of packet time, the rest counted */
    struct got h = {0};
    for (int i = 0; i < 5; i++) {
        mk(&r, "10.1.1.10", "198.51.100.1", 17, (unsigned)(1000 + i));
        r.emit_us = t0 + 500000000;
        run(p, st, &r, &h);
    }
    assert_int_equal(h.n, 3);
    policy_state_stats(st, &ps);
    assert_int_equal(ps.rate_limited, 2);
    /* a rate-limited alert is not remembered: it alerts next second */
    mk(&r, "10.1.1.10", "198.51.100.1", 17, 1004);
    r.emit_us = t0 + 501000000;
    assert_int_equal(run(p, st, &r, &h), 1);
    assert_int_equal(h.a[3].update, 0);

    policy_state_free(st);
    policy_free(p);
    config_free(&cfg);
}

static void test_exfil_and_risk(void **state)
{
    (void)state;
    struct egr_config cfg;
    struct policy *p = build("home_net: [10.0.0.0/8]\n"
                             "assets: [{name: lb1, hosts: [10.1.1.10], role: lb}]\n"
                             "roles: {lb: {mode: monitor}}\n"
                             "alerts: {risks: [\"Self-signed Certificate\"], "
                             "risk_severity: low}\n"
                             "exfiltration: {window: 60, bytes: 5000}\n",
                             &cfg);
    struct policy_state *st = policy_state_new();
    struct got g = {0};
    struct flow_record r;
    const uint64_t t0 = 1760515200000000ull;
    for (int i = 0; i < 5; i++) { /* 5 x 1000 bytes: not above 5000 */
        mk(&r, "10.1.1.10", "198.51.100.1", 6, (unsigned)(1000 + i));
        r.emit_us = t0 + (uint64_t)i * 1000000;
        assert_int_equal(run(p, st, &r, &g), 0);
    }
    mk(&r, "10.1.1.10", "198.51.100.9", 6, 2000);
    r.emit_us = t0 + 10000000;
    assert_int_equal(run(p, st, &r, &g), 1);
    assert_int_equal(g.a[0].kind, ALERT_EXFIL);
    assert_int_equal(g.a[0].severity, SEV_HIGH);
    assert_non_null(strstr(g.a[0].reason, "sent 6000 bytes out within 60 s"));
    mk(&r, "10.1.1.10", "198.51.100.9", 6, 2001); /* same window: once */
    r.emit_us = t0 + 20000000;
    assert_int_equal(run(p, st, &r, &g), 0);
    /* a new window starts from zero */
    mk(&r, "10.1.1.10", "198.51.100.9", 6, 2002);
    r.emit_us = t0 + 200000000;
    assert_int_equal(run(p, st, &r, &g), 0);

    /* the chosen risk alerts, another risk does not */
    mk(&r, "10.1.1.10", "198.51.100.9", 6, 443);
    r.bytes_toserver = 0;
    r.ndpi.risk = 0;
    for (unsigned b = 1; b < 64; b++) {
        const char *n = classify_risk_name(b);
        if (n && !strcmp(n, "Self-signed Certificate"))
            r.ndpi.risk |= (uint64_t)1 << b;
    }
    assert_true(r.ndpi.risk != 0);
    r.emit_us = t0 + 300000000;
    assert_int_equal(run(p, st, &r, &g), 1);
    assert_int_equal(g.a[1].kind, ALERT_RISK);
    assert_int_equal(g.a[1].severity, SEV_LOW);
    assert_string_equal(g.a[1].reason, "nDPI risk: Self-signed Certificate");
    policy_state_free(st);
    policy_free(p);
    config_free(&cfg);
}

/* ---- learning ------------------------------------------------------------ */

static void test_learn_then_baseline(void **state)
{
    (void)state;
    const char *pre = "home_net: [10.0.0.0/8]\n"
                      "assets: [{name: lb1, hosts: [10.1.1.10], role: lb}]\n"
                      "roles: {lb: {mode: ";
    const char *post = "}}\nlearning: {baseline_file: learned.yaml}\n";
    char text[512];
    snprintf(text, sizeof(text), "%s%s%s", pre, "learn", post);
    struct egr_config cfg;
    struct policy *p = build(text, &cfg);
    assert_true(policy_learning(p));
    struct policy_state *st = policy_state_new();
    policy_state_seed(p, st);
    struct got g = {0};
    struct flow_record r;
    mk(&r, "10.1.1.10", "198.51.100.1", 6, 443);
    snprintf(r.enrich.dest_name, sizeof(r.enrich.dest_name), "Updates.Vendor.example");
    snprintf(r.ndpi.proto, sizeof(r.ndpi.proto), "TLS");
    assert_int_equal(run(p, st, &r, &g), 0);
    mk(&r, "10.1.1.10", "198.51.100.2", 17, 123);
    assert_int_equal(run(p, st, &r, &g), 0);
    /* a hostile name is learned by address, never written as a name */
    mk(&r, "10.1.1.10", "198.51.100.3", 6, 443);
    snprintf(r.enrich.dest_name, sizeof(r.enrich.dest_name), "x\"\n  evil: *.com #");
    assert_int_equal(run(p, st, &r, &g), 0);
    mk(&r, "10.1.1.10", "198.51.100.2", 17, 123); /* again: learned once */
    assert_int_equal(run(p, st, &r, &g), 0);
    struct policy_stats ps;
    policy_state_stats(st, &ps);
    assert_int_equal(ps.learned, 3);
    struct egr_err err = {""};
    if (policy_save_baseline(p, st, &err) != EGR_OK)
        fail_msg("%s", err.msg);
    policy_state_free(st);
    policy_free(p);
    config_free(&cfg);

    /* baseline mode: what was learned passes, anything else alerts */
    snprintf(text, sizeof(text), "%s%s%s", pre, "baseline", post);
    p = build(text, &cfg);
    st = policy_state_new();
    mk(&r, "10.1.1.10", "203.0.113.50", 6, 443); /* another address, same name */
    snprintf(r.ndpi.tls_sni, sizeof(r.ndpi.tls_sni), "updates.vendor.example");
    assert_int_equal(run(p, st, &r, &g), 0);
    mk(&r, "10.1.1.10", "198.51.100.2", 17, 123);
    assert_int_equal(run(p, st, &r, &g), 0);
    mk(&r, "10.1.1.10", "198.51.100.3", 6, 443);
    assert_int_equal(run(p, st, &r, &g), 0);
    mk(&r, "10.1.1.10", "198.51.100.2", 17, 124); /* another port */
    assert_int_equal(run(p, st, &r, &g), 1);
    assert_string_equal(g.a[0].reason,
                        "no allow rule of role lb matched, nor its learned baseline");
    mk(&r, "10.1.1.10", "198.51.100.4", 6, 443);
    assert_int_equal(run(p, st, &r, &g), 1);
    policy_state_free(st);
    policy_free(p);
    config_free(&cfg);

    /* learning again starts from the file and keeps its entries */
    snprintf(text, sizeof(text), "%s%s%s", pre, "learn", post);
    p = build(text, &cfg);
    st = policy_state_new();
    policy_state_seed(p, st);
    mk(&r, "10.1.1.10", "198.51.100.9", 6, 22);
    run(p, st, &r, &g);
    assert_int_equal(policy_save_baseline(p, st, &err), EGR_OK);
    char path[256];
    snprintf(path, sizeof(path), "%s/learned.yaml", tmpdir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    assert_non_null(strstr(buf, "domain: \"updates.vendor.example\", proto: tcp, port: 443"));
    assert_non_null(strstr(buf, "cidr: \"198.51.100.2\", proto: udp, port: 123"));
    assert_non_null(strstr(buf, "cidr: \"198.51.100.3\", proto: tcp, port: 443"));
    assert_non_null(strstr(buf, "cidr: \"198.51.100.9\", proto: tcp, port: 22"));
    assert_null(strstr(buf, "evil"));
    policy_state_free(st);
    policy_free(p);
    config_free(&cfg);
}

/* ---- configuration errors ------------------------------------------------ */

static void expect_error(const char *text, const char *want)
{
    struct egr_config cfg;
    struct egr_err err = {""};
    assert_int_equal(load("bad.yaml", text, &cfg, &err), EGR_EINVAL);
    if (!strstr(err.msg, want))
        fail_msg("got '%s', want '%s'", err.msg, want);
    assert_null(cfg.policy.spec);
    config_free(&cfg);
}

static void test_config_errors(void **state)
{
    (void)state;
    expect_error("home_net: [10.0.0.1/8]\n", "bad.yaml:1:12: home_net[0]: ");
    expect_error("assets:\n  - {name: a, hosts: [10.0.0.1], role: nope}\nroles: {x: {}}\n",
                 "bad.yaml:2:40: assets[0].role: no role 'nope' in roles");
    expect_error("default_role: ghost\n", "bad.yaml:1:15: default_role: no role 'ghost'");
    expect_error("roles:\n  r:\n    mode: block\n",
                 "bad.yaml:3:11: roles.r.mode: expected deny, learn, baseline or monitor");
    expect_error("roles: {r: {allow: [{port: [70000]}]}}\n",
                 "bad.yaml:1:29: roles.r.allow[0].port[0]: '70000' is not a port");
    expect_error("roles: {r: {allow: [{port: [\"9-3\"]}]}}\n", "'9-3' is not a port");
    expect_error("roles: {r: {allow: [{}]}}\n",
                 "roles.r.allow[0]: a rule with no match keys would allow everything");
    expect_error("roles: {r: {allow: [{domain: [\"a.*.com\"]}]}}\n", "'*' only");
    expect_error("roles: {r: {allow: [{asn: [ASx]}]}}\n", "'ASx' is not an AS number");
    expect_error("roles: {r: {allow: [{country: [USA]}]}}\n", "'USA' is not a two-letter");
    expect_error("roles: {r: {allow: [{proto: tcpp}]}}\n", "'tcpp' is not a protocol");
    expect_error("roles: {r: {allow: [{dest: x}]}}\n", "roles.r.allow[0].dest: unknown key");
    expect_error("assets: [{name: a, hosts: [10.0.0.1], role: r}, "
                 "{name: a, hosts: [10.0.0.2], role: r}]\nroles: {r: {}}\n",
                 "asset name 'a' is used twice");
    expect_error("intel: [{name: x, type: url, file: f}]\n",
                 "intel[0].type: expected ip, domain, ja3 or sha1");
    expect_error("intel: [{name: x, type: ip}]\n", "needs name, type and file (missing file)");
    expect_error("alerts: {risks: [\"No Such Risk\"]}\n",
                 "alerts.risks[0]: 'No Such Risk' is not an nDPI risk name");
    expect_error("alerts: {risk_severity: urgent}\n", "expected high, medium or low");
    expect_error("roles: {\"bad name\": {}}\n", "a name may hold only");

    /* intel files: errors name file and line */
    write_file("badips.txt", "203.0.113.1\n# fine\nnot-an-ip\n");
    write_file("badja3.txt", "abc\n");
    struct egr_config cfg;
    struct egr_err err = {""};
    assert_int_equal(load("i.yaml", "intel: [{name: x, type: ip, file: badips.txt}]\n", &cfg,
                          &err), EGR_OK);
    struct policy *p;
    assert_int_not_equal(policy_new(&cfg.policy, &p, &err), EGR_OK);
    assert_non_null(strstr(err.msg, "badips.txt:3: "));
    config_free(&cfg);
    assert_int_equal(load("i.yaml", "intel: [{name: x, type: ja3, file: badja3.txt}]\n", &cfg,
                          &err), EGR_OK);
    assert_int_not_equal(policy_new(&cfg.policy, &p, &err), EGR_OK);
    assert_non_null(strstr(err.msg, "badja3.txt:1: not a JA3 hash"));
    config_free(&cfg);
    assert_int_equal(load("i.yaml", "intel: [{name: x, type: ip, file: missing.txt}]\n", &cfg,
                          &err), EGR_OK);
    assert_int_not_equal(policy_new(&cfg.policy, &p, &err), EGR_OK);
    assert_non_null(strstr(err.msg, "missing.txt: intel list 'x': No such file"));
    config_free(&cfg);
}

/* ---- intel change detection and reload with a broken file ----------------- */

/* A record judged and written through a sensor port, as a worker does. */
static void judge_record(struct sensor_port *pt, struct flow_record *r)
{
    const struct policy *p = sensor_port_policy(pt);
    memset(&r->enrich, 0, sizeof(r->enrich));
    policy_annotate(p, r);
    policy_evaluate(p, sensor_port_state(pt), r, sensor_port_alert_fn, pt);
    sensor_port_flow(pt, r);
}

static void test_reload(void **state)
{
    (void)state;
    write_file("r-ips.txt", "203.0.113.1\n");
    struct egr_config cfg;
    struct egr_err err = {""};
    const char *text = "home_net: [10.0.0.0/8]\n"
                       "intel: [{name: c2, type: ip, file: r-ips.txt}]\n";
    assert_int_equal(load("r.yaml", text, &cfg, &err), EGR_OK);

    char json[256];
    snprintf(json, sizeof(json), "%s/eve.json", tmpdir);
    struct sensor *s;
    if (sensor_open(&cfg, json, "test", &s, &err) != EGR_OK)
        fail_msg("%s", err.msg);
    struct policy *p;
    assert_int_equal(policy_new(&cfg.policy, &p, &err), EGR_OK);
    assert_false(policy_intel_changed(p));

    /* A worker's view: its port's policy, picked up again after a swap. */
    struct sensor_port *pt;
    assert_int_equal(sensor_port_open(s, &pt, &err), EGR_OK);
    const struct policy *seen = sensor_port_policy(pt);
    struct flow_record r;
    mk(&r, "10.0.0.1", "203.0.113.1", 6, 443);
    judge_record(pt, &r);
    assert_int_equal(r.alerted, 1);

    /* the list changes: detected; a reload picks up the new entry */
    sleep(1); /* a new mtime second even on coarse file systems */
    write_file("r-ips.txt", "203.0.113.2\n");
    assert_true(policy_intel_changed(p));
    policy_free(p);
    assert_int_equal(sensor_reload(s, &cfg, &err), EGR_OK);
    mk(&r, "10.0.0.1", "203.0.113.2", 6, 443);
    judge_record(pt, &r);
    assert_int_equal(r.alerted, 1);
    assert_ptr_not_equal(sensor_port_policy(pt), seen); /* the port took the new one */
    seen = sensor_port_policy(pt);

    /* a broken list: reload fails, says why, and the old policy stays */
    write_file("r-ips.txt", "203.0.113.3\nbroken line\n");
    err.msg[0] = '\0';
    assert_int_not_equal(sensor_reload(s, &cfg, &err), EGR_OK);
    assert_non_null(strstr(err.msg, "r-ips.txt:2: "));
    mk(&r, "10.0.0.1", "203.0.113.2", 6, 443);
    r.src_port = 5; /* another flow */
    judge_record(pt, &r);
    assert_int_equal(r.enrich.direction, DIR_EGRESS);
    assert_int_equal(r.alerted, 1); /* still the previous list */
    assert_ptr_equal(sensor_port_policy(pt), seen);
    mk(&r, "10.0.0.1", "203.0.113.3", 6, 443);
    judge_record(pt, &r);
    assert_int_equal(r.alerted, 0);
    sensor_port_close(pt);

    /* a broken configuration file never reaches the sensor */
    struct egr_config next = cfg;
    next.policy.spec = NULL;
    config_defaults(&next);
    write_file("r2.yaml", "home_net: [10.0.0.0/33]\n");
    char path[256];
    snprintf(path, sizeof(path), "%s/r2.yaml", tmpdir);
    assert_int_equal(config_load(&next, path, &err), EGR_EINVAL);
    assert_non_null(strstr(err.msg, "r2.yaml:1:12: home_net[0]: "));

    struct run_stats st;
    memset(&st, 0, sizeof(st));
    assert_int_equal(sensor_finish(s, &st, &err), EGR_OK);
    assert_int_equal(st.alerts, 3);
    config_free(&cfg);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_domain_match),  cmocka_unit_test(test_rules),
        cmocka_unit_test(test_annotate),      cmocka_unit_test(test_order_and_modes),
        cmocka_unit_test(test_dedup),         cmocka_unit_test(test_exfil_and_risk),
        cmocka_unit_test(test_learn_then_baseline), cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_reload),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

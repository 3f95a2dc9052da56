/* policy-config.c - the policy sections of the configuration: home_net,
 * assets, default_role, roles (modes and allow rules), intel lists, and the
 * enumerated values of alerts, exfiltration and learning.
 *
 * These are CONFIG_CUSTOM rows of config.c's table: each function here gets
 * the YAML node of its key and builds the shared struct policy_spec, so its
 * errors carry file:line:column like every other key. References between
 * sections (an asset's role) can only be checked once the whole file is
 * read: policy_spec_resolve() does it, with the position kept at parse time.
 */
#include <ctype.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfgload.h"
#include "egressd/classify.h"
#include "egressd/policy.h"
#include "policy-cfg.h"
#include "policy-guard.h"
#include "policy-int.h"

#define DAY 86400u

void policy_config_defaults(struct policy_config *pc)
{
    memset(pc, 0, sizeof(*pc));
    pc->suppress = 3600;
    pc->max_per_second = 100;
    pc->risk_severity = SEV_MEDIUM;
    pc->exfil_window = 300;
    pc->exfil_bytes = 0;
    pc->exfil_severity = SEV_HIGH;
    pc->save_interval = 300;
    pc->intel_check = 10;
    pc->decide_packets = 2;
    pc->decide_seconds = 3;
}

void policy_config_release(struct policy_config *pc)
{
    policy_spec_unref(pc->spec);
    pc->spec = NULL;
}

/* ---- the spec ----------------------------------------------------------- */

struct policy_spec *policy_spec_new(void)
{
    struct policy_spec *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->refs = 1;
    s->default_role_index = -1;
    return s;
}

void policy_spec_ref(struct policy_spec *s)
{
    if (s)
        s->refs++;
}

void pol_rule_clear(struct pol_rule *r)
{
    for (size_t i = 0; i < r->ndomains; i++)
        free(r->domains[i]);
    free(r->domains);
    netset_free(r->cidrs);
    free(r->asns);
    free(r->countries);
    for (size_t i = 0; i < r->nndpi; i++)
        free(r->ndpi[i]);
    free(r->ndpi);
    free(r->ports);
    memset(r, 0, sizeof(*r));
    r->proto = -1;
}

void policy_spec_unref(struct policy_spec *s)
{
    if (!s || --s->refs > 0)
        return;
    netset_free(s->home_net);
    netset_free(s->asset_net);
    free(s->assets);
    for (size_t i = 0; i < s->nroles; i++) {
        for (size_t j = 0; j < s->roles[i].nrules; j++)
            pol_rule_clear(&s->roles[i].rules[j]);
        free(s->roles[i].rules);
    }
    free(s->roles);
    free(s->intel);
    policy_guard_free(s->guard);
    free(s);
}

int pol_role_find(const struct policy_spec *s, const char *name)
{
    for (size_t i = 0; s && i < s->nroles; i++)
        if (!strcmp(s->roles[i].name, name))
            return (int)i;
    return -1;
}

/* The spec a custom row writes into, made on first use. */
static struct policy_spec *spec_of(struct config_parse *p, yaml_node_t *node, const char *path,
                                   void *field)
{
    struct policy_spec **sp = field;
    if (!*sp && !(*sp = policy_spec_new()))
        config_error(p, node, path, "out of memory");
    return *sp;
}

/* Grows *arr (of elem bytes, *n used) by one zeroed element; NULL when out
 * of memory. */
static void *push(void *arr_p, size_t *n, size_t elem)
{
    void **arr = arr_p;
    void *a = realloc(*arr, (*n + 1) * elem);
    if (!a)
        return NULL;
    *arr = a;
    memset((char *)a + *n * elem, 0, elem);
    return (char *)a + (*n)++ * elem;
}

/* ---- scalars ------------------------------------------------------------ */

/* A non-empty scalar without NUL, at most max-1 bytes, copied to out. */
static int get_text(struct config_parse *p, yaml_node_t *node, const char *path, char *out,
                    size_t max, const char *what)
{
    size_t len;
    const char *s = config_scalar(node, &len);
    if (!s || len == 0 || (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                           (!strcmp(s, "~") || !strcmp(s, "null"))))
        return config_error(p, node, path, "expected %s", what);
    if (memchr(s, '\0', len))
        return config_error(p, node, path, "a NUL character is not allowed");
    if (len >= max)
        return config_error(p, node, path, "too long: %zu bytes (at most %zu)", len, max - 1);
    memcpy(out, s, len);
    out[len] = '\0';
    return EGR_OK;
}

/* A name: letters, digits and . _ - only, so it is safe in keys, logs and
 * file names. */
static int get_name(struct config_parse *p, yaml_node_t *node, const char *path, char *out)
{
    int rc = get_text(p, node, path, out, POLICY_NAME_MAX, "a name");
    if (rc != EGR_OK)
        return rc;
    for (const char *c = out; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr("._-", *c))
            return config_error(p, node, path, "'%s': a name may hold only letters, digits, "
                                "'.', '_' and '-'", out);
    return EGR_OK;
}

static const char *const sev_names[] = {NULL, "high", "medium", "low"};

static int parse_severity_node(struct config_parse *p, yaml_node_t *node, const char *path,
                               uint8_t *out)
{
    char buf[16];
    if (get_text(p, node, path, buf, sizeof(buf), "high, medium or low") == EGR_OK)
        for (unsigned i = 1; i < EGR_ARRAY_LEN(sev_names); i++)
            if (!strcasecmp(buf, sev_names[i])) {
                *out = (uint8_t)i;
                return EGR_OK;
            }
    return config_error(p, node, path, "expected high, medium or low");
}

int policy_parse_severity(struct config_parse *p, yaml_node_t *node, const char *path,
                          void *field)
{
    return parse_severity_node(p, node, path, field);
}

/* A path; relative ones are relative to the configuration file's directory,
 * so a configuration and its lists move together. */
static int get_path(struct config_parse *p, yaml_node_t *node, const char *path, char *out,
                    size_t max)
{
    char raw[1024];
    int rc = get_text(p, node, path, raw, sizeof(raw), "a file path");
    if (rc != EGR_OK)
        return rc;
    if (raw[0] == '/') {
        snprintf(out, max, "%s", raw);
        return EGR_OK;
    }
    char dirbuf[1024];
    snprintf(dirbuf, sizeof(dirbuf), "%s", config_file_name(p));
    const char *dir = dirname(dirbuf);
    if ((size_t)snprintf(out, max, "%s/%s", dir, raw) >= max)
        return config_error(p, node, path, "path too long");
    return EGR_OK;
}

int policy_parse_path(struct config_parse *p, yaml_node_t *node, const char *path, void *field)
{
    size_t len;
    const char *s = config_scalar(node, &len);
    if (s && (len == 0 || (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                           (!strcmp(s, "~") || !strcmp(s, "null"))))) {
        ((char *)field)[0] = '\0';
        return EGR_OK;
    }
    return get_path(p, node, path, field, sizeof(((struct policy_config *)0)->baseline_file));
}

/* ---- lists: a scalar or a sequence of scalars --------------------------- */

typedef int (*value_fn)(struct config_parse *p, yaml_node_t *node, const char *path, void *arg);

struct each_value {
    value_fn fn;
    void *arg;
    const char *path;
};

static int each_value_item(struct config_parse *p, size_t i, yaml_node_t *item, void *arg)
{
    struct each_value *ev = arg;
    char ipath[300];
    snprintf(ipath, sizeof(ipath), "%s[%zu]", ev->path, i);
    if (item->type != YAML_SCALAR_NODE)
        return config_error(p, item, ipath, "expected a value, got a %s",
                            item->type == YAML_MAPPING_NODE ? "mapping" : "sequence");
    return ev->fn(p, item, ipath, ev->arg);
}

static int each_value(struct config_parse *p, yaml_node_t *node, const char *path, value_fn fn,
                      void *arg)
{
    if (node->type == YAML_SCALAR_NODE)
        return fn(p, node, path, arg);
    struct each_value ev = {fn, arg, path};
    return config_each_item(p, node, path, each_value_item, &ev);
}

static int risk_value(struct config_parse *p, yaml_node_t *node, const char *path, void *arg)
{
    uint64_t *mask = arg;
    char name[128];
    int rc = get_text(p, node, path, name, sizeof(name), "an nDPI risk name");
    if (rc != EGR_OK)
        return rc;
    for (unsigned bit = 1; bit < 64; bit++) {
        const char *n = classify_risk_name(bit);
        if (n && !strcasecmp(n, name)) {
            *mask |= (uint64_t)1 << bit;
            return EGR_OK;
        }
    }
    return config_error(p, node, path, "'%s' is not an nDPI risk name (names as in EVE "
                        "ndpi.risks, e.g. \"Self-signed Certificate\"; list: docs/policy.md)",
                        name);
}

int policy_parse_risks(struct config_parse *p, yaml_node_t *node, const char *path, void *field)
{
    uint64_t mask = 0;
    int rc = each_value(p, node, path, risk_value, &mask);
    if (rc == EGR_OK)
        memcpy(field, &mask, sizeof(mask));
    return rc;
}

static int cidr_value(struct config_parse *p, yaml_node_t *node, const char *path, void *arg)
{
    struct netset *set = arg;
    char text[64];
    int rc = get_text(p, node, path, text, sizeof(text), "an address or CIDR");
    if (rc != EGR_OK)
        return rc;
    struct egr_err e;
    if (netset_add(set, text, 1, &e) != EGR_OK)
        return config_error(p, node, path, "%s", e.msg);
    return EGR_OK;
}

int policy_parse_home_net(struct config_parse *p, yaml_node_t *node, const char *path,
                          void *field)
{
    struct policy_spec *s = spec_of(p, node, path, field);
    if (!s)
        return EGR_ENOMEM;
    if (!s->home_net && !(s->home_net = netset_new()))
        return config_error(p, node, path, "out of memory");
    return each_value(p, node, path, cidr_value, s->home_net);
}

/* ---- assets ------------------------------------------------------------- */

struct asset_ctx {
    struct policy_spec *s;
    struct pol_asset *a;
    uint32_t index;
    int have_name, have_hosts, have_role;
    const char *path;
};

static int host_value(struct config_parse *p, yaml_node_t *node, const char *path, void *arg)
{
    struct asset_ctx *c = arg;
    char text[64];
    int rc = get_text(p, node, path, text, sizeof(text), "an address or CIDR");
    if (rc != EGR_OK)
        return rc;
    struct egr_err e;
    if (netset_add(c->s->asset_net, text, c->index, &e) != EGR_OK)
        return config_error(p, node, path, "%s", e.msg);
    return EGR_OK;
}

static int asset_pair(struct config_parse *p, const char *key, yaml_node_t *knode,
                      yaml_node_t *value, void *arg)
{
    struct asset_ctx *c = arg;
    char kpath[300];
    snprintf(kpath, sizeof(kpath), "%s.%s", c->path, key);
    if (!strcmp(key, "name")) {
        c->have_name = 1;
        return get_name(p, value, kpath, c->a->name);
    }
    if (!strcmp(key, "role")) {
        c->have_role = 1;
        c->a->line = (unsigned)value->start_mark.line + 1;
        c->a->col = (unsigned)value->start_mark.column + 1;
        return get_name(p, value, kpath, c->a->role);
    }
    if (!strcmp(key, "hosts")) {
        c->have_hosts = 1;
        return each_value(p, value, kpath, host_value, c);
    }
    return config_error(p, knode, kpath, "unknown key (an asset has name, hosts and role)");
}

static int asset_item(struct config_parse *p, size_t i, yaml_node_t *item, void *arg)
{
    struct policy_spec *s = arg;
    char ipath[64];
    snprintf(ipath, sizeof(ipath), "assets[%zu]", i);
    if (item->type != YAML_MAPPING_NODE)
        return config_error(p, item, ipath, "expected a mapping with name, hosts and role");
    struct pol_asset *a = push(&s->assets, &s->nassets, sizeof(*a));
    if (!a)
        return config_error(p, item, ipath, "out of memory");
    a->role_index = -1;
    struct asset_ctx c = {s, a, (uint32_t)(s->nassets - 1), 0, 0, 0, ipath};
    int rc = config_each_pair(p, item, ipath, asset_pair, &c);
    if (rc != EGR_OK)
        return rc;
    if (!c.have_name || !c.have_hosts || !c.have_role)
        return config_error(p, item, ipath, "an asset needs name, hosts and role (missing %s)",
                            !c.have_name ? "name" : !c.have_hosts ? "hosts" : "role");
    for (size_t j = 0; j + 1 < s->nassets; j++)
        if (!strcmp(s->assets[j].name, a->name))
            return config_error(p, item, ipath, "asset name '%s' is used twice", a->name);
    return EGR_OK;
}

int policy_parse_assets(struct config_parse *p, yaml_node_t *node, const char *path, void *field)
{
    struct policy_spec *s = spec_of(p, node, path, field);
    if (!s)
        return EGR_ENOMEM;
    if (!s->asset_net && !(s->asset_net = netset_new()))
        return config_error(p, node, path, "out of memory");
    return config_each_item(p, node, path, asset_item, s);
}

int policy_parse_default_role(struct config_parse *p, yaml_node_t *node, const char *path,
                              void *field)
{
    struct policy_spec *s = spec_of(p, node, path, field);
    if (!s)
        return EGR_ENOMEM;
    size_t len;
    const char *v = config_scalar(node, &len);
    if (v && len == 0) {
        s->default_role[0] = '\0';
        return EGR_OK;
    }
    s->default_role_line = (unsigned)node->start_mark.line + 1;
    s->default_role_col = (unsigned)node->start_mark.column + 1;
    return get_name(p, node, path, s->default_role);
}

/* ---- allow rules -------------------------------------------------------- */

static int domain_value(struct config_parse *p, yaml_node_t *node, const char *path, void *arg)
{
    struct pol_rule *r = arg;
    char d[256];
    int rc = get_text(p, node, path, d, sizeof(d), "a domain name");
    if (rc != EGR_OK)
        return rc;
    size_t n = strlen(d);
    if (n && d[n - 1] == '.')
        d[--n] = '\0';
    const char *body = !strncmp(d, "*.", 2) ? d + 2 : d;
    if (!*body || strchr(body, '*'))
        return config_error(p, node, path, "'%s': a domain is a name or *.suffix ('*' only "
                            "as the whole first label)", d);
    for (size_t i = 0; i < n; i++)
        d[i] = (char)tolower((unsigned char)d[i]);
    char *copy = strdup(d);
    char **slot = copy ? push(&r->domains, &r->ndomains, sizeof(char *)) : NULL;
    if (!slot) {
        free(copy);
        return config_error(p, node, path, "out of memory");
    }
    *slot = copy;
    return EGR_OK;
}

static int rule_cidr_value(struct config_parse *p, yaml_node_t *node, const char *path, void *arg)
{
    struct pol_rule *r = arg;
    if (!r->cidrs && !(r->cidrs = netset_new()))
        return config_error(p, node, path, "out of memory");
    int rc = cidr_value(p, node, path, r->cidrs);
    if (rc == EGR_OK && !r->first_cidr[0])
        snprintf(r->first_cidr, sizeof(r->first_cidr), "%s", config_scalar(node, NULL));
    return rc;
}

static int asn_value(struct config_parse *p, yaml_node_t *node, const char *path, void *arg)
{
    struct pol_rule *r = arg;
    char t[32];
    int rc = get_text(p, node, path, t, sizeof(t), "an AS number");
    if (rc != EGR_OK)
        return rc;
    const char *d = (!strncasecmp(t, "AS", 2)) ? t + 2 : t;
    char *end;
    unsigned long long v = strtoull(d, &end, 10);
    if (!isdigit((unsigned char)*d) || *end || v == 0 || v > UINT32_MAX)
        return config_error(p, node, path, "'%s' is not an AS number (1..4294967295, "
                            "optionally written AS15169)", t);
    uint32_t *slot = push(&r->asns, &r->nasns, sizeof(uint32_t));
    if (!slot)
        return config_error(p, node, path, "out of memory");
    *slot = (uint32_t)v;
    return EGR_OK;
}

static int country_value(struct config_parse *p, yaml_node_t *node, const char *path, void *arg)
{
    struct pol_rule *r = arg;
    char t[8];
    int rc = get_text(p, node, path, t, sizeof(t), "a country code");
    if (rc != EGR_OK)
        return rc;
    if (strlen(t) != 2 || !isalpha((unsigned char)t[0]) || !isalpha((unsigned char)t[1]))
        return config_error(p, node, path, "'%s' is not a two-letter ISO 3166 country code", t);
    char(*slot)[3] = push(&r->countries, &r->ncountries, 3);
    if (!slot)
        return config_error(p, node, path, "out of memory");
    (*slot)[0] = (char)toupper((unsigned char)t[0]);
    (*slot)[1] = (char)toupper((unsigned char)t[1]);
    (*slot)[2] = '\0';
    return EGR_OK;
}

static int ndpi_value(struct config_parse *p, yaml_node_t *node, const char *path, void *arg)
{
    struct pol_rule *r = arg;
    char t[64];
    int rc = get_text(p, node, path, t, sizeof(t), "an nDPI protocol name");
    if (rc != EGR_OK)
        return rc;
    /* An unknown name would make a rule that never matches. */
    int known = classify_proto_known(t);
    if (known < 0)
        return config_error(p, node, path, "out of memory");
    if (!known) {
        char shown[200];
        size_t o = 0;
        for (const unsigned char *c = (const unsigned char *)t; *c && o + 5 < sizeof(shown); c++)
            o += (size_t)snprintf(shown + o, sizeof(shown) - o,
                                  *c >= 0x20 && *c < 0x7f && *c != '"' ? "%c" : "\\x%02x", *c);
        return config_error(p, node, path, "\"%s\" is not a protocol of nDPI %s (names as a "
                            "record's ndpi.proto has them: DNS, TLS, Google, TLS.YouTube)",
                            shown, classify_ndpi_version());
    }
    char *copy = strdup(t);
    char **slot = copy ? push(&r->ndpi, &r->nndpi, sizeof(char *)) : NULL;
    if (!slot) {
        free(copy);
        return config_error(p, node, path, "out of memory");
    }
    *slot = copy;
    return EGR_OK;
}

static int parse_port(const char *s, uint16_t *out)
{
    char *end;
    if (!isdigit((unsigned char)*s))
        return -1;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

static int port_value(struct config_parse *p, yaml_node_t *node, const char *path, void *arg)
{
    struct pol_rule *r = arg;
    char t[32], lo[16], hi[16];
    int rc = get_text(p, node, path, t, sizeof(t), "a port or range");
    if (rc != EGR_OK)
        return rc;
    struct port_range pr;
    const char *dash = strchr(t, '-');
    size_t ln = dash ? (size_t)(dash - t) : strlen(t);
    int ok = ln < sizeof(lo) && (!dash || strlen(dash + 1) < sizeof(hi));
    if (ok) {
        memcpy(lo, t, ln);
        lo[ln] = '\0';
        snprintf(hi, sizeof(hi), "%s", dash ? dash + 1 : lo);
        ok = !parse_port(lo, &pr.lo) && !parse_port(hi, &pr.hi) && pr.lo <= pr.hi;
    }
    if (!ok)
        return config_error(p, node, path, "'%s' is not a port (0..65535) or a range "
                            "\"LOW-HIGH\"", t);
    struct port_range *slot = push(&r->ports, &r->nports, sizeof(pr));
    if (!slot)
        return config_error(p, node, path, "out of memory");
    *slot = pr;
    return EGR_OK;
}

static int parse_proto(struct config_parse *p, yaml_node_t *node, const char *path, int *out)
{
    static const struct { const char *name; int num; } names[] = {
        {"any", -1}, {"tcp", 6}, {"udp", 17}, {"icmp", 1}, {"icmp6", 58}, {"icmpv6", 58},
        {"gre", 47}, {"esp", 50}, {"sctp", 132},
    };
    char t[16];
    int rc = get_text(p, node, path, t, sizeof(t), "a protocol");
    if (rc != EGR_OK)
        return rc;
    for (size_t i = 0; i < EGR_ARRAY_LEN(names); i++)
        if (!strcasecmp(t, names[i].name)) {
            *out = names[i].num;
            return EGR_OK;
        }
    char *end;
    unsigned long v = strtoul(t, &end, 10);
    if (isdigit((unsigned char)t[0]) && !*end && v <= 255) {
        *out = (int)v;
        return EGR_OK;
    }
    return config_error(p, node, path, "'%s' is not a protocol (tcp, udp, icmp, icmp6, any, "
                        "or a number 0..255)", t);
}

struct rule_ctx {
    struct pol_rule *r;
    const char *path;
    int keys;
};

static int rule_pair(struct config_parse *p, const char *key, yaml_node_t *knode,
                     yaml_node_t *value, void *arg)
{
    struct rule_ctx *c = arg;
    char kpath[300];
    snprintf(kpath, sizeof(kpath), "%s.%s", c->path, key);
    if (!strcmp(key, "name"))
        return get_text(p, value, kpath, c->r->name, sizeof(c->r->name), "a name");
    c->keys++;
    if (!strcmp(key, "domain"))
        return each_value(p, value, kpath, domain_value, c->r);
    if (!strcmp(key, "cidr"))
        return each_value(p, value, kpath, rule_cidr_value, c->r);
    if (!strcmp(key, "asn"))
        return each_value(p, value, kpath, asn_value, c->r);
    if (!strcmp(key, "country"))
        return each_value(p, value, kpath, country_value, c->r);
    if (!strcmp(key, "ndpi"))
        return each_value(p, value, kpath, ndpi_value, c->r);
    if (!strcmp(key, "port"))
        return each_value(p, value, kpath, port_value, c->r);
    if (!strcmp(key, "proto"))
        return parse_proto(p, value, kpath, &c->r->proto);
    return config_error(p, knode, kpath, "unknown key (a rule has name, domain, cidr, asn, "
                        "country, ndpi, proto and port)");
}

static int parse_rule(struct config_parse *p, yaml_node_t *item, const char *ipath,
                      struct pol_rule *r)
{
    r->proto = -1;
    if (item->type != YAML_MAPPING_NODE)
        return config_error(p, item, ipath, "expected a mapping (domain, cidr, asn, country, "
                            "ndpi, proto, port)");
    struct rule_ctx c = {r, ipath, 0};
    int rc = config_each_pair(p, item, ipath, rule_pair, &c);
    if (rc != EGR_OK)
        return rc;
    if (c.keys == 0)
        return config_error(p, item, ipath, "a rule with no match keys would allow everything "
                            "(use mode: monitor for that)");
    return EGR_OK;
}

struct rules_ctx {
    struct pol_role *role;
    const char *path;
};

static int rule_item(struct config_parse *p, size_t i, yaml_node_t *item, void *arg)
{
    struct rules_ctx *c = arg;
    char ipath[300];
    snprintf(ipath, sizeof(ipath), "%s[%zu]", c->path, i);
    struct pol_rule *r = push(&c->role->rules, &c->role->nrules, sizeof(*r));
    if (!r)
        return config_error(p, item, ipath, "out of memory");
    return parse_rule(p, item, ipath, r);
}

int policy_parse_rule_list(struct config_parse *p, yaml_node_t *node, const char *path,
                           struct pol_role *role)
{
    struct rules_ctx c = {role, path};
    return config_each_item(p, node, path, rule_item, &c);
}

/* ---- roles -------------------------------------------------------------- */

static const char *const mode_names[] = {"deny", "learn", "baseline", "monitor"};

const char *policy_mode_name(unsigned m)
{
    return m < EGR_ARRAY_LEN(mode_names) ? mode_names[m] : "?";
}

struct role_ctx {
    struct pol_role *role;
    const char *path;
};

static int role_pair(struct config_parse *p, const char *key, yaml_node_t *knode,
                     yaml_node_t *value, void *arg)
{
    struct role_ctx *c = arg;
    char kpath[300];
    snprintf(kpath, sizeof(kpath), "%s.%s", c->path, key);
    if (!strcmp(key, "mode")) {
        char m[16];
        if (get_text(p, value, kpath, m, sizeof(m), "deny, learn, baseline or monitor") ==
            EGR_OK)
            for (unsigned i = 0; i < EGR_ARRAY_LEN(mode_names); i++)
                if (!strcasecmp(m, mode_names[i])) {
                    c->role->mode = (uint8_t)i;
                    return EGR_OK;
                }
        return config_error(p, value, kpath, "expected deny, learn, baseline or monitor");
    }
    if (!strcmp(key, "severity"))
        return parse_severity_node(p, value, kpath, &c->role->severity);
    if (!strcmp(key, "allow"))
        return policy_parse_rule_list(p, value, kpath, c->role);
    return config_error(p, knode, kpath, "unknown key (a role has mode, severity and allow)");
}

static int role_entry(struct config_parse *p, const char *key, yaml_node_t *knode,
                      yaml_node_t *value, void *arg)
{
    struct policy_spec *s = arg;
    char rpath[300];
    snprintf(rpath, sizeof(rpath), "roles.%s", key);
    struct pol_role *role = push(&s->roles, &s->nroles, sizeof(*role));
    if (!role)
        return config_error(p, knode, rpath, "out of memory");
    role->mode = MODE_DENY;
    role->severity = SEV_HIGH;
    int rc = get_name(p, knode, rpath, role->name);
    if (rc != EGR_OK)
        return rc;
    struct role_ctx c = {role, rpath};
    return config_each_pair(p, value, rpath, role_pair, &c);
}

int policy_parse_roles(struct config_parse *p, yaml_node_t *node, const char *path, void *field)
{
    struct policy_spec *s = spec_of(p, node, path, field);
    if (!s)
        return EGR_ENOMEM;
    return config_each_pair(p, node, path, role_entry, s);
}

/* ---- intel -------------------------------------------------------------- */

static const char *const intel_types[] = {"ip", "domain", "ja3", "sha1"};

struct intel_ctx {
    struct pol_intel *in;
    const char *path;
    int have_name, have_type, have_file;
};

static int intel_pair(struct config_parse *p, const char *key, yaml_node_t *knode,
                      yaml_node_t *value, void *arg)
{
    struct intel_ctx *c = arg;
    char kpath[300];
    snprintf(kpath, sizeof(kpath), "%s.%s", c->path, key);
    if (!strcmp(key, "name")) {
        c->have_name = 1;
        return get_name(p, value, kpath, c->in->name);
    }
    if (!strcmp(key, "type")) {
        char t[16];
        c->have_type = 1;
        if (get_text(p, value, kpath, t, sizeof(t), "ip, domain, ja3 or sha1") == EGR_OK)
            for (unsigned i = 0; i < EGR_ARRAY_LEN(intel_types); i++)
                if (!strcasecmp(t, intel_types[i])) {
                    c->in->type = (uint8_t)i;
                    return EGR_OK;
                }
        return config_error(p, value, kpath, "expected ip, domain, ja3 or sha1");
    }
    if (!strcmp(key, "file")) {
        c->have_file = 1;
        return get_path(p, value, kpath, c->in->file, sizeof(c->in->file));
    }
    if (!strcmp(key, "severity"))
        return parse_severity_node(p, value, kpath, &c->in->severity);
    return config_error(p, knode, kpath, "unknown key (a list has name, type, file and "
                        "severity)");
}

static int intel_item(struct config_parse *p, size_t i, yaml_node_t *item, void *arg)
{
    struct policy_spec *s = arg;
    char ipath[64];
    snprintf(ipath, sizeof(ipath), "intel[%zu]", i);
    if (item->type != YAML_MAPPING_NODE)
        return config_error(p, item, ipath, "expected a mapping with name, type and file");
    struct pol_intel *in = push(&s->intel, &s->nintel, sizeof(*in));
    if (!in)
        return config_error(p, item, ipath, "out of memory");
    in->severity = SEV_HIGH;
    struct intel_ctx c = {in, ipath, 0, 0, 0};
    int rc = config_each_pair(p, item, ipath, intel_pair, &c);
    if (rc != EGR_OK)
        return rc;
    if (!c.have_name || !c.have_type || !c.have_file)
        return config_error(p, item, ipath, "an intel list needs name, type and file "
                            "(missing %s)",
                            !c.have_name ? "name" : !c.have_type ? "type" : "file");
    for (size_t j = 0; j + 1 < s->nintel; j++)
        if (!strcmp(s->intel[j].name, in->name))
            return config_error(p, item, ipath, "intel list name '%s' is used twice", in->name);
    return EGR_OK;
}

int policy_parse_intel(struct config_parse *p, yaml_node_t *node, const char *path, void *field)
{
    struct policy_spec *s = spec_of(p, node, path, field);
    if (!s)
        return EGR_ENOMEM;
    return config_each_item(p, node, path, intel_item, s);
}

/* ---- after the whole file ----------------------------------------------- */

int policy_spec_resolve(struct policy_spec *s, const char *file, struct egr_err *err)
{
    if (!s)
        return EGR_OK;
    for (size_t i = 0; i < s->nassets; i++) {
        struct pol_asset *a = &s->assets[i];
        a->role_index = pol_role_find(s, a->role);
        if (a->role_index < 0)
            return egr_fail(err, EGR_EINVAL, "%s:%u:%u: assets[%zu].role: no role '%s' in "
                            "roles", file, a->line, a->col, i, a->role);
    }
    s->default_role_index = -1;
    if (s->default_role[0]) {
        s->default_role_index = pol_role_find(s, s->default_role);
        if (s->default_role_index < 0)
            return egr_fail(err, EGR_EINVAL, "%s:%u:%u: default_role: no role '%s' in roles",
                            file, s->default_role_line, s->default_role_col, s->default_role);
    }
    if (s->guard)
        return policy_guard_resolve(s->guard, s, file, err);
    return EGR_OK;
}

int policy_spec_is_empty(const struct policy_spec *s)
{
    return s && netset_count(s->home_net) == 0 && s->nassets == 0 && s->nroles == 0 &&
           s->nintel == 0 && !s->default_role[0] && !policy_guard_active(s->guard);
}

/* ---- the value parsers, for sections in other files --------------------- */

struct policy_spec *pol_cfg_spec(struct config_parse *p, yaml_node_t *node, const char *path,
                                 void *field)
{
    return spec_of(p, node, path, field);
}

int pol_cfg_name(struct config_parse *p, yaml_node_t *node, const char *path, char *out,
                 size_t max)
{
    char name[POLICY_NAME_MAX];
    int rc = get_name(p, node, path, name);
    if (rc == EGR_OK && strlen(name) >= max)
        rc = config_error(p, node, path, "too long: at most %zu bytes", max - 1);
    if (rc == EGR_OK)
        snprintf(out, max, "%s", name);
    return rc;
}

int pol_cfg_severity(struct config_parse *p, yaml_node_t *node, const char *path, uint8_t *out)
{
    return parse_severity_node(p, node, path, out);
}

int pol_cfg_mode(struct config_parse *p, yaml_node_t *node, const char *path, uint8_t *out)
{
    char m[16];
    if (get_text(p, node, path, m, sizeof(m), "deny, learn, baseline or monitor") == EGR_OK)
        for (unsigned i = 0; i < EGR_ARRAY_LEN(mode_names); i++)
            if (!strcasecmp(m, mode_names[i])) {
                *out = (uint8_t)i;
                return EGR_OK;
            }
    return config_error(p, node, path, "expected deny, learn, baseline or monitor");
}

int pol_cfg_path(struct config_parse *p, yaml_node_t *node, const char *path, char *out,
                 size_t max)
{
    return get_path(p, node, path, out, max);
}

int pol_cfg_domain(struct config_parse *p, yaml_node_t *node, const char *path, char **out)
{
    struct pol_rule r;
    memset(&r, 0, sizeof(r));
    int rc = domain_value(p, node, path, &r);
    if (rc == EGR_OK) {
        *out = r.domains[0];
        free(r.domains);
    }
    return rc;
}

int pol_cfg_cidr(struct config_parse *p, yaml_node_t *node, const char *path,
                 struct netset *set)
{
    return cidr_value(p, node, path, set);
}

int pol_cfg_values(struct config_parse *p, yaml_node_t *node, const char *path,
                   pol_cfg_value_fn fn, void *arg)
{
    return each_value(p, node, path, fn, arg);
}

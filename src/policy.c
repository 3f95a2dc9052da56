/* policy.c - the egress policy engine (see policy.h): direction and asset
 * of each record, allow-rule matching, intel lists, learning, alert dedup,
 * rate limit and the exfiltration window.
 *
 * struct policy is built once and then only read, so workers annotate
 * without locks and a reload is "build the new one, then swap". What must
 * survive a reload (alert keys, windows, what was learned) is in struct
 * policy_state, which the sensor drives under its lock.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <gcrypt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cfgload.h"
#include "egressd/classify.h"
#include "egressd/hash.h"
#include "egressd/json.h"
#include "policy-cfg.h"
#include "policy-guard.h"
#include "policy-int.h"

#define INTEL_FILE_MAX (256u << 20) /* larger is not a list this sensor should hold */
#define DEDUP_MAX 65536u            /* alert keys remembered */
#define EXFIL_MAX 65536u            /* assets with a running window */
#define LEARN_MAX 100000u           /* destinations learned over all roles */

/* ---- the compiled policy ------------------------------------------------- */

/* Keys of a rule that need a lookup to match. */
enum { NEED_CIDR = 1, NEED_DOMAIN = 2, NEED_ASN = 4, NEED_COUNTRY = 8, NEED_NDPI = 16,
       NEED_ALL = 32 };

/* A role's rules indexed for speed: the union of each kind of key over all
 * its rules tells, with one lookup per kind, which kinds can match a record
 * at all; the rules are kept in buckets by the kinds they need, and only the
 * buckets whose kinds are all possible are tried. With a thousand rules a
 * record is checked against the few that could match, not all of them. */
struct role_index;
static int index_build(struct role_index *x, const struct pol_role *role);
static void index_free(struct role_index *x);

struct role_index {
    struct netset *cidrs;
    struct strset *exact, *suffix; /* "a.b" and "*.b" (kept as "b") */
    struct strset *asns, *countries, *ndpi;
    const struct pol_rule **bucket[NEED_ALL];
    size_t nbucket[NEED_ALL];
};

struct intel_list {
    struct netset *ips;   /* INTEL_IP */
    struct strset *strs;  /* domain, ja3, sha1 */
    struct stat st;       /* of the file when loaded, for change detection */
    int stat_ok;
};

struct policy {
    struct policy_config pc; /* holds a reference to spec */
    const struct policy_spec *spec;
    struct intel_list *intel; /* one per spec->intel */
    /* Baseline entries per role (index as spec->roles), from the baseline
     * file; used in baseline mode and carried over when learning. */
    struct pol_role *baseline;
    size_t nbaseline;
    int learning;
    struct role_index *index;    /* one per spec->roles */
    struct role_index *bindex;   /* one per baseline role */
};

static pthread_once_t gcry_once = PTHREAD_ONCE_INIT;
static void gcry_init(void)
{
    (void)gcry_check_version(NULL);
    gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
    gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
}

const struct policy_config *policy_config_of(const struct policy *p)
{
    return &p->pc;
}

int policy_learning(const struct policy *p)
{
    return p && p->learning && p->pc.baseline_file[0];
}

/* ---- intel files --------------------------------------------------------- */

static int is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* One entry of a list file; line is trimmed, not empty. */
static int intel_entry(struct intel_list *l, int type, char *line, const char *file,
                       unsigned lineno, struct egr_err *err)
{
    size_t n = strlen(line);
    struct egr_err e;
    switch (type) {
    case INTEL_IP:
        if (netset_add(l->ips, line, 1, &e) != EGR_OK)
            return egr_fail(err, EGR_EINVAL, "%s:%u: %s", file, lineno, e.msg);
        return EGR_OK;
    case INTEL_DOMAIN:
        if (!strncmp(line, "*.", 2)) {
            line += 2;
            n -= 2;
        }
        if (n && line[n - 1] == '.')
            line[--n] = '\0';
        for (size_t i = 0; i < n; i++)
            if (!isalnum((unsigned char)line[i]) && !strchr("-_.", line[i]))
                return egr_fail(err, EGR_EINVAL, "%s:%u: not a domain name", file, lineno);
        break;
    case INTEL_JA3:
        if (n != 32 || !is_hex(line, n))
            return egr_fail(err, EGR_EINVAL, "%s:%u: not a JA3 hash (32 hex digits)", file,
                            lineno);
        break;
    case INTEL_SHA1: {
        /* Certificate fingerprints are often written with colons. */
        size_t o = 0;
        for (size_t i = 0; i < n; i++)
            if (line[i] != ':')
                line[o++] = line[i];
        line[o] = '\0';
        n = o;
        if (n != 40 || !is_hex(line, n))
            return egr_fail(err, EGR_EINVAL, "%s:%u: not a SHA-1 fingerprint (40 hex digits)",
                            file, lineno);
        break;
    }
    default:
        return egr_fail(err, EGR_EINVAL, "%s: unknown list type", file);
    }
    int rc = strset_add(l->strs, line, n);
    if (rc == EGR_EINVAL)
        return egr_fail(err, EGR_EINVAL, "%s:%u: entry empty or too long", file, lineno);
    if (rc != EGR_OK)
        return egr_fail(err, rc, "%s: out of memory", file);
    return EGR_OK;
}

static int intel_load(struct intel_list *l, const struct pol_intel *def, struct egr_err *err)
{
    FILE *f = fopen(def->file, "r");
    if (!f)
        return egr_fail(err, EGR_EIO, "%s: intel list '%s': %s", def->file, def->name,
                        strerror(errno));
    if (fstat(fileno(f), &l->st) == 0) {
        l->stat_ok = 1;
        if (!S_ISREG(l->st.st_mode) || (uint64_t)l->st.st_size > INTEL_FILE_MAX) {
            fclose(f);
            return egr_fail(err, EGR_EINVAL, "%s: intel list '%s': not a regular file of at "
                            "most 256 MiB", def->file, def->name);
        }
    }
    if (def->type == INTEL_IP)
        l->ips = netset_new();
    else
        l->strs = strset_new();
    if (!l->ips && !l->strs) {
        fclose(f);
        return egr_fail(err, EGR_ENOMEM, "out of memory");
    }
    char buf[1024];
    unsigned lineno = 0;
    int rc = EGR_OK;
    while (rc == EGR_OK && fgets(buf, sizeof(buf), f)) {
        lineno++;
        size_t n = strlen(buf);
        if (n == sizeof(buf) - 1 && buf[n - 1] != '\n' && !feof(f)) {
            rc = egr_fail(err, EGR_EINVAL, "%s:%u: line longer than %zu bytes", def->file,
                          lineno, sizeof(buf) - 2);
            break;
        }
        char *hash = strchr(buf, '#');
        if (hash)
            *hash = '\0';
        char *s = buf;
        while (isspace((unsigned char)*s))
            s++;
        n = strlen(s);
        while (n && isspace((unsigned char)s[n - 1]))
            s[--n] = '\0';
        if (!n)
            continue;
        if (memchr(s, ' ', n) || memchr(s, '\t', n)) {
            /* "1.2.3.4 some note": the first word is the entry. */
            s[strcspn(s, " \t")] = '\0';
        }
        rc = intel_entry(l, def->type, s, def->file, lineno, err);
    }
    if (rc == EGR_OK && ferror(f))
        rc = egr_fail(err, EGR_EIO, "%s: read error", def->file);
    fclose(f);
    return rc;
}

int policy_intel_changed(const struct policy *p)
{
    if (!p || !p->spec)
        return 0;
    for (size_t i = 0; i < p->spec->nintel; i++) {
        struct stat now;
        const struct intel_list *l = &p->intel[i];
        if (stat(p->spec->intel[i].file, &now) != 0)
            continue; /* gone: keep what is loaded; the reload would fail */
        if (!l->stat_ok || now.st_mtim.tv_sec != l->st.st_mtim.tv_sec ||
            now.st_mtim.tv_nsec != l->st.st_mtim.tv_nsec || now.st_size != l->st.st_size ||
            now.st_ino != l->st.st_ino)
            return 1;
    }
    return 0;
}

/* ---- the baseline file --------------------------------------------------- */

struct baseline_doc {
    const struct policy_spec *spec;
    struct pol_role *roles; /* index as spec->roles */
};

static int baseline_role(struct config_parse *cp, const char *key, yaml_node_t *knode,
                         yaml_node_t *value, void *arg)
{
    struct baseline_doc *d = arg;
    char path[300];
    snprintf(path, sizeof(path), "baseline.%s", key);
    int idx = pol_role_find(d->spec, key);
    if (idx < 0) /* a role since removed from the configuration: ignored */
        return EGR_OK;
    (void)knode;
    return policy_parse_rule_list(cp, value, path, &d->roles[idx]);
}

static int baseline_parse(struct config_parse *cp, yaml_node_t *node, const char *path,
                          void *field)
{
    struct baseline_doc *d = *(struct baseline_doc **)field;
    return config_each_pair(cp, node, path, baseline_role, d);
}

static void free_roles(struct pol_role *roles, size_t n)
{
    for (size_t i = 0; roles && i < n; i++) {
        for (size_t j = 0; j < roles[i].nrules; j++)
            pol_rule_clear(&roles[i].rules[j]);
        free(roles[i].rules);
    }
    free(roles);
}

static int baseline_load(struct policy *p, struct egr_err *err)
{
    const struct policy_spec *s = p->spec;
    p->nbaseline = s->nroles;
    p->baseline = calloc(s->nroles ? s->nroles : 1, sizeof(*p->baseline));
    if (!p->baseline)
        return egr_fail(err, EGR_ENOMEM, "out of memory");
    int need = 0;
    for (size_t i = 0; i < s->nroles; i++) {
        snprintf(p->baseline[i].name, sizeof(p->baseline[i].name), "%s", s->roles[i].name);
        if (s->roles[i].mode == MODE_BASELINE || s->roles[i].mode == MODE_LEARN)
            need = 1;
        if (s->roles[i].mode == MODE_LEARN)
            p->learning = 1;
    }
    if (!need || !p->pc.baseline_file[0])
        return EGR_OK;
    struct stat st;
    if (stat(p->pc.baseline_file, &st) != 0 && errno == ENOENT) {
        /* Learning starts from nothing; a baseline role with nothing
         * learned yet only has its allow list. */
        return EGR_OK;
    }
    struct baseline_doc doc = {s, p->baseline};
    struct baseline_doc *docp = &doc;
    const struct config_key keys[] = {
        {"baseline", CONFIG_CUSTOM, 0, 0, 0, sizeof(docp), baseline_parse},
    };
    return config_load_table(p->pc.baseline_file, keys, 1, &docp, err);
}

/* ---- building ------------------------------------------------------------ */

int policy_new(const struct policy_config *pc, struct policy **out, struct egr_err *err)
{
    pthread_once(&gcry_once, gcry_init);
    struct policy *p = calloc(1, sizeof(*p));
    if (!p)
        return egr_fail(err, EGR_ENOMEM, "out of memory");
    p->pc = *pc;
    policy_spec_ref(pc->spec);
    p->spec = pc->spec;
    int rc = EGR_OK;
    if (p->spec) {
        p->intel = calloc(p->spec->nintel ? p->spec->nintel : 1, sizeof(*p->intel));
        if (!p->intel)
            rc = egr_fail(err, EGR_ENOMEM, "out of memory");
        for (size_t i = 0; rc == EGR_OK && i < p->spec->nintel; i++)
            rc = intel_load(&p->intel[i], &p->spec->intel[i], err);
        if (rc == EGR_OK)
            rc = baseline_load(p, err);
        size_t nr = p->spec->nroles ? p->spec->nroles : 1;
        if (rc == EGR_OK && (!(p->index = calloc(nr, sizeof(*p->index))) ||
                             !(p->bindex = calloc(nr, sizeof(*p->bindex)))))
            rc = egr_fail(err, EGR_ENOMEM, "out of memory");
        for (size_t i = 0; rc == EGR_OK && i < p->spec->nroles; i++)
            if (index_build(&p->index[i], &p->spec->roles[i]) != EGR_OK ||
                index_build(&p->bindex[i], &p->baseline[i]) != EGR_OK)
                rc = egr_fail(err, EGR_ENOMEM, "out of memory");
    }
    if (rc != EGR_OK) {
        policy_free(p);
        return rc;
    }
    *out = p;
    return EGR_OK;
}

void policy_free(struct policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; p->intel && p->spec && i < p->spec->nintel; i++) {
        netset_free(p->intel[i].ips);
        strset_free(p->intel[i].strs);
    }
    free(p->intel);
    for (size_t i = 0; p->spec && i < p->spec->nroles; i++) {
        if (p->index)
            index_free(&p->index[i]);
        if (p->bindex)
            index_free(&p->bindex[i]);
    }
    free(p->index);
    free(p->bindex);
    free_roles(p->baseline, p->nbaseline);
    policy_config_release(&p->pc);
    free(p);
}

/* ---- annotation ---------------------------------------------------------- */

static int local(const struct policy_spec *s, int family, const uint8_t *ip)
{
    return (s->home_net && netset_lookup(s->home_net, family, ip, NULL)) ||
           (s->asset_net && netset_lookup(s->asset_net, family, ip, NULL));
}

/* The role (index) and asset (index or -1) of a local address. Returns the
 * role index or -1. */
static int role_of(const struct policy_spec *s, int family, const uint8_t *ip, int *asset)
{
    uint32_t v;
    *asset = -1;
    if (s->asset_net && netset_lookup(s->asset_net, family, ip, &v) && v < s->nassets) {
        *asset = (int)v;
        return s->assets[v].role_index;
    }
    if (s->home_net && netset_lookup(s->home_net, family, ip, NULL))
        return s->default_role_index;
    return -1;
}

void policy_annotate(const struct policy *p, struct flow_record *rec)
{
    const struct policy_spec *s = p ? p->spec : NULL;
    struct rec_enrich *e = &rec->enrich;
    if (!s || (!s->home_net && !s->asset_net))
        return;
    int src_in = local(s, rec->family, rec->src_ip);
    int dst_in = local(s, rec->family, rec->dst_ip);
    e->direction = src_in ? (dst_in ? DIR_INTERNAL : DIR_EGRESS)
                          : (dst_in ? DIR_INBOUND : DIR_EXTERNAL);
    const uint8_t *lip = e->direction == DIR_INBOUND ? rec->dst_ip
                         : e->direction == DIR_EXTERNAL ? NULL : rec->src_ip;
    if (!lip)
        return;
    int asset, role = role_of(s, rec->family, lip, &asset);
    if (asset >= 0)
        snprintf(e->asset, sizeof(e->asset), "%s", s->assets[asset].name);
    if (role >= 0)
        snprintf(e->role, sizeof(e->role), "%s", s->roles[role].name);
}

/* ---- rule matching ------------------------------------------------------- */

int pol_domain_match(const char *pattern, const char *name)
{
    size_t n = strlen(name);
    if (n && name[n - 1] == '.')
        n--;
    if (!n)
        return 0;
    if (pattern[0] == '*' && pattern[1] == '.') {
        const char *suf = pattern + 1; /* ".example.com" */
        size_t sl = strlen(suf);
        return n > sl && !strncasecmp(name + n - sl, suf, sl);
    }
    return strlen(pattern) == n && !strncasecmp(pattern, name, n);
}

static int any_domain(const struct pol_rule *r, const char *name)
{
    if (!name[0])
        return 0;
    for (size_t i = 0; i < r->ndomains; i++)
        if (pol_domain_match(r->domains[i], name))
            return 1;
    return 0;
}

static int ndpi_name_match(const char *want, const struct rec_ndpi *n)
{
    return !strcasecmp(want, n->proto) || (n->master[0] && !strcasecmp(want, n->master)) ||
           (n->app[0] && !strcasecmp(want, n->app));
}

int pol_rule_match(const struct pol_rule *r, const struct flow_record *rec)
{
    /* Cheapest keys first: most rules fail on protocol or port. */
    if (r->proto >= 0 && r->proto != rec->proto)
        return 0;
    if (r->nports) {
        int hit = 0;
        int has_ports = rec->proto == 6 || rec->proto == 17 || rec->proto == 132;
        for (size_t i = 0; has_ports && !hit && i < r->nports; i++)
            hit = rec->dst_port >= r->ports[i].lo && rec->dst_port <= r->ports[i].hi;
        if (!hit)
            return 0;
    }
    if (r->cidrs && !netset_lookup(r->cidrs, rec->family, rec->dst_ip, NULL))
        return 0;
    const struct rec_enrich *e = &rec->enrich;
    if (r->nasns) {
        int hit = 0;
        for (size_t i = 0; e->has_asn && !hit && i < r->nasns; i++)
            hit = r->asns[i] == e->asn;
        if (!hit)
            return 0;
    }
    if (r->ncountries) {
        int hit = 0;
        for (size_t i = 0; e->has_country && !hit && i < r->ncountries; i++)
            hit = !strcmp(r->countries[i], e->country);
        if (!hit)
            return 0;
    }
    if (r->nndpi) {
        int hit = 0;
        for (size_t i = 0; !hit && i < r->nndpi; i++)
            hit = ndpi_name_match(r->ndpi[i], &rec->ndpi);
        if (!hit)
            return 0;
    }
    if (r->ndomains && !any_domain(r, rec->ndpi.tls_sni) &&
        !any_domain(r, rec->ndpi.http_host) && !any_domain(r, e->dest_name))
        return 0;
    return 1;
}

static unsigned rule_needs(const struct pol_rule *r)
{
    return (r->cidrs ? NEED_CIDR : 0) | (r->ndomains ? NEED_DOMAIN : 0) |
           (r->nasns ? NEED_ASN : 0) | (r->ncountries ? NEED_COUNTRY : 0) |
           (r->nndpi ? NEED_NDPI : 0);
}

static void index_free(struct role_index *x)
{
    netset_free(x->cidrs);
    strset_free(x->exact);
    strset_free(x->suffix);
    strset_free(x->asns);
    strset_free(x->countries);
    strset_free(x->ndpi);
    for (unsigned m = 0; m < NEED_ALL; m++)
        free(x->bucket[m]);
    memset(x, 0, sizeof(*x));
}

static int index_build(struct role_index *x, const struct pol_role *role)
{
    if (!(x->cidrs = netset_new()) || !(x->exact = strset_new()) || !(x->suffix = strset_new()) || !(x->asns = strset_new()) ||
        !(x->countries = strset_new()) || !(x->ndpi = strset_new()))
        return EGR_ENOMEM;
    for (size_t i = 0; i < role->nrules; i++) {
        const struct pol_rule *r = &role->rules[i];
        unsigned m = rule_needs(r);
        const struct pol_rule **b = realloc(x->bucket[m], (x->nbucket[m] + 1) * sizeof(*b));
        if (!b)
            return EGR_ENOMEM;
        b[x->nbucket[m]++] = r;
        x->bucket[m] = b;
        for (size_t k = 0; k < r->ndomains; k++) {
            const char *d = r->domains[k];
            int rc = !strncmp(d, "*.", 2) ? strset_add(x->suffix, d + 2, strlen(d + 2))
                                          : strset_add(x->exact, d, strlen(d));
            if (rc != EGR_OK)
                return rc;
        }
        for (size_t k = 0; k < r->nasns; k++)
            if (strset_add(x->asns, (const char *)&r->asns[k], sizeof(r->asns[k])) != EGR_OK)
                return EGR_ENOMEM;
        for (size_t k = 0; k < r->ncountries; k++)
            if (strset_add(x->countries, r->countries[k], 2) != EGR_OK)
                return EGR_ENOMEM;
        for (size_t k = 0; k < r->nndpi; k++)
            if (strset_add(x->ndpi, r->ndpi[k], strlen(r->ndpi[k])) != EGR_OK)
                return EGR_ENOMEM;
        if (r->cidrs && netset_add_all(x->cidrs, r->cidrs, 1) != EGR_OK)
            return EGR_ENOMEM;
    }
    return EGR_OK;
}

/* A name matches some domain key of the role: exactly, or strictly below
 * a "*.suffix". */
static int name_possible(const struct role_index *x, const char *name)
{
    size_t n = strlen(name);
    if (n && name[n - 1] == '.')
        n--;
    if (!n)
        return 0;
    if (strset_has(x->exact, name, n))
        return 1;
    for (const char *p = name; (p = memchr(p, '.', n - (size_t)(p - name))) != NULL;) {
        p++;
        if (strset_has(x->suffix, p, n - (size_t)(p - name)))
            return 1;
    }
    return 0;
}

static unsigned index_possible(const struct role_index *x, const struct flow_record *rec)
{
    const struct rec_enrich *e = &rec->enrich;
    const struct rec_ndpi *nd = &rec->ndpi;
    unsigned ok = 0;
    if (netset_count(x->cidrs) && netset_lookup(x->cidrs, rec->family, rec->dst_ip, NULL))
        ok |= NEED_CIDR;
    if (strset_count(x->exact) + strset_count(x->suffix) &&
        (name_possible(x, nd->tls_sni) || name_possible(x, nd->http_host) ||
         name_possible(x, e->dest_name)))
        ok |= NEED_DOMAIN;
    if (e->has_asn && strset_has(x->asns, (const char *)&e->asn, sizeof(e->asn)))
        ok |= NEED_ASN;
    if (e->has_country && strset_has(x->countries, e->country, 2))
        ok |= NEED_COUNTRY;
    if (strset_has(x->ndpi, nd->proto, strlen(nd->proto)) ||
        (nd->master[0] && strset_has(x->ndpi, nd->master, strlen(nd->master))) ||
        (nd->app[0] && strset_has(x->ndpi, nd->app, strlen(nd->app))))
        ok |= NEED_NDPI;
    return ok;
}

/* 1 if some rule of the role allows the record (rules tried only from the
 * buckets whose every needed kind is possible). */
static int allowed(const struct role_index *x, const struct flow_record *rec)
{
    unsigned ok = index_possible(x, rec);
    for (unsigned m = 0; m < NEED_ALL; m++) {
        if (m & ~ok)
            continue;
        for (size_t i = 0; i < x->nbucket[m]; i++)
            if (pol_rule_match(x->bucket[m][i], rec))
                return 1;
    }
    return 0;
}

/* ---- state --------------------------------------------------------------- */

struct dedup {
    uint8_t key[20];
    uint8_t used;
    uint64_t first_seen, last_seen, last_emit;
    uint64_t count, reported;
    int32_t prev, next;          /* LRU list, most recent at head */
    struct alert_record *pending; /* latest unreported match, or NULL */
};

struct exfil {
    uint64_t hash; /* of the asset name; 0 = empty slot */
    uint64_t window_start, bytes;
    int alerted;
};

struct learned {
    uint32_t role_hash;
    char role[POLICY_NAME_MAX];
    char dest[REC_NAME_MAX]; /* a name, or an address text */
    uint8_t is_name, proto;
    uint16_t port;
    char note[160];          /* nDPI protocol, ASN, country: a comment */
};

struct policy_state {
    struct dedup *dd;        /* DEDUP_MAX entries */
    int32_t *dd_index;       /* open addressing over 2*DEDUP_MAX, -1 empty */
    uint32_t dd_used;
    int32_t lru_head, lru_tail;
    int32_t free_head;
    struct exfil *ex;        /* EXFIL_MAX slots */
    struct learned *learn;
    size_t nlearn, caplearn;
    struct strset *learn_keys;
    uint64_t rl_second;      /* rate limit: current second of packet time */
    uint32_t rl_count;
    struct policy_stats stats;
    struct alert_record scratch; /* built here, not on the stack (4 KiB) */
};

struct policy_state *policy_state_new(void)
{
    struct policy_state *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->dd = calloc(DEDUP_MAX, sizeof(*st->dd));
    st->dd_index = malloc(2 * DEDUP_MAX * sizeof(*st->dd_index));
    st->ex = calloc(EXFIL_MAX, sizeof(*st->ex));
    st->learn_keys = strset_new();
    if (!st->dd || !st->dd_index || !st->ex || !st->learn_keys) {
        policy_state_free(st);
        return NULL;
    }
    for (uint32_t i = 0; i < 2 * DEDUP_MAX; i++)
        st->dd_index[i] = -1;
    st->lru_head = st->lru_tail = -1;
    return st;
}

void policy_state_free(struct policy_state *st)
{
    if (!st)
        return;
    for (uint32_t i = 0; st->dd && i < DEDUP_MAX; i++)
        free(st->dd[i].pending);
    free(st->dd);
    free(st->dd_index);
    free(st->ex);
    free(st->learn);
    strset_free(st->learn_keys);
    free(st);
}

void policy_state_stats(const struct policy_state *st, struct policy_stats *out)
{
    *out = st->stats;
}

static uint32_t dd_slot_of(const uint8_t key[20])
{
    uint64_t h;
    memcpy(&h, key, 8);
    return (uint32_t)(hash_mix64(h) & (2 * DEDUP_MAX - 1));
}

static int32_t dd_find(const struct policy_state *st, const uint8_t key[20])
{
    for (uint32_t j = dd_slot_of(key);; j = (j + 1) & (2 * DEDUP_MAX - 1)) {
        int32_t i = st->dd_index[j];
        if (i < 0)
            return -1;
        if (!memcmp(st->dd[i].key, key, 20))
            return i;
    }
}

static void lru_unlink(struct policy_state *st, int32_t i)
{
    struct dedup *d = &st->dd[i];
    if (d->prev >= 0)
        st->dd[d->prev].next = d->next;
    else
        st->lru_head = d->next;
    if (d->next >= 0)
        st->dd[d->next].prev = d->prev;
    else
        st->lru_tail = d->prev;
}

static void lru_push(struct policy_state *st, int32_t i)
{
    struct dedup *d = &st->dd[i];
    d->prev = -1;
    d->next = st->lru_head;
    if (st->lru_head >= 0)
        st->dd[st->lru_head].prev = i;
    st->lru_head = i;
    if (st->lru_tail < 0)
        st->lru_tail = i;
}

/* Removes entry i from the index (backward-shift deletion keeps probe
 * chains intact without tombstones). */
static void dd_unindex(struct policy_state *st, int32_t i)
{
    const uint32_t mask = 2 * DEDUP_MAX - 1;
    uint32_t j = dd_slot_of(st->dd[i].key);
    while (st->dd_index[j] != i)
        j = (j + 1) & mask;
    uint32_t hole = j;
    for (uint32_t k = (hole + 1) & mask; st->dd_index[k] >= 0; k = (k + 1) & mask) {
        uint32_t home = dd_slot_of(st->dd[st->dd_index[k]].key);
        /* Can the entry at k move to the hole? Only if its home is not in
         * the (cyclic) range (hole, k]. */
        int between = hole <= k ? (home > hole && home <= k) : (home > hole || home <= k);
        if (!between) {
            st->dd_index[hole] = st->dd_index[k];
            hole = k;
        }
    }
    st->dd_index[hole] = -1;
}

static int32_t dd_insert(struct policy_state *st, const uint8_t key[20])
{
    int32_t i;
    if (st->dd_used < DEDUP_MAX) {
        i = (int32_t)st->dd_used++;
    } else {
        /* Full: forget the least recently matched key. Its pending count
         * is lost with it (counted). */
        i = st->lru_tail;
        lru_unlink(st, i);
        dd_unindex(st, i);
        free(st->dd[i].pending);
        st->stats.dedup_evicted++;
    }
    memset(&st->dd[i], 0, sizeof(st->dd[i]));
    memcpy(st->dd[i].key, key, 20);
    st->dd[i].used = 1;
    uint32_t j = dd_slot_of(key);
    while (st->dd_index[j] >= 0)
        j = (j + 1) & (2 * DEDUP_MAX - 1);
    st->dd_index[j] = i;
    lru_push(st, i);
    return i;
}

/* ---- raising an alert ---------------------------------------------------- */

struct raise {
    const struct policy *p;
    struct policy_state *st;
    struct flow_record *rec;
    policy_alert_fn fn;
    void *arg;
};

static void ip_text(const struct flow_record *rec, const uint8_t *ip, char *out, size_t n)
{
    if (!inet_ntop(rec->family == 6 ? AF_INET6 : AF_INET, ip, out, (socklen_t)n))
        snprintf(out, n, "?");
}

static void service_of(const struct flow_record *rec, char *out, size_t n)
{
    switch (rec->proto) {
    case 6: snprintf(out, n, "tcp/%u", rec->dst_port); break;
    case 17: snprintf(out, n, "udp/%u", rec->dst_port); break;
    case 132: snprintf(out, n, "sctp/%u", rec->dst_port); break;
    case 1: snprintf(out, n, "icmp"); break;
    case 58: snprintf(out, n, "icmp6"); break;
    default: snprintf(out, n, "proto/%u", rec->proto); break;
    }
}

static int rate_ok(struct raise *r)
{
    const struct policy_config *pc = &r->p->pc;
    if (!pc->max_per_second)
        return 1;
    uint64_t sec = r->rec->emit_us / 1000000;
    if (sec != r->st->rl_second) {
        r->st->rl_second = sec;
        r->st->rl_count = 0;
    }
    if (r->st->rl_count >= pc->max_per_second) {
        r->st->stats.rate_limited++;
        return 0;
    }
    r->st->rl_count++;
    return 1;
}

static void emit(struct raise *r, const struct alert_record *a)
{
    r->st->stats.alerts++;
    if (!a->update)
        r->st->stats.alerts_first++;
    r->fn(r->arg, a);
}

/* One alert condition met by r->rec. `asset` identifies the local side,
 * `dest` the destination (a name or an indicator), for the key. */
static void raise_alert(struct raise *r, unsigned kind, unsigned severity, const char *asset,
                        const char *dest, const char *intel, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static void raise_alert(struct raise *r, unsigned kind, unsigned severity, const char *asset,
                        const char *dest, const char *intel, const char *fmt, ...)
{
    struct flow_record *rec = r->rec;
    struct policy_state *st = r->st;
    rec->alerted = 1;

    char service[64];
    service_of(rec, service, sizeof(service));
    if (kind == ALERT_EXFIL)
        service[0] = '\0'; /* one exfiltration alert per asset, whatever the service */
    /* kind, asset, destination, service: NUL-separated so no value can
     * imitate another split. */
    char keytext[1024];
    int kl = snprintf(keytext, sizeof(keytext), "%s%c%s%c%s%c%s", alert_kind_name(kind), 0,
                      asset, 0, dest, 0, service);
    if (kl < 0 || (size_t)kl >= sizeof(keytext))
        kl = (int)sizeof(keytext) - 1;
    uint8_t key[20];
    gcry_md_hash_buffer(GCRY_MD_SHA1, key, keytext, (size_t)kl);

    uint64_t now = rec->emit_us ? rec->emit_us : rec->last_us;
    int32_t i = dd_find(st, key);
    struct dedup *d = i >= 0 ? &st->dd[i] : NULL;
    int update = d != NULL;
    if (d) {
        lru_unlink(st, i);
        lru_push(st, i);
        d->count++;
        if (rec->last_us > d->last_seen)
            d->last_seen = rec->last_us;
        st->stats.suppressed++;
        if (now < d->last_emit + (uint64_t)r->p->pc.suppress * 1000000 || !rate_ok(r)) {
            /* Inside the window: remember the latest match; its count goes
             * out with the next update (or at the end of the run). */
            if (!d->pending)
                d->pending = malloc(sizeof(*d->pending));
            if (d->pending) {
                struct alert_record *a = d->pending;
                memset(a, 0, sizeof(*a));
                a->kind = (uint8_t)kind;
                a->severity = (uint8_t)severity;
                snprintf(a->service, sizeof(a->service), "%s", service);
                snprintf(a->intel_list, sizeof(a->intel_list), "%s", intel ? intel : "");
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(a->reason, sizeof(a->reason), fmt, ap);
                va_end(ap);
                a->flow = *rec;
            }
            return;
        }
    } else {
        if (!rate_ok(r))
            return; /* not remembered: the next match may alert */
        i = dd_insert(st, key);
        d = &st->dd[i];
        d->first_seen = rec->first_us;
        d->last_seen = rec->last_us;
        d->count = 1;
    }
    free(d->pending);
    d->pending = NULL;
    d->last_emit = now;
    d->reported = d->count;

    struct alert_record *a = &st->scratch;
    memset(a, 0, offsetof(struct alert_record, flow));
    a->ts_us = now;
    a->first_seen_us = d->first_seen;
    a->last_seen_us = d->last_seen;
    a->count = d->count;
    a->kind = (uint8_t)kind;
    a->severity = (uint8_t)severity;
    a->update = (uint8_t)update;
    for (int b = 0; b < 20; b++)
        snprintf(a->alert_key + 2 * b, 3, "%02x", key[b]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->reason, sizeof(a->reason), fmt, ap);
    va_end(ap);
    snprintf(a->intel_list, sizeof(a->intel_list), "%s", intel ? intel : "");
    snprintf(a->service, sizeof(a->service), "%s", service);
    a->flow = *rec;
    emit(r, a);
}

void policy_flush(const struct policy *p, struct policy_state *st, uint64_t now_us,
                  policy_alert_fn fn, void *arg)
{
    (void)p;
    struct raise r = {p, st, NULL, fn, arg};
    /* Oldest first, so updates come out in the order they were last met. */
    for (int32_t i = st->lru_tail; i >= 0; i = st->dd[i].prev) {
        struct dedup *d = &st->dd[i];
        if (!d->pending || d->count == d->reported)
            continue;
        struct alert_record *a = d->pending;
        a->ts_us = now_us > d->last_seen ? now_us : d->last_seen;
        a->first_seen_us = d->first_seen;
        a->last_seen_us = d->last_seen;
        a->count = d->count;
        a->update = 1;
        for (int b = 0; b < 20; b++)
            snprintf(a->alert_key + 2 * b, 3, "%02x", d->key[b]);
        d->reported = d->count;
        d->last_emit = a->ts_us;
        emit(&r, a);
        free(d->pending);
        d->pending = NULL;
    }
}

/* ---- learning ------------------------------------------------------------ */

static void learn_key(char *out, size_t n, const char *role, int is_name, const char *dest,
                      unsigned proto, unsigned port)
{
    snprintf(out, n, "%s|%c|%s|%u|%u", role, is_name ? 'd' : 'c', dest, proto, port);
}

/* The port a destination is reached on: the service port for TCP/UDP/SCTP,
 * none for other protocols. */
static unsigned dest_port(const struct flow_record *rec)
{
    return (rec->proto == 6 || rec->proto == 17 || rec->proto == 132) ? rec->dst_port : 0;
}

/* Adds one destination to what a role was seen reaching; counted in
 * stats.learned when `count` (entries read back from the file are not). */
static void learn_add(struct policy_state *st, const char *role, int is_name, const char *dest,
                      unsigned proto, unsigned port, const char *note, int count)
{
    char key[REC_NAME_MAX + 128];
    learn_key(key, sizeof(key), role, is_name, dest, proto, port);
    if (strset_has(st->learn_keys, key, strlen(key)))
        return;
    if (st->nlearn >= LEARN_MAX || strlen(key) > STRSET_KEY_MAX) {
        st->stats.learn_dropped++;
        return;
    }
    if (st->nlearn == st->caplearn) {
        size_t cap = st->caplearn ? st->caplearn * 2 : 64;
        struct learned *l = realloc(st->learn, cap * sizeof(*l));
        if (!l) {
            st->stats.learn_dropped++;
            return;
        }
        st->learn = l;
        st->caplearn = cap;
    }
    if (strset_add(st->learn_keys, key, strlen(key)) != EGR_OK) {
        st->stats.learn_dropped++;
        return;
    }
    struct learned *l = &st->learn[st->nlearn++];
    memset(l, 0, sizeof(*l));
    snprintf(l->role, sizeof(l->role), "%s", role);
    snprintf(l->dest, sizeof(l->dest), "%s", dest);
    l->is_name = (uint8_t)is_name;
    l->proto = (uint8_t)proto;
    l->port = (uint16_t)port;
    snprintf(l->note, sizeof(l->note), "%s", note);
    if (count)
        st->stats.learned++;
}

static void learn(struct policy_state *st, const char *role, const struct flow_record *rec)
{
    const struct rec_enrich *e = &rec->enrich;
    char dest[REC_NAME_MAX];
    /* A name from the wire goes into the file only if it is a plain host
     * name: anything else is learned by address, so no name can make the
     * baseline unreadable or match more than itself. */
    int is_name = e->dest_name[0] != '\0';
    for (const char *c = e->dest_name; is_name && *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '.' && *c != '-' && *c != '_')
            is_name = 0;
    if (is_name)
        snprintf(dest, sizeof(dest), "%s", e->dest_name);
    else
        ip_text(rec, rec->dst_ip, dest, sizeof(dest));
    for (char *c = dest; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    char note[160];
    int o = snprintf(note, sizeof(note), "%s", rec->ndpi.proto);
    if (e->has_asn && o > 0 && (size_t)o < sizeof(note))
        o += snprintf(note + o, sizeof(note) - (size_t)o, ", AS%u %s", e->asn, e->as_org);
    if (e->has_country && o > 0 && (size_t)o < sizeof(note))
        snprintf(note + o, sizeof(note) - (size_t)o, ", %s", e->country);
    learn_add(st, role, is_name, dest, rec->proto, dest_port(rec), note, 1);
}

/* ---- evaluation ---------------------------------------------------------- */

/* The destination of a record for alert keys: its name, else the
 * responder's address. */
static const char *dest_of(const struct flow_record *rec, char *buf, size_t n)
{
    if (rec->enrich.dest_name[0])
        return rec->enrich.dest_name;
    if (!buf[0])
        ip_text(rec, rec->dst_ip, buf, n);
    return buf;
}

/* The local side of a record for alert keys: its asset name, else its
 * address. Filled on first use. */
static const char *asset_key_of(const struct flow_record *rec, char *buf, size_t n)
{
    if (!buf[0]) {
        const struct rec_enrich *e = &rec->enrich;
        if (e->asset[0])
            snprintf(buf, n, "%s", e->asset);
        else
            ip_text(rec, e->direction == DIR_INBOUND ? rec->dst_ip : rec->src_ip, buf, n);
    }
    return buf;
}

static void check_intel(struct raise *r, char *asset_key, size_t asset_key_size)
{
    const struct policy *p = r->p;
    struct flow_record *rec = r->rec;
    const struct rec_ndpi *n = &rec->ndpi;
    for (size_t i = 0; i < p->spec->nintel; i++) {
        const struct pol_intel *def = &p->spec->intel[i];
        const struct intel_list *l = &p->intel[i];
        char hit[REC_NAME_MAX + 8] = "";
        switch (def->type) {
        case INTEL_IP: {
            /* Either end, but never the sensor's own networks. */
            const uint8_t *ends[2] = {rec->dst_ip, rec->src_ip};
            for (int k = 0; k < 2 && !hit[0]; k++)
                if (!local(p->spec, rec->family, ends[k]) &&
                    netset_lookup(l->ips, rec->family, ends[k], NULL))
                    ip_text(rec, ends[k], hit, sizeof(hit));
            break;
        }
        case INTEL_DOMAIN: {
            const char *names[3] = {n->tls_sni, n->http_host, rec->enrich.dest_name};
            for (int k = 0; k < 3 && !hit[0]; k++)
                if (names[k][0] && strset_has_domain(l->strs, names[k]))
                    snprintf(hit, sizeof(hit), "%s", names[k]);
            break;
        }
        case INTEL_JA3:
            if (n->tls_ja3c[0] && strset_has(l->strs, n->tls_ja3c, strlen(n->tls_ja3c)))
                snprintf(hit, sizeof(hit), "%s", n->tls_ja3c);
            else if (n->tls_ja3s[0] && strset_has(l->strs, n->tls_ja3s, strlen(n->tls_ja3s)))
                snprintf(hit, sizeof(hit), "%s", n->tls_ja3s);
            break;
        case INTEL_SHA1:
            if (n->tls_sha1[0] && strset_has(l->strs, n->tls_sha1, strlen(n->tls_sha1)))
                snprintf(hit, sizeof(hit), "%s", n->tls_sha1);
            break;
        }
        if (hit[0])
            raise_alert(r, ALERT_INTEL, def->severity,
                        asset_key_of(rec, asset_key, asset_key_size), hit, def->name,
                        "matched intel list %s (%s %s)", def->name,
                        def->type == INTEL_IP ? "address" : def->type == INTEL_DOMAIN ? "domain"
                        : def->type == INTEL_JA3 ? "JA3" : "certificate SHA-1", hit);
    }
}

static struct exfil *exfil_slot(struct policy_state *st, const char *asset)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *c = asset; *c; c++)
        h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
    h = hash_mix64(h) | 1; /* never 0: 0 marks an empty slot */
    for (uint32_t j = (uint32_t)(h & (EXFIL_MAX - 1)), n = 0; n < EXFIL_MAX;
         j = (j + 1) & (EXFIL_MAX - 1), n++) {
        if (st->ex[j].hash == h)
            return &st->ex[j];
        if (!st->ex[j].hash) {
            st->ex[j].hash = h;
            return &st->ex[j];
        }
    }
    return NULL;
}

/* Guarded services (policy-guard.c) raise through the same dedup and rate
 * limit as every other alert; the service's name rides as the list name. */
static void guard_raise(void *ctx, unsigned kind, unsigned severity, const char *caller,
                        const char *key_dest, const char *service, const char *reason)
{
    raise_alert(ctx, kind, severity, caller, key_dest, service, "%s", reason);
}

void policy_evaluate(const struct policy *p, struct policy_state *st, struct flow_record *rec,
                     policy_alert_fn fn, void *arg)
{
    const struct policy_spec *s = p ? p->spec : NULL;
    if (!s)
        return;
    struct raise r = {p, st, rec, fn, arg};
    const struct rec_enrich *e = &rec->enrich;
    /* Texts for alert keys are made only when an alert is raised: most
     * records raise none, and formatting addresses is not free. */
    char dest_ip[64] = "", asset_key[POLICY_NAME_MAX + 64] = "";
#define ASSET asset_key_of(rec, asset_key, sizeof(asset_key))
#define DEST dest_of(rec, dest_ip, sizeof(dest_ip))
    if (s->nintel)
        check_intel(&r, asset_key, sizeof(asset_key));
    if (e->direction != DIR_EGRESS)
        return;

    int asset_idx, ri = role_of(s, rec->family, rec->src_ip, &asset_idx);
    if (ri >= 0) {
        const struct pol_role *role = &s->roles[ri];
        switch (role->mode) {
        case MODE_MONITOR:
            break;
        case MODE_LEARN:
            if (!allowed(&p->index[ri], rec))
                learn(st, role->name, rec);
            break;
        case MODE_DENY:
            if (!allowed(&p->index[ri], rec))
                raise_alert(&r, ALERT_UNEXPECTED, role->severity, ASSET, DEST, NULL,
                            "no allow rule of role %s matched", role->name);
            break;
        case MODE_BASELINE:
            if (!allowed(&p->index[ri], rec) &&
                !(ri < (int)p->nbaseline && allowed(&p->bindex[ri], rec)))
                raise_alert(&r, ALERT_UNEXPECTED, role->severity, ASSET, DEST, NULL,
                            "no allow rule of role %s matched, nor its learned baseline",
                            role->name);
            break;
        }
    }

    uint64_t risks = rec->ndpi.risk & p->pc.risk_mask;
    if (risks) {
        char names[200] = "";
        size_t o = 0;
        for (unsigned b = 0; b < 64 && o < sizeof(names); b++)
            if (risks & ((uint64_t)1 << b)) {
                const char *nm = classify_risk_name(b);
                int w = snprintf(names + o, sizeof(names) - o, "%s%s", o ? ", " : "",
                                 nm ? nm : "?");
                if (w > 0)
                    o += (size_t)w;
            }
        raise_alert(&r, ALERT_RISK, p->pc.risk_severity, ASSET, DEST, NULL,
                    "nDPI risk: %s", names);
    }

    if (p->pc.exfil_bytes && e->asset[0]) {
        struct exfil *x = exfil_slot(st, e->asset);
        uint64_t now = rec->emit_us ? rec->emit_us : rec->last_us;
        uint64_t win = (uint64_t)p->pc.exfil_window * 1000000;
        if (x) {
            if (now >= x->window_start + win) {
                x->window_start = now;
                x->bytes = 0;
                x->alerted = 0;
            }
            x->bytes += rec->bytes_toserver;
            if (x->bytes > p->pc.exfil_bytes && !x->alerted) {
                x->alerted = 1;
                raise_alert(&r, ALERT_EXFIL, p->pc.exfil_severity, ASSET, "", NULL,
                            "asset %s sent %" PRIu64 " bytes out within %u s (threshold %"
                            PRIu64 ")", e->asset, x->bytes, p->pc.exfil_window,
                            p->pc.exfil_bytes);
            }
        }
    }

    if (s->guard)
        policy_guard_check(s->guard, rec, guard_raise, &r);
}

#undef ASSET
#undef DEST

/* ---- saving the baseline ------------------------------------------------- */

/* A YAML double-quoted scalar: JSON's escaping is valid YAML. */
static void yaml_str(FILE *f, struct jbuf *jb, const char *s)
{
    jbuf_reset(jb);
    json_escape_into(jb, s, strlen(s));
    fputc('"', f);
    fwrite(jb->buf, 1, jb->len, f);
    fputc('"', f);
}

/* A comment keeps printable ASCII only: a comment cannot end early. */
static void yaml_comment(FILE *f, const char *s)
{
    for (; *s; s++)
        fputc((*s >= 0x20 && *s < 0x7f) ? *s : '?', f);
}

static const char *proto_word(unsigned proto, char *buf, size_t n)
{
    switch (proto) {
    case 6: return "tcp";
    case 17: return "udp";
    case 1: return "icmp";
    case 58: return "icmp6";
    default: snprintf(buf, n, "%u", proto); return buf;
    }
}

static void write_entry(FILE *f, struct jbuf *jb, const struct learned *l)
{
    char pb[8];
    fputs("    - {", f);
    fputs(l->is_name ? "domain: " : "cidr: ", f);
    yaml_str(f, jb, l->dest);
    fprintf(f, ", proto: %s", proto_word(l->proto, pb, sizeof(pb)));
    if (l->port)
        fprintf(f, ", port: %u", l->port);
    fputs("}", f);
    if (l->note[0]) {
        fputs("  # ", f);
        yaml_comment(f, l->note);
    }
    fputc('\n', f);
}

void policy_state_seed(const struct policy *p, struct policy_state *st)
{
    for (size_t ri = 0; p && ri < p->nbaseline; ri++) {
        const struct pol_role *role = &p->baseline[ri];
        for (size_t j = 0; j < role->nrules; j++) {
            const struct pol_rule *ru = &role->rules[j];
            char dest[REC_NAME_MAX];
            int is_name = ru->ndomains > 0;
            if (is_name)
                snprintf(dest, sizeof(dest), "%s", ru->domains[0]);
            else if (ru->first_cidr[0])
                snprintf(dest, sizeof(dest), "%.*s", (int)strcspn(ru->first_cidr, "/"),
                         ru->first_cidr);
            else
                continue;
            unsigned proto = ru->proto < 0 ? 0 : (unsigned)ru->proto;
            learn_add(st, role->name, is_name, dest, proto, ru->nports ? ru->ports[0].lo : 0, "",
                      0);
        }
    }
}

int policy_save_baseline(const struct policy *p, struct policy_state *st, struct egr_err *err)
{
    if (!policy_learning(p))
        return EGR_OK;
    char tmp[1100];
    snprintf(tmp, sizeof(tmp), "%s.tmp", p->pc.baseline_file);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return egr_fail(err, EGR_EIO, "%s: %s", tmp, strerror(errno));
    struct jbuf jb;
    jbuf_init(&jb);
    fputs("# egressd baseline: destinations seen per role in learn mode, one allow rule\n"
          "# each (docs/policy.md). Review it, then set the role's mode to baseline, or\n"
          "# copy entries into its allow list. Rewritten by the sensor while learning.\n"
          "baseline:\n", f);
    const struct policy_spec *s = p->spec;
    for (size_t ri = 0; ri < s->nroles; ri++) {
        const char *role = s->roles[ri].name;
        int any = 0;
        for (size_t j = 0; j < st->nlearn; j++) {
            const struct learned *l = &st->learn[j];
            if (strcmp(l->role, role))
                continue;
            if (!any++)
                fprintf(f, "  %s:\n", role);
            write_entry(f, &jb, l);
        }
    }
    jbuf_free(&jb);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        remove(tmp);
        return egr_fail(err, EGR_EIO, "%s: write failed", tmp);
    }
    if (rename(tmp, p->pc.baseline_file) != 0) {
        int e = errno;
        remove(tmp);
        return egr_fail(err, EGR_EIO, "%s: %s", p->pc.baseline_file, strerror(e));
    }
    return EGR_OK;
}

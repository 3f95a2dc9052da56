/* policy-rules.c - allow rules: matching one rule against a record, and a
 * role's rules indexed so a record is tried only against the rules that
 * could match it.
 *
 * Index: the union of each kind of key over all of a role's rules tells,
 * with one lookup per kind, which kinds can match a record at all; rules
 * are kept in buckets by the kinds they need, and only the buckets whose
 * kinds are all possible are tried. With a thousand rules a record is
 * checked against the few that could match, not all of them.
 *
 * Everything here only reads the policy: safe from many threads at once.
 */
#include <string.h>
#include <strings.h>
#include <stdlib.h>

#include "policy-int.h"

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

/* A rule against a record, the kinds of key in `skip` (NEED_DOMAIN,
 * NEED_NDPI) taken as matching. */
static int rule_match(const struct pol_rule *r, const struct flow_record *rec, unsigned skip)
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
    if (r->nndpi && !(skip & NEED_NDPI)) {
        int hit = 0;
        for (size_t i = 0; !hit && i < r->nndpi; i++)
            hit = ndpi_name_match(r->ndpi[i], &rec->ndpi);
        if (!hit)
            return 0;
    }
    if (r->ndomains && !(skip & NEED_DOMAIN) && !any_domain(r, rec->ndpi.tls_sni) &&
        !any_domain(r, rec->ndpi.http_host) && !any_domain(r, e->dest_name))
        return 0;
    return 1;
}

int pol_rule_match(const struct pol_rule *r, const struct flow_record *rec)
{
    return rule_match(r, rec, 0);
}

static unsigned rule_needs(const struct pol_rule *r)
{
    return (r->cidrs ? NEED_CIDR : 0) | (r->ndomains ? NEED_DOMAIN : 0) |
           (r->nasns ? NEED_ASN : 0) | (r->ncountries ? NEED_COUNTRY : 0) |
           (r->nndpi ? NEED_NDPI : 0);
}

void pol_index_free(struct role_index *x)
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

int pol_index_build(struct role_index *x, const struct pol_role *role)
{
    if (!(x->cidrs = netset_new()) || !(x->exact = strset_new()) ||
        !(x->suffix = strset_new()) || !(x->asns = strset_new()) ||
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
int pol_allowed(const struct role_index *x, const struct flow_record *rec)
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

int pol_could_allow(const struct role_index *x, const struct flow_record *rec, unsigned unknown)
{
    unknown &= NEED_DOMAIN | NEED_NDPI;
    if (!unknown)
        return 0;
    unsigned ok = index_possible(x, rec) | unknown;
    for (unsigned m = 0; m < NEED_ALL; m++) {
        /* Only rules that need something still unknown, and whose other
         * keys can match now. */
        if (!(m & unknown) || (m & ~ok))
            continue;
        for (size_t i = 0; i < x->nbucket[m]; i++)
            if (rule_match(x->bucket[m][i], rec, unknown))
                return 1;
    }
    return 0;
}

int pol_allowed_known(const struct role_index *x, const struct flow_record *rec,
                      unsigned unknown)
{
    unsigned ok = index_possible(x, rec);
    for (unsigned m = 0; m < NEED_ALL; m++) {
        if ((m & ~ok) || (m & unknown))
            continue;
        for (size_t i = 0; i < x->nbucket[m]; i++)
            if (pol_rule_match(x->bucket[m][i], rec))
                return 1;
    }
    return 0;
}

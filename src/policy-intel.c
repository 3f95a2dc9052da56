/* policy-intel.c - threat-intel lists: loading the files (addresses and
 * CIDRs, domains, JA3 and certificate SHA-1 fingerprints), noticing when a
 * file changed, and matching a record against every list.
 *
 * A list is built once with its policy and then only read: matching is safe
 * from many threads at once.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "policy-int.h"

#define INTEL_FILE_MAX (256u << 20) /* larger is not a list this sensor should hold */

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

int pol_intel_load(struct intel_list *l, const struct pol_intel *def, struct egr_err *err)
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

void pol_intel_free(struct intel_list *l)
{
    netset_free(l->ips);
    strset_free(l->strs);
    memset(l, 0, sizeof(*l));
}

static void ip_text(const struct flow_record *rec, const uint8_t *ip, char *out, size_t n)
{
    pol_ip_text(rec->family, ip, out, n);
}

void pol_intel_check(const struct policy *p, const struct flow_record *rec,
                     pol_intel_hit_fn fn, void *arg)
{
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
                if (!pol_local(p->spec, rec->family, ends[k]) &&
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
            fn(arg, def, hit);
    }
}

int pol_intel_needs_classification(const struct policy *p)
{
    for (size_t i = 0; p->spec && i < p->spec->nintel; i++)
        if (p->spec->intel[i].type != INTEL_IP)
            return 1;
    return 0;
}

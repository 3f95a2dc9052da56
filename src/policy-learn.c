/* policy-learn.c - learning: the baseline file a learn-mode role writes
 * and a baseline-mode role reads back as extra allow rules, and the set of
 * destinations learned while the sensor runs.
 *
 * The learned set is shared by every worker and survives reloads. It is
 * sharded by key: learning a destination takes one shard's lock, and only
 * for flows of learn-mode roles that no allow rule covers; entries carry a
 * sequence number so the file keeps the order they were learned in.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cfgload.h"
#include "egressd/hash.h"
#include "egressd/json.h"
#include "policy-cfg.h"
#include "policy-int.h"

#define LEARN_MAX 100000u /* destinations learned over all roles */
#define LEARN_SHARDS 16u

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

void pol_roles_free(struct pol_role *roles, size_t n)
{
    for (size_t i = 0; roles && i < n; i++) {
        for (size_t j = 0; j < roles[i].nrules; j++)
            pol_rule_clear(&roles[i].rules[j]);
        free(roles[i].rules);
    }
    free(roles);
}

int pol_baseline_load(struct policy *p, struct egr_err *err)
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



/* ---- the learned set ----------------------------------------------------- */

struct learned {
    uint64_t seq;            /* order of learning, kept in the file */
    char role[POLICY_NAME_MAX];
    char dest[REC_NAME_MAX]; /* a name, or an address text */
    uint8_t is_name, proto;
    uint16_t port;
    char note[160];          /* nDPI protocol, ASN, country: a comment */
};

struct learn_shard {
    pthread_mutex_t mu;
    struct strset *keys;
    struct learned *v;
    size_t n, cap;
};

struct learn_set {
    struct learn_shard sh[LEARN_SHARDS];
    atomic_uint_fast64_t seq;
    atomic_uint_fast64_t count;   /* entries over all shards, for LEARN_MAX */
    atomic_uint_fast64_t learned; /* stats.learned */
    atomic_uint_fast64_t dropped; /* stats.learn_dropped */
};

struct learn_set *pol_learn_new(void)
{
    struct learn_set *ls = calloc(1, sizeof(*ls));
    if (!ls)
        return NULL;
    for (unsigned i = 0; i < LEARN_SHARDS; i++) {
        pthread_mutex_init(&ls->sh[i].mu, NULL);
        if (!(ls->sh[i].keys = strset_new())) {
            pol_learn_free(ls);
            return NULL;
        }
    }
    return ls;
}

void pol_learn_free(struct learn_set *ls)
{
    if (!ls)
        return;
    for (unsigned i = 0; i < LEARN_SHARDS; i++) {
        strset_free(ls->sh[i].keys);
        free(ls->sh[i].v);
        pthread_mutex_destroy(&ls->sh[i].mu);
    }
    free(ls);
}

void pol_learn_stats(const struct learn_set *ls, uint64_t *learned, uint64_t *dropped)
{
    *learned = atomic_load(&ls->learned);
    *dropped = atomic_load(&ls->dropped);
}

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
 * stats.learned when `count` (entries read back from the file are not).
 * Takes the lock of the key's shard only. */
static void learn_add(struct learn_set *ls, const char *role, int is_name, const char *dest,
                      unsigned proto, unsigned port, const char *note, int count)
{
    char key[REC_NAME_MAX + 128];
    learn_key(key, sizeof(key), role, is_name, dest, proto, port);
    size_t kl = strlen(key);
    if (kl > STRSET_KEY_MAX) {
        atomic_fetch_add(&ls->dropped, 1);
        return;
    }
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < kl; i++)
        h = (h ^ (unsigned char)key[i]) * 0x100000001b3ull;
    struct learn_shard *sh = &ls->sh[hash_mix64(h) % LEARN_SHARDS];
    pthread_mutex_lock(&sh->mu);
    if (strset_has(sh->keys, key, kl))
        goto out;
    if (atomic_load(&ls->count) >= LEARN_MAX)
        goto drop;
    if (sh->n == sh->cap) {
        size_t cap = sh->cap ? sh->cap * 2 : 64;
        struct learned *l = realloc(sh->v, cap * sizeof(*l));
        if (!l)
            goto drop;
        sh->v = l;
        sh->cap = cap;
    }
    if (strset_add(sh->keys, key, kl) != EGR_OK)
        goto drop;
    struct learned *l = &sh->v[sh->n++];
    memset(l, 0, sizeof(*l));
    l->seq = atomic_fetch_add(&ls->seq, 1);
    snprintf(l->role, sizeof(l->role), "%s", role);
    snprintf(l->dest, sizeof(l->dest), "%s", dest);
    l->is_name = (uint8_t)is_name;
    l->proto = (uint8_t)proto;
    l->port = (uint16_t)port;
    snprintf(l->note, sizeof(l->note), "%s", note);
    atomic_fetch_add(&ls->count, 1);
    if (count)
        atomic_fetch_add(&ls->learned, 1);
out:
    pthread_mutex_unlock(&sh->mu);
    return;
drop:
    atomic_fetch_add(&ls->dropped, 1);
    pthread_mutex_unlock(&sh->mu);
}

void pol_learn_flow(struct learn_set *ls, const char *role, const struct flow_record *rec)
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
        pol_ip_text(rec->family, rec->dst_ip, dest, sizeof(dest));
    for (char *c = dest; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    char note[160];
    int o = snprintf(note, sizeof(note), "%s", rec->ndpi.proto);
    if (e->has_asn && o > 0 && (size_t)o < sizeof(note))
        o += snprintf(note + o, sizeof(note) - (size_t)o, ", AS%u %s", e->asn, e->as_org);
    if (e->has_country && o > 0 && (size_t)o < sizeof(note))
        snprintf(note + o, sizeof(note) - (size_t)o, ", %s", e->country);
    learn_add(ls, role, is_name, dest, rec->proto, dest_port(rec), note, 1);
}

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

void pol_learn_seed(const struct policy *p, struct learn_set *ls)
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
            learn_add(ls, role->name, is_name, dest, proto, ru->nports ? ru->ports[0].lo : 0, "",
                      0);
        }
    }
}

static int by_seq(const void *a, const void *b)
{
    const struct learned *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Every entry of every shard, in the order learned; NULL when empty or out
 * of memory (*n says which: 0 for empty). */
static struct learned *learn_snapshot(struct learn_set *ls, size_t *n)
{
    size_t total = 0, cap = 0;
    struct learned *all = NULL;
    *n = 0;
    for (unsigned i = 0; i < LEARN_SHARDS; i++) {
        struct learn_shard *sh = &ls->sh[i];
        pthread_mutex_lock(&sh->mu);
        if (total + sh->n > cap) {
            size_t nc = (total + sh->n) * 2;
            struct learned *na = realloc(all, nc * sizeof(*na));
            if (!na) {
                pthread_mutex_unlock(&sh->mu);
                free(all);
                *n = SIZE_MAX;
                return NULL;
            }
            all = na;
            cap = nc;
        }
        if (sh->n)
            memcpy(all + total, sh->v, sh->n * sizeof(*all));
        total += sh->n;
        pthread_mutex_unlock(&sh->mu);
    }
    if (total)
        qsort(all, total, sizeof(*all), by_seq);
    *n = total;
    return all;
}

int pol_learn_save(const struct policy *p, struct learn_set *ls, struct egr_err *err)
{
    if (!policy_learning(p))
        return EGR_OK;
    size_t nlearn;
    struct learned *learned = learn_snapshot(ls, &nlearn);
    if (nlearn == SIZE_MAX)
        return egr_fail(err, EGR_ENOMEM, "%s: out of memory", p->pc.baseline_file);
    char tmp[1100];
    snprintf(tmp, sizeof(tmp), "%s.tmp", p->pc.baseline_file);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        free(learned);
        return egr_fail(err, EGR_EIO, "%s: %s", tmp, strerror(errno));
    }
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
        for (size_t j = 0; j < nlearn; j++) {
            const struct learned *l = &learned[j];
            if (strcmp(l->role, role))
                continue;
            if (!any++)
                fprintf(f, "  %s:\n", role);
            write_entry(f, &jb, l);
        }
    }
    jbuf_free(&jb);
    free(learned);
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

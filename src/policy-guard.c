/* policy-guard.c - guarded services (see policy-guard.h, docs/policy.md):
 * the `guarded_services` section, which services a record reaches, whether
 * its caller may, what the callers file knows, and per-caller volume.
 *
 *   guarded_services:
 *     callers_file: guarded-callers.txt
 *     services:
 *       salesforce:
 *         domain: [salesforce.com, "*.salesforce.com", "*.force.com"]
 *         mode: deny
 *         callers: [{role: crm-sync, max_bytes_in: 52428800}]
 *         window: 10m
 *         max_bytes_in: 10485760
 *
 * The callers file holds one known caller per line, "SERVICE CALLER", '#'
 * starting a comment; learn mode appends a line per new caller as it sees
 * it (one write(2) with O_APPEND), so what was learned survives a crash or
 * a reload without a separate save step.
 */
#include "policy-guard.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "egressd/alert.h"
#include "egressd/hash.h"
#include "egressd/netset.h"
#include "egressd/policy.h"
#include "egressd/strset.h"
#include "policy-cfg.h"
#include "policy-int.h"

#define GUARD_WIN_MAX 65536u        /* caller/service windows per guard */
#define GUARD_WIN_PROBE 64u         /* slots tried from a window's home */
#define GUARD_KNOWN_MAX 100000u     /* known callers over all services */
#define GUARD_FILE_MAX (16u << 20)  /* a larger callers file is not one */
#define GUARD_LINE_MAX 512
#define DAY 86400u

enum { BY_ASSET = 0, BY_ROLE, BY_CIDR };

/* One entry of a service's callers list. */
struct guard_entry {
    uint8_t by;                    /* BY_* */
    uint8_t has_out, has_in;       /* the entry sets its own limits */
    char name[POLICY_NAME_MAX];    /* BY_ASSET, BY_ROLE */
    struct netset *cidrs;          /* BY_CIDR */
    uint64_t max_out, max_in;
    unsigned line, col;            /* of the name, for resolve errors */
};

struct guard_service {
    char name[POLICY_NAME_MAX];
    char **domains;                /* lowercase; "*.x" kept as is */
    size_t ndomains;
    uint8_t mode;                  /* enum policy_mode */
    uint8_t severity;
    unsigned mode_line, mode_col;
    struct guard_entry *callers;
    size_t ncallers;
    uint32_t window;               /* s */
    uint64_t max_out, max_in;      /* per caller and window; 0 = none */
};

/* A caller's volume window with one service; hash 0 = never used. */
struct guard_window {
    uint64_t hash;
    uint64_t start, end;           /* packet time, us */
    uint64_t out, in;
    uint8_t crossed;               /* GUARD_VOL_* reported in this window */
};

struct policy_guard {
    /* The parsed form: written while the file is read, then only read. */
    struct guard_service *svc;
    size_t nsvc;
    char callers_file[1024];
    unsigned line, col;            /* of the section */
    struct strset *exact, *suffix; /* every service's names, "*.x" as "x" */

    /* The state: lock guards everything below. */
    pthread_mutex_t lock;
    struct strset *known;          /* "INDEX|CALLER" */
    struct guard_window *win;      /* GUARD_WIN_MAX slots; NULL: no limits */
    struct policy_guard_stats stats;
    int file_error_told;
};

/* ---- building ------------------------------------------------------------ */

static struct policy_guard *guard_new(void)
{
    struct policy_guard *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    if (!(g->exact = strset_new()) || !(g->suffix = strset_new()) ||
        !(g->known = strset_new())) {
        strset_free(g->exact);
        strset_free(g->suffix);
        strset_free(g->known);
        free(g);
        return NULL;
    }
    pthread_mutex_init(&g->lock, NULL);
    return g;
}

void policy_guard_free(struct policy_guard *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->nsvc; i++) {
        struct guard_service *s = &g->svc[i];
        for (size_t j = 0; j < s->ndomains; j++)
            free(s->domains[j]);
        free(s->domains);
        for (size_t j = 0; j < s->ncallers; j++)
            netset_free(s->callers[j].cidrs);
        free(s->callers);
    }
    free(g->svc);
    strset_free(g->exact);
    strset_free(g->suffix);
    strset_free(g->known);
    free(g->win);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

int policy_guard_active(const struct policy_guard *g)
{
    return g && g->nsvc > 0;
}

const char *policy_guard_service_name(const struct policy_guard *g, size_t i)
{
    return g && i < g->nsvc ? g->svc[i].name : NULL;
}

/* Grows *arr (of elem bytes, *n used) by one zeroed element. */
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

/* ---- the section ---------------------------------------------------------- */

struct entry_ctx {
    struct guard_entry *e;
    const char *path;
    int whos;                      /* how many of asset, role, cidr */
};

static int entry_cidr(struct config_parse *p, yaml_node_t *node, const char *path, void *arg)
{
    struct guard_entry *e = arg;
    if (!e->cidrs && !(e->cidrs = netset_new()))
        return config_error(p, node, path, "out of memory");
    return pol_cfg_cidr(p, node, path, e->cidrs);
}

static const struct config_key entry_out = {"max_bytes_out", CONFIG_UINT, 0, 1ull << 50,
                                            offsetof(struct guard_entry, max_out),
                                            sizeof(uint64_t), NULL};
static const struct config_key entry_in = {"max_bytes_in", CONFIG_UINT, 0, 1ull << 50,
                                           offsetof(struct guard_entry, max_in),
                                           sizeof(uint64_t), NULL};

static int entry_pair(struct config_parse *p, const char *key, yaml_node_t *knode,
                      yaml_node_t *value, void *arg)
{
    struct entry_ctx *c = arg;
    char kpath[400];
    snprintf(kpath, sizeof(kpath), "%s.%s", c->path, key);
    if (!strcmp(key, "asset") || !strcmp(key, "role")) {
        c->whos++;
        c->e->by = key[0] == 'a' ? BY_ASSET : BY_ROLE;
        c->e->line = (unsigned)value->start_mark.line + 1;
        c->e->col = (unsigned)value->start_mark.column + 1;
        return pol_cfg_name(p, value, kpath, c->e->name, sizeof(c->e->name));
    }
    if (!strcmp(key, "cidr")) {
        c->whos++;
        c->e->by = BY_CIDR;
        return pol_cfg_values(p, value, kpath, entry_cidr, c->e);
    }
    if (!strcmp(key, "max_bytes_out")) {
        c->e->has_out = 1;
        return config_set_value(p, value, kpath, &entry_out, c->e);
    }
    if (!strcmp(key, "max_bytes_in")) {
        c->e->has_in = 1;
        return config_set_value(p, value, kpath, &entry_in, c->e);
    }
    return config_error(p, knode, kpath, "unknown key (a caller is one of asset, role or "
                        "cidr, with optional max_bytes_out and max_bytes_in)");
}

struct service_ctx {
    struct guard_service *s;
    const char *path;
};

static int caller_item(struct config_parse *p, size_t i, yaml_node_t *item, void *arg)
{
    struct service_ctx *sc = arg;
    char ipath[400];
    snprintf(ipath, sizeof(ipath), "%s.callers[%zu]", sc->path, i);
    if (item->type != YAML_MAPPING_NODE)
        return config_error(p, item, ipath, "expected a mapping: {asset: NAME}, {role: NAME} "
                            "or {cidr: [...]}");
    struct guard_entry *e = push(&sc->s->callers, &sc->s->ncallers, sizeof(*e));
    if (!e)
        return config_error(p, item, ipath, "out of memory");
    struct entry_ctx c = {e, ipath, 0};
    int rc = config_each_pair(p, item, ipath, entry_pair, &c);
    if (rc == EGR_OK && c.whos != 1)
        rc = config_error(p, item, ipath, "a caller names exactly one of asset, role or cidr "
                          "(got %d)", c.whos);
    return rc;
}

static int service_domain(struct config_parse *p, yaml_node_t *node, const char *path, void *arg)
{
    struct guard_service *s = arg;
    char *d;
    int rc = pol_cfg_domain(p, node, path, &d);
    if (rc != EGR_OK)
        return rc;
    char **slot = push(&s->domains, &s->ndomains, sizeof(char *));
    if (!slot) {
        free(d);
        return config_error(p, node, path, "out of memory");
    }
    *slot = d;
    return EGR_OK;
}

static const struct config_key svc_window = {"window", CONFIG_DURATION, 1, DAY,
                                             offsetof(struct guard_service, window),
                                             sizeof(uint32_t), NULL};
static const struct config_key svc_out = {"max_bytes_out", CONFIG_UINT, 0, 1ull << 50,
                                          offsetof(struct guard_service, max_out),
                                          sizeof(uint64_t), NULL};
static const struct config_key svc_in = {"max_bytes_in", CONFIG_UINT, 0, 1ull << 50,
                                         offsetof(struct guard_service, max_in),
                                         sizeof(uint64_t), NULL};

static int service_pair(struct config_parse *p, const char *key, yaml_node_t *knode,
                        yaml_node_t *value, void *arg)
{
    struct service_ctx *c = arg;
    char kpath[400];
    snprintf(kpath, sizeof(kpath), "%s.%s", c->path, key);
    if (!strcmp(key, "domain"))
        return pol_cfg_values(p, value, kpath, service_domain, c->s);
    if (!strcmp(key, "mode")) {
        c->s->mode_line = (unsigned)value->start_mark.line + 1;
        c->s->mode_col = (unsigned)value->start_mark.column + 1;
        return pol_cfg_mode(p, value, kpath, &c->s->mode);
    }
    if (!strcmp(key, "severity"))
        return pol_cfg_severity(p, value, kpath, &c->s->severity);
    if (!strcmp(key, "callers"))
        return config_each_item(p, value, kpath, caller_item, c);
    if (!strcmp(key, "window"))
        return config_set_value(p, value, kpath, &svc_window, c->s);
    if (!strcmp(key, "max_bytes_out"))
        return config_set_value(p, value, kpath, &svc_out, c->s);
    if (!strcmp(key, "max_bytes_in"))
        return config_set_value(p, value, kpath, &svc_in, c->s);
    return config_error(p, knode, kpath, "unknown key (a guarded service has domain, mode, "
                        "severity, callers, window, max_bytes_out and max_bytes_in)");
}

static int service_entry(struct config_parse *p, const char *key, yaml_node_t *knode,
                         yaml_node_t *value, void *arg)
{
    struct policy_guard *g = arg;
    char spath[300];
    snprintf(spath, sizeof(spath), "guarded_services.services.%s", key);
    struct guard_service *s = push(&g->svc, &g->nsvc, sizeof(*s));
    if (!s)
        return config_error(p, knode, spath, "out of memory");
    s->mode = MODE_DENY;
    s->severity = SEV_HIGH;
    s->window = 600;
    int rc = pol_cfg_name(p, knode, spath, s->name, sizeof(s->name));
    if (rc != EGR_OK)
        return rc;
    if (value->type != YAML_MAPPING_NODE)
        return config_error(p, value, spath, "expected a mapping (domain, mode, callers, ...)");
    struct service_ctx c = {s, spath};
    rc = config_each_pair(p, value, spath, service_pair, &c);
    if (rc == EGR_OK && s->ndomains == 0)
        rc = config_error(p, value, spath, "a guarded service needs at least one domain");
    return rc;
}

static int section_pair(struct config_parse *p, const char *key, yaml_node_t *knode,
                        yaml_node_t *value, void *arg)
{
    struct policy_guard *g = arg;
    char kpath[300];
    snprintf(kpath, sizeof(kpath), "guarded_services.%s", key);
    if (!strcmp(key, "callers_file")) {
        size_t len;
        const char *v = config_scalar(value, &len);
        if (v && len == 0) {
            g->callers_file[0] = '\0';
            return EGR_OK;
        }
        return pol_cfg_path(p, value, kpath, g->callers_file, sizeof(g->callers_file));
    }
    if (!strcmp(key, "services"))
        return config_each_pair(p, value, kpath, service_entry, g);
    return config_error(p, knode, kpath, "unknown key (guarded_services has callers_file and "
                        "services)");
}

int policy_guard_parse(struct config_parse *p, yaml_node_t *node, const char *path,
                       void *field)
{
    struct policy_spec *s = pol_cfg_spec(p, node, path, field);
    if (!s)
        return EGR_ENOMEM;
    if (!s->guard && !(s->guard = guard_new()))
        return config_error(p, node, path, "out of memory");
    s->guard->line = (unsigned)node->start_mark.line + 1;
    s->guard->col = (unsigned)node->start_mark.column + 1;
    return config_each_pair(p, node, path, section_pair, s->guard);
}

/* ---- the callers file ----------------------------------------------------- */

/* "INDEX|CALLER", the key of a known caller. */
static int known_key(char *out, size_t n, size_t svc, const char *caller)
{
    int w = snprintf(out, n, "%zu|%s", svc, caller);
    return w > 0 && (size_t)w < n && (size_t)w <= STRSET_KEY_MAX ? w : -1;
}

/* A caller as written in the file: an asset name or an address. */
static int caller_text_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= REC_NAME_MAX)
        return 0;
    for (const char *c = s; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr("._-:", *c))
            return 0;
    return 1;
}

static int service_index(const struct policy_guard *g, const char *name)
{
    for (size_t i = 0; i < g->nsvc; i++)
        if (!strcmp(g->svc[i].name, name))
            return (int)i;
    return -1;
}

/* Adds one known caller; the caller holds g->lock or owns g alone. */
static int known_add(struct policy_guard *g, size_t svc, const char *caller)
{
    char key[STRSET_KEY_MAX + 1];
    int kl = known_key(key, sizeof(key), svc, caller);
    if (kl < 0)
        return EGR_EINVAL;
    if (strset_has(g->known, key, (size_t)kl))
        return 1;
    if (g->stats.known >= GUARD_KNOWN_MAX)
        return EGR_ENOMEM;
    int rc = strset_add(g->known, key, (size_t)kl);
    if (rc == EGR_OK)
        g->stats.known++;
    return rc;
}

static int callers_load(struct policy_guard *g, struct egr_err *err)
{
    const char *file = g->callers_file;
    FILE *f = fopen(file, "r");
    if (!f) {
        if (errno == ENOENT)
            return EGR_OK; /* nothing known yet; learning creates it */
        return egr_fail(err, EGR_EIO, "%s: guarded_services.callers_file: %s", file,
                        strerror(errno));
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 &&
        (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > GUARD_FILE_MAX)) {
        fclose(f);
        return egr_fail(err, EGR_EINVAL, "%s: guarded_services.callers_file: not a regular "
                        "file of at most 16 MiB", file);
    }
    char buf[GUARD_LINE_MAX];
    unsigned lineno = 0;
    int rc = EGR_OK;
    while (rc == EGR_OK && fgets(buf, sizeof(buf), f)) {
        lineno++;
        size_t n = strlen(buf);
        if (n == sizeof(buf) - 1 && buf[n - 1] != '\n' && !feof(f)) {
            rc = egr_fail(err, EGR_EINVAL, "%s:%u: line longer than %zu bytes", file, lineno,
                          sizeof(buf) - 2);
            break;
        }
        char *hash = strchr(buf, '#');
        if (hash)
            *hash = '\0';
        char svc[POLICY_NAME_MAX + 1], caller[REC_NAME_MAX + 1], extra[2];
        int words = sscanf(buf, "%64s %256s %1s", svc, caller, extra);
        if (words <= 0)
            continue; /* blank or comment */
        if (words != 2) {
            rc = egr_fail(err, EGR_EINVAL, "%s:%u: expected 'SERVICE CALLER' (a service "
                          "name, then an asset name or an address)", file, lineno);
            break;
        }
        if (!caller_text_ok(caller)) {
            rc = egr_fail(err, EGR_EINVAL, "%s:%u: '%.64s' is not an asset name or an "
                          "address", file, lineno, caller);
            break;
        }
        int si = service_index(g, svc);
        if (si < 0)
            continue; /* a service since removed from the configuration */
        int a = known_add(g, (size_t)si, caller);
        if (a == EGR_ENOMEM) {
            rc = egr_fail(err, EGR_EINVAL, "%s:%u: more than %u known callers", file, lineno,
                          GUARD_KNOWN_MAX);
            break;
        }
        if (a < 0) {
            rc = egr_fail(err, EGR_EINVAL, "%s:%u: entry too long", file, lineno);
            break;
        }
    }
    if (rc == EGR_OK && ferror(f))
        rc = egr_fail(err, EGR_EIO, "%s: read error", file);
    fclose(f);
    return rc;
}

static const char file_header[] =
    "# egressd guarded-service callers: one known caller per line, SERVICE CALLER\n"
    "# (an asset name or an address), '#' starts a comment (docs/policy.md,\n"
    "# \"Guarded services\"). Services in learn mode append to it; services in\n"
    "# baseline mode alert on callers it does not name. Review it like a baseline.\n";

/* Appends one line (a learned caller) in a single write, after the header
 * if the file is new and after a newline if an edit left the last line
 * open. Caller holds g->lock. */
static int callers_append(struct policy_guard *g, const char *line, size_t n,
                          struct egr_err *err)
{
    const char *file = g->callers_file;
    int fd = open(file, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644); /* read: the last byte */
    if (fd < 0)
        return egr_fail(err, EGR_EIO, "%s: %s", file, strerror(errno));
    char buf[sizeof(file_header) + GUARD_LINE_MAX + 2];
    size_t o = 0;
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size == 0) {
        memcpy(buf, file_header, sizeof(file_header) - 1);
        o = sizeof(file_header) - 1;
    } else if (st.st_size > 0) {
        char last = '\n';
        if (pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n')
            buf[o++] = '\n';
    }
    if (n > GUARD_LINE_MAX)
        n = GUARD_LINE_MAX;
    memcpy(buf + o, line, n);
    o += n;
    ssize_t w = write(fd, buf, o);
    int e = errno;
    int crc = close(fd);
    if (w != (ssize_t)o)
        return egr_fail(err, EGR_EIO, "%s: %s", file, w < 0 ? strerror(e) : "short write");
    if (crc != 0)
        return egr_fail(err, EGR_EIO, "%s: %s", file, strerror(errno));
    return EGR_OK;
}

/* ---- after the whole file -------------------------------------------------- */

static int find_asset(const struct policy_spec *s, const char *name)
{
    for (size_t i = 0; i < s->nassets; i++)
        if (!strcmp(s->assets[i].name, name))
            return (int)i;
    return -1;
}

int policy_guard_resolve(struct policy_guard *g, const struct policy_spec *s, const char *file,
                         struct egr_err *err)
{
    if (!policy_guard_active(g))
        return EGR_OK;
    if (!s->home_net && !s->asset_net)
        return egr_fail(err, EGR_EINVAL, "%s:%u:%u: guarded_services: callers are judged on "
                        "egress, which needs home_net or assets", file, g->line, g->col);
    int limits = 0;
    for (size_t i = 0; i < g->nsvc; i++) {
        const struct guard_service *sv = &g->svc[i];
        for (size_t j = 0; j < sv->ncallers; j++) {
            const struct guard_entry *e = &sv->callers[j];
            if (e->by == BY_ASSET && find_asset(s, e->name) < 0)
                return egr_fail(err, EGR_EINVAL, "%s:%u:%u: guarded_services.services.%s."
                                "callers[%zu].asset: no asset '%s' in assets", file, e->line,
                                e->col, sv->name, j, e->name);
            if (e->by == BY_ROLE && pol_role_find(s, e->name) < 0)
                return egr_fail(err, EGR_EINVAL, "%s:%u:%u: guarded_services.services.%s."
                                "callers[%zu].role: no role '%s' in roles", file, e->line,
                                e->col, sv->name, j, e->name);
            if ((e->has_out && e->max_out) || (e->has_in && e->max_in))
                limits = 1;
        }
        if ((sv->mode == MODE_LEARN || sv->mode == MODE_BASELINE) && !g->callers_file[0])
            return egr_fail(err, EGR_EINVAL, "%s:%u:%u: guarded_services.services.%s.mode: "
                            "%s needs guarded_services.callers_file (where known callers "
                            "are kept)", file, sv->mode_line, sv->mode_col, sv->name,
                            policy_mode_name(sv->mode));
        if (sv->max_out || sv->max_in)
            limits = 1;
        for (size_t j = 0; j < sv->ndomains; j++) {
            const char *d = sv->domains[j];
            int rc = !strncmp(d, "*.", 2) ? strset_add(g->suffix, d + 2, strlen(d + 2))
                                          : strset_add(g->exact, d, strlen(d));
            if (rc != EGR_OK)
                return egr_fail(err, rc, "%s: guarded_services.services.%s.domain: '%s' %s",
                                file, sv->name, d, rc == EGR_EINVAL ? "is too long" :
                                "out of memory");
        }
    }
    if (limits && !(g->win = calloc(GUARD_WIN_MAX, sizeof(*g->win))))
        return egr_fail(err, EGR_ENOMEM, "out of memory");
    if (g->callers_file[0])
        return callers_load(g, err);
    return EGR_OK;
}

/* ---- matching --------------------------------------------------------------- */

/* The name could match some service's domain: exactly, or below a suffix. */
static int name_possible(const struct policy_guard *g, const char *name)
{
    size_t n = strlen(name);
    if (n && name[n - 1] == '.')
        n--;
    if (!n)
        return 0;
    if (strset_has(g->exact, name, n))
        return 1;
    for (const char *p = name; (p = memchr(p, '.', n - (size_t)(p - name))) != NULL;) {
        p++;
        if (strset_has(g->suffix, p, n - (size_t)(p - name)))
            return 1;
    }
    return 0;
}

int policy_guard_service_of(const struct policy_guard *g, const struct flow_record *rec)
{
    if (!policy_guard_active(g))
        return -1;
    const char *names[3] = {rec->ndpi.tls_sni, rec->ndpi.http_host, rec->enrich.dest_name};
    int any = 0;
    for (int k = 0; k < 3 && !any; k++)
        any = name_possible(g, names[k]);
    if (!any)
        return -1; /* most records: one or two hash lookups and out */
    for (size_t i = 0; i < g->nsvc; i++)
        for (size_t j = 0; j < g->svc[i].ndomains; j++)
            for (int k = 0; k < 3; k++)
                if (names[k][0] && pol_domain_match(g->svc[i].domains[j], names[k]))
                    return (int)i;
    return -1;
}

static void src_text(const struct flow_record *rec, char *out, size_t n)
{
    if (!inet_ntop(rec->family == 6 ? AF_INET6 : AF_INET, rec->src_ip, out, (socklen_t)n))
        snprintf(out, n, "?");
}

void policy_guard_caller_of(const struct policy_guard *g, size_t svc,
                            const struct flow_record *rec, struct policy_guard_caller *out)
{
    const struct guard_service *sv = &g->svc[svc];
    const struct rec_enrich *e = &rec->enrich;
    memset(out, 0, sizeof(*out));
    if (e->asset[0])
        snprintf(out->id, sizeof(out->id), "%s", e->asset);
    else
        src_text(rec, out->id, sizeof(out->id));
    out->max_out = sv->max_out;
    out->max_in = sv->max_in;
    for (size_t j = 0; j < sv->ncallers; j++) {
        const struct guard_entry *c = &sv->callers[j];
        int hit = c->by == BY_ASSET ? (e->asset[0] && !strcmp(c->name, e->asset))
                  : c->by == BY_ROLE ? (e->role[0] && !strcmp(c->name, e->role))
                  : netset_lookup(c->cidrs, rec->family, rec->src_ip, NULL);
        if (!hit)
            continue;
        /* The first entry that names the caller decides its limits. */
        out->listed = 1;
        if (c->has_out)
            out->max_out = c->max_out;
        if (c->has_in)
            out->max_in = c->max_in;
        return;
    }
}

int policy_guard_known(struct policy_guard *g, size_t svc, const char *caller)
{
    char key[STRSET_KEY_MAX + 1];
    int kl = known_key(key, sizeof(key), svc, caller);
    if (kl < 0)
        return 0;
    pthread_mutex_lock(&g->lock);
    int k = strset_has(g->known, key, (size_t)kl);
    pthread_mutex_unlock(&g->lock);
    return k;
}

/* ---- volume --------------------------------------------------------------- */

static uint64_t window_hash(size_t svc, const char *caller)
{
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)svc;
    for (const char *c = caller; *c; c++)
        h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
    return hash_mix64(h) | 1; /* never 0: 0 marks a slot never used */
}

/* The window of hash h: its slot, else a slot never used or whose window
 * has ended (taken over), else NULL. A slot once used is never emptied, so
 * a key is always found before the first never-used slot of its probe
 * run. Caller holds g->lock. */
static struct guard_window *window_slot(struct policy_guard *g, uint64_t h, uint64_t t_us)
{
    struct guard_window *reuse = NULL;
    for (uint32_t n = 0, j = (uint32_t)(h & (GUARD_WIN_MAX - 1)); n < GUARD_WIN_PROBE;
         n++, j = (j + 1) & (GUARD_WIN_MAX - 1)) {
        struct guard_window *w = &g->win[j];
        if (w->hash == h)
            return w;
        if (!w->hash)
            return reuse ? reuse : w;
        if (!reuse && t_us >= w->end)
            reuse = w;
    }
    return reuse;
}

unsigned policy_guard_volume(struct policy_guard *g, const struct policy_guard_caller *caller,
                             size_t svc, uint64_t bytes_out, uint64_t bytes_in, uint64_t t_us,
                             struct policy_guard_volume *out)
{
    if (out)
        memset(out, 0, sizeof(*out));
    if (!g || !g->win || svc >= g->nsvc)
        return 0;
    uint64_t h = window_hash(svc, caller->id);
    uint64_t len = (uint64_t)g->svc[svc].window * 1000000u;
    pthread_mutex_lock(&g->lock);
    struct guard_window *w = window_slot(g, h, t_us);
    if (!w) {
        g->stats.windows_full++;
        pthread_mutex_unlock(&g->lock);
        return 0;
    }
    if (w->hash != h || t_us >= w->end) {
        /* A new window (or a slot taken over from an ended one). A record
         * a little older than the window's start still counts in it: with
         * several workers, records need not arrive in time order. */
        w->hash = h;
        w->start = t_us;
        w->end = t_us + len;
        w->out = w->in = 0;
        w->crossed = 0;
    }
    w->out += bytes_out;
    w->in += bytes_in;
    unsigned x = 0;
    if (caller->max_out && w->out > caller->max_out && !(w->crossed & GUARD_VOL_OUT))
        x |= GUARD_VOL_OUT;
    if (caller->max_in && w->in > caller->max_in && !(w->crossed & GUARD_VOL_IN))
        x |= GUARD_VOL_IN;
    w->crossed |= (uint8_t)x;
    if (out) {
        out->window_start_us = w->start;
        out->bytes_out = w->out;
        out->bytes_in = w->in;
        out->crossed = x;
    }
    pthread_mutex_unlock(&g->lock);
    return x;
}

/* ---- learning -------------------------------------------------------------- */

static void fmt_time(uint64_t us, char *out, size_t n)
{
    time_t s = (time_t)(us / 1000000u);
    struct tm tm;
    if (!gmtime_r(&s, &tm) || !strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, n, "?");
}

/* Learns an unlisted caller (learn mode): known at once, and appended to
 * the callers file. A file that cannot be written is told once on stderr:
 * the record path has no one to return an error to, and the callers stay
 * known for the rest of the run. */
static void learn(struct policy_guard *g, size_t svc, const struct policy_guard_caller *c,
                  const struct flow_record *rec)
{
    pthread_mutex_lock(&g->lock);
    int rc = known_add(g, svc, c->id);
    if (rc == 1 || rc == EGR_EINVAL) { /* known already; or too long to be a key */
        pthread_mutex_unlock(&g->lock);
        return;
    }
    if (rc != EGR_OK) {
        g->stats.learn_dropped++;
        pthread_mutex_unlock(&g->lock);
        return;
    }
    g->stats.learned++;
    if (g->callers_file[0]) {
        char when[32], from[64], line[GUARD_LINE_MAX];
        fmt_time(rec->first_us, when, sizeof(when));
        src_text(rec, from, sizeof(from));
        int n = snprintf(line, sizeof(line), "%s %s  # learned %s from %s%s%s\n",
                         g->svc[svc].name, c->id, when, from,
                         rec->enrich.role[0] ? ", role " : "", rec->enrich.role);
        struct egr_err err;
        if (n > 0 && callers_append(g, line, (size_t)n < sizeof(line) ? (size_t)n
                                    : sizeof(line) - 1, &err) != EGR_OK) {
            g->stats.write_errors++;
            if (!g->file_error_told) {
                g->file_error_told = 1;
                fprintf(stderr, "egressd: guarded_services.callers_file not written (learned "
                        "callers stay known for this run): %s\n", err.msg);
            }
        }
    }
    pthread_mutex_unlock(&g->lock);
}

void policy_guard_stats(struct policy_guard *g, struct policy_guard_stats *out)
{
    pthread_mutex_lock(&g->lock);
    *out = g->stats;
    pthread_mutex_unlock(&g->lock);
}

/* ---- evaluation ------------------------------------------------------------ */

void policy_guard_check_caller(struct policy_guard *g, const struct flow_record *rec,
                               policy_guard_raise_fn fn, void *ctx)
{
    if (!policy_guard_active(g) || rec->enrich.direction != DIR_EGRESS)
        return;
    int si = policy_guard_service_of(g, rec);
    if (si < 0)
        return;
    const struct guard_service *sv = &g->svc[si];
    struct policy_guard_caller c;
    policy_guard_caller_of(g, (size_t)si, rec, &c);
    const char *role = rec->enrich.role;
    char reason[REC_NAME_MAX + 3 * POLICY_NAME_MAX + 160]; /* alert.reason keeps 255 */
    if (c.listed)
        return;
    switch (sv->mode) {
    case MODE_DENY:
        if (role[0])
            snprintf(reason, sizeof(reason), "caller %s (role %s) is not on the callers "
                     "list of guarded service %s", c.id, role, sv->name);
        else
            snprintf(reason, sizeof(reason), "caller %s is not on the callers list of "
                     "guarded service %s", c.id, sv->name);
        fn(ctx, ALERT_GUARD_CALLER, sv->severity, c.id, sv->name, sv->name, reason);
        break;
    case MODE_LEARN:
        learn(g, (size_t)si, &c, rec);
        break;
    case MODE_BASELINE:
        if (!policy_guard_known(g, (size_t)si, c.id)) {
            snprintf(reason, sizeof(reason), "new caller %s of guarded service %s: not "
                     "on its callers list nor in the callers file", c.id, sv->name);
            fn(ctx, ALERT_GUARD_NEW, sv->severity, c.id, sv->name, sv->name, reason);
        }
        break;
    default:
        break;
    }
}

void policy_guard_alert_volume(struct policy_guard *g, const struct policy_guard_caller *c,
                               size_t si, const struct policy_guard_volume *v, unsigned crossed,
                               policy_guard_raise_fn fn, void *ctx)
{
    const struct guard_service *sv = &g->svc[si];
    char reason[REC_NAME_MAX + 3 * POLICY_NAME_MAX + 160];
    char key[POLICY_NAME_MAX + 8];
    if (crossed & GUARD_VOL_OUT) {
        snprintf(reason, sizeof(reason), "caller %s sent %" PRIu64 " bytes to guarded service "
                 "%s within %u s (threshold %" PRIu64 ")", c->id, v->bytes_out, sv->name,
                 sv->window, c->max_out);
        snprintf(key, sizeof(key), "%s/out", sv->name);
        fn(ctx, ALERT_GUARD_VOLUME, sv->severity, c->id, key, sv->name, reason);
    }
    if (crossed & GUARD_VOL_IN) {
        snprintf(reason, sizeof(reason), "caller %s received %" PRIu64 " bytes from guarded "
                 "service %s within %u s (threshold %" PRIu64 ")", c->id, v->bytes_in, sv->name,
                 sv->window, c->max_in);
        snprintf(key, sizeof(key), "%s/in", sv->name);
        fn(ctx, ALERT_GUARD_VOLUME, sv->severity, c->id, key, sv->name, reason);
    }
}

void policy_guard_check(struct policy_guard *g, const struct flow_record *rec,
                        policy_guard_raise_fn fn, void *ctx)
{
    if (!policy_guard_active(g) || rec->enrich.direction != DIR_EGRESS)
        return;
    int si = policy_guard_service_of(g, rec);
    if (si < 0)
        return;
    policy_guard_check_caller(g, rec, fn, ctx);
    struct policy_guard_caller c;
    policy_guard_caller_of(g, (size_t)si, rec, &c);
    if (!c.max_out && !c.max_in)
        return;
    struct policy_guard_volume v;
    uint64_t t = rec->emit_us ? rec->emit_us : rec->last_us;
    unsigned x = policy_guard_volume(g, &c, (size_t)si, rec->bytes_toserver,
                                     rec->bytes_toclient, t, &v);
    if (x)
        policy_guard_alert_volume(g, &c, (size_t)si, &v, x, fn, ctx);
}

/* cfgload.c - the YAML table loader: walks a libyaml document against a
 * table of rows (struct config_key, cfgload.h) and stores each value into
 * its field. It knows nothing of the sensor's sections; config.c gives it
 * the sensor's table, policy-config.c and policy-learn.c use it for their
 * lists and the baseline file.
 *
 * Errors carry the position libyaml recorded for the offending node, so a
 * mistake is reported as "FILE:LINE:COLUMN: KEY: reason" with 1-based line
 * and column; nothing is printed.
 */
#include "cfgload.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CFG_FILE_MAX (16u << 20) /* larger is not a configuration */
#define CFG_PATH_MAX 256         /* longest dotted path shown or matched */
#define CFG_SHOW_MAX 40          /* bytes of an offending value quoted back */
/* Bounds on the document's shape, checked by prescan() before the document
 * is built: libyaml's scanner works per token in proportion to the nesting
 * depth (quadratic overall: 100k nested '[' took 27 CPU-s), and aliases let
 * a small file stand for a huge tree that the walkers below would visit
 * node by node. */
#define CFG_DEPTH_MAX 64           /* nested mappings and sequences */
/* Nodes that aliases stand for, counted as if each alias were a copy of its
 * anchor's tree. The file's own nodes are bounded by its size (a baseline
 * of 100,000 learned destinations is ~900,000); this bounds the fan-out. */
#define CFG_ALIAS_NODES_MAX 250000u
#define CFG_ANCHORS_MAX 4096u      /* distinct anchors (found by a linear search) */

struct config_parse {
    const char *file;
    yaml_document_t *doc;
    struct egr_err *err;
};

/* ---- small helpers ------------------------------------------------------ */

const char *config_file_name(const struct config_parse *p)
{
    return p->file;
}

const char *config_scalar(const yaml_node_t *node, size_t *len)
{
    if (!node || node->type != YAML_SCALAR_NODE)
        return NULL;
    if (len)
        *len = node->data.scalar.length;
    return (const char *)node->data.scalar.value;
}

/* YAML's null: an unquoted empty value, ~ or null. */
static int is_null(const yaml_node_t *node)
{
    if (!node || node->type != YAML_SCALAR_NODE ||
        node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *s = (const char *)node->data.scalar.value;
    return !strcmp(s, "") || !strcmp(s, "~") || !strcmp(s, "null") ||
           !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static yaml_node_t *node_at(struct config_parse *p, int index)
{
    return yaml_document_get_node(p->doc, index);
}

/* A value quoted back in a message: printable ASCII kept, the rest escaped,
 * cut at CFG_SHOW_MAX bytes, so a message is one safe line. */
static void show_bytes(char *out, size_t size, const char *s, size_t len)
{
    size_t o = 0;
    if (size < 8) {
        if (size)
            out[0] = '\0';
        return;
    }
    out[o++] = '"';
    for (size_t i = 0; i < len && i < CFG_SHOW_MAX && o + 6 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c >= 0x20 && c < 0x7f) {
            out[o++] = (char)c;
        } else {
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
        }
    }
    if (len > CFG_SHOW_MAX && o + 5 < size) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o++] = '"';
    out[o] = '\0';
}

/* What a node is, for "expected X, got Y". */
static void show_node(char *out, size_t size, const yaml_node_t *node)
{
    if (node->type == YAML_MAPPING_NODE)
        snprintf(out, size, "a mapping");
    else if (node->type == YAML_SEQUENCE_NODE)
        snprintf(out, size, "a sequence");
    else if (is_null(node))
        snprintf(out, size, "an empty value");
    else
        show_bytes(out, size, (const char *)node->data.scalar.value,
                   node->data.scalar.length);
}

int config_error(struct config_parse *p, const yaml_node_t *node, const char *path,
                 const char *fmt, ...)
{
    char reason[EGR_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    unsigned long line = node ? (unsigned long)node->start_mark.line + 1 : 1;
    unsigned long col = node ? (unsigned long)node->start_mark.column + 1 : 1;
    if (path && path[0])
        return egr_fail(p->err, EGR_EINVAL, "%s:%lu:%lu: %s: %s", p->file, line, col,
                        path, reason);
    return egr_fail(p->err, EGR_EINVAL, "%s:%lu:%lu: %s", p->file, line, col, reason);
}

/* Joins "a.b" + "c"; returns -1 if it does not fit (the key then matches no
 * row, and the message shows the cut path). */
static int join(char *out, size_t size, const char *prefix, const char *key)
{
    size_t lp = strlen(prefix), lk = strlen(key);
    size_t need = lp + (lp ? 1 : 0) + lk;
    if (size == 0)
        return -1;
    /* Built by hand: the result is checked, so snprintf's truncation
     * warning would be noise. */
    size_t n = 0;
    for (size_t i = 0; i < lp && n + 1 < size; i++)
        out[n++] = prefix[i];
    if (lp && n + 1 < size)
        out[n++] = '.';
    for (size_t i = 0; i < lk && n + 1 < size; i++)
        out[n++] = key[i];
    out[n] = '\0';
    return need >= size ? -1 : 0;
}

/* ---- values ------------------------------------------------------------- */

/* Decimal (or 0x-hex if allowed), the whole text. Returns 0, -1 (not a number) or -2
 * (does not fit in 64 bits). */
static int parse_u64(const char *s, size_t len, int hex, uint64_t *out)
{
    unsigned base = 10;
    size_t i = 0;
    if (hex && len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        i = 2;
    }
    if (i >= len)
        return -1;
    uint64_t v = 0;
    int overflow = 0;
    for (; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (base == 16 && isxdigit(c))
            d = (unsigned)(tolower(c) - 'a' + 10);
        else
            return -1;
        if (v > (UINT64_MAX - d) / base)
            overflow = 1;
        else
            v = v * base + d;
    }
    if (overflow)
        return -2;
    *out = v;
    return 0;
}

static void store_uint(void *field, size_t size, uint64_t v)
{
    switch (size) {
    case 1: { uint8_t x = (uint8_t)v; memcpy(field, &x, 1); break; }
    case 2: { uint16_t x = (uint16_t)v; memcpy(field, &x, 2); break; }
    case 4: { uint32_t x = (uint32_t)v; memcpy(field, &x, 4); break; }
    default: memcpy(field, &v, 8); break;
    }
}

static const char *expected(enum config_type t)
{
    switch (t) {
    case CONFIG_UINT: return "an unsigned integer";
    case CONFIG_BOOL: return "true or false";
    case CONFIG_DURATION: return "a duration";
    case CONFIG_STRING: return "a string";
    default: return "a value";
    }
}

static int set_number(struct config_parse *p, yaml_node_t *node, const char *path,
                      const struct config_key *k, void *field)
{
    size_t len;
    const char *s = config_scalar(node, &len);
    char got[CFG_SHOW_MAX * 4 + 16];
    show_node(got, sizeof(got), node);
    int dur = k->type == CONFIG_DURATION;
    if (!s || is_null(node))
        return config_error(p, node, path, "expected %s, got %s", expected(k->type), got);

    uint64_t mult = 1;
    size_t nlen = len;
    if (dur && len > 1) {
        switch (s[len - 1]) {
        case 's': mult = 1; nlen--; break;
        case 'm': mult = 60; nlen--; break;
        case 'h': mult = 3600; nlen--; break;
        default: break;
        }
    }
    /* A leading '-' makes a number out of range, not a type error. */
    int neg = nlen > 1 && s[0] == '-';
    uint64_t v = 0;
    int rc = parse_u64(s + neg, nlen - (size_t)neg, !dur, &v);
    if (rc == -1) {
        if (dur)
            return config_error(p, node, path, "expected a duration (seconds, or a number "
                                "with s, m or h), got %s", got);
        return config_error(p, node, path, "expected %s, got %s", expected(k->type), got);
    }
    /* From here s is known to be digits with an optional sign, 0x or unit:
     * safe to print as it is. */
    int shown = len > CFG_SHOW_MAX ? CFG_SHOW_MAX : (int)len;
    const char *unit = dur ? " s" : "";
    if (neg || rc == -2 || v > UINT64_MAX / mult || v * mult < k->min || v * mult > k->max) {
        if (nlen != len && !neg && rc == 0 && v <= UINT64_MAX / mult)
            return config_error(p, node, path, "out of range: %.*s = %" PRIu64 " s (allowed %"
                                PRIu64 "..%" PRIu64 " s)", shown, s, v * mult, k->min, k->max);
        return config_error(p, node, path, "out of range: %.*s%s%s (allowed %" PRIu64 "..%"
                            PRIu64 "%s)", shown, s, len > CFG_SHOW_MAX ? "..." : "",
                            nlen == len ? unit : "", k->min, k->max, unit);
    }
    store_uint(field, k->size, v * mult);
    return EGR_OK;
}

static int set_bool(struct config_parse *p, yaml_node_t *node, const char *path,
                    const struct config_key *k, void *field)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    size_t len;
    const char *s = config_scalar(node, &len);
    if (s && strlen(s) != len)
        s = NULL; /* an embedded NUL: no spelling of a boolean */
    int v = -1;
    for (size_t i = 0; s && i < EGR_ARRAY_LEN(yes); i++) {
        if (!strcasecmp(s, yes[i]))
            v = 1;
        else if (!strcasecmp(s, no[i]))
            v = 0;
    }
    if (v < 0) {
        char got[CFG_SHOW_MAX * 4 + 16];
        show_node(got, sizeof(got), node);
        return config_error(p, node, path, "expected true or false, got %s", got);
    }
    if (k->size == sizeof(int))
        memcpy(field, &v, sizeof(int));
    else
        store_uint(field, k->size, (uint64_t)v);
    return EGR_OK;
}

static int set_string(struct config_parse *p, yaml_node_t *node, const char *path,
                      const struct config_key *k, void *field)
{
    size_t len;
    const char *s = config_scalar(node, &len);
    if (!s) {
        char got[32];
        show_node(got, sizeof(got), node);
        return config_error(p, node, path, "expected a string, got %s", got);
    }
    if (is_null(node))
        len = 0;
    if (memchr(s, '\0', len))
        return config_error(p, node, path, "a NUL character is not allowed");
    if (len >= k->size)
        return config_error(p, node, path, "too long: %zu bytes (at most %zu)", len,
                            k->size - 1);
    memcpy(field, s, len);
    ((char *)field)[len] = '\0';
    return EGR_OK;
}

int config_set_value(struct config_parse *p, yaml_node_t *node, const char *path,
                     const struct config_key *k, void *base)
{
    void *field = (char *)base + k->offset;
    switch (k->type) {
    case CONFIG_UINT:
    case CONFIG_DURATION:
        return set_number(p, node, path, k, field);
    case CONFIG_BOOL:
        return set_bool(p, node, path, k, field);
    case CONFIG_STRING:
        return set_string(p, node, path, k, field);
    case CONFIG_CUSTOM:
        if (k->parse)
            return k->parse(p, node, path, field);
        break;
    }
    return config_error(p, node, path, "internal error: bad row (type %d)", (int)k->type);
}

/* ---- mappings and sequences --------------------------------------------- */

int config_each_pair(struct config_parse *p, yaml_node_t *node, const char *path,
                     config_pair_fn fn, void *arg)
{
    if (is_null(node))
        return EGR_OK;
    if (node->type != YAML_MAPPING_NODE) {
        char got[CFG_SHOW_MAX * 4 + 16];
        show_node(got, sizeof(got), node);
        return config_error(p, node, path, "expected a mapping, got %s", got);
    }
    yaml_node_pair_t *first = node->data.mapping.pairs.start;
    yaml_node_pair_t *end = node->data.mapping.pairs.top;
    for (yaml_node_pair_t *pair = first; pair < end; pair++) {
        yaml_node_t *k = node_at(p, pair->key), *v = node_at(p, pair->value);
        if (!k || !v)
            return config_error(p, node, path, "internal error: dangling node");
        size_t klen;
        const char *key = config_scalar(k, &klen);
        if (!key)
            return config_error(p, k, path, "a key must be a plain string, not %s",
                                k->type == YAML_MAPPING_NODE ? "a mapping" : "a sequence");
        /* Quadratic, but mappings here are a handful of keys; lists of many
         * entries are sequences. */
        for (yaml_node_pair_t *q = first; q < pair; q++) {
            size_t qlen;
            const char *qkey = config_scalar(node_at(p, q->key), &qlen);
            if (qkey && qlen == klen && !memcmp(qkey, key, klen)) {
                char full[CFG_PATH_MAX];
                join(full, sizeof(full), path, key);
                const yaml_node_t *qn = node_at(p, q->key);
                return config_error(p, k, full, "duplicate key (first at line %lu, column %lu)",
                                    (unsigned long)qn->start_mark.line + 1,
                                    (unsigned long)qn->start_mark.column + 1);
            }
        }
        int rc = fn(p, key, k, v, arg);
        if (rc != EGR_OK)
            return rc;
    }
    return EGR_OK;
}

int config_each_item(struct config_parse *p, yaml_node_t *node, const char *path,
                     config_item_fn fn, void *arg)
{
    if (is_null(node))
        return EGR_OK;
    if (node->type != YAML_SEQUENCE_NODE) {
        char got[CFG_SHOW_MAX * 4 + 16];
        show_node(got, sizeof(got), node);
        return config_error(p, node, path, "expected a sequence, got %s", got);
    }
    yaml_node_item_t *it = node->data.sequence.items.start;
    for (size_t i = 0; it + i < node->data.sequence.items.top; i++) {
        yaml_node_t *item = node_at(p, it[i]);
        if (!item)
            return config_error(p, node, path, "internal error: dangling node");
        int rc = fn(p, i, item, arg);
        if (rc != EGR_OK)
            return rc;
    }
    return EGR_OK;
}

/* ---- the walker --------------------------------------------------------- */

struct walk {
    const char *rel;  /* path of the mapping relative to the table */
    const char *disp; /* path of the mapping for messages */
    const struct config_key *keys;
    size_t nkeys;
    void *base;
};

/* Is `prefix` + "." the start of some row's path? */
static int is_section(const struct walk *w, const char *prefix)
{
    size_t n = strlen(prefix);
    for (size_t i = 0; i < w->nkeys; i++)
        if (!strncmp(w->keys[i].path, prefix, n) && w->keys[i].path[n] == '.')
            return 1;
    return 0;
}

/* Edit distance counting a swap of neighbours as one edit (the usual
 * typo), case-insensitive, on at most 63 bytes of each string. */
static size_t distance(const char *a, const char *b, size_t blen)
{
    size_t alen = strlen(a);
    if (alen > 63)
        alen = 63;
    if (blen > 63)
        blen = 63;
    size_t rows[3][64], *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= blen; j++)
        prev[j] = j;
    for (size_t i = 1; i <= alen; i++) {
        cur[0] = i;
        int ai = tolower((unsigned char)a[i - 1]);
        for (size_t j = 1; j <= blen; j++) {
            int bj = tolower((unsigned char)b[j - 1]);
            size_t best = prev[j - 1] + (ai != bj);
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && ai == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == bj && prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
        size_t *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[blen];
}

/* The known key at this level closest to `key`, if close enough to be a
 * likely typo; writes it into out (or "" when none). */
static void nearest(const struct walk *w, const char *key, char *out, size_t size)
{
    size_t n = strlen(w->rel), best = SIZE_MAX;
    out[0] = '\0';
    for (size_t i = 0; i < w->nkeys; i++) {
        const char *path = w->keys[i].path;
        if (n && (strncmp(path, w->rel, n) || path[n] != '.'))
            continue;
        const char *cand = n ? path + n + 1 : path;
        size_t clen = strcspn(cand, ".");
        size_t d = distance(key, cand, clen);
        size_t klen = strlen(key), longer = klen > clen ? klen : clen;
        if (d < best && d * 3 <= longer && clen < size) {
            best = d;
            memcpy(out, cand, clen);
            out[clen] = '\0';
        }
    }
}

static int walk_map(struct config_parse *p, yaml_node_t *node, struct walk *w);

static int walk_pair(struct config_parse *p, const char *key, yaml_node_t *knode,
                     yaml_node_t *value, void *arg)
{
    struct walk *w = arg;
    char rel[CFG_PATH_MAX], disp[CFG_PATH_MAX];
    int fits = join(rel, sizeof(rel), w->rel, key) == 0 &&
               join(disp, sizeof(disp), w->disp, key) == 0;
    /* A dotted key never matches: nesting is spelt with mappings only, so a
     * key has one spelling and duplicates are always caught. */
    if (fits && !strchr(key, '.')) {
        for (size_t i = 0; i < w->nkeys; i++)
            if (!strcmp(w->keys[i].path, rel))
                return config_set_value(p, value, disp, &w->keys[i], w->base);
        if (is_section(w, rel)) {
            struct walk sub = {rel, disp, w->keys, w->nkeys, w->base};
            return walk_map(p, value, &sub);
        }
    }
    char shown[CFG_SHOW_MAX * 4 + 16], hint[CFG_PATH_MAX];
    show_bytes(shown, sizeof(shown), key, strlen(key));
    nearest(w, key, hint, sizeof(hint));
    if (hint[0])
        return config_error(p, knode, disp, "unknown key %s, did you mean '%s'?", shown, hint);
    if (strchr(key, '.'))
        return config_error(p, knode, disp,
                            "unknown key %s (nest mappings instead of dotted keys)", shown);
    return config_error(p, knode, disp, "unknown key %s", shown);
}

static int walk_map(struct config_parse *p, yaml_node_t *node, struct walk *w)
{
    return config_each_pair(p, node, w->disp, walk_pair, w);
}

int config_walk(struct config_parse *p, yaml_node_t *node, const char *path,
                const struct config_key *keys, size_t nkeys, void *base)
{
    struct walk w = {"", path ? path : "", keys, nkeys, base};
    return walk_map(p, node, &w);
}

/* ---- loading ------------------------------------------------------------ */

static int read_file(const char *path, char **out, size_t *outlen, struct egr_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return egr_fail(err, EGR_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return egr_fail(err, EGR_ENOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (len == cap) {
            if (cap >= CFG_FILE_MAX) {
                free(buf);
                fclose(f);
                return egr_fail(err, EGR_EINVAL, "%s: larger than %u bytes, not a configuration",
                                path, CFG_FILE_MAX);
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                fclose(f);
                return egr_fail(err, EGR_ENOMEM, "%s: out of memory", path);
            }
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f)) {
                int e = errno;
                free(buf);
                fclose(f);
                return egr_fail(err, EGR_EIO, "%s: cannot read: %s", path, strerror(e));
            }
            break;
        }
    }
    fclose(f);
    *out = buf;
    *outlen = len;
    return EGR_OK;
}

/* libyaml's own error, at the position it reports. Reader errors (bad
 * UTF-8, control characters) come with a byte offset instead of a mark. */
static int yaml_failure(const yaml_parser_t *yp, const char *file, const char *buf,
                        size_t len, struct egr_err *err)
{
    const char *problem = yp->problem ? yp->problem : "unknown error";
    if (yp->error == YAML_MEMORY_ERROR)
        return egr_fail(err, EGR_ENOMEM, "%s: out of memory", file);
    if (yp->error == YAML_READER_ERROR) {
        unsigned long line = 1, col = 1;
        for (size_t i = 0; i < yp->problem_offset && i < len; i++) {
            if (buf[i] == '\n') {
                line++;
                col = 1;
            } else if (((unsigned char)buf[i] & 0xc0) != 0x80) {
                col++;
            }
        }
        if (yp->problem_value != -1)
            return egr_fail(err, EGR_EINVAL, "%s:%lu:%lu: invalid input: %s (byte 0x%02x)",
                            file, line, col, problem, (unsigned)yp->problem_value & 0xffu);
        return egr_fail(err, EGR_EINVAL, "%s:%lu:%lu: invalid input: %s", file, line, col,
                        problem);
    }
    unsigned long line = (unsigned long)yp->problem_mark.line + 1;
    unsigned long col = (unsigned long)yp->problem_mark.column + 1;
    if (yp->context)
        return egr_fail(err, EGR_EINVAL, "%s:%lu:%lu: YAML syntax error: %s (%s at line %lu, "
                        "column %lu)", file, line, col, problem, yp->context,
                        (unsigned long)yp->context_mark.line + 1,
                        (unsigned long)yp->context_mark.column + 1);
    return egr_fail(err, EGR_EINVAL, "%s:%lu:%lu: YAML syntax error: %s", file, line, col,
                    problem);
}

struct anchor_size {
    char *name;
    uint64_t nodes;
};

/* One pass over the events, stopping at the first bound exceeded: depth,
 * the nodes aliases stand for (an alias counts the nodes of its anchor's
 * tree, aliases inside it counted the same way) and anchors. A syntax
 * error is left for the loader to report. */
static int prescan(const char *path, const char *buf, size_t len, struct egr_err *err)
{
    yaml_parser_t yp;
    if (!yaml_parser_initialize(&yp))
        return egr_fail(err, EGR_ENOMEM, "%s: out of memory", path);
    yaml_parser_set_input_string(&yp, (const unsigned char *)buf, len);
    struct {
        uint64_t nodes;
        char *anchor;
    } stack[CFG_DEPTH_MAX + 1];
    size_t depth = 0;
    uint64_t aliased = 0;
    struct anchor_size *anchors = NULL;
    size_t nanchors = 0;
    int rc = EGR_OK, done = 0;
    while (rc == EGR_OK && !done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&yp, &ev))
            break; /* the loader reports it, with its position */
        unsigned long line = (unsigned long)ev.start_mark.line + 1;
        unsigned long col = (unsigned long)ev.start_mark.column + 1;
        uint64_t add = 0;
        const char *anchor = NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_SCALAR_EVENT:
            add = 1;
            anchor = (const char *)ev.data.scalar.anchor;
            break;
        case YAML_ALIAS_EVENT:
            add = 1; /* an alias to an unknown anchor: the loader says so */
            for (size_t i = 0; i < nanchors; i++)
                if (!strcmp(anchors[i].name, (const char *)ev.data.alias.anchor))
                    add = anchors[i].nodes;
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (depth == CFG_DEPTH_MAX) {
                rc = egr_fail(err, EGR_EINVAL, "%s:%lu:%lu: nested deeper than %d levels, "
                              "not a configuration", path, line, col, CFG_DEPTH_MAX);
                break;
            }
            anchor = ev.type == YAML_SEQUENCE_START_EVENT
                         ? (const char *)ev.data.sequence_start.anchor
                         : (const char *)ev.data.mapping_start.anchor;
            stack[depth].nodes = 1;
            stack[depth].anchor = anchor ? strdup(anchor) : NULL;
            if (anchor && !stack[depth].anchor)
                rc = egr_fail(err, EGR_ENOMEM, "%s: out of memory", path);
            depth++;
            anchor = NULL;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (depth == 0)
                break;
            depth--;
            add = stack[depth].nodes;
            anchor = stack[depth].anchor;
            break;
        default:
            break;
        }
        if (rc == EGR_OK && anchor) {
            /* A name used again rebinds it: the newest definition wins. */
            size_t i = 0;
            while (i < nanchors && strcmp(anchors[i].name, anchor))
                i++;
            if (i == nanchors) {
                struct anchor_size *na =
                    nanchors < CFG_ANCHORS_MAX ? realloc(anchors, (nanchors + 1) * sizeof(*na))
                                               : NULL;
                char *name = na ? strdup(anchor) : NULL;
                if (na)
                    anchors = na;
                if (!name)
                    rc = nanchors >= CFG_ANCHORS_MAX
                             ? egr_fail(err, EGR_EINVAL, "%s:%lu:%lu: more than %u anchors, "
                                        "not a configuration", path, line, col, CFG_ANCHORS_MAX)
                             : egr_fail(err, EGR_ENOMEM, "%s: out of memory", path);
                else
                    anchors[nanchors++] = (struct anchor_size){name, 0};
            }
            if (rc == EGR_OK)
                anchors[i].nodes = add;
        }
        if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT)
            free(stack[depth].anchor);
        /* Sizes go up the stack as collections end. */
        if (rc == EGR_OK && add && depth)
            stack[depth - 1].nodes += add;
        if (ev.type == YAML_ALIAS_EVENT)
            aliased += add;
        if (rc == EGR_OK && aliased > CFG_ALIAS_NODES_MAX)
            rc = egr_fail(err, EGR_EINVAL, "%s:%lu:%lu: aliases stand for more than %u nodes, "
                          "not a configuration", path, line, col, CFG_ALIAS_NODES_MAX);
        yaml_event_delete(&ev);
    }
    while (depth)
        free(stack[--depth].anchor);
    for (size_t i = 0; i < nanchors; i++)
        free(anchors[i].name);
    free(anchors);
    yaml_parser_delete(&yp);
    return rc;
}

int config_load_table(const char *path, const struct config_key *keys, size_t nkeys,
                      void *base, struct egr_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = read_file(path, &buf, &len, err);
    if (rc != EGR_OK)
        return rc;
    rc = prescan(path, buf, len, err);
    if (rc != EGR_OK) {
        free(buf);
        return rc;
    }

    yaml_parser_t yp;
    if (!yaml_parser_initialize(&yp)) {
        free(buf);
        return egr_fail(err, EGR_ENOMEM, "%s: out of memory", path);
    }
    yaml_parser_set_input_string(&yp, (const unsigned char *)buf, len);

    yaml_document_t doc;
    if (!yaml_parser_load(&yp, &doc)) {
        rc = yaml_failure(&yp, path, buf, len, err);
        yaml_parser_delete(&yp);
        free(buf);
        return rc;
    }
    struct config_parse p = {path, &doc, err};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    /* No document at all (empty file, only comments) or an empty one: all
     * defaults. */
    if (root && !is_null(root)) {
        if (root->type != YAML_MAPPING_NODE) {
            char got[CFG_SHOW_MAX * 4 + 16];
            show_node(got, sizeof(got), root);
            rc = config_error(&p, root, "", "the top level must be a mapping of sections, "
                              "got %s", got);
        } else {
            rc = config_walk(&p, root, "", keys, nkeys, base);
        }
    }
    /* A second document would be silently ignored: refuse it. */
    if (rc == EGR_OK && root) {
        yaml_document_t next;
        if (!yaml_parser_load(&yp, &next)) {
            rc = yaml_failure(&yp, path, buf, len, err);
        } else {
            if (yaml_document_get_root_node(&next)) {
                struct config_parse q = {path, &next, err};
                rc = config_error(&q, yaml_document_get_root_node(&next), "",
                                  "a second YAML document; a configuration is one document");
            }
            yaml_document_delete(&next);
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&yp);
    free(buf);
    return rc;
}


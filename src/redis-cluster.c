/* redis-cluster.c - slot hashing, redirections and the slot map of a Redis
 * Cluster (see include/egressd/redis-cluster.h; the rules are the cluster
 * specification's: https://redis.io/docs/reference/cluster-spec/).
 *
 * The CRC is computed from a table built once from the polynomial; the
 * table is constant after that, so any thread may hash.
 */
#include "egressd/redis-cluster.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static uint16_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (unsigned i = 0; i < 256; i++) {
        uint16_t c = (uint16_t)(i << 8);
        for (int b = 0; b < 8; b++)
            c = (uint16_t)(c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1);
        crc_table[i] = c;
    }
}

uint16_t redis_cluster_crc16(const void *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
    const unsigned char *b = p;
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++)
        crc = (uint16_t)((crc << 8) ^ crc_table[((crc >> 8) ^ b[i]) & 0xff]);
    return crc;
}

unsigned redis_cluster_key_slot(const void *key, size_t n)
{
    const char *k = key;
    const char *open = memchr(k, '{', n);
    if (open) {
        size_t after = (size_t)(open - k) + 1;
        const char *close = memchr(open + 1, '}', n - after);
        if (close && close > open + 1) /* "{}" is no tag: the whole key counts */
            return redis_cluster_crc16(open + 1, (size_t)(close - open - 1)) & 0x3fff;
    }
    return redis_cluster_crc16(k, n) & 0x3fff;
}

/* Decimal digits s[0..n) as a number up to max; -1 if not. */
static long digits(const char *s, size_t n, long max)
{
    if (n == 0 || n > 6)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= max ? v : -1;
}

int redis_cluster_endpoint(const char *s, size_t n, char host[REDIS_CLUSTER_HOST_MAX], int *port)
{
    host[0] = '\0';
    const char *colon = NULL;
    for (size_t i = n; i > 0; i--)
        if (s[i - 1] == ':') {
            colon = s + i - 1;
            break;
        }
    if (!colon)
        return EGR_EINVAL;
    long p = digits(colon + 1, n - (size_t)(colon - s) - 1, 65535);
    if (p < 1)
        return EGR_EINVAL;
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (hl && h[0] == '[') {
        if (hl < 2 || h[hl - 1] != ']')
            return EGR_EINVAL;
        h++;
        hl -= 2;
    }
    if (hl >= REDIS_CLUSTER_HOST_MAX)
        return EGR_EINVAL;
    for (size_t i = 0; i < hl; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c <= ' ' || c == 0x7f || c == '[' || c == ']' || c == '/' || c == '@')
            return EGR_EINVAL;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return EGR_OK;
}

int redis_cluster_parse_redirect(const char *e, size_t n, struct redis_redirect *out)
{
    memset(out, 0, sizeof(*out));
    size_t skip;
    if (n > 6 && !memcmp(e, "MOVED ", 6)) {
        out->kind = REDIS_REDIRECT_MOVED;
        skip = 6;
    } else if (n > 4 && !memcmp(e, "ASK ", 4)) {
        out->kind = REDIS_REDIRECT_ASK;
        skip = 4;
    } else {
        return EGR_EINVAL;
    }
    const char *p = e + skip, *end = e + n;
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    if (!sp)
        return EGR_EINVAL;
    long slot = digits(p, (size_t)(sp - p), REDIS_CLUSTER_SLOTS - 1);
    if (slot < 0)
        return EGR_EINVAL;
    out->slot = (unsigned)slot;
    if (redis_cluster_endpoint(sp + 1, (size_t)(end - sp - 1), out->host, &out->port) != EGR_OK)
        return EGR_EINVAL;
    return EGR_OK;
}

/* ---- the slot map ----------------------------------------------------------- */

int redis_cluster_map_lookup(const struct redis_slot_map *m, unsigned slot)
{
    if (slot >= REDIS_CLUSTER_SLOTS || !m->slot[slot])
        return -1;
    return m->slot[slot] - 1;
}

int redis_cluster_map_find(const struct redis_slot_map *m, const char *host, int port)
{
    for (unsigned i = 0; i < m->nnodes; i++)
        if (m->node[i].port == port && !strcmp(m->node[i].host, host))
            return (int)i;
    return -1;
}

static int add_node(struct redis_slot_map *m, const char *host, int port)
{
    int i = redis_cluster_map_find(m, host, port);
    if (i >= 0)
        return i;
    if (m->nnodes >= REDIS_CLUSTER_NODES_MAX)
        return -1;
    struct redis_cluster_node *nd = &m->node[m->nnodes];
    memset(nd, 0, sizeof(*nd));
    snprintf(nd->host, sizeof(nd->host), "%s", host);
    nd->port = port;
    return (int)m->nnodes++;
}

int redis_cluster_map_move(struct redis_slot_map *m, unsigned slot, const char *host, int port)
{
    if (slot >= REDIS_CLUSTER_SLOTS)
        return -1;
    int i = add_node(m, host, port);
    if (i < 0)
        return -1;
    if (!m->slot[slot])
        m->covered++;
    m->slot[slot] = (uint8_t)(i + 1);
    return i;
}

static int is_int(const redisReply *r, long long lo, long long hi)
{
    return r && r->type == REDIS_REPLY_INTEGER && r->integer >= lo && r->integer <= hi;
}

/* [host, port, id, ...] of a master or replica; the host into out. */
static int parse_endpoint(const redisReply *e, const char *asked_host, char *out, int *port,
                          struct egr_err *err, unsigned range)
{
    if (!e || e->type != REDIS_REPLY_ARRAY || e->elements < 2)
        return egr_fail(err, EGR_EINVAL, "CLUSTER SLOTS: range %u: a node is not [host, port, ...]",
                        range);
    const redisReply *h = e->element[0];
    if (!is_int(e->element[1], 1, 65535))
        return egr_fail(err, EGR_EINVAL, "CLUSTER SLOTS: range %u: port is not 1..65535", range);
    *port = (int)e->element[1]->integer;
    const char *hs = asked_host;
    size_t hl = strlen(asked_host);
    if (h->type == REDIS_REPLY_STRING) {
        if (h->len && !(h->len == 1 && h->str[0] == '?')) {
            hs = h->str;
            hl = h->len;
        }
    } else if (h->type != REDIS_REPLY_NIL) {
        return egr_fail(err, EGR_EINVAL, "CLUSTER SLOTS: range %u: host is not a string", range);
    }
    if (hl >= REDIS_CLUSTER_HOST_MAX || memchr(hs, '\0', hl))
        return egr_fail(err, EGR_EINVAL, "CLUSTER SLOTS: range %u: host too long", range);
    for (size_t i = 0; i < hl; i++)
        if ((unsigned char)hs[i] <= ' ' || hs[i] == 0x7f)
            return egr_fail(err, EGR_EINVAL, "CLUSTER SLOTS: range %u: host holds a control byte",
                            range);
    memcpy(out, hs, hl);
    out[hl] = '\0';
    return EGR_OK;
}

int redis_cluster_map_parse(const struct redisReply *rep, const char *asked_host,
                            struct redis_slot_map *m, struct egr_err *err)
{
    memset(m, 0, sizeof(*m));
    if (!rep || rep->type != REDIS_REPLY_ARRAY)
        return egr_fail(err, EGR_EINVAL, "CLUSTER SLOTS: the reply is not an array");
    for (size_t r = 0; r < rep->elements; r++) {
        const redisReply *e = rep->element[r];
        unsigned range = (unsigned)r;
        if (!e || e->type != REDIS_REPLY_ARRAY || e->elements < 3)
            return egr_fail(err, EGR_EINVAL,
                            "CLUSTER SLOTS: range %u is not [start, end, master, ...]", range);
        if (!is_int(e->element[0], 0, REDIS_CLUSTER_SLOTS - 1) ||
            !is_int(e->element[1], e->element[0]->integer, REDIS_CLUSTER_SLOTS - 1))
            return egr_fail(err, EGR_EINVAL, "CLUSTER SLOTS: range %u: slots out of order or "
                            "outside 0..16383", range);
        char host[REDIS_CLUSTER_HOST_MAX];
        int port;
        if (parse_endpoint(e->element[2], asked_host, host, &port, err, range) != EGR_OK)
            return EGR_EINVAL;
        /* Replicas: only counted (a write never goes to one). */
        for (size_t k = 3; k < e->elements; k++) {
            char rh[REDIS_CLUSTER_HOST_MAX];
            int rp;
            if (parse_endpoint(e->element[k], asked_host, rh, &rp, err, range) != EGR_OK)
                return EGR_EINVAL;
        }
        int known = redis_cluster_map_find(m, host, port) >= 0;
        int i = add_node(m, host, port);
        if (i < 0)
            return egr_fail(err, EGR_EINVAL, "CLUSTER SLOTS: more than %d masters",
                            REDIS_CLUSTER_NODES_MAX);
        /* A master with several ranges lists its replicas with each. */
        if (!known || m->node[i].replicas < e->elements - 3)
            m->node[i].replicas = (unsigned)(e->elements - 3);
        for (long long s = e->element[0]->integer; s <= e->element[1]->integer; s++) {
            if (m->slot[s])
                return egr_fail(err, EGR_EINVAL, "CLUSTER SLOTS: slot %lld is served twice", s);
            m->slot[s] = (uint8_t)(i + 1);
            m->covered++;
        }
    }
    return EGR_OK;
}

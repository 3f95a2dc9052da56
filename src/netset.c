/* netset.c - IPv4/IPv6 CIDR sets with longest-prefix match, and the table
 * of special-purpose address blocks (see include/egressd/netset.h).
 *
 * Structure: one path-compressed binary trie (PATRICIA style) per family.
 * Chosen over sorted range arrays with binary search because a trie is
 * complete after every add: there is no separate "build" step a caller could
 * forget, overlapping prefixes need no flattening pass, and the replace rule
 * for a repeated prefix is a single store. Path compression keeps it small
 * and shallow: at most 2n-1 nodes for n prefixes (a 100k-prefix set is a few
 * MB), and a lookup visits only the nodes where prefixes branch, about
 * log2(n) + a few for real or random sets, never more than 33 (IPv4) or 129
 * (IPv6). Nodes live in one array addressed by 32-bit indices, so the set is
 * a single allocation to free and children sit close in memory.
 *
 * Keys are two host-order 64-bit words (hi = address bits 0..63, lo =
 * 64..127). IPv4 addresses are left-aligned in hi, so bit i means the same
 * thing for both families and one set of helpers serves both tries.
 *
 * Every node's key has the bits beyond its prefix length cleared. Invariant:
 * a child's prefix extends its parent's and is longer; child[b] holds the
 * prefixes whose bit at the parent's length is b. A node without a value is
 * a branch point created by an insert ("glue").
 */
#include "egressd/netset.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#define NS_NIL 0u                  /* node index 0 is never used */
#define NS_MAX_NODES (1u << 30)    /* far above any real set; keeps size math in range */

struct ns_key {
    uint64_t hi, lo;
};

struct ns_node {
    uint64_t hi, lo;   /* prefix bits, cleared beyond plen */
    uint32_t child[2]; /* NS_NIL when absent */
    uint32_t value;
    uint8_t plen;
    uint8_t has_value;
};

struct netset {
    struct ns_node *nodes;
    uint32_t n_nodes; /* used, including the unused slot 0 */
    uint32_t cap;
    uint32_t root[2]; /* [0] IPv4, [1] IPv6 */
    uint32_t count;   /* prefixes holding a value */
};

static const uint8_t ns_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int ns_is_mapped(const uint8_t *a16)
{
    return memcmp(a16, ns_mapped_prefix, sizeof(ns_mapped_prefix)) == 0;
}

static uint64_t ns_load64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static struct ns_key ns_key_v4(const uint8_t *a4)
{
    struct ns_key k;
    k.hi = (uint64_t)a4[0] << 56 | (uint64_t)a4[1] << 48 | (uint64_t)a4[2] << 40 |
           (uint64_t)a4[3] << 32;
    k.lo = 0;
    return k;
}

static struct ns_key ns_key_v6(const uint8_t *a16)
{
    struct ns_key k;
    k.hi = ns_load64(a16);
    k.lo = ns_load64(a16 + 8);
    return k;
}

static struct ns_key ns_key_mask(struct ns_key k, unsigned plen)
{
    if (plen == 0) {
        k.hi = 0;
        k.lo = 0;
    } else if (plen < 64) {
        k.hi &= ~0ull << (64 - plen);
        k.lo = 0;
    } else if (plen == 64) {
        k.lo = 0;
    } else if (plen < 128) {
        k.lo &= ~0ull << (128 - plen);
    }
    return k;
}

static unsigned ns_key_bit(struct ns_key k, unsigned i)
{
    return i < 64 ? (unsigned)(k.hi >> (63 - i)) & 1u : (unsigned)(k.lo >> (127 - i)) & 1u;
}

/* Number of leading bits a and b share, at most cap. */
static unsigned ns_common(struct ns_key a, struct ns_key b, unsigned cap)
{
    uint64_t x = a.hi ^ b.hi;
    unsigned n;
    if (x)
        n = (unsigned)__builtin_clzll(x);
    else if ((x = a.lo ^ b.lo) != 0)
        n = 64 + (unsigned)__builtin_clzll(x);
    else
        n = 128;
    return n < cap ? n : cap;
}

struct netset *netset_new(void)
{
    return calloc(1, sizeof(struct netset));
}

void netset_free(struct netset *set)
{
    if (!set)
        return;
    free(set->nodes);
    free(set);
}

uint32_t netset_count(const struct netset *set)
{
    return set ? set->count : 0;
}

/* Makes room for `need` more nodes, so pointers into the array stay valid
 * for the rest of one insert. */
static int ns_reserve(struct netset *set, uint32_t need)
{
    uint32_t used = set->n_nodes ? set->n_nodes : 1; /* slot 0 is NS_NIL */
    if (used > NS_MAX_NODES - need)
        return EGR_ENOMEM;
    if (used + need > set->cap) {
        uint32_t cap = set->cap ? set->cap : 64;
        while (cap < used + need)
            cap *= 2;
        struct ns_node *n = realloc(set->nodes, (size_t)cap * sizeof(*n));
        if (!n)
            return EGR_ENOMEM;
        set->nodes = n;
        set->cap = cap;
    }
    set->n_nodes = used;
    return EGR_OK;
}

static uint32_t ns_node_new(struct netset *set, struct ns_key k, unsigned plen, int has_value,
                            uint32_t value)
{
    uint32_t i = set->n_nodes++;
    struct ns_node *n = &set->nodes[i];
    n->hi = k.hi;
    n->lo = k.lo;
    n->child[0] = NS_NIL;
    n->child[1] = NS_NIL;
    n->value = has_value ? value : 0;
    n->plen = (uint8_t)plen;
    n->has_value = (uint8_t)(has_value != 0);
    return i;
}

static int ns_insert(struct netset *set, int v6, struct ns_key k, unsigned plen, uint32_t value)
{
    int rc = ns_reserve(set, 2); /* an insert adds at most a leaf and a glue node */
    if (rc != EGR_OK)
        return rc;
    k = ns_key_mask(k, plen);

    uint32_t *link = &set->root[v6];
    for (;;) {
        uint32_t cur = *link;
        if (cur == NS_NIL) {
            *link = ns_node_new(set, k, plen, 1, value);
            set->count++;
            return EGR_OK;
        }
        struct ns_node *n = &set->nodes[cur];
        struct ns_key nk = {n->hi, n->lo};
        unsigned c = ns_common(k, nk, plen < n->plen ? plen : n->plen);
        if (c < n->plen) {
            /* The new prefix leaves n's path at bit c: it either becomes n's
             * parent (it covers n) or a glue node at c takes both. */
            uint32_t up;
            if (c == plen) {
                up = ns_node_new(set, k, plen, 1, value);
            } else {
                up = ns_node_new(set, ns_key_mask(k, c), c, 0, 0);
                uint32_t leaf = ns_node_new(set, k, plen, 1, value);
                set->nodes[up].child[ns_key_bit(k, c)] = leaf;
            }
            set->nodes[up].child[ns_key_bit(nk, c)] = cur;
            *link = up;
            set->count++;
            return EGR_OK;
        }
        if (n->plen == plen) {
            if (!n->has_value)
                set->count++;
            n->has_value = 1;
            n->value = value;
            return EGR_OK;
        }
        link = &n->child[ns_key_bit(k, n->plen)];
    }
}

int netset_add_bin(struct netset *set, int family, const uint8_t *addr, unsigned prefix,
                   uint32_t value)
{
    if (!set || !addr)
        return EGR_EINVAL;
    if (family == 4) {
        if (prefix > 32)
            return EGR_EINVAL;
        return ns_insert(set, 0, ns_key_v4(addr), prefix, value);
    }
    if (family == 6) {
        if (prefix > 128)
            return EGR_EINVAL;
        if (prefix >= 96 && ns_is_mapped(addr))
            return ns_insert(set, 0, ns_key_v4(addr + 12), prefix - 96, value);
        return ns_insert(set, 1, ns_key_v6(addr), prefix, value);
    }
    return EGR_EINVAL;
}

/* Copies the prefixes under node i of `from` into `to` with `value`. The
 * depth is bounded by the key length (129 levels at most). */
static int ns_copy(struct netset *to, const struct netset *from, int v6, uint32_t i,
                   uint32_t value)
{
    if (i == NS_NIL)
        return EGR_OK;
    const struct ns_node *n = &from->nodes[i];
    if (n->has_value) {
        int rc = ns_insert(to, v6, (struct ns_key){n->hi, n->lo}, n->plen, value);
        if (rc != EGR_OK)
            return rc;
        n = &from->nodes[i]; /* to may be from: its array may have moved */
    }
    uint32_t c0 = n->child[0], c1 = n->child[1];
    int rc = ns_copy(to, from, v6, c0, value);
    return rc != EGR_OK ? rc : ns_copy(to, from, v6, c1, value);
}

int netset_add_all(struct netset *to, const struct netset *from, uint32_t value)
{
    if (!to || !from || to == from)
        return EGR_EINVAL;
    int rc = ns_copy(to, from, 0, from->root[0], value);
    return rc != EGR_OK ? rc : ns_copy(to, from, 1, from->root[1], value);
}

static int ns_find(const struct netset *set, int v6, struct ns_key k, uint32_t *value)
{
    unsigned maxlen = v6 ? 128 : 32;
    int found = 0;
    uint32_t best = 0;
    uint32_t cur = set->root[v6];
    while (cur != NS_NIL) {
        const struct ns_node *n = &set->nodes[cur];
        struct ns_key nk = {n->hi, n->lo};
        if (ns_common(k, nk, n->plen) < n->plen)
            break;
        if (n->has_value) {
            best = n->value;
            found = 1;
        }
        if (n->plen >= maxlen)
            break;
        cur = n->child[ns_key_bit(k, n->plen)];
    }
    if (found && value)
        *value = best;
    return found;
}

int netset_lookup(const struct netset *set, int family, const uint8_t *addr, uint32_t *value)
{
    if (!set || !addr)
        return 0;
    if (family == 4)
        return ns_find(set, 0, ns_key_v4(addr), value);
    if (family == 6) {
        if (ns_is_mapped(addr))
            return ns_find(set, 0, ns_key_v4(addr + 12), value);
        return ns_find(set, 1, ns_key_v6(addr), value);
    }
    return 0;
}

/* Copies text for an error message: bounded, control bytes shown as '?', so
 * a garbage input cannot break the one-line message. */
static void ns_quote(char *dst, size_t size, const char *text)
{
    size_t i = 0, j = 0;
    const size_t keep = size - 4; /* room for "..." and the NUL */
    while (text[i] && j < keep) {
        unsigned char ch = (unsigned char)text[i++];
        dst[j++] = (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
    }
    if (text[i]) {
        memcpy(dst + j, "...", 3);
        j += 3;
    }
    dst[j] = '\0';
}

int netset_add(struct netset *set, const char *cidr_text, uint32_t value, struct egr_err *err)
{
    char shown[72];
    char addr_text[64];
    const char *text = cidr_text ? cidr_text : "";
    ns_quote(shown, sizeof(shown), text);
    if (!set)
        return egr_fail(err, EGR_EINVAL, "\"%s\": no set to add to", shown);
    if (!*text)
        return egr_fail(err, EGR_EINVAL, "\"\": empty address prefix");

    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);
    if (alen == 0)
        return egr_fail(err, EGR_EINVAL, "\"%s\": missing address before '/'", shown);
    if (alen >= sizeof(addr_text))
        return egr_fail(err, EGR_EINVAL, "\"%s\": too long for an IP address", shown);
    memcpy(addr_text, text, alen);
    addr_text[alen] = '\0';

    uint8_t a[16];
    int family;
    if (memchr(addr_text, ':', alen)) {
        if (memchr(addr_text, '%', alen))
            return egr_fail(err, EGR_EINVAL, "\"%s\": zone index not allowed in a prefix", shown);
        if (inet_pton(AF_INET6, addr_text, a) != 1)
            return egr_fail(err, EGR_EINVAL, "\"%s\": not a valid IPv6 address", shown);
        family = 6;
    } else {
        if (inet_pton(AF_INET, addr_text, a) != 1)
            return egr_fail(err, EGR_EINVAL, "\"%s\": not a valid IPv4 or IPv6 address", shown);
        family = 4;
    }
    unsigned maxlen = family == 4 ? 32 : 128;

    unsigned plen = maxlen;
    if (slash) {
        const char *p = slash + 1;
        size_t ndig = 0;
        plen = 0;
        while (p[ndig] >= '0' && p[ndig] <= '9' && ndig < 4) {
            plen = plen * 10 + (unsigned)(p[ndig] - '0');
            ndig++;
        }
        if (ndig == 0 || p[ndig] != '\0')
            return egr_fail(err, EGR_EINVAL, "\"%s\": prefix length must be a number 0..%u",
                            shown, maxlen);
        if (plen > maxlen)
            return egr_fail(err, EGR_EINVAL, "\"%s\": prefix length %u is over %u", shown, plen,
                            maxlen);
    }

    /* Host bits beyond the prefix make the intent ambiguous (a host or its
     * network?); refuse rather than guess. */
    struct ns_key k = family == 4 ? ns_key_v4(a) : ns_key_v6(a);
    struct ns_key m = ns_key_mask(k, plen);
    if (m.hi != k.hi || m.lo != k.lo) {
        uint8_t net[16];
        char net_text[INET6_ADDRSTRLEN];
        for (int i = 0; i < 8; i++) {
            net[i] = (uint8_t)(m.hi >> (56 - 8 * i));
            net[8 + i] = (uint8_t)(m.lo >> (56 - 8 * i));
        }
        if (!inet_ntop(family == 4 ? AF_INET : AF_INET6, net, net_text, sizeof(net_text)))
            net_text[0] = '\0';
        return egr_fail(err, EGR_EINVAL, "\"%s\": host bits set beyond /%u (network is %s/%u)",
                        shown, plen, net_text, plen);
    }

    int rc = netset_add_bin(set, family, a, plen, value);
    if (rc == EGR_ENOMEM)
        return egr_fail(err, rc, "\"%s\": out of memory", shown);
    if (rc != EGR_OK)
        return egr_fail(err, rc, "\"%s\": cannot add", shown);
    return EGR_OK;
}

/* Special-purpose blocks. Sources: the IANA "IPv4 Special-Purpose Address
 * Registry" and "IPv6 Special-Purpose Address Registry" (RFC 6890 and the
 * RFCs they cite), plus the IANA multicast blocks and a few deprecated
 * blocks noted below. The rule: a block whose registry entry says
 * "Globally Reachable: False" is special; a more specific entry marked
 * globally reachable inside such a block is not (special = 0 rows, the
 * longest match wins). Globally reachable service blocks are real remote
 * ends: outside any special block they are simply absent (AS112
 * 192.31.196/24, 192.175.48/24, 2620:4f:8000::/48; AMT 192.52.193/24),
 * inside one they are special = 0 rows. */
struct ns_special {
    uint8_t family;
    uint8_t plen;
    uint8_t special;
    uint64_t hi, lo;
};

#define NS_V4(a, b, c, d) \
    ((uint64_t)(a) << 56 | (uint64_t)(b) << 48 | (uint64_t)(c) << 40 | (uint64_t)(d) << 32)
#define NS_V6(w0, w1, w2, w3) \
    ((uint64_t)(w0) << 48 | (uint64_t)(w1) << 32 | (uint64_t)(w2) << 16 | (uint64_t)(w3))

static const struct ns_special ns_special_table[] = {
    {4, 8, 1, NS_V4(0, 0, 0, 0), 0},          /* "this network" RFC 791 */
    {4, 8, 1, NS_V4(10, 0, 0, 0), 0},         /* private RFC 1918 */
    {4, 10, 1, NS_V4(100, 64, 0, 0), 0},      /* shared address space (CGNAT) RFC 6598 */
    {4, 8, 1, NS_V4(127, 0, 0, 0), 0},        /* loopback */
    {4, 16, 1, NS_V4(169, 254, 0, 0), 0},     /* link local RFC 3927 */
    {4, 12, 1, NS_V4(172, 16, 0, 0), 0},      /* private RFC 1918 */
    {4, 24, 1, NS_V4(192, 0, 0, 0), 0},       /* IETF protocol assignments (DS-Lite, NAT64 discovery) */
    {4, 32, 0, NS_V4(192, 0, 0, 9), 0},       /* PCP anycast RFC 7723: globally reachable */
    {4, 32, 0, NS_V4(192, 0, 0, 10), 0},      /* TURN anycast RFC 8155: globally reachable */
    {4, 24, 1, NS_V4(192, 0, 2, 0), 0},       /* documentation TEST-NET-1 RFC 5737 */
    {4, 24, 1, NS_V4(192, 88, 99, 0), 0},     /* 6to4 relay anycast, deprecated RFC 7526 */
    {4, 16, 1, NS_V4(192, 168, 0, 0), 0},     /* private RFC 1918 */
    {4, 15, 1, NS_V4(198, 18, 0, 0), 0},      /* benchmarking RFC 2544 */
    {4, 24, 1, NS_V4(198, 51, 100, 0), 0},    /* documentation TEST-NET-2 */
    {4, 24, 1, NS_V4(203, 0, 113, 0), 0},     /* documentation TEST-NET-3 */
    {4, 4, 1, NS_V4(224, 0, 0, 0), 0},        /* multicast RFC 5771 */
    {4, 4, 1, NS_V4(240, 0, 0, 0), 0},        /* reserved RFC 1112, includes 255.255.255.255 broadcast */

    {6, 128, 1, 0, 0},                        /* ::/128 unspecified */
    {6, 128, 1, 0, 1},                        /* ::1/128 loopback */
    /* ::/96 IPv4-compatible, deprecated by RFC 4291 and never on the wire;
     * some GeoIP trees keep IPv4 data there, so it would answer as IPv4. */
    {6, 96, 1, 0, 0},
    /* ::ffff:0:0/96 is judged as the IPv4 address it carries (see caller).
     * 64:ff9b::/96 (NAT64 well-known, RFC 6052) is globally reachable: absent. */
    {6, 48, 1, NS_V6(0x64, 0xff9b, 1, 0), 0}, /* local-use IPv4/IPv6 translation RFC 8215 */
    {6, 64, 1, NS_V6(0x100, 0, 0, 0), 0},     /* discard-only RFC 6666 */
    {6, 64, 1, NS_V6(0x100, 0, 0, 1), 0},     /* dummy IPv6 prefix RFC 9780 */
    {6, 23, 1, NS_V6(0x2001, 0, 0, 0), 0},    /* IETF protocol assignments RFC 2928 */
    {6, 32, 1, NS_V6(0x2001, 0, 0, 0), 0},    /* Teredo RFC 4380 */
    {6, 128, 0, NS_V6(0x2001, 1, 0, 0), 1},   /* PCP anycast: globally reachable */
    {6, 128, 0, NS_V6(0x2001, 1, 0, 0), 2},   /* TURN anycast: globally reachable */
    {6, 128, 0, NS_V6(0x2001, 1, 0, 0), 3},   /* DNS-SD SRP anycast RFC 9665: globally reachable */
    {6, 48, 1, NS_V6(0x2001, 2, 0, 0), 0},    /* benchmarking RFC 5180 */
    {6, 32, 0, NS_V6(0x2001, 3, 0, 0), 0},    /* AMT RFC 7450: globally reachable */
    {6, 48, 0, NS_V6(0x2001, 4, 0x112, 0), 0}, /* AS112-v6 RFC 7535: globally reachable */
    {6, 28, 1, NS_V6(0x2001, 0x10, 0, 0), 0}, /* ORCHID, deprecated RFC 4843 */
    /* ORCHIDv2 (RFC 7343): the registry marks it reachable, but ORCHIDs are
     * host identifiers, not locators, so no packet should carry one as a
     * real remote end and no GeoIP answer for it means anything. */
    {6, 28, 1, NS_V6(0x2001, 0x20, 0, 0), 0},
    {6, 28, 0, NS_V6(0x2001, 0x30, 0, 0), 0}, /* drone remote ID tags RFC 9374: globally reachable */
    {6, 32, 1, NS_V6(0x2001, 0xdb8, 0, 0), 0}, /* documentation RFC 3849 */
    {6, 40, 1, NS_V6(0x2002, 0xc058, 0x6300, 0), 0}, /* 6to4 form of 192.88.99.0/24, RFC 7526 */
    {6, 20, 1, NS_V6(0x3fff, 0, 0, 0), 0},    /* documentation RFC 9637 */
    {6, 16, 1, NS_V6(0x5f00, 0, 0, 0), 0},    /* segment routing SIDs RFC 9602 */
    {6, 7, 1, NS_V6(0xfc00, 0, 0, 0), 0},     /* unique local RFC 4193 */
    {6, 10, 1, NS_V6(0xfe80, 0, 0, 0), 0},    /* link local RFC 4291 */
    {6, 10, 1, NS_V6(0xfec0, 0, 0, 0), 0},    /* site local, deprecated RFC 3879 */
    {6, 8, 1, NS_V6(0xff00, 0, 0, 0), 0},     /* multicast RFC 4291 */
};

int netset_is_special(int family, const uint8_t *addr)
{
    struct ns_key k;
    if (!addr)
        return 0;
    if (family == 6 && ns_is_mapped(addr)) {
        family = 4;
        addr += 12;
    }
    if (family == 4)
        k = ns_key_v4(addr);
    else if (family == 6)
        k = ns_key_v6(addr);
    else
        return 0;

    /* About 40 rows, scanned once per flow: a linear scan is cheaper than
     * anything that would need building. */
    int best_len = -1, special = 0;
    for (size_t i = 0; i < EGR_ARRAY_LEN(ns_special_table); i++) {
        const struct ns_special *e = &ns_special_table[i];
        if (e->family != family || (int)e->plen <= best_len)
            continue;
        struct ns_key ek = {e->hi, e->lo};
        if (ns_common(k, ek, e->plen) == e->plen) {
            best_len = e->plen;
            special = e->special;
        }
    }
    return special;
}

/* fuzz_dns.c - libFuzzer target: one DNS message through the parser (as a
 * UDP payload and as DNS over TCP) and the passive DNS table.
 *
 * Besides the sanitizers, the target checks what dns.h and names.h promise:
 * bounded counts and names, NUL-terminated text, answers of the three kept
 * types only, linked answers pointing into the result, and that every
 * address just learned is answered with the question name. The table
 * persists across inputs with a small capacity so eviction and expiry run;
 * byte 0 of the input moves packet time forward.
 *
 * Build by hand:
 *   clang -g -fsanitize=fuzzer,address,undefined -Iinclude src/dns.c \
 *       src/names.c src/common.c tests/fuzz/fuzz_dns.c -o fuzz_dns
 * Seeds: UDP payloads of DNS responses, e.g. from `tshark -r FILE -Y
 * 'dns.flags.response==1' -T fields -e udp.payload` (hex, one per line).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "egressd/dns.h"
#include "egressd/names.h"

#define CHECK(c)        \
    do {                \
        if (!(c))       \
            abort();    \
    } while (0)

static struct names *g_names;
static struct dns_answers g_a;
static uint64_t g_now = 1700000000ull * 1000000ull;

static void check_name(const struct dns_name *n)
{
    CHECK(n->len <= DNS_NAME_TEXT_MAX);
    CHECK(n->text[n->len] == '\0');
    CHECK((n->flags & ~(DNS_NAME_DOT_IN_LABEL | DNS_NAME_NUL_IN_LABEL)) == 0);
    for (unsigned i = 0; i < n->len; i++)
        CHECK(n->text[i] < 'A' || n->text[i] > 'Z');
    CHECK(!(n->flags & DNS_NAME_NUL_IN_LABEL) == !memchr(n->text, 0, n->len));
}

static void check_result(int rc, const struct dns_answers *a, uint32_t len)
{
    CHECK(rc == EGR_OK || rc == EGR_EINVAL);
    CHECK((rc == EGR_OK) == (a->error == DNS_E_NONE));
    CHECK(a->error < DNS_E_MAX);
    if (rc != EGR_OK)
        CHECK(a->error_offset <= len);
    CHECK(a->count <= DNS_ANSWERS_MAX);
    CHECK(a->count + a->dropped + a->skipped <= a->ancount);
    if (a->has_question)
        check_name(&a->qname);
    else
        CHECK(a->qname.len == 0);
    for (unsigned i = 0; i < a->count; i++) {
        const struct dns_answer *rr = &a->an[i];
        check_name(&rr->owner);
        check_name(&rr->target);
        if (rr->type == DNS_TYPE_A)
            CHECK(rr->family == 4);
        else if (rr->type == DNS_TYPE_AAAA)
            CHECK(rr->family == 6);
        else
            CHECK(rr->type == DNS_TYPE_CNAME && rr->family == 0);
        CHECK(rr->ttl <= 0x7fffffffu);
        if (rr->type != DNS_TYPE_CNAME)
            CHECK(rr->target.len == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_names && names_new(64, &g_names, NULL) != EGR_OK)
        abort();
    if (size > 0xffff + 2)
        return 0;
    /* The message in its own heap block so ASan sees any overread. */
    uint8_t *msg = malloc(size ? size : 1);
    if (!msg)
        return 0;
    memcpy(msg, data, size);

    int rc = dns_parse_response(msg, (uint32_t)size, &g_a);
    check_result(rc, &g_a, (uint32_t)size);

    struct dns_addr_name linked[DNS_ANSWERS_MAX];
    unsigned n = dns_addresses(&g_a, linked);
    CHECK(n <= g_a.count);
    for (unsigned i = 0; i < n; i++) {
        CHECK(linked[i].head == &g_a.qname);
        CHECK(linked[i].rr >= g_a.an && linked[i].rr < g_a.an + g_a.count);
        CHECK(linked[i].owner == &linked[i].rr->owner);
        CHECK(linked[i].rr->type == DNS_TYPE_A || linked[i].rr->type == DNS_TYPE_AAAA);
    }

    unsigned learned = names_learn(g_names, &g_a, g_now);
    CHECK(learned == 0 || learned == n);
    CHECK(names_count(g_names) <= 64);
    /* Everything learned just now is live and carries the question name
     * (the last answer for an address wins, and all carry the same name). */
    for (unsigned i = 0; i < learned; i++) {
        char out[DNS_NAME_TEXT_MAX + 1];
        const struct dns_answer *rr = linked[i].rr;
        CHECK(names_lookup(g_names, rr->family, rr->addr, g_now, out, sizeof(out)) == 1);
        CHECK(memcmp(out, g_a.qname.text, g_a.qname.len + 1u) == 0);
    }

    uint32_t used = 0;
    rc = dns_parse_tcp(msg, (uint32_t)size, &g_a, &used);
    check_result(rc, &g_a, (uint32_t)size);
    CHECK(used <= size);
    CHECK(used == 0 || used >= 2);

    if (size > 0)
        g_now += (uint64_t)(data[0] & 0x0f) * 60 * 1000000ull;
    free(msg);
    return 0;
}

/* fuzz_decode.c - libFuzzer target for the packet decoder alone
 * (decode_packet), checking its contract on every result.
 *
 * Input: the fuzz_input.h format, so seeds written by fuzz-seeds work: byte 0
 * names the link type the frame was captured with, the rest is the frame.
 * The frame is decoded as that link type first and then as every other
 * supported one, since any byte string can arrive on any link. Each decode
 * reads from a heap copy of exactly the frame, so ASan sees any read past
 * caplen.
 *
 * Oracle (a violation traps): DECODE_ERROR bumps exactly one failure
 * counter; DECODE_NOT_IP bumps not_ip; on DECODE_OK every pointer/length
 * pair lies inside the frame, the L4 header inside the IP packet, a
 * non-first fragment has no L4 (for IPv4 also checked against the header
 * bytes themselves), and ports are 0 unless PKT_F_L4 is set.
 *
 * Build by hand:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
 *       tests/fuzz/fuzz_decode.c src/decode*.c -o fuzz_decode
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "egressd/decode.h"
#include "fuzz_input.h"

/* Link types fuzz_input.h does not list but the decoder accepts. */
static const int extra_dlts[] = {DLT_PPP_SERIAL, DLT_C_HDLC};

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond))                                                                       \
            __builtin_trap();                                                              \
    } while (0)

static int in_frame(const uint8_t *p, uint32_t len, const uint8_t *frame, uint32_t caplen)
{
    if (!p)
        return len == 0;
    return p >= frame && (uint64_t)(p - frame) + len <= caplen;
}

static void decode_one(int dlt, const uint8_t *frame, uint32_t n, uint32_t wire_len)
{
    struct decode_stats st;
    struct pkt_meta m;
    memset(&st, 0, sizeof(st));
    int rc = decode_packet(&st, dlt, frame, n, wire_len, 1, &m);

    uint64_t failures = 0;
    for (unsigned i = 0; i < DEC_COUNTER_MAX; i++)
        if (i != DEC_FRAGMENT && i != DEC_TUNNELED && i != DEC_NOT_IP)
            failures += st.c[i];
    if (rc == DECODE_ERROR) {
        CHECK(failures == 1);
        return;
    }
    if (rc == DECODE_NOT_IP) {
        CHECK(st.c[DEC_NOT_IP] == 1 && failures == 0);
        return;
    }
    CHECK(rc == DECODE_OK);
    CHECK(st.c[DEC_NOT_IP] == 0);
    CHECK(m.cap_len == n && m.wire_len == wire_len);
    CHECK(m.family == 4 || m.family == 6);
    CHECK(m.l3 != NULL && in_frame(m.l3, m.l3_len, frame, n));
    CHECK(in_frame(m.l4, m.l4_len, frame, n));
    CHECK(in_frame(m.payload, m.payload_len, frame, n));
    if (m.l4)
        CHECK(m.l4 >= m.l3 && m.l4 + m.l4_len <= m.l3 + m.l3_len);
    if ((m.flags & PKT_F_FRAG) && !(m.flags & PKT_F_FRAG_FIRST))
        CHECK(m.l4 == NULL && !(m.flags & PKT_F_L4));
    if (m.family == 4) {
        /* Independent of the decoder's flags: the header itself says
         * whether this is a later fragment. */
        CHECK(m.l3_len >= 20 && (m.l3[0] >> 4) == 4);
        unsigned frag = (unsigned)m.l3[6] << 8 | m.l3[7];
        if (frag & 0x1fff)
            CHECK(m.l4 == NULL && !(m.flags & (PKT_F_L4 | PKT_F_FRAG_FIRST)));
        CHECK(!!(frag & 0x3fff) == !!(m.flags & PKT_F_FRAG));
    }
    if (!(m.flags & PKT_F_L4))
        CHECK(m.sport == 0 && m.dport == 0 && m.tcp_flags == 0);
    CHECK(!!(m.flags & PKT_F_TUNNEL) == (m.tunnel != PKT_TUN_NONE));
    CHECK(st.c[DEC_TUNNELED] <= 4);
    /* Reading every byte the result points at must stay inside the copy. */
    volatile uint8_t sink = 0;
    for (uint32_t i = 0; i < m.l3_len; i++)
        sink ^= m.l3[i];
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536 + 1)
        return 0;
    uint32_t n = (uint32_t)(size - 1);
    uint8_t *frame = malloc(n ? n : 1);
    if (!frame)
        return 0;
    memcpy(frame, data + 1, n);
    uint32_t wire_len = n + (data[0] >> 4);
    int first = fuzz_dlts[data[0] % FUZZ_NDLTS];
    decode_one(first, frame, n, wire_len);
    for (unsigned i = 0; i < FUZZ_NDLTS; i++)
        if (fuzz_dlts[i] != first)
            decode_one(fuzz_dlts[i], frame, n, wire_len);
    for (unsigned i = 0; i < sizeof(extra_dlts) / sizeof(extra_dlts[0]); i++)
        decode_one(extra_dlts[i], frame, n, wire_len);
    free(frame);
    return 0;
}

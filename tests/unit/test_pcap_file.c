/* test_pcap_file.c - the mmap'd classic-pcap reader against libpcap: crafted
 * files (both byte orders, nanosecond magic, records longer than the
 * snapshot length, a record or a header cut short, a capture length above
 * the maximum, times past 2038) read by both readers must give the same
 * packets and end the same way; what the reader does not take (pcapng, not
 * a capture, standard input, an unmapped link type) is left to libpcap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "egressd/capture.h"
#include "egressd/pcap-file.h"

struct buf {
    uint8_t *p;
    size_t n, cap;
};

static void add(struct buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void add32(struct buf *b, uint32_t v, int swapped)
{
    if (swapped)
        v = __builtin_bswap32(v);
    add(b, &v, 4);
}

static void add16(struct buf *b, uint16_t v, int swapped)
{
    if (swapped)
        v = __builtin_bswap16(v);
    add(b, &v, 2);
}

static void file_header(struct buf *b, uint32_t magic, uint32_t snaplen, uint32_t linktype,
                        int swapped)
{
    add32(b, magic, swapped);
    add16(b, 2, swapped);
    add16(b, 4, swapped);
    add32(b, 0, swapped);
    add32(b, 0, swapped);
    add32(b, snaplen, swapped);
    add32(b, linktype, swapped);
}

/* A record of caplen bytes (a pattern from seed) claiming len on the wire. */
static void record(struct buf *b, uint32_t sec, uint32_t frac, uint32_t caplen, uint32_t len,
                   int swapped, unsigned seed)
{
    add32(b, sec, swapped);
    add32(b, frac, swapped);
    add32(b, caplen, swapped);
    add32(b, len, swapped);
    for (uint32_t i = 0; i < caplen; i++) {
        uint8_t c = (uint8_t)(seed * 31u + i * 7u);
        add(b, &c, 1);
    }
}

static char *write_tmp(const struct buf *b)
{
    char *path = strdup("/tmp/egressd-test-pcap-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b->p, b->n), (ssize_t)b->n);
    close(fd);
    return path;
}

/* Reads path with both readers and compares packet by packet; returns the
 * number of packets and whether the read ended in an error. */
static unsigned compare(const char *path, int *failed)
{
    struct capture *c;
    struct pcap_file *f;
    struct egr_err e1 = {""}, e2 = {""};
    assert_int_equal(capture_open_file(path, &c, &e1), EGR_OK);
    assert_int_equal(pcap_file_open(path, &f, &e2), EGR_OK);
    assert_int_equal(pcap_file_datalink(f), capture_datalink(c));
    unsigned n = 0;
    for (;;) {
        struct capture_pkt a, b;
        int ra = capture_next(c, &a, &e1);
        int rb = pcap_file_next(f, &b, &e2);
        assert_int_equal(rb, ra);
        if (ra != 1) {
            *failed = ra < 0;
            if (ra < 0) {
                /* libpcap's words after the file name. */
                const char *wa = strchr(e1.msg, ' '), *wb = strchr(e2.msg, ' ');
                assert_non_null(wa);
                assert_non_null(wb);
                assert_string_equal(wb, wa);
            }
            break;
        }
        assert_int_equal(b.caplen, a.caplen);
        assert_int_equal(b.wire_len, a.wire_len);
        assert_memory_equal(b.data, a.data, a.caplen);
        n++;
        /* Time: as libpcap gives it, except that seconds are unsigned here. */
        if (a.ts_us < (uint64_t)INT32_MAX * 1000000u)
            assert_int_equal(b.ts_us, a.ts_us);
    }
    capture_close(c);
    pcap_file_close(f);
    return n;
}

static void run_variant(int swapped, int nano)
{
    struct buf b = {0};
    file_header(&b, nano ? 0xa1b23c4du : 0xa1b2c3d4u, 96, 1, swapped);
    record(&b, 1700000000u, nano ? 123456789u : 123456u, 60, 60, swapped, 1);
    record(&b, 1700000001u, nano ? 999999999u : 999999u, 96, 1514, swapped, 2);
    record(&b, 1700000002u, 5, 200, 200, swapped, 3); /* above the snapshot length */
    record(&b, 1700000003u, 0, 0, 0, swapped, 4);     /* empty record */
    record(&b, 1700000004u, 7, 80, 40, swapped, 5);   /* caplen > len */
    char *path = write_tmp(&b);
    int failed = 1;
    assert_int_equal(compare(path, &failed), 5);
    assert_false(failed);
    unlink(path);
    free(path);
    free(b.p);
}

static void test_byte_orders_and_precision(void **state)
{
    (void)state;
    run_variant(0, 0);
    run_variant(1, 0);
    run_variant(0, 1);
    run_variant(1, 1);
}

static void test_cut_short(void **state)
{
    (void)state;
    struct buf b = {0};
    file_header(&b, 0xa1b2c3d4u, 65535, 1, 0);
    record(&b, 1700000000u, 1, 60, 60, 0, 1);
    size_t whole = b.n;
    record(&b, 1700000001u, 2, 60, 60, 0, 2);
    /* The second record's data cut in the middle, then in its header. */
    size_t cuts[] = {b.n - 30, whole + 7};
    for (size_t i = 0; i < EGR_ARRAY_LEN(cuts); i++) {
        struct buf t = {b.p, cuts[i], cuts[i]};
        char *path = write_tmp(&t);
        int failed = 0;
        assert_int_equal(compare(path, &failed), 1);
        assert_true(failed);
        unlink(path);
        free(path);
    }
    free(b.p);
    /* A record longer than the snapshot length, cut inside the part kept
     * and inside the part skipped. */
    struct buf l = {0};
    file_header(&l, 0xa1b2c3d4u, 96, 1, 0);
    record(&l, 1700000000u, 1, 60, 60, 0, 1);
    record(&l, 1700000001u, 2, 200, 200, 0, 2);
    size_t lcuts[] = {l.n - 150, l.n - 50};
    for (size_t i = 0; i < EGR_ARRAY_LEN(lcuts); i++) {
        struct buf t = {l.p, lcuts[i], lcuts[i]};
        char *path = write_tmp(&t);
        int failed = 0;
        assert_int_equal(compare(path, &failed), 1);
        assert_true(failed);
        unlink(path);
        free(path);
    }
    free(l.p);
}

static void test_caplen_above_maximum(void **state)
{
    (void)state;
    uint32_t snaplens[] = {0, 96, 65535};
    for (size_t i = 0; i < EGR_ARRAY_LEN(snaplens); i++) {
        struct buf b = {0};
        file_header(&b, 0xa1b2c3d4u, snaplens[i], 1, 0);
        record(&b, 1700000000u, 1, 60, 60, 0, 1);
        add32(&b, 1700000001u, 0);
        add32(&b, 0, 0);
        add32(&b, 300000, 0); /* caplen above 262144 */
        add32(&b, 300000, 0);
        char *path = write_tmp(&b);
        int failed = 0;
        assert_int_equal(compare(path, &failed), 1);
        assert_true(failed);
        unlink(path);
        free(path);
        free(b.p);
    }
}

/* Past 2038 a classic-pcap second does not fit a signed 32-bit number. */
static void test_unsigned_seconds(void **state)
{
    (void)state;
    struct buf b = {0};
    file_header(&b, 0xa1b2c3d4u, 65535, 1, 0);
    record(&b, 0xfffffff0u, 42, 60, 60, 0, 1);
    char *path = write_tmp(&b);
    struct pcap_file *f;
    struct egr_err err;
    struct capture_pkt p;
    assert_int_equal(pcap_file_open(path, &f, &err), EGR_OK);
    assert_int_equal(pcap_file_next(f, &p, &err), 1);
    assert_int_equal(p.ts_us, 0xfffffff0ull * 1000000u + 42);
    assert_int_equal(pcap_file_next(f, &p, &err), 0);
    pcap_file_close(f);
    unlink(path);
    free(path);
    free(b.p);
}

/* A file of several MiB: the pages behind the reader are dropped on the
 * way, and every packet still reads right. */
/* A fraction at or above 2^31 (libpcap sign-extends it): both readers take it
 * unsigned, so the time does not depend on which one read the file. */
static void test_fraction_unsigned(void **state)
{
    (void)state;
    struct buf b = {0};
    file_header(&b, 0xa1b2c3d4u, 65535, 1, 0);
    record(&b, 1700000000u, 0xfffff000u, 60, 60, 0, 1);
    record(&b, 1700000001u, 1234567u, 60, 60, 0, 2);
    char *path = write_tmp(&b);
    int failed = 0;
    assert_int_equal(compare(path, &failed), 2);
    assert_false(failed);
    struct pcap_file *f = NULL;
    struct egr_err err = {""};
    assert_int_equal(pcap_file_open(path, &f, &err), EGR_OK);
    struct capture_pkt p;
    assert_int_equal(pcap_file_next(f, &p, &err), 1);
    assert_int_equal(p.ts_us, 1700000000ull * 1000000u + 0xfffff000u % 1000000u);
    pcap_file_close(f);
    unlink(path);
    free(path);
    free(b.p);
}

static void test_large_file(void **state)
{
    (void)state;
    struct buf b = {0};
    file_header(&b, 0xa1b2c3d4u, 65535, 1, 0);
    for (unsigned i = 0; i < 6000; i++)
        record(&b, 1700000000u + i, i, 1400, 1400, 0, i);
    char *path = write_tmp(&b);
    int failed = 1;
    assert_int_equal(compare(path, &failed), 6000);
    assert_false(failed);
    unlink(path);
    free(path);
    free(b.p);
}

static void test_not_mine(void **state)
{
    (void)state;
    struct pcap_file *f = NULL;
    struct egr_err err = {""};
    assert_int_equal(pcap_file_open("-", &f, &err), PCAP_FILE_NOT_MINE);
    assert_int_equal(pcap_file_open("/nonexistent/x.pcap", &f, &err), PCAP_FILE_NOT_MINE);
    /* pcapng, a link type left to libpcap, not a capture, too short */
    struct buf ng = {0};
    add32(&ng, 0x0a0d0d0au, 0);
    add32(&ng, 28, 0);
    add32(&ng, 0x1a2b3c4du, 0);
    for (int i = 0; i < 4; i++)
        add32(&ng, 0, 0);
    struct buf lt = {0};
    file_header(&lt, 0xa1b2c3d4u, 65535, 147 /* USER0 */, 0);
    struct buf junk = {0};
    add(&junk, "this is not a capture file at all", 33);
    struct buf shorty = {0};
    add32(&shorty, 0xa1b2c3d4u, 0);
    /* Versions other than 2.4 (libpcap refuses minors above 4 and reads the
     * lengths of 2.0-2.3 swapped) and a snapshot length above the maximum
     * (libpcap keeps it and words errors by it): found by fuzz_pcap_file. */
    struct buf v22 = {0}, v25 = {0}, big = {0};
    file_header(&v22, 0xa1b2c3d4u, 65535, 1, 0);
    v22.p[6] = 2;
    file_header(&v25, 0xa1b2c3d4u, 65535, 1, 0);
    v25.p[6] = 5;
    file_header(&big, 0xa1b2c3d4u, 262145, 1, 0);
    struct buf *all[] = {&ng, &lt, &junk, &shorty, &v22, &v25, &big};
    for (size_t i = 0; i < EGR_ARRAY_LEN(all); i++) {
        char *path = write_tmp(all[i]);
        assert_int_equal(pcap_file_open(path, &f, &err), PCAP_FILE_NOT_MINE);
        unlink(path);
        free(path);
        free(all[i]->p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_byte_orders_and_precision),
        cmocka_unit_test(test_cut_short),
        cmocka_unit_test(test_caplen_above_maximum),
        cmocka_unit_test(test_unsigned_seconds),
        cmocka_unit_test(test_fraction_unsigned),
        cmocka_unit_test(test_large_file),
        cmocka_unit_test(test_not_mine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

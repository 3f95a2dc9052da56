/* test_spool.c - the on-disk spool: FIFO order across the wrap of the ring,
 * the capacity bound (SPOOL_FULL, never a write past it), recovery after a
 * restart (records not yet popped come back, popped ones do not once
 * synced), a torn or corrupt last record, a damaged header, refusal of a
 * file that is not a spool and of a spool locked by another opener, a
 * long random run checked against a model queue; and the write-ahead use:
 * batches, reading without forgetting, releasing what the owner is done
 * with, a process killed between (fork), and a random run of batches,
 * reads, releases and restarts against a model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include "egressd/spool.h"

#define HDR 64

static char dir[256];
static char path[300];

static int setup(void **state)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/egressd-spool-test-XXXXXX", t && *t ? t : "/tmp");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/s.spool", dir);
    return 0;
}

static int teardown(void **state)
{
    unlink(path);
    rmdir(dir);
    return 0;
}

/* Record i: its length and bytes follow from i, so a pop can be checked
 * without keeping a copy. Lengths vary (1..~700) to exercise padding. */
static uint32_t rec_len(unsigned i)
{
    return 1 + (i * 37u) % 700u;
}

static void rec_fill(unsigned i, uint8_t *buf)
{
    uint32_t n = rec_len(i);
    for (uint32_t k = 0; k < n; k++)
        buf[k] = (uint8_t)(i * 131u + k * 7u);
}

static int push_rec(struct spool *s, unsigned i)
{
    uint8_t buf[1024];
    struct egr_err err = {""};
    rec_fill(i, buf);
    int rc = spool_push(s, buf, rec_len(i), &err);
    if (rc < 0)
        fail_msg("push %u: %s", i, err.msg);
    return rc;
}

static void pop_expect(struct spool *s, unsigned i)
{
    uint8_t got[1024], want[1024];
    uint32_t len = 0, hlen = 0;
    struct egr_err err = {""};
    assert_int_equal(spool_head(s, &hlen, &err), 1);
    assert_int_equal(hlen, rec_len(i));
    int rc = spool_pop(s, got, sizeof(got), &len, &err);
    if (rc != 1)
        fail_msg("pop of record %u: rc %d %s", i, rc, err.msg);
    assert_int_equal(len, rec_len(i));
    rec_fill(i, want);
    assert_memory_equal(got, want, len);
}

static struct spool *open_named(uint64_t cap, struct spool_recovery *rec)
{
    struct spool *s = NULL;
    struct egr_err err = {""};
    if (spool_open(path, cap, &s, rec, &err) != EGR_OK)
        fail_msg("open %s: %s", path, err.msg);
    return s;
}

static void test_fifo_and_restart(void **state)
{
    struct spool_recovery rec;
    struct spool *s = open_named(1 << 16, &rec);
    assert_int_equal(rec.records, 0);
    assert_int_equal(rec.torn_tail, 0);
    struct egr_err err;
    uint32_t len;
    assert_int_equal(spool_head(s, &len, &err), 0);
    for (unsigned i = 0; i < 20; i++)
        assert_int_equal(push_rec(s, i), EGR_OK);
    assert_int_equal(spool_count(s), 20);
    uint64_t used = 0;
    for (unsigned i = 0; i < 20; i++)
        used += spool_record_size(rec_len(i));
    assert_int_equal(spool_used(s), used);
    for (unsigned i = 0; i < 5; i++)
        pop_expect(s, i);
    spool_close(s); /* syncs: 0..4 are gone for good */

    s = open_named(1 << 16, &rec);
    assert_int_equal(rec.records, 15);
    assert_int_equal(rec.torn_tail, 0);
    for (unsigned i = 5; i < 10; i++)
        pop_expect(s, i);
    /* Not synced: a crash now brings 5..9 back (at least once). Simulated
     * by opening the file again behind the first opener's back is not
     * possible (it is locked), so check the header on disk instead. */
    assert_int_equal(push_rec(s, 20), EGR_OK);
    for (unsigned i = 10; i <= 20; i++)
        pop_expect(s, i);
    assert_int_equal(spool_count(s), 0);
    assert_int_equal(spool_used(s), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, HDR); /* emptied: cut back to the header */
    spool_close(s);
    assert_int_equal(stat(path, &st), -1); /* an empty named spool is removed */
}

static void test_full(void **state)
{
    struct spool *s = open_named(SPOOL_MIN_CAPACITY, NULL);
    uint8_t big[8192];
    memset(big, 'x', sizeof(big));
    struct egr_err err;
    /* Larger than the whole region: never fits. */
    assert_int_equal(spool_push(s, big, SPOOL_MIN_CAPACITY, &err), SPOOL_FULL);
    assert_int_equal(spool_count(s), 0);
    /* Exactly the region. */
    assert_int_equal(spool_push(s, big, SPOOL_MIN_CAPACITY - SPOOL_REC_OVERHEAD, &err), EGR_OK);
    assert_int_equal(spool_used(s), SPOOL_MIN_CAPACITY);
    assert_int_equal(spool_push(s, big, 1, &err), SPOOL_FULL);
    uint32_t len;
    assert_int_equal(spool_pop(s, big, sizeof(big), &len, &err), 1);
    assert_int_equal(len, SPOOL_MIN_CAPACITY - SPOOL_REC_OVERHEAD);

    /* Fill with 100-byte records: (4096 / 128) = 32 fit, the 33rd not. */
    unsigned n = 0;
    while (spool_push(s, big, 100, &err) == EGR_OK)
        n++;
    assert_int_equal(n, SPOOL_MIN_CAPACITY / spool_record_size(100));
    assert_int_equal(spool_count(s), n);
    assert_true(spool_used(s) <= spool_capacity(s));
    /* The file never grows past header + capacity. */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true((uint64_t)st.st_size <= HDR + SPOOL_MIN_CAPACITY);
    /* A buffer too small is refused and the record stays. */
    assert_int_equal(spool_pop(s, big, 99, &len, &err), EGR_EINVAL);
    assert_int_equal(spool_count(s), n);
    spool_close(s);
    s = open_named(SPOOL_MIN_CAPACITY, NULL);
    assert_int_equal(spool_count(s), n);
    spool_close(s);
    unlink(path);
}

static void test_wraparound(void **state)
{
    struct spool *s = open_named(SPOOL_MIN_CAPACITY, NULL);
    unsigned next_push = 0, next_pop = 0;
    /* Keep the ring mostly full while records stream through it, several
     * laps; every pop must come out in order and intact. */
    for (int round = 0; round < 400; round++) {
        while (push_rec(s, next_push) == EGR_OK)
            next_push++;
        assert_true(spool_used(s) <= spool_capacity(s));
        unsigned k = 1 + (unsigned)round % 3;
        for (unsigned j = 0; j < k && next_pop < next_push; j++)
            pop_expect(s, next_pop++);
        if (round % 50 == 49) {
            /* A restart in the middle of a lap: the same records come back. */
            spool_close(s);
            struct spool_recovery rec;
            s = open_named(SPOOL_MIN_CAPACITY, &rec);
            assert_int_equal(rec.records, next_push - next_pop);
            assert_int_equal(rec.torn_tail, 0);
        }
    }
    assert_true(next_push > 3 * (SPOOL_MIN_CAPACITY / spool_record_size(700)));
    while (next_pop < next_push)
        pop_expect(s, next_pop++);
    assert_int_equal(spool_count(s), 0);
    spool_close(s);
}

static void corrupt_last(int how)
{
    struct spool *s = open_named(1 << 16, NULL);
    uint64_t off = HDR; /* where record 4, the last, starts */
    for (unsigned i = 0; i < 4; i++)
        off += spool_record_size(rec_len(i));
    for (unsigned i = 0; i < 5; i++)
        assert_int_equal(push_rec(s, i), EGR_OK);
    spool_close(s);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    if (how == 0) {
        /* A write cut short: the file ends inside the last payload. */
        assert_int_equal(ftruncate(fd, (off_t)(off + SPOOL_REC_OVERHEAD + rec_len(4) / 2)), 0);
    } else if (how == 1) {
        /* A flipped payload byte: the checksum catches it. */
        uint8_t b;
        assert_int_equal(pread(fd, &b, 1, (off_t)(off + SPOOL_REC_OVERHEAD + 3)), 1);
        b ^= 0x40;
        assert_int_equal(pwrite(fd, &b, 1, (off_t)(off + SPOOL_REC_OVERHEAD + 3)), 1);
    } else {
        /* Only part of the last header made it. */
        assert_int_equal(ftruncate(fd, (off_t)(off + 10)), 0);
    }
    close(fd);

    struct spool_recovery rec;
    s = open_named(1 << 16, &rec);
    assert_int_equal(rec.records, 4);
    assert_int_equal(rec.torn_tail, 1);
    /* New records go where the torn one was and follow the survivors. */
    assert_int_equal(push_rec(s, 100), EGR_OK);
    for (unsigned i = 0; i < 4; i++)
        pop_expect(s, i);
    pop_expect(s, 100);
    assert_int_equal(spool_count(s), 0);
    spool_close(s);
}

static void test_corrupt_tail(void **state)
{
    corrupt_last(0);
    corrupt_last(1);
    corrupt_last(2);
}

static void test_damaged_header_and_foreign_file(void **state)
{
    struct spool *s = open_named(1 << 16, NULL);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(push_rec(s, i), EGR_OK);
    /* A second opener is refused while the first holds the lock. */
    struct spool *t = NULL;
    struct egr_err err = {""};
    assert_int_equal(spool_open(path, 1 << 16, &t, NULL, &err), EGR_EIO);
    assert_non_null(strstr(err.msg, "in use by another process"));
    spool_close(s);

    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b = 0xff;
    assert_int_equal(pwrite(fd, &b, 1, 20), 1); /* inside the capacity field */
    close(fd);
    struct spool_recovery rec;
    s = open_named(1 << 16, &rec);
    assert_int_equal(rec.torn_tail, 1);
    assert_int_equal(rec.records, 0);
    spool_close(s);

    /* Not a spool: refused, and left as it was. */
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("precious data that is not a spool, longer than a header......................\n",
          fp);
    fclose(fp);
    assert_int_equal(spool_open(path, 1 << 16, &t, NULL, &err), EGR_EINVAL);
    assert_non_null(strstr(err.msg, "not a spool file"));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size > 64);
    unlink(path);

    assert_int_equal(spool_open(path, 100, &t, NULL, &err), EGR_EINVAL);
    char missing[400];
    snprintf(missing, sizeof(missing), "%s/no/such/dir/x.spool", dir);
    assert_int_equal(spool_open(missing, 1 << 16, &t, NULL, &err), EGR_EIO);
    assert_non_null(strstr(err.msg, missing));
}

static void test_capacity_change(void **state)
{
    struct spool *s = open_named(1 << 16, NULL);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(push_rec(s, i), EGR_OK);
    spool_close(s);
    /* Reopened smaller while it holds records: keeps its own capacity. */
    struct spool_recovery rec;
    s = open_named(SPOOL_MIN_CAPACITY, &rec);
    assert_int_equal(rec.capacity, 1 << 16);
    assert_int_equal(spool_capacity(s), 1 << 16);
    for (unsigned i = 0; i < 3; i++)
        pop_expect(s, i);
    /* Emptied: the configured capacity takes over. */
    assert_int_equal(spool_capacity(s), SPOOL_MIN_CAPACITY);
    spool_close(s);
}

static void test_anonymous(void **state)
{
    struct spool *s = NULL;
    struct egr_err err = {""};
    assert_int_equal(spool_open_temp(dir, SPOOL_MIN_CAPACITY * 4, &s, &err), EGR_OK);
    assert_string_equal(spool_path(s), "");
    for (unsigned i = 0; i < 10; i++)
        assert_int_equal(push_rec(s, i), EGR_OK);
    for (unsigned i = 0; i < 10; i++)
        pop_expect(s, i);
    spool_close(s);
    char bad[400];
    snprintf(bad, sizeof(bad), "%s/missing-dir", dir);
    assert_int_equal(spool_open_temp(bad, SPOOL_MIN_CAPACITY, &s, &err), EGR_EIO);
}

/* Random pushes, pops and restarts against a model FIFO. */
static void test_random_model(void **state)
{
    enum { MAXQ = 4096 };
    static unsigned model[MAXQ];
    unsigned mh = 0, mt = 0, next = 0;
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    struct spool *s = open_named(3 * SPOOL_MIN_CAPACITY, NULL);
    for (int step = 0; step < 20000; step++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        unsigned op = (unsigned)(rng % 100);
        if (op < 55) {
            int rc = push_rec(s, next);
            if (rc == EGR_OK) {
                model[mt++ % MAXQ] = next;
            } else {
                assert_int_equal(rc, SPOOL_FULL);
                /* Full only when nearly full: an empty spool takes any
                 * record that fits, and the free space, split at most in
                 * two by the end of the region, is under twice the size. */
                uint64_t need = spool_record_size(rec_len(next));
                assert_true(spool_count(s) > 0);
                assert_true(spool_used(s) + 2 * need > spool_capacity(s));
            }
            next++;
        } else if (op < 98) {
            if (mh == mt) {
                uint32_t len;
                struct egr_err err;
                assert_int_equal(spool_head(s, &len, &err), 0);
            } else {
                pop_expect(s, model[mh++ % MAXQ]);
            }
        } else {
            spool_close(s);
            struct spool_recovery rec;
            s = open_named(3 * SPOOL_MIN_CAPACITY, &rec);
            assert_int_equal(rec.records, mt - mh);
        }
        assert_int_equal(spool_count(s), mt - mh);
        assert_true(spool_used(s) <= spool_capacity(s));
    }
    while (mh != mt)
        pop_expect(s, model[mh++ % MAXQ]);
    spool_close(s);
}

static int append_rec(struct spool *s, unsigned i, struct spool_pos *pos)
{
    uint8_t buf[1024];
    struct egr_err err = {""};
    rec_fill(i, buf);
    int rc = spool_append(s, buf, rec_len(i), i % 7 == 0 ? SPOOL_AUX : 0, pos, &err);
    if (rc < 0)
        fail_msg("append %u: %s", i, err.msg);
    return rc;
}

static void read_expect(struct spool *s, unsigned i, struct spool_pos *pos)
{
    uint8_t got[1024], want[1024];
    uint32_t len = 0, flags = 9;
    struct egr_err err = {""};
    int rc = spool_read(s, got, sizeof(got), &len, &flags, pos, &err);
    if (rc != 1)
        fail_msg("read of record %u: rc %d %s", i, rc, err.msg);
    assert_int_equal(len, rec_len(i));
    assert_int_equal(flags, i % 7 == 0 ? SPOOL_AUX : 0);
    rec_fill(i, want);
    assert_memory_equal(got, want, len);
}

/* A batch is stored whole; reading does not forget; a release does, and
 * only the synced release survives a process that is killed. */
static void test_write_ahead(void **state)
{
    struct egr_err err = {""};
    struct spool *s = open_named(1 << 16, NULL);
    struct spool_pos pos[20];
    for (unsigned i = 0; i < 20; i++)
        assert_int_equal(append_rec(s, i, &pos[i]), EGR_OK);
    assert_int_equal(spool_commit(s, &err), EGR_OK);
    assert_int_equal(spool_count(s), 20);
    assert_int_equal(spool_unread(s), 20);
    assert_int_equal(spool_unread_aux(s), 3); /* 0, 7, 14 */
    for (unsigned i = 0; i < 10; i++) {
        struct spool_pos p;
        read_expect(s, i, &p);
        assert_int_equal(p.seq, pos[i].seq);
        assert_int_equal(p.off, pos[i].off);
    }
    assert_int_equal(spool_unread(s), 10);
    assert_int_equal(spool_count(s), 20);
    /* The record just appended and held by its owner: skipped, not read. */
    spool_skip(s, &pos[11], 0); /* not the next one: ignored */
    assert_int_equal(spool_read_seq(s), pos[10].seq);
    spool_skip(s, &pos[10], 0);
    assert_int_equal(spool_read_seq(s), pos[11].seq);

    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        /* Forgets 0..5 for good, then 6..10 without a sync: killed. */
        if (spool_release(s, &pos[6], &err) != EGR_OK || spool_sync(s, &err) != EGR_OK ||
            spool_release(s, NULL, &err) != EGR_OK)
            _exit(2);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* The child shared the descriptor (and its lock). Ours released
     * nothing, so closing it writes no header: the file is as the killed
     * child left it. */
    spool_close(s);

    struct spool_recovery rec;
    s = open_named(1 << 16, &rec);
    assert_int_equal(rec.records + rec.aux, 14);
    assert_int_equal(rec.aux, 2); /* 7, 14 */
    for (unsigned i = 6; i < 20; i++)
        read_expect(s, i, NULL);
    assert_int_equal(spool_release(s, NULL, &err), EGR_OK);
    assert_int_equal(spool_count(s), 0);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, HDR); /* emptied: cut back to the header */
    spool_close(s);
}

/* Random batches, reads, releases and restarts against a model: what comes
 * back after a restart starts at the last release. */
static void test_random_write_ahead(void **state)
{
    enum { MAXQ = 4096 };
    static unsigned model[MAXQ];
    static struct spool_pos held[MAXQ];
    unsigned mh = 0, mr = 0, mt = 0, next = 0; /* kept, read, end */
    uint64_t rng = 0x2545f4914f6cdd1dull;
    struct egr_err err = {""};
    struct spool *s = open_named(3 * SPOOL_MIN_CAPACITY, NULL);
    for (int step = 0; step < 20000; step++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        unsigned op = (unsigned)(rng % 100);
        if (op < 40) {
            unsigned n = 1 + (unsigned)(rng >> 32) % 6;
            for (unsigned k = 0; k < n; k++) {
                struct spool_pos p;
                int rc = append_rec(s, next, &p);
                if (rc != EGR_OK) {
                    assert_int_equal(rc, SPOOL_FULL);
                    break;
                }
                held[mt % MAXQ] = p;
                model[mt++ % MAXQ] = next++;
            }
            assert_int_equal(spool_commit(s, &err), EGR_OK);
        } else if (op < 75) {
            if (mr == mt) {
                uint32_t len;
                assert_int_equal(spool_head(s, &len, &err), 0);
            } else {
                read_expect(s, model[mr % MAXQ], NULL);
                mr++;
            }
        } else if (op < 98) {
            /* Release up to a random record read (or all of them). */
            unsigned upto = mh + (mr > mh ? (unsigned)(rng >> 40) % (mr - mh + 1) : 0);
            if (upto == mr)
                assert_int_equal(spool_release(s, NULL, &err), EGR_OK);
            else
                assert_int_equal(spool_release(s, &held[upto % MAXQ], &err), EGR_OK);
            mh = upto;
            if (op & 1)
                assert_int_equal(spool_sync(s, &err), EGR_OK);
        } else {
            spool_close(s); /* syncs */
            struct spool_recovery rec;
            s = open_named(3 * SPOOL_MIN_CAPACITY, &rec);
            assert_int_equal(rec.records + rec.aux, mt - mh);
            mr = mh;
            /* Positions from before the restart are stale: read again. */
            for (unsigned k = mh; k < mt; k++) {
                read_expect(s, model[k % MAXQ], &held[k % MAXQ]);
                mr++;
            }
        }
        assert_int_equal(spool_count(s), mt - mh);
        assert_int_equal(spool_unread(s), mt - mr);
        assert_true(spool_used(s) <= spool_capacity(s));
    }
    spool_close(s);
}

/* A batch whose write fails (the file size limit stands in for a full
 * disk) is not stored: the ring is as before it, and a restart recovers
 * the batches before. In a child: the limit is the process's. */
static int rollback_child(void)
{
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {HDR + 8192, HDR + 8192};
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
        return 10;
    struct egr_err err = {""};
    struct spool *s;
    if (spool_open(path, 1 << 16, &s, NULL, &err) != EGR_OK)
        return 11;
    unsigned i = 0;
    uint64_t bytes = 0;
    while (bytes + spool_record_size(rec_len(i)) <= 6000) {
        bytes += spool_record_size(rec_len(i));
        if (append_rec(s, i++, NULL) != EGR_OK)
            return 12;
    }
    if (spool_commit(s, &err) != EGR_OK)
        return 13;
    unsigned stored = i;
    uint64_t next = spool_next_seq(s), used = spool_used(s);
    for (unsigned k = 0; k < 20; k++)
        if (append_rec(s, i++, NULL) != EGR_OK)
            return 14;
    if (spool_commit(s, &err) != EGR_EIO || !strstr(err.msg, "File too large"))
        return 15;
    if (spool_count(s) != stored || spool_unread(s) != stored || spool_next_seq(s) != next ||
        spool_used(s) != used)
        return 16;
    /* Usable after: a batch that fits goes in, at the numbers handed out again. */
    if (append_rec(s, 1000, NULL) != EGR_OK || spool_commit(s, &err) != EGR_OK)
        return 17;
    spool_close(s);
    struct spool_recovery rec;
    if (spool_open(path, 1 << 16, &s, &rec, &err) != EGR_OK || rec.records + rec.aux != stored + 1)
        return 18;
    for (unsigned k = 0; k < stored; k++) {
        uint8_t got[1024], want[1024];
        uint32_t len;
        if (spool_pop(s, got, sizeof(got), &len, &err) != 1 || len != rec_len(k))
            return 19;
        rec_fill(k, want);
        if (memcmp(got, want, len))
            return 20;
    }
    spool_close(s);
    return 0;
}

static void test_commit_rollback(void **state)
{
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0)
        _exit(rollback_child());
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fifo_and_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wraparound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_header_and_foreign_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capacity_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_anonymous, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_ahead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_write_ahead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_rollback, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

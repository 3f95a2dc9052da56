/* test_sink_json.c - the JSON-lines sink: one event per line exactly as
 * eve.c formats it, standard output through "-", the one-line error for an
 * unopenable path, and write errors (a full device) reported through the
 * return codes and error() - sticky, naming the path and the reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "egressd/eve.h"
#include "egressd/sink.h"
#include "json_check.h"

static void record(struct flow_record *r, uint64_t id)
{
    memset(r, 0, sizeof(*r));
    r->flow_id = id;
    r->first_us = 1700000000000000ull + id;
    r->last_us = r->first_us + 1000;
    r->emit_us = r->last_us;
    r->family = 4;
    r->proto = 17;
    r->src_ip[0] = 10;
    r->src_ip[3] = 1;
    r->dst_ip[0] = 10;
    r->dst_ip[3] = 2;
    r->src_port = 1024;
    r->dst_port = 53;
    r->pkts_toserver = 1;
    strcpy(r->community_id, "1:xyz");
    strcpy(r->ndpi.proto, "DNS");
    strcpy(r->ndpi.app, "DNS");
    strcpy(r->ndpi.dns_query, "q\n\"<x>");
}

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, (1 << 20) - 1, fp);
    buf[*len] = '\0';
    fclose(fp);
    return buf;
}

/* What the sink must have written: each event as eve.c formats it + "\n". */
static void expected(struct jbuf *want, const struct flow_record *recs, size_t n,
                     const struct run_stats *st)
{
    struct jbuf one;
    jbuf_init(&one);
    for (size_t i = 0; i <= n; i++) {
        unsigned events = i < n ? eve_record_events(&recs[i]) : 1;
        for (unsigned k = 0; k < events; k++) {
            jbuf_reset(&one);
            if (i < n)
                eve_format_record_event(&one, &recs[i], k);
            else
                eve_format_stats(&one, st);
            json_raw(want, one.buf, one.len);
            json_raw(want, "\n", 1);
        }
    }
    assert_true(jbuf_ok(want));
    jbuf_free(&one);
}

static void test_file_lines(void **state)
{
    (void)state;
    char path[256];
    assert_int_equal(jc_write_temp("old content\n", 12, path, sizeof(path)), 0);

    struct sink s;
    struct egr_err err = {""};
    assert_int_equal(sink_json_open(path, 0, &s, &err), EGR_OK);
    assert_string_equal(s.ops->name, "json");
    assert_string_equal(s.ops->error(s.self), "");

    void *w = s.ops->writer_new(s.self);
    assert_non_null(w);
    struct flow_record recs[3];
    for (int i = 0; i < 3; i++) {
        record(&recs[i], 100 + (uint64_t)i);
        recs[i].ndpi.dns_has_id = 1; /* the query was seen: a dns event before the flow event */
        recs[i].ndpi.dns_id = 7;
        assert_int_equal(s.ops->write_flow(w, &recs[i]), EGR_OK);
    }
    s.ops->writer_free(w); /* hands the lines over */
    struct run_stats st;
    memset(&st, 0, sizeof(st));
    st.packets = 3;
    assert_int_equal(s.ops->stats(s.self, &st), EGR_OK);
    assert_int_equal(s.ops->flush(s.self), EGR_OK);
    assert_string_equal(s.ops->error(s.self), "");
    s.ops->close(s.self);

    size_t len;
    char *got = slurp(path, &len);
    struct jbuf want;
    jbuf_init(&want);
    expected(&want, recs, 3, &st);
    assert_int_equal(len, want.len); /* truncated at open: no "old content" */
    assert_memory_equal(got, want.buf, len);
    assert_int_equal(jc_check_text(got, len, "lines",
                                   "[e[\"event_type\"] for e in d] == [\"dns\", \"flow\"] * 3 + [\"stats\"] and "
                                   "[e.get(\"flow_id\") for e in d[:6]] == [100, 100, 101, 101, 102, 102] and "
                                   "d[0][\"dns\"][\"rrname\"] == \"q\\n\\\"<x>\""),
                     0);
    jbuf_free(&want);
    free(got);
    unlink(path);
}

/* Append mode keeps what the file held; reopen after a rename (what
 * logrotate does) sends later lines to a new file of the same name, none
 * lost; a reopen that cannot open keeps writing to the old file. */
static void test_append_and_reopen(void **state)
{
    (void)state;
    char path[256], moved[300];
    assert_int_equal(jc_write_temp("old content\n", 12, path, sizeof(path)), 0);
    snprintf(moved, sizeof(moved), "%s.1", path);

    struct sink s;
    struct egr_err err = {""};
    assert_int_equal(sink_json_open(path, 1, &s, &err), EGR_OK);
    void *w = s.ops->writer_new(s.self);
    struct flow_record r;
    record(&r, 7);
    assert_int_equal(s.ops->write_flow(w, &r), EGR_OK);
    assert_int_equal(s.ops->writer_flush(w, 0), EGR_OK);
    assert_int_equal(rename(path, moved), 0);
    assert_non_null(s.ops->reopen);
    assert_int_equal(s.ops->reopen(s.self, &err), EGR_OK);
    record(&r, 8);
    assert_int_equal(s.ops->write_flow(w, &r), EGR_OK);
    assert_int_equal(s.ops->writer_flush(w, 0), EGR_OK);
    assert_int_equal(s.ops->flush(s.self), EGR_OK);

    size_t len;
    char *old = slurp(moved, &len);
    assert_true(len > 12 && !memcmp(old, "old content\n", 12));
    assert_int_equal(jc_check_text(old + 12, len - 12, "lines",
                                   "[e[\"flow_id\"] for e in d] == [7]"), 0);
    free(old);
    char *cur = slurp(path, &len);
    assert_int_equal(jc_check_text(cur, len, "lines", "[e[\"flow_id\"] for e in d] == [8]"), 0);
    free(cur);

    /* The directory goes away: reopen fails, the old file stays in use. */
    char dir[] = "/tmp/egressd-reopen-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char inner[300];
    snprintf(inner, sizeof(inner), "%s/eve.json", dir);
    struct sink t;
    assert_int_equal(sink_json_open(inner, 1, &t, &err), EGR_OK);
    assert_int_equal(unlink(inner), 0);
    assert_int_equal(rmdir(dir), 0);
    err.msg[0] = '\0';
    assert_int_not_equal(t.ops->reopen(t.self, &err), EGR_OK);
    assert_non_null(strstr(err.msg, "cannot reopen"));
    void *tw = t.ops->writer_new(t.self);
    assert_int_equal(t.ops->write_flow(tw, &r), EGR_OK);
    assert_int_equal(t.ops->writer_flush(tw, 1), EGR_OK);
    assert_int_equal(t.ops->flush(t.self), EGR_OK);
    t.ops->writer_free(tw);
    t.ops->close(t.self);
    s.ops->writer_free(w);
    s.ops->close(s.self);
    unlink(path);
    unlink(moved);
}

static void test_stdout(void **state)
{
    (void)state;
    char path[256];
    assert_int_equal(jc_write_temp("", 0, path, sizeof(path)), 0);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(saved >= 0 && fd >= 0);
    assert_int_equal(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
    close(fd);

    struct sink s;
    struct egr_err err = {""};
    int rc = sink_json_open("-", 0, &s, &err);
    struct flow_record r;
    record(&r, 7);
    void *w = rc == EGR_OK ? s.ops->writer_new(s.self) : NULL;
    int frc = w ? s.ops->write_flow(w, &r) : rc;
    int flrc = w ? s.ops->writer_flush(w, 1) : rc;
    if (rc == EGR_OK) {
        s.ops->writer_free(w);
        s.ops->close(s.self);
    }
    /* stdout itself stays open and usable */
    int wrc = printf("after\n");
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    assert_int_equal(rc, EGR_OK);
    assert_int_equal(frc, EGR_OK);
    assert_int_equal(flrc, EGR_OK);
    assert_true(wrc > 0);

    size_t len;
    char *got = slurp(path, &len);
    struct jbuf want;
    jbuf_init(&want);
    eve_format_flow(&want, &r);
    json_raw(&want, "\nafter\n", 7);
    assert_string_equal(got, want.buf);
    jbuf_free(&want);
    free(got);
    unlink(path);
}

static void test_open_error(void **state)
{
    (void)state;
    struct sink s = {NULL, NULL};
    struct egr_err err = {""};
    assert_int_equal(sink_json_open("/nonexistent-dir/eve.json", 0, &s, &err), EGR_EIO);
    assert_string_equal(err.msg,
                        "/nonexistent-dir/eve.json: cannot open for writing: No such file or directory");
    assert_null(strchr(err.msg, '\n'));
    assert_null(s.self);

    /* a directory */
    assert_int_equal(sink_json_open("/", 0, &s, &err), EGR_EIO);
    assert_string_equal(err.msg, "/: cannot open for writing: Is a directory");
}

/* /dev/full accepts the open and fails every write with ENOSPC. */
static void test_disk_full(void **state)
{
    (void)state;
    struct stat sb;
    if (stat("/dev/full", &sb) != 0)
        fail_msg("/dev/full is needed for this test");
    struct sink s;
    struct egr_err err = {""};
    assert_int_equal(sink_json_open("/dev/full", 0, &s, &err), EGR_OK);
    const char *want_msg = "/dev/full: write: No space left on device";

    /* Small: the error shows at the writer's hand-over, which reaches the
     * file at once (no stdio buffer between a batch and the file). */
    void *w = s.ops->writer_new(s.self);
    struct flow_record r;
    record(&r, 1);
    assert_int_equal(s.ops->write_flow(w, &r), EGR_OK);
    assert_int_equal(s.ops->writer_flush(w, 0), EGR_EIO);
    assert_int_equal(s.ops->flush(s.self), EGR_EIO);
    assert_string_equal(s.ops->error(s.self), want_msg);
    /* sticky: later calls fail at once with the same message */
    assert_int_equal(s.ops->write_flow(w, &r), EGR_OK); /* buffered in the writer */
    assert_int_equal(s.ops->writer_flush(w, 0), EGR_EIO);
    s.ops->writer_free(w);
    struct run_stats st;
    memset(&st, 0, sizeof(st));
    assert_int_equal(s.ops->stats(s.self, &st), EGR_EIO);
    assert_int_equal(s.ops->flush(s.self), EGR_EIO);
    assert_string_equal(s.ops->error(s.self), want_msg);
    s.ops->close(s.self);

    /* Large: the buffers fill and a record write itself fails. */
    assert_int_equal(sink_json_open("/dev/full", 0, &s, &err), EGR_OK);
    w = s.ops->writer_new(s.self);
    int rc = EGR_OK, i;
    for (i = 0; i < 100000 && rc == EGR_OK; i++)
        rc = s.ops->write_flow(w, &r);
    assert_int_equal(rc, EGR_EIO);
    assert_true(i > 1 && i < 100000);
    assert_string_equal(s.ops->error(s.self), want_msg);
    s.ops->writer_free(w);
    s.ops->close(s.self);
}

/* Writers in four threads at once: every line whole, none lost, each
 * writer's lines in its own order. */
struct writer_job {
    struct sink *s;
    uint64_t base;
    int n;
    int rc;
};

static void *writer_thread(void *arg)
{
    struct writer_job *job = arg;
    void *w = job->s->ops->writer_new(job->s->self);
    job->rc = w ? EGR_OK : EGR_ENOMEM;
    struct flow_record r;
    for (int i = 0; w && i < job->n && job->rc == EGR_OK; i++) {
        record(&r, job->base + (uint64_t)i);
        job->rc = job->s->ops->write_flow(w, &r);
        if (i % 17 == 0 && job->rc == EGR_OK)
            job->rc = job->s->ops->writer_flush(w, i % 2);
    }
    if (w)
        job->s->ops->writer_free(w);
    return NULL;
}

static void test_parallel_writers(void **state)
{
    (void)state;
    char path[256];
    assert_int_equal(jc_write_temp("", 0, path, sizeof(path)), 0);
    struct sink s;
    struct egr_err err = {""};
    assert_int_equal(sink_json_open(path, 0, &s, &err), EGR_OK);
    pthread_t th[4];
    struct writer_job jobs[4];
    for (int k = 0; k < 4; k++) {
        jobs[k] = (struct writer_job){&s, 1000000u * (uint64_t)(k + 1), 200, EGR_OK};
        assert_int_equal(pthread_create(&th[k], NULL, writer_thread, &jobs[k]), 0);
    }
    for (int k = 0; k < 4; k++) {
        pthread_join(th[k], NULL);
        assert_int_equal(jobs[k].rc, EGR_OK);
    }
    assert_int_equal(s.ops->flush(s.self), EGR_OK);
    s.ops->close(s.self);
    size_t len;
    char *got = slurp(path, &len);
    assert_int_equal(jc_check_text(got, len, "lines",
                                   "all(sorted(i for i in (e[\"flow_id\"] for e in d) "
                                   "if i // 1000000 == k) == [i for i in (e[\"flow_id\"] for e "
                                   "in d) if i // 1000000 == k] == list(range(k * 1000000, "
                                   "k * 1000000 + 200)) for k in (1, 2, 3, 4)) and len(d) == 800"),
                     0);
    free(got);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_lines),
        cmocka_unit_test(test_append_and_reopen),
        cmocka_unit_test(test_stdout),
        cmocka_unit_test(test_open_error),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_parallel_writers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* sink-json.c - the JSON-lines sink: one EVE event per line into a file or
 * standard output (see include/egressd/sink.h, docs/eve-format.md).
 *
 * The file is created or truncated at open, so one run gives one file and
 * replaying the same input gives byte-identical output; a live sensor
 * appends instead (output.append) and reopens the file by name on SIGHUP,
 * so logrotate can move it away. Each thread writes through its own
 * writer: records are formatted in that thread into the writer's buffer
 * (no allocation per record once it has grown), and a full buffer, an
 * alert or a flush hands the whole buffer to the file at once under the
 * sink's lock, so lines of different writers never interleave, and is
 * flushed to the file at once (a batch, an alert, the 100 ms tick), so a
 * killed process loses only what its writers had not handed over yet. "-" writes to a duplicate of
 * descriptor 1, so the sink owns (and may close) its stream without
 * closing stdout.
 *
 * Errors are sticky: after the first failed write (disk full, EPIPE, ...)
 * every later call fails with the same message and nothing more is
 * written, so the output never has a hole in the middle. fsync is not
 * called: durability across a crash of the host is not promised.
 *
 * Thread safety: writers run in their own threads; `mu` guards the stream,
 * the sticky error and the reopen. Everything else is the control thread's.
 */
#include "egressd/sink.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "egressd/eve.h"
#include "egressd/json.h"

/* A writer hands its buffer over at this size at the latest; outputs.c
 * flushes every writer far more often (every OUTPUTS_BATCH records). */
#define WRITER_HANDOFF (8u << 20)

struct sink_json {
    pthread_mutex_t mu;
    FILE *fp;         /* opened, closed and synced through stdio; written with write(2) */
    char *name;       /* path as given, "stdout" for "-" */
    int is_file;
    struct jbuf jb;
    int failed;       /* sticky error code, EGR_OK while healthy */
    char errmsg[EGR_ERR_MAX];
};

static int sj_fail(struct sink_json *sj, int code, const char *what, int errnum)
{
    if (!sj->failed) {
        sj->failed = code;
        snprintf(sj->errmsg, sizeof(sj->errmsg), "%s: %s: %s", sj->name, what,
                 errnum ? strerror(errnum) : "unknown error");
    }
    return sj->failed;
}

/* Writes n bytes of whole lines to the stream. Under mu. They go to the
 * descriptor as they are: they come in batches already, and stdio would
 * only copy them into its buffer first (1.4% of a replay's instructions). */
static int sj_write_locked(struct sink_json *sj, const char *buf, size_t n)
{
    if (sj->failed)
        return sj->failed;
    int fd = fileno(sj->fp);
    while (n) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return sj_fail(sj, EGR_EIO, "write", w < 0 ? errno : EIO);
        buf += w;
        n -= (size_t)w;
    }
    return EGR_OK;
}

/* Writes the event in sj->jb plus a newline (control thread). */
static int sj_emit(struct sink_json *sj)
{
    json_raw(&sj->jb, "\n", 1);
    pthread_mutex_lock(&sj->mu);
    int rc = jbuf_ok(&sj->jb) ? sj_write_locked(sj, sj->jb.buf, sj->jb.len)
                              : sj_fail(sj, EGR_ENOMEM, "formatting an event", ENOMEM);
    pthread_mutex_unlock(&sj->mu);
    return rc;
}

/* ---- writers ------------------------------------------------------------ */

struct sj_writer {
    struct sink_json *sj;
    struct jbuf jb;   /* whole lines waiting for the file */
};

static void *sj_writer_new(void *self)
{
    struct sj_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->sj = self;
    jbuf_init(&w->jb);
    return w;
}

static int sj_writer_flush(void *wp, int urgent)
{
    struct sj_writer *w = wp;
    struct sink_json *sj = w->sj;
    pthread_mutex_lock(&sj->mu);
    int rc = jbuf_ok(&w->jb) ? EGR_OK : sj_fail(sj, EGR_ENOMEM, "formatting an event", ENOMEM);
    if (rc == EGR_OK && w->jb.len)
        rc = sj_write_locked(sj, w->jb.buf, w->jb.len);
    /* Every hand-over reaches the kernel at once: a killed process leaves
     * a file that agrees with what went to Redis (the Redis writer is
     * flushed first), not one a stdio buffer behind. It is a write per
     * batch of records, not per record. */
    if (rc == EGR_OK && (urgent || w->jb.len)) {
        errno = 0;
        if (fflush(sj->fp) != 0 || ferror(sj->fp))
            rc = sj_fail(sj, EGR_EIO, "write", errno ? errno : EIO);
    }
    if (rc == EGR_OK)
        rc = sj->failed;
    pthread_mutex_unlock(&sj->mu);
    jbuf_reset(&w->jb);
    return rc;
}

/* The event just formatted at the end of w->jb (from offset start) ends
 * its line; the buffer is handed over when full. Events are formatted in
 * place, not copied in: the buffer is most of what a worker writes. */
static int sj_writer_line(struct sj_writer *w, size_t start)
{
    json_raw(&w->jb, "\n", 1);
    if (!jbuf_ok(&w->jb)) {
        /* The lines before it are intact (a failed growth keeps them). */
        jbuf_rewind(&w->jb, start);
        pthread_mutex_lock(&w->sj->mu);
        int rc = sj_fail(w->sj, EGR_ENOMEM, "formatting an event", ENOMEM);
        pthread_mutex_unlock(&w->sj->mu);
        return rc;
    }
    if (w->jb.len >= WRITER_HANDOFF)
        return sj_writer_flush(w, 0);
    return EGR_OK;
}

/* A record's events (its dns events, then the flow event), one line each. */
static int sj_write_flow(void *wp, const struct flow_record *rec)
{
    struct sj_writer *w = wp;
    unsigned n = eve_record_events(rec);
    for (unsigned i = 0; i < n; i++) {
        size_t start = w->jb.len;
        eve_format_record_event(&w->jb, rec, i);
        int rc = sj_writer_line(w, start);
        if (rc != EGR_OK)
            return rc;
    }
    return EGR_OK;
}

static int sj_write_alert(void *wp, const struct alert_record *a)
{
    struct sj_writer *w = wp;
    size_t start = w->jb.len;
    eve_format_alert(&w->jb, a);
    return sj_writer_line(w, start);
}

static void sj_writer_free(void *wp)
{
    struct sj_writer *w = wp;
    if (!w)
        return;
    sj_writer_flush(w, 0);
    jbuf_free(&w->jb);
    free(w);
}

static int sj_stats(void *self, const struct run_stats *st)
{
    struct sink_json *sj = self;
    jbuf_reset(&sj->jb);
    eve_format_stats(&sj->jb, st);
    return sj_emit(sj);
}

static int sj_flush_locked(struct sink_json *sj)
{
    if (sj->failed)
        return sj->failed;
    errno = 0;
    if (fflush(sj->fp) != 0 || ferror(sj->fp))
        return sj_fail(sj, EGR_EIO, "write", errno ? errno : EIO);
    return EGR_OK;
}

static int sj_flush(void *self)
{
    struct sink_json *sj = self;
    pthread_mutex_lock(&sj->mu);
    int rc = sj_flush_locked(sj);
    pthread_mutex_unlock(&sj->mu);
    return rc;
}

static void sj_free(struct sink_json *sj)
{
    jbuf_free(&sj->jb);
    free(sj->name);
    pthread_mutex_destroy(&sj->mu);
    free(sj);
}

static void sj_close(void *self)
{
    struct sink_json *sj = self;
    /* fclose flushes; a failure here cannot be reported any more (callers
     * that care call flush first, and see its error). */
    fclose(sj->fp);
    sj_free(sj);
}

static const char *sj_error(void *self)
{
    struct sink_json *sj = self;
    pthread_mutex_lock(&sj->mu);
    const char *e = sj->failed ? sj->errmsg : "";
    pthread_mutex_unlock(&sj->mu);
    return e;
}

static int sj_reopen(void *self, struct egr_err *err)
{
    struct sink_json *sj = self;
    if (!sj->is_file)
        return EGR_OK;
    /* Everything buffered belongs to the old file. */
    pthread_mutex_lock(&sj->mu);
    int rc = sj_flush_locked(sj);
    if (rc != EGR_OK) {
        pthread_mutex_unlock(&sj->mu);
        return egr_fail(err, rc, "%s", sj->errmsg);
    }
    FILE *fp = fopen(sj->name, "a");
    if (!fp) {
        pthread_mutex_unlock(&sj->mu);
        return egr_fail(err, EGR_EIO, "%s: cannot reopen: %s (writing on to the old file)",
                        sj->name, strerror(errno));
    }
    fclose(sj->fp);
    sj->fp = fp;
    pthread_mutex_unlock(&sj->mu);
    return EGR_OK;
}

static const struct sink_ops sink_json_ops = {
    .name = "json",
    .writer_new = sj_writer_new,
    .write_flow = sj_write_flow,
    .write_alert = sj_write_alert,
    .writer_flush = sj_writer_flush,
    .writer_free = sj_writer_free,
    .stats = sj_stats,
    .flush = sj_flush,
    .close = sj_close,
    .error = sj_error,
    .reopen = sj_reopen,
};

int sink_json_open(const char *path, int append, struct sink *out, struct egr_err *err)
{
    int to_stdout = strcmp(path, "-") == 0;
    struct sink_json *sj = calloc(1, sizeof(*sj));
    if (!sj)
        return egr_fail(err, EGR_ENOMEM, "%s: out of memory", path);
    pthread_mutex_init(&sj->mu, NULL);
    jbuf_init(&sj->jb);
    sj->name = strdup(to_stdout ? "stdout" : path);
    if (!sj->name) {
        sj_free(sj);
        return egr_fail(err, EGR_ENOMEM, "%s: out of memory", path);
    }

    if (to_stdout) {
        int fd = dup(STDOUT_FILENO);
        if (fd < 0 || !(sj->fp = fdopen(fd, "w"))) {
            int e = errno;
            if (fd >= 0)
                close(fd);
            sj_free(sj);
            return egr_fail(err, EGR_EIO, "stdout: cannot open for writing: %s", strerror(e));
        }
    } else if (!(sj->fp = fopen(path, append ? "a" : "w"))) {
        int e = errno;
        sj_free(sj);
        return egr_fail(err, EGR_EIO, "%s: cannot open for writing: %s", path, strerror(e));
    }
    sj->is_file = !to_stdout;

    out->ops = &sink_json_ops;
    out->self = sj;
    return EGR_OK;
}

/* sink-json.c - the JSON-lines sink: one EVE event per line into a file or
 * standard output (see include/egressd/sink.h, docs/eve-format.md).
 *
 * The file is created or truncated at open, so one run gives one file and
 * replaying the same input gives byte-identical output; a live sensor
 * appends instead (output.append) and reopens the file by name on SIGHUP,
 * so logrotate can move it away. Writes go through
 * stdio with a 1 MiB buffer: a record is formatted into a reused jbuf and
 * handed to fwrite, so there is no allocation per record once the jbuf has
 * grown to the largest record. "-" writes to a duplicate of descriptor 1,
 * so the sink owns (and may close) its stream without closing stdout.
 *
 * Errors are sticky: after the first failed write (disk full, EPIPE, ...)
 * every later call fails with the same message and nothing more is
 * written, so the output never has a hole in the middle. fsync is not
 * called: durability across a crash of the host is not promised.
 *
 * Thread safety: a sink is used by one thread (the main thread).
 */
#include "egressd/sink.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "egressd/eve.h"
#include "egressd/json.h"

#define SINK_JSON_IOBUF (1u << 20)

struct sink_json {
    FILE *fp;
    char *iobuf;
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

/* Writes the event in sj->jb plus a newline. */
static int sj_emit(struct sink_json *sj)
{
    json_raw(&sj->jb, "\n", 1);
    if (!jbuf_ok(&sj->jb))
        return sj_fail(sj, EGR_ENOMEM, "formatting an event", ENOMEM);
    errno = 0;
    size_t w = fwrite(sj->jb.buf, 1, sj->jb.len, sj->fp);
    if (w != sj->jb.len || ferror(sj->fp))
        return sj_fail(sj, EGR_EIO, "write", errno ? errno : EIO);
    return EGR_OK;
}

/* A record's events (its dns events, then the flow event), one line each. */
static int sj_flow(void *self, const struct flow_record *rec)
{
    struct sink_json *sj = self;
    if (sj->failed)
        return sj->failed;
    unsigned n = eve_record_events(rec);
    for (unsigned i = 0; i < n; i++) {
        jbuf_reset(&sj->jb);
        eve_format_record_event(&sj->jb, rec, i);
        int rc = sj_emit(sj);
        if (rc != EGR_OK)
            return rc;
    }
    return EGR_OK;
}

static int sj_alert(void *self, const struct alert_record *a)
{
    struct sink_json *sj = self;
    if (sj->failed)
        return sj->failed;
    jbuf_reset(&sj->jb);
    eve_format_alert(&sj->jb, a);
    return sj_emit(sj);
}

static int sj_stats(void *self, const struct run_stats *st)
{
    struct sink_json *sj = self;
    if (sj->failed)
        return sj->failed;
    jbuf_reset(&sj->jb);
    eve_format_stats(&sj->jb, st);
    return sj_emit(sj);
}

static int sj_flush(void *self)
{
    struct sink_json *sj = self;
    if (sj->failed)
        return sj->failed;
    errno = 0;
    if (fflush(sj->fp) != 0 || ferror(sj->fp))
        return sj_fail(sj, EGR_EIO, "write", errno ? errno : EIO);
    return EGR_OK;
}

static void sj_free(struct sink_json *sj)
{
    jbuf_free(&sj->jb);
    free(sj->iobuf);
    free(sj->name);
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
    const struct sink_json *sj = self;
    return sj->failed ? sj->errmsg : "";
}

static int sj_reopen(void *self, struct egr_err *err)
{
    struct sink_json *sj = self;
    if (!sj->is_file)
        return EGR_OK;
    /* Everything buffered belongs to the old file. */
    int rc = sj_flush(sj);
    if (rc != EGR_OK)
        return egr_fail(err, rc, "%s", sj->errmsg);
    FILE *fp = fopen(sj->name, "a");
    if (!fp)
        return egr_fail(err, EGR_EIO, "%s: cannot reopen: %s (writing on to the old file)",
                        sj->name, strerror(errno));
    fclose(sj->fp);
    sj->fp = fp;
    setvbuf(sj->fp, sj->iobuf, _IOFBF, SINK_JSON_IOBUF);
    return EGR_OK;
}

static const struct sink_ops sink_json_ops = {
    .name = "json",
    .flow = sj_flow,
    .alert = sj_alert,
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
    jbuf_init(&sj->jb);
    sj->name = strdup(to_stdout ? "stdout" : path);
    sj->iobuf = malloc(SINK_JSON_IOBUF);
    if (!sj->name || !sj->iobuf) {
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
    setvbuf(sj->fp, sj->iobuf, _IOFBF, SINK_JSON_IOBUF);

    out->ops = &sink_json_ops;
    out->self = sj;
    return EGR_OK;
}

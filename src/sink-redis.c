/* sink-redis.c - the Redis sink (see include/egressd/sink-redis.h; keys in
 * docs/redis-schema.md).
 *
 * Path of a record:
 *
 *   flow()/alert() --format--> memory queue --send--> in flight --reply--> gone
 *                     \ (queue full)    ^ (refill in order)
 *                      `--> spool ------'        (spool full: dropped, counted)
 *
 * A record is the encoded commands of redis-schema.h. The memory queue is a
 * list in arrival order, bounded in records and bytes, that holds a record
 * until every one of its commands has been answered: records before
 * `cursor` are in flight, the rest wait. While the spool holds anything, new
 * records go behind it, so records reach Redis in the order they were made.
 *
 * Replies arrive in command order; each command carries its record as
 * privdata and the record knows which of its commands are out (`out` bits),
 * so the answered command is the lowest outstanding one. A record's stream
 * entry (command 0) decides its fate: acknowledged = sent; refused for good
 * (WRONGTYPE and any error not listed as transient) = dropped and counted
 * as rejected. Aggregate commands that fail for good are counted and not
 * retried. Transient errors (OOM under maxmemory/noeviction, LOADING, BUSY,
 * NOPERM, ...) keep the record: sending stops, and after a backoff one
 * record is sent as a probe; when it goes through, pipelining resumes from
 * the oldest record, resending only the commands not yet acknowledged (so
 * an XADD that succeeded is not written twice).
 *
 * Connections: hiredis async on a libevent base. A lost connection returns
 * the in-flight records to the queue (hiredis answers their callbacks with
 * NULL) and a new connection is tried after a backoff doubling from 100 ms
 * to 5 s; AUTH and SELECT are sent first and records only once they
 * succeed. A server that answers nothing for `timeout` seconds is
 * disconnected and reconnected: commands it may have executed without
 * answering are sent again, the one case where a record can be written
 * twice.
 *
 * End of a run (sink_redis_drain): wait until the queue and the spool are
 * empty or redis.drain_timeout has passed, then say exactly what did not
 * reach Redis. With a named spool, what is left is written to it and the
 * next run with the same spool delivers it first.
 *
 * Threads: the sink runs its own I/O thread, which owns the event base,
 * the connection, the memory queue and the spool; nothing above runs on
 * the caller's thread. flow() hands a copy of the record over through a
 * locked inbox (the thread is woken through an eventfd once a batch has
 * gathered) and the thread formats it, so the packet path pays for a copy
 * and a lock, never for formatting, the protocol, replies or the disk. If
 * the thread falls behind, the caller formats records itself (the inbox
 * then holds their compact commands). Requests (heartbeat, drain, stop)
 * go the same way and drain/close wait for the thread's answer; counters
 * are published by the thread under the same lock.
 *
 * Aggregates (redis-agg.h) do not travel with their records: the caller's
 * side sums them in a fixed table and hands the sums over as batches every
 * AGG_FLUSH_MS or when the table fills. A batch waits in the memory queue
 * (never the spool); if the queue is full it is dropped and counted. A
 * batch in flight when the connection drops is sent again like a record (an
 * increment may then count twice): aggregates are for dashboards, the
 * streams are the record of truth.
 *
 * Logging: one line per change of state (connected, lost, refused,
 * spooling, dropping), through the callback given at open, at most
 * LOG_BURST lines per minute. Text from outside (server errors, keys, the
 * sensor id, the URL) is shown with control bytes escaped, so a line stays
 * one line.
 */
#include "egressd/sink-redis.h"

#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "egressd/eve.h"
#include "egressd/json.h"
#include "egressd/redis-agg.h"
#include "egressd/redis-schema.h"
#include "egressd/redis-url.h"
#include "egressd/spool.h"

#define BACKOFF_MIN_MS 100u
#define BACKOFF_MAX_MS 5000u
#define WATCHDOG_MS 1000u
#define LOG_BURST 20      /* lines per LOG_WINDOW */
#define LOG_WINDOW_S 60
#define FINAL_FLUSH_MS 2000u /* last heartbeat: how long flush() waits */
#define KEY_SHOW_MAX 80
#define AGG_FLUSH_MS 1000u
#define AGG_MAX_ENTRIES 32768u /* distinct sums between flushes: ~3.5 MB */
#define INBOX_SLACK 1024u      /* records the inbox holds beyond the memory queue's bound */
#define AGG_MEM_MAX (64u << 20) /* aggregate batches waiting in memory */
/* While the inbox holds fewer than this, flow records are handed over as
 * copies and formatted on the I/O thread; beyond it (the thread is behind)
 * the caller formats them itself, so the inbox stays compact. */
#define RAW_MAX 4096u
#define KIND_RAW_FLOW 0xff /* an inbox entry holding a struct flow_record; never queued */

void sink_redis_config_defaults(struct sink_redis_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->prefix, sizeof(c->prefix), "egress");
    c->flows_maxlen = 100000;
    c->alerts_maxlen = 1000000;
    c->aggregate_ttl = 7200;
    c->heartbeat_interval = 10;
    c->heartbeat_ttl = 60;
    c->queue_max_bytes = 64ull << 20;
    c->queue_max_records = 100000;
    c->batch_records = 256;
    c->flush_ms = 100;
    c->spool_max_bytes = 256ull << 20;
    c->drain_timeout = 30;
    c->timeout = 10;
}

/* ---- state -------------------------------------------------------------- */

enum conn_state { ST_DOWN = 0, ST_CONNECTING, ST_HANDSHAKE, ST_READY };

struct rrec {
    struct rrec *prev, *next;
    uint64_t done;  /* commands answered (acknowledged or refused for good) */
    uint64_t out;   /* commands sent and not yet answered */
    uint32_t len;
    uint8_t kind;
    uint8_t ncmd;
    uint8_t again;  /* a command met a transient error or a lost connection */
    /* Aligned: an inbox entry may hold a struct flow_record here. */
    _Alignas(16) uint8_t data[];
};

struct sink_redis {
    struct sink_redis_config cfg;
    struct redis_endpoint ep;
    char sensor[128];
    struct redis_schema schema;

    struct event_base *base;
    int own_base;
    struct event *ev_flush, *ev_reconnect, *ev_retry, *ev_watchdog, *ev_heartbeat, *ev_wake,
        *ev_inbox;

    /* The caller's side (any thread, under mx). */
    pthread_mutex_t mx;
    pthread_cond_t cv;
    pthread_t thread;
    int thread_started;
    int wake_fd;             /* eventfd: the inbox or a request needs the thread */
    struct rrec *in_head, *in_tail;
    uint64_t in_count, in_bytes;
    uint64_t in_records;     /* records handed over (not yet counted by the thread) */
    uint64_t in_dropped;     /* of those, dropped at the inbox (the thread was behind) */
    uint64_t in_agg_lost;    /* aggregate commands lost at the inbox */
    struct rcmd_buf front_rb, agg_rb;
    struct jbuf front_jb;
    struct redis_agg *agg;   /* NULL when aggregates are off */
    uint64_t agg_flushed_us;
    int req_heartbeat, req_drain, req_stop, drain_done, drain_rc;
    int ready;               /* published: Redis takes writes now */
    uint64_t agg_skipped;    /* records not aggregated: table full while Redis was unavailable */
    int agg_full_noted;
    uint64_t hb_packets, hb_bytes, hb_drops, hb_active;
    struct redis_stats snap; /* published by the thread */

    redisAsyncContext *ac;
    enum conn_state state;
    int closing;
    unsigned hs_pending;     /* AUTH/SELECT replies awaited */
    int hs_failed;           /* the handshake was refused (logged already) */
    unsigned backoff_ms;     /* next reconnect delay */
    unsigned retry_ms;       /* next delay after a transient error */
    int stalled;             /* sending stopped after a transient error */
    int probing;             /* one record out to see if the error is over */
    uint64_t progress_us;    /* last reply or connect, or first send after a quiet
                              * spell (monotonic) */
    uint64_t down_since_us;
    unsigned connections;    /* handshakes completed */
    int was_ready;           /* a connection was up before the current trouble */
    int down_logged;

    /* memory queue */
    struct rrec *head, *tail, *cursor;
    uint64_t mem_count, mem_bytes, n_unsent, inflight, inflight_plain;
    uint64_t max_inflight;

    struct spool *spool;
    int spilling;            /* the memory queue overflowed into the spool */
    int dropping;            /* records are being dropped (full) */
    uint64_t drop_mark;      /* dropped count when the episode began */
    uint64_t spool_lost_seen;

    struct rcmd_buf rb, hb_rb;
    struct jbuf jb;
    char *resp;              /* one command in the protocol's own format */
    size_t resp_cap;
    uint8_t *popbuf;
    uint32_t popcap;

    /* counters */
    struct redis_stats st;
    uint64_t agg_refused;    /* aggregate commands refused by Redis */
    uint64_t agg_unsent;     /* aggregate commands lost with a connection, or sums left at the end */
    uint64_t mem_agg;        /* aggregate batches in the memory queue */
    uint64_t mem_agg_bytes;
    uint64_t start_us;       /* wall clock */
    char source[256];

    char last_error[256];
    char refusal[256];       /* the transient refusal being waited out, "" if none */
    char refusal_seen[4][160]; /* refusals logged in this episode (a server can refuse
                              * several commands in turn: each is said once) */
    unsigned nrefusal_seen;
    char reject_msg[2][256]; /* the last permanent refusal logged: of records, of aggregates */

    /* logging */
    sink_redis_log_fn log;
    void *log_arg;
    time_t log_window;
    unsigned log_lines, log_suppressed;

    int finished;            /* drained: what is left stays where it is */
    int failed;
    char errmsg[EGR_ERR_MAX];
};


static void say(struct sink_redis *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One line through the callback, at most LOG_BURST per window: a flapping
 * server cannot flood the log. */
static void say(struct sink_redis *s, const char *fmt, ...)
{
    time_t now = time(NULL);
    if (now - s->log_window >= LOG_WINDOW_S) {
        s->log_window = now;
        s->log_lines = 0;
    }
    if (s->log_lines >= LOG_BURST) {
        s->log_suppressed++;
        return;
    }
    s->log_lines++;
    char line[1024];
    int n = snprintf(line, sizeof(line), "redis: ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (s->log_suppressed) {
        size_t l = strlen(line);
        snprintf(line + l, sizeof(line) - l, " (%u earlier lines suppressed)", s->log_suppressed);
        s->log_suppressed = 0;
    }
    if (s->log)
        s->log(s->log_arg, line);
}

/* Printable form of bytes from Redis or a key, for one log line. */
static void show(char *out, size_t size, const char *p, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && i < KEY_SHOW_MAX && o + 5 < size; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f)
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
    }
    if (n > KEY_SHOW_MAX && o + 4 < size) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* Copies a message, cut to fit (messages are one line; the end matters
 * least). */
static void copy_cut(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void set_error(struct sink_redis *s, const char *msg)
{
    copy_cut(s->last_error, sizeof(s->last_error), msg);
}

/* ---- memory queue ------------------------------------------------------- */

static uint64_t full_mask(unsigned ncmd)
{
    return ncmd >= 64 ? UINT64_MAX : (1ull << ncmd) - 1;
}

/* Room for a record: aggregate batches do not count against the bounds
 * (they have their own, AGG_MEM_MAX). */
static int mem_fits(const struct sink_redis *s, uint32_t len)
{
    uint64_t count = s->mem_count - s->mem_agg, bytes = s->mem_bytes - s->mem_agg_bytes;
    if (count == 0)
        return 1; /* a record larger than the whole bound still gets through alone */
    return count < s->cfg.queue_max_records && bytes + len <= s->cfg.queue_max_bytes;
}

static struct rrec *rrec_new(const void *data, uint32_t len)
{
    unsigned kind, ncmd;
    struct rcmd_iter it;
    if (rcmd_iter_init(&it, data, len, &kind, &ncmd) != EGR_OK)
        return NULL;
    struct rrec *r = malloc(sizeof(*r) + len);
    if (!r)
        return NULL;
    memset(r, 0, sizeof(*r));
    r->len = len;
    r->kind = (uint8_t)kind;
    r->ncmd = (uint8_t)ncmd;
    memcpy(r->data, data, len);
    return r;
}

static void mem_append(struct sink_redis *s, struct rrec *r)
{
    r->next = NULL;
    r->prev = s->tail;
    if (s->tail)
        s->tail->next = r;
    else
        s->head = r;
    s->tail = r;
    if (!s->cursor)
        s->cursor = r;
    s->mem_count++;
    s->mem_bytes += r->len;
    s->n_unsent++;
}

static void mem_remove(struct sink_redis *s, struct rrec *r)
{
    if (r->kind == RCMD_AGG) {
        s->mem_agg--;
        s->mem_agg_bytes -= r->len;
    }
    if (r->prev)
        r->prev->next = r->next;
    else
        s->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        s->tail = r->prev;
    if (s->cursor == r) {
        s->cursor = r->next; /* only at close: queued records are never removed */
        s->n_unsent--;
    }
    s->mem_count--;
    s->mem_bytes -= r->len;
    free(r);
}

/* Moves spooled records into the memory queue while it has room. */
static void refill(struct sink_redis *s)
{
    if (!s->spool || s->finished)
        return;
    while (spool_count(s->spool) > 0) {
        uint32_t len;
        struct egr_err e = {""};
        int rc = spool_head(s->spool, &len, &e);
        if (rc <= 0) {
            if (rc < 0) {
                say(s, "%s", e.msg);
                set_error(s, e.msg);
            }
            break;
        }
        if (!mem_fits(s, len))
            break;
        if (len > s->popcap) {
            uint8_t *nb = realloc(s->popbuf, len);
            if (!nb)
                break;
            s->popbuf = nb;
            s->popcap = len;
        }
        rc = spool_pop(s->spool, s->popbuf, s->popcap, &len, &e);
        if (rc <= 0) {
            if (rc < 0) {
                say(s, "%s", e.msg);
                set_error(s, e.msg);
            }
            break;
        }
        struct rrec *r = rrec_new(s->popbuf, len);
        if (!r) {
            s->st.dropped++; /* malformed (never written so) or out of memory */
            continue;
        }
        mem_append(s, r);
    }
    uint64_t lost = spool_lost(s->spool);
    if (lost > s->spool_lost_seen) {
        /* Records the spool could not read back count as dropped. */
        s->st.dropped += lost - s->spool_lost_seen;
        s->spool_lost_seen = lost;
    }
    if (s->spilling && spool_count(s->spool) == 0) {
        s->spilling = 0;
        say(s, "spool empty again: records go through memory");
    }
}

/* ---- sending ------------------------------------------------------------ */

static void cb_record(redisAsyncContext *ac, void *reply, void *privdata);
static void send_some(struct sink_redis *s);

/* "<c><decimal>\r\n" at p; returns the end. */
static char *resp_len(char *p, char c, size_t v)
{
    char t[24];
    int n = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    *p++ = c;
    while (n)
        *p++ = t[--n];
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* Queues one command, formatted here: hiredis' own argv formatting
 * (sdscatfmt per argument) cost more than everything else the sink does.
 * Every argument is a length-prefixed bulk string, whatever its bytes. */
static int send_command(struct sink_redis *s, redisCallbackFn *fn, void *privdata,
                        unsigned argc, const char **argv, const size_t *lens)
{
    size_t need = 32;
    for (unsigned a = 0; a < argc; a++)
        need += lens[a] + 32;
    if (need > s->resp_cap) {
        char *nb = realloc(s->resp, need);
        if (!nb)
            return REDIS_ERR;
        s->resp = nb;
        s->resp_cap = need;
    }
    char *p = resp_len(s->resp, '*', argc);
    for (unsigned a = 0; a < argc; a++) {
        p = resp_len(p, '$', lens[a]);
        memcpy(p, argv[a], lens[a]);
        p += lens[a];
        *p++ = '\r';
        *p++ = '\n';
    }
    return redisAsyncFormattedCommand(s->ac, fn, privdata, s->resp, (size_t)(p - s->resp));
}

/* Sends the unanswered commands of r. 0, or -1 if hiredis refused (the
 * connection is going away). */
static int send_record(struct sink_redis *s, struct rrec *r)
{
    struct rcmd_iter it;
    const char *argv[RCMD_MAX_ARGS];
    size_t lens[RCMD_MAX_ARGS];
    unsigned argc;
    if (rcmd_iter_init(&it, r->data, r->len, NULL, NULL) != EGR_OK)
        return -1; /* cannot happen: checked when queued */
    r->again = 0;
    for (unsigned i = 0; rcmd_next(&it, argv, lens, &argc) == 1; i++) {
        if (r->done & (1ull << i))
            continue;
        if (send_command(s, cb_record, r, argc, argv, lens) != REDIS_OK)
            return -1;
        r->out |= 1ull << i;
    }
    return 0;
}

/* Connected, authenticated, and not being torn down by hiredis. */
static int usable(const struct sink_redis *s)
{
    return s->ac && s->state == ST_READY &&
           !(s->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING));
}

static void arm_flush(struct sink_redis *s)
{
    if (!evtimer_pending(s->ev_flush, NULL)) {
        struct timeval tv = {s->cfg.flush_ms / 1000, (s->cfg.flush_ms % 1000) * 1000};
        evtimer_add(s->ev_flush, &tv);
    }
}

static void send_some(struct sink_redis *s)
{
    refill(s);
    if (!usable(s) || s->stalled)
        return;
    while (s->cursor && s->inflight < s->max_inflight) {
        if (s->probing && s->inflight > 0)
            break; /* one record at a time until the refusal is over */
        struct rrec *r = s->cursor;
        if (s->inflight == 0 && s->inflight_plain == 0)
            s->progress_us = egr_mono_us(); /* the silence clock starts now */
        int rc = send_record(s, r);
        if (r->out) {
            s->cursor = r->next;
            s->n_unsent--;
            s->inflight++;
        }
        if (rc != 0)
            break;
    }
    if (s->n_unsent > 0)
        arm_flush(s);
}

/* After a transient refusal or a reconnection: start again from the oldest
 * record once nothing is in flight (so the queue order holds). */
static void resume(struct sink_redis *s)
{
    if (!usable(s) || s->inflight > 0 || evtimer_pending(s->ev_retry, NULL))
        return;
    if (s->stalled) {
        s->stalled = 0;
        s->probing = 1;
    }
    s->cursor = s->head;
    s->n_unsent = s->mem_count;
    send_some(s);
}

/* Errors after which the same command may succeed later. */
static int transient(const char *e)
{
    static const char *const prefixes[] = {
        "OOM", "LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "NOAUTH", "NOPERM",
        "READONLY", "CLUSTERDOWN", "NOREPLICAS", "MISCONF",
    };
    for (size_t i = 0; i < EGR_ARRAY_LEN(prefixes); i++) {
        size_t n = strlen(prefixes[i]);
        if (!strncmp(e, prefixes[i], n) && (e[n] == ' ' || e[n] == '\0'))
            return 1;
    }
    return 0;
}

/* The key argument of command i of r, for a message. */
static void command_key(const struct rrec *r, unsigned idx, char *out, size_t size)
{
    struct rcmd_iter it;
    const char *argv[RCMD_MAX_ARGS];
    size_t lens[RCMD_MAX_ARGS];
    unsigned argc;
    out[0] = '\0';
    if (rcmd_iter_init(&it, r->data, r->len, NULL, NULL) != EGR_OK)
        return;
    for (unsigned i = 0; rcmd_next(&it, argv, lens, &argc) == 1; i++) {
        if (i == idx && argc >= 2) {
            char cmd[32], key[KEY_SHOW_MAX * 4 + 8];
            show(cmd, sizeof(cmd), argv[0], lens[0]);
            show(key, sizeof(key), argv[1], lens[1]);
            snprintf(out, size, "%s %s", cmd, key);
            return;
        }
    }
}

static void retry_later(struct sink_redis *s)
{
    struct timeval tv = {s->retry_ms / 1000, (s->retry_ms % 1000) * 1000};
    evtimer_add(s->ev_retry, &tv);
    s->retry_ms = s->retry_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->retry_ms * 2;
}

static void on_refused(struct sink_redis *s, const struct redisReply *rep, const struct rrec *r,
                       unsigned idx)
{
    char msg[160], key[400];
    show(msg, sizeof(msg), rep->str, rep->len);
    command_key(r, idx, key, sizeof(key));
    if (transient(rep->str)) {
        if (!s->stalled) {
            s->stalled = 1;
            s->probing = 0;
            retry_later(s);
        }
        int seen = 0;
        unsigned nseen = s->nrefusal_seen < EGR_ARRAY_LEN(s->refusal_seen)
                             ? s->nrefusal_seen : (unsigned)EGR_ARRAY_LEN(s->refusal_seen);
        for (unsigned i = 0; i < nseen && !seen; i++)
            seen = !strcmp(s->refusal_seen[i], msg);
        snprintf(s->refusal, sizeof(s->refusal), "%s", msg);
        if (!seen) {
            unsigned slot = s->nrefusal_seen++ % EGR_ARRAY_LEN(s->refusal_seen);
            snprintf(s->refusal_seen[slot], sizeof(s->refusal_seen[slot]), "%s", msg);
            say(s, "%s refuses writes: %s (records kept, retrying)", s->ep.shown, msg);
        }
        set_error(s, msg);
        if (!strncmp(rep->str, "NOAUTH", 6) || !strncmp(rep->str, "READONLY", 8)) {
            /* The server changed under us (restarted with a password, made
             * a replica): a fresh connection authenticates again. */
            if (s->ac)
                redisAsyncDisconnect(s->ac);
        }
        return;
    }
    char line[600];
    snprintf(line, sizeof(line), "%s (%s)", msg, key);
    int record = idx == 0 && r->kind != RCMD_AGG;
    char *last = s->reject_msg[record ? 0 : 1];
    if (strcmp(last, line) != 0) {
        copy_cut(last, sizeof(s->reject_msg[0]), line);
        say(s, "%s refused %s: %s; %s", s->ep.shown,
            record ? "a record" : r->kind == RCMD_AGG ? "an aggregate update" : "a live PUBLISH",
            line, record ? "such records are dropped (counted as rejected)" : "not retried");
    }
    set_error(s, line);
}

/* A record with nothing out any more: gone if all its commands are
 * answered, else it waits to be sent again. */
static void record_settled(struct sink_redis *s, struct rrec *r)
{
    int clean = !r->again;
    s->inflight--;
    if (r->done == full_mask(r->ncmd))
        mem_remove(s, r);
    if (s->probing && clean && !s->stalled)
        s->probing = 0; /* the probe went through: pipeline again */
    if (s->inflight == 0)
        resume(s); /* what came back unanswered goes again, oldest first */
    send_some(s);
}

static void cb_record(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct sink_redis *s = ac->data;
    struct rrec *r = privdata;
    redisReply *rep = reply;
    if (!r->out)
        return; /* cannot happen */
    unsigned idx = (unsigned)__builtin_ctzll(r->out);
    uint64_t bit = 1ull << idx;
    r->out &= ~bit;
    if (!rep) {
        r->again = 1; /* connection gone: send again on the next one */
    } else {
        s->progress_us = egr_mono_us();
        if (rep->type == REDIS_REPLY_ERROR) {
            if (transient(rep->str)) {
                r->again = 1;
            } else {
                r->done |= bit;
                if (idx == 0 && r->kind != RCMD_AGG) {
                    s->st.dropped++;
                    s->st.rejected++;
                } else {
                    s->agg_refused++;
                }
            }
            on_refused(s, rep, r, idx);
        } else {
            r->done |= bit;
            if (idx == 0 && r->kind != RCMD_AGG) {
                s->st.sent++;
                if (s->refusal[0]) {
                    say(s, "%s accepts writes again", s->ep.shown);
                    s->refusal[0] = '\0';
                    s->nrefusal_seen = 0;
                }
                s->retry_ms = BACKOFF_MIN_MS;
            }
        }
    }
    if (!r->out)
        record_settled(s, r);
}

/* ---- heartbeat ---------------------------------------------------------- */

static uint64_t waiting(const struct sink_redis *s);

static void cb_plain(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct sink_redis *s = ac->data;
    redisReply *rep = reply;
    if (s->inflight_plain)
        s->inflight_plain--;
    if (rep) {
        s->progress_us = egr_mono_us();
        if (rep->type == REDIS_REPLY_ERROR) {
            char msg[160];
            show(msg, sizeof(msg), rep->str, rep->len);
            set_error(s, msg);
        }
    }
}

static void send_heartbeat(struct sink_redis *s)
{
    if (!usable(s))
        return;
    pthread_mutex_lock(&s->mx);
    uint64_t packets = s->hb_packets, bytes = s->hb_bytes, drops = s->hb_drops,
             active = s->hb_active;
    pthread_mutex_unlock(&s->mx);
    struct redis_heartbeat hb = {
        .version = EGRESSD_VERSION,
        .source = s->source,
        .start_us = s->start_us,
        .now_us = egr_wall_us(),
        .packets = packets,
        .bytes = bytes,
        .drops = drops,
        .active_flows = active,
        .queue_depth = waiting(s),
        .sent = s->st.sent,
        .queued = s->st.queued,
        .spooled = s->st.spooled,
        .dropped = s->st.dropped,
        .undelivered = s->st.undelivered,
        .reconnects = s->st.reconnects,
        .last_error = s->last_error,
        .ttl = s->cfg.heartbeat_ttl,
    };
    redis_schema_heartbeat(&s->schema, &hb, &s->hb_rb);
    struct rcmd_iter it;
    const char *argv[RCMD_MAX_ARGS];
    size_t lens[RCMD_MAX_ARGS];
    unsigned argc;
    if (!rcmd_ok(&s->hb_rb) ||
        rcmd_iter_init(&it, s->hb_rb.buf, s->hb_rb.len, NULL, NULL) != EGR_OK)
        return;
    if (s->inflight == 0 && s->inflight_plain == 0)
        s->progress_us = egr_mono_us();
    while (rcmd_next(&it, argv, lens, &argc) == 1) {
        if (send_command(s, cb_plain, NULL, argc, argv, lens) != REDIS_OK)
            return;
        s->inflight_plain++;
    }
}

/* ---- aggregates ---------------------------------------------------------- */

/* Caller's side, under mx: the waiting sums become batches in the inbox. */
static void inbox_push(struct sink_redis *s, struct rrec *r);

static void agg_batch(void *arg, struct rcmd_buf *b)
{
    struct sink_redis *s = arg;
    struct rrec *r = rcmd_ok(b) ? rrec_new(b->buf, (uint32_t)b->len) : NULL;
    if (!r) {
        s->in_agg_lost += b->ncmd;
        return;
    }
    inbox_push(s, r);
}

static void agg_flush_locked(struct sink_redis *s)
{
    if (s->agg && redis_agg_count(s->agg) > 0)
        redis_agg_flush(s->agg, &s->schema, &s->agg_rb, agg_batch, s);
    s->agg_flushed_us = egr_mono_us();
}

/* Caller's side, under mx. While Redis does not take writes the sums stay
 * here and keep growing; if the table fills meanwhile, further records are
 * not counted (reported at the end). */
static void agg_record(struct sink_redis *s, const struct flow_record *rec)
{
    if (!s->agg || !redis_schema_counts_as_egress(rec))
        return;
    if (!redis_agg_add(s->agg, rec)) {
        if (!s->ready) {
            s->agg_skipped++;
            return;
        }
        agg_flush_locked(s); /* full: the sums go now */
        redis_agg_add(s->agg, rec); /* cannot fail on an empty table */
    }
    if (s->ready && egr_mono_us() - s->agg_flushed_us >= AGG_FLUSH_MS * 1000u)
        agg_flush_locked(s);
}

/* ---- replies -------------------------------------------------------------- */

/* The sink only ever asks whether a reply is an error, and which. hiredis'
 * default reply objects cost a malloc and a free for every answer (tens of
 * thousands a second); here every reply but an error is one shared,
 * immutable object, and only errors are allocated. The callbacks run one
 * reply at a time, so nothing keeps a pointer to the shared object. */
static redisReply ok_reply = {.type = REDIS_REPLY_STATUS};

static void *light_string(const redisReadTask *task, char *str, size_t len)
{
    if (task->type != REDIS_REPLY_ERROR)
        return &ok_reply;
    redisReply *r = calloc(1, sizeof(*r));
    char *copy = malloc(len + 1);
    if (!r || !copy) {
        free(r);
        free(copy);
        return NULL; /* hiredis reports out of memory */
    }
    memcpy(copy, str, len);
    copy[len] = '\0';
    r->type = REDIS_REPLY_ERROR;
    r->str = copy;
    r->len = len;
    return r;
}

static void *light_array(const redisReadTask *task, int elements)
{
    return &ok_reply;
}

static void *light_integer(const redisReadTask *task, long long value)
{
    return &ok_reply;
}

static void *light_nil(const redisReadTask *task)
{
    return &ok_reply;
}

static void light_free(void *obj)
{
    redisReply *r = obj;
    if (!r || r == &ok_reply)
        return;
    free(r->str);
    free(r);
}

static redisReplyObjectFunctions light_replies = {
    light_string, light_array, light_integer, light_nil, light_free,
};

/* ---- connection --------------------------------------------------------- */

static void connect_now(struct sink_redis *s);

static void schedule_reconnect(struct sink_redis *s)
{
    if (s->closing || evtimer_pending(s->ev_reconnect, NULL))
        return;
    struct timeval tv = {s->backoff_ms / 1000, (s->backoff_ms % 1000) * 1000};
    evtimer_add(s->ev_reconnect, &tv);
    s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
}

/* Records (not aggregate batches) not yet written. */
static uint64_t waiting(const struct sink_redis *s)
{
    return s->mem_count - s->mem_agg + (s->spool ? spool_count(s->spool) : 0);
}

/* The connection is gone (or never came): note it once, try again later. */
static void went_down(struct sink_redis *s, const char *why)
{
    int was = s->state;
    s->state = ST_DOWN;
    s->ac = NULL;
    s->hs_pending = 0;
    if (!s->hs_failed)
        set_error(s, why); /* else the refusal stays the error to report */
    if (!s->down_logged) {
        s->down_logged = 1;
        s->down_since_us = egr_mono_us();
        if (was == ST_READY || was == ST_HANDSHAKE)
            say(s, "connection to %s lost: %s (%" PRIu64 " records waiting; reconnecting)",
                s->ep.shown, why, waiting(s));
        else
            say(s, "cannot connect to %s: %s (retrying, backoff up to %u s)", s->ep.shown, why,
                BACKOFF_MAX_MS / 1000);
    }
    schedule_reconnect(s);
}

static void on_ready(struct sink_redis *s)
{
    s->state = ST_READY;
    s->backoff_ms = BACKOFF_MIN_MS;
    s->hs_failed = 0;
    s->progress_us = egr_mono_us();
    if (s->connections++ > 0)
        s->st.reconnects++;
    if (s->down_logged || s->connections == 1) {
        if (s->connections == 1 && !s->down_logged) {
            char id[KEY_SHOW_MAX * 4 + 8];
            show(id, sizeof(id), s->sensor, strlen(s->sensor));
            say(s, "connected to %s as sensor \"%s\"", s->ep.shown, id);
        }
        else
            say(s, "connected to %s after %.1f s (%" PRIu64 " records waiting)", s->ep.shown,
                (double)(egr_mono_us() - s->down_since_us) / 1e6, waiting(s));
    }
    s->down_logged = 0;
    s->stalled = 0;
    s->probing = s->refusal[0] != '\0';
    evtimer_del(s->ev_retry);
    send_heartbeat(s);
    resume(s);
}

static void cb_handshake(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct sink_redis *s = ac->data;
    redisReply *rep = reply;
    const char *what = privdata;
    if (!rep || s->ac != ac)
        return; /* the connection is going; its disconnect says so */
    s->progress_us = egr_mono_us();
    if (rep->type == REDIS_REPLY_ERROR) {
        char msg[200], line[300];
        show(msg, sizeof(msg), rep->str, rep->len);
        snprintf(line, sizeof(line), "%s failed: %s", what, msg);
        if (!s->hs_failed || strcmp(s->last_error, line) != 0)
            say(s, "%s: %s (records kept, retrying)", s->ep.shown, line);
        s->hs_failed = 1;
        s->down_logged = 1;
        if (!s->down_since_us)
            s->down_since_us = egr_mono_us();
        set_error(s, line);
        redisAsyncDisconnect(ac);
        return;
    }
    if (s->hs_pending && --s->hs_pending == 0 && s->state == ST_HANDSHAKE)
        on_ready(s);
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct sink_redis *s = ac->data;
    if (s->ac != ac)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback */
        went_down(s, ac->errstr[0] ? ac->errstr : "connection failed");
        return;
    }
    s->progress_us = egr_mono_us();
    s->state = ST_HANDSHAKE;
    s->hs_pending = 0;
    const char *user = s->cfg.username[0] ? s->cfg.username : s->ep.user;
    const char *pass = s->cfg.password[0] ? s->cfg.password : s->ep.pass;
    if (pass[0]) {
        const char *argv[3] = {"AUTH", user, pass};
        size_t lens[3] = {4, strlen(user), strlen(pass)};
        if (user[0])
            redisAsyncCommandArgv(ac, cb_handshake, (void *)"AUTH", 3, argv, lens);
        else
            redisAsyncCommandArgv(ac, cb_handshake, (void *)"AUTH", 2,
                                  (const char *[]){"AUTH", pass}, (size_t[]){4, lens[2]});
        s->hs_pending++;
    }
    if (s->ep.db) {
        char db[16];
        int n = snprintf(db, sizeof(db), "%u", s->ep.db);
        redisAsyncCommandArgv(ac, cb_handshake, (void *)"SELECT", 2,
                              (const char *[]){"SELECT", db}, (size_t[]){6, (size_t)n});
        s->hs_pending++;
    }
    if (s->hs_pending == 0)
        on_ready(s);
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct sink_redis *s = ac->data;
    if (s->ac != ac || s->closing)
        return; /* freed on purpose (watchdog, close) */
    went_down(s, ac->errstr[0] ? ac->errstr : status == REDIS_OK ? "closed" : "connection lost");
}

static void connect_now(struct sink_redis *s)
{
    if (s->ac || s->closing)
        return;
    redisAsyncContext *ac = s->ep.is_unix ? redisAsyncConnectUnix(s->ep.host)
                                          : redisAsyncConnect(s->ep.host, s->ep.port);
    if (!ac) {
        went_down(s, "out of memory");
        return;
    }
    if (ac->err) {
        char why[200];
        snprintf(why, sizeof(why), "%s", ac->errstr);
        redisAsyncFree(ac);
        went_down(s, why);
        return;
    }
    ac->data = s;
    ac->c.reader->fn = &light_replies;
    if (redisLibeventAttach(ac, s->base) != REDIS_OK) {
        redisAsyncFree(ac);
        went_down(s, "cannot attach to the event loop");
        return;
    }
    s->ac = ac;
    s->state = ST_CONNECTING;
    s->progress_us = egr_mono_us();
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
}

/* Drops the connection from outside hiredis' callbacks. */
static void drop_connection(struct sink_redis *s, const char *why)
{
    redisAsyncContext *ac = s->ac;
    if (!ac)
        return;
    s->ac = NULL; /* on_disconnect sees a stranger and stays quiet */
    redisAsyncFree(ac);
    went_down(s, why);
}

/* ---- timers -------------------------------------------------------------- */

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    send_some(arg);
}

static void on_reconnect_timer(evutil_socket_t fd, short what, void *arg)
{
    connect_now(arg);
}

static void on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
    resume(arg);
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    struct sink_redis *s = arg;
    if (!s->ac)
        return;
    int busy = s->state != ST_READY || s->inflight > 0 || s->inflight_plain > 0;
    uint64_t idle = egr_mono_us() - s->progress_us;
    if (busy && idle > (uint64_t)s->cfg.timeout * 1000000u) {
        char why[120];
        snprintf(why, sizeof(why), "no answer for %u s", s->cfg.timeout);
        if (!s->down_logged)
            say(s, "%s: %s, reconnecting (%" PRIu64 " records waiting)", s->ep.shown, why,
                waiting(s));
        s->down_logged = 1;
        s->down_since_us = egr_mono_us();
        drop_connection(s, why);
    }
}

static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    send_heartbeat(arg);
}

/* ---- enqueue -------------------------------------------------------------- */

/* I/O thread: a record from the inbox goes to the memory queue, else the
 * spool, else it is dropped (counted). r is consumed. */
static void enqueue(struct sink_redis *s, struct rrec *r)
{
    s->st.records++;
    uint32_t len = r->len;
    if ((!s->spool || spool_count(s->spool) == 0) && mem_fits(s, len)) {
        mem_append(s, r);
        s->st.queued++;
        goto queued;
    }
    if (s->spool) {
        struct egr_err e = {""};
        int rc = spool_push(s->spool, r->data, len, &e);
        if (rc == EGR_OK) {
            free(r);
            s->st.spooled++;
            if (!s->spilling) {
                s->spilling = 1;
                say(s, "memory queue full (%" PRIu64 " records, %" PRIu64 " bytes): spooling to %s",
                    s->mem_count, s->mem_bytes,
                    spool_path(s->spool)[0] ? spool_path(s->spool) : "an unnamed file");
            }
            goto queued;
        }
        if (rc < 0 && !s->dropping) {
            set_error(s, e.msg);
            say(s, "%s: dropping records", e.msg);
        } else if (!s->dropping) {
            say(s, "spool full (%" PRIu64 " of %" PRIu64 " bytes): dropping records",
                spool_used(s->spool), spool_capacity(s->spool));
        }
    } else if (!s->dropping) {
        say(s, "memory queue full and no spool: dropping records");
    }
    free(r);
    if (!s->dropping) {
        s->dropping = 1;
        s->drop_mark = s->st.dropped;
    }
    s->st.dropped++;
    return;
queued:
    if (s->dropping) {
        s->dropping = 0;
        say(s, "taking records again (%" PRIu64 " dropped while full)",
            s->st.dropped - s->drop_mark);
    }
}

/* I/O thread: an aggregate batch waits in memory only. */
static void enqueue_agg(struct sink_redis *s, struct rrec *r)
{
    if (s->mem_agg_bytes + r->len > AGG_MEM_MAX) {
        s->agg_unsent += r->ncmd;
        free(r);
        return;
    }
    mem_append(s, r);
    s->mem_agg++;
    s->mem_agg_bytes += r->len;
}

/* ---- the I/O thread ------------------------------------------------------ */

static void wake(struct sink_redis *s)
{
    uint64_t one = 1;
    ssize_t n = write(s->wake_fd, &one, sizeof(one));
    (void)n; /* EAGAIN: the counter is already non-zero, the thread will wake */
}

/* Caller's side, under mx. The thread is woken once a batch has gathered
 * (redis.batch_records); what gathers slower is taken by its flush_ms
 * timer. A wake per record would cost two context switches per record. */
static void inbox_push(struct sink_redis *s, struct rrec *r)
{
    r->next = NULL;
    if (s->in_tail)
        s->in_tail->next = r;
    else
        s->in_head = r;
    s->in_tail = r;
    s->in_count++;
    s->in_bytes += r->len;
    if (s->in_count == s->cfg.batch_records)
        wake(s);
}

/* Caller's side: a formatted record (front_rb) into the inbox, unless the
 * thread is so far behind that the inbox is over its bound. */
static void hand_over(struct sink_redis *s)
{
    struct rrec *r = rcmd_ok(&s->front_rb) ? rrec_new(s->front_rb.buf, (uint32_t)s->front_rb.len)
                                           : NULL;
    s->in_records++;
    if (!r || s->in_count >= (uint64_t)s->cfg.queue_max_records + INBOX_SLACK ||
        s->in_bytes + (r ? r->len : 0) > s->cfg.queue_max_bytes + (uint64_t)INBOX_SLACK * 4096u) {
        s->in_dropped++;
        free(r);
        return;
    }
    inbox_push(s, r);
}

/* Publishes the counters for other threads. Under mx. */
static void publish(struct sink_redis *s)
{
    s->snap = s->st;
    s->snap.enabled = 1;
    s->snap.queue_depth = s->mem_count - s->mem_agg;
    s->snap.spool_depth = s->spool ? spool_count(s->spool) : 0;
    s->ready = usable(s) && !s->stalled && !s->finished;
    if (!s->ready && s->agg_skipped && !s->agg_full_noted) {
        s->agg_full_noted = 1;
        say(s, "aggregate table full while %s does not take writes: the aggregates of further "
            "records are not counted until it does", s->ep.shown);
    }
    if (s->ready)
        s->agg_full_noted = 0;
}

/* The eventfd, or the inbox timer (fd -1): the loop around takes the
 * inbox after every event. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    uint64_t v;
    if (fd >= 0) {
        ssize_t n = read(fd, &v, sizeof(v));
        (void)n;
    }
}

/* Takes what the callers handed over. Returns the requests seen. */
static void take_inbox(struct sink_redis *s, int *heartbeat, int *drain, int *stop)
{
    pthread_mutex_lock(&s->mx);
    struct rrec *r = s->in_head;
    s->in_head = s->in_tail = NULL;
    s->in_count = s->in_bytes = 0;
    /* enqueue() counts the records it takes; those the inbox dropped are
     * counted here. */
    uint64_t lost = s->in_dropped;
    s->st.records += lost;
    s->st.dropped += lost;
    s->in_records = s->in_dropped = 0;
    s->agg_unsent += s->in_agg_lost;
    s->in_agg_lost = 0;
    *heartbeat = s->req_heartbeat;
    *drain = s->req_drain && !s->drain_done;
    *stop = s->req_stop;
    s->req_heartbeat = 0;
    pthread_mutex_unlock(&s->mx);

    if (lost)
        say(s, "the Redis thread fell behind: %" PRIu64 " records dropped at hand-over", lost);
    while (r) {
        struct rrec *next = r->next;
        if (r->kind == KIND_RAW_FLOW) {
            /* Formatted here, on the I/O thread; its aggregates are summed
             * in the caller's table (under the lock, as the caller does). */
            const struct flow_record *rec = (const struct flow_record *)(const void *)r->data;
            redis_schema_flow(&s->schema, rec, &s->rb);
            struct rrec *f = rcmd_ok(&s->rb) ? rrec_new(s->rb.buf, (uint32_t)s->rb.len) : NULL;
            pthread_mutex_lock(&s->mx);
            agg_record(s, rec);
            pthread_mutex_unlock(&s->mx);
            free(r);
            if (f) {
                enqueue(s, f);
            } else {
                s->st.records++;
                s->st.dropped++;
                set_error(s, "out of memory formatting a record");
            }
        } else if (r->kind == RCMD_AGG) {
            enqueue_agg(s, r);
        } else {
            enqueue(s, r);
        }
        r = next;
    }
    if (s->n_unsent >= s->cfg.batch_records)
        send_some(s);
    else if (s->n_unsent)
        arm_flush(s);
}

static int drain_now(struct sink_redis *s);

static void *io_main(void *arg)
{
    struct sink_redis *s = arg;
    int heartbeat, drain, stop;
    for (;;) {
        event_base_loop(s->base, EVLOOP_ONCE);
        take_inbox(s, &heartbeat, &drain, &stop);
        if (heartbeat)
            send_heartbeat(s);
        if (drain) {
            int rc = drain_now(s);
            pthread_mutex_lock(&s->mx);
            publish(s);
            s->drain_rc = rc;
            s->drain_done = 1;
            pthread_cond_broadcast(&s->cv);
            pthread_mutex_unlock(&s->mx);
        }
        pthread_mutex_lock(&s->mx);
        publish(s);
        pthread_mutex_unlock(&s->mx);
        if (stop)
            break;
    }
    /* The last heartbeat: send what waits and give the replies a moment. */
    send_some(s);
    uint64_t until = egr_mono_us() + FINAL_FLUSH_MS * 1000u;
    while (usable(s) && s->inflight_plain > 0 && egr_mono_us() < until)
        event_base_loop(s->base, EVLOOP_ONCE);
    return NULL;
}

/* ---- sink ops --------------------------------------------------------- */

static int sr_flow(void *self, const struct flow_record *rec)
{
    struct sink_redis *s = self;
    pthread_mutex_lock(&s->mx);
    int raw = s->in_count < RAW_MAX;
    pthread_mutex_unlock(&s->mx);
    if (raw) {
        struct rrec *r = malloc(sizeof(*r) + sizeof(*rec));
        if (r) {
            memset(r, 0, sizeof(*r));
            r->kind = KIND_RAW_FLOW;
            r->len = sizeof(*rec);
            memcpy(r->data, rec, sizeof(*rec));
            pthread_mutex_lock(&s->mx);
            s->in_records++;
            inbox_push(s, r);
            pthread_mutex_unlock(&s->mx);
            return EGR_OK;
        }
    }
    redis_schema_flow(&s->schema, rec, &s->front_rb);
    pthread_mutex_lock(&s->mx);
    hand_over(s);
    agg_record(s, rec);
    pthread_mutex_unlock(&s->mx);
    return EGR_OK; /* the capture never stops for Redis */
}

static int sr_alert(void *self, const struct alert_record *a)
{
    struct sink_redis *s = self;
    redis_schema_alert(&s->schema, a, &s->front_jb, &s->front_rb);
    pthread_mutex_lock(&s->mx);
    hand_over(s);
    pthread_mutex_unlock(&s->mx);
    return EGR_OK;
}

void sink_redis_progress(void *self, const struct run_stats *st)
{
    struct sink_redis *s = self;
    pthread_mutex_lock(&s->mx);
    s->hb_packets = st->packets;
    s->hb_bytes = st->bytes;
    s->hb_drops = st->drop_kernel + st->drop_ifdrop;
    s->hb_active = st->flow.active;
    pthread_mutex_unlock(&s->mx);
}

static int sr_stats(void *self, const struct run_stats *st)
{
    struct sink_redis *s = self;
    sink_redis_progress(s, st);
    pthread_mutex_lock(&s->mx);
    s->req_heartbeat = 1;
    wake(s);
    pthread_mutex_unlock(&s->mx);
    return EGR_OK;
}

/* The thread sends on its own; the last heartbeat is waited for at close. */
static int sr_flush(void *self)
{
    struct sink_redis *s = self;
    pthread_mutex_lock(&s->mx);
    int failed = s->drain_done ? s->drain_rc : EGR_OK;
    pthread_mutex_unlock(&s->mx);
    return failed;
}

static const char *sr_error(void *self)
{
    const struct sink_redis *s = self;
    return s->failed ? s->errmsg : "";
}

/* Records whose stream entry has not been written. */
static uint64_t undelivered_now(const struct sink_redis *s)
{
    uint64_t n = s->spool ? spool_count(s->spool) : 0;
    for (const struct rrec *r = s->head; r; r = r->next)
        if (!(r->done & 1) && r->kind != RCMD_AGG)
            n++;
    return n;
}

/* At the end: what is still in memory goes to a named spool for the next
 * run (only the commands not yet answered), behind what the spool holds. */
static uint64_t keep_for_next_run(struct sink_redis *s)
{
    if (!s->spool || !spool_path(s->spool)[0])
        return 0;
    for (struct rrec *r = s->head, *next; r; r = next) {
        next = r->next;
        if ((r->done & 1) || r->kind == RCMD_AGG)
            continue; /* aggregate batches are not kept (counted as unsent) */
        struct rcmd_iter it;
        const char *argv[RCMD_MAX_ARGS];
        size_t lens[RCMD_MAX_ARGS];
        unsigned argc;
        if (rcmd_iter_init(&it, r->data, r->len, NULL, NULL) != EGR_OK)
            continue;
        rcmd_reset(&s->rb, (enum rcmd_kind)r->kind);
        for (unsigned i = 0; rcmd_next(&it, argv, lens, &argc) == 1; i++) {
            if (r->done & (1ull << i))
                continue;
            rcmd_begin(&s->rb);
            for (unsigned a = 0; a < argc; a++)
                rcmd_arg(&s->rb, argv[a], lens[a]);
            rcmd_end(&s->rb);
        }
        struct egr_err e;
        if (rcmd_ok(&s->rb) && spool_push(s->spool, s->rb.buf, (uint32_t)s->rb.len, &e) == EGR_OK &&
            !r->out)
            mem_remove(s, r); /* one still in flight is freed at close */
    }
    return spool_count(s->spool);
}

/* I/O thread: the end of a run (see sink_redis_drain). */
static int drain_now(struct sink_redis *s)
{
    uint64_t deadline = egr_mono_us() + (uint64_t)s->cfg.drain_timeout * 1000000u;
    int hb, dr, st;
    take_inbox(s, &hb, &dr, &st);
    /* Records formatted just now added to the sums: they go too. */
    pthread_mutex_lock(&s->mx);
    agg_flush_locked(s);
    pthread_mutex_unlock(&s->mx);
    take_inbox(s, &hb, &dr, &st);
    send_some(s);
    while ((waiting(s) > 0 || s->mem_agg > 0) && egr_mono_us() < deadline) {
        event_base_loop(s->base, EVLOOP_ONCE);
        send_some(s);
    }
    s->finished = 1;
    uint64_t left = undelivered_now(s);
    s->st.undelivered = left;
    for (const struct rrec *r = s->head; r; r = r->next)
        if (r->kind == RCMD_AGG)
            s->agg_unsent += r->ncmd - (unsigned)__builtin_popcountll(r->done);
    /* When records are missing too, the summary below says so; aggregates
     * alone are worth a line of their own. */
    pthread_mutex_lock(&s->mx);
    uint64_t skipped = s->agg_skipped;
    pthread_mutex_unlock(&s->mx);
    if ((s->agg_unsent || skipped) && left == 0 && s->st.dropped == 0)
        say(s, "aggregates incomplete: %" PRIu64 " updates not written, %" PRIu64
            " records not counted", s->agg_unsent, skipped);
    if (s->agg_refused)
        say(s, "%" PRIu64 " aggregate updates were refused by Redis (not retried)", s->agg_refused);
    if (left == 0 && s->st.dropped == 0)
        return EGR_OK;

    uint64_t kept = left ? keep_for_next_run(s) : 0;
    char tail[600] = "";
    size_t n = 0;
    if (left)
        n += (size_t)snprintf(tail + n, sizeof(tail) - n,
                              "; %" PRIu64 " still waiting after redis.drain_timeout (%u s)", left,
                              s->cfg.drain_timeout);
    if (kept)
        n += (size_t)snprintf(tail + n, sizeof(tail) - n,
                              ", %" PRIu64 " kept in %s for the next run", kept,
                              spool_path(s->spool));
    if (s->st.dropped > s->st.rejected)
        n += (size_t)snprintf(tail + n, sizeof(tail) - n,
                              "; %" PRIu64 " dropped (queue and spool full)",
                              s->st.dropped - s->st.rejected);
    if (s->st.rejected)
        n += (size_t)snprintf(tail + n, sizeof(tail) - n, "; %" PRIu64 " refused by Redis",
                              s->st.rejected);
    if (s->last_error[0] && n < sizeof(tail))
        snprintf(tail + n, sizeof(tail) - n, "; last error: %s", s->last_error);
    s->failed = EGR_EIO;
    char msg[1200];
    snprintf(msg, sizeof(msg), "redis: %" PRIu64 " of %" PRIu64 " records not delivered to %s%s",
             left + s->st.dropped, s->st.records, s->ep.shown, tail);
    copy_cut(s->errmsg, sizeof(s->errmsg), msg);
    return s->failed;
}

int sink_redis_drain(void *self)
{
    struct sink_redis *s = self;
    pthread_mutex_lock(&s->mx);
    agg_flush_locked(s);
    s->req_drain = 1;
    wake(s);
    while (!s->drain_done)
        pthread_cond_wait(&s->cv, &s->mx);
    int rc = s->drain_rc;
    pthread_mutex_unlock(&s->mx);
    return rc;
}

void sink_redis_counters(void *self, struct redis_stats *out)
{
    struct sink_redis *s = self;
    pthread_mutex_lock(&s->mx);
    *out = s->snap;
    /* Handed over, not yet seen by the thread. */
    out->records += s->in_records;
    out->dropped += s->in_dropped;
    out->queue_depth += s->in_count;
    out->enabled = 1;
    pthread_mutex_unlock(&s->mx);
}

void sink_redis_poll(void *self)
{
    /* The thread needs no pumping; the sums go out on time even when no
     * record arrives to carry the check. */
    struct sink_redis *s = self;
    pthread_mutex_lock(&s->mx);
    if (s->ready && s->agg && redis_agg_count(s->agg) > 0 &&
        egr_mono_us() - s->agg_flushed_us >= AGG_FLUSH_MS * 1000u)
        agg_flush_locked(s);
    pthread_mutex_unlock(&s->mx);
}

static void sr_free(struct sink_redis *s)
{
    struct event *evs[] = {s->ev_flush, s->ev_reconnect, s->ev_retry, s->ev_watchdog,
                           s->ev_heartbeat, s->ev_wake, s->ev_inbox};
    for (size_t i = 0; i < EGR_ARRAY_LEN(evs); i++)
        if (evs[i])
            event_free(evs[i]);
    while (s->head)
        mem_remove(s, s->head);
    while (s->in_head) {
        struct rrec *r = s->in_head;
        s->in_head = r->next;
        free(r);
    }
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    pthread_mutex_destroy(&s->mx);
    pthread_cond_destroy(&s->cv);
    spool_close(s->spool);
    if (s->own_base && s->base)
        event_base_free(s->base);
    rcmd_free(&s->rb);
    rcmd_free(&s->hb_rb);
    rcmd_free(&s->agg_rb);
    rcmd_free(&s->front_rb);
    redis_agg_free(s->agg);
    jbuf_free(&s->jb);
    jbuf_free(&s->front_jb);
    free(s->popbuf);
    free(s->resp);
    free(s);
}

static void sr_close(void *self)
{
    struct sink_redis *s = self;
    if (s->thread_started) {
        pthread_mutex_lock(&s->mx);
        s->req_stop = 1;
        wake(s);
        pthread_mutex_unlock(&s->mx);
        pthread_join(s->thread, NULL);
    }
    s->closing = 1;
    s->finished = 1; /* nothing leaves the spool any more */
    if (s->ac) {
        redisAsyncContext *ac = s->ac;
        s->ac = NULL;
        redisAsyncFree(ac); /* answers what is in flight with NULL */
    }
    sr_free(s);
}

static const struct sink_ops sink_redis_ops = {
    .name = "redis",
    .flow = sr_flow,
    .alert = sr_alert,
    .stats = sr_stats,
    .flush = sr_flush,
    .close = sr_close,
    .error = sr_error,
};

void *sink_redis_self(const struct sink *s)
{
    return s->ops == &sink_redis_ops ? s->self : NULL;
}

/* The sensor id as a file name: anything but [A-Za-z0-9._-] becomes '_'. */
static void file_name(const char *id, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; id[i] && o + 1 < size; i++) {
        unsigned char c = (unsigned char)id[i];
        out[o++] = (isalnum(c) || c == '.' || c == '_' || c == '-') && !(i == 0 && c == '.')
                       ? (char)c
                       : '_';
    }
    out[o] = '\0';
}

static int open_spool(struct sink_redis *s, struct egr_err *err)
{
    const struct sink_redis_config *c = &s->cfg;
    if (c->spool_max_bytes == 0)
        return EGR_OK;
    if (c->spool_max_bytes < SPOOL_MIN_CAPACITY)
        return egr_fail(err, EGR_EINVAL,
                        "redis.spool_max_bytes: %" PRIu64 " is below %u (or 0 for no spool)",
                        c->spool_max_bytes, SPOOL_MIN_CAPACITY);
    if (!c->spool_dir[0]) {
        const char *tmp = getenv("TMPDIR");
        return spool_open_temp(tmp && tmp[0] ? tmp : "/tmp", c->spool_max_bytes, &s->spool, err);
    }
    if (mkdir(c->spool_dir, 0700) != 0 && errno != EEXIST)
        return egr_fail(err, EGR_EIO, "redis.spool_dir: %s: %s", c->spool_dir, strerror(errno));
    char name[160], path[1400];
    file_name(s->sensor, name, sizeof(name));
    snprintf(path, sizeof(path), "%s/%s.spool", c->spool_dir, name);
    struct spool_recovery rec;
    int rc = spool_open(path, c->spool_max_bytes, &s->spool, &rec, err);
    if (rc != EGR_OK)
        return rc;
    if (rec.records || rec.torn_tail)
        say(s, "%s: %" PRIu64 " records from an earlier run to deliver first%s", path, rec.records,
            rec.torn_tail ? " (a damaged record at the end was discarded)" : "");
    if (rec.records) {
        s->st.records += rec.records;
        s->spilling = 1;
    }
    return EGR_OK;
}

int sink_redis_open(const struct sink_redis_config *cfg, const char *source, sink_redis_log_fn log, void *log_arg, struct sink *out,
                    struct egr_err *err)
{
    struct sink_redis *s = calloc(1, sizeof(*s));
    if (!s)
        return egr_fail(err, EGR_ENOMEM, "redis: out of memory");
    s->wake_fd = -1;
    pthread_mutex_init(&s->mx, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->cfg = *cfg;
    snprintf(s->source, sizeof(s->source), "%s", source ? source : "");
    s->log = log;
    s->log_arg = log_arg;
    rcmd_init(&s->rb);
    rcmd_init(&s->hb_rb);
    rcmd_init(&s->agg_rb);
    rcmd_init(&s->front_rb);
    jbuf_init(&s->jb);
    jbuf_init(&s->front_jb);
    int rc = redis_url_parse(cfg->url, &s->ep, err);
    if (rc != EGR_OK)
        goto fail;
    if (!cfg->prefix[0]) {
        rc = egr_fail(err, EGR_EINVAL, "redis.prefix: must not be empty");
        goto fail;
    }
    if (cfg->sensor_id[0]) {
        snprintf(s->sensor, sizeof(s->sensor), "%s", cfg->sensor_id);
    } else if (gethostname(s->sensor, sizeof(s->sensor) - 1) != 0 || !s->sensor[0]) {
        snprintf(s->sensor, sizeof(s->sensor), "unknown");
    }
    s->schema = (struct redis_schema){
        .prefix = s->cfg.prefix,
        .sensor = s->sensor,
        .flows_maxlen = cfg->flows_maxlen,
        .alerts_maxlen = cfg->alerts_maxlen,
        .aggregate_ttl = cfg->aggregate_ttl,
    };
    s->max_inflight = (uint64_t)cfg->batch_records * 8;
    if (s->max_inflight < 64)
        s->max_inflight = 64;
    s->backoff_ms = s->retry_ms = BACKOFF_MIN_MS;
    s->start_us = egr_wall_us();
    s->log_window = time(NULL);
    if ((rc = open_spool(s, err)) != EGR_OK)
        goto fail;
    if (cfg->aggregate_ttl && (rc = redis_agg_new(AGG_MAX_ENTRIES, &s->agg, err)) != EGR_OK)
        goto fail;

    s->agg_flushed_us = egr_mono_us();
    s->base = event_base_new();
    s->own_base = 1;
    s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->wake_fd < 0) {
        rc = egr_fail(err, EGR_EIO, "redis: eventfd: %s", strerror(errno));
        goto fail;
    }
    if (!s->base ||
        !(s->ev_wake = event_new(s->base, s->wake_fd, EV_READ | EV_PERSIST, on_wake, s)) ||
        !(s->ev_inbox = event_new(s->base, -1, EV_PERSIST, on_wake, s)) ||
        !(s->ev_flush = evtimer_new(s->base, on_flush, s)) ||
        !(s->ev_reconnect = evtimer_new(s->base, on_reconnect_timer, s)) ||
        !(s->ev_retry = evtimer_new(s->base, on_retry_timer, s)) ||
        !(s->ev_watchdog = event_new(s->base, -1, EV_PERSIST, on_watchdog, s)) ||
        !(s->ev_heartbeat = event_new(s->base, -1, EV_PERSIST, on_heartbeat, s))) {
        rc = egr_fail(err, EGR_ENOMEM, "redis: cannot set up the event loop");
        goto fail;
    }
    struct timeval wd = {WATCHDOG_MS / 1000, (WATCHDOG_MS % 1000) * 1000};
    struct timeval hb = {(time_t)cfg->heartbeat_interval, 0};
    event_add(s->ev_watchdog, &wd);
    event_add(s->ev_heartbeat, &hb);
    event_add(s->ev_wake, NULL);
    struct timeval fl = {cfg->flush_ms / 1000, (cfg->flush_ms % 1000) * 1000};
    event_add(s->ev_inbox, &fl);

    /* A peer that closes the socket must give hiredis an EPIPE error, not
     * kill the sensor; only a default disposition is changed. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);

    connect_now(s);
    /* From here on only the thread touches the base and the connection. */
    if (pthread_create(&s->thread, NULL, io_main, s) != 0) {
        rc = egr_fail(err, EGR_ENOMEM, "redis: cannot start the I/O thread");
        goto fail;
    }
    s->thread_started = 1;
    out->ops = &sink_redis_ops;
    out->self = s;
    return EGR_OK;
fail:
    sr_free(s);
    return rc;
}

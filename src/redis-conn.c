/* redis-conn.c - the Redis sink's connection: hiredis async on the I/O
 * thread's event base, AUTH/SELECT before anything else, reconnection with a
 * doubling backoff, the watchdog for a server that stops answering, and
 * light reply objects (only errors are allocated).
 *
 * Threads: the sink's I/O thread only.
 */
#include "redis-int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
int rs_send_command(struct sink_redis *s, redisCallbackFn *fn, void *privdata,
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

/* Connected, authenticated, and not being torn down by hiredis. */
int rs_usable(const struct sink_redis *s)
{
    return s->ac && s->state == ST_READY &&
           !(s->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING));
}

/* Errors after which the same command may succeed later. */
int rs_transient(const char *e)
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

static void schedule_reconnect(struct sink_redis *s)
{
    if (s->closing || evtimer_pending(s->ev_reconnect, NULL))
        return;
    struct timeval tv = {s->backoff_ms / 1000, (s->backoff_ms % 1000) * 1000};
    evtimer_add(s->ev_reconnect, &tv);
    s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
}

/* The connection is gone (or never came): note it once, try again later. */
void rs_went_down(struct sink_redis *s, const char *why)
{
    int was = s->state;
    s->state = ST_DOWN;
    s->ac = NULL;
    s->hs_pending = 0;
    if (!s->hs_failed)
        rs_set_error(s, why); /* else the refusal stays the error to report */
    if (!s->down_logged) {
        s->down_logged = 1;
        s->down_since_us = egr_mono_us();
        if (was == ST_READY || was == ST_HANDSHAKE)
            rs_say(s, "connection to %s lost: %s (%" PRIu64 " records waiting; reconnecting)",
                s->ep.shown, why, rs_waiting(s));
        else
            rs_say(s, "cannot connect to %s: %s (retrying, backoff up to %u s)", s->ep.shown, why,
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
            rs_show(id, sizeof(id), s->sensor, strlen(s->sensor));
            rs_say(s, "connected to %s as sensor \"%s\"", s->ep.shown, id);
        }
        else
            rs_say(s, "connected to %s after %.1f s (%" PRIu64 " records waiting)", s->ep.shown,
                (double)(egr_mono_us() - s->down_since_us) / 1e6, rs_waiting(s));
    }
    s->down_logged = 0;
    s->stalled = 0;
    s->probing = s->refusal[0] != '\0';
    evtimer_del(s->ev_retry);
    rs_send_heartbeat(s);
    rs_resume(s);
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
        rs_show(msg, sizeof(msg), rep->str, rep->len);
        snprintf(line, sizeof(line), "%s failed: %s", what, msg);
        if (!s->hs_failed || strcmp(s->last_error, line) != 0)
            rs_say(s, "%s: %s (records kept, retrying)", s->ep.shown, line);
        s->hs_failed = 1;
        s->down_logged = 1;
        if (!s->down_since_us)
            s->down_since_us = egr_mono_us();
        rs_set_error(s, line);
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
        rs_went_down(s, ac->errstr[0] ? ac->errstr : "connection failed");
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
    rs_went_down(s, ac->errstr[0] ? ac->errstr : status == REDIS_OK ? "closed" : "connection lost");
}

void rs_connect_now(struct sink_redis *s)
{
    if (s->ac || s->closing)
        return;
    redisAsyncContext *ac = s->ep.is_unix ? redisAsyncConnectUnix(s->ep.host)
                                          : redisAsyncConnect(s->ep.host, s->ep.port);
    if (!ac) {
        rs_went_down(s, "out of memory");
        return;
    }
    if (ac->err) {
        char why[200];
        snprintf(why, sizeof(why), "%s", ac->errstr);
        redisAsyncFree(ac);
        rs_went_down(s, why);
        return;
    }
    ac->data = s;
    ac->c.reader->fn = &light_replies;
    if (redisLibeventAttach(ac, s->base) != REDIS_OK) {
        redisAsyncFree(ac);
        rs_went_down(s, "cannot attach to the event loop");
        return;
    }
    s->ac = ac;
    s->state = ST_CONNECTING;
    s->progress_us = egr_mono_us();
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
}

/* Drops the connection from outside hiredis' callbacks. */
void rs_drop_connection(struct sink_redis *s, const char *why)
{
    redisAsyncContext *ac = s->ac;
    if (!ac)
        return;
    s->ac = NULL; /* on_disconnect sees a stranger and stays quiet */
    redisAsyncFree(ac);
    rs_went_down(s, why);
}

void rs_on_reconnect_timer(evutil_socket_t fd, short what, void *arg)
{
    rs_connect_now(arg);
}

void rs_on_watchdog(evutil_socket_t fd, short what, void *arg)
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
            rs_say(s, "%s: %s, reconnecting (%" PRIu64 " records waiting)", s->ep.shown, why,
                rs_waiting(s));
        s->down_logged = 1;
        s->down_since_us = egr_mono_us();
        rs_drop_connection(s, why);
    }
}

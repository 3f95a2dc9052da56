/* dash-conn.c - the dashboard's connections, held to limits evhttp alone
 * does not give (see dashboard.h and docs/dashboard.md#limits).
 *
 * evhttp's timeout counts inactivity only, so a client that sends one
 * header byte every few seconds keeps its connection forever, and enough of
 * them use up the descriptors: accept() then fails with EMFILE on every
 * loop iteration (libevent logs each failure). Here:
 *
 *  - every connection gets a deadline: its request must be complete within
 *    request_timeout seconds of the connection (or of the previous reply on
 *    a kept-alive one); a periodic sweep shuts down the ones that are late;
 *  - at most max_conns connections are open; a new one beyond the cap
 *    pushes out the oldest connection that is not serving a request (a
 *    trickler, or an idle kept-alive one), so a real client always gets in;
 *    the ones pushed out hold their descriptors until evhttp frees them,
 *    and the listener pauses while SLACK of those are pending (the caller
 *    keeps that many descriptors in reserve);
 *  - accept() errors stop the listener for a moment and are logged at most
 *    once per interval, with their count.
 *
 * How it sees connections: evhttp creates each connection's bufferevent
 * through the callback of evhttp_set_bevcb(); we make it and keep a
 * reference of our own. evhttp_connection_free() frees the bufferevent,
 * which clears its callbacks (they are never all unset while evhttp holds
 * a server connection), but our reference keeps it, and its socket, until
 * the reap sees that and drops the reference. A connection is closed by
 * shutting its socket down: evhttp reads end-of-file and frees it itself
 * (we never free what evhttp owns).
 *
 * One thread: all of it runs on the dashboard's event loop.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "dashboard.h"

#define SWEEP_MS 250
#define SLACK 16   /* descriptors beyond the cap for ones being closed */
#define REAP_MS 10 /* while at the cap: how soon a closed one makes room */
#define ACCEPT_BACKOFF_MS 200
#define LOG_INTERVAL_S 10

struct conn {
    struct bufferevent *bev; /* evhttp's, with our reference */
    struct conn *prev, *next;
    double start;  /* when the current request's deadline started */
    int busy;      /* a request is being answered (or streamed) */
    int closing;   /* shut down, waiting for evhttp to free it */
};

struct dash_conns {
    struct event_base *base;
    struct evconnlistener *lev;
    struct conn *head, *tail; /* oldest deadline first (roughly: busy ones move) */
    size_t open;              /* connections evhttp holds */
    size_t closing;
    size_t max;
    double timeout;
    int backoff;     /* the listener is stopped after an accept error */
    int full;        /* the listener is stopped at the cap */
    struct event *sweep, *resume, *reap;
    /* counters, and what the next log line says */
    uint64_t n_late, n_evicted, n_accept_err;
    uint64_t logged_late, logged_evicted, logged_err;
    double last_log;
    int last_errno;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void unlink_conn(struct dash_conns *c, struct conn *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else
        c->head = k->next;
    if (k->next)
        k->next->prev = k->prev;
    else
        c->tail = k->prev;
    k->prev = k->next = NULL;
}

static void append_conn(struct dash_conns *c, struct conn *k)
{
    k->prev = c->tail;
    k->next = NULL;
    if (c->tail)
        c->tail->next = k;
    else
        c->head = k;
    c->tail = k;
}

/* One line per interval at most, whatever the rate of what it counts. */
static void maybe_log(struct dash_conns *c, double now, int force)
{
    if (!force && now - c->last_log < LOG_INTERVAL_S)
        return;
    uint64_t late = c->n_late - c->logged_late, ev = c->n_evicted - c->logged_evicted,
             er = c->n_accept_err - c->logged_err;
    if (!late && !ev && !er)
        return;
    c->last_log = now;
    c->logged_late = c->n_late;
    c->logged_evicted = c->n_evicted;
    c->logged_err = c->n_accept_err;
    char last[128] = "";
    if (er)
        snprintf(last, sizeof(last), " (last: %s)", strerror(c->last_errno));
    fprintf(stderr,
            "egressd-dashboard: %llu connection(s) closed with no request in %.0f s, %llu pushed "
            "out at the cap of %zu, %llu accept() error(s)%s\n",
            (unsigned long long)late, c->timeout, (unsigned long long)ev, c->max,
            (unsigned long long)er, last);
}

static void update_listener(struct dash_conns *c)
{
    if (!c->lev)
        return;
    c->full = c->open >= c->max + SLACK;
    if (c->backoff || c->full)
        evconnlistener_disable(c->lev);
    else
        evconnlistener_enable(c->lev);
}

static void close_conn(struct dash_conns *c, struct conn *k)
{
    if (k->closing)
        return;
    k->closing = 1;
    c->closing++;
    evutil_socket_t fd = bufferevent_getfd(k->bev);
    /* evhttp sees end-of-file on its next read and frees the connection. */
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
}

static void arm_reap(struct dash_conns *c)
{
    struct timeval tv = {0, REAP_MS * 1000};
    evtimer_add(c->reap, &tv);
}

/* Drops the connections evhttp has let go (see the top of the file). */
static void reap(struct dash_conns *c)
{
    for (struct conn *k = c->head, *next; k; k = next) {
        next = k->next;
        bufferevent_data_cb rd, wr;
        bufferevent_event_cb ev;
        void *cbarg;
        bufferevent_getcb(k->bev, &rd, &wr, &ev, &cbarg);
        if (rd || wr || ev || cbarg)
            continue;
        unlink_conn(c, k);
        c->open--;
        if (k->closing)
            c->closing--;
        bufferevent_decref(k->bev);
        free(k);
    }
    if (c->full && c->open < c->max + SLACK)
        update_listener(c);
    if (c->full)
        arm_reap(c);
}

static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
    struct dash_conns *c = arg;
    struct conn *k = calloc(1, sizeof(*k));
    struct bufferevent *bev = k ? bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE) : NULL;
    if (!bev) {
        /* evhttp then makes one itself: this connection goes uncounted. */
        free(k);
        return NULL;
    }
    bufferevent_incref(bev);
    /* At the cap, what evhttp let go since the last sweep makes room first. */
    if (c->open - c->closing >= c->max)
        reap(c);
    k->bev = bev;
    k->start = now_s();
    /* The cap counts live connections; one that is closing still holds a
     * descriptor until evhttp frees it, which update_listener() minds. */
    if (c->open - c->closing >= c->max) {
        struct conn *old = c->head;
        while (old && (old->busy || old->closing))
            old = old->next;
        if (old) {
            close_conn(c, old);
            c->n_evicted++;
        }
    }
    append_conn(c, k);
    c->open++;
    if (c->open >= c->max + SLACK) {
        update_listener(c);
        arm_reap(c);
    }
    return bev;
}

static struct conn *find(struct dash_conns *c, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    for (struct conn *k = c->tail; bev && k; k = k->prev)
        if (k->bev == bev)
            return k;
    return NULL;
}

static void on_complete(struct evhttp_request *req, void *arg)
{
    struct dash_conns *c = arg;
    struct conn *k = find(c, req);
    if (!k)
        return;
    /* A kept-alive connection's next request has its own deadline. */
    k->busy = 0;
    k->start = now_s();
    unlink_conn(c, k);
    append_conn(c, k);
}

void dash_conns_request(struct dash_conns *c, struct evhttp_request *req)
{
    struct conn *k = c ? find(c, req) : NULL;
    if (!k)
        return;
    k->busy = 1;
    evhttp_request_set_on_complete_cb(req, on_complete, c);
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    reap(arg);
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct dash_conns *c = arg;
    double now = now_s();
    reap(c);
    for (struct conn *k = c->head, *next; k; k = next) {
        next = k->next;
        if (k->busy || k->closing || now - k->start < c->timeout)
            continue;
        /* A reply still being written to a slow reader is not late. */
        if (evbuffer_get_length(bufferevent_get_output(k->bev)) > 0)
            continue;
        close_conn(c, k);
        c->n_late++;
    }
    maybe_log(c, now, 0);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct dash_conns *c = arg;
    c->backoff = 0;
    update_listener(c);
}

/* The listener's callback argument is evhttp's (evhttp_bind_listener()
 * sets it), so the error callback finds us here: one listener a process. */
static struct dash_conns *listening;

static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    struct dash_conns *c = listening;
    if (!c)
        return;
    c->last_errno = EVUTIL_SOCKET_ERROR();
    c->n_accept_err++;
    /* Out of descriptors (or memory): trying again at once only spins. */
    c->backoff = 1;
    update_listener(c);
    struct timeval tv = {0, ACCEPT_BACKOFF_MS * 1000};
    event_add(c->resume, &tv);
    maybe_log(c, now_s(), 0);
}

struct dash_conns *dash_conns_new(struct event_base *base, struct evhttp *http, size_t max_conns,
                                  double request_timeout)
{
    struct dash_conns *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->base = base;
    c->max = max_conns ? max_conns : 1;
    c->timeout = request_timeout;
    c->last_log = now_s() - LOG_INTERVAL_S;
    c->sweep = event_new(base, -1, EV_PERSIST, on_sweep, c);
    c->resume = evtimer_new(base, on_resume, c);
    c->reap = evtimer_new(base, on_reap, c);
    if (!c->sweep || !c->resume || !c->reap) {
        dash_conns_free(c);
        return NULL;
    }
    struct timeval tv = {0, SWEEP_MS * 1000};
    event_add(c->sweep, &tv);
    evhttp_set_bevcb(http, make_bev, c);
    return c;
}

void dash_conns_listen(struct dash_conns *c, struct evconnlistener *lev)
{
    c->lev = lev;
    listening = c;
    evconnlistener_set_error_cb(lev, on_accept_error);
}

void dash_conns_stats(const struct dash_conns *c, struct dash_conn_stats *st)
{
    st->open = c->open;
    st->max = c->max;
    st->late = c->n_late;
    st->evicted = c->n_evicted;
    st->accept_errors = c->n_accept_err;
}

void dash_conns_detach(struct dash_conns *c)
{
    c->lev = NULL;
    if (listening == c)
        listening = NULL;
    maybe_log(c, now_s(), 1);
}

void dash_conns_free(struct dash_conns *c)
{
    if (!c)
        return;
    /* After evhttp_free(): our references are the last ones. */
    while (c->head) {
        struct conn *k = c->head;
        unlink_conn(c, k);
        bufferevent_decref(k->bev);
        free(k);
    }
    if (listening == c)
        listening = NULL;
    if (c->sweep)
        event_free(c->sweep);
    if (c->resume)
        event_free(c->resume);
    if (c->reap)
        event_free(c->reap);
    free(c);
}

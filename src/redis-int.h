/* redis-int.h - the Redis sink's private parts, shared by its files:
 *
 *   sink-redis.c   the sink: I/O thread, inbox, aggregates, sink ops, drain
 *   redis-queue.c  memory queue and disk spool
 *   redis-conn.c   connections (one per node), handshake, reconnection,
 *                  watchdog, the cluster's slot map and its refresh, replies
 *   redis-send.c   pipeline, routing, replies and refusals, redirections,
 *                  WAIT, heartbeat
 *
 * Everything here runs on the sink's I/O thread unless it says otherwise;
 * the caller's side (sink ops) only touches the fields marked "under mx".
 */
#ifndef EGRESSD_REDIS_INT_H
#define EGRESSD_REDIS_INT_H

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "egressd/json.h"
#include "egressd/redis-cluster.h"
#include "egressd/redis-agg.h"
#include "egressd/redis-schema.h"
#include "egressd/redis-url.h"
#include "egressd/sink-redis.h"
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
/* Copies of flow records (KIND_RAW_FLOW) the I/O thread has formatted go
 * back to the writers through this pool instead of free(): the buffers are
 * big and made on another thread, and a malloc/free pair across threads for
 * each record costs the capture thread more than the copy itself. */
#define RAW_POOL_MAX 512u
#define KIND_RAW_FLOW 0xff /* an inbox entry holding a struct flow_record; never queued */
#define NODE_MAX 72            /* nodes a sink knows: masters seen in a run, seeds */
#define PROBE_TIMEOUT_MS 1000u /* the layout probe at open, per seed */
#define REFRESH_MIN_MS 100u    /* CLUSTER SLOTS at most this often */
#define REFRESH_DOWN_MS 500u   /* ... and this often while a master is unreachable */
#define REDIRECTS_MAX 64u      /* MOVED/ASK in a row without a write: stop and back off */

/* ---- state -------------------------------------------------------------- */

enum conn_state { ST_DOWN = 0, ST_CONNECTING, ST_HANDSHAKE, ST_READY };

/* How commands find their server: one server (node 0), or a cluster's
 * slot map; unknown until the first connection says. */
enum sink_mode { MODE_UNKNOWN = 0, MODE_SINGLE, MODE_CLUSTER };

/* rrec flags */
#define RF_UNCERTAIN 1u /* the stream entry may be written already (its answer or its
                         * confirmation was lost): sending it again may duplicate it */
#define RF_ACKED0 2u    /* the stream entry is acknowledged, its WAIT not yet answered */

/* A reply a node connection awaits (replies come in command order), or a
 * command answered and awaiting the WAIT that confirms it. */
enum pend_kind { P_CMD, P_ASKING, P_WAIT, P_PLAIN, P_AUTH, P_SELECT, P_SLOTS, P_INFO };
struct pend {
    struct rrec *r;  /* P_CMD */
    uint8_t kind;
    uint8_t idx;     /* P_CMD: the command's index in r */
    uint8_t confirm; /* P_CMD: a WAIT follows; P_WAIT: the replicas asked for */
};
struct pring {
    struct pend *v;
    uint32_t head, len, cap;
};

/* One server: the single Redis, a cluster master, or a seed. */
struct rnode {
    struct sink_redis *s;
    unsigned idx;
    char host[REDIS_CLUSTER_HOST_MAX];
    int port;
    int is_unix;
    char shown[400];         /* for messages (as redis_endpoint.shown) */
    redisAsyncContext *ac;
    enum conn_state state;
    struct event *ev_reconnect;
    unsigned hs_pending;     /* handshake replies awaited */
    int hs_failed;           /* the handshake was refused (logged already) */
    unsigned backoff_ms;
    uint64_t progress_us;    /* last reply or connect, or first send after a quiet spell */
    uint64_t down_since_us;
    int down_logged;
    unsigned connections;    /* handshakes completed */
    int in_map;              /* a master of the current slot map */
    int seed;                /* the URL's server or a redis.seeds entry */
    int wanted;              /* a command was routed to it */
    int failures;            /* connection attempts failed in a row */
    struct pring q;          /* replies awaited, in order */
    struct pring uc;         /* answered, awaiting a WAIT */
    uint32_t since_wait;     /* commands to confirm sent since the last WAIT */
    unsigned waits_out;
    unsigned replicas;       /* replicas it has (CLUSTER SLOTS, INFO replication) */
    int wait_refused;        /* WAIT is refused (ACL): acknowledgement is all there is */
    int wait_short;          /* the last WAIT came back short (logged) */
};

struct rrec {
    struct rrec *prev, *next;
    uint64_t done;  /* commands answered (acknowledged or refused for good) */
    uint64_t out;   /* commands sent and not yet answered */
    uint32_t len;
    uint8_t kind;
    uint8_t ncmd;
    uint8_t again;  /* a command met a transient error or a lost connection */
    uint8_t flags;  /* RF_* */
    uint8_t ask_node;  /* after ASK: node index + 1 for the command of ask_slot */
    uint16_t ask_slot;
    struct spool_pos pos; /* its place in a named spool (pos.seq 0: not there) */
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
    /* An urgent hand-over (alerts): the I/O thread sends what it has at
     * once instead of waiting for a full batch or redis.flush_ms. */
    int in_urgent;
    struct rrec *raw_pool;   /* spare record copies (RAW_POOL_MAX at most) */
    uint32_t raw_npool;
    uint64_t in_records;     /* records handed over (not yet counted by the thread) */
    uint64_t in_dropped;     /* of those, dropped at the inbox (the thread was behind) */
    uint64_t in_agg_lost;    /* aggregate commands lost at the inbox */
    int req_heartbeat, req_drain, req_stop, drain_done, drain_rc;
    int ready;               /* published: Redis takes writes now */
    uint64_t agg_skipped;    /* records not aggregated: table full while Redis was unavailable */
    int agg_full_noted;
    uint64_t hb_packets, hb_bytes, hb_drops, hb_active;
    struct redis_stats snap; /* published by the thread */

    /* servers */
    enum sink_mode mode;
    struct rnode *nodes[NODE_MAX];
    unsigned nnodes;
    uint8_t route[REDIS_CLUSTER_SLOTS]; /* cluster: node index + 1; 0 = node 0 (MOVED corrects) */
    struct redis_slot_map *map;  /* scratch for a CLUSTER SLOTS reply */
    unsigned masters;            /* in the current map */
    int refresh_wanted;          /* the map needs a CLUSTER SLOTS */
    int refresh_out;             /* one is in flight */
    int slots_refused;           /* CLUSTER SLOTS refused (ACL): MOVED replies only */
    uint64_t refresh_us;         /* last one sent */
    struct event *ev_refresh, *ev_wait;
    unsigned wait_retry_ms;
    unsigned redirects;          /* MOVED/ASK since the last write */
    int layout_guessed;          /* auto layout chosen without an answer from the server */
    int closing;
    unsigned retry_ms;       /* next delay after a transient error */
    int stalled;             /* sending stopped after a transient error */
    int probing;             /* one record out to see if the error is over */
    int rewind;              /* commands came back unwritten: resend from the oldest
                              * record once nothing is in flight */
    unsigned connections;    /* handshakes completed, all nodes */

    /* memory queue */
    struct rrec *head, *tail, *cursor;
    uint64_t mem_count, mem_bytes, n_unsent, inflight, inflight_plain;
    uint64_t unconfirmed;    /* records whose entry waits for its WAIT */
    uint64_t max_inflight;

    struct spool *spool;
    /* The spool is the caller's too with a named spool (write-ahead: the
     * writers append, the thread reads and releases): every spool call
     * holds spool_mx, taken before mx when both are. */
    pthread_mutex_t spool_mx;
    int wal;                 /* a named spool: every record is in it before it counts */
    uint64_t avail_seq;      /* spooled records below this number may be read back */
    uint64_t released_seq;   /* the oldest record kept, as last told to the spool */
    int release_due;         /* a spooled record left memory: release and sync */
    uint64_t spool_depth_seen; /* records on disk only, for publish() */
    int bypass_noted;        /* said once: records kept in memory only */
    /* caller's side, under mx */
    uint64_t in_avail;       /* records up to here were spooled and not put in the inbox */
    uint64_t in_walonly;     /* of those, records (not aggregate batches) */
    char in_wal_err[256];    /* the last append that failed ("" if none) */
    int spilling;            /* the memory queue overflowed into the spool */
    int dropping;            /* records are being dropped (full) */
    uint64_t drop_mark;      /* dropped count when the episode began */
    uint64_t spool_lost_seen;

    struct rcmd_buf rb, hb_rb;
    struct rcmd_buf stats_rb;  /* the control thread's: EVE stats events */
    struct jbuf stats_jb;
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

/* ---- sink-redis.c ---- */

/* One log line through the open-time callback, rate-limited. */
void rs_say(struct sink_redis *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Printable form of bytes from Redis or a key, for one log line. */
void rs_show(char *out, size_t size, const char *p, size_t n);
void rs_copy_cut(char *dst, size_t size, const char *src);
void rs_set_error(struct sink_redis *s, const char *msg);
/* Caller's side, under mx. */
void rs_inbox_push(struct sink_redis *s, struct rrec *r);
void rs_wake(struct sink_redis *s);
/* The I/O thread's formatted record copies (a list through ->next) back
 * to the pool; what the pool has no room for is freed. */
void rs_raw_give(struct sink_redis *s, struct rrec *list);
/* The commands of a flow record / an alert, as redis.streams and redis.eve
 * ask (a record may end up with none: b->ncmd == 0). */
void rs_format_flow(const struct sink_redis *s, const struct flow_record *rec, struct jbuf *jb,
                    struct rcmd_buf *b);
void rs_format_alert(const struct sink_redis *s, const struct alert_record *a, struct jbuf *jb,
                     struct rcmd_buf *b);

/* ---- redis-writer.c ---- */

void *rs_writer_new(void *self);
int rs_write_flow(void *w, const struct flow_record *rec);
int rs_write_alert(void *w, const struct alert_record *a);
int rs_writer_flush(void *w, int urgent);
void rs_writer_free(void *w);

/* ---- redis-queue.c ---- */

/* Caller's side, under spool_mx: the records of the list into the named
 * spool as one batch; each stored one gets its position (the others keep
 * pos.seq 0 and travel in memory only). Returns the records stored. */
uint64_t rs_wal_append(struct sink_redis *s, struct rrec *list, char *err, size_t errsize);
/* I/O thread: forgets (and writes to the header) what Redis acknowledged. */
void rs_wal_release(struct sink_redis *s);
/* I/O thread, once a second: redis.spool_fsync everysec. */
void rs_spool_tick(struct sink_redis *s);
/* I/O thread: records on disk only (not aggregate batches). */
uint64_t rs_spool_depth(struct sink_redis *s);

uint64_t rs_full_mask(unsigned ncmd);
/* Room in the memory queue for a record of len bytes. */
int rs_mem_fits(const struct sink_redis *s, uint32_t len);
/* A queue entry holding a copy of data (encoded commands); NULL if data is
 * malformed or memory is short. */
struct rrec *rs_rrec_new(const void *data, uint32_t len);
void rs_mem_append(struct sink_redis *s, struct rrec *r);
void rs_mem_remove(struct sink_redis *s, struct rrec *r);
/* Moves spooled records into the memory queue while it has room. */
void rs_refill(struct sink_redis *s);
/* Records not yet written: in memory (aggregate batches apart) and on disk (with spooled
 * aggregate batches, which the drain waits for too). */
uint64_t rs_waiting(const struct sink_redis *s);
/* A record into the memory queue, else the spool, else dropped (counted);
 * r is consumed. */
void rs_enqueue(struct sink_redis *s, struct rrec *r);
/* An aggregate batch: the same way as a record; r is consumed. */
void rs_enqueue_agg(struct sink_redis *s, struct rrec *r);
/* Records whose stream entry has not been written. */
uint64_t rs_undelivered_now(const struct sink_redis *s);
/* At the end: unanswered commands into a named spool for the next run;
 * returns the records the spool then holds. */
uint64_t rs_keep_for_next_run(struct sink_redis *s);
/* Opens the spool redis.spool_dir asks for (none, a temporary file, or the
 * sensor's named file with what an earlier run left). */
int rs_open_spool(struct sink_redis *s, struct egr_err *err);

/* ---- redis-conn.c ---- */

/* Queues one command on node n, formatted in the protocol's own format,
 * and the reply it awaits. REDIS_OK or REDIS_ERR (connection going, or out
 * of memory: nothing queued). */
int rs_send_command(struct rnode *n, struct pend p, unsigned argc, const char **argv,
                    const size_t *lens);
/* Connected, authenticated, and not being torn down by hiredis. */
int rs_node_usable(const struct rnode *n);
/* Some node takes commands. */
int rs_usable(const struct sink_redis *s);
/* 1 for errors after which the same command may succeed later. */
int rs_transient(const char *e);
/* The node at host:port (added if new; NULL when NODE_MAX are known). */
struct rnode *rs_node_get(struct sink_redis *s, const char *host, int port, int is_unix);
/* Connects n unless it is connected, connecting or waiting out a backoff. */
void rs_node_want(struct rnode *n);
void rs_connect_now(struct rnode *n);
void rs_drop_connection(struct rnode *n, const char *why);
/* The slot map is stale: refresh it as soon as allowed. */
void rs_want_refresh(struct sink_redis *s);
/* The cluster is behind MOVED at slot: route it to host:port ("" = n's host). */
void rs_moved(struct sink_redis *s, struct rnode *n, unsigned slot, const char *host, int port);
/* At open: asks the URL's server and the seeds whether they are a cluster
 * (blocking, PROBE_TIMEOUT_MS each) and installs the slot map if so. Sets
 * s->mode (MODE_UNKNOWN when none answered). EGR_OK, or EGR_EINVAL when
 * the answer makes the configuration impossible (a database other than 0
 * on a cluster). */
int rs_probe(struct sink_redis *s, struct egr_err *err);
/* After the nodes exist: the probe's map becomes the routes. */
void rs_install_probed(struct sink_redis *s);
void rs_nodes_free(struct sink_redis *s);
/* Replies to the handshake and to CLUSTER SLOTS / INFO (from rs_on_reply). */
void rs_on_control(struct rnode *n, struct pend p, const redisReply *rep);
/* One server: asks again how many replicas it has. */
void rs_ask_replicas(struct rnode *n);
void rs_on_reconnect_timer(evutil_socket_t fd, short what, void *arg);
void rs_on_watchdog(evutil_socket_t fd, short what, void *arg);
void rs_on_refresh_timer(evutil_socket_t fd, short what, void *arg);
/* A node's ring of awaited replies. */
int rs_pring_push(struct pring *q, struct pend p);
struct pend rs_pring_pop(struct pring *q);

/* ---- redis-send.c ---- */

void rs_send_some(struct sink_redis *s);
/* Arms the flush timer: what gathers slower than a batch goes out at
 * redis.flush_ms. */
void rs_arm_flush(struct sink_redis *s);
/* After a refusal or a reconnection: send again from the oldest record. */
void rs_resume(struct sink_redis *s);
void rs_send_heartbeat(struct sink_redis *s);
/* Every reply of every node connection comes here (privdata: the node). */
void rs_on_reply(redisAsyncContext *ac, void *reply, void *privdata);
/* Node n is gone: what it had answered but not confirmed goes again. */
void rs_node_lost(struct rnode *n);
/* Replicas to wait for on n (0: none). */
unsigned rs_wait_want(const struct rnode *n);
void rs_on_flush(evutil_socket_t fd, short what, void *arg);
void rs_on_retry_timer(evutil_socket_t fd, short what, void *arg);
void rs_on_heartbeat(evutil_socket_t fd, short what, void *arg);
void rs_on_wait_timer(evutil_socket_t fd, short what, void *arg);

#endif

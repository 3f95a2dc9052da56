/* redis-cluster.h - the slot routing of a Redis Cluster, as pure functions:
 * which of the 16384 hash slots a key belongs to, what a MOVED or ASK
 * redirection says, and the map of slots to masters built from a
 * CLUSTER SLOTS reply. No I/O: the Redis sink (src/redis-conn.c) and the
 * dashboard (src/dashboard/dash-redis.c) keep the connections and use these
 * to choose one for each command.
 *
 * Slots (the cluster specification): slot = CRC16(key) mod 16384, CRC16 the
 * XMODEM variant (polynomial 0x1021, initial value 0, no reflection). When
 * a key holds a '{' followed later by a '}' with at least one byte between
 * them, only the bytes between the first '{' and the first '}' after it are
 * hashed (the hash tag), so keys sharing a tag share a slot.
 *
 * Endpoints are "host:port": the host is an IPv4 address, an IPv6 address
 * (bare, as Redis writes it in redirections, or in brackets) or a name,
 * split from the port at the last ':'. An empty host means "the host this
 * answer came from" (a node that does not know its own address).
 */
#ifndef EGRESSD_REDIS_CLUSTER_H
#define EGRESSD_REDIS_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "egressd/common.h"

#define REDIS_CLUSTER_SLOTS 16384
#define REDIS_CLUSTER_HOST_MAX 256   /* host text, NUL included */
#define REDIS_CLUSTER_NODES_MAX 64   /* masters in one map */

/* CRC16/XMODEM of n bytes (the cluster's key hash; "123456789" is 0x31C3). */
uint16_t redis_cluster_crc16(const void *p, size_t n);

/* The hash slot of a key (hash tags as above). */
unsigned redis_cluster_key_slot(const void *key, size_t n);

/* Parses "host:port" of n bytes into host (NUL-terminated, brackets of an
 * IPv6 address removed, "" allowed) and port (1..65535). EGR_OK or
 * EGR_EINVAL (no ':', a port that is not a number in range, a host that
 * does not fit or holds a control byte, unbalanced brackets). */
int redis_cluster_endpoint(const char *s, size_t n, char host[REDIS_CLUSTER_HOST_MAX], int *port);

enum redis_redirect_kind { REDIS_REDIRECT_MOVED = 1, REDIS_REDIRECT_ASK = 2 };

struct redis_redirect {
    enum redis_redirect_kind kind;
    unsigned slot;
    char host[REDIS_CLUSTER_HOST_MAX]; /* "" = the node that answered */
    int port;
};

/* Parses an error reply "MOVED <slot> <host:port>" or "ASK <slot>
 * <host:port>" (n bytes, no leading '-'). EGR_OK, or EGR_EINVAL for
 * anything else, a slot out of range or a malformed endpoint. */
int redis_cluster_parse_redirect(const char *e, size_t n, struct redis_redirect *out);

/* Masters and the slots each serves. */
struct redis_cluster_node {
    char host[REDIS_CLUSTER_HOST_MAX];
    int port;
    unsigned replicas; /* replicas CLUSTER SLOTS lists (Redis leaves out failed ones) */
};

struct redis_slot_map {
    uint8_t slot[REDIS_CLUSTER_SLOTS]; /* node index + 1; 0 = no master known */
    struct redis_cluster_node node[REDIS_CLUSTER_NODES_MAX];
    unsigned nnodes;
    unsigned covered;                  /* slots with a master */
};

struct redisReply; /* hiredis */

/* Builds m from a CLUSTER SLOTS reply (hiredis reply objects, RESP2):
 * [[start, end, [host, port, id, ...], [replica host, port, id, ...], ...], ...].
 * An empty, nil or "?" host is asked_host (the node the command went to).
 * EGR_OK, or EGR_EINVAL with "CLUSTER SLOTS: reason" in err for a reply of
 * another shape, a range out of order or out of bounds, a bad port, or more
 * than REDIS_CLUSTER_NODES_MAX masters; m is then unusable. */
int redis_cluster_map_parse(const struct redisReply *rep, const char *asked_host,
                            struct redis_slot_map *m, struct egr_err *err);

/* The master of a slot: node index, or -1 when none is known. */
int redis_cluster_map_lookup(const struct redis_slot_map *m, unsigned slot);

/* Index of host:port among m's masters, or -1. */
int redis_cluster_map_find(const struct redis_slot_map *m, const char *host, int port);

/* Applies a MOVED redirection: the slot now belongs to host:port (added as
 * a master if new, with no replicas known). Returns the node index, or -1
 * when the map is full (nothing changed). */
int redis_cluster_map_move(struct redis_slot_map *m, unsigned slot, const char *host, int port);

#endif

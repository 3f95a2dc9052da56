/* redis-eve.h - whole EVE JSON events to Redis, the way Suricata's EVE
 * Redis output writes them (docs/redis-schema.md, "EVE JSON lines"), so
 * consumers built for Suricata (FEVER, Logstash's redis input, a
 * SUBSCRIBE or XREADGROUP of your own) read egressd's events unchanged:
 *
 *   mode list | lpush   LPUSH {key} <event>    (Suricata's default)
 *   mode rpush          RPUSH {key} <event>
 *   mode channel | publish   PUBLISH {key} <event>
 *   mode stream | xadd  XADD {key} [MAXLEN ~|= N] * eve <event>
 *
 * {key} defaults to "suricata", as in Suricata. Each event is the same
 * JSON object the JSON-lines output writes for it (eve.h), without the
 * newline.
 *
 * The builders append commands to a record being encoded (redis-schema.h),
 * after the flat-field stream entry when there is one, so the EVE events
 * travel with their record through the memory queue and the spool and are
 * retried with it. Pure formatting: no I/O, no state.
 */
#ifndef EGRESSD_REDIS_EVE_H
#define EGRESSD_REDIS_EVE_H

#include <stdint.h>

#include "egressd/alert.h"
#include "egressd/json.h"
#include "egressd/record.h"
#include "egressd/redis-schema.h"
#include "egressd/sink.h"

enum redis_eve_mode {
    REDIS_EVE_OFF = 0,
    REDIS_EVE_LPUSH,
    REDIS_EVE_RPUSH,
    REDIS_EVE_PUBLISH,
    REDIS_EVE_XADD,
};

/* Event types (redis.eve.types). */
#define REDIS_EVE_FLOW 0x01u
#define REDIS_EVE_DNS 0x02u
#define REDIS_EVE_ALERT 0x04u
#define REDIS_EVE_STATS 0x08u
#define REDIS_EVE_ALL 0x0fu

#define REDIS_EVE_KEY_MAX 256

/* The redis.eve section. */
struct redis_eve_config {
    uint8_t mode;            /* enum redis_eve_mode */
    uint8_t types;           /* REDIS_EVE_* bits */
    uint8_t trim_exact;      /* stream mode: MAXLEN = instead of ~ */
    char key[REDIS_EVE_KEY_MAX]; /* list, channel or stream name */
    uint32_t stream_maxlen;  /* stream mode: trim length; 0 = never trimmed */
};

void redis_eve_config_defaults(struct redis_eve_config *c);

/* The mode of a name as Suricata spells it in eve-log.redis.mode ("list",
 * "lpush", "rpush", "channel", "publish", "stream", "xadd"; egressd adds
 * "off"), or -1. */
int redis_eve_mode_of(const char *name);
const char *redis_eve_mode_name(unsigned mode); /* canonical: off, list, rpush, channel, stream */

/* The bit of an event type name ("flow", "dns", "alert", "stats"), or 0. */
unsigned redis_eve_type_of(const char *name);

/* Append to b one command per event of the record, of the configured
 * types (its dns events, then its flow event): the record must have been
 * started with rcmd_reset(). scratch is a reusable buffer for the JSON.
 * Return the number of commands added (0 when mode is off or no event is
 * of a configured type); an allocation failure marks b (rcmd_ok). */
unsigned redis_eve_flow(const struct redis_eve_config *c, const struct flow_record *r,
                        struct jbuf *scratch, struct rcmd_buf *b);
unsigned redis_eve_alert(const struct redis_eve_config *c, const struct alert_record *a,
                         struct jbuf *scratch, struct rcmd_buf *b);
unsigned redis_eve_stats(const struct redis_eve_config *c, const struct run_stats *st,
                         struct jbuf *scratch, struct rcmd_buf *b);

#endif

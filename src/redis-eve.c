/* redis-eve.c - whole EVE JSON events to Redis as Suricata's EVE Redis
 * output writes them (see include/egressd/redis-eve.h): one command per
 * event, LPUSH/RPUSH to a list, PUBLISH to a channel or XADD to a stream
 * with the event in the field "eve". Also the parsers of redis.eve.mode
 * and redis.eve.types (redis-eve-cfg.h).
 *
 * The event is the JSON text eve.c formats, handed over as one argument:
 * the encoding is length-prefixed and hiredis sends it as a bulk string,
 * so nothing in it (escaped or not) can change the command.
 */
#include "egressd/redis-eve.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "egressd/eve.h"
#include "redis-eve-cfg.h"

void redis_eve_config_defaults(struct redis_eve_config *c)
{
    memset(c, 0, sizeof(*c));
    c->mode = REDIS_EVE_OFF;
    c->types = REDIS_EVE_ALL;
    snprintf(c->key, sizeof(c->key), "suricata");
    c->stream_maxlen = 100000; /* Suricata's stream-maxlen default */
}

static const struct {
    const char *name;
    uint8_t mode;
} modes[] = {
    {"off", REDIS_EVE_OFF},           {"list", REDIS_EVE_LPUSH},   {"lpush", REDIS_EVE_LPUSH},
    {"rpush", REDIS_EVE_RPUSH},       {"channel", REDIS_EVE_PUBLISH}, {"publish", REDIS_EVE_PUBLISH},
    {"stream", REDIS_EVE_XADD},       {"xadd", REDIS_EVE_XADD},
};

int redis_eve_mode_of(const char *name)
{
    for (size_t i = 0; i < EGR_ARRAY_LEN(modes); i++)
        if (!strcasecmp(modes[i].name, name))
            return modes[i].mode;
    return -1;
}

const char *redis_eve_mode_name(unsigned mode)
{
    switch (mode) {
    case REDIS_EVE_OFF: return "off";
    case REDIS_EVE_LPUSH: return "list";
    case REDIS_EVE_RPUSH: return "rpush";
    case REDIS_EVE_PUBLISH: return "channel";
    case REDIS_EVE_XADD: return "stream";
    default: return "unknown";
    }
}

static const struct {
    const char *name;
    unsigned bit;
} types[] = {
    {"flow", REDIS_EVE_FLOW}, {"dns", REDIS_EVE_DNS}, {"alert", REDIS_EVE_ALERT},
    {"stats", REDIS_EVE_STATS},
};

unsigned redis_eve_type_of(const char *name)
{
    for (size_t i = 0; i < EGR_ARRAY_LEN(types); i++)
        if (!strcmp(types[i].name, name))
            return types[i].bit;
    return 0;
}

/* One command carrying the event in scratch. */
static void push(const struct redis_eve_config *c, const struct jbuf *ev, struct rcmd_buf *b)
{
    static const char *const verb[] = {
        [REDIS_EVE_LPUSH] = "LPUSH", [REDIS_EVE_RPUSH] = "RPUSH", [REDIS_EVE_PUBLISH] = "PUBLISH",
        [REDIS_EVE_XADD] = "XADD",
    };
    rcmd_begin(b);
    rcmd_arg_str(b, verb[c->mode]);
    rcmd_arg_str(b, c->key);
    if (c->mode == REDIS_EVE_XADD) {
        if (c->stream_maxlen) {
            rcmd_arg_str(b, "MAXLEN");
            rcmd_arg_str(b, c->trim_exact ? "=" : "~");
            rcmd_arg_u64(b, c->stream_maxlen);
        }
        rcmd_arg_str(b, "*");
        rcmd_arg_str(b, "eve");
    }
    rcmd_arg(b, ev->buf, ev->len);
    rcmd_end(b);
}

static int active(const struct redis_eve_config *c, unsigned type)
{
    return c->mode > REDIS_EVE_OFF && c->mode <= REDIS_EVE_XADD && (c->types & type);
}

/* An event that could not be formatted fails the whole record, as a
 * failed allocation anywhere in it does. */
static unsigned done(const struct jbuf *scratch, struct rcmd_buf *b, const struct redis_eve_config *c)
{
    if (!jbuf_ok(scratch)) {
        b->oom = 1;
        return 0;
    }
    push(c, scratch, b);
    return 1;
}

unsigned redis_eve_flow(const struct redis_eve_config *c, const struct flow_record *r,
                        struct jbuf *scratch, struct rcmd_buf *b)
{
    if (!active(c, REDIS_EVE_FLOW | REDIS_EVE_DNS))
        return 0;
    unsigned n = eve_record_events(r), added = 0;
    for (unsigned i = 0; i < n; i++) {
        /* The record's last event is its flow event; the others are dns. */
        if (!active(c, i + 1 == n ? REDIS_EVE_FLOW : REDIS_EVE_DNS))
            continue;
        jbuf_reset(scratch);
        eve_format_record_event(scratch, r, i);
        added += done(scratch, b, c);
    }
    return added;
}

unsigned redis_eve_alert(const struct redis_eve_config *c, const struct alert_record *a,
                         struct jbuf *scratch, struct rcmd_buf *b)
{
    if (!active(c, REDIS_EVE_ALERT))
        return 0;
    jbuf_reset(scratch);
    eve_format_alert(scratch, a);
    return done(scratch, b, c);
}

unsigned redis_eve_stats(const struct redis_eve_config *c, const struct run_stats *st,
                         struct jbuf *scratch, struct rcmd_buf *b)
{
    if (!active(c, REDIS_EVE_STATS))
        return 0;
    jbuf_reset(scratch);
    eve_format_stats(scratch, st);
    return done(scratch, b, c);
}

/* ---- configuration --------------------------------------------------------- */

int redis_eve_parse_mode(struct config_parse *p, yaml_node_t *node, const char *path, void *field)
{
    size_t len;
    const char *s = config_scalar(node, &len);
    char name[16];
    if (!s || len == 0 || len >= sizeof(name) || memchr(s, '\0', len))
        return config_error(p, node, path,
                            "expected off, list, lpush, rpush, channel, publish, stream or xadd");
    memcpy(name, s, len + 1);
    int m = redis_eve_mode_of(name);
    if (m < 0)
        return config_error(p, node, path,
                            "'%s' is not a mode: off, list (= lpush), rpush, channel (= publish), "
                            "stream (= xadd)", name);
    *(uint8_t *)field = (uint8_t)m;
    return EGR_OK;
}

struct types_arg {
    uint8_t mask;
    const char *path;
};

static int type_item(struct config_parse *p, size_t i, yaml_node_t *item, void *arg)
{
    struct types_arg *t = arg;
    char ipath[300];
    snprintf(ipath, sizeof(ipath), "%s[%zu]", t->path, i);
    size_t len;
    const char *s = config_scalar(item, &len);
    char name[16];
    unsigned bit = 0;
    if (s && len > 0 && len < sizeof(name) && !memchr(s, '\0', len)) {
        memcpy(name, s, len + 1);
        bit = redis_eve_type_of(name);
    }
    if (!bit)
        return config_error(p, item, ipath, "expected an event type: flow, dns, alert or stats");
    if (t->mask & bit)
        return config_error(p, item, ipath, "'%s' is listed twice", name);
    t->mask |= (uint8_t)bit;
    return EGR_OK;
}

int redis_eve_parse_types(struct config_parse *p, yaml_node_t *node, const char *path, void *field)
{
    if (node->type != YAML_SEQUENCE_NODE)
        return config_error(p, node, path, "expected a list of event types ([flow, dns, alert, stats])");
    struct types_arg t = {0, path};
    int rc = config_each_item(p, node, path, type_item, &t);
    if (rc != EGR_OK)
        return rc;
    if (!t.mask)
        return config_error(p, node, path, "the list is empty (set redis.eve.mode: off to write no events)");
    *(uint8_t *)field = t.mask;
    return EGR_OK;
}

/* eve.c - flow records and run totals as Suricata-EVE-style JSON objects
 * (see include/egressd/eve.h; every field is described in
 * docs/eve-format.md).
 *
 * The top-level shape follows Suricata 7's `flow` event (timestamp,
 * flow_id, event_type, the 5-tuple, proto, app_proto, community_id, flow
 * {...}, tcp {...}), so pipelines built for Suricata take these events
 * unchanged. What Suricata does not have lives in extension fields (flow.
 * initiator, flow.interim, flow.seq, tunnel) and in the "ndpi" object.
 *
 * Every string that came off the wire (SNI, host, URL, user agent,
 * certificate names, DNS names, SSH banners) goes through the jbuf escaper;
 * nothing here trusts record contents. Pure formatting: no I/O, no state,
 * safe from any thread.
 */
#include "egressd/eve.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "egressd/classify.h"
#include "egressd/decode.h"
#include "egressd/pkt.h"

#define US_PER_S 1000000u

/* Every record has several times: the date is formatted once per day (per
 * thread), the rest by hand. gmtime_r and snprintf were a sixth of a
 * replay's instructions. */
static _Thread_local struct {
    int64_t day;
    int valid;
    char text[64]; /* "YYYY-MM-DDT" */
    size_t len;
} date_cache;

static char *two(char *p, unsigned v)
{
    *p++ = (char)('0' + v / 10);
    *p++ = (char)('0' + v % 10);
    return p;
}

void eve_format_time(uint64_t ts_us, char *out, size_t n)
{
    time_t sec = (time_t)(ts_us / US_PER_S);
    unsigned usec = (unsigned)(ts_us % US_PER_S);
    int64_t day = (int64_t)(sec / 86400);
    unsigned sod = (unsigned)(sec % 86400);
    if (!date_cache.valid || date_cache.day != day) {
        struct tm tm;
        time_t s = sec;
        if (!gmtime_r(&s, &tm)) {
            /* Only for times far beyond any capture (year > 2^31). */
            s = 0;
            sod = 0;
            gmtime_r(&s, &tm);
        }
        int len = snprintf(date_cache.text, sizeof(date_cache.text), "%04d-%02d-%02dT",
                           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
        date_cache.len = len > 0 ? (size_t)len : 0;
        date_cache.day = day;
        date_cache.valid = s == sec; /* the fallback is not cached */
    }
    /* "HH:MM:SS.uuuuuu+0000" */
    char tail[21], *p = tail;
    p = two(p, sod / 3600);
    *p++ = ':';
    p = two(p, sod / 60 % 60);
    *p++ = ':';
    p = two(p, sod % 60);
    *p++ = '.';
    for (int i = 5; i >= 0; i--) {
        p[i] = (char)('0' + usec % 10);
        usec /= 10;
    }
    memcpy(p + 6, "+0000", 5);
    if (n == 0)
        return;
    size_t a = date_cache.len < n - 1 ? date_cache.len : n - 1;
    memcpy(out, date_cache.text, a);
    size_t b = sizeof(tail) - 1 < n - 1 - a ? sizeof(tail) - 1 : n - 1 - a;
    memcpy(out + a, tail, b);
    out[a + b] = '\0';
}

/* IPv4 by hand (glibc's inet_ntop formats it with sprintf); IPv6 through
 * inet_ntop, for its RFC 5952 compression. */
void eve_format_ip(int family, const uint8_t *a, char *out, size_t n)
{
    if (family != 6) {
        char t[16], *p = t;
        for (int i = 0; i < 4; i++) {
            unsigned v = a[i];
            if (v >= 100)
                *p++ = (char)('0' + v / 100);
            if (v >= 10)
                *p++ = (char)('0' + v / 10 % 10);
            *p++ = (char)('0' + v % 10);
            *p++ = i < 3 ? '.' : '\0';
        }
        size_t len = (size_t)(p - t) - 1;
        if (n == 0)
            return;
        if (len >= n)
            len = n - 1;
        memcpy(out, t, len);
        out[len] = '\0';
        return;
    }
    if (!inet_ntop(AF_INET6, a, out, (socklen_t)n) && n)
        out[0] = '\0';
}

/* Fixed names rather than /etc/protocols (which Suricata reads), so the
 * output does not depend on the host. Keywords of the IANA registry. */
static const struct {
    uint8_t num;
    const char *name;
} proto_names[] = {
    {1, "ICMP"}, {2, "IGMP"}, {6, "TCP"},  {17, "UDP"},  {47, "GRE"},  {50, "ESP"},
    {51, "AH"},  {58, "IPv6-ICMP"}, {89, "OSPF"}, {103, "PIM"}, {112, "VRRP"}, {132, "SCTP"},
};

const char *eve_proto_name(uint8_t proto, char *buf, size_t n)
{
    for (size_t i = 0; i < EGR_ARRAY_LEN(proto_names); i++)
        if (proto_names[i].num == proto)
            return proto_names[i].name;
    snprintf(buf, n, "%u", (unsigned)proto);
    return buf;
}

/* nDPI protocol name -> Suricata app-layer name, where Suricata has a
 * parser for the same protocol. Anything else is written as the nDPI name
 * in lower case. Implicit-TLS variants (SMTPS, IMAPS, POPS) are "tls"
 * because that is what Suricata's parser sees on the wire. */
static const struct {
    const char *ndpi;
    const char *eve;
} app_map[] = {
    {"HTTP", "http"},
    {"HTTP_Connect", "http"},
    {"HTTP_Proxy", "http"},
    {"TLS", "tls"},
    {"SMTPS", "tls"},
    {"IMAPS", "tls"},
    {"POPS", "tls"},
    {"DNS", "dns"},
    {"SSH", "ssh"},
    {"SMTP", "smtp"},
    {"FTP_CONTROL", "ftp"},
    {"FTP_DATA", "ftp-data"},
    {"QUIC", "quic"},
    {"DHCP", "dhcp"},
    {"NTP", "ntp"},
    {"SNMP", "snmp"},
    {"SMBv1", "smb"},
    {"SMBv23", "smb"},
    {"Kerberos", "krb5"},
    {"RDP", "rdp"},
    {"SIP", "sip"},
    {"IMAP", "imap"},
    {"POP3", "pop3"},
    {"Modbus", "modbus"},
    {"DNP3", "dnp3"},
    {"MQTT", "mqtt"},
    {"Telnet", "telnet"},
    {"TFTP", "tftp"},
    {"VNC", "rfb"},
    {"NFS", "nfs"},
    {"LDAP", "ldap"},
    {"DCE_RPC", "dcerpc"},
    {"PostgreSQL", "pgsql"},
    {"IRC", "irc"},
    {"Jabber", "jabber"},
    {"EthernetIP", "enip"},
    {"HTTP2", "http2"},
};

const char *eve_app_proto(const struct rec_ndpi *n)
{
    /* Per thread so several workers may format at once; the result is
     * valid until this thread's next call. */
    static _Thread_local char lower[sizeof(n->master) > sizeof(n->app) ? sizeof(n->master)
                                                                       : sizeof(n->app)];
    const char *name = n->master[0] ? n->master : n->app;
    if (!name[0] || strcmp(name, "Unknown") == 0)
        return "failed";
    for (size_t i = 0; i < EGR_ARRAY_LEN(app_map); i++)
        if (strcmp(app_map[i].ndpi, name) == 0)
            return app_map[i].eve;
    size_t i = 0;
    for (; name[i] && i + 1 < sizeof(lower); i++)
        lower[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] - 'A' + 'a') : name[i];
    lower[i] = '\0';
    return lower;
}

static void kv_time(struct jbuf *jb, const char *k, uint64_t ts_us)
{
    char t[40];
    eve_format_time(ts_us, t, sizeof(t));
    json_kv_str(jb, k, t);
}

static void kv_ip(struct jbuf *jb, const char *k, int family, const uint8_t *a)
{
    char t[INET6_ADDRSTRLEN];
    eve_format_ip(family, a, t, sizeof(t));
    json_kv_str(jb, k, t);
}

/* A record string field, written only when non-empty. The arrays are
 * NUL-terminated by contract; strnlen keeps a bad record from reading
 * past the field. */
#define KV_FIELD(jb, k, field)                                                    \
    do {                                                                          \
        size_t n_ = strnlen((field), sizeof(field));                              \
        if (n_)                                                                   \
            json_kv_strn((jb), (k), (field), n_);                                 \
    } while (0)

#define FIELD_SET(field) ((field)[0] != '\0')

static void write_tcp(struct jbuf *jb, const struct flow_record *r)
{
    static const struct {
        uint8_t bit;
        const char *name;
    } flags[] = {
        {0x02, "syn"}, {0x01, "fin"}, {0x04, "rst"}, {0x08, "psh"},
        {0x10, "ack"}, {0x20, "urg"}, {0x40, "ecn"}, {0x80, "cwr"},
    };
    static const char digits[] = "0123456789abcdef";
    uint8_t all = r->tcp_flags_ts | r->tcp_flags_tc;
    char hex[3] = {0, 0, 0};
    json_kv_obj(jb, "tcp");
    hex[0] = digits[all >> 4];
    hex[1] = digits[all & 15];
    json_kv_str(jb, "tcp_flags", hex);
    hex[0] = digits[r->tcp_flags_ts >> 4];
    hex[1] = digits[r->tcp_flags_ts & 15];
    json_kv_str(jb, "tcp_flags_ts", hex);
    hex[0] = digits[r->tcp_flags_tc >> 4];
    hex[1] = digits[r->tcp_flags_tc & 15];
    json_kv_str(jb, "tcp_flags_tc", hex);
    /* As Suricata: a key per flag seen in either direction, never false. */
    for (size_t i = 0; i < EGR_ARRAY_LEN(flags); i++)
        if (all & flags[i].bit)
            json_kv_bool(jb, flags[i].name, 1);
    json_obj_close(jb);
}

static void write_tunnel(struct jbuf *jb, uint8_t tunnel)
{
    const char *type;
    int version = 0;
    switch (tunnel) {
    case PKT_TUN_GRE: type = "gre"; break;
    case PKT_TUN_ERSPAN2: type = "erspan"; version = 2; break;
    case PKT_TUN_ERSPAN3: type = "erspan"; version = 3; break;
    case PKT_TUN_VXLAN: type = "vxlan"; break;
    case PKT_TUN_IPIP: type = "ipip"; break;
    default: type = "unknown"; break;
    }
    json_kv_obj(jb, "tunnel");
    json_kv_str(jb, "type", type);
    if (version)
        json_kv_u64(jb, "version", (uint64_t)version);
    json_obj_close(jb);
}

/* Server certificate SHA-1 as Suricata writes tls.fingerprint
 * ("aa:bb:..."); anything that is not 40 hex digits is passed as is. */
static void write_fingerprint(struct jbuf *jb, const char *hex, size_t n)
{
    if (n != 40 || strspn(hex, "0123456789abcdefABCDEF") != 40) {
        json_kv_strn(jb, "fingerprint", hex, n);
        return;
    }
    char out[60];
    size_t o = 0;
    for (size_t i = 0; i < 40; i += 2) {
        if (i)
            out[o++] = ':';
        out[o++] = (char)(hex[i] | 0x20); /* lower-case; digits unchanged */
        out[o++] = (char)(hex[i + 1] | 0x20);
    }
    json_kv_strn(jb, "fingerprint", out, o);
}

static void write_ndpi(struct jbuf *jb, const struct rec_ndpi *n)
{
    json_kv_obj(jb, "ndpi");
    KV_FIELD(jb, "proto", n->proto);
    KV_FIELD(jb, "master", n->master);
    KV_FIELD(jb, "app", n->app);
    KV_FIELD(jb, "category", n->category);
    KV_FIELD(jb, "confidence", n->confidence);
    KV_FIELD(jb, "hostname", n->hostname);

    if (n->risk) {
        json_kv_arr(jb, "risks");
        for (unsigned bit = 0; bit < 64; bit++) {
            if (!(n->risk & ((uint64_t)1 << bit)))
                continue;
            const char *name = classify_risk_name(bit);
            if (name) {
                json_str(jb, name);
            } else {
                char t[16];
                snprintf(t, sizeof(t), "risk_%u", bit);
                json_str(jb, t);
            }
        }
        json_arr_close(jb);
    }

    if (FIELD_SET(n->tls_sni) || FIELD_SET(n->tls_version) || FIELD_SET(n->tls_alpn) ||
        FIELD_SET(n->tls_ja3c) || FIELD_SET(n->tls_ja3s) || FIELD_SET(n->tls_issuer) ||
        FIELD_SET(n->tls_subject) || FIELD_SET(n->tls_sha1)) {
        json_kv_obj(jb, "tls");
        KV_FIELD(jb, "sni", n->tls_sni);
        KV_FIELD(jb, "version", n->tls_version);
        KV_FIELD(jb, "alpn", n->tls_alpn);
        KV_FIELD(jb, "ja3c", n->tls_ja3c);
        KV_FIELD(jb, "ja3s", n->tls_ja3s);
        KV_FIELD(jb, "issuer", n->tls_issuer);
        KV_FIELD(jb, "subject", n->tls_subject);
        size_t fl = strnlen(n->tls_sha1, sizeof(n->tls_sha1));
        if (fl)
            write_fingerprint(jb, n->tls_sha1, fl);
        json_obj_close(jb);
    }

    if (FIELD_SET(n->http_host) || FIELD_SET(n->http_ua) || FIELD_SET(n->http_url) ||
        n->http_status) {
        json_kv_obj(jb, "http");
        KV_FIELD(jb, "host", n->http_host);
        KV_FIELD(jb, "user_agent", n->http_ua);
        KV_FIELD(jb, "url", n->http_url);
        if (n->http_status)
            json_kv_u64(jb, "status", n->http_status);
        json_obj_close(jb);
    }

    if (FIELD_SET(n->dns_query) || n->dns_answer_count) {
        json_kv_obj(jb, "dns");
        KV_FIELD(jb, "query", n->dns_query);
        if (n->dns_qtype)
            json_kv_u64(jb, "qtype", n->dns_qtype);
        if (n->dns_is_response)
            json_kv_u64(jb, "rcode", n->dns_rcode);
        unsigned cnt = n->dns_answer_count;
        if (cnt > REC_DNS_ANSWERS)
            cnt = REC_DNS_ANSWERS;
        if (cnt) {
            json_kv_arr(jb, "answers");
            for (unsigned i = 0; i < cnt; i++) {
                char t[INET6_ADDRSTRLEN];
                int af = n->dns_answer_family[i] == 6 ? AF_INET6 : AF_INET;
                if (inet_ntop(af, n->dns_answers[i], t, sizeof(t)))
                    json_str(jb, t);
            }
            json_arr_close(jb);
        }
        json_obj_close(jb);
    }

    if (FIELD_SET(n->ssh_client) || FIELD_SET(n->ssh_server) ||
        FIELD_SET(n->ssh_hassh_client) || FIELD_SET(n->ssh_hassh_server)) {
        json_kv_obj(jb, "ssh");
        KV_FIELD(jb, "client", n->ssh_client);
        KV_FIELD(jb, "server", n->ssh_server);
        KV_FIELD(jb, "hassh_client", n->ssh_hassh_client);
        KV_FIELD(jb, "hassh_server", n->ssh_hassh_server);
        json_obj_close(jb);
    }
    json_obj_close(jb);
}

static int proto_has_ports(uint8_t proto)
{
    return proto == 6 || proto == 17 || proto == 132;
}

static int proto_is_icmp(uint8_t proto)
{
    return proto == 1 || proto == 58;
}

/* IANA numbers of the protocols written by name in "proto" whose number a
 * consumer cannot guess from the name alone. */
static int proto_needs_number(uint8_t proto)
{
    return !proto_has_ports(proto) && !proto_is_icmp(proto);
}

/* nDPI names IKE and ESP/AH alike ("IPsec"); only the UDP flow is IKE, the
 * protocol Suricata's "ike" parser handles. */
static const char *app_proto_for(const struct flow_record *r)
{
    const char *ap = eve_app_proto(&r->ndpi);
    if (strcmp(ap, "ipsec") == 0 && r->proto == 17)
        return "ike";
    return ap;
}

/* The members every event about a flow starts with (EVE's common header):
 * time, flow_id, event_type, vlan, addresses, ports, protocol, app_proto,
 * community_id, then egressd's enrichment. */
static void write_flow_head(struct jbuf *jb, const struct flow_record *r, uint64_t ts_us,
                            const char *event_type)
{
    char pbuf[8];
    int fam = r->family == 6 ? 6 : 4;

    kv_time(jb, "timestamp", ts_us);
    json_kv_u64(jb, "flow_id", r->flow_id);
    json_kv_str(jb, "event_type", event_type);
    if (r->vlan_count) {
        unsigned nv = r->vlan_count > 2 ? 2 : r->vlan_count;
        json_kv_arr(jb, "vlan");
        for (unsigned i = 0; i < nv; i++)
            json_u64(jb, r->vlan[i]);
        json_arr_close(jb);
    }
    kv_ip(jb, "src_ip", fam, r->src_ip);
    if (proto_has_ports(r->proto))
        json_kv_u64(jb, "src_port", r->src_port);
    kv_ip(jb, "dest_ip", fam, r->dst_ip);
    if (proto_has_ports(r->proto))
        json_kv_u64(jb, "dest_port", r->dst_port);
    json_kv_str(jb, "proto", eve_proto_name(r->proto, pbuf, sizeof(pbuf)));
    if (proto_needs_number(r->proto))
        json_kv_u64(jb, "proto_number", r->proto);
    if (proto_is_icmp(r->proto)) {
        json_kv_u64(jb, "icmp_type", r->src_port);
        json_kv_u64(jb, "icmp_code", r->dst_port);
    }
    json_kv_str(jb, "app_proto", app_proto_for(r));
    KV_FIELD(jb, "community_id", r->community_id);

    const struct rec_enrich *e = &r->enrich;
    if (e->direction != DIR_UNKNOWN)
        json_kv_str(jb, "direction", rec_direction_name(e->direction));
    if (e->dest_name[0]) {
        KV_FIELD(jb, "dest_name", e->dest_name);
        json_kv_str(jb, "dest_name_source", rec_name_src_name(e->dest_name_src));
    }
    if (e->asset[0] || e->role[0]) {
        json_kv_obj(jb, "asset");
        if (e->asset[0])
            KV_FIELD(jb, "name", e->asset);
        if (e->role[0])
            KV_FIELD(jb, "role", e->role);
        json_obj_close(jb);
    }
    if (e->has_country || e->has_asn || e->has_org) {
        json_kv_obj(jb, "geo");
        if (e->has_country)
            KV_FIELD(jb, "country", e->country);
        if (e->has_asn)
            json_kv_u64(jb, "asn", e->asn);
        if (e->has_org)
            KV_FIELD(jb, "as_org", e->as_org);
        json_obj_close(jb);
    }
}

/* The alerts a flow raised, so a record joins them: when its first alert
 * was decided, at which kind of packet, and their keys (extension). */
static void write_verdict(struct jbuf *jb, const struct flow_record *r)
{
    static const char hex[] = "0123456789abcdef";
    json_kv_obj(jb, "verdict");
    kv_time(jb, "alerted_at", r->verdict_us);
    json_kv_str(jb, "by", verdict_stage_name(r->verdict_by));
    json_kv_arr(jb, "alert_keys");
    for (unsigned i = 0; i < r->nalert_keys && i < VERDICT_KEYS_MAX; i++) {
        char k[41];
        for (int b = 0; b < 20; b++) {
            k[2 * b] = hex[r->alert_keys[i][b] >> 4];
            k[2 * b + 1] = hex[r->alert_keys[i][b] & 15];
        }
        k[40] = '\0';
        json_str(jb, k);
    }
    json_arr_close(jb);
    json_obj_close(jb);
}

void eve_format_flow(struct jbuf *jb, const struct flow_record *r)
{
    json_obj_open(jb);
    write_flow_head(jb, r, r->emit_us, "flow");

    json_kv_obj(jb, "flow");
    json_kv_u64(jb, "pkts_toserver", r->pkts_toserver);
    json_kv_u64(jb, "pkts_toclient", r->pkts_toclient);
    json_kv_u64(jb, "bytes_toserver", r->bytes_toserver);
    json_kv_u64(jb, "bytes_toclient", r->bytes_toclient);
    kv_time(jb, "start", r->first_us);
    kv_time(jb, "end", r->last_us);
    /* Suricata's age: whole seconds of end minus whole seconds of start. */
    uint64_t s0 = r->first_us / US_PER_S, s1 = r->last_us / US_PER_S;
    json_kv_u64(jb, "age", s1 > s0 ? s1 - s0 : 0);
    json_kv_str(jb, "state", flow_state_name(r->state));
    json_kv_str(jb, "reason", flow_end_reason_name(r->reason));
    json_kv_bool(jb, "alerted", r->alerted);
    json_kv_str(jb, "initiator", flow_init_how_name(r->init_how));
    json_kv_bool(jb, "interim", r->reason == END_ACTIVE);
    json_kv_u64(jb, "seq", r->seq);
    json_obj_close(jb);

    if (r->proto == 6)
        write_tcp(jb, r);
    if (r->tunnel != PKT_TUN_NONE)
        write_tunnel(jb, r->tunnel);
    if (r->ndpi.proto[0])
        write_ndpi(jb, &r->ndpi);
    if (r->nalert_keys)
        write_verdict(jb, r);
    json_obj_close(jb);
}

/* Signature ids of egressd's alert kinds, in a private range so they never
 * collide with Suricata rule sids in a shared SIEM index. */
#define EVE_SID_BASE 9100000u

void eve_format_alert(struct jbuf *jb, const struct alert_record *a)
{
    const struct flow_record *r = &a->flow;
    json_obj_open(jb);
    write_flow_head(jb, r, a->ts_us, "alert");
    json_kv_obj(jb, "alert");
    json_kv_str(jb, "action", "allowed");
    json_kv_u64(jb, "gid", 1);
    json_kv_u64(jb, "signature_id", EVE_SID_BASE + a->kind);
    json_kv_u64(jb, "rev", 1);
    KV_FIELD(jb, "signature", a->reason);
    json_kv_str(jb, "category", alert_kind_name(a->kind));
    json_kv_u64(jb, "severity", a->severity);
    json_kv_str(jb, "severity_name", alert_severity_name(a->severity));
    json_kv_str(jb, "alert_key", a->alert_key);
    json_kv_u64(jb, "count", a->count);
    kv_time(jb, "first_seen", a->first_seen_us);
    kv_time(jb, "last_seen", a->last_seen_us);
    json_kv_bool(jb, "update", a->update);
    if (a->service[0])
        KV_FIELD(jb, "service", a->service);
    if (a->intel_list[0])
        KV_FIELD(jb, alert_list_field(a->kind), a->intel_list);
    json_obj_close(jb);
    if (r->ndpi.proto[0]) {
        json_kv_obj(jb, "ndpi");
        KV_FIELD(jb, "proto", r->ndpi.proto);
        json_obj_close(jb);
    }
    json_obj_close(jb);
}

void eve_format_stats(struct jbuf *jb, const struct run_stats *st)
{
    json_obj_open(jb);
    kv_time(jb, "timestamp", st->ts_us);
    json_kv_str(jb, "event_type", "stats");
    json_kv_obj(jb, "stats");

    json_kv_obj(jb, "capture");
    json_kv_u64(jb, "packets", st->packets);
    json_kv_u64(jb, "bytes", st->bytes);
    json_kv_u64(jb, "ip_packets", st->ip_packets);
    json_kv_u64(jb, "not_ip", st->not_ip);
    json_kv_u64(jb, "inputs", st->inputs);
    json_kv_u64(jb, "input_errors", st->input_errors);
    json_kv_u64(jb, "kernel_drops", st->drop_kernel);
    json_kv_u64(jb, "kernel_ifdrops", st->drop_ifdrop);
    json_obj_close(jb);

    json_kv_obj(jb, "decoder");
    for (unsigned i = 0; i < DEC_COUNTER_MAX; i++) {
        const char *name = decode_counter_name(i);
        if (name)
            json_kv_u64(jb, name, st->decode.c[i]);
    }
    json_obj_close(jb);

    json_kv_obj(jb, "flow");
    json_kv_u64(jb, "created", st->flow.flows_created);
    json_kv_u64(jb, "active", st->flow.active);
    json_kv_u64(jb, "active_max", st->flow.active_max);
    json_kv_u64(jb, "frag_orphans", st->flow.frag_orphans);
    json_kv_u64(jb, "classify_oom", st->flow.classify_oom);
    json_kv_obj(jb, "records");
    for (unsigned i = 0; i < END_REASON_MAX; i++)
        json_kv_u64(jb, flow_end_reason_name(i), st->flow.records[i]);
    json_obj_close(jb);
    json_kv_u64(jb, "evicted", st->flow.records[END_EVICTED]);
    json_obj_close(jb);

    json_kv_obj(jb, "enrich");
    json_kv_u64(jb, "geo_lookups", st->geo_lookups);
    json_kv_u64(jb, "geo_cache_hits", st->geo_cache_hits);
    json_kv_u64(jb, "dns_responses", st->dns_responses);
    json_kv_u64(jb, "dns_errors", st->dns_errors);
    json_kv_u64(jb, "names_learned", st->names_learned);
    json_kv_u64(jb, "names_hits", st->names_hits);
    json_obj_close(jb);
    json_kv_u64(jb, "alerts", st->alerts);
    json_kv_obj(jb, "policy");
    json_kv_u64(jb, "alerts_suppressed", st->alerts_suppressed);
    json_kv_u64(jb, "alerts_rate_limited", st->alerts_rate_limited);
    json_kv_u64(jb, "learned", st->learned);
    json_obj_close(jb);
    if (st->redis.enabled) {
        const struct redis_stats *r = &st->redis;
        json_kv_obj(jb, "redis");
        json_kv_u64(jb, "records", r->records);
        json_kv_u64(jb, "sent", r->sent);
        json_kv_u64(jb, "queued", r->queued);
        json_kv_u64(jb, "spooled", r->spooled);
        json_kv_u64(jb, "dropped", r->dropped);
        json_kv_u64(jb, "rejected", r->rejected);
        json_kv_u64(jb, "undelivered", r->undelivered);
        json_kv_u64(jb, "reconnects", r->reconnects);
        json_kv_u64(jb, "resent", r->resent);
        json_kv_u64(jb, "queue_depth", r->queue_depth);
        json_kv_u64(jb, "spool_depth", r->spool_depth);
        json_obj_close(jb);
    }

    json_obj_close(jb); /* stats */
    json_obj_close(jb);
}

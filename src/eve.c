/* eve.c - flow records, alerts and run totals as Suricata EVE JSON objects
 * (see include/egressd/eve.h; every field is described in
 * docs/eve-format.md, and docs/eve-schema.json is their JSON Schema).
 *
 * Where egressd knows what Suricata logs, it is written under Suricata 7's
 * names, types and meanings: the common header (timestamp, flow_id,
 * event_type, the 5-tuple, proto, app_proto, community_id), flow {...} and
 * tcp {...} of a flow event, the tls/quic/http/ssh objects, dns events in
 * Suricata's version-2 form, alert {...} with the alert's flow {...}. So
 * pipelines built for Suricata (SIEM modules, passive DNS, JA3/SNI rules)
 * read them unchanged. What Suricata does not have lives in extension
 * fields, each listed in the documentation (network_direction, dest_name,
 * asset, geo, flow.initiator/interim/seq, encapsulation, alert.alert_key
 * and its counters) and in the "ndpi" object (what only nDPI knows).
 *
 * Every string that came off the wire (SNI, host, URL, user agent,
 * certificate names, DNS names, SSH banners) goes through the jbuf escaper;
 * nothing here trusts record contents. Pure formatting: no I/O, no state,
 * safe from any thread.
 */
#include "egressd/eve.h"

#include <arpa/inet.h>
#include <pthread.h>
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

/* app_map's indices in strcmp order of the nDPI name, made once; the
 * table itself stays in the order that reads best. */
static uint8_t app_sorted[EGR_ARRAY_LEN(app_map)];
_Static_assert(EGR_ARRAY_LEN(app_map) <= 256, "app_sorted holds uint8_t indices");
static pthread_once_t app_sorted_once = PTHREAD_ONCE_INIT;

static void sort_app_map(void)
{
    /* Insertion sort: a few dozen entries, once per process. */
    for (size_t i = 0; i < EGR_ARRAY_LEN(app_map); i++) {
        size_t j = i;
        while (j > 0 && strcmp(app_map[app_sorted[j - 1]].ndpi, app_map[i].ndpi) > 0) {
            app_sorted[j] = app_sorted[j - 1];
            j--;
        }
        app_sorted[j] = (uint8_t)i;
    }
}

const char *eve_app_proto(const struct rec_ndpi *n)
{
    /* Per thread so several workers may format at once; the result is
     * valid until this thread's next call. */
    static _Thread_local char lower[sizeof(n->master) > sizeof(n->app) ? sizeof(n->master)
                                                                       : sizeof(n->app)];
    const char *name = n->master[0] ? n->master : n->app;
    if (!name[0] || strcmp(name, "Unknown") == 0)
        return "failed";
    /* Twice per record: a binary search over the table in name order. */
    pthread_once(&app_sorted_once, sort_app_map);
    size_t lo = 0, hi = EGR_ARRAY_LEN(app_map);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(app_map[app_sorted[mid]].ndpi, name);
        if (c == 0)
            return app_map[app_sorted[mid]].eve;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
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

/* Where egressd decapsulated the flow. Not Suricata's "tunnel" object,
 * which describes the outer flow by its addresses: egressd keeps only the
 * kind of encapsulation. */
static void write_encapsulation(struct jbuf *jb, uint8_t tunnel)
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
    json_kv_obj(jb, "encapsulation");
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

/* The session's version as Suricata names it in tls.version. */
const char *eve_tls_version_name(uint16_t v, char *buf, size_t n)
{
    switch (v) {
    case 0x0002:
    case 0x0200: return "SSLv2";
    case 0x0300: return "SSLv3";
    case 0x0301: return "TLSv1";
    case 0x0302: return "TLS 1.1";
    case 0x0303: return "TLS 1.2";
    case 0x0304: return "TLS 1.3";
    default: break;
    }
    if ((v & 0xff00) == 0x7f00) /* TLS 1.3 drafts */
        snprintf(buf, n, "TLS 1.3 draft-%u", (unsigned)(v & 0xff));
    else
        snprintf(buf, n, "0x%04x", (unsigned)v);
    return buf;
}

/* Certificate validity as Suricata writes tls.notbefore/notafter:
 * "2024-01-31T12:00:00", UTC, no zone. */
static void kv_cert_time(struct jbuf *jb, const char *k, uint32_t t)
{
    struct tm tm;
    time_t s = (time_t)t;
    char out[64];
    if (!gmtime_r(&s, &tm))
        return;
    snprintf(out, sizeof(out), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    json_kv_str(jb, k, out);
}

#define FIELD_SET(field) ((field)[0] != '\0')

static void write_tls(struct jbuf *jb, const struct rec_ndpi *n)
{
    char vb[24];
    json_kv_obj(jb, "tls");
    KV_FIELD(jb, "subject", n->tls_subject);
    KV_FIELD(jb, "issuerdn", n->tls_issuer);
    size_t fl = strnlen(n->tls_sha1, sizeof(n->tls_sha1));
    if (fl)
        write_fingerprint(jb, n->tls_sha1, fl);
    KV_FIELD(jb, "sni", n->tls_sni);
    if (n->tls_version)
        json_kv_str(jb, "version", eve_tls_version_name(n->tls_version, vb, sizeof(vb)));
    if (n->tls_not_before)
        kv_cert_time(jb, "notbefore", n->tls_not_before);
    if (n->tls_not_after)
        kv_cert_time(jb, "notafter", n->tls_not_after);
    if (FIELD_SET(n->tls_ja3c)) {
        json_kv_obj(jb, "ja3");
        KV_FIELD(jb, "hash", n->tls_ja3c);
        KV_FIELD(jb, "string", n->tls_ja3c_str);
        json_obj_close(jb);
    }
    if (FIELD_SET(n->tls_ja3s)) {
        json_kv_obj(jb, "ja3s");
        KV_FIELD(jb, "hash", n->tls_ja3s);
        json_obj_close(jb);
    }
    json_obj_close(jb);
}

/* QUIC: Suricata's quic object (the SNI, JA3 and user agent of the
 * ClientHello nDPI decrypted). */
static void write_quic(struct jbuf *jb, const struct rec_ndpi *n)
{
    json_kv_obj(jb, "quic");
    KV_FIELD(jb, "sni", n->tls_sni);
    KV_FIELD(jb, "ua", n->http_ua);
    if (FIELD_SET(n->tls_ja3c)) {
        json_kv_obj(jb, "ja3");
        KV_FIELD(jb, "hash", n->tls_ja3c);
        json_obj_close(jb);
    }
    json_obj_close(jb);
}

/* The port of a Host header ("example.com:8080", "[::1]:8080"); 0 if none. */
static unsigned host_port(const char *h, size_t n)
{
    size_t i = n;
    while (i > 0 && h[i - 1] >= '0' && h[i - 1] <= '9')
        i--;
    if (i == n || i == 0 || h[i - 1] != ':' || n - i > 5)
        return 0;
    /* A bare IPv6 literal has more colons and no brackets: no port. */
    if (h[0] != '[' && memchr(h, ':', i - 1))
        return 0;
    unsigned v = 0;
    for (size_t k = i; k < n; k++)
        v = v * 10 + (unsigned)(h[k] - '0');
    return v > 0 && v <= 65535 ? v : 0;
}

static void write_http(struct jbuf *jb, const struct rec_ndpi *n)
{
    json_kv_obj(jb, "http");
    size_t hl = strnlen(n->http_host, sizeof(n->http_host));
    if (hl) {
        json_kv_strn(jb, "hostname", n->http_host, hl);
        unsigned port = host_port(n->http_host, hl);
        if (port)
            json_kv_u64(jb, "http_port", port);
    }
    KV_FIELD(jb, "url", n->http_url);
    KV_FIELD(jb, "http_user_agent", n->http_ua);
    KV_FIELD(jb, "http_content_type", n->http_content_type);
    KV_FIELD(jb, "http_method", n->http_method);
    if (n->http_version == 10 || n->http_version == 11)
        json_kv_str(jb, "protocol", n->http_version == 11 ? "HTTP/1.1" : "HTTP/1.0");
    if (n->http_status)
        json_kv_u64(jb, "status", n->http_status);
    json_obj_close(jb);
}

/* "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3" -> proto_version "2.0", software_version
 * "OpenSSH_8.9p1" (the comment after the space is not part of it, as in
 * Suricata). A banner without the "SSH-" form is the software version. */
static void write_ssh_side(struct jbuf *jb, const char *k, const char *banner, size_t bl,
                           const char *hassh)
{
    json_kv_obj(jb, k);
    if (bl) {
        const char *sw = banner;
        size_t swl = bl;
        if (bl > 4 && memcmp(banner, "SSH-", 4) == 0) {
            const char *dash = memchr(banner + 4, '-', bl - 4);
            if (dash) {
                json_kv_strn(jb, "proto_version", banner + 4, (size_t)(dash - banner - 4));
                sw = dash + 1;
                swl = bl - (size_t)(sw - banner);
            }
        }
        const char *sp = memchr(sw, ' ', swl);
        if (sp)
            swl = (size_t)(sp - sw);
        if (swl)
            json_kv_strn(jb, "software_version", sw, swl);
    }
    if (hassh[0]) {
        /* nDPI writes the MD5 in upper case; Suricata in lower case. */
        char h[33];
        size_t hl = strnlen(hassh, 32);
        for (size_t i = 0; i < hl; i++)
            h[i] = hassh[i] >= 'A' && hassh[i] <= 'F' ? (char)(hassh[i] | 0x20) : hassh[i];
        json_kv_obj(jb, "hassh");
        json_kv_strn(jb, "hash", h, hl);
        json_obj_close(jb);
    }
    json_obj_close(jb);
}

static void write_ssh(struct jbuf *jb, const struct rec_ndpi *n)
{
    json_kv_obj(jb, "ssh");
    if (FIELD_SET(n->ssh_client) || FIELD_SET(n->ssh_hassh_client))
        write_ssh_side(jb, "client", n->ssh_client, strnlen(n->ssh_client, sizeof(n->ssh_client)),
                       n->ssh_hassh_client);
    if (FIELD_SET(n->ssh_server) || FIELD_SET(n->ssh_hassh_server))
        write_ssh_side(jb, "server", n->ssh_server, strnlen(n->ssh_server, sizeof(n->ssh_server)),
                       n->ssh_hassh_server);
    json_obj_close(jb);
}

static int has_tls(const struct rec_ndpi *n)
{
    return FIELD_SET(n->tls_sni) || n->tls_version || FIELD_SET(n->tls_ja3c) ||
           FIELD_SET(n->tls_ja3s) || FIELD_SET(n->tls_issuer) || FIELD_SET(n->tls_subject) ||
           FIELD_SET(n->tls_sha1);
}

static int has_http(const struct rec_ndpi *n)
{
    return FIELD_SET(n->http_host) || FIELD_SET(n->http_ua) || FIELD_SET(n->http_url) ||
           FIELD_SET(n->http_method) || n->http_status;
}

/* The application-layer objects Suricata writes under the same names
 * (tls, quic, http, ssh), from what nDPI found. DNS has events of its
 * own (eve_format_dns). */
static void write_app(struct jbuf *jb, const struct flow_record *r, const char *app_proto)
{
    const struct rec_ndpi *n = &r->ndpi;
    int quic = strcmp(app_proto, "quic") == 0;
    if (quic && (FIELD_SET(n->tls_sni) || FIELD_SET(n->http_ua) || FIELD_SET(n->tls_ja3c)))
        write_quic(jb, n);
    else if (!quic && has_tls(n))
        write_tls(jb, n);
    if (!quic && has_http(n))
        write_http(jb, n);
    if (FIELD_SET(n->ssh_client) || FIELD_SET(n->ssh_server) || FIELD_SET(n->ssh_hassh_client) ||
        FIELD_SET(n->ssh_hassh_server))
        write_ssh(jb, n);
}

/* What only nDPI knows (extension). */
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
    /* Suricata 7 does not log ALPN (8 has tls.client_alpns). */
    if (FIELD_SET(n->tls_alpn))
        KV_FIELD(jb, "alpn", n->tls_alpn);
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

/* The 5-tuple of an event, the flow's initiator first unless `reverse`
 * (a DNS answer is written from the server's side, as Suricata does). */
static void write_tuple(struct jbuf *jb, const struct flow_record *r, int reverse)
{
    char pbuf[8];
    int fam = r->family == 6 ? 6 : 4;
    const uint8_t *sip = reverse ? r->dst_ip : r->src_ip, *dip = reverse ? r->src_ip : r->dst_ip;
    uint16_t sp = reverse ? r->dst_port : r->src_port, dp = reverse ? r->src_port : r->dst_port;
    if (r->vlan_count) {
        unsigned nv = r->vlan_count > 2 ? 2 : r->vlan_count;
        json_kv_arr(jb, "vlan");
        for (unsigned i = 0; i < nv; i++)
            json_u64(jb, r->vlan[i]);
        json_arr_close(jb);
    }
    kv_ip(jb, "src_ip", fam, sip);
    if (proto_has_ports(r->proto))
        json_kv_u64(jb, "src_port", sp);
    kv_ip(jb, "dest_ip", fam, dip);
    if (proto_has_ports(r->proto))
        json_kv_u64(jb, "dest_port", dp);
    json_kv_str(jb, "proto", eve_proto_name(r->proto, pbuf, sizeof(pbuf)));
    if (proto_needs_number(r->proto))
        json_kv_u64(jb, "proto_number", r->proto);
    if (proto_is_icmp(r->proto)) {
        json_kv_u64(jb, "icmp_type", r->src_port);
        json_kv_u64(jb, "icmp_code", r->dst_port);
    }
}

/* egressd's enrichment (extensions): locality, destination name, asset,
 * GeoIP/ASN of the remote end. */
static void write_enrich(struct jbuf *jb, const struct rec_enrich *e)
{
    if (e->direction != DIR_UNKNOWN)
        json_kv_str(jb, "network_direction", rec_direction_name(e->direction));
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
    json_kv_obj(jb, "decision");
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

/* The members every event about a flow starts with (EVE's common header):
 * time, flow_id, event_type, vlan, addresses, ports, protocol, app_proto,
 * community_id, then egressd's enrichment. */
static void write_flow_head(struct jbuf *jb, const struct flow_record *r, uint64_t ts_us,
                            const char *event_type, const char *app_proto)
{
    kv_time(jb, "timestamp", ts_us);
    json_kv_u64(jb, "flow_id", r->flow_id);
    json_kv_str(jb, "event_type", event_type);
    write_tuple(jb, r, 0);
    json_kv_str(jb, "app_proto", app_proto);
    KV_FIELD(jb, "community_id", r->community_id);
    write_enrich(jb, &r->enrich);
}

void eve_format_flow(struct jbuf *jb, const struct flow_record *r)
{
    const char *ap = app_proto_for(r); /* once: it is written twice */
    json_obj_open(jb);
    write_flow_head(jb, r, r->emit_us, "flow", ap);

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
        write_encapsulation(jb, r->tunnel);
    if (r->ndpi.proto[0]) {
        write_app(jb, r, ap);
        write_ndpi(jb, &r->ndpi);
    }
    if (r->nalert_keys)
        write_verdict(jb, r);
    json_obj_close(jb);
}

/* ---- dns events ------------------------------------------------------------ */

/* Type names as Suricata writes rrtype (the IANA mnemonics); others as
 * the number in decimal. */
static const struct {
    uint16_t type;
    const char *name;
} rr_types[] = {
    {1, "A"},       {2, "NS"},      {5, "CNAME"},   {6, "SOA"},    {12, "PTR"},   {13, "HINFO"},
    {15, "MX"},     {16, "TXT"},    {17, "RP"},     {18, "AFSDB"}, {24, "SIG"},   {25, "KEY"},
    {28, "AAAA"},   {29, "LOC"},    {33, "SRV"},    {35, "NAPTR"}, {36, "KX"},    {37, "CERT"},
    {39, "DNAME"},  {41, "OPT"},    {42, "APL"},    {43, "DS"},    {44, "SSHFP"}, {45, "IPSECKEY"},
    {46, "RRSIG"},  {47, "NSEC"},   {48, "DNSKEY"}, {49, "DHCID"}, {50, "NSEC3"}, {51, "NSEC3PARAM"},
    {52, "TLSA"},   {55, "HIP"},    {59, "CDS"},    {60, "CDNSKEY"}, {61, "OPENPGPKEY"},
    {64, "SVCB"},   {65, "HTTPS"},  {99, "SPF"},    {249, "TKEY"}, {250, "TSIG"}, {251, "IXFR"},
    {252, "AXFR"},  {255, "ANY"},   {256, "URI"},   {257, "CAA"},  {32768, "TA"}, {32769, "DLV"},
};

const char *eve_dns_rrtype_name(uint16_t type, char *buf, size_t n)
{
    for (size_t i = 0; i < EGR_ARRAY_LEN(rr_types); i++)
        if (rr_types[i].type == type)
            return rr_types[i].name;
    snprintf(buf, n, "%u", (unsigned)type);
    return buf;
}

const char *eve_dns_rcode_name(unsigned rcode, char *buf, size_t n)
{
    static const char *const names[] = {"NOERROR", "FORMERR",  "SERVFAIL", "NXDOMAIN",
                                        "NOTIMP",  "REFUSED",  "YXDOMAIN", "YXRRSET",
                                        "NXRRSET", "NOTAUTH",  "NOTZONE"};
    if (rcode < EGR_ARRAY_LEN(names))
        return names[rcode];
    snprintf(buf, n, "%u", rcode);
    return buf;
}

/* Which dns events a record has: a query when one was seen, an answer
 * when a response was parsed. Only the first record of a flow carries
 * them (an interim record's later records would repeat them). */
#define DNS_EV_QUERY 1u
#define DNS_EV_ANSWER 2u

static unsigned dns_events(const struct flow_record *r)
{
    const struct rec_ndpi *n = &r->ndpi;
    if (r->seq != 0 || strcmp(app_proto_for(r), "dns") != 0)
        return 0;
    unsigned ev = 0;
    if (n->dns_has_id && n->dns_query[0])
        ev |= DNS_EV_QUERY;
    if (n->dns_parsed)
        ev |= DNS_EV_ANSWER;
    return ev;
}

static void write_dns_head(struct jbuf *jb, const struct flow_record *r, uint64_t ts_us,
                           int reverse)
{
    json_obj_open(jb);
    kv_time(jb, "timestamp", ts_us);
    json_kv_u64(jb, "flow_id", r->flow_id);
    json_kv_str(jb, "event_type", "dns");
    write_tuple(jb, r, reverse);
    KV_FIELD(jb, "community_id", r->community_id);
    write_enrich(jb, &r->enrich);
}

static void write_dns_query(struct jbuf *jb, const struct flow_record *r)
{
    const struct rec_ndpi *n = &r->ndpi;
    char tb[8];
    write_dns_head(jb, r, r->first_us, 0);
    json_kv_obj(jb, "dns");
    json_kv_u64(jb, "version", 2);
    json_kv_str(jb, "type", "query");
    json_kv_u64(jb, "id", n->dns_id);
    KV_FIELD(jb, "rrname", n->dns_query);
    json_kv_str(jb, "rrtype", eve_dns_rrtype_name(n->dns_qtype, tb, sizeof(tb)));
    json_kv_u64(jb, "tx_id", 0);
    json_kv_u64(jb, "opcode", 0);
    json_obj_close(jb);
    json_obj_close(jb);
}

static void rr_data(struct jbuf *jb, const struct rec_ndpi *n, const struct rec_dns_rr *rr)
{
    const char *d = n->dns_pool + rr->data_off;
    if (rr->type == 1 || rr->type == 28) {
        char t[INET6_ADDRSTRLEN];
        eve_format_ip(rr->type == 28 ? 6 : 4, (const uint8_t *)d, t, sizeof(t));
        json_str(jb, t);
    } else {
        json_strn(jb, d, rr->data_len);
    }
}

static void write_dns_answer(struct jbuf *jb, const struct flow_record *r)
{
    const struct rec_ndpi *n = &r->ndpi;
    char tb[8], rb[8], fb[8];
    write_dns_head(jb, r, n->dns_resp_us ? n->dns_resp_us : r->last_us, 1);
    json_kv_obj(jb, "dns");
    json_kv_u64(jb, "version", 2);
    json_kv_str(jb, "type", "answer");
    json_kv_u64(jb, "id", n->dns_resp_id);
    snprintf(fb, sizeof(fb), "%x", (unsigned)n->dns_flags);
    json_kv_str(jb, "flags", fb);
    json_kv_bool(jb, "qr", 1);
    if (n->dns_flags & 0x0400)
        json_kv_bool(jb, "aa", 1);
    if (n->dns_flags & 0x0100)
        json_kv_bool(jb, "rd", 1);
    if (n->dns_flags & 0x0080)
        json_kv_bool(jb, "ra", 1);
    json_kv_u64(jb, "opcode", (n->dns_flags >> 11) & 0x0f);
    if (n->dns_qname_len)
        json_kv_strn(jb, "rrname", n->dns_pool + n->dns_qname_off, n->dns_qname_len);
    else
        KV_FIELD(jb, "rrname", n->dns_query);
    json_kv_str(jb, "rrtype", eve_dns_rrtype_name(n->dns_qtype, tb, sizeof(tb)));
    json_kv_str(jb, "rcode", eve_dns_rcode_name(n->dns_flags & 0x0f, rb, sizeof(rb)));
    if (n->dns_rr_count) {
        unsigned cnt = n->dns_rr_count > REC_DNS_ANSWERS ? REC_DNS_ANSWERS : n->dns_rr_count;
        json_kv_arr(jb, "answers");
        for (unsigned i = 0; i < cnt; i++) {
            const struct rec_dns_rr *rr = &n->dns_rr[i];
            json_obj_open(jb);
            json_kv_strn(jb, "rrname", n->dns_pool + rr->owner_off, rr->owner_len);
            json_kv_str(jb, "rrtype", eve_dns_rrtype_name(rr->type, tb, sizeof(tb)));
            json_kv_u64(jb, "ttl", rr->ttl);
            json_key(jb, "rdata");
            rr_data(jb, n, rr);
            json_obj_close(jb);
        }
        json_arr_close(jb);
        /* Suricata's "grouped" form: the rdata per type. */
        json_kv_obj(jb, "grouped");
        static const uint16_t order[] = {1, 28, 5};
        for (size_t t = 0; t < EGR_ARRAY_LEN(order); t++) {
            int open = 0;
            for (unsigned i = 0; i < cnt; i++) {
                if (n->dns_rr[i].type != order[t])
                    continue;
                if (!open)
                    json_kv_arr(jb, eve_dns_rrtype_name(order[t], tb, sizeof(tb)));
                open = 1;
                rr_data(jb, n, &n->dns_rr[i]);
            }
            if (open)
                json_arr_close(jb);
        }
        json_obj_close(jb);
    }
    json_obj_close(jb);
    json_obj_close(jb);
}

unsigned eve_record_events(const struct flow_record *r)
{
    return 1 + (unsigned)__builtin_popcount(dns_events(r));
}

void eve_format_record_event(struct jbuf *jb, const struct flow_record *r, unsigned i)
{
    unsigned ev = dns_events(r);
    if ((ev & DNS_EV_QUERY) && i-- == 0) {
        write_dns_query(jb, r);
        return;
    }
    if ((ev & DNS_EV_ANSWER) && i-- == 0) {
        write_dns_answer(jb, r);
        return;
    }
    eve_format_flow(jb, r);
}

/* ---- alert events ---------------------------------------------------------- */

/* Signature ids of egressd's alert kinds, in a private range so they never
 * collide with Suricata rule sids in a shared SIEM index. */
#define EVE_SID_BASE 9100000u

void eve_format_alert(struct jbuf *jb, const struct alert_record *a)
{
    const struct flow_record *r = &a->flow;
    json_obj_open(jb);
    write_flow_head(jb, r, a->ts_us, "alert", app_proto_for(r));
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

    /* Suricata's flow sub-object of an alert: the flow so far, and its
     * original direction (the initiator is always src here). */
    int fam = r->family == 6 ? 6 : 4;
    json_kv_obj(jb, "flow");
    json_kv_u64(jb, "pkts_toserver", r->pkts_toserver);
    json_kv_u64(jb, "pkts_toclient", r->pkts_toclient);
    json_kv_u64(jb, "bytes_toserver", r->bytes_toserver);
    json_kv_u64(jb, "bytes_toclient", r->bytes_toclient);
    kv_time(jb, "start", r->first_us);
    kv_ip(jb, "src_ip", fam, r->src_ip);
    kv_ip(jb, "dest_ip", fam, r->dst_ip);
    if (proto_has_ports(r->proto)) {
        json_kv_u64(jb, "src_port", r->src_port);
        json_kv_u64(jb, "dest_port", r->dst_port);
    }
    json_obj_close(jb);

    if (r->ndpi.proto[0]) {
        write_app(jb, r, app_proto_for(r));
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
    json_kv_u64(jb, "time_backwards", st->time_backwards);
    json_kv_u64(jb, "inputs", st->inputs);
    json_kv_u64(jb, "input_errors", st->input_errors);
    json_kv_u64(jb, "kernel_drops", st->drop_kernel);
    json_kv_u64(jb, "kernel_ifdrops", st->drop_ifdrop);
    json_obj_close(jb);

    json_kv_obj(jb, "decoder");
    /* Suricata's names for the totals, then egressd's counters. */
    json_kv_u64(jb, "pkts", st->packets);
    json_kv_u64(jb, "bytes", st->bytes);
    for (unsigned i = 0; i < DEC_COUNTER_MAX; i++) {
        const char *name = decode_counter_name(i);
        if (name)
            json_kv_u64(jb, name, st->decode.c[i]);
    }
    json_obj_close(jb);

    json_kv_obj(jb, "flow");
    json_kv_u64(jb, "total", st->flow.flows_created); /* Suricata's name */
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
        json_kv_u64(jb, "unspooled", r->unspooled);
        json_kv_u64(jb, "dropped", r->dropped);
        json_kv_u64(jb, "rejected", r->rejected);
        json_kv_u64(jb, "undelivered", r->undelivered);
        json_kv_u64(jb, "reconnects", r->reconnects);
        json_kv_u64(jb, "resent", r->resent);
        json_kv_u64(jb, "aggregates_unwritten", r->agg_unwritten);
        json_kv_u64(jb, "queue_depth", r->queue_depth);
        json_kv_u64(jb, "spool_depth", r->spool_depth);
        json_obj_close(jb);
    }

    json_obj_close(jb); /* stats */
    json_obj_close(jb);
}

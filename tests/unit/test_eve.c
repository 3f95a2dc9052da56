/* test_eve.c - EVE formatting: a TCP/TLS record and an ICMP record against
 * exact expected text, an IPv6/UDP/DNS record with VLANs and a tunnel,
 * hostile bytes in every wire-derived string, the stats event, the record
 * enum names, timestamps, protocol names and the nDPI -> app_proto map.
 * Every produced event is also parsed by an independent JSON parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egressd/decode.h"
#include "egressd/eve.h"
#include "egressd/pkt.h"
#include "json_check.h"

#define T0 1700000000123456ull /* 2023-11-14T22:13:20.123456Z */

static void ip(const char *text, uint8_t out[16])
{
    memset(out, 0, 16);
    int af = strchr(text, ':') ? AF_INET6 : AF_INET;
    assert_int_equal(inet_pton(af, text, out), 1);
}

/* Formats rec, checks it parses (and `check` holds), returns the text. */
static char *format(const struct flow_record *rec, const char *check)
{
    struct jbuf jb;
    jbuf_init(&jb);
    eve_format_flow(&jb, rec);
    assert_true(jbuf_ok(&jb));
    assert_int_equal(jb.depth, 0);
    int rc = jc_check_text(jb.buf, jb.len, "doc", check);
    if (rc != 0)
        fail_msg("record does not pass the JSON check (%d): %s", rc, jb.buf);
    char *s = strdup(jb.buf);
    assert_non_null(s);
    jbuf_free(&jb);
    return s;
}

static void tcp_record(struct flow_record *r)
{
    memset(r, 0, sizeof(*r));
    r->flow_id = 1234567;
    r->first_us = T0;
    r->last_us = T0 + 5530865;   /* 22:13:25.654321 */
    r->emit_us = T0 + 65530865;  /* 22:14:25.654321 */
    r->family = 4;
    r->proto = 6;
    ip("10.0.0.1", r->src_ip);
    ip("93.184.216.34", r->dst_ip);
    r->src_port = 51234;
    r->dst_port = 443;
    r->pkts_toserver = 10;
    r->pkts_toclient = 8;
    r->bytes_toserver = 1500;
    r->bytes_toclient = 6000;
    r->tcp_flags_ts = 0x1b; /* FIN SYN PSH ACK */
    r->tcp_flags_tc = 0x1a; /* SYN PSH ACK */
    r->state = FST_CLOSED;
    r->reason = END_CLOSED;
    r->init_how = INIT_SYN;
    r->ndpi_done = 1;
    strcpy(r->community_id, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
    struct rec_ndpi *n = &r->ndpi;
    strcpy(n->proto, "TLS.Google");
    strcpy(n->master, "TLS");
    strcpy(n->app, "Google");
    strcpy(n->category, "Web");
    strcpy(n->confidence, "DPI");
    n->risk = (1ull << 6) | (1ull << 31);
    strcpy(n->tls_sni, "www.example.com");
    strcpy(n->tls_version, "TLSv1.3");
    strcpy(n->tls_alpn, "h2,http/1.1");
    strcpy(n->tls_ja3c, "0123456789abcdef0123456789abcdef");
    strcpy(n->tls_ja3s, "fedcba9876543210fedcba9876543210");
    strcpy(n->tls_issuer, "CN=Example CA");
    strcpy(n->tls_subject, "CN=www.example.com");
    strcpy(n->tls_sha1, "00112233445566778899AABBCCDDEEFF01234567");
}

static void test_tcp_exact(void **state)
{
    (void)state;
    struct flow_record r;
    tcp_record(&r);
    char *got = format(&r, "d[\"flow\"][\"age\"] == 5 and d[\"tcp\"][\"syn\"] is True");
    const char *want =
        "{\"timestamp\":\"2023-11-14T22:14:25.654321+0000\",\"flow_id\":1234567,"
        "\"event_type\":\"flow\",\"src_ip\":\"10.0.0.1\",\"src_port\":51234,"
        "\"dest_ip\":\"93.184.216.34\",\"dest_port\":443,\"proto\":\"TCP\","
        "\"app_proto\":\"tls\",\"community_id\":\"1:LQU9qZlK+B5F3KDmev6m5PMibrg=\","
        "\"flow\":{\"pkts_toserver\":10,\"pkts_toclient\":8,\"bytes_toserver\":1500,"
        "\"bytes_toclient\":6000,\"start\":\"2023-11-14T22:13:20.123456+0000\","
        "\"end\":\"2023-11-14T22:13:25.654321+0000\",\"age\":5,\"state\":\"closed\","
        "\"reason\":\"closed\",\"alerted\":false,\"initiator\":\"syn\",\"interim\":false,"
        "\"seq\":0},"
        "\"tcp\":{\"tcp_flags\":\"1b\",\"tcp_flags_ts\":\"1b\",\"tcp_flags_tc\":\"1a\","
        "\"syn\":true,\"fin\":true,\"psh\":true,\"ack\":true},"
        "\"ndpi\":{\"proto\":\"TLS.Google\",\"master\":\"TLS\",\"app\":\"Google\","
        "\"category\":\"Web\",\"confidence\":\"DPI\","
        "\"risks\":[\"Self-signed Certificate\",\"Uncommon TLS ALPN\"],"
        "\"tls\":{\"sni\":\"www.example.com\",\"version\":\"TLSv1.3\",\"alpn\":\"h2,http/1.1\","
        "\"ja3c\":\"0123456789abcdef0123456789abcdef\","
        "\"ja3s\":\"fedcba9876543210fedcba9876543210\",\"issuer\":\"CN=Example CA\","
        "\"subject\":\"CN=www.example.com\","
        "\"fingerprint\":\"00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:01:23:45:67\"}}}";
    assert_string_equal(got, want);
    free(got);

    /* An interim record of the same flow. */
    r.reason = END_ACTIVE;
    r.state = FST_ESTABLISHED;
    r.seq = 3;
    got = format(&r, "d[\"flow\"][\"interim\"] is True and d[\"flow\"][\"seq\"] == 3 and "
                     "d[\"flow\"][\"reason\"] == \"active_timeout\" and "
                     "d[\"flow\"][\"state\"] == \"established\"");
    free(got);
}

static void test_icmp_exact(void **state)
{
    (void)state;
    struct flow_record r;
    memset(&r, 0, sizeof(r));
    r.flow_id = 42;
    r.first_us = T0;
    r.last_us = T0 + 999999; /* same second + 0.999999: age 1 as Suricata counts */
    r.emit_us = T0 + 60999999;
    r.family = 4;
    r.proto = 1;
    ip("192.168.0.89", r.src_ip);
    ip("192.168.0.1", r.dst_ip);
    r.src_port = 8; /* type */
    r.dst_port = 0; /* code */
    r.vlan[0] = 100;
    r.vlan[1] = 4094;
    r.vlan_count = 2;
    r.pkts_toserver = 2;
    r.pkts_toclient = 1;
    r.bytes_toserver = 196;
    r.bytes_toclient = 98;
    r.state = FST_ESTABLISHED;
    r.reason = END_TIMEOUT;
    r.init_how = INIT_FIRST;
    strcpy(r.community_id, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=");
    strcpy(r.ndpi.proto, "ICMP");
    strcpy(r.ndpi.app, "ICMP");
    strcpy(r.ndpi.category, "Network");
    strcpy(r.ndpi.confidence, "DPI");
    char *got = format(&r, "\"src_port\" not in d and \"tcp\" not in d");
    const char *want =
        "{\"timestamp\":\"2023-11-14T22:14:21.123455+0000\",\"flow_id\":42,"
        "\"event_type\":\"flow\",\"vlan\":[100,4094],\"src_ip\":\"192.168.0.89\","
        "\"dest_ip\":\"192.168.0.1\",\"proto\":\"ICMP\",\"icmp_type\":8,\"icmp_code\":0,"
        "\"app_proto\":\"icmp\",\"community_id\":\"1:X0snYXpgwiv9TZtqg64sgzUn6Dk=\","
        "\"flow\":{\"pkts_toserver\":2,\"pkts_toclient\":1,\"bytes_toserver\":196,"
        "\"bytes_toclient\":98,\"start\":\"2023-11-14T22:13:20.123456+0000\","
        "\"end\":\"2023-11-14T22:13:21.123455+0000\",\"age\":1,\"state\":\"established\","
        "\"reason\":\"timeout\",\"alerted\":false,\"initiator\":\"first_packet\","
        "\"interim\":false,\"seq\":0},"
        "\"ndpi\":{\"proto\":\"ICMP\",\"app\":\"ICMP\",\"category\":\"Network\","
        "\"confidence\":\"DPI\"}}";
    assert_string_equal(got, want);
    free(got);
}

/* IPv6, UDP, one VLAN, a VXLAN tunnel, DNS fields, HTTP and SSH sections,
 * and a risk bit nDPI 4.2 has no name for. */
static void test_ipv6_dns_tunnel(void **state)
{
    (void)state;
    struct flow_record r;
    memset(&r, 0, sizeof(r));
    r.flow_id = (1ull << 51) - 1;
    r.first_us = T0;
    r.last_us = T0;
    r.emit_us = T0;
    r.family = 6;
    r.proto = 17;
    ip("2001:db8::1", r.src_ip);
    ip("2001:4860:4860::8888", r.dst_ip);
    r.src_port = 53000;
    r.dst_port = 53;
    r.vlan[0] = 7;
    r.vlan_count = 1;
    r.tunnel = PKT_TUN_VXLAN;
    r.init_how = INIT_PORT;
    r.state = FST_ESTABLISHED;
    r.reason = END_SHUTDOWN;
    strcpy(r.community_id, "1:abc");
    struct rec_ndpi *n = &r.ndpi;
    strcpy(n->proto, "DNS.Google");
    strcpy(n->master, "DNS");
    strcpy(n->app, "Google");
    n->risk = 1ull << 60;
    strcpy(n->dns_query, "www.google.com");
    n->dns_qtype = 28;
    n->dns_rcode = 3;
    n->dns_is_response = 1;
    n->dns_answer_count = 2;
    n->dns_answer_family[0] = 6;
    ip("2a00:1450::68", n->dns_answers[0]);
    n->dns_answer_family[1] = 4;
    ip("142.250.1.1", n->dns_answers[1]);
    strcpy(n->http_host, "h");
    n->http_status = 404;
    strcpy(n->ssh_client, "SSH-2.0-OpenSSH_9.2");
    strcpy(n->hostname, "dns.google");
    char *got = format(&r,
        "d[\"src_ip\"] == \"2001:db8::1\" and d[\"dest_ip\"] == \"2001:4860:4860::8888\" and "
        "d[\"src_port\"] == 53000 and d[\"dest_port\"] == 53 and d[\"proto\"] == \"UDP\" and "
        "d[\"vlan\"] == [7] and d[\"tunnel\"] == {\"type\": \"vxlan\"} and "
        "d[\"app_proto\"] == \"dns\" and d[\"flow_id\"] == 2**51 - 1 and "
        "d[\"flow\"][\"initiator\"] == \"port_heuristic\" and d[\"flow\"][\"age\"] == 0 and "
        "d[\"flow\"][\"reason\"] == \"shutdown\" and \"tcp\" not in d and "
        "d[\"ndpi\"][\"risks\"] == [\"risk_60\"] and \"category\" not in d[\"ndpi\"] and "
        "d[\"ndpi\"][\"dns\"] == {\"query\": \"www.google.com\", \"qtype\": 28, \"rcode\": 3,"
        " \"answers\": [\"2a00:1450::68\", \"142.250.1.1\"]} and "
        "d[\"ndpi\"][\"http\"] == {\"host\": \"h\", \"status\": 404} and "
        "d[\"ndpi\"][\"ssh\"] == {\"client\": \"SSH-2.0-OpenSSH_9.2\"} and "
        "\"tls\" not in d[\"ndpi\"] and d[\"ndpi\"][\"hostname\"] == \"dns.google\"");
    free(got);

    /* ERSPAN carries its version; a protocol without ports has none and
     * says its number; nothing classified -> no ndpi object, "failed". */
    memset(&r.ndpi, 0, sizeof(r.ndpi));
    r.family = 4;
    ip("10.1.1.1", r.src_ip);
    ip("10.2.2.2", r.dst_ip);
    r.proto = 47;
    r.tunnel = PKT_TUN_ERSPAN3;
    r.community_id[0] = '\0';
    got = format(&r, "d[\"proto\"] == \"GRE\" and d[\"proto_number\"] == 47 and "
                     "\"src_port\" not in d and \"icmp_type\" not in d and "
                     "d[\"tunnel\"] == {\"type\": \"erspan\", \"version\": 3} and "
                     "\"ndpi\" not in d and d[\"app_proto\"] == \"failed\" and "
                     "\"community_id\" not in d");
    free(got);
    r.proto = 46;
    r.tunnel = PKT_TUN_NONE;
    got = format(&r, "d[\"proto\"] == \"46\" and d[\"proto_number\"] == 46 and \"tunnel\" not in d");
    free(got);
}

/* Wire bytes in every string field: quotes, HTML, controls, invalid UTF-8. */
static void test_hostile_strings(void **state)
{
    (void)state;
    struct flow_record r;
    tcp_record(&r);
    static const char evil[] = "\"><script>alert(1)</script>\xff\xc0\xaf\n\x01\xe2\x80\xa8";
    static const char evil_esc[] =
        "\\\"\\u003e\\u003cscript\\u003ealert(1)\\u003c/script\\u003e\\u00ff\\u00c0\\u00af"
        "\\n\\u0001\\u2028";
    struct rec_ndpi *n = &r.ndpi;
    strcpy(n->tls_sni, evil);
    strcpy(n->tls_issuer, evil);
    strcpy(n->tls_subject, evil);
    strcpy(n->tls_alpn, evil);
    strcpy(n->http_host, evil);
    strcpy(n->http_ua, evil);
    strcpy(n->http_url, evil);
    strcpy(n->dns_query, evil);
    strcpy(n->ssh_client, evil);
    strcpy(n->ssh_server, evil);
    strcpy(n->tls_sha1, "<not a hash>");
    const char *py_evil = "\"\\\"><script>alert(1)</script>\\xff\\xc0\\xaf\\n\\x01\\u2028\"";
    char check[2048];
    snprintf(check, sizeof(check),
             "all(v == %s for v in [d[\"ndpi\"][\"tls\"][\"sni\"], d[\"ndpi\"][\"tls\"][\"issuer\"],"
             " d[\"ndpi\"][\"tls\"][\"subject\"], d[\"ndpi\"][\"tls\"][\"alpn\"],"
             " d[\"ndpi\"][\"http\"][\"host\"], d[\"ndpi\"][\"http\"][\"user_agent\"],"
             " d[\"ndpi\"][\"http\"][\"url\"], d[\"ndpi\"][\"dns\"][\"query\"],"
             " d[\"ndpi\"][\"ssh\"][\"client\"], d[\"ndpi\"][\"ssh\"][\"server\"]])"
             " and d[\"ndpi\"][\"tls\"][\"fingerprint\"] == \"<not a hash>\"",
             py_evil);
    char *got = format(&r, check);
    char want[512];
    snprintf(want, sizeof(want), "\"sni\":\"%s\"", evil_esc);
    if (!strstr(got, want))
        fail_msg("escaped SNI %s not in %s", want, got);
    /* nothing raw survives: no '<', no control byte, no 0xff */
    assert_null(strchr(got, '<'));
    assert_null(strchr(got, '\n'));
    assert_null(strchr(got, '\xff'));
    free(got);

    /* A field filled to its last byte without a NUL is cut at its size. */
    memset(n->tls_sni, 'a', sizeof(n->tls_sni));
    got = format(&r, "d[\"ndpi\"][\"tls\"][\"sni\"] == \"a\" * 256");
    free(got);
}

static void test_stats(void **state)
{
    (void)state;
    struct run_stats st;
    memset(&st, 0, sizeof(st));
    st.ts_us = T0;
    st.packets = 1000;
    st.bytes = 123456;
    st.ip_packets = 990;
    st.not_ip = 10;
    st.inputs = 2;
    st.input_errors = 1;
    st.drop_kernel = 13;
    st.drop_ifdrop = 14;
    for (unsigned i = 0; i < DEC_COUNTER_MAX; i++)
        st.decode.c[i] = 100 + i;
    st.flow.flows_created = 77;
    st.flow.active = 3;
    st.flow.active_max = 50;
    st.flow.frag_orphans = 4;
    st.flow.classify_oom = 5;
    for (unsigned i = 0; i < END_REASON_MAX; i++)
        st.flow.records[i] = 10 * (i + 1);
    st.geo_lookups = 6;
    st.geo_cache_hits = 2;
    st.dns_responses = 9;
    st.dns_errors = 1;
    st.names_learned = 12;
    st.names_hits = 3;
    st.alerts = 4;
    st.alerts_suppressed = 7;
    st.alerts_rate_limited = 8;
    st.learned = 11;

    struct jbuf jb;
    jbuf_init(&jb);
    eve_format_stats(&jb, &st);
    assert_true(jbuf_ok(&jb));
    const char *head = "{\"timestamp\":\"2023-11-14T22:13:20.123456+0000\",\"event_type\":\"stats\","
                       "\"stats\":{\"capture\":{\"packets\":1000,\"bytes\":123456,\"ip_packets\":990,"
                       "\"not_ip\":10,\"inputs\":2,\"input_errors\":1,\"kernel_drops\":13,"
                       "\"kernel_ifdrops\":14},\"decoder\":{";
    assert_memory_equal(jb.buf, head, strlen(head));
    const char *tail = "\"flow\":{\"created\":77,\"active\":3,\"active_max\":50,\"frag_orphans\":4,"
                       "\"classify_oom\":5,\"records\":{\"timeout\":10,\"closed\":20,"
                       "\"active_timeout\":30,\"evicted\":40,\"shutdown\":50},\"evicted\":40},"
                       "\"enrich\":{\"geo_lookups\":6,\"geo_cache_hits\":2,\"dns_responses\":9,"
                       "\"dns_errors\":1,\"names_learned\":12,\"names_hits\":3},\"alerts\":4,"
                       "\"policy\":{\"alerts_suppressed\":7,\"alerts_rate_limited\":8,"
                       "\"learned\":11}}}";
    assert_true(jb.len > strlen(tail));
    assert_string_equal(jb.buf + jb.len - strlen(tail), tail);

    /* every decode counter appears under its name with its value */
    char check[256];
    snprintf(check, sizeof(check),
             "len(d[\"stats\"][\"decoder\"]) == %u and "
             "sorted(d[\"stats\"][\"decoder\"].values()) == list(range(100, 100 + %u)) and "
             "list(d[\"stats\"]) == [\"capture\", \"decoder\", \"flow\", \"enrich\", \"alerts\", "
             "\"policy\"]",
             (unsigned)DEC_COUNTER_MAX, (unsigned)DEC_COUNTER_MAX);
    assert_int_equal(jc_check_text(jb.buf, jb.len, "doc", check), 0);
    for (unsigned i = 0; i < DEC_COUNTER_MAX; i++) {
        char kv[96];
        snprintf(kv, sizeof(kv), "\"%s\":%u", decode_counter_name(i), 100 + i);
        if (!strstr(jb.buf, kv))
            fail_msg("%s missing from %s", kv, jb.buf);
    }

    /* with Redis: its delivery counters and the current queue depths */
    st.redis.enabled = 1;
    st.redis.sent = 21;
    st.redis.queue_depth = 5;
    st.redis.spool_depth = 6;
    st.redis.resent = 7;
    jbuf_reset(&jb);
    eve_format_stats(&jb, &st);
    assert_int_equal(jc_check_text(jb.buf, jb.len, "doc",
                                   "d[\"stats\"][\"redis\"][\"sent\"] == 21 and "
                                   "d[\"stats\"][\"redis\"][\"queue_depth\"] == 5 and "
                                   "d[\"stats\"][\"redis\"][\"spool_depth\"] == 6 and "
                                   "d[\"stats\"][\"redis\"][\"resent\"] == 7"),
                     0);
    jbuf_free(&jb);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(flow_end_reason_name(END_TIMEOUT), "timeout");
    assert_string_equal(flow_end_reason_name(END_CLOSED), "closed");
    assert_string_equal(flow_end_reason_name(END_ACTIVE), "active_timeout");
    assert_string_equal(flow_end_reason_name(END_EVICTED), "evicted");
    assert_string_equal(flow_end_reason_name(END_SHUTDOWN), "shutdown");
    assert_string_equal(flow_end_reason_name(END_REASON_MAX), "unknown");
    assert_string_equal(flow_state_name(FST_NEW), "new");
    assert_string_equal(flow_state_name(FST_ESTABLISHED), "established");
    assert_string_equal(flow_state_name(FST_CLOSED), "closed");
    assert_string_equal(flow_state_name(3), "unknown");
    assert_string_equal(flow_init_how_name(INIT_SYN), "syn");
    assert_string_equal(flow_init_how_name(INIT_SYNACK), "synack");
    assert_string_equal(flow_init_how_name(INIT_FIRST), "first_packet");
    assert_string_equal(flow_init_how_name(INIT_PORT), "port_heuristic");
    assert_string_equal(flow_init_how_name(4), "unknown");
    assert_string_equal(flow_init_how_name(~0u), "unknown");
}

static void test_time_and_proto(void **state)
{
    (void)state;
    char t[40];
    eve_format_time(T0, t, sizeof(t));
    assert_string_equal(t, "2023-11-14T22:13:20.123456+0000");
    eve_format_time(0, t, sizeof(t));
    assert_string_equal(t, "1970-01-01T00:00:00.000000+0000");
    eve_format_time(951782400000001ull, t, sizeof(t)); /* leap day 2000 */
    assert_string_equal(t, "2000-02-29T00:00:00.000001+0000");
    eve_format_time(4102444799999999ull, t, sizeof(t));
    assert_string_equal(t, "2099-12-31T23:59:59.999999+0000");
    /* The date is cached per day: the next second rolls over, the same day
     * again and an earlier day afterwards are right too. */
    eve_format_time(4102444800000000ull, t, sizeof(t));
    assert_string_equal(t, "2100-01-01T00:00:00.000000+0000");
    eve_format_time(4102444799000000ull, t, sizeof(t));
    assert_string_equal(t, "2099-12-31T23:59:59.000000+0000");
    eve_format_time(T0, t, sizeof(t));
    assert_string_equal(t, "2023-11-14T22:13:20.123456+0000");
    eve_format_time(T0 + 3600000000ull, t, sizeof(t));
    assert_string_equal(t, "2023-11-14T23:13:20.123456+0000");
    /* Cut to the buffer, always terminated. */
    char small[12];
    eve_format_time(T0, small, sizeof(small));
    assert_string_equal(small, "2023-11-14T");
    eve_format_time(T0, small, 5);
    assert_string_equal(small, "2023");

    /* IPv4 by hand equals inet_ntop on every kind of octet. */
    static const uint8_t v4[][4] = {
        {0, 0, 0, 0}, {255, 255, 255, 255}, {10, 0, 0, 5}, {100, 64, 9, 99}, {1, 20, 199, 200},
    };
    for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++) {
        char want[INET6_ADDRSTRLEN];
        assert_non_null(inet_ntop(AF_INET, v4[i], want, sizeof(want)));
        eve_format_ip(4, v4[i], t, sizeof(t));
        assert_string_equal(t, want);
    }
    uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8};
    v6[15] = 1;
    eve_format_ip(6, v6, t, sizeof(t));
    assert_string_equal(t, "2001:db8::1");

    char b[8];
    static const struct {
        uint8_t p;
        const char *name;
    } names[] = {
        {1, "ICMP"}, {2, "IGMP"}, {6, "TCP"}, {17, "UDP"}, {47, "GRE"}, {50, "ESP"}, {51, "AH"},
        {58, "IPv6-ICMP"}, {89, "OSPF"}, {103, "PIM"}, {112, "VRRP"}, {132, "SCTP"},
        {0, "0"}, {46, "46"}, {255, "255"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        assert_string_equal(eve_proto_name(names[i].p, b, sizeof(b)), names[i].name);
}

static void test_app_proto(void **state)
{
    (void)state;
    static const struct {
        const char *master, *app, *want;
    } cases[] = {
        {"TLS", "Google", "tls"},     {"", "DNS", "dns"},         {"DNS", "Facebook", "dns"},
        {"HTTP", "", "http"},         {"", "HTTP_Proxy", "http"}, {"QUIC", "YouTube", "quic"},
        {"", "SMBv23", "smb"},        {"", "SMBv1", "smb"},       {"", "Kerberos", "krb5"},
        {"", "FTP_CONTROL", "ftp"},   {"", "FTP_DATA", "ftp-data"}, {"", "VNC", "rfb"},
        {"", "DCE_RPC", "dcerpc"},    {"", "PostgreSQL", "pgsql"}, {"", "IMAPS", "tls"},
        {"", "SSH", "ssh"},           {"", "DHCP", "dhcp"},       {"", "NTP", "ntp"},
        {"", "Unknown", "failed"},    {"", "", "failed"},         {"Unknown", "", "failed"},
        {"", "BitTorrent", "bittorrent"}, {"", "IPsec", "ipsec"}, {"", "Sina(Weibo)", "sina(weibo)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rec_ndpi n;
        memset(&n, 0, sizeof(n));
        strcpy(n.master, cases[i].master);
        strcpy(n.app, cases[i].app);
        const char *got = eve_app_proto(&n);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("app_proto(%s, %s) = %s, want %s", cases[i].master, cases[i].app, got,
                     cases[i].want);
    }

    /* IPsec over UDP is IKE; as ESP it stays "ipsec". */
    struct flow_record r;
    memset(&r, 0, sizeof(r));
    r.family = 4;
    r.proto = 17;
    r.src_port = r.dst_port = 500;
    strcpy(r.ndpi.proto, "IPsec");
    strcpy(r.ndpi.app, "IPsec");
    char *got = format(&r, "d[\"app_proto\"] == \"ike\"");
    free(got);
    r.proto = 50;
    got = format(&r, "d[\"app_proto\"] == \"ipsec\" and d[\"proto\"] == \"ESP\"");
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_exact),
        cmocka_unit_test(test_icmp_exact),
        cmocka_unit_test(test_ipv6_dns_tunnel),
        cmocka_unit_test(test_hostile_strings),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_time_and_proto),
        cmocka_unit_test(test_app_proto),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

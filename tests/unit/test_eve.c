/* test_eve.c - EVE formatting: a TCP/TLS record and an ICMP record against
 * exact expected text, an IPv6/UDP record with VLANs and a tunnel, the
 * Suricata-shaped tls/quic/http/ssh objects, the dns query and answer
 * events of a DNS record, the alert with its flow object, hostile bytes in
 * every wire-derived string, the stats event, the record enum names,
 * timestamps, protocol names and the nDPI -> app_proto map. Every produced
 * event is also parsed by an independent JSON parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egressd/alert.h"
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
    n->tls_version = 0x0304;
    strcpy(n->tls_alpn, "h2,http/1.1");
    strcpy(n->tls_ja3c, "0123456789abcdef0123456789abcdef");
    strcpy(n->tls_ja3c_str, "771,4865-4866,0-10-11,29,0");
    n->tls_not_before = 1700000000; /* 2023-11-14T22:13:20 */
    n->tls_not_after = 1731622400;  /* 2024-11-14T22:13:20 */
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
        "\"tls\":{\"subject\":\"CN=www.example.com\",\"issuerdn\":\"CN=Example CA\","
        "\"fingerprint\":\"00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:01:23:45:67\","
        "\"sni\":\"www.example.com\",\"version\":\"TLS 1.3\","
        "\"notbefore\":\"2023-11-14T22:13:20\",\"notafter\":\"2024-11-14T22:13:20\","
        "\"ja3\":{\"hash\":\"0123456789abcdef0123456789abcdef\","
        "\"string\":\"771,4865-4866,0-10-11,29,0\"},"
        "\"ja3s\":{\"hash\":\"fedcba9876543210fedcba9876543210\"}},"
        "\"ndpi\":{\"proto\":\"TLS.Google\",\"master\":\"TLS\",\"app\":\"Google\","
        "\"category\":\"Web\",\"confidence\":\"DPI\","
        "\"risks\":[\"Self-signed Certificate\",\"Uncommon TLS ALPN\"],"
        "\"alpn\":\"h2,http/1.1\"}}";
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

/* IPv6, UDP, one VLAN, a VXLAN tunnel, HTTP and SSH objects, and a risk
 * bit nDPI 4.2 has no name for. */
static void test_ipv6_tunnel_http_ssh(void **state)
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
    r.dst_port = 8080;
    r.vlan[0] = 7;
    r.vlan_count = 1;
    r.tunnel = PKT_TUN_VXLAN;
    r.init_how = INIT_PORT;
    r.state = FST_ESTABLISHED;
    r.reason = END_SHUTDOWN;
    strcpy(r.community_id, "1:abc");
    struct rec_ndpi *n = &r.ndpi;
    strcpy(n->proto, "HTTP");
    strcpy(n->app, "HTTP");
    n->risk = 1ull << 60;
    strcpy(n->http_host, "h.example:8080");
    strcpy(n->http_url, "/x?y=1");
    strcpy(n->http_ua, "curl/8.0");
    strcpy(n->http_method, "GET");
    strcpy(n->http_content_type, "text/html");
    n->http_version = 11;
    n->http_status = 404;
    strcpy(n->ssh_client, "SSH-2.0-OpenSSH_9.2p1 Debian-2");
    strcpy(n->ssh_hassh_client, "ec7378c1a92f5a8dde7e8b7a1ddf33d1");
    strcpy(n->ssh_server, "dropbear");
    strcpy(n->hostname, "h.example");
    char *got = format(&r,
        "d[\"src_ip\"] == \"2001:db8::1\" and d[\"dest_ip\"] == \"2001:4860:4860::8888\" and "
        "d[\"src_port\"] == 53000 and d[\"dest_port\"] == 8080 and d[\"proto\"] == \"UDP\" and "
        "d[\"vlan\"] == [7] and d[\"encapsulation\"] == {\"type\": \"vxlan\"} and "
        "\"tunnel\" not in d and "
        "d[\"app_proto\"] == \"http\" and d[\"flow_id\"] == 2**51 - 1 and "
        "d[\"flow\"][\"initiator\"] == \"port_heuristic\" and d[\"flow\"][\"age\"] == 0 and "
        "d[\"flow\"][\"reason\"] == \"shutdown\" and \"tcp\" not in d and "
        "d[\"ndpi\"][\"risks\"] == [\"risk_60\"] and \"category\" not in d[\"ndpi\"] and "
        "d[\"http\"] == {\"hostname\": \"h.example:8080\", \"http_port\": 8080, \"url\": \"/x?y=1\","
        " \"http_user_agent\": \"curl/8.0\", \"http_content_type\": \"text/html\","
        " \"http_method\": \"GET\", \"protocol\": \"HTTP/1.1\", \"status\": 404} and "
        "d[\"ssh\"] == {\"client\": {\"proto_version\": \"2.0\", \"software_version\": \"OpenSSH_9.2p1\","
        " \"hassh\": {\"hash\": \"ec7378c1a92f5a8dde7e8b7a1ddf33d1\"}},"
        " \"server\": {\"software_version\": \"dropbear\"}} and "
        "\"tls\" not in d and \"dns\" not in d and list(d[\"ndpi\"]) == [\"proto\", \"app\", \"hostname\", \"risks\"] "
        "and d[\"ndpi\"][\"hostname\"] == \"h.example\"");
    free(got);

    /* A Host without a port, and an IPv6 literal: no http_port. */
    strcpy(n->http_host, "2001:db8::80");
    got = format(&r, "d[\"http\"][\"hostname\"] == \"2001:db8::80\" and \"http_port\" not in d[\"http\"]");
    free(got);
    strcpy(n->http_host, "[2001:db8::80]:81");
    got = format(&r, "d[\"http\"][\"http_port\"] == 81");
    free(got);

    /* QUIC: Suricata's quic object, not tls or http. */
    memset(n, 0, sizeof(*n));
    strcpy(n->proto, "QUIC.Google");
    strcpy(n->master, "QUIC");
    strcpy(n->app, "Google");
    strcpy(n->tls_sni, "www.google.com");
    strcpy(n->http_ua, "Chrome/99");
    strcpy(n->tls_ja3c, "0123456789abcdef0123456789abcdef");
    n->tls_version = 0x0304;
    got = format(&r, "d[\"app_proto\"] == \"quic\" and d[\"quic\"] == {\"sni\": \"www.google.com\","
                     " \"ua\": \"Chrome/99\", \"ja3\": {\"hash\": \"0123456789abcdef0123456789abcdef\"}}"
                     " and \"tls\" not in d and \"http\" not in d");
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
                     "d[\"encapsulation\"] == {\"type\": \"erspan\", \"version\": 3} and "
                     "\"ndpi\" not in d and d[\"app_proto\"] == \"failed\" and "
                     "\"community_id\" not in d");
    free(got);
    r.proto = 46;
    r.tunnel = PKT_TUN_NONE;
    got = format(&r, "d[\"proto\"] == \"46\" and d[\"proto_number\"] == 46 and \"encapsulation\" not in d");
    free(got);
}

/* Event i of a record, checked as format() does. */
static char *format_event(const struct flow_record *rec, unsigned i, const char *check)
{
    struct jbuf jb;
    jbuf_init(&jb);
    eve_format_record_event(&jb, rec, i);
    assert_true(jbuf_ok(&jb));
    assert_int_equal(jb.depth, 0);
    int rc = jc_check_text(jb.buf, jb.len, "doc", check);
    if (rc != 0)
        fail_msg("event %u does not pass the JSON check (%d): %s", i, rc, jb.buf);
    char *s = strdup(jb.buf);
    assert_non_null(s);
    jbuf_free(&jb);
    return s;
}

/* Adds a name to the record's DNS pool; returns its offset. */
static uint16_t pool(struct rec_ndpi *n, size_t *used, const char *name)
{
    size_t l = strlen(name);
    memcpy(n->dns_pool + *used, name, l);
    *used += l;
    return (uint16_t)(*used - l);
}

/* A DNS flow: its query and answer events in Suricata's version-2 form
 * (the answer from the server's side), then the flow event. */
static void test_dns_events(void **state)
{
    (void)state;
    struct flow_record r;
    memset(&r, 0, sizeof(r));
    r.flow_id = 99;
    r.first_us = T0;
    r.last_us = T0 + 20000;
    r.emit_us = T0 + 30000000;
    r.family = 4;
    r.proto = 17;
    ip("10.20.0.5", r.src_ip);
    ip("10.20.0.53", r.dst_ip);
    r.src_port = 40000;
    r.dst_port = 53;
    r.pkts_toserver = r.pkts_toclient = 1;
    r.state = FST_ESTABLISHED;
    r.enrich.direction = DIR_INTERNAL;
    strcpy(r.community_id, "1:dns");
    struct rec_ndpi *n = &r.ndpi;
    strcpy(n->proto, "DNS");
    strcpy(n->app, "DNS");
    strcpy(n->dns_query, "www.example.com");
    n->dns_qtype = 1;
    n->dns_has_id = 1;
    n->dns_id = 0x1234;
    n->dns_is_response = 1;
    n->dns_parsed = 1;
    n->dns_resp_id = 0x1234;
    n->dns_resp_us = T0 + 15000;
    n->dns_flags = 0x8180;
    size_t used = 0;
    n->dns_qname_off = pool(n, &used, "www.example.com");
    n->dns_qname_len = 15;
    uint16_t cdn = pool(n, &used, "cdn.example.net");
    n->dns_rr[0] = (struct rec_dns_rr){.type = 5, .owner_off = n->dns_qname_off, .owner_len = 15,
                                       .data_off = cdn, .data_len = 15, .ttl = 300};
    uint16_t a1 = (uint16_t)used;
    memcpy(n->dns_pool + used, "\x5d\xb8\xd8\x22", 4);
    used += 4;
    n->dns_rr[1] = (struct rec_dns_rr){.type = 1, .owner_off = cdn, .owner_len = 15,
                                       .data_off = a1, .data_len = 4, .ttl = 60};
    uint16_t a6 = (uint16_t)used;
    memcpy(n->dns_pool + used, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
    n->dns_rr[2] = (struct rec_dns_rr){.type = 28, .owner_off = cdn, .owner_len = 15,
                                       .data_off = a6, .data_len = 16, .ttl = 4294967295u};
    n->dns_rr_count = 3;

    assert_int_equal(eve_record_events(&r), 3);
    char *got = format_event(&r, 0, "d[\"event_type\"] == \"dns\" and d[\"src_ip\"] == \"10.20.0.5\" and "
                                    "d[\"src_port\"] == 40000 and \"app_proto\" not in d and "
                                    "d[\"network_direction\"] == \"internal\"");
    const char *want =
        "{\"timestamp\":\"2023-11-14T22:13:20.123456+0000\",\"flow_id\":99,\"event_type\":\"dns\","
        "\"src_ip\":\"10.20.0.5\",\"src_port\":40000,\"dest_ip\":\"10.20.0.53\",\"dest_port\":53,"
        "\"proto\":\"UDP\",\"community_id\":\"1:dns\",\"network_direction\":\"internal\","
        "\"dns\":{\"version\":2,\"type\":\"query\",\"id\":4660,\"rrname\":\"www.example.com\","
        "\"rrtype\":\"A\",\"tx_id\":0,\"opcode\":0}}";
    assert_string_equal(got, want);
    free(got);
    got = format_event(&r, 1, "d[\"event_type\"] == \"dns\"");
    want = "{\"timestamp\":\"2023-11-14T22:13:20.138456+0000\",\"flow_id\":99,\"event_type\":\"dns\","
           "\"src_ip\":\"10.20.0.53\",\"src_port\":53,\"dest_ip\":\"10.20.0.5\",\"dest_port\":40000,"
           "\"proto\":\"UDP\",\"community_id\":\"1:dns\",\"network_direction\":\"internal\","
           "\"dns\":{\"version\":2,\"type\":\"answer\",\"id\":4660,\"flags\":\"8180\",\"qr\":true,"
           "\"rd\":true,\"ra\":true,\"opcode\":0,\"rrname\":\"www.example.com\",\"rrtype\":\"A\","
           "\"rcode\":\"NOERROR\",\"answers\":["
           "{\"rrname\":\"www.example.com\",\"rrtype\":\"CNAME\",\"ttl\":300,\"rdata\":\"cdn.example.net\"},"
           "{\"rrname\":\"cdn.example.net\",\"rrtype\":\"A\",\"ttl\":60,\"rdata\":\"93.184.216.34\"},"
           "{\"rrname\":\"cdn.example.net\",\"rrtype\":\"AAAA\",\"ttl\":4294967295,\"rdata\":\"2001:db8::1\"}],"
           "\"grouped\":{\"A\":[\"93.184.216.34\"],\"AAAA\":[\"2001:db8::1\"],"
           "\"CNAME\":[\"cdn.example.net\"]}}}";
    assert_string_equal(got, want);
    free(got);
    got = format_event(&r, 2, "d[\"event_type\"] == \"flow\" and \"dns\" not in d and "
                              "d[\"app_proto\"] == \"dns\"");
    free(got);

    /* NXDOMAIN without answers, authoritative: no answers or grouped. */
    n->dns_flags = 0x8583;
    n->dns_rr_count = 0;
    n->dns_qtype = 65;
    got = format_event(&r, 1, "d[\"dns\"][\"rcode\"] == \"NXDOMAIN\" and d[\"dns\"][\"aa\"] is True and "
                              "d[\"dns\"][\"rrtype\"] == \"HTTPS\" and d[\"dns\"][\"flags\"] == \"8583\" and "
                              "\"answers\" not in d[\"dns\"] and \"grouped\" not in d[\"dns\"]");
    free(got);
    /* rcodes and types without a name are numbers */
    n->dns_flags = 0x818c;
    n->dns_qtype = 4242;
    got = format_event(&r, 1, "d[\"dns\"][\"rcode\"] == \"12\" and d[\"dns\"][\"rrtype\"] == \"4242\"");
    free(got);

    /* Only a response seen (no query id): the answer alone. Only a query
     * seen: the query alone. Interim records after the first: none. */
    n->dns_has_id = 0;
    assert_int_equal(eve_record_events(&r), 2);
    got = format_event(&r, 0, "d[\"dns\"][\"type\"] == \"answer\"");
    free(got);
    n->dns_has_id = 1;
    n->dns_parsed = 0;
    assert_int_equal(eve_record_events(&r), 2);
    got = format_event(&r, 0, "d[\"dns\"][\"type\"] == \"query\"");
    free(got);
    r.seq = 1;
    assert_int_equal(eve_record_events(&r), 1);
    r.seq = 0;
    /* Not DNS (mDNS parsed by nDPI's DNS code): no dns events. */
    strcpy(n->proto, "MDNS");
    strcpy(n->app, "MDNS");
    assert_int_equal(eve_record_events(&r), 1);
}

/* An alert: Suricata's alert object and the alert's flow sub-object, the
 * app-layer objects, egressd's counters as documented extensions. */
static void test_alert(void **state)
{
    (void)state;
    struct alert_record a;
    memset(&a, 0, sizeof(a));
    tcp_record(&a.flow);
    a.flow.enrich.direction = DIR_EGRESS;
    a.ts_us = T0 + 1000;
    a.kind = ALERT_UNEXPECTED;
    a.severity = 2;
    a.count = 3;
    a.first_seen_us = T0;
    a.last_seen_us = T0 + 1000;
    strcpy(a.reason, "no allow rule matched");
    strcpy(a.alert_key, "0123456789abcdef0123456789abcdef01234567");
    strcpy(a.service, "tcp/443 TLS");
    struct jbuf jb;
    jbuf_init(&jb);
    eve_format_alert(&jb, &a);
    assert_true(jbuf_ok(&jb));
    int rc = jc_check_text(jb.buf, jb.len, "doc",
        "d[\"event_type\"] == \"alert\" and d[\"network_direction\"] == \"egress\" and "
        "\"direction\" not in d and "
        "d[\"flow\"] == {\"pkts_toserver\": 10, \"pkts_toclient\": 8, \"bytes_toserver\": 1500,"
        " \"bytes_toclient\": 6000, \"start\": \"2023-11-14T22:13:20.123456+0000\","
        " \"src_ip\": \"10.0.0.1\", \"dest_ip\": \"93.184.216.34\", \"src_port\": 51234,"
        " \"dest_port\": 443} and "
        "d[\"alert\"][\"signature_id\"] == 9100000 and d[\"alert\"][\"severity\"] == 2 and "
        "d[\"alert\"][\"count\"] == 3 and d[\"alert\"][\"service\"] == \"tcp/443 TLS\" and "
        "d[\"tls\"][\"sni\"] == \"www.example.com\" and d[\"ndpi\"] == {\"proto\": \"TLS.Google\"}");
    if (rc != 0)
        fail_msg("alert does not pass the JSON check (%d): %s", rc, jb.buf);
    jbuf_free(&jb);
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
    strcpy(n->tls_ja3c_str, evil);
    strcpy(n->http_content_type, evil);
    strcpy(n->ssh_client, evil);
    strcpy(n->ssh_server, evil);
    strcpy(n->tls_sha1, "<not a hash>");
    const char *py_evil = "\"\\\"><script>alert(1)</script>\\xff\\xc0\\xaf\\n\\x01\\u2028\"";
    char check[2048];
    snprintf(check, sizeof(check),
             "all(v == %s for v in [d[\"tls\"][\"sni\"], d[\"tls\"][\"issuerdn\"],"
             " d[\"tls\"][\"subject\"], d[\"ndpi\"][\"alpn\"], d[\"tls\"][\"ja3\"][\"string\"],"
             " d[\"http\"][\"hostname\"], d[\"http\"][\"http_user_agent\"],"
             " d[\"http\"][\"url\"], d[\"http\"][\"http_content_type\"],"
             " d[\"ssh\"][\"client\"][\"software_version\"], d[\"ssh\"][\"server\"][\"software_version\"]])"
             " and d[\"tls\"][\"fingerprint\"] == \"<not a hash>\"",
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
    got = format(&r, "d[\"tls\"][\"sni\"] == \"a\" * 256");
    free(got);

    /* DNS names are raw bytes too (a label may hold '"', '<' or 0x00). */
    memset(&r.ndpi, 0, sizeof(r.ndpi));
    strcpy(n->proto, "DNS");
    strcpy(n->app, "DNS");
    r.proto = 17;
    r.dst_port = 53;
    strcpy(n->dns_query, evil);
    n->dns_has_id = 1;
    n->dns_parsed = 1;
    size_t el = strlen(evil);
    memcpy(n->dns_pool, evil, el);
    n->dns_pool[el] = '\0';
    n->dns_qname_len = (uint8_t)(el + 1);
    n->dns_rr[0] = (struct rec_dns_rr){.type = 5, .owner_len = (uint8_t)(el + 1), .data_len = (uint8_t)(el + 1)};
    n->dns_rr_count = 1;
    snprintf(check, sizeof(check), "d[\"dns\"][\"rrname\"] == %s", py_evil);
    got = format_event(&r, 0, check);
    assert_null(strchr(got, '<'));
    free(got);
    snprintf(check, sizeof(check),
             "d[\"dns\"][\"rrname\"] == %s + \"\\x00\" and d[\"dns\"][\"answers\"][0][\"rdata\"] == %s + \"\\x00\"",
             py_evil, py_evil);
    got = format_event(&r, 1, check);
    assert_null(strchr(got, '<'));
    assert_non_null(strstr(got, "\\u0000"));
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
    st.time_backwards = 15;
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
                       "\"not_ip\":10,\"time_backwards\":15,\"inputs\":2,\"input_errors\":1,\"kernel_drops\":13,"
                       "\"kernel_ifdrops\":14},\"decoder\":{";
    assert_memory_equal(jb.buf, head, strlen(head));
    const char *tail = "\"flow\":{\"total\":77,\"created\":77,\"active\":3,\"active_max\":50,\"frag_orphans\":4,"
                       "\"classify_oom\":5,\"records\":{\"timeout\":10,\"closed\":20,"
                       "\"active_timeout\":30,\"evicted\":40,\"shutdown\":50},\"evicted\":40},"
                       "\"enrich\":{\"geo_lookups\":6,\"geo_cache_hits\":2,\"dns_responses\":9,"
                       "\"dns_errors\":1,\"names_learned\":12,\"names_hits\":3},\"alerts\":4,"
                       "\"policy\":{\"alerts_suppressed\":7,\"alerts_rate_limited\":8,"
                       "\"learned\":11}}}";
    assert_true(jb.len > strlen(tail));
    assert_string_equal(jb.buf + jb.len - strlen(tail), tail);

    /* every decode counter appears under its name with its value */
    char check[512];
    snprintf(check, sizeof(check),
             "len(d[\"stats\"][\"decoder\"]) == %u + 2 and "
             "d[\"stats\"][\"decoder\"][\"pkts\"] == 1000 and d[\"stats\"][\"decoder\"][\"bytes\"] == 123456 and "
             "sorted(v for k, v in d[\"stats\"][\"decoder\"].items() if k not in (\"pkts\", \"bytes\"))"
             " == list(range(100, 100 + %u)) and "
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
        cmocka_unit_test(test_ipv6_tunnel_http_ssh),
        cmocka_unit_test(test_dns_events),
        cmocka_unit_test(test_alert),
        cmocka_unit_test(test_hostile_strings),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_time_and_proto),
        cmocka_unit_test(test_app_proto),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

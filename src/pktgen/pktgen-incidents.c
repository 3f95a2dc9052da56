/* pktgen-incidents.c - the scenarios of the sensors/ profiles written for
 * the supply-chain incidents (docs/threat-model.md): a Cisco Firepower
 * deployment (FMC, FTD, ASA), Zscaler App Connectors and a Private Service
 * Edge, a monitoring server of the SolarWinds Orion kind with the SUNBURST
 * DNS pattern, and servers calling guarded SaaS and identity services.
 *
 * Each capture holds the traffic its profile must allow (and so never
 * alert on), traffic the appliances only answer, and each kind of traffic
 * the profile exists to catch. docs/pktgen.md lists every flow; the
 * scenario tests (tests/e2e/test_scenarios.py) are written against that
 * list, so change both together.
 *
 * 2025-10-15 09:00:00 UTC (PG_INCIDENT_START_US), a few minutes each.
 * Public addresses are illustrative pairs of a name and an address, as in
 * the demo; the suspicious endpoints reuse addresses of MaxMind's test
 * databases.
 */
#include "egressd/pktgen.h"

#include <string.h>

#include "pktgen-scn.h"

#define T0 PG_INCIDENT_START_US
#define AT(s, ms) (T0 + PG_US(s) + PG_MS(ms))

/* A lookup answered with one address. */
static void lookup1(struct pg_scn *s, const char *resolver, const char *client, uint16_t cport,
                    const char *upstream, uint16_t rport, const char *name, const char *addr,
                    uint64_t t)
{
    const struct pg_dns_answer a[] = {{PG_DNS_A, 300, NULL, addr}};
    pg_scn_lookup(s, resolver, client, cport, upstream, rport, name, PG_DNS_A, a, 1, t);
}

/* A lookup then a TLS session to the name, as an appliance calls its
 * vendor: the common shape of every allowed callout below. */
static void callout(struct pg_scn *s, const char *resolver, const char *client, uint16_t dport,
                    uint16_t cport, uint16_t rport, const char *name, const char *addr,
                    size_t up, size_t down, uint64_t t)
{
    lookup1(s, resolver, client, dport, "8.8.8.8", rport, name, addr, t);
    pg_scn_tls(s, client, cport, addr, 443, name, name, up, down, t + PG_MS(100), 30000, 1);
}

/* ---- Cisco Firepower: FMC, FTD, ASA ------------------------------------------ */

#define C_RESOLVER "10.1.0.53" /* the site resolver, outside the management network */
#define C_FMC "10.11.0.10"
#define C_FTD "10.11.0.20"
#define C_ASA "10.11.0.30"

int pg_cisco_write(const char *path, struct egr_err *err)
{
    struct pg_scn s;
    if (pg_scn_open(&s, path, 1, 0x51c0, err) != EGR_OK)
        return EGR_EIO;
    if (!s.buf)
        return pg_scn_finish(&s, err);

    /* Firepower Management Center: licensing, AMP cloud, Talos updates,
     * the Security Intelligence feed. */
    callout(&s, C_RESOLVER, C_FMC, 41001, 45001, 53001, "smartreceiver.cisco.com",
            "72.163.15.144", 3100, 5200, AT(0, 0));
    callout(&s, C_RESOLVER, C_FMC, 41002, 45002, 53002, "tools.cisco.com", "173.37.145.8",
            2400, 7300, AT(10, 0));
    callout(&s, C_RESOLVER, C_FMC, 41003, 45003, 53003, "cloud-sa.amp.cisco.com",
            "34.205.8.20", 1800, 2600, AT(20, 0));
    callout(&s, C_RESOLVER, C_FMC, 41004, 45004, 53004, "updates.vrt.sourcefire.com",
            "104.81.72.10", 4200, 1900000, AT(30, 0));
    callout(&s, C_RESOLVER, C_FMC, 41005, 45005, 53005, "intelligence.sourcefire.com",
            "104.81.72.11", 1500, 880000, AT(40, 0));
    /* FTD: dynamic analysis submissions; ASA: Smart Licensing and NTP. */
    callout(&s, C_RESOLVER, C_FTD, 41011, 45011, 53011, "fmc.api.threatgrid.com",
            "54.175.124.16", 260000, 3000, AT(50, 0));
    callout(&s, C_RESOLVER, C_ASA, 41021, 45021, 53021, "smartreceiver.cisco.com",
            "72.163.15.144", 2900, 5000, AT(60, 0));
    const struct pg_dns_answer ntp_ans[] = {{PG_DNS_A, 150, NULL, "162.159.200.123"}};
    pg_scn_lookup(&s, C_RESOLVER, C_ASA, 41022, "8.8.8.8", 53022, "pool.ntp.org", PG_DNS_A,
                  ntp_ans, 1, AT(1, 0));
    for (int i = 0; i < 3; i++)
        pg_scn_ntp(&s, C_ASA, "162.159.200.123", AT(2 + 64 * i, 0), 14800);

    /* Internal: the FTD's management tunnel to its FMC (sftunnel, 8305). */
    pg_scn_tcp_blob(&s, C_FTD, 47001, C_FMC, 8305, 2400, 9600, AT(5, 0), 400);
    /* Inbound: a remote-access VPN client of the ASA. */
    pg_scn_tls(&s, "216.160.83.56", 52811, C_ASA, 443, "vpn.corp.example", "vpn.corp.example",
               4100, 9800, AT(70, 0), 60000, 0);

    /* Unexpected: an FMC calling a look-alike update host, an FTD talking
     * TLS to a bare address, an ASA posting its configuration out. */
    callout(&s, C_RESOLVER, C_FMC, 41031, 45031, 53031, "firepower-updates.example-sync.net",
            "89.160.20.112", 900, 52000, AT(90, 0));
    pg_scn_tls(&s, C_FTD, 45041, "81.2.69.142", 443, NULL, "localhost", 2200, 1800, AT(100, 0),
               25000, 1);
    pg_scn_http(&s, C_ASA, 45051, "175.16.199.1", 80, "POST", "175.16.199.1",
                "/upload/asa-running-config.txt", "curl/7.47.1", 64 * 1024, 200, "text/plain",
                2, AT(110, 0), 190000);
    return pg_scn_finish(&s, err);
}

/* ---- Zscaler App Connectors and a Private Service Edge ---------------------- */

#define Z_RESOLVER "10.1.0.53"
#define Z_AC1 "10.12.0.11"
#define Z_AC2 "10.12.0.12"
#define Z_PSE "10.12.0.21"

int pg_zscaler_write(const char *path, struct egr_err *err)
{
    struct pg_scn s;
    if (pg_scn_open(&s, path, 1, 0x25ca, err) != EGR_OK)
        return EGR_EIO;
    if (!s.buf)
        return pg_scn_finish(&s, err);

    /* Zscaler's cloud: the control broker, a data broker carrying user
     * sessions (both ways, much), enrollment, software updates. */
    callout(&s, Z_RESOLVER, Z_AC1, 41101, 45101, 53101, "co2br.prod.zpath.net", "13.127.26.17",
            2800, 6400, AT(0, 0));
    callout(&s, Z_RESOLVER, Z_AC1, 41102, 45102, 53102, "broker1a.sjc8.prod.zpath.net",
            "40.86.176.165", 3000000, 5000000, AT(5, 0));
    callout(&s, Z_RESOLVER, Z_AC2, 41111, 45111, 53111, "api.private.zscaler.com",
            "165.225.10.20", 3400, 7100, AT(10, 0));
    callout(&s, Z_RESOLVER, Z_AC2, 41112, 45112, 53112, "yum.private.zscaler.com",
            "165.225.10.21", 2100, 1200000, AT(20, 0));
    callout(&s, Z_RESOLVER, Z_AC2, 41113, 45113, 53113, "dist.private.zscaler.com",
            "165.225.10.22", 1900, 300000, AT(30, 0));
    callout(&s, Z_RESOLVER, Z_PSE, 41121, 45121, 53121, "co2br.prod.zpath.net", "13.127.26.17",
            2600, 6000, AT(40, 0));
    const struct pg_dns_answer ntp_ans[] = {{PG_DNS_A, 150, NULL, "162.159.200.1"}};
    pg_scn_lookup(&s, Z_RESOLVER, Z_AC1, 41103, "8.8.8.8", 53103, "0.zscaler.pool.ntp.org",
                  PG_DNS_A, ntp_ans, 1, AT(1, 0));
    for (int i = 0; i < 3; i++)
        pg_scn_ntp(&s, Z_AC1, "162.159.200.1", AT(2 + 64 * i, 0), 14800);

    /* Internal: the connector reaching an application it publishes. */
    pg_scn_tls(&s, Z_AC1, 45131, "10.20.8.15", 8443, "app.corp.example", "app.corp.example",
               52000, 310000, AT(50, 0), 800, 1);
    /* Inbound: a remote user's client connecting to the Private Service
     * Edge, which accepts connections on 443. */
    pg_scn_tls(&s, "216.160.83.56", 52901, Z_PSE, 443, NULL, "pse.corp.example", 3600, 12000,
               AT(60, 0), 60000, 0);

    /* Unexpected: a look-alike update host, a TCP session to a bare
     * address on 22 (a shell out), a POST to an address. */
    callout(&s, Z_RESOLVER, Z_AC2, 41141, 45141, 53141, "zpa-update.example-sync.net",
            "89.160.20.112", 700, 64000, AT(90, 0));
    pg_scn_tcp_blob(&s, Z_AC1, 45151, "67.43.156.1", 22, 4800, 2300, AT(100, 0), 80000);
    pg_scn_http(&s, Z_PSE, 45161, "175.16.199.1", 80, "POST", "175.16.199.1", "/upload/pse.tgz",
                "curl/7.47.1", 80 * 1024, 200, "text/plain", 2, AT(110, 0), 190000);
    return pg_scn_finish(&s, err);
}

/* ---- a network-monitoring server, and SUNBURST ------------------------------- */

#define M_RESOLVER "10.13.0.53"
#define M_NTP "10.13.0.123"
#define M_ORION "10.13.1.5"

/* An SNMPv2c get (pdu 0xa0) of sysDescr.0, or its response (0xa2) with
 * the value `text`; BER lengths are all short form here. */
static size_t snmp(uint8_t *buf, size_t cap, uint32_t reqid, int response, const char *text)
{
    static const uint8_t oid[] = {0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00};
    size_t tl = response ? strlen(text) : 0;
    size_t vb = sizeof(oid) + (response ? 2 + tl : 2);   /* oid, value */
    size_t vbl = 2 + vb;                                 /* SEQUENCE varbind */
    size_t pdu = 6 + 3 + 3 + 2 + vbl;                    /* id, status, index, list */
    size_t msg = 3 + 8 + 2 + pdu;                        /* version, community, pdu */
    if (2 + msg > cap || msg > 127 || tl > 64)
        return 0;
    size_t o = 0;
    buf[o++] = 0x30, buf[o++] = (uint8_t)msg;
    buf[o++] = 0x02, buf[o++] = 0x01, buf[o++] = 0x01;            /* v2c */
    buf[o++] = 0x04, buf[o++] = 0x06;
    memcpy(buf + o, "public", 6), o += 6;
    buf[o++] = response ? 0xa2 : 0xa0, buf[o++] = (uint8_t)pdu;
    buf[o++] = 0x02, buf[o++] = 0x04;
    for (int b = 3; b >= 0; b--)
        buf[o++] = (uint8_t)(reqid >> (8 * b));
    buf[o++] = 0x02, buf[o++] = 0x01, buf[o++] = 0x00;
    buf[o++] = 0x02, buf[o++] = 0x01, buf[o++] = 0x00;
    buf[o++] = 0x30, buf[o++] = (uint8_t)vbl;
    buf[o++] = 0x30, buf[o++] = (uint8_t)vb;
    memcpy(buf + o, oid, sizeof(oid)), o += sizeof(oid);
    if (response) {
        buf[o++] = 0x04, buf[o++] = (uint8_t)tl;
        memcpy(buf + o, text, tl), o += tl;
    } else {
        buf[o++] = 0x05, buf[o++] = 0x00;
    }
    return o;
}

static void snmp_poll(struct pg_scn *s, const char *device, uint16_t sport, uint32_t reqid,
                      const char *descr, uint64_t t)
{
    uint8_t q[160], r[160];
    size_t qn = pg_scn_need(s, snmp(q, sizeof(q), reqid, 0, NULL), "SNMP get");
    size_t rn = pg_scn_need(s, snmp(r, sizeof(r), reqid, 1, descr), "SNMP response");
    if (!qn || !rn)
        return;
    pg_udp(s->w, M_ORION, sport, device, 161, q, qn, t);
    pg_udp(s->w, device, 161, M_ORION, sport, r, rn, t + 1500);
}

/* An SSH session a poller opens (banners, both KEXINITs, a few opaque
 * packets), client-near. */
static void ssh_poll(struct pg_scn *s, const char *client, uint16_t cport, const char *server,
                     uint64_t t)
{
    static const char cb[] = "SSH-2.0-OpenSSH_8.9\r\n", sb[] = "SSH-2.0-OpenSSH_8.4p1\r\n";
    struct pg_tcp *c = pg_tcp_new(s->w, client, cport, server, 22);
    pg_tcp_set_rtt(c, 700, 1);
    pg_tcp_handshake(c, t);
    pg_tcp_send(c, PG_S2C, sb, sizeof(sb) - 1, PG_T_NEXT);
    pg_tcp_send(c, PG_C2S, cb, sizeof(cb) - 1, PG_T_NEXT);
    size_t n = pg_scn_need(s, pg_ssh_kexinit(s->buf, PG_SCN_SCRATCH, 1, cport), "KEXINIT");
    pg_tcp_send(c, PG_S2C, s->buf, n, PG_T_NEXT);
    n = pg_scn_need(s, pg_ssh_kexinit(s->buf, PG_SCN_SCRATCH, 0, cport + 1u), "KEXINIT");
    pg_tcp_send(c, PG_C2S, s->buf, n, PG_T_NEXT);
    for (int i = 0; i < 4; i++) {
        pg_fill(s->buf, 96, (uint32_t)cport + 10u + (uint32_t)i);
        pg_tcp_send(c, i % 2 ? PG_S2C : PG_C2S, s->buf, 96, PG_T_NEXT);
    }
    pg_tcp_close(c, PG_CLOSE_FIN, PG_T_NEXT);
}

int pg_monitoring_write(const char *path, struct egr_err *err)
{
    struct pg_scn s;
    if (pg_scn_open(&s, path, 1, 0x0510, err) != EGR_OK)
        return EGR_EIO;
    if (!s.buf)
        return pg_scn_finish(&s, err);

    /* Polling inward: SNMP, ping, WMI (DCE-RPC endpoint mapper), SSH and
     * the vCenter API, every 60 s. */
    static const char *const devices[] = {"10.40.0.1", "10.40.0.2", "10.40.0.3"};
    for (int round = 0; round < 3; round++) {
        uint64_t t = AT(60 * round, 0);
        for (int d = 0; d < 3; d++) {
            snmp_poll(&s, devices[d], (uint16_t)(50000 + 10 * round + d),
                      0x1000u + 16u * (uint32_t)round + (uint32_t)d, "Cisco IOS Software",
                      t + PG_MS(100 * d));
            pg_scn_ping(&s, M_ORION, devices[d], 0x0b1e, (uint16_t)(round + 1),
                        t + PG_MS(500 + 100 * d), 900);
        }
        pg_scn_tcp_blob(&s, M_ORION, (uint16_t)(51000 + round), "10.41.0.10", 135, 1100, 900,
                        t + PG_MS(1200), 700);
        ssh_poll(&s, M_ORION, (uint16_t)(51100 + round), "10.41.0.20", t + PG_MS(1500));
    }
    lookup1(&s, M_RESOLVER, M_ORION, 40001, NULL, 0, "vcenter.corp.example", "10.42.0.20",
            AT(3, 0));
    pg_scn_tls(&s, M_ORION, 51201, "10.42.0.20", 443, "vcenter.corp.example",
               "vcenter.corp.example", 4200, 36000, AT(3, 200), 900, 1);
    for (int i = 0; i < 3; i++)
        pg_scn_ntp(&s, M_ORION, M_NTP, AT(4 + 64 * i, 0), 700);
    /* Its vendor's update service, the one callout it makes. */
    lookup1(&s, M_RESOLVER, M_ORION, 40002, "8.8.8.8", 53201, "downloads.solarwinds.com",
            "52.20.134.192", AT(20, 0));
    pg_scn_tls(&s, M_ORION, 51301, "52.20.134.192", 443, "downloads.solarwinds.com",
               "downloads.solarwinds.com", 2100, 640000, AT(20, 200), 40000, 1);

    /* Inbound: an admin on the web console, a device's SNMP trap. */
    pg_scn_tls(&s, "10.50.0.10", 52001, M_ORION, 443, "orion.corp.example",
               "orion.corp.example", 2600, 88000, AT(30, 0), 900, 0);
    uint8_t trap[160];
    size_t tn = pg_scn_need(&s, snmp(trap, sizeof(trap), 0x7777, 1, "linkDown"), "SNMP trap");
    if (tn)
        pg_udp(s.w, "10.40.0.2", 52162, M_ORION, 162, trap, tn, AT(45, 0));

    /* SUNBURST: lookups of long, random-looking names under one parent
     * domain (the victim's identity encoded in the first label), the last
     * answered with a CNAME to the second stage, which the server then
     * contacts. Names as published in the public SUNBURST analyses. */
    static const char *const dga[] = {
        "7sbvaemscs0mc925tb99.appsync-api.us-west-2.avsvmcloud.com",
        "r1q6arhpujcf6jb6qqqb0trmuuaf1ot.appsync-api.eu-west-1.avsvmcloud.com",
        "02m6hcopd17p6h450gt3.appsync-api.us-west-2.avsvmcloud.com",
        "fc2b8ac8vp8cajqsem6q.appsync-api.us-east-2.avsvmcloud.com",
        "ihvpgv9psvq02ffo77et.appsync-api.us-east-2.avsvmcloud.com",
        "kthb0qslpn6sl8l8fsk5.appsync-api.us-east-1.avsvmcloud.com",
    };
    for (size_t i = 0; i + 1 < EGR_ARRAY_LEN(dga); i++)
        lookup1(&s, M_RESOLVER, M_ORION, (uint16_t)(40100 + i), "8.8.8.8",
                (uint16_t)(53300 + i), dga[i], "20.140.0.1", AT(100 + 17 * (int)i, 0));
    const struct pg_dns_answer c2[] = {{PG_DNS_CNAME, 60, NULL, "deftsecurity.com"},
                                       {PG_DNS_A, 60, NULL, "13.59.205.66"}};
    pg_scn_lookup(&s, M_RESOLVER, M_ORION, 40199, "8.8.8.8", 53399, dga[EGR_ARRAY_LEN(dga) - 1],
                  PG_DNS_A, c2, 2, AT(190, 0));
    pg_scn_tls(&s, M_ORION, 51401, "13.59.205.66", 443, "deftsecurity.com", "deftsecurity.com",
               9000, 4200, AT(191, 0), 45000, 1);
    /* A domain the server never looked up before, then reached. */
    lookup1(&s, M_RESOLVER, M_ORION, 40201, "8.8.8.8", 53401, "status.example-sync.net",
            "89.160.20.112", AT(200, 0));
    pg_scn_tls(&s, M_ORION, 51501, "89.160.20.112", 443, "status.example-sync.net",
               "status.example-sync.net", 1600, 3100, AT(200, 200), 35000, 1);
    return pg_scn_finish(&s, err);
}

/* ---- servers calling guarded SaaS and identity services ---------------------- */

#define S_RESOLVER "10.21.0.53"
#define S_SYNC "10.21.30.10"   /* sfdc-sync: the CRM integration host */
#define S_APP "10.21.40.10"    /* app1: an application server (SSO) */
#define S_ADMIN "10.21.50.10"  /* admin-jump: where admins open support cases */
#define S_WEB1 "10.21.60.10"   /* web1 */
#define S_WEB2 "10.21.60.11"   /* web2 */
#define S_PLAIN "10.21.70.7"   /* a home_net host that is no asset */

#define SF_ADDR "13.110.54.40"
#define OKTA_ADDR "3.33.170.20"
#define ENTRA_ADDR "20.190.151.68"

int pg_saas_write(const char *path, struct egr_err *err)
{
    struct pg_scn s;
    if (pg_scn_open(&s, path, 1, 0x5aa5, err) != EGR_OK)
        return EGR_EIO;
    if (!s.buf)
        return pg_scn_finish(&s, err);

    /* Allowed: each listed caller doing its ordinary work. */
    callout(&s, S_RESOLVER, S_SYNC, 41201, 45201, 53201, "acme.my.salesforce.com", SF_ADDR,
            42000, 2000000, AT(0, 0));
    callout(&s, S_RESOLVER, S_SYNC, 41202, 45202, 53202, "api.salesloft.com", "35.190.52.30",
            5200, 88000, AT(10, 0));
    callout(&s, S_RESOLVER, S_APP, 41211, 45211, 53211, "acme.okta.com", OKTA_ADDR, 3100, 9400,
            AT(20, 0));
    callout(&s, S_RESOLVER, S_APP, 41212, 45212, 53212, "login.microsoftonline.com",
            ENTRA_ADDR, 2900, 8800, AT(25, 0));
    callout(&s, S_RESOLVER, S_APP, 41213, 45213, 53213, "oauth2.googleapis.com",
            "142.250.74.106", 2100, 4300, AT(30, 0));
    /* A support case with a small attachment: under the upload limit. */
    callout(&s, S_RESOLVER, S_ADMIN, 41221, 45221, 53221, "support.okta.com", "3.33.170.21",
            300 * 1024, 24000, AT(40, 0));

    /* Inbound: Salesforce calling an application server back (outbound
     * messaging to a webhook): answered, never egress. */
    pg_scn_tls(&s, SF_ADDR, 52301, S_APP, 443, "hooks.corp.example", "hooks.corp.example",
               6100, 900, AT(50, 0), 30000, 0);

    /* An unlisted caller of Salesforce (a web server), and a host that is
     * no asset at all calling Drift's API. */
    pg_scn_tls(&s, S_WEB1, 45301, SF_ADDR, 443, "acme.my.salesforce.com",
               "acme.my.salesforce.com", 3800, 210000, AT(60, 0), 30000, 1);
    callout(&s, S_RESOLVER, S_PLAIN, 41311, 45311, 53311, "driftapi.com", "104.18.22.160", 2600,
            16000, AT(70, 0));

    /* A new caller of the identity providers: a web server that never
     * signed anyone in through Okta or Entra ID before. */
    pg_scn_tls(&s, S_WEB2, 45401, OKTA_ADDR, 443, "acme.okta.com", "acme.okta.com", 2800, 8100,
               AT(80, 0), 30000, 1);
    pg_scn_tls(&s, S_WEB2, 45402, ENTRA_ADDR, 443, "login.microsoftonline.com",
               "login.microsoftonline.com", 2700, 8300, AT(85, 0), 30000, 1);

    /* Volume: the integration host pulling a bulk export (60 MiB in), an
     * admin uploading a 6 MiB HAR file to the support portal. */
    pg_scn_tls(&s, S_SYNC, 45501, SF_ADDR, 443, "acme.my.salesforce.com",
               "acme.my.salesforce.com", 64000, 60u << 20, AT(100, 0), 30000, 1);
    pg_scn_tls(&s, S_ADMIN, 45601, "3.33.170.21", 443, "support.okta.com", "support.okta.com",
               6u << 20, 31000, AT(160, 0), 30000, 1);
    return pg_scn_finish(&s, err);
}

/* test_pktgen.c - the project's pcap writer and packet builder: the demo and
 * hostile captures read back with libpcap and checked with this file's own
 * parser (link type, frame count, every IPv4 header checksum and every
 * TCP/UDP/ICMP checksum, TCP sequence/ACK continuity on every connection,
 * the exfiltration upload reassembled), then with tshark (SNIs, DNS
 * names, HTTP hosts, no bad checksum, no malformed packet, no warning);
 * each payload builder against hand-computed bytes and at every too-small
 * buffer size; writer options, sort mode and error paths.
 *
 * tshark is a test dependency: the test fails when it is missing.
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "egressd/pktgen.h"

/* The demo as docs/pktgen.md describes it. */
#define DEMO_FRAMES 913
#define DEMO_FLOWS 31
#define DEMO_TCP_FRAMES 861
#define DEMO_UDP_FRAMES 42
#define DEMO_IPV4_FRAMES 889
#define EXFIL_BODY (300 * 1024)

static char tmpdir[64];

static const char *tmp_path(const char *name)
{
    static char path[8][128];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, sizeof(path[0]), "%s/%s", tmpdir, name);
    return p;
}

static int setup_dir(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/egressd-test-pktgen-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ----------------------------------------------------------------------
 * Reading a capture back
 */

struct frame {
    uint64_t ts;
    size_t len;
    uint8_t *data;
};

struct cap {
    int linktype;
    int precision;
    size_t n;
    struct frame *f;
};

static void cap_read(const char *path, struct cap *c)
{
    char eb[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_MICRO, eb);
    assert_non_null(p);
    memset(c, 0, sizeof(*c));
    c->linktype = pcap_datalink(p);
    c->precision = pcap_get_tstamp_precision(p);
    struct pcap_pkthdr *h;
    const u_char *d;
    size_t capn = 0;
    int rc;
    while ((rc = pcap_next_ex(p, &h, &d)) == 1) {
        if (c->n == capn) {
            capn = capn ? capn * 2 : 64;
            c->f = realloc(c->f, capn * sizeof(*c->f));
            assert_non_null(c->f);
        }
        assert_int_equal(h->caplen, h->len);
        struct frame *fr = &c->f[c->n++];
        fr->ts = (uint64_t)h->ts.tv_sec * 1000000u + (uint64_t)h->ts.tv_usec;
        fr->len = h->caplen;
        fr->data = malloc(h->caplen ? h->caplen : 1);
        assert_non_null(fr->data);
        memcpy(fr->data, d, h->caplen);
    }
    assert_int_equal(rc, PCAP_ERROR_BREAK); /* clean end of file, not truncated */
    pcap_close(p);
}

static void cap_free(struct cap *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->f[i].data);
    free(c->f);
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One's complement sum over pieces; the result folds to 0xffff over a
 * region whose checksum field is correct. */
static uint32_t csum_add(uint32_t s, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        s += i % 2 ? p[i] : (uint32_t)p[i] << 8;
    return s;
}

static uint16_t csum_fold(uint32_t s)
{
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)s;
}

struct pkt {
    int vlans;
    uint16_t vid[4];
    int family;
    const uint8_t *src, *dst;
    uint8_t proto;
    uint16_t sport, dport; /* ICMP echo: id in both */
    uint8_t flags;
    uint32_t seq, ack;
    const uint8_t *payload;
    size_t plen;
};

/* Parses one frame of the writer's output and checks every length and
 * checksum on the way (independently of the writer's code). */
static void parse(const struct frame *fr, struct pkt *k)
{
    const uint8_t *f = fr->data;
    size_t len = fr->len, off = 12;
    memset(k, 0, sizeof(*k));
    assert_true(len >= 14);
    uint16_t et = be16(f + off);
    while (et == 0x8100 || et == 0x88a8) {
        assert_true(k->vlans < 4);
        k->vid[k->vlans++] = be16(f + off + 2) & 0xfff;
        off += 4;
        et = be16(f + off);
    }
    off += 2;
    const uint8_t *ip = f + off, *l4;
    size_t l4len;
    uint8_t pseudo[40];
    size_t pslen;
    if (et == 0x0800) {
        k->family = 4;
        assert_true(len >= off + 20);
        assert_int_equal(ip[0], 0x45);
        assert_int_equal(be16(ip + 2), len - off);
        assert_int_equal(csum_fold(csum_add(0, ip, 20)), 0xffff);
        k->proto = ip[9];
        k->src = ip + 12;
        k->dst = ip + 16;
        l4 = ip + 20;
        l4len = len - off - 20;
        memcpy(pseudo, ip + 12, 8);
        pseudo[8] = 0;
        pseudo[9] = k->proto;
        pseudo[10] = (uint8_t)(l4len >> 8);
        pseudo[11] = (uint8_t)l4len;
        pslen = 12;
    } else {
        assert_int_equal(et, 0x86dd);
        k->family = 6;
        assert_true(len >= off + 40);
        assert_int_equal(ip[0] >> 4, 6);
        assert_int_equal(be16(ip + 4), len - off - 40);
        k->proto = ip[6];
        k->src = ip + 8;
        k->dst = ip + 24;
        l4 = ip + 40;
        l4len = len - off - 40;
        memcpy(pseudo, ip + 8, 32);
        memset(pseudo + 32, 0, 8);
        pseudo[34] = (uint8_t)(l4len >> 8);
        pseudo[35] = (uint8_t)l4len;
        pseudo[39] = k->proto;
        pslen = 40;
    }
    uint32_t ps = csum_add(0, pseudo, pslen);
    switch (k->proto) {
    case 6: {
        assert_true(l4len >= 20);
        size_t hl = (size_t)(l4[12] >> 4) * 4;
        assert_true(hl >= 20 && hl <= l4len);
        assert_int_equal(csum_fold(csum_add(ps, l4, l4len)), 0xffff);
        k->sport = be16(l4);
        k->dport = be16(l4 + 2);
        k->seq = be32(l4 + 4);
        k->ack = be32(l4 + 8);
        k->flags = l4[13];
        k->payload = l4 + hl;
        k->plen = l4len - hl;
        break;
    }
    case 17:
        assert_true(l4len >= 8);
        assert_int_equal(be16(l4 + 4), l4len);
        assert_int_not_equal(be16(l4 + 6), 0);
        assert_int_equal(csum_fold(csum_add(ps, l4, l4len)), 0xffff);
        k->sport = be16(l4);
        k->dport = be16(l4 + 2);
        k->payload = l4 + 8;
        k->plen = l4len - 8;
        break;
    case 1:
    case 58:
        assert_true(l4len >= 8);
        assert_int_equal(csum_fold(csum_add(k->proto == 58 ? ps : 0, l4, l4len)), 0xffff);
        k->sport = k->dport = be16(l4 + 4);
        k->payload = l4 + 8;
        k->plen = l4len - 8;
        break;
    default:
        k->payload = l4;
        k->plen = l4len;
    }
}

/* TCP continuity: every segment starts where the previous one of its
 * direction ended, and no ACK goes back or acknowledges unsent bytes. */
struct conn {
    int family;
    uint8_t a[16], b[16];
    uint16_t pa, pb;
    int seen[2];
    uint32_t next[2], lastack[2];
    uint64_t bytes[2];
    uint8_t first_flags;
    uint16_t first_sport;
    uint8_t *stream[2]; /* reassembled payload */
};

struct conns {
    struct conn c[64];
    size_t n;
};

static struct conn *conn_of(struct conns *t, const struct pkt *k, int *dir)
{
    size_t al = k->family == 4 ? 4 : 16;
    for (size_t i = 0; i < t->n; i++) {
        struct conn *c = &t->c[i];
        if (c->family != k->family)
            continue;
        if (!memcmp(c->a, k->src, al) && !memcmp(c->b, k->dst, al) && c->pa == k->sport &&
            c->pb == k->dport) {
            *dir = 0;
            return c;
        }
        if (!memcmp(c->a, k->dst, al) && !memcmp(c->b, k->src, al) && c->pa == k->dport &&
            c->pb == k->sport) {
            *dir = 1;
            return c;
        }
    }
    assert_true(t->n < 64);
    struct conn *c = &t->c[t->n++];
    memset(c, 0, sizeof(*c));
    c->family = k->family;
    memcpy(c->a, k->src, al);
    memcpy(c->b, k->dst, al);
    c->pa = k->sport;
    c->pb = k->dport;
    c->first_flags = k->flags;
    c->first_sport = k->sport;
    *dir = 0;
    return c;
}

static void conn_track(struct conns *t, const struct pkt *k)
{
    int d;
    struct conn *c = conn_of(t, k, &d);
    if (!c->seen[d]) {
        c->seen[d] = 1;
        c->next[d] = k->seq;
    }
    assert_int_equal(k->seq, c->next[d]);
    c->next[d] += (uint32_t)k->plen + (k->flags & 0x02 ? 1u : 0u) + (k->flags & 0x01 ? 1u : 0u);
    if (k->plen) {
        c->stream[d] = realloc(c->stream[d], c->bytes[d] + k->plen);
        assert_non_null(c->stream[d]);
        memcpy(c->stream[d] + c->bytes[d], k->payload, k->plen);
    }
    c->bytes[d] += k->plen;
    if ((k->flags & 0x10) && c->seen[!d]) {
        assert_true((int32_t)(k->ack - c->next[!d]) <= 0);
        if (c->lastack[d])
            assert_true((int32_t)(k->ack - c->lastack[d]) >= 0);
        c->lastack[d] = k->ack;
    }
}

static void conns_free(struct conns *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->c[i].stream[0]);
        free(t->c[i].stream[1]);
    }
}

static struct conn *conn_find(struct conns *t, const char *a, uint16_t pa, const char *b,
                              uint16_t pb)
{
    uint8_t x[16] = {0}, y[16] = {0};
    int fam = strchr(a, ':') ? 6 : 4;
    assert_int_equal(inet_pton(fam == 4 ? AF_INET : AF_INET6, a, x), 1);
    assert_int_equal(inet_pton(fam == 4 ? AF_INET : AF_INET6, b, y), 1);
    size_t al = fam == 4 ? 4 : 16;
    for (size_t i = 0; i < t->n; i++) {
        struct conn *c = &t->c[i];
        if (c->family == fam && !memcmp(c->a, x, al) && !memcmp(c->b, y, al) && c->pa == pa &&
            c->pb == pb)
            return c;
    }
    fail_msg("no TCP connection %s:%u -> %s:%u", a, pa, b, pb);
    return NULL;
}

/* ----------------------------------------------------------------------
 * tshark
 */

#define MAXLINES 64

struct lines {
    size_t n;
    char s[MAXLINES][512];
};

static void need_tshark(void)
{
    if (system("command -v tshark >/dev/null 2>&1") != 0)
        fail_msg("tshark not found: it is a test dependency (apt-get install tshark)");
}

/* Runs tshark on file with the given arguments: counts the output lines
 * and keeps the first MAXLINES. */
static void tshark(const char *file, const char *args, struct lines *out)
{
    char cmd[1024];
    need_tshark();
    snprintf(cmd, sizeof(cmd),
             "tshark -n -o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE "
             "-o ip.check_checksum:TRUE -r '%s' %s 2>/dev/null",
             file, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    memset(out, 0, sizeof(*out));
    char line[4096];
    while (fgets(line, sizeof(line), p)) {
        line[strcspn(line, "\n")] = 0;
        if (out->n < MAXLINES) { /* later lines are only counted */
            size_t m = strlen(line);
            if (m >= sizeof(out->s[0]))
                m = sizeof(out->s[0]) - 1;
            memcpy(out->s[out->n], line, m);
            out->s[out->n][m] = 0;
        }
        out->n++;
    }
    int st = pclose(p);
    if (st != 0)
        fail_msg("tshark failed (status %d): %s", st, cmd);
}

static void assert_lines(const struct lines *got, const char *const *want, size_t n)
{
    for (size_t i = 0; i < got->n && i < n; i++)
        if (strcmp(got->s[i], want[i]) != 0)
            fail_msg("line %zu: got '%s', want '%s'", i, got->s[i], want[i]);
    assert_int_equal(got->n, n);
}

/* ----------------------------------------------------------------------
 * The demo capture
 */

static void write_demo(const char *path)
{
    struct egr_err err = {{0}};
    int rc = pg_demo_write(path, &err);
    if (rc != EGR_OK)
        fail_msg("pg_demo_write: %s", err.msg);
}

static void test_demo_structure(void **state)
{
    const char *path = tmp_path("demo.pcap");
    write_demo(path);

    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t gh[24];
    assert_int_equal(fread(gh, 1, sizeof(gh), f), sizeof(gh));
    fclose(f);
    uint32_t magic;
    memcpy(&magic, gh, 4);
    assert_int_equal(magic, 0xa1b2c3d4u); /* classic pcap, microseconds, host order */

    struct cap c;
    cap_read(path, &c);
    assert_int_equal(c.linktype, DLT_EN10MB);
    assert_int_equal(c.precision, PCAP_TSTAMP_PRECISION_MICRO);
    assert_int_equal(c.n, DEMO_FRAMES);
    assert_int_equal(c.f[0].ts, PG_DEMO_START_US);
    assert_true(c.f[c.n - 1].ts > PG_DEMO_START_US + PG_US(240));
    assert_true(c.f[c.n - 1].ts < PG_DEMO_START_US + PG_US(300));

    struct conns *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    /* flows: TCP connections plus UDP and ICMP conversations */
    struct {
        int family;
        uint8_t proto;
        uint8_t lo[18], hi[18];
    } flows[64];
    size_t nflows = 0, v4 = 0, v6 = 0;
    for (size_t i = 0; i < c.n; i++) {
        struct pkt k;
        if (i)
            assert_true(c.f[i].ts >= c.f[i - 1].ts);
        parse(&c.f[i], &k);
        assert_int_equal(k.vlans, 0);
        k.family == 4 ? v4++ : v6++;
        if (k.proto == 6)
            conn_track(t, &k);
        uint8_t x[18] = {0}, y[18] = {0};
        memcpy(x, k.src, k.family == 4 ? 4 : 16);
        memcpy(y, k.dst, k.family == 4 ? 4 : 16);
        x[16] = (uint8_t)(k.sport >> 8), x[17] = (uint8_t)k.sport;
        y[16] = (uint8_t)(k.dport >> 8), y[17] = (uint8_t)k.dport;
        int o = memcmp(x, y, 18) < 0;
        size_t j;
        for (j = 0; j < nflows; j++)
            if (flows[j].proto == k.proto && !memcmp(flows[j].lo, o ? x : y, 18) &&
                !memcmp(flows[j].hi, o ? y : x, 18))
                break;
        if (j == nflows) {
            assert_true(nflows < 64);
            flows[nflows].family = k.family;
            flows[nflows].proto = k.proto;
            memcpy(flows[nflows].lo, o ? x : y, 18);
            memcpy(flows[nflows].hi, o ? y : x, 18);
            nflows++;
        }
    }
    assert_int_equal(nflows, DEMO_FLOWS);
    assert_int_equal(v4, DEMO_IPV4_FRAMES);
    assert_int_equal(v6, DEMO_FRAMES - DEMO_IPV4_FRAMES);
    assert_int_equal(t->n, 13);

    /* Every closed connection ends fully acknowledged both ways. */
    for (size_t i = 0; i < t->n; i++) {
        assert_int_equal(t->c[i].lastack[0], t->c[i].next[1]);
        assert_int_equal(t->c[i].lastack[1], t->c[i].next[0]);
    }

    /* The exfiltration upload: handshake first, the whole POST in order. */
    struct conn *x = conn_find(t, "10.20.1.10", 45144, "175.16.199.1", 80);
    assert_int_equal(x->first_flags, 0x02);
    static const char head[] = "POST /upload/bigip-ucs.bin HTTP/1.1\r\nHost: 175.16.199.1\r\n"
                               "User-Agent: curl/7.47.1\r\n";
    assert_true(x->bytes[0] > EXFIL_BODY);
    assert_memory_equal(x->stream[0], head, sizeof(head) - 1);
    const char *cl = memmem(x->stream[0], x->bytes[0], "Content-Length: 307200\r\n", 24);
    assert_non_null(cl);
    const char *body = memmem(x->stream[0], x->bytes[0], "\r\n\r\n", 4);
    assert_non_null(body);
    assert_int_equal(x->bytes[0] - (size_t)(body + 4 - (const char *)x->stream[0]), EXFIL_BODY);
    assert_memory_equal(x->stream[1], "HTTP/1.1 200 OK\r\n", 17);

    /* The mid-stream SSH flow starts with the server's banner, no SYN. */
    struct conn *ssh = conn_find(t, "10.20.1.10", 22, "67.43.156.1", 51514);
    assert_int_equal(ssh->first_flags & 0x02, 0);
    assert_memory_equal(ssh->stream[0], "SSH-2.0-OpenSSH_7.4\r\n", 21);
    assert_memory_equal(ssh->stream[1], "SSH-2.0-", 8);

    conns_free(t);
    free(t);
    cap_free(&c);
}

static void test_demo_deterministic(void **state)
{
    const char *a = tmp_path("demo-a.pcap"), *b = tmp_path("demo-b.pcap");
    write_demo(a);
    write_demo(b);
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    assert_non_null(fa);
    assert_non_null(fb);
    size_t n = 0;
    int ca, cb;
    do {
        ca = fgetc(fa);
        cb = fgetc(fb);
        assert_int_equal(ca, cb);
        n++;
    } while (ca != EOF);
    fclose(fa);
    fclose(fb);
    assert_true(n > 500000); /* the 300 KB upload alone */
}

static void test_demo_tshark(void **state)
{
    const char *path = tmp_path("demo-ts.pcap");
    struct lines l;
    write_demo(path);

    static const char *const snis[] = {
        "api.f5.com",   "update.fortiguard.net",        "shop.example.com",
        "cloudflare-dns.com", "cdn-updates.example-sync.net", "www.bing.com",
        "shop.example.com", "github.com", "pages.github.com"};
    tshark(path,
           "-Y tls.handshake.extensions_server_name -T fields -e tls.handshake.extensions_server_name",
           &l);
    assert_lines(&l, snis, EGR_ARRAY_LEN(snis));

    static const char *const queries[] = {
        "pool.ntp.org",       "pool.ntp.org",       "api.f5.com",
        "api.f5.com",         "update.fortiguard.net", "update.fortiguard.net",
        "cloudflare-dns.com", "cloudflare-dns.com", "cdn-updates.example-sync.net",
        "cdn-updates.example-sync.net", "neverssl.com", "neverssl.com",
        "www.bing.com",       "github.com",         "pages.github.com",
        "pages.github.com"};
    tshark(path, "-Y 'dns.flags.response == 0' -T fields -e dns.qry.name", &l);
    assert_lines(&l, queries, EGR_ARRAY_LEN(queries));

    /* answers, with the CNAME chain decompressed by tshark */
    tshark(path,
           "-Y 'dns.flags.response == 1 && ip.src == 10.20.0.53 && udp.dstport != 53' "
           "-T fields -e dns.qry.name -e dns.cname -e dns.a",
           &l);
    static const char *const answers[] = {
        "pool.ntp.org\t\t162.159.200.123,162.159.200.1",
        "api.f5.com\tf5.map.fastly.net\t151.101.1.140,151.101.65.140",
        "update.fortiguard.net\t\t208.91.113.83",
        "cdn-updates.example-sync.net\t\t89.160.20.112",
        "neverssl.com\t\t34.223.124.45",
        ("www.bing.com\twww-www.bing.com.trafficmanager.net,dual-a-0001.a-msedge.net\t"
         "13.107.21.200,204.79.197.200"),
        "github.com\t\t140.82.121.4",
        "pages.github.com\t\t185.199.108.153"};
    assert_lines(&l, answers, EGR_ARRAY_LEN(answers));
    tshark(path, "-Y 'dns.aaaa' -T fields -e dns.aaaa", &l);
    assert_true(l.n == 2 && strcmp(l.s[0], "2606:4700:4700::1111,2606:4700:4700::1001") == 0);

    static const char *const hosts[] = {
        ("neverssl.com\tMozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 "
         "Firefox/131.0\tGET"),
        "175.16.199.1\tcurl/7.47.1\tPOST"};
    tshark(path, "-Y http.request -T fields -e http.host -e http.user_agent -e http.request.method",
           &l);
    assert_lines(&l, hosts, EGR_ARRAY_LEN(hosts));

    /* certificates: the SAN of the inbound virtual server */
    tshark(path, "-Y 'ip.src == 10.20.2.80 && x509ce.dNSName' -T fields -e x509ce.dNSName", &l);
    assert_true(l.n == 2 && strcmp(l.s[0], "shop.example.com") == 0);

    tshark(path, "-Y ntp -T fields -e ntp.flags.mode", &l);
    assert_int_equal(l.n, 10);
    tshark(path, "-Y 'ssh.protocol' -T fields -e ssh.protocol", &l);
    assert_true(l.n == 2 && strcmp(l.s[0], "SSH-2.0-OpenSSH_7.4") == 0);
    tshark(path, "-Y 'icmp.type == 0' -T fields -e ip.src", &l);
    assert_true(l.n == 5 && strcmp(l.s[0], "1.1.1.1") == 0);

    /* nothing wrong anywhere: checksums verified (the -o options), no
     * malformed packet, no expert warning or error */
    tshark(path,
           "-Y '(ip && ip.checksum.status != 1) || (tcp && tcp.checksum.status != 1) || "
           "(udp && udp.checksum.status != 1) || (icmp && icmp.checksum.status != 1) || "
           "(icmpv6 && icmpv6.checksum.status != 1) || _ws.malformed || "
           "_ws.expert.severity >= 0x00600000'",
           &l);
    if (l.n)
        fail_msg("tshark complains: %s", l.s[0]);
    /* and the checks did run: every TCP and UDP segment verified good */
    tshark(path, "-Y 'tcp.checksum.status == 1' -T fields -e frame.number", &l);
    assert_int_equal(l.n, DEMO_TCP_FRAMES);
    tshark(path, "-Y 'udp.checksum.status == 1' -T fields -e frame.number", &l);
    assert_int_equal(l.n, DEMO_UDP_FRAMES);
    tshark(path, "-Y 'ip.checksum.status == 1' -T fields -e frame.number", &l);
    assert_int_equal(l.n, DEMO_IPV4_FRAMES);
}

/* ----------------------------------------------------------------------
 * The hostile capture
 */

static int frames_contain(const struct cap *c, const void *needle, size_t n)
{
    int hits = 0;
    for (size_t i = 0; i < c->n; i++)
        if (memmem(c->f[i].data, c->f[i].len, needle, n))
            hits++;
    return hits;
}

static void test_hostile(void **state)
{
    const char *path = tmp_path("hostile.pcap");
    struct egr_err err = {{0}};
    if (pg_hostile_write(path, &err) != EGR_OK)
        fail_msg("pg_hostile_write: %s", err.msg);

    struct cap c;
    cap_read(path, &c);
    struct conns *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    for (size_t i = 0; i < c.n; i++) {
        struct pkt k;
        parse(&c.f[i], &k);
        if (k.proto == 6)
            conn_track(t, &k);
    }
    assert_int_equal(t->n, 11); /* 6 TLS + 5 HTTP */
    conns_free(t);
    free(t);
    /* the raw bytes are on the wire as given: in the ClientHello (SNI), the
     * server's flight (certificate CN and SAN) and the HTTP request (Host,
     * User-Agent); DNS carries them as labels */
    assert_int_equal(frames_contain(&c, "\xff\xfe.bad\xc3.example", 14), 3);
    assert_int_equal(frames_contain(&c, "\x02\xff\xfe\x04" "bad\xc3\x07" "example", 16), 2);
    assert_int_equal(frames_contain(&c, "nul\0byte.example", 16), 2); /* SNI, certificate */
    assert_int_equal(frames_contain(&c, "ctl\x01\x1f\x7f\t\n\r.example", 17), 2);
    assert_int_equal(frames_contain(&c, "User-Agent: \"><img src=x onerror=alert(1)>\r\n", 44), 1);
    /* DNS question (type A, class IN), in the query and the response */
    assert_int_equal(frames_contain(&c, "\x19<script>alert(1)</script>\x00\x00\x01\x00\x01", 31), 2);
    cap_free(&c);

    static const char *const snis[] = {"<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>",
                                       "quote\"back\\slash'single.example"};
    struct lines l;
    tshark(path,
           "-Y tls.handshake.extensions_server_name -T fields -e tls.handshake.extensions_server_name",
           &l);
    assert_int_equal(l.n, 6);
    for (size_t i = 0; i < EGR_ARRAY_LEN(snis); i++)
        assert_string_equal(l.s[i], snis[i]);
    tshark(path, "-Y 'dns.flags.response == 0' -T fields -e dns.qry.name", &l);
    assert_int_equal(l.n, 6);
    assert_string_equal(l.s[0], "<script>alert(1)</script>");
    tshark(path, "-Y http.request -T fields -e http.host -e http.request.uri", &l);
    assert_int_equal(l.n, 5);
    assert_string_equal(l.s[0], "<script>alert(1)</script>\t/<script>alert(1)</script>?q=\"'\\");
    tshark(path, "-Y '_ws.malformed || _ws.expert.severity >= 0x00600000'", &l);
    if (l.n)
        fail_msg("tshark complains: %s", l.s[0]);
}

/* ----------------------------------------------------------------------
 * Payload builders
 */

/* Every builder, called through one signature for the bound test. */
typedef size_t (*build_fn)(uint8_t *buf, size_t cap);

static size_t b_query(uint8_t *b, size_t c)
{
    return pg_dns_query(b, c, 0x1234, "www.example.com", PG_DNS_A);
}

static size_t b_response(uint8_t *b, size_t c)
{
    const struct pg_dns_answer a[] = {{PG_DNS_CNAME, 300, NULL, "cdn.example.com"},
                                      {PG_DNS_A, 60, NULL, "192.0.2.1"},
                                      {PG_DNS_AAAA, 60, "cdn.example.com", "2001:db8::1"}};
    return pg_dns_response(b, c, 0xbeef, "www.example.com", PG_DNS_A, a, 3);
}

static size_t b_client_hello(uint8_t *b, size_t c)
{
    return pg_tls_client_hello(b, c, "api.example.net");
}

static size_t b_server_hello(uint8_t *b, size_t c)
{
    return pg_tls_server_hello(b, c, "api.example.net");
}

static size_t b_finished(uint8_t *b, size_t c)
{
    return pg_tls_finished(b, c, 1);
}

static size_t b_app_data(uint8_t *b, size_t c)
{
    return pg_tls_app_data(b, c, 17000, 5);
}

static size_t b_http_req(uint8_t *b, size_t c)
{
    return pg_http_request(b, c, "GET", "example.com", "/a", "ua/1");
}

static size_t b_http_body(uint8_t *b, size_t c)
{
    return pg_http_request_body(b, c, "PUT", "example.com", "/up", "ua/1", "text/plain", 333);
}

static size_t b_http_resp(uint8_t *b, size_t c)
{
    return pg_http_response(b, c, 404, "application/json", 77);
}

static size_t b_ntp_c(uint8_t *b, size_t c)
{
    return pg_ntp_client(b, c, PG_DEMO_START_US);
}

static size_t b_ntp_s(uint8_t *b, size_t c)
{
    return pg_ntp_server(b, c, PG_DEMO_START_US, PG_DEMO_START_US + 15000);
}

static size_t b_kexinit(uint8_t *b, size_t c)
{
    return pg_ssh_kexinit(b, c, 1, 9);
}

/* Each builder gives 0 for every buffer shorter than its output, without
 * touching a byte past the end (exact-size heap buffers: ASan sees any
 * overrun), and the same bytes again with an exact-size buffer. */
static void test_builders_bounded(void **state)
{
    static const build_fn fns[] = {b_query,     b_response,   b_client_hello, b_server_hello,
                                   b_finished,  b_app_data,   b_http_req,     b_http_body,
                                   b_http_resp, b_ntp_c,      b_ntp_s,        b_kexinit};
    static uint8_t ref[32768];
    for (size_t i = 0; i < EGR_ARRAY_LEN(fns); i++) {
        size_t n = fns[i](ref, sizeof(ref));
        assert_true(n > 0 && n < sizeof(ref));
        assert_int_equal(fns[i](NULL, 0), 0);
        for (size_t cap = 0; cap < n; cap++) {
            uint8_t *b = malloc(cap ? cap : 1);
            assert_non_null(b);
            assert_int_equal(fns[i](b, cap), 0);
            free(b);
        }
        uint8_t *b = malloc(n);
        assert_non_null(b);
        assert_int_equal(fns[i](b, n), n);
        assert_memory_equal(b, ref, n);
        free(b);
    }
}

static void test_dns_bytes(void **state)
{
    uint8_t b[512];
    static const uint8_t q[] = {0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
                                0x00, 0x00, 3,    'w',  'w',  'w',  7,    'e',  'x',  'a',
                                'm',  'p',  'l',  'e',  3,    'c',  'o',  'm',  0,    0x00,
                                0x01, 0x00, 0x01};
    assert_int_equal(b_query(b, sizeof(b)), sizeof(q));
    assert_memory_equal(b, q, sizeof(q));
    /* a trailing dot is the same name */
    assert_int_equal(pg_dns_query(b, sizeof(b), 0x1234, "www.example.com.", PG_DNS_A), sizeof(q));
    assert_memory_equal(b, q, sizeof(q));

    /* Compression: the CNAME owner points at the question (offset 12), its
     * target "cdn" + pointer to "example.com" (offset 16), the A record's
     * owner at the CNAME target (offset 45). */
    static const uint8_t r[] = {
        0xbe, 0xef, 0x81, 0x80, 0x00, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00,
        3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0,
        0x00, 0x01, 0x00, 0x01,
        0xc0, 0x0c, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x06,
        3, 'c', 'd', 'n', 0xc0, 0x10,
        0xc0, 0x2d, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x04, 192, 0, 2, 1,
        0xc0, 0x2d, 0x00, 0x1c, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x10,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    assert_int_equal(b_response(b, sizeof(b)), sizeof(r));
    assert_memory_equal(b, r, sizeof(r));

    /* NXDOMAIN, no answer */
    size_t n = pg_dns_response_n(b, sizeof(b), 7, "x.invalid", 9, PG_DNS_AAAA, 3, NULL, 0);
    assert_int_equal(n, 12 + 11 + 4);
    assert_int_equal(b[3], 0x83);
    assert_int_equal(b[7], 0);

    /* raw bytes, even NUL, inside a label */
    n = pg_dns_query_n(b, sizeof(b), 1, "a\0b.c", 5, PG_DNS_A);
    assert_int_equal(n, 12 + 7 + 4);
    assert_memory_equal(b + 12, "\x03" "a\0b" "\x01" "c\x00", 7);

    /* invalid names */
    char label64[80];
    memset(label64, 'a', 64);
    label64[64] = 0;
    assert_int_equal(pg_dns_query(b, sizeof(b), 1, "a..b", PG_DNS_A), 0);
    assert_int_equal(pg_dns_query(b, sizeof(b), 1, ".a", PG_DNS_A), 0);
    assert_int_equal(pg_dns_query(b, sizeof(b), 1, label64, PG_DNS_A), 0);
    label64[63] = 0;
    assert_int_equal(pg_dns_query(b, sizeof(b), 1, label64, PG_DNS_A), 12 + 65 + 4);
    char longname[300];
    for (int i = 0; i < 64; i++)
        memcpy(longname + 4 * i, "abc.", 4);
    longname[255] = 0; /* 64 labels: 257 bytes encoded */
    assert_int_equal(pg_dns_query(b, sizeof(b), 1, longname, PG_DNS_A), 0);
    const struct pg_dns_answer bad[] = {{PG_DNS_A, 1, NULL, "not-an-address"}};
    assert_int_equal(pg_dns_response(b, sizeof(b), 1, "a.b", PG_DNS_A, bad, 1), 0);
    const struct pg_dns_answer mx[] = {{15, 1, NULL, "mail.b"}};
    assert_int_equal(pg_dns_response(b, sizeof(b), 1, "a.b", PG_DNS_A, mx, 1), 0);
}

/* Walks TLS records and handshake messages: returns the number of
 * handshake messages and stores their types. */
static size_t tls_messages(const uint8_t *p, size_t n, uint8_t *types, size_t max)
{
    size_t off = 0, k = 0;
    uint8_t hs[20000];
    size_t hn = 0;
    while (off < n) {
        assert_true(n - off >= 5);
        size_t rl = be16(p + off + 3);
        assert_true(rl <= 16384 + 256);
        assert_true(n - off - 5 >= rl);
        if (p[off] == 0x16) {
            assert_true(hn + rl <= sizeof(hs));
            memcpy(hs + hn, p + off + 5, rl);
            hn += rl;
        }
        off += 5 + rl;
    }
    for (size_t h = 0; h + 4 <= hn;) {
        size_t ml = (size_t)hs[h + 1] << 16 | (size_t)hs[h + 2] << 8 | hs[h + 3];
        if (hs[h] == 0 || ml > hn - h - 4)
            break; /* encrypted Finished: opaque */
        assert_true(k < max);
        types[k++] = hs[h];
        h += 4 + ml;
    }
    return k;
}

/* The extension of `type` in a ClientHello record, or NULL. */
static const uint8_t *ch_ext(const uint8_t *p, size_t n, uint16_t type, size_t *len)
{
    assert_int_equal(p[0], 0x16);
    assert_int_equal(be16(p + 3), n - 5);
    assert_int_equal(p[5], 1);
    size_t hl = (size_t)p[6] << 16 | (size_t)p[7] << 8 | p[8];
    assert_int_equal(hl, n - 9);
    size_t off = 9 + 2 + 32;
    off += 1 + p[off];            /* session id */
    off += 2 + be16(p + off);     /* cipher suites */
    off += 1 + p[off];            /* compression */
    size_t el = be16(p + off);
    off += 2;
    assert_int_equal(off + el, n);
    const uint8_t *found = NULL;
    while (off < n) {
        uint16_t t = be16(p + off), l = be16(p + off + 2);
        assert_true(off + 4 + l <= n);
        if (t == type) {
            found = p + off + 4;
            *len = l;
        }
        off += 4 + (size_t)l;
    }
    assert_int_equal(off, n);
    return found;
}

static void test_tls(void **state)
{
    static uint8_t b[20000];
    size_t n = pg_tls_client_hello_n(b, sizeof(b), "a\0<b>", 5), l = 0;
    assert_true(n > 200);
    const uint8_t *e = ch_ext(b, n, 0x0000, &l);
    assert_non_null(e);
    assert_int_equal(l, 2 + 3 + 5);
    assert_memory_equal(e, "\x00\x08\x00\x00\x05" "a\0<b>", 10);
    e = ch_ext(b, n, 0x0010, &l);
    assert_non_null(e);
    assert_memory_equal(e, "\x00\x0c\x02h2\x08http/1.1", 14);
    e = ch_ext(b, n, 0x002b, &l);
    assert_non_null(e);
    assert_memory_equal(e, "\x04\x03\x04\x03\x03", 5);
    assert_non_null(ch_ext(b, n, 0x000a, &l));
    assert_non_null(ch_ext(b, n, 0x000b, &l));
    assert_non_null(ch_ext(b, n, 0x000d, &l));
    n = pg_tls_client_hello(b, sizeof(b), NULL);
    assert_true(n > 200);
    assert_null(ch_ext(b, n, 0x0000, &l));
    assert_non_null(ch_ext(b, n, 0x0033, &l));

    uint8_t types[8];
    n = pg_tls_server_hello(b, sizeof(b), "srv.example");
    assert_int_equal(tls_messages(b, n, types, 8), 4);
    assert_memory_equal(types, "\x02\x0b\x0c\x0e", 4);
    /* the name is the subject CN (UTF8String) and the SAN dNSName */
    assert_non_null(memmem(b, n, "\x0c\x0bsrv.example", 13));
    assert_non_null(memmem(b, n, "\x82\x0bsrv.example", 13));
    n = pg_tls_server_hello(b, sizeof(b), NULL);
    assert_int_equal(tls_messages(b, n, types, 8), 3);
    assert_memory_equal(types, "\x02\x0c\x0e", 3);
    /* a name that makes the certificate need long-form DER lengths */
    char big[3000];
    memset(big, 'x', sizeof(big));
    n = pg_tls_server_hello_n(b, sizeof(b), big, sizeof(big));
    assert_int_equal(tls_messages(b, n, types, 8), 4);
    /* too big for one record */
    static char huge[17000];
    memset(huge, 'y', sizeof(huge));
    assert_int_equal(pg_tls_client_hello_n(b, sizeof(b), huge, sizeof(huge)), 0);

    n = pg_tls_finished(b, sizeof(b), 1);
    assert_int_equal(n, 5 + 37 + 6 + 5 + 40);
    assert_int_equal(tls_messages(b, n, types, 8), 1);
    assert_int_equal(types[0], 16);
    assert_int_equal(pg_tls_finished(b, sizeof(b), 0), 6 + 5 + 40);
    n = pg_tls_app_data(b, sizeof(b), 17000, 1);
    assert_int_equal(n, 17000 + 2 * (5 + 24));
    assert_int_equal(be16(b + 3), 16384 + 24);
    assert_int_equal(b[5 + 16384 + 24], 0x17);
}

static void test_http_ntp_ssh(void **state)
{
    uint8_t b[4096];
    static const char req[] = "GET /a HTTP/1.1\r\nHost: example.com\r\nUser-Agent: ua/1\r\n"
                              "Accept: */*\r\n\r\n";
    assert_int_equal(b_http_req(b, sizeof(b)), sizeof(req) - 1);
    assert_memory_equal(b, req, sizeof(req) - 1);
    size_t n = pg_http_request(b, sizeof(b), NULL, NULL, NULL, NULL);
    assert_int_equal(n, 31);
    assert_memory_equal(b, "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 31);
    n = b_http_body(b, sizeof(b));
    const uint8_t *body = memmem(b, n, "\r\n\r\n", 4);
    assert_non_null(body);
    assert_int_equal(n - (size_t)(body + 4 - b), 333);
    assert_non_null(memmem(b, n, "Content-Length: 333\r\n", 21));
    assert_non_null(memmem(b, n, "Content-Type: text/plain\r\n", 26));
    n = b_http_resp(b, sizeof(b));
    assert_memory_equal(b, "HTTP/1.1 404 Not Found\r\n", 24);
    assert_non_null(memmem(b, n, "Content-Length: 77\r\n", 20));
    assert_int_equal(pg_http_response(b, sizeof(b), 42, NULL, 0), 0);

    assert_int_equal(b_ntp_c(b, sizeof(b)), 48);
    assert_int_equal(b[0], 0x23);
    assert_int_equal(be32(b + 40), 1760515200u + 2208988800u);
    assert_int_equal(be32(b + 44), 0);
    assert_int_equal(b_ntp_s(b, sizeof(b)), 48);
    assert_int_equal(b[0], 0x24);
    assert_int_equal(be32(b + 24), 1760515200u + 2208988800u); /* origin = request */
    assert_int_equal(be32(b + 40), 1760515200u + 2208988800u);
    assert_int_equal(be32(b + 44), (uint32_t)((15000ull << 32) / 1000000u));

    n = b_kexinit(b, sizeof(b));
    assert_int_equal(be32(b) + 4, n);
    assert_int_equal(n % 8, 0);
    assert_true(b[4] >= 4);
    assert_int_equal(b[5], 20);
    assert_non_null(memmem(b, n, "curve25519-sha256", 17));
}

/* ----------------------------------------------------------------------
 * Writer
 */

static void test_packets_and_options(void **state)
{
    const char *path = tmp_path("opts.pcap");
    struct egr_err err = {{0}};
    struct pg_writer *w = pg_open(path, &err);
    assert_non_null(w);
    const uint64_t t = PG_DEMO_START_US;
    const uint16_t two[] = {100, 200}, one[] = {7};
    assert_int_equal(pg_set_vlans(w, two, 2), EGR_OK);
    assert_int_equal(pg_udp(w, "192.0.2.1", 5000, "198.51.100.2", 53, "abc", 3, t), EGR_OK);
    assert_int_equal(pg_set_vlans(w, one, 1), EGR_OK);
    static const uint8_t mc[6] = {0xaa, 1, 2, 3, 4, 5}, ms[6] = {0xbb, 1, 2, 3, 4, 5};
    pg_set_macs(w, mc, ms);
    pg_set_ttl(w, 3);
    assert_int_equal(pg_udp(w, "2001:db8::1", 5000, "2001:db8::2", 53, "abcd", 4, t + 1), EGR_OK);
    assert_int_equal(pg_set_vlans(w, NULL, 0), EGR_OK);
    pg_set_macs(w, NULL, NULL);
    assert_int_equal(pg_icmp_echo(w, "192.0.2.1", "198.51.100.2", 0, 9, 1, "ping", 4, t + 2), EGR_OK);
    assert_int_equal(pg_icmp_echo(w, "2001:db8::2", "2001:db8::1", 1, 9, 1, "pong", 5, t + 3), EGR_OK);
    assert_int_equal(pg_icmp(w, "192.0.2.1", "198.51.100.2", 3, 3, 0, "quoted", 6, t + 4), EGR_OK);
    assert_int_equal(pg_ip(w, "192.0.2.1", "198.51.100.2", 47, "\x00\x00\x08\x00", 4, t + 5), EGR_OK);
    assert_int_equal(pg_raw_frame(w, "\x01\x02\x03", 3, t + 6), EGR_OK);
    /* a UDP datagram with odd length and one of the largest size */
    static uint8_t big[65507];
    pg_fill(big, sizeof(big), 3);
    assert_int_equal(pg_udp(w, "192.0.2.1", 1, "198.51.100.2", 2, big, sizeof(big), t + 7), EGR_OK);
    assert_int_equal(pg_frames(w), 8);
    assert_int_equal(pg_close(w, &err), EGR_OK);

    struct cap c;
    struct pkt k;
    cap_read(path, &c);
    assert_int_equal(c.n, 8);
    parse(&c.f[0], &k);
    assert_int_equal(k.vlans, 2);
    assert_int_equal(be16(c.f[0].data + 12), 0x88a8);
    assert_int_equal(be16(c.f[0].data + 16), 0x8100);
    assert_true(k.vid[0] == 100 && k.vid[1] == 200);
    assert_memory_equal(c.f[0].data, "\x02\x00\xc6\x33\x64\x02\x02\x00\xc0\x00\x02\x01", 12);
    assert_int_equal(k.sport, 5000);
    assert_memory_equal(k.payload, "abc", 3);
    parse(&c.f[1], &k);
    assert_int_equal(k.family, 6);
    assert_true(k.vlans == 1 && k.vid[0] == 7);
    assert_int_equal(be16(c.f[1].data + 12), 0x8100);
    assert_memory_equal(c.f[1].data, ms, 6);
    assert_memory_equal(c.f[1].data + 6, mc, 6);
    assert_int_equal(c.f[1].data[14 + 4 + 7], 3); /* hop limit */
    parse(&c.f[2], &k);
    assert_true(k.proto == 1 && k.sport == 9 && k.vlans == 0);
    assert_int_equal(c.f[2].data[14 + 20], 8);
    parse(&c.f[3], &k);
    assert_true(k.proto == 58 && k.plen == 5);
    assert_int_equal(c.f[3].data[14 + 40], 129);
    parse(&c.f[4], &k);
    assert_int_equal(c.f[4].data[14 + 20], 3);
    parse(&c.f[5], &k);
    assert_true(k.proto == 47 && k.plen == 4);
    assert_int_equal(c.f[6].len, 3);
    parse(&c.f[7], &k);
    assert_int_equal(k.plen, sizeof(big));
    assert_memory_equal(k.payload, big, sizeof(big));
    for (size_t i = 0; i < c.n; i++)
        assert_int_equal(c.f[i].ts, t + i);
    cap_free(&c);
}

static void test_tcp(void **state)
{
    const char *path = tmp_path("tcp.pcap");
    struct egr_err err = {{0}};
    struct pg_writer *w = pg_open(path, &err);
    assert_non_null(w);
    const uint64_t t = PG_DEMO_START_US;
    struct pg_tcp *c = pg_tcp_open(w, "10.0.0.1", 40000, "192.0.2.9", 443, t);
    assert_non_null(c);
    assert_int_equal(pg_tcp_time(c), t + 20000 + 100); /* default RTT, client near */
    static uint8_t data[5000];
    pg_fill(data, sizeof(data), 11);
    assert_int_equal(pg_tcp_send(c, PG_C2S, data, sizeof(data), PG_T_NEXT), EGR_OK);
    assert_int_equal(pg_tcp_send(c, PG_S2C, "ok", 2, PG_T_NEXT), EGR_OK);
    assert_int_equal(pg_tcp_segment(c, PG_C2S, PG_TCP_PSH | PG_TCP_ACK, "x", 1, PG_T_NEXT), EGR_OK);
    assert_int_equal(pg_tcp_close(c, PG_CLOSE_RST_SERVER, PG_T_NEXT), EGR_OK);
    /* IPv6, mid-stream, sensor next to the server, FIN by the server */
    c = pg_tcp_new(w, "2001:db8::1", 50000, "2001:db8::2", 22);
    pg_tcp_set_rtt(c, 5000, 0);
    assert_int_equal(pg_tcp_send(c, PG_S2C, "SSH-2.0-x\r\n", 11, t + PG_US(1)), EGR_OK);
    assert_int_equal(pg_tcp_close(c, PG_CLOSE_FIN_SERVER, PG_T_NEXT), EGR_OK);
    /* left open: freed by pg_close */
    assert_non_null(pg_tcp_open(w, "10.0.0.1", 40001, "192.0.2.9", 80, t + PG_US(2)));
    assert_int_equal(pg_close(w, &err), EGR_OK);

    struct cap cp;
    cap_read(path, &cp);
    struct conns *tr = calloc(1, sizeof(*tr));
    assert_non_null(tr);
    struct pkt k[40];
    assert_true(cp.n <= 40);
    for (size_t i = 0; i < cp.n; i++) {
        parse(&cp.f[i], &k[i]);
        assert_int_equal(k[i].proto, 6);
        conn_track(tr, &k[i]);
    }
    assert_int_equal(tr->n, 3);
    /* handshake: SYN (with options), SYN-ACK, ACK */
    assert_int_equal(k[0].flags, 0x02);
    assert_int_equal(cp.f[0].data[14 + 20 + 12] >> 4, 8); /* 32-byte header */
    assert_int_equal(k[1].flags, 0x12);
    assert_int_equal(k[1].ack, k[0].seq + 1);
    assert_int_equal(cp.f[1].ts, t + 20000);
    assert_int_equal(k[2].flags, 0x10);
    assert_int_equal(k[2].ack, k[1].seq + 1);
    /* 5000 bytes: 1460 x 3 + 620, ACKs after the 2nd and the last */
    size_t sizes[] = {1460, 1460, 1460, 620};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(k[3 + i].plen, sizes[i]);
        assert_int_equal(k[3 + i].flags, i == 3 ? 0x18 : 0x10);
    }
    assert_int_equal(cp.f[3].ts, t + 20100 + 1000);
    assert_int_equal(k[7].ack, k[3].seq + 2920);
    assert_int_equal(k[8].ack, k[3].seq + 5000);
    assert_int_equal(cp.f[7].ts, cp.f[6].ts + 20000);
    struct conn *a = conn_find(tr, "10.0.0.1", 40000, "192.0.2.9", 443);
    assert_int_equal(a->bytes[0], 5001);
    assert_memory_equal(a->stream[0], data, sizeof(data));
    assert_int_equal(a->bytes[1], 2);
    /* the last packet of the first connection: server RST */
    assert_int_equal(k[9].sport, 443);
    assert_int_equal(k[11].plen, 1);
    assert_int_equal(k[12].flags, 0x14);
    assert_int_equal(k[12].sport, 443);
    struct conn *s = conn_find(tr, "2001:db8::2", 22, "2001:db8::1", 50000);
    assert_int_equal(s->first_flags, 0x18);
    assert_int_equal(s->lastack[0], s->next[1]);
    assert_int_equal(s->lastack[1], s->next[0]);
    conns_free(tr);
    free(tr);
    cap_free(&cp);
}

static void test_sort(void **state)
{
    const char *path = tmp_path("sort.pcap");
    struct egr_err err = {{0}};
    struct pg_writer *w = pg_open(path, &err);
    assert_non_null(w);
    pg_set_sort(w, 1);
    const uint64_t t = PG_DEMO_START_US;
    pg_udp(w, "10.0.0.1", 1, "10.0.0.2", 2, "c", 1, t + 30);
    pg_udp(w, "10.0.0.1", 1, "10.0.0.2", 2, "a", 1, t + 10);
    pg_udp(w, "10.0.0.1", 1, "10.0.0.2", 2, "b1", 2, t + 20);
    pg_udp(w, "10.0.0.1", 1, "10.0.0.2", 2, "b2", 2, t + 20);
    assert_int_equal(pg_frames(w), 4);
    assert_int_equal(pg_close(w, &err), EGR_OK);
    struct cap c;
    struct pkt k;
    cap_read(path, &c);
    assert_int_equal(c.n, 4);
    static const char *const order[] = {"a", "b1", "b2", "c"};
    for (size_t i = 0; i < 4; i++) {
        parse(&c.f[i], &k);
        assert_int_equal(k.plen, strlen(order[i]));
        assert_memory_equal(k.payload, order[i], k.plen);
    }
    cap_free(&c);
}

static void test_errors(void **state)
{
    struct egr_err err = {{0}};
    assert_null(pg_open("/nonexistent-dir/x.pcap", &err));
    assert_non_null(strstr(err.msg, "/nonexistent-dir/x.pcap"));
    assert_null(pg_open("", &err));

    /* sticky: the first error is kept, later calls do nothing */
    const char *path = tmp_path("err.pcap");
    struct pg_writer *w = pg_open(path, &err);
    assert_non_null(w);
    const uint64_t t = PG_DEMO_START_US;
    assert_int_equal(pg_udp(w, "10.0.0.1", 1, "10.0.0.2", 2, "x", 1, t), EGR_OK);
    assert_int_equal(pg_udp(w, "10.0.0.300", 1, "10.0.0.2", 2, "x", 1, t), EGR_EINVAL);
    assert_int_equal(pg_udp(w, "10.0.0.1", 1, "10.0.0.2", 2, "x", 1, t), EGR_EINVAL);
    assert_null(pg_tcp_open(w, "10.0.0.1", 1, "10.0.0.2", 2, t));
    assert_int_equal(pg_tcp_send(NULL, PG_C2S, "x", 1, t), EGR_EINVAL);
    assert_int_equal(pg_tcp_close(NULL, PG_CLOSE_FIN, t), EGR_EINVAL);
    assert_int_equal(pg_frames(w), 1);
    memset(&err, 0, sizeof(err));
    assert_int_equal(pg_close(w, &err), EGR_EINVAL);
    assert_non_null(strstr(err.msg, "10.0.0.300"));

    /* each kind of misuse fails the call and then pg_close, with a message */
    static uint8_t big[65508];
    for (int i = 0; i < 8; i++) {
        w = pg_open(path, &err);
        assert_non_null(w);
        struct pg_tcp *c;
        int rc = EGR_OK;
        switch (i) {
        case 0:
            rc = pg_udp(w, "10.0.0.1", 1, "2001:db8::1", 2, "x", 1, t);
            break;
        case 1:
            rc = pg_udp(w, "10.0.0.1", 1, "10.0.0.2", 2, big, sizeof(big), t);
            break;
        case 2:
            assert_null(pg_tcp_new(w, "10.0.0.1", 1, "2001:db8::1", 2));
            rc = pg_abort(w, "unused");
            break;
        case 3:
            c = pg_tcp_new(w, "10.0.0.1", 1, "10.0.0.2", 2);
            rc = pg_tcp_send(c, PG_C2S, "x", 1, PG_T_NEXT); /* no time yet */
            break;
        case 4:
            c = pg_tcp_new(w, "10.0.0.1", 1, "10.0.0.2", 2);
            rc = pg_tcp_segment(c, PG_C2S, PG_TCP_ACK, big, 1461, t);
            break;
        case 5:
            rc = pg_abort(w, "builder refused");
            break;
        case 6: {
            const uint16_t v[5] = {1, 2, 3, 4, 5};
            rc = pg_set_vlans(w, v, 5);
            break;
        }
        case 7:
            c = pg_tcp_open(w, "10.0.0.1", 1, "10.0.0.2", 2, t);
            rc = pg_tcp_close(c, 99, t);
            break;
        }
        assert_int_equal(rc, EGR_EINVAL);
        memset(&err, 0, sizeof(err));
        assert_int_equal(pg_close(w, &err), EGR_EINVAL);
        assert_true(err.msg[0] != 0);
    }
    assert_non_null(strstr(err.msg, "99"));

    /* a write error surfaces at pg_close */
    if (access("/dev/full", W_OK) == 0) {
        w = pg_open("/dev/full", &err);
        assert_non_null(w);
        for (int i = 0; i < 100; i++)
            pg_udp(w, "10.0.0.1", 1, "10.0.0.2", 2, big, 60000, t);
        assert_int_equal(pg_close(w, &err), EGR_EIO);
        assert_non_null(strstr(err.msg, "/dev/full"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo_structure),
        cmocka_unit_test(test_demo_deterministic),
        cmocka_unit_test(test_demo_tshark),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_builders_bounded),
        cmocka_unit_test(test_dns_bytes),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_http_ntp_ssh),
        cmocka_unit_test(test_packets_and_options),
        cmocka_unit_test(test_tcp),
        cmocka_unit_test(test_sort),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}

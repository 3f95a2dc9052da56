/* record.h - the flow record: what a flow looks like to sinks.
 *
 * Built by value from a flow when it ends (or at an active-timeout interim),
 * so sinks never see struct flow and a record can cross a thread boundary
 * through a ring. All strings are NUL-terminated, bounded, and hold raw
 * bytes from the wire: every sink must escape them for its own format.
 */
#ifndef EGRESSD_RECORD_H
#define EGRESSD_RECORD_H

#include <stdint.h>

#include "egressd/cid.h"
#include "egressd/verdict.h"

/* Why a record was emitted. */
enum flow_end_reason {
    END_TIMEOUT = 0, /* idle timeout */
    END_CLOSED,      /* TCP FIN both ways or RST, after the close linger */
    END_ACTIVE,      /* interim record of a long flow (flow continues) */
    END_EVICTED,     /* flow table at its cap: least recently seen evicted */
    END_SHUTDOWN,    /* end of input / sensor shutdown */
    END_REASON_MAX
};

/* Flow state at the time of the record (EVE's flow.state). */
enum flow_state { FST_NEW = 0, FST_ESTABLISHED, FST_CLOSED };

/* How the initiator (src) was decided. */
enum flow_init_how {
    INIT_SYN = 0,   /* saw a SYN without ACK */
    INIT_SYNACK,    /* saw only the SYN-ACK: its receiver is the initiator */
    INIT_FIRST,     /* first packet seen */
    INIT_PORT,      /* first packet reversed by the well-known-port heuristic */
};

const char *flow_end_reason_name(unsigned r);
const char *flow_state_name(unsigned s);
const char *flow_init_how_name(unsigned h);

#define REC_NAME_MAX 256
#define REC_DNS_ANSWERS 8   /* answer records kept per flow (the first response) */
#define REC_DNS_POOL 768    /* bytes for their names (owners, CNAME targets, question) */
#define REC_JA3_STR_MAX 512 /* TLS_JA3_STR_MAX */

/* One answer record of the flow's first DNS response. Names live in
 * rec_ndpi.dns_pool (raw bytes, lower-cased by the parser, not
 * NUL-terminated: a label may hold 0x00). */
struct rec_dns_rr {
    uint16_t type;       /* 1 A, 28 AAAA, 5 CNAME */
    uint16_t owner_off;  /* the record's name */
    uint8_t owner_len;
    uint8_t data_len;    /* A: 4, AAAA: 16 address bytes at data_off; CNAME: the target name */
    uint16_t data_off;
    uint32_t ttl;        /* seconds */
};

struct rec_ndpi {
    char proto[64];       /* ndpi_protocol2name(): "TLS.Google", "DNS", "Unknown" */
    char master[32];      /* master protocol name ("TLS"), "" if none */
    char app[32];         /* app protocol name ("Google"), "" if none */
    char category[32];
    char confidence[48];
    uint64_t risk;        /* bitmap of ndpi_risk_enum values */
    uint16_t master_id, app_id;

    char tls_sni[REC_NAME_MAX];
    uint16_t tls_version; /* wire version of the session (0x0303 TLS 1.2); 0 if unknown */
    char tls_alpn[128];
    char tls_ja3c[33];
    char tls_ja3c_str[REC_JA3_STR_MAX]; /* the JA3 string hashing to tls_ja3c; "" if not seen */
    char tls_ja3s[33];
    char tls_issuer[REC_NAME_MAX];
    char tls_subject[REC_NAME_MAX];
    char tls_sha1[41];    /* server certificate SHA-1, hex; "" if none */
    uint32_t tls_not_before, tls_not_after; /* its validity, Unix seconds; 0 if unknown */

    char http_host[REC_NAME_MAX];
    char http_ua[REC_NAME_MAX];
    char http_url[REC_NAME_MAX];
    char http_method[16]; /* "GET", ...; "" if no request was parsed */
    char http_content_type[64]; /* of the response */
    uint8_t http_version; /* request line: 10 = HTTP/1.0, 11 = HTTP/1.1; 0 unknown */
    uint16_t http_status;

    /* DNS: the query as nDPI saw it, then the flow's first response as the
     * sensor's own parser read it (dns.h). */
    char dns_query[REC_NAME_MAX];
    uint16_t dns_qtype;
    uint8_t dns_rcode;
    uint8_t dns_is_response;
    uint8_t dns_has_id;   /* dns_id holds the transaction id */
    uint16_t dns_id;
    uint8_t dns_parsed;   /* a response was parsed: the fields below are valid */
    uint16_t dns_resp_id; /* its transaction id */
    uint64_t dns_resp_us; /* its packet time */
    uint16_t dns_flags;   /* its header flags word (QR, opcode, AA, TC, RD, RA, AD, CD, RCODE) */
    uint16_t dns_qname_off; /* its question name in dns_pool */
    uint8_t dns_qname_len;
    uint8_t dns_rr_count; /* entries in dns_rr */
    uint8_t dns_rr_cut;   /* the response had answers that did not fit */
    struct rec_dns_rr dns_rr[REC_DNS_ANSWERS];
    char dns_pool[REC_DNS_POOL];

    char hostname[REC_NAME_MAX]; /* nDPI's host_server_name for other protocols */

    char ssh_client[128];
    char ssh_server[128];
    char ssh_hassh_client[33];
    char ssh_hassh_server[33];
};

/* Where a record's dest_name came from. */
enum rec_name_src { NAME_NONE = 0, NAME_SNI, NAME_HTTP, NAME_DNS };

/* Which side of the flow is local (inside home_net). */
enum rec_direction {
    DIR_UNKNOWN = 0, /* no home_net configured */
    DIR_EGRESS,      /* initiator inside, responder outside */
    DIR_INBOUND,     /* initiator outside, responder inside */
    DIR_INTERNAL,    /* both inside */
    DIR_EXTERNAL,    /* both outside (transit) */
};

const char *rec_name_src_name(unsigned s);
const char *rec_direction_name(unsigned d);

/* Enrichment of a record: filled after classification, before sinks. */
struct rec_enrich {
    uint8_t direction;            /* enum rec_direction */
    uint8_t dest_name_src;        /* enum rec_name_src */
    char dest_name[REC_NAME_MAX]; /* responder's name: SNI, HTTP host or passive DNS */
    /* GeoIP/ASN of the remote end (the responder for egress, the initiator
     * for inbound); flags say which values are known. */
    uint8_t has_country, has_asn, has_org;
    char country[3];
    uint32_t asn;
    char as_org[128];
    /* The local end's asset (the initiator for egress). */
    char asset[64];
    char role[64];
};

struct flow_record {
    uint64_t flow_id;     /* stable for all records of one flow (51 bits) */
    uint64_t first_us;    /* first packet */
    uint64_t last_us;     /* last packet */
    uint64_t emit_us;     /* packet time when the record was emitted */

    uint8_t family;       /* 4 or 6 */
    uint8_t proto;        /* IP protocol number */
    uint8_t src_ip[16];   /* initiator ("client", EVE src) */
    uint8_t dst_ip[16];   /* responder */
    uint16_t src_port, dst_port; /* ICMP: type / code of the first packet */
    uint16_t vlan[2];
    uint8_t vlan_count;
    uint8_t tunnel;       /* enum pkt_tunnel */

    uint64_t pkts_toserver, pkts_toclient;
    uint64_t bytes_toserver, bytes_toclient;
    uint8_t tcp_flags_ts, tcp_flags_tc;

    uint8_t state;        /* enum flow_state */
    uint8_t reason;       /* enum flow_end_reason */
    uint8_t init_how;     /* enum flow_init_how */
    uint8_t ndpi_done;    /* 1 if detection finished (detected or gave up) */
    uint8_t alerted;      /* set by the policy stage when this flow raised an alert */
    uint32_t seq;         /* 0 for the first record of a flow, +1 per interim */
    /* The verdict so far (verdict.h): when the flow's first alert was
     * raised, and the keys of the alerts it raised (the first
     * VERDICT_KEYS_MAX), so a record joins its alerts. */
    uint8_t verdict_by;   /* enum verdict_stage; VBY_NONE: no alert */
    uint8_t nalert_keys;
    uint64_t verdict_us;
    uint8_t alert_keys[VERDICT_KEYS_MAX][20];

    char community_id[CID_STR_MAX];
    struct rec_ndpi ndpi;
    struct rec_enrich enrich;
};

#endif

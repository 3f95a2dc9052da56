/* tls-hello.h - the JA3 string of a TLS ClientHello (RFC 8446 4.1.2,
 * RFC 5246 7.4.1.2; JA3: github.com/salesforce/ja3).
 *
 * nDPI computes the JA3 hash of a ClientHello and throws its input away;
 * Suricata logs both (tls.ja3.hash, tls.ja3.string). The string is rebuilt
 * here from the same segment nDPI dissects:
 *
 *     SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats
 *
 * decimal values joined by '-' within a field, GREASE values (RFC 8701:
 * 0x0a0a, 0x1a1a, ... 0xfafa) left out of every list.
 *
 * The bytes are attacker-controlled: they are read only through the
 * bounded reader (bytes.h), every length is checked against the bytes
 * that remain, and a ClientHello cut by the end of the segment (one that
 * spans two TCP segments, or a short capture) gives no string rather than
 * a wrong one. Nothing is allocated; no state is kept.
 */
#ifndef EGRESSD_TLS_HELLO_H
#define EGRESSD_TLS_HELLO_H

#include <stddef.h>
#include <stdint.h>

#include "egressd/common.h"

/* Room for any JA3 string this module returns, NUL included. A longer one
 * (a ClientHello with hundreds of ciphers) is refused, never cut. */
#define TLS_JA3_STR_MAX 512

/* 1 if `p` starts like a TLS record carrying a ClientHello (content type
 * 22, handshake type 1): the cheap test a caller makes before parsing. */
int tls_hello_looks_like(const uint8_t *p, uint32_t len);

/* Parses the TLS record at p (a TCP payload) and writes the JA3 string of
 * its ClientHello into out (cap bytes, NUL-terminated), its length into
 * *n. Returns EGR_OK, or EGR_EINVAL when the bytes are not a complete
 * ClientHello inside this segment or the string does not fit in cap. */
int tls_hello_ja3(const uint8_t *p, uint32_t len, char *out, size_t cap, size_t *n);

/* MD5 of s as 32 lower-case hex digits and a NUL (the JA3 hash). */
void tls_ja3_md5_hex(const char *s, size_t n, char out[33]);

#endif

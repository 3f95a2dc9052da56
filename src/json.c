/* json.c - the streaming JSON writer (see include/egressd/json.h).
 *
 * Output is compact (no spaces, no newlines), the form every EVE consumer
 * reads. Comma placement is tracked per nesting level in jb->need_comma, so
 * callers only open, write and close. At the top level (depth 0) nothing
 * is ever separated: a buffer may hold several documents one after another
 * (a sink appends "\n" between them with json_raw).
 *
 * String escaping (json_escape_into), for attacker-controlled bytes:
 *   - '"' and '\\' as \" and \\; \b \f \n \r \t by name; every other byte
 *     below 0x20, and DEL (0x7f), as \u00XX (lower-case hex);
 *   - '<', '>', '&' as \u003c \u003e \u0026 and U+2028, U+2029 as
 *     \u2028 \u2029, so the text can sit inside HTML or a JS string;
 *   - well-formed UTF-8 (RFC 3629: shortest form, no surrogates, at most
 *     U+10FFFF) is copied as it is;
 *   - every byte that is not part of a well-formed sequence (a stray
 *     continuation byte, a lead byte of an overlong, surrogate, too-large or
 *     truncated sequence, 0xc0, 0xc1, 0xf5..0xff) becomes \u00XX of its own
 *     value. That maps raw byte 0xNN to code point U+00NN, as Latin-1 would:
 *     the result is always valid JSON, and the original octets can be
 *     recovered by anyone who knows the field may hold raw bytes.
 *   - a NUL inside a length-given string is \u0000 (never a terminator).
 * After a refused lead byte, decoding restarts at the next byte, so a valid
 * character right after garbage is kept intact.
 */
#include "egressd/json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define JB_MIN_CAP 256
#define JB_MAX_DEPTH 64 /* bits in need_comma (json_key_plain_fits relies on 64) */

void jbuf_init(struct jbuf *jb)
{
    memset(jb, 0, sizeof(*jb));
}

void jbuf_reset(struct jbuf *jb)
{
    /* A new document: a failed allocation of the previous one must not
     * poison every later one. */
    jb->len = 0;
    jb->oom = 0;
    jb->need_comma = 0;
    jb->depth = 0;
    if (jb->buf)
        jb->buf[0] = '\0';
}

void jbuf_rewind(struct jbuf *jb, size_t len)
{
    if (len > jb->len)
        len = jb->len;
    jb->len = len;
    jb->oom = 0;
    jb->need_comma = 0;
    jb->depth = 0;
    if (jb->buf)
        jb->buf[len] = '\0';
}

void jbuf_free(struct jbuf *jb)
{
    free(jb->buf);
    jbuf_init(jb);
}

int jbuf_ok(const struct jbuf *jb)
{
    return !jb->oom;
}

/* Bytes json_escape_into() cannot copy as they are: controls, DEL, '"',
 * '\\', '<', '>', '&', and every byte >= 0x80 (UTF-8 is checked). Looked
 * up once per byte instead of eight comparisons. */
static const unsigned char special[256] = {
    [0x00 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1, ['<'] = 1, ['>'] = 1, ['&'] = 1,
    [0x7f ... 0xff] = 1,
};

/* How many bytes at the start of s need no escaping. Sixteen at a time
 * with SSE2 (part of every x86-64): a record's strings are mostly plain,
 * and this scan was the writer's largest share. Same set as `special`. */
static size_t plain_len(const char *s, size_t n)
{
    size_t i = 0;
#ifdef __SSE2__
    const __m128i ctl = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f);
    const __m128i quo = _mm_set1_epi8('"'), bsl = _mm_set1_epi8('\\');
    const __m128i lt = _mm_set1_epi8('<'), gt = _mm_set1_epi8('>'), amp = _mm_set1_epi8('&');
    while (i + 16 <= n || (n > 16 && i < n)) {
        /* A short last piece is checked as the string's last 16 bytes,
         * overlapping the piece before: no byte-by-byte tail. */
        if (i + 16 > n)
            i = n - 16;
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        /* Signed compare: bytes >= 0x80 are negative, so "< 0x20" takes
         * the controls and every non-ASCII byte at once. */
        __m128i bad = _mm_or_si128(_mm_cmplt_epi8(x, ctl), _mm_cmpeq_epi8(x, del));
        bad = _mm_or_si128(bad, _mm_or_si128(_mm_cmpeq_epi8(x, quo), _mm_cmpeq_epi8(x, bsl)));
        bad = _mm_or_si128(bad, _mm_or_si128(_mm_cmpeq_epi8(x, lt), _mm_cmpeq_epi8(x, gt)));
        bad = _mm_or_si128(bad, _mm_cmpeq_epi8(x, amp));
        unsigned m = (unsigned)_mm_movemask_epi8(bad);
        if (m)
            return i + (size_t)__builtin_ctz(m);
        i += 16;
    }
#endif
    while (i < n && !special[(unsigned char)s[i]])
        i++;
    return i;
}

/* Makes room for n more bytes plus the terminating NUL. Returns 0 (and
 * sets oom) on failure; every writer is a no-op once oom is set. */
static int grow(struct jbuf *jb, size_t n);

static inline int reserve(struct jbuf *jb, size_t n)
{
    /* The common case, inlined into every writer: room already there. */
    if (!jb->oom && n < jb->cap - jb->len)
        return 1;
    return grow(jb, n);
}

static int grow(struct jbuf *jb, size_t n)
{
    if (jb->oom)
        return 0;
    if (n > SIZE_MAX / 2 - jb->len) {
        jb->oom = 1;
        return 0;
    }
    size_t need = jb->len + n + 1;
    if (need <= jb->cap)
        return 1;
    size_t cap = jb->cap ? jb->cap : JB_MIN_CAP;
    while (cap < need)
        cap *= 2;
    char *p = realloc(jb->buf, cap);
    if (!p) {
        jb->oom = 1;
        return 0;
    }
    jb->buf = p;
    jb->cap = cap;
    return 1;
}

static inline void put(struct jbuf *jb, const char *s, size_t n)
{
    if (!reserve(jb, n))
        return;
    memcpy(jb->buf + jb->len, s, n);
    jb->len += n;
    jb->buf[jb->len] = '\0';
}

static inline void putc1(struct jbuf *jb, char c)
{
    if (!reserve(jb, 1))
        return;
    jb->buf[jb->len++] = c;
    jb->buf[jb->len] = '\0';
}

static uint64_t level_bit(const struct jbuf *jb)
{
    return (uint64_t)1 << (jb->depth & (JB_MAX_DEPTH - 1));
}

/* Called before every value and key: writes the comma that separates it
 * from the previous item of the same container. */
static inline void sep(struct jbuf *jb)
{
    if (jb->depth == 0)
        return;
    if (jb->need_comma & level_bit(jb))
        putc1(jb, ',');
    jb->need_comma |= level_bit(jb);
}

static void open_container(struct jbuf *jb, char c)
{
    sep(jb);
    if (jb->depth + 1 >= JB_MAX_DEPTH) {
        /* Nesting this deep is a caller bug; refusing keeps the comma
         * bits meaningful. The document is reported as failed. */
        jb->oom = 1;
        return;
    }
    putc1(jb, c);
    jb->depth++;
    jb->need_comma &= ~level_bit(jb);
}

static void close_container(struct jbuf *jb, char c)
{
    if (jb->depth == 0) {
        jb->oom = 1; /* unbalanced close: caller bug */
        return;
    }
    putc1(jb, c);
    jb->need_comma &= ~level_bit(jb);
    jb->depth--;
}

void json_obj_open(struct jbuf *jb)
{
    open_container(jb, '{');
}

void json_obj_close(struct jbuf *jb)
{
    close_container(jb, '}');
}

void json_arr_open(struct jbuf *jb)
{
    open_container(jb, '[');
}

void json_arr_close(struct jbuf *jb)
{
    close_container(jb, ']');
}

void json_key(struct jbuf *jb, const char *k)
{
    json_key_n(jb, k, strlen(k));
}

/* "k": for a key known to need no escaping, comma included. */
static void key_plain(struct jbuf *jb, const char *k, size_t n)
{
    /* json_key_plain_fits() needs room for the comma, the quotes, the
     * colon and the NUL. */
    if (!json_key_plain_fits(jb, k, n) && reserve(jb, n + 4))
        json_key_plain_fits(jb, k, n);
}

/* The value that follows belongs to this member: no comma before it. */
static inline void key_done(struct jbuf *jb)
{
    if (jb->depth)
        jb->need_comma &= ~level_bit(jb);
}

void json_key_n(struct jbuf *jb, const char *k, size_t n)
{
    if (plain_len(k, n) == n) {
        key_plain(jb, k, n);
        return;
    }
    sep(jb);
    putc1(jb, '"');
    json_escape_into(jb, k, n);
    put(jb, "\":", 2);
    key_done(jb);
}

void json_key_lit(struct jbuf *jb, const char *k, size_t n)
{
#ifndef NDEBUG
    /* The promise checked where it costs nothing that matters (the test
     * builds): a literal that needs escaping fails its document. */
    for (size_t i = 0; i < n; i++)
        if (special[(unsigned char)k[i]]) {
            jb->oom = 1;
            return;
        }
#endif
    key_plain(jb, k, n);
}

static const char hexdig[] = "0123456789abcdef";

static void put_u00(struct jbuf *jb, unsigned char b)
{
    char e[6] = {'\\', 'u', '0', '0', hexdig[b >> 4], hexdig[b & 15]};
    put(jb, e, sizeof(e));
}

/* Length of the well-formed UTF-8 sequence starting at s[0] (2..4), or 0
 * if s[0] does not start one within the n bytes available. Follows the
 * table of RFC 3629 section 4, which rules out overlongs and surrogates. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the 2nd byte */
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong below U+0800 */
        else if (c == 0xed)
            hi = 0x9f; /* U+D800..U+DFFF surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong below U+10000 */
        else if (c == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

void json_escape_into(struct jbuf *jb, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n && !jb->oom) {
        /* Copy the longest run that needs no escaping in one go. */
        size_t run = i + plain_len(str + i, n - i);
        if (run > i) {
            put(jb, str + i, run - i);
            i = run;
            continue;
        }
        unsigned char c = s[i];
        if (c < 0x80) {
            switch (c) {
            case '"': put(jb, "\\\"", 2); break;
            case '\\': put(jb, "\\\\", 2); break;
            case '\b': put(jb, "\\b", 2); break;
            case '\f': put(jb, "\\f", 2); break;
            case '\n': put(jb, "\\n", 2); break;
            case '\r': put(jb, "\\r", 2); break;
            case '\t': put(jb, "\\t", 2); break;
            default: put_u00(jb, c); break; /* other controls, DEL, < > & */
            }
            i++;
            continue;
        }
        size_t len = utf8_seq_len(s + i, n - i);
        if (len == 0) {
            put_u00(jb, c);
            i++;
        } else if (len == 3 && c == 0xe2 && s[i + 1] == 0x80 && (s[i + 2] == 0xa8 || s[i + 2] == 0xa9)) {
            put(jb, s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
            i += 3;
        } else {
            put(jb, str + i, len);
            i += len;
        }
    }
}

void json_strn(struct jbuf *jb, const char *v, size_t n)
{
    /* Most values need no escaping: comma, quotes and text in one go. */
    if (plain_len(v, n) == n && reserve(jb, n + 3)) {
        char *o = jb->buf + jb->len;
        if (jb->depth) {
            if (jb->need_comma & level_bit(jb))
                *o++ = ',';
            jb->need_comma |= level_bit(jb);
        }
        *o++ = '"';
        memcpy(o, v, n);
        o += n;
        *o++ = '"';
        *o = '\0';
        jb->len = (size_t)(o - jb->buf);
        return;
    }
    sep(jb);
    putc1(jb, '"');
    json_escape_into(jb, v, n);
    putc1(jb, '"');
}

void json_str(struct jbuf *jb, const char *v)
{
    if (!v) {
        sep(jb);
        put(jb, "null", 4);
        return;
    }
    json_strn(jb, v, strlen(v));
}

/* Decimal digits of v ending at end; returns the first. Every record has
 * a dozen numbers, and snprintf was a visible share of a replay. */
static char *u64_digits(uint64_t v, char *end)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

void json_u64(struct jbuf *jb, uint64_t v)
{
    char tmp[24];
    char *p = u64_digits(v, tmp + sizeof(tmp));
    sep(jb);
    put(jb, p, (size_t)(tmp + sizeof(tmp) - p));
}

void json_i64(struct jbuf *jb, int64_t v)
{
    char tmp[24];
    /* The magnitude as unsigned: -INT64_MIN does not fit an int64_t. */
    uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    char *p = u64_digits(m, tmp + sizeof(tmp));
    if (v < 0)
        *--p = '-';
    sep(jb);
    put(jb, p, (size_t)(tmp + sizeof(tmp) - p));
}

void json_bool(struct jbuf *jb, int v)
{
    sep(jb);
    if (v)
        put(jb, "true", 4);
    else
        put(jb, "false", 5);
}

void json_dbl(struct jbuf *jb, double v)
{
    sep(jb);
    if (!isfinite(v)) {
        put(jb, "null", 4); /* JSON has no NaN or Infinity */
        return;
    }
    /* %.6f of the largest double is 316 bytes; a local buffer of 400 fits
     * any finite value. */
    char tmp[400];
    int n = snprintf(tmp, sizeof(tmp), "%.6f", v);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        put(jb, "null", 4);
        return;
    }
    /* "-0.000000" is valid JSON, and so is every %f output: digits, one
     * dot, optional minus, no exponent. */
    put(jb, tmp, (size_t)n);
}

void json_raw(struct jbuf *jb, const char *s, size_t n)
{
    /* Inside a container the text is one value and gets its comma; at the
     * top level it is plain text between documents. */
    sep(jb);
    put(jb, s, n);
}

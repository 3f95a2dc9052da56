/* json.h - a small streaming JSON writer into a growable buffer.
 *
 * Every string goes through json_str(), which escapes per RFC 8259 and turns
 * bytes that are not valid UTF-8 into \u00XX escapes of each byte (so
 * attacker bytes from the wire always produce valid JSON that keeps the
 * original octets visible). Also escapes '<', '>', '&' and U+2028/U+2029 as
 * \u escapes so the text is safe to embed in HTML/JS.
 *
 * Ownership: the jbuf owns its memory; jbuf_free() releases it.
 * Errors: allocation failure sets jb->oom and later calls are no-ops; check
 * jbuf_ok() once at the end.
 */
#ifndef EGRESSD_JSON_H
#define EGRESSD_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct jbuf {
    char *buf;
    size_t len, cap;
    int oom;
    /* comma state: one bit per nesting level (1 = next item needs a comma) */
    uint64_t need_comma;
    unsigned depth;
};

void jbuf_init(struct jbuf *jb);
void jbuf_reset(struct jbuf *jb);  /* len = 0, keeps memory */
/* Back to len bytes (len <= jb->len) at the top level, a failed allocation
 * forgotten: undoes a document appended after them. */
void jbuf_rewind(struct jbuf *jb, size_t len);
void jbuf_free(struct jbuf *jb);
int jbuf_ok(const struct jbuf *jb); /* 1 if no allocation failed */

void json_obj_open(struct jbuf *jb);          /* { */
void json_obj_close(struct jbuf *jb);         /* } */
void json_arr_open(struct jbuf *jb);          /* [ */
void json_arr_close(struct jbuf *jb);         /* ] */
void json_key(struct jbuf *jb, const char *k); /* "k": (k is trusted ASCII) */
/* json_key with the length given: the inline wrappers below pass
 * strlen(literal), which the compiler folds, so no key is measured at run
 * time. */
void json_key_n(struct jbuf *jb, const char *k, size_t n);
/* json_key_n without looking for bytes to escape: only for keys known to
 * need none (json_key_auto below picks them out). */
void json_key_lit(struct jbuf *jb, const char *k, size_t n);
/* A key that is a string literal of the source (its length a compile-time
 * constant once inlined) is the project's own plain ASCII and skips the
 * escape scan; any other key (from a configuration, from a packet) is
 * checked and escaped. Builds without NDEBUG check literals too. */
/* Writes "k": (with the comma before it, if one is due) for a key that
 * needs no escaping, when jb has room for it; 0 and nothing written
 * otherwise. The one writer of plain keys: inline so that a literal key's
 * copy has a constant length; json.c makes room and calls it again. */
static inline int json_key_plain_fits(struct jbuf *jb, const char *k, size_t n)
{
    if (jb->oom || n + 4 >= jb->cap - jb->len)
        return 0;
    char *o = jb->buf + jb->len;
    if (jb->depth) {
        uint64_t bit = (uint64_t)1 << (jb->depth & 63);
        if (jb->need_comma & bit)
            *o++ = ',';
        jb->need_comma &= ~bit; /* the value that follows needs none */
    }
    o[0] = '"';
    memcpy(o + 1, k, n);
    o[n + 1] = '"';
    o[n + 2] = ':';
    o[n + 3] = '\0';
    jb->len = (size_t)(o + n + 3 - jb->buf);
    return 1;
}

static inline void json_key_auto(struct jbuf *jb, const char *k)
{
    if (__builtin_constant_p(strlen(k))) {
#ifdef NDEBUG
        /* A record has dozens of literal keys: the common case (room in
         * the buffer) is written right here. */
        if (json_key_plain_fits(jb, k, strlen(k)))
            return;
#endif
        json_key_lit(jb, k, strlen(k));
    } else {
        json_key_n(jb, k, strlen(k));
    }
}
/* object members with a key; values as named */
/* array items / bare values */
void json_str(struct jbuf *jb, const char *v);
void json_strn(struct jbuf *jb, const char *v, size_t n);
void json_u64(struct jbuf *jb, uint64_t v);
void json_i64(struct jbuf *jb, int64_t v);
void json_bool(struct jbuf *jb, int v);
void json_dbl(struct jbuf *jb, double v);
/* object members with a key; values as named */
static inline void json_kv_obj(struct jbuf *jb, const char *k) /* "k":{ */
{
    json_key_auto(jb, k);
    json_obj_open(jb);
}
static inline void json_kv_arr(struct jbuf *jb, const char *k) /* "k":[ */
{
    json_key_auto(jb, k);
    json_arr_open(jb);
}
static inline void json_kv_str(struct jbuf *jb, const char *k, const char *v)
{
    json_key_auto(jb, k);
    json_str(jb, v);
}
static inline void json_kv_strn(struct jbuf *jb, const char *k, const char *v, size_t n)
{
    json_key_auto(jb, k);
    json_strn(jb, v, n);
}
static inline void json_kv_u64(struct jbuf *jb, const char *k, uint64_t v)
{
    json_key_auto(jb, k);
    json_u64(jb, v);
}
static inline void json_kv_i64(struct jbuf *jb, const char *k, int64_t v)
{
    json_key_auto(jb, k);
    json_i64(jb, v);
}
static inline void json_kv_bool(struct jbuf *jb, const char *k, int v)
{
    json_key_auto(jb, k);
    json_bool(jb, v);
}
static inline void json_kv_dbl(struct jbuf *jb, const char *k, double v)
{
    json_key_auto(jb, k);
    json_dbl(jb, v);
}
void json_raw(struct jbuf *jb, const char *s, size_t n); /* appended as is */

/* Escapes n bytes of s as the *content* of a JSON string (no quotes) into
 * jb. Exposed for other writers (Redis, HTML) that need the same rules. */
void json_escape_into(struct jbuf *jb, const char *s, size_t n);

#endif

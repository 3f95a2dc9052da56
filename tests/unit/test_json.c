/* test_json.c - the JSON writer: comma placement through nesting, numbers
 * (u64/i64 limits, doubles, NaN/Inf as null), and string escaping of
 * hostile input: every byte value 0..255 alone and all together, HTML
 * breakers, embedded NULs, and malformed UTF-8 from Markus Kuhn's
 * UTF-8 decoder stress test (overlongs, surrogates, beyond U+10FFFF,
 * truncated sequences, stray continuation bytes), each checked as exact
 * escaped text and parsed by an independent JSON parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egressd/json.h"
#include "json_check.h"

/* Escapes n bytes and returns the content as a heap string. */
static char *esc(const char *s, size_t n)
{
    struct jbuf jb;
    jbuf_init(&jb);
    json_escape_into(&jb, s, n);
    assert_true(jbuf_ok(&jb));
    char *out = strndup(jb.buf ? jb.buf : "", jb.len);
    assert_non_null(out);
    jbuf_free(&jb);
    return out;
}

#define ESC_EQ(lit, want)                                                        \
    do {                                                                         \
        char *got_ = esc((lit), sizeof(lit) - 1);                                \
        if (strcmp(got_, (want)) != 0)                                           \
            fail_msg("escape of %s: got \"%s\", want \"%s\"", #lit, got_, (want)); \
        free(got_);                                                              \
    } while (0)

/* The escape of one byte when it stands alone, written out by hand from
 * the rules (not by the code under test). */
static void single_byte_want(unsigned b, char *out, size_t n)
{
    switch (b) {
    case '"': snprintf(out, n, "\\\""); return;
    case '\\': snprintf(out, n, "\\\\"); return;
    case '\b': snprintf(out, n, "\\b"); return;
    case '\f': snprintf(out, n, "\\f"); return;
    case '\n': snprintf(out, n, "\\n"); return;
    case '\r': snprintf(out, n, "\\r"); return;
    case '\t': snprintf(out, n, "\\t"); return;
    case '<': snprintf(out, n, "\\u003c"); return;
    case '>': snprintf(out, n, "\\u003e"); return;
    case '&': snprintf(out, n, "\\u0026"); return;
    default: break;
    }
    if (b < 0x20 || b >= 0x7f)
        snprintf(out, n, "\\u%04x", b);
    else
        snprintf(out, n, "%c", (char)b);
}

static void test_every_byte_alone(void **state)
{
    (void)state;
    for (unsigned b = 0; b < 256; b++) {
        char in[1] = {(char)b}, want[8];
        single_byte_want(b, want, sizeof(want));
        char *got = esc(in, 1);
        if (strcmp(got, want) != 0)
            fail_msg("byte 0x%02x: got \"%s\", want \"%s\"", b, got, want);
        free(got);
    }
}

/* All 256 bytes in order: no two of them form a valid sequence (0x80..0xbf
 * come before any lead byte, and each lead byte is followed by another lead
 * byte), so the result is the concatenation of the single-byte escapes, and
 * a JSON parser must give back U+0000..U+00FF in order. */
static void test_all_bytes_together(void **state)
{
    (void)state;
    char in[256];
    char want[256 * 8] = "";
    for (unsigned b = 0; b < 256; b++) {
        in[b] = (char)b;
        char one[8];
        single_byte_want(b, one, sizeof(one));
        strcat(want, one);
    }
    char *got = esc(in, sizeof(in));
    assert_string_equal(got, want);
    free(got);

    struct jbuf jb;
    jbuf_init(&jb);
    json_obj_open(&jb);
    json_kv_strn(&jb, "all", in, sizeof(in));
    json_obj_close(&jb);
    assert_true(jbuf_ok(&jb));
    assert_int_equal(jc_check_text(jb.buf, jb.len, "doc",
                                   "d[\"all\"] == \"\".join(map(chr, range(256)))"),
                     0);
    jbuf_free(&jb);
}

/* Each byte value at each position of strings of 1..48 plain bytes, as
 * the second item of an array: the writer scans plain text sixteen bytes
 * at a time with a short last piece overlapping the one before, so a
 * byte needing escape must be found wherever it sits relative to those
 * pieces, and the plain text around it kept whole. */
static void test_every_byte_everywhere(void **state)
{
    (void)state;
    struct jbuf jb;
    jbuf_init(&jb);
    char in[48], want[48 + 16 + 8], one[8];
    for (size_t len = 1; len <= sizeof(in); len++) {
        for (size_t at = 0; at < len; at++) {
            for (unsigned b = 0; b < 256; b++) {
                memset(in, 'a', len);
                in[at] = (char)b;
                single_byte_want(b, one, sizeof(one));
                snprintf(want, sizeof(want), "[1,\"%.*s%s%.*s\"]", (int)at, in, one,
                         (int)(len - at - 1), in + at + 1);
                jbuf_reset(&jb);
                json_arr_open(&jb);
                json_u64(&jb, 1);
                json_strn(&jb, in, len);
                json_arr_close(&jb);
                assert_true(jbuf_ok(&jb));
                if (jb.len != strlen(want) || memcmp(jb.buf, want, jb.len) != 0)
                    fail_msg("byte 0x%02x at %zu of %zu: got %s, want %s", b, at, len, jb.buf,
                             want);
            }
        }
    }
    jbuf_free(&jb);
}

static void test_html_breakers(void **state)
{
    (void)state;
    ESC_EQ("</script>", "\\u003c/script\\u003e");
    ESC_EQ("\"><img src=x onerror=alert(1)>",
           "\\\"\\u003e\\u003cimg src=x onerror=alert(1)\\u003e");
    ESC_EQ("a&b", "a\\u0026b");
    ESC_EQ("back\\slash/", "back\\\\slash/");
    /* U+2028 / U+2029 end a JS string literal, so they are escaped. */
    ESC_EQ("x\xe2\x80\xa8y\xe2\x80\xa9z", "x\\u2028y\\u2029z");
    /* Their neighbours are ordinary characters. */
    ESC_EQ("\xe2\x80\xa7\xe2\x80\xaa", "\xe2\x80\xa7\xe2\x80\xaa");
}

static void test_embedded_nul(void **state)
{
    (void)state;
    ESC_EQ("a\0b", "a\\u0000b");
    ESC_EQ("\0\0", "\\u0000\\u0000");
    /* json_str stops at the first NUL (C string); json_strn does not. */
    struct jbuf jb;
    jbuf_init(&jb);
    json_str(&jb, "a\0b");
    assert_string_equal(jb.buf, "\"a\"");
    jbuf_reset(&jb);
    json_strn(&jb, "a\0b", 3);
    assert_string_equal(jb.buf, "\"a\\u0000b\"");
    jbuf_free(&jb);
}

/* Valid UTF-8 from the stress test is copied byte for byte. */
static void test_kuhn_valid(void **state)
{
    (void)state;
    /* 1: "kosme" in Greek */
    ESC_EQ("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",
           "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5");
    /* 2.1 first sequence of each length (U+0080, U+0800, U+10000) */
    ESC_EQ("\xc2\x80", "\xc2\x80");
    ESC_EQ("\xe0\xa0\x80", "\xe0\xa0\x80");
    ESC_EQ("\xf0\x90\x80\x80", "\xf0\x90\x80\x80");
    /* 2.2 last sequence of each length that is still Unicode */
    ESC_EQ("\xdf\xbf", "\xdf\xbf");
    ESC_EQ("\xef\xbf\xbf", "\xef\xbf\xbf");
    ESC_EQ("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf");
    /* 2.3 other boundaries: U+D7FF, U+E000, U+FFFD */
    ESC_EQ("\xed\x9f\xbf", "\xed\x9f\xbf");
    ESC_EQ("\xee\x80\x80", "\xee\x80\x80");
    ESC_EQ("\xef\xbf\xbd", "\xef\xbf\xbd");
    /* 5.3 noncharacters are well-formed: U+FFFE, U+FDD0 */
    ESC_EQ("\xef\xbf\xbe", "\xef\xbf\xbe");
    ESC_EQ("\xef\xb7\x90", "\xef\xb7\x90");
}

/* Malformed UTF-8: each byte of a bad sequence becomes \u00XX. */
static void test_kuhn_malformed(void **state)
{
    (void)state;
    /* 2.1/2.2: 5- and 6-byte forms and beyond U+10FFFF */
    ESC_EQ("\xf8\x88\x80\x80\x80", "\\u00f8\\u0088\\u0080\\u0080\\u0080");
    ESC_EQ("\xfc\x84\x80\x80\x80\x80", "\\u00fc\\u0084\\u0080\\u0080\\u0080\\u0080");
    ESC_EQ("\xf4\x90\x80\x80", "\\u00f4\\u0090\\u0080\\u0080");
    ESC_EQ("\xf7\xbf\xbf\xbf", "\\u00f7\\u00bf\\u00bf\\u00bf");
    /* 3.1 unexpected continuation bytes */
    ESC_EQ("\x80", "\\u0080");
    ESC_EQ("\xbf", "\\u00bf");
    ESC_EQ("\x80\xbf\x80", "\\u0080\\u00bf\\u0080");
    /* 3.2 lonely start characters followed by a space */
    ESC_EQ("\xc0 \xdf \xe0 \xef \xf0 \xf7 \xf8 \xfb \xfc \xfd ",
           "\\u00c0 \\u00df \\u00e0 \\u00ef \\u00f0 \\u00f7 \\u00f8 \\u00fb \\u00fc \\u00fd ");
    /* 3.3 sequences with the last continuation byte missing */
    ESC_EQ("\xc0", "\\u00c0");
    ESC_EQ("\xe0\x80", "\\u00e0\\u0080");
    ESC_EQ("\xf0\x80\x80", "\\u00f0\\u0080\\u0080");
    ESC_EQ("\xdf", "\\u00df");
    ESC_EQ("\xef\xbf", "\\u00ef\\u00bf");
    ESC_EQ("\xf7\xbf\xbf", "\\u00f7\\u00bf\\u00bf");
    /* truncated but otherwise valid starts: U+20AC cut after 2 bytes,
     * U+10000 cut after 3 */
    ESC_EQ("\xe2\x82", "\\u00e2\\u0082");
    ESC_EQ("\xf0\x90\x80", "\\u00f0\\u0090\\u0080");
    /* 3.5 impossible bytes */
    ESC_EQ("\xfe\xff\xfe\xfe\xff\xff", "\\u00fe\\u00ff\\u00fe\\u00fe\\u00ff\\u00ff");
    /* 4.1 overlong '/' in 2, 3 and 4 bytes (must never become '/') */
    ESC_EQ("\xc0\xaf", "\\u00c0\\u00af");
    ESC_EQ("\xe0\x80\xaf", "\\u00e0\\u0080\\u00af");
    ESC_EQ("\xf0\x80\x80\xaf", "\\u00f0\\u0080\\u0080\\u00af");
    /* 4.2 maximum overlongs */
    ESC_EQ("\xc1\xbf", "\\u00c1\\u00bf");
    ESC_EQ("\xe0\x9f\xbf", "\\u00e0\\u009f\\u00bf");
    ESC_EQ("\xf0\x8f\xbf\xbf", "\\u00f0\\u008f\\u00bf\\u00bf");
    /* 4.3 overlong NUL */
    ESC_EQ("\xc0\x80", "\\u00c0\\u0080");
    ESC_EQ("\xe0\x80\x80", "\\u00e0\\u0080\\u0080");
    /* 5.1 single UTF-16 surrogates */
    ESC_EQ("\xed\xa0\x80", "\\u00ed\\u00a0\\u0080");
    ESC_EQ("\xed\xad\xbf", "\\u00ed\\u00ad\\u00bf");
    ESC_EQ("\xed\xbf\xbf", "\\u00ed\\u00bf\\u00bf");
    /* 5.2 paired surrogates (CESU-8 style) */
    ESC_EQ("\xed\xa0\x80\xed\xb0\x80", "\\u00ed\\u00a0\\u0080\\u00ed\\u00b0\\u0080");
    /* A valid character right after garbage is kept whole. */
    ESC_EQ("\xe0" "A", "\\u00e0A");
    ESC_EQ("\xe2\x82\xe2\x82\xac", "\\u00e2\\u0082\xe2\x82\xac");
    ESC_EQ("\xc3" "\xc3\xa9", "\\u00c3\xc3\xa9");
    /* ASCII controls inside a multibyte context stay escaped */
    ESC_EQ("\xc3\x0a", "\\u00c3\\n");
}

/* The same malformed samples, all in one document: it must parse, and
 * every raw byte must read back as the code point of the same value. */
static void test_kuhn_parses(void **state)
{
    (void)state;
    static const char *const samples[] = {
        "\xf8\x88\x80\x80\x80", "\xf4\x90\x80\x80", "\x80\xbf", "\xc0 \xdf ",
        "\xe0\x80", "\xef\xbf", "\xfe\xff", "\xc0\xaf", "\xe0\x80\xaf",
        "\xc0\x80", "\xed\xa0\x80", "\xed\xa0\x80\xed\xb0\x80",
    };
    struct jbuf jb;
    jbuf_init(&jb);
    json_arr_open(&jb);
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
        json_str(&jb, samples[i]);
    json_str(&jb, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5 \xe2\x80\xa8");
    json_arr_close(&jb);
    assert_true(jbuf_ok(&jb));
    const char *check =
        "d[:12] == [\"\\xf8\\x88\\x80\\x80\\x80\", \"\\xf4\\x90\\x80\\x80\", \"\\x80\\xbf\","
        " \"\\xc0 \\xdf \", \"\\xe0\\x80\", \"\\xef\\xbf\", \"\\xfe\\xff\", \"\\xc0\\xaf\","
        " \"\\xe0\\x80\\xaf\", \"\\xc0\\x80\", \"\\xed\\xa0\\x80\", \"\\xed\\xa0\\x80\\xed\\xb0\\x80\"]"
        " and d[12] == \"\\u03ba\\u1f79\\u03c3\\u03bc\\u03b5 \\u2028\"";
    assert_int_equal(jc_check_text(jb.buf, jb.len, "doc", check), 0);
    jbuf_free(&jb);
}

static void test_structure(void **state)
{
    (void)state;
    struct jbuf jb;
    jbuf_init(&jb);
    json_obj_open(&jb);
    json_kv_str(&jb, "a", "x");
    json_kv_obj(&jb, "o");
    json_obj_close(&jb);
    json_kv_arr(&jb, "arr");
    json_u64(&jb, 1);
    json_obj_open(&jb);
    json_kv_bool(&jb, "t", 1);
    json_kv_bool(&jb, "f", 0);
    json_obj_close(&jb);
    json_arr_open(&jb);
    json_arr_close(&jb);
    json_str(&jb, NULL);
    json_raw(&jb, "{\"pre\":1}", 9);
    json_arr_close(&jb);
    json_key(&jb, "raw");
    json_raw(&jb, "[2]", 3);
    json_kv_strn(&jb, "n", "abc", 2);
    json_obj_close(&jb);
    assert_true(jbuf_ok(&jb));
    const char *want = "{\"a\":\"x\",\"o\":{},\"arr\":[1,{\"t\":true,\"f\":false},[],null,"
                       "{\"pre\":1}],\"raw\":[2],\"n\":\"ab\"}";
    assert_string_equal(jb.buf, want);
    assert_int_equal(jb.len, strlen(want));
    assert_int_equal(jb.depth, 0);

    /* Top-level documents follow each other with no comma. */
    json_raw(&jb, "\n", 1);
    json_obj_open(&jb);
    json_kv_u64(&jb, "k", 7);
    json_obj_close(&jb);
    json_raw(&jb, "\n", 1);
    assert_string_equal(jb.buf + strlen(want), "\n{\"k\":7}\n");
    assert_int_equal(jc_check_text(jb.buf, jb.len, "lines", "len(d) == 2 and d[1] == {\"k\": 7}"), 0);

    /* reset keeps the memory, empties the text */
    char *mem = jb.buf;
    jbuf_reset(&jb);
    assert_int_equal(jb.len, 0);
    assert_ptr_equal(jb.buf, mem);
    json_arr_open(&jb);
    json_arr_close(&jb);
    assert_string_equal(jb.buf, "[]");
    jbuf_free(&jb);
    assert_null(jb.buf);
    assert_int_equal(jb.len, 0);
}

static void test_numbers(void **state)
{
    (void)state;
    struct jbuf jb;
    jbuf_init(&jb);
    json_obj_open(&jb);
    json_kv_u64(&jb, "u0", 0);
    json_kv_u64(&jb, "umax", UINT64_MAX);
    json_kv_i64(&jb, "imin", INT64_MIN);
    json_kv_i64(&jb, "imax", INT64_MAX);
    json_kv_i64(&jb, "neg", -42);
    json_kv_dbl(&jb, "d", 1.5);
    json_kv_dbl(&jb, "third", 1.0 / 3.0);
    json_kv_dbl(&jb, "negz", -0.0);
    json_kv_dbl(&jb, "nan", NAN);
    json_kv_dbl(&jb, "inf", INFINITY);
    json_kv_dbl(&jb, "ninf", -INFINITY);
    json_kv_dbl(&jb, "big", 1e300);
    json_obj_close(&jb);
    assert_true(jbuf_ok(&jb));
    const char *head = "{\"u0\":0,\"umax\":18446744073709551615,\"imin\":-9223372036854775808,"
                       "\"imax\":9223372036854775807,\"neg\":-42,\"d\":1.500000,"
                       "\"third\":0.333333,\"negz\":-0.000000,\"nan\":null,\"inf\":null,"
                       "\"ninf\":null,\"big\":1";
    assert_memory_equal(jb.buf, head, strlen(head));
    assert_string_equal(jb.buf + jb.len - 8, ".000000}");
    assert_int_equal(jc_check_text(jb.buf, jb.len, "doc",
                                   "d[\"umax\"] == 2**64 - 1 and d[\"imin\"] == -2**63 and "
                                   "d[\"nan\"] is None and d[\"big\"] == 1e300"),
                     0);
    jbuf_free(&jb);
}

/* Keys are escaped too (they are trusted, but a mistake must not produce
 * invalid JSON), and a long string forces several reallocations. */
static void test_growth_and_keys(void **state)
{
    (void)state;
    struct jbuf jb;
    jbuf_init(&jb);
    size_t n = 100000;
    char *big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i % 7 == 0 ? '<' : 'a' + i % 26);
    /* A key that is not a literal (as from a configuration) is escaped;
     * volatile keeps the compiler from seeing through it. */
    static char key_text[] = "k\"ey";
    const char *volatile key = key_text;
    json_obj_open(&jb);
    json_kv_strn(&jb, key, big, n);
    json_obj_close(&jb);
    assert_true(jbuf_ok(&jb));
    assert_int_equal(strlen(jb.buf), jb.len);
    assert_true(jb.cap > jb.len);
    const char *head = "{\"k\\\"ey\":\"\\u003cbcdefg\\u003cij";
    assert_memory_equal(jb.buf, head, strlen(head));
    assert_int_equal(jc_check_text(jb.buf, jb.len, "doc",
                                   "len(d[\"k\\\"ey\"]) == 100000"), 0);
    free(big);
    jbuf_free(&jb);
}

/* Rewinding drops a half-written document, forgets its failure and leaves
 * the documents before it as they were. */
static void test_rewind(void **state)
{
    (void)state;
    struct jbuf jb;
    jbuf_init(&jb);
    json_obj_open(&jb);
    json_kv_u64(&jb, "a", 1);
    json_obj_close(&jb);
    json_raw(&jb, "\n", 1);
    size_t keep = jb.len;
    json_obj_open(&jb);
    json_kv_arr(&jb, "b");
    json_u64(&jb, 2);
    json_obj_close(&jb); /* closes the array; the object stays open */
    jb.oom = 1;          /* as after a failed allocation */
    jbuf_rewind(&jb, keep);
    assert_true(jbuf_ok(&jb));
    assert_int_equal(jb.len, keep);
    assert_string_equal(jb.buf, "{\"a\":1}\n");
    json_obj_open(&jb);
    json_kv_u64(&jb, "c", 3);
    json_obj_close(&jb);
    assert_true(jbuf_ok(&jb));
    assert_string_equal(jb.buf, "{\"a\":1}\n{\"c\":3}");
    jbuf_free(&jb);
}

/* Nesting beyond what the comma bits track fails the document instead of
 * writing wrong commas; reset clears the failure. */
static void test_depth_limit(void **state)
{
    (void)state;
    struct jbuf jb;
    jbuf_init(&jb);
    for (int i = 0; i < 63; i++)
        json_arr_open(&jb);
    assert_true(jbuf_ok(&jb));
    json_arr_open(&jb);
    assert_false(jbuf_ok(&jb));
    jbuf_reset(&jb);
    assert_true(jbuf_ok(&jb));
    json_arr_close(&jb); /* unbalanced close */
    assert_false(jbuf_ok(&jb));
    jbuf_free(&jb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_byte_alone),
        cmocka_unit_test(test_all_bytes_together),
        cmocka_unit_test(test_every_byte_everywhere),
        cmocka_unit_test(test_html_breakers),
        cmocka_unit_test(test_embedded_nul),
        cmocka_unit_test(test_kuhn_valid),
        cmocka_unit_test(test_kuhn_malformed),
        cmocka_unit_test(test_kuhn_parses),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_growth_and_keys),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_rewind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

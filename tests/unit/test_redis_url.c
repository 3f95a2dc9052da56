/* test_redis_url.c - the Redis URL: every accepted form with its host,
 * port, database, user and password (percent-encoded too), the text shown
 * in messages (never the password, never a control byte), and one error
 * per malformed URL that names the problem without quoting a password. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "egressd/redis-url.h"

static struct redis_endpoint ok(const char *url)
{
    struct redis_endpoint ep;
    struct egr_err err = {""};
    if (redis_url_parse(url, &ep, &err) != EGR_OK)
        fail_msg("%s: %s", url, err.msg);
    return ep;
}

static void bad(const char *url, const char *want)
{
    struct redis_endpoint ep;
    struct egr_err err = {""};
    if (redis_url_parse(url, &ep, &err) != EGR_EINVAL)
        fail_msg("%s was accepted", url);
    if (!strstr(err.msg, want))
        fail_msg("%s: message \"%s\" lacks \"%s\"", url, err.msg, want);
    assert_non_null(strstr(err.msg, "redis.url: "));
    if (strstr(url, "hunter2") && strstr(err.msg, "hunter2"))
        fail_msg("%s: message quotes the password: %s", url, err.msg);
    assert_string_equal(ep.pass, ""); /* nothing of it left behind */
}

static void test_tcp(void **state)
{
    struct redis_endpoint ep = ok("redis://127.0.0.1");
    assert_false(ep.is_unix);
    assert_string_equal(ep.host, "127.0.0.1");
    assert_int_equal(ep.port, 6379);
    assert_int_equal(ep.db, 0);
    assert_string_equal(ep.user, "");
    assert_string_equal(ep.pass, "");
    assert_string_equal(ep.shown, "redis://127.0.0.1:6379/0");

    ep = ok("redis://cache.example:6380/");
    assert_string_equal(ep.host, "cache.example");
    assert_int_equal(ep.port, 6380);
    assert_int_equal(ep.db, 0);

    ep = ok("redis://:hunter2@10.0.0.1:7000/15");
    assert_string_equal(ep.user, "");
    assert_string_equal(ep.pass, "hunter2");
    assert_int_equal(ep.port, 7000);
    assert_int_equal(ep.db, 15);
    assert_string_equal(ep.shown, "redis://10.0.0.1:7000/15");

    /* user@ alone is a password, as redis-cli reads it */
    ep = ok("redis://hunter2@h");
    assert_string_equal(ep.user, "");
    assert_string_equal(ep.pass, "hunter2");

    ep = ok("redis://sensor:hunter2@h:1/2");
    assert_string_equal(ep.user, "sensor");
    assert_string_equal(ep.pass, "hunter2");
    assert_string_equal(ep.shown, "redis://sensor@h:1/2");
    assert_null(strstr(ep.shown, "hunter2"));

    /* Percent-encoding, and a raw '@' or ':' in the password (the last
     * '@' ends the user part, the first ':' splits it). */
    ep = ok("redis://us%65r:p%40ss%3Aw%2Frd@h");
    assert_string_equal(ep.user, "user");
    assert_string_equal(ep.pass, "p@ss:w/rd");
    ep = ok("redis://u:a@b:c@h:5");
    assert_string_equal(ep.user, "u");
    assert_string_equal(ep.pass, "a@b:c");
    assert_string_equal(ep.host, "h");
    assert_int_equal(ep.port, 5);

    /* IPv6 in brackets; shown with them. */
    ep = ok("redis://[::1]:6390/3");
    assert_string_equal(ep.host, "::1");
    assert_int_equal(ep.port, 6390);
    assert_string_equal(ep.shown, "redis://[::1]:6390/3");
    ep = ok("redis://[fd00::7]");
    assert_string_equal(ep.host, "fd00::7");
    assert_int_equal(ep.port, 6379);

    /* A control byte in a user name is not carried into messages. */
    ep = ok("redis://a%0Ab:x@h");
    assert_string_equal(ep.user, "a\nb");
    assert_string_equal(ep.shown, "redis://a?b@h:6379/0");
}

static void test_unix(void **state)
{
    struct redis_endpoint ep = ok("unix:///run/redis/redis.sock");
    assert_true(ep.is_unix);
    assert_string_equal(ep.host, "/run/redis/redis.sock");
    assert_int_equal(ep.db, 0);
    assert_string_equal(ep.shown, "unix:///run/redis/redis.sock");

    ep = ok("unix:///tmp/r.sock?db=4&user=sensor&password=p%26w");
    assert_int_equal(ep.db, 4);
    assert_string_equal(ep.user, "sensor");
    assert_string_equal(ep.pass, "p&w");
    assert_string_equal(ep.shown, "unix:///tmp/r.sock?db=4");

    ep = ok("unix:///tmp/with%20space.sock");
    assert_string_equal(ep.host, "/tmp/with space.sock");
}

static void test_errors(void **state)
{
    bad("", "is not redis://");
    bad("127.0.0.1:6379", "is not redis://");
    bad("http://u:hunter2@h", "scheme \"http\"");
    bad("rediss://h", "TLS");
    bad("redis://", "missing or bad host");
    bad("redis://:hunter2@", "missing or bad host");
    bad("redis://:hunter2@:6379", "missing or bad host");
    bad("redis://h:0", "bad port");
    bad("redis://h:65536", "bad port");
    bad("redis://h:", "bad port");
    bad("redis://h:63a", "bad port");
    bad("redis://h:-1", "bad port");
    bad("redis://h/x", "bad database number");
    bad("redis://h/99999999999", "bad database number");
    bad("redis://[::1", "bad bracketed host");
    bad("redis://[]:1", "bad bracketed host");
    bad("redis://[::1]x", "bad port");
    bad("redis://u:hunter2%zz@h", "bad user or password");
    bad("redis://u:hunter2%0@h", "bad user or password");
    bad("redis://u:hunter2%00@h", "bad user or password");
    bad("unix://", "bad socket path");
    bad("unix://relative.sock", "bad socket path");
    bad("unix:///s?db=x", "bad database number");
    bad("unix:///s?color=red", "unknown parameter \"color\"");
    bad("unix:///s?db", "want name=value");
    bad("unix:///s?password=hunter2%", "bad password");

    /* Too long for its field. */
    char url[1200];
    memset(url, 'a', sizeof(url));
    memcpy(url, "redis://", 8);
    url[sizeof(url) - 1] = '\0';
    bad(url, "missing or bad host");
    memcpy(url, "unix:///", 8);
    bad(url, "bad socket path");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp),
        cmocka_unit_test(test_unix),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

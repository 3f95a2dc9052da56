/* shared_dir.h - where the shared test data lives, for unit tests:
 * $EGRESSD_SHARED (set by ctest), else <repo>/../shared found from this
 * file's own path. */
#ifndef EGRESSD_TEST_SHARED_DIR_H
#define EGRESSD_TEST_SHARED_DIR_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Writes "<shared>/<rel>" into out; returns 0, or -1 if it does not fit. */
static inline int test_shared_path(const char *rel, char *out, size_t n)
{
    const char *shared = getenv("EGRESSD_SHARED");
    char fallback[1024];
    if (!shared || !*shared) {
        snprintf(fallback, sizeof(fallback), "%s", __FILE__);
        char *cut = strstr(fallback, "/tests/lib/");
        if (cut)
            strcpy(cut, "/../shared");
        else
            strcpy(fallback, "../shared");
        shared = fallback;
    }
    int w = snprintf(out, n, "%s/%s", shared, rel);
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

/* 1 when the whole corpus is absent (no ../shared, or EGRESSD_SHARED names
 * nothing): the tests that need it are skipped, saying so. A corpus that
 * is there but lacks a file still fails the test that wanted it. */
static inline int test_shared_absent(void)
{
    char root[1024];
    struct stat st;
    if (test_shared_path("", root, sizeof(root)) != 0)
        return 0;
    if (stat(root, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    printf("SKIP: the test corpus %s is absent (scripts/get-test-corpus.py fetches it)\n", root);
    return 1;
}

#endif

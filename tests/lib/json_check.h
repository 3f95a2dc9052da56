/* json_check.h - test helper: checks JSON text with an independent parser
 * (Python's json module), optionally running an assertion on the parsed
 * value. Used by the JSON writer, EVE and JSON sink tests so "the output
 * parses" is never judged by our own code.
 *
 * Header-only (static functions) because each test is its own program.
 */
#ifndef EGRESSD_TEST_JSON_CHECK_H
#define EGRESSD_TEST_JSON_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Writes n bytes of text to a fresh temporary file; returns its path in
 * path (>= 64 bytes). Returns 0 on success. */
static int jc_write_temp(const char *text, size_t n, char *path, size_t pathlen)
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, pathlen, "%s/egressd-json-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w <= 0) {
            close(fd);
            unlink(path);
            return -1;
        }
        off += (size_t)w;
    }
    close(fd);
    return 0;
}

/* Parses the file with Python. mode "doc": one JSON document; "lines": one
 * document per line (every line, none empty). `check` is a Python
 * expression over `d` (the document, or the list of line documents) that
 * must be true; NULL for none. Returns the exit status of the checker:
 * 0 = parsed and the check held, 2 = not JSON, 3 = check failed,
 * 127 = python3 missing, -1 = could not run. */
static int jc_python(const char *path, const char *mode, const char *check)
{
    /* Arguments go through the environment so no quoting of the test's
     * expression is needed. */
    setenv("JC_PATH", path, 1);
    setenv("JC_MODE", mode, 1);
    setenv("JC_CHECK", check ? check : "True", 1);
    int rc = system(
        "python3 -c '\n"
        "import json, os, sys\n"
        "p = os.environ[\"JC_PATH\"]\n"
        "raw = open(p, \"rb\").read()\n"
        "try:\n"
        "    text = raw.decode(\"utf-8\")\n"
        "    if os.environ[\"JC_MODE\"] == \"lines\":\n"
        "        assert text.endswith(\"\\n\"), \"no final newline\"\n"
        "        d = [json.loads(l) for l in text[:-1].split(\"\\n\")]\n"
        "    else:\n"
        "        d = json.loads(text)\n"
        "except Exception as e:\n"
        "    print(\"not JSON:\", e, file=sys.stderr)\n"
        "    sys.exit(2)\n"
        "ok = eval(os.environ[\"JC_CHECK\"], {\"d\": d, \"json\": json})\n"
        "if not ok:\n"
        "    print(\"check failed:\", os.environ[\"JC_CHECK\"], file=sys.stderr)\n"
        "    print(json.dumps(d)[:2000], file=sys.stderr)\n"
        "sys.exit(0 if ok else 3)\n"
        "'");
    if (rc == -1 || !WIFEXITED(rc))
        return -1;
    return WEXITSTATUS(rc);
}

/* Checks n bytes of JSON text (mode and check as for jc_python). */
static int jc_check_text(const char *text, size_t n, const char *mode, const char *check)
{
    char path[256];
    if (jc_write_temp(text, n, path, sizeof(path)) != 0)
        return -1;
    int rc = jc_python(path, mode, check);
    unlink(path);
    return rc;
}

#endif

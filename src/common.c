/* common.c - the project-wide error helper (see include/egressd/common.h). */
#include "egressd/common.h"

#include <stdarg.h>
#include <stdio.h>

int egr_fail(struct egr_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

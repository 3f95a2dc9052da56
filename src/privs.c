/* privs.c - dropping root after the captures are open (see privs.h).
 *
 * No libcap: a complete setuid() from root to an ordinary user already
 * empties the capability sets (unless PR_SET_KEEPCAPS, which we never set),
 * and the result is read back from /proc rather than trusted.
 */
#define _GNU_SOURCE /* setresuid, setresgid */
#include "egressd/privs.h"

#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int privs_caps(uint64_t *eff, uint64_t *prm, struct egr_err *err)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return egr_fail(err, EGR_EIO, "/proc/self/status: %s", strerror(errno));
    char line[256];
    int found = 0;
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "CapEff:", 7)) {
            *eff = strtoull(line + 7, NULL, 16);
            found |= 1;
        } else if (!strncmp(line, "CapPrm:", 7)) {
            *prm = strtoull(line + 7, NULL, 16);
            found |= 2;
        }
    }
    fclose(f);
    if (found != 3)
        return egr_fail(err, EGR_EIO, "/proc/self/status: no CapEff/CapPrm lines");
    return EGR_OK;
}

int privs_drop(const char *user, struct egr_err *err)
{
    errno = 0;
    struct passwd *pw = getpwnam(user);
    if (!pw)
        return egr_fail(err, EGR_EINVAL, "-u %s: no such user%s%s", user, errno ? ": " : "",
                        errno ? strerror(errno) : "");
    if (pw->pw_uid == 0)
        return egr_fail(err, EGR_EINVAL, "-u %s: user has uid 0, nothing would be dropped", user);
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    /* Groups first: once the uid changes we may no longer change them. */
    if (setgroups(1, &gid) != 0)
        return egr_fail(err, EGR_EIO, "-u %s: setgroups: %s", user, strerror(errno));
    if (setresgid(gid, gid, gid) != 0)
        return egr_fail(err, EGR_EIO, "-u %s: setgid: %s", user, strerror(errno));
    prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
    if (setresuid(uid, uid, uid) != 0)
        return egr_fail(err, EGR_EIO, "-u %s: setuid: %s", user, strerror(errno));
    /* A way back to root would mean the switch did not happen. */
    if (setuid(0) == 0 || geteuid() == 0 || getuid() == 0)
        return egr_fail(err, EGR_EIO, "-u %s: still able to become root", user);
    uint64_t eff = 0, prm = 0;
    int rc = privs_caps(&eff, &prm, err);
    if (rc != EGR_OK)
        return rc;
    if (eff || prm)
        return egr_fail(err, EGR_EIO,
                        "-u %s: capabilities left after the switch (CapEff %016" PRIx64
                        ", CapPrm %016" PRIx64 ")",
                        user, eff, prm);
    return EGR_OK;
}

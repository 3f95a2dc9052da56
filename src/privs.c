/* privs.c - giving up privileges after the captures are open (see privs.h).
 *
 * No libcap: a complete setuid() from root to an ordinary user already
 * empties the capability sets (unless PR_SET_KEEPCAPS, which we never set),
 * a non-root process started with file or ambient capabilities empties them
 * with one capset(2), and the result is read back from /proc rather than
 * trusted.
 */
#define _GNU_SOURCE /* setresuid, setresgid */
#include "egressd/privs.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
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

static int caps_left(const char *what, struct egr_err *err)
{
    uint64_t eff = 0, prm = 0;
    int rc = privs_caps(&eff, &prm, err);
    if (rc != EGR_OK)
        return rc;
    if (eff || prm)
        return egr_fail(err, EGR_EIO,
                        "%s: capabilities left (CapEff %016" PRIx64 ", CapPrm %016" PRIx64 ")",
                        what, eff, prm);
    return EGR_OK;
}

int privs_raise_caps(struct egr_err *err)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capget, &hdr, data) != 0)
        return egr_fail(err, EGR_EIO, "reading capabilities: %s", strerror(errno));
    int changed = 0;
    for (size_t i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) {
        changed |= data[i].effective != data[i].permitted;
        data[i].effective = data[i].permitted;
    }
    if (changed && syscall(SYS_capset, &hdr, data) != 0)
        return egr_fail(err, EGR_EIO, "raising capabilities: %s", strerror(errno));
    return EGR_OK;
}

int privs_drop_caps(struct egr_err *err)
{
    /* The ambient set first (systemd's AmbientCapabilities=): capset does
     * not touch it. Kernels before 4.3 have none and say EINVAL. */
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
        return egr_fail(err, EGR_EIO, "dropping ambient capabilities: %s", strerror(errno));
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capset, &hdr, data) != 0)
        return egr_fail(err, EGR_EIO, "dropping capabilities: %s", strerror(errno));
    /* No execve could bring them back (file capabilities, setuid). */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return egr_fail(err, EGR_EIO, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
    return caps_left("after dropping capabilities", err);
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
    /* Already that user (a container's USER, systemd's User=): only the
     * capabilities it was started with are left to give up. */
    if (geteuid() == pw->pw_uid && getuid() == pw->pw_uid)
        return privs_drop_caps(err);
    if (geteuid() != 0)
        return egr_fail(err, EGR_EINVAL, "-u %s: switching users needs root (running as uid %u)",
                        user, (unsigned)geteuid());
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
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return egr_fail(err, EGR_EIO, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
    return caps_left(user, err);
}

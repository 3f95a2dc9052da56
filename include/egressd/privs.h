/* privs.h - giving up root after the captures are open: switch to an
 * unprivileged user and check that no capability is left.
 *
 * Call before any thread is started: set*id() changes only the calling
 * thread in the kernel (glibc broadcasts it, but a process with one thread
 * has nothing to get wrong).
 */
#ifndef EGRESSD_PRIVS_H
#define EGRESSD_PRIVS_H

#include "egressd/common.h"

/* Switches to `user` (its uid, primary gid, and no supplementary groups).
 * A full setuid from root to another user clears the permitted, effective
 * and ambient capability sets; privs_drop then checks /proc/self/status and
 * fails unless CapEff and CapPrm are 0. Errors: EGR_EINVAL for an unknown
 * user or uid 0, EGR_EIO for a refused set*id() or capabilities left. */
int privs_drop(const char *user, struct egr_err *err);

/* The process's effective and permitted capability masks, from
 * /proc/self/status. Returns EGR_OK or EGR_EIO. */
int privs_caps(uint64_t *eff, uint64_t *prm, struct egr_err *err);

#endif

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
 * fails unless CapEff and CapPrm are 0. A process already running as `user`
 * only drops its capabilities (privs_drop_caps). Errors: EGR_EINVAL for an
 * unknown user, uid 0, or a non-root process asked to become another user;
 * EGR_EIO for a refused set*id() or capabilities left. Either way
 * PR_SET_NO_NEW_PRIVS is set. */
int privs_drop(const char *user, struct egr_err *err);

/* Makes the permitted capabilities effective. The container image gives the
 * binary its two as permitted-only file capabilities: with the effective
 * bit set, the kernel refuses to execute it at all where the container was
 * not given both (a plain replay in a default container), so the program
 * raises them itself, here, just before opening the captures. Nothing to do
 * (EGR_OK) without permitted capabilities. EGR_EIO if capset fails. */
int privs_raise_caps(struct egr_err *err);

/* For a non-root process started with capabilities (file capabilities, as
 * in the container image, or systemd's AmbientCapabilities=): empties the
 * effective, permitted, inheritable and ambient sets of the calling thread,
 * which is the whole process when no other thread exists yet, sets
 * PR_SET_NO_NEW_PRIVS, and checks /proc/self/status. Returns EGR_OK or
 * EGR_EIO. */
int privs_drop_caps(struct egr_err *err);

/* The process's effective and permitted capability masks, from
 * /proc/self/status. Returns EGR_OK or EGR_EIO. */
int privs_caps(uint64_t *eff, uint64_t *prm, struct egr_err *err);

#endif

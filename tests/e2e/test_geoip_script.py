"""scripts/geoip-db.sh when npm fails: its exit status is not 0, and its
one line says what npm said (here a TLS-intercepting proxy's certificate,
the case the Dockerfile's docker/ca/ is for), not only that no tarball
came; nothing is installed and no staging directory is left. npm is a
stand-in on PATH: no network is used."""
import os
import subprocess

from egrtest import SRC, Checker, temp_dir

c = Checker("test_geoip_script")
tmp = temp_dir(prefix="egressd-geoip-test-")
bindir = os.path.join(tmp, "bin")
os.makedirs(bindir)
with open(os.path.join(bindir, "npm"), "w") as f:
    f.write("#!/bin/sh\n"
            "echo 'npm ERR! code SELF_SIGNED_CERT_IN_CHAIN' >&2\n"
            "echo 'npm ERR! request to https://registry.npmjs.org/@ip-location-db%2fasn failed, "
            "reason: self-signed certificate in certificate chain' >&2\n"
            "echo 'npm ERR! A complete log of this run can be found in:' >&2\n"
            "echo 'npm ERR!     /root/.npm/_logs/x-debug-0.log' >&2\n"
            "exit 1\n")
os.chmod(os.path.join(bindir, "npm"), 0o755)
dest = os.path.join(tmp, "geoip")
env = dict(os.environ, PATH=bindir + ":" + os.environ["PATH"])
p = subprocess.run(["bash", os.path.join(SRC, "scripts", "geoip-db.sh"), dest], capture_output=True, text=True,
                   env=env, timeout=120)
err = [line for line in p.stderr.splitlines() if line.strip()]
c.check(p.returncode != 0, f"exit status {p.returncode} with npm failing")
c.check(len(err) == 1 and "npm pack @ip-location-db/" in err[0] and "failed (exit 1)" in err[0]
        and "SELF_SIGNED_CERT_IN_CHAIN" in err[0] and "self-signed certificate in certificate chain" in err[0]
        and "_logs" not in err[0], f"message: {p.stderr!r}")
left = [n for n in os.listdir(dest) if not n.startswith(".geoip-db.lock")] if os.path.isdir(dest) else []
c.check(not left, f"left in {dest}: {left}")
c.done()

"""scripts/get-test-corpus.py without the network (this machine reaches no
GitHub): its logic, with a stand-in for curl that serves tarballs laid out
as upstream's, made from ../shared itself.

- --help, --list (the pinned revisions, the same as README.md's table),
  and bad arguments (exit 2, one line);
- --check: ../shared matches every sha256 of scripts/test-corpus/SHA256SUMS
  (the manifest is true), a changed or missing file is named (exit 1);
- it refuses to overwrite a directory that is not empty, and leaves it as
  it was;
- a failing download, a tarball without a listed file and a file whose
  sha256 is not the pinned one each stop it with one line naming the cause,
  and leave neither the destination nor a staging directory behind;
- with working downloads it assembles a corpus (a subset of the manifest:
  captures of both nDPI revisions, the community-id pcaps and baseline, the
  MaxMind databases, a Suricata schema) and rebuilds the references with
  Debian's tools (ndpiReader's outputs, mmdblookup's expected-lookups.tsv,
  the Community ID vectors), byte for byte the corpus's, and --check passes
  on it."""
import os
import shutil
import subprocess
import sys

from egrtest import SHARED, SRC, Checker, need_shared, temp_dir

c = Checker("test_corpus_script")
need_shared("pcaps")
SCRIPT = os.path.join(SRC, "scripts", "get-test-corpus.py")
MANIFEST = os.path.join(SRC, "scripts", "test-corpus", "SHA256SUMS")
tmp = temp_dir(prefix="egressd-corpus-test-")


def run(*args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([sys.executable, SCRIPT] + list(args), capture_output=True, text=True, env=e, timeout=600)
    return p.returncode, p.stdout, p.stderr


rc, out, err = run("--help")
c.check(rc == 0 and "--check DIR" in out and "SHA256SUMS" in out, f"--help: rc={rc} {out[:200]!r}")
for bad in (["--dest"], ["--frob"], ["--check"], ["a", "b"]):
    rc, out, err = run(*bad)
    c.check(rc == 2 and err.count("\n") == 2 and err.startswith("usage:"), f"{bad}: rc={rc} {err!r}")
rc, out, err = run("--list")
with open(os.path.join(SRC, "README.md")) as f:
    readme = f.read()
rows = [line.split("\t") for line in out.splitlines()[1:]]
c.check(rc == 0 and len(rows) == 6 and any(r[1] == "ntop/nDPI" and r[2].startswith("8b5c6af7") for r in rows),
        f"--list: {out!r}")
for r in rows:
    c.check(f"`{r[2]}`" in readme and r[1] in readme, f"README.md does not give {r[1]} at {r[2]}")

# ---- --check -------------------------------------------------------------------------
rc, out, err = run("--check", SHARED)
c.check(rc == 0 and "as pinned" in err, f"--check {SHARED}: rc={rc} {err[-300:]!r}")
copy = os.path.join(tmp, "copy")
os.makedirs(os.path.join(copy, "testdata"))
shutil.copytree(os.path.join(SHARED, "testdata", "mmdb"), os.path.join(copy, "testdata", "mmdb"))
with open(MANIFEST) as f:
    manifest = [line for line in f if line.strip() and not line.startswith("#")]
sub = [line for line in manifest if line.split("  ", 1)[1].startswith("testdata/mmdb/")]
sub_path = os.path.join(tmp, "mmdb.sums")
with open(sub_path, "w") as f:
    f.writelines(sub)
env = {"EGRESSD_CORPUS_MANIFEST": sub_path}
rc, out, err = run("--check", copy, env=env)
c.check(rc == 0, f"--check of a copy: {err!r}")
with open(os.path.join(copy, "testdata", "mmdb", "GeoLite2-ASN-Test.mmdb"), "r+b") as f:
    f.seek(100)
    f.write(b"\xff")
os.remove(os.path.join(copy, "testdata", "mmdb", "LICENSE-MIT"))
rc, out, err = run("--check", copy, env=env)
c.check(rc == 1 and "GeoLite2-ASN-Test.mmdb: sha256" in err and "LICENSE-MIT: missing" in err
        and "2 of" in err, f"--check of a changed copy: rc={rc} {err!r}")

# ---- refusing to overwrite -----------------------------------------------------------------
before = sorted(os.listdir(os.path.join(copy, "testdata", "mmdb")))
rc, out, err = run("--dest", copy, env=env)
c.check(rc == 1 and "not overwritten" in err and err.count("\n") == 1, f"--dest over a corpus: rc={rc} {err!r}")
c.check(sorted(os.listdir(os.path.join(copy, "testdata", "mmdb"))) == before, "the existing corpus was touched")

# ---- a stand-in for curl: upstream's tarballs, made from ../shared ------------------------------------
fake = os.path.join(tmp, "curl")
with open(fake, "w") as f:
    f.write(f'''#!{sys.executable}
"""Serves codeload.github.com/OWNER/REPO/tar.gz/REV from the corpus itself:
every file of the manifest whose upstream is that revision, at its
upstream path under REPO-REV/. FAKE_CURL=fail fails like an unreachable
host; FAKE_CURL=drop leaves one file out; FAKE_CURL=corrupt changes one."""
import importlib.util, io, os, sys, tarfile
spec = importlib.util.spec_from_file_location("g", {SCRIPT!r})
g = importlib.util.module_from_spec(spec); spec.loader.exec_module(g)
url = [a for a in sys.argv if a.startswith("https://")][0]
out = sys.argv[sys.argv.index("-o") + 1]
mode = os.environ.get("FAKE_CURL", "")
if mode == "fail":
    print("curl: (6) Could not resolve host: codeload.github.com", file=sys.stderr)
    sys.exit(6)
owner_repo, rev = url.split("codeload.github.com/")[1].split("/tar.gz/")
src = [k for k, v in g.SOURCES.items() if v[0] == owner_repo and v[1] == rev][0]
names = [l.rstrip("\\n").split("  ", 1)[1] for l in open({MANIFEST!r}) if l.strip() and not l.startswith("#")]
prefix = owner_repo.split("/")[1] + "-" + rev
with tarfile.open(out, "w:gz") as t:
    dropped = False
    for n in names:
        u = g.upstream(n)
        if not u or u[0] != src:
            continue
        if mode == "drop" and not dropped:
            dropped = True
            continue
        data = open(os.path.join({SHARED!r}, n), "rb").read()
        if mode == "corrupt":
            data = data + b"x"
            mode = ""
        info = tarfile.TarInfo(prefix + "/" + u[1])
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
''')
os.chmod(fake, 0o755)

want = ["pcaps/1kxun.pcap", "pcaps/443-curl.pcap", "pcaps/vxlan.pcap",
        "pcaps/ndpireader-4.2/1kxun.pcap.csv", "pcaps/ndpireader-4.2/1kxun.pcap.flows.txt",
        "pcaps/ndpireader-4.2/443-curl.pcap.csv", "pcaps/ndpireader-4.2/443-curl.pcap.flows.txt",
        "testdata/community-id/pcaps/tcp.pcap", "testdata/community-id/baseline/baseline_deflt.json",
        "testdata/community-id/COPYING", "testdata/community-id/tuple-vectors.tsv",
        "testdata/suricata-eve-schema/schema-7.0.17.json"]
subset = [line for line in manifest if line.split("  ", 1)[1].rstrip("\n") in want or
          line.split("  ", 1)[1].startswith("testdata/mmdb/")]
c.check(len(subset) == len(want) + len(sub), f"subset of the manifest: {len(subset)} lines")
subset_path = os.path.join(tmp, "subset.sums")
with open(subset_path, "w") as f:
    f.writelines(subset)
env = {"EGRESSD_CORPUS_MANIFEST": subset_path, "CURL": fake}


def leftovers(parent):
    return [n for n in os.listdir(parent) if n.startswith(".test-corpus-")]


for mode, why in (("fail", "Could not resolve host"), ("drop", "missing"), ("corrupt", "differ from the manifest")):
    dest = os.path.join(tmp, f"corpus-{mode}")
    rc, out, err = run("--dest", dest, env=dict(env, FAKE_CURL=mode))
    lines = [x for x in err.splitlines() if not x.startswith("get-test-corpus: fetching")]
    c.check(rc == 1 and len(lines) == 1 and why in lines[0], f"download {mode}: rc={rc} {err!r}")
    c.check(not os.path.exists(dest) and not leftovers(tmp), f"download {mode}: left {dest} or a staging directory")

dest = os.path.join(tmp, "corpus")
rc, out, err = run("--dest", dest, env=env)
c.check(rc == 0 and "every sha256 as pinned" in err, f"fetch: rc={rc} {err[-600:]!r}")
c.check(not leftovers(tmp), "fetch: a staging directory is left")
rc, out, err = run("--check", dest, env={"EGRESSD_CORPUS_MANIFEST": subset_path})
c.check(rc == 0, f"--check of the fetched corpus: {err[-300:]!r}")
for n in ("pcaps/ndpireader-4.2/1kxun.pcap.csv", "testdata/mmdb/expected-lookups.tsv",
          "testdata/community-id/tuple-vectors.tsv"):
    c.check(os.path.isfile(os.path.join(dest, n)), f"fetch: rebuilt {n} missing")

c.done()

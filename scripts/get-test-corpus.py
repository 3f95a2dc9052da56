#!/usr/bin/env python3
"""get-test-corpus.py - fetches the test corpus (../shared beside the
repository) from its upstream sources at pinned revisions, rebuilds the
reference outputs the tests compare with, and checks every file against
scripts/test-corpus/SHA256SUMS.

    scripts/get-test-corpus.py [--dest DIR]   fetch into DIR (default: ../shared)
    scripts/get-test-corpus.py --check DIR    verify an existing corpus (offline)
    scripts/get-test-corpus.py --list         the pinned upstream revisions

What it fetches (tarballs from codeload.github.com, with curl):

    pcaps/*.pcap, *.pcapng          ntop/nDPI tests/pcap at tag 4.2, and 19 files
                                    of tests/cfgs/default/pcap at a later commit
    testdata/community-id/          corelight/community-id-spec pcaps/, baseline/, COPYING
    testdata/mmdb/                  maxmind/MaxMind-DB test-data/*.mmdb, source-data/,
                                    LICENSE-APACHE, LICENSE-MIT, test-data/README.md
    testdata/suricata-eve-schema/   OISF/suricata etc/schema.json at 7.0.17 and 8.0.6

and what it rebuilds with Debian 12's tools (scripts/deps.sh --test):

    pcaps/ndpireader-4.2/           ndpiReader 4.2 (libndpi-bin) per capture, exit
                                    codes, tshark conversation counts
    testdata/mmdb/expected-lookups.tsv        mmdblookup, addresses of lookup-ips.tsv
    testdata/community-id/tuple-vectors.tsv   Community ID v1 of tuple-vectors.in

Everything is assembled in a new directory beside DIR and renamed into
place only when every file matches its sha256: an existing DIR is never
overwritten or half-filled. The corpus's own READMEs, STYLE.md and the
benchmark capture generator are not fetched (tests do not read them).

Environment (for testing the script): EGRESSD_CORPUS_MANIFEST replaces
SHA256SUMS (a subset of it fetches only those files); CURL the downloader.
Exit status: 0 done, 1 a fetch, tool or checksum failed, 2 usage.
"""
import base64
import hashlib
import io
import ipaddress
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DATA = os.path.join(HERE, "test-corpus")

# name: (owner/repo, revision, what the pin is)
SOURCES = {
    "ndpi": ("ntop/nDPI", "8b5c6af71b562549f8416b31803daae223e09f46", "tag 4.2, tests/pcap/"),
    "ndpi-later": ("ntop/nDPI", "3b1286ab03b0c9223ac208a01868d8c1f6c0ae00",
                   "2024-10-21, tests/cfgs/default/pcap/ (captures tag 4.2 lacks)"),
    "community-id": ("corelight/community-id-spec", "b1fe530faa0c6edc56fad01abf0bfe71f01134ed",
                     "2024-09-23, pcaps/ and baseline/"),
    "maxmind": ("maxmind/MaxMind-DB", "2f18851d11a77ca981975666b18680979a6759a5", "test-data/, source-data/"),
    "suricata-7": ("OISF/suricata", "suricata-7.0.17", "etc/schema.json"),
    "suricata-8": ("OISF/suricata", "suricata-8.0.6", "etc/schema.json"),
}
# The captures taken from the later nDPI commit.
NDPI_LATER = {"gre.pcapng", "vxlan.pcap", "snmp.pcap", "kerberos-login.pcap", "rdp2.pcap", "rdp_over_tls.pcap",
              "telnet.pcap", "doh.pcapng", "dns2tcp_tunnel.pcap", "http_connect.pcap", "socks.pcap",
              "tls_ech.pcapng", "tls_unidirectional.pcap", "ipsec_isakmp_esp.pcap", "tailscale.pcap",
              "emotet.pcap", "icmp-tunnel.pcap", "windowsupdate_over_http.pcap", "punycode-idn.pcap"}


class Fail(Exception):
    pass


def say(msg):
    print(f"get-test-corpus: {msg}", file=sys.stderr)


def upstream(path):
    """(source, path inside its tarball) of a corpus file, or None when
    the file is rebuilt here."""
    parts = path.split("/")
    if parts[0] == "pcaps" and len(parts) == 2:
        return ("ndpi-later", "tests/cfgs/default/pcap/" + parts[1]) if parts[1] in NDPI_LATER \
            else ("ndpi", "tests/pcap/" + parts[1])
    if parts[:2] == ["testdata", "community-id"] and parts[2] in ("pcaps", "baseline", "COPYING"):
        return ("community-id", "/".join(parts[2:]))
    if parts[:2] == ["testdata", "mmdb"]:
        rest = "/".join(parts[2:])
        if rest.endswith(".mmdb"):
            return ("maxmind", "test-data/" + rest)
        if rest.startswith("source-data/"):
            return ("maxmind", rest)
        if rest in ("LICENSE-APACHE", "LICENSE-MIT"):
            return ("maxmind", rest)
        if rest == "README.upstream-test-data.md":
            return ("maxmind", "test-data/README.md")
    if parts[:2] == ["testdata", "suricata-eve-schema"] and parts[2].startswith("schema-"):
        version = parts[2][len("schema-"):-len(".json")]
        return ("suricata-" + version.split(".")[0], "etc/schema.json") \
            if SOURCES["suricata-" + version.split(".")[0]][1] == "suricata-" + version else None
    return None


def read_manifest():
    path = os.environ.get("EGRESSD_CORPUS_MANIFEST") or os.path.join(DATA, "SHA256SUMS")
    out = {}
    try:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip() or line.startswith("#"):
                    continue
                digest, name = line.rstrip("\n").split("  ", 1)
                if len(digest) != 64 or name.startswith("/") or ".." in name.split("/"):
                    raise Fail(f"{path}:{n}: not a 'sha256  path' line")
                out[name] = digest
    except OSError as e:
        raise Fail(f"{path}: {e.strerror}")
    if not out:
        raise Fail(f"{path}: no file listed")
    return out


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check(root, manifest):
    bad = []
    for name, digest in sorted(manifest.items()):
        p = os.path.join(root, name)
        if not os.path.isfile(p):
            bad.append(f"{name}: missing")
        elif sha256(p) != digest:
            bad.append(f"{name}: sha256 {sha256(p)}, expected {digest}")
    return bad


# ---- fetching ------------------------------------------------------------------------------


def fetch_tarball(src, tmp):
    repo, rev, _ = SOURCES[src]
    url = f"https://codeload.github.com/{repo}/tar.gz/{rev}"
    out = os.path.join(tmp, src + ".tar.gz")
    curl = os.environ.get("CURL", "curl")
    say(f"fetching {repo} at {rev}")
    try:
        p = subprocess.run([curl, "-fsSL", "--retry", "2", "-o", out, url], capture_output=True, text=True)
    except FileNotFoundError:
        raise Fail(f"{curl} not found (apt-get install curl)")
    if p.returncode != 0 or not os.path.isfile(out):
        why = (p.stderr.strip().splitlines() or ["no message"])[-1]
        raise Fail(f"{url}: {curl} failed (exit {p.returncode}): {why}")
    return out


def extract(tarball, wanted, stage):
    """wanted: {path inside the tarball: corpus path}. Files are read by
    name only (a member's own path is never used to write)."""
    left = dict(wanted)
    try:
        with tarfile.open(tarball) as t:
            for m in t:
                inner = m.name.split("/", 1)[1] if "/" in m.name else ""
                if inner in left and m.isfile():
                    dest = os.path.join(stage, left.pop(inner))
                    os.makedirs(os.path.dirname(dest), exist_ok=True)
                    with t.extractfile(m) as src, open(dest, "wb") as dst:
                        shutil.copyfileobj(src, dst)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise Fail(f"{tarball}: not a readable tarball: {e}")
    if left:
        raise Fail(f"{tarball}: missing {sorted(left)[:3]}{' ...' if len(left) > 3 else ''}")


# ---- rebuilding the references ----------------------------------------------------------------


def need_tool(name, package):
    if not shutil.which(name):
        raise Fail(f"{name} not found (apt-get install {package}; scripts/deps.sh --test installs it)")


def ndpireader_refs(stage, wanted):
    """ndpireader-4.2/FILE.csv and FILE.flows.txt, exit-codes.tsv,
    flow-counts.tsv, as pcaps/README.md describes them."""
    need_tool("ndpiReader", "libndpi-bin")
    pcaps = os.path.join(stage, "pcaps")
    ref = os.path.join(pcaps, "ndpireader-4.2")
    os.makedirs(ref, exist_ok=True)
    names = sorted({w.split("/")[-1][:-len(".csv")] for w in wanted if w.endswith(".csv")} |
                   {w.split("/")[-1][:-len(".flows.txt")] for w in wanted if w.endswith(".flows.txt")})
    codes, counts = [], []
    for name in names:
        with open(os.path.join(ref, name + ".flows.txt"), "wb") as out:
            p = subprocess.run(["ndpiReader", "-q", "-v", "2", "-i", name, "-C", f"ndpireader-4.2/{name}.csv"],
                               cwd=pcaps, stdout=out, stderr=subprocess.DEVNULL)
        codes.append(f"{name}\t{p.returncode}\n")
    if "pcaps/ndpireader-4.2/exit-codes.tsv" in wanted:
        with open(os.path.join(ref, "exit-codes.tsv"), "w") as f:
            f.writelines(codes)
    if "pcaps/ndpireader-4.2/flow-counts.tsv" in wanted:
        need_tool("tshark", "tshark")
        for name in names:
            rows = sum(1 for line in open(os.path.join(ref, name + ".csv")) if not line.startswith("#"))
            conv = {}
            for kind in ("tcp", "udp"):
                p = subprocess.run(["tshark", "-r", name, "-q", "-z", f"conv,{kind}"], cwd=pcaps,
                                   capture_output=True, text=True)
                conv[kind] = sum(1 for line in p.stdout.splitlines() if "<->" in line)
            counts.append(f"{name}\t{rows}\t{conv['tcp']}\t{conv['udp']}\n")
        with open(os.path.join(ref, "flow-counts.tsv"), "w") as f:
            f.write("file\tndpireader_flows\ttshark_tcp_conversations\ttshark_udp_conversations\n")
            f.writelines(counts)


def expected_lookups(stage):
    """The mmdblookup answers for the addresses of lookup-ips.tsv: a value,
    "-" when the record lacks the key, "<no entry>" without a record."""
    need_tool("mmdblookup", "mmdb-bin")
    mmdb = os.path.join(stage, "testdata", "mmdb")
    cols = ["City.country.iso_code", "City.registered_country.iso_code", "City.city.names.en",
            "City.subdivisions.0.iso_code", "Country.country.iso_code", "ASN.autonomous_system_number",
            "ASN.autonomous_system_organization", "ISP.autonomous_system_number",
            "ISP.autonomous_system_organization", "ISP.isp", "ISP.organization"]
    dbs = {"City": "GeoIP2-City-Test.mmdb", "Country": "GeoIP2-Country-Test.mmdb",
           "ASN": "GeoLite2-ASN-Test.mmdb", "ISP": "GeoIP2-ISP-Test.mmdb"}
    rows = [line.rstrip("\n").split("\t") for line in open(os.path.join(DATA, "lookup-ips.tsv"), encoding="utf-8")]
    out = ["\t".join(rows[0] + cols) + "\n"]
    for ip, scope in rows[1:]:
        vals = []
        for col in cols:
            db, *path = col.split(".")
            p = subprocess.run(["mmdblookup", "--file", os.path.join(mmdb, dbs[db]), "--ip", ip] + path,
                               capture_output=True, text=True)
            text = (p.stdout + p.stderr).strip()
            if "Could not find an entry" in text:
                vals.append("<no entry>")
            elif p.returncode != 0:
                vals.append("-")
            else:
                v = text.rsplit(" <", 1)[0].strip()
                vals.append(v[1:-1] if v.startswith('"') else v)
        out.append("\t".join([ip, scope] + vals) + "\n")
    with open(os.path.join(mmdb, "expected-lookups.tsv"), "w", encoding="utf-8") as f:
        f.writelines(out)


ICMP4 = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 17: 18, 18: 17, 10: 9, 9: 10}
ICMP6 = {128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135, 130: 131, 131: 130, 144: 145, 145: 144}


def community_id(proto, saddr, daddr, sport, dport, seed=0, b64=True):
    """Community ID v1 (github.com/corelight/community-id-spec), written
    from the specification, independently of src/cid.c."""
    s, d = ipaddress.ip_address(saddr).packed, ipaddress.ip_address(daddr).packed
    one_way = False
    if proto in (1, 58) and sport is not None:
        table = ICMP4 if proto == 1 else ICMP6
        if sport in table:
            dport = table[sport]
        else:
            one_way = True
            dport = dport
    ports = sport is not None
    if not one_way and (s, sport if ports else 0) > (d, dport if ports else 0):
        s, d, sport, dport = d, s, dport, sport
    data = struct.pack("!H", seed) + s + d + struct.pack("!BB", proto, 0)
    if ports:
        data += struct.pack("!HH", sport, dport)
    h = hashlib.sha1(data).digest()
    return "1:" + (base64.b64encode(h).decode() if b64 else h.hex())


def tuple_vectors(stage):
    rows = [line.rstrip("\n").split("\t") for line in open(os.path.join(DATA, "tuple-vectors.in"))]
    out = ["proto\tsaddr\tdaddr\tsport\tdport\tcid_default\tcid_seed1\tcid_nob64\tsource\tnote\n"]
    for proto, sa, da, sp, dp, variants, source, note in rows[1:]:
        args = (int(proto), sa, da, None if sp == "-" else int(sp), None if dp == "-" else int(dp))
        cids = [community_id(*args)]
        cids += [community_id(*args, seed=1), community_id(*args, b64=False)] if variants == "all" else ["", ""]
        out.append("\t".join([proto, sa, da, sp, dp] + cids + [source, note]) + "\n")
    path = os.path.join(stage, "testdata", "community-id", "tuple-vectors.tsv")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.writelines(out)


def fetch(dest, manifest):
    dest = os.path.abspath(dest)
    if os.path.lexists(dest) and (not os.path.isdir(dest) or os.listdir(dest)):
        raise Fail(f"{dest} exists and is not empty: not overwritten (check it with --check {dest}, "
                   "or move it away)")
    parent = os.path.dirname(dest)
    if not os.path.isdir(parent):
        raise Fail(f"{parent}: no such directory")
    stage = tempfile.mkdtemp(prefix=".test-corpus-", dir=parent)
    tmp = tempfile.mkdtemp(prefix="egressd-corpus-")
    try:
        by_source = {}
        rebuilt = []
        for name in manifest:
            u = upstream(name)
            if u:
                by_source.setdefault(u[0], {})[u[1]] = name
            else:
                rebuilt.append(name)
        for src in sorted(by_source):
            extract(fetch_tarball(src, tmp), by_source[src], stage)
        if any(n.startswith("pcaps/ndpireader-4.2/") for n in rebuilt):
            ndpireader_refs(stage, [n for n in rebuilt if n.startswith("pcaps/ndpireader-4.2/")])
        if "testdata/mmdb/expected-lookups.tsv" in rebuilt:
            expected_lookups(stage)
        if "testdata/community-id/tuple-vectors.tsv" in rebuilt:
            tuple_vectors(stage)
        unknown = [n for n in rebuilt if not (n.startswith("pcaps/ndpireader-4.2/") or n in (
            "testdata/mmdb/expected-lookups.tsv", "testdata/community-id/tuple-vectors.tsv"))]
        if unknown:
            raise Fail(f"no source for {unknown[:3]}")
        bad = check(stage, manifest)
        if bad:
            raise Fail(f"{len(bad)} files differ from the manifest, nothing installed: {'; '.join(bad[:3])}")
        if os.path.isdir(dest):
            os.rmdir(dest)
        os.rename(stage, dest)
        say(f"done: {len(manifest)} files in {dest}, every sha256 as pinned")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(stage, ignore_errors=True)


def main(argv):
    usage = ("usage: get-test-corpus.py [--dest DIR] | --check DIR | --list | --help\n"
             "  fetches the test corpus (default DIR: ../shared beside the repository)")
    if argv in (["--help"], ["-h"]):
        print(__doc__.strip())
        return 0
    try:
        if argv == ["--list"]:
            print("source\trepository\trevision\twhat")
            for name, (repo, rev, what) in SOURCES.items():
                print(f"{name}\t{repo}\t{rev}\t{what}")
            return 0
        if len(argv) == 2 and argv[0] == "--check":
            manifest = read_manifest()
            bad = check(argv[1], manifest)
            for b in bad[:20]:
                say(b)
            if bad:
                say(f"{argv[1]}: {len(bad)} of {len(manifest)} files missing or different")
                return 1
            say(f"{argv[1]}: all {len(manifest)} files as pinned")
            return 0
        if argv and not (len(argv) == 2 and argv[0] == "--dest"):
            print(usage, file=sys.stderr)
            return 2
        dest = argv[1] if argv else os.path.join(os.path.dirname(REPO), "shared")
        fetch(dest, read_manifest())
        return 0
    except Fail as e:
        say(str(e))
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

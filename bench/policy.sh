#!/usr/bin/env bash
# Cost of the egress policy: replay of the benchmark capture without a policy, and with a large
# one (1000 allow rules per role, 10000 intel entries), side by side in one run, alternated
# round-robin; each value is the median of the rounds. Target: the large policy within 10% of no
# policy. The large policy is built so every record pays for all of it: every host of the capture's
# private networks has the role, its first 999 rules (random CIDRs, names, ASNs and ports) never
# match and the 1000th allows everything, and no intel entry matches, so every egress record is
# checked against 999 rules and 4 lists and nothing is written that the run without a policy does
# not write. A third column denies everything (every destination alerts, deduplicated) to show the
# cost of writing alerts.
#
# A second table counts instructions (valgrind's callgrind) on the small capture: the same number on
# every run whatever else the machine is doing, so it shows the cost even where wall time is noisy.
#
# Usage: bench/policy.sh [--quick]      (--quick: the small capture)
# Env: ROUNDS (default 3), EGRESSD_BIN (default <repo>/build-release/egressd)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=$here/.cache
rounds=${ROUNDS:-3}
egressd=${EGRESSD_BIN:-$repo/build-release/egressd}
capture=$cache/bench.pcap
[[ ${1:-} == --quick ]] && capture=$cache/bench-small.pcap
say() { echo "policy.sh: $*" >&2; }

if [[ ! -x $egressd ]]; then
  say "building $egressd (Release)"
  cmake -S "$repo" -B "$(dirname "$egressd")" -DCMAKE_BUILD_TYPE=Release -DEGRESSD_TESTS=OFF >/dev/null
  cmake --build "$(dirname "$egressd")" -j "$(nproc)" --target egressd >/dev/null
fi
[[ -f $capture ]] || { say "$capture missing: run bench/make-capture.sh first"; exit 1; }
[[ -x /usr/bin/time ]] || { say "needs /usr/bin/time (apt-get install time)"; exit 1; }

work=$cache/policy
mkdir -p "$work"
python3 - "$work" <<'PY'
import random, sys
work = sys.argv[1]
rnd = random.Random(7)
def ip():
    # TEST-NET and benchmarking ranges only: never an address of the capture
    return f"198.18.{rnd.randrange(256)}.{rnd.randrange(256)}"
with open(f"{work}/ips.txt", "w") as f:
    for i in range(5000):
        f.write(f"198.19.{i // 256}.{i % 256}\n")
with open(f"{work}/domains.txt", "w") as f:
    for i in range(4000):
        f.write(f"bad{i}.invalid\n")
with open(f"{work}/ja3.txt", "w") as f:
    for i in range(500):
        f.write(f"{rnd.getrandbits(128):032x}\n")
with open(f"{work}/sha1.txt", "w") as f:
    for i in range(500):
        f.write(f"{rnd.getrandbits(160):040x}\n")
head = """home_net: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, "fc00::/7"]
default_role: infra
intel:
  - {name: ips, type: ip, file: ips.txt}
  - {name: domains, type: domain, file: domains.txt}
  - {name: ja3, type: ja3, file: ja3.txt}
  - {name: sha1, type: sha1, file: sha1.txt}
alerts: {max_per_second: 0}
roles:
  infra:
    mode: deny
    allow:
"""
rules = []
for i in range(999):
    k = i % 4
    if k == 0:
        rules.append(f"      - {{cidr: [{ip()}/32, 198.18.{i % 256}.{(i * 4) % 256}/30], proto: tcp}}")
    elif k == 1:
        rules.append(f"      - {{domain: [\"*.vendor{i}.invalid\", \"api{i}.invalid\"], port: [443]}}")
    elif k == 2:
        rules.append(f"      - {{asn: [{64512 + i}], country: [AQ]}}")
    else:
        rules.append(f"      - {{proto: udp, port: [\"{40000 + i}-{40000 + i}\"], ndpi: [NoSuchProto]}}")
with open(f"{work}/large.yaml", "w") as f:
    f.write(head + "\n".join(rules) + "\n      - {name: everything-else, proto: any}\n")
with open(f"{work}/deny.yaml", "w") as f:
    f.write(head + "\n".join(rules) + "\n")
PY
"$egressd" -c "$work/large.yaml" --check-config >/dev/null
"$egressd" -c "$work/deny.yaml" --check-config >/dev/null

declare -A secs rss alerts
run() { # name args...
  local name=$1; shift
  local tf=$work/time.$name out=$work/eve.$name.json
  /usr/bin/time -o "$tf" -f '%e %M' "$egressd" -r "$capture" --json "$out" "$@" 2>"$work/log.$name"
  read -r s m <"$tf"
  secs[$name]+="$s "
  rss[$name]+="$m "
  alerts[$name]=$(grep -c '"event_type":"alert"' "$out" || true)
  rm -f "$out"
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for ((r = 1; r <= rounds; r++)); do
  say "round $r/$rounds"
  run none
  run large -c "$work/large.yaml"
  run deny -c "$work/deny.yaml"
done

base=$(echo "${secs[none]}" | median)
echo "## Policy cost ($(basename "$capture"), $rounds rounds, median)"
echo
echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "- egressd: $("$egressd" -V | head -1)"
echo
echo "| run | time (s) | vs no policy | peak RSS (MiB) | alerts written |"
echo "|---|---|---|---|---|"
for name in none large deny; do
  s=$(echo "${secs[$name]}" | median)
  m=$(echo "${rss[$name]}" | median)
  label=$name
  [[ $name == none ]] && label="no policy"
  [[ $name == large ]] && label="1000 rules + 10000 intel entries, nothing alerts"
  [[ $name == deny ]] && label="999 rules + 10000 intel entries, every destination alerts"
  awk -v l="$label" -v s="$s" -v b="$base" -v m="$m" -v a="${alerts[$name]}" \
    'BEGIN { printf "| %s | %.2f | %+.1f%% | %.1f | %s |\n", l, s, (s / b - 1) * 100, m / 1024, a }'
done

if command -v valgrind >/dev/null; then
  small=$cache/bench-small.pcap
  echo
  echo "## Instructions (callgrind, $(basename "$small"))"
  echo
  echo "| run | instructions | vs no policy |"
  echo "|---|---|---|"
  base_ir=
  for name in none large deny; do
    args=()
    [[ $name != none ]] && args=(-c "$work/$name.yaml")
    say "callgrind: $name"
    ir=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$egressd" -r "$small" \
           --json /dev/null "${args[@]}" 2>&1 | awk '/refs:/ { gsub(",", "", $4); print $4 }')
    [[ -z $base_ir ]] && base_ir=$ir
    label=$name
    [[ $name == none ]] && label="no policy"
    [[ $name == large ]] && label="1000 rules + 10000 intel entries, nothing alerts"
    [[ $name == deny ]] && label="999 rules + 10000 intel entries, every destination alerts"
    awk -v l="$label" -v i="$ir" -v b="$base_ir" \
      'BEGIN { printf "| %s | %.0f | %+.1f%% |\n", l, i, (i / b - 1) * 100 }'
  done
else
  say "valgrind not installed: no instruction counts"
fi

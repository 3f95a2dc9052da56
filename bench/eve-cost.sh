#!/usr/bin/env bash
# What the Suricata-shaped EVE output costs: instructions (valgrind's callgrind,
# the same count on every run whatever else the machine does) of one replay of
# real captures by this tree's egressd and by a base revision's, split into the
# packet path (worker_packet: decode, flow table, nDPI, and now the JA3 string
# of each ClientHello and the first DNS response of each flow) and the JSON
# output (sj_flow: the events of every record), and egressd's own work in
# classify_packet beside nDPI's. Prints a table.
#
# Usage: bench/eve-cost.sh [BASE_REV]   (default 3eb1016, the revision before
#                                         the change; built from git archive)
# Env: EGRESSD_BIN (default <repo>/build/egressd), PCAPS (default: six captures
#      of ../shared/pcaps with TLS, QUIC, HTTP and DNS)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
base_rev=${1:-3eb1016}
egressd=${EGRESSD_BIN:-$repo/build/egressd}
shared=$(cd "$repo/.." && pwd)/shared/pcaps
pcaps=${PCAPS:-instagram.pcap pps.pcap teams.pcap 1kxun.pcap wechat.pcap dns_doh.pcap}
cache=$here/.cache/eve-cost-$base_rev
say() { echo "eve-cost.sh: $*" >&2; }
command -v valgrind >/dev/null || { say "valgrind not installed (apt-get install valgrind)"; exit 1; }
[[ -x $egressd ]] || { say "$egressd not built"; exit 1; }

if [[ ! -x $cache/b/egressd ]]; then
  say "building $base_rev in $cache"
  rm -rf "$cache" && mkdir -p "$cache"
  git -C "$repo" archive "$base_rev" | tar -x -C "$cache"
  cmake -S "$cache" -B "$cache/b" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEGRESSD_TESTS=OFF >/dev/null
  cmake --build "$cache/b" -j"$(nproc)" --target egressd >/dev/null
fi

args=()
for p in $pcaps; do args+=(-r "$shared/$p"); done
measure() { # $1 binary -> "total worker_packet sj_flow events"
  local out=$cache/cg.$$.out
  valgrind --tool=callgrind --callgrind-out-file="$out" "$1" "${args[@]}" --json /dev/null >/dev/null 2>&1
  local ann total wp sj
  ann=$(callgrind_annotate --inclusive=yes "$out" 2>/dev/null)
  total=$(sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' <<<"$ann" | tr -d ,)
  wp=$(grep -m1 'worker.c:worker_packet' <<<"$ann" | awk '{print $1}' | tr -d ,)
  sj=$(grep -m1 'sink-json.c:sj_flow' <<<"$ann" | awk '{print $1}' | tr -d ,)
  cp=$(grep -m1 'classify.c:classify_packet' <<<"$ann" | awk '{print $1}' | tr -d ,)
  nd=$(grep -m1 'ndpi_detection_process_packet' <<<"$ann" | awk '{print $1}' | tr -d ,)
  rm -f "$out"
  echo "$total $wp $sj $((cp - nd)) $("$1" "${args[@]}" --json - 2>/dev/null | wc -l)"
}
read -r bt bw bs bc be < <(measure "$cache/b/egressd")
read -r nt nw ns nc ne < <(measure "$egressd")
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f%%", (b - a) * 100 / a }'; }
echo "| instructions (callgrind Ir) | $base_rev | this tree | change |"
echo "|---|---:|---:|---:|"
echo "| whole replay | $bt | $nt | $(pct "$bt" "$nt") |"
echo "| packet path (worker_packet, records emitted on the way included) | $bw | $nw | $(pct "$bw" "$nw") |"
echo "| classify_packet without nDPI (JA3 string, DNS response, the checks) | $bc | $nc | +$((nc - bc)) |"
echo "| JSON output (sj_flow) | $bs | $ns | $(pct "$bs" "$ns") |"
echo "| events written | $be | $ne | $(pct "$be" "$ne") |"

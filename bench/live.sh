#!/usr/bin/env bash
# Live-capture benchmark: the highest packet rate at which a capture loses nothing, for egressd
# with 1 and 2 workers and for ndpiReader -i, all reading one end of a veth pair inside a network
# namespace while tcpreplay --pps writes the benchmark capture into the other end. A rate passes
# when the tool counted every packet tcpreplay sent and the kernel dropped none (with 2 workers,
# every packet the kernel hands over after reassembling IPv4 fragments for the fanout hash). Also reports CPU
# seconds per million packets (utime+stime from /proc/PID/stat) at the last rate tried.
#
# Usage: bench/live.sh [--capture FILE] [--rates "R1 R2 ..."] [--seconds S]
#   --capture FILE   default bench/.cache/bench-small.pcap (built like bench/run.sh --quick does,
#                    with ../shared/bench/make-bench-capture.sh)
#   --rates LIST     packets per second to try, ascending (default "20000 50000 100000 200000")
#   --seconds S      shortest trial (default 2): the capture is sent as many whole times as
#                    it takes to last S seconds at the rate
# Env: EGRESSD_BIN (default <repo>/build-release/egressd, built with -DCMAKE_BUILD_TYPE=Release)
#
# Needs root, ip, tcpreplay and ndpiReader. Takes about a minute; never part of the test suite.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
egressd=${EGRESSD_BIN:-$repo/build-release/egressd}
capture=$here/.cache/bench-small.pcap
rates="20000 50000 100000 200000"
seconds=2
while (($#)); do
  case "$1" in
    --capture) capture=${2:?}; shift ;;
    --rates) rates=${2:?}; shift ;;
    --seconds) seconds=${2:?}; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "live.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
say() { echo "live.sh: $*" >&2; }
[[ $(id -u) -eq 0 ]] || { echo "live.sh: needs root (network namespaces)" >&2; exit 1; }
[[ -x $egressd ]] || { echo "live.sh: no egressd at $egressd (set EGRESSD_BIN)" >&2; exit 1; }
if [[ ! -f $capture ]]; then
  say "building $capture (2 copies) with ../shared/bench/make-bench-capture.sh"
  mkdir -p "$(dirname "$capture")"
  "$repo/../shared/bench/make-bench-capture.sh" "$capture" 2
fi

npkts=$(capinfos -c -M "$capture" | sed -n 's/.*packets: *\([0-9]*\).*/\1/p')
ns=egr-bench-$$
work=$(mktemp -d)
cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
ip netns add "$ns"
nsx=(ip netns exec "$ns")
"${nsx[@]}" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip -n "$ns" link add tx0 type veth peer name cap0
for d in lo tx0 cap0; do ip -n "$ns" link set "$d" up; done
ip -n "$ns" link set tx0 mtu 65000
ip -n "$ns" link set cap0 mtu 65000

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

metric() { # metric PORT NAME: sum of the samples of NAME
  "${nsx[@]}" python3 -c '
import sys, urllib.request
body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
print(int(sum(float(l.rsplit(" ", 1)[1]) for l in body.splitlines()
              if l.startswith(sys.argv[2] + "{") and (len(sys.argv) < 4 or sys.argv[3] in l))))
' "$@"
}

# trial TOOL RATE -> "sent counted drops cpu_s"
trial() {
  # whole copies of the capture only, so every trial sends the same mix
  local tool=$1 rate=$2 loops=$(( ($2 * seconds + npkts - 1) / npkts )) pid sent counted drops t0 t1 port
  local achieved
  local err=$work/err out=$work/out
  : >"$err"
  case $tool in
    egressd-*)
      "${nsx[@]}" "$egressd" -i cap0 --allow-root --workers "${tool#egressd-}" --metrics 0 \
        --stats-interval 0 -B 64 --json /dev/null 2>"$err" & pid=$!
      until grep -q "capturing on" "$err"; do sleep 0.1; kill -0 $pid || return 1; done
      port=$(sed -n 's/.*metrics on .*, port \([0-9]*\).*/\1/p' "$err") ;;
    ndpiReader)
      "${nsx[@]}" ndpiReader -i cap0 -s 3600 >"$out" 2>&1 & pid=$!
      sleep 1 ;;
  esac
  t0=$(cpu_ticks $pid)
  "${nsx[@]}" tcpreplay -q -i tx0 --pps="$rate" --loop="$loops" "$capture" >"$work/tr" 2>&1 || true
  sent=$(sed -n 's/.*Actual: \([0-9]*\) packets.*/\1/p' "$work/tr")
  # what tcpreplay managed, which is below the rate asked for once it runs out of CPU
  achieved=$(sed -n 's/.*Rated:.* \([0-9.]*\) pps.*/\1/p' "$work/tr" | cut -d. -f1)
  sleep 0.5
  t1=$(cpu_ticks $pid)
  case $tool in
    egressd-*)
      counted=$(metric "$port" egressd_packets_total)
      drops=$(( $(metric "$port" egressd_drops_total kernel) + $(metric "$port" egressd_drops_total ifdrop) ))
      kill -TERM $pid; wait $pid || true ;;
    ndpiReader)
      kill -INT $pid; wait $pid || true
      # ndpiReader 4.2 prints what it read ("IP packets: N of M packets total") but not the
      # kernel's drop counter: a loss shows as M < sent.
      counted=$(sed -n 's/.* of \([0-9]*\) packets total.*/\1/p' "$out" | head -1)
      drops=0 ;;
  esac
  echo "${sent:-0} ${counted:-0} ${drops:-0} ${achieved:-0} $(awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", t / hz}')"
}

say "capture $capture, rates $rates, $seconds s per trial"
printf '| tool | highest lossless pps asked (achieved) | at that rate: sent / counted / kernel drops | CPU s per M packets |\n'
printf '|---|---|---|---|\n'
for tool in egressd-1 egressd-2 ndpiReader; do
  best=0 bestline="-" cpu="-" ref=
  for rate in $rates; do
    read -r sent counted drops achieved cpu_s < <(trial "$tool" "$rate")
    say "$tool at $rate pps (achieved $achieved): sent $sent counted $counted drops $drops cpu ${cpu_s}s"
    want=$sent
    if [[ $tool == egressd-2 ]]; then
      # With a fanout group the kernel reassembles IPv4 fragments before they reach the
      # workers (docs/live.md), so fewer packets arrive than were sent: the reference is what
      # the lowest rate delivered without a kernel drop, per packet sent.
      [[ -n $ref ]] || { ((drops == 0)) && ref=$(awk -v c="$counted" -v s="$sent" 'BEGIN{print c / s}'); }
      want=$(awk -v r="${ref:-1}" -v s="$sent" 'BEGIN{printf "%d", r * s + 0.5}')
    fi
    if ((sent > 0 && counted == want && drops == 0)); then
      best="$rate ($achieved)" bestline="$sent / $counted / $drops"
      cpu=$(awk -v c="$cpu_s" -v n="$sent" 'BEGIN{printf "%.1f", c / n * 1e6}')
    else
      break
    fi
  done
  printf '| %s | %s | %s | %s |\n' "$tool" "$best" "$bestline" "$cpu"
done

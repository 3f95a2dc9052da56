#!/usr/bin/env bash
# Throughput and memory benchmark: egressd (one worker and --workers N) against ndpiReader,
# softflowd and a bare libpcap read loop (the floor), all replaying the same capture file. The tools are run round-robin
# (floor, egressd, ndpiReader, softflowd, floor, egressd, ...) for ROUNDS rounds so that a slow
# phase of the machine (another job, thermal or frequency changes) hits every tool alike instead
# of one tool's whole series; each column is the median of the rounds. Prints machine information,
# the capture's counts and a Markdown table on stdout; progress goes to stderr.
#
# Usage: bench/run.sh [--quick] [--capture FILE]
#   --quick          smoke run on the small capture (COPIES=2, bench/.cache/bench-small.pcap)
#   --capture FILE   measure on FILE instead of the benchmark capture
# Env:
#   ROUNDS          rounds per tool (default 3)
#   EGRESSD_BIN     egressd binary (default <repo>/build-release/egressd)
#   WORKERS         workers of the second egressd row (default 2; 1 drops the row)
#   EGRESSD_CONFIG  egressd's -c file (default: bench/.cache/bench.yaml, written here: home_net the
#                   private ranges and the default GeoIP/ASN databases, from /var/lib/egressd/geoip
#                   or else installed into bench/.cache/geoip with scripts/geoip-db.sh)
#   SOFTFLOWD_ARGS  extra softflowd options (default "-6 -m 1048576": track IPv6, hold every flow;
#                   set it empty for softflowd's defaults)
#
# Never part of the unit test suite: it needs a ~600 MB capture and minutes of CPU.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=$here/.cache
rounds=${ROUNDS:-3}
egressd=${EGRESSD_BIN:-$repo/build-release/egressd}
softflowd_args=${SOFTFLOWD_ARGS--6 -m 1048576}
nworkers=${WORKERS:-2}

quick=0 capture=
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --capture) capture=${2:?--capture needs a FILE}; shift ;;
    --capture=*) capture=${1#--capture=} ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: ROUNDS must be a positive integer" >&2; exit 2; }
[[ $nworkers =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: WORKERS must be a positive integer" >&2; exit 2; }

say() { echo "run.sh: $*" >&2; }

# --- tools -------------------------------------------------------------------------------------
# Debian packages providing the peers and the RSS probe; installed once if missing.
missing=()
[[ -x /usr/bin/time ]] || missing+=(time)
command -v ndpiReader >/dev/null || missing+=(libndpi-bin)
command -v softflowd >/dev/null || [[ -x /usr/sbin/softflowd ]] || missing+=(softflowd)
command -v editcap >/dev/null || missing+=(tshark)
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "run.sh: need ${missing[*]} (apt-get install ${missing[*]}) and not root" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "${missing[@]}" >&2
fi
softflowd_bin=$(command -v softflowd || echo /usr/sbin/softflowd)

mkdir -p "$cache/logs"
if [[ -z ${EGRESSD_BIN:-} ]]; then
  # This tree's code, always: a stale build would put old numbers under a new commit.
  say "building $repo/build-release (Release)"
  cmake -S "$repo" -B "$repo/build-release" -DCMAKE_BUILD_TYPE=Release -DEGRESSD_TESTS=OFF >/dev/null
  cmake --build "$repo/build-release" -j "$(nproc)" --target egressd >/dev/null
fi
floor=$cache/pcap-floor
if [[ ! -x $floor || $here/pcap-floor.c -nt $floor ]]; then
  say "compiling $floor"
  cc -O2 -Wall -Wextra -o "$floor" "$here/pcap-floor.c" -lpcap
fi

# --- egressd's configuration: DPI, GeoIP and the policy stage on --------------------------------
egressd_cfg=${EGRESSD_CONFIG:-}
geo_state="from $egressd_cfg"
if [[ -z $egressd_cfg ]]; then
  geo_dir=
  for d in /var/lib/egressd/geoip "$cache/geoip"; do
    if [[ -r $d/geo-whois-asn-country.mmdb && -r $d/asn.mmdb ]]; then geo_dir=$d; break; fi
  done
  if [[ -z $geo_dir ]]; then
    say "no GeoIP databases: installing them into $cache/geoip (scripts/geoip-db.sh)"
    if "$repo/scripts/geoip-db.sh" "$cache/geoip" >&2; then geo_dir=$cache/geoip; fi
  fi
  egressd_cfg=$cache/bench.yaml
  {
    echo "# written by bench/run.sh: what a sensor runs with (locality, GeoIP/ASN, policy stage)"
    echo 'home_net: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, "fc00::/7"]'
    if [[ -n $geo_dir ]]; then
      echo "geoip:"
      echo "  country_db: $geo_dir/geo-whois-asn-country.mmdb"
      echo "  asn_db: $geo_dir/asn.mmdb"
    fi
  } >"$egressd_cfg"
  geo_state=${geo_dir:+"GeoIP/ASN from $geo_dir"}
  geo_state=${geo_state:-"GeoIP off (no databases)"}
fi

# --- capture -----------------------------------------------------------------------------------
if [[ -z $capture ]]; then
  if ((quick)); then capture=$("$here/make-capture.sh" --quick | tail -n 1)
  else capture=$("$here/make-capture.sh" | tail -n 1); fi
fi
[[ -r $capture ]] || { echo "run.sh: cannot read capture '$capture'" >&2; exit 1; }
capture=$(cd "$(dirname "$capture")" && pwd)/$(basename "$capture")

# A one-packet capture cut from the same file: what each tool costs before it tracks anything.
# Its peak RSS is subtracted from the full run's to get the memory the flows themselves take.
tiny=$cache/$(basename "$capture" .pcap)-1pkt.pcap
if [[ ! -s $tiny || $capture -nt $tiny ]]; then
  editcap -r "$capture" "$tiny" 1 >&2
fi

# Bring the capture into the page cache so the first tool timed does not pay for the disk.
say "warming the page cache with $capture"
cat "$capture" >/dev/null

# The floor's output gives packets and the sum of captured bytes exactly.
read -r cap_pkts cap_bytes _ < <("$floor" "$capture")
cap_file_bytes=$(stat -c %s "$capture")

# The capture's flow count as ndpiReader sees it (its summary, not timed).
say "counting flows with ndpiReader"
cap_flows=$(ndpiReader -i "$capture" -v 0 2>/dev/null | awk '/Unique flows:/ { n = $3 } END { print n }')
[[ $cap_flows =~ ^[0-9]+$ ]] || { echo "run.sh: could not read ndpiReader's flow count" >&2; exit 1; }

# --- the commands ------------------------------------------------------------------------------
tools=(floor egressd ndpiReader softflowd)
((nworkers > 1)) && tools=(floor egressd egressdN ndpiReader softflowd)
have_egressd=0
[[ -x $egressd ]] && have_egressd=1

read -r -a sf_extra <<<"$softflowd_args"
cmd_argv() {   # tool file -> sets argv[] to the command to time
  local tool=$1 f=$2
  case "$tool" in
    floor) argv=("$floor" "$f") ;;
    # egressd writes its JSON to a real file (page cache, not /dev/null): the records are its work.
    egressd) argv=("$egressd" -c "$egressd_cfg" -r "$f" --json "$cache/logs/egressd.json") ;;
    egressdN) argv=("$egressd" -c "$egressd_cfg" -r "$f" --json "$cache/logs/egressd.json" --workers "$nworkers") ;;
    # -q: no per-flow report; -v 0: no packet dumps; with neither -w, -C nor -j it writes no file.
    # A pcap file is always read by one thread (-n is ignored for files).
    ndpiReader) argv=(ndpiReader -i "$f" -q -v 0) ;;
    # No -n: statistics-only mode, nothing exported; -r processes the whole file and exits.
    softflowd) argv=("$softflowd_bin" -r "$f" "${sf_extra[@]}") ;;
  esac
}
show_cmd() { cmd_argv "$1" CAP; argv[0]=${argv[0]##*/}; echo "${argv[*]}"; }

# measure tool file -> "wall_s peak_kb cpu_s"; wall from the shell's microsecond clock, peak RSS and
# user+system CPU time from time(1). CPU time is the steadier figure on a machine shared with other
# work: waiting for a core inflates the wall time but not the CPU time.
measure() {
  local tool=$1 f=$2 log=$cache/logs/$1.log tf=$cache/logs/$1.time t0 t1 rc
  local -a argv
  cmd_argv "$tool" "$f"
  # egressd's output is removed before and after each run: opening the last run's ~100 MB file
  # again would truncate it (dropping its unwritten pages), and ext4 then starts the new file's
  # writeback inside close() (auto_da_alloc, its guard for files replaced by truncation): 6% of
  # egressd's wall in paired rounds, a cost of reusing the name rather than of the replay. Left
  # behind, the file's dirty pages would be written back during the next tool's run.
  rm -f "$cache/logs/egressd.json"
  t0=$EPOCHREALTIME
  rc=0
  /usr/bin/time -o "$tf" -f '%e %M %U %S' "${argv[@]}" >"$log" 2>&1 || rc=$?
  t1=$EPOCHREALTIME
  rm -f "$cache/logs/egressd.json"
  if ((rc != 0)); then
    echo "run.sh: $tool failed (exit $rc) on $f; last lines of $log:" >&2
    tail -n 5 "$log" >&2
    echo "fail $rc"
    return
  fi
  awk -v a="$t0" -v b="$t1" '{ printf "%.4f %d %.2f\n", b - a, $2, $3 + $4 }' "$tf"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A walls rss cpus base_rss failed
for t in "${tools[@]}"; do walls[$t]='' rss[$t]='' cpus[$t]='' failed[$t]=''; done

active=()
for t in "${tools[@]}"; do
  if [[ $t == egressd* ]] && ((!have_egressd)); then continue; fi
  active+=("$t")
done

for t in "${active[@]}"; do
  say "baseline: $t on the one-packet capture"
  read -r w k _ < <(measure "$t" "$tiny")
  if [[ $w == fail ]]; then failed[$t]="fails on 1 packet (exit $k)"; continue; fi
  base_rss[$t]=$k
done

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
raw=$cache/logs/last-run.tsv
printf 'round\ttool\twall_s\tpeak_rss_kb\tcpu_s\n' >"$raw"
for ((r = 1; r <= rounds; r++)); do
  for t in "${active[@]}"; do
    [[ -z ${failed[$t]} ]] || continue
    say "round $r/$rounds: $t"
    read -r w k c < <(measure "$t" "$capture")
    if [[ $w == fail ]]; then failed[$t]="failed (exit $k)"; continue; fi
    walls[$t]+="$w "
    rss[$t]+="$k "
    cpus[$t]+="$c "
    printf '%d\t%s\t%s\t%s\t%s\n' "$r" "$t" "$w" "$k" "$c" >>"$raw"
  done
done

# egressd's own flow count, from the stats event that ends its output (one more, untimed run).
egressd_flows=
if ((have_egressd)) && [[ -z ${failed[egressd]} ]]; then
  say "counting flows with egressd"
  egressd_flows=$("$egressd" -c "$egressd_cfg" -r "$capture" --json - 2>/dev/null \
    | grep -E '"event_type" *: *"stats"' | tail -n 1 \
    | python3 -c 'import json,sys
line = sys.stdin.read().strip()
try:
    print(int(json.loads(line)["stats"]["flow"]["created"]) if line else "")
except (ValueError, KeyError, TypeError):
    print("")' || true)
fi

# --- report ------------------------------------------------------------------------------------
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
ndpi_ver=$(ndpiReader -h 2>&1 | awk '/nDPI [0-9]/ { for (i = 1; i <= NF; i++) if (!v && $i ~ /^[0-9]+\.[0-9]/) v = $i } END { print v }')
sf_ver=$(dpkg-query -W -f '${Version}' softflowd 2>/dev/null || echo '?')
pcap_ver=$(dpkg-query -W -f '${Version}' libpcap0.8 2>/dev/null || echo '?')

echo "## Benchmark run $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "- machine: $(nproc) CPUs, ${cpu:-unknown CPU}, $(uname -sr), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "- capture: \`$capture\`: $cap_pkts packets, $cap_bytes packet bytes ($cap_file_bytes bytes on disk), $cap_flows flows (ndpiReader)"
echo "- rounds: $rounds, tools alternated round-robin; each value is the median of the rounds"
echo "- load average (1/5/15 min) before the rounds: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- versions: nDPI ${ndpi_ver:-?}, softflowd $sf_ver, libpcap $pcap_ver"
cmds="\`$(show_cmd egressd)\`"
((nworkers > 1)) && cmds+=", \`$(show_cmd egressdN)\`"
echo "- egressd configuration: \`$egressd_cfg\` ($geo_state)"
echo "- commands: $cmds, \`$(show_cmd ndpiReader)\`, \`$(show_cmd softflowd)\`, \`$(show_cmd floor)\`"
echo
echo "| tool | wall s | CPU s | Mpkt/s | Gbit/s | peak RSS MiB | bytes/flow | vs ndpiReader | vs softflowd |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"

ndpi_wall=$(tr ' ' '\n' <<<"${walls[ndpiReader]}" | sed '/^$/d' | median)
ndpi_cpu=$(tr ' ' '\n' <<<"${cpus[ndpiReader]}" | sed '/^$/d' | median)
sf_wall=$(tr ' ' '\n' <<<"${walls[softflowd]}" | sed '/^$/d' | median)
sf_cpu=$(tr ' ' '\n' <<<"${cpus[softflowd]}" | sed '/^$/d' | median)
label() { if [[ $1 == egressdN ]]; then echo "egressd --workers $nworkers"; else echo "$1"; fi; }
for t in "${tools[@]}"; do
  if [[ $t == egressd* ]] && ((!have_egressd)); then
    echo "| $(label "$t") | not built ($egressd) | | | | | | | |"
    continue
  fi
  if [[ -n ${failed[$t]} ]]; then
    echo "| $(label "$t") | ${failed[$t]} | | | | | | | |"
    continue
  fi
  w=$(tr ' ' '\n' <<<"${walls[$t]}" | sed '/^$/d' | median)
  k=$(tr ' ' '\n' <<<"${rss[$t]}" | sed '/^$/d' | median)
  c=$(tr ' ' '\n' <<<"${cpus[$t]}" | sed '/^$/d' | median)
  flows=$cap_flows
  [[ $t == egressd* && -n $egressd_flows ]] && flows=$egressd_flows
  # The floor tracks no flows: a bytes/flow figure for it would be noise.
  track=1; [[ $t == floor ]] && track=0
  awk -v t="$t" -v w="$w" -v c="$c" -v k="$k" -v b="${base_rss[$t]:-0}" -v p="$cap_pkts" -v by="$cap_bytes" \
      -v f="$flows" -v nw="$ndpi_wall" -v nc="$ndpi_cpu" -v track="$track" -v note="$([[ $t == egressd* && -n $egressd_flows ]] && echo ' (own count)')" \
      -v sw="$sf_wall" -v sc="$sf_cpu" -v name="$(label "$t")" '
    BEGIN {
      bpf = track && f > 0 ? sprintf("%.0f%s", (k - b) * 1024 / f, note) : "-"
      vs = nw > 0 ? sprintf("%.2fx", nw / w) : "-"
      if (nw > 0 && nc > 0 && c > 0) vs = vs sprintf(" (CPU %.2fx)", nc / c)
      vsf = sw > 0 ? sprintf("%.2fx", w / sw) : "-"
      if (sw > 0 && sc > 0) vsf = vsf sprintf(" (CPU %.2fx)", c / sc)
      printf "| %s | %.3f | %.2f | %.2f | %.2f | %.1f | %s | %s | %s |\n", name, w, c, p / w / 1e6, by * 8 / w / 1e9, k / 1024, bpf, vs, vsf
    }'
done
echo
echo "CPU s: user + system CPU time of the process (steadier than wall time when the machine is busy)."
echo "vs ndpiReader: ndpiReader's wall time divided by the tool's (above 1 = faster than ndpiReader); in brackets the same for CPU time."
echo "vs softflowd: the tool's wall time divided by softflowd's (below 1 = faster than softflowd); in brackets the same for CPU time."
# The targets of docs/benchmarks.md, from this run's medians.
med() { tr ' ' '\n' <<<"${walls[$1]:-}" | sed '/^$/d' | median; }
medc() { tr ' ' '\n' <<<"${cpus[$1]:-}" | sed '/^$/d' | median; }
e1=$(med egressd) e1c=$(medc egressd)
if [[ -n $e1 && -n $ndpi_wall && -n $sf_wall ]]; then
  awk -v e="$e1" -v n="$ndpi_wall" -v s="$sf_wall" 'BEGIN {
    printf "Ratios (one worker): %.2fx faster than ndpiReader (target >= 3), %.2fx softflowd'"'"'s wall (target <= 1.25).\n", n / e, e / s }'
fi
if ((nworkers > 1)); then
  eN=$(med egressdN) eNc=$(medc egressdN)
  [[ -n $e1 && -n $eN ]] && awk -v a="$e1" -v b="$eN" -v ac="$e1c" -v bc="$eNc" -v n="$nworkers" 'BEGIN {
    printf "Workers: --workers %d is %.2fx faster than one worker by wall (target >= 1.6 at 2 on two cores), CPU %.2fx of one worker'"'"'s.\n", n, a / b, bc / ac }'
fi
echo "peak RSS MiB: maximum resident set size from time(1), in MiB (1,048,576 bytes)."
echo "bytes/flow: (peak RSS - peak RSS on a one-packet capture) / flows; ndpiReader's flow count unless marked."
base_line=
for t in "${active[@]}"; do
  [[ -n ${base_rss[$t]:-} ]] && base_line+="$t $(awk -v k="${base_rss[$t]}" 'BEGIN { printf "%.1f", k / 1024 }') MiB, "
done
echo "One-packet baseline peak RSS: ${base_line%, }."
echo "Raw per-round values: $raw"

#!/usr/bin/env bash
# Worker scaling of the sensor side: records/s and packets/s with 1, 2 and 4 workers feeding one
# shared sensor (policy, alert state, JSON sink, optionally Redis), each worker replaying the
# benchmark capture from memory as fast as it can (bench/sensor-scale.c). Every worker does the
# same work, so with enough cores the wall time stays flat as workers are added and the rates grow
# with them; what a shared lock on the record path would cost shows as a rate that stops growing
# before the cores run out. Rounds alternate the worker counts; each cell is the median.
#
# Usage: bench/workers.sh [--capture FILE] [--workers "1 2 4"] [--config FILE] [--redis]
#   --capture FILE  default: the small benchmark capture (bench/make-capture.sh --quick)
#   --config FILE   default: sensors/demo.yaml (a policy with roles, intel and exfiltration)
#   --redis         also write everything to a private redis-server (unix socket)
# Env: ROUNDS (default 3), BUILD (default <repo>/build-release, configured Release here)
#
# Prints machine information and a Markdown table on stdout; progress on stderr.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=$here/.cache
build=${BUILD:-$repo/build-release}
rounds=${ROUNDS:-3}
capture= workers="1 2 4" config=$repo/sensors/demo.yaml redis=0
while (($#)); do
  case "$1" in
    --capture) capture=${2:?}; shift ;;
    --workers) workers=${2:?}; shift ;;
    --config) config=${2:?}; shift ;;
    --redis) redis=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "workers.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
say() { echo "workers.sh: $*" >&2; }

say "building $build (Release)"
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release -DEGRESSD_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target egressd_core >/dev/null
mkdir -p "$cache"
bin=$cache/sensor-scale
if [[ ! -x $bin || $here/sensor-scale.c -nt $bin || $build/libegressd_core.a -nt $bin ]]; then
  say "compiling $bin"
  # shellcheck disable=SC2046
  cc -O2 -Wall -Wextra -I"$repo/include" -o "$bin" "$here/sensor-scale.c" "$build/libegressd_core.a" \
    $(pkg-config --libs libpcap libndpi libmaxminddb hiredis libevent yaml-0.1 libgcrypt) \
    -lpthread -lm
fi
[[ -n $capture ]] || capture=$("$here/make-capture.sh" --quick | tail -n 1)
cat "$capture" >/dev/null

# The JSON file goes to memory (/dev/shm) where there is one: a virtual disk's write-back of a few
# hundred MB per round is otherwise what is measured, not the workers.
work=$(mktemp -d -p "$( [[ -d /dev/shm && -w /dev/shm ]] && echo /dev/shm || echo "${TMPDIR:-/tmp}")")
rpid=
cleanup() { [[ -n $rpid ]] && kill "$rpid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
url=()
if ((redis)); then
  redis-server --port 0 --unixsocket "$work/redis.sock" --save "" --appendonly no \
    --daemonize no >"$work/redis.log" 2>&1 &
  rpid=$!
  for _ in $(seq 50); do [[ -S $work/redis.sock ]] && break; sleep 0.1; done
  url=("unix://$work/redis.sock")
fi
# The config's relative paths (intel lists) resolve against its own directory.
cfg=$config

declare -A wall pk rec al
for r in $(seq "$rounds"); do
  for n in $workers; do
    say "round $r: $n workers"
    [[ ${#url[@]} -gt 0 ]] && redis-cli -s "$work/redis.sock" flushall >/dev/null
    read -r _ p rc a s < <("$bin" "$cfg" "$capture" "$n" "$work/eve.json" "${url[@]}")
    wall[$n]+="$s "
    pk[$n]=$p rec[$n]=$rc al[$n]=$a
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "## Worker scaling (bench/workers.sh)"
echo
echo "- $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "- capture: $(basename "$capture"), $(capinfos -c -M "$capture" | sed -n 's/.*packets: *//p') packets per worker"
echo "- config: ${config#"$repo"/}; sinks: JSON file$( ((redis)) && echo ' + Redis (unix socket)'); rounds: $rounds (median)"
echo
echo "| workers | wall s | packets/s | records/s | alerts | vs 1 worker |"
echo "|---:|---:|---:|---:|---:|---:|"
base=
for n in $workers; do
  w=$(echo "${wall[$n]}" | median)
  pps=$(awk -v p="${pk[$n]}" -v w="$w" 'BEGIN {printf "%.0f", p / w}')
  rps=$(awk -v p="${rec[$n]}" -v w="$w" 'BEGIN {printf "%.0f", p / w}')
  [[ -n $base ]] || base=$rps
  x=$(awk -v a="$rps" -v b="$base" 'BEGIN {printf "%.2fx", a / b}')
  echo "| $n | $w | $pps | $rps | ${al[$n]} | $x |"
done

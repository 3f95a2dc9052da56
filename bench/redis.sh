#!/usr/bin/env bash
# Redis sink benchmark: how fast egressd pushes records into a local Redis, and what writing to
# Redis costs a replay. Replays one capture without Redis, then with Redis over TCP, over a unix
# socket, over TCP without aggregates (redis.aggregate_ttl 0: the XADD alone), and with Redis
# unreachable and no spool, with a named spool under each redis.spool_fsync policy (no,
# everysec, always), and with Redis unreachable and no spool (the memory queue fills to its bound, redis.queue_max_records /
# queue_max_bytes, and the rest is dropped: its peak RSS is the memory of a full queue), each
# ROUNDS times round-robin; each value is the median. A private redis-server (--save ""
# --appendonly no) runs in a temporary directory on a free port and is emptied before every run.
# Prints a Markdown table on stdout; progress goes to stderr.
#
# Usage: bench/redis.sh [--quick] [--capture FILE]
#   --quick          the small capture (bench/.cache/bench-small.pcap, made if missing)
#   --capture FILE   measure on FILE
# Default capture: bench/.cache/bench.pcap (see bench/run.sh and bench/make-capture.sh), made if
# missing.
# Env:
#   ROUNDS       rounds per configuration (default 3)
#   EGRESSD_BIN  egressd binary (default <repo>/build-release/egressd; it must know --redis)
#
# Never part of the test suite: the full capture takes a few minutes.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=$here/.cache
rounds=${ROUNDS:-3}
egressd=${EGRESSD_BIN:-$repo/build-release/egressd}

quick=0 capture=
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --capture) capture=${2:?--capture needs a FILE}; shift ;;
    --capture=*) capture=${1#--capture=} ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "redis.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "redis.sh: ROUNDS must be a positive integer" >&2; exit 2; }
say() { echo "redis.sh: $*" >&2; }

[[ -x $egressd ]] || { echo "redis.sh: no egressd at $egressd (build it, or set EGRESSD_BIN)" >&2; exit 1; }
"$egressd" --help | grep -q -- --redis ||
  { echo "redis.sh: $egressd has no --redis option: rebuild it" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis.sh: redis-server is not installed" >&2; exit 1; }
command -v redis-cli >/dev/null || { echo "redis.sh: redis-cli is not installed" >&2; exit 1; }

if [[ -z $capture ]]; then
  if ((quick)); then capture=$("$here/make-capture.sh" --quick | tail -n 1)
  else capture=$("$here/make-capture.sh" | tail -n 1); fi
fi
[[ -r $capture ]] || { echo "redis.sh: cannot read capture '$capture'" >&2; exit 1; }

# --- the server --------------------------------------------------------------------------------
dir=$(mktemp -d "${TMPDIR:-/tmp}/egressd-bench-redis.XXXXXX")
pid=
cleanup() {
  if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sock=$dir/redis.sock
redis-server --port "$port" --bind 127.0.0.1 --unixsocket "$sock" --unixsocketperm 700 \
  --dir "$dir" --save "" --appendonly no --daemonize no --logfile "$dir/redis.log" &
pid=$!
for _ in $(seq 100); do
  redis-cli -p "$port" ping >/dev/null 2>&1 && break
  sleep 0.05
done
redis-cli -p "$port" ping >/dev/null || { echo "redis.sh: redis-server did not start" >&2; exit 1; }
redis_ver=$(redis-server --version | awk '{ print $3 }' | sed 's/v=//')

# Streams trimmed as configured by default; no geo databases so only Redis differs.
cat >"$dir/base.yaml" <<'EOF'
geoip:
  country_db: ""
  asn_db: ""
EOF
cat >"$dir/noagg.yaml" <<'EOF'
geoip:
  country_db: ""
  asn_db: ""
redis:
  aggregate_ttl: 0
EOF
cat >"$dir/down.yaml" <<'EOF'
geoip:
  country_db: ""
  asn_db: ""
redis:
  spool_max_bytes: 0
  drain_timeout: 0
EOF
# A named spool (write-ahead: every record is written to it before it counts) under each
# redis.spool_fsync policy, Redis up: what crash safety costs.
for policy in no everysec always; do
  cat >"$dir/spool-$policy.yaml" <<EOF
geoip:
  country_db: ""
  asn_db: ""
redis:
  spool_dir: $dir/spool-$policy
  spool_fsync: $policy
EOF
done
dead_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

cat "$capture" >/dev/null # page cache

configs=(none tcp unix tcp-noagg spool-no spool-everysec spool-always down)
cmd_argv() {
  case "$1" in
    none) argv=("$egressd" -r "$capture" --json "$dir/out.json" -c "$dir/base.yaml") ;;
    tcp) argv=("$egressd" -r "$capture" --json "$dir/out.json" -c "$dir/base.yaml" --redis "redis://127.0.0.1:$port") ;;
    unix) argv=("$egressd" -r "$capture" --json "$dir/out.json" -c "$dir/base.yaml" --redis "unix://$sock") ;;
    tcp-noagg) argv=("$egressd" -r "$capture" --json "$dir/out.json" -c "$dir/noagg.yaml" --redis "redis://127.0.0.1:$port") ;;
    down) argv=("$egressd" -r "$capture" --json "$dir/out.json" -c "$dir/down.yaml" --redis "redis://127.0.0.1:$dead_port") ;;
    spool-*) argv=("$egressd" -r "$capture" --json "$dir/out.json" -c "$dir/$1.yaml" --redis "redis://127.0.0.1:$port") ;;
  esac
}

# run config -> "wall_s records sent dropped cpu_s rss_mib"
run() {
  local -a argv
  cmd_argv "$1"
  redis-cli -p "$port" flushall >/dev/null
  # A fresh output file each run: truncating the last run's costs ext4 work of its own (see
  # bench/run.sh); it is removed once its counts are read.
  rm -f "$dir/out.json"
  local t0 t1 rc=0
  t0=$EPOCHREALTIME
  /usr/bin/time -o "$dir/time" -f '%U %S %M' "${argv[@]}" 2>"$dir/err" || rc=$?
  t1=$EPOCHREALTIME
  # Unreachable Redis: exit 1 (records not delivered) is the expected outcome.
  if ((rc != 0)) && ! [[ $1 == down && $rc == 1 ]]; then
    echo "redis.sh: $1 failed (exit $rc):" >&2
    tail -n 3 "$dir/err" >&2
    echo "fail"
    return
  fi
  local counts
  counts=$(tail -n 1 "$dir/out.json" | python3 -c 'import json, sys
s = json.loads(sys.stdin.read())["stats"]
r = s.get("redis", {})
print(sum(s["flow"]["records"].values()), r.get("sent", 0), r.get("dropped", 0))')
  rm -f "$dir/out.json"
  tail -n 1 "$dir/time" | awk -v a="$t0" -v b="$t1" -v c="$counts" '{ printf "%.3f %s %.2f %.1f\n", b - a, c, $1 + $2, $3 / 1024 }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A walls cpus rsss recs sent drops
for c in "${configs[@]}"; do walls[$c]='' cpus[$c]='' rsss[$c]=''; done
for ((r = 1; r <= rounds; r++)); do
  for c in "${configs[@]}"; do
    say "round $r/$rounds: $c"
    read -r w n s d cp m < <(run "$c")
    [[ $w == fail ]] && exit 1
    walls[$c]+="$w " cpus[$c]+="$cp " rsss[$c]+="$m " recs[$c]=$n sent[$c]=$s drops[$c]=$d
  done
done

cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "## Redis sink benchmark $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "- machine: $(nproc) CPUs, ${cpu:-unknown CPU}, $(uname -sr)"
echo "- capture: \`$capture\` ($(stat -c %s "$capture") bytes), ${recs[none]} flow records"
echo "- redis-server $redis_ver on the same machine, --save \"\" --appendonly no; rounds: $rounds (median)"
echo "- egressd: \`$egressd\`"
echo
echo "| configuration | wall s | CPU s (egressd) | peak RSS MiB | records in Redis | records/s | wall vs no Redis |"
echo "|---|---|---|---|---|---|---|"
base=$(tr ' ' '\n' <<<"${walls[none]}" | grep . | median)
for c in "${configs[@]}"; do
  w=$(tr ' ' '\n' <<<"${walls[$c]}" | grep . | median)
  cp=$(tr ' ' '\n' <<<"${cpus[$c]}" | grep . | median)
  m=$(tr ' ' '\n' <<<"${rsss[$c]}" | grep . | median)
  if [[ $c == none ]]; then
    printf '| %s | %.2f | %.2f | %.1f | - | %.0f (replay only) | 1.00x |\n' "$c" "$w" "$cp" "$m" \
      "$(awk -v n="${recs[$c]}" -v w="$w" 'BEGIN { print n / w }')"
  elif [[ $c == down ]]; then
    printf '| %s | %.2f | %.2f | %.1f | 0 (queue full at its bound; %s dropped) | - | %.2fx |\n' "$c" "$w" \
      "$cp" "$m" "${drops[$c]}" "$(awk -v a="$w" -v b="$base" 'BEGIN { print a / b }')"
  else
    note=
    [[ ${sent[$c]} == "${recs[$c]}" ]] || note=" (of ${recs[$c]}!)"
    printf '| %s | %.2f | %.2f | %.1f | %s%s | %.0f | %.2fx |\n' "$c" "$w" "$cp" "$m" "${sent[$c]}" "$note" \
      "$(awk -v n="${sent[$c]}" -v w="$w" 'BEGIN { print n / w }')" \
      "$(awk -v a="$w" -v b="$base" 'BEGIN { print a / b }')"
  fi
done
echo
echo "records/s counts records acknowledged by Redis over the whole run, end-of-run drain included."
echo "Each record is one XADD; with aggregates, the sums of about a second (or of a full table) follow"
echo "as one command per distinct member plus an EXPIRE per key. CPU s adds egressd's threads (the"
echo "sink's I/O thread included); redis-server runs on the same CPUs. down: Redis unreachable, no"
echo "spool: the memory queue holds redis.queue_max_records / queue_max_bytes (100000 / 64 MiB)."
echo "spool-*: redis.spool_dir set (in \$TMPDIR), so every record is appended to the spool by its"
echo "worker before it counts, and released once Redis acknowledged it; spool_fsync no / everysec"
echo "(an fdatasync a second from the I/O thread) / always (an fdatasync per batch on the packet path)."

#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine (run as root so missing packages
# get installed): build egressd, write the project's demo capture (a small
# datacenter-edge scenario, see docs/pktgen.md), replay it with the bundled
# demo policy (sensors/demo.yaml) into a private Redis, show the flow records
# and alerts, and serve the live dashboard (docs/dashboard.md) on 127.0.0.1
# until Ctrl-C, which stops everything this script started.
#   scripts/demo.sh                 the whole story
#   scripts/demo.sh --no-dashboard  replay and summary only (no Redis)
# Output files: build/demo/demo.pcap and build/demo/eve.json.
set -euo pipefail
cd "$(dirname "$0")/.."
dashboard=1
case "${1:-}" in
  --no-dashboard) dashboard=0 ;;
  "") ;;
  *) echo "usage: scripts/demo.sh [--no-dashboard]" >&2; exit 2 ;;
esac
scripts/deps.sh
# The default GeoIP/ASN databases (country, ASN of destinations; idempotent).
scripts/geoip-db.sh >/dev/null || echo "demo.sh: GeoIP databases not installed: countries and ASNs are left out" >&2
need=()
command -v python3 >/dev/null || need+=(python3)
((dashboard)) && ! command -v redis-server >/dev/null && need+=(redis-server)
if ((${#need[@]})); then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
jobs=$(nproc)
targets=(egressd egressd-pktgen)
((dashboard)) && targets+=(egressd-dashboard)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEGRESSD_TESTS=OFF >/dev/null
cmake --build build -j "$jobs" --target "${targets[@]}" >/dev/null
mkdir -p build/demo
build/egressd-pktgen demo build/demo/demo.pcap

if ((!dashboard)); then
  build/egressd -c sensors/demo.yaml -r build/demo/demo.pcap --json build/demo/eve.json
  python3 scripts/eve-summary.py build/demo/eve.json
  echo
  echo "EVE JSON records: build/demo/eve.json (fields: docs/eve-format.md)"
  exit 0
fi

# Everything started below is stopped on any exit: Ctrl-C, an error, or the end.
tmp=$(mktemp -d /tmp/egressd-demo.XXXXXX)
pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

sock=$tmp/redis.sock
redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 --dir "$tmp" \
  --save '' --appendonly no --daemonize no --logfile "$tmp/redis.log" &
pids+=($!)
for _ in $(seq 100); do
  [[ -S "$sock" ]] && break
  sleep 0.05
done
[[ -S "$sock" ]] || { echo "demo.sh: redis-server did not start; $tmp/redis.log:" >&2; cat "$tmp/redis.log" >&2; exit 1; }

build/egressd -c sensors/demo.yaml -r build/demo/demo.pcap --json build/demo/eve.json \
  --redis "unix://$sock"
python3 scripts/eve-summary.py build/demo/eve.json
echo
echo "EVE JSON records: build/demo/eve.json (fields: docs/eve-format.md)"

# 8080 if it is free, else any free port.
port=$(python3 -c '
import socket
for p in (8080, 0):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        print(s.getsockname()[1])
        break
    except OSError:
        pass
    finally:
        s.close()')
build/egressd-dashboard --redis "unix://$sock" --listen "127.0.0.1:$port" --static dashboards \
  2>"$tmp/dashboard.log" &
pids+=($!)
for _ in $(seq 100); do
  python3 -c "import urllib.request,sys; sys.exit(0 if b'\"redis\":true' in urllib.request.urlopen('http://127.0.0.1:$port/healthz', timeout=1).read() else 1)" \
    2>/dev/null && break
  sleep 0.1
done
echo
echo "Dashboard: http://127.0.0.1:$port/  (the demo's alerts are on it; Ctrl-C stops Redis and the dashboard)"
wait "${pids[-1]}" || { echo "demo.sh: the dashboard stopped:" >&2; cat "$tmp/dashboard.log" >&2; exit 1; }

#!/usr/bin/env bash
# Alert latency from the wire to the JSON file, the Redis stream and the pub/sub channel, live, under
# a background load (bench/latency.py). Builds the release binary first.
# Usage: bench/latency.sh [--pps N] [--probes N] [--rate R] [--workers N] [--capture FILE]
# Needs root, ip, tcpreplay, redis-server; takes about half a minute; never part of the test suite.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
build=${BUILD:-$repo/build-release}
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release -DEGRESSD_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target egressd >/dev/null
[[ -f $here/.cache/bench-small.pcap ]] || "$here/make-capture.sh" --quick >/dev/null
exec python3 "$here/latency.py" --egressd "$build/egressd" "$@"

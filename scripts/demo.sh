#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine (run as root so missing packages
# get installed): build egressd, write the project's demo capture (a small
# datacenter-edge scenario, see docs/pktgen.md), replay it with the bundled
# demo policy (sensors/demo.yaml) and show the flow records and alerts.
# Output files: build/demo/demo.pcap and build/demo/eve.json.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
# The default GeoIP/ASN databases (pinned npm packages; idempotent): the
# alerts show each destination's country and AS.
scripts/geoip-db.sh
command -v python3 >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 >/dev/null; }
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEGRESSD_TESTS=OFF >/dev/null
cmake --build build -j "$jobs" --target egressd egressd-pktgen >/dev/null
mkdir -p build/demo
build/egressd-pktgen demo build/demo/demo.pcap
build/egressd -c sensors/demo.yaml -r build/demo/demo.pcap --json build/demo/eve.json
python3 scripts/eve-summary.py build/demo/eve.json
echo
echo "EVE JSON records: build/demo/eve.json (fields: docs/eve-format.md)"

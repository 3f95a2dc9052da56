#!/usr/bin/env bash
# Installs the Debian 12 packages egressd needs to build, run and test.
# Idempotent: packages already installed are skipped, and apt-get runs only
# when something is missing. Needs root for the install step.
#   scripts/deps.sh          build + run dependencies
#   scripts/deps.sh --test   also the test-suite dependencies
set -euo pipefail

pkgs=(build-essential cmake pkg-config
      libpcap-dev libndpi-dev libmaxminddb-dev libhiredis-dev libevent-dev
      libyaml-dev libgcrypt20-dev)
if [[ "${1:-}" == "--test" ]]; then
  # cmocka for unit tests; clang + compiler-rt for the libFuzzer target;
  # ndpiReader (libndpi-bin), tshark, mmdb-bin and redis-server as real peers
  # and references; python3 drives end-to-end checks; iproute2 (network
  # namespaces), libcap2-bin (file capabilities) and debootstrap (the
  # container image's runtime stage, tests/e2e/test_image.py) for the
  # live-capture and deployment tests; redis-tools for redis-cli --cluster
  # create, which joins the local Redis Cluster of tests/e2e/test_redis_cluster.py;
  # python3-jsonschema checks every EVE event against Suricata's own schema
  # (tests/e2e/test_eve_schema.py); fever (DCSO's EVE processor) reads
  # egressd's EVE events from Redis as it reads Suricata's
  # (tests/e2e/test_fever.py); docker.io and docker-compose build and run the
  # image and the compose file (tests/e2e/test_docker.py, which starts a
  # dockerd of its own); curl fetches the test corpus
  # (scripts/get-test-corpus.py) on a machine without ../shared.
  pkgs+=(libcmocka-dev clang libclang-rt-14-dev libndpi-bin tshark mmdb-bin
         redis-server redis-tools python3 python3-yaml tcpreplay libmaxmind-db-writer-perl systemd
         iproute2 libcap2-bin debootstrap binutils python3-jsonschema fever
         docker.io docker-compose curl)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "deps.sh: missing Debian packages: ${missing[*]}; run as root to install them" >&2
  exit 1
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

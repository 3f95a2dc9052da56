#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (run as root so
# missing packages get installed):
#   1. release build with -Werror, ctest (unit + end-to-end);
#   2. AddressSanitizer + UBSan build, the same ctest suite;
#   3. libFuzzer targets, seeded from ../shared/pcaps, FUZZ_SECONDS each (30; longer runs by hand).
# Ends with one line "N passed, N failed, N skipped" over all ctest runs and
# fuzz targets (a test skips, exit 77, when it lacks the corpus or dockerd).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
shared=$(cd .. && pwd)/shared
scripts/deps.sh --test
if [[ ! -e "$shared" ]]; then
  # A fresh machine: fetch the corpus (pinned, checked); without network the
  # tests that need no corpus still run and ctest reports the others as
  # skipped.
  scripts/get-test-corpus.py --dest "$shared" ||
    echo "test.sh: no test corpus at $shared: the tests that need it are skipped" >&2
fi
# Default GeoIP/ASN databases (npm packages, pinned; idempotent).
scripts/geoip-db.sh
scripts/browser-deps.sh # chromium + pinned playwright-core for tests/e2e/test_dashboard.py
jobs=$(nproc)
fuzz_seconds=${FUZZ_SECONDS:-30}
passed=0
failed=0
skipped=0

run_ctest() { # $1 build dir, $2 label
  local log="$1/ctest.log" rc=0
  ctest --test-dir "$1" --output-on-failure -j "$jobs" 2>&1 | tee "$log" || rc=$?
  local total fails
  total=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -n1)
  fails=$(sed -n 's/.* \([0-9]*\) tests failed out of.*/\1/p' "$log" | tail -n1)
  total=${total:-0}
  fails=${fails:-1}
  if ((rc != 0 && fails == 0)); then fails=1; fi
  # A skipped test (exit 77: no corpus, no dockerd) is not a pass.
  local skips
  skips=$(grep -c '\*\*\*Skipped' "$log" || true)
  passed=$((passed + total - fails - skips))
  failed=$((failed + fails))
  skipped=$((skipped + skips))
  echo "== $2: $((total - fails - skips)) of $total passed, $skips skipped"
}

echo "== release build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEGRESSD_WERROR=ON -DEGRESSD_TESTS=ON >/dev/null
cmake --build build -j "$jobs" >/dev/null
run_ctest build "release"

echo "== ASan + UBSan build"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DEGRESSD_WERROR=ON -DEGRESSD_SANITIZE=ON -DEGRESSD_TESTS=ON >/dev/null
cmake --build build-asan -j "$jobs" >/dev/null
run_ctest build-asan "asan+ubsan"

echo "== libFuzzer targets (${fuzz_seconds} s each)"
CC=clang cmake -S . -B build-fuzz -DEGRESSD_FUZZ=ON -DEGRESSD_TESTS=OFF -DEGRESSD_WERROR=ON >/dev/null
cmake --build build-fuzz -j "$jobs" >/dev/null
seeds=build-fuzz/seeds
rm -rf "$seeds" && mkdir -p "$seeds"
pcaps=("$shared"/pcaps/*.pcap "$shared"/pcaps/*.pcapng)
if [[ -e "${pcaps[0]}" ]]; then
  build-fuzz/fuzz-seeds "$seeds" 40 "${pcaps[@]}"
fi  # without a corpus the targets start from nothing
for target in build-fuzz/fuzz_*; do
  [[ -x "$target" ]] || continue
  name=${target##*/}
  corpus=build-fuzz/corpus-$name
  mkdir -p "$corpus"
  # Packet seeds, except for the list parsers: the shipped lists, a
  # callers file.
  seed_dir=$seeds
  [[ $name == fuzz_intel ]] && seed_dir=sensors/intel
  [[ $name == fuzz_callers ]] && seed_dir=tests/fuzz/callers-seeds
  if [[ $name == fuzz_pcap_file ]]; then
    # Whole capture files: the corpus's small ones.
    seed_dir=build-fuzz/pcap-seeds
    rm -rf "$seed_dir" && mkdir -p "$seed_dir"
    find "$shared/pcaps" -maxdepth 1 -name '*.pcap' -size -16k -exec cp {} "$seed_dir/" \; 2>/dev/null || true
  fi
  if "$target" -max_total_time="$fuzz_seconds" -rss_limit_mb=4096 -print_final_stats=1 \
      -artifact_prefix="build-fuzz/$name-" "$corpus" "$seed_dir" >"build-fuzz/$name.log" 2>&1; then
    echo "== fuzz $name: ok ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "build-fuzz/$name.log" | grep -o '[0-9]*$') runs)"
    passed=$((passed + 1))
  else
    echo "== fuzz $name: FAILED, see build-fuzz/$name.log" >&2
    tail -n 40 "build-fuzz/$name.log" >&2
    failed=$((failed + 1))
  fi
done

echo "$passed passed, $failed failed, $skipped skipped"
((failed == 0))

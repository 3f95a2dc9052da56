#!/usr/bin/env bash
# Builds the benchmark capture once, from the shared test captures, with
# ../shared/bench/make-bench-capture.sh, and leaves it in bench/.cache/ (gitignored). A capture
# already there is reused when its size is plausible, so a second call costs nothing.
#
# Usage: bench/make-capture.sh [--quick] [--force]
#   --quick   the small smoke capture (COPIES=2) in bench/.cache/bench-small.pcap
#   --force   rebuild even if a plausible capture exists
# Env: EGRESSD_SHARED (default <repo>/../shared), COPIES (default 24, or 2 with --quick).
# Prints the path of the capture on the last line of stdout.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
shared=${EGRESSD_SHARED:-$repo/../shared}
cache=$here/.cache

quick=0 force=0
for a in "$@"; do
  case "$a" in
    --quick) quick=1 ;;
    --force) force=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "make-capture.sh: unknown option '$a'" >&2; exit 2 ;;
  esac
done

if ((quick)); then
  out=$cache/bench-small.pcap copies=${COPIES:-2}
  min_bytes=$((20 * 1000 * 1000))     # ~51 MB for 2 copies
else
  out=$cache/bench.pcap copies=${COPIES:-24}
  min_bytes=$((500 * 1000 * 1000))    # ~612 MB for 24 copies
fi
# A custom COPIES scales the expected size; anything much smaller than that is a broken build
# (an interrupted mergecap leaves a truncated file), not a capture to measure.
if [[ -n ${COPIES:-} ]]; then min_bytes=$((copies * 20 * 1000 * 1000)); fi

gen=$shared/bench/make-bench-capture.sh
if [[ ! -d $shared/pcaps || ! -f $gen ]]; then
  echo "make-capture.sh: shared data not found at '$shared' (need pcaps/ and bench/make-bench-capture.sh);" >&2
  echo "  check out the shared directory beside the repository or set EGRESSD_SHARED" >&2
  exit 1
fi

size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }

if ((!force)) && [[ -f $out ]] && (($(size_of "$out") >= min_bytes)); then
  echo "reusing $out ($(size_of "$out") bytes)" >&2
  echo "$out"
  exit 0
fi

# Tools the generator needs; install the Debian packages once if any is missing.
need_pkgs=()
command -v tcprewrite >/dev/null || need_pkgs+=(tcpreplay)
for t in mergecap editcap capinfos; do
  command -v "$t" >/dev/null || { need_pkgs+=(tshark); break; }
done
if ((${#need_pkgs[@]})); then
  echo "installing ${need_pkgs[*]}" >&2
  if [[ $(id -u) -ne 0 ]]; then
    echo "make-capture.sh: need ${need_pkgs[*]} (apt-get install ${need_pkgs[*]}) and not root" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "${need_pkgs[@]}" >&2
fi

mkdir -p "$cache"
tmp=$out.tmp.$$
trap 'rm -f "$tmp"' EXIT
echo "building $out with $copies copies (this takes a few minutes)" >&2
bash "$gen" "$tmp" "$copies" >&2
if (($(size_of "$tmp") < min_bytes)); then
  echo "make-capture.sh: built capture is only $(size_of "$tmp") bytes (< $min_bytes); not keeping it" >&2
  exit 1
fi
mv -f "$tmp" "$out"
trap - EXIT
echo "$out"

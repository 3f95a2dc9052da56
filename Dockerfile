# egressd container image: Debian 12, built in one stage, run from a slim one.
#
#   docker build -t egressd .
#   docker run --rm -v "$PWD:/data" egressd -r /data/capture.pcap --json /data/eve.json
#
# The build stage installs its packages with the same script as the README
# (scripts/deps.sh). The runtime stage holds only the shared libraries, the
# binary, the shipped configurations and the default GeoIP/ASN databases,
# and runs as an unprivileged user. Live capture (NET_RAW/NET_ADMIN) and a
# health check come with the live-capture work.

FROM debian:12 AS build
WORKDIR /src
COPY . .
RUN scripts/deps.sh \
 && apt-get install -y -qq --no-install-recommends npm libmaxmind-db-writer-perl \
 && cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DEGRESSD_TESTS=OFF \
 && cmake --build /build -j"$(nproc)" --target egressd \
 && EGRESSD_GEOIP_DIR=/geoip scripts/geoip-db.sh /geoip

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap0.8 libndpi4.2 libmaxminddb0 \
      libhiredis0.14 libevent-2.1-7 libyaml-0-2 libgcrypt20 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --no-create-home --shell /usr/sbin/nologin egressd
COPY --from=build /build/egressd /usr/local/bin/egressd
COPY --from=build /geoip /var/lib/egressd/geoip
COPY sensors /etc/egressd
USER egressd
ENTRYPOINT ["/usr/local/bin/egressd"]
CMD ["--help"]

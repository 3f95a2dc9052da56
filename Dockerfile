# egressd container image: Debian 12, built in one stage, run from a slim one.
#
#   docker build -t egressd .
#
# Behind a TLS-intercepting proxy, give the build the proxy's CA so npm,
# which fetches the default GeoIP databases, trusts it: any *.crt (PEM) in
# docker/ca/, e.g. the host's whole bundle (docker/ca/README.md):
#   cp /etc/ssl/certs/ca-certificates.crt docker/ca/host.crt && docker build -t egressd .
# Only the build stage sees them; the image that runs does not carry them.
#
# Replay a capture (no privileges needed). The image runs as the user
# egressd (uid 999), which cannot write into a host directory it does not
# own: write to standard output, or run as yourself:
#   docker run --rm -v "$PWD:/data:ro" egressd -r /data/capture.pcap > eve.json
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/data" egressd \
#     -r /data/capture.pcap --json /data/eve.json
#
# Watch an interface of the host (a mirror port, or the host's own uplink):
#   docker run -d --name egressd --network host \
#     --cap-drop ALL --cap-add NET_RAW --cap-add NET_ADMIN \
#     -v /var/log/egressd:/var/log/egressd -v /var/lib/egressd/spool:/var/lib/egressd/spool \
#     egressd -c /etc/egressd/edge-sidecar.yaml -i eth1 --metrics 127.0.0.1:9100
# (the host directories must be writable by uid 999: chown 999 /var/log/egressd ...).
#
# With Redis and the dashboard: docker-compose.yml. More: README.md (Deployment),
# docs/live.md (privileges, metrics), docs/install.md.
#
# The build stage installs its packages with the same script as the README
# (scripts/deps.sh), in layers of their own so a change to the sources does
# not fetch them again. The runtime stage holds only the shared libraries, the
# programs, the shipped configurations, the dashboard's page and the default
# GeoIP/ASN databases, and runs as the unprivileged user egressd: the binary
# carries CAP_NET_RAW and CAP_NET_ADMIN as permitted file capabilities, which
# it has only when the container is given them (--cap-add). egressd makes
# them effective itself just before opening its captures and gives them up
# right after. (Not "+ep": with the effective bit the kernel refuses to run
# the binary at all in a container lacking one of them, replays included.)

FROM debian:12 AS build
WORKDIR /src
COPY docker/ca/ /usr/local/share/ca-certificates/egressd/
COPY scripts/deps.sh scripts/
RUN scripts/deps.sh \
 && apt-get install -y -qq --no-install-recommends ca-certificates npm libmaxmind-db-writer-perl \
 && update-ca-certificates >/dev/null
COPY scripts/geoip-db.sh scripts/asn-csv-to-mmdb.pl scripts/
RUN npm_config_cafile=/etc/ssl/certs/ca-certificates.crt EGRESSD_GEOIP_DIR=/geoip scripts/geoip-db.sh /geoip
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DEGRESSD_TESTS=OFF \
 && cmake --build /build -j"$(nproc)"

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap0.8 libndpi4.2 libmaxminddb0 \
      libhiredis0.14 libevent-2.1-7 libyaml-0-2 libgcrypt20 libcap2-bin \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --no-create-home --shell /usr/sbin/nologin egressd \
 && install -d -o egressd -g egressd /var/log/egressd /var/lib/egressd/spool
COPY --from=build /build/egressd /build/egressd-dashboard /usr/local/bin/
COPY --from=build /geoip /var/lib/egressd/geoip
COPY dashboards /usr/local/share/egressd/dashboards
COPY sensors /etc/egressd
RUN setcap cap_net_raw,cap_net_admin+p /usr/local/bin/egressd \
 && apt-get purge -y libcap2-bin && apt-get autoremove -y
USER egressd
# /healthz of --metrics (bash's /dev/tcp: no HTTP client in the image).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${EGRESSD_METRICS_PORT:-9100} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/usr/local/bin/egressd"]
CMD ["--help"]

/*
 * pcap-floor: the speed floor for reading a capture file. A bare libpcap loop
 * (pcap_open_offline + pcap_next_ex) that touches the first byte of every packet
 * and sums the captured lengths, so the pages are really read and the loop cannot
 * be optimised away. Nothing that decodes or tracks flows can be faster than this
 * on the same file, which is what bench/run.sh compares every tool against.
 *
 * Built by bench/run.sh with `cc -O2 ... -lpcap` into bench/.cache; not part of
 * the CMake build.
 *
 * Usage: pcap-floor FILE   prints "packets bytes checksum" on stdout.
 */
#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *hdr;
	const u_char *data;
	uint64_t packets = 0, bytes = 0, sum = 0;
	pcap_t *p;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: %s FILE\n", argv[0]);
		return 2;
	}
	p = pcap_open_offline(argv[1], errbuf);
	if (p == NULL) {
		fprintf(stderr, "pcap-floor: %s\n", errbuf);
		return 1;
	}
	while ((rc = pcap_next_ex(p, &hdr, &data)) == 1) {
		packets++;
		bytes += hdr->caplen;
		/* Read the packet itself, not only its header: a sensor always does. */
		if (hdr->caplen > 0)
			sum += data[0];
	}
	if (rc == PCAP_ERROR) {
		fprintf(stderr, "pcap-floor: %s\n", pcap_geterr(p));
		pcap_close(p);
		return 1;
	}
	pcap_close(p);
	printf("%" PRIu64 " %" PRIu64 " %" PRIu64 "\n", packets, bytes, sum);
	return 0;
}

#!/usr/bin/perl
# asn-csv-to-mmdb.pl - converts ip-location-db ASN CSV files (lines of
# start_ip,end_ip,asn,org) into a MaxMind DB shaped like GeoLite2-ASN:
# autonomous_system_number (uint32) and autonomous_system_organization
# (utf8_string), so egressd reads it with the same field rules as a MaxMind
# ASN database. Used by scripts/geoip-db.sh; needs Debian's
# libmaxmind-db-writer-perl.
#
#   asn-csv-to-mmdb.pl [--epoch N] [--source TEXT] OUT.mmdb IN.csv...
#
# --epoch fixes the database's build_epoch (default: now), so the same input
# gives a byte-identical file. The output is written to OUT.mmdb.tmp and
# renamed, so a failed run never leaves a half-written database.
#
# CSV: fields are separated by commas; a field holding a comma or a quote is
# wrapped in double quotes, with "" for a quote inside (RFC 4180). A single
# quote is an ordinary character ("Xi'an"), which is why this is parsed here
# and not with Text::ParseWords.
use strict;
use warnings;

use Getopt::Long qw(GetOptions);
use MaxMind::DB::Writer::Tree;
use Socket qw(inet_pton AF_INET AF_INET6);

my $epoch;
my $source = 'ip-location-db asn';
GetOptions('epoch=i' => \$epoch, 'source=s' => \$source)
    or die "usage: $0 [--epoch N] [--source TEXT] OUT.mmdb IN.csv...\n";
die "usage: $0 [--epoch N] [--source TEXT] OUT.mmdb IN.csv...\n" if @ARGV < 2;
my ($out, @inputs) = @ARGV;

# With alias_ipv6_to_ipv4 the writer points these IPv6 blocks at the IPv4
# tree and refuses inserts into them; rows there are skipped (the source
# lists 2001::/32 and 2002::/16 under a relay operator's AS).
my @aliased = map { [ pack_ip($_->[0]), pack_ip($_->[1]) ] } (
    [ '::ffff:0:0', '::ffff:ffff:ffff' ],
    [ '2001::',     '2001:0:ffff:ffff:ffff:ffff:ffff:ffff' ],
    [ '2002::',     '2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff' ],
);

my %types = (
    autonomous_system_number       => 'uint32',
    autonomous_system_organization => 'utf8_string',
);
my %tree_args = (
    ip_version               => 6,
    record_size              => 28,
    database_type            => 'egressd-ASN',
    languages                => ['en'],
    description              => { en => "ASN and AS organisation from $source (RouteViews, DB-IP.com, NRO: CC BY 4.0)" },
    alias_ipv6_to_ipv4       => 1,
    remove_reserved_networks => 1,
    map_key_type_callback    => sub { $types{ $_[0] } },
);
$tree_args{_build_epoch} = $epoch if defined $epoch;
my $tree = MaxMind::DB::Writer::Tree->new(%tree_args);

# An address as a byte string (4 or 16 bytes) that compares in address order
# with others of its family.
sub pack_ip {
    my ($text) = @_;
    return inet_pton($text =~ /:/ ? AF_INET6 : AF_INET, $text);
}

# Splits one CSV line into fields; undef when the quoting is broken.
sub csv_fields {
    my ($line) = @_;
    my @fields;
    my $pos = 0;
    my $len = length $line;
    while (1) {
        my $field;
        if (substr($line, $pos, 1) eq '"') {
            $pos++;
            $field = '';
            while (1) {
                my $q = index($line, '"', $pos);
                return undef if $q < 0;    # no closing quote
                $field .= substr($line, $pos, $q - $pos);
                if (substr($line, $q + 1, 1) eq '"') {
                    $field .= '"';
                    $pos = $q + 2;
                    next;
                }
                $pos = $q + 1;
                last;
            }
            return undef if $pos < $len && substr($line, $pos, 1) ne ',';
        }
        else {
            my $c = index($line, ',', $pos);
            $c = $len if $c < 0;
            $field = substr($line, $pos, $c - $pos);
            return undef if index($field, '"') >= 0;    # stray quote
            $pos = $c;
        }
        push @fields, $field;
        return \@fields if $pos >= $len;
        $pos++;                                          # the comma
        if ($pos == $len) {                              # trailing empty field
            push @fields, '';
            return \@fields;
        }
    }
}

my ($rows, $inserted, $skipped_alias, $skipped_as0) = (0, 0, 0, 0);
for my $input (@inputs) {
    open my $fh, '<:raw', $input or die "$input: $!\n";
    while (my $line = <$fh>) {
        $line =~ s/\r?\n\z//;
        next if $line eq '';
        $rows++;
        my $f = csv_fields($line);
        die "$input:$.: bad CSV quoting\n" unless $f;
        die "$input:$.: want 4 fields (start,end,asn,org), got " . scalar(@$f) . "\n"
            unless @$f == 4;
        my ($start, $end, $asn, $org) = @$f;
        my ($ps, $pe) = (pack_ip($start), pack_ip($end));
        die "$input:$.: bad address range $start - $end\n"
            unless defined $ps && defined $pe && $ps le $pe
            && (($start =~ /:/) == ($end =~ /:/));
        die "$input:$.: bad AS number '$asn'\n"
            unless $asn =~ /\A[0-9]{1,10}\z/ && $asn <= 4294967295;

        if ($start =~ /:/ && grep { $ps le $_->[1] && $pe ge $_->[0] } @aliased) {
            $skipped_alias++;
            next;
        }
        # AS0 marks unrouted space (RFC 7607): nothing to record.
        if ($asn == 0) {
            $skipped_as0++;
            next;
        }
        utf8::decode($org) or die "$input:$.: organisation is not valid UTF-8\n";
        my %rec = (autonomous_system_number => 0 + $asn);
        $rec{autonomous_system_organization} = $org if $org ne '';
        $tree->insert_range($start, $end, \%rec);
        $inserted++;
    }
    close $fh;
}
die "no rows read from @inputs\n" unless $inserted;

open my $ofh, '>:raw', "$out.tmp" or die "$out.tmp: $!\n";
$tree->write_tree($ofh);
close $ofh or die "$out.tmp: $!\n";
rename "$out.tmp", $out or die "$out: $!\n";
printf "asn-csv-to-mmdb: %d rows, %d ranges written, skipped %d in aliased IPv6 space"
    . " and %d with AS0 -> %s\n", $rows, $inserted, $skipped_alias, $skipped_as0, $out;

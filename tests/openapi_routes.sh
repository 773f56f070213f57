#!/usr/bin/env bash
# Keeps docs/openapi.json level with the code: every route api/server.cc
# registers (its Get(http, ...), Write(http, ...) and http.Post(...) lines) must be a path
# and method of the description, and every documented operation must be a
# registered route. Regex captures ([^/]+) become {id}.
#   tests/openapi_routes.sh            (run from anywhere)
set -euo pipefail
cd "$(dirname "$0")/.."

exec perl -MJSON::PP -e '
  use strict; use warnings;
  my ($server_cc, $openapi) = @ARGV;
  my (%served, %documented);
  open(my $src, "<", $server_cc) or die "cannot read $server_cc: $!\n";
  while (my $line = <$src>) {
    my ($method, $pattern);
    if ($line =~ /^\s*Get\(http,\s*(?:R"\((.*?)\)"|"([^"]*)")/) {
      ($method, $pattern) = ("get", defined $1 ? $1 : $2);
    } elsif ($line =~ /^\s*Write\(http,\s*"(\w+)",\s*(?:R"\((.*?)\)"|"([^"]*)")/) {
      ($method, $pattern) = (lc $1, defined $2 ? $2 : $3);
    } elsif ($line =~ /^\s*http\.(Get|Post|Patch|Delete)\(\s*(?:R"\((.*?)\)"|"([^"]*)")/) {
      ($method, $pattern) = (lc $1, defined $2 ? $2 : $3);
    } else {
      next;
    }
    (my $path = $pattern) =~ s/\(\[\^\/\]\+\)/{id}/g;
    die "route $pattern: a regex that is not ([^/]+) cannot be mapped to a template\n"
      if $path =~ /[()\[\]^\$*+?\\]/;
    $served{"$method $path"} = 1;
  }
  close $src;
  die "found only " . scalar(keys %served) . " routes in $server_cc: did the Get/Write lines change shape?\n"
    if keys %served < 10;

  open(my $in, "<", $openapi) or die "cannot read $openapi: $!\n";
  my $doc = JSON::PP->new->decode(do { local $/; <$in> });
  for my $path (keys %{ $doc->{paths} }) {
    for my $method (keys %{ $doc->{paths}{$path} }) {
      next unless $method =~ /^(get|put|post|delete|options|head|patch|trace)$/;
      $documented{"$method $path"} = 1;
    }
  }
  my @missing = sort grep { !$documented{$_} } keys %served;
  my @phantom = sort grep { !$served{$_} } keys %documented;
  print STDERR "served by api/server.cc but missing from docs/openapi.json: $_\n" for @missing;
  print STDERR "in docs/openapi.json but not served by api/server.cc: $_\n" for @phantom;
  exit 1 if @missing || @phantom;
  printf "openapi_routes: all %d routes of api/server.cc are documented, and nothing else\n",
    scalar(keys %served);
' api/server.cc docs/openapi.json

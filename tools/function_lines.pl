#!/usr/bin/perl
# function_lines.pl MAX FILE...: prints every function body in FILEs that
# spans more than MAX lines, as "FILE:LINE: NAME, N lines", and exits 1 when
# there is one. N is counted as clang-tidy's readability-function-size counts
# it: the closing brace's line less the opening brace's. A lambda counts,
# as there, as lines of the function around it, not as a function.
#
# It reads source formatted by .clang-format (tools/check_style.sh checks
# that first) without compiling it: comments, literals and preprocessor
# lines are blanked, then each "{" is a function body when what precedes it
# is a parameter list (less qualifiers and a trailing return type) not
# opened by a statement keyword, a macro or a lambda's capture list, or a
# constructor's last member initialiser. On this project's sources, at 20
# and at 70 lines, it reports the functions and counts clang-tidy reports;
# tests/function_lines_test.sh holds the two together on a fixture.
use strict;
use warnings;

my $max = shift @ARGV;
die "usage: function_lines.pl MAX FILE...\n" unless defined $max && @ARGV;

my %statement = map { $_ => 1 }
  qw(if for while switch catch requires sizeof alignof decltype return static_assert);
my $qualifier = qr/(?:const|noexcept|override|final|mutable|constexpr|&&|&)/;

# The text with comments, string and character literals and preprocessor
# lines replaced by spaces, newlines kept so line numbers hold.
sub blank {
  my ($text) = @_;
  my $blank_keep_newlines = sub { (my $s = $_[0]) =~ s/[^\n]/ /g; $s };
  $text =~ s{
      ( //[^\n]* )
    | ( /\*.*?\*/ )
    | ( R"([^(\s]*)\(.*?\)\4" )
    | ( "(?:[^"\\\n]|\\.)*" )
    | ( '(?:[^'\\\n]|\\.)*' )
    | ( ^[ \t]*\#(?:[^\n]*\\\n)*[^\n]* )
  }{ $blank_keep_newlines->($&) }gmsex;
  return $text;
}

# Given the text before a "{", whether the brace opens a function body and,
# if so, the function's name.
sub function_before {
  my ($before) = @_;
  $before =~ s/\s+$//;
  return undef if $before =~ /\]$/;  # a lambda without parameters
  while (1) {
    my $was = $before;
    $before =~ s/\s*->\s*[\w:<>,\s*&]+$// if $before =~ /\)\s*(?:$qualifier\s*)*->\s*[\w:<>,\s*&]+$/;
    $before =~ s/\s*\b$qualifier$//;
    $before =~ s/\s*&&?$//;
    if ($before =~ /\bnoexcept\s*\)$/ || $before =~ /\bnoexcept\s*\(/) {
      my $open = matching_open($before);
      if (defined $open && substr($before, 0, $open) =~ /\bnoexcept\s*$/) {
        $before = substr($before, 0, $open);
        $before =~ s/\s*noexcept\s*$//;
      }
    }
    last if $before eq $was;
  }
  return undef unless $before =~ /\)$/;
  my $open = matching_open($before);
  return undef unless defined $open;
  my $head = substr($before, 0, $open);
  $head =~ s/\s+$//;
  return undef if $head =~ /\]$/;  # a lambda
  return undef unless $head =~ /([\w:~]+(?:operator\s*\S+?)?|operator\s*\(\s*\))$/;
  my $name = $1;
  my ($last) = $name =~ /(\w+)$/;
  $last //= $name;
  return undef if $statement{$last};
  return undef if $last eq 'constexpr' && $head =~ /\bif\s+constexpr$/;
  return undef if $last =~ /^[A-Z][A-Z0-9_]+$/;  # a macro's block, as KJ_IF_MAYBE
  return $name;
}

# The offset of the "(" matching the ")" that ends the text.
sub matching_open {
  my ($text) = @_;
  my $depth = 0;
  for (my $i = length($text) - 1; $i >= 0; --$i) {
    my $c = substr($text, $i, 1);
    ++$depth if $c eq ')';
    --$depth if $c eq '(';
    return $i if $depth == 0;
  }
  return undef;
}

my $found = 0;
for my $file (@ARGV) {
  open(my $in, '<', $file) or die "$file: $!\n";
  my $text = blank(do { local $/; <$in> });
  close $in;
  my @open;  # [line of "{", the function's name or undef, whether an initialiser]
  my ($line, $from, $closed) = (1, 0, undef);
  while ($text =~ /([{}\n])/g) {
    my ($c, $at) = ($1, pos($text) - 1);
    if ($c eq "\n") { ++$line; next; }
    my $before = substr($text, $from, $at - $from);
    if ($c eq '{') {
      # Directly after a member's braced initialiser: the constructor's body.
      my $name = ($before =~ /^\s*$/ && $closed && $closed->[2]) ? 'constructor'
                                                                 : function_before($before);
      my $initialiser = !defined $name && $before =~ /(?:\)\s*:|,|^\s*:)\s*[\w:]+\s*$/;
      push @open, [$line, $name, $initialiser];
      $closed = undef;
    } else {
      my $top = pop @open or die "$file:$line: a '}' closes nothing\n";
      my ($opened, $name) = @$top;
      if (defined $name && $line - $opened > $max) {
        print "$file:$opened: $name, ", $line - $opened, " lines\n";
        $found = 1;
      }
      $closed = $top;
    }
    $from = $at + 1;
  }
}
exit $found;

# test/t/DurableTap.pm: the workflow worker the TAP tests play over psql.
# Each test passes its workflow code: code($type, $input, $journal)
# returns ('complete', result JSON) or ('suspend', commands JSON).
package DurableTap;

use strict;
use warnings;

use Exporter 'import';
use JSON::PP;

our @EXPORT = qw(work_round work_until_idle);

# claim every ready workflow task of queue default once and run the code
# against its journal; returns the number of tasks claimed per workflow id
sub work_round
{
	my ($node, $code) = @_;
	my %claims;
	my $out = $node->safe_psql('postgres',
		q{SELECT token, workflow_id, workflow_type, coalesce(input, 'null'), journal
		    FROM durable.task_poll('default', 'tap', 100)});
	for my $line (split /\n/, $out)
	{
		my ($token, $id, $type, $input, $journal) = split /\|/, $line, 5;
		my ($what, $arg) = $code->($type, decode_json($input), decode_json($journal));
		$arg =~ s/'/''/g;
		$node->safe_psql('postgres',
			$what eq 'complete'
			? "SELECT durable.task_complete($token, '$arg')"
			: "SELECT durable.task_suspend($token, '$arg')");
		$claims{$id}++;
	}
	return \%claims;
}

# work rounds until one finds nothing to do; adds the claims to %$claims
sub work_until_idle
{
	my ($node, $code, $claims) = @_;
	for (my $round = 0; $round < 100; $round++)
	{
		my $got = work_round($node, $code);
		return unless %$got;
		$claims->{$_} += $got->{$_} for keys %$got;
	}
	die "workflows never went idle";
}

1;

# test/lib/DurableNode.pm: what the TAP tests in test/t share.
package DurableNode;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use Time::HiRes qw(time usleep);

our @EXPORT = qw(durable_node wait_for);

# durable_node(NAME, CONF): a new node, started, that preloads durable,
# with CONF (postgresql.conf lines) added
sub durable_node
{
	my ($name, $conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'durable'\n" . ($conf // ''));
	$node->start;
	return $node;
}

# wait_for(SECONDS, CODE): call CODE every 0.2 s until it returns a true
# value or SECONDS have passed; returns its last value and the seconds
# waited
sub wait_for
{
	my ($secs, $code) = @_;
	my $t0 = time;
	my $value;
	while (1)
	{
		$value = $code->();
		last if $value || time - $t0 >= $secs;
		usleep(200_000);
	}
	return ($value, time - $t0);
}

1;

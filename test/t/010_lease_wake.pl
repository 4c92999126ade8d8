# 010_lease_wake: a lease taken after the background worker's last round
# still expires on time.
#
# Where a background worker serves the database, polls leave lease expiry
# to it (durable_poll_should_expire).  With durable.naptime at 60 s the
# worker sleeps until the next due time it knew of at its last round, so a
# claim must wake it for its lease's expiry (wake_for_leases in
# src/engine.c).  A task claimed with a 2 s lease and never finished must
# be claimable again within seconds, with no durable.tick() call; without
# the wake-up it would wait for the 60 s naptime.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use DurableNode;

my $node = durable_node('lease_wake', "durable.naptime = '60s'\n");
$node->safe_psql('postgres', 'CREATE EXTENSION durable');
# the worker's first rounds after startup are past once the extension is served
sleep 2;

$node->safe_psql('postgres', "SELECT durable.wf_start('w', NULL, 'lease-1', 'leaseq')");
# let the worker's round for the start pass: it knows of no lease yet
sleep 1;
is( $node->safe_psql('postgres',
		"SELECT workflow_id || ' ' || attempt FROM durable.task_poll('leaseq', 'A', 1, '2 s')"),
	'lease-1 1', 'worker A claims the task with a 2 s lease, and never finishes it');

my ($again, $waited) = wait_for(20, sub {
	$node->safe_psql('postgres',
		"SELECT workflow_id || ' ' || attempt FROM durable.task_poll('leaseq', 'B', 1)");
});
is($again, 'lease-1 2', 'worker B gets the task again after A\'s lease expired (attempt 2)');
cmp_ok($waited, '<', 15, "it came back within 15 s of the claim, not after the 60 s naptime ($waited s)");

$node->stop;
done_testing();

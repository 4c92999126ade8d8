# 008_launcher: the launcher survives thousands of passes without growing.
#
# A commit in a database that has the extension but no worker (here one
# left out of durable.databases) wakes the launcher, which then makes a
# pass over pg_database.  0.1 allocated each pass's database list in
# TopMemoryContext and never freed it; an early fix freed the pass's
# memory together with the worker handles it still needed, and the
# launcher crashed on its next pass.  Here the launcher makes a few
# thousand passes; its memory (pg_log_backend_memory_contexts) does not
# grow with them, and it is the same process at the end.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use DurableNode;

my $node = durable_node('launcher', "durable.databases = 'postgres'\n");
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('postgres', 'CREATE EXTENSION durable');
$node->safe_psql('other', 'CREATE EXTENSION durable');

my $launcher = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'durable launcher'});
like($launcher, qr/^\d+$/, 'the launcher runs');

# each commit creates a due time in a database with no worker: it wakes
# the launcher (a pass), which starts nothing there
sub wake_launcher
{
	my ($n) = @_;
	my $sql = join('', map {
		"SELECT durable.wf_start('w', NULL, NULL, 'q', '{\"start_delay\": \"1h\"}');\n"
	} 1 .. $n);
	$node->safe_psql('other', $sql);
}

# the launcher's memory as it reports it in the server log
sub launcher_bytes
{
	my $offset = -s $node->logfile;
	$node->safe_psql('postgres', "SELECT pg_log_backend_memory_contexts($launcher)");
	my $total;
	for (my $i = 0; $i < 100 && !defined $total; $i++)
	{
		my $log = slurp_file($node->logfile, $offset);
		$total = $1 if $log =~ /\[$launcher\].*Grand total: (\d+) bytes/;
		usleep(100_000) unless defined $total;
	}
	return $total;
}

wake_launcher(300);
my $before = launcher_bytes();
ok(defined $before, "launcher memory after 300 wake-ups: $before bytes");
wake_launcher(3000);
my $after = launcher_bytes();
ok(defined $after, "launcher memory after 3300 wake-ups: $after bytes");
cmp_ok($after - $before, '<', 32 * 1024,
	'3000 more passes do not grow the launcher (0.1 grew about 100 bytes a pass)');
is( $node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'durable launcher'}),
	$launcher, 'the launcher is the same process (it never crashed)');
unlike(slurp_file($node->logfile), qr/terminated by signal/, 'no process died');

$node->stop;
done_testing();

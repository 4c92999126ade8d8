# 007_hostile_search_path: the background worker runs as the bootstrap
# superuser; a role that may CREATE in public must not be able to run code
# as that superuser by shadowing an operator or function the engine's SQL
# uses (0.1 resolved "bigint * interval" through the default search_path).
#
# A hostile role defines operators and functions in public whose bodies
# try to make it superuser; then every part of the periodic work that
# evaluates such expressions has work to do (a heartbeat timeout, a
# schedule-to-close deadline, an expired lease, a schedule, a rate-limited
# queue), the background worker does it, durable.tick() does it too, and
# the role is still not superuser.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use DurableNode;

my $node = durable_node('hostile', "durable.naptime = 100\n");
$node->safe_psql('postgres', 'CREATE EXTENSION durable');
$node->restart;    # the launcher finds the database at once

$node->safe_psql('postgres', q{
CREATE ROLE hostile LOGIN;
GRANT CREATE ON SCHEMA public TO hostile;
});

# every trap tries to promote hostile; it only can while run by a superuser
my $trap = q{
DO $$ BEGIN
    ALTER ROLE hostile SUPERUSER;
    INSERT INTO public.sprung VALUES (current_user);
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
};
$node->safe_psql('postgres', qq{
SET ROLE hostile;
CREATE TABLE public.sprung (by_user text);
CREATE FUNCTION public.mul_bi(bigint, interval) RETURNS interval LANGUAGE plpgsql AS \$f\$
BEGIN $trap RETURN \$2 * \$1::float8; END \$f\$;
CREATE OPERATOR public.* (LEFTARG = bigint, RIGHTARG = interval, FUNCTION = public.mul_bi);
CREATE FUNCTION public.mul_ni(numeric, integer) RETURNS numeric LANGUAGE plpgsql AS \$f\$
BEGIN $trap RETURN \$1 * \$2::numeric; END \$f\$;
CREATE OPERATOR public.* (LEFTARG = numeric, RIGHTARG = integer, FUNCTION = public.mul_ni);
CREATE FUNCTION public.mul_dn(double precision, numeric) RETURNS double precision LANGUAGE plpgsql AS \$f\$
BEGIN $trap RETURN \$1 * \$2::float8; END \$f\$;
CREATE OPERATOR public.* (LEFTARG = double precision, RIGHTARG = numeric, FUNCTION = public.mul_dn);
CREATE FUNCTION public.sub_id(integer, double precision) RETURNS double precision LANGUAGE plpgsql AS \$f\$
BEGIN $trap RETURN \$1::float8 - \$2; END \$f\$;
CREATE OPERATOR public.- (LEFTARG = integer, RIGHTARG = double precision, FUNCTION = public.sub_id);
CREATE FUNCTION public.nextval(text) RETURNS bigint LANGUAGE plpgsql AS \$f\$
BEGIN $trap RETURN pg_catalog.nextval(\$1::regclass); END \$f\$;
GRANT ALL ON public.sprung TO PUBLIC;
});

# work for every part of the periodic work
$node->safe_psql('postgres', q{
SELECT durable.wf_start('w', NULL, 'hb-1', 'hq');
SELECT durable.task_suspend(token, '[{"seq": 1, "type": "activity", "name": "slow", "heartbeat": "1s", "retry": {"maximum_attempts": 2, "initial_interval": "1s"}},
                                     {"seq": 2, "type": "activity", "name": "late", "queue": "nobody", "schedule_to_close": "1s"}]')
  FROM durable.task_poll('hq', 'tester');
SELECT count(*) FROM durable.task_poll('hq', 'tester', 1, '1 s');
SELECT durable.schedule_create('every-second', 'every 1 second', 'w', NULL, '{"queue": "sq", "overlap": "allow_all"}');
SELECT durable.queue_set_rate('rq', 0.5, 1);
SELECT durable.wf_start('w', NULL, 'r-1', 'rq');
SELECT count(*) FROM durable.task_poll('rq', 'tester');
SELECT durable.wf_start('w', NULL, 'r-2', 'rq');
});

# the background worker handles all of it within a few seconds
ok( $node->poll_query_until('postgres', q{
	SELECT (SELECT count(*) FROM durable.events WHERE event_type = 'activity_attempt_timed_out') >= 1
	   AND (SELECT status FROM durable.journal WHERE workflow_id = 'hb-1' AND seq = 2) = 'failed'
	   AND (SELECT count(*) FROM durable.workflows WHERE workflow_id LIKE 'every-second-%') >= 2}),
	'the background worker expired the heartbeat, timed out the step and fired the schedule');

# and durable.tick(), called by a superuser whose session path has public first
$node->safe_psql('postgres', q{
SET search_path = public, pg_catalog;
SET durable.clock_offset = '1h';
SELECT durable.tick();
});

is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'hostile'}),
	'f', 'the hostile role is still not superuser');
is($node->safe_psql('postgres', q{SELECT count(*) FROM public.sprung}),
	'0', 'no trap was ever run');

$node->stop;
done_testing();

-- setup: the extension installs into its own schema, owned by the
-- installing role, with nothing granted to PUBLIC
SELECT extname, extversion, extnamespace::regnamespace FROM pg_extension WHERE extname = 'durable';
SELECT count(*) AS public_executable
  FROM pg_proc p
 WHERE p.pronamespace = 'durable'::regnamespace
   AND has_function_privilege('public', p.oid, 'EXECUTE');
SELECT current_setting('durable.namespace') AS namespace;

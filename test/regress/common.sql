-- test/regress/common.sql: helpers every regression file includes (\i).
-- err(statement): run it, return 'ok' or 'SQLSTATE: message' (token and
-- run numbers masked); errd(statement): the same with ' / ' and the
-- error's detail; state(): a fingerprint of every durable table, to
-- prove a call changed nothing.
CREATE FUNCTION pg_temp.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, '(token|Run|run) [0-9]+', '\1 N', 'g');
END $$;
CREATE FUNCTION pg_temp.errd(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE d text;
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
    RETURN regexp_replace(SQLSTATE || ': ' || SQLERRM || ' / ' || coalesce(d, ''),
                          '(token|Run|run) [0-9]+', '\1 N', 'g');
END $$;
CREATE FUNCTION pg_temp.state() RETURNS text LANGUAGE sql AS $$
    SELECT md5(concat_ws('|',
        (SELECT string_agg(x::text, ',' ORDER BY run_id) FROM durable.runs x),
        (SELECT string_agg(x::text, ',' ORDER BY run_id, seq) FROM durable.tasks x),
        (SELECT string_agg(x::text, ',' ORDER BY run_id, seq) FROM durable.steps x),
        (SELECT string_agg(x::text, ',' ORDER BY event_id) FROM durable.events x),
        (SELECT string_agg(x::text, ',' ORDER BY signal_no) FROM durable.signals x),
        (SELECT string_agg(x::text, ',' ORDER BY namespace) FROM durable.namespaces x),
        (SELECT string_agg(x::text, ',' ORDER BY run_id, name) FROM durable.published x))) $$;

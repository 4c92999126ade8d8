-- test/t/schema_fingerprint.sql: everything about the durable extension's
-- objects that an install or upgrade script decides, one fact per line,
-- in a fixed order.  Two databases whose outputs are equal have the same
-- extension schema, so "fresh install" and "0.1 + ALTER EXTENSION UPDATE"
-- can be compared with diff (test/t/005_upgrade.pl).  Run it with
-- psql -XAtq (or PostgreSQL::Test::Cluster's safe_psql): one SET (JIT
-- compiling this large query took seconds), then one query; no variables.
--
-- Covered: the extension's member list and its row of pg_extension (the
-- extconfig tables by name, with their conditions); the schema (owner,
-- ACL); for each relation of schema durable its kind, persistence,
-- reloptions, owner, row security and ACL; for tables and views the
-- columns in order (type, collation, storage, not null, default,
-- identity, generated, column ACL); constraints (pg_get_constraintdef);
-- indexes (pg_get_indexdef, plus clustered/replica identity flags);
-- triggers (pg_get_triggerdef, enabled state); rules other than views';
-- row security policies; views (pg_get_viewdef, line by line); sequences
-- (type, bounds, increment, cache, cycle, owned-by column); functions
-- (full argument list with defaults, result, kind, language, volatility,
-- strictness, security definer, leakproof, parallel safety, cost, rows,
-- proconfig, probin, owner, ACL) and their source, line by line; types
-- of the schema; every comment on any of these objects or their columns;
-- and pg_init_privs of them (what pg_dump compares ACLs against).
--
-- ACLs are printed with their items sorted, so the order in which GRANTs
-- happened does not matter.  Data (rows of the tables, sequence values)
-- is not part of the fingerprint.
SET jit = off;
WITH ext AS (
    SELECT e.oid, e.extnamespace, e.extrelocatable, e.extconfig, e.extcondition
      FROM pg_catalog.pg_extension e WHERE e.extname = 'durable'
), nsp AS (
    SELECT n.oid, n.nspname, n.nspowner, n.nspacl
      FROM pg_catalog.pg_namespace n WHERE n.nspname = 'durable'
), rels AS (
    SELECT c.* FROM pg_catalog.pg_class c, nsp WHERE c.relnamespace = nsp.oid
), procs AS (
    SELECT p.* FROM pg_catalog.pg_proc p, nsp WHERE p.pronamespace = nsp.oid
), trigs AS (
    SELECT t.* FROM pg_catalog.pg_trigger t JOIN rels r ON r.oid = t.tgrelid
     WHERE NOT t.tgisinternal
), cons AS (
    SELECT c.* FROM pg_catalog.pg_constraint c, nsp WHERE c.connamespace = nsp.oid
), members AS (
    SELECT d.classid, d.objid, d.objsubid FROM pg_catalog.pg_depend d, ext
     WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND d.refobjid = ext.oid AND d.deptype = 'e'
), facts (obj, n, fact) AS (
    -- the extension itself
    SELECT 'extension', 0, 'extension durable schema=' || ext.extnamespace::regnamespace::text
           || ' relocatable=' || ext.extrelocatable
      FROM ext
    UNION ALL
    SELECT 'extconfig ' || u.cfg::regclass::text, 0,
           'extconfig ' || u.cfg::regclass::text || ' condition='
           || coalesce(pg_catalog.quote_literal(u.cond), 'NULL')
      FROM ext, unnest(ext.extconfig, ext.extcondition) AS u(cfg, cond)
    UNION ALL
    SELECT 'member ' || pg_catalog.pg_describe_object(m.classid, m.objid, m.objsubid), 0,
           'member ' || pg_catalog.pg_describe_object(m.classid, m.objid, m.objsubid)
      FROM members m
    UNION ALL
    -- the schema
    SELECT 'schema', 0,
           'schema ' || nsp.nspname || ' owner=' || nsp.nspowner::regrole::text
           || ' acl=' || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text)
                                     FROM unnest(nsp.nspacl) a), 'default')
      FROM nsp
    UNION ALL
    -- relations: tables, views, sequences, indexes, types' relations
    SELECT 'relation ' || c.oid::regclass::text, 0,
           'relation ' || c.oid::regclass::text || ' kind=' || c.relkind::text
           || ' persistence=' || c.relpersistence::text
           || ' options=' || coalesce(c.reloptions::text, '{}')
           || ' owner=' || c.relowner::regrole::text
           || ' rls=' || c.relrowsecurity || '/' || c.relforcerowsecurity
           || ' replident=' || c.relreplident::text
           || ' acl=' || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text)
                                     FROM unnest(c.relacl) a), 'default')
      FROM rels c
    UNION ALL
    -- columns, in their order (a dropped column leaves no trace here)
    SELECT 'relation ' || a.attrelid::regclass::text, 1,
           'column ' || a.attrelid::regclass::text || ' #'
           || row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum)
           || ' ' || quote_ident(a.attname) || ' '
           || pg_catalog.format_type(a.atttypid, a.atttypmod)
           || CASE WHEN a.attcollation <> 0 THEN ' collate ' || a.attcollation::regcollation::text ELSE '' END
           || ' storage=' || a.attstorage::text
           || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
           || coalesce(' default ' || pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), '')
           || CASE WHEN a.attidentity <> '' THEN ' identity=' || a.attidentity::text ELSE '' END
           || CASE WHEN a.attgenerated <> '' THEN ' generated=' || a.attgenerated::text ELSE '' END
           || coalesce(' acl=' || (SELECT string_agg(x::text, ',' ORDER BY x::text)
                                     FROM unnest(a.attacl) x), '')
      FROM pg_catalog.pg_attribute a
      JOIN rels c ON c.oid = a.attrelid
      LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
     WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')
    UNION ALL
    -- constraints (of tables, and of domains of the schema)
    SELECT 'relation ' || coalesce(nullif(c.conrelid, 0)::regclass::text, c.contypid::regtype::text), 2,
           'constraint ' || coalesce(nullif(c.conrelid, 0)::regclass::text, c.contypid::regtype::text)
           || ' ' || quote_ident(c.conname) || ' ' || pg_catalog.pg_get_constraintdef(c.oid)
      FROM cons c
    UNION ALL
    -- indexes
    SELECT 'relation ' || i.indrelid::regclass::text, 3,
           'index ' || pg_catalog.pg_get_indexdef(i.indexrelid)
           || CASE WHEN i.indisclustered THEN ' clustered' ELSE '' END
           || CASE WHEN i.indisreplident THEN ' replica identity' ELSE '' END
      FROM pg_catalog.pg_index i JOIN rels c ON c.oid = i.indrelid
    UNION ALL
    -- triggers
    SELECT 'relation ' || t.tgrelid::regclass::text, 4,
           'trigger ' || pg_catalog.pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text
      FROM trigs t
    UNION ALL
    -- rules (a view's _RETURN rule is its definition, below)
    SELECT 'relation ' || r.ev_class::regclass::text, 5,
           'rule ' || pg_catalog.pg_get_ruledef(r.oid)
      FROM pg_catalog.pg_rewrite r JOIN rels c ON c.oid = r.ev_class
     WHERE r.rulename <> '_RETURN'
    UNION ALL
    -- row security policies
    SELECT 'relation ' || p.polrelid::regclass::text, 6,
           'policy ' || p.polrelid::regclass::text || ' ' || quote_ident(p.polname)
           || ' cmd=' || p.polcmd::text || ' permissive=' || p.polpermissive
           || ' roles=' || p.polroles::regrole[]::text
           || ' using=' || coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '-')
           || ' check=' || coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '-')
      FROM pg_catalog.pg_policy p JOIN rels c ON c.oid = p.polrelid
    UNION ALL
    -- views, line by line
    SELECT 'relation ' || c.oid::regclass::text, 100 + l.n::int,
           'view ' || c.oid::regclass::text || ' | ' || l.line
      FROM rels c,
           regexp_split_to_table(pg_catalog.pg_get_viewdef(c.oid), E'\n')
               WITH ORDINALITY AS l(line, n)
     WHERE c.relkind IN ('v', 'm')
    UNION ALL
    -- sequences
    SELECT 'relation ' || s.seqrelid::regclass::text, 7,
           'sequence ' || s.seqrelid::regclass::text || ' type=' || s.seqtypid::regtype::text
           || ' start=' || s.seqstart || ' increment=' || s.seqincrement
           || ' min=' || s.seqmin || ' max=' || s.seqmax || ' cache=' || s.seqcache
           || ' cycle=' || s.seqcycle
           || ' owned_by=' || coalesce((SELECT string_agg(pg_catalog.pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid), ',')
                                         FROM pg_catalog.pg_depend d
                                        WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                                          AND d.objid = s.seqrelid AND d.deptype IN ('a', 'i')), 'none')
      FROM pg_catalog.pg_sequence s JOIN rels c ON c.oid = s.seqrelid
    UNION ALL
    -- functions
    SELECT 'function ' || p.oid::regprocedure::text, 0,
           'function ' || p.oid::regprocedure::text
           || ' args=(' || pg_catalog.pg_get_function_arguments(p.oid) || ')'
           || ' returns=' || coalesce(pg_catalog.pg_get_function_result(p.oid), '-')
           || ' kind=' || p.prokind::text || ' language=' || l.lanname
           || ' volatility=' || p.provolatile::text || ' strict=' || p.proisstrict
           || ' security_definer=' || p.prosecdef || ' leakproof=' || p.proleakproof
           || ' parallel=' || p.proparallel::text || ' cost=' || p.procost || ' rows=' || p.prorows
           || ' config=' || coalesce(p.proconfig::text, '{}')
           || ' probin=' || coalesce(p.probin, '-')
           || ' owner=' || p.proowner::regrole::text
           || ' acl=' || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text)
                                     FROM unnest(p.proacl) a), 'default')
      FROM procs p JOIN pg_catalog.pg_language l ON l.oid = p.prolang
    UNION ALL
    -- function bodies (the C symbol for C functions), line by line
    SELECT 'function ' || p.oid::regprocedure::text, 100 + s.n::int,
           'source ' || p.oid::regprocedure::text || ' | ' || s.line
      FROM procs p,
           regexp_split_to_table(p.prosrc, E'\n') WITH ORDINALITY AS s(line, n)
    UNION ALL
    -- types of the schema (row types of relations and arrays included)
    SELECT 'type ' || t.oid::regtype::text, 0,
           'type ' || t.oid::regtype::text || ' typtype=' || t.typtype::text
           || ' relation=' || coalesce(nullif(t.typrelid, 0)::regclass::text, '-')
           || ' owner=' || t.typowner::regrole::text
           || ' acl=' || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text)
                                     FROM unnest(t.typacl) a), 'default')
      FROM pg_catalog.pg_type t, nsp WHERE t.typnamespace = nsp.oid
    UNION ALL
    -- comments on anything above (columns included)
    SELECT 'comment ' || pg_catalog.pg_describe_object(d.classoid, d.objoid, d.objsubid), 0,
           'comment ' || pg_catalog.pg_describe_object(d.classoid, d.objoid, d.objsubid)
           || ' = ' || pg_catalog.quote_literal(d.description)
      FROM pg_catalog.pg_description d
     WHERE (d.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objoid IN (SELECT oid FROM rels))
        OR (d.classoid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objoid IN (SELECT oid FROM procs))
        OR (d.classoid = 'pg_catalog.pg_trigger'::pg_catalog.regclass AND d.objoid IN (SELECT oid FROM trigs))
        OR (d.classoid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND d.objoid IN (SELECT oid FROM cons))
        OR (d.classoid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND d.objoid IN (SELECT oid FROM nsp))
        OR (d.classoid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND d.objoid IN (SELECT oid FROM ext))
        OR (d.classoid, d.objoid) IN (SELECT classid, objid FROM members)
    UNION ALL
    -- initial privileges: pg_dump dumps an ACL that differs from these
    SELECT 'init_privs ' || pg_catalog.pg_describe_object(ip.classoid, ip.objoid, ip.objsubid), 0,
           'init_privs ' || pg_catalog.pg_describe_object(ip.classoid, ip.objoid, ip.objsubid)
           || ' type=' || ip.privtype::text
           || ' acl=' || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text)
                                     FROM unnest(ip.initprivs) a), '')
      FROM pg_catalog.pg_init_privs ip
     WHERE (ip.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND ip.objoid IN (SELECT oid FROM rels))
        OR (ip.classoid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND ip.objoid IN (SELECT oid FROM procs))
        OR (ip.classoid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND ip.objoid IN (SELECT oid FROM nsp))
        OR (ip.classoid = 'pg_catalog.pg_type'::pg_catalog.regclass
            AND ip.objoid IN (SELECT t.oid FROM pg_catalog.pg_type t, nsp WHERE t.typnamespace = nsp.oid))
        OR (ip.classoid, ip.objoid) IN (SELECT classid, objid FROM members)
)
SELECT fact FROM facts ORDER BY obj COLLATE "C", n, fact COLLATE "C";

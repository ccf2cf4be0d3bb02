-- Only event writers hold readers back (the proof: docs/ordering.md).
--
-- Positions come from transaction ids, which are handed out in start order but
-- commit in any order. Until now a reader took events only below the oldest
-- transaction still running anywhere in the cluster, so one idle session in any
-- database stalled every reader. Now a transaction that appends takes a marker
-- (a shared advisory lock of this schema) before it has a transaction id, and
-- readers hold back only at running transactions that hold the marker, or whose
-- state they cannot establish.
--
-- __SCHEMA__ is the store's schema, quoted; __MARKER__ the two int4 keys of its
-- marker lock; __FLAG__ the transaction-local setting that says the marker is held.

-- Every statement that inserts events takes the marker while the transaction has
-- no transaction id yet, and refuses to go on in a transaction that got its id
-- without the marker (it wrote something else first, or a ROLLBACK TO SAVEPOINT
-- released a marker taken inside the savepoint): its events would carry a position
-- below what readers may have passed already.
CREATE FUNCTION __SCHEMA__.take_writer_marker() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('__FLAG__', true) IS DISTINCT FROM 'on' THEN
        IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
            RAISE EXCEPTION 'this transaction wrote before its first append'
                USING ERRCODE = 'EL001',
                      HINT = 'append first, or open the transaction with appends=True';
        END IF;
        PERFORM pg_advisory_xact_lock_shared(__MARKER__);
        PERFORM set_config('__FLAG__', 'on', true);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_writer_marker
    BEFORE INSERT ON __SCHEMA__.events
    FOR EACH STATEMENT EXECUTE FUNCTION __SCHEMA__.take_writer_marker();

-- For store transactions that write other rows before they append: take the marker
-- first, while no transaction id is assigned.
CREATE FUNCTION __SCHEMA__.begin_writing() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('__FLAG__', true) IS DISTINCT FROM 'on' THEN
        IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
            RAISE EXCEPTION 'this transaction wrote before it asked to append'
                USING ERRCODE = 'EL001';
        END IF;
        PERFORM pg_advisory_xact_lock_shared(__MARKER__);
        PERFORM set_config('__FLAG__', 'on', true);
    END IF;
END
$$;

-- The oldest transaction id that may still add events a reader has not seen, as the
-- first position a reader may not hand out yet: everything below it is final.
-- Three steps, in this order (each a statement of its own, so the order holds):
--  1. the lock table, read once: running transaction ids whose owner we can see and
--     that hold no marker (their id's own lock row names a backend; no granted marker
--     row of that backend or virtual transaction; never on a row whose local
--     transaction number reads 0, as a committing backend's rows can);
--  2. prepared transactions: those of another database never hold (they cannot write
--     this table); those of this one always do (PREPARE moves their locks one by one);
--  3. the snapshot's running ids: an id holds unless step 1 or 2 cleared it and it is
--     still running now (a transaction leaves the running set before it releases its
--     locks, so one still running after step 1 had every lock step 1 saw).
-- On a standby there are no advisory locks to see: every running id holds.
CREATE OR REPLACE FUNCTION __SCHEMA__.visible_limit() RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    snap pg_snapshot := pg_current_snapshot();
    offs bigint;
    no_marker bigint[];
    prepared_here bigint[];
    prepared_elsewhere bigint[];
    lowest xid8;
BEGIN
    SELECT o.xid_offset INTO offs FROM __SCHEMA__.position_offset o;
    IF pg_is_in_recovery() THEN
        RETURN (pg_snapshot_xmin(snap)::text::bigint + offs) << 20;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_snapshot_xip(snap)) THEN
        RETURN (pg_snapshot_xmax(snap)::text::bigint + offs) << 20;
    END IF;
    WITH locks AS MATERIALIZED (
        SELECT l.locktype, l.database, l.classid, l.objid, l.objsubid, l.transactionid,
               l.virtualtransaction, l.pid, l.mode, l.granted
          FROM pg_locks l
         WHERE l.locktype IN ('advisory', 'transactionid')
    ), markers AS (
        SELECT m.pid, m.virtualtransaction
          FROM locks m
         WHERE m.locktype = 'advisory' AND m.granted AND m.objsubid = 2
           AND (m.classid, m.objid) = (SELECT (k1)::oid, (k2)::oid FROM (VALUES (__MARKER__)) AS k(k1, k2))
           AND m.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
    )
    SELECT coalesce(array_agg(x.transactionid::text::bigint), '{}')
      INTO no_marker
      FROM locks x
     WHERE x.locktype = 'transactionid' AND x.mode = 'ExclusiveLock' AND x.granted
       AND x.pid IS NOT NULL
       AND split_part(x.virtualtransaction, '/', 2) NOT IN ('0', '')
       AND NOT EXISTS (
           SELECT 1 FROM markers m
            WHERE m.pid = x.pid OR m.virtualtransaction = x.virtualtransaction
       );
    SELECT coalesce(array_agg(p.transaction::text::bigint)
                    FILTER (WHERE p.database = current_database()), '{}'),
           coalesce(array_agg(p.transaction::text::bigint)
                    FILTER (WHERE p.database <> current_database()), '{}')
      INTO prepared_here, prepared_elsewhere
      FROM pg_prepared_xacts p;
    SELECT min(x) INTO lowest
      FROM pg_snapshot_xip(snap) AS x
     WHERE NOT (
           (x::text::bigint % 4294967296) = ANY (prepared_elsewhere)
        OR ((x::text::bigint % 4294967296) = ANY (no_marker)
            AND NOT (x::text::bigint % 4294967296) = ANY (prepared_here)
            AND pg_xact_status(x) = 'in progress')
     );
    RETURN (coalesce(lowest, pg_snapshot_xmax(snap))::text::bigint + offs) << 20;
END
$$;

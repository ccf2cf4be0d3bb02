-- Only event writers hold readers back (the proof: docs/ordering.md).
--
-- Positions come from transaction ids, which are handed out in start order but
-- commit in any order. Until now a reader took events only below the oldest
-- transaction still running anywhere in the cluster, so one idle session in any
-- database stalled every reader. Now readers hold back only at running transactions
-- that hold the writers' marker, or whose state they cannot establish.
--
-- The marker is the ROW EXCLUSIVE lock on this schema's events table, which every
-- statement that inserts events takes (PostgreSQL takes it, at the start of the
-- statement, before the row that gives the transaction its id). What remains is to
-- refuse the one way around it: a transaction that got its id before its first
-- insert (it wrote something else first, or a ROLLBACK TO SAVEPOINT released the
-- lock while the id stayed). A transaction-local setting, the flag, says that the
-- transaction took the marker while it had no id; it is set in the same
-- (sub)transaction as the lock, so they share its fate.
--
-- __SCHEMA__ is the store's schema, quoted; __FLAG__ the name of the flag.

CREATE FUNCTION __SCHEMA__.refuse_late_append() RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'this transaction wrote before its first append'
        USING ERRCODE = 'EL001',
              HINT = 'append first, or open the transaction with appends=True';
END
$$;

-- For transactions that write other rows before they append (store.transaction(
-- appends=True), or SQL of one's own that inserts events): take the marker first,
-- while no transaction id is assigned.
CREATE FUNCTION __SCHEMA__.begin_writing() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('__FLAG__', true) IS DISTINCT FROM 'on' THEN
        IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
            PERFORM __SCHEMA__.refuse_late_append();
        END IF;
        LOCK TABLE __SCHEMA__.events IN ROW EXCLUSIVE MODE;
        PERFORM set_config('__FLAG__', 'on', true);
    END IF;
END
$$;

-- A statement that inserts events into a transaction that has an id already goes on
-- only if the flag says the marker was taken before that id: eventledger's appends
-- inside a transaction set it (see append.py), as does begin_writing(); one that runs
-- with no id yet needs nothing (the statement's lock comes before its id). The WHEN
-- clause is all an append pays: no function is called unless the insert is refused.
CREATE FUNCTION __SCHEMA__.refuse_unmarked_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM __SCHEMA__.refuse_late_append();
    RETURN NULL;
END
$$;

CREATE TRIGGER events_writer_marker
    BEFORE INSERT ON __SCHEMA__.events
    FOR EACH STATEMENT
    WHEN (pg_current_xact_id_if_assigned() IS NOT NULL
          AND current_setting('__FLAG__', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION __SCHEMA__.refuse_unmarked_insert();

-- The oldest transaction id that may still add events a reader has not seen, as the
-- first position a reader may not hand out yet: everything below it is final.
-- visible_limit() is called in the statement that reads (an InitPlan evaluated once);
-- it hands that statement's snapshot and position offset to visible_limit_at(), whose
-- statements each see the database anew. The steps, in this order (each a statement
-- of its own, so the order holds):
--  1. the lock table, read once: running transaction ids whose owner we can see and
--     that hold no marker (their id's own lock row names a backend; no granted ROW
--     EXCLUSIVE lock on the events table held by that backend or virtual transaction;
--     never on a row whose local transaction number reads 0, as a committing
--     backend's rows can);
--  2. prepared transactions: those of another database never hold (they cannot write
--     this table); those of this one always do (PREPARE moves their locks one by one);
--  3. the snapshot's running ids, lowest first: an id holds unless step 1 or 2 cleared
--     it and it is still running now (a transaction leaves the running set before it
--     releases its locks, so one still running after step 1 had every lock step 1
--     saw), or it has ended without events: aborted, or visible to a snapshot taken
--     now (so every row it wrote is too) with no event in its positions.
-- On a standby the primary's locks cannot be seen: every running id holds.
CREATE OR REPLACE FUNCTION __SCHEMA__.visible_limit_at(snap pg_snapshot, offs bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    events oid;
    no_marker bigint[];
    prepared_here bigint[];
    prepared_elsewhere bigint[];
    lowest xid8;
    state text;
    settled boolean;
BEGIN
    IF pg_is_in_recovery() THEN
        RETURN (pg_snapshot_xmin(snap)::text::bigint + offs) << 20;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_snapshot_xip(snap)) THEN
        RETURN (pg_snapshot_xmax(snap)::text::bigint + offs) << 20;
    END IF;
    events := '__SCHEMA__.events'::regclass::oid;
    WITH locks AS MATERIALIZED (
        SELECT l.locktype, l.database, l.relation, l.transactionid, l.virtualtransaction,
               l.pid, l.mode, l.granted
          FROM pg_locks l
         WHERE (l.locktype = 'relation' AND l.relation = events
                AND l.mode = 'RowExclusiveLock' AND l.granted)
            OR (l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted)
    ), markers AS (
        SELECT m.pid, m.virtualtransaction
          FROM locks m
         WHERE m.locktype = 'relation'
           AND m.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
    )
    SELECT coalesce(array_agg(x.transactionid::text::bigint), '{}')
      INTO no_marker
      FROM locks x
     WHERE x.locktype = 'transactionid'
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
    LOOP
        SELECT min(x) INTO lowest
          FROM pg_snapshot_xip(snap) AS x
         WHERE (lowest IS NULL OR x > lowest)
           AND NOT (
               (x::text::bigint % 4294967296) = ANY (prepared_elsewhere)
            OR ((x::text::bigint % 4294967296) = ANY (no_marker)
                AND NOT (x::text::bigint % 4294967296) = ANY (prepared_here)
                AND pg_xact_status(x) = 'in progress')
         );
        IF lowest IS NULL OR (lowest::text::bigint % 4294967296) = ANY (prepared_here) THEN
            EXIT;
        END IF;
        state := pg_xact_status(lowest);
        IF state = 'in progress' THEN
            EXIT;
        END IF;
        IF state <> 'aborted' THEN
            -- One statement, one snapshot: if it shows the transaction as ended, it
            -- shows every event the transaction wrote. The offset is looked up both as
            -- the reader saw it and as it is now (a repair may have raised it between).
            SELECT pg_visible_in_snapshot(lowest, pg_current_snapshot())
                   AND NOT EXISTS (
                       SELECT 1 FROM __SCHEMA__.events e, __SCHEMA__.position_offset o
                        WHERE (e.position >= (lowest::text::bigint + offs) << 20
                               AND e.position < (lowest::text::bigint + offs + 1) << 20)
                           OR (e.position >= (lowest::text::bigint + o.xid_offset) << 20
                               AND e.position < (lowest::text::bigint + o.xid_offset + 1) << 20))
              INTO settled;
            IF NOT settled THEN
                EXIT;
            END IF;
        END IF;
    END LOOP;
    RETURN (coalesce(lowest, pg_snapshot_xmax(snap))::text::bigint + offs) << 20;
END
$$;

-- Called in the reading statement: a STABLE SQL function runs with that statement's
-- snapshot, which it passes on with the offset that snapshot sees.
CREATE OR REPLACE FUNCTION __SCHEMA__.visible_limit() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT __SCHEMA__.visible_limit_at(pg_current_snapshot(), o.xid_offset)
      FROM __SCHEMA__.position_offset o
$$;

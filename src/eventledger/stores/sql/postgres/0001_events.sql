-- The event log, its streams, and the append function.
--
-- Global order: position = ((transaction id + xid_offset) << 20) + index in the
-- transaction. Transaction ids are handed out in start order but commit in any
-- order, so readers only take events of transactions older than the oldest one
-- still running (pg_snapshot_xmin): those can no longer change. xid_offset
-- stays 0 until a logical restore into a new cluster restarts transaction ids;
-- the store then raises it so that new events sort after the restored ones.
-- __SCHEMA__ is replaced by the store's schema name, quoted.

CREATE TABLE __SCHEMA__.events (
    position       bigint      NOT NULL,
    id             uuid        NOT NULL,
    stream_id      text        COLLATE "C" NOT NULL,
    version        bigint      NOT NULL CHECK (version >= 1),
    type           text        NOT NULL,
    schema_version integer     NOT NULL,
    data           jsonb       NOT NULL,
    metadata       jsonb       NOT NULL,
    recorded_at    timestamptz NOT NULL,
    CONSTRAINT events_pkey PRIMARY KEY (position),
    CONSTRAINT events_id_key UNIQUE (id),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version)
);

-- Time is nearly in position order, so a BRIN index finds "events since T"
-- at almost no cost to writers.
CREATE INDEX events_recorded_at_brin ON __SCHEMA__.events USING brin (recorded_at);

CREATE TABLE __SCHEMA__.streams (
    stream_id  text        COLLATE "C" NOT NULL,
    version    bigint      NOT NULL CHECK (version >= 1),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CONSTRAINT streams_pkey PRIMARY KEY (stream_id)
);

CREATE TABLE __SCHEMA__.position_offset (
    only_row   boolean NOT NULL DEFAULT true CHECK (only_row),
    xid_offset bigint  NOT NULL CHECK (xid_offset >= 0),
    CONSTRAINT position_offset_pkey PRIMARY KEY (only_row)
);
INSERT INTO __SCHEMA__.position_offset (xid_offset) VALUES (0);

-- The first position a reader may not hand out yet: everything below it is final.
CREATE FUNCTION __SCHEMA__.visible_limit() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT (pg_snapshot_xmin(pg_current_snapshot())::text::bigint + o.xid_offset) << 20
      FROM __SCHEMA__.position_offset o
$$;

-- Appends events to one stream. p_expected: >= 0 the exact version (0: no
-- stream), -1 any, -2 the stream must exist. Returns {version, position}.
-- A wrong expected version raises SQLSTATE EL409 with the actual version as
-- its detail; duplicate event ids raise unique_violation on events_id_key.
CREATE FUNCTION __SCHEMA__.append_events(
    p_stream_id       text,
    p_expected        bigint,
    p_ids             uuid[],
    p_types           text[],
    p_schema_versions integer[],
    p_data            jsonb[],
    p_metadata        jsonb[]
) RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE
    v_count   bigint := cardinality(p_ids);
    v_actual  bigint;
    v_updated timestamptz;
    v_now     timestamptz;
    v_base    bigint;
BEGIN
    SELECT s.version, s.updated_at INTO v_actual, v_updated
      FROM __SCHEMA__.streams s WHERE s.stream_id = p_stream_id FOR UPDATE;
    IF NOT FOUND THEN
        IF p_expected > 0 OR p_expected = -2 THEN
            RAISE EXCEPTION 'wrong expected version' USING ERRCODE = 'EL409', DETAIL = '0';
        END IF;
        v_now := clock_timestamp();
        INSERT INTO __SCHEMA__.streams (stream_id, version, created_at, updated_at)
        VALUES (p_stream_id, v_count, v_now, v_now)
        ON CONFLICT (stream_id) DO NOTHING;
        IF FOUND THEN
            v_actual := 0;
        ELSE
            -- Another transaction created the stream meanwhile: wait for it and recheck.
            SELECT s.version, s.updated_at INTO v_actual, v_updated
              FROM __SCHEMA__.streams s WHERE s.stream_id = p_stream_id FOR UPDATE;
        END IF;
    END IF;
    IF v_updated IS NOT NULL THEN
        IF (p_expected >= 0 AND p_expected <> v_actual) THEN
            RAISE EXCEPTION 'wrong expected version'
                USING ERRCODE = 'EL409', DETAIL = v_actual::text;
        END IF;
        v_now := greatest(clock_timestamp(), v_updated);
        UPDATE __SCHEMA__.streams
           SET version = v_actual + v_count, updated_at = v_now
         WHERE stream_id = p_stream_id;
    END IF;
    v_base := (pg_current_xact_id()::text::bigint
               + (SELECT o.xid_offset FROM __SCHEMA__.position_offset o)) << 20;
    INSERT INTO __SCHEMA__.events
        (position, id, stream_id, version, type, schema_version, data, metadata, recorded_at)
    SELECT v_base + u.n - 1, u.id, p_stream_id, v_actual + u.n, u.type, u.schema_version,
           u.data, u.metadata, v_now
      FROM unnest(p_ids, p_types, p_schema_versions, p_data, p_metadata)
           WITH ORDINALITY AS u(id, type, schema_version, data, metadata, n);
    RETURN ARRAY[v_actual + v_count, v_base + v_count - 1];
END
$$;

-- The event log. Streams are the distinct stream ids of the log; the append
-- statement lives in postgres.py (one statement, one round trip).
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
    -- Also how concurrent writers to one stream are kept apart: the second to
    -- insert a version waits for the first and fails if the first committed.
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version)
);

-- Time is nearly in position order, so a BRIN index finds "events since T"
-- at almost no cost to writers.
CREATE INDEX events_recorded_at_brin ON __SCHEMA__.events USING brin (recorded_at);

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

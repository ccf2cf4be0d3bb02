-- Snapshots of aggregate state: a cache beside the log, every N events.
CREATE TABLE __SCHEMA__.snapshots (
    stream_id   text        COLLATE "C" NOT NULL,
    version     bigint      NOT NULL CHECK (version >= 1),
    kind        text        NOT NULL,
    fingerprint text        NOT NULL,
    state       jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT snapshots_pkey PRIMARY KEY (stream_id, version)
);

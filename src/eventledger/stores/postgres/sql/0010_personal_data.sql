-- Personal data (eventledger.personal): each subject's data key, wrapped by the
-- key-encryption key; forgetting a subject clears `wrapped` and keeps the row, so that
-- no new key is made for them. subject_streams finds a subject's values (export) and
-- the snapshots to discard when they are forgotten.
CREATE TABLE __SCHEMA__.subject_keys (
    subject      text        PRIMARY KEY,
    wrapped      bytea,
    created_at   timestamptz NOT NULL,
    forgotten_at timestamptz
);

CREATE TABLE __SCHEMA__.subject_streams (
    subject   text NOT NULL,
    stream_id text NOT NULL,
    PRIMARY KEY (subject, stream_id)
);
